"""Write `.env` from `.env.example`, with a fresh random value for every `change-me-…` placeholder.

Run it once in every new clone (`python3 scripts/init_env.py`; the standard library is enough).
Copier runs it when it creates the project. An existing `.env` is never touched.
"""

import re
import secrets
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PLACEHOLDER = re.compile(r"change-me-[a-z0-9-]+")


def main() -> int:
    env, example = ROOT / ".env", ROOT / ".env.example"
    if env.exists():
        print(f"{env} exists: left as it is.")
        return 0
    values: dict[str, str] = {}  # the same placeholder gets the same value everywhere
    text = PLACEHOLDER.sub(
        lambda match: values.setdefault(match.group(), secrets.token_urlsafe(32)),
        example.read_text(encoding="utf-8"),
    )
    env.touch(mode=0o600)
    env.write_text(text, encoding="utf-8")
    print(f"{env} written with {len(values)} fresh secret(s).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
