#!/usr/bin/env python3
"""make bench: tokengate against Envoy's native jwt_authn, side by side, in one run.

Starts an upstream Envoy (direct_response, outside the measurement), then for each round and
each configuration in turn a measured Envoy (--concurrency 1) with that configuration, checks
it answers 200 with a token (and 401 without one, where it authenticates), warms it up, and
drives it with wrk (bench/wrk/tokens.lua: the configuration's tokens round-robin). Reports the
medians over the rounds: requests/s, p50 and p99 latency, Envoy CPU seconds per 10k requests
(utime+stime from /proc/<pid>/stat around the measured run), module load time (Envoy start to
admin /ready) and Envoy RSS.

Every YAML is validated with `envoy --mode validate` before anything runs. Every process
started here is stopped on exit, on Ctrl-C and on errors. Readiness is polled on the admin port.

A configuration is one entry of SETUPS below. Inputs: target/bench/tokens/ from
`tokengate-bench tokens` (make bench makes it), the built .wasm modules, $ENVOY_BIN or
scripts/envoy-bin, and wrk on the PATH. Outputs: target/bench/results.json and results.md,
and with --publish the results section of BENCHMARKS.md and bench/throughput.svg.

With --baseline-wasm PATH (make bench passes the module of $(BENCH_BASELINE_REV)), the rows of
BASELINE_ROWS are also measured with that module, as rows of their own beside the new module's,
the two alternating within every round (which of them goes first alternates between rounds);
a table then gives each pair's Envoy CPU per request and their ratio.

Python 3 standard library only.
"""

from __future__ import annotations

import argparse
import atexit
import dataclasses
import datetime
import http.client
import json
import os
import platform
import re
import resource
import signal
import statistics
import string
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Optional

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
OUT = ROOT / "target" / "bench"
TOKENS = OUT / "tokens"
WASM_DIR = ROOT / "target" / "wasm32-wasip1" / "release"
TOKENGATE_WASM = WASM_DIR / "tokengate.wasm"
FLOOR_WASM = WASM_DIR / "tokengate_wasm_floor.wasm"
BENCH_BIN = ROOT / "target" / "release" / "tokengate-bench"
LUA = BENCH / "wrk" / "tokens.lua"
PUBLISHED_MD = ROOT / "BENCHMARKS.md"
PUBLISHED_SVG = BENCH / "throughput.svg"
BEGIN, END = "<!-- bench results: begin (written by bench/run.py) -->", "<!-- bench results: end -->"
# A run of some configurations (--only) is published here, so it never replaces the full table.
ONLY_BEGIN, ONLY_END = "<!-- bench only: begin (written by bench/run.py --only) -->", "<!-- bench only: end -->"
SOAK_BEGIN, SOAK_END = "<!-- bench soak: begin (written by bench/run.py --soak) -->", "<!-- bench soak: end -->"

# The claims `tokengate-bench tokens` signs (bench/src/main.rs).
ISSUER = "https://idp.example.com"
AUDIENCE = "jira"
TIS_ISSUER = "com.obss.plugin.time-in-status"
DISTINCT = 1000
# The introspection rows: the client credentials `tokengate-bench introspection-server` expects
# by default, and the counter of callouts tokengate made (read from the measured Envoy's /stats).
INTROSPECTION_CLIENT = ("tokengate", "bench-secret")
CALLOUTS_STAT = "wasmcustom.tokengate.introspection.callouts"
# The OAuth 1.0a row (issue 13): `tokengate-bench oauth1-requests` signs GET /rest/api/2/myself
# for this base URL (bench/src/signed_requests.rs), the provider's public_base_url, so the
# measured Envoy's free port is not part of the signature. Each line is sent once per Envoy
# (its nonce); the timestamp window is a day, as the JWTs are valid for a day, so requests
# signed by `make bench-inputs` are fresh through a whole run, and the nonce store holds every
# line of the file with room to spare (4,096 buckets of 64).
OAUTH1_BASE_URL = "https://jira.bench.example"
OAUTH1_REQUESTS = "oauth1-rsa-sha1"
OAUTH1_KEY = TOKENS / "oauth1-consumer.b64"
OAUTH1_NONCES = {"buckets": 4096, "per_bucket": 64}
# tokengate's answer cache (crates/core/src/opaque.rs, crates/core/src/cache.rs): 32,768 slots in buckets of 4; a full
# bucket gives up the entry that expires first. Which bucket a token's answer lives in comes
# from the module's own code (`tokengate-bench answer-buckets`).
WAYS = 4


def predicted_callouts(lines: list[str], sent: int) -> int:
    """Callouts for the first `sent` lines (round-robin) if every answer stays cached until a
    full bucket gives it up: the cache's layout replayed (timing and in-flight requests left
    out). With every answer's TTL the same, the entry that expires first is the oldest."""
    configuration = json.dumps(introspection_config())
    answer = subprocess.run([str(BENCH_BIN), "answer-buckets", "idp", configuration], input="\n".join(lines),
                            capture_output=True, text=True, check=True)
    bucket_of = [int(b) for b in answer.stdout.split()]
    buckets: dict[int, list[str]] = {}
    callouts = 0
    for i in range(sent):
        token = lines[i % len(lines)]
        bucket = buckets.setdefault(bucket_of[i % len(lines)], [])
        if token not in bucket:
            callouts += 1
            if len(bucket) >= WAYS:
                bucket.pop(0)
            bucket.append(token)
    return callouts

V8 = "envoy.wasm.runtime.v8"


# --- configurations ---------------------------------------------------------------------


def template(file: str, /, **values: str) -> str:
    """bench/envoy/<name> with ${...} filled in. A line that is only `${key}` takes the
    (multi-line) value at its indentation; template comments are dropped."""
    lines = []
    for line in (BENCH / "envoy" / file).read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            continue
        block = re.fullmatch(r"\$\{(\w+)\}", stripped)
        if block and "\n" in values.get(block.group(1), "\n"):
            indent = line[: len(line) - len(line.lstrip())]
            lines.extend(indent + v for v in values[block.group(1)].splitlines() if v.strip())
        else:
            lines.append(string.Template(line).substitute(values))
    return "\n".join(lines) + "\n"


def quoted(text: str) -> str:
    """A YAML double-quoted scalar (JSON string syntax is a subset of it)."""
    return json.dumps(text)


def jwks(alg: str) -> dict:
    return json.loads((TOKENS / f"jwks-{alg}.json").read_text())


def wasm_filter(name: str, module: Path, configuration: dict, runtime: str = V8) -> str:
    return template(
        "filter-wasm.yaml",
        name=name,
        wasm=quoted(str(module)),
        configuration=quoted(json.dumps(configuration)),
        runtime=runtime,
    )


