"""Reachability checks: internet in and out, the metadata service, the control plane and
sensitive ports — each decided by the engine after every policy layer, with witnesses."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from polyfence.compliance.checks._common import MAX_EXPLAINED, explained, names, public_address
from polyfence.compliance.context import AuditContext, workload_matches
from polyfence.compliance.model import (
    CheckOutcome,
    Finding,
    Level,
    ObjectRef,
    Severity,
    Status,
    check,
    outcome,
)
from polyfence.inventory import Endpoint, Service
from polyfence.model.ports import protocol_name
from polyfence.semantics.connset import EMPTY, FULL, ConnSet
from polyfence.semantics.engine import EndpointClass
from polyfence.semantics.intervals import IntervalSet, IPSet

TCP = 6
METADATA_ADDRESSES = ("169.254.169.254", "fd00:ec2::254")
CONTROL_PLANE_PORTS = ConnSet.single(
    TCP, IntervalSet.of((10250, 10250), (2379, 2380), (10257, 10257), (10259, 10259))
)
DNS_LABELS = (
    ("k8s-app", "kube-dns"),
    ("k8s-app", "coredns"),
    ("app.kubernetes.io/name", "coredns"),
)


@dataclass(frozen=True, slots=True)
class Exposure:
    endpoint: Endpoint
    allowed: ConnSet  # what the internet may open, after policy, on the published ports
    via: tuple[str, ...]
    objects: tuple[ObjectRef, ...]


def _service_targets(svc: Service, ep: Endpoint) -> ConnSet:
    out = EMPTY
    for port in svc.ports:
        target = port.target
        if isinstance(target, str) and not target.isdigit():
            number = ep.resolve_port(target, port.protocol)
            if number is None:
                continue
        elif target is None:
            number = port.port
        else:
            number = int(target)
        out = out | ConnSet.single(port.protocol, IntervalSet.point(number))
    return out


def _ingress_backends(ctx: AuditContext) -> dict[tuple[str, str], list[str]]:
    """(namespace, service) -> the Ingress objects routing to it."""
    out: dict[tuple[str, str], list[str]] = defaultdict(list)
    for doc in ctx.documents_of_kind("Ingress"):
        meta = doc.data.get("metadata") or {}
        ns = str(meta.get("namespace") or "default")
        spec = doc.data.get("spec") or {}
        backends = [spec.get("defaultBackend") or spec.get("backend") or {}]
        for rule in spec.get("rules") or []:
            for path in ((rule or {}).get("http") or {}).get("paths") or []:
                backends.append((path or {}).get("backend") or {})
        for backend in backends:
            if not isinstance(backend, dict):
                continue
            name = (backend.get("service") or {}).get("name") or backend.get("serviceName")
            if name:
                out[(ns, str(name))].append(f"Ingress {ns}/{meta.get('name')}")
    return out


def internet_exposures(ctx: AuditContext) -> list[Exposure]:
    """Workloads the internet can open connections to through a publishing path."""
    if not ctx.has_workloads:
        return []
    inbound = ctx.internet_inbound
    backends = _ingress_backends(ctx)
    out = []
    for ep in ctx.inventory.pods:
        if ep.host_network:
            continue
        cls = ctx.class_of(ep)
        via: list[str] = []
        published = EMPTY
        objects: list[ObjectRef] = []
        for svc in ctx.inventory.services:
            if not svc.selects(ep):
                continue
            targets = _service_targets(svc, ep)
            routes = list(backends.get((svc.namespace, svc.name), []))
            if svc.published:
                routes.insert(0, f"Service {svc.namespace}/{svc.name} ({svc.type})")
            if routes and targets:
                via.extend(routes)
                published = published | targets
                objects.append(ctx.object_ref("Service", svc.namespace, svc.name))
        for hp in ep.host_ports:
            container = next((c for c in ep.container_ports if c.protocol == hp.protocol), None)
            port = container.port if container is not None else hp.port
            via.append(f"hostPort {protocol_name(hp.protocol)}/{hp.port}")
            published = published | ConnSet.single(hp.protocol, IntervalSet.point(port))
        if not via:
            continue
        allowed = inbound.get(cls.index, EMPTY) & published
        if allowed:
            out.append(Exposure(ep, allowed, tuple(dict.fromkeys(via)), tuple(objects)))
    return out


@check(
    "NSEG-K09",
    "Internet ingress exposure limited to approved public workloads",
    Severity.HIGH,
    Level.SEMANTIC,
    "Only system components authorised to offer public services may be reachable from untrusted "
    "networks (PCI DSS 1.4.2, NIST SC-7). A workload counts as exposed when a LoadBalancer, "
    "NodePort, externalIP, Ingress or hostPort publishes it and every policy layer lets "
    "internet addresses reach the published port.",
    "Restrict ingress of the workload to the load balancer's or ingress controller's addresses, "
    "unpublish it, or list it in `public_workloads`.",
)
def k09_internet_ingress(ctx: AuditContext) -> CheckOutcome:
    info = k09_internet_ingress.info
    if not ctx.has_workloads:
        return CheckOutcome(
            Status.UNKNOWN, "the input has no workloads: exposure cannot be computed"
        )
    budget = [MAX_EXPLAINED]
    findings = []
    for exp in internet_exposures(ctx):
        ep = exp.endpoint
        if not ctx.in_scope_ns(ep.namespace):
            continue
        public = workload_matches(ep, ctx.config.public_workloads)
        severity = Severity.CRITICAL if ctx.sensitive(ep.namespace) else info.severity
        source = next(
            (
                public_address(c)
                for c in ctx.public_classes
                if ctx.allowed(c, ctx.class_of(ep)) & exp.allowed
            ),
            "0.0.0.0",
        )
        ev = explained(ctx, budget, source, ep, exp.allowed)
        evidence = (ev,) if ev else ()
        ports = _ports_text(exp.allowed)
        findings.append(
            Finding(
                info.id, Status.PASS if public else Status.FAIL, severity, ep.ref,
                f"{ep.ref} is reachable from the internet on {ports} via {', '.join(exp.via)}"
                + (" (approved public workload)" if public else ""),
                exp.objects + ((ev and ctx.deciding_objects(ev)) or ()),
                evidence, observed=ports, expected="not reachable from the internet",
            )
        )  # fmt: skip
    return outcome(
        info,
        findings,
        passed="only approved public workloads are reachable from the internet",
        failed="{fail} workloads outside the public list are reachable from the internet",
        empty="no workload is published to the internet and allowed by policy",
        empty_status=Status.PASS,
    )


def _ports_text(conns: ConnSet) -> str:
    if conns == FULL:
        return "all traffic"
    parts = [f"{proto} {ports}" for proto, ports in conns.by_protocol().items() if ports]
    if len(parts) > 4:
        parts = [*parts[:3], f"{len(parts) - 3} more protocols"]
    return "; ".join(parts) or "nothing"


def _egress_to(ctx: AuditContext, targets: list[EndpointClass]) -> dict[int, ConnSet]:
    out: dict[int, ConnSet] = defaultdict(lambda: EMPTY)
    wanted = {c.index for c in targets}
    for (s, d), conns in ctx.matrix.items():
        if d in wanted:
            out[s] = out[s] | conns
    return out


@check(
    "NSEG-K10",
    "Internet egress restricted",
    Severity.MEDIUM,
    Level.SEMANTIC,
    "Containers must not send traffic to networks of another sensitivity, the internet above "
    "all (NIST 800-190 4.4.2, PCI DSS 1.3.2); egress is allowed only through declared gateways.",
    "Add egress policies that allow only the destinations the workload needs, through an egress "
    "gateway or proxy listed in `egress_gateways`.",
)
def k10_internet_egress(ctx: AuditContext) -> CheckOutcome:
    info = k10_internet_egress.info
    if not ctx.has_workloads:
        return CheckOutcome(Status.UNKNOWN, "the input has no workloads: egress cannot be computed")
    gateways = IPSet.from_cidrs(ctx.config.egress_gateways)
    from polyfence.compliance.context import PUBLIC

    targets = [
        c for c in ctx.public_classes if not ((c.external or IPSet.empty()) & PUBLIC) <= gateways
    ]
    reach = _egress_to(ctx, targets)
    budget = [MAX_EXPLAINED]
    findings: list[Finding] = []
    clean: dict[str, int] = defaultdict(int)
    for ep in ctx.workloads:
        if ep.host_network:
            continue
        conns = reach.get(ctx.class_of(ep).index, EMPTY)
        if not conns:
            clean[ep.namespace or ""] += 1
            continue
        severity = Severity.HIGH if ctx.sensitive(ep.namespace) else info.severity
        src = ctx.class_of(ep)
        target = next(c for c in targets if ctx.allowed(src, c))
        ev = explained(ctx, budget, ep, public_address(target), ctx.allowed(src, target))
        findings.append(
            Finding(
                info.id, Status.FAIL, severity, ep.ref,
                f"{ep.ref} may open connections to the internet ({_ports_text(conns)})",
                (ctx.workload_ref(ep), *(ctx.deciding_objects(ev) if ev else ())),
                (ev,) if ev else (), observed=_ports_text(conns),
                expected="internet egress only through declared gateways",
            )
        )  # fmt: skip
    for ns, count in sorted(clean.items()):
        findings.append(
            Finding(info.id, Status.PASS, info.severity, f"namespace/{ns}",
                    f"{count} workloads of {ns} cannot reach the internet")
        )  # fmt: skip
    return outcome(
        info,
        findings,
        passed="no in-scope workload reaches the internet except through declared gateways",
        failed="{fail} workloads can reach the internet directly",
        empty="no in-scope workloads",
    )


@check(
    "NSEG-K11",
    "Cloud metadata endpoint unreachable from pods",
    Severity.HIGH,
    Level.SEMANTIC,
    "The instance metadata service hands out the node's cloud credentials; pods that reach "
    "169.254.169.254 (or fd00:ec2::254) can act as the node (NSA/CISA: protect cloud "
    "infrastructure).",
    "Deny egress to 169.254.169.254/32 and fd00:ec2::254/128 (an ipBlock `except`, a Calico or "
    "Cilium deny), or list the agent in `metadata_allowlist`.",
)
def k11_metadata_endpoint(ctx: AuditContext) -> CheckOutcome:
    info = k11_metadata_endpoint.info
    if not ctx.has_workloads:
        return CheckOutcome(
            Status.UNKNOWN, "the input has no workloads: reachability cannot be computed"
        )
    targets = [
        c
        for a in METADATA_ADDRESSES
        if (c := ctx.address_class(a + ("/32" if ":" not in a else "/128"))) is not None
    ]
    reach = _egress_to(ctx, targets)
    budget = [MAX_EXPLAINED]
    findings: list[Finding] = []
    for ep in ctx.workloads:
        if ep.host_network:
            continue
        conns = reach.get(ctx.class_of(ep).index, EMPTY)
        if not conns:
            continue
        allowed = workload_matches(ep, ctx.config.metadata_allowlist)
        dst = next(
            a
            for a, c in zip(METADATA_ADDRESSES, targets, strict=False)
            if ctx.allowed(ctx.class_of(ep), c)
        )
        ev = explained(ctx, budget, ep, dst, conns)
        findings.append(
            Finding(
                info.id, Status.PASS if allowed else Status.FAIL, info.severity, ep.ref,
                f"{ep.ref} can reach the metadata service {dst} ({_ports_text(conns)})"
                + (" (allow-listed)" if allowed else ""),
                (ctx.workload_ref(ep), *(ctx.deciding_objects(ev) if ev else ())),
                (ev,) if ev else (), observed=_ports_text(conns), expected="unreachable",
            )
        )  # fmt: skip
    return outcome(
        info,
        findings,
        passed="only allow-listed workloads reach the metadata service",
        failed="{fail} workloads can reach the cloud metadata service",
        empty="no in-scope workload can reach the cloud metadata service",
        empty_status=Status.PASS,
    )


def _is_dns(ep: Endpoint) -> bool:
    return (
        any(ep.labels.get(k) == v for k, v in DNS_LABELS)
        or "coredns" in ep.name
        or "kube-dns" in ep.name
    )


@check(
    "NSEG-K12",
    "Control-plane and node ports not reachable from workloads",
    Severity.HIGH,
    Level.SEMANTIC,
    "Tenant workloads that reach the kubelet (10250), etcd (2379-2380), the controller manager "
    "(10257) or the scheduler (10259) on node addresses, or system pods in kube-system other "
    "than DNS, can attack the control plane (NSA/CISA control-plane hardening, NIST SC-7(21)).",
    "Deny egress from tenant namespaces to node addresses on these ports and to kube-system "
    "except DNS (UDP/TCP 53).",
)
def k12_control_plane(ctx: AuditContext) -> CheckOutcome:
    info = k12_control_plane.info
    nodes = [
        c
        for c in ctx.universe.classes
        if c.representative.endpoint is not None and c.representative.endpoint.kind == "Node"
    ]
    system = [
        ctx.class_of(ep)
        for ep in ctx.inventory.pods
        if ep.namespace == "kube-system" and not ep.host_network and not _is_dns(ep)
    ]
    if not ctx.has_workloads or (not nodes and not system):
        return CheckOutcome(
            Status.UNKNOWN,
            "the input has no Node objects and no kube-system pods: control-plane reachability cannot be computed",
        )
    node_idx = {c.index for c in nodes}
    system_idx = {c.index for c in system}
    budget = [MAX_EXPLAINED]
    per_ns: dict[str, list[tuple[Endpoint, EndpointClass, ConnSet]]] = defaultdict(list)
    for ep in ctx.workloads:
        if ep.host_network or ep.namespace == "kube-system":
            continue
        src = ctx.class_of(ep)
        for d in list(node_idx) + list(system_idx):
            conns = ctx.allowed(src, ctx.universe.classes[d])
            if d in node_idx:
                conns = conns & CONTROL_PLANE_PORTS
            if conns:
                per_ns[ep.namespace or ""].append((ep, ctx.universe.classes[d], conns))
                break
    findings = []
    for ns in ctx.in_scope:
        if ns == "kube-system":
            continue
        hits = per_ns.get(ns)
        if not hits:
            if any(ep.namespace == ns for ep in ctx.workloads):
                findings.append(Finding(info.id, Status.PASS, info.severity, f"namespace/{ns}",
                                        f"workloads of {ns} cannot reach control-plane ports or kube-system"))  # fmt: skip
            continue
        ep, dst_cls, conns = hits[0]
        # a class may hold DNS pods too (same labels as far as policies tell): name another
        dst = next((m for m in dst_cls.members if not _is_dns(m)), dst_cls.members[0])
        ev = explained(ctx, budget, ep, dst, conns)
        findings.append(
            Finding(
                info.id, Status.FAIL, info.severity, f"namespace/{ns}",
                f"{len(hits)} workloads of {ns} reach control-plane ports or kube-system pods, "
                f"e.g. {ep.ref} -> {dst.ref} ({_ports_text(conns)})",
                ctx.deciding_objects(ev) if ev else (), (ev,) if ev else (),
                observed=names(h[0] for h in hits), expected="no path to the control plane",
            )
        )  # fmt: skip
    return outcome(
        info,
        findings,
        passed="no tenant workload reaches node control-plane ports or kube-system pods other than DNS",
        failed="{fail} namespaces have workloads that reach the control plane",
        empty="no tenant workloads",
    )


@check(
    "NSEG-K15",
    "Sensitive service ports not reachable cluster-wide",
    Severity.MEDIUM,
    Level.SEMANTIC,
    "Administrative and data-store ports (SSH, RDP, Docker, databases, caches, search) that every "
    "pod of the cluster may reach give lateral movement a foothold (PCI DSS 1.2.5, NIST CM-7). "
    "Judged by what the server's own ingress policies accept: clients' egress policies change "
    "without the server's owner.",
    "Allow the sensitive port only from the clients that need it (pod and namespace selectors).",
)
def k15_sensitive_ports(ctx: AuditContext) -> CheckOutcome:
    info = k15_sensitive_ports.info
    if not ctx.has_workloads:
        return CheckOutcome(
            Status.UNKNOWN, "the input has no workloads: reachability cannot be computed"
        )
    sensitive = ctx.config.sensitive_ports
    pod_bits = ctx.universe.pod_bits
    classes = ctx.universe.classes
    ns_of = {i: classes[i].representative.endpoint.namespace for i in ctx.pod_class_indices}  # type: ignore[union-attr]
    all_ns = set(ns_of.values())
    sources: dict[tuple[int, tuple[int, int]], set[int]] = defaultdict(set)
    listening: dict[int, list[tuple[int, int]]] = {}
    for ep in ctx.workloads:
        if ep.host_network:
            continue
        idx = ctx.class_of(ep).index
        ports = [
            (p.protocol, p.port)
            for p in ep.container_ports
            if sensitive.contains(p.protocol, p.port)
        ]
        if ports:
            listening[idx] = sorted(set(listening.get(idx, []) + ports))
    if not listening:
        return CheckOutcome(Status.PASS, "no in-scope workload declares a sensitive container port")
    for (s, d), conns in ctx.ingress_matrix.items():
        if d in listening and s != d and pod_bits >> s & 1:
            for proto, port in listening[d]:
                if conns.contains(proto, port):
                    sources[(d, (proto, port))].add(s)
    findings = []
    budget = [MAX_EXPLAINED]
    others = len(ctx.pod_class_indices) - 1
    for ep in ctx.workloads:
        idx = ctx.class_of(ep).index
        for proto, port in listening.get(idx, []):
            srcs = sources.get((idx, (proto, port)), set())
            reached_ns = {ns_of[s] for s in srcs if s in ns_of}
            everyone = others > 1 and len(srcs) >= others  # one other pod is no "cluster"
            every_ns = len(all_ns) > 1 and reached_ns >= all_ns - {ep.namespace}
            label = f"{protocol_name(proto)}/{port}"
            if everyone or every_ns:
                src_cls = classes[min(srcs)]
                ev = explained(
                    ctx,
                    budget,
                    src_cls.members[0],
                    ep,
                    ConnSet.single(proto, IntervalSet.point(port)),
                )
                findings.append(
                    Finding(
                        info.id, Status.FAIL, info.severity, ep.ref,
                        f"{ep.ref} {label} is reachable from "
                        + ("every pod in the cluster" if everyone else "pods of every namespace"),
                        (ctx.workload_ref(ep), *(ctx.deciding_objects(ev) if ev else ())),
                        (ev,) if ev else (), observed=f"{len(srcs)} source classes",
                        expected="named clients only", key=label,
                    )
                )  # fmt: skip
            else:
                findings.append(
                    Finding(info.id, Status.PASS, info.severity, ep.ref,
                            f"{ep.ref} {label} is reachable from {len(srcs)} of {others} other pod classes",
                            key=label)
                )  # fmt: skip
    return outcome(
        info,
        findings,
        passed="sensitive ports are reachable only from selected clients",
        failed="{fail} sensitive ports are reachable cluster-wide",
        empty="no in-scope workload declares a sensitive container port",
        empty_status=Status.PASS,
    )


__all__ = ["Exposure", "internet_exposures"]
