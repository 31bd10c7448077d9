"""Reading AWS EC2 security groups + EKS SecurityGroupPolicies into the canonical model.

Inputs: ``aws ec2 describe-security-groups`` output (a mapping with ``SecurityGroups``; also the
"desired state" this translator writes), CloudFormation templates (``AWS::EC2::SecurityGroup``,
``SecurityGroupIngress``, ``SecurityGroupEgress``) and ``SecurityGroupPolicy`` manifests
(``vpcresources.k8s.aws/v1beta1``), which bind groups to pods.

Semantics (reference/aws.md §2.3, §3): allow-only, stateful, the union of every group on an
interface; a group always isolates ingress (no inbound rules: nothing in) and egress (a new
group's allow-all egress is an explicit rule, so a group without egress rules lets nothing
out). Policies are ``Layer.CLOUD`` and AND with the NETWORK layer in the engine.

Identity: groups have no labels. A group's members are the pods that SecurityGroupPolicies
bind it to (SGPs of the pod's namespace; pod and service-account selectors AND; every matching
SGP's groups are unioned), read as one policy per (group, SGP) with the SGP's selectors as the
subject, and a reference to the group as one peer per binding. This assumes the group is
attached to pods only through SGPs (aws.md §5.3). A group no SGP binds keeps
``Subject.security_group`` / ``Peer.security_group``: the engine then matches the endpoints an
inventory lists with the group, reported as inventory-dependent. Pods no SGP selects use their
node's groups in EKS; they are not governed by the cloud layer here (the node's groups are
unknown to a policy file). SGP ``groupIds`` entries not starting with ``sg-`` (which no group
name may) are group *names*: the desired state written by this translator binds groups it
creates by name, and the apply step substitutes ids.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import jsonschema

from polyfence.errors import Diagnostic, InputError
from polyfence.fidelity import Effect, Feature, FidelityReport, Loss, Treatment
from polyfence.model.document import Document
from polyfence.model.labels import GROUP_NAME_LABEL, SECURITY_GROUP_LABEL
from polyfence.model.peers import ANY_PEER, IpMatch, Peer, PeerMatch, ServiceAccountMatch
from polyfence.model.policy import (
    DEFAULT_TIER,
    KUBERNETES_POLICY_ORDER,
    Action,
    Governed,
    Layer,
    Policy,
    PolicyId,
    PolicySet,
    Rule,
    Subject,
)
from polyfence.model.ports import ANY_PORTS, PortMatch, PortSpec, protocol_number
from polyfence.model.provenance import SourceRef
from polyfence.model.selectors import All, LabelSelectorError, Selector, from_label_selector
from polyfence.schemas import in_document_order, input_schema
from polyfence.semantics.intervals import IntervalSet, IPSet
from polyfence.translation import RenderOptions, Translation
from polyfence.translators.aws._cfn import template_groups
from polyfence.translators.aws.rules import (
    NAMED_PROTOCOLS,
    SGP_API_VERSION,
    SGP_KIND,
    RawGroup,
    icmp_ports,
)

FORMAT = "aws"
_DEFAULT_OPTIONS = RenderOptions()
_ALL_TRAFFIC = {
    "IpProtocol": "-1",
    "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
    "Ipv6Ranges": [{"CidrIpv6": "::/0"}],
}


@dataclass(frozen=True, slots=True)
class Binding:
    """One SecurityGroupPolicy's selection, for every group it lists."""

    namespace: str
    name: str
    pods: Selector | None
    service_accounts: Selector | None
    ref: SourceRef

    def peer(self) -> Peer:
        sa = ServiceAccountMatch(selector=self.service_accounts) if self.service_accounts else None
        return Peer(pods=self.pods, namespace_names=frozenset({self.namespace}), service_account=sa)


def is_template(data: Any) -> bool:
    resources = data.get("Resources") if isinstance(data, dict) else None
    return isinstance(resources, dict) and any(
        isinstance(r, dict) and str(r.get("Type", "")).startswith("AWS::EC2::SecurityGroup")
        for r in resources.values()
    )


def is_describe(data: Any) -> bool:
    return (
        isinstance(data, dict)
        and "kind" not in data
        and isinstance(data.get("SecurityGroups"), list)
    )


