"""A longer synthetic Heerlen window for the skill benchmark (`--months`): the contracts refuse it unless their
bound on a person's rows is raised with it, and a release rebuilds the features with the bound they were built
with (`benchmarks.common.built_window`)."""
from __future__ import annotations

import json

import pytest

from benchmarks import common
from benchmarks.skill import main as skill_main
from federation.errors import PulseTwinError

MONTHS = 40   # past the contracts' bound (36 / 37 area-months per person)


def test_a_window_past_the_contracts_bound_is_refused_unless_the_bound_is_raised(tmp_path):
    with pytest.raises(PulseTwinError, match="max_rows_per_person"):
        common.cities_data(tmp_path / "plain", records=80_000, months=MONTHS, cities=("heerlen",))
    root = common.cities_data(tmp_path / "raised", records=80_000, months=MONTHS, cities=("heerlen",),
                              rows_per_person=MONTHS + 1)
    for node in ("police", "municipality", "buurtteams"):
        manifest = json.loads((root / node / "features" / "manifest.json").read_text())
        assert manifest["privacy_unit"]["max_rows_per_person"] == MONTHS + 1
        assert manifest["stats"]["periods"]["last"] == "2022-04"
        assert common.built_window(root / node) == ["periods.start=2019-01", "periods.end=2022-04",
                                                    f"privacy_unit.max_rows_per_person={MONTHS + 1}"]


def test_the_benchmark_refuses_a_window_too_short_with_one_message(capsys):
    with pytest.raises(SystemExit) as stop:
        skill_main(["--dataset", "heerlen", "--months", "12"])
    assert stop.value.code == 2 and "--months 12: at least 24 months" in capsys.readouterr().err


def test_too_few_records_for_the_window_is_one_message_not_a_traceback(capsys, monkeypatch, tmp_path):
    monkeypatch.setattr(common, "work_dir", lambda: tmp_path)
    monkeypatch.setattr(common, "single_threaded", lambda: None)   # keep this test process's threads
    code = skill_main(["--dataset", "heerlen", "--months", str(MONTHS), "--records", "20000"])
    err = capsys.readouterr().err
    assert code != 0 and "benchmarks.skill: --records 20,000 is too small for heerlen and 40 months" in err
    assert "Traceback" not in err
