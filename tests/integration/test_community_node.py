"""The community node: a Signalen-shaped export becomes the `community` block on the node, with the reporter
(and, in their own table, the frontliner) as the unit, bounds enforced and reported, coordinates turned into
buurten on the node, and free text, photos and contact data unreadable by type and never sent."""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import yaml
from flwr.app import ArrayRecord, ConfigRecord, Message, RecordDict

from clients.app import app as client_app
from clients.contracts import build_features, load_contract
from clients.contracts.validation import Table
from devtools.inprocess_grid import InProcessGrid
from federation.cli import main
from federation.config import configs_dir
from federation.errors import ContractError
from federation.messages import TaskSettings, fields_outside, payload_fields, to_config
from tests.support.community_fixtures import (B1, B2, PLANTED_EMAIL, PLANTED_PHONE, PLANTED_TEXT, POINT_B1,
                                              export_rows, write_community)
from tests.support.federation_fixtures import write_policy


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    node = tmp_path_factory.mktemp("community") / "community"
    write_community(node)
    return build_features(load_contract("community"), node)


def cell(features, area: str, period: str, column: str) -> float:
    frame = features.blocks["community"]
    row = frame[(frame.area_code == area) & (frame.period == period)]
    assert len(row) == 1
    return float(row[column].iloc[0])


def test_a_reporter_over_the_bound_is_cut_and_the_cut_is_reported(built):
    # B1, 2020-03: r-heavy's 5 reports keep 1 (max_per_cell), plus r-one's report placed by coordinates
    assert cell(built, B1, "2020-03", "reports_public_space_per_1000") == pytest.approx(2.0)
    stats = built.stats["tables"]["meldingen"]
    assert stats["units_cut"] == 1 and stats["pairs_cut"] == 4
    assert stats["bounds"]["max_per_cell"] == 1 and stats["unit"] == "melder_pseudoniem"


def test_frontliners_are_their_own_table_with_their_own_unit_and_bounds(built):
    assert cell(built, B1, "2020-03", "frontliner_nuisance_per_1000") == pytest.approx(4.0)   # 6 signals, 4 kept
    stats = built.stats["tables"]["signalen"]
    assert stats["records"] == 6 and stats["units"] == 1 and stats["pairs_cut"] == 2
    assert stats["bounds"]["max_per_cell"] == 4
    # a frontliner's signals are not residents' reports
    assert cell(built, B1, "2020-03", "reports_nuisance_per_1000") == 0.0


def test_handled_within_the_norm_and_satisfaction_per_buurt(built):
    assert cell(built, B1, "2020-03", "in_norm_public_space_per_1000") == pytest.approx(1.0)   # closed in 3 days
    assert cell(built, B2, "2020-03", "in_norm_public_space_per_1000") == 0.0                  # 10 days: outside
    assert cell(built, B2, "2020-03", "reports_public_space_per_1000") == pytest.approx(0.5)   # 1 / 2,000
    assert cell(built, B1, "2020-03", "satisfied_per_1000") == pytest.approx(1.0)
    assert cell(built, B2, "2020-03", "unsatisfied_per_1000") == pytest.approx(0.5)


def test_coordinates_become_buurten_on_the_node_and_are_then_gone(tmp_path):
    node = tmp_path / "community"
    write_community(node)
    contract = load_contract("community")
    from clients.contracts.builder import read_tables
    _, tables = read_tables(contract, node)
    table: Table = tables["meldingen"]
    row = list(table.data["melding_id"]).index(next(r["melding_id"] for r in export_rows() if r["locatie"]))
    assert table.area[row] == B1
    assert set(table.data["locatie"].dropna()) <= {"located"}   # the coordinates are not kept


def _contract_with(tmp_path: Path, feature: dict | None = None, table_edit: dict | None = None) -> Path:
    spec = yaml.safe_load((configs_dir() / "contract" / "community.yaml").read_text())
    if feature:
        spec["blocks"]["community"]["reports_waste_per_1000"] = feature
    if table_edit:
        spec["tables"]["meldingen"].update(table_edit)
    path = tmp_path / "community.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


@pytest.mark.parametrize("column, kind", [("omschrijving", "text"), ("email", "contact"), ("locatie", "point")])
def test_no_op_may_read_free_text_contact_data_or_coordinates(tmp_path, column, kind):
    feature = {"op": "count", "table": "meldingen", "time": "gemeld_op", "where": {column: "x"}}
    with pytest.raises(ContractError, match=rf"'{column}'.*{kind}|{kind}.*'{column}'"):
        load_contract(_contract_with(tmp_path, feature=feature))
    # control: the same feature on a category column is accepted
    load_contract(_contract_with(tmp_path, feature={**feature, "where": {"hoofdcategorie": "afval"}}))


