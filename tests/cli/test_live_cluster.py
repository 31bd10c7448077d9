"""``polyfence audit --live``: the real kubernetes client against an in-process fake API server.

The acceptance test: an audit of the cluster read live reports exactly what the audit of the
same objects as a snapshot reports. The rest pin the edges: paging, CRDs not installed,
forbidden kinds, unreachable servers, bad kubeconfigs, the saved snapshot, the namespace filter,
and that nothing but GET ever reaches the server.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from polyfence.cli import cli
from polyfence.io import kube
from polyfence.io.files import load_documents
from tests.cli.fake_kube import FakeCluster, self_signed, serve

pytest.importorskip("kubernetes")  # polyfence.io.kube imports it only when reading a cluster

ROOT = Path(__file__).resolve().parents[2]
AUDITS = ROOT / "examples" / "audits"
SCENARIOS = sorted(p.name for p in AUDITS.iterdir() if (p / "audit.yaml").exists())


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def cluster_objects(scenario: str) -> tuple[list[dict[str, Any]], list[str]]:
    """The scenario's Kubernetes objects (served live), and its other files (given as PATHs)."""
    objects: list[dict[str, Any]] = []
    others: list[str] = []
    for path in sorted((AUDITS / scenario / "cluster").iterdir()):
        docs = [d.data for d in load_documents([str(path)])]
        if all(isinstance(d, dict) and d.get("kind") and d.get("metadata") for d in docs):
            objects.extend(docs)
        else:  # e.g. describe-security-groups JSON: not a cluster object
            others.append(str(path))
    return objects, others


def normalised(report: dict[str, Any]) -> dict[str, Any]:
    """The report without what depends on the input rather than on the cluster: where each
    object was read from, and the order objects come in (files and API listings differ)."""

    def strip(node: Any) -> Any:
        if isinstance(node, dict):
            out = {k: strip(v) for k, v in node.items() if k not in ("file", "document", "pointer")}
            for key in ("objects", "findings", "internet_egress"):
                if isinstance(out.get(key), list):
                    out[key].sort(key=lambda o: json.dumps(o, sort_keys=True))
            return out
        if isinstance(node, list):
            return [strip(v) for v in node]
        return node

    out = strip(report)
    out.pop("generated_at")
    for key in ("inputs", "evidence_sha256"):
        out["scope"].pop(key)
    return out  # type: ignore[no-any-return]


def offline_report(scenario: str, tmp_path: Path, *paths: str) -> dict[str, Any]:
    out = tmp_path / "offline.json"
    config = str(AUDITS / scenario / "audit.yaml")
    code, _, err = run("audit", *paths, "--config", config, "--format", "json", "-o", str(out))
    assert code == 0, err
    return json.loads(out.read_text())  # type: ignore[no-any-return]


@pytest.fixture
def pci(tmp_path: Path) -> Iterator[tuple[FakeCluster, Path]]:
    objects, _ = cluster_objects("pci")
    with serve(objects) as cluster:
        yield cluster, cluster.kubeconfig(tmp_path / "kubeconfig")


def live_audit(kubeconfig: Path, out: Path, *extra: str, scenario: str = "pci") -> tuple[int, str]:
    config = str(AUDITS / scenario / "audit.yaml")
    args = ["audit", "--live", "--kubeconfig", str(kubeconfig), "--config", config]
    code, _, err = run(*args, "--format", "json", "-o", str(out), *extra)
    return code, err


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_live_audit_reports_what_the_snapshot_audit_reports(scenario: str, tmp_path: Path) -> None:
    objects, others = cluster_objects(scenario)
    offline = offline_report(scenario, tmp_path, str(AUDITS / scenario / "cluster"))
    with serve(objects) as cluster:
        kubeconfig = cluster.kubeconfig(tmp_path / "kubeconfig")
        out = tmp_path / "live.json"
        code, err = live_audit(kubeconfig, out, *others, scenario=scenario)
    assert code == 0, err
    live = json.loads(out.read_text())
    assert normalised(live) == normalised(offline)
    assert any(f["status"] == "fail" for c in live["checks"] for f in c["findings"]) or (
        scenario == "compliant"
    )
    assert live["scope"]["inputs"] == [*others, f"cluster:fake-ctx ({cluster.url})"]
    policy_refs = [
        o
        for c in live["checks"]
        for f in c["findings"]
        for o in f["objects"]
        if o["kind"] == "NetworkPolicy"
    ]
    for ref in policy_refs:  # findings point at the object in the listing it came from
        assert ref["file"] in (
            "cluster:fake-ctx/networking.k8s.io/v1/networkpolicies",
            "cluster:fake-ctx/projectcalico.org/v3/networkpolicies",
        )
        assert isinstance(ref["document"], int)
    assert {r.method for r in cluster.requests} == {"GET"}


