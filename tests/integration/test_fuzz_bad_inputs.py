"""Generated bad inputs never produce a traceback: 2,000+ malformed raw tables, contracts and proposals,
each either refused with one PULSE-TWIN error (naming what is wrong) or accepted with sane features.

Runs with a fixed seed (derandomised) and a bounded number of examples, so `make test` stays fast.
"""
from __future__ import annotations

import json
from functools import lru_cache

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from federation.config import configs_dir
from clients.contracts import build_features, load_contract
from federation.errors import PulseTwinError
from federation.proposal import RunProposal
from tests.support.contract_fixtures import A1, A2, A3, HeerlenFixture, WINDOW

SETTINGS = dict(derandomize=True, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

CELL = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["", "NA", "-1", "1e400", "nan", "0x1F", "18.607", "1,5", "99999999999999999999",
                     "31-02-2019 10:00", "2019-13-01", "03-11-2099 10:00", "01-01-1900 00:00", "\x00", "\ufeff",
                     A1, A2, A3, "BU99999999", "woninginbraak", "drugs", ";", '"', "\n"]),
    st.integers(-10**20, 10**20).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
)

EDITS = st.lists(st.tuples(st.sampled_from(["cell", "drop_column", "dup_column", "rename", "drop_rows", "raw_bytes"]),
                           st.integers(0, 50), st.integers(0, 50), CELL, st.binary(max_size=40)),
                 min_size=1, max_size=4)


@lru_cache(maxsize=None)
def police_contract():
    return load_contract("police", WINDOW)


def _apply(frame, edits):
    frame = frame.copy()
    for kind, i, j, value, blob in edits:
        cols = list(frame.columns)
        if kind == "cell" and len(frame) and cols:
            frame.iloc[i % len(frame), j % len(cols)] = value
        elif kind == "drop_column" and len(cols) > 1:
            frame = frame.drop(columns=cols[j % len(cols)])
        elif kind == "dup_column" and cols:
            frame.insert(len(cols), f"{cols[j % len(cols)]}_copy", frame.iloc[:, j % len(cols)], allow_duplicates=True)
        elif kind == "rename" and cols:
            names = list(cols)
            names[j % len(cols)] = value or "x"
            frame.columns = names
        elif kind == "drop_rows":
            frame = frame.iloc[: i % (len(frame) + 1)]
    return frame


def _expect_refusal_or_sane(build, areas: set[str] | None = None) -> None:
    """Refused with one PULSE-TWIN error, or features that are finite and only for areas of the register."""
    try:
        out = build()
    except PulseTwinError as err:
        text = str(err)
        assert text and "Traceback" not in text
        return
    for frame in out.blocks.values():
        values = frame.drop(columns=["area_code", "period"]).to_numpy(dtype=float)
        assert np.isfinite(values).all()
        assert set(frame["area_code"]) <= (areas if areas is not None else {A1, A2, A3})


@settings(max_examples=1200, **SETTINGS)
@given(edits=EDITS, blobs=st.lists(st.binary(max_size=30), max_size=2))
def test_malformed_police_exports_are_refused_or_sane(tmp_path_factory, edits, blobs):
    data = HeerlenFixture()
    data.incidents = _apply(data.incidents, edits)
    try:   # the export itself is Windows-1252: what it cannot hold, the raw bytes below still bring in
        node = data.write_police(tmp_path_factory.mktemp("police"))
    except UnicodeEncodeError:
        assume(False)
    path = node / "raw" / "incidents.csv"
    for blob in blobs:   # raw bytes spliced into the file
        raw = path.read_bytes()
        cut = len(raw) // 2
        path.write_bytes(raw[:cut] + blob + raw[cut:])
    _expect_refusal_or_sane(lambda: build_features(police_contract(), node))


@settings(max_examples=500, **SETTINGS)
@given(edits=EDITS)
def test_malformed_area_registers_are_refused_or_sane(tmp_path_factory, edits):
    data = HeerlenFixture()
    data.areas = _apply(data.areas, edits)
    node = data.write_police(tmp_path_factory.mktemp("police"))
    registered = set(data.areas["area_code"].astype(str)) if "area_code" in data.areas else set()
    _expect_refusal_or_sane(lambda: build_features(police_contract(), node), registered)


