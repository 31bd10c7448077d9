"""The mesh layer of the engine and the mesh facts of the inventory, on hand-made scenarios.

Each case is one documented Istio behaviour (semantics.md §4b, traps 3, 10, 18, 19, 21).
"""

from __future__ import annotations

from typing import Any

import pytest

from polyfence.inventory import Endpoint, Inventory, inventory_from_documents
from polyfence.io.files import parse_text
from polyfence.model.peers import ANY_PEER, Peer, PrincipalMatch
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
from polyfence.model.ports import PortSpec, Protocol
from polyfence.model.selectors import All, Eq
from polyfence.semantics.engine import connectivity
from polyfence.semantics.intervals import IntervalSet
from polyfence.semantics.profile import EvaluationProfile
from polyfence.semantics.verdict import Connection, verdict

CLUSTER = """
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {istio-injection: enabled}}
---
apiVersion: v1
kind: Namespace
metadata: {name: legacy}
---
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: shop, labels: {app: web}}
spec: {serviceAccountName: web, containers: [{name: app, ports: [{containerPort: 8080}, {containerPort: 9000, name: tcp-echo}]}]}
status: {podIP: 10.0.0.1}
---
apiVersion: v1
kind: Pod
metadata: {name: api, namespace: shop, labels: {app: api}}
spec: {serviceAccountName: api}
status: {podIP: 10.0.0.2}
---
apiVersion: v1
kind: Pod
metadata: {name: batch, namespace: shop, labels: {app: batch, sidecar.istio.io/inject: "false"}}
spec: {serviceAccountName: api}
status: {podIP: 10.0.0.3}
---
apiVersion: v1
kind: Pod
metadata: {name: old, namespace: legacy, labels: {app: old}}
spec: {containers: [{name: app}]}
status: {podIP: 10.0.1.1}
---
apiVersion: v1
kind: Pod
metadata: {name: meshed, namespace: legacy, labels: {app: meshed}}
spec: {containers: [{name: app}, {name: istio-proxy}]}
status: {podIP: 10.0.1.2}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: 8080}
  - {name: tcp-echo, port: 9000, targetPort: tcp-echo}
  - {name: db, port: 5432, targetPort: 5432, appProtocol: mysql}
"""


def _inventory(extra: str = "") -> Inventory:
    return inventory_from_documents(parse_text(CLUSTER + extra, "cluster.yaml"))


def _ep(inv: Inventory, ref: str) -> Endpoint:
    found = inv.find(ref)
    assert found is not None, ref
    return found


def _ap(
    rules: tuple[Rule, ...] | None,
    action: Action = Action.ALLOW,
    namespace: str | None = "shop",
    selector: Any = None,
) -> Policy:
    subject = (
        Subject(None, selector or All(), namespace_selector=All())
        if namespace is None
        else Subject(namespace, selector or Eq("app", "web"))
    )
    return Policy(
        PolicyId("istio", namespace or "istio-system", "ap"),
        subject,
        Governed(rules or (), isolates=action is Action.ALLOW),
        NOT_GOVERNED,
        order=100.0 if action is Action.DENY else 200.0,
        layer=Layer.L7,
    )


def _tcp(*ports: int) -> tuple[PortSpec, ...]:
    return (
        PortSpec.single(Protocol.TCP, IntervalSet.union_all(IntervalSet.point(p) for p in ports)),
    )


def _allowed(
    ps: PolicySet, inv: Inventory, src: str, dst: str, port: int, proto: int = 6, **profile: Any
) -> bool:
    prof = EvaluationProfile(**profile)
    s, d = _ep(inv, src), _ep(inv, dst)
    one = verdict(ps, Connection(s, d, proto, port), inv, prof).allowed
    conn = connectivity(ps, inv, prof)
    u = conn.universe
    si = next(c.index for c in u.classes if any(m is s for m in c.members))
    di = next(c.index for c in u.classes if any(m is d for m in c.members))
    assert conn.allowed(si, di).contains(proto, port) == one  # both engines agree
    return one


def test_inventory_mesh_membership() -> None:
    inv = _inventory()
    assert _ep(inv, "shop/web").mesh and _ep(inv, "shop/api").mesh
    assert not _ep(inv, "shop/batch").mesh  # pod label opts out of injection
    assert not _ep(inv, "legacy/old").mesh
    assert _ep(inv, "legacy/meshed").mesh  # an injected proxy container is proof
    assert _ep(inv, "shop/web").opaque_ports == (5432, 9000)  # tcp-* name, mysql appProtocol


