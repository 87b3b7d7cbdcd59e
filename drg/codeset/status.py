"""The one classification of a code against a release's code set."""

from enum import StrEnum


class CodeStatus(StrEnum):
    BILLABLE = "billable"  # a leaf of the release's code list: may be reported
    NOT_BILLABLE = "not_billable"  # listed, but a header with more specific codes under it
    INVALID = "invalid"  # not code-shaped, or not in the release
    DUPLICATE = "duplicate"  # a listed code already given earlier for the same claim
