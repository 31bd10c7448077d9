"""Every cluster at once: an inventory with one endpoint per combination of facts policies can tell apart.

Verdicts are local: whether a connection is allowed depends only on the facts of its source,
its destination and the connection (labels of pod and namespace, the namespace name, the
service account, named ports resolved on the destination, the addresses relative to the CIDRs
in play, mesh membership and mTLS mode, security groups), never on other pods. So if two
policy sets differ on some cluster, they differ on a pair of endpoints, and an inventory that
holds an endpoint with the same facts *as seen by every selector and peer in play* for every
realisable combination exhibits that difference too; conversely a difference found in it is a
difference on the cluster made of those (at most two) endpoints and their namespaces. Running
the ordinary engine (``engine.Universe``/``Connectivity``) on this *universal inventory* thus
decides equivalence for every cluster, with every format's semantics (tiers, order, pass,
deny-wins, layers) for free.

Enumeration, per dimension, is over *regions*: per label key the values selectors mention,
witnesses for string predicates, one fresh value and absence; namespaces are the names in play
plus fresh ones, the name label tied to the name; service accounts in play plus a fresh one;
each named port absent or resolving into each port region the rules cut; one address per
class of CIDR membership. Keys are combined one at a time and partial assignments merged as
soon as every selector that reads a key has been decided (bucket elimination), and candidate
endpoints are merged when every subject and peer that can see them treats them alike, so the
product of all regions is never built. Bounded: more than ``Bound.max_endpoints`` endpoints or
``Bound.seconds`` raises ``Undecided``.
"""

from __future__ import annotations

import ipaddress
import itertools
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from types import MappingProxyType

from polyfence.inventory import NAMESPACE_NAME_LABEL, Endpoint, Inventory, NamedPort, Namespace
from polyfence.inventory import build_inventory as _build_inventory
from polyfence.model.labels import KIND_KEY, KIND_POD, NAME_KEY, NAMESPACE_KEY, SERVICE_ACCOUNT_KEY
from polyfence.model.peers import ANY_PEER, Entity, Peer, PrincipalMatch
from polyfence.model.policy import Direction, Governed, Layer, PolicySet, Subject
from polyfence.model.ports import ANY_PORTS
from polyfence.model.selectors import (
    Contains,
    EndsWith,
    Eq,
    In,
    Ne,
    NotIn,
    Selector,
    StartsWith,
    walk,
)
from polyfence.semantics.engine import V6_OFFSET, _all_peers, _cidr_cuts
from polyfence.semantics.intervals import IPSet
from polyfence.semantics.matching import PRINCIPAL_IDENTITY, Matcher, Remote
from polyfence.semantics.profile import DEFAULT_PROFILE, EvaluationProfile
from polyfence.semantics.symbolic import SymbolicEndpoint

PORT_PROTOCOLS = (6, 17, 132)  # protocols a containerPort may declare
LOCAL_NODE = "polyfence-node-0"  # where every pod of the universal inventory runs
MESH_STATES: tuple[tuple[bool, str | None], ...] = (
    (False, None),
    (True, "STRICT"),
    (True, "PERMISSIVE"),
    (True, "DISABLE"),
)


@dataclass(frozen=True, slots=True)
class Bound:
    """How far the every-cluster decision may go before it answers "undecided"."""

    max_endpoints: int = 2000
    seconds: float = 30.0


DEFAULT_BOUND = Bound()


