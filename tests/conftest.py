"""The test suite's tiers and shared fixtures.

`tests/unit` checks one module at a time, `tests/integration` runs federations in one process (the
in-process grid, the CLI called as a function, the simulation engine), `tests/engine` starts Flower's real
programs (SuperLink, SuperNodes) as processes on loopback. Each test is marked with its tier from its folder,
so `pytest -m "not engine"` (what `make test-fast` runs) needs no path. Helpers that build node directories,
contracts and reports live in `tests/support/`.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.exclusive import one_at_a_time

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
TIERS = ("unit", "integration", "engine")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test with the tier its folder names; a test outside the tiers is an error."""
    for item in items:
        parts = Path(str(item.fspath)).resolve().relative_to(TESTS).parts
        tier = parts[0] if len(parts) > 1 else None
        if tier not in TIERS:
            raise pytest.UsageError(f"{item.nodeid}: a test lives in one of tests/{{{','.join(TIERS)}}}/")
        item.add_marker(getattr(pytest.mark, tier))


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The checkout the tests run from (configs/, pyproject.toml, docs/)."""
    return REPO


@pytest.fixture
def one_ray_cluster():
    """Flower's simulation engine (a Ray cluster) in this test only: no other test on the machine starts one
    until it ends (`tests/support/exclusive.py`)."""
    with one_at_a_time("ray"):
        yield
