"""Compare two policy sets: equivalent, wider, narrower or incomparable, and on what basis.

Both sets are evaluated on one joint class partition (fine enough for the selectors and
CIDRs of both), so each class pair is compared once, with a concrete witness connection
for every difference found. The inventory is the given one, a synthesised one, or the
universal inventory of ``semantics.universe``, on which the verdict holds for every cluster
and each difference comes with its counterexample cluster (``semantics.counterexample``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import Enum
from typing import Any

from polyfence.inventory import Inventory
from polyfence.model.policy import PolicySet
from polyfence.model.ports import protocol_name
from polyfence.semantics.connset import ConnSet
from polyfence.semantics.engine import Connectivity, EndpointClass, Universe, iter_bits
from polyfence.semantics.profile import DEFAULT_PROFILE, EvaluationProfile
from polyfence.semantics.universe import DEFAULT_BOUND, Bound, Undecided, universal_inventory


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


class BasisKind(Enum):
    EVERY_CLUSTER = "every-cluster"
    GIVEN = "given-inventory"
    SYNTHESISED = "synthesised-inventory"


@dataclass(frozen=True, slots=True)
class Basis:
    """What a verdict holds for: every cluster, the given inventory, or only the synthesised
    one (then ``undecided`` says why every cluster could not be decided)."""

    kind: BasisKind
    namespaces: int = 0
    endpoints: int = 0
    undecided: str | None = None
    # Every cluster: how it was decided ("symbolic": BDDs over one connection's facts;
    # "universal-inventory": the engine on one endpoint per realisable combination of facts),
    # and why the symbolic procedure did not decide it (the construct it does not model).
    method: str | None = None
    fallback: str | None = None

    @property
    def proven(self) -> bool:
        """Whether "equivalent" here is a proof for every cluster: the symbolic procedure models
        every construct in play; the enumeration has been seen to miss differences, so its
        "equivalent" is evidence, not proof (a difference it finds is real: it reproduces)."""
        return self.kind is BasisKind.EVERY_CLUSTER and self.method != "universal-inventory"

    def describe(self) -> str:
        """``every cluster`` / ``the given inventory (3 namespaces, 412 endpoints)`` / …"""
        if self.kind is BasisKind.EVERY_CLUSTER and not self.proven:
            why = f": {self.fallback} has no symbolic model" if self.fallback else ""
            return (
                "a universal inventory (every combination of the facts in play, enumerated"
                f"{why}; not a proof for every cluster)"
            )
        if self.kind is BasisKind.EVERY_CLUSTER:
            return "every cluster"
        counts = f"{self.namespaces} namespaces, {self.endpoints} endpoints"
        if self.kind is BasisKind.GIVEN:
            return f"the given inventory ({counts})"
        return f"the synthesised inventory only ({counts})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "namespaces": self.namespaces,
            "endpoints": self.endpoints,
            "undecided": self.undecided,
            "method": self.method,
            "fallback": self.fallback,
        }


@dataclass(frozen=True, slots=True)
class Counterexample:
    """A cluster on which the two sets differ: the witness connection, the Kubernetes objects
    that make it (``kubectl apply -f``-able), and the same cluster as an inventory."""

    witness: Witness
    documents: tuple[dict[str, Any], ...]
    inventory: Inventory
    notes: tuple[str, ...] = ()  # facts no Kubernetes object carries (security groups …)

    def yaml(self) -> str:
        from polyfence.io.files import dump

        head = [f"# {self.witness}"] + [f"# {note}" for note in self.notes]
        return "\n".join(head) + "\n" + dump(list(self.documents), "yaml")

    def to_dict(self) -> dict[str, Any]:
        return {
            "witness": self.witness.to_dict(),
            "documents": list(self.documents),
            "notes": list(self.notes),
        }


@dataclass(frozen=True, slots=True)
class Comparison:
    relation: Relation
    witnesses: tuple[Witness, ...]
    pairs_compared: int
    basis: Basis | None = None
    counterexamples: tuple[Counterexample, ...] = ()
    given: Comparison | None = None  # with ``all_clusters=True``: the verdict on the inventory

    @property
    def counterexample(self) -> Counterexample | None:
        """The first counterexample cluster (every-cluster basis, sets differ), else None."""
        return self.counterexamples[0] if self.counterexamples else None

    @property
    def decided(self) -> bool:
        """Whether the verdict holds on its stated basis without a caveat: not undecided, and
        an "equivalent" without an inventory is a proof (see ``Basis.proven``)."""
        basis = self.basis
        if basis is None:
            return True
        if basis.undecided is not None:
            return False
        return (
            self.relation is not Relation.EQUIVALENT
            or basis.kind is not BasisKind.EVERY_CLUSTER
            or basis.proven
        )

    def headline(self) -> str:
        """The first line of a report: the relation and always its basis."""
        rel = self.relation.value
        basis = self.basis
        if basis is None:
            return f"{rel} on the inventory compared"
        if basis.undecided is not None:
            return (
                f"undecided on every cluster within the bound ({basis.undecided}); "
                f"on {basis.describe()}: {rel}"
            )
        if basis.kind is BasisKind.EVERY_CLUSTER and self.relation is not Relation.EQUIVALENT:
            return f"{rel}: counterexample cluster below"
        return f"{rel} on {basis.describe()}"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "relation": self.relation.value,
            "basis": None if self.basis is None else self.basis.to_dict(),
            "pairs_compared": self.pairs_compared,
            "witnesses": [w.to_dict() for w in self.witnesses],
            "counterexamples": [c.to_dict() for c in self.counterexamples],
        }
        if self.given is not None:
            out["given_inventory"] = self.given.to_dict()
        return out


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


def _relation(wider: list[Witness], narrower: list[Witness]) -> Relation:
    if wider and narrower:
        return Relation.INCOMPARABLE
    if wider:
        return Relation.WIDER
    if narrower:
        return Relation.NARROWER
    return Relation.EQUIVALENT


def _inventory_basis(inventory: Inventory, kind: BasisKind) -> Basis:
    pods = sum(1 for ep in inventory.endpoints if ep.is_pod)
    return Basis(kind, len(inventory.namespaces), pods)


def compare(
    a: PolicySet,
    b: PolicySet,
    inventory: Inventory,
    profile: EvaluationProfile = DEFAULT_PROFILE,
    *,
    max_witnesses: int = 5,
    basis: BasisKind = BasisKind.GIVEN,
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
    return Comparison(
        _relation(wider, narrower),
        tuple(wider + narrower),
        pairs,
        _inventory_basis(inventory, basis),
    )


def compare_every_cluster(
    a: PolicySet,
    b: PolicySet,
    profile: EvaluationProfile = DEFAULT_PROFILE,
    bound: Bound = DEFAULT_BOUND,
    *,
    symbolic: bool = True,
) -> Comparison:
    """How B relates to A on every cluster; raises ``Undecided`` beyond ``bound``.

    The symbolic procedure (``semantics.bdd``) decides whatever it models; sets with other
    constructs (``Basis.fallback`` names the first) go to the universal inventory, where each
    difference involves at most two endpoints (``symbolic=False`` forces that method: tests and
    benchmarks check one against the other). Either way a difference is returned as a
    counterexample cluster of those endpoints and their namespaces, re-checked.
    """
    from polyfence.semantics import bdd
    from polyfence.semantics.counterexample import build_counterexample, realisable

    fallback = bdd.out_of_scope([a, b]) if symbolic else "the universal inventory was asked for"
    if fallback is None:
        decided = bdd.decide(a, b, profile, bound.seconds)
        cexs = decided.counterexamples
        wider = [cexs["b"].witness] if "b" in cexs else []
        narrower = [cexs["a"].witness] if "a" in cexs else []
        return Comparison(
            _relation(wider, narrower),
            tuple(wider + narrower),
            0,
            Basis(BasisKind.EVERY_CLUSTER, method="symbolic"),
            tuple(cexs[k] for k in ("b", "a") if k in cexs),
        )
    started = time.monotonic()
    universal = universal_inventory([a, b], profile, bound)
    universe = Universe(universal.inventory, [a, b], profile)
    ca, cb = Connectivity(universe, a), Connectivity(universe, b)
    found: dict[str, Counterexample] = {}
    pairs = 0
    deadline = started + bound.seconds
    for s in range(universe.size):
        if time.monotonic() > deadline:
            raise Undecided(
                f"over the {bound.seconds:g} s budget comparing "
                f"{universal.endpoints} endpoint classes"
            )
        for d in iter_bits(ca.candidates(s) | cb.candidates(s)):
            pairs += 1
            xa, xb = ca.allowed(s, d), cb.allowed(s, d)
            if xa == xb or not realisable(universe, s, d, profile):
                continue
            for side, diff in (("b", xb - xa), ("a", xa - xb)):
                if diff and side not in found:
                    cex = build_counterexample(a, b, universe, s, d, diff, side)
                    if cex is not None:
                        found[side] = cex
        if len(found) == 2:
            break
    wider = [found["b"].witness] if "b" in found else []
    narrower = [found["a"].witness] if "a" in found else []
    return Comparison(
        _relation(wider, narrower),
        tuple(wider + narrower),
        pairs,
        Basis(
            BasisKind.EVERY_CLUSTER,
            universal.namespaces,
            universal.endpoints,
            method="universal-inventory",
            fallback=fallback,
        ),
        tuple(found[k] for k in ("b", "a") if k in found),
    )
