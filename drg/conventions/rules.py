"""ICD-10-CM's own rules for a claim's set of codes, as data plus small functions.

Each rule reads the claim's codes (undotted, billable in the claim's release, in the coder's
order) and returns what it changes as :class:`Adjustment` records; :mod:`drg.conventions.apply`
runs them in the order of :data:`RULES`. Sources: ICD-10-CM Official Guidelines for Coding and
Reporting FY2026/FY2027 (section numbers below) and the tabular list of the claim's release
(Excludes1, "code first" and "use additional code" notes, ``drg.conventions.notes``).

No rule invents a diagnosis the codes do not already state: a combination code replaces the
codes it combines, everything else drops or moves codes.
"""

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, Literal, Protocol

from drg.codeset.hierarchy import unspecified_root
from drg.codeset.memory import MemoryCodeSet

Action = Literal["dropped", "added", "moved", "replaced"]
#: Rule tokens, as claims.coded reports them.
Rule = Literal["combination", "redundant", "symptom", "excludes1", "sequencing"]


@dataclass(frozen=True, slots=True)
class Adjustment:
    """One change to a claim's codes: ``code`` (undotted) was ``action`` under ``rule``;
    ``other`` is the code that made it so (kept instead, replacing it, or moved before)."""

    code: str
    action: Action
    rule: Rule
    other: str | None
    guideline: str  # section of the Official Guidelines, e.g. "I.A.12.a"


class CodeRefs(Protocol):
    def matches(self, code: str) -> bool: ...


class Notes(Protocol):
    """What the rules read of the tabular list (``drg.conventions.notes.TabularNotes``)."""

    def excludes1_pair(self, a: str, b: str) -> bool: ...

    def code_first(self, code: str) -> Sequence[CodeRefs]: ...

    def use_additional(self, code: str) -> Sequence[CodeRefs]: ...


@dataclass(frozen=True, slots=True)
class Context:
    codeset: MemoryCodeSet  # of the claim's release
    notes: Notes


def _within(code: str, low: str, high: str) -> bool:
    """``code`` in the inclusive range of prefixes ``low``..``high`` (same length)."""
    return low <= code[: len(low)] <= high


# --- I.C.9.a: hypertension with heart disease and/or chronic kidney disease ---------------------

HYPERTENSION: Final = frozenset(
    {"I10", "I110", "I119", "I120", "I129", "I130", "I1310", "I1311", "I132"}
)
CKD_STAGE_5: Final = frozenset({"N185", "N186"})


def _heart_disease(code: str) -> bool:
    """The heart conditions I.C.9.a.1 links to hypertension: I50.-, I51.4-I51.7, I51.89,
    I51.9."""
    return code.startswith("I50") or _within(code, "I514", "I517") or code in {"I5189", "I519"}


