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

Outlier payments, transfers, IME, DSH and other add-ons are not estimated.
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
from schemas.coded import Estimate

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


@functools.lru_cache(maxsize=4096)
def _gaf(wage_index: Decimal) -> Decimal:
    """wage_index ^ 0.6848, cached: a fractional power costs ~60 us and a batch has only a few
    distinct wage indexes."""
    return _CONTEXT.power(wage_index, CAPITAL_GAF_EXPONENT)


def estimate_payment(
    weight: Decimal, rates: IppsRates, wage_index: Decimal, basis: WageIndexBasis
) -> Estimate:
    """The estimate for one claim; see the module docstring for the rounding."""
    if wage_index <= 0:
        raise ValueError("wage index must be positive")
    c = _CONTEXT
    labor, non_labor = rates.standardized_amounts(wage_index)
    operating = c.multiply(c.add(c.multiply(labor, wage_index), non_labor), weight)
    gaf = _gaf(wage_index)
    capital = c.multiply(c.multiply(rates.capital_rate, gaf), weight)
    operating = operating.quantize(CENT, rounding=ROUND_HALF_UP)
    capital = capital.quantize(CENT, rounding=ROUND_HALF_UP)
    return Estimate(
        fiscal_year=rates.fiscal_year,
        operating=operating,
        capital=capital,
        total=operating + capital,
        wage_index=wage_index,
        wage_index_basis=basis,
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
        (ordinal, drg, title, mdc, kind, weight, gmlos, amlos, fy, *amounts, wage_index) = row
        facts[ordinal - 1] = PriceFacts(  # WITH ORDINALITY counts from 1
            weight=DrgWeight(drg, title, mdc or None, kind, weight, gmlos, amlos)
            if drg is not None
            else None,
            rates=IppsRates(fy, *amounts) if fy is not None else None,
            provider_wage_index=wage_index,
        )
    assert all(f is not None for f in facts), "one row per request"
    return [f for f in facts if f is not None]
