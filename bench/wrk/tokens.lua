-- make bench: wrk sends GET /rest/api/2/myself with the Authorization header values of the
-- file $BENCH_TOKENS (one a line) round-robin, and writes its figures as JSON to
-- $BENCH_RESULT when done. Requests are formatted once, in init (after wrk has set the Host
-- header), so the Lua per request is a table lookup and the load generator stays cheap.
local requests = {}
local next_request = 0

function init(_)
  for line in io.lines(os.getenv("BENCH_TOKENS")) do
    if #line > 0 then
      requests[#requests + 1] = wrk.format("GET", "/rest/api/2/myself", { ["Authorization"] = line })
    end
  end
end

function request()
  next_request = next_request % #requests + 1
  return requests[next_request]
end

function done(summary, latency, _)
  local out = assert(io.open(os.getenv("BENCH_RESULT"), "w"))
  local e = summary.errors
  out:write(string.format(
    '{"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}}\n',
    summary.requests, summary.duration, math.floor(latency:percentile(50)), math.floor(latency:percentile(99)),
    e.connect, e.read, e.write, e.status, e.timeout))
  out:close()
end
