"""`copier update` keeps generated projects current: template fixes reach edited projects.

A throwaway git copy of the template (the working tree, uncommitted changes included) is released
as v0.1.0, changed the way a template release changes things, and released as v0.2.0. Projects are
rendered at v0.1.0, committed, edited as a user would, and updated to v0.2.0. Only files are
rendered and compared; nothing is installed (about a minute on one core).
"""

from __future__ import annotations

import contextlib
import importlib.util
import re
import secrets
import sqlite3
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import copier
import pytest
import yaml

from tests.update_helpers import (
    TEMPLATE_ROOT,
    TemplateRepo,
    commit_all,
    copy_project,
    files_with_conflict_markers,
    git,
    init_repo,
    read_answers,
    render_fresh,
    tree,
    tree_differences,
    unmerged_paths,
    update_project,
)
from toolkit.answers import choices
from toolkit.environment import project_env
from toolkit.postgres import Postgres
from toolkit.processes import run
from toolkit.pythons import interpreter

OLD, NEW = "v0.1.0", "v0.2.0"
PACKAGE = "my_service"  # the default package_name
HEALTH = f"src/{PACKAGE}/health.py"
HEALTH_TEMPLATES = tuple(
    f"template/src/{{{{package_name}}}}/{{% if {condition} %}}health.py{{% endif %}}.jinja"
    for condition in ("is_postgres", "not is_postgres")
)
LIVE_ROUTE = '@router.get("/live")'

# What v0.2.0 changes, and how the user edits a project (both checked after the update).
TEMPLATE_LIVE_DOCSTRING = '    """Liveness: the process answers; the database is never touched."""'
TEMPLATE_GITIGNORE_LINE = ".coverage"
TEMPLATE_PYPROJECT_SECTION = '\n[tool.coverage.run]\nbranch = true\nsource = ["src"]\n'
TEMPLATE_NEW_FILE = ".editorconfig"
USER_ROUTE = '@router.get("/livez")'
USER_DEPENDENCY = '    "structlog>=25.1",\n'
USER_FILE = f"src/{PACKAGE}/version.py"
USER_FILE_TEXT = '"""The running version (added by the user)."""\n\nVERSION = "1.2.3"\n'
USER_DOTENV = "DATABASE_URL=sqlite+aiosqlite:///./mine.db\n"

Answers = Mapping[str, Any]


# ----------------------------------------------------------------------------- variants

DRIVERS = choices("database_driver")
STRATEGIES = choices("session_strategy")
USER_SESSIONS = choices("user_sessions")


def rotation(shift: int = 0) -> list[dict[str, Any]]:
    """Driver × strategy × user-sessions triples in which every choice of each appears."""
    return [
        {
            "database_driver": DRIVERS[i % len(DRIVERS)],
            "session_strategy": STRATEGIES[(i + shift) % len(STRATEGIES)],
            "user_sessions": USER_SESSIONS[(i + 2 * shift) % len(USER_SESSIONS)],
        }
        for i in range(max(len(DRIVERS), len(STRATEGIES), len(USER_SESSIONS)))
    ]


def variant_id(answers: Answers) -> str:
    return "-".join(str(v) if not isinstance(v, bool) else f"{k}={v}" for k, v in answers.items())


# Edited projects: every driver, strategy and user-sessions choice.
EDITED = rotation()
# Unedited projects: other pairs, with the toggles varied too.
UNEDITED = [
    {**answers, "with_examples": i % 2 == 1, "docker": i % 2 == 0, "ci": choices("ci")[i % 2]}
    for i, answers in enumerate(rotation(shift=1))
]


def answer_changes(i: int) -> dict[str, Any]:
    """The driver moves on to the next choice; every other case also turns the examples off
    (their files must go), the others turn telemetry on (its files must come)."""
    changes: dict[str, Any] = {"database_driver": DRIVERS[(i + 1) % len(DRIVERS)]}
    if i % 2 == 0:
        changes["with_examples"] = False
    else:
        changes["telemetry"] = "opentelemetry"
    return changes


