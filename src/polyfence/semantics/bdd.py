"""Every-cluster verdicts by symbolic evaluation: the network-layer semantics as BDDs.

The universal inventory (``semantics.universe``) enumerates endpoint classes, and the product
of independent label, address and port regions makes it explode on real policy sets. Here the
same question is asked of *one connection* described by variables instead: for the source and
the destination, its kind (pod, node, outside address), namespace name, namespace labels,
service account and its labels, pod labels, address region and (destination) which named
ports resolve to the connection's port; plus the connection's protocol/port region. Every
finite domain is the set of values the selectors in play can tell apart (mentioned values,
witnesses for string predicates, one "any other" value, absence), encoded in binary with the
source and destination bits of one key interleaved.

Selectors, peers, subjects and ports become BDDs over those variables, and each policy set's
verdict is evaluated exactly as ``verdict.py`` states it (per direction, tiers in order,
policies by sort key, first matching rule decides, pass, end-of-tier drop, default allow) with
the subject symbolic: ``allowed_A`` and ``allowed_B`` are BDDs, and the sets are equivalent on
every cluster iff ``(allowed_A xor allowed_B) and consistent`` is false, where *consistent*
says the two ends can live in one cluster (a named namespace has one set of labels, a named
account in it too; two endpoints never share an address; outside addresses and nodes talk to
pods only). A satisfying assignment is decoded into concrete endpoints, re-checked with the
single-connection verdict and returned as a counterexample cluster.

Layers AND, as ``verdict.py`` evaluates them. The mesh (L7) layer adds per-end variables for
mesh membership and the peer-authentication mode (STRICT/PERMISSIVE/DISABLE, ``None`` in a
counterexample when it is the profile's default) and one for "the Service declares the
connection's port opaque" at the destination: the proxy judges inbound TCP of mesh pods only,
STRICT refuses clients without a proxy, identities (principals ``TD/ns/NS/sa/SA``, certificate
namespaces, wildcards and ``not`` forms) exist only on mutually authenticated connections and
are evaluated on the namespace and account variables (their domains hold witnesses of every
pattern), and rules with HTTP fields never match opaque ports (an ALLOW) or only those (a DENY).
The cloud layer adds per-end membership of each security group no binding defines (a free
boolean: an unbound group is evaluated wherever it could be attached, pods and nodes alike;
bound groups are selector subjects already) and, under the standard EKS enforcing mode, a
"same node" variable (same-node flows bypass the groups) and address regions cut at the VPC
(a pod's egress leaving the VPC is SNATed to its node).

Scope: everything the readers produce except FQDN peers and the host/remote-node entities,
which ``out_of_scope`` reports and leaves to the universal inventory.
"""

from __future__ import annotations

import ipaddress
import itertools
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import reduce
from typing import Any

from polyfence.inventory import NAMESPACE_NAME_LABEL, Endpoint, NamedPort, Namespace
from polyfence.inventory import build_inventory as _build_inventory
from polyfence.model.labels import (
    KIND_KEY,
    KIND_NETWORK_SET,
    KIND_POD,
    NAME_KEY,
    NAMESPACE_KEY,
    SERVICE_ACCOUNT_KEY,
)
from polyfence.model.peers import ANY_PEER, Entity, FqdnMatch, NetworkSet, Peer, PrincipalMatch
from polyfence.model.policy import (
    Action,
    Direction,
    Governed,
    Layer,
    Policy,
    PolicySet,
    Rule,
    Subject,
)
from polyfence.model.ports import ANY_PORTS, ICMP_PROTOCOLS, PORT_PROTOCOLS, PortMatch, Protocol
from polyfence.model.selectors import All, And, EndsWith, Global, Not, Or, Selector, StartsWith
from polyfence.semantics.compare import Counterexample
from polyfence.semantics.connset import ConnSet
from polyfence.semantics.counterexample import reproduce
from polyfence.semantics.engine import V6_OFFSET, _all_peers, _order
from polyfence.semantics.intervals import IntervalSet, IPSet
from polyfence.semantics.matching import fqdn_matches, istio_match, matches_global_scope
from polyfence.semantics.profile import DEFAULT_PROFILE, CloudEnforcingMode, EvaluationProfile
from polyfence.semantics.universe import (
    Undecided,
    _address_classes,
    _fresh,
    _mentions,
    _string_witnesses,
    _values,
)
from polyfence.semantics.verdict import Connection

try:  # CUDD through dd's Cython binding; the pure-Python twin has the same API
    from dd import cudd as _dd
except ImportError:  # pragma: no cover - depends on the wheel available
    from dd import autoref as _dd

Fn = Any  # a BDD node of ``dd`` (untyped library)

__all__ = ["SymbolicResult", "decide", "out_of_scope"]

KINDS = ("pod", "node", "external")
POD, NODE, EXTERNAL = range(3)
SIDES = ("src", "dst")
CONTAINER_PROTOCOLS = (int(Protocol.TCP), int(Protocol.UDP), int(Protocol.SCTP))
_PORTED = sorted(int(p) for p in PORT_PROTOCOLS | ICMP_PROTOCOLS)
_NICE = {POD: "10.244.0.10", NODE: "172.31.0.10", EXTERNAL: "203.0.113.10"}
MTLS_MODES = ("STRICT", "PERMISSIVE", "DISABLE")
ENDPOINT_LABEL = "polyfence.dev/endpoint"
TCP = int(Protocol.TCP)


# scope ------------------------------------------------------------------------------------


def out_of_scope(policy_sets: Sequence[PolicySet]) -> str | None:
    """The first construct this procedure does not model, in words, or None: every construct
    the readers produce is modelled (kept as the hook for constructs to come)."""
    del policy_sets
    return None


# finite-domain variables ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Var:
    """A finite-domain variable: ``values[i]`` is encoded by ``bits`` (most significant first)."""

    name: str
    values: tuple[Any, ...]
    bits: tuple[str, ...]
    fresh: int | None = None  # index of the "any other" value (two ends may differ in it)


def _width(n: int) -> int:
    return max(0, (n - 1).bit_length())


class _Space:
    """The BDD manager with finite-domain variables declared in interleaved groups."""

    def __init__(self) -> None:
        self.bdd = _dd.BDD()
        self.bdd.configure(reordering=False)
        self.true: Fn = self.bdd.true
        self.false: Fn = self.bdd.false
        self._count = 0
        self._eq: dict[tuple[str, int], Fn] = {}
        self.vars: dict[str, _Var] = {}

    def group(self, specs: Sequence[tuple[str, tuple[Any, ...], int | None]]) -> list[_Var]:
        """Declare variables whose bits interleave (same-key variables of several ends)."""
        width = max((_width(len(values)) for _, values, _ in specs), default=0)
        names: list[list[str]] = [[] for _ in specs]
        for _level in range(width):
            for i, (_, values, _) in enumerate(specs):
                if len(names[i]) < _width(len(values)):
                    self._count += 1
                    bit = f"b{self._count}"
                    self.bdd.declare(bit)
                    names[i].append(bit)
        out = []
        for (name, values, fresh), bits in zip(specs, names, strict=True):
            var = _Var(name, values, tuple(bits), fresh)
            self.vars[name] = var
            out.append(var)
        return out

    def boolean(self, name: str) -> _Var:
        (var,) = self.group([(name, (False, True), None)])
        return var

    def eq(self, var: _Var, index: int) -> Fn:
        key = (var.name, index)
        found = self._eq.get(key)
        if found is None:
            found = self.true
            width = len(var.bits)
            for pos, bit in enumerate(var.bits):
                lit = self.bdd.var(bit)
                on = (index >> (width - 1 - pos)) & 1
                found = found & (lit if on else ~lit)
            self._eq[key] = found
        return found

    def among(self, var: _Var, indices: Iterable[int]) -> Fn:
        return disjoin(self, [self.eq(var, i) for i in indices])

    def valid(self, var: _Var) -> Fn:
        """The codes that stand for a value (a domain of 3 has a fourth, unused code)."""
        if len(var.values) == 1 << len(var.bits):
            return self.true
        return self.among(var, range(len(var.values)))

    def same(self, x: _Var, y: _Var) -> Fn:
        out = self.true
        for bx, by in zip(x.bits, y.bits, strict=True):
            out = out & ~self.bdd.apply("xor", self.bdd.var(bx), self.bdd.var(by))
        return out

    def value(self, var: _Var, assignment: Mapping[str, bool]) -> int:
        index = 0
        for bit in var.bits:
            index = (index << 1) | int(bool(assignment.get(bit, False)))
        return index


