"""The class-based engine against brute-force enumeration of every connection.

On small generated inventories, every (source, destination, protocol, port) is decided once by
the single-connection ``verdict`` and once through ``Connectivity`` (endpoint classes and
interval sets); they must agree, and ``compare`` must agree with the brute-force difference.
Policies come from random Kubernetes documents, then get random deny/pass/log actions,
tiers and orders, so the general tier machinery is exercised too.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from polyfence.inventory import Endpoint, Inventory
from polyfence.model.policy import PolicySet
from polyfence.semantics.compare import Relation, compare
from polyfence.semantics.engine import Connectivity, Universe
from polyfence.semantics.profile import EvaluationProfile, HostNetworkMode
from polyfence.semantics.verdict import Connection, verdict
from tests.strategies import PORTS, general_sets, inventories, k8s_policy_lists, to_ir

pytestmark = pytest.mark.property

EXTERNAL = ("10.1.2.200", "10.200.0.1", "192.168.1.1", "8.8.8.8", "fd00::1", "2001:db8::1")
PROBES = [(6, p) for p in (*PORTS, 81, 444, 8480, 1)] + [
    (17, 53),
    (17, 80),
    (132, 80),
    (1, 8 * 256),
    (47, None),
]


def _remotes(inv: Inventory) -> list[Endpoint | str]:
    return [*inv.endpoints, *EXTERNAL]


def _class_of(u: Universe, side: Endpoint | str) -> int:
    for cls in u.classes:
        if isinstance(side, Endpoint):
            if any(m is side for m in cls.members):
                return cls.index
        elif cls.external is not None and side in cls.external:
            return cls.index
    raise AssertionError(f"no class for {side}")


def _brute_force_agrees(ps: PolicySet, inv: Inventory, profile: EvaluationProfile) -> None:
    universe = Universe(inv, [ps], profile)
    conn = Connectivity(universe, ps)
    sides = _remotes(inv)
    for src in sides:
        for dst in sides:
            if isinstance(src, str) and isinstance(dst, str):
                continue
            if src is dst:
                continue
            if isinstance(src, Endpoint) and src.kind == "Node" and isinstance(dst, Endpoint):
                continue  # node-to-local-pod exemption is per pod, not per class
            allowed = conn.allowed(_class_of(universe, src), _class_of(universe, dst))
            for proto, port in PROBES:
                expected = verdict(ps, Connection(src, dst, proto, port), inv, profile).allowed
                got = allowed.contains(proto, port)
                assert got == expected, (
                    src,
                    dst,
                    proto,
                    port,
                    verdict(ps, Connection(src, dst, proto, port), inv, profile).explain(),
                )


@settings(max_examples=60, deadline=None)
@given(
    docs=k8s_policy_lists(),
    inv=inventories(),
    ipblock_pods=st.booleans(),
    ipblock_nodes=st.booleans(),
    host_network=st.sampled_from(list(HostNetworkMode)),
)
def test_connectivity_matches_verdicts_kubernetes(
    docs: list[dict[str, Any]],
    inv: Inventory,
    ipblock_pods: bool,
    ipblock_nodes: bool,
    host_network: HostNetworkMode,
) -> None:
    profile = EvaluationProfile(
        ipblock_matches_pods=ipblock_pods,
        ipblock_matches_nodes=ipblock_nodes,
        host_network=host_network,
    )
    _brute_force_agrees(to_ir(docs), inv, profile)


@settings(max_examples=60, deadline=None)
@given(ps=general_sets(), inv=inventories())
def test_connectivity_matches_verdicts_tiers_deny_pass(ps: PolicySet, inv: Inventory) -> None:
    _brute_force_agrees(ps, inv, EvaluationProfile())


@settings(max_examples=40, deadline=None)
@given(a=general_sets(), b=general_sets(), inv=inventories())
def test_compare_matches_brute_force(a: PolicySet, b: PolicySet, inv: Inventory) -> None:
    profile = EvaluationProfile()
    only_a = only_b = False
    sides = _remotes(inv)
    for src in sides:
        for dst in sides:
            if (isinstance(src, str) and isinstance(dst, str)) or src is dst:
                continue
            if isinstance(src, Endpoint) and src.kind == "Node" and isinstance(dst, Endpoint):
                continue
            for proto, port in PROBES:
                c = Connection(src, dst, proto, port)
                va, vb = verdict(a, c, inv, profile).allowed, verdict(b, c, inv, profile).allowed
                only_a |= va and not vb
                only_b |= vb and not va
    result = compare(a, b, inv, profile)
    # Probes are a subset of all ports, so brute force can only prove differences exist.
    if only_a:
        assert result.relation in (Relation.NARROWER, Relation.INCOMPARABLE)
    if only_b:
        assert result.relation in (Relation.WIDER, Relation.INCOMPARABLE)
    if result.relation is Relation.EQUIVALENT:
        assert not only_a and not only_b
    for w in result.witnesses:
        side = a if w.allowed_by == "a" else b
        other = b if w.allowed_by == "a" else a
        src = inv.find(w.src) or w.src
        dst = inv.find(w.dst) or w.dst
        from polyfence.model.ports import protocol_number

        c = Connection(src, dst, protocol_number(w.protocol), w.port)
        assert verdict(side, c, inv, profile).allowed
        assert not verdict(other, c, inv, profile).allowed
