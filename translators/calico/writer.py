"""Rendering the canonical model as projectcalico.org/v3 documents (see ``calico`` for the table).

Calico rules hold one protocol, one address family and one source/destination each, so an IR
rule becomes several consecutive Calico rules with the same action — exact under first-match
evaluation, since a connection matching the IR rule matches one of them and they all decide
alike. One rule per peer also keeps ``notNets`` from leaking across peers (semantics trap 30).
"""

from __future__ import annotations

import ipaddress
from typing import Any

from polyfence.fidelity import Effect, Feature, Loss, Treatment
from polyfence.inventory import NAMESPACE_NAME_LABEL
from polyfence.model.labels import NAME_KEY
from polyfence.model.peers import ANY_PEER, IpMatch, NetworkSet, Peer
from polyfence.model.policy import (
    DEFAULT_TIER,
    Action,
    Direction,
    Governed,
    Layer,
    Policy,
    PolicySet,
    Rule,
    Tier,
)
from polyfence.model.ports import (
    ALL_PROTOCOLS,
    ANY_PORTS,
    ICMP_PROTOCOLS,
    PORT_PROTOCOLS,
    PortSpec,
    protocol_name,
)
from polyfence.model.provenance import SourceRef
from polyfence.model.selectors import All, Eq, In, Selector, and_
from polyfence.rules.effects import effect_of
from polyfence.rules.terms import rename_key, safe_name
from polyfence.semantics.intervals import ALL_PORTS, IntervalSet
from polyfence.translation import RenderOptions, origins_of
from polyfence.translators.calico.reader import (
    CALICO_NAME,
    ORCHESTRATOR,
    endpoint_selector_from_ir,
)

API_VERSION = "projectcalico.org/v3"
_ACTIONS = {Action.ALLOW: "Allow", Action.DENY: "Deny", Action.PASS: "Pass", Action.LOG: "Log"}
_PORT_UNIVERSE = IntervalSet.span(1, 65535)
ON_PODS = Eq(ORCHESTRATOR, "k8s")
MAX_RULES_PER_IR_RULE = 512


