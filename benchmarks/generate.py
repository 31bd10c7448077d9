#!/usr/bin/env python3
"""Deterministic synthetic cluster + NetworkPolicy generator for the polyfence benchmarks.

Usable as a module::

    from generate import generate
    cluster, policies = generate(pods=2000, policies=500, namespaces=20, seed=1)

and as a CLI::

    python benchmarks/generate.py --pods 10000 --policies 2000 --namespaces 50 --seed 1 -o DIR

which writes ``DIR/cluster.yaml`` (Namespaces and Pods, as ``kubectl get -o yaml`` would list
them) and ``DIR/policies.yaml`` (networking.k8s.io/v1 NetworkPolicies).

The same arguments always give byte-identical files: every random choice comes from one
``random.Random(seed)`` and nothing iterates over a set or depends on hash order.

Shape of the cluster
--------------------
* Three system namespaces (``kube-system`` with CoreDNS, ``monitoring`` with Prometheus,
  ``ingress-nginx`` with the controller) plus ``namespaces - 3`` application namespaces named
  after a team and an environment, labelled ``team``, ``env`` and ``tier`` (and the
  ``kubernetes.io/metadata.name`` label the API server adds).
* Pods come in Deployments of 1-20 replicas (small ones are more common); every replica of a
  Deployment carries the same labels: ``app``, ``tier``, ``version``, ``team``,
  ``app.kubernetes.io/name``, ``app.kubernetes.io/part-of`` and ``pod-template-hash``.
  About one Deployment in ten is a canary: same ``app``, another ``version``.
* Namespace sizes are skewed (a few big namespaces, many small ones).
* Nodes get a /24 pod CIDR each, carved from 10.244.0.0/16 upwards (10.245.0.0/16 once more
  than 256 nodes are needed); about 100 pods per node; every pod has a unique ``podIP``.
* Container ports are named by role: ``http``, ``https``, ``grpc``, ``metrics``,
  ``tcp-postgres``, ``tcp-redis``, ``amqp``, ``dns``/``dns-tcp``, ``diameter`` (SCTP).

Shape of the policies
---------------------
Per application namespace, in this order until ``policies`` are written: a default-deny
(ingress only, or ingress+egress for about a third of the namespaces), an allow-monitoring
policy (namespace-only peer, named port ``metrics``) and, where egress is denied, an allow-DNS
egress policy (UDP+TCP 53 to CoreDNS in kube-system).  The rest are per-application policies drawn from a weighted mix of templates:
same-app peers, tier-to-tier peers, podSelector+namespaceSelector AND peers,
namespaceSelector-only peers, matchExpressions In/NotIn/Exists, ipBlock with except (ingress
and egress), numeric ports, port ranges with endPort, named ports, SCTP, policies without
policyTypes and egress-only policies.
"""

from __future__ import annotations

import argparse
import ipaddress
import random
import sys
import time
from pathlib import Path
from typing import Any

import yaml

try:  # the C emitter is ~10x faster on a 10k-pod snapshot
    from yaml import CSafeDumper as _Dumper
except ImportError:  # pragma: no cover - depends on the PyYAML build
    from yaml import SafeDumper as _Dumper  # type: ignore[assignment]

__all__ = ["dump_yaml", "generate", "write"]

# vocabulary --------------------------------------------------------------------------------

TEAMS = (
    "payments",
    "checkout",
    "catalog",
    "search",
    "identity",
    "orders",
    "shipping",
    "billing",
    "media",
    "ads",
    "growth",
    "data",
    "ml",
    "platform",
    "support",
    "risk",
    "inventory",
    "pricing",
)
ENVS = ("prod", "prod", "staging", "dev")  # prod twice: more prod namespaces
NS_TIERS = ("frontend", "backend", "data", "shared")

