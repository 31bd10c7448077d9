"""Flattening an ordered, tiered policy set into the unordered deny-beats-allow form.

Cilium (and Istio's DENY/ALLOW) have no order: a deny rule beats every allow rule. Calico is
first-match across tiers, orders and rules, with Pass and end-of-tier drops. Reading a Calico
set as deny-wins is exact once

* every deny rule ``d`` is replaced by ``d`` minus every allow that decides earlier (and minus
  every earlier Pass of its own tier, which skips it): then a connection the ordered set
  allows is never denied, and one it denies is denied by the trimmed rule, or by default deny
  when no rule matches (for a first-match list, allowed = the union of the allows minus the
  union of the denies, each deny less the allows before it);
* a Pass in the last tier that can govern its subject becomes an Allow (the traffic reaches
  the profile, which allows it), and a last tier whose default is Pass stops isolating;
* a later tier's policy whose endpoints an earlier tier governs without ever passing is cut
  to the endpoints that tier does not govern (its rules there were never reached).

Rules are subtracted in the IR's own terms (selectors, address sets, connection sets), so the
result means the same under every evaluation profile; a pair this algebra cannot subtract
exactly (L7 matches, named ports, pods against addresses) leaves the rule unresolved, for the
writer to report.
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
)
from polyfence.model.ports import ANY_PORTS, AnyPorts, PortMatch, PortSpec
from polyfence.model.selectors import NOTHING, All, In, Not, Selector, and_, normalize
from polyfence.semantics.connset import FULL, ConnSet
from polyfence.semantics.intervals import IntervalSet, IPSet
from polyfence.translators._flatten import (
    may_overlap,
    pods_meet,
    removable_denies,
    subject_condition,
)

MAX_PIECES = 64  # rules one deny may split into before we give up and report instead


@dataclass
class Flattened:
    """The rewritten set, what could not be flattened (rule ids) and what was done."""

    policies: PolicySet
    unresolved: set[int] = field(default_factory=set)
    tier_conflicts: list[tuple[Policy, Policy]] = field(default_factory=list)
    losses: list[Loss] = field(default_factory=list)


class _Inexact(Exception):
    """The subtraction has no exact form in the IR algebra used here."""


# -- ports -------------------------------------------------------------------------------------
def _conns(ports: PortMatch) -> ConnSet:
    if isinstance(ports, AnyPorts):
        return FULL
    out = ConnSet()
    for spec in ports:
        if spec.named or spec.not_named:
            raise _Inexact("named ports resolve per destination")
        out = out | ConnSet.build(spec.protocols, spec.ports)
    return out


def _ports(conns: ConnSet) -> PortMatch:
    if conns == FULL:
        return ANY_PORTS
    by_ports: dict[IntervalSet, list[tuple[int, int]]] = {}
    for lo, hi, ports in conns.segments:
        by_ports.setdefault(ports, []).append((lo, hi))
    return tuple(PortSpec(IntervalSet.of(*protos), ports) for ports, protos in by_ports.items())


# -- peers -------------------------------------------------------------------------------------
def _kind(peer: Peer) -> str:
    """'any', 'pod' or 'ip'; anything else has no exact algebra here."""
    if peer == Peer():
        return "any"
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


def _meet(a: Peer, b: Peer) -> Peer | None:
    ka, kb = _kind(a), _kind(b)
    if ka == "any":
        return b
    if kb == "any":
        return a
    if ka == kb == "pod":
        return _pod_and(a, b)
    if ka == kb == "ip":
        return _ip(a.ipset() & b.ipset())  # type: ignore[operator]
    raise _Inexact("pods against addresses depend on the evaluation profile")


def _minus(a: Peer, b: Peer) -> list[Peer]:
    ka, kb = _kind(a), _kind(b)
    if kb == "any":
        return []
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
def _local(rule: Rule) -> Selector:
    if rule.local is None:
        return All()
    if rule.local != Peer(pods=rule.local.pods):
        raise _Inexact("a local side constrained by more than pod labels")
    return rule.local.pods or All()


def _rule_minus(d: Rule, a: Rule, condition: Selector) -> list[Rule]:
    """``d`` minus the part ``a`` matches on the subject's endpoints where ``condition`` holds."""
    if d.l7 is not None or a.l7 is not None:
        raise _Inexact("L7 matches")
    ld = _local(d)
    la = normalize(and_(_local(a), condition))
    pd, pa = _atoms(d.peers), _atoms(a.peers)
    cd, ca = _conns(d.ports), _conns(a.ports)
    both = normalize(and_(ld, la))
    pieces: list[tuple[Selector, list[Peer], ConnSet]] = [
        (normalize(and_(ld, Not(la))), pd, cd),
        (both, _peer_minus(pd, pa), cd),
        (both, _peer_meet(pd, pa), cd - ca),
    ]
    out = []
    for local, peers, conns in pieces:
        if local == NOTHING or not peers or not conns:
            continue
        out.append(
            dataclasses.replace(
                d,
                peers=_peer_match(peers),
                ports=_ports(conns),
                local=None if local == All() else Peer(pods=local),
            )
        )
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
        dead = _dead_in_later_tiers(ps, governing, direction, result)
        allow_form = _allow_form(ps, governing, direction, removable, dead, expressible)
        single_tier = len({p.tier for p in governing}) < 2
        has_pass = any(
            r.action is Action.PASS
            for p in governing
            for r in p.direction(direction).rules  # type: ignore[union-attr]
        )
        for pol in governing:
            rules = pol.direction(direction)
            assert isinstance(rules, Governed)
            cut = dead.get(id(pol))
            if cut is not None and cut == NOTHING:
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
            last_tier = single_tier or not any(
                ps.tier(q.tier).sort_key > ps.tier(pol.tier).sort_key and may_overlap(pol, q)
                for q in governing
            )
            through = _passes_through(ps, governing, direction, pol)
            new_rules: list[Rule] = []
            for i, original in enumerate(rules.rules):
                rule = original
                if cut is not None:
                    try:
                        rule = _bind(rule, cut)
                    except _Inexact:
                        result.unresolved.add(id(rule))
                        new_rules.append(rule)
                        continue
                if rule.action is Action.DENY and id(original) in removable:
                    result.losses.append(
                        Loss(
                            Effect.NONE,
                            Treatment.DROPPED,
                            Feature.DENY_ACTION,
                            rule.source,
                            "deny rule left to default deny: nothing after it could allow "
                            "that traffic",
                        )
                    )
                    continue
                if id(original) in allow_form:
                    continue  # left to default deny; the allows after it are cut instead
                if rule.action is Action.PASS:
                    if not last_tier:
                        if not through:
                            result.unresolved.add(id(rule))
                            new_rules.append(rule)
                        # else: the later tiers decide it, as they decide all the tier leaves
                        continue
                    # Out of the last tier, passed traffic reaches the profile: allowed.
                    rule = dataclasses.replace(rule, action=Action.ALLOW)
                if rule.action is Action.ALLOW and not (allow_form or has_pass):
                    new_rules.append(rule)  # nothing can decide before an allow here
                    continue
                if rule.action in (Action.ALLOW, Action.DENY):
                    earlier = _earlier(ps, governing, direction, pol, i, last_tier, allow_form)
                    try:
                        new_rules.extend(_trim(rule, pol, earlier))
                    except _Inexact:
                        result.unresolved.add(id(rule))
                        new_rules.append(rule)
                    continue
                new_rules.append(rule)
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


