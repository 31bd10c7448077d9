"""Differential test: polyfence's Kubernetes output vs its source, judged by IBM's NCA.

For every file of ../shared/corpus/k8s, polyfence converts the file to Kubernetes
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

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

import polyfence

from .conftest import clean_env

CORPUS = Path("corpus") / "k8s"
_SHARED_GUESS = Path(__file__).resolve().parents[3] / "shared"
NAME_KEY = "kubernetes.io/metadata.name"
NCA_TIMEOUT_S = 180


def _corpus_names() -> list[str]:
    folder = _SHARED_GUESS / CORPUS
    if not folder.is_dir():
        return ["<shared absent>"]  # the `shared` fixture skips
    return sorted(p.name for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))


# ---------------------------------------------------------------- label selectors (our own reading)

Req = tuple[str, str, tuple[str, ...]]  # key, operator ("=" for matchLabels), values


def _requirements(selector: dict[str, Any] | None) -> list[Req]:
    selector = selector or {}
    reqs: list[Req] = [
        (str(k), "=", (str(v),)) for k, v in (selector.get("matchLabels") or {}).items()
    ]
    for expr in selector.get("matchExpressions") or []:
        values = tuple(str(v) for v in expr.get("values") or ())
        reqs.append((str(expr["key"]), str(expr["operator"]), values))
    return reqs


def _holds(req: Req, labels: dict[str, str]) -> bool:
    key, op, values = req
    if op in ("=", "In"):
        return key in labels and labels[key] in values
    if op == "NotIn":
        return key not in labels or labels[key] not in values
    if op == "Exists":
        return key in labels
    if op == "DoesNotExist":
        return key not in labels
    raise ValueError(f"unknown selector operator {op!r}")


def _all_hold(reqs: list[Req], labels: dict[str, str]) -> bool:
    return all(_holds(r, labels) for r in reqs)


def matches(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    return _all_hold(_requirements(selector), labels)


def _satisfy(reqs: list[Req]) -> dict[str, str] | None:
    """A small label set meeting every requirement, or None when they contradict."""
    candidates: dict[str, list[str]] = {}
    for key, op, values in reqs:
        if op in ("=", "In"):
            prev = candidates.get(key)
            candidates[key] = [v for v in values if prev is None or v in prev]
    labels: dict[str, str] = {}
    for key, options in candidates.items():
        banned = {v for k, op, vs in reqs if k == key and op == "NotIn" for v in vs}
        allowed = [v for v in options if v not in banned]
        if not allowed:
            return None
        labels[key] = allowed[0]
    for key, op, _ in reqs:
        if op == "Exists" and key not in labels:
            labels[key] = "present"
    return labels if _all_hold(reqs, labels) else None


def _satisfy_each_value(reqs: list[Req]) -> list[dict[str, str]]:
    """Matching label sets: one per value of every In requirement (each value must count)."""
    out = [] if (sat := _satisfy(reqs)) is None else [sat]
    for i, (key, op, values) in enumerate(reqs):
        if op == "In" and len(values) > 1:
            for value in values:
                one = _satisfy([*reqs[:i], (key, "In", (value,)), *reqs[i + 1 :]])
                if one is not None:
                    out.append(one)
    return out


def _near_misses(reqs: list[Req]) -> list[dict[str, str]]:
    """Label sets meeting all requirements but one."""
    out: list[dict[str, str]] = []
    for i, (key, op, values) in enumerate(reqs):
        base = _satisfy(reqs[:i] + reqs[i + 1 :])
        if base is None:
            continue
        variants: list[dict[str, str]] = []
        if op in ("=", "In"):
            variants += [{**base, key: "nomatch"}, {k: v for k, v in base.items() if k != key}]
        elif op == "NotIn" and values:
            variants.append({**base, key: values[0]})
        elif op == "Exists":
            variants.append({k: v for k, v in base.items() if k != key})
        elif op == "DoesNotExist":
            variants.append({**base, key: "present"})
        out += [v for v in variants if not _all_hold(reqs, v)]
    return out


# ---------------------------------------------------------------- walking policies


def _policies(docs: list[Any]) -> list[dict[str, Any]]:
    return [d for d in docs if isinstance(d, dict) and d.get("kind") == "NetworkPolicy"]


def _ns_of(policy: dict[str, Any]) -> str:
    return (policy.get("metadata") or {}).get("namespace") or "default"


def _rules(policy: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    spec = policy.get("spec") or {}
    out = [("ingress", r or {}) for r in spec.get("ingress") or []]
    out += [("egress", r or {}) for r in spec.get("egress") or []]
    return out


def _peers(rule_dir: str, rule: dict[str, Any]) -> list[dict[str, Any]]:
    return [p or {} for p in rule.get("from" if rule_dir == "ingress" else "to") or []]


def _selectors(policies: list[dict[str, Any]]) -> tuple[list[Any], list[Any]]:
    """(pod selectors, namespace selectors) used anywhere in the policies."""
    pod_sels: list[Any] = []
    ns_sels: list[Any] = []
    for pol in policies:
        pod_sels.append((pol.get("spec") or {}).get("podSelector") or {})
        for rule_dir, rule in _rules(pol):
            for peer in _peers(rule_dir, rule):
                if "podSelector" in peer:
                    pod_sels.append(peer.get("podSelector") or {})
                if "namespaceSelector" in peer:
                    ns_sels.append(peer.get("namespaceSelector") or {})
    return pod_sels, ns_sels


def _named_ports(policies: list[dict[str, Any]]) -> dict[str, str]:
    named: dict[str, str] = {}
    for pol in policies:
        for _, rule in _rules(pol):
            for port in rule.get("ports") or []:
                if isinstance((port or {}).get("port"), str):
                    named.setdefault(port["port"], port.get("protocol") or "TCP")
    return named


def _policy_types(policy: dict[str, Any]) -> set[str]:
    spec = policy.get("spec") or {}
    if spec.get("policyTypes"):
        return set(spec["policyTypes"])
    return {"Ingress"} | ({"Egress"} if spec.get("egress") else set())


def _restricts(policies: list[dict[str, Any]]) -> bool:
    """Some pod loses some connection (its policies in a direction lack an allow-everything rule)."""
    for pol in policies:
        spec = pol.get("spec") or {}
        for ptype, key in (("Ingress", "ingress"), ("Egress", "egress")):
            if ptype not in _policy_types(pol):
                continue
            everything = any(
                not (r or {}).get("from" if key == "ingress" else "to")
                and not (r or {}).get("ports")
                for r in spec.get(key) or []
            )
            if not everything:
                return True
    return False


def _grants(policies: list[dict[str, Any]]) -> bool:
    """Some rule allows something (a rule in a direction the policy governs)."""
    for pol in policies:
        types = _policy_types(pol)
        for rule_dir, _rule in _rules(pol):
            if ("Ingress" if rule_dir == "ingress" else "Egress") in types:
                return True
    return False


# ---------------------------------------------------------------- topology


def _dedupe(label_sets: list[dict[str, str]]) -> list[dict[str, str]]:
    seen: set[tuple[tuple[str, str], ...]] = set()
    out = []
    for labels in label_sets:
        key = tuple(sorted(labels.items()))
        if key not in seen:
            seen.add(key)
            out.append(labels)
    return out


def build_topology(policies: list[dict[str, Any]]) -> dict[str, Any]:
    """Namespaces and pods on which the policies' selectors bite, plus decoys.

    Returns {"namespaces": {name: labels}, "pods": [(ns, name, labels)], "doc": List-YAML}.
    """
    pod_sels, ns_sels = _selectors(policies)
    namespaces: dict[str, dict[str, str]] = {}

    def add_ns(labels: dict[str, str], fallback: str) -> None:
        name = labels.get(NAME_KEY) or fallback
        rest = {k: v for k, v in labels.items() if k != NAME_KEY}
        have = namespaces.setdefault(name, {})
        for k, v in rest.items():
            have.setdefault(k, v)

    for pol in policies:
        namespaces.setdefault(_ns_of(pol), {})
    for i, sel in enumerate(ns_sels):
        reqs = _requirements(sel)
        if not reqs:
            continue
        for j, sat in enumerate(_satisfy_each_value(reqs)):
            add_ns(sat, f"nsel-{i}-{j}")
        for j, miss in enumerate(_near_misses(reqs)):
            add_ns(miss, f"nmiss-{i}-{j}")
    # Decoys: a bare namespace and one with every selected key set to a value nobody selects.
    namespaces.setdefault("decoy-bare", {})
    ns_keys = sorted({k for sel in ns_sels for k, _, _ in _requirements(sel) if k != NAME_KEY})
    namespaces.setdefault("decoy-wrong", {k: "decoy" for k in ns_keys})

    label_sets: list[dict[str, str]] = [{}, {"app": "decoy"}]
    merged: dict[str, str] = {}
    for sel in pod_sels:
        reqs = _requirements(sel)
        for sat in _satisfy_each_value(reqs):
            label_sets.append(sat)
            for k, v in sat.items():
                merged.setdefault(k, v)
        label_sets += _near_misses(reqs)
    label_sets.append(merged)  # a pod many selectors pick at once
    label_sets = _dedupe(label_sets)

    named = _named_ports(policies)
    ports = [
        {"name": name, "containerPort": 20000 + i, "protocol": proto}
        for i, (name, proto) in enumerate(sorted(named.items()))
    ]
    pods: list[tuple[str, str, dict[str, str]]] = []
    policy_nss = {_ns_of(p) for p in policies}
    for ns in namespaces:
        for j, labels in enumerate(label_sets):
            # Two replicas where policies live, so pod-to-same-labels-pod connections exist.
            for r in range(2 if ns in policy_nss else 1):
                pods.append((ns, f"p{j}-{r}", labels))

    items: list[dict[str, Any]] = []
    for name, labels in namespaces.items():
        meta: dict[str, Any] = {"name": name}
        if labels:
            meta["labels"] = labels
        items.append({"apiVersion": "v1", "kind": "Namespace", "metadata": meta})
    for ns, name, labels in pods:
        container: dict[str, Any] = {"name": "c", "image": "busybox"}
        if ports:
            container["ports"] = ports
        meta = {"name": name, "namespace": ns}
        if labels:
            meta["labels"] = labels
        items.append(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": meta,
                "spec": {"containers": [container]},
            }
        )
    return {
        "namespaces": namespaces,
        "pods": pods,
        "doc": {"apiVersion": "v1", "kind": "List", "items": items},
    }


def _allow_all(namespaces: set[str]) -> list[dict[str, Any]]:
    """One allow-everything policy (both directions, all pods) per namespace."""
    return [
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "nca-control-allow-all", "namespace": ns},
            "spec": {
                "podSelector": {},
                "policyTypes": ["Ingress", "Egress"],
                "ingress": [{}],
                "egress": [{}],
            },
        }
        for ns in sorted(namespaces)
    ]


def _stripped(policies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each policy with its rules removed: isolates the same pods in the same directions.

    A deny-all over whole namespaces would not do as a control: a policy's grants inside a
    namespace (back-end may receive from front-end) also need the other end's opposite
    direction, which such a deny-all would close too.
    """
    return [
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {
                "name": f"{pol['metadata']['name']}-nca-control-{i}",
                "namespace": _ns_of(pol),
            },
            "spec": {
                "podSelector": (pol.get("spec") or {}).get("podSelector") or {},
                # NCA 2.1.0 accepts only [Ingress], [Egress] or [Ingress, Egress], in that order.
                "policyTypes": [t for t in ("Ingress", "Egress") if t in _policy_types(pol)],
            },
        }
        for i, pol in enumerate(policies)
    ]


