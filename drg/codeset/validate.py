"""Validate a batch of coder output against the code set in Redis, in one round trip.

Each raw string is normalised (``" s82.201a "``, ``"S82201A"`` and ``"S82.201A"`` are one code),
then classified against its release:

- ``billable``: a leaf of the release's code list;
- ``not_billable``: listed, but a header (``S82``, ``S82.201``);
- ``invalid``: not code-shaped, or not in the release (``XYZ``, ``S82.201Z``);
- ``duplicate``: a listed code that already appeared earlier in the same claim (a repeated
  invalid code stays ``invalid``).

One Lua call per release (EVALSHA) resolves the release's ``current`` pointer and reads the
billable flags (SMISMEMBER) and descriptions (HMGET) of every distinct code in the batch; batches
that span releases pipeline one call per release, still one round trip. A release missing from
Redis is rebuilt from PostgreSQL first (``drg.codeset.cache.ensure_warm``).
"""

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import redis.asyncio as aioredis
from redis.exceptions import NoScriptError, RedisError
from sqlalchemy.ext.asyncio import AsyncEngine

from drg.codeset.cache import CodesetKeys, ensure_warm
from drg.codeset.normalize import dotted, normalize
from drg.codeset.status import CodeStatus
from drg.exceptions import CodesetUnavailableError

# KEYS[1]: the pointer hash. ARGV[1]: data key prefix, ARGV[2]: release, ARGV[3..]: codes.
# Returns false when the release has no complete generation, else {generation, flags, texts}.
_READ_SCRIPT: Final = """
local gen = redis.call('HGET', KEYS[1], ARGV[2])
if not gen then return false end
local base = ARGV[1] .. ARGV[2] .. ':' .. gen
-- both keys, or the generation counts as missing (an eviction must not make codes invalid)
if redis.call('EXISTS', base .. ':codes', base .. ':billable') < 2 then return false end
local flags, texts = {}, {}
local step = 4000
for first = 3, #ARGV, step do
  local last = math.min(first + step - 1, #ARGV)
  local f = redis.call('SMISMEMBER', base .. ':billable', unpack(ARGV, first, last))
  local t = redis.call('HMGET', base .. ':codes', unpack(ARGV, first, last))
  for i = 1, last - first + 1 do
    flags[#flags + 1] = f[i]
    texts[#texts + 1] = t[i] or ''
  end
end
return {gen, flags, texts}
"""

#: Rejected codes echo what the coder wrote only when it is a short code-shaped token.
RAW_MAX_CHARS: Final = 12
NOT_A_CODE: Final = "NOTACODE"
_RAW_TOKEN: Final = re.compile(r"[A-Za-z0-9.]+")


@dataclass(frozen=True, slots=True)
class CheckedCode:
    raw: str = field(repr=False)  # model output: may be anything, never logged
    code: str | None  # undotted, upper case; None when not code-shaped
    status: CodeStatus
    description: str | None = None  # for billable and not billable codes

    @property
    def dotted(self) -> str | None:
        return dotted(self.code) if self.code is not None else None

    @property
    def safe_raw(self) -> str:
        """``raw`` fit for an output event (``^[A-Za-z0-9.]+$``, short): surrounding space
        dropped, long tokens cut, anything else (inner spaces, punctuation, prose) replaced
        so that model text can neither break the contract nor leak into it."""
        return sanitize_raw(self.raw)


def sanitize_raw(raw: str) -> str:
    token = raw.strip()
    if not _RAW_TOKEN.fullmatch(token):
        return NOT_A_CODE
    return token[:RAW_MAX_CHARS]


@dataclass(frozen=True, slots=True)
class Validation:
    """One claim's codes in input order, checked in ``release``."""

    release: str
    loaded: bool  # False: neither Redis nor PostgreSQL holds the release
    codes: tuple[CheckedCode, ...]

    @property
    def billable(self) -> tuple[CheckedCode, ...]:
        return tuple(c for c in self.codes if c.status is CodeStatus.BILLABLE)


