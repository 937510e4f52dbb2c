"""Noise calibration: one noise multiplier for the whole planned schedule, prior releases included.

Calibrating per round (a new accountant each round) under-reports epsilon; here the planned schedule
(rounds x local steps) is composed with everything the node has already released, and the noise is
found by bisection on the SAME accountant the ledger and the budget check use, so the calibrated
schedule later passes the budget check it was calibrated for.
"""
from __future__ import annotations

import math
import threading
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

    # Start near the answer (each accountant evaluation is costly): the moments accountant's rule of thumb
    # sigma ~ q sqrt(T log(1/delta)) / epsilon, with a constant fitted here; only the start, never the result.
    guess = max(0.3, 1.7 * sample_rate * math.sqrt(steps * math.log(1 / delta)) / target_epsilon)
    return _bisect(_epsilon_fn(chosen, prior, delta, sample_rate, steps), target_epsilon, guess)


def _epsilon_fn(
    accountant: Accountant, prior: list[Release], delta: float, sample_rate: float, steps: int
) -> Callable[[float], float]:
    return lambda sigma: accountant.epsilon([*prior, _planned(sigma, sample_rate, steps)], delta)


def _planned(sigma: float, sample_rate: float, steps: int) -> Release:
    return Release(
        noise_multiplier=sigma, sample_rate=sample_rate, steps=steps, run_id="(planned)", round=0, kind="planned"
    )


def _between(lo: float, hi: float, eps_lo: float, eps_hi: float, aim: float) -> float:
    """The next sigma to try inside (lo, hi): where log epsilon, interpolated linearly in log sigma, meets
    `aim` (epsilon falls smoothly, roughly as 1/sigma, so this lands in the band in a step or two, where
    halving the bracket takes five to ten accountant evaluations), kept off the bracket's ends so that the
    bracket always shrinks; the geometric midpoint when the ends give nothing to interpolate."""
    if not (math.isfinite(eps_lo) and eps_lo > aim > eps_hi > 0):
        return math.sqrt(lo * hi)
    share = math.log(eps_lo / aim) / math.log(eps_lo / eps_hi)
    share = min(0.9, max(0.1, share))
    return lo * (hi / lo) ** share


def _bisect(epsilon_at: Callable[[float], float], target: float, guess: float) -> float:
    """Bracketing search on sigma (interpolated, see `_between`); epsilon falls as sigma grows. Returns a sigma
    with eps <= target."""
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
    eps_lo = math.inf
    while eps_hi > target:
        # Epsilon falls roughly as 1/sigma: step up by about the overshoot (at least 1.25x, at most 2x).
        lo, hi, eps_lo = hi, hi * min(2.0, max(1.25, 1.05 * eps_hi / target)), eps_hi
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
            lo *= min(0.8, max(0.5, eps_hi / target))
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
        mid = _between(lo, hi, eps_lo, eps_hi, (1 + floor / target) / 2 * target)
        if not lo < mid < hi:
            break
        eps_mid = safe(mid)
        if eps_mid > target:
            lo, eps_lo = mid, eps_mid
        else:
            hi, eps_hi = mid, eps_mid
            if eps_hi >= floor:
                return hi
    # Only reachable if the accountant's epsilon jumps by more than the band: stay on the safe side.
    return hi


def run_noise_multiplier(target_epsilon: float, delta: float, sample_rate: float, steps_per_round: int, rounds: int,
                         loss_noise_multiplier: float | None, eval_noise_multiplier: float | None,
                         accountant: str = "prv") -> float:
    """The one way a horizontal run's DP-SGD noise multiplier follows from its target: calibrated so that the
    updates (`rounds` x `steps_per_round` steps), the noised losses and the held-out sums (`run_extras`) together
    spend `target_epsilon`. The coordinator's proposal, the node's approval and the node's training all call it,
    so the noise a node approves is the noise it runs. `eval_noise_multiplier` is 0 (or None) when the run holds
    no areas out.

    A pure function of its arguments, computed once per process for the same arguments (a node's executor answers
    every round of a run, and may compute it ahead, see `clients.horizontal.warm_up`); a caller asking while the
    same calibration runs in another thread waits for it rather than computing it twice."""
    key = (target_epsilon, delta, sample_rate, steps_per_round, rounds, loss_noise_multiplier, eval_noise_multiplier,
           accountant)
    with _CALIBRATING:
        if key not in _CALIBRATED:
            if len(_CALIBRATED) >= 256:
                _CALIBRATED.clear()
            _CALIBRATED[key] = noise_multiplier(target_epsilon, delta, sample_rate, steps_per_round * rounds,
                                                accountant, prior=run_extras(rounds, sample_rate,
                                                                             loss_noise_multiplier or 0.0,
                                                                             eval_noise_multiplier or 0.0))
        return _CALIBRATED[key]


_CALIBRATED: dict[tuple, float] = {}
_CALIBRATING = threading.Lock()


def run_extras(rounds: int, sample_rate: float, loss_noise_multiplier: float, eval_noise_multiplier: float,
               run_id: str = "(planned)") -> list[Release]:
    """The releases a horizontal run makes besides its DP-SGD updates, per round: the noised training loss
    (one subsampled step at `loss_noise_multiplier`, when > 0) and the held-out sums (one Gaussian release at
    `eval_noise_multiplier`, when > 0 and the run holds areas out). Calibration takes them as `prior`, so the
    run's target epsilon covers every release of the run, not its updates alone."""
    extras = []
    if loss_noise_multiplier > 0:
        extras.append(Release(noise_multiplier=loss_noise_multiplier, sample_rate=sample_rate, steps=rounds,
                              run_id=run_id, round=0, kind="planned-loss"))
    if eval_noise_multiplier > 0:
        extras.append(Release(mechanism="gaussian", noise_multiplier=eval_noise_multiplier, sample_rate=1.0,
                              steps=rounds, run_id=run_id, round=0, kind="planned-heldout"))
    return extras
