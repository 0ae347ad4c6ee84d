"""Every variant is rendered, installed with uv and passes its own full check suite:
`uv sync`, `uv run pytest`, `uv run mypy --strict src tests scripts`, `uv run ruff check`,
`uv run ruff format --check` — through its GitHub workflow's steps, run in order in a clean
clone, when it has one. Then `pre-commit run --all-files` without network, and for Docker
variants the image built and run as compose runs it (toolkit/docker/ where no engine runs).
PostgreSQL variants run against a real server."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from toolkit.answers import Variant, suite_variants
from toolkit.docker.cli import docker_on_path
from toolkit.environment import project_env, uv_binary
from toolkit.postgres import PostgresServer
from toolkit.processes import CommandResult, free_port, run
from toolkit.pythons import PythonMissing, interpreter
from toolkit.render import render
from toolkit.workflow import load_workflow, run_job

# (label, command, timeout in seconds) — the generated project's contract, in order.
CHECKS: list[tuple[str, list[str], float]] = [
    ("pytest", ["uv", "run", "pytest", "-q", "-p", "no:cacheprovider"], 1200),
    ("mypy", ["uv", "run", "mypy", "--strict", "src", "tests", "scripts"], 900),
    ("ruff check", ["uv", "run", "ruff", "check"], 180),
    ("ruff format", ["uv", "run", "ruff", "format", "--check"], 180),
]
SYNC = ["uv", "sync"]
SYNC_TIMEOUT = 900
WORKFLOW = ".github/workflows/ci.yml"
GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "Template Tests",
    "GIT_AUTHOR_EMAIL": "tests@example.com",
    "GIT_COMMITTER_NAME": "Template Tests",
    "GIT_COMMITTER_EMAIL": "tests@example.com",
}
# No network for pre-commit: uv offline, pip without an index, every proxy a closed port.
OFFLINE = {
    "UV_OFFLINE": "1",
    "PIP_NO_INDEX": "1",
    **{
        name: "http://127.0.0.1:9"
        for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY")
    },
}

VARIANTS = suite_variants()


@pytest.fixture(scope="session")
def cache_dirs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """Per xdist worker: one mypy cache per Python version, shared by the variants it checks in
    turn (third-party modules analysed once; mypy revalidates every cached module by content
    hash), and the interpreter copies the Docker emulation makes for the image's user.
    TEMPLATE_TEST_SHARED_MYPY_CACHE=0 gives every variant a cold cache, as on a fresh clone."""
    base = tmp_path_factory.mktemp("caches")
    with world_searchable_dir("emulated-docker-cache-") as docker:
        yield {"mypy": base / "mypy", "docker": docker}


@contextlib.contextmanager
def world_searchable_dir(prefix: str) -> Iterator[Path]:
    """A directory outside pytest's private (0700) temporary tree, so that the image's user of
    the Docker emulation can reach the image and its interpreter."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    try:
        yield path
    finally:
        run(["chmod", "-R", "u+w", str(path)], path.parent)
        shutil.rmtree(path, ignore_errors=True)


def database_env(variant: Variant, request: pytest.FixtureRequest) -> dict[str, str]:
    if not variant.is_postgres:
        return {}  # SQLite: the generated project uses its own temporary file
    server: PostgresServer = request.getfixturevalue("pg_server")
    url = server.url(variant.url_scheme)
    return {"TEST_DATABASE_URL": url, "DATABASE_URL": url}


def git(project: Path, *args: str) -> None:
    run(["git", *args], project, env={**os.environ, **GIT_IDENTITY}).check(f"git {args[0]}")


class VariantCheck:
    def __init__(self, variant: Variant, root: Path, env: dict[str, str]) -> None:
        self.variant = variant
        self.root = root
        self.env = env
        self.timings: list[str] = []
        self.failures: list[str] = []

    def record(self, label: str, result: CommandResult) -> CommandResult:
        self.timings.append(f"{label} {result.seconds:.0f}s")
        if not result.ok:
            self.failures.append(f"[{label}]\n{result.describe()}")
        return result


