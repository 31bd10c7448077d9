"""Differential test: polyfence's Istio output vs its Kubernetes source, judged by IBM's NCA.

NCA models Istio AuthorizationPolicy as TCP-only and ingress-only, with every pod in the mesh
and every connection mutually authenticated. So for each file of tests/data/corpus/k8s the
comparison is on TCP ingress: the source's egress is removed, polyfence converts the rest to
Istio on a topology in which every pod is in the mesh and pods with the same labels share a
service account, and NCA's TCP connectivity of the Istio output must equal NCA's TCP
connectivity of the (ingress-only) source, pod pair by pod pair and address range by range.

A second, independent check: polyfence's own engine, evaluating the same Istio output on the
same topology, must agree with NCA's reading of it.

Inventory-dependent expansions (service accounts, namespaces by label) are exact on the
topology they were made for, so those files must be equivalent too; a file whose conversion
reports a widening or narrowing loss on TCP ingress must show NCA a difference. NCA must also
see the source restrict something whenever it isolates a pod, so no comparison is vacuous.
"""

from __future__ import annotations

import copy
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
import yaml

import polyfence
from polyfence.fidelity import Effect, Feature
from polyfence.inventory import inventory_from_documents
from polyfence.model.document import Document
from polyfence.model.provenance import SourceRef
from polyfence.semantics.engine import connectivity
from polyfence.semantics.intervals import IntervalSet, IPSet
from polyfence.semantics.matching import TCP_CONNS
from polyfence.semantics.profile import EvaluationProfile

from .nca_support import (
    CORPUS,
    build_topology,
    corpus_names,
    dump_yaml,
    network_policies,
    restricts_traffic,
    run_nca,
    show,
    source_for_nca,
)

# Losses that do not touch what NCA compares (TCP ingress between pods and addresses).
_OFF_TOPIC = {Feature.EGRESS, Feature.PROTOCOL, Feature.LAYER, Feature.METADATA}
_LINE = re.compile(r"^(\S+) => (\S+) : (.+)$")
_RANGE = re.compile(r"^[0-9a-fA-F.:]+-[0-9a-fA-F.:]+$")
ALL_TCP = IntervalSet.span(1, 65535)


