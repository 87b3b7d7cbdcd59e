"""The embedded retrieval coder on narratives with known answers, negation first.

One coder for the module: the index (the FY2026 tabular list) takes a few seconds to build and is
shared by every coder of the process.
"""

import datetime as dt
import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from drg.codeset.catalog import shipped_catalog
from drg.codeset.normalize import dotted
from drg.registry import ReleasePeriod
from schemas.coded import ModelInfo
from tests.pipeline_support import NARRATIVES
from tests.synthetic_narratives import synthetic_narratives
from worker.cli import app
from worker.coders.base import CoderResult, CodingRequest
from worker.coders.exceptions import CoderError, CoderUnavailableError
from worker.coders.retrieval.coder import Coded, RetrievalCoder
from worker.coders.retrieval.config import RetrievalSettings
from worker.coders.retrieval.context import excluded
from worker.coders.retrieval.evidence import load
from worker.coders.retrieval.mentions import Narrative, split
from worker.coders.retrieval.text import in_clinical_words, words


@pytest.fixture(scope="module")
def coder() -> RetrievalCoder:
    coder = RetrievalCoder(RetrievalSettings())
    coder.load()
    return coder


def codes(coder: RetrievalCoder, narrative: str, release: str = "2026-04") -> tuple[str, ...]:
    """The codes of a narrative discharged in FY2026 (unless ``release`` says otherwise)."""
    return coder.code_one(narrative, release=release).codes


@pytest.mark.parametrize(
    ("narrative", "expected"),
    [
        ("Patient with type 2 diabetes mellitus and essential hypertension.", ("E119", "I10")),
        ("Hypothyroidism and obesity.", ("E039", "E669")),
        ("Atrial fibrillation treated with anticoagulants.", ("I4891",)),
        ("Acute heart failure.", ("I509",)),
        # principal first: the pneumonia, not the more probable fever
        ("Fever. Diagnosed with pneumonia.", ("J189", "R509")),
    ],
)
def test_known_answers(coder: RetrievalCoder, narrative: str, expected: tuple[str, ...]) -> None:
    assert codes(coder, narrative) == expected


@pytest.mark.parametrize(
    ("narrative", "expected"),
    [
        ("No history of diabetes.", ()),
        ("No history of diabetes. Admitted with community acquired pneumonia.", ("J189",)),
        ("The patient denies diabetes, hypertension or asthma.", ()),
        ("Family history of diabetes mellitus. Mother had hypertension.", ()),
        ("Pneumonia was ruled out. Atrial fibrillation.", ("I4891",)),
        ("He has hypertension but no diabetes.", ("I10",)),
        ("Hypertension, without diabetes.", ("I10",)),
        # learned co-occurrence (diabetics often have I10) must not bring back a negated code
        ("Type 2 diabetes. No hypertension.", ("E119",)),
        ("Asthma. No chronic obstructive pulmonary disease.", ("J45909",)),
    ],
)
def test_negated_ruled_out_and_family_history_are_not_coded(
    coder: RetrievalCoder, narrative: str, expected: tuple[str, ...]
) -> None:
    assert codes(coder, narrative) == expected


@pytest.mark.parametrize(
    ("narrative", "category"),
    [
        # (S82.209A) fracture of the shaft of the tibia, side not named, initial encounter
        ("I was cycling and a car ran over my leg. My tibia is fractured.", "S82"),
        # (S52.501A) fracture of the lower end of the right radius
        (
            "I slipped on ice and broke my wrist; the X-ray showed a distal radius fracture of "
            "the right arm.",
            "S52",
        ),
        ("I fell down the stairs and broke my femur.", "S72"),
    ],
)
def test_lay_fracture_narratives_get_an_injury_code(
    coder: RetrievalCoder, narrative: str, category: str
) -> None:
    found = codes(coder, narrative)
    assert found, "a plainly named fracture must not go uncoded"
    principal = found[0]
    assert principal.startswith(category)
    assert principal[0] not in "VWXY"  # an external cause is never the principal
    assert principal.endswith("A")  # initial encounter unless the narrative says otherwise
    assert shipped_catalog().codeset("2026-04").is_billable(principal)
    # the fallback that codes them must not code what is negated
    assert "E119" not in codes(coder, "No history of diabetes. " + narrative)


def test_negation_scopes_end_at_a_termination_word() -> None:
    tokens = words("No fever or cough, but severe headache")
    assert [t for t, dropped in zip(tokens, excluded(tokens), strict=True) if dropped] == [
        "no",
        "fever",
        "or",
        "cough",
        ",",
    ]
    assert excluded(words("no history of diabetes")) == [True, True, True, True]
    # a pseudo-trigger is no negation
    assert excluded(words("gram negative sepsis")) == [False, False, False]


