"""Istio security.istio.io AuthorizationPolicy (v1; v1beta1 accepted) → canonical model.

Istio decides in the server-side proxy: CUSTOM first, then DENY, then ALLOW; a workload with
an ALLOW policy is deny-by-default, a DENY-only workload stays default-allow. The IR says this
with ``Layer.L7`` policies in the default tier, ordered by action, evaluated first-match:

| Istio | IR |
|---|---|
| one AuthorizationPolicy | one `Policy`: `PolicyId("istio", ns, name)`, `Layer.L7`, egress `NOT_GOVERNED` (inbound only) |
| `selector.matchLabels` / no selector | `Subject(ns, <labels>)` / `Subject(ns, All())` |
| policy in the root namespace (`istio-system`) | `Subject(None, <labels>, namespace_selector=All())`: every namespace |
| `targetRef` / `targetRefs` (gateways, waypoints) | validated, not read: reported (`Feature.LAYER`) |
| `action: DENY` | order 100, `Governed(DENY rules, isolates=False)` |
| `action: ALLOW` (default) | order 200, `Governed(ALLOW rules, isolates=True)`; no rules: allow nothing |
| `action: AUDIT` | order 0, `LOG` rules, `isolates=False` |
| `action: CUSTOM` + `provider` | order 0, `LOG` rules, `isolates=False`; the external decision is reported (widened) |
| rule = from AND to AND when | one IR rule per `to` entry (and per distinct set of HTTP-only source fields) |
| `from[].source` | one `Peer` each (OR); no `from`: `ANY_PEER` |
| `principals` / `namespaces` (+ `not…`) | `PrincipalMatch`, Istio patterns kept as written |
| `serviceAccounts` (`ns/sa` or `sa`) (+ `not…`) | principal patterns `*/ns/<ns>/sa/<sa>` |
| `ipBlocks` + `notIpBlocks` | one `IpMatch(nets, not_nets)`; single addresses as /32, /128 |
| `remoteIpBlocks` (+ `not…`), `when remote.ip` | ANDed into the source IP; reported (inventory-dependent) |
| `requestPrincipals` (+ `not…`) | `L7Match.other`: `"requestPrincipals=a,b"` |
| `trustDomains` (+ `not…`) | not carried: reported |
| `ports` / `notPorts` | `PortSpec.single(TCP, ports - notPorts)`; neither: `ANY_PORTS` |
| `methods`, `paths`, `hosts` | `L7Match.http`: `HttpMatch` (paths: exact / prefix / regex) |
| `notMethods`, `notPaths`, `notHosts` | `L7Match.other`: `"notMethods=GET"` |
| `when` `source.ip`, `.namespace`, `.principal`, `.serviceAccount` | ANDed into every peer; an AND no Istio pattern spells is reported |
| `when` `destination.port` | intersected with the rule's ports |
| `when` `request.*` (headers, JWT claims, …) | `L7Match.other`: `"<key>=v1,v2"` / `"<key>!=v1,v2"` |
| `when` `destination.ip`, `connection.sni`, `experimental.envoy.filters.*` | not carried: reported |

Validation follows what Istio accepts: the CRD's openAPIV3Schema (``schemas/input/
istio-authorizationpolicy.json``: the v1 schema of istio/istio tag 1.30.3, commit
56df41f63e513f834c9a3af33d8aed82d1d961f2, ``manifests/charts/base/files/crd-all.gen.yaml``,
Apache-2.0, unchanged apart from JSON serialisation; v1beta1 has the identical schema), unknown
fields as strict field validation reports them, the CRD's CEL rules, and istiod's validation
webhook (``pkg/config/validation``: empty sources and operations, DENY/CUSTOM without rules,
CUSTOM restrictions, condition keys, IPs and ports).
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import jsonschema

from polyfence.errors import Diagnostic, InputError
from polyfence.fidelity import Effect, Feature, FidelityReport, Loss, Treatment
from polyfence.model.document import Document
from polyfence.model.peers import ANY_PEER, IpMatch, Peer, PeerMatch, PrincipalMatch
from polyfence.model.policy import (
    DEFAULT_TIER,
    NOT_GOVERNED,
    Action,
    Governed,
    HttpMatch,
    L7Match,
    Layer,
    Policy,
    PolicyId,
    PolicySet,
    Rule,
    Subject,
)
from polyfence.model.ports import ANY_PORTS, PortMatch, PortSpec, Protocol
from polyfence.model.provenance import SourceRef
from polyfence.model.selectors import All, Selector, from_label_selector
from polyfence.rules.effects import Match, effect_of
from polyfence.schemas import in_document_order, input_schema
from polyfence.semantics.intervals import ALL_PORTS, IntervalSet, IPSet
from polyfence.translation import Translation

FORMAT = "istio"
API_VERSIONS = ("security.istio.io/v1", "security.istio.io/v1beta1")
KIND = "AuthorizationPolicy"
AUDIT_ORDER = 0.0  # never decides: LOG rules
CUSTOM_ORDER = 0.0  # the external authorizer is asked first (its answer is not evaluated)
DENY_ORDER = 100.0  # DENY policies before every ALLOW policy
ALLOW_ORDER = 200.0
# action → (IR action, order, whether the policy makes its workloads deny-by-default)
ACTIONS: dict[str, tuple[Action, float, bool]] = {
    "ALLOW": (Action.ALLOW, ALLOW_ORDER, True),
    "DENY": (Action.DENY, DENY_ORDER, False),
    "AUDIT": (Action.LOG, AUDIT_ORDER, False),
    "CUSTOM": (Action.LOG, CUSTOM_ORDER, False),
}
SOURCE_FIELDS = (
    "principals",
    "notPrincipals",
    "requestPrincipals",
    "notRequestPrincipals",
    "namespaces",
    "notNamespaces",
    "serviceAccounts",
    "notServiceAccounts",
    "ipBlocks",
    "notIpBlocks",
    "remoteIpBlocks",
    "notRemoteIpBlocks",
    "trustDomains",
    "notTrustDomains",
)
OPERATION_FIELDS = (
    "hosts",
    "notHosts",
    "ports",
    "notPorts",
    "methods",
    "notMethods",
    "paths",
    "notPaths",
)
# Source fields and condition keys istiod refuses in a CUSTOM policy.
CUSTOM_FORBIDDEN_FIELDS = (
    "namespaces",
    "notNamespaces",
    "serviceAccounts",
    "notServiceAccounts",
    "principals",
    "notPrincipals",
    "requestPrincipals",
    "notRequestPrincipals",
)
CUSTOM_FORBIDDEN_KEYS = ("source.namespace", "source.serviceAccount", "source.principal")
# Condition keys: HTTP-only (carried by name), exact names and map-style prefixes (``a[b]``).
HTTP_KEYS = ("request.auth.principal", "request.auth.audiences", "request.auth.presenter")
HTTP_MAP_PREFIXES = (
    "request.headers",
    "request.experimental.inline.headers",
    "request.auth.claims",
)
# Keys Istio accepts that the IR does not carry.
NOT_CARRIED_KEYS = ("destination.ip", "connection.sni")
ENVOY_FILTER_PREFIX = "experimental.envoy.filters."
# Keys istiod refuses with a reason of its own.
REFUSED_KEYS = {
    "destination.namespace": "replaced by metadata.namespace",
    "destination.labels": "replaced by the workload selector",
    "destination.name": "deprecated: only supported in v1alpha1",
    "destination.user": "deprecated: only supported in v1alpha1",
}
# targetRef kinds istiod allows, by (canonical group, kind).
TARGET_KINDS = frozenset(
    {
        ("core", "Service"),
        ("networking.istio.io", "ServiceEntry"),
        ("gateway.networking.k8s.io", "Gateway"),
        ("gateway.networking.k8s.io", "GatewayClass"),
    }
)
TOP_LEVEL = frozenset({"apiVersion", "kind", "metadata", "spec", "status"})
_PORT = re.compile(r"[0-9]+")
_PREFIX_LEN = re.compile(r"0|[1-9][0-9]{0,2}")
_UNSUPPORTED_TEMPLATE = re.compile(r"/\{\w+=\*\*?\}|\{\w*\}|/\*\*?|\*\*?/")
_TEMPLATE_TOKEN = re.compile(r"(\{\*\*\}|\{\*\})")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


@functools.cache
def _schema() -> dict[str, Any]:
    return input_schema("istio-authorizationpolicy.json")


@functools.cache
def validator() -> jsonschema.protocols.Validator:
    """The upstream CRD's openAPIV3Schema (identical for v1 and v1beta1)."""
    return jsonschema.Draft7Validator(_schema())


