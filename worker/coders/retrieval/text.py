"""Narrative text to sentences, words and stems, the same way for code texts and for claims.

Words are lower-cased alphanumeric runs; ``,;:()`` are kept as tokens because they bound clauses.
Stems come from PyStemmer (Snowball English, a C extension). A Stemmer object is not safe to share
between threads, so each thread gets its own.
"""

import functools
import re
import threading
import unicodedata
from collections.abc import Iterable, Sequence
from collections.abc import Set as AbstractSet
from typing import Final, NamedTuple

import Stemmer

CLAUSE_BREAKS: Final = frozenset({",", ";", ":", "(", ")"})

_SENTENCE_END: Final = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\"'])|\n+")
_TOKEN: Final = re.compile(r"[a-z0-9]+|[,;:()]")
_NOT: Final = re.compile(r"n't\b")
# "type II", "stage III": roman numerals to digits where ICD-10-CM writes digits ("Type 2 ...").
_ROMAN: Final = re.compile(r"\b(type|stage|grade|class)\s+(iv|iii|ii|i)\b")
_ROMAN_DIGIT: Final = {"i": "1", "ii": "2", "iii": "3", "iv": "4"}

# Function words plus the words ICD-10-CM uses for "we do not know" ("unspecified", "other",
# "NOS", "not elsewhere classified"): they carry no evidence in either direction. Negation words
# are listed too because negation is decided before stop words are dropped (see context.py).
# "Uncomplicated" is the default a code text spells out and a narrative does not; "mellitus" is
# what "diabetes" means unless "insipidus" follows; "nontraumatic" is the Index's nonessential
# modifier of the hemorrhages a narrative tells without it ("Hemorrhage, intracerebral
# (nontraumatic) I61.9"; a traumatic one is told so, and its S06 text says "traumatic").
STOPWORDS: Final = frozenset(
    """a an and are as at be been being but by for from had has have he her hers him his i if in
    into is it its me my of on or our she so such than that the their them then there these they
    this those to us was we were which who whom whose will with within would you your also after
    before during while both either each any all some may might can could should shall do does did
    done no not nor without unspecified unspecific specified other others nos elsewhere classified
    otherwise site uncomplicated mellitus nontraumatic due""".split()  # noqa: SIM905 - a word list reads as text
)

# Parts of a limb, read as the limb below (_LAY), and the long bones whose mention makes them a
# bone's end instead ("the end of my radius near the wrist").
_UPPER_LIMB_PARTS: Final = ("forearm", "elbow", "wrist", "hand")
_LOWER_LIMB_PARTS: Final = ("thigh", "knee", "calf", "shin", "ankle", "foot", "feet", "heel")
LONG_BONES: Final = frozenset({"radius", "ulna", "humerus", "femur", "tibia", "fibula"})
# words from a limb part to a long bone that makes it the bone's end: the whole clause ("landed
# on my outstretched left hand - the ER doctor said I broke the end of my radius near the wrist")
_BONE_REACH: Final = 64