@pytest.mark.variant
@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v.long_id)
def test_variant_passes_its_checks(
    variant: Variant,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    record_property: pytest.RecordProperty,
    cache_dirs: dict[str, Path],
) -> None:
    try:
        python = interpreter(variant.python_version)
    except PythonMissing as exc:
        pytest.fail(str(exc), pytrace=False)
    extra = {**database_env(variant, request), "UV_PYTHON": python}
    if os.environ.get("TEMPLATE_TEST_SHARED_MYPY_CACHE", "1") != "0":
        extra["MYPY_CACHE_DIR"] = str(cache_dirs["mypy"] / variant.python_version)
    env = project_env(extra)
    env["PATH"] = f"{Path(shutil.which(uv_binary()) or uv_binary()).parent}:{env['PATH']}"
    project = render(
        tmp_path / "project", variant.answers, skip_tasks=False, task_env={"UV_PYTHON": python}
    )
    assert (project / "uv.lock").is_file(), "the copy's `uv lock` task wrote no uv.lock"
    git(project, "add", "-A")
    git(project, "commit", "--quiet", "-m", "rendered")
    check = VariantCheck(variant, tmp_path, env)

    if variant.ci == "github":
        checked = workflow_check_job(check, project, request)
    else:
        checked = plain_checks(check, project)
    if checked is not None:
        precommit_offline(check, checked)
    if variant.docker:
        docker_checks(check, project, request, cache_dirs["docker"])

    record_property("variant_timings", ", ".join(check.timings))
    if check.failures:
        pytest.fail(
            f"[{variant.long_id}] {len(check.failures)} check(s) failed in {tmp_path}:\n\n"
            + "\n\n".join(check.failures),
            pytrace=False,
        )


def plain_checks(check: VariantCheck, project: Path) -> Path | None:
    if not check.record("sync", run(SYNC, project, env=check.env, timeout=SYNC_TIMEOUT)).ok:
        return None
    for label, command, timeout in CHECKS:
        check.record(label, run(command, project, env=check.env, timeout=timeout))
    return project


def workflow_check_job(
    check: VariantCheck, project: Path, request: pytest.FixtureRequest
) -> Path | None:
    """The workflow's `check` job, step by step, in a clean clone; its steps must hold the
    project's contract (CHECKS), so that CI checks what this suite checks."""
    workflow = load_workflow(project / WORKFLOW)
    steps = [str(step.get("run", "")) for step in workflow["jobs"]["check"]["steps"]]
    for label, command, _ in CHECKS:
        wanted = " ".join(arg for arg in command if arg not in {"-q", "-p", "no:cacheprovider"})
        if wanted not in steps:
            check.failures.append(f"the workflow's check job lacks `{wanted}` ({label})")
    env = dict(check.env)
    env.pop("TEST_DATABASE_URL", None)  # the job's env names its service, mapped below
    job = run_job(
        workflow,
        "check",
        project,
        check.root / "ci-check",
        env,
        translate=lambda value: service_url(value, check.variant, request),
    )
    for label, result in job.results:
        check.record(f"ci: {label}", result)
    return None if job.failed else job.workdir / "checkout"


def service_url(value: str, variant: Variant, request: pytest.FixtureRequest) -> str:
    """The workflow's PostgreSQL service (a URL to localhost:5432) → the suite's server."""
    if variant.is_postgres and "@localhost:5432/" in value:
        server: PostgresServer = request.getfixturevalue("pg_server")
        return server.url(variant.url_scheme, value.rsplit("/", 1)[-1])
    return value


def precommit_offline(check: VariantCheck, project: Path) -> None:
    """The project's hooks run from its own environment: no network, no hook environments."""
    home = check.root / "pre-commit-home"
    env = {**check.env, **OFFLINE, "PRE_COMMIT_HOME": str(home)}
    result = check.record(
        "pre-commit",
        run(["uv", "run", "--offline", "pre-commit", "run", "--all-files"], project, env=env),
    )
    if result.ok and home.exists() and any(home.glob("repo*")):
        check.failures.append(f"pre-commit installed hook environments in {home}")


def docker_checks(
    check: VariantCheck, project: Path, request: pytest.FixtureRequest, cache: Path
) -> None:
    """The workflow's image job (when there is a workflow), then the README's compose commands
    in a fresh clone: the service answers, and a write survives a restart of the app and new
    containers. With a Docker engine for real (one variant at a time: the published ports are
    fixed), else through the emulation."""
    if docker_engine_runs():
        with exclusive(Path(tempfile.gettempdir()) / "copier-fastapi-sessions-docker.lock"):
            image_job_and_compose(check, project, check.env, lambda: PUBLISHED_PORT)
        return
    with world_searchable_dir("emulated-docker-") as state, docker_on_path(state) as bin_dir:
        env = {
            **check.env,
            "PATH": f"{bin_dir}:{check.env['PATH']}",
            "EMULATED_DOCKER_STATE": str(state),
            "EMULATED_DOCKER_CACHE": str(cache),
        }
        if check.variant.is_postgres:
            server: PostgresServer = request.getfixturevalue("pg_server")
            env["EMULATED_POSTGRES_URL"] = server.url()
        # Published ports are free loopback ports here: the job's steps follow them.
        port = free_port()
        (state / "compose").mkdir(parents=True)
        (state / "compose" / "state.json").write_text(
            json.dumps({"ports": {str(PUBLISHED_PORT): port}})
        )
        image_job_and_compose(check, project, env, lambda: port)


