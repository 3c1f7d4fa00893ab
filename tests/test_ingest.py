"""Ingest stage through real workers: every input line ends up in exactly one place.

For each file: rows in raw.car_prices + lines in raw.rejected_lines = CSV records in the file.
"""

import csv
import datetime as dt
import gzip
import io
import json
import os
import time

import pytest
import sqlalchemy as sa

from services.ingest.reader import Counts, RecordSplitter, is_split_trim
from shared.dataset import FIELD_COUNT, HEADER_LINE, split_trim
from tests.conftest import (
    GOOD,
    VW_SHIFTED,
    VW_SPLIT_TRIM,
    enqueue_around_cli,
    hold_raw,
    run_cli,
    wait_for_run,
)

NOT_SPLIT_TRIM = (
    "wrong number of fields: expected 16, found 17 (its trim and body fields rejoined are no known "
    "split trim: where the extra comma is cannot be told)"
)
SALE_DATE = "Tue Jan 27 2015 04:30:00 GMT-0800 (PST)"


def write(path, text: str | bytes) -> str:
    data = text.encode() if isinstance(text, str) else text
    path.write_bytes(data)
    return str(path)


def csv_records(path) -> int:
    with open(path, newline="", encoding="utf-8", errors="replace") as f:
        return sum(1 for _ in csv.reader(f)) - 1


def ingest_runs(*sources, extra=(), around_cli=False) -> dict:
    """Enqueue a run and wait until its ingest jobs are done (transform is not needed here)."""
    if around_cli:
        run_id = enqueue_around_cli(*sources)
    else:
        proc = run_cli("run", *extra, "--json", "--source", *sources)
        assert proc.returncode == 0, proc.stderr
        run_id = json.loads(proc.stdout)["run_id"]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        status = wait_for_run(run_id, until=("queued", "running", "succeeded", "failed", "cancelled"))
        ingest = [s for s in status["stages"] if s["stage"] == "ingest"]
        if ingest and all(s["status"] in ("succeeded", "failed", "not_run") for s in ingest):
            return status
        if status["status"] == "failed" and not ingest:
            return status
        time.sleep(0.2)
    raise AssertionError(f"ingest of {sources} did not finish: {status}")


def counts_for(engine, source_file: str) -> tuple[int, int]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT count(*) FROM raw.car_prices_lineage WHERE _source_file = :f"), {"f": source_file}
        ).scalar()
        rejects = conn.execute(
            sa.text("SELECT count(*) FROM raw.rejected_lines WHERE source_file = :f"), {"f": source_file}
        ).scalar()
    return rows, rejects


@pytest.fixture
def ingest_workers(workers):
    workers.start("setup")
    workers.start("ingest")
    return workers


def test_generated_file_with_every_defect_reconciles(ingest_workers, engine, data_dir):
    from tools.sample import write_sample

    path = data_dir / "generated.csv"
    write_sample(path, 3000, seed=7)
    status = ingest_runs(str(path))
    stage = next(s for s in status["stages"] if s["stage"] == "ingest")
    assert stage["status"] == "succeeded", stage
    rows, rejects = counts_for(engine, "generated.csv")
    assert rows + rejects == csv_records(path) == 3000
    assert stage["rows_in"] == 3000 and stage["rows_out"] == rows and stage["rows_rejected"] == rejects
    with engine.connect() as conn:
        # The Volkswagen lines are 17-field lines: raw keeps their first 16 fields in the 16 columns
        # (the body column holds the trim's second half) and the 17th in _extra_field.
        shifted = conn.execute(
            sa.text("SELECT count(*) FROM raw.car_prices WHERE body = 'Navitgation'")
        ).scalar()
        split = conn.execute(
            sa.text(
                "SELECT count(*) FROM raw.car_prices WHERE _extra_field IS NOT NULL AND body = 'Navitgation'"
            )
        ).scalar()
        lineage = conn.execute(
            sa.text(
                "SELECT count(DISTINCT _run_id), count(DISTINCT _source_sha256), min(_line_number), "
                "max(_line_number) FROM raw.car_prices_lineage WHERE _source_file = 'generated.csv'"
            )
        ).one()
    assert shifted >= 1
    assert split == shifted == stage["details"]["rows_split_trim"]
    assert lineage == (1, 1, 2, 3001)


