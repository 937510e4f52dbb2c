"""Synthetic community node for Heerlen: Signalen-shaped reports from residents and frontliners.

Built on the Heerlen city of the generator (same areas, same latent path for the same seed and window), so
the reports move with the latent liveability the other Heerlen nodes' records show. Expected resident
reports per area and month are `rate x population / 12,000 x exp(loadings . z + noise)` (normalised so the
city keeps the profile's rate, `intensity.py`), multiplied by the documented reporting bias: in the
profile's `under_reporting.areas` residents report only `factor` of that. Frontliners' signals follow the
same need without that bias. Everything else (reporters and their heavy tail, handling times against the
7-day norm, satisfaction, coordinates inside the real buurt polygons, free text and contact data that must
never leave the node) is drawn from the profile (`profiles/community/heerlen.yaml`), seeded.

    python -m devtools.synthetic.signals --out data/nodes [--seed 7 --start 2019-01 --months 36]
"""
from __future__ import annotations

import argparse
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import yaml

from clients.contracts.points import inside, read_boundaries
from devtools.synthetic import formats, intensity, profile
from devtools.synthetic.city import AREAS_FILE, City
from devtools.synthetic.defaults import DEFAULT_CBS, DEFAULT_PROFILES
from devtools.synthetic.timeline import Window
from devtools.synthetic.writer import FileFormat, write
from federation.config import APP_ROOT
from federation.errors import ConfigError

PROFILE = DEFAULT_PROFILES / "community" / "heerlen.yaml"
NORM_DAYS = 7.0
BOUNDARIES_FILE = "public/buurten.geojson"
PHRASES = ("Lantaarnpaal doet het niet", "Grofvuil naast de container", "Tak hangt over het fietspad",
           "Jongeren maken 's avonds lawaai", "Gat in de weg bij de bushalte", "Container zit vol",
           "Zwerfafval in het plantsoen", "Onkruid op de stoep")


@dataclass(frozen=True)
class CommunitySummary:
    path: Path
    rows: int
    residents: int
    frontliners: int
    under_reporting: tuple[str, ...]


def load_profile(path: Path = PROFILE) -> dict:
    """The community profile, checked: every problem names the file and the field."""
    try:
        spec = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(f"{path}: cannot read the community profile: {err}") from None
    if not isinstance(spec, dict):
        raise ConfigError(f"{path}: must be a mapping")
    for key in ("city", "node", "file", "boundaries", "categories", "frontliners", "reporters_per_1000",
                "handling", "satisfaction", "under_reporting"):
        if key not in spec:
            raise ConfigError(f"{path}: field '{key}' is missing")
    bias = spec["under_reporting"]
    if not (isinstance(bias, dict) and 0 < float(bias.get("factor", 0)) <= 1 and isinstance(bias.get("areas"), list)):
        raise ConfigError(f"{path}: field 'under_reporting' needs a factor in (0, 1] and a list of areas")
    return spec


def _points_in(rings: tuple[np.ndarray, ...], n: int, rng: np.random.Generator) -> np.ndarray:
    """`n` uniform points inside an area's polygons (rejection sampling in its bounding box)."""
    ring = np.concatenate(rings)
    lo, hi = ring.min(axis=0), ring.max(axis=0)
    out: list[np.ndarray] = []
    while sum(len(o) for o in out) < n:
        cand = lo + (hi - lo) * rng.random((max(2 * n, 16), 2))
        out.append(cand[inside(cand[:, 0], cand[:, 1], rings)])
    return np.concatenate(out)[:n]


