"""Differential test: polyfence's Calico output vs its Kubernetes source, judged by IBM's NCA.

For every file of tests/data/corpus/k8s, polyfence converts the file to Calico
(projectcalico.org/v3); network-config-analyzer 2.1.0 (run from its own venv, see conftest.py)
must then call the Kubernetes source (``--base_np_list``) and the Calico output (``--equiv``)
semantically equivalent on a topology with decoys: the pods of every label set (matches and
near misses of every selector, source and output) in every namespace, so pods share labels
across namespaces, plus namespaces that no namespaceSelector picks.

How NCA 2.1.0 reads Calico (from its CalicoPolicyYamlParser / NetworkLayer, and checked below):

* a ``projectcalico.org/v3`` NetworkPolicy / GlobalNetworkPolicy is read from any policy file,
  also mixed with Kubernetes policies in one config: both go to one layer ordered by ``order``
  (a Kubernetes policy counts as order 1000, as in Calico); rules are first-match, and an
  endpoint that some policy selects in a direction is denied what no rule allows;
* ``selector`` / ``namespaceSelector`` strings are parsed (``==``, ``!=``, ``has()``, ``in``,
  ``&&``, ``all()``, ...); ``namespaceSelector`` matches namespace labels, and NCA gives every
  namespace ``kubernetes.io/metadata.name`` as Kubernetes does;
* endpoints are the Pods of ``--pod_list`` with their labels verbatim. Calico itself labels the
  WorkloadEndpoint of every Kubernetes pod with ``projectcalico.org/orchestrator: k8s`` (plus
  ``projectcalico.org/namespace`` and ``projectcalico.org/serviceaccount``), which NCA does not
  add; the topology therefore carries those labels on every pod, as ``calicoctl get wep`` shows
  them. No Kubernetes selector of the corpus names a ``projectcalico.org/`` key (asserted), so
  the Kubernetes side is unaffected (``test_workload_endpoint_labels_are_needed``);
* a Calico file NCA cannot read is "no policy", exactly like a Kubernetes one: misspelt kind,
  foreign apiVersion, broken YAML (``test_guard_refuses_a_vacuous_calico_equivalence``).

An "equivalent" verdict is only trusted when

* NCA ``--explain`` names every Calico policy (and every source policy) among the configurations
  affecting a pod that the policy selects, and NCA warns of no selector or rule that picks
  nothing on the topology;
* Calico-native negative controls bite on the output (all in one scheme run):
  - restrict: output + a Calico allow-all policy (order 1) differs from the output, when the
    source restricts anything;
  - grant: the output's policies with their rules removed (same selector, types, order) differ
    from the same plus the output, when the source allows anything;
  - flip, for every rule: the output with that rule's action flipped to Deny (moved to the front
    of its policy, the policy moved before the others, which changes nothing for allow-only
    policies) differs from the output - both with the opposite direction opened by a Calico
    allow-all, so the rule's traffic is not denied at its other end anyway.
  An output that NCA read as empty, or a rule it dropped, fails these.
"""

from __future__ import annotations

import copy
import math
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

import polyfence

from .nca_support import (
    CORPUS,
    PolicyTarget,
    Req,
    all_hold,
    assert_explained,
    assert_loaded,
    build_topology,
    corpus_names,
    dump_yaml,
    equiv_verdict,
    grants_traffic,
    network_policies,
    ns_of,
    requirements,
    restricts_traffic,
    run_controls,
    run_nca,
    selectors_of,
    show,
    source_for_nca,
    topology_warnings,
)

CALICO_API = "projectcalico.org/v3"
CALICO_POLICY_KINDS = ("NetworkPolicy", "GlobalNetworkPolicy")
CALICO_SET_KINDS = ("NetworkSet", "GlobalNetworkSet")
CALICO_KEY_PREFIX = "projectcalico.org/"