def tokengate_jwt(alg: str, cache_ttl: Optional[int] = None, runtime: str = V8,
                  module: Path = TOKENGATE_WASM) -> Callable[[], str]:
    """tokengate (`module`) with one Bearer provider over an inline JWKS; `cache_ttl` None keeps
    the default (300 s), 0 turns the verified-token cache off."""

    def filters() -> str:
        idp = {"issuer": ISSUER, "audiences": [AUDIENCE], "local_jwks": jwks(alg)}
        if cache_ttl is not None:
            idp["cache_ttl_seconds"] = cache_ttl
        return wasm_filter("tokengate", module, {"jwt_providers": {"idp": idp}}, runtime)

    return filters


def tokengate_tisjwt() -> str:
    secret = (TOKENS / "hs256-secret.txt").read_text().strip()
    config = {"tisjwt": {"secret": secret, "issuer": TIS_ISSUER, "audiences": [TIS_ISSUER]}}
    return wasm_filter("tokengate", TOKENGATE_WASM, config)


def tokengate_introspection(module: Path = TOKENGATE_WASM) -> str:
    """tokengate (`module`) with one opaque-token provider: RFC 7662 introspection at the local
    introspection server (cluster `introspection`), default cache TTLs (300 s active, 10 s
    inactive), no directory."""
    return wasm_filter("tokengate", module, introspection_config())


def introspection_config() -> dict:
    """The configuration of `tokengate_introspection` (its answer keys are scoped by it)."""
    client_id, client_secret = INTROSPECTION_CLIENT
    provider = {
        "introspection": {"cluster": "introspection", "path": "/introspect",
                          "client_id": client_id, "client_secret": client_secret},
        "user_field": "username",
    }
    return {"oauth_providers": {"idp": provider}, "rules": [{"path_prefix": "/", "providers": ["idp"]}]}


def tokengate_oauth1() -> str:
    """tokengate with one OAuth 1.0a provider (application links) asking the local introspection
    server about the access token (design13's oauth1 question), its answer cached 300 s; the
    RSA-SHA1 signature and the nonce are checked on every request. No directory."""
    client_id, client_secret = INTROSPECTION_CLIENT
    provider = {
        "introspection": {"cluster": "introspection", "path": "/introspect",
                          "client_id": client_id, "client_secret": client_secret},
        "cache_ttl_seconds": 300,
        "public_base_url": OAUTH1_BASE_URL,
        "timestamp_window_seconds": 86400,
        "nonce_store": OAUTH1_NONCES,
    }
    config = {"oauth1_providers": {"applinks": provider}, "rules": [{"path_prefix": "/", "providers": ["applinks"]}]}
    return wasm_filter("tokengate", TOKENGATE_WASM, config)


def jwt_authn(cache_size: Optional[int]) -> Callable[[], str]:
    """Native jwt_authn over the same RS256 JWKS. `cache_size` None: no jwt_cache_config (no
    cache, Envoy's default); 0: `jwt_cache_config: {}` (cache of its default size, 100)."""

    def filters() -> str:
        if cache_size is None:
            cache = ""
        elif cache_size == 0:
            cache = "jwt_cache_config: {}\n"
        else:
            cache = f"jwt_cache_config: {{ jwt_cache_size: {cache_size} }}\n"
        return template(
            "filter-jwt-authn.yaml",
            issuer=quoted(ISSUER),
            audience=quoted(AUDIENCE),
            jwks=quoted(json.dumps(jwks("rs256"))),
            jwt_cache_config=cache,
        )

    return filters


@dataclasses.dataclass
class Setup:
    key: str
    group: str  # the configuration number in issue 6
    label: str
    tokens: str = f"rs256-{DISTINCT}"  # token file in target/bench/tokens, without .txt
    filters: Optional[Callable[[], str]] = None  # the http_filters before the router
    authenticates: bool = True  # a request without a credential must get 401
    pending: Optional[str] = None  # why the row is not measured (shown in the table)
    probe_runtime: Optional[str] = None  # measured only if this Envoy validates the runtime
    introspection: bool = False  # calls out to the local introspection server
    tokens_label: Optional[str] = None  # the tokens column, when not "1" or "1,000 round-robin"
    # Tokens the warm-up must send at least once (default: every line of the token file).
    warm_tokens: Optional[int] = None
    # Every line of the token file is sent at most once per Envoy (warm-up + measured load).
    no_repeat: bool = False
    # A row of the baseline module (--baseline-wasm): the key of the new module's row it is
    # measured against.
    baseline_of: Optional[str] = None
    # Each line can be used once (a signed request's nonce): the preflight's line 1 is not
    # sent again, the warm-up starts at line 2.
    single_use: bool = False
    # The OAuth 1.0a row: the introspection server's questions are counted, not the opaque
    # provider's callouts.
    oauth1: bool = False


