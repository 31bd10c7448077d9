"""Intake as users have their input: API-server lists, kubectl dumps, app folders, broken files.

A verdict computed on a silently shrunken cluster is a wrong verdict, so every test here checks
that input is either read faithfully or refused with a located one-line error (exit 3), and
that what is passed over is named on stderr.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from polyfence import api
from polyfence.cli import cli
from polyfence.errors import InputError
from polyfence.io.files import line_of, parse_text, read_documents
from polyfence.io.kinds import Disposition, KindRef, classify

POLICY = {
    "metadata": {"name": "db", "namespace": "shop"},
    "spec": {
        "podSelector": {"matchLabels": {"app": "db"}},
        "policyTypes": ["Ingress"],
        "ingress": [
            {
                "from": [
                    {
                        "namespaceSelector": {"matchLabels": {"team": "shop"}},
                        "podSelector": {"matchLabels": {"app": "api"}},
                    }
                ]
            }
        ],
    },
}


def _pod(name: str, ns: str, labels: dict[str, str], ip: str) -> dict[str, Any]:
    """A Pod as the API server returns it inside a PodList: no kind, server bookkeeping."""
    return {
        "metadata": {
            "name": name,
            "namespace": ns,
            "labels": labels,
            "uid": f"uid-{name}",
            "resourceVersion": "42",
            "managedFields": [{"manager": "kubelet", "operation": "Update"}],
        },
        "spec": {"containers": [{"name": "c", "image": "img"}]},
        "status": {"podIP": ip, "podIPs": [{"ip": ip}], "phase": "Running"},
    }


def run(*args: str, input: str | bytes | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), input=input)
    return result.exit_code, result.stdout, result.stderr


def _write(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data) if path.suffix == ".json" else yaml.safe_dump_all(data))
    return path


@pytest.fixture
def dump(tmp_path: Path) -> dict[str, Path]:
    """A cluster as ``kubectl get … -o json`` and the API prints it: typed lists, no item kinds."""
    policies = _write(
        tmp_path / "netpol.json",
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicyList",
            "metadata": {"resourceVersion": "9"},
            "items": [
                {
                    **POLICY,
                    "metadata": {
                        **POLICY["metadata"],
                        "generation": 1,
                        "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"},
                    },
                    "status": {},
                }
            ],
        },
    )
    namespaces = _write(
        tmp_path / "ns.json",
        {
            "apiVersion": "v1",
            "kind": "NamespaceList",
            "items": [
                {"metadata": {"name": "shop", "labels": {"team": "shop"}}},
                {"metadata": {"name": "other"}},
            ],
        },
    )
    pods = _write(
        tmp_path / "pods.json",
        {
            "apiVersion": "v1",
            "kind": "PodList",
            "items": [
                _pod("db-0", "shop", {"app": "db"}, "10.0.0.1"),
                _pod("api-0", "shop", {"app": "api"}, "10.0.0.2"),
                _pod("api-1", "other", {"app": "api"}, "10.0.0.3"),
            ],
        },
    )
    return {"policies": policies, "namespaces": namespaces, "pods": pods}


# typed lists and live objects -------------------------------------------------------------


def test_typed_list_items_take_the_list_kind_and_keep_their_pointer(dump: dict[str, Path]) -> None:
    docs, problems = read_documents([str(dump["pods"]), str(dump["policies"])])
    assert not problems
    assert [(d.kind, d.api_version, d.source.pointer) for d in docs] == [
        ("Pod", "v1", "/items/0"),
        ("Pod", "v1", "/items/1"),
        ("Pod", "v1", "/items/2"),
        ("NetworkPolicy", "networking.k8s.io/v1", "/items/0"),
    ]


@pytest.mark.parametrize(("src", "verdict"), [("shop/api-0", "ALLOWED"), ("other/api-1", "DENIED")])
def test_a_dump_with_status_and_managed_fields_reads_and_namespace_labels_count(
    src: str, verdict: str, dump: dict[str, Path]
) -> None:
    """Before: the NamespaceList under --inventory was ignored, so team=shop vanished and the
    verdict changed; the policy's ``status: {}`` was a hard error."""
    code, out, err = run(
        "explain",
        str(dump["policies"]),
        *("--inventory", str(dump["namespaces"]), "--inventory", str(dump["pods"])),
        *("--src", src, "--dst", "shop/db-0", "--port", "5432"),
    )
    assert code == 0, err
    assert "on the given inventory: 2 namespaces, 3 endpoints" in out.splitlines()[0]
    assert out.splitlines()[1].startswith(verdict)


