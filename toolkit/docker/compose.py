"""`docker compose` for one project: its services as processes of this machine, its state kept
between invocations."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from toolkit.docker import EmulationError, venv_bin
from toolkit.docker.image import Image, ImageBuild

POSTGRES_IMAGE = re.compile(r"^postgres:\d+")


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
