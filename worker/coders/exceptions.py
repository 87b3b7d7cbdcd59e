"""Coder errors; each says whether retrying can help."""

from schemas.exceptions import ClaimcoderError


class CoderError(ClaimcoderError):
    """A claim could not be coded this time. Recoverable: the pipeline retries it a bounded
    number of times, then marks the claim ``needs_review`` with reason ``coder_error``."""

    recoverable = True

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind  # timeout | bad_output | engine_error | unknown_release | ...
        self.message = message


class EngineDeadError(CoderError):
    """Recoverable by restarting the engine: the whole engine stopped. The worker pauses its
    partitions, restarts the engine and codes the batch again; no claim is lost."""

    def __init__(self, message: str = "inference engine is dead") -> None:
        super().__init__("engine_dead", message)


class CoderUnavailableError(ClaimcoderError):
    """Fatal for start-up: the configured coder cannot run here (missing extra, bad model path)."""
