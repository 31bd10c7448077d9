"""Reading a live cluster through the official ``kubernetes`` client, for ``audit --live``.

The only module that imports ``kubernetes`` (an optional extra, imported when a cluster is
read). It lists the kinds a snapshot would hold and hands them on as the same ``Document``s
``kubectl get … -A -o yaml`` files give, so everything after loading is the snapshot path.

Read-only by construction: every request is a GET (list with ``limit``/``continue``, or a get of
a named namespace), and the kubeconfig is never written back. Objects stay raw camelCase JSON
(``_preload_content=False``): the generated model classes would rename fields to snake_case.
Each object is a document of its own, numbered within its listing:
``cluster:<context>/<group/version>/<plural>[N]``, so a finding names the listing and the item.
(Not ``[0]:/items/N`` as in a flattened ``kind: List``: the audit tells documents apart by file
and index, and finds the document of a policy whose source points inside it by its index.)
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from polyfence.errors import Diagnostic, InputError, UsageError
from polyfence.io.files import dump
from polyfence.model.document import Document
from polyfence.model.provenance import SourceRef

INSTALL_HINT = (
    "reading a live cluster needs the kubernetes client: pip install 'polyfence[kubernetes]'"
)
PAGE_SIZE = 500
TIMEOUT = (10.0, 120.0)  # seconds: connect, read (per page)


@dataclass(frozen=True, slots=True)
class Resource:
    """One kind to list, where it is served, and whether an audit can go on without it."""

    group: str  # "" for the core group
    version: str
    plural: str
    kind: str
    namespaced: bool
    required: bool = False  # the audit is meaningless without it: any failure is an error
    instead_of: str | None = None  # a fallback: read only when this group/version is not served

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


def _table(
    group_version: str, rows: Sequence[tuple[str, str, bool]], instead_of: str | None = None
) -> list[Resource]:
    group, _, version = group_version.rpartition("/")
    return [Resource(group, version, p, k, ns, instead_of=instead_of) for p, k, ns in rows]


_CALICO = (
    ("networkpolicies", "NetworkPolicy", True),
    ("globalnetworkpolicies", "GlobalNetworkPolicy", False),
    ("stagednetworkpolicies", "StagedNetworkPolicy", True),
    ("stagedglobalnetworkpolicies", "StagedGlobalNetworkPolicy", False),
    ("stagedkubernetesnetworkpolicies", "StagedKubernetesNetworkPolicy", True),
    ("networksets", "NetworkSet", True),
    ("globalnetworksets", "GlobalNetworkSet", False),
    ("tiers", "Tier", False),
    ("hostendpoints", "HostEndpoint", False),
)
_ISTIO = (
    ("authorizationpolicies", "AuthorizationPolicy", True),
    ("peerauthentications", "PeerAuthentication", True),
)

# What a snapshot holds: the inventory's kinds (polyfence.inventory.INVENTORY_KINDS), the agents
# enforcement detection looks for (DaemonSets, Deployments, Pods), Ingresses for exposure, and
# every policy kind a translator or check reads. Calico's aggregated projectcalico.org/v3 API is
# preferred over its crd.projectcalico.org/v1 storage (both serve the same objects), Istio's v1
# over v1beta1. polyfence.dev ExternalAddresses/DNSRecords are not cluster objects: give them as
# PATHs next to --live.
RESOURCES: tuple[Resource, ...] = (
    Resource("", "v1", "namespaces", "Namespace", False, required=True),
    Resource("", "v1", "pods", "Pod", True, required=True),
    *_table(
        "v1",
        [
            ("services", "Service", True),
            ("serviceaccounts", "ServiceAccount", True),
            ("nodes", "Node", False),
        ],
    ),
    *_table(
        "apps/v1",
        [
            ("deployments", "Deployment", True),
            ("statefulsets", "StatefulSet", True),
            ("daemonsets", "DaemonSet", True),
            ("replicasets", "ReplicaSet", True),
        ],
    ),
    *_table("batch/v1", [("jobs", "Job", True), ("cronjobs", "CronJob", True)]),
    Resource("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy", True, required=True),
    *_table("networking.k8s.io/v1", [("ingresses", "Ingress", True)]),
    *_table("projectcalico.org/v3", _CALICO),
    *_table("crd.projectcalico.org/v1", _CALICO, instead_of="projectcalico.org/v3"),
    *_table(
        "cilium.io/v2",
        [
            ("ciliumnetworkpolicies", "CiliumNetworkPolicy", True),
            ("ciliumclusterwidenetworkpolicies", "CiliumClusterwideNetworkPolicy", False),
        ],
    ),
    *_table(
        "vpcresources.k8s.aws/v1beta1", [("securitygrouppolicies", "SecurityGroupPolicy", True)]
    ),
    *_table("security.istio.io/v1", _ISTIO),
    *_table("security.istio.io/v1beta1", _ISTIO, instead_of="security.istio.io/v1"),
)


@dataclass(frozen=True, slots=True)
class Skipped:
    """A kind that was not read: not served (404, CRD not installed) or forbidden (403)."""

    group_version: str
    plural: str
    namespace: str | None  # where it was forbidden, with a namespace filter
    status: int

    @property
    def resource(self) -> str:
        """``group/version[/namespaces/NS]/plural``, as in the documents' sources."""
        scope = f"namespaces/{self.namespace}/" if self.namespace else ""
        return f"{self.group_version}/{scope}{self.plural}"

    def __str__(self) -> str:
        return self.resource


