"""Policies, rules and policy sets: the canonical intermediate model (IR).

The IR is explicit: every default a format implies is written out when reading. Edge cases
are named values, never ``None``/``[]`` conventions:

* ``NOT_GOVERNED``: the policy leaves a direction alone (k8s type not in ``policyTypes``);
* ``Governed(rules=(), isolates=True)``: the direction is governed and nothing matches, so
  everything is dropped (k8s ``ingress: []``);
* ``Governed(..., isolates=False)``: rules act, unmatched traffic falls through (Cilium
  ``enableDefaultDeny: false``);
* ``ANY_PEER`` / ``ANY_PORTS``: the rule does not constrain peers / ports.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import Enum

from polyfence.model.peers import ANY_PEER, NetworkSet, Peer, PeerMatch
from polyfence.model.ports import ANY_PORTS, PortMatch
from polyfence.model.provenance import SourceRef
from polyfence.model.selectors import All, Selector


class Action(Enum):
    """What a matching rule does."""

    ALLOW = "allow"
    DENY = "deny"
    PASS = "pass"  # leave the current tier, continue with the next one
    LOG = "log"  # record and continue with the next rule


class Direction(Enum):
    """Traffic direction relative to the policy subject."""

    INGRESS = "ingress"
    EGRESS = "egress"


class Layer(Enum):
    """Enforcement layer; layers AND together (a connection must pass every layer)."""

    NETWORK = "network"  # L3/L4 CNI dataplane: k8s, Calico, Cilium
    L7 = "l7"  # proxy: Istio
    CLOUD = "cloud"  # cloud firewall: AWS security groups


DEFAULT_TIER = "default"
DEFAULT_TIER_ORDER = 1_000_000.0
KUBERNETES_POLICY_ORDER = 1000.0


@dataclass(frozen=True, slots=True)
class HttpMatch:
    """One HTTP request pattern; empty fields do not constrain. Paths are (kind, value) pairs."""

    methods: frozenset[str] = frozenset()
    paths: tuple[tuple[str, str], ...] = ()  # kind in {"exact", "prefix", "regex"}
    hosts: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class L7Match:
    """Application-layer constraint of a rule: any of the HTTP patterns, any of the DNS names."""

    http: tuple[HttpMatch, ...] = ()
    dns: tuple[str, ...] = ()
    other: tuple[str, ...] = ()  # protocols we carry by name only (e.g. "kafka")


@dataclass(frozen=True, slots=True)
class Rule:
    """Peers AND ports (AND L7) decide whether the rule matches; ``action`` what it then does."""

    action: Action = Action.ALLOW
    peers: PeerMatch = ANY_PEER
    ports: PortMatch = ANY_PORTS
    l7: L7Match | None = None
    local: Peer | None = None  # constraint on the subject's own side (Calico ingress destination)
    source: SourceRef | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Governed:
    """A governed direction: ordered rules, and whether unmatched traffic is dropped."""

    rules: tuple[Rule, ...] = ()
    isolates: bool = True


class NotGoverned:
    """The policy does not govern this direction at all."""

    __slots__ = ()
    _instance: NotGoverned | None = None

    def __new__(cls) -> NotGoverned:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "NOT_GOVERNED"

    def __reduce__(self) -> str:
        return "NOT_GOVERNED"


NOT_GOVERNED = NotGoverned()
DirectionRules = Governed | NotGoverned


@dataclass(frozen=True, slots=True)
class PolicyId:
    """Identity of a policy: its format, namespace (None when cluster-scoped) and name."""

    format: str
    namespace: str | None
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}" if self.namespace else self.name


@dataclass(frozen=True, slots=True)
class Subject:
    """The endpoints a policy governs.

    ``namespace`` set: pods of that namespace matching ``selector``. ``namespace`` None:
    cluster-wide, pods in namespaces matching ``namespace_selector`` (and, with
    ``include_hosts``, host endpoints matching ``selector``). ``service_accounts`` further
    restricts by service account; ``security_group`` selects the endpoints carrying a group.
    """

    namespace: str | None
    selector: Selector = field(default_factory=All)
    namespace_selector: Selector | None = None
    service_accounts: Selector | None = None
    security_group: str | None = None
    include_hosts: bool = False


@dataclass(frozen=True, slots=True)
class Policy:
    """One policy in the IR."""

    id: PolicyId
    subject: Subject
    ingress: DirectionRules = NOT_GOVERNED
    egress: DirectionRules = NOT_GOVERNED
    tier: str = DEFAULT_TIER
    order: float | None = KUBERNETES_POLICY_ORDER
    layer: Layer = Layer.NETWORK
    labels: tuple[tuple[str, str], ...] = ()
    source: SourceRef | None = field(default=None, compare=False)

    def direction(self, direction: Direction) -> DirectionRules:
        """The rules for one direction."""
        return self.ingress if direction is Direction.INGRESS else self.egress

    @property
    def sort_key(self) -> tuple[float, str]:
        """Calico order: ascending order, missing order last, ties by name."""
        return (float("inf") if self.order is None else self.order, self.id.name)


@dataclass(frozen=True, slots=True)
class Tier:
    """An ordered group of policies; unmatched traffic at its end is dropped or passed."""

    name: str
    order: float | None = DEFAULT_TIER_ORDER
    default_action: Action = Action.DENY

    @property
    def sort_key(self) -> tuple[float, str]:
        return (float("inf") if self.order is None else self.order, self.name)


@dataclass(frozen=True, slots=True)
class PolicySet:
    """An ordered, immutable collection of policies with the tiers they live in."""

    policies: tuple[Policy, ...] = ()
    tiers: tuple[Tier, ...] = (Tier(DEFAULT_TIER),)
    network_sets: tuple[NetworkSet, ...] = ()  # labelled address sets peers may select

    def __iter__(self) -> Iterator[Policy]:
        return iter(self.policies)

    def __len__(self) -> int:
        return len(self.policies)

    def tier(self, name: str) -> Tier:
        """The named tier; an undeclared tier sorts last and drops at its end."""
        for tier in self.tiers:
            if tier.name == name:
                return tier
        if name == DEFAULT_TIER:
            return Tier(DEFAULT_TIER)
        return Tier(name, None)

    def with_policies(self, policies: Iterable[Policy]) -> PolicySet:
        """A copy holding other policies and the same tiers and network sets."""
        return PolicySet(tuple(policies), self.tiers, self.network_sets)

    def merge(self, other: PolicySet) -> PolicySet:
        """Both sets' policies and network sets; tiers by name, this set's definition winning."""
        names = {t.name for t in self.tiers}
        return PolicySet(
            self.policies + other.policies,
            self.tiers + tuple(t for t in other.tiers if t.name not in names),
            self.network_sets + other.network_sets,
        )

    def layers(self) -> frozenset[Layer]:
        return frozenset(p.layer for p in self.policies)
