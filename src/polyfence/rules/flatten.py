"""Proofs that an allow-only union (Kubernetes, AWS) says what an ordered, tiered set says.

Writers without deny, pass, order or tiers drop those constructs. These checks find the cases
where dropping them is exact for every cluster, so that no loss needs to be reported:

* a Deny rule after which no Allow or Pass rule of any policy that may select the same endpoint
  follows in its tier (the traffic it denies would hit the tier's end-of-tier drop anyway);
* policies of different tiers that can never select a common endpoint (different namespaces).
"""

from __future__ import annotations

import dataclasses

from polyfence.inventory import NAMESPACE_NAME_LABEL
from polyfence.model.labels import NAMESPACE_KEY
from polyfence.model.peers import Peer
from polyfence.model.policy import Action, Direction, Governed, Policy, PolicySet, Rule, Subject
from polyfence.model.selectors import NOTHING, All, In, Selector, and_, normalize
from polyfence.rules.terms import rename_key


def may_overlap(a: Policy, b: Policy) -> bool:
    """False only when no endpoint can be selected by both (namespaced in different namespaces)."""
    na, nb = a.subject.namespace, b.subject.namespace
    return na is None or nb is None or na == nb


def pods_meet(a: Peer, b: Peer) -> Peer | None:
    """The pod peer matching both pod peers (``a``'s other fields kept), None if none can."""
    names = a.namespace_names
    if b.namespace_names is not None:
        names = b.namespace_names if names is None else names & b.namespace_names
        if not names:
            return None
    ns_parts = [s for s in (a.namespace_selector, b.namespace_selector) if s is not None]
    pods = normalize(and_(a.pods or All(), b.pods or All()))
    ns_sel = normalize(and_(*ns_parts)) if ns_parts else None
    if pods == NOTHING or ns_sel == NOTHING:
        return None
    return dataclasses.replace(a, pods=pods, namespace_names=names, namespace_selector=ns_sel)


def subject_condition(outer: Subject, inner: Subject) -> Selector | None:
    """Where ``outer`` selects, as a selector on ``inner``'s endpoints (pod labels and the
    namespace pseudo-label): ``All()`` when it selects all of them, None when it would need
    namespace labels."""
    if outer == inner:
        return All()
    nsel = outer.namespace_selector
    if nsel not in (None, All()):
        if nsel.keys() != {NAMESPACE_NAME_LABEL}:
            return None  # namespace labels other than the name are not endpoint facts
        named = rename_key(nsel, NAMESPACE_NAME_LABEL, NAMESPACE_KEY)
        if outer.selector == All() and inner.namespace_selector == nsel:
            return All()
        return and_(outer.selector, named)
    if outer.namespace is None or outer.namespace == inner.namespace:
        return outer.selector  # All() when it selects every endpoint ``inner`` can
    return and_(outer.selector, In(NAMESPACE_KEY, frozenset({outer.namespace})))


def removable_denies(ps: PolicySet, direction: Direction) -> set[int]:
    """``id()`` of every Deny rule whose removal changes nothing in any cluster."""
    governing = [p for p in ps if isinstance(p.direction(direction), Governed)]
    out: set[int] = set()
    for pol in governing:
        rules = pol.direction(direction)
        assert isinstance(rules, Governed)
        if not any(r.action is Action.DENY for r in rules.rules):
            continue
        if not rules.isolates or ps.tier(pol.tier).default_action is not Action.DENY:
            continue
        later_policies = [
            q
            for q in governing
            if q is not pol
            and q.tier == pol.tier
            and q.sort_key > pol.sort_key
            and may_overlap(pol, q)
        ]
        later_rules: list[Rule] = [r for q in later_policies for r in q.direction(direction).rules]  # type: ignore[union-attr]
        opens_later = any(r.action in (Action.ALLOW, Action.PASS) for r in later_rules)
        for i, rule in enumerate(rules.rules):
            if rule.action is not Action.DENY:
                continue
            after = rules.rules[i + 1 :]
            if not opens_later and not any(r.action in (Action.ALLOW, Action.PASS) for r in after):
                out.add(id(rule))
    return out


def overlapping_tiers(ps: PolicySet) -> list[tuple[Policy, Policy]]:
    """Pairs of policies of different tiers that may govern one endpoint in one direction."""
    pairs: list[tuple[Policy, Policy]] = []
    for direction in Direction:
        governing = [p for p in ps if isinstance(p.direction(direction), Governed)]
        for i, a in enumerate(governing):
            for b in governing[i + 1 :]:
                if a.tier != b.tier and may_overlap(a, b):
                    pairs.append((a, b))
    return pairs
