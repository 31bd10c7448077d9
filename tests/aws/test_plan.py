"""The pure planner: normalisation, validation of the desired file, diffing, ordering (no AWS)."""

from __future__ import annotations

from typing import Any

import pytest

from polyfence.errors import Diagnostic, InputError
from polyfence.model.document import Document
from polyfence.model.provenance import SourceRef
from polyfence.translators.aws.plan import (
    MANAGED_TAG,
    AccountState,
    Action,
    actual_group,
    build_plan,
    parse_desired,
)
from polyfence.translators.aws.rules import CIDR4, CIDR6, GROUP, Rule, RuleKey, expand_permission

VPC = "vpc-0a"
OWNED = [{"Key": MANAGED_TAG[0], "Value": MANAGED_TAG[1]}]


def rules_of(perm: dict[str, Any], egress: bool = False) -> tuple[list[Rule], list[str]]:
    problems: list[Diagnostic] = []
    rules = expand_permission(perm, egress, SourceRef("f", 0, "/p"), problems)
    return rules, [d.message for d in problems]


@pytest.mark.parametrize(
    ("perm", "key"),
    [
        (
            {
                "IpProtocol": "6",
                "FromPort": 80,
                "ToPort": 80,
                "IpRanges": [{"CidrIp": "10.1.2.3/16"}],
            },
            RuleKey(False, "tcp", 80, 80, CIDR4, "10.1.0.0/16"),
        ),
        (
            {"IpProtocol": "icmpv6", "Ipv6Ranges": [{"CidrIpv6": "2001:DB8:0:0::1/32"}]},
            RuleKey(False, "icmpv6", -1, -1, CIDR6, "2001:db8::/32"),
        ),
        (
            {
                "IpProtocol": "132",
                "FromPort": 1,
                "ToPort": 2,
                "UserIdGroupPairs": [{"GroupId": "sg-1", "UserId": "1"}],
            },
            RuleKey(False, "132", None, None, GROUP, "sg-1"),
        ),
        (
            {"IpProtocol": -1, "FromPort": -1, "ToPort": -1, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
            RuleKey(False, "-1", None, None, CIDR4, "0.0.0.0/0"),
        ),
    ],
)
def test_normalisation_matches_what_aws_stores(perm: dict[str, Any], key: RuleKey) -> None:
    rules, problems = rules_of(perm)
    assert problems == [] and [r.key for r in rules] == [key]


def test_one_rule_per_source_with_descriptions() -> None:
    rules, _ = rules_of(
        {
            "IpProtocol": "udp",
            "FromPort": 53,
            "ToPort": 53,
            "IpRanges": [
                {"CidrIp": "10.0.0.0/8", "Description": "a"},
                {"CidrIp": "192.168.0.0/16"},
            ],
            "PrefixListIds": [{"PrefixListId": "pl-1"}],
        },
        egress=True,
    )
    assert [(r.key.peer, r.description, r.key.egress) for r in rules] == [
        ("10.0.0.0/8", "a", True),
        ("192.168.0.0/16", "", True),
        ("pl-1", "", True),
    ]


@pytest.mark.parametrize(
    ("perm", "message"),
    [
        ({"IpProtocol": "sctp", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}, "IpProtocol 'sctp'"),
        ({"IpProtocol": "tcp", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}, "needs a port range"),
        (
            {
                "IpProtocol": "udp",
                "FromPort": 0,
                "ToPort": 70000,
                "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
            },
            "0-65535",
        ),
        (
            {
                "IpProtocol": "icmp",
                "FromPort": -1,
                "ToPort": 3,
                "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
            },
            "type -1 needs code -1",
        ),
        ({"IpProtocol": "-1", "IpRanges": [{"CidrIp": "::/0"}]}, "is not an IPv4 CIDR"),
        (
            {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0", "Description": "a<b"}]},
            "Description must be",
        ),
        ({"IpProtocol": "-1"}, "no source"),
        ({"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupName": "web"}]}, "needs a GroupId"),
    ],
)
def test_invalid_permissions_are_reported(perm: dict[str, Any], message: str) -> None:
    rules, problems = rules_of(perm)
    assert rules == [] and len(problems) == 1 and message in problems[0]


