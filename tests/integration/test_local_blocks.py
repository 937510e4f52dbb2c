"""Node-local block schemas: a city declares its own block next to its contract (YAML only), its approval
covers the block's hash, and a horizontal federation combines nodes with and without it.

The onboarding test takes small cities from a gzipped national table with thousands separators and no
time dimension, each keeping its authority's rows (`where`) and deriving ratios (`expr`), builds them with
`pulse-twin features`, approves the run's proposal with `pulse-twin node approve` and runs the federation
in process, every message passing the node's own admission (`clients.executor`)."""
from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
import yaml

from clients.admission import admit_message, check_proposal
from clients.app import ERROR_DETAILS
from clients.executor import Executor
from dp_accounting import PrivacyLedger, ledger_path
from federation.blocks import block_schema, local_blocks, parse_block_schema, schemas_json
from federation.cli import main
from federation.config import APP_ROOT, compose, to_container
from clients.contracts import load_contract
from federation.errors import ConfigError, ContractError, PolicyRefusal
from clients.site_policy import load_site_policy
from server.app import run
from devtools.inprocess_grid import InProcessGrid
from server.runs import proposal_for
from tests.support.contract_fixtures.small_city import HEADER, PREFIX, contract
from tests.support.federation_fixtures import write_policy
from tests.integration.test_admission import fab_of
from federation.flower_config import encode

LOCAL = {"name": "sc_care", "features": {
    "elderly_per_child": {"transform": "identity", "center": 1.0, "scale": 0.5},
    "benefits_per_household": {"transform": "log1p", "center": 0.0, "scale": 1.0},
}}
AUTHORITIES = ("NORTH", "EAST", "WEST")
AREAS_EACH = 40


def national_rows() -> list[str]:
    """Every authority's areas, numbers with thousands separators; SOUTH's rows hold a bad cell (filtered out)."""
    rows = []
    for k, authority in enumerate((*AUTHORITIES, "SOUTH")):
        for i in range(AREAS_EACH if authority != "SOUTH" else 2):
            pop = 1_000 + 97 * i + 300 * k
            children = "x" if authority == "SOUTH" else f"{pop // 5 + 7 * (i % 4):,}"
            cells = [f"{k}{i:03d}", authority, f"{pop:,}", children, f"{pop // 6:,}", f"{pop // 2:,}",
                     f"{pop * 24_000:,}", str(5 + i % 9), "0.25", f"{3.8 + 0.01 * i:.2f}"]
            rows.append(";".join(cells))
    return rows


def write_city(node: Path, authority: str, with_local: bool) -> Path:
    """One city's node directory, YAML and its export only: the national table, its register, its contract,
    its own block (`blocks/sc_care.yaml`) if it has one, and its site policy."""
    (node / "raw").mkdir(parents=True)
    with gzip.open(node / "raw/stats.csv.gz", "wt", encoding="utf-8") as fh:
        fh.write(HEADER + ";liveability\n" + "\n".join(national_rows()) + "\n")
    k = AUTHORITIES.index(authority)
    (node / "public").mkdir()
    register = ["area_code,area_name,year,population"] + [
        f"{PREFIX}{k}{i:03d},Area {i},2021,{1_000 + 97 * i + 300 * k}" for i in range(AREAS_EACH)]
    (node / "public/areas.csv").write_text("\n".join(register) + "\n", encoding="utf-8")
    data = contract(where={"column": "authority", "equals": authority})
    data["name"] = f"city_{authority.lower()}"
    data["tables"]["stats"]["columns"]["liveability"] = {"type": "float", "min": 0, "max": 10}
    data["label"] = {"op": "area_value", "table": "stats", "column": "liveability"}
    if with_local:
        data["blocks"]["sc_care"] = {
            "elderly_per_child": {"op": "expr", "table": "stats", "expr": "elderly / children"},
            "benefits_per_household": {"op": "expr", "table": "stats", "expr": "benefits / households"},
        }
        (node / "blocks").mkdir()
        (node / "blocks/sc_care.yaml").write_text(yaml.safe_dump(LOCAL, sort_keys=False), encoding="utf-8")
    (node / "contract.yaml").write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    write_policy(node, f"city_{authority.lower()}", approve=False)
    return node


def overrides(root: Path) -> list[str]:
    nodes = ",".join(f"{a}:{{node_dir:{root / a}}}" for a in AUTHORITIES)
    return ["federation=cities", "federation.name=small_cities", "federation.blocks=[context,sc_care]",
            "federation.label.shift=0", "~federation.nodes", f"+federation.nodes={{{nodes}}}",
            "local.rounds=2", "local.sample_rate=0.1", "dp.target_epsilon=3", "node_wait_s=5"]


def propose_and_approve(root: Path, name: str, capsys) -> str:
    proposal = proposal_for(to_container(compose("config", overrides(root))), name)
    path = root / f"{name}.json"
    proposal.save(path)
    for authority in AUTHORITIES:
        assert main(["node", "approve", "--node-dir", str(root / authority), "--proposal", str(path), "--yes",
                     "--by", "test"]) == 0
    shown = capsys.readouterr().out
    assert f"sc_care {proposal.block_schemas['sc_care'][:12]}... (this node's" in shown
    return proposal.sha256()


