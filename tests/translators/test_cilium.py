"""Cilium translator: corpus, Cilium's semantics traps, round trips judged by the engine."""

from __future__ import annotations

import dataclasses
import functools
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
from polyfence.io.files import parse_text
from polyfence.model.document import Document
from polyfence.model.peers import Entity, Peer
from polyfence.model.policy import Action, Governed, PolicySet, Rule
from polyfence.model.provenance import SourceRef
from polyfence.semantics.compare import Relation, compare
from polyfence.semantics.profile import EvaluationProfile
from polyfence.semantics.verdict import Connection, verdict
from polyfence.translators.cilium import CiliumTranslator
from polyfence.translators.cilium.reader import DENY_ORDER
from polyfence.translators.kubernetes import KubernetesTranslator
from tests.conftest import DATA, corpus_files
from tests.strategies import inventories, k8s_fragment_sets, k8s_policy_lists

CILIUM = CiliumTranslator()
K8S = KubernetesTranslator()
PROFILE = EvaluationProfile(ipblock_matches_pods=False, ipblock_matches_nodes=False)


def read(text: str) -> PolicySet:
    return CILIUM.to_canonical(parse_text(text, "c.yaml")).value


def docs_of(items: list[dict[str, Any]]) -> list[Document]:
    return [Document(d, SourceRef("gen", i)) for i, d in enumerate(items)]