def disjoin(space: _Space, items: Sequence[Fn]) -> Fn:
    """Balanced OR (keeps intermediate BDDs small)."""
    if not items:
        return space.false
    layer = list(items)
    while len(layer) > 1:
        layer = [
            layer[i] | layer[i + 1] if i + 1 < len(layer) else layer[i]
            for i in range(0, len(layer), 2)
        ]
    return layer[0]


def conjoin(space: _Space, items: Sequence[Fn]) -> Fn:
    return reduce(lambda x, y: x & y, items, space.true)


# the facts in play ------------------------------------------------------------------------


def _subjects(sets: Sequence[PolicySet]) -> list[Subject]:
    out: dict[Subject, None] = {}
    for ps in sets:
        for pol in ps:
            if isinstance(pol.ingress, Governed) or isinstance(pol.egress, Governed):
                out[pol.subject] = None
    return list(out)


def _port_specs(sets: Sequence[PolicySet]) -> Iterable[Any]:
    for ps in sets:
        for pol in ps:
            for rules in (pol.ingress, pol.egress):
                if isinstance(rules, Governed):
                    for rule in rules.rules:
                        if isinstance(rule.ports, tuple):
                            yield from rule.ports


def _conn_atoms(sets: Sequence[PolicySet]) -> list[tuple[int, int, int, int]]:
    """(protocol lo, hi, port lo, hi) blocks no port spec tells apart."""
    proto_cuts = {0, 256, *_PORTED, *(p + 1 for p in _PORTED)}
    port_cuts = {0, 1, 65536}
    for spec in _port_specs(sets):
        for lo, hi in spec.protocols:
            proto_cuts.update((lo, hi + 1))
        for lo, hi in spec.ports:
            port_cuts.update((lo, hi + 1))
    protos = sorted(p for p in proto_cuts if 0 <= p <= 256)
    ports = sorted(p for p in port_cuts if 0 <= p <= 65536)
    out: list[tuple[int, int, int, int]] = []
    for plo, pnext in itertools.pairwise(protos):
        phi = pnext - 1
        if plo in PORT_PROTOCOLS or plo in ICMP_PROTOCOLS:
            first = 1 if plo in PORT_PROTOCOLS else 0
            for lo, nxt in itertools.pairwise(ports):
                if lo >= first:
                    out.append((plo, phi, lo, nxt - 1))
        else:
            out.append((plo, phi, 0, 65535))
    # TCP first, then UDP, SCTP, ICMP: the order counterexamples prefer.
    rank = {6: 0, 17: 1, 132: 2, 1: 3, 58: 4}
    out.sort(key=lambda a: (rank.get(a[0], 5), a[0], a[2]))
    return out


@dataclass(slots=True)
class _Facts:
    pod_keys: dict[str, tuple[str | None, ...]]
    ns_keys: dict[str, tuple[str | None, ...]]
    sa_keys: dict[str, tuple[str | None, ...]]
    ns_names: tuple[str, ...]  # the last one is the fresh representative
    accounts: tuple[str, ...]  # the last one is the fresh representative
    set_namespaces: tuple[str, ...]
    regions: list[list[tuple[int, int]]]
    named: tuple[str, ...]
    atoms: list[tuple[int, int, int, int]]
    name_strings: tuple[Selector, ...]  # string predicates over namespace names
    sa_strings: tuple[Selector, ...]  # and over account names
    mesh: bool  # a mesh (L7) policy is in play: mesh membership and mTLS modes matter
    opaque: bool  # and one of its rules has HTTP fields: opaque ports matter
    groups: tuple[str, ...]  # security groups no binding defines (free memberships)
    standard: bool  # a cloud policy under the standard enforcing mode: nodes and the VPC matter
    node_entities: bool  # host / remote-node peers: whether the ends share a node matters
    dns_names: tuple[str, ...]  # one DNS name per class of names the FQDN peers tell apart
    vpc: IPSet


def _facts(sets: Sequence[PolicySet], profile: EvaluationProfile) -> _Facts:
    subjects = _subjects(sets)
    peers = list(dict.fromkeys(_all_peers(sets)))
    pod_sels = [s.selector for s in subjects]
    pod_sels += [sel for p in peers for sel in (p.pods, p.not_pods) if sel is not None]
    ns_sels = [s.namespace_selector for s in subjects if s.namespace_selector is not None]
    ns_sels += [p.namespace_selector for p in peers if p.namespace_selector is not None]
    sa_sels = [s.service_accounts for s in subjects if s.service_accounts is not None]
    sa_sels += [
        p.service_account.selector
        for p in peers
        if p.service_account is not None and p.service_account.selector is not None
    ]
    pseudo = {NAMESPACE_KEY, SERVICE_ACCOUNT_KEY, KIND_KEY}

    def keys(sels: Sequence[Selector], skip: set[str]) -> dict[str, tuple[str | None, ...]]:
        found = sorted(frozenset[str]().union(*(s.keys() for s in sels)) - skip)
        return {k: tuple(_values(k, sels, "polyfence-other")) for k in found}

    names: set[str] = {s.namespace for s in subjects if s.namespace is not None}
    set_namespaces = sorted({n.namespace for ps in sets for n in ps.network_sets if n.namespace})
    names.update(set_namespaces)
    accounts: set[str] = set()
    for p in peers:
        names.update(p.namespace_names or ())
        if p.service_account is not None and p.service_account.names:
            accounts.update(p.service_account.names)
    name_strings: list[Selector] = []
    sa_strings: list[Selector] = []
    for key, sels, into, strings in (
        (NAMESPACE_NAME_LABEL, ns_sels, names, name_strings),
        (NAMESPACE_KEY, pod_sels, names, name_strings),
        (SERVICE_ACCOUNT_KEY, pod_sels, accounts, sa_strings),
        (NAME_KEY, sa_sels, accounts, sa_strings),
    ):
        exact, found = _mentions(key, sels)
        into.update(exact)
        strings.extend(found)
    for p in peers:
        if p.principal is not None:
            _principal_witnesses(p.principal, names, name_strings, accounts, sa_strings)
    # Witnesses over every predicate on a name at once (selectors and identities combine).
    names.update(_string_witnesses(name_strings, names))
    accounts.update(_string_witnesses(sa_strings, accounts))
    fresh_ns = _fresh("polyfence-ns", names, name_strings)
    fresh_sa = _fresh("default", accounts, sa_strings)
    layers = {pol.layer for ps in sets for pol in ps}
    standard = Layer.CLOUD in layers and profile.cloud_enforcing is CloudEnforcingMode.STANDARD
    vpc = IPSet.from_cidrs(profile.vpc_cidrs)
    regions = _address_classes(sets, profile, peers) or [[(0, V6_OFFSET + (1 << 128) - 1)]]
    if standard:
        regions = _split_regions(regions, vpc)
    named = sorted({n for spec in _port_specs(sets) for n in spec.named | spec.not_named})
    groups = {s.security_group for s in subjects if s.security_group is not None}
    groups.update(p.security_group for p in peers if p.security_group is not None)
    opaque = any(
        rule.l7 is not None
        for ps in sets
        for pol in ps
        if pol.layer is Layer.L7 and isinstance(pol.ingress, Governed)
        for rule in pol.ingress.rules
    )
    return _Facts(
        keys(pod_sels, pseudo),
        keys(ns_sels, {NAMESPACE_NAME_LABEL}),
        keys(sa_sels, {NAME_KEY}),
        (*sorted(names), fresh_ns),
        (*sorted(accounts), fresh_sa),
        tuple(set_namespaces),
        regions,
        tuple(named),
        _conn_atoms(sets),
        tuple(name_strings),
        tuple(sa_strings),
        Layer.L7 in layers,
        opaque,
        tuple(sorted(groups)),
        standard,
        any(p.entity in (Entity.HOST, Entity.REMOTE_NODE) for p in peers),
        _dns_names([p.fqdn for p in peers if p.fqdn is not None]),
        vpc,
    )


