"""Throughput of the PSI key alignment: seconds, keys per second and message bytes per set size.

For each size n the coordinator and one partner hold n keys each, half of them shared. The exchange is
the project's own (`federation.psi`), run in one process so that only computation is measured, not
the network. openmined-psi is single-threaded: expect about 10^4 elliptic-curve operations per second
per core, four per key pair; 10^6 keys per side take several minutes.

    python -m benchmarks.psi_throughput [--sizes 10000 100000 1000000] [--fpr 1e-9]
"""
from __future__ import annotations

import argparse
import sys
import time

from federation.errors import PulseTwinError
from federation.psi import DEFAULT_FPR, CoordinatorPsi, Key, partner_reply, psi_message_sizes


def keys(start: int, count: int) -> list[Key]:
    """`count` distinct (area_code, period) keys: 120 months per synthetic area code."""
    return [
        (f"BU{i // 120:08d}", f"{2010 + i % 120 // 12}-{i % 12 + 1:02d}") for i in range(start, start + count)
    ]


def measure(n: int, fpr: float) -> dict[str, object]:
    """One full exchange for n keys per side, timed phase by phase."""
    coordinator_keys, partner_keys = keys(0, n), keys(n - n // 2, n)
    started = time.perf_counter()
    coord = CoordinatorPsi(coordinator_keys, fpr=fpr)
    request = coord.request()
    requested = time.perf_counter()
    reply = partner_reply(partner_keys, request, coord.set_size, fpr=fpr)
    replied = time.perf_counter()
    found = coord.intersect(reply.setup, reply.response)
    finished = time.perf_counter()
    if len(found) != n // 2:
        raise RuntimeError(f"n={n}: intersection has {len(found)} keys, expected {n // 2}")
    return {
        "n": n,
        "coordinator_s": (requested - started) + (finished - replied),
        "partner_s": replied - requested,
        "total_s": finished - started,
        "structure": reply.data_structure,
        "false_positive_bound": reply.false_positive_bound,
        **psi_message_sizes(request, reply),
    }


def report(row: dict[str, object]) -> str:
    n = row["n"]
    per_second = {side: n / row[f"{side}_s"] for side in ("total", "coordinator", "partner")}
    return (
        f"n={n:>9,d}  whole exchange {row['total_s']:8.2f} s ({per_second['total']:9,.0f} keys/s)  "
        f"coordinator {row['coordinator_s']:8.2f} s ({per_second['coordinator']:9,.0f} keys/s)  "
        f"partner {row['partner_s']:8.2f} s ({per_second['partner']:9,.0f} keys/s)\n"
        f"{'':13}bytes: request {row['request']:,d}  setup {row['setup']:,d} ({row['structure']})  "
        f"response {row['response']:,d}  expected false matches {row['false_positive_bound']:.2g}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.psi_throughput",
        description="Time the PSI key alignment between the coordinator and one partner, n keys each, "
        "half shared; keys/s is n divided by the seconds of that side.",
    )
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=[10_000, 100_000], metavar="N",
        help="keys per side, one exchange each (default: 10000 100000; 1000000 takes about 8 minutes)",
    )
    parser.add_argument(
        "--fpr", type=float, default=DEFAULT_FPR,
        help=f"false-positive probability of one whole query (default: {DEFAULT_FPR:g})",
    )
    args = parser.parse_args(argv)
    if any(n < 2 for n in args.sizes):
        parser.error("--sizes: each size must be at least 2")
    print(f"PSI throughput, openmined-psi, fpr {args.fpr:g}, one process (no network)")
    try:
        for n in args.sizes:
            print(report(measure(n, args.fpr)), flush=True)
    except PulseTwinError as err:
        print(f"psi_throughput: {err}", file=sys.stderr)
        return err.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