def _prune_nulls(value: Any) -> Any:
    """The API server drops null fields of a CRD before validating (nullable is never set)."""
    if isinstance(value, dict):
        return {k: _prune_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_prune_nulls(v) for v in value]
    return value


# Istio string patterns ---------------------------------------------------------------------


def _pattern(text: str) -> tuple[str, str]:
    """(kind, text): Istio's matcher checks ``*`` first, then a leading, then a trailing ``*``."""
    if text == "*":
        return "any", ""
    if text.startswith("*"):
        return "suffix", text[1:]
    if text.endswith("*"):
        return "prefix", text[:-1]
    return "exact", text


def _pattern_matches(pattern: str, value: str) -> bool:
    kind, text = _pattern(pattern)
    if kind == "any":
        return value != ""
    if kind == "suffix":
        return value.endswith(text)
    if kind == "prefix":
        return value.startswith(text)
    return value == text


def _pattern_and(p: str, q: str) -> frozenset[str] | None:
    """Patterns matching exactly what both match, or None when Istio's syntax cannot say it."""
    for a, b in ((p, q), (q, p)):
        kind, text = _pattern(a)
        if kind == "any":
            return frozenset({b})  # every pattern matches only non-empty values
        if kind == "exact":
            return frozenset({a}) if _pattern_matches(b, text) else frozenset()
    (pk, pt), (qk, qt) = _pattern(p), _pattern(q)
    if pk != qk:
        return None  # a prefix AND a suffix: no single pattern says it
    if pk == "prefix":
        longer, shorter = (p, qt) if len(pt) >= len(qt) else (q, pt)
        return frozenset({longer}) if _pattern(longer)[1].startswith(shorter) else frozenset()
    longer, shorter = (p, qt) if len(pt) >= len(qt) else (q, pt)
    return frozenset({longer}) if _pattern(longer)[1].endswith(shorter) else frozenset()


