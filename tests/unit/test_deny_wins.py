"""Flattening ordered Calico sets into deny-wins form, scenario by scenario (semantics §7.6).

Each scenario is judged by the engine: the Calico set as written, against its Cilium
translation read back (where deny beats allow and nothing is ordered)."""

from __future__ import annotations

from typing import Any

import pytest

from polyfence.fidelity import Effect
from polyfence.inventory import Endpoint, NamedPort, Namespace, build_inventory
from polyfence.io.files import parse_text
from polyfence.model.document import Document
from polyfence.model.policy import Layer, PolicySet
from polyfence.model.provenance import SourceRef
from polyfence.rules.deny_wins import deny_wins
from polyfence.semantics.compare import Relation, compare
from polyfence.semantics.profile import EvaluationProfile
from polyfence.semantics.verdict import Connection, verdict
from polyfence.translators.calico import CalicoTranslator
from polyfence.translators.cilium import CiliumTranslator

CALICO = CalicoTranslator()
CILIUM = CiliumTranslator()
PROFILES = (EvaluationProfile(ipblock_matches_pods=False), EvaluationProfile())

WEB = Endpoint(
    "Pod",
    "prod",
    "web",
    {"app": "web"},
    "default",
    ("10.0.0.2",),
    (NamedPort("http", 6, 80),),
    "n1",
)
DB = Endpoint(
    "Pod", "prod", "db", {"app": "db"}, "default", ("10.0.0.4",), (NamedPort("http", 6, 81),), "n1"
)
FE = Endpoint("Pod", "prod", "fe", {"role": "fe"}, "default", ("10.0.0.3",), (), "n1")
BAD = Endpoint("Pod", "prod", "bad", {"role": "bad"}, "default", ("10.0.0.5",), (), "n2")
DEV = Endpoint("Pod", "dev", "fe", {"role": "fe"}, "default", ("10.0.1.3",), (), "n2")
NODE = Endpoint("Node", None, "n2", {}, None, ("192.168.0.2",))
INV = build_inventory(
    [Namespace("prod", {"team": "a"}), Namespace("dev", {"team": "b"})],
    [WEB, DB, FE, BAD, DEV, NODE],
)
TIERS = """
apiVersion: projectcalico.org/v3
kind: Tier
metadata: {name: security}
spec: {order: 100}
---
apiVersion: projectcalico.org/v3
kind: Tier
metadata: {name: platform}
spec: {order: 200, defaultAction: Pass}
"""


def calico(text: str) -> PolicySet:
    return CALICO.to_canonical(parse_text(TIERS + "---\n" + text, "c.yaml")).value


def to_cilium(ps: PolicySet) -> tuple[PolicySet, list[Any]]:
    out = CILIUM.from_canonical(ps)
    docs = [Document(d, SourceRef("gen", i)) for i, d in enumerate(out.value)]
    return CILIUM.to_canonical(docs).value, list(out.report.losses)


def ok(ps: PolicySet, src: Endpoint | str, dst: Endpoint, port: int = 80) -> bool:
    return verdict(ps, Connection(src, dst, 6, port), INV, PROFILES[0]).allowed


def np(name: str, order: int, selector: str, ingress: str, tier: str = "") -> str:
    tier_line = f"  tier: {tier}\n" if tier else ""
    prefix = f"{tier}." if tier else ""
    return (
        "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\n"
        f"metadata: {{name: {prefix}{name}}}\nspec:\n{tier_line}  order: {order}\n"
        f"  selector: {selector}\n  types: [Ingress]\n  ingress: {ingress}\n"
    )


