"""The benchmark: prepare the variants and the baselines, run the interleaved load, print the table.

Steps, in order:
1. a PostgreSQL server (a throwaway cluster from the binaries on the machine, or --database-url);
2. the baselines' environment (uv, resolved now, so it gets the releases the projects get);
3. for every variant: render (timed), `uv sync`, database created and migrated with the
   project's own CLI, 10 000 items seeded through its models, its generated suite (timed);
4. every server started (one uvicorn worker each, as `<slug> serve` runs it), a user registered
   and logged in where /auth/me is measured;
5. per endpoint and concurrency, one block of wrk runs in which the baselines run before the
   first variant, after every --baseline-every variants and after the last: each variant's
   ratios use the baseline runs either side of it, so that drift in the machine's load
   (other processes on a shared machine) is compensated;
6. the table (Markdown), the targets of the performance issue, results.json in the work dir;
7. with --matrix, the template's own full variant run (`pytest -m variant -n 2`), timed.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import http.client
import json
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "bench"
if str(REPO) not in sys.path:  # `tests` holds the render and PostgreSQL helpers
    sys.path.insert(0, str(REPO))

from tests.harness import project_env, render, uv_binary  # noqa: E402
from tests.postgres import (  # noqa: E402
    PostgresServer,
    PostgresUnavailable,
    ThrowawayCluster,
    find_bindir,
    parse_server_url,
)

DRIVERS = ("aiosqlite", "asyncpg", "psycopg")
STRATEGIES = ("transaction", "explicit", "middleware")
USER_SESSIONS = ("database", "cookie", "none")
PACKAGE = "my_service"  # the template's default package name and CLI
CLI = "my-service"
ITEMS = 10_000
BASELINES = ("starlette+asyncpg", "fastapi+asyncpg")
REFERENCE = "fastapi+sqlalchemy"
"""--orm-baseline: the straightforward FastAPI + SQLAlchemy ORM app, measured like a variant."""
BASELINE_MODULES = {
    "starlette+asyncpg": "bench.baselines.starlette_asyncpg:app",
    "fastapi+asyncpg": "bench.baselines.fastapi_asyncpg:app",
    REFERENCE: "bench.baselines.fastapi_sqlalchemy:app",
}
PASSWORD = "bench-password-not-secret"
OPEN_SECONDS = 1.0
"""Seconds between opening a measured run's connections and its first request (wrk/report.lua)."""


@dataclass(frozen=True)
class Endpoint:
    key: str
    label: str
    script: str
    needs_user: bool = False


ENDPOINTS = {
    "get": Endpoint("get", "GET /items/{id}", "get_item.lua"),
    "list": Endpoint("list", "GET /items?limit=20", "list_items.lua"),
    "post": Endpoint("post", "POST /items", "post_item.lua"),
    "me": Endpoint("me", "GET /auth/me", "me.lua", needs_user=True),
}


@dataclass(frozen=True)
class Variant:
    driver: str
    strategy: str
    user_sessions: str

    @property
    def name(self) -> str:
        return f"{self.driver}/{self.strategy}/{self.user_sessions}"

    @property
    def slug(self) -> str:
        return f"{self.driver}-{self.strategy}-{self.user_sessions}"

    @property
    def is_postgres(self) -> bool:
        return self.driver != "aiosqlite"

    def answers(self) -> dict[str, Any]:
        return {
            "database_driver": self.driver,
            "session_strategy": self.strategy,
            "user_sessions": self.user_sessions,
            "with_examples": True,
            "ci": "none",
            "docker": False,
        }


@dataclass
class Prepared:
    """A variant ready to serve, and what preparing it cost."""

    variant: Variant
    endpoints: list[str]
    project: Path
    database_url: str
    secret_env: dict[str, str] = field(default_factory=dict)
    render_s: float = 0.0
    install_s: float = 0.0
    suite_s: float | None = None
    suite_ok: bool | None = None
    suite_summary: str = ""


@dataclass
class Run:
    target: str
    endpoint: str
    connections: int
    rps: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    errors: int
    error_detail: dict[str, int]
    rss_mib: float
    hwm_mib: float
    sequence: int
    vs_starlette: float | None = None
    vs_fastapi: float | None = None


