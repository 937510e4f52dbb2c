"""Accountant speed and accuracy: reference values, a 10^4-release ledger, and calibration.

1. The three reference schedules of FLOWER_NOTES.md (independent values from Opacus 1.6 and Google's
   dp-accounting 0.6) next to what `dp_accounting` computes.
2. A node ledger with many releases (default 100 runs x 100 rounds = 10^4 releases of a few steps,
   one noise multiplier per run drawn from a few calibrated values): time to record, to read the
   history, and to compute epsilon with each accountant (history compressed by (noise, rate)), against
   Opacus fed the uncompressed history (on a slice, extrapolated: it costs per entry). PRV's cost grows
   with the total number of steps and with epsilon (Opacus's mesh), not with the number of releases.
3. Calibration of the noise multiplier for a planned schedule, with and without prior history.

    python -m benchmarks.accountants [--runs 100] [--rounds 100] [--steps 2] [--raw 500] [--raw-prv 50]
"""
from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

from dp_accounting import PrivacyLedger, PRVAccountant, Release, compress, get_accountant, ledger_path, noise_multiplier
from dp_accounting.accountants import _prv_upper
from federation.errors import PulseTwinError

DELTA = 1e-5
# (q, sigma, steps, RDP, PRV (Opacus, eps_error 0.01), PLD (dp-accounting)) from FLOWER_NOTES.md.
REFERENCES = [
    (0.01, 1.0, 1000, 2.101, 1.838, 1.828),
    (0.01, 1.0, 10000, 6.713, 6.198, 6.188),
    (0.1, 2.0, 1000, 8.944, 8.29, 8.279),
]


def _timed(fn):
    started = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - started


def references() -> None:
    print("1. Reference schedules, delta 1e-5 (ours vs independent values)")
    print(f"   {'q':>5} {'sigma':>5} {'steps':>6} | {'RDP':>7} {'ref':>6} | {'PRV':>7} {'Opacus':>7} {'PLD':>7} | s")
    for q, sigma, steps, rdp_ref, prv_ref, pld_ref in REFERENCES:
        history = [Release(noise_multiplier=sigma, sample_rate=q, steps=steps, run_id="ref", round=0, kind="ref")]
        rdp = get_accountant("rdp").epsilon(history, DELTA)
        prv, seconds = _timed(lambda: get_accountant("prv").epsilon(history, DELTA))
        print(f"   {q:>5} {sigma:>5} {steps:>6} | {rdp:7.3f} {rdp_ref:6.3f} | {prv:7.4f} {prv_ref:7.3f} "
              f"{pld_ref:7.3f} | {seconds:.2f}")


def big_ledger(runs: int, rounds: int, steps: int, raw_rdp: int, raw_prv: int) -> None:
    rng = random.Random(7)
    sigmas = [0.9, 1.05, 1.2, 1.35]
    releases = [
        Release(noise_multiplier=sigma, sample_rate=0.01, steps=steps, run_id=f"run-{run:03d}", round=r,
                kind="horizontal-update")
        for run in range(runs)
        for sigma in [rng.choice(sigmas)]
        for r in range(rounds)
    ]
    print(f"\n2. Ledger with {len(releases)} releases ({runs} runs x {rounds} rounds x {steps} steps, q 0.01, "
          f"{len(compress(releases))} (noise, rate) groups)")
    with tempfile.TemporaryDirectory() as tmp, PrivacyLedger(ledger_path(Path(tmp))) as ledger:
        _, seconds = _timed(lambda: ledger.record_many(releases))
        print(f"   record_many (one transaction): {seconds:.2f} s")
        history, seconds = _timed(ledger.history)
        print(f"   read history: {seconds:.2f} s")
        for name in ("rdp", "prv"):
            _prv_upper.cache_clear()
            eps, seconds = _timed(lambda: ledger.epsilon(DELTA, accountant=name))
            print(f"   epsilon {name.upper()} (read + compress + compute, no cache): {eps:.4f} in {seconds:.2f} s")

    from opacus.accountants import PRVAccountant as OpacusPRV
    from opacus.accountants import RDPAccountant as OpacusRDP

    raw = [(r.noise_multiplier, r.sample_rate, r.steps) for r in history]
    if raw_rdp:
        opacus_rdp = OpacusRDP()
        opacus_rdp.history = raw[:raw_rdp]
        eps_raw, seconds_raw = _timed(lambda: opacus_rdp.get_epsilon(DELTA))
        ours = get_accountant("rdp").epsilon(history[:raw_rdp], DELTA)
        print(f"   RDP on the first {raw_rdp} releases: Opacus uncompressed {eps_raw:.6f} in {seconds_raw:.2f} s "
              f"(about {seconds_raw * len(raw) / raw_rdp:.0f} s for all {len(raw)}), compressed {ours:.6f}")
    if raw_prv:
        part = raw[:raw_prv]
        opacus_prv = OpacusPRV()
        opacus_prv.history = part
        eps_raw, seconds_raw = _timed(lambda: opacus_prv.get_epsilon(DELTA, eps_error=0.01))
        ours, seconds = _timed(lambda: PRVAccountant(eps_error=0.01).epsilon(history[:raw_prv], DELTA))
        print(f"   PRV on the first {raw_prv} releases: Opacus uncompressed {eps_raw:.6f} in {seconds_raw:.2f} s, "
              f"compressed {ours:.6f} in {seconds:.2f} s (difference {abs(ours - eps_raw):.1e})")


def calibration() -> None:
    print("\n3. Calibration (q 0.02, 10 rounds x 60 steps, delta 1e-5, PRV)")
    prior = [Release(noise_multiplier=1.5, sample_rate=0.02, steps=100, run_id="earlier", round=r, kind="t")
             for r in range(2)]
    print(f"   prior: 2 releases spending epsilon {get_accountant('prv').epsilon(prior, DELTA):.4f}")
    for target in (1.0, 3.0, 8.0):
        for label, before in (("no prior", []), ("prior", prior)):
            try:
                sigma, seconds = _timed(lambda: noise_multiplier(target, DELTA, 0.02, 600, prior=before))
            except PulseTwinError as err:
                print(f"   target {target:>4}: {label:<8} {err}")
                continue
            planned = Release(noise_multiplier=sigma, sample_rate=0.02, steps=600, run_id="plan", round=0, kind="t")
            reached = get_accountant("prv").epsilon([*before, planned], DELTA)
            print(f"   target {target:>4}: {label:<8} sigma {sigma:.4f} -> epsilon {reached:.4f} "
                  f"({reached / target:.2%} of target) in {seconds:.2f} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.accountants", description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=100, help="runs in the synthetic ledger (default 100)")
    parser.add_argument("--rounds", type=int, default=100, help="rounds per run (default 100)")
    parser.add_argument("--steps", type=int, default=2, help="noisy steps per release (default 2)")
    parser.add_argument("--raw", type=int, default=500,
                        help="releases fed uncompressed to Opacus RDP for comparison (default 500; 0 skips)")
    parser.add_argument("--raw-prv", type=int, default=50,
                        help="releases fed uncompressed to Opacus PRV for comparison (default 50; 0 skips)")
    args = parser.parse_args(argv)
    try:
        references()
        big_ledger(args.runs, args.rounds, args.steps, args.raw, args.raw_prv)
        calibration()
    except PulseTwinError as err:
        print(f"benchmarks.accountants: {err}", file=sys.stderr)
        return err.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
