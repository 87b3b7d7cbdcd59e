"""`claimcoder eval`: the metric arithmetic on hand-made cases, and the command end to end."""

import dataclasses
import datetime as dt
import json
from collections.abc import Sequence
from pathlib import Path

import pytest
from typer.testing import CliRunner

from drg.codeset.catalog import shipped_catalog
from drg.codeset.status import CodeStatus
from drg.conventions.apply import conventions_for
from drg.grouping import GroupingEngine
from schemas.coded import ModelInfo
from worker.cli import app
from worker.coders.base import Coder, CoderResult, CodingRequest
from worker.coders.exceptions import CoderError
from worker.evaluation import JSON_KEYS, Outcome, Patient, drg_agreement, run, score

# A stand-in for the FY2026 code set: the few codes the cases use.
KNOWN = {
    "E119": CodeStatus.BILLABLE,
    "E1165": CodeStatus.BILLABLE,
    "I10": CodeStatus.BILLABLE,
    "J189": CodeStatus.BILLABLE,
    "R509": CodeStatus.BILLABLE,
    "R52": CodeStatus.BILLABLE,
    "R69": CodeStatus.BILLABLE,
    "E11": CodeStatus.NOT_BILLABLE,
}


def classify(code: str) -> CodeStatus:
    return KNOWN.get(code, CodeStatus.INVALID)


def test_figures_on_hand_made_documents() -> None:
    gold = [["E11.9", "I10"], ["J18.9", "R50.9"], ["R52", "R69"], ["I10"]]
    outcomes = [
        Outcome(("E11.65", "I10"), ok=True),  # one right, one wrong leaf of the right category
        Outcome(("J18.9", "E11", "Q99.99.9", "j18.9"), ok=True),  # a duplicate, a non-code
        Outcome((), ok=False),  # the coder failed on this one
        Outcome((" i10 ",), ok=True),  # spelling does not matter
    ]
    report = score(gold, outcomes, classify, elapsed_s=2.0)
    # micro: 3 right of 6 predicted and 7 expected; per document (A, B, C, D):
    # precision 1/2, 1/3, 0, 1; recall 1/2, 1/2, 0, 1; F1 1/2, 2/5, 0, 1
    # category: 4 right of 6 predicted (E11 I10 | J18 E11 Q99 | - | I10) and 7 expected
    figures = dataclasses.asdict(report)
    # the gold lists are not said to be ordered: no principal accuracy, no DRG agreement
    assert (figures.pop("principal_accuracy"), figures.pop("drg_agreement")) == (None, None)
    assert figures == pytest.approx(
        {
            "micro_precision": 3 / 6,
            "micro_recall": 3 / 7,
            "micro_f1": 6 / 13,
            "doc_precision": (1 / 2 + 1 / 3 + 0 + 1) / 4,
            "doc_recall": (1 / 2 + 1 / 2 + 0 + 1) / 4,
            "doc_f1": (1 / 2 + 2 / 5 + 0 + 1) / 4,
            "category_f1": 8 / 13,
            "exact_match": 1 / 4,
            "format_compliance": 2 / 4,  # B has a non-code, C an error
            "hallucination_rate": 1 / 6,  # Q99.99.9
            "non_billable_rate": 1 / 6,  # E11
            "mean_predicted": 6 / 4,
            "mean_gold": 7 / 4,
            "n_docs": 4,
            "errors": 1,
            "docs_per_s": 2.0,
        }
    )
    assert list(report.to_dict()) == list(JSON_KEYS)


def test_empty_predictions_and_gold_score_zero_not_nan() -> None:
    report = score([[], ["I10"]], [Outcome((), ok=True), Outcome((), ok=True)], classify)
    assert report.to_dict() == {
        "micro_precision": 0.0,
        "micro_recall": 0.0,
        "micro_f1": 0.0,
        "doc_f1": 0.0,
        "category_f1": 0.0,
        "exact_match": 0.5,  # nothing expected, nothing predicted
        "format_compliance": 1.0,
        "hallucination_rate": 0.0,
        "non_billable_rate": 0.0,
        "mean_predicted": 0.0,
        "mean_gold": 0.5,
        "principal_accuracy": None,
        "drg_agreement": None,
        "n_docs": 2,
        "docs_per_s": 0.0,
    }


def test_the_fy2026_code_set_eval_classifies_against() -> None:
    codeset = shipped_catalog().codeset("2026-04")
    assert (len(codeset), sum(1 for _ in codeset.billable())) == (98_186, 74_719)
    spellings = ("E11.9", "e119", " S82.201A ", "S82.201", "E11", "E11.99", "XYZ", "E11..9")
    assert [codeset.classify(raw) for raw in spellings] == [
        CodeStatus.BILLABLE,
        CodeStatus.BILLABLE,
        CodeStatus.BILLABLE,
        CodeStatus.NOT_BILLABLE,  # needs its 7th character
        CodeStatus.NOT_BILLABLE,
        CodeStatus.INVALID,
        CodeStatus.INVALID,
        CodeStatus.INVALID,
    ]
    assert [r.code for r in codeset.ancestors("S82201A")] == ["S82201", "S8220", "S822", "S82"]


def test_score_needs_one_outcome_per_document() -> None:
    with pytest.raises(ValueError, match="one outcome per document"):
        score([["I10"]], [], classify)


