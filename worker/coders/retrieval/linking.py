"""Link what one sentence says together: a systemic infection to its organism, COVID-19 to the
pneumonia it causes. The index and the learned evidence find each code on its own ("sepsis":
A41.9, "E. coli": B96.20); ICD-10-CM often has one code for the pair, and the guidelines say to
use it.

- **Sepsis due to a named organism** (Official Guidelines I.C.1.d.1.a: A41.9 only when the
  organism is not further specified): A41.9 "Sepsis, unspecified organism" beside an organism
  code of B95-B96 ("... as the cause of diseases classified elsewhere"), both named in one
  sentence ("sepsis due to E. coli urinary tract infection"), becomes the sepsis code of that
  organism (:data:`SEPSIS_BY_ORGANISM`, from the tabular titles of A40-A41). The organism is then
  reported once, by the sepsis code: the B95-B96 codes of that organism go, and so does A41.9
  beside a sepsis code that names its organism already. (Tabular N39.0 asks for an
  additional B95-B97 code to identify the agent of a UTI; with the agent in the sepsis code we
  follow the [retrieval] issue's answer, A41.51 and N39.0.)
- **No sepsis the narrative does not say** (I.C.1.d.1.a): a sepsis code (A40-A41) goes when
  no sentence says sepsis (septic, septicemia, urosepsis, bacteremia) and no severe sepsis
  (R65.2-) is coded: "pneumonia due to Pseudomonas" is J15.1, not also A41.52 "Sepsis due to
  Pseudomonas", which the organism's name alone made retrieval find. The organism stays as its
  B95-B96 code unless a pneumonia code of that organism reports it.
- **Severe sepsis and septic shock need their infection** (I.C.1.d.1.a.ii; tabular R65.2 "Code
  first underlying infection ... sepsis NOS (A41.9)"): severe sepsis takes at least two codes,
  the systemic infection first and then R65.2-. R65.20/R65.21 with no code of a systemic
  infection (:data:`SYSTEMIC_INFECTION`) gets A41.9 before it, which the organism link below
  makes that organism's ("septic shock due to E. coli pyelonephritis": A41.51, R65.21). Shock
  told as septic shock is R65.21 alone (Index: Shock, septic R65.21): R57.9 "Shock,
  unspecified" beside it goes.
- **The site of a diabetic ulcer** (tabular E11.621 "Use additional code to identify site of
  ulcer (L97.4-, L97.5-)", E11.622 "(L97.1-L97.9, L98.41-L98.49)"): beside E08-E13 .621/.622
  with no ulcer site coded, the L97 code of the lower-limb site the ulcer is told at (heel or
  midfoot L97.4, another part of the foot or a toe L97.5, ankle L97.3, calf L97.2, thigh
  L97.1), its side, and its severity when told ("limited to breakdown of skin", "fat layer
  exposed", "necrosis of muscle", "necrosis of bone"; else unspecified, 9).
- **Pneumonia due to a named organism** (Index: Pneumonia, in (due to) <organism>; I.A.15):
  J18.- "Pneumonia, unspecified organism" beside an organism code named with it in one
  sentence becomes the pneumonia code of that organism (:data:`PNEUMONIA_BY_ORGANISM`, J13-J15),
  which reports the organism: "Pseudomonas pneumonia" is J15.1, not J18.9 and B96.5.
- **COVID-19** (I.C.1.g.1.a): a sentence that names COVID-19 gets U07.1, unless it calls it
  suspected, possible or probable (I.C.1.g.1.a: only confirmed cases; the uncertain-diagnosis
  rule of Section II.H does not apply to COVID-19); pneumonia named with it is J12.82
  "Pneumonia due to coronavirus disease 2019", not an unspecified-organism pneumonia (J18.-),
  and so is a pneumonia of unspecified organism named in another sentence of a confirmed
  case (I.C.1.g.1.a.i); acute bronchitis named with it is J20.8. Sequencing (U07.1 first) is
  ``apply_conventions``'s. An exposure to COVID-19 ("exposed to", "contact with") is Z20.822,
  never U07.1 (I.C.1.g.1.e). A post COVID-19 condition ("post-COVID", "long COVID",
  "sequelae of COVID-19") is U09.9 after the condition it caused, never U07.1 (I.C.1.g.1.c).
- **Sepsis as told** (I.C.1.d.1.a, I.C.1.d.1.b, I.C.1.d.2): "septic" alone, "sepsis" or
  "septicemia" affirmed and certain is A41.9 when no systemic infection is coded (the organism
  link then names it); R65.21 only where a sentence says sepsis and shock, R65.20 where it
  says sepsis and severe or organ dysfunction; B99.- goes beside a sepsis code.
- **Diabetes of no told type** (I.C.4.a.2): E08, E09, E13 become E11 unless a diabetes
  sentence tells a cause or other type.
- **The reason for the stay: antineoplastic therapy** (I.C.2.e.2): a sentence that says the
  stay or encounter is for chemotherapy, radiation therapy or immunotherapy ("admitted for
  chemotherapy", "encounter for radiotherapy", "here for cycle 3 of chemo") gets Z51.11, Z51.0 or
  Z51.12; ``apply_conventions``'s sequencing puts it first and the malignancy after it. Therapy
  the patient only had ("received chemotherapy in 2019") gives none.
- **The type of diabetes** (I.C.4.a.2): type 1 (E10) and type 2 (E11) codes together where the
  narrative states one type ("type 1 diabetes mellitus with diabetic ketoacidosis"): the other
  type's codes go (E11 is the default only for an undocumented type; E11 Excludes1 E10).
- **Influenza of an identified virus** (I.C.10.c): influenza the narrative gives a type or
  strain ("influenza A", "flu B", "H1N1", "H3N2") is of an identified influenza virus, J10.-,
  not J11.- "due to unidentified influenza virus"; avian, novel or variant influenza A ("bird
  flu", "H5N1", "novel influenza A") is J09.X-. Each J11 code becomes the code of the same
  manifestation (J11.00 -> J10.00, J11.1 -> J10.1 or J09.X2). Only a confirmed one: a
  suspected, possible or probable identified influenza stays J11 (I.C.10.c is an exception to
  the uncertain-diagnosis rule of Section II.H); a test result alone is not needed.
- **Hypertension with heart or kidney disease** (I.C.9.a): the classification presumes the
  link, and I11-I13 include the hypertension; I10 beside one of them goes. (Forming the
  combination code from I10 and the heart failure and CKD codes is ``apply_conventions``'s
  ``combination`` rule, which fixes a coder's codes.)

Codes are undotted; only codes the claim's release bills are ever added.
"""

import itertools
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Final

from drg.codeset.memory import MemoryCodeSet
from drg.conventions.rules import DIABETES
from worker.coders.retrieval.context import read, uncertain
from worker.coders.retrieval.text import contains, is_word, stem

