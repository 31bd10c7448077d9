"""AWS security groups + EKS SecurityGroupPolicy: reading, the engine's cloud layer, writing,
quota and except splitting, CloudFormation — every translation judged by the engine."""

from __future__ import annotations

import functools
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from polyfence import api
from polyfence.errors import InputError
from polyfence.fidelity import Effect
from polyfence.inventory import Endpoint, Inventory, Namespace, build_inventory
from polyfence.model.document import Document
from polyfence.model.policy import Layer, PolicySet
from polyfence.model.provenance import SourceRef
from polyfence.semantics.compare import Relation, compare
from polyfence.semantics.intervals import IPSet
from polyfence.semantics.profile import CloudEnforcingMode, EvaluationProfile
from polyfence.semantics.synthesis import synthesise
from polyfence.semantics.verdict import Connection, verdict
from polyfence.translation import RenderOptions
from polyfence.translators.aws import AwsSecurityGroupTranslator
from polyfence.translators.kubernetes import KubernetesTranslator
from tests.conftest import DATA, corpus_files
from tests.strategies import CIDRS, NAMESPACES, PORTS, inventories, k8s_policy_lists

AWS = AwsSecurityGroupTranslator()
K8S = KubernetesTranslator()


def docs_of(items: list[dict[str, Any]]) -> list[Document]:
    return [Document(d, SourceRef("gen", i)) for i, d in enumerate(items)]


def read(items: list[dict[str, Any]]) -> PolicySet:
    return AWS.to_canonical(docs_of(items)).value


def sgp(name: str, ns: str, groups: list[str], pods: Any = None, sas: Any = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"securityGroups": {"groupIds": groups}}
    if pods is not None:
        spec["podSelector"] = pods
    if sas is not None:
        spec["serviceAccountSelector"] = sas
    return {
        "apiVersion": "vpcresources.k8s.aws/v1beta1",
        "kind": "SecurityGroupPolicy",
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
    }


def perm(
    proto: str, lo: int | None = None, hi: int | None = None, **sources: Any
) -> dict[str, Any]:
    out: dict[str, Any] = {"IpProtocol": proto}
    if lo is not None:
        out["FromPort"], out["ToPort"] = lo, hi
    for key, value in sources.items():
        out[key] = value
    return out


