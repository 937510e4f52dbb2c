"""`write_features` and `pulse-twin features`: files appear only after a complete build, and bad input
leaves what an earlier build wrote untouched."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from federation.cli import main
from clients.contracts import build_features, load_contract, write_features
from federation.dataset import read_node_features
from federation.errors import ConfigError
from tests.support.contract_fixtures import A3, HeerlenFixture, WINDOW, window


def snapshot(node: Path) -> dict[str, bytes]:
    root = node / "features"
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def current(node: Path) -> dict[str, bytes]:
    """The accepted features the node releases from (not the builds kept beside them)."""
    return {p.name: p.read_bytes() for p in sorted((node / "features").iterdir()) if p.is_file()}


def test_written_files_read_back_as_built(tmp_path):
    node = HeerlenFixture().write_municipality(tmp_path / "mun")
    features = build_features(load_contract("municipality", window("municipality")), node)
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
    code = main(["features", "--contract", "police", "--node-dir", str(node), *WINDOW, "min_population=1500"])
    out = capsys.readouterr().out
    assert code == 0
    assert "block safety: 3 area-period rows" in out
    assert "periods: 2019-11 .. 2020-01 (3)" in out
    assert "suppressed areas (population < 1500): 2 (BU09170001, BU09170003)" in out
    assert (node / "features" / "safety.parquet").is_file()


def test_cli_bad_input_exits_with_one_message_and_keeps_earlier_features(tmp_path, capsys):
    fx = HeerlenFixture()
    node = fx.write_police(tmp_path / "police")
    assert main(["features", "--contract", "police", "--node-dir", str(node), *WINDOW]) == 0
    before = snapshot(node)
    fx.incidents.loc[1, "prioriteit"] = "abc"
    fx.write_police(node)
    capsys.readouterr()
    code = main(["features", "--contract", "police", "--node-dir", str(node), *WINDOW])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("pulse-twin features: ") and "'abc' is not an integer" in err
    assert "Traceback" not in err and err.count("\n") == 1
    assert snapshot(node) == before


def test_cli_bad_override_is_a_user_error(tmp_path, capsys):
    node = HeerlenFixture().write_police(tmp_path / "police")
    assert main(["features", "--contract", "police", "--node-dir", str(node), *WINDOW, "min_pop=1"]) == 2
    assert "min_pop" in capsys.readouterr().err


def test_failed_write_leaves_earlier_files_and_no_temporaries(tmp_path, monkeypatch):
    node = HeerlenFixture().write_municipality(tmp_path / "mun")
    features = build_features(load_contract("municipality", window("municipality")), node)
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
    assert main(["features", "--contract", "police", "--node-dir", str(node), *WINDOW, "--out", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "features" / "safety.parquet").is_file()
    assert not (node / "features").exists()


def test_help_documents_every_option(capsys):
    with pytest.raises(SystemExit):
        main(["features", "--help"])
    out = capsys.readouterr().out
    for option in ("--contract", "--node-dir", "--out", "KEY=VALUE"):
        assert option in out
    assert "min_population=200" in out


def _income_in_hundreds(fx: HeerlenFixture) -> HeerlenFixture:
    """Income per resident exported in hundreds of euros where thousands are declared: still inside the
    contract's plausible range (1-500), ten times the last build's values."""
    fx.register["gem_inkomen_per_inwoner"] = fx.register["gem_inkomen_per_inwoner"] * 10
    return fx


def test_a_build_that_moved_far_is_held_and_the_accepted_features_stay(tmp_path, capsys):
    fx = HeerlenFixture()
    node = fx.write_municipality(tmp_path / "mun")
    assert main(["features", "--contract", "municipality", "--node-dir", str(node), *window("municipality")]) == 0
    before, accepted = current(node), json.loads((node / "features" / "manifest.json").read_text())["build"]["id"]
    _income_in_hundreds(fx).write_municipality(node)
    capsys.readouterr()
    code = main(["features", "--contract", "municipality", "--node-dir", str(node), *window("municipality")])
    err = capsys.readouterr().err
    assert code == 4 and "Traceback" not in err
    assert "context.income_per_resident_k: median 22.5 -> 225, spread 0.3727 -> 3.727" in err
    assert "re-run with --accept" in err
    assert current(node) == before
    builds = sorted(p.name for p in (node / "features" / "builds").iterdir())
    assert len(builds) == 2 and accepted in builds
    held = next(b for b in builds if b != accepted)
    assert f"It is kept in {node / 'features' / 'builds' / held} and NOT used" in err


def test_accept_makes_the_moved_build_current_and_keeps_the_previous(tmp_path, capsys):
    fx = HeerlenFixture()
    node = fx.write_municipality(tmp_path / "mun")
    assert main(["features", "--contract", "municipality", "--node-dir", str(node), *window("municipality")]) == 0
    first = json.loads((node / "features" / "manifest.json").read_text())["build"]["id"]
    _income_in_hundreds(fx).write_municipality(node)
    capsys.readouterr()
    assert main(["features", "--contract", "municipality", "--node-dir", str(node), *window("municipality"), "--accept"]) == 0
    out = capsys.readouterr().out
    assert "accepted with --accept although it moved: context.income_per_resident_k" in out
    build = json.loads((node / "features" / "manifest.json").read_text())["build"]
    assert build["previous"] == first and build["accepted_with_shifts"] is True
    context = pd.read_parquet(node / "features" / "context.parquet")
    assert context["income_per_resident_k"].median() == pytest.approx(225)
    assert (node / "features" / "builds" / first / "context.parquet").is_file()


def test_an_unchanged_rebuild_is_accepted_and_old_builds_are_pruned(tmp_path, monkeypatch):
    node = HeerlenFixture().write_police(tmp_path / "police")
    for _ in range(8):
        write_features(build_features(load_contract("police", WINDOW), node), node)
    builds = [p for p in (node / "features" / "builds").iterdir() if p.is_dir()]
    assert len(builds) == 5          # configs/build_checks.yaml keep_builds
    manifest = json.loads((node / "features" / "manifest.json").read_text())
    assert manifest["build"]["shifts"] == [] and manifest["build"]["id"] in {p.name for p in builds}
