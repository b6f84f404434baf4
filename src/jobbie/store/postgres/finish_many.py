"""Batched endings for workers that coalesce their calls: fail batches and ack-and-fetch-next.

Each function is one transaction, so an ack and the claim of the next jobs commit together:
the worker's slot is refilled without a second round trip.
"""

from __future__ import annotations

from jobbie.errors import JobbieError
from jobbie.models import FailResponse, FetchedJob
from jobbie.store.params import AckParams, FailParams, FetchParams
from jobbie.store.postgres import claim, finish
from jobbie.store.postgres.tx import Tx


async def ack_then_claim(
    tx: Tx, params: AckParams, next_: FetchParams
) -> tuple[str, list[FetchedJob]]:
    """Ack, then lease the next jobs; a failed ack raises before anything is leased."""
    status = await finish.ack(tx, params)
    return status, (await claim.claim(tx, next_)).jobs


async def ack_many_then_claim(
    tx: Tx, acks: list[AckParams], next_: FetchParams
) -> tuple[list[str | JobbieError], list[FetchedJob]]:
    """Ack each (each on its own), then lease the next jobs whatever the acks' outcomes."""
    results = await finish.ack_many(tx, acks)
    return results, (await claim.claim(tx, next_)).jobs


async def fail_many(tx: Tx, fails: list[FailParams]) -> list[FailResponse | JobbieError]:
    """Fail each attempt on its own: a refused fail (lost lease, unknown job, a lost race of
    the guarded update) rolls back to its savepoint alone. A fail is refused before it
    collects any event or total for COMMIT. The same job twice finds itself no longer active
    the second time."""
    results: list[FailResponse | JobbieError] = []
    for params in fails:
        try:
            async with tx.savepoint():  # rolls back this fail alone
                results.append(await finish.fail(tx, params))
        except JobbieError as exc:
            results.append(exc)
    return results