SETUPS = [
    Setup("none", "1", "no auth filter (floor)", filters=lambda: "", authenticates=False),
    Setup(
        "wasm-floor",
        "1",
        "trivial proxy-wasm filter, reads `authorization` (Wasm floor)",
        filters=lambda: wasm_filter("floor", FLOOR_WASM, {}),
        authenticates=False,
    ),
    Setup("native", "2", "native jwt_authn RS256, no cache (default)", filters=jwt_authn(None)),
    Setup("native-cache2000", "2", "native jwt_authn RS256, jwt_cache_size 2000", filters=jwt_authn(2000)),
    Setup("native-cache100", "2", "native jwt_authn RS256, jwt_cache_config default (100)", filters=jwt_authn(0)),
    Setup("tg-rs256-1", "3", "tokengate RS256, cache on (300 s)", "rs256-1", tokengate_jwt("rs256")),
    Setup("tg-rs256", "3", "tokengate RS256, cache on (300 s)", filters=tokengate_jwt("rs256")),
    Setup("tg-rs256-1-nocache", "3", "tokengate RS256, cache off", "rs256-1", tokengate_jwt("rs256", 0)),
    Setup("tg-rs256-nocache", "3", "tokengate RS256, cache off", filters=tokengate_jwt("rs256", 0)),
    Setup("tg-es256", "4", "tokengate ES256, cache on", f"es256-{DISTINCT}", tokengate_jwt("es256")),
    Setup("tg-es256-nocache", "4", "tokengate ES256, cache off", f"es256-{DISTINCT}", tokengate_jwt("es256", 0)),
    Setup("tg-hs256", "4", "tokengate HS256 (TISJWT provider, no cache)", f"hs256-{DISTINCT}", tokengate_tisjwt),
    Setup(
        "tg-introspect-warm",
        "5",
        "tokengate introspection, warm cache (300 s)",
        f"opaque-{DISTINCT}",
        tokengate_introspection,
        introspection=True,
    ),
    # 9 requests in 10 over the same 1,000 cached tokens, the 10th a token never sent before:
    # a callout to the local introspection server while the request waits.
    Setup(
        "tg-introspect-miss10",
        "5",
        "tokengate introspection, 10% misses",
        "opaque-miss10",
        tokengate_introspection,
        introspection=True,
        tokens_label=f"{DISTINCT:,} round-robin + 10% new",
        warm_tokens=DISTINCT,
        no_repeat=True,
    ),
    # Issue 13: a new RSA-SHA1 signed request every time (pre-signed, a nonce each), one access
    # token whose answer is cached after the first request; verified like RS256 uncached (Envoy's
    # verify_signature), plus the base string and the nonce store's compare-and-swap.
    Setup(
        "tg-oauth1-rsa-sha1",
        "7",
        "tokengate OAuth 1.0a RSA-SHA1, access token cached (300 s), signature and nonce every request",
        OAUTH1_REQUESTS,
        tokengate_oauth1,
        introspection=True,
        tokens_label="1 access token, every request signed anew",
        warm_tokens=1,
        no_repeat=True,
        single_use=True,
        oauth1=True,
    ),
    Setup(
        "tg-rs256-wasmtime",
        "6",
        "tokengate RS256, cache on, wasmtime",
        filters=tokengate_jwt("rs256", runtime="envoy.wasm.runtime.wasmtime"),
        probe_runtime="envoy.wasm.runtime.wasmtime",
    ),
    Setup(
        "tg-rs256-wamr",
        "6",
        "tokengate RS256, cache on, WAMR",
        filters=tokengate_jwt("rs256", runtime="envoy.wasm.runtime.wamr"),
        probe_runtime="envoy.wasm.runtime.wamr",
    ),
]


# The rows measured with the baseline module too (--baseline-wasm), each with its filters
# built over a given module: cached RS256, uncached RS256, warm introspection.
BASELINE_ROWS: dict[str, Callable[[Path], Callable[[], str]]] = {
    "tg-rs256": lambda module: tokengate_jwt("rs256", module=module),
    "tg-rs256-nocache": lambda module: tokengate_jwt("rs256", 0, module=module),
    "tg-introspect-warm": lambda module: lambda: tokengate_introspection(module),
}
# The new module may cost this much more Envoy CPU per request than the baseline (issue 12).
BASELINE_TOLERANCE = 1.05


def with_baseline(module: Optional[Path]) -> list[Setup]:
    """SETUPS, and with a baseline module each row of BASELINE_ROWS followed by the same row
    over that module (same tokens, same configuration)."""
    if module is None:
        return list(SETUPS)
    out = []
    for setup in SETUPS:
        out.append(setup)
        if setup.key in BASELINE_ROWS:
            out.append(dataclasses.replace(
                setup,
                key=f"{setup.key}-baseline",
                label=f"{setup.label}, baseline module",
                filters=BASELINE_ROWS[setup.key](module),
                baseline_of=setup.key,
            ))
    return out


def round_order(measured: list[Setup], round_no: int) -> list[Setup]:
    """The order of one round: rotated by the round number, each row of the new module next to
    its baseline row, the baseline first in every other round."""
    units: list[list[Setup]] = []
    for setup in measured:
        if setup.baseline_of and units and units[-1][0].key == setup.baseline_of:
            units[-1].append(setup)
        else:
            units.append([setup])
    units = units[round_no % len(units):] + units[: round_no % len(units)]
    return [s for unit in units for s in (reversed(unit) if round_no % 2 else unit)]


SOAK_TOKENS = 100_000


def tokengate_bearer_hs256() -> str:
    secret = (TOKENS / "bearer-hs256-secret.txt").read_text().strip()
    idp = {"issuer": ISSUER, "audiences": [AUDIENCE], "hmac_secret": secret}
    return wasm_filter("tokengate", TOKENGATE_WASM, {"jwt_providers": {"idp": idp}})


# The memory soak (--soak SECONDS): cheap verifications, so the verified-token cache takes as
# many distinct tokens as Envoy can pass.
SOAK = Setup(
    "soak",
    "-",
    f"tokengate HS256 Bearer (hmac_secret), cache on, {SOAK_TOKENS:,} tokens round-robin",
    f"bearer-hs256-{SOAK_TOKENS}",
    tokengate_bearer_hs256,
)


# --- processes --------------------------------------------------------------------------

STARTED: list[subprocess.Popen] = []


def stop_all() -> None:
    for proc in STARTED:
        if proc.poll() is None:
            proc.terminate()
    for proc in STARTED:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    STARTED.clear()


def on_signal(signum, _frame):
    stop_all()
    sys.exit(128 + signum)


def process_cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pinned(cpus: Optional[set[int]]):
    return (lambda: os.sched_setaffinity(0, cpus)) if cpus else None


def admin_get(port: int, path: str, timeout: float = 2.0) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read().decode("utf-8", "replace")
    finally:
        conn.close()


