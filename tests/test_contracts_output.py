"""`write_features` and `pulse-twin features`: files appear only after a complete build, and bad input
leaves what an earlier build wrote untouched."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from federation.cli import main
from federation.contracts import build_features, load_contract, write_features
from federation.dataset import read_node_features
from federation.errors import ConfigError
from tests.contract_fixtures import A3, HeerlenFixture


def snapshot(node: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((node / "features").iterdir())}


def test_written_files_read_back_as_built(tmp_path):
    node = HeerlenFixture().write_municipality(tmp_path / "mun")
    features = build_features(load_contract("municipality"), node)
    written = write_features(features, node)
    assert sorted(p.name for p in written) == ["context.parquet", "label.parquet", "manifest.json", "social.parquet"]
    blocks, label = read_node_features(node, ["context", "social"], with_label=True)
    pd.testing.assert_frame_equal(blocks["social"], features.blocks["social"])
    pd.testing.assert_frame_equal(label, features.label)
    manifest = json.loads((node / "features" / "manifest.json").read_text())
    assert manifest["privacy_unit"] == {"row": "area-period", "max_rows_per_person": 37}
    assert manifest["suppressed_areas"] == [A3]
    assert not [p for p in (node / "features").iterdir() if p.name.startswith(".")]


def test_cli_builds_writes_and_summarises(tmp_path, capsys):
    node = HeerlenFixture().write_police(tmp_path / "police")
    code = main(["features", "--contract", "police", "--node-dir", str(node), "--override", "min_population=1500"])
    out = capsys.readouterr().out
    assert code == 0
    assert "block safety: 3 area-period rows" in out
    assert "periods: 2019-11 .. 2020-01 (3)" in out
    assert "suppressed areas (population < 1500): 2 (BU09170001, BU09170003)" in out
    assert (node / "features" / "safety.parquet").is_file()


def test_cli_bad_input_exits_with_one_message_and_keeps_earlier_features(tmp_path, capsys):
    fx = HeerlenFixture()
    node = fx.write_police(tmp_path / "police")
    assert main(["features", "--contract", "police", "--node-dir", str(node)]) == 0
    before = snapshot(node)
    fx.incidents.loc[1, "prioriteit"] = "abc"
    fx.write_police(node)
    capsys.readouterr()
    code = main(["features", "--contract", "police", "--node-dir", str(node)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("pulse-twin features: ") and "'abc' is not an integer" in err
    assert "Traceback" not in err and err.count("\n") == 1
    assert snapshot(node) == before


def test_cli_bad_override_is_a_user_error(tmp_path, capsys):
    node = HeerlenFixture().write_police(tmp_path / "police")
    assert main(["features", "--contract", "police", "--node-dir", str(node), "--override", "min_pop=1"]) == 2
    assert "min_pop" in capsys.readouterr().err


def test_failed_write_leaves_earlier_files_and_no_temporaries(tmp_path, monkeypatch):
    node = HeerlenFixture().write_municipality(tmp_path / "mun")
    features = build_features(load_contract("municipality"), node)
    write_features(features, node)
    before = snapshot(node)
    calls = {"n": 0}
    real = pd.DataFrame.to_parquet

    def failing(self, path, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError("disk full")
        return real(self, path, *args, **kwargs)

    monkeypatch.setattr(pd.DataFrame, "to_parquet", failing)
    features.blocks["context"] = features.blocks["context"].iloc[:1]
    with pytest.raises(ConfigError) as err:
        write_features(features, node)
    assert "cannot write features (disk full); nothing was replaced" in str(err.value)
    assert snapshot(node) == before


def test_cli_out_writes_the_features_elsewhere(tmp_path, capsys):
    node = HeerlenFixture().write_police(tmp_path / "police")
    assert main(["features", "--contract", "police", "--node-dir", str(node), "--out", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "features" / "safety.parquet").is_file()
    assert not (node / "features").exists()


def test_help_documents_every_option(capsys):
    with pytest.raises(SystemExit):
        main(["features", "--help"])
    out = capsys.readouterr().out
    for option in ("--contract", "--node-dir", "--out", "--override"):
        assert option in out
    assert "min_population=200" in out
