"""Tests of the deterministic sample generator (tools/sample.py); no database needed.

The checks read the written file back with the csv module and recompute everything independently
of the generator's own bookkeeping, so a wrong count, a broken line or a wrong weekday fails here.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from collections import Counter
from pathlib import Path

import pytest

from shared.dataset import FIELD_COUNT, HEADER, HEADER_LINE
from tools import sample
from tools.sample import write_sample

ROWS = 5000
SEED = 42
COMMITTED_SAMPLE = Path(__file__).resolve().parent.parent / "data" / "sample.csv"

VW_WRITTEN_TRIM, VW_WRITTEN_BODY = "SE PZEV w/Connectivity", "Navitgation"
VIN_RE = re.compile(r"^[0-9a-hj-npr-z]{17}$")
SALEDATE_RE = re.compile(
    r"^(?P<weekday>Mon|Tue|Wed|Thu|Fri|Sat|Sun) (?P<month>[A-Z][a-z]{2}) (?P<day>\d{2}) (?P<year>\d{4}) "
    r"(?P<time>\d{2}:\d{2}:\d{2}) (?P<zone>GMT-0800 \(PST\)|GMT-0700 \(PDT\))$"
)
MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
MONTHS = {name: number for number, name in enumerate(MONTH_NAMES, 1)}
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
US_AND_OTHER_STATES = {
    "al", "ak", "az", "ar", "ca", "co", "ct", "de", "fl", "ga", "hi", "id", "il", "in", "ia", "ks",
    "ky", "la", "me", "md", "ma", "mi", "mn", "ms", "mo", "mt", "ne", "nv", "nh", "nj", "nm", "ny",
    "nc", "nd", "oh", "ok", "or", "pa", "ri", "sc", "sd", "tn", "tx", "ut", "vt", "va", "wa", "wv",
    "wi", "wy", "dc", "pr", "on", "qc", "ab", "ns",
}  # fmt: skip
IDX = {name: i for i, name in enumerate(HEADER)}


# --------------------------------------------------------------------------------------------------
# Reading the file back
# --------------------------------------------------------------------------------------------------
def read_records(path: Path) -> list[list[str]]:
    """All CSV records after the header (strict RFC 4180 parsing)."""
    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle, strict=True)
        header = next(reader)
        assert header == list(HEADER)
        return list(reader)


def is_vw_split(record: list[str]) -> bool:
    return len(record) == FIELD_COUNT + 1 and record[3] == VW_WRITTEN_TRIM and record[4] == VW_WRITTEN_BODY


def logical(record: list[str]) -> list[str]:
    """The record as it was meant: for a 17-field Volkswagen line, the trim rejoined."""
    if is_vw_split(record):
        return [*record[:3], f"{record[3]}, {record[4]}", *record[5:]]
    return list(record)


def pacific_daylight(day: dt.date) -> bool:
    """Second Sunday of March < day < first Sunday of November (sales are never on Sundays)."""
    sundays_march = [dt.date(day.year, 3, d) for d in range(1, 32) if dt.date(day.year, 3, d).weekday() == 6]
    sundays_nov = [dt.date(day.year, 11, d) for d in range(1, 31) if dt.date(day.year, 11, d).weekday() == 6]
    return sundays_march[1] < day < sundays_nov[0]


def count_from_file(path: Path) -> dict[str, int]:
    """Recompute every count of sample.COUNT_KEYS from the file alone."""
    records = read_records(path)
    c: Counter[str] = Counter()
    seen_vins: set[str] = set()
    for record in records:
        c["rows"] += 1
        c["vw_split_trim"] += is_vw_split(record)
        c["quoted_fields"] += sum("," in field or '"' in field for field in record)
        c["doubled_quote_fields"] += sum('"' in field for field in record)
        row = dict(zip(HEADER, logical(record), strict=True))
        make, body, vin = row["make"], row["body"], row["vin"]
        c["make_blank"] += make == ""
        c["make_lowercase"] += make in sample.LOWERCASE_MAKES
        c["make_alias"] += make in sample.MAKE_ALIASES
        c["model_blank"] += row["model"] == ""
        c["trim_blank"] += row["trim"] == ""
        c["body_blank"] += body == ""
        c["body_lowercase"] += body != "" and body == body.lower()
        c["transmission_blank"] += row["transmission"] == ""
        c["transmission_manual"] += row["transmission"] == "manual"
        c["vin_blank"] += vin == ""
        c["vin_repeat"] += vin != "" and vin in seen_vins
        seen_vins.add(vin)
        c["state_canada"] += row["state"] in {"on", "qc", "ab", "ns"}
        c["state_pr"] += row["state"] == "pr"
        condition = row["condition"]
        c["condition_blank"] += condition == ""
        c["condition_1_to_5"] += condition != "" and 1 <= float(condition) <= 5
        c["condition_decimal"] += "." in condition
        c["condition_10_to_49"] += condition != "" and 10 <= float(condition) <= 49
        c["odometer_blank"] += row["odometer"] == ""
        c["odometer_1"] += row["odometer"] == "1"
        c["odometer_999999"] += row["odometer"] == "999999"
        c["em_dash_color"] += row["color"] == "\u2014"
        c["em_dash_interior"] += row["interior"] == "\u2014"
        c["color_blank"] += row["color"] == ""
        c["interior_blank"] += row["interior"] == ""
        c["seller_doubled_space"] += "  " in row["seller"]
        c["mmr_blank"] += row["mmr"] == ""
        c["sellingprice_1"] += row["sellingprice"] == "1"
        c["sellingprice_blank"] += row["sellingprice"] == ""
        saledate = row["saledate"]
        c["saledate_blank"] += saledate == ""
        c["saledate_pst"] += saledate.endswith("GMT-0800 (PST)")
        c["saledate_pdt"] += saledate.endswith("GMT-0700 (PDT)")
    return {key: c[key] for key in sample.COUNT_KEYS}


# --------------------------------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    path = tmp_path_factory.mktemp("sample") / "sample.csv"
    return path, write_sample(path, ROWS, SEED)


@pytest.fixture(scope="module")
def records(generated: tuple[Path, dict[str, int]]) -> list[list[str]]:
    return read_records(generated[0])


@pytest.fixture(scope="module")
def file_counts(generated: tuple[Path, dict[str, int]]) -> dict[str, int]:
    return count_from_file(generated[0])


# --------------------------------------------------------------------------------------------------
# Determinism and file format
# --------------------------------------------------------------------------------------------------
def test_same_seed_gives_same_bytes(tmp_path: Path) -> None:
    first, second, other = tmp_path / "a.csv", tmp_path / "b.csv", tmp_path / "c.csv"
    assert write_sample(first, 3000, seed=7) == write_sample(second, 3000, seed=7)
    write_sample(other, 3000, seed=8)
    assert first.read_bytes() == second.read_bytes()
    assert first.read_bytes() != other.read_bytes()


def test_committed_sample_is_current(generated: tuple[Path, dict[str, int]]) -> None:
    """data/sample.csv is exactly write_sample(rows=5000, seed=42): regenerate it if this fails."""
    assert COMMITTED_SAMPLE.read_bytes() == generated[0].read_bytes()


def test_header_encoding_and_line_ends(generated: tuple[Path, dict[str, int]]) -> None:
    raw = generated[0].read_bytes()
    assert raw.startswith((HEADER_LINE + "\n").encode())
    assert not raw.startswith(b"\xef\xbb\xbf")
    assert b"\r" not in raw
    assert raw.endswith(b"\n") and not raw.endswith(b"\n\n")
    raw.decode("utf-8")  # valid UTF-8 throughout


def test_record_count(generated: tuple[Path, dict[str, int]], records: list[list[str]]) -> None:
    assert len(records) == ROWS == generated[1]["rows"]
    # no field holds a line break, so physical lines and records agree
    assert generated[0].read_text(encoding="utf-8").count("\n") == ROWS + 1


def test_every_record_has_16_fields_but_the_split_trim_ones(
    generated: tuple[Path, dict[str, int]], records: list[list[str]]
) -> None:
    assert FIELD_COUNT == 16
    split = [record for record in records if is_vw_split(record)]
    assert len(split) == generated[1]["vw_split_trim"] >= 1
    assert {len(record) for record in records if not is_vw_split(record)} == {FIELD_COUNT}
    assert {len(record) for record in split} == {FIELD_COUNT + 1}


def test_pandas_stops_at_the_17_field_lines_as_on_the_real_file(
    generated: tuple[Path, dict[str, int]],
) -> None:
    pd = pytest.importorskip("pandas")
    with pytest.raises(pd.errors.ParserError, match="Expected 16 fields in line .*, saw 17"):
        pd.read_csv(generated[0], dtype=str, keep_default_na=False)
    frame = pd.read_csv(generated[0], dtype=str, keep_default_na=False, on_bad_lines="skip")
    assert list(frame.columns) == list(HEADER)
    assert frame.shape == (ROWS - generated[1]["vw_split_trim"], FIELD_COUNT)


def test_empty_and_tiny_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    counts = write_sample(empty, 0)
    assert empty.read_text(encoding="utf-8") == HEADER_LINE + "\n"
    assert counts == dict.fromkeys(sample.COUNT_KEYS, 0)
    small = tmp_path / "small.csv"
    assert write_sample(small, 200)["vw_split_trim"] >= 1
    assert count_from_file(small)["vw_split_trim"] >= 1
    with pytest.raises(ValueError):
        write_sample(tmp_path / "bad.csv", -1)


# --------------------------------------------------------------------------------------------------
# Defects
# --------------------------------------------------------------------------------------------------
def test_returned_counts_match_the_file(
    generated: tuple[Path, dict[str, int]], file_counts: dict[str, int]
) -> None:
    assert list(generated[1]) == list(sample.COUNT_KEYS)
    assert generated[1] == file_counts


def test_counts_match_across_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Several chunks: resales of cars from the previous chunk, planted defects spread over chunks."""
    monkeypatch.setattr(sample, "CHUNK_ROWS", 700)
    path = tmp_path / "chunked.csv"
    counts = write_sample(path, 4500, seed=3)
    assert counts == count_from_file(path)
    assert len(read_records(path)) == 4500


