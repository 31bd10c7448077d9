"""Every corpus document to every format: output that re-reads, and no unexplained drift."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from polyfence import api
from polyfence.errors import InputError
from polyfence.fidelity import Feature
from polyfence.inventory import Inventory
from polyfence.model.policy import PolicySet
from tests.conftest import corpus_files
from tests.strategies import general_sets, inventories

TARGETS = ("kubernetes", "calico", "cilium", "istio", "canonical")
INTENDED_ERRORS = {  # precise input errors, tested where they are explained
    "gnp-namespaceselector-in-set.yaml",
    "gnp-selector-projectcalico-namespace-in-set.yaml",
    "l3-match-expressions-and.yaml",
    "l3-match-expressions-or.yaml",
}


def corpus() -> list[Path]:
    return [p for kind in ("k8s", "calico", "cilium", "istio") for p in corpus_files(kind)]


@pytest.mark.parametrize("path", corpus(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_format(path: Path) -> None:
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


@settings(max_examples=60, deadline=None)
@given(ir=general_sets(), inv=inventories(), target=st.sampled_from(TARGETS[:4]))
def test_no_writer_drifts_silently(ir: PolicySet, inv: Inventory, target: str) -> None:
    """Whatever a writer changes, a loss of that effect says so (verified on the cluster)."""
    result = api.convert(ir, target, inventory=inv, allow_widening=True)
    unexplained = [loss for loss in result.report.losses if loss.feature is Feature.UNEXPLAINED]
    assert not unexplained, [str(loss) for loss in result.report.losses]
