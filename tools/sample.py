"""Deterministic generator of sample files shaped like the real ``car_prices.csv``.

The real data set (558,837 data lines of US/Canadian used-car auction sales) cannot be downloaded on
our machines, so tests and ``make run`` use a synthetic file with the same 16 columns
(``shared.dataset.HEADER``), the same defects in the same numbers, and the real file's profile
(distinct values, blanks per column; docs/dataset.md gives the figures):

* makes mostly canonical (``Ford``), some lower case (``ford``), aliases (``ford tk``, ``vw``,
  ``mercedes-b``, ``landrover``) and blank ones (with model, trim and body blank too); a long tail
  of rare models and trims;
* body styles in mixed case (``SUV``/``suv``), blank transmissions (about 1 line in 9);
* lower-case VINs, about 2 % of them resold (the same car again, at another date), a few blank;
* two condition scales mixed (1-5 with decimals such as ``3.5``, and 10-49), suspicious odometers
  (``1``, ``999999``), blank odometers and market estimates;
* ``—`` (U+2014) for unknown colours, sellers with doubled spaces where a comma was removed, sellers
  containing a comma or a double quote (written quoted, RFC 4180), sale prices of ``1``, a few lines
  without price and sale date; a few very large sellers and a long tail of small ones;
* sale dates like ``Tue Dec 16 2014 12:30:00 GMT-0800 (PST)`` (``GMT-0700 (PDT)`` in summer);
* 2015 Volkswagen Jetta lines whose trim ``SE PZEV w/Connectivity, Navitgation`` is written without
  quotes, so the line has 17 fields: the trim split in two, transmission blank, every other field
  (the sale date included) in order after the split.

Usage::

    from tools.sample import write_sample
    counts = write_sample("data/sample.csv", rows=5000, seed=42)

or ``pipeline sample --rows 5000 --out data/sample.csv`` (``python -m tools.sample`` works too).

Determinism: all randomness comes from one ``numpy.random.default_rng(seed)`` consumed in a fixed
order, so the same (rows, seed) always gives a byte-identical file (the catalog of rare models,
trims and dealers is drawn once from a fixed seed of its own). Rows are made CHUNK_ROWS at a time,
vectorised with numpy, and written as they are made, so memory stays bounded for any size.

Defects are planted with exact counts: PLANTED_LINES gives the lines of each defect in the real
file; a file of ``rows`` lines gets ``round(lines * rows / REAL_FILE_LINES)`` of them (at least one
whenever rows >= MIN_ROWS_FOR_EVERY_DEFECT), spread evenly over the chunks, so even a small sample
contains every defect class. The counts that ``write_sample`` returns are measured on the rows
actually written (see COUNT_KEYS for their definitions).
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from shared.dataset import FIELD_COUNT, HEADER, HEADER_LINE, SPLIT_TRIMS

# ---------------------------------------------------------------------------------------------------
# Size and planting
# ---------------------------------------------------------------------------------------------------
CHUNK_ROWS = 50_000  # rows made and written per step; bounds memory
MIN_ROWS_FOR_EVERY_DEFECT = 200  # from this many rows on, every planted defect appears at least once

# Lines of the real file (558,837 lines) that carry each planted defect, from its published profile
# (docs/dataset.md) where it gives a figure, otherwise approximate value counts of the public file.
REAL_FILE_LINES = 558_837
PLANTED_LINES: dict[str, int] = {
    "vw_split_trim": 26,  # 2015 Jetta lines of 17 fields: the trim's comma is not quoted
    "make_blank": 10_301,  # model, trim and body are blank on these lines too
    "make_lowercase": 11_200,  # kia, ford, bmw, ...
    "make_alias": 2_200,  # ford tk, chev truck, vw, mercedes-b, landrover, ...
    "model_blank_extra": 98,  # model blank on lines whose make is known (10,399 blank in all)
    "trim_blank_extra": 350,  # 10,651 blank in all
    "body_blank_extra": 2_894,  # 13,195 blank in all
    "transmission_blank": 65_326,  # 65,352 in all, with the 17-field lines' blank ones
    "transmission_manual": 17_537,
    "vin_blank": 4,
    "vin_repeat": 11_200,  # about 2 % of lines resell a car already in the file
    "condition_blank": 11_820,
    "condition_five_point": 83_800,  # about 15 % of lines graded 1-5 instead of 10-49
    "odometer_blank": 94,
    "odometer_one": 1_700,
    "odometer_max": 110,  # 999999
    "color_em_dash": 24_700,  # "—"
    "interior_em_dash": 17_100,
    "colors_blank": 749,  # color and interior both blank, on the same lines
    "mmr_blank": 38,
    "seller_quoted": 1_100,  # seller with a comma, written quoted: "ford motor credit company,llc"
    "seller_doubled_quote": 56,  # seller with a double quote, written quoted and doubled
    "sellingprice_one": 11,  # a few sale prices of 1
    "price_and_date_blank": 12,  # sellingprice and saledate both blank, on the same lines
}

# Shares of ordinary (non-defect) variation, drawn row by row.
BODY_LOWERCASE_SHARE = 0.17  # real: about 1 body in 6 is lower case (sedan, suv, crew cab)
CAPTIVE_SELLER_SHARE = 0.25  # real: makers' finance arms sell about a quarter of their own cars
TOP_SELLER_SHARE = 0.32  # of the other lines: fleets and banks (real: top 30 ≈ 24 % of all lines)
REPEAT_MILES = (200, 6_000)  # miles driven between two sales of the same car
LATE_MODEL_YEAR = 2015  # model-year-2015 cars are only sold from LATE_MODEL_YEAR_ON_SALE on
LATE_MODEL_YEAR_ON_SALE = dt.date(2014, 9, 1)

# ---------------------------------------------------------------------------------------------------
# Reference tables
# ---------------------------------------------------------------------------------------------------
# make: (weight ≈ thousands of lines in the real file, VIN world-manufacturer codes, captive sellers)
MAKES: dict[str, tuple[float, str, str]] = {
    "Ford": (93.6, "1fa 1fm 1ft 3fa 2fm", "ford motor credit company llc"),
    "Chevrolet": (60.2, "1g1 1gn 1gc 2g1", "gm financial|ally financial"),
    "Nissan": (53.9, "1n4 jn8 5n1 3n1 1n6", "nissan-infiniti lt|nissan infiniti lt"),
    "Toyota": (39.9, "4t1 jtd 5td 2t1 jtm", "tdaf remarketing|toyota financial services"),
    "Dodge": (30.7, "2d4 1d7 2c3 1b3 3d7", "chrysler capital|chrysler group llc"),
    "Honda": (27.2, "1hg 5j6 2hg 5fn jhm", "honda financial services|ahfc/honda lease trust/hvt  inc."),
    "Hyundai": (21.8, "5np kmh 5nm", "hyundai motor finance|hyundai motor america"),
    "BMW": (
        20.7,
        "wba 5ux wbx",
        "financial services remarketing (lease)|financial services remarketing (bmw int)",
    ),
    "Kia": (18.1, "knd kna 5xy", "kia motors america  inc|kia motors finance"),
    "Chrysler": (17.3, "2c3 2a4 1c3 2c4", "chrysler capital|chrysler group llc"),
    "Mercedes-Benz": (17.1, "wdd wdc 4jg wdb", "mercedes-benz financial services"),
    "Jeep": (15.4, "1j4 1c4 1j8", "chrysler capital|chrysler group llc"),
    "Infiniti": (15.3, "jnk jn1 5n3", "nissan-infiniti lt|infiniti financial services"),
    "Volkswagen": (12.6, "3vw wvw 1vw wvg", "volkswagen credit inc"),
    "Lexus": (11.9, "jth 2t2 jtj", "lexus financial services|tdaf remarketing"),
    "GMC": (10.5, "1gt 2gk 1gk", "gm financial|ally financial"),
    "Mazda": (8.4, "jm1 1yv jm3", "mazda motor of america  inc"),
    "Cadillac": (7.5, "1g6 1gy", "gm financial|ally financial"),
    "Acura": (5.9, "19u 2hn jh4", "honda financial services"),
    "Audi": (5.9, "wau wa1", "audi financial services|volkswagen credit inc"),
    "Lincoln": (5.7, "3ln 2lm 1ln", "ford motor credit company llc"),
    "Buick": (5.4, "1g4 5ga 2g4", "gm financial|ally financial"),
    "Subaru": (5.1, "4s4 jf1 jf2 4s3", "subaru motors finance"),
    "Ram": (4.6, "1c6 3c6 3c7", "chrysler capital|chrysler group llc"),
    "Pontiac": (4.5, "1g2 2g2 5y2", "ally financial"),
    "Mitsubishi": (4.2, "4a3 ja3 ja4", "mitsubishi motors credit of america"),
    "Volvo": (3.4, "yv1 yv4", "volvo car financial services"),
    "MINI": (3.2, "wmw", "financial services remarketing (lease)"),
    "Saturn": (2.9, "5gz 1g8 3gs", "ally financial"),
    "Mercury": (2.0, "2me 4m2 3me", "ford motor credit company llc"),
    "Land Rover": (1.9, "sal", "jaguar land rover na  llc"),
    "Scion": (1.7, "jtk jtl", "tdaf remarketing"),
    "Jaguar": (1.5, "saj", "jaguar land rover na  llc"),
    "Porsche": (1.4, "wp0 wp1", "porsche financial services"),
    "Suzuki": (1.0, "js2 js3 2s3", "american suzuki financial"),
    "FIAT": (0.9, "3c3 zfb", "chrysler capital"),
    "HUMMER": (0.8, "5gt 5gr", "ally financial"),
    "Saab": (0.5, "ys3 5s3", "saab financial services"),
    # rare makes: a few to a few hundred lines each
    "smart": (0.35, "wme", "mercedes-benz financial services"),
    "Isuzu": (0.2, "4s2 jal", "ally financial"),
    "Oldsmobile": (0.18, "1g3", "ally financial"),
    "Bentley": (0.12, "scb", "bentley financial services"),
    "Maserati": (0.1, "zam", "maserati capital"),
    "Plymouth": (0.03, "1p3 1p4", "ally financial"),
    "Aston Martin": (0.025, "scf", "aston martin financial services"),
    "Geo": (0.02, "1y1 2c1", "ally financial"),
    "Tesla": (0.02, "5yj", "tesla motors"),
    "Rolls-Royce": (0.02, "sca", "rolls-royce motor cars na"),
    "Ferrari": (0.02, "zff", "ferrari financial services"),
    "Fisker": (0.012, "yh4", "fisker automotive"),
    "SRT": (0.012, "1c3", "chrysler capital"),
    "Lamborghini": (0.008, "zhw", "lamborghini financial services"),
    "Daewoo": (0.008, "kla", "ally financial"),
    "Lotus": (0.007, "scc", "lotus cars usa"),
    "Maybach": (0.007, "wdb", "mercedes-benz financial services"),
    "McLaren": (0.007, "sbm", "mclaren automotive"),
    "Alfa Romeo": (0.007, "zar", "alfa romeo financial services"),
    "AM General": (0.007, "137", "am general llc"),
    "Airstream": (0.007, "1fd", "airstream inc"),
}

# make: ((model, bodies "|"-separated, trims "|"-separated, weight within the make, new price in $1000), ...)
MODELS: dict[str, tuple[tuple[str, str, str, int, int], ...]] = {
    "Ford": (
        ("Fusion", "Sedan", "SE|S|SEL|Titanium", 20, 24),
        ("Escape", "SUV", "XLT|SE|Limited|Titanium", 15, 26),
        ("F-150", "SuperCrew|SuperCab|Regular Cab", "XLT|Lariat|XL|FX4|King Ranch", 15, 38),
        ("Focus", "Sedan|Hatchback", "SE|S|SEL|Titanium", 14, 19),
        ("Explorer", "SUV", "XLT|Limited|Base|Eddie Bauer", 10, 35),
        ("Edge", "SUV", "SEL|SE|Limited", 8, 32),
        ("Mustang", "Coupe|Convertible", "V6|GT|GT Premium|V6 Premium", 6, 30),
        ("Taurus", "Sedan", "SEL|Limited|SE", 6, 28),
        ("E-Series Van", "E-Series Van", "E-250|E-350 Super Duty", 3, 30),
        ("Ranger", "SuperCab|Regular Cab", "XLT|Sport|XL", 3, 20),
        ("Transit Connect", "Transit Van|Minivan", "XLT|XL", 3, 25),
    ),
    "Chevrolet": (
        ("Impala", "Sedan", "LT Fleet|LS Fleet|LT|LTZ", 20, 27),
        ("Malibu", "Sedan", "1LT|LS|LT|LTZ", 18, 23),
        ("Silverado 1500", "Crew Cab|Extended Cab|Regular Cab", "LT|Work Truck|LTZ", 18, 38),
        ("Cruze", "Sedan", "1LT|LS|ECO|LTZ", 12, 19),
        ("Equinox", "SUV", "LT|LS|LTZ", 10, 27),
        ("Tahoe", "SUV", "LT|LTZ|LS", 5, 48),
        ("Traverse", "SUV", "LT|LS|LTZ", 5, 33),
        ("Camaro", "Coupe|Convertible", "1LT|2LT|SS", 4, 30),
        ("Express Cargo", "Van", "2500|3500", 3, 30),
        ("Express Cutaway", "Cutaway", "3500", 1, 32),
    ),
    "Nissan": (
        ("Altima", "Sedan|Coupe", "2.5 S|2.5|2.5 SV|3.5 SL", 40, 24),
        ("Sentra", "Sedan", "2.0|2.0 S|SV|SR", 15, 18),
        ("Rogue", "SUV", "S|SV|SL", 12, 25),
        ("Maxima", "Sedan", "3.5 SV|3.5 S|3.5 SL", 8, 33),
        ("Versa", "Sedan|Hatchback", "1.6 S|1.8 S|SV", 8, 15),
        ("Murano", "SUV", "S|SL|LE", 6, 33),
        ("Pathfinder", "SUV", "S|SV|SL", 5, 32),
        ("Frontier", "Crew Cab|King Cab", "SV|S|PRO-4X", 4, 25),
        ("Titan", "Crew Cab|King Cab", "SV|SE|PRO-4X", 2, 35),
    ),
    "Toyota": (
        ("Camry", "Sedan", "LE|SE|XLE|Hybrid", 30, 25),
        ("Corolla", "Sedan", "LE|S|L|CE", 25, 18),
        ("Prius", "Hatchback", "Two|Three|Four|Base", 10, 26),
        ("RAV4", "SUV", "LE|Limited|XLE|Base", 10, 26),
        ("Sienna", "Minivan", "LE|XLE|Limited|CE", 6, 30),
        ("Tacoma", "Double Cab|Access Cab|Xtracab", "PreRunner V6|Base|V6", 6, 27),
        ("Highlander", "SUV", "Base|Limited|SE", 6, 33),
        ("4Runner", "SUV", "SR5|Limited", 4, 35),
        ("Tundra", "CrewMax Cab|Double Cab", "SR5|Limited", 3, 36),
    ),
    "Dodge": (
        ("Grand Caravan", "Minivan", "SXT|SE|Crew|R/T", 35, 25),
        ("Charger", "Sedan", "SE|SXT|R/T", 15, 28),
        ("Avenger", "Sedan", "SXT|SE|Express", 12, 22),
        ("Journey", "SUV", "SXT|SE|Crossroad|R/T", 12, 23),
        ("Ram Pickup 1500", "Quad Cab|Crew Cab|Regular Cab", "SLT|ST|Laramie", 12, 32),
        ("Durango", "SUV", "SXT|Citadel|Limited", 6, 33),
        ("Caliber", "Hatchback", "SXT|SE|Mainstreet", 6, 18),
        ("Dakota", "Quad Cab|Club Cab", "SLT|ST", 4, 24),
        ("Ram Van", "Ram Van", "1500|2500", 1, 24),
    ),
    "Honda": (
        ("Accord", "Sedan|Coupe", "EX-L|LX|EX|SE|Sport", 35, 25),
        ("Civic", "Sedan|Coupe", "LX|EX|EX-L|Si|HF", 28, 19),
        ("CR-V", "SUV", "EX|LX|EX-L", 18, 26),
        ("Odyssey", "Minivan", "EX-L|EX|Touring|LX", 10, 32),
        ("Pilot", "SUV", "EX-L|EX|Touring|LX", 8, 33),
    ),
    "Hyundai": (
        ("Sonata", "Sedan", "GLS|SE|Limited|GLS PZEV", 35, 23),
        ("Elantra", "Sedan|Elantra Coupe", "GLS|Limited|SE|GS", 30, 19),
        ("Santa Fe", "SUV", "GLS|Sport|Limited|SE", 15, 28),
        ("Tucson", "SUV", "GLS|Limited|SE", 10, 24),
        ("Accent", "Sedan|Hatchback", "GLS|GS|SE", 7, 15),
        ("Genesis", "Sedan", "3.8|4.6", 3, 38),
        ("Genesis Coupe", "Genesis Coupe", "2.0T|3.8 Grand Touring", 3, 27),
    ),
    "BMW": (
        ("3 Series", "Sedan|Coupe|Convertible", "328i|328i SULEV|328i xDrive|335i", 45, 42),
        ("5 Series", "Sedan", "528i|535i|528i xDrive", 20, 55),
        ("X5", "SUV", "xDrive35i|xDrive30i|xDrive50i", 10, 60),
        ("X3", "SUV", "xDrive28i|xDrive35i", 8, 43),
        ("7 Series", "Sedan", "750Li|740Li", 4, 85),
    ),
    "Kia": (
        ("Optima", "Sedan", "LX|EX|SX", 30, 23),
        ("Sorento", "SUV", "LX|EX|SX", 25, 28),
        ("Soul", "Wagon", "Base|+|!", 15, 18),
        ("Forte", "Sedan|Koup", "EX|LX|SX", 15, 18),
        ("Sportage", "SUV", "LX|EX", 10, 24),
        ("Rio", "Sedan", "LX|EX", 5, 15),
    ),
    "Chrysler": (
        ("Town and Country", "Minivan", "Touring|Touring-L|Limited|LX", 35, 31),
        ("200", "Sedan|Convertible", "Limited|Touring|LX", 30, 23),
        ("300", "Sedan", "Base|Limited|Touring|300C", 25, 32),
        ("Sebring", "Sedan|Convertible", "Touring|Limited|LX", 8, 22),
        ("PT Cruiser", "Wagon", "Touring|Base|Limited", 5, 17),
    ),
    "Mercedes-Benz": (
        ("C-Class", "Sedan|Coupe", "C250|C300 4MATIC|C300 Sport|C300 Luxury", 30, 40),
        ("E-Class", "Sedan|Coupe|Convertible", "E350|E350 Luxury|E350 4MATIC", 25, 55),
        ("M-Class", "SUV", "ML350|ML350 4MATIC", 12, 50),
        ("GL-Class", "SUV", "GL450 4MATIC", 6, 65),
        ("S-Class", "Sedan", "S550|S550 4MATIC", 6, 95),
        ("GLK-Class", "SUV", "GLK350|GLK350 4MATIC", 6, 38),
    ),
    "Jeep": (
        ("Grand Cherokee", "SUV", "Laredo|Limited|Overland", 35, 36),
        ("Wrangler", "SUV", "Sport|Unlimited Sahara|Unlimited Sport|Rubicon", 20, 30),
        ("Liberty", "SUV", "Sport|Limited", 15, 23),
        ("Patriot", "SUV", "Sport|Latitude", 15, 19),
        ("Compass", "SUV", "Sport|Latitude", 12, 21),
        ("Cherokee", "SUV", "Latitude|Sport|Limited", 8, 27),
    ),
    "Infiniti": (
        ("G Sedan", "G Sedan", "G37 Journey|G37x|G35x|G25 Journey", 35, 36),
        ("G Coupe", "G Coupe", "G37 Journey|G37x", 10, 40),
        ("QX56", "SUV", "Base|4WD", 10, 58),
        ("FX35", "SUV", "Base|AWD", 10, 45),
        ("M37", "Sedan", "Base|x", 8, 50),
        ("Q50", "Sedan", "Premium|Sport|Hybrid Premium", 8, 40),
        ("EX35", "SUV", "Journey|Base", 6, 38),
        ("Q60 Coupe", "Q60 Coupe", "Journey|Base", 3, 42),
        ("Q60 Convertible", "Q60 Convertible", "Base", 2, 50),
        ("G Convertible", "G Convertible", "G37", 3, 48),
        ("G37 Convertible", "G37 Convertible", "Base|Sport", 2, 48),
    ),
    "Volkswagen": (
        ("Jetta", "Sedan", "SE|S|SE PZEV|TDI|SEL", 40, 22),
        ("Passat", "Sedan", "SE|S|2.5L SE|TDI SE", 25, 26),
        ("Beetle", "Hatchback|Beetle Convertible", "2.5L|1.8T", 8, 22),
        ("Tiguan", "SUV", "SE|S|SEL", 8, 28),
        ("CC", "Sedan", "Sport|Luxury", 6, 32),
        ("Golf", "Hatchback", "2.5L|TDI", 6, 21),
        ("Routan", "Minivan", "SE|SEL", 3, 28),
        ("Touareg", "SUV", "VR6|TDI", 3, 48),
    ),
    "Lexus": (
        ("RX 350", "SUV", "Base", 35, 45),
        ("ES 350", "Sedan", "Base", 30, 38),
        ("IS 250", "Sedan", "Base|AWD", 20, 36),
        ("GS 350", "Sedan", "Base", 8, 50),
        ("LS 460", "Sedan", "Base|L", 5, 75),
        ("GX 470", "SUV", "Base", 4, 48),
    ),
    "GMC": (
        ("Sierra 1500", "Crew Cab|Extended Cab", "SLE|SLT|Work Truck", 35, 38),
        ("Acadia", "SUV", "SLT-1|SLE-1|SLT-2|Denali", 25, 35),
        ("Terrain", "SUV", "SLE-1|SLE-2|SLT-1", 20, 27),
        ("Yukon", "SUV", "SLT|Denali|SLE", 15, 50),
        ("Savana Cargo", "Van", "2500|3500", 5, 30),
    ),
    "Mazda": (
        ("Mazda3", "Sedan|Hatchback", "i Sport|i Touring|s Grand Touring", 40, 19),
        ("Mazda6", "Sedan", "i Sport|i Touring|s Grand Touring", 20, 23),
        ("CX-7", "SUV", "Sport|Touring|Grand Touring", 12, 26),
        ("CX-9", "SUV", "Touring|Sport", 10, 32),
        ("CX-5", "SUV", "Sport|Touring", 10, 25),
        ("MX-5 Miata", "Convertible", "Sport|Grand Touring", 4, 27),
        ("Mazda5", "Minivan", "Sport|Touring", 4, 20),
        ("B-Series Truck", "Cab Plus|Regular Cab|Cab Plus 4", "B2300|B4000 SE", 2, 18),
    ),
    "Cadillac": (
        ("CTS", "Sedan|CTS Coupe", "3.0L Luxury|Base|Performance", 35, 42),
        ("SRX", "SUV", "Luxury Collection|Base|Performance", 25, 40),
        ("Escalade", "SUV", "Base|Luxury", 12, 65),
        ("DTS", "Sedan", "Luxury I|Base", 10, 44),
        ("ATS", "Sedan", "2.0T Luxury|2.5L", 8, 34),
        ("STS", "Sedan", "V6", 6, 45),
        ("CTS Wagon", "CTS Wagon", "3.0L Luxury|Base", 3, 42),
        ("CTS-V", "CTS-V Coupe|CTS-V Wagon", "Base", 2, 62),
    ),
    "Acura": (
        ("TL", "Sedan", "Base|Tech|SH-AWD", 35, 36),
        ("MDX", "SUV", "Technology Package|Base|Advance", 25, 45),
        ("TSX", "Sedan", "Base|Technology Package", 20, 30),
        ("RDX", "SUV", "Base|Technology Package", 15, 35),
        ("RL", "Sedan", "SH-AWD", 5, 47),
        ("TSX Sport Wagon", "TSX Sport Wagon", "Base|Technology Package", 3, 32),
    ),
    "Audi": (
        ("A4", "Sedan", "2.0T Premium|2.0T Premium Plus quattro|2.0T quattro", 40, 37),
        ("A6", "Sedan", "3.0T Premium Plus quattro|2.0T Premium", 15, 50),
        ("Q5", "SUV", "2.0T Premium quattro|3.2 Premium quattro", 15, 42),
        ("Q7", "SUV", "3.0 quattro Premium Plus", 10, 55),
        ("A5", "Coupe|Convertible", "2.0T Premium Plus quattro", 10, 42),
        ("A8", "Sedan", "4.2 quattro L", 3, 80),
    ),
    "Lincoln": (
        ("MKZ", "Sedan", "Base|Hybrid", 30, 36),
        ("MKX", "SUV", "Base", 20, 40),
        ("Town Car", "Sedan", "Signature Limited|Signature L", 15, 45),
        ("Navigator", "SUV", "Base|Ultimate", 10, 58),
        ("MKS", "Sedan", "Base|EcoBoost", 10, 42),
    ),
    "Buick": (
        ("LaCrosse", "Sedan", "CXL|Leather|Premium", 30, 33),
        ("Enclave", "SUV", "Leather|CXL|Premium", 25, 40),
        ("Lucerne", "Sedan", "CXL|CX", 15, 30),
        ("Regal", "Sedan", "Premium 1|GS|Turbo", 10, 30),
        ("Verano", "Sedan", "Base|Convenience Group|Leather Group", 10, 24),
    ),
    "Subaru": (
        ("Outback", "Wagon", "2.5i Premium|2.5i Limited|3.6R Limited", 35, 28),
        ("Forester", "SUV", "2.5X|2.5X Premium|2.5i Premium", 25, 26),
        ("Impreza", "Sedan|Hatchback|Wagon", "2.0i|2.0i Premium|2.5i", 20, 20),
        ("Legacy", "Sedan", "2.5i Premium|2.5i Limited", 15, 24),
    ),
    "Ram": (
        ("1500", "Crew Cab|Quad Cab|Regular Cab", "SLT|Tradesman|Big Horn|Laramie", 60, 36),
        ("2500", "Crew Cab|Mega Cab", "SLT|Laramie", 25, 45),
        ("ProMaster Cargo Van", "Promaster Cargo Van", "1500 136 WB|2500 159 WB", 10, 32),
        ("C/V", "Minivan", "Tradesman", 5, 24),
    ),
    "Pontiac": (
        ("G6", "Sedan|Coupe|Convertible", "Base|GT|SE", 35, 21),
        ("Grand Prix", "Sedan", "Base|GT", 20, 24),
        ("Vibe", "Wagon", "Base|1.8L", 10, 18),
        ("G5", "Coupe", "Base", 10, 16),
        ("Montana SV6", "Minivan", "Base", 5, 26),
        ("Solstice", "Convertible", "Base|GXP", 3, 25),
    ),
    "Mitsubishi": (
        ("Galant", "Sedan", "ES|SE", 30, 22),
        ("Lancer", "Sedan", "ES|GTS|ES Sport", 30, 18),
        ("Outlander", "SUV", "ES|SE|LS", 15, 24),
        ("Outlander Sport", "SUV", "ES|SE", 10, 22),
        ("Eclipse", "Coupe|Convertible", "GS|GT", 10, 23),
        ("Endeavor", "SUV", "LS", 5, 28),
    ),
    "Volvo": (
        ("S60", "Sedan", "T5|2.5T|T6", 30, 35),
        ("XC90", "SUV", "3.2|V8", 20, 42),
        ("XC60", "SUV", "3.2|T6", 15, 38),
        ("S80", "Sedan", "3.2|T6", 15, 40),
        ("S40", "Sedan", "2.4i|T5", 15, 26),
        ("C70", "Convertible", "T5", 5, 40),
    ),
    "MINI": (
        ("Cooper", "Hatchback", "Base", 45, 22),
        ("Cooper S", "Hatchback", "Base", 25, 26),
        ("Cooper Countryman", "SUV", "S ALL4|Base", 15, 27),
        ("Cooper Clubman", "Wagon", "S|Base", 10, 25),
        ("Cooper Convertible", "Convertible", "Base|S", 5, 27),
    ),
    "Saturn": (
        ("VUE", "SUV", "XE|XR", 35, 23),
        ("Aura", "Sedan", "XE|XR", 30, 22),
        ("ION", "Sedan|Coupe", "2|3", 20, 16),
        ("Outlook", "SUV", "XE|XR", 10, 30),
        ("Sky", "Convertible", "Base|Red Line", 5, 27),
    ),
    "Mercury": (
        ("Grand Marquis", "Sedan", "LS|GS", 40, 28),
        ("Milan", "Sedan", "Premier|Base", 20, 22),
        ("Mariner", "SUV", "Base|Premier", 20, 24),
        ("Sable", "Sedan", "Base|Premier", 10, 26),
        ("Mountaineer", "SUV", "Luxury|Premier", 10, 32),
    ),
    "Land Rover": (
        ("Range Rover Sport", "SUV", "HSE|Supercharged", 40, 65),
        ("Range Rover", "SUV", "HSE|Supercharged", 20, 85),
        ("LR4", "SUV", "HSE|Base", 15, 52),
        ("LR2", "SUV", "HSE|Base", 15, 37),
        ("Range Rover Evoque", "SUV", "Pure|Prestige", 10, 48),
    ),
    "Scion": (
        ("tC", "Coupe", "Base|Release Series 6.0", 45, 20),
        ("xB", "Wagon", "Base", 35, 18),
        ("xD", "Hatchback", "Base", 15, 16),
        ("FR-S", "Coupe", "Base", 5, 26),
    ),
    "Jaguar": (
        ("XF", "Sedan", "Base|Supercharged|Premium", 35, 55),
        ("XJ", "Sedan", "XJL|Vanden Plas|XJ8", 30, 75),
        ("XK", "Coupe|Convertible", "XKR|Base", 15, 85),
        ("X-Type", "Sedan", "3.0", 10, 35),
        ("S-Type", "Sedan", "3.0|4.2", 10, 45),
    ),
    "Porsche": (
        ("Cayenne", "SUV", "S|Base|Turbo", 40, 65),
        ("911", "Coupe|Convertible", "Carrera|Carrera S|Carrera 4S", 25, 95),
        ("Boxster", "Convertible", "Base|S", 15, 55),
        ("Panamera", "Hatchback", "4|4S", 15, 90),
        ("Cayman", "Coupe", "Base|S", 5, 55),
    ),
    "Suzuki": (
        ("SX4", "Hatchback|Sedan", "Crossover|LE|Base", 35, 17),
        ("Grand Vitara", "SUV", "Premium|Base", 25, 22),
        ("Forenza", "Sedan", "Base", 15, 15),
        ("XL7", "SUV", "Base", 15, 25),
        ("Kizashi", "Sedan", "SE|GTS", 10, 22),
    ),
    "FIAT": (
        ("500", "Hatchback", "Pop|Lounge|Sport|Abarth", 70, 17),
        ("500L", "Wagon", "Easy|Trekking|Pop", 30, 21),
    ),
    "HUMMER": (
        ("H3", "SUV", "Base|Luxury|Adventure", 65, 33),
        ("H2", "SUV", "Base|Luxury", 35, 55),
    ),
    "Saab": (
        ("9-3", "Sedan|Convertible", "2.0T|Aero", 70, 30),
        ("9-5", "Sedan|Wagon", "Arc|Aero", 30, 38),
    ),
    "smart": (("fortwo", "Hatchback|Convertible", "pure|passion", 100, 14),),
    "Isuzu": (("Ascender", "SUV", "S|LS", 60, 30), ("Rodeo", "SUV", "S|LS", 40, 24)),
    "Oldsmobile": (("Alero", "Sedan", "GL|GLS", 50, 20), ("Aurora", "Sedan", "Base", 50, 32)),
    "Bentley": (("Continental GT", "Coupe", "Base|Speed", 100, 190),),
    "Maserati": (
        ("Quattroporte", "Sedan", "S|GTS", 60, 110),
        ("GranTurismo", "GranTurismo Convertible|Coupe", "S|Sport", 40, 130),
    ),
    "Plymouth": (("Voyager", "Minivan", "SE|Base", 60, 20), ("Neon", "Sedan", "Highline", 40, 14)),
    "Aston Martin": (("V8 Vantage", "Coupe", "Base", 100, 120),),
    "Geo": (("Prizm", "Sedan", "LSi|Base", 100, 13),),
    "Tesla": (("Model S", "Sedan", "85|P85", 100, 80),),
    "Rolls-Royce": (("Ghost", "Sedan", "Base", 100, 250),),
    "Ferrari": (("California", "Convertible", "Base", 100, 200),),
    "Fisker": (("Karma", "Sedan", "EcoSport|EcoChic", 100, 100),),
    "SRT": (("Viper", "Coupe", "GTS|Base", 100, 100),),
    "Lamborghini": (("Gallardo", "Coupe", "LP560-4", 100, 200),),
    "Daewoo": (("Lanos", "Sedan", "S|SE", 100, 10),),
    "Lotus": (("Elise", "Convertible", "Base", 100, 50),),
    "Maybach": (("57", "Sedan", "Base", 100, 350),),
    "McLaren": (("MP4-12C", "Coupe", "Base", 100, 230),),
    "Alfa Romeo": (("4C", "Coupe", "Base", 100, 55),),
    "AM General": (("Hummer", "SUV", "Base", 100, 60),),
    "Airstream": (("Interstate", "Van", "Lounge", 100, 80),),
}

# alias written in the make column: (canonical make, models it is used for ("" = any), weight)
MAKE_ALIASES: dict[str, tuple[str, str, int]] = {
    "ford tk": ("Ford", "F-150|Ranger|E-Series Van", 25),
    "ford truck": ("Ford", "F-150|Ranger", 10),
    "chev truck": ("Chevrolet", "Silverado 1500|Express Cargo", 15),
    "dodge tk": ("Dodge", "Ram Pickup 1500|Dakota", 10),
    "gmc truck": ("GMC", "Sierra 1500|Savana Cargo", 8),
    "hyundai tk": ("Hyundai", "Santa Fe|Tucson", 5),
    "mazda tk": ("Mazda", "B-Series Truck", 5),
    "vw": ("Volkswagen", "", 8),
    "mercedes": ("Mercedes-Benz", "", 6),
    "mercedes-b": ("Mercedes-Benz", "", 4),
    "landrover": ("Land Rover", "", 4),
}
CANONICAL_MAKES: frozenset[str] = frozenset(MAKES)
# Only the commoner makes are ever written in lower case (the real file has about 96 spellings of
# about 60 makes): the first LOWERCASE_MAKE_COUNT of MAKES.
LOWERCASE_MAKE_COUNT = 26
LOWERCASE_MAKES: frozenset[str] = frozenset(make.lower() for make in list(MAKES)[:LOWERCASE_MAKE_COUNT])

# The long tail of rare models and trims (the real file has about 970 models and 1,960 trims): each
# model gets MODEL_VARIANTS_PER_MODEL rarer variants ("<model> <suffix>", MODEL_VARIANT_SHARE of its
# lines each, same bodies and trims), and each model TAIL_TRIMS_PER_MODEL rarer trims
# ("<trim> <package>", together TAIL_TRIM_SHARE of its lines). Drawn once, from CATALOG_SEED.
MODEL_SUFFIXES = (
    "Hybrid", "Sport", "Wagon", "Coupe", "Convertible", "Cargo", "4WD", "AWD", "HD", "LWB", "Classic",
    "Plus", "Limited", "Crossover", "XL", "Touring", "Heritage", "Diesel", "Turbo", "Sportback", "Eco",
)  # fmt: skip
MODEL_VARIANTS_PER_MODEL = 3
MODEL_VARIANT_SHARE = 0.02
TRIM_PACKAGES = (
    "AWD", "FWD", "4WD", "4x4", "V6", "V8", "Hybrid", "Premium", "Luxury", "Sport", "Limited",
    "Technology", "Navigation", "PZEV", "SULEV", "Turbo", "Diesel", "Special Edition", "Value Edition",
    "Fleet", "Plus", "Elite", "Signature", "Touring", "w/Navigation", "Appearance Package", "Off-Road",
    "Convenience", "Leather", "Cold Weather", "Tow Package", "Moonroof", "Chrome", "Black Edition",
)  # fmt: skip
TAIL_TRIMS_PER_MODEL = 11
TAIL_TRIM_SHARE = 0.12
CATALOG_SEED = 2015  # fixed: the tails and the dealer names do not depend on the file's seed

# The Volkswagen defect: the trim, the two fields it is written as (unquoted), and the model.
VW_SPLIT_MODEL = ("Volkswagen", "Jetta")
(VW_SPLIT_TRIM,) = SPLIT_TRIMS
VW_SPLIT_WRITTEN = tuple(VW_SPLIT_TRIM.split(", "))

# model year: weight ≈ thousands of lines in the real file (skewed to recent years)
YEAR_WEIGHTS: dict[int, float] = {
    1990: 0.05, 1991: 0.07, 1992: 0.13, 1993: 0.2, 1994: 0.4, 1995: 0.7, 1996: 0.7, 1997: 1.3,
    1998: 1.9, 1999: 3.0, 2000: 4.1, 2001: 6.4, 2002: 9.7, 2003: 13.3, 2004: 17.3, 2005: 21.3,
    2006: 26.9, 2007: 30.8, 2008: 31.5, 2009: 20.6, 2010: 26.5, 2011: 48.5, 2012: 102.3,
    2013: 98.2, 2014: 81.1, 2015: 9.4,
}  # fmt: skip

# auction state: weight ≈ thousands of lines in the real file (US states, Puerto Rico, Canada)
STATE_WEIGHTS: dict[str, float] = {
    "fl": 82.9, "ca": 73.1, "pa": 53.7, "tx": 45.9, "ga": 34.7, "nj": 27.8, "il": 23.5, "nc": 21.8,
    "oh": 21.6, "tn": 20.9, "mo": 16.0, "mi": 15.5, "nv": 12.7, "va": 12.2, "md": 11.2, "wi": 9.9,
    "mn": 9.4, "az": 8.7, "co": 7.8, "wa": 7.4, "ma": 6.5, "ny": 5.7, "in": 4.3, "sc": 4.2, "ne": 4.0,
    "on": 3.4, "pr": 2.7, "ok": 2.3, "la": 2.1, "ut": 1.8, "qc": 1.2, "hi": 1.2, "ab": 1.0, "nm": 0.2,
    "ns": 0.1, "al": 0.03, "ms": 0.03,
}  # fmt: skip
CANADIAN_PROVINCES: frozenset[str] = frozenset({"on", "qc", "ab", "ns"})

# exterior / interior colour: weight ≈ thousands of lines in the real file
COLOR_WEIGHTS: dict[str, float] = {
    "black": 110.9, "white": 106.7, "silver": 83.4, "gray": 82.9, "blue": 51.1, "red": 43.6,
    "gold": 11.2, "green": 11.0, "beige": 9.2, "burgundy": 9.0, "brown": 6.7, "orange": 2.1,
    "purple": 1.6, "off-white": 1.4, "yellow": 1.3, "charcoal": 0.5, "turquoise": 0.24, "pink": 0.04,
    "lime": 0.02,
}  # fmt: skip
INTERIOR_WEIGHTS: dict[str, float] = {
    "black": 244.3, "gray": 178.6, "beige": 59.8, "tan": 44.1, "brown": 8.6, "red": 1.4, "silver": 1.1,
    "blue": 1.1, "off-white": 0.5, "purple": 0.3, "gold": 0.3, "white": 0.3, "green": 0.2,
    "burgundy": 0.2, "orange": 0.15, "yellow": 0.02,
}  # fmt: skip
UNKNOWN_COLOR = "\u2014"  # "—", the real file's marker for an unknown colour

# Fleets, banks and remarketers that sell every make: weight ≈ thousands of lines in the real file.
TOP_SELLERS: dict[str, float] = {
    "the hertz corporation": 18.3, "santander consumer": 15.3, "avis corporation": 12.5,
    "wells fargo dealer services": 7.0, "enterprise veh exchange/rental": 6.0,
    "ge fleet services for itself/servicing": 5.5, "world omni financial corp": 4.5,
    "avis rac/san leandro": 4.0, "ars/avis budget group": 3.5, "credit acceptance corp": 3.0,
    "jpmorgan chase bank n.a.": 3.0, "westlake financial services": 2.5,
    "enterprise vehicle exchange / tra / rental / tulsa": 2.4, "remarketing by ge/lease plan": 2.2,
    "u.s. bank na": 2.0, "dtg operations inc": 1.8, "capital one auto finance": 1.7,
    "hertz car sales": 1.2, "wheels exchange llc": 1.1, "enterprise rent-a-car company": 1.0,
    "regional acceptance corp": 0.9, "bank of america": 0.9, "fifth third bank": 0.7,
    "td auto finance": 0.7, "exeter finance corp": 0.6, "consumer portfolio services  inc": 0.5,
    "element fleet": 0.5, "donlen trust": 0.5, "ari fleet lt": 0.4, "lease plan usa": 0.4,
}  # fmt: skip
# The long tail of dealers: every "<place> <brand><suffix>" combination (a doubled space marks a comma
# removed from the name, as in the real file).
DEALER_PLACES = (
    "orlando", "tampa", "miami", "jacksonville", "fort myers", "sarasota", "atlanta", "savannah",
    "dallas", "houston", "austin", "san antonio", "el paso", "phoenix", "tucson", "denver",
    "san diego", "riverside", "sacramento", "fresno", "las vegas", "nashville", "memphis",
    "knoxville", "charlotte", "raleigh", "greenville", "richmond", "baltimore", "newark",
    "philadelphia", "pittsburgh", "cleveland", "columbus", "dayton", "detroit", "chicago",
    "st louis", "kansas city", "minneapolis", "milwaukee", "omaha", "seattle", "salt lake",
    "boston", "hartford", "albany", "indianapolis", "louisville", "lexington", "new orleans",
    "oklahoma city", "tulsa", "albuquerque", "honolulu", "toronto", "montreal", "calgary",
    "halifax", "san juan", "mobile", "birmingham", "little rock", "jackson", "baton rouge", "shreveport",
    "wichita", "des moines", "madison", "grand rapids", "toledo", "akron", "cincinnati", "buffalo",
    "rochester", "syracuse", "providence", "portland", "spokane", "boise", "reno", "bakersfield",
    "san jose", "oakland", "long beach", "anaheim", "tacoma", "ottawa", "edmonton", "winnipeg",
)  # fmt: skip
DEALER_BRANDS = (
    "ford", "chevrolet", "toyota", "nissan", "honda", "hyundai", "kia", "dodge chrysler jeep",
    "buick gmc", "bmw", "mazda", "subaru", "auto", "motors", "auto mall", "car center", "automotive",
    "autoplex", "imports", "superstore",
)  # fmt: skip
DEALER_SUFFIXES = ("", " llc", " inc", " sales", " group", " co", "  inc", "  llc")
DEALER_ZIPF_EXPONENT = 1.05
DEALER_ZIPF_OFFSET = 20  # flattens the head: no single dealer outsells the big fleets
# Sellers whose names need quoting (RFC 4180): with a comma, and with a double quote.
QUOTED_SELLERS = (
    "ford motor credit company,llc",
    "hyundai motor finance, co",
    "nissan north america,inc.",
    "gm financial, inc",
    "tdaf remarketing, inc",
)
DOUBLED_QUOTE_SELLERS = (
    'r & r "the car people" auto sales',
    'a "1" auto brokers llc',
)

# sale dates: share of lines per month (≈ real file: mostly Dec 2014 - Jun 2015)
MONTH_WEIGHTS: dict[tuple[int, int], float] = {
    (2014, 1): 0.1, (2014, 2): 0.1, (2014, 3): 0.1, (2014, 4): 0.1, (2014, 5): 0.1, (2014, 6): 0.1,
    (2014, 7): 0.1, (2014, 8): 0.1, (2014, 9): 0.1, (2014, 10): 0.1, (2014, 11): 0.1, (2014, 12): 9.0,
    (2015, 1): 25.0, (2015, 2): 29.0, (2015, 3): 8.0, (2015, 4): 0.5, (2015, 5): 10.0, (2015, 6): 17.0,
    (2015, 7): 0.5,
}  # fmt: skip
# Monday..Sunday. Auctions run on weekdays; no Sunday sales, so the 2 a.m. DST switch never matters.
WEEKDAY_WEIGHTS = (0.10, 0.30, 0.30, 0.20, 0.08, 0.02, 0.0)
# sale times, as written (Pacific clock): weight
SALE_TIMES: dict[str, float] = {
    "02:00:00": 2, "02:30:00": 3, "03:00:00": 3, "03:30:00": 4, "04:00:00": 3, "04:30:00": 5,
    "05:00:00": 3, "05:30:00": 4, "06:00:00": 3, "06:30:00": 4, "07:00:00": 2, "07:30:00": 2,
    "09:00:00": 3, "09:30:00": 6, "10:00:00": 5, "10:30:00": 7, "11:00:00": 5, "11:30:00": 6,
    "12:00:00": 5, "12:30:00": 8, "13:00:00": 2, "13:30:00": 2, "14:00:00": 1, "15:00:00": 1,
}  # fmt: skip
SALE_TIMES_PER_DAY = 9  # the real file has about 3,700 distinct sale times
WEEKDAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

# VIN pieces (lower case, as in the file): the 33 VIN characters (no i, o, q), the model-year codes of
# 1990..2015, the check-digit transliteration and weights.
VIN_CHARS = "0123456789abcdefghjklmnprstuvwxyz"
VIN_YEAR_CODES = "lmnprstvwxy123456789abcdef"
VIN_LETTER_VALUES = dict(zip("abcdefghjklmnprstuvwxyz", map(int, "12345678123457923456789"), strict=True))
VIN_WEIGHTS = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)
VIN_SERIAL_STEP = 387_403  # odd and not a multiple of 5: n -> n * step mod 10**6 is a bijection

# The counts returned by write_sample, measured on the written rows, reading each 17-field Volkswagen
# line as its logical record (trim rejoined, the fields after it one place back).
COUNT_KEYS = (
    "rows",  # data lines
    "vw_split_trim",  # Volkswagen lines of 17 fields, the trim split at its unquoted comma
    "make_blank",  # make ""
    "make_lowercase",  # make in LOWERCASE_MAKES (kia, ford, bmw, ...)
    "make_alias",  # make in MAKE_ALIASES
    "model_blank",
    "trim_blank",
    "body_blank",
    "body_lowercase",  # body.islower(): sedan, suv, crew cab
    "transmission_blank",
    "transmission_manual",
    "vin_blank",
    "vin_repeat",  # lines whose VIN occurred on an earlier line
    "state_canada",  # state in CANADIAN_PROVINCES
    "state_pr",
    "condition_blank",
    "condition_1_to_5",
    "condition_decimal",  # a grade with a decimal point: 3.5
    "condition_10_to_49",
    "odometer_blank",
    "odometer_1",
    "odometer_999999",
    "em_dash_color",  # color "—"
    "em_dash_interior",  # interior "—"
    "color_blank",
    "interior_blank",
    "seller_doubled_space",  # seller containing "  "
    "quoted_fields",  # written fields that need double quotes (a comma or a quote inside)
    "doubled_quote_fields",  # written fields with a '"' inside, written as '""'
    "mmr_blank",
    "sellingprice_1",
    "sellingprice_blank",  # always with the sale date blank too
    "saledate_blank",
    "saledate_pst",  # sale date ending "GMT-0800 (PST)"
    "saledate_pdt",  # sale date ending "GMT-0700 (PDT)"
)


# ---------------------------------------------------------------------------------------------------
# Compiled tables
# ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Ragged:
    """Lists of varying length stored flat: list i is flat[start[i]:start[i] + count[i]]."""

    flat: np.ndarray
    start: np.ndarray
    count: np.ndarray

    @classmethod
    def of(cls, lists: list[list[str]]) -> _Ragged:
        count = np.array([len(items) for items in lists], dtype=np.int64)
        start = np.concatenate(([0], np.cumsum(count)[:-1])).astype(np.int64)
        return cls(_objects([item for items in lists for item in items]), start, count)

    def pick(self, rng: np.random.Generator, which: np.ndarray) -> np.ndarray:
        """One uniformly chosen item of list which[j], for every j."""
        offset = (rng.random(len(which)) * self.count[which]).astype(np.int64)
        return self.flat[self.start[which] + offset]


@dataclass(frozen=True)
class _Catalog:
    """MAKES and MODELS as arrays; a catalog entry is one (make, model)."""

    make_name: np.ndarray  # canonical name per make index
    make_lower: np.ndarray  # lower-cased name per make index
    wmi: _Ragged  # VIN world-manufacturer codes per make index
    captive: _Ragged  # captive sellers per make index
    entry_make: np.ndarray  # make index per entry
    entry_model: np.ndarray
    entry_price: np.ndarray  # new price in dollars
    entry_prob: np.ndarray  # probability of drawing each entry
    bodies: _Ragged  # per entry
    trims: _Ragged  # per entry
    tail_trims: _Ragged  # per entry: its rarer trims, drawn on TAIL_TRIM_SHARE of its lines
    jetta: int  # entry of the Volkswagen Jetta
    alias_name: np.ndarray
    alias_prob: np.ndarray
    alias_entries: tuple[np.ndarray, ...]  # entries each alias is used for
    alias_entry_prob: tuple[np.ndarray, ...]


@lru_cache(maxsize=1)
def _catalog() -> _Catalog:
    make_names = list(MAKES)
    share = np.array([MAKES[make][0] for make in make_names])
    tails = np.random.default_rng(CATALOG_SEED)
    known_models = {name for models in MODELS.values() for name, *_ in models}
    entry_make, model, price, prob, bodies, trims, tail_trims = [], [], [], [], [], [], []
    for make_index, make in enumerate(make_names):
        total = sum(weight for _, _, _, weight, _ in MODELS[make])
        for name, body, trim, weight, thousands in MODELS[make]:
            model_prob = share[make_index] / share.sum() * weight / total
            suffixes = tails.choice(len(MODEL_SUFFIXES), size=MODEL_VARIANTS_PER_MODEL, replace=False)
            variants = [f"{name} {MODEL_SUFFIXES[i]}" for i in suffixes]
            variants = [v for v in variants if v not in known_models and v.split()[-1] not in body]
            own_trims = trim.split("|")
            packages = tails.choice(len(TRIM_PACKAGES), size=TAIL_TRIMS_PER_MODEL)
            rare_trims = [f"{own_trims[tails.integers(len(own_trims))]} {TRIM_PACKAGES[i]}" for i in packages]
            for variant, variant_share in ((name, 1 - MODEL_VARIANT_SHARE * len(variants)),) + tuple(
                (v, MODEL_VARIANT_SHARE) for v in variants
            ):
                entry_make.append(make_index)
                model.append(variant)
                price.append(thousands * 1000.0)
                prob.append(model_prob * variant_share)
                bodies.append(body.split("|"))
                trims.append(own_trims)
                tail_trims.append(rare_trims)
    entry_make_arr = np.array(entry_make, dtype=np.int64)
    entry_prob = np.array(prob) / sum(prob)
    alias_entries, alias_entry_prob = [], []
    for canonical, models, _ in MAKE_ALIASES.values():
        wanted = set(models.split("|")) if models else {name for name, *_ in MODELS[canonical]}
        make_index = make_names.index(canonical)
        entries = np.array(
            [i for i in range(len(model)) if entry_make[i] == make_index and model[i] in wanted],
            dtype=np.int64,
        )
        alias_entries.append(entries)
        alias_entry_prob.append(entry_prob[entries] / entry_prob[entries].sum())
    alias_weight = np.array([weight for _, _, weight in MAKE_ALIASES.values()], dtype=float)
    return _Catalog(
        make_name=_objects(make_names),
        make_lower=_objects([make.lower() for make in make_names]),
        wmi=_Ragged.of([MAKES[make][1].split() for make in make_names]),
        captive=_Ragged.of([MAKES[make][2].split("|") for make in make_names]),
        entry_make=entry_make_arr,
        entry_model=_objects(model),
        entry_price=np.array(price),
        entry_prob=entry_prob,
        bodies=_Ragged.of(bodies),
        trims=_Ragged.of(trims),
        tail_trims=_Ragged.of(tail_trims),
        jetta=model.index(VW_SPLIT_MODEL[1]),
        alias_name=_objects(list(MAKE_ALIASES)),
        alias_prob=alias_weight / alias_weight.sum(),
        alias_entries=tuple(alias_entries),
        alias_entry_prob=tuple(alias_entry_prob),
    )


@dataclass(frozen=True)
class _Sellers:
    """Sellers other than the captive ones: the top fleets and banks, then the dealer tail."""

    name: np.ndarray
    prob: np.ndarray


@lru_cache(maxsize=1)
def _sellers() -> _Sellers:
    top = list(TOP_SELLERS)
    top_weight = np.array([TOP_SELLERS[name] for name in top])
    tail = [
        f"{place} {brand}{suffix}"
        for place in DEALER_PLACES
        for brand in DEALER_BRANDS
        for suffix in DEALER_SUFFIXES
    ]
    tail = [tail[i] for i in np.random.default_rng(CATALOG_SEED).permutation(len(tail))]
    tail_weight = 1.0 / (np.arange(1, len(tail) + 1) + DEALER_ZIPF_OFFSET) ** DEALER_ZIPF_EXPONENT
    prob = np.concatenate(
        (
            TOP_SELLER_SHARE * top_weight / top_weight.sum(),
            (1 - TOP_SELLER_SHARE) * tail_weight / tail_weight.sum(),
        )
    )
    return _Sellers(_objects(top + tail), prob / prob.sum())


@dataclass(frozen=True)
class _Calendar:
    """Every possible sale date text, at index day * len(SALE_TIMES) + time."""

    text: np.ndarray
    day_prob: np.ndarray
    late_day_prob: np.ndarray  # day_prob restricted to days on or after LATE_MODEL_YEAR_ON_SALE
    time_prob: np.ndarray
    time_of: np.ndarray  # [day, time]: the time itself if that day has a sale then, else its nearest


def _dst_window(year: int) -> tuple[dt.date, dt.date]:
    """US daylight saving time: second Sunday of March to first Sunday of November."""
    march_1, november_1 = dt.date(year, 3, 1), dt.date(year, 11, 1)
    second_sunday_march = march_1 + dt.timedelta(days=(6 - march_1.weekday()) % 7 + 7)
    first_sunday_november = november_1 + dt.timedelta(days=(6 - november_1.weekday()) % 7)
    return second_sunday_march, first_sunday_november


def _is_pacific_daylight(day: dt.date) -> bool:
    """Whether a (non-Sunday) sale date is written in PDT rather than PST."""
    start, end = _dst_window(day.year)
    return start < day < end


def _date_text(day: dt.date, time: str) -> str:
    """The file's format (JavaScript Date.toString in Pacific time)."""
    zone = "GMT-0700 (PDT)" if _is_pacific_daylight(day) else "GMT-0800 (PST)"
    weekday, month = WEEKDAY_NAMES[day.weekday()], MONTH_NAMES[day.month - 1]
    return f"{weekday} {month} {day.day:02d} {day.year} {time} {zone}"


