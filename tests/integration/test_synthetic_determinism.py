"""Same arguments, byte-identical files; another seed, other files; tables independent of each other."""
from __future__ import annotations

import hashlib
from pathlib import Path

from devtools.synthetic import generate

CITIES = ["heerlen", "genk", "sant_boi", "piraeus"]


def _digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_arguments_same_bytes_other_seed_other_bytes(tmp_path: Path) -> None:
    args = dict(cities=CITIES, records=80_000, start="2019-01", months=12)
    first = generate(tmp_path / "a", seed=7, **args)
    generate(tmp_path / "b", seed=7, **args)
    generate(tmp_path / "c", seed=8, **args)
    a, b, c = (_digests(tmp_path / d) for d in "abc")
    assert len(a) == len(first.tables) == 6 + 19  # areas.csv of each of the 6 nodes + every raw table
    assert any(name.endswith(".parquet") for name in a)
    assert a == b
    assert set(a) == set(c)
    differ = {name for name in a if a[name] != c[name]}
    # Heerlen's CBS-only files stay the same; everything drawn at random changes with the seed
    cbs_only = {"police/public/areas.csv", "municipality/public/areas.csv", "buurtteams/public/areas.csv",
                "municipality/raw/register_buurt.parquet"}
    assert differ == set(a) - cbs_only


def test_a_table_does_not_depend_on_the_other_cities(tmp_path: Path) -> None:
    """Generators are keyed by (seed, city, table): adding a city leaves the other city's fixed-size tables alone."""
    generate(tmp_path / "alone", cities=["genk"], seed=3, records=30_000, months=12)
    generate(tmp_path / "with", cities=["piraeus", "genk"], seed=3, records=90_000, months=12)
    for name in ("raw/pv_registraties.csv", "raw/ocmw_dossiers.csv", "raw/sectoren_jaarcijfers.csv", "public/areas.csv"):
        assert (tmp_path / "alone" / "genk" / name).read_bytes() == (tmp_path / "with" / "genk" / name).read_bytes(), name
