"""The desired security groups as a CloudFormation template (``aws_output: cloudformation``).

One ``AWS::EC2::SecurityGroup`` per created group with a literal ``GroupName`` (the SGPs bind
groups by name); CIDR rules inline, rules referencing groups as standalone
``SecurityGroupIngress``/``SecurityGroupEgress`` resources (inline references between groups
would be circular). A group without egress rules gets CloudFormation's documented idiom, one
``-1`` rule to ``127.0.0.1/32``, which suppresses the default allow-all egress. Groups that
already exist (``GroupId``) get standalone rule resources only.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

GROUP = "AWS::EC2::SecurityGroup"
_LOOPBACK = {"IpProtocol": "-1", "CidrIp": "127.0.0.1/32"}


def _logical(name: str) -> str:
    base = re.sub(r"[^A-Za-z0-9]", "", name.title())[:200] or "Group"
    return base + hashlib.sha256(name.encode()).hexdigest()[:6]


def _rules(
    perm: dict[str, Any], egress: bool
) -> list[tuple[dict[str, Any], dict[str, Any] | None]]:
    """(CFN rule properties, referenced group pair or None) per source of one IpPermission."""
    head: dict[str, Any] = {"IpProtocol": perm["IpProtocol"]}
    if "FromPort" in perm:
        head["FromPort"], head["ToPort"] = perm["FromPort"], perm["ToPort"]
    out: list[tuple[dict[str, Any], dict[str, Any] | None]] = []
    out.extend(({**head, "CidrIp": r["CidrIp"]}, None) for r in perm.get("IpRanges", []))
    out.extend(({**head, "CidrIpv6": r["CidrIpv6"]}, None) for r in perm.get("Ipv6Ranges", []))
    key = "DestinationPrefixListId" if egress else "SourcePrefixListId"
    out.extend(({**head, key: p["PrefixListId"]}, None) for p in perm.get("PrefixListIds", []))
    out.extend((dict(head), pair) for pair in perm.get("UserIdGroupPairs", []))
    return out


def template(groups: list[dict[str, Any]]) -> dict[str, Any]:
    """A template creating ``groups`` (describe shape, as the writer builds them)."""
    logical = {g["GroupName"]: _logical(g["GroupName"]) for g in groups if "GroupName" in g}

    def group_ref(pair: dict[str, Any]) -> Any:
        name = pair.get("GroupName")
        if name in logical:
            return {"Fn::GetAtt": [logical[name], "GroupId"]}
        return pair.get("GroupId") or name

    resources: dict[str, Any] = {}
    for group in groups:
        name = group.get("GroupName")
        owner = {"Fn::GetAtt": [logical[name], "GroupId"]} if name else group["GroupId"]
        inline: dict[str, list[dict[str, Any]]] = {
            "SecurityGroupIngress": [],
            "SecurityGroupEgress": [],
        }
        for field, key, kind in (
            ("IpPermissions", "SecurityGroupIngress", "AWS::EC2::SecurityGroupIngress"),
            ("IpPermissionsEgress", "SecurityGroupEgress", "AWS::EC2::SecurityGroupEgress"),
        ):
            egress = kind.endswith("Egress")
            for perm in group.get(field, []):
                for props, pair in _rules(perm, egress):
                    if pair is None and name:
                        inline[key].append(props)
                        continue
                    if pair is not None:
                        target = "DestinationSecurityGroupId" if egress else "SourceSecurityGroupId"
                        props[target] = group_ref(pair)
                    props["GroupId"] = owner
                    rid = _logical(f"{name or group['GroupId']}-{key}-{len(resources)}")
                    resources[rid] = {"Type": kind, "Properties": props}
        if not name:
            continue
        spec: dict[str, Any] = {"GroupName": name, "GroupDescription": group["Description"]}
        # Egress rules exist only in a VPC: the id is a parameter unless the writer was given it.
        spec["VpcId"] = group.get("VpcId") or {"Ref": "VpcId"}
        if inline["SecurityGroupIngress"]:
            spec["SecurityGroupIngress"] = inline["SecurityGroupIngress"]
        # Without inline egress AWS keeps its allow-all default: the loopback idiom removes it
        # (also when every egress rule references a group and so stands alone).
        spec["SecurityGroupEgress"] = inline["SecurityGroupEgress"] or [dict(_LOOPBACK)]
        spec["Tags"] = group.get("Tags", [])
        resources[logical[name]] = {"Type": GROUP, "Properties": spec}
    out: dict[str, Any] = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": "Security groups written by polyfence",
    }
    if any(g.get("GroupName") and not g.get("VpcId") for g in groups):
        out["Parameters"] = {"VpcId": {"Type": "AWS::EC2::VPC::Id", "Description": "The VPC"}}
    out["Resources"] = resources
    return out
