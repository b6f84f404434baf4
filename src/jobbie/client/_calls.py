"""Every API call described once, as data: method, path, body and how to read the answer.

`Client` and `AsyncClient` only differ in how they send a `Call`, so the request building,
answer decoding and lease bookkeeping live here and are shared by both.
"""

from __future__ import annotations

import os
import socket
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import msgspec
from msgspec import UNSET, Raw

from jobbie import models as m
from jobbie.client._transport import Response
from jobbie.client.errors import error_from_response
from jobbie.client.types import (
    Batch,
    BulkAction,
    BulkOperation,
    BulkResult,
    EnqueueOptions,
    EnqueueSpec,
    HeartbeatUpdate,
    Job,
    JobFilter,
    Schedule,
    SearchPage,
    WorkerInfo,
    batch_from_wire,
    job_from_fetch,
    job_from_wire,
    page_from_wire,
    schedule_from_wire,
    worker_from_wire,
)
from jobbie.errors import ValidationError
from jobbie.timeutil import parse_duration_ms

T = TypeVar("T")

API = "/api/v1"
# A long-poll may legitimately take its whole timeout; the HTTP read waits this much longer.
LONG_POLL_MARGIN = 10.0
MAX_REMEMBERED_LEASES = 10_000


@dataclass(frozen=True, slots=True)
class Call(Generic[T]):
    """One HTTP request and the function that turns its (successful) answer into `T`."""

    method: str
    path: str
    parse: Callable[[Response], T]
    body: bytes | None = None
    params: Mapping[str, str] | None = None
    read_timeout: float | None = None
    # Sending it twice is harmless (fenced acks, fails, heartbeats, releases), so it may be
    # repeated when the connection drops under it. Never true for an enqueue or a fetch.
    retry: bool = False

    @property
    def repeatable(self) -> bool:
        """Whether sending it twice is harmless: a GET, or a call marked `retry`."""
        return self.retry or self.method == "GET"

    def answer(self, resp: Response) -> T:
        """The call's result from a server's answer, or the error that answer carries."""
        if resp.status_code >= 400:
            raise error_from_response(resp)
        return self.parse(resp)


def encode(value: Any) -> bytes:
    """JSON-encode a request value (datetimes become RFC 3339)."""
    return msgspec.json.encode(value)


def raw(value: Any) -> Raw:
    return Raw(encode(value))


_DECODERS: dict[Any, Callable[[Response], Any]] = {}
_RAW_DECODERS: dict[Any, msgspec.json.Decoder[Any]] = {}


def _dec(type_: type[T]) -> msgspec.json.Decoder[T]:
    """The JSON decoder of `type_`, built once (a Decoder costs tens of µs to build)."""
    decoder = _RAW_DECODERS.get(type_)
    if decoder is None:
        decoder = _RAW_DECODERS[type_] = msgspec.json.Decoder(type_)
    return decoder


def _decoder(type_: type[T]) -> Callable[[Response], T]:
    """A parser of `type_` answers; built once per type (a Decoder costs tens of µs)."""
    parse = _DECODERS.get(type_)
    if parse is None:
        decoder = msgspec.json.Decoder(type_)
        parse = _DECODERS[type_] = lambda resp: decoder.decode(resp.content)
    return parse


def _status(resp: Response) -> str:
    return msgspec.json.decode(resp.content, type=m.StatusResponse).status


def _none(resp: Response) -> None:
    return None


def _seg(value: str) -> str:
    """A path segment, escaped (ids and names come from users)."""
    return quote(value, safe="")


def _fenced(worker_id: str | None) -> bool:
    """A fenced call names its lease, so a repeat after success changes nothing."""
    return worker_id is not None


def _ids(job: str | Job) -> str:
    return job.id if isinstance(job, Job) else job


def default_worker_id() -> str:
    """A worker id unique enough across hosts and restarts: host, pid and a random tag."""
    return f"{socket.gethostname()}-{os.getpid()}-{os.urandom(3).hex()}"


def poll_seconds(timeout: float | str) -> float:
    """A fetch timeout (seconds or a duration string) in seconds."""
    return parse_duration_ms(timeout, "timeout") / 1000


