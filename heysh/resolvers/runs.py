"""Stopping runs, and the suffix that gives each run an id of its own."""

from __future__ import annotations

import uuid

from heysh.context import Context
from heysh.policy import Permission
from heysh.resolvers.access import Refusal, require
from heysh.stores.postgres import RunRow

NOT_FOUND_RUN = Refusal("NOT_FOUND", "run not found", "id")
FINISHED = Refusal("INVALID_INPUT", "the run has already finished", "id")

# Editors may stop work on documents; stopping work on the domain itself is the owner's call.
CANCEL_PERMISSION = {
    "PROCESS_DOCUMENT": Permission.EDIT,
    "DELETE_DOCUMENT": Permission.EDIT,
}


def run_suffix() -> str:
    return uuid.uuid4().hex[:8]


async def cancel_run(ctx: Context, run_id: str) -> RunRow | Refusal:
    run = await ctx.loaders.run.load(run_id)
    if run is None:
        return NOT_FOUND_RUN
    refusal = await require(
        ctx, run.domain_id, CANCEL_PERMISSION.get(run.kind, Permission.ADMINISTER), NOT_FOUND_RUN
    )
    if refusal:
        return refusal
    if not await ctx.services.engine.cancel(run.id):
        return FINISHED
    return run
