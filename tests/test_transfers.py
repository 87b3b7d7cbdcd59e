"""Transfer payments (42 CFR 412.4; drg/transfers.py) and what an estimate says it leaves out.

Figures are FY2026 at the national wage index (1.0, so the 62% pair of Table 1B and a GAF of
1.0): operating (4186.62 + 2565.99) x weight = 6752.61 x weight, capital 524.15 x weight
(42 CFR 412.64, 412.308; CMS-1833-F Tables 1B and 1D). DRG 291 (I50.21 + J96.01): weight
1.2838, GMLOS 3.8 (Table 5, post-acute DRG): full 8669.000718 -> 8669.00 and 672.903770 ->
672.90.
"""

import datetime as dt
import json
from decimal import Decimal
from typing import Any

import pytest
from typer.testing import CliRunner

from drg.pricing import IppsRates, Transfer, estimate_payment
from drg.transfers import (
    ACUTE_TRANSFER_STATUSES,
    POST_ACUTE_TRANSFER_STATUSES,
    TransferRule,
    length_of_stay,
    transfer_amount,
    transfer_rule,
)
from schemas.coded import NOT_INCLUDED
from tests.reference_support import invoke
from worker.cli import app
from worker.settings import Settings

pytest_plugins = ("tests.reference_fixtures",)

DAY = dt.date(2026, 1, 15)
FY2026 = IppsRates(
    2026,
    Decimal("4456.72"),
    Decimal("2295.89"),
    Decimal("4186.62"),
    Decimal("2565.99"),
    Decimal("524.15"),
    Decimal("40397.00"),
)
NATIONAL = Decimal("1.0000")


@pytest.mark.parametrize(
    ("status", "post_acute", "special_pay", "rule"),
    [
        (1, True, False, None),  # home: a discharge (412.4(a))
        (2, False, False, "acute"),  # short-term general hospital, any DRG (412.4(b)(1))
        (66, False, False, "acute"),  # critical access hospital (412.4(b)(4))
        (82, False, False, "acute"),  # 02 with a planned readmission
        (3, True, False, "post_acute"),  # SNF from a post-acute DRG (412.4(c)(2))
        (3, False, False, None),  # ... not from another DRG (412.4(d))
        (6, True, False, "post_acute"),  # home health (412.4(c)(3))
        (62, True, False, "post_acute"),  # IRF, excluded from the IPPS (412.4(c)(1))
        (50, True, False, "post_acute"),  # hospice, from FY2019 (412.4(c)(4))
        (63, True, True, "post_acute_special_pay"),  # LTCH from a special-pay DRG (412.4(f))
        (2, True, True, "acute"),  # an acute transfer is per diem even from special-pay DRGs
        (4, True, False, None),  # custodial care: not a transfer
        (7, True, False, None),  # left against medical advice
        (20, True, False, None),  # expired
        (43, True, False, None),  # federal hospital: neither (b) nor (c)
    ],
)
def test_which_discharges_are_transfers(
    status: int, post_acute: bool, special_pay: bool, rule: str | None
) -> None:
    assert transfer_rule(status, DAY, post_acute, special_pay) == rule


def test_hospice_is_a_transfer_from_fy2019_only() -> None:
    """42 CFR 412.4(c)(4): discharges on or after 2018-10-01."""
    assert transfer_rule(50, dt.date(2018, 9, 30), True, False) is None
    assert transfer_rule(51, dt.date(2018, 10, 1), True, False) == "post_acute"


def test_the_status_lists_do_not_overlap() -> None:
    assert not set(ACUTE_TRANSFER_STATUSES) & set(POST_ACUTE_TRANSFER_STATUSES)


def test_length_of_stay_counts_the_admission_day_not_the_discharge_day() -> None:
    """Medicare Benefit Policy Manual, chapter 3, 20.1: a same-day stay is one day."""
    assert length_of_stay(dt.date(2026, 1, 14), DAY) == 1
    assert length_of_stay(DAY, DAY) == 1
    assert length_of_stay(dt.date(2026, 1, 10), DAY) == 5
    with pytest.raises(ValueError, match="after"):
        length_of_stay(DAY, dt.date(2026, 1, 14))