class Undecided(Exception):
    """The universal inventory would exceed the bound; ``reason`` says which and by how much."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class UniversalInventory:
    """The universal inventory and how many namespace variants and endpoints it holds."""

    inventory: Inventory
    namespaces: int
    endpoints: int


# selectors ---------------------------------------------------------------------------------


_STRING_OPS = (Contains, StartsWith, EndsWith)


def _mentions(key: str, sels: Iterable[Selector]) -> tuple[set[str], list[Selector]]:
    """Values a key is compared with for equality, and its string-predicate literals."""
    exact: set[str] = set()
    strings: list[Selector] = []
    for sel in sels:
        for node in walk(sel):
            if getattr(node, "key", None) != key:
                continue
            if isinstance(node, Eq | Ne):
                exact.add(node.value)
            elif isinstance(node, In | NotIn):
                exact.update(node.values)
            elif isinstance(node, _STRING_OPS):
                strings.append(node)
    return exact, strings


def _fresh(base: str, exact: Iterable[str], strings: Sequence[Selector]) -> str:
    """A value equal to no mentioned value and matching no string predicate."""
    taken = set(exact)
    for i in itertools.count():
        value = base if i == 0 else f"{base}-{i}"
        if value not in taken and not any(_string_hit(s, value) for s in strings):
            return value
    raise AssertionError("unreachable")


def _string_hit(node: Selector, value: str) -> bool:
    text: str = node.value  # type: ignore[attr-defined]
    if isinstance(node, Contains):
        return text in value
    if isinstance(node, StartsWith):
        return value.startswith(text)
    return value.endswith(text)


def _string_witnesses(strings: Sequence[Selector], exact: set[str]) -> list[str]:
    """Values realising the combinations of string predicates (concatenations of their
    arguments, alone, in pairs and prefix+contains+suffix), one per truth vector."""
    parts = list(dict.fromkeys(s.value for s in strings))  # type: ignore[attr-defined]
    pre = [s.value for s in strings if isinstance(s, StartsWith)]
    suf = [s.value for s in strings if isinstance(s, EndsWith)]
    mid = [s.value for s in strings if isinstance(s, Contains)]
    cands: list[str] = []
    for p in parts:
        cands += [p, f"q{p}", f"{p}q", f"q{p}q"]
    for a, b in itertools.permutations(parts, 2):
        cands.append(a + b)
    for p in pre or [""]:
        for m in mid or [""]:
            for e in suf or [""]:
                cands.append(p + m + e)
    seen: set[tuple[object, ...]] = set()
    out: list[str] = []
    for value in cands:
        if not value or value in exact:
            continue
        vec = tuple(_string_hit(s, value) for s in strings)
        if vec not in seen:
            seen.add(vec)
            out.append(value)
    return out


def _values(key: str, sels: Sequence[Selector], fresh: str) -> list[str | None]:
    """Candidate values of a label key: absent, every mentioned value, string witnesses, fresh."""
    exact, strings = _mentions(key, sels)
    out: list[str | None] = [None, *sorted(exact)]
    out += _string_witnesses(strings, exact)
    out.append(_fresh(fresh, exact, strings))
    return out


class _Clock:
    def __init__(self, bound: Bound) -> None:
        self.bound = bound
        self.deadline = time.monotonic() + bound.seconds

    def check(self, what: str) -> None:
        if time.monotonic() > self.deadline:
            raise Undecided(f"over the {self.bound.seconds:g} s budget while {what}")


def witness_labels(
    sels: Sequence[Selector],
    fixed: Mapping[str, str],
    keep: Mapping[str, Sequence[str]] | None = None,
    clock: _Clock | None = None,
    limit: int = 100_000,
) -> list[dict[str, str]]:
    """One label map per realisable truth vector of ``sels`` (labels in ``fixed`` held);
    keys in ``keep`` range over the given values and are never merged away."""
    sels = list(dict.fromkeys(sels))
    keep = dict(keep or {})
    order: list[str] = []
    for sel in sorted(sels, key=lambda s: len(s.keys())):
        for key in sorted(sel.keys()):
            if key not in fixed and key not in keep and key not in order:
                order.append(key)
    position = {key: i for i, key in enumerate(order)}
    closes: list[list[Selector]] = [[] for _ in order]
    initially: list[Selector] = []
    last_use: dict[str, int] = {}
    for sel in sels:
        sel_keys = sel.keys()
        free = [position[k] for k in sel_keys if k in position]
        if free:
            closes[max(free)].append(sel)
            for k in sel_keys:
                if k in position:
                    last_use[k] = max(last_use.get(k, -1), max(free))
        else:
            initially.append(sel)
    kept = list(keep)
    states: list[tuple[tuple[bool, ...], dict[str, str]]] = []
    for combo in itertools.product(*(keep[k] for k in kept)):
        assign = dict(zip(kept, combo, strict=True))
        labels = {**fixed, **assign}
        states.append((tuple(s.matches(labels) for s in initially), assign))
    for i, key in enumerate(order):
        if clock is not None:
            clock.check("enumerating label regions")
        values = _values(key, sels, "polyfence-other")
        still_open = [k for k in order[: i + 1] if last_use.get(k, -1) > i]
        merged: dict[tuple[object, ...], tuple[tuple[bool, ...], dict[str, str]]] = {}
        for vec, assign in states:
            for value in values:
                nxt = dict(assign)
                if value is not None:
                    nxt[key] = value
                labels = {**fixed, **nxt}
                vec2 = vec + tuple(s.matches(labels) for s in closes[i])
                sig = (
                    vec2,
                    tuple(nxt.get(k) for k in still_open),
                    tuple(nxt[k] for k in kept),
                )
                if sig not in merged:
                    merged[sig] = (vec2, nxt)
        states = list(merged.values())
        if len(states) > limit:
            raise Undecided(f"more than {limit} label combinations")
    return [{**fixed, **assign} for _, assign in states]


# facts in play -----------------------------------------------------------------------------


def _governed_subjects(sets: Sequence[PolicySet]) -> list[Subject]:
    out: dict[Subject, None] = {}
    for ps in sets:
        for pol in ps:
            if isinstance(pol.ingress, Governed) or isinstance(pol.egress, Governed):
                out[pol.subject] = None
    return list(out)


def _principal_names(match: PrincipalMatch, namespaces: set[str], accounts: set[str]) -> None:
    for text in (*(match.principals or ()), *match.not_principals):
        found = PRINCIPAL_IDENTITY.search(text)
        if found:
            namespaces.add(found.group(1))
            sa = found.group(2)
            if sa:
                accounts.add(sa.replace("*", "x"))
    for ns in (*(match.namespaces or ()), *match.not_namespaces):
        if ns != "*":
            namespaces.add(ns.replace("*", "x"))


def _port_regions(sets: Sequence[PolicySet]) -> dict[int, list[tuple[int, int]]]:
    """Per container-port protocol, the port ranges no rule tells apart (1-65535)."""
    cuts: dict[int, set[int]] = {p: {1, 65536} for p in PORT_PROTOCOLS}
    for ps in sets:
        for pol in ps:
            for rules in (pol.ingress, pol.egress):
                if not isinstance(rules, Governed):
                    continue
                for rule in rules.rules:
                    if rule.ports is ANY_PORTS:
                        continue
                    for spec in rule.ports:  # type: ignore[union-attr]
                        for proto in PORT_PROTOCOLS:
                            if proto in spec.protocols:
                                for lo, hi in spec.ports:
                                    cuts[proto].update((max(lo, 1), min(hi + 1, 65536)))
    out: dict[int, list[tuple[int, int]]] = {}
    for proto, points in cuts.items():
        ordered = sorted(p for p in points if 1 <= p <= 65536)
        out[proto] = [(lo, hi - 1) for lo, hi in itertools.pairwise(ordered)]
    return out


@dataclass(slots=True)
class _NamedUse:
    protocols: set[int]
    ingress: list[Subject]  # subjects of policies whose ingress rules name the port
    egress: list[Sequence[Peer] | None]  # peers of egress rules naming it (None: any peer)


def _named_uses(sets: Sequence[PolicySet]) -> dict[str, _NamedUse]:
    uses: dict[str, _NamedUse] = {}
    for ps in sets:
        for pol in ps:
            for direction in (Direction.INGRESS, Direction.EGRESS):
                rules = pol.direction(direction)
                if not isinstance(rules, Governed):
                    continue
                for rule in rules.rules:
                    if rule.ports is ANY_PORTS:
                        continue
                    for spec in rule.ports:  # type: ignore[union-attr]
                        for name in spec.named | spec.not_named:
                            use = uses.setdefault(name, _NamedUse(set(), [], []))
                            use.protocols.update(p for p in PORT_PROTOCOLS if p in spec.protocols)
                            if direction is Direction.INGRESS:
                                use.ingress.append(pol.subject)
                            else:
                                peers = None if rule.peers is ANY_PEER else rule.peers
                                use.egress.append(peers)  # type: ignore[arg-type]
    return uses


def _address_classes(
    sets: Sequence[PolicySet], profile: EvaluationProfile, peers: Sequence[Peer]
) -> list[list[tuple[int, int]]]:
    """Address ranges (on the engine's v4+v6 line) of each class of CIDR membership, one
    class per membership vector; single-family and dual-stack pods both."""
    ipsets: list[IPSet] = [ip for p in peers if (ip := p.ipset()) is not None]
    for ps in sets:
        ipsets.extend(ns.ipset() for ns in ps.network_sets)
    ipsets = list(dict.fromkeys(ipsets))
    if not ipsets:
        return []
    cuts = _cidr_cuts(sets)
    ends = [*cuts[1:], V6_OFFSET + (1 << 128)]
    by_vec: dict[tuple[bool, ...], list[tuple[int, int]]] = {}
    for lo, end in zip(cuts, ends, strict=True):
        addr = _address(lo)
        vec = tuple(ipaddress.ip_address(addr) in s for s in ipsets)
        by_vec.setdefault(vec, []).append((lo, end - 1))
    return list(by_vec.values())


def _address(line: int) -> str:
    if line >= V6_OFFSET:
        return str(ipaddress.IPv6Address(line - V6_OFFSET))
    return str(ipaddress.IPv4Address(line))


class _Addresses:
    """Hands out distinct addresses inside a class's ranges (two pods never share one)."""

    def __init__(self) -> None:
        self.used: dict[tuple[int, int], int] = {}

    def take(self, ranges: Sequence[tuple[int, int]]) -> str:
        for lo, hi in ranges:
            nxt = self.used.get((lo, hi), lo)
            if nxt <= hi:
                self.used[(lo, hi)] = nxt + 1
                return _address(nxt)
        lo, _ = ranges[0]
        return _address(lo)


# the universal inventory -------------------------------------------------------------------


def _pod_ip_fallback(counter: int) -> str:
    return str(ipaddress.IPv4Address(0x0AF40000 + counter))  # 10.244.0.0/16


def universal_inventory(
    policy_sets: Sequence[PolicySet],
    profile: EvaluationProfile = DEFAULT_PROFILE,
    bound: Bound = DEFAULT_BOUND,
) -> UniversalInventory:
    """The universal inventory of ``policy_sets`` under ``profile``; raises ``Undecided``."""
    sets = list(policy_sets)
    clock = _Clock(bound)
    subjects = _governed_subjects(sets)
    peers = list(dict.fromkeys(_all_peers(sets)))
    pod_sels = [s.selector for s in subjects if s.security_group is None]
    pod_sels += [sel for p in peers for sel in (p.pods, p.not_pods) if sel is not None]
    ns_sels = [s.namespace_selector for s in subjects if s.namespace_selector is not None]
    ns_sels += [p.namespace_selector for p in peers if p.namespace_selector is not None]
    sa_sels = [s.service_accounts for s in subjects if s.service_accounts is not None]
    sa_sels += [
        p.service_account.selector
        for p in peers
        if p.service_account is not None and p.service_account.selector is not None
    ]
    layers = {layer for ps in sets for layer in ps.layers()}
    # names in play ---------------------------------------------------------------------
    ns_names: set[str] = set()
    accounts: set[str] = set()
    for s in subjects:
        if s.namespace is not None:
            ns_names.add(s.namespace)
    for ps in sets:
        ns_names.update(n.namespace for n in ps.network_sets if n.namespace is not None)
    for p in peers:
        ns_names.update(p.namespace_names or ())
        if p.service_account is not None and p.service_account.names:
            accounts.update(p.service_account.names)
        if p.principal is not None:
            _principal_names(p.principal, ns_names, accounts)
    for key, sels, into in (
        (NAMESPACE_NAME_LABEL, ns_sels, ns_names),
        (NAMESPACE_KEY, pod_sels, ns_names),
        (SERVICE_ACCOUNT_KEY, pod_sels, accounts),
        (NAME_KEY, sa_sels, accounts),
    ):
        exact, strings = _mentions(key, sels)
        into.update(exact)
        into.update(_string_witnesses(strings, exact))
    name_strings = (
        _mentions(NAMESPACE_NAME_LABEL, ns_sels)[1] + _mentions(NAMESPACE_KEY, pod_sels)[1]
    )
    sa_strings = _mentions(SERVICE_ACCOUNT_KEY, pod_sels)[1] + _mentions(NAME_KEY, sa_sels)[1]
    fresh_sa = _fresh("default", accounts, sa_strings)  # the account pods get by default
    sa_values = [*sorted(accounts), fresh_sa]
    # namespace variants: (name, labels), fresh names one per labelling -----------------
    variants: list[tuple[str, dict[str, str]]] = []
    for name in sorted(ns_names):
        for labels in witness_labels(ns_sels, {NAMESPACE_NAME_LABEL: name}, clock=clock):
            variants.append((name, labels))
    fresh_base = _fresh("polyfence-ns", ns_names, name_strings)
    taken = set(ns_names)
    for labels in witness_labels(ns_sels, {NAMESPACE_NAME_LABEL: fresh_base}, clock=clock):
        name = _fresh(fresh_base, taken, name_strings)
        taken.add(name)
        variants.append((name, {**labels, NAMESPACE_NAME_LABEL: name}))
    # account label variants ------------------------------------------------------------
    account_variants: dict[str, list[dict[str, str] | None]] = {}
    for sa in sa_values:
        if sa_sels:
            found = witness_labels(sa_sels, {NAME_KEY: sa}, clock=clock)
            account_variants[sa] = [
                {k: v for k, v in labels.items() if k != NAME_KEY} for labels in found
            ]
        else:
            account_variants[sa] = [None]
    # other dimensions ------------------------------------------------------------------
    address_classes: list[list[tuple[int, int]]] = []
    if profile.ipblock_matches_pods:
        address_classes = _address_classes(sets, profile, peers)
    mesh_states = MESH_STATES if Layer.L7 in layers else MESH_STATES[:1]
    groups = sorted(
        {s.security_group for s in subjects if s.security_group is not None}
        | {p.security_group for p in peers if p.security_group is not None}
    )
    if len(groups) > 6:
        raise Undecided(f"{len(groups)} security groups in play (at most 6: 2^n memberships)")
    group_sets = [
        tuple(c) for r in range(len(groups) + 1) for c in itertools.combinations(groups, r)
    ]
    uses = _named_uses(sets)
    regions = _port_regions(sets)
    addresses = _Addresses()
    matcher = Matcher(Inventory(), profile, (n for ps in sets for n in ps.network_sets))
    mesh_relative = [p for p in peers if p.principal is not None]
    probe_mtls = SymbolicEndpoint("Pod", "x", "probe", mesh=True, mtls="STRICT")
    probe_plain = SymbolicEndpoint("Pod", "x", "probe", mesh=True, mtls="DISABLE")
    probe_node = SymbolicEndpoint("Pod", "x", "probe", node=LOCAL_NODE)

    endpoints: list[Endpoint] = []
    ns_objects: dict[str, Namespace] = {}
    counter = 0
    for v_index, (ns_name, ns_labels) in enumerate(variants):
        clock.check("building endpoints")
        ns_objects.setdefault(ns_name, Namespace(ns_name, ns_labels))
        frozen_ns = MappingProxyType(dict(ns_labels))
        rel_subjects = [
            s
            for s in subjects
            if s.security_group is not None
            or (
                s.namespace == ns_name
                if s.namespace is not None
                else s.namespace_selector is None or s.namespace_selector.matches(ns_labels)
            )
        ]
        rel_peers = [
            p
            for p in peers
            if (p.namespace_names is None or ns_name in p.namespace_names)
            and (p.namespace_selector is None or p.namespace_selector.matches(ns_labels))
        ]
        sels = [s.selector for s in rel_subjects if s.security_group is None]
        sels += [sel for p in rel_peers for sel in (p.pods, p.not_pods) if sel is not None]
        sels += [
            In(SERVICE_ACCOUNT_KEY, p.service_account.names)
            for p in rel_peers
            if p.service_account is not None and p.service_account.names is not None
        ]
        pod_witnesses = witness_labels(
            sels,
            {NAMESPACE_KEY: ns_name, KIND_KEY: KIND_POD},
            {SERVICE_ACCOUNT_KEY: sa_values},
            clock,
        )
        seen: set[tuple[object, ...]] = set()
        for labels in pod_witnesses:
            sa = labels[SERVICE_ACCOUNT_KEY]
            pod_labels = {
                k: v
                for k, v in labels.items()
                if k not in (NAMESPACE_KEY, KIND_KEY, SERVICE_ACCOUNT_KEY)
            }
            wheres: list[list[tuple[int, int]] | None] = list(address_classes) or [None]
            for account_labels, (mesh, mtls), sgs, where in itertools.product(
                account_variants[sa], mesh_states, group_sets, wheres
            ):
                counter += 1
                ip = addresses.take(where) if where is not None else _pod_ip_fallback(counter)
                base = SymbolicEndpoint(
                    "Pod",
                    ns_name,
                    f"pod-{counter}",
                    MappingProxyType(pod_labels),
                    sa,
                    (ip,),
                    (),
                    LOCAL_NODE,
                    security_groups=sgs,
                    mesh=mesh,
                    mtls=mtls,
                    namespace_labels=frozen_ns,
                    account_labels=None
                    if account_labels is None
                    else MappingProxyType(account_labels),
                )
                remote = Remote(base)
                selected = tuple(matcher.selects(s, base) for s in rel_subjects)
                matched = tuple(matcher.peer_matches(p, remote, probe_node) for p in rel_peers)
                identities = tuple(
                    (
                        matcher.peer_matches(p, remote, probe_mtls),
                        matcher.peer_matches(p, remote, probe_plain),
                    )
                    for p in mesh_relative
                )
                relevant = _relevant_named(uses, base, matcher, rel_subjects, selected)
                for named in _named_assignments(relevant, uses, regions):
                    facts = (v_index, selected, matched, identities, named, mesh, mtls, sgs)
                    if facts in seen:
                        continue
                    seen.add(facts)
                    endpoints.append(_with_ports(base, named))
                    if len(endpoints) > bound.max_endpoints:
                        raise Undecided(
                            f"more than {bound.max_endpoints} endpoint classes "
                            f"({len(variants)} namespace variants)"
                        )
    endpoints.extend(_nodes(peers, profile, layers, address_classes, group_sets, addresses))
    inventory = _build_inventory(list(ns_objects.values()), endpoints)
    return UniversalInventory(inventory, len(variants), len(endpoints))


def _relevant_named(
    uses: Mapping[str, _NamedUse],
    ep: SymbolicEndpoint,
    matcher: Matcher,
    subjects: Sequence[Subject],
    selected: Sequence[bool],
) -> list[str]:
    """Named ports some rule could resolve on this endpoint (as the destination)."""
    if not uses:
        return []
    chosen = {s for s, hit in zip(subjects, selected, strict=True) if hit}
    remote = Remote(ep)
    out: list[str] = []
    for name, use in uses.items():
        if any(s in chosen for s in use.ingress) or any(
            peers is None or any(matcher.peer_matches(p, remote) for p in peers)
            for peers in use.egress
        ):
            out.append(name)
    return sorted(out)


def _named_assignments(
    names: Sequence[str],
    uses: Mapping[str, _NamedUse],
    regions: Mapping[int, Sequence[tuple[int, int]]],
) -> Iterator[tuple[tuple[str, int, int], ...]]:
    """The ways the relevant named ports resolve that a connection can tell apart.

    A connection to port p is matched by a named port only when the name resolves to p, so
    names resolving elsewhere are as good as absent: per port region and protocol, the names
    that resolve to its first port (none, one, or two of them at once), the others absent.
    """
    yield ()
    for proto in PORT_PROTOCOLS:
        here = [n for n in names if proto in uses[n].protocols]
        groups = [(n,) for n in here] + list(itertools.combinations(here, 2))
        for group in groups:
            for lo, _ in regions[proto]:
                yield tuple((name, proto, lo) for name in group)


def _with_ports(ep: SymbolicEndpoint, named: tuple[tuple[str, int, int], ...]) -> SymbolicEndpoint:
    if not named:
        return ep
    return replace(ep, named_ports=tuple(NamedPort(n, p, port) for n, p, port in named))


def _nodes(
    peers: Sequence[Peer],
    profile: EvaluationProfile,
    layers: set[Layer],
    address_classes: Sequence[Sequence[tuple[int, int]]],
    group_sets: Sequence[tuple[str, ...]],
    addresses: _Addresses,
) -> list[Endpoint]:
    """Nodes, when something can tell a node from an outside address: entities, a profile
    under which ipBlocks skip nodes, or security groups (nodes carry groups too)."""
    entities = any(p.entity is not None and p.entity is not Entity.WORLD for p in peers)
    ip_peers = any(p.ip is not None for p in peers)
    cloud = Layer.CLOUD in layers and len(group_sets) > 1
    if not (entities or cloud or (ip_peers and not profile.ipblock_matches_nodes)):
        return []
    wheres: list[Sequence[tuple[int, int]] | None] = (
        list(address_classes) if profile.ipblock_matches_nodes and address_classes else [None]
    )
    out: list[Endpoint] = []
    out.append(Endpoint("Node", None, LOCAL_NODE, {}, None, ("172.31.255.254",)))
    for i, (where, sgs) in enumerate(itertools.product(wheres, group_sets), start=1):
        ip = addresses.take(where) if where is not None else f"172.31.{i // 250}.{i % 250 + 1}"
        out.append(
            Endpoint("Node", None, f"polyfence-node-{i}", {}, None, (ip,), security_groups=sgs)
        )
    return out
