"""Security-group rules as normalised atoms: one (direction, protocol, ports, peer) per rule.

The one security-group rule vocabulary of the ``aws`` format: what the reader, the writer, the
plan and the boto3 layer (``polyfence.io.aws``) share.

EC2 groups rules into ``IpPermission``s (one protocol/port range, many sources), but every
source is a separate rule to AWS: it is added, counted, described and revoked on its own. So
the planner compares atoms, never permissions, and writes one source per API call.

Normalisation follows what AWS itself does (reference/aws.md §2.2), so that a desired rule and
the rule AWS stores compare equal:

* protocol numbers 6/17/1/58 are the names tcp/udp/icmp/icmpv6; ``-1`` is all traffic;
* ports only exist for tcp/udp (range) and icmp/icmpv6 (type/code); any other protocol, and
  ``-1``, allows every port whatever is given, so the ports are dropped; icmpv6 without ports
  means all types (-1/-1);
* CIDRs are canonicalised (``10.1.2.3/16`` -> ``10.1.0.0/16``), as AWS does;
* the description is an attribute of a rule, not part of its identity: adding the same
  rule with another description is a duplicate to AWS.

One ``IpPermission`` (the grouped shape ``describe-security-groups`` prints) is a protocol and
port range plus sources; one *rule* is one source of it, which is what the quota counts.
ICMP puts the type in ``FromPort`` and the code in ``ToPort`` (-1: all); the IR encodes ICMP as
``type * 256 + code`` on the port dimension (``polyfence.model.ports``).

Nothing here talks to AWS.
"""

from __future__ import annotations

import ipaddress
import re
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from polyfence.errors import Diagnostic
from polyfence.model.ports import Protocol
from polyfence.model.provenance import SourceRef
from polyfence.semantics.intervals import IntervalSet

# Peer kinds. DESIRED is a reference by name to a group of the desired document that may not
# exist yet; its ``peer`` is the desired group's index, resolved to a real id at plan or apply.
CIDR4 = "cidr4"
CIDR6 = "cidr6"
PREFIX_LIST = "prefix-list"
GROUP = "group"
DESIRED = "desired-group"

_PROTOCOL_NAMES = {"6": "tcp", "17": "udp", "1": "icmp", "58": "icmpv6"}
_PORTED = ("tcp", "udp")
_ICMP = ("icmp", "icmpv6")
# reference/aws.md §2.2: the stricter of the documented rule-description charsets.
RULE_DESCRIPTION = re.compile(r"^[a-zA-Z0-9 ._\-:/()#,@\[\]+=;{}!$*]*$")
MAX_TEXT = 255
MANAGED_TAG = ("polyfence.dev/managed-by", "polyfence")  # the tag of every group polyfence owns


@dataclass(frozen=True, slots=True)
class RuleKey:
    """The identity of one rule as AWS sees it (descriptions excluded)."""

    egress: bool
    protocol: str
    from_port: int | None
    to_port: int | None
    peer_kind: str
    peer: str

    @property
    def direction(self) -> str:
        return "egress" if self.egress else "ingress"

    def sort_key(self) -> tuple[Any, ...]:
        """Deterministic order for output (ports may be ``None``, which does not compare)."""
        return (
            self.egress,
            self.protocol,
            -2 if self.from_port is None else self.from_port,
            -2 if self.to_port is None else self.to_port,
            self.peer_kind,
            self.peer,
        )

    def with_peer(self, kind: str, peer: str) -> RuleKey:
        return RuleKey(self.egress, self.protocol, self.from_port, self.to_port, kind, peer)


@dataclass(frozen=True, slots=True)
class Rule:
    """A rule and its description (``""`` when it has none: AWS does not tell them apart)."""

    key: RuleKey
    description: str = ""


