"""Checking raw cells against the contract and turning them into typed columns, vectorised.

Every check builds a boolean mask over the whole column and reports only the FIRST offending row
(`np.flatnonzero(mask)[0]`), with how many more there are: 10^7 rows cost seconds, not minutes. Every kind
of problem found in a file is reported at once (up to MAX_PROBLEMS, one line each naming file, row and
column), so that fixing one does not only then reveal the next.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from clients.contracts.reading import RawTable, attribute_names, columns_file
from clients.contracts.points import fill_areas, parse_points
from clients.contracts.spec import ColumnSpec, TableSpec
from federation.errors import ContractError


@dataclass
class Table:
    """A raw table that passed its contract: typed columns plus each row's area code."""

    spec: TableSpec
    raw: RawTable
    data: pd.DataFrame
    area: np.ndarray | None            # federation area code per row (None if the table has no area)
    columns: dict[str, ColumnSpec] = field(default_factory=dict)
    _months: dict[str, np.ndarray] = field(default_factory=dict)
    pseudonyms: dict[str, dict[str, int]] = field(default_factory=dict)   # per person column: spelling counts

    def __len__(self) -> int:
        return len(self.data)

    def locate(self, row: int) -> str:
        return self.raw.locate(row)

    def months(self, column: str) -> np.ndarray:
        """Month index (year * 12 + month - 1) of a date/datetime/month column; -1 where missing."""
        if column not in self._months:
            values = self.data[column]
            idx = (values.dt.year * 12 + values.dt.month - 1).to_numpy(dtype="float64")
            self._months[column] = np.where(np.isnan(idx), -1, idx).astype(np.int64)
        return self._months[column]


MAX_PROBLEMS = 20   # kinds of problem reported per file; each line says how many more rows are like it


def _fail(raw: RawTable, mask: np.ndarray, column: str, what: str) -> ContractError:
    rows = np.flatnonzero(mask)
    more = f" ({len(rows) - 1} more row(s) like it)" if len(rows) > 1 else ""
    return ContractError(f"{raw.where(int(rows[0]), column)}: {what(int(rows[0])) if callable(what) else what}{more}")


def _show(value: object) -> str:
    text = repr(str(value))
    return text if len(text) <= 42 else text[:39] + "...'"


def _by_unique(series: pd.Series, parse) -> pd.Series:
    """Apply `parse` to the distinct values only: dates and area codes repeat a lot in 10^7 rows."""
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    parsed = parse(pd.Series(uniques, dtype=object))
    if len(uniques) == 0:  # every value missing
        return pd.Series(np.full(len(series), None, dtype=object), index=series.index)
    out = parsed.iloc[np.where(codes < 0, 0, codes)].set_axis(series.index)
    return out.where(codes >= 0)


def _missing(series: pd.Series, spec: TableSpec) -> np.ndarray:
    markers = {""} | set(spec.na_values)
    mask = series.isna().to_numpy()
    if series.dtype == object:
        mask |= series.isin(markers).to_numpy()
    return mask


def _number_text(series: pd.Series, missing: np.ndarray, table: TableSpec) -> tuple[np.ndarray, np.ndarray]:
    """Numbers from text cells in the table's declared locale, and per row why a cell is not one ("" = fine).

    Only the declared decimal mark may separate decimals and only the declared thousands separator may group
    digits (in threes): "18.607" in a decimal-comma export is eighteen thousand, never 18.6, and is refused
    unless the contract says `thousands: "."`. Distinct values only: numbers repeat a lot in 10^7 rows.
    """
    codes, uniques = pd.factorize(series.astype(str).str.strip().where(~missing, None), use_na_sentinel=True)
    text = pd.Series(uniques, dtype=object).astype(str)
    reason = pd.Series("", index=text.index, dtype=object)
    t, d = table.thousands, table.decimal
    if t:
        grouped = text.str.fullmatch(rf"[-+]?\d{{1,3}}(?:{re.escape(t)}\d{{3}})+(?:{re.escape(d)}\d*)?")
        reason[text.str.contains(t, regex=False) & ~grouped] = (
            f"has a misplaced thousands separator {t!r} (the contract declares digits grouped in threes)")
        text = text.str.replace(t, "", regex=False)
    other = "," if d == "." else "."
    if other != t:
        reason[(reason == "") & text.str.contains(other, regex=False)] = (
            f"holds {other!r}, which is neither the declared decimal mark {d!r} nor a declared thousands separator "
            f"(if the export groups thousands with it, declare the table's `thousands: {other!r}`)")
    if d != ".":
        text = text.str.replace(d, ".", regex=False)
    values = pd.to_numeric(text.where(reason == "", None), errors="coerce")
    reason[(reason == "") & values.isna()] = "NaN"   # marker: not a number at all
    if not len(text):   # every cell missing
        return np.full(len(series), np.nan), np.full(len(series), "", dtype=object)
    rows = np.where(codes >= 0, codes, 0)
    out = np.where(codes >= 0, values.to_numpy(dtype="float64")[rows], np.nan)
    return out, np.where(codes >= 0, reason.to_numpy(dtype=object)[rows], "")