PUBLISHED_PORT = 8000


def docker_engine_runs() -> bool:
    if shutil.which("docker") is None:
        return False
    return run(["docker", "info"], Path.cwd(), timeout=30).ok


@contextlib.contextmanager
def exclusive(lock: Path) -> Iterator[None]:
    with lock.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def image_job_and_compose(
    check: VariantCheck, project: Path, env: dict[str, str], port: Callable[[], int]
) -> None:
    if check.variant.ci == "github":
        workflow = load_workflow(project / WORKFLOW)
        published = f"127.0.0.1:{PUBLISHED_PORT}"
        job = run_job(
            workflow,
            "image",
            project,
            check.root / "ci-image",
            env,
            translate_script=lambda script: script.replace(published, f"127.0.0.1:{port()}"),
        )
        for label, result in job.results:
            check.record(f"ci image: {label}", result)
        if job.failed:
            return
    clone = check.root / "compose-clone"
    git(project, "clone", "--quiet", str(project), str(clone))
    compose_restart(check, clone, env, port)


def compose_restart(
    check: VariantCheck, clone: Path, env: dict[str, str], port: Callable[[], int]
) -> None:
    def docker(*args: str) -> CommandResult:
        return check.record(f"docker {args[1]}", run(["docker", *args], clone, env=env))

    if not check.record("init_env", run(["python3", "scripts/init_env.py"], clone, env=env)).ok:
        return
    if not docker("compose", "up", "--build", "--detach").ok:
        return
    try:
        base = f"http://127.0.0.1:{port()}"
        wait_ready(check, base)
        written = write_something(base, check.variant)
        docker("compose", "restart", "app")
        wait_ready(check, base)
        if not written_survives(base, check.variant, written):
            check.failures.append(f"the write {written} did not survive a restart of the app")
        # New containers (what a deploy does): only volumes keep data.
        docker("compose", "down")
        docker("compose", "up", "--detach")
        wait_ready(check, base)
        if not written_survives(base, check.variant, written):
            check.failures.append(f"the write {written} did not survive new containers")
        slug = yaml.safe_load((clone / ".copier-answers.yml").read_text())["project_slug"]
        current = docker("compose", "exec", "app", slug, "db", "current")
        if current.ok and "(head)" not in current.output:
            check.failures.append(f"the database is not at head after a restart:\n{current.output}")
    finally:
        docker("compose", "down", "--volumes")


def wait_ready(check: VariantCheck, base: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{base}/health/ready", timeout=5) as response:
                if response.status == 200:
                    return
        except (OSError, urllib.error.URLError):
            time.sleep(0.3)
    check.failures.append(f"{base}/health/ready did not answer 200 within {timeout:g}s")


def request_json(base: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    req = urllib.request.Request(
        f"{base}{path}",
        data=None if body is None else json.dumps(body).encode(),
        method=method,
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


USER = {"email": "survivor@example.com", "password": "correct horse battery", "display_name": "S"}


def write_something(base: str, variant: Variant) -> dict[str, Any]:
    if variant.with_examples:
        status, item = request_json(base, "POST", "/items", {"name": "survivor", "price_cents": 1})
        assert status == 201, (status, item)
        return {"item": item["id"]}
    if variant.has_users:
        status, body = request_json(base, "POST", "/auth/register", USER)
        assert status == 201, (status, body)
        return {"user": USER["email"]}
    return {}  # a skeleton stores nothing but its schema: `db current` checks that


def written_survives(base: str, variant: Variant, written: dict[str, Any]) -> bool:
    if "item" in written:
        status, item = request_json(base, "GET", f"/items/{written['item']}")
        return status == 200 and item["name"] == "survivor"
    if "user" in written:
        login = {"email": USER["email"], "password": USER["password"]}
        return request_json(base, "POST", "/auth/login", login)[0] == 200
    return True
