"""Flattening an ordered, tiered policy set into the unordered deny-beats-allow form.

Cilium (and Istio's DENY/ALLOW) have no order: a deny rule beats every allow rule. Calico is
first-match across tiers, orders and rules, with Pass and end-of-tier drops. Reading a Calico
set as deny-wins is exact once

* every deny rule ``d`` is replaced by ``d`` minus every allow that decides earlier (each less
  what a Pass of its own tier hands on before it) and minus every earlier Pass of its own
  tier: then a connection the ordered set allows is never denied, and one it denies is
  denied by the trimmed rule, or by default deny when no rule matches (for a first-match
  list, allowed = the union of the allows minus the union of the denies, each deny less the
  allows before it);
* every rule of a later tier is cut to what the earlier tiers governing its endpoints pass
  (met with their Pass rules where they govern, kept where none does), and a Pass allows
  where no later tier decides what it hands on (the traffic reaches the profile); a tier
  whose default is Pass, or a policy that ends in "pass the rest" alone in its tier, stops
  isolating and cuts nothing;
* an allow loses what an earlier Pass of its own tier hands on.

Rules are subtracted in the IR's own terms (selectors, with namespace labels read as labels
of the endpoint itself, as Cilium does; address sets; connection sets; named ports as symbols
resolved on one destination), so the result means the same under every
evaluation profile; a pair this algebra cannot subtract exactly (L7 matches, a named port
against numbers, pods against addresses) leaves the rule unresolved, for the writer to report.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field

from polyfence.fidelity import Effect, Feature, Loss, Treatment
from polyfence.inventory import NAMESPACE_NAME_LABEL
from polyfence.model.labels import NAMESPACE_KEY
from polyfence.model.peers import ANY_PEER, AnyPeer, IpMatch, Peer, PeerMatch
from polyfence.model.policy import (
    NOT_GOVERNED,
    Action,
    Direction,
    DirectionRules,
    Governed,
    Policy,
    PolicySet,
    Rule,
    Subject,
)
from polyfence.model.ports import ANY_PORTS, AnyPorts, PortMatch, PortSpec
from polyfence.model.selectors import (
    NOTHING,
    All,
    In,
    Not,
    Selector,
    SelectorNotExpressible,
    and_,
    normalize,
    or_,
    to_dnf,
)
from polyfence.rules.flatten import (
    may_overlap,
    pods_meet,
    removable_denies,
    subject_condition,
)
from polyfence.rules.terms import map_atoms
from polyfence.semantics.connset import FULL, ConnSet
from polyfence.semantics.intervals import NO_PORTS, IntervalSet, IPSet

MAX_PIECES = 64  # rules one deny may split into before we give up and report instead


@dataclass
class Flattened:
    """The rewritten set, what could not be flattened (rule ids) and what was done."""

    policies: PolicySet
    unresolved: set[int] = field(default_factory=set)
    losses: list[Loss] = field(default_factory=list)


Gate = list[tuple[Selector, list[tuple[Policy, Rule]]]]
"""One earlier tier's hold on a later policy's endpoints: where each of its policies governs
them (a selector on those endpoints) and the Pass rules by which that policy lets traffic on."""


TierKey = tuple[float, str]
_EARLIEST: TierKey = (float("-inf"), "")


class _Inexact(Exception):
    """The subtraction has no exact form in the IR algebra used here."""


# -- ports -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Ports:
    """A port match as numbers plus named-port symbols (name -> protocols).

    A named port resolves on the connection's destination, the same endpoint for both sides
    of a subtraction, so one name never differs from itself; a name against numbers it may
    resolve into has no exact answer here."""

    numbers: ConnSet
    names: tuple[tuple[str, IntervalSet], ...] = ()

    @classmethod
    def of(cls, ports: PortMatch) -> _Ports:
        if isinstance(ports, AnyPorts):
            return cls(FULL)
        numbers = ConnSet()
        names: dict[str, IntervalSet] = {}
        for spec in ports:
            if spec.not_named:
                raise _Inexact("excluded named ports")
            numbers = numbers | ConnSet.build(spec.protocols, spec.ports)
            for name in spec.named:
                names[name] = names.get(name, IntervalSet.empty()) | spec.protocols
        return cls(numbers, tuple(sorted(names.items())))

    def __bool__(self) -> bool:
        return bool(self.numbers) or bool(self.names)

    def _covered(self, name_protocols: IntervalSet) -> IntervalSet:
        """Of these protocols, those whose every port ``self.numbers`` holds; any it holds
        only in part make a named port undecidable."""
        covered = IntervalSet.empty()
        for lo, hi in name_protocols:
            if hi - lo > 8:
                raise _Inexact("a named port over many protocols")
            for protocol in range(lo, hi + 1):
                held = self.numbers.ports_of(protocol)
                if held == ConnSet.single(protocol).ports_of(protocol):
                    covered = covered | IntervalSet.point(protocol)
                elif held:
                    raise _Inexact("a named port against numbers it may resolve into")
        return covered

    def _clashes(self, other: _Ports) -> None:
        """Refuse what symbols cannot settle: a name of ``other`` that may resolve into our
        numbers, or two names sharing a protocol (one pod may give both the same port)."""
        for _, protocols in other.names:
            if any(self.numbers.ports_of(p) for lo, hi in protocols for p in range(lo, hi + 1)):
                raise _Inexact("a named port against numbers it may resolve into")
        self._names_clash(other)

    def _names_clash(self, other: _Ports) -> None:
        for name, protocols in other.names:
            for mine, my_protocols in self.names:
                if mine != name and my_protocols & protocols:
                    raise _Inexact("two port names may resolve to one number")

    def minus(self, other: _Ports) -> _Ports:
        self._clashes(other)
        theirs = dict(other.names)
        names = []
        for name, protocols in self.names:
            rest = protocols - theirs.get(name, IntervalSet.empty())
            rest = rest - other._covered(rest)
            if rest:
                names.append((name, rest))
        return _Ports(self.numbers - other.numbers, tuple(names))

    def meet(self, other: _Ports) -> _Ports:
        theirs = dict(other.names)
        names: dict[str, IntervalSet] = {}
        for name, protocols in self.names:
            both = (protocols & theirs.get(name, IntervalSet.empty())) | other._covered(protocols)
            if both:
                names[name] = both
        for name, protocols in other.names:
            covered = self._covered(protocols)
            if covered:
                names[name] = names.get(name, IntervalSet.empty()) | covered
        self._names_clash(other)
        return _Ports(self.numbers & other.numbers, tuple(sorted(names.items())))

    def match(self) -> PortMatch:
        if self.numbers == FULL:
            return ANY_PORTS
        by_ports: dict[IntervalSet, list[tuple[int, int]]] = {}
        for lo, hi, ports in self.numbers.segments:
            by_ports.setdefault(ports, []).append((lo, hi))
        specs = [PortSpec(IntervalSet.of(*protos), ports) for ports, protos in by_ports.items()]
        specs += [PortSpec(protos, NO_PORTS, frozenset({name})) for name, protos in self.names]
        return tuple(specs)


# -- peers -------------------------------------------------------------------------------------
def _kind(peer: Peer) -> str:
    """'any', 'pod' or 'ip'; anything else has no exact algebra here."""
    if peer == Peer():
        return "any"
    if peer.not_pods is not None and peer == Peer(not_pods=peer.not_pods):
        return "not_pods"  # everyone but those pods (no network sets: those have labels too)
    if peer.entity or peer.fqdn or peer.security_group or peer.principal or peer.not_pods:
        raise _Inexact("peer kind")
    if peer.service_account is not None:
        raise _Inexact("service-account peer")
    if peer.wants_pod:
        if peer.ip is not None:
            raise _Inexact("pod peer with an address constraint")
        return "pod"
    return "ip"


def _atoms(peers: PeerMatch) -> list[Peer]:
    if isinstance(peers, AnyPeer):
        return [Peer()]
    for peer in peers:
        _kind(peer)
    return list(peers)


def _pod_and(a: Peer, b: Peer) -> Peer | None:
    if a.sets != b.sets:
        raise _Inexact("selectors that differ in matching network sets")
    return pods_meet(a, b)


def _ip(ips: IPSet) -> Peer | None:
    return Peer(ip=IpMatch(ips.to_cidrs())) if ips else None


def _every_pod(selector: Selector) -> Peer:
    return Peer(pods=normalize(selector), namespace_selector=All())


def _plain_pods(peer: Peer) -> Peer:
    if peer.sets:
        raise _Inexact("network sets against a pod complement")
    return peer


def _meet(a: Peer, b: Peer) -> Peer | None:
    ka, kb = _kind(a), _kind(b)
    if ka == "any":
        return b
    if kb == "any":
        return a
    if ka == kb == "not_pods":
        return Peer(not_pods=normalize(or_(a.not_pods, b.not_pods)))  # type: ignore[arg-type]
    if {ka, kb} == {"not_pods", "pod"}:
        pod, other = (a, b) if ka == "pod" else (b, a)
        return pods_meet(_plain_pods(pod), _every_pod(Not(other.not_pods)))  # type: ignore[arg-type]
    if ka == kb == "pod":
        return _pod_and(a, b)
    if ka == kb == "ip":
        return _ip(a.ipset() & b.ipset())  # type: ignore[operator]
    if {ka, kb} == {"pod", "ip"}:
        # The IR's own conjunction: those pods, at those addresses, whatever the profile
        # says about addresses matching pods.
        pod, ip = (a, b) if ka == "pod" else (b, a)
        return dataclasses.replace(pod, ip=ip.ip)
    raise _Inexact("pods against addresses depend on the evaluation profile")


def _minus(a: Peer, b: Peer) -> list[Peer]:
    ka, kb = _kind(a), _kind(b)
    if kb == "any":
        return []
    if kb == "not_pods":
        if ka in ("any", "not_pods"):
            kept = b.not_pods if ka == "any" else and_(b.not_pods, Not(a.not_pods))  # type: ignore[arg-type]
            pods = _every_pod(kept)  # type: ignore[arg-type]
            return [] if pods.pods == NOTHING else [pods]
        if ka == "pod":
            met = pods_meet(_plain_pods(a), _every_pod(b.not_pods))  # type: ignore[arg-type]
            return [met] if met is not None else []
        raise _Inexact("pods against addresses depend on the evaluation profile")
    if ka == "not_pods":
        if kb == "pod":
            excluded = or_(a.not_pods, _pod_selector(_plain_pods(b)))  # type: ignore[arg-type]
            return [Peer(not_pods=normalize(excluded))]
        raise _Inexact("pods against addresses depend on the evaluation profile")
    if ka == "any":
        if kb == "ip":
            raise _Inexact("everything but an address range depends on the profile")
        # Every remote but those pods: the IR's own complement, exact under every profile.
        if b.namespace_selector in (None, All()):
            return [Peer(not_pods=_pod_selector(b), sets=b.sets)]
        if b.sets:
            raise _Inexact("network sets selected by namespace labels")
        return [*_negations(b), Peer(not_pods=All())]  # the other pods, and every non-pod
    if ka == kb == "ip":
        rest = _ip(a.ipset() - b.ipset())  # type: ignore[operator]
        return [rest] if rest else []
    if ka == kb == "pod":
        out: list[Peer] = []
        for negated in _negations(b):
            piece = _pod_and(a, negated)
            if piece is not None:
                out.append(piece)
        return out
    raise _Inexact("pods against addresses depend on the evaluation profile")


def _pod_selector(peer: Peer) -> Selector:
    """A pod peer as one selector over pod labels and the namespace pseudo-label."""
    if peer.namespace_selector not in (None, All()):
        raise _Inexact("namespace labels are not pod labels")
    parts: list[Selector] = [peer.pods or All()]
    if peer.namespace_names is not None:
        parts.append(In(NAMESPACE_KEY, peer.namespace_names))
    return and_(*parts)


def _negations(peer: Peer) -> list[Peer]:
    """Pod peers whose union is every pod that is not ``peer``."""
    out: list[Peer] = []
    any_ns = All()
    if peer.pods is not None and peer.pods != All():
        out.append(Peer(pods=Not(peer.pods), namespace_selector=any_ns, sets=peer.sets))
    if peer.namespace_names is not None:
        out.append(
            Peer(
                namespace_selector=Not(In(NAMESPACE_NAME_LABEL, peer.namespace_names)),
                sets=peer.sets,
            )
        )
    if peer.namespace_selector is not None and peer.namespace_selector != All():
        out.append(Peer(namespace_selector=Not(peer.namespace_selector), sets=peer.sets))
    return out


def _peer_minus(left: list[Peer], right: list[Peer]) -> list[Peer]:
    pieces = list(left)
    for b in right:
        pieces = [rest for a in pieces for rest in _minus(a, b)]
        if len(pieces) > MAX_PIECES:
            raise _Inexact("too many pieces")
    return pieces


def _peer_meet(left: list[Peer], right: list[Peer]) -> list[Peer]:
    out = [m for a in left for b in right if (m := _meet(a, b)) is not None]
    if len(out) > MAX_PIECES:
        raise _Inexact("too many pieces")
    return out


def _peer_match(atoms: list[Peer]) -> PeerMatch:
    return ANY_PEER if Peer() in atoms else tuple(dict.fromkeys(atoms))


# -- rules -------------------------------------------------------------------------------------
NS_LABEL = "namespace-label:"
"""Namespace labels as labels of the endpoint itself, inside this module only (no label key
holds a colon): a rule's local side and a policy's reach are then one selector."""


def _atom_key(atom: Selector) -> str | None:
    key = getattr(atom, "key", None)
    return key if key is not None else getattr(getattr(atom, "expr", None), "key", None)


def _rekeyed(sel: Selector, fn: Callable[[str], str]) -> Selector:
    def atom(a: Selector) -> Selector:
        key = getattr(a, "key", None)
        return a if key is None else dataclasses.replace(a, key=fn(key))  # type: ignore[call-arg]

    return map_atoms(sel, atom)


def _namespace_labels(sel: Selector) -> Selector:
    return _rekeyed(sel, lambda key: NS_LABEL + key)


def _local(rule: Rule) -> Selector:
    """The rule's local side as one selector over its own endpoint."""
    if rule.local is None:
        return All()
    local = dataclasses.replace(rule.local, sets=False)  # the local side is a pod: sets moot
    plain = Peer(
        pods=local.pods,
        namespace_selector=local.namespace_selector,
        namespace_names=local.namespace_names,
    )
    if local != plain:
        raise _Inexact("a local side constrained by more than pod and namespace labels")
    parts: list[Selector] = [local.pods or All()]
    if local.namespace_names is not None:
        parts.append(In(NAMESPACE_KEY, local.namespace_names))
    if local.namespace_selector is not None:
        parts.append(_namespace_labels(local.namespace_selector))
    return normalize(and_(*parts))


