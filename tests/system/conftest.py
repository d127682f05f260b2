"""Fixtures of the system tests: a throwaway PostgreSQL cluster they may stop and start."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.system.pgcluster import ThrowawayCluster


@pytest.fixture
def cluster() -> Iterator[ThrowawayCluster]:
    """A running throwaway cluster (initdb + pg_ctl on a spare port), destroyed afterwards."""
    pg = ThrowawayCluster()
    pg.create()
    pg.start()
    yield pg
    pg.destroy()
