"""Hypothesis strategies for random *valid* IR values, shared by every test that needs them.

Alphabets are deliberately tiny (namespaces ns-a/ns-b, label keys app/tier/env, values
x/y/z, a handful of CIDRs and port names) so that generated policies overlap and interact,
which is where translation and evaluation bugs show. Selectors are built through the smart
constructors (``and_``/``or_``/``not_``), i.e. in the normal form the parser produces.
"""

from __future__ import annotations

from hypothesis import strategies as st

from polyfence.model.peers import (
    ANY_PEER,
    Entity,
    FqdnMatch,
    IpMatch,
    NetworkSet,
    Peer,
    PeerMatch,
    PrincipalMatch,
    ServiceAccountMatch,
)
from polyfence.model.policy import (
    NOT_GOVERNED,
    Action,
    DirectionRules,
    Governed,
    HttpMatch,
    L7Match,
    Layer,
    Policy,
    PolicyId,
    PolicySet,
    Rule,
    Subject,
    Tier,
)
from polyfence.model.ports import (
    ALL_PROTOCOLS,
    ANY_PORTS,
    PortMatch,
    PortSpec,
    Protocol,
    icmp_range,
)
from polyfence.model.selectors import (
    All,
    Contains,
    EndsWith,
    Eq,
    Global,
    Has,
    In,
    Ne,
    NotIn,
    Selector,
    StartsWith,
    and_,
    not_,
    or_,
)
from polyfence.semantics.intervals import ALL_PORTS, IntervalSet

__all__ = [
    "LABEL_KEYS",
    "LABEL_VALUES",
    "NAMESPACES",
    "actions",
    "direction_rules",
    "l7_matches",
    "label_maps",
    "orders",
    "peer_matches",
    "peers",
    "policies",
    "policy_sets",
    "port_matches",
    "port_specs",
    "rules",
    "selectors",
    "subjects",
    "tiers",
]

NAMESPACES = ("ns-a", "ns-b")
LABEL_KEYS = ("app", "tier", "env")
LABEL_VALUES = ("x", "y", "z")
TIER_NAMES = ("default", "security", "platform")
FORMATS = ("kubernetes", "calico", "cilium", "istio", "aws")
CIDRS = (
    "0.0.0.0/0",
    "10.0.0.0/8",
    "10.1.0.0/16",
    "192.168.1.1/32",
    "192.168.1.7",
    "::/0",
    "fd00::/8",
    "2001:db8::1",
)
PORT_NAMES = ("http", "metrics", "dns")
SMALL_NAMES = ("a", "b", "c")

keys = st.sampled_from(LABEL_KEYS)
values = st.sampled_from(LABEL_VALUES)
value_sets = st.frozensets(values, max_size=3)
namespaces = st.sampled_from(NAMESPACES)
small_names = st.frozensets(st.sampled_from(SMALL_NAMES), max_size=3)


# --------------------------------------------------------------------------- selectors

selector_atoms: st.SearchStrategy[Selector] = st.one_of(
    st.just(All()),
    st.just(Global()),
    st.builds(Has, keys),
    st.builds(Eq, keys, values),
    st.builds(Ne, keys, values),
    st.builds(In, keys, value_sets),
    st.builds(NotIn, keys, value_sets),
    st.builds(Contains, keys, values),
    st.builds(StartsWith, keys, values),
    st.builds(EndsWith, keys, values),
)


def selectors(max_leaves: int = 6) -> st.SearchStrategy[Selector]:
    """Normalised selector trees over the small label alphabet."""
    return st.recursive(
        selector_atoms,
        lambda inner: st.one_of(
            st.lists(inner, min_size=2, max_size=3).map(lambda ts: and_(*ts)),
            st.lists(inner, min_size=2, max_size=3).map(lambda ts: or_(*ts)),
            inner.map(not_),
        ),
        max_leaves=max_leaves,
    )


def _optional(strategy: st.SearchStrategy[object]) -> st.SearchStrategy[object]:
    return st.none() | strategy


# --------------------------------------------------------------------------- peers

