"""The symbolic (BDD) every-cluster verdict against the universal inventory.

Random policy sets with everything the network layer carries — tiers with deny and pass ends,
orders, allow/deny/pass/log actions, isolating and non-isolating directions, cluster-wide
subjects, local-side constraints, network sets (global and namespaced), notSelector peers,
entities, ipBlocks, selectors on the reserved namespace/account/kind keys — are compared
both ways: by ``semantics.bdd`` and by running the engine on the universal inventory. Every
difference the enumeration finds must be found symbolically, and every symbolic counterexample
must reproduce on its own cluster (the symbolic procedure finds differences the universal
inventory misses: it has documented gaps, see the README).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from polyfence.model.policy import PolicySet
from polyfence.semantics import bdd
from polyfence.semantics.compare import compare, compare_every_cluster
from polyfence.semantics.profile import PROFILES, EvaluationProfile
from polyfence.semantics.universe import Bound, Undecided
from tests.property.test_engine_mesh import mixed_sets
from tests.strategies import general_sets
from tests.strategies_istio import istio_policy_lists
from tests.translators.test_aws import read as read_sg
from tests.translators.test_aws import sg_documents

pytestmark = pytest.mark.property

UNIVERSE_BOUND = Bound(max_endpoints=3000, seconds=20)


@settings(
    max_examples=int(os.environ.get("POLYFENCE_BDD_EXAMPLES", "100")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    a=general_sets(),
    b=general_sets(),
    mutate=st.sampled_from(("independent", "one-policy", "reordered")),
    profile_name=st.sampled_from(("kubernetes", "cilium")),
)
def test_symbolic_verdict_agrees_with_the_universal_inventory(
    a: PolicySet, b: PolicySet, mutate: str, profile_name: str
) -> None:
    # Near-misses are where completeness bites: B is often A with one policy changed, or A
    # with its policies' orders shuffled (same rules, another first match).
    b = _mutated(a, b, mutate)
    profile = PROFILES[profile_name]
    why = bdd.out_of_scope([a, b])
    if why is not None:
        event("out of the symbolic scope")
        result = compare_every_cluster(a, b, profile, UNIVERSE_BOUND)
        assert result.basis is not None and result.basis.fallback == why
        return
    _agrees(a, b, profile)


def _mutated(a: PolicySet, b: PolicySet, mutate: str) -> PolicySet:
    if mutate == "one-policy" and a.policies and b.policies:
        return dataclasses.replace(a, policies=(*a.policies[:-1], b.policies[0]))
    if mutate == "reordered":
        orders = [p.order for p in a.policies]
        return dataclasses.replace(
            a,
            policies=tuple(
                dataclasses.replace(p, order=o)
                for p, o in zip(a.policies, reversed(orders), strict=True)
            ),
        )
    return b


def _agrees(a: PolicySet, b: PolicySet, profile: EvaluationProfile) -> None:
    """Decided symbolically; every counterexample reproduces on its own cluster (through the
    single-connection verdict); every difference the universal inventory finds is found."""
    assert bdd.out_of_scope([a, b]) is None
    symbolic = compare_every_cluster(a, b, profile)
    assert symbolic.basis is not None and symbolic.basis.method == "symbolic"
    event(f"relation: {symbolic.relation.value}")
    for cex in symbolic.counterexamples:
        on_cluster = compare(a, b, cex.inventory, profile)
        assert cex.witness.allowed_by in {w.allowed_by for w in on_cluster.witnesses}, cex.yaml()
    try:
        enumerated = compare_every_cluster(a, b, profile, UNIVERSE_BOUND, symbolic=False)
    except Undecided:
        event("universal inventory over its bound")
        return
    found = {w.allowed_by for w in symbolic.witnesses}
    assert {w.allowed_by for w in enumerated.witnesses} <= found, (
        symbolic.to_dict(),
        enumerated.to_dict(),
    )
    if symbolic.relation is not enumerated.relation:
        event("symbolic finds a difference the universal inventory misses")


@settings(
    max_examples=int(os.environ.get("POLYFENCE_BDD_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    a=mixed_sets(),
    b=mixed_sets(),
    mutate=st.sampled_from(("independent", "one-policy", "reordered")),
    default=st.sampled_from(("PERMISSIVE", "STRICT", "DISABLE")),
)
def test_mesh_layer_symbolic_verdict_agrees_with_the_universal_inventory(
    a: PolicySet, b: PolicySet, mutate: str, default: str
) -> None:
    """Mesh (Istio) policies beside network ones: principals with wildcards and negations,
    certificate namespaces, ipBlocks, HTTP fields, ALLOW/DENY, under each default mTLS mode."""
    _agrees(a, _mutated(a, b, mutate), EvaluationProfile(mtls_default=default))


@settings(
    max_examples=int(os.environ.get("POLYFENCE_BDD_EXAMPLES", "40")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    a=istio_policy_lists(),
    b=istio_policy_lists(),
    mutate=st.sampled_from(("independent", "one-policy")),
)
def test_istio_documents_symbolic_verdict_agrees_with_the_universal_inventory(
    a: list[dict[str, Any]], b: list[dict[str, Any]], mutate: str
) -> None:
    """AuthorizationPolicies as istiod reads them (root-namespace policies, AUDIT, `when`)."""
    set_a, set_b = _istio(a), _istio(b)
    _agrees(set_a, _mutated(set_a, set_b, mutate), PROFILES["kubernetes"])


@settings(
    max_examples=int(os.environ.get("POLYFENCE_BDD_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    a=sg_documents(),
    b=sg_documents(),
    network=st.none() | general_sets(),
    mutate=st.sampled_from(("independent", "one-policy")),
    profile=st.sampled_from(
        (
            PROFILES["aws"],
            PROFILES["aws-standard"],
            PROFILES["aws-standard"].but(vpc_cidrs=("10.0.0.0/8", "fd00::/8")),
        )
    ),
)
def test_cloud_layer_symbolic_verdict_agrees_with_the_universal_inventory(
    a: list[dict[str, Any]],
    b: list[dict[str, Any]],
    network: PolicySet | None,
    mutate: str,
    profile: EvaluationProfile,
) -> None:
    """Security groups (bound by SecurityGroupPolicies or not, group references, CIDRs,
    protocols) ANDed with a network layer, under the strict and standard enforcing modes."""
    set_a, set_b = read_sg(a), read_sg(b)
    if network is not None:
        set_a = set_a.merge(network)
    _agrees(set_a, _mutated(set_a, set_b, mutate), profile)


def _istio(docs: list[dict[str, Any]]) -> PolicySet:
    from polyfence.model.document import Document
    from polyfence.model.provenance import SourceRef
    from polyfence.translators.istio import IstioTranslator

    wrapped = [Document(d, SourceRef("gen", i)) for i, d in enumerate(docs)]
    return IstioTranslator().to_canonical(wrapped).value
