"""The code set in Redis: versioned keys, a ``current`` pointer, rebuilt from PostgreSQL.

Keys (``P`` is ``settings.redis.key_prefix``)::

    P codeset:current                 hash: release -> generation  (the pointer)
    P codeset:<release>:<gen>:codes   hash: undotted code -> description (every listed code)
    P codeset:<release>:<gen>:billable set: undotted billable codes
    P codeset:<release>:lock          SET NX lock held by the one process that (re)builds

A load writes a new generation in full, checks its counts against PostgreSQL, and only then
swaps the pointer with one HSET; readers resolve the pointer and read the data in one Lua call,
so they see the old set or the new one, never half of one. The previous generation is unlinked
after the swap. A cold or flushed Redis has no pointer: the first reader rebuilds it from
PostgreSQL under the lock while other readers wait for the pointer (claims are not failed).
"""

import asyncio
import logging
import secrets
import time
from dataclasses import dataclass
from typing import Final

import redis.asyncio as aioredis
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from drg.codeset.store import Progress, ReleaseInfo, release_loaded, stream_codes
from drg.exceptions import CodesetUnavailableError, ReferenceDataError

log = logging.getLogger(__name__)

LOCK_TTL_MS: Final = 300_000
_RELEASE_LOCK: Final = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


@dataclass(frozen=True, slots=True)
class CodesetKeys:
    prefix: str

    @property
    def pointer(self) -> str:
        return f"{self.prefix}codeset:current"

    @property
    def data_prefix(self) -> str:
        return f"{self.prefix}codeset:"

    def codes(self, release: str, generation: str) -> str:
        return f"{self.data_prefix}{release}:{generation}:codes"

    def billable(self, release: str, generation: str) -> str:
        return f"{self.data_prefix}{release}:{generation}:billable"

    def lock(self, release: str) -> str:
        return f"{self.data_prefix}{release}:lock"


@dataclass(frozen=True, slots=True)
class RedisReleaseStatus:
    release: str
    generation: str
    code_count: int
    billable_count: int


@dataclass(frozen=True, slots=True)
class WarmResult:
    status: RedisReleaseStatus
    warmed: bool  # False: Redis already held the complete release (or another process built it)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def new_generation() -> str:
    return f"{int(time.time() * 1000):x}-{secrets.token_hex(3)}"


async def redis_status(
    client: "aioredis.Redis", keys: CodesetKeys, release: str
) -> RedisReleaseStatus | None:
    """What the pointer names for ``release`` and how much is behind it."""
    raw = await client.hget(keys.pointer, release)
    if raw is None:
        return None
    generation = _text(raw)
    async with client.pipeline(transaction=False) as pipe:
        pipe.hlen(keys.codes(release, generation))
        pipe.scard(keys.billable(release, generation))
        codes, billable = await pipe.execute()
    return RedisReleaseStatus(release, generation, int(codes), int(billable))


async def redis_releases(client: "aioredis.Redis", keys: CodesetKeys) -> dict[str, str]:
    """Every release the pointer names, with its generation."""
    pointer = await client.hgetall(keys.pointer)
    return {_text(k): _text(v) for k, v in pointer.items()}


def _complete(status: RedisReleaseStatus | None, info: ReleaseInfo) -> bool:
    return (
        status is not None
        and status.code_count == info.code_count
        and status.billable_count == info.billable_count
    )


async def _wait_for_pointer(
    client: "aioredis.Redis", keys: CodesetKeys, release: str, wait_s: float
) -> bool:
    """Wait while another process holds the build lock; True once the pointer names
    ``release``, False if the lock went away without it (that build failed)."""
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if await client.hexists(keys.pointer, release):
            return True
        if not await client.exists(keys.lock(release)):
            return bool(await client.hexists(keys.pointer, release))
        await asyncio.sleep(0.05)
    raise CodesetUnavailableError(
        f"code set {release} was being rebuilt by another process for over {wait_s:g} s"
    )


