"""Membership inference on a released model: can its losses tell the areas it trained on?

The attack is the standard loss threshold attack at area level: an area whose rows the model predicts
better is guessed to be a training area. Its success is the ROC AUC of (minus) each area's mean squared
error, training areas against the held-out fold's areas, which the model never saw: 0.5 means the model
gives nothing away about which areas trained it; 1.0 means it tells them apart perfectly.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class MembershipAudit:
    auc: float
    members: int
    non_members: int

    def text(self) -> str:
        return (f"membership attack AUC {self.auc:.3f} ({self.members} training areas against "
                f"{self.non_members} held-out areas; 0.5 = no better than a coin)")


def area_losses(rows: pd.DataFrame) -> pd.Series:
    """Mean squared error per area (rows with `area_code`, `y`, `pred`)."""
    return ((rows["pred"] - rows["y"]) ** 2).groupby(rows["area_code"].astype(str)).mean()


def membership_audit(members: pd.DataFrame, held_out: pd.DataFrame) -> MembershipAudit:
    """AUC of the area-level loss attack (needs at least one area on each side)."""
    from sklearn.metrics import roc_auc_score

    inside, outside = area_losses(members), area_losses(held_out)
    truth = np.r_[np.ones(len(inside)), np.zeros(len(outside))]
    score = -np.r_[inside.to_numpy(), outside.to_numpy()]
    return MembershipAudit(float(roc_auc_score(truth, score)), len(inside), len(outside))