# Words the tabular list never uses, mapped to the words it does use: a patient's phrasing, and
# tumour words that ICD-10-CM only resolves through its Neoplasm Table ("adenocarcinoma of lung" is
# a "malignant neoplasm of lung"). Kept short on purpose: this is not a thesaurus.
_LAY: Final[dict[tuple[str, ...], tuple[str, ...]]] = {
    ("cancer",): ("malignant", "neoplasm"),
    ("carcinoma",): ("malignant", "neoplasm"),
    ("adenocarcinoma",): ("malignant", "neoplasm"),
    ("tumor",): ("neoplasm",),
    ("tumour",): ("neoplasm",),
    ("broke",): ("fracture",),
    ("broken",): ("fracture",),
    ("break",): ("fracture",),
    ("cracked",): ("fracture",),
    ("stroke",): ("cerebral", "infarction"),
    ("mrsa",): ("methicillin", "resistant", "staphylococcus", "aureus"),
    # abbreviations of US discharge summaries that the tabular list spells out
    ("copd",): ("chronic", "obstructive", "pulmonary", "disease"),
    ("chf",): ("congestive", "heart", "failure"),
    ("ckd",): ("chronic", "kidney", "disease"),
    ("esrd",): ("end", "stage", "renal", "disease"),
    ("htn",): ("hypertension",),
    ("gerd",): ("gastro", "esophageal", "reflux", "disease"),
    ("gastroesophageal",): ("gastro", "esophageal"),
    ("uti",): ("urinary", "tract", "infection"),
    # acute kidney injury is acute kidney failure (Index: Injury, kidney, acute (nontraumatic)
    # N17.9); the tabular list's "injury of kidney" is a trauma's (S37.0-)
    ("aki",): ("acute", "kidney", "failure"),
    ("acute", "kidney", "injury"): ("kidney", "failure"),
    ("dvt",): ("deep", "vein", "thrombosis"),
    ("afib",): ("atrial", "fibrillation"),
    ("nstemi",): ("non", "st", "elevation", "myocardial", "infarction"),
    ("stemi",): ("st", "elevation", "myocardial", "infarction"),
    ("mi",): ("myocardial", "infarction"),
    ("cva",): ("cerebral", "infarction"),
    ("tia",): ("transient", "ischemic", "attack"),
    ("osa",): ("obstructive", "sleep", "apnea"),
    ("bph",): ("benign", "prostatic", "hyperplasia"),
    ("pna",): ("pneumonia",),
    # "an alcoholic" is alcohol dependence (Index: Alcoholism F10.20); "alcoholic
    # cirrhosis" is not
    ("an", "alcoholic"): ("alcohol", "dependence"),
    ("alcoholism",): ("alcohol", "dependence"),
    ("clot",): ("thrombosis",),  # "a blood clot in the popliteal vein": I82.43-
    ("clots",): ("thrombosis",),
    ("dka",): ("diabetic", "ketoacidosis"),
    # the DTs: delirium tremens (Index: Delirium, tremens (alcohol-induced) F10.231)
    ("dts",): ("delirium", "tremens"),
    ("hhs",): ("hyperosmolarity",),
    # blood sugar in a patient's words (R73.9 "Hyperglycemia, unspecified", E16.2)
    ("high", "blood", "sugar"): ("hyperglycemia",),
    ("elevated", "blood", "sugar"): ("hyperglycemia",),
    ("high", "sugar"): ("hyperglycemia",),
    ("low", "blood", "sugar"): ("hypoglycemia",),
    # the tabular list's "intestine" (K56.6-: "intestinal obstruction"): the bowel
    ("bowel",): ("intestine",),
    # ... and diverticular disease of the sigmoid or colon is of its large intestine (K57.2-,
    # K57.3-); only there: the colon's own codes (C18.7 "sigmoid colon") name it in its words
    **{
        (site, disease): ("large", "intestine")
        for site in ("sigmoid", "colon", "colonic")
        for disease in ("diverticulitis", "diverticulosis", "diverticular")
    },
    ("gi", "bleed"): ("gastrointestinal", "hemorrhage"),
    ("gi", "bleeding"): ("gastrointestinal", "hemorrhage"),
    ("mssa",): ("methicillin", "susceptible", "staphylococcus", "aureus"),
    ("threw", "up"): ("vomiting",),
    ("throwing", "up"): ("vomiting",),
    ("belly",): ("abdominal",),
    ("tummy",): ("abdominal",),
    ("stomachache",): ("abdominal", "pain"),
    ("bruise",): ("contusion",),
    ("bruised",): ("contusion",),
    ("bruising",): ("contusion",),
    ("cut",): ("laceration",),
    ("fainted",): ("syncope",),
    ("passed", "out"): ("syncope",),
    ("flu",): ("influenza",),
    # pleuritic chest pain is pleurodynia (Index: Pain, pleura, pleuritic R07.81)
    ("pleuritic", "chest", "pain"): ("pleurodynia",),
    ("pleuritic", "pain"): ("pleurodynia",),
    ("stone",): ("calculus",),
    ("stones",): ("calculus",),
    # gallstones: cholecystitis with them is K80.0-/K80.1- "Calculus of gallbladder with ...
    # cholecystitis" (K81 Excludes1 "cholecystitis with cholelithiasis (K80.-)"); pancreatitis
    # from them is biliary (Index: Pancreatitis, acute, biliary K85.1-; gallstone K85.1-)
    ("calculous",): ("calculus", "gallbladder"),
    ("gallstones",): ("calculus", "gallbladder"),  # "gallstone pancreatitis" is no K80
    ("gallstone", "pancreatitis"): ("biliary",),
    # an ulcer of a lower-limb site is non-pressure and chronic unless told a pressure ulcer
    # (Index: Ulcer, lower limb (nonpressure) L97.9-, heel L97.4-: the title words are the
    # Index's nonessential modifiers); the heel's code is "heel and midfoot". A "foot ulcer"
    # names no site code of its own (L97.4 heel and midfoot, L97.5 other part of foot): a
    # diabetic one is E11.621, whose site linking.py reads
    **{
        (site, "ulcer"): ("non", "pressure", "chronic")
        for site in ("ankle", "calf", "leg", "thigh", "shin", "midfoot")
    },
    ("heel", "ulcer"): ("non", "pressure", "chronic", "midfoot"),
    # ... told after the ulcer: "an ulcer on the left heel", "ulcer of the right calf"
    **{
        ("ulcer", link, *side, site): (
            ("non", "pressure", "chronic", "midfoot")
            if site == "heel"
            else ("non", "pressure", "chronic")
        )
        for link in ("on", "of", "over")
        for side in ((), ("the",), ("the", "left"), ("the", "right"), ("left",), ("right",))
        for site in ("ankle", "calf", "leg", "thigh", "shin", "midfoot", "heel")
    },
    # Index: Boil - see Furuncle (L02.-; "boiling" water is none: it does not stem to "boil")
    ("boil",): ("furuncle",),
    ("boils",): ("furuncle",),
    ("butt",): ("buttock",),
    ("tb",): ("tuberculosis",),
    # Index: Bleeding - see Hemorrhage, for the lesions whose codes say "with hemorrhage"
    # ("bleeding duodenal ulcer" K26.4); not a bleeding alone, which the narrative's other
    # codes usually explain (R58 "Hemorrhage NEC" on CodiEsp dev: 13 wrong of 15)
    **{
        ("bleeding", lesion): ("hemorrhage",)
        for lesion in (
            *("ulcer", "ulcers", "duodenal", "gastric", "peptic", "esophageal", "varices"),
            *("diverticulum", "diverticulosis", "hemorrhoids", "hemorrhoid"),
        )
    },
    # "with bleeding" said of a lesion is the tabular list's "with hemorrhage" ("acute gastric
    # ulcer with active bleeding" K25.0); blood vomited is hematemesis (Index: Vomiting,
    # blood - see Hematemesis K92.0)
    **{
        (lesion, "with", *active, "bleeding"): ("hemorrhage",)
        for lesion in (
            *("ulcer", "ulcers", "ulceration", "varices", "diverticulosis", "diverticulitis"),
            *("hemorrhoids", "gastritis", "duodenitis", "esophagitis", "angiodysplasia"),
        )
        for active in ((), ("active",))
    },
    ("coughing", "up", "blood"): ("hemoptysis",),
    # AML is the tabular list's "acute myeloblastic leukemia" (C92.0-; Index: Leukemia,
    # myeloid, acute C92.0-)
    ("aml",): ("acute", "myeloblastic", "leukemia"),
    ("mca",): ("middle", "cerebral", "artery"),
    ("aortic",): ("aorta",),
    # a type A dissection is of the ascending aorta, type B of the descending (I71.01-)
    ("type", "a", "aortic"): ("ascending",),
    ("type", "b", "aortic"): ("descending",),
    ("shin", "bone"): ("tibia",),
    ("shinbone",): ("tibia",),
    # the tabular list says "lower limb" where a narrative says "leg" (cellulitis, ulcer,
    # thrombosis, L03.11-, I80.-), and "lower leg" for injuries (S80-S89), which "leg" covers
    ("leg",): ("lower", "limb"),
    ("legs",): ("lower", "limbs"),
    ("arm",): ("upper", "limb"),
    ("arms",): ("upper", "limbs"),
    # and a part of a limb is in it: Index "Cellulitis, foot - see Cellulitis, lower limb"
    # (L03.11-; toes and fingers have codes of their own, L03.0-)
    **{(part,): ("upper", "limb") for part in _UPPER_LIMB_PARTS},
    **{(part,): ("lower", "limb") for part in _LOWER_LIMB_PARTS},
    # the tabular list names the ends of long bones "upper" and "lower", not proximal and distal
    ("distal",): ("lower", "end"),
    ("proximal",): ("upper", "end"),
    # a malleolus is the lower leg's (S82.5-S82.8: "bimalleolar fracture of lower leg")
    **{(word,): ("lower", "leg") for word in ("bimalleolar", "trimalleolar", "malleolar")},
    # a trochanter is the femur's (S72.1-: "intertrochanteric fracture of femur")
    ("intertrochanteric",): ("femur",),
    ("subtrochanteric",): ("femur",),
    ("pertrochanteric",): ("femur",),
    # an organ's adjective where the Neoplasm Table and the tabular titles name the organ:
    # "pancreatic cancer" is a "malignant neoplasm of pancreas" (C25.9)
    ("pancreatic",): ("pancreas",),
    ("hepatic",): ("liver",),
    ("gastric",): ("stomach",),
    ("ovarian",): ("ovary",),
    # a twisted joint is sprained, an organ twisted on itself is its torsion (Index: Twist,
    # joint - see Sprain; Torsion, ovary N83.51-; testis N44.0-)
    ("twisted",): ("sprain", "torsion"),
    ("prostatic",): ("prostate",),
    ("esophageal",): ("esophagus",),
    ("laryngeal",): ("larynx",),
    ("testicular",): ("testis",),
    ("uterine",): ("uterus",),
    ("colonic",): ("colon",),
    ("rectal",): ("rectum",),
    ("ureteral",): ("ureter",),
    # an embolic or cardioembolic infarct is one "due to embolism" (Index: Infarction,
    # cerebral, embolic I63.4-)
    ("cardioembolic",): ("embolism",),
    ("embolic",): ("embolism",),
    # diverticular disease with no site told is of the intestine, part unspecified (Index:
    # Diverticulitis K57.92; Diverticulosis K57.90; Disease, diverticular K57.90), which no
    # narrative says; the colon's is of the large intestine told after the disease too
    # ("diverticulitis of the sigmoid colon": K57.32)
    **{(disease,): ("intestine",) for disease in ("diverticulitis", "diverticulosis")},
    ("diverticular", "disease"): ("diverticulosis", "intestine"),
    **{
        (disease, *between, site): ("large", "intestine")
        for disease in ("diverticulitis", "diverticulosis")
        for between in (("of", "the"), ("of",), ("in", "the"), ("involving", "the"))
        for site in ("sigmoid", "colon", "cecum", "descending", "ascending")
    },
    # coronary artery disease is atherosclerotic heart disease of the native coronary artery
    # (Index: Disease, coronary (artery) I25.10; Arteriosclerosis, coronary (artery), native
    # vessel I25.10, with angina pectoris I25.11-)
    ("cad",): ("coronary", "artery", "disease", "atherosclerotic", "heart", "native"),
    ("coronary", "artery", "disease"): ("atherosclerotic", "heart", "native"),
    ("coronary", "disease"): ("atherosclerotic", "heart", "native", "artery"),
    # heart failure with reduced ejection fraction is systolic, with preserved ejection fraction
    # diastolic (Index: Failure, heart, with reduced ejection fraction - see Failure, heart,
    # systolic I50.2-; with preserved ejection fraction - see Failure, heart, diastolic I50.3-)
    # Index: Angina (attack) (cardiac) (chest) (heart) (pectoris) (syndrome) I20.9: the
    # tabular list's "angina pectoris" (I25.11- "... with unstable angina pectoris")
    ("angina",): ("pectoris",),
    # a lobe told alone is the lung's (Index: Neoplasm, lung, upper lobe C34.1-; Pneumonia,
    # lobar); the abbreviations name the side too
    ("upper", "lobe"): ("lung",),
    ("middle", "lobe"): ("lung",),
    ("lower", "lobe"): ("lung",),
    ("rul",): ("right", "upper", "lobe", "lung"),
    ("rml",): ("right", "middle", "lobe", "lung"),
    ("rll",): ("right", "lower", "lobe", "lung"),
    ("lul",): ("left", "upper", "lobe", "lung"),
    ("lll",): ("left", "lower", "lobe", "lung"),
    # AV is atrioventricular (I44.- "Atrioventricular block"; Index: Block, AV - see Block,
    # atrioventricular)
    ("av",): ("atrioventricular",),
    # C. diff is Clostridium difficile, its colitis an enterocolitis (Index: Colitis,
    # Clostridium difficile A04.72; Enterocolitis due to Clostridium difficile A04.7-)
    ("c", "diff"): ("clostridium", "difficile", "enterocolitis"),
    ("c", "difficile"): ("clostridium", "difficile", "enterocolitis"),
    ("cdiff",): ("clostridium", "difficile", "enterocolitis"),
    ("clostridioides",): ("clostridium",),
    # a norovirus infection is the acute gastroenteropathy of its inclusion term (Index:
    # Infection, Norovirus A08.11; Gastroenteritis, viral, Norwalk agent A08.11)
    ("norovirus",): ("acute", "gastroenteropathy"),
    ("norwalk",): ("acute", "gastroenteropathy"),
    # Graves' disease is thyrotoxicosis with diffuse goiter, its storm a thyrotoxic crisis
    # (Index: Disease, Graves' E05.00; Thyrotoxicosis, with goiter, diffuse, with thyroid
    # storm E05.01)
    ("graves",): ("thyrotoxicosis", "diffuse", "goiter"),
    ("thyroid", "storm"): ("thyrotoxic", "crisis", "storm"),
    # a saddle embolus is of the pulmonary artery (I26.02, I26.92: "Saddle embolus of pulmonary
    # artery"); familial dilated cardiomyopathy is familial-genetic (FY2027 I42.01)
    ("saddle", "pulmonary"): ("artery",),
    ("saddle", "embolus"): ("pulmonary", "artery"),
    ("saddle", "pe"): ("embolus", "pulmonary", "artery"),
    ("familial", "dilated"): ("genetic",),
    ("hfref",): ("systolic", "heart", "failure"),
    ("hfpef",): ("diastolic", "heart", "failure"),
    ("reduced", "ejection", "fraction"): ("systolic",),
    ("preserved", "ejection", "fraction"): ("diastolic",),
    # a hematoma or bleed inside the skull is a hemorrhage there (Index: Hematoma, subdural
    # (nontraumatic) I62.00, traumatic S06.5-; epidural I62.1, S06.4-; brain I61.9); a
    # "brain bleed" is an intracranial hemorrhage (Index: Hemorrhage, brain I61.9)
    **{
        (site, lay): (site, "hemorrhage")
        for site in ("subdural", "epidural", "extradural", "subarachnoid", "intracerebral")
        for lay in ("hematoma", "bleed", "bleeding")
    },
    ("brain", "bleed"): ("intracerebral", "hemorrhage"),
    ("brain", "hemorrhage"): ("intracerebral",),
}
#: First word of a lay phrase -> the lengths of the lay phrases it opens, longest first.
_LAY_SIZES: Final[dict[str, tuple[int, ...]]] = {
    first: tuple(sorted({len(k) for k in _LAY if k[0] == first}, reverse=True))
    for first in {k[0] for k in _LAY}
}
# Two-word lay phrases whose words mean nothing on their own: read as the clinical words only
# (see in_clinical_words). "Asthma attack" is no "attack" of G45.9 "Transient cerebral ischemic
# attack", which training documents code for the word alone (a CC: DRG 202 for 203).
_LAY_WHOLE: Final[dict[tuple[str, ...], tuple[str, ...]]] = {
    ("heart", "attack"): ("myocardial", "infarction"),
    ("asthma", "attack"): ("asthma",),
    ("asthmatic", "attack"): ("asthma",),
    ("panic", "attack"): ("panic", "disorder"),  # Index: Attack, panic F41.0
    ("panic", "attacks"): ("panic", "disorder"),
    # acute myeloid leukemia is the tabular list's acute myeloblastic leukemia (C92.0-), not
    # also C92.9- "Myeloid leukemia, unspecified"
    ("acute", "myeloid"): ("acute", "myeloblastic"),
    # blood vomited is hematemesis (Index: Vomiting, blood - see Hematemesis K92.0), no R11
    ("vomiting", "blood"): ("hematemesis",),
    ("vomited", "blood"): ("hematemesis",),
    ("vomits", "blood"): ("hematemesis",),
}

