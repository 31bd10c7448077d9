"""pull / plan / apply against moto's server: the happy paths, ownership, ordering, idempotence."""

from __future__ import annotations

from typing import Any

import pytest

from polyfence.errors import InputError
from polyfence.io import aws as aws_io
from polyfence.model.document import Document
from polyfence.model.provenance import SourceRef
from polyfence.translators.aws.plan import Action, DesiredState, OwnershipError, parse_desired

MANAGED = {"Key": "polyfence.dev/managed-by", "Value": "polyfence"}
ALL_EGRESS = {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}


def https_from(cidr: str, description: str | None = None) -> dict[str, Any]:
    source: dict[str, Any] = {"CidrIp": cidr}
    if description:
        source["Description"] = description
    return {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [source]}


def desired(*groups: dict[str, Any], vpc_id: str | None = None, others: int = 0) -> DesiredState:
    docs = [Document({"SecurityGroups": list(groups)}, SourceRef("desired.yaml", 0))]
    docs += [
        Document({"kind": "SecurityGroupPolicy"}, SourceRef("desired.yaml", i + 1))
        for i in range(others)
    ]
    return parse_desired(docs, vpc_id)


def group(name: str, vpc: str | None, **fields: Any) -> dict[str, Any]:
    data = {"GroupName": name, "Description": f"{name} group", "Tags": [MANAGED], **fields}
    if vpc:
        data["VpcId"] = vpc
    return data


def described(ec2: Any, name: str, vpc: str) -> dict[str, Any]:
    (found,) = ec2.describe_security_groups(
        Filters=[{"Name": "vpc-id", "Values": [vpc]}, {"Name": "group-name", "Values": [name]}]
    )["SecurityGroups"]
    return dict(found)


def record_calls(ec2: Any) -> list[str]:
    """The API operations the client sends, in order (a botocore event hook)."""
    calls: list[str] = []
    ec2.meta.events.register(
        "before-call.ec2.*", lambda model, **_: calls.append(model.name), unique_id="rec"
    )
    return calls


def test_pull_filters_by_vpc_group_and_tag(ec2: Any, vpc: str) -> None:
    other_vpc = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    tagged = ec2.create_security_group(
        GroupName="b-web",
        Description="web",
        VpcId=vpc,
        TagSpecifications=[
            {"ResourceType": "security-group", "Tags": [{"Key": "team", "Value": "a"}]}
        ],
    )["GroupId"]
    plain = ec2.create_security_group(GroupName="a-db", Description="db", VpcId=vpc)["GroupId"]
    elsewhere = ec2.create_security_group(GroupName="x", Description="x", VpcId=other_vpc)[
        "GroupId"
    ]

    in_vpc = aws_io.pull(ec2, vpc_ids=[vpc])["SecurityGroups"]
    assert {g["GroupName"] for g in in_vpc} == {"default", "a-db", "b-web"}
    assert [g["GroupName"] for g in in_vpc] == ["a-db", "b-web", "default"]  # sorted
    assert elsewhere not in {g["GroupId"] for g in in_vpc}
    assert in_vpc[0]["IpPermissionsEgress"][0]["IpRanges"] == [{"CidrIp": "0.0.0.0/0"}]

    by_id = aws_io.pull(ec2, group_ids=[plain, elsewhere])["SecurityGroups"]
    assert sorted(g["GroupId"] for g in by_id) == sorted([plain, elsewhere])
    by_tag = aws_io.pull(ec2, tags=[("team", "a")])["SecurityGroups"]
    assert [g["GroupId"] for g in by_tag] == [tagged]
    assert aws_io.pull(ec2, tags=[("team", "b")]) == {"SecurityGroups": []}
    assert aws_io.pull(ec2, vpc_ids=[vpc]) == aws_io.pull(ec2, vpc_ids=[vpc])  # deterministic


def test_pull_sends_page_size_and_reads_every_group(ec2: Any, vpc: str) -> None:
    for i in range(12):
        ec2.create_security_group(GroupName=f"g{i:02}", Description="d", VpcId=vpc)
    sent: list[dict[str, Any]] = []
    ec2.meta.events.register(
        "provide-client-params.ec2.DescribeSecurityGroups",
        lambda params, **_: sent.append(dict(params)),
    )
    groups = aws_io.describe_groups(ec2, vpc_ids=[vpc], page_size=5)
    assert len(groups) == 13  # moto answers in one page; the Stubber test covers NextToken
    assert sent[0]["MaxResults"] == 5


