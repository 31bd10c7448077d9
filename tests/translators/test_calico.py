"""Calico translator: corpus, Calico's own semantics traps, round trips judged by the engine."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from hypothesis import given, settings

from polyfence import api
from polyfence.errors import InputError
from polyfence.fidelity import Effect
from polyfence.inventory import Endpoint, Inventory, Namespace, build_inventory
from polyfence.io.files import parse_text
from polyfence.model.document import Document
from polyfence.model.labels import KIND_KEY, NAMESPACE_KEY
from polyfence.model.peers import ANY_PEER, NetworkSet, Peer
from polyfence.model.policy import NOT_GOVERNED, Action, Governed, PolicySet
from polyfence.model.provenance import SourceRef
from polyfence.model.selectors import Eq, In, parse
from polyfence.semantics.compare import Relation, compare
from polyfence.semantics.verdict import Connection, verdict
from polyfence.translation import RenderOptions
from polyfence.translators.calico import CalicoTranslator
from polyfence.translators.calico.reader import validator as calico_validator
from polyfence.translators.kubernetes import KubernetesTranslator
from tests.conftest import DATA, corpus_files
from tests.strategies import general_sets, inventories, k8s_fragment_sets, k8s_policy_lists

CALICO = CalicoTranslator()
K8S = KubernetesTranslator()


def read(text: str) -> PolicySet:
    return CALICO.to_canonical(parse_text(text, "c.yaml")).value


def docs_of(items: list[dict[str, Any]]) -> list[Document]:
    return [Document(d, SourceRef("gen", i)) for i, d in enumerate(items)]


@functools.cache
def crd_validators() -> dict[str, jsonschema.protocols.Validator]:
    out = {}
    for kind, name in (
        ("NetworkPolicy", "networkpolicies"),
        ("GlobalNetworkPolicy", "globalnetworkpolicies"),
        ("Tier", "tiers"),
        ("NetworkSet", "networksets"),
        ("GlobalNetworkSet", "globalnetworksets"),
    ):
        crd = yaml.safe_load(
            (DATA / f"upstream-schemas/calico/projectcalico.org_{name}.yaml").read_text()
        )
        out[kind] = jsonschema.Draft7Validator(
            crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        )
    return out


# reading: Calico's own rules ---------------------------------------------------------------

NP = """
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: p, namespace: prod}
spec:
  selector: app == 'web'