_local = threading.local()


def _stemmer() -> Stemmer.Stemmer:
    stemmer: Stemmer.Stemmer | None = getattr(_local, "stemmer", None)
    if stemmer is None:
        stemmer = Stemmer.Stemmer("english")
        _local.stemmer = stemmer
    return stemmer


#: Body sites a side word names ("right wrist", "left lower leg"), for telling a side from
#: "left ventricular" or "I left the house".
BODY_SITES: Final = frozenset(
    """arm arms forearm elbow wrist hand hands finger fingers thumb shoulder leg legs thigh knee
    calf shin ankle foot feet heel toe toes hip femur tibia fibula radius ulna humerus clavicle
    collarbone rib ribs patella kneecap""".split()  # noqa: SIM905 - a word list reads as text
)
#: "R" and "L" as the side of a body site, and the sites they are read before (a site of
#: BODY_SITES, a lung lobe, an extremity, a paired organ).
_SIDE_LETTERS: Final = {"r": "right", "l": "left"}
_LETTER_SITES: Final = BODY_SITES | frozenset(
    """upper lower lung breast kidney eye ear ovary testis groin buttock lobe extremity
    extremities sided side ureter ureteral renal mca aca pca ica carotid vertebral
    middle anterior posterior internal femoral""".split()  # noqa: SIM905
)
SITE_GAP: Final = 2  # words a side may stand before its site ("right lower leg")
SIDES: Final = frozenset({"left", "right"})  # words and stems alike


