"""Scenario tests: security-group checks A01-A08 on describe-security-groups JSON."""

from __future__ import annotations

import json
from typing import Any

from polyfence.compliance.model import Severity, Status
from tests.compliance.scenario import assert_object, deploy, failing, finding, namespace, run

NS = namespace("a", zone="web") + "\n---\n" + namespace("b", zone="cde")
CLUSTER = (NS, deploy("a", "web", ports=[80]), deploy("b", "db", ports=[5432]))
ZONES = {"zones": [{"name": "cde", "namespace_labels": {"zone": "cde"}, "sensitive": True}]}
SGP_DB = """
apiVersion: vpcresources.k8s.aws/v1beta1
kind: SecurityGroupPolicy
metadata: {name: db, namespace: b}
spec:
  podSelector: {matchLabels: {app: db}}
  securityGroups: {groupIds: [sg-db]}
"""


def perm(proto: str, lo: int | None = None, hi: int | None = None, v4: tuple[str, ...] = (),
         v6: tuple[str, ...] = ()) -> dict[str, Any]:  # fmt: skip
    out: dict[str, Any] = {
        "IpProtocol": proto,
        "IpRanges": [{"CidrIp": c} for c in v4],
        "Ipv6Ranges": [{"CidrIpv6": c} for c in v6],
        "UserIdGroupPairs": [],
        "PrefixListIds": [],
    }
    if proto != "-1":
        out["FromPort"], out["ToPort"] = lo, hi
    return out


ALL_OUT = perm("-1", v4=("0.0.0.0/0",))


def group(gid: str, name: str, ingress: list[Any], egress: list[Any] | None = None) -> Any:
    return {
        "GroupId": gid, "GroupName": name, "VpcId": "vpc-1", "Description": name,
        "IpPermissions": ingress, "IpPermissionsEgress": [ALL_OUT] if egress is None else egress,
    }  # fmt: skip


def sgs(*groups: Any) -> dict[str, str]:
    return {"sg.json": json.dumps({"SecurityGroups": list(groups)})}


SAFE = group("sg-ok", "ok", [perm("tcp", 443, 443, v4=("10.0.0.0/8",))], [])


def test_a01_ssh_open_to_ipv4_internet() -> None:
    result = run(
        "NSEG-A01",
        *CLUSTER,
        files=sgs(SAFE, group("sg-ssh", "ssh", [perm("tcp", 22, 22, v4=("0.0.0.0/0",))])),
    )
    assert result.status is Status.FAIL
    f = failing(result)["sg-ssh"]
    assert "TCP 22" in f.message and "0.0.0.0/0" in f.message
    (ref,) = f.objects
    assert (ref.file, ref.document, ref.pointer) == (
        "sg.json",
        0,
        "/SecurityGroups/1/IpPermissions/0",
    )
    assert finding(result, "sg-ok").status is Status.PASS


def test_a01_range_including_rdp_and_udp_and_protocol_all() -> None:
    groups = sgs(
        group("sg-rng", "rng", [perm("tcp", 0, 3389, v4=("0.0.0.0/0",))]),
        group("sg-udp", "udp", [perm("udp", 22, 22, v4=("0.0.0.0/0",))]),
        group("sg-gre", "gre", [perm("47", v4=("0.0.0.0/0",))]),
    )
    result = run("NSEG-A01", *CLUSTER, files=groups)
    assert set(failing(result)) == {"sg-rng", "sg-udp"}
    assert "22,3389" in failing(result)["sg-rng"].message


def test_a01_passes_when_restricted() -> None:
    assert run("NSEG-A01", *CLUSTER, files=sgs(SAFE)).status is Status.PASS


def test_a02_protocol_all_from_ipv6_any() -> None:
    v6 = group("sg-v6", "v6", [perm("-1", v6=("::/0",))])
    result = run("NSEG-A02", *CLUSTER, files=sgs(SAFE, v6))
    assert set(failing(result)) == {"sg-v6"}
    assert run("NSEG-A01", *CLUSTER, files=sgs(SAFE, v6)).status is Status.PASS
    assert run("NSEG-A02", *CLUSTER, files=sgs(SAFE)).status is Status.PASS