#: Diabetes (E08-E13) "with" a condition the Index lists under it, a link the classification
#: presumes (I.A.15): the condition's code -> the diabetes code's characters after the category,
#: and whether the condition's code stays ("use additional code" for the CKD stage) or is part
#: of the combination code (E11.42 "diabetic polyneuropathy" is G62.9's polyneuropathy).
DIABETES_WITH: Final[tuple[tuple[str, str, bool], ...]] = (
    ("N18", "22", True),  # Diabetes, with, chronic kidney disease
    ("G629", "42", False),  # Diabetes, with, polyneuropathy (Neuropathy, peripheral: see it)
    ("E162", "649", False),  # Diabetes, with, hypoglycemia (without coma): E16.2 is in it
    # Diabetes, with, hypoglycemia, with coma: E15 "Nondiabetic hypoglycemic coma" Excludes1
    # diabetes with hypoglycemic coma (E09.641, E10.641, E11.641, E13.641)
    ("E15", "641", False),
    ("R739", "65", False),  # Diabetes, with, hyperglycemia: R73.9 is in it
    ("K3184", "43", True),  # Diabetes, with, gastroparesis (E11.43; code also K31.84)
    # Diabetes, with, foot ulcer E11.621 and skin ulcer NEC E11.622, each "use additional code
    # to identify site of ulcer" (E11.621: L97.4-, L97.5-; E11.622: L97.1-L97.9, L98.41-L98.49)
    ("L974", "621", True),
    ("L975", "621", True),
    *((f"L97{n}", "622", True) for n in (1, 2, 3, 8, 9)),
    ("L984", "622", True),
)
DIABETES: Final = frozenset({"E08", "E09", "E10", "E11", "E13"})
#: What a diabetes code says of its complications when it may take a linked one's place:
#: "without complications" (E11.9), and "neuropathy, unspecified" for a polyneuropathy (E11.40).
#: How many characters of a linked code name its group of complications (E11.2- kidney); a
#: foot ulcer and another skin ulcer are each coded (E11.621 and E11.622, one per site kind).
_DIABETES_GROUP: Final = {"649": 5, "641": 5, "65": 5, "43": 5, "621": 6, "622": 6}
_DIABETES_UNLINKED: Final = {
    "22": ("9",),
    "42": ("9", "40"),
    "649": ("9",),
    "641": ("9", "649"),
    "65": ("9",),
    "43": ("9", "40"),
    "621": ("9",),
    "622": ("9",),
}


def combination(codes: list[str], ctx: Context) -> list[Adjustment]:
    """Hypertension with heart disease and/or CKD is one combination code, never I10 beside
    them (I.C.9.a.1-3: the causal relationship is presumed). The target follows the heart
    failure (I50.-) and CKD stage (N18.-) codes when present, else what the hypertension codes
    themselves say; it takes the place of the first hypertension code, the others go.

    Diabetes with CKD, polyneuropathy, hypoglycemia, hyperglycemia or gastroparesis likewise
    (I.A.15, :data:`DIABETES_WITH`): E11.9 "without complications" beside N18.4 becomes
    E11.22, and N18.4 stays for the stage; beside G62.9 it becomes E11.42, which includes the
    polyneuropathy; beside E16.2, E11.649.

    A condition told both acute and chronic with one code for the pair is that code
    (:func:`_acute_on_chronic`, I.B.9). Coronary atherosclerosis with angina is one code
    (:func:`_coronary_with_angina`, I.C.9.b), and COPD with a lower respiratory infection
    J44.0 (:func:`_copd_with_infection`, I.A.15)."""
    changes = _acute_on_chronic(codes, ctx)
    changes += _diabetes_with(codes, ctx)
    changes += _coronary_with_angina(codes, ctx)
    changes += _copd_with_infection(codes, ctx)
    htn = [c for c in codes if c in HYPERTENSION]
    if not htn:
        return changes
    heart_codes = [c for c in codes if _heart_disease(c)]
    ckd_codes = [c for c in codes if c.startswith("N18")]
    heart = bool(heart_codes) or any(c[:3] in {"I11", "I13"} for c in htn)
    kidney = bool(ckd_codes) or any(c[:3] in {"I12", "I13"} for c in htn)
    if any(c.startswith("I50") for c in codes):
        failure = True
    else:
        failure = any(c in {"I110", "I130", "I132"} for c in htn)
    if ckd_codes:
        stage5 = any(c in CKD_STAGE_5 for c in ckd_codes)
    else:
        stage5 = any(c in {"I120", "I1311", "I132"} for c in htn)
    if heart and kidney:
        target = {(True, False): "I130", (True, True): "I132", (False, False): "I1310"}.get(
            (failure, stage5), "I1311"
        )
    elif heart:
        target = "I110" if failure else "I119"
    elif kidney:
        target = "I120" if stage5 else "I129"
    else:
        target = "I10"
    if htn == [target] or target not in ctx.codeset.records:
        return changes
    guideline = "I.C.9.a"
    first = htn[0]
    if target in htn:
        first = target
    elif first != target:
        changes.append(Adjustment(first, "replaced", "combination", target, guideline))
        codes[codes.index(first)] = target
    for code in htn:
        if code not in (first, target) and code in codes:
            codes.remove(code)
            changes.append(Adjustment(code, "dropped", "combination", target, guideline))
    return changes