def _localized(rule: Rule, local: Selector) -> list[Rule]:
    """``rule`` on the endpoints ``local`` selects: one rule per conjunction when namespace
    labels are involved (a local side is pod labels AND namespace labels)."""
    local = normalize(local)
    if local == NOTHING:
        return []
    if local == All():
        return [dataclasses.replace(rule, local=None)]
    keys = local.keys()
    if not any(k.startswith(NS_LABEL) for k in keys):
        return [dataclasses.replace(rule, local=Peer(pods=local))]
    try:
        terms = to_dnf(local, limit=MAX_PIECES)
    except SelectorNotExpressible as exc:
        raise _Inexact("too many pieces") from exc
    out = []
    for term in terms:
        pods = [a for a in term if not (_atom_key(a) or "").startswith(NS_LABEL)]
        labels = [a for a in term if (_atom_key(a) or "").startswith(NS_LABEL)]
        namespace = _rekeyed(and_(*labels), lambda key: key.removeprefix(NS_LABEL))
        side = Peer(pods=and_(*pods) if pods else None, namespace_selector=namespace)
        out.append(dataclasses.replace(rule, local=side))
    return out


def _condition(outer: Subject, inner: Subject) -> Selector:
    """Where ``outer`` selects, as a selector on ``inner``'s endpoints, namespace labels
    included."""
    condition = subject_condition(outer, inner)
    if condition is not None:
        return condition
    return and_(outer.selector, _namespace_labels(outer.namespace_selector))  # type: ignore[arg-type]


