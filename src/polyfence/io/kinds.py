"""Which kinds polyfence may pass over, and which it must not ignore.

App and GitOps folders and cluster dumps hold many kinds beside the policies. A kind that no
translator reads and that the inventory does not use is either known to carry no network
policy (skipped, and counted in one summary line) or may carry some (another CNI's or mesh's
policy, a firewall, an authorization rule): reading the rest as if it were absent would give a
verdict on a wider cluster than the real one, so that is an error unless the user says
``--skip-unknown``. A kind in neither table is skipped by name, never silently.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum


class Disposition(Enum):
    NO_POLICY = "carries no network policy"
    MAY_CARRY_POLICY = "may carry network policy"
    UNKNOWN = "not known to polyfence"


# API groups (the part of apiVersion before "/"; "" is the core group) whose kinds cannot
# allow or deny traffic: workloads, configuration, access control of the API itself,
# routing, certificates, monitoring, packaging, admission control.
_NO_POLICY_GROUPS = frozenset(
    {
        "apps",
        "batch",
        "autoscaling",
        "rbac.authorization.k8s.io",
        "storage.k8s.io",
        "scheduling.k8s.io",
        "coordination.k8s.io",
        "discovery.k8s.io",
        "node.k8s.io",
        "events.k8s.io",
        "certificates.k8s.io",
        "apiextensions.k8s.io",
        "apiregistration.k8s.io",
        "admissionregistration.k8s.io",
        "flowcontrol.apiserver.k8s.io",
        "metrics.k8s.io",
        "snapshot.storage.k8s.io",
        "kustomize.config.k8s.io",
        "kustomize.toolkit.fluxcd.io",
        "helm.toolkit.fluxcd.io",
        "source.toolkit.fluxcd.io",
        "notification.toolkit.fluxcd.io",
        "image.toolkit.fluxcd.io",
        "argoproj.io",
        "cert-manager.io",
        "acme.cert-manager.io",
        "monitoring.coreos.com",
        "route.openshift.io",
        "apps.openshift.io",
        "image.openshift.io",
        "build.openshift.io",
        "template.openshift.io",
        "project.openshift.io",
        "config.openshift.io",
        "security.openshift.io",  # SecurityContextConstraints: pod privileges, not traffic
        "kyverno.io",  # admission policies, not traffic
        "templates.gatekeeper.sh",
        "constraints.gatekeeper.sh",
        "keda.sh",
        "external-secrets.io",
        "bitnami.com",
        "telemetry.istio.io",
        "install.istio.io",
        "gateway.networking.k8s.io",  # routes and gateways; Linkerd's policies are their own kinds
        "crd.projectcalico.org",  # only Calico's internal mirror kinds reach here (IPAM, blocks)
    }
)

# The core group's kinds (apiVersion v1) that neither the inventory nor a translator reads.
_CORE_KINDS = frozenset(
    {
        "ConfigMap",
        "Secret",
        "Endpoints",
        "Event",
        "LimitRange",
        "ResourceQuota",
        "PersistentVolume",
        "PersistentVolumeClaim",
        "PodTemplate",
        "ReplicationController",
        "Binding",
        "ComponentStatus",
    }
)

# Kinds of otherwise unknown or mixed groups that are known to carry no network policy.
_NO_POLICY_KINDS = frozenset(
    {
        *(("", kind) for kind in _CORE_KINDS),
        ("networking.k8s.io", "Ingress"),
        ("networking.k8s.io", "IngressClass"),
        ("networking.k8s.io", "IPAddress"),
        ("networking.k8s.io", "ServiceCIDR"),
        ("policy", "PodDisruptionBudget"),
        ("policy", "PodSecurityPolicy"),
        ("networking.istio.io", "VirtualService"),
        ("networking.istio.io", "DestinationRule"),
        ("networking.istio.io", "Gateway"),
        ("networking.istio.io", "WorkloadEntry"),
        ("networking.istio.io", "WorkloadGroup"),
        ("networking.istio.io", "ProxyConfig"),
        ("security.istio.io", "RequestAuthentication"),  # decides nothing without a policy
        ("projectcalico.org", "IPPool"),
        ("projectcalico.org", "IPReservation"),
        ("projectcalico.org", "BGPConfiguration"),
        ("projectcalico.org", "BGPPeer"),
        ("projectcalico.org", "BGPFilter"),
        ("projectcalico.org", "FelixConfiguration"),
        ("projectcalico.org", "ClusterInformation"),
        ("projectcalico.org", "KubeControllersConfiguration"),
        ("projectcalico.org", "IPAMConfiguration"),
        ("projectcalico.org", "CalicoNodeStatus"),
        ("cilium.io", "CiliumIdentity"),
        ("cilium.io", "CiliumNode"),
        ("cilium.io", "CiliumNodeConfig"),
        ("cilium.io", "CiliumEndpointSlice"),
        ("cilium.io", "CiliumExternalWorkload"),
        ("cilium.io", "CiliumLoadBalancerIPPool"),
        ("cilium.io", "CiliumL2AnnouncementPolicy"),  # ARP announcements, not traffic policy
        ("cilium.io", "CiliumBGPPeeringPolicy"),
        ("cilium.io", "CiliumBGPClusterConfig"),
        ("cilium.io", "CiliumBGPPeerConfig"),
        ("cilium.io", "CiliumBGPAdvertisement"),
        ("cilium.io", "CiliumBGPNodeConfig"),
        ("cilium.io", "CiliumEnvoyConfig"),
        ("cilium.io", "CiliumClusterwideEnvoyConfig"),
    }
)

# Groups whose kinds allow or deny traffic and that no translator reads yet.
_POLICY_GROUPS = frozenset(
    {
        "crd.antrea.io",
        "policy.linkerd.io",
        "consul.hashicorp.com",
        "k8s.ovn.org",
        "policy.networking.k8s.io",
        "kuma.io",
        "networking.gke.io",
        "security.istio.io",
        "networking.istio.io",  # Sidecar egress restrictions, EnvoyFilter RBAC, ServiceEntry
        "extensions.istio.io",  # WasmPlugin may enforce authorization
        "cilium.io",
        "projectcalico.org",
    }
)
_POLICY_WORDS = re.compile(
    r"polic|network|firewall|intention|authoriz|permission|securitygroup|acl", re.IGNORECASE
)


@dataclass(frozen=True, slots=True)
class KindRef:
    """A document's API group, version and kind, for classification and messages."""

    api_version: str | None
    kind: str | None

    @property
    def group(self) -> str:
        version = self.api_version or ""
        return version.rpartition("/")[0] if "/" in version else ""

    def __str__(self) -> str:
        plain = not self.group and self.api_version in (None, "v1")
        return str(self.kind) if plain else f"{self.api_version}/{self.kind}"


def classify(ref: KindRef) -> Disposition:
    """What to do with a kind that no translator reads and the inventory does not use."""
    group, kind = ref.group, ref.kind or ""
    if (group, kind) in _NO_POLICY_KINDS:
        if not group and ref.api_version != "v1":
            return Disposition.UNKNOWN  # a core kind at a version the API server never served
        return Disposition.NO_POLICY
    if group in _POLICY_GROUPS or _POLICY_WORDS.search(f"{group} {kind}"):
        if group in _NO_POLICY_GROUPS:
            return Disposition.NO_POLICY  # e.g. kyverno.io ClusterPolicy: admission, not traffic
        return Disposition.MAY_CARRY_POLICY
    if group in _NO_POLICY_GROUPS:
        return Disposition.NO_POLICY
    return Disposition.UNKNOWN