# --- I.C.9.b: atherosclerotic heart disease with angina pectoris ------------------------------

#: Angina (I20) -> the combination code of native coronary atherosclerosis with it (I25.11-
#: titles; I25.10 says "without angina pectoris").
CORONARY_WITH_ANGINA: Final[dict[str, str]] = {
    "I200": "I25110",  # unstable angina
    "I201": "I25111",  # with documented spasm
    "I202": "I25112",  # refractory
    "I208": "I25118",  # other forms (I20.81 microvascular dysfunction, I20.89)
    "I209": "I25119",  # unspecified
}
CORONARY_WITHOUT_ANGINA: Final = "I2510"


def _coronary_with_angina(codes: list[str], ctx: Context) -> list[Adjustment]:
    """I25.10 beside angina (I20.-) is the I25.11- code of that angina, and the angina goes:
    "A causal relationship can be assumed in a patient with both atherosclerosis and angina
    pectoris ... it is not necessary to use an additional code for angina pectoris"
    (I.C.9.b). Beside an I25.11- code already, the I20 code goes. The most specific angina
    decides (I20.0 before I20.9)."""
    angina = [c for c in codes if c.startswith("I20")]
    if not angina:
        return []
    combined = next((c for c in codes if c.startswith("I2511")), None)
    changes: list[Adjustment] = []
    if combined is None:
        if CORONARY_WITHOUT_ANGINA not in codes:
            return []
        first = min(angina, key=lambda c: c.startswith("I209"))
        target = CORONARY_WITH_ANGINA.get(first[:4], "")
        if not ctx.codeset.is_billable(target):
            return []
        changes.append(_combine(codes, CORONARY_WITHOUT_ANGINA, target, "I.C.9.b"))
        combined = target
    for code in angina:
        codes.remove(code)
        changes.append(Adjustment(code, "dropped", "combination", combined, "I.C.9.b"))
    return changes


# --- I.A.15: chronic obstructive pulmonary disease with a lower respiratory infection -----------

COPD_UNSPECIFIED: Final = "J449"
COPD_WITH_EXACERBATION: Final = "J441"
COPD_WITH_INFECTION: Final = "J440"
#: Acute lower respiratory infections (influenza and pneumonia J09-J18, acute bronchitis and
#: bronchiolitis J20-J21, unspecified acute lower respiratory infection J22).
LOWER_RESPIRATORY_INFECTION: Final = ("J09-J18", "J20-J22")


def _copd_with_infection(codes: list[str], ctx: Context) -> list[Adjustment]:
    """COPD beside an acute lower respiratory infection is J44.0 "Chronic obstructive pulmonary
    disease with (acute) lower respiratory infection" (Index: Disease, lung, obstructive
    (chronic), with, lower respiratory infection (acute) J44.0; I.A.15 "with"), whose tabular
    note says "Code also to identify the infection": the infection stays. J44.9 is replaced;
    beside J44.1 "with (acute) exacerbation", which says nothing of an infection, J44.0 is
    added after it (each "with" its own code). "Pseudomonas pneumonia. PMH: COPD" is J15.1,
    J44.0: DRG 178 with CC, not J44.9's 179."""
    if COPD_WITH_INFECTION in codes or not any(
        _matches(c, p) for c in codes for p in LOWER_RESPIRATORY_INFECTION
    ):
        return []
    if not ctx.codeset.is_billable(COPD_WITH_INFECTION):
        return []
    if COPD_UNSPECIFIED in codes:
        return [_combine(codes, COPD_UNSPECIFIED, COPD_WITH_INFECTION, "I.A.15")]
    if COPD_WITH_EXACERBATION in codes:
        codes.insert(codes.index(COPD_WITH_EXACERBATION) + 1, COPD_WITH_INFECTION)
        return [
            Adjustment(
                COPD_WITH_INFECTION, "added", "combination", COPD_WITH_EXACERBATION, "I.A.15"
            )
        ]
    return []


