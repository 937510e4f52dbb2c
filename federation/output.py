"""What a command prints, and where: its result (a table, JSON, the paths it wrote) on stdout; progress and
diagnostics through `logging` on stderr, so that `pulse-twin X --json | jq` and `> result.txt` get only the
result.
"""
from __future__ import annotations

import json
import logging
import sys
from typing import Any, Sequence

log = logging.getLogger("pulse_twin")


def setup_logging(verbose: bool = False) -> None:
    """One handler on stderr, plain lines (the messages are written for people); set once per process."""
    if log.handlers:
        return
    handler = _Stderr()
    handler.setFormatter(logging.Formatter("%(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.DEBUG if verbose else logging.INFO)
    log.propagate = False


class _Stderr(logging.Handler):
    """Writes to whatever `sys.stderr` is now (a test's capture, a redirected stream), not the one at set-up."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
            sys.stderr.flush()
        except Exception:  # noqa: BLE001 - logging must never break the command
            self.handleError(record)


def progress(line: str) -> None:
    """A step under way: to stderr through `logging`."""
    log.info(line)


def result(line: str = "") -> None:
    """The command's own output: to stdout."""
    print(line, flush=True)


def emit_json(data: Any) -> None:
    """`--json`: one JSON document on stdout, keys sorted; numpy scalars as numbers, anything else that is not
    JSON-native (paths, dates) as text."""
    print(json.dumps(data, indent=2, sort_keys=True, default=_plain), flush=True)


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") and callable(value.item) else str(value)


def table(header: Sequence[str], rows: Sequence[Sequence[Any]], title: str | None = None) -> str:
    """An aligned text table (rich's, without colour or box-drawing, so it reads the same in a log file)."""
    from rich.console import Console
    from rich.table import Table

    grid = Table(title=title, box=None, title_justify="left", pad_edge=False)
    for i, name in enumerate(header):
        grid.add_column(name, justify="left" if i == 0 else "right")
    for row in rows:
        grid.add_row(*(f"{v:.3f}" if isinstance(v, float) else str(v) for v in row))
    console = Console(width=120, no_color=True, highlight=False, force_terminal=False)
    with console.capture() as captured:
        console.print(grid)
    return "\n".join(line.rstrip() for line in captured.get().rstrip("\n").splitlines())