class Envoy:
    """One Envoy process on free ports; `load_seconds` is process start to admin /ready 200."""

    def __init__(self, binary: str, yaml_text: str, name: str, cpus: Optional[set[int]] = None):
        self.dir = OUT / "run" / name
        self.dir.mkdir(parents=True, exist_ok=True)
        config = self.dir / "envoy.yaml"
        config.write_text(yaml_text)
        admin_file = self.dir / "admin-address"
        admin_file.unlink(missing_ok=True)
        self.log = self.dir / "envoy.log"
        with open(self.log, "wb") as log:
            started = time.monotonic()
            self.proc = subprocess.Popen(
                [binary, "-c", str(config), "--concurrency", "1", "--disable-hot-restart",
                 "--log-level", "warn", "--admin-address-path", str(admin_file)],
                stdout=subprocess.DEVNULL,
                stderr=log,
                preexec_fn=pinned(cpus),
            )
        STARTED.append(self.proc)
        self.admin_port = 0
        deadline = started + 60
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{name}: Envoy exited with {self.proc.returncode}:\n{self.log_text()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name}: Envoy not ready after 60 s:\n{self.log_text()}")
            if not self.admin_port and admin_file.exists():
                match = re.search(r":(\d+)\s*$", admin_file.read_text())
                self.admin_port = int(match.group(1)) if match else 0
            if self.admin_port and self.ready():
                break
            time.sleep(0.002)  # the poll interval, not a readiness guess
        self.load_seconds = time.monotonic() - started
        _, listeners = admin_get(self.admin_port, "/listeners?format=json")
        status = json.loads(listeners)["listener_statuses"][0]
        self.port = status["local_address"]["socket_address"]["port_value"]

    def ready(self) -> bool:
        try:
            return admin_get(self.admin_port, "/ready")[0] == 200
        except OSError:
            return False

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def cpu_seconds(self) -> float:
        return process_cpu_seconds(self.proc.pid)

    def counter(self, name: str) -> int:
        """One counter from the admin /stats, 0 if absent."""
        _, stats = admin_get(self.admin_port, "/stats?filter=" + re.escape(name))
        for line in stats.splitlines():
            key, _, value = line.partition(": ")
            if key == name:
                return int(value)
        return 0

    def rss_mib(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        STARTED.remove(self.proc)


class IntrospectionServer:
    """`tokengate-bench introspection-server` on a free port, outside the measured Envoy."""

    def __init__(self, cpus: Optional[set[int]] = None):
        client = ":".join(INTROSPECTION_CLIENT)
        # With the OAuth 1.0a consumer's public key it answers the oauth1 question too.
        key = [str(OAUTH1_KEY)] if OAUTH1_KEY.exists() else []
        self.proc = subprocess.Popen([str(BENCH_BIN), "introspection-server", "0", client, *key],
                                     stdout=subprocess.PIPE, text=True, preexec_fn=pinned(cpus))
        STARTED.append(self.proc)
        first = self.proc.stdout.readline() if self.proc.stdout else ""
        match = re.search(r":(\d+)\s*$", first)
        if not match:
            raise RuntimeError(f"introspection server did not start: {first!r}")
        self.port = int(match.group(1))

    def cpu_seconds(self) -> float:
        return process_cpu_seconds(self.proc.pid)

    def count(self) -> dict:
        """{"requests": introspection requests answered, "tokens": distinct tokens asked about},
        both since the previous count() (which this one starts afresh)."""
        return json.loads(admin_get(self.port, "/count")[1])

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)
        STARTED.remove(self.proc)


def busy_cpu_seconds() -> float:
    """CPU time all processes used so far, from /proc/stat (everything but idle and iowait)."""
    fields = [int(f) for f in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def request_status(port: int, authorization: Optional[str]) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        headers = {"Authorization": authorization} if authorization else {}
        conn.request("GET", "/rest/api/2/myself", headers=headers)
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def wrk(port: int, tokens: Path, seconds: float, connections: int, result: Path, cpus,
        sample: Optional[Callable[[], None]] = None, start: int = 0) -> dict:
    """Runs wrk for `seconds`, from line `start` of `tokens` on; `sample` is called every 10 s
    while it runs."""
    result.unlink(missing_ok=True)
    env = dict(os.environ, BENCH_TOKENS=str(tokens), BENCH_RESULT=str(result), BENCH_START=str(start))
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s", "-s", str(LUA),
           f"http://127.0.0.1:{port}/"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            preexec_fn=pinned(cpus))
    STARTED.append(proc)
    while sample:
        try:
            proc.wait(timeout=10)
            break
        except subprocess.TimeoutExpired:
            sample()
    output, _ = proc.communicate(timeout=seconds + 60)
    STARTED.remove(proc)
    if proc.returncode != 0 or not result.exists():
        raise RuntimeError(f"wrk failed ({proc.returncode}):\n{output.decode(errors='replace')}")
    return json.loads(result.read_text())


# --- measuring --------------------------------------------------------------------------


def preflight(envoy: Envoy, setup: Setup, tokens: Path) -> None:
    """The configuration does what the row says: 200 with a token, 401 without one."""
    first = tokens.read_text().splitlines()[0]
    with_token = request_status(envoy.port, first)
    without = request_status(envoy.port, None)
    if with_token != 200 or without != (401 if setup.authenticates else 200):
        raise RuntimeError(f"{setup.key}: with a token {with_token}, without {without}:\n{envoy.log_text()}")


def measure(args, envoy_bin: str, setup: Setup, yaml_text: str, round_no: int, upstream: Envoy,
            introspection: Optional[IntrospectionServer] = None) -> dict:
    tokens = TOKENS / f"{setup.tokens}.txt"
    lines = tokens.read_text().splitlines()
    envoy = Envoy(envoy_bin, yaml_text, setup.key, args.envoy_cpus)
    # The helpers outside the measured Envoy whose CPU is not "other load".
    helpers = [upstream] + ([introspection] if introspection else [])
    try:
        if introspection:
            introspection.count()  # starts its counts afresh
        preflight(envoy, setup, tokens)
        rss_start = envoy.rss_mib()
        first = 1 if setup.single_use else 0
        warm = wrk(envoy.port, tokens, args.warmup, args.connections, OUT / "wrk-warmup.json", args.load_cpus,
                   start=first)
        distinct = setup.warm_tokens or len(lines)
        if warm["requests"] < distinct:
            print(f"  warning: {setup.key}: warm-up sent {warm['requests']} requests for {distinct} tokens")
        cpu_before, helpers_before = envoy.cpu_seconds(), sum(h.cpu_seconds() for h in helpers)
        busy_before, wrk_before, wall_before = busy_cpu_seconds(), children_cpu_seconds(), time.monotonic()
        # The measured load carries on from the line after the warm-up's last one.
        run = wrk(envoy.port, tokens, args.duration, args.connections, OUT / "wrk.json", args.load_cpus,
                  start=first + warm["sent"])
        cpu = envoy.cpu_seconds() - cpu_before
        # CPU that neither this Envoy, the upstream (and introspection server) nor wrk used
        # during the run: other load on the machine, which the figures of this run share the
        # CPUs with.
        ours = cpu + sum(h.cpu_seconds() for h in helpers) - helpers_before + children_cpu_seconds() - wrk_before
        other = (busy_cpu_seconds() - busy_before - ours) / (time.monotonic() - wall_before)
        sent = first + warm["sent"] + run["sent"]
        if setup.no_repeat and sent > len(lines):
            raise RuntimeError(f"{setup.key}: {sent} requests sent over {len(lines)} token lines: "
                               "tokens repeated; make the token file longer (the OAuth 1.0a row: BENCH_OAUTH1_REQUESTS)")
        errors = run["errors"]
        if errors["status"]:
            raise RuntimeError(f"{setup.key}: {errors['status']} non-2xx answers under load:\n{envoy.log_text()}")
        rps = run["requests"] / (run["duration_us"] / 1e6)
        row = {
            "round": round_no,
            "rps": rps,
            "p50_ms": run["p50_us"] / 1000,
            "p99_ms": run["p99_us"] / 1000,
            "cpu_s_per_10k": cpu / run["requests"] * 10_000,
            "load_ms": envoy.load_seconds * 1000,
            "rss_start_mib": rss_start,
            "rss_end_mib": envoy.rss_mib(),
            "requests": run["requests"],
            "socket_errors": errors["connect"] + errors["read"] + errors["write"] + errors["timeout"],
            "other_cpus": max(other, 0.0),
        }
        if introspection and setup.oauth1:
            # One question about the one access token, then its cached answer.
            asked = introspection.count()
            row |= {"server_requests": asked["requests"], "server_tokens": asked["tokens"], "sent": sent}
        elif introspection:
            # One callout per distinct token per TTL: the tokens this Envoy was sent (preflight,
            # warm-up and measured load; the preflight's is line 1), against the callouts it
            # counted and the requests the introspection server answered. `sent` includes up
            # to one request per connection still in flight when wrk stopped.
            asked = introspection.count()
            row |= {
                "distinct_sent": len({lines[i % len(lines)] for i in range(max(sent, 1))}),
                "callouts": envoy.counter(CALLOUTS_STAT),
                "predicted_callouts": predicted_callouts(lines, max(sent, 1)),
                "server_requests": asked["requests"],
                "server_tokens": asked["tokens"],
            }
        print(
            f"  {setup.key:22} {rps:9.0f} req/s  p50 {row['p50_ms']:6.2f} ms  p99 {row['p99_ms']:6.2f} ms"
            f"  cpu/10k {row['cpu_s_per_10k']:6.3f} s  load {row['load_ms']:6.0f} ms  other {other:4.2f} CPUs"
            + (f"  callouts {row['callouts']} / {row['distinct_sent']} tokens (server {row['server_requests']})"
               if "callouts" in row else "")
            + (f"  {row['sent']} signed requests, {row['server_requests']} questions" if setup.oauth1 else ""),
            flush=True,
        )
        return row
    finally:
        envoy.stop()


