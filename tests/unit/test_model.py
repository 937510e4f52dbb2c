"""The block model runs with any subset of blocks, and its parts compose as the vertical mode needs."""
from itertools import combinations

import numpy as np
import pandas as pd
import pytest
import torch

from federation.dataset import LabelSpec, make_examples
from federation.blocks import block_schema, block_widths
from federation.model import ModelSpec, build_model
from federation.task import TrainConfig, evaluate, fit, predict, train

BLOCKS = ("context", "safety", "social", "care")

LABEL = LabelSpec(center=4.10, scale=0.25, shift=1)   # the Heerlen federations' public label scaling


def spec() -> ModelSpec:
    return ModelSpec.from_widths(block_widths(BLOCKS))


@pytest.mark.parametrize("subset", [c for r in range(1, 5) for c in combinations(range(4), r)])
def test_model_runs_with_any_subset_of_blocks(subset):
    model = build_model(spec(), seed=0)
    x = torch.randn(7, spec().input_width)
    present = torch.zeros(7, 4)
    present[:, list(subset)] = 1.0
    out = model(x, present)
    assert out.shape == (7,)
    assert torch.isfinite(out).all()
    # The prediction does not depend on the values of an absent block.
    x2 = x.clone()
    start = 0
    for i, (_, width) in enumerate(spec().blocks):
        if i not in subset:
            x2[:, start : start + width] = torch.randn(7, width) * 100
        start += width
    assert torch.allclose(model(x2, present), out)


def test_same_seed_same_weights_and_restriction():
    a, b = build_model(spec(), seed=3), build_model(spec(), seed=3)
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)
    local = build_model(spec().only(["safety"]), seed=0)
    assert list(local.encoders) == ["safety"]
    assert local(torch.randn(2, 6), torch.ones(2, 1)).shape == (2,)


def frames(n_areas=30, months=12, seed=0):
    """Blocks whose features carry a known signal about next month's label."""
    rng = np.random.default_rng(seed)
    periods = pd.period_range("2020-01", periods=months, freq="M").astype(str)
    keys = pd.MultiIndex.from_product([[f"BU{i:04d}" for i in range(n_areas)], periods],
                                      names=["area_code", "period"]).to_frame(index=False)
    latent = rng.normal(size=len(keys))
    blocks = {}
    for name, width in block_widths(BLOCKS).items():
        cols = {f: np.exp(rng.normal(size=len(keys)) * 0.3) for f in block_schema(name).features}
        first = next(iter(cols))
        cols[first] = np.exp(latent * 0.5)
        blocks[name] = pd.concat([keys, pd.DataFrame(cols)], axis=1)
    # The label stated for period t+1 is driven by the latent of period t.
    label = keys.copy()
    label["period"] = (pd.PeriodIndex(keys["period"], freq="M") + 1).astype(str)
    label["label"] = 4.1 + 0.1 * latent
    return blocks, label


def test_make_examples_aligns_next_period_label_and_presence():
    blocks, label = frames()
    blocks["care"] = blocks["care"].iloc[::2]  # care missing for half the rows
    ex = make_examples(blocks, BLOCKS, label, LABEL)
    assert ex.x.shape[1] == spec().input_width
    assert set(np.unique(ex.present[:, 3])) == {0.0, 1.0}
    assert (ex.present[:, :3] == 1).all()
    # Row (area, t) carries the label stated for period t+1.
    lookup = label.set_index(["area_code", "period"])["label"]
    nxt = (pd.PeriodIndex(ex.keys["period"], freq="M") + 1).astype(str)
    expected = LABEL.scale_values(lookup.loc[list(zip(ex.keys["area_code"], nxt))].to_numpy())
    assert np.allclose(ex.y, expected)


def test_training_learns_a_signal():
    blocks, label = frames(n_areas=40)
    ex = make_examples(blocks, BLOCKS, label, LABEL)
    test = ex.keys["area_code"].isin([f"BU{i:04d}" for i in range(30, 40)]).to_numpy()
    model = train(build_model(spec(), seed=0), ex.subset(~test), TrainConfig(epochs=40))
    assert evaluate(model, ex.subset(test), LABEL)["r2"] > 0.8
    assert predict(model, ex.subset(test)).shape == (int(test.sum()),)


def test_fit_chooses_weight_decay_by_inner_cross_validation():
    """`fit` trains the choice with the least held-out error over the training areas, and nothing else."""
    blocks, label = frames(n_areas=30, months=6)
    ex = make_examples(blocks, BLOCKS, label, LABEL)
    cfg = TrainConfig(epochs=10, weight_decay_choices=[0.0, 30.0], inner_folds=3)
    model, chosen = fit(lambda: build_model(spec(), seed=0), ex, cfg)
    # A real signal: heavy shrinkage flattens every prediction, so the small weight decay wins.
    assert chosen == 0.0
    same = train(build_model(spec(), seed=0), ex, TrainConfig(epochs=10, weight_decay=0.0))
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), same.parameters()))
    # Pure noise as the label: fitting it only hurts held-out areas, so the strong shrinkage wins.
    noise = make_examples(blocks, BLOCKS, label.assign(label=4.1 + np.random.default_rng(1).normal(size=len(label))), LABEL)
    assert fit(lambda: build_model(spec(), seed=0), noise, TrainConfig(epochs=30, weight_decay_choices=[0.0, 30.0]))[1] == 30.0
    # One choice, or none, is plain training with it.
    assert fit(lambda: build_model(spec(), seed=0), ex, TrainConfig(epochs=1, weight_decay_choices=[0.5]))[1] == 0.5
    assert fit(lambda: build_model(spec(), seed=0), ex, TrainConfig(epochs=1, weight_decay=0.2))[1] == 0.2


def test_a_packed_model_travels_as_one_array_and_unpacks_to_the_same_state():
    from federation.model import PACKED, pack, unpack

    model = build_model(spec(), seed=3)
    arrays = pack(model.state_dict())
    assert list(arrays.keys()) == [PACKED]      # one object per message instead of one per tensor
    other = build_model(spec(), seed=4)
    other.load_state_dict(unpack(arrays, other))
    for (k, a), (k2, b) in zip(model.state_dict().items(), other.state_dict().items()):
        assert k == k2 and torch.equal(a, b)


def test_averaging_packed_states_is_averaging_the_states():
    """FedAvg and the other strategies work element by element: packing changes no aggregate."""
    from federation.model import PACKED, pack, unpack

    a, b = build_model(spec(), seed=1), build_model(spec(), seed=2)
    flat = 0.25 * pack(a.state_dict())[PACKED].numpy() + 0.75 * pack(b.state_dict())[PACKED].numpy()
    from flwr.app import Array, ArrayRecord

    averaged = unpack(ArrayRecord({PACKED: Array(flat)}), a)
    for key, value in averaged.items():
        expected = 0.25 * a.state_dict()[key] + 0.75 * b.state_dict()[key]
        assert torch.allclose(value, expected, atol=1e-6)


def test_arrays_of_another_model_are_refused_and_flowers_own_layout_still_loads():
    from flwr.app import ArrayRecord

    from federation.errors import ConfigError
    from federation.model import pack, unpack

    small = build_model(ModelSpec.from_widths(block_widths(BLOCKS[:1])), seed=0)
    with pytest.raises(ConfigError, match="values"):
        unpack(pack(small.state_dict()), build_model(spec(), seed=0))
    model = build_model(spec(), seed=5)
    state = unpack(ArrayRecord(model.state_dict()), build_model(spec(), seed=6))
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