# ---------------------------------------------------------------- running NCA


def run_nca(nca: Path, args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(nca), *args],
        capture_output=True,
        text=True,
        timeout=NCA_TIMEOUT_S,
        cwd=cwd,
        env=clean_env(),
    )


def _show(proc: subprocess.CompletedProcess[str]) -> str:
    return f"exit {proc.returncode}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"


EQUIVALENT_TEXTS = (
    "are semantically equivalent.",
    "have the same network topology and the same set of policies.",
)
NOT_EQUIVALENT_TEXTS = (
    "is a proper subset of",
    "Neither network configuration",
    "not contained in",
)


def equiv_verdict(proc: subprocess.CompletedProcess[str]) -> bool:
    """NCA 2.1.0 `--equiv`: exit 0 + an 'equivalent' sentence, or exit 1 + a containment sentence.

    Anything else (exit 4: query not executed, e.g. topologies differ; 7: an exception) is an
    error, never a verdict.
    """
    if proc.returncode == 0 and any(t in proc.stdout for t in EQUIVALENT_TEXTS):
        return True
    if proc.returncode == 1 and any(t in proc.stdout for t in NOT_EQUIVALENT_TEXTS):
        return False
    raise AssertionError(f"NCA gave no equivalence verdict:\n{_show(proc)}")


