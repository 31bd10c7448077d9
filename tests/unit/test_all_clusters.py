"""Verdicts on every cluster: adversarial pairs, counterexample clusters that reproduce, bases.

Every difference must be found (with a counterexample that, loaded back through
``polyfence.load`` as Kubernetes objects, shows the same difference on its own), and
reformulations that mean the same on every cluster must be judged equivalent.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

import polyfence
from polyfence.api import Bundle, load
from polyfence.cli import cli
from polyfence.io.files import parse_text
from polyfence.model.policy import PolicySet
from polyfence.semantics.compare import BasisKind, Comparison, Relation, compare_every_cluster
from polyfence.semantics.universe import Bound, Undecided, universal_inventory

A_ISSUE = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: db, namespace: shop}
spec:
  podSelector: {matchLabels: {app: db}}
  ingress:
  - from:
    - podSelector: {matchLabels: {app: api}}
      namespaceSelector: {matchExpressions: [{key: team, operator: In, values: [shop, pay]}]}
"""
B_ISSUE = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: db, namespace: shop}
spec:
  podSelector: {matchLabels: {app: db}}
  ingress:
  - from:
    - podSelector:
        matchExpressions:
        - {key: app, operator: In, values: [api]}
        - {key: tier, operator: NotIn, values: [canary]}
      namespaceSelector: {matchExpressions: [{key: team, operator: In, values: [shop, pay]}]}