SCENARIOS = {
    # trap 11 with something after the deny: the deny must spare the earlier allow
    "allow-then-deny-all-then-allow": np(
        "a",
        10,
        "app == 'web'",
        "[{action: Allow, source: {selector: role == 'fe'}}, {action: Deny}, {action: Allow}]",
    ),
    # a deny on ports an earlier allow covers in part
    "deny-less-ports": np(
        "a",
        10,
        "app == 'web'",
        "[{action: Allow, protocol: TCP, "
        "destination: {ports: [80]}}, {action: Deny, source: {selector: role == 'fe'}}, "
        "{action: Allow}]",
    ),
    # an earlier policy selecting only part of the deny's subject
    "partial-subject": np(
        "a", 10, "app == 'web'", "[{action: Allow, source: {selector: role == 'fe'}}]"
    )
    + "---\n"
    + np("b", 20, "all()", "[{action: Deny, source: {selector: has(role)}}, {action: Allow}]"),
    # a Pass out of the last tier reaches the profile: an allow
    "last-tier-pass": np(
        "a",
        10,
        "app == 'web'",
        "[{action: Pass, source: {selector: role == 'fe'}}, {action: Deny}]",
        "security",
    ),
    # the platform tier passes what it leaves: later tiers decide, its allows still count
    "pass-through-tier": np(
        "a",
        10,
        "all()",
        "[{action: Allow, source: {selector: "
        "role == 'bad'}}, {action: Deny, source: {selector: role == 'fe'}}]",
        "platform",
    )
    + "---\n"
    + np(
        "b",
        10,
        "app == 'web'",
        "[{action: Deny, source: {selector: role == 'bad'}}, {action: Allow}]",
    ),
    # security: deny bad, pass the rest on (the Calico idiom), then the default tier
    "deny-then-pass-all": np(
        "a",
        10,
        "all()",
        "[{action: Deny, source: {selector: role == 'bad'}}, {action: Pass}]",
        "security",
    )
    + "---\n"
    + np("b", 10, "app == 'web'", "[{action: Allow, source: {selector: has(role)}}]"),
    # "allow 443 to all, deny a namespace by label, allow the rest": the trimmed deny would be
    # "every protocol but TCP 443", which Cilium cannot write, so the later allow is cut
    "deny-by-namespace-label-cuts-allows": np(
        "a",
        10,
        "app == 'web'",
        "[{action: Allow, "
        "protocol: TCP, destination: {ports: [443]}}, {action: Deny, source: {namespaceSelector: "
        "team == 'b'}}, {action: Allow}]",
    ),
    # a Pass before an allow in an earlier tier: that allow never sees the passed traffic, so
    # it must not spare it from a later tier's deny
    "allow-after-pass-spares-later-deny": np(
        "a",
        10,
        "all()",
        "[{action: Pass, source: {selector: role == 'fe'}}, {action: Allow}]",
        "platform",
    )
    + "---\n"
    + np(
        "b",
        10,
        "app == 'web'",
        "[{action: Deny, source: {selector: role == 'fe'}}, {action: Allow}]",
    ),
    # a Pass out of a tier that drops the rest: later tiers see only what it passes, and
    # where no later tier governs, passed traffic reaches the profile
    "pass-out-of-a-dropping-tier": np(
        "a",
        10,
        "all()",
        "[{action: Deny, source: {selector: role == 'bad'}}, "
        "{action: Pass, source: {selector: has(role)}}]",
        "security",
    )
    + "---\n"
    + np("b", 10, "app == 'web'", "[{action: Allow, source: {selector: role == 'fe'}}]")
    + "---\n"
    + np("c", 20, "has(app)", "[{action: Allow}]"),
    # ... and through a tier that itself passes what it leaves
    "pass-through-two-tiers": np(
        "a",
        10,
        "has(app)",
        "[{action: Pass, source: {selector: has(role)}}]",
        "security",
    )
    + "---\n"
    + np("b", 10, "all()", "[{action: Deny, source: {selector: role == 'bad'}}]", "platform")
    + "---\n"
    + np("c", 10, "app == 'db'", "[{action: Allow, source: {namespaceSelector: team == 'a'}}]"),
    # named ports subtract symbolically: one name resolves the same way on both sides
    "named-port-deny-after-allow": np(
        "a",
        10,
        "has(app)",
        "[{action: Allow, protocol: TCP, source: {selector: role == 'fe'}, "
        "destination: {ports: [http]}}, {action: Deny, protocol: TCP, "
        "destination: {ports: [http]}}, {action: Allow}]",
    ),
    # a deny less two earlier allows: the complement of the first, less the second (in a
    # tier that passes the rest, so the deny cannot be left to default deny)
    "deny-all-but-two-allowed": np(
        "a",
        10,
        "app == 'web'",
        "[{action: Allow, source: {selector: role == 'fe'}}, {action: Allow, source: "
        "{selector: role == 'bad', namespaceSelector: all()}}, {action: Deny}]",
        "platform",
    ),
    # a security tier over the namespaces with a label: later tiers keep the other namespaces
    "tier-by-namespace-labels": (
        "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\n"
        "metadata: {name: security.a}\nspec:\n  tier: security\n  order: 10\n"
        "  namespaceSelector: team == 'a'\n  selector: all()\n  types: [Ingress]\n"
        "  ingress: [{action: Allow, source: {selector: role == 'fe'}}, "
        "{action: Pass, source: {selector: app == 'db'}}]\n"
    )
    + "---\n"
    + np("b", 10, "role == 'fe'", "[{action: Allow, source: {selector: has(app)}}]"),
    # an earlier tier that never passes leaves a later policy nothing on its endpoints
    "dead-later-tier": np(
        "a", 10, "app == 'web'", "[{action: Allow, source: {selector: role == 'fe'}}]", "security"
    )
    + "---\n"
    + np("b", 10, "has(app)", "[{action: Allow}]"),
}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_flattened_exactly(name: str) -> None:
    source = calico(SCENARIOS[name])
    back, losses = to_cilium(source)
    assert not [loss for loss in losses if loss.effect is not Effect.NONE], losses
    for profile in PROFILES:
        assert compare(source, back, INV, profile).relation is Relation.EQUIVALENT


