# tokengate: `make run` starts the demo, `make test` runs every test (what CI runs).
WASM := target/wasm32-wasip1/release/tokengate.wasm
ENVOY = $(shell scripts/envoy-bin)

.PHONY: run test tools envoy wasm demo lint unit validate acceptance clean

run: tools wasm demo
	scripts/run-demo

test: tools lint unit wasm validate acceptance

tools:
	@command -v rustup >/dev/null && { rustup target list --installed | grep -qx wasm32-wasip1 || rustup target add wasm32-wasip1; } || true
	@command -v rustup >/dev/null && rustup component add rustfmt clippy >/dev/null 2>&1 || true
	@scripts/envoy-bin >/dev/null

wasm:
	cargo build --release --target wasm32-wasip1 -p tokengate

demo:
	cargo build --release -p tokengate-demo -p tokengate-tokens

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	cargo clippy -p tokengate --lib --target wasm32-wasip1 -- -D warnings

unit:
	cargo test --workspace --lib --bins

validate: wasm
	@for f in envoy/*.yaml; do "$(ENVOY)" --mode validate -c "$$f" --log-level warn || exit 1; done

acceptance: wasm
	cargo build -p tokengate-tokens
	ENVOY_BIN="$(ENVOY)" cargo test -p tokengate --test '*'
	cargo test -p tokengate-tokens --test '*'

clean:
	cargo clean
	rm -rf .venv .run
