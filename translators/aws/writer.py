"""Rendering the canonical model as security groups plus the SecurityGroupPolicies binding them.

Output ("desired state"): one ``{"SecurityGroups": [...]}`` document in the describe shape, then
the SGP manifests (or, with ``RenderOptions.extra["aws_output"] == "cloudformation"``, one
CloudFormation template instead of the describe document). A group the translation creates has
no ``GroupId``: it is identified by ``GroupName``, referenced as ``{"GroupName": …}``, and SGPs
list its name in ``groupIds`` (names never start with ``sg-``); the apply step substitutes ids.

Mapping (reference/aws.md §5), exact unless a loss says otherwise:

* one group per policy and namespace, bound to the subject by SGPs (one per label-selector
  term); the group's ingress/egress rules are the policy's allow rules, a direction the policy
  does not govern gets no rules;
* pods bound to any group are always isolated by AWS, so per namespace a baseline group with
  allow-all ingress (resp. egress) is bound to the bound pods no policy isolates in that
  direction: the union then equals Kubernetes' "not isolated";
* a selector peer becomes an *identity group* (no rules) bound to the peer pods by SGPs, which
  rules reference by name;
* CIDR peers with ``except`` are split into the exact CIDR cover; a group whose rules exceed
  the quota (60 per direction per family; a group reference counts in both families) is split
  into parts bound together, which unions back to the same allow set.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from polyfence.fidelity import Effect, Feature, Loss, Treatment
from polyfence.inventory import Endpoint, Inventory
from polyfence.model.peers import ANY_PEER, Peer
from polyfence.model.policy import (
    Action,
    Direction,
    Governed,
    Layer,
    Policy,
    PolicySet,
    Rule,
    Subject,
)
from polyfence.model.ports import ANY_PORTS, PortSpec
from polyfence.model.provenance import SourceRef
from polyfence.model.selectors import (
    All,
    Not,
    Selector,
    SelectorNotExpressible,
    and_,
    from_label_selector,
    or_,
    to_label_selectors,
)
from polyfence.rules.flatten import removable_denies
from polyfence.rules.terms import bind_pod, safe_name
from polyfence.semantics.intervals import ALL_PORTS, IntervalSet, IPSet
from polyfence.semantics.matching import Matcher, Remote
from polyfence.semantics.profile import DEFAULT_PROFILE
from polyfence.translation import RenderOptions, origins_of
from polyfence.translators.aws._cfn_writer import template
from polyfence.translators.aws.rules import (
    GROUPS_PER_INTERFACE,
    MANAGED_TAG,
    PROTOCOL_NAMES,
    RULES_PER_GROUP,
    SGP_API_VERSION,
    SGP_KIND,
    icmp_pairs,
    permissions,
)
from polyfence.translators.aws.rules import text as _text

PortKey = tuple[str, int | None, int | None]  # IpProtocol, FromPort, ToPort
Source = tuple[str, str]  # ("v4" | "v6" | "id" | "name", value)
_ALL_SOURCES: tuple[Source, ...] = (("v4", "0.0.0.0/0"), ("v6", "::/0"))
_PORT_SPAN = IntervalSet.span(0, 65535)


@dataclass(slots=True)
class _Group:
    name: str  # GroupName (created) or GroupId (existing)
    description: str
    existing: bool = False
    ingress: dict[tuple[PortKey, Source], None] = field(default_factory=dict)
    egress: dict[tuple[PortKey, Source], None] = field(default_factory=dict)
    parts: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Binding:
    namespace: str
    pods: dict[str, Any]
    service_accounts: dict[str, Any] | None
    group: str


def _short(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def _group_name(*parts: str) -> str:
    name = "pf-" + "-".join(safe_name(p) for p in parts if p)
    return name if len(name) <= 200 else name[:190] + "-" + _short(name)


class _Writer:
    def __init__(self, policies: PolicySet, options: RenderOptions) -> None:
        self.options = options
        self.inventory = options.inventory
        self.matcher = Matcher(options.inventory or Inventory(), DEFAULT_PROFILE)
        self.losses: list[Loss] = []
        self.groups: dict[str, _Group] = {}
        self.bindings: list[_Binding] = []
        self.made_by: dict[str, list[Policy]] = {}  # group name -> the policies it came from
        self.removable = {d: removable_denies(policies, d) for d in Direction}
        self.limit = int(options.extra.get("aws_rules_per_group", RULES_PER_GROUP))
        # per namespace: pod selectors of everything bound, and of what isolates each direction
        self.bound: dict[str, list[Selector]] = defaultdict(list)
        self.isolated: dict[tuple[str, Direction], list[Selector]] = defaultdict(list)

    def loss(
        self,
        effect: Effect,
        treatment: Treatment,
        feature: Feature,
        ref: SourceRef | None,
        msg: str,
    ) -> None:
        self.losses.append(Loss(effect, treatment, feature, ref, msg))

    # binding ------------------------------------------------------------------------------
    def bind(
        self, ns: str, pods: Selector, sas: Selector | None, group: str, ref: SourceRef | None
    ) -> bool:
        """SGPs binding ``group`` to the pods of ``ns`` matching both selectors."""
        try:
            pod_terms = to_label_selectors(pods)
            sa_terms: tuple[dict[str, Any] | None, ...] = (
                (None,) if sas is None else to_label_selectors(sas)
            )
        except (SelectorNotExpressible, ValueError) as exc:
            self.loss(
                Effect.NARROWED,
                Treatment.DROPPED,
                Feature.SELECTOR_EXPRESSION,
                ref,
                f"{exc}: group {group} left unbound",
            )
            return False
        for pod in pod_terms:
            for sa in sa_terms:
                self.bindings.append(_Binding(ns, pod, sa, group))
        if sas is not None and pod_terms and sa_terms:
            self.loss(
                Effect.NONE,
                Treatment.APPROXIMATED,
                Feature.SERVICE_ACCOUNT,
                ref,
                "pods bound through a service-account selector are not covered by the baseline groups",
            )
        self.bound[ns].append(pods)
        return True

    def namespaces(self, subject: Subject, ref: SourceRef | None, what: str) -> list[str]:
        if subject.namespace is not None:
            return [subject.namespace]
        if self.inventory is None:
            self.loss(
                Effect.NARROWED,
                Treatment.DROPPED,
                Feature.CLUSTER_SCOPE,
                ref,
                f"{what} needs an inventory to expand per namespace; dropped",
            )
            return []
        sel = subject.namespace_selector
        names = [
            ns.name for ns in self.inventory.namespaces if sel is None or sel.matches(ns.labels)
        ]
        self.loss(
            Effect.INVENTORY_DEPENDENT,
            Treatment.EXPANDED,
            Feature.CLUSTER_SCOPE,
            ref,
            f"{what} expanded to namespaces {', '.join(names) or '(none)'}; new namespaces are not covered",
        )
        return names

    def identity(self, peer: Peer, ref: SourceRef | None) -> list[Source]:
        """Sources for a selector peer: identity groups bound to its pods, one per namespace."""
        if peer.service_account is not None and peer.service_account.names is not None:
            self.loss(
                Effect.NARROWED,
                Treatment.DROPPED,
                Feature.SERVICE_ACCOUNT,
                ref,
                "service-account names cannot bind a group; peer dropped",
            )
            return []
        sas = peer.service_account.selector if peer.service_account is not None else None
        if peer.namespace_names is not None:
            names = sorted(peer.namespace_names)
        else:
            names = self.namespaces(
                Subject(None, namespace_selector=peer.namespace_selector),
                ref,
                "a namespace-selector peer",
            )
        out: list[Source] = []
        for ns in names:
            pods = bind_pod(peer.pods or All(), ns)
            name = _group_name("id", ns, _short(repr((pods, sas))))
            if name not in self.groups:
                self.groups[name] = _Group(name, f"polyfence identity: pods {pods} in {ns}")
                if not self.bind(ns, pods, sas, name, ref):
                    del self.groups[name]
                    continue
            out.append(("name", name))
        return out

    # peers and ports ----------------------------------------------------------------------
    def sources(self, peer: Peer, ref: SourceRef | None) -> list[Source]:
        unsupported = [
            (peer.not_pods, Feature.NOT_SELECTOR),
            (peer.entity, Feature.ENTITY),
            (peer.fqdn, Feature.FQDN),
            (peer.principal, Feature.PRINCIPAL),
        ]
        for value, feature in unsupported:
            if value is not None:
                self.loss(
                    Effect.NARROWED,
                    Treatment.DROPPED,
                    feature,
                    ref,
                    f"security groups have no {feature.value} source; peer dropped",
                )
                return []
        if peer.sets:
            self.loss(
                Effect.NARROWED,
                Treatment.DROPPED,
                Feature.SELECTOR_EXPRESSION,
                ref,
                "network-set selection dropped",
            )
        if peer.security_group is not None:
            if peer.wants_pod or peer.ip is not None:
                self.loss(
                    Effect.NARROWED,
                    Treatment.DROPPED,
                    Feature.SECURITY_GROUP,
                    ref,
                    "a group reference with more constraints; dropped",
                )
                return []
            key = peer.security_group
            return [("id" if key.startswith("sg-") else "name", key)]
        if peer.ip is not None:
            if peer.wants_pod:
                self.loss(
                    Effect.NARROWED,
                    Treatment.DROPPED,
                    Feature.IPBLOCK,
                    ref,
                    "a peer that is both pods and a CIDR; dropped",
                )
                return []
            ips = peer.ip.ipset()
            if ips == IPSet.all():
                return list(_ALL_SOURCES)
            return [("v6" if ":" in c else "v4", c) for c in ips.to_cidrs()]
        if not peer.wants_pod:
            return list(_ALL_SOURCES)
        return self.identity(peer, ref)

    def destinations(self, pol: Policy, direction: Direction, peer: Peer | None) -> list[Endpoint]:
        assert self.inventory is not None
        pods = [ep for ep in self.inventory.endpoints if self.matcher.acts_as_pod(ep)]
        if direction is Direction.INGRESS:
            return [ep for ep in pods if self.matcher.selects(pol.subject, ep)]
        if peer is None:
            return pods
        return [ep for ep in pods if self.matcher.peer_matches(peer, Remote(ep))]

    def port_keys(
        self, pol: Policy, rule: Rule, direction: Direction, peer: Peer | None
    ) -> list[PortKey]:
        ref = rule.source
        if rule.ports is ANY_PORTS:
            return [("-1", None, None)]
        out: list[PortKey] = []
        for spec in rule.ports:  # type: ignore[union-attr]
            if spec.not_named:
                self.loss(
                    Effect.NARROWED,
                    Treatment.DROPPED,
                    Feature.NOT_PORTS,
                    ref,
                    "named notPorts cannot be expressed; dropped",
                )
                continue
            if spec.protocols.size() == 256 and spec.ports >= ALL_PORTS and not spec.named:
                out.append(("-1", None, None))
                continue
            for lo, hi in spec.protocols:
                for proto in range(lo, hi + 1):
                    out.extend(self.protocol_keys(proto, spec, pol, direction, peer, ref))
        return list(dict.fromkeys(out))

    def protocol_keys(
        self,
        proto: int,
        spec: PortSpec,
        pol: Policy,
        direction: Direction,
        peer: Peer | None,
        ref: SourceRef | None,
    ) -> list[PortKey]:
        name = PROTOCOL_NAMES.get(proto, str(proto))
        if proto in (1, 58):
            return [(name, t, c) for t, c in icmp_pairs(spec.ports)]
        ports = spec.ports
        if spec.named and proto in (6, 17, 132):
            ports = ports | self.named(proto, spec.named, pol, direction, peer, ref)
        if proto in (6, 17):
            if _PORT_SPAN - IntervalSet.point(0) <= ports:
                return [(name, 0, 65535)]
            return [(name, a, b) for a, b in ports & _PORT_SPAN]
        if ports and not ports >= ALL_PORTS and proto == 132:
            self.loss(
                Effect.WIDENED,
                Treatment.APPROXIMATED,
                Feature.PROTOCOL,
                ref,
                "SCTP ports cannot be filtered by a security group; all SCTP ports allowed",
            )
        return [(name, None, None)] if ports else []

    def named(
        self,
        proto: int,
        names: frozenset[str],
        pol: Policy,
        direction: Direction,
        peer: Peer | None,
        ref: SourceRef | None,
    ) -> IntervalSet:
        """Named ports resolved on the destination pods of the inventory."""
        if self.inventory is None:
            self.loss(
                Effect.NARROWED,
                Treatment.DROPPED,
                Feature.NAMED_PORT,
                ref,
                f"named ports {sorted(names)} need an inventory to resolve; dropped",
            )
            return IntervalSet.empty()
        out = IntervalSet.empty()
        for port_name in sorted(names):
            found = [
                ep.resolve_port(port_name, proto) for ep in self.destinations(pol, direction, peer)
            ]
            numbers = {n for n in found if n is not None}
            out = out | IntervalSet.union_all(IntervalSet.point(n) for n in numbers)
            uneven = len(numbers) > 1 or (numbers and None in found)
            self.loss(
                Effect.WIDENED if uneven else Effect.INVENTORY_DEPENDENT,
                Treatment.EXPANDED,
                Feature.NAMED_PORT,
                ref,
                f"named port {port_name!r} resolved to {sorted(numbers) or 'nothing'} on the inventory's destination pods"
                + ("; each number is allowed to every destination" if uneven else ""),
            )
        return out

    # rules --------------------------------------------------------------------------------
    def rule_entries(
        self, pol: Policy, rule: Rule, direction: Direction
    ) -> list[tuple[PortKey, Source]]:
        ref = rule.source
        if rule.l7 is not None:
            self.loss(
                Effect.WIDENED,
                Treatment.APPROXIMATED,
                Feature.L7_HTTP,
                ref,
                "L7 constraints dropped: the rule allows the whole L4 connection",
            )
        if rule.local is not None:
            self.loss(
                Effect.NARROWED,
                Treatment.DROPPED,
                Feature.SELECTOR_EXPRESSION,
                ref,
                "a rule bound to part of the subject; dropped",
            )
            return []
        per_peer = self.inventory is not None and direction is Direction.EGRESS
        out: list[tuple[PortKey, Source]] = []
        if rule.peers is ANY_PEER:
            keys = self.port_keys(pol, rule, direction, None)
            return [(k, s) for k in keys for s in _ALL_SOURCES]
        for peer in rule.peers:  # type: ignore[union-attr]
            sources = self.sources(peer, ref)
            if sources:
                keys = self.port_keys(pol, rule, direction, peer if per_peer else None)
                out.extend((k, s) for k in keys for s in sources)
        return out

    def direction(self, pol: Policy, direction: Direction, ns: str, group: _Group) -> None:
        rules = pol.direction(direction)
        if not isinstance(rules, Governed):
            return
        if rules.isolates:
            self.isolated[(ns, direction)].append(bind_pod(pol.subject.selector, ns))
        into = group.ingress if direction is Direction.INGRESS else group.egress
        for rule in rules.rules:
            if rule.action is Action.LOG:
                continue
            if rule.action is Action.DENY:
                if id(rule) not in self.removable[direction]:
                    self.loss(
                        Effect.WIDENED,
                        Treatment.DROPPED,
                        Feature.DENY_ACTION,
                        rule.source,
                        "security groups have no deny; rule dropped",
                    )
                continue
            if rule.action is Action.PASS:
                self.loss(
                    Effect.NARROWED,
                    Treatment.DROPPED,
                    Feature.PASS_ACTION,
                    rule.source,
                    "security groups have no pass; rule dropped",
                )
                continue
            into.update(dict.fromkeys(self.rule_entries(pol, rule, direction)))

    def policy(self, pol: Policy) -> None:
        if pol.layer is Layer.L7:
            self.loss(
                Effect.WIDENED,
                Treatment.DROPPED,
                Feature.LAYER,
                pol.source,
                f"L7 policy {pol.id} has no security-group form; dropped",
            )
            return
        if pol.subject.security_group is not None:
            key = pol.subject.security_group
            group = self.groups.setdefault(
                key, _Group(key, f"polyfence: {pol.id}", existing=key.startswith("sg-"))
            )
            self.made_by.setdefault(key, []).append(pol)
            for direction in Direction:
                self.direction(pol, direction, "", group)
            return
        for ns in self.namespaces(pol.subject, pol.source, f"cluster-wide policy {pol.id}"):
            name = _group_name(ns, pol.id.name)
            group = self.groups.setdefault(name, _Group(name, f"polyfence: {pol.id}"))
            self.made_by.setdefault(name, []).append(pol)
            if not self.bind(
                ns,
                bind_pod(pol.subject.selector, ns),
                pol.subject.service_accounts,
                name,
                pol.source,
            ):
                continue
            for direction in Direction:
                self.direction(pol, direction, ns, group)

    def baselines(self) -> None:
        """Allow-all groups for bound pods that no policy isolates in a direction."""
        for ns, bound in list(self.bound.items()):
            for direction in Direction:
                open_pods = and_(or_(*bound), Not(or_(*self.isolated[(ns, direction)])))
                try:
                    if not to_label_selectors(open_pods):
                        continue
                except (SelectorNotExpressible, ValueError):
                    pass
                name = _group_name("open", direction.value, ns)
                group = _Group(name, f"polyfence baseline: {direction.value} not isolated in {ns}")
                entries: dict[tuple[PortKey, Source], None] = {
                    (("-1", None, None), s): None for s in _ALL_SOURCES
                }
                (group.ingress if direction is Direction.INGRESS else group.egress).update(entries)
                self.groups[name] = group
                self.bind(ns, open_pods, None, name, None)

    # quota and output -----------------------------------------------------------------------
    def split(self, group: _Group) -> list[_Group]:
        """Parts of at most ``limit`` rules per direction and family (references count twice)."""
        parts: list[_Group] = []
        for attr in ("ingress", "egress"):
            counts: list[dict[str, int]] = []
            for entry in getattr(group, attr):
                families = ("v4", "v6") if entry[1][0] in ("id", "name") else (entry[1][0],)
                fits = [j for j, c in enumerate(counts) if all(c[f] < self.limit for f in families)]
                i = fits[0] if fits else len(counts)
                if not fits:
                    counts.append({"v4": 0, "v6": 0})
                    if i >= len(parts):
                        if i == 0:
                            parts.append(_Group(group.name, group.description, group.existing))
                        else:  # an existing group's overflow goes to groups created beside it
                            base = _group_name(group.name) if group.existing else group.name
                            parts.append(_Group(f"{base}-part{i + 1}", group.description))
                for f in families:
                    counts[i][f] += 1
                getattr(parts[i], attr)[entry] = None
        if not parts:
            parts.append(_Group(group.name, group.description, group.existing))
        if len(parts) > 1:
            self.loss(
                Effect.NONE,
                Treatment.APPROXIMATED,
                Feature.SECURITY_GROUP,
                None,
                f"group {group.name} exceeds {self.limit} rules per direction and family; split into {len(parts)} groups bound together",
            )
        return parts

    def check_interfaces(self, parts: dict[str, list[str]]) -> None:
        if self.inventory is None:
            return
        cap = int(self.options.extra.get("aws_groups_per_interface", GROUPS_PER_INTERFACE))
        for ep in self.inventory.endpoints:
            if not self.matcher.acts_as_pod(ep):
                continue
            groups: set[str] = set()
            for b in self.bindings:
                if b.namespace != ep.namespace or not from_label_selector(b.pods).matches(
                    self.matcher.endpoint_labels(ep)
                ):
                    continue
                if b.service_accounts is not None and not from_label_selector(
                    b.service_accounts
                ).matches(self.matcher.sa_labels(ep)):
                    continue
                groups.update(parts.get(b.group, [b.group]))
            if len(groups) > cap:
                self.loss(
                    Effect.NARROWED,
                    Treatment.APPROXIMATED,
                    Feature.SECURITY_GROUP,
                    None,
                    f"pod {ep.ref} would carry {len(groups)} security groups, more than {cap} per interface: it cannot start",
                )


def write(
    policies: PolicySet, options: RenderOptions
) -> tuple[list[dict[str, Any]], list[Loss], tuple[tuple[SourceRef, ...], ...]]:
    """The desired state (groups, then SGPs) for a policy set, with every loss and each
    document's sources (an SGP's are the policies of the groups it binds)."""
    writer = _Writer(policies, options)
    if {Layer.NETWORK, Layer.CLOUD} <= policies.layers():
        writer.loss(
            Effect.WIDENED,
            Treatment.APPROXIMATED,
            Feature.LAYER,
            None,
            "network-layer and cloud-layer policies AND together in the source; as groups they union",
        )
    for pol in policies:
        writer.policy(pol)
    writer.baselines()
    vpc = options.extra.get("aws_vpc_id")
    groups: list[dict[str, Any]] = []
    parts: dict[str, list[str]] = {}
    for group in writer.groups.values():
        split = writer.split(group)
        parts[group.name] = [p.name for p in split]
        for part in split:
            key = "GroupId" if part.existing else "GroupName"
            item: dict[str, Any] = {key: part.name, "Description": _text(part.description)}
            if vpc:
                item["VpcId"] = vpc
            item["IpPermissions"] = permissions(part.ingress)
            item["IpPermissionsEgress"] = permissions(part.egress)
            item["Tags"] = [{"Key": MANAGED_TAG[0], "Value": MANAGED_TAG[1]}]
            groups.append(item)
    writer.check_interfaces(parts)
    sgps: dict[tuple[str, str, str], dict[str, Any]] = {}
    made_by: list[tuple[Any, tuple[Policy, ...]]] = []
    for b in writer.bindings:
        sgp_key = (b.namespace, repr(sorted(b.pods.items())), repr(b.service_accounts))
        doc = sgps.get(sgp_key)
        if doc is None:
            spec: dict[str, Any] = {"podSelector": b.pods}
            if b.service_accounts is not None:
                spec["serviceAccountSelector"] = b.service_accounts
            spec["securityGroups"] = {"groupIds": []}
            name = safe_name(f"pf-{_short(repr(sgp_key))}")
            doc = {
                "apiVersion": SGP_API_VERSION,
                "kind": SGP_KIND,
                "metadata": {
                    "name": name,
                    "namespace": b.namespace,
                    "labels": {MANAGED_TAG[0]: MANAGED_TAG[1]},
                },
                "spec": spec,
            }
            sgps[sgp_key] = doc
        ids = doc["spec"]["securityGroups"]["groupIds"]
        ids.extend(p for p in parts.get(b.group, [b.group]) if p not in ids)
        made_by.append((doc, tuple(writer.made_by.get(b.group, ()))))
    docs: list[dict[str, Any]] = [{"SecurityGroups": groups}]
    if options.extra.get("aws_output") == "cloudformation":
        docs = [template(groups)]
    made_by.append((docs[0], tuple(p for ps in writer.made_by.values() for p in ps)))
    out = docs + list(sgps.values())
    return out, writer.losses, origins_of(out, made_by)