def _rule_minus(d: Rule, a: Rule, condition: Selector) -> list[Rule]:
    """``d`` minus the part ``a`` matches on the subject's endpoints where ``condition`` holds."""
    if a.l7 is not None:
        raise _Inexact("L7 matches")  # d's own L7 match stays on every piece: an AND
    ld = _local(d)
    la = normalize(and_(_local(a), condition))
    pd, pa = _atoms(d.peers), _atoms(a.peers)
    cd, ca = _Ports.of(d.ports), _Ports.of(a.ports)
    both = normalize(and_(ld, la))
    pieces: list[tuple[Selector, list[Peer], _Ports]] = [
        (normalize(and_(ld, Not(la))), pd, cd),
        (both, _peer_minus(pd, pa), cd),
        (both, _peer_meet(pd, pa), cd.minus(ca)),
    ]
    out = []
    for local, peers, conns in pieces:
        if local == NOTHING or not peers or not conns:
            continue
        piece = dataclasses.replace(d, peers=_peer_match(peers), ports=conns.match())
        out.extend(_localized(piece, local))
    return out


def _key(ps: PolicySet, pol: Policy, index: int) -> tuple[object, ...]:
    return (ps.tier(pol.tier).sort_key, pol.sort_key, index)


def deny_wins(
    ps: PolicySet, expressible: Callable[[PortMatch], bool] = lambda ports: True
) -> Flattened:
    """Rewrite ``ps`` so that reading it unordered with deny-beats-allow says what it says.

    ``expressible`` tells which port sets the target can write; a deny whose trimmed form
    would need others is instead left to default deny, and the allows after it are cut.
    """
    if not ps.network_sets:
        ps = _without_sets(ps)  # selecting network sets is moot: fewer cases to subtract
    result = Flattened(ps)
    replaced: dict[tuple[int, Direction], DirectionRules] = {}
    layers = sorted({p.layer for p in ps}, key=lambda layer: layer.value)
    removable_by_direction = {d: removable_denies(ps, d) for d in Direction}
    for direction, layer in ((d, la) for d in Direction for la in layers):
        # Layers are ANDed, never ordered against each other: flatten each on its own.
        governing = [
            p for p in ps if p.layer is layer and isinstance(p.direction(direction), Governed)
        ]
        removable = removable_by_direction[direction]
        gates = _gates(ps, governing, direction)
        allow_form = _allow_form(ps, governing, direction, removable, gates, expressible)
        single_tier = len({p.tier for p in governing}) < 2
        has_pass = any(
            r.action is Action.PASS
            for p in governing
            for r in p.direction(direction).rules  # type: ignore[union-attr]
        )
        latest = _latest_tiers(ps, governing)
        # Only these can decide before a rule (the scans below are per rule: keep them short).
        deny_deciders = _with_rules(governing, direction, lambda r: r.action is not Action.DENY)
        allow_deciders = _with_rules(
            governing,
            direction,
            lambda r, form=allow_form: r.action is Action.PASS or id(r) in form,  # type: ignore[misc]
        )
        for pol in governing:
            rules = pol.direction(direction)
            assert isinstance(rules, Governed)
            pol_gates = gates.get(id(pol), [])
            if _never_reached(pol_gates):
                replaced[(id(pol), direction)] = NOT_GOVERNED
                result.losses.append(
                    Loss(
                        Effect.NONE,
                        Treatment.APPROXIMATED,
                        Feature.TIER,
                        pol.source,
                        f"policy {pol.id}: an earlier tier decides all its {direction.value} "
                        "traffic; its rules there were never reached and are left out",
                    )
                )
                continue
            last_tier = single_tier or latest(pol) <= ps.tier(pol.tier).sort_key
            through = _passes_through(ps, governing, direction, pol)
            new_rules: list[Rule] = []
            for i, original in enumerate(rules.rules):
                if original.action is Action.DENY and id(original) in removable:
                    result.losses.append(
                        Loss(
                            Effect.NONE,
                            Treatment.DROPPED,
                            Feature.DENY_ACTION,
                            original.source,
                            "deny rule left to default deny: nothing after it could allow "
                            "that traffic",
                        )
                    )
                    continue
                if id(original) in allow_form:
                    continue  # left to default deny; the allows after it are cut instead
                try:
                    forms = _pass_form(ps, governing, direction, pol, original, last_tier, through)
                    pieces = [g for form in forms for g in _gate(form, pol_gates)]
                except _Inexact:
                    if original.action is not Action.DENY:
                        result.unresolved.add(id(original))
                        new_rules.append(original)
                        continue
                    pieces = [original]  # denying what never reaches it changes nothing
                for piece in pieces:
                    if piece.action is Action.ALLOW and not (allow_form or has_pass):
                        new_rules.append(piece)  # nothing can decide before an allow here
                        continue
                    if piece.action in (Action.ALLOW, Action.DENY):
                        try:
                            deciders = (
                                deny_deciders if piece.action is Action.DENY else allow_deciders
                            )
                            earlier = _earlier(
                                ps, deciders, direction, pol, i, last_tier, allow_form
                            )
                            new_rules.extend(_trim(piece, pol, earlier))
                        except _Inexact:
                            result.unresolved.add(id(piece))
                            new_rules.append(piece)
                        continue
                    new_rules.append(piece)
            isolates = rules.isolates and not through
            replaced[(id(pol), direction)] = Governed(tuple(new_rules), isolates)
    policies = []
    for pol in ps:
        changes = {
            direction.value: replaced[(id(pol), direction)]
            for direction in Direction
            if (id(pol), direction) in replaced
        }
        new = dataclasses.replace(pol, **changes) if changes else pol  # type: ignore[arg-type]
        policies.append(new)
    result.policies = ps.with_policies(policies)
    return result


