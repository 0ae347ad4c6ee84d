"""A stand-in for a Docker engine where none runs: it builds an image by carrying out the
Dockerfile's steps on this machine and runs compose's services as processes.

No library emulates an engine, hence this module. What it does, and where it cannot be Docker:

* The build context is what `.dockerignore` lets through (docker-py's own pattern matcher).
  Every stage's filesystem lives in one directory, the image root (`/app` is `<root>/app`); the
  stage before is moved aside, so absolute paths baked into a virtual environment stay right.
* `FROM python:X.Y-slim` is an interpreter of Python X.Y from this machine (copied to where the
  image's user can run it when it cannot reach the original). `COPY --from=ghcr.io/astral-sh/uv:V`
  is this machine's uv, which must be version V. `RUN` runs `uv …` for real (a cache mount at
  /root/.cache/uv is the machine's uv cache; bind mounts exist only for their step); it carries
  out `groupadd`, `useradd`, `mkdir` and `chown` itself and refuses anything else.
* Containers run as the image's `USER` (when we are root; otherwise as ourselves with the image
  root read-only), in its WORKDIR, with the image's and the service's environment. Paths into
  the image are translated to the image root, a service host name (`db`) to the PostgreSQL server
  standing in for that service, and published ports to free loopback ports (no network namespace:
  `--host 0.0.0.0 --port 8000` in a command becomes 127.0.0.1 and the published port).
* Named volumes are directories, filled from the image on first use, as Docker does.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from docker.utils.build import PatternMatcher

from toolkit.environment import uv_binary
from toolkit.pythons import interpreter

IMAGE_BASE_PATH = "/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin"
UV_IMAGE = re.compile(r"^ghcr\.io/astral-sh/uv:(?P<version>[0-9.]+)$")
PYTHON_IMAGE = re.compile(r"^python:(?P<version>3\.\d+)(-slim)?$")
POSTGRES_IMAGE = re.compile(r"^postgres:\d+")


class EmulationError(RuntimeError):
    pass


def venv_bin(name: str) -> str:
    """A tool of the template's own environment (docker-compose, hadolint, ...)."""
    path = Path(sys.executable).parent / name
    if not path.exists():
        raise EmulationError(f"{path} is missing: run `uv sync` in the template repository")
    return str(path)


# ----------------------------------------------------------------------------- Dockerfile


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


# ----------------------------------------------------------------------------- the base image