def test_valid_csv_variants_load_exactly(ingest_workers, engine, data_dir):
    """BOM, CRLF, quoted commas, doubled quotes and a newline inside quotes are valid CSV."""
    quoted = (
        '2014,BMW,"3 Series","328i, ""SULEV""",Sedan,automatic,wba3c1c51ek116351,ca,45,1331,gray,black,'
        '"financial services,\r\nremarketing (lease)",31900,30000,Thu Jan 15 2015 04:30:00 GMT-0800 (PST)'
    )
    empty_vs_missing = GOOD.replace(",white,", ',"",').replace(",black,", ",,", 1)
    text = "\ufeff" + HEADER_LINE + "\r\n" + GOOD + "\r\n" + quoted + "\r\n" + empty_vs_missing + "\r\n"
    path = write(data_dir / "variants.csv", text)
    ingest_runs(path)
    rows, rejects = counts_for(engine, "variants.csv")
    assert (rows, rejects) == (3, 0)
    with engine.connect() as conn:
        got = conn.execute(
            sa.text(
                "SELECT _line_number, trim, seller, color, interior FROM raw.car_prices_lineage "
                "WHERE _source_file = 'variants.csv' ORDER BY _line_number"
            )
        ).all()
    assert got[1] == (3, '328i, "SULEV"', "financial services,\r\nremarketing (lease)", "gray", "black")
    # The CSV says "" for the colour (empty string) and nothing for the interior (missing).
    assert got[2][0] == 5 and got[2][3] == "" and got[2][4] is None


def test_untrusted_lines_go_to_rejects_with_reasons(ingest_workers, engine, data_dir):
    lines = [
        GOOD,
        "a,b,c",  # too few fields
        ",".join(["x"] * 200),  # 200 fields
        GOOD.replace("Kia", "K\xe9a"),  # Latin-1 byte: not UTF-8 (written below as raw bytes)
        GOOD.replace("LX", 'L"X'),  # a quote opening mid-field that never closes
        VW_SHIFTED,
        GOOD,
    ]
    data = (HEADER_LINE + "\n" + "\n".join(lines) + "\n").encode("latin-1")
    path = write(data_dir / "defects.csv", data)
    status = ingest_runs(path)
    stage = next(s for s in status["stages"] if s["stage"] == "ingest")
    assert stage["status"] == "succeeded"
    rows, rejects = counts_for(engine, "defects.csv")
    assert rows + rejects == len(lines)
    with engine.connect() as conn:
        rejected = conn.execute(
            sa.text(
                "SELECT line_number, reason, raw_line FROM raw.rejected_lines "
                "WHERE source_file = 'defects.csv' ORDER BY line_number"
            )
        ).all()
    by_line = {r.line_number: r.reason for r in rejected}
    assert by_line[3] == "wrong number of fields: expected 16, found 3"
    assert by_line[4] == "wrong number of fields: expected 16, found 200"
    assert by_line[5].startswith("not valid UTF-8: byte 0xe9")
    assert "quot" in by_line[6]
    assert bytes(rejected[2].raw_line) == lines[3].encode("latin-1"), "the original bytes are kept"
    assert (stage["rows_out"], stage["rows_rejected"]) == (3, 4)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.csv", b"", "the file is empty"),
        ("wrong_header.csv", b"year,make,model\n2015,Kia,Sorento\n", "the header is not the expected one"),
        (
            "reordered.csv",
            (",".join(reversed(HEADER_LINE.split(","))) + "\n").encode(),
            "expected 'year,make",
        ),
        ("binary.csv", bytes(range(256)) * 50, "the header is not the expected one"),
    ],
)
def test_bad_files_fail_the_stage_and_load_nothing(ingest_workers, engine, data_dir, name, content, message):
    path = write(data_dir / name, content)
    status = ingest_runs(path)
    stage = next(s for s in status["stages"] if s["stage"] == "ingest")
    assert stage["status"] == "failed"
    assert name in stage["error"] and message in stage["error"]
    assert stage["attempt"] == 1, "bad input is not retried"
    assert status["status"] == "failed" and status["failed_stage"] == "ingest"
    transform = next(s for s in status["stages"] if s["stage"] == "transform")
    assert transform["status"] == "not_run"
    assert counts_for(engine, name) == (0, 0)


