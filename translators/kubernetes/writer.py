"""Rendering the canonical model as networking.k8s.io/v1 NetworkPolicies (table: ``kubernetes``).

A NetworkPolicy is an isolating allow-list: deny, pass, log, order and tiers are dropped —
exactly where ``_flatten`` proves nothing changes, as reported losses otherwise — and what
selectors say through the IR's reserved keys is moved where Kubernetes can say it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from polyfence.fidelity import Effect, Feature, Loss, Treatment
from polyfence.inventory import NAMESPACE_NAME_LABEL, Inventory
from polyfence.model.labels import PSEUDO_KEYS
from polyfence.model.peers import ANY_PEER, Entity, IpMatch, Peer
from polyfence.model.policy import (
    Action,
    Direction,
    Governed,
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
    In,
    Selector,
    SelectorNotExpressible,
    and_,
    to_label_selectors,
)
from polyfence.rules.flatten import overlapping_tiers, removable_denies
from polyfence.rules.terms import bind_pod, cidr_blocks, local_pods, pod_terms, safe_name
from polyfence.semantics.intervals import IntervalSet
from polyfence.semantics.matching import Matcher, Remote
from polyfence.semantics.profile import DEFAULT_PROFILE
from polyfence.translation import RenderOptions, origins_of

API_VERSION = "networking.k8s.io/v1"
KIND = "NetworkPolicy"
FORMAT = "kubernetes"
K8S_PROTOCOLS = {"TCP": Protocol.TCP, "UDP": Protocol.UDP, "SCTP": Protocol.SCTP}
_K8S_PROTO_NUMBERS = {int(v): k for k, v in K8S_PROTOCOLS.items()}
_PORT_UNIVERSE = IntervalSet.span(1, 65535)


def _ns_name_selector(names: frozenset[str]) -> Selector:
    if len(names) == 1:
        return Eq(NAMESPACE_NAME_LABEL, next(iter(names)))
    return In(NAMESPACE_NAME_LABEL, frozenset(names))


class _Writer:
    def __init__(self, options: RenderOptions, policies: PolicySet) -> None:
        self.options = options
        self.losses: list[Loss] = []
        self.network_sets = policies.network_sets
        self.removable = {d: removable_denies(policies, d) for d in Direction}
        self.matcher = Matcher(options.inventory or Inventory(), DEFAULT_PROFILE, self.network_sets)
        # A lone cloud layer (security groups) is an allow-only union like NetworkPolicy: it
        # translates as is. Beside a network layer it ANDs with it, which one union cannot say.
        self.cloud_only = policies.layers() == {Layer.CLOUD}
        # Likewise a lone proxy layer (Istio): its ALLOW policies isolate like NetworkPolicies.
        self.proxy_only = policies.layers() == {Layer.L7}

    def loss(
        self,
        effect: Effect,
        treatment: Treatment,
        feature: Feature,
        ref: SourceRef | None,
        msg: str,
    ) -> None:
        self.losses.append(Loss(effect, treatment, feature, ref, msg))

    def ip_peers(self, ip: IpMatch, ref: SourceRef | None) -> list[dict[str, Any]]:
        out = []
        for net, excepts in cidr_blocks(ip):
            block: dict[str, Any] = {"cidr": net}
            if excepts:
                block["except"] = excepts
            out.append({"ipBlock": block})
        return out

    def peer(
        self, peer: Peer, policy_ns: str, ref: SourceRef | None
    ) -> list[dict[str, Any]] | None:
        """k8s peers OR-ing to this IR peer; None when it cannot be expressed."""
        if peer == Peer(entity=Entity.WORLD):
            self.loss(
                Effect.WIDENED,
                Treatment.APPROXIMATED,
                Feature.ENTITY,
                ref,
                "world became ipBlocks 0.0.0.0/0 and ::/0: exact where ipBlocks never match pod "
                "or node addresses (Cilium), wider where they do (Calico and most CNIs)",
            )
            return [{"ipBlock": {"cidr": "0.0.0.0/0"}}, {"ipBlock": {"cidr": "::/0"}}]
        if peer.fqdn is not None and peer == Peer(fqdn=peer.fqdn) and self.options.inventory:
            addresses = self.matcher.resolve(peer.fqdn)
            self.loss(
                Effect.INVENTORY_DEPENDENT,
                Treatment.EXPANDED,
                Feature.FQDN,
                ref,
                f"DNS names resolved through the inventory's answers to {addresses or 'nothing'}; "
                "new answers are not covered",
            )
            return [{"ipBlock": {"cidr": cidr}} for cidr in addresses.to_cidrs()]
        if (
            peer.principal is not None
            and self.proxy_only
            and peer == Peer(principal=peer.principal)
        ):
            return self.identity_peers(peer, ref)
        unsupported = [
            (peer.not_pods, Feature.NOT_SELECTOR),
            (peer.service_account, Feature.SERVICE_ACCOUNT),
            (peer.entity, Feature.ENTITY),
            (peer.fqdn, Feature.FQDN),
            (peer.security_group, Feature.SECURITY_GROUP),
            (peer.principal, Feature.PRINCIPAL),
        ]
        for value, feature in unsupported:
            if value is not None:
                self.loss(
                    Effect.NARROWED,
                    Treatment.DROPPED,
                    feature,
                    ref,
                    f"Kubernetes has no {feature.value} peer; the peer was dropped",
                )
                return None
        if peer.ip is not None:
            if peer.wants_pod:
                self.loss(
                    Effect.NARROWED,
                    Treatment.DROPPED,
                    Feature.IPBLOCK,
                    ref,
                    "a peer that is both a pod selector and a CIDR cannot be expressed; dropped",
                )
                return None
            return self.ip_peers(peer.ip, ref)
        try:
            out = self.pod_peers(peer, policy_ns, ref)
        except (SelectorNotExpressible, ValueError) as exc:
            self.loss(
                Effect.NARROWED,
                Treatment.DROPPED,
                Feature.SELECTOR_EXPRESSION,
                ref,
                f"{exc}; the peer was dropped",
            )
            return None
        if peer.sets:
            out.extend(self.network_set_peers(peer))
        return out

    def identity_peers(self, peer: Peer, ref: SourceRef | None) -> list[dict[str, Any]] | None:
        """Mesh identities as the pods that hold them in the inventory (Istio → Kubernetes).

        Only positive identity tests can be enumerated: a ``not…`` test also matches every
        plain-text client, addresses outside the cluster included, which no selector can say.
        """
        match = peer.principal
        assert match is not None
        inv = self.options.inventory
        if match.not_principals or match.not_namespaces or inv is None:
            why = (
                "negated identities also match plain-text clients"
                if inv is not None
                else "identities resolve to pods only through an inventory"
            )
            self.loss(
                Effect.NARROWED, Treatment.DROPPED, Feature.PRINCIPAL, ref, f"{why}; peer dropped"
            )
            return None
        pods = [ep for ep in inv.pods if self.matcher.acts_as_pod(ep)]
        holders = [ep for ep in pods if ep.mesh and self.matcher.peer_matches(peer, Remote(ep))]
        out: list[dict[str, Any]] = []
        if match.principals is None and match.namespaces is not None:
            names = sorted({ep.namespace or "" for ep in pods if ep.namespace in match.namespaces})
            selected = [ep for ep in pods if ep.namespace in match.namespaces]
            out = [{"namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: n}}} for n in names]
        else:
            seen: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
            for ep in holders:
                key = (ep.namespace or "", tuple(sorted(ep.labels.items())))
                if key in seen:
                    continue
                seen.add(key)
                out.append(
                    {
                        "namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: key[0]}},
                        "podSelector": {"matchLabels": dict(key[1])},
                    }
                )
            selected = [
                ep
                for ep in pods
                if any(
                    ep.namespace == ns and all(ep.labels.get(k) == v for k, v in labels)
                    for ns, labels in seen
                )
            ]
        held = {id(ep) for ep in holders}
        extra = [ep.ref for ep in selected if id(ep) not in held]
        self.loss(
            Effect.WIDENED if extra else Effect.INVENTORY_DEPENDENT,
            Treatment.EXPANDED,
            Feature.PRINCIPAL,
            ref,
            "mesh identities resolved to the pods holding them in the inventory"
            + (
                f"; the selectors also admit {', '.join(extra[:5])}"
                + (" …" if len(extra) > 5 else "")
                + " (plain-text clients or other service accounts)"
                if extra
                else "; new pods with these identities are not covered"
            ),
        )
        return out

    def pod_peers(self, peer: Peer, policy_ns: str, ref: SourceRef | None) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for term in pod_terms(peer.pods or All()):
            if term.service_account:
                self.loss(
                    Effect.NARROWED,
                    Treatment.DROPPED,
                    Feature.SERVICE_ACCOUNT,
                    ref,
                    "a selector on the service-account name has no Kubernetes form; dropped",
                )
                continue
            same_ns_only = (
                peer.namespace_names == frozenset({policy_ns})
                and peer.namespace_selector is None
                and term.namespace is None
            )
            parts = [peer.namespace_selector, term.namespace]
            if peer.namespace_names is not None and not same_ns_only:
                parts.append(_ns_name_selector(peer.namespace_names))
            present = [x for x in parts if x is not None]
            ns_terms: tuple[dict[str, Any] | None, ...] = (
                to_label_selectors(and_(*present)) if present else (None,)
            )
            for pod in to_label_selectors(term.labels):
                for ns in ns_terms:
                    item: dict[str, Any] = {}
                    if same_ns_only:
                        item["podSelector"] = pod
                    else:
                        item["namespaceSelector"] = ns if ns is not None else {}
                        if pod != {}:
                            item["podSelector"] = pod
                    out.append(item)
        return out

    def network_set_peers(self, peer: Peer) -> list[dict[str, Any]]:
        """The network sets a peer selects, as ipBlocks (exact: the sets are part of the input)."""
        out: list[dict[str, Any]] = []
        for net_set in self.network_sets:
            if self.matcher.set_selected(peer, net_set):
                out.extend({"ipBlock": {"cidr": cidr}} for cidr in net_set.nets)
        return out

    def ports(self, rule: Rule, ref: SourceRef | None) -> list[dict[str, Any]] | None:
        if rule.ports is ANY_PORTS:
            return None
        out: list[dict[str, Any]] = []
        dropped = []
        for spec in rule.ports:  # type: ignore[union-attr]
            if spec.not_named:
                self.loss(
                    Effect.NARROWED,
                    Treatment.DROPPED,
                    Feature.NOT_PORTS,
                    ref,
                    "named notPorts cannot be expressed; the port spec was dropped",
                )
                continue
            protos = [p for p in (6, 17, 132) if p in spec.protocols]
            other = spec.protocols - IntervalSet.of((6, 6), (17, 17), (132, 132))
            if other:
                dropped.append(str(other))
            for proto in protos:
                name = _K8S_PROTO_NUMBERS[proto]
                numeric = spec.ports & _PORT_UNIVERSE
                if numeric == _PORT_UNIVERSE:
                    out.append({"protocol": name})
                else:
                    for lo, hi in numeric:
                        item: dict[str, Any] = {"protocol": name, "port": lo}
                        if hi != lo:
                            item["endPort"] = hi
                        out.append(item)
                for named in sorted(spec.named):
                    out.append({"protocol": name, "port": named})
        if dropped:
            self.loss(
                Effect.NARROWED,
                Treatment.DROPPED,
                Feature.PROTOCOL,
                ref,
                f"protocols {', '.join(dropped)} have no Kubernetes form; dropped from the rule",
            )
        return out

    def rule(self, rule: Rule, direction: Direction, policy_ns: str) -> dict[str, Any] | None:
        ref = rule.source
        if rule.l7 is not None:
            self.loss(
                Effect.WIDENED,
                Treatment.APPROXIMATED,
                Feature.L7_HTTP,
                ref,
                "L7 constraints dropped: the rule allows the whole L4 connection",
            )
        out: dict[str, Any] = {}
        key = "from" if direction is Direction.INGRESS else "to"
        if rule.peers is not ANY_PEER and not any(_unconstrained(p) for p in rule.peers):  # type: ignore[union-attr]
            peers: list[dict[str, Any]] = []
            for peer in rule.peers:  # type: ignore[union-attr]
                converted = self.peer(peer, policy_ns, ref)
                if converted:
                    peers.extend(converted)
            if not peers:
                return None  # every peer dropped: the rule matches nothing
            out[key] = peers
        ports = self.ports(rule, ref)
        if ports is not None:
            if not ports:
                return None
            out["ports"] = ports
        return out

    def direction(
        self,
        pol: Policy,
        direction: Direction,
        ns: str,
        local_rules: list[tuple[Rule, dict[str, Any]]],
    ) -> list[dict[str, Any]]:
        """The rules of one direction; rules bound to part of the subject go to ``local_rules``."""
        rules = pol.direction(direction)
        assert isinstance(rules, Governed)
        if not rules.isolates:
            self.loss(
                Effect.NARROWED,
                Treatment.APPROXIMATED,
                Feature.ALLOW_WITHOUT_ISOLATION,
                pol.source,
                f"{direction.value} of {pol.id} allows without isolating; a NetworkPolicy always isolates",
            )
        out = []
        for rule in rules.rules:
            if rule.action is Action.LOG:
                self.loss(
                    Effect.NONE,
                    Treatment.DROPPED,
                    Feature.LOG_ACTION,
                    rule.source,
                    "log rule dropped",
                )
                continue
            if rule.action is Action.DENY:
                if id(rule) in self.removable[direction]:
                    self.loss(
                        Effect.NONE,
                        Treatment.DROPPED,
                        Feature.DENY_ACTION,
                        rule.source,
                        "deny rule dropped: nothing after it in its tier could allow what it "
                        "denies, so the isolation drops that traffic anyway",
                    )
                else:
                    self.loss(
                        Effect.WIDENED,
                        Treatment.DROPPED,
                        Feature.DENY_ACTION,
                        rule.source,
                        "Kubernetes has no deny; the rule was dropped and a later allow may "
                        "now admit what it denied",
                    )
                continue
            if rule.action is Action.PASS:
                self.loss(
                    Effect.NARROWED,
                    Treatment.DROPPED,
                    Feature.PASS_ACTION,
                    rule.source,
                    "Kubernetes has no pass; the passed traffic is now dropped by isolation",
                )
                continue
            converted = self.rule(rule, direction, ns)
            if converted is None:
                continue
            if rule.local is None:
                out.append(converted)
            elif local_pods(rule.local, ns) is None:
                self.loss(
                    Effect.NARROWED,
                    Treatment.DROPPED,
                    Feature.SELECTOR_EXPRESSION,
                    rule.source,
                    "a rule constraining the subject's own side by more than pod labels has no "
                    "Kubernetes form; dropped",
                )
            else:
                local_rules.append((rule, converted))
        return out

    def subject_namespaces(self, pol: Policy) -> list[str] | None:
        if pol.subject.namespace is not None:
            return [pol.subject.namespace]
        inv = self.options.inventory
        if inv is None:
            self.loss(
                Effect.WIDENED,
                Treatment.DROPPED,
                Feature.CLUSTER_SCOPE,
                pol.source,
                f"cluster-wide policy {pol.id} needs an inventory to expand per namespace; dropped",
            )
            return None
        sel = pol.subject.namespace_selector
        names = [ns.name for ns in inv.namespaces if sel is None or sel.matches(ns.labels)]
        self.loss(
            Effect.INVENTORY_DEPENDENT,
            Treatment.EXPANDED,
            Feature.CLUSTER_SCOPE,
            pol.source,
            f"cluster-wide policy {pol.id} expanded to namespaces {', '.join(names) or '(none)'}; new namespaces are not covered",
        )
        return names

    def policy(self, pol: Policy) -> Iterator[dict[str, Any]]:
        if pol.layer is not Layer.NETWORK and not (
            (pol.layer is Layer.CLOUD and self.cloud_only)
            or (pol.layer is Layer.L7 and self.proxy_only)
        ):
            self.loss(
                Effect.WIDENED,
                Treatment.DROPPED,
                Feature.LAYER,
                pol.source,
                f"{pol.layer.value} layer policy {pol.id} has no Kubernetes form; dropped",
            )
            return
        if pol.subject.service_accounts is not None or pol.subject.security_group is not None:
            self.loss(
                Effect.WIDENED,
                Treatment.DROPPED,
                Feature.SERVICE_ACCOUNT,
                pol.source,
                f"policy {pol.id} selects by service account or security group; dropped",
            )
            return
        namespaces = self.subject_namespaces(pol)
        if namespaces is None:
            return
        for ns in namespaces:
            subject = bind_pod(pol.subject.selector, ns)
            subjects = self.label_selectors(pol, subject)
            if subjects is None:
                continue
            types = []
            spec_rules: dict[str, list[dict[str, Any]]] = {}
            local_rules: dict[str, list[tuple[Rule, dict[str, Any]]]] = {}
            for direction, key, kind in (
                (Direction.INGRESS, "ingress", "Ingress"),
                (Direction.EGRESS, "egress", "Egress"),
            ):
                rules = pol.direction(direction)
                if isinstance(rules, Governed) and _inert(rules):
                    self.inert(pol, rules)
                    continue
                if isinstance(rules, Governed):
                    types.append(kind)
                    local_rules[kind] = []
                    spec_rules[key] = self.direction(pol, direction, ns, local_rules[kind])
                    if pol.layer is Layer.L7:
                        spec_rules[key].extend(self.proxy_bypass(pol, ns))
            if not types:
                continue
            for i, podsel in enumerate(subjects):
                base = safe_name(pol.id.name)
                name = base if len(subjects) == 1 else f"{base}-{i + 1}"
                spec: dict[str, Any] = {"podSelector": podsel, "policyTypes": types}
                for key, value in spec_rules.items():
                    if value:
                        spec[key] = value
                yield _document(name, ns, spec)
            # Allow rules that hold for part of the subject only become policies of their own
            # on that part: exact, since allows union and the main policy already isolates it.
            for kind, items in local_rules.items():
                for j, (rule, converted) in enumerate(items):
                    local = local_pods(rule.local, ns)  # type: ignore[arg-type]
                    narrowed = self.label_selectors(
                        pol, and_(subject, local or All()), Effect.NARROWED
                    )
                    for k, podsel in enumerate(narrowed or ()):
                        spec = {
                            "podSelector": podsel,
                            "policyTypes": [kind],
                            kind.lower(): [converted],
                        }
                        name = f"{safe_name(pol.id.name)}-{kind.lower()}-{j + 1}-{k + 1}"
                        yield _document(name, ns, spec)

    def inert(self, pol: Policy, rules: Governed) -> None:
        """A direction that neither isolates nor allows (deny-only Istio or Cilium policies):
        a NetworkPolicy could only isolate, so the direction is left ungoverned."""
        for rule in rules.rules:
            if rule.action is Action.DENY:
                self.loss(
                    Effect.WIDENED,
                    Treatment.DROPPED,
                    Feature.DENY_ACTION,
                    rule.source,
                    f"Kubernetes has no deny; {pol.id} only denies, so it was dropped",
                )

    def proxy_bypass(self, pol: Policy, ns: str) -> list[dict[str, Any]]:
        """What the mesh never judges stays open: the proxy sees only TCP, so UDP and SCTP get
        an allow-all rule; other protocols (ICMP) fall to NetworkPolicy isolation (reported),
        and so do workloads outside the mesh."""
        self.loss(
            Effect.NARROWED,
            Treatment.APPROXIMATED,
            Feature.PROTOCOL,
            pol.source,
            f"{pol.id}: the mesh never sees ICMP and other non-TCP protocols; the NetworkPolicy "
            "isolation now drops them (UDP and SCTP stay open through an added rule)",
        )
        inv = self.options.inventory
        if inv is None:
            self.loss(
                Effect.INVENTORY_DEPENDENT,
                Treatment.APPROXIMATED,
                Feature.LAYER,
                pol.source,
                f"{pol.id}: Istio enforces only on workloads in the mesh; the NetworkPolicy "
                "isolates the selected pods whether or not they have a proxy",
            )
        else:
            outside = [
                ep.ref
                for ep in inv.pods
                if ep.namespace == ns and not ep.mesh and self.matcher.selects(pol.subject, ep)
            ]
            if outside:
                self.loss(
                    Effect.NARROWED,
                    Treatment.APPROXIMATED,
                    Feature.LAYER,
                    pol.source,
                    f"{pol.id}: {', '.join(outside[:5])} are outside the mesh, so Istio never "
                    "enforced on them; the NetworkPolicy isolates them",
                )
        return [{"ports": [{"protocol": "UDP"}, {"protocol": "SCTP"}]}]

    def label_selectors(
        self, pol: Policy, selector: Selector, effect: Effect = Effect.WIDENED
    ) -> tuple[dict[str, Any], ...] | None:
        """A subject selector as k8s podSelectors (several when it has an ``||``); dropping
        a subject widens (its pods are no longer isolated), dropping an allow's part narrows."""
        try:
            if selector.keys() & PSEUDO_KEYS:
                raise SelectorNotExpressible("a selector on the service-account name")
            return to_label_selectors(selector)
        except (SelectorNotExpressible, ValueError) as exc:
            self.loss(
                effect,
                Treatment.DROPPED,
                Feature.SELECTOR_EXPRESSION,
                pol.source,
                f"policy {pol.id}: {exc}; dropped",
            )
            return None