def _dns_names(matches: Sequence[FqdnMatch]) -> tuple[str, ...]:
    """One name per realisable way of matching the FQDN peers (a name no peer matches is left
    out: its answers change nothing). Candidates: the exact names, each pattern with its ``*``
    filled (with ``x``, with text no name mentions, so that an exact name inside the pattern
    never stands for the whole pattern) or empty, and names fitting two patterns label by label
    (``*`` never spans a dot).
    """
    matches = list(dict.fromkeys(matches))
    if not matches:
        return ()
    exact = sorted({n.rstrip(".").lower() for m in matches for n in m.names})
    patterns = sorted({t.rstrip(".").lower() for m in matches for t in m.patterns} - {"*"})
    candidates = [*exact, "polyfence-name.example"]
    for pattern in patterns:
        # Filled with a mentioned-looking text, with one no name mentions, and empty.
        candidates += [pattern.replace("*", fill) for fill in ("x", "polyfence-z", "")]
    for first, second in itertools.permutations(patterns, 2):
        merged = _merge_patterns(first, second)
        if merged is not None:
            candidates.append(merged)
    out: dict[tuple[bool, ...], str] = {}
    for name in candidates:
        if not name or name.startswith(".") or ".." in name:
            continue
        vector = tuple(fqdn_matches(m, name) for m in matches)
        if any(vector):
            out.setdefault(vector, name)
    return tuple(out.values())


def _merge_patterns(first: str, second: str) -> str | None:
    """A name both patterns match when they have as many labels, filling each label of the
    first with the second's literal text where that fits, else ``x``."""
    left, right = first.split("."), second.split(".")
    if len(left) != len(right):
        return None
    labels = []
    for a, b in zip(left, right, strict=True):
        options = [b.replace("*", "x"), a.replace("*", b.replace("*", "")), a.replace("*", "x")]
        fits = [
            o
            for o in options
            if o
            and fqdn_matches(FqdnMatch(patterns=frozenset({a})), o)
            and fqdn_matches(FqdnMatch(patterns=frozenset({b})), o)
        ]
        if not fits:
            return None
        labels.append(fits[0])
    return ".".join(labels)


def _split_regions(regions: list[list[tuple[int, int]]], vpc: IPSet) -> list[list[tuple[int, int]]]:
    """Each address region cut into its part inside the VPC and its part outside."""
    lines = [(lo, hi) for lo, hi in vpc.v4] + [
        (V6_OFFSET + lo, V6_OFFSET + hi) for lo, hi in vpc.v6
    ]
    out: list[list[tuple[int, int]]] = []
    for ranges in regions:
        inside: list[tuple[int, int]] = []
        outside: list[tuple[int, int]] = []
        for lo, hi in ranges:
            at = lo
            for vlo, vhi in lines:
                if vhi < at or vlo > hi:
                    continue
                if vlo > at:
                    outside.append((at, vlo - 1))
                inside.append((max(at, vlo), min(hi, vhi)))
                at = min(hi, vhi) + 1
            if at <= hi:
                outside.append((at, hi))
        out.extend(part for part in (inside, outside) if part)
    return out


def _principal_witnesses(
    match: PrincipalMatch,
    names: set[str],
    name_strings: list[Selector],
    accounts: set[str],
    sa_strings: list[Selector],
) -> None:
    """The namespace and account names and string predicates an identity test reads, so that
    the name domains hold a witness for each way a principal ``TD/ns/NS/sa/SA`` (names never
    hold ``/``) or a certificate namespace can match: exact, ``prefix*``, ``*suffix``."""

    def ns_prefix(text: str) -> None:
        if text:
            name_strings.append(StartsWith(NAMESPACE_NAME_LABEL, text))

    def ns_suffix(text: str) -> None:
        if text:
            name_strings.append(EndsWith(NAMESPACE_NAME_LABEL, text))

    for pattern in (*(match.principals or ()), *match.not_principals):
        if pattern == "*":
            continue
        if pattern.endswith("*"):
            body = pattern[:-1]
            at = body.find("/ns/")
            if at < 0:
                continue
            rest = body[at + 4 :]
            if "/" not in rest:
                ns_prefix(rest)
                continue
            ns, after = rest.split("/", 1)
            names.update([ns] if ns else [])
            if after.startswith("sa/") and after[3:] and "/" not in after[3:]:
                sa_strings.append(StartsWith(NAME_KEY, after[3:]))
        elif pattern.startswith("*"):
            head, sep, sa = pattern[1:].rpartition("/")
            if not sep:
                if sa:
                    sa_strings.append(EndsWith(NAME_KEY, sa))
                continue
            accounts.update([sa] if sa else [])
            if head.endswith("/sa"):
                _, sep, ns = head[:-3].rpartition("/")
                if sep:
                    names.update([ns] if ns else [])
                else:
                    ns_suffix(ns)
        else:
            found = _EXACT_PRINCIPAL.fullmatch(pattern)
            if found is not None:
                names.add(found.group(1))
                accounts.add(found.group(2))
    for text in (*(match.namespaces or ()), *match.not_namespaces):
        if text == "*":
            continue
        if text.endswith("*"):
            ns_prefix(text[:-1])
        elif text.startswith("*"):
            ns_suffix(text[1:])
        else:
            names.add(text)


_EXACT_PRINCIPAL = re.compile(r".*/ns/([^/]+)/sa/([^/]+)")


def _minted(profile: EvaluationProfile, namespace: str, account: str) -> str:
    """The identity Istio mints for a pod (``Matcher.identity``)."""
    return f"{profile.trust_domain}/ns/{namespace}/sa/{account}"


def _address(line: int) -> str:
    if line >= V6_OFFSET:
        return str(ipaddress.IPv6Address(line - V6_OFFSET))
    return str(ipaddress.IPv4Address(line))


def _line(text: str) -> int:
    address = ipaddress.ip_address(text)
    return int(address) if address.version == 4 else V6_OFFSET + int(address)


# the model --------------------------------------------------------------------------------

Resolver = Mapping[str, "_Var | str"]


