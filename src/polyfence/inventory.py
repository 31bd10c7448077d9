"""The cluster the engine evaluates policies on: namespaces, endpoints, nodes, services, addresses.

Read from the objects ``kubectl get … -o yaml`` prints. Workload controllers stand for their
pods when the input lists no Pods at all (a manifest repository has Deployments, a snapshot has
Pods). Selectors are never resolved here; the engine matches them.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

import jsonschema

from polyfence.errors import Diagnostic, InputError
from polyfence.model.document import Document
from polyfence.model.ports import protocol_number
from polyfence.schemas import in_document_order
from polyfence.semantics.intervals import IPSet, parse_cidr

NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
MESH_ROOT_NAMESPACE = "istio-system"  # Istio's default root namespace (mesh-wide configuration)
MTLS_MODES = ("STRICT", "PERMISSIVE", "DISABLE")
# Istio protocol selection: Service port names / appProtocols that declare a non-HTTP protocol.
# Other ports are HTTP or sniffed (Istio detects HTTP on undeclared ports), so may carry HTTP.
_OPAQUE_PROTOCOLS = frozenset({"tcp", "tls", "https", "mongo", "mysql", "redis", "udp"})
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob")
INVENTORY_KINDS = frozenset(
    {
        "Namespace",
        "Pod",
        "Node",
        "Service",
        "ServiceAccount",
        "ExternalAddresses",
        "DNSRecords",
        "PeerAuthentication",
        "WorkloadEndpoint",  # calicoctl get workloadendpoints -A: Calico's view of each pod
        "CiliumEndpoint",  # kubectl get cep -A: Cilium's view of each pod
        *WORKLOAD_KINDS,
    }
)
# Calico's profiles for namespaces (kns.NS) and service accounts (ksa.NS.SA) carry their labels
# (pcns.*, pcsa.*) and Kubernetes' default allow; any other profile may carry policy.
_CALICO_PREFIX = "projectcalico.org/"
_CALICO_PROFILE_PREFIXES = ("kns.", "ksa.")
_DEFAULT_PROFILE_RULES: tuple[object, ...] = (None, [], [{"action": "Allow"}])
# Cilium identity labels that are not the pod's own labels.
_CILIUM_NS_LABELS = "io.cilium.k8s.namespace.labels."
_CILIUM_SA = "io.cilium.k8s.policy.serviceaccount"
_CILIUM_RESERVED = ("io.cilium.k8s.", "io.kubernetes.pod.namespace")


# The shape of the fields the inventory reads, as the API server would have them: a located
# error for anything else, never a traceback or a silent default. Fields it does not read are
# free (dumps carry many).
_STRINGS = {"type": "object", "additionalProperties": {"type": "string"}}
_OBJECT: dict[str, Any] = {"type": "object"}
_LIST_OF_OBJECTS = {"type": "array", "items": _OBJECT}
_CONTAINERS = {
    "type": "array",
    "items": {
        "type": "object",
        "properties": {"name": {"type": "string"}, "ports": _LIST_OF_OBJECTS},
    },
}
_POD_SPEC = {
    "type": "object",
    "properties": {
        "containers": _CONTAINERS,
        "initContainers": _CONTAINERS,
        "serviceAccountName": {"type": "string"},
        "serviceAccount": {"type": "string"},
        "nodeName": {"type": "string"},
        "hostNetwork": {"type": "boolean"},
    },
}
_TEMPLATE = {
    "type": "object",
    "properties": {
        "metadata": {
            "type": "object",
            "properties": {"labels": _STRINGS, "annotations": _STRINGS},
        },
        "spec": _POD_SPEC,
    },
}
_WORKLOAD_SPEC = {"type": "object", "properties": {"template": _TEMPLATE}}
_SHAPES: dict[str, dict[str, Any]] = {
    "Pod": {
        "properties": {
            "spec": _POD_SPEC,
            "status": {
                "type": "object",
                "properties": {"podIP": {"type": "string"}, "podIPs": _LIST_OF_OBJECTS},
            },
        }
    },
    "CronJob": {
        "properties": {
            "spec": {
                "type": "object",
                "properties": {
                    "jobTemplate": {"type": "object", "properties": {"spec": _WORKLOAD_SPEC}}
                },
            }
        }
    },
    **{
        kind: {"properties": {"spec": _WORKLOAD_SPEC}}
        for kind in WORKLOAD_KINDS
        if kind != "CronJob"
    },
    "Node": {
        "properties": {"status": {"type": "object", "properties": {"addresses": _LIST_OF_OBJECTS}}}
    },
    "Service": {
        "properties": {
            "spec": {
                "type": "object",
                "properties": {
                    "selector": _STRINGS,
                    "ports": _LIST_OF_OBJECTS,
                    "clusterIPs": {"type": "array"},
                    "externalIPs": {"type": "array"},
                    "type": {"type": "string"},
                },
            }
        }
    },
    "DNSRecords": {
        "properties": {"spec": {"type": "object", "properties": {"records": _LIST_OF_OBJECTS}}}
    },
    "ExternalAddresses": {
        "properties": {"spec": {"type": "object", "properties": {"cidrs": {"type": "array"}}}}
    },
    "WorkloadEndpoint": {
        "properties": {
            "spec": {
                "type": "object",
                "properties": {
                    "ipNetworks": {"type": "array"},
                    "profiles": {"type": "array"},
                    "ports": _LIST_OF_OBJECTS,
                },
            }
        }
    },
    "CiliumEndpoint": {"properties": {"status": _OBJECT}},
    "Profile": {"properties": {"spec": _OBJECT}},
    "PeerAuthentication": {
        "properties": {
            "spec": {
                "type": "object",
                "properties": {
                    "mtls": {"type": "object", "properties": {"mode": {"type": "string"}}},
                    "selector": {
                        "type": "object",
                        "properties": {"matchLabels": _STRINGS},
                    },
                },
            }
        }
    },
}
_METADATA = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "namespace": {"type": "string"},
        "labels": _STRINGS,
        "annotations": _STRINGS,
    },
}


@functools.cache
def _shape(kind: str) -> jsonschema.protocols.Validator:
    schema = {"type": "object", **_SHAPES.get(kind, {})}
    schema.setdefault("properties", {})["metadata"] = _METADATA
    return jsonschema.Draft202012Validator(schema)


def _misshapen(doc: Document, problems: list[Diagnostic]) -> bool:
    """Record a located error per field of the wrong type; whether there was any."""
    found = False
    for err in in_document_order(_shape(str(doc.kind)).iter_errors(doc.data)):
        problems.append(Diagnostic(doc.source.child(*err.absolute_path), err.message))
        found = True
    return found


def is_inventory(doc: Document) -> bool:
    """Whether the document describes the cluster (endpoints, namespaces …) rather than policy."""
    if doc.kind in INVENTORY_KINDS:
        return True
    if doc.kind != "Profile" or not str(doc.api_version or "").startswith(
        ("projectcalico.org/", "crd.projectcalico.org/")
    ):
        return False
    name = str((doc.data.get("metadata") or {}).get("name") or "")
    spec = doc.data.get("spec") or {}
    return (
        name.startswith(_CALICO_PROFILE_PREFIXES)
        and isinstance(spec, dict)
        and spec.get("ingress") in _DEFAULT_PROFILE_RULES
        and spec.get("egress") in _DEFAULT_PROFILE_RULES
    )


@dataclass(frozen=True, slots=True)
class NamedPort:
    name: str
    protocol: int
    port: int


@dataclass(frozen=True, slots=True)
class Namespace:
    name: str
    labels: Mapping[str, str] = field(default_factory=dict, hash=False)


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A pod (or a workload standing for its pods), a node, or a named external address."""

    kind: str  # Pod, Deployment, …, Node, External
    namespace: str | None
    name: str
    labels: Mapping[str, str] = field(default_factory=dict, hash=False)
    service_account: str | None = None
    ips: tuple[str, ...] = ()
    named_ports: tuple[NamedPort, ...] = ()
    node: str | None = None
    host_network: bool = False
    host_ports: tuple[NamedPort, ...] = ()  # containerPorts published on the node (name may be "")
    container_ports: tuple[NamedPort, ...] = ()  # every declared containerPort (name may be "")
    # Cloud firewall groups on the endpoint's interface (AWS security group ids), when a cloud
    # inventory says so; rules referencing a group match the endpoints that carry it.
    security_groups: tuple[str, ...] = ()
    # Service mesh: whether a proxy (Istio sidecar or ztunnel) handles the pod's inbound TCP,
    # the peer-authentication mode that applies to it (None: the profile's default), and the
    # container ports a Service declares as non-HTTP (Istio then treats them as plain TCP).
    mesh: bool = False
    mtls: str | None = None
    opaque_ports: tuple[int, ...] = ()

    @property
    def is_pod(self) -> bool:
        return self.kind not in ("Node", "External")

    @property
    def ref(self) -> str:
        """``namespace/name[Kind]`` for workloads, ``name[Node]`` for nodes."""
        if self.namespace:
            return f"{self.namespace}/{self.name}[{self.kind}]"
        return f"{self.name}[{self.kind}]"

    def resolve_port(self, name: str, protocol: int) -> int | None:
        for named in self.named_ports:
            if named.name == name and named.protocol == protocol:
                return named.port
        return None