@dataclass
class Options:
    variants: list[Variant]
    endpoints: list[str]
    cookie_endpoints: list[str]
    connections: int
    high_connections: int
    high_endpoints: list[str]
    duration: float
    warmup: float
    timeout: float
    threads: int
    baseline_every: int
    suite: bool
    matrix: bool
    orm_baseline: bool
    database_url: str | None
    workdir: Path | None
    keep: bool
    python: str | None
    server_env: dict[str, str]
    output: Path | None


# ----------------------------------------------------------------------------- processes


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """A generated project's environment (tests.harness.project_env: nothing of ours leaks in),
    with bytecode caching on as on a developer's machine."""
    env = project_env(extra)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def check_run(
    argv: Sequence[str], cwd: Path, env: dict[str, str], timeout: float = 900
) -> tuple[float, str]:
    """Run a command to completion; return (seconds, output). Raise with the output on failure."""
    start = time.perf_counter()
    proc = subprocess.run(
        list(argv),
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        timeout=timeout,
        check=False,
    )
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(
            f"$ {' '.join(argv)}  (in {cwd}) exited {proc.returncode}:\n{proc.stdout[-4000:]}"
        )
    return seconds, proc.stdout


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_request(
    port: int, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, http.client.HTTPMessage, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        payload = json.dumps(body).encode() if body is not None else None
        all_headers = {"Content-Type": "application/json"} if payload else {}
        all_headers.update(headers or {})
        connection.request(method, path, body=payload, headers=all_headers)
        response = connection.getresponse()
        return response.status, response.headers, response.read()
    finally:
        connection.close()


def memory_mib(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of a process in MiB."""
    values = {"VmRSS": 0.0, "VmHWM": 0.0}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in values:
                values[key] = int(rest.split()[0]) / 1024
    return values["VmRSS"], values["VmHWM"]


class Server:
    """One uvicorn process (one worker), its log in the work dir."""

    def __init__(
        self, name: str, argv: list[str], cwd: Path, env: dict[str, str], log_path: Path
    ) -> None:
        self.name = name
        self.port = free_port()
        self.argv = [*argv, "--port", str(self.port)]
        self.cwd = cwd
        self.env = env
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self.cookie = ""

    def start(self, ready_path: str, timeout: float = 60) -> None:
        with self.log_path.open("ab") as log_file:
            self.process = subprocess.Popen(
                self.argv,
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited at startup:\n{self.log_tail()}")
            with contextlib.suppress(OSError, http.client.HTTPException):
                if http_request(self.port, "GET", ready_path)[0] == 200:
                    return
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} was not ready after {timeout}s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


# ----------------------------------------------------------------------------- PostgreSQL


@contextlib.contextmanager
def postgres(database_url: str | None, connections: int) -> Iterator[PostgresServer]:
    """--database-url, else a throwaway cluster (tests/postgres.py) with max_connections raised
    to `connections`: every idle server keeps its pool's connections open."""
    if database_url:
        yield parse_server_url(database_url)
        return
    bindir = find_bindir()
    if bindir is None:
        raise PostgresUnavailable(
            "No PostgreSQL server binaries found; install them or pass --database-url."
        )
    cluster = ThrowawayCluster(bindir, max_connections=max(200, connections + 20))
    server = cluster.start()
    try:
        yield server
    finally:
        cluster.stop()


# ----------------------------------------------------------------------------- preparation


def prepare_baselines(workdir: Path, python: str | None) -> Path:
    """A virtual environment with the baselines' requirements; returns its interpreter."""
    venv = workdir / "baselines-venv"
    uv = uv_binary()
    env = child_env()
    argv = [uv, "venv", "--quiet", "--clear", str(venv)]
    if python:
        argv += ["--python", python]
    check_run(argv, REPO, env)
    interpreter = venv / "bin" / "python"
    check_run(
        [
            uv,
            "pip",
            "install",
            "--quiet",
            "--python",
            str(interpreter),
            "-r",
            str(BENCH / "baselines" / "requirements.txt"),
        ],
        REPO,
        env,
    )
    return interpreter


def prepare_variant(
    variant: Variant,
    endpoints: list[str],
    workdir: Path,
    server: PostgresServer,
    admin_python: Path,
    options: Options,
) -> Prepared:
    project = workdir / variant.slug
    shutil.rmtree(project, ignore_errors=True)
    start = time.perf_counter()
    render(project, variant.answers(), skip_tasks=True)
    render_s = time.perf_counter() - start

    env = child_env({"UV_PYTHON": options.python} if options.python else None)
    install_s, _ = check_run([uv_binary(), "sync", "--quiet", "--compile-bytecode"], project, env)

    if variant.is_postgres:
        name = f"bench_{variant.slug.replace('-', '_')}"
        check_run(
            [str(admin_python), "-m", "bench.dbtool", "createdb", server.url(), name],
            REPO,
            child_env(),
        )
        database_url = server.url(f"postgresql+{variant.driver}", name)
        test_url = server.url(f"postgresql+{variant.driver}")
    else:
        database_url = f"sqlite+aiosqlite:///{project / 'bench.db'}"
        test_url = ""
    secret_env = secret_keys_env() if variant.user_sessions == "cookie" else {}
    prepared = Prepared(variant, endpoints, project, database_url, secret_env, render_s, install_s)

    run_env = child_env({"DATABASE_URL": database_url, "ENVIRONMENT": "production", **secret_env})
    bindir = project / ".venv" / "bin"
    check_run([str(bindir / CLI), "db", "upgrade"], project, run_env)
    check_run(
        [str(bindir / "python"), str(BENCH / "seed.py"), PACKAGE, str(ITEMS)], project, run_env
    )

    if options.suite:
        suite_env = child_env({"TEST_DATABASE_URL": test_url} if test_url else None)
        start = time.perf_counter()
        proc = subprocess.run(
            [uv_binary(), "run", "pytest", "-q", "-p", "no:cacheprovider"],
            cwd=project,
            env=suite_env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=1800,
            check=False,
        )
        prepared.suite_s = time.perf_counter() - start
        prepared.suite_ok = proc.returncode == 0
        lines = proc.stdout.strip().splitlines()
        prepared.suite_summary = lines[-1] if lines else proc.stderr.strip()[-200:]
        if not prepared.suite_ok:
            log(f"{variant.name}: generated suite FAILED:\n{proc.stdout[-3000:]}")
    return prepared


def secret_keys_env() -> dict[str, str]:
    return {"SESSION_SECRET_KEYS": json.dumps([secrets.token_urlsafe(32) for _ in range(2)])}


def variant_server(prepared: Prepared, workdir: Path, options: Options) -> Server:
    env = child_env(
        {
            "DATABASE_URL": prepared.database_url,
            "ENVIRONMENT": "production",
            **prepared.secret_env,
            **options.server_env,
        }
    )
    argv = [str(prepared.project / ".venv" / "bin" / CLI), "serve"]
    return Server(
        prepared.variant.name, argv, prepared.project, env, workdir / f"{prepared.variant.slug}.log"
    )


def log_in(server: Server) -> str:
    """Register a user and log in; return the Cookie header value."""
    registration = {"email": "bench@example.com", "password": PASSWORD, "display_name": "Bench"}
    status, _, body = http_request(server.port, "POST", "/auth/register", registration)
    if status not in (201, 409):
        raise RuntimeError(f"{server.name}: register answered {status}: {body[:300]!r}")
    credentials = {"email": registration["email"], "password": PASSWORD}
    status, headers, body = http_request(server.port, "POST", "/auth/login", credentials)
    if status != 200:
        raise RuntimeError(f"{server.name}: login answered {status}: {body[:300]!r}")
    cookie = headers.get("set-cookie", "").split(";", 1)[0]
    status, _, body = http_request(server.port, "GET", "/auth/me", headers={"Cookie": cookie})
    if status != 200:
        raise RuntimeError(f"{server.name}: /auth/me answered {status}: {body[:300]!r}")
    return cookie


# ----------------------------------------------------------------------------- load


def wrk_script(endpoint: Endpoint, workdir: Path) -> Path:
    path = workdir / "wrk" / endpoint.script
    if not path.exists():
        path.parent.mkdir(exist_ok=True)
        body = (BENCH / "wrk" / endpoint.script).read_text()
        path.write_text(body + "\n" + (BENCH / "wrk" / "report.lua").read_text())
    return path


def run_wrk(
    server: Server,
    endpoint: Endpoint,
    connections: int,
    duration: float,
    threads: int,
    workdir: Path,
    timeout: float,
    open_seconds: float = 0,
) -> dict[str, int]:
    """wrk's figures; with `open_seconds`, the connections are opened that long before the first
    request is sent, and `duration_us` counts from then."""
    threads = min(threads, connections)
    env = os.environ | {
        "BENCH_COOKIE": server.cookie,
        "BENCH_ITEMS": str(ITEMS),
        "BENCH_PREFIX": f"bench-{secrets.token_hex(4)}",
        "BENCH_OPEN_MS": str(round(open_seconds * 1000)),
        "BENCH_CONNECTIONS_PER_THREAD": str(connections // threads),
    }
    argv = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(duration + open_seconds))}s",
        "--timeout",
        f"{timeout:g}s",
        "-s",
        str(wrk_script(endpoint, workdir)),
        server.url,
    ]
    proc = subprocess.run(
        argv, env=env, capture_output=True, text=True, timeout=duration + 60, check=False
    )
    match = re.search(r"^BENCH_RESULT (\{.*\})$", proc.stdout, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"wrk gave no result:\n{proc.stdout}\n{proc.stderr}")
    result: dict[str, int] = json.loads(match.group(1))
    result["duration_us"] -= round(open_seconds * 1e6)
    return result


