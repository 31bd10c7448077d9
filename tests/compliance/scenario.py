"""Small audit scenarios from inline YAML: a cluster, a config, one check, its outcome.

``run("NSEG-K03", NS_A, deploy("a", "web"), POLICY, config={...})`` loads the YAML (every
string is one part of ``cluster.yaml``; ``files={"sg.json": text}`` adds other files), builds an
``AuditContext`` and returns the check's ``CheckOutcome``. Object builders return YAML text so
tests read like the manifests they describe.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping
from typing import Any

from polyfence import api
from polyfence.compliance import checks
from polyfence.compliance.config import AuditConfig, parse_config
from polyfence.compliance.context import AuditContext
from polyfence.compliance.model import CheckOutcome, Finding, Status
from polyfence.io.files import parse_text
from polyfence.model.document import Document
from polyfence.model.provenance import SourceRef

CLUSTER_FILE = "cluster.yaml"
CONFIG_FILE = "audit.yaml"
TODAY = dt.date(2025, 6, 1)


# ---------------------------------------------------------------- object builders (YAML text)


def namespace(name: str, **labels: str) -> str:
    body = "".join(f"\n    {k}: {json.dumps(v)}" for k, v in labels.items())
    return f"""
apiVersion: v1
kind: Namespace
metadata:
  name: {name}
  labels:
    kubernetes.io/metadata.name: {name}{body}
"""


def deploy(
    ns: str,
    name: str,
    labels: Mapping[str, str] | None = None,
    ports: Iterable[int | tuple[str, int]] = (),
    *,
    host_network: bool = False,
    host_port: int | None = None,
    kind: str = "Deployment",
) -> str:
    """A Deployment (``app: name`` unless labels are given) with containerPorts."""
    labels = dict(labels or {"app": name})
    port_items = []
    for p in ports:
        pname, number = p if isinstance(p, tuple) else (None, p)
        item: dict[str, Any] = {"containerPort": number, "protocol": "TCP"}
        if pname:
            item["name"] = pname
        if host_port is not None and not port_items:
            item["hostPort"] = host_port
        port_items.append(item)
    pod_spec: dict[str, Any] = {
        "containers": [{"name": "main", "image": "example/app:1", "ports": port_items}]
    }
    if host_network:
        pod_spec["hostNetwork"] = True
    doc: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": kind,
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": pod_spec},
        },
    }
    return json.dumps(doc)  # JSON is YAML


def service(
    ns: str,
    name: str,
    selector: Mapping[str, str],
    port: int,
    target: int | str | None = None,
    type: str = "ClusterIP",
) -> str:
    p: dict[str, Any] = {"port": port, "protocol": "TCP"}
    if target is not None:
        p["targetPort"] = target
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"type": type, "selector": dict(selector), "ports": [p]},
        }
    )


def node(name: str, address: str) -> str:
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": name},
            "status": {"addresses": [{"type": "InternalIP", "address": address}]},
        }
    )


def default_deny(ns: str, types: str = "Ingress, Egress", name: str = "default-deny") -> str:
    return f"""
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {{name: {name}, namespace: {ns}}}
spec:
  podSelector: {{}}
  policyTypes: [{types}]
"""


def allow_dns(ns: str) -> str:
    return f"""
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {{name: allow-dns, namespace: {ns}}}
spec:
  podSelector: {{}}
  policyTypes: [Egress]
  egress:
  - to:
    - namespaceSelector: {{matchLabels: {{kubernetes.io/metadata.name: kube-system}}}}
    ports: [{{port: 53, protocol: UDP}}]
"""


# ---------------------------------------------------------------- loading and running


def documents(*parts: str, files: Mapping[str, str] | None = None) -> list[Document]:
    """The YAML parts as one multi-document ``cluster.yaml``, plus any extra files."""
    text = "\n---\n".join(p.strip("\n") for p in parts if p.strip())
    docs = parse_text(text, CLUSTER_FILE) if text else []
    for name, body in (files or {}).items():
        docs.extend(parse_text(body, name))
    return docs


def bundle(*parts: str, files: Mapping[str, str] | None = None) -> api.Bundle:
    return api.load(documents(*parts, files=files), skip_unknown=True)


def config(data: Mapping[str, Any] | None = None) -> AuditConfig:
    return parse_config(dict(data or {}), SourceRef(CONFIG_FILE, 0))


def context(
    *parts: str,
    files: Mapping[str, str] | None = None,
    config_data: Mapping[str, Any] | None = None,
    baseline: api.Bundle | None = None,
    today: dt.date = TODAY,
) -> AuditContext:
    return AuditContext(
        bundle(*parts, files=files),
        config(config_data),
        inputs=[CLUSTER_FILE],
        today=today,
        baseline=baseline,
    )


def run_check(check_id: str, ctx: AuditContext) -> CheckOutcome:
    return checks.get(check_id)(ctx)


def run(
    check_id: str,
    *parts: str,
    files: Mapping[str, str] | None = None,
    config: Mapping[str, Any] | None = None,
    baseline: api.Bundle | None = None,
    today: dt.date = TODAY,
) -> CheckOutcome:
    """Build the scenario and run one check on it."""
    ctx = context(*parts, files=files, config_data=config, baseline=baseline, today=today)
    return run_check(check_id, ctx)


# ---------------------------------------------------------------- assertions


def finding(result: CheckOutcome, resource: str, key: str | None = None) -> Finding:
    """The single finding about a resource (and key); fails listing what there is."""
    found = [f for f in result.findings if f.resource == resource and (key is None or f.key == key)]
    assert len(found) == 1, (
        f"expected one finding for {resource!r}, got "
        f"{[(f.resource, f.key, f.status.value) for f in result.findings]}"
    )
    return found[0]


def failing(result: CheckOutcome) -> dict[str, Finding]:
    return {f.resource: f for f in result.findings if f.status is Status.FAIL}


def assert_witness(f: Finding, src: str, dst: str, verdict: str = "allowed") -> None:
    """The finding carries a connection from src to dst, explained by the engine."""
    assert f.connections, f"{f.resource}: no connection evidence"
    conn = f.connections[0]
    assert (conn.src, conn.dst) == (src, dst), (conn.src, conn.dst)
    assert conn.verdict == verdict
    assert conn.explanation and all(step for step in conn.explanation)


def assert_object(f: Finding, kind: str, name: str, pointer: str | None = None) -> None:
    """Some object of the finding is ``kind``/``name`` in a real file (at ``pointer``)."""
    refs = [o for o in f.objects if o.kind == kind and o.name == name]
    assert refs, f"{kind}/{name} not among {[(o.kind, o.name) for o in f.objects]}"
    assert all(o.file is not None and o.document is not None for o in refs), refs
    if pointer is not None:
        assert any(o.pointer == pointer for o in refs), [o.pointer for o in refs]
