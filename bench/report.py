"""The report: one Markdown table of every run, the preparation times, and the targets checked."""

from __future__ import annotations

import contextlib
import os
import platform
import subprocess
from collections.abc import Sequence
from pathlib import Path

from bench.load import ENDPOINTS, Run
from bench.services import BASELINES, REFERENCES, REPLICA_READS, SQLITE_BASELINE, Prepared


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
    ratio_attributes = ["vs_starlette", "vs_fastapi"]
    columns = "| × Starlette+asyncpg | × FastAPI+asyncpg |"
    if any(r.target == SQLITE_BASELINE for r in runs):
        ratio_attributes.append("vs_aiosqlite")
        columns += " × FastAPI+aiosqlite |"
    out.append(
        "| service | endpoint | conns | req/s | p50 ms | p99 ms | p99/p50 | errors | RSS MiB "
        "| switches/req " + columns
    )
    out.append("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|" + "--:|" * len(ratio_attributes))
    names = [
        *BASELINES,
        *REFERENCES,
        *(label for p in prepared for label in (p.variant.label, p.variant.label + REPLICA_READS)),
    ]
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
            switches = sum(r.switches_per_request for r in group) / n
            label = f"*{target}*" if target in (*BASELINES, *REFERENCES) else target
            if target in BASELINES and n > 1:
                spread = max(r.rps for r in group) / min(r.rps for r in group) - 1
                label += f" ({n} runs, ±{spread * 50:.0f}%)"
            ratios = [
                fmt_ratio(
                    sum(getattr(r, a) for r in group) / n
                    if all(getattr(r, a) is not None for r in group)
                    else None
                )
                for a in ratio_attributes
            ]
            if target in BASELINES:
                ratios = ["–"] * len(ratio_attributes)
            elif target == SQLITE_BASELINE or "aiosqlite" not in target:
                ratios[2:] = ["–"] * len(ratios[2:])
            out.append(
                f"| {label} | {ENDPOINTS[endpoint].label} | {connections} | {rps:,.0f} "
                f"| {p50:.1f} | {p99:.1f} | {p99 / p50 if p50 else 0:.1f} | {errors} "
                f"| {rss:.0f} | {switches:.1f} | " + " | ".join(ratios) + " |"
            )
    out += ["", "| variant | render s | uv sync s | generated suite s | suite result |"]
    out.append("|---|--:|--:|--:|---|")
    for p in prepared:
        suite = f"{p.suite_s:.1f}" if p.suite_s is not None else "–"
        out.append(
            f"| {p.variant.label} | {p.render_s:.2f} | {p.install_s:.1f} | {suite} "
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
    """The performance targets, checked against this run (ratios and latency spread at
    the standard concurrency; errors and stalls at the high one)."""
    lines = ["Targets:"]

    def check(ok: bool, text: str) -> None:
        lines.append(f"- [{'x' if ok else ' '}] {text}")

    pg = {p.variant.label for p in prepared if p.variant.is_postgres}
    sqlite = {p.variant.label for p in prepared if not p.variant.is_postgres}
    goals = (
        (pg, "get", 0.45, "vs_fastapi", "PostgreSQL", "FastAPI+asyncpg"),
        (pg, "post", 0.40, "vs_fastapi", "PostgreSQL", "FastAPI+asyncpg"),
        (sqlite, "get", 0.45, "vs_aiosqlite", "SQLite", "FastAPI+aiosqlite"),
        (sqlite, "post", 0.35, "vs_aiosqlite", "SQLite", "FastAPI+aiosqlite"),
    )
    for labels, endpoint, floor, attribute, database, baseline in goals:
        selected = [
            r
            for r in runs
            if r.target in labels and r.endpoint == endpoint and r.connections == standard
        ]
        if selected:
            worst = min(selected, key=lambda r: getattr(r, attribute) or 0)
            check(
                all((getattr(r, attribute) or 0) >= floor for r in selected),
                f"{database} {ENDPOINTS[endpoint].label} ≥ {floor}× {baseline} "
                f"(lowest {fmt_ratio(getattr(worst, attribute))}, {worst.target})",
            )
    ours = [r for r in runs if r.target not in (*BASELINES, *REFERENCES)]
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
            f"{slowest.variant.label})",
        )
    if prepared:
        slowest = max(prepared, key=lambda p: p.render_s)
        check(
            slowest.render_s < 1,
            f"render < 1 s (slowest {slowest.render_s:.2f} s: {slowest.variant.label})",
        )
    return lines