class _Model:
    """Variables for one connection over every cluster, and the semantics over them."""

    def __init__(
        self, sets: Sequence[PolicySet], profile: EvaluationProfile, deadline: float
    ) -> None:
        self.profile = profile
        self.deadline = deadline
        self.facts = f = _facts(sets, profile)
        self.space = sp = _Space()
        self.conn = sp.group([("conn", tuple(f.atoms), None)])[0]
        kinds = sp.group([(f"kind|{s}", KINDS, None) for s in SIDES])
        self.kind = dict(zip(SIDES, kinds, strict=True))
        fresh_ns = len(f.ns_names) - 1
        ns = sp.group([(f"ns|{s}", f.ns_names, fresh_ns) for s in SIDES])
        self.ns = dict(zip(SIDES, ns, strict=True))
        ends = [*SIDES, *(f"set:{m}" for m in f.set_namespaces)]
        self.ns_labels: dict[str, dict[str, _Var]] = {e: {} for e in ends}
        for key, values in f.ns_keys.items():
            for end, var in zip(
                ends, sp.group([(f"nsl|{e}|{key}", values, None) for e in ends]), strict=True
            ):
                self.ns_labels[end][key] = var
        fresh_sa = len(f.accounts) - 1
        sa = sp.group([(f"sa|{s}", f.accounts, fresh_sa) for s in SIDES])
        self.sa = dict(zip(SIDES, sa, strict=True))
        self.sa_labels: dict[str, dict[str, _Var]] = {s: {} for s in SIDES}
        for key, values in f.sa_keys.items():
            for side, var in zip(
                SIDES, sp.group([(f"sal|{s}|{key}", values, None) for s in SIDES]), strict=True
            ):
                self.sa_labels[side][key] = var
        self.pod_labels: dict[str, dict[str, _Var]] = {s: {} for s in SIDES}
        for key, values in f.pod_keys.items():
            for side, var in zip(
                SIDES, sp.group([(f"pl|{s}|{key}", values, None) for s in SIDES]), strict=True
            ):
                self.pod_labels[side][key] = var
        regions = tuple(range(len(f.regions)))
        self.region = dict(
            zip(SIDES, sp.group([(f"region|{s}", regions, None) for s in SIDES]), strict=True)
        )
        self.named = {n: sp.boolean(f"named|{n}") for n in f.named}
        # Mesh facts per end: membership, and the peer-authentication mode (its default first).
        self.mesh: dict[str, _Var] = {}
        self.mtls: dict[str, _Var] = {}
        self.opaque: _Var | None = None
        if f.mesh:
            default = profile.mtls_default.upper()
            modes = (default, *(m for m in MTLS_MODES if m != default))
            self.mesh = dict(
                zip(
                    SIDES,
                    sp.group([(f"mesh|{s}", (False, True), None) for s in SIDES]),
                    strict=True,
                )
            )
            self.mtls = dict(
                zip(SIDES, sp.group([(f"mtls|{s}", modes, None) for s in SIDES]), strict=True)
            )
            if f.opaque:
                self.opaque = sp.boolean("opaque|dst")
        # Cloud facts: membership of each unbound group per end, and whether the ends share a
        # node (standard enforcing mode only: same-node flows bypass the groups).
        self.groups: dict[str, dict[str, _Var]] = {s: {} for s in SIDES}
        for group in f.groups:
            for side, var in zip(
                SIDES,
                sp.group([(f"sg|{s}|{group}", (False, True), None) for s in SIDES]),
                strict=True,
            ):
                self.groups[side][group] = var
        self.same_node = sp.boolean("same-node") if f.standard or f.node_entities else None
        # DNS: whether the answers for a name of each class hold this end's address (with no
        # inventory any name may resolve to any address).
        self.dns: dict[str, list[_Var]] = {
            side: [sp.boolean(f"dns|{side}|{name}") for name in f.dns_names] for side in SIDES
        }
        self._region_sets: dict[tuple[IPSet, str], Fn] = {}
        self._conns: dict[tuple[IntervalSet, IntervalSet], Fn] = {}
        self._named_conns: dict[IntervalSet, Fn] = {}
        self._sel: dict[tuple[Selector, str, str], Fn] = {}
        self._peer: dict[tuple[Peer, str, str | None, tuple[NetworkSet, ...]], Fn] = {}
        self._identity: dict[tuple[str, str, str], Fn] = {}
        self._subject: dict[tuple[Subject, str], Fn] = {}
        self.consistent = self._consistency()

    def check_time(self, what: str) -> None:
        if time.monotonic() > self.deadline:
            raise Undecided(f"over the time budget while {what} (symbolic)")

    # contexts ---------------------------------------------------------------------------
    def _pod_ctx(self, side: str) -> dict[str, _Var | str]:
        ctx: dict[str, _Var | str] = dict(self.pod_labels[side])
        ctx[NAMESPACE_KEY] = self.ns[side]
        ctx[SERVICE_ACCOUNT_KEY] = self.sa[side]
        ctx[KIND_KEY] = KIND_POD
        return ctx

    def _ns_ctx(self, end: str) -> dict[str, _Var | str]:
        ctx: dict[str, _Var | str] = dict(self.ns_labels[end])
        if end.startswith("set:"):
            ctx[NAMESPACE_NAME_LABEL] = end[4:]
        else:
            ctx[NAMESPACE_NAME_LABEL] = self.ns[end]
        return ctx

    def _sa_ctx(self, side: str) -> dict[str, _Var | str]:
        ctx: dict[str, _Var | str] = dict(self.sa_labels[side])
        ctx[NAME_KEY] = self.sa[side]
        return ctx

    def selector(self, sel: Selector, ctx: Resolver, ctx_name: str, end: str) -> Fn:
        key = (sel, ctx_name, end)
        found = self._sel.get(key)
        if found is None:
            found = self._selector(sel, ctx)
            self._sel[key] = found
        return found

    def _selector(self, sel: Selector, ctx: Resolver) -> Fn:
        sp = self.space
        if isinstance(sel, All):
            return sp.true
        if isinstance(sel, Global):
            return sp.false  # endpoints and namespaces are never non-namespaced resources
        if isinstance(sel, Not):
            return ~self._selector(sel.expr, ctx)
        if isinstance(sel, And):
            return conjoin(sp, [self._selector(t, ctx) for t in sel.terms])
        if isinstance(sel, Or):
            return disjoin(sp, [self._selector(t, ctx) for t in sel.terms])
        key: str = sel.key  # type: ignore[attr-defined]
        where = ctx.get(key)
        if where is None:
            # A key no variable was made for cannot occur: every selector fed the domains.
            raise AssertionError(f"label key {key!r} has no variable")
        if isinstance(where, str):
            return sp.true if sel.matches({key: where}) else sp.false
        hits = [
            i
            for i, value in enumerate(where.values)
            if sel.matches({} if value is None else {key: value})
        ]
        return sp.among(where, hits)

    # endpoints --------------------------------------------------------------------------
    def is_kind(self, side: str, kind: int) -> Fn:
        return self.space.eq(self.kind[side], kind)

    def addressed(self, side: str) -> Fn:
        """The end is one whose address ipBlocks and network sets see under the profile."""
        out = self.is_kind(side, EXTERNAL)
        if self.profile.ipblock_matches_pods:
            out = out | self.is_kind(side, POD)
        if self.profile.ipblock_matches_nodes:
            out = out | self.is_kind(side, NODE)
        return out

    def in_ipset(self, side: str, ipset: IPSet) -> Fn:
        key = (ipset, side)
        found = self._region_sets.get(key)
        if found is None:
            hits = [
                i
                for i, ranges in enumerate(self.facts.regions)
                if ipaddress.ip_address(_address(ranges[0][0])) in ipset
            ]
            found = self.addressed(side) & self.space.among(self.region[side], hits)
            self._region_sets[key] = found
        return found

    def ns_in(self, side: str, names: Iterable[str]) -> Fn:
        values = self.ns[side].values
        wanted = set(names)
        return self.space.among(
            self.ns[side],
            [i for i, v in enumerate(values) if v in wanted and i != self.ns[side].fresh],
        )

    def sa_in(self, side: str, names: Iterable[str]) -> Fn:
        values = self.sa[side].values
        wanted = set(names)
        return self.space.among(
            self.sa[side],
            [i for i, v in enumerate(values) if v in wanted and i != self.sa[side].fresh],
        )

    def subject(self, subject: Subject, side: str) -> Fn:
        key = (subject, side)
        found = self._subject.get(key)
        if found is None and subject.security_group is not None:
            # Membership is a fact of the endpoint, pods and nodes alike (never of an address).
            found = self._member(subject.security_group, side)
            self._subject[key] = found
        if found is None:
            found = self.is_kind(side, POD)
            if subject.namespace is not None:
                found = found & self.ns_in(side, (subject.namespace,))
            elif subject.namespace_selector is not None:
                found = found & self.selector(
                    subject.namespace_selector, self._ns_ctx(side), "ns", side
                )
            found = found & self.selector(subject.selector, self._pod_ctx(side), "pod", side)
            if subject.service_accounts is not None:
                found = found & self.selector(
                    subject.service_accounts, self._sa_ctx(side), "sa", side
                )
            self._subject[key] = found
        return found

    def _pod_selected(self, peer: Peer, side: str) -> Fn:
        out = self.is_kind(side, POD)
        if peer.namespace_names is not None:
            out = out & self.ns_in(side, peer.namespace_names)
        if peer.namespace_selector is not None:
            out = out & self.selector(peer.namespace_selector, self._ns_ctx(side), "ns", side)
        if peer.pods is not None:
            out = out & self.selector(peer.pods, self._pod_ctx(side), "pod", side)
        sa = peer.service_account
        if sa is not None:
            if sa.names is not None:
                out = out & self.sa_in(side, sa.names)
            if sa.selector is not None:
                out = out & self.selector(sa.selector, self._sa_ctx(side), "sa", side)
        return out

    def _set_selected(self, peer: Peer, net_set: NetworkSet) -> Fn:
        sp = self.space
        if peer.service_account is not None:
            return sp.false
        out = sp.true
        if net_set.namespace is None:
            if peer.namespace_names is not None:
                return sp.false
            if peer.namespace_selector is not None and not matches_global_scope(
                peer.namespace_selector
            ):
                return sp.false
        else:
            if peer.namespace_names is not None and net_set.namespace not in peer.namespace_names:
                return sp.false
            if peer.namespace_selector is not None:
                end = f"set:{net_set.namespace}"
                out = self.selector(peer.namespace_selector, self._ns_ctx(end), "ns", end)
        if peer.pods is not None and not peer.pods.matches(_set_labels(net_set)):
            return sp.false
        return out

    def _member(self, group: str, side: str) -> Fn:
        return ~self.is_kind(side, EXTERNAL) & self.space.eq(self.groups[side][group], 1)

    def peer(
        self, peer: Peer, side: str, sets: tuple[NetworkSet, ...], here: str | None = None
    ) -> Fn:
        """``side`` is this peer, seen from the subject at ``here`` (None: the subject itself
        is matched, as a rule's local side is)."""
        relative = peer.principal is not None or peer.entity in (Entity.HOST, Entity.REMOTE_NODE)
        key = (peer, side, here if relative else None, sets if peer.sets else ())
        found = self._peer.get(key)
        if found is None:
            found = self._peer_bdd(peer, side, sets if peer.sets else ())
            if peer.security_group is not None:
                found = found & self._member(peer.security_group, side)
            if peer.principal is not None:
                found = found & self._principal(peer.principal, side, here)
            if peer.entity is not None:
                found = found & self._entity(peer.entity, side, here)
            if peer.fqdn is not None:
                found = found & self._fqdn(peer.fqdn, side)
            self._peer[key] = found
        return found

    def _fqdn(self, fqdn: FqdnMatch, side: str) -> Fn:
        """``Matcher.resolve`` then ``_ip_matches``: the end's address is an answer for a name
        the peer matches, and the profile lets address peers see that kind of end."""
        sp = self.space
        names = self.facts.dns_names
        hits = [
            sp.eq(var, 1)
            for name, var in zip(names, self.dns[side], strict=True)
            if fqdn_matches(fqdn, name)
        ]
        return self.addressed(side) & disjoin(sp, hits)

    # mesh -------------------------------------------------------------------------------
    def mutual_tls(self, side: str, here: str | None) -> Fn:
        """The connection from ``side`` carries a peer certificate: the client has a proxy and
        the server (``here``) does not disable mTLS (``Matcher.mutual_tls``)."""
        sp = self.space
        if not self.mesh:
            return sp.false
        out = self.is_kind(side, POD) & sp.eq(self.mesh[side], 1)
        if here is not None:
            mtls = self.mtls[here]
            out = out & ~sp.eq(mtls, mtls.values.index("DISABLE"))
        return out

    def _identity_test(self, kind: str, pattern: str, side: str) -> Fn:
        """Whether the certificate of a pod at ``side`` matches ``pattern``: ``kind`` is
        "principal" (``TD/ns/NS/sa/SA``) or "namespace"; every value of the name domains is
        evaluated as Istio would, so fresh names count as the names they stand for."""
        key = (kind, pattern, side)
        found = self._identity.get(key)
        if found is not None:
            return found
        sp = self.space
        ns_var, sa_var = self.ns[side], self.sa[side]
        if kind == "namespace":
            hits = [i for i, ns in enumerate(ns_var.values) if istio_match(pattern, ns)]
            found = sp.among(ns_var, hits)
        elif "*" not in pattern:
            # An exact principal names one namespace and one account (names hold no "/").
            exact = _EXACT_PRINCIPAL.fullmatch(pattern)
            if exact is None or pattern != _minted(self.profile, *exact.groups()):
                found = sp.false
            else:
                ns, sa = exact.groups()
                found = sp.among(ns_var, [i for i, v in enumerate(ns_var.values) if v == ns])
                found &= sp.among(sa_var, [j for j, v in enumerate(sa_var.values) if v == sa])
        else:
            by_accounts: dict[tuple[int, ...], list[int]] = {}
            for i, ns in enumerate(ns_var.values):
                accounts = tuple(
                    j
                    for j, sa in enumerate(sa_var.values)
                    if istio_match(pattern, _minted(self.profile, ns, sa))
                )
                if accounts:
                    by_accounts.setdefault(accounts, []).append(i)
            found = disjoin(
                sp,
                [sp.among(ns_var, nss) & sp.among(sa_var, js) for js, nss in by_accounts.items()],
            )
        self._identity[key] = found
        return found

    def _principal(self, match: PrincipalMatch, side: str, here: str | None) -> Fn:
        """``Matcher._principal_matches``: plain-text traffic has empty identities, which no
        positive pattern matches and no negative one excludes."""
        sp = self.space
        mutual = self.mutual_tls(side, here)
        out = sp.true
        for kind, positive, negative in (
            ("principal", match.principals, match.not_principals),
            ("namespace", match.namespaces, match.not_namespaces),
        ):
            if positive is not None:
                out = (
                    out
                    & mutual
                    & disjoin(sp, [self._identity_test(kind, t, side) for t in sorted(positive)])
                )
            if negative:
                out = out & ~(
                    mutual
                    & disjoin(sp, [self._identity_test(kind, t, side) for t in sorted(negative)])
                )
        return out

    def _peer_bdd(self, peer: Peer, side: str, sets: tuple[NetworkSet, ...]) -> Fn:
        sp = self.space
        out = sp.true
        if peer.wants_pod:
            selected = self._pod_selected(peer, side)
            for net_set in sets:
                selected = selected | (
                    self._set_selected(peer, net_set) & self.in_ipset(side, net_set.ipset())
                )
            out = out & selected
        if peer.not_pods is not None:
            excluded = self.is_kind(side, POD) & self.selector(
                peer.not_pods, self._pod_ctx(side), "pod", side
            )
            for net_set in sets:
                if peer.not_pods.matches(_set_labels(net_set)):
                    excluded = excluded | self.in_ipset(side, net_set.ipset())
            out = out & ~excluded
        ipset = peer.ipset()
        if ipset is not None:
            out = out & self.in_ipset(side, ipset)
        return out

    def _entity(self, entity: Entity, side: str, here: str | None) -> Fn:
        if entity in (Entity.HOST, Entity.REMOTE_NODE):
            # ``Matcher._entity_matches``: a node (hostNetwork pods act as theirs) relative to
            # the subject's node; a subject whose node is unknown (itself a node, or none
            # given) may be on any node.
            node = self.is_kind(side, NODE)
            if here is None or self.same_node is None:
                return node
            same = self.space.eq(self.same_node, 1)
            relative = same if entity is Entity.HOST else ~same
            return node & (~self.is_kind(here, POD) | relative)
        if entity is Entity.ALL:
            return self.space.true
        if entity is Entity.WORLD:
            return self.is_kind(side, EXTERNAL)
        if entity is Entity.CLUSTER:
            return ~self.is_kind(side, EXTERNAL)
        return self.space.false  # kube-apiserver, ingress, health, …: never an endpoint here

    def peers(self, peers: Any, side: str, sets: tuple[NetworkSet, ...], here: str) -> Fn:
        if peers is ANY_PEER:
            return self.space.true
        return disjoin(self.space, [self.peer(p, side, sets, here) for p in peers])

    # ports ------------------------------------------------------------------------------
    def _conn_in(self, protocols: IntervalSet, ports: IntervalSet) -> Fn:
        key = (protocols, ports)
        found = self._conns.get(key)
        if found is None:
            conns = ConnSet.build(protocols, ports)
            hits = [i for i, (p, _, lo, _) in enumerate(self.facts.atoms) if conns.contains(p, lo)]
            found = self._conns[key] = self.space.among(self.conn, hits)
        return found

    def _named_in(self, protocols: IntervalSet, names: frozenset[str]) -> Fn:
        """A named port of the destination resolves to this connection (a container port of
        one of ``protocols``)."""
        sp = self.space
        found = self._named_conns.get(protocols)
        if found is None:
            hits = [
                i
                for i, (p, _, lo, _) in enumerate(self.facts.atoms)
                if p in CONTAINER_PROTOCOLS and p in protocols and lo >= 1
            ]
            found = self._named_conns[protocols] = sp.among(self.conn, hits)
        bits = disjoin(sp, [sp.eq(self.named[n], 1) for n in sorted(names)])
        return self.is_kind("dst", POD) & found & bits

    def ports(self, ports: PortMatch) -> Fn:
        if ports is ANY_PORTS:
            return self.space.true
        out = []
        for spec in ports:  # type: ignore[union-attr]
            conns = self._conn_in(spec.protocols, spec.ports)
            if spec.named:
                conns = conns | self._named_in(spec.protocols, spec.named)
            if spec.not_named:
                conns = conns & ~self._named_in(spec.protocols, spec.not_named)
            out.append(conns)
        return disjoin(self.space, out)

    # consistency ------------------------------------------------------------------------
    def _consistency(self) -> Fn:
        sp = self.space
        out = ~(~self.is_kind("src", POD) & ~self.is_kind("dst", POD))
        for var in sp.vars.values():
            out = out & sp.valid(var)
        # One named namespace has one set of labels (fresh names stand for distinct ones).
        ns_s, ns_d = self.ns["src"], self.ns["dst"]
        same_ns = sp.same(ns_s, ns_d) & ~sp.eq(ns_s, ns_s.fresh)  # type: ignore[arg-type]
        both_pods = self.is_kind("src", POD) & self.is_kind("dst", POD)
        labels_equal = conjoin(
            sp,
            [
                sp.same(self.ns_labels["src"][k], self.ns_labels["dst"][k])
                for k in self.facts.ns_keys
            ],
        )
        out = out & ~(both_pods & same_ns & ~labels_equal)
        sa_s, sa_d = self.sa["src"], self.sa["dst"]
        same_sa = sp.same(sa_s, sa_d) & ~sp.eq(sa_s, sa_s.fresh)  # type: ignore[arg-type]
        accounts_equal = conjoin(
            sp,
            [
                sp.same(self.sa_labels["src"][k], self.sa_labels["dst"][k])
                for k in self.facts.sa_keys
            ],
        )
        out = out & ~(both_pods & same_ns & same_sa & ~accounts_equal)
        for name in self.facts.set_namespaces:
            end = f"set:{name}"
            for side in SIDES:
                there = self.is_kind(side, POD) & self.ns_in(side, (name,))
                equal = conjoin(
                    sp,
                    [
                        sp.same(self.ns_labels[side][k], self.ns_labels[end][k])
                        for k in self.facts.ns_keys
                    ],
                )
                out = out & ~(there & ~equal)
        # Sharing a node takes two cluster ends (a node and its pod, or two pods).
        if self.same_node is not None:
            apart = self.is_kind("src", EXTERNAL) | self.is_kind("dst", EXTERNAL)
            out = out & ~(sp.eq(self.same_node, 1) & apart)
        # Two ends never share an address: a region of one address holds one end at most.
        for i, ranges in enumerate(self.facts.regions):
            if len(ranges) == 1 and ranges[0][0] == ranges[0][1]:
                out = out & ~(sp.eq(self.region["src"], i) & sp.eq(self.region["dst"], i))
        return out

    # verdicts ---------------------------------------------------------------------------
    def allowed(self, ps: PolicySet) -> Fn:
        """The connections ``ps`` allows: each layer's verdict (egress AND ingress), ANDed."""
        sp = self.space
        sets = tuple(dict.fromkeys(ps.network_sets))
        out = sp.true
        for layer in (Layer.NETWORK, Layer.CLOUD):
            policies = [p for p in ps if p.layer is layer]
            if not policies:
                continue
            egress = self._direction(policies, ps, Direction.EGRESS, "src", "dst", sets, layer)
            ingress = self._direction(policies, ps, Direction.INGRESS, "dst", "src", sets, layer)
            if layer is Layer.CLOUD and self.same_node is not None:
                egress = egress | self._snat_egress()
                out = out & (sp.eq(self.same_node, 1) | (egress & ingress))
            else:
                out = out & egress & ingress
        if self.mesh:
            out = out & self._proxy([p for p in ps if p.layer is Layer.L7], ps, sets)
        if self.same_node is not None and self.profile.node_to_local_pod:
            out = out | (
                self.is_kind("src", NODE) & self.is_kind("dst", POD) & sp.eq(self.same_node, 1)
            )
        return out

    def _snat_egress(self) -> Fn:
        """Standard mode: a pod's traffic to an address outside the VPC leaves through its
        node, so the pod's groups do not judge its egress (``verdict._cloud_bypass``)."""
        sp = self.space
        outside = [
            i
            for i, ranges in enumerate(self.facts.regions)
            if not IPSet.address(_address(ranges[0][0])) <= self.facts.vpc
        ]
        return (
            self.is_kind("src", POD)
            & self.is_kind("dst", EXTERNAL)
            & sp.among(self.region["dst"], outside)
        )

    def tcp(self) -> Fn:
        hits = [i for i, (p, _, _, _) in enumerate(self.facts.atoms) if p == TCP]
        return self.space.among(self.conn, hits)

    def _proxy(self, policies: list[Policy], ps: PolicySet, sets: tuple[NetworkSet, ...]) -> Fn:
        """The mesh layer (``verdict._proxy_verdict``): inbound TCP of mesh pods only; STRICT
        refuses clients without a certificate before any authorization policy."""
        sp = self.space
        proxied = self.is_kind("dst", POD) & sp.eq(self.mesh["dst"], 1) & self.tcp()
        strict = sp.eq(self.mtls["dst"], self.mtls["dst"].values.index("STRICT"))
        refused = strict & ~self.mutual_tls("src", "dst")
        decided = self._direction(policies, ps, Direction.INGRESS, "dst", "src", sets, Layer.L7)
        return ~proxied | (~refused & decided)

    def _direction(
        self,
        candidates: list[Policy],
        ps: PolicySet,
        direction: Direction,
        here: str,
        there: str,
        sets: tuple[NetworkSet, ...],
        layer: Layer,
    ) -> Fn:
        sp = self.space
        policies = [p for p in candidates if isinstance(p.direction(direction), Governed)]
        tiers = {p.tier: ps.tier(p.tier) for p in policies}
        undecided = sp.true
        allowed = sp.false
        for tier, tier_policies in _order(policies, tiers):
            self.check_time(f"evaluating {direction.value} of tier {tier.name}")
            drops = sp.false
            passed = sp.false
            run: list[Fn] = []
            run_action: Action | None = None

            def flush() -> None:
                nonlocal undecided, allowed, passed, run, run_action
                if not run:
                    return
                match = disjoin(sp, run)
                hit = undecided & match
                if run_action is Action.ALLOW:
                    allowed = allowed | hit
                elif run_action is Action.PASS:
                    passed = passed | hit
                undecided = undecided & ~match
                run, run_action = [], None

            for pol in tier_policies:
                rules = pol.direction(direction)
                assert isinstance(rules, Governed)
                selected = self.subject(pol.subject, here)
                if rules.isolates:
                    drops = drops | selected
                for rule in rules.rules:
                    if rule.action is Action.LOG:
                        continue
                    match = self._rule(rule, selected, here, there, sets, layer)
                    if match == sp.false:
                        continue
                    if rule.action is not run_action:
                        flush()
                        run_action = rule.action
                    run.append(match)
            flush()
            # Nothing decided in a tier that governs the end and denies at its end: dropped.
            dropped = drops if tier.default_action is Action.DENY else sp.false
            undecided = passed | (undecided & ~dropped)
        return allowed | undecided

    def _rule(
        self,
        rule: Rule,
        selected: Fn,
        here: str,
        there: str,
        sets: tuple[NetworkSet, ...],
        layer: Layer,
    ) -> Fn:
        out = selected
        if rule.local is not None:
            out = out & self.peer(rule.local, here, sets)
        out = out & self.peers(rule.peers, there, sets, here)
        ports = self.ports(rule.ports)
        if layer is Layer.L7 and rule.l7 is not None:
            # ``matching.rule_conns``: HTTP fields cannot match a port declared plain TCP.
            opaque = self.tcp() & self.space.eq(self.opaque, 1) if self.opaque else self.space.false
            deny = rule.action is Action.DENY
            ports = ports & ((opaque | ~self.tcp()) if deny else ~opaque)
        return out & ports


