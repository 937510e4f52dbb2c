"""Private set intersection of (area_code, period) keys with openmined-psi, between the coordinator
and one partner node.

Only the coordinator learns anything: it is the PSI *client* (openmined-psi reveals the intersection to
the client), each partner node is the PSI *server*. One exchange per partner:

1. coordinator -> partner: `CoordinatorPsi.request()` (its label keys, encrypted under a fresh key) and
   its set size;
2. partner -> coordinator: `partner_reply(...)`, a setup message (its own keys encrypted under a fresh key,
   compressed into a Golomb-compressed set) and the response to the request;
3. the coordinator calls `CoordinatorPsi.intersect(setup, response)` and learns which of its label keys
   the partner holds. The partner learns only the coordinator's set size.

What the partner discloses by replying: which of the coordinator's keys it holds, and (from the size of
the setup) about how many keys it has; `PsiReply.revealed_set_size` is that number, for the node's log.

openmined-psi 2.0.6 pins protobuf 6.30, which breaks Flower, so it is installed without dependencies and
its Python wrapper cannot be imported; this module loads the wrapper's C++ extension directly and passes
it plain bytes.
"""
from __future__ import annotations

import functools
import importlib.machinery
import importlib.util
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from federation.errors import ConfigError, ContractError

Key = tuple[str, str]
"""(area_code, period), e.g. ("BU09170001", "2019-03")."""

DEFAULT_FPR = 1e-9
"""Probability that one whole query yields a false match; both sides must use the same value."""

SEPARATOR = "|"

# openmined-psi sizes its GCS hash range as max(n_coordinator, n_partner) * n_coordinator / fpr and casts it
# to int64; beyond 2**63 the C++ code overflows (measured: a crash, or a silently wrong set). Below this
# bound a GCS is used; above it the partner sends the RAW set, which has no false positives at all.
_GCS_HASH_RANGE_LIMIT = 2**62

_INSTALL_HINT = (
    "install it with `pip install --no-deps openmined-psi==2.0.6` (without dependencies: its protobuf "
    "pin breaks Flower), as `make install` does"
)


# --- keys -------------------------------------------------------------------------------------------

def encode_key(key: Key) -> str:
    """The canonical PSI item of a key: "<area_code>|<period>". An area code may not hold '|', so
    `decode_key` can split at the first one."""
    if not (isinstance(key, tuple) and len(key) == 2):
        raise ContractError(f"key {key!r}: must be a pair (area_code, period)")
    area_code, period = key
    for name, value in (("area_code", area_code), ("period", period)):
        if not isinstance(value, str) or not value:
            raise ContractError(f"key {key!r}: field '{name}' must be a non-empty string, got {value!r}")
    if SEPARATOR in area_code:
        raise ContractError(f"key {key!r}: field 'area_code' must not contain '{SEPARATOR}'")
    return f"{area_code}{SEPARATOR}{period}"


def decode_key(text: str) -> Key:
    """Inverse of `encode_key`."""
    if not isinstance(text, str):
        raise ContractError(f"encoded key {text!r}: must be a string")
    area_code, sep, period = text.partition(SEPARATOR)
    if not sep or not area_code or not period:
        raise ContractError(f"encoded key {text!r}: expected '<area_code>{SEPARATOR}<period>'")
    return area_code, period


def encode_keys(keys: Sequence[Key], source: str) -> list[str]:
    """Encode a key set, refusing malformed and duplicate keys (a set has no duplicates, and the
    intersection indices would be ambiguous). `source` names where the keys came from."""
    encoded: list[str] = []
    first_seen: dict[str, int] = {}
    for position, key in enumerate(keys):
        try:
            item = encode_key(key)
        except ContractError as err:
            raise ContractError(f"{source}, key {position}: {err}") from None
        if item in first_seen:
            raise ContractError(
                f"{source}, key {position}: duplicate key {key!r} (first at key {first_seen[item]}); "
                "each (area_code, period) may appear once"
            )
        first_seen[item] = position
        encoded.append(item)
    if not encoded:
        raise ContractError(f"{source}: no keys to align (is the feature block or label set empty?)")
    return encoded


def check_fpr(fpr: float) -> float:
    """The false-positive probability of one whole query must lie strictly between 0 and 1."""
    if isinstance(fpr, bool) or not isinstance(fpr, (int, float)) or not 0.0 < float(fpr) < 1.0:
        raise ConfigError(
            f"psi fpr: must be a number strictly between 0 and 1 (probability of a false match in one "
            f"whole query, e.g. {DEFAULT_FPR:g}), got {fpr!r}"
        )
    return float(fpr)


# --- the C++ extension ------------------------------------------------------------------------------

