"""Facts about the source data set (car_prices.csv) that every stage agrees on."""

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
