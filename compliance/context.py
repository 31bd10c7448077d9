"""Everything a check reads: the loaded cluster, the IR of every policy format, the engine.

Checks never parse documents of a policy format themselves: coverage, isolation and
reachability come from the canonical model and the engine, so Calico, Cilium and every other
format that has a translator count exactly like Kubernetes NetworkPolicy.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import replace
from functools import cached_property

from polyfence.api import Bundle
from polyfence.compliance.config import AuditConfig
from polyfence.compliance.model import ConnectionEvidence, ObjectRef
from polyfence.inventory import Endpoint
from polyfence.model.document import Document
from polyfence.model.policy import NOT_GOVERNED, Direction, Governed, Policy, Rule
from polyfence.model.ports import protocol_name
from polyfence.semantics.connset import EMPTY, ConnSet
from polyfence.semantics.engine import Connectivity, EndpointClass, Universe, iter_bits
from polyfence.semantics.intervals import IPSet
from polyfence.semantics.matching import Matcher, enforced_on
from polyfence.semantics.profile import DEFAULT_PROFILE, EvaluationProfile
from polyfence.semantics.verdict import Connection, verdict

# Addresses that are not "the internet": RFC 1918, CGNAT, loopback, link-local, ULA, …
NON_PUBLIC = IPSet.from_cidrs(
    [
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "224.0.0.0/4",
        "240.0.0.0/4",
        "::/128",
        "::1/128",
        "fc00::/7",
        "fe80::/10",
        "ff00::/8",
    ]
)
PUBLIC = IPSet.all() - NON_PUBLIC


def workload_matches(endpoint: Endpoint, patterns: Iterable[str]) -> bool:
    """fnmatch ``ns/name`` or ``ns/name[Kind]`` patterns against an endpoint."""
    plain = f"{endpoint.namespace}/{endpoint.name}" if endpoint.namespace else endpoint.name
    return any(
        fnmatch.fnmatchcase(plain, p) or fnmatch.fnmatchcase(endpoint.ref, p) for p in patterns
    )


class AuditContext:
    """A read-only view of one audit's input, with the engine's results computed once."""

    def __init__(
        self,
        bundle: Bundle,
        config: AuditConfig,
        *,
        profile: EvaluationProfile = DEFAULT_PROFILE,
        profile_name: str = "kubernetes",
        inputs: Iterable[str] = (),
        today: dt.date | None = None,
        baseline: Bundle | None = None,
    ) -> None:
        self.bundle = bundle
        self.config = config
        self.profile = profile
        self.profile_name = profile_name
        self.inputs = tuple(inputs)
        self.today = today or dt.date.today()
        self.baseline = baseline
        # The internet is every address outside the cluster: declared ExternalAddresses name
        # some of them, they do not bound it.
        self.inventory = replace(bundle.inventory, external=IPSet.all())
        self.policies = bundle.policies
        self._documents = {
            (d.source.file, d.source.document, d.source.pointer): d for d in bundle.documents
        }

    # ---------------------------------------------------------------- scope

    @cached_property
    def namespaces(self) -> tuple[str, ...]:
        """Every namespace the input shows (declared, or holding a workload or policy)."""
        names = {ns.name for ns in self.inventory.namespaces}
        names.update(p.id.namespace for p in self.policies if p.id.namespace)
        return tuple(sorted(names))

    @cached_property
    def in_scope(self) -> tuple[str, ...]:
        return tuple(ns for ns in self.namespaces if self.config.exclusion(ns) is None)

    @cached_property
    def excluded(self) -> tuple[tuple[str, str], ...]:
        out = []
        for ns in self.namespaces:
            reason = self.config.exclusion(ns)
            if reason is not None:
                out.append((ns, reason))
        return tuple(out)

    def in_scope_ns(self, namespace: str | None) -> bool:
        return namespace is not None and self.config.exclusion(namespace) is None

    @cached_property
    def workloads(self) -> tuple[Endpoint, ...]:
        """Pods (or the workloads standing for them) of in-scope namespaces."""
        return tuple(e for e in self.inventory.pods if self.in_scope_ns(e.namespace))

    @cached_property
    def has_workloads(self) -> bool:
        return bool(self.inventory.pods)

    def zones_of(self, namespace: str | None) -> tuple[str, ...]:
        if namespace is None:
            return ()
        found = self._zones.get(namespace)
        if found is None:
            labels = self.inventory.namespace(namespace).labels
            found = tuple(z.name for z in self.config.zones if z.contains(namespace, labels))
            self._zones[namespace] = found
        return found

    @cached_property
    def _zones(self) -> dict[str, tuple[str, ...]]:
        return {}

    def sensitive(self, namespace: str | None) -> bool:
        zones = set(self.zones_of(namespace))
        return any(z.sensitive for z in self.config.zones if z.name in zones)

    # ---------------------------------------------------------------- documents and evidence

    def document_of(self, policy: Policy) -> Document | None:
        src = policy.source
        if src is None:
            return None
        # a policy's source points into its document, which may be an item of a List
        # document (``/items/3/spec``): the longest pointer prefix naming a document wins
        pointer = src.pointer
        while True:
            found = self._documents.get((src.file, src.document, pointer))
            if found is not None or not pointer:
                return found
            pointer = pointer.rsplit("/", 1)[0]

    def policy_ref(self, policy: Policy, rule: Rule | None = None) -> ObjectRef:
        doc = self.document_of(policy)
        kind = (doc.kind if doc is not None else None) or policy.id.format
        name = policy.id.name.split("#", 1)[0]  # Cilium deny parts are "name#deny"
        where = rule.source if rule is not None and rule.source is not None else policy.source
        return ObjectRef.at(kind, policy.id.namespace, name, where)

    @cached_property
    def _objects(self) -> dict[tuple[str | None, str | None, str], Document]:
        out: dict[tuple[str | None, str | None, str], Document] = {}
        for doc in self.bundle.documents:
            if isinstance(doc.data, dict):
                meta = doc.data.get("metadata") or {}
                if isinstance(meta, dict) and meta.get("name"):
                    ns = meta.get("namespace")
                    if ns is None and doc.kind not in ("Namespace", "Node"):
                        ns = "default"
                    out.setdefault((doc.kind, ns, str(meta["name"])), doc)
        return out

    def object_ref(
        self, kind: str, namespace: str | None, name: str, pointer: str = ""
    ) -> ObjectRef:
        """A reference to a cluster object, located in its input file when it came from one."""
        doc = self._objects.get((kind, namespace, name))
        if doc is None:
            return ObjectRef(kind, namespace, name, pointer=pointer)
        src = doc.source
        return ObjectRef(kind, namespace, name, src.file, src.document, src.pointer + pointer)

    def workload_ref(self, endpoint: Endpoint, pointer: str = "") -> ObjectRef:
        return self.object_ref(endpoint.kind, endpoint.namespace, endpoint.name, pointer)

    def policy_resource(self, policy: Policy) -> str:
        """``Kind/namespace/name``: the resource a policy finding (and its waivers) is about."""
        ref = self.policy_ref(policy)
        return (
            f"{ref.kind}/{ref.namespace}/{ref.name}" if ref.namespace else f"{ref.kind}/{ref.name}"
        )

    def documents_of_kind(self, *kinds: str) -> Iterator[Document]:
        for doc in self.bundle.documents:
            if doc.kind in kinds and isinstance(doc.data, dict):
                yield doc

    def explain(
        self, src: Endpoint | str, dst: Endpoint | str, protocol: int, port: int | None
    ) -> ConnectionEvidence:
        """A witness connection with the engine's verdict and the steps that decided it."""
        conn = Connection(src, dst, protocol, port)
        v = verdict(self.policies, conn, self.inventory, self.profile)
        return ConnectionEvidence(
            src.ref if isinstance(src, Endpoint) else src,
            dst.ref if isinstance(dst, Endpoint) else dst,
            protocol_name(protocol),
            port,
            "allowed" if v.allowed else "denied",
            tuple(str(s) for s in v.steps)
            or (
                "no policy of any format selects either endpoint: the connection is "
                + ("allowed by default" if v.allowed else "denied"),
            ),
        )

    def deciding_objects(self, evidence: ConnectionEvidence) -> tuple[ObjectRef, ...]:
        """The policies (and exact rules) named in an explanation."""
        out: list[ObjectRef] = []
        for step in evidence.explanation:
            if " policy " not in step:
                continue
            pid = step.split(" policy ", 1)[1].split(" rule ", 1)[0].split(":", 1)[0]
            for pol in self._by_id.get(pid, ()):
                ref = self.policy_ref(pol, _rule_in(pol, step))
                if ref not in out:
                    out.append(ref)
        return tuple(out)

    @cached_property
    def _by_id(self) -> dict[str, list[Policy]]:
        out: dict[str, list[Policy]] = defaultdict(list)
        for pol in self.policies:
            out[str(pol.id)].append(pol)
        return out

    # ---------------------------------------------------------------- engine

    @cached_property
    def universe(self) -> Universe:
        return Universe(self.inventory, [self.policies], self.profile)

    @cached_property
    def connectivity(self) -> Connectivity:
        return Connectivity(self.universe, self.policies)

    @cached_property
    def matrix(self) -> dict[tuple[int, int], ConnSet]:
        return self.connectivity.matrix()

    @cached_property
    def ingress_matrix(self) -> dict[tuple[int, int], ConnSet]:
        """What each destination's ingress policies accept, whatever the sources' egress says:
        the exposure a server's own policies give it."""
        accepting = self.policies.with_policies(
            replace(p, egress=NOT_GOVERNED) for p in self.policies
        )
        return Connectivity(self.universe, accepting).matrix()

    @cached_property
    def matcher(self) -> Matcher:
        return self.universe.matcher_for(self.policies)

    def class_of(self, endpoint: Endpoint) -> EndpointClass:
        return self._class_index[id(endpoint)]

    @cached_property
    def _class_index(self) -> dict[int, EndpointClass]:
        return {id(m): cls for cls in self.universe.classes for m in cls.members}

    def address_class(self, address: str) -> EndpointClass | None:
        """The class an address outside the inventory falls in (None if it is an endpoint's)."""
        target = IPSet.from_cidr(address)
        for cls in self.universe.classes:
            if cls.external is not None and target <= cls.external:
                return cls
        return None

    @cached_property
    def public_classes(self) -> tuple[EndpointClass, ...]:
        """Address atoms holding at least one public (internet) address: the internet's classes."""
        return tuple(
            cls
            for cls in self.universe.classes
            if cls.external is not None and (cls.external & PUBLIC)
        )

    @cached_property
    def _internet_traffic(self) -> tuple[dict[int, ConnSet], dict[int, ConnSet]]:
        """Per class: what the internet may open on it, and what it may open to the internet
        (one pass over the matrix, shared by the exposure checks and the report)."""
        public = {c.index for c in self.public_classes}
        inbound: dict[int, ConnSet] = {}
        outbound: dict[int, ConnSet] = {}
        for (s, d), conns in self.matrix.items():
            if s in public:
                inbound[d] = inbound[d] | conns if d in inbound else conns
            if d in public:
                outbound[s] = outbound[s] | conns if s in outbound else conns
        return inbound, outbound

    @property
    def internet_inbound(self) -> dict[int, ConnSet]:
        return self._internet_traffic[0]

    @property
    def internet_outbound(self) -> dict[int, ConnSet]:
        return self._internet_traffic[1]

    def allowed(self, src: EndpointClass, dst: EndpointClass) -> ConnSet:
        return self.matrix.get((src.index, dst.index), EMPTY)

    def governing(self, endpoint: Endpoint, direction: Direction) -> list[Policy]:
        """The policies (any layer, any format) that govern an endpoint in a direction; mesh
        policies only on workloads in the mesh (elsewhere no proxy enforces them).

        Computed once per endpoint class: its members are the endpoints no policy tells apart.
        """
        key = (self.class_of(endpoint).index, direction)
        found = self._governing.get(key)
        if found is None:
            found = [
                p
                for p in self.policies
                if isinstance(p.direction(direction), Governed)
                and enforced_on(p.layer, endpoint)
                and self.matcher.selects(p.subject, endpoint)
            ]
            self._governing[key] = found
        return found

    @cached_property
    def _governing(self) -> dict[tuple[int, Direction], list[Policy]]:
        return {}

    @cached_property
    def class_representatives(self) -> tuple[Endpoint, ...]:
        """One pod per endpoint class: what a selector decides for it, it decides for all."""
        return tuple(cls.members[0] for cls in self.universe.classes if cls.members and cls.is_pod)

    @cached_property
    def pod_class_indices(self) -> tuple[int, ...]:
        return tuple(iter_bits(self.universe.pod_bits))

    def namespace_matrix(self) -> dict[tuple[str, str], ConnSet]:
        return self._namespace_matrix

    @cached_property
    def _namespace_matrix(self) -> dict[tuple[str, str], ConnSet]:
        """Namespace to namespace: the union of what any workload may open on any other."""
        out: dict[tuple[str, str], ConnSet] = defaultdict(lambda: EMPTY)
        classes = self.universe.classes
        for (s, d), conns in self.matrix.items():
            src, dst = classes[s], classes[d]
            if not (src.is_pod and dst.is_pod):
                continue
            sns = src.representative.endpoint.namespace  # type: ignore[union-attr]
            dns = dst.representative.endpoint.namespace  # type: ignore[union-attr]
            if sns is None or dns is None:
                continue
            out[(sns, dns)] = out[(sns, dns)] | conns
        return dict(out)


def _rule_in(policy: Policy, step: str) -> Rule | None:
    direction = Direction.INGRESS if " ingress " in f" {step} " else Direction.EGRESS
    rules = policy.direction(direction)
    marker = " rule "
    if not isinstance(rules, Governed) or marker not in step:
        return None
    try:
        index = int(step.split(marker, 1)[1].split(":", 1)[0])
    except ValueError:
        return None
    return rules.rules[index] if 0 <= index < len(rules.rules) else None