def _numeric(series: pd.Series, missing: np.ndarray, col: ColumnSpec, table: TableSpec, raw: RawTable,
             problems: list[ContractError]) -> pd.Series:
    """Numbers of one column. Each kind of bad cell is added to `problems` and its cells are then left out
    of the later checks, so one pass names non-numbers, fractions and out-of-range values alike."""
    if pd.api.types.is_bool_dtype(series):
        raise _fail(raw, ~missing, col.name, f"expected {col.type} values, the file stores booleans")

    def found(mask: np.ndarray, what) -> None:
        nonlocal missing
        problems.append(_fail(raw, mask, col.name, what))
        missing = missing | mask

    if pd.api.types.is_numeric_dtype(series):
        arr = series.astype("float64").to_numpy()
    else:
        arr, why = _number_text(series, missing, table)
        bad = why != ""
        if bad.any():
            decimal = "" if table.decimal == "." else f" with decimal {table.decimal!r}"
            kind = "an integer" if col.type == "integer" else "a number"
            found(bad, lambda r: f"{_show(series.iloc[r])} " + (f"is not {kind}{decimal}" if why[r] == "NaN" else why[r]))
    inf = ~missing & ~np.isfinite(np.where(missing, 0.0, arr))
    if inf.any():
        found(inf, lambda r: f"{_show(series.iloc[r])} is not a finite number")
    if col.type == "integer":
        frac = ~missing & (np.where(missing, 0.0, arr) % 1 != 0)
        if frac.any():
            found(frac, lambda r: f"{_show(series.iloc[r])} is not an integer")
        # Beyond 2^53 a float no longer holds every integer, and beyond 2^63 int64 wraps around (a population
        # of 10^20 would become negative and suppress its area): no count in an export is that large.
        huge = ~missing & (np.abs(np.where(missing, 0.0, arr)) >= 2.0**53)
        if huge.any():
            found(huge, lambda r: f"{_show(series.iloc[r])} is too large for an integer count or code (at most "
                                  "2^53 - 1): a damaged or mistyped value")
    unit = f" (the contract declares unit {col.unit})" if col.unit else ""
    if col.min is not None:
        low = ~missing & (np.where(missing, col.min, arr) < col.min)
        if low.any():
            kind = "negative value" if col.min == 0 else "value"
            found(low, lambda r: f"{kind} {arr[r]:g} is below the minimum {col.min:g} allowed for this column{unit}"
                                 + (" (negative counts or amounts are not allowed)" if col.min == 0 else ""))
    if col.max is not None:
        high = ~missing & (np.where(missing, col.max, arr) > col.max)
        if high.any():
            hint = "; a percentage where a share is declared?" if col.unit == "share" else ""
            found(high, lambda r: f"value {arr[r]:g} is above the maximum {col.max:g}{unit}{hint}")
    if problems:
        return pd.Series(arr, index=series.index)
    _check_percent_scale(arr[~missing], col, raw)
    out = pd.Series(arr, index=series.index)
    if col.type == "integer" and not missing.any():
        out = out.astype("int64")
    return out


PERCENT_EVIDENCE = 5   # non-zero values, all at most 1, before a percent column is judged to hold shares


def _check_percent_scale(present: np.ndarray, col: ColumnSpec, raw: RawTable) -> None:
    """A column declared in percent whose every value lies in [0, 1] holds shares: its feature would be
    100 times too small. Judged on at least PERCENT_EVIDENCE non-zero values."""
    if col.unit != "percent" or int((present > 0).sum()) < PERCENT_EVIDENCE or present.max() > 1.0:
        return
    raise ContractError(
        f"{raw.path}, column '{col.name}': all {len(present):,} values lie between 0 and 1 (largest "
        f"{present.max():g}), but the contract declares unit percent (0-100): the export gives shares; re-export "
        "percentages, or declare `unit: share` and scale the feature")


