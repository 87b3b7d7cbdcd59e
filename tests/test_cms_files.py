"""Parsers of the official CMS reference files (drg/cms/): no servers, files written to tmp_path.

Sources of the layouts the fixtures follow:

- ICD-10-CM order file: the "ICD-10-CM Order File Format" note shipped with
  ``icd10cm_order_2027.txt`` in CMS's ``2027-code-descriptions-tabular-order.zip`` (fixed width:
  order 1-5, code 7-13, flag 15, short description 17-76, long description 78-). The FY2027 codes
  and titles used (J4B, K6A, QA1, I42.0x) are those of the FY2027 change lists in
  ``shared/data/fy2027/added.csv`` (made from the CMS order files).
- Table 5: the FY 2025 IPPS final rule's Table 5 text file (cp1252, tab-separated, a two-line
  quoted title with cp1252 em dashes, header "MS-DRG / FY 2025 Final Post-Acute DRG / ...");
  the real FY2026 file (``drg/data/README.md``) has the same shape and gives the 998/999 rows.
- Tables 1A-1E: ``CMS-1849-CN Tables 1A - 1E.txt`` (FY 2027 correction notice), copied below
  as it was published (a US government work); its figures match
  ``shared/data/fy2027/ipps_rates_fy2027.json`` ("recommended").
"""

import datetime as dt
import hashlib
import zipfile
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path

import pytest

from drg.cms.order_file import OrderEntry, parse_order_file
from drg.cms.rates import parse_rates_tables
from drg.cms.sources import MAX_MEMBER_BYTES, SourceFile, read_source
from drg.cms.table5 import parse_table5
from drg.exceptions import ReferenceDataError
from tests.cms_layouts import RATES_FY2027, order_line

# ---------------------------------------------------------------- ICD-10-CM order file


# a real short title padded to exactly 60 characters, the width of its columns (17-76)
SIXTY = "Inherited neoplasm predisposition synd w mult systems, NEC x"
# (code, billable, short description, long description), in tabular order.
ORDER_SPEC: list[tuple[str, bool, str, str]] = [
    ("A00", False, "Cholera", "Cholera"),
    (
        "A000",
        True,
        "Cholera due to Vibrio cholerae 01, biovar cholerae",
        "Cholera due to Vibrio cholerae 01, biovar cholerae",
    ),
    (
        "A001",
        True,
        "Cholera due to Vibrio cholerae 01, biovar eltor",
        "Cholera due to Vibrio cholerae 01, biovar eltor",
    ),
    ("A009", True, "Cholera, unspecified", "Cholera, unspecified"),
    ("I42", False, "Cardiomyopathy", "Cardiomyopathy"),
    ("I420", False, "Dilated cardiomyopathy", "Dilated cardiomyopathy"),
    ("I4200", True, "Dilated cardiomyopathy, unspecified", "Dilated cardiomyopathy, unspecified"),
    (
        "I4201",
        True,
        "Familial-genetic dilated cardiomyopathy",
        "Familial-genetic dilated cardiomyopathy",
    ),
    ("I4209", True, "Other dilated cardiomyopathy", "Other dilated cardiomyopathy"),
    ("J4B", True, "Pulmonary mycetoma", "Pulmonary mycetoma"),  # a billable 3-character code
    (
        "K6A",
        False,
        "Diseases of the pelvis, not elsewhere classified",
        "Diseases of the pelvis, not elsewhere classified",
    ),
    ("K6A0", False, "Pelvic abscess", "Pelvic abscess"),
    ("K6A01", True, "Prevesical abscess", "Prevesical abscess"),
    ("K6A09", True, "Other pelvic abscess", "Other pelvic abscess"),
    (
        "K6A8",
        True,
        "Other diseases of the pelvis, not elsewhere classified",
        "Other diseases of the pelvis, not elsewhere classified",
    ),
    (
        "QA1",
        False,
        "Genetic disorders associated with neoplasms, NEC",
        "Genetic disorders associated with neoplasms, not elsewhere classified",
    ),
    (
        "QA17",
        False,
        SIXTY,
        "Inherited neoplasm predisposition syndromes involving multiple systems, "
        "not elsewhere classified",
    ),
    ("QA171", True, "Lynch syndrome", "Lynch syndrome"),
    (
        "QA179",
        False,
        "Other inherited neoplm predisposition synd of mult systems",
        "Other inherited neoplasm predisposition syndrome of multiple systems",
    ),
    (
        "QA1790",
        True,
        "Familial cancer syndrome with pathogenic BRCA1 mutation",
        "Familial cancer syndrome with pathogenic BRCA1 mutation",
    ),
    (
        "QA1791",
        True,
        "Familial cancer syndrome with pathogenic BRCA2 mutation",
        "Familial cancer syndrome with pathogenic BRCA2 mutation",
    ),
    ("QA1792", True, "Li Fraumeni syndrome", "Li Fraumeni syndrome"),
    (
        "QA1798",
        True,
        "Other inherited neoplm predisposition synd of mult systems",
        "Other inherited neoplasm predisposition syndrome of multiple systems",
    ),
    (
        "S82",
        False,
        "Fracture of lower leg, including ankle",
        "Fracture of lower leg, including ankle",
    ),
    ("S822", False, "Fracture of shaft of tibia", "Fracture of shaft of tibia"),
    (
        "S8220",
        False,
        "Unspecified fracture of shaft of tibia",
        "Unspecified fracture of shaft of tibia",
    ),
    (
        "S82201",
        False,
        "Unspecified fracture of shaft of right tibia",
        "Unspecified fracture of shaft of right tibia",
    ),
    (
        "S82201A",
        True,
        "Unsp fracture of shaft of right tibia, init for clos fx",
        "Unspecified fracture of shaft of right tibia, initial encounter for closed fracture",
    ),
    (
        "S82201B",
        True,
        "Unsp fx shaft of right tibia, init for opn fx type I/2",
        "Unspecified fracture of shaft of right tibia, "
        "initial encounter for open fracture type I or II",
    ),
    # the placeholder X: T36.0X1 is not listed, T36.0 is extended by T36.0X1A
    (
        "T36",
        False,
        "Poisn by, adverse effect of and underdosing of sys antibiot",
        "Poisoning by, adverse effect of and underdosing of systemic antibiotics",
    ),
    (
        "T360",
        False,
        "Poisn by, advrs effect of and undrdose of penicillins",
        "Poisoning by, adverse effect of and underdosing of penicillins",
    ),
    (
        "T360X1A",
        True,
        "Poisoning by penicillins, accidental (unintentional), init",
        "Poisoning by penicillins, accidental (unintentional), initial encounter",
    ),
]
ORDER_LINES = [order_line(i, *spec) for i, spec in enumerate(ORDER_SPEC, start=1)]
ORDER_ENTRIES = [OrderEntry(i, *spec) for i, spec in enumerate(ORDER_SPEC, start=1)]
ORDER_NAME = "icd10cm_order_2027.txt"


