"""`pulse-twin privacy`: the node's privacy report, recomputed from its ledger."""
from __future__ import annotations

import argparse
from pathlib import Path

from federation.errors import ConfigError
from clients.site_policy import load_site_policy, policy_path
from federation.output import emit_json, log, result



def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "privacy",
        help="print the node's privacy report: epsilon by run and round, budget left, guarantee in words",
        description=(
            "Recomputes the node's epsilon from every DP release in its privacy ledger "
            "(DIR/state/ledger.sqlite) and prints it by run and by round, with a second opinion from the "
            "other accountant, the delta, the unit of privacy, the budget left against the node's caps "
            "(from DIR/site_policy.yaml or --cap-year/--cap-life) and the guarantee in words: per raw table "
            "its DP aggregates (unit, sensitivity, noise multiplier, epsilon), how the tables compose for one "
            "person, group privacy where a table protects only a record, and the person-level guarantee of "
            "row-level releases (DP-SGD) for a person in at most K rows, called vacuous when it is. K comes "
            "from --k, else from the node's features manifest (the data contract's max_rows_per_person); "
            "without either the report says K is unknown. The manifest's build statistics add what each "
            "table's contribution bounds cut. Facts the node disclosed outside differential privacy (such as "
            "PSI set sizes) are listed too. Give --node-dir once per node of a federation (e.g. the police's, the "
            "municipality's and the buurtteams') to get, after the first node's report, the federation-level "
            "guarantee: the epsilon of one person who is a unit in every table of every node, all the nodes' "
            "ledgers composed by the accountant, beside each node's own. Only reads."
        ),
    )
    p.add_argument("--node-dir", type=Path, required=True, metavar="DIR", action="append", dest="node_dirs",
                   help="the node's directory (holds state/ledger.sqlite and site_policy.yaml); repeat it for the "
                        "other nodes of the federation to add the federation-level guarantee")
    p.add_argument("--delta", type=float, default=None,
                   help="delta at which epsilon is reported (default: the site policy's, else 1e-5)")
    p.add_argument("--k", type=int, default=None,
                   help="most area-period rows one person can appear in, for the person-level guarantee "
                        "by group privacy (default: privacy_unit.max_rows_per_person of the features manifest; "
                        "without one, k is reported as unknown)")
    p.add_argument("--manifest", type=Path, default=None, metavar="FILE",
                   help="the node's features manifest (default: DIR/features/manifest.json; give it when "
                        "`pulse-twin features --out` wrote the features elsewhere)")
    p.add_argument("--accountant", choices=("prv", "rdp"), default=None,
                   help="primary accountant; the other one is the second opinion "
                        "(default: the site policy's, else prv)")
    p.add_argument("--cap-year", type=float, default=None,
                   help="epsilon cap per 365 days (overrides the site policy's privacy.epsilon_per_year)")
    p.add_argument("--cap-life", type=float, default=None,
                   help="epsilon cap over the node's life (overrides the site policy's privacy.epsilon_lifetime)")
    p.add_argument("--rounds", type=_rounds, default=20, metavar="N|all",
                   help="show the cumulative epsilon of the last N rounds, or 'all' (default 20; each "
                        "row is one accountant run)")
    p.add_argument("--json", action="store_true", help="print the report as JSON instead of text")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dp_accounting import BudgetCaps, privacy_report

    for given in args.node_dirs:
        if not given.is_dir():
            raise ConfigError(f"--node-dir {given}: no such directory")
    node_dir: Path = args.node_dirs[0]
    delta, accountant = args.delta, args.accountant
    caps = None
    if policy_path(node_dir).is_file():
        policy_caps = load_site_policy(node_dir).budget_caps()
        delta = policy_caps.delta if delta is None else delta
        accountant = accountant or policy_caps.accountant
        caps = BudgetCaps(
            epsilon_per_year=policy_caps.epsilon_per_year if args.cap_year is None else args.cap_year,
            epsilon_lifetime=policy_caps.epsilon_lifetime if args.cap_life is None else args.cap_life,
            delta=policy_caps.delta,
            accountant=policy_caps.accountant,
        )
    delta = 1e-5 if delta is None else delta
    if not 0 < delta < 1:
        raise ConfigError(f"--delta: {delta:g} is not a probability between 0 and 1 (the node's guarantees are "
                          "stated at a small delta such as 1e-5)")
    if caps is not None and delta > caps.delta:
        log.warning(f"note: epsilon is reported at delta {delta:g}, above the site policy's {caps.delta:g}: a larger delta "
               "makes epsilon look smaller than the node's commitments, which are stated at the policy's delta")
    accountant = accountant or "prv"
    if caps is None and (args.cap_year is not None or args.cap_life is not None):
        caps = BudgetCaps(epsilon_per_year=args.cap_year, epsilon_lifetime=args.cap_life, delta=delta,
                          accountant=accountant)
    from clients.contracts.manifest import MANIFEST, read_manifest

    manifest_file = args.manifest or node_dir / MANIFEST
    manifest = read_manifest(manifest_file, required=args.manifest is not None)
    k, k_source = args.k, "--k"
    manifest_k = (manifest.get("privacy_unit") or {}).get("max_rows_per_person")
    if k is None and manifest_k is not None:
        if isinstance(manifest_k, bool) or not isinstance(manifest_k, int) or manifest_k < 1:
            raise ConfigError(f"{manifest_file}: privacy_unit.max_rows_per_person must be a whole number >= 1, "
                              f"got {manifest_k!r}")
        k, k_source = manifest_k, f"the data contract's max_rows_per_person, from {manifest_file}"
    elif k is None:
        k_source = f"no --k and no privacy_unit.max_rows_per_person in {manifest_file}"
    table_stats = (manifest.get("stats") or {}).get("tables")
    with _ledger(node_dir) as ledger:
        report = privacy_report(ledger, delta, k=k, accountant=accountant, caps=caps, max_rounds=args.rounds,
                                k_source=k_source, table_stats=table_stats if isinstance(table_stats, dict) else None)
    federation = federation_of(args.node_dirs, delta, accountant) if len(args.node_dirs) > 1 else None
    if args.json:
        emit_json(report.to_dict() if federation is None else {**report.to_dict(), "federation": federation.to_dict()})
    else:
        result(report.to_text() if federation is None else f"{report.to_text()}\n\n{federation_text(federation)}")
    return 0


