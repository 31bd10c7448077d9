"""Does a policy select an endpoint, does a peer match a remote side, which ports does a rule open.

One implementation shared by the single-connection verdict and the class-based connectivity
engine, so that both always agree.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping

from polyfence.inventory import Endpoint, Inventory
from polyfence.model.peers import ANY_PEER, Entity, Peer, PeerMatch
from polyfence.model.policy import Subject
from polyfence.model.ports import ANY_PORTS, PortMatch, PortSpec
from polyfence.semantics.connset import EMPTY, FULL, ConnSet
from polyfence.semantics.intervals import IntervalSet
from polyfence.semantics.profile import EvaluationProfile, HostNetworkMode

SA_NAME_LABEL = "projectcalico.org/name"


class Remote:
    """The remote side of a connection: an inventory endpoint, or a bare external address."""

    __slots__ = ("addresses", "endpoint")

    def __init__(self, endpoint: Endpoint | None, address: str | None = None) -> None:
        self.endpoint = endpoint
        if endpoint is not None:
            self.addresses = tuple(ipaddress.ip_address(ip.split("/")[0]) for ip in endpoint.ips)
        else:
            self.addresses = (ipaddress.ip_address(address),) if address else ()

    def __repr__(self) -> str:
        return self.endpoint.ref if self.endpoint else str(self.addresses[0])


class Matcher:
    """Predicates over endpoints for one inventory and profile."""

    def __init__(self, inventory: Inventory, profile: EvaluationProfile) -> None:
        self.inventory = inventory
        self.profile = profile
        self._ns_labels: dict[str, Mapping[str, str]] = {}

    def ns_labels(self, namespace: str) -> Mapping[str, str]:
        labels = self._ns_labels.get(namespace)
        if labels is None:
            labels = self.inventory.namespace(namespace).labels
            self._ns_labels[namespace] = labels
        return labels

    def acts_as_pod(self, endpoint: Endpoint | None) -> bool:
        """Pods take part in pod selection unless hostNetwork pods count as their node."""
        if endpoint is None or not endpoint.is_pod:
            return False
        return not (endpoint.host_network and self.profile.host_network is HostNetworkMode.NODE)

    def sa_labels(self, endpoint: Endpoint) -> Mapping[str, str]:
        sa = endpoint.service_account or "default"
        labels = dict(self.inventory.service_account_labels.get((endpoint.namespace or "", sa), {}))
        labels[SA_NAME_LABEL] = sa
        return labels

    # subjects -----------------------------------------------------------------------------
    def selects(self, subject: Subject, endpoint: Endpoint) -> bool:
        if not self.acts_as_pod(endpoint):
            return False
        if subject.security_group is not None:
            return False  # security-group membership comes with the AWS bindings
        ns = endpoint.namespace or ""
        if subject.namespace is not None:
            if ns != subject.namespace:
                return False
        elif subject.namespace_selector is not None and not subject.namespace_selector.matches(
            self.ns_labels(ns)
        ):
            return False
        if not subject.selector.matches(endpoint.labels):
            return False
        return subject.service_accounts is None or subject.service_accounts.matches(
            self.sa_labels(endpoint)
        )

    # peers --------------------------------------------------------------------------------
    def _ip_matches(self, peer: Peer, remote: Remote) -> bool:
        ep = remote.endpoint
        if ep is not None:
            if self.acts_as_pod(ep):
                if not self.profile.ipblock_matches_pods:
                    return False
            elif not self.profile.ipblock_matches_nodes:
                return False
        ipset = peer.ipset()
        assert ipset is not None
        return any(addr in ipset for addr in remote.addresses)

    def _entity_matches(self, entity: Entity, remote: Remote) -> bool:
        ep = remote.endpoint
        if entity is Entity.ALL:
            return True
        if entity is Entity.WORLD:
            return ep is None
        if entity is Entity.CLUSTER:
            return ep is not None
        if entity in (Entity.HOST, Entity.REMOTE_NODE):
            return ep is not None and not self.acts_as_pod(ep)
        return False  # kube-apiserver, ingress, health, init, unmanaged: not in an inventory

    def peer_matches(self, peer: Peer, remote: Remote) -> bool:
        ep = remote.endpoint
        if peer.wants_pod:
            if ep is None or not self.acts_as_pod(ep):
                return False
            ns = ep.namespace or ""
            if peer.namespace_names is not None and ns not in peer.namespace_names:
                return False
            if peer.namespace_selector is not None and not peer.namespace_selector.matches(
                self.ns_labels(ns)
            ):
                return False
            if peer.pods is not None and not peer.pods.matches(ep.labels):
                return False
            sa = peer.service_account
            if sa is not None:
                if sa.names is not None and (ep.service_account or "default") not in sa.names:
                    return False
                if sa.selector is not None and not sa.selector.matches(self.sa_labels(ep)):
                    return False
        if (
            peer.not_pods is not None and self.acts_as_pod(ep) and peer.not_pods.matches(ep.labels)  # type: ignore[union-attr]
        ):
            return False
        if peer.ip is not None and not self._ip_matches(peer, remote):
            return False
        if peer.entity is not None and not self._entity_matches(peer.entity, remote):
            return False
        # FQDNs, security groups and mesh identities resolve only with DNS answers, AWS
        # bindings and mesh data, which later translators add to the inventory.
        return peer.fqdn is None and peer.security_group is None and peer.principal is None

    def peers_match(self, peers: PeerMatch, remote: Remote) -> bool:
        if peers is ANY_PEER:
            return True
        return any(self.peer_matches(p, remote) for p in peers)  # type: ignore[union-attr]


# ports ------------------------------------------------------------------------------------


def _named(spec: PortSpec, names: frozenset[str], dst: Endpoint | None) -> ConnSet:
    if not names or dst is None:
        return EMPTY
    out = EMPTY
    for named in dst.named_ports:
        if named.name in names and named.protocol in spec.protocols:
            out = out | ConnSet.single(named.protocol, IntervalSet.point(named.port))
    return out


def port_conns(ports: PortMatch, dst: Endpoint | None) -> ConnSet:
    """The (protocol, port) pairs a rule opens towards ``dst`` (named ports resolved on it)."""
    if ports is ANY_PORTS:
        return FULL
    out = EMPTY
    for spec in ports:  # type: ignore[union-attr]
        conns = ConnSet.build(spec.protocols, spec.ports) | _named(spec, spec.named, dst)
        if spec.not_named:
            conns = conns - _named(spec, spec.not_named, dst)
        out = out | conns
    return out


def uses_named_ports(ports: PortMatch) -> bool:
    return ports is not ANY_PORTS and any(s.named or s.not_named for s in ports)  # type: ignore[union-attr]