def _patterns_and(
    a: frozenset[str] | None, b: frozenset[str] | None
) -> tuple[bool, frozenset[str] | None]:
    """(exact, patterns): any of ``a`` AND any of ``b``; None stands for "unconstrained"."""
    if a is None or b is None:
        return True, b if a is None else a
    if a == b:
        return True, a
    out: set[str] = set()
    for p in a:
        for q in b:
            both = _pattern_and(p, q)
            if both is None:
                return False, a
            out |= both
    return True, frozenset(out)


def _and_principal(
    a: PrincipalMatch | None, b: PrincipalMatch | None
) -> tuple[bool, PrincipalMatch | None]:
    """The conjunction of two identity constraints; not exact: ``a``'s positive parts are kept."""
    if a is None or b is None:
        return True, b if a is None else a
    ok_p, principals = _patterns_and(a.principals, b.principals)
    ok_n, namespaces = _patterns_and(a.namespaces, b.namespaces)
    merged = PrincipalMatch(
        principals,
        a.not_principals | b.not_principals,  # none of A and none of B: none of (A or B)
        namespaces,
        a.not_namespaces | b.not_namespaces,
    )
    return ok_p and ok_n, merged


def _and_ip(a: IpMatch | None, b: IpMatch | None) -> IpMatch | None:
    """The exact conjunction of two address constraints, keeping the CIDRs as written if it can."""
    if a is None or b is None:
        return b if a is None else a
    not_nets = tuple(dict.fromkeys(a.not_nets + b.not_nets))
    if a.nets is None or b.nets is None:
        return IpMatch(b.nets if a.nets is None else a.nets, not_nets)
    both = IPSet.from_cidrs(a.nets) & IPSet.from_cidrs(b.nets)
    return IpMatch(both.to_cidrs(), not_nets)


def _and_peer(a: Peer, b: Peer) -> tuple[bool, Peer]:
    """(exact, ``a`` AND ``b``) for the constraints Istio sources and conditions produce."""
    exact, principal = _and_principal(a.principal, b.principal)
    return exact, replace(a, ip=_and_ip(a.ip, b.ip), principal=principal)


def _has_constraint(peer: Peer) -> bool:
    return peer.ip is not None or peer.principal is not None


def _path(text: str) -> tuple[str, str]:
    """An Istio path as an HttpMatch path: exact, ``prefix*``, ``*suffix``, ``*``, templates."""
    if "{*}" in text or "{**}" in text:
        parts = _TEMPLATE_TOKEN.split(text)
        regex = "".join(
            "[^/]+" if p == "{*}" else ".*" if p == "{**}" else re.escape(p) for p in parts
        )
        return "regex", regex
    kind, rest = _pattern(text)
    if kind == "any":
        return "regex", ".+"
    if kind == "suffix":
        return "regex", ".*" + re.escape(rest)
    return kind, rest


def _strings(name: str, values: Sequence[str]) -> str:
    return f"{name}={','.join(values)}"


@dataclass(frozen=True, slots=True)
class _Context:
    """What every part of one policy needs to know while it is read."""

    namespace: str
    action_name: str
    action: Action


@dataclass(frozen=True, slots=True)
class _Condition:
    """A ``when`` condition that constrains the peer, ANDed into every source of its rule."""

    peer: Peer
    ref: SourceRef
    key: str