# --- I.B.8, I.B.9: one condition, acute and chronic, where one code says both ------------------

_ACUTE: Final = "acute "
_CHRONIC: Final = "chronic "
_BOTH: Final = ("acute on chronic ", "acute and chronic ")


def _both_code(codeset: MemoryCodeSet, category: str, condition: str) -> str | None:
    """The code of ``category`` (its listed descendants, ``MemoryCodeSet.children``) titled
    "Acute on chronic <condition>" or "Acute and chronic <condition>", if any."""
    wanted = {both + condition for both in _BOTH}
    pending = list(codeset.children.get(category, ()))
    while pending:
        code = pending.pop()
        if codeset.records[code].description.lower() in wanted:
            return code
        pending.extend(codeset.children.get(code, ()))
    return None


def _combine(codes: list[str], code: str, target: str, guideline: str) -> Adjustment:
    """``code`` gives way to the combination code ``target``: replaced in place, or dropped
    when ``target`` is coded already."""
    if target in codes:
        codes.remove(code)
        return Adjustment(code, "dropped", "combination", target, guideline)
    codes[codes.index(code)] = target
    return Adjustment(code, "replaced", "combination", target, guideline)


def _acute_on_chronic(codes: list[str], ctx: Context) -> list[Adjustment]:
    """A condition told both acute and chronic, where the classification has one code for the
    pair, is that code (I.B.8: both codes only where the Index lists acute and chronic as
    separate subentries; here it lists "acute on chronic", a combination code, I.B.9): I50.31
    "Acute diastolic (congestive) heart failure" and I50.32 "Chronic ..." are I50.33 "Acute on
    chronic diastolic (congestive) heart failure"; J96.01 and J96.11 are J96.21 "Acute and
    chronic respiratory failure with hypoxia". Found by title, in the same category; the
    combination code takes the acute code's place, the chronic one goes."""
    records = ctx.codeset.records
    titles = {c: records[c].description.lower() for c in codes if c in records}
    changes: list[Adjustment] = []
    for acute in list(codes):
        title = titles.get(acute, "")
        if acute not in codes or not title.startswith(_ACUTE) or title.startswith(_BOTH):
            continue
        condition = title[len(_ACUTE) :]
        chronic = next((c for c in codes if titles.get(c) == _CHRONIC + condition), None)
        if chronic is None:
            continue
        target = _both_code(ctx.codeset, acute[:3], condition)
        if target is None or not records[target].billable:
            continue
        changes.append(_combine(codes, acute, target, "I.B.9"))
        codes.remove(chronic)
        changes.append(Adjustment(chronic, "dropped", "combination", target, "I.B.9"))
    return changes


def _diabetes_with(codes: list[str], ctx: Context) -> list[Adjustment]:
    changes: list[Adjustment] = []
    for condition, suffix, stays in DIABETES_WITH:
        linked = next((c for c in codes if c.startswith(condition)), None)
        if linked is None:
            continue
        for code in list(codes):
            if code[:3] not in DIABETES or code[3:] not in _DIABETES_UNLINKED[suffix]:
                continue
            target = code[:3] + suffix
            record = ctx.codeset.records.get(target)
            if record is None or not record.billable:
                continue
            changes.append(_combine(codes, code, target, "I.A.15"))
            if not stays and linked in codes:
                codes.remove(linked)
                changes.append(Adjustment(linked, "dropped", "combination", target, "I.A.15"))
            break
        else:
            changes += _diabetes_also_with(codes, ctx, linked, suffix, stays)
    return changes


