"""Issue 13, items 4 and 5: nodes of 5, 50 and 500 rows in one horizontal run (in process), and its held-out R².

The run proposes a sample rate, not a batch size: each node's expected batch is that rate times its rows.
The 5-row node is too small for DP-SGD at the proposed privacy: it says so once at approval, naming itself,
its rows and the minimum, never trains, and takes part through its person-level DP release instead. Every
node releases noised held-out sums after each round; the run prints held-out R² next to the pooled yardstick.
"""
import json
from pathlib import Path

import yaml

from clients.admission import planned_for_node, training_rows
from clients.app import app as client_app
from dp_accounting import PrivacyLedger, ledger_path
from federation.cli import main
from federation.config import compose, to_container
from clients.site_policy import load_site_policy
from server.app import run
from devtools.inprocess_grid import InProcessGrid
from server.runs import proposal_for
from tests.support.contract_fixtures.small_city import HEADER, PREFIX, contract
from tests.support.federation_fixtures import write_node, write_policy
from federation.flower_config import encode

# Three nodes in the shape of configs/federation/cities.yaml without Heerlen; one period's label (shift 0).
OVERRIDES = ("federation=cities ~federation.nodes.heerlen federation.blocks=[context] federation.label.shift=0 "
             "local.rounds=2 dp.target_epsilon=3 node_wait_s=5 holdout_fold=0 folds=5 seed=0 train.epochs=3 "
             "train.weight_decay_choices=[]")