def line_of(lines: Sequence[str], code: str) -> int:
    """1-based line of ``code`` in ORDER_LINES-like lines."""
    return next(i for i, line in enumerate(lines, start=1) if line[6:13].rstrip() == code)


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def written(value: object) -> object:
    """``value`` with every Decimal as its string, so that comparisons also check the places."""
    if isinstance(value, Decimal):
        return ("Decimal", str(value))
    if isinstance(value, dict):
        return {key: written(item) for key, item in value.items()}
    if isinstance(value, list):
        return [written(item) for item in value]
    return value


@pytest.mark.parametrize(
    ("newline", "prefix", "final"),
    [
        pytest.param("\n", b"", "\n", id="lf"),
        pytest.param("\r\n", b"", "\r\n", id="crlf"),
        pytest.param("\r\n", b"\xef\xbb\xbf", "\r\n", id="utf8-bom"),
        pytest.param("\n", b"", "", id="no-final-newline"),
    ],
)
def test_order_file_whole_entries(tmp_path: Path, newline: str, prefix: bytes, final: str) -> None:
    """Every entry, in file order, with its flag and unpadded descriptions; a 60-character short
    description is kept whole; J4B (3 characters, billable), QA1 and K6A (a letter second) and
    T36.0X1A (placeholder X, its 6-character parent not listed) pass the hierarchy checks."""
    data = prefix + (newline.join(ORDER_LINES) + final).encode()
    source = read_source(write(tmp_path, ORDER_NAME, data))

    assert parse_order_file(source) == ORDER_ENTRIES


def test_order_file_example_lines_of_the_format_note(tmp_path: Path) -> None:
    """The two example lines of the CMS "ICD-10-CM Order File Format" note, as written there."""
    text = (
        "00001 A00     0 Cholera                                                      Cholera\n"
        "00002 A000    1 Cholera due to Vibrio cholerae 01, biovar cholerae           "
        "Cholera due to Vibrio cholerae 01, biovar cholerae\n"
    )
    source = read_source(write(tmp_path, ORDER_NAME, text.encode("ascii")))

    assert parse_order_file(source) == [
        OrderEntry(1, "A00", False, "Cholera", "Cholera"),
        OrderEntry(
            2,
            "A000",
            True,
            "Cholera due to Vibrio cholerae 01, biovar cholerae",
            "Cholera due to Vibrio cholerae 01, biovar cholerae",
        ),
    ]


@pytest.mark.parametrize("encoding", ["utf-8", "cp1252"])
def test_order_file_reads_utf8_and_cp1252(tmp_path: Path, encoding: str) -> None:
    """UTF-8 first, cp1252 when the bytes are not UTF-8: both give the same text."""
    lines = [
        order_line(1, "H810", False, "Ménière's disease", "Ménière's disease"),
        order_line(
            2, "H8101", True, "Ménière's disease, right ear", "Ménière's disease, right ear"
        ),
    ]
    source = read_source(write(tmp_path, ORDER_NAME, "\r\n".join(lines).encode(encoding)))

    assert parse_order_file(source) == [
        OrderEntry(1, "H810", False, "Ménière's disease", "Ménière's disease"),
        OrderEntry(
            2, "H8101", True, "Ménière's disease, right ear", "Ménière's disease, right ear"
        ),
    ]


def test_order_file_of_98000_lines_is_read_whole(tmp_path: Path) -> None:
    """A file the size of the real one (FY2027: 98,403 lines): 2,450 categories, each a header
    with 3 subcategory headers of 12 billable codes. Correctness only: speed is not asserted."""
    lines: list[str] = []
    categories = [f"{letter}{n:02d}" for letter in "ABCDEFGHIJKLMNOPQRSTUVWXYZ" for n in range(100)]
    for category in categories[:2450]:
        lines.append(order_line(len(lines) + 1, category, False, "Category", "Category"))
        for sub in "012":
            lines.append(order_line(len(lines) + 1, category + sub, False, "Sub", "Subcategory"))
            for leaf in "0123456789AB":
                code = category + sub + leaf
                lines.append(order_line(len(lines) + 1, code, True, "Code", f"Code {code}"))
    source = read_source(write(tmp_path, ORDER_NAME, ("\r\n".join(lines) + "\r\n").encode()))

    entries = parse_order_file(source)

    assert (len(entries), sum(e.billable for e in entries)) == (98_000, 88_200)
    assert (entries[0], entries[-1]) == (
        OrderEntry(1, "A00", False, "Category", "Category"),
        OrderEntry(98_000, "Y492B", True, "Code", "Code Y492B"),
    )


