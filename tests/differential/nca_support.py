"""Helpers shared by the differential tests against IBM's network-config-analyzer (NCA).

Label selectors read our own way (to derive topologies), a topology builder (namespaces and
pods on which the policies' selectors bite, near misses, decoys), negative-control policies,
and thin wrappers around the ``nca`` executable (equivalence verdicts, ``--explain`` parsing,
scheme runs of several equivalence queries at once).
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import DATA, corpus_files

from .conftest import clean_env

CORPUS = DATA / "corpus" / "k8s"
NAME_KEY = "kubernetes.io/metadata.name"
NCA_TIMEOUT_S = 180


def corpus_names() -> list[str]:
    """Names of the Kubernetes corpus files (never empty: ``corpus_files`` raises)."""
    return [p.name for p in corpus_files("k8s")]


# ---------------------------------------------------------------- label selectors (our own reading)

Req = tuple[str, str, tuple[str, ...]]  # key, operator ("=" for matchLabels), values


def requirements(selector: dict[str, Any] | None) -> list[Req]:
    selector = selector or {}
    reqs: list[Req] = [
        (str(k), "=", (str(v),)) for k, v in (selector.get("matchLabels") or {}).items()
    ]
    for expr in selector.get("matchExpressions") or []:
        values = tuple(str(v) for v in expr.get("values") or ())
        reqs.append((str(expr["key"]), str(expr["operator"]), values))
    return reqs


def holds(req: Req, labels: dict[str, str]) -> bool:
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


def all_hold(reqs: list[Req], labels: dict[str, str]) -> bool:
    return all(holds(r, labels) for r in reqs)


def matches(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    return all_hold(requirements(selector), labels)


def satisfy(reqs: list[Req]) -> dict[str, str] | None:
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
    return labels if all_hold(reqs, labels) else None


def satisfy_each_value(reqs: list[Req]) -> list[dict[str, str]]:
    """Matching label sets: one per value of every In requirement (each value must count)."""
    out = [] if (sat := satisfy(reqs)) is None else [sat]
    for i, (key, op, values) in enumerate(reqs):
        if op == "In" and len(values) > 1:
            for value in values:
                one = satisfy([*reqs[:i], (key, "In", (value,)), *reqs[i + 1 :]])
                if one is not None:
                    out.append(one)
    return out


def near_misses(reqs: list[Req]) -> list[dict[str, str]]:
    """Label sets meeting all requirements but one."""
    out: list[dict[str, str]] = []
    for i, (key, op, values) in enumerate(reqs):
        base = satisfy(reqs[:i] + reqs[i + 1 :])
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
        out += [v for v in variants if not all_hold(reqs, v)]
    return out


# ---------------------------------------------------------------- walking policies


def network_policies(docs: list[Any]) -> list[dict[str, Any]]:
    return [d for d in docs if isinstance(d, dict) and d.get("kind") == "NetworkPolicy"]


def ns_of(policy: dict[str, Any]) -> str:
    return (policy.get("metadata") or {}).get("namespace") or "default"


def rules_of(policy: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    spec = policy.get("spec") or {}
    out = [("ingress", r or {}) for r in spec.get("ingress") or []]
    out += [("egress", r or {}) for r in spec.get("egress") or []]
    return out


def peers_of(rule_dir: str, rule: dict[str, Any]) -> list[dict[str, Any]]:
    return [p or {} for p in rule.get("from" if rule_dir == "ingress" else "to") or []]


def selectors_of(policies: list[dict[str, Any]]) -> tuple[list[Any], list[Any]]:
    """(pod selectors, namespace selectors) used anywhere in the policies."""
    pod_sels: list[Any] = []
    ns_sels: list[Any] = []
    for pol in policies:
        pod_sels.append((pol.get("spec") or {}).get("podSelector") or {})
        for rule_dir, rule in rules_of(pol):
            for peer in peers_of(rule_dir, rule):
                if "podSelector" in peer:
                    pod_sels.append(peer.get("podSelector") or {})
                if "namespaceSelector" in peer:
                    ns_sels.append(peer.get("namespaceSelector") or {})
    return pod_sels, ns_sels


def named_ports(policies: list[dict[str, Any]]) -> dict[str, str]:
    named: dict[str, str] = {}
    for pol in policies:
        for _, rule in rules_of(pol):
            for port in rule.get("ports") or []:
                if isinstance((port or {}).get("port"), str):
                    named.setdefault(port["port"], port.get("protocol") or "TCP")
    return named


def policy_types(policy: dict[str, Any]) -> set[str]:
    spec = policy.get("spec") or {}
    if spec.get("policyTypes"):
        return set(spec["policyTypes"])
    return {"Ingress"} | ({"Egress"} if spec.get("egress") else set())


def restricts_traffic(policies: list[dict[str, Any]]) -> bool:
    """Some pod loses some connection (its policies in a direction lack an allow-everything rule)."""
    for pol in policies:
        spec = pol.get("spec") or {}
        for ptype, key in (("Ingress", "ingress"), ("Egress", "egress")):
            if ptype not in policy_types(pol):
                continue
            everything = any(
                not (r or {}).get("from" if key == "ingress" else "to")
                and not (r or {}).get("ports")
                for r in spec.get(key) or []
            )
            if not everything:
                return True
    return False


def grants_traffic(policies: list[dict[str, Any]]) -> bool:
    """Some rule allows something (a rule in a direction the policy governs)."""
    for pol in policies:
        types = policy_types(pol)
        for rule_dir, _rule in rules_of(pol):
            if ("Ingress" if rule_dir == "ingress" else "Egress") in types:
                return True
    return False


# ---------------------------------------------------------------- topology


def dedupe(label_sets: list[dict[str, str]]) -> list[dict[str, str]]:
    seen: set[tuple[tuple[str, str], ...]] = set()
    out = []
    for labels in label_sets:
        key = tuple(sorted(labels.items()))
        if key not in seen:
            seen.add(key)
            out.append(labels)
    return out


def build_topology(
    policies: list[dict[str, Any]],
    extra_pod_selectors: Iterable[dict[str, Any]] = (),
    extra_ns_selectors: Iterable[dict[str, Any]] = (),
    endpoint_labels: Callable[[str], dict[str, str]] | None = None,
) -> dict[str, Any]:
    """Namespaces and pods on which the policies' selectors bite, plus decoys.

    ``extra_*_selectors`` are further LabelSelectors (e.g. read from another format's
    output) to build matches and near misses for; ``endpoint_labels(namespace)`` gives labels
    that the platform itself puts on every pod of a namespace (they win over derived ones).

    Returns {"namespaces": {name: labels}, "pods": [(ns, name, labels)], "doc": List-YAML}.
    """
    pod_sels, ns_sels = selectors_of(policies)
    pod_sels += list(extra_pod_selectors)
    ns_sels += list(extra_ns_selectors)
    namespaces: dict[str, dict[str, str]] = {}

    def add_ns(labels: dict[str, str], fallback: str) -> None:
        name = labels.get(NAME_KEY) or fallback
        rest = {k: v for k, v in labels.items() if k != NAME_KEY}
        have = namespaces.setdefault(name, {})
        for k, v in rest.items():
            have.setdefault(k, v)

    for pol in policies:
        namespaces.setdefault(ns_of(pol), {})
    for i, sel in enumerate(ns_sels):
        reqs = requirements(sel)
        if not reqs:
            continue
        for j, sat in enumerate(satisfy_each_value(reqs)):
            add_ns(sat, f"nsel-{i}-{j}")
        for j, miss in enumerate(near_misses(reqs)):
            add_ns(miss, f"nmiss-{i}-{j}")
    # Decoys: a bare namespace and one with every selected key set to a value nobody selects.
    namespaces.setdefault("decoy-bare", {})
    ns_keys = sorted({k for sel in ns_sels for k, _, _ in requirements(sel) if k != NAME_KEY})
    namespaces.setdefault("decoy-wrong", {k: "decoy" for k in ns_keys})

    label_sets: list[dict[str, str]] = [{}, {"app": "decoy"}]
    merged: dict[str, str] = {}
    for sel in pod_sels:
        reqs = requirements(sel)
        for sat in satisfy_each_value(reqs):
            label_sets.append(sat)
            for k, v in sat.items():
                merged.setdefault(k, v)
        label_sets += near_misses(reqs)
    label_sets.append(merged)  # a pod many selectors pick at once
    label_sets = dedupe(label_sets)

    named = named_ports(policies)
    ports = [
        {"name": name, "containerPort": 20000 + i, "protocol": proto}
        for i, (name, proto) in enumerate(sorted(named.items()))
    ]
    pods: list[tuple[str, str, dict[str, str]]] = []
    policy_nss = {ns_of(p) for p in policies}
    for ns in namespaces:
        for j, labels in enumerate(label_sets):
            # Two replicas where policies live, so pod-to-same-labels-pod connections exist.
            for r in range(2 if ns in policy_nss else 1):
                full = {**labels, **(endpoint_labels(ns) if endpoint_labels else {})}
                pods.append((ns, f"p{j}-{r}", full))

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


def allow_all_policies(namespaces: set[str]) -> list[dict[str, Any]]:
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


def stripped_policies(policies: list[dict[str, Any]]) -> list[dict[str, Any]]:
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
                "namespace": ns_of(pol),
            },
            "spec": {
                "podSelector": (pol.get("spec") or {}).get("podSelector") or {},
                # NCA 2.1.0 accepts only [Ingress], [Egress] or [Ingress, Egress], in that order.
                "policyTypes": [t for t in ("Ingress", "Egress") if t in policy_types(pol)],
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


def show(proc: subprocess.CompletedProcess[str]) -> str:
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
    raise AssertionError(f"NCA gave no equivalence verdict:\n{show(proc)}")


TOPOLOGY_WARNINGS = re.compile(
    r"selects no pods|does not select any pods|is missing from the (network configuration|peer container)"
    # Calico documents (CalicoPolicyYamlParser)
    r"|selects no endpoints|Rule selects no (source|destination) endpoints"
)


def topology_warnings(proc: subprocess.CompletedProcess[str]) -> list[str]:
    """NCA's warnings that some selector or rule picks nothing on the topology."""
    return sorted({ln for ln in proc.stderr.splitlines() if TOPOLOGY_WARNINGS.search(ln)})


