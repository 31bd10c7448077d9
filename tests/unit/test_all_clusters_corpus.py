"""Corpus translations on every cluster: the symbolic procedure against the enumeration.

Every Kubernetes, Calico and Cilium corpus file is converted to Kubernetes, Calico and Cilium
(widening accepted, so every pair is judged). The verification of each conversion is decided on
every cluster, symbolically whenever the sets are in its scope; where the universal inventory
also decides (within a small bound), the two methods reach the same relation, so translations
that verified as equivalent before the symbolic procedure still do, and any difference comes
with a counterexample cluster that reproduces.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import polyfence
from polyfence.api import load
from polyfence.errors import InputError
from polyfence.semantics import bdd
from polyfence.semantics.compare import BasisKind, compare, compare_every_cluster
from polyfence.semantics.universe import Bound, Undecided
from tests.conftest import corpus_files

FILES = [*corpus_files("k8s"), *corpus_files("calico"), *corpus_files("cilium")]
TARGETS = ("kubernetes", "calico", "cilium")
SMALL = Bound(max_endpoints=400, seconds=5)
# Published examples the vendors' own validators refuse (ports without a protocol, Cilium's
# lower-case operators): refused here too, so there is no translation to verify.
INVALID = {
    "gnp-namespaceselector-in-set.yaml",
    "gnp-selector-projectcalico-namespace-in-set.yaml",
    "l3-match-expressions-and.yaml",
    "l3-match-expressions-or.yaml",
}


@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_corpus_verification_on_every_cluster(path: Path) -> None:
    if path.name in INVALID:
        with pytest.raises(InputError):
            load([str(path)])
        return
    bundle = load([str(path)])
    for target in TARGETS:
        result = polyfence.convert(bundle, to=target, allow_widening=True)
        ver = result.report.verification
        a, b = bundle.policies, result.policies
        if bdd.out_of_scope([a, b]) is not None:
            # The enumeration's verdict is evidence, not a proof, and says so.
            assert ver is not None and ver.basis == "universal-inventory", (target, ver)
            assert ver.relation != "equivalent" or "not a proof" in ver.basis_text
            continue
        assert ver is not None and ver.basis == "every-cluster", (target, ver)
        symbolic = compare_every_cluster(a, b)
        assert symbolic.basis is not None and symbolic.basis.method == "symbolic"
        assert ver.relation == symbolic.relation.value, (target, ver)
        for cex in symbolic.counterexamples:
            on_cluster = compare(a, b, cex.inventory)
            assert on_cluster.basis is not None and on_cluster.basis.kind is BasisKind.GIVEN
            assert cex.witness.allowed_by in {w.allowed_by for w in on_cluster.witnesses}
        try:
            enumerated = compare_every_cluster(a, b, bound=SMALL, symbolic=False)
        except Undecided:
            continue
        assert {w.allowed_by for w in enumerated.witnesses} <= {
            w.allowed_by for w in symbolic.witnesses
        }, (target, enumerated.to_dict(), symbolic.to_dict())


LAYER_FILES = [*corpus_files("istio"), *corpus_files("aws")]
LAYER_TARGETS = {"istio": ("istio", "kubernetes"), "aws": ("aws", "kubernetes")}


@pytest.mark.parametrize("path", LAYER_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_mesh_and_cloud_corpus_verification_on_every_cluster(path: Path) -> None:
    """Istio and AWS corpus files, written back in their own format and converted to
    Kubernetes (widening accepted): each verification is decided symbolically on every cluster,
    the written-back set is equivalent to its source, and each difference comes with a
    counterexample that reproduces on its own cluster."""
    try:
        bundle = load([str(path)])
    except InputError:
        pytest.fail(f"{path.name} is refused")
    for target in LAYER_TARGETS[path.parent.name]:
        result = polyfence.convert(bundle, to=target, allow_widening=True)
        ver = result.report.verification
        a, b = bundle.policies, result.policies
        assert bdd.out_of_scope([a, b]) is None
        assert ver is not None and ver.basis == "every-cluster", (target, ver)
        symbolic = compare_every_cluster(a, b)
        assert symbolic.basis is not None and symbolic.basis.method == "symbolic"
        assert ver.relation == symbolic.relation.value, (target, ver)
        if target == path.parent.name:
            assert ver.relation == "equivalent", (target, symbolic.to_dict())
        for cex in symbolic.counterexamples:
            on_cluster = compare(a, b, cex.inventory)
            assert cex.witness.allowed_by in {w.allowed_by for w in on_cluster.witnesses}
