"""Selector terms for writers: taking the IR's reserved pseudo-labels out of selectors, and
rewriting selector atoms (key renaming, atom mapping) for any format.

The IR lets selectors test ``polyfence.dev/namespace``, ``polyfence.dev/service-account`` and
``polyfence.dev/kind`` like labels. Formats spell these differently or not at all, so writers
split each DNF term of a selector into its real-label part, its namespace part (rewritten as a
test on the namespace's ``kubernetes.io/metadata.name`` label, which always equals the name),
its service-account part, and whether the term can hold for a pod at all.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass

from polyfence.inventory import NAMESPACE_NAME_LABEL
from polyfence.model.labels import KIND_KEY, KIND_POD, NAMESPACE_KEY, SERVICE_ACCOUNT_KEY
from polyfence.model.peers import IpMatch, Peer
from polyfence.model.selectors import NOTHING, All, And, Not, Or, Selector, and_, not_, or_, to_dnf
from polyfence.semantics.intervals import IPSet, parse_cidr


def _key(lit: Selector) -> str | None:
    inner = lit.expr if isinstance(lit, Not) else lit
    return getattr(inner, "key", None)


def rename(lit: Selector, key: str) -> Selector:
    """The same test on another key (``!has(a)`` stays negated)."""
    if isinstance(lit, Not):
        return Not(dataclasses.replace(lit.expr, key=key))  # type: ignore[call-arg]
    return dataclasses.replace(lit, key=key)  # type: ignore[call-arg]


@dataclass(frozen=True, slots=True)
class PodTerm:
    """One DNF term of a pod selector, split by what each literal speaks of."""

    labels: Selector  # tests on real pod labels
    namespace: Selector | None  # tests on the namespace name, as a namespace-label selector
    service_account: tuple[Selector, ...]  # tests on the service-account name
    possible: bool  # False when a kind test rules pods out


def pod_terms(sel: Selector) -> list[PodTerm]:
    """The DNF terms of a selector applied to pods (``[]``: matches no pod)."""
    out: list[PodTerm] = []
    for conj in to_dnf(sel):
        labels: list[Selector] = []
        namespace: list[Selector] = []
        sa: list[Selector] = []
        possible = True
        for lit in conj:
            key = _key(lit)
            if key == KIND_KEY:
                possible = possible and lit.matches({KIND_KEY: KIND_POD})
            elif key == NAMESPACE_KEY:
                namespace.append(rename(lit, NAMESPACE_NAME_LABEL))
            elif key == SERVICE_ACCOUNT_KEY:
                sa.append(lit)
            else:
                labels.append(lit)
        if possible:
            out.append(
                PodTerm(and_(*labels), and_(*namespace) if namespace else None, tuple(sa), True)
            )
    return out


def bind_pod(sel: Selector, namespace: str | None, service_account: str | None = None) -> Selector:
    """``sel`` for pods of a known namespace: the namespace and kind tests become constants.

    Service-account tests stay unless the service account is given.
    """
    known: dict[str, str] = {KIND_KEY: KIND_POD}
    if namespace is not None:
        known[NAMESPACE_KEY] = namespace
    if service_account is not None:
        known[SERVICE_ACCOUNT_KEY] = service_account
    terms: list[Selector] = []
    for conj in to_dnf(sel):
        kept: list[Selector] = []
        ok = True
        for lit in conj:
            key = _key(lit)
            if key in known:
                ok = ok and lit.matches(known)
            else:
                kept.append(lit)
        if ok:
            terms.append(and_(*kept) if kept else All())
    return or_(*terms)


def cidr_blocks(ip: IpMatch) -> list[tuple[str, list[str]]]:
    """``(cidr, excepts)`` blocks for an IP match, one per net: the form k8s ipBlocks and Cilium
    CIDRSets share. A net inside a not-net is empty and left out; excepts stay per net, so
    one net's except never removes addresses of another (semantics trap 30)."""
    nets = ip.nets if ip.nets is not None else ("0.0.0.0/0", "::/0")
    not_sets = [(n, IPSet.from_cidr(n)) for n in ip.not_nets]
    out: list[tuple[str, list[str]]] = []
    for net in nets:
        whole = IPSet.from_cidr(net)
        if any(whole <= part for _, part in not_sets):
            continue
        excepts = sorted({text for text, part in not_sets if part <= whole}, key=parse_cidr)
        out.append((net, excepts))
    return out


def safe_name(name: str) -> str:
    """An object name every Kubernetes-style API accepts (a lowercase DNS subdomain).

    IR names can carry what no API server takes (Cilium deny parts are ``name#deny``)."""
    text = re.sub(r"[^a-z0-9.-]+", "-", name.lower()).strip("-.")
    text = re.sub(r"\.+", ".", text)
    return text[:253].strip("-.") or "policy"


def local_pods(local: Peer, namespace: str) -> Selector | None:
    """The pod selector a rule's local-side constraint amounts to, or None if it is more.

    The local side is always a subject pod of ``namespace``, so namespace scoping that admits
    it is no constraint and network-set selection is irrelevant.
    """
    if local.pods is None:
        return None
    plain = Peer(
        pods=local.pods,
        namespace_names=local.namespace_names,
        namespace_selector=local.namespace_selector,
        sets=local.sets,
    )
    if local != plain:
        return None
    if local.namespace_names is not None and namespace not in local.namespace_names:
        return NOTHING
    if local.namespace_selector is not None and local.namespace_selector != All():
        return None
    return bind_pod(local.pods, namespace)


# selector atoms, whatever the format calls their keys -----------------------------------


def map_atoms(sel: Selector, fn: Callable[[Selector], Selector]) -> Selector:
    """Rebuild a selector with every match atom replaced by ``fn(atom)``."""
    if isinstance(sel, And):
        return and_(*(map_atoms(t, fn) for t in sel.terms))
    if isinstance(sel, Or):
        return or_(*(map_atoms(t, fn) for t in sel.terms))
    if isinstance(sel, Not):
        return not_(map_atoms(sel.expr, fn))
    return fn(sel)


def atom_key(atom: Selector) -> str | None:
    """The label key a match atom tests (None for All/Nothing and compound selectors)."""
    return getattr(atom, "key", None)


def with_key(atom: Selector, key: str) -> Selector:
    """The same match atom on another key."""
    return dataclasses.replace(atom, key=key)  # type: ignore[call-arg]


def rename_key(sel: Selector, old: str, new: str) -> Selector:
    """``sel`` with every test on label ``old`` made on ``new`` instead."""
    return map_atoms(sel, lambda a: with_key(a, new) if atom_key(a) == old else a)