def _with_rules(
    governing: list[Policy], direction: Direction, wanted: Callable[[Rule], bool]
) -> list[Policy]:
    return [
        p
        for p in governing
        if any(wanted(r) for r in p.direction(direction).rules)  # type: ignore[union-attr]
    ]


def _latest_tiers(ps: PolicySet, governing: list[Policy]) -> Callable[[Policy], TierKey]:
    """The latest tier (sort key) of any policy that may share an endpoint with a policy."""
    by_namespace: dict[str | None, TierKey] = {}
    for p in governing:
        key = ps.tier(p.tier).sort_key
        ns = p.subject.namespace
        by_namespace[ns] = max(by_namespace.get(ns, key), key)
    overall = max(by_namespace.values(), default=_EARLIEST)
    cluster_wide = by_namespace.get(None, _EARLIEST)

    def latest(pol: Policy) -> TierKey:
        ns = pol.subject.namespace
        return overall if ns is None else max(cluster_wide, by_namespace.get(ns, cluster_wide))

    return latest


def _allow_form(
    ps: PolicySet,
    governing: list[Policy],
    direction: Direction,
    removable: set[int],
    gates: dict[int, list[Gate]],
    expressible: Callable[[PortMatch], bool],
) -> set[int]:
    """Denies better said by cutting the allows after them: those whose trimmed form the
    target cannot write (a port set such as "every protocol but TCP 80"). Exact when the
    deny's own policy isolates its endpoints, so that what it denies and no later allow
    admits is dropped by default deny."""
    out: set[int] = set()
    for pol in governing:
        rules = pol.direction(direction)
        assert isinstance(rules, Governed)
        if not rules.isolates or id(pol) in gates or _passes_through(ps, governing, direction, pol):
            continue
        for i, deny in enumerate(rules.rules):
            if deny.action is not Action.DENY or id(deny) in removable:
                continue
            try:
                pieces = _trim(deny, pol, _earlier(ps, governing, direction, pol, i, False, out))
                if all(expressible(p.ports) for p in pieces):
                    continue
            except _Inexact:
                pass
            if _later_allows_cut(ps, governing, direction, pol, i):
                out.add(id(deny))
    return out