@functools.cache
def psi_extension() -> ModuleType:
    """openmined-psi's C++ extension, loaded by file path so that its protobuf-6 wrapper is never
    imported."""
    return _load_extension()


def _load_extension() -> ModuleType:
    spec = importlib.util.find_spec("private_set_intersection")
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    suffixes = importlib.machinery.EXTENSION_SUFFIXES
    candidates = [
        path
        for folder in folders
        for path in sorted((Path(folder) / "python").glob("_openmined_psi*"))
        if any(path.name == "_openmined_psi" + suffix for suffix in suffixes)
    ]
    if not candidates:
        raise ConfigError(
            "private set intersection: openmined-psi's extension (private_set_intersection/python/"
            f"_openmined_psi.so) is not installed in this Python environment; {_INSTALL_HINT}"
        )
    # The module name must stay "_openmined_psi": it selects the extension's init function.
    ext_spec = importlib.util.spec_from_file_location("_openmined_psi", candidates[0])
    try:
        module = importlib.util.module_from_spec(ext_spec)
        ext_spec.loader.exec_module(module)
    except (ImportError, OSError) as err:
        raise ConfigError(
            f"private set intersection: cannot load {candidates[0]} ({err}); {_INSTALL_HINT}"
        ) from None
    return module


# --- message inspection -----------------------------------------------------------------------------

@dataclass(frozen=True)
class SetupInfo:
    """What a setup message says about itself: its data structure ("gcs" or "raw") and, for a GCS, the
    hash range it was sized with (None for RAW)."""

    data_structure: str
    hash_range: int | None


def describe_setup(setup: bytes, *, what: str = "PSI setup message") -> SetupInfo:
    """Read the data structure and its sizing from a setup message (protobuf `psi_proto.ServerSetup`);
    `what` names the message in errors."""
    fields = list(_wire_fields(setup, what))
    if len(fields) != 1 or fields[0][1] != 2:
        raise ContractError(f"{what}: expected exactly one data structure")
    number, _, body = fields[0]
    if number == 1:  # RawInfo { repeated bytes encrypted_elements = 1; }
        return SetupInfo("raw", None)
    if number == 2:  # GCSInfo { int32 div = 1; int64 hash_range = 2; bytes bits = 3; }
        hash_range = next((v for f, w, v in _wire_fields(body, what) if f == 2 and w == 0), 0)
        if hash_range >= 2**63:  # a negative int64 on the wire: the sender's hash range overflowed
            hash_range -= 2**64
        return SetupInfo("gcs", hash_range)
    raise ContractError(f"{what}: uses a data structure other than GCS or RAW (refused)")


def _count_elements(message: bytes, field: int, what: str) -> int:
    """Number of encrypted elements in a request (field 2) or response (field 1)."""
    return sum(1 for number, wire, _ in _wire_fields(message, what) if number == field and wire == 2)


def _wire_fields(data: bytes, what: str) -> Iterator[tuple[int, int, int | bytes]]:
    """(field number, wire type, value) of a protobuf message; enough to read openmined-psi's three
    messages without protobuf 6 gencode."""
    if not isinstance(data, (bytes, bytearray)):
        raise ContractError(f"{what}: expected bytes, got {type(data).__name__}")
    data = bytes(data)
    position, end = 0, len(data)

    def varint() -> int:
        nonlocal position
        value = shift = 0
        while True:
            if position >= end or shift > 63:
                raise ContractError(f"{what}: malformed (truncated or overlong number)")
            byte = data[position]
            position += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                return value

    while position < end:
        tag = varint()
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            yield number, wire, varint()
        elif wire == 2:
            length = varint()
            if position + length > end:
                raise ContractError(f"{what}: malformed (field {number} runs past the end)")
            yield number, wire, data[position:position + length]
            position += length
        else:
            raise ContractError(f"{what}: malformed (unexpected wire type {wire} in field {number})")


# --- the protocol -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class PsiReply:
    """What a partner sends back (`setup`, `response`) and what it discloses by doing so.

    `revealed_set_size`: the partner's own set size, which the setup discloses (exactly for RAW; for a
    GCS exactly through its hash range when larger than the coordinator's, else roughly through its
    length), so the node logs it as disclosed. `false_positive_bound`: expected number of coordinator
    keys wrongly matched, computed from the setup actually built (0 for RAW, which is exact)."""

    setup: bytes
    response: bytes
    revealed_set_size: int
    data_structure: str
    false_positive_bound: float


def psi_message_sizes(request: bytes, reply: PsiReply) -> dict[str, int]:
    """Bytes of each PSI message, for the egress log: request (coordinator -> partner), setup and
    response (partner -> coordinator)."""
    return {"request": len(request), "setup": len(reply.setup), "response": len(reply.response)}