async def warm(
    client: "aioredis.Redis",
    engine: AsyncEngine,
    keys: CodesetKeys,
    release: str,
    *,
    force: bool = False,
    progress: Progress | None = None,
    wait_s: float = 120.0,
) -> WarmResult:
    """Make Redis hold ``release`` exactly as PostgreSQL does (a no-op when it already does)."""
    info = await release_loaded(engine, release)
    if info is None:
        raise ReferenceDataError(f"code set {release} is not loaded in PostgreSQL")
    for _attempt in range(3):
        current = await redis_status(client, keys, release)
        if not force and _complete(current, info):
            assert current is not None
            return WarmResult(current, warmed=False)
        token = secrets.token_hex(8)
        if await client.set(keys.lock(release), token, nx=True, px=LOCK_TTL_MS):
            try:
                status = await _build(client, engine, keys, info, progress)
            finally:
                await client.eval(_RELEASE_LOCK, 1, keys.lock(release), token)
            return WarmResult(status, warmed=True)
        if await _wait_for_pointer(client, keys, release, wait_s):
            force = False  # another process just built it from PostgreSQL
    raise CodesetUnavailableError(f"code set {release} could not be built in Redis")


async def _build(
    client: "aioredis.Redis",
    engine: AsyncEngine,
    keys: CodesetKeys,
    info: ReleaseInfo,
    progress: Progress | None,
) -> RedisReleaseStatus:
    release = info.release
    generation = new_generation()
    codes_key, billable_key = keys.codes(release, generation), keys.billable(release, generation)
    started = time.monotonic()
    try:
        done = 0
        async for chunk in stream_codes(engine, release):
            async with client.pipeline(transaction=False) as pipe:
                pipe.hset(codes_key, mapping={code: text for code, text, _ in chunk})
                billable = [code for code, _, is_billable in chunk if is_billable]
                if billable:
                    pipe.sadd(billable_key, *billable)
                await pipe.execute()
            done += len(chunk)
            if progress is not None:
                progress(done, info.code_count)
        async with client.pipeline(transaction=False) as pipe:
            pipe.hlen(codes_key)
            pipe.scard(billable_key)
            code_count, billable_count = (int(n) for n in await pipe.execute())
        if (code_count, billable_count) != (info.code_count, info.billable_count):
            raise ReferenceDataError(
                f"code set {release}: Redis got {code_count}/{billable_count} codes/billable, "
                f"PostgreSQL records {info.code_count}/{info.billable_count}"
            )
        previous = await client.hget(keys.pointer, release)
        await client.hset(keys.pointer, release, generation)  # the swap
    except BaseException:
        await client.unlink(codes_key, billable_key)
        raise
    if previous is not None and _text(previous) != generation:
        old = _text(previous)
        await client.unlink(keys.codes(release, old), keys.billable(release, old))
    log.info(
        "code set %s generation %s in Redis: %d codes, %d billable (%.2f s)",
        release,
        generation,
        code_count,
        billable_count,
        time.monotonic() - started,
    )
    return RedisReleaseStatus(release, generation, code_count, billable_count)


async def ensure_warm(
    client: "aioredis.Redis", engine: AsyncEngine, keys: CodesetKeys, release: str
) -> bool:
    """Rebuild ``release`` in Redis from PostgreSQL if its pointer is gone. False when
    PostgreSQL does not hold the release either (it is not a loaded release)."""
    try:
        if await release_loaded(engine, release) is None:
            return False
        await warm(client, engine, keys, release)
    except RedisError as exc:
        raise CodesetUnavailableError(f"Redis failed while rebuilding {release}") from exc
    except SQLAlchemyError as exc:
        raise CodesetUnavailableError(f"PostgreSQL failed while rebuilding {release}") from exc
    except ReferenceDataError as exc:  # e.g. Redis flushed again mid-build: counts disagree
        raise CodesetUnavailableError(f"code set {release} could not be rebuilt now") from exc
    return True
