"""CloudFormation security groups, read into the describe shape the AWS reader understands.

``AWS::EC2::SecurityGroup`` (inline ``SecurityGroupIngress``/``SecurityGroupEgress``) and the
standalone ``AWS::EC2::SecurityGroupIngress``/``SecurityGroupEgress`` resources; other resource
types are ignored. A group is identified by its literal ``GroupName``, else its logical id.
``Ref``/``Fn::GetAtt …GroupId`` to a group of the template resolve exactly; ``Ref`` to a
parameter uses its ``Default`` (reported: inventory-dependent); every other intrinsic
(``Fn::ImportValue``, ``Ref`` to other resources, conditions) drops the rule, reported as
narrowed. Egress follows CloudFormation: no inline egress keeps AWS's allow-all egress
(standalone egress resources add on top of it, aws.md §4.1); the documented idiom of a single
``-1`` rule to ``127.0.0.1/32`` removes it (loopback never reaches a security group).
"""

from __future__ import annotations

from typing import Any

from polyfence.errors import Diagnostic
from polyfence.fidelity import Effect, Feature, Loss, Treatment
from polyfence.model.document import Document
from polyfence.model.provenance import SourceRef
from polyfence.translators.aws.rules import RawGroup

GROUP = "AWS::EC2::SecurityGroup"
INGRESS = "AWS::EC2::SecurityGroupIngress"
EGRESS = "AWS::EC2::SecurityGroupEgress"
_SOURCES = {
    "CidrIp": ("IpRanges", "CidrIp"),
    "CidrIpv6": ("Ipv6Ranges", "CidrIpv6"),
    "SourcePrefixListId": ("PrefixListIds", "PrefixListId"),
    "DestinationPrefixListId": ("PrefixListIds", "PrefixListId"),
}
_GROUP_SOURCES = ("SourceSecurityGroupId", "DestinationSecurityGroupId", "SourceSecurityGroupName")
LOOPBACK_EGRESS = {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "127.0.0.1/32"}]}


class Unresolved(Exception):
    """An intrinsic function whose value the template alone does not give."""


