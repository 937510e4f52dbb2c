"""Example payload fields per message kind, for tests that describe messages to the egress guard directly."""
from __future__ import annotations

import hashlib

from federation.messages import ERROR_SENTENCES, ErrorReply

FIELDS: dict[str, tuple[str, ...]] = {
    "dp-model-update": ("arrays.layer.weight", "metrics.epsilon", "metrics.num-examples"),
    "dp-model-update-resent": ("arrays.layer.weight", "metrics.epsilon", "metrics.num-examples"),
    "dp-aggregate": ("metrics.epsilon", "metrics.rows", "release.block:safety"),
    "dp-aggregate-reused": ("metrics.epsilon", "metrics.rows", "release.block:safety"),
    "psi": ("psi.response", "psi.setup"),
    "public-fact": ("node.blocks", "node.name"),
    "error": ("error.code", "error.reason"),
}


def error_digest(rule: str = "site_policy") -> str:
    """The SHA-256 of the one text an error reply naming `rule` may carry."""
    return hashlib.sha256(ErrorReply(rule, ERROR_SENTENCES[rule]).text.encode()).hexdigest()
