"""One chunk of raw lines through the rules (rules.py): typed sales, quarantined lines, the
dimension rows the sales use, and the measures the publish's quality checks need.

The chunk is a pandas DataFrame of Arrow-backed columns (pd.ArrowDtype: the raw strings stay in
Arrow buffers, as read). A rule on a text field runs once per distinct raw value of the chunk
(`_Distinct`: pd.factorize), and its results are taken back onto the rows by their codes; the
per-row rules use pandas' `.str` methods; only the quarantined lines (a handful) are visited one
by one, to list their reasons. The results go back to pyarrow tables at the end, for the COPY
writers (pgbinary.py, CSV).
"""

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np
import pandas as pd
import pyarrow as pa

from services.transform import rules
from shared.dataset import HEADER

UUID = pa.string()  # 32 hex digits: what PostgreSQL's uuid input reads
MONEY = pa.decimal128(15, 2)
SALE_DATE = pa.timestamp("us", tz="UTC")
TEXT = pd.ArrowDtype(pa.string())

# A shifted line's fields from `body` on sit one place right: each logical field is read from the
# raw field after it (its trim is the raw trim and body, rejoined).
_SHIFTED_FROM = dict(zip(HEADER[HEADER.index("body") :], HEADER[HEADER.index("body") + 1 :], strict=False))


@dataclass(frozen=True)
class Dimension:
    """A dimension of the fact table: the staging table, the kind its ids are named by
    (`make:Ford`), the fact columns holding its id with the logical field each comes from, the rule
    giving the natural key of a raw value, and an optional second attribute of a key (a state's
    name). Adding a dimension = one entry here, plus its model file sql/models/<table>.sql."""

    table: str
    kind: str
    keys: dict[str, str]
    rule: Callable[[str | None], str | None]
    detail: Callable[[str], str | None] | None = None


def known_state(value: str | None) -> str | None:
    """The state code when it is a known one (reference/states.csv): unknown codes get no id."""
    code = rules.state_code(value)
    return code if code in rules.states() else None


DIMENSIONS = (
    Dimension("dim_make", "make", {"make_id": "make"}, rules.canonical_make),
    Dimension("dim_transmission", "transmission", {"transmission_id": "transmission"}, rules.canonical_lower),
    Dimension(
        "dim_state", "state", {"state_id": "state"}, known_state, detail=lambda code: rules.states()[code]
    ),
    Dimension(
        "dim_color",
        "color",
        {"exterior_color_id": "color", "interior_color_id": "interior"},
        rules.canonical_lower,
    ),
    Dimension("dim_seller", "seller", {"seller_id": "seller"}, rules.canonical_seller),
)

# The columns of a run's sales tables (staging.fact_car_sales's, in its order) with their
# PostgreSQL types (work.py's binary COPY is made from them), and those of work.quarantine, in the
# order the COPY of sql/chunk.sql lists them.
SALES_COLUMNS = {
    "sale_id": "uuid", "make_id": "uuid", "model": "text", "trim": "text", "body": "text",
    "transmission_id": "uuid", "vin": "text", "state_id": "uuid", "condition": "int2", "odometer": "int4",
    "exterior_color_id": "uuid", "interior_color_id": "uuid", "mmr": "numeric", "selling_price": "numeric",
    "sale_date": "timestamptz", "seller_id": "uuid", "model_year": "int2", "repaired": "bool",
    "run_id": "uuid", "source_sha256": "text", "line_number": "int8", "repair": "text",
}  # fmt: skip
QUARANTINE_COLUMNS = (
    "sale_id", "source_sha256", "line_number", "run_id", "batch_id", "source_file", *HEADER, "extra_field",
    "repaired", "repair", "reasons",
)  # fmt: skip
MISSING = {  # missing_<field> measure: the column a trusted sale keeps NULL
    "make": "make_id", "model": "model", "trim": "trim", "body": "body", "transmission": "transmission_id",
    "exterior_color": "exterior_color_id", "interior_color": "interior_color_id", "condition": "condition",
    "odometer": "odometer", "sale_date": "sale_date",
}  # fmt: skip


