"""The node's egress: one guard every outgoing message passes, its hash-chained log, and the audit."""
from clients.egress.digest import bytes_digest, payload_digest
from clients.egress.guard import MESSAGE_KINDS, Egress, EgressGuard, check_egress
from clients.egress.log import EgressLog, LogTampered

__all__ = [
    "MESSAGE_KINDS",
    "Egress",
    "EgressGuard",
    "EgressLog",
    "LogTampered",
    "bytes_digest",
    "check_egress",
    "payload_digest",
]