def soak(args, envoy_bin: str, yaml_text: str) -> dict:
    """One long wrk run over SOAK's tokens, Envoy's RSS sampled every 10 s."""
    tokens = TOKENS / f"{SOAK.tokens}.txt"
    envoy = Envoy(envoy_bin, yaml_text, SOAK.key, args.envoy_cpus)
    try:
        preflight(envoy, SOAK, tokens)
        started = time.monotonic()
        samples = [{"t": 0, "rss_mib": envoy.rss_mib()}]

        def sample():
            samples.append({"t": round(time.monotonic() - started), "rss_mib": envoy.rss_mib()})
            print(f"  {samples[-1]['t']:4d} s  RSS {samples[-1]['rss_mib']:.1f} MiB", flush=True)

        run = wrk(envoy.port, tokens, args.soak, args.connections, OUT / "wrk-soak.json", args.load_cpus, sample)
        sample()
        if run["errors"]["status"]:
            raise RuntimeError(f"soak: {run['errors']['status']} non-2xx answers:\n{envoy.log_text()}")
        return {
            "label": SOAK.label,
            "seconds": args.soak,
            "requests": run["requests"],
            "distinct_tokens": len(tokens.read_text().splitlines()),
            "rps": run["requests"] / (run["duration_us"] / 1e6),
            "samples": samples,
        }
    finally:
        envoy.stop()


