"""Code hashes, run proposals and `pulse-twin node approve`: a node approves exactly the code it runs,
refuses (naming the rule) what its policy forbids, and the guard then lets that code's messages out."""
from __future__ import annotations

import io
import json
import shutil
import zipfile
from pathlib import Path

import pytest

import federation.cli
from federation.bundle import bundle_files, code_hash
from clients.contracts import build_features, load_contract
from clients.contracts.output import write_features
from clients.egress import Egress, EgressGuard
from federation.errors import ConfigError, PolicyRefusal
from federation.proposal import PrivacyPlan, RunProposal
from clients.site_policy import read_approvals
from tests.support.contract_fixtures import HeerlenFixture, WINDOW
from tests.support.egress_fixtures import FIELDS, error_digest

PYPROJECT = """\
[project]
name = "pulse-twin-app"
version = "0.1.0"
dependencies = []

[tool.flwr.app]
publisher = "pulse-twin"

[tool.flwr.app.components]
serverapp = "server.app:app"
clientapp = "clients.app:app"

[tool.flwr.app.config]
num-rounds = 3

[tool.flwr.federations]
default = "local"
"""


def make_app(root: Path) -> Path:
    files = {
        "pyproject.toml": PYPROJECT,
        "federation/__init__.py": "",
        "federation/model.py": "WIDTH = 8\n",
        "clients/app.py": "app = None\n",
        "server/app.py": "app = None\n",
        "dp_accounting/__init__.py": "",
        "configs/site_policy/default.yaml": "partner: default\n",
        "federation/test_model.py": "def test(): pass\n",          # test modules are not code a node runs
        "federation/__pycache__/model.cpython-311.pyc": "junk",
        "data/nodes/police/raw/incidents.csv": "a;b\n",
        "tests/test_x.py": "def test(): pass\n",
        "README.md": "docs\n",
    }
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_code_hash_covers_code_and_config_only(tmp_path: Path):
    app = make_app(tmp_path / "app")
    assert bundle_files(app) == [
        "clients/app.py", "configs/site_policy/default.yaml", "dp_accounting/__init__.py", "federation/__init__.py",
        "federation/model.py", "server/app.py",
    ]
    first = code_hash(app)
    assert len(first) == 64 and first == code_hash(app)
    for rel in ("data/nodes/police/raw/incidents.csv", "README.md", "tests/test_x.py", "federation/test_model.py"):
        (app / rel).write_text("changed\n")
    assert code_hash(app) == first
    (app / "federation" / "model.py").write_text("WIDTH = 9\n")
    assert code_hash(app) != first


@pytest.mark.parametrize("change", ["rename", "new-config", "pyproject"])
def test_code_hash_changes_with_any_code_change(tmp_path: Path, change: str):
    app = make_app(tmp_path / "app")
    before = code_hash(app)
    if change == "rename":
        (app / "server" / "app.py").rename(app / "server" / "main.py")
    elif change == "new-config":
        (app / "configs" / "extra.yaml").write_text("a: 1\n")
    else:
        (app / "pyproject.toml").write_text(PYPROJECT.replace("num-rounds = 3", "num-rounds = 4"))
    assert code_hash(app) != before


def test_code_hash_is_the_same_on_the_unpacked_flower_bundle(tmp_path: Path):
    """The node recomputes the hash from the bundle `flwr run` sends; Flower rewrites pyproject.toml."""
    from flwr.cli.build import build_fab_from_disk

    app = make_app(tmp_path / "app")
    fab = build_fab_from_disk(app)
    unpacked = tmp_path / "unpacked"
    zipfile.ZipFile(io.BytesIO(fab)).extractall(unpacked)
    assert (unpacked / "pyproject.toml").read_bytes() != (app / "pyproject.toml").read_bytes()
    assert code_hash(unpacked) == code_hash(app)


def test_code_hash_of_a_directory_without_pyproject_is_a_config_error(tmp_path: Path):
    with pytest.raises(ConfigError, match="not an app root"):
        code_hash(tmp_path)


def proposal(bundle: str = "ab" * 32, **privacy: object) -> RunProposal:
    """A vertical run's proposal: one Gaussian release per table, its noise calibrated from the target as the
    coordinator (and the node) calibrate it, unless the test states another."""
    from dp_accounting import noise_multiplier

    plan = dict(target_epsilon=3.0, delta=1e-5, sample_rate=1.0, steps_per_round=1, rounds=1, unit="record",
                mechanism="gaussian")
    plan.update(privacy)
    if "noise_multiplier" not in plan:
        plan["noise_multiplier"] = noise_multiplier(plan["target_epsilon"], plan["delta"], 1.0, 1)
    return RunProposal(run_name="heerlen-v1", run_kind="vertical", bundle_hash=bundle,
                       privacy=PrivacyPlan(**plan), federation={"name": "heerlen", "partners": ["police"]})


