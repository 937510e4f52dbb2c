"""The data contract as plain data: what a node's raw tables look like and how they aggregate.

A contract is YAML (`configs/contract/<name>.yaml`); `parsing.py` turns the composed mapping into these
frozen dataclasses, `checks.py` checks them against the federation.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from federation.errors import ContractError

COLUMN_TYPES: tuple[str, ...] = (
    "string", "integer", "float", "date", "datetime", "month", "area", "category", "multi_category",
    "text", "contact", "point",
)
# Column types no op, filter or pseudonym may read: free text and contact data are declared (every column of an
# export must be) and parsed, and never feed anything; a point only places its row in an area (`points.py`).
UNREADABLE_TYPES: tuple[str, ...] = ("text", "contact", "point")
FORMATS: tuple[str, ...] = ("csv", "parquet")
TIME_TYPES: tuple[str, ...] = ("date", "datetime", "month")
NUMERIC_TYPES: tuple[str, ...] = ("integer", "float")
# Default parse formats: ISO dates and months; datetimes must say theirs.
DEFAULT_FORMATS: dict[str, str] = {"date": "%Y-%m-%d", "month": "%Y-%m"}
# Units of scale a numeric column may declare, with the range each implies: a share given where percent is
# declared (or the reverse) scales a feature by 100, so the builder checks values against the unit.
SCALE_UNITS: dict[str, tuple[float, float]] = {"share": (0.0, 1.0), "percent": (0.0, 100.0),
                                               "per_1000": (0.0, 1000.0)}
DEFAULT_MAX_BYTES = 4 << 30   # 4 GiB per raw file unless the contract says otherwise


@dataclass(frozen=True)
class ColumnSpec:
    """One raw column: its type and the constraints a value must meet."""

    name: str
    type: str
    format: str | None = None          # date/datetime/month parse format (strptime)
    values: tuple[str, ...] = ()       # category / multi_category: allowed values
    separator: str | None = None       # multi_category
    prefix: str = ""                   # area: prepended to the native code to get the federation key
    min: float | None = None
    max: float | None = None
    nullable: bool = False
    unit: str | None = None            # numeric: a unit of SCALE_UNITS (its range applies unless min/max say more)
    boundaries: Mapping[str, str] | None = None   # point: {path, property} of the public boundary file


@dataclass(frozen=True)
class RowFilter:
    """One condition of a table's `where:` (all conditions must hold): rows failing it are dropped first."""

    column: str
    equals: str | None = None
    isin: tuple[str, ...] | None = None
    not_in: tuple[str, ...] | None = None
    min: float | None = None
    max: float | None = None

    def describe(self) -> str:
        parts = []
        if self.equals is not None:
            parts.append(f"= {self.equals!r}")
        if self.isin is not None:
            parts.append(f"in {list(self.isin)}")
        if self.not_in is not None:
            parts.append(f"not in {list(self.not_in)}")
        if self.min is not None:
            parts.append(f">= {self.min:g}")
        if self.max is not None:
            parts.append(f"<= {self.max:g}")
        return f"{self.column} {' and '.join(parts)}"


PUBLIC_UNIT = "public"
RECORD_UNIT = "record"


@dataclass(frozen=True)
class TablePrivacy:
    """Whom a raw table's release protects, and how much one of them may contribute.

    `unit` is a pseudonym column (a person or household), `record` (the export has no person link: one
    record is protected; a person in several records only by group privacy), or `public` (published
    statistics: no noise). A unit touches at most `max_cells` (area, period) cells of one release, adds at
    most `max_per_cell` records to each, and each summed column is clipped into `clip[column]`; the builder
    cuts whatever exceeds these bounds before aggregating, and the noise is calibrated to them. Series that
    count records at one date (an intake, a benefit start) touch one cell per record: `max_events`, when
    given, bounds how many such records per date column one unit adds over the window (its most recent
    ones), which is usually far fewer than the months it is counted in as open.
    """

    unit: str
    max_cells: int = 1
    max_per_cell: int = 1
    clip: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    max_events: int | None = None
    # the pseudonyms' form after normalisation (NFKC, lower case, no whitespace): a full-match regex
    pseudonym_format: str | None = None
    # more than this share of a clipped column's values beyond its clip bounds holds the build (a unit or
    # scale mistake in the export, not a few outliers)
    max_clipped_share: float = 0.05

    @property
    def is_public(self) -> bool:
        return self.unit == PUBLIC_UNIT

    @property
    def column(self) -> str | None:
        """The pseudonym column that identifies a unit, or None (record or public)."""
        return None if self.unit in (PUBLIC_UNIT, RECORD_UNIT) else self.unit

    def describe(self) -> str:
        if self.is_public:
            return "public statistics (no person in the table)"
        if self.unit == RECORD_UNIT:
            return "one record (the export has no person link)"
        return f"one person or household ({self.unit})"