def test_free_text_cannot_be_the_unit_or_a_filter(tmp_path):
    with pytest.raises(ContractError, match="'email' is of type contact"):
        load_contract(_contract_with(tmp_path, table_edit={"where": {"column": "email", "equals": "a"}}))


def test_a_malformed_export_names_file_row_and_column_and_loses_nothing_stored(tmp_path, capsys):
    node = tmp_path / "community"
    assert main(["node", "init", "--partner", "community", "--node-dir", str(node)]) == 0
    write_community(node)
    assert main(["features", "--contract", "community", "--node-dir", str(node)]) == 0
    stored = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in (node / "features").rglob("*") if p.is_file()}
    assert stored
    rows = export_rows()
    rows[40]["locatie"] = "somewhere near the church"
    write_community(node, rows)
    capsys.readouterr()
    assert main(["features", "--contract", "community", "--node-dir", str(node)]) != 0
    err = capsys.readouterr().err
    assert "meldingen.csv" in err and "line 42" in err and "locatie" in err and "not a point" in err
    assert "Traceback" not in err
    after = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in (node / "features").rglob("*") if p.is_file()}
    assert after == stored


def _payload_bytes(content: RecordDict) -> bytes:
    out = []
    for name in content.keys():
        record = content[name]
        if isinstance(record, ArrayRecord):
            out += [array.data for array in record.values()]
        else:
            out.append(repr(dict(record)).encode())
    return b"".join(out)


def test_planted_free_text_contact_data_and_coordinates_never_leave_the_node(tmp_path):
    node = tmp_path / "community"
    assert main(["node", "init", "--partner", "community", "--node-dir", str(node)]) == 0
    write_community(node)
    assert main(["features", "--contract", "community", "--node-dir", str(node)]) == 0
    write_policy(node, "community")
    task = TaskSettings(run_name="egress", blocks=("community",), label_center=4.1, label_scale=0.25,
                        label_shift=1)
    config = {**dict(to_config(task)), "run-kind": "vertical", "target-epsilon": 3.0, "delta": 1e-5}
    grid = InProcessGrid(client_app, {1: {"partner": "community", "data-dir": str(node)}})
    msg = grid.create_message(RecordDict({"config": ConfigRecord(config)}), "query.release", 1, "1")
    [msg_id] = grid.push_messages([msg])
    reply: Message = grid._replies[msg_id]
    assert not reply.has_error(), reply.error.reason if reply.has_error() else ""
    fields = payload_fields(reply.content)
    assert "release.block:community" in fields and fields_outside("dp-aggregate", fields) == []
    sent = _payload_bytes(reply.content)
    log = (node / "state" / "egress.jsonl").read_bytes()
    planted = [PLANTED_TEXT, PLANTED_EMAIL, PLANTED_PHONE, "4711", POINT_B1, POINT_B1.split(",")[0], "r-heavy"]
    for text in planted:
        assert text.encode() not in sent and text.encode() not in log, text
    # control: the raw export does hold them, so the search can find them
    raw = (node / "raw" / "meldingen.csv").read_bytes()
    assert all(text.encode() in raw for text in planted)
    assert json.loads(log.splitlines()[-1])["status"] == "released"


def test_node_init_copies_the_community_contract_and_policy(tmp_path):
    node = tmp_path / "community"
    assert main(["node", "init", "--partner", "community", "--node-dir", str(node)]) == 0
    assert "melder_pseudoniem" in (node / "contract.yaml").read_text()
    assert yaml.safe_load((node / "site_policy.yaml").read_text())["partner"] == "community"
    shutil.rmtree(node)


def test_the_boundary_file_must_be_inside_the_node_directory(tmp_path):
    spec = yaml.safe_load((configs_dir() / "contract" / "community.yaml").read_text())
    spec["_columns"]["locatie"]["boundaries"]["path"] = "../elsewhere/buurten.geojson"
    for table in spec["tables"].values():
        table["columns"] = spec["_columns"]
    path = tmp_path / "community.yaml"
    path.write_text(yaml.safe_dump(spec))
    with pytest.raises(ContractError, match="must be a path inside the node directory"):
        load_contract(path)
