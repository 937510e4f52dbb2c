"""The twin's page of one run: its data (`twin_data`) and one offline HTML file (`write_twin`).

Read from the run: the released label history (forecast/predictions.csv truths, else the held-out file's
released values, each at its origin plus the configured horizon), the forecasts of every horizon and the naive forecast beside them, skill.json's gate and
warnings.csv, each node's privacy report, the proposal's code hash, and, when the run kept them,
releases/label.csv (area_code, period, value[, noise_sd]: the label's whole released history, preferred) and
releases/<partner>.csv (area_code, period, series, value, noise_sd). A run without forecast/ shows its one
configured forecast from predictions.csv (naive: the area's current value) and no early warning.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

from server.report import DATA_DIR
from server.report.inputs import ReportInputError, read_csv, read_json
from server.forecast.gate import verdicts
from server.report.privacy import checked_reports
from server.twin import HERE
from server.twin.geography import Place, groupings, map_shapes, places, postcodes, same_city
from server.twin.lang import languages
from server.twin.whatif import sensitivities
from server.twin.uncertainty import band_halves, coverage, noise_sd, population_bands, roll_up, z_of

MODEL = "federated_dp"
LBM_FILES = {"buurt": ("lbm_buurt_heerlen_2002_2024.csv", "bu_code"), "wijk": ("lbm_wijk_heerlen_2002_2022.csv", "wk_code")}
LBM_COLUMNS = ("lbm", "won", "fys", "vrz", "soc", "onv")


def _num(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return round(v, 4) if math.isfinite(v) else None


def read_forecast(run_dir: Path) -> tuple[dict[str, Any] | None, pd.DataFrame | None, pd.DataFrame | None]:
    """skill.json, predictions.csv and warnings.csv of RUN_DIR/forecast, or Nones when the run wrote none."""
    folder = run_dir / "forecast"
    if not (folder / "predictions.csv").is_file():
        return None, None, None
    skill = read_json(folder / "skill.json") if (folder / "skill.json").is_file() else None
    pred = _checked_csv(folder / "predictions.csv", ("area_code", "origin", "target", "model", "held_out"),
                        ("horizon", "prediction"))
    pred["horizon"] = pred["horizon"].astype(int)
    pred["truth"] = pd.to_numeric(pred.get("truth"), errors="coerce")
    pred["held_out"] = pred["held_out"].astype(str).str.lower().isin(("true", "1"))
    warn = None
    if (folder / "warnings.csv").is_file():
        warn = pd.read_csv(folder / "warnings.csv", dtype={"area_code": str})
    return skill, pred, warn


def _checked_csv(path: Path, text: tuple[str, ...], numbers: tuple[str, ...],
                 blank_ok: tuple[str, ...] = ()) -> pd.DataFrame:
    """A CSV artefact with its columns checked: one error naming the file, line and column. A column of
    `blank_ok` may hold empty cells (unknown: NaN), never text."""
    try:
        frame = pd.read_csv(path, dtype={c: str for c in text})
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as err:
        raise ReportInputError(f"{path}: not a readable CSV ({str(err).splitlines()[0]})") from None
    for column in text + numbers:
        if column not in frame.columns:
            raise ReportInputError(f"{path}: column '{column}' is missing")
    for column in numbers:
        values = pd.to_numeric(frame[column], errors="coerce")
        bad = values.isna() & (frame[column].notna() if column in blank_ok else True)
        if bad.any():
            raise ReportInputError(f"{path}: line {int(bad.to_numpy().argmax()) + 2}, column '{column}': "
                                   "not a number")
        frame[column] = values
    return frame


def history_and_held(run_dir: Path, fpred: pd.DataFrame | None) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """The released label history (area_code, period, value), the held-out forecasts (area_code, horizon,
    prediction, truth) and the current forecasts {horizon: frame(area_code, origin, target, prediction, naive)}."""
    if fpred is not None:
        known = fpred[fpred["truth"].notna()]
        history = known.drop_duplicates(["area_code", "target"])[["area_code", "target", "truth"]]
        history = history.rename(columns={"target": "period", "truth": "value"})
        held = fpred[(fpred["model"] == MODEL) & fpred["held_out"] & fpred["truth"].notna()]
        return history, held[["area_code", "horizon", "prediction", "truth"]], {}
    hold = read_csv(run_dir / "holdout_predictions.csv", ("area_code", "period", "y_dp", "pred"))
    cur = read_csv(run_dir / "predictions.csv", ("area_code", "period", "predicted_period", "predicted_liveability"))
    horizon = 1
    if len(cur):
        horizon = max(1, (pd.Period(str(cur["predicted_period"].iloc[0]), "M") - pd.Period(str(cur["period"].iloc[0]), "M")).n)
    # a held-out row's `period` is its origin; `y_dp` is the label released `horizon` months later
    target = (pd.PeriodIndex(hold["period"].astype(str), freq="M") + horizon).astype(str)
    history = pd.DataFrame({"area_code": hold["area_code"], "period": target, "value": hold["y_dp"]})
    history = history.drop_duplicates(["area_code", "period"])
    held = pd.DataFrame({"area_code": hold["area_code"], "horizon": horizon, "prediction": hold["pred"],
                         "truth": hold["y_dp"]})
    naive = pd.to_numeric(cur.get("current_liveability"), errors="coerce") if "current_liveability" in cur else np.nan
    now = pd.DataFrame({"area_code": cur["area_code"], "origin": cur["period"].astype(str),
                        "target": cur["predicted_period"].astype(str), "prediction": cur["predicted_liveability"],
                        "naive": naive})
    return history, held, {horizon: now}


def _released_label(run_dir: Path, history: pd.DataFrame) -> pd.DataFrame:
    """The label's whole released history when the run kept it (releases/label.csv: area_code, period, value and,
    when known, noise_sd, the release's own noise sd per value); else what the forecast files show of it."""
    path = run_dir / "releases" / "label.csv"
    if not path.is_file():
        return history
    frame = _checked_csv(path, ("area_code", "period"), ("value",))
    if "noise_sd" in frame:
        frame["noise_sd"] = pd.to_numeric(frame["noise_sd"], errors="coerce")
    return frame[[c for c in ("area_code", "period", "value", "noise_sd") if c in frame]]