@lru_cache(maxsize=1)
def _calendar() -> _Calendar:
    assert WEEKDAY_WEIGHTS[6] == 0, "Sunday sales would need the 2 a.m. DST switch time"
    days, weights = [], []
    for (year, month), month_weight in MONTH_WEIGHTS.items():
        first = dt.date(year, month, 1)
        in_month = [first + dt.timedelta(days=i) for i in range(31)]
        in_month = [day for day in in_month if day.month == month and WEEKDAY_WEIGHTS[day.weekday()] > 0]
        month_total = sum(WEEKDAY_WEIGHTS[day.weekday()] for day in in_month)
        days += in_month
        weights += [month_weight * WEEKDAY_WEIGHTS[day.weekday()] / month_total for day in in_month]
    day_prob = np.array(weights) / sum(weights)
    late = np.array([day >= LATE_MODEL_YEAR_ON_SALE for day in days])
    late_prob = np.where(late, day_prob, 0.0)
    time_weight = np.array(list(SALE_TIMES.values()), dtype=float)
    text = _objects([_date_text(day, time) for day in days for time in SALE_TIMES])
    # Each day's auctions run at SALE_TIMES_PER_DAY of the times (fixed by CATALOG_SEED).
    times = np.random.default_rng(CATALOG_SEED).random((len(days), len(SALE_TIMES))) ** (1 / time_weight)
    held = np.sort(np.argsort(-times, axis=1)[:, :SALE_TIMES_PER_DAY], axis=1)
    every = np.arange(len(SALE_TIMES))
    nearest = np.abs(held[:, :, None] - every[None, None, :]).argmin(axis=1)
    time_of = np.take_along_axis(held, nearest, axis=1)
    return _Calendar(
        text, day_prob, late_prob / late_prob.sum(), time_weight / time_weight.sum(), time_of.astype(np.int64)
    )