def test_a_negative_test_result_negates_the_test_not_the_condition_before_it() -> None:
    # "admitted with pneumonia, cultures negative" is J18.9 (Index: Pneumonia, unspecified
    # organism): a negative culture rules out no pneumonia; what the test tested, in its own
    # clause, is negated ("influenza test negative")
    assert _dropped("admitted with pneumonia, cultures negative") == ["cultures", "negative"]
    assert _dropped("cellulitis; blood cultures were negative") == [
        "blood",
        "cultures",
        "were",
        "negative",
    ]
    assert _dropped("influenza test negative") == ["influenza", "test", "negative"]
    assert _dropped("fever, influenza negative") == ["fever", ",", "influenza", "negative"]


def test_no_personal_history_code_beside_the_current_condition(coder: RetrievalCoder) -> None:
    # I.C.9.d.3: Z86.73 is for a cerebral infarction no longer present; learned evidence reads
    # it in "stroke", but this stroke is current (I63.412: embolism of the left MCA)
    coded = codes(
        coder,
        "MRI shows acute infarct in the left MCA territory. Acute ischemic stroke, cardioembolic "
        "from atrial fibrillation.",
    )
    assert coded[0] == "I63412"
    assert "Z8673" not in coded


def test_one_heart_failure_is_coded_once_with_its_acuity(coder: RetrievalCoder) -> None:
    # Index: Failure, heart, systolic, acute on chronic I50.23: not also the chronic I50.22 the
    # first clause names, nor the unspecified I50.9 (one heart failure; I.A.9.b)
    coded = codes(coder, "Chronic systolic CHF, now acutely decompensated: acute on chronic HFrEF.")
    assert "I5023" in coded
    assert not {"I5022", "I5021", "I509"} & set(coded)


def _dropped(sentence: str) -> list[str]:
    tokens = words(sentence)
    return [t for t, dropped in zip(tokens, excluded(tokens), strict=True) if dropped]


@pytest.mark.parametrize(
    ("sentence", "condition"),
    [
        ("His father passed away from lung cancer.", "lung cancer"),
        ("His dad died of a myocardial infarction at 60.", "myocardial infarction"),
        ("Father deceased from a stroke.", "stroke"),
        ("Her sister was diagnosed with lupus.", "lupus"),
        ("Father's history of stroke.", "stroke"),
        ("His mother's breast cancer was treated with surgery.", "breast cancer"),
        ("Mom had breast cancer.", "breast cancer"),
        ("Brother with asthma.", "asthma"),
        ("FH: colon cancer.", "colon cancer"),
        ("Family history significant for diabetes.", "diabetes"),
        ("Diabetes in his mother.", "diabetes"),
        # a word between the relative and the verb, a list's label, an aside
        ("My sister was just diagnosed with breast cancer.", "breast cancer"),
        ("Her mother also has lupus.", "lupus"),
        ("Brother got lymphoma last year.", "lymphoma"),
        ("Father developed colon cancer at 50.", "colon cancer"),
        ("His twin brother recently underwent surgery for a brain tumor.", "brain tumor"),
        ("Sister: breast cancer.", "breast cancer"),
        ("Grandmother (breast cancer), father (MI).", "breast cancer mi"),
        ("Mother, deceased, had breast cancer.", "breast cancer"),
    ],
)
def test_a_relatives_condition_is_not_the_patients(sentence: str, condition: str) -> None:
    # ConText experiencer (Harkema 2009): a condition of a relative is not the patient's; family
    # history is coded Z80-Z84 only from the words "family history", never from a relative's disease
    dropped = _dropped(sentence)
    assert all(word in dropped for word in condition.split())


@pytest.mark.parametrize(
    ("sentence", "condition"),
    [
        ("His wife brought him in because of chest pain.", "chest pain"),
        ("Accompanied by his mother, the child presents with fever.", "fever"),
        ("The child had febrile seizures.", "febrile seizures"),  # "the child" is the patient
        ("Patient with FH and angina.", "angina"),  # FH: familial hypercholesterolaemia
    ],
)
def test_a_named_relative_alone_does_not_move_the_patients_condition(
    sentence: str, condition: str
) -> None:
    # ConText experiencer (Harkema 2009): only a relative's own clause is someone else's
    assert not set(condition.split()) & set(_dropped(sentence))


@pytest.mark.parametrize(
    ("sentence", "condition"),
    [
        ("Return to the ER if chest pain recurs.", "chest pain"),
        ("If fever develops, call the clinic.", "fever"),
        ("Should the patient develop a rash, stop the medication.", "rash"),
        ("Come back for any bleeding.", "bleeding"),
    ],
)
def test_a_hypothetical_condition_is_not_coded(sentence: str, condition: str) -> None:
    # ConText hypothetical (Harkema 2009): a condition to watch for has not happened
    dropped = _dropped(sentence)
    assert all(word in dropped for word in condition.split())


@pytest.mark.parametrize(
    ("sentence", "condition"),
    [
        ("Probable pneumonia.", "pneumonia"),
        ("Suspected pulmonary embolism.", "pulmonary embolism"),
        ("Rule out sepsis.", "sepsis"),
        ("R/O appendicitis.", "appendicitis"),
        ("Pneumonia cannot be ruled out.", "pneumonia"),
    ],
)
def test_an_uncertain_diagnosis_is_coded_as_if_established(sentence: str, condition: str) -> None:
    # Official Guidelines II.H: "probable", "suspected", "rule out" still open at discharge are
    # coded as if established (inpatient)
    assert not set(condition.split()) & set(_dropped(sentence))