def doc(*groups: Any, index: int = 0) -> Document:
    return Document({"SecurityGroups": list(groups)}, SourceRef("d.yaml", index))


def test_desired_problems_are_all_collected_with_pointers() -> None:
    with pytest.raises(InputError) as info:
        parse_desired(
            [
                doc(
                    {"GroupName": "a", "Description": "x", "VpcId": VPC},
                    {"GroupName": "A", "Description": "x", "VpcId": VPC},
                    {"Description": "no name"},
                    {"GroupName": "b", "VpcId": VPC},
                    {"GroupName": "c", "Description": "c", "VpcId": "vpc-other"},
                    {
                        "GroupName": "d",
                        "Description": "d",
                        "VpcId": VPC,
                        "IpPermissions": [
                            {
                                "IpProtocol": "-1",
                                "IpRanges": [{"CidrIp": "10.0.0.0/8", "Description": "one"}],
                            },
                            {
                                "IpProtocol": "-1",
                                "IpRanges": [{"CidrIp": "10.0.0.0/8", "Description": "two"}],
                            },
                        ],
                    },
                ),
                Document({"SecurityGroups": "nope"}, SourceRef("d.yaml", 1)),
            ],
            vpc_id=VPC,
        )
    found = [str(d) for d in info.value.diagnostics]
    assert any(
        s.startswith(
            "d.yaml[0]:/SecurityGroups/1: group 'A' is also defined at d.yaml[0]:/SecurityGroups/0"
        )
        for s in found
    )
    assert (
        "d.yaml[0]:/SecurityGroups/2: a group needs a GroupName (new or by name) or a GroupId"
        in found
    )
    assert any(
        s.startswith("d.yaml[0]:/SecurityGroups/3/Description: Description must be") for s in found
    )
    assert (
        "d.yaml[0]:/SecurityGroups/4/VpcId: group is in vpc-other, not in --vpc-id vpc-0a" in found
    )
    assert any(
        s.startswith("d.yaml[0]:/SecurityGroups/5/IpPermissions/1: the same rule is given twice")
        for s in found
    )
    assert "d.yaml[1]:/SecurityGroups: SecurityGroups must be a list" in found
    assert len(found) == 6


def test_a_file_without_security_groups_is_invalid() -> None:
    with pytest.raises(InputError, match="no document with a SecurityGroups list"):
        parse_desired([Document({"kind": "SecurityGroupPolicy"}, SourceRef("d.yaml", 0))])


def test_names_resolve_within_their_document_only() -> None:
    with pytest.raises(InputError, match="'web' is not a group of this document"):
        parse_desired(
            [
                doc({"GroupName": "web", "Description": "w", "VpcId": VPC}),
                doc(
                    {
                        "GroupName": "api",
                        "Description": "a",
                        "VpcId": VPC,
                        "IpPermissions": [
                            {"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupName": "web"}]}
                        ],
                    },
                    index=1,
                ),
            ]
        )


def existing(name: str, owned: bool = True, **fields: Any) -> dict[str, Any]:
    return {
        "GroupId": f"sg-{name}",
        "GroupName": name,
        "VpcId": VPC,
        "Description": name,
        "Tags": OWNED if owned else [],
        "IpPermissions": [],
        "IpPermissionsEgress": [{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}],
        **fields,
    }


