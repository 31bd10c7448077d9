"""Helpers several checks share: party matching, peer breadth, bounded witness lists."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Iterator

from polyfence.compliance.context import PUBLIC, AuditContext, workload_matches
from polyfence.compliance.model import ConnectionEvidence
from polyfence.inventory import Endpoint
from polyfence.model.peers import ANY_PEER, Entity, Peer, PeerMatch
from polyfence.model.policy import Action, Direction, Governed, Policy, Rule
from polyfence.model.ports import ANY_PORTS, protocol_name
from polyfence.model.selectors import Selector
from polyfence.semantics.connset import ConnSet
from polyfence.semantics.engine import EndpointClass
from polyfence.semantics.intervals import IPSet

MAX_WITNESSES = 3  # connections shown per finding
MAX_EXPLAINED = 200  # findings per check that get the engine's step-by-step explanation

V4_ALL = IPSet.all_v4()
V6_ALL = IPSet.all_v6()


def selects_everything(selector: Selector | None) -> bool:
    return selector is not None and selector.matches({}) and not selector.keys()


def peer_breadth(peer: Peer, broad_prefix: int = 0) -> str | None:
    """Why a peer is broad ("every pod in every namespace", "0.0.0.0/0" …), or None."""
    if peer == Peer():  # an all-None peer matches anything (e.g. Cilium `fromEntities: [all]`)
        return "every peer (no constraint)"
    if peer.entity in (Entity.ALL, Entity.WORLD):
        return f"the {peer.entity.value!r} entity"
    ipset = peer.ipset()
    if ipset is not None and not peer.wants_pod and peer.entity is None:
        if ipset >= V4_ALL or ipset >= V6_ALL:
            return (
                "every address ("
                + ", ".join(n for n in ("0.0.0.0/0", "::/0") if IPSet.from_cidr(n) <= ipset)
                + ")"
            )
        if broad_prefix and peer.ip is not None and peer.ip.nets:
            wide = [
                n
                for n in peer.ip.nets
                if "/" in n and ":" not in n and int(n.rsplit("/", 1)[1]) <= broad_prefix
            ]
            if wide:
                return "the wide block " + ", ".join(wide)
    if (
        peer.ip is None
        and peer.entity is None
        and peer.namespace_names is None
        and peer.service_account is None
        and peer.not_pods is None
        and peer.fqdn is None
        and peer.security_group is None
        and peer.principal is None
        and (peer.pods is None or selects_everything(peer.pods))
        and peer.namespace_selector is not None
        and selects_everything(peer.namespace_selector)
    ):
        return "every pod in every namespace"
    if (
        peer.not_pods is not None
        and peer.pods is None
        and peer.namespace_selector is None
        and peer.ip is None
        and peer.entity is None
    ):
        return "every endpoint outside a selector (negative match)"
    return None


def rule_breadth(peers: PeerMatch, broad_prefix: int = 0) -> str | None:
    if peers is ANY_PEER:
        return "any peer"
    for peer in peers:  # type: ignore[union-attr]
        why = peer_breadth(peer, broad_prefix)
        if why:
            return why
    return None


def allow_rules(policy: Policy) -> Iterator[tuple[Direction, int, Rule]]:
    for direction in (Direction.INGRESS, Direction.EGRESS):
        rules = policy.direction(direction)
        if isinstance(rules, Governed):
            for i, rule in enumerate(rules.rules):
                if rule.action is Action.ALLOW:
                    yield direction, i, rule


def all_ports(rule: Rule) -> bool:
    return rule.ports is ANY_PORTS


def party_matches_endpoint(ctx: AuditContext, party: str, endpoint: Endpoint) -> bool:
    """``zone:NAME``, ``namespace:PATTERN``, ``*`` or a workload pattern ``ns/name``."""
    if party == "*":
        return True
    if party == "internet":
        return False
    if party.startswith("zone:"):
        return party[5:] in ctx.zones_of(endpoint.namespace)
    if party.startswith("namespace:"):
        return endpoint.namespace is not None and fnmatch.fnmatchcase(
            endpoint.namespace, party[10:]
        )
    return workload_matches(endpoint, [party])


def explained(
    ctx: AuditContext,
    budget: list[int],
    src: Endpoint | str,
    dst: Endpoint | str,
    conns: ConnSet,
) -> ConnectionEvidence | None:
    """A witness from ``conns``; the engine's explanation while the check's budget lasts."""
    sample = conns.sample()
    if sample is None:
        return None
    proto, port = sample
    if budget[0] > 0:
        budget[0] -= 1
        return ctx.explain(src, dst, proto, port)
    return ConnectionEvidence(
        src.ref if isinstance(src, Endpoint) else src,
        dst.ref if isinstance(dst, Endpoint) else dst,
        protocol_name(proto),
        port,
        "allowed",
        (),
    )


def public_address(cls: EndpointClass) -> str:
    """A representative internet address of an address class."""
    block = (cls.external or IPSet.empty()) & PUBLIC
    cidrs = block.to_cidrs()
    return cidrs[0].split("/")[0] if cidrs else str(cls.representative)


def names(endpoints: Iterable[Endpoint], limit: int = 10) -> str:
    items = sorted(e.ref for e in endpoints)
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")
