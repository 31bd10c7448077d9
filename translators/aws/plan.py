"""Plan security-group changes: desired groups (``convert --to aws`` output) against the account.

Pure: the account state comes in as describe-shaped data, so every decision here is tested
without AWS; ``polyfence.io.aws`` reads the state and carries a plan out.

Decisions (DESIGN §7, reference/aws.md §5.8):

* Groups are matched by ``GroupId`` when the desired group names one, otherwise by name within
  its VPC (names are unique per VPC, case-insensitively).
* Rules are compared as atoms (``aws_rules``). A rule whose only difference is its description
  becomes an ``update-description`` change (``UpdateSecurityGroupRuleDescriptions*``), which
  never opens a gap, rather than revoke + authorize.
* Tags: desired tags missing or different on an existing group are set; extra tags are left
  alone (other tools tag groups too). Created groups are tagged at creation, always with the
  ownership tag, so they are ours from their first instant.
* Ownership: any change to an existing group without the ownership tag is refused, for the
  whole plan (nothing is applied). Adopting a group is a deliberate manual tagging step.
* A new group starts with AWS's allow-all egress (and ``::/0`` in an IPv6 VPC); the plan
  revokes it when the desired group lacks it, after the desired egress has been added.
* Groups are never deleted: a group missing from the desired file is not ours to judge.
* Safe order: create groups -> tag -> authorize (ingress and egress) -> update descriptions
  -> revoke. Additions come before removals, so no change ever opens a window with less
  access than either the old or the new state.
"""

from __future__ import annotations

import copy
import enum
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from polyfence.errors import Diagnostic, InputError, PolyfenceError
from polyfence.model.document import Document
from polyfence.model.provenance import SourceRef
from polyfence.translators.aws.rules import (
    DESIRED,
    GROUP,
    MANAGED_TAG,
    MAX_TEXT,
    Rule,
    RuleKey,
    default_egress,
    expand_permission,
    rule_text,
    to_ip_permission,
)

_GROUP_TEXT = re.compile(r"^[a-zA-Z0-9 ._\-:/()#,@\[\]+=&;{}!$*]+$")


class AwsOperationError(PolyfenceError):
    """An AWS API call failed: one line ``operation group: code: message``.

    ``done`` lists the changes (as plan lines) that were applied before the failure, so a
    partial apply is reported, never hidden.
    """

    def __init__(
        self, operation: str, group: str, code: str, message: str, done: Sequence[str] = ()
    ) -> None:
        self.operation, self.group, self.code = operation, group, code
        self.aws_message = " ".join(message.split())
        self.done = tuple(done)
        super().__init__(f"{operation} {group}: {code}: {self.aws_message}".replace("  ", " "))

    def with_done(self, done: Sequence[str]) -> AwsOperationError:
        return AwsOperationError(self.operation, self.group, self.code, self.aws_message, done)


class OwnershipError(PolyfenceError):
    """The plan would change groups polyfence does not own; nothing is applied."""

    def __init__(self, refusals: Sequence[str]) -> None:
        self.refusals = tuple(refusals)
        super().__init__("; ".join(self.refusals))


class Action(enum.Enum):
    """Change kinds, declared in the order they are applied."""

    CREATE = "create-group"
    TAG = "tag"
    AUTHORIZE = "authorize"
    DESCRIBE = "update-description"
    REVOKE = "revoke"


_ORDER = {a: i for i, a in enumerate(Action)}
_SIGN = {
    Action.CREATE: "+",
    Action.TAG: "~",
    Action.AUTHORIZE: "+",
    Action.DESCRIBE: "~",
    Action.REVOKE: "-",
}


@dataclass(frozen=True, slots=True)
class DesiredGroup:
    """One group of the desired file, validated and normalised."""

    index: int
    name: str | None
    group_id: str | None
    vpc_id: str | None  # None: the region's default VPC
    description: str | None
    tags: tuple[tuple[str, str], ...]
    rules: tuple[Rule, ...]
    source: SourceRef

    @property
    def label(self) -> str:
        return self.name or self.group_id or f"#{self.index}"


@dataclass(frozen=True, slots=True)
class DesiredState:
    groups: tuple[DesiredGroup, ...]
    ignored_documents: int


@dataclass(frozen=True, slots=True)
class ActualGroup:
    """A group as the account has it (from ``describe_security_groups``)."""

    group_id: str
    name: str
    vpc_id: str | None
    description: str
    tags: tuple[tuple[str, str], ...]
    rules: tuple[Rule, ...]

    @property
    def owned(self) -> bool:
        return MANAGED_TAG in self.tags


