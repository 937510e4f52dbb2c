"""Speed and peak memory of `pulse-twin generate` for 10^5, 10^6 and 10^7 records (all four cities).

Each size runs in its own process, so that its peak resident memory (getrusage ru_maxrss) is its own;
files go to a temporary directory that is removed afterwards.

    python -m benchmarks.generate [--sizes 100000,1000000,10000000] [--months 12] [--cities heerlen,genk,...]
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from devtools.synthetic import generate
from devtools.synthetic.generator import DEFAULT_CITIES


def _one(records: int, months: int, cities: list[str]) -> dict:
    with tempfile.TemporaryDirectory(prefix="pulse-twin-generate-") as out:
        began = time.perf_counter()
        summary = generate(Path(out), cities=cities, seed=7, records=records, months=months)
        seconds = time.perf_counter() - began
        size = sum(p.stat().st_size for p in Path(out).rglob("*") if p.is_file())
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return {"asked": records, "written": summary.records_written, "seconds": seconds,
            "peak_mib": peak_kib / 1024, "disk_mib": size / 2**20}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.generate", description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000,10000000",
                        help="comma-separated record counts (default: 100000,1000000,10000000)")
    parser.add_argument("--months", type=int, default=12,
                        help="months per run (default: 12; 24 months of all four cities need at least ~122,000 records)")
    parser.add_argument("--cities", default=",".join(DEFAULT_CITIES), help="comma-separated cities (default: all four)")
    parser.add_argument("--one", type=int, default=None, help=argparse.SUPPRESS)  # child: one size, JSON out
    args = parser.parse_args(argv)
    cities = [c for c in args.cities.split(",") if c]
    if args.one is not None:
        print(json.dumps(_one(args.one, args.months, cities)))
        return 0
    print(f"{'records asked':>14} {'written':>11} {'seconds':>8} {'records/s':>11} {'peak MiB':>9} {'disk MiB':>9}")
    for size in (int(float(s)) for s in args.sizes.split(",") if s):
        child = subprocess.run([sys.executable, "-m", "benchmarks.generate", "--one", str(size),
                                "--months", str(args.months), "--cities", ",".join(cities)],
                               capture_output=True, text=True)
        if child.returncode != 0:
            print(child.stderr.strip().splitlines()[-1] if child.stderr.strip() else "failed", file=sys.stderr)
            return child.returncode
        r = json.loads(child.stdout.strip().splitlines()[-1])
        print(f"{r['asked']:>14,} {r['written']:>11,} {r['seconds']:>8.1f} {r['written'] / r['seconds']:>11,.0f} "
              f"{r['peak_mib']:>9.0f} {r['disk_mib']:>9.1f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