# ---------------------------------------------------------------- Table 5

# "\u2014" (em dash) is written as the byte 0x97 in cp1252, as in the CMS file.
TABLE5_TITLE = (
    '"TABLE 5.\u2014LIST OF MS-DRGS, RELATIVE WEIGHTING FACTORS,\n'
    'AND MEAN LENGTH OF STAY\u2014FY 2025 Final Rule"' + "\t" * 9
)
TABLE5_HEADER = (
    "MS-DRG \tFY 2025 Final Post-Acute DRG\tFY 2025 Final Special Pay DRG\tMDC\tTYPE\t"
    "MS-DRG Title\tWeights - Before Cap\tWeights - 10% Cap Applied \tGeometric mean LOS\t"
    "Arithmetic mean LOS"
)


def drg_row(
    drg: str,
    post_acute: bool,
    special_pay: bool,
    mdc: str | None,
    kind: str | None,
    title: str,
    before_cap: str | None,
    weight: str | None,
    gmlos: str | None,
    amlos: str | None,
) -> dict[str, object]:
    """An expected parsed row, numbers given as the strings of their Decimals."""

    def number(text: str | None) -> Decimal | None:
        return None if text is None else Decimal(text)

    return {
        "drg": drg,
        "post_acute": post_acute,
        "special_pay": special_pay,
        "mdc": mdc,
        "type": kind,
        "title": title,
        "weight_before_cap": number(before_cap),
        "weight": number(weight),
        "gmlos": number(gmlos),
        "amlos": number(amlos),
    }


HIP = "MAJOR HIP AND KNEE JOINT REPLACEMENT OR REATTACHMENT OF LOWER EXTREMITY WITHOUT MCC"
ECMO = (
    "ECMO OR TRACHEOSTOMY WITH MV >96 HOURS OR PRINCIPAL DIAGNOSIS EXCEPT FACE, MOUTH AND NECK "
    "WITH MAJOR O.R. PROCEDURES"
)
# DRG -> (line as written, expected row): the rows whose writing is worth a test.
TABLE5_SPECIAL: dict[int, tuple[str, dict[str, object]]] = {
    1: (
        "001\tNo\tNo\tPRE\tSURG\tHEART TRANSPLANT OR IMPLANT OF HEART ASSIST SYSTEM WITH MCC\t"
        "28.1664\t28.1664\t28.5\t38.5",
        drg_row(
            "001",
            False,
            False,
            "PRE",
            "SURG",
            "HEART TRANSPLANT OR IMPLANT OF HEART ASSIST SYSTEM WITH MCC",
            "28.1664",
            "28.1664",
            "28.5",
            "38.5",
        ),
    ),
    # a quoted title holding a comma and a line break
    3: (
        '003\tYes\tNo\tPRE\tSURG\t"ECMO OR TRACHEOSTOMY WITH MV >96 HOURS OR PRINCIPAL DIAGNOSIS '
        'EXCEPT FACE, MOUTH AND NECK WITH MAJOR O.R.\nPROCEDURES"\t21.2252\t21.2252\t22.9\t33.0',
        drg_row("003", True, False, "PRE", "SURG", ECMO, "21.2252", "21.2252", "22.9", "33.0"),
    ),
    # the cap applied: the weight is the capped column
    5: (
        "005\tYes\tNo\tPRE\tSURG\tLIVER TRANSPLANT WITH MCC OR INTESTINAL TRANSPLANT\t"
        "10.1234\t9.5\t14.0\t20.1",
        drg_row(
            "005",
            True,
            False,
            "PRE",
            "SURG",
            "LIVER TRANSPLANT WITH MCC OR INTESTINAL TRANSPLANT",
            "10.1234",
            "9.5000",
            "14.0",
            "20.1",
        ),
    ),
    6: (
        "006\tNo\tNo\tPRE\tSURG\tLIVER TRANSPLANT WITHOUT MCC\t4.2\t4.2\tN/A\tN/A",
        drg_row(
            "006",
            False,
            False,
            "PRE",
            "SURG",
            "LIVER TRANSPLANT WITHOUT MCC",
            "4.2000",
            "4.2000",
            None,
            None,
        ),
    ),
    # zeros dropped ("12", "3", ".5", ".7"), lower case, extra spaces
    12: (
        "12\tno\tYES\t3\tmed\t  SPACED    TITLE \t.5\t.5\t.7\t1",
        drg_row("012", False, True, "03", "MED", "SPACED TITLE", "0.5000", "0.5000", "0.7", "1.0"),
    ),
    470: (
        f"470\tYes\tNo\t08\tSURG\t{HIP}\t1.8855\t1.8855\t1.7\t2.1",
        drg_row("470", True, False, "08", "SURG", HIP, "1.8855", "1.8855", "1.7", "2.1"),
    ),
    # as in the FY2026 file: MDC a blank, type "**", "." or nothing for a missing number
    981: (
        "981\tYes\tNo\t \tSURG\tEXTENSIVE O.R. PROCEDURES UNRELATED TO PRINCIPAL DIAGNOSIS WITH "
        "MCC\t4.6918\t4.6918\t8.4\t11.8",
        drg_row(
            "981",
            True,
            False,
            None,
            "SURG",
            "EXTENSIVE O.R. PROCEDURES UNRELATED TO PRINCIPAL DIAGNOSIS WITH MCC",
            "4.6918",
            "4.6918",
            "8.4",
            "11.8",
        ),
    ),
    998: (
        "998\tNo\tNo\t \t**\tPRINCIPAL DIAGNOSIS INVALID AS DISCHARGE DIAGNOSIS\t.\t.\t.\t",
        drg_row(
            "998",
            False,
            False,
            None,
            None,
            "PRINCIPAL DIAGNOSIS INVALID AS DISCHARGE DIAGNOSIS",
            None,
            None,
            None,
            None,
        ),
    ),
    999: (
        "999\tNo\tNo\t\t\tUNGROUPABLE\t\t\t\t",
        drg_row("999", False, False, None, None, "UNGROUPABLE", None, None, None, None),
    ),
}


