"""Rendering the canonical model as security.istio.io/v1 AuthorizationPolicies.

Istio decides inbound TCP in the server-side proxy of mesh workloads only: DENY policies first,
then the union of ALLOW policies, and a workload with any ALLOW policy is deny-by-default. Its
sources are identities (mTLS principals and namespaces) and addresses, never labels; its ports
are exact numbers. Everything that does not land exactly is reported as a ``Loss``; nothing is
refused here (``api.convert`` verifies and fails closed).

| IR | AuthorizationPolicy | fidelity |
|---|---|---|
| `Layer.L7` policy (read from Istio) | written back: ALLOW (allow rules, isolating), DENY (deny rules), AUDIT (log rules) | exact |
| `Subject(ns, sel)`: label equality, `In`, OR | `metadata.namespace` + `selector.matchLabels`, one per label set | exact |
| empty selector | no `selector` (namespace-wide) | exact |
| other selector tests (`Has`, `NotIn`, SA …) | the selected pods' label sets (inventory) | inventory-dependent; else skipped (widened) |
| cluster-wide subject, all namespaces | one policy in the root namespace (`istio-system`) | exact |
| cluster-wide subject, namespaces by name / other labels | one policy per namespace (names / inventory) | exact / inventory-dependent |
| ingress, isolating, allow rules | one ALLOW policy (ALLOW policies union; any ALLOW isolates) | exact |
| `Governed((), isolates=True)` | ALLOW without `rules` (allow nothing; never `rules: [{}]`) | exact |
| deny rules | a DENY policy, when no allow or pass can decide before them | exact; else ORDER loss (narrowed) |
| pass / log rules (network layer) | dropped | narrowed / none |
| allow rules that do not isolate | ALLOW policy (Istio ALLOW always isolates) | narrowed |
| egress | not written (Istio is inbound-only; never inverted into ingress) | widened |
| UDP / SCTP / ICMP | not proxied: the mesh lets them through | widened (once per policy) |
| subject pods outside the mesh | not enforced (no proxy) | widened (inventory-dependent without one) |
| `IpMatch(nets, not_nets)` | `ipBlocks` + `notIpBlocks` in one source | exact |
| `PrincipalMatch` | `principals` / `notPrincipals` / `namespaces` / `notNamespaces` | exact |
| namespace-only peer (names, `kubernetes.io/metadata.name` tests) | `namespaces` | exact for mTLS clients; plain-text clients narrowed |
| namespace-only peer (other labels) | `namespaces` from the inventory | inventory-dependent; dropped without one |
| service-account peer (names) | `principals` `<td>/ns/<ns>/sa/<sa>` (`*/sa/<sa>` for any namespace) | exact for mTLS clients |
| pod-label peer | `principals` of the selected pods' SAs (inventory) | inventory-dependent; widened if others share the SA; else dropped |
| network sets selected by a peer | `ipBlocks` of their CIDRs | exact |
| entities, FQDN, security groups, `not_pods` alone | dropped | by action |
| TCP ports / `notPorts` | port strings (≤ 1024 enumerated, else `notPorts`) | exact; larger sets drop the port constraint |
| named ports | resolved on the subject's pods (inventory) | inventory-dependent; dropped without one |
| HTTP methods / exact and prefix paths / hosts | `to[].operation` | exact; other regexes dropped |
| `L7Match.other` from Istio (`notMethods=…`, `requestPrincipals=…`, `request.*`) | the fields / `when` they came from | exact |
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from polyfence.fidelity import Effect, Feature, FidelityReport, Loss, Treatment
from polyfence.inventory import MESH_ROOT_NAMESPACE, NAMESPACE_NAME_LABEL, Endpoint, Inventory
from polyfence.model.labels import PSEUDO_KEYS
from polyfence.model.peers import ANY_PEER, Entity, Peer, PrincipalMatch
from polyfence.model.policy import (
    Action,
    Direction,
    Governed,
    HttpMatch,
    Layer,
    Policy,
    PolicySet,
    Rule,
)
from polyfence.model.ports import ANY_PORTS, Protocol
from polyfence.model.provenance import SourceRef
from polyfence.model.selectors import (
    All,
    Eq,
    Has,
    In,
    Selector,
    SelectorNotExpressible,
    and_,
    to_dnf,
)
from polyfence.rules.flatten import may_overlap, overlapping_tiers, removable_denies
from polyfence.rules.terms import bind_pod, local_pods, pod_terms, safe_name
from polyfence.semantics.intervals import IntervalSet, IPSet
from polyfence.semantics.matching import Matcher, Remote
from polyfence.semantics.profile import DEFAULT_PROFILE
from polyfence.translation import RenderOptions, Translation, origins_of

API_VERSION = "security.istio.io/v1"
KIND = "AuthorizationPolicy"
FORMAT = "istio"
AUDIT_ORDER = 0.0  # the reader's order for AUDIT (and CUSTOM) policies
PORT_LIMIT = 1024  # port strings enumerated per rule; beyond, notPorts or no constraint
SPLIT_LIMIT = 64  # label sets one selector may expand into
_TCP = int(Protocol.TCP)
_PORT_UNIVERSE = IntervalSet.span(1, 65535)
_NAMED_FEW = 3  # endpoints named in a loss message
_HTTP_KEY_PREFIX = "request."
_OPERATION_OTHER = ("notMethods", "notPaths", "notHosts")
_SOURCE_OTHER = ("requestPrincipals", "notRequestPrincipals")
_REGEX_TOKENS = ("[^/]+", ".*", ".+")
_REGEX_META = set(".^$*+?{}[]()|\\")
_LITERAL = re.compile(r"[A-Za-z0-9._~:/@!$&'()+,;=%-]*")  # no regex or Istio pattern syntax


@dataclass(frozen=True, slots=True)
class _Scope:
    """Where one written policy applies: its namespace, workload labels and (with an inventory)
    the pods that selector picks, which named ports and mTLS checks are resolved on."""

    namespace: str
    labels: tuple[tuple[str, str], ...]
    mesh_wide: bool
    pods: tuple[Endpoint, ...] | None


@dataclass(frozen=True, slots=True)
class _Part:
    """One AuthorizationPolicy to write for an IR policy: its action, rules, the extra workload
    selector of a rule bound to part of the subject, and whether it isolates."""

    action: str  # ALLOW | DENY | AUDIT
    rules: tuple[Rule, ...]
    local: Selector | None = None
    isolates: bool = False


def _skip_effects(part: _Part) -> list[tuple[Effect, str]]:
    """What leaving a part unwritten does: its isolation and deny rules no longer hold
    (widened); its allow rules no longer admit anything where other policies isolate the same
    workloads (narrowed)."""
    out: list[tuple[Effect, str]] = []
    if part.action == "DENY" and part.rules:
        out.append((Effect.WIDENED, "its deny rules no longer apply"))
    if part.action == "ALLOW" and part.isolates and part.local is None:
        out.append((Effect.WIDENED, "its workloads lose this isolation"))
    if part.action == "ALLOW" and part.rules:
        out.append(
            (
                Effect.NARROWED,
                "its allow rules are lost: where other policies isolate these workloads, that "
                "traffic is now denied",
            )
        )
    if part.action == "AUDIT":
        out.append((Effect.NONE, "its log rules are lost"))
    return out


def _few(endpoints: Iterable[Endpoint]) -> str:
    refs = sorted({ep.ref for ep in endpoints})
    more = f" and {len(refs) - _NAMED_FEW} more" if len(refs) > _NAMED_FEW else ""
    return ", ".join(refs[:_NAMED_FEW]) + more


def _widens(rule: Rule) -> Effect:
    """The effect of a written rule matching MORE than the IR rule."""
    if rule.action is Action.ALLOW:
        return Effect.WIDENED
    if rule.action in (Action.DENY, Action.PASS):
        return Effect.NARROWED
    return Effect.NONE


def _narrows(rule: Rule) -> Effect:
    """The effect of a written rule matching LESS than the IR rule (or being dropped)."""
    if rule.action is Action.ALLOW:
        return Effect.NARROWED
    if rule.action in (Action.DENY, Action.PASS):
        return Effect.WIDENED
    return Effect.NONE


def _unconstrained(peer: Peer) -> bool:
    return peer == Peer() or peer == Peer(entity=Entity.ALL)


def _allows_all(rule: Rule) -> bool:
    return (
        rule.action is Action.ALLOW
        and (rule.peers is ANY_PEER or any(_unconstrained(p) for p in rule.peers))  # type: ignore[union-attr]
        and rule.ports is ANY_PORTS
        and rule.l7 is None
        and rule.local is None
    )


def _restricts(rules: Governed) -> bool:
    """Whether a governed direction can drop anything (else dropping it changes nothing)."""
    for rule in rules.rules:
        if rule.action in (Action.DENY, Action.PASS):
            return True
        if _allows_all(rule):
            return False
    return rules.isolates


def _label_sets(sel: Selector) -> list[tuple[tuple[str, str], ...]] | None:
    """The ``matchLabels`` maps OR-ing to ``sel`` (equality and ``In`` only), ``[]`` for a
    selector matching nothing, None when Istio's plain label maps cannot say it."""
    try:
        terms = to_dnf(sel)
    except (SelectorNotExpressible, ValueError):
        return None
    out: dict[tuple[tuple[str, str], ...], None] = {}
    for conj in terms:
        choices: dict[str, frozenset[str]] = {}
        for lit in conj:
            if isinstance(lit, Eq):
                values = frozenset({lit.value})
            elif isinstance(lit, In):
                values = lit.values
            else:
                return None
            if lit.key in PSEUDO_KEYS:
                return None
            choices[lit.key] = choices.get(lit.key, values) & values
        if any(not v for v in choices.values()):
            continue  # contradictory term
        keys = sorted(choices)
        for combo in itertools.product(*(sorted(choices[k]) for k in keys)):
            labels = tuple(zip(keys, combo, strict=True))
            if not all(_label_ok(k, v) for k, v in labels):
                return None
            out[labels] = None
            if len(out) > SPLIT_LIMIT:
                return None
    return sorted(out, key=json.dumps)


