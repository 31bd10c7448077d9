"""Does a policy select an endpoint, does a peer match a remote side, which ports does a rule open.

One implementation shared by the single-connection verdict and the class-based connectivity
engine, so that both always agree.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping

from polyfence.inventory import Endpoint, Inventory
from polyfence.model.labels import (
    KIND_KEY,
    KIND_NETWORK_SET,
    KIND_POD,
    NAME_KEY,
    NAMESPACE_KEY,
    SERVICE_ACCOUNT_KEY,
)
from polyfence.model.peers import (
    ANY_PEER,
    Entity,
    FqdnMatch,
    NetworkSet,
    Peer,
    PeerMatch,
    PrincipalMatch,
)
from polyfence.model.policy import Action, Layer, Rule, Subject
from polyfence.model.ports import ANY_PORTS, PortMatch, PortSpec, Protocol
from polyfence.model.selectors import And, Global, Not, Or, Selector
from polyfence.semantics.connset import EMPTY, FULL, ConnSet
from polyfence.semantics.intervals import IntervalSet, IPSet
from polyfence.semantics.profile import EvaluationProfile, HostNetworkMode
from polyfence.semantics.symbolic import SymbolicEndpoint

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class Remote:
    """The remote side of a connection: an inventory endpoint, or a bare external address."""

    __slots__ = ("addresses", "endpoint")

    def __init__(self, endpoint: Endpoint | None, address: str | None = None) -> None:
        self.endpoint = endpoint
        self.addresses: tuple[Address, ...]
        if endpoint is not None:
            self.addresses = tuple(ipaddress.ip_address(ip.split("/")[0]) for ip in endpoint.ips)
        else:
            self.addresses = (ipaddress.ip_address(address),) if address else ()

    def __repr__(self) -> str:
        return self.endpoint.ref if self.endpoint else str(self.addresses[0])


def fqdn_matches(fqdn: FqdnMatch, name: str) -> bool:
    """Cilium's rules: exact names; in patterns ``*`` is any run of name characters but never
    a dot (``*.cilium.io`` does not match ``cilium.io``); ``*`` alone matches every name."""
    name = name.rstrip(".").lower()
    if name in {n.rstrip(".").lower() for n in fqdn.names}:
        return True
    for pattern in fqdn.patterns:
        text = pattern.rstrip(".").lower()
        if text == "*":
            return True
        regex = "".join("[-a-z0-9_]*" if c == "*" else re.escape(c) for c in text)
        if re.fullmatch(regex, name):
            return True
    return False


def matches_global_scope(selector: Selector) -> bool:
    """Whether a namespace selector admits non-namespaced resources: only through ``global()``."""
    if isinstance(selector, Global):
        return True
    if isinstance(selector, Not):
        return not matches_global_scope(selector.expr)
    if isinstance(selector, And):
        return all(matches_global_scope(t) for t in selector.terms)
    if isinstance(selector, Or):
        return any(matches_global_scope(t) for t in selector.terms)
    return False  # all() and label tests speak of namespaces, which global resources lack


class Matcher:
    """Predicates over endpoints for one inventory, profile and set of network sets."""

    def __init__(
        self,
        inventory: Inventory,
        profile: EvaluationProfile,
        network_sets: Iterable[NetworkSet] = (),
    ) -> None:
        self.inventory = inventory
        self.profile = profile
        self.network_sets = tuple(dict.fromkeys(network_sets))
        self._set_ips = [(ns, ns.ipset()) for ns in self.network_sets]
        self._ns_labels: dict[str, Mapping[str, str]] = {}
        self._ep_labels: dict[int, Mapping[str, str]] = {}
        self._set_labels: dict[NetworkSet, Mapping[str, str]] = {}
        self._fqdn_cache: dict[FqdnMatch, IPSet] = {}

    def ns_labels(self, namespace: str) -> Mapping[str, str]:
        labels = self._ns_labels.get(namespace)
        if labels is None:
            labels = self.inventory.namespace(namespace).labels
            self._ns_labels[namespace] = labels
        return labels

    def endpoint_ns_labels(self, endpoint: Endpoint) -> Mapping[str, str]:
        """The labels of the endpoint's namespace (its own, in the universal inventory)."""
        if isinstance(endpoint, SymbolicEndpoint):
            return endpoint.namespace_labels
        return self.ns_labels(endpoint.namespace or "")

    def endpoint_labels(self, endpoint: Endpoint) -> Mapping[str, str]:
        """A pod's labels plus the reserved namespace / service-account / kind keys."""
        labels = self._ep_labels.get(id(endpoint))
        if labels is None:
            merged = dict(endpoint.labels)
            merged[NAMESPACE_KEY] = endpoint.namespace or ""
            merged[SERVICE_ACCOUNT_KEY] = endpoint.service_account or "default"
            merged[KIND_KEY] = KIND_POD
            labels = merged
            self._ep_labels[id(endpoint)] = labels
        return labels

    def set_labels(self, net_set: NetworkSet) -> Mapping[str, str]:
        labels = self._set_labels.get(net_set)
        if labels is None:
            merged = dict(net_set.labels)
            merged[KIND_KEY] = KIND_NETWORK_SET
            if net_set.namespace is not None:
                merged[NAMESPACE_KEY] = net_set.namespace
            labels = merged
            self._set_labels[net_set] = labels
        return labels

    def acts_as_pod(self, endpoint: Endpoint | None) -> bool:
        """Pods take part in pod selection unless hostNetwork pods count as their node."""
        if endpoint is None or not endpoint.is_pod:
            return False
        return not (endpoint.host_network and self.profile.host_network is HostNetworkMode.NODE)

    def sa_labels(self, endpoint: Endpoint) -> Mapping[str, str]:
        sa = endpoint.service_account or "default"
        if isinstance(endpoint, SymbolicEndpoint) and endpoint.account_labels is not None:
            labels = dict(endpoint.account_labels)
        else:
            key = (endpoint.namespace or "", sa)
            labels = dict(self.inventory.service_account_labels.get(key, {}))
        labels[NAME_KEY] = sa
        return labels

    # subjects -----------------------------------------------------------------------------
    def selects(self, subject: Subject, endpoint: Endpoint) -> bool:
        if subject.security_group is not None:
            # Membership is a fact of the endpoint (a cloud inventory), never a label match;
            # translators turn bindings such as EKS SecurityGroupPolicies into selectors.
            return subject.security_group in endpoint.security_groups
        if not self.acts_as_pod(endpoint):
            return False
        ns = endpoint.namespace or ""
        if subject.namespace is not None:
            if ns != subject.namespace:
                return False
        elif subject.namespace_selector is not None and not subject.namespace_selector.matches(
            self.endpoint_ns_labels(endpoint)
        ):
            return False
        if not subject.selector.matches(self.endpoint_labels(endpoint)):
            return False
        return subject.service_accounts is None or subject.service_accounts.matches(
            self.sa_labels(endpoint)
        )

    # peers --------------------------------------------------------------------------------
    def _ip_matches(self, ipset: IPSet, remote: Remote) -> bool:
        ep = remote.endpoint
        if ep is not None:
            if self.acts_as_pod(ep):
                if not self.profile.ipblock_matches_pods:
                    return False
            elif not self.profile.ipblock_matches_nodes:
                return False
        return any(addr in ipset for addr in remote.addresses)

    def _entity_matches(self, entity: Entity, remote: Remote, subject: Endpoint | None) -> bool:
        ep = remote.endpoint
        if entity is Entity.ALL:
            return True
        if entity is Entity.WORLD:
            return ep is None
        if entity is Entity.CLUSTER:
            return ep is not None
        if entity in (Entity.HOST, Entity.REMOTE_NODE):
            if ep is None or self.acts_as_pod(ep):
                return False
            node = ep.name if ep.kind == "Node" else ep.node  # hostNetwork pods are their node
            here = subject.node if subject is not None else None
            if here is None or node is None:
                return True  # where the subject runs is unknown: any node may be it
            return (node == here) is (entity is Entity.HOST)
        return False  # kube-apiserver, ingress, health, init, unmanaged: not in an inventory

    def _pod_selected(self, peer: Peer, ep: Endpoint) -> bool:
        ns = ep.namespace or ""
        if peer.namespace_names is not None and ns not in peer.namespace_names:
            return False
        if peer.namespace_selector is not None and not peer.namespace_selector.matches(
            self.endpoint_ns_labels(ep)
        ):
            return False
        if peer.pods is not None and not peer.pods.matches(self.endpoint_labels(ep)):
            return False
        sa = peer.service_account
        if sa is not None:
            if sa.names is not None and (ep.service_account or "default") not in sa.names:
                return False
            if sa.selector is not None and not sa.selector.matches(self.sa_labels(ep)):
                return False
        return True

    def set_selected(self, peer: Peer, net_set: NetworkSet) -> bool:
        if peer.service_account is not None:
            return False
        if net_set.namespace is None:
            if peer.namespace_names is not None:
                return False
            if peer.namespace_selector is not None and not matches_global_scope(
                peer.namespace_selector
            ):
                return False
        else:
            if peer.namespace_names is not None and net_set.namespace not in peer.namespace_names:
                return False
            if peer.namespace_selector is not None and not peer.namespace_selector.matches(
                self.ns_labels(net_set.namespace)
            ):
                return False
        return peer.pods is None or peer.pods.matches(self.set_labels(net_set))

    def _sets_containing(self, remote: Remote) -> list[NetworkSet]:
        ep = remote.endpoint
        if ep is not None and not (
            self.profile.ipblock_matches_pods
            if self.acts_as_pod(ep)
            else self.profile.ipblock_matches_nodes
        ):
            return []
        return [ns for ns, ips in self._set_ips if any(a in ips for a in remote.addresses)]

    def peer_matches(self, peer: Peer, remote: Remote, subject: Endpoint | None = None) -> bool:
        """Whether ``remote`` is this peer, seen from ``subject`` (which matters for
        the host / remote-node entities only)."""
        ep = remote.endpoint
        is_pod = self.acts_as_pod(ep)
        if peer.wants_pod:
            selected = is_pod and self._pod_selected(peer, ep)  # type: ignore[arg-type]
            if not selected and peer.sets:
                selected = any(self.set_selected(peer, s) for s in self._sets_containing(remote))
            if not selected:
                return False
        if peer.not_pods is not None:
            if is_pod and peer.not_pods.matches(self.endpoint_labels(ep)):  # type: ignore[arg-type]
                return False
            if peer.sets and any(
                peer.not_pods.matches(self.set_labels(s)) for s in self._sets_containing(remote)
            ):
                return False
        ipset = peer.ipset()
        if ipset is not None and not self._ip_matches(ipset, remote):
            return False
        if peer.entity is not None and not self._entity_matches(peer.entity, remote, subject):
            return False
        if peer.fqdn is not None and not self._ip_matches(self.resolve(peer.fqdn), remote):
            return False
        if peer.security_group is not None and (
            ep is None or peer.security_group not in ep.security_groups
        ):
            return False  # a group reference matches the endpoints carrying the group
        return peer.principal is None or self._principal_matches(peer.principal, remote, subject)

    # service mesh -------------------------------------------------------------------------
    def mtls_mode(self, endpoint: Endpoint) -> str:
        """The peer-authentication mode of a mesh workload."""
        return endpoint.mtls or self.profile.mtls_default.upper()

    def mutual_tls(self, remote: Remote, subject: Endpoint | None) -> bool:
        """Whether a connection from ``remote`` to ``subject`` carries a peer certificate:
        the client has a proxy and the server does not disable mTLS (Istio's auto mTLS)."""
        ep = remote.endpoint
        if ep is None or not ep.mesh or not self.acts_as_pod(ep):
            return False
        return subject is None or self.mtls_mode(subject) != "DISABLE"

    def identity(self, remote: Remote, subject: Endpoint | None) -> tuple[str, str]:
        """(principal, namespace) from the peer certificate; empty for plain-text traffic."""
        if not self.mutual_tls(remote, subject):
            return "", ""
        ep = remote.endpoint
        assert ep is not None
        ns = ep.namespace or ""
        sa = ep.service_account or "default"
        return f"{self.profile.trust_domain}/ns/{ns}/sa/{sa}", ns

    def _principal_matches(
        self, match: PrincipalMatch, remote: Remote, subject: Endpoint | None
    ) -> bool:
        principal, namespace = self.identity(remote, subject)
        if match.principals is not None and not any(
            istio_match(p, principal) for p in match.principals
        ):
            return False
        if any(istio_match(p, principal) for p in match.not_principals):
            return False
        if match.namespaces is not None and not any(
            istio_match(n, namespace) for n in match.namespaces
        ):
            return False
        return not any(istio_match(n, namespace) for n in match.not_namespaces)

    def resolve(self, fqdn: FqdnMatch) -> IPSet:
        """The addresses the inventory's DNS answers give for these names and patterns."""
        found = self._fqdn_cache.get(fqdn)
        if found is None:
            found = IPSet.empty()
            for name, addresses in self.inventory.dns:
                if fqdn_matches(fqdn, name):
                    found = found | IPSet.from_cidrs(addresses)
            self._fqdn_cache[fqdn] = found
        return found

    def peers_match(
        self, peers: PeerMatch, remote: Remote, subject: Endpoint | None = None
    ) -> bool:
        if peers is ANY_PEER:
            return True
        return any(self.peer_matches(p, remote, subject) for p in peers)  # type: ignore[union-attr]


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