"""


def test_types_defaulting_differs_from_kubernetes() -> None:
    (egress_only,) = read(NP + "  egress: [{action: Allow}]\n")
    assert egress_only.ingress is NOT_GOVERNED and isinstance(egress_only.egress, Governed)
    (neither,) = read(NP)
    assert isinstance(neither.ingress, Governed) and neither.egress is NOT_GOVERNED


def test_rule_scoping_in_networkpolicy_and_globalnetworkpolicy() -> None:
    rule = "  ingress: [{action: Allow, source: {selector: role == 'fe'}}]\n"
    (np,) = read(NP + rule)
    (peer,) = np.ingress.rules[0].peers  # type: ignore[union-attr,misc]
    assert peer == Peer(pods=Eq("role", "fe"), namespace_names=frozenset({"prod"}), sets=True)
    (gnp,) = read(
        NP.replace("kind: NetworkPolicy", "kind: GlobalNetworkPolicy").replace(
            ", namespace: prod", ""
        )
        + rule
    )
    (peer,) = gnp.ingress.rules[0].peers  # type: ignore[union-attr,misc]
    assert peer == Peer(pods=Eq("role", "fe"), sets=True)
    assert gnp.subject.namespace is None and gnp.subject.include_hosts


def test_automatic_labels_become_reserved_keys() -> None:
    text = NP + (
        "  ingress:\n  - action: Allow\n    source:\n"
        "      selector: projectcalico.org/namespace in {'a', 'b'} && projectcalico.org/orchestrator == 'k8s'\n"
        "      namespaceSelector: projectcalico.org/name == 'a'\n"
    )
    (pol,) = read(text)
    (peer,) = pol.ingress.rules[0].peers  # type: ignore[union-attr,misc]
    assert peer.pods == In(NAMESPACE_KEY, frozenset({"a", "b"}))
    assert not peer.sets  # the orchestrator clause means: pods only
    assert peer.namespace_selector == Eq("kubernetes.io/metadata.name", "a")
    (wrong,) = read(NP.replace("app == 'web'", "projectcalico.org/orchestrator == 'kubernetes'"))
    assert not wrong.subject.selector.matches({KIND_KEY: "pod"})  # the value is 'k8s', so: nothing


def test_destination_of_an_ingress_rule_binds_the_subject_side() -> None:
    (pol,) = read(
        NP
        + "  ingress: [{action: Deny, protocol: TCP, destination: {selector: tier == 'x', ports: [80, '8000:8080', http]}}]\n"
    )
    (rule,) = pol.ingress.rules  # type: ignore[union-attr]
    assert rule.action is Action.DENY and rule.peers is ANY_PEER
    assert rule.local == Peer(pods=Eq("tier", "x"), namespace_names=frozenset({"prod"}), sets=True)
    (spec,) = rule.ports  # type: ignore[misc]
    assert str(spec.ports) == "80,8000-8080" and spec.named == frozenset({"http"})


@pytest.mark.parametrize(
    ("tail", "pointer", "needle"),
    [
        (
            "  ingress: [{action: Allow, destination: {ports: [80]}}]",
            "/spec/ingress/0/destination/ports",
            "protocol",
        ),
        (
            "  ingress: [{action: Allow, protocol: ICMP, icmp: {code: 1}}]",
            "/spec/ingress/0/icmp/code",
            "without an ICMP type",
        ),
        (
            "  ingress: [{action: Allow, source: {nets: [10.0.0.0/8, 'fd00::/8']}}]",
            "/spec/ingress/0/source",
            "mixed",
        ),
        (
            "  ingress: [{action: Allow, source: {selector: \"app = 'x'\"}}]",
            "/spec/ingress/0/source/selector",
            "position",
        ),
        ("  ingress: [{action: Maybe}]", "/spec/ingress/0/action", ""),
        (
            "  ingress: [{action: Allow, protocol: TCPX}]",
            "/spec/ingress/0/protocol",
            "unknown protocol",
        ),
        (  # used to be a traceback
            "  ingress: [{action: Allow, protocol: TCP, destination: {ports: ['70000']}}]",
            "/spec/ingress/0/destination/ports/0",
            "outside 0-65535",
        ),
    ],
)
def test_bad_input_is_located(tail: str, pointer: str, needle: str) -> None:
    with pytest.raises(InputError) as info:
        read(NP + tail + "\n")
    assert any(
        d.source.pointer.startswith(pointer) and needle in str(d) for d in info.value.diagnostics
    ), [str(d) for d in info.value.diagnostics]


# evaluation traps (semantics.md §8) ----------------------------------------------------------

WEB = Endpoint("Pod", "prod", "web", {"app": "web"}, "default", ("10.0.0.2",))
FE = Endpoint("Pod", "prod", "fe", {"role": "fe"}, "default", ("10.0.0.3",))
OTHER = Endpoint("Pod", "dev", "fe", {"role": "fe"}, "default", ("10.0.1.3",))
INV = build_inventory([Namespace("prod", {}), Namespace("dev", {})], [WEB, FE, OTHER])


def allowed(ps: PolicySet, src: Endpoint | str, dst: Endpoint | str, port: int = 80) -> bool:
    return verdict(ps, Connection(src, dst, 6, port), INV).allowed


def test_selector_all_is_not_all_traffic_and_notselector_scoping() -> None:
    """Traps 6 and 7: selector all() matches known endpoints only; notSelector in a
    GlobalNetworkPolicy matches the Internet too, in a NetworkPolicy it stays in the namespace."""
    gnp = """
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: g}
spec:
  selector: app == 'web'
  ingress: [{action: Allow, source: {%s}}]
"""
    all_sel = read(gnp % "selector: all()")
    assert allowed(all_sel, FE, WEB) and not allowed(all_sel, "8.8.8.8", WEB)
    not_sel = read(gnp % "notSelector: role == 'fe'")
    assert allowed(not_sel, "8.8.8.8", WEB) and not allowed(not_sel, FE, WEB)
    np_not = read(NP + "  ingress: [{action: Allow, source: {notSelector: role == 'x'}}]\n")
    assert (
        allowed(np_not, FE, WEB)
        and not allowed(np_not, OTHER, WEB)
        and not allowed(np_not, "8.8.8.8", WEB)
    )


def test_network_sets_are_selected_by_labels() -> None:
    text = """
