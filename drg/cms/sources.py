"""Read one CMS reference file as the operator downloaded it: a plain file or one member of a zip.

CMS ships most of its files zipped (``2027-code-descriptions-tabular-order.zip`` holds
``icd10cm_order_2027.txt``) and publishes no checksums; the operator may pass the SHA-256 they
recorded so that a load is tied to the exact download. The parsers in this package take the
:class:`SourceFile` this module returns, so they never touch the file system themselves.
"""

import csv
import hashlib
import io
import re
import zipfile
import zlib
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path, PurePosixPath
from typing import Final

from drg.exceptions import ReferenceDataError

#: Largest zip member read, uncompressed (a zip bomb guard). The biggest CMS text file we read,
#: ``icd10cm_order_2027.txt``, is 14.7 MB.
MAX_MEMBER_BYTES: Final = 200 * 1024 * 1024
_SHA256: Final = re.compile(r"[0-9a-fA-F]{64}")
_LISTED_MEMBERS: Final = 20  # member names an error message lists at most
# What a damaged or unusual zip raises while it is opened or read: bad headers or CRC
# (BadZipFile), a truncated deflate stream (zlib.error, EOFError), an encrypted member
# (RuntimeError), an unsupported compression method (NotImplementedError).
_ZIP_ERRORS: Final = (
    zipfile.BadZipFile,
    zlib.error,
    EOFError,
    RuntimeError,
    NotImplementedError,
    OSError,
    ValueError,
)


@dataclass(frozen=True, slots=True)
class SourceFile:
    """The bytes of one reference file and where they came from.

    ``name`` is the file name (``"icd10cm_order_2027.txt"``) or, for a zip member,
    ``"archive.zip:member.txt"``; parsers put it at the start of every error message.
    ``sha256`` is the lower-case hex digest of the file the operator gave: of the zip itself when
    ``data`` is a member of one.
    """

    name: str
    data: bytes
    sha256: str


def read_source(path: Path, *, sha256: str | None = None, member: str | None = None) -> SourceFile:
    """Read ``path``, or the one member of the zip at ``path`` whose name matches ``member``.

    ``member`` is a glob (``fnmatch``, case-sensitive) matched against each member's full name and
    against its base name, e.g. ``"icd10cm_order_*.txt"``; it is required for a zip and refused
    for a plain file. ``sha256`` (64 hex digits, any case) is compared with the digest of the file
    at ``path``, the zip itself if it is one.

    Raises ReferenceDataError when ``sha256`` is malformed or differs (the message gives both
    digests), when the file cannot be read, when a zip is damaged or encrypted, when zero or
    several members match (the message lists the names), or when the member is larger than
    :data:`MAX_MEMBER_BYTES` uncompressed.
    """
    expected = None if sha256 is None else _digest_argument(path, sha256)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ReferenceDataError(f"{path}: cannot read the file ({exc.strerror or exc})") from exc
    digest = hashlib.sha256(data).hexdigest()
    if expected is not None and digest != expected:
        raise ReferenceDataError(
            f"{path.name}: SHA-256 mismatch: expected {expected}, the file has {digest}"
        )
    if not zipfile.is_zipfile(io.BytesIO(data)):
        if member is not None:
            raise ReferenceDataError(
                f"{path.name}: not a zip archive, so it has no member {member!r}"
            )
        return SourceFile(path.name, data, digest)
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            info = _one_member(path.name, archive, member)
            if info.file_size > MAX_MEMBER_BYTES:
                raise ReferenceDataError(_too_large(path.name, info.filename))
            with archive.open(info) as stream:
                content = stream.read(MAX_MEMBER_BYTES + 1)
    except _ZIP_ERRORS as exc:
        raise ReferenceDataError(
            f"{path.name}: damaged or unreadable zip archive ({type(exc).__name__}: {exc})"
        ) from exc
    if len(content) > MAX_MEMBER_BYTES:  # the header understated the size
        raise ReferenceDataError(_too_large(path.name, info.filename))
    return SourceFile(f"{path.name}:{info.filename}", content, digest)