class CoordinatorPsi:
    """The coordinator's side for one run: a fresh key, one request for all partners, and the
    intersection with each partner's reply."""

    def __init__(
        self, label_keys: Sequence[Key], *, fpr: float = DEFAULT_FPR, source: str = "coordinator label keys"
    ) -> None:
        self._fpr = check_fpr(fpr)
        self._keys = list(label_keys)
        self._items = encode_keys(self._keys, source)
        self._client = psi_extension().cpp_client.CreateWithNewKey(True)
        self._request: bytes | None = None

    @property
    def set_size(self) -> int:
        """Number of label keys; sent to every partner (it sizes the partner's setup)."""
        return len(self._items)

    @property
    def fpr(self) -> float:
        return self._fpr

    def request(self) -> bytes:
        """The encrypted label keys, the same bytes for every partner of this run."""
        if self._request is None:
            self._request = bytes(self._client.CreateRequest(self._items).save())
        return self._request

    def intersect(self, setup: bytes, response: bytes, *, partner: str = "partner") -> list[Key]:
        """Label keys that `partner` also holds, in canonical (sorted) order.

        Refuses a reply sized for a looser false-positive rate than this coordinator's fpr (whenever the
        partner's set is not larger than the coordinator's, where the GCS hash range reveals it), and a
        response that does not answer this run's request."""
        what = f"PSI reply from {partner}"
        answered = _count_elements(response, 1, what)
        if answered != self.set_size:
            raise ContractError(
                f"{what}: the response holds {answered} elements, the request had {self.set_size}; "
                "it does not answer this run's request"
            )
        info = describe_setup(setup, what=f"{what}, setup")
        if info.data_structure == "gcs":
            required = int(self.set_size / (self._fpr / self.set_size))  # as openmined-psi sizes it
            if info.hash_range < required:
                looser = self.set_size**2 / info.hash_range if info.hash_range > 0 else 1.0
                raise ContractError(
                    f"{what}: its setup allows a false-positive rate of about {looser:.2g}, above the "
                    f"agreed fpr {self._fpr:g}; coordinator and partner must use the same psi fpr"
                )
        psi = psi_extension()
        try:
            indices = self._client.GetIntersection(
                psi.cpp_proto_server_setup.Load(bytes(setup)), psi.cpp_proto_response.Load(bytes(response))
            )
        except (RuntimeError, ValueError) as err:
            raise ContractError(f"{what}: openmined-psi cannot read it ({err})") from None
        return sorted({self._keys[i] for i in indices})


def partner_reply(
    own_keys: Sequence[Key],
    request: bytes,
    coordinator_set_size: int,
    fpr: float = DEFAULT_FPR,
    *,
    source: str = "partner keys",
) -> PsiReply:
    """The partner's side: answer the coordinator's request under a fresh key.

    An empty own key set is refused rather than answered: it would make the whole alignment empty, and
    it almost always means the node's feature block was not built."""
    fpr = check_fpr(fpr)
    items = encode_keys(own_keys, source)
    size = coordinator_set_size
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ContractError(f"PSI request: coordinator set size must be a positive integer, got {size!r}")
    sent = _count_elements(request, 2, "PSI request")
    if sent != coordinator_set_size:
        raise ContractError(
            f"PSI request: holds {sent} encrypted keys but the coordinator declared {coordinator_set_size}"
        )
    psi = psi_extension()
    server = psi.cpp_server.CreateWithNewKey(True)
    larger = max(coordinator_set_size, len(items))
    use_gcs = larger / (fpr / coordinator_set_size) < _GCS_HASH_RANGE_LIMIT
    structure = psi.data_structure.GCS if use_gcs else psi.data_structure.Raw
    try:
        setup = bytes(server.CreateSetupMessage(fpr, coordinator_set_size, items, structure).save())
        response = bytes(server.ProcessRequest(psi.cpp_proto_request.Load(bytes(request))).save())
    except (RuntimeError, ValueError) as err:
        raise ContractError(f"PSI request: openmined-psi cannot answer it ({err})") from None
    info = describe_setup(setup)
    bound = 0.0
    if info.data_structure == "gcs":
        # Expected false matches: each coordinator key hits one of len(items) hashes in hash_range.
        bound = coordinator_set_size * len(items) / info.hash_range if info.hash_range > 0 else math.inf
        if bound > fpr * (1 + 1e-9):  # a bug, never a user mistake: do not send such a setup
            raise RuntimeError(f"PSI setup with hash range {info.hash_range} does not honour fpr {fpr:g}")
    return PsiReply(
        setup=setup,
        response=response,
        revealed_set_size=len(items),
        data_structure=info.data_structure,
        false_positive_bound=bound,
    )