def test_scenarios_mean_what_they_say() -> None:
    """Spot checks that the scenarios exercise the order (a naive copy would differ)."""
    ps = calico(SCENARIOS["allow-then-deny-all-then-allow"])
    assert ok(ps, FE, WEB) and not ok(ps, BAD, WEB)
    ps = calico(SCENARIOS["deny-less-ports"])
    assert ok(ps, FE, WEB, 80) and not ok(ps, FE, WEB, 81) and ok(ps, BAD, WEB, 81)
    ps = calico(SCENARIOS["partial-subject"])
    assert ok(ps, FE, WEB) and not ok(ps, FE, DB) and ok(ps, DEV, DB) is False
    ps = calico(SCENARIOS["deny-then-pass-all"])
    assert not ok(ps, BAD, WEB) and ok(ps, FE, WEB) and not ok(ps, "8.8.8.8", WEB)
    ps = calico(SCENARIOS["deny-by-namespace-label-cuts-allows"])
    assert ok(ps, DEV, WEB, 443) and not ok(ps, DEV, WEB, 80) and ok(ps, FE, WEB, 80)
    ps = calico(SCENARIOS["allow-after-pass-spares-later-deny"])
    assert not ok(ps, FE, WEB) and ok(ps, BAD, WEB) and ok(ps, FE, DB)
    ps = calico(SCENARIOS["pass-out-of-a-dropping-tier"])
    assert ok(ps, FE, WEB) and ok(ps, DEV, WEB) and not ok(ps, BAD, WEB)
    assert not ok(ps, NODE, DB) and not ok(ps, "8.8.8.8", DB) and ok(ps, FE, DB)
    assert ok(ps, DEV, FE) and not ok(ps, DB, FE)  # FE: no later tier, passed = allowed
    ps = calico(SCENARIOS["pass-through-two-tiers"])
    assert ok(ps, FE, DB) and not ok(ps, DEV, DB) and not ok(ps, BAD, DB)
    assert ok(ps, DEV, WEB) and not ok(ps, BAD, WEB) and not ok(ps, NODE, WEB)
    ps = calico(SCENARIOS["named-port-deny-after-allow"])
    assert ok(ps, FE, WEB, 80) and not ok(ps, BAD, WEB, 80) and ok(ps, BAD, WEB, 81)
    assert ok(ps, FE, DB, 81) and not ok(ps, BAD, DB, 81) and ok(ps, BAD, DB, 80)
    ps = calico(SCENARIOS["deny-all-but-two-allowed"])
    assert ok(ps, FE, WEB) and ok(ps, BAD, WEB) and not ok(ps, DB, WEB)
    assert not ok(ps, NODE, WEB) and ok(ps, DEV, WEB)  # a global rule: every namespace
    ps = calico(SCENARIOS["tier-by-namespace-labels"])
    assert ok(ps, FE, FE) and not ok(ps, WEB, FE) and ok(ps, DB, FE)  # prod: team a
    assert ok(ps, WEB, DEV) and not ok(ps, BAD, DEV)  # dev: team b, the default tier only
    ps = calico(SCENARIOS["dead-later-tier"])
    assert not ok(ps, BAD, WEB) and ok(ps, BAD, DB)


def test_layers_are_not_ordered_against_each_other() -> None:
    """An allow of another layer (the mesh) never trims a network-layer deny."""
    import dataclasses

    ps = calico(SCENARIOS["allow-then-deny-all-then-allow"])
    pol = ps.policies[0]
    allow_rule = pol.ingress.rules[0]  # type: ignore[union-attr]
    mesh = dataclasses.replace(
        pol,
        id=dataclasses.replace(pol.id, name="mesh"),
        layer=Layer.L7,
        order=1.0,
        ingress=dataclasses.replace(pol.ingress, rules=(allow_rule,)),
    )
    network = dataclasses.replace(
        pol,
        ingress=dataclasses.replace(pol.ingress, rules=pol.ingress.rules[1:]),  # type: ignore[union-attr]
    )
    flat = deny_wins(ps.with_policies([mesh, network]))
    network_rules = flat.policies.policies[1].ingress.rules  # type: ignore[union-attr]
    assert network_rules[0] == network.ingress.rules[0]  # type: ignore[union-attr]
