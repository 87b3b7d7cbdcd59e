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


class EngineStoppedError(CoderError):
    """Recoverable by restarting the engine: the whole engine stopped (vLLM's own
    ``EngineDeadError``, which means the opposite for vLLM: that engine is gone for good). The
    inference stage restarts the engine and codes the unfinished claims again, within their
    retry budget; no claim is lost."""

    def __init__(self, message: str = "inference engine stopped") -> None:
        super().__init__("engine_stopped", message)


class CoderUnavailableError(ClaimcoderError):
    """Fatal for start-up: the configured coder cannot run here (missing extra, bad model path)."""