# ---------------------------------------------------------------------------------------------------
# Generation
# ---------------------------------------------------------------------------------------------------
CAR_FIELDS = ("entry", "year", "make", "model", "trim", "body", "transmission", "vin", "color", "interior")
"""Columns describing the car itself: copied when the same car is sold again."""


@dataclass
class _RunState:
    """What carries over from one chunk to the next."""

    next_car_number: int  # running number of fresh cars; makes every fresh VIN unique
    serial_offset: int
    previous: dict[str, np.ndarray] | None = None  # the previous chunk's cars, for resales


def _objects(items: list[str]) -> np.ndarray:
    array = np.empty(len(items), dtype=object)
    array[:] = items
    return array


def _weighted(rng: np.random.Generator, table: dict, size: int) -> np.ndarray:
    """Draw `size` keys of a {key: weight} table."""
    keys = _objects(list(table)) if isinstance(next(iter(table)), str) else np.array(list(table))
    weight = np.array(list(table.values()), dtype=float)
    return keys[rng.choice(len(keys), size=size, p=weight / weight.sum())]


def _planned_totals(rows: int) -> dict[str, int]:
    """Exact number of lines for each planted defect in a file of `rows` lines."""
    totals = {}
    for name, lines in PLANTED_LINES.items():
        total = (2 * lines * rows + REAL_FILE_LINES) // (2 * REAL_FILE_LINES)
        if total == 0 and rows >= MIN_ROWS_FOR_EVERY_DEFECT:
            total = 1
        totals[name] = total
    return totals


