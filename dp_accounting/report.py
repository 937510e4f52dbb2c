"""The node's privacy report: epsilon by run and round, a second opinion, budget left, and the
guarantee in words, all computed from the ledger's history at the moment the report is made.

Every number says its delta, its unit of privacy and its accountant; the person-level guarantee is
derived by group privacy with its formula named, and called vacuous when it promises nothing.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from dp_accounting.accountants import Accountant, check_delta, get_accountant, second_opinion
from dp_accounting.budget import BudgetCaps, Projection, project
from dp_accounting.ledger import Fact, PrivacyLedger
from dp_accounting.release import Release, utc_iso, utc_now
from federation.errors import ConfigError

GROUP_FORMULA = "group privacy: epsilon_k = k*epsilon, delta_k = k*exp((k-1)*epsilon)*delta"


@dataclass(frozen=True)
class RunLine:
    """One run: its own epsilon, and the node's epsilon once the run was recorded."""

    run_id: str
    kinds: tuple[str, ...]
    rounds: int
    releases: int
    steps: int
    first_at: str
    last_at: str
    epsilon_alone: float
    epsilon_cumulative: float


@dataclass(frozen=True)
class RoundLine:
    """One round of one run: the node's epsilon once everything up to that round was recorded."""

    run_id: str
    round: int
    releases: int
    steps: int
    epsilon_cumulative: float


@dataclass(frozen=True)
class GroupGuarantee:
    """The guarantee for a person who appears in at most k units, by group privacy."""

    k: int
    epsilon: float
    delta: float
    vacuous: bool
    formula: str = GROUP_FORMULA


def group_privacy(epsilon: float, delta: float, k: int) -> GroupGuarantee:
    """(k*eps, k*exp((k-1)*eps)*delta); vacuous when that delta reaches 1."""
    _check_k(k)
    try:
        delta_k = k * math.exp((k - 1) * epsilon) * delta
    except OverflowError:
        delta_k = math.inf
    return GroupGuarantee(k=k, epsilon=k * epsilon, delta=delta_k, vacuous=delta_k >= 1)


def _check_k(k: int) -> None:
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ConfigError(f"k (most rows one person can appear in) must be a whole number >= 1, got {k!r}")


@dataclass(frozen=True)
class PrivacyReport:
    """Everything the node's data-protection officer needs to state what the node has released."""

    ledger: str
    generated_at: str
    delta: float
    accountant: str
    accountant_detail: str
    second_opinion: str
    units: tuple[str, ...]
    releases: int
    steps: int
    epsilon: float
    second_opinion_epsilon: float
    runs: tuple[RunLine, ...]
    rounds: tuple[RoundLine, ...]
    rounds_total: int
    group: GroupGuarantee
    budget: Projection | None
    facts: tuple[Fact, ...]
    guarantee: str

    def to_dict(self) -> dict[str, Any]:
        data = {name: getattr(self, name) for name in self.__dataclass_fields__}
        data["units"] = list(self.units)
        data["runs"] = [asdict(line) for line in self.runs]
        data["rounds"] = [asdict(line) for line in self.rounds]
        data["group"] = asdict(self.group)
        data["budget"] = None if self.budget is None else self.budget.to_dict()
        data["facts"] = [fact.to_dict() for fact in self.facts]
        return data

    def to_text(self) -> str:
        acc, other = self.accountant.upper(), self.second_opinion.upper()
        lines = [
            f"Privacy report of {self.ledger}",
            f"made {self.generated_at}",
            f"unit of privacy: {', '.join(self.units) or '(no release recorded)'}; delta {self.delta:g}; "
            f"accountant {acc} ({self.accountant_detail}); second opinion {other}",
            f"releases: {self.releases} in {len(self.runs)} run(s), {self.steps} noisy steps",
            f"epsilon: {self.epsilon:.4f} ({acc}), {self.second_opinion_epsilon:.4f} ({other})",
            "",
            "Guarantee",
            *("  " + sentence for sentence in self.guarantee.split("\n")),
        ]
        if self.runs:
            lines += ["", f"Epsilon by run ({acc}, delta {self.delta:g})",
                      f"  {'run':<24} {'rounds':>6} {'steps':>8} {'run alone':>10} {'cumulative':>10}"]
            lines += [
                f"  {r.run_id:<24} {r.rounds:>6} {r.steps:>8} {r.epsilon_alone:>10.4f} {r.epsilon_cumulative:>10.4f}"
                for r in self.runs
            ]
        if self.rounds:
            shown = len(self.rounds)
            note = "" if shown == self.rounds_total else f", last {shown} of {self.rounds_total} rounds"
            lines += ["", f"Epsilon by round, cumulative over the node ({acc}, delta {self.delta:g}{note})",
                      f"  {'run':<24} {'round':>6} {'steps':>8} {'cumulative':>10}"]
            lines += [f"  {r.run_id:<24} {r.round:>6} {r.steps:>8} {r.epsilon_cumulative:>10.4f}" for r in self.rounds]
        if self.budget is not None:
            caps = self.budget.caps
            lines += ["", f"Budget ({caps.accountant.upper()}, delta {caps.delta:g})"]
            for label, spent, cap, left in (
                ("last 365 days", self.budget.epsilon_year, caps.epsilon_per_year, self.budget.year_left),
                ("node lifetime", self.budget.epsilon_lifetime, caps.epsilon_lifetime, self.budget.lifetime_left),
            ):
                tail = "no cap set" if cap is None else f"cap {cap:g}, left {left:.4f}"
                lines.append(f"  {label:<14} epsilon {spent:.4f} ({tail})")
        lines += ["", "Facts disclosed outside differential privacy"]
        lines += [f"  {f.created_at}  run {f.run_id}: {f.kind} = {f.value}" + (f" ({f.detail})" if f.detail else "")
                  for f in self.facts] or ["  none recorded"]
        return "\n".join(lines)


