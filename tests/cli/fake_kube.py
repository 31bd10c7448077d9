"""A tiny in-process Kubernetes API server: list and get over HTTP, nothing else.

It serves the objects it is given the way a real API server does (``*List`` responses whose
built-in items carry no apiVersion/kind, ``limit``/``continue`` paging, ``Status`` bodies with
404 for resources not served and 403 where a test forbids them) and records every request, so
tests drive the real ``kubernetes`` client end to end without mocking its internals.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import json
import ssl
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml

BUILTIN: dict[str, tuple[str, ...]] = {
    "v1": ("namespaces", "pods", "services", "serviceaccounts", "nodes", "configmaps"),
    "apps/v1": ("deployments", "statefulsets", "daemonsets", "replicasets"),
    "batch/v1": ("jobs", "cronjobs"),
    "networking.k8s.io/v1": ("networkpolicies", "ingresses"),
}
CLUSTER_SCOPED = frozenset(
    {
        "namespaces",
        "nodes",
        "globalnetworkpolicies",
        "stagedglobalnetworkpolicies",
        "globalnetworksets",
        "tiers",
        "hostendpoints",
        "ciliumclusterwidenetworkpolicies",
    }
)
TOKEN = "test-token"


def plural(kind: str) -> str:
    lower = kind.lower()
    if lower.endswith("y"):
        return lower[:-1] + "ies"
    return lower + ("es" if lower.endswith("s") else "s")


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    authorization: str | None


@dataclass
class FakeCluster:
    """The state the server serves; tests change ``served``/``forbidden`` before requesting."""

    objects: list[dict[str, Any]]
    page_cap: int | None = 2  # a server may return fewer items than ``limit`` asks for
    served: set[tuple[str, str]] = field(default_factory=set)  # (group/version, plural)
    forbidden: set[tuple[str, str | None, str]] = field(
        default_factory=set
    )  # (gv, ns|None, plural)
    requests: list[Request] = field(default_factory=list)
    url: str = ""

    def __post_init__(self) -> None:
        self.served |= {(gv, p) for gv, plurals in BUILTIN.items() for p in plurals}
        # a custom resource is served when its CRD is installed: when objects of it exist
        self.served |= {(o["apiVersion"], plural(o["kind"])) for o in self.objects}

    def kubeconfig(
        self, path: Path, context: str = "fake-ctx", token: str = TOKEN, ca: Path | None = None
    ) -> Path:
        cluster: dict[str, Any] = {"server": self.url}
        if ca is not None:
            cluster["certificate-authority"] = str(ca)
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "fake", "cluster": cluster}],
            "users": [{"name": "auditor", "user": {"token": token}}],
            "contexts": [{"name": context, "context": {"cluster": "fake", "user": "auditor"}}],
            "current-context": context,
        }
        path.write_text(yaml.safe_dump(config))
        return path

    def paths(self, method: str = "GET") -> list[str]:
        return [r.path for r in self.requests if r.method == method]

    # ------------------------------------------------------------------ serving

    def _select(self, gv: str, name: str, namespace: str | None) -> list[dict[str, Any]]:
        out = []
        for obj in self.objects:
            if obj["apiVersion"] != gv or plural(obj["kind"]) != name:
                continue
            if namespace is not None and obj["metadata"].get("namespace") != namespace:
                continue
            item = json.loads(json.dumps(obj))
            item["metadata"]["managedFields"] = [{"manager": "kubectl", "operation": "Apply"}]
            if gv in BUILTIN:  # built-in list items carry neither field; custom resources do
                item.pop("apiVersion")
                item.pop("kind")
            out.append(item)
        return out

    def respond(self, path: str, query: dict[str, str]) -> tuple[int, dict[str, Any]]:
        parts = [p for p in path.split("/") if p]
        if parts[:2] == ["api", "v1"]:
            gv, rest = "v1", parts[2:]
        elif parts[:1] == ["apis"] and len(parts) >= 3:
            gv, rest = f"{parts[1]}/{parts[2]}", parts[3:]
        else:
            return _status(404, "NotFound", f"the server could not find {path}")
        namespace: str | None = None
        if gv == "v1" and len(rest) == 2 and rest[0] == "namespaces":
            return self._get_namespace(rest[1])
        if len(rest) == 3 and rest[0] == "namespaces":
            namespace, rest = rest[1], rest[2:]
        if len(rest) != 1 or (gv, rest[0]) not in self.served:
            return _status(404, "NotFound", "the server could not find the requested resource")
        name = rest[0]
        if namespace is not None and name in CLUSTER_SCOPED:
            return _status(404, "NotFound", "the server could not find the requested resource")
        if (gv, namespace, name) in self.forbidden or (gv, None, name) in self.forbidden:
            where = f' in the namespace "{namespace}"' if namespace else " at the cluster scope"
            return _status(
                403,
                "Forbidden",
                f'{name} is forbidden: User "auditor" cannot list resource "{name}"{where}',
            )
        items = self._select(gv, name, namespace)
        start = int(base64.b64decode(query["continue"]).decode()) if "continue" in query else 0
        limit = int(query.get("limit") or 0) or len(items)
        if self.page_cap:
            limit = min(limit, self.page_cap)
        page = items[start : start + limit]
        meta: dict[str, Any] = {"resourceVersion": "4242"}
        if start + limit < len(items):
            meta["continue"] = base64.b64encode(str(start + limit).encode()).decode()
        kind = next((o["kind"] for o in self.objects if plural(o["kind"]) == name), "Object")
        return 200, {"apiVersion": gv, "kind": f"{kind}List", "metadata": meta, "items": page}

    def _get_namespace(self, name: str) -> tuple[int, dict[str, Any]]:
        for obj in self.objects:
            if obj["kind"] == "Namespace" and obj["metadata"]["name"] == name:
                return 200, obj
        return _status(404, "NotFound", f'namespaces "{name}" not found')


def _status(code: int, reason: str, message: str) -> tuple[int, dict[str, Any]]:
    body = {
        "apiVersion": "v1",
        "kind": "Status",
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    return code, body


def _handler(cluster: FakeCluster) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _record(self) -> tuple[str, dict[str, str]]:
            url = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(url.query).items()}
            auth = self.headers.get("Authorization")
            cluster.requests.append(Request(self.command, url.path, query, auth))
            return url.path, query

        def _send(self, code: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            path, query = self._record()
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                self._send(*_status(401, "Unauthorized", "Unauthorized"))
                return
            self._send(*cluster.respond(path, query))

        def _refuse(self) -> None:  # an auditor's tool has no business writing
            self._record()
            self._send(*_status(405, "MethodNotAllowed", f"{self.command} is not allowed"))

        do_POST = do_PUT = do_PATCH = do_DELETE = _refuse

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, as an API server's serving certificate."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fake-apiserver")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "apiserver.crt", directory / "apiserver.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@contextmanager
def serve(
    objects: Iterable[dict[str, Any]], tls: tuple[Path, Path] | None = None, **options: Any
) -> Iterator[FakeCluster]:
    """Run a fake API server on 127.0.0.1 (a free port) for the duration of the block;
    ``tls`` is (certificate, key) to serve HTTPS."""
    cluster = FakeCluster(list(objects), **options)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(cluster))
    scheme = "http"
    if tls is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*tls)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        scheme = "https"
    cluster.url = f"{scheme}://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield cluster
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
