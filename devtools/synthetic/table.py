"""What every generated raw table declares in its city profile: file, format and its named columns."""
from __future__ import annotations

from devtools.synthetic import formats
from devtools.synthetic.context import CityContext, require
from devtools.synthetic.writer import FileFormat


class RawTable:
    """Base of the generated tables: reads the common part of a table's profile section, and gives the
    table its own random generator (keyed by node and table name, so independent of generation order)."""

    required_columns: tuple[str, ...] = ()

    def __init__(self, ctx: CityContext, node: str, name: str, spec: dict):
        self.ctx, self.node, self.name, self.spec = ctx, node, name, spec
        self.where = f"{ctx.where} (nodes.{node}.{name})"
        self.path = str(require(spec, "file", self.where, str))
        self.format = FileFormat.from_spec(spec, self.where)
        formats.check(spec, self.where)
        self.columns = require(spec, "columns", self.where, dict)
        for key in self.required_columns:
            require(self.columns, key, f"{self.where} columns", str)
        self.rng = ctx.rng(f"{node}/{name}")