def soak_markdown(result: dict, command: str) -> str:
    samples = result["samples"]
    start, end = samples[0]["rss_mib"], samples[-1]["rss_mib"]
    minute = next((s["rss_mib"] for s in samples if s["t"] >= 60), end)
    grown = end - minute
    verdict = "met" if grown <= max(0.05 * minute, 2.0) else "**not met**"
    every = " → ".join(f"{s['rss_mib']:.0f}" for s in samples[:: max(1, len(samples) // 10)])
    return (
        f"{result['label']}, {result['seconds']} s: {result['requests']:,} requests "
        f"({result['rps']:,.0f}/s), so each of the {result['distinct_tokens']:,} tokens about "
        f"{result['requests'] / result['distinct_tokens']:.0f} times.\n\n"
        f"Envoy RSS: {start:.1f} MiB before the load, {minute:.1f} MiB after the first minute, "
        f"{end:.1f} MiB at the end ({grown:+.1f} MiB over the rest of the run; target no growth: "
        f"{verdict}). Samples (MiB, every ~{samples[1]['t'] if len(samples) > 1 else 0} s): {every}.\n\n"
        f"Command: `{command}`\n"
    )


def validate(envoy_bin: str, yaml_text: str, name: str) -> tuple[bool, str]:
    path = OUT / "validate" / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml_text)
    proc = subprocess.run(
        [envoy_bin, "--mode", "validate", "-c", str(path), "--log-level", "warn", "--disable-hot-restart"],
        capture_output=True,
        text=True,
    )
    return proc.returncode == 0, (proc.stdout + proc.stderr).strip()


def summarise(rows: list[dict]) -> dict:
    keys = ["rps", "p50_ms", "p99_ms", "cpu_s_per_10k", "load_ms", "rss_start_mib", "rss_end_mib", "other_cpus"]
    summary = {k: statistics.median(r[k] for r in rows) for k in keys} | {
        "rounds": len(rows),
        "rps_min": min(r["rps"] for r in rows),
        "rps_max": max(r["rps"] for r in rows),
        "socket_errors": sum(r["socket_errors"] for r in rows),
    }
    # Introspection rows: totals over the rounds (each round a fresh Envoy, an empty cache).
    for k in ["distinct_sent", "callouts", "predicted_callouts", "server_requests", "server_tokens", "sent"]:
        if all(k in r for r in rows):
            summary[k] = sum(r[k] for r in rows)
    return summary


# --- reporting --------------------------------------------------------------------------


def setups_of(report: dict) -> list[Setup]:
    """The rows of a report: SETUPS, with the baseline module's rows if it had them."""
    baseline = report.get("baseline")
    return with_baseline(Path(baseline["wasm"]) if baseline else None)


def machine(envoy_bin: str) -> dict:
    model = next(
        (l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines()
         if l.startswith("model name")),
        "unknown",
    )
    version = subprocess.run([envoy_bin, "--version"], capture_output=True, text=True).stdout.strip()
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.splitlines()
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "kernel": platform.release(),
        "envoy": version.split("version:")[-1].strip(),
        "wrk": wrk_version[0] if wrk_version else "wrk",
        "tokengate_wasm_bytes": TOKENGATE_WASM.stat().st_size,
        "floor_wasm_bytes": FLOOR_WASM.stat().st_size,
    }


def ratio(a: Optional[float], b: Optional[float]) -> Optional[float]:
    return a / b if a and b else None


def times(value: Optional[float]) -> str:
    return "" if value is None else f"{value:.2f}x"


def markdown(report: dict) -> str:
    results, m = report["results"], report["machine"]
    base = results.get("none", {}).get("rps")
    floor = results.get("wasm-floor", {}).get("rps")
    out = [
        f"Run {report['finished']}: {report['rounds']} rounds, configurations alternating, "
        f"{report['duration']} s of load each (after {report['warmup']} s warm-up), wrk -t1 "
        f"-c{report['connections']}; medians over the rounds.",
        "",
        "| # | configuration | tokens | req/s (min–max) | vs 1 (no filter) | vs Wasm floor | p50 ms | p99 ms "
        "| Envoy CPU s / 10k req | load ms | RSS MiB start → end | other load, CPUs |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for setup in setups_of(report):
        r = results.get(setup.key)
        tokens = "" if setup.pending or "not available" in (report["skipped"].get(setup.key) or "") else (
            setup.tokens_label or ("1" if setup.tokens.endswith("-1") else f"{DISTINCT:,} round-robin")
        )
        if r is None and report.get("only") and setup.key not in report["skipped"]:
            continue  # a run of some configurations lists those only
        if r is None:
            why = report["skipped"].get(setup.key, "not run")
            out.append(f"| {setup.group} | {setup.label} | {tokens} | {why} | | | | | | | | |")
            continue
        out.append(
            f"| {setup.group} | {setup.label} | {tokens} | {r['rps']:,.0f} ({r['rps_min']:,.0f}–{r['rps_max']:,.0f}) "
            f"| {times(ratio(r['rps'], base))} | {times(ratio(r['rps'], floor))} "
            f"| {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['cpu_s_per_10k']:.3f} | {r['load_ms']:.0f} "
            f"| {r['rss_start_mib']:.0f} → {r['rss_end_mib']:.0f} | {r['other_cpus']:.2f} |"
        )
    size = m["tokengate_wasm_bytes"]
    out += [
        "",
        f"Module size: `tokengate.wasm` {size:,} bytes ({size / 2**20:.2f} MiB, budget < 2 MiB: "
        f"{'met' if size < 2 * 2**20 else 'NOT met'}); the Wasm-floor module {m['floor_wasm_bytes']:,} bytes.",
        "",
        f"Machine: {m['nproc']} CPUs ({m['cpu']}), Linux {m['kernel']}, Envoy {m['envoy']}, {m['wrk']}.",
        "",
        "Command: `" + report["command"] + "`",
        "",
        "### Targets (issue 6), from the medians above",
        "",
        "| target | ratio by req/s | same ratio by Envoy CPU per request | by req/s |",
        "|---|---|---|---|",
    ]
    out += [f"| {t} | {v} | {c} | {ok} |" for t, v, c, ok in targets(results, size)
            if not (report.get("only") and v == "not measured")]
    if report.get("baseline"):
        out += ["", *against_baseline(report)]
    if not report.get("only"):
        out += ["", "![throughput relative to configuration 1](bench/throughput.svg)"]
    return "\n".join(out) + "\n"


def against_baseline(report: dict) -> list[str]:
    """The table of each row of BASELINE_ROWS against the same row over the baseline module."""
    results, baseline = report["results"], report["baseline"]
    out = [
        f"### This module against the baseline module ({baseline['rev']}, {baseline['bytes']:,} bytes), "
        "from the medians above",
        "",
        f"Target (issue 12): Envoy CPU per request within {BASELINE_TOLERANCE - 1:.0%} of the baseline's, or better.",
        "",
        "| configuration | Envoy CPU s / 10k req: this module | baseline | this / baseline "
        "| the same ratio per round (min–max) | req/s: this module | baseline | target |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for setup in SETUPS:
        if setup.key not in BASELINE_ROWS:
            continue
        new, old = results.get(setup.key), results.get(f"{setup.key}-baseline")
        if (not new or not old) and report.get("only"):
            continue
        if not new or not old:
            out.append(f"| {setup.label} | not measured | | | | | | |")
            continue
        cpu = ratio(new["cpu_s_per_10k"], old["cpu_s_per_10k"])
        met = "met" if cpu is not None and cpu <= BASELINE_TOLERANCE else "**not met**"
        # The two rows of one round ran one right after the other: their ratio is the least
        # disturbed by load that comes and goes on a shared machine.
        old_by_round = {r["round"]: r for r in report["per_round"].get(f"{setup.key}-baseline", [])}
        paired = [ratio(r["cpu_s_per_10k"], old_by_round[r["round"]]["cpu_s_per_10k"])
                  for r in report["per_round"].get(setup.key, []) if r["round"] in old_by_round]
        paired = [p for p in paired if p is not None]
        spread = f"{min(paired):.2f}–{max(paired):.2f}x" if paired else ""
        out.append(
            f"| {setup.label} | {new['cpu_s_per_10k']:.3f} | {old['cpu_s_per_10k']:.3f} | {times(cpu)} "
            f"| {spread} | {new['rps']:,.0f} | {old['rps']:,.0f} | {met} |"
        )
    return out


def targets(results: dict, wasm_bytes: int) -> list[tuple[str, str, str]]:
    def rps(key):
        return results.get(key, {}).get("rps")

    def cpu(key):
        return results.get(key, {}).get("cpu_s_per_10k")

    rows = []

    def check(text, key, against, threshold):
        value = ratio(rps(key), rps(against))
        if value is None:
            rows.append((text, "not measured", "", ""))
        else:
            # The same ratio from Envoy CPU per request: less disturbed by a shared machine.
            by_cpu = ratio(cpu(against), cpu(key))
            rows.append((text, f"{value:.2f}x ({rps(key):,.0f} / {rps(against):,.0f} req/s)",
                         f"{by_cpu:.2f}x ({cpu(key):.3f} / {cpu(against):.3f} s)",
                         "met" if value >= threshold else "**not met**"))

    check("RS256 cached path, 1,000 tokens: ≥ 0.9x the Wasm floor", "tg-rs256", "wasm-floor", 0.9)
    check("ES256 cached path, 1,000 tokens: ≥ 0.9x the Wasm floor", "tg-es256", "wasm-floor", 0.9)
    check("RS256 cached, 1,000 tokens: ≥ 1.5x native jwt_authn without cache", "tg-rs256", "native", 1.5)
    check("RS256 cached, 1,000 tokens: ≥ 1.5x native jwt_authn with its default cache (100)",
          "tg-rs256", "native-cache100", 1.5)
    check("RS256 uncached: ≥ 0.8x native jwt_authn without cache", "tg-rs256-nocache", "native", 0.8)
    check("Introspection, warm cache, 1,000 tokens: ≥ 0.9x the Wasm floor", "tg-introspect-warm", "wasm-floor", 0.9)
    for key, what in [("tg-introspect-warm", "warm cache"), ("tg-introspect-miss10", "10% misses")]:
        r = results.get(key, {})
        if "callouts" not in r:
            rows.append((f"Introspection ({what}): one callout per distinct token per TTL", "not measured", "", ""))
            continue
        rows.append((
            f"Introspection ({what}): one callout per distinct token per TTL",
            f"{r['callouts']:,} callouts for {r['distinct_sent']:,} distinct tokens sent "
            f"({r['callouts'] / r['distinct_sent']:.3f} per token; introspection server: "
            f"{r['server_requests']:,} requests, {r['server_tokens']:,} distinct tokens; "
            f"the cache's layout replayed predicts {r['predicted_callouts']:,} callouts), "
            f"over {r['rounds']} rounds",
            "",
            "met" if r["callouts"] <= r["distinct_sent"] and r["server_requests"] == r["server_tokens"] else "**not met**",
        ))
    r = results.get("tg-oauth1-rsa-sha1", {})
    if "server_requests" in r:
        rows.append((
            "OAuth 1.0a (issue 13): the access token asked about once per Envoy, every signed request verified",
            f"{r['server_requests']:,} questions for {r['sent']:,} signed requests (each sent once), "
            f"over {r['rounds']} rounds (a fresh Envoy each)",
            "",
            "met" if r["server_requests"] == r["rounds"] and r["server_tokens"] == r["rounds"] else "**not met**",
        ))
        value, by_cpu = ratio(rps("tg-oauth1-rsa-sha1"), rps("tg-rs256-nocache")), \
            ratio(cpu("tg-rs256-nocache"), cpu("tg-oauth1-rsa-sha1"))
        if value is not None and by_cpu is not None:
            rows.append(("OAuth 1.0a RSA-SHA1 signed requests beside RS256 uncached (no target)",
                         f"{value:.2f}x ({rps('tg-oauth1-rsa-sha1'):,.0f} / {rps('tg-rs256-nocache'):,.0f} req/s)",
                         f"{by_cpu:.2f}x ({cpu('tg-oauth1-rsa-sha1'):.3f} / {cpu('tg-rs256-nocache'):.3f} s)", ""))
    rows.append(("Module size < 2 MiB (the budget since issue 13)", f"{wasm_bytes:,} bytes", "",
                 "met" if wasm_bytes < 2 * 2**20 else "**not met**"))
    return rows


def svg(report: dict) -> str:
    """A horizontal bar chart of req/s relative to configuration 1, drawn by hand."""
    results = report["results"]
    base = results.get("none", {}).get("rps")
    rows = [(s, results.get(s.key)) for s in setups_of(report)]
    bar_x, width, row_h, top = 470, 400, 24, 50
    scale = width / max([1.0] + [r["rps"] / base for _, r in rows if r and base])
    height = top + row_h * len(rows) + 40
    esc = lambda t: t.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    envoy_release = next((p for p in report["machine"]["envoy"].split("/") if re.fullmatch(r"[\d.]+", p)), "")
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{bar_x + width + 80}" height="{height}" '
        'font-family="sans-serif" font-size="12">',
        '<rect width="100%" height="100%" fill="white"/>',
        f'<text x="10" y="22" font-size="15" font-weight="bold">Throughput relative to configuration 1 '
        f'(no auth filter, {base:,.0f} req/s)</text>' if base else "",
        f'<text x="10" y="40" fill="#555">Envoy {esc(envoy_release)}, --concurrency 1, wrk -c{report["connections"]}, '
        f'medians of {report["rounds"]} rounds; every JWT row with 1,000 distinct tokens unless marked</text>',
    ]
    colours = {"1": "#888", "2": "#d08a2e", "3": "#2e6fd0", "4": "#2e9fd0", "5": "#3a9d5d", "6": "#999", "7": "#8a4fd0"}
    for i, (setup, r) in enumerate(rows):
        y = top + i * row_h
        tokens = ", 1 token" if setup.tokens.endswith("-1") else ""
        parts.append(f'<text x="{bar_x - 8}" y="{y + 16}" text-anchor="end">'
                     f'{setup.group}. {esc(setup.label)}{tokens}</text>')
        if r and base:
            rel = r["rps"] / base
            parts.append(f'<rect x="{bar_x}" y="{y + 4}" width="{rel * scale:.1f}" height="{row_h - 8}" '
                         f'fill="{colours[setup.group]}"/>')
            parts.append(f'<text x="{bar_x + rel * scale + 5:.1f}" y="{y + 16}">{rel:.2f}x</text>')
        else:
            why = report["skipped"].get(setup.key, "not run")
            parts.append(f'<text x="{bar_x + 5}" y="{y + 16}" fill="#777" font-style="italic">{esc(why)}</text>')
    one = bar_x + scale
    parts.append(f'<line x1="{one:.1f}" y1="{top}" x2="{one:.1f}" y2="{top + row_h * len(rows)}" '
                 'stroke="black" stroke-dasharray="4,3"/>')
    parts.append(f'<text x="{one:.1f}" y="{top + row_h * len(rows) + 16}" text-anchor="middle">1.0x</text>')
    parts.append("</svg>")
    return "\n".join(p for p in parts if p) + "\n"


def publish(text: str, begin: str = BEGIN, end: str = END) -> None:
    """Replaces the text between the markers `begin` and `end` of BENCHMARKS.md."""
    doc = PUBLISHED_MD.read_text() if PUBLISHED_MD.exists() else "# Benchmarks\n"
    if begin not in doc or end not in doc:
        doc += f"\n{begin}\n{end}\n"
    head, _, rest = doc.partition(begin)
    _, _, tail = rest.partition(end)
    PUBLISHED_MD.write_text(f"{head}{begin}\n{text}{end}{tail}")


# --- main -------------------------------------------------------------------------------


def envoy_binary() -> str:
    if os.environ.get("ENVOY_BIN"):
        return os.environ["ENVOY_BIN"]
    return subprocess.run([str(ROOT / "scripts" / "envoy-bin")], capture_output=True, text=True,
                          check=True).stdout.strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=int, default=5, help="seconds of measured load per run")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of load before measuring")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--only", help="comma-separated configuration keys (a key brings its baseline row)")
    parser.add_argument("--baseline-wasm", type=Path, metavar="PATH",
                        help="also measure the rows of BASELINE_ROWS with this tokengate.wasm, side by side")
    parser.add_argument("--baseline-rev", default="baseline",
                        help="what the baseline module was built from, for the table (make bench: the commit)")
    parser.add_argument("--pin", action="store_true",
                        help="pin the measured Envoy to CPU 0, wrk and the upstream to the others")
    parser.add_argument("--publish", action="store_true", help="write BENCHMARKS.md and bench/throughput.svg")
    parser.add_argument("--list", action="store_true", help="list the configurations and exit")
    parser.add_argument("--render", action="store_true",
                        help="no measuring: render target/bench/results.json again (with --publish, publish it)")
    parser.add_argument("--soak", type=int, metavar="SECONDS",
                        help=f"instead: the memory soak, {SOAK_TOKENS:,} distinct tokens for SECONDS")
    args = parser.parse_args()
    if args.render:
        report = json.loads((OUT / "results.json").read_text())
        text = markdown(report)
        print(text)
        if args.publish:
            publish(text)
            PUBLISHED_SVG.write_text(svg(report))
        return 0
    if args.list:
        for s in with_baseline(args.baseline_wasm or Path("baseline.wasm")):
            print(f"{s.key:28} {s.group}  {s.label}{'  [' + s.pending + ']' if s.pending else ''}"
                  + ("  (with --baseline-wasm)" if s.baseline_of else ""))
        return 0
    cpus = set(range(os.cpu_count() or 1))
    args.envoy_cpus = {0} if args.pin and len(cpus) > 1 else None
    args.load_cpus = cpus - {0} if args.pin and len(cpus) > 1 else None

    atexit.register(stop_all)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    for needed in [TOKENGATE_WASM, FLOOR_WASM, TOKENS / "jwks-rs256.json"] + (
            [args.baseline_wasm] if args.baseline_wasm else []):
        if not needed.exists():
            sys.exit(f"{needed} is missing: run `make bench`, which builds it")
    if args.baseline_wasm:
        args.baseline_wasm = args.baseline_wasm.resolve()
    OUT.mkdir(parents=True, exist_ok=True)
    wrapper = envoy_binary()

    upstream_yaml = template("upstream.yaml")
    ok, log = validate(wrapper, upstream_yaml, "upstream")
    if not ok:
        sys.exit(f"bench/envoy/upstream.yaml does not validate:\n{log}")
    upstream = Envoy(wrapper, upstream_yaml, "upstream", args.load_cpus)
    # The PyPI wrapper execs the real binary: start the measured Envoys from that directly, so
    # load times do not include a Python interpreter's start-up.
    envoy_bin = os.readlink(f"/proc/{upstream.proc.pid}/exe")

    def proxy_yaml(setup: Setup, introspection_port: int = 0) -> str:
        clusters = template("cluster-introspection.yaml", introspection_port=str(introspection_port)) \
            if setup.introspection else ""
        return template("proxy.yaml", http_filters=setup.filters(), upstream_port=str(upstream.port),
                        clusters=clusters)

    command = os.environ.get("BENCH_COMMAND") or "python3 bench/run.py " + " ".join(sys.argv[1:])
    if args.soak:
        yaml_text = proxy_yaml(SOAK)
        ok, log = validate(envoy_bin, yaml_text, SOAK.key)
        if not ok:
            sys.exit(f"soak: configuration does not validate:\n{log}\n{yaml_text}")
        result = soak(args, envoy_bin, yaml_text)
        upstream.stop()
        (OUT / "soak.json").write_text(json.dumps(result, indent=2) + "\n")
        text = soak_markdown(result, command.strip())
        print("\n" + text)
        if args.publish:
            publish(text, SOAK_BEGIN, SOAK_END)
            print(f"wrote {PUBLISHED_MD.relative_to(ROOT)}")
        return 0

    only = args.only.split(",") if args.only else None
    chosen = [s for s in with_baseline(args.baseline_wasm)
              if not only or s.key in only or s.baseline_of in only]
    introspection = None
    if any(s.introspection and not s.pending for s in chosen):
        if not BENCH_BIN.exists():
            sys.exit(f"{BENCH_BIN} is missing: run `make bench`, which builds it")
        introspection = IntrospectionServer(args.load_cpus)
    skipped, configs = {}, {}
    for setup in chosen:
        if setup.pending:
            skipped[setup.key] = setup.pending
            continue
        yaml_text = proxy_yaml(setup, introspection.port if introspection else 0)
        ok, log = validate(envoy_bin, yaml_text, setup.key)
        if ok:
            configs[setup.key] = yaml_text
        elif setup.probe_runtime and "compiled without support" in log:
            skipped[setup.key] = "not available in this Envoy build"
            print(f"{setup.key}: not measured: Envoy was compiled without {setup.probe_runtime}")
        else:
            sys.exit(f"{setup.key}: configuration does not validate:\n{log}\n{yaml_text}")
    print(f"validated {len(configs) + 1} Envoy configurations; upstream on :{upstream.port}", flush=True)

    measured = [s for s in chosen if s.key in configs]
    rows: dict[str, list[dict]] = {s.key: [] for s in measured}
    for round_no in range(args.rounds):
        print(f"round {round_no + 1}/{args.rounds}", flush=True)
        for setup in round_order(measured, round_no):
            rows[setup.key].append(measure(args, envoy_bin, setup, configs[setup.key], round_no, upstream,
                                           introspection if setup.introspection else None))
    upstream.stop()
    if introspection:
        introspection.stop()

    report = {
        "finished": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": command.strip(),
        "rounds": args.rounds,
        "duration": args.duration,
        "warmup": args.warmup,
        "connections": args.connections,
        "pinned": bool(args.envoy_cpus),
        "machine": machine(envoy_bin),
        "results": {k: summarise(v) for k, v in rows.items()},
        "per_round": rows,
        "skipped": skipped,
        "only": only,
        "baseline": {
            "wasm": str(args.baseline_wasm),
            "rev": args.baseline_rev,
            "bytes": args.baseline_wasm.stat().st_size,
        } if args.baseline_wasm else None,
    }
    (OUT / "results.json").write_text(json.dumps(report, indent=2) + "\n")
    text = markdown(report)
    (OUT / "results.md").write_text(text)
    (OUT / "throughput.svg").write_text(svg(report))
    print("\n" + text)
    if args.publish and only:
        publish(text, ONLY_BEGIN, ONLY_END)
        print(f"wrote the --only section of {PUBLISHED_MD.relative_to(ROOT)}")
    elif args.publish:
        publish(text)
        PUBLISHED_SVG.write_text(svg(report))
        print(f"wrote {PUBLISHED_MD.relative_to(ROOT)} and {PUBLISHED_SVG.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