def group(gid: str, ingress: list[Any], egress: list[Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"GroupId": gid, "GroupName": gid.upper(), "IpPermissions": ingress}
    if egress is not None:
        out["IpPermissionsEgress"] = egress
    return out


ALL_OUT = perm("-1", IpRanges=[{"CidrIp": "0.0.0.0/0"}], Ipv6Ranges=[{"CidrIpv6": "::/0"}])
WEB = Endpoint("Pod", "shop", "web", {"app": "web"}, "web-sa", ("10.0.0.2",), (), "n1")
API = Endpoint("Pod", "shop", "api", {"app": "api"}, "default", ("10.0.0.3",), (), "n2")
DB = Endpoint("Pod", "shop", "db", {"app": "db"}, "default", ("10.0.0.4",), (), "n1")
FREE = Endpoint("Pod", "other", "free", {"app": "api"}, "default", ("10.0.1.5",), (), "n2")
VM = Endpoint("External", None, "vm", {}, None, ("10.0.9.9",), security_groups=("sg-vm",))
INV = build_inventory(
    [Namespace("shop"), Namespace("other")],
    [WEB, API, DB, FREE, VM],
    sa_labels={("shop", "web-sa"): {"team": "pay"}},
)


def allowed(
    ps: PolicySet,
    src: Endpoint | str,
    dst: Endpoint | str,
    port: int = 443,
    proto: int = 6,
    profile: EvaluationProfile | None = None,
) -> bool:
    return verdict(
        ps, Connection(src, dst, proto, port), INV, profile or EvaluationProfile()
    ).allowed


# reading and the cloud layer ---------------------------------------------------------------

SHOP = [
    {
        "SecurityGroups": [
            group("sg-db", [perm("tcp", 5432, 5432, UserIdGroupPairs=[{"GroupId": "sg-api"}])], []),
            group(
                "sg-api", [perm("tcp", 443, 443, IpRanges=[{"CidrIp": "10.0.0.2/32"}])], [ALL_OUT]
            ),
            group("sg-web", [], None),  # no egress field: a new group's allow-all egress
        ]
    },
    sgp("db", "shop", ["sg-db"], {"matchLabels": {"app": "db"}}),
    sgp("api", "shop", ["sg-api"], {"matchLabels": {"app": "api"}}),
    sgp("web", "shop", ["sg-web"], sas={"matchLabels": {"team": "pay"}}),
]


def test_groups_bind_through_sgps_and_isolate_like_aws() -> None:
    ps = read(SHOP)
    assert ps.layers() == {Layer.CLOUD}
    assert allowed(ps, API, DB, 5432)  # api carries sg-api, referenced by sg-db
    assert not allowed(ps, WEB, DB, 5432)  # web is not a member of sg-api
    assert not allowed(ps, DB, API, 443)  # sg-db has no egress rules: nothing leaves db
    assert allowed(ps, WEB, API, 443)  # CIDR rule, web's default egress
    assert not allowed(ps, WEB, API, 80)
    assert not allowed(ps, API, WEB, 80)  # a group isolates ingress: sg-web has no inbound rule
    assert allowed(ps, FREE, "8.8.8.8", 53)  # no SGP selects it: not governed by the cloud layer
    assert allowed(ps, "1.2.3.4", FREE, 22)


MAPPING = {
    "apiVersion": "polyfence.dev/v1alpha1",
    "kind": "SecurityGroupBindings",
    "metadata": {"name": "shop-groups"},
    "spec": {
        "bindings": [
            {"groupIds": ["sg-db"], "namespace": "shop", "podSelector": {"matchLabels": {"app": "db"}}},
            {"groupIds": ["sg-api"], "namespace": "shop", "podSelector": {"matchLabels": {"app": "api"}}},
            {"groupIds": ["sg-web"], "namespace": "shop", "name": "web",
             "serviceAccountSelector": {"matchLabels": {"team": "pay"}}},
        ]
    },
}  # fmt: skip


def test_mapping_file_binds_exactly_like_security_group_policies() -> None:
    """Identity from an explicit mapping file, never guessed: same meaning as the SGPs."""
    from polyfence.semantics.compare import Relation, compare

    with_sgps = read(SHOP)
    with_mapping = read([SHOP[0], MAPPING])
    assert compare(with_sgps, with_mapping, INV).relation is Relation.EQUIVALENT
    assert allowed(with_mapping, API, DB, 5432) and not allowed(with_mapping, WEB, DB, 5432)


def test_mapping_file_errors_are_located() -> None:
    bad = dict(MAPPING, spec={"bindings": [{"groupIds": ["sg-db"], "podSelector": {}}]})
    with pytest.raises(InputError) as info:
        read([SHOP[0], bad])
    assert info.value.diagnostics[0].source.pointer == "/spec/bindings/0/namespace"
    bad = dict(MAPPING, spec={"bindings": [{"groupIds": ["sg-db"], "namespace": "shop"}]})
    with pytest.raises(InputError) as info:
        read([SHOP[0], bad])
    assert "podSelector or serviceAccountSelector" in str(info.value)
    bad = dict(MAPPING, spec={"bindings": [{"groupId": ["sg-db"], "namespace": "shop"}]})
    with pytest.raises(InputError) as info:
        read([SHOP[0], bad])
    assert info.value.diagnostics[0].source.pointer == "/spec/bindings/0/groupId"


def test_prefix_lists_expand_from_the_input() -> None:
    ssh = perm("tcp", 22, 22, PrefixListIds=[{"PrefixListId": "pl-office"}])
    groups = {"SecurityGroups": [group("sg-api", [ssh], [ALL_OUT])]}
    bind = sgp("api", "shop", ["sg-api"], {"matchLabels": {"app": "api"}})
    lists = {"PrefixLists": [{"PrefixListId": "pl-office", "Cidrs": ["203.0.113.0/24"]}]}
    result = AWS.to_canonical(docs_of([groups, bind, lists]))
    assert allowed(result.value, "203.0.113.9", API, 22)
    assert not allowed(result.value, "198.51.100.1", API, 22)
    (loss,) = [x for x in result.report.losses if "pl-office" in x.message]
    assert loss.effect is Effect.INVENTORY_DEPENDENT
    managed = {
        "PrefixLists": [{"PrefixListId": "pl-office", "Entries": [{"Cidr": "203.0.113.0/24"}]}]
    }
    assert allowed(read([groups, bind, managed]), "203.0.113.9", API, 22)
    missing = AWS.to_canonical(docs_of([groups, bind]))
    assert not allowed(missing.value, "203.0.113.9", API, 22)
    assert any(
        x.effect is Effect.NARROWED and "pl-office" in x.message for x in missing.report.losses
    )


def test_multiple_sgps_on_one_pod_union() -> None:
    docs = [
        {
            "SecurityGroups": [
                group("sg-a", [perm("tcp", 80, 80, IpRanges=[{"CidrIp": "0.0.0.0/0"}])], []),
                group("sg-b", [perm("udp", 53, 53, IpRanges=[{"CidrIp": "0.0.0.0/0"}])], []),
            ]
        },
        sgp("a", "shop", ["sg-a"], {"matchLabels": {"app": "web"}}),
        sgp("b", "shop", ["sg-b"], sas={"matchLabels": {"team": "pay"}}),
    ]
    ps = read(docs)
    assert allowed(ps, "1.2.3.4", WEB, 80) and allowed(ps, "1.2.3.4", WEB, 53, 17)
    assert not allowed(ps, "1.2.3.4", WEB, 53)


def test_icmp_and_protocol_numbers_read_exactly() -> None:
    docs = [
        {
            "SecurityGroups": [
                group(
                    "sg-a",
                    [
                        perm("icmp", 8, -1, IpRanges=[{"CidrIp": "10.0.0.0/8"}]),
                        perm("50", IpRanges=[{"CidrIp": "10.0.0.0/8"}]),
                    ],
                    [],
                )
            ]
        },
        sgp("a", "shop", ["sg-a"], {}),
    ]
    ps = read(docs)
    assert allowed(ps, "10.1.1.1", WEB, 8 * 256 + 3, 1)  # echo request, any code
    assert not allowed(ps, "10.1.1.1", WEB, 0, 1)
    assert allowed(ps, "10.1.1.1", WEB, 0, 50)


def test_unbound_groups_match_endpoints_that_carry_them() -> None:
    docs = [
        {
            "SecurityGroups": [
                group("sg-vm", [perm("tcp", 22, 22, UserIdGroupPairs=[{"GroupId": "sg-api"}])], []),
            ]
        },
        sgp("api", "shop", ["sg-api"], {"matchLabels": {"app": "api"}}),
    ]
    translation = AWS.to_canonical(docs_of(docs))
    ps = translation.value
    assert (
        allowed(ps, API, VM, 22) and not allowed(ps, WEB, VM, 22) and not allowed(ps, API, VM, 23)
    )
    assert any(loss.effect is Effect.INVENTORY_DEPENDENT for loss in translation.report.losses)


def test_bad_input_is_located() -> None:
    bad = [{"SecurityGroups": [group("sg-a", [perm("tcp", 80, 70, IpRanges=[])], [])]}]
    with pytest.raises(InputError) as info:
        read(bad)
    assert info.value.diagnostics[0].source.pointer == "/SecurityGroups/0/IpPermissions/0/FromPort"


def test_standard_mode_skips_same_node_and_off_vpc_egress() -> None:
    ps = read(SHOP)
    standard = EvaluationProfile(
        cloud_enforcing=CloudEnforcingMode.STANDARD, vpc_cidrs=("10.0.0.0/16",)
    )
    assert not allowed(ps, WEB, DB, 5432)
    assert allowed(ps, WEB, DB, 5432, profile=standard)  # both on n1: bypasses pod groups
    assert not allowed(ps, DB, "8.8.8.8", 53)
    assert allowed(ps, DB, "8.8.8.8", 53, profile=standard)  # leaves through the node (SNAT)
    assert not allowed(ps, DB, "10.0.5.5", 53, profile=standard)  # inside the VPC: pod groups
    for profile in (EvaluationProfile(), standard):
        full = api.compare(ps, ps, inventory=INV, profile=profile)
        assert full.relation is Relation.EQUIVALENT


def test_cloud_layer_ands_with_network_policies() -> None:
    netpol = K8S.to_canonical(
        docs_of(
            [
                {
                    "apiVersion": "networking.k8s.io/v1",
                    "kind": "NetworkPolicy",
                    "metadata": {"name": "db", "namespace": "shop"},
                    "spec": {
                        "podSelector": {"matchLabels": {"app": "db"}},
                        "ingress": [{"from": [{"podSelector": {}}]}],
                    },
                }
            ]
        )
    ).value
    both = netpol.merge(read(SHOP))
    assert allowed(both, API, DB, 5432) and not allowed(both, WEB, DB, 5432)
    assert not allowed(both, FREE, DB, 5432)  # allowed by no layer


@pytest.mark.parametrize("path", corpus_files("aws", "*.*"), ids=lambda p: p.name)
def test_aws_corpus_reads_and_round_trips(path: Path) -> None:
    bundle = api.load([str(path)])
    assert bundle.formats == ("aws",)
    inv = synthesise([bundle.policies])
    out = AWS.from_canonical(bundle.policies, RenderOptions(inventory=inv))
    back = AWS.to_canonical(docs_of(out.value)).value
    assert compare(bundle.policies, back, inv).relation is Relation.EQUIVALENT


# writing: Kubernetes -> AWS -> Kubernetes ------------------------------------------------


@functools.cache
def sgp_validator() -> jsonschema.protocols.Validator:
    crd = yaml.safe_load(
        (DATA / "upstream-schemas/aws/vpcresources.k8s.aws_securitygrouppolicies.yaml").read_text()
    )
    return jsonschema.Draft7Validator(crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"])


def check_shape(docs: list[dict[str, Any]], limit: int = 60) -> None:
    groups = docs[0]["SecurityGroups"]
    for item in groups:
        assert {"Key": "polyfence.dev/managed-by", "Value": "polyfence"} in item["Tags"]
        assert not item.get("GroupName", "x").startswith("sg-")
        for key in ("IpPermissions", "IpPermissionsEgress"):
            v4 = sum(len(p["IpRanges"]) + len(p["UserIdGroupPairs"]) for p in item[key])
            v6 = sum(len(p["Ipv6Ranges"]) + len(p["UserIdGroupPairs"]) for p in item[key])
            assert v4 <= limit and v6 <= limit
    for doc in docs[1:]:
        assert doc["kind"] == "SecurityGroupPolicy"
        assert not [e.message for e in sgp_validator().iter_errors(doc)]


@pytest.mark.parametrize("path", corpus_files("k8s"), ids=lambda p: p.name)
def test_k8s_corpus_to_aws_and_back(path: Path) -> None:
    bundle = api.load([str(path)])
    inv = bundle.inventory if bundle.inventory.endpoints else synthesise([bundle.policies])
    result = api.convert(bundle, "aws", inventory=inv)
    check_shape(result.documents)
    assert result.report.verification is not None
    assert result.report.verification.relation == "equivalent"
    assert not {loss.effect for loss in result.report.losses} & {Effect.WIDENED, Effect.NARROWED}
    if all(re.fullmatch(r"[a-z0-9-]+", ns.name) for ns in inv.namespaces):
        # (synthesised namespaces named after their labels are no Kubernetes names)
        back = api.convert(api.load(docs_of(result.documents)), "kubernetes", inventory=inv)
        assert compare(bundle.policies, back.policies, inv).relation is Relation.EQUIVALENT


@settings(max_examples=40, deadline=None)
@given(items=k8s_policy_lists(), inv=inventories())
def test_k8s_to_aws_round_trip_judged_by_the_engine(
    items: list[dict[str, Any]], inv: Inventory
) -> None:
    ir = K8S.to_canonical(docs_of(items)).value
    out = AWS.from_canonical(ir, RenderOptions(inventory=inv))
    check_shape(out.value)
    back = AWS.to_canonical(docs_of(out.value)).value
    relation = compare(ir, back, inv).relation
    effects = {loss.effect for loss in out.report.losses}
    if not effects & {Effect.WIDENED, Effect.NARROWED}:
        assert relation is Relation.EQUIVALENT, relation
    if relation in (Relation.WIDER, Relation.INCOMPARABLE):
        assert Effect.WIDENED in effects


@st.composite
def sg_documents(draw: Any) -> list[dict[str, Any]]:
    """The SG fragment: groups with CIDR, port, protocol and group-reference rules, SGPs."""
    ids = [f"sg-{i}" for i in range(draw(st.integers(1, 3)))]

    def permission() -> dict[str, Any]:
        proto = draw(st.sampled_from(["tcp", "udp", "-1", "icmp", "47"]))
        lo = draw(st.sampled_from(PORTS))
        item = perm(
            proto, *((lo, lo + draw(st.sampled_from([0, 10]))) if proto in ("tcp", "udp") else ())
        )
        if proto == "icmp":
            item["FromPort"], item["ToPort"] = draw(st.sampled_from([(8, -1), (-1, -1), (3, 4)]))
        kind = draw(st.sampled_from(["v4", "v6", "group"]))
        if kind == "v4":
            item["IpRanges"] = [
                {"CidrIp": draw(st.sampled_from([c for c in CIDRS if ":" not in c]))}
            ]
        elif kind == "v6":
            item["Ipv6Ranges"] = [{"CidrIpv6": draw(st.sampled_from(["fd00::/8", "::/0"]))}]
        else:
            item["UserIdGroupPairs"] = [{"GroupId": draw(st.sampled_from(ids))}]
        return item

    groups = [
        group(
            gid,
            [permission() for _ in range(draw(st.integers(0, 2)))],
            draw(st.one_of(st.none(), st.lists(st.builds(permission), max_size=2))),
        )
        for gid in ids
    ]
    bindings = [
        sgp(
            f"b{i}",
            draw(st.sampled_from(NAMESPACES)),
            draw(st.lists(st.sampled_from(ids), min_size=1, max_size=2, unique=True)),
            draw(
                st.sampled_from([{}, {"matchLabels": {"app": "x"}}, {"matchLabels": {"tier": "y"}}])
            ),
        )
        for i in range(draw(st.integers(0, 3)))
    ]
    return [{"SecurityGroups": groups}, *bindings]


@settings(max_examples=40, deadline=None)
@given(items=sg_documents(), inv=inventories())
def test_sg_fragment_round_trip_is_exact(items: list[dict[str, Any]], inv: Inventory) -> None:
    ir = read(items)
    out = AWS.from_canonical(ir, RenderOptions(inventory=inv))
    back = AWS.to_canonical(docs_of(out.value)).value
    assert compare(ir, back, inv).relation is Relation.EQUIVALENT
    k8s = K8S.from_canonical(ir, RenderOptions(inventory=inv))
    relation = compare(ir, K8S.to_canonical(docs_of(k8s.value)).value, inv).relation
    effects = {loss.effect for loss in k8s.report.losses}
    if relation in (Relation.WIDER, Relation.INCOMPARABLE):
        assert Effect.WIDENED in effects
    if relation in (Relation.NARROWER, Relation.INCOMPARABLE):
        assert Effect.NARROWED in effects


# except and quota splitting ------------------------------------------------------------------

EXCEPT_POLICY = {
    "apiVersion": "networking.k8s.io/v1",
    "kind": "NetworkPolicy",
    "metadata": {"name": "out", "namespace": "shop"},
    "spec": {
        "podSelector": {"matchLabels": {"app": "web"}},
        "policyTypes": ["Egress"],
        "egress": [
            {
                "to": [
                    {
                        "ipBlock": {
                            "cidr": "0.0.0.0/0",
                            "except": ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"],
                        }
                    }
                ],
                "ports": [{"port": 80}, {"port": 443}],
            }
        ],
    },
}


def test_except_and_quota_splitting_are_exact() -> None:
    ir = K8S.to_canonical(docs_of([EXCEPT_POLICY])).value
    ext = build_inventory([], [WEB, API], external=IPSet.from_cidrs(["0.0.0.0/0"]))
    out = AWS.from_canonical(ir, RenderOptions(inventory=ext))
    groups = out.value[0]["SecurityGroups"]
    policy_groups = [g for g in groups if g["GroupName"].startswith("pf-shop-out")]
    assert len(policy_groups) == 2  # 31 CIDRs x 2 ports = 62 rules > 60 (aws.md §5.7)
    check_shape(out.value)
    bound = [
        d for d in out.value[1:] if d["spec"]["podSelector"] == {"matchLabels": {"app": "web"}}
    ]
    ids = set(bound[0]["spec"]["securityGroups"]["groupIds"])
    assert {g["GroupName"] for g in policy_groups} <= ids  # every part bound together
    back = AWS.to_canonical(docs_of(out.value)).value
    for inv in (ext, synthesise([ir, back])):
        assert compare(ir, back, inv).relation is Relation.EQUIVALENT
    small = AWS.from_canonical(ir, RenderOptions(inventory=ext, extra={"aws_rules_per_group": 7}))
    check_shape(small.value, limit=7)
    assert (
        compare(ir, AWS.to_canonical(docs_of(small.value)).value, ext).relation
        is Relation.EQUIVALENT
    )


def test_sctp_ports_widen_and_named_ports_resolve_per_destination() -> None:
    pol = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "p", "namespace": "shop"},
        "spec": {
            "podSelector": {},
            "ingress": [{"ports": [{"protocol": "SCTP", "port": 9}, {"port": "http"}]}],
        },
    }
    from polyfence.inventory import NamedPort

    web = Endpoint(
        "Pod",
        "shop",
        "web",
        {"app": "web"},
        "default",
        ("10.0.0.2",),
        (NamedPort("http", 6, 8080),),
    )
    inv = build_inventory([], [web])
    out = AWS.from_canonical(K8S.to_canonical(docs_of([pol])).value, RenderOptions(inventory=inv))
    effects = {(loss.feature.value, loss.effect) for loss in out.report.losses}
    assert ("protocol", Effect.WIDENED) in effects
    assert ("named-port", Effect.INVENTORY_DEPENDENT) in effects
    perms = out.value[0]["SecurityGroups"][0]["IpPermissions"]
    assert {"IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8080} in [
        {k: p[k] for k in ("IpProtocol", "FromPort", "ToPort") if k in p} for p in perms
    ]


