"""Each cleaning rule of the transform (services/transform/rules.py) on its own.

The rules are Python functions; the text rules take one value (the chunk job runs them once per
distinct value), the per-row ones (VIN, shifted line) a pyarrow column. The reference data is the
shipped CSV files (services/transform/reference/*.csv). These cases are the ones the SQL rules
were tested with before the transform moved into the workers.
"""

import csv
import datetime as dt
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from services.ingest.reader import is_split_trim
from services.transform import clean, rules
from shared.dataset import HEADER
from tests.conftest import GOOD, VW_SHIFTED, VW_SPLIT_TRIM

REFERENCE = Path(rules.__file__).with_name("reference")
NAMESPACE = uuid.UUID("63520289-7aa7-5e3f-8290-f3a19dd5925c")
COLUMN_RULES = ("clean_vin", "is_valid_vin", "is_shifted")


def rule(function: str, *args):
    """rules.<function>(args...); a per-row rule gets its arguments as one-row columns (pandas
    Series of Arrow-backed strings, as clean.py holds a chunk)."""
    if function in COLUMN_RULES:
        columns = [pd.Series([a], dtype=pd.ArrowDtype(pa.string())) for a in args]
        return py(getattr(rules, function)(*columns)[0])
    return getattr(rules, function)(*args)


def py(value):
    """A pandas scalar as the Python value (pd.NA -> None)."""
    return None if pd.isna(value) else value


def reference(name: str) -> list[dict]:
    with (REFERENCE / name).open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


# --- keys ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["make:Ford", "seller:kia motors america inc", "color:off-white", "state:ÉÈ"]
)
def test_name_uuid_is_rfc4122_version3_in_the_pipeline_namespace(name):
    assert rule("name_uuid", name) == uuid.uuid3(NAMESPACE, name)
    assert uuid.uuid3(NAMESPACE, name).version == 3


def test_sale_uuid_encodes_the_file_hash_and_the_line_in_order():
    sha = "0f4e9c13af64db0a453dfd45a6883f5c0e3e2dcaf46535c2dca080c86a6df08b"
    for line in (2, 3, 558_838, 2**48 - 1):
        expected = uuid.UUID(sha[:12] + "8" + sha[12:15] + "8" + sha[15:18] + f"{line:012x}")
        got = rule("sale_uuid", sha, line)
        assert got == expected
        assert got.version == 8 and got.variant == uuid.RFC_4122
    # one file's sales are one range of ids, in line order
    assert rule("sale_uuid", sha, 2) < rule("sale_uuid", sha, 3) < rule("sale_uuid", sha, 10**6)
    assert rule("sale_uuid", "f" * 64, 2) != rule("sale_uuid", sha, 2)
    # the vectorized form gives the same ids
    lines = [2, 3, 558_838, 2**48 - 1]
    column = rules.sale_uuids(sha, np.array(lines)).to_pylist()
    assert [uuid.UUID(hexes) for hexes in column] == [rules.sale_uuid(sha, n) for n in lines]


# --- text ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("  kia   motors\tamerica  inc ", "kia motors america inc"),
        ("3 Series", "3 Series"),
        ("", None),
        ("   ", None),
        ("—", None),
        (" — ", None),
        ("–", None),
        ("-", None),
        ("off-white", "off-white"),
        (None, None),
    ],
)
def test_clean_text_trims_collapses_and_nulls_unknown_markers(raw, clean):
    assert rule("clean_text", raw) == clean


@pytest.mark.parametrize(
    ("raw", "make"),
    [
        ("Kia", "Kia"),
        ("kia", "Kia"),
        ("KIA", "Kia"),
        (" ford  tk ", "Ford"),
        ("ford truck", "Ford"),
        ("Ford", "Ford"),
        ("chev truck", "Chevrolet"),
        ("dodge tk", "Dodge"),
        ("hyundai tk", "Hyundai"),
        ("mazda tk", "Mazda"),
        ("gmc truck", "GMC"),
        ("gmc", "GMC"),
        ("vw", "Volkswagen"),
        ("mercedes", "Mercedes-Benz"),
        ("mercedes-b", "Mercedes-Benz"),
        ("Mercedes-Benz", "Mercedes-Benz"),
        ("landrover", "Land Rover"),
        ("land rover", "Land Rover"),
        ("bmw", "BMW"),
        ("mini", "MINI"),
        ("fiat", "FIAT"),
        ("FIAT", "FIAT"),
        ("hummer", "HUMMER"),
        ("am general", "AM General"),
        ("srt", "SRT"),
        ("ram", "Ram"),
        ("rolls-royce", "Rolls-Royce"),
        ("some new brand", "Some New Brand"),
        ("SOME NEW BRAND", "Some New Brand"),
        ("—", None),
        ("", None),
    ],
)
def test_canonical_make_maps_aliases_and_case_variants_to_one_brand(raw, make):
    assert rule("canonical_make", raw) == make