# component -> (tier, ports it exposes)
COMPONENTS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("web", "frontend", ("http", "metrics")),
    ("ui", "frontend", ("http",)),
    ("gateway", "frontend", ("https", "http", "metrics")),
    ("bff", "frontend", ("http", "metrics")),
    ("api", "backend", ("http", "grpc", "metrics")),
    ("auth", "backend", ("grpc", "metrics")),
    ("users", "backend", ("grpc", "http", "metrics")),
    ("orders", "backend", ("http", "metrics")),
    ("search", "backend", ("http", "grpc")),
    ("recommender", "backend", ("grpc", "metrics")),
    ("notifier", "backend", ("http",)),
    ("scheduler", "backend", ("grpc", "metrics")),
    ("signalling", "backend", ("diameter", "metrics")),
    ("worker", "worker", ("metrics",)),
    ("consumer", "worker", ("metrics",)),
    ("indexer", "worker", ("metrics",)),
    ("postgres", "data", ("tcp-postgres", "metrics")),
    ("redis", "data", ("tcp-redis",)),
    ("rabbitmq", "data", ("amqp", "metrics")),
    ("elasticsearch", "data", ("http", "transport")),
)
PORTS: dict[str, tuple[int, str]] = {
    "http": (8080, "TCP"),
    "https": (8443, "TCP"),
    "grpc": (9000, "TCP"),
    "metrics": (9090, "TCP"),
    "tcp-postgres": (5432, "TCP"),
    "tcp-redis": (6379, "TCP"),
    "amqp": (5672, "TCP"),
    "transport": (9300, "TCP"),
    "diameter": (3868, "SCTP"),
    "dns": (53, "UDP"),
    "dns-tcp": (53, "TCP"),
}
HASH_CHARS = "bcdfghjklmnpqrstvwxz2456789"
PODS_PER_NODE = 100
POD_CIDR_BASE = int(ipaddress.IPv4Address("10.244.0.0"))
EXTERNAL_NETS = (
    ("203.0.113.0/24", ("203.0.113.128/25",)),
    ("198.51.100.0/24", ("198.51.100.0/28",)),
    ("192.0.2.0/24", ()),
    ("172.20.0.0/16", ("172.20.10.0/24", "172.20.20.0/24")),
    ("192.168.0.0/16", ("192.168.1.0/24",)),
    ("100.64.0.0/10", ("100.64.0.0/16",)),
)
PRIVATE_EXCEPTS = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")


def _hash(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(HASH_CHARS) for _ in range(n))


def _replicas(rng: random.Random) -> int:
    # 1..20, small Deployments most common (weights ~ 1/r).
    return rng.choices(range(1, 21), weights=[1.0 / r for r in range(1, 21)])[0]


# cluster -----------------------------------------------------------------------------------


class _Deployment:
    __slots__ = (
        "app",
        "hash",
        "name",
        "namespace",
        "part_of",
        "ports",
        "replicas",
        "sa",
        "team",
        "tier",
        "version",
    )

    def __init__(self, **kw: Any) -> None:
        for k, v in kw.items():
            setattr(self, k, v)

    def labels(self) -> dict[str, str]:
        return {
            "app": self.app,
            "app.kubernetes.io/name": self.app,
            "app.kubernetes.io/part-of": self.part_of,
            "tier": self.tier,
            "version": self.version,
            "team": self.team,
            "pod-template-hash": self.hash,
        }


class _Namespace:
    __slots__ = ("apps", "deployments", "env", "name", "system", "team", "tier")

    def __init__(self, name: str, team: str, env: str, tier: str, system: bool = False) -> None:
        self.name, self.team, self.env, self.tier, self.system = name, team, env, tier, system
        self.deployments: list[_Deployment] = []
        self.apps: dict[str, list[_Deployment]] = {}

    def labels(self) -> dict[str, str]:
        return {
            "kubernetes.io/metadata.name": self.name,
            "team": self.team,
            "env": self.env,
            "tier": self.tier,
        }