_TOPOLOGY_WARNINGS = re.compile(
    r"selects no pods|does not select any pods|is missing from the (network configuration|peer container)"
)


def explained_policies(proc: subprocess.CompletedProcess[str]) -> dict[str, str]:
    """Policy name -> file, from `--connectivity ... --explain ns/pod` output."""
    assert proc.returncode == 0, _show(proc)
    _, found, tail = proc.stdout.partition("Explainability results:")
    assert found, f"NCA printed no explanation:\n{_show(proc)}"
    section = tail.split("Policy Configurations:", 1)[-1].split("Resource Configurations:", 1)[0]
    return {
        m.group(1): m.group(2)
        for m in re.finditer(r"^(\S+): line \d+ in file (.+?)\s*$", section, re.MULTILINE)
    }


def assert_loaded(
    nca: Path,
    policy_file: Path,
    policies: list[dict[str, Any]],
    topo: dict[str, Any],
    topo_file: Path,
    cwd: Path,
) -> None:
    """NCA names every policy of the file as affecting a pod that the policy selects."""
    assert policies, f"{policy_file} holds no NetworkPolicy"
    for pol in policies:
        ns, name = _ns_of(pol), pol["metadata"]["name"]
        selector = (pol.get("spec") or {}).get("podSelector") or {}
        pod = next((p for p in topo["pods"] if p[0] == ns and matches(selector, p[2])), None)
        assert pod is not None, f"topology has no pod that {ns}/{name} selects"
        proc = run_nca(
            nca,
            [
                "--connectivity",
                str(policy_file),
                "--ns_list",
                str(topo_file),
                "--pod_list",
                str(topo_file),
                "--explain",
                f"{pod[0]}/{pod[1]}",
            ],
            cwd,
        )
        explained = explained_policies(proc)
        assert name in explained, (
            f"NCA did not load policy {ns}/{name} from {policy_file.name} (or it selects nothing): "
            f"configurations affecting {pod[0]}/{pod[1]} are {sorted(explained)}\n{_show(proc)}"
        )
        assert Path(explained[name]).name == policy_file.name