def test_only_gets_paged_with_the_credentials(
    pci: tuple[FakeCluster, Path], tmp_path: Path
) -> None:
    cluster, kubeconfig = pci
    code, err = live_audit(kubeconfig, tmp_path / "r.json")
    assert code == 0, err
    assert {r.method for r in cluster.requests} == {"GET"}
    assert {r.authorization for r in cluster.requests} == {"Bearer test-token"}
    listed = {r.path for r in cluster.requests}
    for resource in kube.RESOURCES:
        if resource.instead_of is None:  # every primary kind is asked for
            prefix = "/api" if not resource.group else "/apis"
            assert f"{prefix}/{resource.group_version}/{resource.plural}" in listed
    # 4 deployments at the server's cap of 2 per page: the client followed the continue token
    deployments = [r for r in cluster.requests if r.path == "/apis/apps/v1/deployments"]
    assert [r.query.get("continue") is not None for r in deployments] == [False, True]
    assert all(r.query["limit"] == str(kube.PAGE_SIZE) for r in deployments)


def test_library_pages_with_the_limit_it_asks_for(tmp_path: Path) -> None:
    objects, _ = cluster_objects("pci")
    with serve(objects, page_cap=None) as cluster:
        read = kube.read_cluster(kubeconfig=str(cluster.kubeconfig(tmp_path / "k")), page_size=1)
    deployments = [r for r in cluster.requests if r.path == "/apis/apps/v1/deployments"]
    assert [r.query["limit"] for r in deployments] == ["1"] * 4  # one deployment per page
    assert read.context == "fake-ctx" and read.server == cluster.url
    kinds = sorted(d.kind or "" for d in read.documents)
    assert kinds == sorted(o["kind"] for o in objects)
    for doc in read.documents:  # lists omit apiVersion/kind on items: they are put back
        assert doc.api_version and doc.kind and "managedFields" not in doc.data["metadata"]


def test_crds_not_installed_are_skipped_and_named(
    pci: tuple[FakeCluster, Path], tmp_path: Path
) -> None:
    cluster, kubeconfig = pci
    code, err = live_audit(kubeconfig, tmp_path / "r.json")
    assert code == 0, err
    assert err.splitlines()[:2] == [
        f"polyfence: live: read 17 objects from cluster:fake-ctx ({cluster.url})",
        "polyfence: live: not served (CRD not installed): projectcalico.org/v3, "
        "crd.projectcalico.org/v1, cilium.io/v2, vpcresources.k8s.aws/v1beta1, "
        "security.istio.io/v1, security.istio.io/v1beta1",  # fallbacks are tried too
    ]
    code, err = live_audit(kubeconfig, tmp_path / "q.json", "--quiet")
    assert code == 0 and err == ""


def test_kinds_partly_installed_are_named_one_by_one(tmp_path: Path) -> None:
    objects, _ = cluster_objects("mixed")
    with serve(objects) as cluster:
        read = kube.read_cluster(kubeconfig=str(cluster.kubeconfig(tmp_path / "k")))
    (line,) = [x for x in read.notes() if "not served" in x]
    assert "cilium.io/v2/ciliumclusterwidenetworkpolicies" in line
    assert "cilium.io/v2/ciliumnetworkpolicies" not in line
    assert (
        "projectcalico.org/v3/tiers" in line and "projectcalico.org/v3/networkpolicies" not in line
    )
    # each kind falls back on its own: v3 served networkpolicies, so its CRD is never asked
    asked = cluster.paths()
    assert "/apis/crd.projectcalico.org/v1/networkpolicies" not in asked
    assert "/apis/crd.projectcalico.org/v1/tiers" in asked


def test_calico_falls_back_to_its_crds_when_the_api_server_is_absent(tmp_path: Path) -> None:
    objects, _ = cluster_objects("mixed")
    for obj in objects:
        if obj["apiVersion"] == "projectcalico.org/v3":
            obj["apiVersion"] = "crd.projectcalico.org/v1"
    with serve(objects) as cluster:
        read = kube.read_cluster(kubeconfig=str(cluster.kubeconfig(tmp_path / "k")))
    calico = [d for d in read.documents if d.api_version == "crd.projectcalico.org/v1"]
    assert (
        sorted(d.kind or "" for d in calico) == ["GlobalNetworkPolicy"] * 2 + ["NetworkPolicy"] * 2
    )
    skipped = {s.resource for s in read.skipped}
    assert "projectcalico.org/v3/networkpolicies" not in skipped  # replaced by the fallback
    assert "crd.projectcalico.org/v1/tiers" in skipped and "projectcalico.org/v3/tiers" in skipped
    assert {d.kind for d in read.documents} >= {"CiliumNetworkPolicy", "AuthorizationPolicy"}


