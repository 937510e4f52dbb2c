"""The PSI throughput benchmark runs end to end on a small size and reports what it measured."""
from __future__ import annotations

import pytest

from benchmarks.psi_throughput import main, measure


def test_measure_times_both_sides_and_sizes_every_message() -> None:
    row = measure(300, 1e-9)
    assert row["total_s"] == pytest.approx(row["coordinator_s"] + row["partner_s"])
    assert row["structure"] == "gcs"
    # 300 encrypted keys each way; the GCS setup is much smaller than either.
    assert row["request"] > 300 * 32 and row["response"] > 300 * 32
    assert 0 < row["setup"] < row["request"]


def test_cli_prints_one_report_per_size(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--sizes", "40", "60"]) == 0
    out = capsys.readouterr().out
    assert "n=       40" in out and "n=       60" in out and out.count("bytes: request") == 2


def test_cli_reports_a_bad_fpr_without_a_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--sizes", "40", "--fpr", "2"]) == 2
    assert "fpr" in capsys.readouterr().err