def privacy_report(
    ledger: PrivacyLedger,
    delta: float,
    k: int = 1,
    accountant: str = "prv",
    caps: BudgetCaps | None = None,
    max_rounds: int | None = None,
    now: datetime | None = None,
) -> PrivacyReport:
    """Build the report from the ledger's stored history (nothing here is a stored total).

    `max_rounds` limits the by-round table to the last rounds (each row is a full accountant run).
    """
    delta = check_delta(delta)
    chosen, other = get_accountant(accountant), second_opinion(accountant)
    if max_rounds is not None and (isinstance(max_rounds, bool) or not isinstance(max_rounds, int) or max_rounds < 0):
        raise ConfigError(f"max_rounds must be a whole number >= 0, got {max_rounds!r}")
    _check_k(k)  # before any expensive work
    rows = ledger.history_with_ids()
    history = [release for _, release in rows]
    epsilon = chosen.epsilon(history, delta)
    runs, rounds, rounds_total = _by_run_and_round(rows, chosen, delta, max_rounds)
    units = tuple(sorted({r.unit for r in history}))
    group = group_privacy(epsilon, delta, k)
    other_epsilon = other.epsilon(history, delta)
    budget = project(history, [], caps, now) if caps is not None else None
    return PrivacyReport(
        ledger=str(ledger.path),
        generated_at=utc_iso(now or utc_now()),
        delta=delta,
        accountant=chosen.name,
        accountant_detail=chosen.describe(),
        second_opinion=other.name,
        units=units,
        releases=len(history),
        steps=sum(r.steps for r in history),
        epsilon=epsilon,
        second_opinion_epsilon=other_epsilon,
        runs=tuple(runs),
        rounds=tuple(rounds),
        rounds_total=rounds_total,
        group=group,
        budget=budget,
        facts=tuple(ledger.facts()),
        guarantee=guarantee_in_words(epsilon, delta, units, chosen.name, other.name, other_epsilon, group),
    )


def guarantee_in_words(
    epsilon: float,
    delta: float,
    units: tuple[str, ...],
    accountant: str,
    other: str,
    other_epsilon: float,
    group: GroupGuarantee,
) -> str:
    """The row-level and person-level guarantees as sentences, one per line."""
    if not units:
        return (
            "No DP release is recorded in this ledger: nothing has left this node under differential "
            "privacy (epsilon 0). Facts disclosed outside DP, if any, are listed below."
        )
    if len(units) == 1:
        unit = units[0]
        row = f"one {unit}"
    else:
        unit = "unit"
        row = (
            f"one unit of privacy (the ledger mixes units: {'; '.join(units)}; composing them is valid "
            "only for a unit that every one of them covers)"
        )
    first = (
        f"All releases recorded on this node together are ({epsilon:.4f}, {delta:g})-DP for adding or "
        f"removing {row} ({accountant.upper()} accountant; {other.upper()} gives {other_epsilon:.4f})."
    )
    k = group.k
    if k == 1:
        second = f"With k = 1 (a person appears in at most one {unit}) the person-level guarantee is the same."
    elif group.vacuous:
        second = (
            f"For a person who appears in at most {k} {unit}s, {group.formula} gives delta_k = "
            f"{group.delta:.3g} >= 1: the person-level guarantee is vacuous, it promises nothing."
        )
    else:
        second = (
            f"For a person who appears in at most {k} {unit}s: ({group.epsilon:.4f}, {group.delta:.3g})-DP, "
            f"by {group.formula}."
        )
    return f"{first}\n{second}"


def _by_run_and_round(
    rows: list[tuple[int, Release]], accountant: Accountant, delta: float, max_rounds: int | None
) -> tuple[list[RunLine], list[RoundLine], int]:
    """Per run: its own epsilon and the cumulative one; per round: the cumulative epsilon.

    "Cumulative" means every release recorded up to the run's (or round's) last release, in
    recording order, whichever run it belonged to.
    """
    runs: dict[str, list[tuple[int, int, Release]]] = {}
    rounds: dict[tuple[str, int], list[int]] = {}
    for position, (_, release) in enumerate(rows):
        runs.setdefault(release.run_id, []).append((position, release.round, release))
        rounds.setdefault((release.run_id, release.round), []).append(position)
    history = [release for _, release in rows]

    run_lines = []
    for run_id, members in runs.items():
        own = [release for _, _, release in members]
        last = members[-1][0]
        run_lines.append(RunLine(
            run_id=run_id,
            kinds=tuple(dict.fromkeys(r.kind for r in own)),
            rounds=len({r for _, r, _ in members}),
            releases=len(own),
            steps=sum(r.steps for r in own),
            first_at=own[0].created_at,
            last_at=own[-1].created_at,
            epsilon_alone=accountant.epsilon(own, delta),
            epsilon_cumulative=accountant.epsilon(history[: last + 1], delta),
        ))

    keys = sorted(rounds, key=lambda key: rounds[key][-1])
    shown = keys if max_rounds is None else keys[-max_rounds:] if max_rounds else []
    round_lines = [
        RoundLine(
            run_id=run_id,
            round=number,
            releases=len(rounds[(run_id, number)]),
            steps=sum(history[p].steps for p in rounds[(run_id, number)]),
            epsilon_cumulative=accountant.epsilon(history[: rounds[(run_id, number)][-1] + 1], delta),
        )
        for run_id, number in shown
    ]
    return run_lines, round_lines, len(keys)