@dataclass(frozen=True, slots=True)
class ServicePort:
    protocol: int
    port: int
    target: int | str | None = None  # targetPort: number, container port name, or same as port
    node_port: int | None = None
    opaque: bool = False  # declared non-HTTP by name or appProtocol (Istio protocol selection)


@dataclass(frozen=True, slots=True)
class Service:
    namespace: str
    name: str
    selector: Mapping[str, str] | None = field(default=None, hash=False)
    cluster_ips: tuple[str, ...] = ()
    type: str = "ClusterIP"
    ports: tuple[ServicePort, ...] = ()
    external_ips: tuple[str, ...] = ()

    @property
    def published(self) -> bool:
        """Reachable from outside the cluster network: a load balancer, node ports or externalIPs."""
        return self.type in ("LoadBalancer", "NodePort") or bool(self.external_ips)

    def selects(self, endpoint: Endpoint) -> bool:
        if not self.selector or endpoint.namespace != self.namespace or not endpoint.is_pod:
            return False
        return all(endpoint.labels.get(k) == v for k, v in self.selector.items())


@dataclass(frozen=True, slots=True)
class Inventory:
    """An immutable cluster snapshot."""

    namespaces: tuple[Namespace, ...] = ()
    endpoints: tuple[Endpoint, ...] = ()
    services: tuple[Service, ...] = ()
    service_account_labels: Mapping[tuple[str, str], Mapping[str, str]] = field(
        default_factory=dict, hash=False
    )
    external: IPSet = field(default_factory=IPSet.empty)
    external_names: tuple[tuple[str, str], ...] = ()  # (name, cidr) as declared
    dns: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (name, addresses): DNS answers seen
    _ns_index: dict[str, Namespace] = field(
        default_factory=dict, init=False, compare=False, repr=False, hash=False
    )

    def __post_init__(self) -> None:
        self._ns_index.update((ns.name, ns) for ns in self.namespaces)

    def namespace(self, name: str) -> Namespace:
        found = self._ns_index.get(name)
        return found if found is not None else Namespace(name, {NAMESPACE_NAME_LABEL: name})

    @property
    def pods(self) -> tuple[Endpoint, ...]:
        return tuple(e for e in self.endpoints if e.is_pod)

    @property
    def nodes(self) -> tuple[Endpoint, ...]:
        return tuple(e for e in self.endpoints if e.kind == "Node")

    def find(self, ref: str) -> Endpoint | None:
        """An endpoint by ``ns/name``, ``ns/name[Kind]`` or node name."""
        name, _, kind = ref.partition("[")
        kind = kind.rstrip("]")
        ns, _, short = name.rpartition("/")
        for ep in self.endpoints:
            if ep.name == short and (ep.namespace or "") == ns and (not kind or ep.kind == kind):
                return ep
        return None

    def merge(self, other: Inventory) -> Inventory:
        return build_inventory(
            list(self.namespaces) + list(other.namespaces),
            list(self.endpoints) + list(other.endpoints),
            list(self.services) + list(other.services),
            {**self.service_account_labels, **other.service_account_labels},
            self.external | other.external,
            self.external_names + other.external_names,
            self.dns + other.dns,
        )


