"""Fay-Herriot shrinkage of released area means by their known noise: closer to the truth, never worse by much."""
import numpy as np
import pandas as pd
import pytest

from federation.shrinkage import fay_herriot, shrink_blocks, trailing_noise_var


def simulated(rng, n=60, signal_sd=1.0, noise_scale=1.5):
    """Area truths on a public covariate, and releases with heteroscedastic noise of known variance."""
    x = rng.normal(size=(n, 1))
    theta = 2.0 + 0.8 * x[:, 0] + signal_sd * rng.normal(size=n)
    d = (noise_scale * rng.uniform(0.2, 2.0, size=n)) ** 2       # small areas noisier, as per 1,000 rates are
    y = theta + np.sqrt(d) * rng.normal(size=n)
    return x, theta, y, d


def test_shrinkage_with_the_known_noise_lowers_the_error_against_the_truth():
    """Over 200 simulated releases (noise as large as the signal), the mean squared error of the shrunk means
    against the truth is at most 70% of the raw releases' (theory: about 45%)."""
    rng = np.random.default_rng(1)
    raw, shrunk = [], []
    for _ in range(200):
        x, theta, y, d = simulated(rng)
        est, a = fay_herriot(y, d, x)
        raw.append(np.mean((y - theta) ** 2))
        shrunk.append(np.mean((est - theta) ** 2))
    assert np.mean(shrunk) <= 0.70 * np.mean(raw)


def test_the_area_variance_is_estimated_and_noisier_areas_are_shrunk_more():
    rng = np.random.default_rng(2)
    estimates = []
    for _ in range(200):
        x, theta, y, d = simulated(rng, n=200)
        est, a = fay_herriot(y, d, x)
        estimates.append(a)
    assert np.mean(estimates) == pytest.approx(1.0, rel=0.15)   # the simulated signal variance
    x, theta, y, d = simulated(np.random.default_rng(3), n=200)
    est, a = fay_herriot(y, d, x)
    fit = np.column_stack([np.ones(200), x]) @ np.linalg.lstsq(np.column_stack([np.ones(200), x]) / np.sqrt(a + d)[:, None],
                                                               y / np.sqrt(a + d), rcond=None)[0]
    kept = (est - fit) / (y - fit)          # the share of each area's own deviation it keeps
    assert np.allclose(kept, a / (a + d))
    assert kept[np.argmax(d)] < kept[np.argmin(d)]


def test_without_noise_nothing_changes_and_pure_noise_is_shrunk_to_the_fit():
    rng = np.random.default_rng(4)
    x, theta, y, d = simulated(rng)
    assert np.array_equal(fay_herriot(y, np.zeros_like(d), x)[0], y)
    flat = 3.0 + np.sqrt(d) * rng.normal(size=len(d))          # no area signal at all
    est, a = fay_herriot(flat, d * 25.0, np.zeros((len(d), 0)))
    assert np.std(est) < 0.2 * np.std(flat)


def test_trailing_noise_variance_is_the_window_mean_over_its_length_and_exact_blocks_stay():
    keys = pd.DataFrame({"area_code": ["A"] * 4 + ["B"] * 4, "period": ["2024-01", "2024-02", "2024-03", "2024-04"] * 2})
    noise = keys.assign(f=[1.0, 1.0, 3.0, 3.0, 2.0, 2.0, 2.0, 2.0])
    var = trailing_noise_var(noise, 2)
    # A: one cell of sd 1, then two (1 + 1) / 2 / 2, (1 + 9) / 2 / 2, (9 + 9) / 2 / 2
    assert var["f"].tolist()[:4] == pytest.approx([1.0, 0.5, 2.5, 4.5])
    assert var["f"].tolist()[4:] == pytest.approx([4.0, 2.0, 2.0, 2.0])
    block = keys.assign(f=np.arange(8.0))
    out = shrink_blocks({"b": block}, {"b": keys.assign(f=0.0)}, [], min_areas=1)
    assert out["b"]["f"].tolist() == block["f"].tolist()