def generated_drg(n: int) -> tuple[str, dict[str, object]]:
    weight, gmlos, amlos = f"1.{n:04d}", f"{n % 9 + 1}.{n % 10}", f"{n % 9 + 2}.{n % 10}"
    mdc = f"{n % 25 + 1:02d}"
    line = (
        f"{n:03d}\tNo\tYes\t{mdc}\tMED\tGENERATED DRG {n:03d}\t{weight}\t{weight}\t{gmlos}\t{amlos}"
    )
    row = drg_row(
        f"{n:03d}", False, True, mdc, "MED", f"GENERATED DRG {n:03d}", weight, weight, gmlos, amlos
    )
    return line, row


TABLE5_DRGS = [*range(1, 560), 981, 998, 999]
TABLE5_ROWS = [TABLE5_SPECIAL.get(n) or generated_drg(n) for n in TABLE5_DRGS]
TABLE5_LINES = [
    TABLE5_TITLE,
    TABLE5_HEADER,
    *(line for line, _ in TABLE5_ROWS),
    "\t" * 9,
    '"* Footnote: DRGs 998 and 999 have no weight."' + "\t" * 9,
    "Source: CMS, FY 2025 IPPS final rule" + "\t" * 9,
]
TABLE5_TEXT = "\r\n".join(TABLE5_LINES) + "\r\n"
TABLE5_EXPECTED = [row for _, row in TABLE5_ROWS]
TABLE5_NAME = "CMS-1808-F Table 5.txt"


def table5_line(prefix: str) -> int:
    """1-based line of TABLE5_TEXT where a row starting with ``prefix`` starts."""
    return TABLE5_TEXT[: TABLE5_TEXT.index("\r\n" + prefix)].count("\n") + 2


def test_table5_whole_rows(tmp_path: Path) -> None:
    """Every DRG row with the columns of the shipped FY2026 Table 5 CSV; title, header, blank and
    footnote rows skipped; numbers as Decimals with 4 (weights) and 1 (LOS) places."""
    source = read_source(write(tmp_path, TABLE5_NAME, TABLE5_TEXT.encode("cp1252")))

    rows = parse_table5(source, 2025)

    assert len(rows) == len(TABLE5_DRGS) == 562
    assert written(rows) == written(TABLE5_EXPECTED)


def test_table5_with_a_single_weight_column(tmp_path: Path) -> None:
    """Tables from before the 10% cap on weight decreases (adopted for FY 2023) have one
    "Weights" column and no "Weights - Before Cap": the weight is read from it and
    weight_before_cap is None. The header is in that style, not copied from a file."""
    header = (
        "MS-DRG\tFY 2022 Final Rule Post-Acute DRG\tFY 2022 Final Rule Special Pay DRG\tMDC\t"
        "TYPE\tMS-DRG Title\tWeights\tGeometric mean LOS\tArithmetic mean LOS"
    )
    lines = ["TABLE 5.\u2014LIST OF MS-DRGS ... FY 2022 Final Rule", header]
    expected: list[dict[str, object]] = []
    for n in range(1, 501):
        lines.append(f"{n:03d}\tYes\tNo\tPRE\tSURG\tDRG {n}\t2.{n:04d}\t3.1\t4.0")
        expected.append(
            drg_row(
                f"{n:03d}", True, False, "PRE", "SURG", f"DRG {n}", None, f"2.{n:04d}", "3.1", "4.0"
            )
        )
    source = read_source(write(tmp_path, "table5.txt", "\n".join(lines).encode("cp1252")))

    assert written(parse_table5(source, 2022)) == written(expected)


# ---------------------------------------------------------------- Tables 1A-1E

RATES_NAME = "CMS-1849-CN Tables 1A - 1E.txt"


