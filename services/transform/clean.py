"""One chunk of raw lines through the rules (rules.py): typed sales, quarantined lines, the
dimension rows the sales use, and the measures the publish's quality checks need.

Everything here is columnar (pyarrow arrays, numpy masks). A rule on a text field runs once per
distinct raw value of the chunk (`_Distinct`), and its results are taken back onto the rows by
index; only the quarantined lines (a handful) are visited one by one, to list their reasons.
"""

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from services.transform import rules
from shared.dataset import HEADER

UUID = pa.string()  # 32 hex digits: what PostgreSQL's uuid input reads
MONEY = pa.decimal128(15, 2)
SALE_DATE = pa.timestamp("us", tz="UTC")

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

# The columns of work.sales (= staging.fact_car_sales after transform_run, chunk) with their
# PostgreSQL types (the binary COPY needs them), and those of work.quarantine, in the order the
# COPY statements of sql/chunk.sql list them.
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
    """A column's distinct values (NULL and '' are one value: ''), and each row's index into them."""

    def __init__(self, column: pa.Array):
        encoded = pc.fill_null(column, "").dictionary_encode()
        self.values: list[str] = encoded.dictionary.to_pylist()
        self.indices = encoded.indices

    def map(self, rule: Callable, type_: pa.DataType) -> pa.Array:
        """The rule on each distinct value, taken back onto the rows."""
        return pa.array([rule(v) for v in self.values], type=type_).take(self.indices)

    def lines(self, mask: np.ndarray | None = None) -> np.ndarray:
        """Lines per distinct value (of the rows in `mask`)."""
        indices = self.indices.to_numpy(zero_copy_only=False)
        return np.bincount(indices if mask is None else indices[mask], minlength=len(self.values))


def _np(array: pa.Array) -> np.ndarray:
    return np.asarray(array.to_numpy(zero_copy_only=False))


def _is_null(array: pa.Array) -> np.ndarray:
    return _np(pc.is_null(array))


SHIFTED_16_FIELDS = "shifted_16_fields"
SPLIT_TRIM_17_FIELDS = "split_trim_17_fields"


def repair(raw: pa.Table) -> tuple[dict[str, pa.Array], np.ndarray, pa.Array]:
    """The chunk's lines as logical records, whether each was repaired, and how (a repair code).

    A shifted line gets its fields moved back one place and its trim rejoined (`SE PZEV
    w/Connectivity` + `, ` + `Navitgation`). Its sale date is the 17th field when the line had one
    (raw's `_extra_field`, repair `split_trim_17_fields`: the ingest loaded the real file's
    layout); on the 16-field variant (repair `shifted_16_fields`) it is unknown (a 16-field reader
    dropped it)."""
    fields = {name: raw.column(name).combine_chunks() for name in HEADER}
    extra = raw.column("_extra_field").combine_chunks()
    has_extra = pc.is_valid(extra)
    shifted = pc.or_(has_extra, rules.is_shifted(fields["state"], fields["vin"]))
    logical = dict(fields)
    if pc.any(shifted).as_py():
        # A handful of lines: rejoined one by one (`concat_ws(', ', trim, body)` of the SQL rule).
        picked = pa.array(np.flatnonzero(_np(shifted)), type=pa.int64())
        trims, bodies = fields["trim"].take(picked).to_pylist(), fields["body"].take(picked).to_pylist()
        rejoined = [
            ", ".join(part for part in pair if part is not None) for pair in zip(trims, bodies, strict=True)
        ]
        logical["trim"] = pc.replace_with_mask(fields["trim"], shifted, pa.array(rejoined, type=pa.string()))
        for name, source in _SHIFTED_FROM.items():
            logical[name] = pc.if_else(shifted, fields[source], fields[name])
        logical["saledate"] = pc.if_else(shifted, extra, fields["saledate"])
    code = pc.if_else(
        has_extra,
        pa.scalar(SPLIT_TRIM_17_FIELDS),
        pc.if_else(shifted, pa.scalar(SHIFTED_16_FIELDS), pa.scalar(None, pa.string())),
    )
    return logical, _np(shifted), code


