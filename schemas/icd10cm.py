"""The shape of an ICD-10-CM diagnosis code: the one definition every parser uses.

A code is a category of three characters (a letter, then two letters or digits), optionally
followed by up to four more characters written after a dot. The second character is a letter in
some categories (``QA0``, ``QA1``, ``K6A``) and the third in others (``J4B``, a billable
three-character code): ICD-10-CM Official Guidelines for Coding and Reporting, section I.A.1
("Alphanumeric characters"), and the FY2027 tabular list. Shape is necessary, not sufficient:
only a release's code set decides whether a code exists and whether it is billable.

Used by the event contract (``schemas/coded.py``), normalisation (``drg/codeset/normalize.py``),
the vLLM output parsers and the retrieval index.
"""

from typing import Final

#: A category: "S82", "QA1", "J4B".
CATEGORY: Final = r"[A-Z][0-9A-Z]{2}"
#: The written form: the category, then optionally a dot and 1-4 characters ("S82.201A").
#: A plain group, not (?:...): every regex engine that reads it (JSON Schema, pydantic, Python,
#: vLLM's structured-output backends) understands it.
DOTTED_CODE: Final = rf"{CATEGORY}(\.[0-9A-Z]{{1,4}})?"
#: The stored form: 3 to 7 characters with no dot ("S82201A").
UNDOTTED_CODE: Final = rf"{CATEGORY}[0-9A-Z]{{0,4}}"
#: Anchored, for JSON Schema ``pattern`` and pydantic fields.
DOTTED_CODE_PATTERN: Final = f"^{DOTTED_CODE}$"