@dataclass(frozen=True, slots=True)
class AccountState:
    groups: tuple[ActualGroup, ...]
    default_vpc: str | None = None
    ipv6_vpcs: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Target:
    """The group a change applies to; ``group_id`` is None until a created group has one."""

    index: int
    label: str
    name: str | None
    group_id: str | None
    vpc_id: str
    description: str | None


@dataclass(frozen=True, slots=True)
class Change:
    action: Action
    target: Target
    rule: RuleKey | None = None
    description: str = ""
    previous: str = ""
    tags: tuple[tuple[str, str], ...] = ()
    peer_label: str = ""
    peer_name: str = ""  # a desired group referenced by name, not created yet

    def text(self) -> str:
        """One plan line: ``+``/``-``/``~``, the group, what changes."""
        t = self.target
        head = f"{_SIGN[self.action]} {t.label}"
        if self.action is Action.CREATE:
            return f'{head}: create group in {t.vpc_id} "{t.description}"'
        if self.action is Action.TAG:
            return f"{head}: tag " + ", ".join(f"{k}={v}" for k, v in self.tags)
        assert self.rule is not None
        if self.action is Action.DESCRIBE:
            line = rule_text(self.rule, self.peer_label)
            return f'{head}: {line} description "{self.previous}" -> "{self.description}"'
        return f"{head}: {rule_text(self.rule, self.peer_label, self.description)}"

    def to_dict(self) -> dict[str, Any]:
        t = self.target
        out: dict[str, Any] = {
            "action": self.action.value,
            "group": t.label,
            "groupName": t.name,
            "groupId": t.group_id,
            "vpcId": t.vpc_id,
        }
        if self.action is Action.CREATE:
            out["description"] = t.description
        if self.tags:
            out["tags"] = [{"Key": k, "Value": v} for k, v in self.tags]
        if self.rule is not None:
            ref = {"GroupName": self.peer_name} if self.rule.peer_kind == DESIRED else None
            desc = None if self.action is Action.REVOKE else self.description
            if self.action is Action.AUTHORIZE:
                desc = desc or None  # as apply sends it
            out["direction"] = self.rule.direction
            out["permission"] = to_ip_permission(self.rule, desc, ref)
        if self.action is Action.DESCRIBE:
            out["previousDescription"] = self.previous
        return out


@dataclass(frozen=True, slots=True)
class Plan:
    changes: tuple[Change, ...]
    refusals: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    ignored_documents: int = 0
    unchanged_groups: int = 0

    @property
    def has_changes(self) -> bool:
        return bool(self.changes)

    def summary(self) -> dict[str, int]:
        counts = {a.value: 0 for a in Action}
        for change in self.changes:
            counts[change.action.value] += 1
        return counts

    def to_dict(self) -> dict[str, Any]:
        return {
            "changes": [c.to_dict() for c in self.changes],
            "summary": self.summary(),
            "unchangedGroups": self.unchanged_groups,
            "refusals": list(self.refusals),
            "notes": list(self.notes),
            "ignoredDocuments": self.ignored_documents,
        }

    def render(self) -> str:
        """The plan as text: one line per change, then notes and a summary line."""
        lines = [c.text() for c in self.changes]
        lines += [f"! refused: {r}" for r in self.refusals]
        lines += [f"# note: {n}" for n in self.notes]
        if self.changes:
            counts = ", ".join(f"{n} {a}" for a, n in self.summary().items() if n)
            summary = f"plan: {len(self.changes)} changes ({counts})"
        else:
            summary = "plan: no changes"
        summary += f"; {self.unchanged_groups} groups unchanged"
        if self.ignored_documents:
            n = self.ignored_documents
            summary += f"; {n} document{'s' if n != 1 else ''} without SecurityGroups ignored"
        lines.append(summary)
        return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- reading


