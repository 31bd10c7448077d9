"""Reading CiliumNetworkPolicy / CiliumClusterwideNetworkPolicy into the canonical model.

Cilium has no order: deny rules beat every allow rule, from any policy (Kubernetes ones too).
The IR says this with order: each Cilium rule becomes a deny part at ``DENY_ORDER`` (before
everything) and an allow part at the Kubernetes order, in the default tier; a part isolates
its direction unless ``enableDefaultDeny`` turns that off.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import jsonschema

from polyfence.errors import Diagnostic, InputError
from polyfence.fidelity import Effect, Feature, FidelityReport, Loss, Treatment
from polyfence.inventory import NAMESPACE_NAME_LABEL
from polyfence.model.document import Document
from polyfence.model.labels import SERVICE_ACCOUNT_KEY
from polyfence.model.peers import ANY_PEER, Entity, FqdnMatch, IpMatch, Peer
from polyfence.model.policy import (
    DEFAULT_TIER,
    KUBERNETES_POLICY_ORDER,
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
)
from polyfence.model.ports import ANY_PORTS, PortSpec, Protocol, icmp_range
from polyfence.model.provenance import SourceRef
from polyfence.model.selectors import (
    All,
    In,
    LabelSelectorError,
    Selector,
    and_,
    from_label_selector,
    normalize,
)
from polyfence.rules.terms import rename_key
from polyfence.schemas import in_document_order, input_schema
from polyfence.semantics.intervals import ALL_PORTS, IntervalSet, IPSet
from polyfence.translation import Translation
from polyfence.translators.cilium._requires import Requirement, expand_requirements

FORMAT = "cilium"
API_VERSION = "cilium.io/v2"
KINDS = ("CiliumNetworkPolicy", "CiliumClusterwideNetworkPolicy")
DENY_ORDER = -1_000_000_000.0  # Cilium deny rules come before every allow rule
POD_NAMESPACE = "io.kubernetes.pod.namespace"
NS_LABELS = "io.cilium.k8s.namespace.labels."
SERVICE_ACCOUNT = "io.cilium.k8s.policy.serviceaccount"
SOURCES = ("k8s", "any", "container", "cilium", "unspec")
# Cilium's ICMP type names (pkg/policy/api/icmp.go), per family.
ICMP_NAMES = {
    "IPv4": {
        "EchoReply": 0,
        "DestinationUnreachable": 3,
        "Redirect": 5,
        "Echo": 8,
        "EchoRequest": 8,
        "RouterAdvertisement": 9,
        "RouterSelection": 10,
        "TimeExceeded": 11,
        "ParameterProblem": 12,
        "Timestamp": 13,
        "TimestampReply": 14,
        "Photuris": 40,
        "ExtendedEchoRequest": 42,
        "ExtendedEchoReply": 43,
    },
    "IPv6": {
        "DestinationUnreachable": 1,
        "PacketTooBig": 2,
        "TimeExceeded": 3,
        "ParameterProblem": 4,
        "EchoRequest": 128,
        "EchoReply": 129,
        "MulticastListenerQuery": 130,
        "MulticastListenerReport": 131,
        "MulticastListenerDone": 132,
        "RouterSolicitation": 133,
        "RouterAdvertisement": 134,
        "NeighborSolicitation": 135,
        "NeighborAdvertisement": 136,
        "RedirectMessage": 137,
        "RouterRenumbering": 138,
        "ExtendedEchoRequest": 160,
        "ExtendedEchoReply": 161,
    },
}
ANY_PROTOCOLS = (Protocol.TCP, Protocol.UDP, Protocol.SCTP)
ENTITIES = {e.value: e for e in Entity}
L3_FIELDS = ("Endpoints", "Entities", "CIDR", "CIDRSet", "FQDNs")
UNSUPPORTED = {
    "toServices": Feature.SELECTOR_EXPRESSION,
    "toGroups": Feature.SECURITY_GROUP,
    "fromNodes": Feature.HOST_ENDPOINT,
    "toNodes": Feature.HOST_ENDPOINT,
    "authentication": Feature.METADATA,
}


CLUSTER_LABEL = "io.cilium.k8s.policy.cluster"


def reserved_identity_key(key: str) -> bool:
    """Keys Cilium gives meaning of its own: they cannot stand for a plain pod label."""
    plain = strip_source(key)
    return (
        plain != key
        or key.startswith("reserved:")
        or plain == POD_NAMESPACE
        or (plain.startswith("io.cilium.k8s.") and plain != CLUSTER_LABEL)
    )


def strip_source(key: str) -> str:
    """``k8s:app`` → ``app``: identity labels carry a source prefix."""
    prefix, sep, rest = key.partition(":")
    return rest if sep and prefix in SOURCES else key


class _Reserved(Exception):
    """A selector on a reserved identity label (reserved:host, reserved:world, ...)."""


_SCHEMAS = {
    "CiliumNetworkPolicy": "cilium-ciliumnetworkpolicy.json",
    "CiliumClusterwideNetworkPolicy": "cilium-ciliumclusterwidenetworkpolicy.json",
}


@functools.cache
def validator(kind: str) -> jsonschema.protocols.Validator:
    """The CRD's own openAPIV3Schema (Cilium 1.16.5): what the API server would refuse."""
    return jsonschema.Draft7Validator(input_schema(_SCHEMAS[kind]))