def test_hostile_lists_are_located_errors(tmp_path: Path) -> None:
    mixed = {
        "apiVersion": "v1",
        "kind": "PodList",
        "items": [_pod("a", "x", {}, "10.0.0.1"), {"kind": "Namespace", "metadata": {"name": "x"}}],
    }
    generic = {"apiVersion": "v1", "kind": "List", "items": [{"metadata": {"name": "x"}}]}
    nested = {
        "apiVersion": "v1",
        "kind": "List",
        "items": [
            {"apiVersion": "v1", "kind": "NamespaceList", "items": [{"metadata": {"name": "n"}}]}
        ],
    }
    not_objects = {"apiVersion": "v1", "kind": "PodList", "items": [1]}
    with pytest.raises(InputError) as info:
        parse_text(json.dumps(mixed), "m.json")
    assert str(info.value.diagnostics[0]).startswith("m.json[0]:/items/1/kind: a PodList holds Pod")
    with pytest.raises(InputError) as info:
        parse_text(json.dumps(generic), "g.json")
    assert "needs its own kind" in str(info.value)
    with pytest.raises(InputError):
        parse_text(json.dumps(not_objects), "n.json")
    (doc,) = parse_text(json.dumps(nested), "l.json")  # a List of a typed list: flattened
    assert (doc.kind, doc.source.pointer) == ("Namespace", "/items/0/items/0")
    assert parse_text("apiVersion: v1\nkind: PodList\nitems: null\n", "e.yaml") == []


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        (
            "apiVersion: v1\nkind: {a: 1}\nmetadata: {name: x}\n",
            "[0]:/kind (line 2): kind must be a string, not a map",
        ),
        ("apiVersion: v1\nkind: [Pod]\n", "[0]:/kind (line 2): kind must be a string, not a list"),
        ("apiVersion: [v1]\nkind: Pod\n", "[0]:/apiVersion (line 1): apiVersion must be a string"),
    ],
)
def test_kind_that_is_not_a_string_is_a_located_error(text: str, needle: str) -> None:
    code, out, err = run("validate", "-", input=text)
    assert code == 3 and out == ""
    assert needle in err and "Traceback" not in err


# app folders: what is skipped, what is refused ----------------------------------------------


APP = """apiVersion: v1
kind: ConfigMap
metadata: {name: cfg, namespace: shop}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: rb, namespace: shop}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: web, namespace: shop}
---
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
---
apiVersion: v1
kind: ConfigMap
metadata: {name: cfg2, namespace: shop}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny, namespace: shop}
spec: {podSelector: {}}
"""
ANTREA = """---
apiVersion: crd.antrea.io/v1beta1
kind: NetworkPolicy
metadata: {name: antrea, namespace: shop}
spec: {}
"""


def test_kinds_without_network_policy_are_skipped_with_one_summary_line() -> None:
    code, out, err = run("validate", "-", input=APP)
    assert code == 0, err
    assert "1 policies" in out and "5 documents skipped" in out
    (line,) = [x for x in err.splitlines() if "skipped" in x]
    assert line.endswith(
        "skipped 5 documents of 4 kinds that carry no network policy: ConfigMap \u00d72, "
        "kustomize.config.k8s.io/v1beta1/Kustomization, networking.k8s.io/v1/Ingress, "
        "rbac.authorization.k8s.io/v1/RoleBinding"
    )


def test_a_kind_that_may_carry_policy_is_an_error_unless_skip_unknown(tmp_path: Path) -> None:
    out_file = tmp_path / "out.yaml"
    code, out, err = run("convert", "--to", "calico", "-", "-o", str(out_file), input=APP + ANTREA)
    assert out == ""
    assert code == 3 and not out_file.exists()
    assert (
        "<stdin>[6]:/ (line 25): crd.antrea.io/v1beta1/NetworkPolicy may carry network policy"
        in err
    )
    code, _, err = run(
        "convert", "--to", "calico", "-", "-o", str(out_file), "--skip-unknown", input=APP + ANTREA
    )
    assert code == 0, err
    assert "skipped 1 document of 1 kind that may carry network policy" in err
    with pytest.raises(InputError):
        api.load(parse_text(APP + ANTREA, "app.yaml"))
    bundle = api.load(parse_text(APP + ANTREA, "app.yaml"), skip_unknown=True)
    assert [
        s.kind.kind for s in bundle.skipped if s.disposition is Disposition.MAY_CARRY_POLICY
    ] == ["NetworkPolicy"]


