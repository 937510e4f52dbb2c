"""`pulse-twin generate`: seeded synthetic raw records for every node, calibrated to CBS for Heerlen."""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from federation.commands.options import configured_data_root
from federation.errors import ConfigError
from federation.output import progress, result
from devtools.synthetic.defaults import DEFAULT_CBS, DEFAULT_CITIES, DEFAULT_PROFILES, DEFAULT_RECORDS


def _cities(text: str) -> list[str]:
    cities = [c.strip() for c in text.split(",") if c.strip()]
    if not cities:
        raise argparse.ArgumentTypeError("name at least one city, e.g. heerlen,genk")
    return cities


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "generate",
        help="write synthetic raw records for the nodes of Heerlen and the transfer cities",
        description=(
            "Writes each node's public/areas.csv and raw/ tables in the form docs/raw-records.md describes: "
            "Heerlen's police, municipality and buurtteams nodes (57 CBS buurten, populations and register "
            "figures from CBS, burglary, vandalism and violence at CBS rates) and one node per transfer city "
            "(genk, sant_boi, piraeus) in its own language and formats. One latent liveability process per "
            "area and month drives all tables. The same arguments give byte-identical files."
        ),
    )
    p.add_argument("--data-root", type=Path, default=None, metavar="DIR",
                   help="the folder of node directories: receives one folder per node (default: data_root of the "
                        "configured federation, where `baseline` and `federate` look: the checkout's data/nodes)")
    p.add_argument("--seed", type=int, default=7, help="random seed; same seed and arguments, same files (default: 7)")
    p.add_argument("--records", type=int, default=DEFAULT_RECORDS, metavar="N",
                   help=f"total rows over all written tables, within about 10%% (default: {DEFAULT_RECORDS}; up to 10^7). "
                        "Crime stays at CBS rates; the survey and public-space reports absorb the volume")
    p.add_argument("--cities", type=_cities, default=list(DEFAULT_CITIES), metavar="A,B",
                   help=f"comma-separated cities, each a profile in devtools/synthetic/profiles/ "
                        f"(default: {','.join(DEFAULT_CITIES)})")
    p.add_argument("--start", default=None, metavar="YYYY-MM",
                   help="first month (default: the profiles' window, 2019-01)")
    p.add_argument("--months", type=int, default=None,
                   help="number of months (default: the profiles' window, 36 for every shipped city; else 24)")
    p.add_argument("--world", default="default", metavar="NAME",
                   help="the world of the profiles (profiles/worlds/NAME.yaml): 'default', or 'null' where partners' "
                        "records carry nothing about liveability's changes, so no forecast can beat the naive ones "
                        "(default: default)")
    p.add_argument("--cbs", type=Path, default=DEFAULT_CBS, metavar="CSV",
                   help=f"CBS kerncijfers wijken en buurten file for Heerlen (default: {DEFAULT_CBS})")
    p.add_argument("--profiles", type=Path, default=DEFAULT_PROFILES, metavar="DIR",
                   help=f"directory of city profiles <city>.yaml (default: {DEFAULT_PROFILES})")
    p.add_argument("--community", action="store_true",
                   help="also write Heerlen's community node (Signalen-shaped reports of residents and frontliners, "
                        "devtools/synthetic/signals.py) on the same city, seed and window: the fourth partner of "
                        "federation=heerlen_community (needs heerlen among --cities; its rows come on top of --records)")
    p.add_argument("--quiet", action="store_true", help="do not print a line per table")
    p.set_defaults(func=run)


def check_records(records: int) -> None:
    if records < 1 or records > 20_000_000:
        raise ConfigError(f"--records: {records} is outside 1..20,000,000")


def run(args: argparse.Namespace) -> int:
    check_records(args.records)
    if getattr(args, "community", False) and "heerlen" not in args.cities:
        raise ConfigError("--community: the community node is Heerlen's; add heerlen to --cities")
    if args.months is not None and args.months < 1:
        raise ConfigError(f"--months: {args.months} is not a number of months >= 1")
    began = time.perf_counter()
    say = None if args.quiet else progress
    from devtools.synthetic.generator import generate

    summary = generate(out=args.data_root or configured_data_root(), cities=args.cities, seed=args.seed, records=args.records, start=args.start,
                       months=args.months, cbs_path=args.cbs, profiles=args.profiles, progress=say,
                       world=args.world)
    seconds = time.perf_counter() - began
    nodes = sorted({t.node for t in summary.tables})
    result(f"wrote {summary.records_written:,} records (asked {summary.records_requested:,}) for "
           f"node(s) {', '.join(nodes)} under {summary.out} in {seconds:.1f} s, seed {summary.seed}, "
           f"world {args.world}")
    if getattr(args, "community", False):
        community_node(summary.out, args)
    return 0


def community_node(out: Path, args: argparse.Namespace) -> None:
    """Heerlen's community node on the city just generated (same seed; the window of the Heerlen profile
    unless --start/--months set it)."""
    from devtools.synthetic.signals import PROFILE, generate_community
    from federation.config import APP_ROOT

    kw = {k: v for k, v in (("start", args.start), ("months", args.months)) if v is not None}
    s = generate_community(Path(out), args.seed, cbs_path=args.cbs, profiles=args.profiles, **kw)
    result(f"community node: {s.path} ({s.rows:,} reports: {s.residents:,} from residents, {s.frontliners:,} "
           f"from frontliners; under-reporting planted in {len(s.under_reporting)} buurten, see "
           f"{PROFILE.relative_to(APP_ROOT)})")