def _set_labels(net_set: NetworkSet) -> dict[str, str]:
    merged = dict(net_set.labels)
    merged[KIND_KEY] = KIND_NETWORK_SET
    if net_set.namespace is not None:
        merged[NAMESPACE_KEY] = net_set.namespace
    return merged


# deciding and decoding --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SymbolicResult:
    """Per side (``"b"``: allowed by B only, ``"a"``: by A only) its counterexample, and the
    size of the decision diagrams built (nodes in the manager)."""

    counterexamples: Mapping[str, Counterexample]
    variables: int
    nodes: int


def decide(
    a: PolicySet,
    b: PolicySet,
    profile: EvaluationProfile = DEFAULT_PROFILE,
    seconds: float = 30.0,
) -> SymbolicResult:
    """Decide how B relates to A on every cluster; raises ``Undecided`` past ``seconds``.

    The caller checks ``out_of_scope`` first: constructs outside the model would be ignored.
    """
    model = _Model([a, b], profile, time.monotonic() + seconds)
    allowed_a = model.allowed(a)
    allowed_b = model.allowed(b)
    model.check_time("comparing")
    found: dict[str, Counterexample] = {}
    if allowed_a != allowed_b:
        for side, diff in (("b", allowed_b & ~allowed_a), ("a", allowed_a & ~allowed_b)):
            diff = diff & model.consistent
            if diff != model.space.false:
                found[side] = _counterexample(model, a, b, diff, side)
    return SymbolicResult(found, len(model.space.bdd.vars), len(model.space.bdd))