class _Writer:
    def __init__(self, ps: PolicySet, options: RenderOptions) -> None:
        self.ps = ps
        self.options = options
        self.losses: list[Loss] = []

    def loss(self, effect: Effect, feature: Feature, ref: SourceRef | None, msg: str) -> None:
        self.losses.append(Loss(effect, Treatment.DROPPED, feature, ref, msg))

    # -- selectors -----------------------------------------------------------------------------
    @staticmethod
    def endpoint_selector(sel: Selector, pods_only: bool) -> str:
        out = endpoint_selector_from_ir(sel)
        return str(and_(out, ON_PODS) if pods_only else out)

    # -- peers ---------------------------------------------------------------------------------
    def entity_rules(
        self, peer: Peer, namespaced: str | None, rule: Rule, local: bool = False
    ) -> list[dict[str, Any]] | None:
        """EntityRules (one per address family) for a peer; None when it cannot be written."""
        for value, feature in (
            (peer.entity, Feature.ENTITY),
            (peer.fqdn, Feature.FQDN),
            (peer.security_group, Feature.SECURITY_GROUP),
            (peer.principal, Feature.PRINCIPAL),
        ):
            if value is not None:
                for effect in effect_of(rule.action):
                    self.loss(
                        effect, feature, rule.source, f"Calico has no {feature.value} peer; dropped"
                    )
                return None
        base: dict[str, Any] = {}
        pods_only = not peer.sets
        if peer.pods is not None:
            base["selector"] = self.endpoint_selector(peer.pods, pods_only)
        elif peer.service_account is not None:
            pass  # serviceAccounts alone already picks pods only
        elif peer.wants_pod and (pods_only or peer.namespace_selector is None):
            # A bare namespaceSelector already picks endpoints and sets; otherwise say so.
            base["selector"] = self.endpoint_selector(All(), pods_only)
        if peer.not_pods is not None:
            # Without network sets in play only pods are excluded: say so explicitly.
            base["notSelector"] = self.endpoint_selector(peer.not_pods, pods_only)
        ns_parts: list[Selector] = []
        if peer.namespace_selector is not None:
            ns_parts.append(peer.namespace_selector)
        names = peer.namespace_names
        if names is not None and names != frozenset({namespaced}):
            ns_parts.append(In(NAMESPACE_NAME_LABEL, names))
        elif (
            names is None
            and namespaced is not None
            and not local
            and (peer.wants_pod or peer.not_pods)
        ):
            # A NetworkPolicy scopes selectors to its own namespace unless told otherwise.
            ns_parts.append(All())
        if ns_parts:
            base["namespaceSelector"] = str(and_(*ns_parts))
        if namespaced is not None and peer.not_pods is not None and not peer.wants_pod:
            for effect in effect_of(rule.action):
                self.loss(
                    effect,
                    Feature.NOT_SELECTOR,
                    rule.source,
                    "in a NetworkPolicy a notSelector never matches outside addresses; they are "
                    "lost",
                )
        if peer.service_account is not None:
            sa: dict[str, Any] = {}
            if peer.service_account.names is not None:
                sa["names"] = sorted(peer.service_account.names)
            if peer.service_account.selector is not None:
                sa["selector"] = str(
                    rename_key(peer.service_account.selector, NAME_KEY, CALICO_NAME)
                )
            base["serviceAccounts"] = sa
        if peer.ip is None:
            return [base]
        return [{**base, **nets} for nets in self.nets(peer.ip)]

    @staticmethod
    def nets(ip: IpMatch) -> list[dict[str, Any]]:
        """``nets``/``notNets`` per address family (Calico rejects mixed families in a rule)."""
        out: list[dict[str, Any]] = []
        for version, anywhere in ((4, "0.0.0.0/0"), (6, "::/0")):
            not_nets = [n for n in ip.not_nets if ipaddress.ip_network(n).version == version]
            if ip.nets is None:
                part: dict[str, Any] = {"nets": [anywhere]}
            else:
                nets = [n for n in ip.nets if ipaddress.ip_network(n).version == version]
                if not nets:
                    continue
                part = {"nets": nets}
            if not_nets:
                part["notNets"] = not_nets
            out.append(part)
        return out

    # -- ports ---------------------------------------------------------------------------------
    def protocol_parts(self, rule: Rule) -> list[dict[str, Any]] | None:
        """Protocol/port/ICMP fields of the Calico rules one IR rule's ports need."""
        if rule.ports is ANY_PORTS:
            return [{}]
        out: list[dict[str, Any]] = []
        for spec in rule.ports:  # type: ignore[union-attr]
            out.extend(self.spec_parts(spec))
        return out

    def spec_parts(self, spec: PortSpec) -> list[dict[str, Any]]:
        protos = spec.protocols
        if protos == ALL_PROTOCOLS and spec.ports == ALL_PORTS and not spec.named:
            return [{}]
        missing = ALL_PROTOCOLS - protos
        if (
            spec.ports == ALL_PORTS
            and not spec.named
            and not spec.not_named
            and missing.size() == 1
        ):
            return [{"notProtocol": _proto(missing.min())}]
        parts: list[dict[str, Any]] = []
        for lo, hi in protos:
            for proto in range(lo, hi + 1):
                parts.extend(self.one_protocol(proto, spec))
        return parts

    def one_protocol(self, proto: int, spec: PortSpec) -> list[dict[str, Any]]:
        head = {"protocol": _proto(proto)}
        if proto in PORT_PROTOCOLS:
            numeric = spec.ports & _PORT_UNIVERSE
            items: list[Any] = [lo if lo == hi else f"{lo}:{hi}" for lo, hi in numeric]
            items += sorted(spec.named)
            dest: dict[str, Any] = {}
            if numeric != _PORT_UNIVERSE or spec.named:
                if not items:
                    return []
                dest["ports"] = items
            if spec.not_named:
                dest["notPorts"] = sorted(spec.not_named)
            return [{**head, "destination": dest}] if dest else [head]
        if proto in ICMP_PROTOCOLS:
            if spec.ports == ALL_PORTS:
                return [head]
            items = _icmp_items(spec.ports)
            rest = _icmp_items(ALL_PORTS - spec.ports)
            if len(rest) == 1 and rest[0]["type"] <= 254:
                return [{**head, "notICMP": rest[0]}]
            if any(item["type"] > 254 for item in items):
                self.loss(
                    Effect.NARROWED, Feature.ICMP, None, "ICMP type 255 has no Calico form; dropped"
                )
            return [{**head, "icmp": item} for item in items if item["type"] <= 254]
        return [head] if spec.ports else []

    # -- rules ---------------------------------------------------------------------------------
    def rules(
        self, rule: Rule, direction: Direction, namespace: str | None
    ) -> list[dict[str, Any]]:
        ingress = direction is Direction.INGRESS
        remote_key, local_key = ("source", "destination") if ingress else ("destination", "source")
        if rule.peers is ANY_PEER:
            remotes: list[dict[str, Any]] = [{}]
        else:
            remotes = []
            for peer in rule.peers:  # type: ignore[union-attr]
                remotes.extend(self.entity_rules(peer, namespace, rule) or [])
            if not remotes:
                return []  # every peer dropped: the rule matches nothing
        locals_: list[dict[str, Any]] = [{}]
        if rule.local is not None:
            locals_ = self.entity_rules(rule.local, namespace, rule, local=True) or []
            if not locals_:
                return []
        protocol_parts = self.protocol_parts(rule)
        if protocol_parts is None:
            return []
        http: dict[str, Any] | None = None
        if rule.l7 is not None:
            if (
                not ingress
                or rule.action is not Action.ALLOW
                or rule.l7.dns
                or rule.l7.other
                or len(rule.l7.http) != 1
            ):
                self.loss(
                    Effect.WIDENED if rule.action is Action.ALLOW else Effect.NARROWED,
                    Feature.L7_HTTP,
                    rule.source,
                    "Calico matches HTTP only on ingress Allow rules with one methods/paths match; "
                    "the L7 constraint was dropped",
                )
            else:
                match = rule.l7.http[0]
                http = {}
                if match.methods:
                    http["methods"] = sorted(match.methods)
                if match.paths:
                    http["paths"] = [
                        {kind: value} for kind, value in match.paths if kind in ("exact", "prefix")
                    ]
                    if len(http["paths"]) != len(match.paths):
                        self.loss(
                            Effect.WIDENED,
                            Feature.L7_HTTP,
                            rule.source,
                            "regex paths have no Calico form; dropped",
                        )
                if match.hosts:
                    self.loss(
                        Effect.WIDENED,
                        Feature.L7_HTTP,
                        rule.source,
                        "HTTP hosts have no Calico form; dropped",
                    )
        out: list[dict[str, Any]] = []
        for remote in remotes:
            for local in locals_:
                for proto in protocol_parts:
                    calico: dict[str, Any] = {"action": _ACTIONS[rule.action]}
                    for key, value in proto.items():
                        if key != "destination":
                            calico[key] = value
                    sides = {remote_key: dict(remote), local_key: dict(local)}
                    sides["destination"].update(proto.get("destination", {}))
                    for key in ("source", "destination"):
                        if sides[key]:
                            calico[key] = sides[key]
                    if http:
                        calico["http"] = http
                    out.append(calico)
        if len(out) > MAX_RULES_PER_IR_RULE:
            self.loss(
                Effect.NARROWED,
                Feature.PROTOCOL,
                rule.source,
                f"the rule needs {len(out)} Calico rules; dropped",
            )
            return []
        return out

    # -- policies ------------------------------------------------------------------------------
    def policy(self, pol: Policy) -> dict[str, Any] | None:
        if pol.layer is not Layer.NETWORK:
            self.loss(
                Effect.WIDENED,
                Feature.LAYER,
                pol.source,
                f"{pol.layer.value} layer policy {pol.id} has no Calico form; dropped",
            )
            return None
        if pol.subject.security_group is not None:
            self.loss(
                Effect.WIDENED,
                Feature.SECURITY_GROUP,
                pol.source,
                f"policy {pol.id} selects a security group; dropped",
            )
            return None
        namespaced = pol.subject.namespace
        spec: dict[str, Any] = {}
        if pol.tier != DEFAULT_TIER:
            spec["tier"] = pol.tier
        if pol.order is not None:
            spec["order"] = pol.order if pol.order != int(pol.order) else int(pol.order)
        # A GlobalNetworkPolicy also selects host endpoints; pods-only keeps it off them.
        spec["selector"] = self.endpoint_selector(
            pol.subject.selector, namespaced is None and not pol.subject.include_hosts
        )
        if namespaced is None and pol.subject.namespace_selector is not None:
            spec["namespaceSelector"] = str(pol.subject.namespace_selector)
        if pol.subject.service_accounts is not None:
            spec["serviceAccountSelector"] = str(
                rename_key(pol.subject.service_accounts, NAME_KEY, CALICO_NAME)
            )
        types: list[str] = []
        for direction, key, kind in (
            (Direction.INGRESS, "ingress", "Ingress"),
            (Direction.EGRESS, "egress", "Egress"),
        ):
            rules = pol.direction(direction)
            if not isinstance(rules, Governed):
                continue
            types.append(kind)
            out = [r for rule in rules.rules for r in self.rules(rule, direction, namespaced)]
            if not rules.isolates:
                out.append({"action": "Pass"})
                self.loss(
                    Effect.NONE if self.alone_in_tier(pol, direction) else Effect.WIDENED,
                    Feature.ALLOW_WITHOUT_ISOLATION,
                    pol.source,
                    f"{direction.value} of {pol.id} does not isolate: a final Pass rule stands in, "
                    "which also skips later policies of the tier",
                )
            if out:
                spec[key] = out
        if not types:
            return None  # governs nothing: writing it would change nothing
        spec["types"] = types
        name = safe_name(pol.id.name)
        if pol.tier != DEFAULT_TIER and not name.startswith(f"{pol.tier}."):
            name = f"{pol.tier}.{name}"
        meta: dict[str, Any] = {"name": name}
        if namespaced is not None:
            meta["namespace"] = namespaced
        if pol.labels:
            meta["labels"] = dict(pol.labels)
        kind = "NetworkPolicy" if namespaced is not None else "GlobalNetworkPolicy"
        return {"apiVersion": API_VERSION, "kind": kind, "metadata": meta, "spec": spec}

    def alone_in_tier(self, pol: Policy, direction: Direction) -> bool:
        later = [
            p
            for p in self.ps
            if p is not pol and p.tier == pol.tier and isinstance(p.direction(direction), Governed)
        ]
        return not later


