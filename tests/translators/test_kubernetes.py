"""Kubernetes NetworkPolicy translator: corpus, unit tables, round trips judged by the engine."""

from __future__ import annotations

import functools
import json
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
from polyfence.inventory import Inventory
from polyfence.io.files import parse_text
from polyfence.model.document import Document
from polyfence.model.peers import ANY_PEER, IpMatch, Peer
from polyfence.model.policy import NOT_GOVERNED, Action, Governed, PolicySet
from polyfence.model.ports import ANY_PORTS, PortSpec
from polyfence.model.provenance import SourceRef
from polyfence.model.selectors import Eq, parse
from polyfence.semantics.compare import Relation, compare
from polyfence.semantics.intervals import IntervalSet
from polyfence.translation import RenderOptions
from polyfence.translators.kubernetes import KubernetesTranslator
from polyfence.translators.kubernetes.reader import lint
from tests.conftest import DATA, corpus_files
from tests.strategies import general_sets, inventories, k8s_fragment_sets, k8s_policy_lists

K8S = KubernetesTranslator()


def read(text: str) -> PolicySet:
    return K8S.to_canonical(parse_text(text, "t.yaml")).value


def docs_of(items: list[dict[str, Any]]) -> list[Document]:
    return [Document(d, SourceRef("gen", i)) for i, d in enumerate(items)]


@functools.cache
def k8s_validator() -> jsonschema.protocols.Validator:
    schema = json.loads(
        (DATA / "upstream-schemas/k8s/networkpolicy-definitions-v1.36.0.json").read_text()
    )
    root = {
        "$schema": schema["$schema"],
        "$defs": schema["$defs"],
        "$ref": "#/$defs/io.k8s.api.networking.v1.NetworkPolicy",
    }
    return jsonschema.Draft202012Validator(root)


# reading: defaults made explicit -----------------------------------------------------------

POLICY = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: p, namespace: prod}
spec:
  podSelector: {matchLabels: {app: web}}
"""


def test_policytypes_default_ingress_only() -> None:
    (pol,) = read(POLICY)
    assert pol.ingress == Governed((), True)
    assert pol.egress is NOT_GOVERNED


def test_egress_section_without_policytypes_isolates_both() -> None:
    (pol,) = read(POLICY + "  egress: [{to: [{ipBlock: {cidr: 10.0.0.0/8}}]}]\n")
    assert isinstance(pol.ingress, Governed) and pol.ingress.rules == ()
    assert isinstance(pol.egress, Governed) and len(pol.egress.rules) == 1


def test_empty_egress_list_does_not_add_egress_type() -> None:
    (pol,) = read(POLICY + "  egress: []\n")
    assert pol.egress is NOT_GOVERNED


def test_empty_rule_allows_everything() -> None:
    (pol,) = read(POLICY + "  ingress: [{}]\n")
    assert isinstance(pol.ingress, Governed)
    (rule,) = pol.ingress.rules
    assert rule.peers is ANY_PEER and rule.ports is ANY_PORTS and rule.action is Action.ALLOW


def test_peer_forms() -> None:
    text = (
        POLICY
        + """  ingress:
  - from:
    - podSelector: {matchLabels: {role: fe}}
    - namespaceSelector: {}
    - namespaceSelector: {matchLabels: {team: a}}
      podSelector: {matchExpressions: [{key: role, operator: NotIn, values: [db]}]}
    - ipBlock: {cidr: 10.0.0.0/8, except: [10.1.0.0/16]}
    ports: [{port: 53}, {protocol: UDP, port: 53}, {port: http}, {protocol: SCTP, port: 100, endPort: 200}, {protocol: UDP}]
