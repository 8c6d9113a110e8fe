-- Shared by earn.lua and member.lua: the members sample, the key, and done()'s JSON line.
-- Environment: WRK_API_KEY (the channel key), WRK_MEMBERS (a file of member public ids, one a
-- line), WRK_RUN (a word unique to this run: purchase references and idempotency keys).

local thread_count = 0

function setup(thread)
  thread:set("thread_number", thread_count)
  thread_count = thread_count + 1
end

members = {}
counter = 0
run = os.getenv("WRK_RUN") or tostring(os.time())
headers = {
  ["Authorization"] = "Api-Key " .. (os.getenv("WRK_API_KEY") or ""),
  ["Content-Type"] = "application/json",
}

function init(args)
  for line in io.lines(os.getenv("WRK_MEMBERS")) do
    members[#members + 1] = line
  end
  math.randomseed(os.time() + (thread_number or 0) * 7919)
end

function member()
  return members[math.random(#members)]
end

-- One JSON line that bench/api_earn.py reads: latencies in microseconds, counts.
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests": %d, "duration_us": %d, "non_2xx_or_3xx": %d, ' ..
    '"socket_errors": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d}\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
