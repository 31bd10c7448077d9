"""Every corpus document to every format: output that re-reads, and no unexplained drift."""

from __future__ import annotations

from pathlib import Path

import pytest

from polyfence import api
from polyfence.errors import InputError
from polyfence.fidelity import Feature

TARGETS = ("kubernetes", "calico", "cilium", "canonical")
INTENDED_ERRORS = {  # precise input errors, tested where they are explained
    "gnp-namespaceselector-in-set.yaml",
    "gnp-selector-projectcalico-namespace-in-set.yaml",
    "l3-match-expressions-and.yaml",
    "l3-match-expressions-or.yaml",
}


def corpus() -> list[Path]:
    from tests.conftest import SHARED

    return [
        p
        for kind in ("k8s", "calico", "cilium")
        for p in sorted((SHARED / "corpus" / kind).glob("*.yaml"))
    ]


@pytest.mark.parametrize("path", corpus(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_format(path: Path, shared: Path) -> None:
    if path.name in INTENDED_ERRORS:
        with pytest.raises(InputError):
            api.load([str(path)])
        return
    bundle = api.load([str(path)])
    for target in TARGETS:
        # Re-reading the output inside convert raises InputError if the output were invalid.
        result = api.convert(bundle, target, allow_widening=True)
        unexplained = [loss for loss in result.report.losses if loss.feature is Feature.UNEXPLAINED]
        assert not unexplained, (target, [str(loss) for loss in unexplained])
