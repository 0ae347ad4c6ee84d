"""A rendered, installed and migrated variant of the template, ready to be served."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from toolkit.answers import Variant
from toolkit.environment import base_python, project_env
from toolkit.processes import drop_privileges, run
from toolkit.render import render

# Served by every server process of the suite: the project's own application, with the payment
# gateway replaced by a fake that declines charges of an odd number of cents (the generated tests'
# FakePaymentGateway, told to fail), so that payment failures can be provoked over HTTP.
SERVED_APP_MODULE = "reliability_app"
SERVED_APP = f"{SERVED_APP_MODULE}:app"
_SERVED_APP_SOURCE = '''\
"""Written by the template's reliability suite; not part of the project."""

from {package}.main import app
'''
_DECLINING_GATEWAY_SOURCE = """
from {package}.orders.payments import PaymentDeclinedError, get_payment_gateway


class OddAmountsDeclined:
    async def charge(self, *, amount_cents: int, reference: str) -> None:
        if amount_cents % 2:
            raise PaymentDeclinedError(reference)


_gateway = OddAmountsDeclined()
app.dependency_overrides[get_payment_gateway] = lambda: _gateway
"""


def unprivileged_python(user: str) -> str | None:
    """As root, an interpreter (>= 3.11) that `user` may run, for servers that must not run as
    root (the SQLite outage check makes their database unreadable to them, which root ignores).
    The interpreter running this suite may live where others cannot go (~root/.pyenv)."""
    candidates = [base_python(), *(f"/usr/bin/python3.{n}" for n in (13, 12, 11))]
    candidates += [f"/usr/local/bin/python3.{n}" for n in (13, 12, 11)]
    candidates += [p for p in (shutil.which("python3"),) if p]
    for candidate in dict.fromkeys(candidates):
        if not Path(candidate).is_file():
            continue
        try:
            proc = subprocess.run(
                [candidate, "-c", "import sys, sqlite3; assert sys.version_info >= (3, 11)"],
                cwd="/",
                capture_output=True,
                timeout=30,
                check=False,
                **drop_privileges(user),  # type: ignore[call-overload]
            )
        except (OSError, subprocess.SubprocessError):
            continue
        if proc.returncode == 0:
            return candidate
    return None


@dataclass
class Project:
    variant: Variant
    root: Path
    package: str = "my_service"
    slug: str = "my-service"
    run_as: str | None = None
    """The OS user its servers run as (None: ours); see unprivileged_python()."""
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def python(self) -> Path:
        return self.root / ".venv" / "bin" / "python"

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """The generated project's environment: nothing of ours leaks in."""
        return project_env(extra)

    def prepare(self, python: str | None = None) -> None:
        """Render the working tree of the template, `uv sync` it (no dev tools; with `python`
        when given) and add the served-app module. Raises RuntimeError with the command's output
        when a step fails."""
        render(self.root, self.variant.answers, skip_tasks=True)
        env = self.env({"UV_COMPILE_BYTECODE": "1", **({"UV_PYTHON": python} if python else {})})
        result = run(["uv", "sync", "--no-dev"], self.root, env=env, timeout=900).check("uv sync")
        self.timings["sync"] = result.seconds
        (self.root / f"{SERVED_APP_MODULE}.py").write_text(
            _SERVED_APP_SOURCE.format(package=self.package)
            + (
                _DECLINING_GATEWAY_SOURCE.format(package=self.package)
                if self.variant.has_orders
                else ""
            )
        )
        # Servers may run as an unprivileged user (SQLite checks, when we are root): they must be
        # able to read the project and its virtual environment.
        for parent in [self.root, *self.root.parents]:
            if parent == Path("/"):
                break
            mode = parent.stat().st_mode
            if not mode & stat.S_IXOTH:
                os.chmod(parent, mode | stat.S_IXOTH | stat.S_IROTH)

    def migrate(self, env: Mapping[str, str]) -> None:
        """`<slug> db upgrade` with the servers' environment (`env`)."""
        run(
            [str(self.root / ".venv" / "bin" / self.slug), "db", "upgrade"],
            self.root,
            env=dict(env),
            timeout=120,
        ).check("migration")