service_account_matches = st.builds(
    ServiceAccountMatch,
    names=_optional(small_names),
    selector=_optional(selectors(3)),
)
ip_matches = st.builds(
    IpMatch,
    nets=_optional(st.lists(st.sampled_from(CIDRS), max_size=3).map(tuple)),
    not_nets=st.lists(st.sampled_from(CIDRS), max_size=2).map(tuple),
)
fqdn_matches = st.builds(
    FqdnMatch,
    names=st.frozensets(st.sampled_from(("api.example.com", "example.org")), max_size=2),
    patterns=st.frozensets(st.sampled_from(("*.example.com", "*")), max_size=2),
)
principal_matches = st.builds(
    PrincipalMatch,
    principals=_optional(st.frozensets(st.sampled_from(("cluster.local/ns/ns-a/sa/a", "*")))),
    not_principals=st.frozensets(st.sampled_from(("cluster.local/ns/ns-b/sa/b",)), max_size=1),
    namespaces=_optional(st.frozensets(namespaces, max_size=2)),
    not_namespaces=st.frozensets(namespaces, max_size=2),
)


def peers() -> st.SearchStrategy[Peer]:
    """Peers with any combination of constraints set (including none: matches anything)."""
    return st.builds(
        Peer,
        pods=_optional(selectors(3)),
        not_pods=_optional(selectors(3)),
        namespace_selector=_optional(selectors(3)),
        namespace_names=_optional(st.frozensets(namespaces, max_size=2)),
        service_account=_optional(service_account_matches),
        ip=_optional(ip_matches),
        entity=_optional(st.sampled_from(Entity)),
        fqdn=_optional(fqdn_matches),
        security_group=_optional(st.sampled_from(("sg-0a", "sg-0b"))),
        principal=_optional(principal_matches),
        sets=st.booleans(),
    )


def peer_matches() -> st.SearchStrategy[PeerMatch]:
    """ANY_PEER, or a (possibly empty: matches nothing) tuple of peers."""
    return st.just(ANY_PEER) | st.lists(peers(), max_size=2).map(tuple)


# --------------------------------------------------------------------------- ports


def _interval_sets(lo: int, hi: int) -> st.SearchStrategy[IntervalSet]:
    def build(pairs: list[tuple[int, int]]) -> IntervalSet:
        return IntervalSet.of(*((min(a, b), max(a, b)) for a, b in pairs))

    return st.lists(st.tuples(st.integers(lo, hi), st.integers(lo, hi)), max_size=3).map(build)


_port_protocols = st.sampled_from((Protocol.TCP, Protocol.UDP, Protocol.SCTP)).map(
    IntervalSet.point
)
_icmp_protocols = st.sampled_from((Protocol.ICMP, Protocol.ICMPV6)).map(IntervalSet.point)
_icmp_ports = st.builds(
    icmp_range,
    _optional(st.integers(0, 255)),
    _optional(st.integers(0, 255)),
)


def port_specs() -> st.SearchStrategy[PortSpec]:
    """TCP/UDP/SCTP with ranges and named ports, ICMP type/code encodings, odd protocol sets."""
    port_carrying = st.builds(
        PortSpec,
        protocols=_port_protocols,
        ports=st.just(ALL_PORTS) | _interval_sets(0, 65535),
        named=st.frozensets(st.sampled_from(PORT_NAMES), max_size=2),
        not_named=st.frozensets(st.sampled_from(PORT_NAMES), max_size=1),
    )
    icmp = st.builds(PortSpec, protocols=_icmp_protocols, ports=_icmp_ports)
    other = st.builds(
        PortSpec,
        protocols=st.just(ALL_PROTOCOLS) | _interval_sets(0, 255),
        ports=st.just(ALL_PORTS) | _interval_sets(0, 65535),
    )
    return port_carrying | icmp | other


def port_matches() -> st.SearchStrategy[PortMatch]:
    """ANY_PORTS, or a (possibly empty: matches nothing) tuple of port specs."""
    return st.just(ANY_PORTS) | st.lists(port_specs(), max_size=2).map(tuple)


# --------------------------------------------------------------------------- rules

