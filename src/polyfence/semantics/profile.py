"""Evaluation profiles: behaviour the standards leave to the implementation, as parameters."""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import Enum


class HostNetworkMode(Enum):
    """How hostNetwork pods take part in policy."""

    NODE = "node"  # not pods for policy: selectors never match them, they act as their node
    POD = "pod"  # treated like any other pod


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

    def but(self, **changes: object) -> EvaluationProfile:
        return replace(self, **changes)  # type: ignore[arg-type]


DEFAULT_PROFILE = EvaluationProfile()
PROFILES = {
    "kubernetes": DEFAULT_PROFILE,
    "calico": DEFAULT_PROFILE,
    "cilium": EvaluationProfile(ipblock_matches_pods=False, ipblock_matches_nodes=False),
}