# Answers changed through an update: (answers at copy, answers changed by the update).
CHANGED = [(answers, answer_changes(i)) for i, answers in enumerate(rotation(shift=2))]


# ----------------------------------------------------------------------------- the template


def change_template(template: TemplateRepo) -> None:
    """What a release typically changes: a file no user edits, a new file, a file the user also
    edits (far from their edit), and a line within the diff context of the user's edit."""
    template.append("template/.gitignore", f"{TEMPLATE_GITIGNORE_LINE}\n")
    template.path(f"template/{TEMPLATE_NEW_FILE}").write_text(
        "root = true\n\n[*]\nend_of_line = lf\ninsert_final_newline = true\n", encoding="utf-8"
    )
    template.append("template/pyproject.toml.jinja", TEMPLATE_PYPROJECT_SECTION)
    # The docstring two lines below the route the user edits: git cannot apply the user's hunk
    # as is, so copier falls back to a three-way merge, which must resolve it without markers.
    for health_template in HEALTH_TEMPLATES:
        path = template.path(health_template)
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        docstring = lines.index(f"{LIVE_ROUTE}\n") + 2
        assert lines[docstring].startswith('    """'), f"{health_template}: no docstring for /live"
        lines[docstring] = TEMPLATE_LIVE_DOCSTRING + "\n"
        path.write_text("".join(lines), encoding="utf-8")


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> TemplateRepo:
    repo = TemplateRepo.from_working_tree(tmp_path_factory.mktemp("template") / "repo")
    assert repo.release("0.1.0") == OLD
    change_template(repo)
    assert repo.release("0.2.0") == NEW
    return repo


# ----------------------------------------------------------------------------- the user


def edit_as_a_user(project: Path) -> None:
    """Change a route, add a dependency, add a module and keep a local (git-ignored) .env."""
    health = project / HEALTH
    text = health.read_text(encoding="utf-8")
    assert text.count(LIVE_ROUTE) == 1, f"{HEALTH}: {LIVE_ROUTE} not found once"
    health.write_text(text.replace(LIVE_ROUTE, USER_ROUTE), encoding="utf-8")

    pyproject = project / "pyproject.toml"
    text = pyproject.read_text(encoding="utf-8")
    assert text.count("dependencies = [\n") == 1
    pyproject.write_text(
        text.replace("dependencies = [\n", "dependencies = [\n" + USER_DEPENDENCY), encoding="utf-8"
    )

    (project / USER_FILE).write_text(USER_FILE_TEXT, encoding="utf-8")
    (project / ".env").write_text(USER_DOTENV, encoding="utf-8")


def edited_project(template: TemplateRepo, dst: Path, answers: Answers) -> Path:
    project = copy_project(template, dst, OLD, answers)
    edit_as_a_user(project)
    commit_all(project, "My changes")
    return project


def assert_user_edits_survived(project: Path) -> None:
    health = (project / HEALTH).read_text(encoding="utf-8")
    assert USER_ROUTE in health and LIVE_ROUTE not in health, "the user's route change was lost"
    assert USER_DEPENDENCY in (project / "pyproject.toml").read_text(encoding="utf-8")
    assert (project / USER_FILE).read_text(encoding="utf-8") == USER_FILE_TEXT
    assert (project / ".env").read_text(encoding="utf-8") == USER_DOTENV, ".env was touched"


