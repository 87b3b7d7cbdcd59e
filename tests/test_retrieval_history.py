"""worker/coders/retrieval/history.py and the history clauses of mentions.py: a resolved
condition told only as history is coded as its personal history (ICD-10-CM Official Guidelines
section on each case), a chronic one keeps its code."""

import pytest

from drg.codeset.catalog import shipped_catalog
from drg.codeset.memory import MemoryCodeSet
from worker.coders.retrieval.coder import RetrievalCoder
from worker.coders.retrieval.config import RetrievalSettings
from worker.coders.retrieval.history import history_code, personal_history
from worker.coders.retrieval.mentions import split


@pytest.fixture(scope="module", params=["2026-04", "2026-10"])
def codeset(request: pytest.FixtureRequest) -> MemoryCodeSet:
    release: str = request.param
    return shipped_catalog().codeset(release)


@pytest.fixture(scope="module")
def coder() -> RetrievalCoder:
    coder = RetrievalCoder(RetrievalSettings())
    coder.load()
    return coder


@pytest.mark.parametrize(
    ("code", "history"),
    [
        # I.C.2.d: Z85 by site, as the tabular list's "Conditions classifiable to" notes say
        ("C50919", "Z853"),  # breast: Z85.3 "Conditions classifiable to C50.-"
        ("C187", "Z85038"),  # sigmoid colon: Z85.038 "Conditions classifiable to C18"
        ("C3490", "Z85118"),  # lung: Z85.118 "Conditions classifiable to C34"
        ("C61", "Z8546"),  # prostate: under Z85.4 "C51-C63", the leaf titled "of prostate"
        ("C679", "Z8551"),  # bladder: under Z85.5, "of bladder"
        # secondary sites have no history code of their own (C77-C79)
        ("C7800", None),
        ("I639", "Z8673"),  # I.C.9.d.3: cerebral infarction without residual deficits
        ("G459", "Z8673"),  # TIA
        ("I214", "I252"),  # I.C.9.e.4: old myocardial infarction
        ("I2699", "Z86711"),  # pulmonary embolism
        ("J189", "Z8701"),  # pneumonia
        ("N390", "Z87440"),  # urinary tract infection
        ("S82209A", "Z8781"),  # traumatic fracture
        # chronic conditions told as history are still present: their own codes
        ("I10", None),
        ("E119", None),
        ("J449", None),
    ],
)
def test_history_code(codeset: MemoryCodeSet, code: str, history: str | None) -> None:
    assert history_code(code, codeset) == history


def test_only_codes_named_only_in_history_clauses_are_replaced(codeset: MemoryCodeSet) -> None:
    ranked = [(0.9, "J189"), (0.8, "I639"), (0.7, "C50919"), (0.6, "I10")]
    named = {"J189": (False, 0.5), "I639": (True, 0.0), "C50919": (False, 0.0), "I10": (True, 0.0)}
    assert [c for _, c in personal_history(ranked, named, codeset)] == [
        "J189",
        "Z8673",
        "C50919",  # named outside a history clause too: the cancer is current
        "I10",
    ]
    # two conditions with one history code give it once
    twice = personal_history(
        [(0.9, "I639"), (0.8, "G459")], {"I639": (True, 0.0), "G459": (True, 0.0)}, codeset
    )
    assert [c for _, c in twice] == ["Z8673"]
    # a code no clause names, of a condition told only as history ("History of DVT" names
    # I82.409; learned evidence reads I82.90 in "DVT"): the same past condition (I.C.21.c.4)
    learned = personal_history(
        [(0.9, "K8000"), (0.8, "I82409"), (0.7, "I8290")],
        {"K8000": (False, 0.5), "I82409": (True, 0.0)},
        codeset,
    )
    assert [c for _, c in learned] == ["K8000", "Z86718"]
    # ... but not beside no history code of its own kind: a learned I82.90 stays current
    alone = personal_history([(0.9, "I8290")], {}, codeset)
    assert [c for _, c in alone] == ["I8290"]


@pytest.mark.parametrize(
    ("text", "history"),
    [
        ("History of stroke.", [True]),
        ("Past medical history: stroke, hypertension.", [True, True, True]),
        ("PMH: myocardial infarction.", [True, True]),
        # the history of the present illness is this stay's
        ("History of present illness: pneumonia.", [False, False]),
        ("Admitted for pneumonia.", [False]),
        ("Prior stroke.", [True]),
        ("Previous myocardial infarction.", [True]),
        # "prior to" dates something of this stay
        ("Chest pain prior to admission.", [False]),
        # a condition dated months or years back is past; days or weeks back, this illness's
        ("Had a stroke 3 years ago.", [True]),
        ("Myocardial infarction last year.", [True]),
        ("Chest pain that started 3 days ago.", [False]),
        # ... or told over and done with (I.C.2.d: eradicated, no treatment: Z85.-)
        ("Hodgkin lymphoma as a teenager.", [True]),
        ("Breast cancer cured with surgery.", [True]),
    ],
)
def test_history_clauses(text: str, history: list[bool]) -> None:
    assert [m.history for m in split(text).mentions] == history


@pytest.mark.parametrize(
    ("narrative", "present", "absent"),
    [
        (
            "Past medical history: stroke. Admitted for community acquired pneumonia.",
            "Z8673",
            "I639",
        ),
        ("History of colon cancer. Admitted for acute cholecystitis.", "Z85038", "C189"),
        # a condition this stay treats keeps its code, history or not
        ("History of present illness: community acquired pneumonia.", "J189", "Z8701"),
    ],
)
def test_the_coder_codes_history_as_history(
    coder: RetrievalCoder, narrative: str, present: str, absent: str
) -> None:
    codes = coder.code_one(narrative, release="2026-04").codes
    assert present in codes, codes
    assert absent not in codes, codes


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("Final diagnosis: gastroesophageal reflux disease.", [True, True]),
        ("Reason for admission: community acquired pneumonia.", [True, True]),
        # ... and so does the clause that says why the patient is here (Section II), not the
        # comorbidities before it nor what follows its clause
        ("Admitted with chest pain.", [True]),
        ("Diabetic with COPD, admitted for pneumonia; also anemia.", [False, True, False]),
        ("Chest pain.", [False]),
    ],
)
def test_a_heading_or_an_admission_clause_names_the_stays_diagnosis(
    text: str, reason: list[bool]
) -> None:
    assert [m.reason for m in split(text).mentions] == reason


@pytest.mark.parametrize(
    ("narrative", "principal", "absent"),
    [
        # Section II: the condition established after study to be chiefly responsible for the
        # admission; chest pain ruled out for MI was reflux disease (K21.9, spelled
        # "gastro-esophageal" in the tabular list)
        (
            "Admitted with chest pain. Ruled out for myocardial infarction. "
            "Final diagnosis: gastroesophageal reflux disease.",
            "K21",
            "I21",
        ),
        # an abbreviation the tabular list spells out: COPD with (acute) exacerbation, J44.1,
        # is the reason for the stay, not the diabetes of the next sentence
        (
            "Admitted with acute exacerbation of COPD. He also has type 2 diabetes.",
            "J441",
            "",
        ),
    ],
)
def test_the_stated_diagnosis_is_the_principal(
    coder: RetrievalCoder, narrative: str, principal: str, absent: str
) -> None:
    codes = coder.code_one(narrative, release="2026-04").codes
    assert codes[0].startswith(principal), codes
    assert not absent or not any(c.startswith(absent) for c in codes), codes
