"""Differential test: polyfence's Kubernetes output vs its source, judged by IBM's NCA.

For every file of tests/data/corpus/k8s, polyfence converts the file to Kubernetes
NetworkPolicy; network-config-analyzer 2.1.0 (an independent implementation, run from its own
venv) must then call the source and the output semantically equivalent on a topology derived
from the policies' selectors (pods and namespaces that match, near misses that do not, and
fixed decoys).

NCA reads unknown kinds and unparseable files as "no policy" and calls two empty configs
equivalent, so an "equivalent" verdict is only trusted when

* NCA explains, for each policy, a pod that it selects and names the policy among the
  configurations affecting that pod (the policy was loaded and its selector bites); and
* negative controls bite on both sides: with A = allow-all policies in the policies'
  namespaces and D = the source's policies with their rules removed (written by this test, not
  read through NCA), NCA finds ``C`` and ``C + A`` different when C restricts anything, and
  ``D`` and ``C + D`` different when C allows anything. A config that NCA read as empty
  passes neither (empty + A = empty, empty + D = D), so a silently dropped config fails here.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

import polyfence

from .nca_support import (
    CORPUS,
    allow_all_policies,
    assert_loaded,
    build_topology,
    corpus_names,
    dump_yaml,
    equiv_verdict,
    grants_traffic,
    matches,
    near_misses,
    network_policies,
    ns_of,
    requirements,
    restricts_traffic,
    run_controls,
    run_nca,
    satisfy,
    satisfy_each_value,
    source_for_nca,
    stripped_policies,
    topology_warnings,
)


@pytest.mark.parametrize("name", corpus_names())
def test_nca_judges_kubernetes_output_equivalent(name: str, nca: Path, tmp_path: Path) -> None:
    original = CORPUS / name
    bundle = polyfence.load([str(original)])
    result = polyfence.convert(bundle, "kubernetes")
    output = dump_yaml(tmp_path / "polyfence-out.yaml", result.documents)

    source = source_for_nca(original, tmp_path)
    src_pols = network_policies(list(yaml.safe_load_all(source.read_text())))
    out_pols = network_policies(result.documents)
    assert src_pols, f"{name} holds no NetworkPolicy"
    assert out_pols, f"polyfence rendered no NetworkPolicy for {name}"

    topo = build_topology(src_pols + out_pols)
    topo_file = dump_yaml(tmp_path / "topology.yaml", [topo["doc"]])
    policy_nss = {ns_of(p) for p in src_pols + out_pols}
    allow_file = dump_yaml(tmp_path / "control-allow-all.yaml", allow_all_policies(policy_nss))
    deny_file = dump_yaml(tmp_path / "control-stripped.yaml", stripped_policies(src_pols))

    # The verdict, as a user would ask for it. Without --print_ipv6, NCA 2.1.0 leaves IPv6 out
    # of the comparison when neither side names an IPv6 block, so "all destinations" and
    # "0.0.0.0/0 + every namespace" would pass as equivalent.
    equiv = run_nca(
        nca,
        [
            "--equiv",
            str(output),
            "--base_np_list",
            str(source),
            "--ns_list",
            str(topo_file),
            "--pod_list",
            str(topo_file),
            "--print_ipv6",
        ],
        tmp_path,
    )
    equivalent = equiv_verdict(equiv)
    bad_topology = topology_warnings(equiv)
    assert not bad_topology, f"the topology does not exercise every selector: {bad_topology}"

    # Refuse a vacuous verdict: NCA loaded both sides, and the controls bite on both.
    assert_loaded(nca, source, src_pols, topo, topo_file, tmp_path)
    assert_loaded(nca, output, out_pols, topo, topo_file, tmp_path)
    restricts, grants = restricts_traffic(src_pols), grants_traffic(src_pols)
    assert restricts or grants, (
        f"{name}: no control can bite (the policy neither allows nor denies)"
    )
    configs = {
        "source": [source],
        "output": [output],
        "source_allow": [source, allow_file],
        "output_allow": [output, allow_file],
        "deny": [deny_file],
        "source_deny": [source, deny_file],
        "output_deny": [output, deny_file],
    }
    pairs = {
        "restrict_source": ("source", "source_allow"),
        "restrict_output": ("output", "output_allow"),
        "grant_source": ("deny", "source_deny"),
        "grant_output": ("deny", "output_deny"),
    }
    verdicts = run_controls(nca, configs, pairs, topo_file, tmp_path)
    for side in ("source", "output"):
        if restricts:
            assert not verdicts[f"restrict_{side}"], (
                f"negative control failed: NCA finds the {side} unchanged by an added allow-all "
                f"policy, although {name} restricts traffic - it did not really read the {side}"
            )
        if grants:
            assert not verdicts[f"grant_{side}"], (
                f"negative control failed: NCA finds the {side} policies with their rules removed "
                f"unchanged by adding the {side} itself, although {name} allows traffic - it did "
                f"not really read the {side}"
            )
    assert verdicts["restrict_source"] == verdicts["restrict_output"]
    assert verdicts["grant_source"] == verdicts["grant_output"]

    assert equivalent, (
        f"NCA finds polyfence's Kubernetes output for {name} NOT equivalent to the source:\n"
        f"{equiv.stdout}"
    )


def test_guard_refuses_a_vacuous_equivalence(nca: Path, tmp_path: Path) -> None:
    """The trap, shown on NCA itself, and the guard that refuses it.

    A policy that allows all ingress to app=web means as much as no policy, so NCA calls it
    equivalent to a file it could not read: wrong apiVersion, misspelt kind, broken YAML. The
    loaded-policy check and the grant control must reject each unread file.
    """
    policy = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "web-allow-all", "namespace": "default"},
        "spec": {
            "podSelector": {"matchLabels": {"app": "web"}},
            "policyTypes": ["Ingress"],
            "ingress": [{}],
        },
    }
    good = dump_yaml(tmp_path / "good.yaml", [policy])
    wrong_api = dump_yaml(tmp_path / "wrong-api.yaml", [{**policy, "apiVersion": "example.com/v1"}])
    wrong_kind = dump_yaml(tmp_path / "wrong-kind.yaml", [{**policy, "kind": "NetworkPolicyy"}])
    broken = tmp_path / "broken.yaml"
    broken.write_text("kind: NetworkPolicy\nmetadata: {name: web-allow-all\n  spec: [\n")
    topo = build_topology([policy])
    topo_file = dump_yaml(tmp_path / "topology.yaml", [topo["doc"]])

    assert_loaded(nca, good, [policy], topo, topo_file, tmp_path)
    for unread in (wrong_api, wrong_kind, broken):
        proc = run_nca(
            nca,
            [
                "--equiv",
                str(unread),
                "--base_np_list",
                str(good),
                "--ns_list",
                str(topo_file),
                "--pod_list",
                str(topo_file),
                "--print_ipv6",
            ],
            tmp_path,
        )
        assert equiv_verdict(proc) is True, unread.name  # the trap: nothing read, "equivalent"
        with pytest.raises(AssertionError, match="did not load policy default/web-allow-all"):
            assert_loaded(nca, unread, [policy], topo, topo_file, tmp_path)

    stripped = dump_yaml(tmp_path / "stripped.yaml", stripped_policies([policy]))
    verdicts = run_controls(
        nca,
        {
            "stripped": [stripped],
            "good": [good, stripped],
            "wrong_api": [wrong_api, stripped],
            "wrong_kind": [wrong_kind, stripped],
        },
        {
            "grant_good": ("stripped", "good"),
            "grant_wrong_api": ("stripped", "wrong_api"),
            "grant_wrong_kind": ("stripped", "wrong_kind"),
        },
        topo_file,
        tmp_path,
    )
    # The control bites on the real policy and not on the unread ones.
    assert verdicts == {"grant_good": False, "grant_wrong_api": True, "grant_wrong_kind": True}


def test_nca_deviations_are_undone(nca: Path, tmp_path: Path) -> None:
    """Both NCA quirks that source_for_nca undoes are real, and undoing them suffices."""
    order: dict[str, Any] = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "order", "namespace": "default"},
        "spec": {"podSelector": {}, "policyTypes": ["Egress", "Ingress"], "egress": [{}]},
    }
    empty_egress: dict[str, Any] = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "empty-egress", "namespace": "default"},
        "spec": {"podSelector": {"matchLabels": {"app": "web"}}, "ingress": [{}], "egress": []},
    }
    # What Kubernetes stores for each (API-server defaulting).
    order_k8s = {**order, "spec": {**order["spec"], "policyTypes": ["Ingress", "Egress"]}}
    empty_k8s = {
        **empty_egress,
        "spec": {
            "podSelector": {"matchLabels": {"app": "web"}},
            "policyTypes": ["Ingress"],
            "ingress": [{}],
        },
    }
    topo = build_topology([empty_egress])
    topo_file = dump_yaml(tmp_path / "topology.yaml", [topo["doc"]])

    def equiv(new: Path, base: Path) -> subprocess.CompletedProcess[str]:
        args = ["--equiv", str(new), "--base_np_list", str(base), "--ns_list", str(topo_file)]
        return run_nca(nca, [*args, "--pod_list", str(topo_file), "--print_ipv6"], tmp_path)

    for raw, stored in ((order, order_k8s), (empty_egress, empty_k8s)):
        name = raw["metadata"]["name"]
        raw_file = dump_yaml(tmp_path / f"{name}.yaml", [raw])
        stored_file = dump_yaml(tmp_path / f"{name}-k8s.yaml", [stored])
        as_is = equiv(stored_file, raw_file)
        if raw is order:
            assert as_is.returncode == 7 and "policyTypes has invalid value" in as_is.stderr
        else:
            assert equiv_verdict(as_is) is False  # NCA isolates egress, Kubernetes does not
        fixed = source_for_nca(raw_file, tmp_path)
        assert fixed != raw_file
        assert equiv_verdict(equiv(stored_file, fixed)) is True


def test_selector_helpers_agree_with_themselves() -> None:
    sel = {
        "matchLabels": {"app": "web"},
        "matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["a", "b"]},
            {"key": "env", "operator": "NotIn", "values": ["prod"]},
            {"key": "x", "operator": "Exists"},
            {"key": "y", "operator": "DoesNotExist"},
        ],
    }
    reqs = requirements(sel)
    sat = satisfy(reqs)
    assert sat is not None and matches(sel, sat)
    each = satisfy_each_value(reqs)
    assert {m["tier"] for m in each} == {"a", "b"} and all(matches(sel, m) for m in each)
    misses = near_misses(reqs)
    assert misses and not any(matches(sel, m) for m in misses)
    assert (
        satisfy(
            requirements(
                {
                    "matchLabels": {"a": "1"},
                    "matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}],
                }
            )
        )
        is None
    )
