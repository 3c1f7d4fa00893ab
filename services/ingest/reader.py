"""Split a CSV source file into records, sort out the ones that cannot be trusted, and feed the
rest to PostgreSQL's COPY unchanged.

PostgreSQL parses the CSV itself (COPY ... FORMAT csv), which is far faster than parsing it in
Python. Python only has to find record boundaries, number the lines and catch what would make
COPY abort the whole file: a wrong number of fields, bytes that are not UTF-8, NUL bytes, a
carriage return outside quotes. Those records go to the rejects instead, with a reason.

One kind of 17-field record is no defect of the data but of its writing: a known trim with an
unquoted comma (shared.dataset.split_trim). Those records are kept apart, byte for byte, and loaded
with their 17th field in raw's `_extra_field` column (job.py); any other 17-field record is rejected.

Each good record is sent as `<line number>,<the record's own bytes>\n`; lineage columns that are
the same for the whole file come from column defaults (see migration 0002), so they cost nothing
on the wire. Memory stays flat: the file is read line by line and sent in bounded chunks.
"""

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import repeat
from typing import BinaryIO

from shared.dataset import FIELD_COUNT, HEADER_LINE, split_trim
from shared.errors import BadInputError

BOM = b"\xef\xbb\xbf"
BLOCK_BYTES = 1 << 20  # bytes read at a time; a chunk handed to COPY is about this size
MAX_RECORD_LINES = 10_000  # an open quote spanning more lines than this is a defect, not a record
MAX_RECORD_BYTES = 64 * 1024 * 1024

# One CSV field as PostgreSQL's COPY reads it: quotes may open anywhere and "" is a literal quote.
# Atomic groups and possessive quantifiers keep the match linear on hostile input.
_FIELD = rb'(?>[^,"\r\n]++|"(?>[^"]++|"")*+")*+'
_RECORD = re.compile(_FIELD + rb"(?:," + _FIELD + rb"){%d}" % (FIELD_COUNT - 1))
_ONE_FIELD = re.compile(_FIELD)
WRONG_COUNT = "wrong number of fields"
NOT_SPLIT_TRIM = (
    "its trim and body fields rejoined are no known split trim: where the extra comma is cannot be told"
)
_QUOTED = re.compile(rb'"(?:[^"]|"")*"')


@dataclass
class Reject:
    line_number: int
    line_count: int
    raw: bytes
    reason: str


@dataclass
class Counts:
    records: int = 0
    loaded: int = 0
    rejected: int = 0
    bytes_read: int = 0
    physical_lines: int = 0
    split_trim: int = 0  # loaded records of 17 fields with a known split trim (among `loaded`)
    reasons: dict[str, int] = field(default_factory=dict)


def _strip_eol(line: bytes) -> bytes:
    if line.endswith(b"\r\n"):
        return line[:-2]
    if line.endswith(b"\n"):
        return line[:-1]
    return line


def check_record(record: bytes) -> str | None:
    """Why a record (without its line end) cannot be loaded, or None if it can."""
    if b'"' not in record:
        if b"\r" in record:
            return "carriage return inside an unquoted field"
        commas = record.count(b",")
        if commas != FIELD_COUNT - 1:
            return _wrong_count(commas + 1)
        return None
    if _RECORD.fullmatch(record):
        return None
    unquoted = _QUOTED.sub(b"", record)
    if b'"' in unquoted:
        return "malformed quoting: a quoted field is never closed"
    if b"\r" in unquoted:
        return "carriage return inside an unquoted field"
    return _wrong_count(unquoted.count(b",") + 1)


def _wrong_count(found: int) -> str:
    reason = f"{WRONG_COUNT}: expected {FIELD_COUNT}, found {found}"
    if found == FIELD_COUNT + 1:
        reason += f" ({NOT_SPLIT_TRIM})"
    return reason


def is_split_trim(record: bytes) -> bool:
    """Whether a record is a line of FIELD_COUNT + 1 fields with a known split trim, loadable as it
    is (valid UTF-8, no NUL, no carriage return outside quotes). Fields are compared as written."""
    if b'"' not in record:
        if b"\r" in record:
            return False
        fields = record.split(b",")
    else:  # field by field, as COPY reads them
        fields, at = [], 0
        while at <= len(record) and len(fields) <= FIELD_COUNT + 1:
            match = _ONE_FIELD.match(record, at)
            if match.end() < len(record) and record[match.end()] != ord(","):
                return False  # a quote that never closes, or a carriage return outside quotes
            fields.append(match.group())
            at = match.end() + 1
    if len(fields) != FIELD_COUNT + 1 or _utf8_reason(record):
        return False
    return split_trim([f.decode() for f in fields]) is not None