"""


def _k8s(name: str, namespace: str, spec: dict[str, Any]) -> str:
    doc = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }
    return yaml.safe_dump(doc)


def _ingress_from(peers: list[dict[str, Any]], ports: list[dict[str, Any]] | None = None) -> str:
    rule: dict[str, Any] = {"from": peers}
    if ports is not None:
        rule["ports"] = ports
    return _k8s("p", "shop", {"podSelector": {"matchLabels": {"app": "db"}}, "ingress": [rule]})


def _calico(name: str, spec: dict[str, Any], order: float = 100) -> str:
    doc = {
        "apiVersion": "projectcalico.org/v3",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": "shop"},
        "spec": {"order": order, **spec},
    }
    return yaml.safe_dump(doc)


def _set(text: str) -> PolicySet:
    return load(parse_text(text, "in.yaml")).policies


def _reproduces(a: PolicySet, b: PolicySet, result: Comparison) -> None:
    """Every counterexample, read back as Kubernetes objects, shows the difference alone."""
    assert result.counterexamples, result
    for cex in result.counterexamples:
        docs = load(parse_text(cex.yaml(), "cex.yaml"))
        assert docs.inventory.endpoints
        on_cluster = polyfence.compare(a, b, inventory=docs.inventory)
        assert on_cluster.basis is not None and on_cluster.basis.kind is BasisKind.GIVEN
        assert on_cluster.relation is not Relation.EQUIVALENT, cex.yaml()
        sides = {w.allowed_by for w in on_cluster.witnesses}
        assert cex.witness.allowed_by in sides
        pods = [d for d in cex.documents if d["kind"] == "Pod"]
        assert 1 <= len(pods) <= 2
        for pod in pods:
            (container,) = pod["spec"]["containers"]
            assert container["name"] and container["image"]


def test_issue_pair_is_narrower_with_a_canary_counterexample() -> None:
    a, b = _set(A_ISSUE), _set(B_ISSUE)
    result = polyfence.compare(a, b)
    assert result.relation is Relation.NARROWER
    assert result.basis is not None and result.basis.kind is BasisKind.EVERY_CLUSTER
    assert result.headline() == "narrower: counterexample cluster below"
    assert result.basis.method == "symbolic"
    cex = result.counterexample
    assert cex is not None and cex.witness.allowed_by == "a"
    namespaces = {
        d["metadata"]["name"]: d["metadata"]["labels"]
        for d in cex.documents
        if d["kind"] == "Namespace"
    }
    pods = {d["metadata"]["name"]: d for d in cex.documents if d["kind"] == "Pod"}
    src = pods["polyfence-src"]
    assert src["metadata"]["labels"] == {"app": "api", "tier": "canary"}
    assert namespaces[src["metadata"]["namespace"]]["team"] in ("shop", "pay")
    assert pods["polyfence-dst"]["metadata"]["labels"] == {"app": "db"}
    _reproduces(a, b, result)
    # The synthesised inventory cannot see it: that is why it is no longer the default.
    synthesised = polyfence.compare(a, b, all_clusters=False)
    assert synthesised.basis is not None and synthesised.basis.kind is BasisKind.SYNTHESISED
    assert synthesised.relation is Relation.EQUIVALENT
    assert synthesised.headline().startswith("equivalent on the synthesised inventory only (")


TIER = "apiVersion: projectcalico.org/v3\nkind: Tier\nmetadata: {name: security}\nspec: {order: 10}\n---\n"
ROLE_X = _k8s(
    "k",
    "shop",
    {"podSelector": {}, "ingress": [{"from": [{"podSelector": {"matchLabels": {"role": "x"}}}]}]},
)


def _tiered(action: str) -> str:
    doc = {
        "apiVersion": "projectcalico.org/v3",
        "kind": "NetworkPolicy",
        "metadata": {"name": "security.p", "namespace": "shop"},
        "spec": {
            "tier": "security",
            "order": 1,
            "selector": "app == 'db'",
            "ingress": [
                {"action": action, "source": {"selector": "app == 'api'"}},
                {"action": "Deny"},
            ],
        },
    }
    return yaml.safe_dump(doc)


DIFFERENT: dict[str, tuple[str, str, Relation]] = {
    "does-not-exist": (
        _ingress_from([{"podSelector": {"matchLabels": {"app": "api"}}}]),
        _ingress_from(
            [
                {
                    "podSelector": {
                        "matchLabels": {"app": "api"},
                        "matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}],
                    }
                }
            ]
        ),
        Relation.NARROWER,
    ),
    "exists-vs-in-every-value-mentioned": (
        _ingress_from(
            [
                {
                    "podSelector": {
                        "matchExpressions": [{"key": "app", "operator": "In", "values": ["a", "b"]}]
                    }
                }
            ]
        ),
        _ingress_from(
            [{"podSelector": {"matchExpressions": [{"key": "app", "operator": "Exists"}]}}]
        ),
        Relation.WIDER,  # a pod whose app is some third value
    ),
    "label-shared-by-pod-and-namespace-selectors": (
        _ingress_from([{"namespaceSelector": {"matchLabels": {"env": "prod"}}}]),
        _ingress_from([{"namespaceSelector": {}, "podSelector": {"matchLabels": {"env": "prod"}}}]),
        Relation.INCOMPARABLE,
    ),
    "namespace-name-label-other-namespace": (
        _ingress_from(
            [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "pay"}}}]
        ),
        _ingress_from([{"podSelector": {}}]),
        Relation.INCOMPARABLE,
    ),
    "named-port-vs-number": (
        _ingress_from([{"podSelector": {}}], [{"port": "http"}]),
        _ingress_from([{"podSelector": {}}], [{"port": 8080}]),
        Relation.INCOMPARABLE,
    ),
    "not-in-vs-not-equal-absent": (
        _ingress_from(
            [
                {
                    "podSelector": {
                        "matchExpressions": [
                            {"key": "tier", "operator": "NotIn", "values": ["canary"]}
                        ]
                    }
                }
            ]
        ),
        _ingress_from(
            [
                {
                    "podSelector": {
                        "matchExpressions": [
                            {"key": "tier", "operator": "Exists"},
                            {"key": "tier", "operator": "NotIn", "values": ["canary"]},
                        ]
                    }
                }
            ]
        ),
        Relation.NARROWER,  # a pod without the tier label
    ),
    "calico-not-has": (
        _calico(
            "p",
            {
                "selector": "app == 'db'",
                "ingress": [{"action": "Allow", "source": {"selector": "app == 'api'"}}],
            },
        ),
        _calico(
            "p",
            {
                "selector": "app == 'db'",
                "ingress": [
                    {"action": "Allow", "source": {"selector": "app == 'api' && !has(canary)"}}
                ],
            },
        ),
        Relation.NARROWER,
    ),
    "calico-not-selector": (
        _calico(
            "p",
            {
                "selector": "app == 'db'",
                "ingress": [
                    {
                        "action": "Allow",
                        "source": {"selector": "has(app)", "notSelector": "app == 'api'"},
                    }
                ],
            },
        ),
        _calico(
            "p",
            {
                "selector": "app == 'db'",
                "ingress": [{"action": "Allow", "source": {"selector": "app != 'api'"}}],
            },
        ),
        Relation.WIDER,  # a pod without the app label
    ),
    "calico-order-deny-before-allow": (
        _calico(
            "a-deny",
            {
                "selector": "app == 'db'",
                "ingress": [{"action": "Deny", "source": {"selector": "role == 'bad'"}}],
            },
            10,
        )
        + "---\n"
        + _calico("b-allow", {"selector": "app == 'db'", "ingress": [{"action": "Allow"}]}, 20),
        _calico(
            "a-deny",
            {
                "selector": "app == 'db'",
                "ingress": [{"action": "Deny", "source": {"selector": "role == 'bad'"}}],
            },
            30,
        )
        + "---\n"
        + _calico("b-allow", {"selector": "app == 'db'", "ingress": [{"action": "Allow"}]}, 20),
        Relation.WIDER,
    ),
    "calico-pass-vs-allow": (
        TIER + _tiered("Pass") + "---\n" + ROLE_X,
        TIER + _tiered("Allow") + "---\n" + ROLE_X,
        Relation.WIDER,  # a passed api pod without role=x is then dropped by the k8s policy
    ),
}


@pytest.mark.parametrize("name", sorted(DIFFERENT))
def test_adversarial_differences_are_found_and_reproduce(name: str) -> None:
    text_a, text_b, expected = DIFFERENT[name]
    a, b = _set(text_a), _set(text_b)
    result = polyfence.compare(a, b)
    assert result.relation is expected, result.to_dict()
    assert result.basis is not None and result.basis.kind is BasisKind.EVERY_CLUSTER
    assert result.basis.method == "symbolic" and result.basis.fallback is None
    _reproduces(a, b, result)


SAME: dict[str, tuple[str, str]] = {
    "calico-not-selector-is-scoped-to-the-namespace": (
        _calico(
            "p",
            {
                "selector": "app == 'db'",
                "ingress": [{"action": "Allow", "source": {"selector": "app == 'api'"}}],
            },
        ),
        _calico(
            "p",
            {
                "selector": "app == 'db'",
                "ingress": [{"action": "Allow", "source": {"notSelector": "app != 'api'"}}],
            },
        ),
    ),
    "name-label-is-the-name": (
        _ingress_from(
            [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "shop"}}}]
        ),
        _ingress_from([{"podSelector": {}}]),
    ),
    "in-list-vs-two-peers": (
        _ingress_from(
            [
                {
                    "podSelector": {
                        "matchExpressions": [{"key": "app", "operator": "In", "values": ["a", "b"]}]
                    }
                }
            ]
        ),
        _ingress_from(
            [
                {"podSelector": {"matchLabels": {"app": "a"}}},
                {"podSelector": {"matchLabels": {"app": "b"}}},
            ]
        ),
    ),
    "calico-selector-vs-kubernetes": (
        _calico(
            "p",
            {
                "selector": "app == 'db'",
                "types": ["Ingress"],
                "ingress": [
                    {
                        "action": "Allow",
                        "protocol": "TCP",
                        "source": {"selector": "app == 'api' && tier != 'canary'"},
                        "destination": {"ports": ["http"]},
                    }
                ],
            },
        ),
        _ingress_from(
            [
                {
                    "podSelector": {
                        "matchLabels": {"app": "api"},
                        "matchExpressions": [
                            {"key": "tier", "operator": "NotIn", "values": ["canary"]}
                        ],
                    }
                }
            ],
            [{"port": "http", "protocol": "TCP"}],
        ),
    ),
}


@pytest.mark.parametrize("name", sorted(SAME))
def test_reformulations_are_equivalent_on_every_cluster(name: str) -> None:
    text_a, text_b = SAME[name]
    result = polyfence.compare(_set(text_a), _set(text_b))
    assert result.relation is Relation.EQUIVALENT, result.to_dict()
    assert result.headline() == "equivalent on every cluster"
    assert result.basis is not None and result.basis.method == "symbolic"
    assert result.counterexample is None


def test_counterexample_namespaces_keep_the_name_label() -> None:
    a, b = DIFFERENT["namespace-name-label-other-namespace"][:2]
    result = polyfence.compare(_set(a), _set(b))
    for cex in result.counterexamples:
        for doc in cex.documents:
            if doc["kind"] == "Namespace":
                meta = doc["metadata"]
                assert meta["labels"]["kubernetes.io/metadata.name"] == meta["name"]


def test_cilium_profile_counterexample_never_relies_on_ipblocks_matching_pods() -> None:
    """Under the cilium profile an ipBlock never matches a pod, so a pod address inside the
    CIDR is no difference; under the default profile it is."""
    from polyfence.semantics.profile import PROFILES

    a = _set(_ingress_from([{"podSelector": {"matchLabels": {"app": "api"}}}]))
    b = _set(
        _ingress_from(
            [{"podSelector": {"matchLabels": {"app": "api"}}}, {"ipBlock": {"cidr": "10.0.0.0/8"}}]
        )
    )
    for profile_name in ("kubernetes", "cilium"):
        result = polyfence.compare(a, b, profile=PROFILES[profile_name])
        assert result.relation is Relation.WIDER
        cex = result.counterexample
        assert cex is not None
        src = cex.witness.src
        if profile_name == "cilium":
            assert "[" not in src, cex.yaml()  # an outside address, never a pod
            assert any("outside the cluster" in note for note in cex.notes)


def test_aws_unbound_groups_are_compared_wherever_they_are_used() -> None:
    def export(to_port: int) -> str:
        return json.dumps(
            {
                "SecurityGroups": [
                    {
                        "GroupId": "sg-0123456789abcdef0",
                        "GroupName": "web",
                        "VpcId": "vpc-1",
                        "IpPermissions": [
                            {
                                "IpProtocol": "tcp",
                                "FromPort": 443,
                                "ToPort": to_port,
                                "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
                            }
                        ],
                        "IpPermissionsEgress": [],
                    }
                ]
            }
        )

    a = load(parse_text(export(443), "a.json")).policies
    b = load(parse_text(export(444), "b.json")).policies
    result = polyfence.compare(a, b)
    assert result.relation is Relation.WIDER, result.to_dict()
    cex = result.counterexample
    assert cex is not None and cex.witness.port == 444
    assert any("sg-0123456789abcdef0" in note for note in cex.notes)
    on_cluster = polyfence.compare(a, b, inventory=cex.inventory)
    assert on_cluster.relation is Relation.WIDER


def test_bound_answers_undecided_and_falls_back_to_the_synthesised_inventory() -> None:
    a, b = _set(A_ISSUE), _set(B_ISSUE)
    with pytest.raises(Undecided, match="more than 3 endpoint classes"):
        universal_inventory([a, b], bound=Bound(max_endpoints=3))
    # The symbolic procedure has the time budget: none at all, and it gives up at once.
    result = polyfence.compare(a, b, bound=Bound(seconds=0))
    assert result.basis is not None and result.basis.kind is BasisKind.SYNTHESISED
    assert result.basis.undecided is not None and not result.decided
    assert result.headline().startswith(
        "undecided on every cluster within the bound (over the time budget"
    )
    assert "); on the synthesised inventory only (" in result.headline()
    assert result.headline().endswith("): equivalent")


def test_fqdn_peers_are_decided_symbolically_with_the_dns_answers_they_need() -> None:
    """With no inventory a name may resolve to any address: an FQDN egress rule is modelled by
    per-name answer variables, and the counterexample says which answers it needs."""
    fqdn = """
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: dns, namespace: shop}
spec:
  endpointSelector: {matchLabels: {app: api}}
  egress:
  - toFQDNs: [{matchName: example.com}]
