"""The transform stage end to end: raw batches in, the star schema in `staging` out, exact counts.

Raw rows are loaded here the way the ingest stage loads them (one batch per file, COPY with line
numbers, lineage from transaction-local settings), so these tests do not depend on the ingest
stage; the last test runs the whole chain through real workers.
"""

import csv
import datetime as dt
import hashlib
import io
import json
import random
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa

from services.ingest import partition
from services.ingest.reader import is_split_trim
from services.transform import checks, job, rules, work
from shared import ledger
from shared.dataset import HEADER, HEADER_LINE
from tests.conftest import GOOD, ROOT, VW_SHIFTED, run_cli

SAMPLE = ROOT / "data" / "sample.csv"
NAMESPACE = uuid.UUID("63520289-7aa7-5e3f-8290-f3a19dd5925c")  # the pipeline's, for name-based ids
DIMENSIONS = ("dim_make", "dim_transmission", "dim_state", "dim_color", "dim_seller")
DIMENSION_ROWS = {
    "dim_make": sa.text("SELECT * FROM staging.dim_make"),
    "dim_transmission": sa.text("SELECT * FROM staging.dim_transmission"),
    "dim_state": sa.text("SELECT * FROM staging.dim_state"),
    "dim_color": sa.text("SELECT * FROM staging.dim_color"),
    "dim_seller": sa.text("SELECT * FROM staging.dim_seller"),
}


# --- helpers ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Batch:
    batch_id: int
    run_id: str
    sha256: str
    lines: int


def load_raw(conn, source, run_id: str | None = None, source_file: str = "test.csv") -> Batch:
    """Load CSV data lines (a list of lines, or a file with its header) into raw.car_prices as one
    batch of `run_id`, as the ingest stage does (17-field split-trim lines by a second COPY). Every
    record must be one physical line."""
    if isinstance(source, str | Path):
        text = Path(source).read_text(encoding="utf-8")
        header, _, body = text.partition("\n")
        assert header == HEADER_LINE
        lines = body.splitlines()
    else:
        lines = list(source)
        text = HEADER_LINE + "\n" + "\n".join(lines) + "\n"
    sha = hashlib.sha256(text.encode()).hexdigest()
    run_id = run_id or str(uuid.uuid4())
    batch_id = conn.execute(
        sa.text(
            "INSERT INTO meta.ingested_files (run_id, source_file, source_path, sha256, size_bytes, records, "
            "rows_loaded, rows_rejected) VALUES (:r, :f, :p, :s, :n, :c, :c, 0) RETURNING batch_id"
        ),
        {
            "r": run_id,
            "f": source_file,
            "p": f"/data/{source_file}",
            "s": sha,
            "n": len(text),
            "c": len(lines),
        },
    ).scalar()
    cur = conn.connection.dbapi_connection.cursor()
    table = partition.create(cur, batch_id)
    numbered = [f"{number},{line}\n" for number, line in enumerate(lines, start=2)]
    split_trim = [is_split_trim(line.encode()) for line in lines]
    feed = io.StringIO("".join(n for n, split in zip(numbered, split_trim, strict=True) if not split))
    cur.copy_expert(partition.copy_statement(table), feed)
    feed = io.StringIO("".join(n for n, split in zip(numbered, split_trim, strict=True) if split))
    cur.copy_expert(partition.copy_split_trim_statement(table), feed)
    partition.attach(cur, batch_id)
    return Batch(batch_id, run_id, sha, len(lines))


def ingest(engine, source, run_id: str | None = None, source_file: str = "test.csv") -> Batch:
    with engine.begin() as conn:
        return load_raw(conn, source, run_id, source_file)


def transform(engine, run_id: str, rebuild: bool = False) -> dict:
    """Record the run's transform job in the ledger, then run its jobs inline (as workers would):
    the plan, each chunk, the publish; returns the publish's result."""
    with engine.begin() as conn:
        ledger.create_run(
            conn,
            run_id,
            [],
            [ledger.PlannedJob("transform", "", f"test-{run_id}")],
            kind="rebuild" if rebuild else "run",
        )
    return run_jobs(engine, run_id, rebuild)


def run_jobs(engine, run_id: str, rebuild: bool = False) -> dict:
    """The run's transform jobs, inline: the plan, then every chunk and the publish it recorded."""
    planned = (job.rebuild_staging if rebuild else job.transform_run)(run_id=run_id)
    assert "skipped" not in planned and "cancelled" not in planned, planned
    with engine.connect() as conn:
        tasks = ledger.get_status(conn, run_id)["stages"]
    for task in [s["task"] for s in tasks if s["stage"] == "transform" and s["task"].startswith("chunk ")]:
        job.transform_chunk(run_id=run_id, task=task)
    return job.publish_run(run_id=run_id, task="publish")