#: Organism code (prefix, B95-B96) -> the sepsis code of that organism (A40-A41 titles).
SEPSIS_BY_ORGANISM: Final[dict[str, str]] = {
    "B950": "A400",  # streptococcus, group A -> Sepsis due to streptococcus, group A
    "B951": "A401",  # streptococcus, group B
    "B952": "A4181",  # Enterococcus -> Sepsis due to Enterococcus
    "B953": "A403",  # Streptococcus pneumoniae
    "B954": "A408",  # other streptococcus -> Other streptococcal sepsis
    "B955": "A409",  # unspecified streptococcus -> Streptococcal sepsis, unspecified
    "B9561": "A4101",  # MSSA -> Sepsis due to MSSA
    "B9562": "A4102",  # MRSA -> Sepsis due to MRSA
    "B957": "A411",  # other staphylococcus -> Sepsis due to other specified staphylococcus
    "B958": "A412",  # unspecified staphylococcus
    "B961": "A4159",  # Klebsiella pneumoniae -> Other Gram-negative sepsis
    "B962": "A4151",  # Escherichia coli (B96.20-B96.29) -> Sepsis due to E. coli
    "B963": "A413",  # Hemophilus influenzae
    "B964": "A4159",  # Proteus -> Other Gram-negative sepsis
    "B965": "A4152",  # Pseudomonas
    "B966": "A414",  # Bacteroides fragilis -> Sepsis due to anaerobes
    "B967": "A414",  # Clostridium perfringens -> Sepsis due to anaerobes
}
UNSPECIFIED_SEPSIS: Final = "A419"
MSSA: Final = "B9561"
MRSA: Final = "B9562"
#: R65.2- severe sepsis (R65.20 without, R65.21 with septic shock).
SEVERE_SEPSIS: Final = "R652"
SEPTIC_SHOCK: Final = "R6521"
SEVERE_SEPSIS_WITHOUT_SHOCK: Final = "R6520"
#: B99 "Other and unspecified infectious diseases", chapter 1's residual category.
_RESIDUAL_INFECTION: Final = "B99"
_NONINFECTIVE_COLITIS: Final = "K529"
#: Sepsis codes of A40-A41 (streptococcal, other), which a narrative must say.
SEPSIS: Final = ("A40", "A41")
UNSPECIFIED_SHOCK: Final = "R579"
#: Code prefixes that report a systemic infection, what R65.2- is coded after (its "Code first"
#: note and the sepsis codes of the tabular list: A40-A41, the sepsis of named infections
#: (A02.1 Salmonella, A20.7 plague, A21.7 tularemia, A22.7 anthrax, A24.1 melioidosis, A26.7
#: Erysipelothrix, A32.7 Listeria, A39.2-A39.4 meningococcal, A42.7 actinomycotic, A54.86
#: gonococcal, B00.7 herpesviral, B37.7 candidal), newborn P36, obstetric O85 and O86.04,
#: after abortion or ectopic pregnancy O03.37, O03.87, O04.87, O07.37, O08.82, after a
#: procedure T81.44, after infusion or transfusion T80.2-).
SYSTEMIC_INFECTION: Final = (
    *("A40", "A41", "A021", "A207", "A217", "A227", "A241", "A267", "A327"),
    *("A392", "A393", "A394", "A427", "A5486", "B007", "B377", "P36", "O85", "O8604"),
    *("O0337", "O0387", "O0487", "O0737", "O0882", "T8144", "T802"),
)
#: Organism code (prefix, B95-B96) -> the pneumonia code of that organism (J13-J15 titles;
#: Index: Pneumonia, in (due to) <organism>).
PNEUMONIA_BY_ORGANISM: Final[dict[str, str]] = {
    "B950": "J154",  # streptococcus, group A -> Pneumonia due to other streptococci
    "B951": "J153",  # streptococcus, group B
    "B952": "J158",  # Enterococcus -> Pneumonia due to other specified bacteria
    "B953": "J13",  # Streptococcus pneumoniae
    "B954": "J154",  # other streptococcus
    "B955": "J154",  # unspecified streptococcus
    "B9561": "J15211",  # MSSA
    "B9562": "J15212",  # MRSA
    "B957": "J1529",  # other staphylococcus
    "B958": "J1520",  # unspecified staphylococcus
    "B961": "J150",  # Klebsiella pneumoniae
    "B962": "J155",  # Escherichia coli
    "B963": "J14",  # Hemophilus influenzae
    "B964": "J1569",  # Proteus -> other Gram-negative bacteria
    "B965": "J151",  # Pseudomonas
    "B966": "J158",  # Bacteroides fragilis -> other specified bacteria
    "B967": "J158",  # Clostridium perfringens -> other specified bacteria
}
_OF_ORGANISM: Final = frozenset(SEPSIS_BY_ORGANISM.values()) | frozenset(
    PNEUMONIA_BY_ORGANISM.values()
)
COVID_19: Final = "U071"
COVID_PNEUMONIA: Final = "J1282"
COVID_ACUTE_BRONCHITIS: Final = "J208"
ESSENTIAL_HYPERTENSION: Final = "I10"
#: Hypertensive heart disease, CKD, heart and CKD (I11-I13)
HYPERTENSIVE_DISEASE: Final = frozenset({"I11", "I12", "I13"})

