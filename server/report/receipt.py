"""A privacy receipt per partner, in every language the pages are shown in, from the node's own ledger report.

The figures are those of the report the node computed from its own privacy ledger
(`runs/<run>/privacy/<node>.json`, the output of `dp_accounting.privacy_report`), each recomputed from the
release history that file lists with the project's accountant before it is printed (`server.report.privacy`):
a stated figure that is not the recomputed one refuses the report; a file that does not hold the history to
recompute it gets a receipt that prints no epsilon and says why. The words come from the language files (`configs/lang/report/<language>.yaml`, in the
order of `configs/languages.yaml`): what left the node, the guarantee with its delta, unit and accountant, and what it means for a
resident, in plain words. The epsilon is put in context by what it bounds: how far a worst-case guess about
one resident can move (from 1 in 100, and from 1 in 2), the odds bound e^epsilon applied to those guesses.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

from federation.errors import ConfigError
from server.languages import folder, shown
from server.report.lang import PAGE, localise, texts
from server.report.privacy import Recomputed, recompute


@dataclass(frozen=True)
class Receipt:
    partner: str
    epsilon: float | None          # every release of the node so far, recomputed (None: the file cannot tell)
    epsilon_run: float | None      # this run's releases alone
    delta: float
    accountant: str
    units: tuple[str, ...]
    guarantee: str                 # the ledger report's own statement, verbatim (technical, English)
    texts: Mapping[str, Mapping[str, Any]] | None = None   # per language shown, the readers' own first: heading,
    #                                                        intro, what left, guarantee (before, after), meaning


@lru_cache(maxsize=None)
def words(language: str) -> dict[str, Any]:
    """The receipt's words in `language` from its language file."""
    receipt = texts(language).get("receipt")
    if not isinstance(receipt, dict):
        raise ConfigError(f"{folder(PAGE) / (language + '.yaml')}: no 'receipt' section")
    return dict(receipt)


def _number(value: float, places: int, lang: Mapping[str, Any]) -> str:
    return localise(f"{value:,.{places}f}", lang["decimal"])


def after_guess(epsilon: float, before: float) -> float:
    """The most a guess about one resident with chance `before` can become after the releases: odds grow by at
    most e^epsilon (the delta part aside), so the chance by at most e^eps p / (e^eps p + 1 - p)."""
    return 1.0 / (1.0 + (1.0 - before) / before * math.exp(-min(epsilon, 700.0)))


def _chance(p: float, lang: Mapping[str, Any]) -> str:
    return str(lang["almost_all"]) if p >= 0.9995 else f"{_number(100 * p, 1, lang)}%"


_UNIT = re.compile(r"^(?P<what>.*?)(?:, table (?P<table>.+))?$")
_PERSON = re.compile(r"^one person(?: or household)?(?: \((?P<column>[^)]*)\))?$")


def _split_unit(unit: str) -> tuple[str, str | None]:
    match = _UNIT.match(unit.strip())
    return (match.group("what"), match.group("table")) if match else (unit, None)


def unit_words(unit: str, lang: Mapping[str, Any], table: bool = True) -> str:
    """A ledger's unit of privacy (English, as the ledger names it) in `lang`'s words; with `table`, the table it
    is counted in."""
    what, name = _split_unit(unit)
    names = lang["units"]
    person = _PERSON.match(what)
    if what in ("area-period row", "row"):
        text = names["row"]
    elif what == "record" or what.startswith("one record"):
        text = names["record"]
    elif person:
        text = names["person"] + (f" ({person.group('column')})" if person.group("column") else "")
    else:
        text = f"'{what}'"
    return text + (f", {names['table']} {name}" if name and table else "")


def units_words(units: tuple[str, ...], lang: Mapping[str, Any]) -> str:
    """Several units in words, one kind of unit once with the tables it is counted in."""
    tables: dict[str, list[str]] = {}
    for unit in units:
        what, name = _split_unit(unit)
        tables.setdefault(unit_words(what, lang), []).extend([name] if name else [])
    names = lang["units"]
    parts = [what + (f" ({names['table'] if len(t) == 1 else names['tables']} {', '.join(t)})" if t else "")
             for what, t in tables.items()]
    return f" {names['and']} ".join(parts) or names["row"]


def _left(report: Mapping[str, Any], lang: Mapping[str, Any]) -> list[str]:
    out = []
    for table in report.get("tables") or []:
        noise = ", ".join(_number(v, 2, lang) for v in table.get("noise_multipliers", []))
        out.append(lang["table"].format(releases=table["releases"], table=table["table"], noise=noise,
                                        unit=unit_words(str(table["unit"]), lang, table=False)))
    row = report.get("row_level")
    if row:
        out.append(lang["row_level"].format(releases=row["releases"], steps=row["steps"],
                                            unit=unit_words(str(row["unit"]), lang)))
    for fact in report.get("facts") or []:
        if fact.get("kind") == "psi_revealed_set_size":
            out.append(lang["psi"].format(value=fact["value"]))
    return out


def _texts(lang: Mapping[str, Any], epsilon: float | None, run_eps: float | None, delta: float, accountant: str,
           units: tuple[str, ...], left: list[str]) -> dict[str, Any]:
    unit_list = units_words(units, lang)
    before, after = lang["guarantee"].split("{epsilon}", 1)
    after = after.format(delta=f"{delta:g}", units=unit_list, accountant=accountant)
    if epsilon is None:   # never a figure that was not recomputed from the history of what was released
        return {"language": lang["language"], "intro": lang["left"], "left": tuple(left),
                "epsilon": lang["not_recomputed"], "guarantee": (before.format(), after),
                "meaning": " ".join(lang["not_recomputed_meaning"].split())}
    eps = _number(epsilon, 2, lang)
    if run_eps is not None:
        after += lang["run_alone"].format(epsilon=_number(run_eps, 2, lang))
    meaning = " ".join(lang["meaning"].split()).format(
        after_1=_chance(after_guess(epsilon, 0.01), lang), after_50=_chance(after_guess(epsilon, 0.5), lang),
        one_in=_number(1 / delta, 0, lang) if delta > 0 else "∞", unit=unit_list)
    return {"language": lang["language"], "intro": lang["left"], "left": tuple(left), "epsilon": eps,
            "guarantee": (before.format(), after), "meaning": meaning}


def receipt(partner: str, report: Mapping[str, Any], run_name: str, checked: Recomputed | None = None,
            path: Path | None = None) -> Receipt:
    """The receipt of one partner from its ledger report (`PrivacyReport.to_dict()`), its epsilon recomputed
    from the history the report lists (`checked`, else recomputed here; `path` names the file in errors)."""
    if checked is None:
        checked = recompute(report, path or Path("privacy") / f"{partner}.json", run_name)
    epsilon, delta, run_eps = checked.epsilon, float(report["delta"]), checked.epsilon_run
    accountant = str(report.get("accountant", "")).upper()
    units = tuple(report.get("units") or ())
    texts = {code: _texts(words(code), epsilon, run_eps, delta, accountant, units, _left(report, words(code)))
             for code in shown()}
    return Receipt(partner, epsilon, run_eps, delta, accountant, units, str(report.get("guarantee", "")), texts)


def receipts(reports: Mapping[str, Mapping[str, Any]], run_name: str,
             checked: Mapping[str, Recomputed] | None = None, folder: Path | None = None) -> list[Receipt]:
    """Every partner's receipt; `checked`: their recomputed figures (`server.report.privacy.recompute`)."""
    return [receipt(name, report, run_name, (checked or {}).get(name),
                    (folder / f"{name}.json") if folder is not None else None) for name, report in reports.items()]