def test_missing_path_fails_with_its_name(ingest_workers, data_dir):
    # `pipeline run` refuses a missing file itself (test_foundation); one that is gone by the time
    # its job runs is the worker's to find.
    status = ingest_runs(str(data_dir / "nope.csv"), around_cli=True)
    stage = next(s for s in status["stages"] if s["stage"] == "ingest")
    assert stage["status"] == "failed" and "nope.csv: no such file" in stage["error"]


def test_header_only_loads_nothing_and_succeeds(ingest_workers, engine, data_dir):
    path = write(data_dir / "header_only.csv", HEADER_LINE + "\n")
    status = ingest_runs(path)
    stage = next(s for s in status["stages"] if s["stage"] == "ingest")
    assert (stage["status"], stage["rows_in"], stage["rows_out"]) == ("succeeded", 0, 0)


def test_directory_and_glob_make_one_job_per_file(ingest_workers, engine, data_dir):
    for i in range(3):
        write(
            data_dir / f"part{i}.csv",
            HEADER_LINE + "\n" + "\n".join([GOOD.replace("16639", str(i))] * (i + 1)),
        )
    status = ingest_runs(str(data_dir))
    ingest = [s for s in status["stages"] if s["stage"] == "ingest"]
    assert [os.path.basename(s["task"]) for s in ingest] == ["part0.csv", "part1.csv", "part2.csv"]
    assert [s["rows_out"] for s in ingest] == [1, 2, 3]
    status = ingest_runs(str(data_dir / "part*.csv"))
    assert [s["rows_out"] for s in status["stages"] if s["stage"] == "ingest"] == [0, 0, 0]


def test_reingest_is_a_noop_unless_forced(ingest_workers, engine, data_dir):
    path = write(data_dir / "once.csv", HEADER_LINE + "\n" + GOOD + "\n" + GOOD + "\n")
    first = next(s for s in ingest_runs(path)["stages"] if s["stage"] == "ingest")
    assert (first["rows_in"], first["rows_out"]) == (2, 2)
    # The same content under another name is the same file.
    copy = write(data_dir / "renamed.csv", (data_dir / "once.csv").read_bytes())
    again = next(s for s in ingest_runs(copy)["stages"] if s["stage"] == "ingest")
    assert (again["status"], again["rows_in"], again["rows_out"]) == ("succeeded", 2, 0)
    assert again["details"]["reason"] == "already ingested"
    forced = next(s for s in ingest_runs(path, extra=("--force",))["stages"] if s["stage"] == "ingest")
    assert (forced["rows_out"], forced["details"]["forced"]) == (2, True)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM raw.car_prices")).scalar() == 4
        assert conn.execute(sa.text("SELECT count(*) FROM meta.ingested_files")).scalar() == 2


def test_same_file_in_two_runs_at_once_loads_once(workers, engine, data_dir):
    workers.start("setup")
    workers.start("ingest")
    workers.start("ingest")
    path = write(data_dir / "twice.csv", HEADER_LINE + "\n" + "\n".join([GOOD] * 5000) + "\n")
    ids = [
        json.loads(run_cli("run", "--json", "--source", path, check=True).stdout)["run_id"] for _ in range(2)
    ]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        stages = [
            s
            for rid in ids
            for s in wait_for_run(rid, until=("queued", "running", "failed"))["stages"]
            if s["stage"] == "ingest"
        ]
        if len(stages) == 2 and all(s["status"] == "succeeded" for s in stages):
            break
        time.sleep(0.2)
    assert sorted(s["rows_out"] for s in stages) == [0, 5000], stages
    assert counts_for(engine, "twice.csv") == (5000, 0)