# Stems, as text.stem gives them
_SEPSIS: Final = frozenset(stem(["sepsis", "septic", "septicemia", "urosepsis", "bacteremia"]))
_SHOCK: Final = stem(["shock"])[0]
_SAID_SEPTIC_SHOCK: Final = ("septic", "shock")
_SAID_SEVERE_SEPSIS: Final = ("severe", "sepsis")
_SEPTIC: Final = "septic"
_SEPSIS_NOUNS: Final = frozenset({"sepsis", "septicemia", "septicaemia"})
#: Words after "septic" that leave it standing alone, as the systemic infection: "septic
#: shock", "septic from pneumonia", "septic with an E. coli UTI", "septic and hypotensive".
_SEPTIC_ALONE: Final = frozenset(
    {"shock", "from", "with", "due", "secondary", "and", "on", "after", "but", "in", "picture"}
)
#: What makes a sepsis severe as told (Index: Sepsis, severe; with organ dysfunction).
_SEVERE: Final = frozenset(stem(["severe", "dysfunction", "failure"]))
_ORGANISMS: Final = frozenset(
    stem(
        [
            *("coli", "streptococcus", "streptococcal", "strep", "staphylococcus", "staph"),
            *("staphylococcal", "enterococcus", "enterococcal", "pneumococcus", "pneumococcal"),
            *("klebsiella", "proteus", "pseudomonas", "influenzae", "mrsa", "mssa", "aureus"),
            *("bacteroides", "fragilis", "clostridium", "perfringens"),
        ]
    )
)
# the organisms' words (_ORGANISMS) as they are written: a substring test before any sentence
# is read
_ORGANISM_TEXT: Final = (
    *("coli", "strep", "staph", "enterococ", "pneumococ", "klebsiella", "proteus"),
    *("pseudomonas", "influenzae", "mrsa", "mssa", "aureus", "fragilis", "perfringens"),
)
# Organism words (stemmed) -> the organism's B95-B96 code (tabular titles of B95-B96; a
# Staphylococcus aureus not called resistant is methicillin susceptible: B95.61 "MSSA ... NOS").
# The more specific reading first: "methicillin resistant staphylococcus aureus" before "aureus".
ORGANISM_WORDS: Final[tuple[tuple[frozenset[str], str], ...]] = tuple(
    (frozenset(stem(list(words_))), code)
    for words_, code in (
        (("mrsa",), "B9562"),
        (("methicillin", "resistant", "aureus"), "B9562"),
        (("mssa",), "B9561"),
        (("aureus",), "B9561"),
        (("klebsiella",), "B961"),
        (("coli",), "B9620"),
        (("pseudomonas",), "B965"),
        (("proteus",), "B964"),
        (("influenzae",), "B963"),
        (("streptococcus", "pneumoniae"), "B953"),
        (("pneumococcal",), "B953"),
        (("pneumococcus",), "B953"),
        (("enterococcus",), "B952"),
        (("enterococcal",), "B952"),
        (("fragilis",), "B966"),
        (("perfringens",), "B967"),
    )
)
_COVID: Final = (
    ("covid", "19"),
    ("covid19",),
    ("covid",),  # "Covid pneumonia": the disease, spelled short
    ("sars", "cov", "2"),
    ("coronavirus", "disease"),
)
_COVID_WORDS: Final = ("covid", "sars", "coronavirus")
# what follows "COVID" when the text speaks of a vaccine or a test, not of the disease
_NOT_THE_DISEASE: Final = frozenset(
    {"vaccine", "vaccines", "vaccination", "vaccinated", "booster", "shot", "shots", "test"}
    | {"tests", "testing", "tested", "screen", "screening", "swab", "pcr", "antigen"}
)
_EXPOSURE: Final = frozenset({"exposure", "exposed", "contact", "contacts"})
#: Words just before "COVID" anywhere in its sentence, or a sequela, that make it a post
#: COVID-19 condition ("post-COVID pulmonary fibrosis", "... (post-COVID condition)", "long
#: COVID", "sequelae of COVID-19").
_POST_COVID: Final = frozenset({"post", "long", "after", "following"})
_SEQUELA: Final = frozenset({"sequela", "sequelae", "pasc"})
POST_COVID: Final = "U099"
_COVID_CODES: Final = frozenset({"U071", "U099"})
COVID_EXPOSURE: Final = "Z20822"
_UNCERTAIN: Final = frozenset(
    {"suspected", "suspect", "possible", "possibly", "probable", "probably", "likely", "query"}
)
_PNEUMONIA: Final = frozenset(stem(["pneumonia", "pneumonitis"]))
# words that make a sentence about this stay or encounter, before "for" and the therapy
_STAY: Final = frozenset(
    {"admit", "admitted", "admission", "encounter", "here", "came", "presents", "presented"}
    | {"scheduled", "planned", "elective", "readmitted", "visit", "hospitalized", "hospitalised"}
    | {"stay", "inpatient"}
)
# what leads from the stay to its therapy: "admitted for chemotherapy", "admitted to receive
# chemotherapy", "here to undergo radiation therapy"
_THERAPY_LEAD: Final = frozenset({"for", "receive", "receiving", "get", "undergo", "undergoing"})
_IN_FOR: Final = ("in", "for")
#: Antineoplastic chemotherapy told by its drug or regimen ("admitted for cycle 3 of
#: carboplatin/pemetrexed", "for scheduled R-CHOP"): cytotoxic agents of WHO ATC group L01
#: (L01A-L01X) common in inpatient regimens, and the regimen acronyms of the NCI Drug
#: Dictionary made of them. Methotrexate is left out: it is given for ectopic pregnancy and
#: arthritis too.
ANTINEOPLASTIC_AGENTS: Final = frozenset(
    {
        *("cisplatin", "carboplatin", "oxaliplatin", "pemetrexed", "paclitaxel", "docetaxel"),
        *("gemcitabine", "capecitabine", "fluorouracil", "irinotecan", "topotecan"),
        *("etoposide", "doxorubicin", "adriamycin", "epirubicin", "daunorubicin", "idarubicin"),
        *("cyclophosphamide", "ifosfamide", "vincristine", "vinblastine", "vinorelbine"),
        *("bleomycin", "dacarbazine", "temozolomide", "cytarabine", "azacitidine", "decitabine"),
        *("bendamustine", "melphalan", "busulfan", "fludarabine", "mitomycin", "eribulin"),
        *("folfox", "folfiri", "folfirinox", "capox", "xelox", "chop", "abvd", "beacopp"),
        *("bep", "cmf", "flot", "cvad"),
    }
)
#: Immunotherapy told by its drug: the immune checkpoint inhibitors (ATC L01FF PD-1/PD-L1,
#: L01FX04 ipilimumab and tremelimumab, CTLA-4), which the Z51.12 "Encounter for antineoplastic
#: immunotherapy" is for.
IMMUNOTHERAPY_AGENTS: Final = frozenset(
    {
        *("pembrolizumab", "nivolumab", "cemiplimab", "dostarlimab", "atezolizumab"),
        *("durvalumab", "avelumab", "ipilimumab", "tremelimumab", "keytruda", "opdivo"),
    }
)
_THERAPY_WORDS: Final = re.compile(
    r"\b(?:chemo|chemotherapy|radiotherapy|radiation|immunotherapy|"
    + "|".join(sorted(ANTINEOPLASTIC_AGENTS | IMMUNOTHERAPY_AGENTS))
    + r")\b"
)
# therapy words -> the Z51 code of an encounter for that therapy (tabular titles of Z51)
THERAPY_ENCOUNTER: Final[tuple[tuple[tuple[str, ...], str], ...]] = (
    (("chemotherapy",), "Z5111"),
    (("chemo",), "Z5111"),
    (("antineoplastic", "chemotherapy"), "Z5111"),
    (("radiation", "therapy"), "Z510"),
    (("radiation", "treatment"), "Z510"),
    # "admitted for whole-brain radiation", not "for radiation pneumonitis" (_NOT_THE_THERAPY)
    (("radiation",), "Z510"),
    (("radiotherapy",), "Z510"),
    (("immunotherapy",), "Z5112"),
    *(((agent,), "Z5111") for agent in sorted(ANTINEOPLASTIC_AGENTS)),
    *(((agent,), "Z5112") for agent in sorted(IMMUNOTHERAPY_AGENTS)),
)
#: Words between the stay's "for" and the therapy that make the therapy the cause of what the
#: stay is for ("admitted for symptomatic anemia due to the chemotherapy": the anemia is the
#: principal diagnosis, I.C.2.c.1), and words after it that name its complication ("admitted
#: for chemotherapy-induced nausea", "for radiation proctitis"): no encounter for the therapy.
_THERAPY_CAUSED: Final = frozenset(
    {"due", "from", "secondary", "caused", "induced", "after", "following", "related"}
    | {"associated", "post", "because"}
)
_NOT_THE_THERAPY: Final = _THERAPY_CAUSED | frozenset(
    {"toxicity", "complication", "complications", "side", "effect", "effects", "reaction"}
    | {"pneumonitis", "proctitis", "cystitis", "enteritis", "colitis", "dermatitis"}
    | {"esophagitis", "mucositis", "injury", "burn", "necrosis", "fibrosis", "sickness"}
    | {"exposure", "damage", "brain", "recall"}
)
# words that state a type of diabetes mellitus, by the category of that type
_DIABETES_TYPE: Final[dict[str, tuple[tuple[str, ...], ...]]] = {
    "E10": (("type", "1"), ("type", "one"), ("insulin", "dependent"), ("juvenile",)),
    "E11": (("type", "2"), ("type", "two"), ("non", "insulin", "dependent")),
}
#: Words of a diabetes sentence that say a type other than 1 or 2 (E08 due to an underlying
#: condition, E09 drug or chemical induced, E13 other specified: Index, Diabetes, due to ...;
#: induced by ...; specified type NEC; postpancreatectomy; postprocedural; MODY).
_OTHER_DIABETES_WORDS: Final = frozenset(
    {
        *("secondary", "due", "underlying", "caused", "induced", "steroid", "steroids"),
        *("drug", "chemical", "pancreatectomy", "postpancreatectomy", "postprocedural"),
        *("mody", "monogenic", "genetic", "specified", "cystic", "pancreatogenic", "3c"),
        *("pancreatitis", "cushing", "hemochromatosis", "glucocorticoid", "post"),
    }
)
_OTHER_DIABETES: Final = ("E08", "E09", "E13")
_DEFAULT_DIABETES: Final = "E11"
_HEART_FAILURE_UNSPECIFIED_ACUITY: Final = frozenset({"I5020", "I5030", "I5040"})
_HEART_FAILURE_WORDS: Final = frozenset({"failure", "hfref", "hfpef", "chf", "hf"})
_WORSENED: Final = frozenset({"decompensated", "decompensation", "exacerbation", "exacerbated"})
_SMALL_INTESTINE: Final = frozenset(
    {"ileum", "ileal", "jejunum", "jejunal", "duodenum", "duodenal", "ileocecal"}
)
_LARGE_INTESTINE: Final = frozenset(
    {"colon", "colonic", "sigmoid", "cecum", "cecal", "rectum", "rectal", "rectosigmoid"}
    | {"ileocecal"}
)
_BLEEDING: Final = frozenset({"bleeding", "bleed", "hemorrhage", "hemorrhagic", "bled"})
#: I66.0- middle, I66.1- anterior, I66.2- posterior cerebral, I66.3 cerebellar arteries: the
#: 4th character plus one is the artery's digit in I63.3-I63.5 (I63.41- middle ... I63.44-).
_OCCLUDED_ARTERY: Final = ("I660", "I661", "I662", "I663")
#: I63.5-: infarction due to unspecified occlusion or stenosis of a named artery and side.
_UNSPECIFIED_OCCLUSION: Final = re.compile(r"I635[1-4][1-39]")
_EMBOLIC: Final = frozenset(stem(["embolic", "embolism", "embolus", "emboli", "cardioembolic"]))
_THROMBOTIC: Final = frozenset(stem(["thrombotic", "thrombosis", "thrombus"]))
_STEMI_BY_WALL: Final = frozenset({"I2109", "I2119", "I2129", "I213"})
#: A coronary artery as told -> the STEMI code that names it.
_CORONARY_ARTERIES: Final[tuple[tuple[tuple[tuple[str, ...], ...], str], ...]] = (
    ((("left", "main"), ("lmca",)), "I2101"),
    ((("left", "anterior", "descending"), ("lad",)), "I2102"),
    ((("right", "coronary"), ("rca",)), "I2111"),
    ((("circumflex",), ("lcx",), ("lcf",)), "I2121"),
)
#: How many words before the therapy its "for" may be: "for scheduled cycle 2 of inpatient
#: cisplatin/etoposide chemotherapy" (drug names and the cycle between).
_THERAPY_REACH: Final = 8
_APPENDICITIS: Final = ("K35", "K37")
_GENERALIZED: Final = frozenset({"generalized", "generalised", "diffuse"})
_PERFORATION: Final = frozenset({"perforation", "perforated", "ruptured", "rupture"})
_ABSCESS: Final = frozenset({"abscess", "abscesses"})
_GANGRENE: Final = frozenset({"gangrene", "gangrenous"})
#: K35.2-'s 6th character: with perforation 1, without 0, unspecified as to perforation 9.
_PERFORATION_CHARACTER: Final[dict[bool | None, str]] = {True: "1", False: "0", None: "9"}
# words that give influenza a type or strain (I.C.10.c), and those that make it novel or avian
_INFLUENZA: Final = frozenset({"influenza", "flu"})
_INFLUENZA_TYPE: Final = frozenset({"a", "b"})
_STRAINS: Final = frozenset({"h1n1", "h3n2", "h1n2", "h5n1", "h7n9", "h5n6", "h5n8", "h9n2"})
_NOVEL: Final = frozenset({"avian", "bird", "novel", "variant", "h5n1", "h7n9", "h5n6", "h5n8"})
#: J11 (unidentified influenza virus) suffix -> the J09 (novel influenza A) code of the same
#: manifestation, from the tabular titles (J09.X1 pneumonia, X2 other respiratory, X3
#: gastrointestinal, X9 other manifestations).
NOVEL_INFLUENZA: Final[dict[str, str]] = {
    "00": "J09X1",
    "08": "J09X1",
    "1": "J09X2",
    "2": "J09X3",
    "81": "J09X9",
    "82": "J09X9",
    "83": "J09X9",
    "89": "J09X9",
}
UNIDENTIFIED_INFLUENZA: Final = "J11"
IDENTIFIED_INFLUENZA: Final = "J10"
_BRONCHITIS: Final = frozenset(stem(["bronchitis"]))
_ACUTE: Final = frozenset(stem(["acute"]))