# A UTC offset after a time of day ("10:00+01:00", "09:30Z", "10:00:00 UTC"); the year of a date alone
# ("31-12-2021") also ends in "-dddd" and is no offset.
_OFFSET = re.compile(r"\d:\d{2}(?::\d{2}(?:[.,]\d+)?)?\s*(?:[+-]\d{2}:?\d{2}|Z|UTC)$")


def _local_time(values: pd.Series, missing: np.ndarray, col: ColumnSpec, table: TableSpec,
                raw: RawTable) -> pd.Series:
    """Times with a UTC offset, as wall-clock time in the table's declared zone (where months are counted).

    Without a declared zone the builder cannot know which month 23:30 UTC on the 31st falls in, nor compare
    10:00+01:00 with 09:30Z; it refuses rather than drop the offsets."""
    if table.timezone is None:
        raise _fail(raw, ~missing, col.name,
                    lambda r: f"{_show(raw.frame[col.name].iloc[r])} carries a UTC offset: declare the table's "
                              "`timezone:` (the IANA zone in which its months are counted, e.g. Europe/Amsterdam)")
    return values.dt.tz_convert(table.timezone).dt.tz_localize(None)


def _temporal(series: pd.Series, missing: np.ndarray, col: ColumnSpec, table: TableSpec, raw: RawTable) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(series):
        values = pd.to_datetime(series)
        if getattr(values.dt, "tz", None) is not None:
            values = _local_time(values, missing, col, table, raw)
    elif pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
        raise _fail(raw, ~missing, col.name,
                    lambda r: f"expected a {col.type} ({col.format}), the file stores {series.dtype} values "
                              f"such as {_show(series.iloc[r])}")
    else:
        present = series[~missing]
        aware = bool(col.format and ("%z" in col.format or "%Z" in col.format))
        if raw.kind == "csv" or not len(present) or isinstance(present.iloc[0], str):
            values = _by_unique(series.where(~missing, None),
                                lambda u: pd.to_datetime(u, format=col.format, errors="coerce", exact=True,
                                                         utc=aware))
        else:  # Parquet `date` objects (not text): the format does not apply
            kinds = {type(v).__name__ for v in present.iloc[:1000]}
            if not kinds <= {"date", "datetime", "Timestamp"}:
                raise _fail(raw, ~missing, col.name,
                            lambda r: f"expected a {col.type}, the file stores {type(series.iloc[r]).__name__} values")
            values = _by_unique(series.where(~missing, None),
                                lambda u: pd.to_datetime(u.map(str), errors="coerce"))
        values = pd.to_datetime(values, utc=aware) if aware else pd.to_datetime(values)
        bad = ~missing & values.isna().to_numpy()
        if bad.any():
            def what(r: int) -> str:
                text = f"{_show(series.iloc[r])} is not a valid {col.type} in format {col.format!r}"
                if not aware and _OFFSET.search(str(series.iloc[r]).strip()):
                    text += ("; it carries a UTC offset: add %z to the format and declare the table's `timezone:`")
                return text
            raise _fail(raw, bad, col.name, what)
        if aware:
            values = _local_time(values, missing, col, table, raw)
    return values


def _categorical(series: pd.Series, missing: np.ndarray, col: ColumnSpec, raw: RawTable) -> pd.Series:
    text = series.astype(str).where(~missing, "")
    allowed = set(col.values)
    if col.type == "category":
        bad = ~missing & ~text.isin(allowed).to_numpy()
        if bad.any():
            raise _fail(raw, bad, col.name,
                        lambda r: f"unknown category {_show(series.iloc[r])} (allowed: {', '.join(col.values)})")
        return text.where(~missing, None)
    parts = text[~missing].str.split(col.separator, regex=False).explode()
    bad_parts = ~parts.isin(allowed)
    if bad_parts.any():
        bad = np.zeros(len(series), dtype=bool)
        bad[series.index.get_indexer(parts.index[bad_parts.to_numpy()].unique())] = True
        first = parts[bad_parts].iloc[0]
        raise _fail(raw, bad, col.name,
                    f"unknown category {_show(first)} in a {col.separator!r}-separated list "
                    f"(allowed: {', '.join(col.values)})")
    return text.where(~missing, None)