def sides_before_site(words: Sequence[str], sites: AbstractSet[str]) -> list[str]:
    """The side words of ``words`` (words or stems) that a body site of ``sites`` follows
    within :data:`SITE_GAP` words: "right lower leg", not "left ventricular" nor "I left"."""
    return [
        w
        for i, w in enumerate(words)
        if w in SIDES and not sites.isdisjoint(words[i + 1 : i + 1 + SITE_GAP])
    ]


# Latin species epithets that the stemmer would fold into a disease's name: "Klebsiella
# pneumoniae" and "Haemophilus influenzae" are organisms (B96.1, B96.3), not pneumonia or
# influenza. They are kept as written, in code texts and narratives alike.
# So is "boiling" (water, X12), which the stemmer makes "boil", a furuncle (L02.-: "boil of
# limb").
_UNSTEMMED: Final = frozenset({"pneumoniae", "influenzae", "boiling"})
# An inflammation ("-itis") is no adjective of its organ: the stemmer gives "pancreatitis" and
# "pancreatic" one stem ("pancreat"), so "pancreatic cancer" named acute pancreatitis (K85.90),
# "sinus tachycardia" sinusitis, "esophageal varices" esophagitis. Such words keep their spelling.
_INFLAMMATION: Final = "itis"


def stem(words: Sequence[str]) -> list[str]:
    stemmed: list[str] = _stemmer().stemWords(list(words))
    return [
        w if w in _UNSTEMMED or w.endswith(_INFLAMMATION) else s
        for w, s in zip(words, stemmed, strict=True)
    ]


