"""The tabular list's Excludes1, "code first" and "use additional code" notes per release
(drg/conventions/notes.py, drg/codeset/source.py read_notes).

Every expectation names the tabular list entry it comes from: simple-icd-10-cm's April 1, 2026
tabular XML (icd10c-tabular-April-1-2026.xml), the ICD-10-CM FY2026 tabular list. FY2027 codes
come from the change lists in drg/data/fy2027/icd10cm. Guidelines: ICD-10-CM Official
Guidelines for Coding and Reporting, I.A.12.a (Excludes1) and I.A.13 (etiology/manifestation).
"""

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drg.codeset.catalog import shipped_catalog
from drg.codeset.derive import ListedCode, listed_codes
from drg.codeset.source import TabularNotesSource, packaged_files, read_notes
from drg.conventions.notes import (
    CodeRef,
    TabularNotes,
    notes_for,
    parse_refs,
    tabular_key,
    unread_items,
)
from drg.registry import PackagedCodeset, ReleaseRegistry, loaded_fiscal_year

FY2026, FY2027 = "2026-04", "2026-10"


def ref(first: str, last: str | None = None) -> CodeRef:
    return CodeRef(first, first if last is None else last)


def shown(refs: tuple[CodeRef, ...]) -> list[str]:
    return [str(r) for r in refs]


@pytest.fixture(scope="module")
def source() -> TabularNotesSource:
    registry = ReleaseRegistry.load()
    packaged = registry.codeset(FY2026)
    assert isinstance(packaged, PackagedCodeset)
    return read_notes(packaged_files(packaged))


@pytest.fixture(scope="module")
def fy2026() -> TabularNotes:
    return notes_for(shipped_catalog(), FY2026)


@pytest.fixture(scope="module")
def fy2027() -> TabularNotes:
    return notes_for(shipped_catalog(), FY2027)