def _area(series: pd.Series, missing: np.ndarray, col: ColumnSpec, raw: RawTable,
          known: np.ndarray | None, register: str) -> pd.Series:
    codes = _by_unique(series.where(~missing, None), lambda u: col.prefix + u.astype(str).str.strip())
    if known is not None:
        bad = ~missing & ~np.isin(codes.to_numpy(dtype=object), known)
        if bad.any():
            prefix = f" (as {col.prefix}<code>)" if col.prefix else ""
            raise _fail(raw, bad, col.name,
                        lambda r: f"unknown area code {_show(series.iloc[r])}{prefix}: not in the area register "
                                  f"{register}")
    return codes.where(~missing, None)


def parse_column(series: pd.Series, col: ColumnSpec, table: TableSpec, raw: RawTable,
                 known_areas: np.ndarray | None, register: str) -> pd.Series:
    """Typed values of one column; a ContractError names every kind of bad cell found in it."""
    missing = _missing(series, table)
    problems: list[ContractError] = []
    if missing.any() and not col.nullable:
        problems.append(_fail(raw, missing, col.name, "missing value (this column may not be empty)"))
    if col.type in ("integer", "float"):
        values = _numeric(series, missing, col, table, raw, problems)
        if problems:
            raise _together(problems)
        return values
    if problems:
        raise problems[0]
    if col.type in ("date", "datetime", "month"):
        return _temporal(series, missing, col, table, raw)
    if col.type in ("category", "multi_category"):
        return _categorical(series, missing, col, raw)
    if col.type == "area":
        return _area(series, missing, col, raw, known_areas, register)
    if col.type == "point":
        points, bad = parse_points(series, missing)
        if bad.any():
            raise _fail(raw, bad, col.name, lambda r: f"{_show(series.iloc[r])} is not a point 'lon,lat' or "
                                                      "'POINT (lon lat)' in degrees (WGS84)")
        return points
    return series.astype(str).where(~missing, None)


def declared_columns(spec: TableSpec, node_dir: Path) -> dict[str, ColumnSpec]:
    """All columns the table must have, in file order where the contract fixes it."""
    if not spec.columns_from:
        return dict(spec.columns)
    out: dict[str, ColumnSpec] = {}
    for name in attribute_names(columns_file(spec, node_dir)):
        base = spec.columns.get(name) or spec.column_default
        out[name] = ColumnSpec(**{**base.__dict__, "name": name})
    unknown = sorted(set(spec.columns) - set(out))
    if unknown:
        raise ContractError(f"{node_dir / spec.columns_from}: declares no column {', '.join(unknown)} "
                            f"(typed in the contract for table '{spec.name}')")
    return out


def _template_areas(spec: TableSpec, data: pd.DataFrame, raw: RawTable) -> np.ndarray:
    """Area codes built from columns, e.g. "US-{state:02d}-{row:04d}"; `row` is the 1-based data row."""
    import string

    out = pd.Series([""] * len(data), index=data.index, dtype=object)
    for literal, name, fmt, _ in string.Formatter().parse(spec.area_template or ""):
        out = out + literal
        if name is None:
            continue
        if name == "row":
            values = pd.Series(np.arange(1, len(data) + 1), index=data.index)
        elif name in data.columns:
            values = data[name]
            if values.isna().any():
                raise _fail(raw, values.isna().to_numpy(), name, "missing value in a column of the area code")
        else:
            raise ContractError(f"{raw.path}: area_template names column '{name}', which the table lacks")
        if pd.api.types.is_float_dtype(values):
            values = values.astype("int64")
        text = values.astype(str)
        if fmt and fmt.startswith("0") and fmt.endswith("d"):
            text = text.str.zfill(int(fmt[1:-1]))
        out = out + text
    return out.to_numpy(dtype=object)


def _together(problems: list[ContractError], path: object = None) -> ContractError:
    """One error for every problem found: the single message as it was, or a count and one line each."""
    if len(problems) == 1:
        return problems[0]
    shown = problems[:MAX_PROBLEMS]
    more = f" (the first {MAX_PROBLEMS} shown)" if len(problems) > MAX_PROBLEMS else ""
    head = f"{path}: " if path is not None else ""
    err = ContractError(f"{head}{len(problems)} kinds of problem{more}:\n" + "\n".join(f"  {p}" for p in shown))
    err.problems = problems
    return err