@pytest.mark.parametrize(
    ("api_version", "kind", "expected"),
    [
        ("v1", "ConfigMap", Disposition.NO_POLICY),
        ("apps/v1", "Deployment", Disposition.NO_POLICY),
        ("policy/v1", "PodDisruptionBudget", Disposition.NO_POLICY),
        ("kyverno.io/v1", "ClusterPolicy", Disposition.NO_POLICY),
        ("route.openshift.io/v1", "Route", Disposition.NO_POLICY),
        ("policy.linkerd.io/v1beta3", "Server", Disposition.MAY_CARRY_POLICY),
        ("consul.hashicorp.com/v1alpha1", "ServiceIntentions", Disposition.MAY_CARRY_POLICY),
        ("k8s.ovn.org/v1", "EgressFirewall", Disposition.MAY_CARRY_POLICY),
        ("policy.networking.k8s.io/v1alpha1", "AdminNetworkPolicy", Disposition.MAY_CARRY_POLICY),
        ("networking.k8s.io/v1beta1", "NetworkPolicy", Disposition.MAY_CARRY_POLICY),
        ("v1", "NetworkPolicy", Disposition.MAY_CARRY_POLICY),
        ("networking.istio.io/v1", "Sidecar", Disposition.MAY_CARRY_POLICY),
        ("networking.istio.io/v1", "VirtualService", Disposition.NO_POLICY),
        ("projectcalico.org/v3", "Profile", Disposition.MAY_CARRY_POLICY),
        ("projectcalico.org/v3", "IPPool", Disposition.NO_POLICY),
        ("example.com/v1", "Widget", Disposition.UNKNOWN),
    ],
)
def test_kind_classification(api_version: str, kind: str, expected: Disposition) -> None:
    assert classify(KindRef(api_version, kind)) is expected


# the inventory must be an inventory ---------------------------------------------------------


def test_an_inventory_without_endpoints_is_an_error(dump: dict[str, Path]) -> None:
    code, out, err = run(
        "connectivity", str(dump["policies"]), "--inventory", str(dump["namespaces"])
    )
    assert code == 3 and out == ""
    assert "the inventory holds no Pod, workload or endpoint" in err


def test_every_connectivity_output_names_its_basis(dump: dict[str, Path]) -> None:
    code, out, err = run(
        "connectivity",
        str(dump["policies"]),
        "--inventory",
        str(dump["pods"]),
        "--output-format",
        "json",
    )
    assert code == 0, err
    assert json.loads(out)["basis"] == "on the given inventory: 2 namespaces, 3 endpoints"
    code, out, err = run("connectivity", str(dump["policies"]))
    assert code == 0, err
    assert out.startswith("# connectivity on a synthesised inventory")


# paths that hold nothing, or cannot be walked ------------------------------------------------


@pytest.mark.parametrize("verb", ["validate", "convert", "connectivity", "audit"])
def test_empty_input_is_an_error_for_every_verb(verb: str, tmp_path: Path) -> None:
    empty_dir = tmp_path / "empty"
    empty_dir.mkdir()
    (empty_dir / "README.md").write_text("no yaml here")
    empty_file = tmp_path / "empty.yaml"
    empty_file.write_text("---\n# nothing\n")
    extra = ["--to", "k8s"] if verb == "convert" else []
    for target, stdin in ((str(empty_dir), None), (str(empty_file), None), ("-", "")):
        code, out, err = run(verb, *extra, target, input=stdin)
        assert code == 3, (verb, target, err)
        assert "nothing to read" in err and out == ""


def test_dangling_and_looping_links_are_errors(tmp_path: Path) -> None:
    folder = tmp_path / "policies"
    folder.mkdir()
    (folder / "deny.yaml").write_text(APP.split("---\n")[-1])
    os.symlink(tmp_path / "gone.yaml", folder / "dangling.yaml")
    os.symlink(folder, folder / "loop")
    docs, problems = read_documents([str(folder)])
    assert len(docs) == 1
    messages = sorted(str(p) for p in problems)
    assert any("dangling.yaml" in m and "dangling" in m for m in messages), messages
    assert any("loop" in m and "loops back" in m for m in messages), messages