def workload_endpoint_labels(namespace: str) -> dict[str, str]:
    """Labels Calico puts on the WorkloadEndpoint of every Kubernetes pod (libcalico-go's
    workload-endpoint conversion), beside the pod's own labels."""
    return {
        "projectcalico.org/orchestrator": "k8s",
        "projectcalico.org/namespace": namespace,
        "projectcalico.org/serviceaccount": "default",
    }


# ---------------------------------------------------------------- Calico selectors (our reading)

_KEY = r"[\w./-]+"
_QUOTED = r"""(?:'([^']*)'|"([^"]*)")"""
_ATOMS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(rf"^has\(\s*({_KEY})\s*\)$"), "Exists"),
    (re.compile(rf"^!\s*has\(\s*({_KEY})\s*\)$"), "DoesNotExist"),
    (re.compile(rf"^({_KEY})\s*==\s*{_QUOTED}$"), "="),
    (re.compile(rf"^({_KEY})\s*!=\s*{_QUOTED}$"), "NotIn"),
    (re.compile(rf"^({_KEY})\s+not\s+in\s*\{{(.*)\}}$"), "NotIn-set"),
    (re.compile(rf"^({_KEY})\s+in\s*\{{(.*)\}}$"), "In-set"),
]


def calico_requirements(selector: str | None) -> list[Req] | None:
    """A Calico selector that is a conjunction of simple terms, as requirements (Calico's
    ``!=`` and ``not in`` match a missing key too, like Kubernetes' NotIn); None when the
    selector uses anything else (``||``, parentheses, ``contains``, ...)."""
    if selector is None or not selector.strip():
        return []
    reqs: list[Req] = []
    for term in selector.split("&&"):
        term = " ".join(term.split())
        if term == "all()":
            continue
        for pattern, op in _ATOMS:
            m = pattern.match(term)
            if not m:
                continue
            key = m.group(1)
            if op in ("Exists", "DoesNotExist"):
                reqs.append((key, op, ()))
            elif op in ("=", "NotIn"):
                value = m.group(2) if m.group(2) is not None else m.group(3)
                reqs.append((key, op, (value,)))
            else:
                values = tuple(a or b for a, b in re.findall(_QUOTED, m.group(2)))
                reqs.append((key, op.removesuffix("-set"), values))
            break
        else:
            return None
    return reqs


def as_label_selector(reqs: list[Req]) -> dict[str, Any]:
    """Requirements as a Kubernetes LabelSelector (for the topology builder), leaving out the
    keys that Calico sets itself (they are on every pod already)."""
    return {
        "matchExpressions": [
            {"key": key, "operator": "In" if op == "=" else op, "values": list(values)}
            for key, op, values in reqs
            if not key.startswith(CALICO_KEY_PREFIX)
        ]
    }


# ---------------------------------------------------------------- walking Calico documents


def calico_policies(docs: list[Any]) -> list[dict[str, Any]]:
    return [
        d
        for d in docs
        if isinstance(d, dict)
        and d.get("apiVersion") == CALICO_API
        and d.get("kind") in CALICO_POLICY_KINDS
    ]


def calico_ns(policy: dict[str, Any]) -> str | None:
    if policy["kind"] == "GlobalNetworkPolicy":
        return None
    return (policy.get("metadata") or {}).get("namespace") or "default"


def calico_types(policy: dict[str, Any]) -> list[str]:
    """Calico's defaulting: Ingress always, Egress when there are egress rules."""
    spec = policy.get("spec") or {}
    if spec.get("types"):
        return list(spec["types"])
    return ["Ingress"] + (["Egress"] if spec.get("egress") else [])


def calico_rules(policy: dict[str, Any]) -> list[tuple[str, int, dict[str, Any]]]:
    spec = policy.get("spec") or {}
    return [
        (direction, i, rule or {})
        for direction in ("ingress", "egress")
        for i, rule in enumerate(spec.get(direction) or [])
    ]


