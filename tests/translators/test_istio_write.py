"""Istio writer: each mapping, Istio's traps, and the engine as judge of every Loss it reports.

The engine decides the mesh at L4 (``semantics/engine.py``): Istio enforces inbound TCP of
workloads in the mesh only, so network-layer sources are compared with their Istio rendering on
exactly that part — TCP to mesh destinations, source egress left aside — and everything outside
it (egress, non-TCP, workloads without a proxy) must be reported as a loss instead.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from polyfence import api
from polyfence.fidelity import Effect, Feature, Loss, Treatment
from polyfence.inventory import Endpoint, Inventory, build_inventory, inventory_from_documents
from polyfence.io.files import parse_text
from polyfence.model.document import Document
from polyfence.model.peers import (
    ANY_PEER,
    Entity,
    IpMatch,
    NetworkSet,
    Peer,
    PrincipalMatch,
    ServiceAccountMatch,
)
from polyfence.model.policy import (
    NOT_GOVERNED,
    Action,
    Governed,
    HttpMatch,
    L7Match,
    Layer,
    Policy,
    PolicyId,
    PolicySet,
    Rule,
    Subject,
)
from polyfence.model.ports import ANY_PORTS, PortSpec, Protocol
from polyfence.model.provenance import SourceRef
from polyfence.model.selectors import All, Eq, In
from polyfence.semantics.compare import Relation, compare
from polyfence.semantics.engine import Connectivity, Universe
from polyfence.semantics.intervals import IntervalSet
from polyfence.semantics.matching import TCP_CONNS
from polyfence.semantics.profile import DEFAULT_PROFILE, EvaluationProfile
from polyfence.semantics.synthesis import synthesise
from polyfence.translation import RenderOptions, Translation
from polyfence.translators.istio.writer import _regex_path, render
from tests.conftest import DATA, corpus_files
from tests.strategies import k8s_policy_lists
from tests.strategies_istio import istio_policy_lists, k8s_ingress_lists, mesh_inventories

# -- fixtures ---------------------------------------------------------------------------------

MESH_YAML = """
apiVersion: v1
kind: Namespace
metadata: {name: prod, labels: {istio-injection: enabled, team: x}}
---
apiVersion: v1
kind: Namespace
metadata: {name: dev, labels: {istio-injection: enabled, team: y}}
---
apiVersion: v1
kind: Namespace
metadata: {name: legacy, labels: {team: x}}
---
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: prod, labels: {app: web, tier: a}}
spec:
  serviceAccountName: web
  containers: [{name: c, ports: [{name: http, containerPort: 8080}]}]
status: {podIP: 10.0.1.1}
---
apiVersion: v1
kind: Pod
metadata: {name: web-b, namespace: prod, labels: {app: web, tier: b}}
spec:
  serviceAccountName: web
  containers: [{name: c, ports: [{name: http, containerPort: 8080}]}]
status: {podIP: 10.0.1.2}
---
apiVersion: v1
kind: Pod
metadata: {name: api, namespace: prod, labels: {app: api}}
spec:
  serviceAccountName: api
  containers: [{name: c, ports: [{name: http, containerPort: 9090}]}]
status: {podIP: 10.0.1.3}
---
apiVersion: v1
kind: Pod
metadata: {name: batch, namespace: prod, labels: {app: batch}}
spec:
  serviceAccountName: api
  containers: [{name: c}]
status: {podIP: 10.0.1.4}
---
apiVersion: v1
kind: Pod
metadata: {name: db, namespace: prod, labels: {app: db}}
spec:
  serviceAccountName: db
  containers: [{name: c, ports: [{name: sql, containerPort: 5432}]}]
status: {podIP: 10.0.1.5}
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: dev, labels: {app: client}}
spec:
  serviceAccountName: client
  containers: [{name: c}]
status: {podIP: 10.0.2.1}
---
apiVersion: v1
kind: Pod
metadata: {name: old, namespace: legacy, labels: {app: old}}
spec:
  containers: [{name: c}]
status: {podIP: 10.0.3.1}
"""

MESH = inventory_from_documents(parse_text(MESH_YAML, "mesh.yaml"))
PROFILE = DEFAULT_PROFILE


@functools.cache
def crd_validator() -> jsonschema.protocols.Validator:
    crd = yaml.safe_load(
        (DATA / "upstream-schemas/istio/authorizationpolicies.security.istio.io.yaml").read_text()
    )
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1")
    return jsonschema.Draft7Validator(version["schema"]["openAPIV3Schema"])


def crd_errors(docs: list[dict[str, Any]]) -> list[str]:
    """Schema errors, plus the CRD's CEL rules that jsonschema does not run."""
    errors = [e.message for doc in docs for e in crd_validator().iter_errors(doc)]
    for doc in docs:
        labels = doc["spec"].get("selector", {}).get("matchLabels", {})
        errors += [f"wildcard label {k}={v}" for k, v in labels.items() if "*" in k + v]
        for rule in doc["spec"].get("rules", []):
            for entry in rule.get("from", []):
                src = entry["source"]
                assert src, "Istio refuses an empty source"
                if "serviceAccounts" in src and ({"principals", "namespaces"} & set(src)):
                    errors.append("serviceAccounts beside principals/namespaces")
            for entry in rule.get("to", []):
                assert entry["operation"], "Istio refuses an empty operation"
    return errors