def _ingress_only(policies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for pol in policies:
        pol = copy.deepcopy(pol)
        spec = pol.setdefault("spec", {})
        spec.pop("egress", None)
        types = spec.get("policyTypes")
        if types is not None:
            spec["policyTypes"] = [t for t in types if t != "Egress"]
            if not spec["policyTypes"]:
                continue
        out.append(pol)
    return out


def _meshed(topo: dict[str, Any]) -> dict[str, Any]:
    """Every namespace injected, one service account per label set (pods p3-0 and p3-1 share)."""
    doc = copy.deepcopy(topo["doc"])
    for item in doc["items"]:
        meta = item["metadata"]
        if item["kind"] == "Namespace":
            meta.setdefault("labels", {})["istio-injection"] = "enabled"
        else:
            item["spec"]["serviceAccountName"] = "sa-" + meta["name"].split("-")[0]
    return doc


def _tcp_ports(conn: str, tcp_section: bool) -> IntervalSet:
    if conn.strip() == "All connections":
        return ALL_TCP
    out = IntervalSet.empty()
    for group in re.findall(r"\{([^}]*)\}", conn):
        fields = dict(
            (k.strip(), v.strip())
            for k, v in re.findall(
                r"(protocols|dst_ports|src_ports|methods|paths|hosts):([^:]*?)(?=,\w+:|$)", group
            )
        )
        protocols = fields.get("protocols")
        if protocols is not None and "TCP" not in protocols.split(","):
            continue
        if protocols is None and not tcp_section:
            continue
        ports = fields.get("dst_ports")
        out = out | (ALL_TCP if ports is None else IntervalSet.parse(ports))
    return out


def _range_set(text: str) -> IPSet:
    lo, hi = text.split("-")
    import ipaddress

    return IPSet.from_cidrs(
        str(n)
        for n in ipaddress.summarize_address_range(
            ipaddress.ip_address(lo), ipaddress.ip_address(hi)
        )
    )


Reading = tuple[dict[tuple[str, str], IntervalSet], dict[tuple[str, IntervalSet], IPSet]]


def _parse(stdout: str, istio: bool) -> Reading:
    """TCP connectivity to pods: per (src pod, dst pod) the ports; per (dst, ports) the addresses."""
    pods: dict[tuple[str, str], IntervalSet] = defaultdict(IntervalSet.empty)
    section = "TCP" if not istio else None
    for line in stdout.splitlines():
        if line.startswith("TCP Connections"):
            section = "TCP"
            continue
        if line.startswith("non-TCP Connections"):
            section = "other"
            continue
        m = _LINE.match(line.strip())
        if not m or section != "TCP":
            continue
        src, dst, conn = m.groups()
        if _RANGE.match(dst):
            continue  # egress to addresses: not compared
        ports = _tcp_ports(conn, tcp_section=istio)
        if ports:
            pods[(src, dst)] = pods[(src, dst)] | ports
    by_ports: dict[tuple[str, IntervalSet], IPSet] = defaultdict(IPSet.empty)
    pod_pairs: dict[tuple[str, str], IntervalSet] = {}
    for (src, dst), ports in pods.items():
        if _RANGE.match(src):
            if ":" in src:
                continue  # NCA omits IPv6 unless asked; polyfence writes both families
            by_ports[(dst, ports)] = by_ports[(dst, ports)] | _range_set(src)
        else:
            pod_pairs[(src, dst)] = ports
    return pod_pairs, dict(by_ports)


def _nca_tcp(nca: Path, policy_file: Path, topo_file: Path, cwd: Path, istio: bool) -> Reading:
    proc = run_nca(
        nca,
        [
            "--connectivity",
            str(policy_file),
            "--ns_list",
            str(topo_file),
            "--pod_list",
            str(topo_file),
            "-o",
            "txt_no_fw_rules",
        ],
        cwd,
    )
    assert proc.returncode == 0, show(proc)
    return _parse(proc.stdout, istio)


def _engine_tcp(
    result: polyfence.ConversionResult, topo_doc: dict[str, Any]
) -> dict[tuple[str, str], IntervalSet]:
    docs = [Document(item, SourceRef("topology.yaml", 0)) for item in topo_doc["items"]]
    inv = inventory_from_documents(docs)
    conn = connectivity(result.policies, inv, EvaluationProfile(mtls_default="STRICT"))
    out: dict[tuple[str, str], IntervalSet] = {}
    for src, dst, conns in conn.endpoint_pairs():
        if "[" not in src or "[" not in dst:
            continue
        tcp = conns & TCP_CONNS
        ports = IntervalSet.empty()
        for lo, hi, interval in tcp.segments:
            if lo <= 6 <= hi:
                ports = interval
        if ports:
            out[(src, dst)] = ports
    return out


@pytest.mark.parametrize("name", corpus_names())
def test_nca_judges_istio_output_like_the_source_on_tcp_ingress(
    name: str, nca: Path, tmp_path: Path
) -> None:
    original = source_for_nca(CORPUS / name, tmp_path)
    src_pols = _ingress_only(network_policies(list(yaml.safe_load_all(original.read_text()))))
    if not src_pols:
        # Egress only: Istio cannot say it, so nothing is written and the widening is reported.
        result = polyfence.convert(polyfence.load([str(original)]), "istio", allow_widening=True)
        assert result.documents == []
        egress = network_policies(list(yaml.safe_load_all(original.read_text())))
        if restricts_traffic(egress):
            assert any(
                loss.feature is Feature.EGRESS and loss.effect is Effect.WIDENED
                for loss in result.report.losses
            ), name
        else:  # an allow-all egress: leaving it out changes nothing
            assert result.report.exact, name
        return
    source_file = dump_yaml(tmp_path / "source-ingress.yaml", src_pols)
    topo = build_topology(src_pols)
    topo_doc = _meshed(topo)
    topo_file = dump_yaml(tmp_path / "topology.yaml", [topo_doc])

    bundle = polyfence.load([str(source_file), str(topo_file)])
    result = polyfence.convert(bundle, "istio", allow_widening=True)
    output = dump_yaml(tmp_path / "istio-out.yaml", result.documents)
    relevant = [
        loss
        for loss in result.report.losses
        if loss.feature not in _OFF_TOPIC and loss.effect is not Effect.NONE
    ]

    want = _nca_tcp(nca, source_file, topo_file, tmp_path, istio=False)
    got = _nca_tcp(nca, output, topo_file, tmp_path, istio=True)
    # Our engine and NCA read the Istio output the same way (pod pairs; NCA's mesh is all-mTLS).
    assert _engine_tcp(result, topo_doc) == {k: v for k, v in got[0].items() if k[0] != k[1]}, (
        f"{name}: polyfence's engine and NCA disagree on the Istio output"
    )
    open_file = dump_yaml(tmp_path / "no-policy.yaml", [])
    if restricts_traffic(src_pols):
        # Not vacuous: the source restricts TCP ingress somewhere, as NCA reads it.
        assert want != _nca_tcp(nca, open_file, topo_file, tmp_path, istio=False), name
    if any(loss.effect in (Effect.WIDENED, Effect.NARROWED) for loss in relevant):
        assert want != got, f"{name}: losses reported but NCA sees no difference: {relevant}"
        return
    # Inventory-dependent expansions are exact on the inventory they were made for.
    assert got[0] == want[0], f"{name}: TCP pod-to-pod connectivity differs (NCA)"
    assert got[1] == want[1], f"{name}: TCP connectivity from address ranges differs (NCA)"