def _later_allows_cut(
    ps: PolicySet, governing: list[Policy], direction: Direction, pol: Policy, index: int
) -> bool:
    """Whether every allow (or pass) after deny ``index`` of ``pol`` can be cut by it."""
    deny = pol.direction(direction).rules[index]  # type: ignore[union-attr]
    here = _key(ps, pol, index)
    for q in governing:
        if q is not pol and not may_overlap(pol, q):
            continue
        condition = _condition(pol.subject, q.subject)
        for j, rule in enumerate(q.direction(direction).rules):  # type: ignore[union-attr]
            if _key(ps, q, j) <= here or rule.action not in (Action.ALLOW, Action.PASS):
                continue
            try:
                _rule_minus(rule, deny, condition)
            except _Inexact:
                return False
    return True


def _without_sets(ps: PolicySet) -> PolicySet:
    def peer(p: Peer) -> Peer:
        return dataclasses.replace(p, sets=False) if p.sets else p

    def rules(d: DirectionRules) -> DirectionRules:
        if not isinstance(d, Governed):
            return d
        out = []
        for r in d.rules:
            peers = r.peers if isinstance(r.peers, AnyPeer) else tuple(peer(p) for p in r.peers)
            out.append(dataclasses.replace(r, peers=peers) if peers != r.peers else r)
        return dataclasses.replace(d, rules=tuple(out))

    return ps.with_policies(
        dataclasses.replace(p, ingress=rules(p.ingress), egress=rules(p.egress)) for p in ps
    )


