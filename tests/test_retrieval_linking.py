"""worker/coders/retrieval/linking.py: what one sentence links, one code (ICD-10-CM Official
Guidelines section on each case)."""

import re

import pytest

from drg.codeset.catalog import shipped_catalog
from drg.codeset.memory import MemoryCodeSet
from worker.coders.retrieval.linking import SEPSIS_BY_ORGANISM, link


@pytest.fixture(scope="module", params=["2026-04", "2026-10"])
def codeset(request: pytest.FixtureRequest) -> MemoryCodeSet:
    release: str = request.param
    return shipped_catalog().codeset(release)


def test_every_organism_maps_to_a_billable_sepsis_code_of_that_organism(
    codeset: MemoryCodeSet,
) -> None:
    """A40-A41 titles: "Sepsis due to <organism>", or the group it belongs to."""
    groups = {"A4159": "gram-negative", "A414": "anaerobes", "A408": "streptococcal"}
    for organism, sepsis in SEPSIS_BY_ORGANISM.items():
        assert codeset.records[sepsis].billable, sepsis
        title = codeset.records[sepsis].description.lower()
        assert "sepsis" in title
        if sepsis in groups:
            assert groups[sepsis] in title
            continue
        # the organism's distinctive word appears in both titles
        words = set(re.findall(r"[a-z]+", codeset.records[organism].description.lower()))
        assert words & set(re.findall(r"[a-z]+", title)) - {"the", "of", "as", "due", "to"}


