"""ICD-10-CM's own rules over a claim's codes (drg/conventions/): what each rule changes, which
ones fix a coder's codes and which only flag, and the claims of the [conventions] issue through
the pipeline's stages and `claimcoder estimate`.

Every expectation cites its rule: ICD-10-CM Official Guidelines for Coding and Reporting
(FY2026) sections, the tabular list's notes (April 2026 release), CMS Table 5 (FY2026,
CMS-1833-F) and the IPPS rates of drg/data/fy2026 for the dollar figures.

Boundary replaced: the coder, by a stand-in that proposes fixed codes (named in each test), so
that the stages after it run on known input.
"""

import json
from collections.abc import Sequence
from typing import Any

import pytest

from drg.codeset.catalog import shipped_catalog
from drg.conventions.apply import CODER_FIXES, Conventions, conventions_for, review_reasons
from drg.conventions.rules import ALL_RULES
from schemas.coded import ClaimCoded, ModelInfo
from schemas.decode import decode_claim
from tests.reference_support import invoke
from worker.coders.base import Coder, CoderResult, CodingRequest
from worker.intake import work_item
from worker.pipeline import ClaimPipeline
from worker.settings import Settings
from worker.telemetry import Telemetry

pytest_plugins = ("tests.reference_fixtures",)


@pytest.fixture(scope="module")
def fy2026() -> Conventions:
    return conventions_for(shipped_catalog(), "2026-04")


def fixed(rules: Conventions, *codes: str) -> tuple[str, ...]:
    """The codes after every rule, fixing."""
    return rules.apply(codes, fix=ALL_RULES).codes


# --- each rule, fixing -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("codes", "expected"),
    [
        # I.A.15: diabetes "with" CKD is presumed linked (Index: Diabetes, with, chronic kidney
        # disease E11.22); N18.- stays for the stage (E11.22 "use additional code")
        (("E11.9", "N18.4"), ("E11.22", "N18.4")),
        # ... first, by N18's "code first" note (sequencing)
        (("N18.30", "E10.9"), ("E10.22", "N18.30")),
        # ... and polyneuropathy (Index: Diabetes, with, polyneuropathy E11.42), which E11.42
        # includes: G62.9 goes; "neuropathy, unspecified" E11.40 says no more than E11.42
        (("E11.9", "G62.9"), ("E11.42",)),
        (("E11.40", "G62.9"), ("E11.42",)),
        # a code that says "with" another complication stays, and the link is added after it:
        # as many E08-E13 codes as the associated conditions need (I.C.4.a), E11.22 beside
        # E11.65 "with hyperglycemia"; E10.10 "with ketoacidosis without coma" says nothing of
        # the kidneys, so E10.22 does not make it redundant (I.A.15 "with")
        (("E11.65", "N18.4"), ("E11.65", "E11.22", "N18.4")),
        (("E10.10", "N18.2"), ("E10.10", "E10.22", "N18.2")),
        # ... unless a code of the link's group is there: diabetic nephropathy E11.21
        (("E11.21", "N18.4"), ("E11.21", "N18.4")),
        # Index: Diabetes, with, hypoglycemia E11.649 (without coma), which includes E16.2;
        # with hyperglycemia E11.65, which includes R73.9
        (("E16.2", "E11.9"), ("E11.649",)),
        # ... with coma E11.641: E15 "Nondiabetic hypoglycemic coma" Excludes1 it (I.A.15),
        # and the coma R40.20 is in its title (I.B.5)
        (("E10.9", "E15"), ("E10.641",)),
        # I.C.9.b: atherosclerotic heart disease with angina is one code, the angina goes
        (("I20.0", "I25.10"), ("I25.110",)),
        (("I25.10", "I20.9", "I20.0"), ("I25.110",)),
        (("I25.119", "I20.9"), ("I25.119",)),
        # Index: Disease, lung, obstructive, with lower respiratory infection J44.0; the
        # infection stays ("code also"); beside J44.1 J44.0 is added
        (("J15.1", "J44.9"), ("J15.1", "J44.0")),
        (("J44.1", "J18.9"), ("J44.1", "J44.0", "J18.9")),
        (("R40.20", "E11.649", "E15"), ("E11.641",)),
        (("E10.9", "R73.9"), ("E10.65",)),
        # Index: Diabetes, with, gastroparesis E11.43; K31.84 stays (coded also)
        (("E11.9", "K31.84"), ("E11.43", "K31.84")),
        # ... beside a diabetes code that says another "with", added after it (I.C.4.a), also
        # beside another of E11.6- (a foot ulcer is no hypoglycemia)
        (("E11.22", "N18.4", "E16.2"), ("E11.22", "E11.649", "N18.4")),
        (("E11.621", "E16.2"), ("E11.621", "E11.649")),
        # Index: Diabetes, with, foot ulcer E11.621 (a heel or other part of the foot, L97.4-,
        # L97.5-), with skin ulcer NEC E11.622 (another lower-limb site, L97.1-L97.3, L97.8-,
        # L97.9-); the L97 code stays for the site ("use additional code"), after its diabetes
        # code by the "code first" note
        (("L97.412", "E11.9"), ("E11.621", "L97.412")),
        (("E10.9", "L97.212"), ("E10.622", "L97.212")),
        (("L97.412", "E11.22", "N18.4"), ("E11.621", "L97.412", "E11.22", "N18.4")),
        # ... a foot ulcer and a calf ulcer: both diabetes codes (I.C.4.a)
        (("E11.9", "L97.412", "L97.212"), ("E11.621", "E11.622", "L97.412", "L97.212")),
        # ... a diabetic foot ulcer coded already gets no second one
        (("E11.621", "L97.412"), ("E11.621", "L97.412")),
    ],
)
def test_diabetes_combines_with_what_the_index_lists_under_it(
    fy2026: Conventions, codes: tuple[str, ...], expected: tuple[str, ...]
) -> None:
    assert fixed(fy2026, *codes) == expected


