"""Security-group checks, read from the canonical model (``Layer.CLOUD`` policies).

A group may appear as several IR policies (one per SecurityGroupPolicy binding) with the same
rules; findings are per group. Port tests are on the rule's connection set, so protocol -1,
ranges such as 0-3389 and "all traffic" count as including a port, as CIS AWS 6.3 defines.
"""

from __future__ import annotations

from collections.abc import Iterator

from polyfence.compliance.context import AuditContext
from polyfence.compliance.model import (
    CheckOutcome,
    Finding,
    Level,
    ObjectRef,
    Severity,
    Status,
    check,
    outcome,
)
from polyfence.model.labels import GROUP_NAME_LABEL, SECURITY_GROUP_LABEL
from polyfence.model.peers import ANY_PEER
from polyfence.model.policy import Action, Direction, Governed, Layer, Policy, Rule
from polyfence.semantics.connset import FULL, ConnSet
from polyfence.semantics.engine import Connectivity
from polyfence.semantics.intervals import IntervalSet, IPSet
from polyfence.semantics.matching import port_conns

V4_ANY = IPSet.from_cidr("0.0.0.0/0")
V6_ANY = IPSet.from_cidr("::/0")
TCP, UDP = 6, 17
ALL_TCP = ConnSet.single(TCP, IntervalSet.span(1, 65535))
ALL_UDP = ConnSet.single(UDP, IntervalSet.span(1, 65535))


def _label(policy: Policy, key: str) -> str | None:
    return next((v for k, v in policy.labels if k == key), None)


def groups(ctx: AuditContext) -> dict[str, Policy]:
    """One representative IR policy per security group."""
    out: dict[str, Policy] = {}
    for policy in ctx.policies:
        if policy.layer is Layer.CLOUD:
            key = (
                _label(policy, SECURITY_GROUP_LABEL)
                or policy.subject.security_group
                or str(policy.id)
            )
            out.setdefault(key, policy)
    return out


def _rules(policy: Policy, direction: Direction) -> Iterator[tuple[int, Rule]]:
    rules = policy.direction(direction)
    if isinstance(rules, Governed):
        for i, rule in enumerate(rules.rules):
            if rule.action is Action.ALLOW:
                yield i, rule


def _open_to(rule: Rule, block: IPSet) -> bool:
    if rule.peers is ANY_PEER:
        return True
    for peer in rule.peers:  # type: ignore[union-attr]
        ipset = peer.ipset()
        if ipset is not None and block <= ipset and not peer.wants_pod:
            return True
    return False


def _describe(conns: ConnSet) -> str:
    if conns == FULL:
        return "all traffic"
    return "; ".join(f"{p} {v}" for p, v in conns.by_protocol().items() if v)


def _internet_rules(
    ctx: AuditContext,
    wanted: ConnSet,
    blocks: tuple[IPSet, ...],
    check_id: str,
    severity: Severity,
    what: str,
) -> list[Finding]:
    findings = []
    for key, policy in sorted(groups(ctx).items()):
        hits = []
        for i, rule in _rules(policy, Direction.INGRESS):
            open_blocks = [b for b in blocks if _open_to(rule, b)]
            if not open_blocks:
                continue
            conns = port_conns(rule.ports, None) & wanted
            if conns:
                hits.append((i, rule, conns, open_blocks))
        if not hits:
            findings.append(
                Finding(check_id, Status.PASS, severity, key, f"{key}: no {what} from the internet")
            )
            continue
        i, rule, conns, open_blocks = hits[0]
        cidrs = ", ".join(b.to_cidrs()[0] for b in open_blocks)
        findings.append(
            Finding(
                check_id, Status.FAIL, severity, key,
                f"{key} allows {_describe(conns)} from {cidrs} ({len(hits)} rule(s))",
                tuple(ctx.policy_ref(policy, r) for _, r, _, _ in hits[:10]),
                observed=_describe(conns), expected=f"no {what} from {cidrs}",
            )
        )  # fmt: skip
    return findings


def _result(info_id: str, findings: list[Finding], passed: str, failed: str) -> CheckOutcome:
    from polyfence.compliance.checks import get

    return outcome(
        get(info_id).info,
        findings,
        passed=passed,
        failed=failed,
        empty="no security groups in the input",
    )


def _admin(ctx: AuditContext) -> ConnSet:
    ports = ctx.config.admin_ports.ports_of(TCP) | ctx.config.admin_ports.ports_of(UDP)
    return ConnSet.single(TCP, ports) | ConnSet.single(UDP, ports)


