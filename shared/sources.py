"""Turn the paths a user gives (files, directories, globs) into the files a run will ingest.

Every source must lie inside DATA_DIR once symlinks are resolved: a worker never reads a
file the operator did not put in the data directory.
"""

import glob
import os
from pathlib import Path

from shared.errors import BadInputError

SOURCE_SUFFIXES = (".csv", ".csv.gz")


def confine(path: str | Path, data_dir: Path) -> Path:
    """The absolute path, refused unless it (after symlinks) is inside `data_dir`."""
    absolute = Path(os.path.abspath(path))
    real = Path(os.path.realpath(absolute))
    root = Path(os.path.realpath(data_dir))
    if real != root and root not in real.parents:
        raise BadInputError(f"{path}: refused, the file is outside the data directory {root} (DATA_DIR)")
    return absolute


def expand_sources(paths: list[str], data_dir: Path, must_exist: bool = False) -> list[str]:
    """Files in the order given; directories give their CSV files, globs their matches, sorted.

    With `must_exist` (the CLI, when it sees DATA_DIR) a file that does not exist is refused here,
    before anything is enqueued. Otherwise it is kept as it is: its ingest job fails with a clear
    error, recorded in the ledger like any other bad input (as for a file that vanishes meanwhile).
    """
    files: list[str] = []
    for raw in paths:
        if glob.has_magic(raw):
            matches = sorted(glob.glob(raw, recursive=True))
            if not matches:
                raise BadInputError(f"{raw}: the pattern matches no file")
            candidates = [m for m in matches if Path(m).is_file()]
        elif Path(raw).is_dir():
            candidates = sorted(
                str(p) for p in Path(raw).iterdir() if p.is_file() and p.name.endswith(SOURCE_SUFFIXES)
            )
            if not candidates:
                raise BadInputError(f"{raw}: the directory holds no .csv or .csv.gz file")
        else:
            candidates = [raw]
        for candidate in candidates:
            path = str(confine(candidate, data_dir))
            if must_exist and not Path(path).exists():
                raise BadInputError(f"{raw}: no such file (DATA_DIR is {Path(data_dir).resolve()})")
            if path not in files:
                files.append(path)
    return files