@dataclass(frozen=True)
class Lineage:
    """What every line of a chunk shares: its batch."""

    batch_id: int
    run_id: str
    source_file: str
    source_sha256: str


@dataclass
class Cleaned:
    sales: pa.Table
    quarantine: pa.Table
    dimension_rows: pa.Table
    metrics: dict = field(default_factory=dict)
    fixed: dict = field(default_factory=dict)
    reasons: dict = field(default_factory=dict)


class _Distinct:
    """A column's distinct values (NULL and '' are one value: ''), and each row's code into them."""

    def __init__(self, column: pd.Series):
        self.codes, uniques = pd.factorize(column.fillna(""))
        self.values: list[str] = uniques.to_numpy().tolist()

    def take(self, per_value: list, type_: pa.DataType) -> pd.Series:
        """One result per distinct value, taken back onto the rows."""
        return pd.Series(pd.array(per_value, dtype=pd.ArrowDtype(type_)).take(self.codes))

    def map(self, rule: Callable, type_: pa.DataType) -> pd.Series:
        """The rule on each distinct value, taken back onto the rows."""
        return self.take([rule(v) for v in self.values], type_)

    def lines(self, mask: np.ndarray | None = None) -> np.ndarray:
        """Lines per distinct value (of the rows in `mask`)."""
        return np.bincount(self.codes if mask is None else self.codes[mask], minlength=len(self.values))


def _text(rows: int, value: str | None) -> pd.Series:
    """One value on every row."""
    return pd.Series(value, index=pd.RangeIndex(rows), dtype=TEXT)


def _codes(*cases: tuple[pd.Series, str | None]) -> pd.Series:
    """A code per row: that of the first case whose condition holds, else NULL (taken from the
    few codes by index, like a rule's results)."""
    first = np.select([_mask(condition) for condition, _ in cases], range(len(cases)), default=len(cases))
    return pd.Series(pd.array([code for _, code in cases] + [None], dtype=TEXT).take(first))


def _mask(condition: pd.Series) -> np.ndarray:
    """A condition (NULL = false) as a numpy mask."""
    return condition.fillna(False).to_numpy(dtype=bool)


SHIFTED_16_FIELDS = "shifted_16_fields"
SPLIT_TRIM_17_FIELDS = "split_trim_17_fields"


def repair(raw: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray, pd.Series]:
    """The chunk's lines as logical records, whether each was repaired, and how (a repair code).

    A shifted line gets its fields moved back one place and its trim rejoined (`SE PZEV
    w/Connectivity` + `, ` + `Navitgation`). Its sale date is the 17th field when the line had one
    (raw's `_extra_field`, repair `split_trim_17_fields`: the ingest loaded the real file's
    layout); on the 16-field variant (repair `shifted_16_fields`) it is unknown (a 16-field reader
    dropped it)."""
    fields = raw[list(HEADER)]
    has_extra = raw["_extra_field"].notna()
    shifted = (has_extra | rules.is_shifted(fields["state"], fields["vin"])).to_numpy(dtype=bool)
    logical = fields.copy()
    if shifted.any():
        # A handful of lines: rejoined one by one (`concat_ws(', ', trim, body)` of the SQL rule).
        pairs = fields.loc[shifted, ["trim", "body"]]
        rejoined = [
            ", ".join(part for part in pair if not pd.isna(part)) for pair in pairs.itertuples(index=False)
        ]
        logical["trim"] = fields["trim"].mask(shifted, pd.Series(rejoined, index=pairs.index, dtype=TEXT))
        for name, source in _SHIFTED_FROM.items():
            logical[name] = fields[name].mask(shifted, fields[source])
        logical["saledate"] = fields["saledate"].mask(shifted, raw["_extra_field"])
    code = _codes((has_extra, SPLIT_TRIM_17_FIELDS), (pd.Series(shifted), SHIFTED_16_FIELDS))
    return logical, shifted, code


