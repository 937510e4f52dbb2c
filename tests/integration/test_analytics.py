"""`pulse-twin analytics`: per-wijk values are sums of the released per-area values, a second run re-uses
the stored release and charges nothing, and bad input gives one line and exit code 2."""
from __future__ import annotations

import contextlib
import csv
import io
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from tests.support.contract_fixtures import generated_window

from dp_accounting import PrivacyLedger, ledger_path
from federation.bundle import running_code_hash
from federation.cli import main
from federation.commands import analytics
from federation.errors import ConfigError
from clients.site_policy import append_approval

BURGLARY = "incidents/time:datum_registratie/incidentsoort=woninginbraak/count"   # a released series (police)
STATS = [BURGLARY, "burglary_per_1000", "benefit_active_per_1000"]
PARTNERS = ("police", "municipality")


def _history(node: Path) -> list[tuple[int, dict]]:
    with PrivacyLedger(ledger_path(node)) as ledger:
        return [(i, r.to_dict()) for i, r in ledger.history_with_ids()]


def _egress(node: Path) -> list[dict]:
    return [json.loads(line) for line in (node / "state" / "egress.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two partners' real node directories; a first run by area, then by wijk and by city (re-used)."""
    root = tmp_path_factory.mktemp("analytics")
    assert main(["generate", "--data-root", str(root), "--cities", "heerlen", "--seed", "7", "--records", "50000", "--months", "24",
                 "--quiet"]) == 0
    nodes = {p: root / p for p in PARTNERS}
    for partner, node in nodes.items():
        assert main(["node", "init", "--partner", partner, "--node-dir", str(node)]) == 0
        generated_window(node, months=24)   # the run's window: the 24 generated months
        append_approval(node, {"bundle_hash": running_code_hash(), "by": "test", "run": "any"})
    out: dict = {"nodes": nodes, "root": root}

    def run(*extra: str) -> tuple[int, str]:   # capsys is per test: capture stdout by hand
        buffer = io.StringIO()
        with contextlib.redirect_stdout(buffer):
            code = main(["analytics", *(a for n in nodes.values() for a in ("--node-dir", str(n))), *extra])
        return code, buffer.getvalue()

    out["history0"] = {p: _history(n) for p, n in nodes.items()}
    out["area"] = run("--stat", *STATS, "--by", "area", "--json")
    out["history1"] = {p: _history(n) for p, n in nodes.items()}
    out["wijk"] = run("--stat", *STATS, "--by", "wijk", "--json")
    out["history2"] = {p: _history(n) for p, n in nodes.items()}
    out["city"] = run("--stat", *STATS, "--by", "city", "--out", str(root / "city.csv"))
    out["history3"] = {p: _history(n) for p, n in nodes.items()}
    return out


def test_first_run_releases_once_per_table_through_the_guard(runs):
    code, text = runs["area"]
    assert code == 0
    data = json.loads(text)
    for partner, node in runs["nodes"].items():
        assert runs["history0"][partner] == []
        charged = [r for _, r in runs["history1"][partner]]
        assert charged and all(r["mechanism"] == "gaussian" and r["kind"] == "dp-aggregate" for r in charged)
        assert len({r["table"] for r in charged}) == len(charged)           # one release per private table
        first = _egress(node)[0]
        assert first["kind"] == "dp-aggregate" and first["status"] == "released" and first["run_kind"] == "analytics"
        assert first["epsilon_charged"] > 0 and {r["table"] for r in first["releases"]} == {r["table"] for r in charged}
    nodes = {n["node"]: n for n in data["nodes"]}
    # Issue 26 item 6: a person in both nodes is protected by both ledgers composed, more than either alone.
    fed = data["federation"]
    assert fed["epsilon"] > max(n["epsilon"] for n in nodes.values()) == fed["highest_node_epsilon"]
    assert [n["node"] for n in fed["nodes"]] == list(PARTNERS) and fed["releases"] == sum(
        n["releases"] for n in nodes.values())
    police = nodes["police"]
    assert police["charged_tables"] == ["incidents"] and police["delta"] == 1e-5 and police["accountant"] == "prv"
    with PrivacyLedger(ledger_path(runs["nodes"]["police"])) as ledger:
        assert police["epsilon"] == ledger.epsilon(1e-5)
    assert police["tables"][0]["unit"] == "one record (the export has no person link), table incidents"
    # Suppressed areas are in no release: absent from every row.
    assert police["suppressed_areas"] and not {r["area"] for r in data["rows"]} & set(police["suppressed_areas"])


def test_area_values_are_the_stored_release(runs):
    """Per-area counts are the node's released series (kept in state/releases/), summed over periods."""
    rows = [r for r in json.loads(runs["area"][1])["rows"] if r["stat"] == BURGLARY]
    (kept,) = (runs["nodes"]["police"] / "state" / "releases" / "incidents").glob("*.parquet")
    stored = pd.read_parquet(kept)
    per_area = stored.groupby("area_code")[BURGLARY].sum()
    assert len(rows) == 53
    for row in rows:
        assert row["value"] == pytest.approx(per_area[row["area"]], abs=1e-9)
        assert row["periods"] == 24 and row["areas"] == 1


def test_wijk_values_are_sums_of_the_released_area_values(runs):
    area = json.loads(runs["area"][1])["rows"]
    wijk = json.loads(runs["wijk"][1])["rows"]
    assert runs["wijk"][0] == 0
    for stat in STATS:
        by_area = {r["area"]: r for r in area if r["stat"] == stat}
        by_wijk = {r["wijk"]: r for r in wijk if r["stat"] == stat}
        groups: dict[str, list[dict]] = {}
        for code, row in by_area.items():
            groups.setdefault("WK" + code[2:8], []).append(row)   # BU0917wwbb -> WK0917ww
        assert set(groups) == set(by_wijk)
        for name, members in groups.items():
            got = by_wijk[name]
            assert got["areas"] == len(members)
            if stat == BURGLARY:   # a count: the sum of the areas' released counts
                assert got["value"] == pytest.approx(sum(m["value"] for m in members), rel=1e-12, abs=1e-9)
            else:                  # a rate per 1,000: the areas' rates weighted by their public population
                pop = np.array([m["population_weight"] for m in members])
                expected = float(np.dot([m["value"] for m in members], pop) / pop.sum())
                assert got["value"] == pytest.approx(expected, rel=1e-12)
                assert got["population_weight"] == pytest.approx(pop.sum())
    # and the one city is all areas together
    city = {r["stat"]: r for r in csv.DictReader((runs["root"] / "city.csv").open())}
    assert float(city[BURGLARY]["value"]) == pytest.approx(sum(r["value"] for r in area if r["stat"] == BURGLARY))
    assert city[BURGLARY]["city"] == "GM0917" and city[BURGLARY]["unit"].startswith("one record")


def test_second_run_reuses_the_release_and_charges_nothing(runs):
    for partner, node in runs["nodes"].items():
        assert runs["history1"][partner] == runs["history2"][partner] == runs["history3"][partner]
        later = _egress(node)[1:]
        assert len(later) == 2
        for record in later:
            assert record["status"] == "released" and record["kind"] != "dp-aggregate"
            assert record["epsilon_charged"] == 0.0 and record["releases"] == []
            assert record["params"]["reused_tables"]
    code, text = runs["city"]
    assert code == 0
    assert "charged nothing: re-sent values of its stored release of incidents" in text
    assert "epsilon of all its releases" in text and "delta 1e-05, PRV accountant" in text
    # aligned columns: the group column starts at the same place in the header and in every row
    lines = text.splitlines()
    header = next(line for line in lines if line.lstrip().startswith("stat "))
    rows = [line for line in lines if "GM0917" in line]
    assert len(rows) == len(STATS) and all(line.index("GM0917") == header.index("city") for line in rows)


@pytest.mark.parametrize("case,expected", [
    ("missing", "no such directory"),
    ("no-contract", "no contract.yaml"),
    ("unknown-stat", "--stat no_such_stat: unknown"),
    ("bad-by", "--by 'buurt': choose one of area, wijk, city"),
    ("public-stat", "not a DP release"),
    # --out is checked before anything is released: a typo must not cost the node budget
    ("out-folder", "is a folder; name the CSV file"),
    ("out-under-a-file", "is a file, not a folder"),
    ("out-no-folder", "does not exist"),
])
def test_bad_input_is_one_line_and_exit_2(runs, tmp_path, capsys, case, expected):
    police = runs["nodes"]["police"]
    argv = {
        "missing": ["--node-dir", str(tmp_path / "absent"), "--stat", "burglary_per_1000"],
        "no-contract": ["--node-dir", str(tmp_path), "--stat", "burglary_per_1000"],
        "unknown-stat": ["--node-dir", str(police), "--stat", "no_such_stat"],
        "bad-by": ["--node-dir", str(police), "--stat", "burglary_per_1000", "--by", "buurt"],
        "public-stat": ["--node-dir", str(runs["nodes"]["municipality"]), "--stat", "share_0_15"],
        "out-folder": ["--node-dir", str(police), "--stat", "burglary_per_1000", "--out", str(tmp_path)],
        "out-under-a-file": ["--node-dir", str(police), "--stat", "burglary_per_1000",
                             "--out", str(police / "contract.yaml" / "x.csv")],
        "out-no-folder": ["--node-dir", str(police), "--stat", "burglary_per_1000",
                          "--out", str(tmp_path / "absent" / "x.csv")],
    }[case]
    before = len(_egress(police))
    capsys.readouterr()
    assert main(["analytics", *argv]) == 2
    out = capsys.readouterr()
    lines = out.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pulse-twin analytics: ") and expected in lines[0], out.err
    assert "Traceback" not in out.err and out.out == ""
    assert len(_egress(police)) == before   # nothing left the node
    assert not (tmp_path / "absent").exists()


def test_wijk_of_a_code_that_does_not_say_it_is_refused_naming_why(tmp_path):
    (tmp_path / "public").mkdir()
    (tmp_path / "public" / "areas.csv").write_text("area_code,area_name,year,population\nBE-GNK:71016A001,x,2020,900\n")
    plan = SimpleNamespace(node_dir=tmp_path, name="genk", contract=SimpleNamespace(register_path="public/areas.csv"))
    with pytest.raises(ConfigError, match=r"--by wijk: area 'BE-GNK:71016A001' of node genk is not a CBS buurt code.*"
                                          r"no 'wijk' or 'district' column"):
        analytics._groups(["BE-GNK:71016A001"], "wijk", plan)
    assert analytics._groups(["BE-GNK:71016A001"], "city", plan) == {"BE-GNK:71016A001": "BE-GNK"}
    (tmp_path / "public" / "areas.csv").write_text(
        "area_code,area_name,year,population,wijk\nBE-GNK:71016A001,x,2020,900,Winterslag\n")
    assert analytics._groups(["BE-GNK:71016A001"], "wijk", plan) == {"BE-GNK:71016A001": "Winterslag"}
    assert analytics._groups(["BU09171000"], "wijk", plan) == {"BU09171000": "WK091710"}
    assert analytics._groups(["BU09171000"], "city", plan) == {"BU09171000": "GM0917"}


def test_a_new_release_is_calibrated_and_reported_at_the_nodes_own_delta(runs, tmp_path, capsys):
    """Issue 26 item 8: the node's delta (its site policy's), never the caller's."""
    import shutil

    from dp_accounting import get_accountant, noise_multiplier

    node = tmp_path / "police"
    shutil.copytree(runs["nodes"]["police"], node)
    shutil.rmtree(node / "state")                      # a fresh node: no ledger, no stored release
    policy = node / "site_policy.yaml"
    policy.write_text(policy.read_text().replace("delta: 1.0e-5", "delta: 1.0e-6"))
    append_approval(node, {"bundle_hash": running_code_hash(), "by": "test", "run": "any"})
    capsys.readouterr()
    # A caller's delta above the node's is refused before anything leaves.
    assert main(["analytics", "--node-dir", str(node), "--stat", BURGLARY, "--delta", "0.01", "--json"]) == 3
    assert "privacy.delta" in capsys.readouterr().err
    assert not (node / "state" / "ledger.sqlite").exists() or _history(node) == []
    capsys.readouterr()
    assert main(["analytics", "--node-dir", str(node), "--stat", BURGLARY, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    (charged,) = [r for _, r in _history(node)]
    assert charged["noise_multiplier"] == noise_multiplier(3.0, 1e-6, 1.0, 1)
    # Control: at the old default delta (1e-5) the noise would be smaller and epsilon at 1e-6 above the target.
    assert noise_multiplier(3.0, 1e-5, 1.0, 1) < charged["noise_multiplier"]
    (police,) = data["nodes"]
    assert police["delta"] == 1e-6 and 2.97 <= police["epsilon"] <= 3.0
    assert police["epsilon"] == get_accountant("prv").epsilon([charged_release(charged)], 1e-6)


def charged_release(data: dict):
    from dp_accounting import Release

    return Release(**data)
