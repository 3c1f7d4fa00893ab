"""Facts about the source data set (car_prices.csv) that every stage agrees on (docs/dataset.md)."""

from collections.abc import Sequence

# The header of car_prices.csv, in file order. Raw tables keep exactly these names.
HEADER: tuple[str, ...] = (
    "year",
    "make",
    "model",
    "trim",
    "body",
    "transmission",
    "vin",
    "state",
    "condition",
    "odometer",
    "color",
    "interior",
    "seller",
    "mmr",
    "sellingprice",
    "saledate",
)
HEADER_LINE: str = ",".join(HEADER)
FIELD_COUNT: int = len(HEADER)

# Trims the file writes without quotes although they hold a comma: such a trim takes two fields, so
# its line has FIELD_COUNT + 1 fields, every one of them in order after the split. The real file has
# one (26 lines of 2015 Volkswagen Jetta, docs/dataset.md); "Navitgation" is its spelling.
SPLIT_TRIMS: frozenset[str] = frozenset({"SE PZEV w/Connectivity, Navitgation"})
TRIM_INDEX: int = HEADER.index("trim")


def split_trim(fields: Sequence[str]) -> str | None:
    """The known trim that a line of FIELD_COUNT + 1 fields splits across its trim and body fields
    (rejoined with ", "), or None when the line is not such a line.

    The fields are the line's fields as written. Any other line of FIELD_COUNT + 1 fields has no
    known repair: where its extra comma is cannot be told.
    """
    if len(fields) != FIELD_COUNT + 1:
        return None
    trim = f"{fields[TRIM_INDEX]}, {fields[TRIM_INDEX + 1]}"
    return trim if trim in SPLIT_TRIMS else None
