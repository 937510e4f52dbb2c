"""Payload digests: the same content always gives the same hash; any change of content gives another."""
from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch
from flwr.app import Array, ArrayRecord, ConfigRecord, MetricRecord, RecordDict

from clients.egress import bytes_digest, payload_digest


def reply(weight: np.ndarray | None = None, loss: float = 0.25, token: bytes = b"\x01\x02", order: str = "amc") -> RecordDict:
    weight = np.arange(6, dtype=np.float32).reshape(2, 3) if weight is None else weight
    records = {
        "a": ArrayRecord({"weight": Array(weight), "bias": Array(np.zeros(3, dtype=np.float32))}),
        "m": MetricRecord({"num-examples": 40, "loss": loss}),
        "c": ConfigRecord({"token": token, "note": "round 1"}),
    }
    return RecordDict({key: records[key] for key in order})


def test_digest_is_deterministic_and_ignores_insertion_order():
    first = payload_digest(reply())
    assert first == payload_digest(reply())
    assert first == payload_digest(reply(order="cma"))
    metrics_reordered = RecordDict({"m": MetricRecord({"loss": 0.25, "num-examples": 40})})
    assert payload_digest(metrics_reordered) == payload_digest(RecordDict({"m": MetricRecord({"num-examples": 40, "loss": 0.25})}))


@pytest.mark.parametrize(
    "changed",
    [
        reply(weight=np.array([[0, 1, 2], [3, 4, 5.5]], dtype=np.float32)),  # one value
        reply(weight=np.arange(6, dtype=np.float64).reshape(2, 3)),          # dtype
        reply(weight=np.arange(6, dtype=np.float32).reshape(3, 2)),          # shape, same bytes
        reply(loss=0.26),                                                     # a metric
        reply(token=b"\x01\x03"),                                             # config bytes
    ],
    ids=["value", "dtype", "shape", "metric", "config-bytes"],
)
def test_any_change_of_content_changes_the_digest(changed):
    assert payload_digest(changed)[0] != payload_digest(reply())[0]


def test_size_counts_the_array_bytes_and_torch_state_dicts_are_supported():
    model = torch.nn.Linear(100, 10)
    digest, size = payload_digest(RecordDict({"arrays": ArrayRecord(model.state_dict())}))
    assert len(digest) == 64
    assert size >= (100 * 10 + 10) * 4
    digest2, _ = payload_digest(RecordDict({"arrays": ArrayRecord(model.state_dict())}))
    assert digest == digest2


def test_bytes_digest_of_a_raw_message():
    data = b"psi setup message"
    assert bytes_digest(data) == (hashlib.sha256(data).hexdigest(), len(data))
