"""The ICD-10-CM code set: `codeset load` / `status`, the Redis copy and the batch validator."""

import asyncio
import json
import re
import string
from collections.abc import AsyncIterator
from unittest.mock import ANY

import pytest
import pytest_asyncio
import redis.asyncio as aioredis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncEngine

from drg.codeset.cache import CodesetKeys, redis_status, warm
from drg.codeset.normalize import dotted, normalize
from drg.codeset.status import CodeStatus
from drg.codeset.validate import CheckedCode, Validation, Validator
from tests.reference_support import RELEASE, CodeList, CountingConnection, counting_redis, invoke
from worker.resources import async_engine, redis_client
from worker.settings import Settings

pytest_plugins = ("tests.reference_fixtures",)

B, NB, INV, DUP = (
    CodeStatus.BILLABLE,
    CodeStatus.NOT_BILLABLE,
    CodeStatus.INVALID,
    CodeStatus.DUPLICATE,
)
S82201A = "Unspecified fracture of shaft of right tibia, initial encounter for closed fracture"


@pytest.fixture(scope="session")
def validator(
    reference: Settings, ref_redis: "aioredis.Redis", ref_engine: AsyncEngine
) -> Validator:
    return Validator(ref_redis, ref_engine, reference.redis.key_prefix)


# --- codeset load and status -----------------------------------------------------------------


def test_status_shows_every_release_in_postgres_and_redis_and_a_second_load_is_a_noop(
    reference: Settings,
) -> None:
    """Both fiscal years of the registry: FY2026 (April 2026 files: 98,186 codes, 74,719
    billable) and FY2027 (CMS's FY2027 order file counts: 98,403 entries, 74,879 billable)."""
    before = json.loads(invoke(reference, "codeset", "status", "--json").stdout)
    assert before == {
        "releases": [
            {
                "release": "2026-04",
                "fiscal_year": 2026,
                "in_registry": True,
                "periods": [
                    {"start": "2025-10-01", "end": "2026-03-31", "msdrg_version": 430},
                    {"start": "2026-04-01", "end": "2026-09-30", "msdrg_version": 431},
                ],
                "postgres": {
                    "codes": 98186,  # every level of the code list: chapters are not codes
                    "billable": 74719,
                    "loaded_at": ANY,
                    "source": "simple-icd-10-cm 1.5.0: code-list-April-2026.txt + "
                    "icd10c-tabular-April-1-2026.xml",
                },
                "redis": {"generation": ANY, "codes": 98186, "billable": 74719},
                "in_sync": True,
            },
            {
                "release": "2026-10",
                "fiscal_year": 2027,
                "in_registry": True,
                "periods": [{"start": "2026-10-01", "end": "2027-03-31", "msdrg_version": 440}],
                "postgres": {
                    "codes": 98403,
                    "billable": 74879,
                    "loaded_at": ANY,
                    "source": ANY,
                },
                "redis": {"generation": ANY, "codes": 98403, "billable": 74879},
                "in_sync": True,
            },
        ],
        "ready": True,
    }
    assert before["releases"][1]["postgres"]["source"].startswith("2026-04 + FY2027 ICD-10-CM")
    again = invoke(reference, "codeset", "load")
    assert "code set 2026-04 (FY2026) already loaded (no-op): 98186 codes" in again.output
    assert "code set 2026-10 (FY2027) already loaded (no-op): 98403 codes" in again.output
    after = json.loads(invoke(reference, "codeset", "status", "--json").stdout)
    assert after == before  # same PostgreSQL load time, same Redis generation


# --- the validator -------------------------------------------------------------------------


def _checked(
    raw: str, code: str | None, status: CodeStatus, text: str | None = None
) -> CheckedCode:
    return CheckedCode(raw, code, status, text)


async def test_validation_classifies_and_normalises(validator: Validator) -> None:
    claims = [
        ["S82.201A", "S82", "S82.201", "XYZ", "S82.201Z"],
        ["s82201a"],
        [" S82.201A ", "S82201A", "s82.201a", "S82.2O1A", "S82 201A", "S8.2201A", ""],
    ]
    result = await validator.validate(claims, RELEASE)
    assert result == [
        Validation(
            RELEASE,
            True,
            (
                _checked("S82.201A", "S82201A", B, S82201A),
                _checked("S82", "S82", NB, "Fracture of lower leg, including ankle"),
                _checked("S82.201", "S82201", NB, "Unspecified fracture of shaft of right tibia"),
                _checked("XYZ", "XYZ", INV),  # code-shaped (as is category QA0), not listed
                _checked("S82.201Z", "S82201Z", INV),  # code-shaped, not in the release
            ),
        ),
        Validation(RELEASE, True, (_checked("s82201a", "S82201A", B, S82201A),)),
        Validation(
            RELEASE,
            True,
            (
                _checked(" S82.201A ", "S82201A", B, S82201A),
                _checked("S82201A", "S82201A", DUP),
                _checked("s82.201a", "S82201A", DUP),
                _checked("S82.2O1A", "S822O1A", INV),  # letter O for zero
                _checked("S82 201A", None, INV),  # inner space
                _checked("S8.2201A", None, INV),  # misplaced dot
                _checked("", None, INV),
            ),
        ),
    ]
    assert [c.dotted for c in result[1].codes] == ["S82.201A"]