# --- parse_refs -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # E11 Excludes1
        ("type 1 diabetes mellitus (E10.-)", [ref("E10")]),
        ("gestational diabetes (O24.4-)", [ref("O244")]),
        ("neonatal diabetes mellitus (P70.2)", [ref("P702")]),
        # E74 Excludes1
        ("diabetes mellitus (E08-E13)", [ref("E08", "E13")]),
        # N18 Code first
        ("hypertensive chronic kidney disease (I12.-, I13.-)", [ref("I12"), ref("I13")]),
        # chapter 1 title; section I10-I1A title
        ("Certain infectious and parasitic diseases (A00-B99)", [ref("A00", "B99")]),
        ("hypertension (I10-I1A)", [ref("I10", "I1A")]),
        ("fracture of skull (S02.0-S02.4)", [ref("S020", "S024")]),
        ("alcohol and opioid dependence (F10.-, F11.-)", [ref("F10"), ref("F11")]),
        # F02 Code first: a reference inside a "such as" list
        ("Alzheimer's (G30.-)", [ref("G30")]),
        # D71-: a dash without the dot (D80-D89 Excludes1); G35-: F02 Code first
        ("functional disorders of polymorphonuclear neutrophils (D71-)", [ref("D71")]),
        # F02 Code first: an "and below" mark on the upper bound
        ("hypothyroidism, acquired (E00-E03.-)", [ref("E00", "E03")]),
        # K85.3 Use additional code, I73.9 / R10.0 / P28.2 / I00 / Z72.4 Excludes1, M05.A Code
        # first: the ways the tabular list writes a range
        ("drug abuse and dependence (F11.-F17.-)", [ref("F11", "F17")]),
        ("atherosclerosis of the extremities (I70.2--I70.7-)", [ref("I702", "I707")]),
        ("localized abdominal pain (R10.1-R10.3-)", [ref("R101", "R103")]),
        ("apnea of newborn (P28.3- - P28.4-)", [ref("P283", "P284")]),
        ("rheumatic fever with heart involvement (I01.0 -I01.9)", [ref("I010", "I019")]),
        ("behavioral eating disorders of infancy (F98.2.-F98.3)", [ref("F982", "F983")]),
        ("rheumatoid arthritis (M05.00 to M05.8A)", [ref("M0500", "M058A")]),
        # T88.7 Excludes1: "and" between items; N70-N77 Excludes1: several items
        (
            "specified adverse effects of drugs and medicaments (A00-R94 and T80-T88.6, T88.8)",
            [ref("A00", "R94"), ref("T80", "T886"), ref("T888")],
        ),
        (
            "pregnancy, childbirth and the puerperium (O23.-, O75.3, O85, O86.-)",
            [ref("O23"), ref("O753"), ref("O85"), ref("O86")],
        ),
        # K63.0 Excludes1: a trailing comma; Z47.33 Excludes1: an unclosed parenthesis
        (
            "abscess of intestine with Crohn's disease (K50.014, K50.114,)",
            [ref("K50014"), ref("K50114")],
        ),
        ("acquired absence of knee joint (Z89.52-", [ref("Z8952")]),
        # V40-V49 Excludes1, D55.0 Excludes1, T51-T65 Excludes1, L00-L08 Use additional code:
        # words in parentheses are no codes, references may sit inside the text
        ("sport utility vehicle (SUV) (V50-V59)", [ref("V50", "V59")]),
        (
            "glucose-6-phosphate dehydrogenase (G6PD) deficiency without anemia (D75.A)",
            [ref("D75A")],
        ),
        ("contact with and (suspected) exposure to toxic substances (Z77.-)", [ref("Z77")]),
        ("code (B95-B97) to identify infectious agent.", [ref("B95", "B97")]),
        # E11 Excludes1 names E13.- three times in three notes: once per note
        ("postprocedural diabetes mellitus (E13.-) (E13.-)", [ref("E13")]),
        # no reference: lead-in notes, references by words, junk
        ("code to identify control using:", []),
        ("certain localized infections - see body system-related chapters", []),
        ("code (Chapter 20) to identify external cause", []),
        ("", []),
        ("(see also)", []),
        ("((()))) - -- (.-)", []),
        # qualified references are not read: they name less than their codes (G63, S01
        # Excludes1, D46 Use additional code)
        ("diabetes mellitus (E08-E13 with .42)", []),
        ("open skull fracture (S02.- with 7th character B)", []),
        ("to identify drug (T36-T50 with fifth or sixth character 5)", []),
        # a range written backwards is a misprint, not a reference
        ("backwards (E13-E08)", []),
    ],
)
def test_parse_refs_reads_the_forms_of_the_tabular_list(text: str, expected: list[CodeRef]) -> None:
    assert list(parse_refs(text)) == expected


@given(st.text())
def test_parse_refs_never_raises_and_returns_code_refs(text: str) -> None:
    for found in parse_refs(text):
        assert isinstance(found, CodeRef)
        assert found.matches(found.first)
        assert found.matches(found.last)


def test_unread_items_are_the_qualified_references(source: TabularNotesSource) -> None:
    assert unread_items("diabetes mellitus (E08-E13 with .42), gout (M1A.-, M10.-)") == (
        "E08-E13 with .42",
    )
    every_note = [
        text
        for entries in (source.codes, source.sections, source.chapters)
        for notes in entries.values()
        for text in (*notes.excludes1, *notes.code_first, *notes.use_additional)
    ]
    unread = [item for text in every_note for item in unread_items(text)]
    # what the April 2026 XML holds: 7,701 notes, 165 qualified items ("T36-T50 with fifth or
    # sixth character 5" 92 times), every one a "... with ..." qualifier
    assert (len(every_note), len(unread)) == (7701, 165)
    assert all("with" in item for item in unread)  # "(S92.-with 7th character B)" at S91


# --- CodeRef and the order of codes -----------------------------------------------------------