def _label_ok(key: str, value: str) -> bool:
    """The CRD's rules for workload selector labels: no wildcards, values up to 63 chars."""
    return bool(key) and "*" not in key and "*" not in value and len(value) <= 63


def _finite_names(sel: Selector) -> tuple[bool, frozenset[str]] | None:
    """(every namespace, names) a namespace selector admits when it tests only the name label;
    None when it tests other labels (then only an inventory can say which namespaces)."""
    try:
        terms = to_dnf(sel)
    except (SelectorNotExpressible, ValueError):
        return None
    names: set[str] = set()
    for conj in terms:
        current: frozenset[str] | None = None
        for lit in conj:
            if isinstance(lit, Has) and lit.key == NAMESPACE_NAME_LABEL:
                continue  # every namespace carries its name label
            if isinstance(lit, Eq) and lit.key == NAMESPACE_NAME_LABEL:
                values = frozenset({lit.value})
            elif isinstance(lit, In) and lit.key == NAMESPACE_NAME_LABEL:
                values = lit.values
            else:
                return None
            current = values if current is None else current & values
        if current is None:
            return True, frozenset()
        names |= current
    return False, frozenset(names)


def _literal_path(text: str) -> bool:
    """A path Istio reads back as exactly this string (no pattern or template syntax)."""
    return not (
        text.startswith("*") or text.endswith("*") or "{*}" in text or "{**}" in text
    ) and bool(text)


def _regex_path(regex: str) -> str | None:
    """An Istio path (exact, ``prefix*``, ``*suffix``, ``*``, ``{*}``/``{**}`` templates) for a
    full-match regex of literal characters and the ``[^/]+`` / ``.*`` / ``.+`` tokens, or None."""
    text = regex.removeprefix("^")
    if text.endswith("$") and not text.endswith("\\$"):
        text = text[:-1]
    parts: list[tuple[str, str]] = []
    literal: list[str] = []
    i = 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text):
            if text[i + 1].isalnum():
                return None  # a character class (\d, \w, …)
            literal.append(text[i + 1])
            i += 2
            continue
        token = next((t for t in _REGEX_TOKENS if text.startswith(t, i)), None)
        if token is not None:
            if literal:
                parts.append(("lit", "".join(literal)))
                literal = []
            parts.append(("tok", token))
            i += len(token)
            continue
        if text[i] in _REGEX_META:
            return None
        literal.append(text[i])
        i += 1
    if literal:
        parts.append(("lit", "".join(literal)))
    if any(kind == "lit" and ("*" in v or "{" in v or "}" in v) for kind, v in parts):
        return None
    if parts == [("tok", ".+")]:
        return "*"
    if len(parts) == 1 and parts[0][0] == "lit":
        return parts[0][1]
    if len(parts) == 2 and parts[0][0] == "lit" and parts[1] == ("tok", ".*"):
        return parts[0][1] + "*"
    if len(parts) == 2 and parts[0] == ("tok", ".*") and parts[1][0] == "lit":
        return "*" + parts[1][1]
    # Templates: {*} is one whole segment, {**} the whole rest of the path.
    out = ""
    for j, (kind, value) in enumerate(parts):
        if kind == "lit":
            out += value
            continue
        if value == ".+" or not out.endswith("/"):
            return None
        last = j == len(parts) - 1
        following = "" if last else parts[j + 1][1]
        if value == ".*":
            if not last:
                return None
            out += "{**}"
        else:
            if not (last or following.startswith("/")):
                return None
            out += "{*}"
    return out