def test_a_new_file_loaded_by_two_runs_at_once_is_committed_once(workers, engine, data_dir):
    """A file of a size never seen is loaded while it is hashed; two runs loading the same new file
    at once both write it, and the one that finds it committed by the other undoes its own load."""
    workers.start("setup")
    workers.start("ingest")
    workers.start("ingest")
    path = write(data_dir / "new twice.csv", HEADER_LINE + "\n" + "\n".join([GOOD] * 5000) + "\n")
    with hold_raw():  # both loads are written before either may attach its partition
        ids = [
            json.loads(run_cli("run", "--json", "--source", path, check=True).stdout)["run_id"] for _ in "ab"
        ]
        with engine.connect() as conn:
            waiting = sa.text(
                "SELECT wait_event FROM pg_stat_activity WHERE datname = current_database() "
                "AND application_name = 'carsales-ingest' AND wait_event_type = 'Lock' ORDER BY 1"
            )
            deadline = time.monotonic() + 60
            while conn.execute(waiting).scalars().all() != ["advisory", "relation"]:
                assert time.monotonic() < deadline, conn.execute(waiting).scalars().all()
                time.sleep(0.05)
                conn.rollback()
    deadline = time.monotonic() + 60
    while True:  # no transform worker here: the runs stay running once their ingest is done
        statuses = [wait_for_run(rid, until=("running", "succeeded", "failed")) for rid in ids]
        ingest = sorted(
            (s for st in statuses for s in st["stages"] if s["stage"] == "ingest"),
            key=lambda s: s["rows_out"] or 0,
        )
        if all(s["status"] in ("succeeded", "failed") for s in ingest) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert [(s["status"], s["rows_out"]) for s in ingest] == [("succeeded", 0), ("succeeded", 5000)]
    assert ingest[0]["details"]["reason"] == "already ingested"
    assert counts_for(engine, "new twice.csv") == (5000, 0)
    with engine.connect() as conn:
        batches = conn.execute(sa.text("SELECT count(*) FROM meta.ingested_files")).scalar()
        partitions = conn.execute(
            sa.text(
                "SELECT count(*) FROM pg_tables "
                "WHERE schemaname = 'raw' AND tablename LIKE 'car\\_prices\\_b%'"
            )
        ).scalar()
    assert (batches, partitions) == (1, 1)


def test_gzip_file_is_loaded(ingest_workers, engine, data_dir):
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb") as gz:
        gz.write((HEADER_LINE + "\n" + GOOD + "\n").encode())
    path = write(data_dir / "packed.csv.gz", buf.getvalue())
    ingest_runs(path)
    assert counts_for(engine, "packed.csv.gz") == (1, 0)


def test_hostile_names_are_data_not_sql(ingest_workers, engine, data_dir):
    name = "it's a \"file\" with spaces'; DROP TABLE raw.car_prices; --.csv"
    path = write(data_dir / name, HEADER_LINE + "\n" + GOOD + "\n")
    status = ingest_runs(path)
    assert next(s for s in status["stages"] if s["stage"] == "ingest")["status"] == "succeeded"
    assert counts_for(engine, name) == (1, 0)


def test_paths_outside_the_data_dir_are_refused(ingest_workers, data_dir, tmp_path):
    outside = tmp_path / "passwd"
    outside.write_text("root:x:0:0:root:/root:/bin/bash\n")
    link = data_dir / "innocent.csv"
    link.symlink_to(outside)
    proc = run_cli("run", "--source", str(link))
    assert proc.returncode == 2
    assert "outside the data directory" in proc.stderr and "innocent.csv" in proc.stderr
    proc = run_cli("run", "--source", "/etc/passwd")
    assert proc.returncode == 2 and "outside the data directory" in proc.stderr


def test_a_large_field_loads(ingest_workers, engine, data_dir):
    big = "x" * (10 * 1024 * 1024)
    path = write(data_dir / "wide.csv", HEADER_LINE + "\n" + GOOD.replace("LX", big) + "\n" + GOOD + "\n")
    ingest_runs(path)
    with engine.connect() as conn:
        sizes = (
            conn.execute(
                sa.text(
                    "SELECT length(trim) FROM raw.car_prices_lineage "
                    "WHERE _source_file = 'wide.csv' ORDER BY 1"
                )
            )
            .scalars()
            .all()
        )
    assert sizes == [2, len(big)]


# --- the real file's 17-field Volkswagen lines -----------------------------------------------------


def test_split_trim_is_the_known_trim_of_a_17_field_line():
    fields = VW_SPLIT_TRIM.split(",")
    assert len(fields) == FIELD_COUNT + 1
    assert split_trim(fields) == "SE PZEV w/Connectivity, Navitgation"
    assert split_trim(fields[:-1]) is None, "16 fields: not a split line"
    assert split_trim([*fields, "x"]) is None, "18 fields"
    other = fields.copy()
    other[4] = "Navigation"
    assert split_trim(other) is None, "another trim with a comma: its split is not known"
    spaced = fields.copy()
    spaced[3] = "SE PZEV w/ Connectivity"
    assert split_trim(spaced) is None, "compared as written"
    assert split_trim(GOOD.split(",") + ["x"]) is None


