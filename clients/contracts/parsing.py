"""Parsing a composed contract mapping into the dataclasses of `spec.py`.

Strict on purpose: unknown keys, missing required keys and wrong types are refused with one
ContractError naming the contract file and the field (keys starting with `_` are YAML anchors and are
ignored), so a transfer city's typo never silently changes what its node releases.
"""
from __future__ import annotations

import datetime as dt
import math
from dataclasses import replace
from pathlib import Path
from typing import Any, Mapping

from clients.contracts import schema
from clients.contracts.paths import check_relative
from clients.contracts.pseudonyms import check_pattern
from clients.contracts.periods import month_index
from clients.contracts.points import point_boundaries, refuse_unreadable
from clients.contracts.spec import (
    COLUMN_TYPES, DEFAULT_FORMATS, NUMERIC_TYPES, PUBLIC_UNIT, RECORD_UNIT, SCALE_UNITS, Cadence, ColumnSpec, Contract,
    FeatureSpec, PartitionSpec, PeriodSpec, RowFilter, TablePrivacy, TableSpec,
)
from federation.errors import ContractError


def _mapping(value: Any, where: str, fail: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise fail(f"{where} must be a mapping, got {type(value).__name__}")
    return value


def parse_column(name: str, raw: Any, where: str, fail: Any) -> ColumnSpec:
    """A column declaration, e.g. `{type: category, values: [a, b]}`."""
    spec = _mapping(raw, f"{where}, column '{name}'", fail)
    ctype = spec.get("type")
    schema.COLUMN.unknown(spec, f"{where}, column '{name}'", fail)
    if ctype not in COLUMN_TYPES:
        raise fail(f"{where}, column '{name}': type must be one of {', '.join(COLUMN_TYPES)}; got {ctype!r}")
    unit = spec.get("unit")
    if unit is not None and (ctype not in NUMERIC_TYPES or unit not in SCALE_UNITS):
        raise fail(f"{where}, column '{name}': `unit` is for numeric columns and one of "
                   f"{', '.join(SCALE_UNITS)}; got {unit!r} on a {ctype} column")
    schema.COLUMN.check(spec, f"{where}, column '{name}'", fail)
    fmt = spec.get("format", DEFAULT_FORMATS.get(ctype))
    if ctype == "datetime" and not fmt:
        raise fail(f"{where}, column '{name}': a datetime column needs a `format` (e.g. '%d-%m-%Y %H:%M')")
    if fmt and ctype in ("date", "datetime", "month"):
        _check_time_format(str(fmt), f"{where}, column '{name}'", fail)
    values = tuple(str(v) for v in spec.get("values") or ())
    if ctype in ("category", "multi_category") and not values:
        raise fail(f"{where}, column '{name}': a {ctype} column needs its allowed `values`")
    separator = spec.get("separator")
    if ctype == "multi_category" and not separator:
        raise fail(f"{where}, column '{name}': a multi_category column needs a `separator`")
    low, high = (None if spec.get(k) is None else _float(spec[k], f"{where}, column '{name}', {k}", fail)
                 for k in ("min", "max"))
    if unit is not None:
        u_low, u_high = SCALE_UNITS[unit]
        low = u_low if low is None else max(low, u_low)
        high = u_high if high is None else min(high, u_high)
    if low is not None and high is not None and low > high:
        raise fail(f"{where}, column '{name}': min {low:g} is above max {high:g}")
    return ColumnSpec(
        name=str(name), type=str(ctype), format=fmt, values=values,
        separator=None if separator is None else str(separator), prefix=str(schema.COLUMN.get(spec, "prefix")),
        min=low, max=high, nullable=bool(schema.COLUMN.get(spec, "nullable")), unit=unit,
        boundaries=point_boundaries(ctype, spec.get("boundaries"), f"{where}, column '{name}'", fail),
    )


def _check_time_format(fmt: str, where: str, fail: Any) -> None:
    """A strptime format must read back what it writes (an unknown directive such as %Q is refused)."""
    sample = dt.datetime(2001, 2, 3, 4, 5, 6, tzinfo=dt.timezone.utc)
    try:
        dt.datetime.strptime(sample.strftime(fmt), fmt)
    except ValueError as err:
        raise fail(f"{where}: format {fmt!r} is not a usable strptime format ({err}); e.g. '%d-%m-%Y %H:%M'") from None


# A bound (a column's min/max, a clip, a row filter's min/max) beyond this is no plausible value of an
# area-level export: it is a typing error, and as a clip it would make the release's sensitivity overflow.
MAX_BOUND = 1e12


def _float(value: Any, where: str, fail: Any) -> float:
    """A finite number within +-MAX_BOUND (rule: sane_bounds)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise fail(f"{where} must be a number; got {value!r}")
    if not math.isfinite(float(value)) or abs(float(value)) > MAX_BOUND:
        raise fail(f"{where}: {value!r} is not a plausible bound (a finite number within +-{MAX_BOUND:g}; "
                   "rule: sane_bounds)")
    return float(value)


def _locale(spec: Mapping[str, Any], where: str, fail: Any) -> tuple[str, str | None]:
    """The decimal mark and the thousands separator of a table's numbers: one character each, different."""
    decimal, thousands = str(schema.TABLE.get(spec, "decimal")), spec.get("thousands")
    if decimal not in (".", ","):
        raise fail(f"{where}: decimal must be '.' or ','; got {decimal!r}")
    if thousands is not None:
        thousands = str(thousands)
        if thousands not in (".", ",", " ", "'", "\u00a0", "\u202f") or thousands == decimal:
            raise fail(f"{where}: thousands must be one of '.', ',', ' ', \"'\" and differ from the decimal mark "
                       f"{decimal!r}; got {thousands!r}")
    return decimal, thousands


# A CSV field separator the readers can use: one character, neither the quote nor a line break (pandas and the
# csv module take nothing else; `auto` is no separator: the contract says what the export uses).
_NOT_DELIMITERS = {'"': "the quote character", "\n": "a line break", "\r": "a line break"}


def _delimiter(value: Any, where: str, fail: Any) -> str:
    """The table's `delimiter`, refused here rather than as a TypeError from the CSV reader at build time."""
    text = str(value)
    if len(text) != 1:
        raise fail(f"{where}, delimiter: must be exactly one character (e.g. ',', ';', '\\t' or '|'); got {text!r}"
                   + (" (it is not detected: declare the one the export uses)" if text.lower() == "auto" else ""))
    if text in _NOT_DELIMITERS:
        raise fail(f"{where}, delimiter: {text!r} is {_NOT_DELIMITERS[text]}, not a field separator")
    return text


def _encoding(value: Any, where: str, fail: Any) -> str:
    """The table's `encoding`: a text encoding Python knows, refused here rather than when a file is read."""
    import codecs

    text = str(value)
    try:
        known = codecs.lookup(text)
    except LookupError:
        known = None
    if known is None or not getattr(known, "_is_text_encoding", True):
        raise fail(f"{where}, encoding: {text!r} is not a known text encoding (e.g. utf-8, utf-8-sig, cp1252, "
                   "latin-1, utf-16)")
    return text


def _timezone(value: Any, where: str, fail: Any) -> str | None:
    if value is None:
        return None
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(str(value))
    except (ZoneInfoNotFoundError, ValueError):
        raise fail(f"{where}: timezone {value!r} is not an IANA time zone (e.g. Europe/Amsterdam)") from None
    return str(value)


def _positive_int(value: Any, where: str, fail: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise fail(f"{where} must be a whole number >= 1; got {value!r}")
    return int(value)


def parse_privacy(raw: Any, where: str, columns: Mapping[str, ColumnSpec], person_columns: tuple[str, ...],
                  fail: Any) -> TablePrivacy:
    """A table's `privacy:` (its unit and contribution bounds); required on every table."""
    if raw is None:
        raise fail(f"{where}: `privacy` is required: name the unit the table's release protects "
                   f"(a person or household pseudonym column, `{RECORD_UNIT}`, or `{PUBLIC_UNIT}`) and its "
                   "contribution bounds (max_cells, max_per_cell, clip); see docs/raw-records.md")
    spec = _mapping(raw, f"{where}, privacy", fail)
    unit = spec.get("unit")
    if not isinstance(unit, str) or not unit.strip():
        raise fail(f"{where}, privacy.unit: give a pseudonym column, '{RECORD_UNIT}' or '{PUBLIC_UNIT}'; got {unit!r}")
    schema.PRIVACY.check(spec, f"{where}, privacy", fail)
    if unit == PUBLIC_UNIT:
        if person_columns:
            raise fail(f"{where}, privacy.unit: '{PUBLIC_UNIT}' is refused for a table with a person column "
                       f"({', '.join(person_columns)}): records about persons are never released without noise")
        extra = sorted(k for k in spec if k != "unit")
        if extra:
            raise fail(f"{where}, privacy: a public table has no contribution bounds; remove {', '.join(extra)}")
        return TablePrivacy(unit=PUBLIC_UNIT)
    if unit != RECORD_UNIT:
        if columns and unit not in columns:
            raise fail(f"{where}, privacy.unit: '{unit}' is not one of the table's columns (a pseudonym column, "
                       f"'{RECORD_UNIT}' or '{PUBLIC_UNIT}')")
        if unit not in person_columns:
            raise fail(f"{where}, privacy.unit: '{unit}' identifies persons: list it in the table's "
                       "`person_columns` too, so that it can never feed a feature")
    for key in ("max_cells", "max_per_cell"):
        if key not in spec:
            raise fail(f"{where}, privacy.{key} is required: the contribution bound of one unit")
    clip: dict[str, tuple[float, float]] = {}
    for column, bounds in _mapping(spec.get("clip") or {}, f"{where}, privacy.clip", fail).items():
        ok = (isinstance(bounds, (list, tuple)) and len(bounds) == 2
              and all(isinstance(b, (int, float)) and not isinstance(b, bool) for b in bounds))
        if not ok or not float(bounds[0]) < float(bounds[1]):
            raise fail(f"{where}, privacy.clip.{column} must be [low, high] with low < high; got {bounds!r}")
        for bound in bounds:
            _float(bound, f"{where}, privacy.clip.{column}", fail)
        if columns and str(column) not in columns:
            raise fail(f"{where}, privacy.clip names column '{column}', which is not among its columns")
        clip[str(column)] = (float(bounds[0]), float(bounds[1]))
    share = _float(schema.PRIVACY.get(spec, "max_clipped_share"), f"{where}, privacy.max_clipped_share", fail)
    if not 0.0 <= share <= 1.0:
        raise fail(f"{where}, privacy.max_clipped_share must be a share from 0 to 1; got {share!r}")
    fmt = spec.get("pseudonym_format")
    if fmt is not None:
        if unit == RECORD_UNIT:
            raise fail(f"{where}, privacy.pseudonym_format: unit '{RECORD_UNIT}' has no pseudonyms")
        fmt = check_pattern(str(fmt), f"{where}, privacy.pseudonym_format", fail)
    return TablePrivacy(unit=unit, max_cells=_positive_int(spec["max_cells"], f"{where}, privacy.max_cells", fail),
                        max_clipped_share=share, pseudonym_format=fmt,
                        max_per_cell=_positive_int(spec["max_per_cell"], f"{where}, privacy.max_per_cell", fail),
                        clip=clip,
                        max_events=(None if spec.get("max_events") is None else
                                    _positive_int(spec["max_events"], f"{where}, privacy.max_events", fail)))


def _compared(cond: Mapping[str, Any]):
    """(key, value) of every value a condition compares with (equals, in, not_in)."""
    for key in ("equals", "in", "not_in"):
        values = cond.get(key)
        for value in (values if isinstance(values, (list, tuple)) else [] if values is None else [values]):
            yield key, value


def parse_where(raw: Any, where: str, columns: Mapping[str, ColumnSpec], fail: Any) -> tuple[RowFilter, ...]:
    """A table's row filter: one condition `{column: c, equals|in|not_in|min|max: ...}` or a list of them."""
    if raw is None:
        return ()
    items = raw if isinstance(raw, (list, tuple)) else [raw]
    if not items:
        raise fail(f"{where}, where: an empty list; give at least one condition or remove `where`")
    out = []
    for i, item in enumerate(items):
        at = f"{where}, where" + (f"[{i}]" if isinstance(raw, (list, tuple)) else "")
        cond = _mapping(item, at, fail)
        schema.WHERE.check(cond, at, fail)
        column = str(cond["column"])
        if not set(cond) & {"equals", "in", "not_in", "min", "max"}:
            raise fail(f"{at}: column '{column}' has no condition; give equals, in, not_in, min or max")
        if columns and column not in columns:
            raise fail(f"{at}: column '{column}' is not among the table's columns ({', '.join(columns)})")
        col = columns.get(column)
        for key in ("in", "not_in"):
            if key in cond and not cond[key]:
                raise fail(f"{at}: `{key}` of column '{column}' is an empty list")
        if col is not None and col.type not in NUMERIC_TYPES and ("min" in cond or "max" in cond):
            raise fail(f"{at}: min/max compare numbers, but column '{column}' has type {col.type}")
        for key, v in _compared(cond):
            if col is not None and col.type in NUMERIC_TYPES and (isinstance(v, bool) or not isinstance(v, (int, float))):
                raise fail(f"{at}: column '{column}' is numeric ({col.type}); {key} must give numbers, got {v!r}")
            if col is not None and col.type == "category" and str(v) not in col.values:
                raise fail(f"{at}: {key} {v!r} is not an allowed value of column '{column}' ({', '.join(col.values)})")
        low, high = (None if cond.get(k) is None else _float(cond[k], f"{at}, {k}", fail) for k in ("min", "max"))
        if low is not None and high is not None and low > high:
            raise fail(f"{at}: min {low:g} is above max {high:g} for column '{column}': no row could match")
        texts = {k: None if cond.get(k) is None else tuple(str(v) for v in cond[k]) for k in ("in", "not_in")}
        out.append(RowFilter(column=column, equals=None if cond.get("equals") is None else str(cond["equals"]),
                             isin=texts["in"], not_in=texts["not_in"],
                             min=None if low is None else float(low), max=None if high is None else float(high)))
    return tuple(out)


def parse_table(name: str, raw: Any, fail: Any) -> TableSpec:
    where = f"table '{name}'"
    spec = _mapping(raw, where, fail)
    if spec.get("privacy") is None:
        parse_privacy(None, where, {}, (), fail)
    schema.TABLE.check(spec, where, fail)
    columns = {str(c): parse_column(str(c), v, where, fail)
               for c, v in _mapping(spec.get("columns") or {}, f"{where}, columns", fail).items()}
    default = None
    if spec.get("column_default") is not None:
        default = parse_column("*", spec["column_default"], where, fail)
    columns_from = spec.get("columns_from")
    if not columns and not columns_from:
        raise fail(f"{where}: declare its `columns` (or `columns_from` for a file without a header)")
    if columns_from and default is None:
        raise fail(f"{where}: `columns_from` needs a `column_default` type for the columns it names")
    areas = [c for c in columns.values() if c.type == "area"]
    template = spec.get("area_template")
    if len(areas) > 1:
        raise fail(f"{where}: more than one column of type area ({', '.join(c.name for c in areas)})")
    if areas and template:
        raise fail(f"{where}: give either a column of type area or `area_template`, not both")
    decimal, thousands = _locale(spec, where, fail)
    max_bytes = schema.TABLE.get(spec, "max_bytes")
    if max_bytes < 1:
        raise fail(f"{where}: max_bytes must be a whole number of bytes >= 1; got {max_bytes!r}")
    t = TableSpec(
        name=name, path=check_relative(spec["path"], f"{where}, path", fail), format=str(spec["format"]),
        encoding=_encoding(schema.TABLE.get(spec, "encoding"), where, fail),
        delimiter=_delimiter(schema.TABLE.get(spec, "delimiter"), where, fail),
        decimal=decimal, thousands=thousands, timezone=_timezone(spec.get("timezone"), where, fail),
        max_bytes=max_bytes, header=bool(schema.TABLE.get(spec, "header")),
        member=None if spec.get("member") is None else str(spec["member"]),
        columns_from=None if columns_from is None else check_relative(columns_from, f"{where}, columns_from", fail),
        na_values=tuple(str(v) for v in spec.get("na_values") or ()),
        id=None if spec.get("id") is None else str(spec["id"]),
        area_template=None if template is None else str(template),
        columns=columns, column_default=default,
        audit_columns=tuple(str(c) for c in spec.get("audit_columns") or ()),
        person_columns=tuple(str(c) for c in spec.get("person_columns") or ()),
        where=parse_where(spec.get("where"), where, columns, fail),
        cadence=_cadence(spec.get("cadence"), where, fail),
    )
    t = replace(t, privacy=parse_privacy(spec.get("privacy"), where, columns, t.person_columns, fail))
    if not t.columns_from:
        for key, names in (("id", [t.id] if t.id else []), ("audit_columns", t.audit_columns),
                           ("person_columns", t.person_columns)):
            for col in names:
                if col not in columns:
                    raise fail(f"{where}: {key} names column '{col}', which is not among its columns")
        refuse_unreadable(t, where, fail)
    if t.header is False and not t.columns_from:
        raise fail(f"{where}: a file without a header needs `columns_from`")
    return t


def _feature(name: str, block: str | None, raw: Any, fail: Any) -> FeatureSpec:
    where = "label" if block is None else f"block '{block}', feature '{name}'"
    spec = _mapping(raw, where, fail)
    if not spec.get("op"):
        raise fail(f"{where}: `op` is required (the name of an aggregation op)")
    schema.FEATURE.key("op").check(spec["op"], where, fail)
    params = {str(k): v for k, v in spec.items() if k not in ("op", "emphasis") and not str(k).startswith("_")}
    emphasis = spec.get("emphasis", 1.0)
    if isinstance(emphasis, bool) or not isinstance(emphasis, (int, float)) or not 0 < float(emphasis) < float("inf"):
        raise fail(f"{where}: `emphasis` must be a number > 0 (its share of the table's noise budget); got {emphasis!r}")
    return FeatureSpec(name=name, block=block, op=str(spec["op"]), params=params, emphasis=float(emphasis))


def _periods(raw: Any, fail: Any) -> PeriodSpec:
    spec = _mapping(raw, "periods", fail)
    kind = schema.PERIODS_MONTH.get(spec, "kind")
    if kind == "fixed":
        schema.PERIODS_FIXED.unknown(spec, "periods", fail)
        if not spec.get("value"):
            raise fail("periods: a fixed period needs its `value` (e.g. '1990')")
        schema.PERIODS_FIXED.check(spec, "periods", fail)
        return PeriodSpec(kind="fixed", value=str(spec["value"]))
    if kind != "month":
        raise fail(f"periods: kind must be 'month' or 'fixed'; got {kind!r}")
    schema.PERIODS_MONTH.unknown(spec, "periods", fail)
    for key in ("start", "end"):
        if spec.get(key) in (None, ""):
            raise fail(f"periods.{key} is required: the node's months are set by the contract or the run "
                       f"(periods.{key}=YYYY-MM), never by the records' dates (rule: public_grid)")
    schema.PERIODS_MONTH.check(spec, "periods", fail)

    def refs(key: str) -> tuple[tuple[str, str], ...]:
        out = []
        for ref in spec.get(key) or ():
            table, _, column = str(ref).partition(".")
            if not column:
                raise fail(f"periods.{key}: '{ref}' must be 'table.column'")
            out.append((table, column))
        return tuple(out)

    start, end = (_month_text(spec[k]) for k in ("start", "end"))
    first, last = (month_index(v, f"periods.{k}", fail) for k, v in (("start", start), ("end", end)))
    if first > last:
        raise fail(f"periods: start {start} is after end {end}")
    share = _float(schema.PERIODS_MONTH.get(spec, "min_share"), "periods.min_share", fail)
    if not 0.0 <= share < 1.0:
        raise fail(f"periods.min_share must be a share from 0 up to (not including) 1; got {share!r}")
    return PeriodSpec(kind="month", sources=refs("from"), not_before=refs("not_before"), start=start, end=end,
                      min_share=share, missing=str(schema.PERIODS_MONTH.get(spec, "missing")))


def _month_text(value: Any) -> str:
    """A month as written; YAML reads an unquoted 2019-01 as text, but 2019-01-01 as a date."""
    if isinstance(value, (dt.date, dt.datetime)):
        return f"{value.year:04d}-{value.month:02d}"
    return str(value).strip()


def _cadence(raw: Any, where: str, fail: Any) -> Cadence | None:
    """A table's `cadence`: a wave every n months from a first month, or the wave months listed."""
    if raw is None:
        return None
    spec = _mapping(raw, f"{where}, cadence", fail)
    schema.CADENCE.check(spec, f"{where}, cadence", fail)
    months = tuple(_month_text(m) for m in spec.get("months") or ())
    for m in months:
        month_index(m, f"{where}, cadence.months", fail)
    every = spec.get("every", 1)
    if months and ("every" in spec or "first" in spec):
        raise fail(f"{where}, cadence: give either `months` or `every` (with `first`), not both")
    if not months:
        every = _positive_int(every, f"{where}, cadence.every", fail)
        if every == 1 and spec.get("first") is None:
            raise fail(f"{where}, cadence: a wave every month is no cadence; give `every` > 1 or the wave `months`")
    first = None if spec.get("first") is None else _month_text(spec["first"])
    if first is not None:
        month_index(first, f"{where}, cadence.first", fail)
    return Cadence(every=int(every), first=first, months=months)


def _anchor_keys(data: Mapping[str, Any], fail: Any) -> tuple[str, ...]:
    """The top-level `_name` keys, which only hold YAML anchors (`_register: &register {...}`) and are ignored.

    Anywhere else an underscore key would be silently ignored, and at the top level one that spells a real key
    (`_min_population: 5000`) reads as a setting that is not applied: both are refused (rule: underscore_keys)."""
    known = schema.TOP.names()

    def nested(value: Any, where: str) -> None:
        if isinstance(value, Mapping):
            for key, item in value.items():
                if str(key).startswith("_"):
                    raise fail(f"{where}{key}: a key starting with '_' is ignored; only top-level keys may hold YAML "
                               "anchors (rule: underscore_keys): remove the underscore or move the anchor to the "
                               "top level")
                nested(item, f"{where}{key}.")
        elif isinstance(value, (list, tuple)):
            for i, item in enumerate(value):
                nested(item, f"{where[:-1]}[{i}].")

    ignored = []
    for key, value in data.items():
        if not str(key).startswith("_"):
            nested(value, f"{key}.")
            continue
        real = str(key).lstrip("_")
        if real in known:
            raise fail(f"{key}: spells the contract key '{real}' with a leading underscore, so it would be ignored "
                       f"(underscore keys only hold YAML anchors; rule: underscore_keys): write `{real}:`")
        ignored.append(str(key))
    return tuple(ignored)


def parse_contract(data: Mapping[str, Any], path: Path, default_name: str) -> Contract:
    """Build a Contract from a composed mapping; every problem is one ContractError naming `path`."""

    def fail(message: str) -> ContractError:
        return ContractError(f"{path}: {message}")

    ignored = _anchor_keys(data, fail)
    schema.TOP.unknown(data, "contract", fail)
    register = _mapping(schema.TOP.get(data, "area_register"), "area_register", fail)
    schema.AREA_REGISTER.check(register, "area_register", fail)
    if bool(register.get("path")) == bool(register.get("table")):
        raise fail("area_register: give exactly one of `path` (public/areas.csv) or `table`")
    unit = _mapping(data.get("privacy_unit"), "privacy_unit", fail)
    schema.PRIVACY_UNIT.unknown(unit, "privacy_unit", fail)
    if unit.get("row") != "area-period":
        raise fail(f"privacy_unit.row must be 'area-period'; got {unit.get('row')!r}")
    k = unit.get("max_rows_per_person")
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise fail(f"privacy_unit.max_rows_per_person must be a positive integer; got {k!r}")
    schema.PRIVACY_UNIT.check(unit, "privacy_unit", fail)
    min_pop = data.get("min_population", schema.TOP.default("min_population"))
    if min_pop is not None and (not isinstance(min_pop, int) or isinstance(min_pop, bool) or min_pop < 0):
        raise fail(f"min_population must be a non-negative integer (or null); got {min_pop!r}")
    if register.get("table") and min_pop is not None:
        raise fail("min_population needs populations from an area register `path`; set it to null "
                   "(and say in a comment why the areas need no suppression)")
    if register.get("path") and min_pop is None:
        raise fail("min_population: null is only allowed without a public area register")
    tables = {str(n): parse_table(str(n), v, fail)
              for n, v in _mapping(data.get("tables") or {}, "tables", fail).items()}
    if not tables:
        raise fail("tables: declare at least one raw table")
    schema.TOP.check(data, "contract", fail)
    blocks: dict[str, tuple[FeatureSpec, ...]] = {}
    for block, feats in _mapping(data.get("blocks") or {}, "blocks", fail).items():
        feats = _mapping(feats, f"block '{block}'", fail)
        blocks[str(block)] = tuple(_feature(str(n), str(block), v, fail)
                                   for n, v in feats.items() if not str(n).startswith("_"))
    label = None if data.get("label") is None else _feature("label", None, data["label"], fail)
    if not blocks and label is None:
        raise fail("the contract produces nothing: declare `blocks` and/or a `label`")
    partition = None
    if data.get("partition") is not None:
        p = _mapping(data["partition"], "partition", fail)
        schema.PARTITION.unknown(p, "partition", fail)
        if not p.get("table") or not p.get("column"):
            raise fail("partition: `table` and `column` are required")
        schema.PARTITION.check(p, "partition", fail)
        groups = {str(g): {str(k): str(v) for k, v in _mapping(m, f"partition.groups.{g}", fail).items()}
                  for g, m in _mapping(p.get("groups") or {}, "partition.groups", fail).items()}
        partition = PartitionSpec(table=str(p["table"]), column=str(p["column"]), groups=groups)
    return Contract(
        name=str(data.get("name") or default_name), path=path,
        register_path=None if not register.get("path") else check_relative(register["path"], "area_register.path", fail),
        register_table=None if not register.get("table") else str(register["table"]),
        periods=_periods(schema.TOP.get(data, "periods"), fail),
        tables=tables, blocks=blocks, label=label,
        privacy_unit_row=str(unit["row"]), max_rows_per_person=int(k),
        min_population=None if min_pop is None else int(min_pop),
        partition=partition, description=str(data.get("description") or ""), ignored_keys=ignored,
    )
