"""Allowed connectivity of a policy set on an inventory, computed over endpoint classes.

Never all pod pairs x all ports. Endpoints that no policy can tell apart (same namespace,
same values for every label key any selector reads, same service account, same named ports,
same address blocks) form one *class*; address space outside the inventory is cut into
*atoms* at every CIDR boundary the policies mention. For each class and direction the
ordered rules are evaluated symbolically over blocks of peer classes (Python ints used as
bitsets) and ``ConnSet``s, which gives tiers, order, deny, pass and the per-tier end-of-tier
drop exactly as the single-connection verdict does (see ``verdict.py``), only for whole
classes at once.

Scope of this engine: connections at L3/L4. A rule's L7 constraint (HTTP, DNS) does not
narrow the connections it matches here (an L7-restricted allow still lets the TCP connection
through, as Cilium and Istio do); translators report every L7 construct they drop or change
as a loss, so verification never has to see it. The proxy layer (Istio) is decided at L4 the
same way, with the mesh's own rules: it acts only on inbound TCP of workloads in the mesh,
STRICT mTLS refuses plain-text clients, identities exist only on mTLS connections, and rules
with HTTP fields cannot match ports declared as plain TCP (``matching.rule_conns``).
"""

from __future__ import annotations

import bisect
import ipaddress
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from polyfence.inventory import Endpoint, Inventory
from polyfence.model.peers import ANY_PEER, NetworkSet, Peer
from polyfence.model.policy import (
    Action,
    Direction,
    Governed,
    Layer,
    Policy,
    PolicySet,
    Rule,
    Tier,
)
from polyfence.model.selectors import Selector
from polyfence.semantics.connset import EMPTY, FULL, ConnSet
from polyfence.semantics.intervals import IPSet
from polyfence.semantics.matching import (
    NON_TCP_CONNS,
    TCP_CONNS,
    Matcher,
    Remote,
    enforced_on,
    identity_namespaces,
    mesh_relative,
    node_relative,
    rule_conns,
    uses_named_ports,
)
from polyfence.semantics.profile import DEFAULT_PROFILE, CloudEnforcingMode, EvaluationProfile
from polyfence.semantics.symbolic import SymbolicEndpoint

V6_OFFSET = 1 << 32  # atoms of both families on one number line: v4 first, then v6


def _selector_keys(policy_sets: Sequence[PolicySet]) -> frozenset[str]:
    keys: set[str] = set()

    def add(sel: Selector | None) -> None:
        if sel is not None:
            keys.update(sel.keys())

    for ps in policy_sets:
        for pol in ps:
            add(pol.subject.selector)
    for peer in _all_peers(policy_sets):
        add(peer.pods)
        add(peer.not_pods)
    return frozenset(keys)


def _all_peers(policy_sets: Sequence[PolicySet]) -> Iterator[Peer]:
    """Every peer predicate of every governed rule, local sides included."""
    for ps in policy_sets:
        for pol in ps:
            for rules in (pol.ingress, pol.egress):
                if isinstance(rules, Governed):
                    for rule in rules.rules:
                        yield from _rule_peers(rule)


def _rule_peers(rule: Rule) -> list[Peer]:
    """Every peer predicate of a rule: its peers and its constraint on the local side."""
    peers = [] if rule.peers is ANY_PEER else list(rule.peers)  # type: ignore[arg-type]
    if rule.local is not None:
        peers.append(rule.local)
    return peers


def _cidr_cuts(policy_sets: Sequence[PolicySet], extra: Iterable[IPSet] = ()) -> list[int]:
    """Sorted cut points (start of each atom) on the joint v4+v6 number line.

    ``extra`` are cut one by one, never as their union: two DNS answers side by side, or an
    answer inside a declared outside block, are told apart only by their own boundaries.
    """
    cuts = {0, V6_OFFSET}

    def add(ipset: IPSet) -> None:
        for lo, hi in ipset.v4:
            cuts.add(lo)
            cuts.add(hi + 1)
        for lo, hi in ipset.v6:
            cuts.add(V6_OFFSET + lo)
            cuts.add(V6_OFFSET + hi + 1)

    for part in extra:
        add(part)
    for ps in policy_sets:
        for net_set in ps.network_sets:
            add(net_set.ipset())
    for peer in _all_peers(policy_sets):
        ipset = peer.ipset()
        if ipset is not None:
            add(ipset)
    cuts.discard(V6_OFFSET + (1 << 128))
    return sorted(cuts)