@pytest.mark.parametrize(
    ("record", "loadable"),
    [
        (VW_SPLIT_TRIM, True),
        (VW_SPLIT_TRIM.replace("volkswagen credit inc", '"volkswagen credit, inc"'), True),
        (VW_SPLIT_TRIM.replace(",Navitgation,", ",Navigation,"), False),
        (VW_SPLIT_TRIM.replace("SE PZEV w/Connectivity", '"SE PZEV w/Connectivity"'), False),
        (VW_SPLIT_TRIM.replace("volkswagen credit inc", '"volkswagen credit inc'), False),
        (VW_SPLIT_TRIM.replace("white", "whi\rte"), False),
        (VW_SPLIT_TRIM.replace("white", "whi\x00te"), False),
        (VW_SPLIT_TRIM + ",extra", False),
        (VW_SHIFTED, False),
        (GOOD, False),
    ],
)
def test_is_split_trim_only_for_a_loadable_17_field_line_with_a_known_split(record, loadable):
    assert is_split_trim(record.encode()) is loadable
    assert is_split_trim(record.replace("white", "wh\xefte").encode("latin-1")) is False, "not UTF-8"


@pytest.mark.parametrize(
    "neighbour",
    [
        GOOD,  # a plain block: the fast path sets the line apart
        GOOD.replace("kia motors america  inc", '"kia motors america, inc"'),  # a block with quotes
        GOOD.replace("white", "wh\rite"),  # a carriage return outside quotes: line by line
    ],
)
def test_splitter_sets_split_trim_lines_apart_with_their_line_numbers(neighbour):
    unknown = VW_SPLIT_TRIM.replace(",Navitgation,", ",Navigation,")
    lines = [neighbour, VW_SPLIT_TRIM, unknown, neighbour]
    data = ("\n".join(lines) + "\n").encode()
    counts, rejects, split = Counts(), [], []
    chunks = b"".join(RecordSplitter(io.BytesIO(data), counts, rejects.append, split.append).chunks())
    assert split == [f"3,{VW_SPLIT_TRIM}\n".encode()]
    expected = [(4, NOT_SPLIT_TRIM)]
    if "\r" in neighbour:
        expected = [(2, "carriage return inside an unquoted field"), *expected]
        expected.append((5, "carriage return inside an unquoted field"))
    assert [(r.line_number, r.reason) for r in rejects] == expected
    assert (counts.records, counts.split_trim) == (len(lines), 1)
    assert counts.loaded + counts.rejected == counts.records
    assert counts.loaded == chunks.count(b"\n") + len(split)


def test_a_17_field_line_with_a_known_split_trim_is_loaded_with_its_17th_field(
    ingest_workers, engine, data_dir
):
    unknown = VW_SPLIT_TRIM.replace(",Navitgation,", ",Navigation,")
    lines = [GOOD, VW_SPLIT_TRIM, unknown, VW_SHIFTED, GOOD]
    path = write(data_dir / "jetta.csv", HEADER_LINE + "\n" + "\n".join(lines) + "\n")
    stage = next(s for s in ingest_runs(path)["stages"] if s["stage"] == "ingest")
    assert stage["status"] == "succeeded"
    assert (stage["rows_in"], stage["rows_out"], stage["rows_rejected"]) == (5, 4, 1)
    assert stage["details"]["rows_split_trim"] == 1
    rows, rejects = counts_for(engine, "jetta.csv")
    assert rows + rejects == csv_records(path) == len(lines)
    with engine.connect() as conn:
        raw = conn.execute(
            sa.text(
                "SELECT * FROM raw.car_prices_lineage WHERE _source_file = 'jetta.csv' ORDER BY _line_number"
            )
        ).mappings()
        by_line = {row["_line_number"]: row for row in raw}
        rejected = conn.execute(
            sa.text(
                "SELECT line_number, reason, raw_line FROM raw.rejected_lines WHERE source_file = 'jetta.csv'"
            )
        ).one()
    assert sorted(by_line) == [2, 3, 5, 6]
    # the first 16 fields in the 16 columns, in order (as the shifted variant looks), the 17th apart
    jetta = by_line[3]
    assert (jetta["trim"], jetta["body"], jetta["transmission"], jetta["vin"], jetta["state"]) == (
        "SE PZEV w/Connectivity",
        "Navitgation",
        "sedan",
        None,
        "3vwd17aj3fm227143",
    )
    assert (jetta["condition"], jetta["sellingprice"], jetta["saledate"]) == ("ca", "13950", "13700")
    assert jetta["_extra_field"] == SALE_DATE
    assert [by_line[n]["_extra_field"] for n in (2, 5, 6)] == [None, None, None]
    assert (rejected.line_number, rejected.reason) == (4, NOT_SPLIT_TRIM)
    assert bytes(rejected.raw_line) == unknown.encode()


