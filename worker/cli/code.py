"""`claimcoder code "NARRATIVE" ...`: one claim through the pipeline's stages, without Kafka."""

import datetime as dt
import json
from typing import Annotated, Any, Literal

import typer

from schemas.decode import decode_claim
from schemas.exceptions import ContractError
from schemas.raw import ClaimRaw
from worker.cli.common import fail, load_settings, out, run_checked
from worker.intake import work_item
from worker.pipeline import ClaimPipeline
from worker.settings import Settings


async def _code(settings: Settings, claim: ClaimRaw, value: bytes) -> bytes:
    """The claim through the pipeline's stage list: no Kafka record, no tracing, no store."""
    pipeline = ClaimPipeline.from_settings(settings, record=False)
    try:
        await pipeline.start()
        item = work_item(claim, value, pipeline.assessor.registry)
        await pipeline.run([item], pipeline.telemetry.batch([]))
    finally:
        await pipeline.stop()
    if item.output is None:  # a stage failed for this claim alone: say where, by type only
        failure = item.failure
        assert failure is not None
        fail(f"{failure.stage}: {type(failure.error).__name__}")
    return item.output.model_dump_json().encode("utf-8")


def code(
    narrative: Annotated[str, typer.Argument(help="The claim narrative (patient or discharge).")],
    age: Annotated[int, typer.Option(help="Age in years.")],
    sex: Annotated[Literal["M", "F", "U"], typer.Option(help="M, F or U.")],
    discharge_date: Annotated[dt.datetime, typer.Option(formats=["%Y-%m-%d"], help="YYYY-MM-DD.")],
    provider: Annotated[str | None, typer.Option(help="CCN of the hospital.")] = None,
    discharge_status: Annotated[int, typer.Option(help="UB-04 discharge status.")] = 1,
    admission_date: Annotated[
        dt.datetime | None,
        typer.Option(formats=["%Y-%m-%d"], help="YYYY-MM-DD (a transfer's length of stay)."),
    ] = None,
    claim_id: Annotated[str, typer.Option(help="claim_id to report.")] = "cli",
    procedure: Annotated[
        list[str] | None,
        typer.Option(
            help="ICD-10-PCS procedure code of the claim (procedure_codes), principal "
            "procedure first; repeat the option or separate with commas."
        ),
    ] = None,
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
    if admission_date is not None:
        event["admission_date"] = admission_date.date().isoformat()
    if procedure:  # as estimate --procedure reads them: commas split, spaces trimmed
        event["procedure_codes"] = [c.strip() for p in procedure for c in p.split(",") if c.strip()]
    value = json.dumps(event).encode("utf-8")
    try:
        claim = decode_claim(value)
    except ContractError as exc:
        fail(f"{exc.kind}: {exc.message}")
    output = run_checked(_code(settings, claim, value))
    out.print(output.decode("utf-8"), markup=False)
