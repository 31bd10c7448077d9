"""Service-mesh checks. AuthorizationPolicies reach the checks through the Istio translator as
mesh-layer policies and are judged by the engine; PeerAuthentication is mesh configuration
(the inventory's mTLS modes) and is also read here for the evidence it gives."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from polyfence.compliance.checks._common import names
from polyfence.compliance.context import AuditContext
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
from polyfence.inventory import MESH_ROOT_NAMESPACE, Endpoint
from polyfence.model.document import Document
from polyfence.model.policy import Direction, Governed, Layer, Policy
from polyfence.semantics.engine import Connectivity, iter_bits
from polyfence.semantics.matching import TCP_CONNS

IDENTITY_FIELDS = ("principals", "notPrincipals", "namespaces", "notNamespaces")


def _meta(doc: Document) -> tuple[str, str]:
    meta = doc.data.get("metadata") or {}
    return str(meta.get("namespace") or "default"), str(meta.get("name") or "")


def _ref(doc: Document, pointer: str = "") -> ObjectRef:
    ns, name = _meta(doc)
    src = doc.source
    return ObjectRef(doc.kind or "", ns, name, src.file, src.document, src.pointer + pointer)


def _identity_based(spec: Mapping[str, Any]) -> bool:
    for rule in spec.get("rules") or []:
        for item in (rule or {}).get("from") or []:
            source = (item or {}).get("source") or {}
            if any(source.get(f) for f in IDENTITY_FIELDS):
                return True
    return False


def _mode(doc: Document) -> str:
    return str(((doc.data.get("spec") or {}).get("mtls") or {}).get("mode") or "UNSET").upper()


@check(
    "NSEG-K18",
    "Istio L7 authorisation default-deny in meshed namespaces",
    Severity.MEDIUM,
    Level.SEMANTIC,
    "Meshed namespaces should have an allow-nothing AuthorizationPolicy, ALLOW policies should "
    "not match everything, and the workloads relied upon must be in the mesh; Istio evaluates "
    "CUSTOM, then DENY, then ALLOW, and no ALLOW policy means allow.",
    "Add an allow-nothing AuthorizationPolicy (`spec: {}`) per meshed namespace and ALLOW "
    "policies for the callers each service needs.",
)
def k18_mesh_default_deny(ctx: AuditContext) -> CheckOutcome:
    info = k18_mesh_default_deny.info
    proxy = [p for p in ctx.policies if p.layer is Layer.L7]
    meshed: dict[str, list[Endpoint]] = defaultdict(list)
    for ep in ctx.workloads:
        if ep.mesh and ctx.in_scope_ns(ep.namespace):
            meshed[ep.namespace or ""].append(ep)
    if not meshed and not proxy:
        if ctx.config.mesh and ctx.config.mesh != "none":
            return CheckOutcome(
                Status.UNKNOWN, "the config names a mesh but no workload in the input is in it"
            )
        return CheckOutcome(Status.NOT_APPLICABLE, "no service mesh in the input")
    open_to_all = _allow_all_tcp(ctx, proxy)
    findings: list[Finding] = []
    for ns in sorted(meshed):
        exposed: list[Endpoint] = []
        neutralised: list[Endpoint] = []
        deciding: list[Policy] = []
        for ep in meshed[ns]:
            allows = [
                p
                for p in ctx.governing(ep, Direction.INGRESS)
                if p.layer is Layer.L7 and isinstance(p.ingress, Governed) and p.ingress.isolates
            ]
            deciding.extend(p for p in allows if p not in deciding)
            if not allows:
                exposed.append(ep)
            elif ctx.class_of(ep).index in open_to_all:
                neutralised.append(ep)
        objects = tuple(ctx.policy_ref(p) for p in deciding[:10])
        if not exposed and not neutralised:
            findings.append(
                Finding(
                    info.id, Status.PASS, info.severity, f"namespace/{ns}",
                    f"every meshed workload of {ns} is deny-by-default at the mesh layer",
                    objects,
                )
            )  # fmt: skip
            continue
        parts = []
        if exposed:
            parts.append(f"no ALLOW policy applies, so Istio allows everything: {names(exposed)}")
        if neutralised:
            parts.append(f"an ALLOW policy admits every TCP connection: {names(neutralised)}")
        findings.append(
            Finding(
                info.id, Status.FAIL, info.severity, f"namespace/{ns}",
                f"namespace {ns}: " + "; ".join(parts), objects,
                observed=f"{len(exposed)} without ALLOW policy, {len(neutralised)} allow-all, "
                f"of {len(meshed[ns])} meshed",
                expected="every meshed workload deny-by-default (an allow-nothing policy)",
            )
        )  # fmt: skip
    for pol in proxy:
        if isinstance(pol.ingress, Governed) and pol.subject.namespace is not None:
            targets = [
                ep
                for ep in ctx.workloads
                if ep.namespace == pol.subject.namespace
                and ctx.in_scope_ns(ep.namespace)
                and not ep.mesh
                and ctx.matcher.selects(pol.subject, ep)
            ]
            if targets:
                findings.append(
                    Finding(
                        info.id, Status.FAIL, info.severity, f"policy/{pol.id}",
                        f"AuthorizationPolicy {pol.id} selects workloads outside the mesh, where "
                        f"no proxy enforces it: {names(targets)}",
                        (ctx.policy_ref(pol),),
                        observed="not in the mesh", expected="sidecar or ambient enrolment",
                    )
                )  # fmt: skip
    return outcome(
        info,
        findings,
        passed="every meshed workload is deny-by-default at the mesh layer",
        failed="{fail} namespaces or policies leave meshed workloads open",
    )


def _allow_all_tcp(ctx: AuditContext, proxy: list[Policy]) -> set[int]:
    """Pod classes whose mesh-layer ingress accepts every TCP connection from every pod."""
    if not proxy:
        return set()
    layer = ctx.policies.with_policies(proxy)
    conn = Connectivity(ctx.universe, layer)
    pods = list(iter_bits(ctx.universe.pod_bits))
    out: set[int] = set()
    for d in pods:
        if all(s == d or (conn.allowed(s, d) & TCP_CONNS) == TCP_CONNS for s in pods):
            out.add(d)
    return out


@check(
    "NSEG-K19",
    "mTLS is strict where mesh segmentation is claimed",
    Severity.MEDIUM,
    Level.SOURCE,
    "AuthorizationPolicy sources by principal or namespace only match mutually authenticated "
    "traffic; with PERMISSIVE (Istio's default) plain-text clients bypass identity checks, so "
    "segmentation that relies on identities needs STRICT mTLS.",
    "Set a namespace-wide PeerAuthentication with `mtls.mode: STRICT` (or mesh-wide in the root "
    "namespace) and remove workload or port-level PERMISSIVE/DISABLE exceptions.",
)
def k19_strict_mtls(ctx: AuditContext) -> CheckOutcome:
    info = k19_strict_mtls.info
    relying: dict[str, list[Document]] = {}
    for doc in ctx.documents_of_kind("AuthorizationPolicy"):
        ns, _ = _meta(doc)
        if ctx.in_scope_ns(ns) and _identity_based(doc.data.get("spec") or {}):
            relying.setdefault(ns, []).append(doc)
    if not relying:
        return CheckOutcome(
            Status.NOT_APPLICABLE, "no AuthorizationPolicy relies on peer identities"
        )
    peer_auth = list(ctx.documents_of_kind("PeerAuthentication"))
    mesh_wide = [
        d
        for d in peer_auth
        if _meta(d)[0] == MESH_ROOT_NAMESPACE and not (d.data.get("spec") or {}).get("selector")
    ]
    findings = []
    for ns, aps in sorted(relying.items()):
        in_ns = [d for d in peer_auth if _meta(d)[0] == ns]
        ns_wide = [d for d in in_ns if not (d.data.get("spec") or {}).get("selector")]
        mode, decided_by = "PERMISSIVE", None
        for candidates in (mesh_wide, ns_wide):
            for d in candidates:
                if _mode(d) != "UNSET":
                    mode, decided_by = _mode(d), d
        weaker = [
            d for d in in_ns
            if ((d.data.get("spec") or {}).get("selector") and _mode(d) in ("PERMISSIVE", "DISABLE"))
            or any(str((v or {}).get("mode", "")).upper() in ("PERMISSIVE", "DISABLE")
                   for v in ((d.data.get("spec") or {}).get("portLevelMtls") or {}).values())
        ]  # fmt: skip
        objects = tuple(_ref(d) for d in aps[:5]) + (
            (_ref(decided_by, "/spec/mtls/mode"),) if decided_by else ()
        )
        objects += tuple(_ref(d, "/spec") for d in weaker)
        ok = mode == "STRICT" and not weaker
        why = (
            f"mTLS mode {mode}"
            + (" (Istio default: no PeerAuthentication)" if decided_by is None else "")
            + (f"; {len(weaker)} workload/port-level exceptions weaken it" if weaker else "")
        )
        findings.append(
            Finding(
                info.id, Status.PASS if ok else Status.FAIL, info.severity, f"namespace/{ns}",
                f"namespace {ns}: {len(aps)} AuthorizationPolicies match peer identities; {why}",
                objects, observed=mode, expected="STRICT",
            )
        )  # fmt: skip
    return outcome(
        info,
        findings,
        passed="mTLS is STRICT wherever AuthorizationPolicies rely on identities",
        failed="{fail} namespaces rely on peer identities without STRICT mTLS",
    )
