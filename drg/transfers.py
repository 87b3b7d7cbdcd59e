"""IPPS transfer payments (42 CFR 412.4): a stay that ends in a transfer is paid a per diem, not
the full MS-DRG payment.

Which discharges are transfers (the UB-04 patient discharge status, NUBC form locator 17):

- **acute care transfers**, 42 CFR 412.4(b): to another IPPS hospital (02, short-term general
  hospital; 82, the same with a planned acute readmission) or to a critical access hospital
  (412.4(b)(4): 66; 94 with a planned readmission), whatever the MS-DRG;
- **post-acute care transfers**, 42 CFR 412.4(c), only from the MS-DRGs Table 5 flags
  ``post_acute`` (412.4(d)): to a hospital or unit excluded from the IPPS (412.4(c)(1): 05
  designated cancer center or children's hospital, 62 inpatient rehabilitation facility, 63
  long-term care hospital, 65 psychiatric hospital or unit), to a skilled nursing facility
  (412.4(c)(2): 03, and 61, a swing bed, where the hospital gives SNF care), to home health
  (412.4(c)(3): 06; the regulation asks that the services begin within 3 days, which a claim
  does not show, so the status alone decides, as Medicare's claims processing does), to
  hospice (412.4(c)(4), discharges from 2018-10-01: 50, 51); and the planned-readmission
  statuses of each (83, 85, 86, 89, 90, 91, 93).

Every other status (01 home, 04 custodial care, 07 left against advice, 20 expired, 43 federal
hospital, ...) is a discharge, paid in full.

Payment, 42 CFR 412.4(f), for operating and capital alike (each from its unrounded full
amount, rounded half-up to cents like the full payment):

    per diem = full payment / GMLOS (Table 5)
    transfer = min(full, per diem x (length of stay + 1))   the graduated per diem: twice
                                                             the per diem for the first day
    special pay = min(full, 0.5 x full + 0.5 x per diem x (length of stay + 1))

The special rule of 412.4(f) holds for post-acute transfers from the MS-DRGs that CMS designates
in each final rule (Table 5's ``special_pay`` column): half the full payment, plus the per diem
for the first day and half the per diem for each further day, up to the full payment. Acute
care transfers from those MS-DRGs get the graduated per diem.

The length of stay counts the day of admission and not the day of discharge; a stay that
begins and ends on one day counts one day (Medicare Benefit Policy Manual, chapter 3, 20.1).
"""

import datetime as dt
from decimal import Decimal
from typing import Final, Literal

TransferRule = Literal["acute", "post_acute", "post_acute_special_pay"]

#: 42 CFR 412.4(b): status -> what it is (NUBC patient discharge status)
ACUTE_TRANSFER_STATUSES: Final[dict[int, str]] = {
    2: "short-term general hospital",
    66: "critical access hospital",
    82: "short-term general hospital, planned acute readmission",
    94: "critical access hospital, planned acute readmission",
}
#: 42 CFR 412.4(c): status -> what it is
POST_ACUTE_TRANSFER_STATUSES: Final[dict[int, str]] = {
    3: "skilled nursing facility",
    5: "designated cancer center or children's hospital",
    6: "home under a home health organization",
    50: "hospice, home",
    51: "hospice, medical facility",
    61: "hospital-based swing bed",
    62: "inpatient rehabilitation facility",
    63: "long-term care hospital",
    65: "psychiatric hospital or unit",
    83: "skilled nursing facility, planned acute readmission",
    85: "designated cancer center or children's hospital, planned acute readmission",
    86: "home health, planned acute readmission",
    89: "swing bed, planned acute readmission",
    90: "inpatient rehabilitation facility, planned acute readmission",
    91: "long-term care hospital, planned acute readmission",
    93: "psychiatric hospital or unit, planned acute readmission",
}
HOSPICE_STATUSES: Final = frozenset({50, 51})
HOSPICE_FROM: Final = dt.date(2018, 10, 1)  # 42 CFR 412.4(c)(4)
HALF: Final = Decimal("0.5")
#: A DRG whose GMLOS is at most 2 days is paid in full for any transfer: the first day alone
#: earns two per diems (2 / GMLOS >= 1).
FULL_FROM_FIRST_DAY: Final = Decimal("2")


def transfer_rule(
    discharge_status: int, discharge_date: dt.date, post_acute_drg: bool, special_pay_drg: bool
) -> TransferRule | None:
    """The transfer rule a discharge falls under, or None for a discharge paid in full."""
    if discharge_status in ACUTE_TRANSFER_STATUSES:
        return "acute"
    if discharge_status not in POST_ACUTE_TRANSFER_STATUSES or not post_acute_drg:
        return None
    if discharge_status in HOSPICE_STATUSES and discharge_date < HOSPICE_FROM:
        return None
    return "post_acute_special_pay" if special_pay_drg else "post_acute"


def length_of_stay(admission_date: dt.date, discharge_date: dt.date) -> int:
    """Days, the day of discharge not counted; a same-day stay is one day. Raises ValueError
    when the admission is after the discharge."""
    days = (discharge_date - admission_date).days
    if days < 0:
        raise ValueError("admission_date is after discharge_date")
    return max(days, 1)


def transfer_amount(full: Decimal, gmlos: Decimal, days: int, rule: TransferRule) -> Decimal:
    """The transfer payment for one component (operating or capital) whose full payment is
    ``full`` (unrounded), for a stay of ``days`` in a DRG of geometric mean length of stay
    ``gmlos`` (days). Never more than ``full``. Raises ValueError for a GMLOS that is not
    positive."""
    if not gmlos > 0:
        raise ValueError("GMLOS must be positive")
    graduated = full / gmlos * (days + 1)
    if rule == "post_acute_special_pay":
        graduated = HALF * full + HALF * graduated
    return min(full, graduated)