def _diabetes_also_with(
    codes: list[str], ctx: Context, linked: str, suffix: str, stays: bool
) -> list[Adjustment]:
    """A diabetes code that already says "with" another complication (E11.65 "with
    hyperglycemia") stays, and the linked condition's combination code is added after it
    (E11.22 beside E11.65 and N18.32): as many E08-E13 codes as the associated conditions need
    (I.C.4.a). Not when a code of the same group is there (E11.21 diabetic nephropathy beside
    N18.3-)."""
    diabetes = next((c for c in codes if c[:3] in DIABETES), None)
    if diabetes is None:
        return []
    target = diabetes[:3] + suffix
    record = ctx.codeset.records.get(target)
    # a complication of the same group is coded already (E11.21 diabetic nephropathy beside
    # E11.22's CKD); E11.42 and E11.43 (two neuropathies), E11.621 and E11.649 are not one
    group = target[: _DIABETES_GROUP.get(suffix, 4)]
    if record is None or not record.billable or any(c.startswith(group) for c in codes):
        return []
    codes.insert(codes.index(diabetes) + 1, target)
    changes = [Adjustment(target, "added", "combination", linked, "I.A.15")]
    if not stays and linked in codes:
        codes.remove(linked)
        changes.append(Adjustment(linked, "dropped", "combination", target, "I.A.15"))
    return changes


# --- one of several exclusive codes ------------------------------------------------------------

# Chronic kidney disease stages, least to most severe: one stage a claim, the most severe
# documented (I.C.14.a.2: with both a stage and ESRD documented, N18.6 only).
CKD_ORDER: Final = ("N189", "N181", "N182", "N1830", "N1831", "N1832", "N184", "N185", "N186")


def _keep_one(
    codes: list[str], group: Sequence[str], keep: str, rule: Rule, guideline: str
) -> list[Adjustment]:
    changes = []
    for code in group:
        if code != keep and code in codes:
            codes.remove(code)
            changes.append(Adjustment(code, "dropped", rule, keep, guideline))
    return changes


#: F10-F19: mental and behavioural disorders due to one psychoactive substance, whose 4th
#: character is its level of use: 2 dependence, 1 abuse, 9 use (F17 nicotine: dependence only).
SUBSTANCE_CATEGORIES: Final = frozenset(f"F1{n}" for n in range(10))
SUBSTANCE_LEVELS: Final = ("2", "1", "9")  # the one kept first (I.C.5.b.1)
_WITHOUT: Final = re.compile(r"\bwithout\b|\buncomplicated\b")
_WITH: Final = re.compile(r"\bwith\b")