def transform_again(engine, run_id: str) -> dict:
    """Transform the same run's batches once more: the run failed after all and was retried (a
    stage that succeeded is never run twice within a run)."""
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE meta.stage_runs SET status = 'failed' WHERE run_id = :r"), {"r": run_id})
        conn.execute(
            sa.text("UPDATE meta.pipeline_runs SET status = 'failed' WHERE run_id = :r"), {"r": run_id}
        )
        assert ledger.requeue_run(conn, run_id, [ledger.PlannedJob("transform", "", f"again-{run_id}")])
    return run_jobs(engine, run_id)


def stage_of(engine, run_id: str) -> dict:
    with engine.connect() as conn:
        status = ledger.get_status(conn, run_id)
    return next(s for s in status["stages"] if s["stage"] == "transform" and s["task"] == "publish")


def quality(engine, run_id: str) -> dict[str, dict]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT * FROM meta.quality_results WHERE run_id = :r"), {"r": run_id}
        ).mappings()
        return {row["check_name"]: dict(row) for row in rows}


def scalar(engine, sql: str, **params):
    with engine.connect() as conn:
        return conn.execute(sa.text(sql), params).scalar()


def snapshot(engine) -> dict:
    """Everything published in staging (but the quarantine's timestamps), for comparisons."""
    with engine.connect() as conn:
        snap = {
            table: sorted(tuple(row) for row in conn.execute(query))
            for table, query in DIMENSION_ROWS.items()
        }
        snap["fact_car_sales"] = conn.execute(
            sa.text(
                "SELECT count(*), md5(string_agg(f::text, '|' ORDER BY sale_id)) "
                "FROM staging.fact_car_sales f"
            )
        ).one()
        snap["quarantined_sales"] = conn.execute(
            sa.text(
                "SELECT count(*), md5(string_agg((q.source_sha256, q.line_number, q.run_id, q.batch_id, "
                "q.reasons, q.vin, q.saledate)::text, '|' ORDER BY source_sha256, line_number)) "
                "FROM staging.quarantined_sales q"
            )
        ).one()
    return snap


def records(path: Path) -> list[dict]:
    """The file's records as the transform reads them: a 17-field line with its trim rejoined, a
    shifted 16-field line with its fields moved back (and no sale date)."""
    out = []
    trim = HEADER.index("trim")
    with path.open(encoding="utf-8", newline="") as f:
        for number, values in enumerate(csv.reader(f), start=1):
            if number == 1:
                continue
            if len(values) == len(HEADER) + 1:
                logical = [*values[:trim], f"{values[trim]}, {values[trim + 1]}", *values[trim + 2 :]]
                out.append(dict(zip(HEADER, logical, strict=True)) | {"shifted": True, "line_number": number})
                continue
            row = dict(zip(HEADER, values, strict=True))
            if len(row["state"]) == 17:
                fields = list(values)
                logical = [*fields[:trim], f"{fields[trim]}, {fields[trim + 1]}", *fields[trim + 2 :], ""]
                row = dict(zip(HEADER, logical, strict=True)) | {"shifted": True, "undated": True}
            out.append(row | {"line_number": number})
    return out


def untrusted(counts: dict) -> int:
    """Lines of a generated file that are quarantined: each lacks a VIN, a market estimate, or its
    price and sale date (the generator plants them on different lines)."""
    return counts["vin_blank"] + counts["mmr_blank"] + counts["sellingprice_blank"]