def assert_template_changes_arrived(project: Path) -> None:
    assert TEMPLATE_LIVE_DOCSTRING in (project / HEALTH).read_text(encoding="utf-8")
    gitignore = (project / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert TEMPLATE_GITIGNORE_LINE in gitignore
    assert (project / TEMPLATE_NEW_FILE).is_file()
    assert TEMPLATE_PYPROJECT_SECTION in (project / "pyproject.toml").read_text(encoding="utf-8")
    assert read_answers(project)["_commit"] == NEW


def assert_clean_merge(project: Path) -> None:
    assert not files_with_conflict_markers(project), "conflict markers where none are due"
    assert not unmerged_paths(project), "git reports unmerged paths"
    assert not list(project.rglob("*.rej")), "rejected hunks left behind"


# ----------------------------------------------------------------------------- tests


@pytest.mark.parametrize("answers", EDITED, ids=variant_id)
def test_update_keeps_user_edits_and_brings_template_changes(
    template: TemplateRepo, tmp_path: Path, answers: Answers
) -> None:
    project = edited_project(template, tmp_path / "my-service", answers)

    update_project(project, NEW)

    assert_user_edits_survived(project)
    assert_template_changes_arrived(project)
    assert_clean_merge(project)
    # The update is left for the user to review: the working tree changed, nothing committed.
    changed = git(project, "status", "--porcelain").splitlines()
    assert any(line.endswith(".gitignore") for line in changed), changed
    assert git(project, "log", "--format=%s").splitlines() == [
        "My changes",
        f"Project rendered from the template at {OLD}",
    ]
    commit_all(project, f"Update the template to {NEW}")
    assert git(project, "status", "--porcelain") == ""
    assert len(git(project, "log", "--oneline").splitlines()) == 3


@pytest.mark.parametrize("source", ["absolute-path", "repository-url"])
def test_update_finds_the_template_it_was_rendered_from(
    template: TemplateRepo, tmp_path: Path, source: str
) -> None:
    """The answers file records where the template came from, and `copier update` run in the
    project finds it there again, whether that was a path or a URL to clone."""
    url = template.url if source == "absolute-path" else f"git+{template.root.as_uri()}"
    project = copy_project(template, tmp_path / "my-service", OLD, source=url)
    assert read_answers(project)["_src_path"] == url

    update_project(project, NEW)

    assert_template_changes_arrived(project)
    assert_clean_merge(project)
    assert read_answers(project)["_src_path"] == url


@pytest.mark.parametrize("answers", UNEDITED, ids=variant_id)
def test_update_of_unedited_project_equals_fresh_render(
    template: TemplateRepo, tmp_path: Path, answers: Answers
) -> None:
    project = copy_project(template, tmp_path / "updated" / "my-service", OLD, answers)
    update_project(project, NEW)
    fresh = render_fresh(template, tmp_path / "fresh" / "my-service", NEW, answers)

    assert tree_differences(tree(project), tree(fresh)) == []


@pytest.mark.parametrize(
    ("answers", "changes"), CHANGED, ids=[f"{variant_id(a)}-to-{variant_id(c)}" for a, c in CHANGED]
)
def test_changing_answers_through_update_equals_fresh_render_plus_user_edits(
    template: TemplateRepo, tmp_path: Path, answers: Answers, changes: Answers
) -> None:
    project = edited_project(template, tmp_path / "updated" / "my-service", answers)

    update_project(project, NEW, changes)

    recorded = read_answers(project)
    assert {key: recorded[key] for key in changes} == dict(changes)
    expected = render_fresh(
        template, tmp_path / "fresh" / "my-service", NEW, {**answers, **changes}
    )
    edit_as_a_user(expected)
    # Files the new answers no longer render (e.g. the examples) are gone, the new ones are there.
    assert tree_differences(tree(project), tree(expected)) == []
    assert_clean_merge(project)


def test_conflicting_edit_is_marked_for_the_user(template: TemplateRepo, tmp_path: Path) -> None:
    """When the user and the template changed the same line, the file gets git's conflict markers
    and is recorded as unmerged (a plain `git commit` refuses; `git commit -a` would stage it, so
    the project's pre-commit hook must catch the markers); resolving it is ordinary git."""
    project = copy_project(template, tmp_path / "my-service", OLD)
    health = project / HEALTH
    user_docstring = '    """Kubernetes liveness probe."""'
    lines = health.read_text(encoding="utf-8").splitlines(keepends=True)
    docstring = lines.index(f"{LIVE_ROUTE}\n") + 2
    lines[docstring] = user_docstring + "\n"
    health.write_text("".join(lines), encoding="utf-8")
    commit_all(project, "My docstring")

    update_project(project, NEW)

    assert files_with_conflict_markers(project) == [HEALTH]
    assert unmerged_paths(project) == [HEALTH]
    conflict = re.search(
        r"^<<<<<<< before updating\n(.*?)^=======\n(.*?)^>>>>>>> after updating\n",
        health.read_text(encoding="utf-8"),
        re.MULTILINE | re.DOTALL,
    )
    assert conflict, health.read_text(encoding="utf-8")
    assert conflict[1] == user_docstring + "\n"
    assert conflict[2] == TEMPLATE_LIVE_DOCSTRING + "\n"
    assert_pre_commit_refuses_conflict_markers(project, HEALTH)
    # The rest of the update arrived; resolving = editing the file, `git add`, commit.
    assert (project / TEMPLATE_NEW_FILE).is_file()
    health.write_text(
        health.read_text(encoding="utf-8").replace(conflict[0], user_docstring + "\n"),
        encoding="utf-8",
    )
    commit_all(project, f"Update the template to {NEW}")
    assert not files_with_conflict_markers(project)
    assert git(project, "status", "--porcelain") == ""


def assert_pre_commit_refuses_conflict_markers(project: Path, conflicted: str) -> None:
    """The generated .pre-commit-config.yaml has a conflict-marker hook that fires outside a git
    merge (copier's conflicts leave no MERGE_HEAD). pre-commit itself needs the network to fetch
    hooks, so a `pygrep` hook is run here directly and any other is checked for its arguments."""
    config = yaml.safe_load((project / ".pre-commit-config.yaml").read_text(encoding="utf-8"))
    hooks = [hook for repo in config["repos"] for hook in repo["hooks"]]
    marker_hooks = [hook for hook in hooks if "merge-conflict" in hook["id"]]
    assert marker_hooks, "no conflict-marker hook in .pre-commit-config.yaml"
    for hook in marker_hooks:
        if hook.get("language") == "pygrep":
            pattern = re.compile(hook["entry"], re.MULTILINE)
            assert pattern.search((project / conflicted).read_text(encoding="utf-8"))
        else:
            command = " ".join([hook.get("entry", ""), *hook.get("args", [])])
            assert "--assume-in-merge" in command, f"{hook['id']} only checks during a git merge"


def test_copy_tasks_do_not_run_on_update(template: TemplateRepo, tmp_path: Path) -> None:
    """The `_tasks` (git init, .env with fresh secrets, uv lock) belong to `copier copy`: an update
    with tasks enabled creates neither .env nor uv.lock, and a project works without them."""
    project = copy_project(template, tmp_path / "my-service", OLD)
    assert not (project / ".env").exists() and not (project / "uv.lock").exists()

    update_project(project, NEW, skip_tasks=False)

    assert not (project / ".env").exists(), "a copy-only task ran on update"
    assert not (project / "uv.lock").exists(), "a copy-only task ran on update"
    assert_template_changes_arrived(project)


def rename_migration(version: str, old: str, new: str) -> dict[str, Any]:
    """The `_migrations` entry copier.yml documents for a renamed question."""
    return {
        "version": version,
        "when": "{{ _stage == 'before' }}",
        "command": [
            "{{ _copier_python }}",
            "{{ _copier_conf.src_path }}/scripts/rename_answer.py",
            "{{ _copier_conf.answers_file }}",
            old,
            new,
        ],
    }


@pytest.mark.parametrize("with_migration", [True, False], ids=["migration", "no-migration"])
def test_renamed_question_keeps_its_answer(tmp_path: Path, with_migration: bool) -> None:
    """v0.1.0 calls the `docker` question `with_docker`; v0.2.0 renames it and adds the
    `_migrations` entry. The user's "no Docker" survives the update only through the migration
    (without it, the renamed question falls back to its default and Docker files appear)."""
    template = TemplateRepo.from_working_tree(tmp_path / "template")

    def old_name(config: dict[str, Any]) -> None:
        spec = config.pop("docker")
        config["with_docker"] = spec
        config["docker"] = {"type": "bool", "default": "{{ with_docker }}", "when": False}

    current_config = template.path("copier.yml").read_text(encoding="utf-8")
    template.edit_config(old_name)
    template.release("0.1.0")
    template.path("copier.yml").write_text(current_config, encoding="utf-8")
    if with_migration:
        template.edit_config(
            lambda config: config.setdefault("_migrations", []).append(
                rename_migration("0.2.0", "with_docker", "docker")
            )
        )
    template.release("0.2.0")

    project = copy_project(template, tmp_path / "my-service", OLD, {"with_docker": False})
    assert read_answers(project)["with_docker"] is False
    assert not (project / "Dockerfile").exists()

    update_project(project, NEW)

    answers = read_answers(project)
    assert "with_docker" not in answers
    if with_migration:
        assert answers["docker"] is False
        assert not (project / "Dockerfile").exists()
        assert not (project / "compose.yaml").exists()
    else:
        assert answers["docker"] is True
        assert (project / "Dockerfile").exists()


def load_rename_answer() -> Any:
    spec = importlib.util.spec_from_file_location(
        "rename_answer", TEMPLATE_ROOT / "scripts" / "rename_answer.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.rename_answer


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("_commit: v0.1.0\nold: 1\nolder: 2\n", "_commit: v0.1.0\nnew: 1\nolder: 2\n"),
        ("old:\n- a\n- b\nx: old\n", "new:\n- a\n- b\nx: old\n"),  # only the key changes
        ("old: 1\nnew: 2\n", "old: 1\nnew: 2\n"),  # already answered under the new name
        ("other: 1\n", "other: 1\n"),  # nothing to carry over
    ],
    ids=["renamed", "multi-line-value", "new-name-present", "old-name-absent"],
)
def test_rename_answer_script(before: str, after: str) -> None:
    assert load_rename_answer()(before, "old", "new") == after


