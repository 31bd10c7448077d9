"""What checks produce: findings with evidence, and the metadata every check carries in code.

Statuses go beyond pass/fail on purpose: a check that cannot tell from its input says
``unknown`` (never ``pass``), a control that needs a person says ``manual``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any

from polyfence.model.provenance import SourceRef

if TYPE_CHECKING:
    from polyfence.compliance.context import AuditContext


class Severity(Enum):
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    INFO = "info"

    @property
    def rank(self) -> int:
        return _RANK[self]

    @classmethod
    def parse(cls, text: str) -> Severity:
        try:
            return cls(text.lower())
        except ValueError:
            known = ", ".join(s.value for s in cls)
            raise ValueError(f"unknown severity {text!r} (known: {known})") from None


_RANK = {
    Severity.CRITICAL: 4,
    Severity.HIGH: 3,
    Severity.MEDIUM: 2,
    Severity.LOW: 1,
    Severity.INFO: 0,
}


class Status(Enum):
    PASS = "pass"
    FAIL = "fail"
    MANUAL = "manual"
    NOT_APPLICABLE = "not_applicable"
    UNKNOWN = "unknown"
    ERROR = "error"


class Level(Enum):
    """Source checks read objects as written; semantic checks read computed connectivity."""

    SOURCE = "source"
    SEMANTIC = "semantic"


@dataclass(frozen=True, slots=True)
class CheckInfo:
    id: str
    title: str
    severity: Severity
    level: Level
    rationale: str
    remediation: str


@dataclass(frozen=True, slots=True)
class ObjectRef:
    """A source object and the place inside it that matters (JSON pointer)."""

    kind: str
    namespace: str | None
    name: str
    file: str | None = None
    document: int | None = None
    pointer: str = ""

    @classmethod
    def at(cls, kind: str, namespace: str | None, name: str, source: SourceRef | None) -> ObjectRef:
        if source is None:
            return cls(kind, namespace, name)
        return cls(kind, namespace, name, source.file, source.document, source.pointer)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "namespace": self.namespace,
            "name": self.name,
            "file": self.file,
            "document": self.document,
            "pointer": self.pointer,
        }


@dataclass(frozen=True, slots=True)
class ConnectionEvidence:
    """A witness connection and the engine's explanation of its verdict."""

    src: str
    dst: str
    protocol: str
    port: int | None
    verdict: str  # allowed / denied / unknown
    explanation: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "src": self.src,
            "dst": self.dst,
            "protocol": self.protocol,
            "port": self.port,
            "verdict": self.verdict,
            "explanation": list(self.explanation),
        }


@dataclass(frozen=True, slots=True)
class Finding:
    """One result about one resource; ``id`` stays the same across runs for the same problem."""

    check_id: str
    status: Status
    severity: Severity
    resource: str
    message: str
    objects: tuple[ObjectRef, ...] = ()
    connections: tuple[ConnectionEvidence, ...] = ()
    observed: str | None = None
    expected: str | None = None
    waiver: str | None = None
    key: str = field(default="", compare=False)  # extra identity (e.g. a connection tuple)

    @property
    def id(self) -> str:
        text = "\x1f".join((self.check_id, self.resource, self.key))
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "check_id": self.check_id,
            "status": self.status.value,
            "severity": self.severity.value,
            "resource": self.resource,
            "message": self.message,
            "objects": [o.to_dict() for o in self.objects],
            "connections": [c.to_dict() for c in self.connections],
            "observed": self.observed,
            "expected": self.expected,
            "waiver": self.waiver,
        }


@dataclass(frozen=True, slots=True)
class CheckOutcome:
    """What a check returns: its status, one sentence, and the findings behind it."""

    status: Status
    detail: str
    findings: tuple[Finding, ...] = ()


@dataclass(frozen=True, slots=True)
class Check:
    """A check: metadata plus the function that evaluates it on an audit context."""

    info: CheckInfo
    run: Callable[[AuditContext], CheckOutcome]

    def __call__(self, ctx: AuditContext) -> CheckOutcome:
        return self.run(ctx)


def check(
    id: str,
    title: str,
    severity: Severity,
    level: Level,
    rationale: str,
    remediation: str,
) -> Callable[[Callable[[AuditContext], CheckOutcome]], Check]:
    """Declare a check; its metadata lives next to its code."""
    info = CheckInfo(id, title, severity, level, rationale, remediation)

    def wrap(fn: Callable[[AuditContext], CheckOutcome]) -> Check:
        return Check(info, fn)

    return wrap


def outcome(
    info: CheckInfo,
    findings: Iterable[Finding],
    *,
    passed: str,
    failed: str,
    empty: str | None = None,
    empty_status: Status = Status.NOT_APPLICABLE,
) -> CheckOutcome:
    """The usual aggregation: fail if anything failed, unknown if anything could not be
    decided, pass otherwise; ``failed``/``passed`` may use ``{fail}``, ``{unknown}``, ``{total}``."""
    items = tuple(findings)
    if not items:
        return CheckOutcome(empty_status, empty or passed)
    fail = sum(1 for f in items if f.status is Status.FAIL)
    unknown = sum(1 for f in items if f.status is Status.UNKNOWN)
    counts = {"fail": fail, "unknown": unknown, "total": len(items)}
    if fail:
        return CheckOutcome(Status.FAIL, failed.format(**counts), items)
    if unknown:
        return CheckOutcome(
            Status.UNKNOWN, f"{unknown} of {len(items)} could not be decided from the input", items
        )
    return CheckOutcome(Status.PASS, passed.format(**counts), items)