def assert_clean_dimensions(engine, makes: set[str] | None = None):
    """No `—` or blank, no case or alias duplicate, every id the name-based uuid of its name."""
    with engine.connect() as conn:
        names = {
            "make": conn.execute(sa.text("SELECT make_name FROM staging.dim_make")).scalars().all(),
            "transmission": conn.execute(sa.text("SELECT transmission_type FROM staging.dim_transmission"))
            .scalars()
            .all(),
            "color": conn.execute(sa.text("SELECT color_name FROM staging.dim_color")).scalars().all(),
            "seller": conn.execute(sa.text("SELECT seller_name FROM staging.dim_seller")).scalars().all(),
            "state": conn.execute(sa.text("SELECT state_code FROM staging.dim_state")).scalars().all(),
        }
        aliases = rules.make_aliases()
        ids = conn.execute(sa.text("SELECT 'make', make_id, make_name FROM staging.dim_make")).all()
        ids += conn.execute(sa.text("SELECT 'seller', seller_id, seller_name FROM staging.dim_seller")).all()
        bad_ids = sum(1 for kind, got, name in ids if got != uuid.uuid3(NAMESPACE, f"{kind}:{name}"))
    for kind, values in names.items():
        assert values, f"no {kind}"
        assert all(v and v == v.strip() and "—" not in v and "  " not in v for v in values), (kind, values)
        assert len({v.lower() for v in values}) == len(values), f"{kind} differs only by case"
    for make in names["make"]:
        assert aliases.get(make.lower(), make) == make, f"{make} is an alias of {aliases[make.lower()]}"
    assert all(v == v.lower() for v in names["transmission"] + names["color"] + names["seller"])
    assert all("," not in v for v in names["seller"])
    assert all(len(code) == 2 and code.isupper() for code in names["state"])
    assert bad_ids == 0
    if makes is not None:
        assert set(names["make"]) <= makes


# --- the full chain on files -----------------------------------------------------------------------


@pytest.mark.skipif(not SAMPLE.exists(), reason="data/sample.csv not generated yet")
def test_sample_csv_exact_counts(clean_db):
    engine = clean_db
    batch = ingest(engine, SAMPLE, source_file="sample.csv")
    lines = records(SAMPLE)
    # untrusted: no VIN, no market estimate, no price, no sale date (but where a 16-field reader lost it)
    undated = [
        r
        for r in lines
        if not (r["vin"] and r["mmr"] and r["sellingprice"] and (r["saledate"] or r.get("undated")))
    ]
    shifted = [r for r in lines if r.get("shifted")]
    volkswagens = [r for r in lines if r["make"].strip().lower() in ("volkswagen", "vw")]
    assert shifted, "the sample has shifted Volkswagen lines"

    result = transform(engine, batch.run_id)

    assert (result["rows_in"], result["rows_out"], result["rows_rejected"]) == (
        len(lines),
        len(lines) - len(undated),
        len(undated),
    )
    assert result["repaired_lines"] == len(shifted)
    facts = scalar(engine, "SELECT count(*) FROM staging.fact_car_sales")
    quarantined = scalar(engine, "SELECT count(*) FROM staging.quarantined_sales")
    assert facts + quarantined == batch.lines == len(lines)
    assert quarantined == len(undated)
    published_vw = scalar(
        engine,
        "SELECT count(*) FROM staging.fact_car_sales f JOIN staging.dim_make m USING (make_id) "
        "WHERE m.make_name = 'Volkswagen'",
    )
    assert published_vw == len([r for r in volkswagens if r not in undated])
    assert_clean_dimensions(engine)
    assert all(q["status"] != "fail" for q in quality(engine, batch.run_id).values())


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """A generated file with every defect of the real one, and the generator's exact counts."""
    from tools.sample import CANONICAL_MAKES, COLOR_WEIGHTS, INTERIOR_WEIGHTS, write_sample

    path = tmp_path_factory.mktemp("transform") / "generated.csv"
    counts = write_sample(path, 30_000, seed=11)
    return path, counts, set(CANONICAL_MAKES), set(COLOR_WEIGHTS) | set(INTERIOR_WEIGHTS)


