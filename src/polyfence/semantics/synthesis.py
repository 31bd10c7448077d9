"""A representative inventory synthesised from the selectors in play, for verifying without a cluster.

For every namespace a policy lives in or names, every namespace-selector term and every
pod-selector term, it creates namespaces and pods that satisfy the term, plus decoys that
satisfy nothing (unlabelled pods, an unlabelled namespace), pods carrying every named port in
play, and pods whose addresses fall into each CIDR the policies mention. It is a heuristic:
a real inventory passed with ``--inventory`` is authoritative.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import replace

from polyfence.inventory import (
    NAMESPACE_NAME_LABEL,
    Endpoint,
    Inventory,
    NamedPort,
    Namespace,
    build_inventory,
)
from polyfence.model.peers import ANY_PEER, Peer, PrincipalMatch
from polyfence.model.policy import Governed, Layer, PolicySet
from polyfence.model.ports import ANY_PORTS
from polyfence.model.selectors import (
    Contains,
    EndsWith,
    Eq,
    Has,
    In,
    Not,
    Selector,
    SelectorNotExpressible,
    StartsWith,
    to_dnf,
)
from polyfence.semantics.matching import PRINCIPAL_IDENTITY


def _assignments(sel: Selector | None) -> list[dict[str, str]]:
    """Label maps satisfying each DNF term of ``sel`` (plus the empty map)."""
    out: list[dict[str, str]] = [{}]
    if sel is None:
        return out
    try:
        terms = to_dnf(sel)
    except (SelectorNotExpressible, ValueError):
        return out
    for term in terms:
        labels: dict[str, str] = {}
        for lit in term:
            if isinstance(lit, Eq):
                labels[lit.key] = lit.value
            elif isinstance(lit, In):
                labels[lit.key] = sorted(lit.values)[0]
            elif isinstance(lit, Has):
                labels.setdefault(lit.key, "x")
            elif isinstance(lit, Contains | StartsWith | EndsWith):
                labels[lit.key] = lit.value
            elif isinstance(lit, Not):
                continue
        if sel.matches(labels):
            out.append(labels)
    return out


def _peers(ps: PolicySet) -> Iterable[Peer]:
    for pol in ps:
        for rules in (pol.ingress, pol.egress):
            if isinstance(rules, Governed):
                for rule in rules.rules:
                    if rule.peers is not ANY_PEER:
                        yield from rule.peers  # type: ignore[misc]


def synthesise(policy_sets: Iterable[PolicySet]) -> Inventory:
    """A small inventory that exercises every selector term, named port and CIDR in play."""
    sets = list(policy_sets)
    ns_names: set[str] = {"polyfence-decoy"}
    ns_labels: list[dict[str, str]] = []
    pod_labels: list[dict[str, str]] = [{}]
    named: set[str] = set()
    cidrs: list[str] = []
    accounts: set[tuple[str, str]] = set()  # (namespace, service account) principals name
    mesh = any(Layer.L7 in ps.layers() for ps in sets)
    for ps in sets:
        for pol in ps:
            if pol.subject.namespace:
                ns_names.add(pol.subject.namespace)
            ns_labels.extend(_assignments(pol.subject.namespace_selector))
            pod_labels.extend(_assignments(pol.subject.selector))
            for rules in (pol.ingress, pol.egress):
                if isinstance(rules, Governed):
                    for rule in rules.rules:
                        if rule.ports is not ANY_PORTS:
                            for spec in rule.ports:  # type: ignore[union-attr]
                                named.update(spec.named | spec.not_named)
        for peer in _peers(ps):
            if peer.principal is not None:
                _identities(peer.principal, ns_names, accounts)
            if peer.namespace_names:
                ns_names.update(peer.namespace_names)
            ns_labels.extend(_assignments(peer.namespace_selector))
            pod_labels.extend(_assignments(peer.pods))
            pod_labels.extend(_assignments(peer.not_pods))
            if peer.ip is not None:
                cidrs.extend(peer.ip.nets or ())
                cidrs.extend(peer.ip.not_nets)
    by_name: dict[str, dict[str, str]] = {name: {} for name in sorted(ns_names)}
    for labels in ns_labels:
        if not labels:
            continue
        ns_name = labels.get(NAMESPACE_NAME_LABEL)
        if ns_name is not None:
            # The name label always equals the name: give that namespace these labels too,
            # unless it already has conflicting ones (then another term covers it).
            current = by_name.setdefault(ns_name, {})
            if all(current.get(k, v) == v for k, v in labels.items()):
                current.update(labels)
            continue
        by_name.setdefault(f"ns{_describe(labels)}", dict(labels))
    namespaces = [Namespace(name, labels) for name, labels in by_name.items()]
    unique_pods: list[dict[str, str]] = []
    seen_pods: set[tuple[tuple[str, str], ...]] = set()
    for labels in pod_labels:
        key = tuple(sorted(labels.items()))
        if key not in seen_pods:
            seen_pods.add(key)
            unique_pods.append(labels)
    ports = tuple(
        NamedPort(name, proto, 10000 + 3 * i + j)
        for i, name in enumerate(sorted(named))
        for j, proto in enumerate((6, 17, 132))
    )
    addresses = _addresses(cidrs)
    endpoints: list[Endpoint] = []
    counter = 0
    for ns in namespaces:
        for j, labels in enumerate(unique_pods):
            counter += 1
            ip = str(ipaddress.IPv4Address(0x0AF40000 + counter))  # 10.244.0.0/16
            name = f"pod{_describe(labels)}"
            endpoints.append(Endpoint("Pod", ns.name, name, labels, "default", (ip,), ports))
            if named and j == 0:
                counter += 1
                other = str(ipaddress.IPv4Address(0x0AF40000 + counter))
                endpoints.append(
                    Endpoint("Pod", ns.name, f"{name}-no-named-ports", labels, "default", (other,))
                )
    for ns_name, sa in sorted(accounts):
        counter += 1
        ip = str(ipaddress.IPv4Address(0x0AF40000 + counter))
        endpoints.append(Endpoint("Pod", ns_name, f"pod-sa-{sa}", {}, sa, (ip,), ports))
    if mesh:
        # Every pod gets a proxy, except one per namespace: mesh policies do not reach it.
        endpoints = [replace(ep, mesh=True) for ep in endpoints]
        for ns in namespaces:
            counter += 1
            ip = str(ipaddress.IPv4Address(0x0AF40000 + counter))
            endpoints.append(Endpoint("Pod", ns.name, "pod-outside-mesh", {}, "default", (ip,)))
    for k, address in enumerate(addresses):
        endpoints.append(
            Endpoint("Pod", namespaces[0].name, f"pod-at-{k}", {}, "default", (address,))
        )
    return build_inventory(namespaces, endpoints)


def _identities(match: PrincipalMatch, ns_names: set[str], accounts: set[tuple[str, str]]) -> None:
    """Namespaces and service accounts that mesh identities name, so that they exist."""
    for text in (*(match.principals or ()), *match.not_principals):
        found = PRINCIPAL_IDENTITY.search(text)
        if found and found.group(2) and "*" not in found.group(2):
            ns_names.add(found.group(1))
            accounts.add((found.group(1), found.group(2)))
    for ns in (*(match.namespaces or ()), *match.not_namespaces):
        if "*" not in ns:
            ns_names.add(ns)


def _describe(labels: dict[str, str]) -> str:
    """A readable name suffix, so witnesses on a synthesised inventory say what the pod is."""
    return "{" + ",".join(f"{k}={v}" for k, v in sorted(labels.items())) + "}"


def _addresses(cidrs: list[str]) -> list[str]:
    """One pod address inside each CIDR, so ipBlock-vs-pod behaviour is exercised."""
    out: list[str] = []
    for cidr in dict.fromkeys(cidrs):
        try:
            net = ipaddress.ip_network(cidr)
        except ValueError:
            continue
        out.append(str(net.network_address + (1 if net.num_addresses > 1 else 0)))
    return out[:64]
