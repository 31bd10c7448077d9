"""The audit configuration: what the organisation declares, which the cluster cannot show.

Zones, approved and forbidden flows, public workloads, port lists, exclusions and waivers.
Validated against ``schemas/audit-config.schema.json``; every problem is reported with its
file and JSON pointer. Defaults are written out here so the report can print them.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker

from polyfence.errors import Diagnostic, InputError
from polyfence.io.files import read_documents
from polyfence.model.ports import protocol_number
from polyfence.model.provenance import SourceRef
from polyfence.semantics.connset import ConnSet
from polyfence.semantics.intervals import IntervalSet

TCP = 6


def _ports(items: Sequence[int | str]) -> ConnSet:
    """``[22, "UDP/53", "TCP/2379-2380"]``: a bare number or range means TCP."""
    out = ConnSet()
    for item in items:
        proto_text, _, rng = str(item).rpartition("/")
        proto = protocol_number(proto_text.upper()) if proto_text else TCP
        lo, _, hi = rng.partition("-")
        out = out | ConnSet.single(proto, IntervalSet.span(int(lo), int(hi or lo)))
    return out


DEFAULT_SENSITIVE_PORTS = (22, 3389, 2375, 2376, 3306, 5432, 6379, 27017, 9200, 11211)
DEFAULT_HIGH_RISK_PORTS = (
    "20-21", 23, 445, 1433, 3306, 5432, 6379, 9200, 27017, 6443, 10250, 2379,
)  # fmt: skip
DEFAULT_ADMIN_PORTS = (22, 3389)
DEFAULT_EXCLUDED = (
    ("kube-system", "system namespace (excluded by default, as the CIS GKE 4.3.2 audit does)"),
    ("kube-public", "system namespace (excluded by default, as the CIS GKE 4.3.2 audit does)"),
    ("kube-node-lease", "system namespace (excluded by default, as the CIS GKE 4.3.2 audit does)"),
)


@dataclass(frozen=True, slots=True)
class Zone:
    name: str
    namespaces: tuple[str, ...] = ()
    namespace_labels: tuple[tuple[str, str], ...] = ()
    sensitive: bool = False

    def contains(self, namespace: str, labels: Mapping[str, str]) -> bool:
        if self.namespaces and not any(fnmatch.fnmatchcase(namespace, p) for p in self.namespaces):
            return False
        if self.namespace_labels and not all(labels.get(k) == v for k, v in self.namespace_labels):
            return False
        return bool(self.namespaces or self.namespace_labels)


@dataclass(frozen=True, slots=True)
class Flow:
    """A declared flow: parties are ``zone:NAME``, ``namespace:PATTERN``, ``ns/name``, ``internet``, ``*``."""

    src: str
    dst: str
    ports: ConnSet | None = None  # None: any
    note: str = ""
    exceptions: tuple[str, ...] = ()
    source: SourceRef | None = None


@dataclass(frozen=True, slots=True)
class Waiver:
    id: str
    check: str
    resource: str
    owner: str | None = None
    reason: str | None = None
    ticket: str | None = None
    expires: dt.date | None = None

    def covers(self, check_id: str, resource: str) -> bool:
        return self.check == check_id and fnmatch.fnmatchcase(resource, self.resource)

    @property
    def complete(self) -> bool:
        """An exception needs a reason, an owner, a ticket and an expiry to be auditable."""
        return all((self.owner, self.reason, self.ticket, self.expires))

    def active(self, today: dt.date) -> bool:
        return self.expires is not None and self.expires >= today


@dataclass(frozen=True, slots=True)
class AuditConfig:
    path: str | None = None
    cluster: str = "cluster"
    cni: str | None = None
    cni_enforces_network_policy: bool | None = None
    mesh: str | None = None
    excluded: tuple[tuple[str, str], ...] = DEFAULT_EXCLUDED
    zones: tuple[Zone, ...] = ()
    forbidden_flows: tuple[Flow, ...] = ()
    approved_flows: tuple[Flow, ...] = ()
    public_workloads: tuple[str, ...] = ()
    egress_gateways: tuple[str, ...] = ()
    metadata_allowlist: tuple[str, ...] = ()
    host_network_allowlist: tuple[str, ...] = ()
    host_port_allowlist: tuple[str, ...] = ()
    sensitive_ports: ConnSet = field(default_factory=lambda: _ports(DEFAULT_SENSITIVE_PORTS))
    high_risk_ports: ConnSet = field(default_factory=lambda: _ports(DEFAULT_HIGH_RISK_PORTS))
    admin_ports: ConnSet = field(default_factory=lambda: _ports(DEFAULT_ADMIN_PORTS))
    broad_cidr_prefix: int = 16
    baseline: str | None = None
    waivers: tuple[Waiver, ...] = ()

    def exclusion(self, namespace: str) -> str | None:
        """Why a namespace is out of scope, or None when it is in."""
        for pattern, reason in self.excluded:
            if fnmatch.fnmatchcase(namespace, pattern):
                return reason
        return None


@cache
def _validator() -> Draft202012Validator:
    text = (resources.files("polyfence.schemas") / "audit-config.schema.json").read_text("utf-8")
    return Draft202012Validator(json.loads(text), format_checker=FormatChecker())


def parse_config(data: Any, source: SourceRef, base_dir: Path | None = None) -> AuditConfig:
    """Validate and read a config mapping; raises ``InputError`` naming every bad field."""
    if data is None:
        data = {}
    errors = sorted(_validator().iter_errors(data), key=lambda e: [str(p) for p in e.path])
    if errors:
        raise InputError(Diagnostic(source.child(*e.absolute_path), e.message) for e in errors)
    enforcement = data.get("enforcement") or {}

    def flows(key: str, note_key: str) -> tuple[Flow, ...]:
        out = []
        for i, item in enumerate(data.get(key) or []):
            ports = item.get("ports")
            out.append(
                Flow(
                    item["from"],
                    item["to"],
                    None if ports is None else _ports(ports),
                    item.get(note_key, ""),
                    tuple(item.get("except") or ()),
                    source.child(key, i),
                )
            )
        return tuple(out)

    waivers = tuple(
        Waiver(
            w["id"],
            w["check"],
            w["resource"],
            w.get("owner"),
            w.get("reason"),
            w.get("ticket"),
            dt.date.fromisoformat(w["expires"]) if w.get("expires") else None,
        )
        for w in data.get("waivers") or []
    )
    seen: set[str] = set()
    problems = []
    # A flow naming a zone nobody defined matches nothing, so a forbidden flow would pass
    # unchecked and an approved one approve nothing: both are mistakes in the config.
    defined = {z.get("name") for z in data.get("zones") or [] if isinstance(z, dict)}
    for key in ("forbidden_flows", "approved_flows"):
        for i, item in enumerate(data.get(key) or []):
            for side in ("from", "to"):
                party = item.get(side) if isinstance(item, dict) else None
                if (
                    isinstance(party, str)
                    and party.startswith("zone:")
                    and party[5:] not in defined
                ):
                    problems.append(
                        Diagnostic(
                            source.child(key, i, side),
                            f"{party} names no zone defined under zones "
                            f"(defined: {', '.join(sorted(map(str, defined))) or 'none'})",
                        )
                    )
    for i, w in enumerate(waivers):
        if w.id in seen:
            problems.append(
                Diagnostic(source.child("waivers", i, "id"), f"duplicate waiver id {w.id!r}")
            )
        seen.add(w.id)
    if problems:
        raise InputError(problems)
    baseline = data.get("baseline")
    if baseline and base_dir is not None and not Path(baseline).is_absolute():
        baseline = str(base_dir / baseline)
    defaults = AuditConfig()
    return AuditConfig(
        path=source.file,
        cluster=data.get("cluster", "cluster"),
        cni=enforcement.get("cni"),
        cni_enforces_network_policy=enforcement.get("network_policy"),
        mesh=enforcement.get("mesh"),
        excluded=tuple((e["namespace"], e["reason"]) for e in data["excluded_namespaces"])
        if "excluded_namespaces" in data
        else DEFAULT_EXCLUDED,
        zones=tuple(
            Zone(
                z["name"],
                tuple(z.get("namespaces") or ()),
                tuple(sorted((z.get("namespace_labels") or {}).items())),
                bool(z.get("sensitive", False)),
            )
            for z in data.get("zones") or []
        ),
        forbidden_flows=flows("forbidden_flows", "reason"),
        approved_flows=flows("approved_flows", "justification"),
        public_workloads=tuple(data.get("public_workloads") or ()),
        egress_gateways=tuple(data.get("egress_gateways") or ()),
        metadata_allowlist=tuple(data.get("metadata_allowlist") or ()),
        host_network_allowlist=tuple(data.get("host_network_allowlist") or ()),
        host_port_allowlist=tuple(data.get("host_port_allowlist") or ()),
        sensitive_ports=_ports(data["sensitive_ports"])
        if "sensitive_ports" in data
        else defaults.sensitive_ports,
        high_risk_ports=_ports(data["high_risk_ports"])
        if "high_risk_ports" in data
        else defaults.high_risk_ports,
        admin_ports=_ports(data["admin_ports"]) if "admin_ports" in data else defaults.admin_ports,
        broad_cidr_prefix=int(data.get("broad_cidr_prefix", 16)),
        baseline=baseline,
        waivers=waivers,
    )


def load_config(path: str) -> AuditConfig:
    """Read one YAML/JSON config file."""
    docs, problems = read_documents([path], None)
    if problems:
        raise InputError(problems)
    if len(docs) != 1:
        raise InputError([Diagnostic(SourceRef(path), "an audit config is exactly one document")])
    return parse_config(docs[0].data, docs[0].source, Path(path).resolve().parent)
