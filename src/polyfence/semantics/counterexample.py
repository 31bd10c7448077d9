"""Counterexample clusters: the one or two endpoints (and their namespaces) on which two
policy sets differ, as Kubernetes objects a user can ``kubectl apply -f`` on a test cluster.

A pair of classes of the universal inventory is turned into concrete Namespaces, Service
Accounts and Pods, and the difference is re-checked on that small cluster with the
single-connection verdict (``verdict.py``), an evaluator independent of the class engine:
a counterexample is only ever returned when it reproduces.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from polyfence.inventory import (
    NAMESPACE_NAME_LABEL,
    Endpoint,
    Inventory,
    Namespace,
    build_inventory,
)
from polyfence.model.policy import PolicySet
from polyfence.model.ports import protocol_name
from polyfence.semantics.compare import Counterexample, Witness
from polyfence.semantics.connset import ConnSet
from polyfence.semantics.engine import Universe
from polyfence.semantics.profile import EvaluationProfile
from polyfence.semantics.symbolic import SymbolicEndpoint
from polyfence.semantics.verdict import Connection, verdict

PAUSE_IMAGE = "registry.k8s.io/pause:3.10"
_PROTOCOLS = {6: "TCP", 17: "UDP", 132: "SCTP"}


def realisable(universe: Universe, s: int, d: int, profile: EvaluationProfile) -> bool:
    """Whether two classes of the universal inventory can live in one cluster: a namespace
    (and a service account) has one set of labels, a node always reaches its own pods."""
    src = universe.classes[s].representative.endpoint
    dst = universe.classes[d].representative.endpoint
    if src is None or dst is None:
        return True
    if s == d:
        return src.kind == "Pod"  # two pods alike; a node or an address is not its own peer
    same_ns = src.namespace == dst.namespace
    if same_ns and isinstance(src, SymbolicEndpoint) and isinstance(dst, SymbolicEndpoint):
        if dict(src.namespace_labels) != dict(dst.namespace_labels):
            return False
        if src.service_account == dst.service_account and _account(src) != _account(dst):
            return False
    if profile.node_to_local_pod and src.kind == "Node" and dst.node == src.name:
        return False
    return not set(src.ips) & set(dst.ips)


def _account(ep: SymbolicEndpoint) -> dict[str, str] | None:
    return None if ep.account_labels is None else dict(ep.account_labels)


def _next_address(ip: str) -> str:
    return str(ipaddress.ip_address(ip) + 1)


def _concrete(ep: Endpoint, name: str, ip: str | None = None) -> Endpoint:
    """A plain inventory endpoint with the symbolic one's facts under a readable name."""
    ips = (ip,) if ip is not None else ep.ips
    return Endpoint(
        ep.kind,
        ep.namespace,
        name,
        dict(ep.labels),
        ep.service_account,
        ips,
        ep.named_ports,
        ep.node,
        security_groups=ep.security_groups,
        mesh=ep.mesh,
        mtls=ep.mtls,
    )


def build_counterexample(
    a: PolicySet,
    b: PolicySet,
    universe: Universe,
    s: int,
    d: int,
    diff: ConnSet,
    side: str,
) -> Counterexample | None:
    """The cluster of classes ``s`` and ``d`` on which ``diff`` is allowed by ``side`` only,
    or None when the concrete cluster does not reproduce it (then look further)."""
    sample = diff.sample()
    if sample is None:
        return None
    proto, port = sample
    src_cls, dst_cls = universe.classes[s], universe.classes[d]
    src_sym = src_cls.representative.endpoint
    dst_sym = dst_cls.representative.endpoint
    namespaces: dict[str, Mapping[str, str]] = {}
    accounts: dict[tuple[str, str], Mapping[str, str]] = {}
    endpoints: list[Endpoint] = []
    src: Endpoint | str
    dst: Endpoint | str
    if src_sym is None:
        src = str(src_cls.representative)
    else:
        src = _concrete(src_sym, "polyfence-src" if src_sym.kind == "Pod" else src_sym.name)
        endpoints.append(src)
        _remember(src_sym, namespaces, accounts)
    if dst_sym is None:
        dst = str(dst_cls.representative)
    elif s == d:
        assert isinstance(src, Endpoint)
        dst = replace(src, name="polyfence-dst", ips=(_next_address(src.ips[0]),))
        endpoints.append(dst)
    else:
        dst = _concrete(dst_sym, "polyfence-dst" if dst_sym.kind == "Pod" else dst_sym.name)
        endpoints.append(dst)
        _remember(dst_sym, namespaces, accounts)
    inventory = build_inventory(
        [Namespace(name, labels) for name, labels in namespaces.items()],
        endpoints,
        sa_labels=accounts,
    )
    return reproduce(
        a, b, inventory, endpoints, Connection(src, dst, proto, port), side, universe.profile
    )