def sentences(text: str) -> list[str]:
    return [s for s in (part.strip() for part in _SENTENCE_END.split(text)) if s]


def _folded(text: str) -> str:
    """``text`` without diacritics: "Sjögren", "Behçet", "Ménière" as the narratives that write
    them in ASCII ("Sjogren") do. Only when there are any (most texts are ASCII)."""
    if text.isascii():
        return text
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def words(text: str) -> list[str]:
    """Lower-cased words and clause punctuation, with "n't" spelled "not", and "R" and "L"
    before a body site spelled "right" and "left" ("R calf cellulitis", "L tibia")."""
    lowered = _NOT.sub(" not", _folded(text).lower())
    lowered = _ROMAN.sub(lambda m: f"{m.group(1)} {_ROMAN_DIGIT[m.group(2)]}", lowered)
    tokens: list[str] = _TOKEN.findall(lowered)
    for i in range(len(tokens) - 1):
        side = _SIDE_LETTERS.get(tokens[i])
        if side is not None and (tokens[i + 1] in _LETTER_SITES):
            tokens[i] = side
    return tokens


def contains(tokens: Sequence[str], phrase: tuple[str, ...]) -> bool:
    """Whether ``phrase`` occurs in ``tokens`` as consecutive tokens."""
    return any(tuple(tokens[i : i + len(phrase)]) == phrase for i in range(len(tokens)))