def test_a_17_field_line_becomes_a_sale_with_its_real_sale_date(workers, engine, data_dir):
    """Through ingest and transform workers: the real layout's line is a full sale, repaired."""
    workers.start_all()
    # (enough good lines that the one quarantined stays under QUARANTINE_MAX_RATE)
    lines = [GOOD, VW_SPLIT_TRIM, VW_SHIFTED, VW_SPLIT_TRIM.replace(SALE_DATE, ""), *[GOOD] * 146]
    path = write(data_dir / "jetta run.csv", HEADER_LINE + "\n" + "\n".join(lines) + "\n")
    proc = run_cli("run", "--source", path, "--wait", "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    status = json.loads(proc.stdout)
    # the transform's result is its last job's, the publish (plan, chunks, publish)
    ingest, transform = (
        [s for s in status["stages"] if s["stage"] == name][-1] for name in ("ingest", "transform")
    )
    assert (ingest["rows_in"], ingest["rows_out"], ingest["details"]["rows_split_trim"]) == (150, 150, 2)
    assert (transform["rows_in"], transform["rows_out"], transform["rows_rejected"]) == (150, 149, 1)
    assert transform["details"]["repairs"] == {"shifted_16_fields": 1, "split_trim_17_fields": 2}
    reconciliation = next(q for q in status["quality"] if q["check"] == "reconciliation")
    assert reconciliation["status"] == "pass"
    assert reconciliation["details"].startswith(
        "150 raw lines (of which 2 of 17 fields, split trim rejoined) = "
    )
    with engine.connect() as conn:
        sales = conn.execute(
            sa.text(
                "SELECT f.line_number, m.make_name, f.model, f.trim, f.body, f.transmission_id, f.vin, "
                "s.state_code, f.condition, f.odometer, e.color_name AS exterior, i.color_name AS interior, "
                "se.seller_name, f.mmr, f.selling_price, f.sale_date, f.repaired, f.repair "
                "FROM staging.fact_car_sales f JOIN staging.dim_make m USING (make_id) "
                "JOIN staging.dim_state s USING (state_id) JOIN staging.dim_seller se USING (seller_id) "
                "JOIN staging.dim_color e ON e.color_id = f.exterior_color_id "
                "JOIN staging.dim_color i ON i.color_id = f.interior_color_id WHERE f.line_number < 6"
            )
        ).mappings()
        sales = {row["line_number"]: dict(row) for row in sales}
        quarantined = conn.execute(
            sa.text("SELECT line_number, reasons, repair, extra_field FROM staging.quarantined_sales")
        ).one()
    assert sorted(sales) == [2, 3, 4]
    jetta = sales[3]
    assert jetta.pop("sale_date") == dt.datetime(2015, 1, 27, 12, 30, tzinfo=dt.UTC)
    assert jetta == {
        "line_number": 3,
        "make_name": "Volkswagen",
        "model": "Jetta",
        "trim": "SE PZEV w/Connectivity, Navitgation",
        "body": "Sedan",
        "transmission_id": None,
        "vin": "3VWD17AJ3FM227143",
        "state_code": "CA",
        "condition": 46,
        "odometer": 9012,
        "exterior": "white",
        "interior": "black",
        "seller_name": "volkswagen credit inc",
        "mmr": 13950,
        "selling_price": 13700,
        "repaired": True,
        "repair": "split_trim_17_fields",
    }
    assert (sales[4]["repair"], sales[4]["sale_date"]) == ("shifted_16_fields", None)
    assert (sales[2]["repaired"], sales[2]["repair"]) == (False, None)
    # a 17-field line without its sale date is not published without one
    assert tuple(quarantined) == (5, ["sale_date_missing"], "split_trim_17_fields", "")
