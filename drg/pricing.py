"""IPPS operating and capital payment for a batch of grouped claims, one query per batch.

Formula (42 CFR 412.64 and 412.308; the amounts of each fiscal year's final rule, FY2026
CMS-1833-F and FY2027 CMS-1849-F, Tables 1A, 1B and 1D)::

    operating = (labor x wage_index + non_labor) x weight
    capital   = capital_rate x wage_index ^ 0.6848 x weight      (GAF = wage_index ^ 0.6848)
    total     = operating + capital

The labor/non-labor pair is the one for wage indexes above 1 (66% labor) or at most 1 (62%).

Rounding: Decimal arithmetic at 28 significant digits with no intermediate rounding (the GAF
is not rounded either); ``operating`` and ``capital`` are each rounded half-up to cents, and
``total`` is the sum of the two rounded amounts, so the parts always add up to the total.
DRG 291 at wage index 1.0369 gives 8880.13 + 689.81 = 9569.94 (rounding the GAF to four
decimals first would give 689.79).

Transfers are paid per 42 CFR 412.4(f) (drg.transfers). Outlier payments, IME, DSH,
uncompensated care, new technology add-ons and quality program adjustments are not estimated;
every estimate lists them in ``not_included``.
"""

import datetime as dt
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Context, Decimal
from typing import Any, Final, Literal

from sqlalchemy import Date, Select, SmallInteger, String, and_, bindparam, column, func, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from drg.exceptions import wrap_database_error
from drg.tables import drg_weights, ipps_rates, providers
from drg.transfers import TransferRule, transfer_amount
from schemas.coded import Estimate, TransferPayment

CAPITAL_GAF_EXPONENT: Final = Decimal("0.6848")
NATIONAL_WAGE_INDEX: Final = Decimal("1.0000")
CENT: Final = Decimal("0.01")
_CONTEXT: Final = Context(prec=28)

WageIndexBasis = Literal["provider", "national", "override"]


@dataclass(frozen=True, slots=True)
class IppsRates:
    fiscal_year: int
    labor_wage_index_above_1: Decimal
    non_labor_wage_index_above_1: Decimal
    labor_wage_index_at_most_1: Decimal
    non_labor_wage_index_at_most_1: Decimal
    capital_rate: Decimal
    outlier_fixed_loss: Decimal | None  # None: not known for the year (FY2027 as shipped)

    def standardized_amounts(self, wage_index: Decimal) -> tuple[Decimal, Decimal]:
        """(labor, non-labor) for ``wage_index``."""
        if wage_index > 1:
            return self.labor_wage_index_above_1, self.non_labor_wage_index_above_1
        return self.labor_wage_index_at_most_1, self.non_labor_wage_index_at_most_1


@dataclass(frozen=True, slots=True)
class DrgWeight:
    drg: str
    title: str
    mdc: str | None
    type: Literal["MED", "SURG"] | None
    weight: Decimal | None  # None for 998 and 999
    gmlos: Decimal | None
    amlos: Decimal | None
    post_acute: bool = False  # Table 5: post-acute transfers are paid a per diem (412.4(c))
    special_pay: bool = False  # Table 5: ... by the special rule of 412.4(f)


@functools.lru_cache(maxsize=4096)
def _gaf(wage_index: Decimal) -> Decimal:
    """wage_index ^ 0.6848, cached: a fractional power costs ~60 us and a batch has only a few
    distinct wage indexes."""
    return _CONTEXT.power(wage_index, CAPITAL_GAF_EXPONENT)


@dataclass(frozen=True, slots=True)
class Transfer:
    """A stay that ends in a transfer (drg.transfers): its rule, discharge status, length of
    stay (days) and the MS-DRG's GMLOS (days)."""

    rule: TransferRule
    discharge_status: int
    length_of_stay: int
    gmlos: Decimal


def estimate_payment(
    weight: Decimal,
    rates: IppsRates,
    wage_index: Decimal,
    basis: WageIndexBasis,
    transfer: Transfer | None = None,
    upper_bound: bool = False,
) -> Estimate:
    """The estimate for one claim; see the module docstring for the rounding. With
    ``transfer``, operating and capital are each the transfer payment of 42 CFR 412.4(f)
    (drg.transfers.transfer_amount) of their unrounded full amounts. ``upper_bound``: a
    transfer whose length of stay is unknown, priced in full. Raises ValueError for a wage
    index or GMLOS that is not positive."""
    if wage_index <= 0:
        raise ValueError("wage index must be positive")
    c = _CONTEXT
    labor, non_labor = rates.standardized_amounts(wage_index)
    operating = c.multiply(c.add(c.multiply(labor, wage_index), non_labor), weight)
    gaf = _gaf(wage_index)
    capital = c.multiply(c.multiply(rates.capital_rate, gaf), weight)
    full_operating = operating.quantize(CENT, rounding=ROUND_HALF_UP)
    full_capital = capital.quantize(CENT, rounding=ROUND_HALF_UP)
    paid: TransferPayment | None = None
    if transfer is None:
        operating, capital = full_operating, full_capital
    else:
        days, gmlos, rule = transfer.length_of_stay, transfer.gmlos, transfer.rule
        operating = transfer_amount(operating, gmlos, days, rule).quantize(CENT, ROUND_HALF_UP)
        capital = transfer_amount(capital, gmlos, days, rule).quantize(CENT, ROUND_HALF_UP)
        paid = TransferPayment(
            rule=rule,
            discharge_status=transfer.discharge_status,
            length_of_stay=days,
            gmlos=gmlos,
            full_operating=full_operating,
            full_capital=full_capital,
            adjustment=operating + capital - full_operating - full_capital,
        )
    return Estimate(
        fiscal_year=rates.fiscal_year,
        operating=operating,
        capital=capital,
        total=operating + capital,
        wage_index=wage_index,
        wage_index_basis=basis,
        transfer=paid,
        upper_bound=upper_bound,
    )


