"""Serialise the IR to and from the canonical document (``polyfence.dev/v1alpha1`` PolicySet).

The canonical document is the IR written out field by field, so that a ``PolicySet`` survives
a trip through JSON/YAML unchanged: ``policy_set_from_dict(policy_set_to_dict(ps)) == ps``.
Sets are written as sorted lists (deterministic output); ``None`` and "absent" stay distinct
exactly where the IR distinguishes them. Source references are not written (they point at the
original inputs); reading attaches pointers into the canonical document itself.

Reading validates against ``schemas/canonical.schema.json`` first and then checks what the
schema cannot (selector syntax, CIDRs, interval text), reporting every problem at once as an
``InputError``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from polyfence.errors import Diagnostic, InputError
from polyfence.model.peers import (
    ANY_PEER,
    AnyPeer,
    Entity,
    FqdnMatch,
    IpMatch,
    NetworkSet,
    Peer,
    PeerMatch,
    PrincipalMatch,
    ServiceAccountMatch,
)
from polyfence.model.policy import (
    NOT_GOVERNED,
    Action,
    DirectionRules,
    Governed,
    HttpMatch,
    L7Match,
    Layer,
    Policy,
    PolicyId,
    PolicySet,
    Rule,
    Subject,
    Tier,
)
from polyfence.model.ports import ALL_PROTOCOLS, ANY_PORTS, AnyPorts, PortMatch, PortSpec
from polyfence.model.provenance import SourceRef
from polyfence.model.selectors import All, Selector, parse
from polyfence.semantics.intervals import ALL_PORTS, IntervalSet, parse_cidr

__all__ = [
    "API_VERSION",
    "KIND",
    "SCHEMA_ID",
    "canonical_schema",
    "canonical_validator",
    "is_canonical",
    "policy_set_from_dict",
    "policy_set_to_dict",
]

API_VERSION = "polyfence.dev/v1alpha1"
KIND = "PolicySet"
SCHEMA_ID = "https://polyfence.dev/schemas/canonical.schema.json"
_SCHEMA_FILE = "canonical.schema.json"


# --------------------------------------------------------------------------- schema


@cache
def canonical_schema() -> dict[str, Any]:
    """The canonical JSON schema (cached; do not mutate).

    Read as package data when installed; from the source tree (``<repo>/schemas``) when
    running without installation, where ``polyfence.schemas`` is not importable.
    """
    try:
        text = (resources.files("polyfence.schemas") / _SCHEMA_FILE).read_text(encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError):
        path = Path(__file__).resolve().parents[2] / "schemas" / _SCHEMA_FILE
        text = path.read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@cache
def canonical_validator() -> Draft202012Validator:
    """A validator for the canonical schema, built once (building one is not free)."""
    return Draft202012Validator(canonical_schema())


def is_canonical(data: object) -> bool:
    """Whether a parsed document claims to be canonical (by apiVersion and kind only)."""
    return (
        isinstance(data, Mapping)
        and data.get("apiVersion") == API_VERSION
        and data.get("kind") == KIND
    )


# --------------------------------------------------------------------------- writing


def policy_set_to_dict(ps: PolicySet) -> dict[str, Any]:
    """The canonical document of a policy set: plain JSON types, deterministic order.

    Raises ``ValueError`` for an IR that has no text form (e.g. a selector label value
    containing both quote kinds), rather than writing something that reads back differently.
    """
    out: dict[str, Any] = {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "tiers": [_tier_to_dict(t) for t in ps.tiers],
        "policies": [_policy_to_dict(p) for p in ps.policies],
    }
    if ps.network_sets:
        out["networkSets"] = [
            {
                "name": s.name,
                "namespace": s.namespace,
                "labels": dict(s.labels),
                "nets": list(s.nets),
            }
            for s in ps.network_sets
        ]
    return out


def _sorted(values: Iterable[str]) -> list[str]:
    return sorted(values)


def _tier_to_dict(tier: Tier) -> dict[str, Any]:
    return {"name": tier.name, "order": tier.order, "defaultAction": tier.default_action.value}


def _policy_to_dict(policy: Policy) -> dict[str, Any]:
    return {
        "format": policy.id.format,
        "namespace": policy.id.namespace,
        "name": policy.id.name,
        "tier": policy.tier,
        "order": policy.order,
        "layer": policy.layer.value,
        "labels": dict(policy.labels),
        "subject": _subject_to_dict(policy.subject),
        "ingress": _direction_to_dict(policy.ingress),
        "egress": _direction_to_dict(policy.egress),
    }


def _subject_to_dict(subject: Subject) -> dict[str, Any]:
    out: dict[str, Any] = {"namespace": subject.namespace, "selector": str(subject.selector)}
    if subject.namespace_selector is not None:
        out["namespaceSelector"] = str(subject.namespace_selector)
    if subject.service_accounts is not None:
        out["serviceAccounts"] = str(subject.service_accounts)
    if subject.security_group is not None:
        out["securityGroup"] = subject.security_group
    if subject.include_hosts:
        out["includeHosts"] = True
    return out


def _direction_to_dict(rules: DirectionRules) -> dict[str, Any]:
    if not isinstance(rules, Governed):
        return {"governed": False}
    return {
        "governed": True,
        "isolates": rules.isolates,
        "rules": [_rule_to_dict(r) for r in rules.rules],
    }


def _rule_to_dict(rule: Rule) -> dict[str, Any]:
    out: dict[str, Any] = {
        "action": rule.action.value,
        "peers": "any"
        if isinstance(rule.peers, AnyPeer)
        else [_peer_to_dict(p) for p in rule.peers],
        "ports": "any"
        if isinstance(rule.ports, AnyPorts)
        else [_port_to_dict(p) for p in rule.ports],
    }
    if rule.local is not None:
        out["local"] = _peer_to_dict(rule.local)
    if rule.l7 is not None:
        out["l7"] = {
            "http": [
                {
                    "methods": _sorted(h.methods),
                    "paths": [[kind, value] for kind, value in h.paths],
                    "hosts": _sorted(h.hosts),
                }
                for h in rule.l7.http
            ],
            "dns": list(rule.l7.dns),
            "other": list(rule.l7.other),
        }
    return out


def _peer_to_dict(peer: Peer) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if peer.pods is not None:
        out["pods"] = str(peer.pods)
    if peer.not_pods is not None:
        out["notPods"] = str(peer.not_pods)
    if peer.namespace_selector is not None:
        out["namespaceSelector"] = str(peer.namespace_selector)
    if peer.namespace_names is not None:
        out["namespaceNames"] = _sorted(peer.namespace_names)
    if peer.service_account is not None:
        sa: dict[str, Any] = {}
        if peer.service_account.names is not None:
            sa["names"] = _sorted(peer.service_account.names)
        if peer.service_account.selector is not None:
            sa["selector"] = str(peer.service_account.selector)
        out["serviceAccount"] = sa
    if peer.ip is not None:
        out["ip"] = {
            "nets": None if peer.ip.nets is None else list(peer.ip.nets),
            "notNets": list(peer.ip.not_nets),
        }
    if peer.entity is not None:
        out["entity"] = peer.entity.value
    if peer.fqdn is not None:
        out["fqdn"] = {
            "names": _sorted(peer.fqdn.names),
            "patterns": _sorted(peer.fqdn.patterns),
        }
    if peer.security_group is not None:
        out["securityGroup"] = peer.security_group
    if peer.principal is not None:
        pr = peer.principal
        principal: dict[str, Any] = {}
        if pr.principals is not None:
            principal["principals"] = _sorted(pr.principals)
        principal["notPrincipals"] = _sorted(pr.not_principals)
        if pr.namespaces is not None:
            principal["namespaces"] = _sorted(pr.namespaces)
        principal["notNamespaces"] = _sorted(pr.not_namespaces)
        out["principal"] = principal
    if peer.sets:
        out["networkSets"] = True
    return out


def _port_to_dict(spec: PortSpec) -> dict[str, Any]:
    return {
        "protocols": str(spec.protocols),
        "ports": str(spec.ports),
        "named": _sorted(spec.named),
        "notNamed": _sorted(spec.not_named),
    }


# --------------------------------------------------------------------------- reading


def policy_set_from_dict(data: Any, source: SourceRef) -> PolicySet:
    """Read a canonical document; raises ``InputError`` listing every problem found.

    Schema violations are reported first (all of them); only a schema-valid document is
    checked for selector, CIDR and interval syntax, so every diagnostic has a sound cause.
    """
    schema_errors = sorted(canonical_validator().iter_errors(data), key=_error_key)
    if schema_errors:
        raise InputError(
            Diagnostic(source.child(*e.absolute_path), e.message) for e in schema_errors
        )
    reader = _Reader()
    ps = reader.policy_set(data, source)
    if reader.diagnostics:
        raise InputError(reader.diagnostics)
    return ps


def _error_key(error: ValidationError) -> tuple[tuple[tuple[int, int | str], ...], str]:
    """Document order: integer indices compare numerically, so /10 comes after /2."""
    path = tuple((0, t) if isinstance(t, int) else (1, str(t)) for t in error.absolute_path)
    return path, error.message


class _Reader:
    """Builds the IR from a schema-valid document, collecting semantic errors as it goes."""

    def __init__(self) -> None:
        self.diagnostics: list[Diagnostic] = []

    def error(self, where: SourceRef, message: str) -> None:
        self.diagnostics.append(Diagnostic(where, message))

    # -- leaves ---------------------------------------------------------------------------

    def selector(self, text: str, where: SourceRef) -> Selector:
        try:
            return parse(text)
        except ValueError as exc:  # SelectorSyntaxError and unprintable-key errors
            self.error(where, str(exc))
            return All()

    def optional_selector(
        self, data: Mapping[str, Any], key: str, where: SourceRef
    ) -> Selector | None:
        return self.selector(data[key], where.child(key)) if key in data else None

    def intervals(
        self, text: str, universe: IntervalSet, what: str, where: SourceRef
    ) -> IntervalSet:
        try:
            value = IntervalSet.parse(text)
        except ValueError as exc:
            self.error(where, str(exc))
            return universe
        if not value <= universe:
            self.error(where, f"{what} must lie in {universe} (got {text!r})")
            return universe
        return value

    def cidrs(self, items: list[str], where: SourceRef) -> tuple[str, ...]:
        for k, text in enumerate(items):
            try:
                parse_cidr(text)
            except ValueError as exc:
                self.error(where.child(k), str(exc))
        return tuple(items)

    # -- structure ------------------------------------------------------------------------

    def policy_set(self, data: Mapping[str, Any], source: SourceRef) -> PolicySet:
        tiers = tuple(
            Tier(t["name"], _order(t["order"]), Action(t["defaultAction"])) for t in data["tiers"]
        )
        policies = tuple(
            self.policy(p, source.child("policies", i)) for i, p in enumerate(data["policies"])
        )
        sets = tuple(
            NetworkSet(
                s["name"],
                s["namespace"],
                tuple(s.get("labels", {}).items()),
                self.cidrs(s["nets"], source.child("networkSets", i, "nets")),
            )
            for i, s in enumerate(data.get("networkSets", []))
        )
        return PolicySet(policies, tiers, sets)

    def policy(self, data: Mapping[str, Any], where: SourceRef) -> Policy:
        return Policy(
            id=PolicyId(data["format"], data["namespace"], data["name"]),
            subject=self.subject(data["subject"], where.child("subject")),
            ingress=self.direction(data["ingress"], where.child("ingress")),
            egress=self.direction(data["egress"], where.child("egress")),
            tier=data["tier"],
            order=_order(data["order"]),
            layer=Layer(data["layer"]),
            labels=tuple(data.get("labels", {}).items()),
            source=where,
        )

    def subject(self, data: Mapping[str, Any], where: SourceRef) -> Subject:
        return Subject(
            namespace=data["namespace"],
            selector=self.selector(data["selector"], where.child("selector")),
            namespace_selector=self.optional_selector(data, "namespaceSelector", where),
            service_accounts=self.optional_selector(data, "serviceAccounts", where),
            security_group=data.get("securityGroup"),
            include_hosts=data.get("includeHosts", False),
        )

    def direction(self, data: Mapping[str, Any], where: SourceRef) -> DirectionRules:
        if not data["governed"]:
            return NOT_GOVERNED
        rules = tuple(self.rule(r, where.child("rules", j)) for j, r in enumerate(data["rules"]))
        return Governed(rules, data["isolates"])

    def rule(self, data: Mapping[str, Any], where: SourceRef) -> Rule:
        peers: PeerMatch = ANY_PEER
        if data["peers"] != "any":
            peers = tuple(
                self.peer(p, where.child("peers", k)) for k, p in enumerate(data["peers"])
            )
        ports: PortMatch = ANY_PORTS
        if data["ports"] != "any":
            ports = tuple(
                self.port(p, where.child("ports", k)) for k, p in enumerate(data["ports"])
            )
        l7 = _l7(data["l7"]) if "l7" in data else None
        local = self.peer(data["local"], where.child("local")) if "local" in data else None
        return Rule(Action(data["action"]), peers, ports, l7, local, source=where)

    def peer(self, data: Mapping[str, Any], where: SourceRef) -> Peer:
        sa = None
        if "serviceAccount" in data:
            sa_data = data["serviceAccount"]
            sa = ServiceAccountMatch(
                names=frozenset(sa_data["names"]) if "names" in sa_data else None,
                selector=self.optional_selector(sa_data, "selector", where.child("serviceAccount")),
            )
        ip = None
        if "ip" in data:
            ip_where = where.child("ip")
            nets = data["ip"]["nets"]
            ip = IpMatch(
                nets=None if nets is None else self.cidrs(nets, ip_where.child("nets")),
                not_nets=self.cidrs(data["ip"].get("notNets", []), ip_where.child("notNets")),
            )
        fqdn = None
        if "fqdn" in data:
            fqdn = FqdnMatch(
                frozenset(data["fqdn"].get("names", ())),
                frozenset(data["fqdn"].get("patterns", ())),
            )
        principal = None
        if "principal" in data:
            pr = data["principal"]
            principal = PrincipalMatch(
                principals=frozenset(pr["principals"]) if "principals" in pr else None,
                not_principals=frozenset(pr.get("notPrincipals", ())),
                namespaces=frozenset(pr["namespaces"]) if "namespaces" in pr else None,
                not_namespaces=frozenset(pr.get("notNamespaces", ())),
            )
        names = data.get("namespaceNames")
        return Peer(
            pods=self.optional_selector(data, "pods", where),
            not_pods=self.optional_selector(data, "notPods", where),
            namespace_selector=self.optional_selector(data, "namespaceSelector", where),
            namespace_names=None if names is None else frozenset(names),
            service_account=sa,
            ip=ip,
            entity=Entity(data["entity"]) if "entity" in data else None,
            fqdn=fqdn,
            security_group=data.get("securityGroup"),
            principal=principal,
            sets=data.get("networkSets", False),
        )

    def port(self, data: Mapping[str, Any], where: SourceRef) -> PortSpec:
        return PortSpec(
            protocols=self.intervals(
                data["protocols"], ALL_PROTOCOLS, "protocol numbers", where.child("protocols")
            ),
            ports=self.intervals(data["ports"], ALL_PORTS, "ports", where.child("ports")),
            named=frozenset(data.get("named", ())),
            not_named=frozenset(data.get("notNamed", ())),
        )


def _order(value: float | None) -> float | None:
    """JSON integers read as floats, as the IR stores orders."""
    return None if value is None else float(value)


def _l7(data: Mapping[str, Any]) -> L7Match:
    return L7Match(
        http=tuple(
            HttpMatch(
                methods=frozenset(h.get("methods", ())),
                paths=tuple((kind, value) for kind, value in h.get("paths", ())),
                hosts=frozenset(h.get("hosts", ())),
            )
            for h in data.get("http", ())
        ),
        dns=tuple(data.get("dns", ())),
        other=tuple(data.get("other", ())),
    )