def calico_selectors(policies: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    """(endpoint selectors, namespace selectors) used anywhere in the Calico policies."""
    pod_sels: list[str] = []
    ns_sels: list[str] = []
    for pol in policies:
        spec = pol.get("spec") or {}
        pod_sels.append(spec.get("selector") or "all()")
        if spec.get("namespaceSelector"):
            ns_sels.append(spec["namespaceSelector"])
        for _, _, rule in calico_rules(pol):
            for side in ("source", "destination"):
                entity = rule.get(side) or {}
                pod_sels += [entity[k] for k in ("selector", "notSelector") if entity.get(k)]
                if entity.get("namespaceSelector"):
                    ns_sels.append(entity["namespaceSelector"])
    return pod_sels, ns_sels


def check_nca_can_judge(docs: list[Any]) -> None:
    """Refuse output that NCA 2.1.0 would silently misread rather than judge it."""
    for doc in docs:
        kind = doc.get("kind")
        assert doc.get("apiVersion") == CALICO_API, f"not a Calico v3 document: {doc}"
        assert kind in CALICO_POLICY_KINDS + CALICO_SET_KINDS, (
            f"NCA 2.1.0 does not read Calico {kind} documents (it has no tiers): cannot judge {doc}"
        )
        spec = doc.get("spec") or {}
        tier = spec.get("tier")
        assert tier in (None, "default"), f"NCA 2.1.0 has no tiers; policy in tier {tier!r}"
        order = spec.get("order")
        assert order is None or (isinstance(order, int) and not isinstance(order, bool)), (
            f"NCA 2.1.0 reads a non-integer order ({order!r}) as a string "
            "(test_nca_reads_fractional_orders_as_strings): cannot judge the policy order"
        )


# ---------------------------------------------------------------- Calico control policies


def calico_allow_all(
    namespaces: set[str], directions: tuple[str, ...] = ("Ingress", "Egress"), order: float = 1
) -> list[dict[str, Any]]:
    """Per namespace, one Calico policy allowing everything in the given directions."""
    suffix = "-".join(d.lower() for d in directions)
    docs = []
    for ns in sorted(namespaces):
        spec: dict[str, Any] = {"order": order, "selector": "all()", "types": list(directions)}
        for d in directions:
            spec[d.lower()] = [{"action": "Allow"}]
        docs.append(
            {
                "apiVersion": CALICO_API,
                "kind": "NetworkPolicy",
                "metadata": {"name": f"nca-control-allow-{suffix}", "namespace": ns},
                "spec": spec,
            }
        )
    return docs


def calico_stripped(policies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each Calico policy without its rules: the same endpoints isolated in the same directions."""
    out = []
    for i, pol in enumerate(policies):
        spec = pol.get("spec") or {}
        new_spec = {k: spec[k] for k in ("order", "selector", "namespaceSelector") if k in spec}
        new_spec["types"] = calico_types(pol)
        meta: dict[str, Any] = {"name": f"{pol['metadata']['name']}-nca-control-{i}"}
        if calico_ns(pol) is not None:
            meta["namespace"] = calico_ns(pol)
        out.append(
            {"apiVersion": CALICO_API, "kind": pol["kind"], "metadata": meta, "spec": new_spec}
        )
    return out


def flipped(docs: list[Any], policy: dict[str, Any], direction: str, index: int) -> list[Any]:
    """The documents with one rule's action flipped to Deny, that rule moved to the front of its
    policy and the policy before all others (a no-op for allow-only policies otherwise)."""
    orders = [
        o for p in calico_policies(docs) if (o := (p.get("spec") or {}).get("order")) is not None
    ]
    out = copy.deepcopy(docs)
    target = out[docs.index(policy)]
    rules = target["spec"][direction]
    rule = rules.pop(index)
    assert rule.get("action") == "Allow", rule
    rules.insert(0, {**rule, "action": "Deny"})
    target["spec"]["order"] = math.floor(min(orders, default=1000)) - 1  # NCA needs integers
    return out


# ---------------------------------------------------------------- the test


def _calico_targets(policies: list[dict[str, Any]]) -> list[PolicyTarget]:
    targets: list[PolicyTarget] = []
    for pol in policies:
        spec = pol.get("spec") or {}
        name = pol["metadata"]["name"]
        assert not spec.get("namespaceSelector"), f"{name}: GlobalNetworkPolicy namespaceSelector"
        reqs = calico_requirements(spec.get("selector") or "all()")
        assert reqs is not None, f"{name}: cannot read selector {spec.get('selector')!r}"

        def selects(labels: dict[str, str], r: list[Req] = reqs) -> bool:
            return all_hold(r, labels)

        targets.append((calico_ns(pol), name, selects))
    return targets


def _topology(src_pols: list[dict[str, Any]], out_pols: list[dict[str, Any]]) -> dict[str, Any]:
    pod_sels, ns_sels = selectors_of(src_pols)
    calico_keys = sorted(
        key
        for sel in pod_sels + ns_sels
        for key, _, _ in requirements(sel)
        if key.startswith(CALICO_KEY_PREFIX)
    )
    assert not calico_keys, f"the source selects on Calico's own labels {calico_keys}"
    out_pod, out_ns = calico_selectors(out_pols)
    unread = [s for s in out_pod + out_ns if calico_requirements(s) is None]
    assert not unread, f"selectors this harness cannot build a topology for: {unread}"
    return build_topology(
        src_pols,
        extra_pod_selectors=[as_label_selector(calico_requirements(s) or []) for s in out_pod],
        extra_ns_selectors=[as_label_selector(calico_requirements(s) or []) for s in out_ns],
        endpoint_labels=workload_endpoint_labels,
    )


def _equiv(
    nca: Path, new: Path, base: Path, topo_file: Path, cwd: Path
) -> subprocess.CompletedProcess[str]:
    # --print_ipv6: otherwise NCA 2.1.0 leaves IPv6 out of the comparison when neither side
    # names an IPv6 block (see test_nca_kubernetes.py).
    args = ["--equiv", str(new), "--base_np_list", str(base), "--ns_list", str(topo_file)]
    return run_nca(nca, [*args, "--pod_list", str(topo_file), "--print_ipv6"], cwd)


@pytest.mark.parametrize("name", corpus_names())
def test_nca_judges_calico_output_equivalent(name: str, nca: Path, tmp_path: Path) -> None:
    original = CORPUS / name
    result = polyfence.convert(polyfence.load([str(original)]), "calico")
    docs = list(result.documents)
    check_nca_can_judge(docs)
    out_pols = calico_policies(docs)
    network_sets = [d for d in docs if d.get("kind") in CALICO_SET_KINDS]
    output = dump_yaml(tmp_path / "polyfence-calico.yaml", out_pols)

    source = source_for_nca(original, tmp_path)  # the two k8s deviations, as in the k8s test
    src_pols = network_policies(list(yaml.safe_load_all(source.read_text())))
    assert src_pols, f"{name} holds no NetworkPolicy"
    assert out_pols, f"polyfence rendered no Calico policy for {name}"

    topo = _topology(src_pols, out_pols)
    # NCA reads NetworkSets as endpoints, not policies. (None for Kubernetes sources so far;
    # beware that NCA lets Kubernetes podSelectors pick labelled NetworkSets, see
    # test_nca_reads_kubernetes_podselectors_as_matching_calico_networksets.)
    topo["doc"]["items"] += network_sets
    topo_file = dump_yaml(tmp_path / "topology.yaml", [topo["doc"]])
    policy_nss = {ns_of(p) for p in src_pols} | {
        ns for p in out_pols if (ns := calico_ns(p)) is not None
    }

    equiv = _equiv(nca, output, source, topo_file, tmp_path)
    equivalent = equiv_verdict(equiv)
    bad_topology = topology_warnings(equiv)
    assert not bad_topology, f"the topology does not exercise every selector: {bad_topology}"

    # Refuse a vacuous verdict: NCA loaded both sides ...
    assert_loaded(nca, source, src_pols, topo, topo_file, tmp_path)
    assert_explained(nca, output, _calico_targets(out_pols), topo, topo_file, tmp_path)

    # ... and the Calico-native controls bite on the output.
    restricts, grants = restricts_traffic(src_pols), grants_traffic(src_pols)
    assert restricts or grants, f"{name}: no control can bite (it neither allows nor denies)"
    actions = {rule.get("action") for pol in out_pols for _, _, rule in calico_rules(pol)}
    assert actions <= {"Allow"}, (
        f"Kubernetes policies only allow, and Calico's converter writes only Allow rules; "
        f"polyfence wrote {sorted(map(str, actions))} for {name}"
    )
    allow_file = dump_yaml(tmp_path / "control-allow-all.yaml", calico_allow_all(policy_nss))
    deny_file = dump_yaml(tmp_path / "control-stripped.yaml", calico_stripped(out_pols))
    configs: dict[str, list[Path]] = {
        "output": [output],
        "output_allow": [output, allow_file],
        "deny": [deny_file],
        "output_deny": [output, deny_file],
    }
    pairs: dict[str, tuple[str, str]] = {
        "restrict": ("output", "output_allow"),
        "grant": ("deny", "output_deny"),
    }
    for direction, other in (("ingress", "Egress"), ("egress", "Ingress")):
        open_file = dump_yaml(
            tmp_path / f"control-open-{other.lower()}.yaml",
            calico_allow_all(policy_nss, (other,), order=2000),
        )
        configs[f"open_{other}"] = [output, open_file]
        for p, pol in enumerate(out_pols):
            for rule_dir, i, _ in calico_rules(pol):
                if rule_dir != direction:
                    continue
                query = f"flip_{p}_{direction}_{i}"
                mutated = dump_yaml(
                    tmp_path / f"{query}.yaml", flipped(out_pols, pol, direction, i)
                )
                configs[query] = [mutated, open_file]
                pairs[query] = (f"open_{other}", query)
    verdicts = run_controls(nca, configs, pairs, topo_file, tmp_path)
    if restricts:
        assert not verdicts["restrict"], (
            f"negative control failed: NCA finds the Calico output for {name} unchanged by an "
            "added Calico allow-all policy, although the source restricts traffic - it did not "
            "really read the output"
        )
    if grants:
        assert not verdicts["grant"], (
            f"negative control failed: NCA finds the Calico policies of {name} with their rules "
            "removed unchanged by adding the output itself, although the source allows traffic"
        )
    unbitten = sorted(q for q, same in verdicts.items() if q.startswith("flip_") and same)
    assert not unbitten, (
        f"negative control failed: flipping these rules of the Calico output for {name} to Deny "
        f"changes nothing in NCA's reading - it ignores them: {unbitten}"
    )

    assert equivalent, (
        f"NCA finds polyfence's Calico output for {name} NOT equivalent to the Kubernetes "
        f"source:\n{equiv.stdout}\n--- output\n{output.read_text()}"
    )


# ---------------------------------------------------------------- the guard and the modelling


def _web_allow_all() -> tuple[dict[str, Any], dict[str, Any]]:
    """An allow-all-ingress policy for app=web, in Kubernetes and in Calico."""
    k8s = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "web-allow-all", "namespace": "default"},
        "spec": {
            "podSelector": {"matchLabels": {"app": "web"}},
            "policyTypes": ["Ingress"],
            "ingress": [{}],
        },
    }
    calico = {
        "apiVersion": CALICO_API,
        "kind": "NetworkPolicy",
        "metadata": {"name": "web-allow-all", "namespace": "default"},
        "spec": {
            "order": 1000,
            "selector": "app == 'web'",
            "types": ["Ingress"],
            "ingress": [{"action": "Allow"}],
        },
    }
    return k8s, calico


def test_guard_refuses_a_vacuous_calico_equivalence(nca: Path, tmp_path: Path) -> None:
    """The trap, shown for Calico files, and the guard that refuses it.

    An allow-all-ingress policy means as much as no policy, so NCA calls the Kubernetes one
    equivalent to a Calico file it could not read (foreign apiVersion, misspelt kind, broken
    YAML). The explain check and the grant control must reject each unread file, while the
    readable Calico file passes both.
    """
    k8s, calico = _web_allow_all()
    source = dump_yaml(tmp_path / "k8s.yaml", [k8s])
    good = dump_yaml(tmp_path / "good.yaml", [calico])
    wrong_api = dump_yaml(tmp_path / "wrong-api.yaml", [{**calico, "apiVersion": "example.com/v3"}])
    wrong_kind = dump_yaml(tmp_path / "wrong-kind.yaml", [{**calico, "kind": "NetworkPolicyy"}])
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        f"apiVersion: {CALICO_API}\nkind: NetworkPolicy\nmetadata: {{name: w\n  spec: [\n"
    )
    topo = build_topology([k8s], endpoint_labels=workload_endpoint_labels)
    topo_file = dump_yaml(tmp_path / "topology.yaml", [topo["doc"]])

    assert equiv_verdict(_equiv(nca, good, source, topo_file, tmp_path)) is True
    assert_explained(nca, good, _calico_targets([calico]), topo, topo_file, tmp_path)
    for unread in (wrong_api, wrong_kind, broken):
        proc = _equiv(nca, unread, source, topo_file, tmp_path)
        assert equiv_verdict(proc) is True, unread.name  # the trap: nothing read, "equivalent"
        with pytest.raises(AssertionError, match="did not load policy default/web-allow-all"):
            assert_explained(nca, unread, _calico_targets([calico]), topo, topo_file, tmp_path)

    stripped = dump_yaml(tmp_path / "stripped.yaml", calico_stripped([calico]))
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
    assert verdicts == {"grant_good": False, "grant_wrong_api": True, "grant_wrong_kind": True}


def test_flip_control_bites_only_on_rules_nca_reads(nca: Path, tmp_path: Path) -> None:
    """The flip control catches a rule NCA reads; a rule that matches nothing cannot bite (and
    NCA's 'selects no ... endpoints' warning, refused by the main test, flags it)."""
    k8s, calico = _web_allow_all()
    calico["spec"]["ingress"] = [
        {"action": "Allow", "source": {"selector": "app == 'nowhere'"}},
        {"action": "Allow", "source": {"selector": "app == 'web'"}},
    ]
    topo = build_topology([k8s], endpoint_labels=workload_endpoint_labels)
    topo_file = dump_yaml(tmp_path / "topology.yaml", [topo["doc"]])
    output = dump_yaml(tmp_path / "calico.yaml", [calico])
    open_file = dump_yaml(
        tmp_path / "open.yaml", calico_allow_all({"default"}, ("Egress",), order=2000)
    )
    configs = {"open": [output, open_file]}
    pairs = {}
    for _, i, _ in calico_rules(calico):
        mutated = dump_yaml(tmp_path / f"flip{i}.yaml", flipped([calico], calico, "ingress", i))
        configs[f"flip{i}"] = [mutated, open_file]
        pairs[f"flip{i}"] = ("open", f"flip{i}")
    assert run_controls(nca, configs, pairs, topo_file, tmp_path) == {
        "flip0": True,
        "flip1": False,
    }
    proc = run_nca(
        nca,
        ["--sanity", str(output), "--ns_list", str(topo_file), "--pod_list", str(topo_file)],
        tmp_path,
    )
    assert "selector (app == 'nowhere') selects no endpoints" in proc.stderr, show(proc)
    assert topology_warnings(proc)


def test_workload_endpoint_labels_are_needed(nca: Path, tmp_path: Path) -> None:
    """Why the topology labels pods as Calico labels their WorkloadEndpoints.

    Calico's Kubernetes converter (and polyfence) AND peer selectors with
    ``projectcalico.org/orchestrator == 'k8s'``; NCA takes pod labels verbatim, so on plain pods
    that peer selects nothing and the Calico policy allows less than the Kubernetes one. With
    the labels Calico adds, NCA finds them equivalent; the extra labels do not change NCA's
    reading of the Kubernetes side (the same pod-to-pod connectivity on both topologies).
    """
    k8s = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "db", "namespace": "default"},
        "spec": {
            "podSelector": {"matchLabels": {"role": "db"}},
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [
                        {"podSelector": {"matchLabels": {"role": "frontend"}}},
                        {"namespaceSelector": {"matchLabels": {"project": "x"}}},
                    ]
                }
            ],
        },
    }
    source = dump_yaml(tmp_path / "k8s.yaml", [k8s])
    output = dump_yaml(
        tmp_path / "calico.yaml",
        polyfence.convert(polyfence.load([str(source)]), "calico").documents,
    )
    assert "projectcalico.org/orchestrator == 'k8s'" in output.read_text()
    plain = build_topology([k8s])
    labelled = build_topology([k8s], endpoint_labels=workload_endpoint_labels)
    plain_file = dump_yaml(tmp_path / "plain.yaml", [plain["doc"]])
    labelled_file = dump_yaml(tmp_path / "labelled.yaml", [labelled["doc"]])

    on_plain = _equiv(nca, output, source, plain_file, tmp_path)
    assert equiv_verdict(on_plain) is False
    assert "projectcalico.org/orchestrator == 'k8s') selects no endpoints" in on_plain.stderr
    on_labelled = _equiv(nca, output, source, labelled_file, tmp_path)
    assert equiv_verdict(on_labelled) is True
    assert not topology_warnings(on_labelled)
    assert [p[:2] for p in plain["pods"]] == [p[:2] for p in labelled["pods"]]

    def connectivity(topo_file: Path) -> list[str]:
        args = ["--connectivity", str(source), "-n", str(topo_file), "-p", str(topo_file)]
        proc = run_nca(nca, [*args, "-o", "txt_no_fw_rules", "--print_ipv6"], tmp_path)
        assert proc.returncode == 0, show(proc)
        return [ln for ln in proc.stdout.splitlines() if "=>" in ln]

    plain_conns = connectivity(plain_file)
    assert plain_conns and plain_conns == connectivity(labelled_file)


