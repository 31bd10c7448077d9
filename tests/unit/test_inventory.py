"""Reading cluster objects as kubectl prints them."""

from __future__ import annotations

import pytest

from polyfence.errors import InputError
from polyfence.inventory import NAMESPACE_NAME_LABEL, inventory_from_documents
from polyfence.io.files import parse_text

SNAPSHOT = """
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Namespace
  metadata: {name: prod, labels: {env: prod}}
- apiVersion: v1
  kind: Pod
  metadata: {name: web-1, namespace: prod, labels: {app: web}}
  spec:
    nodeName: n1
    serviceAccountName: web-sa
    containers: [{name: c, ports: [{name: http, containerPort: 8080}, {name: dns, containerPort: 53, protocol: UDP}]}]
  status: {podIP: 10.0.0.5, podIPs: [{ip: 10.0.0.5}, {ip: "fd00::5"}]}
- apiVersion: v1
  kind: Pod
  metadata: {name: agent, namespace: kube-system}
  spec: {hostNetwork: true, containers: [{name: c}]}
  status: {podIP: 192.168.0.10}
- apiVersion: apps/v1
  kind: Deployment
  metadata: {name: ignored-because-pods-exist, namespace: prod}
  spec: {template: {metadata: {labels: {app: x}}, spec: {containers: [{name: c}]}}}
- apiVersion: v1
  kind: Node
  metadata: {name: n1, labels: {zone: a}}
  status: {addresses: [{type: InternalIP, address: 192.168.0.10}, {type: Hostname, address: n1}]}
- apiVersion: v1
  kind: ServiceAccount
  metadata: {name: web-sa, namespace: prod, labels: {tier: front}}
- apiVersion: v1
  kind: Service
  metadata: {name: web, namespace: prod}
  spec: {selector: {app: web}, clusterIP: 10.96.0.10}
"""


def test_kubectl_list_snapshot() -> None:
    inv = inventory_from_documents(parse_text(SNAPSHOT, "snap.yaml"))
    names = {ns.name: dict(ns.labels) for ns in inv.namespaces}
    assert names["prod"] == {"env": "prod", NAMESPACE_NAME_LABEL: "prod"}
    assert names["kube-system"] == {NAMESPACE_NAME_LABEL: "kube-system"}  # implied by a pod
    web = inv.find("prod/web-1")
    assert web is not None and web.kind == "Pod"
    assert web.ips == ("10.0.0.5", "fd00::5")
    assert web.resolve_port("http", 6) == 8080 and web.resolve_port("dns", 17) == 53
    assert web.resolve_port("http", 17) is None
    assert web.service_account == "web-sa" and web.node == "n1"
    agent = inv.find("kube-system/agent[Pod]")
    assert agent is not None and agent.host_network
    assert inv.find("prod/ignored-because-pods-exist") is None
    (node,) = inv.nodes
    assert node.ips == ("192.168.0.10",)
    assert inv.service_account_labels[("prod", "web-sa")] == {"tier": "front"}
    assert inv.services[0].cluster_ips == ("10.96.0.10",)


def test_workload_templates_stand_for_pods() -> None:
    text = """
apiVersion: batch/v1
kind: CronJob
metadata: {name: nightly, namespace: jobs}
spec:
  jobTemplate:
    spec:
      template:
        metadata: {labels: {role: etl}}
        spec: {containers: [{name: c, ports: [{name: web, containerPort: 80}]}]}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec: {template: {metadata: {labels: {app: db}}, spec: {serviceAccountName: dbsa, containers: []}}}
"""
    inv = inventory_from_documents(parse_text(text, "w.yaml"))
    refs = sorted(e.ref for e in inv.endpoints)
    assert refs == ["default/db[StatefulSet]", "jobs/nightly[CronJob]"]
    cron = inv.find("jobs/nightly")
    assert cron is not None and cron.labels == {"role": "etl"} and cron.resolve_port("web", 6) == 80
    assert inv.find("default/db").service_account == "dbsa"  # type: ignore[union-attr]


def test_bad_labels_are_located() -> None:
    text = "apiVersion: v1\nkind: Namespace\nmetadata: {name: x, labels: {a: [1]}}\n"
    with pytest.raises(InputError) as info:
        inventory_from_documents(parse_text(text, "ns.yaml"))
    (diag,) = info.value.diagnostics
    assert str(diag.source) == "ns.yaml[0]:/metadata/labels/a"  # the value that is not a string


def test_external_addresses() -> None:
    text = """
apiVersion: polyfence.dev/v1alpha1
kind: ExternalAddresses
metadata: {name: partner}
spec: {cidrs: [203.0.113.0/24, 10.0.0.1/8]}
"""
    with pytest.raises(InputError) as info:
        inventory_from_documents(parse_text(text, "x.yaml"))
    assert info.value.diagnostics[0].source.pointer == "/spec/cidrs/1"