# building ---------------------------------------------------------------------------------


def build_inventory(
    namespaces: Iterable[Namespace],
    endpoints: Iterable[Endpoint],
    services: Iterable[Service] = (),
    sa_labels: Mapping[tuple[str, str], Mapping[str, str]] | None = None,
    external: IPSet | None = None,
    external_names: tuple[tuple[str, str], ...] = (),
    dns: tuple[tuple[str, tuple[str, ...]], ...] = (),
) -> Inventory:
    """An inventory in which every namespace an endpoint names exists and carries its name label."""
    by_name: dict[str, Namespace] = {}
    for ns in namespaces:
        labels = dict(ns.labels)
        labels.setdefault(NAMESPACE_NAME_LABEL, ns.name)
        by_name[ns.name] = Namespace(ns.name, MappingProxyType(labels))
    eps = tuple(endpoints)
    for ep in eps:
        if ep.namespace and ep.namespace not in by_name:
            by_name[ep.namespace] = Namespace(
                ep.namespace, MappingProxyType({NAMESPACE_NAME_LABEL: ep.namespace})
            )
    return Inventory(
        tuple(by_name.values()),
        eps,
        tuple(services),
        MappingProxyType(dict(sa_labels or {})),
        external or IPSet.empty(),
        external_names,
        dns,
    )


