"""EC2 security groups through boto3: read them, plan against them, apply a plan safely.

The only module that imports boto3/botocore (DESIGN §2). Every function takes the EC2 client
as an argument, so tests hand in a client pointed at moto's server or wrapped in a botocore
``Stubber``; ``make_client`` builds one from the usual AWS settings.

Every call goes through ``call``: throttling (``RequestLimitExceeded``, ``Throttling``,
``ThrottlingException``) is retried with exponential backoff and full jitter, a bounded number
of times, with an injectable sleep; botocore's own retries are switched off so this is the
one retry policy. Any other failure becomes an ``AwsOperationError`` whose message is one line
``Operation group: code: message``. Apply treats ``InvalidPermission.Duplicate`` (authorize)
and ``InvalidPermission.NotFound`` (revoke) as already done, so re-running after a partial
failure converges.
"""

from __future__ import annotations

import json
import random
import time
import urllib.parse
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, ProfileNotFound

from polyfence.errors import ConfigError, Diagnostic, InputError
from polyfence.translators.aws.plan import (
    AccountState,
    Action,
    AwsOperationError,
    Change,
    DesiredState,
    OwnershipError,
    Plan,
    actual_group,
    build_plan,
)
from polyfence.translators.aws.rules import DESIRED, to_ip_permission