@pytest.mark.parametrize(
    ("sentence", "condition"),
    [
        ("Community-acquired pneumonia, organism not identified.", "pneumonia"),
        ("Pneumonia, organism unknown.", "pneumonia"),
        ("Sepsis, source not identified.", "sepsis"),
        ("Urinary tract infection, organism was not isolated.", "urinary tract infection"),
        ("Diabetes mellitus, type not specified.", "diabetes"),
    ],
)
def test_what_the_record_does_not_know_is_no_negation(sentence: str, condition: str) -> None:
    # I.A.9.b: an unspecified code is for a record that says no more ("pneumonia, organism not
    # identified" is J18.9); the qualifier negates the detail, never the condition
    assert not set(condition.split()) & set(_dropped(sentence))


@pytest.mark.parametrize(
    ("narrative", "expected"),
    [
        # Index: Diverticulitis K57.92, Diverticulosis K57.90 (of intestine, part unspecified,
        # a site no narrative says); of the sigmoid colon, the large intestine K57.32
        ("Diverticulitis.", ("K5792",)),
        ("Diverticulosis.", ("K5790",)),
        ("Diverticulitis of the sigmoid colon.", ("K5732",)),
        # Index: Disease, coronary (artery) I25.10; with unstable angina I25.110 (I.C.9.b)
        ("CAD.", ("I2510",)),
        ("Coronary artery disease with unstable angina.", ("I25110",)),
        # Index: Failure, heart, with reduced ejection fraction - see Failure, heart, systolic;
        # with preserved ejection fraction - see Failure, heart, diastolic
        ("HFrEF.", ("I5020",)),
        ("HFpEF.", ("I5030",)),
        # Index: Hematoma, subdural (nontraumatic) I62.00
        ("Spontaneous subdural hematoma.", ("I6200",)),
        # "with bleeding" said of a lesion is its "with hemorrhage" code (K25.0)
        ("Acute gastric ulcer with bleeding.", ("K250",)),
        # "R" and "L" before a body site are its side: L03.115 cellulitis of right lower limb
        ("R calf cellulitis.", ("L03115",)),
        # a title's "left tibia and fibula" is named by either (M86.062; Index: Osteomyelitis,
        # acute, hematogenous, tibia)
        ("Acute hematogenous osteomyelitis of the left tibia.", ("M86062",)),
        # a lobe told alone is the lung's (Index: Neoplasm, lung, upper lobe C34.1-)
        ("Small cell carcinoma of the right upper lobe.", ("C3411",)),
        # AV is atrioventricular (I44.1 "Atrioventricular block, second degree")
        ("Mobitz II second-degree AV block.", ("I441",)),
        # C. diff colitis is an enterocolitis due to Clostridium difficile (A04.7-); "not
        # specified as recurrent" asks nothing of a narrative that says no more (A04.72)
        ("Recurrent C. diff enterocolitis.", ("A0471",)),
        ("Clostridium difficile enterocolitis.", ("A0472",)),
        # Graves' disease with thyroid storm (Index: Disease, Graves' E05.00; Thyrotoxicosis,
        # with goiter, diffuse, with thyroid storm E05.01), no R69 "illness" for "disease"
        ("Graves' disease with thyroid storm.", ("E0501",)),
        # "CVA tenderness" is the costovertebral angle's, a sign of the kidney: no stroke (I63.9)
        ("Acute pyelonephritis; UA with pyuria, R CVA tenderness.", ("N10",)),
        # "L" before a ureter is its side; ureteral is the ureter's (N20.1 Calculus of ureter)
        ("Final dx: L ureteral calculus.", ("N201",)),
        # a cardioembolic infarct is one due to embolism, of the artery told (I63.412)
        ("Admitted with an acute cardioembolic infarct in the L MCA territory.", ("I63412",)),
        # Ludwig's angina (K12.2) is no angina pectoris (CodiEsp dev S1130-05582014000400006-2)
        ("Definitive diagnosis: Ludwig's angina complicated with congenital syphilis.", ()),
    ],
)
def test_index_terms_a_code_title_does_not_say(
    coder: RetrievalCoder, narrative: str, expected: tuple[str, ...]
) -> None:
    got = codes(coder, narrative)
    if expected:
        assert got == expected  # and nothing the narrative does not say
    else:
        assert not any(c.startswith("I20") for c in got)