def test_proposal_round_trips_and_plans_one_release_per_round(tmp_path: Path):
    p = proposal(noise_multiplier=1.1, sample_rate=0.02, steps_per_round=50, rounds=5, mechanism="subsampled_gaussian")
    path = tmp_path / "proposal.json"
    p.save(path)
    loaded = RunProposal.load(path)
    assert loaded == p and loaded.sha256() == p.sha256()
    releases = loaded.planned_releases()
    assert [r.round for r in releases] == [1, 2, 3, 4, 5]
    assert {(r.noise_multiplier, r.sample_rate, r.steps, r.run_id) for r in releases} == {(1.1, 0.02, 50, "heerlen-v1")}


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (lambda d: d.pop("run_kind"), "run_kind"),
        (lambda d: d.update(bundle_hash="abc"), "bundle_hash"),
        (lambda d: d["privacy"].update(sample_rate=1.5), "privacy.sample_rate"),
        (lambda d: d["privacy"].update(rounds=2.5), "privacy.rounds"),
        (lambda d: d["privacy"].pop("noise_multiplier"), "privacy.noise_multiplier"),
        (lambda d: d["privacy"].update(epsilon=3), "privacy.epsilon"),
        (lambda d: d.update(run_name="bad name!"), "run_name"),
        (lambda d: d["privacy"].update(steps_per_round=10**12), "privacy.steps_per_round"),
    ],
)
def test_a_bad_proposal_is_one_config_error_naming_file_and_field(tmp_path: Path, edit, field):
    data = json.loads(proposal().to_json())
    edit(data)
    path = tmp_path / "p.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError) as err:
        RunProposal.load(path)
    assert str(path) in str(err.value) and f"'{field}'" in str(err.value)


def test_a_proposal_that_is_not_json_is_a_config_error(tmp_path: Path):
    path = tmp_path / "p.json"
    path.write_text("{not json")
    with pytest.raises(ConfigError, match=r"p.json: not valid JSON \(line 1"):
        RunProposal.load(path)


@pytest.fixture
def pulse_twin(monkeypatch, capsys):
    monkeypatch.setattr(federation.cli, "COMMANDS", ("node", "pki"))

    def run(*argv: str) -> tuple[int, str, str]:
        code = federation.cli.main(list(argv))
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


@pytest.fixture
def police(tmp_path: Path, pulse_twin) -> Path:
    node_dir = tmp_path / "police"
    assert pulse_twin("node", "init", "--partner", "police", "--node-dir", str(node_dir))[0] == 0
    policy = node_dir / "site_policy.yaml"
    policy.write_text(policy.read_text().replace("accountant: prv", "accountant: rdp"))
    HeerlenFixture().write_police(node_dir)          # one table, `incidents`, protecting one record
    write_features(build_features(load_contract("police", WINDOW), node_dir), node_dir)
    return node_dir


def _approve(pulse_twin, node_dir: Path, p: RunProposal, *extra: str) -> tuple[int, str, str]:
    path = node_dir.parent / f"{p.run_name}-{p.sha256()[:8]}.json"
    p.save(path)
    return pulse_twin("node", "approve", "--node-dir", str(node_dir), "--proposal", str(path), *extra)


def _dp_message(bundle: str) -> Egress:
    from dp_accounting import Release

    charge = Release(mechanism="gaussian", noise_multiplier=1.1, sample_rate=1.0, steps=1, run_id="heerlen-v1",
                     round=1, kind="dp-aggregate", table="incidents")
    return Egress("heerlen-v1", 1, "dp-aggregate", "vertical", "0" * 64, 100, [charge], rows=57, bundle_hash=bundle,
                  fields=FIELDS["dp-aggregate"])


def test_unapproved_bundle_is_refused_then_approval_lets_it_out(police: Path, pulse_twin):
    bundle = code_hash(make_app(police.parent / "app"))
    with pytest.raises(PolicyRefusal, match="approved_bundles"):
        EgressGuard.open(police).release(_dp_message(bundle))
    code, out, _ = _approve(pulse_twin, police, proposal(bundle), "--yes", "--by", "j.jansen")
    assert code == 0
    assert "run 'heerlen-v1', a vertical run" in out and "one Gaussian release per private table" in out
    assert "After this run it would reach epsilon" in out and "cap 24" in out and "Approved" in out
    [approval] = read_approvals(police)
    assert approval["bundle_hash"] == bundle and approval["by"] == "j.jansen"
    assert approval["proposal_sha256"] == proposal(bundle).sha256() and approval["projected_epsilon_lifetime"] > 0
    record = EgressGuard.open(police).release(_dp_message(bundle))
    assert record["status"] == "released" and record["bundle_hash"] == bundle
    code, out, _ = _approve(pulse_twin, police, proposal(bundle), "--yes")
    assert code == 0 and "Already approved" in out and len(read_approvals(police)) == 1


