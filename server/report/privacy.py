"""The partners' privacy reports, checked before a receipt prints any of their figures.

Two promises of the project meet here: a record of everything that left a node, and every epsilon printed
coming from an accountant fed with the real history of what was released. So the report:
- names every partner of the run (its `status.json`, else its config) whose `privacy/<partner>.json` is absent:
  the page and the console say so, and the gate refuses (`privacy.require`);
- recomputes each partner's epsilon from the release history its file lists (the Gaussian releases of each
  table: how many, at which noise multiplier; the row-level releases' schedule: noise multiplier, sample rate,
  steps) with the project's accountant the file names (`dp_accounting`), and refuses the run, naming the file,
  when a figure the file states (epsilon, per table, this run alone, the guarantee's words) is not the
  recomputed one; when the file does not hold enough history to recompute (an earlier version's row-level line
  without its schedule, a table's releases at several noise multipliers without their counts) its receipt
  prints no epsilon and says so, and the gate refuses.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from dp_accounting import Release, get_accountant
from dp_accounting.errors import ConfigError
from server.report.inputs import ReportInputError

# A stated figure matches when it is the recomputed one to this relative precision (far below the 2 decimals a
# receipt prints; the accountants are deterministic, so an honest file matches to the last digit).
REL_TOL = 1e-6


@dataclass(frozen=True)
class Recomputed:
    epsilon: float | None          # the node's epsilon over its whole history; None: the file cannot tell
    epsilon_run: float | None      # this run's releases alone; None: not this run's, or the file cannot tell
    why: str = ""                  # why epsilon is None (English, for the gate and the notes)


def expected_partners(status: Mapping[str, Any], config: Mapping[str, Any]) -> list[str]:
    """The nodes whose privacy report the run must hold: those its status lists (vertical `partners`,
    horizontal `nodes`), else the partners of its configuration."""
    for key in ("partners", "nodes"):
        listed = status.get(key)
        if isinstance(listed, list) and listed:
            return [str(p) for p in listed]
    partners = (config.get("federation") or {}).get("partners")
    return [str(p) for p in partners] if isinstance(partners, Mapping) else []


def missing_partners(status: Mapping[str, Any], config: Mapping[str, Any],
                     reports: Mapping[str, Any]) -> list[str]:
    return [p for p in expected_partners(status, config) if p not in reports]


def _gaussian(z: float) -> Release:
    return Release(mechanism="gaussian", noise_multiplier=z, sample_rate=1.0, steps=1, run_id="report", round=0,
                   kind="dp-aggregate")


def _history(report: Mapping[str, Any], path: Path) -> tuple[list[Release] | None, dict[str, list[Release]], str]:
    """The node's releases as its file lists them (None and why when it does not hold them all), and each
    table's own."""
    tables: dict[str, list[Release]] = {}
    history: list[Release] = []
    why = ""
    try:
        for line in report.get("tables") or []:
            n, zs = int(line["releases"]), [float(z) for z in line["noise_multipliers"]]
            if len(zs) == 1:
                own = [_gaussian(zs[0]) for _ in range(n)]
            elif len(zs) == n:
                own = [_gaussian(z) for z in zs]
            else:
                why = why or (f"table {line['table']}: {n} releases at {len(zs)} different noise multipliers, the "
                              "file does not say how many at each")
                continue
            tables[str(line["table"])] = own
            history += own
        row = report.get("row_level")
        if row:
            schedule = row.get("schedule") or []
            if not schedule:
                why = why or ("its row-level releases (DP-SGD) are listed without their noise multiplier and "
                              "sample rate (a privacy report of an earlier version)")
            history += [Release(noise_multiplier=float(z), sample_rate=float(q), steps=int(s), run_id="report",
                                round=0, kind="row-level") for z, q, s in schedule]
        listed = sum(len(t) for t in tables.values()) + (int(row["releases"]) if row else 0)
        if not why and int(report.get("releases", listed)) != listed:
            why = (f"it states {report.get('releases')} releases, its tables and row-level line list {listed}")
    except (KeyError, TypeError, ValueError, ConfigError) as err:
        raise ReportInputError(f"{path}: not a node privacy report (its release history: {err})") from None
    return (None if why else history), tables, why


def _same(stated: Any, computed: float) -> bool:
    return isinstance(stated, (int, float)) and not isinstance(stated, bool) and \
        math.isclose(float(stated), computed, rel_tol=REL_TOL, abs_tol=1e-9)


def _refuse(path: Path, what: str, stated: Any, computed: float, accountant: str, delta: float) -> None:
    shown = f"{stated:.4f}" if isinstance(stated, (int, float)) else repr(stated)
    raise ReportInputError(f"{path}: {what} is stated as {shown}, but the release history it lists gives {computed:.4f} "
                           f"({accountant.upper()}, delta {delta:g}); no page prints an epsilon that does not "
                           "come from the history of what was released")


