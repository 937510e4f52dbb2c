"""PNG figures beside the HTML (matplotlib, no display): the map, the yardstick, the fairness audit,
and the held-out predictions with their intervals."""
from __future__ import annotations

from pathlib import Path
from typing import Mapping

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.colors import Normalize, to_hex  # noqa: E402
from matplotlib.patches import Polygon  # noqa: E402

from server.report.areas import CREDIT, Area  # noqa: E402

PRED_CMAP, CHANGE_CMAP, SUPPRESSED = "RdYlGn", "PuOr", "#d9d9d9"


def colours(values: Mapping[str, float], cmap: str, centre: float | None = None,
            lo_hi: tuple[float, float] | None = None) -> tuple[dict[str, str], tuple[float, float]]:
    """A hex colour per area (NaN: none) and the value range they span (`lo_hi`: another map's range, so two
    maps of the same quantity share their colours)."""
    finite = [v for v in values.values() if np.isfinite(v)]
    if not finite:
        return {}, (0.0, 0.0)
    lo, hi = (min(finite), max(finite)) if lo_hi is None else lo_hi
    if centre is not None:
        half = max(abs(lo - centre), abs(hi - centre)) or 1e-9
        lo, hi = centre - half, centre + half
    norm, colormap = Normalize(lo, hi if hi > lo else lo + 1e-9), plt.get_cmap(cmap)
    return {k: to_hex(colormap(norm(v))) for k, v in values.items() if np.isfinite(v)}, (lo, hi)


def map_png(areas: list[Area], fills: Mapping[str, str], path: Path, title: str) -> None:
    fig, ax = plt.subplots(figsize=(7, 6))
    for area in areas:
        for ring in area.rings:
            ax.add_patch(Polygon(ring, closed=True, facecolor=fills.get(area.code, SUPPRESSED),
                                 edgecolor="white", linewidth=0.6, hatch=None if area.code in fills else "///"))
    ax.autoscale()
    ax.set_aspect(1 / np.cos(np.radians(50.9)))
    ax.set_axis_off()
    ax.set_title(title, fontsize=10)
    fig.text(0.01, 0.01, CREDIT + "; hatched grey: suppressed, no prediction", fontsize=6)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)


def yardstick_png(rows: list, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(rows) + 1))
    names = [f"{r.model} [{r.scored_on}]" for r in rows]
    ax.barh(names, [r.r2 for r in rows], color=["#2b8cbe" if r.model.startswith("federated") else "#bbbbbb" for r in rows])
    ax.axvline(0, color="black", linewidth=0.8)
    ax.invert_yaxis()
    ax.set_xlabel("R² on the run's held-out areas (0 = no better than the mean)")
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)


def fairness_png(tables: Mapping[str, pd.DataFrame], path: Path) -> None:
    fig, axes = plt.subplots(1, max(len(tables), 1), figsize=(4 * max(len(tables), 1), 3), squeeze=False)
    for ax, (label, table) in zip(axes[0], tables.items()):
        ax.bar([str(i) for i in table.index], table["mae"], color="#756bb1")
        ax.set_title(label, fontsize=8)
        ax.set_ylabel("mean absolute error")
        ax.tick_params(axis="x", labelsize=6, rotation=30)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)


def intervals_png(holdout: pd.DataFrame, half_width: float, level: float, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.scatter(holdout["pred"], holdout["y"], s=6, alpha=0.6)
    lo, hi = float(min(holdout["pred"].min(), holdout["y"].min())), float(max(holdout["pred"].max(), holdout["y"].max()))
    grid = np.linspace(lo, hi, 10)
    ax.plot(grid, grid, color="black", linewidth=0.8)
    ax.fill_between(grid, grid - half_width, grid + half_width, alpha=0.15, label=f"{level:.0%} interval")
    ax.set_xlabel("prediction")
    ax.set_ylabel("label (held-out areas)")
    ax.legend()
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