CONTRACT_KEYS = ["privacy_unit", "min_population", "periods", "tables", "blocks", "label", "name", "area_register"]


@settings(max_examples=300, **SETTINGS)
@given(key=st.sampled_from(CONTRACT_KEYS),
       value=st.one_of(st.none(), st.integers(-5, 5), st.text(max_size=8), st.lists(st.integers(), max_size=3),
                       st.dictionaries(st.text(max_size=5), st.integers(), max_size=2)),
       drop=st.booleans())
def test_malformed_contracts_are_refused_or_sane(tmp_path_factory, key, value, drop):
    data = yaml.safe_load((configs_dir() / "contract" / "police.yaml").read_text())
    if drop:
        data.pop(key, None)
    else:
        data[key] = value
    folder = tmp_path_factory.mktemp("contract")
    path = folder / "police_variant.yaml"
    path.write_text(yaml.safe_dump(data))
    node = HeerlenFixture().write_police(folder / "police")
    _expect_refusal_or_sane(lambda: build_features(load_contract(path), node))


PROPOSAL = {"run_name": "heerlen-v1", "run_kind": "vertical", "bundle_hash": "ab" * 32, "federation": {},
            "privacy": {"target_epsilon": 3.0, "delta": 1e-5, "noise_multiplier": 1.1, "sample_rate": 0.02,
                        "steps_per_round": 50, "rounds": 5, "unit": "area-period row",
                        "mechanism": "subsampled_gaussian"}}
JSONISH = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(-10**15, 10**15), st.floats(), st.text(max_size=6)),
                       lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=4), inner,
                                                                                          max_size=3)), max_leaves=6)


@settings(max_examples=300, **SETTINGS)
@given(field=st.sampled_from(["run_name", "run_kind", "bundle_hash", "federation", "privacy", *[
    f"privacy.{k}" for k in PROPOSAL["privacy"]]]), value=JSONISH)
def test_malformed_proposals_are_refused_or_read(tmp_path_factory, field, value):
    data = json.loads(json.dumps(PROPOSAL))
    if field.startswith("privacy."):
        data["privacy"][field.split(".", 1)[1]] = value
    else:
        data[field] = value
    path = tmp_path_factory.mktemp("proposal") / "proposal.json"
    path.write_text(json.dumps(data, allow_nan=True))
    try:
        proposal = RunProposal.load(path)
    except PulseTwinError as err:
        assert str(err)
        return
    assert proposal.privacy.steps_per_round * proposal.privacy.rounds <= 10_000_000
    proposal.planned_releases()


# ---- issue 27: pseudonym spellings, paths out of the node directory, missing months -------------------

def _respell(name: str, how: int) -> str:
    """One of the ways an export spells the same pseudonym: case, spaces (also Unicode ones), full width."""
    variants = [name, name.lower(), name.upper().swapcase(), f" {name}", f"{name}\t", name.replace("-", " -"),
                f"{name}\u00a0", "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in name),
                f"{name[:1]} {name[1:]}", name.swapcase()]
    return variants[how % len(variants)]


@settings(max_examples=15, **SETTINGS)
@given(hows=st.lists(st.integers(0, 50), min_size=12, max_size=12))
def test_pseudonym_spellings_never_change_what_a_household_adds(tmp_path_factory, hows):
    """The same records under any spelling of their pseudonyms build the same features: the bounds count
    persons, not spellings."""
    import pandas as pd

    from tests.support.contract_fixtures import WINDOW

    def fixture(spell) -> HeerlenFixture:
        data = HeerlenFixture()
        extra = pd.DataFrame([{"casusnummer": f"KF{i}", "huishouden_pseudoniem": spell(f"HH-F{i % 3}", i),
                               "buurtcode": A1 if i % 2 else A2, "datum_aanmelding": f"2019-{11 + i % 2}-0{1 + i % 8}",
                               "datum_afsluiting": "", "leefgebieden": "wonen", "contacturen": str(i % 7)}
                              for i in range(12)])
        data.casussen = pd.concat([data.casussen, extra], ignore_index=True)
        return data

    contract = load_contract("buurtteams", WINDOW)
    plain = build_features(contract, fixture(lambda n, i: n).write_buurtteams(tmp_path_factory.mktemp("plain")))
    spelled = build_features(contract, fixture(lambda n, i: _respell(n, hows[i])).write_buurtteams(
        tmp_path_factory.mktemp("spelled")))
    assert plain.blocks["care"].equals(spelled.blocks["care"])
    assert plain.stats["observed_max_rows_per_person"] == spelled.stats["observed_max_rows_per_person"]


