"""The contract grammar as data: every key of every section, its type, default and meaning.

One place read by the parser (which keys exist, their types and defaults), by the ops (their parameters,
`ops.Param`) and by the reference generator (`reference.py`, docs/contract-reference.md), so the
documentation cannot drift from what the parser accepts. Keys starting with `_` are YAML anchors and are
ignored everywhere.
"""
from __future__ import annotations

from clients.contracts.spec import COLUMN_TYPES, DEFAULT_MAX_BYTES, FORMATS, SCALE_UNITS
from federation.blocks import BLOCK, BLOCK_FEATURE
from federation.grammar import Key, Section


TOP = Section("(top level)", "The contract file itself: one node's raw tables and what they produce.", (
    Key("name", "text", "Name of the contract (default: the file name without .yaml)."),
    Key("description", "text", "One line on what the node holds; checked for protected concepts like everything "
                               "a contract says."),
    Key("area_register", "mapping", "Where the node's areas come from (see `area_register`).",
        default={"path": "public/areas.csv"}),
    Key("periods", "mapping", "Which periods the node covers (see `periods`).", default={"kind": "month"}),
    Key("privacy_unit", "mapping", "The row-level privacy unit of DP-SGD and the most rows one person touches "
                                   "(see `privacy_unit`).", required=True),
    Key("min_population", "integer", "Areas with fewer residents (area register) are suppressed; null only "
                                     "without a register `path`.", default=100),
    Key("tables", "mapping", "The raw tables, by name (see `tables.<name>`).", required=True),
    Key("blocks", "mapping", "Feature blocks: `{block: {feature: {op: ..., params}}}`; each block produces "
                             "exactly the features of its block schema: configs/block/<block>.yaml, or the "
                             "node's own blocks/<block>.yaml next to the contract (see `block schema`)."),
    Key("label", "mapping", "The label, one feature `{op: ..., params}`."),
    Key("partition", "mapping", "How areas split into sub-federations (see `partition`)."),
), example="""\
name: my_city
description: Statistical areas of my city, register figures.
area_register: {path: public/areas.csv}
periods: {kind: fixed, value: "2021"}
privacy_unit: {row: area-period, max_rows_per_person: 1}
min_population: 100
tables: {...}
blocks: {...}""")

AREA_REGISTER = Section("area_register", "Exactly one of `path` and `table`.", (
    Key("path", "text", "The public register `area_code,area_name,year,population` (always UTF-8 CSV with `,`) "
                        "under the node directory; gives populations (per_1000, suppression)."),
    Key("table", "text", "Or: the areas are those of this declared table (no populations known)."),
), example="area_register: {path: public/areas.csv}")

PRIVACY_UNIT = Section("privacy_unit", "The unit DP-SGD protects and how many of its rows one person may touch.", (
    Key("row", "text", "Always `area-period`.", required=True, choices=("area-period",)),
    Key("max_rows_per_person", "integer", "k: the most area-period rows one person's records reach (checked "
                                          "against the data where a pseudonym column exists).", required=True),
), example="privacy_unit: {row: area-period, max_rows_per_person: 36}")

PERIODS_MONTH = Section("periods (kind: month)", (
    "Monthly data. The node's months are the window `start` to `end`, set by the contract or by the run "
    "(`periods.start=YYYY-MM periods.end=YYYY-MM`), never by the records' dates: the grid a node releases on "
    "is public. Every month of the window must hold records of the `from` columns (of their table's waves, "
    "for a table with a `cadence`): a month with none, or far below the column's usual volume, is missing; "
    "it is refused, or (`missing: mark`) its cells are missing in every feature of that table, never zero, "
    "and the build names it."), (
    Key("kind", "text", "`month` (the default) or `fixed`.", default="month", choices=("month", "fixed")),
    Key("start", "text", "First month of the window, `YYYY-MM`.", required=True),
    Key("end", "text", "Last month of the window, `YYYY-MM`.", required=True),
    Key("from", "list", "`table.column` date columns whose every month must hold records (complete periods)."),
    Key("not_before", "list", "`table.column` date columns whose first month the window may not precede (an "
                              "export of files open in its window lacks files closed before it)."),
    Key("min_share", "number", "A month with fewer records than this share of the column's median month is "
                               "missing (0 to 1), when so few are beyond chance (Poisson, p < 0.001).",
        default=0.25),
    Key("missing", "text", "What a missing month does: `refuse` the build, or `mark` it missing.",
        default="refuse", choices=("refuse", "mark")),
), example="periods: {kind: month, start: 2019-01, end: 2020-12, from: [incidents.datum_registratie]}")