@pytest.mark.parametrize(
    ("narrative", "principal"),
    [
        # terms of the Alphabetic Index that no tabular text says (data/index_terms.tsv)
        ("Admitted with Ludwig's angina.", "K122"),  # Index: Angina, Ludwig's
        ("Diagnosis: Boerhaave syndrome after forceful retching.", "K223"),  # Boerhaave's
        ("Mallory-Weiss tear at the gastroesophageal junction.", "K226"),  # Mallory-Weiss
        ("Atypical chest pain.", "R0789"),  # Index: Pain, chest, atypical
        ("Zenker's diverticulum.", "K225"),  # Diverticulum, esophagus, pharyngoesophageal
        ("Klatskin tumor.", "C221"),  # Index: Klatskin's tumor
        ("Pancoast tumor of the right lung.", "C3411"),  # Pancoast's tumor C34.1-, right
        # an eponym without its possessive: I24.1 "Dressler's syndrome"
        ("Dressler syndrome.", "I241"),
        # without its diacritics: M35.0- "Sjögren syndrome", M35.2 "Behçet's disease"
        ("Sjogren syndrome.", "M3500"),
        ("Behcet's disease.", "M352"),
        # two persons' names alone (Index: Guillain-Barre disease or syndrome G61.0)
        ("The neurologist said it was Guillain-Barre.", "G610"),
        # a title's bracketed eponym: M94.0 "Chondrocostal junction syndrome [Tietze]"
        ("Tietze syndrome.", "M940"),
        ("Baker's cyst of the right knee.", "M7121"),  # "... popliteal space [Baker]"
        ("Kawasaki disease.", "M303"),  # "Mucocutaneous lymph node syndrome [Kawasaki]"
        ("Buerger's disease.", "I731"),  # "Thromboangiitis obliterans [Buerger's disease]"
        ("De Quervain tenosynovitis.", "M654"),  # "... tenosynovitis [de Quervain]"
        # a one-word aside inside a term is no clause of its own (I51.81 inclusion term
        # "Takotsubo cardiomyopathy")
        ("Diagnosis: takotsubo (stress) cardiomyopathy.", "I5181"),
        # a short narrative that tells one condition in one word means it
        ("Headache.", "R519"),
        ("Patient complains of migraine.", "G43909"),
    ],
)
def test_the_index_names_conditions_by_their_eponyms_and_index_terms(
    coder: RetrievalCoder, narrative: str, principal: str
) -> None:
    assert codes(coder, narrative, release="2026-10")[:1] == (principal,)


@pytest.mark.parametrize(
    ("narrative", "kept", "gone"),
    [
        # Section II.H: an uncertain diagnosis is coded as if established only when it is
        # still uncertain at discharge; one the narrative rules out by name is not
        (
            "Sepsis was suspected in the ED; sepsis was ruled out. Klebsiella pneumonia.",
            "J150",
            "A41",
        ),
        ("Sepsis was suspected but ruled out. Urinary tract infection.", "N390", "A41"),
        ("Possible pneumonia, which was subsequently ruled out. Acute bronchitis.", "J209", "J18"),
        # ... and what is ruled out is only what it names
        ("Suspected pneumonia; PE ruled out.", "J189", "I26"),
        # a told-after uncertainty is settled by the final diagnosis too
        (
            "Pulmonary embolism suspected and heparin started. Final diagnosis: pleuritic chest "
            "pain.",
            "R0781",
            "I26",
        ),
        # the DTs are delirium tremens (Index: Delirium, tremens (alcohol-induced) F10.231)
        ("Heavy drinker admitted with the DTs from alcohol withdrawal.", "F10231", "F1093"),
    ],
)
def test_a_diagnosis_ruled_out_by_name_is_not_coded(
    coder: RetrievalCoder, narrative: str, kept: str, gone: str
) -> None:
    got = codes(coder, narrative, release="2026-10")
    assert kept in got
    assert not any(c.startswith(gone) for c in got)


@pytest.mark.parametrize(
    ("narrative", "principal"),
    [
        # Section II: the condition established after study is the principal; melena (K92.1)
        # is a sign outside chapter 18 (I.C.18), as chapter 18's symptoms are
        (
            "Type 2 diabetes and atrial fibrillation, admitted for melena and a hemoglobin drop. "
            "EGD showed a bleeding duodenal ulcer, clipped.",
            "K264",
        ),
        ("Admitted for melena.", "K921"),
        # ... not explained by a comorbidity told before it (Section II.A: the sign itself)
        ("Chronic atrial fibrillation on warfarin, admitted for GI bleed.", "K922"),
        # ... and pain in a limb (M79.6-)
        (
            "Admitted for right leg pain. Ultrasound showed an acute deep vein thrombosis of "
            "the right femoral vein.",
            "I82411",
        ),
    ],
)
def test_a_signs_work_up_diagnosis_is_the_principal_outside_chapter_18(
    coder: RetrievalCoder, narrative: str, principal: str
) -> None:
    assert codes(coder, narrative, release="2026-10")[:1] == (principal,)


def test_an_index_term_file_row_without_its_columns_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Boundary: the packaged file's text (importlib.resources), replaced by a broken row."""
    from worker.coders.retrieval import index

    class Broken:
        def joinpath(self, *_: str) -> "Broken":
            return self

        def read_text(self, encoding: str) -> str:
            return "# comment\nK12.2\tLudwig's angina\tAngina, Ludwig's\nK22.3\tBoerhaave\n"

    index.index_terms.cache_clear()
    monkeypatch.setattr(
        "worker.coders.retrieval.index.resources", SimpleNamespace(files=lambda _: Broken())
    )
    try:
        with pytest.raises(ValueError, match="line 3"):
            index.index_terms()
    finally:
        monkeypatch.undo()
        index.index_terms.cache_clear()
    assert ("K122", "Ludwig's angina") in index.index_terms()