@functools.cache
def crd_validator(kind: str) -> jsonschema.protocols.Validator:
    name = (
        "ciliumnetworkpolicies"
        if kind == "CiliumNetworkPolicy"
        else "ciliumclusterwidenetworkpolicies"
    )
    crd = yaml.safe_load((DATA / f"upstream-schemas/cilium/{name}.yaml").read_text())
    return jsonschema.Draft7Validator(crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"])


# traps (semantics.md §8) -------------------------------------------------------------------

WEB = Endpoint("Pod", "prod", "web", {"app": "web"}, "default", ("10.0.0.2",), (), "n1")
FE = Endpoint("Pod", "prod", "fe", {"role": "fe"}, "default", ("10.0.0.3",), (), "n1")
OTHER = Endpoint("Pod", "dev", "fe", {"role": "fe"}, "default", ("10.0.1.3",), (), "n1")
NODE = Endpoint("Node", None, "n2", {}, None, ("192.168.0.2",))
INV = build_inventory(
    [Namespace("prod", {"team": "a"}), Namespace("dev", {"team": "b"})], [WEB, FE, OTHER, NODE]
)

CNP = """
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: p, namespace: prod}
spec:
  endpointSelector: {matchLabels: {app: web}}
"""


def allowed(
    ps: PolicySet, src: Endpoint | str, dst: Endpoint | str, port: int = 80, proto: int = 6
) -> bool:
    return verdict(ps, Connection(src, dst, proto, port), INV, PROFILE).allowed


def test_empty_list_versus_empty_rule() -> None:
    """Trap 3/4: `ingress: []` says nothing; `ingress: [{}]` isolates and allows nothing."""
    assert allowed(read(CNP + "  ingress: []\n"), FE, WEB)
    isolated = read(CNP + "  ingress: [{}]\n")
    assert not allowed(isolated, FE, WEB) and not allowed(isolated, "8.8.8.8", WEB)


def test_everyone_is_spelled_differently() -> None:
    """Trap 5: CNP `fromEndpoints: [{}]` = same namespace; CCNP = all pods; `all` = everything."""
    same_ns = read(CNP + "  ingress: [{fromEndpoints: [{}]}]\n")
    assert (
        allowed(same_ns, FE, WEB)
        and not allowed(same_ns, OTHER, WEB)
        and not allowed(same_ns, "8.8.8.8", WEB)
    )
    ccnp = read(
        CNP.replace("CiliumNetworkPolicy", "CiliumClusterwideNetworkPolicy").replace(
            ", namespace: prod", ""
        )
        + "  ingress: [{fromEndpoints: [{}]}]\n"
    )
    assert allowed(ccnp, OTHER, WEB) and not allowed(ccnp, "8.8.8.8", WEB)
    everything = read(CNP + "  ingress: [{fromEntities: [all]}]\n")
    assert allowed(everything, "8.8.8.8", WEB) and allowed(everything, OTHER, WEB)


def test_namespace_label_selectors_stay_in_namespace_without_the_pod_namespace_key() -> None:
    """Trap 15."""
    confined = read(
        CNP
        + "  ingress: [{fromEndpoints: [{matchLabels: {io.cilium.k8s.namespace.labels.team: b}}]}]\n"
    )
    assert not allowed(confined, OTHER, WEB)
    crossing = read(
        CNP + "  ingress: [{fromEndpoints: [{matchLabels: {io.cilium.k8s.namespace.labels.team: b},"
        " matchExpressions: [{key: k8s:io.kubernetes.pod.namespace, operator: Exists}]}]}]\n"
    )
    assert allowed(crossing, OTHER, WEB) and not allowed(crossing, FE, WEB)


def test_deny_beats_allow_and_deny_only_isolates() -> None:
    """Traps 10 and 11: no order; a deny-only policy switches on default deny."""
    both = read(
        CNP
        + "  ingress: [{fromEntities: [all]}]\n  ingressDeny: [{fromEndpoints: [{matchLabels: {role: fe}}]}]\n"
    )
    assert not allowed(both, FE, WEB) and allowed(both, "8.8.8.8", WEB)
    assert any(p.order == DENY_ORDER for p in both)
    deny_only = read(CNP + "  ingressDeny: [{fromEndpoints: [{matchLabels: {role: fe}}]}]\n")
    assert not allowed(deny_only, "8.8.8.8", WEB)
    soft = read(
        CNP
        + "  enableDefaultDeny: {ingress: false}\n  ingressDeny: [{fromEndpoints: [{matchLabels: {role: fe}}]}]\n"
    )
    assert allowed(soft, "8.8.8.8", WEB) and not allowed(soft, FE, WEB)


def test_protocol_defaults_to_any_and_port_zero_is_all() -> None:
    """Trap 8: Cilium's omitted protocol is TCP+UDP+SCTP."""
    ps = read(CNP + "  ingress: [{toPorts: [{ports: [{port: '53'}]}]}]\n")
    assert (
        allowed(ps, FE, WEB, 53, 6)
        and allowed(ps, FE, WEB, 53, 17)
        and not allowed(ps, FE, WEB, 54)
    )
    all_ports = read(CNP + "  ingress: [{toPorts: [{ports: [{port: '0', protocol: UDP}]}]}]\n")
    assert allowed(all_ports, FE, WEB, 9999, 17) and not allowed(all_ports, FE, WEB, 9999, 6)


def test_cidr_rules_do_not_match_pods_in_the_cilium_profile() -> None:
    """Trap 9: under Cilium's profile a CIDR covering pod IPs still admits only outside peers."""
    ps = read(CNP + "  ingress: [{fromCIDR: [10.0.0.0/8]}]\n")
    assert allowed(ps, "10.9.9.9", WEB) and not allowed(ps, FE, WEB)


def test_entities_world_host_cluster() -> None:
    ps = read(CNP + "  ingress: [{fromEntities: [host, remote-node]}]\n")
    assert allowed(ps, NODE, WEB) and not allowed(ps, FE, WEB) and not allowed(ps, "8.8.8.8", WEB)
    world = read(CNP + "  ingress: [{fromEntities: [world]}]\n")
    assert allowed(world, "8.8.8.8", WEB) and not allowed(world, FE, WEB)


@pytest.mark.parametrize(
    ("tail", "pointer", "needle"),
    [
        (
            "  ingress: [{fromEndpoints: [{matchExpressions: [{key: a, operator: in, values: [x]}]}]}]",
            "/spec/ingress/0/fromEndpoints/0/matchExpressions/0/operator",
            "in",
        ),
        (
            "  ingress: [{fromCIDRSet: [{cidr: 10.0.0.0/8, except: [11.0.0.0/8]}]}]",
            "/spec/ingress/0/fromCIDRSet/0/except/0",
            "inside",
        ),
        ("  ingress: [{fromEntities: [moon]}]", "/spec/ingress/0/fromEntities/0", "'moon' is not"),
        (
            "  ingress: [{toPorts: [{ports: [{port: '80', protocol: ICMP}]}]}]",
            "/spec/ingress/0/toPorts/0/ports/0/protocol",
            "protocol",
        ),
        (
            "  ingress: [{icmps: [{fields: [{type: Bogus}]}]}]",
            "/spec/ingress/0/icmps/0/fields/0/type",
            "type 'Bogus'",
        ),
        # hostile shapes: refused where the CRD refuses them, never a traceback
        ("  ingress: [7]", "/spec/ingress/0", "not of type 'object'"),
        ("  ingress: {}", "/spec/ingress", "not of type 'array'"),
        ("  enableDefaultDeny: 'yes'", "/spec/enableDefaultDeny", "not of type 'object'"),
        (
            "  ingress: [{toPorts: [{ports: [{port: '70000'}]}]}]",
            "/spec/ingress/0/toPorts/0/ports/0/port",
            "outside 0-65535",
        ),
        (
            "  egress: [{toFQDNs: [{matchPattern: '***..'}]}]",
            "/spec/egress/0/toFQDNs/0/matchPattern",
            "pattern",
        ),
    ],
)
def test_bad_input_is_located(tail: str, pointer: str, needle: str) -> None:
    with pytest.raises(InputError) as info:
        read(CNP + tail + "\n")
    assert any(d.source.pointer == pointer and needle in str(d) for d in info.value.diagnostics), [
        str(d) for d in info.value.diagnostics
    ]


# corpus ------------------------------------------------------------------------------------

REJECTED_UPSTREAM = {  # the lowercase operator the Cilium v1.16.5 CRD also rejects
    "l3-match-expressions-and.yaml": "/spec/ingress/0/fromEndpoints/0/matchExpressions/0/operator",
    "l3-match-expressions-or.yaml": "/spec/ingress/0/fromEndpoints/0/matchExpressions/0/operator",
}


@pytest.mark.parametrize("path", corpus_files("cilium"), ids=lambda p: p.name)
def test_cilium_corpus_reads_and_round_trips(path: Path) -> None:
    if path.name in REJECTED_UPSTREAM:
        with pytest.raises(InputError) as info:
            api.load([str(path)])
        assert info.value.diagnostics[0].source.pointer == REJECTED_UPSTREAM[path.name]
        return
    bundle = api.load([str(path)])
    out = CILIUM.from_canonical(bundle.policies)
    for doc in out.value:
        assert not [e.message for e in crd_validator(doc["kind"]).iter_errors(doc)]
    back = CILIUM.to_canonical(docs_of(out.value)).value
    assert api.compare(bundle.policies, back, profile=PROFILE).relation is Relation.EQUIVALENT


@pytest.mark.parametrize("path", corpus_files("k8s"), ids=lambda p: p.name)
def test_k8s_corpus_to_cilium(path: Path) -> None:
    bundle = api.load([str(path)])
    result = api.convert(bundle, "cilium")
    for doc in result.documents:
        assert not [e.message for e in crd_validator(doc["kind"]).iter_errors(doc)]
        for rule in doc["spec"].get("ingress", []) + doc["spec"].get("egress", []):
            for entry in rule.get("toPorts", []):
                assert all("protocol" in p for p in entry["ports"])  # never Cilium's ANY default
    assert result.report.verification is not None
    if path.name.startswith("cilium-conn-"):
        # Cilium's own tests select with its identity labels (io.kubernetes.pod.namespace,
        # io.cilium.k8s.policy.cluster), which Kubernetes reads as plain pod labels:
        # reported, never silently re-meant, and never widening.
        effects = {loss.effect for loss in result.report.losses}
        assert effects and Effect.WIDENED not in effects
    else:
        assert result.report.exact, result.report.losses


# round trips judged by the engine ----------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(items=k8s_policy_lists(), inv=inventories())
def test_k8s_to_cilium_to_k8s(items: list[dict[str, Any]], inv: Inventory) -> None:
    ir = K8S.to_canonical(docs_of(items)).value
    out = CILIUM.from_canonical(ir)
    assert not out.report.losses
    mid = CILIUM.to_canonical(docs_of(out.value)).value
    for profile in (PROFILE, EvaluationProfile()):
        assert compare(ir, mid, inv, profile).relation is Relation.EQUIVALENT
    k8s = K8S.from_canonical(mid)
    assert (
        compare(ir, K8S.to_canonical(docs_of(k8s.value)).value, inv).relation is Relation.EQUIVALENT
    )


@st.composite
def cilium_sets(draw: Any) -> PolicySet:
    """The Cilium fragment: allow parts plus deny parts (deny beats allow), default-deny flags,
    entities; built from k8s-derived policies the way the Cilium reader shapes them."""
    base = K8S.to_canonical(docs_of(draw(k8s_policy_lists()))).value
    out = []
    for pol in base:

        def shape(rules: Any, action: Action) -> Any:
            if not isinstance(rules, Governed):
                return rules
            kept = tuple(
                dataclasses.replace(r, action=action) for r in rules.rules if draw(st.booleans())
            )
            if draw(st.booleans()):
                entity = draw(
                    st.sampled_from([Entity.WORLD, Entity.ALL, Entity.CLUSTER, Entity.HOST])
                )
                kept += (
                    dataclasses.replace(
                        rules.rules[0] if rules.rules else _any_rule(),
                        action=action,
                        peers=(Peer(entity=entity),),
                    ),
                )
            return Governed(kept, draw(st.booleans()))

        out.append(
            dataclasses.replace(
                pol,
                ingress=shape(pol.ingress, Action.ALLOW),
                egress=shape(pol.egress, Action.ALLOW),
            )
        )
        if draw(st.booleans()):
            deny = dataclasses.replace(
                pol,
                id=dataclasses.replace(pol.id, name=pol.id.name + "#deny"),
                ingress=shape(pol.ingress, Action.DENY),
                egress=shape(pol.egress, Action.DENY),
                order=DENY_ORDER,
            )
            out.append(deny)
    return PolicySet(tuple(out))


def _any_rule() -> Any:
    from polyfence.model.policy import Rule

    return Rule()


@settings(max_examples=80, deadline=None)
@given(ir=cilium_sets(), inv=inventories())
def test_cilium_fragment_round_trip_is_exact(ir: PolicySet, inv: Inventory) -> None:
    out = CILIUM.from_canonical(ir)
    for doc in out.value:
        assert not [e.message for e in crd_validator(doc["kind"]).iter_errors(doc)]
    back = CILIUM.to_canonical(docs_of(out.value))
    relation = compare(ir, back.value, inv, PROFILE).relation
    effects = {loss.effect for loss in out.report.losses} - {Effect.NONE}
    if not effects:
        assert relation is Relation.EQUIVALENT, relation
    if relation in (Relation.WIDER, Relation.INCOMPARABLE):
        assert Effect.WIDENED in effects
    if relation in (Relation.NARROWER, Relation.INCOMPARABLE):
        assert Effect.NARROWED in effects


def test_world_to_kubernetes_is_exact_only_where_ipblocks_skip_pods() -> None:
    ps = read(CNP + "  ingress: [{fromEntities: [world]}]\n")
    out = K8S.from_canonical(ps)
    assert [loss.effect for loss in out.report.losses] == [Effect.WIDENED]
    back = K8S.to_canonical(docs_of(out.value)).value
    inv = build_inventory([Namespace("prod", {})], [WEB, FE])
    assert compare(ps, back, inv, PROFILE).relation is Relation.EQUIVALENT
    assert compare(ps, back, inv, EvaluationProfile()).relation is Relation.WIDER


def test_fqdn_peers_resolve_through_inventory_dns_answers() -> None:
    from polyfence.inventory import inventory_from_documents
    from polyfence.translation import RenderOptions

    ps = read(
        CNP.replace("endpointSelector: {matchLabels: {app: web}}", "endpointSelector: {}")
        + "  egress: [{toFQDNs: [{matchPattern: '*.example.com'}, {matchName: api.test}]}]\n"
    )
    records = parse_text(
        """
apiVersion: polyfence.dev/v1alpha1
kind: DNSRecords
metadata: {name: seen}
spec:
  records:
  - {name: www.example.com., addresses: [203.0.113.10]}
  - {name: example.com, addresses: [203.0.113.20]}
  - {name: api.test, addresses: ['2001:db8::1']}
""",
        "dns.yaml",
    )
    inv = inventory_from_documents(
        parse_text(
            yaml.safe_dump(
                {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {"name": "web", "namespace": "prod"},
                    "spec": {},
                    "status": {"podIP": "10.0.0.2"},
                }
            ),
            "p.yaml",
        )
        + records
    )
    web = inv.find("prod/web")
    assert web is not None

    def ok(dst: str) -> bool:
        return verdict(ps, Connection(web, dst, 6, 443), inv, PROFILE).allowed

    assert ok("203.0.113.10") and ok("2001:db8::1")
    assert not ok("203.0.113.20")  # *.example.com does not match example.com
    assert not ok("198.51.100.1")
    out = K8S.from_canonical(ps, RenderOptions(inventory=inv))
    assert [loss.effect for loss in out.report.losses] == [Effect.INVENTORY_DEPENDENT]
    back = K8S.to_canonical(docs_of(out.value)).value
    assert compare(ps, back, inv, PROFILE).relation is Relation.EQUIVALENT


def test_host_is_the_subjects_own_node() -> None:
    here = Endpoint("Node", None, "n1", {}, None, ("192.168.0.1",))
    inv = build_inventory([Namespace("prod", {})], [WEB, here, NODE])
    host = read(CNP + "  egress: [{toEntities: [host]}]\n")
    remote = read(CNP + "  egress: [{toEntities: [remote-node]}]\n")

    def ok(ps: PolicySet, dst: Endpoint) -> bool:
        return verdict(ps, Connection(WEB, dst, 6, 10250), inv, PROFILE).allowed

    assert ok(host, here) and not ok(host, NODE)  # WEB runs on n1
    assert ok(remote, NODE) and not ok(remote, here)


@settings(max_examples=60, deadline=None)
@given(items=k8s_policy_lists(), inv=inventories())
def test_calico_and_cilium_through_the_canonical_model(
    items: list[dict[str, Any]], inv: Inventory
) -> None:
    """k8s → Calico → Cilium → Calico: exact at every step for what Kubernetes can say."""
    from polyfence.translators.calico import CalicoTranslator

    calico = CalicoTranslator()
    ir = K8S.to_canonical(docs_of(items)).value
    as_calico = calico.to_canonical(docs_of(calico.from_canonical(ir).value)).value
    cilium_out = CILIUM.from_canonical(as_calico)
    assert not cilium_out.report.losses
    as_cilium = CILIUM.to_canonical(docs_of(cilium_out.value)).value
    assert compare(ir, as_cilium, inv).relation is Relation.EQUIVALENT
    back = calico.from_canonical(as_cilium)
    assert not [loss for loss in back.report.losses if loss.effect is not Effect.NONE]
    again = calico.to_canonical(docs_of(back.value)).value
    assert compare(ir, again, inv).relation is Relation.EQUIVALENT


@settings(max_examples=60, deadline=None)
@given(ir=cilium_sets(), inv=inventories())
def test_cilium_to_calico_never_drifts_silently(ir: PolicySet, inv: Inventory) -> None:
    from polyfence.translators.calico import CalicoTranslator

    calico = CalicoTranslator()
    out = calico.from_canonical(ir)
    back = calico.to_canonical(docs_of(out.value)).value
    relation = compare(ir, back, inv, PROFILE).relation
    effects = {loss.effect for loss in out.report.losses}
    if relation in (Relation.WIDER, Relation.INCOMPARABLE):
        assert Effect.WIDENED in effects, out.report.losses
    if relation in (Relation.NARROWER, Relation.INCOMPARABLE):
        assert Effect.NARROWED in effects, out.report.losses


REQ_WEB = Endpoint("Pod", "prod", "web2", {"app": "web", "tier": "x"}, "default", ("10.0.0.4",))
REQ_FE_PROD = Endpoint(
    "Pod", "prod", "fe2", {"role": "fe", "env": "prod"}, "default", ("10.0.0.5",)
)
REQ_FE_DEV = Endpoint("Pod", "dev", "fe3", {"role": "fe", "env": "prod"}, "default", ("10.0.1.5",))
REQ_INV = build_inventory(
    [Namespace("prod", {"team": "a"}), Namespace("dev", {"team": "b"})],
    [WEB, FE, OTHER, REQ_WEB, REQ_FE_PROD, REQ_FE_DEV],
)


def _req_allowed(ps: PolicySet, src: Endpoint, dst: Endpoint) -> bool:
    return verdict(ps, Connection(src, dst, 6, 80), REQ_INV, PROFILE).allowed


def test_requires_constrain_every_rule_selecting_the_endpoint() -> None:
    """Trap 16: up to 1.18 a fromRequires in one policy ANDs into the fromEndpoints of every
    rule (of every policy) selecting the same endpoint; CIDR/entity peers stay untouched."""
    text = (
        CNP
        + "  ingress: [{fromRequires: [{matchLabels: {env: prod}}]}]\n"
        + "---\n"
        + CNP.replace("name: p,", "name: q,")
        + "  ingress: [{fromEndpoints: [{matchLabels: {role: fe}, matchExpressions: "
        "[{key: k8s:io.kubernetes.pod.namespace, operator: Exists}]}]}, "
        "{fromEntities: [world]}]\n"
    )
    out = CILIUM.to_canonical(parse_text(text, "c.yaml"))
    ps = out.value
    # fe without env=prod loses access; fe with env=prod keeps it, but only from the requiring
    # policy's namespace (a CNP requirement is scoped to its namespace like fromEndpoints).
    assert not _req_allowed(ps, FE, WEB)
    assert _req_allowed(ps, REQ_FE_PROD, WEB)
    assert not _req_allowed(ps, REQ_FE_DEV, WEB)
    assert verdict(ps, Connection("8.8.8.8", WEB, 6, 80), REQ_INV, PROFILE).allowed
    assert {(loss.effect, loss.source.pointer) for loss in out.report.losses} == {  # type: ignore[union-attr]
        (Effect.NONE, "/spec/ingress/0/fromRequires/0")
    }


def test_requires_bind_only_the_endpoints_the_requiring_rule_selects() -> None:
    """A requirement from a policy selecting part of the subject applies to that part only."""
    text = (
        CNP.replace("{app: web}", "{tier: x}")
        + "  ingress: [{fromRequires: [{matchLabels: {env: prod}}]}]\n"
        + "---\n"
        + CNP.replace("name: p,", "name: q,")
        + "  ingress: [{fromEndpoints: [{matchLabels: {role: fe}}]}]\n"
    )
    ps = read(text)
    assert _req_allowed(ps, FE, WEB)  # web has no tier=x: no requirement
    assert not _req_allowed(ps, FE, REQ_WEB)  # web2 has tier=x: fe lacks env=prod
    assert _req_allowed(ps, REQ_FE_PROD, REQ_WEB)
    # written back, the expansion needs no fromRequires (gone in Cilium 1.19) and means the same
    written = CILIUM.from_canonical(ps)
    assert "Requires" not in yaml.safe_dump(written.value)
    back = CILIUM.to_canonical(docs_of(written.value)).value
    for src in (FE, REQ_FE_PROD, REQ_FE_DEV, OTHER):
        for dst in (WEB, REQ_WEB):
            assert _req_allowed(back, src, dst) == _req_allowed(ps, src, dst), (src, dst)


def test_clusterwide_requires_split_by_namespace_name() -> None:
    """A CCNP requirement whose subject names a namespace binds only that namespace's pods."""
    ccnp = CNP.replace("CiliumNetworkPolicy", "CiliumClusterwideNetworkPolicy").replace(
        ", namespace: prod", ""
    )
    text = (
        ccnp.replace("{app: web}", "{k8s:io.kubernetes.pod.namespace: dev}")
        + "  ingress: [{fromRequires: [{matchLabels: {env: prod}}]}]\n"
        + "---\n"
        + ccnp.replace("name: p", "name: q").replace("{app: web}", "{role: fe}")
        + "  ingress: [{fromEndpoints: [{matchLabels: {app: web}}]}]\n"
    )
    ps = read(text)
    assert _req_allowed(ps, WEB, FE)  # fe in prod: no requirement
    assert not _req_allowed(ps, WEB, OTHER)  # fe in dev: web lacks env=prod
    written = CILIUM.from_canonical(ps)
    back = CILIUM.to_canonical(docs_of(written.value)).value
    for src in (WEB, REQ_WEB):
        for dst in (FE, OTHER, REQ_FE_PROD, REQ_FE_DEV):
            assert _req_allowed(back, src, dst) == _req_allowed(ps, src, dst), (src, dst)


def test_deny_requires_apply_to_deny_rules_only() -> None:
    """Requirements of ingressDeny rules fold into deny rules, those of allow rules into allows."""
    text = (
        CNP + "  ingressDeny: [{fromEndpoints: [{matchLabels: {role: fe}}], "
        "fromRequires: [{matchLabels: {env: prod}}]}]\n" + "  ingress: [{fromEntities: [all]}]\n"
    )
    ps = read(text)
    assert _req_allowed(ps, FE, WEB)  # the deny now needs env=prod too
    assert not _req_allowed(ps, REQ_FE_PROD, WEB)


def test_host_network_pods_are_their_nodes_identity() -> None:
    """Trap 27: a hostNetwork pod is never a pod for selectors; host/remote-node reach it."""
    agent = Endpoint(
        "Pod", "prod", "agent", {"app": "agent"}, "default", ("192.168.0.1",), (), "n1", True
    )
    inv = build_inventory([Namespace("prod", {})], [WEB, agent])
    by_label = read(CNP + "  ingress: [{fromEndpoints: [{matchLabels: {app: agent}}]}]\n")
    by_entity = read(CNP + "  ingress: [{fromEntities: [host]}]\n")
    assert not verdict(by_label, Connection(agent, WEB, 6, 80), inv, PROFILE).allowed
    assert verdict(by_entity, Connection(agent, WEB, 6, 80), inv, PROFILE).allowed


def test_calico_order_is_not_copied_into_deny_wins() -> None:
    """Trap 11: Calico 'Allow X (order 10), Deny all (order 20)' must not become a Cilium deny
    that also blocks X."""
    from polyfence.translators.calico import CalicoTranslator

    calico = (
        CalicoTranslator()
        .to_canonical(
            parse_text(
                """
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: a, namespace: prod}
spec:
  order: 10
  selector: app == 'web'
  ingress: [{action: Allow, source: {selector: role == 'fe'}}]
---
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: b, namespace: prod}
spec:
  order: 20
  selector: app == 'web'
  ingress: [{action: Deny}]
""",
                "c.yaml",
            )
        )
        .value
    )
    out = CILIUM.from_canonical(calico)
    # The trailing deny-all is what default deny does anyway: left out, exactly.
    assert {loss.effect for loss in out.report.losses} == {Effect.NONE}
    back = CILIUM.to_canonical(docs_of(out.value)).value
    assert compare(calico, back, INV, PROFILE).relation is Relation.EQUIVALENT
    # A deny that a later allow could override is another matter: reported.
    first, second = calico.policies[0].ingress, calico.policies[1].ingress
    assert isinstance(first, Governed) and isinstance(second, Governed)
    overridden = dataclasses.replace(
        calico,
        policies=(
            calico.policies[0],
            dataclasses.replace(
                calico.policies[1],
                ingress=Governed((*second.rules, dataclasses.replace(first.rules[0])), True),
            ),
        ),
    )
    # A deny that a later allow could override is trimmed by the allows before it: exact.
    out = CILIUM.from_canonical(overridden)
    assert not out.report.losses
    deny = [doc["spec"]["ingressDeny"] for doc in out.value if "ingressDeny" in doc["spec"]]
    assert deny and "world" in deny[0][0]["fromEntities"]  # everyone but the earlier allow
    back = CILIUM.to_canonical(docs_of(out.value)).value
    for profile in (PROFILE, EvaluationProfile()):
        assert compare(overridden, back, INV, profile).relation is Relation.EQUIVALENT
    assert allowed(back, FE, WEB) and not allowed(back, OTHER, WEB)
    assert not allowed(back, "8.8.8.8", WEB)


@settings(max_examples=60, deadline=None)
@given(ir=k8s_fragment_sets(calico_features=True), inv=inventories())
def test_calico_features_that_cilium_can_say_exactly(ir: PolicySet, inv: Inventory) -> None:
    """Reserved namespace/kind keys, network sets (as CIDR sets) and rules bound to part of the
    subject (as rules of their own) all reach Cilium with no loss."""
    out = CILIUM.from_canonical(ir)
    assert not [loss for loss in out.report.losses if loss.effect is not Effect.NONE], (
        out.report.losses
    )
    for doc in out.value:
        assert not [e.message for e in crd_validator(doc["kind"]).iter_errors(doc)]
    back = CILIUM.to_canonical(docs_of(out.value)).value
    assert compare(ir, back, inv).relation is Relation.EQUIVALENT


@st.composite
def ordered_sets(draw: Any) -> PolicySet:
    """Calico-shaped sets: Allow/Deny/Pass rules in orders and tiers (one of which passes
    what it leaves unmatched), namespaced and cluster-wide subjects."""
    from polyfence.model.policy import Subject, Tier
    from polyfence.model.selectors import Eq
    from tests.strategies import to_ir

    tiers = (
        Tier("security", 10.0, Action.DENY),
        Tier("apps", 15.0, Action.DENY),
        Tier("platform", 20.0, Action.PASS),
        Tier("default"),
    )
    ps = to_ir(draw(k8s_policy_lists(max_size=4)))
    out = []
    for pol in ps:
        changes: dict[str, Any] = {}
        for direction in ("ingress", "egress"):
            rules = getattr(pol, direction)
            if isinstance(rules, Governed):
                actions = st.sampled_from((Action.ALLOW, Action.ALLOW, Action.DENY, Action.PASS))
                locals_ = st.sampled_from(
                    (
                        None,
                        None,
                        None,
                        Peer(pods=Eq("app", "x")),
                        Peer(pods=Eq("app", "y"), namespace_selector=Eq("team", "x")),
                    )
                )
                new = [
                    dataclasses.replace(r, action=draw(actions), local=draw(locals_))
                    for r in rules.rules
                ]
                if draw(st.integers(0, 3)) == 0:
                    new.append(Rule(Action.PASS))  # "pass the rest on" (a Calico idiom)
                changes[direction] = Governed(tuple(new), True)
        subject = pol.subject
        if draw(st.integers(0, 3)) == 0:
            ns_sel = draw(
                st.sampled_from(
                    (None, Eq("kubernetes.io/metadata.name", "ns-b"), None, Eq("team", "x"))
                )
            )
            subject = Subject(None, pol.subject.selector, ns_sel)
        out.append(
            dataclasses.replace(
                pol,
                subject=subject,
                tier=draw(st.sampled_from([t.name for t in tiers])),
                order=draw(st.sampled_from((None, 1.0, 500.0, 1000.0))),
                **changes,
            )
        )
    return PolicySet(tuple(out), tiers)


@settings(max_examples=400, deadline=None)
@given(ir=ordered_sets(), inv=inventories())
def test_calico_order_flattened_into_deny_wins(ir: PolicySet, inv: Inventory) -> None:
    """Order, Pass and tiers flattened for Cilium: exact where nothing is reported, and every
    difference the engine finds is reported with its effect."""
    from hypothesis import event

    out = CILIUM.from_canonical(ir)
    for doc in out.value:
        assert not [e.message for e in crd_validator(doc["kind"]).iter_errors(doc)]
    back = CILIUM.to_canonical(docs_of(out.value)).value
    effects = {loss.effect for loss in out.report.losses}
    for profile in (PROFILE, EvaluationProfile()):
        relation = compare(ir, back, inv, profile).relation
        if relation in (Relation.WIDER, Relation.INCOMPARABLE):
            assert Effect.WIDENED in effects, out.report.losses
        if relation in (Relation.NARROWER, Relation.INCOMPARABLE):
            assert Effect.NARROWED in effects, out.report.losses
        if effects <= {Effect.NONE}:
            assert relation is Relation.EQUIVALENT
    event("exact" if effects <= {Effect.NONE} else "reported")
    for loss in out.report.losses:
        if loss.effect is not Effect.NONE:
            event(f"{loss.feature.value}: {loss.message[:50]}")


def test_l7_restrictions_evaporate_under_an_l4_allow() -> None:
    """Trap 17: an HTTP-restricted allow and a plain allow on the same port union to the
    plain one; and at L4 even the HTTP-restricted rule admits the connection (violations are
    answered with 403s, not drops). Dropping the L7 part for Kubernetes is reported."""
    l7_only = read(
        CNP + "  ingress: [{fromEndpoints: [{matchLabels: {role: fe}}], toPorts: [{ports: "
        "[{port: '80', protocol: TCP}], rules: {http: [{method: GET, path: /public}]}}]}]\n"
    )
    both = read(
        CNP + "  ingress:\n"
        "  - {fromEndpoints: [{matchLabels: {role: fe}}], toPorts: [{ports: "
        "[{port: '80', protocol: TCP}], rules: {http: [{method: GET, path: /public}]}}]}\n"
        "  - {fromEndpoints: [{matchLabels: {role: fe}}], toPorts: [{ports: "
        "[{port: '80', protocol: TCP}]}]}\n"
    )
    for ps in (l7_only, both):
        assert allowed(ps, FE, WEB, 80) and not allowed(ps, FE, WEB, 81)
    as_k8s = K8S.from_canonical(l7_only)
    assert Effect.WIDENED in {loss.effect for loss in as_k8s.report.losses}


def test_rules_name_the_pod_port_not_the_service_port() -> None:
    """Trap 22: a Service 80 -> targetPort 8080 is reached on 8080 at the pod, where Cilium
    evaluates L4 policy; a Kubernetes rule for 8080 stays 8080 in Cilium."""
    k8s = K8S.to_canonical(
        parse_text(
            """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: p, namespace: prod}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress: [{ports: [{port: 8080, protocol: TCP}]}]
""",
            "k.yaml",
        )
    ).value
    out = CILIUM.from_canonical(k8s)
    ports = out.value[0]["spec"]["ingress"][0]["toPorts"][0]["ports"]
    assert ports == [{"port": "8080", "protocol": "TCP"}]
    back = CILIUM.to_canonical(docs_of(out.value)).value
    assert allowed(back, FE, WEB, 8080) and not allowed(back, FE, WEB, 80)


def test_named_ports_resolve_per_destination_and_ambiguity_is_reported() -> None:
    """Trap 28: `http` is 8080 on one pod and 9090 on another: each pod is reached on its own
    number only; Cilium may skip such a rule, so writing it is reported as narrowing."""
    from polyfence.inventory import NamedPort
    from polyfence.translation import RenderOptions

    a = dataclasses.replace(WEB, name="a", named_ports=(NamedPort("http", 6, 8080),))
    b = dataclasses.replace(
        WEB, name="b", ips=("10.0.0.9",), named_ports=(NamedPort("http", 6, 9090),)
    )
    inv = build_inventory([Namespace("prod", {})], [a, b, FE])
    ps = read(CNP + "  ingress: [{toPorts: [{ports: [{port: http, protocol: TCP}]}]}]\n")

    def ok(dst: Endpoint, port: int) -> bool:
        return verdict(ps, Connection(FE, dst, 6, port), inv, PROFILE).allowed

    assert ok(a, 8080) and not ok(a, 9090) and ok(b, 9090) and not ok(b, 8080)
    out = CILIUM.from_canonical(ps, RenderOptions(inventory=inv))
    assert [loss.effect for loss in out.report.losses] == [Effect.NARROWED]
    assert not CILIUM.from_canonical(ps).report.losses  # no inventory: nothing to say


def _k8s(text: str) -> PolicySet:
    header = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
    return K8S.to_canonical(parse_text(header + text, "k.yaml")).value


def test_egress_only_kubernetes_policy_still_isolates_ingress_in_cilium() -> None:
    """Trap 1: no policyTypes + only egress rules = Ingress and Egress; Cilium must isolate
    ingress too (an `ingress: [{}]` section), or it would be wider."""
    ps = _k8s(
        "metadata: {name: p, namespace: prod}\n"
        "spec: {podSelector: {matchLabels: {app: web}}, egress: [{to: [{ipBlock: {cidr: "
        "10.0.0.0/8}}]}]}\n"
    )
    out = CILIUM.from_canonical(ps)
    assert out.value[0]["spec"]["ingress"] == [{}]
    back = CILIUM.to_canonical(docs_of(out.value)).value
    assert not allowed(back, FE, WEB)
    assert compare(ps, back, INV, PROFILE).relation is Relation.EQUIVALENT


def test_one_peer_with_both_selectors_is_one_endpoint_selector() -> None:
    """Trap 2: {namespaceSelector, podSelector} in one peer is an AND (one fromEndpoints
    entry); two peers are an OR (two entries)."""
    both = _k8s(
        "metadata: {name: p, namespace: prod}\n"
        "spec: {podSelector: {matchLabels: {app: web}}, ingress: [{from: [{namespaceSelector: "
        "{matchLabels: {team: b}}, podSelector: {matchLabels: {role: fe}}}]}]}\n"
    )
    either = _k8s(
        "metadata: {name: p, namespace: prod}\n"
        "spec: {podSelector: {matchLabels: {app: web}}, ingress: [{from: [{namespaceSelector: "
        "{matchLabels: {team: b}}}, {podSelector: {matchLabels: {role: fe}}}]}]}\n"
    )
    for ps, count in ((both, 1), (either, 2)):
        out = CILIUM.from_canonical(ps)
        rules = out.value[0]["spec"]["ingress"]
        assert sum(len(r["fromEndpoints"]) for r in rules) == count
        back = CILIUM.to_canonical(docs_of(out.value)).value
        assert compare(ps, back, INV, PROFILE).relation is Relation.EQUIVALENT
    web_dev = dataclasses.replace(WEB, name="web-dev", namespace="dev", ips=("10.0.1.9",))
    inv = build_inventory(
        [Namespace("prod", {"team": "a"}), Namespace("dev", {"team": "b"})],
        [WEB, FE, OTHER, web_dev],
    )
    # FE (prod, team a) matches the OR but not the AND; OTHER (dev fe) matches both.
    for src, both_ok, either_ok in ((FE, False, True), (OTHER, True, True)):
        assert verdict(both, Connection(src, WEB, 6, 80), inv, PROFILE).allowed is both_ok
        assert verdict(either, Connection(src, WEB, 6, 80), inv, PROFILE).allowed is either_ok


def test_cidr_excepts_stay_with_their_own_cidr() -> None:
    """Trap 30: {10.0.0.0/8 except 10.1.0.0/16} + {10.1.2.0/24} must not become one CIDR set
    whose except also removes 10.1.2.0/24."""
    ps = _k8s(
        "metadata: {name: p, namespace: prod}\n"
        "spec: {podSelector: {matchLabels: {app: web}}, ingress: [{from: [{ipBlock: {cidr: "
        "10.0.0.0/8, except: [10.1.0.0/16]}}, {ipBlock: {cidr: 10.1.2.0/24}}]}]}\n"
    )
    out = CILIUM.from_canonical(ps)
    sets = [s for r in out.value[0]["spec"]["ingress"] for s in r["fromCIDRSet"]]
    assert {"cidr": "10.1.2.0/24"} in sets
    assert {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]} in sets
    back = CILIUM.to_canonical(docs_of(out.value)).value
    assert allowed(back, "10.1.2.7", WEB) and not allowed(back, "10.1.3.7", WEB)
    assert allowed(back, "10.9.0.1", WEB)


