"""Canonical SHA-256 and size of an outgoing payload, so the log names exactly what left the node.

A Flower `RecordDict` is hashed record by record in sorted key order: each array by its dtype, shape,
serialisation type and bytes; metric and config records as sorted JSON (bytes values as hex). The same
content always gives the same digest, whatever the insertion order of records or metric keys.
"""
from __future__ import annotations

import hashlib
import json
from typing import Any

_DOMAIN = b"pulse-twin payload v1\n"


def bytes_digest(data: bytes) -> tuple[str, int]:
    """(SHA-256 hex, length) of a raw byte payload, e.g. a PSI protocol message."""
    return hashlib.sha256(data).hexdigest(), len(data)


def payload_digest(record_dict: Any) -> tuple[str, int]:
    """(SHA-256 hex, canonical size in bytes) of a `flwr.app.RecordDict`."""
    from flwr.app import ArrayRecord, ConfigRecord, MetricRecord

    digest = hashlib.sha256(_DOMAIN)
    size = 0

    def feed(part: bytes) -> None:
        nonlocal size
        # Length prefixes keep the stream unambiguous.
        digest.update(len(part).to_bytes(8, "big") + part)
        size += len(part)

    for key in sorted(record_dict.keys()):
        record = record_dict[key]
        if isinstance(record, ArrayRecord):
            feed(_json({"record": key, "type": "array", "names": sorted(record.keys())}))
            for name in sorted(record.keys()):
                array = record[name]
                feed(_json({"dtype": array.dtype, "shape": list(array.shape), "stype": array.stype}))
                feed(bytes(array.data))
        elif isinstance(record, (MetricRecord, ConfigRecord)):
            kind = "metric" if isinstance(record, MetricRecord) else "config"
            feed(_json({"record": key, "type": kind, "values": {k: _plain(v) for k, v in record.items()}}))
        else:
            raise TypeError(f"record '{key}' has an unknown type {type(record).__name__}")
    return digest.hexdigest(), size


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return {"bytes": value.hex()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _json(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")
