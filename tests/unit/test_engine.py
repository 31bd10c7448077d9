"""Engine unit tables: evaluation-profile parameters, explanations, tier semantics traps."""

from __future__ import annotations

import dataclasses

import pytest

from polyfence import api
from polyfence.inventory import Endpoint, Namespace, build_inventory
from polyfence.io.files import parse_text
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
from polyfence.model.selectors import All, Eq
from polyfence.semantics.engine import connectivity
from polyfence.semantics.profile import EvaluationProfile, HostNetworkMode
from polyfence.semantics.verdict import Connection, verdict

WEB = Endpoint("Pod", "prod", "web", {"app": "web"}, "default", ("10.0.0.2",), (), "n1")
DB = Endpoint("Pod", "prod", "db", {"app": "db"}, "default", ("10.0.0.3",), (), "n1")
AGENT = Endpoint(
    "Pod", "prod", "agent", {"app": "agent"}, "default", ("192.168.0.1",), (), "n1", True
)
NODE = Endpoint("Node", None, "n1", {}, None, ("192.168.0.1",))
NODE2 = Endpoint("Node", None, "n2", {}, None, ("192.168.0.2",))
INV = build_inventory([Namespace("prod", {})], [WEB, DB, AGENT, NODE, NODE2])


def policy(
    name: str,
    ingress: object = NOT_GOVERNED,
    egress: object = NOT_GOVERNED,
    *,
    tier: str = "default",
    order: float | None = 1000.0,
    selector: object = None,
) -> Policy:
    return Policy(
        PolicyId("test", "prod", name),
        Subject("prod", selector or Eq("app", "db")),
        ingress,
        egress,
        tier,
        order,
    )  # type: ignore[arg-type]


def allow_from(peer: Peer) -> Governed:
    return Governed((Rule(Action.ALLOW, (peer,)),))


def allowed(
    ps: PolicySet,
    src: Endpoint | str,
    dst: Endpoint | str,
    port: int = 80,
    profile: EvaluationProfile | None = None,
) -> bool:
    return verdict(ps, Connection(src, dst, 6, port), INV, profile or EvaluationProfile()).allowed


def test_ipblock_matches_pod_ips_is_a_profile_parameter() -> None:
    ps = PolicySet((policy("p", allow_from(Peer(ip=IpMatch(("10.0.0.0/24",))))),))
    assert allowed(ps, WEB, DB, profile=EvaluationProfile(ipblock_matches_pods=True))
    assert not allowed(ps, WEB, DB, profile=EvaluationProfile(ipblock_matches_pods=False))
    assert allowed(ps, "10.0.0.99", DB)
    assert not allowed(ps, "10.0.1.1", DB)


def test_host_network_pods_act_as_their_node() -> None:
    ps = PolicySet(
        (policy("p", allow_from(Peer(pods=All(), namespace_names=frozenset({"prod"})))),)
    )
    assert allowed(ps, WEB, DB)
    assert not allowed(ps, AGENT, DB)  # selectors never match hostNetwork pods (node mode)
    assert allowed(ps, AGENT, DB, profile=EvaluationProfile(host_network=HostNetworkMode.POD))
    by_ip = PolicySet((policy("p", allow_from(Peer(ip=IpMatch(("192.168.0.0/24",))))),))
    assert allowed(by_ip, AGENT, DB)
    assert not allowed(by_ip, AGENT, DB, profile=EvaluationProfile(ipblock_matches_nodes=False))


def test_node_to_local_pod_and_self_traffic() -> None:
    deny_all = PolicySet((policy("p", Governed(()), Governed(()), selector=All()),))
    assert allowed(deny_all, NODE, DB)  # DB runs on n1
    assert not allowed(deny_all, NODE2, DB)
    assert not allowed(deny_all, NODE, DB, profile=EvaluationProfile(node_to_local_pod=False))
    assert allowed(deny_all, DB, DB)
    assert not allowed(deny_all, WEB, DB)


def test_end_of_tier_drop_is_per_direction() -> None:
    """Trap 14: a tier with only ingress policies does not drop the endpoint's egress."""
    ps = PolicySet(
        (policy("ing", Governed(()), tier="security"),),
        (Tier("security", 10.0), Tier("default")),
    )
    assert not allowed(ps, WEB, DB)
    assert allowed(ps, DB, WEB)


def test_pass_is_neither_deny_nor_noop() -> None:
    """Trap 13: Pass out of the last tier reaches the profile, which allows."""
    passing = Governed((Rule(Action.PASS),))
    ps = PolicySet((policy("p", passing, tier="security"),), (Tier("security", 10.0),))
    assert allowed(ps, WEB, DB)
    # Pass into a tier that isolates: dropped there unless allowed.
    ps2 = PolicySet(
        (
            policy("p", passing, tier="security"),
            policy(
                "q", allow_from(Peer(pods=Eq("app", "web"), namespace_names=frozenset({"prod"})))
            ),
        ),
        (Tier("security", 10.0), Tier("default")),
    )
    assert allowed(ps2, WEB, DB)
    assert not allowed(ps2, "8.8.8.8", DB)