def test_a03_all_ports_from_internet() -> None:
    groups = sgs(SAFE, group("sg-all", "all", [perm("tcp", 0, 65535, v4=("0.0.0.0/0",))]))
    result = run("NSEG-A03", *CLUSTER, files=groups)
    f = failing(result)["sg-all"]
    assert f.severity is Severity.CRITICAL
    assert f.objects[0].pointer == "/SecurityGroups/1/IpPermissions/0"
    assert run("NSEG-A03", *CLUSTER, files=sgs(SAFE)).status is Status.PASS


def test_a03_not_applicable_without_groups() -> None:
    assert run("NSEG-A03", *CLUSTER).status is Status.NOT_APPLICABLE


def test_a04_postgres_open_to_internet() -> None:
    pg = group("sg-db", "db", [perm("tcp", 5432, 5432, v4=("0.0.0.0/0",))])
    result = run("NSEG-A04", *CLUSTER, SGP_DB, files=sgs(SAFE, pg))
    assert set(failing(result)) == {"sg-db"}
    assert "TCP 5432" in failing(result)["sg-db"].message
    custom = run(
        "NSEG-A04", *CLUSTER, SGP_DB, files=sgs(SAFE, pg), config={"high_risk_ports": [23]}
    )
    assert custom.status is Status.PASS


def test_a05_default_group_with_rules() -> None:
    default = group("sg-def", "default", [perm("-1")], [ALL_OUT])
    default["IpPermissions"][0]["UserIdGroupPairs"] = [{"GroupId": "sg-def"}]
    result = run("NSEG-A05", *CLUSTER, files=sgs(SAFE, default))
    f = failing(result)["sg-def"]
    assert "2 rule(s)" in f.message
    assert {o.pointer for o in f.objects} == {
        "/SecurityGroups/1/IpPermissions/0", "/SecurityGroups/1/IpPermissionsEgress/0",
    }  # fmt: skip
    empty = run("NSEG-A05", *CLUSTER, files=sgs(group("sg-def", "default", [], [])))
    assert empty.status is Status.PASS
    assert run("NSEG-A05", *CLUSTER, files=sgs(SAFE)).status is Status.NOT_APPLICABLE


def test_a05_group_name_is_read_into_the_ir() -> None:
    from tests.compliance.scenario import bundle

    b = bundle(*CLUSTER, files=sgs(group("sg-def", "default", [], [])))
    (policy,) = b.policies.policies
    assert ("polyfence.dev/group-name", "default") in policy.labels
    assert ("polyfence.dev/security-group", "sg-def") in policy.labels


def _nacl(*entries: dict[str, object], acl: str = "acl-1") -> dict[str, str]:
    default_deny = [
        {"RuleNumber": 32767, "Protocol": "-1", "RuleAction": "deny", "Egress": False,
         "CidrBlock": "0.0.0.0/0"},
        {"RuleNumber": 32768, "Protocol": "-1", "RuleAction": "deny", "Egress": False,
         "Ipv6CidrBlock": "::/0"},
    ]  # fmt: skip
    doc = {
        "NetworkAcls": [
            {
                "NetworkAclId": acl,
                "Associations": [{"SubnetId": "subnet-1"}],
                "Entries": [*entries, *default_deny],
            }
        ]
    }
    return {"nacl.json": json.dumps(doc)}


def _entry(number: int, action: str, cidr: str, lo: int | None = None, hi: int | None = None,
           protocol: str = "6", egress: bool = False) -> dict[str, object]:  # fmt: skip
    out: dict[str, object] = {
        "RuleNumber": number,
        "Protocol": protocol,
        "RuleAction": action,
        "Egress": egress,
        "Ipv6CidrBlock" if ":" in cidr else "CidrBlock": cidr,
    }
    if lo is not None:
        out["PortRange"] = {"From": lo, "To": hi if hi is not None else lo}
    return out


def test_a06_allow_ssh_from_anywhere_fails_with_the_entry() -> None:
    result = run("NSEG-A06", *CLUSTER, files=_nacl(_entry(100, "allow", "0.0.0.0/0", 0, 65535)))
    f = failing(result)["nacl/acl-1"]
    assert "rule 100 allows 0.0.0.0/0 to TCP 22" in f.message
    assert "TCP 3389" in f.message and "subnet-1" in f.message
    assert f.objects[0].pointer == "/NetworkAcls/0/Entries/0"


