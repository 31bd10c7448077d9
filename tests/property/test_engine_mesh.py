"""The proxy (Istio) layer: class engine against single-connection verdicts on generated meshes.

Inventories get random mesh membership, mTLS modes and ports declared as plain TCP; policy sets
mix network-layer policies with proxy-layer ALLOW/DENY policies whose peers use principals,
namespaces and IPs and whose rules may carry HTTP fields, so STRICT refusal, identity only on
mTLS, TCP-only enforcement and HTTP-fields-on-TCP are all exercised against each other.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from polyfence.inventory import Inventory, build_inventory
from polyfence.model.peers import ANY_PEER, IpMatch, Peer, PrincipalMatch
from polyfence.model.policy import (
    NOT_GOVERNED,
    Action,
    Governed,
    HttpMatch,
    L7Match,
    Layer,
    Policy,
    PolicyId,
    PolicySet,
    Rule,
    Subject,
)
from polyfence.model.ports import ANY_PORTS, PortSpec, Protocol
from polyfence.model.selectors import All, Eq
from polyfence.semantics.intervals import IntervalSet
from polyfence.semantics.profile import EvaluationProfile
from tests.property.test_engine_bruteforce import _brute_force_agrees
from tests.strategies import PORTS, general_sets, inventories

pytestmark = pytest.mark.property

MODES = (None, "STRICT", "PERMISSIVE", "DISABLE")
PRINCIPALS = (
    "cluster.local/ns/ns-a/sa/default",
    "cluster.local/ns/ns-b/*",
    "*/sa/sa1",
    "*",
    "other.domain/ns/ns-a/sa/default",
)


@st.composite
def meshes(draw: Any) -> Inventory:
    inv = draw(inventories())
    endpoints = []
    for ep in inv.endpoints:
        if ep.is_pod and draw(st.booleans()):
            ep = dataclasses.replace(
                ep,
                mesh=True,
                mtls=draw(st.sampled_from(MODES)),
                opaque_ports=tuple(sorted(draw(st.sets(st.sampled_from(PORTS), max_size=2)))),
            )
        endpoints.append(ep)
    return build_inventory(inv.namespaces, endpoints, inv.services, inv.service_account_labels)


@st.composite
def mesh_peers(draw: Any) -> Peer:
    principal = PrincipalMatch(
        principals=draw(st.none() | st.frozensets(st.sampled_from(PRINCIPALS), min_size=1)),
        not_principals=draw(st.frozensets(st.sampled_from(PRINCIPALS), max_size=1)),
        namespaces=draw(st.none() | st.frozensets(st.sampled_from(("ns-a", "ns-b", "ns-*")))),
        not_namespaces=draw(st.frozensets(st.sampled_from(("ns-a", "*")), max_size=1)),
    )
    ip = draw(
        st.none() | st.sampled_from((IpMatch(("10.0.0.0/8",)), IpMatch(None, ("10.1.0.0/16",))))
    )
    return Peer(principal=principal, ip=ip)


@st.composite
def mesh_rules(draw: Any, action: Action) -> Rule:
    peers = draw(st.just(ANY_PEER) | st.lists(mesh_peers(), min_size=1, max_size=2).map(tuple))
    ports = draw(
        st.just(ANY_PORTS)
        | st.sets(st.sampled_from(PORTS), min_size=1, max_size=2).map(
            lambda ps: (
                PortSpec.single(
                    Protocol.TCP, IntervalSet.union_all(IntervalSet.point(p) for p in ps)
                ),
            )
        )
    )
    l7 = draw(st.none() | st.just(L7Match(http=(HttpMatch(methods=frozenset({"GET"})),))))
    return Rule(action, peers, ports, l7)


@st.composite
def mesh_policies(draw: Any, index: int) -> Policy:
    action = draw(st.sampled_from((Action.ALLOW, Action.DENY)))
    ns = draw(st.sampled_from((None, "ns-a", "ns-b")))
    subject = (
        Subject(None, All(), namespace_selector=All())
        if ns is None
        else Subject(ns, draw(st.sampled_from((All(), Eq("app", "x")))))
    )
    rules = tuple(draw(st.lists(mesh_rules(action), max_size=3)))
    return Policy(
        PolicyId("istio", ns, f"ap{index}"),
        subject,
        Governed(rules, isolates=action is Action.ALLOW),
        NOT_GOVERNED,
        order=100.0 if action is Action.DENY else 200.0,
        layer=Layer.L7,
    )


@st.composite
def mixed_sets(draw: Any) -> PolicySet:
    network = draw(st.none() | general_sets())
    count = draw(st.integers(0, 3))
    proxy = PolicySet(tuple(draw(mesh_policies(i)) for i in range(count)))
    return proxy if network is None else network.merge(proxy)


@settings(max_examples=80, deadline=None)
@given(ps=mixed_sets(), inv=meshes(), default=st.sampled_from(("PERMISSIVE", "STRICT")))
def test_proxy_layer_matches_verdicts(ps: PolicySet, inv: Inventory, default: str) -> None:
    _brute_force_agrees(ps, inv, EvaluationProfile(mtls_default=default))