def link(codes: Sequence[str], narrative: str, codeset: MemoryCodeSet) -> list[str]:
    """``codes`` (undotted, principal first) with the links above made, in place of the codes
    they combine. Never adds a code the release does not bill."""
    out = list(codes)
    lowered = narrative.lower()
    if "sep" in lowered:  # sepsis, septic, septicemia: the sentences are read only then
        said = [sentence.kept for sentence in read(narrative)]
        out = _said_sepsis(_unsaid_severe_sepsis(out, said), [certain(t) for t in said])
    out = _severe_sepsis(out)
    # the sentences are read only when a link is possible (most claims: never)
    organism = any(_organism_code(c) for c in out) or not _OF_ORGANISM.isdisjoint(out)
    # ... or an organism only named, beside an infection coded without it ("pneumonia due to
    # Klebsiella": J18.9 coded, no B96.1)
    organism = organism or any(w in lowered for w in _ORGANISM_TEXT)
    sepsis = any(c.startswith(SEPSIS) for c in out)
    if sepsis or organism or any(w in lowered for w in _COVID_WORDS):
        said = [sentence.kept for sentence in read(narrative)]
        out = _unsaid_sepsis(out, said, codeset)
        out = _organisms(out, said, codeset)
        out = _covid(out, said, codeset)
    if _THERAPY_WORDS.search(lowered):
        therapy = [
            sentence.kept
            for sentence in read(narrative)
            if _THERAPY_WORDS.search(" ".join(sentence.said))
        ]
        out = _therapy_encounter(out, therapy, codeset)
    out = _default_diabetes_type(_diabetes_type(out, narrative), narrative, codeset)
    out = _ulcer_severity(_diabetic_ulcer_site(out, narrative, codeset), narrative, codeset)
    out = _identified_influenza(_influenza_pneumonia(out, codeset), narrative, codeset)
    if _THERAPY_WORDS.search(lowered):
        out = _due_to_chemotherapy(out, narrative, codeset)
    out = _fever_of_neutropenia(out, lowered, codeset)
    out = _specified_infection(out)
    out = _infectious_enteritis(out)
    out = _appendicitis(out, narrative, codeset)
    out = _heart_failure_acuity(out, narrative, codeset)
    out = _diverticular_disease(out, narrative, codeset)
    out = _stemi_artery(_evolved_to_stemi(out, narrative), narrative, codeset)
    out = _infarction_of_occluded_artery(out, narrative, codeset)
    out = _embolism_with_cor_pulmonale(out, codeset)
    out = _dependence_in_remission(out, narrative, codeset)
    return _hypertension(out)


#: Lay or clinical words of a lower-limb site -> the 4th character of its L97 code.
_ULCER_SITES: Final[tuple[tuple[frozenset[str], str], ...]] = (
    (frozenset({"heel", "heels", "midfoot", "calcaneal"}), "4"),
    (frozenset({"toe", "toes", "forefoot", "foot", "feet", "plantar", "sole"}), "5"),
    (frozenset({"ankle", "ankles", "malleolus"}), "3"),
    (frozenset({"calf", "calves", "shin"}), "2"),
    (frozenset({"thigh", "thighs"}), "1"),
)
#: Told severity -> the 6th character of an L97 code.
_ULCER_SEVERITY: Final[tuple[tuple[tuple[str, ...], str], ...]] = (
    (("breakdown", "of", "skin"), "1"),
    (("skin", "breakdown"), "1"),
    (("fat", "layer", "exposed"), "2"),
    (("exposed", "fat"), "2"),
    (("necrosis", "of", "muscle"), "3"),
    (("muscle", "necrosis"), "3"),
    (("necrosis", "of", "bone"), "4"),
    (("bone", "necrosis"), "4"),
    (("muscle", "involvement"), "5"),
    (("bone", "involvement"), "6"),
)
_DIABETIC_ULCER: Final = ("621", "622")


def _diabetic_ulcer_site(codes: list[str], narrative: str, codeset: MemoryCodeSet) -> list[str]:
    """The L97 site code after a diabetic foot or skin ulcer code (module docstring)."""
    ulcer = next((c for c in codes if c[:3] in DIABETES and c[3:] in _DIABETIC_ULCER), None)
    if ulcer is None or any(c.startswith(("L97", "L984")) for c in codes):
        return codes
    for tokens in (sentence.kept for sentence in read(narrative)):
        site = next((digit for names, digit in _ULCER_SITES if not names.isdisjoint(tokens)), None)
        if site is None:
            continue
        side = "2" if "left" in tokens else "1" if "right" in tokens else "0"
        severity = next((d for phrase, d in _ULCER_SEVERITY if contains(tokens, phrase)), "9")
        code = f"L97{site}{side}{severity}"
        if _bills(code, codeset):
            out = list(codes)
            out.insert(out.index(ulcer) + 1, code)
            return out
    return codes


def _ulcer_severity(codes: list[str], narrative: str, codeset: MemoryCodeSet) -> list[str]:
    """A non-pressure chronic ulcer coded "with unspecified severity" (L97.--9, L98.4-9) as the
    severity the narrative tells (L97 6th characters; "skin breakdown only" is 1)."""
    unspecified = [c for c in codes if c.startswith(("L97", "L984")) and c.endswith("9")]
    if not unspecified:
        return codes
    tokens = [t for sentence in read(narrative) for t in sentence.kept]
    severity = next((d for phrase, d in _ULCER_SEVERITY if contains(tokens, phrase)), None)
    if severity is None:
        return codes
    return [
        f"{c[:-1]}{severity}" if c in unspecified and _bills(f"{c[:-1]}{severity}", codeset) else c
        for c in codes
    ]


def _unsaid_sepsis(
    codes: list[str], said: Sequence[Sequence[str]], codeset: MemoryCodeSet
) -> list[str]:
    """No sepsis code (A40-A41) unless the narrative says sepsis (or septic, septicemia,
    urosepsis, bacteremia) where nothing negates it, or severe sepsis (R65.2-) is coded: an
    organism is not a sepsis (I.C.1.d.1.a: sepsis is coded as documented). Retrieval reads
    "Sepsis due to Pseudomonas" in "pneumonia due to Pseudomonas" by the organism alone; the
    organism that such a code named stays as its B95-B96 code, unless a pneumonia code of that
    organism (J13-J15) reports it."""
    if not any(c.startswith(SEPSIS) for c in codes) or any(
        c.startswith(SEVERE_SEPSIS) for c in codes
    ):
        return codes
    stems_of = [set(stem(list(tokens))) for tokens in said]
    if any(not _SEPSIS.isdisjoint(s) for s in stems_of):
        return codes
    dropped = {c for c in codes if c.startswith(SEPSIS)}
    out = [c for c in codes if c not in dropped]
    for organism in _named_organisms(stems_of):
        if _lookup(SEPSIS_BY_ORGANISM, organism) not in dropped or organism in out:
            continue
        pneumonia = _lookup(PNEUMONIA_BY_ORGANISM, organism)
        if pneumonia not in out and _bills(organism, codeset):
            out.append(organism)
    return out


def _unsaid_severe_sepsis(codes: list[str], said: Sequence[Sequence[str]]) -> list[str]:
    """R65.2- only as the narrative says it (I.C.1.d.1.b, I.C.1.d.2; Index: Shock, septic
    R65.21; Sepsis, severe R65.20; Sepsis, with organ dysfunction R65.20): R65.21 where one
    affirmed sentence says sepsis (septic, ...) and shock, R65.20 where one says sepsis and
    severe or organ dysfunction or failure. A septic shock not said but a severe sepsis said is
    R65.20; neither said, R65.2- goes. Learned evidence brings R65.21 in from "septic" alone
    ("admitted septic with E. coli UTI": A41.51, N39.0, DRG 872, not R65.21's 871)."""
    stems_of = [set(stem(list(tokens))) for tokens in said]
    septic = [s for s in stems_of if not _SEPSIS.isdisjoint(s)]
    shock = any(_SHOCK in s for s in septic)
    severe = any(not _SEVERE.isdisjoint(s) for s in septic)
    out: list[str] = []
    for code in codes:
        if code.startswith(SEVERE_SEPSIS) and not (code == SEPTIC_SHOCK and shock):
            code = SEVERE_SEPSIS_WITHOUT_SHOCK if severe else ""
        if code and code not in out:
            out.append(code)
    return out


def certain(tokens: Sequence[str]) -> list[str]:
    """The tokens of one sentence that no uncertainty covers ("rule out sepsis", "suspected
    sepsis"): whether such a diagnosis is coded is the retrieval's to decide (Section II.H,
    settled by a final diagnosis told afterwards: mentions.py), not a link's."""
    return [t for t, unsure in zip(tokens, uncertain(tokens), strict=True) if not unsure]


