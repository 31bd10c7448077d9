"""Hypothesis strategies: small inventories and Kubernetes NetworkPolicy documents.

Alphabets are tiny on purpose so that selectors, namespaces and CIDRs collide often with the
generated endpoints (decoys included: pods sharing labels across namespaces, unlabelled
namespaces, addresses inside and outside every CIDR).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from hypothesis import strategies as st

from polyfence.inventory import Endpoint, Inventory, NamedPort, Namespace, build_inventory
from polyfence.model.document import Document
from polyfence.model.policy import Action, Governed, Policy, PolicySet, Tier
from polyfence.model.provenance import SourceRef

NAMESPACES = ("ns-a", "ns-b", "ns-c")
KEYS = ("app", "tier")
VALUES = ("x", "y")
PORT_NAMES = ("http", "dns")
CIDRS = ("10.0.0.0/8", "10.1.0.0/16", "10.1.2.0/24", "192.168.0.0/16", "0.0.0.0/0", "fd00::/8")
SUBNETS = {
    "10.0.0.0/8": ["10.1.0.0/16", "10.2.0.0/16", "10.1.2.0/24"],
    "10.1.0.0/16": ["10.1.2.0/24", "10.1.3.0/24"],
    "10.1.2.0/24": ["10.1.2.0/25"],
    "192.168.0.0/16": ["192.168.1.0/24"],
    "0.0.0.0/0": ["10.0.0.0/8", "192.168.0.0/16"],
    "fd00::/8": ["fd00::/16"],
}
POD_IPS = ("10.1.2.3", "10.1.3.4", "10.2.0.5", "10.9.0.6", "192.168.1.7", "172.16.0.8", "fd00::9")
PORTS = (53, 80, 443, 8080)

labels_st = st.dictionaries(st.sampled_from(KEYS), st.sampled_from(VALUES), max_size=2)


@st.composite
def inventories(draw: Any) -> Inventory:
    ns_labels = {
        ns: draw(
            st.dictionaries(st.sampled_from(("team", "env")), st.sampled_from(VALUES), max_size=2)
        )
        for ns in NAMESPACES
    }
    n = draw(st.integers(2, 6))
    pods = []
    for i in range(n):
        ns = draw(st.sampled_from(NAMESPACES))
        named = draw(
            st.lists(
                st.tuples(
                    st.sampled_from(PORT_NAMES), st.sampled_from((6, 17)), st.sampled_from(PORTS)
                ),
                max_size=2,
                unique_by=lambda t: (t[0], t[1]),
            )
        )
        pods.append(
            Endpoint(
                "Pod",
                ns,
                f"p{i}",
                draw(labels_st),
                "default",
                (POD_IPS[i % len(POD_IPS)],),
                tuple(NamedPort(a, b, c) for a, b, c in named),
                draw(st.sampled_from(("node-1", "node-2"))),
                draw(st.sampled_from((False, False, False, True))),  # hostNetwork now and then
            )
        )
    nodes = [
        Endpoint("Node", None, "node-1", {}, None, ("172.20.0.1",)),
        Endpoint("Node", None, "node-2", {}, None, ("172.20.0.2",)),
    ]
    return build_inventory([Namespace(k, v) for k, v in ns_labels.items()], [*pods, *nodes])


def _selector(draw: Any, allow_expressions: bool = True) -> dict[str, Any]:
    sel: dict[str, Any] = {}
    labels = draw(labels_st)
    if labels:
        sel["matchLabels"] = labels
    if allow_expressions and draw(st.booleans()):
        op = draw(st.sampled_from(("In", "NotIn", "Exists", "DoesNotExist")))
        expr: dict[str, Any] = {"key": draw(st.sampled_from(KEYS)), "operator": op}
        if op in ("In", "NotIn"):
            expr["values"] = draw(
                st.lists(st.sampled_from(VALUES), min_size=1, max_size=2, unique=True)
            )
        sel["matchExpressions"] = [expr]
    return sel


@st.composite
def k8s_peers(draw: Any) -> dict[str, Any]:
    kind = draw(st.sampled_from(("pod", "ns", "both", "ip", "ip")))
    if kind == "ip":
        cidr = draw(st.sampled_from(CIDRS))
        block: dict[str, Any] = {"cidr": cidr}
        excepts = draw(st.lists(st.sampled_from(SUBNETS[cidr]), max_size=2, unique=True))
        if excepts:
            block["except"] = excepts
        return {"ipBlock": block}
    peer: dict[str, Any] = {}
    if kind in ("pod", "both"):
        peer["podSelector"] = _selector(draw)
    if kind in ("ns", "both"):
        ns_sel = draw(
            st.one_of(
                st.just({}),
                st.builds(lambda v: {"matchLabels": {"team": v}}, st.sampled_from(VALUES)),
                st.builds(
                    lambda n: {"matchLabels": {"kubernetes.io/metadata.name": n}},
                    st.sampled_from(NAMESPACES),
                ),
            )
        )
        peer["namespaceSelector"] = ns_sel
    return peer


@st.composite
def k8s_ports(draw: Any) -> dict[str, Any]:
    port: dict[str, Any] = {}
    proto = draw(st.sampled_from((None, "TCP", "UDP", "SCTP")))
    if proto:
        port["protocol"] = proto
    kind = draw(st.sampled_from(("none", "num", "range", "named")))
    if kind == "num":
        port["port"] = draw(st.sampled_from(PORTS))
    elif kind == "range":
        lo = draw(st.sampled_from(PORTS))
        port["port"] = lo
        port["endPort"] = lo + draw(st.sampled_from((0, 1, 400, 8000)))
    elif kind == "named":
        port["port"] = draw(st.sampled_from(PORT_NAMES))
    return port


@st.composite
def k8s_rules(draw: Any, peer_key: str) -> dict[str, Any]:
    rule: dict[str, Any] = {}
    if draw(st.integers(0, 3)):
        rule[peer_key] = draw(st.lists(k8s_peers(), min_size=0, max_size=2))
    if draw(st.booleans()):
        rule["ports"] = draw(st.lists(k8s_ports(), min_size=0, max_size=2))
    return rule


@st.composite
def k8s_policies(draw: Any, index: int = 0) -> dict[str, Any]:
    spec: dict[str, Any] = {"podSelector": _selector(draw)}
    types = draw(st.sampled_from((None, ["Ingress"], ["Egress"], ["Ingress", "Egress"])))
    if types is not None:
        spec["policyTypes"] = types
    if draw(st.booleans()):
        spec["ingress"] = draw(st.lists(k8s_rules("from"), max_size=2))
    if draw(st.booleans()):
        spec["egress"] = draw(st.lists(k8s_rules("to"), max_size=2))
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": f"pol-{index}", "namespace": draw(st.sampled_from(NAMESPACES))},
        "spec": spec,
    }


@st.composite
def k8s_policy_lists(draw: Any, max_size: int = 3) -> list[dict[str, Any]]:
    n = draw(st.integers(0, max_size))
    return [draw(k8s_policies(i)) for i in range(n)]


def to_ir(docs: list[dict[str, Any]]) -> PolicySet:
    wrapped = [Document(d, SourceRef("gen", i)) for i, d in enumerate(docs)]
    return _k8s().to_canonical(wrapped).value


@st.composite
def general_sets(draw: Any) -> PolicySet:
    """k8s-derived policies with random actions, isolation flags, tiers, orders, local-side
    constraints, network-set selection and selectors on the reserved pseudo-labels."""
    from polyfence.model.labels import KIND_KEY, NAMESPACE_KEY, SERVICE_ACCOUNT_KEY
    from polyfence.model.peers import IpMatch, NetworkSet, Peer
    from polyfence.model.selectors import Eq, Global, Has, In, not_

    ps = to_ir(draw(k8s_policy_lists()))
    tiers = (
        Tier("security", 10.0, Action.DENY),
        Tier("platform", 20.0, Action.PASS),
        Tier("default"),
    )
    pseudo = st.sampled_from(
        (
            Eq(NAMESPACE_KEY, "ns-a"),
            In(NAMESPACE_KEY, frozenset({"ns-b", "ns-c"})),
            Eq(SERVICE_ACCOUNT_KEY, "default"),
            Eq(KIND_KEY, "network-set"),
            not_(Has(NAMESPACE_KEY)),
            Eq("app", "x"),
        )
    )
    locals_ = st.one_of(
        st.none(),
        st.builds(lambda sel: Peer(pods=sel), pseudo),
        st.just(Peer(ip=IpMatch(("10.1.0.0/16",)))),
    )

    def mutate_peer(peer: Any) -> Any:
        if not peer.wants_pod or not draw(st.booleans()):
            return peer
        choice = draw(st.sampled_from(("sets", "pseudo", "global", "not", "entity")))
        if choice == "entity":
            from polyfence.model.peers import Entity

            return Peer(entity=draw(st.sampled_from(list(Entity))))
        if choice == "sets":
            return dataclasses.replace(peer, sets=True)
        if choice == "pseudo":
            return dataclasses.replace(peer, pods=draw(pseudo), sets=draw(st.booleans()))
        if choice == "global":
            return Peer(pods=draw(pseudo), namespace_selector=Global(), sets=True)
        return Peer(not_pods=draw(pseudo), sets=draw(st.booleans()))

    def mutate(rules: Any) -> Any:
        if not isinstance(rules, Governed):
            return rules
        new_rules = []
        for r in rules.rules:
            peers = (
                r.peers
                if not isinstance(r.peers, tuple)
                else tuple(mutate_peer(p) for p in r.peers)
            )
            new_rules.append(
                dataclasses.replace(
                    r, action=draw(st.sampled_from(list(Action))), peers=peers, local=draw(locals_)
                )
            )
        return Governed(tuple(new_rules), draw(st.booleans()))

    from polyfence.model.policy import Subject

    out: list[Policy] = []
    for pol in ps:
        subject = pol.subject
        if draw(st.integers(0, 4)) == 0:  # now and then cluster-wide (Calico GNP, Cilium CCNP)
            ns_sel = draw(
                st.sampled_from((None, Eq("team", "x"), Eq("kubernetes.io/metadata.name", "ns-b")))
            )
            subject = Subject(None, pol.subject.selector, ns_sel)
        out.append(
            dataclasses.replace(
                pol,
                subject=subject,
                ingress=mutate(pol.ingress),
                egress=mutate(pol.egress),
                tier=draw(st.sampled_from([t.name for t in tiers])),
                order=draw(st.sampled_from((None, 1.0, 500.0, 1000.0))),
            )
        )
    sets = (
        NetworkSet("partners", None, (("app", "x"),), ("8.8.8.0/24", "10.1.2.0/24")),
        NetworkSet("office", "ns-a", (("app", "y"),), ("192.168.1.0/24", "fd00::/16")),
    )
    chosen = tuple(s for s in sets if draw(st.booleans()))
    return PolicySet(tuple(out), tiers, chosen)


def _k8s() -> Any:
    from polyfence.translators.kubernetes import KubernetesTranslator

    return KubernetesTranslator()


# the Kubernetes fragment of the IR, built directly (not from documents) -----------------------


def _k8s_selectors() -> st.SearchStrategy[Any]:
    from polyfence.model import selectors as s

    atoms = st.one_of(
        st.builds(s.Eq, st.sampled_from(KEYS), st.sampled_from(VALUES)),
        st.builds(s.Ne, st.sampled_from(KEYS), st.sampled_from(VALUES)),
        st.builds(
            lambda k, v: s.In(k, frozenset(v)),
            st.sampled_from(KEYS),
            st.sets(st.sampled_from(VALUES), min_size=1),
        ),
        st.builds(
            lambda k, v: s.NotIn(k, frozenset(v)),
            st.sampled_from(KEYS),
            st.sets(st.sampled_from(VALUES), min_size=1),
        ),
        st.builds(s.Has, st.sampled_from(KEYS)),
        st.builds(lambda k: s.not_(s.Has(k)), st.sampled_from(KEYS)),
        st.just(s.All()),
    )
    return st.recursive(
        atoms,
        lambda inner: st.one_of(
            st.builds(lambda xs: s.and_(*xs), st.lists(inner, min_size=1, max_size=3)),
            st.builds(lambda xs: s.or_(*xs), st.lists(inner, min_size=1, max_size=2)),
            st.builds(s.not_, inner),
        ),
        max_leaves=4,
    )


@st.composite
def k8s_fragment_sets(draw: Any, calico_features: bool = False) -> PolicySet:
    """IR policies that Kubernetes can express exactly, with selectors beyond matchLabels.

    With ``calico_features``: also selectors on the reserved namespace/kind keys, peers that
    select network sets, and rules bound to part of the subject, all of which k8s can still
    express exactly.
    """
    from polyfence.model import selectors as s
    from polyfence.model.labels import KIND_KEY, NAMESPACE_KEY
    from polyfence.model.peers import ANY_PEER, IpMatch, NetworkSet, Peer
    from polyfence.model.policy import NOT_GOVERNED, PolicyId, Rule, Subject
    from polyfence.model.ports import ANY_PORTS, PortSpec
    from polyfence.semantics.intervals import IntervalSet

    sels = _k8s_selectors()
    if calico_features:
        pseudo = st.one_of(
            st.builds(s.Eq, st.just(NAMESPACE_KEY), st.sampled_from(NAMESPACES)),
            st.builds(
                lambda v: s.NotIn(NAMESPACE_KEY, frozenset(v)),
                st.sets(st.sampled_from(NAMESPACES), min_size=1),
            ),
            st.sampled_from((s.Eq(KIND_KEY, "pod"), s.Eq(KIND_KEY, "network-set"))),
        )
        sels = st.one_of(
            sels,
            st.builds(lambda a, b: s.and_(a, b), sels, pseudo),
            st.builds(lambda a, b: s.or_(a, b), sels, pseudo),
        )

    def peer() -> Peer:
        kind = draw(st.sampled_from(("pods", "ns", "names", "ip")))
        if kind == "ip":
            cidr = draw(st.sampled_from(CIDRS))
            return Peer(
                ip=IpMatch(
                    (cidr,),
                    tuple(draw(st.lists(st.sampled_from(SUBNETS[cidr]), max_size=2, unique=True))),
                )
            )
        pods = draw(st.one_of(st.none(), sels))
        if kind == "names":
            names = frozenset(draw(st.sets(st.sampled_from(NAMESPACES), min_size=1, max_size=2)))
            return Peer(pods=pods, namespace_names=names)
        if kind == "ns":
            return Peer(
                pods=pods,
                namespace_selector=draw(_k8s_selectors()),
                sets=calico_features and draw(st.booleans()),
            )
        return Peer(
            pods=pods if pods is not None else draw(sels), namespace_names=frozenset({"ns-a"})
        )

    def ports() -> Any:
        if draw(st.booleans()):
            return ANY_PORTS
        specs = []
        for _ in range(draw(st.integers(1, 2))):
            proto = draw(st.sampled_from((6, 17, 132)))
            if draw(st.booleans()):
                specs.append(
                    PortSpec.single(
                        proto, IntervalSet.empty(), frozenset({draw(st.sampled_from(PORT_NAMES))})
                    )
                )
            else:
                lo = draw(st.sampled_from(PORTS))
                specs.append(
                    PortSpec.single(
                        proto, IntervalSet.span(lo, lo + draw(st.sampled_from((0, 5, 1000))))
                    )
                )
        return tuple(specs)

    def direction() -> Any:
        if draw(st.booleans()):
            return NOT_GOVERNED
        rules = tuple(
            Rule(
                peers=ANY_PEER
                if draw(st.booleans())
                else tuple(peer() for _ in range(draw(st.integers(1, 2)))),
                ports=ports(),
                local=Peer(pods=draw(_k8s_selectors()))
                if calico_features and draw(st.booleans())
                else None,
            )
            for _ in range(draw(st.integers(0, 2)))
        )
        return Governed(rules, True)

    out = []
    for i in range(draw(st.integers(1, 3))):
        ns = draw(st.sampled_from(NAMESPACES))
        out.append(
            Policy(
                PolicyId("kubernetes", ns, f"p{i}"),
                Subject(ns, draw(sels)),
                direction(),
                direction(),
            )
        )
    sets: tuple[NetworkSet, ...] = ()
    if calico_features:
        sets = (
            NetworkSet("partners", None, (("app", "x"),), ("8.8.8.0/24",)),
            NetworkSet("office", "ns-a", (("tier", "y"),), ("192.168.1.0/24", "fd00::/16")),
        )
    return PolicySet(tuple(out), network_sets=sets)