def docs_of(items: list[dict[str, Any]]) -> list[Document]:
    return [Document(d, SourceRef("gen", i)) for i, d in enumerate(items)]


def k8s(text: str) -> PolicySet:
    return api.load(parse_text(text, "np.yaml")).policies


def istio_read(docs: list[dict[str, Any]]) -> PolicySet:
    from polyfence.translators.istio import IstioTranslator

    return IstioTranslator().to_canonical(docs_of(docs)).value


def write(ps: PolicySet, inventory: Inventory | None = MESH, **extra: Any) -> Translation[Any]:
    out = render(ps, RenderOptions(inventory=inventory, extra=extra))
    assert not crd_errors(out.value)
    assert out.value == render(ps, RenderOptions(inventory=inventory, extra=extra)).value
    return out


def losses(out: Translation[Any], feature: Feature | None = None) -> list[Loss]:
    return [x for x in out.report.losses if feature is None or x.feature is feature]


def effects(out: Translation[Any], feature: Feature) -> set[Effect]:
    return {x.effect for x in losses(out, feature)}


def strip_egress(ps: PolicySet) -> PolicySet:
    import dataclasses

    return ps.with_policies(dataclasses.replace(p, egress=NOT_GOVERNED) for p in ps)


def tcp_ingress_diff(
    source: PolicySet, output: PolicySet, inv: Inventory, profile: EvaluationProfile = PROFILE
) -> tuple[list[tuple[str, str, int]], list[tuple[str, str, int]]]:
    """(wider, narrower) witnesses on what Istio can enforce: TCP into mesh workloads, the
    source's egress left aside. Self traffic is skipped (always allowed)."""
    a, b = strip_egress(source), output
    u = Universe(inv, [a, b], profile)
    ca, cb = Connectivity(u, a), Connectivity(u, b)
    wider: list[tuple[str, str, int]] = []
    narrower: list[tuple[str, str, int]] = []
    for d, dst in enumerate(u.classes):
        ep = dst.representative.endpoint
        if ep is None or not ep.mesh or not u.matcher.acts_as_pod(ep):
            continue
        for s, src in enumerate(u.classes):
            if s == d and len(dst.members) == 1:
                continue
            xa, xb = ca.allowed(s, d) & TCP_CONNS, cb.allowed(s, d) & TCP_CONNS
            for diff, out in ((xb - xa, wider), (xa - xb, narrower)):
                sample = diff.sample()
                if sample is not None:
                    out.append((repr(src.representative), ep.ref, sample[1] or 0))
    return wider, narrower


# Losses about what lies outside the TCP-ingress-to-mesh comparison.
OUTSIDE = {Feature.EGRESS, Feature.PROTOCOL, Feature.LAYER}


def tcp_effects(out: Translation[Any]) -> set[Effect]:
    return {x.effect for x in out.report.losses if x.feature not in OUTSIDE}


def judged(source: PolicySet, out: Translation[Any], inv: Inventory = MESH) -> tuple[Any, Any]:
    """Read the output back and hold the report to the engine's verdict."""
    back = istio_read(out.value)
    wider, narrower = tcp_ingress_diff(source, back, inv)
    said = tcp_effects(out)
    assert not wider or Effect.WIDENED in said, (wider, out.report.losses)
    assert not narrower or Effect.NARROWED in said, (narrower, out.report.losses)
    return wider, narrower


def pol(
    name: str,
    subject: Subject,
    rules: tuple[Rule, ...] = (),
    isolates: bool = True,
    **kw: Any,
) -> Policy:
    return Policy(
        PolicyId("calico", subject.namespace, name), subject, Governed(rules, isolates), **kw
    )


TCP80 = (PortSpec.single(Protocol.TCP, IntervalSet.point(80)),)


# -- subjects ---------------------------------------------------------------------------------


def test_matchlabels_subject_and_namespace_wide_policy() -> None:
    ps = k8s("""
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-api, namespace: prod, labels: {team: x}}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress: [{from: [{podSelector: {matchLabels: {app: api}}}], ports: [{port: 8080}]}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: all-ns, namespace: dev}
spec:
  podSelector: {}
  ingress: [{from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: prod}}}]}]
""")
    out = write(ps)
    first, second = out.value
    assert first["metadata"] == {"name": "allow-api", "namespace": "prod", "labels": {"team": "x"}}
    assert first["spec"]["selector"] == {"matchLabels": {"app": "web"}}
    assert first["spec"]["action"] == "ALLOW"
    assert first["spec"]["rules"][0]["to"] == [{"operation": {"ports": ["8080"]}}]
    assert "selector" not in second["spec"]
    assert second["spec"]["rules"] == [{"from": [{"source": {"namespaces": ["prod"]}}]}]
    judged(ps, out)