def test_a_symptoms_work_up_diagnosis_is_told_after_it_else_before_it(
    coder: RetrievalCoder,
) -> None:
    # Section II: the condition established after study is principal; a diagnosis told after
    # the symptom's clause (the work-up's) before one told before it in the same sentence
    work_up = (
        "Type 1 diabetic since age 9, admitted for intractable vomiting; gastric emptying "
        "study confirmed diabetic gastroparesis."
    )
    assert codes(coder, work_up)[0] == "E1043"
    # ... and with nothing told after it, the diagnosis the pain is of, not R52 (Section II)
    pain = (
        "81F: atherosclerosis of the native arteries of the left leg with a non-healing ulcer "
        "of the left heel, fat layer exposed; admitted for pain control."
    )
    assert codes(coder, pain)[0] == "I70244"


@pytest.mark.parametrize(
    ("narrative", "principal"),
    [
        # the reason for the stay is named although texts of its site's words (C34.31 "...
        # right lower lobe, bronchus or lung") crowd the whole clause's best hits (Section II)
        (
            "Admitted for community-acquired pneumonia of the RLL, organism not identified. He "
            "also has COPD, stable and not in exacerbation.",
            "J189",
        ),
        # in one sentence, the condition named first (Section II: the condition chiefly
        # responsible, told first in a list of diagnoses)
        (
            "Impression: immune thrombocytopenic purpura, plus an incidental iron deficiency "
            "anemia.",
            "D693",
        ),
        # a symptom told as the reason: the diagnosis the work-up named, not a code only learned
        # evidence suggests (Section II)
        (
            "Admitted with progressive dyspnea; CT shows pulmonary fibrosis, which pulmonology "
            "attributes to her COVID-19 infection last year (post-COVID condition).",
            "J8410",
        ),
    ],
)
def test_the_principal_is_the_condition_named_for_the_stay(
    coder: RetrievalCoder, narrative: str, principal: str
) -> None:
    assert codes(coder, narrative)[0] == principal


def test_fy2027_familial_dilated_cardiomyopathy_is_familial_genetic(coder: RetrievalCoder) -> None:
    # FY2027 I42.01 "Familial-genetic dilated cardiomyopathy" (I42.0 became a header)
    narrative = "Dx: familial dilated cardiomyopathy (pathogenic LMNA variant)."
    assert codes(coder, narrative, release="2026-10") == ("I4201",)


def test_hemorrhage_nec_goes_beside_a_code_that_says_with_bleeding(coder: RetrievalCoder) -> None:
    # I.A.9.a: R58 "Hemorrhage, not elsewhere classified" is for what no code classifies;
    # K57.91 "Diverticulosis of intestine, part unspecified, without perforation or abscess with
    # bleeding" classifies this one
    assert codes(coder, "Diverticulosis with bleeding.") == ("K5791",)


def test_a_lay_phrase_whose_words_mean_nothing_alone_is_read_as_its_clinical_words() -> None:
    # "asthma attack" is no "attack" (G45.9 transient ischemic attack); Index: Attack, panic F41.0
    assert in_clinical_words(words("an asthma attack at night")) == ["an", "asthma", "at", "night"]
    assert in_clinical_words(words("panic attack")) == ["panic", "disorder"]
    assert in_clinical_words(words("heart failure")) == ["heart", "failure"]


def test_a_condition_not_documented_is_not_coded() -> None:
    # Section I.A.19 / III: a coder codes what the record documents
    assert "cystitis" in _dropped("Cystitis not documented.")


def test_what_a_work_up_set_out_to_rule_out_or_ruled_out_is_not_coded() -> None:
    # NegEx (Chapman 2001): "ruled out" closes the question; "to rule out" is a test's aim
    assert "embolism" in _dropped("A CT scan was done to rule out pulmonary embolism.")
    assert "infarction" in _dropped("Myocardial infarction was ruled out.")


def test_each_condition_of_a_list_is_coded(coder: RetrievalCoder) -> None:
    # "and" ends a mention: each listed condition is looked up on its own and coded (Section
    # III: every condition of the stay that affects its care), principal first by order
    assert codes(coder, "Urinary tract infection and acute kidney injury.") == ("N390", "N179")


def test_a_code_text_with_alternatives_is_named_by_either(coder: RetrievalCoder) -> None:
    # C34.11 "Malignant neoplasm of upper lobe, right bronchus or lung": the lung alone names
    # it; the stay is for radiation therapy (I.C.2.e.2: Z51.0, first by sequencing)
    narrative = (
        "Admitted for radiation therapy. Malignant neoplasm of the upper lobe of the right lung."
    )
    assert set(codes(coder, narrative)) == {"C3411", "Z510"}


