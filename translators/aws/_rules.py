"""Security-group rule vocabulary shared by the AWS reader and writer.

One ``IpPermission`` (the grouped shape ``describe-security-groups`` prints) is a protocol and
port range plus sources; one *rule* is one source of it, which is what the quota counts.
ICMP puts the type in ``FromPort`` and the code in ``ToPort`` (-1: all); the IR encodes ICMP as
``type * 256 + code`` on the port dimension (``polyfence.model.ports``).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from polyfence.model.ports import Protocol
from polyfence.model.provenance import SourceRef
from polyfence.semantics.intervals import IntervalSet

SGP_API_VERSION = "vpcresources.k8s.aws/v1beta1"
SGP_KIND = "SecurityGroupPolicy"
MANAGED_TAG = {"Key": "polyfence.dev/managed-by", "Value": "polyfence"}
GROUP_LABEL = "polyfence.dev/security-group"  # policy label naming the group it came from
GROUP_NAME_LABEL = "polyfence.dev/group-name"  # the group's GroupName (else its id)
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