@pytest.mark.parametrize(
    ("codes", "expected"),
    [
        # I.B.8-I.B.9: acute and chronic with one code for both (Index: Failure, heart,
        # diastolic, acute on chronic I50.33; Failure, respiratory, acute and chronic J96.2-):
        # that code, where the acute one was
        (("I50.31", "I50.32"), ("I50.33",)),
        (("N18.4", "I50.22", "I50.21"), ("N18.4", "I50.23")),
        (("J96.01", "J96.11"), ("J96.21",)),
        (("I50.33", "I50.31", "I50.32"), ("I50.33",)),
        # ... not two acute or two chronic conditions, nor different ones
        (("I50.31", "I50.22"), ("I50.31", "I50.22")),
    ],
)
def test_acute_and_chronic_of_one_condition_is_its_combination_code(
    fy2026: Conventions, codes: tuple[str, ...], expected: tuple[str, ...]
) -> None:
    assert fixed(fy2026, *codes) == expected


@pytest.mark.parametrize(
    ("codes", "expected"),
    [
        # I.C.9.a.1: hypertension with heart failure is I11.0, never I10 beside it
        (("I10", "I50.9"), ("I11.0", "I50.9")),
        # I.C.9.a.2: with CKD stage 5 or ESRD, I12.0, first by N18's "code first" note
        (("N18.6", "I10"), ("I12.0", "N18.6")),
        # I.C.9.a.3: heart failure and CKD stage 1-4: I13.0 (and the principal by its note)
        (("I10", "I50.32", "N18.4"), ("I13.0", "I50.32", "N18.4")),
        # ... and stage 5: I13.2
        (("I50.22", "N18.5", "I10"), ("I13.2", "I50.22", "N18.5")),
    ],
)
def test_hypertension_combines_with_heart_and_kidney_disease(
    fy2026: Conventions, codes: tuple[str, ...], expected: tuple[str, ...]
) -> None:
    assert fixed(fy2026, *codes) == expected