class _Reader:
    """Reads AuthorizationPolicies, collecting every problem with its JSON pointer."""

    def __init__(self, root_namespace: str) -> None:
        self.root_namespace = root_namespace
        self.problems: list[Diagnostic] = []
        self.losses: list[Loss] = []

    def error(self, ref: SourceRef, message: str) -> None:
        self.problems.append(Diagnostic(ref, message))

    def loss(
        self,
        effect: Effect,
        feature: Feature,
        ref: SourceRef,
        message: str,
        treatment: Treatment = Treatment.DROPPED,
    ) -> None:
        self.losses.append(Loss(effect, treatment, feature, ref, message))

    def dropped(self, action: Action, feature: Feature, ref: SourceRef, message: str) -> None:
        """A constraint of an ``action`` rule not carried, so the rule matches more
        (``effect_of``); under AUDIT or CUSTOM that changes nothing but is still noted."""
        for effect in effect_of(action, Match.MORE) or (Effect.NONE,):
            self.loss(effect, feature, ref, message)

    # structure ----------------------------------------------------------------------------

    def unknown_fields(self, schema: dict[str, Any], value: Any, ref: SourceRef) -> None:
        """Fields the CRD does not declare: strict field validation refuses them."""
        if schema.get("x-kubernetes-preserve-unknown-fields"):
            return
        if isinstance(value, dict):
            props = schema.get("properties")
            extra = schema.get("additionalProperties")
            for key, item in value.items():
                if props is not None and key in props:
                    self.unknown_fields(props[key], item, ref.child(str(key)))
                elif isinstance(extra, dict):
                    self.unknown_fields(extra, item, ref.child(str(key)))
                elif props is not None:
                    self.error(ref.child(str(key)), f"unknown field {key!r}")
        elif isinstance(value, list) and isinstance(schema.get("items"), dict):
            for i, item in enumerate(value):
                self.unknown_fields(schema["items"], item, ref.child(i))

    def structure(self, data: dict[str, Any], ref: SourceRef) -> None:
        """Schema, unknown fields and metadata: the API server's checks."""
        errors = list(in_document_order(validator().iter_errors(data)))
        for err in errors:
            self.error(ref.child(*err.absolute_path), err.message)
        for key in data:
            if key not in TOP_LEVEL:
                self.error(ref.child(str(key)), f"unknown field {key!r}")
        if "spec" in data:
            self.unknown_fields(_schema()["properties"]["spec"], data["spec"], ref.child("spec"))
        meta = data.get("metadata")
        if not isinstance(meta, dict):
            self.error(ref.child("metadata"), "an AuthorizationPolicy needs metadata with a name")
            return
        name = meta.get("name")
        if not isinstance(name, str) or not name:
            self.error(ref.child("metadata", "name"), "an AuthorizationPolicy needs metadata.name")
        # Names that are merely not DNS-1123 are warned about by polyfence.io.names.
        labels = meta.get("labels")
        if labels is not None and (
            not isinstance(labels, dict)
            or not all(isinstance(k, str) and isinstance(v, str) for k, v in labels.items())
        ):
            self.error(ref.child("metadata", "labels"), "labels must map strings to strings")

    # values -------------------------------------------------------------------------------

    def no_empty(self, values: Sequence[str], ref: SourceRef) -> bool:
        """Istio refuses empty strings in every list it matches against."""
        ok = True
        for i, value in enumerate(values):
            if value == "":
                self.error(ref.child(i), "empty value not allowed")
                ok = False
        return ok

    def cidrs(self, values: Sequence[str], ref: SourceRef) -> tuple[str, ...]:
        """Istio's address syntax: an address (one host) or address/bits. Host bits are
        accepted and masked, as Envoy does; the result is written as network/bits."""
        out: list[str] = []
        for i, text in enumerate(values):
            if text == "":
                continue  # reported by no_empty
            addr, sep, bits = text.partition("/")
            try:
                if "%" in addr:
                    raise ValueError(addr)
                ip = ipaddress.ip_address(addr)
            except ValueError:
                what = "CIDR range" if sep else "IP address"
                self.error(ref.child(i), f"bad {what} {text!r}: {addr!r} is not an IP address")
                continue
            if sep and (not _PREFIX_LEN.fullmatch(bits) or int(bits) > ip.max_prefixlen):
                self.error(
                    ref.child(i),
                    f"bad CIDR range {text!r}: prefix length must be 0-{ip.max_prefixlen}",
                )
                continue
            prefix = int(bits) if sep else ip.max_prefixlen
            out.append(str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False)))
        return tuple(out)

    def ports(self, values: Sequence[str], ref: SourceRef) -> IntervalSet:
        """Exact port numbers (Istio has no ranges); 0-65535 like Istio's validation."""
        out = IntervalSet.empty()
        for i, text in enumerate(values):
            if text == "":
                continue  # reported by no_empty
            if not _PORT.fullmatch(text) or int(text) > 65535:
                self.error(ref.child(i), f"bad port {text!r}: a port is a number 0-65535")
                continue
            out = out | IntervalSet.point(int(text))
        return out

    def service_accounts(self, values: Sequence[str], ref: SourceRef, ns: str) -> frozenset[str]:
        """``ns/sa`` or ``sa`` (the policy's namespace) → the principal pattern of that SA.

        Istio matches the SPIFFE identity ``<trust domain>/ns/<ns>/sa/<sa>``; the suffix
        pattern says the same for every trust domain."""
        out: set[str] = set()
        for i, text in enumerate(values):
            if text == "":
                continue  # reported by no_empty
            namespace, sep, name = text.rpartition("/")
            if not sep:
                namespace = ns
            if "*" in text or not name or not namespace or "/" in namespace:
                self.error(
                    ref.child(i),
                    f"bad service account {text!r}: write <namespace>/<name> or <name>, "
                    "without wildcards",
                )
                continue
            out.add(f"*/ns/{namespace}/sa/{name}")
        return frozenset(out)

    # sources ------------------------------------------------------------------------------

    def source(
        self, src: dict[str, Any], ref: SourceRef, ctx: _Context
    ) -> tuple[Peer, tuple[str, ...]]:
        """One source: its peer (identity and address constraints) and its HTTP-only fields."""
        if not any(src.get(f) for f in SOURCE_FIELDS):
            self.error(
                ref,
                "a source must set at least one field (Istio refuses an empty source; "
                "leave out from to match every source)",
            )
        if any(f in src for f in ("serviceAccounts", "notServiceAccounts")) and any(
            f in src for f in ("principals", "notPrincipals", "namespaces", "notNamespaces")
        ):
            self.error(ref, "Cannot set serviceAccounts with namespaces or principals")
        if ctx.action_name == "CUSTOM":
            for f in CUSTOM_FORBIDDEN_FIELDS:
                if src.get(f):
                    self.error(ref.child(f), f"{f} is not supported with the CUSTOM action")
        lists: dict[str, list[str]] = {}
        for f in SOURCE_FIELDS:
            values = list(src.get(f) or [])
            self.no_empty(values, ref.child(f))
            lists[f] = values
        principals = frozenset(lists["principals"]) | self.service_accounts(
            lists["serviceAccounts"], ref.child("serviceAccounts"), ctx.namespace
        )
        not_principals = frozenset(lists["notPrincipals"]) | self.service_accounts(
            lists["notServiceAccounts"], ref.child("notServiceAccounts"), ctx.namespace
        )
        principal = None
        if principals or not_principals or lists["namespaces"] or lists["notNamespaces"]:
            principal = PrincipalMatch(
                principals or None,
                not_principals,
                frozenset(lists["namespaces"]) or None,
                frozenset(lists["notNamespaces"]),
            )
        ip = self.ip_match(lists, "ipBlocks", "notIpBlocks", ref)
        remote = self.ip_match(lists, "remoteIpBlocks", "notRemoteIpBlocks", ref)
        if remote is not None:
            self.remote_loss(
                ref.child("remoteIpBlocks" if lists["remoteIpBlocks"] else "notRemoteIpBlocks")
            )
            ip = _and_ip(ip, remote)
        http = tuple(
            _strings(f, lists[f]) for f in ("requestPrincipals", "notRequestPrincipals") if lists[f]
        )
        for f in ("trustDomains", "notTrustDomains"):
            if lists[f]:
                self.dropped(
                    ctx.action,
                    Feature.PRINCIPAL,
                    ref.child(f),
                    f"{f} ({', '.join(lists[f])}) are not carried; the source is read without them",
                )
        return Peer(ip=ip, principal=principal), http

    def ip_match(
        self, lists: dict[str, list[str]], field: str, negated: str, ref: SourceRef
    ) -> IpMatch | None:
        """``field`` and its negation in one IpMatch: one peer, never merged across sources."""
        if not lists[field] and not lists[negated]:
            return None
        nets = self.cidrs(lists[field], ref.child(field))
        not_nets = self.cidrs(lists[negated], ref.child(negated))
        return IpMatch(nets if lists[field] else None, not_nets)

    def remote_loss(self, ref: SourceRef) -> None:
        """The IR has one source address; the original client is only known behind proxies."""
        self.loss(
            Effect.INVENTORY_DEPENDENT,
            Feature.IPBLOCK,
            ref,
            "the original client address (X-Forwarded-For / PROXY protocol) is read as the "
            "connection's source IP: exact only when no proxy or load balancer sits in front "
            "of the workload",
            Treatment.APPROXIMATED,
        )

    # operations ---------------------------------------------------------------------------

    def operation(
        self, op: dict[str, Any], ref: SourceRef
    ) -> tuple[IntervalSet | None, HttpMatch | None, tuple[str, ...]]:
        """(ports or None for any, positive HTTP match, not-forms carried by name)."""
        lists = {f: list(op.get(f) or []) for f in OPERATION_FIELDS}
        if not any(lists.values()):
            self.error(
                ref,
                "an operation must set at least one field (Istio refuses an empty operation; "
                "leave out to to match every operation)",
            )
        for f, values in lists.items():
            self.no_empty(values, ref.child(f))
        for f in ("paths", "notPaths"):
            for i, path in enumerate(lists[f]):
                if ("{*}" in path or "{**}" in path) and _UNSUPPORTED_TEMPLATE.search(path):
                    self.error(ref.child(f, i), f"invalid or unsupported path template {path!r}")
        ports: IntervalSet | None = None
        if lists["ports"] or lists["notPorts"]:
            ports = self.ports(lists["ports"], ref.child("ports")) if lists["ports"] else ALL_PORTS
            ports = ports - self.ports(lists["notPorts"], ref.child("notPorts"))
        http = None
        if lists["methods"] or lists["paths"] or lists["hosts"]:
            http = HttpMatch(
                frozenset(lists["methods"]),
                tuple(_path(p) for p in lists["paths"]),
                frozenset(lists["hosts"]),
            )
        other = tuple(
            _strings(f, lists[f]) for f in ("notMethods", "notPaths", "notHosts") if lists[f]
        )
        return ports, http, other

    # conditions ---------------------------------------------------------------------------

    def conditions(
        self, whens: list[dict[str, Any]], ref: SourceRef, ctx: _Context
    ) -> tuple[list[_Condition], IntervalSet | None, tuple[str, ...]]:
        """(peer conditions, port constraint or None, HTTP-only conditions by name)."""
        peers: list[_Condition] = []
        ports: IntervalSet | None = None
        http: list[str] = []
        for k, cond in enumerate(whens):
            where = ref.child("when", k)
            key = str(cond.get("key"))
            values = list(cond.get("values") or [])
            not_values = list(cond.get("notValues") or [])
            if not key:
                self.error(where.child("key"), "key must not be empty")
                continue
            if not values and not not_values:
                self.error(where, f"at least one of values or notValues must be set for key {key}")
                continue
            values_ok = self.no_empty(values, where.child("values"))
            if not (self.no_empty(not_values, where.child("notValues")) and values_ok):
                continue
            if ctx.action_name == "CUSTOM" and (
                key in CUSTOM_FORBIDDEN_KEYS or key.startswith("request.auth.")
            ):
                self.error(where.child("key"), f"{key} is not supported with the CUSTOM action")
                continue
            if key in ("source.ip", "remote.ip"):
                nets = self.cidrs(values, where.child("values"))
                not_nets = self.cidrs(not_values, where.child("notValues"))
                peers.append(
                    _Condition(Peer(ip=IpMatch(nets if values else None, not_nets)), where, key)
                )
                if key == "remote.ip":
                    self.remote_loss(where)
            elif key == "source.namespace":
                match = PrincipalMatch(
                    None, frozenset(), frozenset(values) or None, frozenset(not_values)
                )
                peers.append(_Condition(Peer(principal=match), where, key))
            elif key in ("source.principal", "source.serviceAccount"):
                if key == "source.principal":
                    pos, neg = frozenset(values), frozenset(not_values)
                else:
                    pos = self.service_accounts(values, where.child("values"), ctx.namespace)
                    neg = self.service_accounts(not_values, where.child("notValues"), ctx.namespace)
                peers.append(
                    _Condition(Peer(principal=PrincipalMatch(pos or None, neg)), where, key)
                )
            elif key == "destination.port":
                allowed = self.ports(values, where.child("values")) if values else ALL_PORTS
                allowed = allowed - self.ports(not_values, where.child("notValues"))
                ports = allowed if ports is None else ports & allowed
            elif key in HTTP_KEYS or key.startswith(HTTP_MAP_PREFIXES):
                if key.startswith(HTTP_MAP_PREFIXES) and not self.map_key(key, where):
                    continue
                if values:
                    http.append(_strings(key, values))
                if not_values:
                    http.append(f"{key}!={','.join(not_values)}")
            elif key in NOT_CARRIED_KEYS or key.startswith(ENVOY_FILTER_PREFIX):
                if key == "destination.ip":
                    self.cidrs(values, where.child("values"))
                    self.cidrs(not_values, where.child("notValues"))
                elif key.startswith(ENVOY_FILTER_PREFIX) and not self.map_key(key, where):
                    continue
                self.dropped(
                    ctx.action,
                    Feature.IPBLOCK if key == "destination.ip" else Feature.L7_OTHER,
                    where,
                    f"the condition on {key} is not carried; the rule is read without it",
                )
            else:
                reason = next(
                    (r for k2, r in REFUSED_KEYS.items() if key == k2 or key.startswith(k2 + "[")),
                    None,
                )
                self.error(
                    where.child("key"),
                    f"attribute {key} is {reason}" if reason else f"unknown attribute {key!r}",
                )
        return peers, ports, tuple(http)

    def map_key(self, key: str, ref: SourceRef) -> bool:
        """``a[b]``: the header or claim name in brackets."""
        open_at = key.find("[")
        if key.endswith("]") and 0 < open_at < len(key) - 2:
            return True
        self.error(ref.child("key"), f"bad key {key!r}: should have format a[b]")
        return False

    # rules --------------------------------------------------------------------------------

    def rule(self, item: dict[str, Any], ref: SourceRef, ctx: _Context) -> list[Rule]:
        """One Istio rule as IR rules: one per operation and per set of HTTP-only source fields
        (IR rules carry L7 constraints per rule, Istio per source)."""
        conditions, when_ports, when_http = self.conditions(item.get("when") or [], ref, ctx)
        groups: dict[tuple[str, ...], list[Peer]] = {}
        sources = item.get("from") or []
        for j, entry in enumerate(sources):
            where = ref.child("from", j)
            src = entry.get("source")
            if src is None:
                self.error(where, "a from entry needs source")
                continue
            peer, source_http = self.source(src, where.child("source"), ctx)
            groups.setdefault(source_http, []).append(self.and_conditions(peer, conditions, j, ctx))
        if not sources:
            groups = {(): [self.and_conditions(Peer(), conditions, None, ctx)]}
        # A peer without constraints matches every source: the OR is then everything.
        peers: dict[tuple[str, ...], PeerMatch] = {
            k: tuple(v) if all(_has_constraint(p) for p in v) else ANY_PEER
            for k, v in groups.items()
        }
        operations: list[tuple[IntervalSet | None, HttpMatch | None, tuple[str, ...], SourceRef]]
        operations = []
        ops = item.get("to") or []
        for j, entry in enumerate(ops):
            where = ref.child("to", j)
            op = entry.get("operation")
            if op is None:
                self.error(where, "a to entry needs operation")
                continue
            port_set, http, other = self.operation(op, where.child("operation"))
            operations.append((port_set, http, other, where if len(ops) > 1 else ref))
        if not ops:
            operations.append((None, None, (), ref))
        out: list[Rule] = []
        for port_set, http, other, where in operations:
            ports = _port_match(port_set, when_ports)
            for source_http, peer_match in peers.items():
                strings = other + source_http + when_http
                l7 = L7Match((http,) if http else (), (), strings) if http or strings else None
                out.append(Rule(ctx.action, peer_match, ports, l7, source=where))
        return out

    def and_conditions(
        self, peer: Peer, conditions: list[_Condition], index: int | None, ctx: _Context
    ) -> Peer:
        """``peer`` AND every peer condition of its rule, reporting what no pattern can say."""
        for cond in conditions:
            exact, combined = _and_peer(peer, cond.peer)
            if not exact:
                whose = "the other conditions" if index is None else f"source {index}"
                self.dropped(
                    ctx.action,
                    Feature.PRINCIPAL,
                    cond.ref,
                    f"{cond.key} cannot be ANDed exactly with {whose} (no single Istio pattern "
                    "matches both); its positive values are dropped there",
                )
            peer = combined
        return peer

    # policies -----------------------------------------------------------------------------

    def selector(self, spec: dict[str, Any], ref: SourceRef) -> Selector:
        """A plain label map: no expressions, no wildcards (Istio's workload selector)."""
        labels = {
            str(k): v for k, v in ((spec.get("selector") or {}).get("matchLabels") or {}).items()
        }
        ok = True
        for key, value in labels.items():
            where = ref.child("selector", "matchLabels", key)
            if not key:
                self.error(where, "key must not be empty")
                ok = False
            elif "*" in key:
                self.error(where, "wildcard not allowed in label key match")
                ok = False
            if "*" in value:
                self.error(where, "wildcard not allowed in label value match")
                ok = False
        return from_label_selector({"matchLabels": labels}) if labels and ok else All()

    def targets(self, spec: dict[str, Any], ref: SourceRef) -> list[str]:
        """The targetRef(s), validated like istiod; their names for the loss message."""
        refs: list[tuple[dict[str, Any], SourceRef]] = []
        if "targetRef" in spec:
            refs.append((spec["targetRef"], ref.child("targetRef")))
        refs += [
            (t, ref.child("targetRefs", i)) for i, t in enumerate(spec.get("targetRefs") or [])
        ]
        names: list[str] = []
        for target, where in refs:
            group = str(target.get("group") or "") or "core"
            kind = str(target.get("kind"))
            if target.get("namespace"):
                self.error(
                    where.child("namespace"),
                    "cross namespace referencing is not currently supported",
                )
            if (group, kind) not in TARGET_KINDS:
                self.error(
                    where,
                    f"targetRef must be to a Service, ServiceEntry, Gateway or GatewayClass, "
                    f"not {target.get('group') or ''}/{kind}",
                )
            names.append(f"{kind}/{target.get('name')}")
        return names

    def read(self, doc: Document) -> Policy | None:
        """One AuthorizationPolicy as one L7 policy; None when invalid or not workload-bound."""
        ref = doc.source
        if not isinstance(doc.data, dict):
            self.error(ref, "an AuthorizationPolicy must be a mapping")
            return None
        data = _prune_nulls(doc.data)
        before, losses_before = len(self.problems), len(self.losses)
        self.structure(data, ref)
        if len(self.problems) > before:
            return None
        meta = data["metadata"]
        ns = str(meta.get("namespace") or "default")
        spec = data.get("spec") or {}
        sref = ref.child("spec")
        action_name = str(spec.get("action") or "ALLOW")
        action, order, isolates = ACTIONS[action_name]
        ctx = _Context(ns, action_name, action)
        present = [k for k in ("selector", "targetRef", "targetRefs") if k in spec]
        if len(present) > 1:
            self.error(
                sref, f"only one of targetRefs or selector can be set (found {', '.join(present)})"
            )
        provider = spec.get("provider")
        if action_name == "CUSTOM":
            if not (provider or {}).get("name"):
                self.error(
                    sref.child("provider") if provider is not None else sref,
                    "the CUSTOM action needs provider.name (the extension provider to ask)",
                )
        elif provider is not None:
            self.error(
                sref.child("provider"),
                f"provider is only allowed with the CUSTOM action, not {action_name}",
            )
        rules_data = spec.get("rules") or []
        if not rules_data and action_name in ("DENY", "CUSTOM"):
            self.error(
                sref.child("rules") if "rules" in spec else sref,
                f"{action_name} action without rules is meaningless as it will never be "
                "triggered (Istio refuses it); add an empty rule {} to trigger it for every "
                "request",
            )
        selector = self.selector(spec, sref)
        targets = self.targets(spec, sref)
        rules: list[Rule] = []
        for i, item in enumerate(rules_data):
            rules.extend(self.rule(item, sref.child("rules", i), ctx))
        if len(self.problems) > before:
            return None
        if targets:
            del self.losses[losses_before:]  # nothing of the policy is read
            self.loss(
                Effect.NONE if action_name == "AUDIT" else Effect.WIDENED,
                Feature.LAYER,
                sref.child("targetRefs" if "targetRefs" in spec else "targetRef"),
                f"the policy applies to {', '.join(targets)} (a gateway or waypoint): targets are "
                "resolved only with an inventory, so it is not read",
            )
            return None
        if action_name == "AUDIT":
            self.loss(
                Effect.NONE,
                Feature.LOG_ACTION,
                sref.child("action"),
                "AUDIT is read as log rules: they never affect the decision",
                Treatment.APPROXIMATED,
            )
        elif action_name == "CUSTOM":
            self.loss(
                Effect.WIDENED,
                Feature.DENY_ACTION,
                sref.child("provider"),
                f"the external authorizer {(provider or {}).get('name')!r} decides CUSTOM "
                "requests; its answer cannot be evaluated, so the policy is read as allowing "
                "them (log rules)",
            )
        # A policy in the root namespace applies to the selected workloads of every namespace.
        mesh_wide = ns == self.root_namespace
        subject = Subject(None, selector, All()) if mesh_wide else Subject(ns, selector)
        return Policy(
            PolicyId(FORMAT, ns, str(meta["name"])),
            subject,
            Governed(tuple(rules), isolates),
            NOT_GOVERNED,
            DEFAULT_TIER,
            order,
            Layer.L7,
            tuple(sorted((meta.get("labels") or {}).items())),
            ref,
        )


def _port_match(ports: IntervalSet | None, when: IntervalSet | None) -> PortMatch:
    """TCP ports (Istio's ports are the workload's TCP ports); no constraint at all: any."""
    if ports is None and when is None:
        return ANY_PORTS
    allowed = ALL_PORTS if ports is None else ports
    if when is not None:
        allowed = allowed & when
    return (PortSpec.single(Protocol.TCP, allowed),) if allowed else ()


def accepts(doc: Document) -> bool:
    """Whether ``doc`` is an AuthorizationPolicy of a version this reader reads."""
    return doc.kind == KIND and doc.api_version in API_VERSIONS


def read(docs: Sequence[Document], root_namespace: str) -> Translation[PolicySet]:
    """The AuthorizationPolicies among ``docs`` in the IR (``root_namespace``'s apply everywhere)."""
    reader = _Reader(root_namespace)
    policies: list[Policy] = []
    for doc in docs:
        if not accepts(doc):
            continue
        policy = reader.read(doc)
        if policy is not None:
            policies.append(policy)
    if reader.problems:
        raise InputError(reader.problems)
    return Translation(
        PolicySet(tuple(policies)), FidelityReport(FORMAT, "canonical", tuple(reader.losses))
    )
