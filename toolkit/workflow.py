"""Running a generated GitHub Actions job on this machine, its steps in order, as a runner would.

No tool runs a workflow without a container engine and GitHub's network (act needs both), hence
this module. `actions/checkout` is a fresh clone of the committed project; `astral-sh/setup-uv`
is this machine's uv (which must be the version the step asks for) with UV_PYTHON set to an
interpreter of the step's `python-version`, as setup-uv sets it; `run:` steps run in bash as
GitHub's runner runs them (`bash --noprofile --norc -eo pipefail`), with the workflow's, job's
and step's `env`, `if: failure()` / `always()` honoured. The caller maps the job's `services`
(a URL to `localhost:<port>` of a service → its stand-in server) through `translate`, and
addresses in scripts (a published port that is another port here) through `translate_script`.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from toolkit.environment import uv_binary
from toolkit.processes import CommandResult, run
from toolkit.pythons import interpreter

GITHUB_EXPRESSION = re.compile(r"\$\{\{.*?\}\}")


class WorkflowError(RuntimeError):
    pass


def load_workflow(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict), f"{path} is not a mapping"
    return data


@dataclass
class JobRun:
    job: str
    workdir: Path
    results: list[tuple[str, CommandResult]] = field(default_factory=list)
    failed: bool = False

    def describe(self) -> str:
        return "\n\n".join(result.describe() for _, result in self.results)


def run_job(
    workflow: Mapping[str, Any],
    job: str,
    repository: Path,
    workdir: Path,
    env: Mapping[str, str],
    *,
    translate: Callable[[str], str] = lambda value: value,
    translate_script: Callable[[str], str] = lambda script: script,
    step_timeout: float = 1200,
) -> JobRun:
    """Run `job` of `workflow` against the committed state of `repository`, in `workdir`."""
    spec = workflow["jobs"][job]
    job_env = {
        key: translate(str(value))
        for key, value in {**(workflow.get("env") or {}), **(spec.get("env") or {})}.items()
    }
    current = dict(env) | job_env
    outcome = JobRun(job, workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    cwd: Path | None = None
    for number, step in enumerate(spec["steps"], 1):
        condition = str(step.get("if", "success()")).strip()
        wanted = {
            "success()": not outcome.failed,
            "failure()": outcome.failed,
            "always()": True,
        }.get(condition)
        if wanted is None:
            raise WorkflowError(f"{job} step {number}: `if: {condition}` is not emulated")
        if not wanted:
            continue
        if "uses" in step:
            action = str(step["uses"]).split("@", 1)[0]
            inputs = step.get("with") or {}
            if action == "actions/checkout":
                cwd = workdir / "checkout"
                result = run(["git", "clone", "--quiet", str(repository), str(cwd)], workdir)
            elif action == "astral-sh/setup-uv":
                result = _setup_uv(inputs, current, workdir)
            else:
                raise WorkflowError(f"{job} step {number}: `uses: {action}` is not emulated")
        else:
            if cwd is None:
                raise WorkflowError(f"{job} step {number} runs before actions/checkout")
            script = translate_script(str(step["run"]))
            if GITHUB_EXPRESSION.search(script):
                raise WorkflowError(f"{job} step {number}: expressions in `run:` not emulated")
            step_env = {k: translate(str(v)) for k, v in (step.get("env") or {}).items()}
            result = run(
                ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
                cwd,
                env=current | step_env,
                timeout=step_timeout,
            )
        label = str(step.get("name") or step.get("uses") or step["run"]).splitlines()[0]
        outcome.results.append((label[:48], result))
        if not result.ok:
            outcome.failed = True
    return outcome


def _setup_uv(inputs: Mapping[str, Any], env: dict[str, str], workdir: Path) -> CommandResult:
    version = subprocess.run(
        [uv_binary(), "--version"], capture_output=True, text=True, check=True
    ).stdout.split()[1]
    wanted = str(inputs.get("version", version))
    args = ["setup-uv", f"version={wanted}"]
    if wanted != version:
        message = f"setup-uv asks for uv {wanted}; this machine has uv {version}"
        return CommandResult(args, workdir, 1, message, 0.0, 0.0)
    if "python-version" in inputs:
        env["UV_PYTHON"] = interpreter(str(inputs["python-version"]))
        args.append(f"python-version={inputs['python-version']} -> {env['UV_PYTHON']}")
    return CommandResult(args, workdir, 0, "", 0.0, 0.0)