def test_in_and_or_subjects_split_into_exact_policies() -> None:
    ps = k8s("""
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: p, namespace: prod}
spec:
  podSelector: {matchExpressions: [{key: tier, operator: In, values: [a, b]}]}
  ingress: [{ports: [{port: 80}]}]
""")
    out = write(ps, None)
    assert [d["metadata"]["name"] for d in out.value] == ["p-1", "p-2"]
    assert [d["spec"]["selector"]["matchLabels"] for d in out.value] == [
        {"tier": "a"},
        {"tier": "b"},
    ]
    assert not losses(out, Feature.SELECTOR_EXPRESSION)
    assert judged(ps, write(ps)) == ([], [])


def test_inexpressible_subject_is_enumerated_only_when_exact() -> None:
    ps = k8s("""
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: not-db, namespace: prod}
spec:
  podSelector: {matchExpressions: [{key: app, operator: NotIn, values: [db, batch]}]}
  ingress: [{ports: [{port: 80}]}]
""")
    out = write(ps)
    assert Effect.INVENTORY_DEPENDENT in effects(out, Feature.SELECTOR_EXPRESSION)
    selectors = [d["spec"]["selector"]["matchLabels"] for d in out.value]
    assert {"app": "api"} in selectors and {"app": "web", "tier": "a"} in selectors
    assert judged(ps, out) == ([], [])
    # tier=a selects web (app=web, tier=a) only; a second pod with the same labels but without
    # the key the selector excludes cannot be told apart by labels: not written, widened
    exists = k8s("""
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: has-tier, namespace: prod}
spec:
  podSelector: {matchExpressions: [{key: tier, operator: Exists}, {key: app, operator: NotIn, values: [x]}]}
  ingress: []
""")
    extra = Endpoint(
        "Pod",
        "prod",
        "web-x",
        {"app": "web", "tier": "a", "x": "1"},
        "web",
        ("10.0.1.9",),
        mesh=True,
    )
    assert write(exists).value  # exact on the fixture
    inv = build_inventory(MESH.namespaces, [*MESH.endpoints, extra])
    skipped = write(
        k8s("""
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: no-x, namespace: prod}
spec:
  podSelector: {matchExpressions: [{key: x, operator: DoesNotExist}]}
  ingress: []
"""),
        inv,
    )
    assert not skipped.value
    assert Effect.WIDENED in effects(skipped, Feature.SELECTOR_EXPRESSION)
    assert "prod/web-x" in str(losses(skipped, Feature.SELECTOR_EXPRESSION)[0])
    no_inventory = write(ps, None)
    assert not no_inventory.value
    assert Effect.WIDENED in effects(no_inventory, Feature.SELECTOR_EXPRESSION)


def test_a_skipped_policy_loses_its_allows_too() -> None:
    """Where another policy isolates the same pods, an unwritten policy's allows are missed:
    skipping narrows as well as widens (found by the engine-judged property)."""
    ps = k8s("""
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: isolate, namespace: prod}
spec: {podSelector: {}, policyTypes: [Ingress]}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: untiered, namespace: prod}
spec:
  podSelector: {matchExpressions: [{key: tier, operator: DoesNotExist}]}
  ingress: [{ports: [{port: 5432}]}]
""")
    assert Effect.INVENTORY_DEPENDENT in effects(write(ps), Feature.SELECTOR_EXPRESSION)
    twin = Endpoint(
        "Pod", "prod", "db-c", {"app": "db", "tier": "c"}, "db", ("10.0.1.8",), mesh=True
    )
    inv = build_inventory(MESH.namespaces, [*MESH.endpoints, twin])
    out = write(ps, inv)
    assert effects(out, Feature.SELECTOR_EXPRESSION) == {Effect.WIDENED, Effect.NARROWED}
    assert "prod/db-c" in losses(out, Feature.SELECTOR_EXPRESSION)[0].message
    _, narrower = judged(ps, out, inv)
    assert any(dst.startswith("prod/db[") and port == 5432 for _, dst, port in narrower)


def test_cluster_wide_subject_goes_to_the_root_namespace() -> None:
    ps = PolicySet(
        (
            pol("gnp", Subject(None, Eq("app", "web"), All()), (Rule(ports=TCP80),)),
            pol(
                "gnp-named",
                Subject(None, All(), In("kubernetes.io/metadata.name", frozenset({"dev", "prod"}))),
            ),
            pol("gnp-labels", Subject(None, Eq("app", "db"), Eq("team", "x"))),
        )
    )
    out = write(ps, None)
    root, *named = out.value
    assert root["metadata"] == {"name": "gnp", "namespace": "istio-system"}
    assert root["spec"]["selector"] == {"matchLabels": {"app": "web"}}
    assert [(d["metadata"]["namespace"], d["spec"].get("rules")) for d in named] == [
        ("dev", None),
        ("prod", None),
    ]
    (lost,) = losses(out, Feature.CLUSTER_SCOPE)  # only the label-selected one, no inventory
    assert lost.effect is Effect.WIDENED and "gnp-labels" in lost.message
    expanded = write(ps)
    assert tuple(
        d["metadata"]["namespace"] for d in expanded.value if d["metadata"]["name"] == "gnp-labels"
    ) == ("legacy", "prod")
    assert Effect.INVENTORY_DEPENDENT in effects(expanded, Feature.CLUSTER_SCOPE)
    custom = write(ps, None, root_namespace="mesh-root")
    assert custom.value[0]["metadata"]["namespace"] == "mesh-root"
    judged(ps, expanded)