"""
    )
    (pol,) = read(text)
    (rule,) = pol.ingress.rules  # type: ignore[union-attr]
    p_pod, p_ns_all, p_both, p_ip = rule.peers  # type: ignore[misc]
    assert p_pod == Peer(pods=Eq("role", "fe"), namespace_names=frozenset({"prod"}))
    assert p_ns_all == Peer(namespace_selector=parse("all()"))
    assert p_both == Peer(pods=parse("role not in {'db'}"), namespace_selector=Eq("team", "a"))
    assert p_ip == Peer(ip=IpMatch(("10.0.0.0/8",), ("10.1.0.0/16",)))
    assert rule.ports == (
        PortSpec.single(6, IntervalSet.point(53)),
        PortSpec.single(17, IntervalSet.point(53)),
        PortSpec.single(6, IntervalSet.empty(), frozenset({"http"})),
        PortSpec.single(132, IntervalSet.span(100, 200)),
        PortSpec.single(17),
    )


@pytest.mark.parametrize(
    ("spec_tail", "pointer", "needle"),
    [
        (
            "  ingress: [{from: [{ipBlock: {cidr: 10.0.0.0/8, except: [11.0.0.0/16]}}]}]",
            "/spec/ingress/0/from/0/ipBlock/except/0",
            "inside",
        ),
        (
            "  ingress: [{from: [{ipBlock: {cidr: 10.0.0.0/8, except: [11.0.0.0/24]}}]}]",
            "/spec/ingress/0/from/0/ipBlock/except/0",
            "strictly inside",
        ),
        (
            "  ingress: [{ports: [{port: 90, endPort: 80}]}]",
            "/spec/ingress/0/ports/0/endPort",
            "endPort",
        ),
        (
            "  ingress: [{ports: [{port: http, endPort: 80}]}]",
            "/spec/ingress/0/ports/0/endPort",
            "named",
        ),
        (
            "  ingress: [{ports: [{protocol: ICMP}]}]",
            "/spec/ingress/0/ports/0/protocol",
            "TCP, UDP or SCTP",
        ),
        ("  ingress: [{from: [{}]}]", "/spec/ingress/0/from/0", "peer"),
        (
            "  ingress: [{from: [{podSelector: {matchExpressions: [{key: a, operator: Foo}]}}]}]",
            "/spec/ingress/0/from/0/podSelector/matchExpressions/0/operator",
            "",
        ),
        (
            "  ingress: [{from: [{ipBlock: {cidr: 10.0.0.0/8}, podSelector: {}}]}]",
            "/spec/ingress/0/from/0",
            "combined",
        ),
        ("  ingres: []", "", "ingres"),
        ("  ingress: [{ports: [{port: 0}]}]", "/spec/ingress/0/ports/0/port", "1-65535"),
        ("  ingress: [{ports: [{port: '80'}]}]", "/spec/ingress/0/ports/0/port", "IANA"),
        ("  policyTypes: [Ingres]", "/spec/policyTypes/0", "Ingress or Egress"),
        (
            "  policyTypes: [Egress]\n  ingress: [{ports: [{protocol: tcp}]}]",
            "/spec/ingress/0/ports/0/protocol",
            "TCP, UDP or SCTP",
        ),
        ("  ingress: [{ports: [{port: Http}]}]", "/spec/ingress/0/ports/0/port", "IANA"),
        (
            "  ingress: [{from: [{podSelector: {matchLabels: {'bad key!': x}}}]}]",
            "/spec/ingress/0/from/0/podSelector/matchLabels/bad key!",
            "label key",
        ),
        (
            "  ingress: [{from: [{podSelector: {matchExpressions: [{key: a, operator: In, values: ['-x']}]}}]}]",
            "/spec/ingress/0/from/0/podSelector/matchExpressions/0/values/0",
            "label value",
        ),
    ],
)
def test_bad_input_names_the_field(spec_tail: str, pointer: str, needle: str) -> None:
    with pytest.raises(InputError) as info:
        read(POLICY + spec_tail + "\n")
    messages = [str(d) for d in info.value.diagnostics]
    assert any(
        d.source.pointer.startswith(pointer) and needle in str(d) for d in info.value.diagnostics
    ), messages
    assert all(d.source.file == "t.yaml" and d.source.document == 0 for d in info.value.diagnostics)


def test_names_the_api_server_refuses_are_warnings_unsafe_ones_errors() -> None:
    text = POLICY.replace("{name: p, namespace: prod}", "{name: My_Policy, namespace: Prod}")
    bundle = api.load(parse_text(text, "t.yaml"))
    assert [d.source.pointer for d in bundle.warnings] == ["/metadata/name", "/metadata/namespace"]
    assert [p.id.name for p in bundle.policies] == ["My_Policy"]
    for bad in ("{name: p, namespace: ../../etc}", "{name: ../p, namespace: prod}"):
        with pytest.raises(InputError) as info:
            api.load(parse_text(POLICY.replace("{name: p, namespace: prod}", bad), "t.yaml"))
        assert "refuses" in str(info.value) or "not a name" in str(info.value)


def test_host_bits_are_read_as_the_network_with_a_located_warning() -> None:
    text = POLICY + "  ingress: [{from: [{ipBlock: {cidr: 10.1.2.3/8}}]}]\n"
    bundle = api.load(parse_text(text, "t.yaml"))
    (warning,) = [w for w in bundle.warnings if "host bits" in w.message]
    assert warning.source.pointer == "/spec/ingress/0/from/0/ipBlock/cidr"
    assert "10.0.0.0/8" in warning.message
    wide = api.load(
        parse_text(POLICY + "  ingress: [{from: [{ipBlock: {cidr: 10.0.0.0/8}}]}]\n", "w.yaml")
    )
    result = api.compare(bundle, wide)
    assert result.relation is api.Relation.EQUIVALENT


def test_all_problems_reported_at_once() -> None:
    text = (
        POLICY
        + "  ingress: [{from: [{ipBlock: {cidr: 10.0.0.0/33}}], ports: [{port: 9, endPort: 1}]}]\n"
    )
    with pytest.raises(InputError) as info:
        read(text)
    assert len(info.value.diagnostics) == 2


def test_lint_warnings() -> None:
    doc = parse_text(
        POLICY + "  policyTypes: [Ingress]\n  egress: [{ports: [{port: 53}]}]\n", "t.yaml"
    )[0]
    messages = " | ".join(str(d) for d in lint(doc))
    assert "egress rules are ignored" in messages and "DNS also needs UDP" in messages


# writing: losses ---------------------------------------------------------------------------


def _one_policy(rules: tuple[Any, ...], **kw: Any) -> PolicySet:
    (pol,) = read(POLICY)
    import dataclasses

    return PolicySet((dataclasses.replace(pol, ingress=Governed(rules, kw.get("isolates", True))),))


@pytest.mark.parametrize(
    ("rule", "effect", "feature"),
    [
        (dict(action=Action.DENY), Effect.NONE, "deny-action"),  # nothing after it allows
        (dict(action=Action.PASS), Effect.NARROWED, "pass-action"),
        (dict(action=Action.LOG), Effect.NONE, "log-action"),
        (dict(ports=(PortSpec.single(1),)), Effect.NARROWED, "protocol"),
        (
            dict(
                peers=(
                    Peer(
                        fqdn=None,
                        entity=__import__(
                            "polyfence.model.peers", fromlist=["Entity"]
                        ).Entity.KUBE_APISERVER,
                    ),
                )
            ),
            Effect.NARROWED,
            "entity",
        ),
    ],
)
def test_inexpressible_constructs_are_reported(
    rule: dict[str, Any], effect: Effect, feature: str
) -> None:
    from polyfence.model.policy import Rule

    ps = _one_policy((Rule(**rule),))
    out = K8S.from_canonical(ps)
    assert [(loss.effect, loss.feature.value) for loss in out.report.losses] == [(effect, feature)]


def test_deny_before_an_allow_widens_unless_disjoint() -> None:
    from polyfence.model.policy import Rule

    deny = Rule(action=Action.DENY, peers=(Peer(ip=IpMatch(("10.0.0.0/8",))),))
    out = K8S.from_canonical(_one_policy((deny, Rule())))
    assert [(loss.effect, loss.feature.value) for loss in out.report.losses] == [
        (Effect.WIDENED, "deny-action")
    ]


def test_allow_without_isolation_is_narrowing() -> None:
    from polyfence.model.policy import Rule

    out = K8S.from_canonical(_one_policy((Rule(),), isolates=False))
    assert [loss.effect for loss in out.report.losses] == [Effect.NARROWED]


def test_or_selector_splits_into_policies() -> None:
    import dataclasses

    (pol,) = read(POLICY)
    pol = dataclasses.replace(
        pol, subject=dataclasses.replace(pol.subject, selector=parse("app == 'a' || tier == 'b'"))
    )
    out = K8S.from_canonical(PolicySet((pol,)))
    assert [d["metadata"]["name"] for d in out.value] == ["p-1", "p-2"]
    assert not out.report.losses


def test_widening_conversion_is_refused_by_default() -> None:
    from polyfence.errors import LossyTranslationError
    from polyfence.model.policy import Rule

    ps = _one_policy((Rule(action=Action.DENY, peers=(Peer(ip=IpMatch(("10.0.0.0/8",))),)), Rule()))
    with pytest.raises(LossyTranslationError) as info:
        api.convert(ps, "kubernetes")
    assert info.value.report.widens
    ok = api.convert(ps, "kubernetes", allow_widening=True)
    assert ok.report.verification is not None and ok.report.verification.relation == "wider"


# corpus ------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", corpus_files("k8s"), ids=lambda p: p.name)
def test_corpus_roundtrip_exact_valid_equivalent(path: Path) -> None:
    bundle = api.load([str(path)])
    assert len(bundle.policies) >= 1
    result = api.convert(bundle, "kubernetes", exact=True)
    validator = k8s_validator()
    for doc in result.documents:
        errors = [e.message for e in validator.iter_errors(doc)]
        assert not errors, errors
    assert result.report.verification is not None
    assert result.report.verification.relation == "equivalent"
    # and through a YAML text round trip, with the synthesised decoy inventory
    text = yaml.safe_dump_all(result.documents)
    again = K8S.to_canonical(parse_text(text, "out.yaml")).value
    assert api.compare(bundle.policies, again).relation is Relation.EQUIVALENT


# round trips judged by the engine ----------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(items=k8s_policy_lists(), inv=inventories())
def test_k8s_documents_roundtrip(items: list[dict[str, Any]], inv: Inventory) -> None:
    ir = K8S.to_canonical(docs_of(items)).value
    out = K8S.from_canonical(ir)
    assert not out.report.losses
    back = K8S.to_canonical(docs_of(out.value)).value
    assert compare(ir, back, inv).relation is Relation.EQUIVALENT
    # idempotent rendering: the second trip writes the same documents
    assert K8S.from_canonical(back).value == out.value


@settings(max_examples=60, deadline=None)
@given(items=k8s_policy_lists(), inv=inventories(), data=st.data())
def test_lossy_ir_never_drifts_silently(
    items: list[dict[str, Any]], inv: Inventory, data: st.DataObject
) -> None:
    """IR outside the k8s fragment: the engine's verdict must be covered by the reported losses."""
    ir = data.draw(general_sets())
    out = K8S.from_canonical(ir, RenderOptions(inventory=inv))
    back = K8S.to_canonical(docs_of(out.value)).value
    rel = compare(ir, back, inv).relation
    effects = {loss.effect for loss in out.report.losses}
    if rel in (Relation.WIDER, Relation.INCOMPARABLE):
        assert Effect.WIDENED in effects or Effect.INVENTORY_DEPENDENT in effects, out.report
    if rel in (Relation.NARROWER, Relation.INCOMPARABLE):
        assert effects & {Effect.NARROWED, Effect.INVENTORY_DEPENDENT}, out.report