@pytest.mark.parametrize(
    "key",
    [
        "vw_split_trim",
        "vin_blank",
        "mmr_blank",
        "sellingprice_blank",
        "condition_decimal",
        "interior_blank",
        "em_dash_color",
        "em_dash_interior",
        "color_blank",
        "make_alias",
        "make_lowercase",
        "make_blank",
        "body_lowercase",
        "body_blank",
        "trim_blank",
        "condition_1_to_5",
        "condition_10_to_49",
        "condition_blank",
        "saledate_pst",
        "saledate_pdt",
        "saledate_blank",
        "transmission_blank",
        "transmission_manual",
        "vin_repeat",
        "odometer_1",
        "odometer_999999",
        "odometer_blank",
        "quoted_fields",
        "doubled_quote_fields",
        "seller_doubled_space",
        "sellingprice_1",
        "state_canada",
        "state_pr",
    ],
)
def test_each_defect_class_is_present(file_counts: dict[str, int], key: str) -> None:
    assert file_counts[key] > 0


@pytest.mark.parametrize(
    ("key", "low", "high"),
    [
        ("make_blank", 0.012, 0.025),
        ("transmission_blank", 0.09, 0.14),
        ("transmission_manual", 0.01, 0.06),
        ("vin_repeat", 0.012, 0.03),
        ("condition_1_to_5", 0.10, 0.20),
        ("condition_blank", 0.012, 0.03),
        ("em_dash_color", 0.03, 0.05),
        ("em_dash_interior", 0.02, 0.04),
        ("odometer_1", 0.001, 0.006),
        ("make_lowercase", 0.01, 0.05),
    ],
)
def test_realistic_proportions(file_counts: dict[str, int], key: str, low: float, high: float) -> None:
    assert low <= file_counts[key] / ROWS <= high