def exclusive(codes: list[str], ctx: Context) -> list[Adjustment]:
    """Codes that contradict each other, so cannot all describe one stay:

    - a code that says "without <X>" or "uncomplicated" beside a code of the same category
      that says "with" a complication: E11.9 "without complications" beside E11.65 "with
      hyperglycemia", I13.10 "without heart failure" beside I13.0 "with heart failure", J45.909
      "uncomplicated" beside J45.901 "with (acute) exacerbation" (I.A.15, "With": the "with"
      code reports the linked condition): the "without" code goes;
    - one acute myocardial infarction an episode (I.C.9.e: I21.- is assigned for the MI of the
      episode of care; its site and type are one choice): the first I21 code stays;
    - an old or healed MI (I25.2, I.C.9.e.4) is not the acute MI being treated: dropped beside
      an I21/I22 code;
    - one CKD stage (I.C.14.a.2): the most severe stays;
    - C80.1 "malignant (primary) neoplasm, unspecified" is only for a malignancy whose primary
      site cannot be determined (I.C.2.k): dropped beside a primary malignancy of a stated site
      or of lymphoid and blood-forming tissue (C00-C75, C7A, C81-C96);
    - one level of use of one psychoactive substance (I.C.5.b.1: abuse and dependence
      documented, only dependence; use and abuse, only abuse): F10.10 "alcohol abuse" goes
      beside F10.20 "alcohol dependence", F10.9- "use" beside either.
    """
    changes: list[Adjustment] = []
    for code in list(codes):
        text = ctx.codeset.records[code].description.lower()
        if code not in codes or not _WITHOUT.search(text):
            continue
        complicated = next(
            (
                c
                for c in codes
                if c != code
                and c[:3] == code[:3]
                and _WITH.search(other := ctx.codeset.records[c].description.lower())
                and not _WITHOUT.search(other)
                and _says_what_is_without(other, text)
            ),
            None,
        )
        if complicated is not None:
            codes.remove(code)
            changes.append(Adjustment(code, "dropped", "redundant", complicated, "I.A.15"))
    acute_mi = [c for c in codes if c.startswith("I21")]
    if acute_mi:
        changes += _keep_one(codes, acute_mi, acute_mi[0], "redundant", "I.C.9.e")
    if "I252" in codes and any(c[:3] in {"I21", "I22"} for c in codes):
        keep = next(c for c in codes if c[:3] in {"I21", "I22"})
        codes.remove("I252")
        changes.append(Adjustment("I252", "dropped", "redundant", keep, "I.C.9.e.4"))
    stages = [c for c in codes if c in CKD_ORDER]
    if len(stages) > 1:
        worst = max(stages, key=CKD_ORDER.index)
        changes += _keep_one(codes, stages, worst, "redundant", "I.C.14.a.2")
    if "C801" in codes:
        primary = next((c for c in codes if _primary_site_known(c)), None)
        if primary is not None:
            codes.remove("C801")
            changes.append(Adjustment("C801", "dropped", "redundant", primary, "I.C.2.k"))
    for category in dict.fromkeys(c[:3] for c in codes if c[:3] in SUBSTANCE_CATEGORIES):
        used = [c for c in codes if c[:3] == category and c[3:4] in SUBSTANCE_LEVELS]
        if len({c[3] for c in used}) > 1:
            highest = min(used, key=lambda c: SUBSTANCE_LEVELS.index(c[3]))
            lower = [c for c in used if c[3] != highest[3]]
            changes += _keep_one(codes, [highest, *lower], highest, "redundant", "I.C.5.b.1")
    return changes


_WITHOUT_WHAT: Final = re.compile(r"\bwithout ([a-z]+)")


def _says_what_is_without(with_text: str, without_text: str) -> bool:
    """Whether a "with" description reports what a "without" one excludes: anything, for
    "without complications" and "uncomplicated"; else the word after "without" ("coma" of
    E10.649 "with hypoglycemia without coma" is in E10.641 "... with coma", not in E10.22 "with
    diabetic chronic kidney disease")."""
    what = _WITHOUT_WHAT.search(without_text)
    if what is None or what.group(1).startswith("complication"):
        return True
    return re.search(rf"\b{what.group(1)}\b", with_text) is not None


def _primary_site_known(code: str) -> bool:
    """A primary malignant neoplasm of a stated site (C00-C75, C7A) or of lymphoid,
    hematopoietic and related tissue (C81-C96): ICD-10-CM chapter 2's block structure."""
    return _within(code, "C00", "C75") or code.startswith("C7A") or _within(code, "C81", "C96")


_POSITIVE_QUALIFIER: Final = re.compile(r"\bwith (?!unspecified)")


def unspecified_beside_specific(codes: list[str], ctx: Context) -> list[Adjustment]:
    """An unspecified code (the default of its subdivision: "unspecified", "without
    complications", "uncomplicated") beside a more specific code of the same subdivision says
    less about the same condition, and "without" contradicts the specific code's "with":
    E11.9 beside E11.65, I50.9 beside I50.23, J45.909 beside J45.901 (I.A.9 "unspecified"
    codes are for when the record says no more; I.B.3, code to the highest specificity)."""
    changes: list[Adjustment] = []
    for code in list(codes):
        record = ctx.codeset.records.get(code)
        if record is None or _POSITIVE_QUALIFIER.search(record.description.lower()):
            continue
        root = unspecified_root(ctx.codeset, code)
        if root is None:
            continue
        specific = next((c for c in codes if c != code and c.startswith(root)), None)
        if specific is not None and code in codes:
            codes.remove(code)
            changes.append(Adjustment(code, "dropped", "redundant", specific, "I.B.3"))
    return changes