PERIODS_FIXED = Section("periods (kind: fixed)", "Cross-sectional data without a time dimension: one period.", (
    Key("kind", "text", "`fixed`.", required=True, choices=("fixed",)),
    Key("value", "text", "The single period, e.g. `\"2021\"`.", required=True),
), example='periods: {kind: fixed, value: "2021"}')

PARTITION = Section("partition", "A column whose values split the areas into sub-federations.", (
    Key("table", "text", "The declared table holding the column.", required=True),
    Key("column", "text", "The column whose value names each area's partition.", required=True),
    Key("groups", "mapping", "Coarser groupings: `{group: {value: group value}}`; every value needs one."),
), example="partition: {table: communities, column: state, groups: {region: {1: South, 2: West}}}")

TABLE = Section("tables.<name>", "One raw file of the node and how it is written.", (
    Key("path", "text", "The file under the node directory; CSV may be gzip-compressed or a zip archive "
                        "(recognised by content).", required=True),
    Key("format", "text", "`csv` or `parquet`.", required=True, choices=FORMATS),
    Key("member", "text", "For a zip archive holding several files: the one to read (a CSV)."),
    Key("encoding", "text", "Text encoding, e.g. utf-8, utf-8-sig, cp1252, latin-1, utf-16.", default="utf-8"),
    Key("delimiter", "text", "The CSV field separator: one character (`\\t` for a tab), never detected.", default=","),
    Key("decimal", "text", "The decimal mark of numbers.", default=".", choices=(".", ",")),
    Key("thousands", "text", "The export's thousands separator (`.`, `,`, space or `'`); digits then group in "
                             "threes."),
    Key("timezone", "text", "IANA zone in which months are counted, for datetimes with a UTC offset."),
    Key("max_bytes", "integer", "A larger file (after decompression) is refused before it is read.",
        default=DEFAULT_MAX_BYTES),
    Key("header", "boolean", "Whether the CSV's first line names the columns.", default=True),
    Key("columns_from", "text", "ARFF-style `@attribute` file naming the columns of a file without a header."),
    Key("na_values", "list", "Extra markers of a missing value (the empty field always is one)."),
    Key("id", "text", "A column whose values must be unique."),
    Key("area_template", "text", "Area code built from columns, e.g. `\"US-{state:02d}-{row:04d}\"` (instead of "
                                 "a column of type area)."),
    Key("columns", "mapping", "The columns, by name (see `tables.<name>.columns.<column>`); every column of the "
                              "file must be declared."),
    Key("column_default", "mapping", "The column declaration of columns named only by `columns_from`."),
    Key("audit_columns", "list", "Protected attributes kept only to audit errors across areas, never features."),
    Key("person_columns", "list", "Person or household pseudonyms: only count rows per person, never features."),
    Key("where", "any", "Row filter applied before anything else: a condition or a list of conditions, all of "
                        "which a row must meet (see `tables.<name>.where`)."),
    Key("privacy", "mapping", "Whom the table's release protects and the contribution bounds (see "
                              "`tables.<name>.privacy`).", required=True),
    Key("cadence", "mapping", "Months with records by design (a survey's waves): `{every: 3, first: YYYY-MM}` "
                              "or `{months: [YYYY-MM, ...]}`; in other months the table's series are missing, "
                              "never zero."),
), example="""\
tables:
  register:
    path: raw/statistics.csv.gz
    format: csv
    delimiter: ";"
    thousands: ","
    privacy: {unit: public}
    where: {column: authority, equals: "E06000001"}
    columns:
      area: {type: area, prefix: "UK:"}
      authority: {type: string}
      population: {type: integer, min: 0}""")

WHERE = Section("tables.<name>.where", (
    "One condition on one column; a list of conditions must all hold (AND). Rows that fail are dropped before "
    "the table is validated (so rows of other regions never need to fit the contract), and the build reports "
    "rows kept and dropped. A missing value never matches. Text, category and area columns compare the text "
    "of the file (area codes without their prefix); numeric columns compare numbers."), (
    Key("column", "text", "The declared column the condition reads.", required=True),
    Key("equals", "text", "Keep rows whose value is exactly this."),
    Key("in", "list", "Keep rows whose value is one of these."),
    Key("not_in", "list", "Keep rows whose value is none of these."),
    Key("min", "number", "Numeric columns: keep rows with a value >= min."),
    Key("max", "number", "Numeric columns: keep rows with a value <= max."),
), example="""\
where:
  - {column: authority, in: ["E06000001", "E06000002"]}
  - {column: population, min: 1}""")