http_matches = st.builds(
    HttpMatch,
    methods=st.frozensets(st.sampled_from(("GET", "POST", "PUT")), max_size=2),
    paths=st.lists(
        st.tuples(st.sampled_from(("exact", "prefix", "regex")), st.sampled_from(("/", "/a"))),
        max_size=2,
    ).map(tuple),
    hosts=st.frozensets(st.sampled_from(("a.example", "b.example")), max_size=2),
)


def l7_matches() -> st.SearchStrategy[L7Match]:
    return st.builds(
        L7Match,
        http=st.lists(http_matches, max_size=2).map(tuple),
        dns=st.lists(st.sampled_from(("example.com", "*.example.org")), max_size=2).map(tuple),
        other=st.lists(st.sampled_from(("kafka", "redis")), max_size=1).map(tuple),
    )


actions = st.sampled_from(Action)


def rules() -> st.SearchStrategy[Rule]:
    return st.builds(
        Rule,
        action=actions,
        peers=peer_matches(),
        ports=port_matches(),
        l7=_optional(l7_matches()),
        local=_optional(peers()),
    )


def direction_rules() -> st.SearchStrategy[DirectionRules]:
    """NOT_GOVERNED, or governed with 0-2 rules, isolating or not."""
    governed = st.builds(Governed, st.lists(rules(), max_size=2).map(tuple), st.booleans())
    return st.just(NOT_GOVERNED) | governed


# --------------------------------------------------------------------------- policies

orders: st.SearchStrategy[float | None] = st.one_of(
    st.none(),
    st.integers(-1000, 1000).map(float),
    st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False),
)

label_maps = st.dictionaries(keys, values, max_size=3).map(lambda d: tuple(d.items()))


def subjects() -> st.SearchStrategy[Subject]:
    """Namespaced or cluster-wide subjects, with every optional restriction."""
    return st.builds(
        Subject,
        namespace=_optional(namespaces),
        selector=selectors(4),
        namespace_selector=_optional(selectors(3)),
        service_accounts=_optional(selectors(2)),
        security_group=_optional(st.sampled_from(("sg-0a", "sg-0b"))),
        include_hosts=st.booleans(),
    )


def policies(tier_names: tuple[str, ...] = TIER_NAMES) -> st.SearchStrategy[Policy]:
    return st.builds(
        Policy,
        id=st.builds(
            PolicyId,
            st.sampled_from(FORMATS),
            _optional(namespaces),
            st.sampled_from(("p1", "p2", "p3")),
        ),
        subject=subjects(),
        ingress=direction_rules(),
        egress=direction_rules(),
        tier=st.sampled_from((*tier_names, "undeclared")),
        order=orders,
        layer=st.sampled_from(Layer),
        labels=label_maps,
    )


def tiers() -> st.SearchStrategy[tuple[Tier, ...]]:
    """Distinct tier names with orders (or none) and a deny/pass default action."""
    tier = st.builds(
        Tier,
        name=st.sampled_from(TIER_NAMES),
        order=orders,
        default_action=st.sampled_from((Action.DENY, Action.PASS)),
    )
    return st.lists(tier, max_size=3, unique_by=lambda t: t.name).map(tuple)


@st.composite
def policy_sets(draw: st.DrawFn, max_policies: int = 3) -> PolicySet:
    """A policy set of 0..max_policies policies over 0..3 declared tiers."""
    tier_defs = draw(tiers())
    pols = draw(st.lists(policies(), max_size=max_policies))
    sets = draw(st.lists(network_sets(), max_size=2, unique_by=lambda s: (s.namespace, s.name)))
    return PolicySet(tuple(pols), tier_defs, tuple(sets))


def network_sets() -> st.SearchStrategy[NetworkSet]:
    return st.builds(
        NetworkSet,
        name=st.sampled_from(("set-a", "set-b")),
        namespace=_optional(namespaces),
        labels=label_maps,
        nets=st.lists(
            st.sampled_from(("10.0.0.0/8", "192.168.1.0/24", "fd00::/8")), max_size=2
        ).map(tuple),
    )
