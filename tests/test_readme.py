"""The README's two commands, run as written: the first on machines whose python3 is "externally
managed" (PEP 668), whose python3 lets pip install, and that have uv already, each followed by
`copier update` on the project it rendered; the second is the one .ci/run runs."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sysconfig
import time
import urllib.request
from pathlib import Path

import pytest

from toolkit.environment import project_env, uv_binary
from toolkit.render import TEMPLATE_ROOT

README = TEMPLATE_ROOT / "README.md"
SYSTEM_PYTHON = Path("/usr/bin/python3")
SERVE_URL = "http://127.0.0.1:8000/health/ready"
GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.com",
}


def readme_commands() -> list[str]:
    """The commands of the README's "Two commands" section, one per ```sh block."""
    section = README.read_text(encoding="utf-8").split("## Two commands", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, flags=re.DOTALL)
    commands = [
        line for block in blocks for line in block.splitlines() if line and not line.startswith("#")
    ]
    assert len(commands) == 2, f"expected two commands in README.md, found {commands}"
    return commands


def is_externally_managed(python: Path) -> bool:
    out = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('stdlib'))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    return (Path(out) / "EXTERNALLY-MANAGED").is_file()


# The machines the README's commands must work on, by what `python3` and `uv` are there.
MACHINES = ["python3-externally-managed", "python3-pip-allowed", "uv-installed"]


def python3_dir(machine: str) -> Path:
    """The directory whose `python3` the machine has first on PATH."""
    if machine == "python3-externally-managed":
        assert SYSTEM_PYTHON.is_file() and is_externally_managed(SYSTEM_PYTHON), (
            f"{SYSTEM_PYTHON} is missing or not externally managed (PEP 668): run this test on a"
            " Debian 12+ or Ubuntu 23.04+ machine, whose python3 is"
        )
        return SYSTEM_PYTHON.parent
    # The virtual environment running the tests: pip may install into it (PEP 668 exempts them).
    return Path(sysconfig.get_path("scripts"))


def fresh_machine_env(machine: str, cache_home: Path) -> dict[str, str]:
    """PATH with the machine's python3 first and uv only where the machine has it installed, empty
    caches but uv's download cache (shared to save time)."""
    uv = uv_binary()
    cache = subprocess.run([uv, "cache", "dir"], capture_output=True, text=True, check=True)
    env = project_env()
    path = [str(python3_dir(machine))]
    if machine == "uv-installed":
        path.append(str(Path(uv).parent))
    path += [
        entry
        for entry in env.get("PATH", "").split(os.pathsep)
        if entry and not (Path(entry) / "uv").exists()
    ]
    env.update(
        PATH=os.pathsep.join(dict.fromkeys(path)),
        XDG_CACHE_HOME=str(cache_home),
        UV_CACHE_DIR=cache.stdout.strip(),
        UV_PYTHON_DOWNLOADS="never",
        **GIT_IDENTITY,
    )
    found = shutil.which("uv", path=env["PATH"])
    assert (found is not None) == (machine == "uv-installed"), found
    return env


def test_ci_runs_the_readme_test_command() -> None:
    test_command = readme_commands()[1]
    setup, _, command = test_command.partition(" && ")
    ci = (TEMPLATE_ROOT / ".ci" / "run").read_text(encoding="utf-8")

    assert setup in ci
    assert command in ci


@pytest.mark.parametrize("machine", MACHINES)
def test_the_first_command_renders_serves_and_updates(tmp_path: Path, machine: str) -> None:
    clone = tmp_path / "copier-fastapi-sessions"
    shutil.copytree(
        TEMPLATE_ROOT,
        clone,
        ignore=shutil.ignore_patterns(".venv", "__pycache__", ".pytest_cache", ".ruff_cache"),
    )
    env = fresh_machine_env(machine, tmp_path / "cache")
    # A clone as a user has it: the working tree under test, committed.
    subprocess.run(["git", "add", "-A"], cwd=clone, env=env, check=True)
    subprocess.run(
        ["git", "commit", "-qm", "working tree", "--allow-empty"], cwd=clone, env=env, check=True
    )
    log = tmp_path / "first-command.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            ["sh", "-c", readme_commands()[0]],
            cwd=clone,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            status = wait_until_ready(server, timeout=600)
        finally:
            if server.poll() is None:
                os.killpg(server.pid, signal.SIGTERM)
                server.wait(timeout=30)
    output = log.read_text()
    assert status == 200, f"{SERVE_URL} answered {status}:\n{output[-4000:]}"
    # scripts/uv-env installed uv exactly where the machine had none.
    assert ("uv not found: installing it from PyPI" in output) == (machine != "uv-installed")

    project = tmp_path / "my-service"
    answers = (project / ".copier-answers.yml").read_text(encoding="utf-8")
    assert f"_src_path: {clone}" in answers
    update = (
        'eval "$(sh "$TEMPLATE/scripts/uv-env")" && git add -A && git commit -qm copied'
        " && uvx copier update --trust --defaults --vcs-ref HEAD"
    )
    result = subprocess.run(
        ["sh", "-c", update],
        cwd=project,
        env={**env, "TEMPLATE": str(clone)},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def wait_until_ready(server: subprocess.Popen[bytes], timeout: float) -> int | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and server.poll() is None:
        try:
            with urllib.request.urlopen(SERVE_URL, timeout=2) as response:
                return int(response.status)
        except OSError:
            time.sleep(0.5)
    return None