def test_plan_orders_changes_safely_across_groups() -> None:
    state = AccountState(
        (
            actual_group(
                existing(
                    "old",
                    IpPermissions=[
                        {
                            "IpProtocol": "tcp",
                            "FromPort": 22,
                            "ToPort": 22,
                            "IpRanges": [{"CidrIp": "10.0.0.0/8"}],
                        }
                    ],
                )
            ),
        )
    )
    desired = parse_desired(
        [
            doc(
                {
                    "GroupName": "old",
                    "Description": "changed",
                    "VpcId": VPC,
                    "Tags": [{"Key": "team", "Value": "x"}],
                    "IpPermissions": [
                        {"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupName": "new"}]}
                    ],
                    "IpPermissionsEgress": [
                        {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}
                    ],
                },
                {
                    "GroupName": "new",
                    "Description": "n",
                    "VpcId": VPC,
                    "IpPermissionsEgress": [
                        {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}
                    ],
                },
            )
        ]
    )
    plan = build_plan(desired, state)
    assert [(c.action, c.target.label) for c in plan.changes] == [
        (Action.CREATE, "new"),
        (Action.TAG, "old"),
        (Action.AUTHORIZE, "old"),
        (Action.REVOKE, "old"),
    ]
    assert plan.changes[0].tags == (MANAGED_TAG,)  # created groups are always ours
    assert plan.changes[2].text() == "+ old: ingress all traffic from group new (new)"
    assert plan.changes[2].to_dict()["permission"] == {
        "IpProtocol": "-1",
        "UserIdGroupPairs": [{"GroupName": "new"}],
    }
    assert plan.notes and "AWS cannot change it" in plan.notes[0]
    assert plan.render().splitlines()[-1] == (
        "plan: 4 changes (1 create-group, 1 tag, 1 authorize, 1 revoke); 0 groups unchanged"
    )


def test_existing_peer_names_resolve_to_ids_so_matching_rules_are_unchanged() -> None:
    state = AccountState(
        (
            actual_group(
                existing(
                    "db",
                    IpPermissions=[
                        {
                            "IpProtocol": "tcp",
                            "FromPort": 5432,
                            "ToPort": 5432,
                            "UserIdGroupPairs": [{"GroupId": "sg-api", "UserId": "123"}],
                        }
                    ],
                )
            ),
            actual_group(existing("api")),
        )
    )
    all_out = [{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]
    desired = parse_desired(
        [
            doc(
                {
                    "GroupName": "db",
                    "Description": "db",
                    "VpcId": VPC,
                    "IpPermissionsEgress": all_out,
                    "IpPermissions": [
                        {
                            "IpProtocol": "6",
                            "FromPort": 5432,
                            "ToPort": 5432,
                            "UserIdGroupPairs": [{"GroupName": "api"}],
                        }
                    ],
                },
                {
                    "GroupName": "api",
                    "Description": "api",
                    "VpcId": VPC,
                    "IpPermissionsEgress": all_out,
                },
            )
        ]
    )
    plan = build_plan(desired, state)
    assert not plan.has_changes and plan.unchanged_groups == 2 and not plan.refusals


def test_unowned_group_with_changes_is_refused_but_untouched_one_is_fine() -> None:
    state = AccountState((actual_group(existing("legacy", owned=False)),))
    same = parse_desired(
        [
            doc(
                {
                    "GroupId": "sg-legacy",
                    "IpPermissionsEgress": [
                        {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}
                    ],
                }
            )
        ]
    )
    assert not build_plan(same, state).refusals
    differs = parse_desired([doc({"GroupId": "sg-legacy"})])  # would revoke the egress
    plan = build_plan(differs, state)
    assert plan.refusals == (
        "sg-legacy is not tagged polyfence.dev/managed-by=polyfence; 1 changes would touch it "
        "(tag it yourself to let polyfence manage it)",
    )


def test_missing_vpc_and_unknown_group_id() -> None:
    with pytest.raises(InputError) as info:
        build_plan(
            parse_desired([doc({"GroupName": "x", "Description": "x"}, {"GroupId": "sg-9"})]),
            AccountState((), default_vpc=None),
        )
    assert [str(d) for d in info.value.diagnostics] == [
        "d.yaml[0]:/SecurityGroups/0: no VpcId, no --vpc-id and the region has no default VPC",
        "d.yaml[0]:/SecurityGroups/1/GroupId: group sg-9 does not exist",
    ]
