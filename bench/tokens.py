#!/usr/bin/env python3
"""make bench-tokens: introspection throughput and latency of the token service itself.

For each binary given (the current one, and with --old the tiny_http build from before issue 11),
starts tokengate-tokens on a scratch store on a free loopback port, makes one API token for the
demo user jsmith, and drives POST /introspect with wrk (bench/wrk/introspect.lua: the filter's
request, Basic client credentials and that valid token) under four loads:

- idle: wrk alone;
- slow bodies: 200 connections that announce a 60000-byte body and send one byte a second
  (reopened when the service cuts them);
- guessing one user: 64 threads sending `GET /user/token` with wrong Basic passwords for fred,
  from one address, each as soon as the previous one is answered. Since the fleet lockout, fred
  (3 failures) and the address (30) are locked within the first guesses: the rest get 403 without
  argon2, so this load measures the lockout's refusals (one store read each);
- guessing many users: the same 64 threads, each guess a name never used before, each from an
  address never used before (`x-envoy-external-address`, which the service trusts by default as
  Envoy writes it): no lock is ever reached, every guess runs argon2 (unknown names are checked
  against a dummy hash) and writes a failure row to the store.

Stores: a scratch SQLite file, and (the current binary only) PostgreSQL: a throw-away cluster
(initdb and pg_ctl from /usr/lib/postgresql/*/bin, as the `postgres` user through runuser when
root, on a free loopback port, password authentication as a deployment connects), a fresh
database per row, stopped and removed at the end.

Reports requests/s, p50 and p99 latency, and how many introspections failed (non-2xx, socket
errors, timeouts: wrk's --timeout is the filter's callout timeout, 1 s); after each row, one more
introspection must still say the token is active. Writes target/bench/tokens.json and
target/bench/tokens.md, and with --publish the token service section of BENCHMARKS.md. Every
process started here is stopped on exit. Python 3 standard library only.
"""

from __future__ import annotations

import argparse
import atexit
import base64
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "target" / "bench"
LUA = ROOT / "bench" / "wrk" / "introspect.lua"
USERS = ROOT / "tokenservice" / "config" / "users.json"
PUBLISHED_MD = ROOT / "BENCHMARKS.md"
BEGIN, END = "<!-- bench tokens: begin (written by bench/tokens.py) -->", "<!-- bench tokens: end -->"
PREFIX = "/rest/de.resolution.apitokenauth/latest"
CLIENT_ID, CLIENT_SECRET = "tokengate", "bench-introspection-secret"

CHILDREN: list[subprocess.Popen] = []


def stop_children() -> None:
    for child in CHILDREN:
        if child.poll() is None:
            child.kill()
            child.wait()


atexit.register(stop_children)
# A signal ends the run through atexit too (the services and the cluster are stopped).
for _signal in (signal.SIGTERM, signal.SIGHUP):
    signal.signal(_signal, lambda *_: sys.exit(1))
