#!/usr/bin/env bash
# A Jobbie worker in shell, with curl and jq: runs a command for each job.
#
#   JOBBIE_URL=http://127.0.0.1:8080 examples/shell/worker.sh QUEUE[,QUEUE...] COMMAND [ARGS...]
#
# The job's payload is the command's stdin; its stdout is the job's result (JSON, or else kept
# as a string); a non-zero exit fails the attempt with the exit status and the last lines of
# stderr (the server retries with backoff). While the command runs, the worker heartbeats; if
# the server answers "cancel" or "lost", the command is stopped. SIGTERM or SIGINT stops the
# command, hands the job back with `release` (no retry is used) and exits.
#
# Settings (environment): JOBBIE_URL, JOBBIE_API_KEY, WORKER_ID, LEASE_SECONDS (60),
# POLL_SECONDS (long-poll timeout, 30).
set -uo pipefail

[ $# -ge 2 ] || { echo "usage: $0 QUEUES COMMAND [ARGS...]" >&2; exit 2; }
QUEUES=$1
shift
URL=${JOBBIE_URL:-http://127.0.0.1:8080}
URL=${URL%/}
WORKER_ID=${WORKER_ID:-sh-$(hostname)-$$}
LEASE_SECONDS=${LEASE_SECONDS:-60}
POLL_SECONDS=${POLL_SECONDS:-30}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

log() { jq -cn --arg w "$WORKER_ID" --arg m "$1" '{worker: $w, message: $m}'; }

AUTH=()
[ -n "${JOBBIE_API_KEY:-}" ] && AUTH=(-H "Authorization: Bearer $JOBBIE_API_KEY")

# api PATH BODY: POST JSON; the answer's body goes to $WORK/answer, the status (000 when the
# server could not be reached) is printed.
api() {
  curl -s -o "$WORK/answer" -w '%{http_code}' -X POST "$URL$1" "${AUTH[@]}" \
       -H 'Content-Type: application/json' --data-binary "$2"
}

stopping=0
pid=""
poll_pid=""
job_id=""
fence=""
on_signal() {
  stopping=1
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null; fi
  if [ -n "$poll_pid" ]; then kill "$poll_pid" 2>/dev/null; fi
}
trap on_signal TERM INT

queues_json=$(jq -cn --arg q "$QUEUES" '$q | split(",")')
fetch_body=$(jq -cn --argjson q "$queues_json" --arg w "$WORKER_ID" --arg h "$(hostname)" \
  --argjson t "$POLL_SECONDS" --argjson l "$LEASE_SECONDS" \
  '{queues: $q, worker_id: $w, hostname: $h, timeout: $t, lease_duration: $l}')
# Heartbeat every third of the lease, counted in ticks of 0.2 s (LEASE_SECONDS may be fractional).
beat_ticks=$(jq -n --argjson l "$LEASE_SECONDS" '[($l * 5 / 3) | floor, 1] | max')
log "started on $QUEUES"

while [ "$stopping" = 0 ]; do
  # The long-poll runs in the background so that a signal is handled at once; curl itself is
  # the background job, so the signal handler can end it (an orphaned long-poll would lease a
  # job to nobody).
  curl -s -o "$WORK/answer" -w '%{http_code}' -X POST "$URL/api/v1/fetch" "${AUTH[@]}" \
       -H 'Content-Type: application/json' --data-binary "$fetch_body" > "$WORK/status" &
  poll_pid=$!
  wait "$poll_pid" 2>/dev/null
  poll_pid=""
  [ "$stopping" = 1 ] && break
  status=$(cat "$WORK/status")
  case "$status" in
    204) continue ;;  # nothing arrived within the long-poll
    200) ;;
    *) log "fetch answered $status; retrying in 2 s"; sleep 2; continue ;;
  esac
  job_id=$(jq -r .job_id "$WORK/answer")
  attempt=$(jq -r .attempt "$WORK/answer")
  fence=$(jq -cn --arg w "$WORKER_ID" --argjson a "$attempt" '{worker_id: $w, attempt: $a}')
  jq -c '.payload' "$WORK/answer" > "$WORK/payload"

  "$@" < "$WORK/payload" > "$WORK/stdout" 2> "$WORK/stderr" &
  pid=$!
  heard=ok
  ticks=0
  while kill -0 "$pid" 2>/dev/null && [ "$stopping" = 0 ]; do
    # Look at the command five times a second (in the background, so a signal interrupts the
    # wait) and heartbeat every third of the lease.
    sleep 0.2 & wait $! 2>/dev/null
    ticks=$((ticks + 1))
    [ $((ticks % beat_ticks)) = 0 ] || continue
    kill -0 "$pid" 2>/dev/null && [ "$stopping" = 0 ] || break
    beat=$(jq -cn --arg w "$WORKER_ID" --arg j "$job_id" --argjson a "$attempt" \
      '{worker_id: $w, jobs: {($j): {attempt: $a}}}')
    if [ "$(api /api/v1/heartbeat "$beat")" = 200 ]; then
      heard=$(jq -r --arg j "$job_id" '.jobs[$j].status' "$WORK/answer")
      if [ "$heard" != ok ]; then kill "$pid" 2>/dev/null; break; fi
    fi
  done
  wait "$pid" 2>/dev/null
  code=$?
  pid=""

  if [ "$stopping" = 1 ]; then
    # Back to pending at once, attempt not counted: a deploy never burns a retry.
    api "/api/v1/release/$job_id" "$fence" > /dev/null
    log "released $job_id"
    break
  fi
  if [ "$heard" = lost ]; then
    log "lease lost on $job_id: another worker may run it; dropping it"
    continue
  fi
  if [ "$code" = 0 ]; then
    # JSON output is the result; anything else is kept as one string.
    if ! result=$(jq -cs 'if length == 1 then .[0] else . end' "$WORK/stdout" 2>/dev/null); then
      result=$(jq -Rsc . "$WORK/stdout")
    fi
    body=$(jq -c --argjson r "${result:-null}" '. + {result: $r}' <<< "$fence")
    status=$(api "/api/v1/ack/$job_id" "$body")
    log "ack $job_id: $status $(cat "$WORK/answer")"
  else
    error="exit status $code"
    [ "$heard" = cancel ] && error="cancelled"
    body=$(jq -c --arg e "$error" --rawfile b "$WORK/stderr" \
      '. + {error: $e, backtrace: ($b | .[-10000:])}' <<< "$fence")
    status=$(api "/api/v1/fail/$job_id" "$body")
    log "fail $job_id: $status $(cat "$WORK/answer")"
  fi
done
log "stopped"
