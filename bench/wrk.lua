-- wrk script for bench/wrk.sh: POSTs one AWS JSON protocol call per request.
-- The body and the target come from the environment (WRK_TARGET, WRK_BODY) so one script serves
-- both StartSyncExecution and StartExecution; without a name, the server generates a unique one
-- per execution, so one fixed body is a fresh execution every time.
wrk.method = "POST"
wrk.body = os.getenv("WRK_BODY")
wrk.headers["Content-Type"] = "application/x-amz-json-1.0"
wrk.headers["X-Amz-Target"] = os.getenv("WRK_TARGET")

-- Summary lines bench/wrk.sh parses: percentiles in microseconds and the non-2xx count.
done = function(summary, latency, requests)
  local bad = summary.errors.status + summary.errors.connect + summary.errors.read
    + summary.errors.write + summary.errors.timeout
  io.write(string.format("WRK_RESULT requests=%d duration_us=%d errors=%d p50_us=%d p90_us=%d p99_us=%d\n",
    summary.requests, summary.duration, bad,
    latency:percentile(50), latency:percentile(90), latency:percentile(99)))
end
