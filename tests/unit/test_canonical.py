"""Tests for the canonical document: IR round trip, schema conformance, bad-input diagnostics.

The round-trip property is the contract of ``polyfence.canonical_io``; the bad-input cases
pin the exact JSON pointers so that users are sent to the right field, all errors at once.
"""

from __future__ import annotations

import copy
import importlib.util
import json
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from polyfence.canonical_io import (
    API_VERSION,
    KIND,
    SCHEMA_ID,
    canonical_schema,
    canonical_validator,
    policy_set_from_dict,
    policy_set_to_dict,
)
from polyfence.errors import InputError
from polyfence.fidelity import Feature
from polyfence.model.document import Document
from polyfence.model.peers import ANY_PEER, IpMatch, Peer
from polyfence.model.policy import (
    NOT_GOVERNED,
    Action,
    Governed,
    Policy,
    PolicyId,
    PolicySet,
    Rule,
    Subject,
    Tier,
)
from polyfence.model.ports import ANY_PORTS, PortSpec
from polyfence.model.provenance import SourceRef
from polyfence.model.selectors import Eq, SelectorSyntaxError, parse
from polyfence.semantics.intervals import IntervalSet
from tests.strategies_ir import policy_sets

SRC = SourceRef("set.yaml", 0)
ROUND_TRIP = settings(
    max_examples=100,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
RULES = "/policies/0/ingress/rules"


def _load_translator_module() -> ModuleType:
    """``polyfence.translators`` exists only once installed; else load the file directly."""
    try:
        return importlib.import_module("polyfence.translators.canonical")
    except ImportError:
        path = Path(__file__).resolve().parents[2] / "translators" / "canonical" / "__init__.py"
        spec = importlib.util.spec_from_file_location("_canonical_translator", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module


def base_doc() -> dict[str, Any]:
    """A small valid document exercising most fields; tests break one part of it."""
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "tiers": [
            {"name": "security", "order": 100, "defaultAction": "pass"},
            {"name": "default", "order": None, "defaultAction": "deny"},
        ],
        "policies": [
            {
                "format": "calico",
                "namespace": "ns-a",
                "name": "web",
                "tier": "security",
                "order": 10,
                "layer": "network",
                "labels": {"team": "web", "app": "x"},
                "subject": {"namespace": "ns-a", "selector": "app == 'x'"},
                "ingress": {
                    "governed": True,
                    "isolates": True,
                    "rules": [
                        {
                            "action": "allow",
                            "peers": [
                                {"pods": "tier == 'y'", "namespaceNames": ["ns-a"]},
                                {"ip": {"nets": ["10.0.0.0/8"], "notNets": ["10.1.0.0/16"]}},
                            ],
                            "ports": [
                                {
                                    "protocols": "6",
                                    "ports": "80,8000-8080",
                                    "named": ["http"],
                                    "notNamed": [],
                                },
                                {"protocols": "1", "ports": "2048-2303"},
                            ],
                        },
                        {"action": "deny", "peers": "any", "ports": "any"},
                    ],
                },
                "egress": {"governed": False},
            }
        ],
    }


def errors_of(data: Any, source: SourceRef = SRC) -> list[tuple[str, str]]:
    """(pointer, message) of every diagnostic; fails if the document was accepted."""
    with pytest.raises(InputError) as info:
        policy_set_from_dict(data, source)
    return [(d.source.pointer, d.message) for d in info.value.diagnostics]


def pointers_of(data: Any) -> list[str]:
    return [pointer for pointer, _ in errors_of(data)]


def object_schemas(node: Any) -> Iterator[dict[str, Any]]:
    """Every subschema that describes a JSON object."""
    if isinstance(node, dict):
        if node.get("type") == "object":
            yield node
        for value in node.values():
            yield from object_schemas(value)
    elif isinstance(node, list):
        for item in node:
            yield from object_schemas(item)


# --------------------------------------------------------------------------- round trip


@ROUND_TRIP
@given(policy_sets())
def test_round_trip_is_identity(ps: PolicySet) -> None:
    data = policy_set_to_dict(ps)
    assert policy_set_from_dict(data, SRC) == ps
    # and through JSON text: only plain JSON types, floats survive exactly
    assert policy_set_from_dict(json.loads(json.dumps(data)), SRC) == ps


@ROUND_TRIP
@given(policy_sets())
def test_output_validates_and_is_deterministic(ps: PolicySet) -> None:
    data = policy_set_to_dict(ps)
    assert list(canonical_validator().iter_errors(data)) == []
    assert json.dumps(data) == json.dumps(policy_set_to_dict(ps))


def test_base_document_reads_and_writes_back() -> None:
    ps = policy_set_from_dict(base_doc(), SRC)
    assert ps.tiers == (Tier("security", 100.0, Action.PASS), Tier("default", None, Action.DENY))
    (policy,) = ps.policies
    assert policy.id == PolicyId("calico", "ns-a", "web")
    assert policy.labels == (("team", "web"), ("app", "x"))  # document order kept
    assert policy.egress is NOT_GOVERNED
    assert isinstance(policy.ingress, Governed)
    first, second = policy.ingress.rules
    assert first.ports[1] == PortSpec(IntervalSet.point(1), IntervalSet.span(2048, 2303))
    assert second.peers is ANY_PEER and second.ports is ANY_PORTS
    written = base_doc()
    written["policies"][0]["ingress"]["rules"][0]["ports"][1].update(named=[], notNamed=[])
    assert policy_set_to_dict(ps) == written  # ints compare equal to the floats written


def test_sets_are_written_sorted_and_null_kept_distinct_from_empty() -> None:
    peers = (
        Peer(namespace_names=frozenset({"ns-b", "ns-a"}), ip=IpMatch(None, ("10.0.0.0/8",))),
        Peer(ip=IpMatch(())),
    )
    rule = Rule(Action.ALLOW, peers, ())
    policy = Policy(PolicyId("k", None, "p"), Subject(None), Governed((rule,)), Governed((), False))
    data = policy_set_to_dict(PolicySet((policy,)))
    written = data["policies"][0]["ingress"]["rules"][0]
    assert written["peers"] == [
        {"namespaceNames": ["ns-a", "ns-b"], "ip": {"nets": None, "notNets": ["10.0.0.0/8"]}},
        {"ip": {"nets": [], "notNets": []}},
    ]
    assert written["ports"] == []
    assert data["policies"][0]["egress"] == {"governed": True, "isolates": False, "rules": []}
    assert policy_set_from_dict(data, SRC) == PolicySet((policy,))


def test_sources_point_into_the_canonical_document() -> None:
    ps = policy_set_from_dict(base_doc(), SRC)
    policy = ps.policies[0]
    assert policy.source == SourceRef("set.yaml", 0, "/policies/0")
    assert isinstance(policy.ingress, Governed)
    assert [r.source for r in policy.ingress.rules] == [
        SourceRef("set.yaml", 0, f"{RULES}/0"),
        SourceRef("set.yaml", 0, f"{RULES}/1"),
    ]


# --------------------------------------------------------------------------- schema


def test_schema_is_valid_strict_and_identified() -> None:
    schema = canonical_schema()
    type(canonical_validator()).check_schema(schema)
    assert schema["$id"] == SCHEMA_ID
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    objects = list(object_schemas(schema))
    assert len(objects) >= 12
    for node in objects:
        # labels is the one open map, and even it only takes string values
        assert node["additionalProperties"] in (False, {"type": "string"}), node
    for name in ("tier", "policy", "subject", "direction", "rule", "peer", "portSpec", "l7"):
        assert schema["$defs"][name]["title"] and schema["$defs"][name]["description"]


# --------------------------------------------------------------------------- bad input


def test_schema_errors_are_all_reported_with_exact_pointers() -> None:
    doc = base_doc()
    policy = doc["policies"][0]
    del policy["name"]
    policy["subject"]["extra"] = 1
    policy["ingress"]["rules"][1]["action"] = "permit"
    doc["tiers"][0]["defaultAction"] = "allow"
    errors = errors_of(doc)
    assert [p for p, _ in errors] == [
        "/policies/0",
        f"{RULES}/1/action",
        "/policies/0/subject",
        "/tiers/0/defaultAction",
    ]
    assert "'name' is a required property" in errors[0][1]
    assert "'extra' was unexpected" in errors[2][1]


def test_bad_selectors_report_the_parser_message_at_the_field() -> None:
    doc = base_doc()
    policy = doc["policies"][0]
    policy["subject"]["selector"] = "app =="
    policy["subject"]["namespaceSelector"] = "has(env"
    policy["ingress"]["rules"][0]["peers"][0]["pods"] = "tier in {'y'"
    errors = errors_of(doc)
    expected = []
    for pointer, text in (
        ("/policies/0/subject/selector", "app =="),
        ("/policies/0/subject/namespaceSelector", "has(env"),
        (f"{RULES}/0/peers/0/pods", "tier in {'y'"),
    ):
        with pytest.raises(SelectorSyntaxError) as info:
            parse(text)
        expected.append((pointer, str(info.value)))
    assert errors == expected


def test_bad_cidrs_are_each_reported() -> None:
    doc = base_doc()
    ip = doc["policies"][0]["ingress"]["rules"][0]["peers"][1]["ip"]
    ip["nets"] = ["10.0.0.1/8", "10.0.0.0/8", "nonsense"]
    ip["notNets"] = ["10.1.0.0/33"]
    errors = errors_of(doc)
    base = f"{RULES}/0/peers/1/ip"
    assert [p for p, _ in errors] == [f"{base}/nets/0", f"{base}/nets/2", f"{base}/notNets/0"]
    assert "host bits set" in errors[0][1]
    assert "prefix length 33" in errors[2][1]


def test_bad_interval_text_and_ranges_are_each_reported() -> None:
    doc = base_doc()
    ports = doc["policies"][0]["ingress"]["rules"][0]["ports"]
    ports[0]["protocols"] = "300"
    ports[0]["ports"] = "80-"
    ports[1]["ports"] = "9-3"
    ports[1]["protocols"] = "1,65536"
    errors = errors_of(doc)
    assert [p for p, _ in errors] == [
        f"{RULES}/0/ports/0/protocols",
        f"{RULES}/0/ports/0/ports",
        f"{RULES}/0/ports/1/protocols",
        f"{RULES}/0/ports/1/ports",
    ]
    assert "0-255" in errors[0][1]
    assert "lo > hi" in errors[3][1]


def test_direction_shape_errors() -> None:
    doc = base_doc()
    policy = doc["policies"][0]
    policy["egress"] = {"governed": False, "rules": []}
    policy["ingress"] = {"governed": True}
    errors = errors_of(doc)
    assert errors == [
        ("/policies/0/egress", "Additional properties are not allowed ('rules' was unexpected)"),
        ("/policies/0/ingress", "'isolates' is a required property"),
        ("/policies/0/ingress", "'rules' is a required property"),
    ]


def test_peers_and_ports_must_be_any_or_lists_of_valid_items() -> None:
    doc = base_doc()
    rules = doc["policies"][0]["ingress"]["rules"]
    rules[1]["peers"] = "all"
    rules[1]["ports"] = 80
    rules[0]["peers"][1]["cidr"] = "10.0.0.0/8"
    rules[0]["peers"][1]["entity"] = "internet"
    rules[0]["l7"] = {"http": [{"paths": [["glob", "/a"], ["exact", "/b", "x"]]}]}
    assert pointers_of(doc) == [
        f"{RULES}/0/l7/http/0/paths/0/0",
        f"{RULES}/0/l7/http/0/paths/1",
        f"{RULES}/0/peers/1",
        f"{RULES}/0/peers/1/entity",
        f"{RULES}/1/peers",
        f"{RULES}/1/ports",
    ]


def test_schema_errors_come_before_semantic_checks() -> None:
    """Semantic checks assume the schema holds, so they only run on a schema-valid document."""
    doc = base_doc()
    doc["kind"] = "NetworkPolicy"
    doc["policies"][0]["subject"]["selector"] = "app =="
    assert errors_of(doc) == [("/kind", "'PolicySet' was expected")]


@pytest.mark.parametrize(
    ("data", "pointer"),
    [([], ""), ("text", ""), ({"apiVersion": API_VERSION, "kind": KIND, "tiers": []}, "")],
)
def test_non_documents_are_rejected_at_the_root(data: Any, pointer: str) -> None:
    assert pointers_of(data) == [pointer]


def test_diagnostics_keep_the_file_and_document_of_the_source() -> None:
    doc = base_doc()
    doc["policies"][0]["layer"] = "l4"
    with pytest.raises(InputError) as info:
        policy_set_from_dict(doc, SourceRef("in.json", 3, "/items/1"))
    (diagnostic,) = info.value.diagnostics
    assert diagnostic.source == SourceRef("in.json", 3, "/items/1/policies/0/layer")
    assert str(diagnostic).startswith("in.json[3]:/items/1/policies/0/layer: ")


# --------------------------------------------------------------------------- translator


@pytest.fixture(scope="module")
def translator() -> Any:
    return _load_translator_module().CanonicalTranslator()


def test_translator_declares_everything_exact(translator: Any) -> None:
    assert translator.name == "canonical"
    assert translator.aliases == ()
    assert translator.capabilities == {f.value: "exact" for f in Feature}


def test_translator_accepts_only_canonical_documents(translator: Any) -> None:
    assert translator.accepts(Document(base_doc(), SRC))
    assert not translator.accepts(Document({"apiVersion": API_VERSION, "kind": "X"}, SRC))
    assert not translator.accepts(Document([1], SRC))


def test_translator_merges_documents_and_renders_one(translator: Any) -> None:
    first = base_doc()
    second = base_doc()
    second["tiers"] = [{"name": "security", "order": 5, "defaultAction": "deny"}]
    second["policies"][0]["name"] = "api"
    other = Document({"apiVersion": "v1", "kind": "Pod"}, SourceRef("x", 0))
    result = translator.to_canonical(
        [Document(first, SourceRef("a", 0)), other, Document(second, SourceRef("a", 1))]
    )
    ps = result.value
    assert [p.id.name for p in ps] == ["web", "api"]
    assert ps.tier("security").order == 100.0  # the first definition wins
    assert ps.policies[1].source == SourceRef("a", 1, "/policies/0")
    assert result.report.exact and result.report.losses == ()
    rendered = translator.from_canonical(ps)
    assert rendered.value == [policy_set_to_dict(ps)]
    assert rendered.report.losses == ()
    assert translator.to_canonical([Document(rendered.value[0], SRC)]).value == ps


def test_translator_without_documents_gives_the_default_set(translator: Any) -> None:
    assert translator.to_canonical([]).value == PolicySet()
    only_tiers = {"apiVersion": API_VERSION, "kind": KIND, "tiers": [], "policies": []}
    assert translator.to_canonical([Document(only_tiers, SRC)]).value == PolicySet((), ())


def test_translator_reports_errors_of_every_document_together(translator: Any) -> None:
    bad_schema = base_doc()
    bad_schema["policies"][0]["order"] = "first"
    bad_selector = copy.deepcopy(base_doc())
    bad_selector["policies"][0]["subject"]["selector"] = "!"
    with pytest.raises(InputError) as info:
        translator.to_canonical(
            [Document(bad_schema, SourceRef("f", 0)), Document(bad_selector, SourceRef("f", 1))]
        )
    assert [(d.source.document, d.source.pointer) for d in info.value.diagnostics] == [
        (0, "/policies/0/order"),
        (1, "/policies/0/subject/selector"),
    ]


def test_unprintable_ir_is_refused_when_writing() -> None:
    """A label value with both quote kinds has no selector text; writing must not guess."""
    policy = Policy(PolicyId("k", "ns-a", "p"), Subject("ns-a", Eq("app", 'it\'s "x"')))
    with pytest.raises(ValueError, match="both quote kinds"):
        policy_set_to_dict(PolicySet((policy,)))
