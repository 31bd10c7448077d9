"""Reading networking.k8s.io/v1 NetworkPolicy into the canonical model: exact for every
construct; ``lint`` warns about legal policies that rarely mean what they say.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Sequence
from typing import Any

import jsonschema

from polyfence.errors import Diagnostic, InputError
from polyfence.fidelity import FidelityReport
from polyfence.model.document import Document
from polyfence.model.peers import ANY_PEER, IpMatch, Peer
from polyfence.model.policy import (
    DEFAULT_TIER,
    KUBERNETES_POLICY_ORDER,
    NOT_GOVERNED,
    Action,
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
    LabelSelectorError,
    Selector,
    from_label_selector,
)
from polyfence.schemas import in_document_order, input_schema
from polyfence.semantics.intervals import IntervalSet, IPSet
from polyfence.translation import RenderOptions, Translation

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
    schema = input_schema("kubernetes-networkpolicy.json")
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
        cidr = _network(value.get("cidr"))
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
        # ``status`` is the server's (some releases served an empty one; dumps keep it): it
        # carries no policy, so it is read past rather than validated.
        served = {k: v for k, v in data.items() if k != "status"}
        errors = list(in_document_order(_validator().iter_errors(served)))
        for err in errors:
            self.error(ref.child(*err.absolute_path), err.message)
        if errors:
            return None
        meta = data.get("metadata") or {}
        name = meta.get("name")
        if not name:
            self.error(ref.child("metadata", "name"), "a NetworkPolicy needs metadata.name")
        # Names that are merely not DNS-1123 are warned about by polyfence.io.names.
        ns = meta.get("namespace") or "default"
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


def _network(cidr: Any) -> Any:
    """The network of a CIDR with host bits set (``10.1.2.3/8`` is ``10.0.0.0/8``), as the API
    server accepts it (with a warning) and implementations parse it; anything else unchanged."""
    if not isinstance(cidr, str) or "/" not in cidr:
        return cidr
    try:
        network = ipaddress.ip_network(cidr.strip(), strict=False)
    except ValueError:
        return cidr
    return str(network) if str(network) != cidr.strip() else cidr


def _host_bits(spec: dict[str, Any], ref: SourceRef) -> list[Diagnostic]:
    out = []
    for key, side in (("ingress", "from"), ("egress", "to")):
        for i, rule in enumerate(spec.get(key) or []):
            for j, peer in enumerate(
                (rule or {}).get(side) or [] if isinstance(rule, dict) else []
            ):
                block = peer.get("ipBlock") if isinstance(peer, dict) else None
                cidr = block.get("cidr") if isinstance(block, dict) else None
                network = _network(cidr)
                if network != cidr:
                    out.append(
                        Diagnostic(
                            ref.child("spec", key, i, side, j, "ipBlock", "cidr"),
                            f"{cidr} has host bits set: evaluated as {network}, as the API "
                            "server and network plugins read it",
                        )
                    )
    return out


def lint(doc: Document) -> list[Diagnostic]:
    """Semantic warnings on a valid policy: things that are legal but rarely meant."""
    spec = doc.data.get("spec") or {}
    out: list[Diagnostic] = _host_bits(spec, doc.source) if isinstance(spec, dict) else []
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


def accepts(doc: Document) -> bool:
    """Whether ``doc`` is a NetworkPolicy this reader reads."""
    return doc.kind == KIND and doc.api_version == API_VERSION


def read(docs: Sequence[Document]) -> Translation[PolicySet]:
    """The NetworkPolicies among ``docs`` in the IR; every problem at once as an InputError."""
    problems: list[Diagnostic] = []
    policies: list[Policy] = []
    for doc in docs:
        if not accepts(doc):
            continue
        reader = _Reader(doc)
        pol = reader.read()
        problems.extend(reader.problems)
        if pol is not None:
            policies.append(pol)
    if problems:
        raise InputError(problems)
    return Translation(PolicySet(tuple(policies)), FidelityReport(FORMAT, "canonical"))