def current_forecasts(fpred: pd.DataFrame, skill: Mapping[str, Any] | None) -> tuple[dict[int, pd.DataFrame], dict]:
    """{horizon: frame(area_code, origin, target, prediction, naive)} of the forecast people read, and the
    naive model beside each horizon (skill.json's best naive, else persistence)."""
    best = dict((skill or {}).get("best_naive") or {})
    now = fpred[~fpred["held_out"]]
    out, naive_of = {}, {}
    for h, rows in now.groupby("horizon"):
        mine = rows[rows["model"] == MODEL]
        if mine.empty:
            continue
        name = str(best.get(str(int(h)), "persistence"))
        naive = rows[rows["model"] == name].set_index("area_code")["prediction"]
        frame = mine[["area_code", "origin", "target", "prediction"]].copy()
        frame["naive"] = frame["area_code"].map(naive)
        out[int(h)], naive_of[int(h)] = frame, name
    return out, naive_of


def twin_data(run_dir: Path, settings: Mapping[str, Any] | None = None, postcode_file: Path | None = None) -> dict:
    """Everything the page shows, as JSON-ready data."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ReportInputError(f"{run_dir}: no such run directory")
    settings = settings or groupings()
    status = read_json(run_dir / "status.json")
    state = status.get("state") if isinstance(status, dict) else status
    if state not in ("completed", "completed-with-refusals"):
        raise ReportInputError(f"{run_dir / 'status.json'}: the run did not complete (state {state!r}); the twin "
                               "shows a completed run only")
    config = read_json(run_dir / "config.json")
    level = float(settings.get("level", 0.9))
    z = z_of(level)
    skill, fpred, warn = read_forecast(run_dir)
    history, held, now = history_and_held(run_dir, fpred)
    history = _released_label(run_dir, history)
    naive_of = {h: "persistence" for h in now}
    if fpred is not None:
        now, naive_of = current_forecasts(fpred, skill)
    history["value"] = pd.to_numeric(history["value"], errors="coerce")
    history = history.dropna(subset=["value"])
    if history.empty:
        raise ReportInputError(f"{run_dir}: no released value of the label in the run's artefacts "
                               "(forecast/predictions.csv truths, holdout_predictions.csv or releases/label.csv)")
    with_data = sorted(set(history["area_code"]) | {c for f in now.values() for c in f["area_code"]})
    buurten = sorted(set(with_data) | same_city(with_data))     # a buurt without releases: on the map, hatched
    fed = config.get("federation", {}) if isinstance(config, dict) else {}
    where = places(buurten, settings, str(fed.get("name", "")) if isinstance(fed, dict) else "")
    pop = {c: p.population for c, p in where.items() if p.level == "buurt"}
    bands = population_bands({c: pop[c] for c in with_data}, int(settings.get("population_bands", 3)))
    sd = noise_sd(history, bands)
    if "noise_sd" in history:      # the releases' own noise where the run kept it: the band's median of it
        known = history.assign(band=history["area_code"].map(bands)).dropna(subset=["noise_sd", "band"])
        sd.update({int(b): float(g["noise_sd"].median()) for b, g in known.groupby("band")})
        pooled = float(known["noise_sd"].median()) if len(known) else float("nan")
        sd = {b: (v if v == v else pooled) for b, v in sd.items()}
    halves = band_halves(held, bands, level)
    values: dict[str, dict[str, list]] = {}
    for period, rows in history.groupby("period"):
        own = rows["noise_sd"] if "noise_sd" in rows else pd.Series(np.nan, index=rows.index)
        values[str(period)] = {c: [float(v), z * (float(n) if n == n else sd[bands[c]])]
                               for c, v, n in zip(rows["area_code"], rows["value"], own)}
    months = [{"period": p, "kind": "released"} for p in sorted(values)]
    forecasts = {}
    for h, frame in sorted(now.items()):
        target = str(frame["target"].iloc[0])
        key = f"{target}+{h}"
        values[key] = {c: [float(v), halves.get((h, bands[c]), float("inf")), _num(n)]
                       for c, v, n in zip(frame["area_code"], frame["prediction"], frame["naive"])}
        months.append({"period": target, "kind": "forecast", "horizon": h, "key": key,
                       "origin": str(frame["origin"].iloc[0]), "naive": naive_of[h]})
        forecasts[h] = key
    for m in months:
        m.setdefault("key", m["period"])
    _roll_ups(values, where, pop, {m["key"]: m["kind"] == "released" for m in months})
    cov = {h: coverage(held, bands, level, h) for h in sorted(set(held["horizon"].astype(int)))}
    shapes, height = map_shapes(buurten)
    whatif, whatif_horizon = sensitivities(run_dir, config) if isinstance(config, dict) else ({}, None)
    data = {
        "run": {"name": run_dir.name, "state": status.get("state") if isinstance(status, dict) else None,
                "label_units": (skill or {}).get("label_units") or _label_units(config), "level": level, "z": z},
        "places": [_place(p, bands) for p in where.values()],
        "shapes": shapes, "map_height": height,
        "months": months,
        "values": {k: {c: [_num(x) for x in v] for c, v in vals.items()} for k, vals in values.items()},
        "bands": _bands(bands, pop, sd, halves, cov),
        "coverage": {str(h): (None if c is None else {"overall": round(c.overall, 4), "n": c.n, "level": c.level})
                     for h, c in cov.items()},
        "warnings": _warnings(skill, warn),
        "skill_gate": (skill or {}).get("gate"),
        "lbm": _lbm(where),
        "partners": _partners(run_dir, set(buurten)),
        "postcodes": postcodes(postcode_file, set(buurten)),
        "whatif": whatif,
        "whatif_horizon": whatif_horizon,
        "provenance": _provenance(run_dir, config, skill),
        "sources": {"lbm": "Leefbaarometer 3, Ministerie van BZK (leefbaarometer.nl), open data",
                    "map": "CBS / Kadaster, Wijk- en buurtkaart 2019 (generalised), CC BY 4.0",
                    "population": "CBS Kerncijfers wijken en buurten 2020, CC BY 4.0"},
        "lang": languages(),
    }
    return data


def _label_units(config: Mapping[str, Any]) -> str:
    try:
        return str(config["federation"]["label"].get("units", ""))
    except (KeyError, TypeError, AttributeError):
        return ""


def _roll_ups(values: dict, where: Mapping[str, Place], pop: Mapping[str, float], released: Mapping[str, bool]) -> None:
    """Each wijk, stadsdeel, gebied and the city for every month, from its buurten (in place)."""
    for key, vals in values.items():
        buurt = {c: (v[0], v[1]) for c, v in vals.items() if c in pop}
        naive = {c: (v[2], 0.0) for c, v in vals.items() if c in pop and len(v) > 2 and v[2] is not None}
        for place in where.values():
            if place.level == "buurt":
                continue
            got = roll_up(buurt, pop, place.members, independent=released[key])
            if got is not None:
                n = roll_up(naive, pop, place.members, True) if naive else None
                vals[place.code] = [got[0], got[1]] + ([n[0]] if n else [])


def _place(p: Place, bands: Mapping[str, int]) -> dict:
    return {"code": p.code, "name": p.name, "level": p.level, "population": _num(p.population), "members": list(p.members),
            "wijk": p.wijk, "stadsdeel": p.stadsdeel, "band": bands.get(p.code)}


def _bands(bands, pop, sd, halves, cov) -> list[dict]:
    out = []
    for b in sorted(set(bands.values())):
        sizes = [pop[c] for c, v in bands.items() if v == b and pop[c] == pop[c]]
        out.append({"band": b, "min": _num(min(sizes)) if sizes else None, "max": _num(max(sizes)) if sizes else None,
                    "areas": sum(1 for v in bands.values() if v == b), "noise_sd": _num(sd.get(b)),
                    "half": {str(h): _num(w) for (h, bb), w in halves.items() if bb == b},
                    "coverage": {str(h): (None if c is None or b not in c.per_band else
                                          {"share": round(c.per_band[b][0], 4), "n": c.per_band[b][1]})
                                 for h, c in cov.items()}})
    return out


def _warnings(skill: Mapping[str, Any] | None, warn: pd.DataFrame | None) -> dict:
    """The early-warning list only where the gate says the model has skill; the naive ranking always."""
    if skill is None or warn is None:
        return {"available": False}
    gate = skill.get("gate") or {}
    shown = bool(gate.get("releasable"))
    rows = []
    for r in warn.to_dict("records"):
        rows.append({"area_code": str(r["area_code"]), "horizon": int(r["horizon"]), "change": _num(r.get("change")),
                     "change_lo": _num(r.get("change_lo")), "change_hi": _num(r.get("change_hi")),
                     "beyond_noise": str(r.get("beyond_noise")).lower() in ("true", "1"),
                     "model_rank": _num(r.get("model_rank")) if shown else None,
                     "naive_change": _num(r.get("naive_change")), "naive_rank": _num(r.get("naive_rank"))})
    return {"available": True, "shown": shown, "horizon": gate.get("horizon"), "skill": _num(gate.get("skill")),
            "skill_lo": _num(gate.get("skill_lo")), "skill_hi": _num(gate.get("skill_hi")),
            "verdicts": verdicts(gate), "rows": rows}


def _lbm(where: Mapping[str, Place]) -> dict[str, list]:
    """The real Leefbaarometer per buurt and wijk (outside reference): [year, lbm, won, fys, vrz, soc, onv]."""
    out: dict[str, list] = {}
    for level, (name, column) in LBM_FILES.items():
        frame = pd.read_csv(DATA_DIR / name)
        for code, rows in frame[frame[column].isin(list(where))].groupby(column):
            out[str(code)] = [[int(r["jaar"])] + [_num(r[c]) for c in LBM_COLUMNS]
                              for r in rows.sort_values("jaar").to_dict("records")]
    return out


def _partners(run_dir: Path, buurten: set[str]) -> dict[str, dict]:
    """Each partner's released series when the run kept them (releases/<partner>.csv), else {}."""
    out: dict[str, dict] = {}
    folder = run_dir / "releases"
    for path in sorted(p for p in folder.glob("*.csv") if p.stem != "label") if folder.is_dir() else []:
        # noise_sd is empty for a series derived from two releases (a mean: a released sum over a released
        # count), whose noise is not one sd: shown without a noise band
        frame = _checked_csv(path, ("area_code", "period", "series"), ("value", "noise_sd"), blank_ok=("noise_sd",))
        series: dict = {}
        for r in frame[frame["area_code"].isin(buurten)].sort_values("period").to_dict("records"):
            series.setdefault(str(r["series"]), {}).setdefault(str(r["area_code"]), []).append(
                [str(r["period"]), _num(r["value"]), _num(r["noise_sd"])])
        out[path.stem] = series
    return out


