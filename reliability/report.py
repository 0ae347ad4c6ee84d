"""Rows of the result table: which check, on which variant, what was tried, what held."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field

PASS, FAIL, SKIP = "PASS", "FAIL", "SKIP"


@dataclass
class Row:
    variant: str
    check: str
    tried: str
    held: list[str] = field(default_factory=list)  # what was verified and held
    failed: list[str] = field(default_factory=list)  # what did not hold
    skipped: str = ""
    seconds: float = 0.0

    @property
    def result(self) -> str:
        if self.failed:
            return FAIL
        if self.skipped:
            return SKIP
        return PASS

    def expect(self, condition: bool, held: str, failed: str | None = None) -> bool:
        """Record `held` when the condition is true, else `failed` (default: 'NOT ' + held)."""
        if condition:
            self.held.append(held)
        else:
            self.failed.append(failed or f"NOT {held}")
        return condition


WIDTHS = {"variant": 29, "check": 18, "tried": 46, "outcome": 70, "result": 6, "time": 5}


def _cell(text: str, width: int) -> list[str]:
    return textwrap.wrap(text, width, break_long_words=True, break_on_hyphens=False) or [""]


def format_rows(rows: list[Row]) -> str:
    header = ["variant", "check", "tried", "what held (✓) / what did not (✗)", "result", "time"]
    widths = list(WIDTHS.values())
    lines = [
        "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)),
        "  ".join("-" * w for w in widths),
    ]
    for row in rows:
        outcome = [f"✗ {f}" for f in row.failed] + [f"✓ {h}" for h in row.held]
        if row.skipped:
            outcome.insert(0, f"skipped: {row.skipped}")
        outcome_lines: list[str] = []
        for entry in outcome:
            wrapped = _cell(entry, widths[3] - 2)
            outcome_lines += [wrapped[0], *("  " + w for w in wrapped[1:])]
        cells = [
            _cell(row.variant, widths[0]),
            _cell(row.check, widths[1]),
            _cell(row.tried, widths[2]),
            outcome_lines or [""],
            [row.result],
            [f"{row.seconds:.0f}s"],
        ]
        height = max(len(c) for c in cells)
        for i in range(height):
            lines.append(
                "  ".join(
                    (c[i] if i < len(c) else "").ljust(w)
                    for c, w in zip(cells, widths, strict=True)
                ).rstrip()
            )
        lines.append("")
    return "\n".join(lines)


def summary(rows: list[Row]) -> str:
    counts = {r: sum(row.result == r for row in rows) for r in (PASS, FAIL, SKIP)}
    return f"{counts[PASS]} passed, {counts[FAIL]} failed, {counts[SKIP]} skipped"


def matrix(rows: list[Row]) -> str:
    """One line per variant, one column per check: the results at a glance."""
    checks = list(dict.fromkeys(row.check for row in rows))
    variants = list(dict.fromkeys(row.variant for row in rows))
    result = {(row.variant, row.check): row.result for row in rows}
    width = max([len(v) for v in variants] + [7])
    heads = [c.split(" ", 1)[-1] if c[0].isdigit() else c for c in checks]
    lines = ["  ".join(["variant".ljust(width), *heads])]
    for variant in variants:
        cells = [
            result.get((variant, c), "-").ljust(len(h)) for c, h in zip(checks, heads, strict=True)
        ]
        lines.append("  ".join([variant.ljust(width), *cells]).rstrip())
    return "\n".join(lines)
