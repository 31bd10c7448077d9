"""Reading Calico policies, tiers and network sets into the canonical model, and the selector
mapping between Calico's automatic labels and the IR's reserved keys (shared with the writer).
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Sequence
from typing import Any

import jsonschema

from polyfence.errors import Diagnostic, InputError
from polyfence.fidelity import Effect, Feature, FidelityReport, Loss, Treatment
from polyfence.inventory import NAMESPACE_NAME_LABEL
from polyfence.model.document import Document
from polyfence.model.labels import KIND_KEY, KIND_POD, NAME_KEY, NAMESPACE_KEY, SERVICE_ACCOUNT_KEY
from polyfence.model.peers import ANY_PEER, IpMatch, NetworkSet, Peer, ServiceAccountMatch
from polyfence.model.policy import (
    DEFAULT_TIER,
    NOT_GOVERNED,
    Action,
    Governed,
    HttpMatch,
    L7Match,
    Layer,
    Policy,
    PolicyId,
    PolicySet,
    Rule,
    Subject,
    Tier,
)
from polyfence.model.ports import (
    ALL_PROTOCOLS,
    ANY_PORTS,
    ICMP_PROTOCOLS,
    PORT_PROTOCOLS,
    PortSpec,
    icmp_range,
    protocol_number,
)
from polyfence.model.provenance import SourceRef
from polyfence.model.selectors import (
    NOTHING,
    All,
    And,
    Eq,
    Ne,
    Selector,
    SelectorSyntaxError,
    and_,
    or_,
    parse,
)
from polyfence.rules.terms import atom_key, map_atoms, rename_key, with_key
from polyfence.schemas import in_document_order, input_schema
from polyfence.semantics.intervals import ALL_PORTS, IntervalSet
from polyfence.translation import Translation

FORMAT = "calico"
API_VERSIONS = ("projectcalico.org/v3", "crd.projectcalico.org/v1")
POLICY_KINDS = ("NetworkPolicy", "GlobalNetworkPolicy")
STAGED_KINDS = ("StagedNetworkPolicy", "StagedGlobalNetworkPolicy", "StagedKubernetesNetworkPolicy")
KINDS = (*POLICY_KINDS, "Tier", "NetworkSet", "GlobalNetworkSet", "HostEndpoint", *STAGED_KINDS)
ORCHESTRATOR = "projectcalico.org/orchestrator"
CALICO_NAMESPACE = "projectcalico.org/namespace"
CALICO_SA = "projectcalico.org/serviceaccount"
CALICO_NAME = "projectcalico.org/name"
ACTIONS = {"Allow": Action.ALLOW, "Deny": Action.DENY, "Pass": Action.PASS, "Log": Action.LOG}
_SCHEMAS = {
    "NetworkPolicy": "calico-networkpolicy.json",
    "GlobalNetworkPolicy": "calico-globalnetworkpolicy.json",
    "Tier": "calico-tier.json",
    "NetworkSet": "calico-networkset.json",
    "GlobalNetworkSet": "calico-globalnetworkset.json",
}


@functools.cache
def validator(kind: str) -> jsonschema.protocols.Validator:
    return jsonschema.Draft7Validator(input_schema(_SCHEMAS[kind]))


# selectors: Calico's automatic labels <-> the IR's reserved keys ----------------------------


def _const(value: bool) -> Selector:
    return All() if value else NOTHING


def endpoint_selector_to_ir(sel: Selector) -> Selector:
    """Calico's automatic endpoint labels become the IR's reserved keys."""

    def fn(atom: Selector) -> Selector:
        key = atom_key(atom)
        if key == CALICO_NAMESPACE:
            return with_key(atom, NAMESPACE_KEY)
        if key == CALICO_SA:
            return with_key(atom, SERVICE_ACCOUNT_KEY)
        if key == ORCHESTRATOR:
            # Workload endpoints carry orchestrator=k8s; network sets and hosts lack it.
            on_pods = atom.matches({ORCHESTRATOR: "k8s"})
            elsewhere = atom.matches({})
            return or_(
                and_(Eq(KIND_KEY, KIND_POD), _const(on_pods)),
                and_(Ne(KIND_KEY, KIND_POD), _const(elsewhere)),
            )
        return atom

    return map_atoms(sel, fn)


def endpoint_selector_from_ir(sel: Selector) -> Selector:
    def fn(atom: Selector) -> Selector:
        key = atom_key(atom)
        if key == NAMESPACE_KEY:
            return with_key(atom, CALICO_NAMESPACE)
        if key == SERVICE_ACCOUNT_KEY:
            return with_key(atom, CALICO_SA)
        if key == KIND_KEY:
            on_pods = atom.matches({KIND_KEY: KIND_POD})
            elsewhere = atom.matches({KIND_KEY: "network-set"})
            return or_(
                and_(Eq(ORCHESTRATOR, "k8s"), _const(on_pods)),
                and_(Ne(ORCHESTRATOR, "k8s"), _const(elsewhere)),
            )
        return atom

    return map_atoms(sel, fn)


IS_POD = Eq(KIND_KEY, KIND_POD)


def split_pods_only(sel: Selector) -> tuple[Selector, bool]:
    """``X && kind == pod`` → (X, True): the idiomatic pods-only peer of the IR."""
    if sel == IS_POD:
        return All(), True
    if isinstance(sel, And) and IS_POD in sel.terms:
        return and_(*(t for t in sel.terms if t != IS_POD)), True
    return sel, False


# reading ----------------------------------------------------------------------------------


class _Reader:
    def __init__(self) -> None:
        self.problems: list[Diagnostic] = []
        self.losses: list[Loss] = []

    def error(self, ref: SourceRef, message: str) -> None:
        self.problems.append(Diagnostic(ref, message))

    def loss(self, effect: Effect, feature: Feature, ref: SourceRef, message: str) -> None:
        self.losses.append(Loss(effect, Treatment.DROPPED, feature, ref, message))

    def schema(self, doc: Document) -> bool:
        errors = list(in_document_order(validator(doc.kind or "").iter_errors(doc.data)))
        for err in errors:
            self.error(doc.source.child(*err.absolute_path), err.message)
        return not errors

    def selector(self, text: Any, ref: SourceRef) -> Selector | None:
        try:
            return parse(str(text or ""))
        except SelectorSyntaxError as exc:
            self.error(ref, str(exc))
            return None

    def cidrs(self, items: list[Any] | None, ref: SourceRef) -> tuple[str, ...]:
        out: list[str] = []
        for i, item in enumerate(items or []):
            try:
                # Calico accepts host bits and uses the network (1.2.3.4/16 is 1.2.0.0/16).
                out.append(str(ipaddress.ip_network(str(item), strict=False)))
            except ValueError:
                self.error(ref.child(i), f"{item!r} is not a valid CIDR")
        return tuple(out)

    # -- documents ---------------------------------------------------------------------------
    def tier(self, doc: Document) -> Tier:
        spec = doc.data.get("spec") or {}
        default = ACTIONS.get(spec.get("defaultAction") or "Deny", Action.DENY)
        order = spec.get("order")
        name = str((doc.data.get("metadata") or {}).get("name") or "")
        return Tier(name, None if order is None else float(order), default)

    def network_set(self, doc: Document) -> NetworkSet:
        meta = doc.data.get("metadata") or {}
        namespace = (meta.get("namespace") or "default") if doc.kind == "NetworkSet" else None
        nets = self.cidrs(
            (doc.data.get("spec") or {}).get("nets"), doc.source.child("spec", "nets")
        )
        labels = tuple(sorted((meta.get("labels") or {}).items()))
        return NetworkSet(str(meta.get("name")), namespace, labels, nets)

    def policy(self, doc: Document) -> Policy | None:
        data, ref = doc.data, doc.source
        meta = data.get("metadata") or {}
        spec = data.get("spec") or {}
        sref = ref.child("spec")
        namespaced = doc.kind == "NetworkPolicy"
        ns = (meta.get("namespace") or "default") if namespaced else None
        selector = self.selector(spec.get("selector"), sref.child("selector"))
        subject_sel = endpoint_selector_to_ir(selector) if selector is not None else None
        ns_sel = None
        if not namespaced and spec.get("namespaceSelector"):
            raw = self.selector(spec.get("namespaceSelector"), sref.child("namespaceSelector"))
            ns_sel = rename_key(raw, CALICO_NAME, NAMESPACE_NAME_LABEL) if raw else None
        sa_sel = None
        if spec.get("serviceAccountSelector"):
            raw = self.selector(
                spec["serviceAccountSelector"], sref.child("serviceAccountSelector")
            )
            sa_sel = rename_key(raw, CALICO_NAME, NAME_KEY) if raw else None
        if spec.get("preDNAT") or spec.get("doNotTrack"):
            self.loss(
                Effect.NONE,
                Feature.HOST_ENDPOINT,
                sref,
                "preDNAT / doNotTrack policies apply to host endpoints only, which the inventory "
                "does not hold: this policy selects no pod",
            )
            subject_sel = and_(subject_sel, Eq(KIND_KEY, "host")) if subject_sel else None
        elif spec.get("applyOnForward"):
            self.loss(
                Effect.NONE,
                Feature.HOST_ENDPOINT,
                sref.child("applyOnForward"),
                "applyOnForward only concerns host endpoints",
            )
        types = spec.get("types")
        ingress_raw, egress_raw = spec.get("ingress"), spec.get("egress")
        if not types:
            # Calico defaulting (differs from k8s): by which rule lists exist; neither → Ingress.
            types = (["Ingress"] if ingress_raw or not egress_raw else []) + (
                ["Egress"] if egress_raw else []
            )
        in_rules = self.rules(ingress_raw, sref.child("ingress"), True, ns)
        out_rules = self.rules(egress_raw, sref.child("egress"), False, ns)
        if subject_sel is None:
            return None
        order = spec.get("order")
        return Policy(
            PolicyId(FORMAT, ns, str(meta.get("name"))),
            Subject(ns, subject_sel, ns_sel, sa_sel, None, not namespaced),
            Governed(in_rules, True) if "Ingress" in types else NOT_GOVERNED,
            Governed(out_rules, True) if "Egress" in types else NOT_GOVERNED,
            spec.get("tier") or DEFAULT_TIER,
            None if order is None else float(order),
            Layer.NETWORK,
            tuple(sorted((meta.get("labels") or {}).items())),
            ref,
        )

    # -- rules -------------------------------------------------------------------------------
    def rules(
        self, items: list[Any] | None, ref: SourceRef, ingress: bool, ns: str | None
    ) -> tuple[Rule, ...]:
        out: list[Rule] = []
        for i, item in enumerate(items or []):
            rule = self.rule(item or {}, ref.child(i), ingress, ns)
            if rule is not None:
                out.append(rule)
        return tuple(out)

    def rule(
        self, data: dict[str, Any], ref: SourceRef, ingress: bool, ns: str | None
    ) -> Rule | None:
        action = ACTIONS[data["action"]]
        remote_key, local_key = ("source", "destination") if ingress else ("destination", "source")
        remote = data.get(remote_key) or {}
        local = data.get(local_key) or {}
        ports = self.ports(data, ref)
        for side, key in ((remote, remote_key), (local, local_key)):
            if (side.get("ports") or side.get("notPorts")) and key == "source":
                self.loss(
                    Effect.WIDENED if action is Action.ALLOW else Effect.NARROWED,
                    Feature.PORT_RANGE,
                    ref.child(key, "ports"),
                    "source ports cannot be carried; the constraint was dropped",
                )
        family = data.get("ipVersion")
        peer = self.entity(remote, ref.child(remote_key), ns, family, action)
        local_peer = self.entity(local, ref.child(local_key), ns, family, action)
        if family is not None and not (remote.get("nets") or remote.get("notNets")):
            self.loss(
                Effect.WIDENED if action is Action.ALLOW else Effect.NARROWED,
                Feature.PROTOCOL,
                ref.child("ipVersion"),
                f"ipVersion {family} without nets: the rule is read for both address families",
            )
        if peer is False or local_peer is False or ports is None:
            return None
        l7 = None
        if data.get("http"):
            http = data["http"]
            paths = tuple(
                (kind, str(p[kind]))
                for p in http.get("paths") or []
                for kind in ("exact", "prefix")
                if kind in p
            )
            l7 = L7Match(http=(HttpMatch(frozenset(http.get("methods") or ()), paths),))
        return Rule(
            action,
            ANY_PEER if peer is None else (peer,),  # type: ignore[arg-type]
            ports,
            l7,
            local_peer if isinstance(local_peer, Peer) else None,
            source=ref,
        )

    def ports(self, data: dict[str, Any], ref: SourceRef) -> Any:
        protocol = data.get("protocol")
        not_protocol = data.get("notProtocol")
        dst = data.get("destination") or {}
        protocols = ALL_PROTOCOLS
        try:
            if protocol is not None:
                protocols = IntervalSet.point(protocol_number(protocol))
            if not_protocol is not None:
                protocols = protocols - IntervalSet.point(protocol_number(not_protocol))
        except ValueError as exc:
            self.error(ref.child("protocol" if protocol is not None else "notProtocol"), str(exc))
            return None
        ports = ALL_PORTS
        named: set[str] = set()
        not_named: set[str] = set()
        has_ports = bool(dst.get("ports") or dst.get("notPorts"))
        if has_ports:
            if protocol is None or protocol_number(protocol) not in PORT_PROTOCOLS:
                self.error(
                    ref.child("destination", "ports"),
                    "ports need protocol TCP, UDP, SCTP or UDPLite",
                )
                return None
            if dst.get("ports"):
                ports, named = self.port_items(dst["ports"], ref.child("destination", "ports"))
            if dst.get("notPorts"):
                excluded, not_named_set = self.port_items(
                    dst["notPorts"], ref.child("destination", "notPorts")
                )
                ports = ports - excluded
                not_named = not_named_set
        for key in ("icmp", "notICMP"):
            icmp = data.get(key)
            if icmp is None:
                continue
            if protocol is None or protocol_number(protocol) not in ICMP_PROTOCOLS:
                self.error(ref.child(key), f"{key} needs protocol ICMP or ICMPv6")
                return None
            if icmp.get("code") is not None and icmp.get("type") is None:
                self.error(ref.child(key, "code"), "ICMP code specified without an ICMP type")
                return None
            block = icmp_range(icmp.get("type"), icmp.get("code"))
            ports = ports & block if key == "icmp" else ports - block
        if protocols == ALL_PROTOCOLS and not has_ports:
            return ANY_PORTS
        return (PortSpec(protocols, ports, frozenset(named), frozenset(not_named)),)

    def port_items(self, items: list[Any], ref: SourceRef) -> tuple[IntervalSet, set[str]]:
        numbers = IntervalSet.empty()
        names: set[str] = set()
        for i, item in enumerate(items):
            text = str(item)
            try:
                if isinstance(item, int) or text.isdigit():
                    lo = hi = int(text)
                elif ":" in text:
                    lo, hi = (int(x) for x in text.split(":", 1))
                else:
                    names.add(text)
                    continue
                span = IntervalSet.span(lo, hi)
            except ValueError:
                self.error(ref.child(i), f"bad port {item!r}: a number, 'lo:hi' or a port name")
                continue
            if not span <= IntervalSet.span(0, 65535):
                self.error(ref.child(i), f"port {item!r} is outside 0-65535")
                continue
            numbers = numbers | span
        return numbers, names

    def entity(
        self,
        data: dict[str, Any],
        ref: SourceRef,
        ns: str | None,
        family: int | None,
        action: Action,
    ) -> Peer | bool | None:
        """The peer an EntityRule describes; None: unconstrained; False: not representable."""
        if data.get("services"):
            self.loss(
                Effect.NARROWED if action is Action.ALLOW else Effect.WIDENED,
                Feature.SELECTOR_EXPRESSION,
                ref.child("services"),
                "service matches are not carried; the rule was dropped",
            )
            return False
        fields: dict[str, Any] = {}
        if data.get("selector") is not None:
            sel = self.selector(data["selector"], ref.child("selector"))
            if sel is not None:
                fields["pods"] = endpoint_selector_to_ir(sel)
        if data.get("notSelector") is not None:
            sel = self.selector(data["notSelector"], ref.child("notSelector"))
            if sel is not None:
                fields["not_pods"] = endpoint_selector_to_ir(sel)
        if data.get("namespaceSelector") is not None:
            sel = self.selector(data["namespaceSelector"], ref.child("namespaceSelector"))
            if sel is not None:
                fields["namespace_selector"] = rename_key(sel, CALICO_NAME, NAMESPACE_NAME_LABEL)
        sa = data.get("serviceAccounts")
        if sa:
            sa_sel = None
            if sa.get("selector"):
                raw = self.selector(sa["selector"], ref.child("serviceAccounts", "selector"))
                sa_sel = rename_key(raw, CALICO_NAME, NAME_KEY) if raw is not None else None
            names = frozenset(sa["names"]) if sa.get("names") else None
            fields["service_account"] = ServiceAccountMatch(names, sa_sel)
        nets = self.cidrs(data.get("nets"), ref.child("nets"))
        not_nets = self.cidrs(data.get("notNets"), ref.child("notNets"))
        versions = {ipaddress.ip_network(c).version for c in nets + not_nets}
        if len(versions) > 1:
            self.error(ref, "IPv4 and IPv6 CIDRs must not be mixed in one rule")
        if family is not None and versions and versions != {family}:
            self.error(ref, f"ipVersion {family} does not match the CIDRs of the rule")
        if nets or not_nets:
            fam = family or (next(iter(versions)) if versions else None)
            base = nets or (("0.0.0.0/0",) if fam == 4 else ("::/0",) if fam == 6 else None)
            fields["ip"] = IpMatch(base, not_nets)
        if not fields:
            return None
        if "pods" in fields:
            fields["pods"], pods_only = split_pods_only(fields["pods"])
        else:
            pods_only = False
        selecting = any(k in fields for k in ("pods", "not_pods", "service_account"))
        if ns is not None and selecting and "namespace_selector" not in fields:
            fields["namespace_names"] = frozenset({ns})  # a NetworkPolicy's default scope
        return Peer(**fields, sets=not pods_only)


def accepts(doc: Document) -> bool:
    """Whether ``doc`` is a Calico kind this reader reads."""
    return doc.api_version in API_VERSIONS and doc.kind in KINDS


def read(docs: Sequence[Document]) -> Translation[PolicySet]:
    """The Calico policies, tiers and network sets among ``docs`` in the IR."""
    reader = _Reader()
    policies: list[Policy] = []
    tiers: list[Tier] = []
    sets: list[NetworkSet] = []
    for doc in docs:
        if not accepts(doc):
            continue
        if doc.kind in STAGED_KINDS or doc.kind == "HostEndpoint":
            reader.loss(
                Effect.NONE,
                Feature.HOST_ENDPOINT if doc.kind == "HostEndpoint" else Feature.METADATA,
                doc.source,
                f"{doc.kind} is read but not enforced here: "
                + (
                    "host endpoints are not in the inventory"
                    if doc.kind == "HostEndpoint"
                    else "staged policies do not enforce"
                ),
            )
            continue
        if not reader.schema(doc):
            continue
        if doc.kind == "Tier":
            tiers.append(reader.tier(doc))
        elif doc.kind in ("NetworkSet", "GlobalNetworkSet"):
            sets.append(reader.network_set(doc))
        else:
            pol = reader.policy(doc)
            if pol is not None:
                policies.append(pol)
    if reader.problems:
        raise InputError(reader.problems)
    if not any(t.name == DEFAULT_TIER for t in tiers):
        tiers.append(Tier(DEFAULT_TIER))
    known = {t.name for t in tiers}
    for name in sorted({p.tier for p in policies} - known):
        first = next(p for p in policies if p.tier == name)
        reader.losses.append(
            Loss(
                Effect.INVENTORY_DEPENDENT,
                Treatment.APPROXIMATED,
                Feature.TIER,
                first.source,
                f"tier {name!r} is not defined in the input: evaluated as ordered after every "
                "defined tier with defaultAction Deny; give its Tier to be exact",
            )
        )
    report = FidelityReport(FORMAT, "canonical", tuple(reader.losses))
    return Translation(PolicySet(tuple(policies), tuple(tiers), tuple(sets)), report)