class _Template:
    def __init__(self, doc: Document) -> None:
        self.doc = doc
        self.resources: dict[str, Any] = doc.data.get("Resources") or {}
        self.parameters: dict[str, Any] = doc.data.get("Parameters") or {}
        self.losses: list[Loss] = []
        self.problems: list[Diagnostic] = []
        self.names = {
            logical: self.group_name(logical, res)
            for logical, res in self.resources.items()
            if isinstance(res, dict) and res.get("Type") == GROUP
        }

    @staticmethod
    def group_name(logical: str, res: dict[str, Any]) -> str:
        name = (res.get("Properties") or {}).get("GroupName")
        return name if isinstance(name, str) else logical

    def value(self, raw: Any, ref: SourceRef) -> Any:
        """A literal, ``{"group": name}`` for a template group, or raises ``Unresolved``."""
        if not isinstance(raw, dict):
            return raw
        if set(raw) == {"Ref"}:
            target = str(raw["Ref"])
            if target in self.names:
                return {"group": self.names[target]}
            default = (self.parameters.get(target) or {}).get("Default")
            if default is not None:
                self.losses.append(
                    Loss(
                        Effect.INVENTORY_DEPENDENT,
                        Treatment.EXPANDED,
                        Feature.IPBLOCK,
                        ref,
                        f"parameter {target} read as its default {default!r}; a stack given "
                        "another value allows something else",
                    )
                )
                return default
        if set(raw) == {"Fn::GetAtt"}:
            target = raw["Fn::GetAtt"]
            parts = target.split(".", 1) if isinstance(target, str) else list(target or [])
            if len(parts) == 2 and parts[0] in self.names and parts[1] == "GroupId":
                return {"group": self.names[parts[0]]}
        raise Unresolved(f"{next(iter(raw), 'intrinsic')} {raw!r}")

    def permission(self, rule: Any, ref: SourceRef) -> dict[str, Any] | None:
        """One CFN rule as an IpPermission; None when it cannot be resolved (reported)."""
        if not isinstance(rule, dict):
            self.problems.append(Diagnostic(ref, "a security group rule must be a mapping"))
            return None
        try:
            perm: dict[str, Any] = {"IpProtocol": str(self.value(rule.get("IpProtocol"), ref))}
            for key in ("FromPort", "ToPort"):
                if rule.get(key) is not None:
                    value = self.value(rule[key], ref.child(key))
                    perm[key] = int(value) if str(value).lstrip("-").isdigit() else value
            entry: dict[str, Any] = {}
            if rule.get("Description") is not None:
                entry["Description"] = rule["Description"]
            for key, (field, inner) in _SOURCES.items():
                if rule.get(key) is not None:
                    perm[field] = [{inner: str(self.value(rule[key], ref.child(key))), **entry}]
            for key in _GROUP_SOURCES:
                if rule.get(key) is None:
                    continue
                value = self.value(rule[key], ref.child(key))
                if isinstance(value, dict):
                    perm["UserIdGroupPairs"] = [{"GroupName": value["group"], **entry}]
                elif key.endswith("Name") or not str(value).startswith("sg-"):
                    perm["UserIdGroupPairs"] = [{"GroupName": str(value), **entry}]
                else:
                    perm["UserIdGroupPairs"] = [{"GroupId": str(value), **entry}]
        except Unresolved as exc:
            self.losses.append(
                Loss(
                    Effect.NARROWED,
                    Treatment.DROPPED,
                    Feature.IPBLOCK,
                    ref,
                    f"{exc} cannot be resolved from the template alone; the rule was dropped",
                )
            )
            return None
        return perm

    def groups(self) -> list[RawGroup]:
        out: dict[str, RawGroup] = {}
        base = self.doc.source.child("Resources")
        for logical, res in self.resources.items():
            if not isinstance(res, dict) or res.get("Type") != GROUP:
                continue
            ref = base.child(logical)
            props = res.get("Properties") or {}
            group = RawGroup(self.names[logical], self.names[logical], ref)
            for key, into in (
                ("SecurityGroupIngress", "ingress"),
                ("SecurityGroupEgress", "egress"),
            ):
                rules = props.get(key)
                if rules is None:
                    continue
                if not isinstance(rules, list):
                    self.problems.append(
                        Diagnostic(ref.child("Properties", key), f"{key} must be a list")
                    )
                    continue
                perms = [
                    (
                        self.permission(r, ref.child("Properties", key, i)),
                        ref.child("Properties", key, i),
                    )
                    for i, r in enumerate(rules)
                ]
                kept = [(p, r) for p, r in perms if p is not None]
                if into == "egress":
                    loopback_only = [p for p, _ in kept] == [LOOPBACK_EGRESS]
                    group.egress = [] if loopback_only else kept
                else:
                    group.ingress.extend(kept)
            out[group.key] = group
        for logical, res in self.resources.items():
            if not isinstance(res, dict) or res.get("Type") not in (INGRESS, EGRESS):
                continue
            ref = base.child(logical, "Properties")
            props = res.get("Properties") or {}
            perm = self.permission(props, ref)
            if perm is None:
                continue
            try:
                target = self.value(
                    props.get("GroupId") or props.get("GroupName"), ref.child("GroupId")
                )
            except Unresolved as exc:
                self.losses.append(
                    Loss(
                        Effect.NARROWED,
                        Treatment.DROPPED,
                        Feature.SECURITY_GROUP,
                        ref,
                        f"the rule's group ({exc}) cannot be resolved; the rule was dropped",
                    )
                )
                continue
            key = target["group"] if isinstance(target, dict) else str(target)
            found = out.get(key)
            if found is None:
                self.losses.append(
                    Loss(
                        Effect.NARROWED,
                        Treatment.APPROXIMATED,
                        Feature.SECURITY_GROUP,
                        ref,
                        f"group {key} is defined outside the template: only this template's rules "
                        "of it are known",
                    )
                )
                found = out[key] = RawGroup(key, key, ref)
            group = found
            if res["Type"] == INGRESS:
                group.ingress.append((perm, ref))
            elif group.egress is not None:
                group.egress.append((perm, ref))  # else: added on top of the allow-all default
        return list(out.values())


def template_groups(doc: Document) -> tuple[list[RawGroup], list[Loss], list[Diagnostic]]:
    """The security groups a template defines, with what could not be resolved."""
    template = _Template(doc)
    groups = template.groups()
    return groups, template.losses, template.problems
