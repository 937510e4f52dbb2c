"""The REAL Leicestershire crime records as three partner nodes (benchmarks/leicestershire.py): every
force-area record with an LSOA lands in exactly one partner, the register has a population for every
area, and the partners' contracts load and build on what `prepare` wrote.

Fast on purpose (about 15 s on 2 shared cores; `prepare` itself must stay under 60 s, which the first
test checks): `prepare` runs once per module on a temporary directory.
"""
from __future__ import annotations

import csv
import gzip
import hashlib
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmarks.leicestershire import LABEL_PARTNER, MISSING_MONTHS_FILE, PARTNERS, SOURCE_COLUMNS, build, \
    contract_window, load_export, main, prepare
from federation.config import configs_dir
from clients.contracts import build_features, load_contract
from federation.blocks import block_schema

PREPARE_BUDGET_S = 60.0


def source_lsoa_counts() -> tuple[int, dict[str, int]]:
    """Rows of the published file, and rows per LSOA code, read independently of the module under test."""
    counts: dict[str, int] = {}
    total = 0
    with gzip.open(load_export().crimes_path, "rt", encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh)
        column = next(reader).index("LSOA code")
        for row in reader:
            total += 1
            counts[row[column]] = counts.get(row[column], 0) + 1
    return total, counts


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> tuple[dict[str, Path], float]:
    assert load_export().crimes_path.is_file(), f"the real Leicestershire data is expected at {load_export().crimes_path}"
    root = tmp_path_factory.mktemp("leicestershire")
    started = time.perf_counter()
    nodes = prepare(root)
    return nodes, time.perf_counter() - started


def read_crimes(node: Path) -> pd.DataFrame:
    return pd.read_csv(node / "raw" / "crimes.csv", dtype=str, keep_default_na=False)


def test_prepare_writes_every_partner_within_budget(prepared):
    nodes, seconds = prepared
    assert set(nodes) == set(PARTNERS)
    for node in nodes.values():
        assert (node / "public" / "areas.csv").is_file() and (node / "raw" / "crimes.csv").is_file()
    assert seconds < PREPARE_BUDGET_S, f"prepare took {seconds:.1f} s"


def test_partner_rows_add_up_to_force_area_rows_with_an_lsoa(prepared):
    nodes, _ = prepared
    register = pd.read_csv(nodes[LABEL_PARTNER] / "public" / "areas.csv", dtype={"area_code": str})
    force_area = set(register["area_code"])
    total, per_lsoa = source_lsoa_counts()
    expected = sum(n for code, n in per_lsoa.items() if code in force_area)
    frames = {p: read_crimes(node) for p, node in nodes.items()}
    assert sum(len(f) for f in frames.values()) == expected
    # the figures of ../shared/data/SOURCES.md
    assert (total, len(force_area), expected) == (301_838, 611, 293_792)
    assert per_lsoa.get("", 0) == 7_463
    seen = []
    for partner, frame in frames.items():
        assert set(frame["crime_type"]) == set(PARTNERS[partner])       # each type in exactly one partner
        assert frame["lsoa_code"].isin(force_area).all()
        seen.extend(frame["record_no"])
    assert len(seen) == len(set(seen)) == expected                       # no record twice


def test_every_register_area_has_residents_in_every_year(prepared):
    nodes, _ = prepared
    first = (nodes[LABEL_PARTNER] / "public" / "areas.csv").read_bytes()
    register = pd.read_csv(nodes[LABEL_PARTNER] / "public" / "areas.csv", dtype={"area_code": str})
    assert list(register.columns) == ["area_code", "area_name", "year", "population"]
    assert (register["population"] > 0).all()
    years = register.groupby("area_code")["year"].apply(lambda y: tuple(sorted(y)))
    assert len(years) == 611 and all(y == (2019, 2020, 2021, 2022) for y in years)
    assert register.groupby("area_code")["population"].nunique().eq(1).all()
    assert int(register.drop_duplicates("area_code")["population"].sum()) == 1_054_029
    for node in nodes.values():  # the same public register on every node
        assert (node / "public" / "areas.csv").read_bytes() == first


@pytest.mark.parametrize("partner", sorted(PARTNERS))
def test_contract_loads_and_follows_its_block_schema(partner):
    path = configs_dir() / "contract" / f"{partner}.yaml"
    contract = load_contract(path)
    assert list(contract.blocks) == [partner]
    assert tuple(f.name for f in contract.blocks[partner]) == block_schema(partner).features
    table = contract.tables["crimes"]
    assert table.privacy.unit == "record" and (table.privacy.max_cells, table.privacy.max_per_cell) == (1, 1)
    assert set(table.columns["crime_type"].values) == set(PARTNERS[partner])
    assert (contract.label is not None) == (partner == LABEL_PARTNER)


def test_features_count_every_record_and_the_label_is_the_violence_total(prepared):
    nodes, _ = prepared
    register = pd.read_csv(nodes[LABEL_PARTNER] / "public" / "areas.csv", dtype={"area_code": str})
    population = register.drop_duplicates("area_code").set_index("area_code")["population"]
    for partner, node in nodes.items():
        contract = load_contract(configs_dir() / "contract" / f"{partner}.yaml", contract_window(node))
        built = build_features(contract, node)
        block = built.blocks[partner]
        assert len(block) == 611 * 35 and not built.suppressed_areas
        rates = block.drop(columns=["area_code", "period"]).to_numpy()
        counts = rates * block["area_code"].map(population).to_numpy()[:, None] / 1000.0
        assert np.isclose(counts.sum(), len(read_crimes(node)))
        if partner == LABEL_PARTNER:
            assert (built.label[["area_code", "period"]].to_numpy() == block[["area_code", "period"]].to_numpy()).all()
            assert np.allclose(built.label["label"].to_numpy(), rates.sum(axis=1))


