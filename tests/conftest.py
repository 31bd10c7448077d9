"""Test data and hypothesis profiles.

The corpus and upstream schemas the tests read live in ``tests/data`` (provenance in
``tests/data/SOURCES.md``), so a clone tests on its own with nothing beside it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", deadline=None)
settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev")
)

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"


def corpus_files(kind: str, pattern: str = "*.yaml") -> list[Path]:
    """The corpus files of one format, sorted.

    Parametrised tests collect from this at import time; an empty or missing folder raises so
    that such a test errors at collection instead of silently collecting nothing.
    """
    folder = DATA / "corpus" / kind
    files = sorted(p for p in folder.glob(pattern) if p.is_file())
    if not files:
        raise FileNotFoundError(f"no corpus files matching {pattern} in {folder}")
    return files


@pytest.fixture(scope="session")
def data() -> Path:
    """``tests/data``: the corpus and the upstream schemas."""
    return DATA
