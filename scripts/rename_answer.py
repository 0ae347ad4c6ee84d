"""Copier migration: carry an answer over to a renamed question.

    python rename_answer.py ANSWERS_FILE OLD_NAME NEW_NAME

Run from a `_migrations` entry (copier.yml) in the `before` stage of `copier update`, in the
project being updated: copier reads the answers file after that stage, so the recorded answer to
OLD_NAME becomes the answer to NEW_NAME instead of NEW_NAME's default. Only the key is renamed
(the value, however many lines it spans, is kept byte for byte). Nothing changes when OLD_NAME is
not recorded or NEW_NAME already is.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path


def rename_answer(text: str, old: str, new: str) -> str:
    def key(name: str) -> re.Pattern[str]:
        return re.compile(rf"^{re.escape(name)}:(?=\s|$)", re.MULTILINE)

    if key(new).search(text):
        return text
    return key(old).sub(f"{new}:", text, count=1)


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    answers_file, old, new = argv
    path = Path(answers_file)
    text = path.read_text(encoding="utf-8")
    renamed = rename_answer(text, old, new)
    if renamed != text:
        path.write_text(renamed, encoding="utf-8")
        print(f"{answers_file}: answer to {old!r} kept as the answer to {new!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