def rates_expected(data: bytes, outlier_fixed_loss: Decimal | None) -> dict[str, object]:
    digest = hashlib.sha256(data).hexdigest()
    note = (
        "; outlier fixed-loss threshold given by the operator (not in these tables)"
        if outlier_fixed_loss is not None
        else ""
    )
    return {
        "fiscal_year": 2027,
        "effective_from": dt.date(2026, 10, 1),
        "effective_to": dt.date(2027, 9, 30),
        "labor_wage_index_above_1": Decimal("4519.68"),
        "non_labor_wage_index_above_1": Decimal("2328.32"),
        "labor_wage_index_at_most_1": Decimal("4245.76"),
        "non_labor_wage_index_at_most_1": Decimal("2602.24"),
        "capital_rate": Decimal("539.95"),
        "outlier_fixed_loss": outlier_fixed_loss,
        "source": (
            f"{RATES_NAME} (sha256 {digest}): labor and non-labor amounts from Table 1A line 6 "
            "(wage index above 1) and Table 1B line 12 (wage index at most 1), first column "
            "pair, column group 'Hospital Submitted Quality Data and is a Meaningful EHR User "
            "(Update = 2.3 Percent)'; capital rate from Table 1D line 22, row 'National'"
            f"{note}"
        ),
    }


@pytest.mark.parametrize("fixed_loss", [None, Decimal("40397.00")])
def test_rates_tables_fy2027(tmp_path: Path, fixed_loss: Decimal | None) -> None:
    """The FY2027 CN file gives the figures of shared/data/fy2027/ipps_rates_fy2027.json; the
    fixed-loss threshold is not in the file and is whatever the caller passes (any figure)."""
    data = RATES_FY2027.encode("cp1252")
    source = read_source(write(tmp_path, RATES_NAME, data))

    rates = parse_rates_tables(source, 2027, outlier_fixed_loss=fixed_loss)

    assert written(rates) == written(rates_expected(data, fixed_loss))


@pytest.mark.parametrize("fixed_loss", ["0", "-1.00", "40397.001", "NaN", "Infinity"])
def test_rates_refuse_a_bad_fixed_loss_threshold(tmp_path: Path, fixed_loss: str) -> None:
    source = read_source(write(tmp_path, RATES_NAME, RATES_FY2027.encode()))

    with pytest.raises(ReferenceDataError) as refused:
        parse_rates_tables(source, 2027, outlier_fixed_loss=Decimal(fixed_loss))

    assert str(refused.value) == (
        f"{RATES_NAME}: outlier fixed-loss threshold {fixed_loss}, expected a positive amount "
        "with at most 2 decimals"
    )


# ---------------------------------------------------------------- sources: zip, SHA-256


def make_zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


ORDER_BYTES = ("\n".join(ORDER_LINES) + "\n").encode()
CODES_ZIP = "2027-code-descriptions-tabular-order.zip"


def test_read_plain_file(tmp_path: Path) -> None:
    path = write(tmp_path, ORDER_NAME, ORDER_BYTES)

    assert read_source(path) == SourceFile(
        ORDER_NAME, ORDER_BYTES, hashlib.sha256(ORDER_BYTES).hexdigest()
    )


@pytest.mark.parametrize(
    ("member", "inside"),
    [
        pytest.param("icd10cm_order_2027.txt", "icd10cm_order_2027.txt", id="exact"),
        pytest.param("icd10cm_order_20??.txt", "icd10cm_order_2027.txt", id="glob"),
        pytest.param(
            "icd10cm_order_2027.txt", "Code Descriptions/icd10cm_order_2027.txt", id="in-a-folder"
        ),
    ],
)
def test_read_zip_member(tmp_path: Path, member: str, inside: str) -> None:
    """The CMS zip holds the order file beside the codes file and the addenda; the name and
    digest are those of the zip, the data that of the member."""
    path = make_zip(
        tmp_path / CODES_ZIP,
        {
            "icd10cm_codes_2027.txt": b"A000    Cholera due to Vibrio cholerae 01, biovar\n",
            inside: ORDER_BYTES,
            "icd10cm_order_addenda_2027.txt": b"Add:   00001 ...\n",
        },
    )
    digest = hashlib.sha256(path.read_bytes()).hexdigest()

    source = read_source(path, sha256=digest.upper(), member=member)

    assert source == SourceFile(f"{CODES_ZIP}:{inside}", ORDER_BYTES, digest)
    assert parse_order_file(source) == ORDER_ENTRIES


def test_sha256_accepted_and_refused(tmp_path: Path) -> None:
    path = write(tmp_path, ORDER_NAME, ORDER_BYTES)
    digest = hashlib.sha256(ORDER_BYTES).hexdigest()
    wrong = hashlib.sha256(b"another download").hexdigest()

    assert read_source(path, sha256=digest).sha256 == digest
    assert read_source(path, sha256=digest.upper()).sha256 == digest
    with pytest.raises(ReferenceDataError) as refused:
        read_source(path, sha256=wrong)
    assert str(refused.value) == (
        f"{ORDER_NAME}: SHA-256 mismatch: expected {wrong}, the file has {digest}"
    )


