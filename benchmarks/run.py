#!/usr/bin/env python3
"""polyfence benchmarks: convert throughput, connectivity time/memory, compare.

    python benchmarks/run.py                 # full run (a few minutes on 2 cores)
    python benchmarks/run.py --quick         # smoke test, well under 20 s
    python benchmarks/run.py --json out.json # also write every measurement as JSON

Inputs come from ``generate.py`` (deterministic for a seed) and are written to a work directory
(a temporary one unless ``--workdir`` is given). Every case runs in a fresh subprocess, twice:
once untraced for wall times and the ``ru_maxrss`` growth, once under ``tracemalloc`` for the
Python-heap peaks (tracemalloc slows allocation-heavy code 2-4x, so its times are not used).
Output is one line per measurement: case, measurement, value, unit. See README.md.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULT_MARK = "@@RESULT "

# (pods, policies, namespaces) per dataset
FULL = {
    "convert": (200, 5000, 20),
    "conn-small": (2000, 500, 20),
    "conn-large": (10000, 2000, 50),
    "every-100": (500, 100, 10),
    "every-1000": (5000, 1000, 40),
    "every-5000": (10000, 5000, 50),
}
QUICK = {
    "convert": (50, 500, 8),
    "conn-small": (300, 60, 8),
    "conn-large": (1000, 200, 12),
    "every-100": (500, 100, 10),
}
# (case kind, dataset) in run order
CASES = (
    ("convert", "convert"),
    ("connectivity", "conn-small"),
    ("connectivity", "conn-large"),
    ("compare", "conn-large"),
    ("audit", "conn-large"),
    ("mesh", "conn-large"),
    ("every-cluster", "every-100"),
    ("every-cluster", "every-1000"),
    ("every-cluster", "every-5000"),
)


# --------------------------------------------------------------------------- child side


class _Recorder:
    """Runs phases, timing them (untraced mode) or taking their tracemalloc peak (traced mode)."""

    def __init__(self, traced: bool) -> None:
        self.traced = traced
        self.rows: list[dict[str, Any]] = []
        self.peak = 0
        if traced:
            import tracemalloc

            self._tm = tracemalloc
            tracemalloc.start()
        self.rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    def add(self, metric: str, value: Any, unit: str) -> None:
        self.rows.append({"metric": metric, "value": value, "unit": unit})

    def phase(self, name: str, fn: Callable[[], Any]) -> Any:
        if self.traced:
            self._tm.reset_peak()
            before = self._tm.get_traced_memory()[0]
            result = fn()
            peak = self._tm.get_traced_memory()[1]
            self.peak = max(self.peak, peak)
            self.add(f"{name}: tracemalloc peak (whole heap)", peak / 2**20, "MiB")
            self.add(f"{name}: tracemalloc peak - phase start", (peak - before) / 2**20, "MiB")
            return result
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        start = time.perf_counter()
        result = fn()
        took = time.perf_counter() - start
        self.add(f"{name}: time", took, "s")
        grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss
        self.add(f"{name}: ru_maxrss growth", grown / 1024, "MiB")
        self.rows[-2]["_seconds"] = took
        return result

    def seconds(self, name: str) -> float | None:
        for row in self.rows:
            if row["metric"] == f"{name}: time":
                return float(row["value"])
        return None

    def finish(self) -> list[dict[str, Any]]:
        if self.traced:
            self.add("case: tracemalloc peak (max over phases)", self.peak / 2**20, "MiB")
            self._tm.stop()
        else:
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            self.add("case: ru_maxrss delta (end - after imports)", (rss - self.rss0) / 1024, "MiB")
            self.add("case: ru_maxrss peak (whole process)", rss / 1024, "MiB")
        for row in self.rows:
            row.pop("_seconds", None)
        return self.rows


def _read(path: Path) -> list[Any]:
    from polyfence.io.files import parse_text

    return parse_text(path.read_text(encoding="utf-8"), str(path))


def _rate(rec: _Recorder, phase: str, count: int, unit: str) -> None:
    took = rec.seconds(phase)
    if took:
        rec.add(f"{phase}: throughput", count / took, unit)


def case_convert(data: Path, rec: _Recorder) -> None:
    from polyfence import api

    pdocs = rec.phase("parse policies.yaml", lambda: _read(data / "policies.yaml"))
    cdocs = rec.phase("parse cluster.yaml", lambda: _read(data / "cluster.yaml"))
    n = len(pdocs)
    rec.add("policies", n, "policies")
    _rate(rec, "parse policies.yaml", n, "policies/s")
    bundle = rec.phase("api.load (schema, IR, inventory)", lambda: api.load([*pdocs, *cdocs]))
    _rate(rec, "api.load (schema, IR, inventory)", n, "policies/s")
    rec.add("inventory pods", len(bundle.inventory.pods), "pods")
    res = rec.phase(
        "convert k8s->k8s verify=False", lambda: api.convert(bundle, "kubernetes", verify=False)
    )
    _rate(rec, "convert k8s->k8s verify=False", n, "policies/s")
    rec.add("convert output documents", len(res.documents), "documents")
    res = rec.phase(
        "convert k8s->k8s verify=True", lambda: api.convert(bundle, "kubernetes", verify=True)
    )
    _rate(rec, "convert k8s->k8s verify=True", n, "policies/s")
    ver = res.report.verification
    rec.add("verify relation", getattr(ver, "relation", str(ver)), "")
    res = rec.phase(
        "convert k8s->cilium verify=True", lambda: api.convert(bundle, "cilium", verify=True)
    )
    _rate(rec, "convert k8s->cilium verify=True", n, "policies/s")
    ver = res.report.verification
    rec.add("cilium verify relation", getattr(ver, "relation", str(ver)), "")
    # The same set as Calico under a security tier that denies, passes and drops the rest:
    # Cilium has no order or tiers, so every later rule is cut to what that tier passes.
    from polyfence.model.document import Document
    from polyfence.model.provenance import SourceRef

    written = api.convert(bundle, "calico", verify=False).documents
    calico = [Document(d, SourceRef("calico.yaml", i)) for i, d in enumerate(written)]
    tiered = rec.phase(
        "api.load Calico tiered",
        lambda: api.load([*_tiered_docs(), *calico, *cdocs]),
    )
    res = rec.phase(
        "convert calico-tiered->cilium verify=True",
        lambda: api.convert(tiered, "cilium", verify=True, allow_widening=True),
    )
    _rate(rec, "convert calico-tiered->cilium verify=True", n, "policies/s")
    ver = res.report.verification
    rec.add("calico-tiered verify relation", getattr(ver, "relation", str(ver)), "")
    lossy = [loss for loss in res.report.losses if loss.effect.value != "none"]
    rec.add("calico-tiered rules reported (not exact)", len(lossy), "losses")


SECURITY_TIER = """
apiVersion: projectcalico.org/v3
kind: Tier
metadata: {name: security}
spec: {order: 100}
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: security.quarantine}
spec:
  tier: security
  order: 10
  selector: all()
  types: [Ingress, Egress]
  ingress:
  - {action: Deny, source: {namespaceSelector: quarantine == 'true'}}
  - {action: Pass, source: {selector: has(app)}}
  - {action: Pass, source: {nets: [10.0.0.0/8]}}
  egress:
  - {action: Deny, protocol: TCP, destination: {ports: [25]}}
  - {action: Pass}