def _labels(
    value: Any, where: Document, pointer: str, problems: list[Diagnostic]
) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        problems.append(
            Diagnostic(
                where.source.child(*pointer.split("/")[1:]), "labels must be a map of strings"
            )
        )
        return {}
    return dict(value)


def _named_ports(pod_spec: Mapping[str, Any]) -> tuple[NamedPort, ...]:
    out: list[NamedPort] = []
    for container in list(pod_spec.get("containers") or []) + list(
        pod_spec.get("initContainers") or []
    ):
        if not isinstance(container, dict):
            continue
        for port in container.get("ports") or []:
            if (
                isinstance(port, dict)
                and port.get("name")
                and isinstance(port.get("containerPort"), int)
            ):
                try:
                    proto = protocol_number(port.get("protocol") or "TCP")
                except ValueError:
                    continue
                out.append(NamedPort(str(port["name"]), proto, int(port["containerPort"])))
    return tuple(out)


def _declared_ports(pod_spec: Mapping[str, Any], key: str = "hostPort") -> tuple[NamedPort, ...]:
    out: list[NamedPort] = []
    for container in list(pod_spec.get("containers") or []) + list(
        pod_spec.get("initContainers") or []
    ):
        if not isinstance(container, dict):
            continue
        for port in container.get("ports") or []:
            if isinstance(port, dict) and isinstance(port.get(key), int) and port[key]:
                try:
                    proto = protocol_number(port.get("protocol") or "TCP")
                except ValueError:
                    continue
                out.append(NamedPort(str(port.get("name") or ""), proto, int(port[key])))
    return tuple(out)


def _service_ports(spec: Mapping[str, Any]) -> tuple[ServicePort, ...]:
    out: list[ServicePort] = []
    for port in spec.get("ports") or []:
        if not isinstance(port, dict) or not isinstance(port.get("port"), int):
            continue
        try:
            proto = protocol_number(port.get("protocol") or "TCP")
        except ValueError:
            continue
        target = port.get("targetPort")
        node_port = port.get("nodePort")
        declared = str(port.get("appProtocol") or port.get("name") or "").lower()
        out.append(
            ServicePort(
                proto,
                int(port["port"]),
                target if isinstance(target, int | str) else None,
                node_port if isinstance(node_port, int) else None,
                declared.split("-", 1)[0] in _OPAQUE_PROTOCOLS,
            )
        )
    return tuple(out)


def _pod_template(doc: Document) -> tuple[dict[str, Any], dict[str, Any]]:
    spec = doc.data.get("spec") or {}
    if doc.kind == "CronJob":
        spec = ((spec.get("jobTemplate") or {}).get("spec")) or {}
    template = spec.get("template") or {}
    return (template.get("metadata") or {}), (template.get("spec") or {})


