"""The node's privacy report: epsilon by run and round, a second opinion, budget left, and the
guarantee in words, all computed from the ledger's history at the moment the report is made.

Every number says its delta, its unit of privacy and its accountant. DP aggregates (Gaussian releases of
a raw table) are reported per table, each with the unit its contract names and an epsilon recomputed from
that table's releases; a person who is a unit in every table is protected by all releases composed, and
a table that protects one record covers a person in several records only by group privacy. Row-level
releases (DP-SGD, embeddings) get a person-level guarantee derived by group privacy from k, the most rows
one person appears in, with the formula named and called vacuous when it promises nothing; when k is
unknown the report says so instead of assuming 1.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import Any, Mapping, Sequence

from dp_accounting.accountants import Accountant, check_delta, compress, get_accountant, second_opinion
from dp_accounting.budget import BudgetCaps, Projection, project
from dp_accounting.ledger import Fact, PrivacyLedger
from dp_accounting.opendp_bound import STATEMENT, opendp_epsilon
from dp_accounting.release import Release, kind_name, utc_iso, utc_now
from dp_accounting.errors import ConfigError

GROUP_FORMULA = "group privacy: epsilon_k = k*epsilon, delta_k = k*exp((k-1)*epsilon)*delta"
GAUSSIAN_GROUP_FORMULA = ("exact Gaussian group privacy: a group of k units changes each release's L2 sensitivity by "
                          "at most k, so each noise multiplier counts as z/k (mu_k = k*mu), epsilon at the same delta")


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


def gaussian_group_privacy(releases: Sequence[Release], delta: float, k: int,
                           accountant: Accountant) -> GroupGuarantee:
    """The guarantee for a group of k units from plain Gaussian releases, exactly.

    A group of k units moves the released vector by at most k times one unit's L2 sensitivity (triangle
    inequality), so every release is a Gaussian mechanism with noise multiplier z/k: the history composes to
    one Gaussian with mu_k = k*mu, and its epsilon at the SAME delta is the accountant's on those releases. The
    generic group bound (`group_privacy`) multiplies delta by k*e^((k-1)eps) and is vacuous far sooner. Only
    for releases without subsampling: for a subsampled release (DP-SGD) a group is also sampled more often,
    and the generic bound stays the one stated."""
    _check_k(k)
    if any(r.mechanism != GAUSSIAN for r in releases):
        raise ConfigError("the exact Gaussian group bound holds for plain Gaussian releases only")
    scaled = [replace(r, noise_multiplier=r.noise_multiplier / k) for r in releases]
    try:
        epsilon = accountant.epsilon(scaled, delta)
    except ConfigError:   # beyond what the accountant computes (epsilon > 10^4): it promises nothing
        epsilon = math.inf
    return GroupGuarantee(k=k, epsilon=epsilon, delta=delta, vacuous=not math.isfinite(epsilon),
                          formula=GAUSSIAN_GROUP_FORMULA)


def person_group(history: Sequence[Release], epsilon: float, delta: float, k: int | None,
                 accountant: Accountant) -> GroupGuarantee:
    """The node's guarantee for a group of k units: exact when every release is a plain Gaussian one
    (`gaussian_group_privacy`), else the generic bound."""
    if history and all(r.mechanism == GAUSSIAN for r in history):
        return gaussian_group_privacy(history, delta, k or 1, accountant)
    return group_privacy(epsilon, delta, k or 1)


def _check_k(k: int) -> None:
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ConfigError(f"k (most rows one person can appear in) must be a whole number >= 1, got {k!r}")


# How `TablePrivacy.describe()` names a record unit ("one record (the export has no person link)"):
# such a release protects one record, and a person in several records only by group privacy.
RECORD_UNIT_PREFIX = "one record ("
GAUSSIAN = "gaussian"


@dataclass(frozen=True)
class TableLine:
    """The DP aggregate releases (plain Gaussian) of one raw table, with epsilon recomputed from them."""

    table: str
    unit: str
    releases: int
    runs: tuple[str, ...]
    noise_multipliers: tuple[float, ...]
    sensitivities: tuple[float, ...]
    epsilon: float
    second_opinion_epsilon: float
    record_unit: bool
    record_groups: tuple[GroupGuarantee, ...]   # record unit: a person in m records, by group privacy


@dataclass(frozen=True)
class RowLevel:
    """The releases whose unit is coarser than a person (DP-SGD updates, DP embeddings: area-period rows)."""

    unit: str
    releases: int
    steps: int
    epsilon: float
    second_opinion_epsilon: float
    group: GroupGuarantee | None   # for a person in at most k rows; None when k is unknown
    # (noise multiplier, sample rate, steps) as the accountants compose them (`compress`): whoever reads the
    # report can recompute its epsilon from the history instead of trusting the figure
    schedule: tuple[tuple[float, float, int], ...] = ()


@dataclass(frozen=True)
class BoundsLine:
    """What a table's contribution bounds cut in the node's last features build (exact, node-internal)."""

    table: str
    unit: str
    units: int | None
    units_cut: int
    pairs: int | None
    pairs_cut: int | None
    share_cut: float
    bounds: dict[str, Any] | None


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
    k: int | None = None
    k_source: str = "unknown"
    tables: tuple[TableLine, ...] = ()
    epsilon_aggregates: float | None = None
    row_level: RowLevel | None = None
    bounds: tuple[BoundsLine, ...] = ()
    opendp_epsilon_aggregates: float | None = None

    def to_dict(self) -> dict[str, Any]:
        data = {name: getattr(self, name) for name in self.__dataclass_fields__}
        data["units"] = list(self.units)
        data["runs"] = [asdict(line) for line in self.runs]
        data["rounds"] = [asdict(line) for line in self.rounds]
        data["group"] = asdict(self.group)
        data["budget"] = None if self.budget is None else self.budget.to_dict()
        data["facts"] = [fact.to_dict() for fact in self.facts]
        data["tables"] = [asdict(line) for line in self.tables]
        data["row_level"] = None if self.row_level is None else asdict(self.row_level)
        data["bounds"] = [asdict(line) for line in self.bounds]
        return data

    def to_text(self) -> str:
        acc, other = self.accountant.upper(), self.second_opinion.upper()
        k_text = f"{self.k} ({self.k_source})" if self.k is not None else f"unknown ({self.k_source})"
        lines = [
            f"Privacy report of {self.ledger}",
            f"made {self.generated_at}",
            f"unit of privacy: {', '.join(self.units) or '(no release recorded)'}; delta {self.delta:g}; "
            f"accountant {acc} ({self.accountant_detail}); second opinion {other}",
            f"k, most area-period rows one person appears in: {k_text}",
            f"releases: {self.releases} in {len(self.runs)} run(s), {self.steps} noisy steps",
            f"epsilon: {self.epsilon:.4f} ({acc}), {self.second_opinion_epsilon:.4f} ({other})",
            *bound_statement(self),
            "",
            "Guarantee",
            *("  " + sentence for sentence in self.guarantee.split("\n")),
        ]
        if self.tables:
            tw = max([16, *(len(t.table) for t in self.tables)])
            lines += ["", f"DP aggregates by table (Gaussian; epsilon of each table's releases alone, {acc}, "
                          f"delta {self.delta:g})",
                      f"  {'table':<{tw}} {'releases':>8} {'noise mult.':>11} {'sensitivity':>11} {'epsilon':>9}  unit"]
            for t in self.tables:
                lines.append(f"  {t.table:<{tw}} {t.releases:>8} {_numbers(t.noise_multipliers):>11} "
                             f"{_numbers(t.sensitivities):>11} {t.epsilon:>9.4f}  {t.unit}")
        w = max([24, *(len(r.run_id) for r in self.runs), *(len(r.run_id) for r in self.rounds)])
        if self.runs:
            lines += ["", f"Epsilon by run ({acc}, delta {self.delta:g})",
                      f"  {'run':<{w}} {'rounds':>6} {'steps':>8} {'run alone':>10} {'cumulative':>10}"]
            lines += [
                f"  {r.run_id:<{w}} {r.rounds:>6} {r.steps:>8} {r.epsilon_alone:>10.4f} {r.epsilon_cumulative:>10.4f}"
                for r in self.runs
            ]
        if self.rounds:
            shown = len(self.rounds)
            note = "" if shown == self.rounds_total else f", last {shown} of {self.rounds_total} rounds"
            lines += ["", f"Epsilon by round, cumulative over the node ({acc}, delta {self.delta:g}{note})",
                      f"  {'run':<{w}} {'round':>6} {'steps':>8} {'cumulative':>10}"]
            lines += [f"  {r.run_id:<{w}} {r.round:>6} {r.steps:>8} {r.epsilon_cumulative:>10.4f}" for r in self.rounds]
        if self.budget is not None:
            caps = self.budget.caps
            lines += ["", f"Budget ({caps.accountant.upper()}, delta {caps.delta:g})"]
            for label, spent, cap, left in (
                ("last 365 days", self.budget.epsilon_year, caps.epsilon_per_year, self.budget.year_left),
                ("node lifetime", self.budget.epsilon_lifetime, caps.epsilon_lifetime, self.budget.lifetime_left),
            ):
                tail = "no cap set" if cap is None else f"cap {cap:g}, left {left:.4f}"
                lines.append(f"  {label:<14} epsilon {spent:.4f} ({tail})")
        if self.bounds:
            lines += ["", "What the contribution bounds cut (last features build; exact counts from the raw "
                          "records, for the node's own staff: not a DP release)",
                      f"  {'table':<16} {'unit':<24} {'units':>8} {'units cut':>9} {'share cut':>9}  bounds"]
            for b in self.bounds:
                lines.append(f"  {b.table:<16} {b.unit:<24} {_count(b.units):>8} {b.units_cut:>9} "
                             f"{b.share_cut:>9.2%}  {_bounds_text(b.bounds)}")
        lines += ["", "Facts disclosed outside differential privacy"]
        lines += [f"  {f.created_at}  run {f.run_id}: {f.kind} = {f.value}" + (f" ({f.detail})" if f.detail else "")
                  for f in self.facts] or ["  none recorded"]
        return "\n".join(lines)


def one_unit(unit: str) -> str:
    """"one area-period row", and a unit text that already says "one ..." unchanged."""
    return unit if unit.startswith("one ") else f"one {unit}"


def _unit_alone(unit: str, table: str) -> str:
    """The unit text without the ", table NAME" the release adds (the sentence names the table already)."""
    suffix = f", table {table}"
    return unit[: -len(suffix)] if unit.endswith(suffix) else unit


def _as_k(m: int, k: int | None) -> str:
    return " (as many as the node's k rows per person)" if k is not None and m == k else ""


def _numbers(values: tuple[float, ...]) -> str:
    return ", ".join(f"{v:.4g}" for v in values) or "-"


def _count(value: int | None) -> str:
    return "-" if value is None else str(value)


def _bounds_text(bounds: dict[str, Any] | None) -> str:
    if not bounds:
        return "none (public: not bounded, not noised)"
    text = f"max_cells {bounds.get('max_cells')}, max_per_cell {bounds.get('max_per_cell')}"
    if bounds.get("max_events") is not None:
        text += f", max_events {bounds['max_events']} per date column"
    clip = bounds.get("clip") or {}
    if clip:
        text += ", clip " + ", ".join(f"{c} [{lo:g}, {hi:g}]" for c, (lo, hi) in sorted(clip.items()))
    return text


def privacy_report(
    ledger: PrivacyLedger,
    delta: float,
    k: int | None = None,
    accountant: str = "prv",
    caps: BudgetCaps | None = None,
    max_rounds: int | None = None,
    now: datetime | None = None,
    *,
    k_source: str | None = None,
    table_stats: Mapping[str, Mapping[str, Any]] | None = None,
) -> PrivacyReport:
    """Build the report from the ledger's stored history (nothing here is a stored total).

    `k` is the most area-period rows one person appears in (the contract's `max_rows_per_person`), for
    the person-level guarantee of row-level releases; None means unknown, and the report says so rather
    than assume 1. `k_source` says in words where k came from. `table_stats` (the features manifest's
    `stats.tables`) adds what each table's contribution bounds cut: exact figures of the raw records, for
    the node's own report only (leave it out of any report that leaves the node).
    `max_rounds` limits the by-round table to the last rounds (each row is a full accountant run).
    """
    delta = check_delta(delta)
    chosen, other = get_accountant(accountant), second_opinion(accountant)
    if max_rounds is not None and (isinstance(max_rounds, bool) or not isinstance(max_rounds, int) or max_rounds < 0):
        raise ConfigError(f"max_rounds must be a whole number >= 0, got {max_rounds!r}")
    if k is not None:
        _check_k(k)  # before any expensive work
        k_source = k_source or "given by the caller"
    else:
        k_source = k_source or "no features manifest and no --k"
    rows = ledger.history_with_ids()
    history = [release for _, release in rows]
    epsilon = chosen.epsilon(history, delta)
    runs, rounds, rounds_total = _by_run_and_round(rows, chosen, delta, max_rounds)
    units = tuple(sorted({r.unit for r in history}))
    group = person_group(history, epsilon, delta, k, chosen)
    other_epsilon = other.epsilon(history, delta)
    budget = project(history, [], caps, now) if caps is not None else None
    tables = table_lines(history, chosen, other, delta, k)
    aggregates = [r for r in history if r.mechanism == GAUSSIAN]
    epsilon_aggregates = chosen.epsilon(aggregates, delta) if aggregates else None
    row_level = _row_level(history, chosen, other, delta, k)
    guarantee = guarantee_in_words(epsilon, delta, units, chosen.name, other.name, other_epsilon, group,
                                   k=k, k_source=k_source, tables=tables, epsilon_aggregates=epsilon_aggregates,
                                   row_level=row_level)
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
        guarantee=guarantee,
        k=k,
        k_source=k_source,
        tables=tables,
        epsilon_aggregates=epsilon_aggregates,
        row_level=row_level,
        bounds=bounds_lines(table_stats),
        opendp_epsilon_aggregates=opendp_epsilon(history, delta),
    )


def bound_statement(report: PrivacyReport) -> list[str]:
    """Which bound the Gaussian aggregates' epsilon is, and OpenDP's proven one beside it (`opendp_bound`)."""
    if report.opendp_epsilon_aggregates is None:
        return []
    return [f"bound of the DP aggregates: the continuous Gaussian's exact curve at each noise multiplier "
            f"(Balle and Wang 2018: {report.epsilon_aggregates:.4f}); their counts are drawn from OpenDP's discrete "
            f"Gaussian, for which OpenDP proves ({report.opendp_epsilon_aggregates:.4f}, {report.delta:g})-DP "
            f"({STATEMENT})"]


def table_lines(history: Sequence[Release], accountant: Accountant, other: Accountant, delta: float,
                k: int | None = None) -> tuple[TableLine, ...]:
    """One line per raw table with DP aggregate (Gaussian) releases, its epsilon from its own releases.

    A release that names no table is shown under "(table not named)"."""
    by_table: dict[str, list[Release]] = {}
    for release in history:
        if release.mechanism == GAUSSIAN:
            by_table.setdefault(release.table or "(table not named)", []).append(release)
    lines = []
    for table, own in sorted(by_table.items()):
        units = tuple(dict.fromkeys(r.unit for r in own))
        epsilon = accountant.epsilon(own, delta)
        record = any(u.startswith(RECORD_UNIT_PREFIX) for u in units)
        sizes = (2,) + ((k,) if k is not None and k > 2 else ())
        lines.append(TableLine(
            table=table,
            unit="; ".join(units),
            releases=len(own),
            runs=tuple(dict.fromkeys(r.run_id for r in own)),
            noise_multipliers=tuple(sorted({r.noise_multiplier for r in own})),
            sensitivities=tuple(sorted({r.sensitivity for r in own if r.sensitivity is not None})),
            epsilon=epsilon,
            second_opinion_epsilon=other.epsilon(own, delta),
            record_unit=record,
            record_groups=tuple(gaussian_group_privacy(own, delta, m, accountant) for m in sizes) if record else (),
        ))
    return tuple(lines)


def _row_level(history: Sequence[Release], accountant: Accountant, other: Accountant, delta: float,
               k: int | None) -> RowLevel | None:
    own = [r for r in history if r.mechanism != GAUSSIAN]
    if not own:
        return None
    epsilon = accountant.epsilon(own, delta)
    return RowLevel(unit=", ".join(sorted({r.unit for r in own})), releases=len(own), steps=sum(r.steps for r in own),
                    epsilon=epsilon, second_opinion_epsilon=other.epsilon(own, delta),
                    group=None if k is None else group_privacy(epsilon, delta, k),
                    schedule=tuple((float(z), float(q), int(n)) for z, q, n in compress(own)))


def bounds_lines(table_stats: Mapping[str, Mapping[str, Any]] | None) -> tuple[BoundsLine, ...]:
    """The features manifest's `stats.tables` as lines (missing figures stay None)."""
    lines = []
    for table, stats in sorted((table_stats or {}).items()):
        if not isinstance(stats, Mapping):
            continue
        lines.append(BoundsLine(
            table=str(table),
            unit=str(stats.get("unit", "?")),
            units=_int_or_none(stats.get("units")),
            units_cut=int(stats.get("units_cut") or 0),
            pairs=_int_or_none(stats.get("pairs")),
            pairs_cut=_int_or_none(stats.get("pairs_cut")),
            share_cut=float(stats.get("share_cut") or 0.0),
            bounds=dict(stats["bounds"]) if isinstance(stats.get("bounds"), Mapping) else None,
        ))
    return tuple(lines)


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)


