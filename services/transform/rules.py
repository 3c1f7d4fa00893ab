"""The cleaning rules of the transform stage: one small function per rule, all in this module.

Each rule has its own unit tests in tests/test_transform_rules.py. A chunk job (clean.py) applies
the rules on text fields once per distinct raw value and maps the results back onto the rows, so a
rule is plain Python on one value; the per-row rules (VIN, odometer) take a whole column (a pandas
Series of Arrow-backed strings) and are vectorized with pandas' `.str` methods.

A rule returns None for a missing value (blank, `—`) and for a value it cannot read; clean.py tells
the two apart (present but None after the rule = a defect with a reason code). A NULL field and an
empty one mean the same to every rule.

Reference data (the shipped CSV files in reference/) is read once per process.
"""

import csv
import datetime as dt
import hashlib
import re
import uuid
from decimal import ROUND_HALF_UP, Decimal
from functools import cache
from pathlib import Path

import pandas as pd
import pyarrow as pa

REFERENCE = Path(__file__).with_name("reference")

# Name-based uuids: RFC 4122 version 3 (MD5) in the pipeline's namespace
# (= uuid5(NAMESPACE_URL, 'urn:carsales-pipeline:staging')). Version 3 keeps the ids every earlier
# release published; they only need to be deterministic and practically collision-free.
NAMESPACE = uuid.UUID("63520289-7aa7-5e3f-8290-f3a19dd5925c")

# PostgreSQL's `\s` (the SQL rules this module replaced used it): ASCII whitespace only.
_SPACES = re.compile(r"[ \t\n\r\f\v]+")
_UNKNOWN = ("", "—", "–", "-")