def test_forbidden_optional_kind_is_a_warning(tmp_path: Path) -> None:
    objects, _ = cluster_objects("mixed")
    with serve(objects) as cluster:
        cluster.forbidden.add(("cilium.io/v2", None, "ciliumnetworkpolicies"))
        code, err = live_audit(
            cluster.kubeconfig(tmp_path / "k"), tmp_path / "r.json", scenario="mixed"
        )
    assert code == 0, err
    (warning,) = [x for x in err.splitlines() if "forbidden" in x]
    assert warning == (
        "polyfence: warning: live: forbidden (HTTP 403), so the audit does not see them: "
        "cilium.io/v2/ciliumnetworkpolicies"
    )
    report = json.loads((tmp_path / "r.json").read_text())
    assert "cilium" not in report["scope"]["formats"]


@pytest.mark.parametrize(
    ("forbidden", "resource"),
    [
        (("v1", None, "pods"), "v1/pods"),
        (("v1", None, "namespaces"), "v1/namespaces"),
        (("networking.k8s.io/v1", None, "networkpolicies"), "networking.k8s.io/v1/networkpolicies"),
    ],
)
def test_forbidden_core_kind_is_one_line_exit_3(
    pci: tuple[FakeCluster, Path], tmp_path: Path, forbidden: Any, resource: str
) -> None:
    cluster, kubeconfig = pci
    cluster.forbidden.add(forbidden)
    out = tmp_path / "r.json"
    code, err = live_audit(kubeconfig, out)
    assert code == 3
    (line,) = err.splitlines()
    assert line.startswith(f"polyfence: error: cluster:fake-ctx/{resource}:/: cannot read from ")
    assert f"{cluster.url}: HTTP 403 Forbidden" in line and "is forbidden" in line
    assert not out.exists()


def test_refused_credentials_are_one_line_exit_3(
    pci: tuple[FakeCluster, Path], tmp_path: Path
) -> None:
    cluster, _ = pci
    kubeconfig = cluster.kubeconfig(tmp_path / "bad", token="wrong")
    code, err = live_audit(kubeconfig, tmp_path / "r.json")
    assert code == 3
    (line,) = err.splitlines()
    assert "HTTP 401 Unauthorized" in line and "Traceback" not in err


def test_connection_refused_is_one_line(tmp_path: Path) -> None:
    with serve([]) as cluster:
        kubeconfig = cluster.kubeconfig(tmp_path / "k")
    # the server is gone: nothing listens on its port any more
    code, err = live_audit(kubeconfig, tmp_path / "r.json")
    assert code == 3
    (line,) = err.splitlines()
    assert line == (
        f"polyfence: error: cluster:fake-ctx/v1/namespaces:/: cannot connect to {cluster.url}: "
        "Connection refused"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--context", "prod"], "unknown context 'prod' in kubeconfig {k} (known: fake-ctx)"),
        (["--in-cluster"], "--in-cluster uses the pod's service account"),
    ],
)
def test_bad_configuration_is_one_line_exit_2(
    pci: tuple[FakeCluster, Path], tmp_path: Path, args: list[str], message: str
) -> None:
    cluster, kubeconfig = pci
    code, err = live_audit(kubeconfig, tmp_path / "r.json", *args)
    assert code == 2
    (line,) = err.splitlines()
    assert line.startswith("polyfence: error: " + message.format(k=kubeconfig))
    assert cluster.requests == []