def redundant(
    policies: PolicySet,
    candidates: Sequence[Policy],
    profile: EvaluationProfile = DEFAULT_PROFILE,
    seconds: float = 30.0,
) -> list[Policy]:
    """The candidates whose removal alone changes no connection on any cluster, judged within
    the candidate's own layer (a mesh policy repeating what the network layer enforces is
    defence in depth, not dead weight).

    One model serves every subset (removing a policy only removes facts), and decision
    diagrams are canonical, so each candidate costs one evaluation and one comparison. The
    caller checks ``out_of_scope`` first; raises ``Undecided`` past ``seconds``.
    """
    model = _Model([policies], profile, time.monotonic() + seconds)
    full: dict[Layer, tuple[PolicySet, Fn]] = {}
    out = []
    for policy in candidates:
        model.check_time("checking which policies are redundant")
        if policy.layer not in full:
            own = policies.with_policies(p for p in policies if p.layer is policy.layer)
            full[policy.layer] = (own, model.allowed(own) & model.consistent)
        own, allowed = full[policy.layer]
        rest = own.with_policies(p for p in own if p is not policy)
        if model.allowed(rest) & model.consistent == allowed:
            out.append(policy)
    return out


def _preferences(model: _Model, var: _Var, chosen: Mapping[str, int]) -> list[int]:
    """Value indices from most to least readable: pods before addresses before nodes, an
    address region holding a conventional address of the end's kind, else domain order
    (absent labels, named namespaces, TCP first)."""
    if var.name.startswith("kind|"):
        return [POD, EXTERNAL, NODE]
    order = list(range(len(var.values)))
    if var.name.startswith("region|"):
        nice = _line(_NICE[chosen[f"kind|{var.name[7:]}"]])
        regions = model.facts.regions
        order.sort(key=lambda i: not any(lo <= nice <= hi for lo, hi in regions[i]))
    return order


