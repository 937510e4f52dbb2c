"""`generate`: writes the raw records of every requested city's nodes, seeded and reproducible."""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from federation.errors import ConfigError
from devtools.synthetic import budget, profile
from devtools.synthetic.city import AREAS_FILE, City
from devtools.synthetic.timeline import Window
from devtools.synthetic.writer import FileFormat, write

from devtools.synthetic.defaults import DEFAULT_CBS, DEFAULT_CITIES, DEFAULT_PROFILES, DEFAULT_RECORDS  # noqa: F401


FALLBACK_WINDOW = ("2019-01", 24)  # for cities whose profiles set no window


def default_window(loaded: list[profile.Profile], start: str | None, months: int | None) -> tuple[str, int]:
    """The window asked for, completed from the profiles' own windows (which must then agree)."""
    own = {p.window for p in loaded if p.window is not None}
    if (start is None or months is None) and len(own) > 1:
        raise ConfigError(f"--start/--months: the profiles of {', '.join(p.city for p in loaded)} set different "
                          f"windows ({', '.join(f'{s} + {m} months' for s, m in sorted(own))}); give --start and --months")
    fallback = own.pop() if own else FALLBACK_WINDOW
    return (fallback[0] if start is None else start), (fallback[1] if months is None else int(months))


@dataclass(frozen=True)
class TableSummary:
    city: str
    node: str
    table: str
    path: Path
    rows: int
    seconds: float


@dataclass(frozen=True)
class GenerationSummary:
    out: Path
    seed: int
    records_requested: int
    tables: tuple[TableSummary, ...]

    @property
    def records_written(self) -> int:
        return sum(t.rows for t in self.tables)

    def rows(self, city: str, table: str) -> int:
        return sum(t.rows for t in self.tables if t.city == city and t.table == table)


def generate(
    out: Path,
    cities: list[str] | tuple[str, ...] = DEFAULT_CITIES,
    seed: int = 7,
    records: int = DEFAULT_RECORDS,
    start: str | None = None,
    months: int | None = None,
    cbs_path: Path = DEFAULT_CBS,
    profiles: Path = DEFAULT_PROFILES,
    progress: Callable[[str], None] | None = None,
    world: str = profile.DEFAULT_WORLD,
) -> GenerationSummary:
    """Write `data/nodes/<node>/{public,raw}/...` for every city; same arguments, same bytes.

    `start`/`months` default to the window the profiles set (every shipped city: 36 months from 2019-01), else
    2019-01 and 24 months. Everything (profiles, world, CBS file, record budget) is checked before the
    first file is written.
    """
    if not cities:
        raise ConfigError("--cities: name at least one city")
    if len(set(cities)) != len(cities):
        raise ConfigError(f"--cities: a city is named twice in {','.join(cities)}")
    loaded = [profile.load(Path(profiles), c, world) for c in cities]
    window = Window.parse(*default_window(loaded, start, months))
    months = window.months
    nodes: dict[str, str] = {}
    for p in loaded:
        for node in p.nodes:
            if node in nodes:
                raise ConfigError(f"{p.path}: node '{node}' is also a node of city '{nodes[node]}'")
            nodes[node] = p.city
    built = [City(p, window, seed, Path(cbs_path)) for p in loaded]
    demands = {k: d for city in built for k, d in city.demands().items()}
    allocation = budget.allocate(demands, int(records), f"{', '.join(cities)} and {months} months")

    for node in nodes:  # fail on an unusable --out before the first file is written
        for sub in ("public", "raw"):
            try:
                (Path(out) / node / sub).mkdir(parents=True, exist_ok=True)
            except OSError as err:
                raise ConfigError(f"--out: cannot create directory '{Path(out) / node / sub}': {err.strerror}") from None
    say = progress or (lambda _line: None)
    summaries: list[TableSummary] = []
    for city in built:
        name = city.profile.city
        for node in city.profile.nodes:
            began = time.perf_counter()
            rows = write(Path(out) / node / AREAS_FILE, city.areas_table(), FileFormat())
            summaries.append(TableSummary(name, node, AREAS_FILE, Path(out) / node / AREAS_FILE, rows,
                                          time.perf_counter() - began))
        for table in city.tables:
            began = time.perf_counter()
            path = Path(out) / table.node / table.path
            rows = write(path, table.render(allocation.get((name, table.node, table.name))), table.format)
            seconds = time.perf_counter() - began
            summaries.append(TableSummary(name, table.node, table.name, path, rows, seconds))
            say(f"{name:>9} {table.node}/{table.path}: {rows:,} rows in {seconds:.1f} s")
    return GenerationSummary(Path(out), seed, int(records), tuple(summaries))