def test_policy_in_the_root_namespace_is_not_written_as_mesh_wide() -> None:
    ps = PolicySet((pol("np", Subject("istio-system", Eq("app", "x"))),))
    out = write(ps)
    assert not out.value
    assert Effect.WIDENED in effects(out, Feature.CLUSTER_SCOPE)


def test_workloads_outside_the_mesh_are_reported() -> None:
    ps = k8s("""
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-legacy, namespace: legacy}
spec: {podSelector: {}, policyTypes: [Ingress]}
""")
    out = write(ps)
    (layer,) = losses(out, Feature.LAYER)
    assert layer.effect is Effect.WIDENED and "legacy/old" in layer.message
    no_inventory = write(ps, None)
    assert Effect.INVENTORY_DEPENDENT in effects(no_inventory, Feature.LAYER)
    # the engine agrees: Istio enforces nothing on a workload without a proxy
    back = istio_read(out.value)
    assert compare(ps, back, MESH).relation is Relation.WIDER


# -- rules, isolation, actions ----------------------------------------------------------------


def test_trap3_isolation_without_rules_is_an_allow_policy_without_rules() -> None:
    ps = k8s("""
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-all, namespace: prod}
spec: {podSelector: {matchLabels: {app: db}}, policyTypes: [Ingress]}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-all, namespace: dev}
spec: {podSelector: {}, ingress: [{}]}
""")
    out = write(ps)
    deny_all, allow_all = out.value
    assert deny_all["spec"] == {"selector": {"matchLabels": {"app": "db"}}, "action": "ALLOW"}
    assert allow_all["spec"] == {"action": "ALLOW", "rules": [{}]}
    # allow-all restricts nothing: no protocol or mesh loss for it
    assert all("allow-all" not in x.message for x in out.report.losses)
    assert judged(ps, out) == ([], [])
    back = istio_read(out.value)
    assert back.policies[0].ingress == Governed((), True)


def test_trap20_egress_is_reported_never_inverted() -> None:
    ps = k8s("""
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: egress, namespace: prod}
spec:
  podSelector: {matchLabels: {app: web}}
  policyTypes: [Egress]
  egress: [{to: [{ipBlock: {cidr: 1.2.3.0/24}}]}]
""")
    out = write(ps)
    assert out.value == []
    (loss,) = losses(out, Feature.EGRESS)
    assert (loss.effect, loss.treatment) == (Effect.WIDENED, Treatment.DROPPED)
    assert loss.source == SourceRef("np.yaml", 0, "")
    allow_all = write(
        k8s("""
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: open, namespace: prod}
spec: {podSelector: {}, policyTypes: [Egress], egress: [{}]}
""")
    )
    assert not allow_all.report.losses  # an egress that allows everything loses nothing


def test_non_tcp_is_reported_once_per_isolating_policy() -> None:
    ps = k8s("""
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: dns, namespace: prod}
spec:
  podSelector: {matchLabels: {app: db}}
  ingress: [{ports: [{port: 53, protocol: UDP}, {port: 53, protocol: SCTP}, {port: 5432}]}]
""")
    out = write(ps)
    (proto,) = losses(out, Feature.PROTOCOL)
    assert proto.effect is Effect.WIDENED and "UDP/SCTP/ICMP bypass the proxy" in proto.message
    assert out.value[0]["spec"]["rules"] == [{"to": [{"operation": {"ports": ["5432"]}}]}]
    udp_only = write(
        k8s("""
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: udp, namespace: prod}
spec:
  podSelector: {matchLabels: {app: db}}
  ingress: [{ports: [{port: 53, protocol: UDP}]}]
""")
    )
    assert "rules" not in udp_only.value[0]["spec"]  # isolates TCP, allows no TCP
    assert judged(ps, out) == ([], [])


def test_deny_rules_become_deny_policies_only_without_an_earlier_allow() -> None:
    sub = Subject("prod", Eq("app", "db"))
    deny = Rule(
        Action.DENY, (Peer(ip=IpMatch(("10.0.2.0/24",))),), TCP80, source=SourceRef("c", 0, "/d")
    )
    allow = Rule(Action.ALLOW, ANY_PEER, ANY_PORTS, source=SourceRef("c", 0, "/a"))
    ok = PolicySet((pol("first-deny", sub, (deny, allow), isolates=False),))
    out = write(ok)
    assert [d["spec"]["action"] for d in out.value] == ["DENY", "ALLOW"]
    assert [d["metadata"]["name"] for d in out.value] == ["first-deny-deny", "first-deny-allow"]
    assert out.value[0]["spec"]["rules"] == [
        {
            "from": [{"source": {"ipBlocks": ["10.0.2.0/24"]}}],
            "to": [{"operation": {"ports": ["80"]}}],
        }
    ]
    assert not losses(out, Feature.ORDER)
    assert Effect.NARROWED in effects(out, Feature.ALLOW_WITHOUT_ISOLATION)
    late = PolicySet((pol("late-deny", sub, (Rule(ports=TCP80), deny), isolates=False),))
    out = write(late)
    (order,) = losses(out, Feature.ORDER)
    assert order.effect is Effect.NARROWED and order.source == SourceRef("c", 0, "/d")
    wider, narrower = judged(late, out)
    assert narrower and not wider
    # a deny that nothing after it could undo is left to isolation: exact
    last = PolicySet((pol("deny-last", sub, (Rule(ports=TCP80), deny)),))
    out = write(last)
    assert [d["spec"]["action"] for d in out.value] == ["ALLOW"]
    assert judged(last, out) == ([], [])
    # deny-only isolating (Calico / Cilium, trap 10): DENY plus allow-nothing
    only = PolicySet((pol("deny-only", sub, (deny,)),))
    assert [d["spec"]["action"] for d in write(only).value] == ["ALLOW"]
    only_open = PolicySet((pol("deny-only", sub, (deny,), isolates=False),))
    assert [d["spec"]["action"] for d in write(only_open).value] == ["DENY"]


