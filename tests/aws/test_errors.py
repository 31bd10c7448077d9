"""What moto cannot produce, through botocore's Stubber: throttling, limits, partial failures, pages."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from polyfence.io import aws as aws_io
from polyfence.model.document import Document
from polyfence.model.provenance import SourceRef
from polyfence.translators.aws.plan import (
    AccountState,
    Action,
    ActualGroup,
    AwsOperationError,
    OwnershipError,
    Plan,
    build_plan,
    parse_desired,
)

VPC = "vpc-0a"
MANAGED = {"Key": "polyfence.dev/managed-by", "Value": "polyfence"}


@pytest.fixture
def stubbed() -> Iterator[tuple[Any, Stubber]]:
    client = boto3.client(
        "ec2",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def no_sleep(log: list[float]) -> aws_io.RetryPolicy:
    return aws_io.RetryPolicy(max_attempts=4, base_delay=0.5, sleep=log.append, jitter=lambda: 1.0)


def throttle(stubber: Stubber, operation: str, code: str = "RequestLimitExceeded") -> None:
    stubber.add_client_error(
        operation,
        service_error_code=code,
        service_message="Request limit exceeded.",
        http_status_code=503,
    )


def web_plan() -> Plan:
    """A new group ``web`` with two ingress rules and no egress: create, 2 x authorize, revoke."""
    doc = {
        "SecurityGroups": [
            {
                "GroupName": "web",
                "Description": "web",
                "VpcId": VPC,
                "IpPermissions": [
                    {
                        "IpProtocol": "tcp",
                        "FromPort": 80,
                        "ToPort": 80,
                        "IpRanges": [{"CidrIp": "10.0.0.0/8"}],
                    },
                    {
                        "IpProtocol": "tcp",
                        "FromPort": 443,
                        "ToPort": 443,
                        "IpRanges": [{"CidrIp": "10.0.0.0/8"}],
                    },
                ],
            }
        ]
    }
    state = parse_desired([Document(doc, SourceRef("d.json", 0))])
    plan = build_plan(state, AccountState((), None))
    assert [c.action for c in plan.changes] == [
        Action.CREATE,
        Action.AUTHORIZE,
        Action.AUTHORIZE,
        Action.REVOKE,
    ]
    return plan


def test_throttling_is_retried_with_backoff_then_succeeds(stubbed: tuple[Any, Stubber]) -> None:
    client, stubber = stubbed
    throttle(stubber, "describe_security_groups")
    throttle(stubber, "describe_security_groups", "Throttling")
    stubber.add_response(
        "describe_security_groups", {"SecurityGroups": [{"GroupId": "sg-1", "GroupName": "a"}]}
    )
    sleeps: list[float] = []
    groups = aws_io.describe_groups(client, vpc_ids=[VPC], retry=no_sleep(sleeps))
    assert [g["GroupId"] for g in groups] == ["sg-1"]
    assert sleeps == [0.5, 1.0]  # exponential; jitter pinned to its maximum


def test_backoff_is_capped_and_jittered() -> None:
    policy = aws_io.RetryPolicy(base_delay=1.0, max_delay=4.0, jitter=lambda: 0.5)
    assert [policy.delay(n) for n in range(5)] == [0.5, 1.0, 2.0, 2.0, 2.0]


def test_throttling_exhausted_is_one_line(stubbed: tuple[Any, Stubber]) -> None:
    client, stubber = stubbed
    for _ in range(4):
        throttle(stubber, "describe_security_groups", "ThrottlingException")
    sleeps: list[float] = []
    with pytest.raises(AwsOperationError) as info:
        aws_io.describe_groups(client, vpc_ids=[VPC], retry=no_sleep(sleeps))
    assert len(sleeps) == 3
    message = str(info.value)
    assert "\n" not in message
    assert message == (
        f"DescribeSecurityGroups vpc-id={VPC}: ThrottlingException: "
        "Request limit exceeded. (gave up after 4 attempts)"
    )


def test_pagination_follows_next_token(stubbed: tuple[Any, Stubber]) -> None:
    client, stubber = stubbed
    filters = [{"Name": "vpc-id", "Values": [VPC]}]
    stubber.add_response(
        "describe_security_groups",
        {"SecurityGroups": [{"GroupId": "sg-1"}, {"GroupId": "sg-2"}], "NextToken": "t1"},
        {"Filters": filters, "MaxResults": 1000},
    )
    stubber.add_response(
        "describe_security_groups",
        {"SecurityGroups": [{"GroupId": "sg-3"}], "NextToken": "t2"},
        {"Filters": filters, "MaxResults": 1000, "NextToken": "t1"},
    )
    stubber.add_response(
        "describe_security_groups",
        {"SecurityGroups": [{"GroupId": "sg-4"}]},
        {"Filters": filters, "MaxResults": 1000, "NextToken": "t2"},
    )
    groups = aws_io.describe_groups(client, vpc_ids=[VPC])
    assert [g["GroupId"] for g in groups] == ["sg-1", "sg-2", "sg-3", "sg-4"]


def test_pagination_is_bounded(stubbed: tuple[Any, Stubber]) -> None:
    client, stubber = stubbed
    for i in range(3):
        stubber.add_response(
            "describe_security_groups", {"SecurityGroups": [], "NextToken": f"t{i}"}
        )
    with pytest.raises(AwsOperationError, match="TooManyPages"):
        aws_io.describe_groups(client, max_pages=3)


def test_rule_limit_names_operation_and_group_and_what_was_done(
    stubbed: tuple[Any, Stubber],
) -> None:
    client, stubber = stubbed
    stubber.add_response(
        "create_security_group",
        {"GroupId": "sg-new"},
        {
            "GroupName": "web",
            "Description": "web",
            "VpcId": VPC,
            "TagSpecifications": [{"ResourceType": "security-group", "Tags": [MANAGED]}],
        },
    )
    stubber.add_response(
        "authorize_security_group_ingress",
        {"Return": True},
        {
            "GroupId": "sg-new",
            "IpPermissions": [
                {
                    "IpProtocol": "tcp",
                    "FromPort": 80,
                    "ToPort": 80,
                    "IpRanges": [{"CidrIp": "10.0.0.0/8"}],
                }
            ],
        },
    )
    stubber.add_client_error(
        "authorize_security_group_ingress",
        service_error_code="RulesPerSecurityGroupLimitExceeded",
        service_message="The maximum number of rules per security group\nhas been reached.",
    )
    with pytest.raises(AwsOperationError) as info:
        aws_io.apply(client, web_plan(), retry=no_sleep([]))
    error = info.value
    assert str(error) == (
        "AuthorizeSecurityGroupIngress web (sg-new): RulesPerSecurityGroupLimitExceeded: "
        "The maximum number of rules per security group has been reached."
    )
    # partial failure: what was applied is reported; the revoke never ran (stubber is empty)
    assert error.done == (
        f'+ web: create group in {VPC} "web"',
        "+ web: ingress tcp 80 from 10.0.0.0/8",
    )


def test_duplicate_and_not_found_count_as_done(stubbed: tuple[Any, Stubber]) -> None:
    client, stubber = stubbed
    stubber.add_response("create_security_group", {"GroupId": "sg-new"})
    stubber.add_client_error("authorize_security_group_ingress", "InvalidPermission.Duplicate")
    stubber.add_response("authorize_security_group_ingress", {"Return": True})
    stubber.add_client_error(
        "revoke_security_group_egress",
        "InvalidPermission.NotFound",
        expected_params={
            "GroupId": "sg-new",
            "IpPermissions": [{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}],
        },
    )
    plan = web_plan()
    assert aws_io.apply(client, plan) == plan.changes


def test_unowned_existing_group_is_refused_before_any_call(stubbed: tuple[Any, Stubber]) -> None:
    client, _ = stubbed  # no responses queued: any call would fail the test
    actual = ActualGroup("sg-1", "web", VPC, "web", (), ())
    doc = {
        "SecurityGroups": [
            {
                "GroupName": "web",
                "Description": "web",
                "VpcId": VPC,
                "IpPermissionsEgress": [
                    {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}
                ],
            }
        ]
    }
    plan = build_plan(
        parse_desired([Document(doc, SourceRef("d.json", 0))]), AccountState((actual,))
    )
    assert plan.refusals
    with pytest.raises(OwnershipError):
        aws_io.apply(client, plan)


def test_connection_failure_is_one_line() -> None:
    client = aws_io.make_client(region="us-east-1", endpoint_url="http://127.0.0.1:9")
    with pytest.raises(AwsOperationError) as info:
        aws_io.describe_groups(client, group_ids=["sg-1"])
    message = str(info.value)
    assert message.startswith("DescribeSecurityGroups group-id=sg-1: EndpointConnectionError: ")
    assert "\n" not in message