def test_missing_kubeconfig_and_not_in_a_pod(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = str(AUDITS / "pci" / "audit.yaml")
    code, _, err = run(
        "audit", "--live", "--kubeconfig", str(tmp_path / "nope"), "--config", config
    )
    assert (code, err) == (2, f"polyfence: error: no kubeconfig at {tmp_path / 'nope'}\n")
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    code, _, err = run("audit", "--live", "--in-cluster", "--config", config)
    assert code == 2
    assert err.startswith("polyfence: error: --in-cluster: ") and len(err.splitlines()) == 1


def test_saved_snapshot_audits_offline_to_the_same_findings(tmp_path: Path) -> None:
    objects, others = cluster_objects("mixed")
    snapshot = tmp_path / "evidence" / "snapshot.yaml"
    with serve(objects) as cluster:
        kubeconfig = cluster.kubeconfig(tmp_path / "k")
        code, err = live_audit(
            kubeconfig, tmp_path / "live.json", "--save-snapshot", str(snapshot), scenario="mixed"
        )
    assert code == 0, err
    text = snapshot.read_text()
    assert text.startswith(f"# polyfence live snapshot of cluster:fake-ctx ({cluster.url}), read ")
    assert "managedFields" not in text
    saved = [d.data for d in load_documents([str(snapshot)])]
    assert len(saved) == len(objects)
    assert sorted(json.dumps(o, sort_keys=True) for o in saved) == sorted(
        json.dumps(o, sort_keys=True) for o in objects
    )
    live = json.loads((tmp_path / "live.json").read_text())
    offline = offline_report("mixed", tmp_path, str(snapshot), *others)
    assert normalised(offline) == normalised(live)
    assert [p.name for p in snapshot.parent.iterdir()] == ["snapshot.yaml"]  # atomic: no leftovers


def test_namespace_filter_limits_namespaced_kinds(
    pci: tuple[FakeCluster, Path], tmp_path: Path
) -> None:
    cluster, kubeconfig = pci
    cluster.forbidden.add(("networking.k8s.io/v1", "payments", "ingresses"))
    snapshot = tmp_path / "s.yaml"
    code, err = live_audit(
        kubeconfig,
        tmp_path / "r.json",
        "--namespace",
        "payments",
        "--namespace",
        "kube-system",
        "--save-snapshot",
        str(snapshot),
    )
    assert code == 0, err
    assert (
        "polyfence: warning: live: forbidden (HTTP 403), so the audit does not see them: "
        + ("networking.k8s.io/v1/namespaces/payments/ingresses\n")
        in err
    )
    paths = cluster.paths()
    assert "/api/v1/namespaces/payments" in paths and "/api/v1/namespaces" not in paths
    assert "/api/v1/namespaces/payments/pods" in paths and "/api/v1/pods" not in paths
    assert "/apis/apps/v1/namespaces/kube-system/daemonsets" in paths
    assert "/api/v1/nodes" in paths  # cluster-scoped kinds are still read whole
    assert "/apis/cilium.io/v2/ciliumclusterwidenetworkpolicies" in paths
    saved = [d.data for d in load_documents([str(snapshot)])]
    spaces = {o["metadata"].get("namespace") or o["metadata"]["name"] for o in saved}
    assert spaces == {"payments", "kube-system", "node-1"}
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["scope"]["namespaces"] == ["payments"]  # kube-system: excluded by default
    assert report["scope"]["inputs"] == [
        f"cluster:fake-ctx ({cluster.url}; namespaces payments, kube-system)"
    ]


def test_unknown_namespace_is_an_error(pci: tuple[FakeCluster, Path], tmp_path: Path) -> None:
    _, kubeconfig = pci
    code, err = live_audit(kubeconfig, tmp_path / "r.json", "--namespace", "nope")
    assert code == 3
    assert 'HTTP 404 Not Found (namespaces "nope" not found)' in err


def test_something_to_audit_is_required(tmp_path: Path) -> None:
    code, _, err = run("audit", "--format", "json")
    assert code == 2 and "give snapshot PATHs, --live, or both" in err
    code, _, err = run(
        "audit", str(AUDITS / "pci" / "cluster"), "--context", "x", "--namespace", "a"
    )
    assert (code, err) == (2, "polyfence: error: --context, --namespace need --live\n")


def test_without_the_client_installed(
    pci: tuple[FakeCluster, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, kubeconfig = pci
    monkeypatch.setitem(sys.modules, "kubernetes", None)  # what an import sees when it is absent
    code, err = live_audit(kubeconfig, tmp_path / "r.json")
    assert code == 2
    assert err == (
        "polyfence: error: reading a live cluster needs the kubernetes client: "
        "pip install 'polyfence[kubernetes]'\n"
    )


def test_tls_verified_against_the_kubeconfig_ca(tmp_path: Path) -> None:
    pytest.importorskip("cryptography")
    objects, _ = cluster_objects("pci")
    cert, key = self_signed(tmp_path)
    with serve(objects, tls=(cert, key)) as cluster:
        trusted = cluster.kubeconfig(tmp_path / "trusted", ca=cert)
        code, err = live_audit(trusted, tmp_path / "r.json")
        assert code == 0, err
        assert cluster.url.startswith("https://") and f"({cluster.url})" in err
        untrusted = cluster.kubeconfig(tmp_path / "untrusted")  # the system CAs do not know it
        code, err = live_audit(untrusted, tmp_path / "u.json")
    assert code == 3
    (line,) = err.splitlines()
    assert line.startswith(
        f"polyfence: error: cluster:fake-ctx/v1/namespaces:/: cannot connect to {cluster.url}: "
    )
    assert "CERTIFICATE_VERIFY_FAILED" in line