@pytest.mark.parametrize(
    ("days", "rule", "expected"),
    [
        # 1000 / 4 per day, twice for the first: 250 x 2
        (1, "acute", Decimal("500")),
        (2, "post_acute", Decimal("750")),
        # 250 x 5 = 1250 > 1000: never more than the full payment
        (4, "acute", Decimal("1000")),
        # special pay: 500 + 0.5 x 250 x 2 = 750
        (1, "post_acute_special_pay", Decimal("750")),
        # 500 + 0.5 x 250 x 4 = 1000: full
        (3, "post_acute_special_pay", Decimal("1000")),
    ],
)
def test_the_per_diem_is_graduated_and_capped(
    days: int, rule: TransferRule, expected: Decimal
) -> None:
    assert transfer_amount(Decimal("1000"), Decimal("4"), days, rule) == expected


def test_special_pay_drgs_get_half_the_full_payment_plus_half_the_per_diem() -> None:
    """DRG 291's figures as if it were special-pay, 1 day: operating 0.5 x 8669.000718 + 0.5 x
    (8669.000718 / 3.8 x 2) = 4334.500359 + 2281.315978 = 6615.82; capital 0.5 x 672.903770 +
    0.5 x (672.903770 / 3.8 x 2) = 336.451885 + 177.079939 = 513.53."""
    transfer = Transfer("post_acute_special_pay", 63, 1, Decimal("3.8"))
    est = estimate_payment(Decimal("1.2838"), FY2026, NATIONAL, "national", transfer)
    assert (est.operating, est.capital, est.total) == (
        Decimal("6615.82"),
        Decimal("513.53"),
        Decimal("7129.35"),
    )
    assert est.transfer is not None
    assert est.transfer.adjustment == Decimal("7129.35") - Decimal("9341.90")


def estimate(settings: Settings, *args: str) -> dict[str, Any]:
    result = invoke(
        settings,
        *("estimate", "--age", "70", "--sex", "M", "--discharge-date", "2026-01-15", "--json"),
        *args,
    )
    fields: dict[str, Any] = json.loads(result.stdout)
    return fields


@pytest.mark.parametrize("status", ["2", "3"])
def test_a_one_day_transfer_from_drg_291_is_paid_two_per_diems(
    reference: Settings, status: str
) -> None:
    """Admitted 2026-01-14, discharged 2026-01-15: 1 day, so 2 per diems of GMLOS 3.8:
    operating 8669.000718 x 2 / 3.8 = 4562.63, capital 672.903770 x 2 / 3.8 = 354.16; total
    4916.79. Status 2 is an acute transfer (412.4(b)), status 3 a post-acute one from a
    post-acute DRG (412.4(c)(2), (d))."""
    fields = estimate(
        reference,
        *("--pdx", "I50.21", "--sdx", "J96.01", "--admission-date", "2026-01-14"),
        *("--discharge-status", status),
    )
    assert fields["drg"]["code"] == "291"
    est = fields["estimate"]
    assert (est["operating"], est["capital"], est["total"]) == ("4562.63", "354.16", "4916.79")
    assert est["transfer"] == {
        "rule": "acute" if status == "2" else "post_acute",
        "discharge_status": int(status),
        "length_of_stay": 1,
        "gmlos": "3.8",
        "full_operating": "8669.00",
        "full_capital": "672.90",
        "adjustment": "-4425.11",
    }
    assert est["upper_bound"] is False
    assert fields["status"] == "estimated"


def test_a_discharge_home_is_paid_in_full(reference: Settings) -> None:
    fields = estimate(
        reference,
        *("--pdx", "I50.21", "--sdx", "J96.01", "--admission-date", "2026-01-14"),
        *("--discharge-status", "1"),
    )
    est = fields["estimate"]
    assert (est["total"], est["transfer"], est["upper_bound"]) == ("9341.90", None, False)
    # what the estimate leaves out travels with it
    assert est["not_included"] == list(NOT_INCLUDED)
    assert {"outlier", "indirect_medical_education", "disproportionate_share"} <= set(
        est["not_included"]
    )


def test_a_transfer_without_an_admission_date_is_an_upper_bound(reference: Settings) -> None:
    """The length of stay is unknown: the full payment, which a transfer never exceeds."""
    fields = estimate(reference, *("--pdx", "I50.21", "--sdx", "J96.01", "--discharge-status", "2"))
    assert "transfer" in fields["review_reasons"]
    est = fields["estimate"]
    assert (est["total"], est["transfer"], est["upper_bound"]) == ("9341.90", None, True)


def test_a_post_acute_status_from_another_drg_is_paid_in_full(reference: Settings) -> None:
    """DRG 313 chest pain is not a post-acute DRG (Table 5): to a SNF after one day it is paid
    in full, 6752.61 x 0.7200 = 4861.88 + 524.15 x 0.7200 = 377.39 = 5239.27."""
    fields = estimate(
        reference,
        *("--pdx", "R07.9", "--admission-date", "2026-01-14", "--discharge-status", "3"),
    )
    assert fields["drg"]["code"] == "313"
    est = fields["estimate"]
    assert (est["total"], est["transfer"]) == ("5239.27", None)