def is_word(token: str) -> bool:
    return token not in CLAUSE_BREAKS


#: Things "broken" describes that are no bone: "I cut my hand on broken glass".
BROKEN_THINGS: Final = frozenset(
    {"glass", "bottle", "bottles", "window", "windows", "mirror", "plate", "plates", "cup"}
    | {"dish", "dishes", "piece", "pieces", "ceramic", "china", "tile", "tiles", "furniture"}
)


def broken_thing(tokens: Sequence[str], i: int) -> bool:
    """Whether ``tokens[i]`` is "broken" said of a thing ("broken glass"), not of a bone."""
    return tokens[i] == "broken" and i + 1 < len(tokens) and tokens[i + 1] in BROKEN_THINGS


class _Veto(NamedTuple):
    """A lay phrase's first word is not read as its clinical words when one of ``words`` stands
    within ``before`` words before it or ``after`` words after it."""

    words: frozenset[str]
    before: int
    after: int


#: The readings of _LAY a neighbouring word undoes:
#: - Ludwig's angina K12.2 (cellulitis of the floor of the mouth), Vincent's angina A69.1 and
#:   abdominal (intestinal) angina K55.1 are no angina pectoris;
#: - "CVA tenderness", at the costovertebral angle, a sign of the kidney, is no stroke;
#: - a limb part beside a named long bone is the bone's end, not the limb ("the end of my
#:   radius near the wrist": S52.50-, not the "upper" limb's "upper end").
_VETOES: Final[dict[str, _Veto]] = {
    "angina": _Veto(
        frozenset({"ludwig", "ludwigs", "vincent", "vincents", "abdominal", "intestinal"})
        | {"mesenteric"},
        before=2,
        after=0,
    ),
    "cva": _Veto(frozenset({"tenderness"}), before=0, after=1),
    **dict.fromkeys(
        (*_UPPER_LIMB_PARTS, *_LOWER_LIMB_PARTS),
        _Veto(LONG_BONES, before=_BONE_REACH, after=_BONE_REACH),
    ),
}