@pytest.mark.parametrize(
    ("codes", "expected"),
    [
        # I.A.15 "with": "without complications" contradicts "with hyperglycemia"
        (("E11.9", "E11.65"), ("E11.65",)),
        (("J45.909", "J45.901"), ("J45.901",)),
        # ... and "without coma" contradicts "with coma" (E10.649 beside E10.641), not a "with"
        # of something else (E10.10 "ketoacidosis without coma" beside E10.65 "with
        # hyperglycemia" both stay)
        (("E10.649", "E10.641"), ("E10.641",)),
        (("E10.10", "E10.65"), ("E10.10", "E10.65")),
        # I.C.9.e: one acute MI an episode; the old MI I25.2 is not the acute one
        (("I21.4", "I21.3", "I25.2", "I21.29"), ("I21.4",)),
        # I.C.14.a.2: one CKD stage, the most severe
        (("N18.2", "N18.31"), ("N18.31",)),
        (("N18.6", "N18.4", "N18.9"), ("N18.6",)),
        # I.C.2.k: C80.1 only when the primary site cannot be determined; a stated primary
        # (C00-C75, C7A) or a lymphoma or leukemia (C81-C96) determines it; a secondary
        # site (C77-C79) does not
        (("C80.1", "C34.90"), ("C34.90",)),
        (("C80.1", "C7A.010", "C78.7"), ("C7A.010", "C78.7")),
        (("C80.1", "C83.30"), ("C83.30",)),
        (("C80.1", "C78.7"), ("C80.1", "C78.7")),
        # I.C.5.b.1: one level of use of a substance: dependence over abuse over use
        (("F10.20", "F10.10"), ("F10.20",)),
        (("F11.10", "F11.90", "F17.210"), ("F11.10", "F17.210")),
        (("F10.239", "F10.10", "F10.90"), ("F10.239",)),
        # ... of each substance on its own: alcohol dependence says nothing of cannabis abuse
        (("F10.20", "F12.10"), ("F10.20", "F12.10")),
        # I.B.3: the unspecified code of a subdivision beside a specific one
        (("I50.9", "I50.23"), ("I50.23",)),
        (("S82.209A", "S82.201A"), ("S82.201A",)),
        # ... but not beside a code of another subdivision (a fibula is no tibia)
        (("S82.209A", "S82.401A"), ("S82.209A", "S82.401A")),
        # I.B.5: symptoms routinely part of the diagnosis
        (("E11.65", "R73.9"), ("E11.65",)),
        (("I21.09", "R07.9"), ("I21.09",)),
        # ... hemorrhage NEC beside a gastrointestinal hemorrhage, diarrhea beside viral
        # gastroenteritis
        (("K92.2", "R58"), ("K92.2",)),
        (("A08.4", "R19.7"), ("A08.4",)),
        # ... ascites beside alcoholic cirrhosis "with ascites" (K70.31)
        (("K70.31", "R18.8"), ("K70.31",)),
        # ... hematemesis beside an ulcer "with hemorrhage" (K25.0)
        (("K92.0", "K25.0"), ("K25.0",)),
        # ... coma beside a diabetes code "with coma" (E10.641, E11.11)
        (("E10.641", "R40.20"), ("E10.641",)),
        (("E11.11", "R40.20"), ("E11.11",)),
    ],
)
def test_redundant_contradictory_and_integral_codes_go(
    fy2026: Conventions, codes: tuple[str, ...], expected: tuple[str, ...]
) -> None:
    assert fixed(fy2026, *codes) == expected


def test_an_excludes1_pair_keeps_the_first_code(fy2026: Conventions) -> None:
    """I.A.12.a; tabular list E11 "Excludes1: type 1 diabetes mellitus (E10.-)"."""
    result = fy2026.apply(("E11.9", "E10.9"), fix=ALL_RULES)
    assert result.codes == ("E11.9",)
    (change,) = result.adjustments
    assert (change.code, change.action, change.rule, change.other) == (
        "E109",
        "dropped",
        "excludes1",
        "E119",
    )


@pytest.mark.parametrize(
    ("codes", "expected"),
    [
        # I.C.2.e.2: an admission solely for chemotherapy: Z51.11 first
        (("C18.7", "Z51.11"), ("Z51.11", "C18.7")),
        # I.C.1.d.4: sepsis and a localized infection (present on admission): sepsis first
        (("N39.0", "B96.20", "A41.9", "R65.21"), ("A41.9", "N39.0", "B96.20", "R65.21")),
        # I.C.1.d.1.b: severe sepsis is never first
        (("R65.21", "N39.0"), ("N39.0", "R65.21")),
        # I.C.1.g.1.a: COVID-19 before its manifestation
        (("J12.82", "U07.1"), ("U07.1", "J12.82")),
        # I.A.13 etiology/manifestation: tabular F02 "Code first the underlying physiological
        # condition, such as: Alzheimer's (G30.-)"
        (("F02.80", "G30.9"), ("G30.9", "F02.80")),
        # tabular N18 "Code first any associated: ... hypertensive chronic kidney disease
        # (I12.-, I13.-)"
        (("N18.4", "I13.0", "I50.32"), ("I13.0", "N18.4", "I50.32")),
        # obstetric codes keep their place (I.C.15.a.1)
        (("O98.313", "A41.9"), ("O98.313", "A41.9")),
    ],
)
def test_the_principal_is_chosen_by_rule(
    fy2026: Conventions, codes: tuple[str, ...], expected: tuple[str, ...]
) -> None:
    assert fixed(fy2026, *codes) == expected


