"""Files in CMS's layouts, written by tests: the ICD-10-CM order file, IPPS Table 5 and the
IPPS "Tables 1A-1E" text file (layouts: see tests/test_cms_files.py and drg/cms/)."""

import csv
import io
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from drg.codeset.source import CodeRecord


def order_line(order: int, code: str, billable: bool, short: str, long: str) -> str:
    """One entry in the CMS order-file layout: "00001 A00     0 Cholera<pad to 60> Cholera"."""
    assert len(code) <= 7
    assert len(short) <= 60
    return f"{order:05d} {code:<7} {int(billable)} {short:<60} {long}"


def order_file(records: Iterable[CodeRecord]) -> bytes:
    """A whole code list as CMS's order file (the short title is the long one cut to 60)."""
    lines = [
        order_line(i, r.code, r.billable, r.description[:60], r.description)
        for i, r in enumerate(records, start=1)
    ]
    return ("\n".join(lines) + "\n").encode("utf-8")


TABLE5_HEADER = (
    "MS-DRG \tFY {year} Final Post-Acute DRG\tFY {year} Final Special Pay DRG\tMDC\tTYPE\t"
    "MS-DRG Title\tWeights - Before Cap\tWeights - 10% Cap Applied \tGeometric mean LOS\t"
    "Arithmetic mean LOS"
)


def table5_file(fiscal_year: int, rows: Iterable[Mapping[str, Any]]) -> bytes:
    """Table 5 as CMS publishes it (cp1252, tab-separated, a quoted two-line title) from rows in
    the shape of drg/data/fy*/table5.csv (strings: "true"/"false", "" for missing)."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter="\t", lineterminator="\r\n")
    writer.writerow(
        [
            "TABLE 5.\u2014LIST OF MS-DRGS, RELATIVE WEIGHTING FACTORS,\nAND MEAN LENGTH OF "
            f"STAY\u2014FY {fiscal_year} Final Rule",
            *[""] * 9,
        ]
    )
    writer.writerow(TABLE5_HEADER.format(year=fiscal_year).split("\t"))
    for row in rows:
        writer.writerow(
            [
                row["drg"],
                "Yes" if row["post_acute"] == "true" else "No",
                "Yes" if row["special_pay"] == "true" else "No",
                row["mdc"],
                row["type"] or "**",
                row["title"],
                row["weight_before_cap"] or row["weight"] or ".",
                row["weight"] or ".",
                row["gmlos"] or ".",
                row["amlos"] or ".",
            ]
        )
    return out.getvalue().encode("cp1252")


def rates_file(
    fiscal_year: int, labor_above_1: Decimal | None = None, capital_rate: Decimal | None = None
) -> bytes:
    """The FY 2027 CN Tables 1A-1E relabelled for ``fiscal_year``; optionally with another
    Table 1A labor amount (the non-labor amount follows, keeping the 66% labor share) and
    another capital rate."""
    text = RATES_FY2027.replace("FY 2027", f"FY {fiscal_year}")
    if labor_above_1 is not None:
        non_labor = (labor_above_1 * Decimal(34) / Decimal(66)).quantize(Decimal("0.01"))
        text = text.replace(
            '"$4,519.68 "\t"$2,328.32 "', f'"${labor_above_1:,} "\t"${non_labor:,} "'
        )
    if capital_rate is not None:
        text = text.replace("National\t$539.95 ", f"National\t${capital_rate:,} ")
    return text.encode("cp1252")


RATES_FY2027 = """FY 2027 CN Tables 1A-1E\t\t\t\t\t\t\t\t\t\t\t
TABLE 1A.  NATIONAL ADJUSTED OPERATING STANDARDIZED AMOUNTS; LABOR/NONLABOR (66.0 PERCENT LABOR SHARE/34.0 PERCENT NONLABOR SHARE IF WAGE INDEX GREATER THAN 1)\t\t\t\t\t\t\t\t\t\t\t
Hospital Submitted Quality Data and is a Meaningful EHR User (Update = 2.3 Percent)\t\tHospital Submitted Quality Data and is NOT a Meaningful EHR User (Update = -0.1 Percent)\t\tHospital Did NOT Submit Quality Data and is a Meaningful EHR User (Update = 1.5 Percent)\t\t"Hospital Did NOT Submit Quality Data and is NOT a Meaningful EHR User
 (Update = -0.9 Percent)"\t\t\t\t\tz
