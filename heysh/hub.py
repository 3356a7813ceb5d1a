"""One per api process: routes what the workflows record in Postgres to live subscribers.

The process LISTENs on one connection (``heysh.stores.notifications``). For each run that has
subscribers it keeps one feed: the run's events, read from Postgres once when the first
subscriber arrives, then extended by one read per notification, whatever the number of
subscribers; every subscriber is served from the feed in memory. Nothing is shared between api
processes: each listens for itself, so every process delivers every event.

A subscriber that falls ``queue_limit`` events behind is ended with SUBSCRIBER_TOO_SLOW and
never slows the others (delivery never waits on a subscriber). When a domain's memberships
change, or it is deleted, its subscribers' access is checked again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from heysh.errors import HeyshError
from heysh.stores.domain_events import DOMAIN_EVENTS_CHANNEL, DomainEventRow, DomainEventStore
from heysh.stores.postgres import ACCESS_CHANNEL, PostgresStore, RunRow
from heysh.stores.runs import RUN_EVENTS_CHANNEL, RunEventRow, RunStore

log = logging.getLogger(__name__)

TERMINAL = frozenset({"COMPLETED", "FAILED", "CANCELED"})
CHANNELS = (RUN_EVENTS_CHANNEL, DOMAIN_EVENTS_CHANNEL, ACCESS_CHANNEL)
BACKLOG_PAGE = 1000


class SubscriberTooSlowError(HeyshError):
    code = "SUBSCRIBER_TOO_SLOW"


class AccessRevokedError(HeyshError):
    code = "FORBIDDEN"


Delivery = tuple[RunEventRow, RunRow]


@dataclass(eq=False)
class _Subscriber:
    user_id: UUID
    queue: asyncio.Queue[Any]  # deliveries, or the HeyshError that ends the subscription

    def end(self, error: HeyshError) -> None:
        """Replace whatever is queued with ``error``: the subscriber gets it next, and stops."""
        while not self.queue.empty():
            self.queue.get_nowait()
        self.queue.put_nowait(error)


@dataclass(eq=False)
class _Feed:
    run_id: str
    domain_id: UUID
    events: list[RunEventRow] = field(default_factory=list)
    snapshot: RunRow | None = None
    subscribers: set[_Subscriber] = field(default_factory=set)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    loaded: bool = False

    @property
    def last_seq(self) -> int:
        return self.events[-1].seq if self.events else 0


@dataclass(eq=False)
class _DomainFeed:
    domain_id: UUID
    last_seq: int = 0  # delivered up to here (set when the feed starts)
    subscribers: set[_Subscriber] = field(default_factory=set)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    started: bool = False


class RunHub:
    def __init__(
        self,
        runs: RunStore,
        domain_events: DomainEventStore,
        postgres: PostgresStore,
        queue_limit: int,
    ) -> None:
        self._runs = runs
        self._domain_events = domain_events
        self._postgres = postgres
        self._queue_limit = queue_limit
        self._feeds: dict[str, _Feed] = {}
        self._domains: dict[UUID, _DomainFeed] = {}

    @property
    def subscriber_count(self) -> int:
        runs = sum(len(feed.subscribers) for feed in self._feeds.values())
        return runs + sum(len(feed.subscribers) for feed in self._domains.values())

    async def domain_events(
        self, domain_id: UUID, user_id: UUID, after: int
    ) -> AsyncIterator[DomainEventRow]:
        """The domain's events with seq above ``after``, in order, then each as it is recorded;
        never ends on its own (the caller's access ending ends it)."""
        subscriber = _Subscriber(user_id, asyncio.Queue(maxsize=self._queue_limit))
        feed = self._domains.get(domain_id)
        if feed is None:
            feed = self._domains[domain_id] = _DomainFeed(domain_id)
        feed.subscribers.add(subscriber)
        try:
            async with feed.lock:
                if not feed.started:
                    # Delivered from here on; anything older comes from each backlog read below.
                    latest = await self._domain_events.latest_seq(domain_id)
                    feed.last_seq, feed.started = latest, True
            last = after
            while True:
                page = await self._domain_events.events(domain_id, last, BACKLOG_PAGE)
                for event in page:
                    yield event
                    last = event.seq
                if len(page) < BACKLOG_PAGE:
                    break
            while True:
                item = await subscriber.queue.get()
                if isinstance(item, HeyshError):
                    raise item
                if item.seq > last:
                    yield item
                    last = item.seq
        finally:
            feed.subscribers.discard(subscriber)
            if not feed.subscribers and self._domains.get(domain_id) is feed:
                del self._domains[domain_id]

    async def events(self, run: RunRow, user_id: UUID, after: int) -> AsyncIterator[Delivery]:
        """The run's events with seq above ``after``, in order, each with the run as recorded
        then; ends after the run's terminal event."""
        subscriber = _Subscriber(user_id, asyncio.Queue(maxsize=self._queue_limit))
        feed = self._feeds.get(run.id)
        if feed is None:
            feed = self._feeds[run.id] = _Feed(run.id, run.domain_id)
        # Registered before the backlog is read: an event committed meanwhile is queued, never lost.
        feed.subscribers.add(subscriber)
        try:
            async with feed.lock:
                if not feed.loaded:
                    await self._refresh(feed)
                    feed.loaded = True
                backlog = [(e, feed.snapshot) for e in feed.events if e.seq > after]
            last = after
            for event, snapshot in backlog:
                assert snapshot is not None
                yield event, snapshot
                last = event.seq
                if event.status in TERMINAL:
                    return
            while True:
                item = await subscriber.queue.get()
                if isinstance(item, HeyshError):
                    raise item
                event, snapshot = item
                if event.seq <= last:
                    continue  # already in the backlog
                yield event, snapshot
                last = event.seq
                if event.status in TERMINAL:
                    return
        finally:
            feed.subscribers.discard(subscriber)
            if not feed.subscribers and self._feeds.get(run.id) is feed:
                del self._feeds[run.id]

    # --- fed by the listener ---------------------------------------------------------------------

    async def notify(self, channel: str, payload: str) -> None:
        try:
            if channel == RUN_EVENTS_CHANNEL:
                run_id, _, seq = payload.rpartition(" ")
                feed = self._feeds.get(run_id)
                if feed is not None and int(seq) > feed.last_seq:
                    async with feed.lock:
                        await self._deliver(feed)
            elif channel == DOMAIN_EVENTS_CHANNEL:
                domain, _, seq = payload.rpartition(" ")
                domain_feed = self._domains.get(UUID(domain))
                if domain_feed is not None and int(seq) > domain_feed.last_seq:
                    async with domain_feed.lock:
                        await self._deliver_domain(domain_feed)
            elif channel == ACCESS_CHANNEL:
                await self._recheck(UUID(payload))
        except Exception:
            log.exception("could not handle a %s notification", channel)

    async def catch_up(self) -> None:
        """After the listener (re)connects: whatever was recorded while it was away."""
        for feed in list(self._feeds.values()):
            if feed.loaded:
                async with feed.lock:
                    await self._deliver(feed)
            await self._recheck_feed(feed)
        for domain_feed in list(self._domains.values()):
            if domain_feed.started:
                async with domain_feed.lock:
                    await self._deliver_domain(domain_feed)
            await self._recheck_domain(domain_feed)

    async def _deliver_domain(self, feed: _DomainFeed) -> None:
        while True:
            fresh = await self._domain_events.events(feed.domain_id, feed.last_seq, BACKLOG_PAGE)
            for event in fresh:
                for subscriber in list(feed.subscribers):
                    self._offer(subscriber, event)
                feed.last_seq = event.seq
            if len(fresh) < BACKLOG_PAGE:
                return

    def _offer(self, subscriber: _Subscriber, item: object) -> None:
        try:
            subscriber.queue.put_nowait(item)
        except asyncio.QueueFull:
            subscriber.end(
                SubscriberTooSlowError(
                    f"this subscription fell more than {self._queue_limit} events behind"
                    " and was ended; subscribe again with `after` to resume"
                )
            )

    async def _deliver(self, feed: _Feed) -> None:
        before = feed.last_seq
        await self._refresh(feed)
        fresh = [e for e in feed.events if e.seq > before]
        if not fresh or feed.snapshot is None:
            return
        for subscriber in list(feed.subscribers):
            for event in fresh:
                self._offer(subscriber, (event, feed.snapshot))

    async def _refresh(self, feed: _Feed) -> None:
        fresh = await self._runs.events(feed.run_id, feed.last_seq)
        feed.snapshot = await self._runs.run(feed.run_id) or feed.snapshot
        feed.events.extend(fresh)

    async def _recheck(self, domain_id: UUID) -> None:
        for feed in list(self._feeds.values()):
            if feed.domain_id == domain_id:
                await self._recheck_feed(feed)
        domain_feed = self._domains.get(domain_id)
        if domain_feed is not None:
            await self._recheck_domain(domain_feed)

    async def _recheck_domain(self, feed: _DomainFeed) -> None:
        async def allowed(user: UUID) -> bool:
            return bool(await self._postgres.roles(user, [feed.domain_id]))

        await _end_revoked(
            feed.subscribers, allowed, "the domain was deleted or you no longer have access"
        )

    async def _recheck_feed(self, feed: _Feed) -> None:
        async def allowed(user: UUID) -> bool:
            return bool(await self._postgres.visible_runs(user, [feed.run_id]))

        await _end_revoked(feed.subscribers, allowed, "you no longer have access to this run")


async def _end_revoked(
    subscribers: Iterable[_Subscriber],
    allowed: Callable[[UUID], Awaitable[bool]],
    message: str,
) -> None:
    """End the subscriptions of users who lost access: one read per user, however many
    subscriptions they hold."""
    verdicts: dict[UUID, bool] = {}
    for subscriber in list(subscribers):
        user = subscriber.user_id
        if user not in verdicts:
            verdicts[user] = await allowed(user)
        if not verdicts[user]:
            subscriber.end(AccessRevokedError(message))
