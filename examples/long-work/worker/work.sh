#!/bin/sh
# The backfill worker: works through $CHUNKS chunks of $CHUNK_SECONDS seconds each, sending a
# heartbeat for its task token before each chunk (the Task's HeartbeatSeconds is the longest
# it may stay silent), then answers the task with its result. Stepyard gives the container
# STEPYARD_API_URL and STEPYARD_TASK_TOKEN (.waitForTaskToken, bridge network).
set -eu

: "${STEPYARD_API_URL:?}" "${STEPYARD_TASK_TOKEN:?}"
job="${JOB_ID:?}"
chunks="${CHUNKS:?}"
chunk_seconds="${CHUNK_SECONDS:-1}"

call() { # call PATH JSON: POST to the API; fails on an error answer
  wget -q -O /dev/null --header 'Content-Type: application/json' --post-data "$2" "$STEPYARD_API_URL$1"
}

start=$(date +%s)
i=0
while [ "$i" -lt "$chunks" ]; do
  if ! call /v1/task-tokens/heartbeat "{\"task_token\": \"$STEPYARD_TASK_TOKEN\"}"; then
    echo "job $job: the task no longer waits for this worker (timed out or stopped); giving up"
    exit 1
  fi
  i=$((i + 1))
  echo "job $job: heartbeat, chunk $i of $chunks"
  sleep "$chunk_seconds"
done
seconds=$(( $(date +%s) - start ))
echo "job $job: done in ${seconds}s"
call /v1/task-tokens/success "{\"task_token\": \"$STEPYARD_TASK_TOKEN\", \"output\": {\"job_id\": \"$job\", \"chunks_done\": $i, \"seconds\": $seconds}}"