def reproduce(
    a: PolicySet,
    b: PolicySet,
    inventory: Inventory,
    endpoints: list[Endpoint],
    conn: Connection,
    side: str,
    profile: EvaluationProfile,
) -> Counterexample | None:
    """The counterexample of ``conn`` on the small cluster ``inventory`` (its ``endpoints``),
    when the single-connection verdict confirms that only ``side`` allows it; else None."""
    src, dst, proto, port = conn.src, conn.dst, conn.protocol, conn.port
    on_a = verdict(a, conn, inventory, profile).allowed
    on_b = verdict(b, conn, inventory, profile).allowed
    if on_a == on_b or (on_b if side == "b" else on_a) is False:
        return None
    witness = Witness(_ref(src), _ref(dst), protocol_name(proto), port, side)
    return Counterexample(
        witness, tuple(_documents(inventory, endpoints)), inventory, tuple(_notes(src, dst))
    )


def _remember(
    ep: Endpoint,
    namespaces: dict[str, Mapping[str, str]],
    accounts: dict[tuple[str, str], Mapping[str, str]],
) -> None:
    if not isinstance(ep, SymbolicEndpoint) or ep.namespace is None:
        return
    namespaces[ep.namespace] = dict(ep.namespace_labels)
    if ep.account_labels is not None and ep.service_account:
        accounts[(ep.namespace, ep.service_account)] = dict(ep.account_labels)


def _ref(side: Endpoint | str) -> str:
    return side.ref if isinstance(side, Endpoint) else side


def _notes(src: Endpoint | str, dst: Endpoint | str) -> list[str]:
    out: list[str] = []
    for side in (src, dst):
        if isinstance(side, str):
            out.append(f"{side} is an address outside the cluster")
        elif side.security_groups:
            out.append(f"{side.ref} carries security groups {', '.join(side.security_groups)}")
    return out


def _documents(inventory: Inventory, endpoints: list[Endpoint]) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for ns in inventory.namespaces:
        labels = {k: v for k, v in ns.labels.items() if k != NAMESPACE_NAME_LABEL}
        meta: dict[str, Any] = {"name": ns.name}
        meta["labels"] = {NAMESPACE_NAME_LABEL: ns.name, **labels}
        docs.append({"apiVersion": "v1", "kind": "Namespace", "metadata": meta})
    for (ns_name, sa), sa_labels in inventory.service_account_labels.items():
        meta = {"name": sa, "namespace": ns_name}
        if sa_labels:
            meta["labels"] = dict(sa_labels)
        docs.append({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta})
    declared = set(inventory.service_account_labels)
    for ep in endpoints:
        sa = ep.service_account or "default"
        if ep.kind == "Pod" and sa != "default" and (ep.namespace or "", sa) not in declared:
            declared.add((ep.namespace or "", sa))
            docs.append(
                {
                    "apiVersion": "v1",
                    "kind": "ServiceAccount",
                    "metadata": {"name": sa, "namespace": ep.namespace},
                }
            )
    with_nodes = any(ep.kind == "Node" for ep in endpoints)
    for ep in endpoints:
        docs.extend(_endpoint_documents(ep, with_nodes))
    return docs


def _endpoint_documents(ep: Endpoint, with_nodes: bool) -> list[dict[str, Any]]:
    if ep.kind == "Node":
        return [
            {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {"name": ep.name},
                "status": {"addresses": [{"type": "InternalIP", "address": ip} for ip in ep.ips]},
            }
        ]
    meta: dict[str, Any] = {"name": ep.name, "namespace": ep.namespace}
    if ep.labels:
        meta["labels"] = dict(ep.labels)
    if ep.mesh:
        meta["annotations"] = {"sidecar.istio.io/inject": "true"}
    container: dict[str, Any] = {"name": "main", "image": PAUSE_IMAGE}
    if ep.named_ports:
        container["ports"] = [
            {"name": p.name, "containerPort": p.port, "protocol": _PROTOCOLS[p.protocol]}
            for p in ep.named_ports
        ]
    spec: dict[str, Any] = {"containers": [container]}
    if ep.service_account and ep.service_account != "default":
        spec["serviceAccountName"] = ep.service_account
    if with_nodes and ep.node:
        spec["nodeName"] = ep.node
    pod: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "spec": spec,
        # Set by the CNI, not by kubectl: the address the witness needs the pod to get.
        "status": {"podIP": ep.ips[0], "podIPs": [{"ip": ip} for ip in ep.ips]},
    }
    docs = [pod]
    if ep.mesh and ep.mtls:
        docs.append(
            {
                "apiVersion": "security.istio.io/v1",
                "kind": "PeerAuthentication",
                "metadata": {"name": ep.name, "namespace": ep.namespace},
                "spec": {
                    "selector": {"matchLabels": dict(ep.labels)} if ep.labels else None,
                    "mtls": {"mode": ep.mtls},
                },
            }
        )
        if not ep.labels:
            del docs[-1]["spec"]["selector"]
    return docs