@dataclass(frozen=True)
class Cadence:
    """The months in which a table has records by design (a survey's waves); other months are not missing,
    they hold no data of this table (its series are missing there, never zero)."""

    every: int = 1                  # a wave every `every` months, counted from `first`
    first: str | None = None        # "YYYY-MM" of one wave (default: the window's first month)
    months: tuple[str, ...] = ()    # or: the wave months listed

    def describe(self) -> str:
        if self.months:
            return f"waves in {', '.join(self.months)}"
        return f"a wave every {self.every} months" + (f" from {self.first}" if self.first else "")


@dataclass(frozen=True)
class TableSpec:
    """One raw table of the node: where it is, how it is encoded, and its columns."""

    name: str
    path: str
    format: str
    encoding: str = "utf-8"
    delimiter: str = ","
    decimal: str = "."
    thousands: str | None = None       # the export's thousands separator, if its numbers carry one
    timezone: str | None = None        # IANA zone in which months are counted, for values with a UTC offset
    max_bytes: int = DEFAULT_MAX_BYTES
    header: bool = True
    columns_from: str | None = None    # ARFF-style `@attribute` file naming the columns of a header-less file
    na_values: tuple[str, ...] = ()    # extra markers of a missing value (the empty field always is one)
    id: str | None = None
    area_template: str | None = None   # area code built from columns, e.g. "US-{state:02d}-{row:04d}"
    columns: Mapping[str, ColumnSpec] = field(default_factory=dict)
    column_default: ColumnSpec | None = None   # type of columns named only by `columns_from`
    audit_columns: tuple[str, ...] = ()
    person_columns: tuple[str, ...] = ()
    privacy: TablePrivacy = TablePrivacy(unit=RECORD_UNIT)
    member: str | None = None          # the file to read from a zip archive holding several
    where: tuple[RowFilter, ...] = ()  # row filter, applied before the table is validated
    cadence: Cadence | None = None     # months with records by design (waves); None: every month
    # A file whose form the project fixes (the area register: UTF-8, ','): no contract key changes how it is
    # read, so the advice for a mismatch can only be to re-export it, never to declare something.
    fixed_form: bool = False

    def area_column(self) -> str | None:
        """The column holding the area code (type `area`), if the table has one."""
        names = [c.name for c in self.columns.values() if c.type == "area"]
        return names[0] if names else None


@dataclass(frozen=True)
class FeatureSpec:
    """One output value per area-period: a feature of a block, or the label; computed by a named op."""

    name: str
    block: str | None        # None for the label
    op: str
    params: Mapping[str, Any]
    # share of its table's noise budget, relative to the table's other series (1: even split): its series'
    # noise is divided by it, and the table's sensitivity counts it (`clients.contracts.series`)
    emphasis: float = 1.0

    def where(self) -> str:
        return "label" if self.block is None else f"block '{self.block}', feature '{self.name}'"


@dataclass(frozen=True)
class PeriodSpec:
    """Months covered by the node (`kind: month`) or one fixed period for cross-sectional data."""

    kind: str                                   # "month" | "fixed"
    value: str | None = None                    # fixed: the single period, e.g. "1990"
    sources: tuple[tuple[str, str], ...] = ()   # month: (table, column) whose every month must hold records
    not_before: tuple[tuple[str, str], ...] = ()  # month: coverage starts no earlier than their first month
    start: str | None = None                    # month: the window, "YYYY-MM" (required: never the records')
    end: str | None = None
    min_share: float = 0.25                     # month: below this share of the usual volume a month is missing
    missing: str = "refuse"                     # month: a missing month is refused, or marked (`mark`)


@dataclass(frozen=True)
class PartitionSpec:
    """How areas split into sub-federations (e.g. UCI states and census regions)."""

    table: str
    column: str
    groups: Mapping[str, Mapping[str, str]] = field(default_factory=dict)


@dataclass(frozen=True)
class Contract:
    """A validated data contract for one node."""

    name: str
    path: Path
    register_path: str | None          # public area register (area_code, area_name, year, population)
    register_table: str | None         # or: the areas are those of this table (no population known)
    periods: PeriodSpec
    tables: Mapping[str, TableSpec]
    blocks: Mapping[str, tuple[FeatureSpec, ...]]
    label: FeatureSpec | None
    privacy_unit_row: str
    max_rows_per_person: int
    min_population: int | None
    partition: PartitionSpec | None
    description: str = ""
    # The node's own block schemas (`blocks/<block>.yaml` beside the contract file; federation.blocks)
    local_blocks: Mapping[str, Any] = field(default_factory=dict)
    # top-level `_name` keys: YAML anchor holders, ignored (listed by `pulse-twin contract check`)
    ignored_keys: tuple[str, ...] = ()

    def error(self, message: str) -> ContractError:
        """A ContractError that names this contract's file."""
        return ContractError(f"{self.path}: {message}")

    def features(self) -> list[FeatureSpec]:
        """Every output of the contract: block features in order, then the label."""
        out = [f for feats in self.blocks.values() for f in feats]
        return out + ([self.label] if self.label is not None else [])