"""
    a = _set(A_ISSUE + "---\n" + fqdn)
    b = _set(B_ISSUE + "---\n" + fqdn)
    result = polyfence.compare(a, b)
    assert result.relation is Relation.NARROWER
    assert result.basis is not None and result.basis.method == "symbolic"
    _reproduces(a, b, result)  # the DNSRecords document is read back as the answers
    cex = result.counterexample
    assert cex is not None
    (records,) = [d for d in cex.documents if d["kind"] == "DNSRecords"]
    (pod_ip,) = [
        d["status"]["podIP"] for d in cex.documents if d["metadata"]["name"] == "polyfence-dst"
    ]
    # The api pod may only reach what example.com resolves to: the db pod must be an answer.
    assert records["spec"]["records"] == [{"name": "example.com", "addresses": [pod_ip]}]
    assert polyfence.compare(a, a).headline() == "equivalent on every cluster"


def test_the_universal_inventory_is_evidence_and_has_its_own_bound() -> None:
    """Asked for (tests and benchmarks cross-check the methods), the enumeration's
    "equivalent" is no proof and says so, and its endpoint bound applies."""
    a, b = _set(A_ISSUE), _set(B_ISSUE)
    found = compare_every_cluster(a, b, symbolic=False)
    assert found.relation is Relation.NARROWER and found.decided
    assert found.basis is not None and found.basis.method == "universal-inventory"
    _reproduces(a, b, found)
    same = compare_every_cluster(a, a, symbolic=False)
    assert same.relation is Relation.EQUIVALENT and not same.decided
    assert same.headline().startswith("equivalent on a universal inventory")
    assert "not a proof for every cluster" in same.headline()
    with pytest.raises(Undecided, match="more than 3 endpoint classes"):
        compare_every_cluster(a, b, bound=Bound(max_endpoints=3), symbolic=False)


def test_given_inventory_and_both() -> None:
    a, b = _set(A_ISSUE), _set(B_ISSUE)
    cluster = load(
        parse_text(
            """
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {team: shop}}
---
apiVersion: v1
kind: Pod
metadata: {name: api, namespace: shop, labels: {app: api}}
spec: {containers: [{name: c, image: i}]}
status: {podIP: 10.244.0.1}
---
apiVersion: v1
kind: Pod
metadata: {name: db, namespace: shop, labels: {app: db}}
spec: {containers: [{name: c, image: i}]}
status: {podIP: 10.244.0.2}
""",
            "cluster.yaml",
        )
    ).inventory
    given = polyfence.compare(a, b, inventory=cluster)
    assert given.relation is Relation.EQUIVALENT
    assert given.headline() == "equivalent on the given inventory (1 namespaces, 2 endpoints)"
    both = polyfence.compare(a, b, inventory=cluster, all_clusters=True)
    assert both.relation is Relation.NARROWER and both.given is not None
    assert both.given.relation is Relation.EQUIVALENT
    assert both.to_dict()["given_inventory"]["basis"]["kind"] == "given-inventory"


def test_convert_verification_says_its_basis() -> None:
    bundle = load(parse_text(B_ISSUE, "b.yaml"))
    result = polyfence.convert(bundle, to="calico")
    ver = result.report.verification
    assert ver is not None and ver.basis == "every-cluster" and ver.relation == "equivalent"
    assert result.report.to_dict()["verification"]["basis"] == "every-cluster"
    assert ver.describe() == "verification (every cluster): equivalent"


def test_cli_compare_first_line_counterexample_file_and_json(tmp_path: Path) -> None:
    from click.testing import CliRunner

    (tmp_path / "a.yaml").write_text(A_ISSUE)
    (tmp_path / "b.yaml").write_text(B_ISSUE)
    runner = CliRunner()
    res = runner.invoke(cli, ["compare", str(tmp_path / "a.yaml"), str(tmp_path / "b.yaml")])
    assert res.exit_code == 4, res.output
    lines = res.output.splitlines()
    assert lines[0] == "narrower: counterexample cluster below"
    assert "kind: Pod" in res.output and "tier: canary" in res.output
    target = tmp_path / "cex.yaml"
    res = runner.invoke(
        cli,
        [
            "compare",
            str(tmp_path / "a.yaml"),
            str(tmp_path / "b.yaml"),
            "--counterexample",
            str(target),
        ],
    )
    assert res.exit_code == 4 and "kind: Pod" not in res.output
    docs = [d for d in yaml.safe_load_all(target.read_text()) if d]
    assert {d["kind"] for d in docs} == {"Namespace", "Pod"}
    res = runner.invoke(
        cli,
        ["compare", str(tmp_path / "b.yaml"), str(tmp_path / "b.yaml"), "--output-format", "json"],
    )
    assert res.exit_code == 0, res.output
    body = json.loads(res.output)
    assert body["relation"] == "equivalent" and body["basis"]["kind"] == "every-cluster"
    res = runner.invoke(cli, ["compare", str(tmp_path / "b.yaml"), str(tmp_path / "b.yaml")])
    assert res.output.splitlines()[0] == "equivalent on every cluster"


def test_bundle_inventory_is_the_given_one() -> None:
    bundle = load(parse_text(A_ISSUE, "a.yaml"))
    assert isinstance(bundle, Bundle)
    result = compare_every_cluster(bundle.policies, bundle.policies)
    assert result.relation is Relation.EQUIVALENT


def test_a_proof_on_every_cluster_settles_widening_and_nothing_else_does() -> None:
    from polyfence.fidelity import Effect, Feature, FidelityReport, Loss, Treatment, Verification

    may_widen = Loss(Effect.WIDENED, Treatment.DROPPED, Feature.DENY_ACTION, None, "deny dropped")

    def report(relation: str, basis: str, undecided: str | None = None) -> FidelityReport:
        ver = Verification(relation, "x", basis=basis, undecided=undecided)
        return FidelityReport("calico", "kubernetes", (may_widen,), ver)

    assert not report("equivalent", "every-cluster").widens
    assert report("wider", "every-cluster").widens
    assert report("equivalent", "given-inventory").widens  # a cluster proves nothing general
    assert report("equivalent", "universal-inventory").widens  # evidence, not proof
    assert report("equivalent", "every-cluster", undecided="bound").widens