def istio_match(pattern: str, value: str) -> bool:
    """Istio string matching: exact, ``prefix*``, ``*suffix``, and ``*`` for any non-empty value.
    Plain-text traffic has empty identities, so positive patterns never match it."""
    if pattern == "*":
        return value != ""
    if pattern.endswith("*"):
        return value != "" and value.startswith(pattern[:-1])
    if pattern.startswith("*"):
        return value != "" and value.endswith(pattern[1:])
    return value == pattern


# ``…ns/NS/sa/SA`` at the end of a principal pattern: the namespace, and the account (which
# may still hold a ``*`` when the pattern is a prefix).
PRINCIPAL_IDENTITY = re.compile(r"(?:^|/)ns/([^/*]+)/sa/([^/]*)$")


def identity_namespaces(match: PrincipalMatch) -> frozenset[str] | None:
    """The namespaces a positive identity test confines matches to, when it says so: every
    principal names its namespace (``td/ns/NS/sa/SA``, ``*/ns/NS/sa/SA``) or the namespaces
    are exact. None when the test may match elsewhere (wildcards, only negations)."""
    found: frozenset[str] | None = None
    if match.principals is not None:
        names: set[str] = set()
        for pattern in match.principals:
            hit = PRINCIPAL_IDENTITY.search(pattern)
            if hit is None:
                names = set()
                break
            names.add(hit.group(1))
        if names:
            found = frozenset(names)
    if match.namespaces is not None and not any("*" in n for n in match.namespaces):
        found = frozenset(match.namespaces) if found is None else found & match.namespaces
    return found


