"""Fidelity reports: what a translation could not carry exactly, where, and with what effect."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import Enum, StrEnum
from typing import Any

from polyfence.model.provenance import SourceRef


class Effect(Enum):
    """What happened to the allowed traffic."""

    NONE = "none"  # cosmetic: names, labels, log-only actions
    WIDENED = "widened"  # the output allows connections the input denied
    NARROWED = "narrowed"  # the output denies connections the input allowed
    INVENTORY_DEPENDENT = "inventory-dependent"  # exact only for the given cluster snapshot


class Treatment(Enum):
    """What the translator did about the construct."""

    APPROXIMATED = "approximated"
    DROPPED = "dropped"
    EXPANDED = "expanded"  # resolved against the inventory (enumerated pods, ports, CIDRs)


class Feature(StrEnum):
    """One shared vocabulary of constructs, used by every translator's losses and capability table."""

    DENY_ACTION = "deny-action"
    PASS_ACTION = "pass-action"
    LOG_ACTION = "log-action"
    ORDER = "order"
    TIER = "tier"
    ALLOW_WITHOUT_ISOLATION = "allow-without-isolation"
    CLUSTER_SCOPE = "cluster-scope"
    HOST_ENDPOINT = "host-endpoint"
    SELECTOR_EXPRESSION = "selector-expression"
    NOT_SELECTOR = "not-selector"
    NAMESPACE_SELECTOR = "namespace-selector"
    SERVICE_ACCOUNT = "service-account"
    PRINCIPAL = "principal"
    SECURITY_GROUP = "security-group"
    ENTITY = "entity"
    FQDN = "fqdn"
    IPBLOCK = "ipblock"
    IPBLOCK_EXCEPT = "ipblock-except"
    NOT_NETS = "not-nets"
    PROTOCOL = "protocol"
    PORT_RANGE = "port-range"
    NAMED_PORT = "named-port"
    NOT_PORTS = "not-ports"
    ICMP = "icmp"
    L7_HTTP = "l7-http"
    L7_DNS = "l7-dns"
    L7_OTHER = "l7-other"
    EGRESS = "egress"
    LAYER = "layer"
    METADATA = "metadata"
    UNEXPLAINED = "unexplained-difference"  # found by verification, not by the translator


@dataclass(frozen=True, slots=True)
class Loss:
    """One construct that was not carried exactly."""

    effect: Effect
    treatment: Treatment
    feature: Feature
    source: SourceRef | None
    message: str
    witness: dict[str, Any] | None = field(default=None, compare=False)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "effect": self.effect.value,
            "treatment": self.treatment.value,
            "feature": self.feature.value,
            "message": self.message,
        }
        if self.source is not None:
            out["source"] = {
                "file": self.source.file,
                "document": self.source.document,
                "pointer": self.source.pointer,
            }
        if self.witness is not None:
            out["witness"] = self.witness
        return out

    def __str__(self) -> str:
        where = f"{self.source}: " if self.source else ""
        return f"{where}{self.effect.value} ({self.feature.value}, {self.treatment.value}): {self.message}"


@dataclass(frozen=True, slots=True)
class Verification:
    """The engine's verdict on output versus input, and what it holds for.

    ``basis`` is ``every-cluster`` (decided for every cluster), ``given-inventory`` or
    ``synthesised-inventory`` (then ``undecided`` says why every cluster was not decided);
    ``basis_text`` says it in words, with counts; ``counterexample`` is the cluster (objects
    and connection) on which output and input differ, when decided on every cluster.
    """

    relation: str  # equivalent | wider | narrower | incomparable
    inventory: str  # every-cluster | given | synthesised
    witnesses: tuple[dict[str, Any], ...] = ()
    basis: str = "given-inventory"
    basis_text: str = "given inventory"
    undecided: str | None = None
    counterexample: dict[str, Any] | None = field(default=None, compare=False)
    method: str | None = None  # every cluster: "symbolic" or "universal-inventory"
    fallback: str | None = None  # the construct that kept the symbolic procedure out

    @property
    def proven(self) -> bool:
        """Decided for every cluster by a procedure that models every construct in play."""
        return self.basis == "every-cluster" and self.undecided is None

    def describe(self) -> str:
        """``verification (every cluster): equivalent`` and the like: never without a basis."""
        if self.undecided is not None:
            return (
                f"verification ({self.basis_text}; undecided on every cluster: "
                f"{self.undecided}): {self.relation}"
            )
        return f"verification ({self.basis_text}): {self.relation}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "relation": self.relation,
            "inventory": self.inventory,
            "basis": self.basis,
            "basis_text": self.basis_text,
            "undecided": self.undecided,
            "witnesses": list(self.witnesses),
            "counterexample": self.counterexample,
            "method": self.method,
            "fallback": self.fallback,
        }


@dataclass(frozen=True, slots=True)
class FidelityReport:
    """Every loss of one translation, plus the verification verdict when one was run."""

    source_format: str
    target_format: str
    losses: tuple[Loss, ...] = ()
    verification: Verification | None = None

    @property
    def exact(self) -> bool:
        """No loss of any kind and, when verified, judged equivalent."""
        verified_ok = self.verification is None or self.verification.relation == "equivalent"
        return verified_ok and not any(loss.effect is not Effect.NONE for loss in self.losses)

    @property
    def widens(self) -> bool:
        """Whether the output may allow more than the input.

        A verification proven on every cluster settles it: a widening loss is what a
        translator could not rule out, and the proof rules it in or out. Otherwise (an
        inventory, or no proof) a widening loss counts, fail closed."""
        ver = self.verification
        if ver is not None and ver.relation in ("wider", "incomparable"):
            return True
        if ver is not None and ver.proven:
            return False
        return any(loss.effect is Effect.WIDENED for loss in self.losses)

    @property
    def narrows(self) -> bool:
        if self.verification is not None and self.verification.relation in (
            "narrower",
            "incomparable",
        ):
            return True
        return any(loss.effect is Effect.NARROWED for loss in self.losses)

    def with_losses(self, *losses: Loss) -> FidelityReport:
        return replace(self, losses=self.losses + tuple(losses))

    def to_dict(self) -> dict[str, Any]:
        return {
            "source_format": self.source_format,
            "target_format": self.target_format,
            "exact": self.exact,
            "widens": self.widens,
            "narrows": self.narrows,
            "losses": [loss.to_dict() for loss in self.losses],
            "verification": None if self.verification is None else self.verification.to_dict(),
        }