def measure(
    server: Server,
    endpoint: Endpoint,
    connections: int,
    options: Options,
    workdir: Path,
    sequence: int,
) -> Run:
    if options.warmup > 0:
        run_wrk(
            server, endpoint, connections, options.warmup, options.threads, workdir, options.timeout
        )
    raw = run_wrk(
        server,
        endpoint,
        connections,
        options.duration,
        options.threads,
        workdir,
        options.timeout,
        open_seconds=OPEN_SECONDS,
    )
    rss, hwm = memory_mib(server.pid)
    detail = {k: raw[k] for k in ("connect", "read", "write", "status", "timeout") if raw[k]}
    seconds = raw["duration_us"] / 1e6
    run = Run(
        target=server.name,
        endpoint=endpoint.key,
        connections=connections,
        rps=raw["requests"] / seconds if seconds else 0.0,
        p50_ms=raw["p50_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
        max_ms=raw["max_us"] / 1000,
        errors=sum(detail.values()),
        error_detail=detail,
        rss_mib=rss,
        hwm_mib=hwm,
        sequence=sequence,
    )
    log(
        f"{server.name:34} {endpoint.label:20} c={connections:<3} {run.rps:7.0f} req/s"
        f"  p50 {run.p50_ms:6.1f} ms  p99 {run.p99_ms:6.1f} ms  errors {run.errors}"
    )
    return run


def block_order(participants: list[str], every: int) -> list[list[str]]:
    """Baselines first, after every `every` variants, and last."""
    groups: list[list[str]] = [list(BASELINES)]
    for start in range(0, len(participants), every):
        groups.append(participants[start : start + every])
        groups.append(list(BASELINES))
    return groups


def run_block(
    endpoint: Endpoint,
    connections: int,
    servers: dict[str, Server],
    participants: list[str],
    options: Options,
    workdir: Path,
    runs: list[Run],
) -> None:
    sequence = len(runs)
    block: list[Run] = []
    for group in block_order(participants, options.baseline_every):
        for name in group:
            block.append(measure(servers[name], endpoint, connections, options, workdir, sequence))
            sequence += 1
    for run in block:
        if run.target in BASELINES:
            continue
        before = [r for r in block if r.target in BASELINES and r.sequence < run.sequence]
        after = [r for r in block if r.target in BASELINES and r.sequence > run.sequence]
        for attribute, baseline in (("vs_starlette", BASELINES[0]), ("vs_fastapi", BASELINES[1])):
            near = [r for r in (before[-2:] + after[:2]) if r.target == baseline]
            mean = sum(r.rps for r in near) / len(near) if near else 0
            setattr(run, attribute, run.rps / mean if mean else None)
    runs.extend(block)


# ----------------------------------------------------------------------------- report


def machine_description() -> str:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = ""
    with contextlib.suppress(OSError, ValueError, IndexError):
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f", {kib / 1024 / 1024:.0f} GiB"
    return f"{os.cpu_count()} cores ({cpu}){memory}, {platform.system()} {platform.release()}"


def versions(python: Path, packages: Sequence[str]) -> str:
    code = (
        "import importlib.metadata as m, sys\n"
        "for p in sys.argv[1:]:\n"
        "    try: print(f'{p} {m.version(p)}')\n"
        "    except m.PackageNotFoundError: pass\n"
    )
    proc = subprocess.run(
        [str(python), "-c", code, *packages], capture_output=True, text=True, check=False
    )
    return ", ".join(proc.stdout.split("\n")).strip(", ").replace(", ,", ",")


def fmt_ratio(value: float | None) -> str:
    return f"{value:.2f}×" if value is not None else "–"


def report(
    runs: list[Run],
    prepared: list[Prepared],
    header: list[str],
    matrix: tuple[float, str] | None,
    total_s: float,
    standard: int,
) -> str:
    out = [*header, ""]
    out.append(
        "| service | endpoint | conns | req/s | p50 ms | p99 ms | p99/p50 | errors | RSS MiB "
        "| × Starlette+asyncpg | × FastAPI+asyncpg |"
    )
    out.append("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
    names = [*BASELINES, REFERENCE, *(p.variant.name for p in prepared)]
    order = {name: n for n, name in enumerate(names)}
    keys = sorted(
        {(r.endpoint, r.connections) for r in runs},
        key=lambda k: (k[1], list(ENDPOINTS).index(k[0])),
    )
    for endpoint, connections in keys:
        selected = [r for r in runs if r.endpoint == endpoint and r.connections == connections]
        by_target: dict[str, list[Run]] = {}
        for run in selected:
            by_target.setdefault(run.target, []).append(run)
        for target in sorted(by_target, key=lambda t: order.get(t, 99)):
            group = by_target[target]
            n = len(group)
            rps = sum(r.rps for r in group) / n
            p50 = sum(r.p50_ms for r in group) / n
            p99 = sum(r.p99_ms for r in group) / n
            errors = sum(r.errors for r in group)
            rss = max(r.rss_mib for r in group)
            label = f"*{target}*" if target in (*BASELINES, REFERENCE) else target
            if target in BASELINES and n > 1:
                spread = max(r.rps for r in group) / min(r.rps for r in group) - 1
                label += f" ({n} runs, ±{spread * 50:.0f}%)"
            ratios = [
                fmt_ratio(
                    sum(getattr(r, a) for r in group) / n
                    if all(getattr(r, a) is not None for r in group)
                    else None
                )
                for a in ("vs_starlette", "vs_fastapi")
            ]
            out.append(
                f"| {label} | {ENDPOINTS[endpoint].label} | {connections} | {rps:,.0f} "
                f"| {p50:.1f} | {p99:.1f} | {p99 / p50 if p50 else 0:.1f} | {errors} "
                f"| {rss:.0f} | {ratios[0]} | {ratios[1]} |"
            )
    out += ["", "| variant | render s | uv sync s | generated suite s | suite result |"]
    out.append("|---|--:|--:|--:|---|")
    for p in prepared:
        suite = f"{p.suite_s:.1f}" if p.suite_s is not None else "–"
        out.append(
            f"| {p.variant.name} | {p.render_s:.2f} | {p.install_s:.1f} | {suite} "
            f"| {p.suite_summary or '–'} |"
        )
    prep_total = sum(p.render_s + p.install_s + (p.suite_s or 0) for p in prepared)
    out.append("")
    out.append(
        f"Variants prepared (render + uv sync + suite, {len(prepared)} variants): "
        f"{prep_total:.0f} s; whole benchmark: {total_s / 60:.1f} min."
    )
    if matrix is not None:
        out.append(
            f"Full matrix (the template's own `pytest -m variant -n 2`: every variant rendered, "
            f"installed, tested, type-checked, linted): {matrix[0] / 60:.1f} min — {matrix[1]}"
        )
    out += ["", *targets(runs, prepared, standard)]
    return "\n".join(out)


def targets(runs: list[Run], prepared: list[Prepared], standard: int) -> list[str]:
    """The performance issue's targets, checked against this run (ratios and latency spread at
    the standard concurrency; errors and stalls at the high one)."""
    lines = ["Targets:"]

    def check(ok: bool, text: str) -> None:
        lines.append(f"- [{'x' if ok else ' '}] {text}")

    pg = {p.variant.name for p in prepared if p.variant.is_postgres}
    for endpoint, floor in (("get", 0.45), ("post", 0.40)):
        selected = [
            r
            for r in runs
            if r.target in pg and r.endpoint == endpoint and r.connections == standard
        ]
        if selected:
            worst = min(selected, key=lambda r: r.vs_fastapi or 0)
            check(
                all((r.vs_fastapi or 0) >= floor for r in selected),
                f"PostgreSQL {ENDPOINTS[endpoint].label} ≥ {floor}× FastAPI+asyncpg "
                f"(lowest {fmt_ratio(worst.vs_fastapi)}, {worst.target})",
            )
    ours = [r for r in runs if r.target not in (*BASELINES, REFERENCE)]
    high = [r for r in ours if r.connections > standard]
    if high:
        bad = [r for r in high if r.errors or r.rps <= 0]
        check(
            not bad,
            f"no errors, no stall at {high[0].connections} connections"
            + (f" (failing: {', '.join(f'{r.target} {r.endpoint}' for r in bad)})" if bad else ""),
        )
    for group in ([r for r in ours if r.connections == standard], high):
        if group:
            worst = max(group, key=lambda r: r.p99_ms / r.p50_ms if r.p50_ms else 0)
            worst_ratio = worst.p99_ms / worst.p50_ms if worst.p50_ms else 0
            check(
                worst_ratio < 5,
                f"p99 < 5× p50 at {worst.connections} connections (highest {worst_ratio:.1f}×: "
                f"{worst.target} {ENDPOINTS[worst.endpoint].label})",
            )
    suites = [p for p in prepared if p.suite_s is not None]
    if suites:
        slowest = max(suites, key=lambda p: p.suite_s or 0)
        check(
            all(p.suite_ok for p in suites) and (slowest.suite_s or 0) < 10,
            f"generated suites pass in < 10 s (slowest {slowest.suite_s:.1f} s: "
            f"{slowest.variant.name})",
        )
    if prepared:
        slowest = max(prepared, key=lambda p: p.render_s)
        check(
            slowest.render_s < 1,
            f"render < 1 s (slowest {slowest.render_s:.2f} s: {slowest.variant.name})",
        )
    return lines


# ----------------------------------------------------------------------------- main


def parse_list(value: str, allowed: Sequence[str], what: str) -> list[str]:
    items = [v.strip() for v in value.split(",") if v.strip()]
    if items == ["all"]:
        return list(allowed)
    for item in items:
        if item not in allowed:
            raise argparse.ArgumentTypeError(f"unknown {what} {item!r}; choose from {allowed}")
    return items


def parse_args(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=(
            "Render generated services, seed them, serve each with one uvicorn worker and load "
            "them with wrk, interleaved with two baselines (Starlette + asyncpg, FastAPI + "
            "asyncpg); print requests/s, p50/p99, errors, memory and ratios."
        ),
    )
    parser.add_argument("--drivers", default="all", help="comma list of: " + ",".join(DRIVERS))
    parser.add_argument(
        "--strategies", default="all", help="comma list of: " + ",".join(STRATEGIES)
    )
    parser.add_argument(
        "--user-sessions",
        default="database,cookie",
        help="comma list of: database,cookie,none (default database,cookie)",
    )
    parser.add_argument(
        "--endpoints",
        default="get,list,post,me",
        help="endpoints measured on variants: get,list,post,me (me needs user sessions)",
    )
    parser.add_argument(
        "--cookie-endpoints",
        default="me",
        help="endpoints measured on user_sessions=cookie variants (default me)",
    )
    parser.add_argument("-c", "--connections", type=int, default=32)
    parser.add_argument(
        "--high-connections",
        type=int,
        default=128,
        help="second, higher concurrency for --high-endpoints (0: none)",
    )
    parser.add_argument("--high-endpoints", default="get,post")
    parser.add_argument("-d", "--duration", type=float, default=10, help="seconds per run")
    parser.add_argument("--warmup", type=float, default=2, help="seconds before each run")
    parser.add_argument("-t", "--threads", type=int, default=1, help="wrk threads")
    parser.add_argument(
        "--timeout",
        type=float,
        default=2,
        help="seconds after which wrk counts a request as an error (wrk's default: 2)",
    )
    parser.add_argument(
        "--baseline-every", type=int, default=3, help="re-run the baselines every N variants"
    )
    parser.add_argument("--no-suite", action="store_true", help="skip the generated suites")
    parser.add_argument(
        "--orm-baseline",
        action="store_true",
        help="also measure the straightforward FastAPI + SQLAlchemy ORM app (bench/baselines)",
    )
    parser.add_argument(
        "--matrix",
        action="store_true",
        help="afterwards, time the template's full variant run (pytest -m variant -n 2)",
    )
    parser.add_argument(
        "--database-url",
        help="a PostgreSQL server (postgresql://user@host:port/postgres) on which databases may "
        "be created; default: a throwaway cluster from the binaries on the machine",
    )
    parser.add_argument("--workdir", type=Path, help="default: a temporary directory")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--python", help="interpreter for the projects (default: uv's choice)")
    parser.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment for every server, baselines included (e.g. DATABASE_POOL_SIZE=20)",
    )
    parser.add_argument("--output", type=Path, help="also write the report to this file")
    args = parser.parse_args(argv)

    variants: list[Variant] = []
    user_sessions = parse_list(args.user_sessions, USER_SESSIONS, "user_sessions")
    for us in user_sessions:
        for driver in parse_list(args.drivers, DRIVERS, "driver"):
            for strategy in parse_list(args.strategies, STRATEGIES, "strategy"):
                variants.append(Variant(driver, strategy, us))
    server_env = {}
    for item in args.server_env:
        name, sep, value = item.partition("=")
        if not sep:
            parser.error(f"--server-env {item!r}: expected NAME=VALUE")
        server_env[name] = value
    return Options(
        variants=variants,
        endpoints=parse_list(args.endpoints, list(ENDPOINTS), "endpoint"),
        cookie_endpoints=parse_list(args.cookie_endpoints, list(ENDPOINTS), "endpoint"),
        connections=args.connections,
        high_connections=args.high_connections,
        high_endpoints=parse_list(args.high_endpoints, list(ENDPOINTS), "endpoint")
        if args.high_connections
        else [],
        duration=args.duration,
        warmup=args.warmup,
        timeout=args.timeout,
        threads=args.threads,
        baseline_every=max(1, args.baseline_every),
        suite=not args.no_suite,
        matrix=args.matrix,
        orm_baseline=args.orm_baseline,
        database_url=args.database_url,
        workdir=args.workdir,
        keep=args.keep,
        python=args.python,
        server_env=server_env,
        output=args.output,
    )


def endpoints_for(variant: Variant, options: Options) -> list[str]:
    wanted = options.cookie_endpoints if variant.user_sessions == "cookie" else options.endpoints
    return [e for e in wanted if not (ENDPOINTS[e].needs_user and variant.user_sessions == "none")]


def run_matrix(server: PostgresServer) -> tuple[float, str]:
    env = os.environ | {"TEST_POSTGRES_URL": server.url()}
    argv = [
        uv_binary(),
        "run",
        "pytest",
        "-m",
        "variant",
        "-n",
        "2",
        "-q",
        "-p",
        "no:cacheprovider",
    ]
    log("full matrix: " + " ".join(argv))
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    lines = proc.stdout.strip().splitlines()
    return seconds, lines[-1] if lines else f"exit {proc.returncode}"


def main(argv: Sequence[str] | None = None) -> None:
    options = parse_args(argv)
    if shutil.which("wrk") is None:
        sys.exit(
            "wrk is not installed (Debian/Ubuntu: apt-get install wrk; macOS: brew install wrk)"
        )
    started = time.perf_counter()
    workdir = options.workdir or Path(tempfile.mkdtemp(prefix="cfs-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    servers: dict[str, Server] = {}
    runs: list[Run] = []
    prepared: list[Prepared] = []
    needed_servers = len(options.variants) + len(BASELINES) + 1
    pool = int(options.server_env.get("DATABASE_POOL_SIZE", 10)) + int(
        options.server_env.get("DATABASE_MAX_OVERFLOW", 10)
    )
    try:
        with postgres(options.database_url, needed_servers * pool) as server:
            log(f"PostgreSQL: {server}; work directory {workdir}")
            admin_python = prepare_baselines(workdir, options.python)
            check_run(
                [str(admin_python), "-m", "bench.dbtool", "createdb", server.url(), "bench_base"],
                REPO,
                child_env(),
            )
            baseline_url = server.url("postgresql", "bench_base")
            token = secrets.token_urlsafe(32)
            check_run(
                [
                    str(admin_python),
                    "-m",
                    "bench.dbtool",
                    "baseline",
                    baseline_url,
                    str(ITEMS),
                    token,
                ],
                REPO,
                child_env(),
            )
            for variant in options.variants:
                log(f"preparing {variant.name}")
                prepared.append(
                    prepare_variant(
                        variant,
                        endpoints_for(variant, options),
                        workdir,
                        server,
                        admin_python,
                        options,
                    )
                )
                p = prepared[-1]
                log(
                    f"{variant.name}: render {p.render_s:.2f}s, uv sync {p.install_s:.1f}s, "
                    f"suite {p.suite_s or 0:.1f}s ({p.suite_summary})"
                )

            for name in [*BASELINES, *([REFERENCE] if options.orm_baseline else [])]:
                env = child_env({"BENCH_DATABASE_URL": baseline_url, **options.server_env})
                argv = [str(admin_python), "-m", "uvicorn", BASELINE_MODULES[name]]
                servers[name] = Server(name, argv, REPO, env, workdir / f"{name}.log")
                servers[name].start("/items/1")
                servers[name].cookie = f"session={token}"
            for p in prepared:
                servers[p.variant.name] = variant_server(p, workdir, options)
                servers[p.variant.name].start("/health/ready")
                if "me" in p.endpoints:
                    servers[p.variant.name].cookie = log_in(servers[p.variant.name])

            loads = [(e, options.connections) for e in ENDPOINTS]
            loads += [(e, options.high_connections) for e in options.high_endpoints]
            for endpoint_key, connections in loads:
                participants = [p.variant.name for p in prepared if endpoint_key in p.endpoints]
                if not participants:
                    continue
                if options.orm_baseline:
                    participants.insert(0, REFERENCE)
                run_block(
                    ENDPOINTS[endpoint_key],
                    connections,
                    servers,
                    participants,
                    options,
                    workdir,
                    runs,
                )

            for s in servers.values():
                s.stop()
            header = [
                f"Benchmark of {dt.datetime.now().astimezone():%Y-%m-%d %H:%M %Z} on "
                f"{machine_description()}.",
                f"PostgreSQL: {server.origin} server; {ITEMS:,} items seeded; one uvicorn worker "
                f"(uvloop, httptools) per service; wrk -t{options.threads} --timeout "
                f"{options.timeout:g}s, "
                f"{options.duration:g} s runs after {options.warmup:g} s warm-up, on connections "
                f"opened {OPEN_SECONDS:g} s before; baselines re-run "
                f"every {options.baseline_every} variants, ratios against the runs either side.",
                "Baselines: "
                + versions(
                    admin_python, ["fastapi", "starlette", "uvicorn", "asyncpg", "pydantic"]
                ),
            ]
            if prepared:
                header.append(
                    "Generated projects: "
                    + versions(
                        prepared[0].project / ".venv" / "bin" / "python",
                        [
                            "fastapi",
                            "sqlalchemy",
                            "asyncpg",
                            "psycopg",
                            "aiosqlite",
                            "uvicorn",
                            "pydantic",
                        ],
                    )
                )
            matrix = run_matrix(server) if options.matrix else None
            text = report(
                runs, prepared, header, matrix, time.perf_counter() - started, options.connections
            )
            print(text)
            if options.output:
                options.output.write_text(text + "\n")
            (workdir / "results.json").write_text(
                json.dumps(
                    {
                        "runs": [asdict(r) for r in runs],
                        "variants": [
                            {
                                **asdict(p),
                                "variant": p.variant.name,
                                "project": str(p.project),
                                "secret_env": sorted(p.secret_env),  # names only
                            }
                            for p in prepared
                        ],
                        "matrix_s": matrix[0] if matrix else None,
                    },
                    indent=2,
                )
            )
    finally:
        for s in servers.values():
            s.stop()
        if options.keep or options.workdir:
            log(f"work directory kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
