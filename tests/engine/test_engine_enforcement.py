"""The node enforces on the real engine: a coordinator that ships other code, or asks other privacy
parameters than the nodes approved, gets refusals naming the rule, and nothing else leaves a node."""
import json
import secrets
import shutil
import sqlite3
import time
from pathlib import Path

import pytest

from clients.admission import check_proposal, record_approval
from federation.bundle import CODE_DIRS
from federation.config import APP_ROOT
from devtools.launcher import LocalEngine, NodeLaunch
from clients.site_policy import load_site_policy
from server.runs import EXIT_REFUSED, propose, start, wait
from tests.support.federation_fixtures import city_nodes
from tests.support.processes import processes_mentioning
from clients.app import ERROR_DETAILS
from federation.messages import error_text

pytestmark = pytest.mark.engine

NODES = ("genk", "sant_boi")
OVERRIDES = ["federation=cities", "~federation.nodes.piraeus", "~federation.nodes.heerlen", "local.rounds=2",
             "local.sample_rate=0.07", "reply_timeout_s=120", "node_wait_s=60"]

EVIL_CLIENT_APP = '''
"""A coordinator's modified ClientApp: it reads the node's raw/ and sends it back."""
from pathlib import Path

from flwr.app import ConfigRecord, Message, RecordDict
from flwr.clientapp import ClientApp

Path({marker!r}).write_text("the shipped code ran on a node")
app = ClientApp()


def _raw(context) -> bytes:
    node_dir = Path(str(context.node_config["data-dir"]))
    return b"".join(p.read_bytes() for p in sorted((node_dir / "raw").glob("*")))


@app.train()
def train(msg, context):
    return Message(RecordDict({{"raw": ConfigRecord({{"raw": _raw(context)}})}}), reply_to=msg)


def query(msg, context):
    return Message(RecordDict({{"raw": ConfigRecord({{"raw": _raw(context)}})}}), reply_to=msg)


for _action in ("describe", "privacy", "psi", "align", "release"):
    app.query(_action)(query)
'''


@pytest.fixture(scope="module")
def federation(tmp_path_factory):
    """Two city nodes with a secret in raw/, on one running engine (coordinator + two `node start`)."""
    root = tmp_path_factory.mktemp("enforce")
    city_nodes(root / "nodes", approve=False)
    secret = f"RAW-SECRET-{secrets.token_hex(16)}"
    launches = []
    for name in NODES:
        node_dir = root / "nodes" / name
        (node_dir / "raw").mkdir(parents=True, exist_ok=True)
        (node_dir / "raw" / "incidents.csv").write_text(f"id,area,note\n1,BE-GNK:0001,{secret}\n")
        launches.append(NodeLaunch(name, node_dir, {}))
    with LocalEngine(root / "engine", launches, say=lambda _: None) as engine:
        yield {"root": root, "engine": engine, "secret": secret, "launches": launches}
    assert processes_mentioning(str(root)) == []


def approve_everywhere(fed, run_name: str, extra: list[str] = ()):
    rd, proposal, _ = propose([*OVERRIDES, f"federation.data_root={fed['root'] / 'nodes'}",
                               f"runs_dir={fed['root'] / 'runs'}", *extra], run_name)
    for n in fed["launches"]:
        policy = load_site_policy(n.node_dir)
        check_proposal(policy, proposal, n.node_dir)
        record_approval(n.node_dir, proposal, policy, "test")
    return rd, proposal


def evil_app(root: Path, marker: Path) -> Path:
    app = root / "evil-app"
    app.mkdir(exist_ok=True)
    shutil.copy(APP_ROOT / "pyproject.toml", app / "pyproject.toml")
    for folder in CODE_DIRS:
        shutil.copytree(APP_ROOT / folder, app / folder, ignore=shutil.ignore_patterns("__pycache__"),
                        dirs_exist_ok=True)
    (app / "clients" / "app.py").write_text(EVIL_CLIENT_APP.format(marker=str(marker)))
    return app


def egress_records(node_dir: Path) -> list[dict]:
    path = node_dir / "state" / "egress.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []


def stored_bytes(root: Path) -> bytes:
    """Everything the SuperLink stored (its database, WAL included, every row dumped) and wrote."""
    data = b""
    for path in (root / "engine" / "coordinator").rglob("*"):
        if path.is_file():
            data += path.read_bytes()
    db = root / "engine" / "coordinator" / "superlink.db"
    with sqlite3.connect(db) as conn:
        data += "\n".join(conn.iterdump()).encode(errors="replace")
    return data


def test_a_modified_bundle_is_refused_by_every_node_without_running_it(federation):
    fed = federation
    marker = fed["root"] / "shipped-code-ran"
    rd, proposal = approve_everywhere(fed, "evil")
    before = {n.name: len(egress_records(n.node_dir)) for n in fed["launches"]}
    start(fed["engine"].coordinator, rd, app_dir=evil_app(fed["root"], marker))
    outcome = wait(fed["engine"].coordinator, rd, timeout=300, show=lambda _: None)
    assert outcome["exit_code"] == EXIT_REFUSED and outcome["state"] == "refused", outcome
    assert "approved_bundles" in outcome["error"]
    assert not marker.exists()                                  # nothing of the shipped code ran
    for n in fed["launches"]:
        new = egress_records(n.node_dir)[before[n.name]:]
        assert new and all(r["kind"] == "error" and r["releases"] == [] for r in new)
        assert fed["secret"] not in (n.node_dir / "state" / "egress.jsonl").read_text()
    assert fed["secret"].encode() not in stored_bytes(fed["root"])
    assert fed["secret"].encode() not in b"".join(p.read_bytes() for p in rd.path.rglob("*") if p.is_file())


def test_privacy_parameters_other_than_approved_are_refused_before_any_release(federation):
    """The coordinator launches the approved run's name and proposal with epsilon 20 instead of 3."""
    fed = federation
    rd, proposal = approve_everywhere(fed, "greedy")
    launch = rd.launch()
    rd.write_launch({**launch, "overrides": [*launch["overrides"], "dp.target_epsilon=20"]})
    start(fed["engine"].coordinator, rd)
    outcome = wait(fed["engine"].coordinator, rd, timeout=300, show=lambda _: None)
    assert outcome["exit_code"] == EXIT_REFUSED, outcome
    reasons = [r["reason"] for r in outcome["refusals"]]
    # The reply names the rule with its fixed sentence; the values compared stay in the node's own error log.
    assert len(reasons) == len(NODES) and all(r == error_text("target_epsilon") for r in reasons)
    for n in fed["launches"]:
        assert "20" in (n.node_dir / ERROR_DETAILS).read_text()
        records = [r for r in egress_records(n.node_dir) if r["run_id"].startswith("greedy")]
        assert not any(r["releases"] for r in records)        # no DP release left, nothing was charged
        assert {r["kind"] for r in records} <= {"public-fact", "error"}
