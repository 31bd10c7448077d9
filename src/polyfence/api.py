"""Library entry points for migration scripts: load, convert (verified), compare, explain.

>>> import polyfence
>>> bundle = polyfence.load(["examples/basic"])          # doctest: +SKIP
>>> result = polyfence.convert(bundle, to="kubernetes")  # doctest: +SKIP
>>> result.report.exact                                   # doctest: +SKIP
True
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from polyfence.errors import (
    Diagnostic,
    InputError,
    LossyTranslationError,
    UnsupportedFormatError,
    UsageError,
)
from polyfence.fidelity import Effect, Feature, FidelityReport, Loss, Treatment, Verification
from polyfence.inventory import Endpoint, Inventory, inventory_from_documents, is_inventory
from polyfence.io import kube
from polyfence.io.files import parse_text, read_documents
from polyfence.io.kinds import Disposition, KindRef, classify
from polyfence.io.names import check_metadata, same_object_twice
from polyfence.model.document import Document
from polyfence.model.policy import PolicySet
from polyfence.model.ports import protocol_number
from polyfence.model.provenance import SourceRef
from polyfence.semantics.compare import BasisKind, Comparison, Relation, compare_every_cluster
from polyfence.semantics.compare import compare as _compare
from polyfence.semantics.engine import Connectivity
from polyfence.semantics.engine import connectivity as _connectivity
from polyfence.semantics.profile import DEFAULT_PROFILE, EvaluationProfile, HostNetworkMode
from polyfence.semantics.synthesis import synthesise
from polyfence.semantics.universe import DEFAULT_BOUND, Bound, Undecided
from polyfence.semantics.verdict import Connection, Verdict, verdict
from polyfence.translation import RenderOptions


@dataclass(frozen=True, slots=True)
class Skipped:
    """A document no translator reads and the inventory does not use, and why it is harmless."""

    source: SourceRef
    kind: KindRef
    disposition: Disposition


@dataclass(frozen=True, slots=True)
class Bundle:
    """Loaded input: documents, their policies in the IR (by format), and the cluster objects."""

    documents: tuple[Document, ...]
    policies: PolicySet
    formats: tuple[str, ...]
    inventory: Inventory
    read_losses: tuple[Loss, ...] = ()  # what reading could not carry into the IR
    skipped: tuple[Skipped, ...] = ()  # documents passed over (never silently: see skip_summary)
    warnings: tuple[Diagnostic, ...] = ()  # legal but suspicious input, located

    def skip_summary(self) -> list[str]:
        """One line per reason documents were passed over, for stderr (empty when none were)."""
        return skip_summary(self.skipped)


def skip_summary(skipped: Sequence[Skipped]) -> list[str]:
    """``skipped 14 documents of 6 kinds that carry no network policy: ConfigMap x3, …``."""
    lines: list[str] = []
    for disposition, what in (
        (Disposition.NO_POLICY, "that carry no network policy"),
        (Disposition.UNKNOWN, "polyfence does not know (not network policy by their names)"),
        (Disposition.MAY_CARRY_POLICY, "that may carry network policy (--skip-unknown)"),
    ):
        these = [s for s in skipped if s.disposition is disposition]
        if not these:
            continue
        counts: dict[str, int] = {}
        for item in these:
            label = str(item.kind) if item.kind.kind else f"no kind ({item.source})"
            counts[label] = counts.get(label, 0) + 1
        shown = ", ".join(f"{k} \u00d7{n}" if n > 1 else k for k, n in sorted(counts.items()))
        noun = "document" if len(these) == 1 else "documents"
        kinds = "kind" if len(counts) == 1 else "kinds"
        lines.append(f"skipped {len(these)} {noun} of {len(counts)} {kinds} {what}: {shown}")
    return lines


@dataclass(frozen=True, slots=True)
class ConversionResult:
    documents: list[dict[str, Any]]
    report: FidelityReport
    policies: PolicySet
    origins: tuple[tuple[SourceRef, ...], ...] = ()  # per document: the sources it came from


def _translators() -> Any:
    from polyfence import translators

    return translators


def load(
    source: Iterable[str] | Sequence[Document] | str,
    *,
    from_format: str | None = None,
    stdin: Any = None,
    skip_unknown: bool = False,
) -> Bundle:
    """Read files/directories (or documents) into the IR plus an inventory; raises InputError.

    Kinds that carry no network policy (ConfigMaps, Deployments' neighbours, Ingresses …) are
    passed over and listed in ``Bundle.skipped``; a kind no translator reads that may carry
    network policy (another CNI's or mesh's policy) is an error unless ``skip_unknown``, which
    lists it as skipped instead: a verdict without it would be about a different cluster.
    """
    reg = _translators()
    if isinstance(source, str):
        source = [source]
    items: list[Any] = list(source)
    read_problems: list[Diagnostic] = []
    docs: list[Document]
    if items and isinstance(items[0], Document):
        docs = items
    else:
        docs, read_problems = read_documents(items, stdin)
    forced = reg.canonical_name(from_format) if from_format else None
    by_format: dict[str, list[Document]] = {}
    unknown: list[Diagnostic] = []
    warnings: list[Diagnostic] = []
    skipped: list[Skipped] = []
    warnings.extend(same_object_twice(docs))
    for doc in docs:
        errors, notes = check_metadata(doc)
        unknown.extend(errors)
        warnings.extend(notes)
        if errors:
            continue
        if is_inventory(doc):
            continue
        fmt = reg.detect(doc)
        if fmt is None:
            ref = KindRef(doc.api_version, doc.kind)
            disposition = classify(ref)
            if disposition is not Disposition.MAY_CARRY_POLICY or skip_unknown:
                skipped.append(Skipped(doc.source, ref, disposition))
                continue
            unknown.append(
                Diagnostic(
                    doc.source,
                    f"{ref} may carry network policy and no translator reads it: every verdict "
                    "would miss its rules (--skip-unknown goes on without them, saying so)",
                )
            )
            continue
        if forced is not None and fmt != forced:
            unknown.append(
                Diagnostic(doc.source, f"{doc.kind} is {fmt}, not {forced} as --from says")
            )
            continue
        by_format.setdefault(fmt, []).append(doc)
    problems = read_problems + unknown
    policies = PolicySet()
    first = True
    read_losses: list[Loss] = []
    for fmt, fdocs in by_format.items():
        try:
            translation = reg.get(fmt).to_canonical(fdocs)
        except InputError as exc:
            problems.extend(exc.diagnostics)
            continue
        ps = translation.value
        read_losses.extend(translation.report.losses)
        policies = ps if first else policies.merge(ps)
        first = False
    try:
        inventory = inventory_from_documents(docs)
    except InputError as exc:
        problems.extend(exc.diagnostics)
        inventory = Inventory()
    if problems:
        raise InputError(problems)
    warnings.extend(_lint(reg, by_format))
    return Bundle(
        tuple(docs),
        policies,
        tuple(by_format),
        inventory,
        tuple(read_losses),
        tuple(skipped),
        tuple(warnings),
    )


def _lint(reg: Any, by_format: dict[str, list[Document]]) -> list[Diagnostic]:
    """Each format's semantic warnings (legal but rarely meant), where its translator has lint()."""
    out: list[Diagnostic] = []
    for fmt, fdocs in by_format.items():
        lint = getattr(reg.get(fmt), "lint", None)
        if lint is not None:
            for doc in fdocs:
                out.extend(lint(doc))
    return out


def _inventory_for(
    bundle_inv: Inventory, extra: Inventory | None, sets: Sequence[PolicySet]
) -> tuple[Inventory, str]:
    inv = bundle_inv if extra is None else bundle_inv.merge(extra)
    if inv.endpoints:
        return inv, "given"
    return synthesise(sets), "synthesised"


def convert(
    source: Bundle | PolicySet,
    to: str,
    *,
    inventory: Inventory | None = None,
    allow_widening: bool = False,
    exact: bool = False,
    verify: bool = True,
    profile: EvaluationProfile = DEFAULT_PROFILE,
) -> ConversionResult:
    """Translate to ``to``, re-read the output, compare it with the source, enforce fail-closed.

    Raises ``LossyTranslationError`` (with the report) when the result would allow more than
    the source and ``allow_widening`` is false, or when ``exact`` is set and anything changed.
    """
    reg = _translators()
    read_losses: tuple[Loss, ...] = ()
    if isinstance(source, Bundle):
        policies, base_inv = source.policies, source.inventory
        source_format = "+".join(source.formats) or "canonical"
        read_losses = source.read_losses
    else:
        policies, base_inv, source_format = source, Inventory(), "canonical"
    target = reg.get(to)
    inv_for_render = base_inv if inventory is None else base_inv.merge(inventory)
    rendered = target.from_canonical(
        policies, RenderOptions(inventory=inv_for_render if inv_for_render.endpoints else None)
    )
    report = replace(
        rendered.report,
        source_format=source_format,
        target_format=target.name,
        losses=read_losses + rendered.report.losses,
    )
    back = policies
    if verify:
        text_docs = [Document(d, SourceRef("<output>", i)) for i, d in enumerate(rendered.value)]
        back = target.to_canonical(text_docs).value
        given = base_inv if inventory is None else base_inv.merge(inventory)
        cmp = _decide(policies, back, given if given.endpoints else None, profile, None)
        report = replace(report, verification=_verification(cmp))
        report = report.with_losses(*_unexplained(report, cmp))
    if report.widens and not allow_widening:
        raise LossyTranslationError(
            f"refused: the {target.name} output would allow more than the source (use --allow-widening to accept)",
            report,
        )
    if exact and not report.exact:
        raise LossyTranslationError(
            f"refused: the {target.name} output is not exact (--exact)", report
        )
    return ConversionResult(rendered.value, report, back, rendered.origins)


def _decide(
    a: PolicySet,
    b: PolicySet,
    given: Inventory | None,
    profile: EvaluationProfile,
    all_clusters: bool | None,
    bound: Bound = DEFAULT_BOUND,
) -> Comparison:
    """The comparison on the basis asked for: the given inventory alone (when there is one and
    ``all_clusters`` is not true), else every cluster (with the given inventory's verdict
    attached when there is one); beyond the bound, the synthesised inventory, saying so."""
    if given is not None and not all_clusters:
        return _compare(a, b, given, profile)
    if given is None and all_clusters is False:
        return _compare(a, b, synthesise([a, b]), profile, basis=BasisKind.SYNTHESISED)
    try:
        result = compare_every_cluster(a, b, profile, bound)
    except Undecided as exc:
        synth = _compare(a, b, synthesise([a, b]), profile, basis=BasisKind.SYNTHESISED)
        assert synth.basis is not None
        result = replace(synth, basis=replace(synth.basis, undecided=exc.reason))
    if given is not None:
        result = replace(result, given=_compare(a, b, given, profile))
    return result


def _verification(cmp: Comparison) -> Verification:
    basis = cmp.basis
    assert basis is not None
    inventory = {
        BasisKind.EVERY_CLUSTER: "every-cluster" if basis.proven else "universal",
        BasisKind.GIVEN: "given",
        BasisKind.SYNTHESISED: "synthesised",
    }[basis.kind]
    text = basis.describe()
    text = text[4:] if text.startswith("the ") else text
    cex = cmp.counterexample
    return Verification(
        cmp.relation.value,
        inventory,
        tuple(w.to_dict() for w in cmp.witnesses),
        basis.kind.value
        if basis.proven or basis.kind is not BasisKind.EVERY_CLUSTER
        else "universal-inventory",
        text,
        basis.undecided,
        None if cex is None else cex.to_dict(),
        basis.method,
        basis.fallback,
    )


def _unexplained(report: FidelityReport, cmp: Comparison) -> list[Loss]:
    """Differences the engine found that no reported loss accounts for: never stay silent."""
    effects = {loss.effect for loss in report.losses}
    out = []
    for side, effect, verb in (("b", Effect.WIDENED, "allows"), ("a", Effect.NARROWED, "denies")):
        if effects & {effect, Effect.INVENTORY_DEPENDENT}:
            continue
        for w in cmp.witnesses:
            if w.allowed_by == side:
                port = "" if w.port is None else f"/{w.port}"
                out.append(
                    Loss(
                        effect,
                        Treatment.APPROXIMATED,
                        Feature.UNEXPLAINED,
                        None,
                        f"verification: the output {verb} {w.src} -> {w.dst} {w.protocol}{port}, "
                        "which no reported loss explains",
                        w.to_dict(),
                    )
                )
                break
    return out


def compare(
    a: Bundle | PolicySet,
    b: Bundle | PolicySet,
    *,
    inventory: Inventory | None = None,
    profile: EvaluationProfile = DEFAULT_PROFILE,
    all_clusters: bool | None = None,
    bound: Bound = DEFAULT_BOUND,
) -> Comparison:
    """How B relates to A (equivalent / wider / narrower / incomparable), and on what basis.

    Without an inventory (none given, none in the bundles): on every cluster, with
    counterexample clusters (``Comparison.counterexample``). With one: on that cluster, as
    before; ``all_clusters=True`` asks both (the inventory's verdict is ``.given``);
    ``all_clusters=False`` without an inventory compares on the synthesised one only.
    Beyond ``bound`` the every-cluster answer is the synthesised inventory's, with
    ``basis.undecided`` saying why.
    """
    pa = a.policies if isinstance(a, Bundle) else a
    pb = b.policies if isinstance(b, Bundle) else b
    base = Inventory()
    for side in (a, b):
        if isinstance(side, Bundle) and side.inventory.endpoints:
            base = base.merge(side.inventory) if base.endpoints else side.inventory
    given = base if inventory is None else base.merge(inventory)
    return _decide(pa, pb, given if given.endpoints else None, profile, all_clusters, bound)


def connectivity(
    source: Bundle | PolicySet,
    *,
    inventory: Inventory | None = None,
    profile: EvaluationProfile = DEFAULT_PROFILE,
) -> Connectivity:
    """Allowed connectivity of the policies on the inventory (given, else synthesised)."""
    ps = source.policies if isinstance(source, Bundle) else source
    base = source.inventory if isinstance(source, Bundle) else Inventory()
    inv, _ = _inventory_for(base, inventory, [ps])
    return _connectivity(ps, inv, profile)


def _endpoint(inv: Inventory, ref: str, option: str) -> Endpoint | str:
    """An address, or an endpoint of the inventory by ``ns/name``; a typo is a usage error."""
    if ref.replace(".", "").isdigit() or ":" in ref:
        try:
            return str(ipaddress.ip_address(ref))
        except ValueError:
            raise UsageError(f"{option} {ref!r} is not an IPv4 or IPv6 address") from None
    found = inv.find(ref)
    if found is None:
        raise InputError(
            [Diagnostic(SourceRef("<arguments>"), f"no endpoint {ref!r} in the inventory")]
        )
    return found


def _port(text: str) -> tuple[int, int | None]:
    """``443``, ``53/UDP``, ``/ICMP``: the protocol number and the port (None: no port)."""
    number, _, proto = text.partition("/")
    try:
        protocol = protocol_number(proto or "TCP")
    except ValueError:
        raise UsageError(f"--port {text!r}: unknown protocol {proto!r}") from None
    if not number:
        return protocol, None
    if not number.isdigit() or not 0 <= int(number) <= 65535:
        raise UsageError(f"--port {text!r}: the port must be a number from 0 to 65535")
    return protocol, int(number)


def explain(
    source: Bundle | PolicySet,
    src: str,
    dst: str,
    port: str,
    *,
    inventory: Inventory | None = None,
    profile: EvaluationProfile = DEFAULT_PROFILE,
) -> tuple[Connection, Verdict]:
    """Why ``src`` may or may not open ``port`` (``443``, ``53/UDP``) on ``dst``."""
    ps = source.policies if isinstance(source, Bundle) else source
    inv = source.inventory if isinstance(source, Bundle) else Inventory()
    if inventory is not None:
        inv = inv.merge(inventory)
    protocol, number = _port(port)
    conn = Connection(_endpoint(inv, src, "--src"), _endpoint(inv, dst, "--dst"), protocol, number)
    return conn, verdict(ps, conn, inv, profile)


def audit(
    source: Iterable[str] | Bundle,
    *,
    frameworks: Iterable[str] | None = None,
    config: str | Any | None = None,
    inventory: Inventory | None = None,
    profile: str = "kubernetes",
    today: Any = None,
    progress: Any = None,
    inputs: Sequence[str] | None = None,
    skip_unknown: bool = False,
    host_network: HostNetworkMode | None = None,
) -> Any:
    """Audit a cluster snapshot (paths or a loaded Bundle) against compliance frameworks.

    ``config`` is a path to an audit config or an ``AuditConfig``; returns a
    ``polyfence.compliance.audit.Report`` whose ``to_dict()`` follows ``schemas/report.schema.json``.
    ``inputs`` names the evidence in the report's scope (default: the paths), e.g. a live
    cluster's ``ClusterRead.label`` when ``source`` is a Bundle of what was read from it.
    """
    from pathlib import Path

    from polyfence.compliance.audit import run_audit
    from polyfence.compliance.catalog import FRAMEWORK_IDS
    from polyfence.compliance.config import AuditConfig, load_config
    from polyfence.compliance.context import AuditContext
    from polyfence.semantics.profile import PROFILES

    ids = None if frameworks is None else [f.strip() for f in frameworks if f.strip()]
    unknown = [f for f in ids or () if f not in FRAMEWORK_IDS]
    if unknown:
        raise UsageError(
            f"unknown framework {', '.join(unknown)} (known: {', '.join(FRAMEWORK_IDS)})"
        )
    if profile not in PROFILES:
        raise UsageError(f"unknown profile {profile!r} (known: {', '.join(sorted(PROFILES))})")
    cfg = load_config(str(config)) if isinstance(config, str | Path) else (config or AuditConfig())
    names: list[str] = [] if inputs is None else list(inputs)
    if isinstance(source, Bundle):
        bundle = source
    else:
        paths = [str(p) for p in source]
        names = paths if inputs is None else names
        bundle = load(paths, skip_unknown=skip_unknown)
    if inventory is not None:
        bundle = replace(bundle, inventory=bundle.inventory.merge(inventory))
    baseline = load([cfg.baseline], skip_unknown=skip_unknown) if cfg.baseline else None
    ctx = AuditContext(
        bundle,
        cfg,
        profile=PROFILES[profile]
        if host_network is None
        else PROFILES[profile].but(host_network=host_network),
        profile_name=profile,
        inputs=names,
        today=today,
        baseline=baseline,
    )
    return run_audit(ctx, ids, progress=progress)


def read_cluster(
    *,
    kubeconfig: str | None = None,
    context: str | None = None,
    in_cluster: bool = False,
    namespaces: Sequence[str] | None = None,
) -> kube.ClusterRead:
    """Read a live cluster, read-only (needs the ``kubernetes`` extra), instead of a snapshot.

    ``load(read.documents, skip_unknown=True)`` gives the Bundle a snapshot of the same objects
    would, for ``audit(bundle, inputs=[read.label])``; ``read.skipped`` lists the kinds not read
    (CRDs not installed, or forbidden). See ``polyfence.io.kube.read_cluster``.
    """
    return kube.read_cluster(
        kubeconfig=kubeconfig, context=context, in_cluster=in_cluster, namespaces=namespaces
    )


__all__ = [
    "Bundle",
    "Comparison",
    "ConversionResult",
    "Relation",
    "Skipped",
    "UnsupportedFormatError",
    "audit",
    "compare",
    "connectivity",
    "convert",
    "explain",
    "load",
    "parse_text",
    "read_cluster",
]