@pytest.mark.parametrize(
    ("codes", "narrative", "linked"),
    [
        # I.C.1.d.1.a: the organism named with the sepsis gives the sepsis code
        (
            ["N390", "B9620", "A419"],
            "Sepsis due to E. coli urinary tract infection.",
            ["N390", "A4151"],
        ),
        (["A419", "B9562", "L03116"], "MRSA sepsis from cellulitis.", ["A4102", "L03116"]),
        # pneumonia due to a named organism (Index: Pneumonia, in (due to) <organism>): J13-J15
        (["B9620", "J189"], "E. coli pneumonia.", ["J155"]),
        (["J15212", "B9561"], "Pneumonia due to MRSA.", ["J15212"]),
        (["A419", "J189", "B965"], "Sepsis secondary to Pseudomonas pneumonia.", ["A4152", "J151"]),
        # the organism named only in words (no B95.3 coded): Streptococcus pneumoniae
        (
            ["A419", "J189"],
            "Sepsis secondary to Streptococcus pneumoniae pneumonia.",
            ["A403", "J13"],
        ),
        # named in different sentences: nothing links them
        (
            ["J189", "B9620"],
            "Community acquired pneumonia. E. coli in the urine.",
            ["J189", "B9620"],
        ),
        # an organism the sentence names with no organism code coded: Klebsiella is a
        # Gram-negative (A41.59 "Other Gram-negative sepsis"), its pneumonia J15.0
        (
            ["A419", "J189", "R6521"],
            "Severe sepsis with septic shock due to Klebsiella pneumonia.",
            ["A4159", "J150", "R6521"],
        ),
        # the sepsis code already names its organism: A41.9 and the organism's B95.6- codes go,
        # the methicillin-susceptible default that "Staphylococcus aureus" suggests too
        (["A4102", "A419", "B9561", "B9562"], "Sepsis due to MRSA.", ["A4102"]),
        # another organism of the sentence stays: E. coli sepsis beside a Pseudomonas code
        (
            ["A4151", "B9620", "B965", "J189"],
            "Sepsis due to E. coli and Pseudomonas pneumonia.",
            ["A4151", "J151"],
        ),
        # ... and the pneumonia its pneumonia code (Index: Pneumonia, pneumococcal J13)
        (["J189", "B953", "A419"], "Pneumococcal pneumonia and sepsis.", ["J13", "A403"]),
        # named in different sentences: nothing says this organism caused this sepsis
        (
            ["N390", "B9620", "A419"],
            "E. coli urinary tract infection. Later sepsis of unknown source.",
            ["N390", "B9620", "A419"],
        ),
        # the sepsis is negated: nothing to link, and no sepsis code the narrative does not
        # say (I.C.1.d.1.a: sepsis is coded as documented)
        (
            ["N390", "B9620", "A419"],
            "E. coli urinary tract infection, no sepsis.",
            ["N390", "B9620"],
        ),
        # an organism is no sepsis: "Sepsis due to Pseudomonas", read in the organism's name
        # alone, goes; the pneumonia code of that organism reports it (J15.1)
        (
            ["A4152", "J151"],
            "Admitted with pneumonia due to Pseudomonas aeruginosa, sputum culture positive.",
            ["J151"],
        ),
        # ... and beside an infection that does not name it, the organism stays as B96.5
        (
            ["N390", "A4152"],
            "Urinary tract infection due to Pseudomonas.",
            ["N390", "B965"],
        ),
        # I.C.1.g.1.a: confirmed COVID-19 with pneumonia: U07.1 and J12.82, not J18.9
        (["J189", "Z9981"], "COVID-19 pneumonia requiring oxygen.", ["J1282", "Z9981", "U071"]),
        (["J189"], "Pneumonia due to SARS-CoV-2.", ["J1282", "U071"]),
        (["J209"], "Acute bronchitis due to COVID-19.", ["J208", "U071"]),
        # only confirmed cases: suspected COVID-19 is not coded U07.1
        (["J189"], "Pneumonia, suspected COVID-19.", ["J189"]),
        (["J189"], "Pneumonia. COVID-19 was ruled out.", ["J189"]),
        # I.C.1.g.1.e: an exposure is Z20.822, whatever the coder proposed
        (["U071"], "Exposure to COVID-19, no symptoms.", ["Z20822"]),
        ([], "Household contact with COVID-19.", ["Z20822"]),
        # I.C.2.e.2: a stay for antineoplastic therapy is coded Z51.0/Z51.11/Z51.12 (sequencing
        # then puts it first); therapy the patient only had is no reason for this stay
        (
            ["C61"],
            "Admitted for radiation therapy. Carcinoma of the prostate.",
            ["C61", "Z510"],
        ),
        (
            ["C8330"],
            "Here for cycle 3 of chemo. Diffuse large B-cell lymphoma.",
            ["C8330", "Z5111"],
        ),
        (["C3490"], "Elective admission for immunotherapy of lung cancer.", ["C3490", "Z5112"]),
        (
            ["C50919", "J189"],
            "Received chemotherapy in 2019. Admitted for pneumonia.",
            ["C50919", "J189"],
        ),
        (["J189"], "Admitted for pneumonia, no chemotherapy planned.", ["J189"]),
        # ... told by its drugs or regimen (ATC L01 agents; NCI regimen acronyms), radiation
        # told alone, a checkpoint inhibitor is immunotherapy (Z51.12)
        (
            ["C3412"],
            "Admitted for cycle 3 of carboplatin/pemetrexed for adenocarcinoma of the left lung.",
            ["C3412", "Z5111"],
        ),
        (["C8333"], "Admitted for scheduled R-CHOP cycle 2. DLBCL.", ["C8333", "Z5111"]),
        (["C7931"], "Admitted for whole-brain radiation for brain metastases.", ["C7931", "Z510"]),
        (["C4359"], "Admitted for a pembrolizumab infusion. Melanoma.", ["C4359", "Z5112"]),
        # ... not where the stay is for what the therapy caused (I.C.2.c.1, I.C.2.e.2): the
        # anemia of chemotherapy is D64.81, then the adverse effect T45.1X5A
        (
            ["C187", "D649"],
            "Sigmoid colon cancer on FOLFOX, admitted for symptomatic anemia due to the chemo.",
            ["D6481", "C187", "T451X5A"],
        ),
        (["D709"], "Neutropenia after cycle 2 of FOLFOX.", ["D701", "T451X5A"]),
        (["J7011"], "Admitted for radiation pneumonitis. Lung cancer.", ["J7011"]),
        (["D649"], "Anemia. Received chemotherapy in 2019.", ["D649"]),
        # I.C.9.a: I11-I13 include the hypertension
        (
            ["I110", "I10", "I5032"],
            "Hypertensive heart disease with heart failure.",
            ["I110", "I5032"],
        ),
        (["I10", "E119"], "Hypertension and type 2 diabetes.", ["I10", "E119"]),
        # I.C.1.g.1.a.i: the pneumonia of a confirmed COVID-19 case, told in another sentence
        # and of no other organism, is J12.82; an exposure confirms nothing
        (
            ["U071", "J189"],
            "Admitted with COVID-19. Chest X-ray showed pneumonia.",
            ["U071", "J1282"],
        ),
        (["J189"], "Exposed to COVID-19 at work. Pneumonia.", ["J189", "Z20822"]),
        (["J189"], "Possible COVID-19. Pneumonia.", ["J189"]),
        # I.C.4.a.2: the documented type decides the category (E11 is the default only for an
        # undocumented type; E11 Excludes1 E10)
        (
            ["E1010", "E119"],
            "Type 1 diabetes mellitus with diabetic ketoacidosis.",
            ["E1010"],
        ),
        (["E1165", "E109"], "Type 2 diabetes with hyperglycemia.", ["E1165"]),
        # no type stated: nothing to decide by
        (["E1010", "E119"], "Diabetes mellitus with ketoacidosis.", ["E1010", "E119"]),
        # the type a relative has is not the patient's (context.py): only type 2 is stated
        (
            ["E109", "E119"],
            "Mother has type 1 diabetes. Type 2 diabetes.",
            ["E119"],
        ),
        # I.C.10.c: influenza of a named type or strain is of an identified virus (J10), a
        # novel or avian influenza A is J09; the manifestation is kept
        (["J1100"], "Influenza A with pneumonia.", ["J1000"]),
        (["J111", "E860"], "Flu type B. Dehydrated.", ["J101", "E860"]),
        (["J1100"], "Admitted with H3N2 influenza pneumonia.", ["J1000"]),
        (["J1100"], "Avian influenza A (H5N1) with pneumonia.", ["J09X1"]),
        (["J112"], "Bird flu A with gastroenteritis.", ["J09X3"]),
        # ... only a confirmed one (I.C.10.c: an exception to Section II.H)
        (["J111"], "Suspected influenza A.", ["J111"]),
        (["J111"], "Negative for influenza A and B. Influenza-like illness.", ["J111"]),
        # no type told: unidentified
        (["J111"], "Admitted with the flu. A cough for a week.", ["J111"]),
        # Index: Appendicitis, with generalized peritonitis K35.2- (perforation told 1, denied
        # 0, not told 9; abscess 5th character), perforation NOS K35.32, peritoneal abscess
        # K35.33, localized peritonitis K35.30, gangrene K35.891; K65 Excludes1 appendicitis
        (
            ["K650", "K3580", "K3532"],
            "Dx: acute appendicitis with perforation and generalized peritonitis, no abscess.",
            ["K35201"],
        ),
        (["K3580", "K659"], "Acute appendicitis with generalized peritonitis.", ["K35209"]),
        (["K3580"], "Acute appendicitis with diffuse peritonitis and abscess.", ["K35219"]),
        (["K37"], "Perforated appendicitis.", ["K3532"]),
        (["K3580"], "Ruptured appendix with an abscess.", ["K3533"]),
        (["K3580", "K659"], "Acute appendicitis with localized peritonitis.", ["K3530"]),
        (["K3580"], "Gangrenous appendicitis, no perforation.", ["K35891"]),
        (["K3580"], "Acute appendicitis, no perforation.", ["K3580"]),
        # heart failure's acuity told in another clause of its sentence (I50.2- titles;
        # Coding Clinic: decompensated is acute, an exacerbation acute on chronic)
        (["I5020"], "Decompensated HFrEF, acute on chronic.", ["I5023"]),
        (["I5020"], "Admitted for HFrEF exacerbation.", ["I5023"]),
        (["I5030"], "Diastolic heart failure, decompensated.", ["I5031"]),
        (["I5040"], "Combined systolic and diastolic heart failure, chronic.", ["I5042"]),
        (["I5020", "N179"], "Systolic heart failure. Acute kidney injury.", ["I5020", "N179"]),
        # diverticular disease as told: the part, perforation or abscess, bleeding (K57 titles)
        (
            ["K5792"],
            "CT: diverticulitis involving the terminal ileum and cecum, perforated, with a "
            "pericolic abscess; no bleeding.",
            ["K5740"],
        ),
        (["K5732"], "Perforated sigmoid diverticulitis.", ["K5720"]),
        (["K5790"], "Diverticulosis of the colon with bleeding.", ["K5731"]),
        (["K5792"], "Small bowel diverticulitis.", ["K5712"]),
        (["K5732"], "Acute sigmoid diverticulitis.", ["K5732"]),
        # a STEMI's artery told in any sentence (Index: Infarct, myocardial, ST elevation,
        # involving right coronary artery I21.11, left anterior descending I21.02)
        (
            ["I2119", "I213"],
            "Inferior wall STEMI. The culprit lesion was in the right coronary artery.",
            ["I2111"],
        ),
        (["I213"], "Anterior STEMI due to LAD occlusion.", ["I2102"]),
        (["I213"], "STEMI.", ["I213"]),
        (["I214"], "NSTEMI. Stent to the RCA.", ["I214"]),
        # I66 Excludes1 occlusion resulting in infarction (I63.-): the infarction due to
        # embolism of that artery and side when embolic is told (I63.412), else unspecified
        # occlusion (I63.511)
        (
            ["I6602", "R531", "I4891", "I639"],
            "Final dx: cardioembolic stroke from atrial fibrillation with embolic occlusion of "
            "the left middle cerebral artery.",
            ["I63412", "R531", "I4891"],
        ),
        (["I639", "I6601"], "Stroke. Occlusion of the right middle cerebral artery.", ["I63511"]),
        (["I63512"], "Embolic stroke of the left MCA.", ["I63412"]),
        (["I6602"], "Stenosis of the left middle cerebral artery.", ["I6602"]),
        # ... and an infarct told in a named artery's territory with its cause (Index: Infarct,
        # cerebral, due to, embolism, cerebral arteries); with no cause told, I63.9 stays
        (
            ["I639", "I4891"],
            "Acute infarct in the left MCA territory, cardioembolic from atrial fibrillation.",
            ["I63412", "I4891"],
        ),
        (["I639"], "Thrombotic stroke, right posterior cerebral artery.", ["I63331"]),
        (["I639"], "Acute infarct in the left MCA territory.", ["I639"]),
        # one pulmonary embolism, its kind and its cor pulmonale told in two clauses (I26.02)
        (
            ["I2692", "I2609"],
            "Saddle pulmonary embolus with RV strain; cardiology documents acute cor pulmonale.",
            ["I2602"],
        ),
        (["I2699", "I2609"], "Pulmonary embolism. Acute cor pulmonale.", ["I2699", "I2609"]),
        # K52.9 is noninfective: not beside an intestinal infection (A04.71)
        (["K529", "J449", "A0471"], "Recurrent C. diff colitis. COPD.", ["A0471", "J449"]),
        (["K529"], "Colitis.", ["K529"]),
        # Index: Dependence, alcohol, in remission F10.21, told in another clause
        (["F1020"], "Alcohol dependence, in early remission.", ["F1021"]),
        (["F1020"], "Alcohol dependence. Drinks daily.", ["F1020"]),
        # I.C.1.g.1.c: a post COVID-19 condition is U09.9 after the condition, never U07.1
        (["J8410", "U071"], "Post-COVID condition: pulmonary fibrosis.", ["J8410", "U099"]),
        (["R5383"], "Long COVID with fatigue.", ["R5383", "U099"]),
        (["J8410"], "Pulmonary fibrosis, sequelae of COVID-19.", ["J8410", "U099"]),
        # ... "post-COVID" anywhere in the sentence; B99.9 goes beside it (I.A.9.b)
        (
            ["J8410", "B999"],
            "CT shows pulmonary fibrosis, which pulmonology attributes to her COVID-19 infection "
            "last year (post-COVID condition).",
            ["J8410", "U099"],
        ),
        # I.C.4.a.2: the type not documented is E11, not "other specified" E13 that the
        # words alone find; a type or cause told keeps its category (I.C.4.a.6, E09)
        (["E1352"], "Diabetic foot gangrene.", ["E1152"]),
        (["E1365", "E119"], "Diabetes with hyperglycemia.", ["E1165", "E119"]),
        (["E0965"], "Steroid-induced diabetes with hyperglycemia.", ["E0965"]),
        (["E1365"], "Diabetes after pancreatectomy, with hyperglycemia.", ["E1365"]),
        # R65.2- as the narrative says it (I.C.1.d.1.b, I.C.1.d.2; Index: Shock, septic R65.21;
        # Sepsis, severe R65.20): "septic" alone is sepsis, no septic shock
        (["N390", "B9620", "R6521"], "Admitted septic with E. coli UTI.", ["N390", "A4151"]),
        (["J13", "R6521"], "Septic and hypotensive from pneumonia.", ["J13", "A419"]),
        (["A419", "R6521"], "Severe sepsis from cellulitis.", ["A419", "R6520"]),
        (["A419", "N179"], "Severe sepsis with acute kidney failure.", ["A419", "N179", "R6520"]),
        (["J13"], "Septic shock from pneumococcal pneumonia.", ["J13", "A403", "R6521"]),
        # "septic" says sepsis (Index: Sepsis A41.9): the organism named with it links (A40.3)
        (["J13"], "He was septic from a pneumococcal pneumonia.", ["J13", "A403"]),
        # ... not as another condition's adjective (Index: Arthritis, septic M00.9), nor
        # urosepsis (I.C.1.d.1.a.ii) or bacteremia (R78.81)
        (["M009"], "Septic arthritis of the knee.", ["M009"]),
        (["N390"], "Urosepsis.", ["N390"]),
        (["R7881", "N390"], "Bacteremia with a urinary tract infection.", ["R7881", "N390"]),
        (["N390"], "No sign of sepsis. Urinary tract infection.", ["N390"]),
        # B99.9 "Unspecified infectious disease" goes beside sepsis (I.A.9.b), stays beside
        # another infection the annotators of CodiEsp code it with
        (
            ["N390", "B999"],
            "Patient became septic; blood cultures grew Klebsiella. Source was a UTI.",
            ["N390", "A4159"],
        ),
        (["B1920", "B999"], "Hepatitis C. Infectious work-up.", ["B1920", "B999"]),
        # an influenza and a pneumonia of no organism are influenza with pneumonia (Index:
        # Influenza, with, pneumonia J11.00; J10.0- when the virus is identified, I.C.10.d)
        (["J111", "J189"], "Influenza pneumonia.", ["J1100"]),
        (
            ["J189", "J111"],
            "Influenza A confirmed by swab; bilateral pneumonia.",
            ["J1000"],
        ),
        (["J09X2", "J181"], "Avian influenza with lobar pneumonia.", ["J09X1"]),
        # ... not an influenza beside a pneumonia of a named organism (J13-J16)
        (["J111", "J13"], "Influenza, then pneumococcal pneumonia.", ["J111", "J13"]),
        # a neutropenia's fever is R50.81 (D70 "Use additional code ... fever (R50.81)")
        (["D709", "R509"], "Neutropenia with fever.", ["D709", "R5081"]),
        (["D709", "C9100"], "Febrile neutropenia in ALL.", ["D709", "R5081", "C9100"]),
        (["R509", "J189"], "Fever and pneumonia.", ["R509", "J189"]),
        # I.C.9.e.1: an NSTEMI that evolves to a STEMI is coded as the STEMI
        (
            ["I214", "I2510", "I2111"],
            "Initially labeled NSTEMI. Final diagnosis inferior STEMI of the RCA.",
            ["I2111", "I2510"],
        ),
        # ... "non-ST elevation" is no STEMI (the [retrieval] issue's case)
        (
            ["I214", "I213", "I2129"],
            "Non-ST elevation myocardial infarction. Patient expired on hospital day 2.",
            ["I214", "I213", "I2129"],
        ),
    ],
)
def test_links(codeset: MemoryCodeSet, codes: list[str], narrative: str, linked: list[str]) -> None:
    assert link(codes, narrative, codeset) == linked
