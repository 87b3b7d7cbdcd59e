"""The shape of an ICD-10-PCS procedure code: seven characters, each a digit or a letter other
than I and O (ICD-10-PCS Official Guidelines for Coding and Reporting, A.2 and A.3: "The
letters O and I are not used"). Shape is necessary, not sufficient: only the Medicare Code
Editor's tables for the discharge date decide whether a code is valid (``drg.grouping``).

Used by the event contract (``schemas/coded.py``) and ``drg.procedures``.
"""

from typing import Final

#: One code as stored and grouped: "0SR9019".
PCS_CODE: Final = r"[0-9A-HJ-NP-Z]{7}"
#: Anchored, for JSON Schema ``pattern`` and pydantic fields.
PCS_CODE_PATTERN: Final = f"^{PCS_CODE}$"