def _reference(name: str) -> dict[str, str]:
    with (REFERENCE / name).open(encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    return {key: value for key, value in rows[1:]}


@cache
def states() -> dict[str, str]:
    """Known state and province codes with their names (reference/states.csv)."""
    return _reference("states.csv")


@cache
def make_aliases() -> dict[str, str]:
    """Lower-case spellings of a make -> its canonical brand (reference/make_aliases.csv)."""
    return _reference("make_aliases.csv")


@cache
def body_styles() -> dict[str, str]:
    """Lower-case body styles -> their one spelling, where title case is wrong (SUV, SuperCrew)."""
    return _reference("body_styles.csv")


# --- keys ------------------------------------------------------------------------------------------


def name_uuid(name: str) -> uuid.UUID:
    """The id of a dimension row: uuid3 of `'<kind>:<natural key>'` (`make:Ford`)."""
    return uuid.uuid3(NAMESPACE, name)


_NAMESPACE_BYTES = NAMESPACE.bytes


def name_uuid_hex(name: str) -> str:
    """name_uuid as 32 hex digits, without building a UUID object (a chunk computes thousands)."""
    digest = bytearray(hashlib.md5(_NAMESPACE_BYTES + name.encode()).digest())
    digest[6] = (digest[6] & 0x0F) | 0x30  # version 3
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    return digest.hex()


def sale_uuid(source_sha256: str, line_number: int) -> uuid.UUID:
    """The id of a sale: its natural key (source_sha256, line_number) written as a uuid, version 8
    (RFC 9562, custom): 72 bits of the file's SHA-256 and the line number (48 bits). The key is
    already a hash plus a number, so nothing is hashed per row; one file's sales are one range of
    ids, in line order, so the primary key grows at its right edge. sale_uuids() is the same for
    a whole column."""
    sha = source_sha256
    return uuid.UUID(sha[:12] + "8" + sha[12:15] + "8" + sha[15:18] + f"{line_number:012x}")


def sale_uuids(source_sha256: str, line_numbers) -> pa.Array:
    """sale_uuid for every line of a column (numpy int64), as 32 hex digits, without a loop: the
    line numbers' hex digits are cut out of one hex dump of their big-endian bytes."""
    import numpy as np

    lines = np.asarray(line_numbers, dtype=">u8")
    hexes = np.frombuffer(lines.tobytes().hex().encode("ascii"), dtype="S16").view(np.uint8)
    hexes = hexes.reshape(-1, 16)[:, 4:]  # 48 bits = the last 12 hex digits
    sha = source_sha256
    prefix = np.frombuffer((sha[:12] + "8" + sha[12:15] + "8" + sha[15:18]).encode("ascii"), dtype=np.uint8)
    ids = np.ascontiguousarray(np.hstack([np.broadcast_to(prefix, (len(lines), 20)), hexes]))
    return pa.array(ids.view("S32").ravel(), type=pa.binary(32)).cast(pa.string())


# --- text ------------------------------------------------------------------------------------------


def clean_text(value: str | None) -> str | None:
    """Trim, collapse inner whitespace to one space; blank and the unknown markers (`—`, `–`, `-`)
    become None."""
    if value is None:
        return None
    text = _SPACES.sub(" ", value).strip(" ")
    return None if text in _UNKNOWN else text


def initcap(text: str) -> str:
    """PostgreSQL's initcap: the first letter of each word upper case, the rest lower case; a word
    is a run of letters and digits (so `mercedes-b` -> `Mercedes-B`, `3series` -> `3series`)."""
    out, after_alnum = [], False
    for char in text:
        out.append(char.lower() if after_alnum else char.upper())
        after_alnum = char.isalnum()
    return "".join(out)


def canonical_make(value: str | None) -> str | None:
    """The canonical brand of an alias or case variant (reference/make_aliases.csv); a make not in
    the list is title-cased. Only the lower-cased text counts, so two spellings that differ by
    case can never give two makes."""
    text = clean_text(value)
    if text is None:
        return None
    key = text.lower()
    return make_aliases().get(key) or initcap(key)


def canonical_body(value: str | None) -> str | None:
    """The spelling in reference/body_styles.csv (SUV, SuperCrew, ...), otherwise title case
    (`sedan` and `Sedan` -> `Sedan`, `crew cab` -> `Crew Cab`)."""
    text = clean_text(value)
    if text is None:
        return None
    key = text.lower()
    return body_styles().get(key) or initcap(key)


def canonical_label(value: str | None) -> str | None:
    """Model and trim: cleaned text, spelling kept (`3 Series`, `328i SULEV`)."""
    return clean_text(value)


def canonical_lower(value: str | None) -> str | None:
    """Transmission and colours: lower case (`automatic`, `off-white`)."""
    text = clean_text(value)
    return None if text is None else text.lower()


def canonical_seller(value: str | None) -> str | None:
    """Seller: lower case; a comma is a word break like the doubled space it became elsewhere in
    the file (`kia motors america, inc`, `kia motors america  inc` -> `kia motors america inc`)."""
    return canonical_lower(None if value is None else value.replace(",", " "))


def state_code(value: str | None) -> str | None:
    """State: the upper-case code; whether it is known is a lookup in states()."""
    text = clean_text(value)
    return None if text is None else text.upper()


# --- numbers and dates -----------------------------------------------------------------------------

_YEAR = re.compile(r"[0-9]{4}")
_GRADE = re.compile(r"[0-9]{1,2}(\.[0-9]+)?")


def parse_model_year(value: str | None) -> int | None:
    """Model year: four digits between 1900 and 2100."""
    text = clean_text(value)
    if text is None or not _YEAR.fullmatch(text):
        return None
    year = int(text)
    return year if 1900 <= year <= 2100 else None


def parse_condition(value: str | None) -> int | None:
    """Condition on one scale, 10-50. The file mixes grades 1-5 (decimals allowed: 4.5) with the
    same grades times ten (10-49); 1-5 is multiplied by 10. Anything else (0, 6-9, > 50, text) is
    unreadable."""
    text = clean_text(value)
    if text is None or not _GRADE.fullmatch(text):
        return None
    grade = Decimal(text)
    if 1 <= grade <= 5:
        return int((grade * 10).quantize(Decimal(1), ROUND_HALF_UP))
    if 10 <= grade <= 50:
        return int(grade.quantize(Decimal(1), ROUND_HALF_UP))
    return None


def condition_rescaled(value: str | None) -> bool:
    """True for a readable grade written on the 1-5 scale (counted in the stage's details)."""
    return parse_condition(value) is not None and Decimal(clean_text(value)) <= 5


_SALE_DATE = re.compile(
    r"[A-Z][a-z]{2} [A-Z][a-z]{2} [0-9]{2} [0-9]{4} [0-9]{2}:[0-9]{2}:[0-9]{2} GMT[+-][0-9]{4}( \([^()]*\))?"
)
_MONTHS = "JanFebMarAprMayJunJulAugSepOctNovDec"


def parse_sale_date(value: str | None) -> dt.datetime | None:
    """`Tue Dec 16 2014 12:30:00 GMT-0800 (PST)` (JavaScript's Date.toString) as a UTC datetime,
    honouring the written offset: GMT-0800 and GMT-0700 differ by an hour whatever the zone name
    says. The weekday and the zone name are not checked; an impossible date (Feb 30, 25:00) is
    unreadable."""
    text = clean_text(value)
    if text is None or not _SALE_DATE.fullmatch(text):
        return None
    month = _MONTHS.find(text[4:7])
    if month < 0 or month % 3:
        return None
    offset = int(text[29:31]) * 60 + int(text[31:33])
    if offset > 14 * 60:
        return None
    if text[28] == "-":
        offset = -offset
    try:
        local = dt.datetime(
            int(text[11:15]),
            month // 3 + 1,
            int(text[8:10]),
            int(text[16:18]),
            int(text[19:21]),
            int(text[22:24]),
        )
    except ValueError:  # no such day, hour, minute or second; year 0
        return None
    return (local - dt.timedelta(minutes=offset)).replace(tzinfo=dt.UTC)


EARLIEST_SALE = dt.datetime(1990, 1, 1, tzinfo=dt.UTC)


def sale_date_plausible(sale_date: dt.datetime, now: dt.datetime | None = None) -> bool:
    """Sale dates outside [1990-01-01, now + 1 day) cannot be true for this data (a future sale, a
    lost century): the line is quarantined rather than published with a wrong date."""
    now = now or dt.datetime.now(dt.UTC)
    return EARLIEST_SALE <= sale_date < now + dt.timedelta(days=1)


_MONEY = re.compile(r"[0-9]+|[0-9]*\.[0-9]+")
_NEGATIVE = re.compile(r"-[0-9]*\.?[0-9]+")
_CENTS = Decimal("0.01")


def parse_money(value: str | None) -> Decimal | None:
    """Prices (mmr, selling price): dollars, cents allowed (rounded to 2 decimals), below 10^13;
    negative or non-numeric is unreadable."""
    if value is None:
        return None
    text = value.strip(" ")
    if not _MONEY.fullmatch(text) or len(text.split(".")[0]) > 13:
        return None
    return Decimal(text).quantize(_CENTS, ROUND_HALF_UP)


def number_defect(value: str) -> str:
    """Why a present number could not be read: `negative` or `not_a_number` (a reason's suffix)."""
    return "negative" if _NEGATIVE.fullmatch(value.strip(" ")) else "not_a_number"


# --- per-row rules, vectorized ---------------------------------------------------------------------
# These take whole columns (pandas Series of Arrow-backed strings, as clean.py holds a chunk) and
# use the `.str` accessor, which runs each step over the Arrow buffers without a Python loop.


def byte_length(values: pd.Series) -> pd.Series:
    """Each value's length in bytes as loaded (PostgreSQL's octet_length): its length in characters
    where the text is ASCII (nearly every value), its UTF-8 encoding measured for the rest."""
    lengths = values.str.len()
    wide = ~values.str.isascii().fillna(True).astype(bool)
    if wide.any():
        lengths[wide] = values[wide].map(lambda text: len(text.encode()))
    return lengths


def is_shifted(state: pd.Series, vin: pd.Series) -> pd.Series:
    """A shifted line (the unquoted comma of `SE PZEV w/ Connectivity, Navitgation`): every field
    from body on moved one place right, so the state field holds the 17-character VIN and the VIN
    field does not. Fields are measured in bytes as loaded (a state code is 2, a VIN 17)."""
    state_is_vin = (byte_length(state) == 17).fillna(False)
    vin_is_vin = (byte_length(vin) == 17).fillna(False)
    return state_is_vin & ~vin_is_vin


def clean_vin(vin: pd.Series) -> pd.Series:
    """VIN: upper case (the file writes it in lower case), trimmed; blank becomes null."""
    cleaned = vin.str.strip(" ").str.upper()  # a VIN with other letters is invalid anyway
    return cleaned.mask((cleaned == "").fillna(False))


def is_valid_vin(vin: pd.Series) -> pd.Series:
    """A VIN is trustworthy only as 17 letters and digits (blanks around it allowed). The pattern
    admits ASCII only, so its length in characters is its length in bytes."""
    valid = (vin.str.strip(" ").str.len() == 17) & vin.str.contains(r"^\s*[A-Za-z0-9]+\s*$", regex=True)
    return valid.fillna(False)


_MILES = re.compile(r"[ \t\n\r\f\v]*[0-9]+[ \t\n\r\f\v]*")
_ASCII_SPACES = " \t\n\r\f\v"


def parse_miles(value: str | None) -> int | None:
    """Odometer (miles): a whole number below 10^9; negative or non-numeric is unreadable.
    (parse_miles_column is the same rule for a whole column.)"""
    if value is None or not _MILES.fullmatch(value):
        return None
    miles = int(value.strip())
    return miles if miles < 10**9 else None


def parse_miles_column(values: pd.Series) -> pd.Series:
    """parse_miles for every row (nearly every odometer value is distinct): digits with blanks
    around them, at most 9 significant digits."""
    trimmed = values.str.strip(_ASCII_SPACES)
    significant = trimmed.str.lstrip("0")
    readable = (trimmed.str.contains("^[0-9]+$", regex=True) & (significant.str.len() <= 9)).fillna(False)
    digits = significant.mask((significant == "").fillna(False), "0")
    return digits.where(readable).astype(pd.ArrowDtype(pa.int32()))