def test_order_then_name_first_match() -> None:
    """Trap 11/12: an earlier Allow beats a later Deny; missing order sorts last."""
    allow_web = Governed(
        (Rule(Action.ALLOW, (Peer(pods=Eq("app", "web"), namespace_names=frozenset({"prod"})),)),)
    )
    deny_all = Governed((Rule(Action.DENY, ANY_PEER),))
    first = PolicySet(
        (policy("b-allow", allow_web, order=10.0), policy("a-deny", deny_all, order=20.0))
    )
    assert allowed(first, WEB, DB)
    later = PolicySet(
        (policy("b-allow", allow_web, order=None), policy("a-deny", deny_all, order=20.0))
    )
    assert not allowed(later, WEB, DB)
    tie = PolicySet(
        (policy("b-allow", allow_web, order=5.0), policy("a-deny", deny_all, order=5.0))
    )
    assert not allowed(tie, WEB, DB)  # same order: by name, a-deny first


def test_tier_default_action_pass() -> None:
    ps = PolicySet(
        (policy("p", Governed(()), tier="platform"),),
        (Tier("platform", 10.0, Action.PASS),),
    )
    assert allowed(ps, WEB, DB)


def test_log_continues() -> None:
    ps = PolicySet((policy("p", Governed((Rule(Action.LOG), Rule(Action.ALLOW)))),))
    result = verdict(ps, Connection(WEB, DB, 6, 80), INV)
    assert result.allowed and [s.action for s in result.steps if s.direction == "ingress"] == [
        "log",
        "allow",
    ]


def test_explain_names_policy_and_rule() -> None:
    bundle = api.load(
        parse_text(
            """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: db, namespace: prod}
spec:
  podSelector: {matchLabels: {app: db}}
  ingress: [{from: [{podSelector: {matchLabels: {app: web}}}], ports: [{port: 5432}]}]
""",
            "p.yaml",
        )
    )
    bundle = dataclasses.replace(bundle, inventory=INV)
    _, ok = api.explain(bundle, "prod/web", "prod/db", "5432")
    assert ok.allowed and "policy prod/db rule 0: allow" in ok.explain()
    _, no = api.explain(bundle, "prod/web", "prod/db", "5433/TCP")
    assert not no.allowed and "tier isolates" in no.explain()


@pytest.mark.parametrize(
    "profile", [EvaluationProfile(), EvaluationProfile(ipblock_matches_pods=False)]
)
def test_connectivity_lists_external_blocks(profile: EvaluationProfile) -> None:
    ps = PolicySet(
        (
            policy(
                "p",
                egress=Governed(
                    (Rule(Action.ALLOW, (Peer(ip=IpMatch(("0.0.0.0/0",), ("10.0.0.0/8",))),)),)
                ),
                selector=All(),
            ),
        )
    )
    conn = connectivity(ps, INV, profile)
    pairs = {(s, d) for s, d, _ in conn.endpoint_pairs()}
    assert (
        "prod/db[Pod]",
        "0.0.0.0/5,8.0.0.0/7,11.0.0.0/8,12.0.0.0/6,16.0.0.0/4,32.0.0.0/3,64.0.0.0/2,128.0.0.0/1",
    ) in pairs
    assert ("prod/db[Pod]", "10.0.0.0/8") not in pairs
    assert ("prod/db[Pod]", "::/0") not in pairs


def test_dns_answers_side_by_side_stay_apart_on_a_given_inventory() -> None:
    """Two FQDNs answering with adjacent addresses: the partition must cut at each answer,
    not at their union, or a policy allowing the other name looks narrower instead of
    incomparable (found by the every-cluster FQDN oracle)."""
    from polyfence import api
    from polyfence.io.files import parse_text

    def egress_to(name: str) -> api.Bundle:
        return api.load(
            parse_text(
                "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\n"
                "metadata: {name: out, namespace: shop}\n"
                "spec:\n  endpointSelector: {matchLabels: {app: api}}\n"
                f"  egress: [{{toFQDNs: [{{matchName: {name}}}]}}]\n",
                f"{name}.yaml",
            )
        )

    cluster = api.load(
        parse_text(
            "apiVersion: v1\nkind: Pod\nmetadata: {name: api, namespace: shop, labels: {app: api}}\n"
            "spec: {containers: [{name: c, image: i}]}\nstatus: {podIP: 10.244.0.1}\n---\n"
            "apiVersion: polyfence.dev/v1alpha1\nkind: DNSRecords\nmetadata: {name: answers}\n"
            "spec:\n  records:\n  - {name: a.example.com, addresses: [203.0.113.1]}\n"
            "  - {name: b.example.com, addresses: [203.0.113.2]}\n",
            "cluster.yaml",
        )
    )
    result = api.compare(
        egress_to("a.example.com"), egress_to("b.example.com"), inventory=cluster.inventory
    )
    assert result.relation is api.Relation.INCOMPARABLE, [str(w) for w in result.witnesses]