@settings(max_examples=80, deadline=None)
@given(
    ir=st.one_of(k8s_fragment_sets(), k8s_fragment_sets(calico_features=True)), inv=inventories()
)
def test_k8s_fragment_ir_roundtrip_exact_and_schema_valid(ir: PolicySet, inv: Inventory) -> None:
    """IR in the Kubernetes fragment (incl. `||`, `!=`, `not in`, namespace name sets) → k8s → IR."""
    from polyfence.translators.kubernetes.reader import _validator

    out = K8S.from_canonical(ir)
    assert not out.report.losses, out.report.losses
    for doc in out.value:
        assert not list(_validator().iter_errors(doc))
    back = K8S.to_canonical(docs_of(out.value)).value
    result = compare(ir, back, inv)
    assert result.relation is Relation.EQUIVALENT, result.witnesses


def test_unexplained_differences_become_losses() -> None:
    from polyfence.api import _unexplained
    from polyfence.fidelity import Feature, FidelityReport
    from polyfence.semantics.compare import Comparison, Witness

    cmp = Comparison(
        Relation.INCOMPARABLE,
        (
            Witness("ns/a[Pod]", "ns/b[Pod]", "TCP", 80, "b"),
            Witness("ns/a[Pod]", "ns/c[Pod]", "UDP", 53, "a"),
        ),
        4,
    )
    losses = _unexplained(FidelityReport("x", "y"), cmp)
    assert [(loss.effect, loss.feature) for loss in losses] == [
        (Effect.WIDENED, Feature.UNEXPLAINED),
        (Effect.NARROWED, Feature.UNEXPLAINED),
    ]
    assert "ns/a[Pod] -> ns/b[Pod] TCP/80" in losses[0].message