def test_an_unreadable_directory_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "policies"
    (folder / "locked").mkdir(parents=True)
    (folder / "deny.yaml").write_text(APP.split("---\n")[-1])
    real = Path.iterdir

    def iterdir(self: Path) -> Any:
        if self.name == "locked":  # root reads every directory; the refusal is simulated
            raise PermissionError(13, "Permission denied")
        return real(self)

    monkeypatch.setattr(Path, "iterdir", iterdir)
    docs, problems = read_documents([str(folder)])
    assert len(docs) == 1
    assert [str(p) for p in problems] == [
        f"{folder / 'locked'}:/: cannot read directory: Permission denied"
    ]


# bytes and keys the API server would refuse ------------------------------------------------


def test_non_utf8_stdin_is_a_located_error() -> None:
    code, out, err = run("validate", "-", input=b"kind: Pod\n\xff\xfe\n")
    assert code == 3 and out == ""
    assert "<stdin>:/: cannot read: not UTF-8 text (byte 0xff at line 2)" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("name", "text", "needle"),
    [
        ("d.yaml", "a: 1\nb:\n  c: 1\n  c: 2\n", "d.yaml[0]:/: duplicate key 'c' at line 4"),
        ("d.yaml", "---\na: 1\n---\nx: 1\nx: 2\n", "d.yaml[1]:/: duplicate key 'x' at line 5"),
        ("d.json", '{"a": {"b": 1, "b": 2}}', "d.json[0]:/: duplicate key 'b' in a JSON object"),
    ],
)
def test_duplicate_keys_are_located_errors(name: str, text: str, needle: str) -> None:
    with pytest.raises(InputError) as info:
        parse_text(text, name)
    assert str(info.value) == needle


def test_errors_name_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: ok}\n---\n"
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p, namespace: x}\n"
        "spec:\n  podSelector: {}\n  ingress:\n  - ports:\n    - port: 99999\n"
    )
    code, out, err = run("validate", str(bad))
    assert code == 3 and out == ""
    assert f"{bad}[1]:/spec/ingress/0/ports/0/port (line 12):" in err
    docs = parse_text(bad.read_text(), str(bad))
    assert line_of(docs[1].source.child("spec", "podSelector")) == 9


# Calico's and Cilium's endpoints as the inventory -------------------------------------------

WEPS = """apiVersion: projectcalico.org/v3
kind: WorkloadEndpointList
items:
- apiVersion: projectcalico.org/v3
  kind: WorkloadEndpoint
  metadata:
    name: node1-k8s-api--0-eth0
    namespace: shop
    labels: {app: api, projectcalico.org/namespace: shop, projectcalico.org/orchestrator: k8s,
             projectcalico.org/serviceaccount: api-sa}
  spec: {node: node1, orchestrator: k8s, pod: api-0, endpoint: eth0,
         ipNetworks: [10.0.0.2/32], profiles: [kns.shop, ksa.shop.api-sa],
         ports: [{name: http, port: 8080, protocol: TCP}]}
- apiVersion: projectcalico.org/v3
  kind: WorkloadEndpoint
  metadata:
    name: node1-k8s-db--0-eth0
    namespace: shop
    labels: {app: db, projectcalico.org/namespace: shop, projectcalico.org/orchestrator: k8s}
  spec: {node: node1, orchestrator: k8s, pod: db-0, endpoint: eth0, profiles: [kns.shop]}
---
apiVersion: projectcalico.org/v3
kind: ProfileList
items:
- apiVersion: projectcalico.org/v3
  kind: Profile
  metadata: {name: kns.shop}
  spec:
    ingress: [{action: Allow}]
    egress: [{action: Allow}]
    labelsToApply: {pcns.projectcalico.org/name: shop, pcns.team: shop}
- apiVersion: projectcalico.org/v3
  kind: Profile
  metadata: {name: ksa.shop.api-sa}
  spec: {labelsToApply: {pcsa.projectcalico.org/name: api-sa, pcsa.role: frontend}}
"""