def base_python(version: str, run_as: tuple[int, int] | None, cache_root: Path) -> Path:
    """An interpreter of `version` that the image's user can run (`python:X.Y-slim`)."""
    python = Path(interpreter(version))
    if run_as is None or _runs_as(python, run_as):
        return python
    prefix = Path(
        subprocess.run(
            [str(python), "-c", "import sys; print(sys.base_prefix)"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    if prefix == Path("/usr"):
        raise EmulationError(f"{python} is unreachable for uid {run_as[0]} and cannot be copied")
    target = cache_root / f"python-{prefix.name}"
    if not target.exists():
        partial = cache_root / f".python-{prefix.name}-{uuid.uuid4().hex}"
        shutil.copytree(
            prefix,
            partial,
            symlinks=True,
            ignore=shutil.ignore_patterns("test", "tests", "idle_test", "site-packages"),
        )
        (partial / "lib" / f"python{version}" / "site-packages").mkdir(exist_ok=True)
        with contextlib.suppress(OSError):  # another worker finished first
            partial.rename(target)
        shutil.rmtree(partial, ignore_errors=True)
    for parent in [target, *target.parents]:
        if parent == Path("/"):
            break
        if not os.access(parent, os.X_OK) or parent.stat().st_mode & 0o001 == 0:
            raise EmulationError(f"{parent} is not searchable by uid {run_as[0]}")
    copied = target / "bin" / python.name
    if not _runs_as(copied, run_as):
        raise EmulationError(f"{copied} does not run as uid {run_as[0]}")
    return copied


def _runs_as(python: Path, run_as: tuple[int, int]) -> bool:
    env = {"LD_LIBRARY_PATH": str(python.parent.parent / "lib"), "PATH": "/usr/bin:/bin"}
    try:
        proc = subprocess.run(
            [str(python), "-c", "pass"],
            user=run_as[0],
            group=run_as[1],
            extra_groups=[],
            env=env,
            capture_output=True,
            timeout=30,
            check=False,
        )
    except OSError:
        return False
    return proc.returncode == 0


# ----------------------------------------------------------------------------- images


@dataclass
class Image:
    root: str
    env: dict[str, str]
    workdir: str
    user: list[int] | None
    cmd: list[str]
    python: str

    def host_path(self, path: str) -> Path:
        return Path(self.root) / path.lstrip("/")

    def translate(self, text: str) -> str:
        """Paths into the image (`/app/...`, also inside URLs) → the image root."""
        tops = sorted((p.name for p in Path(self.root).iterdir()), key=len, reverse=True)
        if not tops:
            return text
        pattern = r"(?<![\w.-])/(" + "|".join(map(re.escape, tops)) + r")(?=/|$|[\s:\"'])"
        return re.sub(pattern, lambda m: f"{self.root}/{m.group(1)}", text)

    def host_env(self, extra: Mapping[str, str] = {}) -> dict[str, str]:
        env = {**self.env, **extra}
        out = {key: self.translate(value) for key, value in env.items()}
        entries: list[str] = []
        for entry in env.get("PATH", IMAGE_BASE_PATH).split(":"):
            inside = Path(self.root) / entry.lstrip("/")
            if entry.startswith("/app") or inside.is_dir():
                entries.append(str(inside))
            if entry == "/usr/local/bin":  # where the python image keeps its interpreter
                entries.append(str(Path(self.python).parent))
            elif entry in {"/usr/bin", "/bin"}:  # the shell and core utilities
                entries.append(entry)
        out["PATH"] = ":".join(dict.fromkeys(entries))
        out["LD_LIBRARY_PATH"] = str(Path(self.python).parent.parent / "lib")
        out.setdefault("HOME", self.root)
        out.setdefault("LANG", "C.UTF-8")
        return out


NETWORK_SETTING = re.compile(
    r"SSL|CERT|CA_BUNDLE|PROXY|^UV_(INDEX|DEFAULT_INDEX|NATIVE_TLS)|^PIP_", re.I
)


def network_env() -> dict[str, str]:
    """The machine's proxy, certificate and index settings: a build on this machine downloads
    through them, as the engine's build would through its own network."""
    return {key: value for key, value in os.environ.items() if NETWORK_SETTING.search(key)}


class ImageBuild:
    """Carry out a Dockerfile's stages; the result is the last stage's image."""

    def __init__(self, context: Path, dockerfile: Path, root: Path, cache_root: Path) -> None:
        self.context = context
        self.files = build_context(context)
        self.stages = parse_dockerfile(dockerfile.read_text())
        self.root = root
        self.cache_root = cache_root
        self.log: list[str] = []

    def final_user(self) -> tuple[int, int] | None:
        if os.geteuid() != 0:
            return None
        for instruction in reversed(self.stages[-1].instructions):
            if instruction.keyword == "USER":
                uid, _, gid = instruction.args.partition(":")
                if not uid.isdigit() or (gid and not gid.isdigit()):
                    raise EmulationError(f"USER {instruction.args}: only numeric users emulated")
                return int(uid), int(gid or uid)
        return None

    def build(self) -> Image:
        run_as = self.final_user()
        stage_roots: dict[str, Path] = {}
        image: Image | None = None
        for number, stage in enumerate(self.stages):
            if self.root.exists():
                previous = self.root.with_name(f"{self.root.name}.stage-{number - 1}")
                self.root.rename(previous)
                named = self.stages[number - 1].name
                stage_roots[str(number - 1)] = previous
                if named:
                    stage_roots[named] = previous
            self.root.mkdir(parents=True)
            match = PYTHON_IMAGE.match(stage.base)
            if not match:
                raise EmulationError(f"FROM {stage.base}: only python:X.Y[-slim] is emulated")
            python = base_python(match["version"], run_as, self.cache_root)
            image = Image(
                str(self.root),
                {"PATH": IMAGE_BASE_PATH, "LANG": "C.UTF-8"},
                "/",
                None,
                [],
                str(python),
            )
            for instruction in stage.instructions:
                self.log.append(f"{instruction.keyword} {instruction.args}")
                self._step(image, instruction, stage_roots)
        assert image is not None
        for old in stage_roots.values():
            shutil.rmtree(old, ignore_errors=True)
        if os.geteuid() != 0:
            subprocess.run(["chmod", "-R", "a-w", image.root], check=True)
        return image

    def _step(self, image: Image, ins: Instruction, stage_roots: Mapping[str, Path]) -> None:
        if ins.keyword == "ENV":
            image.env.update(parse_env(ins.args, image.env))
        elif ins.keyword == "WORKDIR":
            image.workdir = ins.args if ins.args.startswith("/") else f"{image.workdir}/{ins.args}"
            image.host_path(image.workdir).mkdir(parents=True, exist_ok=True)
        elif ins.keyword == "COPY":
            self._copy(image, ins, stage_roots)
        elif ins.keyword == "RUN":
            self._run(image, ins)
        elif ins.keyword == "USER":
            uid, _, gid = ins.args.partition(":")
            image.user = [int(uid), int(gid or uid)]
        elif ins.keyword == "CMD":
            image.cmd = json.loads(ins.args)
        elif ins.keyword in {"EXPOSE", "LABEL"}:
            pass
        else:
            raise EmulationError(f"{ins.keyword}: not emulated")

    def _copy(self, image: Image, ins: Instruction, stage_roots: Mapping[str, Path]) -> None:
        *sources, dest = shlex.split(ins.args)
        dest_abs = dest if dest.startswith("/") else f"{image.workdir}/{dest}"
        origin = ins.flags.get("from", [None])[0]
        if origin is not None and (uv := UV_IMAGE.match(origin)):
            machine = subprocess.run(
                [uv_binary(), "--version"], capture_output=True, text=True, check=True
            ).stdout.split()[1]
            if machine != uv["version"]:
                raise EmulationError(
                    f"the Dockerfile copies uv {uv['version']}; this machine's uv is {machine}: "
                    f"install uv {uv['version']} (pip install uv=={uv['version']})"
                )
            if sources != ["/uv"]:
                raise EmulationError(f"COPY --from={origin} {sources}: only /uv is emulated")
            target = image.host_path(dest_abs)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(shutil.which(uv_binary()) or uv_binary())
            return
        for source in sources:
            if origin is None:
                self._copy_context(image, source, dest_abs)
                continue
            base = stage_roots.get(origin)
            if base is None:
                raise EmulationError(f"COPY --from={origin}: no such stage")
            src = base / source.lstrip("/")
            target = image.host_path(dest_abs)
            if src.is_dir():
                shutil.copytree(src, target, symlinks=True, dirs_exist_ok=True)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, target)

    def _copy_context(self, image: Image, source: str, dest_abs: str) -> None:
        rel = "" if source in {".", "./"} else source.strip("/").removeprefix("./")
        if rel in self.files:  # one file
            name = Path(rel).name
            target = image.host_path(dest_abs + name if dest_abs.endswith("/") else dest_abs)
            pairs = [(rel, target)]
        else:  # a directory: its contents
            prefix = f"{rel}/" if rel else ""
            pairs = [
                (name, image.host_path(dest_abs) / name[len(prefix) :])
                for name in self.files
                if name.startswith(prefix)
            ]
        if not pairs:
            raise EmulationError(f"COPY {source}: nothing of it is in the build context")
        for name, target in pairs:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(self.context / name, target)

    def _run(self, image: Image, ins: Instruction) -> None:
        mounts = [
            dict(part.split("=", 1) for part in m.split(",")) for m in ins.flags.get("mount", [])
        ]
        extra: dict[str, str] = {"UV_PYTHON": image.python}
        bound: list[Path] = []
        for mount in mounts:
            if mount.get("type") == "cache" and mount.get("target") == "/root/.cache/uv":
                cache = subprocess.run(
                    [uv_binary(), "cache", "dir"], capture_output=True, text=True, check=True
                ).stdout.strip()
                extra["UV_CACHE_DIR"] = cache
            elif mount.get("type") == "bind":
                target = image.host_path(
                    mount["target"]
                    if mount["target"].startswith("/")
                    else f"{image.workdir}/{mount['target']}"
                )
                if mount["source"] not in self.files:
                    raise EmulationError(f"RUN --mount: {mount['source']} is not in the context")
                shutil.copy2(self.context / mount["source"], target)
                bound.append(target)
            else:
                raise EmulationError(f"RUN --mount={mount}: not emulated")
        if "UV_CACHE_DIR" not in extra:
            extra["UV_CACHE_DIR"] = str(Path(image.root) / "root" / ".cache" / "uv")
        try:
            for command in ins.args.split("&&"):
                self._command(image, shlex.split(command), extra)
        finally:
            for target in bound:  # a bind mount is not part of the layer
                target.unlink(missing_ok=True)

    def _command(self, image: Image, argv: list[str], extra: Mapping[str, str]) -> None:
        tool = argv[0]
        if tool == "uv":
            proc = subprocess.run(
                [image.translate(arg) for arg in argv],
                cwd=image.host_path(image.workdir),
                env={**network_env(), **image.host_env(extra)},
                capture_output=True,
                text=True,
                check=False,
            )
            self.log.append(proc.stdout + proc.stderr)
            if proc.returncode != 0:
                raise EmulationError(f"RUN {shlex.join(argv)} failed:\n{proc.stdout}{proc.stderr}")
        elif tool in {"groupadd", "useradd"}:
            self.log.append(f"(user database of the image: {shlex.join(argv)})")
        elif tool == "mkdir":
            for path in (a for a in argv[1:] if not a.startswith("-")):
                image.host_path(path).mkdir(parents=True, exist_ok=True)
        elif tool == "chown":
            owner, *paths = argv[1:]
            uid, _, gid = owner.partition(":")
            if os.geteuid() == 0:
                for path in paths:
                    os.chown(image.host_path(path), int(uid), int(gid or uid))
        else:
            raise EmulationError(f"RUN {shlex.join(argv)}: {tool} is not emulated")


# ----------------------------------------------------------------------------- compose


def compose_config(project: Path, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    proc = subprocess.run(
        [venv_bin("docker-compose"), "config", "--format", "json"],
        cwd=project,
        capture_output=True,
        text=True,
        env=dict(env) if env is not None else None,
        check=False,
    )
    if proc.returncode != 0:
        raise EmulationError(f"docker compose config failed:\n{proc.stderr}")
    data: dict[str, Any] = json.loads(proc.stdout)
    return data


def service_order(services: Mapping[str, Any]) -> list[str]:
    order: list[str] = []

    def visit(name: str) -> None:
        if name in order:
            return
        for dependency in services[name].get("depends_on") or {}:
            visit(dependency)
        order.append(name)

    for name in services:
        visit(name)
    return order


class Compose:
    """`docker compose` for one project, its state in `state_dir` across invocations."""

    def __init__(self, project: Path, state_dir: Path) -> None:
        self.project = project
        self.state_dir = state_dir
        self.state_file = state_dir / "state.json"
        self.state: dict[str, Any] = (
            json.loads(self.state_file.read_text()) if self.state_file.exists() else {}
        )
        self.state.setdefault("images", {})
        self.state.setdefault("containers", {})
        self.state.setdefault("databases", {})
        self.state.setdefault("ports", {})
        self.state.setdefault("volumes", {})
        self.config = compose_config(project)
        self.services: dict[str, Any] = self.config["services"]

    def save(self) -> None:
        self.state_file.write_text(json.dumps(self.state, indent=2))

    # -- the PostgreSQL server that stands in for postgres:* services
    def _postgres_url(self) -> str:
        url = os.environ.get("EMULATED_POSTGRES_URL")
        if not url:
            raise EmulationError(
                "compose runs PostgreSQL; the emulation needs a server for it: set "
                "EMULATED_POSTGRES_URL (the template's tests pass their throwaway server)"
            )
        return url

    def _psql(self, sql: str) -> None:
        from toolkit.postgres import Postgres, parse_server_url

        Postgres(parse_server_url(self._postgres_url()), cluster=None).query(sql)

    def _start_postgres(self, name: str, service: Mapping[str, Any]) -> None:
        wanted = service.get("environment", {}).get("POSTGRES_DB", "postgres")
        if name not in self.state["databases"]:
            actual = f"{wanted}_{uuid.uuid4().hex[:10]}"
            self._psql(f'CREATE DATABASE "{actual}"')
            self.state["databases"][name] = {"wanted": wanted, "actual": actual}

    def _service_url(self, value: str) -> str:
        """A URL naming a postgres:* service by host name → the stand-in server."""
        with contextlib.suppress(ValueError):
            parts = urlsplit(value)
            if parts.scheme and parts.hostname in self.state["databases"]:
                server = urlsplit(self._postgres_url())
                database = self.state["databases"][parts.hostname]["actual"]
                netloc = server.netloc.rsplit("@", 1)[-1]
                if server.username:
                    creds = quote(server.username, safe="")
                    if server.password:
                        creds += ":" + quote(server.password, safe="")
                    netloc = f"{creds}@{netloc}"
                return urlunsplit((parts.scheme, netloc, "/" + database, parts.query, ""))
        return value

    # -- images and volumes
    def _image(self, name: str, service: Mapping[str, Any], build: bool) -> Image:
        key = service.get("image") or f"{self.config.get('name', 'project')}-{name}"
        if key in self.state["images"] and not build:
            return Image(**self.state["images"][key])
        if build and "build" in service and key not in self.state.get("built", []):
            spec = service["build"]
            context = Path(spec["context"])
            root = self.state_dir / "images" / re.sub(r"[^\w.-]", "_", key)
            if root.exists():
                subprocess.run(["chmod", "-R", "u+w", str(root)], check=False)
                shutil.rmtree(root)
            builder = ImageBuild(
                context,
                context / spec.get("dockerfile", "Dockerfile"),
                root,
                Path(os.environ.get("EMULATED_DOCKER_CACHE", self.state_dir.parent)),
            )
            image = builder.build()
            self._save_writable(image)
            (self.state_dir / f"build-{root.name}.log").write_text("\n".join(builder.log))
            self.state["images"][key] = asdict(image)
            self.state.setdefault("built", []).append(key)
            return image
        if key in self.state["images"]:
            return Image(**self.state["images"][key])
        raise EmulationError(f"service {name}: image {key} was never built")

    def _mount_volumes(self, image: Image, service: Mapping[str, Any]) -> None:
        for volume in service.get("volumes") or []:
            if volume.get("type") != "volume":
                raise EmulationError(f"volume {volume}: only named volumes are emulated")
            path = self.state_dir / "volumes" / volume["source"]
            inside = image.host_path(volume["target"])
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                if inside.is_dir() and not inside.is_symlink():
                    shutil.copytree(inside, path, symlinks=True)
                    stat = inside.stat()
                    if os.geteuid() == 0:
                        os.chown(path, stat.st_uid, stat.st_gid)
                else:
                    path.mkdir()
            if inside.is_symlink():
                inside.unlink()
            elif inside.exists():
                shutil.rmtree(inside)
            inside.parent.mkdir(parents=True, exist_ok=True)
            inside.symlink_to(path, target_is_directory=True)

    # -- containers
    def _published(self, service: Mapping[str, Any]) -> dict[int, int]:
        from toolkit.processes import free_port

        mapping: dict[int, int] = {}
        for port in service.get("ports") or []:
            published = str(port["published"])
            if published not in self.state["ports"]:
                self.state["ports"][published] = free_port()
            mapping[int(port["target"])] = self.state["ports"][published]
        return mapping

    def _argv(
        self, image: Image, service: Mapping[str, Any], ports: Mapping[int, int]
    ) -> list[str]:
        argv = list(service.get("command") or image.cmd)
        for flag, index in ((a, i) for i, a in enumerate(argv) if a in {"--host", "--port"}):
            if flag == "--host":
                argv[index + 1] = "127.0.0.1"
            elif int(argv[index + 1]) in ports:
                argv[index + 1] = str(ports[int(argv[index + 1])])
        env = self._env(image, service)
        found = shutil.which(argv[0], path=env["PATH"])
        if found is None:
            raise EmulationError(f"{argv[0]} is not on the image's PATH")
        return [found, *argv[1:]]

    def _env(self, image: Image, service: Mapping[str, Any]) -> dict[str, str]:
        environment = {
            k: self._service_url(str(v)) for k, v in (service.get("environment") or {}).items()
        }
        return image.host_env(environment)

    def _popen(
        self, image: Image, service: Mapping[str, Any], argv: Sequence[str], log: Path
    ) -> subprocess.Popen[bytes]:
        user: dict[str, Any] = {}
        if image.user is not None and os.geteuid() == 0:
            user = {"user": image.user[0], "group": image.user[1], "extra_groups": []}
        with log.open("ab") as out:
            return subprocess.Popen(
                list(argv),
                cwd=image.host_path(image.workdir),
                env=self._env(image, service),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                **user,
            )

    def up(self, services: Sequence[str], *, build: bool) -> None:
        wanted = set(services) or set(self.services)
        order = [s for s in service_order(self.services)]
        needed: set[str] = set()

        def need(name: str) -> None:
            needed.add(name)
            for dependency in self.services[name].get("depends_on") or {}:
                need(dependency)

        for name in wanted:
            need(name)
        for name in (s for s in order if s in needed):
            service = self.services[name]
            if POSTGRES_IMAGE.match(service.get("image", "")) and "build" not in service:
                self._start_postgres(name, service)
                continue
            self._start(name, service, build=build)
        self.save()

    def _start(self, name: str, service: Mapping[str, Any], *, build: bool) -> None:
        running = self.state["containers"].get(name)
        if running and _alive(running["pid"]):
            return
        image = self._image(name, service, build)
        self._mount_volumes(image, service)
        ports = self._published(service)
        argv = self._argv(image, service, ports)
        log = self.state_dir / f"{name}.log"
        process = self._popen(image, service, argv, log)
        self.state["containers"][name] = {"pid": process.pid, "log": str(log)}
        dependents = [
            cond
            for svc in self.services.values()
            for dep, cond in (svc.get("depends_on") or {}).items()
            if dep == name
        ]
        if any(c.get("condition") == "service_completed_successfully" for c in dependents):
            code = process.wait(timeout=300)
            if code != 0:
                raise EmulationError(f"service {name} exited with {code}:\n{log.read_text()}")

    def stop(self, services: Sequence[str] = ()) -> None:
        for name, container in list(self.state["containers"].items()):
            if services and name not in services:
                continue
            _terminate(container["pid"])
            del self.state["containers"][name]
        self.save()

    def restart(self, services: Sequence[str]) -> None:
        names = list(services) or [n for n in self.state["containers"]]
        self.stop(names)
        for name in names:
            self._start(name, self.services[name], build=False)
        self.save()

    def down(self, *, volumes: bool) -> None:
        """Containers end: their mounts go and what they wrote outside volumes is lost (each
        image's user-owned directories are restored from the build); volumes only with
        `volumes`."""
        self.stop()
        for image in self.state["images"].values():
            root = Path(image["root"])
            for link in [p for p in root.rglob("*") if p.is_symlink()]:
                if str(self.state_dir / "volumes") in os.readlink(link):
                    link.unlink()
            pristine = root.with_name(root.name + ".pristine")
            for saved in pristine.iterdir() if pristine.exists() else []:
                target = root / saved.name.replace("%", "/")
                shutil.rmtree(target, ignore_errors=True)
                shutil.copytree(saved, target, symlinks=True)
                if os.geteuid() == 0:
                    stat = saved.stat()
                    os.chown(target, stat.st_uid, stat.st_gid)
        if volumes:
            for database in self.state["databases"].values():
                self._psql(f'DROP DATABASE IF EXISTS "{database["actual"]}" WITH (FORCE)')
            self.state["databases"] = {}
            shutil.rmtree(self.state_dir / "volumes", ignore_errors=True)
        self.save()

    @staticmethod
    def _save_writable(image: Image) -> None:
        """Keep the directories the image's user may write, as built, for `down` to restore."""
        root = Path(image.root)
        pristine = root.with_name(root.name + ".pristine")
        shutil.rmtree(pristine, ignore_errors=True)
        pristine.mkdir()
        if image.user is None:
            return
        for path in root.rglob("*"):
            if path.is_dir() and not path.is_symlink() and path.stat().st_uid == image.user[0]:
                rel = str(path.relative_to(root))
                if not any(
                    rel.startswith(p.name.replace("%", "/") + "/") for p in pristine.iterdir()
                ):
                    shutil.copytree(path, pristine / rel.replace("/", "%"), symlinks=True)
                    stat = path.stat()
                    if os.geteuid() == 0:
                        os.chown(pristine / rel.replace("/", "%"), stat.st_uid, stat.st_gid)

    def logs(self) -> str:
        return "".join(
            Path(log).read_text(errors="replace")
            for log in sorted(self.state_dir.glob("*.log"))
            if not log.name.startswith("build-")
        )

    def exec(self, name: str, argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
        service = self.services[name]
        image = self._image(name, service, build=False)
        env = self._env(image, service)
        found = shutil.which(argv[0], path=env["PATH"]) or argv[0]
        user: dict[str, Any] = {}
        if image.user is not None and os.geteuid() == 0:
            user = {"user": image.user[0], "group": image.user[1], "extra_groups": []}
        return subprocess.run(
            [found, *argv[1:]],
            cwd=image.host_path(image.workdir),
            env=env,
            capture_output=True,
            text=True,
            check=False,
            **user,
        )

    def port(self, published: int) -> int:
        return int(self.state["ports"][str(published)])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _terminate(pid: int, grace: float = 15) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, sig)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            if not _alive(pid):
                return
            time.sleep(0.1)


# ----------------------------------------------------------------------------- the `docker` CLI


SHIM = """#!/bin/sh
# The local stand-in for the docker CLI (toolkit/docker.py).
EMULATED_DOCKER_STATE='{state}' PYTHONPATH='{root}' exec '{python}' -m toolkit.docker "$@"
"""


@contextlib.contextmanager
def docker_on_path(state_dir: Path) -> Iterator[Path]:
    """A directory holding a `docker` command that runs this emulation (put it first on PATH)."""
    from toolkit.answers import TEMPLATE_ROOT

    bin_dir = state_dir / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    shim = bin_dir / "docker"
    shim.write_text(SHIM.format(state=state_dir, root=TEMPLATE_ROOT, python=sys.executable))
    shim.chmod(0o755)
    yield bin_dir


def main(argv: Sequence[str]) -> int:
    state_root = Path(os.environ["EMULATED_DOCKER_STATE"])
    args = list(argv)
    if args[:1] != ["compose"]:
        print(f"emulated docker: only `docker compose` is emulated, not {args}", file=sys.stderr)
        return 2
    command, *rest = args[1:]
    project = Path.cwd()
    compose = Compose(project, state_root / "compose")
    try:
        if command == "up":
            services = [a for a in rest if not a.startswith("-")]
            flags = {a for a in rest if a.startswith("-")}
            compose.up(services, build="--build" in flags or not compose.state["images"])
            if not flags & {"-d", "--detach"}:
                print("emulated docker: `up` runs detached here", file=sys.stderr)
        elif command == "down":
            compose.down(volumes="--volumes" in rest or "-v" in rest)
        elif command == "restart":
            compose.restart([a for a in rest if not a.startswith("-")])
        elif command == "logs":
            print(compose.logs())
        elif command == "exec":
            service, *inner = [a for a in rest if a not in {"-T"}]
            result = compose.exec(service, inner)
            print(result.stdout, end="")
            print(result.stderr, end="", file=sys.stderr)
            return result.returncode
        else:
            print(f"emulated docker: `compose {command}` is not emulated", file=sys.stderr)
            return 2
    except EmulationError as exc:
        print(f"emulated docker: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
