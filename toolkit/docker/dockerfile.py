"""The Dockerfile read into stages and instructions, and the build context `.dockerignore` lets
through (docker-py's own pattern matcher)."""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from docker.utils.build import PatternMatcher

from toolkit.docker import EmulationError


@dataclass
class Instruction:
    keyword: str
    flags: dict[str, list[str]]
    args: str


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)


def parse_dockerfile(text: str) -> list[Stage]:
    lines: list[str] = []
    pending = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        lines.append(pending + stripped)
        pending = ""
    stages: list[Stage] = []
    for line in lines:
        keyword, _, rest = line.partition(" ")
        flags: dict[str, list[str]] = {}
        rest = rest.strip()
        while rest.startswith("--"):
            flag, _, rest = rest.partition(" ")
            name, _, value = flag[2:].partition("=")
            flags.setdefault(name, []).append(value)
            rest = rest.strip()
        keyword = keyword.upper()
        if keyword == "FROM":
            parts = rest.split()
            name = parts[2] if len(parts) == 3 and parts[1].upper() == "AS" else None
            stages.append(Stage(parts[0], name))
        elif not stages:
            raise EmulationError(f"{keyword} before FROM")
        else:
            stages[-1].instructions.append(Instruction(keyword, flags, rest))
    return stages


def build_context(context: Path) -> list[str]:
    """The files of the build context (relative paths) as .dockerignore filters it."""
    ignore = context / ".dockerignore"
    patterns = [
        line.strip()
        for line in (ignore.read_text().splitlines() if ignore.exists() else [])
        if line.strip() and not line.strip().startswith("#")
    ]
    included = PatternMatcher(patterns).walk(str(context))
    return sorted(p for p in included if (context / p).is_file())


def expand(value: str, env: Mapping[str, str]) -> str:
    return re.sub(
        r"\$\{(\w+)\}|\$(\w+)",
        lambda m: env.get(m.group(1) or m.group(2), ""),
        value,
    )


def parse_env(args: str, env: Mapping[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for word in shlex.split(args):
        key, sep, value = word.partition("=")
        if not sep:
            raise EmulationError(f"ENV {args!r}: only the KEY=value form is emulated")
        out[key] = expand(value, {**env, **out})
    return out
