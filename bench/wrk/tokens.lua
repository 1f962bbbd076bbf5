-- make bench: wrk sends GET /rest/api/2/myself with the Authorization header values of the
-- file $BENCH_TOKENS (one a line) round-robin, starting at line $BENCH_START + 1 (default 1),
-- and writes its figures as JSON to $BENCH_RESULT when done, with `sent`: how many requests
-- it wrote (completed ones plus those still in flight at the end), so a following run can
-- carry on where this one stopped. Requests are formatted once, in init (after wrk has set the
-- Host header), so the Lua per request is a table lookup and the load generator stays cheap.
local requests = {}
local threads = {}
-- Globals of the thread's Lua state, read back by done() through thread:get.
next_request = tonumber(os.getenv("BENCH_START") or "0")
sent = 0

function setup(thread)
  threads[#threads + 1] = thread
end

function init(_)
  for line in io.lines(os.getenv("BENCH_TOKENS")) do
    if #line > 0 then
      requests[#requests + 1] = wrk.format("GET", "/rest/api/2/myself", { ["Authorization"] = line })
    end
  end
  next_request = next_request % #requests
end

function request()
  next_request = next_request % #requests + 1
  sent = sent + 1
  return requests[next_request]
end

function done(summary, latency, _)
  local total_sent = 0
  for _, thread in ipairs(threads) do
    total_sent = total_sent + thread:get("sent")
  end
  local out = assert(io.open(os.getenv("BENCH_RESULT"), "w"))
  local e = summary.errors
  out:write(string.format(
    '{"requests":%d,"sent":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}}\n',
    summary.requests, total_sent, summary.duration, math.floor(latency:percentile(50)),
    math.floor(latency:percentile(99)), e.connect, e.read, e.write, e.status, e.timeout))
  out:close()
end
