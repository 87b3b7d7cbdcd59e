"""ICD-10-PCS procedure codes of a claim: normalisation and shape.

Procedure codes come only from the claim (``claims.raw`` ``procedure_codes``, `claimcoder
estimate --procedure`): a coder never proposes one. Each goes through two checks:

1. shape, here, with no I/O (:func:`normalize_procedure`): a token that cannot be an ICD-10-PCS
   code is rejected as ``procedure:invalid`` (``drg.assess``);
2. validity on the discharge date, by the Medicare Code Editor (``drg.grouping``): a code the
   editor reports ``INVALID_CODE`` (or ``AGE_CONFLICT``, ``SEX_CONFLICT``) for is rejected as
   ``procedure:mce:<EDIT>`` and never reaches the grouper.
"""

import re
from typing import Final

from schemas.icd10pcs import PCS_CODE

_SHAPE: Final = re.compile(PCS_CODE)
#: The reason of a rejected procedure code is this prefix and then the diagnosis vocabulary.
REJECT_PREFIX: Final = "procedure:"


def normalize_procedure(raw: str) -> str | None:
    """Upper-case ICD-10-PCS code, or None when ``raw`` cannot be one. Only case and
    surrounding whitespace are tolerated ("0sr9019 " is 0SR9019)."""
    text = raw.strip()
    if not text.isascii():  # upper() maps the dotless i to "I" and the long s to "S"
        return None
    text = text.upper()
    return text if _SHAPE.fullmatch(text) else None