def _summary(skipped: Sequence[Skipped]) -> str:
    """``cilium.io/v2`` when none of its kinds was read, else each resource: one short line."""
    listed: dict[str, set[str]] = {}
    for res in RESOURCES:
        listed.setdefault(res.group_version, set()).add(res.plural)
    by_group: dict[str, list[Skipped]] = {}
    for s in skipped:
        by_group.setdefault(s.group_version, []).append(s)
    out: list[str] = []
    for group_version, items in by_group.items():
        whole = all(s.namespace is None for s in items)
        if whole and {s.plural for s in items} == listed.get(group_version):
            out.append(group_version)
        else:
            out.extend(map(str, items))
    return ", ".join(out)


@dataclass(frozen=True, slots=True)
class ClusterRead:
    """What was read from a cluster, and what could not be: the CLI prints the latter."""

    documents: tuple[Document, ...]
    server: str
    context: str  # the kubeconfig context, or "in-cluster"
    namespaces: tuple[str, ...] | None  # the --namespace filter, None for all
    skipped: tuple[Skipped, ...] = ()
    read_at: str = ""  # UTC, ISO 8601

    @property
    def label(self) -> str:
        """How reports name this input (their scope lists it next to any PATHs)."""
        where = f"cluster:{self.context} ({self.server}"
        if self.namespaces is not None:
            where += f"; namespaces {', '.join(self.namespaces)}"
        return where + ")"

    @property
    def not_served(self) -> tuple[Skipped, ...]:
        return tuple(s for s in self.skipped if s.status == 404)

    @property
    def forbidden(self) -> tuple[Skipped, ...]:
        return tuple(s for s in self.skipped if s.status == 403)

    def notes(self) -> list[str]:
        """One line each: what was read, kinds not installed, kinds the credentials may not list."""
        out = [f"live: read {len(self.documents)} objects from {self.label}"]
        if self.not_served:
            out.append(f"live: not served (CRD not installed): {_summary(self.not_served)}")
        if self.forbidden:
            out.append(
                "warning: live: forbidden (HTTP 403), so the audit does not see them: "
                + _summary(self.forbidden)
            )
        return out

    def snapshot_text(self) -> str:
        """The objects as one multi-document YAML file: evidence to keep and re-audit offline.

        One document per object, like the live read, so an offline audit of the file reports
        the same findings (a ``kind: List`` would make every object ``[0]:/items/N``).
        """
        header = [f"# polyfence live snapshot of {self.label}, read {self.read_at}"]
        if self.not_served:
            header.append(f"# not served (CRD not installed): {_summary(self.not_served)}")
        if self.forbidden:
            header.append(f"# forbidden (HTTP 403), not read: {_summary(self.forbidden)}")
        return "\n".join(header) + "\n" + dump([d.data for d in self.documents], "yaml")