def _simple_token(text: str) -> bool:
    """A method or host spelled without regex syntax, so exact in Istio too."""
    return bool(text) and _LITERAL.fullmatch(text) is not None and "*" not in text


def _ports_list(ports: IntervalSet) -> list[str]:
    return [str(p) for lo, hi in ports for p in range(lo, hi + 1)]


def _merge(*parts: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for part in parts:
        out.update(part)
    return out


def _other_fields(
    strings: Iterable[str],
) -> tuple[dict[str, list[str]], list[dict[str, Any]], list[str]]:
    """The reader's by-name L7 strings (``key=v1,v2`` / ``key!=v1,v2``) back as (Istio fields,
    ``when`` conditions, strings no Istio field carries)."""
    fields: dict[str, list[str]] = {}
    when: list[dict[str, Any]] = []
    unknown: list[str] = []
    for text in strings:
        at = text.find("=")
        negated = at > 0 and text[at - 1] == "!"
        key = text[: at - 1] if negated else text[:at]
        items = [v for v in text[at + 1 :].split(",") if v] if at > 0 else []
        if not items:
            unknown.append(text)
        elif not negated and key in (*_OPERATION_OTHER, *_SOURCE_OTHER):
            fields.setdefault(key, []).extend(items)
        elif key.startswith(_HTTP_KEY_PREFIX):
            when.append({"key": key, "notValues" if negated else "values": items})
        else:
            unknown.append(text)
    return fields, when, unknown


class _Writer:
    def __init__(self, ps: PolicySet, options: RenderOptions) -> None:
        self.ps = ps
        self.inventory = options.inventory
        self.trust_domain = str(options.extra.get("trust_domain", "cluster.local"))
        self.root = str(options.extra.get("root_namespace", MESH_ROOT_NAMESPACE))
        profile = DEFAULT_PROFILE.but(trust_domain=self.trust_domain)
        if "mtls_default" in options.extra:
            profile = profile.but(mtls_default=str(options.extra["mtls_default"]))
        self.matcher = Matcher(options.inventory or Inventory(), profile, ps.network_sets)
        inv = options.inventory
        self.pods = [] if inv is None else [ep for ep in inv.pods if self.matcher.acts_as_pod(ep)]
        self.remotes = {id(ep): Remote(ep) for ep in self.pods}  # parsed addresses, built once
        self._matched: dict[Peer, list[Endpoint]] = {}
        self.removable = removable_denies(ps, Direction.INGRESS)
        self.losses: list[Loss] = []

    def loss(
        self,
        effect: Effect,
        feature: Feature,
        ref: SourceRef | None,
        msg: str,
        treatment: Treatment = Treatment.DROPPED,
    ) -> None:
        self.losses.append(Loss(effect, treatment, feature, ref, msg))

    def skipped(self, pol: Policy, part: _Part, feature: Feature, why: str) -> None:
        """Report a part of a policy that is not written, with each effect that has."""
        for effect, what in _skip_effects(part):
            self.loss(effect, feature, pol.source, f"{why}; not written, so {what}")

    def principal(self, namespace: str, service_account: str | None) -> str:
        return f"{self.trust_domain}/ns/{namespace}/sa/{service_account or 'default'}"

    # -- subjects ------------------------------------------------------------------------------
    def scope(self, namespace: str, labels: tuple[tuple[str, str], ...], mesh_wide: bool) -> _Scope:
        pods = None
        if self.inventory is not None:
            pods = tuple(
                ep
                for ep in self.pods
                if (mesh_wide or ep.namespace == namespace)
                and all(ep.labels.get(k) == v for k, v in labels)
            )
        return _Scope(namespace, labels, mesh_wide, pods)

    def scopes(self, pol: Policy, selector: Selector, part: _Part) -> list[_Scope]:
        """The (namespace, workload labels) pairs a subject is written as."""
        sub = pol.subject
        if sub.service_accounts is not None:  # service-account labels: no selector form
            return self.enumerate(pol, selector, part)
        if sub.namespace is not None:
            if sub.namespace == self.root:
                self.skipped(
                    pol,
                    part,
                    Feature.CLUSTER_SCOPE,
                    f"policy {pol.id} lives in Istio's root namespace {self.root}, where a policy "
                    "applies to every namespace",
                )
                return []
            sets = _label_sets(bind_pod(selector, sub.namespace))
            if sets is None:
                return self.enumerate(pol, selector, part)
            return [self.scope(sub.namespace, labels, False) for labels in sets]
        out: list[_Scope] = []
        for term in pod_terms(selector):
            sets = _label_sets(term.labels)
            if sets is None or term.service_account:
                return self.enumerate(pol, selector, part)
            ns_sel = and_(sub.namespace_selector or All(), term.namespace or All())
            finite = _finite_names(ns_sel)
            if finite is not None and finite[0]:
                out.extend(self.scope(self.root, labels, True) for labels in sets)
                continue
            if finite is not None:
                names = finite[1]
            elif self.inventory is None:
                self.skipped(
                    pol,
                    part,
                    Feature.CLUSTER_SCOPE,
                    f"policy {pol.id} selects namespaces by labels and there is no inventory to "
                    "expand them",
                )
                return []
            else:
                names = frozenset(
                    ns.name for ns in self.inventory.namespaces if ns_sel.matches(ns.labels)
                )
                self.loss(
                    Effect.INVENTORY_DEPENDENT,
                    Feature.CLUSTER_SCOPE,
                    pol.source,
                    f"policy {pol.id} expanded to the namespaces its selector matches now: "
                    f"{', '.join(sorted(names)) or '(none)'}; new namespaces are not covered",
                    Treatment.EXPANDED,
                )
            for name in sorted(names):
                if name == self.root:
                    self.skipped(
                        pol,
                        part,
                        Feature.CLUSTER_SCOPE,
                        f"policy {pol.id} in the root namespace {name} would apply to every "
                        "namespace",
                    )
                    continue
                out.extend(self.scope(name, labels, False) for labels in sets)
        return list(dict.fromkeys(out))

    def enumerate(self, pol: Policy, selector: Selector, part: _Part) -> list[_Scope]:
        """A subject Istio's label maps cannot say, as the label sets of the pods it selects now
        (only when no other pod carries those labels)."""
        if self.inventory is None:
            self.skipped(
                pol,
                part,
                Feature.SELECTOR_EXPRESSION,
                f"policy {pol.id}: the workload selector needs more than label equality, which "
                "Istio cannot say, and there is no inventory to enumerate its pods",
            )
            return []
        subject = dataclasses.replace(pol.subject, selector=selector)
        selected = [ep for ep in self.pods if self.matcher.selects(subject, ep)]
        wanted: dict[tuple[str, tuple[tuple[str, str], ...]], None] = {}
        for ep in selected:
            wanted[(ep.namespace or "", tuple(sorted(ep.labels.items())))] = None
        strays: list[Endpoint] = []
        bad: list[str] = []
        for ns, labels in wanted:
            if ns == self.root or not all(_label_ok(k, v) for k, v in labels):
                bad.append(ns)
            strays.extend(
                ep
                for ep in self.pods
                if ep.namespace == ns
                and all(ep.labels.get(k) == v for k, v in labels)
                and not self.matcher.selects(subject, ep)
            )
        if strays or bad:
            why = (
                f"pods {_few(strays)} carry the same labels without being selected"
                if strays
                else "a label set cannot be written as an Istio selector"
            )
            self.skipped(
                pol,
                part,
                Feature.SELECTOR_EXPRESSION,
                f"policy {pol.id}: the workload selector needs more than label equality and its "
                f"pods cannot be enumerated exactly ({why})",
            )
            return []
        self.loss(
            Effect.INVENTORY_DEPENDENT,
            Feature.SELECTOR_EXPRESSION,
            pol.source,
            f"policy {pol.id}: the workload selector was expanded to the label sets of the "
            f"{len(selected)} pods it selects now ({_few(selected) or 'none'}); pods created later "
            "are not covered",
            Treatment.EXPANDED,
        )
        return [self.scope(ns, labels, False) for ns, labels in sorted(wanted)]

    # -- peers ---------------------------------------------------------------------------------
    def sources(self, pol: Policy, rule: Rule, scope: _Scope) -> list[dict[str, Any]] | None:
        """The OR-ed ``from`` sources of a rule; None: any source; ``[]``: none matches."""
        if rule.peers is ANY_PEER or any(_unconstrained(p) for p in rule.peers):  # type: ignore[union-attr]
            return None
        out: list[dict[str, Any]] = []
        for peer in rule.peers:  # type: ignore[union-attr]
            found = self.peer_sources(pol, rule, peer, scope)
            if found is None:
                return None  # a peer whose constraints all admit everything
            out.extend(found)
        unique = {json.dumps(s, sort_keys=True): s for s in out}
        return list(unique.values())

    def peer_sources(
        self, pol: Policy, rule: Rule, peer: Peer, scope: _Scope
    ) -> list[dict[str, Any]] | None:
        """Sources OR-ing to one IR peer (each a conjunction, like the peer); None when the
        peer constrains nothing (``IpMatch(None)``, an empty ``PrincipalMatch``)."""
        ref = rule.source
        for value, feature, what in (
            (peer.entity, Feature.ENTITY, "entity"),
            (peer.fqdn, Feature.FQDN, "FQDN"),
            (peer.security_group, Feature.SECURITY_GROUP, "security group"),
        ):
            if value is not None:
                self.loss(
                    _narrows(rule),
                    feature,
                    ref,
                    f"Istio sources have no {what} form; the peer was dropped",
                )
                return []
        if peer.not_pods is not None and not peer.wants_pod:
            self.loss(
                _narrows(rule),
                Feature.NOT_SELECTOR,
                ref,
                "a peer excluding pods by labels (matching everything else) has no Istio form; "
                "the peer was dropped",
            )
            return []
        if peer.principal is not None and peer.wants_pod:
            self.loss(
                _narrows(rule),
                Feature.PRINCIPAL,
                ref,
                "a peer that is both mesh identities and pods by labels has no Istio form; dropped",
            )
            return []
        base: dict[str, Any] = {}
        if peer.ip is not None:
            if peer.ip.nets is not None and not peer.ip.nets:
                return []  # no address at all
            if peer.ip.nets is not None:
                base["ipBlocks"] = list(peer.ip.nets)
            if peer.ip.not_nets:
                base["notIpBlocks"] = list(peer.ip.not_nets)
            if pol.id.format == "cilium" and pol.layer is not Layer.L7:
                self.loss(
                    _widens(rule),
                    Feature.IPBLOCK,
                    ref,
                    "Istio ipBlocks match the source address of pods and nodes too; Cilium CIDR "
                    "rules match only addresses outside the cluster",
                    Treatment.APPROXIMATED,
                )
        if peer.principal is not None:
            fields = self.principal_fields(peer.principal)
            if fields is None:
                return []
            base.update(fields)
        if not peer.wants_pod:
            return [base] if base else None
        out = [_merge(identity, base) for identity in self.identities(pol, rule, peer, scope)]
        if peer.sets:
            out.extend(self.set_sources(peer))
        return out

    def principal_fields(self, match: PrincipalMatch) -> dict[str, Any] | None:
        """Istio's identity fields, or None when a positive list is empty (matches nothing)."""
        if match.principals is not None and not match.principals:
            return None
        if match.namespaces is not None and not match.namespaces:
            return None
        out: dict[str, Any] = {}
        for key, values in (
            ("principals", match.principals),
            ("notPrincipals", match.not_principals),
            ("namespaces", match.namespaces),
            ("notNamespaces", match.not_namespaces),
        ):
            if values:
                out[key] = sorted(values)
        return out

    def set_sources(self, peer: Peer) -> list[dict[str, Any]]:
        """The network sets a peer selects, as ipBlocks (exact: the sets are part of the input)."""
        nets: list[str] = []
        for net_set in self.ps.network_sets:
            if self.matcher.set_selected(peer, net_set):
                nets.extend(net_set.nets)
        if not nets:
            return []
        ipset = peer.ipset()
        if ipset is not None:  # the peer's own CIDR constraint ANDs with the set's addresses
            nets = list((IPSet.from_cidrs(nets) & ipset).to_cidrs())
        return [{"ipBlocks": list(dict.fromkeys(nets))}] if nets else []

    def identities(
        self, pol: Policy, rule: Rule, peer: Peer, scope: _Scope
    ) -> list[dict[str, Any]]:
        """Identity sources (``namespaces`` or ``principals``) for the pod part of a peer."""
        plain = peer.service_account is None or peer.service_account.selector is None
        terms = pod_terms(peer.pods or All())
        if peer.not_pods is None and plain and all(t.labels == All() for t in terms):
            direct = self.direct_identities(pol, rule, peer, terms, scope)
            if direct is not None:
                return direct
        return self.resolved_identities(rule, peer, scope)

    def direct_identities(
        self, pol: Policy, rule: Rule, peer: Peer, terms: list[Any], scope: _Scope
    ) -> list[dict[str, Any]] | None:
        """Namespaces and service-account names written without resolving pods; None when a
        term needs the inventory (namespaces by other labels, SA names by other tests)."""
        out: list[dict[str, Any]] = []
        names_part = (
            In(NAMESPACE_NAME_LABEL, peer.namespace_names)
            if peer.namespace_names is not None
            else All()
        )
        for term in terms:
            accounts: frozenset[str] | None = (
                None if peer.service_account is None else peer.service_account.names
            )
            for lit in term.service_account:
                if isinstance(lit, Eq):
                    values = frozenset({lit.value})
                elif isinstance(lit, In):
                    values = lit.values
                else:
                    return None
                accounts = values if accounts is None else accounts & values
            ns_sel = and_(peer.namespace_selector or All(), term.namespace or All(), names_part)
            finite = _finite_names(ns_sel)
            if finite is None:
                if self.inventory is None:
                    if accounts is None:
                        self.loss(
                            _narrows(rule),
                            Feature.NAMESPACE_SELECTOR,
                            rule.source,
                            "namespaces selected by labels need an inventory to become Istio "
                            "namespace names; the peer was dropped",
                        )
                        return []
                    return None
                names = frozenset(
                    ns.name for ns in self.inventory.namespaces if ns_sel.matches(ns.labels)
                )
                self.loss(
                    Effect.INVENTORY_DEPENDENT,
                    Feature.NAMESPACE_SELECTOR,
                    rule.source,
                    "namespaces selected by labels were expanded to the names matching now: "
                    f"{', '.join(sorted(names)) or '(none)'}; namespaces labelled later are not "
                    "covered",
                    Treatment.EXPANDED,
                )
                finite = (False, names)
            every, names = finite
            if accounts is not None and not accounts:
                continue
            if accounts is None:
                if every:
                    out.append({"namespaces": ["*"]})
                elif names:
                    out.append({"namespaces": sorted(names)})
            elif every:
                out.append({"principals": sorted(f"*/sa/{sa}" for sa in accounts)})
            elif names:
                out.append(
                    {
                        "principals": sorted(
                            self.principal(ns, sa) for ns in names for sa in accounts
                        )
                    }
                )
        self.mtls_check(rule, peer, scope)
        return out

    def matched_pods(self, peer: Peer) -> list[Endpoint]:
        pod_part = Peer(
            pods=peer.pods,
            not_pods=peer.not_pods,
            namespace_selector=peer.namespace_selector,
            namespace_names=peer.namespace_names,
            service_account=peer.service_account,
        )
        found = self._matched.get(pod_part)
        if found is None:
            found = [
                ep for ep in self.pods if self.matcher.peer_matches(pod_part, self.remotes[id(ep)])
            ]
            self._matched[pod_part] = found
        return found

    def mtls_check(
        self, rule: Rule, peer: Peer, scope: _Scope, matched: list[Endpoint] | None = None
    ) -> None:
        """Identities exist only on mTLS: selected clients outside the mesh (or towards servers
        with mTLS off) no longer match. STRICT servers refuse them either way."""
        if self.inventory is None or scope.pods is None:
            self.loss(
                Effect.INVENTORY_DEPENDENT,
                Feature.PRINCIPAL,
                rule.source,
                "Istio namespaces and principals match mTLS clients only: exact while every "
                "selected client runs in the mesh and the server does not disable mTLS",
                Treatment.APPROXIMATED,
            )
            return
        clients = self.matched_pods(peer) if matched is None else matched
        servers = [s for s in scope.pods if s.mesh and self.matcher.mtls_mode(s) != "STRICT"]
        # mutual_tls(c, s) holds iff c is a mesh pod and s does not disable mTLS
        if any(self.matcher.mtls_mode(s) == "DISABLE" for s in servers):
            lost = list(clients) if servers else []
        else:
            lost = [c for c in clients if servers and not c.mesh]
        if lost:
            self.loss(
                _narrows(rule),
                Feature.PRINCIPAL,
                rule.source,
                f"Istio identities exist only on mTLS connections: {_few(lost)} (outside the "
                "mesh, or to a server with mTLS disabled) no longer match this peer",
                Treatment.APPROXIMATED,
            )

    def resolved_identities(self, rule: Rule, peer: Peer, scope: _Scope) -> list[dict[str, Any]]:
        """Pods selected by labels, as the principals of their service accounts (trap 21)."""
        if self.inventory is None:
            self.loss(
                _narrows(rule),
                Feature.SELECTOR_EXPRESSION,
                rule.source,
                "pods selected by labels have no Istio form: their service-account identities "
                "need an inventory; the peer was dropped",
            )
            return []
        matched = self.matched_pods(peer)
        pairs = sorted({(ep.namespace or "", ep.service_account or "default") for ep in matched})
        self.loss(
            Effect.INVENTORY_DEPENDENT,
            Feature.SERVICE_ACCOUNT,
            rule.source,
            f"pods selected by labels ({_few(matched) or 'none now'}) were written as the "
            f"principals of their service accounts ({', '.join(f'{n}/{s}' for n, s in pairs) or 'none'}); "
            "pods created or relabelled later are not covered",
            Treatment.EXPANDED,
        )
        if not pairs:
            return []
        chosen = {id(ep) for ep in matched}
        servers = scope.pods if scope.pods else ()
        # a mesh client gets mTLS to any mesh server that does not disable it
        any_mtls_server = any(s.mesh and self.matcher.mtls_mode(s) != "DISABLE" for s in servers)
        sharing = [
            ep
            for ep in self.pods
            if id(ep) not in chosen
            and (ep.namespace or "", ep.service_account or "default") in pairs
            and ep.mesh
            and (not servers or any_mtls_server)
        ]
        if sharing:
            self.loss(
                _widens(rule),
                Feature.SERVICE_ACCOUNT,
                rule.source,
                f"pods {_few(sharing)} share a service account with the selected pods, so they "
                "match the written principals too",
                Treatment.APPROXIMATED,
            )
        self.mtls_check(rule, peer, scope, matched)
        return [{"principals": [self.principal(ns, sa) for ns, sa in pairs]}]

    # -- ports and operations ------------------------------------------------------------------
    def named(self, rule: Rule, names: frozenset[str], scope: _Scope) -> IntervalSet:
        """Named TCP ports resolved on the pods the written policy selects."""
        label = ", ".join(sorted(names))
        if scope.pods is None:
            self.loss(
                _narrows(rule),
                Feature.NAMED_PORT,
                rule.source,
                f"named port(s) {label}: Istio ports are numbers and there is no inventory to "
                "resolve them on; dropped",
            )
            return IntervalSet.empty()
        per_pod = {
            ep: {p for n in names if (p := ep.resolve_port(n, _TCP)) is not None}
            for ep in scope.pods
        }
        numbers = set().union(*per_pod.values())
        union = IntervalSet.union_all(IntervalSet.point(p) for p in numbers)
        differing = [ep for ep, found in per_pod.items() if found != numbers]
        if differing and union:
            self.loss(
                _widens(rule),
                Feature.NAMED_PORT,
                rule.source,
                f"named port(s) {label} do not resolve to the same numbers on every selected "
                f"pod; the policy names all of them ({union}), which also opens them on "
                f"{_few(differing)}",
                Treatment.EXPANDED,
            )
        else:
            self.loss(
                Effect.INVENTORY_DEPENDENT,
                Feature.NAMED_PORT,
                rule.source,
                f"named port(s) {label} resolved on the selected pods to {union or 'nothing'}; "
                "exact while their containers declare the same ports",
                Treatment.EXPANDED,
            )
        return union

    def port_fields(self, pol: Policy, rule: Rule, scope: _Scope) -> dict[str, Any] | None:
        """``ports`` / ``notPorts`` of the rule's TCP ports; ``{}`` any port; None: no TCP."""
        if rule.ports is ANY_PORTS:
            return {}
        total = IntervalSet.empty()
        for spec in rule.ports:  # type: ignore[union-attr]
            if _TCP not in spec.protocols:
                continue  # not proxied (reported once per policy)
            if spec.not_named:
                self.loss(
                    _narrows(rule),
                    Feature.NOT_PORTS,
                    rule.source,
                    "named notPorts have no Istio form; that port spec was dropped",
                )
                continue
            total = total | (spec.ports & _PORT_UNIVERSE)
            if spec.named:
                total = total | self.named(rule, spec.named, scope)
        if not total:
            return None
        if total == _PORT_UNIVERSE:
            return {}
        if total.size() <= PORT_LIMIT:
            return {"ports": _ports_list(total)}
        rest = _PORT_UNIVERSE - total
        if rest.size() <= PORT_LIMIT:
            return {"notPorts": _ports_list(rest)}
        self.loss(
            _widens(rule),
            Feature.PORT_RANGE,
            rule.source,
            f"TCP ports {total} are {total.size()} ports: Istio has no ranges and this is too "
            f"many to list (more than {PORT_LIMIT}); the port constraint was dropped",
            Treatment.APPROXIMATED,
        )
        return {}

    def http_fields(self, pol: Policy, rule: Rule) -> list[dict[str, Any]] | None:
        """Operation fragments (OR-ed) for the rule's HTTP matches; None without any; ``[]``
        when every match was dropped (the rule then matches no request)."""
        l7 = rule.l7
        if l7 is None or not l7.http:
            return None
        mesh = pol.layer is Layer.L7
        out: list[dict[str, Any]] = []
        for match in l7.http:
            frag = self.http_match(rule, match, mesh)
            if frag is not None:
                out.append(frag)
        return out

    def http_match(self, rule: Rule, match: HttpMatch, mesh: bool) -> dict[str, Any] | None:
        frag: dict[str, Any] = {}
        for key, values in (("methods", match.methods), ("hosts", match.hosts)):
            if not values:
                continue
            kept = sorted(v for v in values if mesh or _simple_token(v))
            if len(kept) < len(values):
                self.loss(
                    _narrows(rule),
                    Feature.L7_HTTP,
                    rule.source,
                    f"HTTP {key} written as regular expressions have no Istio form; "
                    f"{', '.join(sorted(set(values) - set(kept)))} dropped",
                )
            if not kept:
                return None
            frag[key] = kept
        if match.paths:
            paths: list[str] = []
            for kind, value in match.paths:
                path = None
                if kind == "exact" and _literal_path(value):
                    path = value
                elif kind == "prefix":
                    path = value + "*" if _literal_path(value + "x") else None
                elif kind == "regex":
                    path = _regex_path(value)
                if path is None:
                    self.loss(
                        _narrows(rule),
                        Feature.L7_HTTP,
                        rule.source,
                        f"HTTP path {kind} {value!r} has no Istio form (exact, prefix, suffix "
                        "and {*}/{**} templates only); dropped",
                    )
                else:
                    paths.append(path)
            if not paths:
                return None
            frag["paths"] = list(dict.fromkeys(paths))  # IR order: the reader keeps it
        return frag

    def l7_losses(self, pol: Policy, rule: Rule, scope: _Scope, ports: dict[str, Any]) -> None:
        """How HTTP fields differ from a network-layer L7 rule at the connection level."""
        if rule.l7 is None or pol.layer is Layer.L7 or not rule.l7.http:
            return
        if rule.action is Action.DENY:
            self.loss(
                Effect.WIDENED,
                Feature.L7_HTTP,
                rule.source,
                "an Istio DENY with HTTP fields refuses only the matching requests (on plain-TCP "
                "ports it drops them); the connection itself stays allowed",
                Treatment.APPROXIMATED,
            )
            return
        if scope.pods is None:
            self.loss(
                Effect.INVENTORY_DEPENDENT,
                Feature.L7_HTTP,
                rule.source,
                "Istio ignores ALLOW rules with HTTP fields on ports declared as plain TCP: exact "
                "while the rule's ports carry HTTP",
                Treatment.APPROXIMATED,
            )
            return
        numbers = None if "ports" not in ports else {int(p) for p in ports["ports"]}
        opaque = [
            ep
            for ep in scope.pods
            if any(
                (numbers is None or p in numbers) and str(p) not in ports.get("notPorts", [])
                for p in ep.opaque_ports
            )
        ]
        if opaque:
            self.loss(
                Effect.NARROWED,
                Feature.L7_HTTP,
                rule.source,
                f"Istio ignores ALLOW rules with HTTP fields on ports declared as plain TCP "
                f"({_few(opaque)}): those connections are no longer allowed",
                Treatment.APPROXIMATED,
            )

    def rule(self, pol: Policy, rule: Rule, scope: _Scope) -> dict[str, Any] | None:
        """One Istio rule (from AND to AND when); None when the rule matches nothing."""
        l7 = rule.l7
        strings = l7.other if l7 is not None else ()
        if pol.layer is Layer.L7:  # the Istio reader's by-name fields and conditions
            fields, when, unknown = _other_fields(strings)
        else:
            fields, when, unknown = {}, [], list(strings)
        if l7 is not None and l7.dns:
            self.loss(
                _widens(rule),
                Feature.L7_DNS,
                rule.source,
                "DNS rules have no Istio form; dropped from the rule",
            )
        if unknown:
            self.loss(
                _widens(rule),
                Feature.L7_OTHER,
                rule.source,
                f"L7 constraints {', '.join(unknown)} have no Istio form; dropped from the rule",
            )
        sources = self.sources(pol, rule, scope)
        if sources is not None and not sources:
            return None
        ports = self.port_fields(pol, rule, scope)
        if ports is None:
            return None
        http = self.http_fields(pol, rule)
        if http is not None and not http:
            return None
        self.l7_losses(pol, rule, scope, ports)
        extra = {k: v for k, v in fields.items() if k in _OPERATION_OTHER}
        operations = [_merge(ports, h, extra) for h in (http or [{}])]
        source_extra = {k: v for k, v in fields.items() if k in _SOURCE_OTHER}
        if source_extra:
            sources = [_merge(s, source_extra) for s in (sources or [{}])]
        out: dict[str, Any] = {}
        if sources is not None:
            out["from"] = [{"source": s} for s in sources]
        if not any(op == {} for op in operations):
            unique = {json.dumps(op, sort_keys=True): op for op in operations}
            out["to"] = [{"operation": op} for op in unique.values()]
        if when:
            out["when"] = when
        return out

    # -- policies ------------------------------------------------------------------------------
    def deny_ok(self, pol: Policy, rules: Governed, index: int) -> bool:
        """No allow or pass can decide before this deny (then Istio's DENY-first agrees)."""
        if any(r.action in (Action.ALLOW, Action.PASS) for r in rules.rules[:index]):
            return False
        mine = (self.ps.tier(pol.tier).sort_key, pol.sort_key)
        for other in self.ps:
            if other is pol or not may_overlap(pol, other):
                continue
            if (other.layer is Layer.L7) != (pol.layer is Layer.L7):
                continue
            theirs = other.ingress
            if not isinstance(theirs, Governed):
                continue
            if (self.ps.tier(other.tier).sort_key, other.sort_key) < mine and any(
                r.action in (Action.ALLOW, Action.PASS) for r in theirs.rules
            ):
                return False
        return True

    def pass_widens(self, pol: Policy, rules: Governed, index: int) -> bool:
        """Whether an allow after a pass (same tier) would now admit what the pass handed on."""
        if any(r.action is Action.ALLOW for r in rules.rules[index + 1 :]):
            return True
        for other in self.ps:
            theirs = other.ingress
            if (
                other is pol
                or other.tier != pol.tier
                or not may_overlap(pol, other)
                or not isinstance(theirs, Governed)
            ):
                continue
            if other.sort_key > pol.sort_key and any(
                r.action is Action.ALLOW for r in theirs.rules
            ):
                return True
        return False

    def local_selector(self, pol: Policy, rule: Rule) -> Selector | None:
        ns = pol.subject.namespace
        if ns is None or rule.local is None:
            return None
        return local_pods(rule.local, ns)

    def parts(self, pol: Policy, rules: Governed) -> list[_Part]:
        """The AuthorizationPolicies to write for one IR policy (before subject expansion)."""
        mesh = pol.layer is Layer.L7
        allow: list[Rule] = []
        deny: list[Rule] = []
        audit: list[Rule] = []
        local: list[_Part] = []
        for i, rule in enumerate(rules.rules):
            if rule.action is Action.LOG:
                if mesh:
                    audit.append(rule)
                else:
                    self.loss(Effect.NONE, Feature.LOG_ACTION, rule.source, "log rule dropped")
                continue
            if rule.action is Action.PASS:
                self.loss(
                    Effect.NARROWED,
                    Feature.PASS_ACTION,
                    rule.source,
                    "Istio has no pass; the rule was dropped, so what it handed to the next tier "
                    "is now left to this workload's isolation",
                )
                if self.pass_widens(pol, rules, i):
                    self.loss(
                        Effect.WIDENED,
                        Feature.PASS_ACTION,
                        rule.source,
                        "Istio has no pass; later allow rules of the tier now also admit what "
                        "the pass skipped past them",
                    )
                continue
            if rule.action is Action.DENY:
                if not mesh and id(rule) in self.removable:
                    self.loss(
                        Effect.NONE,
                        Feature.DENY_ACTION,
                        rule.source,
                        "deny rule left to the workload's isolation: nothing after it could "
                        "allow that traffic",
                    )
                    continue
                if not self.deny_ok(pol, rules, i):
                    self.loss(
                        Effect.NARROWED,
                        Feature.ORDER,
                        rule.source,
                        "an allow or pass decides before this deny, but Istio's DENY policies "
                        "always come first",
                    )
            if rule.local is not None:
                sel = self.local_selector(pol, rule)
                if sel is None:
                    self.loss(
                        _narrows(rule),
                        Feature.SELECTOR_EXPRESSION,
                        rule.source,
                        "a rule bound to part of the subject by more than pod labels has no "
                        "Istio form; dropped",
                    )
                    continue
                name = "ALLOW" if rule.action is Action.ALLOW else "DENY"
                local.append(
                    _Part(name, (dataclasses.replace(rule, local=None),), sel, rules.isolates)
                )
                continue
            (allow if rule.action is Action.ALLOW else deny).append(rule)
        out: list[_Part] = []
        if audit or (mesh and not rules.rules and not rules.isolates and pol.order == AUDIT_ORDER):
            out.append(_Part("AUDIT", tuple(audit)))
            self.loss(
                Effect.NONE,
                Feature.LOG_ACTION,
                pol.source,
                f"log rules of {pol.id} written as an AUDIT policy (it never decides, like the "
                "IR); a CUSTOM policy reads into the same log rules, so its external authorizer "
                "is not restored",
                Treatment.APPROXIMATED,
            )
        if deny:
            out.append(_Part("DENY", tuple(deny)))
        if allow or rules.isolates:
            out.append(_Part("ALLOW", tuple(allow), None, rules.isolates))
        return out + local

    def spec(self, pol: Policy, part: _Part, scope: _Scope) -> dict[str, Any] | None:
        unique = {
            json.dumps(r, sort_keys=True): r
            for r in (self.rule(pol, rule, scope) for rule in part.rules)
            if r is not None
        }
        written = list(unique.values())  # rules OR: a repeated rule says nothing more
        if not written and (part.action == "DENY" or part.local is not None):
            return None  # matches nothing (and Istio refuses a DENY without rules)
        if part.action == "ALLOW" and not part.isolates:
            if not written:
                return None
            self.loss(
                Effect.NARROWED,
                Feature.ALLOW_WITHOUT_ISOLATION,
                pol.source,
                f"ingress of {pol.id} allows without isolating; an Istio ALLOW policy always makes "
                "its workloads deny-by-default",
                Treatment.APPROXIMATED,
            )
        spec: dict[str, Any] = {}
        if scope.labels:
            spec["selector"] = {"matchLabels": dict(scope.labels)}
        spec["action"] = part.action
        if written:  # no rules: ALLOW matches nothing (trap 3: never ``rules: [{}]``)
            spec["rules"] = written
        return spec

    def network_losses(self, pol: Policy, rules: Governed) -> None:
        """What the mesh cannot enforce for a network-layer policy, once per policy."""
        if not _restricts(rules):
            return
        self.loss(
            Effect.WIDENED,
            Feature.PROTOCOL,
            pol.source,
            f"{pol.id}: UDP/SCTP/ICMP bypass the proxy (Istio sees only TCP), so non-TCP traffic "
            "this policy denied is now allowed",
            Treatment.APPROXIMATED,
        )
        if self.inventory is None:
            self.loss(
                Effect.INVENTORY_DEPENDENT,
                Feature.LAYER,
                pol.source,
                f"{pol.id}: Istio enforces nothing on workloads outside the mesh; exact only "
                "while every selected pod has a proxy",
                Treatment.APPROXIMATED,
            )
            return
        outside = [ep for ep in self.pods if self.matcher.selects(pol.subject, ep) and not ep.mesh]
        if outside:
            self.loss(
                Effect.WIDENED,
                Feature.LAYER,
                pol.source,
                f"{pol.id}: {_few(outside)} are not in the mesh, so no proxy enforces this policy "
                "on them",
                Treatment.APPROXIMATED,
            )
        if pol.subject.include_hosts:
            self.loss(
                Effect.WIDENED,
                Feature.HOST_ENDPOINT,
                pol.source,
                f"{pol.id}: host endpoints have no proxy; the policy is not enforced on them",
            )

    def documents(self, pol: Policy) -> list[dict[str, Any]]:
        if pol.layer is Layer.CLOUD or pol.subject.security_group is not None:
            self.loss(
                Effect.WIDENED,
                Feature.LAYER,
                pol.source,
                f"policy {pol.id} applies to security groups, which Istio cannot select; dropped",
            )
            return []
        network = pol.layer is not Layer.L7
        if network and isinstance(pol.egress, Governed) and _restricts(pol.egress):
            self.loss(
                Effect.WIDENED,
                Feature.EGRESS,
                pol.source,
                f"egress of {pol.id} is not written: Istio authorization is inbound-only",
            )
        rules = pol.ingress
        if not isinstance(rules, Governed):
            return []
        if network:
            self.network_losses(pol, rules)
        out: list[tuple[str, str, dict[str, Any]]] = []
        for part in self.parts(pol, rules):
            selector = pol.subject.selector
            if part.local is not None:
                selector = and_(selector, part.local)
            for scope in self.scopes(pol, selector, part):
                spec = self.spec(pol, part, scope)
                if spec is not None:
                    out.append((part.action, scope.namespace, spec))
        return self.named_documents(pol, out)

    def named_documents(
        self, pol: Policy, items: list[tuple[str, str, dict[str, Any]]]
    ) -> list[dict[str, Any]]:
        """Deterministic names: the policy's own when it becomes one document per namespace,
        else suffixed with the action (when several) and a counter (when several of one)."""
        base = safe_name(pol.id.name)
        per_ns: dict[str, list[str]] = {}
        for action, ns, _ in items:
            per_ns.setdefault(ns, []).append(action)
        seen: dict[tuple[str, str], int] = {}
        docs = []
        for action, ns, spec in items:
            actions = per_ns[ns]
            name = base
            if len(set(actions)) > 1:
                name += f"-{action.lower()}"
            if actions.count(action) > 1:
                seen[(ns, action)] = seen.get((ns, action), 0) + 1
                name += f"-{seen[(ns, action)]}"
            meta: dict[str, Any] = {"name": name[:253], "namespace": ns}
            if pol.labels:
                meta["labels"] = dict(pol.labels)
            docs.append({"apiVersion": API_VERSION, "kind": KIND, "metadata": meta, "spec": spec})
        return docs


def _set_losses(ps: PolicySet, writer: _Writer) -> None:
    """Tiers and layers Istio's single DENY-then-ALLOW stage cannot keep apart."""
    for a, b in overlapping_tiers(ps)[:1]:
        writer.loss(
            Effect.WIDENED,
            Feature.TIER,
            a.source,
            f"policies of tiers {a.tier} ({a.id}) and {b.tier} ({b.id}) may govern the same "
            "workloads; Istio has no tiers, so the end-of-tier drop between them is lost",
            Treatment.APPROXIMATED,
        )
    for name in sorted({p.tier for p in ps}):
        if ps.tier(name).default_action is Action.PASS:
            writer.loss(
                Effect.NARROWED,
                Feature.TIER,
                None,
                f"tier {name} passes unmatched traffic on; Istio's isolation drops it",
                Treatment.APPROXIMATED,
            )
    governing = [p for p in ps if isinstance(p.ingress, Governed)]
    mesh = [p for p in governing if p.layer is Layer.L7]
    other = [p for p in governing if p.layer is Layer.NETWORK]
    if mesh and other:
        writer.loss(
            Effect.WIDENED,
            Feature.LAYER,
            other[0].source,
            f"network-layer policies ({other[0].id}) AND with mesh policies ({mesh[0].id}); "
            "written together into the mesh their ALLOW policies union instead",
            Treatment.APPROXIMATED,
        )


def render(policies: PolicySet, options: RenderOptions) -> Translation[list[dict[str, Any]]]:
    """AuthorizationPolicies for a policy set, with every loss; names unique per namespace."""
    writer = _Writer(policies, options)
    _set_losses(policies, writer)
    made_by = [(doc, (pol,)) for pol in policies for doc in writer.documents(pol)]
    docs = [doc for doc, _ in made_by]
    seen: dict[tuple[str, str], int] = {}
    for doc in docs:
        key = (doc["metadata"]["namespace"], doc["metadata"]["name"])
        seen[key] = seen.get(key, 0) + 1
        if seen[key] > 1:
            doc["metadata"]["name"] = f"{key[1][:245]}-{seen[key]}"
    losses = tuple(dict.fromkeys(writer.losses))
    return Translation(docs, FidelityReport("canonical", FORMAT, losses), origins_of(docs, made_by))
