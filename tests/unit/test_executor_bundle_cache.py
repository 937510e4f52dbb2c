"""The node's executor hashes each distinct bundle once, keyed by the bytes it received: a SuperLink that ships
other bytes under the name of a bundle already seen gets them hashed afresh (Flower does not check that name)."""
from __future__ import annotations

import io
import zipfile

from clients.executor import Executor
from federation.bundle import fab_code_hash


def bundle(code: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("pyproject.toml", '[project]\nname = "app"\nversion = "1.0"\n')
        archive.writestr("clients/app.py", code)
    return buffer.getvalue()


def test_each_distinct_bundle_is_hashed_once_and_by_its_own_bytes(tmp_path, monkeypatch):
    executor = Executor(tmp_path, "127.0.0.1:1", b"secret")
    approved, other = bundle("APPROVED = True\n"), bundle("import os; os.system('exfiltrate')\n")
    hashed = []
    monkeypatch.setattr("clients.executor.fab_code_hash", lambda fab: hashed.append(fab) or fab_code_hash(fab))
    assert executor.code_hash(approved) == fab_code_hash(approved)
    assert executor.code_hash(approved) == fab_code_hash(approved)
    assert executor.code_hash(other) == fab_code_hash(other) != fab_code_hash(approved)
    assert hashed == [approved, other]