def _said_sepsis(codes: list[str], said: Sequence[Sequence[str]]) -> list[str]:
    """R65.21 where an affirmed sentence says "septic shock", R65.20 where it says "severe
    sepsis" and no R65.2- is coded (Index: Shock, septic; Sepsis, severe). Then A41.9 "Sepsis,
    unspecified organism" when an affirmed sentence says sepsis and no code
    of a systemic infection (:data:`SYSTEMIC_INFECTION`) is coded (Index: Sepsis
    (generalized) A41.9; Septicemia A41.9; I.C.1.d.1.a: the systemic infection is coded);
    the organism link then makes it that organism's. "He was septic from a pneumococcal
    pneumonia" is A40.3, J13: retrieval reads "septic" as R65.21 "septic shock" only.
    "Septic" says sepsis when it stands alone ("was septic", "septic from", "septic shock"),
    not as the adjective of another condition (septic arthritis M00.9, septic emboli); and
    urosepsis and bacteremia are no sepsis (I.C.1.d.1.a.ii; Index: Bacteremia R78.81).
    ``said``: each sentence's affirmed tokens that no uncertainty covers (an uncertain sepsis
    is retrieval's to code, Section II.H)."""
    out = list(codes)
    if not any(c.startswith(SEVERE_SEPSIS) for c in out):
        for tokens in said:
            pairs = set(itertools.pairwise(tokens))
            if _SAID_SEPTIC_SHOCK in pairs or _SAID_SEVERE_SEPSIS in pairs:
                shock = _SAID_SEPTIC_SHOCK in pairs
                out.append(SEPTIC_SHOCK if shock else SEVERE_SEPSIS_WITHOUT_SHOCK)
                break
    if any(c.startswith((*SYSTEMIC_INFECTION, SEVERE_SEPSIS)) for c in out):
        return out  # R65.2- gets its A41.9 before it (_severe_sepsis)
    for tokens in said:
        for i, word in enumerate(tokens):
            after = tokens[i + 1] if i + 1 < len(tokens) else ""
            if word in _SEPSIS_NOUNS or (
                word == _SEPTIC and (not is_word(after) or after in _SEPTIC_ALONE)
            ):
                return [*out, UNSPECIFIED_SEPSIS]
    return out


def _specified_infection(codes: list[str]) -> list[str]:
    """No B99.8 "Other infectious disease" or B99.9 "Unspecified infectious disease" beside a
    code of a systemic infection (:data:`SYSTEMIC_INFECTION`: the sepsis codes) or of COVID-19
    (U07.1, U09.9 its post condition: "her COVID-19 infection last year"): the
    infection is classified, and an unspecified code is for what the record says no more of
    (I.A.9.b; [retrieval] issue: B99.9 only when the text supports it). "Patient became
    septic; blood cultures grew Klebsiella" is A41.59, not also B99.9, which learned evidence
    reads in "septic" and "cultures". Only beside sepsis: CodiEsp's annotators code B99.9 for
    an infection the text mentions apart from a specific one (serologies, "infectious
    process") 9 times in 13 on dev beside other chapter 1 codes."""
    if any(c.startswith(_RESIDUAL_INFECTION) for c in codes) and any(
        c.startswith(SYSTEMIC_INFECTION) or c in _COVID_CODES for c in codes
    ):
        return [c for c in codes if not c.startswith(_RESIDUAL_INFECTION)]
    return codes


def _infectious_enteritis(codes: list[str]) -> list[str]:
    """No K52.9 "Noninfective gastroenteritis and colitis, unspecified" beside an intestinal
    infectious disease (A00-A09): the colitis is the infection's ("recurrent C. diff colitis"
    is A04.71 alone; K52 is for noninfective ones, and its unspecified code for a record that
    says no more, I.A.9.b)."""
    infection = next((c for c in codes if "A00" <= c[:3] <= "A09"), None)
    if _NONINFECTIVE_COLITIS not in codes or infection is None:
        return codes
    # the infection takes the colitis's place (the principal, when the colitis was)
    return _replace(codes, lambda c: c == _NONINFECTIVE_COLITIS, infection)


def _severe_sepsis(codes: list[str]) -> list[str]:
    """R65.2- after its systemic infection (A41.9 when none is coded); no R57.9 beside R65.21."""
    severe = next((i for i, c in enumerate(codes) if c.startswith(SEVERE_SEPSIS)), None)
    if severe is None:
        return codes
    out = list(codes)
    if not any(c.startswith(SYSTEMIC_INFECTION) for c in out):
        out.insert(severe, UNSPECIFIED_SEPSIS)
    if SEPTIC_SHOCK in out:
        out = [c for c in out if c != UNSPECIFIED_SHOCK]
    return out


def _stay_lead(tokens: Sequence[str], at: int) -> int | None:
    """Where the "for" (or "to receive", "to undergo") is that makes what is told at ``at``
    what this stay is for: at most :data:`_THERAPY_REACH` words before it ("for cycle 3 of
    chemotherapy"), with a word of this stay before that ("admitted", "here"; "he's in for
    his immunotherapy": "in for" says the stay too); None when there is none."""
    before = tokens[:at]
    if _STAY.isdisjoint(before) and _IN_FOR not in itertools.pairwise(before):
        return None
    start = max(0, at - _THERAPY_REACH)
    leads = [k for k in range(start, at) if tokens[k] in _THERAPY_LEAD]
    return leads[-1] if leads else None


def _therapy_encounter(
    codes: list[str], said: Sequence[Sequence[str]], codeset: MemoryCodeSet
) -> list[str]:
    out = list(codes)
    for tokens in said:
        for i in range(len(tokens)):
            for phrase, code in THERAPY_ENCOUNTER:
                if tuple(tokens[i : i + len(phrase)]) != phrase:
                    continue
                lead = _stay_lead(tokens, i)
                after = tokens[i + len(phrase) : i + len(phrase) + 1]
                if (
                    lead is None
                    or not _THERAPY_CAUSED.isdisjoint(tokens[lead:i])
                    or not _NOT_THE_THERAPY.isdisjoint(after)
                ):
                    continue
                if _bills(code, codeset) and code not in out:
                    out.append(code)
    return out


#: A cytopenia's unspecified code -> its code when antineoplastic chemotherapy caused it, and
#: the words that name it (Index: Anemia, due to, antineoplastic chemotherapy D64.81;
#: Neutropenia, due to, chemotherapy D70.1; Pancytopenia, due to, antineoplastic chemotherapy
#: D61.810).
_CHEMOTHERAPY_INDUCED: Final[dict[str, tuple[str, frozenset[str]]]] = {
    "D649": ("D6481", frozenset({"anemia", "anaemia", "anemic", "anaemic"})),
    "D709": ("D701", frozenset({"neutropenia", "neutropenic", "agranulocytosis"})),
    "D61818": ("D61810", frozenset({"pancytopenia", "pancytopenic"})),
}
#: The adverse effect of antineoplastic drugs, coded after the effect (I.C.2.c.1, I.C.19.e.5.a).
ANTINEOPLASTIC_ADVERSE_EFFECT: Final = "T451X5A"
_CHEMOTHERAPY: Final = frozenset({"chemo", "chemotherapy"}) | ANTINEOPLASTIC_AGENTS


def _due_to_chemotherapy(codes: list[str], narrative: str, codeset: MemoryCodeSet) -> list[str]:
    """A cytopenia a sentence says chemotherapy caused ("symptomatic anemia due to the
    chemotherapy", "neutropenia after cycle 2 of FOLFOX"): its code of chemotherapy
    (:data:`_CHEMOTHERAPY_INDUCED`) in place of the unspecified one, followed by the adverse
    effect T45.1X5A; first when the stay is for it ("admitted for"; I.C.2.c.1: the anemia
    first, then the neoplasm and the adverse effect)."""
    targets = [c for c in codes if c in _CHEMOTHERAPY_INDUCED]
    if not targets:
        return codes
    out = list(codes)
    told = [sentence.kept for sentence in read(narrative)]
    for code in targets:
        specific, names = _CHEMOTHERAPY_INDUCED[code]
        for tokens in told:
            at = [i for i, t in enumerate(tokens) if t in names]
            therapy = [i for i, t in enumerate(tokens) if t in _CHEMOTHERAPY]
            caused = [
                a
                for a in at
                for t in therapy
                if a < t and not _THERAPY_CAUSED.isdisjoint(tokens[a:t])
            ]
            if caused and _bills(specific, codeset):
                out = _replace(out, code.__eq__, specific)
                if _stay_lead(tokens, caused[0]) is not None:  # the stay is for it (I.C.2.c.1)
                    out = [specific, *(c for c in out if c != specific)]
                if _bills(ANTINEOPLASTIC_ADVERSE_EFFECT, codeset):
                    out = [*out, ANTINEOPLASTIC_ADVERSE_EFFECT]
                break
    return list(dict.fromkeys(out))


def _hypertension(codes: list[str]) -> list[str]:
    if ESSENTIAL_HYPERTENSION in codes and any(c[:3] in HYPERTENSIVE_DISEASE for c in codes):
        return [c for c in codes if c != ESSENTIAL_HYPERTENSION]
    return codes


def _bills(code: str, codeset: MemoryCodeSet) -> bool:
    record = codeset.records.get(code)
    return record is not None and record.billable