TCP_CONNS = ConnSet.single(int(Protocol.TCP), IntervalSet.span(0, 65535))
NON_TCP_CONNS = FULL - TCP_CONNS


def enforced_on(layer: Layer, endpoint: Endpoint) -> bool:
    """Whether a layer's policies act on an endpoint at all: the proxy layer only on workloads
    in the mesh (policies selecting other workloads have no proxy to run in)."""
    return layer is not Layer.L7 or endpoint.mesh


def rule_conns(rule: Rule, layer: Layer, dst: Endpoint | None) -> ConnSet:
    """What a rule matches towards ``dst`` at L4. In the proxy layer a rule constrained by HTTP
    fields cannot match plain TCP: Istio ignores such an ALLOW rule on TCP ports and drops the
    HTTP parts of such a DENY rule there. On ports that may carry HTTP, an ALLOW lets the
    connection through (some requests pass) and a DENY does not stop the connection."""
    conns = port_conns(rule.ports, dst)
    if layer is not Layer.L7 or rule.l7 is None or dst is None:
        return conns
    opaque = EMPTY
    for port in dst.opaque_ports:
        opaque = opaque | ConnSet.single(int(Protocol.TCP), IntervalSet.point(port))
    if rule.action is Action.DENY:
        return conns & (opaque | NON_TCP_CONNS)
    return conns - opaque


def mesh_relative(peer: Peer) -> bool:
    """Whether the peer's meaning depends on the subject (mesh identities need its mTLS mode)."""
    return peer.principal is not None


def node_relative(peer: Peer) -> bool:
    """Whether the peer's meaning depends on the subject's node (host / remote-node)."""
    return peer.entity in (Entity.HOST, Entity.REMOTE_NODE)
