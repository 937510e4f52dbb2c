"""Reading a raw file as it is: bytes checked against the declared encoding, cells as text (CSV) or as
stored (Parquet), and a way to name any row the way a person finds it in an editor.

Validation of the cells lives in `validation.py`; here only what can go wrong before a cell exists:
a missing file, a damaged gzip stream, bytes that are not valid in the declared encoding (a byte-order
mark of another encoding named as such), a malformed CSV line, and files too large or too wide for an
area-level export, refused before anything big is read.
"""
from __future__ import annotations

import codecs
import csv
import gzip
import io
import re
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from clients.contracts.paths import node_file
from clients.contracts.spec import TableSpec
from federation.errors import ContractError

_CHUNK = 1 << 24  # 16 MiB: encoding checks stream the file instead of holding it twice in memory
# Resource limits: an area-level export has tens of columns and short records. A file far beyond these is
# damaged or not the export the contract describes; it is refused before pandas tries to hold it.
MAX_COLUMNS = 10_000
MAX_LINE_BYTES = 1 << 20   # 1 MiB for one physical line (and so for any field)
_GZIP_MAGIC = b"\x1f\x8b"
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")   # a local file header, or the end record of an empty archive
_DAMAGED = (EOFError, gzip.BadGzipFile, zipfile.BadZipFile, zlib.error)
_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"),
)


@dataclass
class RawTable:
    """The cells of one raw file and how its rows map to line numbers (CSV) or row numbers (Parquet)."""

    path: Source | Path            # a Source for CSV (a file or a zip member), a Path for Parquet
    frame: pd.DataFrame
    kind: str                      # "csv" | "parquet"
    header: bool = True
    lines_match_rows: bool = True  # CSV: one physical line per record, no blank lines
    encoding: str = "utf-8"
    delimiter: str = ","
    rows: np.ndarray | None = None     # after a row filter: each kept row's position in the file's records
    filtered: dict | None = None       # after a row filter: its condition and the rows read, kept and dropped

    def locate(self, row: int) -> str:
        """Name row `row` (0-based position in the frame) for a person reading the file."""
        if self.rows is not None:
            row = int(self.rows[row])
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


def _magic(path: Path) -> bytes:
    with path.open("rb") as fh:
        return fh.read(4)


def is_gzip(path: Path) -> bool:
    """A gzip-compressed export (`.csv.gz`), known by its magic bytes rather than its name."""
    return _magic(path)[:2] == _GZIP_MAGIC


def is_zip(path: Path) -> bool:
    """A zip archive, known by its magic bytes (or its name, so that a damaged one is named as such)."""
    return _magic(path) in _ZIP_MAGIC or path.suffix.lower() == ".zip"


@dataclass(frozen=True)
class Source:
    """A raw CSV file, or one member of a zip archive; `str()` names it the way a person finds it."""

    file: Path
    member: str | None = None
    gzip: bool = False

    def __str__(self) -> str:
        return str(self.file) if self.member is None else f"{self.file} (member {self.member})"

    def open(self):
        """The bytes, decompressed on the fly (gzip stream or zip member)."""
        if self.member is not None:
            archive = zipfile.ZipFile(self.file)
            try:
                return archive.open(self.member)   # keeps the archive's file open until it is closed itself
            finally:
                archive.close()
        return gzip.open(self.file, "rb") if self.gzip else self.file.open("rb")


def source_of(path: Path, member: str | None) -> Source:
    """The file to read: the file itself, its gzip stream, or the one (or the named) CSV of a zip archive."""
    if not is_zip(path):
        if member is not None:
            raise ContractError(f"{path}: the contract names `member: {member}`, but the file is not a zip archive")
        return Source(path, gzip=is_gzip(path))
    try:
        with zipfile.ZipFile(path) as archive:
            names = [i.filename for i in archive.infolist() if not i.is_dir()]
    except (zipfile.BadZipFile, zlib.error, EOFError, ValueError) as err:
        raise ContractError(f"{path}: not a readable zip archive ({err}): the file is damaged or truncated; "
                            "copy or export it again") from None
    if not names:
        raise ContractError(f"{path}: the zip archive is empty (it holds no file)")
    if member is None:
        if len(names) > 1:
            shown = ", ".join(names[:5]) + (" ..." if len(names) > 5 else "")
            raise ContractError(f"{path}: the zip archive holds {len(names)} files ({shown}); name the one to read "
                                "with the table's `member:`")
        member = names[0]
    elif member not in names:
        raise ContractError(f"{path}: the zip archive has no member {member!r} (it holds: {', '.join(names[:10])})")
    return Source(path, member=member)


def _chunks(src: Source):
    """Stream the (decompressed) bytes; a truncated or damaged gzip stream or zip member is named as such."""
    with src.open() as fh:
        while True:
            try:
                chunk = fh.read(_CHUNK)
            except _DAMAGED as err:
                kind = "zip member" if src.member else "gzip-compressed file"
                raise ContractError(f"{src}: the {kind} is truncated or damaged ({err}); "
                                    "copy or export it again") from None
            if not chunk:
                return
            yield chunk


