"""Code normalisation: "s82.201a", "S82201A" and " S82.201A " are the same code.

Pure functions, no I/O: the validator, the coders and the grouper all agree through these.
"""

import re
from collections.abc import Container
from typing import Final

from schemas.icd10cm import UNDOTTED_CODE

# The one shape of a code (schemas/icd10cm.py); only the code set decides whether it exists.
_SHAPE: Final = re.compile(UNDOTTED_CODE)
_STRIP: Final = str.maketrans("", "", " \t\r\n.")


def normalize(raw: str) -> str | None:
    """Undotted upper-case code, or None when ``raw`` cannot be an ICD-10-CM code.

    Only case, surrounding whitespace and the one dot after the category are tolerated; anything
    else (inner spaces, two dots, a misplaced dot, non-ASCII or other characters) makes the input
    not a code.
    """
    text = raw.strip()
    if not text.isascii():  # upper() maps the dotless i to "I" and the long s to "S"
        return None
    text = text.upper()
    if "." in text:
        head, _, tail = text.partition(".")
        if len(head) != 3 or not tail or "." in tail:
            return None
        text = head + tail
    if text != text.translate(_STRIP) or not _SHAPE.fullmatch(text):
        return None
    return text


def dotted(code: str) -> str:
    """Display form of an undotted code: "S82201A" -> "S82.201A"."""
    return code if len(code) <= 3 else f"{code[:3]}.{code[3:]}"


def nearest_listed_parent(code: str, listed: Container[str]) -> str | None:
    """The longest proper prefix of an undotted ``code`` (3 characters at least) that ``listed``
    holds: its parent in the code list ("S82201" for "S82201A", "S82" for "S8220" when S822 is
    not listed), or None for a category."""
    for end in range(len(code) - 1, 2, -1):
        if code[:end] in listed:
            return code[:end]
    return None
