"""The project's root error type.

Every error claimcoder raises on purpose derives from :class:`ClaimcoderError`. Each subclass says
in its docstring whether it is *recoverable* (retry or pause, the event is kept) or *fatal for the
event* (the event goes to the dead-letter topic). Messages never carry patient data.
"""


class ClaimcoderError(Exception):
    """Root of all claimcoder errors."""

    #: True when retrying (or pausing and retrying) may succeed; False when the event is dead.
    recoverable: bool = False


class ContractError(ClaimcoderError):
    """Fatal for the event: the bytes do not satisfy the published event contract."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        #: machine-readable reason, e.g. ``bad_utf8``, ``bad_json``, ``invalid_event``
        self.kind = kind
        self.message = message