def clean_chunk(raw: pa.Table, lineage: Lineage, now: dt.datetime | None = None) -> Cleaned:
    """Clean one chunk: `raw` has _line_number and the 16 raw fields (strings, NULL for a blank)."""
    now = now or dt.datetime.now(dt.UTC)
    rows = raw.num_rows
    f, repaired, repair_code = repair(raw)
    shifted_16 = _np(pc.fill_null(pc.equal(repair_code, SHIFTED_16_FIELDS), False))
    out: dict[str, pa.Array] = {}
    reasons: list[pa.Array] = []  # one array of reason codes (or null) per check, in report order

    def reason(codes: pa.Array) -> None:
        reasons.append(codes)

    # Model year.
    year = _Distinct(f["year"])
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
    blank_vin = pc.equal(pc.fill_null(pc.utf8_trim(f["vin"], " "), ""), "")
    reason(
        pc.if_else(
            rules.is_valid_vin(f["vin"]),
            pa.scalar(None, pa.string()),
            pc.if_else(blank_vin, pa.scalar("vin_missing"), pa.scalar("vin_invalid")),
        )
    )

    # Dimensions: the natural key of each raw value, its name-based id.
    dimension_rows: list[tuple[str, str, str, str | None]] = []
    dim_keys: list[tuple[Dimension, _Distinct, list, list]] = []
    for dim in DIMENSIONS:
        for column, source in dim.keys.items():
            values = _Distinct(f[source])
            names = [dim.rule(v) for v in values.values]
            ids = [None if n is None else rules.name_uuid_hex(f"{dim.kind}:{n}") for n in names]
            out[column] = pa.array(ids, type=UUID).take(values.indices)
            dim_keys.append((dim, values, names, ids))
            if column == "make_id":
                make, make_names = values, names
    state = _Distinct(f["state"])
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
    out["model"] = _Distinct(f["model"]).map(rules.canonical_label, pa.string())
    out["trim"] = _Distinct(f["trim"]).map(rules.canonical_label, pa.string())
    body = _Distinct(f["body"])
    body_names = [rules.canonical_body(v) for v in body.values]
    out["body"] = pa.array(body_names, type=pa.string()).take(body.indices)

    # Condition.
    condition = _Distinct(f["condition"])
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
    present = pc.not_equal(pc.utf8_trim(f["odometer"], " "), "")
    unreadable = _np(pc.fill_null(pc.and_(present, pc.is_null(out["odometer"])), False))
    odometer_codes = pa.nulls(rows, pa.string())
    if unreadable.any():
        values = f["odometer"].filter(pa.array(unreadable)).to_pylist()
        codes = pa.array(["odometer_" + rules.number_defect(v) for v in values], type=pa.string())
        odometer_codes = pc.replace_with_mask(odometer_codes, pa.array(unreadable), codes)
    reason(odometer_codes)

    # Prices.
    for column, source, code in (("mmr", "mmr", "mmr"), ("selling_price", "sellingprice", "selling_price")):
        money = _Distinct(f[source])
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
    reason(
        pc.if_else(pc.is_null(out["seller_id"]), pa.scalar("seller_missing"), pa.scalar(None, pa.string()))
    )

    # Sale date.
    sale_date = _Distinct(f["saledate"])
    parsed = [rules.parse_sale_date(v) for v in sale_date.values]
    out["sale_date"] = pa.array(parsed, type=SALE_DATE).take(sale_date.indices)
    date_codes = pa.array(
        [
            ("sale_date_unparseable" if rules.clean_text(v) is not None else "sale_date_missing")
            if d is None
            else (None if rules.sale_date_plausible(d, now) else "sale_date_out_of_range")
            for v, d in zip(sale_date.values, parsed, strict=True)
        ],
        type=pa.string(),
    ).take(sale_date.indices)
    # Only the 16-field variant may lack its sale date: a 16-field reader dropped it.
    unknown_date = pc.and_(pc.equal(date_codes, "sale_date_missing"), pa.array(shifted_16))
    reason(pc.if_else(unknown_date, pa.scalar(None, pa.string()), date_codes))

    # Keys and lineage.
    lines = raw.column("_line_number").combine_chunks()
    out["sale_id"] = rules.sale_uuids(lineage.source_sha256, _np(lines))
    out["repaired"] = pa.array(repaired)
    out["repair"] = repair_code
    out["run_id"] = pa.repeat(pa.scalar(uuid.UUID(lineage.run_id).hex, UUID), rows)
    out["source_sha256"] = pa.repeat(pa.scalar(lineage.source_sha256, pa.string()), rows)
    out["line_number"] = lines

    untrusted = np.zeros(rows, dtype=bool)
    for codes in reasons:
        untrusted |= ~_is_null(codes)
    trusted = ~untrusted

    sales = pa.table({name: out[name] for name in SALES_COLUMNS}).filter(pa.array(trusted))

    # Quarantined lines: their raw values as loaded, lineage and every reason.
    bad = np.flatnonzero(untrusted)
    reason_lists = [[] for _ in bad]
    reason_counts: dict[str, int] = {}
    for codes in reasons:
        taken = codes.take(pa.array(bad, type=pa.int64())).to_pylist()
        for found, code in zip(reason_lists, taken, strict=True):
            if code is not None:
                found.append(code)
                reason_counts[code] = reason_counts.get(code, 0) + 1
    picked = pa.array(bad, type=pa.int64())
    quarantine = pa.table(
        {
            "sale_id": out["sale_id"].take(picked),
            "source_sha256": out["source_sha256"].take(picked),
            "line_number": lines.take(picked),
            "run_id": out["run_id"].take(picked),
            "batch_id": pa.repeat(pa.scalar(lineage.batch_id, pa.int64()), len(bad)),
            "source_file": pa.repeat(pa.scalar(lineage.source_file, pa.string()), len(bad)),
            **{name: raw.column(name).combine_chunks().take(picked) for name in HEADER},
            "extra_field": raw.column("_extra_field").combine_chunks().take(picked),
            "repaired": out["repaired"].take(picked),
            "repair": repair_code.take(picked),
            "reasons": pa.array(["{" + ",".join(r) + "}" for r in reason_lists], type=pa.string()),
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
    dimensions = pa.table(
        {
            key: pa.array([row[i] for row in dimension_rows], type=pa.string())
            for i, key in enumerate(("dimension", "id", "name", "detail"))
        }
    )

    return Cleaned(
        sales=sales,
        quarantine=quarantine,
        dimension_rows=dimensions,
        metrics=_metrics(sales, rows, repaired, shifted_16, _np(pc.is_valid(repair_code)) & ~shifted_16, now),
        fixed=_fixed(make, make_names, body, body_names, dim_keys, condition),
        reasons=reason_counts,
    )


def _metrics(
    sales: pa.Table, lines: int, repaired: np.ndarray, shifted_16: np.ndarray, split_trim: np.ndarray, now
) -> dict:
    """What the publish's quality checks measure, for this chunk (they add up over the chunks)."""
    from services.transform import checks

    def count(mask) -> int:
        return int(pc.sum(pc.cast(pc.fill_null(mask, False), pa.int64())).as_py() or 0)

    null = {name: pc.is_null(sales.column(name)) for name in sales.column_names}
    sale_date = sales.column("sale_date")
    required = ("vin", "state_id", "seller_id", "mmr", "selling_price", "model_year")
    required_null = pc.is_null(sales.column("vin"))
    for name in required[1:]:
        required_null = pc.or_(required_null, null[name])
    not_16_fields = pc.invert(pc.fill_null(pc.equal(sales.column("repair"), SHIFTED_16_FIELDS), False))
    required_null = pc.or_(required_null, pc.and_(null["sale_date"], not_16_fields))
    earliest = pa.scalar(rules.EARLIEST_SALE, SALE_DATE)
    latest = pa.scalar(now + dt.timedelta(days=1), SALE_DATE)
    out_of_range = pc.or_(pc.less(sale_date, earliest), pc.greater_equal(sale_date, latest))
    low = pa.scalar(checks.SUSPICIOUS_PRICE, MONEY)
    first, last = pc.min_max(sale_date).values()
    metrics = {
        "lines": lines,
        "trusted": sales.num_rows,
        "quarantined": lines - sales.num_rows,
        "repaired": int(repaired.sum()),
        "repaired_split_trim": int(split_trim.sum()),
        "required_null": count(required_null),
        "sale_date_out_of_range": count(out_of_range),
        "first_sale_date": first.as_py(),
        "last_sale_date": last.as_py(),
        "suspicious_prices": count(
            pc.or_(pc.less(sales.column("selling_price"), low), pc.less(sales.column("mmr"), low))
        ),
        "suspicious_odometers": count(
            pc.or_(
                pc.less_equal(sales.column("odometer"), checks.SUSPICIOUS_ODOMETER_LOW),
                pc.greater_equal(sales.column("odometer"), checks.SUSPICIOUS_ODOMETER_HIGH),
            )
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