class _EchoCoder(Coder):
    """Codes a narrative as the codes it spells; "fail" is a per-claim error."""

    @property
    def info(self) -> ModelInfo:
        return ModelInfo(engine="manual", model="echo")

    async def code_batch(self, requests: Sequence[CodingRequest]) -> list[CoderResult]:
        return [
            CoderResult(r.claim_id, error=CoderError("bad_output", "no"))
            if r.narrative == "fail"
            else CoderResult(r.claim_id, codes=tuple(r.narrative.split()))
            for r in requests
        ]


async def test_run_codes_in_batches_and_reports_progress() -> None:
    progress: list[int] = []
    outcomes, elapsed = await run(
        _EchoCoder(), ["I10", "fail", "E11.9 I10"], batch_size=2, progress=progress.append
    )
    assert outcomes == [
        Outcome(("I10",), ok=True),
        Outcome((), ok=False),
        Outcome(("E11.9", "I10"), ok=True),
    ]
    assert progress == [2, 1]
    assert elapsed > 0


def test_eval_command_writes_the_figures(tmp_path: Path) -> None:
    data = tmp_path / "docs.jsonl"
    docs = [
        {
            "text": "Patient with type 2 diabetes mellitus and essential hypertension.",
            "gold": ["E11.9", "I10"],
        },
        {"text": "No history of diabetes. Atrial fibrillation.", "gold": ["I48.91"]},
        {"text": "Fever. Diagnosed with pneumonia.", "gold": ["J18.9"]},
    ]
    data.write_text("".join(json.dumps(d) + "\n" for d in docs) + "\n")
    out = tmp_path / "out.json"
    result = CliRunner().invoke(
        app,
        ["eval", str(data), "--coder", "retrieval", "--codes-field", "gold", "--json", str(out)],
    )
    assert result.exit_code == 0, result.output
    figures = json.loads(out.read_text())
    assert figures.pop("docs_per_s") > 0
    assert (figures.pop("principal_accuracy"), figures.pop("drg_agreement")) == (None, None)
    # predicted: E11.9 I10 | I48.91 | J18.9 R50.9 -> 4 of 5 right, all 4 expected found
    assert figures == pytest.approx(
        {
            "micro_precision": 4 / 5,
            "micro_recall": 1.0,
            "micro_f1": 8 / 9,
            "doc_f1": (1 + 1 + 2 / 3) / 3,
            "category_f1": 8 / 9,
            "exact_match": 2 / 3,
            "format_compliance": 1.0,
            "hallucination_rate": 0.0,
            "non_billable_rate": 0.0,
            "mean_predicted": 5 / 3,
            "mean_gold": 4 / 3,
            "n_docs": 3,
        }
    )
    assert "3 documents, bm25-evidence-lr/codiesp-train@" in result.stderr  # the table's title


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("not json", "not JSON"),
        ('{"codes": []}', "no string field 'text'"),
        ('{"text": "x", "codes": "I10"}', "no list of strings 'codes'"),
    ],
)
def test_eval_command_names_the_bad_line(tmp_path: Path, line: str, message: str) -> None:
    data = tmp_path / "bad.jsonl"
    data.write_text(line + "\n")
    result = CliRunner().invoke(app, ["eval", str(data)])
    assert result.exit_code == 2
    # rich wraps long lines wherever it likes: compare without whitespace
    assert "".join(f"{data.name}:1: {message}".split()) in "".join(result.stderr.split())


def test_principal_accuracy_and_drg_agreement_on_ordered_gold_lists() -> None:
    """Gold lists principal first, with age and sex: the principal is right for 2 of 3, and
    grouped with msdrg v43.0 (FY2026) the billed codes give the gold DRG for 2 of 3: Z51.11
    first is DRG 847 like the gold; C18.7 first is DRG 376 against the gold 847; the third
    matches (I50.21 with J96.01: DRG 291)."""
    gold = [["Z51.11", "C18.7"], ["Z51.11", "C18.7"], ["I50.21", "J96.01"]]
    outcomes = [
        Outcome(("Z51.11", "C18.7"), ok=True),
        Outcome(("C18.7", "Z51.11"), ok=True),
        Outcome(("I50.21", "J96.01", "XYZ"), ok=True),  # an invalid extra: not billed
    ]
    patients = [Patient(70, "M"), Patient(70, "M"), Patient(70, "F")]
    codeset = shipped_catalog().codeset("2026-04")
    with GroupingEngine() as grouper:
        agreement = drg_agreement(
            gold, outcomes, patients, grouper, codeset.is_billable, dt.date(2026, 1, 15), 430
        )
    assert agreement == pytest.approx(2 / 3)
    report = score(gold, outcomes, classify, principal_first=True, drg_agreement=agreement)
    assert report.principal_accuracy == pytest.approx(2 / 3)
    assert report.drg_agreement == pytest.approx(2 / 3)


async def test_run_scores_the_codes_after_the_conventions() -> None:
    """Eval scores what apply_conventions bills: Z51.11 first (I.C.2.e.2); E11.9 gone beside
    E11.65 (a contradiction, fixed); R73.9 gone too (integral to diabetes, I.B.5); I50.9 kept
    beside I50.23 (only flagged for a coder's codes: drg.conventions.apply.CODER_FIXES)."""
    rules = conventions_for(shipped_catalog(), "2026-04")
    outcomes, _ = await run(
        _EchoCoder(), ["C18.7 Z51.11", "E11.9 E11.65 R73.9 I50.23 I50.9"], conventions=rules
    )
    assert outcomes == [
        Outcome(("Z51.11", "C18.7"), ok=True),
        Outcome(("E11.65", "I50.23", "I50.9"), ok=True),
    ]