def test_prepare_is_deterministic(prepared, tmp_path):
    nodes, _ = prepared
    again = prepare(tmp_path)
    for partner, node in nodes.items():
        for name in ("public/areas.csv", "raw/crimes.csv"):
            digest = [hashlib.sha256((n / name).read_bytes()).hexdigest() for n in (node, again[partner])]
            assert digest[0] == digest[1], f"{partner}/{name} differs between two runs"


OTHER_FORCE = "Avon and Somerset Constabulary"


def other_force_export(folder: Path, months=("2021-01", "2021-02", "2021-03", "2021-04"),
                       drop: tuple[str, ...] = ()) -> list[str]:
    """A small export of another force in data.police.uk's format (every crime type in every month, minus the
    types of the partners in `drop` in the month 2021-03), and its own area list; returns the overrides."""
    areas = pd.DataFrame({"area_code": ["E01014485", "E01014486", "E01014487"],
                          "area_name": ["Bristol 001A", "Bristol 001B", "Bristol 002A"],
                          "population": [1500, 1800, 1650]})
    areas.to_csv(folder / "avon_areas.csv", index=False)
    rows = []
    for month in months:
        for partner, types in PARTNERS.items():
            if partner in drop and month == "2021-03":
                continue
            for i, crime in enumerate(types):
                for area, name in zip(areas["area_code"], areas["area_name"]):
                    rows.append({"Crime ID": f"{month}{area}{i}", "Month": month, "Reported by": OTHER_FORCE,
                                 "Falls within": OTHER_FORCE, "Longitude": "-2.59", "Latitude": "51.45",
                                 "Location": "On or near High Street", "LSOA code": area, "LSOA name": name,
                                 "Crime type": crime, "Last outcome category": "Under investigation", "Context": ""})
    frame = pd.DataFrame(rows, columns=list(SOURCE_COLUMNS))
    with gzip.open(folder / "avon_street.csv.gz", "wt", encoding="utf-8", newline="") as fh:
        frame.to_csv(fh, index=False)
    return [f"federation.export.source_dir={folder}", "federation.export.crimes_file=avon_street.csv.gz",
            f"federation.export.force={OTHER_FORCE}", f"federation.export.areas_file={folder / 'avon_areas.csv'}"]


def test_another_forces_export_runs_by_configuration(tmp_path):
    overrides = other_force_export(tmp_path)
    nodes = prepare(tmp_path / "nodes", load_export(overrides=overrides))
    register = pd.read_csv(nodes[LABEL_PARTNER] / "public" / "areas.csv", dtype={"area_code": str})
    assert sorted(set(register["area_code"])) == ["E01014485", "E01014486", "E01014487"]
    # the contract is built on the export's window, as the benchmark passes it (the contract's own is Leicestershire's)
    window = contract_window(nodes[LABEL_PARTNER])
    assert window == ["periods.start=2021-01", "periods.end=2021-04"]
    built = build_features(load_contract(configs_dir() / "contract" / f"{LABEL_PARTNER}.yaml", window),
                           nodes[LABEL_PARTNER])
    assert sorted(set(built.label["period"])) == ["2021-01", "2021-02", "2021-03", "2021-04"]
    assert np.allclose(built.label.set_index("area_code").loc["E01014485", "label"], 4 * 1000 / 1500)
    # the configured force is checked on every row: Leicestershire's name refuses Avon's export
    with pytest.raises(ValueError, match="'Reported by' is 'Avon and Somerset Constabulary'.*federation.export.force"):
        build(tmp_path / "x", load_export(overrides=overrides[:2] + overrides[3:]))


def test_a_month_missing_from_the_export_is_refused_or_marked_never_zero(tmp_path, capsys):
    overrides = other_force_export(tmp_path, months=("2021-01", "2021-02", "2021-04"))
    assert main(["--out", str(tmp_path / "nodes"), *overrides]) == 1
    err = capsys.readouterr().err
    assert "2021-03" in err and "every partner" in err and "zero crime" in err and "Traceback" not in err
    assert not (tmp_path / "nodes").exists()
    # marked instead: every node names the month it must leave out
    assert main(["--out", str(tmp_path / "nodes"), *overrides, "federation.export.missing_months=mark"]) == 0
    assert "MARKED MISSING (every partner" in capsys.readouterr().out
    for partner in PARTNERS:
        marked = pd.read_csv(tmp_path / "nodes" / partner / "public" / MISSING_MONTHS_FILE, dtype=str)
        assert list(marked["period"]) == ["2021-03"]
        # and its contract is built on the export's window with that month marked, never read as zero
        assert contract_window(tmp_path / "nodes" / partner) == [
            "periods.start=2021-01", "periods.end=2021-04", "periods.missing=mark"]
    # one partner's crime types missing in a month: refused naming that partner alone
    overrides = other_force_export(tmp_path, drop=("uk_asb",))
    with pytest.raises(ValueError, match=r"uk_asb: 2021-03\)"):
        build(tmp_path / "asb", load_export(overrides=overrides))
    # a configured window the export does not cover: its missing edge months are refused too
    with pytest.raises(ValueError, match="2021-05, 2021-06"):
        build(tmp_path / "edge", load_export(overrides=other_force_export(tmp_path) + [
            "federation.export.months=[2021-01,2021-06]"]))