def test_volkswagen_split_trim_lines(
    generated: tuple[Path, dict[str, int]], records: list[list[str]]
) -> None:
    split = [record for record in records if is_vw_split(record)]
    assert len(split) == generated[1]["vw_split_trim"] >= 1
    for record in split:
        year, make, model, _, _, body, transmission, vin, state, condition, odometer = record[:11]
        color, interior, seller, mmr, sellingprice, saledate = record[11:]
        assert (year, make, model) == ("2015", "Volkswagen", "Jetta")
        assert body in {"sedan", "Sedan"}
        assert transmission == "", "blank on these lines of the real file"
        assert VIN_RE.match(vin) and vin.startswith(("3vw", "wvw", "1vw", "wvg"))
        assert state in US_AND_OTHER_STATES
        assert re.fullmatch(r"\d+(\.\d)?", condition) and odometer.isdigit()
        assert color in sample.COLOR_WEIGHTS or color in {"\u2014", ""}
        assert interior in sample.INTERIOR_WEIGHTS or interior in {"\u2014", ""}
        assert seller and not seller.isdigit()
        assert mmr.isdigit() and sellingprice.isdigit()
        assert SALEDATE_RE.match(saledate), "the sale date is there, in its place after the split"
    # written as in the real file: unquoted, the trim split at its comma, 17 fields
    lines = generated[0].read_text(encoding="utf-8").splitlines()
    broken = [line for line in lines if ",SE PZEV w/Connectivity,Navitgation," in line]
    assert len(broken) == len(split)
    assert all(line.count(",") == FIELD_COUNT and '"' not in line for line in broken)


