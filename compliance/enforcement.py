"""Which dataplane enforces each policy kind, as far as the snapshot (or the config) shows.

Detection reads the agents' workloads (DaemonSets, Deployments or their Pods) by name and
label. Nothing found means "unknown", never "enforced": a managed CNI whose agents are not in
the snapshot has to be declared in the audit config.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from polyfence.compliance.config import AuditConfig
from polyfence.model.document import Document

# policy kind -> the document (apiVersion group, kind) that carries it
POLICY_KINDS: dict[str, tuple[str, str]] = {
    "NetworkPolicy": ("networking.k8s.io", "NetworkPolicy"),
    "Calico NetworkPolicy": ("projectcalico.org", "NetworkPolicy"),
    "Calico GlobalNetworkPolicy": ("projectcalico.org", "GlobalNetworkPolicy"),
    "CiliumNetworkPolicy": ("cilium.io", "CiliumNetworkPolicy"),
    "CiliumClusterwideNetworkPolicy": ("cilium.io", "CiliumClusterwideNetworkPolicy"),
    "AuthorizationPolicy": ("security.istio.io", "AuthorizationPolicy"),
    "SecurityGroupPolicy": ("vpcresources.k8s.aws", "SecurityGroupPolicy"),
}

# enforcer -> policy kinds it enforces
ENFORCES: dict[str, frozenset[str]] = {
    "calico": frozenset({"NetworkPolicy", "Calico NetworkPolicy", "Calico GlobalNetworkPolicy"}),
    "cilium": frozenset({"NetworkPolicy", "CiliumNetworkPolicy", "CiliumClusterwideNetworkPolicy"}),
    "gke-dataplane-v2": frozenset({"NetworkPolicy"}),
    "antrea": frozenset({"NetworkPolicy"}),
    "weave": frozenset({"NetworkPolicy"}),
    "kube-router": frozenset({"NetworkPolicy"}),
    "azure-npm": frozenset({"NetworkPolicy"}),
    "aws-vpc-cni+network-policy": frozenset({"NetworkPolicy"}),
    "aws-vpc-cni+pod-eni": frozenset({"SecurityGroupPolicy"}),
    "istio": frozenset({"AuthorizationPolicy"}),
    "flannel": frozenset(),
    "kindnet": frozenset(),
    "aws-vpc-cni": frozenset(),
    "none": frozenset(),
}

_SIGNATURES: tuple[tuple[str, str], ...] = (  # (agent name prefix, enforcer)
    ("calico-node", "calico"),
    ("calico-kube-controllers", "calico"),
    ("canal", "calico"),
    ("cilium", "cilium"),
    ("anetd", "gke-dataplane-v2"),
    ("antrea-agent", "antrea"),
    ("weave-net", "weave"),
    ("kube-router", "kube-router"),
    ("azure-npm", "azure-npm"),
    ("istiod", "istio"),
    ("kube-flannel", "flannel"),
    ("kindnet", "kindnet"),
)
_AGENT_KINDS = ("DaemonSet", "Deployment", "Pod")


@dataclass(frozen=True, slots=True)
class KindEnforcement:
    kind: str
    count: int
    enforcer: str | None
    status: str  # enforced / not_enforced / unknown


def _group(api_version: str | None) -> str:
    return (api_version or "").split("/", 1)[0] if "/" in (api_version or "") else ""


def policy_kind_counts(docs: Iterable[Document]) -> dict[str, int]:
    counts: dict[str, int] = {}
    wanted = {v: k for k, v in POLICY_KINDS.items()}
    for doc in docs:
        group = _group(doc.api_version)
        group = "projectcalico.org" if group == "crd.projectcalico.org" else group
        name = wanted.get((group, doc.kind or ""))
        if name:
            counts[name] = counts.get(name, 0) + 1
        elif isinstance(doc.data, dict) and isinstance(doc.data.get("SecurityGroups"), list):
            counts["EC2 security group"] = counts.get("EC2 security group", 0) + len(
                doc.data["SecurityGroups"]
            )
    return counts


def _containers(doc: Document) -> list[dict[str, object]]:
    spec = doc.data.get("spec") or {}
    if doc.kind != "Pod":
        spec = ((spec.get("template") or {}).get("spec")) or {}
    return [c for c in spec.get("containers") or [] if isinstance(c, dict)]


def _aws_node(doc: Document) -> set[str]:
    found = {"aws-vpc-cni"}
    for c in _containers(doc):
        args = " ".join(str(a) for a in list(c.get("args") or []) + list(c.get("command") or []))  # type: ignore[call-overload]
        if c.get("name") == "aws-eks-nodeagent" and "enable-network-policy=true" in args:
            found.add("aws-vpc-cni+network-policy")
        for env in c.get("env") or []:  # type: ignore[attr-defined]
            if (
                isinstance(env, dict)
                and env.get("name") == "ENABLE_POD_ENI"
                and str(env.get("value")).lower() == "true"
            ):
                found.add("aws-vpc-cni+pod-eni")
    return found


def detect_enforcers(docs: Iterable[Document]) -> set[str]:
    found: set[str] = set()
    for doc in docs:
        if doc.kind not in _AGENT_KINDS or not isinstance(doc.data, dict):
            continue
        meta = doc.data.get("metadata") or {}
        name = str(meta.get("name") or "")
        labels = meta.get("labels") or {}
        app = str(
            labels.get("k8s-app") or labels.get("app") or labels.get("app.kubernetes.io/name") or ""
        )
        if name.startswith("aws-node") or app == "aws-node":
            found |= _aws_node(doc)
            continue
        for prefix, enforcer in _SIGNATURES:
            if name.startswith(prefix) or app == prefix:
                found.add(enforcer)
                break
    return found


def enforcement(
    docs: Iterable[Document], config: AuditConfig
) -> tuple[list[KindEnforcement], set[str]]:
    """Per policy kind present: who enforces it, or that nothing (known) does."""
    docs = list(docs)
    enforcers = detect_enforcers(docs)
    if config.cni:
        enforcers.add(config.cni)
        if config.cni_enforces_network_policy:
            enforcers.add(f"{config.cni}+network-policy")
    if config.mesh and config.mesh.startswith("istio"):
        enforcers.add("istio")
    out = []
    for kind, count in sorted(policy_kind_counts(docs).items()):
        if kind == "EC2 security group":
            out.append(KindEnforcement(kind, count, "aws", "enforced"))
            continue
        by = sorted(e for e in enforcers if kind in ENFORCES.get(e, ()))
        if kind == "NetworkPolicy" and config.cni_enforces_network_policy and config.cni:
            by = by or [config.cni]
        if config.cni_enforces_network_policy is False and kind == "NetworkPolicy" and config.cni:
            by = []
            out.append(KindEnforcement(kind, count, config.cni, "not_enforced"))
            continue
        if by:
            out.append(KindEnforcement(kind, count, ", ".join(by), "enforced"))
        elif enforcers and all(e in ENFORCES for e in enforcers):
            out.append(KindEnforcement(kind, count, ", ".join(sorted(enforcers)), "not_enforced"))
        else:
            out.append(KindEnforcement(kind, count, None, "unknown"))
    return out, enforcers