def test_an_acute_transfer_past_the_gmlos_is_capped_at_the_full_payment(
    reference: Settings,
) -> None:
    """DRG 313, GMLOS 1.7, 2 days: 3 per diems = 1.76 x full, capped at full (412.4(f)):
    5239.27, adjustment 0.00."""
    fields = estimate(
        reference,
        *("--pdx", "R07.9", "--admission-date", "2026-01-13", "--discharge-status", "2"),
    )
    est = fields["estimate"]
    assert est["total"] == "5239.27"
    assert (est["transfer"]["rule"], est["transfer"]["adjustment"]) == ("acute", "0.00")


def test_an_admission_after_the_discharge_is_refused(reference: Settings) -> None:
    result = CliRunner().invoke(
        app,
        [
            *("estimate", "--pdx", "I50.21", "--age", "70", "--sex", "M"),
            *("--discharge-date", "2026-01-15", "--admission-date", "2026-01-16"),
        ],
        env=reference.to_env(),
    )
    assert result.exit_code == 2
    assert "--admission-date is after --discharge-date" in result.output


def test_the_pipeline_prices_a_transfer_from_the_events_admission_date(
    reference: Settings,
) -> None:
    """claimcoder code runs the worker's stages: the claims.raw admission_date gives the length
    of stay. Heart failure with acute respiratory failure, transferred (02) after one day."""
    result = invoke(
        reference,
        *("code", "Acute on chronic systolic heart failure with acute respiratory failure."),
        *("--age", "70", "--sex", "M", "--discharge-date", "2026-01-15"),
        *("--admission-date", "2026-01-14", "--discharge-status", "2"),
    )
    event = json.loads(result.stdout)
    est = event["estimate"]
    assert est["transfer"]["rule"] == "acute"
    assert est["transfer"]["length_of_stay"] == 1
    full = Decimal(est["transfer"]["full_operating"]) + Decimal(est["transfer"]["full_capital"])
    assert Decimal(est["total"]) < full
    assert Decimal(est["total"]) == full + Decimal(est["transfer"]["adjustment"])


def test_a_special_pay_drg_transferred_to_a_snf_gets_half_plus_half_the_per_diem(
    reference: Settings,
) -> None:
    """Hip fracture (S72.001A) with a hip replacement (0SR9019): DRG 522, special pay and
    post-acute (Table 5), weight 2.1177, GMLOS 4.0; to a SNF (03) after 2 days (412.4(c)(2),
    (f)). Operating full 6752.61 x 2.1177 = 14300.002197; per diem 3575.000549 x 3 = 10725.00;
    0.5 x 14300.002197 + 0.5 x 10725.001648 = 12512.50. Capital full 524.15 x 2.1177 =
    1109.992455; 0.5 x 1109.992455 + 0.5 x (277.498114 x 3) = 971.24. Total 13483.74."""
    fields = estimate(
        reference,
        *("--pdx", "S72.001A", "--procedure", "0SR9019", "--admission-date", "2026-01-13"),
        *("--discharge-status", "3"),
    )
    assert fields["drg"]["code"] == "522"
    est = fields["estimate"]
    assert (est["operating"], est["capital"], est["total"]) == ("12512.50", "971.24", "13483.74")
    assert (est["transfer"]["rule"], est["transfer"]["length_of_stay"]) == (
        "post_acute_special_pay",
        2,
    )
    assert (est["transfer"]["full_operating"], est["transfer"]["full_capital"]) == (
        "14300.00",
        "1109.99",
    )


def test_a_transfer_from_a_drg_of_gmlos_2_or_less_is_paid_in_full_without_a_flag(
    reference: Settings,
) -> None:
    """DRG 470 (GMLOS 1.9) to a SNF: even one day earns 2 / 1.9 > 1 of the full payment (412.4(f)),
    so the length of stay does not matter and the full payment is exact, not an upper bound."""
    fields = estimate(
        reference, *("--pdx", "M16.11", "--procedure", "0SR9019", "--discharge-status", "3")
    )
    assert fields["drg"]["code"] == "470"
    est = fields["estimate"]
    assert (est["total"], est["upper_bound"]) == ("14036.14", False)
    assert "transfer" not in fields["review_reasons"]