def clean_chunk(raw: pa.Table, lineage: Lineage, now: dt.datetime | None = None) -> Cleaned:
    """Clean one chunk: `raw` has _line_number and the 16 raw fields (strings, NULL for a blank)."""
    now = now or dt.datetime.now(dt.UTC)
    frame = raw.to_pandas(types_mapper=pd.ArrowDtype)  # Arrow-backed columns: the buffers as read
    rows = len(frame)
    f, repaired, repair_code = repair(frame)
    shifted_16 = _mask(repair_code == SHIFTED_16_FIELDS)
    out: dict[str, pd.Series] = {}
    reasons: list[pd.Series] = []  # one column of reason codes (or NULL) per check, in report order

    def reason(codes: pd.Series) -> None:
        reasons.append(codes)

    # Every field a rule reads once per distinct value (all but the VIN and the odometer: nearly
    # every one of their values is distinct), factorized once.
    distinct = {name: _Distinct(f[name]) for name in HEADER if name not in ("vin", "odometer")}

    # Model year.
    year = distinct["year"]
    out["model_year"] = year.map(rules.parse_model_year, pa.int16())
    reason(
        year.map(
            lambda v: (
                None
                if rules.parse_model_year(v) is not None
                else ("year_invalid" if rules.clean_text(v) is not None else "year_missing")
            ),
            pa.string(),
        )
    )

    # VIN (per row: nearly every value is distinct).
    out["vin"] = rules.clean_vin(f["vin"])
    blank_vin = f["vin"].str.strip(" ").fillna("") == ""
    valid_vin = rules.is_valid_vin(f["vin"])
    reason(_codes((valid_vin, None), (blank_vin, "vin_missing"), (~valid_vin, "vin_invalid")))

    # Dimensions: the natural key of each raw value, its name-based id.
    dimension_rows: list[tuple[str, str, str, str | None]] = []
    dim_keys: list[tuple[Dimension, _Distinct, list, list]] = []
    for dim in DIMENSIONS:
        for column, source in dim.keys.items():
            values = distinct[source]
            names = [dim.rule(v) for v in values.values]
            ids = [None if n is None else rules.name_uuid_hex(f"{dim.kind}:{n}") for n in names]
            out[column] = values.take(ids, UUID)
            dim_keys.append((dim, values, names, ids))
            if column == "make_id":
                make, make_names = values, names
    state = distinct["state"]
    reason(
        state.map(
            lambda v: (
                None
                if known_state(v)
                else ("state_missing" if rules.state_code(v) is None else "state_unknown")
            ),
            pa.string(),
        )
    )

    # Labels.
    out["model"] = distinct["model"].map(rules.canonical_label, pa.string())
    out["trim"] = distinct["trim"].map(rules.canonical_label, pa.string())
    body = distinct["body"]
    body_names = [rules.canonical_body(v) for v in body.values]
    out["body"] = body.take(body_names, pa.string())

    # Condition.
    condition = distinct["condition"]
    out["condition"] = condition.map(rules.parse_condition, pa.int16())
    reason(
        condition.map(
            lambda v: (
                "condition_invalid"
                if rules.parse_condition(v) is None and rules.clean_text(v) is not None
                else None
            ),
            pa.string(),
        )
    )

    # Odometer (per row: nearly every value is distinct); the reason only for the few unreadable.
    out["odometer"] = rules.parse_miles_column(f["odometer"])
    present = f["odometer"].str.strip(" ") != ""
    unreadable = _mask(present & out["odometer"].isna())
    odometer_codes = _text(rows, None)
    if unreadable.any():
        odometer_codes[unreadable] = ["odometer_" + rules.number_defect(v) for v in f["odometer"][unreadable]]
    reason(odometer_codes)

    # Prices.
    for column, source, code in (("mmr", "mmr", "mmr"), ("selling_price", "sellingprice", "selling_price")):
        money = distinct[source]
        out[column] = money.map(rules.parse_money, MONEY)
        reason(
            money.map(
                lambda v, code=code: (
                    None
                    if rules.parse_money(v) is not None
                    else (
                        f"{code}_{rules.number_defect(v)}"
                        if rules.clean_text(v) is not None
                        else f"{code}_missing"
                    )
                ),
                pa.string(),
            )
        )

    # Seller: its reason (the seller dimension's id is computed above).
    reason(_codes((out["seller_id"].isna(), "seller_missing")))

    # Sale date.
    sale_date = distinct["saledate"]
    parsed = [rules.parse_sale_date(v) for v in sale_date.values]
    out["sale_date"] = sale_date.take(parsed, SALE_DATE)
    date_codes = sale_date.take(
        [
            ("sale_date_unparseable" if rules.clean_text(v) is not None else "sale_date_missing")
            if d is None
            else (None if rules.sale_date_plausible(d, now) else "sale_date_out_of_range")
            for v, d in zip(sale_date.values, parsed, strict=True)
        ],
        pa.string(),
    )
    # Only the 16-field variant may lack its sale date: a 16-field reader dropped it.
    unknown_date = _mask(date_codes == "sale_date_missing") & shifted_16
    reason(date_codes.mask(unknown_date))

    # Keys and lineage.
    lines = frame["_line_number"]
    out["sale_id"] = pd.Series(
        pd.arrays.ArrowExtensionArray(rules.sale_uuids(lineage.source_sha256, lines.to_numpy(np.int64)))
    )
    out["repaired"] = pd.Series(repaired, dtype=pd.ArrowDtype(pa.bool_()))
    out["repair"] = repair_code
    out["run_id"] = _text(rows, uuid.UUID(lineage.run_id).hex)
    out["source_sha256"] = _text(rows, lineage.source_sha256)
    out["line_number"] = lines

    checked = pd.concat(reasons, axis=1, ignore_index=True)
    untrusted = checked.notna().any(axis=1).to_numpy(dtype=bool)
    trusted = ~untrusted

    sales = pd.DataFrame({name: out[name] for name in SALES_COLUMNS})[trusted]

    # Quarantined lines: their raw values as loaded, lineage and every reason.
    bad = checked[untrusted]
    reason_lists = [[code for code in codes if not pd.isna(code)] for codes in bad.itertuples(index=False)]
    reason_counts: dict[str, int] = {}
    for codes in bad.items():
        for code in codes[1].dropna():
            reason_counts[code] = reason_counts.get(code, 0) + 1
    quarantine = pd.DataFrame(
        {
            "sale_id": out["sale_id"][untrusted],
            "source_sha256": out["source_sha256"][untrusted],
            "line_number": lines[untrusted],
            "run_id": out["run_id"][untrusted],
            "batch_id": pd.Series(lineage.batch_id, index=bad.index, dtype=pd.ArrowDtype(pa.int64())),
            "source_file": pd.Series(lineage.source_file, index=bad.index, dtype=TEXT),
            **{name: frame[name][untrusted] for name in HEADER},
            "extra_field": frame["_extra_field"][untrusted],
            "repaired": out["repaired"][untrusted],
            "repair": repair_code[untrusted],
            "reasons": pd.Series(
                ["{" + ",".join(r) + "}" for r in reason_lists], index=bad.index, dtype=TEXT
            ),
        }
    )

    # The dimension rows the trusted lines use (a value seen only on quarantined lines is none).
    seen: set[tuple[str, str]] = set()
    for dim, values, names, ids in dim_keys:
        for index in np.flatnonzero(values.lines(trusted)):
            name = names[index]
            if name is not None and (dim.table, name) not in seen:
                seen.add((dim.table, name))
                detail = dim.detail(name) if dim.detail else None
                dimension_rows.append((dim.table, ids[index], name, detail))
    dimensions = pd.DataFrame(dimension_rows, columns=["dimension", "id", "name", "detail"], dtype=TEXT)

    return Cleaned(
        sales=_arrow(sales),
        quarantine=_arrow(quarantine),
        dimension_rows=_arrow(dimensions),
        metrics=_metrics(sales, rows, repaired, shifted_16, _mask(repair_code.notna()) & ~shifted_16, now),
        fixed=_fixed(make, make_names, body, body_names, dim_keys, condition),
        reasons=reason_counts,
    )