def is_prefix_lists(data: Any) -> bool:
    """``aws ec2 describe-prefix-lists`` (``Cidrs``) or managed lists with their ``Entries``."""
    return (
        isinstance(data, dict)
        and "kind" not in data
        and isinstance(data.get("PrefixLists"), list)
        and "SecurityGroups" not in data
    )


@functools.cache
def _sgp_validator() -> jsonschema.protocols.Validator:
    return jsonschema.Draft7Validator(input_schema("aws-securitygrouppolicy.json"))


def is_binding(doc: Document) -> bool:
    return doc.kind == SGP_KIND and doc.api_version == SGP_API_VERSION


MAPPING_API_VERSION = "polyfence.dev/v1alpha1"
MAPPING_KIND = "SecurityGroupBindings"


def is_mapping(doc: Document) -> bool:
    """polyfence's explicit mapping file: SecurityGroupPolicy selections without EKS, e.g. for
    a snapshot that lacks the SGP objects or groups attached by other means."""
    return doc.kind == MAPPING_KIND and doc.api_version == MAPPING_API_VERSION


_MAPPING_FIELDS = frozenset(
    {"groupIds", "namespace", "podSelector", "serviceAccountSelector", "name"}
)


class _Reader:
    def __init__(self) -> None:
        self.problems: list[Diagnostic] = []
        self.losses: list[Loss] = []
        self.groups: list[RawGroup] = []
        self.bindings: dict[str, list[Binding]] = {}
        self.by_name: dict[str, str] = {}
        self.prefix_lists: dict[str, tuple[str, ...]] = {}

    def error(self, ref: SourceRef, message: str) -> None:
        self.problems.append(Diagnostic(ref, message))

    def loss(self, effect: Effect, feature: Feature, ref: SourceRef | None, msg: str) -> None:
        treatment = (
            Treatment.EXPANDED if effect is Effect.INVENTORY_DEPENDENT else Treatment.DROPPED
        )
        self.losses.append(Loss(effect, treatment, feature, ref, msg))

    # documents ----------------------------------------------------------------------------
    def describe(self, doc: Document) -> None:
        for i, item in enumerate(doc.data["SecurityGroups"]):
            ref = doc.source.child("SecurityGroups", i)
            if not isinstance(item, dict):
                self.error(ref, "a security group must be a mapping")
                continue
            key = item.get("GroupId") or item.get("GroupName")
            if not isinstance(key, str) or not key:
                self.error(ref, "a security group needs GroupId or GroupName")
                continue
            group = RawGroup(key, str(item.get("GroupName") or key), ref)
            for field_name, target in (
                ("IpPermissions", group.ingress),
                ("IpPermissionsEgress", None),
            ):
                perms = item.get(field_name)
                if perms is None:
                    continue  # no egress field: a new group's allow-all egress stays
                if not isinstance(perms, list):
                    self.error(ref.child(field_name), f"{field_name} must be a list")
                    continue
                if target is None:
                    group.egress = target = []
                target.extend((p, ref.child(field_name, j)) for j, p in enumerate(perms))
            self.add_group(group)

    def prefix_list_doc(self, doc: Document) -> None:
        for i, item in enumerate(doc.data["PrefixLists"]):
            ref = doc.source.child("PrefixLists", i)
            pl_id = item.get("PrefixListId") if isinstance(item, dict) else None
            if not isinstance(pl_id, str) or not pl_id:
                self.error(ref, "a prefix list needs PrefixListId")
                continue
            raw = item.get("Cidrs")
            key = "Cidrs"
            if raw is None:
                raw = [
                    e.get("Cidr") if isinstance(e, dict) else e for e in item.get("Entries") or []
                ]
                key = "Entries"
            if not isinstance(raw, list):
                self.error(ref.child(key), "must be a list of CIDRs")
                continue
            cidrs: list[str] = []
            for j, text in enumerate(raw):
                family = 6 if ":" in str(text) else 4
                cidr = self.cidr(text, family, ref.child(key, j))
                if cidr is not None:
                    cidrs.append(cidr)
            self.prefix_lists[pl_id] = tuple(cidrs)

    def add_group(self, group: RawGroup) -> None:
        self.groups.append(group)
        self.by_name.setdefault(group.label, group.key)

    def valid_binding(self, doc: Document) -> bool:
        """A SecurityGroupPolicy as the CRD admits it; located errors otherwise."""
        errors = list(in_document_order(_sgp_validator().iter_errors(doc.data)))
        for err in errors:
            self.error(doc.source.child(*err.absolute_path), err.message)
        return not errors

    def binding(self, doc: Document) -> None:
        data, ref = doc.data, doc.source
        meta = data.get("metadata") or {}
        spec = data.get("spec") or {}
        ns = str(meta.get("namespace") or "default")
        name = str(meta.get("name") or "")
        sref = ref.child("spec")
        pods = self.selector(spec.get("podSelector"), sref.child("podSelector"))
        sas = self.selector(
            spec.get("serviceAccountSelector"), sref.child("serviceAccountSelector")
        )
        ids = (spec.get("securityGroups") or {}).get("groupIds") or []
        if not isinstance(ids, list) or not all(isinstance(g, str) for g in ids):
            self.error(
                sref.child("securityGroups", "groupIds"), "groupIds must be a list of strings"
            )
            return
        if (pods is None and sas is None) or not ids:
            self.losses.append(
                Loss(
                    Effect.NONE,
                    Treatment.DROPPED,
                    Feature.SECURITY_GROUP,
                    ref,
                    f"SecurityGroupPolicy {ns}/{name} needs a selector and groupIds; the VPC "
                    "resource controller ignores it",
                )
            )
            return
        bound = Binding(ns, name, pods, sas, ref)
        for gid in dict.fromkeys(ids):
            self.bindings.setdefault(gid, []).append(bound)

    def mapping(self, doc: Document) -> None:
        """``spec.bindings[]``: ``{groupIds, namespace, podSelector?, serviceAccountSelector?,
        name?}``, each read exactly as a SecurityGroupPolicy with those fields would be."""
        data, ref = doc.data, doc.source
        doc_name = str((data.get("metadata") or {}).get("name") or "bindings")
        items = (
            (data.get("spec") or {}).get("bindings") if isinstance(data.get("spec"), dict) else None
        )
        if not isinstance(items, list):
            self.error(ref.child("spec", "bindings"), "bindings must be a list")
            return
        for i, item in enumerate(items):
            iref = ref.child("spec", "bindings", i)
            if not isinstance(item, dict):
                self.error(iref, "a binding must be an object")
                continue
            unknown = sorted(set(item) - _MAPPING_FIELDS)
            if unknown:
                self.error(
                    iref.child(unknown[0]),
                    f"unknown field (known: {', '.join(sorted(_MAPPING_FIELDS))})",
                )
                continue
            ns = item.get("namespace")
            if not isinstance(ns, str) or not ns:
                self.error(iref.child("namespace"), "a binding needs the namespace of its pods")
                continue
            ids = item.get("groupIds")
            if (
                not isinstance(ids, list)
                or not ids
                or not all(isinstance(g, str) and g for g in ids)
            ):
                self.error(
                    iref.child("groupIds"),
                    "groupIds must be a non-empty list of group ids or names",
                )
                continue
            pods = self.selector(item.get("podSelector"), iref.child("podSelector"))
            sas = self.selector(
                item.get("serviceAccountSelector"), iref.child("serviceAccountSelector")
            )
            if pods is None and sas is None:
                self.error(iref, "a binding needs podSelector or serviceAccountSelector")
                continue
            name = str(item.get("name") or f"{doc_name}-{i}")
            bound = Binding(ns, name, pods, sas, iref)
            for gid in dict.fromkeys(ids):
                self.bindings.setdefault(gid, []).append(bound)

    def selector(self, value: Any, ref: SourceRef) -> Selector | None:
        if value is None:
            return None
        try:
            return from_label_selector(value)
        except LabelSelectorError as exc:
            self.error(SourceRef(ref.file, ref.document, ref.pointer + exc.pointer), str(exc))
            return None

    def resolve_names(self) -> None:
        """SGP entries that are group names (never ``sg-…``) bind the group of that name."""
        for entry in list(self.bindings):
            key = self.by_name.get(entry)
            if not entry.startswith("sg-") and key is not None and key != entry:
                self.bindings.setdefault(key, []).extend(self.bindings.pop(entry))

    # rules --------------------------------------------------------------------------------
    def ports(self, perm: dict[str, Any], ref: SourceRef) -> PortMatch | None:
        raw = perm.get("IpProtocol")
        text = str(raw).strip().lower()
        if text in ("-1", "all"):
            return ANY_PORTS
        try:
            proto = NAMED_PROTOCOLS[text] if text in NAMED_PROTOCOLS else protocol_number(int(text))
        except ValueError:
            self.error(
                ref.child("IpProtocol"),
                f"IpProtocol must be tcp, udp, icmp, icmpv6, -1 or a number, not {raw!r}",
            )
            return None
        lo, hi = perm.get("FromPort"), perm.get("ToPort")
        if proto in (1, 58):
            if lo is None and hi is None:
                if proto == 1:
                    self.error(ref, "icmp needs FromPort (type) and ToPort (code)")
                    return None
                return (PortSpec.single(proto, icmp_ports(-1, -1)),)
            if not (
                isinstance(lo, int) and isinstance(hi, int) and -1 <= lo <= 255 and -1 <= hi <= 255
            ):
                self.error(ref.child("FromPort"), "ICMP type and code must be integers in -1..255")
                return None
            if lo == -1 and hi != -1:
                self.error(ref.child("ToPort"), "all ICMP types (-1) require all codes (-1)")
                return None
            return (PortSpec.single(proto, icmp_ports(lo, hi)),)
        if proto in (6, 17):
            if not (isinstance(lo, int) and isinstance(hi, int)):
                self.error(ref.child("FromPort"), f"{text} needs integer FromPort and ToPort")
                return None
            if (lo, hi) == (-1, -1):
                return (PortSpec.single(proto),)
            if not 0 <= lo <= hi <= 65535:
                self.error(
                    ref.child("FromPort"),
                    f"port range {lo}-{hi} must satisfy 0 <= FromPort <= ToPort <= 65535",
                )
                return None
            return (PortSpec.single(proto, IntervalSet.span(lo, hi)),)
        return (PortSpec.single(proto),)  # any other protocol: ports are ignored (aws.md §2.2)

    def cidr(self, text: Any, family: int, ref: SourceRef) -> str | None:
        try:
            net = ipaddress.ip_network(str(text).strip(), strict=False)  # AWS canonicalises
        except ValueError:
            self.error(ref, f"{text!r} is not a CIDR")
            return None
        if net.version != family:
            self.error(ref, f"{text} is not an IPv{family} CIDR")
            return None
        return str(net)

    def group_peers(self, pair: dict[str, Any], ref: SourceRef) -> list[Peer]:
        key = pair.get("GroupId")
        if not key:
            name = pair.get("GroupName")
            if not name:
                self.error(ref, "a group pair needs GroupId or GroupName")
                return []
            key = self.by_name.get(str(name), str(name))
        return self.members(str(key), ref)

    def members(self, key: str, ref: SourceRef) -> list[Peer]:
        bindings = self.bindings.get(key, [])
        if not bindings:
            self.loss(
                Effect.INVENTORY_DEPENDENT,
                Feature.SECURITY_GROUP,
                ref,
                f"no SecurityGroupPolicy binds {key}: the reference matches only the "
                "endpoints an inventory lists with that group",
            )
            return [Peer(security_group=key)]
        return [b.peer() for b in bindings]

    def rule(self, perm: Any, ref: SourceRef) -> Rule | None:
        if not isinstance(perm, dict):
            self.error(ref, "an IpPermission must be a mapping")
            return None
        ports = self.ports(perm, ref)
        peers: list[Peer] = []
        cover = IPSet.empty()
        for key, cidr_key, family in (("IpRanges", "CidrIp", 4), ("Ipv6Ranges", "CidrIpv6", 6)):
            for k, item in enumerate(perm.get(key) or []):
                cidr = self.cidr((item or {}).get(cidr_key), family, ref.child(key, k, cidr_key))
                if cidr is not None:
                    peers.append(Peer(ip=IpMatch((cidr,))))
                    cover |= IPSet.from_cidr(cidr)
        for k, item in enumerate(perm.get("PrefixListIds") or []):
            pl_id = str((item or {}).get("PrefixListId"))
            cidrs = self.prefix_lists.get(pl_id)
            if cidrs is None:
                self.loss(
                    Effect.NARROWED,
                    Feature.IPBLOCK,
                    ref.child("PrefixListIds", k),
                    f"prefix list {pl_id} has no entries in the input (add `aws ec2 "
                    "describe-prefix-lists` or the managed list's entries); its source was dropped",
                )
                continue
            self.loss(
                Effect.INVENTORY_DEPENDENT,
                Feature.IPBLOCK,
                ref.child("PrefixListIds", k),
                f"prefix list {pl_id} expanded to its {len(cidrs)} CIDRs in the input; later "
                "changes to the list are not covered",
            )
            for cidr in cidrs:
                peers.append(Peer(ip=IpMatch((cidr,))))
                cover |= IPSet.from_cidr(cidr)
        for k, pair in enumerate(perm.get("UserIdGroupPairs") or []):
            peers.extend(self.group_peers(pair or {}, ref.child("UserIdGroupPairs", k)))
        if ports is None or not peers:
            return None
        # 0.0.0.0/0 and ::/0 together hold every address any endpoint can have.
        match: PeerMatch = ANY_PEER if cover == IPSet.all() else tuple(dict.fromkeys(peers))
        return Rule(Action.ALLOW, match, ports, source=ref)

    def rules(
        self, perms: list[tuple[dict[str, Any], SourceRef]] | None, ref: SourceRef
    ) -> Governed:
        if perms is None:
            return Governed((Rule(Action.ALLOW, ANY_PEER, ANY_PORTS, source=ref),), True)
        out = [self.rule(perm, pref) for perm, pref in perms]
        return Governed(tuple(r for r in out if r is not None), True)

    def policies(self) -> list[Policy]:
        out: list[Policy] = []
        for group in self.groups:
            ingress = self.rules(group.ingress, group.ref)
            egress = self.rules(group.egress, group.ref)
            labels = ((SECURITY_GROUP_LABEL, group.key), (GROUP_NAME_LABEL, group.label))
            bindings = self.bindings.get(group.key, [])
            if not bindings:
                self.loss(
                    Effect.INVENTORY_DEPENDENT,
                    Feature.SECURITY_GROUP,
                    group.ref,
                    f"no SecurityGroupPolicy or SecurityGroupBindings entry binds {group.key}: it governs only the "
                    "endpoints an inventory lists with it",
                )
                out.append(
                    Policy(
                        PolicyId(FORMAT, None, group.label),
                        Subject(None, security_group=group.key),
                        ingress,
                        egress,
                        DEFAULT_TIER,
                        KUBERNETES_POLICY_ORDER,
                        Layer.CLOUD,
                        labels,
                        group.ref,
                    )
                )
            for b in bindings:
                subject = Subject(b.namespace, b.pods or All(), service_accounts=b.service_accounts)
                out.append(
                    Policy(
                        PolicyId(FORMAT, b.namespace, f"{group.label}.{b.name}"),
                        subject,
                        ingress,
                        egress,
                        DEFAULT_TIER,
                        KUBERNETES_POLICY_ORDER,
                        Layer.CLOUD,
                        labels,
                        group.ref,
                    )
                )
        return out


def accepts(doc: Document) -> bool:
    """Whether ``doc`` is a group listing, template, SecurityGroupPolicy or bindings mapping."""
    return is_binding(doc) or is_mapping(doc) or is_describe(doc.data) or is_template(doc.data)


def read(docs: Sequence[Document]) -> Translation[PolicySet]:
    """The security groups among ``docs`` in the IR, bound to pods by SGPs or a mapping."""
    reader = _Reader()
    templates = []
    for doc in docs:
        if is_binding(doc):
            if reader.valid_binding(doc):
                reader.binding(doc)
        elif is_mapping(doc):
            reader.mapping(doc)
        elif is_prefix_lists(doc.data):
            reader.prefix_list_doc(doc)
        elif is_describe(doc.data):
            reader.describe(doc)
        elif is_template(doc.data):
            templates.append(doc)
    for doc in templates:
        groups, losses, problems = template_groups(doc)
        reader.losses.extend(losses)
        reader.problems.extend(problems)
        for group in groups:
            reader.add_group(group)
    reader.resolve_names()
    policies = reader.policies()
    if reader.problems:
        raise InputError(reader.problems)
    return Translation(
        PolicySet(tuple(policies)), FidelityReport(FORMAT, "canonical", tuple(reader.losses))
    )