def test_nca_reads_kubernetes_podselectors_as_matching_calico_networksets(
    nca: Path, tmp_path: Path
) -> None:
    """Why the topology has no Calico NetworkSet decoys: an NCA 2.1.0 deviation.

    A Kubernetes podSelector selects Pods only, and Calico's converter enforces that with
    ``projectcalico.org/orchestrator == 'k8s'`` (NetworkSets carry no such label). NCA instead
    lets the Kubernetes podSelector pick a labelled NetworkSet in the namespace, so on such a
    topology it would blame the (correct) orchestrator term. NCA's Calico reading does honour
    the term: without it, the Calico policy lets the NetworkSet in.
    """
    k8s = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "db", "namespace": "default"},
        "spec": {
            "podSelector": {"matchLabels": {"role": "db"}},
            "policyTypes": ["Ingress"],
            "ingress": [{"from": [{"podSelector": {"matchLabels": {"role": "frontend"}}}]}],
        },
    }
    source = dump_yaml(tmp_path / "k8s.yaml", [k8s])
    docs = polyfence.convert(polyfence.load([str(source)]), "calico").documents
    output = dump_yaml(tmp_path / "calico.yaml", docs)
    (rule,) = docs[0]["spec"]["ingress"]
    assert (
        rule["source"]["selector"]
        == "role == 'frontend' && projectcalico.org/orchestrator == 'k8s'"
    )
    no_term = copy.deepcopy(docs)
    no_term[0]["spec"]["ingress"][0]["source"]["selector"] = "role == 'frontend'"
    no_term_file = dump_yaml(tmp_path / "calico-no-term.yaml", no_term)
    topo = build_topology([k8s], endpoint_labels=workload_endpoint_labels)
    topo_file = dump_yaml(tmp_path / "topology.yaml", [topo["doc"]])
    with_set = copy.deepcopy(topo["doc"])
    with_set["items"].append(
        {
            "apiVersion": CALICO_API,
            "kind": "NetworkSet",
            "metadata": {"name": "decoy", "namespace": "default", "labels": {"role": "frontend"}},
            "spec": {"nets": ["203.0.113.0/24"]},
        }
    )
    set_file = dump_yaml(tmp_path / "topology-networkset.yaml", [with_set])

    assert equiv_verdict(_equiv(nca, output, source, topo_file, tmp_path)) is True
    deviation = _equiv(nca, output, source, set_file, tmp_path)
    assert equiv_verdict(deviation) is False
    assert "203.0.113.0-203.0.113.255" in deviation.stdout  # NCA's k8s side admits the set
    # NCA's Calico side: the orchestrator term keeps the NetworkSet out, as in Calico.
    assert equiv_verdict(_equiv(nca, no_term_file, output, set_file, tmp_path)) is False
    assert equiv_verdict(_equiv(nca, no_term_file, source, set_file, tmp_path)) is True