def test_generated_file_with_every_defect_exact_counts(clean_db, generated):
    engine = clean_db
    path, counts, makes, colors = generated
    batch = ingest(engine, path, source_file="generated.csv")

    result = transform(engine, batch.run_id)

    rows, undated = counts["rows"], untrusted(counts)
    assert counts["saledate_blank"] >= 1 and counts["vw_split_trim"] >= 1
    assert (result["rows_in"], result["rows_out"], result["rows_rejected"]) == (rows, rows - undated, undated)
    assert result["repaired_lines"] == counts["vw_split_trim"]
    assert result["repairs"] == {"shifted_16_fields": 0, "split_trim_17_fields": counts["vw_split_trim"]}
    assert result["quarantine_reasons"] == {
        "sale_date_missing": counts["saledate_blank"],
        "selling_price_missing": counts["sellingprice_blank"],
        "mmr_missing": counts["mmr_blank"],
        "vin_missing": counts["vin_blank"],
    }
    assert result["fixed"]["make_respelled"] == counts["make_lowercase"] + counts["make_alias"]
    assert result["fixed"]["body_respelled"] == counts["body_lowercase"]
    assert result["fixed"]["unknown_colors_nulled"] == counts["em_dash_color"] + counts["em_dash_interior"]
    assert result["fixed"]["condition_rescaled"] == counts["condition_1_to_5"]

    with engine.connect() as conn:
        # Every property is counted over published sales + quarantined lines (raw values there),
        # which must add up to the generator's count over all lines.
        def both(facts: str, quarantined: str) -> int:
            """Lines with a property: sales counted by `facts` + quarantined lines by `quarantined`."""
            return conn.execute(sa.text(facts)).scalar() + conn.execute(sa.text(quarantined)).scalar()

        properties = [
            ("SELECT count(*) FROM staging.fact_car_sales",
             "SELECT count(*) FROM staging.quarantined_sales", rows),
            ("SELECT count(*) FROM staging.fact_car_sales WHERE make_id IS NULL",
             "SELECT count(*) FROM staging.quarantined_sales WHERE make IS NULL", counts["make_blank"]),
            ("SELECT count(*) FROM staging.fact_car_sales WHERE model IS NULL",
             "SELECT count(*) FROM staging.quarantined_sales WHERE model IS NULL", counts["model_blank"]),
            ('SELECT count(*) FROM staging.fact_car_sales WHERE "trim" IS NULL',
             'SELECT count(*) FROM staging.quarantined_sales WHERE "trim" IS NULL', counts["trim_blank"]),
            ("SELECT count(*) FROM staging.fact_car_sales WHERE body IS NULL",
             "SELECT count(*) FROM staging.quarantined_sales WHERE body IS NULL", counts["body_blank"]),
            ("SELECT count(*) FROM staging.fact_car_sales WHERE transmission_id IS NULL",
             "SELECT count(*) FROM staging.quarantined_sales WHERE transmission IS NULL",
             counts["transmission_blank"]),
            ("SELECT count(*) FROM staging.fact_car_sales WHERE exterior_color_id IS NULL",
             "SELECT count(*) FROM staging.quarantined_sales WHERE coalesce(color, '—') = '—'",
             counts["em_dash_color"] + counts["color_blank"]),
            ("SELECT count(*) FROM staging.fact_car_sales WHERE interior_color_id IS NULL",
             "SELECT count(*) FROM staging.quarantined_sales WHERE coalesce(interior, '—') = '—'",
             counts["em_dash_interior"] + counts["interior_blank"]),
            ("SELECT count(*) FROM staging.fact_car_sales WHERE condition IS NULL",
             "SELECT count(*) FROM staging.quarantined_sales WHERE condition IS NULL",
             counts["condition_blank"]),
            ("SELECT count(*) FROM staging.fact_car_sales WHERE odometer IS NULL",
             "SELECT count(*) FROM staging.quarantined_sales WHERE odometer IS NULL",
             counts["odometer_blank"]),
            ("SELECT count(*) FROM staging.fact_car_sales WHERE odometer = 1",
             "SELECT count(*) FROM staging.quarantined_sales WHERE odometer = '1'", counts["odometer_1"]),
            ("SELECT count(*) FROM staging.fact_car_sales WHERE odometer = 999999",
             "SELECT count(*) FROM staging.quarantined_sales WHERE odometer = '999999'",
             counts["odometer_999999"]),
            ("SELECT count(*) FROM staging.fact_car_sales WHERE selling_price = 1",
             "SELECT count(*) FROM staging.quarantined_sales WHERE sellingprice = '1'",
             counts["sellingprice_1"]),
            ("SELECT count(*) FROM staging.fact_car_sales JOIN staging.dim_state USING (state_id) "
             "WHERE state_code IN ('ON', 'QC', 'AB', 'NS')",
             "SELECT count(*) FROM staging.quarantined_sales WHERE upper(state) IN ('ON', 'QC', 'AB', 'NS')",
             counts["state_canada"]),
        ]  # fmt: skip
        for facts, quarantined, expected in properties:
            assert both(facts, quarantined) == expected, facts
        # the 17-field Volkswagen lines: repaired, published with their sale dates, none lost
        repaired = conn.execute(
            sa.text(
                "SELECT count(*), count(DISTINCT f.trim), min(f.trim), count(f.sale_date), "
                "bool_and(f.body = 'Sedan' AND f.transmission_id IS NULL "
                "AND f.repair = 'split_trim_17_fields' AND m.make_name = 'Volkswagen' AND f.model = 'Jetta' "
                "AND length(f.vin) = 17 "
                "AND f.vin = upper(f.vin)) "
                "FROM staging.fact_car_sales f JOIN staging.dim_make m USING (make_id) WHERE f.repaired"
            )
        ).one()
        assert tuple(repaired) == (
            counts["vw_split_trim"],
            1,
            "SE PZEV w/Connectivity, Navitgation",
            counts["vw_split_trim"],
            True,
        )
        vw_published = conn.execute(
            sa.text(
                "SELECT count(*) FROM staging.fact_car_sales f JOIN staging.dim_make m USING (make_id) "
                "WHERE m.make_name = 'Volkswagen'"
            )
        ).scalar()
        vw_quarantined = conn.execute(
            sa.text(
                "SELECT count(*) FROM staging.quarantined_sales WHERE lower(make) IN ('volkswagen', 'vw')"
            )
        ).scalar()
        transmissions = set(
            conn.execute(sa.text("SELECT transmission_type FROM staging.dim_transmission")).scalars()
        )
        color_names = set(conn.execute(sa.text("SELECT color_name FROM staging.dim_color")).scalars())
        grades = conn.execute(
            sa.text("SELECT min(condition), max(condition) FROM staging.fact_car_sales")
        ).one()
    lines = records(path)
    assert vw_published + vw_quarantined == sum(r["make"].lower() in ("volkswagen", "vw") for r in lines)
    assert transmissions == {"automatic", "manual"}
    assert len(color_names) >= 15 and color_names <= colors
    assert grades[0] >= 10 and grades[1] <= 50
    assert_clean_dimensions(engine, makes)
    results = quality(engine, batch.run_id)
    assert {name: r["status"] for name, r in results.items() if r["blocking"]} == {
        "quarantine_rate": "pass",
        "required_fields_not_null": "pass",
        "sale_date_range": "pass",
        "reconciliation": "pass",
        "foreign_keys_resolve": "pass",
        "natural_keys_unique": "pass",
        "mart_daily_sales": "pass",
        "mart_price_guide": "pass",
        "mart_seller_scorecard": "pass",
    }
    assert float(results["reconciliation"]["observed"]) == 0
    assert float(results["suspicious_odometers"]["observed"]) > 0