def _allow_form(
    ps: PolicySet,
    governing: list[Policy],
    direction: Direction,
    removable: set[int],
    dead: dict[int, Selector],
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
        if not rules.isolates or id(pol) in dead or _passes_through(ps, governing, direction, pol):
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
        condition = subject_condition(pol.subject, q.subject)
        for j, rule in enumerate(q.direction(direction).rules):  # type: ignore[union-attr]
            if _key(ps, q, j) <= here or rule.action not in (Action.ALLOW, Action.PASS):
                continue
            if condition is None:
                return False
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


def _bind(rule: Rule, cut: Selector) -> Rule:
    local = normalize(and_(_local(rule), cut))
    return dataclasses.replace(rule, local=None if local == All() else Peer(pods=local))


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
    anywhere earlier and passes of its own tier; for an allow, the denies taken out of the
    deny-wins form before it, and passes of its own tier (which hand the traffic to later
    tiers) unless nothing later can govern it (then they allow)."""
    here = _key(ps, pol, index)
    deny = pol.direction(direction).rules[index].action is Action.DENY  # type: ignore[union-attr]
    out = []
    for q in governing:
        if q is not pol and not may_overlap(pol, q):
            continue
        for j, rule in enumerate(q.direction(direction).rules):  # type: ignore[union-attr]
            if _key(ps, q, j) >= here:
                break
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


def _trim(rule: Rule, pol: Policy, earlier: list[tuple[Policy, Rule]]) -> list[Rule]:
    pieces = [rule]
    for q, allow in earlier:
        condition = subject_condition(q.subject, pol.subject)
        if condition is None:
            raise _Inexact("the earlier policy's subject is not a pod selector here")
        pieces = [rest for piece in pieces for rest in _rule_minus(piece, allow, condition)]
        if len(pieces) > MAX_PIECES:
            raise _Inexact("too many pieces")
    return pieces


def _dead_in_later_tiers(
    ps: PolicySet, governing: list[Policy], direction: Direction, result: Flattened
) -> dict[int, Selector]:
    """For policies of later tiers: the part of their subject still reached (NOTHING: none).

    An earlier tier that governs an endpoint and never passes decides all its traffic there;
    a later policy keeps only the endpoints no such tier governs. Pairs this cannot settle
    are left to the writer as tier conflicts.
    """
    out: dict[int, Selector] = {}
    if len({p.tier for p in governing}) < 2:
        return out
    for q in governing:
        keep: Selector = All()
        for p in governing:
            if p.tier == q.tier or not may_overlap(p, q):
                continue
            if ps.tier(p.tier).sort_key > ps.tier(q.tier).sort_key:
                continue
            if _passes_through(ps, governing, direction, p):
                continue  # everything p's tier leaves undecided reaches q's tier
            tier = ps.tier(p.tier)
            passes = tier.default_action is Action.PASS or any(
                r.action is Action.PASS
                for o in governing
                if o.tier == p.tier and may_overlap(o, q)
                for r in o.direction(direction).rules  # type: ignore[union-attr]
            )
            condition = subject_condition(p.subject, q.subject)
            if passes or condition is None:
                result.tier_conflicts.append((p, q))
                continue
            keep = normalize(and_(keep, Not(condition)))
        if keep != All():
            out[id(q)] = keep
    return out