def test_pass_and_log_rules_are_reported() -> None:
    sub = Subject("prod", Eq("app", "db"))
    ps = PolicySet(
        (pol("p", sub, (Rule(Action.LOG), Rule(Action.PASS, ports=TCP80), Rule(ports=TCP80))),)
    )
    out = write(ps)
    assert effects(out, Feature.LOG_ACTION) == {Effect.NONE}
    assert effects(out, Feature.PASS_ACTION) == {Effect.NARROWED, Effect.WIDENED}


# -- peers ------------------------------------------------------------------------------------


def test_trap21_shared_service_account_widens_and_the_engine_finds_it() -> None:
    ps = k8s("""
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: from-api, namespace: prod}
spec:
  podSelector: {matchLabels: {app: db}}
  ingress: [{from: [{podSelector: {matchLabels: {app: api}}}], ports: [{port: 5432}]}]
""")
    out = write(ps)
    assert out.value[0]["spec"]["rules"][0]["from"] == [
        {"source": {"principals": ["cluster.local/ns/prod/sa/api"]}}
    ]
    shared = [x for x in losses(out, Feature.SERVICE_ACCOUNT) if x.effect is Effect.WIDENED]
    assert shared and "prod/batch" in shared[0].message
    wider, narrower = judged(ps, out)
    assert any(src.startswith("prod/batch") for src, _, port in wider if port == 5432)
    assert not narrower
    other = write(ps, trust_domain="corp.example")
    assert other.value[0]["spec"]["rules"][0]["from"][0]["source"]["principals"] == [
        "corp.example/ns/prod/sa/api"
    ]


def test_pod_peers_without_inventory_are_dropped_never_guessed() -> None:
    ps = k8s("""
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: from-api, namespace: prod}
spec:
  podSelector: {matchLabels: {app: db}}
  ingress: [{from: [{podSelector: {matchLabels: {app: api}}}]}]
""")
    out = write(ps, None)
    assert "rules" not in out.value[0]["spec"]
    assert Effect.NARROWED in effects(out, Feature.SELECTOR_EXPRESSION)


def test_exact_pod_peer_with_its_own_service_account() -> None:
    ps = k8s("""
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: from-web, namespace: prod}
spec:
  podSelector: {matchLabels: {app: db}}
  ingress: [{from: [{podSelector: {matchLabels: {app: web}}}]}]
""")
    out = write(ps)
    assert tcp_effects(out) == {Effect.INVENTORY_DEPENDENT}
    assert judged(ps, out) == ([], [])


def test_service_account_peers_become_principals_without_inventory() -> None:
    sub = Subject("prod", Eq("app", "db"))
    peers = (
        Peer(
            service_account=ServiceAccountMatch(frozenset({"api"})),
            namespace_names=frozenset({"prod"}),
        ),
        Peer(pods=Eq("polyfence.dev/service-account", "client"), namespace_selector=All()),
    )
    ps = PolicySet((pol("sa", sub, (Rule(peers=peers),)),))
    out = write(ps, None)
    assert out.value[0]["spec"]["rules"][0]["from"] == [
        {"source": {"principals": ["cluster.local/ns/prod/sa/api"]}},
        {"source": {"principals": ["*/sa/client"]}},
    ]
    assert effects(out, Feature.PRINCIPAL) == {Effect.INVENTORY_DEPENDENT}
    assert judged(ps, write(ps)) == ([], [])


def test_namespace_peers_need_mtls_and_labels_need_an_inventory() -> None:
    ps = k8s("""
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: from-team-x, namespace: prod}
spec:
  podSelector: {matchLabels: {app: db}}
  ingress: [{from: [{namespaceSelector: {matchLabels: {team: x}}}]}]
""")
    out = write(ps)
    assert out.value[0]["spec"]["rules"][0]["from"] == [
        {"source": {"namespaces": ["legacy", "prod"]}}
    ]
    assert Effect.INVENTORY_DEPENDENT in effects(out, Feature.NAMESPACE_SELECTOR)
    plain = losses(out, Feature.PRINCIPAL)
    assert [x.effect for x in plain] == [Effect.NARROWED] and "legacy/old" in plain[0].message
    wider, narrower = judged(ps, out)
    assert not wider and any(src.startswith("legacy/old") for src, _, _ in narrower)
    no_inventory = write(ps, None)
    assert "rules" not in no_inventory.value[0]["spec"]
    assert Effect.NARROWED in effects(no_inventory, Feature.NAMESPACE_SELECTOR)