@pytest.mark.parametrize(
    ("p", "rule"),
    [
        (RunProposal("h1", "horizontal", "ab" * 32, proposal().privacy), "allowed_run_kinds"),  # police: vertical only
        (proposal(noise_multiplier=0.6), "bounds.min_noise_multiplier"),
        (proposal(sample_rate=0.08), "bounds.max_sample_rate"),
        (proposal(rounds=51), "bounds.max_rounds_per_run"),
        (proposal(delta=0.5, noise_multiplier=1.0), "privacy.delta"),
        (proposal(unit="person"), "privacy.unit"),
        (proposal(unit="area-period row"), "privacy.unit"),
    ],
    ids=["run-kind", "noise", "sample-rate", "rounds", "delta", "unit-person", "unit-row"],
)
def test_approve_refuses_what_the_policy_forbids_naming_the_rule(police: Path, pulse_twin, p: RunProposal, rule: str):
    code, _, err = _approve(pulse_twin, police, p, "--yes")
    assert code == 3 and f"'{rule}'" in err and "Traceback" not in err
    assert read_approvals(police) == []


def test_approve_asks_and_records_nothing_when_declined(police: Path, pulse_twin, monkeypatch):
    monkeypatch.setattr("sys.stdin.isatty", lambda: True, raising=False)
    monkeypatch.setattr("builtins.input", lambda question: "n")
    code, out, _ = _approve(pulse_twin, police, proposal())
    assert code == 1 and "nothing recorded" in out and read_approvals(police) == []
    monkeypatch.setattr("builtins.input", lambda question: "yes")
    assert _approve(pulse_twin, police, proposal())[0] == 0 and len(read_approvals(police)) == 1


def test_approve_without_terminal_needs_yes(police: Path, pulse_twin, monkeypatch):
    monkeypatch.setattr("sys.stdin.isatty", lambda: False, raising=False)
    code, _, err = _approve(pulse_twin, police, proposal())
    assert code == 2 and "--yes" in err and read_approvals(police) == []


def test_a_proposal_path_that_is_a_directory_is_one_line(police: Path, pulse_twin, tmp_path: Path):
    code, _, err = pulse_twin("node", "approve", "--node-dir", str(police), "--proposal", str(tmp_path), "--yes")
    assert code == 2 and "is a directory" in err and "Traceback" not in err


def test_a_contract_with_a_yaml_syntax_error_is_one_line_naming_the_place(tmp_path: Path, capsys):
    bad = tmp_path / "broken.yaml"
    bad.write_text("name: x\ntables: [\n  bad\n")
    code = federation.cli.main(["features", "--contract", str(bad), "--node-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and "broken.yaml: not valid YAML (line 4, column 1)" in err and "Traceback" not in err


def test_approve_names_a_bad_proposal_file(police: Path, pulse_twin):
    path = police.parent / "bad.json"
    path.write_text(json.dumps({"run_name": "x"}))
    code, _, err = pulse_twin("node", "approve", "--node-dir", str(police), "--proposal", str(path), "--yes")
    assert code == 2 and "bad.json" in err and "'run_kind'" in err


def test_the_repository_hash_covers_its_code_and_nothing_else():
    root = Path(federation.cli.__file__).resolve().parents[1]
    files = bundle_files(root)
    assert {"federation/bundle.py", "configs/site_policy/default.yaml"} <= set(files)
    assert not any(f.startswith(("tests/", "data/", ".venv/", "runs/", "docs/")) or "__pycache__" in f for f in files)


def test_copying_an_app_keeps_its_hash(tmp_path: Path):
    app = make_app(tmp_path / "app")
    shutil.copytree(app, tmp_path / "copy")
    assert code_hash(tmp_path / "copy") == code_hash(app)


def test_a_proposal_unit_outside_the_vocabulary_is_a_config_error(tmp_path: Path):
    data = json.loads(proposal().to_json())
    data["privacy"]["unit"] = "citizen"
    with pytest.raises(ConfigError, match="field 'privacy.unit' must be one of area-period row, record, person or household"):
        RunProposal.from_dict(data, "p.json")


def test_approve_names_the_table_whose_unit_is_weaker_than_claimed(police: Path, pulse_twin):
    code, _, err = _approve(pulse_twin, police, proposal(unit="person"), "--yes")
    assert code == 3 and "data contract 'privacy.unit'" in err
    assert "per person or household, but this node's vertical releases protect one record (incidents)" in err


def test_approve_of_a_vertical_run_needs_the_built_features(police: Path, pulse_twin):
    (police / "features" / "manifest.json").unlink()
    code, _, err = _approve(pulse_twin, police, proposal(), "--yes")
    assert code == 3 and "features manifest names none" in err and read_approvals(police) == []
