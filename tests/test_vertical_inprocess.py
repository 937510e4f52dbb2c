"""Vertical federation: PSI alignment and split learning through the real ServerApp/ClientApp code, no Ray."""
import json
from pathlib import Path

import pandas as pd
import pytest

from clients.app import app as client_app
from dp_accounting import PrivacyLedger, ledger_path
from federation.egress import payload_digest
from federation.egress.log import EgressLog
from federation.psi import encode_key
from server.app import run
from server.inprocess_grid import InProcessGrid
from tests.federation_fixtures import heerlen_partners, write_policy

OVERRIDES = "federation=heerlen vertical.exchanges=3 node_wait_s=5 holdout_fold=0"


def run_heerlen(tmp_path, extra="", **kw):
    nodes = heerlen_partners(tmp_path / "nodes", **kw)
    grid = InProcessGrid(client_app, nodes)
    run(grid, {"overrides": f"{OVERRIDES} federation.data_root={tmp_path / 'nodes'} {extra}",
               "run-name": "v", "run-dir": str(tmp_path / "run")})
    return grid, nodes, json.loads((tmp_path / "run" / "status.json").read_text())


def reply_bytes(msg) -> bytes:
    """Everything a reply carries, as bytes: config values, metric values, array buffers."""
    out = []
    for rec in msg.content.config_records.values():
        for v in rec.values():
            out.append(v if isinstance(v, bytes) else str(v).encode())
    for rec in msg.content.array_records.values():
        for arr in rec.values():
            out.append(arr.data)
    for rec in msg.content.metric_records.values():
        out.extend(str(v).encode() for v in rec.values())
    return b"\n".join(out)


def test_vertical_run_aligns_trains_predicts_and_charges_every_release(tmp_path):
    grid, nodes, status = run_heerlen(tmp_path, extra_police_areas=5)
    assert status["state"] == "completed", status
    # PSI: 20 common areas x 11 months with a next-month label; police's 5 extra areas are left out.
    assert status["aligned_training_rows"] == 20 * 11
    predictions = pd.read_csv(tmp_path / "run" / "predictions.csv")
    assert len(predictions) == 20 and predictions["predicted_liveability"].between(2, 6).all()
    rounds = json.loads((tmp_path / "run" / "rounds.json").read_text())
    assert [r["round"] for r in rounds] == [1, 2, 3]
    # Keys outside the intersection never appear in anything a node sent.
    outside = [encode_key((f"BU0917{i:04d}", "2020-01")) for i in range(20, 25)]
    sent = b"\n".join(reply_bytes(m) for m in grid.sent_by_nodes if m.has_content())
    assert all(k.encode() not in sent for k in outside)
    assert all(f"BU0917{i:04d}".encode() not in sent for i in range(20, 25))
    for cfg in nodes.values():
        ledger = PrivacyLedger(ledger_path(cfg["data-dir"]))
        kinds = [r.kind for r in ledger.history()]
        # 3 training exchanges and one prediction release, each charged once.
        assert kinds == ["vertical-embedding"] * 3 + ["vertical-prediction"]
        # Every embedding message on the egress log charged epsilon; the PSI set size is a disclosed fact.
        records = EgressLog(Path(cfg["data-dir"])).verify()
        emb = [r for r in records if r["kind"] in ("dp-embeddings", "dp-prediction-embeddings")]
        assert len(emb) == 4 and all(r["epsilon_charged"] > 0 for r in emb)
        assert any(f.kind == "psi_revealed_set_size" for f in ledger.facts())
        report = json.loads((tmp_path / "run" / "privacy" / f"{cfg['partner']}.json").read_text())
        assert report["epsilon"] <= 3.0 * 1.0001
    # Every payload a node sent is on its egress log under its exact digest.
    logged = {r["payload_sha256"] for cfg in nodes.values() for r in EgressLog(Path(cfg["data-dir"])).verify()}
    assert all(payload_digest(m.content)[0] in logged for m in grid.sent_by_nodes if m.has_content())


def test_release_past_cap_is_refused_and_run_fails_with_the_rule(tmp_path):
    nodes = heerlen_partners(tmp_path / "nodes")
    police = next(c for c in nodes.values() if c["partner"] == "police")
    write_policy(Path(police["data-dir"]), "police", approve=False, epsilon_per_year=2.0, epsilon_lifetime=2.0)
    grid = InProcessGrid(client_app, nodes)
    run(grid, {"overrides": f"{OVERRIDES} federation.data_root={tmp_path / 'nodes'}", "run-name": "v",
               "run-dir": str(tmp_path / "run")})
    status = json.loads((tmp_path / "run" / "status.json").read_text())
    assert status["state"] == "failed"
    assert "police" in status["error"] and "epsilon_lifetime" in status["error"]
    # Whatever police released stayed within its cap.
    assert PrivacyLedger(ledger_path(police["data-dir"])).epsilon(1e-5) <= 2.0


def test_partner_refuses_an_embedding_release_beyond_the_planned_schedule(tmp_path):
    from flwr.app import ConfigRecord, Message, RecordDict

    grid, nodes, status = run_heerlen(tmp_path)
    assert status["state"] == "completed"
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    police_id = next(i for i, c in nodes.items() if c["partner"] == "police")
    # Replay the run's last request once more: the partner has made all the releases it planned.
    from federation.messages import to_config
    from server.vertical import task_settings

    task = task_settings(config, "v", ("safety", "context", "social", "care"))
    cfg = {**to_config(task), "run-kind": "vertical", "clip": 1.0, "encoder-lr": 0.01, "seed": 0,
           "target-epsilon": 3.0, "delta": 1e-5, "planned-releases": 4, "phase": "predict", "exchange": 5}
    reply = grid.send_and_receive([Message(RecordDict({"config": ConfigRecord(cfg)}), dst_node_id=police_id,
                                           message_type="query.embed")])[0]
    assert reply.has_error() and "planned schedule" in reply.error.reason
    assert len(PrivacyLedger(ledger_path(nodes[police_id]["data-dir"])).history()) == 4


def test_embedding_noise_is_fresh_in_every_release(tmp_path):
    """Two releases of the same rows differ by independent noise (std sqrt(2) sigma C), even though the
    node rebuilds its encoder from a fixed seed each exchange; and global seeding cannot fix the noise."""
    import numpy as np
    import torch

    from clients.vertical import gaussian_noise

    torch.manual_seed(0)
    a = gaussian_noise((1000,), 1.0)
    torch.manual_seed(0)
    b = gaussian_noise((1000,), 1.0)
    assert not torch.equal(a, b) and 0.9 < float(a.std()) < 1.1

    grid, nodes, status = run_heerlen(tmp_path, extra="vertical.encoder_lr=0.0")  # encoder fixed: clean parts equal
    assert status["state"] == "completed"
    police_dir = Path(next(c["data-dir"] for c in nodes.values() if c["partner"] == "police"))
    plan = json.loads(next((police_dir / "state" / "runs").glob("*.json")).read_text())
    police_id = next(i for i, c in nodes.items() if c["partner"] == "police")
    releases = [m.content["emb"]["emb"].numpy() for m in grid.sent_by_nodes
                if m.has_content() and "emb" in m.content.array_records and m.metadata.src_node_id == police_id]
    diff = releases[1] - releases[0]
    expected = np.sqrt(2) * plan["noise_multiplier"] * plan["clip"]
    assert 0.85 * expected < float(diff.std()) < 1.15 * expected