def test_every_listed_make_alias_maps_to_its_canonical_and_canonicals_are_fixed_points():
    aliases = reference("make_aliases.csv")
    assert len({a["alias"] for a in aliases}) == len(aliases), "an alias is listed twice"
    for row in aliases:
        assert row["alias"] == row["alias"].lower().strip()
        assert rule("canonical_make", row["alias"]) == row["canonical"]
        assert rule("canonical_make", row["alias"].upper()) == row["canonical"]
    for canonical in {row["canonical"] for row in aliases}:
        assert rule("canonical_make", canonical) == canonical


@pytest.mark.parametrize(
    ("raw", "body"),
    [
        ("SUV", "SUV"),
        ("suv", "SUV"),
        ("Sedan", "Sedan"),
        ("sedan", "Sedan"),
        ("crew cab", "Crew Cab"),
        ("Crew Cab", "Crew Cab"),
        ("supercrew", "SuperCrew"),
        ("SuperCab", "SuperCab"),
        ("crewmax cab", "CrewMax Cab"),
        ("g sedan", "G Sedan"),
        ("e-series van", "E-Series Van"),
        ("cts coupe", "CTS Coupe"),
        ("regular-cab", "Regular Cab"),
        ("—", None),
        ("", None),
    ],
)
def test_canonical_body_has_one_spelling_per_style(raw, body):
    assert rule("canonical_body", raw) == body


@pytest.mark.parametrize(
    ("raw", "value"),
    [("automatic", "automatic"), ("Automatic", "automatic"), (" MANUAL ", "manual"),
     ("Off-White", "off-white"), ("—", None), ("", None)],
)  # fmt: skip
def test_canonical_lower_for_transmissions_and_colours(raw, value):
    assert rule("canonical_lower", raw) == value


@pytest.mark.parametrize(
    ("raw", "seller"),
    [
        ("kia motors america  inc", "kia motors america inc"),
        ("kia motors america, inc", "kia motors america inc"),
        ("ford motor credit company,llc", "ford motor credit company llc"),
        ("Hertz Car Sales", "hertz car sales"),
        ('r & r "the car people" auto sales', 'r & r "the car people" auto sales'),
        ("u.s. bank na", "u.s. bank na"),
        ("—", None),
        ("", None),
    ],
)
def test_canonical_seller_one_form_per_seller(raw, seller):
    assert rule("canonical_seller", raw) == seller


@pytest.mark.parametrize(
    ("raw", "label"), [(" 3  Series ", "3 Series"), ("328i SULEV", "328i SULEV"), ("—", None)]
)
def test_canonical_label_keeps_spelling_of_models_and_trims(raw, label):
    assert rule("canonical_label", raw) == label


def test_state_codes_and_the_shipped_reference():
    states = reference("states.csv")
    codes = [row["code"] for row in states]
    assert len(codes) == len(set(codes)) == 65  # 50 states, DC, PR, 13 provinces and territories
    assert {"CA", "FL", "DC", "PR", "ON", "QC", "AB", "NS", "BC", "YT", "NU"} <= set(codes)
    assert rule("state_code", " ca ") == "CA"
    assert rule("state_code", "—") is None
    loaded = rules.states()
    assert loaded == {row["code"]: row["name"] for row in states}
    assert loaded["ON"] == "Ontario" and loaded["PR"] == "Puerto Rico"
    assert "ZZ" not in loaded  # an unknown code: the line is quarantined (state_unknown)


# --- numbers and dates -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "year"),
    [("2015", 2015), (" 1990 ", 1990), ("15", None), ("20x5", None), ("1850", None), ("", None)],
)
def test_parse_model_year(raw, year):
    assert rule("parse_model_year", raw) == year


@pytest.mark.parametrize(
    ("raw", "grade"),
    [
        ("1", 10),
        ("5", 50),
        ("4.5", 45),
        ("3.2", 32),
        ("10", 10),
        ("45", 45),
        ("49", 49),
        ("50", 50),
        ("0", None),
        ("7", None),
        ("51", None),
        ("-3", None),
        ("good", None),
        ("", None),
        ("—", None),
    ],
)
def test_parse_condition_maps_both_scales_onto_10_to_50(raw, grade):
    assert rule("parse_condition", raw) == grade


