"""How real the synthetic world's dynamics are, and how much of its future a forecaster could see.

`python -m devtools.synthetic.calibration` prints two tables for the Heerlen profile (whose levels are the
real Leefbaarometer and whose partners' files it reads), in each world:

1. Calibration: the latent liveability of every area simulated over 2014-2024 and read once a year (the
   year's mean), against the real Leefbaarometer per buurt of the same years (the profile's
   `latent.levels` file): spread of levels, the R^2 of the score two years earlier (persistence), the sd
   of 2-, 4- and 10-year changes and the correlation of successive 2-year changes.
2. Forecast information: records generated in a temporary folder, the survey label per area and wave,
   and for each horizon h the next wave's label forecast from month t by (a) the best trailing mean of
   the label's waves (naive), (b) a linear model on the label's own history, (c) that model plus the
   partners' recent rises in their records (youth-nuisance reports, benefit and debt intakes, buurtteam
   intakes, police registrations), (d) that model plus the true lead drivers (an oracle, from the
   simulation). Each is scored leaving whole areas out; skill = 1 - MSE / MSE(best naive).

In the default world (c) and (d) beat (a) and (b); in the null world they must not. This is a check of the
generator, not of the federated model (that is `benchmarks.skill`).
"""
from __future__ import annotations

import argparse
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from devtools.synthetic import profile as profiles
from devtools.synthetic.city import City
from devtools.synthetic.defaults import DEFAULT_CBS, DEFAULT_PROFILES
from devtools.synthetic.generator import generate
from devtools.synthetic.latent import LatentPath
from devtools.synthetic.timeline import Window
from federation.errors import ConfigError
from federation.output import log, result, setup_logging, table

REAL_YEARS = (2014, 2016, 2018, 2020, 2022, 2024)
# Partner streams whose recent rises a forecaster could read: (node, file, time column, filter column, values)
STREAMS: dict[str, tuple[str, str, str, str | None, tuple[str, ...]]] = {
    "youth_reports": ("municipality", "raw/meldingen_openbare_ruimte.csv", "gemeld_op", "categorie", ("overlast_jeugd", "graffiti")),
    "police_nuisance": ("police", "raw/incidents.csv", "datum_registratie", "incidentsoort", ("overlast", "vernieling_openbare_orde")),
    "police_crime": ("police", "raw/incidents.csv", "datum_registratie", "incidentsoort", ("drugs", "diefstal_overig", "woninginbraak", "geweld_seksueel")),
    "benefit_intakes": ("municipality", "raw/uitkeringen.parquet", "startdatum", "regeling", ("bijstand", "schuldhulp", "bijzondere_bijstand")),
    "buurtteam_intakes": ("buurtteams", "raw/casussen.csv", "datum_aanmelding", None, ()),
}


def dynamics(wide: pd.DataFrame) -> dict[str, float]:
    """Figures of a table area x year (years two apart): level sd, 2-year persistence R^2, change sds."""
    years = list(wide.columns)
    x = np.concatenate([wide[a].to_numpy() for a in years[:-1]])
    y = np.concatenate([wide[b].to_numpy() for b in years[1:]])
    centred = wide - wide.mean()  # changes net of the city's common trend
    steps = centred.diff(axis=1).iloc[:, 1:].to_numpy()

    def change_sd(k: int) -> float:
        return float(np.mean([(centred[a + k] - centred[a]).std() for a in years if a + k in years]))

    return {
        "level_sd": float(wide.std().mean()),
        "persistence_r2_2y": float(1 - ((y - x) ** 2).sum() / ((y - y.mean()) ** 2).sum()),
        "change_sd_2y": change_sd(2),
        "change_sd_4y": change_sd(4),
        "change_sd_10y": change_sd(10),
        "change_min_10y": float((wide[years[-1]] - wide[years[0]]).min()),
        "change_max_10y": float((wide[years[-1]] - wide[years[0]]).max()),
        "successive_change_corr": float(np.corrcoef(steps[:, :-1].ravel(), steps[:, 1:].ravel())[0, 1]),
    }


def real_dynamics(profile: profiles.Profile) -> dict[str, float]:
    """The figures of the real Leefbaarometer file the profile's levels come from."""
    path = Path(profile.path).parent / profile.data["latent"]["levels"]["file"]
    frame = pd.read_csv(path, dtype={"bu_code": str})
    return dynamics(frame.pivot(index="bu_code", columns="jaar", values="lbm")[list(REAL_YEARS)])


