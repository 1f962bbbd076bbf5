#!/bin/sh
# make bench-v8: tokengate's own per-request work under V8 (Node.js), without Envoy, with
# function names: RS256 with 1,000 cached tokens, and uncached with the host checking RSA; OAuth
# 1.0a RSA-SHA1 signed requests (answer cached, host checking RSA). V8_TTLS="" skips the RS256 cases.
# Inputs: target/bench/tokens (make bench-inputs) and an unstripped module in target/bench-v8.
set -eu
cd "$(dirname "$0")/../.."
wasm=target/bench-v8/wasm32-wasip1/release/tokengate.wasm
out=target/bench-v8
requests=${V8_REQUESTS:-100000}
for ttl in ${V8_TTLS-300 0}; do
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
# OAuth 1.0a (issue 13): RSA-SHA1 signed GET requests, the access token's answer cached (one
# callout, answered by this host), the signature checked on every request by the host's
# verify_signature, each signed request sent once (its nonce).
oauth1_requests=${V8_OAUTH1_REQUESTS:-40000}
python3 - > "$out/oauth1.json" <<'PY'
import json
print(json.dumps({"oauth1_providers": {"applinks": {
    "introspection": {"cluster": "introspection", "path": "/introspect", "client_id": "tokengate", "client_secret": "bench-secret"},
    "cache_ttl_seconds": 300, "public_base_url": "https://jira.bench.example", "timestamp_window_seconds": 86400,
    "nonce_store": {"buckets": 4096, "per_bucket": 64}}},
    "rules": [{"path_prefix": "/", "providers": ["applinks"]}]}))
PY
python3 - > "$out/oauth1-answer.json" <<'PY'
import json, time
key = open("target/bench/tokens/oauth1-consumer.b64").read().strip()
print(json.dumps({"active": True, "token_type": "oauth1_access_token", "username": "bench-user",
                  "client_id": "bench-consumer", "exp": int(time.time()) + 86400, "consumer_public_key": key}))
PY
lines=$(wc -l < target/bench/tokens/oauth1-rsa-sha1.txt)
echo "== OAuth 1.0a RSA-SHA1, one access token, answer cached, each request once (host checks RSA)"
rm -rf "$out/prof-oauth1" && mkdir -p "$out/prof-oauth1"
HOST_VERIFIES=1 ONCE=1 ANSWER="$out/oauth1-answer.json" node --no-warnings --cpu-prof --cpu-prof-interval 50 \
	--cpu-prof-dir "$out/prof-oauth1" bench/v8/host.mjs "$wasm" "$out/oauth1.json" \
	target/bench/tokens/oauth1-rsa-sha1.txt "$oauth1_requests"
python3 bench/v8/profile.py "$out"/prof-oauth1/*.cpuprofile "$lines"