def enqueue_request(queue: str, payload: Any, options: Mapping[str, Any]) -> m.EnqueueRequest:
    """The wire request; unknown option names fail here with a TypeError."""
    opts = dict(options)
    at = opts.get("scheduled_at")
    if isinstance(at, str):
        try:
            opts["scheduled_at"] = datetime.fromisoformat(at)
        except ValueError:
            raise ValidationError(f"scheduled_at: not an RFC 3339 timestamp: {at!r}") from None
    return m.EnqueueRequest(queue=queue, payload=raw(payload), **opts)


def _filter_body(criteria: JobFilter) -> dict[str, Any]:
    return {k: v for k, v in criteria.items() if v is not None}


class Calls:
    """Builds the `Call` of every endpoint and remembers the leases this client fetched, so
    ack, fail, heartbeat and release always carry `worker_id` and `attempt` (fencing)."""

    def __init__(self, worker_id: str | None = None, hostname: str | None = None) -> None:
        self.worker_id = worker_id or default_worker_id()
        self.hostname = hostname if hostname is not None else socket.gethostname()
        # Never forgotten on ack or fail, so a repeated call is still fenced; bounded instead.
        self._leases: OrderedDict[str, tuple[str, int]] = OrderedDict()
        self._lock = threading.Lock()

    # --- lease bookkeeping ----------------------------------------------------------------

    def _remember(self, job: Job) -> Job:
        if job.worker is not None:
            with self._lock:
                self._leases[job.id] = (job.worker.id, job.attempt)
                self._leases.move_to_end(job.id)
                if len(self._leases) > MAX_REMEMBERED_LEASES:
                    self._leases.popitem(last=False)
        return job

    def lease_of(self, job_id: str) -> tuple[str, int] | None:
        """The (worker_id, attempt) this client last fetched `job_id` under, if any."""
        with self._lock:
            return self._leases.get(job_id)

    def _fence(
        self, job: str | Job, worker_id: str | None, attempt: int | None
    ) -> tuple[str, str | None, int | None]:
        """The job id and the fencing fields: explicit values, else the Job's, else the
        lease this client remembers from its fetch."""
        job_id = _ids(job)
        known_worker: str | None = None
        known_attempt: int | None = None
        if isinstance(job, Job) and job.worker is not None:
            known_worker, known_attempt = job.worker.id, job.attempt
        elif (lease := self.lease_of(job_id)) is not None:
            known_worker, known_attempt = lease
        return (
            job_id,
            worker_id if worker_id is not None else known_worker,
            attempt if attempt is not None else known_attempt,
        )

    # --- worker protocol ------------------------------------------------------------------

    def enqueue(self, queue: str, payload: Any, options: EnqueueOptions) -> Call[m.EnqueueResponse]:
        body = encode(enqueue_request(queue, payload, options))
        return Call("POST", f"{API}/enqueue", _decoder(m.EnqueueResponse), body)

    def enqueue_batch(
        self,
        jobs: Sequence[EnqueueSpec],
        *,
        batch: bool,
        callback_queue: str | None,
        callback_payload: Any,
    ) -> Call[m.EnqueueBatchResponse]:
        requests = []
        for spec in jobs:
            options: dict[str, Any] = dict(spec)
            queue = options.pop("queue")
            requests.append(enqueue_request(queue, options.pop("payload", None), options))
        options_ = None
        if batch or callback_queue is not None or callback_payload is not None:
            options_ = m.BatchOptions(
                callback_queue=callback_queue, callback_payload=raw(callback_payload)
            )
        body = encode(m.EnqueueBatchRequest(jobs=requests, batch=options_))
        return Call("POST", f"{API}/enqueue/batch", _decoder(m.EnqueueBatchResponse), body)

    def fetch(
        self,
        queues: str | Sequence[str],
        *,
        worker_id: str | None,
        timeout: float | str,
        count: int | None,
        lease_duration: float | str | None,
    ) -> Call[Job | list[Job] | None]:
        names = [queues] if isinstance(queues, str) else list(queues)
        worker = worker_id or self.worker_id
        request = m.FetchRequest(
            queues=names,
            worker_id=worker,
            hostname=self.hostname,
            timeout=timeout,
            lease_duration=lease_duration,
            count=count,
        )
        one = _dec(m.FetchedJob)
        many = _dec(m.FetchManyResponse)

        def parse(resp: Response) -> Job | list[Job] | None:
            if resp.status_code == 204:
                return None if count is None else []
            if count is None:
                return self._remember(
                    job_from_fetch(one.decode(resp.content), worker, self.hostname)
                )
            return [
                self._remember(job_from_fetch(j, worker, self.hostname))
                for j in many.decode(resp.content).jobs
            ]

        return Call(
            "POST",
            f"{API}/fetch",
            parse,
            encode(request),
            read_timeout=poll_seconds(timeout) + LONG_POLL_MARGIN,
        )

    def ack(
        self, job: str | Job, result: Any, worker_id: str | None, attempt: int | None
    ) -> Call[str]:
        job_id, worker_id, attempt = self._fence(job, worker_id, attempt)
        body = encode(m.AckRequest(result=raw(result), worker_id=worker_id, attempt=attempt))
        return Call("POST", f"{API}/ack/{_seg(job_id)}", _status, body, retry=_fenced(worker_id))

    def _ack_items(
        self, acks: Mapping[str, Any] | Sequence[tuple[str | Job, Any]]
    ) -> list[m.AckBatchItem]:
        pairs = list(acks.items()) if isinstance(acks, Mapping) else list(acks)
        items = []
        for job, result in pairs:
            job_id, worker_id, attempt = self._fence(job, None, None)
            items.append(
                m.AckBatchItem(
                    job_id=job_id, result=raw(result), worker_id=worker_id, attempt=attempt
                )
            )
        return items

    def ack_batch(
        self, acks: Mapping[str, Any] | Sequence[tuple[str | Job, Any]]
    ) -> Call[list[m.AckBatchResult]]:
        items = self._ack_items(acks)
        decoder = _dec(m.AckBatchResponse)

        return Call(
            "POST",
            f"{API}/ack/batch",
            lambda resp: decoder.decode(resp.content).results,
            encode(m.AckBatchRequest(acks=items)),
            retry=all(item.worker_id is not None for item in items),
        )

    def _next(
        self,
        queues: str | Sequence[str],
        count: int,
        lease_duration: float | str | None,
    ) -> m.FetchNext:
        names = [queues] if isinstance(queues, str) else list(queues)
        return m.FetchNext(
            queues=names, count=count, lease_duration=lease_duration, hostname=self.hostname
        )

    def _leased(self, wires: list[m.FetchedJob], worker_id: str) -> list[Job]:
        return [self._remember(job_from_fetch(w, worker_id, self.hostname)) for w in wires]

    def ack_and_fetch(
        self,
        job: str | Job,
        result: Any,
        worker_id: str | None,
        attempt: int | None,
        *,
        queues: str | Sequence[str],
        count: int,
        lease_duration: float | str | None,
    ) -> Call[tuple[str, list[Job]]]:
        job_id, worker_id, attempt = self._fence(job, worker_id, attempt)
        owner = worker_id or self.worker_id
        request = m.AckRequest(
            result=raw(result),
            worker_id=owner,
            attempt=attempt,
            next=self._next(queues, count, lease_duration),
        )
        decoder = _dec(m.AckResponse)

        def parse(resp: Response) -> tuple[str, list[Job]]:
            answer = decoder.decode(resp.content)
            return answer.status, self._leased(answer.next or [], owner)

        # Never repeated: a lost answer's jobs would stay leased to nobody until they expire.
        return Call("POST", f"{API}/ack/{_seg(job_id)}", parse, encode(request))

    def ack_batch_and_fetch(
        self,
        acks: Mapping[str, Any] | Sequence[tuple[str | Job, Any]],
        *,
        queues: str | Sequence[str],
        count: int,
        lease_duration: float | str | None,
        worker_id: str | None,
    ) -> Call[tuple[list[m.AckBatchResult], list[Job]]]:
        owner = worker_id or self.worker_id
        body = m.AckBatchRequest(
            acks=self._ack_items(acks),
            worker_id=owner,
            next=self._next(queues, count, lease_duration),
        )
        decoder = _dec(m.AckBatchResponse)

        def parse(resp: Response) -> tuple[list[m.AckBatchResult], list[Job]]:
            answer = decoder.decode(resp.content)
            return answer.results, self._leased(answer.next or [], owner)

        return Call("POST", f"{API}/ack/batch", parse, encode(body))

    def fail_batch(
        self,
        fails: Sequence[tuple[str | Job, str] | tuple[str | Job, str, str | None]],
        worker_id: str | None,
    ) -> Call[list[m.FailBatchResult]]:
        items = []
        for entry in fails:
            job, error = entry[0], entry[1]
            backtrace = entry[2] if len(entry) > 2 else None
            job_id, lease_worker, attempt = self._fence(job, None, None)
            worker_id = worker_id or lease_worker
            items.append(
                m.FailBatchItem(job_id=job_id, error=error, backtrace=backtrace, attempt=attempt)
            )
        decoder = _dec(m.FailBatchResponse)
        return Call(
            "POST",
            f"{API}/fail/batch",
            lambda resp: decoder.decode(resp.content).results,
            encode(m.FailBatchRequest(fails=items, worker_id=worker_id)),
            retry=worker_id is not None and all(i.attempt is not None for i in items),
        )

    def fail(
        self,
        job: str | Job,
        error: str,
        backtrace: str | None,
        worker_id: str | None,
        attempt: int | None,
    ) -> Call[m.FailResponse]:
        job_id, worker_id, attempt = self._fence(job, worker_id, attempt)
        request = m.FailRequest(
            error=error, backtrace=backtrace, worker_id=worker_id, attempt=attempt
        )
        return Call(
            "POST",
            f"{API}/fail/{_seg(job_id)}",
            _decoder(m.FailResponse),
            encode(request),
            retry=_fenced(worker_id),
        )

    def heartbeat(
        self, jobs: Mapping[str, HeartbeatUpdate], worker_id: str | None
    ) -> Call[dict[str, str]]:
        entries: dict[str, m.HeartbeatEntry] = {}
        for job_id, update in jobs.items():
            _, lease_worker, attempt = self._fence(job_id, None, update.get("attempt"))
            worker_id = worker_id or lease_worker
            progress = update.get("progress")
            entries[job_id] = m.HeartbeatEntry(
                progress=m.Progress(**progress) if progress is not None else None,
                checkpoint=raw(update["checkpoint"]) if "checkpoint" in update else UNSET,
                attempt=attempt,
            )
        decoder = _dec(m.HeartbeatResponse)

        def parse(resp: Response) -> dict[str, str]:
            return {k: v.status for k, v in decoder.decode(resp.content).jobs.items()}

        body = encode(m.HeartbeatRequest(jobs=entries, worker_id=worker_id))
        return Call("POST", f"{API}/heartbeat", parse, body, retry=True)

    def release(
        self, job: str | Job, checkpoint: Any, worker_id: str | None, attempt: int | None
    ) -> Call[str]:
        job_id, worker_id, attempt = self._fence(job, worker_id, attempt)
        request = m.ReleaseRequest(
            worker_id=worker_id,
            attempt=attempt,
            checkpoint=UNSET if checkpoint is None else raw(checkpoint),
        )
        return Call(
            "POST",
            f"{API}/release/{_seg(job_id)}",
            _status,
            encode(request),
            retry=_fenced(worker_id),
        )

    # --- jobs -----------------------------------------------------------------------------

    def get_job(self, job_id: str) -> Call[Job]:
        return Call("GET", f"{API}/jobs/{_seg(job_id)}", _job)

    def search(
        self,
        criteria: JobFilter,
        *,
        sort: str | None,
        order: str | None,
        cursor: str | None,
        limit: int | None,
    ) -> Call[SearchPage]:
        body = _filter_body(criteria)
        extra = {"sort": sort, "order": order, "cursor": cursor, "limit": limit}
        body.update({k: v for k, v in extra.items() if v is not None})
        return Call("POST", f"{API}/jobs/search", _page, encode(body))

    def count_jobs(self, criteria: JobFilter) -> Call[int]:
        # A dry-run bulk counts every match; a search's total stops at 10,000.
        body = {"action": "retry", "filter": _filter_body(criteria), "dry_run": True}

        def parse(resp: Response) -> int:
            return msgspec.json.decode(resp.content, type=m.DryRunResponse).matched

        return Call("POST", f"{API}/jobs/bulk", parse, encode(body))

    def dead(self, queue: str | None, limit: int | None, cursor: str | None) -> Call[SearchPage]:
        given = {"queue": queue, "limit": limit, "cursor": cursor}
        params = {k: str(v) for k, v in given.items() if v is not None}
        return Call("GET", f"{API}/dead", _page, params=params)

    def bulk(
        self,
        action: BulkAction,
        *,
        job_ids: Sequence[str] | None,
        filter: JobFilter | None,
        move_to_queue: str | None,
        priority: str | None,
    ) -> Call[BulkResult | BulkOperation]:
        if (job_ids is None) == (filter is None):
            raise ValueError("bulk needs exactly one of job_ids and filter")
        body: dict[str, Any] = {"action": action}
        if job_ids is not None:
            body["job_ids"] = list(job_ids)
        if filter is not None:
            body["filter"] = _filter_body(filter)
        if move_to_queue is not None:
            body["move_to_queue"] = move_to_queue
        if priority is not None:
            body["priority"] = priority

        def parse(resp: Response) -> BulkResult | BulkOperation:
            if resp.status_code == 202:
                return msgspec.json.decode(resp.content, type=m.BulkAccepted)
            return msgspec.json.decode(resp.content, type=m.BulkResponse)

        return Call("POST", f"{API}/jobs/bulk", parse, encode(body))

    def bulk_status(self, operation_id: str) -> Call[m.BulkStatus]:
        return Call("GET", f"{API}/bulk/{_seg(operation_id)}", _decoder(m.BulkStatus))

    def cancel_job(self, job_id: str) -> Call[str]:
        return Call("POST", f"{API}/jobs/{_seg(job_id)}/cancel", _status)

    def retry_job(self, job_id: str) -> Call[Job]:
        return Call("POST", f"{API}/jobs/{_seg(job_id)}/retry", _job)

    def move_job(self, job_id: str, queue: str) -> Call[Job]:
        body = encode(m.MoveRequest(queue=queue))
        return Call("POST", f"{API}/jobs/{_seg(job_id)}/move", _job, body)

    def delete_job(self, job_id: str) -> Call[None]:
        return Call("DELETE", f"{API}/jobs/{_seg(job_id)}", _none)

    def get_batch(self, batch_id: str) -> Call[Batch]:
        decoder = _dec(m.Batch)
        return Call(
            "GET",
            f"{API}/batches/{_seg(batch_id)}",
            lambda resp: batch_from_wire(decoder.decode(resp.content)),
        )

    # --- queues ---------------------------------------------------------------------------

    def queues(self) -> Call[list[m.Queue]]:
        decoder = _dec(m.QueueList)
        return Call("GET", f"{API}/queues", lambda resp: decoder.decode(resp.content).queues)

    def queue_action(self, name: str, action: str) -> Call[m.Queue]:
        return Call("POST", f"{API}/queues/{_seg(name)}/{action}", _decoder(m.Queue))

    def clear(self, name: str) -> Call[int]:
        decoder = _dec(m.ClearResponse)
        return Call(
            "POST",
            f"{API}/queues/{_seg(name)}/clear",
            lambda resp: decoder.decode(resp.content).cleared,
        )

    def set_concurrency(self, name: str, limit: int | None) -> Call[m.Queue]:
        body = encode(m.ConcurrencyRequest(max=limit))
        return Call("POST", f"{API}/queues/{_seg(name)}/concurrency", _decoder(m.Queue), body)

    def set_throttle(self, name: str, rate: int, period: float | str) -> Call[m.Queue]:
        body = encode(m.ThrottleRequest(rate=rate, period=period))
        return Call("POST", f"{API}/queues/{_seg(name)}/throttle", _decoder(m.Queue), body)

    def remove_throttle(self, name: str) -> Call[m.Queue]:
        return Call("DELETE", f"{API}/queues/{_seg(name)}/throttle", _decoder(m.Queue))

    def set_fairness(self, name: str, mode: m.FairnessMode) -> Call[m.Queue]:
        body = encode(m.FairnessRequest(mode=mode))
        return Call("POST", f"{API}/queues/{_seg(name)}/fairness", _decoder(m.Queue), body)

    def set_key_concurrency(self, name: str, limit: int | None) -> Call[m.Queue]:
        body = encode(m.ConcurrencyRequest(max=limit))
        return Call("POST", f"{API}/queues/{_seg(name)}/key-concurrency", _decoder(m.Queue), body)

    def set_key_throttle(self, name: str, rate: int, period: float | str) -> Call[m.Queue]:
        body = encode(m.ThrottleRequest(rate=rate, period=period))
        return Call("POST", f"{API}/queues/{_seg(name)}/key-throttle", _decoder(m.Queue), body)

    def remove_key_throttle(self, name: str) -> Call[m.Queue]:
        return Call("DELETE", f"{API}/queues/{_seg(name)}/key-throttle", _decoder(m.Queue))

    def queue_keys(self, name: str, limit: int | None) -> Call[list[m.QueueKey]]:
        decoder = _dec(m.QueueKeyList)
        params = None if limit is None else {"limit": str(limit)}
        return Call(
            "GET",
            f"{API}/queues/{_seg(name)}/keys",
            lambda resp: decoder.decode(resp.content).keys,
            params=params,
        )

    def delete_queue(self, name: str) -> Call[int]:
        decoder = _dec(m.DeleteQueueResponse)
        return Call(
            "DELETE",
            f"{API}/queues/{_seg(name)}",
            lambda resp: decoder.decode(resp.content).deleted_jobs,
            params={"confirm": "true"},
        )

    # --- schedules ------------------------------------------------------------------------

    def schedules(self) -> Call[list[Schedule]]:
        decoder = _dec(m.ScheduleList)
        return Call(
            "GET",
            f"{API}/schedules",
            lambda resp: [schedule_from_wire(s) for s in decoder.decode(resp.content).schedules],
        )

    def get_schedule(self, schedule_id: str) -> Call[Schedule]:
        return Call("GET", f"{API}/schedules/{_seg(schedule_id)}", _schedule)

    def put_schedule(self, schedule_id: str | None, fields: Mapping[str, Any]) -> Call[Schedule]:
        given = {k: v for k, v in fields.items() if v is not None}
        payload = raw(given.pop("payload")) if "payload" in given else UNSET
        body = encode(m.ScheduleRequest(payload=payload, **given))
        if schedule_id is None:
            return Call("POST", f"{API}/schedules", _schedule, body)
        return Call("PUT", f"{API}/schedules/{_seg(schedule_id)}", _schedule, body)

    def delete_schedule(self, schedule_id: str) -> Call[None]:
        return Call("DELETE", f"{API}/schedules/{_seg(schedule_id)}", _none)

    # --- server ---------------------------------------------------------------------------

    def workers(self) -> Call[list[WorkerInfo]]:
        decoder = _dec(m.WorkerList)
        return Call(
            "GET",
            f"{API}/workers",
            lambda resp: [worker_from_wire(w) for w in decoder.decode(resp.content).workers],
        )

    def cluster_status(self) -> Call[m.ClusterStatus]:
        return Call("GET", f"{API}/cluster/status", _decoder(m.ClusterStatus))

    def health(self) -> Call[m.Health]:
        return Call("GET", "/healthz", _decoder(m.Health))


_JOB_DETAIL = msgspec.json.Decoder(m.JobDetail)
_SEARCH = msgspec.json.Decoder(m.SearchResponse)
_SCHEDULE = msgspec.json.Decoder(m.Schedule)


def _job(resp: Response) -> Job:
    return job_from_wire(_JOB_DETAIL.decode(resp.content))


def _page(resp: Response) -> SearchPage:
    return page_from_wire(_SEARCH.decode(resp.content))


def _schedule(resp: Response) -> Schedule:
    return schedule_from_wire(_SCHEDULE.decode(resp.content))