def _choose(model: _Model, diff: Fn) -> dict[str, int]:
    """One satisfying assignment, each variable at its most readable value that still leaves
    a difference (variables are visited in declaration order: kinds before regions)."""
    sp = model.space
    chosen: dict[str, int] = {}
    for var in sp.vars.values():
        for index in _preferences(model, var, chosen):
            narrowed = diff & sp.eq(var, index)
            if narrowed != sp.false:
                diff, chosen[var.name] = narrowed, index
                break
        else:
            raise AssertionError(f"no value of {var.name} keeps the difference")
    return chosen


class _Addresses:
    """Distinct addresses inside a region, near conventional ones when the region allows."""

    def __init__(self) -> None:
        self.taken: set[int] = set()

    def take(self, ranges: Sequence[tuple[int, int]], kind: int) -> str:
        nice = _line(_NICE[kind])
        candidates = [nice + i for i in range(4) for lo, hi in ranges if lo <= nice + i <= hi]
        for lo, hi in ranges:
            candidates += [x for x in (lo + 10, lo + 1, lo, hi) if lo <= x <= hi]
        for line in candidates:
            if line not in self.taken:
                self.taken.add(line)
                return _address(line)
        raise AssertionError("a region without a free address")  # regions of one are exclusive


def _counterexample(
    model: _Model, a: PolicySet, b: PolicySet, diff: Fn, side: str
) -> Counterexample:
    f = model.facts
    chosen = _choose(model, diff)

    def pick(name: str) -> Any:
        return model.space.vars[name].values[chosen[name]]

    plo, phi, port_lo, _ = pick("conn")
    proto = 1 if plo == 0 and phi >= 1 else plo
    port = port_lo if proto in PORT_PROTOCOLS or proto in ICMP_PROTOCOLS else None
    namespaces: dict[str, dict[str, str]] = {}
    accounts: dict[tuple[str, str], dict[str, str]] = {}
    addresses = _Addresses()
    ns_taken = set(f.ns_names)
    sa_taken = set(f.accounts)
    ends: dict[str, Endpoint | str] = {}
    endpoints: list[Endpoint] = []
    for i, side_name in enumerate(SIDES):
        kind = chosen[f"kind|{side_name}"]
        ip = addresses.take(f.regions[chosen[f"region|{side_name}"]], kind)
        if kind == EXTERNAL:
            ends[side_name] = ip
            continue
        if kind == NODE:
            node = Endpoint(
                "Node",
                None,
                f"polyfence-node-{i + 1}",
                {},
                None,
                (ip,),
                security_groups=_groups(model, chosen, side_name),
            )
            ends[side_name] = node
            endpoints.append(node)
            continue
        ns_var, sa_var = model.ns[side_name], model.sa[side_name]
        ns_labels = _labels(model.ns_labels[side_name], pick)
        sa_labels = _labels(model.sa_labels[side_name], pick)
        ns_name = pick(ns_var.name)
        ns_labels[NAMESPACE_NAME_LABEL] = ns_name
        if chosen[ns_var.name] == ns_var.fresh and namespaces.get(ns_name, ns_labels) != ns_labels:
            ns_name = _fresh(ns_name, ns_taken, f.name_strings)  # another fresh namespace
            ns_labels[NAMESPACE_NAME_LABEL] = ns_name
        ns_taken.add(ns_name)
        namespaces[ns_name] = ns_labels
        sa_name = pick(sa_var.name)
        if (
            chosen[sa_var.name] == sa_var.fresh
            and accounts.get((ns_name, sa_name), sa_labels) != sa_labels
        ):
            sa_name = _fresh(sa_name, sa_taken, f.sa_strings)  # another fresh account
        sa_taken.add(sa_name)
        accounts[(ns_name, sa_name)] = sa_labels
        labels = _labels(model.pod_labels[side_name], pick)
        named: tuple[NamedPort, ...] = ()
        if side_name == "dst" and proto in CONTAINER_PROTOCOLS and port is not None:
            named = tuple(
                NamedPort(n, proto, port) for n, var in model.named.items() if chosen[var.name]
            )
        mesh = bool(model.mesh) and chosen[model.mesh[side_name].name] == 1
        mtls: str | None = None
        opaque: tuple[int, ...] = ()
        if mesh:
            mtls = pick(model.mtls[side_name].name)
            mtls = None if mtls == model.profile.mtls_default.upper() else mtls
            if side_name == "dst" and model.opaque is not None and chosen[model.opaque.name]:
                opaque = (port,) if proto == TCP and port is not None else ()
        groups = _groups(model, chosen, side_name)
        if (groups or opaque) and ENDPOINT_LABEL not in f.pod_keys:
            # A label no selector reads, so that a SecurityGroupPolicy or Service can pick
            # this pod alone.
            labels[ENDPOINT_LABEL] = side_name
        pod = Endpoint(
            "Pod",
            ns_name,
            f"polyfence-{side_name}",
            labels,
            sa_name,
            (ip,),
            named,
            _node_of(model, chosen, i),
            security_groups=groups,
            mesh=mesh,
            mtls=mtls,
            opaque_ports=opaque,
        )
        ends[side_name] = pod
        endpoints.append(pod)
    for name in f.set_namespaces:
        if name not in namespaces:
            end = f"set:{name}"
            namespaces[name] = {**_labels(model.ns_labels[end], pick), NAMESPACE_NAME_LABEL: name}
    records: dict[str, list[str]] = {}
    for side_name, remote in ends.items():
        address = remote if isinstance(remote, str) else remote.ips[0]
        for name, var in zip(f.dns_names, model.dns[side_name], strict=True):
            if chosen[var.name]:
                records.setdefault(name, []).append(address)
    inventory = _build_inventory(
        [Namespace(n, labels) for n, labels in namespaces.items()],
        endpoints,
        sa_labels={key: labels for key, labels in accounts.items() if labels},
        dns=tuple((name, tuple(addresses)) for name, addresses in records.items()),
    )
    conn = Connection(ends["src"], ends["dst"], proto, port)
    found = reproduce(a, b, inventory, endpoints, conn, side, model.profile)
    if found is None:
        raise AssertionError(
            f"symbolic counterexample does not reproduce: {conn.describe()} allowed only by "
            f"{side.upper()} on {inventory}"
        )
    return _dressed(model, found, endpoints)