def federate(root: Path, name: str, sha: str, run_dir: Path) -> dict:
    """The run on an in-process grid, each node answering through its own executor (admission first)."""
    fab = fab_of(APP_ROOT)
    nodes = {10 + i: {"partner": f"city_{a.lower()}", "data-dir": str(root / a)} for i, a in enumerate(AUTHORITIES)}
    executors = {i: Executor(Path(c["data-dir"]), "", b"", say=lambda line: None) for i, c in nodes.items()}
    grid = InProcessGrid(lambda message, context: executors[context.node_id].answer(message, context, fab),
                         nodes, run_config={"run-name": name, "proposal-sha256": sha})
    run(grid, {"overrides": encode(overrides(root)), "run-name": name, "run-dir": str(run_dir)})
    return json.loads((run_dir / "status.json").read_text())


def updates(root: Path, authority: str) -> list:
    return [r for r in PrivacyLedger(ledger_path(root / authority)).history() if r.kind == "horizontal-update"]


def test_small_cities_with_a_local_block_onboard_from_yaml_and_federate(tmp_path, capsys):
    root = tmp_path / "nodes"
    for authority in AUTHORITIES:   # WEST has no local block: it trains with sc_care masked
        node = write_city(root / authority, authority, with_local=authority != "WEST")
        assert main(["features", "--contract", str(node / "contract.yaml"), "--node-dir", str(node)]) == 0
    out = capsys.readouterr().out
    assert "row filter (authority = 'NORTH') kept 40 of 122 rows" in out
    assert "block sc_care: 40 area-period rows" in out and "label: 40 area-period rows" in out
    assert not (root / "WEST/features/sc_care.parquet").exists()

    sha = propose_and_approve(root, "sc-1", capsys)
    status = federate(root, "sc-1", sha, tmp_path / "run1")
    assert status["state"] == "completed", status
    rounds = json.loads((tmp_path / "run1/rounds.json").read_text())
    assert [r["round"] for r in rounds] == [1, 2]
    for authority in AUTHORITIES:
        assert [r.round for r in updates(root, authority)] == [1, 2]
        assert rounds[-1]["nodes"][f"city_{authority.lower()}"]["epsilon"] > 0

    # The cities publish a new version of their block: nodes refuse the approved run until they approve again.
    changed = {**LOCAL, "features": {**LOCAL["features"],
                                     "elderly_per_child": {"transform": "identity", "center": 0.8, "scale": 0.5}}}
    for authority in ("NORTH", "EAST"):
        (root / authority / "blocks/sc_care.yaml").write_text(yaml.safe_dump(changed, sort_keys=False))
    status = federate(root, "sc-1", sha, tmp_path / "run2")
    assert status["state"] == "refused", status
    # The rule reaches the coordinator; which file differs stays in each node's own error log.
    assert "block_schemas: " in status["error"] and "sc_care.yaml" not in status["error"]
    assert all("blocks/sc_care.yaml" in (root / a / ERROR_DETAILS).read_text() for a in ("NORTH", "EAST"))
    assert all(len(updates(root, a)) == 2 for a in AUTHORITIES)   # nothing more was released

    sha2 = propose_and_approve(root, "sc-2", capsys)
    status = federate(root, "sc-2", sha2, tmp_path / "run3")
    assert status["state"] == "completed", status
    assert all(len(updates(root, a)) == 4 for a in AUTHORITIES)


def test_nodes_must_agree_on_a_block_they_share(tmp_path):
    root = tmp_path / "nodes"
    for authority in AUTHORITIES:
        write_city(root / authority, authority, with_local=authority != "WEST")
    other = {**LOCAL, "features": {"elderly_per_child": LOCAL["features"]["elderly_per_child"]}}
    (root / "EAST/blocks/sc_care.yaml").write_text(yaml.safe_dump(other))
    with pytest.raises(ConfigError, match="block 'sc_care' is declared differently by .*NORTH/blocks/sc_care.yaml "
                                          "and .*EAST/blocks/sc_care.yaml"):
        proposal_for(to_container(compose("config", overrides(root))), "x")
    (root / "EAST/blocks/sc_care.yaml").unlink()
    (root / "NORTH/blocks/sc_care.yaml").unlink()
    with pytest.raises(ConfigError, match="block 'sc_care' is neither configs/block/sc_care.yaml nor a node-local"):
        proposal_for(to_container(compose("config", overrides(root))), "x")