def test_tabular_key_orders_the_categories_as_the_tabular_list_prints_them(
    source: TabularNotesSource,
) -> None:
    """Every category of the April 2026 XML, in document order: C4A between C43 and C44, M1A
    between M08 and M10, Z3A between Z36 and Z37, chapter 22 (U) last."""
    categories = list(source.category_sections)
    assert len(categories) == 1918
    assert sorted(categories, key=tabular_key) == categories
    assert sorted(categories) != categories  # plain character order would not do
    assert tabular_key("C43") < tabular_key("C4391") < tabular_key("C4A") < tabular_key("C44")
    assert tabular_key("I16") < tabular_key("I1A") < tabular_key("I20")
    assert tabular_key("E11") < tabular_key("E119") < tabular_key("E11A")


def test_a_range_covers_its_bounds_and_what_lies_between_in_tabular_order() -> None:
    # section I10-I1A Hypertensive diseases
    hypertensive = ref("I10", "I1A")
    assert [hypertensive.matches(c) for c in ("I10", "I130", "I160", "I1A0")] == [True] * 4
    assert [hypertensive.matches(c) for c in ("I0981", "I200", "I5A", "I1")] == [False] * 4
    # section C43-C44 holds C4A Merkel cell carcinoma; C45-C49 does not, although "C4A" sorts
    # between "C45" and "C49" by character
    assert ref("C43", "C44").matches("C4A0")
    assert not ref("C45", "C49").matches("C4A0")
    assert not ref("C76", "C80").matches("C7A00")  # section C7A precedes C76-C80
    # subcategories: the prefix of the bounds' length lies between them
    skull = ref("S020", "S024")
    assert [skull.matches(c) for c in ("S020XXA", "S02101A", "S0242XA")] == [True] * 3
    assert [skull.matches(c) for c in ("S02", "S025XXA", "S019")] == [False] * 3
    # a bound of another length: T88.6 and below, not T88.7 (T88.7 Excludes1)
    mixed = ref("T80", "T886")
    assert [mixed.matches(c) for c in ("T80211A", "T8852XA", "T886XXA")] == [True] * 3
    assert [mixed.matches(c) for c in ("T887XXA", "T79A0XXA")] == [False] * 2


def test_a_code_ref_names_codes_and_is_hashable() -> None:
    assert {ref("E10"), ref("E10"), ref("E08", "E13")} == {ref("E10"), ref("E08", "E13")}
    assert (str(ref("O244")), str(ref("E08", "E13")), str(ref("S020", "S024"))) == (
        "O24.4",
        "E08-E13",
        "S02.0-S02.4",
    )
    with pytest.raises(ValueError, match="not an undotted"):
        CodeRef("E10.9", "E10.9")
    with pytest.raises(ValueError, match="ends before it starts"):
        CodeRef("E13", "E08")


# --- the notes of the April 2026 XML -----------------------------------------------------------


def test_read_notes_keeps_each_entrys_own_notes_and_the_sections_of_each_category(
    source: TabularNotesSource,
) -> None:
    # as many entries as the XML has <excludes1> and <codeFirst> elements; 844
    # <useAdditionalCode> elements sit on 806 entries (D75.81, I13.0, T80-T88 ... have two)
    counted = [
        sum(
            1
            for entries in (source.codes, source.sections, source.chapters)
            for notes in entries.values()
            if getattr(notes, kind)
        )
        for kind in ("excludes1", "code_first", "use_additional")
    ]
    assert counted == [2644, 363, 806]
    assert source.codes["E11"].excludes1[-1] == "type 1 diabetes mellitus (E10.-)"
    assert source.codes["E11"].use_additional[0] == "code to identify control using:"
    assert "E119" in source.codes
    assert "E1165" not in source.codes  # own notes only
    assert source.chapters[4].excludes1 == (
        "transitory endocrine and metabolic disorders specific to newborn (P70-P74)",
    )
    assert source.sections["I10-I1A"].excludes1 == (
        "neonatal hypertension (P29.2)",
        "primary pulmonary hypertension (I27.0)",
    )
    # heading sections (no codes of their own) cover the sections after them
    assert {c: source.category_sections[c] for c in ("V43", "C4A", "C7A", "M1A", "E11")} == {
        "V43": ("V40-V49", "V00-V99", "V00-X58"),
        "C4A": ("C43-C44", "C00-C75", "C00-C96"),
        "C7A": ("C7A", "C00-C96"),
        "M1A": ("M05-M14", "M00-M25"),
        "E11": ("E08-E13",),
    }