def _provenance(run_dir: Path, config: Mapping[str, Any], skill: Mapping[str, Any] | None) -> dict:
    """Code bundle hash (the proposal the nodes approved), releases and epsilon per source, the run's config."""
    proposal = read_json(run_dir / "proposal.json") if (run_dir / "proposal.json").is_file() else {}
    sources = []
    for node, report in checked_reports(run_dir).items():
        runs = [r for r in report.get("runs") or [] if str(r.get("run_id", "")).split("#")[0] == run_dir.name]
        sources.append({"source": node, "epsilon": _num(report.get("epsilon")), "delta": report.get("delta"),
                        "accountant": report.get("accountant"), "units": report.get("units"),
                        "releases": [{k: r.get(k) for k in ("run_id", "releases", "first_at", "last_at", "epsilon_alone",
                                                                 "epsilon_cumulative")
                                      if r.get(k) is not None} for r in (runs or report.get("runs") or [])]})
    fed = config.get("federation", {}) if isinstance(config, dict) else {}
    return {"bundle_hash": (proposal or {}).get("bundle_hash"), "run": run_dir.name, "sources": sources,
            "config": {"federation": fed.get("name"), "topology": fed.get("topology"), "label": fed.get("label"),
                       "dp": config.get("dp") if isinstance(config, dict) else None,
                       "seed": config.get("seed") if isinstance(config, dict) else None},
            "forecast_evaluation": (skill or {}).get("evaluation")}


def write_twin(data: Mapping[str, Any], out: Path) -> Path:
    """One HTML file with the page's script, style and data inline: it requests nothing."""
    out.parent.mkdir(parents=True, exist_ok=True)
    blob = json.dumps(data, separators=(",", ":"), allow_nan=False, default=_json_default).replace("</", "<\\/")
    page = (HERE / "page.html").read_text(encoding="utf-8")
    page = page.replace("/*STYLE*/", (HERE / "page.css").read_text(encoding="utf-8"))
    page = page.replace("/*SCRIPT*/", (HERE / "page.js").read_text(encoding="utf-8"))
    page = page.replace("/*DATA*/", blob)
    out.write_text(page, encoding="utf-8")
    return out


def _json_default(x: Any) -> Any:
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.floating,)):
        return _num(x)
    return str(x)


__all__ = ["twin_data", "write_twin"]