PATH_PARTS = st.sampled_from(["..", ".", "raw", "incidents.csv", "", "/", "C:", "\\", "~", "%2e%2e", "raw\\..",
                              "outside", "\u2025", "..\\..", "raw/../..", "/etc", "//server"])


@settings(max_examples=40, **SETTINGS)
@given(parts=st.lists(PATH_PARTS, min_size=1, max_size=5), link=st.booleans())
def test_a_contract_path_never_reads_outside_the_node_directory(tmp_path_factory, parts, link):
    """Whatever path a contract names (absolute, `..`, drive letters, backslashes, symlinks), the node either
    refuses it in one PULSE-TWIN error or reads a file inside its own directory."""
    from pathlib import Path

    from tests.support.contract_fixtures import WINDOW

    root = tmp_path_factory.mktemp("paths")
    HeerlenFixture().write_police(root / "outside")         # another node's raw files, beside this node
    node = HeerlenFixture().write_police(root / "police")
    if link:   # a symlink in the node directory that points out of it
        (node / "raw" / "outside").symlink_to(root / "outside" / "raw")
    path = "/".join(parts)
    data = yaml.safe_load((configs_dir() / "contract" / "police.yaml").read_text())
    data["tables"]["incidents"]["path"] = path
    contract_file = root / "police_paths.yaml"
    contract_file.write_text(yaml.safe_dump(data))
    try:
        contract = load_contract(contract_file, WINDOW)
        build_features(contract, node)
    except PulseTwinError as err:
        assert str(err) and "Traceback" not in str(err)
        return
    read = (node / contract.tables["incidents"].path).resolve()
    assert read.is_relative_to(Path(node).resolve()), (path, read)


@settings(max_examples=30, **SETTINGS)
@given(keep=st.lists(st.floats(0, 1), min_size=3, max_size=3), start=st.sampled_from(["2019-10", "2019-11", "2019-12"]),
       end=st.sampled_from(["2019-12", "2020-01", "2020-02"]), share=st.sampled_from([0.0, 0.25, 0.5, 0.9]),
       mark=st.booleans())
def test_a_month_is_complete_or_marked_never_silently_zero(tmp_path_factory, keep, start, end, share, mark):
    """Exports thinned month by month, any window: refused naming the missing months, or every month of the
    window either has rows or is listed as missing; never a month of rows with no records behind it."""
    import pandas as pd

    data = HeerlenFixture()
    rows = []
    for m, (month, n) in enumerate((("11-2019", 20), ("12-2019", 20), ("01-2020", 20))):
        rows += [{"registratienummer": f"PL-{month}-{i}", "datum_registratie": f"{i % 28 + 1:02d}-{month} 10:00",
                  "buurtcode": A1 if i % 2 else A2, "incidentsoort": "overlast", "prioriteit": "2"}
                 for i in range(int(round(n * keep[m])))]
    assume(rows)
    data.incidents = pd.DataFrame(rows)
    node = data.write_police(tmp_path_factory.mktemp("months"))
    overrides = [f"periods.start={start}", f"periods.end={end}", f"periods.min_share={share}",
                 f"periods.missing={'mark' if mark else 'refuse'}"]
    try:
        built = build_features(load_contract("police", overrides), node)
    except PulseTwinError as err:
        assert str(err) and "Traceback" not in str(err)
        if not mark and "rule: complete_periods" in str(err):
            assert "missing from the export" in str(err)
        return
    window = [str(p) for p in pd.period_range(start, end, freq="M")]
    have = set(built.blocks["safety"].period)
    missing = set(built.missing_periods.get("safety", []))
    assert have | missing == set(window) and not have & missing
    counted = {p for p in window if any(r["datum_registratie"][3:10] == f"{p[5:]}-{p[:4]}" for r in rows)}
    assert have <= counted, "a month without records was released as rows"