Labor-related\tNonlabor-related\tLabor-related\tNonlabor-related\tLabor-related\tNonlabor-related\tLabor-related\tNonlabor-related\t\t\t\t
"$4,519.68 "\t"$2,328.32 "\t"$4,413.65 "\t"$2,273.70 "\t"$4,484.34 "\t"$2,310.11 "\t"$4,378.30 "\t"$2,255.49 "\t\t\t\t
\t\t\t\t\t\t\t\t\t\t\t
"TABLE 1B.  NATIONAL ADJUSTED OPERATING STANDARDIZED AMOUNTS, LABOR/NONLABOR (62 PERCENT LABOR SHARE/38 PERCENT NONLABOR SHARE IF WAGE INDEX LESS THAN OR EQUAL TO 1)"\t\t\t\t\t\t\t\t\t\t\t
Hospital Submitted Quality Data and is a Meaningful EHR User (Update = 2.3 Percent)\t\tHospital Submitted Quality Data and is NOT a Meaningful EHR User (Update = -0.1 Percent)\t\tHospital Did NOT Submit Quality Data and is a Meaningful EHR User (Update = 1.5 Percent)\t\t"Hospital Did NOT Submit Quality Data and is NOT a Meaningful EHR User
 (Update = -0.9 Percent)"\t\t\t\t\t
Labor-related\tNonlabor-related\tLabor-related\tNonlabor-related\tLabor-related\tNonlabor-related\tLabor-related\tNonlabor-related\t\t\t\t
"$4,245.76 "\t"$2,602.24 "\t"$4,146.16 "\t"$2,541.19 "\t"$4,212.56 "\t"$2,581.89 "\t"$4,112.95 "\t"$2,520.84 "\t\t\t\t
\t\t\t\t\t\t\t\t\t\t\t
"TABLE 1C.  ADJUSTED OPERATING STANDARDIZED AMOUNTS FOR HOSPITALS IN PUERTO RICO, LABOR/NONLABOR (NATIONAL:  62 PERCENT LABOR SHARE/38 PERCENT NONLABOR SHARE BECAUSE WAGE INDEX IS LESS THAN OR EQUAL TO 1)"\t\t\t\t\t\t\t\t\t\t\t
\tRates if Wage Index Greater Than 1\t\tHospital is a Meaningful EHR User and Wage Index Less Than or Equal to 1 (Update = 2.3)\t\tHospital is NOT a Meaningful EHR User and Wage Index Less Than or Equal to 1 (Update = -0.1)\t\t\t\t\t\t
\tLabor\tNonlabor\tLabor\tNonlabor\tLabor\tNonlabor\t\t\t\t\t
National1\tNot Applicable\tNot Applicable\t"$4,245.76 "\t"$2,602.24 "\t"$4,146.16 "\t"$2,541.19 "\t\t\t\t\t
"1For FY 2027, there are no CBSAs in Puerto Rico with a national wage index greater than 1."\t\t\t\t\t\t\t\t\t\t\t
\t\t\t\t\t\t\t\t\t\t\t
TABLE 1D. -  CAPITAL STANDARD FEDERAL PAYMENT RATE\t\t\t\t\t\t\t\t\t\t\t
\tRate\t\t\t\t\t\t\t\t\t\t
National\t$539.95 \t\t\t\t\t\t\t\t\t\t
\t\t\t\t\t\t\t\t\t\t\t
"TABLE 1E-  LTCH PPS STANDARD FEDERAL PAYMENT RATE

"\t\t\t\t\t\t\t\t\t\t\t
\t\t\t\tFull Update (2.3 Percent)\tReduced Update* (0.3 Percent)\t\t\t\t\t\t
Standard Federal Rate*\t\t\t\t"$52,126.94 "\t"$51,107.84 "\t\t\t\t\t\t
"* For LTCHs that fail to submit quality reporting data for FY 2027 in accordance with the LTCH Quality Reporting Program (LTCH QRP), the annual update is reduced by 2.0 percentage points as required by section 1886(m)(5) of the Act.'"\t\t\t\t\t\t\t\t\t\t\t
"""  # noqa: E501 (the file as CMS published it)
