"""Turn the bytes of a `claims.raw` record into a :class:`ClaimRaw`, or say exactly why not.

Error messages name fields and rules, never values: the input is patient health information.
"""

from typing import Final

from pydantic import ValidationError

from schemas.exceptions import ContractError
from schemas.raw import ClaimRaw

MAX_MESSAGE_CHARS: Final = 1000


def describe_validation_error(exc: ValidationError) -> str:
    """One line per problem, ``field.path: rule``; pydantic's inputs are left out on purpose."""
    parts = []
    for err in exc.errors(include_url=False, include_context=False, include_input=False):
        where = ".".join(str(p) for p in err["loc"]) or "event"
        parts.append(f"{where}: {err['msg']}")
    message = "; ".join(parts)
    if len(message) > MAX_MESSAGE_CHARS:
        message = message[: MAX_MESSAGE_CHARS - 3] + "..."
    return message


def _kind_of(exc: ValidationError) -> str:
    errors = exc.errors(include_input=False)
    if any(e["type"] == "json_invalid" for e in errors):
        return "bad_json"
    if all(e["loc"] == ("narrative",) and e["type"] == "string_too_long" for e in errors):
        return "narrative_too_long"  # its own reason: the producer must split or trim the text
    return "invalid_event"


def decode_claim(value: bytes | None, key: bytes | None = None) -> ClaimRaw:
    """Validate one record; raise :class:`ContractError` with a machine-readable ``kind``."""
    if value is None:
        raise ContractError("empty_value", "record has no value (tombstone)")
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ContractError(
            "bad_utf8", f"value is not UTF-8 (invalid byte at {exc.start})"
        ) from None
    try:
        claim = ClaimRaw.model_validate_json(text)
    except ValidationError as exc:
        raise ContractError(_kind_of(exc), describe_validation_error(exc)) from None
    if key is not None and key != claim.claim_id.encode("utf-8"):
        raise ContractError("key_mismatch", "record key differs from claim_id")
    return claim
