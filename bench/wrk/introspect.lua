-- make bench-tokens: wrk sends POST /introspect as the filter does (Basic client credentials,
-- a form body with one valid API token), from $BENCH_AUTH and $BENCH_TOKEN. The request is
-- formatted once, in init, so the load generator stays cheap.
local formatted

function init(_)
  formatted = wrk.format("POST", "/introspect", {
    ["Authorization"] = os.getenv("BENCH_AUTH"),
    ["Content-Type"] = "application/x-www-form-urlencoded",
  }, "token=" .. os.getenv("BENCH_TOKEN"))
end

function request()
  return formatted
end