def simulated_dynamics(profile: profiles.Profile, seed: int) -> dict[str, float]:
    """The same figures for the profile's latent liveability over 2014-2024 (the mean of each year)."""
    city = City(profile, Window.parse("2014-01", 132), seed, DEFAULT_CBS)
    live = city.ctx.latent.liveability()
    yearly = live.reshape(live.shape[0], 11, 12).mean(axis=2)
    wide = pd.DataFrame(yearly, index=city.ctx.areas.codes, columns=range(2014, 2025))
    return dynamics(wide[list(REAL_YEARS)])


@dataclass(frozen=True)
class Panel:
    """Per area (A) and month (T): survey label (NaN outside waves), partner rises, true drivers seen."""

    areas: list[str]
    label: np.ndarray       # (A, T) the exact label: the target
    rises: np.ndarray       # (A, T, S) log(1 + 3-month mean) - log(1 + 12-month mean), per stream
    drivers: np.ndarray     # (A, T, J) the lead drivers as partners' records read them
    population: np.ndarray  # (A,)
    history: np.ndarray | None = None   # (A, T) the label the forecasts start from (a DP release), else `label`

    def keep(self, rows: np.ndarray) -> "Panel":
        return Panel([c for c, k in zip(self.areas, rows) if k], self.label[rows], self.rises[rows],
                     self.drivers[rows], self.population[rows], None if self.history is None else self.history[rows])


def _counts(root: Path, codes: list[str], months: list[str], stream: tuple) -> np.ndarray:
    node, file, time, column, values = stream
    path = root / node / file
    if path.suffix == ".parquet":
        frame = pd.read_parquet(path)
        month = pd.to_datetime(frame[time]).dt.strftime("%Y-%m")
    else:
        sep = ";" if node == "police" else ","
        frame = pd.read_csv(path, sep=sep, encoding="cp1252" if node == "police" else "utf-8", dtype=str)
        fmt = "%d-%m-%Y %H:%M" if node == "police" else None
        month = pd.to_datetime(frame[time], format=fmt).dt.strftime("%Y-%m")
    keep = frame[column].isin(values) if column else pd.Series(True, index=frame.index)
    counts = pd.crosstab(frame.loc[keep, "buurtcode"], month[keep])
    return counts.reindex(index=codes, columns=months, fill_value=0).to_numpy(dtype=np.float64)


def _rises(series: np.ndarray) -> list[np.ndarray]:
    """(A, T) monthly counts or rates -> their rise over 3 months against the 12-month mean (log1p)."""
    frame = pd.DataFrame(np.clip(series, 0, None)).T   # a DP release can be negative: a rate is not
    year = np.log1p(frame.rolling(12, min_periods=12).mean().T.to_numpy())
    return [np.log1p(frame.rolling(k, min_periods=k).mean().T.to_numpy()) - year for k in (3,)]


def panel(root: Path, latent: LatentPath, codes: list[str], months: list[str]) -> Panel:
    survey = pd.read_csv(root / "municipality" / "raw" / "bewonersenquete.csv", dtype={"buurtcode": str})
    survey["live"] = latent.reference_level + survey.filter(like="score_").sum(axis=1)
    label = survey.pivot_table(index="buurtcode", columns="peilmaand", values="live", aggfunc="mean")
    label = label.reindex(index=codes, columns=months).to_numpy()
    rises = [r for stream in STREAMS.values() for r in _rises(_counts(root, codes, months, stream))]
    areas = pd.read_csv(root / "municipality" / "public" / "areas.csv", dtype={"area_code": str})
    pop = areas.groupby("area_code")["population"].mean().reindex(codes).to_numpy()
    drivers = latent.drivers if latent.drivers is not None else np.zeros((len(codes), len(months), 0))
    return Panel(codes, label, np.stack(rises, axis=2), drivers, pop)