def project_of_release_0_1_0(tmp_path: Path, answers: Answers) -> Path:
    """A project rendered from the real v0.1.0 release (tests/data), in a template repository
    whose next commit is the working tree; the project is not yet a git repository."""
    template = TemplateRepo.from_release_archive(tmp_path / "template", "0.1.0")
    template.advance_to_working_tree()
    project = tmp_path / "my-service"
    copier.run_copy(
        template.url,
        str(project),
        data=dict(answers),
        defaults=True,
        unsafe=True,
        skip_tasks=True,
        quiet=True,
        vcs_ref=OLD,
    )
    return project


@pytest.mark.parametrize("driver", ["aiosqlite", "asyncpg"])
def test_update_from_release_0_1_0_to_this_tree(tmp_path: Path, driver: str) -> None:
    """The real v0.1.0 release, edited by its user, updated to the working tree: the files that
    release added outside Python arrive (CHANGELOG, Unreleased), the user's edits survive."""
    project = project_of_release_0_1_0(
        tmp_path, {"database_driver": driver, "user_sessions": "cookie"}
    )
    assert read_answers(project)["_commit"] == OLD
    init_repo(project)
    commit_all(project, f"Project rendered from the template at {OLD}")
    edit_as_a_user(project)
    commit_all(project, "My changes")

    update_project(project, "HEAD")

    assert_user_edits_survived(project)
    assert_clean_merge(project)
    for added in (".dockerignore", "scripts/init_env.py"):
        assert (project / added).is_file(), f"{added} did not arrive"
    assert "USER 10001:10001" in (project / "Dockerfile").read_text(encoding="utf-8")
    compose = (project / "compose.yaml").read_text(encoding="utf-8")
    assert '"127.0.0.1:8000:8000"' in compose
    assert "${SESSION_SECRET_KEYS:?run python3 scripts/init_env.py}" in compose
    if driver != "aiosqlite":
        assert '"127.0.0.1:5432:5432"' in compose and ":-postgres}" not in compose
    example = (project / ".env.example").read_text(encoding="utf-8")
    assert "change-me-session-secret-key" in example
    # Template sources that became .jinja files render to the same paths, now using text.py.
    for schemas in ("auth/schemas.py", "items/schemas.py"):
        text = (project / "src" / PACKAGE / schemas).read_text(encoding="utf-8")
        assert f"from {PACKAGE}.text import Text" in text, schemas
    # New migrations arrive after the release's, each revising the one before (db upgrade).
    versions = project / "migrations" / "versions"
    balance = (versions / "0004_account_balance.py").read_text(encoding="utf-8")
    assert 'down_revision: str | None = "0003"' in balance
    assert (versions / "0003_login_throttles.py").is_file()
    assert (project / "src" / PACKAGE / "transfers" / "router.py").is_file()
    assert not list(project.rglob("*.jinja")), "a .jinja file reached the project"
    # Logging arrived; the new telemetry question kept its default, so no telemetry files.
    assert (project / "src" / PACKAGE / "logs.py").is_file()
    errors = (project / "src" / PACKAGE / "errors.py").read_text(encoding="utf-8")
    assert f"from {PACKAGE}.logs import REQUEST_ID_HEADER" in errors
    assert read_answers(project)["telemetry"] == "none"
    assert not (project / "src" / PACKAGE / "telemetry.py").exists()
    # health.py now comes from one template per database family, at the same path.
    health = (project / "src" / PACKAGE / "health.py").read_text(encoding="utf-8")
    assert '@router.get("/ready"' in health
    assert ("ReplicaState" in health) == (driver != "aiosqlite")