def five_row_city(node: Path) -> None:
    """Five areas of one fixed period from YAML: a public statistics table (the context block) and a survey
    whose mean score is the label, a private table (unit: one record), so its release is noised and charged."""
    (node / "raw").mkdir(parents=True)
    rows = [(f"{i:04d}", "NORTH", str(1000 + 300 * i), str(200 + 10 * i), str(150 + 20 * i), str(400 + 50 * i),
             str(25_000_000 + 1_000_000 * i), str(5 + i), f"{0.1 + 0.05 * i:.2f}") for i in range(1, 6)]
    (node / "raw" / "stats.csv").write_text(HEADER + "\n" + "".join(";".join(r) + "\n" for r in rows))
    survey = "".join(f"p{i}{j};{r[0]};{3.5 + 0.1 * i + 0.05 * j:.2f}\n" for i, r in enumerate(rows) for j in range(30))
    (node / "raw" / "survey.csv").write_text("respondent;area;score\n" + survey)
    spec = contract("raw/stats.csv")
    spec["tables"]["survey"] = {
        "path": "raw/survey.csv", "format": "csv", "delimiter": ";",
        "privacy": {"unit": "record", "max_cells": 1, "max_per_cell": 1, "clip": {"score": [0, 10]}},
        "columns": {"respondent": {"type": "string"}, "area": {"type": "area", "prefix": PREFIX},
                    "score": {"type": "float", "min": 0, "max": 10}}}
    spec["label"] = {"op": "mean", "table": "survey", "column": "score"}
    assert main(["node", "init", "--partner", "genk", "--node-dir", str(node)]) == 0
    (node / "public" / "areas.csv").write_text("area_code,area_name,year,population\n" + "".join(
        f"{PREFIX}{r[0]},Area {r[0]},2021,{r[2]}\n" for r in rows))
    (node / "contract.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    assert main(["features", "--contract", str(node / "contract.yaml"), "--node-dir", str(node)]) == 0
    write_policy(node, "genk")


def test_nodes_of_5_50_and_500_rows_take_part_and_the_run_reports_held_out_r2(tmp_path, capsys):
    root = tmp_path / "nodes"
    five_row_city(root / "genk")
    write_node(root / "sant_boi", "ES-SBL:", ("context",), n_areas=25, months=2, seed=2, label_shift=0)   # 50 rows
    write_node(root / "piraeus", "GR-PIR:", ("context",), n_areas=100, months=5, seed=3, label_shift=0)  # 500 rows
    for city in ("sant_boi", "piraeus"):
        write_policy(root / city, city)
    overrides = f"{OVERRIDES} federation.data_root={root} runs_dir={tmp_path / 'runs'}"
    cfg = to_container(compose("config", overrides.split()))

    # The proposal states one sample rate and the fewest rows DP-SGD needs at it; each node's batch is q x rows.
    proposal = proposal_for(cfg, "small")
    p = proposal.privacy
    assert 0 < p.sample_rate <= 0.1 and p.min_rows is not None and 4 < p.min_rows < 40
    rows = {c: training_rows(root / c, proposal) for c in ("genk", "sant_boi", "piraeus")}
    assert rows == {"genk": 4, "sant_boi": 40, "piraeus": 400}   # fold 0's areas held out
    # The default site policy accepts every node's proposal; the 5-row node says why it will not train.
    for city in rows:
        planned, note = planned_for_node(load_site_policy(root / city), proposal, root / city, rows[city])
        if city == "genk":
            assert note == (f"node 'genk' has 4 training rows, fewer than the {p.min_rows} DP-SGD needs at this run's "
                            f"privacy (sample rate {p.sample_rate:g}: an expected batch of {p.sample_rate * 4:.2g} "
                            "rows); it takes part through its person-level DP release of its blocks and label instead")
            assert {r.kind for r in planned} == {"dp-aggregate", "horizontal-eval"}
        else:
            assert note is None and "horizontal-update" in {r.kind for r in planned}

    # Baseline for a horizontal federation: the pooled yardstick, on the areas each node holds out.
    assert main(["baseline", *overrides.split()]) == 0
    assert "pooled (all blocks, non-private)" in capsys.readouterr().out

    nodes = {10 + i: {"partner": c, "data-dir": str(root / c)} for i, c in enumerate(("genk", "sant_boi", "piraeus"))}
    record = run(InProcessGrid(client_app, nodes), {"overrides": encode(overrides.split()), "run-name": "small",
                                                    "run-dir": str(tmp_path / "run")})
    status = json.loads((tmp_path / "run" / "status.json").read_text())
    assert status["state"] == "completed", status
    assert status["released_nodes"] == ["genk"]
    log = (tmp_path / "run" / "progress.log").read_text()
    assert log.count("node 'genk' has 4 training rows, fewer than") == 1          # once, not every round
    assert "REFUSED" not in log and "FAILED" not in log
    assert "node genk: person-level DP release of 4 training rows" in log
    for rnd in (1, 2):
        line = next(x for x in log.splitlines() if x.startswith(f"round {rnd}: held-out R² (DP)"))
        assert "pooled yardstick (non-private)" in line and "epsilon per node after it" in line
    assert "held-out R² at the end: federated (DP, noised sums)" in log
    heldout = json.loads((tmp_path / "run" / "heldout.json").read_text())
    assert [r["round"] for r in heldout["rounds"]] == [1, 2] and heldout["pooled_yardstick_r2"] is not None

    # What each node's ledger was charged: DP-SGD rounds for the two larger nodes, the person-level release
    # for the small one; held-out sums for all three, every round.
    for city in ("genk", "sant_boi", "piraeus"):
        with PrivacyLedger(ledger_path(root / city)) as ledger:
            kinds = [(r.kind, r.round) for r in ledger.history()]
        assert [k for k in kinds if k[0] == "horizontal-eval"] == [("horizontal-eval", 1), ("horizontal-eval", 2)]
        updates = [k for k in kinds if k[0] == "horizontal-update"]
        if city == "genk":
            assert updates == [] and ("dp-aggregate", 0) in kinds   # its release, once
        else:
            assert updates == [("horizontal-update", 1), ("horizontal-update", 2)]
    # The epsilon a node reported after its last held-out release is what its ledger recomputes.
    assert record.rounds[-1]["nodes"]["piraeus"]["epsilon"] > 0


def test_a_dry_run_trains_on_synthetic_twins_and_charges_no_real_ledger(tmp_path):
    root = tmp_path / "nodes"
    for i, city in enumerate(("genk", "sant_boi", "piraeus")):
        write_node(root / city, f"C{i}:", ("context",), n_areas=20, months=4, seed=i, label_shift=0)
        write_policy(root / city, city)
    once = OVERRIDES.replace("local.rounds=2", "local.rounds=1")   # each setting given once
    overrides = f"{once} federation.data_root={root} runs_dir={tmp_path / 'runs'} dry_run=true"
    cfg = to_container(compose("config", overrides.split()))
    proposal = proposal_for(cfg, "dry")
    assert proposal.privacy.dry_run and proposal.planned_releases() == []   # approval projects no charge
    nodes = {10 + i: {"partner": c, "data-dir": str(root / c)} for i, c in enumerate(("genk", "sant_boi", "piraeus"))}
    run(InProcessGrid(client_app, nodes), {"overrides": encode(overrides.split()), "run-name": "dry", "run-dir": str(tmp_path / "run")})
    status = json.loads((tmp_path / "run" / "status.json").read_text())
    assert status["state"] == "completed" and status["dry_run"] is True, status
    log = (tmp_path / "run" / "progress.log").read_text()
    assert "DRY RUN: every node trains and evaluates on a synthetic twin" in log
    assert "(DRY RUN on synthetic twins: not charged)" in log
    for city in ("genk", "sant_boi", "piraeus"):
        with PrivacyLedger(ledger_path(root / city)) as ledger:
            assert ledger.history() == []                       # the real ledger: nothing charged
        with PrivacyLedger(root / city / "state" / "dry-run" / "ledger.sqlite") as dry:
            assert {r.kind for r in dry.history()} == {"horizontal-update", "horizontal-loss", "horizontal-eval"}
        sent = [json.loads(line) for line in (root / city / "state" / "egress.jsonl").read_text().splitlines()]
        assert {r["kind"] for r in sent} >= {"dry-run-update", "dry-run-heldout-sums"}
        assert all(r["epsilon_charged"] == 0.0 for r in sent)
