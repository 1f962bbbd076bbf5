# tokengate: `make run` starts the demo, `make test` runs every test (what CI runs).
WASM := target/wasm32-wasip1/release/tokengate.wasm
ENVOY = $(shell scripts/envoy-bin)

.PHONY: run test tools envoy wasm demo lint unit validate hosttest acceptance pytools tomcat clean bench bench-core bench-envoy bench-soak bench-inputs bench-tools bench-v8 bench-baseline

run: tools wasm demo
	scripts/run-demo

test: tools lint unit wasm validate hosttest acceptance

tools:
	@command -v rustup >/dev/null && { rustup target list --installed | grep -qx wasm32-wasip1 || rustup target add wasm32-wasip1; } || true
	@command -v rustup >/dev/null && rustup component add rustfmt clippy >/dev/null 2>&1 || true
	@scripts/envoy-bin >/dev/null

wasm:
	cargo build --release --target wasm32-wasip1 -p tokengate

demo:
	cargo build --release -p tokengate-demo -p tokengate-tokens

lint:
	scripts/import-graph --self-test
	scripts/import-graph
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	cargo clippy -p tokengate -p tokengate-core --lib --target wasm32-wasip1 -- -D warnings

unit:
	cargo test --workspace --lib --bins

validate: wasm
	@for f in envoy/*.yaml; do "$(ENVOY)" --mode validate -c "$$f" --log-level warn || exit 1; done

# The built module under a scripted proxy-wasm host in Node.js (tests/host/): the tests decide the
# order and timing of every callout answer, request and clock tick. Debian's nodejs (sudo only
# when not root) if `node` is missing.
hosttest: wasm
	@command -v node >/dev/null || { \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
		$$SUDO apt-get install -y nodejs || { $$SUDO apt-get update && $$SUDO apt-get install -y nodejs; }; }
	node --test tests/host/*.test.mjs

# The client libraries tests/clients.rs runs, pinned, in the project's virtualenv.
# pyjwt and cryptography: oauthlib's RSA-SHA1 (requests-oauthlib's SIGNATURE_RSA) needs them.
# jira (jira-python): tests/oauth1.rs signs with its JIRA(oauth={...}), which tries the given
# signature_method, then HMAC-SHA1, then RSA-SHA1, calling myself() each time.
PYTOOLS := atlassian-python-api==5.0.5 requests==2.34.2 schemathesis==4.32.5 pyjwt==2.15.1 cryptography==50.0.2 \
	jira==3.10.5

pytools:
	@test -x .venv/bin/python || python3 -m venv .venv
	@.venv/bin/pip install --quiet --disable-pip-version-check $(PYTOOLS)

acceptance: wasm pytools tomcat
	cargo build -p tokengate-tokens
	ENVOY_BIN="$(ENVOY)" cargo test -p tokengate --test '*'
	cargo test -p tokengate-tokens --test '*'
	cargo test -p tokengate-basic-auth --test '*'
	cargo test -p tokengate-oauth1 --test '*'

# Tomcat 10 for tests/paths.rs (Debian's tomcat10-common: the server without the system
# service, so nothing is left listening on 8080; the test starts its own on a free port), and
# a JDK to compile its probe servlet. sudo only when not root.
tomcat:
	@test -f /usr/share/tomcat10/bin/bootstrap.jar && command -v javac >/dev/null || { \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
		PKGS="tomcat10-common default-jdk-headless"; \
		$$SUDO apt-get install -y --no-install-recommends $$PKGS || \
			{ $$SUDO apt-get update && $$SUDO apt-get install -y --no-install-recommends $$PKGS; }; }

# PostgreSQL from Debian's packages (sudo only when not root), for the token service's tests:
# they run initdb and the server from /usr/lib/postgresql/*/bin in a throw-away cluster of
# their own (tokenservice/tests/common/postgres.rs), never Debian's default cluster.
.PHONY: postgres
acceptance: postgres
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
		$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql || { \
		$$SUDO apt-get update && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql; }; }

# Benchmarks (not part of `make test`); see BENCHMARKS.md. `make bench` runs both and writes
# the Envoy results into BENCHMARKS.md and bench/throughput.svg.
BENCH_ARGS ?= --rounds 5 --duration 5 --warmup 2
BENCH_CORE_ARGS ?=

bench: bench-core bench-envoy bench-tokens

bench-core:
	cargo bench -p tokengate --bench core -- $(BENCH_CORE_ARGS)

bench-envoy: bench-inputs bench-baseline
	BENCH_COMMAND="make bench-envoy BENCH_ARGS='$(BENCH_ARGS)' BENCH_BASELINE_REV=$(BENCH_BASELINE_REV)" ENVOY_BIN="$(ENVOY)" \
		python3 bench/run.py $(BENCH_ARGS) --baseline-wasm $(BENCH_BASELINE_WASM) \
		--baseline-rev $(BENCH_BASELINE_REV) --publish

