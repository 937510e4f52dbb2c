"""Message formats between the coordinator and the nodes, as plain dataclasses.

The coordinator sends settings in a Flower `ConfigRecord`; a node reads them back into the same
dataclass, so both ends agree on every field by construction. Settings carry no data: only what a
node needs to build the same examples and model and to run the mechanism its policy then checks.
"""
from __future__ import annotations

import io
from dataclasses import MISSING, dataclass, fields
from typing import Any, Sequence, TypeVar

import pandas as pd
from flwr.app import ConfigRecord

from federation.blocks import BlockSchema, block_widths, schemas_from_json
from federation.dataset import LabelSpec
from federation.errors import ConfigError
from federation.model import ModelSpec

T = TypeVar("T")


@dataclass(frozen=True)
class TaskSettings:
    """What every party needs to assemble the same examples and the same model."""

    run_name: str
    blocks: tuple[str, ...]
    label_center: float
    label_scale: float
    label_shift: int
    embed_dim: int = 8
    hidden: int = 32
    head_hidden: int = 32
    holdout_fold: int = -1  # areas of this fold are never trained on (benchmarks); -1 = none
    folds: int = 5
    split_seed: int = 0
    # The node-local block schemas among `blocks` (`federation.blocks.schemas_json`): every node builds the
    # same model, also with blocks only other nodes hold; their hashes are in the approved proposal.
    block_schemas: str = ""
    dry_run: bool = False   # train and evaluate on the node's synthetic twin; charge nothing on its real ledger

    @classmethod
    def from_config(cls, run_name: str, blocks: Sequence[str], label: Any, model: Any = None,
                    **fields: Any) -> "TaskSettings":
        """The task of a run from the federation's `label` settings and (optionally) the `model` sizes: the one
        place a run's settings are built, by the coordinator and by a node counting its rows at approval."""
        spec = LabelSpec.from_config(label)
        sizes = {} if model is None else {k: int(model[k]) for k in ("embed_dim", "hidden", "head_hidden")}
        return cls(run_name=run_name, blocks=tuple(blocks), label_center=spec.center, label_scale=spec.scale,
                   label_shift=spec.shift, **sizes, **fields)

    @property
    def label(self) -> LabelSpec:
        return LabelSpec(self.label_center, self.label_scale, self.label_shift)

    def local_schemas(self) -> dict[str, BlockSchema]:
        return schemas_from_json(self.block_schemas, "the run's block-schemas setting")

    def model_spec(self, blocks: tuple[str, ...] | None = None) -> ModelSpec:
        return ModelSpec.from_widths(block_widths(blocks or self.blocks, self.local_schemas()),
                                     embed_dim=self.embed_dim, hidden=self.hidden, head_hidden=self.head_hidden)


@dataclass(frozen=True)
class DPSettings:
    """The planned DP schedule of a run; each node calibrates its noise once from it."""

    target_epsilon: float
    delta: float
    num_rounds: int
    max_grad_norm: float = 1.0
    sample_rate: float = 0.05    # Poisson rate q: each node's expected batch is q x its rows
    local_epochs: float = 1.0
    lr: float = 0.05
    momentum: float = 0.9
    block_dropout: float = 0.1
    loss_noise_multiplier: float = 0.0  # > 0: nodes also release a noised training loss (charged)
    min_rows: int = 1                   # fewest rows for DP-SGD at this privacy; fewer: the node releases instead
    eval_noise_multiplier: float = 0.0  # > 0: nodes release noised held-out sums after each round (charged)


def _encode(value: Any) -> Any:
    return ",".join(value) if isinstance(value, tuple) else value


def to_config(*settings: Any) -> ConfigRecord:
    """One ConfigRecord holding every field of the given settings objects (`a_b` -> `a-b`)."""
    out: dict[str, Any] = {}
    for item in settings:
        for f in fields(item):
            out[f.name.replace("_", "-")] = _encode(getattr(item, f.name))
    return ConfigRecord(out)


def from_config(cls: type[T], record: ConfigRecord | dict) -> T:
    """Read settings of type `cls` back from a ConfigRecord; a missing field is a clear error."""
    values: dict[str, Any] = {}
    for f in fields(cls):  # type: ignore[arg-type]
        key = f.name.replace("_", "-")
        if key not in record:
            if f.default is not MISSING:
                continue
            raise ConfigError(f"message config lacks '{key}' for {cls.__name__}")
        value = record[key]
        if f.type in ("tuple[str, ...]",):
            value = tuple(v for v in str(value).split(",") if v)
        values[f.name] = value
    try:
        return cls(**values)  # type: ignore[call-arg]
    except TypeError as err:
        raise ConfigError(f"message config for {cls.__name__}: {err}") from None


def to_parquet(frame: pd.DataFrame) -> bytes:
    """A released table in a message: Parquet bytes (types kept, no index)."""
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def from_parquet(data: bytes) -> pd.DataFrame:
    """The table a `to_parquet` message carries."""
    return pd.read_parquet(io.BytesIO(data))
