"""Reading a raw file as it is: bytes checked against the declared encoding, cells as text (CSV) or as
stored (Parquet), and a way to name any row the way a person finds it in an editor.

Validation of the cells lives in `validation.py`; here only what can go wrong before a cell exists:
a missing file, bytes that are not valid in the declared encoding, a malformed CSV line.
"""
from __future__ import annotations

import codecs
import csv
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from federation.contracts.spec import TableSpec
from federation.errors import ContractError

_CHUNK = 1 << 24  # 16 MiB: encoding checks stream the file instead of holding it twice in memory


@dataclass
class RawTable:
    """The cells of one raw file and how its rows map to line numbers (CSV) or row numbers (Parquet)."""

    path: Path
    frame: pd.DataFrame
    kind: str                      # "csv" | "parquet"
    header: bool = True
    lines_match_rows: bool = True  # CSV: one physical line per record, no blank lines
    encoding: str = "utf-8"
    delimiter: str = ","

    def locate(self, row: int) -> str:
        """Name row `row` (0-based position in the frame) for a person reading the file."""
        if self.kind == "parquet":
            return f"row {row + 1} (1-based Parquet row index)"
        first = 2 if self.header else 1
        line = row + first if self.lines_match_rows else _line_of_record(self, row)
        note = "line number in the file, header = line 1" if self.header else "line number in the file, no header"
        return f"line {line} ({note})"

    def where(self, row: int, column: str) -> str:
        return f"{self.path}, {self.locate(row)}, column '{column}'"


def _codec(encoding: str) -> str:
    """UTF-8 files may start with a byte-order mark; it is valid UTF-8, so accept it."""
    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        raise ContractError(f"unknown encoding '{encoding}' in the contract") from None
    return "utf-8-sig" if name == "utf-8" else name


def check_encoding(path: Path, encoding: str, delimiter: str) -> tuple[int, bool]:
    """Stream-decode the file; refuse the first invalid byte sequence naming its line and column.

    Returns (number of physical lines, whether the file ends with a newline).
    """
    decoder = codecs.getincrementaldecoder(_codec(encoding))(errors="strict")
    newlines, offset, last = 0, 0, b""
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            pending = len(decoder.getstate()[0])
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as err:
                at = offset - pending + err.start
                raise ContractError(_encoding_message(path, encoding, delimiter, at)) from None
            nul = chunk.find(b"\x00")
            if nul >= 0 and not _codec(encoding).startswith("utf-16"):
                raise ContractError(_encoding_message(
                    path, encoding, delimiter, offset + nul,
                    what="a NUL byte (0x00): a text export never holds one, and a reader would silently cut the "
                         "value there (\"1403\" read as 14); the file is damaged, or it is UTF-16 (then declare "
                         "that encoding)"))
            newlines += chunk.count(b"\n")
            offset += len(chunk)
            last = chunk[-1:]
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            raise ContractError(_encoding_message(path, encoding, delimiter, offset - 1)) from None
    ends_with_newline = last == b"\n"
    lines = newlines + (0 if ends_with_newline or offset == 0 else 1)
    return lines, ends_with_newline


def _encoding_message(path: Path, encoding: str, delimiter: str, at: int, what: str | None = None) -> str:
    data = path.read_bytes()
    line_start = data.rfind(b"\n", 0, at) + 1
    line_no = data.count(b"\n", 0, at) + 1
    header = data[: data.find(b"\n")].decode(_codec(encoding), errors="replace").rstrip("\r")
    names = header.split(delimiter)
    plain = "utf-8" if _codec(encoding) == "utf-8-sig" else _codec(encoding)   # utf-8-sig would add a BOM
    field = data.count(delimiter.encode(plain, errors="replace"), line_start, at)
    column = names[field] if field < len(names) else f"field {field + 1}"
    where = f"{path}, line {line_no} (line number in the file, header = line 1), column '{column}': "
    if what is not None:
        return f"{where}byte offset {at} holds {what}"
    return (f"{where}byte 0x{data[at]:02x} at byte offset {at} is not valid {encoding}; "
            f"the contract declares encoding {encoding} (re-export the file in {encoding} or fix the contract)")


