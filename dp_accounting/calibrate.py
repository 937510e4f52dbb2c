"""Noise calibration: one noise multiplier for the whole planned schedule, prior releases included.

Calibrating per round (a new accountant each round) under-reports epsilon; here the planned schedule
(rounds x local steps) is composed with everything the node has already released, and the noise is
found by bisection on the SAME accountant the ledger and the budget check use, so the calibrated
schedule later passes the budget check it was calibrated for.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from dp_accounting.accountants import Accountant, check_delta, get_accountant
from dp_accounting.release import Release
from dp_accounting.errors import ConfigError

# The result is at most the target and at least (1 - BAND) of it.
BAND = 0.01
# Beyond these noise multipliers calibration stops: the target is out of reach or meaningless.
MAX_NOISE_MULTIPLIER = 1e3
MIN_NOISE_MULTIPLIER = 1e-2


def noise_multiplier(
    target_epsilon: float,
    delta: float,
    sample_rate: float,
    steps: int,
    accountant: str = "prv",
    prior: Sequence[Release] = (),
) -> float:
    """The noise multiplier whose schedule, after `prior`, brings epsilon into [0.99, 1] x target.

    `steps` counts every noisy step of the plan (rounds x local steps); `sample_rate` is the Poisson
    sampling rate of each step.
    """
    if isinstance(target_epsilon, bool) or not isinstance(target_epsilon, (int, float)) or not (
        math.isfinite(target_epsilon) and target_epsilon > 0
    ):
        raise ConfigError(f"target epsilon must be a finite number > 0, got {target_epsilon!r}")
    delta = check_delta(delta)
    _planned(1.0, sample_rate, steps)  # validates sample_rate and steps with the release's own rules
    prior = list(prior)
    chosen = get_accountant(accountant)
    spent = chosen.epsilon(prior, delta)
    if spent >= target_epsilon:
        raise ConfigError(
            f"target epsilon {target_epsilon:g} is unreachable: the {len(prior)} prior releases already "
            f"spend epsilon {spent:.4g} ({chosen.name.upper()}, delta {delta:g})"
        )

    guess = 1.0
    if chosen.name != "rdp":
        # RDP is cheap and (almost always) looser: its answer is a good, usually feasible, start.
        try:
            guess = _bisect(_epsilon_fn(get_accountant("rdp"), prior, delta, sample_rate, steps), target_epsilon, 1.0)
        except ConfigError:
            guess = 1.0
    return _bisect(_epsilon_fn(chosen, prior, delta, sample_rate, steps), target_epsilon, guess)


def _epsilon_fn(
    accountant: Accountant, prior: list[Release], delta: float, sample_rate: float, steps: int
) -> Callable[[float], float]:
    return lambda sigma: accountant.epsilon([*prior, _planned(sigma, sample_rate, steps)], delta)


def _planned(sigma: float, sample_rate: float, steps: int) -> Release:
    return Release(
        noise_multiplier=sigma, sample_rate=sample_rate, steps=steps, run_id="(planned)", round=0, kind="planned"
    )


def _bisect(epsilon_at: Callable[[float], float], target: float, guess: float) -> float:
    """Geometric bisection on sigma; epsilon falls as sigma grows. Returns a sigma with eps <= target."""
    floor = (1 - BAND) * target

    def safe(sigma: float) -> float:
        # Below a feasible sigma, an accountant that cannot compute is treated as "too much epsilon":
        # such a sigma is never returned.
        try:
            return epsilon_at(sigma)
        except ConfigError:
            return math.inf

    hi, eps_hi = guess, epsilon_at(guess)
    lo: float | None = None
    while eps_hi > target:
        lo, hi = hi, hi * 2
        if hi > MAX_NOISE_MULTIPLIER:
            raise ConfigError(
                f"target epsilon {target:g} is unreachable: even noise multiplier {MAX_NOISE_MULTIPLIER:g} "
                f"gives epsilon {eps_hi:.4g} (the prior releases leave too little budget)"
            )
        eps_hi = epsilon_at(hi)
    if eps_hi >= floor:
        return hi
    if lo is None:
        lo = hi
        while True:
            lo *= 0.8
            if lo < MIN_NOISE_MULTIPLIER:
                raise ConfigError(
                    f"target epsilon {target:g} is met even with noise multiplier {hi:.3g} "
                    f"(epsilon {eps_hi:.4g}): the target is too loose to calibrate, check it"
                )
            eps_lo = safe(lo)
            if eps_lo > target:
                break
            hi, eps_hi = lo, eps_lo
            if eps_hi >= floor:
                return hi
    for _ in range(200):
        mid = math.sqrt(lo * hi)
        if not lo < mid < hi:
            break
        eps_mid = safe(mid)
        if eps_mid > target:
            lo = mid
        else:
            hi, eps_hi = mid, eps_mid
            if eps_hi >= floor:
                return hi
    # Only reachable if the accountant's epsilon jumps by more than the band: stay on the safe side.
    return hi
