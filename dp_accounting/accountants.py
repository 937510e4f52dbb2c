"""Accountants: epsilon of a release history, computed by Opacus's PRV and RDP accountants.

One small interface (`name`, `epsilon(history, delta)`), two implementations. Both compress the
history first: composition is commutative, so releases with the same (noise multiplier, sample rate)
are one entry with their steps summed, which makes a ledger of 10^4 releases as cheap as a few.
A Gaussian-DP approximation is deliberately absent: it is not a bound.

Opacus is imported on first use, not on import: recording a release or listing the ledger should not
pay for loading torch.
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import ClassVar, Protocol

import numpy as np

from dp_accounting.release import Release
from dp_accounting.errors import ConfigError

# (noise multiplier, sample rate, steps): the entry format of Opacus's accountant histories.
Entry = tuple[float, float, int]


class Accountant(Protocol):
    """Computes the epsilon of a release history at a given delta."""

    name: ClassVar[str]

    def epsilon(self, history: Sequence[Release], delta: float) -> float: ...

    def describe(self) -> str: ...


def compress(history: Sequence[Release]) -> list[Entry]:
    """Group releases by (noise multiplier, sample rate) and sum their steps, in a fixed order.

    The fixed (sorted) order makes the same multiset of releases give bit-identical epsilon, whatever
    order, process or round they were recorded in.
    """
    steps: dict[tuple[float, float], int] = {}
    for release in history:
        key = (release.noise_multiplier, release.sample_rate)
        steps[key] = steps.get(key, 0) + release.steps
    return [(sigma, q, n) for (sigma, q), n in sorted(steps.items())]


def check_delta(delta: float) -> float:
    if isinstance(delta, bool) or not isinstance(delta, (int, float)) or not (0 < delta < 1):
        raise ConfigError(f"delta must be a number in (0, 1), got {delta!r}")
    return float(delta)


@dataclass(frozen=True)
class RDPAccountant:
    """Renyi-DP accountant (Mironov et al.), Opacus's orders; looser than PRV, a simple second opinion."""

    name: ClassVar[str] = "rdp"

    def epsilon(self, history: Sequence[Release], delta: float) -> float:
        return _rdp_epsilon(tuple(compress(history)), check_delta(delta))

    def describe(self) -> str:
        return "Opacus RDP, orders 1.1 to 63, converted to (epsilon, delta)"


@dataclass(frozen=True)
class PRVAccountant:
    """Privacy-random-variable accountant (Gopi et al.), Opacus's implementation; the tightest here.

    Opacus returns the UPPER end of its error interval (estimate + eps_error + the effect of
    delta_error = delta/1000): a number meant to be at least the true epsilon. PULSE-TWIN sets
    eps_error relative to the result, `relative_error` (0.25%) of the RDP epsilon of the same history
    (a cheap upper estimate of the result), within [`min_eps_error`, `max_eps_error`]. A fixed absolute
    eps_error would be too coarse for small epsilon and, since Opacus's mesh shrinks with eps_error and
    with the total number of steps, needlessly slow for large histories. Pass `eps_error` to fix it.
    """

    name: ClassVar[str] = "prv"
    relative_error: float = 0.0025
    min_eps_error: float = 0.001
    max_eps_error: float = 0.5
    eps_error: float | None = None

    def epsilon(self, history: Sequence[Release], delta: float) -> float:
        delta = check_delta(delta)
        entries = tuple(compress(history))
        if not entries:
            return 0.0
        if all(q == 1.0 for _, q, _ in entries):   # only plain Gaussian releases: exact, no numerical error
            return gaussian_epsilon(entries, delta)
        return _prv_upper(entries, delta, self.eps_error_for(entries, delta))

    def eps_error_for(self, entries: tuple[Entry, ...], delta: float) -> float:
        """The eps_error used for this compressed history."""
        if self.eps_error is not None:
            return self.eps_error
        scale = self.relative_error * _rdp_epsilon(entries, delta)
        return min(self.max_eps_error, max(self.min_eps_error, scale))

    def describe(self) -> str:
        """(Histories of plain Gaussian releases only are computed exactly, see `gaussian_epsilon`.)"""
        if self.eps_error is not None:
            rule = f"eps_error {self.eps_error:g}"
        else:
            rule = (f"eps_error {self.relative_error:.2%} of the RDP epsilon, within "
                    f"[{self.min_eps_error:g}, {self.max_eps_error:g}]")
        return f"Opacus PRV, upper end of its error interval; {rule}"