def test_e11_9_excludes_type_1_and_gestational_diabetes_but_not_other_type_2_codes(
    fy2026: TabularNotes,
) -> None:
    # E11.9 Excludes1 "(E11.A)"; E11 Excludes1 E08.-, E09.-, O24.4-, P70.2, E13.- (three
    # notes), E10.-; chapter 4 Excludes1 "(P70-P74)"
    assert shown(fy2026.excludes1("E119")) == [
        "E11.A", "E08", "E09", "O24.4", "P70.2", "E13", "E10", "P70-P74",
    ]  # fmt: skip
    named = {c: any(r.matches(c) for r in fy2026.excludes1("E119")) for c in
             ("E109", "E1065", "O24410", "E1165", "E11A", "P741", "I10")}  # fmt: skip
    assert named == {
        "E109": True, "E1065": True, "O24410": True, "E1165": False, "E11A": True,
        "P741": True, "I10": False,
    }  # fmt: skip


def test_an_excludes1_pair_is_symmetric(fy2026: TabularNotes) -> None:
    # E11 Excludes1 "type 1 diabetes mellitus (E10.-)" and E10 Excludes1 "(E11.-)"
    assert (fy2026.excludes1_pair("E119", "E109"), fy2026.excludes1_pair("E109", "E119")) == (
        True,
        True,
    )
    assert (fy2026.excludes1_pair("E119", "I10"), fy2026.excludes1_pair("I10", "E119")) == (
        False,
        False,
    )
    # R65.21 Excludes1 "postprocedural septic shock (T81.12-)": T81.12XA names nothing back
    assert fy2026.excludes1_pair("T8112XA", "R6521")
    assert fy2026.excludes1_pair("R6521", "T8112XA")
    assert not fy2026.excludes1_pair("E119", "E1165")  # both type 2: no note says so
    assert not fy2026.excludes1_pair("E119", "NOPE")  # codes the release does not list
    assert not fy2026.excludes1_pair("NOPE", "X")


def test_n18_4_code_first_names_hypertensive_and_diabetic_ckd(fy2026: TabularNotes) -> None:
    # N18 Code first any associated: diabetic chronic kidney disease (E08.22, E09.22, E10.22,
    # E11.22, E13.22), hypertensive chronic kidney disease (I12.-, I13.-)
    refs = fy2026.code_first("N184")
    assert shown(refs) == ["E08.22", "E09.22", "E10.22", "E11.22", "E13.22", "I12", "I13"]
    assert [any(r.matches(c) for r in refs) for c in ("I129", "I130", "E1122", "I10")] == [
        True, True, True, False,
    ]  # fmt: skip
    # N18 Use additional code: associated cachexia (E88.A), kidney transplant status (Z94.0)
    assert shown(fy2026.use_additional("N184")) == ["E88.A", "Z94.0"]


def test_r65_21_code_first_names_the_underlying_infection(fy2026: TabularNotes) -> None:
    # R65.2 Code first underlying infection, such as: infection following a procedure
    # (T81.4-), infections following infusion, transfusion and therapeutic injection (T80.2-),
    # puerperal sepsis (O85), sepsis following abortion / ectopic and molar pregnancy /
    # termination (O03.87, O08.82, O03.37, O04.87), sepsis NOS (A41.9). "Such as": examples
    # only; A41.51 (sepsis due to E. coli) is not named.
    refs = fy2026.code_first("R6521")
    assert shown(refs) == ["T81.4", "T80.2", "O85", "O03.87", "O08.82", "O03.37", "O04.87", "A41.9"]
    named = {c: any(r.matches(c) for r in refs) for c in ("A419", "T8140XA", "O85", "A4151")}
    assert named == {"A419": True, "T8140XA": True, "O85": True, "A4151": False}
    # R65.2 Use additional code to identify specific acute organ dysfunction, such as: N17.-
    assert any(r.matches("N179") for r in fy2026.use_additional("R6521"))