class _Reader:
    def __init__(self) -> None:
        self.problems: list[Diagnostic] = []
        self.losses: list[Loss] = []
        self.endpoint_peers: dict[SourceRef, int] = {}  # rule → its leading fromEndpoints peers
        self.requirements: list[Requirement] = []

    def error(self, ref: SourceRef, message: str) -> None:
        self.problems.append(Diagnostic(ref, message))

    def loss(self, effect: Effect, feature: Feature, ref: SourceRef, message: str) -> None:
        self.losses.append(Loss(effect, Treatment.DROPPED, feature, ref, message))

    def label_selector(self, value: Any, ref: SourceRef) -> tuple[Selector, Selector, bool] | None:
        """(pod part, namespace part, mentions the pod-namespace key) of an endpoint selector."""
        if not isinstance(value, dict):
            self.error(ref, "an endpoint selector must be a label selector object")
            return None
        try:
            sel = from_label_selector(value)
        except LabelSelectorError as exc:
            self.error(SourceRef(ref.file, ref.document, ref.pointer + exc.pointer), str(exc))
            return None
        pods: list[Selector] = []
        namespace: list[Selector] = []
        mentions_ns = False
        terms = sel.terms if hasattr(sel, "terms") else (sel,)
        for term in terms:
            key = getattr(term, "key", None) or getattr(getattr(term, "expr", None), "key", None)
            plain = strip_source(key) if key else None
            if plain == CLUSTER_LABEL:
                self.losses.append(
                    Loss(
                        Effect.INVENTORY_DEPENDENT,
                        Treatment.APPROXIMATED,
                        Feature.SELECTOR_EXPRESSION,
                        ref,
                        "io.cilium.k8s.policy.cluster is the cluster's name on every local pod; "
                        "it is read as a plain pod label",
                    )
                )
            if plain == POD_NAMESPACE:
                mentions_ns = True
                namespace.append(rename_key(term, key, NAMESPACE_NAME_LABEL))  # type: ignore[arg-type]
            elif plain and plain.startswith(NS_LABELS):
                namespace.append(rename_key(term, key, plain[len(NS_LABELS) :]))  # type: ignore[arg-type]
            elif plain == SERVICE_ACCOUNT:
                pods.append(rename_key(term, key, SERVICE_ACCOUNT_KEY))  # type: ignore[arg-type]
            elif key and key.startswith("reserved:"):
                raise _Reserved(key.partition(":")[2])
            elif key:
                pods.append(rename_key(term, key, plain))  # type: ignore[arg-type]
            elif not isinstance(term, All):
                pods.append(term)
        return and_(*pods), and_(*namespace), mentions_ns

    def endpoint_peer(self, value: Any, ref: SourceRef, ns: str | None) -> Peer | None:
        """One endpoint selector (fromEndpoints, fromRequires …) as a peer, scoped as Cilium
        scopes it; reserved identities become entities."""
        try:
            parsed = self.label_selector(value or {}, ref)
        except _Reserved as reserved:
            entity = ENTITIES.get(str(reserved))
            if entity is None:
                self.error(ref, f"unknown reserved identity {reserved}")
                return None
            return Peer(entity=entity)
        if parsed is None:
            return None
        pods, namespace, mentions_ns = parsed
        if ns is not None and not mentions_ns:
            # A CNP confines a peer to its own namespace unless the selector itself
            # names the pod-namespace key (namespace *labels* alone do not lift it).
            extra = None if namespace == All() else namespace
            return Peer(pods=pods, namespace_names=frozenset({ns}), namespace_selector=extra)
        return Peer(pods=pods, namespace_selector=namespace)  # CCNP: any namespace

    def peers(
        self, data: dict[str, Any], ref: SourceRef, prefix: str, ns: str | None
    ) -> list[Peer] | None:
        """The L3 peers of a rule (OR); None when the rule names no L3 peer."""
        found = False
        out: list[Peer] = []
        for i, value in enumerate(data.get(f"{prefix}Endpoints") or []):
            found = True
            peer = self.endpoint_peer(value, ref.child(f"{prefix}Endpoints", i), ns)
            if peer is not None:
                out.append(peer)
        self.endpoint_peers[ref] = len(out)
        for i, name in enumerate(data.get(f"{prefix}Entities") or []):
            found = True
            entity = ENTITIES.get(str(name))
            if entity is None:
                self.error(ref.child(f"{prefix}Entities", i), f"unknown entity {name!r}")
            else:
                # `all` is every peer, inside the cluster and out: the unconstrained peer.
                out.append(Peer() if entity is Entity.ALL else Peer(entity=entity))
        for i, cidr in enumerate(data.get(f"{prefix}CIDR") or []):
            found = True
            if self.cidr(cidr, ref.child(f"{prefix}CIDR", i)):
                out.append(Peer(ip=IpMatch((str(cidr),))))
        for i, item in enumerate(data.get(f"{prefix}CIDRSet") or []):
            found = True
            where = ref.child(f"{prefix}CIDRSet", i)
            cidr = (item or {}).get("cidr")
            if cidr is None:
                self.error(where, "a CIDRSet entry needs cidr (cidrGroupRef is not supported)")
                continue
            if not self.cidr(cidr, where.child("cidr")):
                continue
            excepts = []
            for j, ex in enumerate(item.get("except") or []):
                if self.cidr(ex, where.child("except", j)):
                    if not IPSet.from_cidr(str(ex)) <= IPSet.from_cidr(str(cidr)):
                        self.error(where.child("except", j), f"except {ex} is not inside {cidr}")
                    else:
                        excepts.append(str(ex))
            out.append(Peer(ip=IpMatch((str(cidr),), tuple(excepts))))
        fqdns = data.get("toFQDNs") if prefix == "to" else None
        if fqdns:
            found = True
            names = frozenset(str(f["matchName"]) for f in fqdns if f.get("matchName"))
            patterns = frozenset(str(f["matchPattern"]) for f in fqdns if f.get("matchPattern"))
            out.append(Peer(fqdn=FqdnMatch(names, patterns)))
        return out if found else None

    def cidr(self, text: Any, ref: SourceRef) -> bool:
        try:
            IPSet.from_cidr(str(text))
        except ValueError as exc:
            self.error(ref, str(exc))
            return False
        return True

    def ports(self, data: dict[str, Any], ref: SourceRef) -> tuple[Any, L7Match | None] | None:
        """(port match, L7 match) of a rule; ANY_PORTS when it names no L4."""
        specs: list[PortSpec] = []
        http: list[HttpMatch] = []
        dns: list[str] = []
        other: list[str] = []
        to_ports = data.get("toPorts") or []
        for i, item in enumerate(to_ports):
            where = ref.child("toPorts", i)
            for j, port in enumerate((item or {}).get("ports") or [{}]):
                spec = self.port(port or {}, where.child("ports", j))
                if spec is not None:
                    specs.append(spec)
            rules = (item or {}).get("rules") or {}
            for k, rule in enumerate(rules.get("http") or []):
                paths = (("regex", str(rule["path"])),) if rule.get("path") else ()
                methods = frozenset({str(rule["method"])}) if rule.get("method") else frozenset()
                hosts = frozenset({str(rule["host"])}) if rule.get("host") else frozenset()
                if rule.get("headers") or rule.get("headerMatches"):
                    self.loss(
                        Effect.NONE,
                        Feature.L7_HTTP,
                        where.child("rules", "http", k),
                        "HTTP header matches are not carried (the engine decides at L4)",
                    )
                http.append(HttpMatch(methods, paths, hosts))
            for rule in rules.get("dns") or []:
                dns.append(str(rule.get("matchName") or rule.get("matchPattern") or "*"))
            for key in rules:
                if key not in ("http", "dns"):
                    other.append(str(key))
            if (item or {}).get("serverNames"):
                other.append("tls-sni:" + ",".join(str(n) for n in item["serverNames"]))
        for i, item in enumerate(data.get("icmps") or []):
            for j, field in enumerate((item or {}).get("fields") or []):
                family = str((field or {}).get("family") or "IPv4")
                proto = Protocol.ICMPV6 if family == "IPv6" else Protocol.ICMP
                raw = (field or {}).get("type")
                icmp_type = ICMP_NAMES.get(family, {}).get(str(raw))
                if icmp_type is None:
                    try:
                        icmp_type = int(raw)  # type: ignore[arg-type]
                    except (TypeError, ValueError):
                        self.error(
                            ref.child("icmps", i, "fields", j, "type"),
                            f"unknown ICMP type {raw!r} for {family}",
                        )
                        continue
                specs.append(PortSpec.single(proto, icmp_range(icmp_type, None)))
        l7 = L7Match(tuple(http), tuple(dns), tuple(other)) if (http or dns or other) else None
        if not to_ports and not data.get("icmps"):
            return ANY_PORTS, l7
        return tuple(specs), l7

    def port(self, data: dict[str, Any], ref: SourceRef) -> PortSpec | None:
        proto_name = str(data.get("protocol") or "ANY").upper()
        if proto_name == "ANY":
            protocols = IntervalSet.of(*((int(p), int(p)) for p in ANY_PROTOCOLS))
        elif proto_name in ("TCP", "UDP", "SCTP"):
            protocols = IntervalSet.point(int(Protocol[proto_name]))
        else:
            self.error(
                ref.child("protocol"),
                f"protocol must be TCP, UDP, SCTP or ANY, not {data.get('protocol')!r}",
            )
            return None
        port = str(data.get("port") if data.get("port") is not None else "0")
        end = data.get("endPort")
        if not port.isdigit():
            return PortSpec(protocols, IntervalSet.empty(), frozenset({port}))  # endPort ignored
        number = int(port)
        if number > 65535:
            self.error(ref.child("port"), f"port {number} is outside 0-65535")
            return None
        if number == 0:
            return PortSpec(protocols, ALL_PORTS)
        if end is not None and not (isinstance(end, int) and 0 <= end <= 65535):
            self.error(ref.child("endPort"), f"endPort {end!r} is not a port number (0-65535)")
            return None
        if end is None or end <= number:
            return PortSpec(protocols, IntervalSet.point(number))
        return PortSpec(protocols, IntervalSet.span(number, end))

    def rules(
        self,
        items: Any,
        ref: SourceRef,
        prefix: str,
        action: Action,
        ns: str | None,
        requires: list[tuple[Peer, SourceRef]],
    ) -> list[Rule]:
        out: list[Rule] = []
        for i, item in enumerate(items or []):
            item = item or {}
            where = ref.child(i)
            for j, value in enumerate(item.get(f"{prefix}Requires") or []):
                at = where.child(f"{prefix}Requires", j)
                peer = self.endpoint_peer(value, at, ns)
                if peer is not None:
                    requires.append((peer, at))
            for key, feature in UNSUPPORTED.items():
                if item.get(key):
                    self.loss(
                        Effect.WIDENED if action is Action.ALLOW else Effect.NARROWED,
                        feature,
                        where.child(key),
                        f"{key} is not carried; the rule is read without it",
                    )
            peers = self.peers(item, where, prefix, ns)
            parsed = self.ports(item, where)
            if parsed is None:
                continue
            ports, l7 = parsed
            if peers is None and ports is ANY_PORTS:
                continue  # an empty rule matches nothing (it only switches on default deny)
            out.append(
                Rule(action, ANY_PEER if peers is None else tuple(peers), ports, l7, source=where)
            )
        return out

    def policies(
        self, doc: Document, spec: dict[str, Any], ref: SourceRef, index: int
    ) -> list[Policy]:
        meta = doc.data.get("metadata") or {}
        ns = (meta.get("namespace") or "default") if doc.kind == "CiliumNetworkPolicy" else None
        name = str(meta.get("name") or "")
        if index:
            name = f"{name}-{index}"
        if spec.get("nodeSelector") is not None:
            self.loss(
                Effect.NONE,
                Feature.HOST_ENDPOINT,
                ref.child("nodeSelector"),
                "host policies (nodeSelector) select nodes, which are not policy subjects here",
            )
            return []
        selector = spec.get("endpointSelector")
        if selector is None:
            self.error(ref, "a rule needs endpointSelector (or nodeSelector)")
            return []
        try:
            parsed = self.label_selector(selector, ref.child("endpointSelector"))
        except _Reserved as reserved:
            self.loss(
                Effect.NONE,
                Feature.ENTITY,
                ref.child("endpointSelector"),
                f"the rule selects Cilium's reserved {reserved} identity, not pods: no subject here",
            )
            return []
        if parsed is None:
            return []
        pods, namespace, _ = parsed
        # A CNP's subject is always its own namespace; a CCNP's may be narrowed by namespace.
        # Namespace terms in a CNP's selector still count (Cilium only adds its namespace
        # to them): they make the subject that namespace if it has those labels.
        ns_sel = None if namespace == All() else namespace
        if ns is None:
            subject = Subject(None, pods, ns_sel)
        elif ns_sel is None:
            subject = Subject(ns, pods)
        else:
            own = In(NAMESPACE_NAME_LABEL, frozenset({ns}))
            subject = Subject(None, pods, normalize(and_(own, ns_sel)))
        default_deny = spec.get("enableDefaultDeny") or {}
        out: list[Policy] = []
        for part, action, order in (
            ("", Action.ALLOW, KUBERNETES_POLICY_ORDER),
            ("Deny", Action.DENY, DENY_ORDER),
        ):
            dirs: dict[str, Any] = {}
            for direction, prefix in (("ingress", "from"), ("egress", "to")):
                key = direction + part
                if not spec.get(key):
                    dirs[direction] = NOT_GOVERNED  # omitted or empty: the rule says nothing
                    continue
                requires: list[tuple[Peer, SourceRef]] = []
                rules = self.rules(spec[key], ref.child(key), prefix, action, ns, requires)
                self.requirements.extend(
                    Requirement(subject, direction, action, peer, at) for peer, at in requires
                )
                isolates = default_deny.get(direction, True) is not False
                dirs[direction] = Governed(tuple(rules), isolates)
            if dirs["ingress"] is NOT_GOVERNED and dirs["egress"] is NOT_GOVERNED:
                continue
            suffix = "" if action is Action.ALLOW else "#deny"
            out.append(
                Policy(
                    PolicyId(FORMAT, ns, name + suffix),
                    subject,
                    dirs["ingress"],
                    dirs["egress"],
                    DEFAULT_TIER,
                    order,
                    Layer.NETWORK,
                    tuple(sorted((meta.get("labels") or {}).items())),
                    ref,
                )
            )
        return out