@settings(max_examples=150, deadline=None)
@given(items=k8s_policy_lists(), inv=inventories(), data=st.data())
def test_dropped_denies_reported_as_harmless_are_harmless(
    items: list[dict[str, Any]], inv: Inventory, data: st.DataObject
) -> None:
    """Allow/Deny rules in one tier: every deny the writer calls harmless (no WIDENED loss)
    really changes nothing, on generated clusters."""
    import dataclasses

    ir = K8S.to_canonical(docs_of(items)).value
    mixed = []
    for pol in ir:

        def flip(rules: Any) -> Any:
            if not isinstance(rules, Governed):
                return rules
            acts = [data.draw(st.sampled_from((Action.ALLOW, Action.DENY))) for _ in rules.rules]
            return Governed(
                tuple(
                    dataclasses.replace(r, action=a) for r, a in zip(rules.rules, acts, strict=True)
                ),
                True,
            )

        order = data.draw(st.sampled_from((None, 10.0, 1000.0)))
        mixed.append(
            dataclasses.replace(
                pol, ingress=flip(pol.ingress), egress=flip(pol.egress), order=order
            )
        )
    ps = PolicySet(tuple(mixed))
    out = K8S.from_canonical(ps)
    back = K8S.to_canonical(docs_of(out.value)).value
    relation = compare(ps, back, inv).relation
    if Effect.WIDENED not in {loss.effect for loss in out.report.losses}:
        assert relation is Relation.EQUIVALENT, out.report.losses