def guarantee_in_words(
    epsilon: float,
    delta: float,
    units: tuple[str, ...],
    accountant: str,
    other: str,
    other_epsilon: float,
    group: GroupGuarantee,
    *,
    k: int | None = None,
    k_source: str = "",
    tables: tuple[TableLine, ...] = (),
    epsilon_aggregates: float | None = None,
    row_level: RowLevel | None = None,
) -> str:
    """The guarantees as sentences, one per line: the node as a whole, each table's DP aggregates (with
    group privacy where a table protects only a record), how the tables compose for one person, and the
    row-level releases with the person-level guarantee derived from k (called vacuous when it is)."""
    if not units:
        return (
            "No DP release is recorded in this ledger: nothing has left this node under differential "
            "privacy (epsilon 0). Facts disclosed outside DP, if any, are listed below."
        )
    acc, oth = accountant.upper(), other.upper()
    if len(units) == 1:
        row = one_unit(units[0])
    else:
        row = (f"one person who is at most one unit of privacy in each of them (the ledger mixes units: "
               f"{'; '.join(units)}; for a person who is more than one unit, see below)")
    out = [
        f"All releases recorded on this node together are ({epsilon:.4f}, {delta:g})-DP for adding or "
        f"removing {row} ({acc} accountant; {oth} gives {other_epsilon:.4f})."
    ]
    for t in tables:
        unit = _unit_alone(t.unit, t.table)
        sentence = (
            f"Table {t.table}, unit {unit}: its {t.releases} DP aggregate release(s) (Gaussian, noise multiplier "
            f"{_numbers(t.noise_multipliers)}, L2 sensitivity of one unit {_numbers(t.sensitivities)}) are "
            f"({t.epsilon:.4f}, {delta:g})-DP for adding or removing one such unit, these releases alone "
            f"({acc}; {oth} gives {t.second_opinion_epsilon:.4f})."
        )
        if t.record_unit:
            cases = "; ".join(
                f"a person in {g.k} records{_as_k(g.k, k)}: epsilon beyond 10^4, vacuous, it promises nothing"
                if g.vacuous
                else f"a person in {g.k} records{_as_k(g.k, k)}: ({g.epsilon:.4f}, {g.delta:.3g})-DP"
                for g in t.record_groups
            )
            sentence += (
                f" The export has no person link, so a person involved in several of its records is covered only "
                f"by group privacy ({GAUSSIAN_GROUP_FORMULA}, with k the person's records, which the export cannot "
                f"count): "
                f"{cases}."
            )
        out.append(sentence)
    if tables:
        names = ", ".join(t.table for t in tables)
        if len(tables) == 1 and row_level is None:
            out.append(f"All the node's releases are of table {names}: for a person who is one unit of it, the "
                       f"node's guarantee is the ledger's epsilon above, ({epsilon:.4f}, {delta:g})-DP.")
        elif row_level is None:
            out.append(
                f"The tables compose: a person who is a unit in every table ({names}) is protected by all the "
                f"node's releases composed, the ledger's epsilon above, ({epsilon:.4f}, {delta:g})-DP, not by the "
                f"epsilon of one table."
            )
        elif len(tables) == 1:
            out.append(f"A person who is one unit of table {names} is protected by its DP aggregates at "
                       f"({epsilon_aggregates:.4f}, {delta:g})-DP ({acc}); with the row-level releases below, see "
                       f"the last sentence.")
        else:
            out.append(
                f"The tables compose: a person who is a unit in every table ({names}) is protected by all the "
                f"DP aggregates composed, ({epsilon_aggregates:.4f}, {delta:g})-DP ({acc}), not by the epsilon of "
                f"one table; with the row-level releases below, see the last sentence."
            )
    if row_level is not None:
        unit = row_level.unit
        if tables:
            out.append(
                f"Row-level releases (DP-SGD model updates, DP embeddings: {row_level.releases} release(s), "
                f"{row_level.steps} noisy steps) protect one {unit}: ({row_level.epsilon:.4f}, {delta:g})-DP "
                f"for those releases alone ({acc}; {oth} gives {row_level.second_opinion_epsilon:.4f})."
            )
        g = row_level.group
        if k is None:
            out.append(
                f"k, the most {unit}s one person appears in, is unknown ({k_source}): the person-level "
                f"guarantee is the same only if a person appears in one {unit} (k = 1); a person in k {unit}s "
                f"is covered by {GROUP_FORMULA}, which grows quickly with k and may be vacuous. "
                f"Give k (`pulse-twin features` writes it to features/manifest.json, or pass --k)."
            )
        elif k == 1:
            out.append(f"With k = 1 (a person appears in at most one {unit}; {k_source}) the person-level "
                       f"guarantee is the same.")
        elif g is not None and g.vacuous:
            out.append(
                f"For a person who appears in at most {k} {unit}s, {GROUP_FORMULA} gives delta_k = "
                f"{g.delta:.3g} >= 1: the person-level guarantee is vacuous, it promises nothing "
                f"(k = {k}: {k_source})."
            )
        elif g is not None:
            out.append(
                f"For a person who appears in at most {k} {unit}s: ({g.epsilon:.4f}, {g.delta:.3g})-DP, "
                f"by {GROUP_FORMULA} (k = {k}: {k_source})."
            )
        if tables and k == 1:
            out.append(f"A person in at most one {unit} who is also one unit in every table is protected by the "
                       f"ledger's epsilon above, ({epsilon:.4f}, {delta:g})-DP.")
        elif tables and g is not None and epsilon_aggregates is not None:
            eps_person, delta_person = g.epsilon + epsilon_aggregates, g.delta + delta
            if delta_person >= 1:
                out.append(f"A person in at most {k} {unit}s who is also a unit in every table has no meaningful "
                           f"guarantee from this node as a whole: delta {delta_person:.3g} >= 1, vacuous.")
            else:
                out.append(
                    f"A person in at most {k} {unit}s who is also a unit in every table: at most "
                    f"({eps_person:.4f}, {delta_person:.3g})-DP from this node as a whole, by basic composition "
                    f"of the two (their epsilons add, their deltas add)."
                )
    return "\n".join(out)


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
            kinds=tuple(dict.fromkeys(kind_name(r.kind) for r in own)),
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
