"""The transform's data-quality checks: what each one measures, its threshold and whether it blocks.

Every check compares an observed number with a threshold: it passes when observed <= threshold.
Otherwise a blocking check fails (nothing is published, the run fails naming the check) and a
non-blocking one warns (the run is published; the warning shows in `pipeline status`).
The numbers come from the chunk jobs (clean.py measures each chunk; the publish adds them up)
before publishing, and from sql/checks/published.sql and the dimension rows after writing, inside
the same transaction.
"""

from dataclasses import dataclass

from services.transform import rules

# A hammer price or market estimate under this many dollars is a placeholder, not a price (the file
# has sales at $1); an odometer at or below LOW or at or above HIGH miles is a placeholder too.
SUSPICIOUS_PRICE = 100
SUSPICIOUS_ODOMETER_LOW = 1
SUSPICIOUS_ODOMETER_HIGH = 999_999

# Warning thresholds (share of the run's trusted lines) for suspicious values and for the missing
# values the facts keep as NULL. They sit above what the real file shows (transmission is blank on
# about 1 line in 9, colours are unknown on about 4 %), so a warning means "more than usual".
SUSPICIOUS_PRICE_MAX_SHARE = 0.001
SUSPICIOUS_ODOMETER_MAX_SHARE = 0.01
MISSING_MAX_SHARE = {
    "make": 0.05,
    "model": 0.05,
    "trim": 0.05,
    "body": 0.05,
    "transmission": 0.2,
    "exterior_color": 0.1,
    "interior_color": 0.1,
    "condition": 0.05,
    "odometer": 0.01,
    "sale_date": 0.01,
}


@dataclass(frozen=True)
class QualityResult:
    check: str
    blocking: bool
    observed: float
    threshold: float
    details: str

    @property
    def status(self) -> str:
        if self.observed <= self.threshold:
            return "pass"
        return "fail" if self.blocking else "warn"

    @property
    def failed(self) -> bool:
        return self.status == "fail"

    def message(self) -> str:
        observed, threshold = _num(self.observed), _num(self.threshold)
        return f"quality check {self.check} failed: observed {observed}, threshold {threshold}"

    def as_row(self, run_id: str) -> dict:
        return {
            "run_id": run_id,
            "check_name": self.check,
            "status": self.status,
            "blocking": self.blocking,
            "observed": self.observed,
            "threshold": self.threshold,
            "details": self.details,
        }


def _num(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _share(count: int, total: int) -> float:
    return round(count / total, 6) if total else 0.0


def before_publish(m: dict, quarantine_max_rate: float) -> list[QualityResult]:
    """Checks on the work table (`m`: the row of sql/checks/work.sql)."""
    trusted = m["trusted"]
    results = [
        QualityResult(
            "quarantine_rate",
            True,
            _share(m["quarantined"], m["lines"]),
            quarantine_max_rate,
            f"{m['quarantined']} of {m['lines']} lines quarantined (QUARANTINE_MAX_RATE)",
        ),
        QualityResult(
            "required_fields_not_null",
            True,
            m["required_null"],
            0,
            "trusted lines without vin, state, seller, mmr, selling price, model year or sale date "
            "(a sale date may only be missing on a repaired line)",
        ),
        QualityResult(
            "sale_date_range",
            True,
            m["sale_date_out_of_range"],
            0,
            f"trusted sale dates outside [1990-01-01, now + 1 day); the run's dates span "
            f"{m['first_sale_date']} to {m['last_sale_date']}",
        ),
        QualityResult(
            "suspicious_prices",
            False,
            _share(m["suspicious_prices"], trusted),
            SUSPICIOUS_PRICE_MAX_SHARE,
            f"{m['suspicious_prices']} trusted lines with a selling price or mmr under ${SUSPICIOUS_PRICE}",
        ),
        QualityResult(
            "suspicious_odometers",
            False,
            _share(m["suspicious_odometers"], trusted),
            SUSPICIOUS_ODOMETER_MAX_SHARE,
            f"{m['suspicious_odometers']} trusted lines with an odometer <= {SUSPICIOUS_ODOMETER_LOW} "
            f"or >= {SUSPICIOUS_ODOMETER_HIGH}",
        ),
    ]
    for field, max_share in MISSING_MAX_SHARE.items():
        count = m[f"missing_{field}"]
        results.append(
            QualityResult(
                f"missing_{field}",
                False,
                _share(count, trusted),
                max_share,
                f"{count} trusted lines without {field.replace('_', ' ')} (kept as NULL)",
            )
        )
    return results


def natural_key_defects(rows: dict[str, list], dimensions) -> int:
    """Published dimension rows that break the natural-key rules: a name that is not its own
    canonical form under today's rule (a case or alias variant such as `Vw`, a blank, a `—`), or an
    id that is not the name-based uuid of its natural key (another worker would compute another id).
    `rows`: each dimension table's (id, name) rows."""
    defects = 0
    for dim in dimensions:
        for dimension_id, name in rows[dim.table]:
            if dim.rule(name) != name or dimension_id != rules.name_uuid(f"{dim.kind}:{name}"):
                defects += 1
    return defects


def after_publish(
    raw_lines: int, sales: int, quarantined: int, unresolved: int, duplicates: int, split_trim_lines: int = 0
) -> list[QualityResult]:
    """Checks on what the run wrote, before it is committed (the cause first: a missing dimension
    row or a duplicate, then the reconciliation that they would also break).

    A line of 17 fields with a known split trim is one raw row (its 17th field in `_extra_field`),
    so it counts once here, as a sale or a quarantined line like any other; the lines the ingest
    rejected are not in raw, and reconcile there (rows + rejected lines = records of the file)."""
    return [
        QualityResult(
            "foreign_keys_resolve",
            True,
            unresolved,
            0,
            "dimension keys of the run's sales without a dimension row",
        ),
        QualityResult(
            "natural_keys_unique",
            True,
            duplicates,
            0,
            "dimension rows duplicated by case or alias, holding a blank or `—`, or whose id is not the "
            "name-based uuid of their natural key",
        ),
        QualityResult(
            "reconciliation",
            True,
            abs(raw_lines - sales - quarantined),
            0,
            f"{raw_lines} raw lines (of which {split_trim_lines} of 17 fields, split trim rejoined) = "
            f"{sales} sales + {quarantined} quarantined lines of the run's files",
        ),
    ]