def attribute_names(path: Path) -> list[str]:
    """Column names from the `@attribute` lines of an ARFF-style description (e.g. UCI `.names`)."""
    if not path.is_file():
        raise ContractError(f"{path}: file not found (named by `columns_from` in the contract)")
    names = [m.group(1) for m in re.finditer(r"^@attribute\s+(\S+)", path.read_text(errors="replace"),
                                             flags=re.MULTILINE | re.IGNORECASE)]
    if not names:
        raise ContractError(f"{path}: no `@attribute` lines found (named by `columns_from` in the contract)")
    return names


def read_raw(spec: TableSpec, node_dir: Path) -> RawTable:
    """Read the raw file of `spec` under `node_dir`; cells of CSV files stay text."""
    path = node_dir / spec.path
    if not path.is_file():
        raise ContractError(f"{path}: file not found (table '{spec.name}' of the contract)")
    if spec.format == "parquet":
        return _read_parquet(path)
    return _read_csv(spec, node_dir, path)


def _read_parquet(path: Path) -> RawTable:
    try:
        frame = pd.read_parquet(path)
    except Exception as err:  # pyarrow raises several unrelated types for a damaged file
        raise ContractError(f"{path}: not a readable Parquet file ({type(err).__name__}: {err})") from None
    return RawTable(path=path, frame=frame.reset_index(drop=True), kind="parquet")


def _read_csv(spec: TableSpec, node_dir: Path, path: Path) -> RawTable:
    lines, _ = check_encoding(path, spec.encoding, spec.delimiter)
    names = attribute_names(node_dir / spec.columns_from) if spec.columns_from else None
    if spec.header:
        _check_header(path, spec)
    try:
        frame = pd.read_csv(
            path, sep=spec.delimiter, encoding=_codec(spec.encoding), dtype=str, na_filter=False,
            keep_default_na=False, header=0 if spec.header else None, skip_blank_lines=True,
            engine="c", quoting=csv.QUOTE_MINIMAL,
        )
    except pd.errors.EmptyDataError:
        raise ContractError(f"{path}: the file is empty (no header and no rows)") from None
    except pd.errors.ParserError as err:
        raise ContractError(f"{path}: malformed CSV ({_parser_detail(err)}); delimiter declared: "
                            f"{spec.delimiter!r}") from None
    if names is not None:
        if frame.shape[1] != len(names) and len(frame):
            raise ContractError(
                f"{path}, line 1 (line number in the file, no header): {frame.shape[1]} fields, but "
                f"{node_dir / spec.columns_from} declares {len(names)} columns")
        frame.columns = names[: frame.shape[1]] if len(frame) else names[:0]
    header_lines = 1 if spec.header else 0
    raw = RawTable(path=path, frame=frame, kind="csv", header=spec.header,
                   lines_match_rows=(lines == len(frame) + header_lines),
                   encoding=spec.encoding, delimiter=spec.delimiter)
    return raw


def _check_header(path: Path, spec: TableSpec) -> None:
    with path.open("r", encoding=_codec(spec.encoding), newline="") as fh:
        first = next(csv.reader(fh, delimiter=spec.delimiter), None)
    if not first:
        raise ContractError(f"{path}: the file is empty (no header line)")
    seen: set[str] = set()
    for name in first:
        if name in seen:
            raise ContractError(f"{path}, line 1 (header): column '{name}' appears twice")
        seen.add(name)


def _parser_detail(err: Exception) -> str:
    text = str(err).strip().splitlines()[-1]
    return text.replace("Error tokenizing data. C error: ", "")


def _line_of_record(raw: RawTable, row: int) -> int:
    """Exact line of a record when quoted fields span lines or blank lines exist (error path only)."""
    with raw.path.open("r", encoding=_codec(raw.encoding), newline="") as fh:
        reader = csv.reader(fh, delimiter=raw.delimiter)
        if raw.header:
            next(reader, None)
        index = -1
        while True:
            start = reader.line_num + 1
            record = next(reader, None)
            if record is None:
                return start
            if not record or record == [""]:
                continue
            index += 1
            if index == row:
                return start