def _groups(model: _Model, chosen: Mapping[str, int], side: str) -> tuple[str, ...]:
    return tuple(g for g, var in model.groups[side].items() if chosen[var.name])


def _node_of(model: _Model, chosen: Mapping[str, int], index: int) -> str:
    """Where the pod at end ``index`` runs: nodes matter only under the standard enforcing
    mode, where the ends share a node or do not (a node end is named for its index)."""
    if model.same_node is None:
        return "polyfence-node-0"
    if chosen[model.same_node.name]:
        other = 1 - index
        return (
            f"polyfence-node-{other + 1}"
            if chosen[f"kind|{SIDES[other]}"] == NODE
            else ("polyfence-node-0")
        )
    return f"polyfence-node-{index + 1}"


def _dressed(model: _Model, cex: Counterexample, endpoints: Sequence[Endpoint]) -> Counterexample:
    """The documents and notes for the mesh and cloud facts the pods carry: an explicit
    injection opt-out beside the opt-in, the node each pod runs on, a Service declaring the
    destination port opaque, a SecurityGroupPolicy attaching the pod's groups."""
    pods = {ep.name: ep for ep in endpoints if ep.kind == "Pod"}
    docs: list[dict[str, Any]] = []
    notes = list(cex.notes)
    extra: list[dict[str, Any]] = []
    for doc in cex.documents:
        ep = pods.get(doc["metadata"]["name"]) if doc["kind"] == "Pod" else None
        if ep is None:
            docs.append(doc)
            continue
        doc = {**doc, "metadata": dict(doc["metadata"]), "spec": dict(doc["spec"])}
        if model.mesh and not ep.mesh:
            doc["metadata"]["annotations"] = {"sidecar.istio.io/inject": "false"}
        if model.same_node is not None and ep.node:
            doc["spec"]["nodeName"] = ep.node
        docs.append(doc)
        others = [o for o in pods.values() if o is not ep and o.namespace == ep.namespace]
        precise = bool(ep.labels) and not any(
            all(o.labels.get(k) == v for k, v in ep.labels.items()) for o in others
        )
        if ep.opaque_ports:
            port = ep.opaque_ports[0]
            if ep.labels:
                extra.append(
                    {
                        "apiVersion": "v1",
                        "kind": "Service",
                        "metadata": {"name": f"{ep.name}-tcp", "namespace": ep.namespace},
                        "spec": {
                            "selector": dict(ep.labels),
                            "ports": [{"name": f"tcp-{port}", "port": port, "targetPort": port}],
                        },
                    }
                )
            notes.append(f"a Service declares port {port} of {ep.ref} plain TCP (opaque)")
        if ep.security_groups and precise:
            extra.append(
                {
                    "apiVersion": "vpcresources.k8s.aws/v1beta1",
                    "kind": "SecurityGroupPolicy",
                    "metadata": {"name": f"{ep.name}-groups", "namespace": ep.namespace},
                    "spec": {
                        "podSelector": {"matchLabels": dict(ep.labels)},
                        "securityGroups": {"groupIds": list(ep.security_groups)},
                    },
                }
            )
    if cex.inventory.dns:
        records = [{"name": n, "addresses": list(a)} for n, a in cex.inventory.dns]
        extra.append(
            {
                "apiVersion": "polyfence.dev/v1alpha1",
                "kind": "DNSRecords",
                "metadata": {"name": "polyfence-dns"},
                "spec": {"records": records},
            }
        )
        notes.append(
            "DNS answers (what the FQDN peers resolve to): "
            + ", ".join(f"{n} -> {', '.join(a)}" for n, a in cex.inventory.dns)
        )
    if model.same_node is not None:
        nodes = {ep.ref: ep.node for ep in pods.values()}
        nodes.update({ep.ref: ep.name for ep in endpoints if ep.kind == "Node"})
        notes.append("nodes: " + ", ".join(f"{ref} on {node}" for ref, node in nodes.items()))
    return replace(cex, documents=(*docs, *extra), notes=tuple(notes))


def _labels(variables: Mapping[str, _Var], pick: Callable[[str], Any]) -> dict[str, str]:
    """The labels an assignment gives (absent values left out)."""
    return {k: v for k, var in variables.items() if (v := pick(var.name)) is not None}
