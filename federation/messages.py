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


# --- What may leave a node (principle 3): the fields of each message kind, and the error replies ----------
#
# A node's reply is a Flower RecordDict; a field is `<record>.<key>` (an array record's keys are the model's
# parameter names). The egress guard refuses a message with any field outside its kind's list, so what a
# message can carry is written down here, once, for the coordinator and every node alike. Node-internal
# statistics (raw record counts, how many units a bound cut) are on no list: they stay in the node's state.

ARRAY_RECORDS = ("arrays",)     # records that hold arrays; every other record holds metrics or config values
METRIC_RECORDS = ("metrics",)

_MODEL_UPDATE = ("arrays.*", "metrics.num-examples", "metrics.train-loss-dp", "metrics.epsilon")
_HELDOUT_SUMS = ("metrics.rows", "metrics.sum-y", "metrics.sum-y2", "metrics.sse", "metrics.epsilon")
_AGGREGATE = ("release.block:*", "release.noise:*", "release.label", "metrics.rows", "metrics.new-releases",
              "metrics.epsilon",
              # `pulse-twin analytics`: the released series per (area, period) of the node's unsuppressed areas
              "analytics.node", "analytics.run_id", "analytics.kind", "analytics.area_code", "analytics.period",
              "analytics.series:*")

REPLY_FIELDS: dict[str, tuple[str, ...]] = {
    "dp-model-update": _MODEL_UPDATE,
    "dp-model-update-resent": _MODEL_UPDATE,
    "dry-run-update": _MODEL_UPDATE,
    "dp-heldout-sums": _HELDOUT_SUMS,
    "dry-run-heldout-sums": _HELDOUT_SUMS,
    "dp-aggregate": _AGGREGATE,
    "dp-aggregate-reused": _AGGREGATE,
    "psi": ("psi.setup", "psi.response"),
    # describe (name, built blocks, training rows, role), privacy (the ledger's report), align (aligned counts)
    "public-fact": ("node.name", "node.blocks", "node.rows", "node.role", "privacy.name", "privacy.report",
                    "aligned.train-rows", "aligned.predict-rows"),
    "error": ("error.code", "error.reason"),
}


def payload_fields(content: Any) -> tuple[str, ...]:
    """The fields of a reply (`<record>.<key>`), sorted. A record of another type than its name says (an
    `arrays` record holding config values) is named `<record>[<type>].<key>`, which no allow-list holds."""
    from flwr.app import ArrayRecord, MetricRecord

    out = []
    for name in content.keys():
        record = content[name]
        kind = "array" if isinstance(record, ArrayRecord) else "metric" if isinstance(record, MetricRecord) else "config"
        expected = "array" if name in ARRAY_RECORDS else "metric" if name in METRIC_RECORDS else "config"
        prefix = name if kind == expected else f"{name}[{kind}]"
        out.extend(f"{prefix}.{key}" for key in record.keys())
    return tuple(sorted(out))


def fields_outside(kind: str, fields: Sequence[str]) -> list[str]:
    """The fields of a message of `kind` that its allow-list does not hold (every field, for an unknown kind)."""
    from fnmatch import fnmatchcase

    allowed = REPLY_FIELDS.get(kind, ())
    return [f for f in fields if not any(fnmatchcase(f, pattern) for pattern in allowed)]


# An error reply carries one rule name and that rule's fixed sentence, nothing else: what exactly went wrong
# (a file, a line, a raw value, a count) stays in the node's own log. Site-policy rules keep their names.
_APPROVED = "the message's privacy parameter differs from the run proposal this node approved"
ERROR_SENTENCES: dict[str, str] = {
    "approvals": "this run is not approved on the node",
    "approved_bundles": "the run's code bundle is not approved on the node",
    "installed_code": "the node's installed code is not the code the run was approved for",
    "block_schemas": "a block schema of the run differs from the one the node approved",
    "message.kind": "the node does not answer or send this kind of message",
    "message.charges": "the message's DP releases do not match what the node may charge",
    "message.fields": "the reply would carry a field outside the allow-list of its message kind",
    "run_kind": "the message does not belong to the kind of run the node approved",
    "allowed_run_kinds": "the node's site policy does not allow this kind of run",
    "rounds": "the round is not one of the rounds the node approved",
    "planned_schedule": "the round is outside the planned schedule the node calibrated its noise for, "
                        "or was already released",
    "privacy.unit": "the run's unit of privacy is not the one this node's tables protect",
    "privacy.delta": "the run's delta is above the node's delta",
    "privacy.epsilon_per_year": "the release would exceed the node's privacy budget per 365 days",
    "privacy.epsilon_lifetime": "the release would exceed the node's lifetime privacy budget",
    "bounds.min_noise_multiplier": "the noise multiplier is below the node's minimum",
    "bounds.max_sample_rate": "the sample rate is above the node's maximum",
    "bounds.min_rows_per_release": "the release would be computed from fewer rows than the node's minimum",
    "bounds.max_rounds_per_run": "the run has more rounds than the node allows",
    "bounds.max_bytes_per_message": "the reply would be larger than the node allows",
    **{name: _APPROVED for name in ("run_name", "target_epsilon", "delta", "sample_rate", "local_epochs",
                                    "loss_noise_multiplier", "min_rows", "eval_noise_multiplier", "dry_run")},
    "ledger": "the node cannot vouch for its egress log or privacy ledger; its operator must check them",
    "site_policy": "the node's site policy refused the request",
    "node_setup": "the node's data, contract or set-up cannot answer this message; its operator has the detail "
                  "in the node's log",
    "node_failure": "the node failed to answer; its operator has the detail in the node's log",
}


@dataclass(frozen=True)
class ErrorReply:
    """What an error reply of a node says: a rule name and its fixed sentence (`text` is the reply's reason)."""

    rule: str
    sentence: str

    @property
    def text(self) -> str:
        return f"{self.rule}: {self.sentence}"


def error_reply(err: BaseException) -> ErrorReply:
    """The error reply for any exception a node meets while answering: the refusal's rule when it names one
    of the fixed set, else the class of the problem; never the exception's own text."""
    from federation.errors import PolicyRefusal, PulseTwinError

    rule = getattr(err, "rule", None)
    if isinstance(err, PolicyRefusal) and isinstance(rule, str) and rule in ERROR_SENTENCES:
        pass
    elif any(c.__name__ == "LogTampered" for c in type(err).__mro__):
        rule = "ledger"
    elif isinstance(err, PolicyRefusal):
        rule = "site_policy"
    elif isinstance(err, PulseTwinError):
        rule = "node_setup"
    else:
        rule = "node_failure"
    return ErrorReply(rule, ERROR_SENTENCES[rule])


def error_text(rule: str) -> str:
    """The one text an error reply naming `rule` carries (KeyError for a rule outside the fixed set)."""
    return ErrorReply(rule, ERROR_SENTENCES[rule]).text


def error_texts() -> frozenset[str]:
    """Every text an error reply of a node can carry."""
    return frozenset(ErrorReply(rule, sentence).text for rule, sentence in ERROR_SENTENCES.items())