@pytest.mark.parametrize(
    ("raw", "utc"),
    [
        ("Tue Dec 16 2014 12:30:00 GMT-0800 (PST)", dt.datetime(2014, 12, 16, 20, 30, tzinfo=dt.UTC)),
        ("Tue Jun 16 2015 12:30:00 GMT-0700 (PDT)", dt.datetime(2015, 6, 16, 19, 30, tzinfo=dt.UTC)),
        # the written offset wins over the zone name
        ("Tue Jun 16 2015 12:30:00 GMT-0800 (PDT)", dt.datetime(2015, 6, 16, 20, 30, tzinfo=dt.UTC)),
        ("Thu Jan 15 2015 04:30:00 GMT-0800 (PST)", dt.datetime(2015, 1, 15, 12, 30, tzinfo=dt.UTC)),
        ("Mon Mar 02 2015 23:59:59 GMT+0530", dt.datetime(2015, 3, 2, 18, 29, 59, tzinfo=dt.UTC)),
        ("Sun Feb 29 2015 10:00:00 GMT-0800 (PST)", None),  # no such day
        ("Tue Dec 16 2014 25:30:00 GMT-0800 (PST)", None),
        ("Tue Dxc 16 2014 12:30:00 GMT-0800 (PST)", None),
        ("2014-12-16 12:30:00", None),
        ("14000", None),  # what a shifted line holds in its sale date field
        ("", None),
    ],
)
def test_parse_sale_date_honours_the_written_offset(raw, utc):
    assert rule("parse_sale_date", raw) == utc


def test_parse_sale_date_agrees_with_python_on_every_written_form():
    for zone in ("GMT-0800 (PST)", "GMT-0700 (PDT)"):
        text = f"Fri Jan 09 2015 09:30:00 {zone}"
        expected = dt.datetime.strptime(text[:33], "%a %b %d %Y %H:%M:%S GMT%z")
        assert rule("parse_sale_date", text) == expected


def test_sale_date_plausible():
    assert rule("sale_date_plausible", dt.datetime(2015, 1, 1, tzinfo=dt.UTC)) is True
    assert rule("sale_date_plausible", dt.datetime(1989, 12, 31, tzinfo=dt.UTC)) is False
    assert rule("sale_date_plausible", dt.datetime.now(dt.UTC) + dt.timedelta(days=3)) is False


@pytest.mark.parametrize(
    ("raw", "miles"),
    [("16639", 16639), (" 1 ", 1), ("999999", 999999), ("0", 0), ("-5", None), ("12.5", None), ("abc", None),
     ("1234567890", None), ("", None)],
)  # fmt: skip
def test_parse_miles(raw, miles):
    assert rule("parse_miles", raw) == miles


@pytest.mark.parametrize(
    ("raw", "amount"),
    [("21500", 21500), ("1", 1), ("14250.5", 14250.5), (".5", 0.5), ("0", 0), ("-1", None), ("1e5", None),
     ("$100", None), ("99999999999999", None), ("", None)],
)  # fmt: skip
def test_parse_money(raw, amount):
    assert rule("parse_money", raw) == amount


@pytest.mark.parametrize(
    ("raw", "defect"), [("-5", "negative"), ("-1.5", "negative"), ("abc", "not_a_number")]
)
def test_number_defect_names_why_a_number_is_unreadable(raw, defect):
    assert rule("number_defect", raw) == defect


@pytest.mark.parametrize(
    ("raw", "vin", "valid"),
    [
        ("5xyktca69fg566472", "5XYKTCA69FG566472", True),
        (" wba3c1c51ek116351 ", "WBA3C1C51EK116351", True),
        ("automatic", "AUTOMATIC", False),
        ("5xyktca69fg56647", "5XYKTCA69FG56647", False),
        ("5xyktca69fg5664-2", "5XYKTCA69FG5664-2", False),
        ("", None, False),
    ],
)
def test_vin_is_upper_cased_and_valid_only_as_17_letters_and_digits(raw, vin, valid):
    assert rule("clean_vin", raw) == vin
    assert rule("is_valid_vin", raw) is valid


# --- the shifted Volkswagen lines ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "vin", "shifted"),
    [("3vwd17aj5fm201708", "automatic", True), ("3vwd17aj5fm201708", None, True),
     ("ca", "3vwd17aj5fm201708", False), ("ca", None, False), (None, None, False)],
)  # fmt: skip
def test_is_shifted_when_the_state_field_holds_the_vin(state, vin, shifted):
    assert rule("is_shifted", state, vin) is shifted


