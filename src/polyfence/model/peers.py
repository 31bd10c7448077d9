"""Peers: the other side of a connection, as a conjunction of constraints.

A ``Peer`` holds optional constraints; every constraint that is set must hold (AND) and a
rule's peers are OR-ed. Everything a format implies is explicit here: a Kubernetes
``podSelector`` alone becomes ``namespace_names={policy namespace}`` plus ``pods``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from polyfence.model.selectors import Selector
from polyfence.semantics.intervals import IPSet


class Entity(Enum):
    """Cilium-style reserved identities, usable by any format that names them."""

    WORLD = "world"
    CLUSTER = "cluster"
    HOST = "host"
    REMOTE_NODE = "remote-node"
    KUBE_APISERVER = "kube-apiserver"
    INGRESS = "ingress"
    HEALTH = "health"
    INIT = "init"
    UNMANAGED = "unmanaged"
    ALL = "all"


@dataclass(frozen=True, slots=True)
class IpMatch:
    """IP in any of ``nets`` (or anywhere when ``nets`` is None) and in none of ``not_nets``.

    The CIDR strings are kept as written so that writers can emit the idiomatic form
    (``cidr`` + ``except``) instead of a computed cover.
    """

    nets: tuple[str, ...] | None
    not_nets: tuple[str, ...] = ()

    def ipset(self) -> IPSet:
        """The addresses matched."""
        base = IPSet.all() if self.nets is None else IPSet.from_cidrs(self.nets)
        return base - IPSet.from_cidrs(self.not_nets) if self.not_nets else base


@dataclass(frozen=True, slots=True)
class ServiceAccountMatch:
    """Service accounts by name (any of ``names``) and/or by a selector over SA labels."""

    names: frozenset[str] | None = None
    selector: Selector | None = None


@dataclass(frozen=True, slots=True)
class FqdnMatch:
    """DNS names: exact ``names`` or ``patterns`` with ``*`` wildcards (Cilium matchPattern)."""

    names: frozenset[str] = frozenset()
    patterns: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class PrincipalMatch:
    """Mesh identities (Istio): principal patterns, certificate namespaces, their negations."""

    principals: frozenset[str] | None = None
    not_principals: frozenset[str] = frozenset()
    namespaces: frozenset[str] | None = None
    not_namespaces: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Peer:
    """A conjunction of constraints on the remote endpoint; an all-None peer matches anything.

    ``pods`` and ``namespace_*`` restrict the peer to pod endpoints; ``not_pods`` (Calico
    ``notSelector``) excludes matching pods but matches everything else, external addresses
    included.
    """

    pods: Selector | None = None
    not_pods: Selector | None = None
    namespace_selector: Selector | None = None
    namespace_names: frozenset[str] | None = None
    service_account: ServiceAccountMatch | None = None
    ip: IpMatch | None = None
    entity: Entity | None = None
    fqdn: FqdnMatch | None = None
    security_group: str | None = None
    principal: PrincipalMatch | None = None
    sets: bool = False  # ``pods``/namespace selection also matches labelled network sets
    _ipset: IPSet | None = field(default=None, init=False, compare=False, repr=False)

    @property
    def wants_pod(self) -> bool:
        """Whether only pod (workload) endpoints can match."""
        return (
            self.pods is not None
            or self.namespace_selector is not None
            or self.namespace_names is not None
            or self.service_account is not None
        )

    def ipset(self) -> IPSet | None:
        """The addresses this peer's IP constraint matches (cached), or None without one."""
        if self.ip is None:
            return None
        cached = self._ipset
        if cached is None:
            cached = self.ip.ipset()
            object.__setattr__(self, "_ipset", cached)
        return cached


@dataclass(frozen=True, slots=True)
class NetworkSet:
    """A labelled set of addresses that selectors can pick like endpoints (Calico NetworkSet).

    ``namespace`` None: cluster-wide (GlobalNetworkSet).
    """

    name: str
    namespace: str | None
    labels: tuple[tuple[str, str], ...]
    nets: tuple[str, ...]

    def ipset(self) -> IPSet:
        return IPSet.from_cidrs(self.nets)


class AnyPeer:
    """Matches every peer: in-cluster endpoints and every address (k8s rule without from/to)."""

    __slots__ = ()
    _instance: AnyPeer | None = None

    def __new__(cls) -> AnyPeer:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "ANY_PEER"

    def __reduce__(self) -> str:
        return "ANY_PEER"


ANY_PEER = AnyPeer()
PeerMatch = tuple[Peer, ...] | AnyPeer