@check(
    "NSEG-A01",
    "Security groups: no 0.0.0.0/0 ingress to remote administration ports",
    Severity.HIGH,
    Level.SOURCE,
    "SSH and RDP open to every IPv4 address are the most scanned doors on the internet (CIS AWS "
    "v7 6.3; TCP, UDP or all protocols, any range including the port).",
    "Restrict the rule's source to the administrators' ranges or use Session Manager / a bastion.",
)
def a01_admin_ports_ipv4(ctx: AuditContext) -> CheckOutcome:
    findings = _internet_rules(
        ctx, _admin(ctx), (V4_ANY,), "NSEG-A01", Severity.HIGH, "administration ports"
    )
    return _result(
        "NSEG-A01",
        findings,
        "no group opens administration ports to 0.0.0.0/0",
        "{fail} groups open administration ports to 0.0.0.0/0",
    )


@check(
    "NSEG-A02",
    "Security groups: no ::/0 ingress to remote administration ports",
    Severity.HIGH,
    Level.SOURCE,
    "The IPv6 twin of NSEG-A01 (CIS AWS v7 6.4): ::/0 is every IPv6 address.",
    "Restrict the rule's IPv6 source to the administrators' ranges.",
)
def a02_admin_ports_ipv6(ctx: AuditContext) -> CheckOutcome:
    findings = _internet_rules(
        ctx, _admin(ctx), (V6_ANY,), "NSEG-A02", Severity.HIGH, "administration ports"
    )
    return _result(
        "NSEG-A02",
        findings,
        "no group opens administration ports to ::/0",
        "{fail} groups open administration ports to ::/0",
    )


@check(
    "NSEG-A03",
    "Security groups: no all-ports or all-protocols ingress from the internet",
    Severity.CRITICAL,
    Level.SOURCE,
    "Protocol -1, or every TCP or UDP port, from 0.0.0.0/0 or ::/0 exposes every service on the "
    "interface (PCI DSS 1.3.1, 1.4.2).",
    "Replace the rule with the specific ports the service offers.",
)
def a03_all_ports_internet(ctx: AuditContext) -> CheckOutcome:
    findings = []
    for key, policy in sorted(groups(ctx).items()):
        bad = [
            (i, r)
            for i, r in _rules(policy, Direction.INGRESS)
            if (_open_to(r, V4_ANY) or _open_to(r, V6_ANY))
            and ((c := port_conns(r.ports, None)) == FULL or c >= ALL_TCP or c >= ALL_UDP)
        ]
        if bad:
            findings.append(
                Finding("NSEG-A03", Status.FAIL, Severity.CRITICAL, key,
                        f"{key} allows all ports from the internet ({len(bad)} rule(s))",
                        tuple(ctx.policy_ref(policy, r) for _, r in bad[:10]),
                        observed="all ports from 0.0.0.0/0 or ::/0", expected="specific ports")
            )  # fmt: skip
        else:
            findings.append(
                Finding(
                    "NSEG-A03",
                    Status.PASS,
                    Severity.CRITICAL,
                    key,
                    f"{key}: no all-ports internet ingress",
                )
            )
    return _result(
        "NSEG-A03",
        findings,
        "no group allows all ports from the internet",
        "{fail} groups allow all ports from the internet",
    )


@check(
    "NSEG-A04",
    "Security groups: high-risk service ports not open to the internet",
    Severity.HIGH,
    Level.SOURCE,
    "Databases, caches, SMB/CIFS, telnet, FTP, etcd, the Kubernetes API and the kubelet should "
    "never face the internet (CIS AWS v7 6.1.2, AWS FSBP EC2.19).",
    "Restrict the rule's source to trusted ranges or groups; configure the list in "
    "`high_risk_ports`.",
)
def a04_high_risk_ports(ctx: AuditContext) -> CheckOutcome:
    wanted = ctx.config.high_risk_ports
    findings = _internet_rules(
        ctx, wanted, (V4_ANY, V6_ANY), "NSEG-A04", Severity.HIGH, "high-risk ports"
    )
    return _result(
        "NSEG-A04",
        findings,
        "no group opens high-risk ports to the internet",
        "{fail} groups open high-risk ports to the internet",
    )