def explained_policies(proc: subprocess.CompletedProcess[str]) -> dict[str, str]:
    """Policy name -> file, from `--connectivity ... --explain ns/pod` output."""
    assert proc.returncode == 0, show(proc)
    _, found, tail = proc.stdout.partition("Explainability results:")
    assert found, f"NCA printed no explanation:\n{show(proc)}"
    section = tail.split("Policy Configurations:", 1)[-1].split("Resource Configurations:", 1)[0]
    return {
        m.group(1): m.group(2)
        for m in re.finditer(r"^(\S+): line \d+ in file (.+?)\s*$", section, re.MULTILINE)
    }


# A policy to find in NCA's explanation: namespace (None: any), name, selects(pod labels)?
PolicyTarget = tuple[str | None, str, Callable[[dict[str, str]], bool]]


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
    targets: list[PolicyTarget] = []
    for pol in policies:
        selector: dict[str, Any] = (pol.get("spec") or {}).get("podSelector") or {}

        def selects(labels: dict[str, str], sel: dict[str, Any] = selector) -> bool:
            return matches(sel, labels)

        targets.append((ns_of(pol), pol["metadata"]["name"], selects))
    assert_explained(nca, policy_file, targets, topo, topo_file, cwd)


def assert_explained(
    nca: Path,
    policy_file: Path,
    targets: Sequence[PolicyTarget],
    topo: dict[str, Any],
    topo_file: Path,
    cwd: Path,
) -> None:
    """For each (namespace, name, selects) target, NCA's ``--explain`` of a pod in that namespace
    whose labels the policy selects names the policy, from ``policy_file``, among the
    configurations affecting the pod: the policy was loaded and its selector bites."""
    assert targets, f"{policy_file} holds no policy"
    for ns, name, selects in targets:
        pod = next((p for p in topo["pods"] if (ns is None or p[0] == ns) and selects(p[2])), None)
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
            f"NCA did not load policy {ns or '<global>'}/{name} from {policy_file.name} "
            "(or it selects nothing): "
            f"configurations affecting {pod[0]}/{pod[1]} are {sorted(explained)}\n{show(proc)}"
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
    assert proc.returncode == 0, show(proc)
    verdicts = {}
    for query in pairs:
        answer = yaml.safe_load((workdir / f"{query}.out.yaml").read_text())
        (entry,) = answer
        assert entry["query"] == query
        assert entry["numerical_result"] in (0, 1), entry
        verdicts[query] = entry["numerical_result"] == 0
    return verdicts


# ---------------------------------------------------------------- files for NCA


class _NoAliasDumper(yaml.SafeDumper):
    """No ``&id001`` anchors for lists shared between documents' parts: plain files to read."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def dump_yaml(path: Path, docs: list[Any]) -> Path:
    path.write_text(yaml.dump_all(docs, Dumper=_NoAliasDumper, sort_keys=False))
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
    for pol in network_policies(docs):
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
    return dump_yaml(workdir / f"nca-{source.name}", docs) if changed else source