def test_calico_service_account_names_become_the_cilium_identity_label() -> None:
    """Calico `serviceAccounts.names` is Cilium's io.cilium.k8s.policy.serviceaccount label:
    exact, not a colliding pod label (the peer used to be dropped as one)."""
    from polyfence.translators.calico import CalicoTranslator

    api = dataclasses.replace(FE, name="api", service_account="api-service")
    inv = build_inventory([Namespace("prod", {"team": "a"})], [WEB, FE, api])
    source = (
        CalicoTranslator()
        .to_canonical(
            parse_text(
                "apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\n"
                "metadata: {name: p, namespace: prod}\nspec:\n  selector: app == 'web'\n"
                "  ingress: [{action: Allow, source: {serviceAccounts: {names: [api-service]}}}]\n",
                "c.yaml",
            )
        )
        .value
    )
    out = CILIUM.from_canonical(source)
    assert not [loss for loss in out.report.losses if loss.effect is not Effect.NONE]
    (doc,) = out.value
    (peer,) = doc["spec"]["ingress"][0]["fromEndpoints"]
    keys = {*peer.get("matchLabels", {}), *(e["key"] for e in peer.get("matchExpressions", []))}
    assert keys == {"io.cilium.k8s.policy.serviceaccount"}
    back = CILIUM.to_canonical(docs_of(out.value)).value
    assert verdict(back, Connection(api, WEB, 6, 80), inv, PROFILE).allowed
    assert not verdict(back, Connection(FE, WEB, 6, 80), inv, PROFILE).allowed
    assert compare(source, back, inv, PROFILE).relation is Relation.EQUIVALENT