def test_an_abbreviation_supports_no_catch_all_and_no_unspecified_sibling(
    coder: RetrievalCoder,
) -> None:
    # "COPD" is J44's own words: it supports neither R69 "Illness, unspecified" ([retrieval]
    # issue: no code without a mention) nor J44.9 "unspecified" beside the J44.1 the sentence
    # names (I.A.9.b: unspecified only when the record says no more)
    assert codes(coder, "COPD with acute exacerbation.") == ("J441",)


def test_a_narrative_splits_into_kept_and_negated_mentions() -> None:
    narrative = split("Fever and cough; no diabetes.\nPneumonia was ruled out.")
    # "and" ends a mention: a list of conditions is one mention a condition
    assert [m.stems for m in narrative.mentions] == [("fever",), ("cough",)]
    # "was" opens a clause: the ruled-out pneumonia and the words that rule it out are two runs
    assert [m.stems for m in narrative.negated] == [("diabet",), ("pneumonia",), ("rule", "out")]


def test_seventh_character_defaults_to_the_initial_encounter(coder: RetrievalCoder) -> None:
    index = coder.scorer("2026-04").index
    assert index.resolve("S72") == "S7290XA"  # fracture of femur, unspecified, initial
    assert index.resolve("S72", ("D",)) == "S7290XD"
    assert index.resolve("E11") == "E119"


def test_a_named_side_picks_the_left_or_right_code(coder: RetrievalCoder) -> None:
    index = coder.scorer("2026-04").index
    assert index.resolve("S7200") == "S72009A"  # neck of femur, side unspecified
    assert index.resolve("S7200", side="left") == "S72002A"
    assert index.resolve("S7200", side="right") == "S72001A"
    assert index.resolve("E11", side="left") == "E119"  # no sides: unchanged
    # a mention naming both sides names neither
    assert "S72009A" in codes(coder, "Fracture of the neck of the femur, left and right.")


def test_a_fully_spelled_out_diagnosis_is_coded_next_to_learned_ones(
    coder: RetrievalCoder,
) -> None:
    """CodiEsp never taught the coder the femoral neck, yet a clause that names the whole code
    text is coded, on the side it names, beside the comorbidities the learned evidence finds."""
    found = codes(
        coder,
        "Admitted after a fall at home with a displaced fracture of the neck of the left femur. "
        "Osteoporosis and chronic kidney disease stage 3.",
    )
    assert found[0] == "S72002A"
    assert "N1830" in found
    # ... but not what an Excludes note of another code says: "urinary tract infection (O08.83)"
    # is written under N39.0's neighbours, not a pregnancy complication of this narrative
    assert not any(c.startswith("O") for c in codes(coder, "Urinary tract infection and fever."))


def test_the_principal_is_the_reason_for_the_stay_not_a_history_comorbidity(
    coder: RetrievalCoder,
) -> None:
    found = codes(
        coder,
        "Discharge summary. Admitted with acute on chronic systolic heart failure. History of "
        "type 2 diabetes mellitus and essential hypertension.",
    )
    assert found[0] == "I5023", found
    assert {"E119", "I10"} <= set(found)  # comorbidities stay coded


@pytest.mark.parametrize(
    ("narrative", "expected"),
    [
        # a test result reported is no finding stated (Official Guidelines III.B: abnormal
        # findings are coded only when the provider indicates their clinical significance)
        (
            "Community acquired pneumonia. Laboratory: leukocytes 15000, C-reactive protein "
            "45 mg/L.",
            ("J189",),
        ),
        ("Urine test showed protein 2 g/24 h.", ()),
        # ... a finding the text states is coded
        ("Elevated C-reactive protein of unclear cause.", ("R7982",)),
        ("Proteinuria.", ("R809",)),
    ],
)
def test_abnormal_findings_are_coded_only_when_stated(
    coder: RetrievalCoder, narrative: str, expected: tuple[str, ...]
) -> None:
    assert codes(coder, narrative) == expected


def test_nothing_to_code(coder: RetrievalCoder) -> None:
    assert coder.code_one("") == Coded((), ())
    assert coder.code_one("The patient was discharged home.").codes == ()


async def test_code_batch_returns_dotted_codes_in_request_order(coder: RetrievalCoder) -> None:
    requests = [
        CodingRequest("c1", "Type 2 diabetes. No hypertension."),
        CodingRequest("c2", "No history of diabetes.", adapter="ignored"),
    ]
    results = await coder.code_batch(requests)
    assert [(r.claim_id, r.codes, r.error, r.adapter) for r in results] == [
        ("c1", ("E11.9",), None, None),
        ("c2", (), None, "ignored"),
    ]
    assert results[0].raw_output.startswith("E11.9:")
    assert "diabetes" not in repr(results[0])  # narratives and raw output stay out of reprs
    assert coder.info == ModelInfo(
        engine="retrieval",
        model=f"bm25-evidence-lr/codiesp-train@{load().meta['digest'][:12]}",
    )