@check(
    "NSEG-A05",
    "VPC default security group restricts all traffic",
    Severity.MEDIUM,
    Level.SOURCE,
    "Resources launched without a group land in the VPC's default group; it must have no inbound "
    "and no outbound rules (CIS AWS v7 6.5, AWS FSBP EC2.2).",
    "Remove every rule from the default group and attach purpose-made groups instead.",
)
def a05_default_group(ctx: AuditContext) -> CheckOutcome:
    findings = []
    for key, policy in sorted(groups(ctx).items()):
        if _label(policy, GROUP_NAME_LABEL) != "default":
            continue
        rules = [r for d in Direction for _, r in _rules(policy, d)]
        findings.append(
            Finding(
                "NSEG-A05", Status.FAIL if rules else Status.PASS, Severity.MEDIUM, key,
                f"default group {key} has {len(rules)} rule(s)" if rules else f"default group {key} has no rules",
                tuple(ctx.policy_ref(policy, r) for r in rules[:10]) or (ctx.policy_ref(policy),),
                observed=f"{len(rules)} rules", expected="no inbound and no outbound rules",
            )
        )  # fmt: skip
    return outcome(
        a05_default_group.info, findings,
        passed="every VPC default group in the input restricts all traffic",
        failed="{fail} VPC default groups have rules",
        empty="no VPC default security group in the input",
    )  # fmt: skip


@check(
    "NSEG-A06",
    "Network ACLs: no 0.0.0.0/0 ingress to remote administration ports",
    Severity.MEDIUM,
    Level.SOURCE,
    "NACLs are stateless subnet filters evaluated by rule number (CIS AWS v7 6.2).",
    "Deny administration ports from 0.0.0.0/0 in the subnet's NACL before any allow.",
)
def a06_nacl_admin_ports(ctx: AuditContext) -> CheckOutcome:
    info = a06_nacl_admin_ports.info
    ports = _tcp_points(ctx.config.admin_ports)
    findings: list[Finding] = []
    seen = 0
    for doc in ctx.bundle.documents:
        acls = doc.data.get("NetworkAcls") if isinstance(doc.data, dict) else None
        if not isinstance(acls, list):
            continue
        for i, acl in enumerate(acls):
            if not isinstance(acl, dict):
                continue
            seen += 1
            acl_id = str(acl.get("NetworkAclId") or f"#{i}")
            where = doc.source.child("NetworkAcls", i)
            open_entries = _nacl_open_entries(acl, ports)
            acl_ref = ObjectRef.at("NetworkAcl", None, acl_id, where)
            if not open_entries:
                findings.append(
                    Finding(info.id, Status.PASS, info.severity, f"nacl/{acl_id}",
                            f"network ACL {acl_id} admits no administration port from anywhere",
                            (acl_ref,))
                )  # fmt: skip
                continue
            parts = [
                f"rule {number} allows {cidr} to TCP {port}"
                for number, cidr, port, _ in open_entries
            ]
            objects = tuple(
                ObjectRef.at("NetworkAcl", None, acl_id, where.child("Entries", j))
                for *_, j in open_entries[:10]
            )
            findings.append(
                Finding(info.id, Status.FAIL, info.severity, f"nacl/{acl_id}",
                        f"network ACL {acl_id} ({', '.join(_subnets(acl)) or 'no subnet'}): "
                        + "; ".join(parts[:6]) + (" …" if len(parts) > 6 else ""),
                        objects, observed="ingress from anywhere to administration ports",
                        expected="a deny before any allow from 0.0.0.0/0 or ::/0")
            )  # fmt: skip
    if not seen:
        return CheckOutcome(Status.NOT_APPLICABLE, "no network ACLs in the input")
    return outcome(
        info,
        findings,
        passed="{total} network ACLs, none admits administration ports from anywhere",
        failed="{fail} network ACLs admit administration ports from 0.0.0.0/0 or ::/0",
    )


_ANY = {"CidrBlock": "0.0.0.0/0", "Ipv6CidrBlock": "::/0"}


def _tcp_points(conns: ConnSet, limit: int = 256) -> list[int]:
    out: list[int] = []
    for lo, hi, ports in conns.segments:
        if lo <= 6 <= hi:
            for a, b in ports:
                out.extend(range(a, min(b, a + limit) + 1))
    return sorted(set(out))[:limit]


def _nacl_covers(entry: dict[str, object], port: int) -> bool:
    proto = str(entry.get("Protocol", "")).lower()
    if proto in ("-1", "all"):
        return True
    if proto not in ("6", "tcp"):
        return False
    rng = entry.get("PortRange")
    if not isinstance(rng, dict):
        return True  # TCP without a range: every port
    lo, hi = rng.get("From"), rng.get("To")
    return isinstance(lo, int) and isinstance(hi, int) and lo <= port <= hi