def _listed(value: object) -> list[object]:
    """An enum's allowed values (the stubs type ``validator_value`` loosely)."""
    return list(value) if isinstance(value, list | tuple) else [value]


def _schema_message(err: jsonschema.ValidationError, kind: str | None) -> str:
    """The CRD's complaint, short: a long schema (oneOf, anyOf) is not repeated back."""
    field = next((str(p) for p in reversed(err.absolute_path) if isinstance(p, str)), "value")
    if err.validator == "pattern":
        message = f"{field} {err.instance!r} does not match the pattern the CRD requires"
    elif err.validator == "enum":
        message = f"{field} {err.instance!r} is not one of {', '.join(map(str, _listed(err.validator_value)))}"
    else:
        message = err.message if len(err.message) <= 200 else err.message[:200] + " …"
    return f"{message} (the {kind} CRD refuses it)"


def accepts(doc: Document) -> bool:
    """Whether ``doc`` is a CiliumNetworkPolicy or CiliumClusterwideNetworkPolicy."""
    return doc.api_version == API_VERSION and doc.kind in KINDS


def read(docs: Sequence[Document]) -> Translation[PolicySet]:
    """The Cilium policies among ``docs`` in the IR, fromRequires/toRequires expanded."""
    reader = _Reader()
    policies: list[Policy] = []
    for doc in docs:
        if not accepts(doc):
            continue
        data = doc.data
        errors = list(in_document_order(validator(doc.kind or "").iter_errors(data)))
        for err in errors:
            reader.error(doc.source.child(*err.absolute_path), _schema_message(err, doc.kind))
        if errors:
            continue
        if data.get("specs"):
            specs = list(enumerate(data["specs"]))
            refs = [doc.source.child("specs", i) for i, _ in specs]
        elif data.get("spec") is not None:
            specs = [(0, data["spec"])]
            refs = [doc.source.child("spec")]
        else:
            reader.error(doc.source, "a Cilium policy needs spec or specs")
            continue
        for (i, spec), ref in zip(specs, refs, strict=True):
            if not isinstance(spec, dict):
                reader.error(ref, "a rule must be an object")
                continue
            policies.extend(reader.policies(doc, spec, ref, i))
    if reader.problems:
        raise InputError(reader.problems)
    if reader.requirements:
        policies, losses = expand_requirements(policies, reader.requirements, reader.endpoint_peers)
        reader.losses.extend(losses)
    return Translation(
        PolicySet(tuple(policies)), FidelityReport(FORMAT, "canonical", tuple(reader.losses))
    )
