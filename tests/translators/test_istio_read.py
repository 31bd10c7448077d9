"""Istio AuthorizationPolicy reader: corpus, the IR conventions the engine relies on, validation."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import pytest
import yaml

from polyfence import api, translators
from polyfence.errors import InputError
from polyfence.fidelity import Effect, Feature, Loss, Treatment
from polyfence.inventory import Endpoint, Namespace, build_inventory
from polyfence.io.files import parse_text
from polyfence.model.peers import ANY_PEER, IpMatch, Peer, PrincipalMatch
from polyfence.model.policy import (
    DEFAULT_TIER,
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
from polyfence.model.selectors import All, Eq, and_
from polyfence.semantics.intervals import ALL_PORTS, IntervalSet
from polyfence.semantics.matching import Matcher
from polyfence.semantics.profile import DEFAULT_PROFILE
from polyfence.translation import Translation
from polyfence.translators.istio import IstioTranslator
from polyfence.translators.istio.reader import ALLOW_ORDER, DENY_ORDER
from tests.conftest import DATA, corpus_files

ISTIO = IstioTranslator()
CORPUS = DATA / "corpus" / "istio"
CRD = DATA / "upstream-schemas" / "istio" / "authorizationpolicies.security.istio.io.yaml"


def translate(text: str, translator: IstioTranslator = ISTIO) -> Translation[PolicySet]:
    return translator.to_canonical(parse_text(text, "ap.yaml"))


def read(text: str) -> list[Policy]:
    return list(translate(text).value.policies)


def one(text: str) -> Policy:
    (policy,) = read(text)
    return policy


def rules(text: str) -> tuple[Rule, ...]:
    ingress = one(text).ingress
    assert isinstance(ingress, Governed)
    return ingress.rules


def errors(text: str) -> list[str]:
    with pytest.raises(InputError) as info:
        translate(text)
    return [str(d) for d in info.value.diagnostics]


def losses(text: str) -> list[Loss]:
    return list(translate(text).report.losses)


def ap(spec: str, namespace: str = "prod", api_version: str = "security.istio.io/v1") -> str:
    """An AuthorizationPolicy with ``spec`` (YAML flow or block text indented by 2)."""
    return (
        f"apiVersion: {api_version}\nkind: AuthorizationPolicy\n"
        f"metadata: {{name: p, namespace: {namespace}}}\nspec:\n{spec}"
    )


def rule_spec(rule: str, action: str = "ALLOW") -> str:
    """A policy with one rule given as flow YAML."""
    return ap(f"  action: {action}\n  rules: [{rule}]\n")


def ports(*numbers: int) -> tuple[PortSpec, ...]:
    return (
        PortSpec.single(Protocol.TCP, IntervalSet.union_all(IntervalSet.point(n) for n in numbers)),
    )


# corpus ------------------------------------------------------------------------------------


def corpus() -> list[Path]:
    return corpus_files("istio")


EXPECTED_LOSSES = {
    "authz-custom-ext-authz.yaml": (Effect.WIDENED, Feature.DENY_ACTION, "/spec/provider"),
    "authz-ingress-remoteipblocks.yaml": (
        Effect.INVENTORY_DEPENDENT,
        Feature.IPBLOCK,
        "/spec/rules/0/from/0/source/remoteIpBlocks",
    ),
}


@pytest.mark.parametrize("path", corpus(), ids=lambda p: p.name)
def test_corpus_reads(path: Path) -> None:
    docs = parse_text(path.read_text(), path.name)
    result = ISTIO.to_canonical(docs)
    assert len(result.value.policies) == sum(ISTIO.accepts(d) for d in docs) == 1
    for policy in result.value.policies:
        assert policy.layer is Layer.L7 and policy.egress is NOT_GOVERNED
        assert policy.tier == DEFAULT_TIER and isinstance(policy.ingress, Governed)
    found = [
        (loss.effect, loss.feature, loss.source.pointer)
        for loss in result.report.losses
        if loss.source
    ]
    assert found == ([EXPECTED_LOSSES[path.name]] if path.name in EXPECTED_LOSSES else [])
    api.load(
        [str(path)]
    )  # PeerAuthentication documents are inventory, AuthorizationPolicy is istio


@pytest.mark.parametrize("path", corpus(), ids=lambda p: p.name)
def test_corpus_is_valid_per_upstream_crd(path: Path) -> None:
    import jsonschema

    crd = yaml.safe_load(CRD.read_text())
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for doc in parse_text(path.read_text(), path.name):
        if ISTIO.accepts(doc):
            assert not [e.message for e in jsonschema.Draft7Validator(schema).iter_errors(doc.data)]


def test_packaged_schema_is_the_upstream_crd() -> None:
    crd = yaml.safe_load(CRD.read_text())
    packaged = json.loads(
        (
            resources.files("polyfence.schemas") / "input" / "istio-authorizationpolicy.json"
        ).read_text()
    )
    assert [v["name"] for v in crd["spec"]["versions"]] == ["v1", "v1beta1"]
    for version in crd["spec"]["versions"]:
        assert version["schema"]["openAPIV3Schema"] == packaged


def test_corpus_mappings() -> None:
    def load(name: str) -> Policy:
        (policy,) = ISTIO.to_canonical(parse_text((CORPUS / name).read_text(), name)).value.policies
        return policy

    nothing = load("authz-http-allow-nothing.yaml")
    assert nothing.ingress == Governed((), True) and nothing.subject == Subject("default", All())
    mtls = load("spe-require-mtls.yaml")
    assert mtls.order == DENY_ORDER and mtls.ingress == Governed(
        (Rule(Action.DENY, (Peer(principal=PrincipalMatch(not_principals=frozenset({"*"}))),)),),
        False,
    )
    tcp = load("authz-tcp-allow-ports.yaml")
    assert tcp.ingress == Governed((Rule(Action.ALLOW, ANY_PEER, ports(9000, 9001)),), True)
    gateway = load("authz-ingress-ipblocks.yaml")
    assert gateway.subject == Subject(None, Eq("app", "istio-ingressgateway"), All())
    assert isinstance(gateway.ingress, Governed)
    assert gateway.ingress.rules[0].peers == (Peer(ip=IpMatch(("1.2.3.4/32", "5.6.7.0/24"))),)


# policy level ------------------------------------------------------------------------------


def test_policy_identity_and_defaults() -> None:
    policy = one(
        "apiVersion: security.istio.io/v1beta1\nkind: AuthorizationPolicy\n"
        "metadata: {name: web, namespace: prod, labels: {team: a}}\n"
        "spec: {selector: {matchLabels: {app: web, tier: front}}}\n"
    )
    assert policy.id == PolicyId("istio", "prod", "web")
    assert policy.subject == Subject("prod", and_(Eq("app", "web"), Eq("tier", "front")))
    assert policy.labels == (("team", "a"),)
    assert policy.layer is Layer.L7 and policy.egress is NOT_GOVERNED
    assert policy.order == ALLOW_ORDER and policy.source is not None
    assert policy.source.pointer == "" and policy.source.file == "ap.yaml"


def test_no_spec_and_no_namespace() -> None:
    policy = one(
        "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: p}\n"
    )
    assert policy.subject == Subject("default", All())
    assert policy.ingress == Governed((), True)  # an empty ALLOW policy allows nothing


@pytest.mark.parametrize(
    ("action", "ir_action", "order", "isolates"),
    [
        ("ALLOW", Action.ALLOW, 200.0, True),
        ("DENY", Action.DENY, 100.0, False),
        ("AUDIT", Action.LOG, 0.0, False),
    ],
)
def test_actions(action: str, ir_action: Action, order: float, isolates: bool) -> None:
    policy = one(rule_spec("{}", action))
    assert policy.order == order
    assert policy.ingress == Governed((Rule(ir_action, ANY_PEER, ANY_PORTS),), isolates)


def test_allow_is_the_default_action() -> None:
    policy = one(ap("  rules: [{}]\n"))
    assert policy.order == ALLOW_ORDER
    assert policy.ingress == Governed((Rule(Action.ALLOW),), True)


def test_audit_is_logged_only() -> None:
    (loss,) = losses(rule_spec("{}", "AUDIT"))
    assert (loss.effect, loss.feature, loss.treatment) == (
        Effect.NONE,
        Feature.LOG_ACTION,
        Treatment.APPROXIMATED,
    )
    assert loss.source is not None and loss.source.pointer == "/spec/action"


def test_custom_is_logged_and_reported() -> None:
    text = ap(
        "  action: CUSTOM\n  provider: {name: ext-authz}\n  rules: [{to: [{operation: {paths: [/admin]}}]}]\n"
    )
    policy = one(text)
    assert policy.order == 0.0
    assert policy.ingress == Governed(
        (
            Rule(
                Action.LOG,
                ANY_PEER,
                ANY_PORTS,
                L7Match((HttpMatch(paths=(("exact", "/admin"),)),)),
            ),
        ),
        False,
    )
    (loss,) = losses(text)
    assert (loss.effect, loss.feature, loss.treatment) == (
        Effect.WIDENED,
        Feature.DENY_ACTION,
        Treatment.DROPPED,
    )
    assert "'ext-authz'" in loss.message


# trap 3: `rules: [{}]` vs no rules -------------------------------------------------------------


def test_allow_without_rules_allows_nothing() -> None:
    assert one(ap("  action: ALLOW\n")).ingress == Governed((), True)
    assert one(ap("  rules: []\n")).ingress == Governed((), True)


def test_allow_with_an_empty_rule_allows_everything() -> None:
    assert one(ap("  rules: [{}]\n")).ingress == Governed((Rule(Action.ALLOW),), True)


def test_deny_with_an_empty_rule_denies_everything() -> None:
    policy = one(rule_spec("{}", "DENY"))
    assert policy.ingress == Governed((Rule(Action.DENY, ANY_PEER, ANY_PORTS),), False)


def test_deny_without_rules_is_refused_like_istio() -> None:
    # istiod's webhook: "DENY action without `rules` is meaningless as it will never be triggered"
    (message,) = errors(ap("  action: DENY\n"))
    assert message.startswith("ap.yaml[0]:/spec: DENY action without rules is meaningless")
    (message,) = errors(ap("  action: DENY\n  rules: []\n"))
    assert message.startswith("ap.yaml[0]:/spec/rules: DENY action without rules")


# subjects ----------------------------------------------------------------------------------


def test_no_selector_selects_the_namespace() -> None:
    assert one(ap("  rules: [{}]\n")).subject == Subject("prod", All())
    assert one(ap("  selector: {}\n  rules: [{}]\n")).subject == Subject("prod", All())


def test_root_namespace_policy_is_mesh_wide() -> None:
    policy = one(ap("  selector: {matchLabels: {app: web}}\n", namespace="istio-system"))
    assert policy.id == PolicyId("istio", "istio-system", "p")
    assert policy.subject == Subject(None, Eq("app", "web"), namespace_selector=All())
    pods = [
        Endpoint("Pod", ns, f"web-{ns}", {"app": "web"}, "default", (f"10.0.{i}.2",), (), "n1")
        for i, ns in enumerate(("prod", "dev", "istio-system"))
    ]
    other = Endpoint("Pod", "prod", "db", {"app": "db"}, "default", ("10.0.9.2",), (), "n1")
    inventory = build_inventory(
        [Namespace("prod"), Namespace("dev"), Namespace("istio-system")], [*pods, other]
    )
    matcher = Matcher(inventory, DEFAULT_PROFILE)
    assert all(matcher.selects(policy.subject, pod) for pod in pods)
    assert not matcher.selects(policy.subject, other)


def test_root_namespace_is_a_parameter() -> None:
    text = ap("  rules: [{}]\n", namespace="mesh-root")
    assert one(text).subject == Subject("mesh-root", All())
    custom = IstioTranslator(root_namespace="mesh-root")
    (policy,) = translate(text, custom).value.policies
    assert policy.subject == Subject(None, All(), All())
    assert translators.get("istio").root_namespace == "istio-system"  # type: ignore[attr-defined]


def test_target_refs_are_reported_not_read() -> None:
    text = ap(
        "  targetRefs:\n"
        "  - {kind: Gateway, group: gateway.networking.k8s.io, name: edge}\n"
        "  - {kind: Service, name: api}\n"
        "  rules: [{}]\n"
    )
    result = translate(text)
    assert result.value.policies == ()
    (loss,) = result.report.losses
    assert (loss.effect, loss.treatment, loss.feature) == (
        Effect.WIDENED,
        Treatment.DROPPED,
        Feature.LAYER,
    )
    assert "Gateway/edge" in loss.message and "Service/api" in loss.message
    assert loss.source is not None and loss.source.pointer == "/spec/targetRefs"


def test_target_ref_policies_are_still_validated() -> None:
    text = ap(
        "  targetRef: {kind: Deployment, group: apps, name: web, namespace: other}\n"
        "  rules: [{to: [{operation: {ports: [http]}}]}]\n"
    )
    assert errors(text) == [
        "ap.yaml[0]:/spec/targetRef/namespace: cross namespace referencing is not currently supported",
        "ap.yaml[0]:/spec/targetRef: targetRef must be to a Service, ServiceEntry, Gateway or "
        "GatewayClass, not apps/Deployment",
        "ap.yaml[0]:/spec/rules/0/to/0/operation/ports/0: bad port 'http': a port is a number 0-65535",
    ]


# sources -----------------------------------------------------------------------------------


def test_principals_and_namespaces() -> None:
    (rule,) = rules(
        rule_spec(
            "{from: [{source: {principals: [cluster.local/ns/a/sa/x, 'cluster.local/*'], "
            "notNamespaces: [kube-system]}}, {source: {namespaces: ['team-*']}}]}"
        )
    )
    assert rule.peers == (
        Peer(
            principal=PrincipalMatch(
                principals=frozenset({"cluster.local/ns/a/sa/x", "cluster.local/*"}),
                not_namespaces=frozenset({"kube-system"}),
            )
        ),
        Peer(principal=PrincipalMatch(namespaces=frozenset({"team-*"}))),
    )
    assert rule.source is not None and rule.source.pointer == "/spec/rules/0"


def test_service_accounts_become_principal_patterns() -> None:
    (rule,) = rules(
        rule_spec(
            "{from: [{source: {serviceAccounts: [web, other/api], notServiceAccounts: [dev/bot]}}]}"
        )
    )
    assert rule.peers == (
        Peer(
            principal=PrincipalMatch(
                principals=frozenset({"*/ns/prod/sa/web", "*/ns/other/sa/api"}),
                not_principals=frozenset({"*/ns/dev/sa/bot"}),
            )
        ),
    )


def test_ip_blocks_and_not_ip_blocks_stay_in_one_peer() -> None:
    # trap 30: one source, ipBlocks AND notIpBlocks; merging across sources would change it
    (rule,) = rules(
        rule_spec(
            "{from: [{source: {ipBlocks: [10.0.0.0/8, 192.168.1.7], notIpBlocks: [10.1.0.0/16]}}, "
            "{source: {ipBlocks: [10.1.2.0/24]}}, {source: {notIpBlocks: ['2001:db8::1']}}]}"
        )
    )
    assert rule.peers == (
        Peer(ip=IpMatch(("10.0.0.0/8", "192.168.1.7/32"), ("10.1.0.0/16",))),
        Peer(ip=IpMatch(("10.1.2.0/24",))),
        Peer(ip=IpMatch(None, ("2001:db8::1/128",))),
    )


def test_host_bits_are_masked_like_envoy() -> None:
    (rule,) = rules(rule_spec("{from: [{source: {ipBlocks: [10.1.2.3/8]}}]}"))
    assert rule.peers == (Peer(ip=IpMatch(("10.0.0.0/8",))),)


def test_remote_ip_blocks_are_read_as_the_source_ip() -> None:
    text = rule_spec(
        "{from: [{source: {ipBlocks: [10.0.0.0/8], notIpBlocks: [10.9.0.0/16], "
        "remoteIpBlocks: [10.1.0.0/16, 172.16.0.0/12], notRemoteIpBlocks: [10.1.1.0/24]}}]}"
    )
    (rule,) = rules(text)
    assert rule.peers == (Peer(ip=IpMatch(("10.1.0.0/16",), ("10.9.0.0/16", "10.1.1.0/24"))),)
    (loss,) = losses(text)
    assert (loss.effect, loss.treatment, loss.feature) == (
        Effect.INVENTORY_DEPENDENT,
        Treatment.APPROXIMATED,
        Feature.IPBLOCK,
    )
    assert loss.source is not None
    assert loss.source.pointer == "/spec/rules/0/from/0/source/remoteIpBlocks"


def test_request_principals_are_http_only_per_source() -> None:
    rs = rules(
        rule_spec(
            "{from: [{source: {requestPrincipals: [a/b, 'c/*'], namespaces: [x]}}, "
            "{source: {namespaces: [y]}}]}"
        )
    )
    x = Peer(principal=PrincipalMatch(namespaces=frozenset({"x"})))
    y = Peer(principal=PrincipalMatch(namespaces=frozenset({"y"})))
    assert rs == (
        Rule(Action.ALLOW, (x,), ANY_PORTS, L7Match(other=("requestPrincipals=a/b,c/*",))),
        Rule(Action.ALLOW, (y,), ANY_PORTS, None),
    )


def test_source_without_network_constraints_matches_every_peer() -> None:
    (rule,) = rules(rule_spec("{from: [{source: {notRequestPrincipals: ['*']}}]}", "DENY"))
    assert rule == Rule(
        Action.DENY, ANY_PEER, ANY_PORTS, L7Match(other=("notRequestPrincipals=*",))
    )


@pytest.mark.parametrize(
    ("action", "effect"), [("ALLOW", Effect.WIDENED), ("DENY", Effect.NARROWED)]
)
def test_trust_domains_are_reported(action: str, effect: Effect) -> None:
    text = rule_spec("{from: [{source: {trustDomains: [td], namespaces: [a]}}]}", action)
    (rule,) = rules(text)
    assert rule.peers == (Peer(principal=PrincipalMatch(namespaces=frozenset({"a"}))),)
    (loss,) = losses(text)
    assert (loss.effect, loss.feature) == (effect, Feature.PRINCIPAL)
    assert loss.source is not None
    assert loss.source.pointer == "/spec/rules/0/from/0/source/trustDomains"


# operations --------------------------------------------------------------------------------


def test_ports_and_not_ports_are_tcp_interval_sets() -> None:
    rs = rules(
        rule_spec(
            "{to: [{operation: {ports: ['80', '443']}}, {operation: {notPorts: ['22']}}, "
            "{operation: {ports: ['80', '81'], notPorts: ['81']}}, "
            "{operation: {ports: ['9'], notPorts: ['9']}}]}"
        )
    )
    assert [r.ports for r in rs] == [
        ports(80, 443),
        (PortSpec.single(Protocol.TCP, ALL_PORTS - IntervalSet.point(22)),),
        ports(80),
        (),
    ]
    assert [r.source.pointer for r in rs if r.source] == [f"/spec/rules/0/to/{i}" for i in range(4)]


def test_http_fields_are_carried_in_l7() -> None:
    (rule,) = rules(
        rule_spec(
            "{to: [{operation: {methods: [GET, HEAD], hosts: [example.com], "
            "paths: [/exact, '/api/*', '*.html', '*', '/v1/{*}/items/{**}'], "
            "notMethods: [DELETE], notPaths: ['/admin*'], notHosts: [evil.com], ports: ['8080']}}]}"
        )
    )
    assert rule.ports == ports(8080)
    assert rule.l7 == L7Match(
        (
            HttpMatch(
                frozenset({"GET", "HEAD"}),
                (
                    ("exact", "/exact"),
                    ("prefix", "/api/"),
                    ("regex", r".*\.html"),
                    ("regex", ".+"),
                    ("regex", "/v1/[^/]+/items/.*"),
                ),
                frozenset({"example.com"}),
            ),
        ),
        (),
        ("notMethods=DELETE", "notPaths=/admin*", "notHosts=evil.com"),
    )


def test_not_forms_alone_make_a_rule_http_constrained() -> None:
    (rule,) = rules(rule_spec("{to: [{operation: {notMethods: [POST]}}]}", "DENY"))
    assert rule.l7 == L7Match(other=("notMethods=POST",)) and rule.ports is ANY_PORTS


def test_from_times_to() -> None:
    a = Peer(principal=PrincipalMatch(namespaces=frozenset({"a"})))
    b = Peer(ip=IpMatch(("10.0.0.0/8",)))
    rs = rules(
        rule_spec(
            "{from: [{source: {namespaces: [a]}}, {source: {ipBlocks: [10.0.0.0/8]}}], "
            "to: [{operation: {ports: ['80']}}, {operation: {methods: [GET]}}]}"
        )
    )
    assert rs == (
        Rule(Action.ALLOW, (a, b), ports(80)),
        Rule(Action.ALLOW, (a, b), ANY_PORTS, L7Match((HttpMatch(frozenset({"GET"})),))),
    )


# conditions --------------------------------------------------------------------------------


def test_when_conditions_are_anded_into_every_peer() -> None:
    rs = rules(
        rule_spec(
            "{from: [{source: {namespaces: [a]}}, {source: {ipBlocks: [10.0.0.0/8]}}], "
            "when: [{key: source.ip, values: [10.1.0.0/16, 192.168.0.0/16], notValues: [10.1.1.1]}, "
            "{key: source.principal, notValues: ['*/sa/bot']}, "
            "{key: source.namespace, values: [a, b]}, "
            "{key: destination.port, values: ['80', '443'], notValues: ['443']}]}"
        )
    )
    assert rs == (
        Rule(
            Action.ALLOW,
            (
                Peer(
                    ip=IpMatch(("10.1.0.0/16", "192.168.0.0/16"), ("10.1.1.1/32",)),
                    principal=PrincipalMatch(
                        not_principals=frozenset({"*/sa/bot"}), namespaces=frozenset({"a"})
                    ),
                ),
                Peer(
                    ip=IpMatch(("10.1.0.0/16",), ("10.1.1.1/32",)),
                    principal=PrincipalMatch(
                        not_principals=frozenset({"*/sa/bot"}), namespaces=frozenset({"a", "b"})
                    ),
                ),
            ),
            ports(80),
        ),
    )


def test_when_conditions_without_from_constrain_the_peer() -> None:
    (rule,) = rules(
        rule_spec(
            "{to: [{operation: {ports: ['80', '81']}}], when: ["
            "{key: source.serviceAccount, values: [web]}, {key: destination.port, notValues: ['81']}]}"
        )
    )
    assert rule == Rule(
        Action.ALLOW,
        (Peer(principal=PrincipalMatch(principals=frozenset({"*/ns/prod/sa/web"}))),),
        ports(80),
    )


def test_principal_patterns_are_intersected_exactly() -> None:
    (rule,) = rules(
        rule_spec(
            "{from: [{source: {principals: ['cluster.local/*', x/ns/a/sa/b]}}], "
            "when: [{key: source.principal, values: ['cluster.local/ns/*', 'x/*']}, "
            "{key: source.principal, values: ['*/sa/b', '*']}]}"
        )
    )
    assert rule.peers == (
        Peer(principal=PrincipalMatch(principals=frozenset({"cluster.local/ns/*", "x/ns/a/sa/b"}))),
    )


@pytest.mark.parametrize(
    ("action", "effect"), [("ALLOW", Effect.WIDENED), ("DENY", Effect.NARROWED)]
)
def test_an_and_istio_patterns_cannot_spell_is_reported(action: str, effect: Effect) -> None:
    text = rule_spec(
        "{from: [{source: {principals: ['cluster.local/*']}}], "
        "when: [{key: source.principal, values: ['*/sa/b']}]}",
        action,
    )
    (rule,) = rules(text)
    assert rule.peers == (
        Peer(principal=PrincipalMatch(principals=frozenset({"cluster.local/*"}))),
    )
    (loss,) = losses(text)
    assert (loss.effect, loss.feature) == (effect, Feature.PRINCIPAL)
    assert loss.source is not None and loss.source.pointer == "/spec/rules/0/when/0"
    assert "source 0" in loss.message


def test_remote_ip_condition_is_reported() -> None:
    text = rule_spec("{when: [{key: remote.ip, values: [1.2.3.4]}]}")
    assert rules(text)[0].peers == (Peer(ip=IpMatch(("1.2.3.4/32",))),)
    (loss,) = losses(text)
    assert loss.effect is Effect.INVENTORY_DEPENDENT
    assert loss.source is not None and loss.source.pointer == "/spec/rules/0/when/0"


def test_request_conditions_are_http_only() -> None:
    (rule,) = rules(
        rule_spec(
            "{when: [{key: 'request.headers[x-token]', notValues: [admin]}, "
            "{key: 'request.auth.claims[groups]', values: [g1, g2]}, "
            "{key: request.auth.audiences, values: [api]}]}",
            "DENY",
        )
    )
    assert rule == Rule(
        Action.DENY,
        ANY_PEER,
        ANY_PORTS,
        L7Match(
            other=(
                "request.headers[x-token]!=admin",
                "request.auth.claims[groups]=g1,g2",
                "request.auth.audiences=api",
            )
        ),
    )


@pytest.mark.parametrize(
    "key", ["destination.ip", "connection.sni", "experimental.envoy.filters.x[y]"]
)
def test_conditions_not_carried_are_reported(key: str) -> None:
    value = "10.0.0.1" if key == "destination.ip" else "v"
    text = rule_spec(f"{{when: [{{key: '{key}', values: ['{value}']}}]}}")
    assert rules(text) == (Rule(Action.ALLOW),)
    (loss,) = losses(text)
    assert (loss.effect, loss.treatment) == (Effect.WIDENED, Treatment.DROPPED)
    assert key in loss.message


# validation --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (
            "  action: MAYBE\n",
            ["ap.yaml[0]:/spec/action: 'MAYBE' is not one of ['ALLOW', 'DENY', 'AUDIT', 'CUSTOM']"],
        ),
        (
            "  action: DENY\n  provider: {name: x}\n  rules: [{}]\n",
            [
                "ap.yaml[0]:/spec/provider: provider is only allowed with the CUSTOM action, not DENY"
            ],
        ),
        (
            "  action: CUSTOM\n  rules: [{}]\n",
            [
                "ap.yaml[0]:/spec: the CUSTOM action needs provider.name (the extension provider to ask)"
            ],
        ),
        (
            "  action: CUSTOM\n  provider: {}\n  rules: [{}]\n",
            [
                "ap.yaml[0]:/spec/provider: the CUSTOM action needs provider.name (the extension provider to ask)"
            ],
        ),
        (
            "  selector: {matchLabels: {app: web}}\n  targetRefs: [{kind: Service, name: web}]\n",
            [
                "ap.yaml[0]:/spec: only one of targetRefs or selector can be set (found selector, targetRefs)"
            ],
        ),
        (
            "  selector: {matchLabels: {app: web}, matchExpressions: []}\n",
            ["ap.yaml[0]:/spec/selector/matchExpressions: unknown field 'matchExpressions'"],
        ),
        (
            "  selector: {matchLabels: {app: 1}}\n",
            ["ap.yaml[0]:/spec/selector/matchLabels/app: 1 is not of type 'string'"],
        ),
        (
            "  selector: {matchLabels: {app: 'web*'}}\n",
            [
                "ap.yaml[0]:/spec/selector/matchLabels/app: wildcard not allowed in label value match"
            ],
        ),
        (
            "  rules: [{from: [{source: {principals: [a], serviceAccounts: [b]}}]}]\n",
            [
                "ap.yaml[0]:/spec/rules/0/from/0/source: Cannot set serviceAccounts with namespaces or principals"
            ],
        ),
        (
            "  rules: [{from: [{source: {serviceAccounts: ['*']}}]}]\n",
            [
                "ap.yaml[0]:/spec/rules/0/from/0/source/serviceAccounts/0: bad service account '*': "
                "write <namespace>/<name> or <name>, without wildcards"
            ],
        ),
        (
            "  rules: [{from: [{source: {principal: [a]}}], to: [{operation: {verbs: [GET]}}], extra: 1}]\n",
            [
                "ap.yaml[0]:/spec/rules/0/from/0/source/principal: unknown field 'principal'",
                "ap.yaml[0]:/spec/rules/0/to/0/operation/verbs: unknown field 'verbs'",
                "ap.yaml[0]:/spec/rules/0/extra: unknown field 'extra'",
            ],
        ),
        (
            "  rules: [{from: [{source: {}}]}]\n",
            [
                "ap.yaml[0]:/spec/rules/0/from/0/source: a source must set at least one field "
                "(Istio refuses an empty source; leave out from to match every source)"
            ],
        ),
        (
            "  rules: [{from: [{}], to: [{}]}]\n",
            [
                "ap.yaml[0]:/spec/rules/0/from/0: a from entry needs source",
                "ap.yaml[0]:/spec/rules/0/to/0: a to entry needs operation",
            ],
        ),
        (
            "  rules: [{to: [{operation: {}}]}]\n",
            [
                "ap.yaml[0]:/spec/rules/0/to/0/operation: an operation must set at least one field "
                "(Istio refuses an empty operation; leave out to to match every operation)"
            ],
        ),
        (
            "  rules: [{from: [{source: {ipBlocks: [10.0.0.0/33, 300.1.1.1], notIpBlocks: [x/8]}}]}]\n",
            [
                "ap.yaml[0]:/spec/rules/0/from/0/source/ipBlocks/0: bad CIDR range '10.0.0.0/33': "
                "prefix length must be 0-32",
                "ap.yaml[0]:/spec/rules/0/from/0/source/ipBlocks/1: bad IP address '300.1.1.1': "
                "'300.1.1.1' is not an IP address",
                "ap.yaml[0]:/spec/rules/0/from/0/source/notIpBlocks/0: bad CIDR range 'x/8': "
                "'x' is not an IP address",
            ],
        ),
        (
            "  rules: [{to: [{operation: {ports: ['65536', '-1', '80'], notPorts: ['']}}]}]\n",
            [
                "ap.yaml[0]:/spec/rules/0/to/0/operation/notPorts/0: empty value not allowed",
                "ap.yaml[0]:/spec/rules/0/to/0/operation/ports/0: bad port '65536': a port is a number 0-65535",
                "ap.yaml[0]:/spec/rules/0/to/0/operation/ports/1: bad port '-1': a port is a number 0-65535",
            ],
        ),
        (
            "  rules: [{to: [{operation: {paths: ['/a/{name}/{*}']}}]}]\n",
            [
                "ap.yaml[0]:/spec/rules/0/to/0/operation/paths/0: invalid or unsupported path template '/a/{name}/{*}'"
            ],
        ),
        (
            "  rules: [{when: [{key: source.ip}]}]\n",
            [
                "ap.yaml[0]:/spec/rules/0/when/0: at least one of values or notValues must be set for key source.ip"
            ],
        ),
        (
            "  rules: [{when: [{values: [a]}]}]\n",
            ["ap.yaml[0]:/spec/rules/0/when/0: 'key' is a required property"],
        ),
        (
            "  rules: [{when: [{key: source.ip, values: [10.0.0.0/40]}, {key: destination.port, values: [http]}]}]\n",
            [
                "ap.yaml[0]:/spec/rules/0/when/0/values/0: bad CIDR range '10.0.0.0/40': prefix length must be 0-32",
                "ap.yaml[0]:/spec/rules/0/when/1/values/0: bad port 'http': a port is a number 0-65535",
            ],
        ),
        (
            "  rules: [{when: [{key: source.user, values: [a]}, {key: 'destination.labels[app]', values: [a]}, "
            "{key: 'request.headers', values: [a]}]}]\n",
            [
                "ap.yaml[0]:/spec/rules/0/when/0/key: unknown attribute 'source.user'",
                "ap.yaml[0]:/spec/rules/0/when/1/key: attribute destination.labels[app] is replaced by the workload selector",
                "ap.yaml[0]:/spec/rules/0/when/2/key: bad key 'request.headers': should have format a[b]",
            ],
        ),
        (
            "  action: CUSTOM\n  provider: {name: x}\n"
            "  rules: [{from: [{source: {namespaces: [a]}}], when: [{key: request.auth.principal, values: [a]}]}]\n",
            [
                "ap.yaml[0]:/spec/rules/0/when/0/key: request.auth.principal is not supported with the CUSTOM action",
                "ap.yaml[0]:/spec/rules/0/from/0/source/namespaces: namespaces is not supported with the CUSTOM action",
            ],
        ),
        (
            "  rules: [{from: [{source: {principals: ['']}}]}]\n",
            ["ap.yaml[0]:/spec/rules/0/from/0/source/principals/0: empty value not allowed"],
        ),
        (
            "  rules: {from: []}\n",
            ["ap.yaml[0]:/spec/rules: {'from': []} is not of type 'array'"],
        ),
    ],
)
def test_bad_input_names_the_pointer(spec: str, expected: list[str]) -> None:
    assert errors(ap(spec)) == expected


def test_bad_metadata_and_top_level() -> None:
    text = (
        "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n"
        "metadata: {name: Web_1, namespace: Prod}\nspec: {}\nextra: 1\n"
    )
    assert errors(text) == ["ap.yaml[0]:/extra: unknown field 'extra'"]
    # Names the API server would refuse are read with a located warning (polyfence.io.names).
    valid = text.replace("extra: 1\n", "")
    bundle = api.load(parse_text(valid, "ap.yaml"))
    assert [str(w).split(":", 2)[1] for w in bundle.warnings] == [
        "/metadata/name",
        "/metadata/namespace",
    ]
    nameless = "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {}\n"
    assert errors(nameless) == [
        "ap.yaml[0]:/metadata/name: an AuthorizationPolicy needs metadata.name"
    ]


def test_every_document_is_reported_at_once() -> None:
    text = ap("  action: DENY\n") + "\n---\n" + ap("  rules: [{to: [{operation: {ports: [x]}}]}]\n")
    assert errors(text) == [
        "ap.yaml[0]:/spec: DENY action without rules is meaningless as it will never be triggered "
        "(Istio refuses it); add an empty rule {} to trigger it for every request",
        "ap.yaml[1]:/spec/rules/0/to/0/operation/ports/0: bad port 'x': a port is a number 0-65535",
    ]


def test_null_fields_are_absent_like_the_api_server_prunes_them() -> None:
    policy = one(ap("  action: null\n  selector: null\n  rules: [{from: null, to: null}]\n"))
    assert policy.ingress == Governed((Rule(Action.ALLOW),), True)


def test_other_documents_are_ignored() -> None:
    text = (
        "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\n"
        "metadata: {name: d, namespace: prod}\nspec: {mtls: {mode: STRICT}}\n---\n"
        "apiVersion: security.istio.io/v1alpha1\nkind: AuthorizationPolicy\nmetadata: {name: x}\n"
    )
    assert translate(text).value.policies == ()


# registry ----------------------------------------------------------------------------------


def test_registered_after_cilium() -> None:
    names = translators.names()
    assert names.index("istio") == names.index("cilium") + 1
    tr = translators.get("istio")
    assert tr.name == "istio" and tr.capabilities and isinstance(tr, IstioTranslator)
    (doc,) = parse_text(ap("  rules: [{}]\n", api_version="security.istio.io/v1beta1"), "ap.yaml")
    assert translators.detect(doc) == "istio"