def _valid_ip(text: Any) -> bool:
    try:
        parse_cidr(str(text))
    except ValueError:
        return False
    return True


def _mesh_hint(meta: Mapping[str, Any], spec: Mapping[str, Any]) -> bool | None:
    """What the pod itself says about the mesh: an injected proxy or an explicit opt in/out."""
    if spec.get("hostNetwork"):
        return False  # Istio never injects hostNetwork pods
    containers = list(spec.get("containers") or []) + list(spec.get("initContainers") or [])
    if any(isinstance(c, dict) and c.get("name") == "istio-proxy" for c in containers):
        return True
    annotations = meta.get("annotations") or {}
    labels = meta.get("labels") or {}
    if not isinstance(annotations, dict):
        annotations = {}
    if (
        annotations.get("sidecar.istio.io/status")
        or annotations.get("ambient.istio.io/redirection") == "enabled"
    ):
        return True
    for source in (labels, annotations):  # the label takes precedence over the annotation
        value = source.get("sidecar.istio.io/inject") if isinstance(source, dict) else None
        if value is not None:
            return str(value).lower() == "true"
    if isinstance(labels, dict) and labels.get("istio.io/dataplane-mode") == "none":
        return False
    return None


def _namespace_in_mesh(labels: Mapping[str, str]) -> bool:
    """Istio's injection webhook (``istio-injection``, revision labels) or ambient enrolment."""
    injection = labels.get("istio-injection")
    if injection is not None:
        return injection == "enabled"
    return "istio.io/rev" in labels or labels.get("istio.io/dataplane-mode") == "ambient"


@dataclass(frozen=True, slots=True)
class _PeerAuth:
    namespace: str
    selector: Mapping[str, str] | None
    mode: str  # STRICT | PERMISSIVE | DISABLE | UNSET


def _peer_auth(doc: Document, problems: list[Diagnostic]) -> _PeerAuth | None:
    meta = doc.data.get("metadata") or {}
    spec = doc.data.get("spec") or {}
    if not isinstance(spec, dict):
        problems.append(Diagnostic(doc.source.child("spec"), "spec must be an object"))
        return None
    mode = str((spec.get("mtls") or {}).get("mode") or "UNSET").upper()
    if mode not in (*MTLS_MODES, "UNSET"):
        problems.append(
            Diagnostic(
                doc.source.child("spec", "mtls", "mode"),
                f"unknown mTLS mode {mode!r} (STRICT, PERMISSIVE, DISABLE or UNSET)",
            )
        )
        return None
    selector = (spec.get("selector") or {}).get("matchLabels")
    if selector is not None and not isinstance(selector, dict):
        problems.append(
            Diagnostic(doc.source.child("spec", "selector", "matchLabels"), "must be a map")
        )
        return None
    return _PeerAuth(
        str(meta.get("namespace") or "default"),
        {str(k): str(v) for k, v in selector.items()} if selector else None,
        mode,
    )


def _mtls_mode(ep: Endpoint, auths: list[_PeerAuth]) -> str | None:
    """Workload policy, else namespace policy, else mesh-wide policy; UNSET inherits."""
    levels: list[list[_PeerAuth]] = [[], [], []]
    for auth in auths:
        if auth.namespace == ep.namespace and auth.selector:
            if all(ep.labels.get(k) == v for k, v in auth.selector.items()):
                levels[0].append(auth)
        elif auth.namespace == ep.namespace and not auth.selector:
            levels[1].append(auth)
        elif auth.namespace == MESH_ROOT_NAMESPACE and not auth.selector:
            levels[2].append(auth)
    for level in levels:
        for auth in level:
            if auth.mode != "UNSET":
                return auth.mode
    return None


def _with_mesh(
    endpoints: list[Endpoint],
    hints: dict[int, bool | None],
    namespaces: list[Namespace],
    auths: list[_PeerAuth],
) -> list[Endpoint]:
    ns_labels = {ns.name: ns.labels for ns in namespaces}
    out: list[Endpoint] = []
    for ep in endpoints:
        hint = hints.get(id(ep))
        mesh = (
            hint if hint is not None else _namespace_in_mesh(ns_labels.get(ep.namespace or "", {}))
        )
        if mesh:
            ep = replace(ep, mesh=True, mtls=_mtls_mode(ep, auths))
        out.append(ep)
    return out