def _check_bom(path: Path, encoding: str, head: bytes, fixed_form: bool = False) -> None:
    """A byte-order mark of another encoding than the declared one: say which, not "byte 0xff"."""
    declared = _codec(encoding)
    for bom, family in _BOMS:
        if head.startswith(bom):
            if declared.replace("-sig", "").startswith(family):
                return
            if fixed_form:
                raise ContractError(f"{path}: the file starts with a {family.upper()} byte-order mark; this file "
                                    f"is always read as {encoding}: re-export it in {encoding}")
            raise ContractError(
                f"{path}: the file starts with a {family.upper()} byte-order mark, but the contract declares "
                f"encoding {encoding}; declare `encoding: {family}` for this table or re-export the file in "
                f"{encoding}")


def check_encoding(path: Source, encoding: str, delimiter: str, max_bytes: int | None = None,
                   fixed_form: bool = False) -> tuple[int, bool]:
    """Stream-decode the file; refuse the first invalid byte sequence naming its line and column, a line
    longer than MAX_LINE_BYTES, or more than `max_bytes` bytes (after decompression). `fixed_form`: no contract
    key sets this file's encoding (the area register), so the advice is only to re-export it.

    Returns (number of physical lines, whether the file ends with a newline).
    """
    decoder = codecs.getincrementaldecoder(_codec(encoding))(errors="strict")
    newlines, offset, last, line_start = 0, 0, b"", 0
    utf16 = _codec(encoding).startswith(("utf-16", "utf-32"))
    for chunk in _chunks(path):
        if offset == 0:
            _check_bom(path, encoding, chunk[:4], fixed_form)
        pending = len(decoder.getstate()[0])
        try:
            decoder.decode(chunk)
        except UnicodeDecodeError as err:
            at = offset - pending + err.start
            raise ContractError(_encoding_message(path, encoding, delimiter, at, fixed_form=fixed_form)) from None
        nul = chunk.find(b"\x00")
        if nul >= 0 and not utf16:
            raise ContractError(_encoding_message(
                path, encoding, delimiter, offset + nul,
                what="a NUL byte (0x00): a text export never holds one, and a reader would silently cut the "
                     "value there (\"1403\" read as 14); the file is damaged, or it is UTF-16 (then declare "
                     "that encoding)"))
        ends = np.flatnonzero(np.frombuffer(chunk, dtype=np.uint8) == 0x0A) + offset
        starts = np.concatenate(([line_start], ends[:-1] + 1)) if len(ends) else np.array([line_start])
        lengths = (ends - starts[: len(ends)]) if len(ends) else np.array([offset + len(chunk) - line_start])
        if len(lengths) and int(lengths.max()) > MAX_LINE_BYTES:
            i = int(np.argmax(lengths > MAX_LINE_BYTES))
            raise ContractError(
                f"{path}, line {newlines + i + 1} (line number in the file, header = line 1): longer than "
                f"{MAX_LINE_BYTES:,} bytes; a record of an area-level export is far shorter (a damaged file, an "
                "unclosed quote, or the wrong `delimiter`); refused before reading further")
        if len(ends):
            line_start = int(ends[-1]) + 1
        newlines += len(ends)
        offset += len(chunk)
        last = chunk[-1:]
        if max_bytes is not None and offset > max_bytes:
            raise ContractError(f"{path}: more than {max_bytes:,} bytes (the table's `max_bytes`); refused before "
                                "reading it (raise `max_bytes` in the contract if the export is really this large)")
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise ContractError(_encoding_message(path, encoding, delimiter, offset - 1, fixed_form=fixed_form)) from None
    ends_with_newline = last == b"\n"
    lines = newlines + (0 if ends_with_newline or offset == 0 else 1)
    return lines, ends_with_newline


def _encoding_message(path: Source, encoding: str, delimiter: str, at: int, what: str | None = None,
                      fixed_form: bool = False) -> str:
    with path.open() as fh:
        data = fh.read(at + MAX_LINE_BYTES)
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
    if fixed_form:
        return (f"{where}byte 0x{data[at]:02x} at byte offset {at} is not valid {encoding}; this file is always "
                f"read as {encoding} (re-export it in {encoding})")
    return (f"{where}byte 0x{data[at]:02x} at byte offset {at} is not valid {encoding}; "
            f"the contract declares encoding {encoding} (re-export the file in {encoding} or fix the contract)")


def columns_file(spec: TableSpec, node_dir: Path) -> Path:
    """The `columns_from` file of a table, inside the node directory."""
    return node_file(node_dir, str(spec.columns_from), f"named by `columns_from` of table '{spec.name}'")


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
    path = node_file(node_dir, spec.path, f"table '{spec.name}' of the contract")
    if spec.format == "parquet":
        if spec.member is not None or is_zip(path):
            raise ContractError(f"{path}: a zip archive holds CSV files only here; unpack the Parquet file "
                                f"(table '{spec.name}')")
        return _read_parquet(path, spec)
    return _read_csv(spec, node_dir, source_of(path, spec.member))


