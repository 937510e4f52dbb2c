"""The model card says how quality was measured: cross-validation when every area was held out once."""
from __future__ import annotations

import pandas as pd

from server.report.card import _measured_on


def test_cross_validated_runs_say_so_and_a_single_fold_says_held_out():
    areas = [f"BU{i:04d}" for i in range(6)]
    folds = pd.DataFrame({"area_code": areas, "fold": [0, 1, 2, 0, 1, 2]})
    assert _measured_on(folds).startswith("Quality was measured by 3-fold cross-validation over 6 areas")
    assert _measured_on(folds.assign(fold=0)) == "Quality was measured on 6 held-out areas only."
    assert _measured_on(folds.drop(columns="fold").head(2)) == "Quality was measured on 2 held-out areas only."