def run_controls(
    nca: Path,
    configs: dict[str, list[Path]],
    pairs: dict[str, tuple[str, str]],
    topo_file: Path,
    workdir: Path,
) -> dict[str, bool]:
    """Several NCA equivalence queries in one scheme run: {query: equivalent?}."""
    scheme = {
        "namespaceList": str(topo_file),
        "podList": str(topo_file),
        "networkConfigList": [
            {"name": name, "networkPolicyList": [str(p) for p in paths]}
            for name, paths in configs.items()
        ],
        "queries": [
            {
                "name": query,
                "equivalence": list(pair),
                "outputConfiguration": {
                    "outputFormat": "yaml",
                    "excludeIPv6Range": False,  # as --print_ipv6
                    "outputPath": str(workdir / f"{query}.out.yaml"),
                },
            }
            for query, pair in pairs.items()
        ],
    }
    scheme_file = workdir / "scheme.yaml"
    scheme_file.write_text(yaml.safe_dump(scheme, sort_keys=False))
    proc = run_nca(nca, ["--scheme", str(scheme_file)], workdir)
    assert proc.returncode == 0, _show(proc)
    verdicts = {}
    for query in pairs:
        answer = yaml.safe_load((workdir / f"{query}.out.yaml").read_text())
        (entry,) = answer
        assert entry["query"] == query
        assert entry["numerical_result"] in (0, 1), entry
        verdicts[query] = entry["numerical_result"] == 0
    return verdicts


# ---------------------------------------------------------------- the test


def _dump(path: Path, docs: list[Any]) -> Path:
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return path


_NCA_POLICY_TYPES = (["Ingress"], ["Egress"], ["Ingress", "Egress"])