def _passes_through(
    ps: PolicySet, governing: list[Policy], direction: Direction, pol: Policy
) -> bool:
    """Whether ``pol``'s tier never drops what it leaves undecided on ``pol``'s endpoints:
    the tier passes unmatched traffic, or ``pol`` ends in an unconditional Pass and no other
    policy of its tier shares its endpoints."""
    if ps.tier(pol.tier).default_action is Action.PASS:
        return True
    rules = pol.direction(direction)
    assert isinstance(rules, Governed)
    if not rules.rules or rules.rules[-1] != Rule(Action.PASS):
        return False
    return not any(q is not pol and q.tier == pol.tier and may_overlap(pol, q) for q in governing)


def _bind(rule: Rule, cut: Selector) -> list[Rule]:
    """``rule`` confined to the subject's endpoints where ``cut`` holds."""
    return _localized(rule, and_(_local(rule), cut))


def _earlier(
    ps: PolicySet,
    governing: list[Policy],
    direction: Direction,
    pol: Policy,
    index: int,
    last_tier: bool,
    allow_form: set[int],
) -> list[tuple[Policy, Rule]]:
    """What rule ``index`` of ``pol`` must leave to the rules before it: for a deny, allows
    anywhere earlier (less what a Pass of their own tier hands on before them: that traffic
    never meets them) and passes of its own tier; for an allow, the denies taken out of the
    deny-wins form before it, and passes of its own tier (which hand the traffic to later
    tiers) unless nothing later can govern it (then they allow)."""
    here = _key(ps, pol, index)
    deny = pol.direction(direction).rules[index].action is Action.DENY  # type: ignore[union-attr]
    out: list[tuple[Policy, Rule]] = []
    for q in governing:
        if q is not pol and not may_overlap(pol, q):
            continue
        for j, rule in enumerate(q.direction(direction).rules):  # type: ignore[union-attr]
            if _key(ps, q, j) >= here:
                break
            if deny and rule.action is Action.ALLOW and q.tier != pol.tier:
                passed = _passes_before(ps, governing, direction, q, j)
                out.extend((q, piece) for piece in _trim(rule, q, passed))
                continue
            if deny:
                wanted = rule.action is Action.ALLOW or (
                    rule.action is Action.PASS and q.tier == pol.tier
                )
            else:
                wanted = id(rule) in allow_form or (
                    rule.action is Action.PASS and q.tier == pol.tier and not last_tier
                )
            if wanted:
                out.append((q, rule))
    return out