class Validator:
    """Checks coder output against the code sets in Redis. Safe for concurrent batches."""

    def __init__(self, client: "aioredis.Redis", engine: AsyncEngine, key_prefix: str) -> None:
        self._client = client
        self._engine = engine
        self._keys = CodesetKeys(key_prefix)
        self._sha: str | None = None

    async def prepare(self, releases: Iterable[str]) -> tuple[str, ...]:
        """Load the read script and make each release ready in Redis (rebuilt from PostgreSQL
        when cold). Returns the releases that neither Redis nor PostgreSQL holds."""
        found = await self._lookup({release: [] for release in releases})
        return tuple(release for release, table in found.items() if table is None)

    async def validate(self, claims: Sequence[Sequence[str]], release: str) -> list[Validation]:
        """Every claim's codes checked in ``release``."""
        return await self.validate_many([(release, codes) for codes in claims])

    async def validate_many(
        self, requests: Sequence[tuple[str, Sequence[str]]]
    ) -> list[Validation]:
        """Each (release, codes) checked in its own release; one round trip in all."""
        normalized = [[normalize(raw) for raw in codes] for _, codes in requests]
        wanted: dict[str, dict[str, None]] = {}
        for (release, _), codes in zip(requests, normalized, strict=True):
            bucket = wanted.setdefault(release, {})
            for code in codes:
                if code is not None:
                    bucket[code] = None
        found = await self._lookup({r: list(c) for r, c in wanted.items()})
        results = []
        for (release, raws), codes in zip(requests, normalized, strict=True):
            table = found.get(release)
            checked = []
            seen: set[str] = set()
            for raw, code in zip(raws, codes, strict=True):
                billable, text = (False, None)
                if code is not None and table is not None:
                    billable, text = table.get(code, (False, None))
                if code is None or text is None:
                    # a repeated invalid code is still invalid: "duplicate" is for real codes
                    checked.append(CheckedCode(raw, code, CodeStatus.INVALID))
                elif code in seen:
                    checked.append(CheckedCode(raw, code, CodeStatus.DUPLICATE))
                else:
                    seen.add(code)
                    status = CodeStatus.BILLABLE if billable else CodeStatus.NOT_BILLABLE
                    checked.append(CheckedCode(raw, code, status, text))
            results.append(Validation(release, table is not None, tuple(checked)))
        return results

    async def _lookup(
        self, wanted: dict[str, list[str]]
    ) -> dict[str, dict[str, tuple[bool, str | None]] | None]:
        """release -> {code: (billable, description or None)}, or None for a release that is
        not loaded. One round trip when every release is warm (a release is asked for even
        without code-shaped input: whether it is loaded decides the claim's outcome)."""
        found: dict[str, dict[str, tuple[bool, str | None]] | None] = {}
        pending = dict(wanted)
        for _attempt in range(3):
            if not pending:
                return found
            replies = await self._read(pending)
            cold = []
            for (release, codes), reply in zip(pending.items(), replies, strict=True):
                if reply is None:
                    cold.append(release)
                else:
                    found[release] = _table(codes, reply)
            pending = {release: pending[release] for release in cold}
            for release in cold:
                if not await ensure_warm(self._client, self._engine, self._keys, release):
                    found[release] = None  # neither Redis nor PostgreSQL holds it
                    del pending[release]
        if pending:
            raise CodesetUnavailableError(
                f"code set {', '.join(pending)} vanished from Redis again after a rebuild"
            )
        return found

    async def _read(self, pending: dict[str, list[str]]) -> list[Any]:
        """One EVALSHA per release, pipelined when there are several: one round trip."""
        try:
            if self._sha is None:
                self._sha = await self._client.script_load(_READ_SCRIPT)
            for _attempt in range(2):
                try:
                    return await self._evalsha(pending)
                except NoScriptError:  # the server's script cache was flushed
                    self._sha = await self._client.script_load(_READ_SCRIPT)
            return await self._evalsha(pending)
        except RedisError as exc:
            raise CodesetUnavailableError("Redis failed reading the code set") from exc

    async def _evalsha(self, pending: dict[str, list[str]]) -> list[Any]:
        assert self._sha is not None
        pointer, prefix = self._keys.pointer, self._keys.data_prefix
        if len(pending) == 1:
            ((release, codes),) = pending.items()
            return [await self._client.evalsha(self._sha, 1, pointer, prefix, release, *codes)]
        async with self._client.pipeline(transaction=False) as pipe:
            for release, codes in pending.items():
                pipe.evalsha(self._sha, 1, pointer, prefix, release, *codes)
            replies: list[Any] = await pipe.execute(raise_on_error=False)
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        return replies


def _table(codes: list[str], reply: Any) -> dict[str, tuple[bool, str | None]]:
    _generation, flags, texts = reply
    table: dict[str, tuple[bool, str | None]] = {}
    for code, flag, text in zip(codes, flags, texts, strict=True):
        description = text.decode() if isinstance(text, bytes) else str(text)
        table[code] = (bool(flag), description or None)
    return table
