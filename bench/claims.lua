-- wrk script: POST the claims of a file (one JSON body per line, "claim_id" first).
-- usage: wrk -s bench/claims.lua URL -- FILE API_KEY THREADS
-- Thread i of n sends lines i+1, i+1+n, ... so no two requests share a claim_id. If a file runs
-- out, the next pass prefixes every claim_id ("w1-...") so the service never sees a replay.

local next_id = 0

function setup(thread)
  thread:set("thread_id", next_id)
  next_id = next_id + 1
end

function init(args)
  bodies = {}
  for line in io.lines(args[1]) do
    bodies[#bodies + 1] = line
  end
  headers = {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. args[2]}
  stride = tonumber(args[3] or "1")
  index = thread_id + 1 - stride
  pass = 0
end

function request()
  index = index + stride
  if index > #bodies then
    pass = pass + 1
    index = index - #bodies
  end
  local body = bodies[index]
  if pass > 0 then
    body = body:gsub('^{"claim_id":"', '{"claim_id":"w' .. pass .. '-', 1)
  end
  return wrk.format("POST", nil, headers, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"errors":{"connect":%d,"read":%d,"write":%d,' ..
    '"status":%d,"timeout":%d},"latency_us":{"mean":%.1f,"max":%d,"p50":%d,"p95":%d,"p99":%d}}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency.max, latency:percentile(50), latency:percentile(95), latency:percentile(99)))
end