def lay_expansions(tokens: Sequence[str]) -> list[str]:
    """Clinical words for the lay phrases in ``tokens`` (to be added to a query, not replace it)."""
    extra: list[str] = []
    for start in range(len(tokens)):
        if broken_thing(tokens, start):
            continue
        veto = _VETOES.get(tokens[start])
        if veto is not None and not veto.words.isdisjoint(
            tokens[max(0, start - veto.before) : start + 1 + veto.after]
        ):
            continue
        left = len(tokens) - start
        for size in reversed(_LAY_SIZES.get(tokens[start], ())):
            if size > left:
                continue
            clinical = _LAY.get(tuple(tokens[start : start + size]))
            if clinical is not None:
                extra.extend(clinical)
    return extra


def in_clinical_words(tokens: Sequence[str]) -> list[str]:
    """``tokens`` with each lay phrase of :data:`_LAY_WHOLE` replaced by its clinical words."""
    out: list[str] = []
    i = 0
    while i < len(tokens):
        pair = tuple(tokens[i : i + 2])
        if pair in _LAY_WHOLE:
            out.extend(_LAY_WHOLE[pair])
            i += 2
        else:
            out.append(tokens[i])
            i += 1
    return out


def content_stems(tokens: Sequence[str]) -> list[str]:
    """Stems of the non-stop words of ``tokens``, in order."""
    kept = [t for t in tokens if t not in STOPWORDS and is_word(t)]
    return stem(kept) if kept else []


@functools.cache
def _lay_stems() -> dict[str, frozenset[str]]:
    return {
        stem(list(lay))[0]: frozenset(content_stems(list(clinical)))
        for lay, clinical in _LAY.items()
        if len(lay) == 1
    }


def clinical_stems(stems: Iterable[str]) -> set[str]:
    """``stems`` with each one-word lay term's stem replaced by the stems of its clinical
    words ("copd" -> chronic, obstruct, pulmonari, diseas)."""
    lay = _lay_stems()
    out: set[str] = set()
    for s in stems:
        out |= lay.get(s, {s})
    return out