def _share_of_chunk(total: int, rows: int, start: int, stop: int) -> int:
    """The part of `total` planted lines falling in rows [start, stop), spread evenly."""
    return (2 * total * stop + rows) // (2 * rows) - (2 * total * start + rows) // (2 * rows)


def _pick(rng: np.random.Generator, candidates: np.ndarray, *sizes: int) -> list[np.ndarray]:
    """Disjoint random subsets of `candidates` of the given sizes (capped at what is left), sorted."""
    shuffled = rng.permutation(candidates)
    subsets, used = [], 0
    for size in sizes:
        size = min(size, len(shuffled) - used)
        subsets.append(np.sort(shuffled[used : used + size]))
        used += size
    return subsets


def _draw_cars(rng: np.random.Generator, n: int, vw: np.ndarray, k: dict[str, int]) -> dict[str, np.ndarray]:
    """Fresh cars: year, make (with its defects), model, trim, body, transmission, colours."""
    cat = _catalog()
    ordinary = np.flatnonzero(~vw)
    entry = rng.choice(len(cat.entry_model), size=n, p=cat.entry_prob)
    entry[vw] = cat.jetta
    blank, alias = _pick(rng, ordinary, k["make_blank"], k["make_alias"])
    alias_choice = rng.choice(len(cat.alias_name), size=len(alias), p=cat.alias_prob)
    for a, (entries, prob) in enumerate(zip(cat.alias_entries, cat.alias_entry_prob, strict=True)):
        rows = alias[alias_choice == a]
        entry[rows] = entries[rng.choice(len(entries), size=len(rows), p=prob)]
    spelled_lower = np.zeros(n, dtype=bool)
    spelled_lower[ordinary] = cat.entry_make[entry[ordinary]] < LOWERCASE_MAKE_COUNT
    spelled_lower[blank] = spelled_lower[alias] = False
    (lower,) = _pick(rng, np.flatnonzero(spelled_lower), k["make_lowercase"])

    make = cat.make_name[cat.entry_make[entry]]
    make[lower] = cat.make_lower[cat.entry_make[entry[lower]]]
    make[alias] = cat.alias_name[alias_choice]
    make[blank] = ""
    model = cat.entry_model[entry].copy()
    trim = cat.trims.pick(rng, entry)
    rare = np.flatnonzero(rng.random(n) < TAIL_TRIM_SHARE)
    trim[rare] = cat.tail_trims.pick(rng, entry[rare])
    body = cat.bodies.pick(rng, entry)
    lower_body = np.flatnonzero(rng.random(n) < BODY_LOWERCASE_SHARE)
    body[lower_body] = [text.lower() for text in body[lower_body]]
    model[blank] = trim[blank] = body[blank] = ""
    known = np.setdiff1d(ordinary, blank, assume_unique=True)
    for column, name in (
        (model, "model_blank_extra"),
        (trim, "trim_blank_extra"),
        (body, "body_blank_extra"),
    ):
        (rows,) = _pick(rng, known, k[name])
        column[rows] = ""

    year = _weighted(rng, YEAR_WEIGHTS, n)
    transmission = np.full(n, "automatic", dtype=object)
    no_gearbox, manual = _pick(rng, ordinary, k["transmission_blank"], k["transmission_manual"])
    transmission[no_gearbox] = ""
    transmission[manual] = "manual"
    color = _colors(rng, COLOR_WEIGHTS, n, ordinary, k["color_em_dash"])
    interior = _colors(rng, INTERIOR_WEIGHTS, n, ordinary, k["interior_em_dash"])
    (no_colors,) = _pick(rng, ordinary, k["colors_blank"])
    color[no_colors] = interior[no_colors] = ""

    year[vw] = 2015
    trim[vw] = VW_SPLIT_TRIM
    body[vw] = np.where(rng.random(int(vw.sum())) < 0.5, "sedan", "Sedan")
    transmission[vw] = ""  # blank on every such line of the real file
    return {
        "entry": entry, "year": year, "make": make, "model": model, "trim": trim, "body": body,
        "transmission": transmission, "color": color, "interior": interior,
    }  # fmt: skip


