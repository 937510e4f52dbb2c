"""CLI start-up: wall time of `pulse-twin --help` and of each command's `--help`, in fresh processes.

Every `pulse-twin` call pays this before doing anything (a node's systemd unit, each onboarding step, each
process the engine starts), so heavy libraries (torch, pandas, opacus) are imported by the commands that
use them, when they run. Goal on this machine: `pulse-twin --help` under 2 s.

    python -m benchmarks.startup [--repeat 5]
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

from federation.commands import COMMANDS


def seconds(argv: list[str], repeat: int) -> list[float]:
    """Wall time of `python -m federation.cli ARGV` (output discarded), `repeat` times."""
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "federation.cli", *argv], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, check=True)
        out.append(time.perf_counter() - start)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs per command (default 5)")
    args = parser.parse_args(argv)
    rows = [("pulse-twin --help", seconds(["--help"], args.repeat))]
    rows += [(f"pulse-twin {name} --help", seconds([name, "--help"], args.repeat)) for name in COMMANDS]
    print(f"CLI start-up, {args.repeat} fresh processes each (goal for `pulse-twin --help`: under 2 s)")
    print(f"{'command':<34}{'median s':>10}{'max s':>10}")
    for name, times in rows:
        print(f"{name:<34}{statistics.median(times):>10.2f}{max(times):>10.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