def _normalise_protocol(raw: Any) -> str | None:
    if isinstance(raw, bool) or not isinstance(raw, str | int):
        return None
    text = str(raw).strip().lower()
    if text in ("-1", "tcp", "udp", "icmp", "icmpv6"):
        return text
    if text.isdigit() and 0 <= int(text) <= 255:
        return _PROTOCOL_NAMES.get(str(int(text)), str(int(text)))
    return None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _ports(
    protocol: str, perm: Mapping[str, Any], where: SourceRef, problems: list[Diagnostic]
) -> tuple[int | None, int | None] | None:
    """The port range (or ICMP type/code) a protocol can filter, ``(None, None)`` if none."""
    if protocol not in _PORTED + _ICMP:
        return None, None
    lo, hi = perm.get("FromPort"), perm.get("ToPort")
    if protocol == "icmpv6" and lo is None and hi is None:
        return -1, -1
    if not (_is_int(lo) and _is_int(hi)):
        what = (
            "a port range" if protocol in _PORTED else "an ICMP type (FromPort) and code (ToPort)"
        )
        problems.append(Diagnostic(where, f"protocol {protocol} needs {what} as integers"))
        return None
    assert isinstance(lo, int) and isinstance(hi, int)
    if protocol in _PORTED:
        if not (0 <= lo <= hi <= 65535):
            problems.append(
                Diagnostic(
                    where, f"port range {lo}-{hi} is not within 0-65535 with FromPort <= ToPort"
                )
            )
            return None
    elif not (-1 <= lo <= 255 and -1 <= hi <= 255) or (lo == -1 and hi != -1):
        problems.append(
            Diagnostic(
                where, f"ICMP type/code {lo}/{hi} invalid (each -1..255; type -1 needs code -1)"
            )
        )
        return None
    return lo, hi


def _text(value: Any, where: SourceRef, what: str, problems: list[Diagnostic]) -> str | None:
    if value is None:
        return ""
    if not isinstance(value, str):
        problems.append(Diagnostic(where, f"{what} must be a string"))
        return None
    if len(value) > MAX_TEXT or not RULE_DESCRIPTION.match(value):
        problems.append(
            Diagnostic(
                where,
                f"{what} must be at most {MAX_TEXT} characters of a-zA-Z0-9, space and ._-:/()#,@[]+=;{{}}!$*",
            )
        )
        return None
    return value


def _cidr(value: Any, version: int, where: SourceRef, problems: list[Diagnostic]) -> str | None:
    try:
        net = ipaddress.ip_network(str(value), strict=False) if isinstance(value, str) else None
    except ValueError:
        net = None
    if net is None or net.version != version:
        field = "CidrIp" if version == 4 else "CidrIpv6"
        problems.append(Diagnostic(where, f"{field} {value!r} is not an IPv{version} CIDR"))
        return None
    return str(net)


SOURCE_LISTS = ("IpRanges", "Ipv6Ranges", "PrefixListIds", "UserIdGroupPairs")


def expand_permission(
    perm: Any,
    egress: bool,
    where: SourceRef,
    problems: list[Diagnostic],
    resolve_name: Callable[[str], str | None] | None = None,
) -> list[Rule]:
    """The rules of one ``IpPermission``; problems are appended, never raised.

    ``resolve_name`` maps a ``UserIdGroupPairs[].GroupName`` to the index of a desired group
    (as a string); without it (describe output) a pair must carry a ``GroupId``.
    """
    if not isinstance(perm, Mapping):
        problems.append(Diagnostic(where, "an IpPermission must be a mapping"))
        return []
    protocol = _normalise_protocol(perm.get("IpProtocol"))
    if protocol is None:
        problems.append(
            Diagnostic(
                where.child("IpProtocol"),
                f"IpProtocol {perm.get('IpProtocol')!r} is not tcp, udp, icmp, icmpv6, -1 or a number 0-255",
            )
        )
        return []
    ports = _ports(protocol, perm, where, problems)
    if ports is None:
        return []
    rules: list[Rule] = []
    for source_list in SOURCE_LISTS:
        entries = perm.get(source_list) or []
        if not isinstance(entries, list):
            problems.append(Diagnostic(where.child(source_list), f"{source_list} must be a list"))
            continue
        for i, entry in enumerate(entries):
            at = where.child(source_list, i)
            if not isinstance(entry, Mapping):
                problems.append(Diagnostic(at, "must be a mapping"))
                continue
            desc = _text(entry.get("Description"), at.child("Description"), "Description", problems)
            peer = _peer(source_list, entry, at, problems, resolve_name)
            if peer is None or desc is None:
                continue
            key = RuleKey(egress, protocol, ports[0], ports[1], peer[0], peer[1])
            rules.append(Rule(key, desc))
    if not rules and not any(perm.get(f) for f in SOURCE_LISTS):
        problems.append(
            Diagnostic(
                where, "no source: give IpRanges, Ipv6Ranges, PrefixListIds or UserIdGroupPairs"
            )
        )
    return rules