class _BadResponse(Exception):
    """A 2xx response that is not the JSON object or list the API promises."""


def _kubernetes() -> tuple[Any, Any, tuple[type[BaseException], ...]]:
    """The client and config modules and the errors a request can end in (a one-line usage
    error when the extra is missing)."""
    try:
        import urllib3
        from kubernetes import client, config
    except ImportError:
        raise UsageError(INSTALL_HINT) from None
    failures = (
        client.exceptions.ApiException,
        urllib3.exceptions.HTTPError,
        OSError,
        json.JSONDecodeError,
        _BadResponse,
    )
    return client, config, failures


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _configure(
    config: Any, configuration: Any, kubeconfig: str | None, context: str | None, in_cluster: bool
) -> str:
    """Fill ``configuration`` from the kubeconfig or the pod's service account; the context name.

    Any failure here is a problem with the user's configuration, never a crash: the loader is
    third-party code reading a user's file (and maybe running an exec credential plugin).
    """
    if in_cluster:
        try:
            config.load_incluster_config(client_configuration=configuration)
        except Exception as exc:
            raise UsageError(f"--in-cluster: {_first_line(exc)} (not running in a pod?)") from None
        return "in-cluster"
    if kubeconfig is not None and not os.path.isfile(kubeconfig):
        raise UsageError(f"no kubeconfig at {kubeconfig}")
    where = kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config"
    try:
        contexts, active = config.list_kube_config_contexts(config_file=kubeconfig)
    except Exception as exc:
        raise UsageError(
            f"cannot read kubeconfig {where}: {_first_line(exc)} "
            "(give --kubeconfig FILE, or --in-cluster inside a pod)"
        ) from None
    names = [str(c.get("name")) for c in contexts or () if isinstance(c, dict)]
    if context is not None and context not in names:
        raise UsageError(
            f"unknown context {context!r} in kubeconfig {where} (known: {', '.join(names) or 'none'})"
        )
    name = context or (active or {}).get("name")
    if not name:
        raise UsageError(f"kubeconfig {where} sets no current-context: give --context NAME")
    try:
        config.load_kube_config(
            config_file=kubeconfig,
            context=name,
            client_configuration=configuration,
            persist_config=False,  # never write refreshed credentials back
        )
    except Exception as exc:
        raise UsageError(f"kubeconfig {where}, context {name}: {_first_line(exc)}") from None
    return str(name)


def _transport_reason(exc: BaseException) -> str:
    """``Connection refused`` rather than urllib3's nested pool and connection reprs."""
    reason: BaseException = exc
    while isinstance(getattr(reason, "reason", None), BaseException):
        reason = reason.reason  # type: ignore[attr-defined]
    text = _first_line(reason)
    errno = re.search(r"\[Errno -?\d+\] ([^'\")]+)", text)
    return errno.group(1).strip() if errno else text


def _status_message(body: Any) -> str:
    """The API server's own explanation (a ``Status`` object's message), when it sent one."""
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if not isinstance(body, str):
        return ""
    try:
        data = json.loads(body)
    except ValueError:
        return ""
    message = data.get("message") if isinstance(data, dict) else None
    return message.strip().splitlines()[0] if isinstance(message, str) and message.strip() else ""


def _path(res: Resource, namespace: str | None) -> str:
    """``group/version[/namespaces/NS]/plural``: the REST path below /api or /apis."""
    scope = f"namespaces/{namespace}/" if namespace else ""
    return f"{res.group_version}/{scope}{res.plural}"


def _document(res: Resource, item: Any, source: SourceRef) -> Document:
    """The object as kubectl prints it: apiVersion and kind (lists omit them), no managedFields."""
    data = {"apiVersion": res.group_version, "kind": res.kind}
    if isinstance(item, dict):
        data.update((k, v) for k, v in item.items() if k not in ("apiVersion", "kind"))
        meta = data.get("metadata")
        if isinstance(meta, dict) and "managedFields" in meta:
            data["metadata"] = {k: v for k, v in meta.items() if k != "managedFields"}
    return Document(data, source)