def test_zip_bomb_refused(tmp_path: Path) -> None:
    """A member over 200 MiB uncompressed (here 201 MiB of blanks, 0.2 MB compressed)."""
    path = tmp_path / CODES_ZIP
    with (
        zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive,
        archive.open("icd10cm_order_2027.txt", "w", force_zip64=True) as member,
    ):
        chunk = b" " * (1024 * 1024)
        for _ in range(MAX_MEMBER_BYTES // len(chunk) + 1):
            member.write(chunk)

    with pytest.raises(ReferenceDataError, match="larger than 200 MiB uncompressed; refused"):
        read_source(path, member="icd10cm_order_*.txt")


def damaged_zip(tmp_path: Path) -> Path:
    """A zip whose compressed data has a flipped byte (CRC or deflate error on reading)."""
    path = make_zip(tmp_path / CODES_ZIP, {"icd10cm_order_2027.txt": ORDER_BYTES * 20})
    data = bytearray(path.read_bytes())
    data[60] ^= 0xFF  # inside the member's compressed data, after its 30 + 22 byte header
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize(
    ("make", "kwargs", "fragment"),
    [
        pytest.param(
            lambda p: p / "missing.txt",
            {},
            "missing.txt: cannot read the file (No such file",
            id="missing-file",
        ),
        pytest.param(lambda p: p, {}, ": cannot read the file (Is a directory)", id="directory"),
        pytest.param(
            lambda p: write(p, ORDER_NAME, ORDER_BYTES),
            {"sha256": "abc"},
            f"{ORDER_NAME}: malformed SHA-256 'abc' given, expected 64 hexadecimal digits",
            id="malformed-digest",
        ),
        pytest.param(
            lambda p: write(p, ORDER_NAME, ORDER_BYTES),
            {"sha256": "g" * 64},
            "malformed SHA-256",
            id="non-hex-digest",
        ),
        pytest.param(
            lambda p: write(p, ORDER_NAME, ORDER_BYTES),
            {"member": "icd10cm_order_*.txt"},
            f"{ORDER_NAME}: not a zip archive, so it has no member 'icd10cm_order_*.txt'",
            id="member-of-a-plain-file",
        ),
        pytest.param(
            lambda p: make_zip(p / CODES_ZIP, {"a.txt": b"a", "b.txt": b"b"}),
            {},
            f"{CODES_ZIP}: a zip archive; name the member to read (members: 'a.txt', 'b.txt')",
            id="zip-without-member",
        ),
        pytest.param(
            lambda p: make_zip(p / CODES_ZIP, {"icd10cm_codes_2027.txt": b"x"}),
            {"member": "icd10cm_order_*.txt"},
            f"{CODES_ZIP}: no member match 'icd10cm_order_*.txt', expected exactly one "
            "(members: 'icd10cm_codes_2027.txt')",
            id="no-member-matches",
        ),
        pytest.param(
            lambda p: make_zip(
                p / CODES_ZIP,
                {"icd10cm_order_2027.txt": b"x", "icd10cm_order_addenda_2027.txt": b"y"},
            ),
            {"member": "icd10cm_order_*.txt"},
            f"{CODES_ZIP}: 2 members match 'icd10cm_order_*.txt', expected exactly one "
            "(members: 'icd10cm_order_2027.txt', 'icd10cm_order_addenda_2027.txt')",
            id="several-members-match",
        ),
        pytest.param(
            damaged_zip,
            {"member": "icd10cm_order_2027.txt"},
            f"{CODES_ZIP}: damaged or unreadable zip archive",
            id="damaged-zip",
        ),
    ],
)
def test_read_source_refusals(
    tmp_path: Path, make: Callable[[Path], Path], kwargs: dict[str, str], fragment: str
) -> None:
    path = make(tmp_path)

    with pytest.raises(ReferenceDataError) as refused:
        read_source(path, **kwargs)
    assert fragment in str(refused.value)
    assert "\n" not in str(refused.value)


# ---------------------------------------------------------------- malformed files


def order_with(*changes: tuple[int, str]) -> bytes:
    """ORDER_LINES with line n (1-based) replaced by the text given."""
    lines = list(ORDER_LINES)
    for number, line in changes:
        lines[number - 1] = line
    return ("\r\n".join(lines) + "\r\n").encode()


def with_column(number: int, column: int, char: str) -> tuple[int, str]:
    line = ORDER_LINES[number - 1]
    return number, line[: column - 1] + char + line[column:]


def table5_with(old: str, new: str, count: int = 1) -> bytes:
    assert old in TABLE5_TEXT
    return TABLE5_TEXT.replace(old, new, count).encode("cp1252")


def rates_with(old: str, new: str) -> bytes:
    assert old in RATES_FY2027
    return RATES_FY2027.replace(old, new, 1).encode("cp1252")


A009 = line_of(ORDER_LINES, "A009")
LINE_470 = table5_line("470\t")
HIP_CELLS = f"470\tYes\tNo\t08\tSURG\t{HIP}\t1.8855\t1.8855\t1.7\t2.1"
GROUP_1A = "Hospital Submitted Quality Data and is a Meaningful EHR User (Update = 2.3 Percent)"
GROUP_1A_NOT_EHR = (
    "Hospital Submitted Quality Data and is NOT a Meaningful EHR User (Update = -0.1 Percent)"
)
MALFORMED = [
    # ---- order file: the CMS "ICD-10-CM Order File Format" note (columns 1-5, 7-13, 15, 17-76,
    # 78-; columns 6, 14, 16, 77 blank) and the leaf rule (billable = listed without extension)
    pytest.param("order", b"", f"{ORDER_NAME}: empty file", id="order-empty"),
    pytest.param(
        "order",
        order_with((3, ORDER_LINES[2][:50])),
        "line 3: 50 characters, expected at least 78",
        id="order-truncated-line",
    ),
    pytest.param(
        "order",
        order_with((3, "")),
        "line 3: an empty line, expected at least 78 characters",
        id="order-empty-line",
    ),
    pytest.param(
        "order",
        order_with(with_column(4, 14, "X")),
        "line 4: column 14 is 'X', expected a blank",
        id="order-blank-column-14",
    ),
    pytest.param(
        "order",
        order_with(with_column(4, 6, "0")),
        "line 4: column 6 is '0', expected a blank",
        id="order-blank-column-6",
    ),
    pytest.param(
        "order",
        order_with(with_column(4, 77, "x")),
        "line 4: column 77 is 'x', expected a blank",
        id="order-blank-column-77",
    ),
    pytest.param(
        "order",
        order_with(with_column(5, 15, "2")),
        "line 5: flag '2' in column 15, expected 0 (header) or 1 (billable)",
        id="order-bad-flag",
    ),
    pytest.param(
        "order",
        order_with(with_column(2, 8, "\t")),
        "line 2: control character '\\t' in column 8",
        id="order-tab",
    ),
    pytest.param(
        "order",
        order_with((6, "00005" + ORDER_LINES[5][5:])),
        "line 6: order number 00005 does not increase (line 5 has 00005)",
        id="order-not-increasing",
    ),
    pytest.param(
        "order",
        order_with((6, "0006A" + ORDER_LINES[5][5:])),
        "line 6: order number '0006A' in columns 1-5, expected 5 digits",
        id="order-number-not-digits",
    ),
    pytest.param(
        "order",
        order_with((2, order_line(2, "a000", True, "Cholera", "Cholera"))),
        "line 2: 'a000   ' in columns 7-13 is not an ICD-10-CM code",
        id="order-lower-case-code",
    ),
    pytest.param(
        "order",
        order_with((2, order_line(2, " A000", True, "Cholera", "Cholera"))),
        "line 2: ' A000  ' in columns 7-13 is not an ICD-10-CM code",
        id="order-code-not-left-justified",
    ),
    pytest.param(
        "order",
        order_with((2, order_line(2, "A00.0", True, "Cholera", "Cholera"))),
        "line 2: 'A00.0  ' in columns 7-13 is not an ICD-10-CM code",
        id="order-dotted-code",
    ),
    pytest.param(
        "order",
        order_with((2, ORDER_LINES[1][:77] + "   ")),
        "line 2: empty long description (column 78 on)",
        id="order-empty-long-description",
    ),
    pytest.param(
        "order",
        order_with((2, order_line(2, "A000", True, "", "Cholera"))),
        "line 2: empty short description (columns 17-76)",
        id="order-empty-short-description",
    ),
    pytest.param(
        "order",
        order_with((4, order_line(4, "A000", True, "Cholera", "Cholera"))),
        "line 4: A000 is listed twice (first on line 2)",
        id="order-duplicate-code",
    ),
    pytest.param(
        "order",
        order_with((1, order_line(1, "A00", True, "Cholera", "Cholera"))),
        "line 1: A00 is flagged billable (1), but A000 on line 2 extends it; expected 0",
        id="order-billable-code-extended",
    ),
    pytest.param(
        "order",
        order_with((A009, order_line(A009, "A009", False, "Cholera", "Cholera, unspecified"))),
        f"line {A009}: A009 is a header (0), but no listed code extends it",
        id="order-header-without-children",
    ),
    pytest.param(
        "order",
        order_with().replace(ORDER_LINES[6].encode(), ORDER_LINES[6].encode() + b" \x81\x8d"),
        "line 7: byte 0x81 is neither UTF-8 nor cp1252",
        id="order-bad-encoding",
    ),
    # ---- Table 5: title, header names and cell rules of the CMS Table 5 text file
    pytest.param(
        "table5",
        table5_with("\tGeometric mean LOS", ""),
        "line 3: header lacks 'Geometric mean LOS'; columns found: 'MS-DRG', "
        "'FY 2025 Final Post-Acute DRG'",
        id="table5-missing-column",
    ),
    pytest.param(
        "table5",
        table5_with("FY 2025 Final Rule", "FY 2024 Final Rule"),
        f"{TABLE5_NAME}: not the FY 2025 Table 5 (its title names FY 2024)",
        id="table5-wrong-fiscal-year",
    ),
    pytest.param(
        "table5",
        table5_with("MS-DRG \t", "DRG\t"),
        "line 4: a DRG row before the header row",
        id="table5-no-header",
    ),
    pytest.param(
        "table5",
        table5_with(HIP_CELLS, HIP_CELLS.replace("1.8855\t1.7", "1.88.55\t1.7")),
        f"line {LINE_470}: DRG 470: weight is '1.88.55', expected a number",
        id="table5-malformed-weight",
    ),
    pytest.param(
        "table5",
        table5_with(HIP_CELLS, HIP_CELLS.removesuffix("\t2.1")),
        f"line {LINE_470}: DRG 470: 9 cells, expected at least 10 (as the header)",
        id="table5-short-row",
    ),
    pytest.param(
        "table5",
        table5_with(HIP_CELLS, HIP_CELLS.replace("\tYes", "\tMaybe")),
        f"line {LINE_470}: DRG 470: Post-Acute DRG is 'Maybe', expected Yes or No",
        id="table5-not-yes-or-no",
    ),
    pytest.param(
        "table5",
        table5_with(HIP_CELLS, HIP_CELLS.replace("\t08\t", "\t26\t")),
        f"line {LINE_470}: DRG 470: MDC is '26', expected 01-25, PRE or empty",
        id="table5-bad-mdc",
    ),
    pytest.param(
        "table5",
        table5_with(HIP_CELLS, HIP_CELLS.replace("\tSURG\t", "\tOR\t")),
        f"line {LINE_470}: DRG 470: TYPE is 'OR', expected MED, SURG or empty",
        id="table5-bad-type",
    ),
    pytest.param(
        "table5",
        table5_with(HIP_CELLS, HIP_CELLS.replace("\t1.7\t", "\t1.75\t")),
        f"line {LINE_470}: DRG 470: Geometric mean LOS '1.75' has more than 1 decimal place(s)",
        id="table5-too-many-decimals",
    ),
    pytest.param(
        "table5",
        table5_with(HIP_CELLS, HIP_CELLS.replace("1.8855\t1.7", "0.0000\t1.7")),
        f"line {LINE_470}: DRG 470: weight 0.0000 is not positive",
        id="table5-zero-weight",
    ),
    pytest.param(
        "table5",
        table5_with(HIP_CELLS, HIP_CELLS.replace("\t1.7\t", "\t2.7\t")),
        f"line {LINE_470}: DRG 470: geometric mean LOS 2.7 exceeds arithmetic mean LOS 2.1",
        id="table5-gmlos-above-amlos",
    ),
    pytest.param(
        "table5",
        table5_with("\r\n12\tno\t", "\r\n470\tno\t"),
        f"line {LINE_470}: DRG 470 is listed twice (first on line {table5_line('12' + chr(9))})",
        id="table5-duplicate-drg",
    ),
    pytest.param(
        "table5",
        table5_with("\tUNGROUPABLE\t", "\t \t"),
        f"line {table5_line('999')}: DRG 999: empty MS-DRG Title",
        id="table5-empty-title",
    ),
    pytest.param(
        "table5",
        "\r\n".join(TABLE5_LINES[:102]).encode("cp1252"),
        f"{TABLE5_NAME}: 100 DRG rows, expected at least 500",
        id="table5-truncated",
    ),
    pytest.param(
        "table5",
        table5_with('no weight."', "no weight."),
        f"line {table5_line(chr(34) + '* Footnote')}: malformed tab-separated text",
        id="table5-unterminated-quote",
    ),
    # ---- Tables 1A-1E: the FY 2027 CN file's layout
    pytest.param(
        "rates",
        rates_with("FY 2027 CN Tables", "FY 2026 CN Tables"),
        "line 1: not the FY 2027 Tables 1A-1E (first line 'FY 2026 CN Tables 1A-1E')",
        id="rates-wrong-fiscal-year",
    ),
    pytest.param(
        "rates",
        rates_with("(66.0 PERCENT LABOR SHARE", "(68.0 PERCENT LABOR SHARE"),
        "line 6: TABLE 1A: labor share 0.6600 of $4519.68 / $2328.32 is not the 68.0 percent "
        "the title states",
        id="rates-wrong-labor-share-1a",
    ),
    pytest.param(
        "rates",
        rates_with(
            '"$4,245.76 "\t"$2,602.24 "\t"$4,146.16', '"$4,345.76 "\t"$2,602.24 "\t"$4,146.16'
        ),
        "line 12: TABLE 1B: labor share 0.6255 of $4345.76 / $2602.24 is not the 62 percent",
        id="rates-wrong-labor-share-1b",
    ),
    pytest.param(
        "rates",
        rates_with(f"{GROUP_1A}\t\t{GROUP_1A_NOT_EHR}", f"{GROUP_1A_NOT_EHR}\t\t{GROUP_1A}"),
        f"line 3: TABLE 1A: the column group of the first amounts is '{GROUP_1A_NOT_EHR}', "
        "expected one naming 'Submitted Quality Data and is a Meaningful EHR User'",
        id="rates-wrong-column-group",
    ),
    pytest.param(
        "rates",
        rates_with("Labor-related\tNonlabor-related", "Nonlabor-related\tLabor-related"),
        "line 5: TABLE 1A: expected 'Labor-related' and 'Nonlabor-related' above the first amounts",
        id="rates-labor-columns-swapped",
    ),
    pytest.param(
        "rates",
        rates_with("TABLE 1D. -", "TABLE 9D. -"),
        f"{RATES_NAME}: TABLE 1D not found",
        id="rates-table-1d-missing",
    ),
    pytest.param(
        "rates",
        rates_with('"$4,519.68 "', '"$4,519.6 "'),
        "line 6: TABLE 1A labor amount is '$4,519.6 ', expected dollars with 2 decimals",
        id="rates-amount-not-2-decimals",
    ),
    pytest.param(
        "rates",
        rates_with("National\t$539.95 ", "National\t$0.00 "),
        "line 22: TABLE 1D capital rate is '$0.00 ', expected a positive amount",
        id="rates-capital-rate-zero",
    ),
]
PARSE: dict[str, Callable[[SourceFile], object]] = {
    "order": parse_order_file,
    "table5": lambda source: parse_table5(source, 2025),
    "rates": lambda source: parse_rates_tables(source, 2027),
}
NAMES = {"order": ORDER_NAME, "table5": TABLE5_NAME, "rates": RATES_NAME}


@pytest.mark.parametrize(("kind", "data", "fragment"), MALFORMED)
def test_malformed_files_are_refused(tmp_path: Path, kind: str, data: bytes, fragment: str) -> None:
    """Each malformed file fails whole with one ReferenceDataError: one line, starting with the
    file name, naming the line and what was expected. Nothing is half parsed."""
    source = read_source(write(tmp_path, NAMES[kind], data))

    with pytest.raises(ReferenceDataError) as refused:
        PARSE[kind](source)

    message = str(refused.value)
    assert message.startswith(NAMES[kind])
    assert "\n" not in message
    assert fragment in message
