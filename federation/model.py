"""The block model: one encoder per feature block and a fusion head that tolerates missing blocks.

One model family serves every topology. Horizontally, a city node trains the whole model with DP-SGD
(the input is one flat tensor so that Opacus sees an ordinary module). Vertically, each partner runs
only its own encoders and sends noised embeddings; the coordinator runs only the fusion head.
A missing block contributes a zero embedding and a zero presence flag, so the head learns to predict
from whatever blocks an area has.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Mapping, Sequence

import torch
from torch import nn

if TYPE_CHECKING:
    from flwr.app import ArrayRecord


@dataclass(frozen=True)
class ModelSpec:
    """Shape of a block model: blocks in input order with their widths, and layer sizes."""

    blocks: tuple[tuple[str, int], ...]
    embed_dim: int = 8
    hidden: int = 32
    head_hidden: int = 32

    @classmethod
    def from_widths(cls, widths: Mapping[str, int], **sizes: int) -> "ModelSpec":
        return cls(blocks=tuple((name, int(width)) for name, width in widths.items()), **sizes)

    @property
    def block_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.blocks)

    @property
    def input_width(self) -> int:
        return sum(width for _, width in self.blocks)

    def only(self, names: Sequence[str]) -> "ModelSpec":
        """The same model restricted to some blocks (a partner's local-only model)."""
        keep = tuple((n, w) for n, w in self.blocks if n in set(names))
        return ModelSpec(keep, self.embed_dim, self.hidden, self.head_hidden)


def block_encoder(width: int, hidden: int, embed_dim: int) -> nn.Module:
    """Encoder of one block; the part a vertical partner keeps on its node."""
    return nn.Sequential(nn.Linear(width, hidden), nn.ReLU(), nn.Linear(hidden, embed_dim))


class FusionHead(nn.Module):
    """Maps the embeddings of the present blocks, and which blocks are present, to one prediction."""

    def __init__(self, n_blocks: int, embed_dim: int, hidden: int) -> None:
        super().__init__()
        self.n_blocks = n_blocks
        self.embed_dim = embed_dim
        self.net = nn.Sequential(
            nn.Linear(n_blocks * embed_dim + n_blocks, hidden), nn.ReLU(), nn.Linear(hidden, 1)
        )

    def forward(self, embeddings: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        """embeddings: [B, n_blocks * embed_dim] (zero where absent); present: [B, n_blocks] in {0, 1}."""
        mask = present.repeat_interleave(self.embed_dim, dim=1)
        return self.net(torch.cat([embeddings * mask, present], dim=1)).squeeze(-1)


class BlockModel(nn.Module):
    """All encoders and the fusion head in one module; `forward(x, present)` on flat inputs."""

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        self.spec = spec
        self.encoders = nn.ModuleDict(
            {name: block_encoder(width, spec.hidden, spec.embed_dim) for name, width in spec.blocks}
        )
        self.head = FusionHead(len(spec.blocks), spec.embed_dim, spec.head_hidden)
        offsets, start = [], 0
        for _, width in spec.blocks:
            offsets.append((start, start + width))
            start += width
        self._slices = tuple(offsets)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Concatenated embeddings of every block of a flat input [B, input_width]."""
        parts = [
            self.encoders[name](x[:, lo:hi]) for (name, _), (lo, hi) in zip(self.spec.blocks, self._slices)
        ]
        return torch.cat(parts, dim=1)

    def forward(self, x: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(x), present)


def build_model(spec: ModelSpec, seed: int | None = None) -> BlockModel:
    """A freshly initialised model; seeded so every party starts from the same weights."""
    if seed is not None:
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            return BlockModel(spec)
    return BlockModel(spec)


# A model's parameters travel as ONE flat array. Flower moves every array of a message as an object of its own,
# one request per hop (ServerApp -> SuperLink -> SuperNode -> executor, and back), so a model of 20 tensors made
# each train message and each update about 24 objects; packed, about 5. Every strategy the project offers
# aggregates element by element, or by norms and distances over all parameters together: packing changes none.
PACKED = "params"


def pack(state: Mapping[str, torch.Tensor]) -> "ArrayRecord":
    """A model's state dict as an ArrayRecord holding one flat float32 array (in the state dict's order)."""
    from flwr.app import Array, ArrayRecord

    flat = torch.cat([t.detach().reshape(-1).to(torch.float32) for t in state.values()])
    return ArrayRecord({PACKED: Array(flat.numpy())})


def unpack(arrays: "ArrayRecord", model: nn.Module) -> dict[str, torch.Tensor]:
    """The state dict for `model` from a packed ArrayRecord (`pack`), or from one array per tensor (Flower's
    own layout); a record that does not fit the model is refused."""
    from federation.errors import ConfigError

    if PACKED not in arrays:
        return arrays.to_torch_state_dict()
    flat = torch.from_numpy(arrays[PACKED].numpy().copy()).reshape(-1)
    template = model.state_dict()
    size = sum(t.numel() for t in template.values())
    if flat.numel() != size:
        raise ConfigError(f"the model's arrays hold {flat.numel()} values; this model has {size}")
    state, at = {}, 0
    for key, t in template.items():
        state[key] = flat[at:at + t.numel()].reshape(t.shape).to(t.dtype).clone()
        at += t.numel()
    return state