def test_a06_all_traffic_over_ipv6_fails() -> None:
    result = run("NSEG-A06", *CLUSTER, files=_nacl(_entry(100, "allow", "::/0", protocol="-1")))
    assert "::/0" in failing(result)["nacl/acl-1"].message


def test_a06_lower_deny_shadows_the_allow() -> None:
    """First match by rule number: a deny of port 22 at 90 hides the allow-all at 100 for 22,
    but 3389 stays open."""
    files = _nacl(
        _entry(100, "allow", "0.0.0.0/0", protocol="-1"), _entry(90, "deny", "0.0.0.0/0", 22)
    )
    f = failing(run("NSEG-A06", *CLUSTER, files=files))["nacl/acl-1"]
    assert "TCP 3389" in f.message and "TCP 22" not in f.message
    files = _nacl(
        _entry(100, "allow", "0.0.0.0/0", protocol="-1"),
        _entry(90, "deny", "0.0.0.0/0", 22),
        _entry(91, "deny", "0.0.0.0/0", 3389),
    )
    assert run("NSEG-A06", *CLUSTER, files=files).status is Status.PASS


def test_a06_office_range_egress_and_udp_pass() -> None:
    files = _nacl(
        _entry(100, "allow", "203.0.113.0/24", 22),  # a known range, not the internet
        _entry(110, "allow", "0.0.0.0/0", 22, egress=True),  # egress entries are not ingress
        _entry(120, "allow", "0.0.0.0/0", 3389, protocol="17"),  # UDP
        _entry(130, "allow", "0.0.0.0/0", 443),
    )
    result = run("NSEG-A06", *CLUSTER, files=files)
    assert result.status is Status.PASS
    assert finding(result, "nacl/acl-1").status is Status.PASS


def test_a06_not_applicable_without_nacls() -> None:
    assert run("NSEG-A06", *CLUSTER, files=sgs(SAFE)).status is Status.NOT_APPLICABLE


def test_a07_sensitive_tier_allow_all_egress() -> None:
    db = group("sg-db", "db", [perm("tcp", 5432, 5432, v4=("10.0.0.0/8",))])
    result = run("NSEG-A07", *CLUSTER, SGP_DB, files=sgs(db), config=ZONES)
    f = failing(result)["sg-db"]
    assert f.objects[0].pointer == "/SecurityGroups/0/IpPermissionsEgress/0"
    db["IpPermissionsEgress"] = [perm("tcp", 443, 443, v4=("10.0.0.0/8",))]
    assert run("NSEG-A07", *CLUSTER, SGP_DB, files=sgs(db), config=ZONES).status is Status.PASS
    assert run("NSEG-A07", *CLUSTER, SGP_DB, files=sgs(db)).status is Status.NOT_APPLICABLE


def test_a08_forbidden_flow_on_sg_bound_pods() -> None:
    cfg = dict(ZONES, forbidden_flows=[{"from": "internet", "to": "zone:cde"}])
    open_db = group("sg-db", "db", [perm("tcp", 5432, 5432, v4=("0.0.0.0/0",))])
    result = run("NSEG-A08", *CLUSTER, SGP_DB, files=sgs(open_db), config=cfg)
    f = failing(result)["flow/internet->zone:cde"]
    assert f.severity is Severity.CRITICAL
    conn = f.connections[0]
    assert conn.dst == "b/db[Deployment]" and conn.port == 5432 and conn.explanation
    assert_object(f, "AuditConfig", "forbidden_flows[0]", "/forbidden_flows/0")
    closed = group("sg-db", "db", [perm("tcp", 5432, 5432, v4=("10.0.0.0/8",))])
    assert run("NSEG-A08", *CLUSTER, SGP_DB, files=sgs(closed), config=cfg).status is Status.PASS
    assert run("NSEG-A08", *CLUSTER, SGP_DB, files=sgs(closed)).status is Status.NOT_APPLICABLE