def test_f02_80_code_first_names_alzheimers_disease(fy2026: TabularNotes) -> None:
    # F02 Code first the underlying physiological condition, such as: Alzheimer's (G30.-),
    # hypothyroidism, acquired (E00-E03.-), intoxications (T36-T65), ...
    refs = fy2026.code_first("F0280")
    assert len(refs) == 25
    named = {c: any(r.matches(c) for r in refs) for c in ("G309", "E039", "T401X1A", "E049")}
    assert named == {"G309": True, "E039": True, "T401X1A": True, "E049": False}


def test_a_range_reference_covers_its_endpoints_and_middle_not_its_neighbours(
    fy2026: TabularNotes,
) -> None:
    # R73 Excludes1 "diabetes mellitus (E08-E13)", inherited by R73.9
    assert ref("E08", "E13") in fy2026.excludes1("R739")
    pairs = {c: fy2026.excludes1_pair("R739", c) for c in ("E089", "E109", "E139", "E079", "E15")}
    assert pairs == {"E089": True, "E109": True, "E139": True, "E079": False, "E15": False}
    # section I60-I69 Use additional code to identify presence of hypertension (I10-I1A)
    refs = fy2026.use_additional("I639")
    named = {c: any(r.matches(c) for r in refs) for c in ("I10", "I150", "I1A0", "I0981", "I200")}
    assert named == {"I10": True, "I150": True, "I1A0": True, "I0981": False, "I200": False}


def test_section_and_chapter_notes_reach_the_codes_deep_below(fy2026: TabularNotes) -> None:
    # section A15-A19 Tuberculosis, Excludes1 congenital tuberculosis (P37.0)
    assert fy2026.excludes1_pair("A150", "P370")
    # section T51-T65 Excludes1 "(Z77.-)", down to a 7-character code of T52
    assert fy2026.excludes1_pair("T520X1A", "Z77098")
    # heading section V00-V99 Transport accidents, Excludes1 "intentional self-harm by
    # crashing of motor vehicle (X82)", under section V40-V49 and category V43
    assert fy2026.excludes1_pair("V4352XA", "X820XXA")
    # chapter 4 Excludes1 "(P70-P74)"; chapter 15 Excludes1 "supervision of normal pregnancy
    # (Z34.-)"
    assert fy2026.excludes1_pair("E1165", "P741")
    assert fy2026.excludes1_pair("O24410", "Z3400")
    # chapter 10 Use additional code ... tobacco dependence (F17.-), at J44.9
    assert ref("F17") in fy2026.use_additional("J449")


def test_an_excludes1_note_naming_codes_of_its_own_entry_is_dropped(fy2026: TabularNotes) -> None:
    # D72 Excludes1 "basophilia (D72.824)" and section M26-M27 Excludes1 "unilateral condylar
    # hyperplasia or hypoplasia (M27.8)" name codes they hold themselves
    assert not fy2026.excludes1_pair("D720", "D72824")
    assert not fy2026.excludes1_pair("D729", "D72824")
    # (D72.82 Excludes1 "eosinophilia (D72.1)" still pairs basophilia with eosinophilia)
    assert fy2026.excludes1_pair("D72824", "D7210")
    assert not fy2026.excludes1_pair("M278", "M2660")
    assert not any(any(r.matches(c) for r in fy2026.excludes1(c)) for c in fy2026)
    # Use additional code may name a code of its own category: I25 "(I25.82)"
    assert ref("I2582") in fy2026.use_additional("I2510")