def test_ipblock_with_except_is_one_source_and_peers_stay_apart() -> None:
    ps = k8s("""
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: cidr, namespace: prod}
spec:
  podSelector: {matchLabels: {app: db}}
  ingress:
  - from:
    - ipBlock: {cidr: 10.0.0.0/8, except: [10.0.1.0/24]}
    - ipBlock: {cidr: 10.0.1.3/32}
""")
    out = write(ps)
    assert out.value[0]["spec"]["rules"][0]["from"] == [
        {"source": {"ipBlocks": ["10.0.0.0/8"], "notIpBlocks": ["10.0.1.0/24"]}},
        {"source": {"ipBlocks": ["10.0.1.3/32"]}},
    ]
    assert tcp_effects(out) == set()
    assert judged(ps, out) == ([], [])


def test_unsupported_peers_are_dropped_with_the_effect_of_their_action() -> None:
    sub = Subject("prod", Eq("app", "db"))
    ref = SourceRef("c", 0, "/r")
    allow = Rule(peers=(Peer(entity=Entity.WORLD), Peer(ip=IpMatch(("1.2.3.0/24",)))), source=ref)
    deny = Rule(Action.DENY, peers=(Peer(not_pods=Eq("app", "x")),), source=ref)
    out = write(PolicySet((pol("p", sub, (deny, allow)),)))
    assert effects(out, Feature.ENTITY) == {Effect.NARROWED}
    assert effects(out, Feature.NOT_SELECTOR) == {Effect.WIDENED}
    assert [d["spec"]["action"] for d in out.value] == ["ALLOW"]
    sets = PolicySet(
        (pol("s", sub, (Rule(peers=(Peer(pods=Eq("role", "partner"), sets=True),)),)),),
        network_sets=(NetworkSet("partners", "prod", (("role", "partner"),), ("8.8.8.0/24",)),),
    )
    out = write(sets)
    assert {"source": {"ipBlocks": ["8.8.8.0/24"]}} in out.value[0]["spec"]["rules"][0]["from"]


# -- ports ------------------------------------------------------------------------------------


def test_trap23_port_ranges_are_enumerated_or_reported() -> None:
    ps = k8s("""
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: ranges, namespace: prod}
spec:
  podSelector: {matchLabels: {app: db}}
  ingress:
  - ports: [{port: 30000, endPort: 30010}]
  - ports: [{port: 1, endPort: 65000}]
  - ports: [{port: 1000, endPort: 5000}]
""")
    out = write(ps)
    small, most, large = out.value[0]["spec"]["rules"]
    assert small["to"][0]["operation"]["ports"] == [str(p) for p in range(30000, 30011)]
    assert most["to"][0]["operation"]["notPorts"] == [str(p) for p in range(65001, 65536)]
    assert large == {}  # 4001 ports: the port constraint was dropped
    (rng,) = losses(out, Feature.PORT_RANGE)
    assert rng.effect is Effect.WIDENED and rng.source == SourceRef("np.yaml", 0, "/spec/ingress/2")
    wider, narrower = judged(ps, out)
    assert wider and all(not 1000 <= port <= 5000 for _, _, port in wider) and not narrower


def test_named_ports_resolve_on_the_selected_pods() -> None:
    text = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: named, namespace: prod}
spec:
  podSelector: {matchLabels: {app: %s}}
  ingress: [{ports: [{port: http}]}]
"""
    web = k8s(text % "web")
    out = write(web)
    assert out.value[0]["spec"]["rules"] == [{"to": [{"operation": {"ports": ["8080"]}}]}]
    assert effects(out, Feature.NAMED_PORT) == {Effect.INVENTORY_DEPENDENT}
    assert judged(web, out) == ([], [])
    both = k8s(
        text.replace(
            "{matchLabels: {app: %s}}",
            "{matchExpressions: [{key: app, operator: In, values: [web, api]}]}",
        )
    )
    out = write(both)
    assert [d["spec"]["rules"] for d in out.value] == [
        [{"to": [{"operation": {"ports": ["9090"]}}]}],
        [{"to": [{"operation": {"ports": ["8080"]}}]}],
    ]
    mixed = k8s(text.replace("{matchLabels: {app: %s}}", "{}"))
    out = write(mixed)
    assert Effect.WIDENED in effects(out, Feature.NAMED_PORT)
    wider, _ = judged(mixed, out)
    assert wider
    none = write(web, None)
    assert "rules" not in none.value[0]["spec"]
    assert effects(none, Feature.NAMED_PORT) == {Effect.NARROWED}


# -- L7 ---------------------------------------------------------------------------------------


def test_cilium_http_rules_become_operations() -> None:
    ps = api.load(
        parse_text(
            """
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: http, namespace: prod}
spec:
  endpointSelector: {matchLabels: {app: web}}
  ingress:
  - toPorts:
    - ports: [{port: "8080", protocol: TCP}]
      rules:
        http:
        - {method: GET, path: "/public.*"}
        - {method: "GET|POST", path: "/api/[0-9]+"}