THROTTLING = frozenset({"RequestLimitExceeded", "Throttling", "ThrottlingException"})
PAGE_SIZE = 1000
MAX_PAGES = 10_000


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Bounded exponential backoff with full jitter (delay = U(0, min(cap, base * 2**n)))."""

    max_attempts: int = 6
    base_delay: float = 0.5
    max_delay: float = 20.0
    sleep: Callable[[float], None] = time.sleep
    jitter: Callable[[], float] = random.random

    def delay(self, attempt: int) -> float:
        return self.jitter() * min(self.max_delay, self.base_delay * 2.0**attempt)


DEFAULT_RETRY = RetryPolicy()


def make_client(
    region: str | None = None, profile: str | None = None, endpoint_url: str | None = None
) -> Any:
    """An EC2 client from the usual AWS settings (env, config files, profile) plus overrides."""
    try:
        session = boto3.session.Session(profile_name=profile, region_name=region)
    except ProfileNotFound as exc:
        raise ConfigError(str(exc)) from None
    if not session.region_name:
        raise ConfigError("no AWS region: pass --region or set AWS_REGION / AWS_DEFAULT_REGION")
    config = Config(
        retries={"total_max_attempts": 1, "mode": "standard"},
        connect_timeout=10,
        read_timeout=60,
        user_agent_extra="polyfence",
    )
    if endpoint_url is not None:
        parts = urllib.parse.urlsplit(endpoint_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(
                f"--endpoint-url {endpoint_url!r} is not an http(s) URL (e.g. http://127.0.0.1:5000)"
            )
    return session.client("ec2", endpoint_url=endpoint_url, config=config)


def _api_name(client: Any, operation: str) -> str:
    mapping = getattr(getattr(client, "meta", None), "method_to_api_mapping", {}) or {}
    return str(mapping.get(operation, operation))


def call(
    client: Any,
    operation: str,
    group: str,
    retry: RetryPolicy = DEFAULT_RETRY,
    tolerate: frozenset[str] = frozenset(),
    **params: Any,
) -> dict[str, Any]:
    """One API call with throttling retries; errors in ``tolerate`` return ``{}``."""
    method = getattr(client, operation)
    attempts = max(1, retry.max_attempts)
    for attempt in range(attempts):
        try:
            return dict(method(**params))
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code") or "Unknown")
            if code in tolerate:
                return {}
            message = str(error.get("Message") or exc)
            if code in THROTTLING:
                if attempt + 1 < attempts:
                    retry.sleep(retry.delay(attempt))
                    continue
                message += f" (gave up after {attempts} attempts)"
            raise AwsOperationError(exc.operation_name, group, code, message) from None
        except BotoCoreError as exc:
            raise AwsOperationError(
                _api_name(client, operation), group, type(exc).__name__, str(exc)
            ) from None
    raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover


# --------------------------------------------------------------------------- reading


def _filters(
    vpc_ids: Iterable[str], group_ids: Iterable[str], tags: Iterable[tuple[str, str]]
) -> list[dict[str, Any]]:
    filters: list[dict[str, Any]] = []
    if vpcs := sorted(set(vpc_ids)):
        filters.append({"Name": "vpc-id", "Values": vpcs})
    if ids := sorted(set(group_ids)):
        filters.append({"Name": "group-id", "Values": ids})
    by_key: dict[str, list[str]] = {}
    for key, value in tags:
        by_key.setdefault(key, []).append(value)
    for key, values in sorted(by_key.items()):  # keys AND together, values of one key OR
        filters.append({"Name": f"tag:{key}", "Values": sorted(set(values))})
    return filters


def describe_groups(
    client: Any,
    vpc_ids: Iterable[str] = (),
    group_ids: Iterable[str] = (),
    tags: Iterable[tuple[str, str]] = (),
    retry: RetryPolicy = DEFAULT_RETRY,
    page_size: int = PAGE_SIZE,
    max_pages: int = MAX_PAGES,
) -> list[dict[str, Any]]:
    """Every group matching the filters, following ``NextToken`` (bounded), in describe shape."""
    filters = _filters(vpc_ids, group_ids, tags)
    label = " ".join(f"{f['Name']}={','.join(f['Values'])}" for f in filters) or "(all groups)"
    params: dict[str, Any] = {"MaxResults": page_size}
    if filters:
        params["Filters"] = filters
    groups: list[dict[str, Any]] = []
    token: str | None = None
    for _ in range(max_pages):
        page_params = {**params, "NextToken": token} if token else params
        page = call(client, "describe_security_groups", label, retry, **page_params)
        groups.extend(page.get("SecurityGroups") or [])
        token = page.get("NextToken")
        if not token:
            return groups
    raise AwsOperationError(
        "DescribeSecurityGroups", label, "TooManyPages", f"more than {max_pages} pages"
    )


def _canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _sorted_group(group: Mapping[str, Any]) -> dict[str, Any]:
    """The same describe entry with every list in a stable order (so diffs of pulls are real)."""
    out = dict(group)
    if isinstance(out.get("Tags"), list):
        out["Tags"] = sorted(out["Tags"], key=lambda t: (t.get("Key", ""), t.get("Value", "")))
    for field in ("IpPermissions", "IpPermissionsEgress"):
        perms = []
        for perm in out.get(field) or []:
            perm = dict(perm)
            for sources in ("IpRanges", "Ipv6Ranges", "PrefixListIds", "UserIdGroupPairs"):
                if isinstance(perm.get(sources), list):
                    perm[sources] = sorted(perm[sources], key=_canonical_json)
            perms.append(perm)
        if field in out:
            out[field] = sorted(perms, key=_canonical_json)
    return out


def pull(
    client: Any,
    vpc_ids: Iterable[str] = (),
    group_ids: Iterable[str] = (),
    tags: Iterable[tuple[str, str]] = (),
    retry: RetryPolicy = DEFAULT_RETRY,
) -> dict[str, Any]:
    """``{"SecurityGroups": [...]}`` exactly as describe prints it, sorted deterministically."""
    groups = describe_groups(client, vpc_ids, group_ids, tags, retry)
    ordered = sorted(
        (_sorted_group(g) for g in groups),
        key=lambda g: (g.get("VpcId") or "", g.get("GroupName") or "", g.get("GroupId") or ""),
    )
    return {"SecurityGroups": ordered}


def read_state(
    client: Any, desired: DesiredState, retry: RetryPolicy = DEFAULT_RETRY
) -> AccountState:
    """The groups the desired file can touch: those in its VPCs and those it names by id."""
    default_vpc: str | None = None
    if any(g.vpc_id is None and g.group_id is None for g in desired.groups):
        vpcs = (
            call(
                client,
                "describe_vpcs",
                "(default VPC)",
                retry,
                Filters=[{"Name": "is-default", "Values": ["true"]}],
            ).get("Vpcs")
            or []
        )
        default_vpc = vpcs[0]["VpcId"] if vpcs else None
    wanted = {g.vpc_id or default_vpc for g in desired.groups if g.group_id is None}
    vpc_ids = sorted(v for v in wanted if v)
    ipv6: set[str] = set()
    if vpc_ids:
        found = (
            call(
                client,
                "describe_vpcs",
                ",".join(vpc_ids),
                retry,
                Filters=[{"Name": "vpc-id", "Values": vpc_ids}],
            ).get("Vpcs")
            or []
        )
        known = {v["VpcId"] for v in found}
        missing = [
            Diagnostic(g.source, f"VPC {g.vpc_id} does not exist in this region")
            for g in desired.groups
            if g.group_id is None and g.vpc_id and g.vpc_id not in known
        ]
        if missing:
            raise InputError(missing)
        for v in found:
            assocs = v.get("Ipv6CidrBlockAssociationSet") or []
            if any(
                (a.get("Ipv6CidrBlockState") or {}).get("State", "associated") == "associated"
                for a in assocs
            ):
                ipv6.add(v["VpcId"])
    groups: dict[str, dict[str, Any]] = {}
    if vpc_ids:
        for g in describe_groups(client, vpc_ids=vpc_ids, retry=retry):
            groups[g["GroupId"]] = g
    by_id = [g.group_id for g in desired.groups if g.group_id and g.group_id not in groups]
    if by_id:
        for g in describe_groups(client, group_ids=by_id, retry=retry):
            groups[g["GroupId"]] = g
    return AccountState(
        tuple(actual_group(g) for g in groups.values()), default_vpc, frozenset(ipv6)
    )


def plan(client: Any, desired: DesiredState, retry: RetryPolicy = DEFAULT_RETRY) -> Plan:
    """Read the account and plan the changes that make it match ``desired``."""
    return build_plan(desired, read_state(client, desired, retry))


# --------------------------------------------------------------------------- applying


def apply(client: Any, plan_: Plan, retry: RetryPolicy = DEFAULT_RETRY) -> tuple[Change, ...]:
    """Carry out a plan in its (safe) order and return the changes made.

    Refuses up front (``OwnershipError``, nothing applied) if the plan touches groups that are
    not ours. On a failure part-way, the ``AwsOperationError`` lists what was already done.
    """
    if plan_.refusals:
        raise OwnershipError(plan_.refusals)
    ids = {c.target.index: c.target.group_id for c in plan_.changes if c.target.group_id}
    done: list[Change] = []
    for change in plan_.changes:
        try:
            _execute(client, change, ids, retry)
        except AwsOperationError as exc:
            raise exc.with_done([c.text() for c in done]) from None
        done.append(change)
    return tuple(done)


def _execute(client: Any, change: Change, ids: dict[int, str], retry: RetryPolicy) -> None:
    target = change.target
    if change.action is Action.CREATE:
        response = call(
            client,
            "create_security_group",
            target.label,
            retry,
            GroupName=target.name,
            Description=target.description,
            VpcId=target.vpc_id,
            TagSpecifications=[{"ResourceType": "security-group", "Tags": _tag_list(change.tags)}],
        )
        ids[target.index] = response["GroupId"]
        return
    group_id = ids[target.index]
    label = f"{target.label} ({group_id})" if target.label != group_id else group_id
    if change.action is Action.TAG:
        call(client, "create_tags", label, retry, Resources=[group_id], Tags=_tag_list(change.tags))
        return
    rule = change.rule
    assert rule is not None
    ref = {"GroupId": ids[int(rule.peer)]} if rule.peer_kind == DESIRED else None
    if change.action is Action.AUTHORIZE:
        permission = to_ip_permission(rule, change.description or None, ref)
        operation, tolerate = (
            f"authorize_security_group_{rule.direction}",
            "InvalidPermission.Duplicate",
        )
    elif change.action is Action.DESCRIBE:
        permission = to_ip_permission(rule, change.description, ref)
        operation, tolerate = f"update_security_group_rule_descriptions_{rule.direction}", ""
    else:
        permission = to_ip_permission(rule, None, ref)
        operation, tolerate = (
            f"revoke_security_group_{rule.direction}",
            "InvalidPermission.NotFound",
        )
    call(
        client,
        operation,
        label,
        retry,
        frozenset({tolerate} - {""}),
        GroupId=group_id,
        IpPermissions=[permission],
    )


def _tag_list(tags: Sequence[tuple[str, str]]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in tags]
