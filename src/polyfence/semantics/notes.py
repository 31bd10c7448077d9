"""Where a policy's reach on the given cluster depends on a fact the standards leave open.

Two such facts change verdicts quietly: whether hostNetwork pods are pods for NetworkPolicy
(implementation-defined; the profile decides) and whether a mesh policy's workloads have a
proxy at all (a policy on a workload outside the mesh enforces nothing). Each is said once per
policy, with the treatment that applied, so a verdict never rests on a hidden assumption.
"""

from __future__ import annotations

from dataclasses import replace

from polyfence.errors import Diagnostic
from polyfence.inventory import Endpoint, Inventory
from polyfence.model.policy import Layer, PolicySet
from polyfence.model.provenance import SourceRef
from polyfence.semantics.matching import Matcher
from polyfence.semantics.profile import EvaluationProfile, HostNetworkMode

_SHOWN = 3  # endpoints named per note; the rest are counted


def _names(endpoints: list[Endpoint]) -> str:
    shown = ", ".join(e.ref for e in endpoints[:_SHOWN])
    more = len(endpoints) - _SHOWN
    return shown + (f" and {more} more" if more > 0 else "")


def enforcement_notes(
    policies: PolicySet, inventory: Inventory, profile: EvaluationProfile
) -> list[Diagnostic]:
    """One note per policy that selects hostNetwork pods or mesh workloads without a proxy."""
    as_pods = Matcher(inventory, profile.but(host_network=HostNetworkMode.POD))
    host_pods = [e for e in inventory.endpoints if e.is_pod and e.host_network]
    treatment = (
        "treated as their node, so this policy does not apply to them (--host-network as-host)"
        if profile.host_network is HostNetworkMode.NODE
        else "treated as pods (--host-network as-pods)"
    )
    out: list[Diagnostic] = []
    for policy in policies:
        where = policy.source or SourceRef(policy.id.name)
        selected = [
            e for e in inventory.endpoints if e.is_pod and as_pods.selects(policy.subject, e)
        ]
        if policy.layer is Layer.L7:
            outside = [e for e in selected if not e.mesh]
            if outside:
                out.append(
                    Diagnostic(
                        where,
                        f"not enforced on {len(outside)} of {len(selected)} selected workloads "
                        f"(no sidecar or ambient enrolment): {_names(outside)} "
                        "(--mesh all if the inventory omits injection facts)",
                    )
                )
        elif host_pods:
            hosts = [e for e in selected if e.host_network]
            if hosts:
                out.append(
                    Diagnostic(
                        where,
                        f"selects {len(hosts)} hostNetwork pods ({_names(hosts)}), whose "
                        f"treatment is implementation-defined: {treatment}",
                    )
                )
    return out


def everyone_in_mesh(inventory: Inventory) -> Inventory:
    """``--mesh all``: every pod has a proxy, for dumps that omit injection facts."""
    pods = tuple(
        replace(e, mesh=True) if e.is_pod and not e.host_network else e for e in inventory.endpoints
    )
    return replace(inventory, endpoints=pods)