def _proto(number: int) -> str | int:
    name = protocol_name(number)
    return number if name.isdigit() else name


def _icmp_items(encoded: IntervalSet) -> list[dict[str, int]]:
    items: list[dict[str, int]] = []
    for lo, hi in encoded:
        value = lo
        while value <= hi:
            icmp_type, code = divmod(value, 256)
            if code == 0 and value + 255 <= hi:
                items.append({"type": icmp_type})
                value += 256
            else:
                items.append({"type": icmp_type, "code": code})
                value += 1
    return items


def _tier_doc(tier: Tier) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "defaultAction": "Pass" if tier.default_action is Action.PASS else "Deny"
    }
    if tier.order is not None:
        spec["order"] = tier.order if tier.order != int(tier.order) else int(tier.order)
    return {
        "apiVersion": API_VERSION,
        "kind": "Tier",
        "metadata": {"name": tier.name},
        "spec": spec,
    }


def _set_doc(net_set: NetworkSet) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": net_set.name}
    if net_set.namespace is not None:
        meta["namespace"] = net_set.namespace
    if net_set.labels:
        meta["labels"] = dict(net_set.labels)
    kind = "NetworkSet" if net_set.namespace is not None else "GlobalNetworkSet"
    return {
        "apiVersion": API_VERSION,
        "kind": kind,
        "metadata": meta,
        "spec": {"nets": list(net_set.nets)},
    }


def write(
    ps: PolicySet, options: RenderOptions
) -> tuple[list[dict[str, Any]], list[Loss], tuple[tuple[SourceRef, ...], ...]]:
    """Tiers in use (except the built-in default), network sets, then policies; with every
    loss and each document's sources (a tier's are its policies')."""
    writer = _Writer(ps, options)
    used = {p.tier for p in ps}
    # Only tiers the input defined: an undefined tier is the cluster's, not ours to create.
    docs = [_tier_doc(t) for t in ps.tiers if t.name in used and t.name != DEFAULT_TIER]
    made_by: list[tuple[Any, tuple[Policy, ...]]] = [
        (doc, tuple(p for p in ps if p.tier == doc["metadata"]["name"])) for doc in docs
    ]
    docs += [_set_doc(s) for s in ps.network_sets]
    for pol in ps:
        doc = writer.policy(pol)
        if doc is not None:
            docs.append(doc)
            made_by.append((doc, (pol,)))
    return docs, writer.losses, origins_of(docs, made_by)