def _opaque_ports(endpoints: list[Endpoint], services: list[Service]) -> list[Endpoint]:
    """Container ports that a selecting Service declares non-HTTP."""
    out: list[Endpoint] = []
    for ep in endpoints:
        ports: set[int] = set()
        for svc in services:
            if not svc.selects(ep):
                continue
            for sp in svc.ports:
                if not sp.opaque:
                    continue
                if isinstance(sp.target, int):
                    ports.add(sp.target)
                elif isinstance(sp.target, str):
                    resolved = ep.resolve_port(sp.target, sp.protocol)
                    if resolved is not None:
                        ports.add(resolved)
                else:
                    ports.add(sp.port)
        out.append(replace(ep, opaque_ports=tuple(sorted(ports))) if ports else ep)
    return out


def _address(text: Any) -> str | None:
    """``10.0.0.1/32`` (how Calico lists an endpoint's address) or a bare address."""
    value = str(text or "").strip()
    for suffix in ("/32", "/128"):
        value = value.removesuffix(suffix)
    return value if value and "/" not in value and _valid_ip(value) else None


def _endpoint_ports(items: Any) -> tuple[NamedPort, ...]:
    out: list[NamedPort] = []
    for port in items if isinstance(items, list) else []:
        if isinstance(port, dict) and port.get("name") and isinstance(port.get("port"), int):
            try:
                proto = protocol_number(str(port.get("protocol") or "TCP"))
            except ValueError:
                continue
            out.append(NamedPort(str(port["name"]), proto, int(port["port"])))
    return tuple(out)


def _workload_endpoint(
    doc: Document, ns: str, name: str, labels: dict[str, str], problems: list[Diagnostic]
) -> Endpoint:
    """A Calico WorkloadEndpoint as its pod: Calico's automatic labels are the IR's own facts
    (namespace, service account), so only the pod's labels are kept."""
    spec = doc.data.get("spec") or {}
    if not isinstance(spec, dict):
        problems.append(Diagnostic(doc.source.child("spec"), "spec must be an object"))
        spec = {}
    account = spec.get("serviceAccountName") or labels.get(f"{_CALICO_PREFIX}serviceaccount")
    for profile in spec.get("profiles") or []:
        if not account and isinstance(profile, str) and profile.startswith(f"ksa.{ns}."):
            account = profile[len(f"ksa.{ns}.") :]
    networks = spec.get("ipNetworks") or []
    ips = tuple(a for a in (_address(n) for n in networks if isinstance(networks, list)) if a)
    return Endpoint(
        "Pod",
        ns,
        str(spec.get("pod") or name),
        {k: v for k, v in labels.items() if not k.startswith(_CALICO_PREFIX)},
        str(account or "default"),
        ips,
        _endpoint_ports(spec.get("ports")),
        str(spec["node"]) if spec.get("node") else None,
    )


def _cilium_endpoint(
    doc: Document,
    ns: str,
    name: str,
    labels: dict[str, str],
    derived_ns: dict[str, dict[str, str]],
    problems: list[Diagnostic],
) -> Endpoint:
    """A CiliumEndpoint as its pod: identity labels give the pod's labels, its namespace's
    labels and its service account (Cilium policies select on exactly these)."""
    status = doc.data.get("status") or {}
    if not isinstance(status, dict):
        problems.append(Diagnostic(doc.source.child("status"), "status must be an object"))
        status = {}
    identity = status.get("identity") or {}
    raw = identity.get("labels") if isinstance(identity, dict) else None
    own: dict[str, str] = {}
    ns_labels: dict[str, str] = {}
    account = None
    for item in raw if isinstance(raw, list) else []:
        source, _, pair = str(item).partition(":")
        key, _, value = pair.partition("=")
        if source != "k8s" or not key:
            continue
        if key.startswith(_CILIUM_NS_LABELS):
            ns_labels[key[len(_CILIUM_NS_LABELS) :]] = value
        elif key == _CILIUM_SA:
            account = value
        elif not key.startswith(_CILIUM_RESERVED):
            own[key] = value
    if ns_labels:
        derived_ns.setdefault(ns, {}).update(ns_labels)
    networking = status.get("networking") or {}
    addressing = networking.get("addressing") if isinstance(networking, dict) else None
    ips = tuple(
        a
        for entry in (addressing if isinstance(addressing, list) else [])
        if isinstance(entry, dict)
        for a in (_address(entry.get("ipv4")), _address(entry.get("ipv6")))
        if a
    )
    return Endpoint(
        "Pod",
        ns,
        name,
        own if raw is not None else labels,
        account or "default",
        ips,
        _endpoint_ports(status.get("named-ports")),
    )