def test_sale_dates_honour_the_written_offset(clean_db, generated):
    engine = clean_db
    path, *_ = generated
    batch = ingest(engine, path, source_file="generated.csv")
    transform(engine, batch.run_id)
    by_line = {r["line_number"]: r for r in records(path)}
    with engine.connect() as conn:
        published = conn.execute(
            sa.text("SELECT line_number, sale_date FROM staging.fact_car_sales WHERE NOT repaired")
        ).all()
    zones = {"PST": 0, "PDT": 0}
    for line_number, sale_date in random.Random(3).sample(published, 3000):
        written = by_line[line_number]["saledate"]
        expected = dt.datetime.strptime(written[:33], "%a %b %d %Y %H:%M:%S GMT%z")
        assert sale_date == expected, (line_number, written, sale_date)
        zones[written[-4:-1]] += 1
    assert zones["PST"] and zones["PDT"], "both offsets were checked"


# --- quarantine ------------------------------------------------------------------------------------


def line(**changes) -> str:
    values = dict(zip(HEADER, next(csv.reader([GOOD])), strict=True)) | changes
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow([values[name] for name in HEADER])
    return out.getvalue()


def test_untrusted_lines_are_quarantined_with_raw_values_lineage_and_every_reason(clean_db):
    engine = clean_db
    future = "Tue Dec 16 2031 12:30:00 GMT-0800 (PST)"
    bad = {
        "price and state": line(sellingprice="abc", state="zz"),
        "negative mmr": line(mmr="-5"),
        "unparseable date": line(saledate="yesterday afternoon"),
        "future date": line(saledate=future),
        "missing date": line(saledate=""),
        "missing vin": line(vin=""),
        "short vin": line(vin="5xyktca69"),
        "odometer": line(odometer="12k"),
        "condition": line(condition="7"),
        "year": line(year=""),
        "seller": line(seller="—"),
    }
    missing_but_trusted = line(
        make="",
        model="",
        trim="",
        body="—",
        transmission="",
        color="—",
        interior="",
        condition="",
        odometer="",
    )
    lines = [GOOD] * 1200 + [missing_but_trusted, VW_SHIFTED, *bad.values()]
    batch = ingest(engine, lines)

    result = transform(engine, batch.run_id)

    assert (result["rows_in"], result["rows_out"], result["rows_rejected"]) == (len(lines), 1202, len(bad))
    with engine.connect() as conn:
        quarantined = {
            row.line_number: row
            for row in conn.execute(sa.text("SELECT * FROM staging.quarantined_sales ORDER BY line_number"))
        }
        trusted = conn.execute(
            sa.text(
                "SELECT make_id, model, trim, body, transmission_id, exterior_color_id, interior_color_id, "
                "condition, odometer, sale_date FROM staging.fact_car_sales WHERE line_number = :n"
            ),
            {"n": 1202},
        ).one()
    first_bad = 2 + 1200 + 2
    reasons = {name: quarantined[first_bad + i].reasons for i, name in enumerate(bad)}
    assert reasons == {
        "price and state": ["state_unknown", "selling_price_not_a_number"],
        "negative mmr": ["mmr_negative"],
        "unparseable date": ["sale_date_unparseable"],
        "future date": ["sale_date_out_of_range"],
        "missing date": ["sale_date_missing"],
        "missing vin": ["vin_missing"],
        "short vin": ["vin_invalid"],
        "odometer": ["odometer_not_a_number"],
        "condition": ["condition_invalid"],
        "year": ["year_missing"],
        "seller": ["seller_missing"],
    }
    row = quarantined[first_bad]
    assert (row.run_id, row.batch_id, row.source_sha256, row.source_file) == (
        uuid.UUID(batch.run_id),
        batch.batch_id,
        batch.sha256,
        "test.csv",
    )
    assert (row.state, row.sellingprice, row.seller, row.saledate) == (
        "zz",
        "abc",
        "kia motors america  inc",
        "Tue Dec 16 2014 12:30:00 GMT-0800 (PST)",
    ), "raw values are kept as loaded"
    assert quarantined[first_bad + 3].saledate == future
    assert tuple(trusted)[:-1] == (None,) * 9 and trusted.sale_date is not None
    assert result["quarantine_reasons"]["sale_date_missing"] == 1
    assert scalar(engine, "SELECT count(*) FROM staging.dim_state WHERE state_code = 'ZZ'") == 0