# Signs and symptoms routinely part of a definitive diagnosis, not coded beside it (I.B.5,
# I.C.18.b): symptom prefix -> prefixes (or "low-high" category ranges) of those diagnoses.
INTEGRAL_SYMPTOMS: Final[dict[str, tuple[str, ...]]] = {
    "R73": ("E08-E13",),  # hyperglycemia, elevated blood glucose: diabetes mellitus
    "R07": ("I20-I25",),  # pain in throat and chest: ischemic heart disease
    "R6510": ("A40-A41",),  # SIRS of non-infectious origin: not beside sepsis (I.C.1.d.1)
    "R58": ("K920-K922",),  # hemorrhage NEC: a gastrointestinal hemorrhage
    "R197": ("A00-A09",),  # diarrhea: an intestinal infectious disease (gastroenteritis)
    # hematemesis, melena, gastrointestinal hemorrhage NOS: a gastric, duodenal, peptic or
    # gastrojejunal ulcer "with hemorrhage" (K25-K28, 4th character 0, 2, 4 or 6)
    **{
        symptom: tuple(f"K2{c}{d}" for c in "5678" for d in "0246")
        for symptom in ("K920", "K921", "K922")
    },
    # ascites: a liver disease "with ascites" (K70.11, K70.31, K71.51)
    "R18": ("K7011", "K7031", "K7151"),
    # coma: a diabetes code "with coma" (hyperosmolarity E1x.01, ketoacidosis E1x.11,
    # hypoglycemia E1x.641) or E15 "Nondiabetic hypoglycemic coma", whose titles say it
    "R402": (
        *(
            f"{category}{suffix}"
            for category in ("E08", "E09", "E10", "E11", "E13")
            for suffix in ("01", "11", "641")
        ),
        "E15",
    ),
}


def _matches(code: str, pattern: str) -> bool:
    if "-" in pattern:
        low, high = pattern.split("-")
        return _within(code, low, high)
    return code.startswith(pattern)


def symptoms(codes: list[str], ctx: Context) -> list[Adjustment]:
    """Symptoms integral to a definitive diagnosis in the set (I.B.5, I.C.18.b), as the table
    above lists them. (Codes a coder adds with no mention at all, R69 "illness, unspecified"
    or B99.9 "unspecified infectious disease", are the coder's to avoid: they are not a rule
    of the classification.)"""
    changes: list[Adjustment] = []
    for code in list(codes):
        prefix = next((p for p in INTEGRAL_SYMPTOMS if code.startswith(p)), None)
        if prefix is None or code not in codes:
            continue
        owner = next(
            (
                c
                for c in codes
                if c != code and any(_matches(c, p) for p in INTEGRAL_SYMPTOMS[prefix])
            ),
            None,
        )
        if owner is not None:
            codes.remove(code)
            changes.append(Adjustment(code, "dropped", "symptom", owner, "I.B.5"))
    return changes


def excludes1(codes: list[str], ctx: Context) -> list[Adjustment]:
    """Two codes of an Excludes1 pair are never reported together (I.A.12.a): the later one
    goes. (I.A.12.a's exception, two unrelated conditions, needs the record to say they are
    unrelated; a coder's list does not, so the pair is resolved; codes a person gives are
    flagged instead: ``drg.conventions.apply``.)"""
    changes: list[Adjustment] = []
    kept: list[str] = []
    for code in list(codes):
        clash = next((k for k in kept if ctx.notes.excludes1_pair(k, code)), None)
        if clash is None:
            kept.append(code)
        else:
            codes.remove(code)
            changes.append(Adjustment(code, "dropped", "excludes1", clash, "I.A.12.a"))
    return changes


# --- sequencing: the principal diagnosis by rule ------------------------------------------------