def _read_parquet(path: Path, spec: TableSpec) -> RawTable:
    import pyarrow as pa
    import pyarrow.parquet as pq

    size = path.stat().st_size
    if size > spec.max_bytes:
        raise ContractError(f"{path}: {size:,} bytes, more than the table's `max_bytes` {spec.max_bytes:,}; refused "
                            "before reading it (raise `max_bytes` in the contract if the export is really this large)")
    schema = _parquet(path, pq.read_schema)
    if len(schema.names) > MAX_COLUMNS:
        raise ContractError(f"{path}: the Parquet schema has {len(schema.names):,} columns (at most {MAX_COLUMNS:,}); "
                            "not the export the contract describes")
    for fld in schema:
        if pa.types.is_nested(fld.type):
            raise ContractError(f"{path}, column '{fld.name}': stores {fld.type} values (lists or records per cell); "
                                "a raw table holds one value per cell: re-export it flat")
    frame = _parquet(path, pd.read_parquet)
    return RawTable(path=path, frame=frame.reset_index(drop=True), kind="parquet")


def _parquet(path: Path, read):
    try:
        return read(path)
    except Exception as err:  # pyarrow raises several unrelated types for a damaged file
        raise ContractError(f"{path}: not a readable Parquet file ({type(err).__name__}: {err})") from None


def _open_text(path: Source, encoding: str):
    return io.TextIOWrapper(path.open(), encoding=_codec(encoding), newline="")


def _read_csv(spec: TableSpec, node_dir: Path, path: Source) -> RawTable:
    lines, ends_with_newline = check_encoding(path, spec.encoding, spec.delimiter, spec.max_bytes, spec.fixed_form)
    names = attribute_names(columns_file(spec, node_dir)) if spec.columns_from else None
    if spec.header:
        _check_header(path, spec)
    try:
        with path.open() as fh:
            frame = pd.read_csv(
                fh, sep=spec.delimiter, encoding=_codec(spec.encoding), dtype=str, na_filter=False,
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
    _refuse_short_records(path, spec, frame, ends_with_newline)
    header_lines = 1 if spec.header else 0
    raw = RawTable(path=path, frame=frame, kind="csv", header=spec.header,
                   lines_match_rows=(lines == len(frame) + header_lines),
                   encoding=spec.encoding, delimiter=spec.delimiter)
    return raw


def _refuse_short_records(path: Source, spec: TableSpec, frame: pd.DataFrame, ends_with_newline: bool) -> None:
    """A record with fewer fields than the header, as one message: pandas pads it with empty cells, which
    validation would report as several problems (a missing value per absent column, a cut date read as a
    bad format) that hide the one cause, a cut record (an export truncated mid-line, or a damaged line).

    Only a record whose last cell is empty can be short, so a file without one is not read again."""
    width = frame.shape[1]
    if width < 2 or not len(frame) or not (frame.iloc[:, -1] == "").any():
        return
    short: list[tuple[int, int]] = []   # (first line of the record, its number of fields)
    last = 0                            # first line of the file's last record
    with _open_text(path, spec.encoding) as fh:
        reader = csv.reader(fh, delimiter=spec.delimiter)
        if spec.header:
            next(reader, None)
        while True:
            start = reader.line_num + 1
            try:
                record = next(reader, None)
            except csv.Error:   # pandas read it: a record the csv module cannot is not ours to judge here
                return
            if record is None:
                break
            if record and record != [""]:
                last = start
                if len(record) < width:
                    short.append((start, len(record)))
    if not short:
        return
    line, fields = short[0]
    why = ("the file ends mid-line (truncated export?)" if line == last and not ends_with_newline else
           "a cut or damaged record (re-export the file)")
    more = f"; {len(short) - 1} more record(s) are short too" if len(short) > 1 else ""
    note = "line number in the file, header = line 1" if spec.header else "line number in the file, no header"
    raise ContractError(f"{path}, line {line} ({note}): {fields} of {width} fields; {why}{more}")


def _check_header(path: Source, spec: TableSpec) -> None:
    """The header line: at most MAX_COLUMNS names, none twice (line length is already bounded)."""
    limit = csv.field_size_limit()
    csv.field_size_limit(max(limit, MAX_LINE_BYTES + 1))
    try:
        with _open_text(path, spec.encoding) as fh:
            first = next(csv.reader(fh, delimiter=spec.delimiter), None)
    except csv.Error as err:
        raise ContractError(f"{path}, line 1 (header): not a readable CSV header ({err})") from None
    finally:
        csv.field_size_limit(limit)
    if not first:
        raise ContractError(f"{path}: the file is empty (no header line)")
    if len(first) > MAX_COLUMNS:
        raise ContractError(f"{path}, line 1 (header): {len(first):,} columns (at most {MAX_COLUMNS:,}); not the "
                            f"export the contract describes ({len(spec.columns) or 'its'} declared columns)")
    longest = max(first, key=len)
    if len(longest) > 1000:
        raise ContractError(f"{path}, line 1 (header): a column name of {len(longest):,} characters "
                            f"({longest[:40]!r}...); not a header (wrong `delimiter` or quote?)")
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
    with _open_text(raw.path, raw.encoding) as fh:
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