def test_most_codes_have_an_excludes1_note(fy2026: TabularNotes) -> None:
    with_excludes1 = sum(1 for code in fy2026 if fy2026.excludes1(code))
    assert len(fy2026) == 98186
    assert with_excludes1 > 50_000  # 61,465 of the 98,186 codes of the April 2026 list


# --- FY2027 and loaded releases -----------------------------------------------------------


def test_fy2027_codes_inherit_the_notes_above_them_and_deleted_codes_are_gone(
    fy2026: TabularNotes, fy2027: TabularNotes
) -> None:
    # I42.00 is new in FY2027 (I42.0 became a header): I42 Code first pre-existing
    # cardiomyopathy complicating pregnancy and puerperium (O99.4); I42.0, section I30-I5A and
    # chapter 9 carry no Excludes1, code-first or use-additional notes
    assert "I4200" not in fy2026
    assert "I4200" in fy2027
    found = (fy2027.excludes1("I4200"), fy2027.code_first("I4200"), fy2027.use_additional("I4200"))
    assert found == ((), (ref("O994"),), ())
    assert fy2027.code_first("I4200") == fy2026.code_first("I420")
    # T52.81- is new: T52 Excludes1 (T53.-), section T51-T65 Excludes1 (Z77.-)
    assert fy2027.excludes1("T52811A") == fy2026.excludes1("T520X1A") == (ref("T53"), ref("Z77"))
    # QA1.71 Lynch syndrome: new category QA1, which takes section QA0's place in chapter 17;
    # neither carries these notes
    assert "QA171" in fy2027
    assert fy2027.excludes1("QA171") == fy2027.code_first("QA171") == ()
    # J4B is a new category: it takes the sections of J4A before it (J40-J4A, Excludes1
    # "bronchitis due to chemicals, gases, fumes and vapors (J68.0)") and chapter 10's
    # Use additional code (tobacco)
    assert fy2027.excludes1("J4B") == (ref("J680"),)
    assert ref("F17") in fy2027.use_additional("J4B")
    # T52.8X1A is deleted in FY2027
    assert "T528X1A" in fy2026
    assert fy2026.excludes1("T528X1A") == (ref("T53"), ref("Z77"))
    assert "T528X1A" not in fy2027
    assert fy2027.excludes1("T528X1A") == ()
    assert not fy2027.excludes1_pair("T528X1A", "T530X1A")
    # codes FY2027 leaves alone keep their notes
    assert fy2027.excludes1("E119") == fy2026.excludes1("E119")


def test_notes_are_built_once_per_catalog_and_release(fy2027: TabularNotes) -> None:
    assert notes_for(shipped_catalog(), FY2027) is fy2027
    assert (fy2027.release, len(fy2027)) == (FY2027, 98403)


def test_a_loaded_release_takes_its_notes_from_the_shipped_tabular_list() -> None:
    """An operator's code list (CMS's order file): codes of the shipped list keep their notes,
    a new code inherits from its listed ancestors (E11 Excludes1 "(E10.-)")."""
    shipped = shipped_catalog()
    added = loaded_fiscal_year(
        2028, "2027-10", "test", [(dt.date(2027, 10, 1), dt.date(2028, 9, 30), 450)]
    )
    listed = [*listed_codes(shipped.records(FY2027)), ListedCode("E11B", True, "A new code")]
    catalog = shipped.merged(shipped.registry.merged([added]), {"2027-10": listed})
    assert catalog is not shipped
    loaded = notes_for(catalog, "2027-10")
    fy2027 = notes_for(shipped, FY2027)
    assert loaded.excludes1("E11B") == fy2027.excludes1("E11")
    assert loaded.excludes1_pair("E11B", "E109")
    assert loaded.code_first("I4200") == fy2027.code_first("I4200")
    assert len(loaded) == len(fy2027) + 1
