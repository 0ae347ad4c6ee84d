"""The one rule for text that people type, such as names: trimmed, not blank, and nothing that
cannot be printed."""

import unicodedata
from typing import Annotated

from pydantic import AfterValidator, StringConstraints

_UNPRINTABLE = r"\x00-\x1f\x7f-\x9f"
# At least one character that is neither space nor a control character (C0, DEL, C1), and no
# control character anywhere: the part of the rule the OpenAPI document can state.
PRINTABLE = rf"^[^{_UNPRINTABLE}]*[^\s{_UNPRINTABLE}][^{_UNPRINTABLE}]*$"
# Control characters, surrogates and code points Unicode has not assigned. The last depend on
# the Unicode version, so only this validator knows them.
_REFUSED_CATEGORIES = frozenset({"Cc", "Cs", "Cn"})


def refuse_unprintable(value: str) -> str:
    if any(unicodedata.category(character) in _REFUSED_CATEGORIES for character in value):
        msg = "must not hold control characters or unassigned code points"
        raise ValueError(msg)
    return value


Text = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200, pattern=PRINTABLE),
    AfterValidator(refuse_unprintable),
]
"""Trimmed, 1 to 200 characters, not only spaces, nothing unprintable."""