def generate_community(out: Path, seed: int = 7, start: str = "2019-01", months: int = 36,
                       cbs_path: Path = DEFAULT_CBS, profiles: Path = DEFAULT_PROFILES,
                       community: Path = PROFILE) -> CommunitySummary:
    """Write `<out>/community/{public,raw}/...` on the Heerlen city of the same seed and window."""
    spec = load_profile(community)
    where = str(community)
    city = City(profile.load(Path(profiles), str(spec["city"])), Window.parse(start, months), seed, Path(cbs_path))
    ctx = city.ctx
    rng = ctx.rng("community/meldingen")
    areas, window = ctx.areas, ctx.window
    unknown = sorted(set(spec["under_reporting"]["areas"]) - set(areas.codes))
    if unknown:
        raise ConfigError(f"{where}: field 'under_reporting.areas' names {unknown[0]}, not an area of {spec['city']}")
    bias = np.where(np.isin(areas.codes, spec["under_reporting"]["areas"]), float(spec["under_reporting"]["factor"]), 1.0)

    cats = list(spec["categories"])
    need = np.stack([intensity.monthly_counts(
        float(c["per_1000_year"]), ctx.population,
        intensity.per_city(intensity.factor(ctx.latent, c.get("loadings"), float(c.get("noise_sd", 0.0)), rng,
                                             f"{where} categories.{k}"), ctx.population))
        for k, c in spec["categories"].items()])                    # (C, A, T) unbiased expected reports
    resident = rng.poisson(need * bias[None, :, None])
    share = float(spec["frontliners"]["per_1000_year"]) / sum(float(c["per_1000_year"]) for c in spec["categories"].values())
    frontline = rng.poisson(need * share)

    rows = [_records(resident, "bewoner", spec, ctx, rng), _frontline(frontline, spec, ctx, rng)]
    data = {k: np.concatenate([r[k] for r in rows]) for k in rows[0]}
    order = np.lexsort((data["_area"], data["_second"], data["_day"]))
    data = {k: v[order] for k, v in data.items()}
    columns = _render(data, cats, spec, ctx, rng, dict(read_boundaries(str(APP_ROOT / str(spec["boundaries"])), "buurtcode")))

    node = Path(out) / str(spec["node"])
    for sub in ("public", "raw"):
        (node / sub).mkdir(parents=True, exist_ok=True)
    write(node / AREAS_FILE, city.areas_table(), FileFormat())
    shutil.copyfile(APP_ROOT / str(spec["boundaries"]), node / BOUNDARIES_FILE)
    path = node / str(spec["file"])
    n = write(path, columns, FileFormat())
    return CommunitySummary(path, n, int(resident.sum()), int(frontline.sum()), tuple(spec["under_reporting"]["areas"]))


