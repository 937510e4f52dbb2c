"""Nothing exact leaves a node: every reply is built from its kind's allow-list of fields, and an error reply
carries a rule name and a fixed sentence, whatever the raw input or the failure (the detail stays on the node).

Raw inputs and failures are fuzzed (fixed seed, bounded examples); each test has a control case showing that
what it asserts can fail: the reply the node sent before (exact statistics beside the release, an exception's
text as the reason) is refused or is not among the fixed texts.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from flwr.app import ConfigRecord, Message, MetricRecord, RecordDict
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from clients import vertical
from clients.app import ERROR_DETAILS, app as client_app
from devtools.inprocess_grid import InProcessGrid
from clients.egress import EgressGuard
from clients.node import send
from clients.site_policy import RuleRefusal
from federation.cli import main
from federation.errors import BudgetExceeded, ConfigError, ContractError, PolicyRefusal
from federation.messages import (REPLY_FIELDS, TaskSettings, error_reply, error_texts, fields_outside,
                                 payload_fields, to_config)
from tests.integration.test_fuzz_bad_inputs import CELL, EDITS, _apply
from tests.support.contract_fixtures import HeerlenFixture, generated_window
from tests.support.federation_fixtures import write_policy

SETTINGS = dict(derandomize=True, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
EXACT = ("records", "units_cut", "share_cut", "summary", "pairs_cut", "units")


@pytest.fixture(scope="module")
def police_template(tmp_path_factory) -> Path:
    """A police node with clean raw records, its features built and its policy approving the running code."""
    node = tmp_path_factory.mktemp("template") / "police"
    assert main(["node", "init", "--partner", "police", "--node-dir", str(node)]) == 0
    HeerlenFixture().write_police(node)
    window = generated_window(node, 3, "2019-11")   # the fixture's three months, in the node's own contract too
    assert main(["features", "--contract", "police", "--node-dir", str(node), *window]) == 0
    write_policy(node, "police")
    return node


def release_message(run: str = "fuzz") -> Message:
    task = TaskSettings(run_name=run, blocks=("safety",), label_center=4.1, label_scale=0.25, label_shift=1)
    config = dict(to_config(task))
    config.update({"run-kind": "vertical", "target-epsilon": 3.0, "delta": 1e-5})
    InProcessGrid(client_app, {})   # sets the task identity a message needs outside `flwr-serverapp`
    msg = Message(RecordDict({"config": ConfigRecord(config)}), dst_node_id=1, message_type="query.release",
                  group_id="1")
    msg.metadata.__dict__["_message_id"] = "m1"   # as the in-process grid does: a reply needs its message's id
    return msg


def ask_release(node: Path) -> Message:
    """The node's installed ClientApp answers a `release` query, as on its SuperNode."""
    grid = InProcessGrid(client_app, {1: {"partner": node.name, "data-dir": str(node)}})
    msg = grid.create_message(release_message().content, "query.release", 1, "1")
    [msg_id] = grid.push_messages([msg])
    return grid._replies[msg_id]


def egress_records(node: Path) -> list[dict]:
    path = node / "state" / "egress.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def assert_only_allowed_left(node: Path) -> None:
    """Every released record of the node's egress log lists its fields, all on its kind's allow-list; every
    error reply is one of the fixed texts (the guard checked its digest)."""
    for record in egress_records(node):
        if record["status"] != "released":
            continue
        assert record["fields"] is not None and fields_outside(record["kind"], record["fields"]) == []
        assert not any(word in field for field in record["fields"] for word in EXACT)


# --- item 1: exact statistics beside a release ----------------------------------------------------------

def test_the_release_reply_carries_no_exact_statistics_and_the_node_keeps_them(police_template, tmp_path):
    node = shutil.copytree(police_template, tmp_path / "police")
    reply = ask_release(node)
    assert not reply.has_error(), reply.error.reason if reply.has_error() else ""
    fields = payload_fields(reply.content)
    assert "release.block:safety" in fields and fields_outside("dp-aggregate", fields) == []
    assert not any(word in f for f in fields for word in EXACT)
    # The exact statistics are the node's own: kept in the run's state, with the real counts.
    [stats] = (node / "state" / "runs").glob(f"*/{vertical.RELEASE_STATS}")
    kept = json.loads(stats.read_text())
    assert kept["records"] > 0 and "units_cut" in kept["tables"]["incidents"]
    assert_only_allowed_left(node)