""",
            "cnp.yaml",
        )
    ).policies
    out = write(ps)
    (rule,) = out.value[0]["spec"]["rules"]
    assert rule["to"] == [
        {"operation": {"ports": ["8080"], "methods": ["GET"], "paths": ["/public*"]}}
    ]
    assert effects(out, Feature.L7_HTTP) == {Effect.NARROWED}  # the regex match was dropped


def test_http_paths_from_regexes() -> None:
    assert _regex_path("/public") == "/public"
    assert _regex_path("^/public.*$") == "/public*"
    assert _regex_path(".*\\.html") == "*.html"
    assert _regex_path(".+") == "*"
    assert _regex_path("/a/[^/]+/b/.*") == "/a/{*}/b/{**}"
    assert _regex_path("/a/[0-9]+") is None
    assert _regex_path("/a\\d") is None
    assert _regex_path("/a/.*/b") is None


def test_l7_http_on_plain_tcp_ports_is_reported() -> None:
    opaque = build_inventory(
        MESH.namespaces,
        [
            ep if ep.name != "web" else Endpoint(**{**_fields(ep), "opaque_ports": (8080,)})
            for ep in MESH.endpoints
        ],
    )
    http = L7Match(http=(HttpMatch(frozenset({"GET"})),))
    sub = Subject("prod", Eq("app", "web"))
    ps = PolicySet(
        (pol("h", sub, (Rule(ports=(PortSpec.single(6, IntervalSet.point(8080)),), l7=http),)),)
    )
    out = write(ps, opaque)
    assert effects(out, Feature.L7_HTTP) == {Effect.NARROWED}
    assert judged(ps, out, opaque)[1]
    assert effects(write(ps), Feature.L7_HTTP) == set()


def _fields(ep: Endpoint) -> dict[str, Any]:
    return {f: getattr(ep, f) for f in Endpoint.__dataclass_fields__}


# -- Istio-origin policies --------------------------------------------------------------------

ISTIO = """
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-get, namespace: prod, labels: {owner: sec}}
spec:
  selector: {matchLabels: {app: web}}
  rules:
  - from:
    - source: {principals: ["cluster.local/ns/prod/sa/api"], notNamespaces: [dev]}
    - source: {serviceAccounts: [client], ipBlocks: [10.0.0.0/8], notIpBlocks: [10.0.3.0/24]}
    to:
    - operation: {ports: ["8080"], methods: [GET], paths: ["/info*", "*.css", "/x/{*}"], notMethods: [DELETE]}
    when:
    - {key: "request.headers[x-user]", values: [admin]}
  - from: [{source: {requestPrincipals: ["issuer/*"]}}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny, namespace: prod}
spec:
  action: DENY
  rules: [{to: [{operation: {notPorts: ["8080"]}}]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: nothing, namespace: istio-system}
spec: {}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: audit, namespace: dev}
spec:
  action: AUDIT
  rules: [{}]
"""


def test_istio_policies_are_written_back_exactly() -> None:
    docs = [d.data for d in parse_text(ISTIO, "ap.yaml")]
    ps = istio_read(docs)
    out = write(ps)
    assert [x.effect for x in out.report.losses] == [Effect.NONE]  # the AUDIT note
    allow, deny, nothing, audit = out.value
    assert allow["metadata"]["labels"] == {"owner": "sec"}
    first = allow["spec"]["rules"][0]
    assert first["from"][0]["source"] == {
        "principals": ["cluster.local/ns/prod/sa/api"],
        "notNamespaces": ["dev"],
    }
    assert first["from"][1]["source"] == {
        "ipBlocks": ["10.0.0.0/8"],
        "notIpBlocks": ["10.0.3.0/24"],
        "principals": ["*/ns/prod/sa/client"],
    }
    assert first["to"][0]["operation"] == {
        "ports": ["8080"],
        "methods": ["GET"],
        "paths": ["/info*", "*.css", "/x/{*}"],
        "notMethods": ["DELETE"],
    }
    assert first["when"] == [{"key": "request.headers[x-user]", "values": ["admin"]}]
    assert allow["spec"]["rules"][1] == {"from": [{"source": {"requestPrincipals": ["issuer/*"]}}]}
    assert deny["spec"] == {
        "action": "DENY",
        "rules": [{"to": [{"operation": {"notPorts": ["8080"]}}]}],
    }
    assert nothing["metadata"]["namespace"] == "istio-system" and nothing["spec"] == {
        "action": "ALLOW"
    }
    assert audit["spec"] == {"action": "AUDIT", "rules": [{}]}
    back = istio_read(out.value)
    for a, b in zip(ps, back, strict=True):
        assert (a.subject, a.ingress, a.order, a.labels) == (
            b.subject,
            b.ingress,
            b.order,
            b.labels,
        )


def test_custom_policies_come_back_as_audit() -> None:
    custom = """
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ext, namespace: prod}
spec:
  action: CUSTOM
  provider: {name: authz}
  rules: [{to: [{operation: {paths: [/admin]}}]}]
