"""Compliance checks: small units with stable ids, one module per concern.

The registry is an explicit table resolved lazily (no import side effects, no module walking).
A check is a function ``check(ctx: AuditContext) -> CheckOutcome`` with its ``CheckInfo``
attached as ``check.info``. Frameworks refer to checks by id only; checks never know frameworks.
"""

from __future__ import annotations

import importlib
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from polyfence.compliance.model import Check

_MODULE = "polyfence.compliance.checks"

# id -> "module:function"; ids are stable (scripts, SARIF ruleIds and waivers depend on them)
_REGISTRY: dict[str, str] = {
    "NSEG-K01": "enforcement:k01_enforcement_present",
    "NSEG-K02": "coverage:k02_namespace_governed",
    "NSEG-K03": "coverage:k03_default_deny_ingress",
    "NSEG-K04": "coverage:k04_default_deny_egress",
    "NSEG-K05": "coverage:k05_isolation_coverage",
    "NSEG-K06": "rules:k06_allow_all_rules",
    "NSEG-K07": "zones:k07_forbidden_flows",
    "NSEG-K08": "zones:k08_approved_flows",
    "NSEG-K09": "exposure:k09_internet_ingress",
    "NSEG-K10": "exposure:k10_internet_egress",
    "NSEG-K11": "exposure:k11_metadata_endpoint",
    "NSEG-K12": "exposure:k12_control_plane",
    "NSEG-K13": "workloads:k13_host_network",
    "NSEG-K14": "workloads:k14_host_port",
    "NSEG-K15": "exposure:k15_sensitive_ports",
    "NSEG-K16": "rules:k16_ports_specified",
    "NSEG-K17": "hygiene:k17_ineffective_policies",
    "NSEG-K18": "mesh:k18_mesh_default_deny",
    "NSEG-K19": "mesh:k19_strict_mtls",
    "NSEG-K20": "workloads:k20_namespace_boundaries",
    "NSEG-K21": "zones:k21_drift",
    "NSEG-K22": "evidence:k22_connectivity_map",
    "NSEG-A01": "aws:a01_admin_ports_ipv4",
    "NSEG-A02": "aws:a02_admin_ports_ipv6",
    "NSEG-A03": "aws:a03_all_ports_internet",
    "NSEG-A04": "aws:a04_high_risk_ports",
    "NSEG-A05": "aws:a05_default_group",
    "NSEG-A06": "aws:a06_nacl_admin_ports",
    "NSEG-A07": "aws:a07_sensitive_egress",
    "NSEG-A08": "aws:a08_tier_reachability",
    "NSEG-M01": "waivers:m01_waivers",
}

CHECK_IDS: tuple[str, ...] = tuple(_REGISTRY)


@cache
def get(check_id: str) -> Check:
    """The check function for an id (raises KeyError for an unknown id)."""
    module, _, attr = _REGISTRY[check_id].partition(":")
    return getattr(importlib.import_module(f"{_MODULE}.{module}"), attr)  # type: ignore[no-any-return]


def all_checks() -> tuple[Check, ...]:
    return tuple(get(check_id) for check_id in CHECK_IDS)
