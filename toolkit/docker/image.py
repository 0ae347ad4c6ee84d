"""An image built by carrying out a Dockerfile's stages on this machine, on a base interpreter
that the image's user can run."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import shutil
import subprocess
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from toolkit.docker import EmulationError
from toolkit.docker.dockerfile import Instruction, build_context, parse_dockerfile, parse_env
from toolkit.environment import uv_binary
from toolkit.pythons import interpreter

IMAGE_BASE_PATH = "/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin"
UV_IMAGE = re.compile(r"^ghcr\.io/astral-sh/uv:(?P<version>[0-9.]+)$")
PYTHON_IMAGE = re.compile(r"^python:(?P<version>3\.\d+)(-slim)?$")


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