def _colors(
    rng: np.random.Generator, weights: dict[str, float], n: int, ordinary: np.ndarray, dashes: int
) -> np.ndarray:
    """A colour column with `dashes` unknown ("—") values among the `ordinary` rows."""
    column = _weighted(rng, weights, n)
    (unknown,) = _pick(rng, ordinary, dashes)
    column[unknown] = UNKNOWN_COLOR
    return column


def _vins(rng: np.random.Generator, make_index: np.ndarray, year: np.ndarray, state: _RunState) -> np.ndarray:
    """Fresh, unique, lower-case VINs with a valid check digit.

    Characters 11-17 (plant code and serial) encode the running car number, so two fresh cars never
    share a VIN: the serial is a bijection of the number modulo 10**6 and the plant code adds the
    millions (unique up to 33 million cars).
    """
    n = len(year)
    number = np.arange(state.next_car_number, state.next_car_number + n, dtype=np.int64)
    state.next_car_number += n
    alphabet = np.frombuffer(VIN_CHARS.encode(), dtype=np.uint8)
    low = number % 1_000_000
    serial = (low * VIN_SERIAL_STEP + state.serial_offset) % 1_000_000
    chars = np.empty((n, 17), dtype=np.uint8)
    wmi = _catalog().wmi.pick(rng, make_index).astype("S3")
    chars[:, 0:3] = wmi.view(np.uint8).reshape(n, 3)
    chars[:, 3:8] = alphabet[rng.integers(0, len(alphabet), size=(n, 5))]
    chars[:, 9] = np.frombuffer(VIN_YEAR_CODES.encode(), dtype=np.uint8)[year - min(YEAR_WEIGHTS)]
    chars[:, 10] = alphabet[(low * 7 + number // 1_000_000) % len(alphabet)]
    chars[:, 11:17] = serial[:, None] // 10 ** np.arange(5, -1, -1) % 10 + ord("0")
    chars[:, 8] = ord("0")  # placeholder: the check digit has weight 0 in its own sum
    chars[:, 8] = np.frombuffer(b"0123456789x", dtype=np.uint8)[
        (_vin_values()[chars] * np.array(VIN_WEIGHTS)).sum(axis=1) % 11
    ]
    return chars.view("S17").ravel().astype("U17").astype(object)


@lru_cache(maxsize=1)
def _vin_values() -> np.ndarray:
    """Check-digit value of every byte (digits are themselves, letters transliterated)."""
    values = np.zeros(256, dtype=np.int64)
    for digit in range(10):
        values[ord(str(digit))] = digit
    for letter, value in VIN_LETTER_VALUES.items():
        values[ord(letter)] = value
    return values


def _natural_odometer(rng: np.random.Generator, year: np.ndarray) -> np.ndarray:
    """Miles driven, about 12,000 a year of age, never 1 or 999999 (those are planted defects)."""
    age = np.maximum(2015 - year, 0) + 0.5
    miles = rng.gamma(2.0, age * 6_000.0)
    return np.clip(np.rint(miles), 10, 700_000).astype(np.int64)


def _resell_cars(
    rng: np.random.Generator, cars: dict[str, np.ndarray], vw: np.ndarray, count: int, state: _RunState
) -> tuple[np.ndarray, np.ndarray]:
    """Turn `count` rows into resales of cars on earlier rows (this chunk or the previous one).

    Returns the resold rows and, for each, the index of its source in the previous chunk followed by
    this one. Sources are never resold rows of this chunk, so a copied VIN always stays on an earlier line.
    """
    previous = state.previous
    offset = 0 if previous is None else len(previous["vin"])
    candidates = np.flatnonzero(~vw)
    if previous is None:
        candidates = candidates[1:]  # the very first car of the file has nothing to resell
    (resold,) = _pick(rng, candidates, count)
    source_ok = ~vw
    source_ok[resold] = False
    eligible = np.flatnonzero(source_ok) + offset
    if previous is not None:
        eligible = np.concatenate((np.flatnonzero(previous["eligible"]), eligible))
    before = np.searchsorted(eligible, resold + offset)  # eligible sources on earlier rows
    source = eligible[(rng.random(len(resold)) * before).astype(np.int64)]
    for name in (*CAR_FIELDS, "odometer"):
        combined = cars[name] if previous is None else np.concatenate((previous[name], cars[name]))
        cars[name][resold] = combined[source]
    cars["odometer"][resold] += rng.integers(*REPEAT_MILES, size=len(resold))
    return resold, source


def _sale_days(
    rng: np.random.Generator, year: np.ndarray, resold: np.ndarray, source: np.ndarray, state: _RunState
) -> np.ndarray:
    """Day index of each sale; new model years only sold from autumn 2014; resales on another day."""
    cal = _calendar()
    day = rng.choice(len(cal.day_prob), size=len(year), p=cal.day_prob)
    late = np.flatnonzero(year == LATE_MODEL_YEAR)
    day[late] = rng.choice(len(cal.day_prob), size=len(late), p=cal.late_day_prob)
    previous_days = np.empty(0, dtype=np.int64) if state.previous is None else state.previous["day"]
    source_day = np.concatenate((previous_days, day))[source]
    same = resold[day[resold] == source_day]
    day[same] = np.where(day[same] + 6 < len(cal.day_prob), day[same] + 6, day[same] - 6)
    return day


def _draw_sellers(
    rng: np.random.Generator, make_index: np.ndarray, vw: np.ndarray, ordinary: np.ndarray, k: dict[str, int]
) -> np.ndarray:
    """Captive finance arms for their own makes, otherwise fleets, banks and the dealer tail."""
    sellers = _sellers()
    seller = sellers.name[rng.choice(len(sellers.name), size=len(make_index), p=sellers.prob)]
    captive = np.flatnonzero((rng.random(len(make_index)) < CAPTIVE_SELLER_SHARE) | vw)
    seller[captive] = _catalog().captive.pick(rng, make_index[captive])
    quoted, doubled = _pick(rng, ordinary, k["seller_quoted"], k["seller_doubled_quote"])
    seller[quoted] = _objects(list(QUOTED_SELLERS))[rng.integers(0, len(QUOTED_SELLERS), len(quoted))]
    seller[doubled] = _objects(list(DOUBLED_QUOTE_SELLERS))[
        rng.integers(0, len(DOUBLED_QUOTE_SELLERS), len(doubled))
    ]
    return seller


def _draw_condition(rng: np.random.Generator, year: np.ndarray, ordinary: np.ndarray, k: dict[str, int]):
    """Condition grades as written, worse with age: 10-49 mostly, 1-5 with one decimal on some lines
    (`3.5`; `4` when whole), blank on a few.

    Returns the grades and a 0..1 quality used for the price (0.6 where the grade is blank).
    """
    age = np.maximum(2015 - year, 0)
    quality = np.clip(rng.normal(0.85 - 0.035 * age, 0.18), 0.0, 1.0)
    grade = _text(10 + np.rint(quality * 39).astype(np.int64))
    blank, five_point = _pick(rng, ordinary, k["condition_blank"], k["condition_five_point"])
    grade[five_point] = [f"{g:g}" for g in np.round(1 + quality[five_point] * 4, 1).tolist()]
    grade[blank] = ""
    quality[blank] = 0.6
    return grade, quality


def _prices(
    rng: np.random.Generator, entry: np.ndarray, year: np.ndarray, miles: np.ndarray, quality: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Manheim market estimate (to $25) and hammer price near it (to $100)."""
    age = np.maximum(2015 - year, 0)
    value = _catalog().entry_price[entry] * 0.82 * 0.87**age * np.exp(-miles / 300_000.0)
    value *= (0.8 + 0.35 * quality) * rng.lognormal(0.0, 0.08, len(entry))
    mmr = np.maximum(25, np.rint(value / 25) * 25).astype(np.int64)
    price = np.maximum(100, np.rint(mmr * rng.lognormal(-0.02, 0.12, len(entry)) / 100) * 100)
    return mmr, price.astype(np.int64)


def _text(values: np.ndarray) -> np.ndarray:
    """Integers as text, "" where the value is -1 (blank)."""
    text = values.astype(str).astype(object)
    text[values == -1] = ""
    return text


def _make_chunk(
    rng: np.random.Generator, totals: dict[str, int], rows: int, start: int, stop: int, state: _RunState
) -> tuple[list[tuple[str, ...]], dict[str, int]]:
    """Rows [start, stop) of the file, as written, and their defect counts."""
    n = stop - start
    k = {name: _share_of_chunk(total, rows, start, stop) for name, total in totals.items()}
    vw = np.zeros(n, dtype=bool)
    vw[_pick(rng, np.arange(n), k["vw_split_trim"])[0]] = True
    ordinary = np.flatnonzero(~vw)

    cars = _draw_cars(rng, n, vw, k)
    make_index = _catalog().entry_make[cars["entry"]]
    cars["vin"] = _vins(rng, make_index, cars["year"], state)
    cars["odometer"] = _natural_odometer(rng, cars["year"])
    resold, source = _resell_cars(rng, cars, vw, k["vin_repeat"], state)
    # A blank VIN only where no line sells that car again (nor sold it before).
    offset = 0 if state.previous is None else len(state.previous["vin"])
    vin_known = ~vw
    vin_known[resold] = False
    vin_known[source[source >= offset] - offset] = False
    (no_vin,) = _pick(rng, np.flatnonzero(vin_known), k["vin_blank"])
    make_index = _catalog().entry_make[cars["entry"]]
    day = _sale_days(rng, cars["year"], resold, source, state)
    eligible = ~vw
    eligible[no_vin] = False
    state.previous = {**cars, "day": day, "eligible": eligible}

    state_code = _weighted(rng, STATE_WEIGHTS, n)
    seller = _draw_sellers(rng, make_index, vw, ordinary, k)
    grade, quality = _draw_condition(rng, cars["year"], ordinary, k)
    mmr, price = _prices(rng, cars["entry"], cars["year"], cars["odometer"], quality)
    odometer = cars["odometer"].copy()
    no_miles, one_mile, max_miles = _pick(
        rng, ordinary, k["odometer_blank"], k["odometer_one"], k["odometer_max"]
    )
    odometer[no_miles], odometer[one_mile], odometer[max_miles] = -1, 1, 999_999
    (give_away,) = _pick(rng, ordinary, k["sellingprice_one"])
    price[give_away] = 1
    cal = _calendar()
    drawn = rng.choice(len(SALE_TIMES), size=n, p=cal.time_prob)
    saledate = cal.text[day * len(SALE_TIMES) + cal.time_of[day, drawn]]
    vin = cars["vin"].copy()
    vin[no_vin] = ""
    mmr_text, price_text = _text(mmr), _text(price)
    # Lines without a VIN, a market estimate or a price (and date) are disjoint: each such line lacks one.
    no_mmr, unpriced = _pick(
        rng, np.setdiff1d(ordinary, no_vin, assume_unique=True), k["mmr_blank"], k["price_and_date_blank"]
    )
    mmr_text[no_mmr] = ""
    price_text[unpriced] = saledate[unpriced] = ""

    logical = {
        "year": _text(cars["year"]), "make": cars["make"], "model": cars["model"], "trim": cars["trim"],
        "body": cars["body"], "transmission": cars["transmission"], "vin": vin, "state": state_code,
        "condition": grade, "odometer": _text(odometer), "color": cars["color"],
        "interior": cars["interior"], "seller": seller, "mmr": mmr_text, "sellingprice": price_text,
        "saledate": saledate,
    }  # fmt: skip
    records = list(zip(*(logical[name].tolist() for name in HEADER), strict=True))
    for i in np.flatnonzero(vw):
        records[i] = _split_trim(records[i])
    return records, _count(logical, vw, len(resold))


def _split_trim(record: tuple[str, ...]) -> tuple[str, ...]:
    """Write a Jetta record as the real file does: its trim unquoted, so split at its comma into two
    fields; every other field follows in order (17 fields)."""
    trim = HEADER.index("trim")
    split = (*record[:trim], *VW_SPLIT_WRITTEN, *record[trim + 1 :])
    assert len(split) == FIELD_COUNT + 1
    return split


def _tally(column: np.ndarray) -> Counter[str]:
    return Counter(column.tolist())


def _how_many(tally: Counter[str], predicate) -> int:
    """Lines whose value satisfies `predicate` (evaluated once per distinct value)."""
    return sum(lines for value, lines in tally.items() if predicate(value))


def _count(logical: dict[str, np.ndarray], vw: np.ndarray, resold: int) -> dict[str, int]:
    """The COUNT_KEYS of one chunk, measured on its logical records."""
    make, body, transmission = (
        _tally(logical["make"]),
        _tally(logical["body"]),
        _tally(logical["transmission"]),
    )
    state, condition, odometer = (
        _tally(logical["state"]),
        _tally(logical["condition"]),
        _tally(logical["odometer"]),
    )
    color, interior, seller = _tally(logical["color"]), _tally(logical["interior"]), _tally(logical["seller"])
    saledate = _tally(logical["saledate"])
    counts = {
        "rows": len(vw),
        "vw_split_trim": int(vw.sum()),
        "make_blank": make[""],
        "make_lowercase": _how_many(make, LOWERCASE_MAKES.__contains__),
        "make_alias": _how_many(make, MAKE_ALIASES.__contains__),
        "model_blank": int((logical["model"] == "").sum()),
        "trim_blank": int((logical["trim"] == "").sum()),
        "body_blank": body[""],
        "body_lowercase": _how_many(body, str.islower),
        "transmission_blank": transmission[""],
        "transmission_manual": transmission["manual"],
        "vin_blank": int((logical["vin"] == "").sum()),
        "vin_repeat": resold,
        "state_canada": _how_many(state, CANADIAN_PROVINCES.__contains__),
        "state_pr": state["pr"],
        "condition_blank": condition[""],
        "condition_1_to_5": _how_many(condition, lambda grade: grade != "" and 1 <= float(grade) <= 5),
        "condition_decimal": _how_many(condition, lambda grade: "." in grade),
        "condition_10_to_49": _how_many(condition, lambda grade: grade != "" and 10 <= float(grade) <= 49),
        "odometer_blank": odometer[""],
        "odometer_1": odometer["1"],
        "odometer_999999": odometer["999999"],
        "em_dash_color": color[UNKNOWN_COLOR],
        "em_dash_interior": interior[UNKNOWN_COLOR],
        "color_blank": color[""],
        "interior_blank": interior[""],
        "seller_doubled_space": _how_many(seller, lambda name: "  " in name),
        # Only sellers can hold a comma or a quote (the split trim is written unquoted).
        "quoted_fields": _how_many(seller, lambda name: "," in name or '"' in name),
        "doubled_quote_fields": _how_many(seller, lambda name: '"' in name),
        "mmr_blank": int((logical["mmr"] == "").sum()),
        "sellingprice_1": int((logical["sellingprice"] == "1").sum()),
        "sellingprice_blank": int((logical["sellingprice"] == "").sum()),
        "saledate_blank": saledate[""],
        "saledate_pst": _how_many(saledate, lambda text: text.endswith("GMT-0800 (PST)")),
        "saledate_pdt": _how_many(saledate, lambda text: text.endswith("GMT-0700 (PDT)")),
    }
    return {key: int(counts[key]) for key in COUNT_KEYS}


# ---------------------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------------------
def write_sample(path: str | os.PathLike[str], rows: int, seed: int = 42) -> dict[str, int]:
    """Write a car_prices.csv-shaped file of `rows` data lines and return its defect counts.

    The file is UTF-8 without BOM, LF line ends, HEADER_LINE then `rows` records of 16 fields
    (RFC 4180 quoting where a field needs it). The same (rows, seed) always gives the same bytes.
    The returned dict has every key of COUNT_KEYS.
    """
    if rows < 0:
        raise ValueError(f"rows must be >= 0, got {rows}")
    rng = np.random.default_rng(seed)
    state = _RunState(next_car_number=0, serial_offset=int(rng.integers(0, 1_000_000)))
    totals = _planned_totals(rows)
    counts = dict.fromkeys(COUNT_KEYS, 0)
    with open(path, "w", encoding="utf-8", newline="") as out:
        out.write(HEADER_LINE + "\n")
        writer = csv.writer(out, lineterminator="\n")
        for start in range(0, rows, CHUNK_ROWS):
            stop = min(start + CHUNK_ROWS, rows)
            records, chunk_counts = _make_chunk(rng, totals, rows, start, stop, state)
            writer.writerows(records)
            for key, value in chunk_counts.items():
                counts[key] += value
    return counts


def main(argv: list[str] | None = None) -> None:
    """Command line: write a sample file and print its defect counts as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", help="CSV file to write")
    parser.add_argument("--rows", type=int, default=5000, help="data lines (default 5000)")
    parser.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    args = parser.parse_args(argv)
    print(json.dumps(write_sample(args.path, args.rows, args.seed), indent=2))


if __name__ == "__main__":
    main()