def _organisms(
    codes: list[str], said: Sequence[Sequence[str]], codeset: MemoryCodeSet
) -> list[str]:
    """The sepsis and pneumonia links of the module docstring. An organism code may serve both
    ("sepsis from Pseudomonas pneumonia": A41.52 and J15.1); it goes once a link names it."""
    stems_of = [set(stem(list(tokens))) for tokens in said]
    # the organisms coded, then those only named ("due to Klebsiella pneumonia": no B96.1
    # coded, yet the sentence names it)
    organisms = [c for c in codes if _organism_code(c)]
    organisms += [c for c in _named_organisms(stems_of) if c not in organisms]
    out = list(codes)
    if any(c.startswith(MRSA) for c in organisms):
        # "methicillin resistant Staphylococcus aureus" says "Staphylococcus aureus" too: it is
        # MRSA (B95.62), not also the susceptible kind (B95.61), which learned evidence may
        # read in "MRSA" itself
        organisms = [c for c in organisms if not c.startswith(MSSA)]
        out = list(dict.fromkeys(MRSA if c.startswith(MSSA) else c for c in out))
    families: set[str] = set()
    for words_of, unspecified, table in (
        (_SEPSIS, _unspecified_sepsis, SEPSIS_BY_ORGANISM),
        (_PNEUMONIA, _unspecified_pneumonia, PNEUMONIA_BY_ORGANISM),
    ):
        if not any(not words_of.isdisjoint(s) and not _ORGANISMS.isdisjoint(s) for s in stems_of):
            continue
        targets = frozenset(table.values())
        specific = [c for c in out if c in targets]
        if not specific and any(unspecified(c) for c in out):
            # an organism no link has named yet first: "sepsis due to E. coli and Pseudomonas
            # pneumonia" is A41.51 and J15.1
            for organism in sorted(organisms, key=lambda c: c[:4] in families):
                target = _lookup(table, organism)
                if target is not None and _bills(target, codeset):
                    out = _replace(out, unspecified, target)
                    specific = [target]
                    break
        if specific:
            # the code names its organism: the unspecified one, and that organism's B95-B96
            # codes, go (MRSA sepsis, A41.02, says "Staphylococcus aureus": neither B95.62 nor
            # the B95.61 that learned evidence reads in "Staphylococcus aureus" stays)
            out = [c for c in out if not unspecified(c)]
            families |= {prefix[:4] for prefix, target in table.items() if target in specific}
    return [c for c in out if not (_organism_code(c) and c[:4] in families)]


def _named_organisms(stems_of: Sequence[set[str]]) -> list[str]:
    """Organism codes (B95-B96) of the organisms the sentences name, in table order."""
    found: list[str] = []
    for stems in stems_of:
        for words_of, code in ORGANISM_WORDS:
            if words_of <= stems and code not in found:
                found.append(code)
    return found


def _unspecified_sepsis(code: str) -> bool:
    return code == UNSPECIFIED_SEPSIS


def _unspecified_pneumonia(code: str) -> bool:
    """J18.-: pneumonia, unspecified organism."""
    return code[:3] == "J18"


def _organism_code(code: str) -> bool:
    """An organism code of B95-B96 that a link knows."""
    return _lookup(SEPSIS_BY_ORGANISM, code) is not None


def _lookup(table: Mapping[str, str], code: str) -> str | None:
    """The code ``table`` gives organism code ``code`` (B95-B96, by prefix), or None."""
    return next((t for prefix, t in table.items() if code.startswith(prefix)), None)


def _names_covid(tokens: Sequence[str]) -> int | None:
    """Where one sentence's words name COVID-19 the disease, or None ("COVID vaccine", "covid
    test" name none)."""
    for i in range(len(tokens)):
        for phrase in _COVID:
            end = i + len(phrase)
            if tuple(tokens[i:end]) == phrase and _NOT_THE_DISEASE.isdisjoint(
                tokens[end : end + 2]
            ):
                return i
    return None


def _covid(codes: list[str], said: Sequence[Sequence[str]], codeset: MemoryCodeSet) -> list[str]:
    out = list(codes)
    confirmed = False
    for tokens in said:
        at = _names_covid(tokens)
        if at is None or not _UNCERTAIN.isdisjoint(tokens[:at]):
            continue
        if not _SEQUELA.isdisjoint(tokens) or any(
            tokens[i] in _POST_COVID and tokens[i + 1] in _COVID_WORDS
            for i in range(len(tokens) - 1)
        ):
            # a post COVID-19 condition: U09.9 with its manifestation, no U07.1 unless the
            # infection is current (I.C.1.g.1.c)
            out = [c for c in out if c != COVID_19]
            if _bills(POST_COVID, codeset) and POST_COVID not in out:
                out.append(POST_COVID)
            continue
        if not _EXPOSURE.isdisjoint(tokens[:at]):
            out = [c for c in out if c != COVID_19]
            if _bills(COVID_EXPOSURE, codeset) and COVID_EXPOSURE not in out:
                out.append(COVID_EXPOSURE)
            continue
        confirmed = True
        if _bills(COVID_19, codeset) and COVID_19 not in out:
            out.append(COVID_19)
        stems = set(stem(list(tokens)))
        if not _PNEUMONIA.isdisjoint(stems) and _bills(COVID_PNEUMONIA, codeset):
            out = _replace(out, lambda c: c.startswith("J18"), COVID_PNEUMONIA)
        if (
            not _BRONCHITIS.isdisjoint(stems)
            and not _ACUTE.isdisjoint(stems)
            and _bills(COVID_ACUTE_BRONCHITIS, codeset)
        ):
            out = _replace(out, lambda c: c.startswith("J20"), COVID_ACUTE_BRONCHITIS)
    if confirmed and any(c.startswith("J18") for c in out) and _bills(COVID_PNEUMONIA, codeset):
        # the pneumonia of a confirmed COVID-19 patient told in another sentence ("Admitted
        # with COVID-19. Chest X-ray showed pneumonia."), its organism unspecified: J12.82
        out = _replace(out, lambda c: c.startswith("J18"), COVID_PNEUMONIA)
    return out


def _diabetes_type(codes: list[str], narrative: str) -> list[str]:
    """Type 1 (E10) and type 2 (E11) diabetes coded together where the narrative states only
    one type: the other category goes. E11 is the default only when the type is not documented
    (I.C.4.a.2), and E11 Excludes1 E10."""
    if not all(any(c.startswith(category) for c in codes) for category in _DIABETES_TYPE):
        return codes  # the sentences are read only when both types are coded
    tokens = [t for sentence in read(narrative) for t in sentence.kept]
    said = {
        category
        for category, phrases in _DIABETES_TYPE.items()
        if any(contains(tokens, phrase) for phrase in phrases)
    }
    if len(said) != 1:
        return codes
    (kept,) = said
    return [c for c in codes if not (c[:3] in _DIABETES_TYPE and c[:3] != kept)]


def _default_diabetes_type(codes: list[str], narrative: str, codeset: MemoryCodeSet) -> list[str]:
    """E08, E09 and E13 codes as the E11 code of the same complication where no sentence that
    says diabetes tells a cause or type other than 1 or 2 (I.C.4.a.2: "If the type of diabetes
    mellitus is not documented in the medical record the default is E11.-"; I.C.4.a.3 and
    I.C.4.a.6 for secondary diabetes). Retrieval reads "diabetic foot gangrene" as E13.52,
    "Other specified diabetes mellitus with diabetic peripheral angiopathy with gangrene", by
    its words alone: it is E11.52. A code with no billable E11 counterpart stays."""
    if not any(c.startswith(_OTHER_DIABETES) for c in codes):
        return codes  # the sentences are read only when such a code is coded
    told = set().union(
        *(
            set(sentence.said)
            for sentence in read(narrative)
            if any(t.startswith("diabet") for t in sentence.said)
        )
    )
    if not _OTHER_DIABETES_WORDS.isdisjoint(told):
        return codes
    out: list[str] = []
    for code in codes:
        if code.startswith(_OTHER_DIABETES) and _bills(_DEFAULT_DIABETES + code[3:], codeset):
            code = _DEFAULT_DIABETES + code[3:]
        if code not in out:
            out.append(code)
    return out


def _words_of_sentences_naming(narrative: str, prefix: str) -> tuple[list[str], list[str]]:
    """The words of the sentences with a word starting with ``prefix``, all and affirmed."""
    said: list[str] = []
    kept: list[str] = []
    for sentence in read(narrative):
        if any(t.startswith(prefix) for t in sentence.said):
            said += sentence.said
            kept += sentence.kept
    return said, kept


def _told(said: Sequence[str], kept: Sequence[str], words_: frozenset[str]) -> bool | None:
    """True when ``kept`` (the affirmed words) holds one of ``words_``, False when only the
    negated words do ("no abscess"), None when the narrative does not say."""
    if not words_.isdisjoint(kept):
        return True
    return False if not words_.isdisjoint(said) else None