def federation_of(node_dirs: list[Path], delta: float, accountant: str):
    """The federation-level guarantee from the nodes' own ledgers (each node named by its site policy)."""
    from dp_accounting.federation_level import federation_guarantee

    histories = {}
    for node_dir in node_dirs:
        name = load_site_policy(node_dir).partner if policy_path(node_dir).is_file() else node_dir.name
        if name in histories:
            raise ConfigError(f"--node-dir {node_dir}: node {name} is given twice")
        with _ledger(node_dir) as ledger:
            histories[name] = ledger.history()
    return federation_guarantee(histories, delta, accountant)


def _ledger(node_dir: Path):
    """The node's ledger, read only. When it cannot be opened (deleted, replaced by another file) and the node's
    egress log shows why (it holds charged releases, or a file that is no ledger sits in the ledger's place),
    that is what is said, with the way back (`node recover-ledger`), never "the node has recorded no release"."""
    from dp_accounting import PrivacyLedger, ledger_path
    from clients.egress.recover import ledger_trouble

    try:
        return PrivacyLedger(ledger_path(node_dir), create=False)
    except ConfigError:
        trouble = ledger_trouble(node_dir)
        if trouble is not None:
            raise trouble from None
        raise


def federation_text(federation) -> str:
    acc = federation.accountant.upper()
    lines = [f"Federation-level guarantee for a person present in every node ({acc}, delta {federation.delta:g}, "
             "recomputed from each node's ledger)",
             f"  {'node':<20} {'releases':>8} {'epsilon':>9}  tables"]
    lines += [f"  {n.node:<20} {n.releases:>8} {n.epsilon:>9.4f}  {', '.join(n.tables) or '-'}"
              for n in federation.nodes]
    lines += [f"  {'every node composed':<20} {federation.releases:>8} {federation.epsilon:>9.4f}  "
              "one person who is a unit in every table of every node", "", "  " + federation.sentence()]
    return "\n".join(lines)


def _rounds(text: str) -> int | None:
    if text.strip().lower() == "all":
        return None
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number or 'all', got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0 or 'all', got {text!r}")
    return value