PRIVACY = Section("tables.<name>.privacy", "Required on every table: the unit its release protects and what one "
                                           "unit may contribute; the builder enforces the bounds.", (
    Key("unit", "text", "A pseudonym column (also in `person_columns`), `record`, or `public` (published "
                        "statistics: no bounds, no noise).", required=True),
    Key("max_cells", "integer", "The most (area, period) cells one unit may touch (not for public tables)."),
    Key("max_per_cell", "integer", "The most records one unit may add to one cell (not for public tables)."),
    Key("max_events", "integer", "The most records one unit adds at a date column over the window."),
    Key("clip", "mapping", "`{column: [low, high]}` for every summed column: what one record may add."),
    Key("max_clipped_share", "number", "More than this share of a clipped column's values beyond its bounds "
                                       "holds the build like a drifted one (a scale mistake, not outliers).",
        default=0.05),
    Key("pseudonym_format", "text", "Full-match regex of the unit's pseudonyms after normalisation (Unicode "
                                    "NFKC, lower case, whitespace removed); a pseudonym of another form is "
                                    "refused."),
), example="privacy: {unit: record, max_cells: 1, max_per_cell: 1}")

CADENCE = Section("tables.<name>.cadence", "A table with records in some months only (a survey's waves).", (
    Key("every", "integer", "A wave every this many months.", default=1),
    Key("first", "text", "One wave month `YYYY-MM` (default: the window's first month)."),
    Key("months", "list", "Or: the wave months, `[YYYY-MM, ...]`."),
), example="cadence: {every: 3, first: 2019-01}")

COLUMN = Section("tables.<name>.columns.<column>", "One raw column: its type and what a value must meet.", (
    Key("type", "text", "The column type (see below).", required=True, choices=COLUMN_TYPES),
    Key("format", "text", "strptime format of date, datetime and month columns; datetime: required, date: "
                          "`%Y-%m-%d`, month: `%Y-%m` by default."),
    Key("values", "list", "category and multi_category: the allowed values.", ),
    Key("separator", "text", "multi_category: the separator of the values in one cell."),
    Key("prefix", "text", "area: prepended to the code in the file to make the federation's area key.",
        default=""),
    Key("min", "number", "Smallest plausible value."),
    Key("max", "number", "Largest plausible value."),
    Key("nullable", "boolean", "Whether a cell may be empty.", default=False),
    Key("unit", "text", "Numeric columns: a unit of scale whose range also applies.", choices=tuple(SCALE_UNITS)),
    Key("boundaries", "mapping", "point: `{path: public/<file>.geojson, property: <area code property>}`, the "
                                 "public boundary file whose polygons turn each point into an area on the node."),
), example="""\
columns:
  buurtcode: {type: area, prefix: "BU"}
  opened: {type: date, format: "%d-%m-%Y"}
  share_children: {type: float, unit: share}""")

FEATURE = Section("blocks.<block>.<feature> and label", "One output value per area-period: `op` names the op, "
                                                        "the other keys are its parameters (see the ops below).", (
    Key("op", "text", "The name of an op.", required=True),
    Key("emphasis", "number", "A private table's feature: its share of the table's noise budget (its noise is "
        "divided by this, and the table's sensitivity counts its square), so the table's release stays at the "
        "target epsilon.", default=1.0),
), example="blocks:\n  context:\n    log_population: {op: area_value, table: register, column: population, apply: log}")

SECTIONS: tuple[Section, ...] = (TOP, AREA_REGISTER, PRIVACY_UNIT, PERIODS_MONTH, PERIODS_FIXED, PARTITION,
                                 TABLE, WHERE, PRIVACY, CADENCE, COLUMN, FEATURE, BLOCK, BLOCK_FEATURE)

COLUMN_TYPE_DOCS: dict[str, str] = {
    "string": "free text",
    "integer": "whole numbers (in the table's locale)",
    "float": "numbers (in the table's locale)",
    "date": "a date in `format`",
    "datetime": "a date and time in `format` (required)",
    "month": "a month in `format`",
    "area": "an area code (with `prefix`, it must be in the area register)",
    "category": "one of `values`",
    "multi_category": "several of `values` separated by `separator`",
    "text": "free text (a description, a photo link): declared and parsed, never read by any op, filter or bound",
    "contact": "contact data (name, e-mail, phone): declared and parsed, never read by any op, filter or bound",
    "point": "`lon,lat` or `POINT (lon lat)` (WGS84): places its row in the area of `boundaries` on the node, "
             "where the table has no area code; never read by any op, never leaves the node",
}
assert set(COLUMN_TYPE_DOCS) == set(COLUMN_TYPES)
