"""`pulse-twin partition`: one node directory per value of a column, each with its rows (written as the
source is), its slice of the area register and a copy of the contract; each builds on its own."""
from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from federation.cli import main
from clients.contracts import build_features, load_contract
from tests.support.contract_fixtures.small_city import AREAS, PREFIX, csv_text, write_register, write_small_city


def national(node: Path, rows=None, packing: str = "gzip") -> Path:
    """The small city's national table with every authority's rows valid, and a national register."""
    rows = rows or [list(r) for r in AREAS]
    rows[4][3] = "100"
    path = write_small_city(node, packing=packing, members={"stats.csv": csv_text(rows)}, where=None)
    if packing == "gzip":
        with gzip.open(node / "raw/stats.csv.gz", "wt", encoding="utf-8") as fh:
            fh.write(csv_text(rows))
    write_register(node, codes=[r[0] for r in rows])
    return path


def partition(contract: Path, node: Path, out: Path, by: str = "authority") -> int:
    return main(["partition", "--contract", str(contract), "--node-dir", str(node), "--by", by, "--out", str(out)])


@pytest.mark.parametrize("packing", ["gzip", "zip"])
def test_one_node_per_value_each_building_on_its_own(packing, tmp_path, capsys):
    contract = national(tmp_path / "all", packing=packing)
    assert partition(contract, tmp_path / "all", tmp_path / "nodes") == 0
    captured = capsys.readouterr()
    assert "[2/2]" in captured.err and "wrote 2 node directories" in captured.out   # progress, then the result
    for authority, codes in (("NORTH", ["0001", "0002", "0003"]), ("SOUTH", ["0101", "0102"])):
        node = tmp_path / "nodes" / authority
        register = (node / "public/areas.csv").read_text().splitlines()
        assert [line.split(",")[0] for line in register[1:]] == [PREFIX + c for c in codes]
        assert (node / "contract.yaml").read_text() == contract.read_text()
        built = build_features(load_contract(node / "contract.yaml"), node)
        assert set(built.blocks["context"]["area_code"]) <= {PREFIX + c for c in codes}
    if packing == "gzip":   # cells keep their text (thousands separators) and the file its compression
        assert "3,500" in gzip.open(tmp_path / "nodes/SOUTH/raw/stats.csv.gz", "rt").read()


def test_many_partitions_summarise_progress(tmp_path, capsys):
    rows = [[f"{i:04d}", f"A{i:02d}", "1,000", "100", "100", "400", "20,000,000", "5", "0.1"] for i in range(30)]
    contract = write_small_city(tmp_path / "all", where=None)
    with gzip.open(tmp_path / "all/raw/stats.csv.gz", "wt", encoding="utf-8") as fh:
        fh.write(csv_text(rows))
    lines = ["area_code,area_name,year,population"] + [f"{PREFIX}{r[0]},x,2021,1000" for r in rows]
    (tmp_path / "all/public/areas.csv").write_text("\n".join(lines) + "\n")
    assert partition(contract, tmp_path / "all", tmp_path / "nodes") == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) <= 12 and out[-1].startswith("wrote 30 node directories")
    assert len(list((tmp_path / "nodes").iterdir())) == 30


def test_partition_errors_are_one_message(tmp_path, capsys):
    contract = national(tmp_path / "all")
    assert partition(contract, tmp_path / "all", tmp_path / "nodes", by="region") == 2
    assert "has no column 'region' to split by" in capsys.readouterr().err
    assert partition(contract, tmp_path / "all", tmp_path / "nodes") == 0
    capsys.readouterr()
    assert partition(contract, tmp_path / "all", tmp_path / "nodes") == 2
    assert "already exists and is not empty" in capsys.readouterr().err
    assert partition(tmp_path / "none.yaml", tmp_path / "all", tmp_path / "x") == 2
    assert "contract file not found" in capsys.readouterr().err


def test_the_contract_filter_keeps_rows_out_of_every_node(tmp_path, capsys):
    national(tmp_path / "all")
    contract = write_small_city(tmp_path / "f", where={"column": "authority", "equals": "NORTH"})
    assert partition(contract, tmp_path / "all", tmp_path / "nodes") == 0
    assert [p.name for p in (tmp_path / "nodes").iterdir()] == ["NORTH"]
