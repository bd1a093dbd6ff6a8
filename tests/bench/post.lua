-- post.lua: wrk script for the intake benchmark. Every request POSTs the same JSON body
-- (BENCH_BODY, a file) with Content-Type application/json and, when BENCH_TOKEN is set,
-- "Authorization: Bearer BENCH_TOKEN". At the end it prints the run as "wrk_NAME VALUE"
-- lines (latencies in microseconds) for intake_bench.sh to read.

local path = os.getenv("BENCH_BODY")
if not path or path == "" then
  error("BENCH_BODY (the file to post) is not set")
end
local f = assert(io.open(path, "rb"))
wrk.body = f:read("*a")
f:close()
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local token = os.getenv("BENCH_TOKEN")
if token and token ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. token
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("wrk_requests %d\n", summary.requests))
  io.write(string.format("wrk_duration_us %d\n", summary.duration))
  -- errors.status counts answers with a status above 399 (a 429 or 503 is not accepted)
  io.write(string.format("wrk_errors_status %d\n", e.status))
  io.write(string.format("wrk_errors_socket %d\n", e.connect + e.read + e.write + e.timeout))
  io.write(string.format("wrk_latency_p50_us %d\n", latency:percentile(50)))
  io.write(string.format("wrk_latency_p90_us %d\n", latency:percentile(90)))
  io.write(string.format("wrk_latency_p99_us %d\n", latency:percentile(99)))
  io.write(string.format("wrk_latency_max_us %d\n", latency.max))
end
