"""Code normalisation: "s82.201a", "S82201A" and " S82.201A " are the same code.

Pure functions, no I/O: the validator, the coders and the grouper all agree through these.
"""

import re
from typing import Final

# A letter, then 2-6 digits or letters: the shape of every ICD-10-CM code (categories are 3
# characters, billable codes 3 to 7). The second character is a digit except in FY2026's new
# category QA0 ("QA0.0101"), hence [0-9A-Z]. Shape is necessary, not sufficient: only the code
# set decides whether a code exists.
_SHAPE: Final = re.compile(r"[A-Z][0-9A-Z][0-9A-Z]{1,5}")
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