def test_no_other_record_is_split(generated: tuple[Path, dict[str, int]], records: list[list[str]]) -> None:
    blank_vins = 0
    for record in records:
        if is_vw_split(record):
            continue
        assert len(record) == FIELD_COUNT
        assert record[IDX["transmission"]] in {"automatic", "manual", ""}
        blank_vins += record[IDX["vin"]] == ""
        assert record[IDX["vin"]] == "" or VIN_RE.match(record[IDX["vin"]])
        assert record[IDX["saledate"]] == "" or SALEDATE_RE.match(record[IDX["saledate"]])
    assert blank_vins == generated[1]["vin_blank"]


def test_quoting_is_rfc4180(generated: tuple[Path, dict[str, int]], records: list[list[str]]) -> None:
    """Fields with a comma or quote are written in quotes (inner quotes doubled), and only those."""
    lines = generated[0].read_text(encoding="utf-8").splitlines()[1:]
    for line, record in zip(lines, records, strict=True):
        special = [field for field in record if "," in field or '"' in field]
        assert ('"' in line) == bool(special)
        for field in special:
            assert '"' + field.replace('"', '""') + '"' in line


def test_field_values(records: list[list[str]]) -> None:
    known_makes = sample.CANONICAL_MAKES | sample.LOWERCASE_MAKES | set(sample.MAKE_ALIASES) | {""}
    colors = set(sample.COLOR_WEIGHTS) | {"\u2014", ""}
    interiors = set(sample.INTERIOR_WEIGHTS) | {"\u2014", ""}
    for record in records:
        row = dict(zip(HEADER, logical(record), strict=True))
        assert 1990 <= int(row["year"]) <= 2015
        assert row["make"] in known_makes
        assert row["state"] in US_AND_OTHER_STATES
        grade = row["condition"]
        assert grade == "" or 1 <= float(grade) <= 5 or int(grade) in range(10, 50)
        assert grade == "" or "." not in grade or (float(grade) <= 5 and len(grade.split(".")[1]) == 1)
        assert row["odometer"] == "" or int(row["odometer"]) >= 1
        assert row["color"] in colors and row["interior"] in interiors
        assert row["seller"] != "" and row["seller"] == row["seller"].lower()
        assert row["mmr"] == "" or int(row["mmr"]) >= 25
        assert row["sellingprice"] == "" or int(row["sellingprice"]) >= 1
        assert (row["sellingprice"] == "") == (row["saledate"] == ""), "no price and no date: the same lines"