def source_for_nca(source: Path, workdir: Path) -> Path:
    """The source file, or a copy NCA 2.1.0 reads as Kubernetes does.

    Two NCA 2.1.0 deviations from Kubernetes are undone, each only where it applies:

    * it rejects ``policyTypes: [Egress, Ingress]`` ("policyTypes has invalid value in spec",
      exit 7), although Kubernetes treats the list as a set: only the order is changed;
    * without ``policyTypes`` it makes a policy govern egress when the key ``egress`` is
      present even if empty, while the API server defaults Egress only for a non-empty list
      (SetDefaults_NetworkPolicySpec): ``egress: []`` is then dropped, as it means nothing.
    """
    docs = list(yaml.safe_load_all(source.read_text()))
    changed = False
    for pol in _policies(docs):
        spec = pol.get("spec") or {}
        types = spec.get("policyTypes")
        if isinstance(types, list) and types not in _NCA_POLICY_TYPES:
            reordered = [t for t in ("Ingress", "Egress") if t in types]
            if sorted(reordered) == sorted(types):  # a pure reordering; anything else stays
                spec["policyTypes"] = reordered
                changed = True
        if not types and "egress" in spec and not spec["egress"]:
            del spec["egress"]
            changed = True
    return _dump(workdir / f"nca-{source.name}", docs) if changed else source


@pytest.mark.parametrize("name", _corpus_names())
def test_nca_judges_kubernetes_output_equivalent(
    name: str, shared: Path, nca: Path, tmp_path: Path
) -> None:
    original = shared / CORPUS / name
    bundle = polyfence.load([str(original)])
    result = polyfence.convert(bundle, "kubernetes")
    output = _dump(tmp_path / "polyfence-out.yaml", result.documents)

    source = source_for_nca(original, tmp_path)
    src_pols = _policies(list(yaml.safe_load_all(source.read_text())))
    out_pols = _policies(result.documents)
    assert src_pols, f"{name} holds no NetworkPolicy"
    assert out_pols, f"polyfence rendered no NetworkPolicy for {name}"

    topo = build_topology(src_pols + out_pols)
    topo_file = _dump(tmp_path / "topology.yaml", [topo["doc"]])
    policy_nss = {_ns_of(p) for p in src_pols + out_pols}
    allow_file = _dump(tmp_path / "control-allow-all.yaml", _allow_all(policy_nss))
    deny_file = _dump(tmp_path / "control-stripped.yaml", _stripped(src_pols))

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
    bad_topology = sorted({ln for ln in equiv.stderr.splitlines() if _TOPOLOGY_WARNINGS.search(ln)})
    assert not bad_topology, f"the topology does not exercise every selector: {bad_topology}"

    # Refuse a vacuous verdict: NCA loaded both sides, and the controls bite on both.
    assert_loaded(nca, source, src_pols, topo, topo_file, tmp_path)
    assert_loaded(nca, output, out_pols, topo, topo_file, tmp_path)
    restricts, grants = _restricts(src_pols), _grants(src_pols)
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
    good = _dump(tmp_path / "good.yaml", [policy])
    wrong_api = _dump(tmp_path / "wrong-api.yaml", [{**policy, "apiVersion": "example.com/v1"}])
    wrong_kind = _dump(tmp_path / "wrong-kind.yaml", [{**policy, "kind": "NetworkPolicyy"}])
    broken = tmp_path / "broken.yaml"
    broken.write_text("kind: NetworkPolicy\nmetadata: {name: web-allow-all\n  spec: [\n")
    topo = build_topology([policy])
    topo_file = _dump(tmp_path / "topology.yaml", [topo["doc"]])

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

    stripped = _dump(tmp_path / "stripped.yaml", _stripped([policy]))
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
    topo_file = _dump(tmp_path / "topology.yaml", [topo["doc"]])

    def equiv(new: Path, base: Path) -> subprocess.CompletedProcess[str]:
        args = ["--equiv", str(new), "--base_np_list", str(base), "--ns_list", str(topo_file)]
        return run_nca(nca, [*args, "--pod_list", str(topo_file), "--print_ipv6"], tmp_path)

    for raw, stored in ((order, order_k8s), (empty_egress, empty_k8s)):
        name = raw["metadata"]["name"]
        raw_file = _dump(tmp_path / f"{name}.yaml", [raw])
        stored_file = _dump(tmp_path / f"{name}-k8s.yaml", [stored])
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
    reqs = _requirements(sel)
    sat = _satisfy(reqs)
    assert sat is not None and matches(sel, sat)
    each = _satisfy_each_value(reqs)
    assert {m["tier"] for m in each} == {"a", "b"} and all(matches(sel, m) for m in each)
    misses = _near_misses(reqs)
    assert misses and not any(matches(sel, m) for m in misses)
    assert (
        _satisfy(
            _requirements(
                {
                    "matchLabels": {"a": "1"},
                    "matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}],
                }
            )
        )
        is None
    )