def _appendicitis(codes: list[str], narrative: str, codeset: MemoryCodeSet) -> list[str]:
    """Appendicitis (K35, K37) as the sentences that name it tell its complications, one code
    (Index: Appendicitis, with generalized peritonitis K35.2-, localized peritonitis K35.30,
    perforation NOS or peritonitis NEC K35.32, peritoneal abscess K35.33, gangrene K35.891):
    generalized (diffuse) peritonitis is K35.2 with abscess told (1) or not (0), perforation
    told (1), denied (0) or not told (9); otherwise perforation is K35.32 (K35.33 with an
    abscess), an abscess K35.33, peritonitis K35.30 (K35.31 gangrenous); gangrene alone
    K35.891. A peritonitis code beside it goes (K65 Excludes1 "peritonitis with or following
    appendicitis (K35.-)"). "Acute appendicitis with perforation and generalized peritonitis,
    no abscess" is K35.201, DRG 373, not K65.0, K35.80 and K35.32 (DRG 371)."""
    if not any(c.startswith(_APPENDICITIS) for c in codes):
        return codes
    said, kept = _words_of_sentences_naming(narrative, "append")
    peritonitis = _told(said, kept, frozenset({"peritonitis"}))
    generalized = peritonitis and not _GENERALIZED.isdisjoint(kept)
    perforation = _told(said, kept, _PERFORATION)
    abscess = _told(said, kept, _ABSCESS)
    gangrene = _told(said, kept, _GANGRENE)
    if generalized:
        target = f"K352{1 if abscess else 0}{_PERFORATION_CHARACTER[perforation]}"
    elif perforation or abscess:
        target = "K3533" if abscess else "K3532"
    elif peritonitis:
        target = "K3531" if gangrene else "K3530"
    elif gangrene:
        target = "K35891"
    else:
        return codes
    if not _bills(target, codeset):
        return codes
    return _replace(
        [c for c in codes if not c.startswith("K65")], lambda c: c.startswith(_APPENDICITIS), target
    )


def _diverticular_disease(codes: list[str], narrative: str, codeset: MemoryCodeSet) -> list[str]:
    """Diverticular disease (K57) as the sentences that name it tell it, one code (K57 titles;
    Index: Diverticulitis, intestine, large / small / both, with perforation, abscess or
    peritonitis, with bleeding): the part (small intestine: ileum, jejunum, duodenum; large:
    colon, sigmoid, cecum, rectum; both, or not told), perforation, abscess or peritonitis
    told, bleeding told (not denied), and diverticulitis or diverticulosis. "Diverticulitis
    involving the terminal ileum and cecum, perforated, with a pericolic abscess; no bleeding"
    is K57.40; words alone found nothing, or K57.92."""
    if not any(c.startswith("K57") for c in codes):
        return codes
    _, kept = _words_of_sentences_naming(narrative, "diverticul")
    if not kept:
        return codes
    small = not _SMALL_INTESTINE.isdisjoint(kept) or contains(kept, ("small", "bowel"))
    large = not _LARGE_INTESTINE.isdisjoint(kept) or contains(kept, ("large", "bowel"))
    part = {(True, False): 0, (False, True): 2, (True, True): 4}.get((small, large), 8)
    complicated = not (_PERFORATION | _ABSCESS | {"peritonitis"}).isdisjoint(kept)
    bleeding = not _BLEEDING.isdisjoint(kept)
    inflamed = "diverticulitis" in kept
    if complicated:
        target = f"K57{part}{1 if bleeding else 0}"
    else:
        target = f"K57{part + 1}{(2 if inflamed else 0) + (1 if bleeding else 0)}"
    if not _bills(target, codeset):
        return codes
    return _replace(codes, lambda c: c.startswith("K57"), target)


_NSTEMI: Final = "I214"
_STEMI: Final = ("I210", "I211", "I212", "I213")
_STEMI_WORDS: Final = (("stemi",), ("st", "elevation", "myocardial"), ("st", "elevation", "mi"))
_NOT_STEMI: Final = frozenset({"non", "nstemi"})


def _evolved_to_stemi(codes: list[str], narrative: str) -> list[str]:
    """A STEMI in the place of the NSTEMI (I21.4) coded beside it, where a sentence after the
    first says STEMI ("initially labeled NSTEMI ... final diagnosis inferior STEMI"): I.C.9.e.1,
    an NSTEMI that evolves to a STEMI is coded as the STEMI. "Non-ST elevation" is no STEMI."""
    stemi = next((c for c in codes if c.startswith(_STEMI)), None)
    if stemi is None or _NSTEMI not in codes:
        return codes
    later = [sentence.kept for sentence in read(narrative)][1:]
    told = any(
        tokens[i : i + len(words)] == list(words) and (i == 0 or tokens[i - 1] not in _NOT_STEMI)
        for tokens in map(list, later)
        for words in _STEMI_WORDS
        for i in range(len(tokens))
    )
    return _replace(codes, lambda c: c in (_NSTEMI, stemi), stemi) if told else codes


def _stemi_artery(codes: list[str], narrative: str, codeset: MemoryCodeSet) -> list[str]:
    """A STEMI coded by its wall or site unspecified (I21.09, I21.19, I21.29, I21.3) as the
    coronary artery the narrative names, in any sentence (I21.0-I21.2 titles; Index: Infarct,
    myocardial, ST elevation, involving right coronary artery I21.11, left anterior descending
    I21.02, left main I21.01, left circumflex I21.21). "Inferior wall STEMI. The culprit
    lesion was in the right coronary artery" is I21.11, not I21.19 ("other coronary artery
    of inferior wall")."""
    if _STEMI_BY_WALL.isdisjoint(codes):
        return codes
    tokens = [t for sentence in read(narrative) for t in sentence.kept]
    target = next(
        (code for phrases, code in _CORONARY_ARTERIES if any(contains(tokens, p) for p in phrases)),
        None,
    )
    if target is None or not _bills(target, codeset):
        return codes
    return _replace(codes, lambda c: c in _STEMI_BY_WALL, target)


#: Cerebral arteries as told -> the artery's digit in I63.3-I63.5 (middle 1, anterior 2,
#: posterior 3, cerebellar 4); a side's digit: right 1, left 2.
_CEREBRAL_ARTERIES: Final[tuple[tuple[tuple[str, ...], str], ...]] = (
    (("middle", "cerebral"), "1"),
    (("mca",), "1"),
    (("anterior", "cerebral"), "2"),
    (("aca",), "2"),
    (("posterior", "cerebral"), "3"),
    (("pca",), "3"),
    (("cerebellar",), "4"),
)
_SIDE_DIGITS: Final = {"right": "1", "left": "2"}


def _named_artery(told: Sequence[Sequence[str]]) -> tuple[str, str] | None:
    """(artery digit, side digit) of the first cerebral artery a sentence names with its side
    just before it ("left MCA", "right middle cerebral artery"), else None."""
    for tokens in told:
        for i in range(len(tokens)):
            for phrase, digit in _CEREBRAL_ARTERIES:
                if tuple(tokens[i : i + len(phrase)]) == phrase:
                    side = next((t for t in tokens[max(0, i - 2) : i] if t in _SIDE_DIGITS), None)
                    if side is not None:
                        return digit, _SIDE_DIGITS[side]
    return None


def _infarction_of_occluded_artery(
    codes: list[str], narrative: str, codeset: MemoryCodeSet
) -> list[str]:
    """An occluded cerebral artery (I66.0- to I66.3) coded beside a cerebral infarction (I63)
    (or an infarction due to an unspecified occlusion of a named artery, I63.5-) is the
    infarction's cause: I63.4- "due to embolism" when the narrative says embolic,
    I63.3- "due to thrombosis" when thrombotic, else I63.5- "due to unspecified occlusion or
    stenosis", of the same artery and side, and the I66 code and the other I63 codes go (I66
    Excludes1 "occlusion and stenosis of cerebral arteries resulting in cerebral infarction
    (I63.-)"; one cerebral infarction an event). "Cardioembolic stroke ... embolic occlusion
    of the left middle cerebral artery" is I63.412, DRG 066, not I66.02 first (DRG 068)."""
    if not any(c.startswith("I63") for c in codes):
        return codes
    occluded = next((c for c in codes if c.startswith(_OCCLUDED_ARTERY)), None)
    unspecified_cause = next((c for c in codes if _UNSPECIFIED_OCCLUSION.fullmatch(c)), None)
    told = [sentence.kept for sentence in read(narrative)]
    stems = {t for tokens in told for t in stem(list(tokens))}
    cause = "5"
    if not _EMBOLIC.isdisjoint(stems):
        cause = "4"
    elif not _THROMBOTIC.isdisjoint(stems):
        cause = "3"
    if occluded is not None:  # I66.3 (cerebellar) names no side
        artery, side = str(int(occluded[3]) + 1), occluded[4:5] or "9"
    elif unspecified_cause is not None:
        artery, side = unspecified_cause[4], unspecified_cause[5]
    elif cause != "5" and (named := _named_artery(told)) is not None:
        # an infarct told in a named artery's territory with its embolic or thrombotic cause:
        # "acute infarct in the left MCA territory ... cardioembolic" is I63.412 (Index:
        # Infarct, cerebral, due to, embolism, cerebral arteries; I63.4- by artery and side)
        artery, side = named
    else:
        return codes
    target = f"I63{cause}{artery}{side}"
    if not _bills(target, codeset):
        return codes
    return _replace(codes, lambda c: c == occluded or c.startswith("I63"), target)