def _calico_profile(
    doc: Document,
    name: str,
    derived_ns: dict[str, dict[str, str]],
    sa_labels: dict[tuple[str, str], Mapping[str, str]],
    problems: list[Diagnostic],
) -> None:
    """``kns.NS`` gives NS's labels (``pcns.*``), ``ksa.NS.SA`` the account's (``pcsa.*``)."""
    apply = (doc.data.get("spec") or {}).get("labelsToApply") or {}
    if not isinstance(apply, dict):
        problems.append(
            Diagnostic(doc.source.child("spec", "labelsToApply"), "labelsToApply must be a map")
        )
        return
    if name.startswith("kns."):
        labels = {k[5:]: str(v) for k, v in apply.items() if str(k).startswith("pcns.")}
        labels.pop(_CALICO_PREFIX + "name", None)
        derived_ns.setdefault(name[4:], {}).update(labels)
    else:
        ns, _, account = name[4:].partition(".")
        labels = {k[5:]: str(v) for k, v in apply.items() if str(k).startswith("pcsa.")}
        labels.pop(_CALICO_PREFIX + "name", None)
        if ns and account:
            sa_labels.setdefault((ns, account), labels)


def inventory_from_documents(docs: Iterable[Document]) -> Inventory:
    """Build an inventory from cluster objects; other kinds are ignored here."""
    problems: list[Diagnostic] = []
    hints: dict[int, bool | None] = {}
    auths: list[_PeerAuth] = []
    namespaces: list[Namespace] = []
    pods: list[Endpoint] = []
    workloads: list[Endpoint] = []
    nodes: list[Endpoint] = []
    services: list[Service] = []
    sa_labels: dict[tuple[str, str], Mapping[str, str]] = {}
    external = IPSet.empty()
    external_names: list[tuple[str, str]] = []
    dns: list[tuple[str, tuple[str, ...]]] = []
    endpoint_views: list[Endpoint] = []  # WorkloadEndpoints and CiliumEndpoints
    derived_ns: dict[str, dict[str, str]] = {}  # namespace labels Calico or Cilium reported
    for doc in docs:
        kind = doc.kind
        if not isinstance(doc.data, dict) or not is_inventory(doc) or _misshapen(doc, problems):
            continue
        meta = doc.data.get("metadata") or {}
        name = str(meta.get("name") or "")
        ns = str(meta.get("namespace") or "default")
        labels = _labels(meta.get("labels"), doc, "/metadata/labels", problems)
        if kind == "Namespace":
            namespaces.append(Namespace(name, labels))
        elif kind == "Pod":
            spec = doc.data.get("spec") or {}
            status = doc.data.get("status") or {}
            ips = [p.get("ip") for p in status.get("podIPs") or [] if isinstance(p, dict)]
            if not ips and status.get("podIP"):
                ips = [status["podIP"]]
            pod = Endpoint(
                "Pod",
                ns,
                name,
                labels,
                spec.get("serviceAccountName") or spec.get("serviceAccount") or "default",
                tuple(str(ip) for ip in ips if _valid_ip(ip)),
                _named_ports(spec),
                spec.get("nodeName"),
                bool(spec.get("hostNetwork")),
                _declared_ports(spec),
                _declared_ports(spec, "containerPort"),
            )
            pods.append(pod)
            hints[id(pod)] = _mesh_hint(meta, spec)
        elif kind in WORKLOAD_KINDS:
            tmeta, tspec = _pod_template(doc)
            tlabels = _labels(tmeta.get("labels"), doc, "/spec/template/metadata/labels", problems)
            workload = Endpoint(
                kind,
                ns,
                name,
                tlabels,
                tspec.get("serviceAccountName") or tspec.get("serviceAccount") or "default",
                (),
                _named_ports(tspec),
                None,
                bool(tspec.get("hostNetwork")),
                _declared_ports(tspec),
                _declared_ports(tspec, "containerPort"),
            )
            workloads.append(workload)
            hints[id(workload)] = _mesh_hint(tmeta, tspec)
        elif kind == "WorkloadEndpoint":
            endpoint_views.append(_workload_endpoint(doc, ns, name, labels, problems))
        elif kind == "CiliumEndpoint":
            endpoint_views.append(_cilium_endpoint(doc, ns, name, labels, derived_ns, problems))
        elif kind == "Profile":
            _calico_profile(doc, name, derived_ns, sa_labels, problems)
        elif kind == "PeerAuthentication":
            auth = _peer_auth(doc, problems)
            if auth is not None:
                auths.append(auth)
        elif kind == "Node":
            addresses = (doc.data.get("status") or {}).get("addresses") or []
            node_ips = tuple(
                str(a["address"])
                for a in addresses
                if isinstance(a, dict)
                and a.get("type") in ("InternalIP", "ExternalIP")
                and _valid_ip(a.get("address"))
            )
            nodes.append(Endpoint("Node", None, name, labels, None, node_ips))
        elif kind == "Service":
            spec = doc.data.get("spec") or {}
            cluster_ips = tuple(
                str(ip)
                for ip in spec.get("clusterIPs") or [spec.get("clusterIP")]
                if ip and _valid_ip(ip)
            )
            sel = spec.get("selector")
            external_ips = tuple(str(ip) for ip in spec.get("externalIPs") or [] if _valid_ip(ip))
            services.append(
                Service(
                    ns,
                    name,
                    dict(sel) if isinstance(sel, dict) else None,
                    cluster_ips,
                    str(spec.get("type") or "ClusterIP"),
                    _service_ports(spec),
                    external_ips,
                )
            )
        elif kind == "ServiceAccount":
            sa_labels[(ns, name)] = labels
        elif kind == "DNSRecords":
            # polyfence.dev/v1alpha1: spec.records = [{name, addresses: [...]}], the answers
            # FQDN peers resolve to (Cilium learns them from DNS replies).
            for i, record in enumerate((doc.data.get("spec") or {}).get("records") or []):
                where = doc.source.child("spec", "records", i)
                fqdn = str((record or {}).get("name") or "").rstrip(".").lower()
                addresses = [str(a) for a in (record or {}).get("addresses") or []]
                bad = [a for a in addresses if not _valid_ip(a)]
                if not fqdn or bad:
                    problems.append(
                        Diagnostic(
                            where, f"a record needs a name and valid addresses, not {record!r}"
                        )
                    )
                    continue
                dns.append((fqdn, tuple(addresses)))
        elif kind == "ExternalAddresses":
            cidrs = (doc.data.get("spec") or {}).get("cidrs") or []
            for i, cidr in enumerate(cidrs):
                try:
                    external |= IPSet.from_cidr(str(cidr))
                    external_names.append((name, str(cidr)))
                except ValueError as exc:
                    problems.append(Diagnostic(doc.source.child("spec", "cidrs", i), str(exc)))
    if problems:
        raise InputError(problems)
    # A pod listed both as a Pod and as Calico's or Cilium's endpoint is one pod: the Pod wins.
    listed = {(p.namespace, p.name) for p in pods}
    pods.extend(e for e in endpoint_views if (e.namespace, e.name) not in listed)
    given = {n.name for n in namespaces}
    namespaces = [
        *(Namespace(n, labels) for n, labels in derived_ns.items() if n not in given),
        *namespaces,
    ]
    endpoints = _with_mesh(pods if pods else workloads, hints, namespaces, auths)
    endpoints = _opaque_ports(endpoints, services)
    return build_inventory(
        namespaces,
        [*endpoints, *nodes],
        services,
        sa_labels,
        external,
        tuple(external_names),
        tuple(dns),
    )