def test_peer_authentication_resolution() -> None:
    extra = """
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: istio-system}
spec: {mtls: {mode: STRICT}}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: ns, namespace: shop}
spec: {mtls: {mode: PERMISSIVE}}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: web, namespace: shop}
spec: {selector: {matchLabels: {app: web}}, mtls: {mode: DISABLE}}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: api, namespace: shop}
spec: {selector: {matchLabels: {app: api}}, mtls: {mode: UNSET}}
"""
    inv = _inventory(extra)
    assert _ep(inv, "shop/web").mtls == "DISABLE"
    assert _ep(inv, "shop/api").mtls == "PERMISSIVE"  # UNSET inherits the namespace's mode
    assert _ep(inv, "legacy/meshed").mtls == "STRICT"  # mesh-wide from the root namespace


def test_bad_peer_authentication_mode_names_the_field() -> None:
    from polyfence.errors import InputError

    bad = (
        "\n---\napiVersion: security.istio.io/v1\nkind: PeerAuthentication\n"
        "metadata: {name: x, namespace: shop}\nspec: {mtls: {mode: STRICTEST}}\n"
    )
    with pytest.raises(InputError) as err:
        _inventory(bad)
    assert "/spec/mtls/mode" in str(err.value)


def test_allow_nothing_denies_tcp_only_on_mesh_workloads() -> None:
    inv = _inventory()
    ps = PolicySet((_ap(None),))
    assert not _allowed(ps, inv, "shop/api", "shop/web", 8080)
    assert _allowed(ps, inv, "shop/api", "shop/web", 53, proto=17)  # UDP bypasses the proxy
    out_of_mesh = PolicySet((_ap(None, namespace="shop", selector=Eq("app", "batch")),))
    assert _allowed(out_of_mesh, inv, "shop/api", "shop/batch", 8080)  # no proxy to enforce


def test_rules_all_vs_no_rules() -> None:  # trap 3
    inv = _inventory()
    everything = (Rule(Action.ALLOW),)
    assert _allowed(PolicySet((_ap(everything),)), inv, "legacy/old", "shop/web", 8080)
    deny_all = (Rule(Action.DENY),)
    assert not _allowed(PolicySet((_ap(deny_all, Action.DENY),)), inv, "shop/api", "shop/web", 80)
    assert _allowed(PolicySet((_ap(None, Action.DENY),)), inv, "shop/api", "shop/web", 80)


def test_deny_only_stays_default_allow() -> None:  # trap 10
    inv = _inventory()
    deny_old = (
        Rule(Action.DENY, (Peer(principal=PrincipalMatch(namespaces=frozenset({"legacy"}))),)),
    )
    ps = PolicySet((_ap(deny_old, Action.DENY),))
    assert _allowed(ps, inv, "shop/api", "shop/web", 8080)
    assert not _allowed(ps, inv, "legacy/meshed", "shop/web", 8080)


def test_deny_beats_allow() -> None:
    inv = _inventory()
    allow = _ap((Rule(Action.ALLOW),))
    deny = _ap((Rule(Action.DENY, ports=_tcp(8080)),), Action.DENY)
    ps = PolicySet((allow, deny))
    assert not _allowed(ps, inv, "shop/api", "shop/web", 8080)
    assert _allowed(ps, inv, "shop/api", "shop/web", 8081)


def test_principals_need_mtls() -> None:  # trap 19
    inv = _inventory()
    api = Peer(principal=PrincipalMatch(principals=frozenset({"cluster.local/ns/shop/sa/api"})))
    ps = PolicySet((_ap((Rule(Action.ALLOW, (api,)),)),))
    assert _allowed(ps, inv, "shop/api", "shop/web", 8080)
    assert not _allowed(ps, inv, "shop/batch", "shop/web", 8080)  # same SA, no proxy: plain text
    assert not _allowed(ps, inv, "shop/api", "shop/web", 8080, trust_domain="corp.example")
    not_legacy = Peer(principal=PrincipalMatch(not_namespaces=frozenset({"legacy"})))
    ps = PolicySet((_ap((Rule(Action.ALLOW, (not_legacy,)),)),))
    assert _allowed(ps, inv, "legacy/old", "shop/web", 8080)  # plain text has no namespace
    assert not _allowed(ps, inv, "legacy/meshed", "shop/web", 8080)
    legacy = Peer(principal=PrincipalMatch(namespaces=frozenset({"legacy"})))
    ps = PolicySet((_ap((Rule(Action.ALLOW, (legacy,)),)),))
    assert not _allowed(ps, inv, "legacy/old", "shop/web", 8080)
    assert _allowed(ps, inv, "legacy/meshed", "shop/web", 8080)
    # mTLS disabled on the server: no identities at all
    assert not _allowed(ps, inv, "legacy/meshed", "shop/web", 8080, mtls_default="DISABLE")


