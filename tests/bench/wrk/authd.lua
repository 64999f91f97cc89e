-- wrk script for authd's own endpoints, reporting like ../shared/bench/wrk/client_credentials.lua
-- (one RESULT line) plus estimates for the answered (status 200) requests alone.
-- Env: AUTHD_MODE  v1 (POST /v1/token with X-API-Key: $API_KEY, scope read:things) | get (plain GET)
--      API_KEY     the key for v1
-- Usage: wrk -t1 -c64 -d10s --latency -s authd.lua http://127.0.0.1:8000/v1/token

local mode = os.getenv("AUTHD_MODE") or "v1"
if mode == "v1" then
  wrk.method = "POST"
  wrk.headers["X-API-Key"] = os.getenv("API_KEY") or ""
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
  wrk.headers["Accept"] = "application/json"
  wrk.body = "scope=read%3Athings"
else
  wrk.method = "GET"
end

non200 = 0  -- global so done() can read it per thread
function response(status, headers, body)
  if status ~= 200 then non200 = non200 + 1 end
end

local threads = {}
function setup(thread) table.insert(threads, thread) end

function done(summary, latency, requests)
  local bad = 0
  for _, t in ipairs(threads) do bad = bad + (t:get("non200") or 0) end
  local secs = summary.duration / 1e6
  -- Shed answers (503) are sent before any work, so they are the fastest ones: the
  -- answered requests' percentile p sits at (shed + p * answered) of all answers.
  local share = 1
  if summary.requests > 0 then share = (summary.requests - bad) / summary.requests end
  local function answered(p)
    if share <= 0 then return 0 end
    return latency:percentile(math.min(100, 100 * (1 - share) + p * share)) / 1000
  end
  io.write(string.format(
    "RESULT rps=%.1f requests=%d duration_s=%.2f p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f max_ms=%.2f non200=%d socket_errors=%d timeouts=%d ok_p50_ms=%.2f ok_p99_ms=%.2f\n",
    summary.requests / secs, summary.requests, secs,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000, bad,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.timeout, answered(50), answered(99)))
end
