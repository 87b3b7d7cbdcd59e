"""IPPS operating and capital payment for a batch of grouped claims, from each fiscal year's
tables read once (:class:`PriceTables`).

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

import asyncio
import datetime as dt
import functools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Context, Decimal
from typing import Final, Literal

from sqlalchemy import select
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


@dataclass(frozen=True, slots=True)
class FiscalYearPrices:
    """One fiscal year's pricing tables as PostgreSQL holds them: Table 5 weights by MS-DRG,
    the IPPS rates row (with its effective dates) and the wage index of every provider."""

    fiscal_year: int
    weights: dict[str, DrgWeight]
    rates: tuple[dt.date, dt.date, IppsRates] | None  # (effective_from, effective_to, rates)
    wage_indexes: dict[str, Decimal]

    def facts(self, request: PriceRequest) -> PriceFacts:
        rates = None
        if self.rates is not None:
            effective_from, effective_to, amounts = self.rates
            if effective_from <= request.discharge_date <= effective_to:
                rates = amounts
        return PriceFacts(
            weight=self.weights.get(request.drg),
            rates=rates,
            provider_wage_index=(
                self.wage_indexes.get(request.provider_id)
                if request.provider_id is not None
                else None
            ),
        )


async def read_fiscal_year_prices(engine: AsyncEngine, fiscal_year: int) -> FiscalYearPrices:
    """The pricing tables of ``fiscal_year`` (three reads on one connection; empty tables for a
    year that is not loaded). Raises DatabaseUnavailableError (recoverable) while PostgreSQL is
    away."""
    w, rt, p = drg_weights, ipps_rates, providers
    try:
        # AUTOCOMMIT: reads need no transaction, which saves the BEGIN and ROLLBACK round trips.
        async with engine.connect() as connection:
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            weight_rows = await connection.execute(
                select(
                    w.c.drg,
                    w.c.title,
                    w.c.mdc,
                    w.c.type,
                    w.c.weight,
                    w.c.gmlos,
                    w.c.amlos,
                    w.c.post_acute,
                    w.c.special_pay,
                ).where(w.c.fiscal_year == fiscal_year)
            )
            weights = {
                drg: DrgWeight(
                    drg, title, mdc or None, kind, weight, gmlos, amlos, post_acute, special_pay
                )
                for (
                    drg,
                    title,
                    mdc,
                    kind,
                    weight,
                    gmlos,
                    amlos,
                    post_acute,
                    special_pay,
                ) in weight_rows
            }
            rates_row = (
                await connection.execute(
                    select(
                        rt.c.effective_from,
                        rt.c.effective_to,
                        rt.c.labor_wage_index_above_1,
                        rt.c.non_labor_wage_index_above_1,
                        rt.c.labor_wage_index_at_most_1,
                        rt.c.non_labor_wage_index_at_most_1,
                        rt.c.capital_rate,
                        rt.c.outlier_fixed_loss,
                    ).where(rt.c.fiscal_year == fiscal_year)
                )
            ).first()
            wage_rows = await connection.execute(
                select(p.c.provider_id, p.c.wage_index).where(p.c.fiscal_year == fiscal_year)
            )
            wage_indexes = {provider_id: wage_index for provider_id, wage_index in wage_rows}
    except SQLAlchemyError as exc:
        raise wrap_database_error(exc, "reading the pricing tables") from exc
    rates = None
    if rates_row is not None:
        effective_from, effective_to, *amounts = rates_row
        rates = (effective_from, effective_to, IppsRates(fiscal_year, *amounts))
    return FiscalYearPrices(fiscal_year, weights, rates, wage_indexes)


class PriceTables:
    """The pricing tables of every fiscal year a worker prices, read from PostgreSQL (the
    system of record) on first use and again once ``ttl_s`` seconds old, so pricing a batch
    costs no round trip. One per process; safe for concurrent batches (one read at a time).

    A fiscal year reloaded with ``claimcoder reference load`` is priced from its new tables
    within ``ttl_s``; a fiscal year added needs a worker restart (the registry is read once)."""

    def __init__(
        self,
        engine: AsyncEngine,
        ttl_s: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._engine = engine
        self._ttl_s = ttl_s
        self._clock = clock
        self._years: dict[int, tuple[float, FiscalYearPrices]] = {}
        self._lock = asyncio.Lock()

    async def facts(self, requests: Sequence[PriceRequest]) -> list[PriceFacts]:
        """Weights, rates and provider wage index of every request, in order. Raises
        DatabaseUnavailableError (recoverable) when a fiscal year must be read while PostgreSQL
        is away."""
        years = {year: await self.fiscal_year(year) for year in {r.fiscal_year for r in requests}}
        return [years[r.fiscal_year].facts(r) for r in requests]

    async def fiscal_year(self, fiscal_year: int) -> FiscalYearPrices:
        """The tables of ``fiscal_year``, read when absent or older than ``ttl_s``."""
        cached = self._years.get(fiscal_year)
        if cached is not None and self._clock() - cached[0] < self._ttl_s:
            return cached[1]
        async with self._lock:
            cached = self._years.get(fiscal_year)
            if cached is not None and self._clock() - cached[0] < self._ttl_s:
                return cached[1]
            prices = await read_fiscal_year_prices(self._engine, fiscal_year)
            self._years[fiscal_year] = (self._clock(), prices)
            return prices
