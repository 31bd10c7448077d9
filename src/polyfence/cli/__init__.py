"""The ``polyfence`` command line: a thin layer over ``polyfence.api``; ``aws`` holds the aws
verbs, ``errors`` maps errors to exit codes for all of them.

Exit codes: 0 ok · 1 crash · 2 usage · 3 invalid input · 4 refused translation / not
equivalent / audit findings at or above ``--fail-on``.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import click

from polyfence import api
from polyfence.cli import errors
from polyfence.cli.aws import aws as aws_group
from polyfence.errors import (
    Diagnostic,
    InputError,
    LossyTranslationError,
    UsageError,
)
from polyfence.fidelity import Effect, FidelityReport
from polyfence.io import output as out
from polyfence.io.files import dump, load_documents, read_documents
from polyfence.model.document import Document
from polyfence.model.ports import connection_words
from polyfence.model.provenance import SourceRef
from polyfence.semantics.notes import enforcement_notes, everyone_in_mesh
from polyfence.semantics.profile import PROFILES, EvaluationProfile, HostNetworkMode

F = TypeVar("F", bound=Callable[..., Any])
_err = errors.err
_located = errors.located
EXIT_INPUT = errors.EXIT_INPUT
EXIT_FINDINGS = errors.EXIT_FINDINGS


def _handle(func: F) -> F:
    """Errors to exit codes as ``errors.handle`` maps them; a refusal shows its fidelity report."""
    return errors.handle(func, report=_print_report)


_HINTS: dict[Effect, str] = {
    Effect.WIDENED: "the output would allow more: target a format that has this construct, "
    "rewrite it in the source, leave the file out (--keep-going), or accept it (--allow-widening)",
    Effect.NARROWED: "the output denies more than the source: target a format that has this "
    "construct, or rewrite it in the source",
    Effect.INVENTORY_DEPENDENT: "exact only for one cluster: give that cluster with --inventory "
    "(kubectl get pods,namespaces -A -o yaml)",
}


def _print_report(report: FidelityReport, stream: Any, counts: str = "") -> None:
    """The fidelity report, widening first: a header whose words agree with the verdict (the
    engine's relation leads; losses only say what may happen), then what to do per construct."""
    order = (Effect.WIDENED, Effect.NARROWED, Effect.INVENTORY_DEPENDENT, Effect.NONE)
    by_effect = {e: [loss for loss in report.losses if loss.effect is e] for e in order}
    tally = ", ".join(
        f"{len(by_effect[e])} {word}"
        for e, word in (
            (Effect.WIDENED, "widen"),
            (Effect.NARROWED, "narrow"),
            (Effect.INVENTORY_DEPENDENT, "inventory-dependent"),
            (Effect.NONE, "cosmetic"),
        )
        if by_effect[e]
    )
    ver = report.verification
    relation = None if ver is None else ver.relation
    if relation in ("wider", "incomparable"):
        verdict = "WIDENS"
    elif report.exact:
        verdict = "exact"
    elif by_effect[Effect.WIDENED]:
        verdict = "may widen" if relation is not None else "WIDENS"
    else:
        verdict = "lossy"
    noun = "loss" if len(report.losses) == 1 else "losses"
    lines = [
        f"fidelity {report.source_format} -> {report.target_format}: {verdict} "
        f"({counts}{len(report.losses)} {noun}{': ' + tally if tally else ''})"
    ]
    for effect in order:
        features = dict.fromkeys(loss.feature for loss in by_effect[effect])
        for loss in by_effect[effect]:
            lines.append(f"  - {loss}")
        if features and effect in _HINTS:
            names = ", ".join(f.value for f in features)
            lines.append(f"    what to do ({names}): {_HINTS[effect]}")
    if ver is not None:
        lines.append(f"  {ver.describe()}")
        for w in ver.witnesses:
            by = "the output" if w["allowed_by"] == "b" else "the source"
            what = connection_words(w["protocol"], w.get("port"))
            lines.append(f"    witness: {w['src']} -> {w['dst']} {what}, allowed only by {by}")
    print("\n".join(lines), file=stream)


def _remember(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """Options that refine the profile or the inventory live in the context, not in every
    verb's signature (``_profile``, ``_tell``)."""
    ctx.meta[f"polyfence.{param.name}"] = value
    return value


def _profile_option(func: F) -> F:
    """``--profile`` and the two implementation-defined facts it leaves open."""
    func = click.option(
        "--mesh",
        type=click.Choice(["as-given", "all"]),
        default="as-given",
        show_default=True,
        expose_value=False,
        callback=_remember,
        help="all: every pod has a mesh proxy, for dumps that omit injection facts.",
    )(func)
    func = click.option(
        "--host-network",
        type=click.Choice(["as-host", "as-pods"]),
        default=None,
        expose_value=False,
        callback=_remember,
        help="hostNetwork pods under NetworkPolicy (implementation-defined): as-host (the "
        "default: they act as their node, selectors never match them) or as-pods.",
    )(func)
    return click.option(
        "--profile",
        "profile_name",
        type=click.Choice(sorted(PROFILES)),
        default="kubernetes",
        show_default=True,
        help="Evaluation profile for implementation-defined behaviour (cilium: ipBlocks never "
        "match pods or nodes).",
    )(func)


def _host_network() -> HostNetworkMode | None:
    choice = click.get_current_context().meta.get("polyfence.host_network")
    return (
        None
        if choice is None
        else {"as-host": HostNetworkMode.NODE, "as-pods": HostNetworkMode.POD}[choice]
    )


def _profile(name: str) -> EvaluationProfile:
    """The named profile with ``--host-network`` applied."""
    mode = _host_network()
    return PROFILES[name] if mode is None else PROFILES[name].but(host_network=mode)


def _mesh_all(bundle: api.Bundle) -> api.Bundle:
    """``--mesh all``: every pod of the input has a proxy."""
    if click.get_current_context().meta.get("polyfence.mesh") != "all":
        return bundle
    return replace(bundle, inventory=everyone_in_mesh(bundle.inventory))


def _notes(bundle: api.Bundle, extra: Any, profile: EvaluationProfile) -> None:
    """Where the verdict rests on hostNetwork treatment or on mesh membership: say so."""
    inv = bundle.inventory if extra is None else bundle.inventory.merge(extra)
    for note in enforcement_notes(bundle.policies, inv, profile):
        _err(f"note: {_located(note)}")


_CONNECTIVITY_FORMATS = ("text", "json", "csv", "dot")


def _output_option(metavar: str = "FILE", what: str = "the output") -> Callable[[F], F]:
    """``-o/--output``, the same on every verb (README "Outputs (-o)")."""
    return click.option(
        "-o",
        "--output",
        metavar=metavar,
        help=f"Write {what} here instead of standard output (- is standard output; "
        "an existing file keeps its mode, devices and FIFOs are written into).",
    )


def _format_option(
    choices: Sequence[str],
    default: str | None,
    dest: str = "output_format",
    *,
    by_suffix: bool = True,
) -> Callable[[F], F]:
    """``--output-format`` (documented) and ``--format`` (its synonym) are one option on every
    verb; on verbs with ``-o`` (``by_suffix``) its suffix decides when the option is not given
    (``-o out.json`` is JSON), then ``default``."""
    if not by_suffix:
        return click.option(
            "--output-format",
            "--format",
            dest,
            type=click.Choice(list(choices)),
            default=default,
            show_default=True,
            help="Output format (--format is the same option).",
        )
    fallback = f", else {default}" if default else ""
    return click.option(
        "--output-format",
        "--format",
        dest,
        type=click.Choice(list(choices)),
        default=None,
        help=f"Output format (default: from -o's suffix{fallback}; --format is the same option).",
    )


def _emit(text: str, output: str | None) -> None:
    """Standard output, or ``-o`` through ``polyfence.io.output.write_file``."""
    if output:
        out.write_file(output, text)
    else:
        click.echo(text, nl=False)


def _load(
    paths: Sequence[str], *, skip_unknown: bool = False, from_format: str | None = None
) -> api.Bundle:
    """``api.load`` plus what the user must hear about it: warnings and what was passed over."""
    bundle = _mesh_all(api.load(paths, from_format=from_format, skip_unknown=skip_unknown))
    _tell(bundle)
    return bundle


def _tell(bundle: api.Bundle, prefix: str = "") -> None:
    for warning in bundle.warnings:
        _err(f"warning: {_located(warning)}")
    for line in bundle.skip_summary():
        _err(f"note: {prefix}{line}")


def _inventory(paths: Sequence[str], skip_unknown: bool = False) -> Any:
    """The ``--inventory`` cluster; an inventory without a single endpoint is an error."""
    if not paths:
        return None
    bundle = _mesh_all(api.load(paths, skip_unknown=skip_unknown))
    _tell(bundle, "--inventory: ")
    if len(bundle.policies):
        _err(
            f"warning: --inventory: {len(bundle.policies)} policies in {', '.join(paths)} are not "
            "evaluated (inventory inputs give cluster objects; pass policies as PATHs)"
        )
    if not bundle.inventory.endpoints:
        raise InputError(
            [
                Diagnostic(
                    SourceRef(", ".join(paths)),
                    "the inventory holds no Pod, workload or endpoint "
                    f"({len(bundle.inventory.namespaces)} namespaces, "
                    f"{len(bundle.documents)} documents read)",
                )
            ]
        )
    return bundle.inventory


def basis(bundle: api.Bundle, extra: Any) -> str:
    """What a verdict was computed on, for the line that states it."""
    inv = bundle.inventory if extra is None else bundle.inventory.merge(extra)
    if not inv.endpoints:
        return "on a synthesised inventory: a representative cluster, not every cluster"
    return (
        f"on the given inventory: {len(inv.namespaces)} namespaces, {len(inv.endpoints)} endpoints"
    )


_skip_option = click.option(
    "--skip-unknown",
    is_flag=True,
    help="Go on without documents of kinds that may carry network policy but that polyfence "
    "does not read (named on stderr); without it they are an error.",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="polyfence")
def cli() -> None:
    """Translate network policy between formats through one canonical model, and check it.

    \b
    Exit codes: 0 ok, 1 crash, 2 usage error, 3 invalid input,
    4 translation refused (widening, or --exact) / policies not equivalent /
    audit findings at or above --fail-on.
    """


@cli.command()
@click.argument("paths", nargs=-1, required=True)
@click.option(
    "--from",
    "from_format",
    metavar="FMT",
    help="Force the input format (default: detect by apiVersion/kind).",
)
@click.option(
    "--to",
    "to_format",
    metavar="FMT",
    required=True,
    help="Target format: kubernetes (k8s), calico, cilium, istio, aws, canonical "
    "(see `polyfence formats`).",
)
@click.option(
    "--inventory",
    "inventory",
    multiple=True,
    metavar="PATH",
    help="Cluster objects to verify and expand on.",
)
@click.option(
    "--allow-widening", is_flag=True, help="Accept output that allows more than the source."
)
@click.option("--exact", is_flag=True, help="Refuse any loss at all.")
@click.option(
    "-o",
    "--output",
    metavar="FILE|DIR",
    help="Write here (- is standard output). An existing directory, or a path ending in /, "
    "gets one file per document: <namespace>/<Kind>-<name>, _cluster/<Kind>-<name>.",
)
@_format_option(("yaml", "json"), "yaml")
@click.option(
    "--prune",
    is_flag=True,
    help="With -o DIR: remove the files in DIR this run did not write (default: name them).",
)
@click.option(
    "--report", "report_path", metavar="FILE.json", help="Write the fidelity report as JSON."
)
@click.option(
    "--no-verify", is_flag=True, help="Skip re-reading and comparing the output with the engine."
)
@_profile_option
@_skip_option
@click.option(
    "--keep-going",
    is_flag=True,
    help="Convert the files that can be converted; name the others (exit 3 or 4 still) and "
    "write nothing for them.",
)
@_handle
def convert(
    paths: tuple[str, ...],
    from_format: str | None,
    to_format: str,
    inventory: tuple[str, ...],
    allow_widening: bool,
    exact: bool,
    output: str | None,
    output_format: str | None,
    prune: bool,
    report_path: str | None,
    no_verify: bool,
    profile_name: str,
    skip_unknown: bool,
    keep_going: bool,
) -> None:
    """Translate policies in PATHS (files, directories, - for stdin) to another format."""
    from polyfence import translators

    translators.canonical_name(to_format)
    to_dir = bool(output) and output != out.STDOUT and _is_dir_output(output or "")
    if prune and not to_dir:
        raise UsageError("--prune needs -o DIR (an existing directory or a path ending in /)")
    fmt = out.format_for(None if to_dir else output, output_format, ("yaml", "json"), "yaml")
    out.check_outputs(
        [*paths, *inventory], ("-o", output, to_dir), ("--report", report_path, False)
    )
    inv = _inventory(inventory, skip_unknown)
    profile = _profile(profile_name)

    def attempt(source: Sequence[str] | Sequence[Document]) -> tuple[Any, Any]:
        bundle = _mesh_all(api.load(source, from_format=from_format, skip_unknown=skip_unknown))
        if not len(bundle.policies):
            where = ", ".join(paths)
            raise InputError(
                [
                    Diagnostic(
                        SourceRef(where),
                        f"nothing to convert: no policy among the {len(bundle.documents)} "
                        "documents read",
                    )
                ]
            )
        result = api.convert(
            bundle,
            to_format,
            inventory=inv,
            allow_widening=allow_widening,
            exact=exact,
            verify=not no_verify,
            profile=profile,
        )
        return bundle, result

    failed: dict[str, list[str]] = {}
    try:
        if keep_going:
            bundle, result, failed = _keep_going(paths, attempt)
        else:
            bundle, result = attempt(paths)
    except LossyTranslationError as exc:
        if report_path:
            out.write_file(report_path, json.dumps(exc.report.to_dict(), indent=2) + "\n")
        raise
    _tell(bundle)
    _notes(bundle, inv, profile)
    if report_path:
        out.write_file(report_path, json.dumps(result.report.to_dict(), indent=2) + "\n")
    if to_dir and output:
        _write_directory(output, result, fmt, prune)
    else:
        _emit(dump(result.documents, fmt), output)
    counts = f"{len(bundle.policies)} policies in, {len(result.documents)} documents out, "
    _print_report(result.report, sys.stderr, counts)
    if failed:
        refused = any(reason.startswith("refused") for r in failed.values() for reason in r)
        inputs = any(not reason.startswith("refused") for r in failed.values() for reason in r)
        _err(f"--keep-going: {len(failed)} files not converted, nothing written for them:")
        for file, reasons in failed.items():
            for reason in reasons:
                _err(f"  {file}: {reason}")
        sys.exit(EXIT_INPUT if inputs or not refused else EXIT_FINDINGS)


def _keep_going(
    paths: Sequence[str], attempt: Callable[[Sequence[Document]], tuple[Any, Any]]
) -> tuple[Any, Any, dict[str, list[str]]]:
    """Convert what can be converted: files with input errors, then files whose losses make
    the translation widen (or, with --exact, change), are set aside one round at a time."""
    docs, problems = read_documents(paths)
    failed: dict[str, list[str]] = {}
    for diag in problems:
        failed.setdefault(diag.source.file or "<input>", []).append(f"error: {_located(diag)}")
    while True:
        kept = [d for d in docs if d.source.file not in failed]
        if not kept:
            raise InputError(
                [Diagnostic(SourceRef(", ".join(paths)), "no file could be converted")]
            )
        try:
            bundle, result = attempt(kept)
        except InputError as exc:
            culprits = {d.source.file for d in exc.diagnostics} & {d.source.file for d in kept}
            if not culprits or len(culprits) == len({d.source.file for d in kept}):
                if failed:
                    _report_failed(failed)
                raise
            for diag in exc.diagnostics:
                if diag.source.file in culprits:
                    failed.setdefault(str(diag.source.file), []).append(f"error: {_located(diag)}")
            continue
        except LossyTranslationError as exc:
            blamed = {
                loss.source.file
                for loss in exc.report.losses
                if loss.source is not None
                and (loss.effect is Effect.WIDENED or "--exact" in str(exc))
            } & {d.source.file for d in kept}
            if not blamed or len(blamed) == len({d.source.file for d in kept}):
                if failed:
                    _report_failed(failed)
                raise
            for loss in exc.report.losses:
                if loss.source is not None and loss.source.file in blamed:
                    failed.setdefault(str(loss.source.file), []).append(f"refused: {loss}")
            continue
        return bundle, result, failed


def _report_failed(failed: dict[str, list[str]]) -> None:
    for file, reasons in failed.items():
        for reason in reasons:
            _err(f"--keep-going: {file}: {reason}")


def _is_dir_output(output: str) -> bool:
    return Path(output).is_dir() or output.endswith(("/", os.sep))


def _write_directory(directory: str, result: api.ConversionResult, fmt: str, prune: bool) -> None:
    """One file per document, each annotated with its sources; shared names and files this
    run did not write are named on stderr (``--prune`` removes the latter)."""
    docs = [
        out.with_provenance(doc, [str(ref) for ref in dict.fromkeys(refs)])
        for doc, refs in zip(result.documents, _origins(result), strict=True)
    ]
    tree = out.write_documents(directory, docs, fmt, prune=prune)
    for name, indices in tree.shared:
        sources = "; ".join(
            f"{_identity(docs[i])} from {', '.join(map(str, _origins(result)[i])) or 'the input'}"
            for i in indices
        )
        _err(
            f"warning: {len(indices)} documents have the same kind, namespace and name, "
            f"written together to {directory.rstrip('/')}/{name} (only the last would survive "
            f"kubectl apply): {sources}"
        )
    stale = tree.result.stale
    if stale:
        shown = ", ".join(stale[:10]) + (f", … ({len(stale) - 10} more)" if len(stale) > 10 else "")
        files = f"{len(stale)} file{'s' if len(stale) > 1 else ''} in {directory}"
        if prune:
            _err(f"removed {files} not written by this run: {shown}")
        else:
            were = "were" if len(stale) > 1 else "was"
            _err(f"warning: {files} {were} not written by this run: {shown} (--prune removes them)")


def _origins(result: api.ConversionResult) -> list[tuple[SourceRef, ...]]:
    """The sources of each output document (none known: an empty tuple)."""
    known = list(result.origins)
    return known + [()] * (len(result.documents) - len(known))


def _identity(doc: Any) -> str:
    meta = doc.get("metadata") if isinstance(doc, dict) else None
    meta = meta if isinstance(meta, dict) else {}
    scope = f"{meta['namespace']}/" if meta.get("namespace") else ""
    return f"{doc.get('kind', 'document')} {scope}{meta.get('name', '')}"


@cli.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--from", "from_format", metavar="FMT", help="Force the input format.")
@_skip_option
@_handle
def validate(paths: tuple[str, ...], from_format: str | None, skip_unknown: bool) -> None:
    """Check PATHS against the format schemas and lint them; exit 3 on errors."""
    bundle = _load(paths, from_format=from_format, skip_unknown=skip_unknown)
    click.echo(
        f"ok: {len(bundle.policies)} policies, {len(bundle.inventory.endpoints)} endpoints, "
        f"{len(bundle.warnings)} warnings, {len(bundle.skipped)} documents skipped"
    )


@cli.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--src", required=True, metavar="NS/POD|IP")
@click.option("--dst", required=True, metavar="NS/POD|IP")
@click.option("--port", required=True, metavar="PORT[/PROTO]")
@click.option("--inventory", "inventory", multiple=True, metavar="PATH")
@_profile_option
@_skip_option
@_handle
def explain(
    paths: tuple[str, ...],
    src: str,
    dst: str,
    port: str,
    inventory: tuple[str, ...],
    profile_name: str,
    skip_unknown: bool,
) -> None:
    """Why is a connection allowed or denied."""
    bundle = _load(paths, skip_unknown=skip_unknown)
    extra = _inventory(inventory, skip_unknown)
    profile = _profile(profile_name)
    _notes(bundle, extra, profile)
    conn, result = api.explain(bundle, src, dst, port, inventory=extra, profile=profile)
    click.echo(f"{conn.describe()} ({basis(bundle, extra)})")
    click.echo(result.explain())


@cli.command()
@click.argument("a")
@click.argument("b")
@click.option("--inventory", "inventory", multiple=True, metavar="PATH")
@click.option(
    "--all-clusters",
    is_flag=True,
    help="With --inventory: decide on every cluster too (without it, every cluster is the default).",
)
@click.option(
    "--counterexample",
    "counterexample",
    metavar="FILE",
    help="Write the counterexample cluster (Namespaces, Pods …) as YAML here (atomically).",
)
@_format_option(("text", "json"), "text", by_suffix=False)
@_profile_option
@_skip_option
@_handle
def compare(
    a: str,
    b: str,
    inventory: tuple[str, ...],
    all_clusters: bool,
    counterexample: str | None,
    output_format: str,
    profile_name: str,
    skip_unknown: bool,
) -> None:
    """Compare the connectivity of policy sets A and B: exit 0 equivalent (and decided), 4 otherwise.

    Without --inventory the verdict holds for every cluster, and a difference comes with a
    counterexample cluster; with --inventory it holds for that cluster.
    """
    result = api.compare(
        _load([a], skip_unknown=skip_unknown),
        _load([b], skip_unknown=skip_unknown),
        inventory=_inventory(inventory, skip_unknown),
        profile=_profile(profile_name),
        all_clusters=True if all_clusters else None,
    )
    cex = result.counterexample
    if counterexample is not None and cex is not None:
        from polyfence.io.files import write_atomic

        write_atomic(counterexample, cex.yaml())
    if output_format == "json":
        click.echo(json.dumps({**result.to_dict(), "profile": profile_name}, indent=2))
    else:
        _print_comparison(result, profile_name, counterexample is None)
    failed = result.relation is not api.Relation.EQUIVALENT or not result.decided
    if result.given is not None:
        failed = failed or result.given.relation is not api.Relation.EQUIVALENT
    if failed:
        sys.exit(EXIT_FINDINGS)


def _print_comparison(result: Any, profile_name: str, with_yaml: bool) -> None:
    """The verdict with its basis first, then witnesses and (every cluster) the cluster YAML."""
    click.echo(result.headline())
    basis = result.basis
    if basis is not None and basis.method == "symbolic":
        how = "decided symbolically (BDDs over one connection's facts)"
    elif basis is not None and basis.method is not None:
        how = f"{result.pairs_compared} endpoint-class pairs of a universal inventory compared"
    else:
        how = f"{result.pairs_compared} endpoint-class pairs compared"
    click.echo(f"  profile: {profile_name}; {how}")
    if result.counterexamples:
        for cex in result.counterexamples:
            click.echo(f"  witness: {cex.witness}")
    else:
        for w in result.witnesses:
            click.echo(f"  witness: {w}")
    if result.given is not None:
        click.echo(result.given.headline())
        for w in result.given.witnesses:
            click.echo(f"  witness: {w}")
    if with_yaml:
        for cex in result.counterexamples:
            click.echo(cex.yaml().rstrip("\n"))


@cli.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--inventory", "inventory", multiple=True, metavar="PATH")
@_format_option(_CONNECTIVITY_FORMATS, "text")
@_output_option()
@_profile_option
@_skip_option
@_handle
def connectivity(
    paths: tuple[str, ...],
    inventory: tuple[str, ...],
    output_format: str | None,
    output: str | None,
    profile_name: str,
    skip_unknown: bool,
) -> None:
    """Every allowed connection between endpoints (and external address blocks)."""
    output_format = out.format_for(output, output_format, _CONNECTIVITY_FORMATS, "text")
    out.check_outputs([*paths, *inventory], ("-o", output, False))
    bundle = _load(paths, skip_unknown=skip_unknown)
    extra = _inventory(inventory, skip_unknown)
    profile = _profile(profile_name)
    _notes(bundle, extra, profile)
    conn = api.connectivity(bundle, inventory=extra, profile=profile)
    from polyfence.semantics.connset import FULL

    on = basis(bundle, extra)
    _err(f"connectivity {on}")
    rows = [(s, d, c.by_protocol(), c == FULL) for s, d, c in conn.endpoint_pairs()]
    buf = io.StringIO()
    if output_format == "json":
        json.dump(
            {
                "basis": on,
                "connections": [{"src": s, "dst": d, "allowed": a} for s, d, a, _ in rows],
            },
            buf,
            indent=2,
        )
        buf.write("\n")
    elif output_format == "csv":
        writer = csv.writer(buf)
        writer.writerow(["src", "dst", "protocol", "ports"])
        for s, d, a, _ in rows:
            for proto, ports in a.items():
                if ports:
                    writer.writerow([s, d, proto, ports])
    elif output_format == "dot":
        buf.write(f"// connectivity {on}\ndigraph connectivity {{\n")
        for s, d, a, everything in rows:
            label = "all" if everything else "; ".join(f"{p} {v}" for p, v in a.items() if v)
            buf.write(f'  "{s}" -> "{d}" [label="{label}"];\n')
        buf.write("}\n")
    else:
        buf.write(f"# connectivity {on}\n")
        for s, d, a, everything in rows:
            shown = (
                "all traffic" if everything else ", ".join(f"{p} {v}" for p, v in a.items() if v)
            )
            buf.write(f"{s} -> {d}: {shown}\n")
    _emit(buf.getvalue(), output)


@cli.command()
def formats() -> None:
    """The capability matrix: formats, directions, and how each feature maps."""
    from rich.console import Console
    from rich.table import Table

    from polyfence import translators

    console = Console()
    summary = Table(title="polyfence formats")
    for column in ("format", "aliases", "read", "write"):
        summary.add_column(column)
    for name in translators.names():
        tr = translators.get(name)
        summary.add_row(name, ", ".join(tr.aliases), "yes", "yes")
    console.print(summary)
    for name in translators.names():
        table = Table(title=f"{name}: how each construct maps")
        table.add_column("feature")
        table.add_column("mapping")
        for feature, mapping in translators.get(name).capabilities.items():
            table.add_row(feature, mapping)
        console.print(table)


_SEVERITIES = ("critical", "high", "medium", "low", "info")
_REPORT_FORMATS = ("html", "md", "json", "sarif", "junit", "csv")


def _emit_report(report: Any, fmt: str, output: str | None) -> None:
    _emit(report.render(fmt), output)


def _gate(report: Any, fail_on: str | None, quiet: bool) -> None:
    from polyfence.compliance.model import Severity

    summary = report.data["summary"]
    checks = summary["checks"]
    if not quiet:
        sev = ", ".join(f"{n} {s}" for s, n in summary["by_severity"].items() if n)
        counts = (report.data.get("scope") or {}).get("counts") or {}
        on = ", ".join(
            f"{counts[key]} {key if counts[key] != 1 else key[:-1]}"
            for key in ("namespaces", "workloads", "nodes")
            if key in counts
        )
        _err(
            f"audit on the given snapshot ({on or 'no cluster objects'}): "
            f"{checks['fail']} checks failed, {checks['unknown']} unknown, "
            f"{checks['pass']} passed; open findings: {sev or 'none'}"
            + (f"; {summary['waived']} waived" if summary["waived"] else "")
        )
    if fail_on:
        failing = report.failing(Severity.parse(fail_on))
        if failing:
            if not quiet:
                _err(f"{len(failing)} unwaived findings at or above {fail_on} (--fail-on)")
            sys.exit(EXIT_FINDINGS)


@cli.command()
@click.argument("paths", nargs=-1)
@click.option(
    "--framework",
    "frameworks",
    metavar="ID[,ID…]",
    help="Frameworks to evaluate (default: all): cis-kubernetes, cis-eks, cis-gke, cis-aks, "
    "nsa-cisa, pci-dss-4, nist-800-53, nist-800-190, soc2, iso-27001, cis-aws.",
)
@click.option("--config", "config", metavar="FILE", help="Audit config: zones, flows, waivers …")
@click.option("--inventory", "inventory", multiple=True, metavar="PATH")
@_format_option(_REPORT_FORMATS, "md", "fmt")
@_output_option(what="the report")
@click.option(
    "--fail-on",
    type=click.Choice(_SEVERITIES),
    help="Exit 4 when unwaived findings at or above this severity exist (default: never).",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress or summary on stderr (CI).")
@click.option(
    "--live",
    is_flag=True,
    help="Read the cluster through the Kubernetes API (read-only; needs polyfence[kubernetes]), "
    "instead of or besides PATHs.",
)
@click.option(
    "--kubeconfig", metavar="FILE", help="With --live (default: $KUBECONFIG, ~/.kube/config)."
)
@click.option(
    "--context", metavar="NAME", help="With --live: kubeconfig context (default: current)."
)
@click.option(
    "--in-cluster", is_flag=True, help="With --live: use the pod's service account (in a pod)."
)
@click.option(
    "--namespace",
    "namespaces",
    multiple=True,
    metavar="NS",
    help="With --live: read only these namespaces (cluster-scoped kinds are read whole).",
)
@click.option(
    "--save-snapshot",
    metavar="FILE",
    help="With --live: write what was read as one YAML file, to keep and re-audit offline.",
)
@_profile_option
@_skip_option
@_handle
def audit(
    paths: tuple[str, ...],
    frameworks: str | None,
    config: str | None,
    inventory: tuple[str, ...],
    fmt: str | None,
    output: str | None,
    fail_on: str | None,
    quiet: bool,
    live: bool,
    kubeconfig: str | None,
    context: str | None,
    in_cluster: bool,
    namespaces: tuple[str, ...],
    save_snapshot: str | None,
    profile_name: str,
    skip_unknown: bool,
) -> None:
    """Audit a cluster snapshot (PATHs, any mix of formats) or a live cluster (--live)."""
    live_only = {
        "--kubeconfig": kubeconfig,
        "--context": context,
        "--in-cluster": in_cluster,
        "--namespace": namespaces,
        "--save-snapshot": save_snapshot,
    }
    if not live:
        given = [name for name, value in live_only.items() if value]
        if given:
            raise UsageError(f"{', '.join(given)} need{'s' if len(given) == 1 else ''} --live")
        if not paths:
            raise UsageError("nothing to audit: give snapshot PATHs, --live, or both")
    fmt = out.format_for(output, fmt, _REPORT_FORMATS, "md")
    out.check_outputs(
        [*paths, *inventory, *(p for p in (config, kubeconfig) if p)],
        ("-o", output, False),
        ("--save-snapshot", save_snapshot, False),
    )
    ids = frameworks.split(",") if frameworks else None
    source: Any = _load(paths, skip_unknown=skip_unknown) if paths and not live else paths
    inputs: list[str] | None = list(paths) if paths and not live else None
    read: Any = None
    if live:
        read = api.read_cluster(
            kubeconfig=kubeconfig,
            context=context,
            in_cluster=in_cluster,
            namespaces=namespaces or None,
        )
        if not quiet:
            for note in read.notes():
                _err(note)
        documents = [*load_documents(paths), *read.documents] if paths else list(read.documents)
        source = api.load(documents, skip_unknown=skip_unknown)
        _tell(source)
        inputs = [*paths, read.label]
    progress_cb = None
    bar: Any = None
    if not quiet and sys.stderr.isatty():
        from rich.progress import Progress

        bar = Progress(transient=True)
        task = bar.add_task("auditing", total=None)
        bar.start()

        def progress_cb(check_id: str, done: int, total: int) -> None:
            bar.update(task, total=total, completed=done, description=check_id or "report")

    try:
        report = api.audit(
            source,
            frameworks=ids,
            config=config,
            inventory=_inventory(inventory, skip_unknown),
            profile=profile_name,
            host_network=_host_network(),
            progress=progress_cb,
            inputs=inputs,
        )
    finally:
        if bar is not None:
            bar.stop()
    if save_snapshot and read is not None:
        out.write_file(save_snapshot, read.snapshot_text())
    _emit_report(report, fmt, output)
    _gate(report, fail_on, quiet)


@cli.command()
@click.argument("report_path", metavar="REPORT.json")
@_format_option(_REPORT_FORMATS, None, "fmt")
@_output_option(what="the report")
@click.option("--fail-on", type=click.Choice(_SEVERITIES))
@_handle
def report(report_path: str, fmt: str | None, output: str | None, fail_on: str | None) -> None:
    """Re-render a saved JSON report in another format (--output-format, or -o's suffix)."""
    chosen = out.format_for(output, fmt, _REPORT_FORMATS, "")
    if not chosen:
        raise UsageError(
            f"say which format: --output-format {'|'.join(_REPORT_FORMATS)} "
            "(or -o FILE with one of their suffixes)"
        )
    out.check_outputs([report_path], ("-o", output, False))
    from polyfence.compliance.audit import Report, validate_report

    docs = load_documents([report_path])
    if len(docs) != 1:
        raise InputError([Diagnostic(SourceRef(report_path), "a report is one JSON document")])
    data = docs[0].data
    validate_report(data, docs[0].source)
    saved = Report(data)
    _emit_report(saved, chosen, output)
    _gate(saved, fail_on, quiet=True)


cli.add_command(aws_group)


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point."""
    try:
        cli.main(
            args=list(argv) if argv is not None else None,
            prog_name="polyfence",
            standalone_mode=True,
        )
    except KeyboardInterrupt:  # pragma: no cover
        sys.exit(130)


if __name__ == "__main__":  # pragma: no cover
    main()
