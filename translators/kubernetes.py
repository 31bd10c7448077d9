"""Kubernetes NetworkPolicy (networking.k8s.io/v1) ⇄ canonical model.

Capability table (feature → how it maps):

| feature | read (k8s → IR) | write (IR → k8s) |
|---|---|---|
| podSelector / namespaceSelector / both in one peer | exact | exact; `||` split into several peers or policies (DNF) |
| matchExpressions In/NotIn/Exists/DoesNotExist | exact | exact (`!=`, `not in`, `!has` via NotIn/DoesNotExist) |
| policyTypes defaulting, empty vs absent from/to/ports | exact (made explicit) | explicit policyTypes always written |
| ipBlock with except | exact | exact (one ipBlock per CIDR, excepts inside it) |
| protocol default TCP, SCTP, numeric and named ports, endPort | exact | exact |
| namespaces by name | n/a | `kubernetes.io/metadata.name` |
| deny / pass / log actions, order, tiers | n/a | lossy: dropped, reported (widened / narrowed / none) |
| allow without isolating | n/a | lossy: narrowed (a k8s policy always isolates) |
| ICMP, other protocols, notPorts | n/a | lossy: dropped from allow rules, narrowed |
| L7 HTTP/DNS | n/a | lossy: widened to L4 |
| entities, FQDN, service accounts, principals, security groups, notSelector | n/a | lossy: peer dropped, narrowed |
| selector string operators (contains / starts with / ends with) | n/a | lossy: policy or peer dropped, reported |
| cluster-scoped subjects | n/a | expanded per namespace with an inventory (inventory-dependent), else dropped |
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator, Sequence
from importlib import resources
from typing import Any, ClassVar

import jsonschema

from polyfence.errors import Diagnostic, InputError
from polyfence.fidelity import Effect, Feature, FidelityReport, Loss, Treatment
from polyfence.inventory import NAMESPACE_NAME_LABEL, Inventory
from polyfence.model.document import Document
from polyfence.model.labels import PSEUDO_KEYS
from polyfence.model.peers import ANY_PEER, Entity, IpMatch, Peer
from polyfence.model.policy import (
    DEFAULT_TIER,
    KUBERNETES_POLICY_ORDER,
    NOT_GOVERNED,
    Action,
    Direction,
    Governed,
    Layer,
    Policy,
    PolicyId,
    PolicySet,
    Rule,
    Subject,
)
from polyfence.model.ports import ANY_PORTS, PortSpec, Protocol
from polyfence.model.provenance import SourceRef
from polyfence.model.selectors import (
    NOTHING,
    All,
    Eq,
    In,
    LabelSelectorError,
    Selector,
    SelectorNotExpressible,
    and_,
    from_label_selector,
    to_label_selectors,
)
from polyfence.semantics.intervals import IntervalSet, IPSet
from polyfence.semantics.matching import Matcher
from polyfence.semantics.profile import DEFAULT_PROFILE
from polyfence.translation import RenderOptions, Translation
from polyfence.translators._common import bind_pod, cidr_blocks, pod_terms, safe_name
from polyfence.translators._flatten import overlapping_tiers, removable_denies

API_VERSION = "networking.k8s.io/v1"
KIND = "NetworkPolicy"
FORMAT = "kubernetes"
K8S_PROTOCOLS = {"TCP": Protocol.TCP, "UDP": Protocol.UDP, "SCTP": Protocol.SCTP}
_K8S_PROTO_NUMBERS = {int(v): k for k, v in K8S_PROTOCOLS.items()}
_PORT_UNIVERSE = IntervalSet.span(1, 65535)
_DEFAULT_OPTIONS = RenderOptions()
_LABEL_NAME = r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
_LABEL_VALUE = re.compile(f"({_LABEL_NAME})?")
_LABEL_NAME_RE = re.compile(_LABEL_NAME)
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_IANA_SVC_NAME = re.compile(r"(?=.{1,15}$)(?=.*[a-z])[a-z0-9]([-a-z0-9]*[a-z0-9])?")


def _valid_label_key(key: str) -> bool:
    prefix, _, name = key.rpartition("/")
    if prefix and (len(prefix) > 253 or not _DNS_SUBDOMAIN.fullmatch(prefix)):
        return False
    return bool(_LABEL_NAME_RE.fullmatch(name))


@functools.cache
def _validator() -> jsonschema.protocols.Validator:
    text = (
        resources.files("polyfence.schemas") / "input" / "kubernetes-networkpolicy.json"
    ).read_text()
    schema = json.loads(text)
    root = {
        "$schema": schema["$schema"],
        "$defs": schema["$defs"],
        "$ref": "#/$defs/io.k8s.api.networking.v1.NetworkPolicy",
    }
    return jsonschema.Draft202012Validator(root)


# reading ----------------------------------------------------------------------------------


class _Reader:
    """Reads one NetworkPolicy document, collecting every problem with its JSON pointer."""

    def __init__(self, doc: Document) -> None:
        self.doc = doc
        self.problems: list[Diagnostic] = []

    def error(self, ref: SourceRef, message: str) -> None:
        self.problems.append(Diagnostic(ref, message))

    def selector(self, value: Any, ref: SourceRef) -> Selector | None:
        before = len(self.problems)
        if isinstance(value, dict):
            for key, val in (value.get("matchLabels") or {}).items():
                self.label(key, val, ref.child("matchLabels", key))
            for i, expr in enumerate(value.get("matchExpressions") or []):
                if isinstance(expr, dict):
                    self.label(expr.get("key"), None, ref.child("matchExpressions", i, "key"))
                    for j, val in enumerate(expr.get("values") or []):
                        self.label(None, val, ref.child("matchExpressions", i, "values", j))
        if len(self.problems) > before:
            return None
        try:
            return from_label_selector(value)
        except LabelSelectorError as exc:
            self.error(
                SourceRef(ref.file, ref.document, ref.pointer + exc.pointer, ref.format), str(exc)
            )
            return None

    def label(self, key: Any, value: Any, ref: SourceRef) -> None:
        """Kubernetes label syntax: the API server rejects what fails it, so do we."""
        if key is not None and isinstance(key, str) and not _valid_label_key(key):
            self.error(ref, f"invalid label key {key!r}")
        if value is not None and isinstance(value, str) and not _LABEL_VALUE.fullmatch(value):
            self.error(
                ref,
                f"invalid label value {value!r} (at most 63 of [A-Za-z0-9-_.], alphanumeric at both ends)",
            )

    def peer(self, value: dict[str, Any], ref: SourceRef, namespace: str) -> Peer | None:
        ip_block = value.get("ipBlock")
        pod_sel = value.get("podSelector")
        ns_sel = value.get("namespaceSelector")
        if ip_block is not None:
            if pod_sel is not None or ns_sel is not None:
                self.error(ref, "ipBlock cannot be combined with podSelector or namespaceSelector")
                return None
            return self.ip_block(ip_block, ref.child("ipBlock"))
        if pod_sel is None and ns_sel is None:
            self.error(ref, "a peer must set podSelector, namespaceSelector or ipBlock")
            return None
        pods = self.selector(pod_sel, ref.child("podSelector")) if pod_sel is not None else None
        if ns_sel is None:
            # podSelector alone selects pods of the policy's own namespace.
            return Peer(pods=pods, namespace_names=frozenset({namespace}))
        nss = self.selector(ns_sel, ref.child("namespaceSelector"))
        return Peer(pods=pods, namespace_selector=nss)

    def ip_block(self, value: dict[str, Any], ref: SourceRef) -> Peer | None:
        cidr = value.get("cidr")
        try:
            whole = IPSet.from_cidr(str(cidr))
        except ValueError as exc:
            self.error(ref.child("cidr"), str(exc))
            return None
        excepts: list[str] = []
        for i, item in enumerate(value.get("except") or []):
            try:
                part = IPSet.from_cidr(str(item))
            except ValueError as exc:
                self.error(ref.child("except", i), str(exc))
                continue
            if not part <= whole or part == whole:
                self.error(
                    ref.child("except", i), f"except {item} must be strictly inside cidr {cidr}"
                )
                continue
            excepts.append(str(item))
        return Peer(ip=IpMatch((str(cidr),), tuple(excepts)))

    def port(self, value: dict[str, Any], ref: SourceRef) -> PortSpec | None:
        proto_name = value.get("protocol") or "TCP"
        if proto_name not in K8S_PROTOCOLS:
            self.error(
                ref.child("protocol"), f"protocol must be TCP, UDP or SCTP, not {proto_name!r}"
            )
            return None
        proto = K8S_PROTOCOLS[proto_name]
        port = value.get("port")
        end = value.get("endPort")
        if port is None:
            if end is not None:
                self.error(ref.child("endPort"), "endPort requires port")
                return None
            return PortSpec.single(proto)
        if isinstance(port, str):
            if not _IANA_SVC_NAME.fullmatch(port) or "--" in port:
                self.error(
                    ref.child("port"),
                    f"named port {port!r} must be an IANA service name (1-15 of a-z, 0-9, '-', with a letter)",
                )
                return None
            if end is not None:
                self.error(ref.child("endPort"), "endPort cannot be used with a named port")
                return None
            return PortSpec.single(proto, IntervalSet.empty(), frozenset({port}))
        number = int(port)
        if not 1 <= number <= 65535:
            self.error(ref.child("port"), f"port {number} is outside 1-65535")
            return None
        if end is None:
            return PortSpec.single(proto, IntervalSet.point(number))
        if not isinstance(end, int) or not number <= end <= 65535:
            self.error(ref.child("endPort"), f"endPort {end} must be >= port {number} and <= 65535")
            return None
        return PortSpec.single(proto, IntervalSet.span(number, end))

    def rules(
        self, items: list[dict[str, Any]] | None, ref: SourceRef, peer_key: str, ns: str
    ) -> tuple[Rule, ...]:
        out: list[Rule] = []
        for i, item in enumerate(items or []):
            rref = ref.child(i)
            item = item or {}
            peers_raw = item.get(peer_key)
            if not peers_raw:
                peers: Any = ANY_PEER  # from/to empty or absent: every source/destination
            else:
                parsed = [
                    self.peer(p or {}, rref.child(peer_key, j), ns) for j, p in enumerate(peers_raw)
                ]
                peers = tuple(p for p in parsed if p is not None)
            ports_raw = item.get("ports")
            if not ports_raw:
                ports: Any = ANY_PORTS
            else:
                specs = [
                    self.port(p or {}, rref.child("ports", j)) for j, p in enumerate(ports_raw)
                ]
                ports = tuple(s for s in specs if s is not None)
            out.append(Rule(Action.ALLOW, peers, ports, source=rref))
        return tuple(out)

    def read(self) -> Policy | None:
        data = self.doc.data
        ref = self.doc.source
        errors = sorted(_validator().iter_errors(data), key=lambda e: list(e.absolute_path))
        for err in errors:
            self.error(ref.child(*err.absolute_path), err.message)
        if errors:
            return None
        meta = data.get("metadata") or {}
        name = meta.get("name")
        if not name:
            self.error(ref.child("metadata", "name"), "a NetworkPolicy needs metadata.name")
        elif len(name) > 253 or not _DNS_SUBDOMAIN.fullmatch(name):
            self.error(
                ref.child("metadata", "name"), f"invalid name {name!r} (a lowercase DNS subdomain)"
            )
        ns = meta.get("namespace") or "default"
        if len(ns) > 63 or not _DNS_LABEL.fullmatch(ns):
            self.error(
                ref.child("metadata", "namespace"),
                f"invalid namespace {ns!r} (a lowercase DNS label)",
            )
        spec = data.get("spec")
        if spec is None:
            self.error(ref.child("spec"), "a NetworkPolicy needs spec")
            return None
        sref = ref.child("spec")
        subject_sel = self.selector(spec.get("podSelector") or {}, sref.child("podSelector"))
        types = spec.get("policyTypes")
        for i, kind in enumerate(types or []):
            if kind not in ("Ingress", "Egress"):
                self.error(
                    sref.child("policyTypes", i),
                    f"policyTypes entries must be Ingress or Egress, not {kind!r}",
                )
        if not types:
            # API defaulting: Ingress always; Egress only when egress rules are present.
            types = ["Ingress"] + (["Egress"] if spec.get("egress") else [])
        # Rules of a direction left out of policyTypes are ignored, but the API server still
        # validates them, so read both and keep what governs.
        in_rules = self.rules(spec.get("ingress"), sref.child("ingress"), "from", ns)
        out_rules = self.rules(spec.get("egress"), sref.child("egress"), "to", ns)
        ingress: Any = Governed(in_rules, True) if "Ingress" in types else NOT_GOVERNED
        egress: Any = Governed(out_rules, True) if "Egress" in types else NOT_GOVERNED
        if self.problems or subject_sel is None:
            return None
        return Policy(
            PolicyId(FORMAT, ns, str(name)),
            Subject(ns, subject_sel),
            ingress,
            egress,
            DEFAULT_TIER,
            KUBERNETES_POLICY_ORDER,
            Layer.NETWORK,
            tuple(sorted((meta.get("labels") or {}).items())),
            ref,
        )


def lint(doc: Document) -> list[Diagnostic]:
    """Semantic warnings on a valid policy: things that are legal but rarely meant."""
    spec = doc.data.get("spec") or {}
    out: list[Diagnostic] = []
    types = spec.get("policyTypes")
    if types:
        for key, kind in (("ingress", "Ingress"), ("egress", "Egress")):
            if spec.get(key) and kind not in types:
                out.append(
                    Diagnostic(
                        doc.source.child("spec", key),
                        f"{key} rules are ignored: {kind!r} is not in policyTypes",
                    )
                )
    elif spec.get("egress") is not None and not spec.get("ingress"):
        out.append(
            Diagnostic(
                doc.source.child("spec", "policyTypes"),
                "no policyTypes: this egress policy also isolates ingress (Ingress is implied)",
            )
        )
    for i, rule in enumerate(spec.get("egress") or []):
        for j, port in enumerate((rule or {}).get("ports") or []):
            if port and str(port.get("port")) == "53" and not port.get("protocol"):
                out.append(
                    Diagnostic(
                        doc.source.child("spec", "egress", i, "ports", j),
                        "port 53 without protocol means TCP only; DNS also needs UDP",
                    )
                )
    return out


# writing ----------------------------------------------------------------------------------


def _ns_name_selector(names: frozenset[str]) -> Selector:
    if len(names) == 1:
        return Eq(NAMESPACE_NAME_LABEL, next(iter(names)))
    return In(NAMESPACE_NAME_LABEL, frozenset(names))


class _Writer:
    def __init__(self, options: RenderOptions, policies: PolicySet) -> None:
        self.options = options
        self.losses: list[Loss] = []
        self.network_sets = policies.network_sets
        self.removable = {d: removable_denies(policies, d) for d in Direction}
        self.matcher = Matcher(options.inventory or Inventory(), DEFAULT_PROFILE, self.network_sets)

    def loss(
        self,
        effect: Effect,
        treatment: Treatment,
        feature: Feature,
        ref: SourceRef | None,
        msg: str,
    ) -> None:
        self.losses.append(Loss(effect, treatment, feature, ref, msg))

    def ip_peers(self, ip: IpMatch, ref: SourceRef | None) -> list[dict[str, Any]]:
        out = []
        for net, excepts in cidr_blocks(ip):
            block: dict[str, Any] = {"cidr": net}
            if excepts:
                block["except"] = excepts
            out.append({"ipBlock": block})
        return out

    def peer(
        self, peer: Peer, policy_ns: str, ref: SourceRef | None
    ) -> list[dict[str, Any]] | None:
        """k8s peers OR-ing to this IR peer; None when it cannot be expressed."""
        if peer == Peer(entity=Entity.WORLD):
            self.loss(
                Effect.WIDENED,
                Treatment.APPROXIMATED,
                Feature.ENTITY,
                ref,
                "world became ipBlocks 0.0.0.0/0 and ::/0: exact where ipBlocks never match pod "
                "or node addresses (Cilium), wider where they do (Calico and most CNIs)",
            )
            return [{"ipBlock": {"cidr": "0.0.0.0/0"}}, {"ipBlock": {"cidr": "::/0"}}]
        if peer.fqdn is not None and peer == Peer(fqdn=peer.fqdn) and self.options.inventory:
            addresses = self.matcher.resolve(peer.fqdn)
            self.loss(
                Effect.INVENTORY_DEPENDENT,
                Treatment.EXPANDED,
                Feature.FQDN,
                ref,
                f"DNS names resolved through the inventory's answers to {addresses or 'nothing'}; "
                "new answers are not covered",
            )
            return [{"ipBlock": {"cidr": cidr}} for cidr in addresses.to_cidrs()]
        unsupported = [
            (peer.not_pods, Feature.NOT_SELECTOR),
            (peer.service_account, Feature.SERVICE_ACCOUNT),
            (peer.entity, Feature.ENTITY),
            (peer.fqdn, Feature.FQDN),
            (peer.security_group, Feature.SECURITY_GROUP),
            (peer.principal, Feature.PRINCIPAL),
        ]
        for value, feature in unsupported:
            if value is not None:
                self.loss(
                    Effect.NARROWED,
                    Treatment.DROPPED,
                    feature,
                    ref,
                    f"Kubernetes has no {feature.value} peer; the peer was dropped",
                )
                return None
        if peer.ip is not None:
            if peer.wants_pod:
                self.loss(
                    Effect.NARROWED,
                    Treatment.DROPPED,
                    Feature.IPBLOCK,
                    ref,
                    "a peer that is both a pod selector and a CIDR cannot be expressed; dropped",
                )
                return None
            return self.ip_peers(peer.ip, ref)
        try:
            out = self.pod_peers(peer, policy_ns, ref)
        except (SelectorNotExpressible, ValueError) as exc:
            self.loss(
                Effect.NARROWED,
                Treatment.DROPPED,
                Feature.SELECTOR_EXPRESSION,
                ref,
                f"{exc}; the peer was dropped",
            )
            return None
        if peer.sets:
            out.extend(self.network_set_peers(peer))
        return out

    def pod_peers(self, peer: Peer, policy_ns: str, ref: SourceRef | None) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for term in pod_terms(peer.pods or All()):
            if term.service_account:
                self.loss(
                    Effect.NARROWED,
                    Treatment.DROPPED,
                    Feature.SERVICE_ACCOUNT,
                    ref,
                    "a selector on the service-account name has no Kubernetes form; dropped",
                )
                continue
            same_ns_only = (
                peer.namespace_names == frozenset({policy_ns})
                and peer.namespace_selector is None
                and term.namespace is None
            )
            parts = [peer.namespace_selector, term.namespace]
            if peer.namespace_names is not None and not same_ns_only:
                parts.append(_ns_name_selector(peer.namespace_names))
            present = [x for x in parts if x is not None]
            ns_terms: tuple[dict[str, Any] | None, ...] = (
                to_label_selectors(and_(*present)) if present else (None,)
            )
            for pod in to_label_selectors(term.labels):
                for ns in ns_terms:
                    item: dict[str, Any] = {}
                    if same_ns_only:
                        item["podSelector"] = pod
                    else:
                        item["namespaceSelector"] = ns if ns is not None else {}
                        if pod != {}:
                            item["podSelector"] = pod
                    out.append(item)
        return out

    def network_set_peers(self, peer: Peer) -> list[dict[str, Any]]:
        """The network sets a peer selects, as ipBlocks (exact: the sets are part of the input)."""
        out: list[dict[str, Any]] = []
        for net_set in self.network_sets:
            if self.matcher.set_selected(peer, net_set):
                out.extend({"ipBlock": {"cidr": cidr}} for cidr in net_set.nets)
        return out

    def ports(self, rule: Rule, ref: SourceRef | None) -> list[dict[str, Any]] | None:
        if rule.ports is ANY_PORTS:
            return None
        out: list[dict[str, Any]] = []
        dropped = []
        for spec in rule.ports:  # type: ignore[union-attr]
            if spec.not_named:
                self.loss(
                    Effect.NARROWED,
                    Treatment.DROPPED,
                    Feature.NOT_PORTS,
                    ref,
                    "named notPorts cannot be expressed; the port spec was dropped",
                )
                continue
            protos = [p for p in (6, 17, 132) if p in spec.protocols]
            other = spec.protocols - IntervalSet.of((6, 6), (17, 17), (132, 132))
            if other:
                dropped.append(str(other))
            for proto in protos:
                name = _K8S_PROTO_NUMBERS[proto]
                numeric = spec.ports & _PORT_UNIVERSE
                if numeric == _PORT_UNIVERSE:
                    out.append({"protocol": name})
                else:
                    for lo, hi in numeric:
                        item: dict[str, Any] = {"protocol": name, "port": lo}
                        if hi != lo:
                            item["endPort"] = hi
                        out.append(item)
                for named in sorted(spec.named):
                    out.append({"protocol": name, "port": named})
        if dropped:
            self.loss(
                Effect.NARROWED,
                Treatment.DROPPED,
                Feature.PROTOCOL,
                ref,
                f"protocols {', '.join(dropped)} have no Kubernetes form; dropped from the rule",
            )
        return out

    def rule(self, rule: Rule, direction: Direction, policy_ns: str) -> dict[str, Any] | None:
        ref = rule.source
        if rule.l7 is not None:
            self.loss(
                Effect.WIDENED,
                Treatment.APPROXIMATED,
                Feature.L7_HTTP,
                ref,
                "L7 constraints dropped: the rule allows the whole L4 connection",
            )
        out: dict[str, Any] = {}
        key = "from" if direction is Direction.INGRESS else "to"
        if rule.peers is not ANY_PEER and not any(_unconstrained(p) for p in rule.peers):  # type: ignore[union-attr]
            peers: list[dict[str, Any]] = []
            for peer in rule.peers:  # type: ignore[union-attr]
                converted = self.peer(peer, policy_ns, ref)
                if converted:
                    peers.extend(converted)
            if not peers:
                return None  # every peer dropped: the rule matches nothing
            out[key] = peers
        ports = self.ports(rule, ref)
        if ports is not None:
            if not ports:
                return None
            out["ports"] = ports
        return out

    def direction(
        self,
        pol: Policy,
        direction: Direction,
        ns: str,
        local_rules: list[tuple[Rule, dict[str, Any]]],
    ) -> list[dict[str, Any]]:
        """The rules of one direction; rules bound to part of the subject go to ``local_rules``."""
        rules = pol.direction(direction)
        assert isinstance(rules, Governed)
        if not rules.isolates:
            self.loss(
                Effect.NARROWED,
                Treatment.APPROXIMATED,
                Feature.ALLOW_WITHOUT_ISOLATION,
                pol.source,
                f"{direction.value} of {pol.id} allows without isolating; a NetworkPolicy always isolates",
            )
        out = []
        for rule in rules.rules:
            if rule.action is Action.LOG:
                self.loss(
                    Effect.NONE,
                    Treatment.DROPPED,
                    Feature.LOG_ACTION,
                    rule.source,
                    "log rule dropped",
                )
                continue
            if rule.action is Action.DENY:
                if id(rule) in self.removable[direction]:
                    self.loss(
                        Effect.NONE,
                        Treatment.DROPPED,
                        Feature.DENY_ACTION,
                        rule.source,
                        "deny rule dropped: nothing after it in its tier could allow what it "
                        "denies, so the isolation drops that traffic anyway",
                    )
                else:
                    self.loss(
                        Effect.WIDENED,
                        Treatment.DROPPED,
                        Feature.DENY_ACTION,
                        rule.source,
                        "Kubernetes has no deny; the rule was dropped and a later allow may "
                        "now admit what it denied",
                    )
                continue
            if rule.action is Action.PASS:
                self.loss(
                    Effect.NARROWED,
                    Treatment.DROPPED,
                    Feature.PASS_ACTION,
                    rule.source,
                    "Kubernetes has no pass; the passed traffic is now dropped by isolation",
                )
                continue
            converted = self.rule(rule, direction, ns)
            if converted is None:
                continue
            if rule.local is None:
                out.append(converted)
            elif _local_pods(rule.local, ns) is None:
                self.loss(
                    Effect.NARROWED,
                    Treatment.DROPPED,
                    Feature.SELECTOR_EXPRESSION,
                    rule.source,
                    "a rule constraining the subject's own side by more than pod labels has no "
                    "Kubernetes form; dropped",
                )
            else:
                local_rules.append((rule, converted))
        return out

    def subject_namespaces(self, pol: Policy) -> list[str] | None:
        if pol.subject.namespace is not None:
            return [pol.subject.namespace]
        inv = self.options.inventory
        if inv is None:
            self.loss(
                Effect.WIDENED,
                Treatment.DROPPED,
                Feature.CLUSTER_SCOPE,
                pol.source,
                f"cluster-wide policy {pol.id} needs an inventory to expand per namespace; dropped",
            )
            return None
        sel = pol.subject.namespace_selector
        names = [ns.name for ns in inv.namespaces if sel is None or sel.matches(ns.labels)]
        self.loss(
            Effect.INVENTORY_DEPENDENT,
            Treatment.EXPANDED,
            Feature.CLUSTER_SCOPE,
            pol.source,
            f"cluster-wide policy {pol.id} expanded to namespaces {', '.join(names) or '(none)'}; new namespaces are not covered",
        )
        return names

    def policy(self, pol: Policy) -> Iterator[dict[str, Any]]:
        if pol.layer is not Layer.NETWORK:
            self.loss(
                Effect.WIDENED,
                Treatment.DROPPED,
                Feature.LAYER,
                pol.source,
                f"{pol.layer.value} layer policy {pol.id} has no Kubernetes form; dropped",
            )
            return
        if pol.subject.service_accounts is not None or pol.subject.security_group is not None:
            self.loss(
                Effect.WIDENED,
                Treatment.DROPPED,
                Feature.SERVICE_ACCOUNT,
                pol.source,
                f"policy {pol.id} selects by service account or security group; dropped",
            )
            return
        namespaces = self.subject_namespaces(pol)
        if namespaces is None:
            return
        for ns in namespaces:
            subject = bind_pod(pol.subject.selector, ns)
            subjects = self.label_selectors(pol, subject)
            if subjects is None:
                continue
            types = []
            spec_rules: dict[str, list[dict[str, Any]]] = {}
            local_rules: dict[str, list[tuple[Rule, dict[str, Any]]]] = {}
            for direction, key, kind in (
                (Direction.INGRESS, "ingress", "Ingress"),
                (Direction.EGRESS, "egress", "Egress"),
            ):
                if isinstance(pol.direction(direction), Governed):
                    types.append(kind)
                    local_rules[kind] = []
                    spec_rules[key] = self.direction(pol, direction, ns, local_rules[kind])
            if not types:
                continue
            for i, podsel in enumerate(subjects):
                base = safe_name(pol.id.name)
                name = base if len(subjects) == 1 else f"{base}-{i + 1}"
                spec: dict[str, Any] = {"podSelector": podsel, "policyTypes": types}
                for key, value in spec_rules.items():
                    if value:
                        spec[key] = value
                yield _document(name, ns, spec)
            # Allow rules that hold for part of the subject only become policies of their own
            # on that part: exact, since allows union and the main policy already isolates it.
            for kind, items in local_rules.items():
                for j, (rule, converted) in enumerate(items):
                    local = _local_pods(rule.local, ns)  # type: ignore[arg-type]
                    narrowed = self.label_selectors(pol, and_(subject, local or All()))
                    for k, podsel in enumerate(narrowed or ()):
                        spec = {
                            "podSelector": podsel,
                            "policyTypes": [kind],
                            kind.lower(): [converted],
                        }
                        name = f"{safe_name(pol.id.name)}-{kind.lower()}-{j + 1}-{k + 1}"
                        yield _document(name, ns, spec)

    def label_selectors(self, pol: Policy, selector: Selector) -> tuple[dict[str, Any], ...] | None:
        """A subject selector as k8s podSelectors (several when it has an ``||``)."""
        try:
            if selector.keys() & PSEUDO_KEYS:
                raise SelectorNotExpressible("a selector on the service-account name")
            return to_label_selectors(selector)
        except (SelectorNotExpressible, ValueError) as exc:
            self.loss(
                Effect.WIDENED,
                Treatment.DROPPED,
                Feature.SELECTOR_EXPRESSION,
                pol.source,
                f"policy {pol.id}: {exc}; dropped",
            )
            return None


def _document(name: str, namespace: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def _local_pods(local: Peer, namespace: str) -> Selector | None:
    """The pod selector a rule's local-side constraint amounts to, or None if it is more.

    The local side is always a subject pod of ``namespace``, so namespace scoping that admits
    it is no constraint and network-set selection is irrelevant.
    """
    if local.pods is None:
        return None
    plain = Peer(
        pods=local.pods,
        namespace_names=local.namespace_names,
        namespace_selector=local.namespace_selector,
        sets=local.sets,
    )
    if local != plain:
        return None
    if local.namespace_names is not None and namespace not in local.namespace_names:
        return NOTHING
    if local.namespace_selector is not None and local.namespace_selector != All():
        return None
    return bind_pod(local.pods, namespace)


def _unconstrained(peer: Peer) -> bool:
    return peer == Peer()


def _tier_losses(ps: PolicySet, writer: _Writer) -> None:
    tiers = sorted({p.tier for p in ps})
    for a, b in overlapping_tiers(ps)[:1]:
        writer.loss(
            Effect.WIDENED,
            Treatment.APPROXIMATED,
            Feature.TIER,
            a.source,
            f"policies of tiers {a.tier} ({a.id}) and {b.tier} ({b.id}) may govern the same "
            "endpoints and were merged into one allow-union; the end-of-tier drop between them "
            "is lost",
        )
    for name in tiers:
        if ps.tier(name).default_action is Action.PASS:
            writer.loss(
                Effect.NARROWED,
                Treatment.APPROXIMATED,
                Feature.TIER,
                None,
                f"tier {name} passes unmatched traffic on; a NetworkPolicy drops it",
            )


class KubernetesTranslator:
    """networking.k8s.io/v1 NetworkPolicy."""

    name: ClassVar[str] = FORMAT
    aliases: ClassVar[tuple[str, ...]] = ("k8s",)
    capabilities: ClassVar[dict[str, str]] = {
        "read": "exact for every construct",
        Feature.DENY_ACTION.value: "lossy: dropped (widened)",
        Feature.PASS_ACTION.value: "lossy: dropped (narrowed)",
        Feature.TIER.value: "lossy: merged (widened)",
        Feature.ALLOW_WITHOUT_ISOLATION.value: "lossy: isolates (narrowed)",
        Feature.ICMP.value: "unsupported: dropped (narrowed)",
        Feature.L7_HTTP.value: "lossy: widened to L4",
        Feature.ENTITY.value: "unsupported: dropped (narrowed)",
        Feature.FQDN.value: "unsupported: dropped (narrowed)",
        Feature.SERVICE_ACCOUNT.value: "unsupported: dropped",
        Feature.CLUSTER_SCOPE.value: "inventory-dependent: one policy per namespace",
    }

    def accepts(self, doc: Document) -> bool:
        return doc.kind == KIND and doc.api_version == API_VERSION

    def to_canonical(self, docs: Sequence[Document]) -> Translation[PolicySet]:
        problems: list[Diagnostic] = []
        policies: list[Policy] = []
        for doc in docs:
            if not self.accepts(doc):
                continue
            reader = _Reader(doc)
            pol = reader.read()
            problems.extend(reader.problems)
            if pol is not None:
                policies.append(pol)
        if problems:
            raise InputError(problems)
        return Translation(PolicySet(tuple(policies)), FidelityReport(FORMAT, "canonical"))

    def from_canonical(
        self, policies: PolicySet, options: RenderOptions = _DEFAULT_OPTIONS
    ) -> Translation[list[dict[str, Any]]]:
        writer = _Writer(options, policies)
        _tier_losses(policies, writer)
        docs = [doc for pol in policies for doc in writer.policy(pol)]
        seen: dict[tuple[str, str], int] = {}
        for doc in docs:
            key = (doc["metadata"]["namespace"], doc["metadata"]["name"])
            seen[key] = seen.get(key, 0) + 1
            if seen[key] > 1:
                doc["metadata"]["name"] = f"{key[1]}-{seen[key]}"
        return Translation(docs, FidelityReport("canonical", FORMAT, tuple(writer.losses)))