def test_plan_for_new_groups(ec2: Any, vpc: str) -> None:
    state = desired(
        group("web", vpc, IpPermissions=[https_from("10.0.0.0/8", "lb")]),
        group("db", vpc, IpPermissionsEgress=[ALL_EGRESS]),
        others=2,
    )
    plan = aws_io.plan(ec2, state)
    assert [c.action for c in plan.changes] == [
        Action.CREATE,
        Action.CREATE,
        Action.AUTHORIZE,
        Action.REVOKE,
    ]
    text = plan.render()
    assert f'+ web: create group in {vpc} "web group"' in text
    assert '+ web: ingress tcp 443 from 10.0.0.0/8 "lb"' in text
    assert "- web: egress all traffic to 0.0.0.0/0" in text  # AWS's default egress goes
    assert "db: egress" not in text  # db wants allow-all egress: the default is kept
    assert "2 documents without SecurityGroups ignored" in text
    assert plan.to_dict()["summary"] == {
        "create-group": 2,
        "tag": 0,
        "authorize": 1,
        "update-description": 0,
        "revoke": 1,
    }
    assert aws_io.pull(ec2, vpc_ids=[vpc])["SecurityGroups"][0]["GroupName"] == "default"


def test_apply_then_second_apply_changes_nothing(ec2: Any, vpc: str) -> None:
    state = desired(
        group(
            "web",
            vpc,
            IpPermissions=[
                https_from("10.0.0.0/8", "lb"),
                {
                    "IpProtocol": "udp",
                    "FromPort": 53,
                    "ToPort": 53,
                    "Ipv6Ranges": [{"CidrIpv6": "2001:db8::/32"}],
                },
            ],
            IpPermissionsEgress=[
                {
                    "IpProtocol": "tcp",
                    "FromPort": 5432,
                    "ToPort": 5432,
                    "IpRanges": [{"CidrIp": "10.0.1.0/24"}],
                }
            ],
        )
    )
    plan = aws_io.plan(ec2, state)
    done = aws_io.apply(ec2, plan)
    assert done == plan.changes
    web = described(ec2, "web", vpc)
    assert MANAGED in web["Tags"]
    assert [p["IpProtocol"] for p in web["IpPermissionsEgress"]] == ["tcp"]  # default revoked
    assert len(web["IpPermissions"]) == 2

    again = aws_io.plan(ec2, state)
    assert not again.has_changes and again.unchanged_groups == 1
    assert again.render().startswith("plan: no changes")
    calls = record_calls(ec2)
    assert aws_io.apply(ec2, again) == ()
    assert calls == []  # the second apply sends nothing at all


def test_add_before_revoke_on_an_owned_group(ec2: Any, vpc: str) -> None:
    gid = ec2.create_security_group(
        GroupName="web",
        Description="web group",
        VpcId=vpc,
        TagSpecifications=[{"ResourceType": "security-group", "Tags": [MANAGED]}],
    )["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=[https_from("10.9.0.0/16")])
    state = desired(
        group(
            "web",
            vpc,
            IpPermissions=[https_from("10.8.0.0/16")],
            IpPermissionsEgress=[
                {
                    "IpProtocol": "tcp",
                    "FromPort": 80,
                    "ToPort": 80,
                    "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
                }
            ],
        ),
        group("new", vpc),
    )
    plan = aws_io.plan(ec2, state)
    calls = record_calls(ec2)
    aws_io.apply(ec2, plan)
    ops = [c for c in calls if c.startswith(("Authorize", "Revoke", "Create"))]
    assert ops == [
        "CreateSecurityGroup",
        "AuthorizeSecurityGroupIngress",
        "AuthorizeSecurityGroupEgress",
        "RevokeSecurityGroupIngress",
        "RevokeSecurityGroupEgress",  # web's allow-all egress
        "RevokeSecurityGroupEgress",  # the new group's default egress
    ]
    web = described(ec2, "web", vpc)
    assert [r["CidrIp"] for p in web["IpPermissions"] for r in p["IpRanges"]] == ["10.8.0.0/16"]
    assert described(ec2, "new", vpc)["IpPermissionsEgress"] == []


def test_ownership_refusal_applies_nothing(ec2: Any, vpc: str) -> None:
    gid = ec2.create_security_group(GroupName="legacy", Description="theirs", VpcId=vpc)["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=[https_from("10.9.0.0/16")])
    state = desired(
        group("fresh", vpc), group("legacy", vpc, IpPermissions=[https_from("10.8.0.0/8")])
    )
    plan = aws_io.plan(ec2, state)
    assert len(plan.refusals) == 1 and "legacy" in plan.refusals[0] and gid in plan.refusals[0]
    assert "! refused: legacy" in plan.render()
    calls = record_calls(ec2)
    with pytest.raises(OwnershipError):
        aws_io.apply(ec2, plan)
    assert calls == []
    assert [g["GroupName"] for g in aws_io.pull(ec2, vpc_ids=[vpc])["SecurityGroups"]] == [
        "default",
        "legacy",
    ]
    # An unowned group that already matches is fine: nothing would touch it.
    ok = desired(
        {
            "GroupId": gid,
            "IpPermissions": [https_from("10.9.0.0/16")],
            "IpPermissionsEgress": [ALL_EGRESS],
        }
    )
    assert not aws_io.plan(ec2, ok).refusals


def test_group_references_by_name_resolve_to_ids(ec2: Any, vpc: str) -> None:
    state = desired(
        group(
            "api",
            vpc,
            IpPermissions=[
                {
                    "IpProtocol": "tcp",
                    "FromPort": 8080,
                    "ToPort": 8080,
                    "UserIdGroupPairs": [{"GroupName": "web", "Description": "from web"}],
                },
                {"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupName": "api"}]},
            ],
        ),
        group(
            "web",
            vpc,
            IpPermissionsEgress=[
                {
                    "IpProtocol": "tcp",
                    "FromPort": 8080,
                    "ToPort": 8080,
                    "UserIdGroupPairs": [{"GroupName": "api"}],
                }
            ],
        ),
    )
    plan = aws_io.plan(ec2, state)
    assert "+ api: ingress tcp 8080 from group web (new)" in plan.render()
    aws_io.apply(ec2, plan)
    api, web = described(ec2, "api", vpc), described(ec2, "web", vpc)
    pairs = {
        p["IpProtocol"]: [(u["GroupId"], u.get("Description", "")) for u in p["UserIdGroupPairs"]]
        for p in api["IpPermissions"]
    }
    assert pairs == {"tcp": [(web["GroupId"], "from web")], "-1": [(api["GroupId"], "")]}
    assert web["IpPermissionsEgress"][0]["UserIdGroupPairs"][0]["GroupId"] == api["GroupId"]
    again = aws_io.plan(ec2, state)  # references now resolve to the existing ids
    assert not again.has_changes, again.render()