"""


def _tiered_docs() -> list[Any]:
    from polyfence.io.files import parse_text

    return parse_text(SECURITY_TIER, "security-tier.yaml")


def _conn_inputs(data: Path, rec: _Recorder) -> tuple[Any, Any]:
    from polyfence import translators
    from polyfence.inventory import inventory_from_documents

    cdocs = rec.phase("parse cluster.yaml", lambda: _read(data / "cluster.yaml"))
    inv = rec.phase("build inventory", lambda: inventory_from_documents(cdocs))
    pdocs = rec.phase("parse policies.yaml", lambda: _read(data / "policies.yaml"))
    ps = rec.phase(
        "read policies to IR", lambda: translators.get("kubernetes").to_canonical(pdocs).value
    )
    if not rec.traced:
        rec.add(
            "load inventory (parse + build)",
            (rec.seconds("parse cluster.yaml") or 0) + (rec.seconds("build inventory") or 0),
            "s",
        )
    rec.add("pods", len(inv.pods), "pods")
    rec.add("policies", len(pdocs), "policies")
    return inv, ps


def case_connectivity(data: Path, rec: _Recorder) -> None:
    from polyfence.semantics.engine import Connectivity, Universe

    inv, ps = _conn_inputs(data, rec)
    universe = rec.phase("Universe (endpoint classes)", lambda: Universe(inv, [ps]))
    conn = rec.phase("Connectivity() (rule rows)", lambda: Connectivity(universe, ps))
    matrix = rec.phase("matrix() (all class pairs)", conn.matrix)
    if not rec.traced:
        rec.add(
            "connectivity total (Universe + Connectivity + matrix)",
            sum(
                rec.seconds(p) or 0
                for p in (
                    "Universe (endpoint classes)",
                    "Connectivity() (rule rows)",
                    "matrix() (all class pairs)",
                )
            ),
            "s",
        )
    classes = universe.classes
    endpoint_classes = universe.endpoint_count
    rec.add("endpoint classes (pods/nodes)", endpoint_classes, "classes")
    rec.add("external address atoms", universe.size - endpoint_classes, "classes")
    rec.add("class pairs evaluated", sum(1 for _ in conn.class_pairs()), "pairs")
    rec.add("allowed class pairs", len(matrix), "pairs")
    pod_pairs = 0
    for s, d in matrix:
        cs, cd = classes[s], classes[d]
        if cs.is_pod and cd.is_pod:
            ns, nd = len(cs.members), len(cd.members)
            pod_pairs += ns * (nd - 1) if s == d else ns * nd
    pods = len(inv.pods)
    rec.add("allowed pod->pod pairs (expanded)", pod_pairs, "pairs")
    if pods > 1:
        rec.add("allowed pod->pod pairs share", 100.0 * pod_pairs / (pods * (pods - 1)), "%")


def case_compare(data: Path, rec: _Recorder) -> None:
    from polyfence import api
    from polyfence.io.files import dump, parse_text

    docs = rec.phase(
        "parse cluster.yaml + policies.yaml",
        lambda: _read(data / "cluster.yaml") + _read(data / "policies.yaml"),
    )
    bundle = rec.phase("api.load (schema, IR, inventory)", lambda: api.load(docs))
    res = rec.phase(
        "convert k8s->k8s verify=False", lambda: api.convert(bundle, "kubernetes", verify=False)
    )

    def reread() -> Any:
        return api.load(parse_text(dump(res.documents, "yaml"), "converted.yaml")).policies

    back = rec.phase("dump converted YAML + re-read", reread)
    cmp = rec.phase("compare(original, converted)", lambda: api.compare(bundle, back))
    rec.add("pods", len(bundle.inventory.pods), "pods")
    rec.add("policies", sum(1 for _ in bundle.policies), "policies")
    rec.add("relation", cmp.relation.value, "")
    rec.add("class pairs compared", cmp.pairs_compared, "pairs")


def case_every_cluster(data: Path, rec: _Recorder) -> None:
    """Issue 15: compare on every cluster (symbolic, BDDs) next to compare on the inventory,
    against a reformulated twin (k8s -> Calico, read back) and a twin missing one policy."""
    from polyfence import api
    from polyfence.io.files import dump, parse_text
    from polyfence.semantics.compare import compare_every_cluster

    bundle = rec.phase(
        "api.load (policies + cluster)",
        lambda: api.load([str(data / "policies.yaml"), str(data / "cluster.yaml")]),
    )
    res = api.convert(bundle, "calico", verify=False)
    twin = api.load(parse_text(dump(res.documents, "yaml"), "calico.yaml")).policies
    given = rec.phase(
        "compare vs Calico twin on the given inventory",
        lambda: api.compare(bundle.policies, twin, inventory=bundle.inventory),
    )
    every = rec.phase(
        "compare vs Calico twin on every cluster (symbolic)",
        lambda: compare_every_cluster(bundle.policies, twin),
    )
    short = twin.with_policies(twin.policies[:-1])
    missing = rec.phase(
        "compare vs twin missing one policy, every cluster + counterexample",
        lambda: compare_every_cluster(bundle.policies, short),
    )
    rec.add("pods", len(bundle.inventory.pods), "pods")
    rec.add("policies", sum(1 for _ in bundle.policies), "policies")
    rec.add("relation on the given inventory", given.relation.value, "")
    rec.add("relation on every cluster", every.relation.value, "")
    rec.add("basis method", every.basis.method if every.basis else "", "")
    rec.add("relation, one policy missing", missing.relation.value, "")
    rec.add("counterexamples, one policy missing", len(missing.counterexamples), "clusters")
    if len(bundle.policies.policies) <= LAYER_ROWS_UP_TO:
        _every_cluster_layers(bundle, rec)


LAYER_ROWS_UP_TO = 1000  # the mesh and cloud rows (translation time grows past that)


def _every_cluster_layers(bundle: Any, rec: _Recorder) -> None:
    """The mesh and cloud layers on every cluster: the policies translated to Istio
    AuthorizationPolicies and to AWS security groups with SecurityGroupPolicies (widening
    allowed, read back), compared with their Kubernetes source (what ``convert``'s
    verification decides) and with themselves missing one policy."""
    from polyfence import api
    from polyfence.io.files import dump, parse_text
    from polyfence.semantics.compare import compare_every_cluster
    from polyfence.semantics.profile import PROFILES

    for fmt, profile in (("istio", PROFILES["kubernetes"]), ("aws", PROFILES["aws"])):
        res = api.convert(bundle, fmt, verify=False, allow_widening=True)
        layer = api.load(parse_text(dump(res.documents, "yaml"), f"{fmt}.yaml")).policies
        rec.add(f"{fmt}: policies read back", len(layer.policies), "policies")
        source = rec.phase(
            f"{fmt}: compare with the Kubernetes source on every cluster (symbolic)",
            lambda layer=layer, profile=profile: compare_every_cluster(
                bundle.policies, layer, profile
            ),
        )
        short = layer.with_policies(layer.policies[:-1])
        cut = rec.phase(
            f"{fmt}: compare with itself missing one policy, every cluster + counterexample",
            lambda layer=layer, short=short, profile=profile: compare_every_cluster(
                layer, short, profile
            ),
        )
        rec.add(f"{fmt}: relation to the source", source.relation.value, "")
        rec.add(f"{fmt}: basis method", source.basis.method if source.basis else "", "")
        rec.add(f"{fmt}: relation, one policy missing", cut.relation.value, "")


def case_audit(data: Path, rec: _Recorder) -> None:
    """Every framework on the whole cluster, with zones on half of the namespaces."""
    from polyfence import api
    from polyfence.compliance.config import parse_config
    from polyfence.model.provenance import SourceRef

    bundle = rec.phase(
        "api.load (policies + cluster)",
        lambda: api.load([str(data / "policies.yaml"), str(data / "cluster.yaml")]),
    )
    namespaces = sorted({p.namespace for p in bundle.inventory.pods if p.namespace})
    config = parse_config(
        {
            "zones": [
                {"name": "restricted", "namespaces": namespaces[: len(namespaces) // 2]},
                {"name": "cde", "namespaces": namespaces[-2:], "sensitive": True},
            ],
            "forbidden_flows": [{"from": "*", "to": "zone:cde", "except": [f"{namespaces[0]}/*"]}],
            "approved_flows": [{"from": "zone:restricted", "to": "zone:restricted"}],
        },
        SourceRef("audit.yaml"),
    )
    rec.add("pods", len(bundle.inventory.pods), "pods")
    rec.add("policies", len(bundle.policies.policies), "policies")
    report = rec.phase("api.audit (all frameworks)", lambda: api.audit(bundle, config=config))
    summary = report.data["summary"]
    rec.add("checks failed", summary["checks"]["fail"], "checks")
    rec.add("findings", sum(len(c["findings"]) for c in report.data["checks"]), "findings")
    for fmt in ("json", "html", "sarif"):
        text = rec.phase(f"render {fmt}", lambda fmt=fmt: report.render(fmt))
        rec.add(f"{fmt} size", len(text) / 2**20, "MiB")


def case_mesh(data: Path, rec: _Recorder) -> None:
    """Every pod in an Istio mesh (half the namespaces STRICT): Kubernetes -> Istio with the
    engine's verification, then the connectivity of the Istio policies alone."""
    from dataclasses import replace

    from polyfence import api
    from polyfence.inventory import build_inventory
    from polyfence.semantics.engine import Connectivity, Universe

    bundle = rec.phase(
        "api.load (policies + cluster)",
        lambda: api.load([str(data / "policies.yaml"), str(data / "cluster.yaml")]),
    )
    inv = bundle.inventory
    namespaces = sorted({p.namespace or "" for p in inv.pods})
    strict = set(namespaces[::2])
    mesh = build_inventory(
        inv.namespaces,
        [
            replace(ep, mesh=True, mtls="STRICT" if ep.namespace in strict else "PERMISSIVE")
            if ep.is_pod
            else ep
            for ep in inv.endpoints
        ],
        inv.services,
        inv.service_account_labels,
        inv.external,
    )
    meshed = replace(bundle, inventory=mesh)
    rec.add("pods", len(mesh.pods), "pods")
    rec.add("policies", len(bundle.policies.policies), "policies")
    result = rec.phase(
        "convert k8s->istio (render + verify)",
        lambda: api.convert(meshed, "istio", allow_widening=True),
    )
    rec.add("AuthorizationPolicies written", len(result.documents), "documents")
    rec.add("losses reported", len(result.report.losses), "losses")
    universe = rec.phase("Universe (mesh classes)", lambda: Universe(mesh, [result.policies]))
    conn = rec.phase("Connectivity() (mesh layer)", lambda: Connectivity(universe, result.policies))
    matrix = rec.phase("matrix() (all class pairs)", conn.matrix)
    rec.add("allowed class pairs", len(matrix), "pairs")