def _peer(
    field: str,
    entry: Mapping[str, Any],
    at: SourceRef,
    problems: list[Diagnostic],
    resolve_name: Callable[[str], str | None] | None,
) -> tuple[str, str] | None:
    if field == "IpRanges":
        cidr = _cidr(entry.get("CidrIp"), 4, at.child("CidrIp"), problems)
        return None if cidr is None else (CIDR4, cidr)
    if field == "Ipv6Ranges":
        cidr = _cidr(entry.get("CidrIpv6"), 6, at.child("CidrIpv6"), problems)
        return None if cidr is None else (CIDR6, cidr)
    if field == "PrefixListIds":
        pl = entry.get("PrefixListId")
        if not isinstance(pl, str) or not pl.startswith("pl-"):
            problems.append(Diagnostic(at.child("PrefixListId"), "PrefixListId must be a pl-… id"))
            return None
        return PREFIX_LIST, pl
    group_id, name = entry.get("GroupId"), entry.get("GroupName")
    if isinstance(group_id, str) and group_id.startswith("sg-"):
        return GROUP, group_id
    if group_id is None and isinstance(name, str) and resolve_name is not None:
        index = resolve_name(name)
        if index is None:
            problems.append(
                Diagnostic(
                    at.child("GroupName"),
                    f"group {name!r} is not a group of this document (reference others by GroupId)",
                )
            )
            return None
        return DESIRED, index
    problems.append(
        Diagnostic(at, "a group pair needs a GroupId (sg-…) or the GroupName of a desired group")
    )
    return None