def test_description_and_tag_updates(ec2: Any, vpc: str) -> None:
    aws_io.apply(
        ec2,
        aws_io.plan(
            ec2, desired(group("web", vpc, IpPermissions=[https_from("10.0.0.0/8", "old")]))
        ),
    )
    changed = desired(
        group(
            "web",
            vpc,
            IpPermissions=[https_from("10.0.0.0/8", "new")],
            Tags=[MANAGED, {"Key": "team", "Value": "shop"}],
        )
    )
    plan = aws_io.plan(ec2, changed)
    assert [c.action for c in plan.changes] == [Action.TAG, Action.DESCRIBE]
    assert '~ web: ingress tcp 443 from 10.0.0.0/8 description "old" -> "new"' in plan.render()
    calls = record_calls(ec2)
    aws_io.apply(ec2, plan)
    assert "RevokeSecurityGroupIngress" not in calls  # no gap: described in place
    web = described(ec2, "web", vpc)
    assert web["IpPermissions"][0]["IpRanges"] == [{"CidrIp": "10.0.0.0/8", "Description": "new"}]
    assert {"Key": "team", "Value": "shop"} in web["Tags"]
    assert not aws_io.plan(ec2, changed).has_changes


def test_ipv6_vpc_default_egress_revoked_both_families(ec2: Any) -> None:
    vpc6 = ec2.create_vpc(CidrBlock="10.2.0.0/16", AmazonProvidedIpv6CidrBlock=True)["Vpc"]["VpcId"]
    state = desired(group("v6", vpc6))
    plan = aws_io.plan(ec2, state)
    revoked = [c.rule.peer for c in plan.changes if c.action is Action.REVOKE and c.rule]
    assert sorted(revoked) == ["0.0.0.0/0", "::/0"]
    aws_io.apply(ec2, plan)
    assert described(ec2, "v6", vpc6)["IpPermissionsEgress"] == []
    assert not aws_io.plan(ec2, state).has_changes


def test_default_vpc_and_vpc_option(ec2: Any, vpc: str) -> None:
    default_vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][
        0
    ]["VpcId"]
    plan = aws_io.plan(ec2, desired(group("anywhere", None)))
    assert plan.changes[0].target.vpc_id == default_vpc
    plan = aws_io.plan(ec2, desired(group("here", None), vpc_id=vpc))
    assert plan.changes[0].target.vpc_id == vpc


def test_unknown_group_id_and_vpc_are_input_errors(ec2: Any) -> None:
    with pytest.raises(InputError) as info:
        aws_io.plan(ec2, desired({"GroupId": "sg-0123456789abcdef0", "IpPermissions": []}))
    assert (
        "desired.yaml[0]:/SecurityGroups/0/GroupId: group sg-0123456789abcdef0 does not exist"
        in str(info.value)
    )
    with pytest.raises(InputError) as info:
        aws_io.plan(ec2, desired(group("x", "vpc-0000000000")))
    assert "VPC vpc-0000000000 does not exist" in str(info.value)


def test_a_pull_planned_as_desired_changes_nothing(ec2: Any, vpc: str) -> None:
    aws_io.apply(
        ec2,
        aws_io.plan(
            ec2,
            desired(
                group("web", vpc, IpPermissions=[https_from("10.0.0.0/8", "lb")]),
                group(
                    "api",
                    vpc,
                    IpPermissions=[
                        {"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupName": "web"}]}
                    ],
                ),
            ),
        ),
    )
    pulled = aws_io.pull(ec2, vpc_ids=[vpc])
    plan = aws_io.plan(ec2, parse_desired([Document(pulled, SourceRef("pull.json", 0))]))
    assert not plan.has_changes and not plan.refusals and plan.unchanged_groups == 3