def test_control_a_reply_with_exact_statistics_is_refused_and_nothing_leaves(police_template, tmp_path):
    """The reply as the node built it before: `metrics.records` and `release.summary` beside the release."""
    node = shutil.copytree(police_template, tmp_path / "police")
    content = RecordDict({"release": ConfigRecord({"block:safety": b"x", "summary": '{"incidents": {"units_cut": 3}}'}),
                          "metrics": MetricRecord({"rows": 10, "records": 33966, "epsilon": 1.0})})
    with pytest.raises(RuleRefusal) as err, EgressGuard.open(node) as guard:
        send(release_message(), content, guard, run_id="r#1", round=1, kind="public-fact", run_kind="vertical")
    assert err.value.rule == "message.fields" and "metrics.records" in str(err.value)
    [record] = egress_records(node)
    assert record["status"] == "refused" and record["rule"] == "message.fields"
    assert set(fields_outside("dp-aggregate", payload_fields(content))) == {"metrics.records", "release.summary"}


def test_a_record_of_another_type_than_its_name_says_is_off_every_list():
    content = RecordDict({"arrays": ConfigRecord({"w": "raw"}), "metrics": MetricRecord({"epsilon": 1.0})})
    assert fields_outside("dp-model-update", payload_fields(content)) == ["arrays[config].w"]
    assert all(not fields_outside(kind, [p for p in patterns if "*" not in p]) for kind, patterns in REPLY_FIELDS.items())


# --- item 3: error replies carry a rule and a fixed sentence -----------------------------------------------

ERRORS = st.sampled_from([ConfigError, ContractError, PolicyRefusal, BudgetExceeded, ValueError, KeyError,
                          RuntimeError, OSError])
RAW = st.one_of(CELL, st.text(min_size=1, max_size=40), st.just("/srv/police/raw/incidents.csv, line 4812"))


@settings(max_examples=300, **SETTINGS)
@given(kind=ERRORS, text=RAW, rule=st.one_of(st.none(), st.text(max_size=20), st.sampled_from(
    ["privacy.epsilon_lifetime", "approved_bundles", "message.fields"])))
def test_any_failure_becomes_a_fixed_text(kind, text, rule):
    err = kind(text)
    if rule is not None:
        err.rule = rule
    reply = error_reply(err)
    assert reply.text in error_texts()
    assume(len(text.strip()) >= 4)
    assert text not in {reply.text} and f"{type(err).__name__}: {err}" not in error_texts()   # control: the old reason


@settings(max_examples=40, **SETTINGS)
@given(edits=EDITS, blobs=st.lists(st.binary(max_size=30), max_size=2))
def test_fuzzed_raw_records_reach_the_coordinator_only_as_allowed_fields_and_fixed_texts(
        police_template, tmp_path_factory, edits, blobs):
    node = shutil.copytree(police_template, tmp_path_factory.mktemp("fuzz") / "police")
    data = HeerlenFixture()
    data.incidents = _apply(data.incidents, edits)
    try:
        data.write_police(node)
    except UnicodeEncodeError:
        assume(False)
    path = node / "raw" / "incidents.csv"
    for blob in blobs:
        raw = path.read_bytes()
        path.write_bytes(raw[: len(raw) // 2] + blob + raw[len(raw) // 2:])
    reply = ask_release(node)
    if reply.has_error():
        assert reply.error.reason in error_texts()
        detail = json.loads((node / ERROR_DETAILS).read_text().splitlines()[-1])
        assert detail["rule"] == reply.error.reason.split(":", 1)[0] and detail["detail"]
    else:
        assert fields_outside("dp-aggregate", payload_fields(reply.content)) == []
    assert_only_allowed_left(node)


def test_control_a_broken_raw_file_names_its_path_only_in_the_nodes_own_log(police_template, tmp_path):
    node = shutil.copytree(police_template, tmp_path / "police")
    (node / "raw" / "incidents.csv").write_text("not;the;export\n1;2;3\n")
    reply = ask_release(node)
    assert reply.has_error() and reply.error.reason in error_texts()
    detail = json.loads((node / ERROR_DETAILS).read_text().splitlines()[-1])["detail"]
    assert "incidents.csv" in detail and detail not in error_texts()   # what used to be the reply's reason
    assert "incidents.csv" not in reply.error.reason
    [record] = [r for r in egress_records(node) if r["kind"] == "error"]
    assert record["status"] == "released" and record["fields"] == ["error.code", "error.reason"]


def test_the_guard_refuses_an_error_reply_whose_text_is_not_a_fixed_one(police_template, tmp_path):
    from clients.egress import Egress, bytes_digest

    node = shutil.copytree(police_template, tmp_path / "police")
    leaked, _ = bytes_digest(b"ContractError: /srv/police/raw/incidents.csv, line 12: 'BU0917x' is no area")
    with EgressGuard.open(node) as guard, pytest.raises(RuleRefusal, match="fixed sentence"):
        guard.release(Egress("r#1", 1, "error", "vertical", leaked, 80, params={"rule": "node_setup"},
                             fields=("error.code", "error.reason")))