def _passes_before(
    ps: PolicySet, governing: list[Policy], direction: Direction, pol: Policy, index: int
) -> list[tuple[Policy, Rule]]:
    """The Pass rules of ``pol``'s tier that see traffic before rule ``index`` of ``pol``."""
    here = _key(ps, pol, index)
    return [
        (q, rule)
        for q in governing
        if q.tier == pol.tier and (q is pol or may_overlap(pol, q))
        for j, rule in enumerate(q.direction(direction).rules)  # type: ignore[union-attr]
        if rule.action is Action.PASS and _key(ps, q, j) < here
    ]


def _trim(rule: Rule, pol: Policy, earlier: list[tuple[Policy, Rule]]) -> list[Rule]:
    pieces = [rule]
    for q, allow in earlier:
        condition = _condition(q.subject, pol.subject)
        pieces = [rest for piece in pieces for rest in _rule_minus(piece, allow, condition)]
        if len(pieces) > MAX_PIECES:
            raise _Inexact("too many pieces")
    return pieces


def _gates(ps: PolicySet, governing: list[Policy], direction: Direction) -> dict[int, list[Gate]]:
    """For policies of later tiers: the earlier tiers that decide their endpoints' traffic.

    An earlier tier that governs an endpoint drops what it neither decides nor passes, so a
    later policy's rules there only ever see what that tier passes.
    """
    out: dict[int, list[Gate]] = {}
    if len({p.tier for p in governing}) < 2:
        return out
    last = max(ps.tier(p.tier).sort_key for p in governing)
    not_last = [p for p in governing if ps.tier(p.tier).sort_key < last]
    for q in governing:
        q_tier = ps.tier(q.tier)
        by_tier: dict[str, Gate] = {}
        for p in not_last:
            if p.tier == q.tier or not may_overlap(p, q):
                continue
            if ps.tier(p.tier).sort_key > q_tier.sort_key:
                continue
            if _passes_through(ps, governing, direction, p):
                continue  # everything p's tier leaves undecided reaches q's tier
            passes = [
                (p, r)
                for r in p.direction(direction).rules  # type: ignore[union-attr]
                if r.action is Action.PASS
            ]
            condition = _condition(p.subject, q.subject)
            by_tier.setdefault(p.tier, []).append((condition, passes))
        if by_tier:
            out[id(q)] = [by_tier[t] for t in sorted(by_tier, key=lambda t: ps.tier(t).sort_key)]
    return out