apiVersion: projectcalico.org/v3
kind: GlobalNetworkSet
metadata: {name: bad, labels: {deny-list: 'true'}}
spec: {nets: [203.0.113.0/24]}
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: block}
spec:
  order: 10
  selector: all()
  ingress:
  - {action: Deny, source: {selector: deny-list == 'true' && !has(projectcalico.org/namespace)}}
  - {action: Allow}
"""
    ps = read(text)
    assert ps.network_sets == (
        NetworkSet("bad", None, (("deny-list", "true"),), ("203.0.113.0/24",)),
    )
    assert not allowed(ps, "203.0.113.9", WEB) and allowed(ps, "198.51.100.1", WEB)


def test_order_tiers_and_pass() -> None:
    text = """
apiVersion: projectcalico.org/v3
kind: Tier
metadata: {name: security}
spec: {order: 100, defaultAction: Pass}
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: security.quarantine}
spec:
  tier: security
  selector: all()
  ingress: [{action: Deny, source: {selector: role == 'fe', namespaceSelector: projectcalico.org/name == 'dev'}}]
---
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: allow-fe, namespace: prod}
spec:
  selector: app == 'web'
  ingress: [{action: Allow, source: {selector: role == 'fe'}}]
"""
    ps = read(text)
    assert not allowed(ps, OTHER, WEB)  # denied in the security tier
    assert allowed(ps, FE, WEB)  # passed by the tier's default action, allowed in default
    assert not allowed(ps, "8.8.8.8", WEB)  # end of the default tier: dropped


# corpus ------------------------------------------------------------------------------------

EXPECTED_FAILURES = {
    # Published docs examples with destination ports but no protocol: Calico's validator
    # rejects them ("rules that specify ports must set protocol"), and so do we.
    "gnp-namespaceselector-in-set.yaml": "/spec/ingress/0/destination/ports",
    "gnp-selector-projectcalico-namespace-in-set.yaml": "/spec/ingress/0/destination/ports",
}


@pytest.mark.parametrize("path", corpus_files("calico"), ids=lambda p: p.name)
def test_calico_corpus_reads_and_round_trips(path: Path) -> None:
    if path.name in EXPECTED_FAILURES:
        with pytest.raises(InputError) as info:
            api.load([str(path)])
        assert [d.source.pointer for d in info.value.diagnostics] == [EXPECTED_FAILURES[path.name]]
        return
    bundle = api.load([str(path)])
    out = CALICO.from_canonical(bundle.policies)
    validators = crd_validators()
    for doc in out.value:
        assert not [e.message for e in validators[doc["kind"]].iter_errors(doc)]
    back = CALICO.to_canonical(docs_of(out.value)).value
    assert api.compare(bundle.policies, back).relation is Relation.EQUIVALENT


def test_published_equivalence_pair_once_valid() -> None:
    """The two ways the Calico docs write one policy are judged equivalent (with the protocol
    their port list needs)."""
    a, b = (
        (DATA / "corpus/calico" / name)
        .read_text()
        .replace("    destination:", "    protocol: TCP\n    destination:")
        for name in EXPECTED_FAILURES
    )
    pa, pb = read(a), read(b)
    inv = build_inventory(
        [Namespace(n, {}) for n in ("foo", "bar", "baz", "qux")],
        [
            Endpoint("Pod", ns, f"{ns}-{c}", {"color": c}, "default", (f"10.0.{i}.{j}",))
            for i, ns in enumerate(("foo", "bar", "baz", "qux"))
            for j, c in enumerate(("red", "blue"))
        ],
    )
    assert compare(pa, pb, inv).relation is Relation.EQUIVALENT


@pytest.mark.parametrize("path", corpus_files("k8s"), ids=lambda p: p.name)
def test_k8s_corpus_to_calico_valid_and_equivalent(path: Path) -> None:
    bundle = api.load([str(path)])
    result = api.convert(bundle, "calico", exact=True)
    validators = crd_validators()
    for doc in result.documents:
        assert not [e.message for e in validators[doc["kind"]].iter_errors(doc)]
    assert result.report.verification is not None
    assert result.report.verification.relation == "equivalent"
    back = K8S.from_canonical(result.policies)
    assert not back.report.losses
    again = K8S.to_canonical(docs_of(back.value)).value
    assert api.compare(bundle.policies, again).relation is Relation.EQUIVALENT


# round trips judged by the engine ----------------------------------------------------------


@settings(max_examples=80, deadline=None)
@given(ir=general_sets(), inv=inventories())
def test_calico_fragment_round_trip_is_exact(ir: PolicySet, inv: Inventory) -> None:
    """Tiers, order, deny, pass, log, network sets, subject-side constraints, reserved keys:
    IR → Calico → IR allows exactly the same connections, and the report says so."""
    out = CALICO.from_canonical(ir)
    for doc in out.value:  # the vendored upstream CRD schemas
        assert not [e.message for e in calico_validator(doc["kind"]).iter_errors(doc)]
    back = CALICO.to_canonical(docs_of(out.value))
    assert not [loss for loss in back.report.losses if loss.effect is not Effect.NONE]
    relation = compare(ir, back.value, inv).relation
    effects = {loss.effect for loss in out.report.losses}
    if relation in (Relation.WIDER, Relation.INCOMPARABLE):
        assert Effect.WIDENED in effects, out.report.losses
    if relation in (Relation.NARROWER, Relation.INCOMPARABLE):
        assert Effect.NARROWED in effects, out.report.losses
    if not effects - {Effect.NONE}:
        assert relation is Relation.EQUIVALENT


@settings(max_examples=60, deadline=None)
@given(items=k8s_policy_lists(), inv=inventories())
def test_k8s_to_calico_to_k8s(items: list[dict[str, Any]], inv: Inventory) -> None:
    ir = K8S.to_canonical(docs_of(items)).value
    calico = CALICO.from_canonical(ir)
    assert not calico.report.losses
    mid = CALICO.to_canonical(docs_of(calico.value)).value
    assert compare(ir, mid, inv).relation is Relation.EQUIVALENT
    k8s = K8S.from_canonical(mid)
    assert not k8s.report.losses
    assert (
        compare(ir, K8S.to_canonical(docs_of(k8s.value)).value, inv).relation is Relation.EQUIVALENT
    )


@settings(max_examples=60, deadline=None)
@given(ir=k8s_fragment_sets(calico_features=True), inv=inventories())
def test_calico_to_k8s_exact_where_expressible(ir: PolicySet, inv: Inventory) -> None:
    calico = CALICO.to_canonical(docs_of(CALICO.from_canonical(ir).value)).value
    out = K8S.from_canonical(calico, RenderOptions(inventory=inv))
    assert not out.report.losses
    back = K8S.to_canonical(docs_of(out.value)).value
    assert compare(ir, back, inv).relation is Relation.EQUIVALENT


def test_calico_outputs_parse_as_json(tmp_path: Path) -> None:
    ps = read(NP + "  ingress: [{action: Allow, protocol: ICMP, icmp: {type: 8}}]\n")
    docs = CALICO.from_canonical(ps).value
    assert json.loads(json.dumps(docs))[0]["spec"]["ingress"][0]["icmp"] == {"type": 8}
    assert parse(docs[0]["spec"]["selector"]) == Eq("app", "web")


@settings(max_examples=80, deadline=None)
@given(ir=general_sets(), inv=inventories())
def test_calico_to_k8s_never_drifts_silently(ir: PolicySet, inv: Inventory) -> None:
    """Calico (with deny, pass, tiers, order, sets, local sides) to Kubernetes: whatever the
    engine finds changed is covered by a reported loss of that effect."""
    calico = CALICO.to_canonical(docs_of(CALICO.from_canonical(ir).value)).value
    out = K8S.from_canonical(calico, RenderOptions(inventory=inv))
    relation = compare(calico, K8S.to_canonical(docs_of(out.value)).value, inv).relation
    effects = {loss.effect for loss in out.report.losses}
    if relation in (Relation.WIDER, Relation.INCOMPARABLE):
        assert effects & {Effect.WIDENED, Effect.INVENTORY_DEPENDENT}, out.report.losses
    if relation in (Relation.NARROWER, Relation.INCOMPARABLE):
        assert effects & {Effect.NARROWED, Effect.INVENTORY_DEPENDENT}, out.report.losses