# --- idempotency and rebuild -----------------------------------------------------------------------


def test_rerun_and_forced_reload_never_duplicate(clean_db, generated):
    engine = clean_db
    path, counts, *_ = generated
    first = ingest(engine, path, source_file="generated.csv")
    transform(engine, first.run_id)
    before = snapshot(engine)
    assert before["fact_car_sales"][0] == counts["rows"] - untrusted(counts)

    again = transform_again(engine, first.run_id)
    assert snapshot(engine) == before
    assert again["sales_inserted"] == 0 and again["quarantine_inserted"] == 0
    assert sum(again[f"{d}_inserted"] for d in DIMENSIONS) == 0

    forced = ingest(engine, path, source_file="generated-again.csv")  # --force: a new batch, same content
    result = transform(engine, forced.run_id)
    assert snapshot(engine) == before
    assert (result["rows_in"], result["rows_out"], result["rows_rejected"]) == (
        counts["rows"],
        counts["rows"] - untrusted(counts),
        untrusted(counts),
    )
    assert result["sales_inserted"] == 0
    assert quality(engine, forced.run_id)["reconciliation"]["status"] == "pass"


def test_rebuild_rederives_the_same_staging_from_all_batches(clean_db, generated):
    engine = clean_db
    path, *_ = generated
    runs = [
        ingest(engine, path, source_file="generated.csv"),
        ingest(engine, [GOOD] * 200 + [VW_SHIFTED, line(vin="")]),
    ]
    for batch in runs:
        transform(engine, batch.run_id)
    ingest(engine, path, source_file="forced.csv")  # a forced re-load adds no line
    before = snapshot(engine)
    with engine.begin() as conn:  # staging damaged by hand: rebuild must not care
        conn.execute(sa.text("DELETE FROM staging.fact_car_sales WHERE line_number % 7 = 0"))
        conn.execute(sa.text("DELETE FROM staging.quarantined_sales"))

    rebuild_id = str(uuid.uuid4())
    result = transform(engine, rebuild_id, rebuild=True)

    assert snapshot(engine) == before
    assert result["batches"] == 2
    assert result["rows_in"] == sum(b.lines for b in runs)
    assert stage_of(engine, rebuild_id)["status"] == "succeeded"
    assert quality(engine, rebuild_id)["reconciliation"]["status"] == "pass"


def test_a_run_without_new_batches_succeeds_with_nothing_to_do(clean_db):
    engine = clean_db
    run_id = str(uuid.uuid4())
    result = transform(engine, run_id)
    assert (result["rows_in"], result["rows_out"], result["rows_rejected"]) == (0, 0, 0)
    assert stage_of(engine, run_id)["status"] == "succeeded"


