"""Run progress kept in workflow state: the single source for workflowRun and subscriptions."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class RunStatus(StrEnum):
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELED = "CANCELED"


class StepStatus(StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    DONE = "DONE"
    FAILED = "FAILED"
    SKIPPED = "SKIPPED"


@dataclass
class RunStep:
    name: str
    status: StepStatus = StepStatus.PENDING
    done: int = 0
    total: int = 0

    @property
    def fraction(self) -> float:
        if self.status in (StepStatus.DONE, StepStatus.SKIPPED):
            return 1.0
        if self.status is StepStatus.RUNNING and self.total:
            return min(self.done / self.total, 1.0)
        return 0.0


@dataclass
class RunEvent:
    seq: int
    stage: str
    status: RunStatus
    progress: float
    message: str
    at: str  # ISO-8601, from workflow.now() so replays agree


@dataclass
class RunProgress:
    kind: str
    steps: list[RunStep]
    status: RunStatus = RunStatus.RUNNING
    stage: str = "queued"
    error: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    events: list[RunEvent] = field(default_factory=list)

    @classmethod
    def planned(cls, kind: str, step_names: list[str], now: str) -> RunProgress:
        progress = cls(kind=kind, steps=[RunStep(name) for name in step_names], started_at=now)
        progress._record("run started", now)
        return progress

    @property
    def fraction(self) -> float:
        if self.status is RunStatus.COMPLETED:
            return 1.0
        done = sum(step.fraction for step in self.steps)
        return round(done / len(self.steps), 4) if self.steps else 0.0

    def begin(self, stage: str, now: str, total: int = 0) -> None:
        self.stage = stage
        step = self._step(stage)
        step.status, step.total, step.done = StepStatus.RUNNING, total, 0
        self._record(f"{stage} started", now)

    def advance(self, stage: str, count: int, now: str | None = None) -> None:
        """Counts; with ``now``, also an event each time the step passes a tenth of its total,
        so a progress bar moves within a stage while a run has at most ten such events per
        stage, whatever the document's size."""
        step = self._step(stage)
        before = step.fraction
        step.done += count
        passed_a_tenth = int(step.fraction * 10) > int(before * 10)
        if now is not None and passed_a_tenth and step.done < step.total:
            self._record(f"{stage}: {step.done} of {step.total}", now)

    def finish(self, stage: str, now: str, message: str | None = None) -> None:
        step = self._step(stage)
        step.status, step.done = StepStatus.DONE, max(step.done, step.total)
        self._record(message or f"{stage} done", now)

    def complete(self, now: str) -> None:
        self.status, self.stage, self.finished_at = RunStatus.COMPLETED, "done", now
        self._record("run completed", now)

    def fail(self, error: str, now: str, *, canceled: bool = False) -> None:
        for step in self.steps:
            if step.status is StepStatus.RUNNING:
                step.status = StepStatus.FAILED
            elif step.status is StepStatus.PENDING:
                step.status = StepStatus.SKIPPED
        self.status = RunStatus.CANCELED if canceled else RunStatus.FAILED
        self.error, self.finished_at = error, now
        self._record(error, now)

    def _step(self, name: str) -> RunStep:
        for step in self.steps:
            if step.name == name:
                return step
        raise KeyError(name)

    def _record(self, message: str, now: str) -> None:
        self.events.append(
            RunEvent(len(self.events) + 1, self.stage, self.status, self.fraction, message, now)
        )


@dataclass
class RunOutput:
    """What every heysh workflow returns: its final status and progress, readable from history."""

    status: RunStatus
    progress: RunProgress
    summary: dict[str, int] = field(default_factory=dict)