def test_groups_per_interface_limit_is_reported() -> None:
    pols = [
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": f"p{i}", "namespace": "shop"},
            "spec": {"podSelector": {}, "ingress": [{"ports": [{"port": 1000 + i}]}]},
        }
        for i in range(6)
    ]
    out = AWS.from_canonical(K8S.to_canonical(docs_of(pols)).value, RenderOptions(inventory=INV))
    assert any(
        "per interface" in loss.message and loss.effect is Effect.NARROWED
        for loss in out.report.losses
    )


# CloudFormation -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["website-networkpolicy.yaml", "recipe-11-foo-deny-egress-allow-dns.yaml"]
)
def test_cloudformation_output_lints_and_round_trips(name: str, tmp_path: Path) -> None:
    bundle = api.load([str(DATA / "corpus" / "k8s" / name)])
    inv = synthesise([bundle.policies])
    out = AWS.from_canonical(
        bundle.policies, RenderOptions(inventory=inv, extra={"aws_output": "cloudformation"})
    )
    template = out.value[0]
    assert "Resources" in template and "SecurityGroups" not in template
    path = tmp_path / "sg.json"
    path.write_text(json.dumps(template))
    lint = subprocess.run(
        [str(Path(sys.executable).parent / "cfn-lint"), str(path)], capture_output=True, text=True
    )
    assert lint.returncode == 0, lint.stdout
    back = AWS.to_canonical(docs_of(out.value))
    assert not back.report.losses
    assert compare(bundle.policies, back.value, inv).relation is Relation.EQUIVALENT


def test_cloudformation_intrinsics_are_resolved_or_reported() -> None:
    bundle = api.load(
        [str(DATA / "corpus" / "aws" / "cfn-ELBWithLockedDownAutoScaledInstances.json")]
    )
    assert any(
        loss.effect is Effect.NARROWED and "Fn::GetAtt" in loss.message
        for loss in bundle.read_losses
    )
    yaml_cfn = api.load(
        [str(DATA / "corpus" / "aws" / "cfn-EC2InstanceWithSecurityGroupSample.yaml")]
    )
    assert any(
        loss.effect is Effect.INVENTORY_DEPENDENT and "SSHLocation" in loss.message
        for loss in yaml_cfn.read_losses
    )