def _document(name: str, namespace: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def _inert(rules: Governed) -> bool:
    return not rules.isolates and not any(r.action is Action.ALLOW for r in rules.rules)


def _unconstrained(peer: Peer) -> bool:
    return peer == Peer()


def _tier_losses(ps: PolicySet, writer: _Writer) -> None:
    tiers = sorted({p.tier for p in ps})
    for a, b in overlapping_tiers(ps)[:1]:
        writer.loss(
            Effect.WIDENED,
            Treatment.APPROXIMATED,
            Feature.TIER,
            a.source,
            f"policies of tiers {a.tier} ({a.id}) and {b.tier} ({b.id}) may govern the same "
            "endpoints and were merged into one allow-union; the end-of-tier drop between them "
            "is lost",
        )
    for name in tiers:
        if ps.tier(name).default_action is Action.PASS:
            writer.loss(
                Effect.NARROWED,
                Treatment.APPROXIMATED,
                Feature.TIER,
                None,
                f"tier {name} passes unmatched traffic on; a NetworkPolicy drops it",
            )


def write(
    policies: PolicySet, options: RenderOptions
) -> tuple[list[dict[str, Any]], list[Loss], tuple[tuple[SourceRef, ...], ...]]:
    """NetworkPolicies for a policy set, with every loss and each document's sources; names
    made unique per namespace."""
    writer = _Writer(options, policies)
    _tier_losses(policies, writer)
    made_by = [(doc, (pol,)) for pol in policies for doc in writer.policy(pol)]
    docs = [doc for doc, _ in made_by]
    seen: dict[tuple[str, str], int] = {}
    for doc in docs:
        key = (doc["metadata"]["namespace"], doc["metadata"]["name"])
        seen[key] = seen.get(key, 0) + 1
        if seen[key] > 1:
            doc["metadata"]["name"] = f"{key[1]}-{seen[key]}"
    return docs, writer.losses, origins_of(docs, made_by)