def _tags(raw: Any, where: SourceRef, problems: list[Diagnostic]) -> tuple[tuple[str, str], ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        problems.append(Diagnostic(where, "Tags must be a list of {Key, Value}"))
        return ()
    tags: dict[str, str] = {}
    for i, tag in enumerate(raw):
        key = tag.get("Key") if isinstance(tag, Mapping) else None
        value = tag.get("Value", "") if isinstance(tag, Mapping) else None
        if not isinstance(key, str) or not key or len(key) > 128 or not isinstance(value, str):
            problems.append(
                Diagnostic(where.child(i), "a tag needs a string Key (1-128) and Value")
            )
            continue
        tags[key] = value
    return tuple(sorted(tags.items()))


def _group_text(value: Any, where: SourceRef, what: str, problems: list[Diagnostic]) -> str | None:
    if not isinstance(value, str) or len(value) > MAX_TEXT or not _GROUP_TEXT.match(value):
        problems.append(
            Diagnostic(
                where,
                f"{what} must be 1-{MAX_TEXT} characters of a-zA-Z0-9, space and ._-:/()#,@[]+=&;{{}}!$*",
            )
        )
        return None
    return value


def parse_desired(documents: Iterable[Document], vpc_id: str | None = None) -> DesiredState:
    """The desired groups of every document with a ``SecurityGroups`` list; all problems at once.

    Other documents (e.g. SecurityGroupPolicy manifests) are counted and ignored. ``vpc_id``
    (``--vpc-id``) is the VPC of groups that do not name one; naming another one is an error.
    """
    problems: list[Diagnostic] = []
    groups: list[DesiredGroup] = []
    ignored = 0
    for doc in documents:
        raw = doc.data.get("SecurityGroups") if isinstance(doc.data, dict) else None
        if raw is None:
            ignored += 1
            continue
        base = doc.source.child("SecurityGroups")
        if not isinstance(raw, list):
            problems.append(Diagnostic(base, "SecurityGroups must be a list"))
            continue
        names: dict[str, list[int]] = {}
        for i, g in enumerate(raw):
            if isinstance(g, Mapping) and isinstance(g.get("GroupName"), str):
                names.setdefault(g["GroupName"].lower(), []).append(len(groups) + i)
        first = len(groups)
        for i, g in enumerate(raw):
            groups.append(_parse_group(first + i, g, base.child(i), names, vpc_id, problems))
    if not groups and not problems:
        problems.append(Diagnostic(SourceRef(), "no document with a SecurityGroups list"))
    seen: dict[tuple[str | None, str], SourceRef] = {}
    for g in groups:
        ident = (None, g.group_id) if g.group_id else (g.vpc_id, (g.name or "").lower())
        if ident in seen:
            problems.append(
                Diagnostic(g.source, f"group {g.label!r} is also defined at {seen[ident]}")
            )
        seen.setdefault(ident, g.source)
    if problems:
        raise InputError(problems)
    return DesiredState(tuple(groups), ignored)


def _parse_group(
    index: int,
    g: Any,
    where: SourceRef,
    names: Mapping[str, list[int]],
    vpc_id: str | None,
    problems: list[Diagnostic],
) -> DesiredGroup:
    empty = DesiredGroup(index, None, None, None, None, (), (), where)
    if not isinstance(g, Mapping):
        problems.append(Diagnostic(where, "a security group must be a mapping"))
        return empty
    group_id, name = g.get("GroupId"), g.get("GroupName")
    if group_id is not None and not (
        isinstance(group_id, str) and re.match(r"^sg-[0-9a-zA-Z]+$", group_id)
    ):
        problems.append(Diagnostic(where.child("GroupId"), "GroupId must be an sg-… id"))
        group_id = None
    if group_id is None and name is None:
        problems.append(
            Diagnostic(where, "a group needs a GroupName (new or by name) or a GroupId")
        )
    if name is not None:
        name = _group_text(name, where.child("GroupName"), "GroupName", problems)
        if name is not None and name.lower().startswith("sg-"):
            problems.append(
                Diagnostic(where.child("GroupName"), "GroupName must not start with sg-")
            )
    description = g.get("Description")
    if description is not None or group_id is None:
        description = _group_text(description, where.child("Description"), "Description", problems)
    own_vpc = g.get("VpcId")
    if own_vpc is not None and not (isinstance(own_vpc, str) and own_vpc.startswith("vpc-")):
        problems.append(Diagnostic(where.child("VpcId"), "VpcId must be a vpc-… id"))
        own_vpc = None
    if own_vpc and vpc_id and own_vpc != vpc_id:
        problems.append(
            Diagnostic(where.child("VpcId"), f"group is in {own_vpc}, not in --vpc-id {vpc_id}")
        )
    tags = dict(_tags(g.get("Tags"), where.child("Tags"), problems))

    def resolve(ref: str) -> str | None:
        hits = names.get(ref.lower(), [])
        return str(hits[0]) if len(hits) == 1 else None

    rules: dict[RuleKey, Rule] = {}
    for field_name, egress in (("IpPermissions", False), ("IpPermissionsEgress", True)):
        perms = g.get(field_name) or []
        if not isinstance(perms, list):
            problems.append(Diagnostic(where.child(field_name), f"{field_name} must be a list"))
            continue
        for j, perm in enumerate(perms):
            at = where.child(field_name, j)
            for rule in expand_permission(perm, egress, at, problems, resolve):
                other = rules.setdefault(rule.key, rule)
                if other.description != rule.description:
                    problems.append(
                        Diagnostic(
                            at,
                            f"the same rule is given twice with descriptions {other.description!r} and {rule.description!r}",
                        )
                    )
    return DesiredGroup(
        index,
        name,
        group_id,
        own_vpc or vpc_id,
        description,
        tuple(sorted(tags.items())),
        tuple(rules.values()),
        where,
    )


def actual_group(data: Mapping[str, Any]) -> ActualGroup:
    """An ``ActualGroup`` from one ``describe_security_groups`` entry."""
    ignored: list[Diagnostic] = []  # AWS output is trusted; unknown shapes are skipped
    rules: dict[RuleKey, Rule] = {}
    for field_name, egress in (("IpPermissions", False), ("IpPermissionsEgress", True)):
        for perm in data.get(field_name) or []:
            for rule in expand_permission(perm, egress, SourceRef(), ignored):
                rules.setdefault(rule.key, rule)
    tags = tuple(sorted((t["Key"], t.get("Value", "")) for t in data.get("Tags") or []))
    return ActualGroup(
        data["GroupId"],
        data.get("GroupName", ""),
        data.get("VpcId"),
        data.get("Description", ""),
        tags,
        tuple(rules.values()),
    )


# --------------------------------------------------------------------------- planning


def build_plan(desired: DesiredState, state: AccountState) -> Plan:
    """The changes that make the account match ``desired``, in safe order."""
    by_id = {g.group_id: g for g in state.groups}
    by_name = {(g.vpc_id, g.name.lower()): g for g in state.groups}
    problems: list[Diagnostic] = []
    matched: list[tuple[DesiredGroup, ActualGroup | None, str]] = []
    for g in desired.groups:
        actual: ActualGroup | None
        if g.group_id:
            actual = by_id.get(g.group_id)
            if actual is None:
                problems.append(
                    Diagnostic(g.source.child("GroupId"), f"group {g.group_id} does not exist")
                )
                continue
            vpc = actual.vpc_id or g.vpc_id or ""
            if g.vpc_id and actual.vpc_id != g.vpc_id:
                problems.append(
                    Diagnostic(
                        g.source, f"group {g.group_id} is in {actual.vpc_id}, not {g.vpc_id}"
                    )
                )
        else:
            vpc = g.vpc_id or state.default_vpc or ""
            if not vpc:
                problems.append(
                    Diagnostic(g.source, "no VpcId, no --vpc-id and the region has no default VPC")
                )
                continue
            actual = by_name.get((vpc, (g.name or "").lower()))
        matched.append((g, actual, vpc))
    if problems:
        raise InputError(problems)

    peers = _Peers(state, matched)
    changes: list[Change] = []
    refusals: list[str] = []
    notes: list[str] = []
    unchanged = 0
    for g, actual, vpc in matched:
        target = Target(
            g.index, g.label, g.name, actual.group_id if actual else None, vpc, g.description
        )
        mine: list[Change] = []
        if actual is None:
            owned = dict(g.tags) | dict([MANAGED_TAG])  # ours from the first instant
            mine.append(Change(Action.CREATE, target, tags=tuple(sorted(owned.items()))))
            have = {r.key: r for r in default_egress(vpc in state.ipv6_vpcs)}
        else:
            have = {r.key: r for r in actual.rules}
            current = dict(actual.tags)
            missing = tuple((k, v) for k, v in g.tags if current.get(k) != v)
            if missing:
                mine.append(Change(Action.TAG, target, tags=missing))
            notes.extend(_notes(g, actual))
        want = {peers.resolved(r.key): r for r in g.rules}
        for key in sorted(want.keys() - have.keys(), key=RuleKey.sort_key):
            mine.append(peers.change(Action.AUTHORIZE, target, key, want[key].description))
        for key in sorted(want.keys() & have.keys(), key=RuleKey.sort_key):
            if want[key].description != have[key].description:
                mine.append(
                    peers.change(
                        Action.DESCRIBE, target, key, want[key].description, have[key].description
                    )
                )
        for key in sorted(have.keys() - want.keys(), key=RuleKey.sort_key):
            mine.append(peers.change(Action.REVOKE, target, key, have[key].description))
        if actual is not None and not actual.owned and mine:
            who = g.label if g.label == actual.group_id else f"{g.label} ({actual.group_id})"
            refusals.append(
                f"{who} is not tagged {MANAGED_TAG[0]}={MANAGED_TAG[1]}; "
                f"{len(mine)} changes would touch it (tag it yourself to let polyfence manage it)"
            )
        if not mine:
            unchanged += 1
        changes.extend(mine)
    changes.sort(key=lambda c: (_ORDER[c.action], c.target.index))  # stable: rule order kept
    return Plan(tuple(changes), tuple(refusals), tuple(notes), desired.ignored_documents, unchanged)


def _notes(g: DesiredGroup, actual: ActualGroup) -> list[str]:
    """Differences AWS cannot change in place: reported, never acted on."""
    notes = []
    if g.description is not None and g.description != actual.description:
        notes.append(
            f"{g.label}: description differs from the account's {actual.description!r};"
            " AWS cannot change it (recreate the group to change it)"
        )
    if g.name and g.group_id and g.name != actual.name:
        notes.append(f"{g.label}: {g.group_id} is named {actual.name!r}; AWS cannot rename groups")
    return notes


class _Peers:
    """Group references: desired names resolved to ids where the group exists, and labels."""

    def __init__(
        self, state: AccountState, matched: Sequence[tuple[DesiredGroup, ActualGroup | None, str]]
    ) -> None:
        self.ids = {str(g.index): a.group_id for g, a, _ in matched if a is not None}
        self.names = {str(g.index): g.label for g, _, _ in matched}
        self.by_id = {a.group_id: a.name for a in state.groups}
        self.by_id.update({a.group_id: g.label for g, a, _ in matched if a is not None})

    def resolved(self, key: RuleKey) -> RuleKey:
        if key.peer_kind == DESIRED and key.peer in self.ids:
            return key.with_peer(GROUP, self.ids[key.peer])
        return key

    def label(self, key: RuleKey) -> str:
        if key.peer_kind == DESIRED:
            return f"group {self.names[key.peer]} (new)"
        if key.peer_kind == GROUP:
            name = self.by_id.get(key.peer)
            return f"group {key.peer} ({name})" if name else f"group {key.peer}"
        return key.peer

    def change(
        self, action: Action, target: Target, key: RuleKey, description: str, previous: str = ""
    ) -> Change:
        name = self.names[key.peer] if key.peer_kind == DESIRED else ""
        return Change(action, target, key, description, previous, (), self.label(key), name)


def group_ids_by_name(desired: DesiredState, state: AccountState) -> dict[str, str]:
    """Lower-cased GroupName -> GroupId for the desired groups the account has (same VPC)."""
    out: dict[str, str] = {}
    for g in desired.groups:
        if g.name is None:
            continue
        vpc = g.vpc_id or state.default_vpc
        for actual in state.groups:
            if actual.vpc_id == vpc and actual.name.lower() == g.name.lower():
                out[g.name.lower()] = actual.group_id
    return out


def bind_group_ids(
    documents: Iterable[Document], ids: Mapping[str, str]
) -> tuple[list[dict[str, Any]], list[str]]:
    """The SecurityGroupPolicy manifests of a desired file with group names replaced by the
    account's ids (the EKS VPC resource controller needs ``sg-…`` ids), and the names left
    unresolved (groups not created yet)."""
    out: list[dict[str, Any]] = []
    missing: list[str] = []
    for doc in documents:
        data = doc.data
        if not (isinstance(data, dict) and data.get("kind") == "SecurityGroupPolicy"):
            continue
        manifest = copy.deepcopy(data)
        groups = (manifest.get("spec") or {}).get("securityGroups") or {}
        resolved = []
        for entry in groups.get("groupIds") or []:
            text = str(entry)
            if text.startswith("sg-"):
                resolved.append(text)
            elif text.lower() in ids:
                resolved.append(ids[text.lower()])
            else:
                resolved.append(text)
                missing.append(text)
        if groups:
            groups["groupIds"] = resolved
        out.append(manifest)
    return out, sorted(set(missing))
