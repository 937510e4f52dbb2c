"""`python -m benchmarks` (`make bench`): every benchmark in sequence, quick settings unless `--full`.

1. horizontal federation: synthetic cities and UCI by census region (held-out R² at epsilon 1, 3, 8;
   pooled and local-only yardsticks; DP-SGD throughput);
2. vertical federation on DP releases: Heerlen's partners (and, with `--full`, the Leicestershire
   records), held-out R² at epsilon 0.5, 1, 3, 8 against the pooled model and each partner alone;
3. forecast skill over the naive forecasts (rolling origin x held-out areas) on DP releases: Heerlen's
   default and null worlds (and, with `--full`, Leicestershire, three releases per epsilon);
4. PSI throughput for 10^4 and 10^5 keys per side;
5. PULSE-TWIN on Flower's deployment engine beside a plain Flower app (one run each; `--full`: the medians of 3);
6. the privacy accountants (reference values, a 10^4-release ledger, calibration);
7. the twin colleague (`pulse-twin ask`) on its frozen evaluation set.

Quick: horizontal on held-out fold 0 only, vertical on Heerlen with one release per epsilon. Full: all
five folds, vertical on both datasets with three releases per epsilon. Each benchmark also runs alone: `python -m benchmarks.<name> --help`.
"""
from __future__ import annotations

import argparse
import sys
import time
from typing import Callable

from benchmarks import accountants, horizontal, overhead, psi_throughput, skill, vertical


def steps(full: bool) -> list[tuple[str, Callable[[], int]]]:
    mode = ["--full"] if full else ["--quick"]
    return [
        ("horizontal federation", lambda: horizontal.main(mode)),
        ("vertical federation", lambda: vertical.main([] if full else ["--datasets", "heerlen", "--draws", "1"])),
        ("forecast skill", lambda: skill.main([] if full else ["--quick", "--dataset", "heerlen", "heerlen_null"])),
        ("PSI throughput", lambda: psi_throughput.main(["--sizes", "10000", "100000"])),
        ("Flower engine overhead", lambda: overhead.main([] if full else ["--repeat", "1"])),
        ("privacy accountants", lambda: accountants.main([])),
        ("twin colleague", lambda: _ask([])),
    ]


def _ask(argv: list[str]) -> int:
    from benchmarks.ask.__main__ import main as ask_main

    return ask_main(argv)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0])
    p.add_argument("--full", action="store_true", help="all five held-out folds instead of fold 0 only")
    args = p.parse_args(argv)
    failed = []
    for title, run in steps(args.full):
        print(f"\n######## {title}", flush=True)
        started = time.perf_counter()
        code = run()
        print(f"######## {title}: {'done' if code == 0 else f'FAILED (exit {code})'} in "
              f"{time.perf_counter() - started:.0f} s", flush=True)
        if code != 0:
            failed.append(title)
    if failed:
        print(f"\nbenchmarks failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
