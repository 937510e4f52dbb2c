"""`pulse-twin generate --community`: Heerlen's community node written beside the other Heerlen nodes, on the
same city (same seed, window and areas), and refused in one line without Heerlen."""
import pandas as pd

from federation.cli import main


def test_generate_writes_the_community_node_on_the_same_city(tmp_path, capsys):
    root = tmp_path / "nodes"
    assert main(["generate", "--data-root", str(root), "--cities", "heerlen", "--records", "40000", "--months", "12",
                 "--community", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "community node:" in out and "under-reporting planted in" in out
    reports = pd.read_csv(root / "community" / "raw" / "meldingen.csv", dtype=str)
    months = sorted(set(reports["gemeld_op"].str[:7]))
    assert months[0] == "2019-01" and months[-1] == "2019-12"          # the window of --months, not the default
    own = pd.read_csv(root / "community" / "public" / "areas.csv", dtype=str)
    other = pd.read_csv(root / "police" / "public" / "areas.csv", dtype=str)
    pd.testing.assert_frame_equal(own, other)                            # the same city


def test_community_without_heerlen_is_refused_in_one_line(tmp_path, capsys):
    assert main(["generate", "--data-root", str(tmp_path), "--cities", "genk", "--community"]) == 2
    err = capsys.readouterr().err
    assert "--community" in err and "heerlen" in err and "Traceback" not in err
    assert not any(tmp_path.iterdir())