def _namespaces(rng: random.Random, count: int) -> list[_Namespace]:
    out = [
        _Namespace("kube-system", "platform", "prod", "system", True),
        _Namespace("monitoring", "platform", "prod", "system", True),
        _Namespace("ingress-nginx", "platform", "prod", "system", True),
    ]
    seen: dict[str, int] = {}
    for _ in range(max(count - len(out), 0)):
        team, env = rng.choice(TEAMS), rng.choice(ENVS)
        base = f"{team}-{env}"
        seen[base] = seen.get(base, 0) + 1
        name = base if seen[base] == 1 else f"{base}-{seen[base]}"
        out.append(_Namespace(name, team, env, rng.choice(NS_TIERS)))
    return out[:count]


def _add_deployment(
    rng: random.Random,
    ns: _Namespace,
    component: tuple[str, str, tuple[str, ...]],
    replicas: int,
    app: str | None = None,
    version: str | None = None,
) -> _Deployment:
    comp, tier, ports = component
    if app is None:
        app = comp
        n = 2
        while app in ns.apps:
            app = f"{comp}-{n}"
            n += 1
    if version is None:
        version = f"v{rng.randint(1, 4)}"
    dep = _Deployment(
        namespace=ns.name,
        name=f"{app}-{version}" if app in ns.apps else app,
        app=app,
        tier=tier,
        version=version,
        team=ns.team,
        part_of=f"{ns.team}-{rng.choice(('core', 'edge', 'platform', 'batch'))}",
        ports=ports,
        sa=app if rng.random() < 0.7 else "default",
        hash=_hash(rng, 10),
        replicas=replicas,
    )
    ns.deployments.append(dep)
    ns.apps.setdefault(app, []).append(dep)
    return dep


def _deployments(rng: random.Random, namespaces: list[_Namespace], pods: int) -> None:
    system = {ns.name: ns for ns in namespaces if ns.system}
    remaining = pods
    fixed = [
        ("kube-system", ("coredns", "system", ("dns", "dns-tcp", "metrics")), 2, "k8s-app"),
        ("monitoring", ("prometheus", "system", ("http",)), 2, None),
        ("ingress-nginx", ("ingress-nginx", "system", ("http", "https", "metrics")), 3, None),
    ]
    for ns_name, comp, replicas, _ in fixed:
        ns = system.get(ns_name)
        if ns is None or remaining < 8:  # tiny clusters: every pod goes to a team namespace
            continue
        _add_deployment(rng, ns, comp, min(replicas, remaining), version="v1")
        remaining -= min(replicas, remaining)
    apps = [ns for ns in namespaces if not ns.system] or list(namespaces)
    # Skewed namespace sizes: weight ~ 1/rank, shuffled so the big ones are spread out.
    weights = [1.0 / (i + 1) ** 0.8 for i in range(len(apps))]
    rng.shuffle(weights)
    while remaining > 0:
        ns = rng.choices(apps, weights=weights)[0]
        replicas = min(_replicas(rng), remaining)
        if ns.apps and rng.random() < 0.1:  # canary: an existing app, another version
            base = rng.choice(ns.deployments)
            comp = (base.app, base.tier, base.ports)
            version = f"v{int(base.version[1:].split('-')[0]) + 1}"
            if any(d.version == version for d in ns.apps[base.app]):
                version = f"{version}-canary{len(ns.apps[base.app])}"
            _add_deployment(rng, ns, comp, replicas, app=base.app, version=version)
        else:
            _add_deployment(rng, ns, rng.choice(COMPONENTS), replicas)
        remaining -= replicas


