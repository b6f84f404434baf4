"""Batched endings for workers that coalesce their calls: fail batches and ack-and-fetch-next.

Each function is one writer operation, so an ack and the claim of the next jobs share one
transaction (and one fsync): the worker's slot is refilled without a second round trip.
"""

from __future__ import annotations

from jobbie.errors import JobbieError
from jobbie.models import FailResponse, FetchedJob
from jobbie.store.params import AckParams, FailParams, FetchParams
from jobbie.store.sqlite import claim, finish
from jobbie.store.sqlite.writer import Tx


def ack_then_claim(tx: Tx, params: AckParams, next_: FetchParams) -> tuple[str, list[FetchedJob]]:
    """Ack, then lease the next jobs; a failed ack raises before anything is leased."""
    status = finish.ack(tx, params)
    return status, claim.claim(tx, next_).jobs


def ack_many_then_claim(
    tx: Tx, acks: list[AckParams], next_: FetchParams
) -> tuple[list[str | JobbieError], list[FetchedJob]]:
    """Ack each (each on its own), then lease the next jobs whatever the acks' outcomes."""
    results = finish.ack_many(tx, acks)
    return results, claim.claim(tx, next_).jobs


def fail_many(tx: Tx, fails: list[FailParams]) -> list[FailResponse | JobbieError]:
    """Fail each attempt on its own: a refused fail (lost lease, unknown job, a lost race of
    the guarded update) rolls back to its savepoint alone. The same job twice finds itself no
    longer active the second time."""
    results: list[FailResponse | JobbieError] = []
    for params in fails:
        tx.execute("SAVEPOINT fail_one")
        try:
            results.append(finish.fail(tx, params))
        except JobbieError as exc:
            tx.execute("ROLLBACK TO fail_one")
            results.append(exc)
        tx.execute("RELEASE fail_one")
    return results