Sql = Callable[[str], list[tuple[str, ...]]]


@contextlib.contextmanager
def database_for(
    driver: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[tuple[str, Sql]]:
    """A new, empty database for `driver`: its URL and a function running SQL on it (rows as
    strings)."""
    if driver == "aiosqlite":
        path = tmp_path / "app.db"

        def sqlite(statement: str) -> list[tuple[str, ...]]:
            with contextlib.closing(sqlite3.connect(path)) as connection, connection:
                rows = connection.execute(statement).fetchall()
            return [tuple(str(value) for value in row) for row in rows]

        yield f"sqlite:///{path}", sqlite
        return
    server = Postgres(request.getfixturevalue("pg_server"), None)
    name = f"upgrade_{secrets.token_hex(4)}"
    server.create_database(name)
    try:
        yield (
            server.url(f"postgresql+{driver}", name),
            lambda statement: [tuple(row) for row in server.query(statement, name)],
        )
    finally:
        server.drop_database(name)


@pytest.mark.parametrize(
    ("driver", "user_sessions"), [("aiosqlite", "database"), ("psycopg", "cookie")]
)
def test_a_0_1_0_database_migrates_to_this_tree_keeping_its_rows(
    tmp_path: Path, request: pytest.FixtureRequest, driver: str, user_sessions: str
) -> None:
    """A project of the v0.1.0 release with a migrated database holding a user, updated to the
    working tree: `db upgrade` applies the migrations added since (sessions' user agent, login
    throttles, account balances), every row stays, and the models match the database."""
    project = project_of_release_0_1_0(
        tmp_path, {"database_driver": driver, "user_sessions": user_sessions}
    )
    init_repo(project)
    commit_all(project, f"Project rendered from the template at {OLD}")
    with database_for(driver, tmp_path, request) as (url, sql):
        env = project_env({"UV_PYTHON": interpreter("3.11"), "DATABASE_URL": url})

        def cli(*args: str) -> None:
            result = run(["uv", "run", "my-service", *args], project, env=env, timeout=300)
            assert result.ok, result.describe()

        cli("db", "upgrade")
        # Cookie sessions' users carry the epoch that logging out everywhere increments.
        user = {"email": "'a@example.com'", "password_hash": "'x'"}
        if user_sessions == "cookie":
            user["auth_epoch"] = "0"
        sql(f"INSERT INTO users ({', '.join(user)}) VALUES ({', '.join(user.values())})")
        sql("INSERT INTO accounts (user_id, display_name) VALUES (1, 'A')")

        commit_all(project, "uv.lock")
        update_project(project, "HEAD")
        cli("db", "upgrade")
        cli("db", "check")

        assert sql("SELECT email FROM users") == [("a@example.com",)]
        assert sql("SELECT display_name, balance FROM accounts") == [("A", "0")]
        assert sql("SELECT count(*) FROM login_throttles") == [("0",)]