"""
    out = write(istio_read([d.data for d in parse_text(custom, "c.yaml")]))
    assert out.value[0]["spec"]["action"] == "AUDIT"
    (note,) = out.report.losses
    assert note.effect is Effect.NONE and "CUSTOM" in note.message


def test_mixing_layers_is_reported() -> None:
    mesh = istio_read([d.data for d in parse_text(ISTIO, "ap.yaml")])
    net = k8s("""
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: n, namespace: prod}
spec: {podSelector: {}, ingress: [{}]}
""")
    out = write(mesh.merge(net))
    assert Effect.WIDENED in effects(out, Feature.LAYER)


def test_cloud_policies_are_dropped() -> None:
    ps = PolicySet((pol("sg", Subject(None, security_group="sg-1"), layer=Layer.CLOUD),))
    out = write(ps)
    assert not out.value and effects(out, Feature.LAYER) == {Effect.WIDENED}


def test_istio_translator_uses_this_writer() -> None:
    from polyfence.translators.istio import IstioTranslator

    docs = [d.data for d in parse_text(ISTIO, "ap.yaml")]
    ps = istio_read(docs)
    assert IstioTranslator().from_canonical(ps).value == render(ps, RenderOptions()).value


def test_rule_local_side_becomes_its_own_policy() -> None:
    rule = Rule(ports=TCP80, local=Peer(pods=Eq("app", "db")))
    ps = PolicySet((pol("local", Subject("prod", In("app", frozenset({"db", "web"}))), (rule,)),))
    out = write(ps)
    assert [(d["metadata"]["name"], d["spec"].get("selector")) for d in out.value] == [
        ("local-1", {"matchLabels": {"app": "db"}}),
        ("local-2", {"matchLabels": {"app": "web"}}),
        ("local-3", {"matchLabels": {"app": "db"}}),
    ]
    assert judged(ps, out) == ([], [])


def test_selector_with_principal_and_pods_is_dropped() -> None:
    peer = Peer(pods=Eq("app", "api"), principal=PrincipalMatch(frozenset({"*"})))
    out = write(PolicySet((pol("x", Subject("prod", All()), (Rule(peers=(peer,)),)),)))
    assert effects(out, Feature.PRINCIPAL) == {Effect.NARROWED}
    assert out.value[0]["spec"] == {"action": "ALLOW"}  # the only peer is gone: allow nothing


# -- corpus -----------------------------------------------------------------------------------


def meshed(inv: Inventory) -> Inventory:
    """Every pod in the mesh, each label set with a service account of its own."""
    import dataclasses

    accounts: dict[tuple[tuple[str, str], ...], str] = {}
    pods = []
    for ep in inv.endpoints:
        if ep.is_pod:
            key = tuple(sorted(ep.labels.items()))
            sa = accounts.setdefault(key, f"sa-{len(accounts)}")
            ep = dataclasses.replace(ep, mesh=True, service_account=sa)
        pods.append(ep)
    return build_inventory(inv.namespaces, pods, inv.services)


@pytest.mark.parametrize("path", corpus_files("k8s"), ids=lambda p: p.name)
def test_k8s_corpus_to_istio(path: Path) -> None:
    bundle = api.load([str(path)])
    plain = write(bundle.policies, None)
    assert all(x.source is not None or x.feature is Feature.TIER for x in plain.report.losses)
    inv = meshed(bundle.inventory if bundle.inventory.endpoints else synthesise([bundle.policies]))
    out = write(bundle.policies, inv)
    judged(bundle.policies, out, inv)


@pytest.mark.parametrize("path", corpus_files("istio"), ids=lambda p: p.name)
def test_istio_corpus_round_trips_through_the_writer(path: Path) -> None:
    bundle = api.load([str(path)])
    out = write(bundle.policies, None)
    assert not [x for x in out.report.losses if x.effect is not Effect.NONE]
    back = istio_read(out.value)
    inv = meshed(synthesise([bundle.policies, back]))
    assert compare(bundle.policies, back, inv).relation is Relation.EQUIVALENT


# -- properties -------------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(
    items=st.one_of(k8s_policy_lists(), k8s_ingress_lists()),
    inv=mesh_inventories(),
    with_inventory=st.booleans(),
)
def test_k8s_to_istio_losses_match_the_engine(
    items: list[dict[str, Any]], inv: Inventory, with_inventory: bool
) -> None:
    ps = api.load(docs_of(items)).policies
    out = write(ps, inv if with_inventory else None)
    if with_inventory:
        judged(ps, out, inv)
    else:  # without an inventory nothing inventory-dependent may pass for exact
        said = tcp_effects(out)
        wider, narrower = tcp_ingress_diff(ps, istio_read(out.value), inv)
        assert not wider or said & {Effect.WIDENED, Effect.INVENTORY_DEPENDENT}
        assert not narrower or said & {Effect.NARROWED, Effect.INVENTORY_DEPENDENT}


@settings(max_examples=150, deadline=None)
@given(
    items=istio_policy_lists(),
    inv=mesh_inventories(),
    default=st.sampled_from(("PERMISSIVE", "STRICT")),
)
def test_istio_round_trip_is_equivalent(
    items: list[dict[str, Any]], inv: Inventory, default: str
) -> None:
    ps = istio_read(items)
    out = write(ps, None)
    assert not [x for x in out.report.losses if x.effect is not Effect.NONE], out.report.losses
    back = istio_read(out.value)
    profile = EvaluationProfile(mtls_default=default)
    assert compare(ps, back, inv, profile).relation is Relation.EQUIVALENT
    assert write(back, None).value == out.value  # stable: writing what was read back
