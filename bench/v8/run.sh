#!/bin/sh
# make bench-v8: tokengate's own per-request work under V8 (Node.js), without Envoy, with
# function names: RS256 with 1,000 cached tokens, and uncached with the host checking RSA.
# Inputs: target/bench/tokens (make bench-inputs) and an unstripped module in target/bench-v8.
set -eu
cd "$(dirname "$0")/../.."
wasm=target/bench-v8/wasm32-wasip1/release/tokengate.wasm
out=target/bench-v8
requests=${V8_REQUESTS:-100000}
for ttl in 300 0; do
	python3 - "$ttl" > "$out/rs256-ttl$ttl.json" <<'PY'
import json, sys
jwks = json.load(open("target/bench/tokens/jwks-rs256.json"))
print(json.dumps({"jwt_providers": {"idp": {"issuer": "https://idp.example.com", "audiences": ["jira"],
      "local_jwks": jwks, "cache_ttl_seconds": int(sys.argv[1])}}}))
PY
	echo "== RS256, 1,000 tokens, cache_ttl_seconds $ttl (host checks RSA)"
	rm -rf "$out/prof-$ttl" && mkdir -p "$out/prof-$ttl"
	HOST_VERIFIES=1 node --no-warnings --cpu-prof --cpu-prof-interval 50 --cpu-prof-dir "$out/prof-$ttl" \
		bench/v8/host.mjs "$wasm" "$out/rs256-ttl$ttl.json" target/bench/tokens/rs256-1000.txt "$requests"
	python3 bench/v8/profile.py "$out"/prof-$ttl/*.cpuprofile $((requests + 21000))
done
