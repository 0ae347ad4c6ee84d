"""The load: wrk against each service in turn, in blocks that interleave the baselines with the
variants; one Run per measurement."""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bench.services import BASELINES, BENCH, ITEMS, SQLITE_BASELINE, Server, log, pinned

if TYPE_CHECKING:
    from bench.options import Options

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
    switches_per_request: float = 0.0
    vs_starlette: float | None = None
    vs_fastapi: float | None = None
    vs_aiosqlite: float | None = None


def memory_mib(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) in MiB of a process and its descendants (uvicorn's workers), summed."""
    values = {"VmRSS": 0.0, "VmHWM": 0.0}
    for process in processes(pid):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{process}/status").read_text().splitlines():
                key, _, rest = line.partition(":")
                if key in values:
                    values[key] += int(rest.split()[0]) / 1024
    return values["VmRSS"], values["VmHWM"]


def processes(pid: int) -> list[int]:
    """The process and its descendants (uvicorn's workers)."""
    found = [pid]
    for process in found:
        with contextlib.suppress(OSError):
            for task in os.listdir(f"/proc/{process}/task"):
                children = Path(f"/proc/{process}/task/{task}/children").read_text().split()
                found += [int(child) for child in children]
    return found


def context_switches(pid: int) -> int:
    """Context switches so far of every thread of the process and its descendants: each call
    that hands work to another thread (aiosqlite's) and waits for it costs some."""
    total = 0
    for process in processes(pid):
        with contextlib.suppress(OSError):
            for task in os.listdir(f"/proc/{process}/task"):
                for line in Path(f"/proc/{process}/task/{task}/status").read_text().splitlines():
                    if "ctxt_switches:" in line:
                        total += int(line.split()[1])
    return total


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
    cpus: str | None = None,
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
        *pinned([], cpus),
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
            server,
            endpoint,
            connections,
            options.warmup,
            options.threads,
            workdir,
            options.timeout,
            cpus=options.wrk_cpus,
        )
    switches = context_switches(server.pid)
    raw = run_wrk(
        server,
        endpoint,
        connections,
        options.duration,
        options.threads,
        workdir,
        options.timeout,
        open_seconds=OPEN_SECONDS,
        cpus=options.wrk_cpus,
    )
    switches = context_switches(server.pid) - switches
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
        switches_per_request=switches / raw["requests"] if raw["requests"] else 0.0,
    )
    log(
        f"{server.name:34} {endpoint.label:20} c={connections:<3} {run.rps:7.0f} req/s"
        f"  p50 {run.p50_ms:6.1f} ms  p99 {run.p99_ms:6.1f} ms  errors {run.errors}"
        f"  {run.switches_per_request:5.1f} switches/request"
    )
    return run


def block_order(
    participants: list[str], every: int, baselines: tuple[str, ...] = BASELINES
) -> list[list[str]]:
    """Baselines first, after every `every` variants, and last."""
    groups: list[list[str]] = [list(baselines)]
    for start in range(0, len(participants), every):
        groups.append(participants[start : start + every])
        groups.append(list(baselines))
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
    baselines = tuple(b for b in BASELINES if b in servers)
    for group in block_order(participants, options.baseline_every, baselines):
        for name in group:
            block.append(measure(servers[name], endpoint, connections, options, workdir, sequence))
            sequence += 1
    for run in block:
        if run.target in BASELINES:
            continue
        before = [r for r in block if r.target in BASELINES and r.sequence < run.sequence]
        after = [r for r in block if r.target in BASELINES and r.sequence > run.sequence]
        ratios = (
            ("vs_starlette", BASELINES[0]),
            ("vs_fastapi", BASELINES[1]),
            ("vs_aiosqlite", SQLITE_BASELINE),
        )
        for attribute, baseline in ratios:
            near = [r for r in before if r.target == baseline][-1:]
            near += [r for r in after if r.target == baseline][:1]
            mean = sum(r.rps for r in near) / len(near) if near else 0
            setattr(run, attribute, run.rps / mean if mean else None)
    runs.extend(block)