async def test_a_release_that_is_loaded_nowhere_validates_nothing(validator: Validator) -> None:
    result = await validator.validate([["S82.201A"]], "2099-04")
    assert result == [Validation("2099-04", False, (_checked("S82.201A", "S82201A", INV),))]


async def test_a_batch_of_64_claims_is_one_redis_round_trip(
    reference: Settings, ref_engine: AsyncEngine
) -> None:
    client = counting_redis(reference)
    try:
        validator = Validator(client, ref_engine, reference.redis.key_prefix)
        assert await validator.prepare([RELEASE]) == ()  # loads the script
        claims = [["I50.21", "J96.01", f"E11.{i % 10}", "S82", "XYZ", "I10"] for i in range(64)]
        CountingConnection.sends = 0
        result = await validator.validate(claims, RELEASE)
        assert CountingConnection.sends == 1
        assert len(result) == 64
        assert [c.status for c in result[0].codes] == [B, B, NB, NB, INV, B]
    finally:
        await client.aclose()


# --- normalisation: properties ---------------------------------------------------------------

_SPACE = st.text(alphabet=" \t\r\n", max_size=3)


def _variants(code: str) -> st.SearchStrategy[str]:
    """Ways a coder may write ``code``: any case, with or without its dot, surrounding space."""
    forms = [code, dotted(code)] if len(code) > 3 else [code]
    cased = st.sampled_from(forms).flatmap(
        lambda form: st.lists(st.booleans(), min_size=len(form), max_size=len(form)).map(
            lambda lower: "".join(c.lower() if f else c for c, f in zip(form, lower, strict=True))
        )
    )
    return st.tuples(_SPACE, cased, _SPACE).map("".join)


@hypothesis_settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_every_spelling_of_a_listed_code_normalises_to_it(
    listed_codes: CodeList, data: st.DataObject
) -> None:
    code = data.draw(listed_codes.any_code)
    raw = data.draw(_variants(code))
    assert normalize(raw) == code
    assert normalize(dotted(code)) == code


@hypothesis_settings(max_examples=500, deadline=None)
@given(
    raw=st.text(max_size=16)
    | st.from_regex(r"\s*[A-Za-z\u0131\u017f][0-9A-Za-z.\u0131\u017f]{1,8}\s*", fullmatch=True)
)
def test_normalise_gives_a_code_shaped_string_or_none(raw: str) -> None:
    code = normalize(raw)
    if code is not None:
        assert re.fullmatch(r"[A-Z][0-9A-Z]{2,6}", code)
        assert normalize(code) == code == normalize(dotted(code))
        # Only case, surrounding space and one dot after the category were tolerated.
        text = raw.strip()
        assert text.isascii()
        assert text.upper().replace(".", "", 1) == code
        assert "." not in text or text.index(".") == 3


_ALNUM = string.ascii_letters + string.digits


def _mutations(code: str) -> st.SearchStrategy[str]:
    """A listed code with one edit: a character replaced, inserted or removed, a character
    appended, an inner space, a second or misplaced dot."""
    text = dotted(code)
    at = st.integers(0, len(text) - 1)
    char = st.sampled_from(_ALNUM + " .-/")
    return st.one_of(
        st.tuples(at, char).map(lambda p: text[: p[0]] + p[1] + text[p[0] + 1 :]),
        st.tuples(at, char).map(lambda p: text[: p[0]] + p[1] + text[p[0] :]),
        at.map(lambda i: text[:i] + text[i + 1 :]),
        char.map(lambda c: text + c),
        st.just(text.replace(".", "..")),
        st.just(code[:2] + "." + code[2:]),
    )


def _garbage(codes: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.text(max_size=12),
        st.from_regex(r"[A-Za-z][0-9A-Za-z]{2,6}", fullmatch=True),
        codes.flatmap(_mutations),
        codes.flatmap(_variants),  # some real codes among the garbage
    )