def _arrow(frame: pd.DataFrame) -> pa.Table:
    """A cleaned frame as the pyarrow table the COPY writers read (its Arrow columns, no copy)."""
    return pa.Table.from_pandas(frame, preserve_index=False).replace_schema_metadata()


def _metrics(
    sales: pd.DataFrame, lines: int, repaired: np.ndarray, shifted_16: np.ndarray, split_trim: np.ndarray, now
) -> dict:
    """What the publish's quality checks measure, for this chunk (they add up over the chunks)."""
    from services.transform import checks

    def count(mask: pd.Series) -> int:
        return int(_mask(mask).sum())

    null = sales.isna()
    sale_date = sales["sale_date"]
    required = ["vin", "state_id", "seller_id", "mmr", "selling_price", "model_year"]
    not_16_fields = ~_mask(sales["repair"] == SHIFTED_16_FIELDS)
    required_null = null[required].any(axis=1) | (null["sale_date"] & not_16_fields)
    out_of_range = (sale_date < rules.EARLIEST_SALE) | (sale_date >= now + dt.timedelta(days=1))
    low = Decimal(checks.SUSPICIOUS_PRICE)
    dates = sale_date.dropna()
    metrics = {
        "lines": lines,
        "trusted": len(sales),
        "quarantined": lines - len(sales),
        "repaired": int(repaired.sum()),
        "repaired_split_trim": int(split_trim.sum()),
        "required_null": count(required_null),
        "sale_date_out_of_range": count(out_of_range),
        "first_sale_date": dates.min().to_pydatetime() if len(dates) else None,
        "last_sale_date": dates.max().to_pydatetime() if len(dates) else None,
        "suspicious_prices": count((sales["selling_price"] < low) | (sales["mmr"] < low)),
        "suspicious_odometers": count(
            (sales["odometer"] <= checks.SUSPICIOUS_ODOMETER_LOW)
            | (sales["odometer"] >= checks.SUSPICIOUS_ODOMETER_HIGH)
        ),
    }
    for name, column in MISSING.items():
        metrics[f"missing_{name}"] = count(null[column])
    return metrics


def _fixed(make, make_names, body, body_names, dim_keys, condition) -> dict:
    """Recoverable defects the rules fixed, in lines (reported in the stage's details)."""

    def respelled(values: _Distinct, names: list) -> int:
        lines = values.lines()
        return int(sum(n for v, name, n in zip(values.values, names, lines, strict=True) if v and name != v))

    colours = [(values, names) for dim, values, names, _ in dim_keys if dim.table == "dim_color"]
    seller = next((values, names) for dim, values, names, _ in dim_keys if dim.table == "dim_seller")
    unknown = sum(
        int(
            sum(
                n
                for v, name, n in zip(values.values, names, values.lines(), strict=True)
                if v and name is None
            )
        )
        for values, names in colours
    )
    rescaled = int(
        sum(
            n for v, n in zip(condition.values, condition.lines(), strict=True) if rules.condition_rescaled(v)
        )
    )
    return {
        "make_respelled": respelled(make, make_names),
        "body_respelled": respelled(body, body_names),
        "unknown_colors_nulled": unknown,
        "seller_respelled": respelled(*seller),
        "condition_rescaled": rescaled,
    }