def test_an_allow_for_part_of_the_subject_by_service_account_is_reported_as_narrowing() -> None:
    """Found by Hypothesis: a rule bound to the pods of one service account has no
    NetworkPolicy form; dropping that allow narrows (the subject is still isolated), and the
    report used to say widened."""
    from polyfence.inventory import Endpoint, Namespace, build_inventory
    from polyfence.model.labels import SERVICE_ACCOUNT_KEY
    from polyfence.model.policy import Policy, PolicyId, Rule, Subject

    pol = Policy(
        PolicyId("kubernetes", "ns-a", "pol-0"),
        Subject("ns-a"),
        egress=Governed(
            (Rule(Action.ALLOW, local=Peer(pods=Eq(SERVICE_ACCOUNT_KEY, "default"))),), True
        ),
    )
    inv = build_inventory(
        [Namespace("ns-a", {})],
        [Endpoint("Pod", "ns-a", "p0", {}, "default", ("10.1.2.3",), (), "node-1")],
    )
    ir = PolicySet((pol,))
    out = K8S.from_canonical(ir, RenderOptions(inventory=inv))
    back = K8S.to_canonical(docs_of(out.value)).value
    assert compare(ir, back, inv).relation is Relation.NARROWER
    assert {loss.effect for loss in out.report.losses} == {Effect.NARROWED}