def _design(p: Panel, h: int, lags: int = 7) -> tuple[np.ndarray, ...]:
    """Rows (area, origin t) with a wave at t + h, >= 4 waves up to t and 12 months of partner history."""
    a_count, t_count = p.label.shape
    start = p.label if p.history is None else p.history
    rows = []
    for a in range(a_count):
        waves = np.flatnonzero(~np.isnan(p.label[a]))
        for t in range(max(11, lags), t_count - h):
            past = waves[waves <= t]
            if np.isnan(p.label[a, t + h]) or len(past) < 4:
                continue
            history = start[a, past[-4:]][::-1]  # newest first
            rows.append((a, t, p.label[a, t + h], history, p.rises[a, t], p.drivers[a, t - lags + 1:t + 1].ravel()))
    area = np.array([r[0] for r in rows])
    y = np.array([r[2] for r in rows])
    history = np.array([r[3] for r in rows])
    return area, y, history, np.array([r[4] for r in rows]), np.array([r[5] for r in rows])


def _held_out(x: np.ndarray, y: np.ndarray, groups: np.ndarray, folds: int = 5) -> np.ndarray:
    """Least-squares predictions with whole areas held out (areas dealt to `folds` folds in order)."""
    x = np.column_stack([np.ones(len(y)), x])
    areas = np.unique(groups)
    fold_of = dict(zip(areas, np.arange(len(areas)) % folds))
    fold = np.array([fold_of[g] for g in groups])
    out = np.empty_like(y)
    for f in range(folds):
        test = fold == f
        beta, *_ = np.linalg.lstsq(x[~test], y[~test], rcond=None)
        out[test] = x[test] @ beta
    return out


def forecast_information(p: Panel, h: int) -> dict[str, float]:
    """MSE-based skill over the best trailing mean of the label's waves at horizon h (areas held out)."""
    area, y, history, rises, drivers = _design(p, h)
    ok = np.isfinite(rises).all(axis=1) & np.isfinite(history).all(axis=1)
    area, y, history, rises, drivers = area[ok], y[ok], history[ok], rises[ok], drivers[ok]
    naive = {k: history[:, :k].mean(axis=1) for k in (1, 2, 3, 4)}
    mse = {k: float(((y - f) ** 2).mean()) for k, f in naive.items()}
    best = min(mse, key=mse.get)
    base = mse[best]
    sst = float(((y - y.mean()) ** 2).sum())

    def score(x: np.ndarray) -> tuple[float, float]:
        # forecast the change from the best naive forecast, so that the naive forecast is the model's floor
        f = naive[best] + _held_out(x, y - naive[best], area)
        return float(1 - ((y - f) ** 2).mean() / base), float(1 - ((y - f) ** 2).sum() / sst)

    trend = history - naive[best][:, None]
    own = score(trend)
    partners = score(np.column_stack([trend, rises]))
    oracle = score(np.column_stack([trend, drivers])) if drivers.shape[1] else (float("nan"), float("nan"))
    return {"h": h, "n": len(y), "naive_window": best, "r2_naive": float(1 - base * len(y) / sst),
            "skill_history": own[0], "skill_partners": partners[0], "skill_oracle": oracle[0],
            "r2_partners": partners[1]}


# Features of the contracts' blocks whose rises the DP check reads (node: block, columns)
DP_FEATURES: dict[str, tuple[str, tuple[str, ...]]] = {
    "police": ("safety", ("nuisance_per_1000", "drugs_per_1000", "theft_other_per_1000")),
    "buurtteams": ("care", ("new_intakes_per_1000", "open_mental_health_per_1000", "open_parenting_per_1000")),
    "municipality": ("social", ("benefit_new_per_1000", "debt_assistance_per_1000", "youth_nuisance_reports_per_1000")),
}


def _released(p: Panel, root: Path, codes: list[str], months: list[str], epsilon: float) -> Panel:
    """The panel as a forecaster holding the nodes' DP releases sees it: the label history and the partners'
    rises from each node's contract build at `epsilon` per unit (one release per table, nothing kept)."""
    from clients.contracts import build_features, load_contract
    from clients.release import DpRelease

    rises, history = [], None
    for node, (block, columns) in DP_FEATURES.items():
        window = [f"periods.start={months[0]}", f"periods.end={months[-1]}"]
        built = build_features(load_contract(node, window), root / node,
                               release=DpRelease(root / node, epsilon, 1e-5, "calibration", keep=False))
        frame = built.blocks[block].set_index(["area_code", "period"])
        for column in columns:
            rises += _rises(frame[column].unstack().reindex(index=codes, columns=months).to_numpy())
        if built.label is not None:
            history = built.label.pivot(index="area_code", columns="period", values="label")
            history = history.reindex(index=codes, columns=months).to_numpy()
    return Panel(p.areas, p.label, np.stack(rises, axis=2), p.drivers, p.population, history)