def test_blank_make_means_blank_model(records: list[list[str]]) -> None:
    blank = [record for record in records if record[IDX["make"]] == ""]
    assert blank and all(record[IDX["model"]] == "" for record in blank)


def test_alias_makes_keep_matching_models(records: list[list[str]]) -> None:
    for record in records:
        make = record[IDX["make"]]
        if make in sample.MAKE_ALIASES:
            canonical = sample.MAKE_ALIASES[make][0]
            assert record[IDX["model"]] in {model for model, *_ in sample.MODELS[canonical]} | {""}


def test_saledate_weekday_and_daylight_time(records: list[list[str]]) -> None:
    dated = 0
    for record in records:
        saledate = logical(record)[IDX["saledate"]]
        if not saledate:
            continue
        match = SALEDATE_RE.match(saledate)
        assert match, saledate
        day = dt.date(int(match["year"]), MONTHS[match["month"]], int(match["day"]))
        assert match["weekday"] == WEEKDAYS[day.weekday()], saledate
        assert dt.date(2014, 1, 1) <= day <= dt.date(2015, 7, 31), saledate
        assert match["zone"].endswith("(PDT)") == pacific_daylight(day), saledate
        dated += 1
    assert dated > 0.99 * ROWS - 10


def test_resold_cars_are_the_same_car_on_another_day(records: list[list[str]]) -> None:
    first_sale: dict[str, list[str | None]] = {}
    resales = 0
    for record in records:
        row = logical(record)
        vin = row[IDX["vin"]]
        if not vin:  # a blank VIN: no car to follow
            continue
        if vin in first_sale:
            resales += 1
            earlier = first_sale[vin]
            for column in ("year", "make", "model", "trim", "body", "color", "interior"):
                assert row[IDX[column]] == earlier[IDX[column]], (vin, column)
            if row[IDX["saledate"]] and earlier[IDX["saledate"]]:
                assert row[IDX["saledate"]][:15] != earlier[IDX["saledate"]][:15], vin
        else:
            first_sale[vin] = row
    assert resales > 0


def test_vins_check_digit(records: list[list[str]]) -> None:
    """The generated VINs carry a valid North American check digit (position 9)."""
    values = {str(d): d for d in range(10)} | dict(
        zip("abcdefghjklmnprstuvwxyz", map(int, "12345678123457923456789"), strict=True)
    )
    weights = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)
    for record in records:
        vin = logical(record)[IDX["vin"]]
        if not vin:
            continue
        remainder = sum(values[ch] * w for ch, w in zip(vin, weights, strict=True)) % 11
        assert vin[8] == ("x" if remainder == 10 else str(remainder)), vin


# --------------------------------------------------------------------------------------------------
# The real file's profile, at its size
# --------------------------------------------------------------------------------------------------
REAL_LINES = 558_837
MAKE_ALIASES_CSV = Path(__file__).resolve().parent.parent / "services/transform/reference/make_aliases.csv"
# The published profile of the real car_prices.csv (docs/dataset.md): figure -> lines or values.
REAL_PROFILE = {
    "17-field lines": 26,
    "make spellings": 96,
    "makes after cleaning": 60,
    "models": 970,
    "trims": 1_960,
    "body spellings": 87,
    "sellers": 14_000,
    "sale times": 3_700,
    "blank transmission": 65_352,
    "blank body": 13_195,
    "blank condition": 11_820,
    "blank trim": 10_651,
    "blank model": 10_399,
    "blank make": 10_301,
    "blank color": 749,
    "blank interior": 749,
    "blank odometer": 94,
    "blank mmr": 38,
    "blank sellingprice": 12,
    "blank saledate": 12,
    "blank vin": 4,
    "— color": 24_700,
    "— interior": 17_100,
    "automatic": 475_880,
    "manual": 17_537,
}


