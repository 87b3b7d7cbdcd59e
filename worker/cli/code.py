"""`claimcoder code "NARRATIVE" ...`: one claim through the pipeline's stages, without Kafka."""

import datetime as dt
import json
from typing import Annotated, Any, Literal

import typer

from worker.cli.common import fail, load_settings, out, run_checked
from worker.intake import Accepted, Rejected, accept
from worker.pipeline import ClaimPipeline
from worker.records import Record
from worker.settings import Settings
from worker.telemetry import BatchTrace


async def _code(settings: Settings, accepted: Accepted) -> bytes:
    pipeline = ClaimPipeline.from_settings(settings, record=False)
    await pipeline.start()
    trace = BatchTrace([accepted.record], "cli")
    try:
        (output,) = await pipeline.process([accepted], trace)
    finally:
        trace.close()
        await pipeline.stop()
    return output.value


def code(
    narrative: Annotated[str, typer.Argument(help="The claim narrative (patient or discharge).")],
    age: Annotated[int, typer.Option(help="Age in years.")],
    sex: Annotated[Literal["M", "F", "U"], typer.Option(help="M, F or U.")],
    discharge_date: Annotated[dt.datetime, typer.Option(formats=["%Y-%m-%d"], help="YYYY-MM-DD.")],
    provider: Annotated[str | None, typer.Option(help="CCN of the hospital.")] = None,
    discharge_status: Annotated[int, typer.Option(help="UB-04 discharge status.")] = 1,
    claim_id: Annotated[str, typer.Option(help="claim_id to report.")] = "cli",
    coder: Annotated[
        Literal["retrieval", "vllm"] | None, typer.Option(help="Override CLAIMCODER_CODER_KIND.")
    ] = None,
) -> None:
    """Code, validate, group and price one claim; print its claims.coded event as JSON."""
    settings = load_settings()
    if coder is not None:
        settings = settings.model_copy(
            update={"coder": settings.coder.model_copy(update={"kind": coder})}
        )
    event: dict[str, Any] = {
        "schema_version": 1,
        "claim_id": claim_id,
        "narrative": narrative,
        "patient": {"age": age, "sex": sex},
        "discharge_date": discharge_date.date().isoformat(),
        "discharge_status": discharge_status,
    }
    if provider:
        event["provider_id"] = provider
    value = json.dumps(event).encode("utf-8")
    outcome = accept(Record("cli", 0, 0, claim_id.encode("utf-8"), value))
    if isinstance(outcome, Rejected):
        fail(f"{outcome.letter.error.type}: {outcome.letter.error.message}")
    output = run_checked(_code(settings, outcome))
    out.print(output.decode("utf-8"), markup=False)