def test_calicoctl_workload_endpoints_and_profiles_are_the_inventory() -> None:
    bundle = api.load(parse_text(WEPS, "weps.yaml"))
    assert not bundle.skipped and not len(bundle.policies)
    api_pod = bundle.inventory.find("shop/api-0")
    db_pod = bundle.inventory.find("shop/db-0")
    assert api_pod is not None and db_pod is not None
    assert dict(api_pod.labels) == {"app": "api"}  # automatic labels are the IR's own facts
    assert api_pod.service_account == "api-sa" and api_pod.ips == ("10.0.0.2",)
    assert api_pod.resolve_port("http", 6) == 8080 and api_pod.node == "node1"
    assert db_pod.ips == ()  # a WorkloadEndpoint without ipNetworks is still the pod
    assert bundle.inventory.namespace("shop").labels["team"] == "shop"
    assert dict(bundle.inventory.service_account_labels[("shop", "api-sa")]) == {"role": "frontend"}
    policies = json.dumps({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", **POLICY})
    both = api.load(parse_text(policies, "p.json") + parse_text(WEPS, "weps.yaml"))
    _, allowed = api.explain(both, "shop/api-0", "shop/db-0", "5432")
    assert allowed.allowed


def test_a_profile_with_its_own_rules_is_policy_not_inventory() -> None:
    text = WEPS.replace("ingress: [{action: Allow}]", "ingress: [{action: Deny}]")
    with pytest.raises(InputError) as info:
        api.load(parse_text(text, "weps.yaml"))
    assert "projectcalico.org/v3/Profile may carry network policy" in str(info.value)


CEPS = {
    "apiVersion": "cilium.io/v2",
    "kind": "CiliumEndpointList",
    "items": [
        {
            "metadata": {"name": "api-0", "namespace": "shop", "labels": {"app": "api"}},
            "status": {
                "identity": {
                    "id": 5678,
                    "labels": [
                        "k8s:app=api",
                        "k8s:io.cilium.k8s.namespace.labels.team=shop",
                        "k8s:io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name=shop",
                        "k8s:io.cilium.k8s.policy.cluster=default",
                        "k8s:io.cilium.k8s.policy.serviceaccount=api-sa",
                        "k8s:io.kubernetes.pod.namespace=shop",
                    ],
                },
                "networking": {"addressing": [{"ipv4": "10.0.0.2"}], "node": "192.168.1.1"},
                "named-ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
            },
        }
    ],
}


def test_cilium_endpoints_are_the_inventory() -> None:
    bundle = api.load(parse_text(json.dumps(CEPS), "ceps.json"))
    pod = bundle.inventory.find("shop/api-0")
    assert pod is not None
    assert dict(pod.labels) == {"app": "api"} and pod.service_account == "api-sa"
    assert pod.ips == ("10.0.0.2",) and pod.resolve_port("http", 6) == 8080
    assert bundle.inventory.namespace("shop").labels["team"] == "shop"


def test_an_audit_config_naming_an_undefined_zone_is_an_error(tmp_path: Path) -> None:
    config = tmp_path / "audit.yaml"
    config.write_text(
        "zones: [{name: cde, namespaces: [pay]}]\n"
        "forbidden_flows: [{from: 'zone:dmz', to: 'zone:cde', reason: segmentation}]\n"
    )
    snapshot = tmp_path / "snap.yaml"
    snapshot.write_text(APP.split("---\n")[-1])
    code, out, err = run("audit", str(snapshot), "--config", str(config), "--format", "json")
    assert code == 3 and out == ""
    assert "/forbidden_flows/0/from (line 2): zone:dmz names no zone defined under zones" in err


# implementation-defined facts are said, and switchable ---------------------------------------

HOST_AND_MESH = """apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: agents, namespace: ops}
spec: {podSelector: {matchLabels: {app: agent}}, policyTypes: [Ingress]}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: web, namespace: shop}
spec:
  selector: {matchLabels: {app: web}}
  rules: [{from: [{source: {namespaces: [shop]}}]}]
---
apiVersion: v1
kind: Pod
metadata: {name: agent-0, namespace: ops, labels: {app: agent}}
spec: {hostNetwork: true, nodeName: n1, containers: [{name: c, image: i}]}
status: {podIP: 192.168.0.10}
---
apiVersion: v1
kind: Pod
metadata: {name: web-0, namespace: shop, labels: {app: web}}
spec: {nodeName: n2, containers: [{name: c, image: i}]}
status: {podIP: 10.0.0.5}
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: other}
spec: {nodeName: n2, containers: [{name: c, image: i}]}
status: {podIP: 10.0.0.6}
"""


def test_host_network_treatment_is_said_and_switchable(tmp_path: Path) -> None:
    source = tmp_path / "cluster.yaml"
    source.write_text(HOST_AND_MESH)
    args = ["explain", str(source), "--src", "other/client", "--dst", "ops/agent-0", "--port", "80"]
    code, out, err = run(*args)
    assert code == 0, err
    assert "treated as their node, so this policy does not apply to them" in err
    assert out.splitlines()[1].startswith("ALLOWED")
    code, out, err = run(*args, "--host-network", "as-pods")
    assert code == 0, err
    assert "treated as pods (--host-network as-pods)" in err
    assert out.splitlines()[1].startswith("DENIED")


def test_mesh_policies_on_workloads_without_a_proxy_are_said_and_mesh_all_enrols_them(
    tmp_path: Path,
) -> None:
    source = tmp_path / "cluster.yaml"
    source.write_text(HOST_AND_MESH)
    args = ["explain", str(source), "--src", "other/client", "--dst", "shop/web-0", "--port", "80"]
    code, out, err = run(*args)
    assert code == 0, err
    assert "not enforced on 1 of 1 selected workloads (no sidecar or ambient enrolment)" in err
    assert out.splitlines()[1].startswith("ALLOWED")
    code, out, err = run(*args, "--mesh", "all")
    assert code == 0, err
    assert "not enforced" not in err
    assert out.splitlines()[1].startswith("DENIED")


def test_a_kind_polyfence_does_not_know_is_skipped_by_name() -> None:
    text = (
        APP.replace("kind: Kustomization", "kind: Application").replace(
            "kustomize.config.k8s.io/v1beta1", "argoproj.io/v9"
        )
        + "---\napiVersion: v9\nkind: ConfigMap\nmetadata: {name: odd}\n"
    )
    code, _, err = run("validate", "-", input=text)
    assert code == 0, err
    assert (
        "polyfence: note: skipped 1 document of 1 kind polyfence does not know "
        "(not network policy by their names): v9/ConfigMap\n"
    ) in err
    assert "argoproj.io/v9/Application" in err  # a group known to carry no policy


# --keep-going --------------------------------------------------------------------------------

GOOD_CALICO = """apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: good, namespace: shop}
spec:
  selector: app == 'db'
  ingress: [{action: Allow, source: {selector: app == 'api'}}]
"""
WIDENING_CALICO = """apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: wide, namespace: shop}
spec:
  order: 10
  selector: app == 'web'
  ingress:
  - {action: Deny, source: {selector: app == 'bad'}}
  - {action: Allow}
"""
BROKEN_CALICO = (
    "apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\n"
    "metadata: {name: broken, namespace: shop}\nspec: {selector: 1}\n"
)


@pytest.mark.parametrize(
    ("files", "code"),
    [((GOOD_CALICO, WIDENING_CALICO, BROKEN_CALICO), 3), ((GOOD_CALICO, WIDENING_CALICO), 4)],
)
def test_keep_going_converts_what_it_can_and_names_the_rest(
    files: tuple[str, ...], code: int, tmp_path: Path
) -> None:
    names = []
    for i, text in enumerate(files):
        path = tmp_path / f"in{i}.yaml"
        path.write_text(text)
        names.append(str(path))
    out_dir = tmp_path / "out"
    status, _, err = run("convert", "--to", "k8s", *names, "-o", f"{out_dir}/")
    assert status == code and not out_dir.exists()  # without --keep-going: all or nothing
    status, _, err = run("convert", "--to", "k8s", *names, "-o", f"{out_dir}/", "--keep-going")
    assert status == code, err
    written = sorted(str(p.relative_to(out_dir)) for p in out_dir.rglob("*.yaml"))
    assert written == ["shop/NetworkPolicy-good.yaml"]
    assert f"{len(files) - 1} files not converted, nothing written for them" in err
    assert f"{names[1]}: refused:" in err
    if len(files) == 3:
        assert f"{names[2]}: error:" in err


# refusals a user can act on ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("protocol", "port", "words"),
    [
        ("TCP", 443, "TCP/443"),
        ("UDP", None, "any UDP port"),
        ("ICMP", 8 * 256, "ICMP type 8 code 0"),
        ("ICMPv6", None, "any ICMPv6"),
        ("47", None, "IP protocol 47 (a protocol other than TCP, UDP, SCTP and ICMP)"),
        (136, 5, "UDPLite/5"),
        (0, None, "IP protocol 0 (a protocol other than TCP, UDP, SCTP and ICMP)"),
    ],
)
def test_witnesses_in_words(protocol: str | int, port: int | None, words: str) -> None:
    from polyfence.model.ports import connection_words

    assert connection_words(protocol, port) == words


def test_the_header_never_contradicts_the_verdict_and_widening_comes_first() -> None:
    import io

    from polyfence.cli import _print_report
    from polyfence.fidelity import Effect, Feature, FidelityReport, Loss, Treatment, Verification

    narrowing = Loss(Effect.NARROWED, Treatment.DROPPED, Feature.ICMP, None, "icmp codes dropped")
    widening = Loss(Effect.WIDENED, Treatment.DROPPED, Feature.DENY_ACTION, None, "deny dropped")
    report = FidelityReport(
        "calico", "kubernetes", (narrowing, widening), Verification("narrower", "given")
    )
    stream = io.StringIO()
    _print_report(report, stream)
    lines = stream.getvalue().splitlines()
    assert lines[0] == "fidelity calico -> kubernetes: may widen (2 losses: 1 widen, 1 narrow)"
    assert "WIDENS" not in lines[0]
    assert lines[1].endswith("deny dropped") and lines[2].lstrip().startswith("what to do (deny")
    assert lines[3].endswith("icmp codes dropped")
    wider = FidelityReport("calico", "kubernetes", (narrowing,), Verification("wider", "given"))
    stream = io.StringIO()
    _print_report(wider, stream)
    assert stream.getvalue().startswith("fidelity calico -> kubernetes: WIDENS (1 loss: 1 narrow)")


def test_the_audit_summary_names_what_it_ran_on() -> None:
    folder = Path(__file__).resolve().parents[2] / "examples" / "audits" / "pci"
    code, _, err = run(
        "audit", str(folder / "cluster"), "--config", str(folder / "audit.yaml"), "-o", os.devnull
    )
    assert code == 0, err
    assert "audit on the given snapshot (4 namespaces, 6 workloads, 1 node): " in err


# hostile shapes found by fuzzing the readers: located errors, never tracebacks ------------------

_DEPLOY = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d, namespace: n}\n"


