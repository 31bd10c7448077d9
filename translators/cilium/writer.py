"""Rendering the canonical model as cilium.io/v2 policies (see ``cilium`` for the table).

Cilium has no order, so an ordered set is first flattened (``_deny_wins``: every deny less
what decides before it), after which "deny beats allow" says the same thing; protocols
are always written explicitly (Cilium's default is any protocol, Kubernetes' is TCP); a
namespace-label peer in a CiliumNetworkPolicy gets the pod-namespace key so that it reaches
other namespaces (semantics trap 15).
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from polyfence.fidelity import Effect, Feature, Loss, Treatment
from polyfence.inventory import NAMESPACE_NAME_LABEL, Inventory
from polyfence.model.labels import NAMESPACE_KEY, SERVICE_ACCOUNT_KEY
from polyfence.model.peers import ANY_PEER, Entity, IpMatch, Peer
from polyfence.model.policy import Action, Direction, Governed, Layer, Policy, PolicySet, Rule
from polyfence.model.ports import ANY_PORTS, ICMP_PROTOCOLS, AnyPorts, PortMatch, Protocol
from polyfence.model.provenance import SourceRef
from polyfence.model.selectors import (
    All,
    Has,
    In,
    Not,
    Selector,
    SelectorNotExpressible,
    and_,
    to_label_selectors,
)
from polyfence.rules.deny_wins import deny_wins
from polyfence.rules.effects import effect_of
from polyfence.rules.terms import (
    bind_pod,
    cidr_blocks,
    local_pods,
    pod_terms,
    safe_name,
)
from polyfence.semantics.intervals import IntervalSet
from polyfence.semantics.matching import Matcher
from polyfence.semantics.profile import DEFAULT_PROFILE
from polyfence.translation import RenderOptions, origins_of
from polyfence.translators.cilium.reader import (
    API_VERSION,
    CLUSTER_LABEL,
    NS_LABELS,
    POD_NAMESPACE,
    SERVICE_ACCOUNT,
    reserved_identity_key,
)

POD_NS_KEY = f"k8s:{POD_NAMESPACE}"
# Together with every pod, these identities are Cilium's "all" (semantics §3b, entities).
NON_POD_ENTITIES = (
    Entity.WORLD,
    Entity.HOST,
    Entity.REMOTE_NODE,
    Entity.KUBE_APISERVER,
    Entity.INGRESS,
    Entity.HEALTH,
    Entity.INIT,
    Entity.UNMANAGED,
)
_PORT_UNIVERSE = IntervalSet.span(1, 65535)
_NAMES = {Protocol.TCP: "TCP", Protocol.UDP: "UDP", Protocol.SCTP: "SCTP"}


def _ns_key(key: str) -> str:
    return POD_NS_KEY if key == NAMESPACE_NAME_LABEL else NS_LABELS + key


_ICMP_FIELDS_PER_RULE = 40  # the CRD's maxItems for icmps[].fields


class _Writer:
    def __init__(self, ps: PolicySet, options: RenderOptions) -> None:
        self.flat = deny_wins(ps, _expressible)
        self.ps = self.flat.policies
        self.losses: list[Loss] = list(self.flat.losses)
        inventory = options.inventory or Inventory()
        self.matcher = Matcher(inventory, DEFAULT_PROFILE, ps.network_sets)
        self.port_numbers: dict[tuple[str, int], set[int]] = {}
        for pod in inventory.pods:
            for named in pod.named_ports:
                self.port_numbers.setdefault((named.name, named.protocol), set()).add(named.port)

    def loss(self, effect: Effect, feature: Feature, ref: SourceRef | None, msg: str) -> None:
        self.losses.append(Loss(effect, Treatment.DROPPED, feature, ref, msg))

    def dropped(self, rule: Rule, feature: Feature, msg: str) -> None:
        for effect in effect_of(rule.action):
            self.loss(effect, feature, rule.source, msg)

    # -- selectors -----------------------------------------------------------------------------
    def endpoint_selectors(
        self, pods: Selector, namespace: Selector | None, cross_ns: bool
    ) -> list[dict[str, Any]]:
        """Cilium endpoint selectors (OR-ed) for pods matching ``pods`` in ``namespace``."""
        out: list[dict[str, Any]] = []
        for term in pod_terms(pods):
            labels = term.labels
            if term.service_account:
                sa = and_(*term.service_account)
                labels = and_(labels, sa)  # its key becomes Cilium's in _merge
            ns_parts = [x for x in (namespace, term.namespace) if x is not None]
            ns_sel = and_(*ns_parts) if ns_parts else None
            for pod in to_label_selectors(labels):
                for ns in to_label_selectors(ns_sel) if ns_sel is not None else (None,):
                    out.append(_merge(pod, ns, cross_ns))
        return out

    # -- peers ---------------------------------------------------------------------------------
    def peer_fields(
        self, peer: Peer, rule: Rule, prefix: str, namespaced: str | None
    ) -> dict[str, list[Any]] | None:
        excluded = peer.not_pods
        if excluded is not None:
            if peer.wants_pod and peer.ip is None and peer.entity is None and peer.fqdn is None:
                # pods of the peer that are not those pods: one selector
                pods = and_(peer.pods or All(), Not(excluded))
                peer = dataclasses.replace(peer, pods=pods, not_pods=None)
            elif peer == Peer(not_pods=excluded, sets=peer.sets):
                return self.complement(excluded, peer.sets, rule, prefix, namespaced)
        for value, feature in (
            (peer.not_pods, Feature.NOT_SELECTOR),
            (peer.security_group, Feature.SECURITY_GROUP),
            (peer.principal, Feature.PRINCIPAL),
        ):
            if value is not None:
                self.dropped(rule, feature, f"Cilium has no {feature.value} peer; dropped")
                return None
        if peer.service_account is not None and peer.service_account.selector is not None:
            self.dropped(
                rule,
                Feature.SERVICE_ACCOUNT,
                "service accounts by label have no Cilium form; dropped",
            )
            return None
        out: dict[str, list[Any]] = {}
        if peer.wants_pod:
            if peer.ip is not None:
                self.dropped(
                    rule,
                    Feature.IPBLOCK,
                    "a peer that is both pods and a CIDR has no Cilium form; dropped",
                )
                return None
            pods = peer.pods or All()
            if peer.service_account is not None and peer.service_account.names is not None:
                pods = and_(pods, In(SERVICE_ACCOUNT_KEY, peer.service_account.names))
            ns_parts: list[Selector] = []
            if peer.namespace_selector is not None:
                ns_parts.append(peer.namespace_selector)
            names = peer.namespace_names
            # Implicit same-namespace scoping holds only while the selector itself names no
            # namespace (a pod-namespace key in a CNP selector lifts the scoping).
            mentioned = pods.keys()
            same_ns = (
                namespaced is not None
                and names == frozenset({namespaced})
                and NAMESPACE_KEY not in mentioned
            )
            if names is not None and not same_ns:
                ns_parts.append(In(NAMESPACE_NAME_LABEL, names))
            cross_ns = namespaced is not None and not same_ns
            if cross_ns and not ns_parts:
                ns_parts.append(Has(NAMESPACE_NAME_LABEL))  # every namespace
            namespace = and_(*ns_parts) if ns_parts else None
            used = pods.keys()
            if CLUSTER_LABEL in used:
                self.loss(
                    Effect.INVENTORY_DEPENDENT,
                    Feature.SELECTOR_EXPRESSION,
                    rule.source,
                    f"{CLUSTER_LABEL} is Cilium's cluster-name label, carried by every local pod",
                )
            try:
                out[f"{prefix}Endpoints"] = self.endpoint_selectors(pods, namespace, cross_ns)
            except (SelectorNotExpressible, ValueError) as exc:
                self.dropped(rule, Feature.SELECTOR_EXPRESSION, f"{exc}; the peer was dropped")
                return None
            if peer.sets:
                cidrs = [
                    c
                    for s in self.ps.network_sets
                    if self.matcher.set_selected(peer, s)
                    for c in s.nets
                ]
                if cidrs:
                    out[f"{prefix}CIDRSet"] = [{"cidr": c} for c in cidrs]
            if not out[f"{prefix}Endpoints"]:
                del out[f"{prefix}Endpoints"]  # a contradictory selector: no endpoint at all
            if not out:
                return None  # matches nothing; an empty list would read as "any peer"
        elif peer.ip is not None:
            out[f"{prefix}CIDRSet"] = _cidr_sets(peer.ip)
        if peer.entity is not None:
            out.setdefault(f"{prefix}Entities", []).append(peer.entity.value)
        if peer.fqdn is not None:
            if prefix != "to":
                self.dropped(rule, Feature.FQDN, "FQDN sources have no Cilium form; dropped")
                return None
            out["toFQDNs"] = [{"matchName": n} for n in sorted(peer.fqdn.names)] + [
                {"matchPattern": p} for p in sorted(peer.fqdn.patterns)
            ]
        if not out:
            out[f"{prefix}Entities"] = ["all"]
        return out

    def complement(
        self, pods: Selector, sets: bool, rule: Rule, prefix: str, namespaced: str | None
    ) -> dict[str, list[Any]] | None:
        """Every peer but the pods ``pods`` selects: the other pods of every namespace and
        every identity that is not a pod (Calico ``notSelector``, or a flattened deny)."""
        if sets and any(
            self.matcher.set_selected(Peer(pods=pods, sets=True), s) for s in self.ps.network_sets
        ):
            self.dropped(
                rule,
                Feature.NOT_SELECTOR,
                "a complement that excludes network sets has no Cilium form; dropped",
            )
            return None
        others = Peer(pods=Not(pods), namespace_selector=All())
        out = self.peer_fields(others, rule, prefix, namespaced) or {}
        entities = [e.value for e in NON_POD_ENTITIES]
        out[f"{prefix}Entities"] = [*out.get(f"{prefix}Entities", []), *entities]
        return out

    # -- ports ---------------------------------------------------------------------------------
    def l4(self, rule: Rule) -> tuple[list[dict[str, Any]], list[dict[str, Any]]] | None:
        """(toPorts, icmps) of a rule; ([], []) for any port."""
        if rule.ports is ANY_PORTS:
            return [], []
        ports: list[dict[str, Any]] = []
        icmps: list[dict[str, Any]] = []
        other: list[int] = []
        for spec in rule.ports:  # type: ignore[union-attr]
            if spec.not_named:
                self.dropped(rule, Feature.NOT_PORTS, "named notPorts have no Cilium form; dropped")
                continue
            for lo, hi in spec.protocols:
                for proto in range(lo, hi + 1):
                    if proto in _NAMES:
                        ports.extend(_port_entries(_NAMES[Protocol(proto)], spec.ports, spec.named))
                        self.ambiguous_names(rule, spec.named, proto)
                    elif proto in ICMP_PROTOCOLS:
                        icmps.extend(self.icmp_fields(proto, spec.ports, rule))
                    elif spec.ports:
                        other.append(proto)
        if other:
            listed = str(IntervalSet.of(*((p, p) for p in other)))
            self.dropped(rule, Feature.PROTOCOL, f"protocols {listed} have no Cilium form; dropped")
        if not ports and not icmps:
            return None
        return ports, icmps

    def ambiguous_names(self, rule: Rule, names: frozenset[str], proto: int) -> None:
        """Trap 28: Cilium may skip a rule whose named port means different numbers on
        different pods (the inventory tells); Kubernetes resolves it per destination."""
        for name in sorted(names):
            numbers = self.port_numbers.get((name, proto), set())
            if len(numbers) > 1:
                self.loss(
                    Effect.NARROWED,
                    Feature.NAMED_PORT,
                    rule.source,
                    f"named port {name!r} is {sorted(numbers)} on different pods; Cilium may "
                    "skip a rule whose named port is ambiguous",
                )

    def icmp_fields(self, proto: int, encoded: IntervalSet, rule: Rule) -> list[dict[str, Any]]:
        """ICMP types as few ICMPRules as the CRD allows (40 fields each): Cilium has no form
        for "every type", so a whole family is 256 types in 7 rules, not 256 rules."""
        family = "IPv6" if proto == Protocol.ICMPV6 else "IPv4"
        fields = []
        for icmp_type in range(256):
            block = IntervalSet.span(icmp_type * 256, icmp_type * 256 + 255)
            part = encoded & block
            if not part:
                continue
            if part != block:
                self.dropped(
                    rule,
                    Feature.ICMP,
                    "Cilium matches ICMP types, not codes; that type was dropped",
                )
                continue
            fields.append({"type": icmp_type, "family": family})
        step = _ICMP_FIELDS_PER_RULE
        return [{"fields": fields[i : i + step]} for i in range(0, len(fields), step)]

    def l7(self, rule: Rule) -> dict[str, Any] | None:
        if rule.l7 is None:
            return None
        rules: dict[str, Any] = {}
        if rule.l7.http:
            http = []
            for match in rule.l7.http:
                paths: list[str | None] = [_regex(k, v) for k, v in match.paths] or [None]
                methods: list[str | None] = [*sorted(match.methods)] or [None]
                hosts: list[str | None] = [*sorted(match.hosts)] or [None]
                for path in paths:
                    for method in methods:
                        for host in hosts:
                            entry = {
                                k: v
                                for k, v in (("method", method), ("path", path), ("host", host))
                                if v
                            }
                            http.append(entry)
            rules["http"] = http
        if rule.l7.dns:
            rules["dns"] = [{"matchPattern": d} for d in rule.l7.dns]
        if rule.l7.other:
            self.dropped(
                rule,
                Feature.L7_OTHER,
                f"L7 {', '.join(rule.l7.other)} rules are not written; dropped",
            )
        return rules or None

    # -- rules ---------------------------------------------------------------------------------
    def rules(
        self, rule: Rule, direction: Direction, namespaced: str | None
    ) -> list[dict[str, Any]]:
        prefix = "from" if direction is Direction.INGRESS else "to"
        l4 = self.l4(rule)
        if l4 is None:
            return []
        to_ports, icmps = l4
        l7 = self.l7(rule)
        if l7 is not None:
            if rule.action is not Action.ALLOW:
                self.dropped(
                    rule,
                    Feature.L7_HTTP,
                    "Cilium deny rules cannot carry L7 rules; the L7 part was dropped",
                )
            elif not to_ports:
                to_ports = [{"ports": [{"port": "0", "protocol": "ANY"}]}]
                if rule.ports is ANY_PORTS or icmps:
                    self.dropped(
                        rule,
                        Feature.PROTOCOL,
                        "L7 rules need toPorts: protocols other than TCP, UDP and SCTP are no "
                        "longer allowed by this rule",
                    )
            if rule.action is Action.ALLOW:
                to_ports = [{**entry, "rules": l7} for entry in to_ports]
        peers: list[dict[str, list[Any]]] = []
        if rule.peers is ANY_PEER:
            peers = [{}] if (to_ports or icmps) else [{f"{prefix}Entities": ["all"]}]
        else:
            for peer in rule.peers:  # type: ignore[union-attr]
                fields = self.peer_fields(peer, rule, prefix, namespaced)
                if fields is not None:
                    peers.append(fields)
            if not peers:
                return []
        out = []
        for fields in peers:
            # L3 alternatives share a rule's L4: one Cilium rule per L4 kind keeps them apart.
            if to_ports:
                out.append({**fields, "toPorts": to_ports})
            if icmps:
                out.append({**fields, "icmps": icmps})
            if not to_ports and not icmps:
                out.append(dict(fields))
        return out

    # -- policies ------------------------------------------------------------------------------
    def unresolved_allow(self, rule: Rule) -> None:
        if rule.action is Action.ALLOW and id(rule) in self.flat.unresolved:
            self.loss(
                Effect.WIDENED,
                Feature.ORDER,
                rule.source,
                "a Pass or an earlier tier decides part of this allow's traffic first, and that "
                "part cannot be cut out exactly here: in Cilium the allow also applies to it",
            )

    def local_rule(self, pol: Policy, direction: Direction, rule: Rule, isolates: bool) -> None:
        """A rule for part of the subject becomes a rule of its own on that part: exact, since
        Cilium unions allows and denies and the part is isolated exactly like the whole."""
        namespace = pol.subject.namespace
        local_ns: Selector | None = None
        if namespace is not None and rule.local is not None:
            # Namespace labels on the local side test the policy's own namespace: Cilium
            # matches them on the endpoint (io.cilium.k8s.namespace.labels.*) in a CNP too.
            local_ns = rule.local.namespace_selector
            if local_ns == All():
                local_ns = None
            plain = dataclasses.replace(
                rule.local, pods=rule.local.pods or All(), namespace_selector=None
            )
            local = local_pods(plain, namespace)
        elif rule.local is not None and dataclasses.replace(rule.local, sets=False) == Peer(
            pods=rule.local.pods, namespace_selector=rule.local.namespace_selector
        ):  # the local side is a pod: whether the selector also matches network sets is moot
            # A CCNP subject: pod labels and namespace names, and namespace labels, which
            # Cilium carries on every endpoint as io.cilium.k8s.namespace.labels.*.
            local = rule.local.pods or All()
            local_ns = rule.local.namespace_selector
        else:
            local = None
        if local is None:
            self.dropped(
                rule,
                Feature.SELECTOR_EXPRESSION,
                "a rule bound to part of the subject by more than pod labels has no Cilium form; "
                "dropped",
            )
            return
        self.unresolved_allow(rule)
        if rule.action is Action.DENY and id(rule) in self.flat.unresolved:
            self.loss(
                Effect.NARROWED,
                Feature.ORDER,
                rule.source,
                "an allow decides before this deny, but in Cilium deny always wins",
            )
        written = self.rules(dataclasses.replace(rule, local=None), direction, namespace)
        if not written:
            return
        key = direction.value + ("Deny" if rule.action is Action.DENY else "")
        extra: dict[str, Any] = {key: written, "enableDefaultDeny": {direction.value: isolates}}
        subject = (
            bind_pod(pol.subject.selector, namespace)
            if namespace is not None
            else pol.subject.selector
        )
        ns_parts = [s for s in (pol.subject.namespace_selector, local_ns) if s is not None]
        ns_selector = and_(*ns_parts) if ns_parts else None
        self._extra.append((and_(subject, local), ns_selector, extra))

    def spec(self, pol: Policy) -> dict[str, Any] | None:
        spec: dict[str, Any] = {}
        default_deny: dict[str, bool] = {}
        for direction in Direction:
            rules = pol.direction(direction)
            if not isinstance(rules, Governed):
                continue
            allow: list[dict[str, Any]] = []
            deny: list[dict[str, Any]] = []
            for rule in rules.rules:
                if rule.action is Action.LOG:
                    self.loss(Effect.NONE, Feature.LOG_ACTION, rule.source, "log rule dropped")
                elif rule.action is Action.PASS:
                    self.loss(
                        Effect.NARROWED,
                        Feature.PASS_ACTION,
                        rule.source,
                        "Cilium has no pass; dropped",
                    )
                elif rule.local is not None:
                    self.local_rule(pol, direction, rule, rules.isolates)
                elif rule.action is Action.DENY:
                    if id(rule) in self.flat.unresolved:
                        self.loss(
                            Effect.NARROWED,
                            Feature.ORDER,
                            rule.source,
                            "an allow decides before this deny, but in Cilium deny always wins",
                        )
                    deny.extend(self.rules(rule, direction, pol.subject.namespace))
                else:
                    self.unresolved_allow(rule)
                    allow.extend(self.rules(rule, direction, pol.subject.namespace))
            key = direction.value
            if rules.isolates:
                spec[key] = allow or [{}]  # [{}]: default deny, nothing allowed
            else:
                default_deny[key] = False
                if allow:
                    spec[key] = allow
            if deny:
                spec[f"{key}Deny"] = deny
        if not spec and not default_deny:
            return None
        if default_deny:
            spec["enableDefaultDeny"] = default_deny
        return spec

    def documents(self, pol: Policy) -> list[dict[str, Any]]:
        if (
            pol.layer is not Layer.NETWORK
            or pol.subject.security_group is not None
            or pol.subject.service_accounts is not None
        ):
            self.loss(
                Effect.WIDENED,
                Feature.LAYER,
                pol.source,
                f"policy {pol.id} has no Cilium subject form; dropped",
            )
            return []
        self._extra: list[tuple[Selector, Selector | None, dict[str, Any]]] = []
        spec = self.spec(pol)
        if spec is None and not self._extra:
            return []
        namespaced = pol.subject.namespace
        try:
            # A CNP's subject is forced into its namespace: decide namespace tests now.
            subject_sel = (
                bind_pod(pol.subject.selector, namespaced)
                if namespaced is not None
                else pol.subject.selector
            )
            subjects = self.endpoint_selectors(
                subject_sel,
                None if namespaced is not None else pol.subject.namespace_selector,
                False,
            )
        except (SelectorNotExpressible, ValueError) as exc:
            self.loss(
                Effect.WIDENED,
                Feature.SELECTOR_EXPRESSION,
                pol.source,
                f"policy {pol.id}: {exc}; dropped",
            )
            return []
        specs = [{"endpointSelector": sel, **spec} for sel in subjects] if spec else []
        for selector, ns_selector, extra in self._extra:
            try:
                parts = self.endpoint_selectors(selector, ns_selector, False)
            except (SelectorNotExpressible, ValueError) as exc:
                self.loss(
                    Effect.NARROWED, Feature.SELECTOR_EXPRESSION, pol.source, f"{exc}; dropped"
                )
                continue
            specs.extend({"endpointSelector": sel, **extra} for sel in parts)
        if not specs:
            return []
        name = safe_name(pol.id.name.removesuffix("#deny"))
        meta: dict[str, Any] = {"name": name}
        if namespaced is not None:
            meta["namespace"] = namespaced
        kind = "CiliumNetworkPolicy" if namespaced is not None else "CiliumClusterwideNetworkPolicy"
        body: dict[str, Any] = {"spec": specs[0]} if len(specs) == 1 else {"specs": specs}
        return [{"apiVersion": API_VERSION, "kind": kind, "metadata": meta, **body}]


def _merge(pod: dict[str, Any], ns: dict[str, Any] | None, cross_ns: bool) -> dict[str, Any]:
    """One Cilium endpoint selector from a pod part and a namespace part (namespace labels
    get Cilium's keys; a CNP peer in another namespace needs the pod-namespace key)."""
    labels = {_identity(k): v for k, v in (pod.get("matchLabels") or {}).items()}
    exprs = [{**e, "key": _identity(e["key"])} for e in pod.get("matchExpressions") or []]
    if ns is not None:
        labels.update({_ns_key(k): v for k, v in (ns.get("matchLabels") or {}).items()})
        exprs += [{**e, "key": _ns_key(e["key"])} for e in ns.get("matchExpressions") or []]
    if cross_ns and not any(k == POD_NS_KEY for k in [*labels, *(e["key"] for e in exprs)]):
        exprs.append({"key": POD_NS_KEY, "operator": "Exists"})
    out: dict[str, Any] = {}
    if labels:
        out["matchLabels"] = labels
    if exprs:
        out["matchExpressions"] = exprs
    return out


def _identity(key: str) -> str:
    if key == SERVICE_ACCOUNT_KEY:
        return SERVICE_ACCOUNT
    if key == CLUSTER_LABEL:
        return key  # Cilium's cluster-name label, read as a plain label (reported on read)
    if reserved_identity_key(key):
        # A pod label spelled like one of Cilium's identity labels (io.kubernetes.pod.namespace,
        # io.cilium.k8s.*, a k8s:/reserved: source prefix) would mean that identity in Cilium.
        raise SelectorNotExpressible(
            f"pod label {key!r} collides with a Cilium identity label (Cilium reads it as that)"
        )
    return key


def _expressible(ports: PortMatch) -> bool:
    """Port sets Cilium can write: any, or TCP/UDP/SCTP ports and whole ICMP types."""
    if isinstance(ports, AnyPorts):
        return True
    for spec in ports:
        for lo, hi in spec.protocols:
            for proto in range(lo, hi + 1):
                if proto in ICMP_PROTOCOLS:
                    if any(a % 256 or (b + 1) % 256 for a, b in spec.ports):
                        return False
                elif proto not in _NAMES:
                    return False
    return True


def _cidr_sets(ip: IpMatch) -> list[dict[str, Any]]:
    return [{"cidr": net, **({"except": ex} if ex else {})} for net, ex in cidr_blocks(ip)]


def _port_entries(proto: str, ports: IntervalSet, named: frozenset[str]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    numeric = ports & _PORT_UNIVERSE
    if numeric == _PORT_UNIVERSE:
        items.append({"port": "0", "protocol": proto})
    else:
        for lo, hi in numeric:
            item: dict[str, Any] = {"port": str(lo), "protocol": proto}
            if hi != lo:
                item["endPort"] = hi
            items.append(item)
    items += [{"port": name, "protocol": proto} for name in sorted(named)]
    return [{"ports": items}] if items else []


def _regex(kind: str, value: str) -> str:
    if kind == "regex":
        return value
    escaped = re.escape(value)
    return escaped + "$" if kind == "exact" else escaped + ".*"


def write(
    ps: PolicySet, options: RenderOptions
) -> tuple[list[dict[str, Any]], list[Loss], tuple[tuple[SourceRef, ...], ...]]:
    """Cilium policies, with every loss and each document's sources (a merged document has
    the sources of every policy merged into it)."""
    writer = _Writer(ps, options)
    docs: list[dict[str, Any]] = []
    made_by: list[tuple[Any, tuple[Policy, ...]]] = []
    merged: dict[tuple[str | None, str], dict[str, Any]] = {}
    for pol in writer.ps:
        for doc in writer.documents(pol):
            key = (doc["metadata"].get("namespace"), doc["metadata"]["name"])
            if key in merged and "spec" in merged[key] and "spec" in doc:
                # the allow and deny parts of one Cilium rule read back as two IR policies
                existing = merged[key]
                same_subject = (
                    existing["spec"]["endpointSelector"] == doc["spec"]["endpointSelector"]
                )
                same_default = existing["spec"].get("enableDefaultDeny") == doc["spec"].get(
                    "enableDefaultDeny"
                )
                if same_subject and same_default:
                    made_by.append((existing, (pol,)))
                    for field, value in doc["spec"].items():
                        if field != "endpointSelector" and field not in existing["spec"]:
                            existing["spec"][field] = value
                            continue
                        if field in ("ingress", "egress") and value != [{}]:
                            existing["spec"][field] = [
                                r for r in existing["spec"][field] if r
                            ] + value
                    continue
                doc["metadata"]["name"] = f"{key[1]}-{len(merged)}"
            merged[(doc["metadata"].get("namespace"), doc["metadata"]["name"])] = doc
            docs.append(doc)
            made_by.append((doc, (pol,)))
    return docs, writer.losses, origins_of(docs, made_by)