def _utf8_reason(record: bytes) -> str | None:
    if b"\x00" in record:
        return "NUL byte in line (not allowed in text)"
    try:
        record.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"not valid UTF-8: byte 0x{record[exc.start]:02x} at column {exc.start + 1}"
    return None


def read_header(stream: BinaryIO, source: str) -> bytes:
    """Read and check line 1; raises BadInputError naming the file and what was expected."""
    first = stream.readline()
    if not first:
        raise BadInputError(f"{source}: the file is empty; expected a header line: {HEADER_LINE}")
    header = _strip_eol(first.removeprefix(BOM))
    if header != HEADER_LINE.encode():
        shown = header[:200].decode("utf-8", errors="replace")
        raise BadInputError(
            f"{source}: line 1: the header is not the expected one; expected {HEADER_LINE!r}, found {shown!r}"
        )
    return first


def _quoted_lines(block: bytes) -> Iterator[bytes]:
    """The lines of a block that hold a quote, found from the quotes (a few per block), not by
    looking at every line."""
    at = block.find(b'"')
    while at >= 0:
        start = block.rfind(b"\n", 0, at) + 1
        end = block.find(b"\n", at)
        yield block[start:end]
        at = block.find(b'"', end)


class RecordSplitter:
    """Turns the lines after the header into COPY chunks, collecting rejects and split-trim records.

    The file is read in blocks of whole lines. A block without quotes, stray carriage returns
    or bad bytes (nearly all of them) is checked and numbered with a few list operations; only
    the other blocks go line by line, where a quoted field may span lines.
    """

    def __init__(self, stream: BinaryIO, counts: Counts, on_reject, on_split_trim):
        self.stream = stream
        self.counts = counts
        self.on_reject = on_reject
        self.on_split_trim = on_split_trim  # called with `line_number,record\n` (17 fields)
        self.next_line = 2  # the header was line 1
        self.pending: list[tuple[int, bytes]] = []  # lines of a quoted record still open
        self.pending_size = 0

    def _blocks(self) -> Iterator[tuple[bytes, list[bytes], str]]:
        """(block, its lines without their LF, kind): "plain" and "quoted" blocks may take the fast
        path."""
        rest = b""
        while True:
            data = self.stream.read(BLOCK_BYTES)
            if not data:
                if rest:  # a last line with no line end
                    self.counts.bytes_read += len(rest)
                    yield rest, [rest], "slow"
                return
            data = rest + data
            cut = data.rfind(b"\n") + 1
            if cut == 0:  # one very long line: keep reading
                rest = data
                continue
            block, rest = data[:cut], data[cut:]
            self.counts.bytes_read += len(block)
            quoted = b'"' in block
            if not quoted and b"\r" in block and block.count(b"\r\n") == block.count(b"\r"):
                block = block.replace(b"\r\n", b"\n")  # CRLF line ends (inside quotes CRLF is data)
            lines = block.split(b"\n")
            lines.pop()
            kind = "slow" if b"\r" in block or b"\x00" in block else ("quoted" if quoted else "plain")
            yield block, lines, kind

    def _reject(self, line_number: int, line_count: int, raw: bytes, reason: str) -> None:
        self.counts.records += 1
        self.counts.rejected += 1
        key = reason.split(":")[0]
        self.counts.reasons[key] = self.counts.reasons.get(key, 0) + 1
        self.on_reject(Reject(line_number, line_count, raw, reason))

    def chunks(self) -> Iterator[bytes]:
        """COPY input: `line_number,record\\n` for every good record, a block at a time."""
        for block, lines, kind in self._blocks():
            start = self.next_line
            self.next_line += len(lines)
            self.counts.physical_lines += len(lines)
            chunk = (
                self._fast(start, block, lines, kind == "quoted")
                if kind != "slow" and not self.pending
                else None
            )
            if chunk is None:
                chunk = self._slow(list(enumerate(lines, start)))
            if chunk:
                yield chunk
        while self.pending:  # the file ended inside a quoted field
            chunk = self._unterminated()
            if chunk:
                yield chunk

    def _fast(self, start: int, block: bytes, lines: list[bytes], quoted: bool) -> bytes | None:
        """The block as COPY input if every line is a whole, valid 16-field UTF-8 record or an
        unquoted split-trim record (set apart), else None.

        Quoted fields are rare (a line in hundreds): only the lines holding a quote get the full
        check; a quote that continues on the next line sends the block down the slow path.
        """
        commas = FIELD_COUNT - 1
        # map() over C methods: no Python frame per line (this loop sees every line of the file).
        counts = list(map(bytes.count, lines, repeat(b",")))
        split_trims = []
        if counts.count(commas) != len(lines):
            for i, n in enumerate(counts):
                if n == commas:
                    continue
                if b'"' in lines[i]:  # only good if quotes hold the extra commas: checked below
                    continue
                if n == commas + 1 and is_split_trim(lines[i]):
                    split_trims.append(i)
                    continue
                return None
        if quoted and any(
            line.count(b'"') % 2 == 1 or check_record(line) is not None for line in _quoted_lines(block)
        ):
            return None
        numbered = zip(range(start, start + len(lines)), lines, strict=True)
        if split_trims:
            apart = set(split_trims)
            numbered = [pair for i, pair in enumerate(numbered) if i not in apart]
        chunk = b"".join([b"%d,%s\n" % pair for pair in numbered])
        try:
            chunk.decode("utf-8")
        except UnicodeDecodeError:
            return None
        for i in split_trims:  # valid UTF-8 already (is_split_trim)
            self.on_split_trim(b"%d,%s\n" % (start + i, lines[i]))
        self.counts.records += len(lines)
        self.counts.loaded += len(lines)
        self.counts.split_trim += len(split_trims)
        return chunk

    def _slow(self, items: list[tuple[int, bytes]]) -> bytes:
        """Line by line: join quoted records that span lines, check each record."""
        out = []
        for number, line in items:
            if self.pending:
                self.pending.append((number, line))
                self.pending_size += len(line)
                if line.count(b'"') % 2 == 1:  # the open quote closes on this line
                    first = self.pending[0][0]
                    record = b"\n".join(part for _, part in self.pending).removesuffix(b"\r")
                    span = len(self.pending)
                    self.pending, self.pending_size = [], 0
                    out.append(self._record(first, span, record))
                elif len(self.pending) > MAX_RECORD_LINES or self.pending_size > MAX_RECORD_BYTES:
                    out.append(self._unterminated())
                continue
            if line.count(b'"') % 2 == 1:  # a quoted field opens and goes on to the next line
                self.pending, self.pending_size = [(number, line)], len(line)
                continue
            out.append(self._record(number, 1, line.removesuffix(b"\r")))
        return b"".join(out)

    def _record(self, number: int, span: int, record: bytes) -> bytes:
        reason = check_record(record) or _utf8_reason(record)
        if reason and reason.startswith(WRONG_COUNT) and is_split_trim(record):
            self.counts.records += 1
            self.counts.loaded += 1
            self.counts.split_trim += 1
            self.on_split_trim(b"%d,%s\n" % (number, record))
            return b""
        if reason:
            self._reject(number, span, record, reason)
            return b""
        self.counts.records += 1
        self.counts.loaded += 1
        return b"%d,%s\n" % (number, record)

    def _unterminated(self) -> bytes:
        """A quote that never closes: reject the line that opened it and read on from the next."""
        (number, line), rest = self.pending[0], self.pending[1:]
        self.pending, self.pending_size = [], 0
        self._reject(number, 1, line.removesuffix(b"\r"), "malformed quoting: a quoted field is never closed")
        return self._slow(rest)


class CopyFeed:
    """A file-like object over chunks, for psycopg2's copy_expert (it only calls read).

    An error while reading the source (a truncated .csv.gz, an I/O error) must not reach psycopg2:
    it would cancel the COPY and look like a lost connection. The feed ends the COPY instead and
    keeps the error; the caller raises it, so the transaction rolls back with the file's own error.
    """

    def __init__(self, chunks: Iterator[bytes]):
        self._chunks = chunks
        self.error: Exception | None = None

    def read(self, size: int = -1) -> bytes:
        try:
            for chunk in self._chunks:
                if chunk:
                    return chunk
        except (OSError, EOFError) as exc:  # gzip.BadGzipFile is an OSError
            self.error = exc
        return b""