# --- failures publish nothing ----------------------------------------------------------------------


def test_a_blocking_check_failure_publishes_nothing_and_fails_the_run_naming_the_check(clean_db):
    engine = clean_db
    good = ingest(engine, [GOOD] * 300 + [VW_SHIFTED])
    transform(engine, good.run_id)
    before = snapshot(engine)
    bad = ingest(engine, [line(vin=f"1ftfw1ef{n:09d}") for n in range(95)] + [line(state="zz")] * 5)

    with pytest.raises(Exception) as raised:
        transform(engine, bad.run_id)

    assert type(raised.value).__name__ == "QualityCheckFailed"
    assert str(raised.value) == "quality check quarantine_rate failed: observed 0.05, threshold 0.01"
    assert snapshot(engine) == before, "nothing of the failed run is published"
    results = quality(engine, bad.run_id)
    assert results["quarantine_rate"]["status"] == "fail" and results["quarantine_rate"]["blocking"]
    assert float(results["quarantine_rate"]["observed"]) == 0.05
    assert results["required_fields_not_null"]["status"] == "pass"
    with engine.connect() as conn:
        status = ledger.get_status(conn, bad.run_id)
    assert status["status"] == "failed"
    assert "quality check quarantine_rate failed" in status["error"]
    assert {q["check"]: q["status"] for q in status["quality"]}["quarantine_rate"] == "fail"
    # The chunks' work is kept for a `pipeline retry` (nothing of it is readable by analysts), and is
    # the run's only: no table of the old in-transaction work is left anywhere.
    assert scalar(engine, "SELECT count(*) FROM pg_tables WHERE tablename LIKE 'transform\\_%'") == 0
    sha = scalar(engine, "SELECT sha256 FROM meta.ingested_files WHERE run_id = :r", r=bad.run_id)
    kept = ".".join(work.sales(bad.run_id, sha).strings)  # the run's sales table of its file
    assert scalar(engine, f"SELECT count(*) FROM {kept}") == 95  # noqa: S608 (hex digits)


def test_a_sale_without_its_dimension_row_fails_the_foreign_key_check(clean_db, monkeypatch):
    """A bug that leaves a dimension row out is caught by a check when the file's sales table is
    attached (ATTACH validates the foreign keys): nothing published, the check names the count."""
    engine = clean_db
    transform(engine, ingest(engine, [GOOD] * 200).run_id)
    before = snapshot(engine)
    batch = ingest(engine, [line(seller="a seller nobody knew")] * 100)
    monkeypatch.setitem(job.DIMENSIONS, "dim_seller", sa.text("SELECT 1"))  # the bug

    with pytest.raises(
        Exception, match="quality check foreign_keys_resolve failed: observed 100, threshold 0"
    ):
        transform(engine, batch.run_id)

    assert snapshot(engine) == before
    assert quality(engine, batch.run_id)["foreign_keys_resolve"]["status"] == "fail"
    assert stage_of(engine, batch.run_id)["status"] == "failed"


def test_each_file_is_one_partition_and_the_primary_key_holds_across_them(clean_db):
    """A new file's sales table is attached as its own partition of the fact table, and analyzed
    after the commit; a forced re-load of a published file attaches nothing and adds nothing. The
    primary key holds over every partition, and no sales table is left in work."""
    engine = clean_db
    partitions = "SELECT count(*) FROM pg_inherits WHERE inhparent = 'staging.fact_car_sales'::regclass"
    analyzed = (
        "SELECT coalesce(sum(analyze_count), 0) FROM pg_stat_user_tables"
        " WHERE schemaname = 'staging' AND relname = :partition"
    )
    small = [line(vin=f"1ftfw1ef{n:09d}") for n in range(10)]
    for name, lines, attached in (
        ("big.csv", [GOOD] * 300, 1),
        ("small.csv", small, 1),
        ("again.csv", small, 0),
    ):
        batch = ingest(engine, lines, source_file=name)
        transform(engine, batch.run_id)
        details = stage_of(engine, batch.run_id)["details"]
        assert details["partitions_attached"] == attached
        assert details["sales_inserted"] == (len(lines) if attached else 0)
        if attached:
            assert scalar(engine, analyzed, partition=work.fact_partition(batch.sha256)) >= 1
    assert scalar(engine, partitions) == 2
    assert scalar(engine, "SELECT count(*) FROM staging.fact_car_sales") == 310
    with pytest.raises(sa.exc.IntegrityError, match="fact_car_sales_.*pkey"), engine.begin() as conn:
        conn.execute(
            sa.text("INSERT INTO staging.fact_car_sales SELECT * FROM staging.fact_car_sales LIMIT 1")
        )
    leftovers = "SELECT count(*) FROM pg_tables WHERE schemaname = 'work' AND tablename LIKE 'sales%'"
    assert scalar(engine, leftovers) == 0