def _embolism_with_cor_pulmonale(codes: list[str], codeset: MemoryCodeSet) -> list[str]:
    """A pulmonary embolism of a told kind coded "without acute cor pulmonale" (I26.9-) beside
    one "with" it (I26.0-) is that kind with it: one embolism, its two facts told in two
    clauses ("saddle pulmonary embolus with RV strain; ... acute cor pulmonale": I26.02, not
    I26.92 and I26.09; I26 titles, "without" beside "with" contradicts, I.A.15)."""
    with_cor = next((c for c in codes if c.startswith("I260")), None)
    without = next((c for c in codes if c.startswith("I269") and c != "I2699"), None)
    if with_cor is None or without is None:
        return codes
    target = "I260" + without[4:]
    if not _bills(target, codeset):
        return codes
    return _replace(codes, lambda c: c in (with_cor, without), target)


def _dependence_in_remission(codes: list[str], narrative: str, codeset: MemoryCodeSet) -> list[str]:
    """Substance dependence "uncomplicated" (F10.20-F19.20) as "in remission" (F1x.21) where
    its sentence says remission, in any clause ("Alcohol dependence, in early remission":
    F10.21; Index: Dependence, alcohol, in remission F10.21; I.C.5.b.1)."""
    dependence = [c for c in codes if c[:2] == "F1" and c[3:] == "20"]
    if not dependence:
        return codes
    remission = any(
        "remission" in tokens and any(t.startswith("depend") for t in tokens)
        for tokens in (sentence.kept for sentence in read(narrative))
    )
    if not remission:
        return codes
    return [f"{c[:3]}21" if c in dependence and _bills(f"{c[:3]}21", codeset) else c for c in codes]


def _heart_failure_acuity(codes: list[str], narrative: str, codeset: MemoryCodeSet) -> list[str]:
    """Systolic, diastolic or combined heart failure coded "unspecified" as to acuity (I50.20,
    I50.30, I50.40) as the acuity a sentence naming the heart failure tells, in any clause of
    it: acute on chronic (3) for "acute on chronic", or for an exacerbation or decompensation
    of a chronic one ("exacerbation" says it was chronic), acute (1) for "acute" or
    "decompensated" alone, chronic (2) for "chronic" alone (I50.2- to I50.4- titles; Index:
    Failure, heart, systolic, acute on chronic I50.23; Coding Clinic reads decompensated as
    acute and an exacerbation as acute on chronic). "Decompensated HFrEF, acute on chronic" is
    I50.23: the acuity, in its own clause, did not reach the clause of the heart failure."""
    unspecified = [c for c in codes if c in _HEART_FAILURE_UNSPECIFIED_ACUITY]
    if not unspecified:
        return codes
    acuity = None
    for tokens in (sentence.kept for sentence in read(narrative)):
        if _HEART_FAILURE_WORDS.isdisjoint(tokens):
            continue
        told = set(tokens)
        chronic = "chronic" in told
        worse = not _WORSENED.isdisjoint(told)
        if (
            contains(tokens, ("acute", "on", "chronic"))
            or ("exacerbation" in told)
            or (worse and chronic)
        ):
            acuity = "3"
        elif "acute" in told or worse:
            acuity = "1"
        elif chronic:
            acuity = "2"
        if acuity is not None:
            break
    if acuity is None:
        return codes
    return [
        f"{c[:-1]}{acuity}" if c in unspecified and _bills(f"{c[:-1]}{acuity}", codeset) else c
        for c in codes
    ]


#: An influenza code of other respiratory manifestations -> its code "with unspecified type of
#: pneumonia", from the tabular titles (J09.X1, J10.0-, J11.0-: "Influenza due to ... with
#: pneumonia"; Index: Influenza, with, pneumonia J11.00).
_INFLUENZA_WITH_PNEUMONIA: Final[dict[str, str]] = {
    "J09X2": "J09X1",
    "J101": "J1000",
    "J111": "J1100",
}
_UNSPECIFIED_ORGANISM_PNEUMONIA: Final = "J18"


def _influenza_pneumonia(codes: list[str], codeset: MemoryCodeSet) -> list[str]:
    """An influenza and a pneumonia of no organism, coded apart (J10.1 "... with other
    respiratory manifestations" beside J18.9), as the one code of influenza with pneumonia
    (J10.00), in the place of the first of them: the pneumonia is the influenza's (Index:
    Influenza, with, pneumonia; the J09-J11 titles "with pneumonia"; I.A.15 "with")."""
    flu = next((c for c in codes if c in _INFLUENZA_WITH_PNEUMONIA), None)
    if flu is None or not any(c.startswith(_UNSPECIFIED_ORGANISM_PNEUMONIA) for c in codes):
        return codes
    combined = _INFLUENZA_WITH_PNEUMONIA[flu]
    if not _bills(combined, codeset):
        return codes
    return _replace(
        codes, lambda c: c == flu or c.startswith(_UNSPECIFIED_ORGANISM_PNEUMONIA), combined
    )


_NEUTROPENIA: Final = "D70"
_FEVER_UNSPECIFIED: Final = "R509"
_FEVER_IN_OTHER_CONDITIONS: Final = "R5081"
_NEUTROPENIC_FEVER: Final = re.compile(r"\bneutropenic fever|\bfebrile neutropenia")


def _fever_of_neutropenia(codes: list[str], lowered: str, codeset: MemoryCodeSet) -> list[str]:
    """The fever of a coded neutropenia is R50.81 "Fever presenting with conditions classified
    elsewhere" (D70 "Use additional code for any associated: fever (R50.81)"; Index: Fever,
    neutropenic D70.9, and Neutropenia, febrile): in the place of R50.9, or added after the
    neutropenia where "neutropenic fever" or "febrile neutropenia" is told."""
    if not any(c.startswith(_NEUTROPENIA) for c in codes) or not _bills(
        _FEVER_IN_OTHER_CONDITIONS, codeset
    ):
        return codes
    if _FEVER_UNSPECIFIED in codes:
        return _replace(codes, lambda c: c == _FEVER_UNSPECIFIED, _FEVER_IN_OTHER_CONDITIONS)
    if _FEVER_IN_OTHER_CONDITIONS in codes or not _NEUTROPENIC_FEVER.search(lowered):
        return codes
    at = next(i for i, c in enumerate(codes) if c.startswith(_NEUTROPENIA)) + 1
    return [*codes[:at], _FEVER_IN_OTHER_CONDITIONS, *codes[at:]]


def _identified_influenza(codes: list[str], narrative: str, codeset: MemoryCodeSet) -> list[str]:
    """J11 codes as J10 (or J09) where a sentence confirms an identified influenza virus."""
    if not any(c.startswith(UNIDENTIFIED_INFLUENZA) for c in codes):
        return codes  # the sentences are read only when influenza is coded
    kind = None
    for tokens in (sentence.kept for sentence in read(narrative)):
        at = _identified_at(tokens)
        if at is None or not _UNCERTAIN.isdisjoint(tokens[:at]):
            continue
        if not _NOVEL.isdisjoint(tokens):
            kind = "novel"
            break
        kind = "identified"
    if kind is None:
        return codes
    out: list[str] = []
    for code in codes:
        if code.startswith(UNIDENTIFIED_INFLUENZA):
            suffix = code[len(UNIDENTIFIED_INFLUENZA) :]
            new = (
                NOVEL_INFLUENZA.get(suffix, "")
                if kind == "novel"
                else IDENTIFIED_INFLUENZA + suffix
            )
            code = new if new and _bills(new, codeset) else code
        if code not in out:
            out.append(code)
    return out


def _identified_at(tokens: Sequence[str]) -> int | None:
    """Where one sentence's words name influenza of a type or strain ("influenza A", "flu type
    B", "H1N1", "influenza (H3N2)"), or None."""
    for i, token in enumerate(tokens):
        if token in _STRAINS:
            return i
        if token in _INFLUENZA:
            after = [t for t in tokens[i + 1 : i + 3] if t != "type"]
            if after and after[0] in _INFLUENZA_TYPE | _STRAINS:
                return i
    return None


def _replace(codes: list[str], unspecified: Callable[[str], bool], specific: str) -> list[str]:
    """``specific`` in the place of the first code ``unspecified`` accepts or of ``specific``
    itself, whichever comes first (the principal's place, when it was one of them); the other
    accepted codes go; with none, ``specific`` is added."""
    out: list[str] = []
    placed = False
    for code in codes:
        if code == specific or unspecified(code):
            if not placed:
                out.append(specific)
                placed = True
            continue
        out.append(code)
    if not placed:
        out.append(specific)
    return out