@lru_cache(maxsize=1024)
def gaussian_epsilon(entries: tuple[Entry, ...], delta: float) -> float:
    """Exact epsilon of composed Gaussian mechanisms without subsampling: together they are one Gaussian
    mechanism with mu = sqrt(sum of steps / sigma^2) (Dong, Roth, Su 2019), whose privacy curve is
    delta(eps) = Phi(mu/2 - eps/mu) - e^eps Phi(-mu/2 - eps/mu) (Balle and Wang 2018). Bisection to 1e-9.

    This is the continuous Gaussian's curve; the node's counts are drawn from OpenDP's discrete Gaussian, for
    which OpenDP's own proven map (zCDP) gives a larger epsilon: the report prints it beside this one
    (`dp_accounting.opendp_bound`)."""
    from scipy.stats import norm

    mu = math.sqrt(sum(steps / sigma**2 for sigma, _, steps in entries))

    def delta_at(eps: float) -> float:
        # e^eps Phi(.) in log space: for a large mu (a large group) e^eps alone overflows
        return float(norm.cdf(mu / 2 - eps / mu) - math.exp(min(700.0, eps + norm.logcdf(-mu / 2 - eps / mu))))

    if delta_at(0.0) <= delta:
        return 0.0
    low, high = 0.0, 1.0
    while delta_at(high) > delta:
        high *= 2
        if high > 1e4:
            raise ConfigError(f"epsilon of this Gaussian history exceeds 10^4 at delta {delta:g}")
    while high - low > 1e-9:
        mid = (low + high) / 2
        low, high = (mid, high) if delta_at(mid) > delta else (low, mid)
    return high


# Values of pure functions of a compressed history, kept per process (and per node as plain data, see
# `memo_of`): the one-step RDP curve per (sample rate, noise multiplier, orders), and PRV upper estimates.
_CURVES: dict[tuple[float, float, tuple[float, ...]], np.ndarray] = {}
_PRV: dict[tuple[tuple[Entry, ...], float, float], float] = {}
MEMO_LIMIT = 50_000
computed = {"curves": 0, "prv": 0}   # how many values were computed, not recalled (for tests and profiling)


def _keep(memo: dict, key: object, value: object) -> None:
    if len(memo) >= MEMO_LIMIT:
        memo.clear()
    memo[key] = value


def _rdp_curve(q: float, sigma: float, orders: tuple[float, ...]) -> np.ndarray:
    """Opacus's RDP of ONE step of the subsampled Gaussian at each order: the costly part of both accountants
    (a series per fractional order, in Python), and a pure function of (q, sigma)."""
    key = (q, sigma, orders)
    if key not in _CURVES:
        computed["curves"] += 1
        _keep(_CURVES, key, _OPACUS_COMPUTE_RDP[0](q=q, noise_multiplier=sigma, steps=1, orders=list(orders)))
    return _CURVES[key]


_OPACUS_COMPUTE_RDP: list = []


def _curve_times_steps(*, q: float, noise_multiplier: float, steps: int, orders):
    """Opacus's `compute_rdp` (RDP of `steps` steps = steps x the one-step curve), from the cached curve."""
    if isinstance(orders, float):
        return _OPACUS_COMPUTE_RDP[0](q=q, noise_multiplier=noise_multiplier, steps=steps, orders=orders)
    return _rdp_curve(float(q), float(noise_multiplier), tuple(orders)) * steps


def _share_rdp_curves() -> None:
    """Make Opacus's accountants read the one-step RDP curve of each (noise multiplier, sample rate) from
    `_rdp_curve`: its RDP accountant, and the PRV accountant's domain (which runs an RDP accountant on the
    whole history and on each entry), recompute the same curve for every history, every round and every
    report; the numbers are the same, bit for bit (Opacus multiplies the curve by the steps as well)."""
    from opacus.accountants.analysis import rdp as analysis

    if not _OPACUS_COMPUTE_RDP:
        _OPACUS_COMPUTE_RDP.append(analysis.compute_rdp)
        analysis.compute_rdp = _curve_times_steps


@lru_cache(maxsize=1024)
def _rdp_epsilon(entries: tuple[Entry, ...], delta: float) -> float:
    """Opacus RDP epsilon of a compressed history (cached: the PRV accountant asks for it too)."""
    if not entries:
        return 0.0
    _share_rdp_curves()
    from opacus.accountants import RDPAccountant as OpacusRDP

    accountant = OpacusRDP()
    accountant.history = list(entries)
    # Opacus warns when the best order is at the edge of its grid; the result is still a bound.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return max(0.0, float(accountant.get_epsilon(delta=delta)))


