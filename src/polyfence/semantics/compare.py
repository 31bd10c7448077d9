"""Compare two policy sets on an inventory: equivalent, wider, narrower or incomparable.

Both sets are evaluated on one joint class partition (fine enough for the selectors and
CIDRs of both), so each class pair is compared once, with a concrete witness connection
for every difference found.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

from polyfence.inventory import Inventory
from polyfence.model.policy import PolicySet
from polyfence.model.ports import protocol_name
from polyfence.semantics.connset import ConnSet
from polyfence.semantics.engine import Connectivity, EndpointClass, Universe, iter_bits
from polyfence.semantics.profile import DEFAULT_PROFILE, EvaluationProfile


class Relation(Enum):
    EQUIVALENT = "equivalent"
    WIDER = "wider"  # B allows something A does not, and nothing less
    NARROWER = "narrower"
    INCOMPARABLE = "incomparable"


@dataclass(frozen=True, slots=True)
class Witness:
    """A concrete connection allowed by one side only."""

    src: str
    dst: str
    protocol: str
    port: int | None
    allowed_by: str  # "a" or "b"

    def to_dict(self) -> dict[str, Any]:
        return {
            "src": self.src,
            "dst": self.dst,
            "protocol": self.protocol,
            "port": self.port,
            "allowed_by": self.allowed_by,
        }

    def __str__(self) -> str:
        port = "" if self.port is None else f"/{self.port}"
        return f"{self.src} -> {self.dst} {self.protocol}{port} allowed only by {self.allowed_by.upper()}"


@dataclass(frozen=True, slots=True)
class Comparison:
    relation: Relation
    witnesses: tuple[Witness, ...]
    pairs_compared: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "relation": self.relation.value,
            "pairs_compared": self.pairs_compared,
            "witnesses": [w.to_dict() for w in self.witnesses],
        }


def _name(cls: EndpointClass, nth: int = 0) -> str:
    if cls.external is not None:
        return str(cls.representative)
    return cls.members[min(nth, len(cls.members) - 1)].ref


def _witness(u: Universe, s: int, d: int, diff: ConnSet, side: str, dst_name: str) -> Witness:
    sample = diff.sample()
    assert sample is not None
    proto, port = sample
    return Witness(_name(u.classes[s]), dst_name, protocol_name(proto), port, side)


def _visible_dst(u: Universe, s: int, d: int, profile: EvaluationProfile) -> str | None:
    """A destination member for which policy decides (not the source itself, not its node's pod)."""
    src, dst = u.classes[s], u.classes[d]
    if dst.external is not None:
        return str(dst.representative)
    self_kinds = ("Pod", "Node")
    candidates = dst.members[1:] if s == d and dst.members[0].kind in self_kinds else dst.members
    src_ep = src.representative.endpoint
    if profile.node_to_local_pod and src_ep is not None and src_ep.kind == "Node":
        candidates = [m for m in candidates if m.node != src_ep.name]
    return candidates[0].ref if candidates else None


def compare(
    a: PolicySet,
    b: PolicySet,
    inventory: Inventory,
    profile: EvaluationProfile = DEFAULT_PROFILE,
    *,
    max_witnesses: int = 5,
) -> Comparison:
    """How B's allowed connectivity relates to A's on ``inventory``."""
    universe = Universe(inventory, [a, b], profile)
    ca, cb = Connectivity(universe, a), Connectivity(universe, b)
    wider: list[Witness] = []
    narrower: list[Witness] = []
    pairs = 0
    for s in range(universe.size):
        # Pairs outside both candidate sets are empty on both sides: nothing to compare.
        for d in iter_bits(ca.candidates(s) | cb.candidates(s)):
            pairs += 1
            xa, xb = ca.allowed(s, d), cb.allowed(s, d)
            if xa == xb:
                continue
            dst_name = _visible_dst(universe, s, d, profile)
            if dst_name is None:
                continue  # only self traffic or node-to-local-pod, which are always allowed
            extra = xb - xa
            if extra and len(wider) < max_witnesses:
                wider.append(_witness(universe, s, d, extra, "b", dst_name))
            missing = xa - xb
            if missing and len(narrower) < max_witnesses:
                narrower.append(_witness(universe, s, d, missing, "a", dst_name))
        if len(wider) >= max_witnesses and len(narrower) >= max_witnesses:
            break
    if wider and narrower:
        relation = Relation.INCOMPARABLE
    elif wider:
        relation = Relation.WIDER
    elif narrower:
        relation = Relation.NARROWER
    else:
        relation = Relation.EQUIVALENT
    return Comparison(relation, tuple(wider + narrower), pairs)