class _Lister:
    """Pages through one kind at a time with typed GET calls that return the raw JSON body.

    Built-in groups other than core and the CRDs go through ``CustomObjectsApi`` (its
    ``/apis/{group}/{version}/{plural}`` paths serve any group); the core group, under
    ``/api/v1``, through ``CoreV1Api``. Both keep the request signature stable across client
    versions, unlike ``ApiClient.call_api``.
    """

    def __init__(
        self,
        client: Any,
        api_client: Any,
        failures: tuple[type[BaseException], ...],
        server: str,
        context: str,
        page_size: int,
    ) -> None:
        self.core = client.CoreV1Api(api_client)
        self.custom = client.CustomObjectsApi(api_client)
        self.api_exception: type[BaseException] = client.exceptions.ApiException
        self.failures = failures
        self.server = server
        self.context = context
        self.page_size = page_size

    def source(self, path: str, index: int | None = None) -> SourceRef:
        """Where the ``index``-th object of one listing comes from."""
        return SourceRef(f"cluster:{self.context}/{path}", index)

    def error(self, path: str, exc: BaseException) -> InputError:
        """One line naming the server, the resource and the HTTP status (or the transport error)."""
        status = getattr(exc, "status", None)
        if isinstance(exc, self.api_exception) and status:
            reason = getattr(exc, "reason", None) or ""
            message = f"cannot read from {self.server}: HTTP {status} {reason}".rstrip()
            detail = _status_message(getattr(exc, "body", None))
            if status == 401 and not detail:
                detail = f"the credentials of context {self.context} were refused"
            if detail:
                message += f" ({detail})"
        elif isinstance(exc, _BadResponse | json.JSONDecodeError):
            message = f"unexpected response from {self.server}: {_first_line(exc)}"
        elif isinstance(exc, self.api_exception):  # status 0: the client's own TLS/request error
            lines = [x.strip() for x in str(getattr(exc, "reason", "")).splitlines() if x.strip()]
            message = f"cannot connect to {self.server}: {lines[-1] if lines else 'no response'}"
        else:
            message = f"cannot connect to {self.server}: {_transport_reason(exc)}"
        return InputError([Diagnostic(self.source(path), message)])

    def _list(self, res: Resource, namespace: str | None, token: str | None) -> Any:
        kwargs: dict[str, Any] = {
            "limit": self.page_size,
            "_preload_content": False,
            "_request_timeout": TIMEOUT,
        }
        if token:
            kwargs["_continue"] = token
        if not res.group:
            # ServiceAccount: list_service_account_for_all_namespaces, list_namespaced_service_account
            stem = re.sub(r"(?<!^)(?=[A-Z])", "_", res.kind).lower()
            if not res.namespaced:
                return getattr(self.core, f"list_{stem}")(**kwargs)
            if namespace:
                return getattr(self.core, f"list_namespaced_{stem}")(namespace, **kwargs)
            return getattr(self.core, f"list_{stem}_for_all_namespaces")(**kwargs)
        where = {"group": res.group, "version": res.version, "plural": res.plural}
        if namespace:
            return self.custom.list_namespaced_custom_object(namespace=namespace, **where, **kwargs)
        return self.custom.list_cluster_custom_object(**where, **kwargs)

    @staticmethod
    def _body(response: Any) -> Any:
        try:
            return json.loads(response.data)
        finally:
            response.release_conn()

    def items(self, res: Resource, namespace: str | None) -> Iterator[Any]:
        """Every item of one listing, across pages; raises the client's errors unchanged."""
        token: str | None = None
        while True:
            page = self._body(self._list(res, namespace, token))
            if not isinstance(page, dict) or not isinstance(page.get("items"), list):
                raise _BadResponse(f"{_path(res, namespace)} did not return a list")
            yield from page["items"]
            token = (page.get("metadata") or {}).get("continue") or None
            if token is None:
                return

    def namespace(self, name: str) -> Any:
        body = self._body(
            self.core.read_namespace(name, _preload_content=False, _request_timeout=TIMEOUT)
        )
        if not isinstance(body, dict):
            raise _BadResponse(f"namespace {name} is not an object")
        return body

    def read(
        self, res: Resource, selected: tuple[str, ...] | None
    ) -> tuple[list[Document], list[Skipped], bool]:
        """The documents of one kind, what was skipped, and whether the kind is served at all."""
        if res.kind == "Namespace" and selected is not None:  # by name: least privilege
            docs = []
            for i, name in enumerate(selected):
                try:
                    item = self.namespace(name)
                except self.failures as exc:
                    raise self.error(f"{_path(res, None)}/{name}", exc) from None
                docs.append(_document(res, item, self.source(_path(res, None), i)))
            return docs, [], True
        docs, skipped = [], []
        scopes = selected if res.namespaced and selected is not None else (None,)
        for namespace in scopes:
            path = _path(res, namespace)
            try:
                found = [
                    _document(res, item, self.source(path, i))
                    for i, item in enumerate(self.items(res, namespace))
                ]
            except self.failures as exc:
                status = getattr(exc, "status", None)
                forgivable = status == 404 or (status == 403 and not res.required)
                if not (isinstance(exc, self.api_exception) and forgivable):
                    raise self.error(path, exc) from None
                where = namespace if status == 403 else None
                skipped.append(Skipped(res.group_version, res.plural, where, int(status or 0)))
                if status == 404:  # a resource is served in every namespace or in none
                    return docs, skipped, False
                continue
            docs.extend(found)
        return docs, skipped, True