def _line(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> int:
    return int(address) if address.version == 4 else V6_OFFSET + int(address)


def _atom_ipset(lo: int, hi: int) -> IPSet:
    if lo >= V6_OFFSET:
        return IPSet.from_cidrs(
            str(n)
            for n in ipaddress.summarize_address_range(
                ipaddress.IPv6Address(lo - V6_OFFSET), ipaddress.IPv6Address(hi - V6_OFFSET)
            )
        )
    return IPSet.from_cidrs(
        str(n)
        for n in ipaddress.summarize_address_range(
            ipaddress.IPv4Address(lo), ipaddress.IPv4Address(hi)
        )
    )


@dataclass(slots=True)
class EndpointClass:
    """Endpoints the policies cannot tell apart; ``external`` is the address block of an atom."""

    index: int
    representative: Remote
    members: list[Endpoint]
    external: IPSet | None = None

    @property
    def is_pod(self) -> bool:
        ep = self.representative.endpoint
        return ep is not None and ep.is_pod


class Universe:
    """The endpoint classes of an inventory, fine enough for every policy set given."""

    def __init__(
        self,
        inventory: Inventory,
        policy_sets: Sequence[PolicySet],
        profile: EvaluationProfile = DEFAULT_PROFILE,
    ) -> None:
        self.inventory = inventory
        self.profile = profile
        # The partition is cut by every set's CIDRs; each policy set matches only its own sets.
        self.matcher = Matcher(
            inventory, profile, (s for ps in policy_sets for s in ps.network_sets)
        )
        self._matchers: dict[tuple[NetworkSet, ...], Matcher] = {
            self.matcher.network_sets: self.matcher
        }
        keys = _selector_keys(policy_sets)
        self.cloud_standard = profile.cloud_enforcing is CloudEnforcingMode.STANDARD and any(
            Layer.CLOUD in ps.layers() for ps in policy_sets
        )
        # Standard mode: same-node flows bypass the cloud layer, so classes keep their node.
        uses_nodes = self.cloud_standard or any(
            node_relative(peer) for peer in _all_peers(policy_sets)
        )
        self.vpc = IPSet.from_cidrs(profile.vpc_cidrs)
        cuts = _cidr_cuts(
            policy_sets,
            [
                inventory.external,
                *(IPSet.from_cidr(cidr) for _, cidr in inventory.external_names),
                *(IPSet.from_cidrs(addresses) for _, addresses in inventory.dns),
                self.vpc,
            ],
        )
        self.classes: list[EndpointClass] = []
        groups: dict[tuple[object, ...], EndpointClass] = {}
        for ep in inventory.endpoints:
            remote = Remote(ep)
            atoms = frozenset(bisect.bisect_right(cuts, _line(a)) - 1 for a in remote.addresses)
            if ep.kind == "Node":
                key: tuple[object, ...] = ("node", ep.name)
            else:
                labels = tuple(sorted((k, v) for k, v in ep.labels.items() if k in keys))
                key = (
                    ep.namespace,
                    labels,
                    ep.service_account,
                    ep.named_ports,
                    ep.host_network,
                    atoms,
                    ep.node if uses_nodes else None,  # host vs remote-node tell nodes apart
                    ep.security_groups,
                    ep.mesh,
                    ep.mtls,
                    ep.opaque_ports,
                    _own_labels(ep),
                )
            cls = groups.get(key)
            if cls is None:
                cls = EndpointClass(len(self.classes), remote, [])
                groups[key] = cls
                self.classes.append(cls)
            cls.members.append(ep)
        self.endpoint_count = len(self.classes)
        external_space = inventory.external if inventory.external else IPSet.all()
        ends = [*cuts[1:], V6_OFFSET + (1 << 128)]
        for lo, end in zip(cuts, ends, strict=True):
            block = _atom_ipset(lo, end - 1) & external_space
            if not block:
                continue
            first = block.v4.min() if block.v4 else block.v6.min()
            address = (
                str(ipaddress.IPv4Address(first)) if block.v4 else str(ipaddress.IPv6Address(first))
            )
            self.classes.append(EndpointClass(len(self.classes), Remote(None, address), [], block))
        self.size = len(self.classes)
        self.all_bits = (1 << self.size) - 1
        self.endpoint_bits = (1 << self.endpoint_count) - 1
        self.pod_bits = 0
        self.by_namespace: dict[str, int] = defaultdict(int)
        for cls in self.classes:
            if cls.is_pod and self.matcher.acts_as_pod(cls.representative.endpoint):
                self.pod_bits |= 1 << cls.index
                ns = cls.representative.endpoint.namespace or ""  # type: ignore[union-attr]
                self.by_namespace[ns] |= 1 << cls.index
        self._peer_cache: dict[tuple[Peer, int, object], int] = {}
        # The universal inventory gives endpoints their own namespace labels: a name then no
        # longer determines the labels, so namespace selectors are matched per class.
        self.symbolic = any(isinstance(ep, SymbolicEndpoint) for ep in inventory.endpoints)

    def mtls_key(self, subject: EndpointClass) -> str:
        ep = subject.representative.endpoint
        return "disable" if ep is not None and self.matcher.mtls_mode(ep) == "DISABLE" else "mtls"

    def node_of(self, idx: int) -> str | None:
        """The node a class runs on (a node class is its own node); None for addresses."""
        ep = self.classes[idx].representative.endpoint
        if ep is None:
            return None
        return ep.name if ep.kind == "Node" else ep.node

    def cloud_bypass(self, src: int, dst: int) -> tuple[bool, bool]:
        """Standard enforcing mode: (the cloud layer is skipped altogether, only the source's
        cloud egress is skipped). Same-node flows never reach the VPC fabric; a pod's traffic
        to addresses outside the VPC leaves through its node (SNAT), judged by node groups."""
        if not self.cloud_standard:
            return False, False
        here, there = self.node_of(src), self.node_of(dst)
        if here is not None and here == there:
            return True, False
        block = self.classes[dst].external
        off_vpc = block is not None and not block <= self.vpc
        return False, off_vpc and self.classes[src].is_pod

    def matcher_for(self, policy_set: PolicySet) -> Matcher:
        """The matcher that sees exactly this policy set's network sets."""
        key = tuple(dict.fromkeys(policy_set.network_sets))
        found = self._matchers.get(key)
        if found is None:
            found = Matcher(self.inventory, self.profile, key)
            self._matchers[key] = found
        return found

    def peer_bits(
        self, peer: Peer, matcher: Matcher | None = None, subject: EndpointClass | None = None
    ) -> int:
        """The classes a peer matches, as a bitset (cached per peer, matcher and, for
        node-relative entities, subject class)."""
        matcher = matcher or self.matcher
        relative = node_relative(peer) or mesh_relative(peer)
        where: object = -1
        if relative and subject is not None:
            # Identities depend on the subject only through whether it disables mTLS.
            where = subject.index if node_relative(peer) else self.mtls_key(subject)
        key = (peer, id(matcher), where)
        cached = self._peer_cache.get(key)
        if cached is not None:
            return cached
        seen_from = subject.representative.endpoint if relative and subject is not None else None
        if peer.sets:
            candidates = self.all_bits  # network sets: external addresses and pods by address
        elif peer.namespace_names is not None:
            candidates = 0
            for ns in peer.namespace_names:
                candidates |= self.by_namespace.get(ns, 0)
        elif peer.namespace_selector is not None and self.symbolic:
            candidates = self.pod_bits
        elif peer.namespace_selector is not None:
            # Match the namespace selector once per namespace, not once per pod class.
            candidates = 0
            for ns, bits in self.by_namespace.items():
                if peer.namespace_selector.matches(self.matcher.ns_labels(ns)):
                    candidates |= bits
        elif peer.wants_pod:
            candidates = self.pod_bits
        elif peer.principal is not None and (names := identity_namespaces(peer.principal)):
            candidates = 0  # positive identities: mesh pods of the namespaces they name
            for ns in names:
                candidates |= self.by_namespace.get(ns, 0)
        else:
            candidates = self.all_bits
        bits = 0
        for idx in iter_bits(candidates):
            if matcher.peer_matches(peer, self.classes[idx].representative, seen_from):
                bits |= 1 << idx
        self._peer_cache[key] = bits
        return bits


def _own_labels(ep: Endpoint) -> tuple[object, ...] | None:
    """The namespace and account labels a universal-inventory endpoint carries itself."""
    if not isinstance(ep, SymbolicEndpoint):
        return None
    account = None if ep.account_labels is None else tuple(sorted(ep.account_labels.items()))
    return (tuple(sorted(ep.namespace_labels.items())), account)


def iter_bits(bits: int) -> Iterator[int]:
    """Indices of the set bits, ascending."""
    text = bin(bits)[:1:-1]
    idx = text.find("1")
    while idx != -1:
        yield idx
        idx = text.find("1", idx + 1)


@dataclass(slots=True)
class _Block:
    bits: int
    undecided: ConnSet
    allowed: ConnSet
    passed: ConnSet


def _order(policies: Sequence[Policy], tiers: dict[str, Tier]) -> list[tuple[Tier, list[Policy]]]:
    grouped: dict[str, list[Policy]] = defaultdict(list)
    for pol in policies:
        grouped[pol.tier].append(pol)
    ordered = sorted(grouped, key=lambda name: tiers[name].sort_key)
    return [(tiers[name], sorted(grouped[name], key=lambda p: p.sort_key)) for name in ordered]


class DirectionEvaluator:
    """Symbolic first-match evaluation of one subject class's rules in one direction."""

    def __init__(
        self, universe: Universe, policy_set: PolicySet, layer: Layer = Layer.NETWORK
    ) -> None:
        self.universe = universe
        self.layer = layer
        self.matcher = universe.matcher_for(policy_set)
        self.tiers = {p.tier: policy_set.tier(p.tier) for p in policy_set}
        self._rule_cache: dict[tuple[int, object], list[tuple[int, ConnSet]]] = {}
        self._local_cache: dict[tuple[Peer, int], bool] = {}

    def _rule_parts(
        self, rule: Rule, direction: Direction, subject: EndpointClass
    ) -> list[tuple[int, ConnSet]]:
        """(peer bitset, conns) parts of a rule; egress named ports split the peers by resolution."""
        u = self.universe
        if rule.peers is ANY_PEER:
            peer_bits = u.all_bits
        else:
            peer_bits = 0
            for peer in rule.peers:  # type: ignore[union-attr]
                peer_bits |= u.peer_bits(peer, self.matcher, subject)
        if not peer_bits:
            return []
        if direction is Direction.INGRESS or not uses_named_ports(rule.ports):
            dst = subject.representative.endpoint if direction is Direction.INGRESS else None
            conns = rule_conns(rule, self.layer, dst)
            return [(peer_bits, conns)] if conns else []
        by_conns: dict[ConnSet, int] = defaultdict(int)
        for idx in iter_bits(peer_bits):
            conns = rule_conns(rule, self.layer, u.classes[idx].representative.endpoint)
            if conns:
                by_conns[conns] |= 1 << idx
        return [(bits, conns) for conns, bits in by_conns.items()]

    def _subject_key(self, rule: Rule, direction: Direction, subject: EndpointClass) -> object:
        """What of the subject a rule's evaluation depends on (the rule cache key): nothing,
        the subject itself, or only the mesh facts (mTLS off, ports declared TCP)."""
        if (direction is Direction.INGRESS and uses_named_ports(rule.ports)) or _node_relative(
            rule
        ):
            return subject.index
        if self.layer is not Layer.L7 or (rule.l7 is None and not _mesh_relative(rule)):
            return -1
        ep = subject.representative.endpoint
        opaque = ep.opaque_ports if ep is not None and rule.l7 is not None else ()
        mtls = self.universe.mtls_key(subject) if _mesh_relative(rule) else ""
        return (opaque, mtls)

    def _local_ok(self, local: Peer, subject: EndpointClass) -> bool:
        key = (local, subject.index)
        found = self._local_cache.get(key)
        if found is None:
            found = self.matcher.peer_matches(local, subject.representative)
            self._local_cache[key] = found
        return found

    def evaluate(
        self, subject: EndpointClass, policies: Sequence[Policy], direction: Direction
    ) -> list[tuple[int, ConnSet]]:
        """Blocks (peer bitset, allowed conns) covering every peer class."""
        u = self.universe
        blocks = [_Block(u.all_bits, FULL, EMPTY, EMPTY)]
        for tier, tier_policies in _order(policies, self.tiers):
            drops = False
            for pol in tier_policies:
                rules = pol.direction(direction)
                assert isinstance(rules, Governed)
                drops = drops or rules.isolates
                for rule in rules.rules:
                    if rule.action is Action.LOG:
                        continue
                    if rule.local is not None and not self._local_ok(rule.local, subject):
                        continue
                    key = (id(rule), self._subject_key(rule, direction, subject))
                    parts = self._rule_cache.get(key)
                    if parts is None:
                        parts = self._rule_parts(rule, direction, subject)
                        self._rule_cache[key] = parts
                    for peer_bits, conns in parts:
                        blocks = _apply(blocks, peer_bits, conns, rule.action)
            for block in blocks:
                carried = block.passed
                if not (drops and tier.default_action is Action.DENY):
                    carried = carried | block.undecided
                block.undecided, block.passed = carried, EMPTY
            blocks = _merge(blocks)
        merged: dict[ConnSet, int] = defaultdict(int)
        for block in blocks:
            merged[block.allowed | block.undecided] |= block.bits
        return [(bits, conns) for conns, bits in merged.items()]


def _node_relative(rule: Rule) -> bool:
    return rule.peers is not ANY_PEER and any(node_relative(p) for p in rule.peers)  # type: ignore[union-attr]


def _mesh_relative(rule: Rule) -> bool:
    return rule.peers is not ANY_PEER and any(mesh_relative(p) for p in rule.peers)  # type: ignore[union-attr]


def _apply(blocks: list[_Block], peer_bits: int, conns: ConnSet, action: Action) -> list[_Block]:
    out: list[_Block] = []
    for block in blocks:
        inside = block.bits & peer_bits
        if not inside:
            out.append(block)
            continue
        hit = block.undecided & conns
        if not hit:
            out.append(block)
            continue
        outside = block.bits & ~peer_bits
        if outside:
            out.append(_Block(outside, block.undecided, block.allowed, block.passed))
        allowed, passed = block.allowed, block.passed
        if action is Action.ALLOW:
            allowed = allowed | hit
        elif action is Action.PASS:
            passed = passed | hit
        out.append(_Block(inside, block.undecided - hit, allowed, passed))
    return out


def _merge(blocks: list[_Block]) -> list[_Block]:
    merged: dict[tuple[ConnSet, ConnSet], _Block] = {}
    for block in blocks:
        key = (block.undecided, block.allowed)
        found = merged.get(key)
        if found is None:
            merged[key] = _Block(block.bits, block.undecided, block.allowed, EMPTY)
        else:
            found.bits |= block.bits
    return list(merged.values())


@dataclass(slots=True)
class _LayerRows:
    """One layer's evaluated rows: per class, what its egress allows to each class and what
    its ingress accepts from each class (None: not governed, everything), plus bitsets of the
    non-empty entries so that empty pairs are never visited."""

    egress: list[list[ConnSet] | None]
    ingress: list[list[ConnSet] | None]
    egress_bits: list[int]  # per source: destinations its egress lets anything through to
    accepted_by: list[int]  # per source: governed destinations whose ingress accepts something
    open_ingress: int  # destinations whose ingress is not governed


class Connectivity:
    """Allowed connections between every ordered pair of endpoint classes, per layer ANDed."""

    def __init__(self, universe: Universe, policy_set: PolicySet) -> None:
        self.universe = universe
        self.policy_set = policy_set
        self._and_cache: dict[tuple[ConnSet, ConnSet], ConnSet] = {}
        present = set(policy_set.layers())
        if any(universe.matcher.mtls_mode(ep) == "STRICT" for ep in _mesh_endpoints(universe)):
            present.add(Layer.L7)  # STRICT mTLS refuses plain text even without policies
        layers = sorted(present, key=lambda layer: layer.value)
        self._cloud = [layer is Layer.CLOUD for layer in layers]
        self._layers = [
            self._layer_rows(
                policy_set.with_policies(p for p in policy_set if p.layer is layer), layer
            )
            for layer in layers
        ]
        self._is_pod_bits = 0
        for cls in universe.classes:
            if cls.is_pod:
                self._is_pod_bits |= 1 << cls.index

    def _governing(self, policy_set: PolicySet) -> tuple[list[list[Policy]], list[list[Policy]]]:
        u = self.universe
        egress: list[list[Policy]] = [[] for _ in range(u.size)]
        ingress: list[list[Policy]] = [[] for _ in range(u.size)]
        for pol in policy_set:
            gov_in = isinstance(pol.ingress, Governed)
            gov_out = isinstance(pol.egress, Governed)
            if not (gov_in or gov_out):
                continue
            sub = pol.subject
            if sub.security_group is not None:
                candidates = u.endpoint_bits  # any endpoint may carry a group, nodes included
            elif sub.namespace is not None:
                candidates = u.by_namespace.get(sub.namespace, 0)
            else:
                candidates = u.pod_bits
            for idx in iter_bits(candidates):
                ep = u.classes[idx].representative.endpoint
                if ep is not None and enforced_on(pol.layer, ep) and u.matcher.selects(sub, ep):
                    if gov_in:
                        ingress[idx].append(pol)
                    if gov_out:
                        egress[idx].append(pol)
        return egress, ingress

    def _line(self, blocks: list[tuple[int, ConnSet]]) -> tuple[list[ConnSet] | None, int]:
        u = self.universe
        if len(blocks) == 1 and blocks[0][1] == FULL:
            return None, u.all_bits
        line: list[ConnSet] = [EMPTY] * u.size
        nonempty = 0
        for bits, conns in blocks:
            if not conns:
                continue
            nonempty |= bits
            for idx in iter_bits(bits):
                line[idx] = conns
        return line, nonempty

    def _layer_rows(self, policy_set: PolicySet, layer: Layer = Layer.NETWORK) -> _LayerRows:
        u = self.universe
        evaluator = DirectionEvaluator(u, policy_set, layer)
        gov_egress, gov_ingress = self._governing(policy_set)
        if layer is Layer.L7:
            return self._proxy_rows(evaluator, gov_ingress)
        egress: list[list[ConnSet] | None] = [None] * u.size
        ingress: list[list[ConnSet] | None] = [None] * u.size
        egress_bits = [u.all_bits] * u.size
        accepted_by = [0] * u.size
        open_ingress = 0
        for cls in u.classes:
            idx = cls.index
            if gov_egress[idx]:
                blocks = evaluator.evaluate(cls, gov_egress[idx], Direction.EGRESS)
                egress[idx], egress_bits[idx] = self._line(blocks)
            if gov_ingress[idx]:
                blocks = evaluator.evaluate(cls, gov_ingress[idx], Direction.INGRESS)
                line, sources = self._line(blocks)
                ingress[idx] = line
                if line is None:
                    open_ingress |= 1 << idx
                else:
                    bit = 1 << idx
                    for src in iter_bits(sources):
                        accepted_by[src] |= bit
            else:
                open_ingress |= 1 << idx
        return _LayerRows(egress, ingress, egress_bits, accepted_by, open_ingress)

    def _proxy_rows(
        self, evaluator: DirectionEvaluator, gov_ingress: list[list[Policy]]
    ) -> _LayerRows:
        """The mesh layer: inbound only, TCP only, on workloads in the mesh; STRICT mTLS refuses
        plain-text clients before any authorization policy is consulted."""
        u = self.universe
        matcher = evaluator.matcher
        ingress: list[list[ConnSet] | None] = [None] * u.size
        proxied: dict[ConnSet, ConnSet] = {}  # what the proxy lets through: its TCP verdict
        for cls in u.classes:
            ep = cls.representative.endpoint
            if ep is None or not ep.mesh or not matcher.acts_as_pod(ep):
                continue
            strict = matcher.mtls_mode(ep) == "STRICT"
            if not gov_ingress[cls.index] and not strict:
                continue
            line: list[ConnSet] = [FULL] * u.size
            if gov_ingress[cls.index]:
                for bits, conns in evaluator.evaluate(
                    cls, gov_ingress[cls.index], Direction.INGRESS
                ):
                    for src in iter_bits(bits):
                        line[src] = conns
            for src in range(u.size):
                conns = line[src]
                if strict and not matcher.mutual_tls(u.classes[src].representative, ep):
                    conns = EMPTY
                found = proxied.get(conns)
                if found is None:
                    found = proxied[conns] = (conns & TCP_CONNS) | NON_TCP_CONNS
                line[src] = found
            ingress[cls.index] = line
        # Non-TCP always passes, so every destination accepts something from every source.
        return _LayerRows([None] * u.size, ingress, [u.all_bits] * u.size, [0] * u.size, u.all_bits)

    def _and(self, a: ConnSet, b: ConnSet) -> ConnSet:
        if a is FULL:
            return b
        if b is FULL:
            return a
        key = (a, b)
        found = self._and_cache.get(key)
        if found is None:
            found = a & b
            self._and_cache[key] = found
        return found

    def allowed(self, src: int, dst: int) -> ConnSet:
        """What ``src`` class may open towards ``dst`` class: src egress AND dst ingress, every layer."""
        result = FULL
        for rows, cloud in zip(self._layers, self._cloud, strict=True):
            egress = rows.egress[src]
            ingress = rows.ingress[dst]
            if cloud and self.universe.cloud_standard:
                skip_all, skip_egress = self.universe.cloud_bypass(src, dst)
                if skip_all:
                    continue
                if skip_egress:
                    egress = None
            if egress is not None:
                result = self._and(result, egress[dst])
            if ingress is not None:
                result = self._and(result, ingress[src])
            if not result:
                return EMPTY
        return result

    def candidates(self, src: int) -> int:
        """Destinations that may get anything from ``src`` (a superset of the non-empty pairs)."""
        bits = self.universe.all_bits
        for rows, cloud in zip(self._layers, self._cloud, strict=True):
            if cloud and self.universe.cloud_standard:
                continue  # bypassed flows make the layer's bitsets no bound
            bits &= rows.egress_bits[src] & (rows.accepted_by[src] | rows.open_ingress)
        if not self.universe.classes[src].is_pod:
            bits &= self._is_pod_bits  # external/node to external/node is not cluster traffic
        return bits

    def class_pairs(self) -> Iterator[tuple[int, int]]:
        """Ordered class pairs with at least one pod end (external↔external is not cluster traffic)."""
        u = self.universe
        for s in range(u.size):
            targets = u.all_bits if u.classes[s].is_pod else self._is_pod_bits
            for d in iter_bits(targets):
                yield s, d

    def matrix(self) -> dict[tuple[int, int], ConnSet]:
        """Every class pair with something allowed (only candidate pairs are visited)."""
        out: dict[tuple[int, int], ConnSet] = {}
        for s in range(self.universe.size):
            for d in iter_bits(self.candidates(s)):
                conns = self.allowed(s, d)
                if conns:
                    out[(s, d)] = conns
        return out

    def endpoint_pairs(self) -> Iterator[tuple[str, str, ConnSet]]:
        """Expanded to endpoints: ``(src ref, dst ref, conns)`` for each pair with anything allowed.

        Address atoms outside the inventory that get the same connections from (or to) the
        same class are merged and shown as one minimal CIDR list. A pod's connection to itself
        is not listed (always allowed); a workload standing for several pods is listed with itself.
        """
        u = self.universe
        merged: dict[tuple[int, int, ConnSet], IPSet] = {}
        pod_pairs: list[tuple[int, int, ConnSet]] = []
        for (s, d), conns in self.matrix().items():
            if u.classes[d].external is not None:
                key = (s, -1, conns)
                merged[key] = merged.get(key, IPSet.empty()) | u.classes[d].external
            elif u.classes[s].external is not None:
                key = (-1, d, conns)
                merged[key] = merged.get(key, IPSet.empty()) | u.classes[s].external
            else:
                pod_pairs.append((s, d, conns))
        for s, d, conns in pod_pairs:
            for sn, sep in _names(u.classes[s]):
                for dn, dep in _names(u.classes[d]):
                    if sep is dep and sep.kind in ("Pod", "Node"):
                        continue
                    yield sn, dn, conns
        for (s, d, conns), block in merged.items():
            text = ",".join(block.to_cidrs())
            if d == -1:
                for sn, _ in _names(u.classes[s]):
                    yield sn, text, conns
            else:
                for dn, _ in _names(u.classes[d]):
                    yield text, dn, conns


def _mesh_endpoints(universe: Universe) -> Iterator[Endpoint]:
    for cls in universe.classes:
        ep = cls.representative.endpoint
        if ep is not None and ep.mesh:
            yield ep


def _names(cls: EndpointClass) -> list[tuple[str, Endpoint]]:
    return [(ep.ref, ep) for ep in cls.members]


def connectivity(
    policy_set: PolicySet,
    inventory: Inventory,
    profile: EvaluationProfile = DEFAULT_PROFILE,
) -> Connectivity:
    """The allowed connectivity of a policy set on an inventory."""
    return Connectivity(Universe(inventory, [policy_set], profile), policy_set)