def test_a_node_approves_only_its_own_block_and_runs_only_approved_schemas(tmp_path):
    root = tmp_path / "nodes"
    for authority in AUTHORITIES:
        write_city(root / authority, authority, with_local=authority != "WEST")
    proposal = proposal_for(to_container(compose("config", overrides(root))), "r")
    assert set(proposal.block_schemas) == {"context", "sc_care"}
    mine = local_blocks(root / "NORTH")["sc_care"]
    assert proposal.block_schemas["sc_care"] == mine.sha256
    # A comment or the layout of the file does not change the block; a value does.
    text = (root / "NORTH/blocks/sc_care.yaml").read_text()
    (root / "NORTH/blocks/sc_care.yaml").write_text("# our block\n" + text)
    check_proposal(load_site_policy(root / "NORTH"), proposal, root / "NORTH")
    (root / "NORTH/blocks/sc_care.yaml").write_text(text.replace("scale: 0.5", "scale: 0.6"))
    with pytest.raises(PolicyRefusal, match="'block_schemas'.*NORTH/blocks/sc_care.yaml"):
        check_proposal(load_site_policy(root / "NORTH"), proposal, root / "NORTH")
    check_proposal(load_site_policy(root / "WEST"), proposal, root / "WEST")   # not its block

    p = proposal.privacy
    train = {"run-name": "r", "target-epsilon": p.target_epsilon, "delta": p.delta, "num-rounds": p.rounds,
             "sample-rate": p.sample_rate, "local-epochs": p.local_epochs,
             "loss-noise-multiplier": p.loss_noise_multiplier, "min-rows": p.min_rows, "dry-run": p.dry_run, "blocks": "context,sc_care",
             "block-schemas": schemas_json({"sc_care": mine})}
    admit_message(proposal, "train", train)
    with pytest.raises(PolicyRefusal, match="names block 'safety', which the approved proposal does not"):
        admit_message(proposal, "train", {**train, "blocks": "context,safety"})
    other = parse_block_schema({**LOCAL, "features": {"elderly_per_child": {}}}, "x", "sc_care")
    with pytest.raises(PolicyRefusal, match="schema of block 'sc_care' with hash .* not the approved one"):
        admit_message(proposal, "train", {**train, "block-schemas": schemas_json({"sc_care": other})})


@pytest.mark.parametrize("edit,words", [
    (lambda d: d["features"]["elderly_per_child"].update(transform="log"), "transform must be one of identity, log1p"),
    (lambda d: d["features"]["elderly_per_child"].update(scale=0), "feature 'elderly_per_child': scale must be positive"),
    (lambda d: d["features"]["elderly_per_child"].update(centre=1), "unknown key(s) centre"),
    (lambda d: d.update(name="other"), "name 'other' must be the file name without .yaml ('sc_care')"),
    (lambda d: d.update(features={}), "`features` must map at least one feature"),
    (lambda d: d.update(features=[1]), "features must be a mapping"),
])
def test_a_bad_local_block_is_one_message_naming_file_and_key(edit, words, tmp_path):
    node = write_city(tmp_path / "NORTH", "NORTH", with_local=True)
    data = json.loads(json.dumps(LOCAL))
    edit(data)
    (node / "blocks/sc_care.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError) as err:
        load_contract(node / "contract.yaml")
    assert str(node / "blocks/sc_care.yaml") in str(err.value) and words in str(err.value)


def test_the_contract_check_uses_the_block_beside_it(tmp_path, capsys):
    node = write_city(tmp_path / "NORTH", "NORTH", with_local=True)
    assert main(["contract", "check", str(node / "contract.yaml")]) == 0
    assert f"sc_care (2, node-local {node / 'blocks/sc_care.yaml'})" in capsys.readouterr().out
    (node / "blocks/sc_care.yaml").rename(node / "blocks/sc_other.yaml")
    with pytest.raises(ConfigError, match="name 'sc_care' must be the file name"):
        load_contract(node / "contract.yaml")
    (node / "blocks/sc_other.yaml").unlink()
    with pytest.raises(ContractError, match="block 'sc_care': no usable block schema configs/block/sc_care.yaml "
                                            "nor blocks/sc_care.yaml beside the contract"):
        load_contract(node / "contract.yaml")
    (node / "blocks/context.yaml").write_text(yaml.safe_dump({**LOCAL, "name": "context"}))
    with pytest.raises(ConfigError, match="may not reuse the name of the project's block configs/block/context.yaml"):
        load_contract(node / "contract.yaml")
    assert block_schema("context").source == "configs/block/context.yaml"


def test_partition_copies_the_local_blocks(tmp_path, capsys):
    node = write_city(tmp_path / "all", "NORTH", with_local=True)
    data = yaml.safe_load((node / "contract.yaml").read_text())
    data["tables"]["stats"]["where"] = {"column": "authority", "in": list(AUTHORITIES)}
    (node / "contract.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    lines = ["area_code,area_name,year,population"] + [
        f"{PREFIX}{k}{i:03d},x,2021,1000" for k in range(3) for i in range(AREAS_EACH)]
    (node / "public/areas.csv").write_text("\n".join(lines) + "\n")
    assert main(["partition", "--contract", str(node / "contract.yaml"), "--node-dir", str(node), "--by",
                 "authority", "--out", str(tmp_path / "parts")]) == 0
    for authority in AUTHORITIES:
        part = tmp_path / "parts" / authority
        assert (part / "blocks/sc_care.yaml").read_text() == (node / "blocks/sc_care.yaml").read_text()
        assert "sc_care" in load_contract(part / "contract.yaml").blocks