def _alternatives() -> list[list[Resource]]:
    """RESOURCES grouped with their fallbacks, in order: the first one served is read."""
    groups: dict[tuple[str, str], list[Resource]] = {}
    for res in RESOURCES:
        groups.setdefault((res.instead_of or res.group_version, res.plural), []).append(res)
    return list(groups.values())


def read_cluster(
    *,
    kubeconfig: str | None = None,
    context: str | None = None,
    in_cluster: bool = False,
    namespaces: Sequence[str] | None = None,
    page_size: int = PAGE_SIZE,
) -> ClusterRead:
    """List every kind an audit reads from a live cluster, read-only, into ``Document``s.

    ``namespaces`` limits namespaced kinds, and the Namespace objects (fetched by name), to those
    namespaces; cluster-scoped kinds are listed whole because their policies apply everywhere.
    A kind that is not served (404: CRD not installed) or forbidden (403) is skipped and recorded
    in ``skipped``, except Namespaces, Pods and NetworkPolicies, without which an audit would be
    meaningless. Raises ``UsageError`` for configuration problems and ``InputError`` (one line
    naming the server, the resource and the HTTP status) when the cluster cannot be read.
    """
    if in_cluster and (kubeconfig is not None or context is not None):
        raise UsageError("--in-cluster uses the pod's service account: drop --kubeconfig/--context")
    if page_size < 1:
        raise UsageError(f"page size must be positive, not {page_size}")
    client, config, failures = _kubernetes()
    configuration = client.Configuration()
    context_name = _configure(config, configuration, kubeconfig, context, in_cluster)
    server = str(configuration.host)
    selected = None if namespaces is None else tuple(dict.fromkeys(namespaces))
    read_at = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    docs: list[Document] = []
    skipped: list[Skipped] = []
    api_client = client.ApiClient(configuration)
    try:
        lister = _Lister(client, api_client, failures, server, context_name, page_size)
        for alternatives in _alternatives():
            tried: list[Skipped] = []
            for res in alternatives:
                found, missing, served = lister.read(res, selected)
                docs.extend(found)
                tried.extend(missing)
                if served:
                    skipped.extend(missing)
                    break
            else:
                skipped.extend(tried)
    finally:
        close = getattr(api_client, "close", None)
        if close is not None:
            close()
    return ClusterRead(tuple(docs), server, context_name, selected, tuple(skipped), read_at)
