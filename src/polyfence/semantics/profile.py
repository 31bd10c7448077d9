"""Evaluation profiles: behaviour the standards leave to the implementation, as parameters."""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import Enum


class HostNetworkMode(Enum):
    """How hostNetwork pods take part in policy."""

    NODE = "node"  # not pods for policy: selectors never match them, they act as their node
    POD = "pod"  # treated like any other pod


class CloudEnforcingMode(Enum):
    """How the cloud layer (security groups) applies to pods (EKS
    ``POD_SECURITY_GROUP_ENFORCING_MODE``, reference/aws.md §3.3)."""

    STRICT = "strict"  # every flow of a pod goes through its interface's groups
    # Same-node flows (pod to pod, node to its pods) bypass the cloud layer, and a pod's
    # egress to addresses outside the VPC is SNATed to its node: the pod's groups do not judge
    # it (the node's groups do; the engine leaves such flows to the other layers).
    STANDARD = "standard"


@dataclass(frozen=True, slots=True)
class EvaluationProfile:
    """Implementation-defined choices of the engine (semantics.md §9).

    Defaults follow Kubernetes as implemented by Calico, the reference CNI of the docs:
    ipBlocks match pod IPs, a node may always reach its own pods, a pod may reach itself.
    """

    ipblock_matches_pods: bool = True
    ipblock_matches_nodes: bool = True
    node_to_local_pod: bool = True
    self_traffic: bool = True
    host_network: HostNetworkMode = HostNetworkMode.NODE
    cloud_enforcing: CloudEnforcingMode = CloudEnforcingMode.STRICT
    vpc_cidrs: tuple[
        str, ...
    ] = ()  # the VPC's ranges (standard mode); () = the inventory's pods/nodes only
    # Istio: the peer-authentication mode where no PeerAuthentication says otherwise (Istio's
    # default is PERMISSIVE), and the trust domain principals are minted in.
    mtls_default: str = "PERMISSIVE"
    trust_domain: str = "cluster.local"

    def but(self, **changes: object) -> EvaluationProfile:
        return replace(self, **changes)  # type: ignore[arg-type]


DEFAULT_PROFILE = EvaluationProfile()
PROFILES = {
    "kubernetes": DEFAULT_PROFILE,
    "calico": DEFAULT_PROFILE,
    "cilium": EvaluationProfile(ipblock_matches_pods=False, ipblock_matches_nodes=False),
    "aws": DEFAULT_PROFILE,  # a security-group CIDR matches every interface address in it
    "aws-standard": EvaluationProfile(cloud_enforcing=CloudEnforcingMode.STANDARD),
}