def _oracle(raws: list[str], listed: CodeList) -> list[CodeStatus]:
    """What the validator must answer, from the full code list in PostgreSQL."""
    seen: set[str] = set()
    expected = []
    for raw in raws:
        code = normalize(raw)
        if code is None or code not in listed:
            expected.append(INV)
        elif code in seen:
            expected.append(DUP)
        else:
            seen.add(code)
            expected.append(B if listed[code] else NB)
    return expected


# The autouse leak guard is function-scoped; sharing it across examples is harmless.
@hypothesis_settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
async def test_garbage_never_validates(
    validator: Validator, listed_codes: CodeList, data: st.DataObject
) -> None:
    garbage = _garbage(listed_codes.any_code)
    claims = data.draw(st.lists(st.lists(garbage, max_size=8), min_size=1, max_size=64))
    result = await validator.validate(claims, RELEASE)
    for raws, validation in zip(claims, result, strict=True):
        assert [c.status for c in validation.codes] == _oracle(raws, listed_codes), raws
        for checked in validation.codes:
            if checked.status in (B, NB):
                assert checked.description
                assert checked.code in listed_codes


# --- the Redis copy: cold start, rebuild, atomic swap ------------------------------------------


@pytest_asyncio.fixture
async def cold(
    cold_settings: Settings,
) -> AsyncIterator[tuple[Settings, "aioredis.Redis", AsyncEngine]]:
    """The session's PostgreSQL data seen through this test's own, empty Redis prefix."""
    client = redis_client(cold_settings.redis)
    engine = async_engine(cold_settings.database)
    try:
        yield cold_settings, client, engine
    finally:
        await client.aclose()
        await engine.dispose()


async def _generations(client: "aioredis.Redis", prefix: str) -> set[str]:
    keys = [k.decode() async for k in client.scan_iter(match=f"{prefix}codeset:{RELEASE}:*")]
    return {k.split(":")[-2] for k in keys if not k.endswith(":lock")}


async def test_a_cold_or_flushed_redis_is_rebuilt_from_postgres(
    cold: tuple[Settings, "aioredis.Redis", AsyncEngine],
) -> None:
    settings_, client, engine = cold
    prefix = settings_.redis.key_prefix
    keys = CodesetKeys(prefix)
    assert await redis_status(client, keys, RELEASE) is None

    validator = Validator(client, engine, prefix)
    expected = [Validation(RELEASE, True, (_checked("S82.201A", "S82201A", B, S82201A),))]
    assert await validator.validate([["S82.201A"]], RELEASE) == expected
    status = await redis_status(client, keys, RELEASE)
    assert status is not None
    assert (status.code_count, status.billable_count) == (98186, 74719)

    # An eviction of the billable set alone must not turn billable codes into headers.
    await client.unlink(keys.billable(RELEASE, status.generation))
    assert await validator.validate([["S82.201A"]], RELEASE) == expected
    # A flush of everything, pointer included.
    await client.unlink(*[k async for k in client.scan_iter(match=f"{prefix}*")])
    assert await validator.validate([["S82.201A"]], RELEASE) == expected
    assert len(await _generations(client, prefix)) == 1


async def test_concurrent_readers_of_a_cold_redis_build_it_once(
    cold: tuple[Settings, "aioredis.Redis", AsyncEngine],
) -> None:
    settings_, client, engine = cold
    prefix = settings_.redis.key_prefix
    validators = [Validator(client, engine, prefix) for _ in range(4)]
    results = await asyncio.gather(
        *(v.validate([["S82.201A", "S82"]], RELEASE) for v in validators)
    )
    assert all([c.status for c in r[0].codes] == [B, NB] for r in results)
    assert len(await _generations(client, prefix)) == 1


async def test_readers_never_see_half_a_release_while_it_is_rebuilt(
    cold: tuple[Settings, "aioredis.Redis", AsyncEngine],
) -> None:
    settings_, client, engine = cold
    keys = CodesetKeys(settings_.redis.key_prefix)
    first = await warm(client, engine, keys, RELEASE)
    validator = Validator(client, engine, settings_.redis.key_prefix)
    # Codes from the start and the end of the code list: a half-built generation lacks one.
    claim = ["A00.0", "S82.201A", "Z99.89", "U09.9", "S82"]
    rebuild = asyncio.create_task(warm(client, engine, keys, RELEASE, force=True))
    reads = 0
    while not rebuild.done():
        (validation,) = await validator.validate([claim], RELEASE)
        assert [c.status for c in validation.codes] == [B, B, B, B, NB]
        reads += 1
    second = await rebuild
    assert reads > 1
    assert second.warmed
    assert second.status.generation != first.status.generation
    assert await _generations(client, settings_.redis.key_prefix) == {second.status.generation}