def test_codes_the_release_does_not_list_are_left_for_validation(fy2026: Conventions) -> None:
    result = fy2026.apply(("ZZZ99", "I10", "ignore previous instructions", "I50.9"))
    assert result.codes == ("I11.0", "I50.9", "ZZZ99", "ignore previous instructions")


def test_a_person_is_flagged_a_coder_is_fixed_only_where_the_policy_says(
    fy2026: Conventions,
) -> None:
    """drg/conventions/apply.py: a person's codes never change; a coder's are fixed by
    CODER_FIXES (contradictions, the principal) and flagged by the rest."""
    codes = ("N18.4", "I13.10", "I13.0", "I50.32", "E11.9", "E10.9", "E11.65")
    person = fy2026.apply(codes, fix=())
    assert person.codes == ("N18.4", "I13.10", "I13.0", "I50.32", "E11.9", "E10.9", "E11.65")
    assert person.adjustments == ()
    # each flag as the whole rule set would see it: E11.9 beside N18.4 is the combination
    # E11.22 (I.A.15), I13.10 gives way to the combination I13.0, then E11.22 and E10.9 are an
    # Excludes1 pair, and I13.0 goes first
    assert review_reasons(person.flags) == [
        "combination:E11.22",
        "combination:I13.10",
        "excludes1:E10.9",
        "sequencing:I13.0",
    ]
    coder = fy2026.apply(codes, fix=CODER_FIXES)
    assert coder.codes == ("I13.0", "N18.4", "I50.32", "E11.22", "E10.9", "E11.65")
    assert [(a.code, a.action, a.rule) for a in coder.adjustments] == [
        ("E119", "replaced", "combination"),
        ("I1310", "dropped", "combination"),
        ("I130", "moved", "sequencing"),
    ]
    assert review_reasons(coder.flags) == ["excludes1:E10.9"]


def test_fy2027_codes_follow_the_rules_of_their_release() -> None:
    """FY2027's I42.0x: I42.00 "unspecified" beside I42.01 goes (I.B.3), in 2026-10 only."""
    fy2027 = conventions_for(shipped_catalog(), "2026-10")
    assert fy2027.apply(("I42.00", "I42.01"), fix=ALL_RULES).codes == ("I42.01",)


# --- the claims, through the pipeline's stages and claimcoder estimate ---------------


class FixedCoder(Coder):
    """Stand-in coder (the boundary replaced here): proposes the given codes for every claim."""

    def __init__(self, codes: Sequence[str]) -> None:
        self.codes = tuple(codes)

    @property
    def info(self) -> ModelInfo:
        return ModelInfo(engine="manual", model="fixed")

    async def code_batch(self, requests: Sequence[CodingRequest]) -> list[CoderResult]:
        return [CoderResult(r.claim_id, codes=self.codes) for r in requests]


async def code(settings: Settings, codes: Sequence[str], **claim: Any) -> ClaimCoded:
    """One claim, discharged 2026-01-15 (FY2026, v43.0, national wage index), through every
    stage with the stand-in coder."""
    pipeline = ClaimPipeline.from_settings(settings, record=False)
    pipeline._coder_factory = lambda catalog: FixedCoder(codes)
    event = {
        "claim_id": "c",
        "narrative": "stand-in",
        "patient": {"age": claim.get("age", 70), "sex": claim.get("sex", "M")},
        "discharge_date": "2026-01-15",
    }
    value = json.dumps(event).encode()
    try:
        await pipeline.start()
        item = work_item(decode_claim(value), value, pipeline.assessor.registry)
        await pipeline.run([item], Telemetry("t").batch([]))
    finally:
        await pipeline.stop()
    assert item.output is not None
    return ClaimCoded.model_validate(item.output)


