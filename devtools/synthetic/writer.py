"""Writes one table deterministically: CSV in the table's encoding and delimiter, or Parquet.

CSV cells arrive already rendered as strings (see `formats.py`) and are written in chunks, so memory
stays bounded; Parquet goes through pyarrow, which writes no timestamps (files are byte-identical
for identical input, checked by the tests).
"""
from __future__ import annotations

import codecs
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from federation.errors import ConfigError

_CHUNK = 500_000


@dataclass(frozen=True)
class FileFormat:
    """How a table is stored: `csv` (encoding, delimiter, decimal separator) or `parquet`."""

    kind: str = "csv"
    encoding: str = "utf-8"
    delimiter: str = ","
    decimal: str = "."

    @classmethod
    def from_spec(cls, spec: dict, where: str) -> "FileFormat":
        kind = str(spec.get("format", "csv"))
        if kind not in ("csv", "parquet"):
            raise ConfigError(f"{where}: field 'format' must be csv or parquet, not '{kind}'")
        fmt = cls(kind, str(spec.get("encoding", "utf-8")), str(spec.get("delimiter", ",")), str(spec.get("decimal", ".")))
        try:
            codecs.lookup(fmt.encoding)
        except LookupError:
            raise ConfigError(f"{where}: field 'encoding' names unknown encoding '{fmt.encoding}'") from None
        if len(fmt.delimiter) != 1 or fmt.delimiter == fmt.decimal:
            raise ConfigError(f"{where}: field 'delimiter' must be one character other than the decimal separator")
        return fmt


def write(path: Path, columns: dict[str, np.ndarray | pa.Array], fmt: FileFormat) -> int:
    """Write the columns (in order) to `path`; returns the number of rows."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"--out: cannot create directory '{path.parent}': {err.strerror}") from None
    tmp = path.with_name(path.name + ".partial")
    rows = len(next(iter(columns.values()))) if columns else 0
    if fmt.kind == "parquet":
        table = pa.table({k: (v if isinstance(v, pa.Array) else pa.array(v)) for k, v in columns.items()})
        pq.write_table(table, tmp, compression="snappy")
    else:
        with open(tmp, "w", encoding=fmt.encoding, newline="") as handle:
            handle.write(fmt.delimiter.join(columns) + "\n")
            for lo in range(0, rows, _CHUNK):
                chunk = pd.DataFrame({k: v[lo : lo + _CHUNK] for k, v in columns.items()}, copy=False)
                chunk.to_csv(handle, sep=fmt.delimiter, index=False, header=False, lineterminator="\n")
    tmp.replace(path)
    return rows