# I.C.2.e.2 (I.C.21.c.12): an encounter solely for chemotherapy, immunotherapy or radiation
# therapy: the Z51 code is the principal diagnosis.
ENCOUNTER_FIRST: Final = ("Z510", "Z5111", "Z5112")
# I.C.1.d.4: sepsis and a localized infection present on admission: the systemic infection is
# the principal diagnosis. Sepsis codes (systemic infection, by organism).
SEPSIS: Final = (
    "A40",
    "A41",
    "A021",
    "A227",
    "A267",
    "A327",
    "A392",
    "A393",
    "A394",
    "A427",
    "A5486",
    "B007",
    "B377",
)


# SIRS and severe sepsis (R65.1-, R65.2-) are never the principal diagnosis: the underlying
# infection or condition is coded first (I.C.1.d.1.b, I.C.18.g).
NEVER_FIRST: Final = ("R651", "R652")


def _first(codes: list[str], candidate: str, guideline: str) -> list[Adjustment]:
    if codes[0] == candidate:
        return []
    previous = codes[0]
    codes.remove(candidate)
    codes.insert(0, candidate)
    return [Adjustment(candidate, "moved", "sequencing", previous, guideline)]


def sequencing(codes: list[str], ctx: Context) -> list[Adjustment]:
    """The principal diagnosis by rule, not by the coder's order, in this precedence:

    1. an encounter for antineoplastic therapy, Z51.0/Z51.11/Z51.12 (I.C.2.e.2);
    2. obstetric codes (chapter 15) keep their place (I.C.15.a.1), else sepsis (A40/A41 and
       the other systemic infections) before a localized infection; grouping assumes every
       condition present on admission, so the sepsis was (I.C.1.d.4);
    3. COVID-19, U07.1, before its manifestations (I.C.1.g.1.a); SIRS and severe sepsis
       (R65.1-, R65.2-) never first (I.C.1.d.1.b);
    4. etiology before manifestation: when the principal's "code first" note names another
       code of the set, or another code's "use additional code" note names the principal,
       that code goes first (I.A.13), repeated while it applies.

    Other codes keep their order."""
    if not codes:
        return []
    encounter = next((c for c in codes if c in ENCOUNTER_FIRST), None)
    if encounter is not None:
        return _first(codes, encounter, "I.C.2.e.2")
    changes: list[Adjustment] = []
    if not codes[0].startswith("O"):
        sepsis = next((c for c in codes if c.startswith(SEPSIS)), None)
        covid = "U071" if "U071" in codes else None
        if sepsis is not None:
            changes += _first(codes, sepsis, "I.C.1.d.4")
        elif covid is not None:
            changes += _first(codes, covid, "I.C.1.g.1.a")
    if codes[0].startswith(NEVER_FIRST) and len(codes) > 1:
        underlying = next((c for c in codes if not c.startswith(NEVER_FIRST)), None)
        if underlying is not None:
            changes += _first(codes, underlying, "I.C.1.d.1.b")
    seen = {codes[0]}
    while True:
        principal = codes[0]
        etiology = next(
            (
                c
                for c in codes[1:]
                if c not in seen
                and (
                    any(ref.matches(c) for ref in ctx.notes.code_first(principal))
                    or any(ref.matches(principal) for ref in ctx.notes.use_additional(c))
                )
            ),
            None,
        )
        if etiology is None:
            return changes
        seen.add(etiology)
        changes += _first(codes, etiology, "I.A.13")


RuleFunction = Callable[[list[str], Context], list[Adjustment]]

#: The rules, in the order they run: combine first (so redundancy sees the combined code), then
#: drop, then sequence what is left. Each with the token its changes carry.
RULES: Final[tuple[tuple[str, RuleFunction], ...]] = (
    ("combination", combination),
    ("exclusive", exclusive),
    ("unspecified", unspecified_beside_specific),
    ("symptom", symptoms),
    ("excludes1", excludes1),
    ("sequencing", sequencing),
)
ALL_RULES: Final[frozenset[str]] = frozenset(name for name, _ in RULES)
