"""The demo's last words: the skill table (every model and naive forecast, skill with its interval, the
configured horizon first) and the warning list, withheld when the gate refuses the model."""
import json

import pandas as pd

from devtools.demo import skill_table, warning_table
from tests.support.report_fixtures import write_forecast

LEVEL = {f"BU0917{i:04d}": 4.0 + i / 100 for i in range(12)}


def artefacts(tmp_path, skill):
    folder = write_forecast(tmp_path, LEVEL, "2021-12", skill)
    doc = json.loads((folder / "skill.json").read_text())
    doc["gate"]["verdict_nl"], doc["gate"]["verdict_en"] = "NIET VRIJGEGEVEN.", "NOT RELEASABLE."
    return doc, pd.read_csv(folder / "warnings.csv", dtype={"area_code": str})


def test_the_table_shows_skill_with_its_interval_and_the_exact_reference(tmp_path):
    doc, _ = artefacts(tmp_path, (0.2, 0.1, 0.3))
    reference = [{"model": "pooled", "horizon": 3, "data": "exact", "r2": 0.95, "mae": 0.04, "n": 36,
                  "skill": 0.4, "skill_lo": 0.3, "skill_hi": 0.5}]
    table = skill_table(doc, reference)
    lines = table.splitlines()
    fed = next(line for line in lines if "federated_dp" in line and " dp " in line)
    assert "+0.200 (+0.100 to +0.300)" in fed
    assert "trailing_mean (best naive)" in table and "persistence" in table
    assert any("pooled" in line and "exact" in line and "+0.400 (+0.300 to +0.500)" in line for line in lines)
    assert "gate at horizon 3: RELEASABLE" in table


def test_the_warning_list_only_where_the_model_has_skill(tmp_path):
    names = {c: f"buurt {c[-2:]}" for c in LEVEL}
    doc, w = artefacts(tmp_path, (0.2, 0.1, 0.3))
    shown = warning_table(w, doc, names)
    falls = w[w["beyond_noise"] & (w["change"] < 0)]
    assert "expected to worsen most" in shown and len(falls) >= 2
    assert all(code in shown for code in falls["area_code"])
    assert not any(code in shown for code in w[~w["beyond_noise"]]["area_code"])
    doc, w = artefacts(tmp_path / "refused", (0.05, -0.02, 0.11))
    withheld = warning_table(w, doc, names)
    assert "withheld" in withheld and "last change" in withheld
    assert "NOT RELEASABLE" in skill_table(doc) and "NIET VRIJGEGEVEN." in skill_table(doc)


def test_the_community_block_with_without_and_alone_on_the_same_rows():
    """The demo's lines on the community block: the three rows of one horizon's table, and a row whose
    held-out forecasts equal the federation's says the model left the block out."""
    from devtools.demo import block_lines

    def row(model, skill, h=3):
        return {"model": model, "horizon": h, "data": "dp", "r2": 0.8, "mae": 0.05, "n": 12,
                "skill": skill, "skill_lo": skill - 0.05, "skill_hi": skill + 0.05}

    skill = {"configured_horizon": 3, "best_naive": {"3": "trailing_mean"}, "gate": {},
             "rows": [row("federated_dp", 0.10), row("without:community", 0.04), row("partner:community", 0.02),
                      row("label_history", 0.01), row("without:community", 0.9, h=1)]}
    lines = block_lines(skill, "community").splitlines()
    assert "+0.100" in lines[1] and "with the community" in lines[1]
    assert "+0.040 (-0.010 to +0.090)" in lines[2] and "without the community" in lines[2]
    assert "+0.020" in lines[3] and "alone" in lines[3]
    assert "+0.900" not in "\n".join(lines)                       # another horizon's row is not this one's
    assert "without:community" in skill_table(skill)
    keys = {"area_code": ["A", "B"], "origin": ["2021-01"] * 2, "target": ["2021-04"] * 2, "horizon": [3, 3],
            "held_out": [True, True]}
    same = pd.concat([pd.DataFrame({**keys, "model": m, "prediction": [4.0, 4.1]})
                      for m in ("federated_dp", "without:community")])
    assert "left the community block out" in block_lines(skill, "community", same)
    other = same.assign(prediction=[4.0, 4.1, 4.0, 4.2])
    assert "left the community block out" not in block_lines(skill, "community", other)
    skill["rows"] = skill["rows"][:1]
    assert "not scored" in block_lines(skill, "community")
