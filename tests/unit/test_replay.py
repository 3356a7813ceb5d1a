"""Runs recorded from real workflows replay against the current code, so a change that would
break runs in flight across a deploy fails here (make it with `workflow.patched` instead).

The histories are recorded by `scripts/record_histories.py`."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from heysh.worker import WORKFLOWS

workflow_definition = workflow._Definition.must_from_class  # the SDK's own lookup of a defn

HISTORIES = sorted((Path(__file__).parents[1] / "fixtures" / "histories").glob("*.json"))


def test_every_workflow_has_a_recorded_history() -> None:
    recorded = set()
    for path in HISTORIES:
        first = load(path).events[0].workflow_execution_started_event_attributes
        recorded.add(first.workflow_type.name)
    defined = {workflow_definition(w).name for w in WORKFLOWS}
    assert recorded == defined


def load(path: Path) -> WorkflowHistory:
    return WorkflowHistory.from_json(path.stem, path.read_text())


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_recorded_run_replays_on_the_current_code(path: Path) -> None:
    history = load(path)
    result = await Replayer(workflows=WORKFLOWS).replay_workflow(
        history, raise_on_replay_failure=False
    )
    assert result.replay_failure is None, f"{path.stem}: {result.replay_failure}"