def _never_reached(gates: list[Gate]) -> bool:
    """Whether some earlier tier governs all the policy's endpoints and passes nothing."""
    return any(
        all(not passes for _, passes in gate)
        and normalize(and_(*(Not(c) for c, _ in gate))) == NOTHING
        for gate in gates
    )


def _gate(rule: Rule, gates: list[Gate]) -> list[Rule]:
    """``rule`` cut to the traffic the earlier tiers let through to it: unchanged where no
    such tier governs, met with each Pass of a policy that governs there."""
    pieces = [rule]
    for gate in gates:
        outside = normalize(and_(*(Not(c) for c, _ in gate)))
        new: list[Rule] = []
        for piece in pieces:
            if outside != NOTHING:
                new.extend(_bind(piece, outside))
            for condition, passes in gate:
                for _, passed in passes:
                    new.extend(_rule_meet(piece, passed, condition))
        pieces = _absorbed(new)
        if len(pieces) > MAX_PIECES:
            raise _Inexact("too many pieces")
    return pieces


def _absorbed(rules: list[Rule]) -> list[Rule]:
    """Drop peers "these pods at these addresses" that an address-only peer of a rule with
    the same action, local side, ports and L7 match already covers: under every profile a
    pod matches the address range exactly when it matches the conjunction's."""
    covered: dict[tuple[object, ...], IPSet] = {}
    for rule in rules:
        if isinstance(rule.peers, AnyPeer):
            continue
        key = (rule.action, rule.local, rule.ports, rule.l7)
        for peer in rule.peers:
            if peer.ip is not None and not peer.wants_pod and peer == Peer(ip=peer.ip):
                covered[key] = covered.get(key, IPSet()) | peer.ipset()
    if not covered:
        return rules
    out = []
    for rule in rules:
        key = (rule.action, rule.local, rule.ports, rule.l7)
        room = covered.get(key)
        if room is None or isinstance(rule.peers, AnyPeer):
            out.append(rule)
            continue
        kept = tuple(
            p for p in rule.peers if not (p.wants_pod and p.ip is not None and p.ipset() <= room)
        )
        if kept:
            out.append(rule if kept == rule.peers else dataclasses.replace(rule, peers=kept))
    return out


def _rule_meet(rule: Rule, other: Rule, condition: Selector) -> list[Rule]:
    """The part of ``rule`` that ``other`` also matches, on endpoints where ``condition``
    holds (``rule``'s action and L7 match kept)."""
    if other.l7 is not None:
        raise _Inexact("L7 matches")
    local = normalize(and_(_local(rule), condition, _local(other)))
    if local == NOTHING:
        return []
    if isinstance(other.peers, AnyPeer):
        peers: PeerMatch = rule.peers
    elif isinstance(rule.peers, AnyPeer):
        peers = other.peers
    else:
        met = _peer_meet(_atoms(rule.peers), _atoms(other.peers))
        if not met:
            return []
        peers = _peer_match(met)
    if isinstance(other.ports, AnyPorts):
        ports: PortMatch = rule.ports
    elif isinstance(rule.ports, AnyPorts):
        ports = other.ports
    else:
        conns = _Ports.of(rule.ports).meet(_Ports.of(other.ports))
        if not conns:
            return []
        ports = conns.match()
    return _localized(dataclasses.replace(rule, peers=peers, ports=ports), local)


def _pass_form(
    ps: PolicySet,
    governing: list[Policy],
    direction: Direction,
    pol: Policy,
    rule: Rule,
    last_tier: bool,
    through: bool,
) -> list[Rule]:
    """What a rule becomes before trimming: a Pass allows where no later tier decides what it
    hands on (the traffic reaches the profile) and is otherwise left out, since the later
    tiers' rules are cut to what it passes; other rules are kept."""
    if rule.action is not Action.PASS:
        return [rule]
    allow = dataclasses.replace(rule, action=Action.ALLOW)
    if last_tier:
        return [allow]
    if through:
        return []  # the later tiers decide it, as they decide all the tier leaves
    covered: list[Selector] = []
    for q in governing:
        if ps.tier(q.tier).sort_key <= ps.tier(pol.tier).sort_key or not may_overlap(pol, q):
            continue
        if _passes_through(ps, governing, direction, q):
            continue  # what q's tier leaves undecided moves on: not decided there
        covered.append(_condition(q.subject, pol.subject))
    return _bind(allow, normalize(and_(*(Not(c) for c in covered))))