@pytest.mark.parametrize(
    ("proposed", "billed", "drg", "total"),
    [
        # Z51.11 first: DRG 847 "chemotherapy without acute leukemia as secondary diagnosis with
        # CC" (C18.7 is the CC), weight 1.3082 (FY2026 Table 5); national wage index, so the
        # 62% pair: (4186.62 + 2565.99) x 1.3082 = 8833.76 + 524.15 x 1.3082 = 685.69
        (("C18.7", "Z51.11"), ("Z51.11", "C18.7"), "847", "9519.45"),
        # A41.9 first, with R65.21: DRG 871 septicemia without MV > 96 hours with MCC. B99.9 is
        # the coder's to avoid: no rule of the classification drops it
        (
            ("N39.0", "B96.20", "A41.9", "B99.9", "R65.21"),
            ("A41.9", "N39.0", "B96.20", "B99.9", "R65.21"),
            "871",
            None,
        ),
        # I13.0 first, then I50.32 and N18.4: DRG 292 heart failure and shock with CC, weight
        # 0.8490: (4186.62 + 2565.99) x 0.8490 = 5732.97 + 524.15 x 0.8490 = 445.00
        (("I13.10", "I13.0", "I50.32", "N18.4"), ("I13.0", "I50.32", "N18.4"), "292", "6177.97"),
        (("I21.4", "I21.3", "I25.2", "I21.29"), ("I21.4",), None, None),
        (("N18.2", "N18.31"), ("N18.31",), None, None),
    ],
)
async def test_a_coders_codes_are_fixed_and_every_change_reported(
    reference: Settings,
    proposed: tuple[str, ...],
    billed: tuple[str, ...],
    drg: str | None,
    total: str | None,
) -> None:
    event = await code(reference, proposed)
    assert tuple(c.code for c in event.codes) == billed
    if drg is not None:
        assert event.drg is not None
        assert event.drg.code == drg
    if total is not None:
        assert event.estimate is not None
        assert str(event.estimate.total) == total
    dropped = {a.code for a in event.adjustments if a.action == "dropped"}
    assert dropped == set(proposed) - set(billed)
    assert {r.raw for r in event.rejected_codes if ":" in r.reason} == dropped


async def test_a_contradiction_and_an_integral_symptom_leave_the_diagnosis_alone(
    reference: Settings,
) -> None:
    """E11.65, E11.9, R73.9 -> E11.65: E11.9 ("without complications") beside R73.9 is the
    combination E11.65 (Index: Diabetes, with, hyperglycemia; I.A.15), which is coded
    already, so both go as its parts; E11.9 and E11.65 alone contradict each other (I.A.15,
    "with"), and R73.9 beside E11.65 is part of it (I.B.5)."""
    event = await code(reference, ("E11.65", "E11.9", "R73.9"))
    assert [c.code for c in event.codes] == ["E11.65"]
    assert [r.model_dump() for r in event.rejected_codes] == [
        {"raw": "E11.9", "reason": "combination:E11.65"},
        {"raw": "R73.9", "reason": "combination:E11.65"},
    ]
    assert [(a.code, a.action, a.rule, a.guideline) for a in event.adjustments] == [
        ("E11.9", "dropped", "combination", "I.A.15"),
        ("R73.9", "dropped", "combination", "I.A.15"),
    ]
    assert not [r for r in event.review_reasons if r.startswith("symptom:")]


async def test_what_a_coder_is_not_fixed_for_is_flagged(reference: Settings) -> None:
    """I50.9 beside I50.23 (I.B.3, an unspecified code beside a specific one) and E10.9 beside
    E11.9 (an Excludes1 pair, I.A.12.a) are flagged for a person, not fixed (CODER_FIXES)."""
    event = await code(reference, ("I50.23", "I50.9", "E11.9", "E10.9"))
    assert [c.code for c in event.codes] == ["I50.23", "I50.9", "E11.9", "E10.9"]
    assert {"redundant:I50.9", "excludes1:E10.9"} <= set(event.review_reasons)
    assert event.status == "estimated"


@pytest.mark.parametrize(
    ("codes", "reason"),
    [
        (("E11.9", "E10.9"), "excludes1:E10.9"),  # E11 Excludes1 E10.- (I.A.12.a)
        (("N18.4", "I13.0", "I50.32"), "sequencing:I13.0"),  # N18 code first I12/I13 (I.A.13)
    ],
)
def test_estimate_flags_a_persons_codes_and_never_changes_them(
    reference: Settings, codes: tuple[str, ...], reason: str
) -> None:
    pdx, *sdx = codes
    result = invoke(
        reference,
        *("estimate", "--pdx", pdx, *(a for c in sdx for a in ("--sdx", c))),
        *("--age", "70", "--sex", "M", "--discharge-date", "2026-01-15", "--json"),
    )
    fields = json.loads(result.stdout)
    assert reason in fields["review_reasons"]
    assert [c["code"] for c in fields["codes"]] == list(codes)  # as given
    assert fields["status"] == "estimated"