def repaired_lines(*lines: str) -> list[dict]:
    """clean.repair on lines loaded as the ingest loads them: a 17-field line with a known split trim
    has its first 16 fields in the 16 columns and its 17th in _extra_field."""
    values = [next(csv.reader([line])) for line in lines]
    extra = [v[16] if is_split_trim(line.encode()) else None for v, line in zip(values, lines, strict=True)]
    raw = pa.table(
        {
            **{
                name: pa.array([v[i] or None for v in values], type=pa.string())
                for i, name in enumerate(HEADER)
            },
            "_extra_field": pa.array(extra, type=pa.string()),
        }
    )
    logical, repaired, codes = clean.repair(raw.to_pandas(types_mapper=pd.ArrowDtype))
    return [
        {name: py(logical[name][i]) for name in HEADER}
        | {
            "repaired": bool(repaired[i]),
            "repair": py(codes[i]),
            "extra_field": extra[i],
            "line_number": i + 2,
        }
        for i in range(len(lines))
    ]


def test_repaired_lines_moves_the_fields_back_rejoins_the_trim_and_forgets_the_date():
    rows = repaired_lines(GOOD, VW_SHIFTED)
    good, shifted = list(rows)
    assert good["repaired"] is False
    assert (good["trim"], good["body"], good["state"], good["saledate"]) == (
        "LX",
        "SUV",
        "ca",
        "Tue Dec 16 2014 12:30:00 GMT-0800 (PST)",
    )
    assert shifted["repaired"] is True
    assert shifted["line_number"] == 3
    assert {k: shifted[k] for k in ("make", "model", "trim", "body", "transmission", "vin", "state")} == {
        "make": "Volkswagen",
        "model": "Jetta",
        "trim": "SE PZEV w/ Connectivity, Navitgation",
        "body": "sedan",
        "transmission": "automatic",
        "vin": "3vwd17aj5fm201708",
        "state": "ca",
    }
    assert {k: shifted[k] for k in ("condition", "odometer", "color", "interior", "seller", "mmr")} == {
        "condition": "46",
        "odometer": "6214",
        "color": "black",
        "interior": "black",
        "seller": "volkswagen credit inc",
        "mmr": "14250",
    }
    assert shifted["sellingprice"] == "14000"
    assert shifted["saledate"] is None
    assert (good["repair"], shifted["repair"]) == (None, "shifted_16_fields")


def test_repaired_lines_puts_a_17_field_line_back_with_its_real_sale_date():
    """The real file's layout: the ingest loaded its first 16 fields in the 16 columns (so it looks
    like the shifted variant) and its 17th, the sale date, in _extra_field."""
    rows = repaired_lines(GOOD, VW_SPLIT_TRIM, VW_SHIFTED)
    good, split, shifted = list(rows)
    assert (good["repaired"], good["repair"], good["extra_field"]) == (False, None, None)
    assert (split["repaired"], split["repair"], split["line_number"]) == (True, "split_trim_17_fields", 3)
    assert {
        k: split[k] for k in ("year", "make", "model", "trim", "body", "transmission", "vin", "state")
    } == {
        "year": "2015",
        "make": "Volkswagen",
        "model": "Jetta",
        "trim": "SE PZEV w/Connectivity, Navitgation",
        "body": "sedan",
        "transmission": None,
        "vin": "3vwd17aj3fm227143",
        "state": "ca",
    }
    assert {k: split[k] for k in ("condition", "odometer", "color", "interior", "seller", "mmr")} == {
        "condition": "4.6",
        "odometer": "9012",
        "color": "white",
        "interior": "black",
        "seller": "volkswagen credit inc",
        "mmr": "13950",
    }
    assert (split["sellingprice"], split["saledate"]) == ("13700", "Tue Jan 27 2015 04:30:00 GMT-0800 (PST)")
    # the 16-field variant beside it keeps its own repair and its unknown sale date
    assert (shifted["repair"], shifted["saledate"], shifted["extra_field"]) == (
        "shifted_16_fields",
        None,
        None,
    )


def test_a_17_field_line_is_shifted_whatever_its_vin():
    """A split-trim line without a VIN leaves the state field blank: _extra_field still marks it."""
    no_vin = VW_SPLIT_TRIM.replace("3vwd17aj3fm227143", "")
    (row,) = repaired_lines(no_vin)
    assert (row["repair"], row["vin"], row["state"], row["condition"]) == (
        "split_trim_17_fields",
        None,
        "ca",
        "4.6",
    )