def check(city: str, world: str, seed: int, records: int, horizons: tuple[int, ...],
          dp: float | None = None) -> list[dict[str, float]]:
    """Generate the city in the world (profile window) into a temporary folder and measure each horizon;
    with `dp` (epsilon per unit), from the nodes' DP releases instead of the exact records."""
    prof = profiles.load(DEFAULT_PROFILES, city, world)
    start, months = prof.window or ("2019-01", 24)
    window = Window.parse(start, months)
    latent = City(prof, window, seed, DEFAULT_CBS).ctx.latent
    with tempfile.TemporaryDirectory(prefix="pulse-twin-calibration-") as tmp:
        generate(Path(tmp), cities=[city], seed=seed, records=records, world=world)
        codes = list(City(prof, window, seed, DEFAULT_CBS).ctx.areas.codes)
        p = panel(Path(tmp), latent, codes, window.month_labels("%Y-%m"))
        if dp is not None:
            p = _released(p, Path(tmp), codes, window.month_labels("%Y-%m"), dp)
    p = p.keep(p.population >= 100)  # the contracts suppress smaller areas
    return [forecast_information(p, h) for h in horizons]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.synthetic.calibration", description=__doc__.split("\n\n")[0])
    parser.add_argument("--worlds", default="default,null")
    parser.add_argument("--seeds", default="7,8,9", help="comma-separated seeds (calibration is averaged over them)")
    parser.add_argument("--records", type=int, default=150_000)
    parser.add_argument("--horizons", default="1,3,6,12")
    parser.add_argument("--dp", type=float, default=None, metavar="EPSILON",
                        help="also measure from the nodes' DP releases at this epsilon per unit (e.g. 3)")
    args = parser.parse_args(argv)
    setup_logging()
    try:
        seeds = [int(s) for s in args.seeds.split(",")]
        horizons = tuple(int(h) for h in args.horizons.split(","))
    except ValueError:
        raise ConfigError(f"--seeds and --horizons must be comma-separated whole numbers, got '{args.seeds}' "
                          f"and '{args.horizons}'") from None
    if any(h < 1 for h in horizons):
        raise ConfigError(f"--horizons must be months >= 1, got '{args.horizons}'")
    city = "heerlen"
    prof = profiles.load(DEFAULT_PROFILES, city)
    real = real_dynamics(prof)
    sims = [simulated_dynamics(prof, s) for s in seeds]
    keys = list(real)
    result(table(["figure", "real LBM 2014-2024", "synthetic (mean over seeds)", "synthetic min..max"],
                 [[k, f"{real[k]:.3f}", f"{np.mean([s[k] for s in sims]):.3f}",
                   f"{min(s[k] for s in sims):.3f}..{max(s[k] for s in sims):.3f}"] for k in keys],
                 title=f"Calibration of {city}'s liveability dynamics (seeds {args.seeds})"))
    for world in args.worlds.split(","):
        for dp in [None] + ([args.dp] if args.dp is not None else []):
            rows = []
            for s in seeds:
                rows += [dict(r, seed=s) for r in check(city, world, s, args.records, horizons, dp)]
            frame = pd.DataFrame(rows).groupby("h").mean(numeric_only=True)
            source = "exact records" if dp is None else f"DP releases at epsilon {dp:g} per unit"
            result(table(["h", "rows", "best naive (waves)", "R2 naive", "skill history", "skill + partners",
                          "skill + true drivers"],
                         [[int(h), int(r["n"]), f"{r['naive_window']:.1f}", f"{r['r2_naive']:.3f}",
                           f"{r['skill_history']:.3f}", f"{r['skill_partners']:.3f}", f"{r['skill_oracle']:.3f}"]
                          for h, r in frame.iterrows()],
                         title=f"Forecast information, world '{world}', {source} (areas held out, mean over seeds "
                               f"{args.seeds})"))
    return 0


def _main() -> int:
    try:
        return main()
    except ConfigError as err:  # a bad --worlds, --seeds or profile: one line, no traceback
        log.error(f"python -m devtools.synthetic.calibration: {err}")
        return 2


if __name__ == "__main__":
    raise SystemExit(_main())