def decode_text(source: SourceFile) -> str:
    """The text of ``source``: UTF-8 (a byte-order mark is dropped), else cp1252.

    CMS writes its text files in cp1252 (Table 5 has ``\\x97`` em dashes) or plain ASCII, which
    both decodings read alike. Raises ReferenceDataError naming the line of the first byte that
    neither encoding accepts (cp1252 leaves 0x81, 0x8D, 0x8F, 0x90 and 0x9D undefined).
    """
    if source.data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise ReferenceDataError(
            f"{source.name}: UTF-16 text (as Excel's 'Unicode Text' saves it); expected the file "
            "as CMS publishes it, in cp1252 or UTF-8"
        )
    try:
        return source.data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        return source.data.decode("cp1252")
    except UnicodeDecodeError as exc:
        line = source.data.count(b"\n", 0, exc.start) + 1
        raise ReferenceDataError(
            f"{source.name} line {line}: byte 0x{source.data[exc.start]:02x} is neither UTF-8 "
            f"nor cp1252; expected a CMS text file in one of those encodings"
        ) from exc


def tab_rows(source: SourceFile) -> list[tuple[int, list[str]]]:
    """Rows of a tab-separated CMS text file (Excel's "Text (Tab delimited)" export), decoded by
    :func:`decode_text`, each with the number of the line it starts on (1-based; a quoted cell
    may span lines). Cells are returned as written (quotes removed, not stripped); a blank line
    is an empty list.

    Raises ReferenceDataError on malformed quoting, e.g. a quote left open at the end of the
    file, which would otherwise swallow every later row into one cell.
    """
    text = decode_text(source)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter="\t", strict=True)
    rows: list[tuple[int, list[str]]] = []
    start = 1
    try:
        for cells in reader:
            rows.append((start, cells))
            start = reader.line_num + 1
    except csv.Error as exc:
        raise ReferenceDataError(
            f"{source.name} line {start}: malformed tab-separated text ({exc})"
        ) from exc
    return rows


def excerpt(text: str, limit: int = 60) -> str:
    """``repr`` of ``text`` cut to ``limit`` characters: file content quoted in a one-line error."""
    return repr(text if len(text) <= limit else text[:limit] + "...")


def _digest_argument(path: Path, sha256: str) -> str:
    if not _SHA256.fullmatch(sha256):
        raise ReferenceDataError(
            f"{path.name}: malformed SHA-256 {excerpt(sha256, 80)} given, expected 64 "
            f"hexadecimal digits"
        )
    return sha256.lower()


def _one_member(archive_name: str, archive: zipfile.ZipFile, member: str | None) -> zipfile.ZipInfo:
    files = [info for info in archive.infolist() if not info.is_dir()]
    names = [info.filename for info in files]
    if member is None:
        raise ReferenceDataError(
            f"{archive_name}: a zip archive; name the member to read (members: {_list(names)})"
        )
    matches = [
        info
        for info in files
        if fnmatchcase(info.filename, member)
        or fnmatchcase(PurePosixPath(info.filename).name, member)
    ]
    if len(matches) != 1:
        found = "no member" if not matches else f"{len(matches)} members"
        raise ReferenceDataError(
            f"{archive_name}: {found} match {member!r}, expected exactly one "
            f"(members: {_list(names)})"
        )
    return matches[0]


def _list(names: list[str]) -> str:
    if not names:
        return "none"
    shown = ", ".join(repr(name) for name in names[:_LISTED_MEMBERS])
    more = len(names) - _LISTED_MEMBERS
    return shown if more <= 0 else f"{shown} and {more} more"


def _too_large(archive_name: str, member: str) -> str:
    return (
        f"{archive_name}:{member}: larger than {MAX_MEMBER_BYTES // (1024 * 1024)} MiB "
        f"uncompressed; refused (not a CMS reference file)"
    )