@pytest.mark.parametrize(
    ("text", "pointer"),
    [
        (_DEPLOY + "spec: {template: x}\n", "/spec/template"),
        (_DEPLOY + "spec: {template: {spec: 3}}\n", "/spec/template/spec"),
        (
            _DEPLOY + "spec: {template: {metadata: {labels: [a]}}}\n",
            "/spec/template/metadata/labels",
        ),
        ("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: []\n", "/spec"),
        (
            "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nstatus: {podIPs: [1]}\n",
            "/status/podIPs/0",
        ),
        (
            "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: p}\n"
            "spec: {mtls: true}\n",
            "/spec/mtls",
        ),
        (
            "apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\n"
            "metadata: {name: p, namespace: n, labels: x}\nspec: {selector: all()}\n",
            "/metadata/labels",
        ),
        (
            "apiVersion: vpcresources.k8s.aws/v1beta1\nkind: SecurityGroupPolicy\n"
            "metadata: {name: s, namespace: n}\nspec: {podSelector: [], securityGroups: {groupIds: [sg-1]}}\n",
            "/spec/podSelector",
        ),
    ],
)
def test_hostile_shapes_are_located_errors(text: str, pointer: str) -> None:
    code, out, err = run("validate", "-", input=text)
    assert code == 3 and out == "", err
    assert f"<stdin>[0]:{pointer} (line" in err and "Traceback" not in err


def test_schema_errors_sort_by_place_even_when_names_and_indexes_meet() -> None:
    from polyfence.schemas import path_key

    paths = [["spec", "ingress", 1], ["spec", "ingress", "x"], ["spec", "ingress", 0]]
    assert sorted(paths, key=path_key) == [paths[2], paths[0], paths[1]]


def test_the_same_object_twice_is_named_with_both_places(tmp_path: Path) -> None:
    first, second = tmp_path / "a.yaml", tmp_path / "b.yaml"
    first.write_text(APP.split("---\n")[-1])
    second.write_text(APP.split("---\n")[0] + "---\n" + APP.split("---\n")[-1])
    code, _, err = run("validate", str(first), str(second))
    assert code == 0, err
    assert (
        f"warning: {second}[1]:/ (line 5): NetworkPolicy shop/deny is also defined at {first}[0]:/"
    ) in err
