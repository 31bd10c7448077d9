"""Turn tidy manifests into what the API server and ``kubectl get -A -o json`` return.

One typed list per kind (``PodList``, ``NetworkPolicyList`` …) whose items carry no ``kind`` or
``apiVersion``, with the server's bookkeeping (uid, resourceVersion, creationTimestamp,
managedFields, the last-applied annotation, ``status``), plus the objects every real cluster
has and policies never read (``kube-root-ca.crt`` ConfigMaps, Endpoints, Events). Calico's
resources come as ``calicoctl get -o yaml`` prints them: a list whose items keep their kind.
A faithful intake gives the same verdicts on both forms.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

_CALICO = "projectcalico.org/"


def _bookkeeping(doc: dict[str, Any], n: int) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    meta = out.setdefault("metadata", {})
    tidy = json.dumps(doc, sort_keys=True)
    meta.setdefault("annotations", {})["kubectl.kubernetes.io/last-applied-configuration"] = tidy
    meta.update(
        {
            "uid": f"00000000-0000-4000-8000-{n:012d}",
            "resourceVersion": str(1000 + n),
            "generation": 1,
            "creationTimestamp": "2026-11-30T12:00:00Z",
            "managedFields": [
                {
                    "manager": "kubectl-client-side-apply",
                    "operation": "Update",
                    "apiVersion": doc.get("apiVersion"),
                    "time": "2026-11-30T12:00:00Z",
                    "fieldsType": "FieldsV1",
                    "fieldsV1": {"f:metadata": {"f:annotations": {}}, "f:spec": {}},
                }
            ],
        }
    )
    if doc.get("kind") == "NetworkPolicy" and doc.get("apiVersion") == "networking.k8s.io/v1":
        out["status"] = {}
    if doc.get("kind") == "Pod":
        out.setdefault("status", {}).setdefault("phase", "Running")
    return out


def _cluster_noise(namespaces: Iterable[str]) -> list[dict[str, Any]]:
    noise: list[dict[str, Any]] = []
    for ns in sorted(namespaces):
        noise.append(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "kube-root-ca.crt", "namespace": ns},
                "data": {"ca.crt": "-----BEGIN CERTIFICATE-----"},
            }
        )
        noise.append(
            {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {"name": f"{ns}.scheduled", "namespace": ns},
                "reason": "Scheduled",
            }
        )
    return noise


def raw_dump(sources: Iterable[Path], target: Path) -> list[Path]:
    """Write ``target/<kind>.json`` (API lists) and ``calico.yaml``; return the files written."""
    docs: list[dict[str, Any]] = []
    for source in sources:
        files = sorted(source.rglob("*")) if source.is_dir() else [source]
        for path in files:
            if path.suffix in (".yaml", ".yml"):
                docs.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
            elif path.suffix == ".json":
                data = json.loads(path.read_text())
                docs.extend(data if isinstance(data, list) else [data])
    namespaces = {
        str(d["metadata"]["namespace"])
        for d in docs
        if isinstance(d.get("metadata"), dict) and d["metadata"].get("namespace")
    }
    docs.extend(_cluster_noise(namespaces))
    target.mkdir(parents=True, exist_ok=True)
    lists: dict[tuple[str, str], list[dict[str, Any]]] = {}
    calico: list[dict[str, Any]] = []
    other: list[dict[str, Any]] = []
    for n, doc in enumerate(docs):
        version, kind = doc.get("apiVersion"), doc.get("kind")
        if not isinstance(kind, str) or not isinstance(version, str):
            other.append(doc)  # security-group exports and the like stay as they are
        elif version.startswith(_CALICO):
            calico.append(_bookkeeping(doc, n))
        else:
            item = _bookkeeping(doc, n)
            item.pop("kind")
            item.pop("apiVersion")
            lists.setdefault((version, kind), []).append(item)
    written: list[Path] = []
    for (version, kind), items in sorted(lists.items()):
        path = target / f"{kind.lower()}s.{version.replace('/', '_')}.json"
        body = {
            "apiVersion": version,
            "kind": f"{kind}List",
            "metadata": {"resourceVersion": "999999"},
            "items": items,
        }
        path.write_text(json.dumps(body, indent=2))
        written.append(path)
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for item in calico:  # calicoctl get <kind> -o yaml: a typed list whose items keep their kind
        by_kind.setdefault(str(item["kind"]), []).append(item)
    for kind, items in sorted(by_kind.items()):
        path = target / f"calico-{kind.lower()}s.yaml"
        body = {"apiVersion": "projectcalico.org/v3", "kind": f"{kind}List", "items": items}
        path.write_text(yaml.safe_dump(body))
        written.append(path)
    for i, doc in enumerate(other):
        path = target / f"other-{i}.json"
        path.write_text(json.dumps(doc, indent=2))
        written.append(path)
    return written
