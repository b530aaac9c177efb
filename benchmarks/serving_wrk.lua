-- wrk script for benchmarks/serving.py: POST one JSON body per request, print a JSON summary.
--
--   SERVING_BODY_FILE=body.json wrk -t1 -c32 -d15s --latency -s serving_wrk.lua URL
--
-- The body is read once, at load (the script runs in each wrk thread), so wrk sends a static
-- request and calls no Lua per request. done() prints one line starting with WRK_JSON that
-- serving.py parses; latencies are in microseconds. wrk is a closed-loop generator: a slow
-- response delays the next request on its connection, so latency percentiles under load are
-- optimistic (coordinated omission); throughput figures are not affected.

local path = os.getenv("SERVING_BODY_FILE")
if path == nil then
   error("set SERVING_BODY_FILE to the file holding the JSON request body")
end
local file = assert(io.open(path, "rb"))
wrk.method = "POST"
wrk.body = file:read("*a")
file:close()
wrk.headers["Content-Type"] = "application/json"

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'WRK_JSON {"requests": %d, "duration_us": %d, "bytes": %d, ' ..
      '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
      '"latency_us": {"min": %d, "mean": %.2f, "stdev": %.2f, "max": %d, ' ..
      '"p50": %d, "p90": %d, "p99": %d, "p999": %d}}\n',
      summary.requests, summary.duration, summary.bytes,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency.min, latency.mean, latency.stdev, latency.max,
      latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency:percentile(99.9)))
end