def test_nca_reads_fractional_orders_as_strings(nca: Path, tmp_path: Path) -> None:
    """Why check_nca_can_judge refuses non-integer orders: an NCA 2.1.0 deviation.

    Calico's ``order`` is a float; NCA's YAML reader turns a scalar into an int when ``int()``
    takes it and otherwise keeps the string, so ``2.5`` and ``10.5`` are compared as strings
    ('10.5' < '2.5') and a string meets the int 1000 of a Kubernetes policy with a TypeError.
    """

    def policy(name: str, order: float, action: str) -> dict[str, Any]:
        return {
            "apiVersion": CALICO_API,
            "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {
                "order": order,
                "selector": "app == 'web'",
                "types": ["Ingress"],
                "ingress": [{"action": action}],
            },
        }

    k8s, _ = _web_allow_all()
    topo = build_topology([k8s], endpoint_labels=workload_endpoint_labels)
    topo_file = dump_yaml(tmp_path / "topology.yaml", [topo["doc"]])
    # In Calico, both files allow all ingress to app=web: the allow comes first.
    whole = dump_yaml(tmp_path / "whole.yaml", [policy("a", 2, "Allow"), policy("d", 10, "Deny")])
    fractional = dump_yaml(
        tmp_path / "fractional.yaml", [policy("a", 2.5, "Allow"), policy("d", 10.5, "Deny")]
    )
    source = dump_yaml(tmp_path / "k8s.yaml", [k8s])
    assert equiv_verdict(_equiv(nca, whole, source, topo_file, tmp_path)) is True
    assert equiv_verdict(_equiv(nca, fractional, whole, topo_file, tmp_path)) is False
    mixed = dump_yaml(tmp_path / "mixed.yaml", [k8s, policy("a", 2.5, "Allow")])
    crash = run_nca(
        nca, ["--connectivity", str(mixed), "-n", str(topo_file), "-p", str(topo_file)], tmp_path
    )
    assert crash.returncode == 7 and "'<' not supported" in crash.stderr, show(crash)
    with pytest.raises(AssertionError, match="non-integer order"):
        check_nca_can_judge(list(yaml.safe_load_all(fractional.read_text())))


def test_calico_selector_reading() -> None:
    assert calico_requirements("all()") == []
    assert calico_requirements(
        "app == 'web' && has(x) && !has(y) && t in {'a', 'b'} && e not in {'p'} && k != \"v\""
    ) == [
        ("app", "=", ("web",)),
        ("x", "Exists", ()),
        ("y", "DoesNotExist", ()),
        ("t", "In", ("a", "b")),
        ("e", "NotIn", ("p",)),
        ("k", "NotIn", ("v",)),
    ]
    assert calico_requirements("a == 'x' || b == 'y'") is None
    assert calico_requirements("(a == 'x')") is None
    sel = as_label_selector(
        calico_requirements("app == 'web' && projectcalico.org/orchestrator == 'k8s'") or []
    )
    assert sel == {"matchExpressions": [{"key": "app", "operator": "In", "values": ["web"]}]}