def test_strict_refuses_plain_text_without_any_policy() -> None:
    inv = _inventory()
    ps = PolicySet()
    assert not _allowed(ps, inv, "legacy/old", "shop/web", 8080, mtls_default="STRICT")
    assert _allowed(ps, inv, "legacy/meshed", "shop/web", 8080, mtls_default="STRICT")
    assert _allowed(ps, inv, "legacy/old", "shop/web", 53, proto=17, mtls_default="STRICT")
    assert _allowed(ps, inv, "legacy/old", "shop/web", 8080)  # PERMISSIVE accepts plain text


def test_http_fields_on_tcp_ports() -> None:  # trap 18
    inv = _inventory()
    get = L7Match(http=(HttpMatch(methods=frozenset({"GET"})),))
    allow = PolicySet((_ap((Rule(Action.ALLOW, ports=_tcp(9000, 8080), l7=get),)),))
    assert not _allowed(allow, inv, "shop/api", "shop/web", 9000)  # declared TCP: never matches
    assert _allowed(allow, inv, "shop/api", "shop/web", 8080)  # HTTP: GET requests pass
    deny = PolicySet((_ap((Rule(Action.DENY, l7=get),), Action.DENY),))
    assert not _allowed(deny, inv, "shop/api", "shop/web", 9000)  # HTTP parts dropped on TCP
    assert not _allowed(deny, inv, "shop/api", "shop/web", 5432)
    assert _allowed(deny, inv, "shop/api", "shop/web", 8080)  # only GET requests are denied


def test_root_namespace_policy_applies_mesh_wide() -> None:  # trap 21
    inv = _inventory()
    ps = PolicySet((_ap(None, namespace=None),))
    assert not _allowed(ps, inv, "shop/web", "legacy/meshed", 80)
    assert not _allowed(ps, inv, "legacy/meshed", "shop/api", 80)
    assert _allowed(ps, inv, "shop/web", "legacy/old", 80)  # not in the mesh


def test_proxy_layer_ands_with_network_layer() -> None:
    inv = _inventory()
    network = Policy(
        PolicyId("kubernetes", "shop", "np"),
        Subject("shop", Eq("app", "web")),
        Governed((Rule(Action.ALLOW, ANY_PEER, _tcp(8080)),)),
    )
    proxy = _ap((Rule(Action.ALLOW, ports=_tcp(8080, 9000)),))
    ps = PolicySet((network, proxy))
    assert _allowed(ps, inv, "shop/api", "shop/web", 8080)
    assert not _allowed(ps, inv, "shop/api", "shop/web", 9000)  # the network layer refuses
    assert not _allowed(ps, inv, "shop/api", "shop/web", 53, proto=17)


def test_identity_namespaces_narrow_only_when_the_test_says_so() -> None:
    from polyfence.semantics.matching import identity_namespaces

    def ns(**kw: Any) -> frozenset[str] | None:
        return identity_namespaces(PrincipalMatch(**kw))

    assert ns(principals=frozenset({"cluster.local/ns/a/sa/x", "*/ns/b/sa/y"})) == {"a", "b"}
    assert ns(principals=frozenset({"cluster.local/ns/a/sa/*"})) == {"a"}
    assert ns(principals=frozenset({"cluster.local/ns/a/sa/x", "*/sa/y"})) is None
    assert ns(principals=frozenset({"*"})) is None
    assert ns(namespaces=frozenset({"a", "b"})) == {"a", "b"}
    assert ns(namespaces=frozenset({"a*"})) is None
    assert ns(not_namespaces=frozenset({"a"})) is None
    both = ns(principals=frozenset({"td/ns/a/sa/x"}), namespaces=frozenset({"a", "b"}))
    assert both == {"a"}