def recompute(report: Mapping[str, Any], path: Path, run_name: str) -> Recomputed:
    """The node's epsilon (and this run's) recomputed from the history its file lists, every stated figure
    checked against it (a mismatch: ReportInputError naming the file)."""
    try:
        accountant = get_accountant(str(report.get("accountant", "")))
        delta = float(report["delta"])
        if not 0 < delta < 1:
            raise ValueError(f"delta {delta!r} is not between 0 and 1")
    except (ConfigError, KeyError, TypeError, ValueError) as err:
        raise ReportInputError(f"{path}: not a node privacy report ({err})") from None
    name = accountant.name
    history, tables, why = _history(report, path)
    for line in report.get("tables") or []:     # each table's own figure, where the file lists its releases
        own = tables.get(str(line.get("table")))
        if own is not None and not _same(line.get("epsilon"), e := accountant.epsilon(own, delta)):
            _refuse(path, f"the epsilon of table {line.get('table')}", line.get("epsilon"), e, name, delta)
    if history is None:
        return Recomputed(None, None, why)
    epsilon = accountant.epsilon(history, delta)
    if not _same(report.get("epsilon"), epsilon):
        _refuse(path, "the node's epsilon", report.get("epsilon"), epsilon, name, delta)
    aggregates = [r for r in history if r.mechanism == "gaussian"]
    if report.get("epsilon_aggregates") is not None and aggregates and \
            not _same(report["epsilon_aggregates"], e := accountant.epsilon(aggregates, delta)):
        _refuse(path, "the epsilon of its DP aggregates", report["epsilon_aggregates"], e, name, delta)
    row = report.get("row_level")
    if row and not _same(row.get("epsilon"), e := accountant.epsilon(history[len(aggregates):], delta)):
        _refuse(path, "the epsilon of its row-level releases", row.get("epsilon"), e, name, delta)
    guarantee = str(report.get("guarantee", ""))
    if history and f"({epsilon:.4f}, " not in guarantee:
        raise ReportInputError(f"{path}: its guarantee in words does not state the epsilon its release history "
                               f"gives ({epsilon:.4f}, {name.upper()}, delta {delta:g})")
    return Recomputed(epsilon, _run_alone(report, path, run_name, history, accountant, delta))


def _run_alone(report: Mapping[str, Any], path: Path, run_name: str, history: Sequence[Release], accountant: Any,
               delta: float) -> float | None:
    """This run's epsilon alone, when the file tells which releases were this run's: all of them (the node's
    only run), or a count of releases that all share one noise multiplier. Else None: not printed."""
    runs = [r for r in report.get("runs") or [] if isinstance(r, Mapping)]
    mine = [r for r in runs if str(r.get("run_id", "")).split("#")[0] == run_name]
    if not mine:
        return None
    line = mine[-1]
    if len(runs) == 1:
        epsilon = accountant.epsilon(history, delta)
    elif history and all(r.mechanism == "gaussian" for r in history) and \
            len({r.noise_multiplier for r in history}) == 1:
        try:
            epsilon = accountant.epsilon([history[0]] * int(line["releases"]), delta)
        except (KeyError, TypeError, ValueError):
            return None
    else:
        return None
    if not _same(line.get("epsilon_alone"), epsilon):
        _refuse(path, f"the epsilon of run {line.get('run_id')} alone", line.get("epsilon_alone"), epsilon,
                accountant.name, delta)
    return epsilon


def checked_reports(run_dir: Path) -> dict[str, dict[str, Any]]:
    """Each node's privacy report as every page that prints its figures must read it (the twin, the colleague):
    a figure that is not the one its release history gives refuses (ReportInputError naming the file), and a
    figure that cannot be recomputed from the file is taken out (`epsilon`, this run's `epsilon_alone`), so
    nothing prints an epsilon no accountant computed."""
    from server.report.inputs import privacy_reports

    out = {}
    for node, report in privacy_reports(run_dir).items():
        checked = recompute(report, Path(run_dir) / "privacy" / f"{node}.json", Path(run_dir).name)
        report = dict(report)
        if checked.epsilon is None:
            report.pop("epsilon", None)
        runs = [r for r in report.get("runs") or [] if isinstance(r, Mapping)]
        mine = [r for r in runs if str(r.get("run_id", "")).split("#")[0] == Path(run_dir).name]
        verified = mine[-1] if mine and checked.epsilon_run is not None else None
        # only this run's own figure is recomputed (`_run_alone`); other runs' lines keep their counts and dates
        report["runs"] = [{k: v for k, v in r.items()
                           if k != "epsilon_cumulative" and (k != "epsilon_alone" or r is verified)} for r in runs]
        out[node] = report
    return out