def _prv_upper(entries: tuple[Entry, ...], delta: float, eps_error: float) -> float:
    """Opacus PRV upper estimate; a pure function of the compressed history, hence kept (a report asks for
    the same prefix several times, the egress guard asks before and after a charge)."""
    key = (entries, delta, eps_error)
    if key not in _PRV:
        computed["prv"] += 1
        _keep(_PRV, key, _prv_compute(entries, delta, eps_error))
    return _PRV[key]


# The PRV accountant discretises the privacy loss on a grid whose size grows with sqrt(total steps) / eps_error;
# about 170 bytes of memory per point (Opacus 1.6, measured on this project's histories). Beyond this many points a
# history is refused with a clear message instead of exhausting the node's memory.
MAX_PRV_GRID = 5_000_000


def prv_grid_points(entries: tuple[Entry, ...], delta: float, eps_error: float) -> float:
    """The number of points of Opacus's PRV grid for this history (its domain [-L, L] over its mesh, with
    delta_error = delta / 1000 as Opacus sets it): what the computation's memory grows with."""
    delta_error = delta / 1000
    total = sum(steps for _, _, steps in entries)
    half_width = max(_rdp_epsilon(entries, delta_error / 4), eps_error) + 3
    mesh = eps_error / math.sqrt(total * math.log(12 / delta_error) / 2)
    return 2 * half_width / mesh


def _prv_compute(entries: tuple[Entry, ...], delta: float, eps_error: float) -> float:
    points = prv_grid_points(entries, delta, eps_error)
    if points > MAX_PRV_GRID:
        raise ConfigError(
            f"the PRV accountant would need a grid of {points:,.0f} points for this history "
            f"({sum(s for _, _, s in entries):,} noisy steps; at most {MAX_PRV_GRID:,} fit the node's memory "
            "bound): plan fewer steps (a larger sample rate or fewer local epochs or rounds)"
        )
    _share_rdp_curves()
    from opacus.accountants import PRVAccountant as OpacusPRV

    accountant = OpacusPRV()
    accountant.history = list(entries)
    try:
        # Sample rate 1 makes Opacus evaluate log(0) on a masked branch; harmless, so silenced.
        with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            value = float(accountant.get_epsilon(delta=delta, eps_error=eps_error))
    except (ValueError, RuntimeError) as err:
        raise ConfigError(
            f"the PRV accountant cannot compute epsilon at delta {delta:g} for this history "
            f"({len(entries)} (noise multiplier, sample rate) groups): {err}; "
            "use the RDP accountant or a larger delta"
        ) from None
    if not math.isfinite(value):
        raise ConfigError(f"the PRV accountant gave a non-finite epsilon ({value}) at delta {delta:g}")
    return max(0.0, value)


def memo_of(history: Sequence[Release]) -> dict[str, list]:
    """The kept accountant values that involve only the (noise multiplier, sample rate) pairs of `history`, as
    plain data (JSON-safe, exact): a node keeps them in its own run state, so whichever worker process answers
    its next round or its report recalls them instead of recomputing the same numbers."""
    pairs = {(r.sample_rate, r.noise_multiplier) for r in history}
    return {
        "curves": [[q, sigma, list(orders), curve.tolist()] for (q, sigma, orders), curve in _CURVES.items()
                   if (q, sigma) in pairs],
        "prv": [[[list(e) for e in entries], delta, error, value] for (entries, delta, error), value in _PRV.items()
                if all((q, sigma) in pairs for sigma, q, _ in entries)],
    }


def recall(memo: Mapping[str, list]) -> None:
    """Keep the values of `memo_of` in this process (values of pure functions, from the node's own memory)."""
    for q, sigma, orders, curve in memo.get("curves", []):
        _keep(_CURVES, (float(q), float(sigma), tuple(orders)), np.array(curve, dtype=np.float64))
    for entries, delta, error, value in memo.get("prv", []):
        key = (tuple((float(s), float(q), int(n)) for s, q, n in entries), float(delta), float(error))
        _keep(_PRV, key, float(value))


ACCOUNTANTS: dict[str, type] = {"prv": PRVAccountant, "rdp": RDPAccountant}


def get_accountant(name: str) -> Accountant:
    """The accountant called `name` ("prv" or "rdp"); Gaussian-DP is refused, it is not a bound."""
    key = str(name).strip().lower()
    if key not in ACCOUNTANTS:
        hint = " (a Gaussian-DP approximation is not a bound and is never offered)" if key == "gdp" else ""
        raise ConfigError(f"unknown accountant {name!r}: choose one of {', '.join(ACCOUNTANTS)}{hint}")
    return ACCOUNTANTS[key]()


def second_opinion(name: str) -> Accountant:
    """The other accountant, reported next to the primary one."""
    return get_accountant("rdp" if get_accountant(name).name == "prv" else "prv")