LOADS = ["idle", "200 slow bodies", "64 guessers, one user", "64 guessers, many users"]
TOKEN_OWNER = "jsmith"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Postgres:
    """A throw-away PostgreSQL cluster, the way tokenservice/tests/common/postgres.rs makes one."""

    USER, PASSWORD = "tokengate", "bench-pg-password"

    def __init__(self) -> None:
        bins = sorted((int(d.parent.parent.name), d.parent) for d in Path("/usr/lib/postgresql").glob("*/bin/initdb")
                      if d.parent.parent.name.isdigit())
        if not bins:
            raise SystemExit("PostgreSQL is not installed (make postgres installs Debian's package)")
        self.bin = bins[-1][1]
        self.run_as: list[str] = []
        self.dir = Path(tempfile.mkdtemp(prefix="tokengate-bench-pg-"))
        atexit.register(self.stop)
        (self.dir / "pwfile").write_text(self.PASSWORD + "\n")
        if os.geteuid() == 0:  # initdb and postgres refuse to run as root
            user = "postgres" if subprocess.run(["id", "-u", "postgres"], capture_output=True).returncode == 0 \
                else "nobody"
            self.run_as = ["runuser", "-u", user, "--"]
            for path in (self.dir, self.dir / "pwfile"):
                shutil.chown(path, user, user if user == "postgres" else None)
        self.data = self.dir / "data"
        self.pg("initdb", "-D", str(self.data), "-U", self.USER, "--pwfile", str(self.dir / "pwfile"),
                "--auth-host=scram-sha-256", "--auth-local=trust", "-E", "UTF8", "--no-locale", "--no-sync")
        self.started = False
        why = ""
        for _ in range(3):  # a free port may be taken before the server binds it
            self.port = free_port()
            started = self.pg("pg_ctl", "-D", str(self.data), "-l", str(self.dir / "server.log"), "-w", "-t", "60",
                              "-o", f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 "
                              "-c max_connections=300", "start", check=False)
            if started.returncode == 0:
                self.started = True
                break
            why = (self.dir / "server.log").read_text(errors="replace") if (self.dir / "server.log").exists() else ""
        if not self.started:
            raise SystemExit(f"PostgreSQL did not start:\n{why}")
        self.databases = 0

    def pg(self, program: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        done = subprocess.run([*self.run_as, str(self.bin / program), *args], cwd=self.dir,
                              capture_output=True, text=True)
        if check and done.returncode != 0:
            raise SystemExit(f"{program} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
        return done

    def fresh_database(self) -> str:
        """A new empty database; its URL (with the password)."""
        self.databases += 1
        name = f"bench{self.databases}"
        self.pg("createdb", "-h", str(self.dir), "-p", str(self.port), "-U", self.USER, name)
        return f"postgres://{self.USER}:{self.PASSWORD}@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        """Fast shutdown, then the directory is removed (also when the run fails)."""
        if getattr(self, "started", False):
            self.pg("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop", check=False)
            self.started = False
        shutil.rmtree(self.dir, ignore_errors=True)


def basic(pair: str) -> str:
    return "Basic " + base64.b64encode(pair.encode()).decode()


class TokenService:
    """One tokengate-tokens process on a scratch database."""

    def __init__(self, binary: Path, scratch: Path, extra: dict, database: str | None = None) -> None:
        scratch.mkdir(parents=True, exist_ok=True)
        config = {
            "listen": "127.0.0.1:0",
            "database": database or str(scratch / "tokens.db"),
            "users_file": str(USERS),
            "introspection": {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET},
            "max_validity_months": 12,
            "default_validity_months": 6,
            **extra,
        }
        path = scratch / "config.json"
        path.write_text(json.dumps(config))
        self.process = subprocess.Popen(
            [str(binary), "--config", str(path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        CHILDREN.append(self.process)
        line = self.process.stdout.readline() if self.process.stdout else ""
        match = re.search(r":(\d+)\s*$", line)
        if not match:
            raise SystemExit(f"{binary}: no listening line ({line!r})")
        self.port = int(match.group(1))

    def request(self, method: str, path: str, auth: str, body: str = "", timeout: float = 30,
                extra_headers: dict | None = None, content_type: str = "application/json") -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            headers = {"Authorization": auth, "Content-Type": content_type, "Connection": "close",
                       **(extra_headers or {})}
            conn.request(method, path, body=body or None, headers=headers)
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def stop(self) -> None:
        self.process.kill()
        self.process.wait()


class SlowBodies:
    """`count` connections sending a body one byte a second, reopened when cut."""

    def __init__(self, port: int, count: int) -> None:
        self.port, self.count = port, count
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def open(self) -> socket.socket | None:
        try:
            sock = socket.create_connection(("127.0.0.1", self.port), timeout=2)
            sock.sendall(
                (f"POST {PREFIX}/user/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 "Content-Length: 60000\r\n\r\n{").encode()
            )
            return sock
        except OSError:
            return None

    def run(self) -> None:
        socks = [self.open() for _ in range(self.count)]
        while not self.stopping.wait(1.0):
            for i, sock in enumerate(socks):
                try:
                    if sock is None:
                        raise OSError
                    sock.sendall(b" ")
                except OSError:
                    if sock is not None:
                        sock.close()
                    socks[i] = self.open()
        for sock in socks:
            if sock is not None:
                sock.close()

    def __enter__(self) -> "SlowBodies":
        self.thread.start()
        time.sleep(1.0)  # let the connections open before the measurement starts
        return self

    def __exit__(self, *_) -> None:
        self.stopping.set()
        self.thread.join()


class Guessers:
    """`count` threads guessing passwords, one request after the other: fred's from one address,
    or (`many`) each guess a new name from a new address."""

    def __init__(self, service: TokenService, count: int, many: bool = False) -> None:
        self.service, self.count, self.many = service, count, many
        self.stopping = threading.Event()
        self.answered: dict[int, int] = {}
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.run, args=(i,), daemon=True) for i in range(count)]

    def run(self, i: int) -> None:
        n = 0
        while not self.stopping.is_set():
            n += 1
            if self.many:
                user = f"guessed-{i}-{n}"
                headers = {"x-envoy-external-address": f"10.{i}.{n // 256 % 256}.{n % 256}"}
            else:
                user, headers = "fred", {}
            try:
                status, _ = self.service.request("GET", f"{PREFIX}/user/token", basic(f"{user}:guess-{i}-{n}"),
                                                 timeout=10, extra_headers=headers)
            except OSError:
                status = 0
            with self.lock:
                self.answered[status] = self.answered.get(status, 0) + 1

    def __enter__(self) -> "Guessers":
        for thread in self.threads:
            thread.start()
        time.sleep(1.0)
        return self

    def __exit__(self, *_) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join()


def parse_duration_ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if not match:
        return float("nan")
    value, unit = float(match.group(1)), match.group(2)
    return value * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def wrk(port: int, token: str, seconds: int, connections: int) -> dict:
    env = dict(os.environ, BENCH_AUTH=basic(f"{CLIENT_ID}:{CLIENT_SECRET}"), BENCH_TOKEN=token)
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "1s", "--latency", "-s", str(LUA),
         f"http://127.0.0.1:{port}/introspect"],
        env=env, capture_output=True, text=True, check=True,
    ).stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M)
    total = re.search(r"(\d+) requests in", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {
        "rps": float(rps.group(1)) if rps else 0.0,
        "p50_ms": parse_duration_ms(p50.group(1)) if p50 else None,
        "p99_ms": parse_duration_ms(p99.group(1)) if p99 else None,
        "requests": int(total.group(1)) if total else 0,
        "failed": (int(non2xx.group(1)) if non2xx else 0) + (sum(map(int, errors.groups())) if errors else 0),
        "raw": out,
    }


def still_active(service: TokenService, token: str) -> bool:
    """One introspection after the load: the token is still answered active."""
    try:
        status, body = service.request("POST", "/introspect", basic(f"{CLIENT_ID}:{CLIENT_SECRET}"),
                                       f"token={token}", timeout=10,
                                       content_type="application/x-www-form-urlencoded")
        return status == 200 and json.loads(body).get("active") is True
    except (OSError, ValueError):
        return False


def measure(name: str, binary: Path, seconds: int, connections: int, extra: dict, store: str = "SQLite",
            postgres: Postgres | None = None) -> list[dict]:
    rows = []
    for load in LOADS:
        scratch = Path(tempfile.mkdtemp(prefix="tokengate-bench-tokens-"))
        database = postgres.fresh_database() if postgres else None
        service = TokenService(binary, scratch, extra, database)
        try:
            status, body = service.request("POST", f"{PREFIX}/user/token", basic(f"{TOKEN_OWNER}:{TOKEN_OWNER}-password"),
                                           json.dumps({"tokenDescription": "bench"}))
            if status != 200:
                raise SystemExit(f"{name}: creating a token got {status}: {body[:200]!r}")
            token = json.loads(body)["plainTextToken"]
            wrk(service.port, token, 1, connections)  # warm-up
            guesses = None
            if load == "idle":
                result = wrk(service.port, token, seconds, connections)
            elif load == "200 slow bodies":
                with SlowBodies(service.port, 200):
                    result = wrk(service.port, token, seconds, connections)
            else:
                with Guessers(service, 64, many=load.endswith("many users")) as guessers:
                    result = wrk(service.port, token, seconds, connections)
                guesses = dict(guessers.answered)
            row = {"server": name, "store": store, "load": load, **{k: v for k, v in result.items() if k != "raw"},
                   "active_after": still_active(service, token)}
            if guesses is not None:
                row["guesses_answered"] = guesses
            rows.append(row)
            print(f"{name:>28} | {store:<10} | {load:<24} | {row['rps']:>9.0f} req/s | p50 {row['p50_ms']} ms | "
                  f"p99 {row['p99_ms']} ms | failed {row['failed']}/{row['requests']} | "
                  f"active after {row['active_after']} | guesses {guesses}", flush=True)
        finally:
            service.stop()
            shutil.rmtree(scratch, ignore_errors=True)
    return rows


def ms(value) -> str:
    return "-" if value is None or value != value else f"{value:.2f}"


def markdown(rows: list[dict], args: argparse.Namespace) -> str:
    lines = [
        f"Token service alone (`{args.command}`): wrk `-t1 -c{args.connections} -d{args.duration}s --timeout 1s` "
        "against `POST /introspect` with one valid token (jsmith's), on this machine "
        f"({os.cpu_count()} shared vCPUs: the service, PostgreSQL, wrk and the load generators all run on them, "
        "so the figures compare rows of one run, not machines). A failed introspection is a non-2xx, a socket error "
        "or no answer within 1 s (the filter's callout timeout); *active after* is one more introspection once "
        "the load stopped. PostgreSQL: a throw-away local cluster (fsync on), a fresh database per row.",
        "",
        "| server | store | load | introspections/s | p50 ms | p99 ms | failed / answered | active after "
        "| guesses answered, by status (0: none) |",
        "|---|---|---|---:|---:|---:|---:|---|---|",
    ]
    for row in rows:
        guesses = ", ".join(f"{k}: {v:,}" for k, v in sorted(row.get("guesses_answered", {}).items(),
                                                            key=lambda kv: int(kv[0]))) or "-"
        head = f"| {row['server']} | {row.get('store', 'SQLite')} | {row['load']} |"
        tail = f" {'yes' if row.get('active_after', True) else 'no'} | {guesses} |"
        if row["requests"] == 0:
            lines.append(f"{head} 0 | - | - | none answered |{tail}")
        elif row["failed"] >= row["requests"]:
            lines.append(f"{head} 0 | - | - | 0 of {row['requests']:,} within 1 s |{tail}")
        else:
            lines.append(f"{head} {row['rps']:,.0f} | {ms(row['p50_ms'])} | {ms(row['p99_ms'])} | "
                         f"{row['failed']:,} / {row['requests']:,} |{tail}")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--new", type=Path, default=ROOT / "target" / "release" / "tokengate-tokens")
    parser.add_argument("--old", type=Path, help="a tokengate-tokens built before issue 11 (tiny_http)")
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--config-extra", default="{}", help="JSON fields added to the new binary's configuration")
    parser.add_argument("--stores", default="sqlite,postgres",
                        help="the current binary's stores, comma-separated: sqlite, postgres")
    parser.add_argument("--publish", action="store_true", help="write the section of BENCHMARKS.md")
    parser.add_argument("--command", default=os.environ.get("BENCH_COMMAND", "make bench-tokens"))
    parser.add_argument("--from-json", type=Path, help="render (and publish) the rows of an earlier run")
    args = parser.parse_args()
    if args.from_json:
        rows = json.loads(args.from_json.read_text())
    else:
        if shutil.which("wrk") is None:
            raise SystemExit("wrk is not on the PATH (make bench-tools installs it)")
        rows = []
        if args.old:
            rows += measure("tiny_http (before issue 11)", args.old, args.duration, args.connections, {})
        extra = json.loads(args.config_extra)
        if "sqlite" in args.stores:
            rows += measure("hyper + tokio", args.new, args.duration, args.connections, extra)
        if "postgres" in args.stores:
            postgres = Postgres()
            try:
                rows += measure("hyper + tokio", args.new, args.duration, args.connections, extra, "PostgreSQL",
                                postgres)
            finally:
                postgres.stop()
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "tokens.json").write_text(json.dumps(rows, indent=2))
    text = markdown(rows, args)
    (OUT / "tokens.md").write_text(text)
    print(text)
    if args.publish:
        published = PUBLISHED_MD.read_text()
        start, end = published.find(BEGIN), published.find(END)
        if start < 0 or end < start:
            raise SystemExit(f"{PUBLISHED_MD}: no {BEGIN} ... {END} section")
        PUBLISHED_MD.write_text(published[: start + len(BEGIN)] + "\n" + text + published[end:])


if __name__ == "__main__":
    sys.exit(main())