def validate(raw: RawTable, spec: TableSpec, node_dir: Path, known_areas: np.ndarray | None,
             register: str) -> Table:
    """The typed table, or one ContractError for the first thing wrong with the file."""
    columns = declared_columns(spec, node_dir)
    header = "the Parquet schema" if raw.kind == "parquet" else "the header (line 1)"
    actual = [str(c) for c in raw.frame.columns]
    missing = [c for c in columns if c not in actual]
    if missing:
        hint = ""
        if raw.kind != "parquet" and len(actual) == 1:
            for other in (",", ";", "\t", "|"):
                if other != raw.delimiter and set(columns) <= set(actual[0].split(other)):
                    hint = (f" The header splits into the declared columns at {other!r}, not at the declared "
                            f"delimiter {raw.delimiter!r}: declare delimiter {other!r} in the contract, or re-export "
                            f"with {raw.delimiter!r}.")
                    if spec.fixed_form:
                        hint = (f" The header splits into these columns at {other!r}, but this file is always "
                                f"read as {raw.encoding} CSV with {raw.delimiter!r}: re-export it that way.")
                    break
        extra = [c for c in actual if c not in columns]
        if extra and not hint:   # a column renamed in the export: name what the file has instead
            hint = (f" The file has {', '.join(repr(c) for c in extra)} instead, which "
                    f"{'it may not have' if spec.fixed_form else 'the contract does not declare'} (renamed?).")
        declares = "the file must have" if spec.fixed_form else "the contract declares"
        raise ContractError(f"{raw.path}: missing column(s) {', '.join(repr(c) for c in missing)} in {header}; "
                            f"{declares} {', '.join(columns)}.{hint}")
    unexpected = [c for c in actual if c not in columns]
    if unexpected:
        fix = (f"the file has exactly the columns {', '.join(columns)}: remove them" if spec.fixed_form else
               "declare them in the contract (audit_columns for protected ones) or remove them from the export")
        raise ContractError(f"{raw.path}: unexpected column(s) {', '.join(repr(c) for c in unexpected)} in "
                            f"{header}; {fix}")
    if len(raw.frame) == 0:
        raise ContractError(f"{raw.path}: the table is empty (no data rows after {header})")
    parsed, problems = {}, []
    for name, col in columns.items():
        try:
            parsed[name] = parse_column(raw.frame[name], col, spec, raw, known_areas, register)
        except ContractError as err:
            problems.extend(getattr(err, "problems", [err]))
    if problems:
        raise _together(problems, raw.path)
    data = pd.DataFrame(parsed, index=raw.frame.index)
    spellings = _fold_pseudonyms(data, spec, raw)
    if spec.id:
        dup = data[spec.id].duplicated(keep="first").to_numpy() & data[spec.id].notna().to_numpy()
        if dup.any():
            row = int(np.flatnonzero(dup)[0])
            first = int(np.flatnonzero((data[spec.id] == data[spec.id].iloc[row]).to_numpy())[0])
            raise _fail(raw, dup, spec.id,
                        f"duplicate id {_show(raw.frame[spec.id].iloc[row])} (first seen at {raw.locate(first)}); "
                        f"the contract declares '{spec.id}' unique")
    area_col = spec.area_column()
    if spec.area_template:
        area = _template_areas(spec, data, raw)
    elif area_col:
        area = data[area_col].to_numpy(dtype=object)
    else:
        area = None
    area = fill_areas(area, data, columns, node_dir, columns[area_col].prefix if area_col else "")
    return Table(spec=spec, raw=raw, data=data, area=area, columns=columns, pseudonyms=spellings)


def _fold_pseudonyms(data: pd.DataFrame, spec: TableSpec, raw: RawTable) -> dict[str, dict[str, int]]:
    """Person columns in their canonical form (`pseudonyms.py`), before any bound counts them; a pseudonym
    not of the contract's declared form is refused. Returns per column the spelling counts."""
    from clients.contracts.pseudonyms import bad_format, normalise, spelling_stats

    out = {}
    for column in spec.person_columns:
        if column not in data:
            continue
        folded = normalise(data[column])
        fmt = spec.privacy.pseudonym_format if column == spec.privacy.column else None
        if fmt is not None:
            bad = bad_format(folded, fmt)
            if bad.any():
                raise _fail(raw, bad, column, lambda r: f"pseudonym {_show(raw.frame[column].iloc[r])} is not of the "
                            f"declared form {fmt!r} (privacy.pseudonym_format, matched after folding case and "
                            "whitespace; rule: pseudonym_format)")
        out[column] = spelling_stats(data[column], folded)
        data[column] = folded
    return out