def test_a_make_left_by_an_older_alias_list_fails_natural_keys_until_a_rebuild(clean_db):
    """`vw` was published as a make of its own before the alias list knew it: the next run names
    the duplicate and publishes nothing; `pipeline rebuild` re-derives staging with today's rules."""
    engine = clean_db
    transform(engine, ingest(engine, [GOOD] * 200).run_id)
    with engine.begin() as conn:
        conn.execute(
            sa.text("INSERT INTO staging.dim_make VALUES (:id, 'Vw')"),
            {"id": uuid.uuid3(NAMESPACE, "make:Vw")},
        )
    batch = ingest(engine, [line(make="vw", model="Jetta")] * 200)

    with pytest.raises(Exception, match="quality check natural_keys_unique failed: observed 1, threshold 0"):
        transform(engine, batch.run_id)
    assert scalar(engine, "SELECT count(*) FROM staging.fact_car_sales") == 200

    transform(engine, str(uuid.uuid4()), rebuild=True)
    assert scalar(engine, "SELECT count(*) FROM staging.fact_car_sales") == 400
    assert scalar(engine, "SELECT string_agg(make_name, ',' ORDER BY make_name) FROM staging.dim_make") == (
        "Kia,Volkswagen"
    )


def test_a_run_cancelled_before_the_publish_publishes_nothing(clean_db, monkeypatch):
    engine = clean_db
    batch = ingest(engine, [GOOD] * 50)
    real = checks.before_publish

    def cancel_meanwhile(metrics, rate):
        with engine.begin() as conn:  # an operator's `pipeline cancel`, while the transform works
            ledger.cancel_run(conn, batch.run_id)
        return real(metrics, rate)

    monkeypatch.setattr(checks, "before_publish", cancel_meanwhile)
    result = transform(engine, batch.run_id)

    assert "cancelled" in result
    assert scalar(engine, "SELECT count(*) FROM staging.fact_car_sales") == 0
    assert stage_of(engine, batch.run_id)["status"] == "cancelled"


# --- the whole chain through real workers ----------------------------------------------------------


@pytest.mark.skipif(
    not (ROOT / "services" / "ingest" / "job.py").exists(), reason="ingest stage not written yet"
)
@pytest.mark.timeout(300)
def test_end_to_end_through_workers_then_rebuild(workers, data_dir):
    from tools.sample import write_sample

    path = data_dir / "e2e.csv"
    counts = write_sample(path, 4_000, seed=5)
    workers.start_all()

    proc = run_cli("run", "--source", str(path), "--wait", "--json")

    assert proc.returncode == 0, proc.stdout + proc.stderr
    status = json.loads(proc.stdout)
    transform_jobs = [s for s in status["stages"] if s["stage"] == "transform"]
    assert [s["task"] for s in transform_jobs] == ["", "chunk 1", "publish"]  # plan, chunk, publish
    assert all(s["status"] == "succeeded" for s in transform_jobs)
    stage = transform_jobs[-1]
    assert stage["status"] == "succeeded"
    assert (stage["rows_in"], stage["rows_out"], stage["rows_rejected"]) == (
        4_000,
        4_000 - untrusted(counts),
        untrusted(counts),
    )
    assert stage["details"]["repaired_lines"] == counts["vw_split_trim"]
    checks_run = {q["check"]: q["status"] for q in status["quality"]}
    assert checks_run["reconciliation"] == checks_run["quarantine_rate"] == "pass"
    shown = run_cli("status", status["run_id"], check=True).stdout
    assert "quality checks:" in shown and "reconciliation" in shown

    rebuilt = run_cli("rebuild", "--wait", "--json")
    assert rebuilt.returncode == 0, rebuilt.stdout + rebuilt.stderr
    rebuild = json.loads(rebuilt.stdout)
    assert rebuild["kind"] == "rebuild" and rebuild["status"] == "succeeded"
    assert rebuild["stages"][-1]["task"] == "publish"
    assert rebuild["stages"][-1]["rows_out"] == stage["rows_out"]