# The module of $(BENCH_BASELINE_REV) (the last commit before issue 12), built from `git archive`
# into $(BENCH_BASELINE) (rebuilt when the revision changes): bench-envoy measures its cached
# RS256, uncached RS256 and warm introspection rows beside the same rows of today's module.
BENCH_BASELINE_REV ?= 2407502
BENCH_BASELINE = target/bench/baseline
BENCH_BASELINE_WASM = $(BENCH_BASELINE)/target/wasm32-wasip1/release/tokengate.wasm
bench-baseline:
	test -f $(BENCH_BASELINE_WASM) && test "$$(cat $(BENCH_BASELINE)/rev 2>/dev/null)" = "$(BENCH_BASELINE_REV)" || { \
		rm -rf $(BENCH_BASELINE) && mkdir -p $(BENCH_BASELINE)/src && \
		git archive $(BENCH_BASELINE_REV) | tar -x -C $(BENCH_BASELINE)/src && \
		cargo build --release --target wasm32-wasip1 -p tokengate --manifest-path $(BENCH_BASELINE)/src/Cargo.toml \
			--target-dir $(BENCH_BASELINE)/target && \
		echo "$(BENCH_BASELINE_REV)" > $(BENCH_BASELINE)/rev; }

# Memory over a long run with 100,000 distinct tokens (not part of `make bench`).
SOAK_SECONDS ?= 300
bench-soak: bench-inputs
	target/release/tokengate-bench soak-tokens target/bench/tokens 100000
	BENCH_COMMAND="make bench-soak SOAK_SECONDS=$(SOAK_SECONDS)" ENVOY_BIN="$(ENVOY)" \
		python3 bench/run.py --soak $(SOAK_SECONDS) --publish

# tokengate's own per-request work under V8 (Node.js) with function names, without Envoy
# (not part of `make bench`); see BENCHMARKS.md.
bench-v8: bench-inputs
	@command -v node >/dev/null || { \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
		$$SUDO apt-get install -y nodejs || { $$SUDO apt-get update && $$SUDO apt-get install -y nodejs; }; }
	CARGO_PROFILE_RELEASE_STRIP=false cargo build --release --target wasm32-wasip1 -p tokengate \
		--target-dir target/bench-v8
	bench/v8/run.sh

# The token service alone: introspection idle, beside slow bodies and beside password guessing,
# with the tiny_http build of $(TOKENS_OLD_REV) (the last commit before issue 11) beside it.
TOKENS_OLD_REV ?= 550c57d
TOKENS_OLD = target/bench/old-tokens
# BENCH_TOKENS_ARGS: e.g. --duration 5 (seconds per row), --stores sqlite (no PostgreSQL rows).
BENCH_TOKENS_ARGS ?=
.PHONY: bench-tokens
bench-tokens: bench-tools postgres
	cargo build --release -p tokengate-tokens
	test -x $(TOKENS_OLD)/target/release/tokengate-tokens || { rm -rf $(TOKENS_OLD) && mkdir -p $(TOKENS_OLD)/src && \
		git archive $(TOKENS_OLD_REV) | tar -x -C $(TOKENS_OLD)/src && \
		cargo build --release -p tokengate-tokens --manifest-path $(TOKENS_OLD)/src/Cargo.toml --target-dir $(TOKENS_OLD)/target; }
	BENCH_COMMAND="make bench-tokens BENCH_TOKENS_ARGS='$(BENCH_TOKENS_ARGS)'" python3 bench/tokens.py \
		--old $(TOKENS_OLD)/target/release/tokengate-tokens $(BENCH_TOKENS_ARGS) --publish

# The modules, fresh keys and tokens (target/bench/tokens, never in git), and wrk. The OAuth 1.0a
# row sends each pre-signed request once per Envoy: BENCH_OAUTH1_REQUESTS must exceed what one
# Envoy answers in warm-up plus measured load (bench/run.py fails the row otherwise); signing them
# takes about 3 ms of CPU each.
BENCH_OAUTH1_REQUESTS ?= 60000
bench-inputs: tools wasm bench-tools
	cargo build --release --target wasm32-wasip1 -p tokengate-wasm-floor
	cargo build --release -p tokengate-bench
	target/release/tokengate-bench tokens target/bench/tokens
	target/release/tokengate-bench oauth1-requests target/bench/tokens $(BENCH_OAUTH1_REQUESTS)

# wrk from Debian's packages (sudo only when not root).
bench-tools:
	@command -v wrk >/dev/null || { \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
		$$SUDO apt-get install -y wrk || { $$SUDO apt-get update && $$SUDO apt-get install -y wrk; }; }

clean:
	cargo clean
	rm -rf .venv .run