CASE_FUNCS = {
    "mesh": case_mesh,
    "convert": case_convert,
    "connectivity": case_connectivity,
    "compare": case_compare,
    "audit": case_audit,
    "every-cluster": case_every_cluster,
}


def child(kind: str, data: Path, traced: bool) -> int:
    import polyfence.api  # imports before the RSS baseline
    import polyfence.semantics.engine  # noqa: F401
    from polyfence import translators

    translators.get("kubernetes")
    rec = _Recorder(traced)
    CASE_FUNCS[kind](data, rec)
    print(RESULT_MARK + json.dumps(rec.finish()), flush=True)
    return 0


# --------------------------------------------------------------------------- parent side


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if value == 0:
            return "0"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        if abs(value) >= 1:
            return f"{value:.2f}"
        return f"{value:.3f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _line(case: str, metric: str, value: Any, unit: str) -> str:
    return f"{case:<27} {metric:<66} {_fmt(value):>11} {unit}".rstrip()


def _run_child(kind: str, data: Path, traced: bool, timeout: float) -> list[dict[str, Any]]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", kind, "--data", str(data)]
    if traced:
        cmd.append("--traced")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    for line in proc.stdout.splitlines():
        if line.startswith(RESULT_MARK):
            return json.loads(line[len(RESULT_MARK) :])  # type: ignore[no-any-return]
    raise RuntimeError(f"{kind} on {data} failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, a smoke test (< 20 s)")
    ap.add_argument("--json", metavar="FILE", help="also write all measurements as JSON")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument(
        "--workdir", help="where generated inputs go (default: a temporary directory, removed)"
    )
    ap.add_argument(
        "--no-trace", action="store_true", help="skip the tracemalloc re-run of each case"
    )
    ap.add_argument("--timeout", type=float, default=3600, help="seconds per case subprocess")
    ap.add_argument("--child", choices=sorted(CASE_FUNCS), help=argparse.SUPPRESS)
    ap.add_argument("--data", help=argparse.SUPPRESS)
    ap.add_argument("--traced", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        return child(args.child, Path(args.data), args.traced)

    sizes = QUICK if args.quick else FULL
    meta = {
        "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "seed": args.seed,
        "mode": "quick" if args.quick else "full",
        "sizes": {
            k: {"pods": p, "policies": n, "namespaces": ns} for k, (p, n, ns) in sizes.items()
        },
    }
    print(
        f"# polyfence benchmarks ({meta['mode']}) {meta['date']}  python {meta['python']}  {meta['cpus']} CPUs  {meta['platform']}"
    )
    rows: list[dict[str, Any]] = []

    def emit(case: str, metric: str, value: Any, unit: str) -> None:
        rows.append({"case": case, "metric": metric, "value": value, "unit": unit})
        print(_line(case, metric, value, unit), flush=True)

    tmp = None
    if args.workdir:
        work = Path(args.workdir)
        work.mkdir(parents=True, exist_ok=True)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="polyfence-bench-")
        work = Path(tmp.name)
    failed = 0
    try:
        dirs: dict[str, Path] = {}
        for name, (pods, pols, nss) in sizes.items():
            out = work / f"{name}-{pods}p-{pols}pol-s{args.seed}"
            # In a subprocess: this parent stays small, because a child started by fork/exec
            # inherits the parent's high-water RSS in ru_maxrss (Linux keeps it across exec).
            cmd = [
                sys.executable,
                str(HERE / "generate.py"),
                "--pods",
                str(pods),
                "--policies",
                str(pols),
                "--namespaces",
                str(nss),
                "--seed",
                str(args.seed),
                "-o",
                str(out),
            ]
            start = time.perf_counter()
            subprocess.run(cmd, check=True, capture_output=True, timeout=args.timeout)
            took = time.perf_counter() - start
            cpath, ppath = out / "cluster.yaml", out / "policies.yaml"
            label = f"generate {pods}p/{pols}pol"
            emit(label, f"generate + write YAML ({nss} namespaces, incl. start-up)", took, "s")
            emit(label, "cluster.yaml size", cpath.stat().st_size / 2**20, "MiB")
            emit(label, "policies.yaml size", ppath.stat().st_size / 2**20, "MiB")
            dirs[name] = out
        for kind, dataset in CASES:
            if dataset not in sizes:
                continue  # --quick runs the every-cluster case at 100 policies only
            pods, pols, _ = sizes[dataset]
            label = f"{kind} {pols}pol" if kind == "convert" else f"{kind} {pods}p/{pols}pol"
            passes = [False] if args.no_trace else [False, True]
            for traced in passes:
                try:
                    results = _run_child(kind, dirs[dataset], traced, args.timeout)
                except (RuntimeError, subprocess.TimeoutExpired) as exc:
                    failed += 1
                    emit(
                        label,
                        "FAILED" + (" (traced run)" if traced else ""),
                        str(exc).splitlines()[0],
                        "",
                    )
                    print(str(exc), file=sys.stderr)
                    continue
                for row in results:
                    if traced and "tracemalloc" not in row["metric"]:
                        continue  # counts were printed by the untraced run
                    emit(label, row["metric"], row["value"], row["unit"])
    finally:
        if tmp is not None:
            tmp.cleanup()
    meta["parent_ru_maxrss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if args.json:
        Path(args.json).write_text(
            json.dumps({"meta": meta, "measurements": rows}, indent=2) + "\n", encoding="utf-8"
        )
        print(f"# wrote {args.json}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