def to_ip_permission(
    key: RuleKey, description: str | None = None, group_ref: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The one-source ``IpPermission`` for a rule, as the Authorize/Revoke APIs take it.

    ``description`` ``None`` leaves the field out (revoke matches without it); ``group_ref``
    replaces the pair for group peers (``{"GroupId": …}`` once a desired group has an id, or
    ``{"GroupName": …}`` for display before that).
    """
    perm: dict[str, Any] = {"IpProtocol": key.protocol}
    if key.from_port is not None:
        perm["FromPort"] = key.from_port
        perm["ToPort"] = key.to_port
    entry: dict[str, Any]
    if key.peer_kind == CIDR4:
        field, entry = "IpRanges", {"CidrIp": key.peer}
    elif key.peer_kind == CIDR6:
        field, entry = "Ipv6Ranges", {"CidrIpv6": key.peer}
    elif key.peer_kind == PREFIX_LIST:
        field, entry = "PrefixListIds", {"PrefixListId": key.peer}
    else:
        field = "UserIdGroupPairs"
        entry = dict(group_ref) if group_ref is not None else {"GroupId": key.peer}
    if description is not None:
        entry["Description"] = description
    perm[field] = [entry]
    return perm


def ports_text(key: RuleKey) -> str:
    """``tcp 443``, ``udp 1000-2000``, ``icmp type 8 code 0``, ``all traffic``, ``protocol 132``."""
    if key.protocol == "-1":
        return "all traffic"
    if key.protocol in _PORTED:
        span = (
            str(key.from_port) if key.from_port == key.to_port else f"{key.from_port}-{key.to_port}"
        )
        return f"{key.protocol} {span}"
    if key.protocol in _ICMP:
        if key.from_port == -1:
            return f"{key.protocol} all"
        code = "all" if key.to_port == -1 else str(key.to_port)
        return f"{key.protocol} type {key.from_port} code {code}"
    return f"protocol {key.protocol}"


def rule_text(key: RuleKey, peer_label: str, description: str = "") -> str:
    """One readable line for a rule, e.g. ``ingress tcp 443 from 10.0.0.0/8 "web"``."""
    towards = "to" if key.egress else "from"
    text = f"{key.direction} {ports_text(key)} {towards} {peer_label}"
    return f'{text} "{description}"' if description else text


def default_egress(ipv6: bool) -> tuple[Rule, ...]:
    """The allow-all egress AWS gives every new group (``::/0`` too when the VPC has IPv6)."""
    rules = [Rule(RuleKey(True, "-1", None, None, CIDR4, "0.0.0.0/0"))]
    if ipv6:
        rules.append(Rule(RuleKey(True, "-1", None, None, CIDR6, "::/0")))
    return tuple(rules)


# IpPermissions <-> the IR -------------------------------------------------------------------

SGP_API_VERSION = "vpcresources.k8s.aws/v1beta1"
SGP_KIND = "SecurityGroupPolicy"
RULES_PER_GROUP = 60  # per direction per address family (quota L-0EA8095F)
GROUPS_PER_INTERFACE = 5  # quota L-2AFB9258, and the SGP's documented cap
NAMED_PROTOCOLS = {
    "tcp": int(Protocol.TCP),
    "udp": int(Protocol.UDP),
    "icmp": int(Protocol.ICMP),
    "icmpv6": int(Protocol.ICMPV6),
}
PROTOCOL_NAMES = {v: k for k, v in NAMED_PROTOCOLS.items()}
ICMP_ALL = IntervalSet.span(0, 255 * 256 + 255)


def icmp_pairs(ports: IntervalSet) -> Iterator[tuple[int, int]]:
    """(type, code) pairs for an encoded ICMP port set; code -1 is every code of the type,
    (-1, -1) everything. Exact: every encoded set is a union of such pairs."""
    if ports >= ICMP_ALL:
        yield -1, -1
        return
    for lo, hi in ports & ICMP_ALL:
        value = lo
        while value <= hi:
            icmp_type, code = divmod(value, 256)
            if code == 0 and value + 255 <= hi:
                yield icmp_type, -1
                value += 256
            else:
                yield icmp_type, code
                value += 1


def icmp_ports(icmp_type: int, code: int) -> IntervalSet:
    """The encoded port set of an ICMP (type, code) entry with -1 wildcards."""
    if icmp_type == -1:
        return ICMP_ALL
    if code == -1:
        return IntervalSet.span(icmp_type * 256, icmp_type * 256 + 255)
    return IntervalSet.point(icmp_type * 256 + code)


@dataclass(slots=True)
class RawGroup:
    """One group in the describe shape, with where each of its permissions came from.

    ``egress`` None: the document gives no egress rules, so the group keeps the allow-all
    egress a new group gets."""

    key: str  # GroupId, else GroupName: what references and SGPs resolve to
    label: str  # GroupName, else GroupId: for policy names
    ref: SourceRef
    ingress: list[tuple[dict[str, Any], SourceRef]] = field(default_factory=list)
    egress: list[tuple[dict[str, Any], SourceRef]] | None = None


def text(text: str) -> str:
    """A name or description in the characters AWS accepts (aws.md §2.2), at most 255."""
    return re.sub(r"[^a-zA-Z0-9 ._\-:/()#,@\[\]+=&;{}!$*]", " ", text)[:255]


def permissions(
    entries: dict[tuple[tuple[str, int | None, int | None], tuple[str, str]], None],
) -> list[dict[str, Any]]:
    """Entries grouped into IpPermissions (one per protocol and port range)."""
    grouped: dict[tuple[str, int | None, int | None], list[tuple[str, str]]] = defaultdict(list)
    for key, source in entries:
        grouped[key].append(source)
    out: list[dict[str, Any]] = []
    for (proto, lo, hi), sources in grouped.items():
        perm: dict[str, Any] = {"IpProtocol": proto}
        if lo is not None:
            perm["FromPort"], perm["ToPort"] = lo, hi
        perm["IpRanges"] = [{"CidrIp": v} for k, v in sources if k == "v4"]
        perm["Ipv6Ranges"] = [{"CidrIpv6": v} for k, v in sources if k == "v6"]
        perm["PrefixListIds"] = []
        perm["UserIdGroupPairs"] = [
            {"GroupId" if k == "id" else "GroupName": v} for k, v in sources if k in ("id", "name")
        ]
        out.append(perm)
    return out