def profile(path: Path) -> tuple[dict[str, int], list[list[str]]]:
    """The REAL_PROFILE figures measured on a file (and its logical records)."""
    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle, strict=True)
        assert next(reader) == list(HEADER)
        written = list(reader)
    rows = [logical(record) for record in written]
    columns = dict(zip(HEADER, zip(*rows, strict=True), strict=True))
    with open(MAKE_ALIASES_CSV, encoding="utf-8", newline="") as handle:
        aliases = {alias: canonical.lower() for alias, canonical in list(csv.reader(handle))[1:]}
    makes = set(columns["make"]) - {""}
    measured = {
        "17-field lines": sum(len(record) == FIELD_COUNT + 1 for record in written),
        "make spellings": len(makes),
        "makes after cleaning": len({aliases.get(make.lower(), make.lower()) for make in makes}),
        "models": len(set(columns["model"]) - {""}),
        "trims": len(set(columns["trim"]) - {""}),
        "body spellings": len(set(columns["body"]) - {""}),
        "sellers": len(set(columns["seller"]) - {""}),
        "sale times": len(set(columns["saledate"]) - {""}),
        **{f"blank {name}": columns[name].count("") for name in HEADER if f"blank {name}" in REAL_PROFILE},
        "— color": columns["color"].count("\u2014"),
        "— interior": columns["interior"].count("\u2014"),
        "automatic": columns["transmission"].count("automatic"),
        "manual": columns["transmission"].count("manual"),
    }
    return measured, rows


@pytest.mark.slow
def test_a_full_size_sample_has_the_real_files_profile(tmp_path: Path) -> None:
    """At 558,837 lines every published figure of the real file is matched within 15 %."""
    path = tmp_path / "car_prices.csv"
    counts = write_sample(path, REAL_LINES, seed=SEED)
    measured, rows = profile(path)
    off = {
        name: (measured[name], target)
        for name, target in REAL_PROFILE.items()
        if abs(measured[name] - target) > 0.15 * target
    }
    assert not off, f"figures more than 15 % off (measured, target): {off}"
    assert counts["rows"] == len(rows) == REAL_LINES
    assert counts["vw_split_trim"] == measured["17-field lines"]
    by_column = dict(zip(HEADER, zip(*rows, strict=True), strict=True))
    # blank make: model, trim and body are blank on those lines too
    assert all(
        (model, trim, body) == ("", "", "")
        for make, model, trim, body in zip(
            *(by_column[c] for c in ("make", "model", "trim", "body")), strict=True
        )
        if make == ""
    )
    # no price and no date: the same lines
    unpriced = {i for i, price in enumerate(by_column["sellingprice"]) if price == ""}
    assert unpriced == {i for i, date in enumerate(by_column["saledate"]) if date == ""}
    # sellers: a few very large, a long tail
    lines_per_seller = sorted(Counter(by_column["seller"]).values(), reverse=True)
    assert lines_per_seller[2] > 10_000, "the three largest sellers have over 10,000 lines each"
    assert lines_per_seller[len(lines_per_seller) // 2] <= 10, "half the sellers have 10 lines or fewer"
    # condition: both scales, 1-5 with decimals (3.5) and 10-49, and nothing else
    grades = Counter(by_column["condition"])
    five_point = sum(n for g, n in grades.items() if g and float(g) <= 5)
    decimals = sum(n for g, n in grades.items() if "." in g)
    ten_point = sum(n for g, n in grades.items() if g and 10 <= float(g) <= 49 and "." not in g)
    assert five_point + ten_point + grades[""] == REAL_LINES
    assert decimals > 0.5 * five_point and ten_point > 0.7 * REAL_LINES