@dataclass(frozen=True, slots=True)
class PriceRequest:
    discharge_date: dt.date
    fiscal_year: int
    drg: str  # three digits
    provider_id: str | None


@dataclass(frozen=True, slots=True)
class PriceFacts:
    """What PostgreSQL knows for one request."""

    weight: DrgWeight | None  # None: the DRG is not in that year's Table 5
    rates: IppsRates | None  # None: no IPPS rates cover the discharge date in that year
    provider_wage_index: Decimal | None  # None: provider absent or unknown for that year


def _price_query() -> Select[Any]:
    """The batch arrives as parallel arrays (``unnest ... WITH ORDINALITY``), so the statement
    is the same for every batch size: SQLAlchemy compiles it once and caches it (a VALUES list
    would be compiled again for each batch, which cost more than the query itself)."""
    req = (
        func.unnest(
            bindparam("discharge_dates", type_=ARRAY(Date)),
            bindparam("fiscal_years", type_=ARRAY(SmallInteger)),
            bindparam("drgs", type_=ARRAY(String)),
            bindparam("provider_ids", type_=ARRAY(String)),
        )
        .table_valued(
            column("discharge_date", Date),
            column("fiscal_year", SmallInteger),
            column("drg", String),
            column("provider_id", String),
            with_ordinality="i",
        )
        .render_derived()
        .alias("req")
    )
    w, rt, p = drg_weights, ipps_rates, providers
    joined = (
        req.outerjoin(
            rt,
            and_(
                rt.c.fiscal_year == req.c.fiscal_year,
                rt.c.effective_from <= req.c.discharge_date,
                req.c.discharge_date <= rt.c.effective_to,
            ),
        )
        .outerjoin(w, and_(w.c.fiscal_year == req.c.fiscal_year, w.c.drg == req.c.drg))
        .outerjoin(
            p, and_(p.c.fiscal_year == req.c.fiscal_year, p.c.provider_id == req.c.provider_id)
        )
    )
    return (
        select(
            req.c.i,
            w.c.drg,
            w.c.title,
            w.c.mdc,
            w.c.type,
            w.c.weight,
            w.c.gmlos,
            w.c.amlos,
            w.c.post_acute,
            w.c.special_pay,
            rt.c.fiscal_year,
            rt.c.labor_wage_index_above_1,
            rt.c.non_labor_wage_index_above_1,
            rt.c.labor_wage_index_at_most_1,
            rt.c.non_labor_wage_index_at_most_1,
            rt.c.capital_rate,
            rt.c.outlier_fixed_loss,
            p.c.wage_index,
        )
        .select_from(joined)
        .order_by(req.c.i)
    )


_PRICE_QUERY: Final = _price_query()


async def fetch_price_facts(
    engine: AsyncEngine, requests: Sequence[PriceRequest]
) -> list[PriceFacts]:
    """DRG weights, rates and provider wage indexes for every request: ONE query."""
    if not requests:
        return []
    try:
        # AUTOCOMMIT: one read needs no transaction, which saves the BEGIN and ROLLBACK round
        # trips around it.
        async with engine.connect() as connection:
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            rows = (
                await connection.execute(
                    _PRICE_QUERY,
                    {
                        "discharge_dates": [r.discharge_date for r in requests],
                        "fiscal_years": [r.fiscal_year for r in requests],
                        "drgs": [r.drg for r in requests],
                        "provider_ids": [r.provider_id for r in requests],
                    },
                )
            ).all()
    except SQLAlchemyError as exc:
        raise wrap_database_error(exc, "the pricing query") from exc
    facts: list[PriceFacts | None] = [None] * len(requests)
    for row in rows:
        (ordinal, drg, title, mdc, kind, weight, gmlos, amlos, post_acute, special_pay, fy) = row[
            :11
        ]
        amounts, wage_index = row[11:-1], row[-1]
        facts[ordinal - 1] = PriceFacts(  # WITH ORDINALITY counts from 1
            weight=DrgWeight(
                drg, title, mdc or None, kind, weight, gmlos, amlos, post_acute, special_pay
            )
            if drg is not None
            else None,
            rates=IppsRates(fy, *amounts) if fy is not None else None,
            provider_wage_index=wage_index,
        )
    assert all(f is not None for f in facts), "one row per request"
    return [f for f in facts if f is not None]
