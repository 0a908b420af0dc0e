"""Shared fixtures: one sandbox per test module, on free loopback ports, with a frozen clock."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from sandbox.generator import PRESETS, District
from sandbox.process import running_sandbox, set_faults

# Friday 2026-11-20, after the district's last upload of the day
NOW = datetime(2026, 11, 20, 23, 0, tzinfo=UTC)
WEEK = (date(2026, 11, 16), date(2026, 11, 20))


@pytest.fixture(scope="module")
def sandbox():
    with running_sandbox("--now", NOW.isoformat(), "--districts", "springfield,shelbyville,tiny") as info:
        yield info


@pytest.fixture(autouse=True)
def _faults_off(request):
    """Every test starts with the sandbox's faults off, whatever the previous test set."""
    yield
    if "sandbox" in request.fixturenames:
        info = request.getfixturevalue("sandbox")
        set_faults(info, "clever")
        set_faults(info, "upload")


@pytest.fixture(scope="session")
def districts() -> dict[str, District]:
    return {slug: District(PRESETS[slug]) for slug in ("springfield", "shelbyville", "tiny")}