def _cluster_objects(
    rng: random.Random, namespaces: list[_Namespace], pods: int
) -> list[dict[str, Any]]:
    objects: list[dict[str, Any]] = []
    for ns in namespaces:
        objects.append(
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {"name": ns.name, "labels": ns.labels()},
                "spec": {"finalizers": ["kubernetes"]},
                "status": {"phase": "Active"},
            }
        )
    nodes = max(1, -(-pods // PODS_PER_NODE))
    used = [0] * nodes  # addresses handed out per node's /24 (.2 .. .254)
    for ns in namespaces:
        for dep in ns.deployments:
            labels = dep.labels()
            if dep.app == "coredns":
                labels["k8s-app"] = "kube-dns"
            ports = [
                {"name": p, "containerPort": PORTS[p][0], "protocol": PORTS[p][1]}
                for p in dep.ports
            ]
            for _ in range(dep.replicas):
                node = rng.randrange(nodes)
                while used[node] >= 253:
                    node = (node + 1) % nodes
                ip = str(ipaddress.IPv4Address(POD_CIDR_BASE + node * 256 + 2 + used[node]))
                used[node] += 1
                node_ip = str(
                    ipaddress.IPv4Address(int(ipaddress.IPv4Address("10.0.0.0")) + 10 + node)
                )
                objects.append(
                    {
                        "apiVersion": "v1",
                        "kind": "Pod",
                        "metadata": {
                            "name": f"{dep.name}-{dep.hash}-{_hash(rng, 5)}",
                            "namespace": ns.name,
                            "labels": dict(labels),
                            "ownerReferences": [
                                {
                                    "apiVersion": "apps/v1",
                                    "kind": "ReplicaSet",
                                    "name": f"{dep.name}-{dep.hash}",
                                    "controller": True,
                                }
                            ],
                        },
                        "spec": {
                            "serviceAccountName": dep.sa,
                            "nodeName": f"node-{node:04d}",
                            "containers": [
                                {
                                    "name": dep.app.split("-")[0],
                                    "image": f"registry.example.com/{dep.team}/{dep.app}:{dep.version}",
                                    "ports": ports,
                                }
                            ],
                        },
                        "status": {
                            "phase": "Running",
                            "hostIP": node_ip,
                            "podIP": ip,
                            "podIPs": [{"ip": ip}],
                        },
                    }
                )
    return objects


# policies ----------------------------------------------------------------------------------


def _np(ns: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
    }


def _ns_name(name: str) -> dict[str, Any]:
    return {"matchLabels": {"kubernetes.io/metadata.name": name}}


def _port(name: str, named: bool) -> dict[str, Any]:
    number, proto = PORTS[name]
    if named:
        return {"protocol": proto, "port": name} if proto != "TCP" else {"port": name}
    return {"protocol": proto, "port": number}


class _PolicyGen:
    def __init__(self, rng: random.Random, namespaces: list[_Namespace]) -> None:
        self.rng = rng
        self.namespaces = namespaces
        self.apps = [ns for ns in namespaces if not ns.system and ns.deployments]
        self.names: dict[tuple[str, str], int] = {}
        self.templates = [
            (self.same_app, 14),
            (self.tier_to_tier, 12),
            (self.cross_ns_and, 12),
            (self.ns_only, 8),
            (self.expressions, 10),
            (self.ipblock_egress, 7),
            (self.ipblock_ingress, 5),
            (self.port_range, 5),
            (self.no_policy_types, 8),
            (self.egress_to_data, 9),
            (self.same_namespace, 4),
            (self.ingress_controller, 4),
            (self.sctp, 2),
        ]

    def unique(self, ns: str, name: str) -> str:
        key = (ns, name)
        self.names[key] = self.names.get(key, 0) + 1
        return name if self.names[key] == 1 else f"{name}-{self.names[key]}"

    # baseline, per namespace ---------------------------------------------------------------
    def baseline(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for ns in self.namespaces:
            if ns.system:
                continue
            deny_egress = self.rng.random() < 0.35
            types = ["Ingress", "Egress"] if deny_egress else ["Ingress"]
            out.append(
                _np(
                    ns.name,
                    self.unique(
                        ns.name, "default-deny-all" if deny_egress else "default-deny-ingress"
                    ),
                    {"podSelector": {}, "policyTypes": types},
                )
            )
            out.append(
                _np(
                    ns.name,
                    self.unique(ns.name, "allow-monitoring"),
                    {
                        "podSelector": {
                            "matchExpressions": [
                                {"key": "app.kubernetes.io/name", "operator": "Exists"}
                            ]
                        },
                        "policyTypes": ["Ingress"],
                        "ingress": [
                            {
                                "from": [{"namespaceSelector": _ns_name("monitoring")}],
                                "ports": [{"port": "metrics"}],
                            }
                        ],
                    },
                )
            )
            if deny_egress:  # egress isolated: DNS must be allowed back
                out.append(
                    _np(
                        ns.name,
                        self.unique(ns.name, "allow-dns"),
                        {
                            "podSelector": {},
                            "policyTypes": ["Egress"],
                            "egress": [
                                {
                                    "to": [
                                        {
                                            "namespaceSelector": _ns_name("kube-system"),
                                            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
                                        }
                                    ],
                                    "ports": [
                                        {"protocol": "UDP", "port": 53},
                                        {"protocol": "TCP", "port": 53},
                                    ],
                                }
                            ],
                        },
                    )
                )
        # Interleave so that truncating to fewer policies keeps every kind somewhere.
        per_ns: dict[str, list[dict[str, Any]]] = {}
        for pol in out:
            per_ns.setdefault(pol["metadata"]["namespace"], []).append(pol)
        return [p for k in range(3) for group in per_ns.values() for p in group[k : k + 1]]

    # helpers -----------------------------------------------------------------------------
    def pick(self) -> tuple[_Namespace, _Deployment]:
        ns = self.rng.choice(self.apps)
        return ns, self.rng.choice(ns.deployments)

    def subject(self, dep: _Deployment) -> dict[str, Any]:
        r = self.rng.random()
        if r < 0.7:
            return {"matchLabels": {"app": dep.app}}
        if r < 0.85:
            return {"matchLabels": {"app": dep.app, "version": dep.version}}
        if r < 0.95:
            return {"matchLabels": {"tier": dep.tier}}
        return {"matchLabels": {"app.kubernetes.io/part-of": dep.part_of}}

    def ports_of(self, dep: _Deployment, k: int = 1) -> list[dict[str, Any]]:
        names = [p for p in dep.ports if p != "metrics"] or list(dep.ports)
        chosen = self.rng.sample(names, min(k, len(names)))
        named = self.rng.random() < 0.5
        return [_port(p, named) for p in chosen]

    def other_dep(
        self, ns: _Namespace | None = None, tier: str | None = None
    ) -> tuple[_Namespace, _Deployment]:
        for _ in range(20):
            ons = ns or self.rng.choice(self.apps)
            dep = self.rng.choice(ons.deployments)
            if tier is None or dep.tier == tier:
                return ons, dep
        return ons, dep

    def spec(
        self,
        dep: _Deployment,
        ingress: list[dict[str, Any]] | None = None,
        egress: list[dict[str, Any]] | None = None,
        types: list[str] | None = None,
    ) -> dict[str, Any]:
        spec: dict[str, Any] = {"podSelector": self.subject(dep)}
        if types is None:
            types = (["Ingress"] if ingress is not None else []) + (
                ["Egress"] if egress is not None else []
            )
        if types:
            spec["policyTypes"] = types
        if ingress is not None:
            spec["ingress"] = ingress
        if egress is not None:
            spec["egress"] = egress
        return spec

    # templates -----------------------------------------------------------------------------
    def same_app(self) -> dict[str, Any]:
        ns, dep = self.pick()
        rule = {
            "from": [{"podSelector": {"matchLabels": {"app": dep.app}}}],
            "ports": self.ports_of(dep, 2),
        }
        return _np(
            ns.name,
            self.unique(ns.name, f"allow-{dep.app}-from-self"),
            self.spec(dep, ingress=[rule]),
        )

    def tier_to_tier(self) -> dict[str, Any]:
        ns, dep = self.pick()
        upstream = {
            "backend": "frontend",
            "data": "backend",
            "worker": "backend",
            "frontend": "frontend",
        }[dep.tier]
        peers: list[dict[str, Any]] = [{"podSelector": {"matchLabels": {"tier": upstream}}}]
        if self.rng.random() < 0.4:
            _, other = self.other_dep(ns)
            peers.append({"podSelector": {"matchLabels": {"app": other.app, "tier": other.tier}}})
        rule = {"from": peers, "ports": self.ports_of(dep, self.rng.randint(1, 2))}
        return _np(
            ns.name,
            self.unique(ns.name, f"allow-{upstream}-to-{dep.app}"),
            self.spec(dep, ingress=[rule]),
        )

    def cross_ns_and(self) -> dict[str, Any]:
        ns, dep = self.pick()
        rules = []
        for _ in range(self.rng.randint(1, 2)):
            ons, other = self.other_dep()
            nssel = (
                {"matchLabels": {"team": ons.team, "env": ons.env}}
                if self.rng.random() < 0.5
                else _ns_name(ons.name)
            )
            rules.append(
                {
                    "from": [
                        {
                            "namespaceSelector": nssel,
                            "podSelector": {"matchLabels": {"app": other.app}},
                        }
                    ],
                    "ports": self.ports_of(dep),
                }
            )
        return _np(
            ns.name,
            self.unique(ns.name, f"allow-cross-ns-to-{dep.app}"),
            self.spec(dep, ingress=rules),
        )

    def ns_only(self) -> dict[str, Any]:
        ns, dep = self.pick()
        r = self.rng.random()
        if r < 0.4:
            peer = {"namespaceSelector": {"matchLabels": {"team": ns.team}}}
        elif r < 0.7:
            peer = {
                "namespaceSelector": {
                    "matchLabels": {"env": ns.env, "tier": self.rng.choice(NS_TIERS)}
                }
            }
        else:
            peer = {"namespaceSelector": _ns_name(self.rng.choice(self.apps).name)}
        rule = {"from": [peer], "ports": self.ports_of(dep)}
        return _np(
            ns.name, self.unique(ns.name, f"allow-ns-to-{dep.app}"), self.spec(dep, ingress=[rule])
        )

    def expressions(self) -> dict[str, Any]:
        ns, dep = self.pick()
        versions = sorted({d.version for d in ns.apps[dep.app]})
        pod_exprs = [
            {
                "key": "tier",
                "operator": "In",
                "values": sorted({"frontend", "backend", self.rng.choice(("worker", "data"))}),
            },
            {"key": "version", "operator": "NotIn", "values": [self.rng.choice([*versions, "v0"])]},
            {"key": "app.kubernetes.io/name", "operator": "Exists"},
        ]
        peer: dict[str, Any] = {
            "podSelector": {"matchExpressions": self.rng.sample(pod_exprs, self.rng.randint(1, 3))}
        }
        if self.rng.random() < 0.6:
            peer["namespaceSelector"] = {
                "matchExpressions": [
                    {"key": "env", "operator": "In", "values": sorted({ns.env, "staging"})}
                ]
                + (
                    [{"key": "team", "operator": "NotIn", "values": ["ads", "growth"]}]
                    if self.rng.random() < 0.5
                    else []
                )
            }
        subject = {
            "matchExpressions": [
                {
                    "key": "app",
                    "operator": "In",
                    "values": sorted({dep.app, self.rng.choice(ns.deployments).app}),
                }
            ]
        }
        spec = {
            "podSelector": subject,
            "policyTypes": ["Ingress"],
            "ingress": [{"from": [peer], "ports": self.ports_of(dep)}],
        }
        return _np(ns.name, self.unique(ns.name, f"allow-expr-to-{dep.app}"), spec)

    def ipblock_egress(self) -> dict[str, Any]:
        ns, dep = self.pick()
        r = self.rng.random()
        if r < 0.5:
            to = [{"ipBlock": {"cidr": "0.0.0.0/0", "except": list(PRIVATE_EXCEPTS)}}]
            ports = [{"protocol": "TCP", "port": 443}]
        else:
            cidr, excepts = self.rng.choice(EXTERNAL_NETS)
            block: dict[str, Any] = {"cidr": cidr}
            if excepts:
                block["except"] = list(excepts)
            to = [{"ipBlock": block}]
            ports = [{"protocol": "TCP", "port": self.rng.choice((443, 5432, 6379, 9092))}]
        spec = self.spec(dep, egress=[{"to": to, "ports": ports}], types=["Egress"])
        return _np(ns.name, self.unique(ns.name, f"allow-{dep.app}-egress-external"), spec)

    def ipblock_ingress(self) -> dict[str, Any]:
        ns, dep = self.pick()
        cidr, excepts = self.rng.choice(EXTERNAL_NETS)
        block: dict[str, Any] = {"cidr": cidr}
        if excepts:
            block["except"] = list(excepts)
        rule = {"from": [{"ipBlock": block}], "ports": self.ports_of(dep)}
        return _np(
            ns.name,
            self.unique(ns.name, f"allow-external-to-{dep.app}"),
            self.spec(dep, ingress=[rule]),
        )

    def port_range(self) -> dict[str, Any]:
        ns, dep = self.pick()
        lo, hi = self.rng.choice(((8000, 8099), (30000, 32767), (9000, 9100), (5000, 5010)))
        peer = {"podSelector": {"matchLabels": {"team": dep.team}}}
        rule = {"from": [peer], "ports": [{"protocol": "TCP", "port": lo, "endPort": hi}]}
        if self.rng.random() < 0.3:
            rule["ports"].append({"protocol": "UDP", "port": lo, "endPort": lo + 10})
        return _np(
            ns.name,
            self.unique(ns.name, f"allow-range-to-{dep.app}"),
            self.spec(dep, ingress=[rule]),
        )

    def no_policy_types(self) -> dict[str, Any]:
        ns, dep = self.pick()
        _, other = self.other_dep(ns)
        spec: dict[str, Any] = {
            "podSelector": self.subject(dep),
            "ingress": [
                {
                    "from": [{"podSelector": {"matchLabels": {"app": other.app}}}],
                    "ports": self.ports_of(dep),
                }
            ],
        }
        if self.rng.random() < 0.4:  # egress rules present: Egress implied too
            _, target = self.other_dep(ns)
            spec["egress"] = [
                {
                    "to": [{"podSelector": {"matchLabels": {"app": target.app}}}],
                    "ports": self.ports_of(target),
                }
            ]
        return _np(ns.name, self.unique(ns.name, f"legacy-{dep.app}"), spec)

    def egress_to_data(self) -> dict[str, Any]:
        ns, dep = self.pick()
        ons, target = self.other_dep(ns if self.rng.random() < 0.7 else None, "data")
        peer: dict[str, Any] = {
            "podSelector": {"matchLabels": {"app": target.app, "tier": target.tier}}
        }
        if ons is not ns:
            peer["namespaceSelector"] = _ns_name(ons.name)
        spec = self.spec(
            dep, egress=[{"to": [peer], "ports": self.ports_of(target)}], types=["Egress"]
        )
        return _np(ns.name, self.unique(ns.name, f"allow-{dep.app}-to-{target.app}"), spec)

    def same_namespace(self) -> dict[str, Any]:
        ns, dep = self.pick()
        spec = self.spec(dep, ingress=[{"from": [{"podSelector": {}}]}])
        return _np(ns.name, self.unique(ns.name, f"allow-same-namespace-{dep.app}"), spec)

    def ingress_controller(self) -> dict[str, Any]:
        ns, dep = self.other_dep(None, "frontend")
        peer = {
            "namespaceSelector": _ns_name("ingress-nginx"),
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": "ingress-nginx"}},
        }
        spec = self.spec(
            dep,
            ingress=[
                {"from": [peer], "ports": [{"protocol": "TCP", "port": 8080}, {"port": "https"}]}
            ],
        )
        return _np(ns.name, self.unique(ns.name, f"allow-ingress-to-{dep.app}"), spec)

    def sctp(self) -> dict[str, Any]:
        ns, dep = self.pick()
        ports = [{"protocol": "SCTP", "port": 3868}]
        if "diameter" in dep.ports and self.rng.random() < 0.5:
            ports.append({"protocol": "SCTP", "port": "diameter"})
        peer = {
            "namespaceSelector": {"matchLabels": {"team": ns.team}},
            "podSelector": {"matchLabels": {"tier": "backend"}},
        }
        return _np(
            ns.name,
            self.unique(ns.name, f"allow-sctp-{dep.app}"),
            self.spec(dep, ingress=[{"from": [peer], "ports": ports}]),
        )

    def policies(self, count: int) -> list[dict[str, Any]]:
        if not self.apps or count <= 0:
            return []
        out = self.baseline()[:count]
        funcs = [f for f, _ in self.templates]
        weights = [w for _, w in self.templates]
        while len(out) < count:
            out.append(self.rng.choices(funcs, weights=weights)[0]())
        return out


# entry points ------------------------------------------------------------------------------


def generate(
    pods: int, policies: int, namespaces: int, seed: int = 1
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(cluster objects, NetworkPolicies) for a synthetic cluster; deterministic in ``seed``.

    ``pods`` and ``policies`` are exact counts (with ``pods == 0`` no policy is generated);
    ``namespaces`` includes the three system namespaces (kube-system, monitoring,
    ingress-nginx), so it must be at least 4. Below 8 pods the system namespaces stay empty.
    """
    if namespaces < 4:
        raise ValueError("namespaces must be >= 4 (three are system namespaces)")
    if pods < 0 or policies < 0:
        raise ValueError("pods and policies must be >= 0")
    rng = random.Random(seed)
    nss = _namespaces(rng, namespaces)
    _deployments(rng, nss, pods)
    cluster = _cluster_objects(rng, nss, pods)
    pols = _PolicyGen(random.Random(seed * 7919 + 17), nss).policies(policies)
    return cluster, pols


def dump_yaml(objects: list[dict[str, Any]]) -> str:
    """Multi-document YAML text (C emitter when available)."""
    return yaml.dump_all(
        objects, Dumper=_Dumper, sort_keys=False, default_flow_style=False, explicit_start=True
    )


def write(
    out_dir: str | Path, pods: int, policies: int, namespaces: int, seed: int = 1
) -> tuple[Path, Path]:
    """Generate and write ``cluster.yaml`` and ``policies.yaml`` under ``out_dir``."""
    cluster, pols = generate(pods, policies, namespaces, seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cpath, ppath = out / "cluster.yaml", out / "policies.yaml"
    cpath.write_text(dump_yaml(cluster), encoding="utf-8")
    ppath.write_text(dump_yaml(pols), encoding="utf-8")
    return cpath, ppath


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--pods", type=int, default=2000)
    ap.add_argument("--policies", type=int, default=500)
    ap.add_argument(
        "--namespaces", type=int, default=20, help="including the 3 system namespaces (>= 4)"
    )
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument(
        "-o", "--output", required=True, help="directory for cluster.yaml and policies.yaml"
    )
    args = ap.parse_args(argv)
    start = time.perf_counter()
    try:
        cpath, ppath = write(args.output, args.pods, args.policies, args.namespaces, args.seed)
    except ValueError as exc:
        ap.error(str(exc))
    took = time.perf_counter() - start
    print(
        f"wrote {cpath} ({cpath.stat().st_size / 1e6:.1f} MB) and {ppath} ({ppath.stat().st_size / 1e6:.1f} MB) in {took:.1f} s",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
