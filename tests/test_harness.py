"""Self-tests of toolkit/: the matrix follows copier.yml, rendering takes the working tree, and
the PostgreSQL fixture gives a server on which databases can be created."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tests.update_helpers import git
from toolkit.answers import (
    DRIVER_URL_SCHEME,
    MATRIX_QUESTIONS,
    choices,
    matrix_combinations,
    suite_variants,
    uncovered_pairs,
    varied_questions,
)
from toolkit.postgres import Postgres, PostgresServer, find_psql, parse_server_url
from toolkit.render import render


def test_matrix_follows_copier_yml() -> None:
    sizes = [len(choices(q)) for q in MATRIX_QUESTIONS]
    expected = sizes[0] * sizes[1] * sizes[2]
    assert len(matrix_combinations()) == expected
    variants = suite_variants()
    ids = [v.id for v in variants]
    assert len(ids) == len(set(ids)), "variant ids collide"
    assert len(variants) == expected + sizes[0] * sizes[1]
    assert set(choices("user_sessions")) == {
        v.user_sessions for v in variants if not v.with_examples
    }


def test_every_driver_has_a_url_scheme() -> None:
    unknown = set(choices("database_driver")) - set(DRIVER_URL_SCHEME)
    assert not unknown, f"teach toolkit/answers.py DRIVER_URL_SCHEME the drivers {sorted(unknown)}"


def test_render_takes_uncommitted_and_untracked_changes(tmp_path: Path) -> None:
    """copier with vcs_ref=HEAD renders the working tree of a dirty local repo, not HEAD and not
    the latest tag; this is what lets the suite test template edits before they are committed."""
    repo = tmp_path / "tpl"
    (repo / "template").mkdir(parents=True)
    (repo / "copier.yml").write_text("_subdirectory: template\nname:\n  type: str\n  default: x\n")
    (repo / "template" / "tracked.txt.jinja").write_text("committed {{ name }}\n")
    (repo / "template" / "{{_copier_conf.answers_file}}.jinja").write_text(
        "{{ _copier_answers|to_nice_yaml }}"
    )
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "v1")
    git(repo, "tag", "1.0.0")
    (repo / "template" / "tracked.txt.jinja").write_text("edited {{ name }}\n")
    (repo / "template" / "untracked.txt").write_text("new\n")
    out = render(tmp_path / "out", {"name": "y"}, src=repo)
    assert (out / "tracked.txt").read_text() == "edited y\n"
    assert (out / "untracked.txt").read_text() == "new\n"
    # The source repository itself is left as it was.
    assert git(repo, "status", "--porcelain").splitlines() == [
        " M template/tracked.txt.jinja",
        "?? template/untracked.txt",
    ]


def test_parse_server_url() -> None:
    server = parse_server_url("postgresql+asyncpg://u%40x:p%2Fw@db.example:6543/main?sslmode=off")
    assert (server.host, server.port, server.user, server.password, server.database) == (
        "db.example",
        6543,
        "u@x",
        "p/w",
        "main",
    )
    assert server.url("postgresql+psycopg") == (
        "postgresql+psycopg://u%40x:p%2Fw@db.example:6543/main?sslmode=off"
    )
    assert "p%2Fw" not in str(server)
    assert (
        parse_server_url("postgres://localhost").url()
        == "postgresql://postgres@localhost:5432/postgres"
    )


@pytest.mark.postgres
def test_pg_server_accepts_create_database(pg_server: PostgresServer) -> None:
    if find_psql() is None:
        pytest.skip("psql not found; the PostgreSQL variants exercise the server instead")
    pg = Postgres(pg_server, cluster=None)
    name = f"toolkit_{uuid.uuid4().hex[:12]}"
    assert pg.scalar("SELECT 1") == "1"
    pg.create_database(name)
    try:
        assert pg.scalar("SELECT current_database()", database=name) == name
    finally:
        pg.drop_database(name)
    assert name not in {row[0] for row in pg.query("SELECT datname FROM pg_database")}
    max_connections = int(pg.scalar("SHOW max_connections"))
    assert max_connections >= 100, f"max_connections={max_connections} is too low for the suites"


def test_every_pair_of_answers_is_fully_checked() -> None:
    """Every pair of values over all questions with a closed set of answers (choices or bool,
    any added later included) meets in at least one variant of the full checks."""
    names = set(varied_questions())
    assert {
        "database_driver",
        "session_strategy",
        "user_sessions",
        "with_examples",
        "python_version",
        "ci",
        "docker",
    } <= names, f"copier.yml's varied questions: {sorted(names)}"
    missing = uncovered_pairs([variant.answers for variant in suite_variants()])
    assert not missing, "never checked together:\n" + "\n".join(
        f"{a}={x!r} with {b}={y!r}" for a, x, b, y in sorted(missing, key=str)
    )


def test_uncovered_pairs_sees_a_missing_pair() -> None:
    """The coverage test can fail: drop the only variant that holds a pair, and it is reported."""
    variants = suite_variants()
    docker_py313 = [v for v in variants if v.docker and v.python_version == "3.13"]
    assert docker_py313, "no variant checks Docker with Python 3.13"
    rest = [v.answers for v in variants if v not in docker_py313]
    assert ("python_version", "3.13", "docker", True) in uncovered_pairs(rest)