def _nacl_open_entries(acl: dict[str, object], ports: list[int]) -> list[tuple[int, str, int, int]]:
    """(rule number, cidr, port, entry index) of ALLOW entries for 0.0.0.0/0 or ::/0 that decide
    some source address for an administration port: NACLs are evaluated by ascending rule
    number, first match wins, so a lower deny shadows a later allow."""
    raw = acl.get("Entries")
    entries = [
        (j, e)
        for j, e in enumerate(raw if isinstance(raw, list) else [])
        if isinstance(e, dict) and not e.get("Egress") and isinstance(e.get("RuleNumber"), int)
    ]
    entries.sort(key=lambda item: item[1]["RuleNumber"])
    found: list[tuple[int, str, int, int]] = []
    for key, any_cidr in _ANY.items():
        for port in ports:
            undecided = IPSet.from_cidr(any_cidr)
            for j, entry in entries:
                cidr = entry.get(key)
                if not isinstance(cidr, str) or not _nacl_covers(entry, port):
                    continue
                try:
                    block = IPSet.from_cidr(cidr)
                except ValueError:
                    continue
                hit = undecided & block
                if not hit:
                    continue
                allow = str(entry.get("RuleAction", "")).lower() == "allow"
                if allow and block == IPSet.from_cidr(any_cidr):
                    found.append((int(entry["RuleNumber"]), cidr, port, j))
                undecided = undecided - hit
                if not undecided:
                    break
    return found


def _subnets(acl: dict[str, object]) -> list[str]:
    assoc = acl.get("Associations")
    return [
        str(a.get("SubnetId"))
        for a in (assoc if isinstance(assoc, list) else [])
        if isinstance(a, dict) and a.get("SubnetId")
    ]


@check(
    "NSEG-A07",
    "Security-group egress restricted for sensitive tiers",
    Severity.HIGH,
    Level.SOURCE,
    "Groups bound to a sensitive zone (e.g. the cardholder data environment) that allow all "
    "egress to 0.0.0.0/0 or ::/0 let data leave unchecked (PCI DSS 1.3.2).",
    "Replace the allow-all egress rule (AWS adds one to every new group) with the destinations "
    "the tier needs.",
)
def a07_sensitive_egress(ctx: AuditContext) -> CheckOutcome:
    if not any(z.sensitive for z in ctx.config.zones):
        return CheckOutcome(Status.NOT_APPLICABLE, "no sensitive zone declared in the audit config")
    findings = []
    seen: set[str] = set()
    for policy in ctx.policies:
        if policy.layer is not Layer.CLOUD or not ctx.sensitive(policy.subject.namespace):
            continue
        key = _label(policy, SECURITY_GROUP_LABEL) or str(policy.id)
        if key in seen:
            continue
        seen.add(key)
        bad = [
            r
            for _, r in _rules(policy, Direction.EGRESS)
            if (_open_to(r, V4_ANY) or _open_to(r, V6_ANY)) and port_conns(r.ports, None) == FULL
        ]
        findings.append(
            Finding(
                "NSEG-A07", Status.FAIL if bad else Status.PASS, Severity.HIGH, key,
                f"{key} (bound in sensitive namespace {policy.subject.namespace}) "
                + ("allows all egress to the internet" if bad else "restricts egress"),
                tuple(ctx.policy_ref(policy, r) for r in bad[:10]),
            )
        )  # fmt: skip
    return outcome(
        a07_sensitive_egress.info, findings,
        passed="groups of sensitive tiers restrict egress",
        failed="{fail} groups of sensitive tiers allow all egress",
        empty="no security group is bound to a sensitive zone",
    )  # fmt: skip


@check(
    "NSEG-A08",
    "Security-group reachability between tiers matches the zone matrix",
    Severity.HIGH,
    Level.SEMANTIC,
    "The cloud layer on its own must keep forbidden zone pairs apart (defence in depth, PCI DSS "
    "1.3.1, NIST SC-7(21)): the declared forbidden flows are evaluated on the security groups "
    "alone.",
    "Remove the group references or CIDR rules that connect the forbidden tiers.",
)
def a08_tier_reachability(ctx: AuditContext) -> CheckOutcome:
    cloud = ctx.policies.with_policies(p for p in ctx.policies if p.layer is Layer.CLOUD)
    if not cloud.policies:
        return CheckOutcome(Status.NOT_APPLICABLE, "no security groups in the input")
    if not ctx.config.forbidden_flows:
        return CheckOutcome(
            Status.NOT_APPLICABLE, "no forbidden flows declared in the audit config"
        )
    if not ctx.has_workloads:
        return CheckOutcome(
            Status.UNKNOWN, "the input has no workloads: reachability cannot be computed"
        )
    from polyfence.compliance.checks.zones import forbidden_findings

    matrix = Connectivity(ctx.universe, cloud).matrix()
    findings = forbidden_findings(ctx, matrix, "NSEG-A08", Severity.HIGH, explain=False)
    return outcome(
        a08_tier_reachability.info, findings,
        passed="the security groups alone deny every forbidden flow",
        failed="{fail} forbidden flows are allowed by the security groups",
    )  # fmt: skip


__all__ = ["groups"]
