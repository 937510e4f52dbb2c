"""A YAML grammar as data: each key of a section with its type, default and meaning.

Node and coordinator read YAML written by people (data contracts, block schemas); each file kind declares
its sections here once, so the parser and the generated reference (docs/contract-reference.md) cannot
drift apart. Keys starting with `_` are YAML anchors and are ignored everywhere.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping


class _NoDefault:
    def __repr__(self) -> str:
        return "(none)"


NO_DEFAULT: Any = _NoDefault()

# What a declared type accepts. `text` takes numbers too (YAML reads `value: 1990` as an integer).
TYPES: dict[str, Callable[[Any], bool]] = {
    "text": lambda v: isinstance(v, (str, int, float)) and not isinstance(v, bool),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "list": lambda v: isinstance(v, (list, tuple)),
    "mapping": lambda v: isinstance(v, Mapping),
    "text or list": lambda v: isinstance(v, (str, int, float, list, tuple)) and not isinstance(v, bool),
    "any": lambda v: True,
}


@dataclass(frozen=True)
class Key:
    """One key of a contract section (or one parameter of an op)."""

    name: str
    type: str
    doc: str
    required: bool = False
    default: Any = NO_DEFAULT
    choices: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        assert self.type in TYPES, self.type

    def check(self, value: Any, where: str, fail: Any) -> None:
        """Refuse a value of the wrong type or outside `choices` (None means "not given")."""
        if value is None:
            return
        if not TYPES[self.type](value):
            raise fail(f"{where}: {self.name} must be {_article(self.type)}; got {value!r} ({type(value).__name__})")
        if self.choices and str(value) not in self.choices:
            raise fail(f"{where}: {self.name} must be one of {', '.join(self.choices)}; got {value!r}")


def _article(kind: str) -> str:
    return {"integer": "an integer (a whole number)", "any": "anything", "list": "a list ([a, b])",
            "mapping": "a mapping ({key: value})", "text or list": "a text or a list of texts"}.get(kind, f"a {kind}")


@dataclass(frozen=True)
class Section:
    """A mapping of the contract (the top level, a table, a column, ...) and its keys."""

    name: str          # e.g. "tables.<name>"
    doc: str
    keys: tuple[Key, ...]
    example: str = ""

    def names(self) -> set[str]:
        return {k.name for k in self.keys}

    def key(self, name: str) -> Key:
        return next(k for k in self.keys if k.name == name)

    def default(self, name: str) -> Any:
        return self.key(name).default

    def get(self, spec: Mapping[str, Any], name: str) -> Any:
        """The value of key `name` in `spec`, or its declared default."""
        value = spec.get(name)
        if value is None:
            default = self.default(name)
            return None if default is NO_DEFAULT else default
        return value

    def unknown(self, spec: Mapping[str, Any], where: str, fail: Any) -> None:
        """Refuse keys the section does not have (a typo must never be ignored)."""
        extra = sorted(str(k) for k in spec if k not in self.names() and not str(k).startswith("_"))
        if extra:
            raise fail(f"{where}: unknown key(s) {', '.join(extra)} (allowed: {', '.join(sorted(self.names()))})")

    def check(self, spec: Mapping[str, Any], where: str, fail: Any) -> None:
        """Unknown keys, then required keys and types, in the order the keys are declared."""
        self.unknown(spec, where, fail)
        for key in self.keys:
            if key.required and spec.get(key.name) in (None, ""):
                raise fail(f"{where}: `{key.name}` is required ({key.doc.split('.')[0].lower()})")
            key.check(spec.get(key.name), where, fail)
