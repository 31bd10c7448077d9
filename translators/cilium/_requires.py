"""Cilium ``fromRequires``/``toRequires``, expanded the way Cilium up to 1.18 applies them.

A requirement grants nothing. Cilium collects the requirements of every rule that selects an
endpoint (allow rules' into one list, deny rules' into another) and ANDs all of them into each
``fromEndpoints`` selector of every allow (resp. deny) rule selecting that endpoint, whichever
policy it comes from; CIDR and entity peers are untouched (``resolveL4IngressPolicy`` and
``GetSourceEndpointSelectorsWithRequirements`` in pkg/policy). Cilium 1.19 removed the fields,
so the IR carries the expansion itself: a rule whose subject only partly overlaps a requiring
policy's subject is split by the local side (``Rule.local``) into the parts that do and do not
carry the requirement.
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass

from polyfence.fidelity import Effect, Feature, Loss, Treatment
from polyfence.model.peers import AnyPeer, Peer
from polyfence.model.policy import Action, Direction, Governed, Policy, Rule, Subject
from polyfence.model.provenance import SourceRef
from polyfence.model.selectors import All, Not, Selector, and_
from polyfence.rules.flatten import pods_meet, subject_condition

MAX_SPLIT = 4  # requiring subjects that only partly overlap one rule's subject


@dataclass(frozen=True, slots=True)
class Requirement:
    """One ``fromRequires``/``toRequires`` selector and the rule subject it came with."""

    subject: Subject
    direction: str  # "ingress" | "egress"
    action: Action
    peer: Peer
    source: SourceRef


def conjoin(a: Peer, b: Peer) -> Peer | None:
    """The peer matching both (None: nothing can); both are endpoint-selector peers."""
    if a.entity is not None or b.entity is not None:
        # Reserved identities carry no pod labels: only the same identity satisfies both.
        return a if a == b else None
    return pods_meet(a, b)


def _overlap(a: Subject, b: Subject) -> bool:
    return a.namespace is None or b.namespace is None or a.namespace == b.namespace


def expand_requirements(
    policies: list[Policy],
    requirements: list[Requirement],
    endpoint_peers: dict[SourceRef, int],
) -> tuple[list[Policy], list[Loss]]:
    """Policies with every requirement ANDed where Cilium ANDs it, and what could not be."""
    losses: list[Loss] = [
        Loss(
            Effect.NONE,
            Treatment.EXPANDED,
            Feature.SELECTOR_EXPRESSION,
            req.source,
            "fromRequires/toRequires applied as Cilium up to 1.18 applies it (ANDed into the "
            "endpoint selectors of every rule selecting the same endpoints); Cilium 1.19 "
            "removed the field",
        )
        for req in requirements
    ]
    out: list[Policy] = []
    for pol in policies:
        changes: dict[str, Governed] = {}
        for direction in ("ingress", "egress"):
            rules = pol.direction(Direction(direction))
            if not isinstance(rules, Governed):
                continue
            new_rules: list[Rule] = []
            for rule in rules.rules:
                count = endpoint_peers.get(rule.source, 0) if rule.source else 0
                relevant = [
                    r
                    for r in requirements
                    if r.direction == direction
                    and r.action is rule.action
                    and _overlap(r.subject, pol.subject)
                ]
                if not count or not relevant or isinstance(rule.peers, AnyPeer):
                    new_rules.append(rule)
                    continue
                new_rules.extend(_expand(rule, count, pol.subject, relevant, losses))
            changes[direction] = dataclasses.replace(rules, rules=tuple(new_rules))
        out.append(dataclasses.replace(pol, **changes) if changes else pol)  # type: ignore[arg-type]
    return out, losses


def _expand(
    rule: Rule, count: int, subject: Subject, relevant: list[Requirement], losses: list[Loss]
) -> list[Rule]:
    always: list[Peer] = []
    partial: dict[Selector | None, list[Peer]] = {}
    for r in relevant:
        cond = subject_condition(r.subject, subject)
        if cond == All():
            always.append(r.peer)
        else:
            partial.setdefault(cond, []).append(r.peer)
    conditions: list[tuple[Selector, list[Peer]]] = []
    for cond, peers in partial.items():
        if cond is None or len(conditions) == MAX_SPLIT:
            losses.append(
                Loss(
                    Effect.WIDENED if rule.action is Action.ALLOW else Effect.NARROWED,
                    Treatment.DROPPED,
                    Feature.SELECTOR_EXPRESSION,
                    rule.source,
                    "a requirement from a policy whose subject only partly overlaps this rule's "
                    "cannot be bound to that part; it was not applied here",
                )
            )
            continue
        conditions.append((cond, peers))
    assert not isinstance(rule.peers, AnyPeer)
    out: list[Rule] = []
    for chosen in itertools.product((True, False), repeat=len(conditions)):
        reqs = list(always)
        local_parts: list[Selector] = []
        for take, (cond, peers) in zip(chosen, conditions, strict=True):
            if take:
                reqs.extend(peers)
            local_parts.append(cond if take else Not(cond))
        endpoint, rest = rule.peers[:count], rule.peers[count:]
        kept: list[Peer] = []
        for peer in endpoint:
            merged: Peer | None = peer
            for req in reqs:
                merged = conjoin(merged, req) if merged is not None else None
            if merged is not None:
                kept.append(merged)
        written = (*kept, *rest)
        if not written:
            continue  # every endpoint peer was ruled out: the rule matches nothing here
        local = rule.local
        if local_parts:
            part = Peer(pods=and_(*local_parts))
            local = part if local is None else conjoin(local, part)
            if local is None:
                continue
        out.append(dataclasses.replace(rule, peers=written, local=local))
    return out