async def test_one_failing_claim_does_not_fail_the_batch(
    coder: RetrievalCoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing_split(text: str) -> Narrative:
        if text == "boom":
            raise RuntimeError("the narrative text must not reach the error")
        return split(text)

    monkeypatch.setattr("worker.coders.retrieval.coder.split", failing_split)
    results = await coder.code_batch(
        [CodingRequest("a", "boom"), CodingRequest("b", "Atrial fibrillation.")]
    )
    assert [(r.claim_id, r.codes, r.ok) for r in results] == [
        ("a", (), False),
        ("b", ("I48.91",), True),
    ]
    error = results[0].error
    assert isinstance(error, CoderError)
    assert (error.kind, error.message) == ("engine_error", "retrieval failed: RuntimeError")
    assert isinstance(results[1], CoderResult)


async def test_an_unreadable_artifact_is_a_start_up_error(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json.gz"
    broken.write_bytes(b"not gzip")
    with pytest.raises(CoderUnavailableError, match="retrieval coder cannot load"):
        await RetrievalCoder(RetrievalSettings(artifact=broken)).start()


def test_every_code_emitted_on_synthetic_narratives_is_billable(coder: RetrievalCoder) -> None:
    """Hundreds of distinct codes, all billable in the claim's release (the measurement on
    CodiEsp dev is `claimcoder eval`, docs/engines.md)."""
    texts = synthetic_narratives(250)
    emitted = {code for text in texts for code in codes(coder, text)}  # FY2026 codes
    codeset = shipped_catalog().codeset("2026-04")
    assert len(texts) == 250
    assert len(emitted) > 500  # 820 as written
    assert sorted(c for c in emitted if not codeset.is_billable(c)) == []


def test_learn_command_writes_an_artifact_the_coder_uses(tmp_path: Path) -> None:
    docs = [{"text": "Smoker of cigarettes. Marfan habitus.", "codes": ["F17.210", "Q87.40"]}] * 3
    docs += [{"text": "Fever and anemia.", "codes": ["R50.9", "D64.9", "E11"]}] * 3
    data = tmp_path / "coded.jsonl"
    data.write_text("".join(json.dumps(d) + "\n" for d in docs))
    artifact = tmp_path / "mine.json.gz"
    result = CliRunner().invoke(
        app, ["retrieval", "learn", str(data), "--out", str(artifact), "--folds", "2"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report == {
        "documents": 6,
        "codes_kept": 12,
        "codes_dropped": 3,  # E11 is a category, not billable
        "phrases": 8,  # "fever anemia" is no phrase: "and" ends a mention
        "pairs": 16,
        "candidates": report["candidates"],
        "candidate_recall": 1.0,
        "threshold": report["threshold"],
        "out_of_fold_f1": 1.0,
    }
    evidence = load(artifact)
    both = (("F17210", 3), ("Q8740", 3))
    assert dict(evidence.pairs) == {
        "smoker": both,
        "cigarett": both,
        "smoker cigarett": both,
        "marfan": both,
        "habitus": both,
        "marfan habitus": both,
        "fever": (("D649", 3), ("R509", 3)),
        "anemia": (("D649", 3), ("R509", 3)),
    }
    assert (evidence.name, evidence.threshold) == ("coded", report["threshold"])
    mine = RetrievalCoder(RetrievalSettings(artifact=artifact))
    assert set(codes(mine, "A smoker with a marfan habitus.")) == {"F17210", "Q8740"}


# --- one index per release: each claim coded in the code set of its discharge date ----------

FY2026_PERIOD = ReleasePeriod(dt.date(2026, 4, 1), dt.date(2026, 9, 30), 2026, 431, "2026-04")
FY2027_PERIOD = ReleasePeriod(dt.date(2026, 10, 1), dt.date(2027, 3, 31), 2027, 440, "2026-10")


@pytest.mark.parametrize(
    ("narrative", "fy2026", "fy2027"),
    [
        # FY2027 turned I42.0 into a header: its evidence now goes to I42.00 (unspecified)
        ("Dilated cardiomyopathy.", ("I420",), ("I4200",)),
        # ... and I42.8 too; the text names the new child I42.81
        ("Arrhythmogenic right ventricular cardiomyopathy.", ("I429",), ("I4281",)),
        # new FY2027 codes, reachable where the text names them (their titles: added.csv)
        ("Lynch syndrome.", (), ("QA171",)),
        ("Pulmonary mycetoma.", (), ("J4B",)),
        # the T52.8X- family is deleted in FY2027
        ("Toxic effect of organic solvents, accidental.", ("T528X1A", "T5291XA"), ("T5291XA",)),
        ("Admitted with community acquired pneumonia.", ("J189",), ("J189",)),
    ],
)
async def test_each_claim_is_coded_in_the_code_set_of_its_discharge_date(
    coder: RetrievalCoder, narrative: str, fy2026: tuple[str, ...], fy2027: tuple[str, ...]
) -> None:
    results = await coder.code_batch(
        [
            CodingRequest("a", narrative, period=FY2026_PERIOD),
            CodingRequest("b", narrative, period=FY2027_PERIOD),
        ]
    )
    assert [r.codes for r in results] == [
        tuple(dotted(c) for c in fy2026),
        tuple(dotted(c) for c in fy2027),
    ]


def test_no_release_proposes_a_code_it_does_not_bill(coder: RetrievalCoder) -> None:
    """Whatever the narrative, a coder bound to a release proposes only its billable codes:
    FY2027 never sees the codes FY2027 deleted or turned into headers."""
    narratives = [
        *NARRATIVES,
        "Dilated cardiomyopathy and Lynch syndrome. Osteomyelitis of the shoulder.",
        "Body mass index 19, adult. Plantar fascial fibromatosis. Qualitative platelet defect.",
        "Toxic effect of organic solvents, intentional self-harm, initial encounter.",
    ]
    for release in ("2026-04", "2026-10"):
        codeset = shipped_catalog().codeset(release)
        emitted = {code for text in narratives for code in codes(coder, text, release)}
        assert emitted
        assert sorted(c for c in emitted if not codeset.is_billable(c)) == [], release


async def test_a_release_the_coder_does_not_hold_fails_that_claim_only(
    coder: RetrievalCoder,
) -> None:
    unknown = ReleasePeriod(dt.date(2027, 10, 1), dt.date(2028, 3, 31), 2028, 450, "2027-10")
    first, second = await coder.code_batch(
        [
            CodingRequest("a", "Atrial fibrillation.", period=unknown),
            CodingRequest("b", "Atrial fibrillation.", period=FY2027_PERIOD),
        ]
    )
    assert first.error is not None
    assert first.error.kind == "unknown_release"
    assert (second.codes, second.ok) == (("I48.91",), True)


@pytest.mark.parametrize(
    "narrative",
    [
        "My mom had breast cancer and I have type 2 diabetes.",
        "Mother had breast cancer and the patient has type 2 diabetes.",
    ],
)
def test_a_relatives_scope_ends_where_the_patient_is_the_subject_again(
    coder: RetrievalCoder, narrative: str
) -> None:
    """ConText (Harkema 2009): an experiencer scope ends at a termination term; "I" and "the
    patient" bring the patient back, so the diabetes is the patient's and the cancer is not."""
    assert codes(coder, narrative) == ("E119",)


def test_species_epithets_are_organisms_not_diseases(coder: RetrievalCoder) -> None:
    """Klebsiella pneumoniae (B96.1) is no pneumonia (J18.9, an MCC), Haemophilus influenzae
    (B96.3) no influenza: the epithet is kept unstemmed (text._UNSTEMMED)."""
    assert "J189" not in codes(coder, "Klebsiella pneumoniae sepsis.")
    assert "J189" not in codes(coder, "Klebsiella pneumoniae urinary tract infection.")
    assert codes(coder, "Community acquired pneumonia.") == ("J189",)


@pytest.mark.parametrize(
    ("narrative", "expected"),
    [
        # a term split by an aside: I51.81 "Takotsubo syndrome" (Index: Syndrome, takotsubo)
        ("Final diagnosis: Takotsubo (stress-induced) syndrome.", "I5181"),
        # an organ twisted on itself, told after its side: N83.512 "Torsion of left ovary and
        # ovarian pedicle" (Index: Torsion, ovary N83.51-); the title's pair read as either part
        ("Ultrasound showed that her left ovary had twisted.", "N83512"),
        # Index: Infection, Norovirus A08.11 ("Acute gastroenteropathy due to Norovirus")
        ("Stool PCR was positive for norovirus.", "A0811"),
    ],
)
def test_index_terms_a_title_says_otherwise(
    coder: RetrievalCoder, narrative: str, expected: str
) -> None:
    assert codes(coder, narrative)[0] == expected


def test_one_fracture_told_twice_is_coded_once(coder: RetrievalCoder) -> None:
    """In general and then by its kind: S52.532A "Colles' fracture of left radius", without
    S52.502A "Unspecified fracture of the lower end of left radius" beside it (I.B.3: the
    highest specificity; I.A.9.b: "unspecified" when the record says no more)."""
    coded = codes(
        coder,
        "Fractured the left distal radius in a fall on the outstretched hand: a Colles' fracture.",
    )
    assert "S52532A" in coded
    assert "S52502A" not in coded


def test_a_told_complication_leaves_no_unspecified_one(coder: RetrievalCoder) -> None:
    """K50.013 "Crohn's disease of small intestine with fistula", without K50.019 "... with
    unspecified complications" beside it (I.B.3; I.A.9.b)."""
    coded = codes(coder, "Crohn's disease of the small bowel complicated by a fistula.")
    assert coded[0] == "K50013"
    assert "K50019" not in coded


def test_the_diagnosis_of_the_symptoms_is_coded(coder: RetrievalCoder) -> None:
    """M35.81 "Multisystem inflammatory syndrome" (inclusion term MIS-C) named after its signs,
    first: signs and symptoms are coded only when no definitive diagnosis is established
    (I.B.4, I.C.18)."""
    assert (
        codes(coder, "Fever and rash for five days, red eyes; diagnosed with MIS-C.")[0] == "M3581"
    )