def test_namespace_labels_in_a_cnp_subject_test_its_own_namespace() -> None:
    """A CNP's endpointSelector may name namespace labels: Cilium adds only its namespace,
    so the policy selects its pods only while that namespace carries those labels."""
    for team, governs in (("a", True), ("b", False)):
        ps = read(
            CNP.replace(
                "{matchLabels: {app: web}}",
                f"{{matchLabels: {{app: web, io.cilium.k8s.namespace.labels.team: {team}}}}}",
            )
            + "  ingress: [{}]\n"
        )
        assert allowed(ps, FE, WEB) is not governs, team  # isolated only where it governs


@pytest.mark.parametrize("team", ["a", "b"])
def test_calico_local_side_by_namespace_labels_is_written_exactly(team: str) -> None:
    """A Calico rule whose destination (the local side of an ingress rule) names namespace
    labels applies only in namespaces with them: a CNP/CCNP rule of its own whose
    endpointSelector carries io.cilium.k8s.namespace.labels.*."""
    from polyfence.translators.calico import CalicoTranslator

    rule = (
        "[{action: Allow, source: {selector: role == 'fe'}, destination: {namespaceSelector: "
        f"team == '{team}'}}}}]"
    )
    for kind, meta in (
        ("NetworkPolicy", "{name: p, namespace: prod}"),
        ("GlobalNetworkPolicy", "{name: p}"),
    ):
        source = (
            CalicoTranslator()
            .to_canonical(
                parse_text(
                    f"apiVersion: projectcalico.org/v3\nkind: {kind}\nmetadata: {meta}\nspec:\n"
                    f"  selector: app == 'web'\n  ingress: {rule}\n",
                    "c.yaml",
                )
            )
            .value
        )
        out = CILIUM.from_canonical(source)
        assert not [loss for loss in out.report.losses if loss.effect is not Effect.NONE], kind
        back = CILIUM.to_canonical(docs_of(out.value)).value
        assert allowed(back, FE, WEB) is (team == "a"), kind
        for profile in (PROFILE, EvaluationProfile()):
            assert compare(source, back, INV, profile).relation is Relation.EQUIVALENT, kind


def test_every_icmp_type_is_packed_into_few_rules_and_stays_exact() -> None:
    """A Calico 'allow ICMP' is 256 types per family in Cilium (it has no 'every type' form);
    they are packed 40 to an ICMPRule, the CRD's limit, instead of one rule per type."""
    text = """apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: icmp, namespace: shop}
spec:
  selector: app == 'web'
  ingress: [{action: Allow, protocol: ICMP}, {action: Allow, protocol: ICMPv6}]
"""
    result = api.convert(api.load(parse_text(text, "icmp.yaml")), to="cilium")
    assert result.report.exact, result.report.losses
    (doc,) = result.documents
    crd_validator("CiliumNetworkPolicy").validate(doc)
    icmps = [r for rule in doc["spec"]["ingress"] for r in rule.get("icmps", [])]
    assert len(icmps) == 2 * 7  # ceil(256 / 40) per family
    assert all(len(r["fields"]) <= 40 for r in icmps)
    assert sum(len(r["fields"]) for r in icmps) == 512
