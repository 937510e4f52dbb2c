"""A privacy receipt per partner, in Dutch and English, from the node's own ledger report.

The numbers are those of the report the node computed from its own privacy ledger
(`runs/<run>/privacy/<node>.json`, the output of `dp_accounting.privacy_report`); nothing here computes or
types an epsilon. The words say what left the node, the guarantee with its delta, unit and accountant, and
what it means for a resident.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping


@dataclass(frozen=True)
class Receipt:
    partner: str
    epsilon: float                 # every release of the node so far (its ledger)
    epsilon_run: float | None      # this run's releases alone
    delta: float
    accountant: str
    units: tuple[str, ...]
    left_en: tuple[str, ...]
    left_nl: tuple[str, ...]
    meaning_en: str
    meaning_nl: str
    guarantee: str                 # the ledger report's own statement, verbatim


def _eps(value: float) -> str:
    return f"{value:.2f}"


def _odds(epsilon: float) -> str:
    """e^epsilon in words: how much more likely any conclusion about one resident can become."""
    return f"{math.exp(epsilon):,.1f}" if epsilon < 20 else "more than 100 million"


def _left(report: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    en, nl = [], []
    for table in report.get("tables") or []:
        z = ", ".join(f"{v:.2f}" for v in table.get("noise_multipliers", []))
        en.append(f"{table['releases']} release(s) of table '{table['table']}' as noised area-month totals "
                  f"(Gaussian noise, noise multiplier {z}); unit: {table['unit']}")
        nl.append(f"{table['releases']} vrijgave(n) van tabel '{table['table']}' als totalen per buurt en maand "
                  f"met ruis (Gaussische ruis, ruisfactor {z}); eenheid: {table['unit']}")
    row = report.get("row_level")
    if row:
        en.append(f"{row['releases']} model update(s) trained with DP-SGD ({row['steps']} noised steps); "
                  f"unit: {row['unit']}")
        nl.append(f"{row['releases']} modelupdate(s), getraind met DP-SGD ({row['steps']} stappen met ruis); "
                  f"eenheid: {row['unit']}")
    for fact in report.get("facts") or []:
        if fact.get("kind") == "psi_revealed_set_size":
            en.append(f"the number of its area-months in the key matching (PSI): {fact['value']}")
            nl.append(f"het aantal buurt-maanden in de sleutelvergelijking (PSI): {fact['value']}")
    return en, nl


def receipt(partner: str, report: Mapping[str, Any], run_name: str) -> Receipt:
    """The receipt of one partner from its ledger report (`PrivacyReport.to_dict()`)."""
    epsilon, delta = float(report["epsilon"]), float(report["delta"])
    runs = [r for r in report.get("runs") or [] if str(r.get("run_id", "")).split("#")[0] == run_name]
    run_eps = float(runs[-1]["epsilon_alone"]) if runs else None
    en, nl = _left(report)
    odds = _odds(epsilon)
    meaning_en = (f"Whatever anyone concludes from everything this node has released, that conclusion is at most "
                  f"{odds} times (e^{_eps(epsilon)}) more likely with a resident's records in the data than "
                  f"without them, except with a probability of at most {delta:g}. It is about the unit named "
                  "above; a resident in several units is protected less (see the guarantee).")
    meaning_nl = (f"Wat iemand ook afleidt uit alles wat dit knooppunt heeft vrijgegeven: die conclusie is hoogstens "
                  f"{odds} keer (e^{_eps(epsilon)}) waarschijnlijker met de gegevens van een bewoner dan zonder, "
                  f"behalve met een kans van hoogstens {delta:g}. Dit geldt voor de eenheid hierboven; een bewoner "
                  "die in meerdere eenheden voorkomt, is minder beschermd (zie de garantie).")
    return Receipt(partner, epsilon, run_eps, delta, str(report.get("accountant", "")).upper(),
                   tuple(report.get("units") or ()), tuple(en), tuple(nl), meaning_en, meaning_nl,
                   str(report.get("guarantee", "")))


def receipts(reports: Mapping[str, Mapping[str, Any]], run_name: str) -> list[Receipt]:
    return [receipt(name, report, run_name) for name, report in reports.items()]