def _records(counts: np.ndarray, source: str, spec: dict, ctx, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """One row per report: category, area, month, day, second, source and the reporter (a resident of the area)."""
    cat, area, month = np.unravel_index(np.repeat(np.arange(counts.size), counts.ravel()), counts.shape)
    window = ctx.window
    day = window.first_days[month] + rng.integers(0, window.month_lengths[month])
    second = rng.integers(7 * 3600, 23 * 3600, size=len(day))
    pool = np.maximum(1, np.round(ctx.population[:, 0] * float(spec["reporters_per_1000"]) / 1000.0)).astype(np.int64)
    heavy = spec.get("heavy_reporters") or {"share": 0.0, "weight": 1.0}
    reporter = np.empty(len(day), dtype=np.int64)
    for a in np.unique(area):
        rows = np.flatnonzero(area == a)
        w = np.where(rng.random(pool[a]) < float(heavy["share"]), float(heavy["weight"]), 1.0)
        reporter[rows] = a * 1_000_000 + rng.choice(pool[a], size=len(rows), p=w / w.sum())
    return {"_cat": cat, "_area": area, "_day": day, "_second": second, "_source": np.full(len(day), source, object),
            "_reporter": reporter}


def _frontline(counts: np.ndarray, spec: dict, ctx, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Frontliners' signals: a source, and the one of its people who covers the area."""
    rec = _records(counts, "", {**spec, "heavy_reporters": None}, ctx, rng)
    front = spec["frontliners"]
    sources = list(front["sources"])
    p = np.asarray([float(front["sources"][s]) for s in sources])
    src = rng.choice(len(sources), size=len(rec["_day"]), p=p / p.sum())
    people = int(front.get("people_per_source", 15))
    # each area has one person per source; each person covers every `people`-th area of a shuffled list
    assigned = np.stack([rng.permutation(ctx.areas.count) % people for _ in sources])     # (S, A)
    person = 900_000_000 + src * 1000 + assigned[src, rec["_area"]]
    rec["_source"] = np.asarray(sources, dtype=object)[src]
    rec["_reporter"] = person
    return rec


def _render(d: dict[str, np.ndarray], cats: list[str], spec: dict, ctx, rng: np.random.Generator,
            polygons: dict[str, tuple[np.ndarray, ...]]) -> dict[str, np.ndarray]:
    """The export's columns, in the contract's order."""
    n, window, where = len(d["_day"]), ctx.window, str(PROFILE)
    fmt = str(spec.get("datetime_format", "%Y-%m-%dT%H:%M:%S"))
    handling, sat = spec["handling"], spec["satisfaction"]
    in_norm = rng.random(n) < float(handling["within_norm"])
    days = np.where(in_norm, rng.uniform(0.1, NORM_DAYS - 0.1, n),
                    NORM_DAYS + 0.5 + rng.exponential(max(float(handling["late_mean_days"]) - NORM_DAYS, 1.0), n))
    closed_s = d["_day"] * 86400 + d["_second"] + (days * 86400).astype(np.int64)
    closed = closed_s < window.total_days * 86400
    closed_day = np.where(closed, closed_s // 86400, formats.MISSING_DAY)
    answered = closed & (rng.random(n) < float(sat["answer_share"]))
    happy = rng.random(n) < np.where(in_norm, float(sat["satisfied_if_in_norm"]), float(sat["satisfied_if_late"]))
    codes = np.asarray(ctx.areas.codes, dtype=object)
    by_point = rng.random(n) < float(spec.get("coordinates_only", 0.5))
    point = np.full(n, "", dtype=object)
    for a in np.unique(d["_area"][by_point]):
        rows = np.flatnonzero(by_point & (d["_area"] == a))
        pts = _points_in(polygons[codes[a]], len(rows), rng)
        point[rows] = [f"{x:.6f},{y:.6f}" for x, y in pts]
    sub = np.empty(n, dtype=object)
    for c, name in enumerate(cats):
        rows = np.flatnonzero(d["_cat"] == c)
        sub[rows] = rng.choice(np.asarray(spec["categories"][name]["subcategories"], dtype=object), size=len(rows))
    contact = rng.random(n) < float(spec.get("contact_share", 0.4))
    years = window.day_years(0, window.total_days)[d["_day"]]
    seq = np.arange(n)
    return {
        "melding_id": formats.sequence_ids(str(spec.get("id_template", "SIG-{year}-{seq:06d}")), years, where),
        "hoofdcategorie": np.asarray(cats, dtype=object)[d["_cat"]],
        "subcategorie": sub,
        "bron": d["_source"],
        "gemeld_op": formats.datetimes(window, d["_day"], d["_second"], fmt, where),
        "afgehandeld_op": np.where(closed, formats.datetimes(window, np.where(closed, closed_day, 0),
                                                             closed_s % 86400, fmt, where), ""),
        "status": np.where(closed, "afgehandeld", np.where(rng.random(n) < 0.5, "in_behandeling", "gemeld")),
        "statushistorie": np.where(closed, "gemeld>in_behandeling>afgehandeld", "gemeld"),
        "buurtcode": np.where(by_point, "", codes[d["_area"]]),
        "locatie": point,
        "melder_pseudoniem": formats.pseudonyms("MLD{value:010X}", d["_reporter"], ctx.seed, where),
        "tevredenheid": np.where(answered, np.where(happy, "tevreden", "ontevreden"), ""),
        "omschrijving": np.asarray(PHRASES, dtype=object)[seq % len(PHRASES)],
        "foto_url": np.where(seq % 3 == 0, np.char.add("https://meldingen.example/foto/", seq.astype(str)), ""),
        "email": np.where(contact, np.char.add(np.char.add("bewoner", seq.astype(str)), "@example.org"), ""),
        "telefoon": np.where(contact, np.char.add("06-", np.char.zfill(seq.astype(str), 8)), ""),
    }


def main(argv: Sequence[str] | None = None) -> int:
    from federation.output import result

    parser = argparse.ArgumentParser(prog="python -m devtools.synthetic.signals", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("data/nodes"), help="root of the node directories")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--start", default="2019-01", metavar="YYYY-MM")
    parser.add_argument("--months", type=int, default=36)
    args = parser.parse_args(argv)
    try:
        s = generate_community(args.out, args.seed, args.start, args.months)
    except ConfigError as err:
        result(f"error: {err}")
        return 2
    result(f"community node: {s.path} ({s.rows:,} reports: {s.residents:,} from residents, {s.frontliners:,} "
           f"from frontliners; under-reporting planted in {len(s.under_reporting)} buurten, "
           f"see {PROFILE.relative_to(APP_ROOT)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
