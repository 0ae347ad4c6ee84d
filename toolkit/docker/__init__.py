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

import sys
from pathlib import Path


class EmulationError(RuntimeError):
    pass


def venv_bin(name: str) -> str:
    """A tool of the template's own environment (docker-compose, hadolint, ...)."""
    path = Path(sys.executable).parent / name
    if not path.exists():
        raise EmulationError(f"{path} is missing: run `uv sync` in the template repository")
    return str(path)
