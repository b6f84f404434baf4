// A Jobbie worker in plain Node.js (18+), using only the built-in fetch: no packages.
//
//   JOBBIE_URL=http://127.0.0.1:8080 QUEUES=emails.send node examples/node/worker.mjs
//
// It long-polls for one job at a time, heartbeats while the handler runs, acks the handler's
// return value, fails a thrown error with its stack trace (the server retries it with backoff),
// and on SIGTERM or SIGINT hands a running job back with `release` (no retry is used) and exits.
//
// Settings (environment): JOBBIE_URL, JOBBIE_API_KEY, QUEUES (comma-separated), WORKER_ID,
// LEASE_SECONDS (60), POLL_SECONDS (long-poll timeout, 30).

import { hostname } from "node:os";

const BASE = (process.env.JOBBIE_URL ?? "http://127.0.0.1:8080").replace(/\/$/, "");
const QUEUES = (process.env.QUEUES ?? "default").split(",").filter(Boolean);
const WORKER_ID = process.env.WORKER_ID ?? `node-${hostname()}-${process.pid}`;
const LEASE_SECONDS = Number(process.env.LEASE_SECONDS ?? 60);
const POLL_SECONDS = Number(process.env.POLL_SECONDS ?? 30);
const HEADERS = { "Content-Type": "application/json" };
if (process.env.JOBBIE_API_KEY) HEADERS.Authorization = `Bearer ${process.env.JOBBIE_API_KEY}`;

// The work itself. Replace with yours: the return value becomes the job's result; a thrown
// error fails the attempt. `signal` aborts when the job is cancelled, lost or handed back.
async function handle(job, signal) {
  const payload = job.payload ?? {};
  if (payload.sleep_ms) await sleep(payload.sleep_ms, signal);
  if (payload.fail) throw new Error(payload.fail);
  return { echo: payload, attempt: job.attempt, worker: WORKER_ID };
}

// ---- the protocol --------------------------------------------------------------------------

class HttpError extends Error {
  constructor(status, body) {
    super(`${status} ${body.code ?? ""}: ${body.error ?? ""}`);
    this.status = status;
    this.code = body.code;
  }
}

// POST a JSON body; returns [status, parsed body or null]. Error answers throw HttpError.
async function post(path, body, signal) {
  const resp = await fetch(BASE + path, {
    method: "POST",
    headers: HEADERS,
    body: JSON.stringify(body),
    signal,
  });
  const text = await resp.text();
  const data = text ? JSON.parse(text) : null;
  if (resp.status >= 400) throw new HttpError(resp.status, data ?? {});
  return [resp.status, data];
}

function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => {
      clearTimeout(timer);
      reject(signal.reason ?? new Error("aborted"));
    });
  });
}

function log(message, fields = {}) {
  console.log(JSON.stringify({ worker: WORKER_ID, message, ...fields }));
}

let stopping = false;
let pollAbort = null; // aborts the waiting long-poll on shutdown
let current = null; // { job, abort } while a handler runs

async function runJob(job) {
  const abort = new AbortController();
  current = { job, abort };
  const fence = { worker_id: WORKER_ID, attempt: job.attempt }; // sent with every call
  let outcome = "running"; // or "lost" / "cancel": heard on a heartbeat
  // Heartbeat well inside the lease: three chances before it runs out.
  const beat = setInterval(async () => {
    try {
      const [, answer] = await post("/api/v1/heartbeat", {
        worker_id: WORKER_ID,
        jobs: { [job.job_id]: { attempt: job.attempt } },
      });
      const status = answer.jobs[job.job_id]?.status;
      if (status === "lost" || status === "cancel") {
        outcome = status;
        abort.abort(new Error(`job ${status}`));
      }
    } catch (err) {
      log("heartbeat failed; retrying on the next beat", { error: String(err) });
    }
  }, (job.lease_duration * 1000) / 3);
  try {
    const result = await handle(job, abort.signal);
    if (stopping) return; // released by the shutdown path
    const [, answer] = await post(`/api/v1/ack/${job.job_id}`, { result, ...fence });
    log("acked", { job_id: job.job_id, status: answer.status });
  } catch (err) {
    if (stopping) return;
    if (outcome === "lost") {
      log("lease lost: another worker may run the job; dropping it", { job_id: job.job_id });
      return;
    }
    // A cancelled job's fail is answered "cancelled"; anything else retries or dies.
    const body = { error: String(err?.message ?? err), backtrace: err?.stack ?? null, ...fence };
    try {
      const [, answer] = await post(`/api/v1/fail/${job.job_id}`, body);
      log("failed", { job_id: job.job_id, status: answer.status });
    } catch (failErr) {
      if (failErr.code === "LEASE_LOST") log("lease lost before fail", { job_id: job.job_id });
      else throw failErr;
    }
  } finally {
    clearInterval(beat);
    current = null;
  }
}

async function shutdown(signal) {
  if (stopping) return;
  stopping = true;
  log("stopping", { signal });
  pollAbort?.abort();
  if (current) {
    const { job, abort } = current;
    abort.abort(new Error("shutting down"));
    try {
      // Back to pending at once, attempt not counted: a deploy never burns a retry.
      await post(`/api/v1/release/${job.job_id}`, { worker_id: WORKER_ID, attempt: job.attempt });
      log("released", { job_id: job.job_id });
    } catch (err) {
      log("release failed; the lease will expire instead", { error: String(err) });
    }
  }
  process.exit(0);
}

process.on("SIGTERM", () => shutdown("SIGTERM"));
process.on("SIGINT", () => shutdown("SIGINT"));

async function main() {
  log("started", { queues: QUEUES, server: BASE });
  let backoff = 0.5;
  while (!stopping) {
    pollAbort = new AbortController();
    try {
      const [status, job] = await post(
        "/api/v1/fetch",
        {
          queues: QUEUES,
          worker_id: WORKER_ID,
          hostname: hostname(),
          timeout: POLL_SECONDS,
          lease_duration: LEASE_SECONDS,
        },
        pollAbort.signal,
      );
      backoff = 0.5;
      if (status === 204 || stopping) continue; // nothing arrived within the long-poll
      await runJob(job);
    } catch (err) {
      if (stopping) break;
      // The server is restarting (503) or unreachable: wait and try again, never die of it.
      log("fetch failed; retrying", { error: String(err), in_seconds: backoff });
      await sleep(backoff * 1000);
      backoff = Math.min(backoff * 2, 10);
    }
  }
}

await main();
