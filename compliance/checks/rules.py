"""Rule-level checks over the canonical model: allow-all rules and broad peers without ports.

Read from the IR, so `- {}` in a NetworkPolicy, an empty Calico selector, Cilium
`fromEntities: [all]` and a 0.0.0.0/0 security-group rule are the same finding, each cited by
the JSON pointer of the rule in its own document.
"""

from __future__ import annotations

from polyfence.compliance.checks._common import all_ports, allow_rules, rule_breadth
from polyfence.compliance.context import AuditContext
from polyfence.compliance.model import (
    CheckOutcome,
    Finding,
    Level,
    Severity,
    Status,
    check,
    outcome,
)
from polyfence.model.policy import Layer, Policy


def _in_scope(ctx: AuditContext, policy: Policy) -> bool:
    """Cluster policies of in-scope namespaces; security groups have checks of their own
    (NSEG-A01…A07): AWS's default allow-all egress is not an override of pod isolation."""
    if policy.layer is Layer.CLOUD:
        return False
    ns = policy.id.namespace
    return ns is None or ctx.in_scope_ns(ns)


@check(
    "NSEG-K06",
    "No allow-all rule overrides isolation",
    Severity.HIGH,
    Level.SOURCE,
    "A rule that allows every peer on every port undoes the default deny of whatever it "
    "selects (NSA/CISA: allow-all should not be used); under additive semantics one such rule "
    "neutralises every other policy on the same pods.",
    "Replace the rule with the peers and ports the workload needs, or delete it.",
)
def k06_allow_all_rules(ctx: AuditContext) -> CheckOutcome:
    info = k06_allow_all_rules.info
    findings = []
    for policy in ctx.policies:
        if not _in_scope(ctx, policy):
            continue
        for direction, index, rule in allow_rules(policy):
            why = rule_breadth(rule.peers)
            if why is None or not all_ports(rule):
                continue
            ref = ctx.policy_ref(policy, rule)
            findings.append(
                Finding(
                    info.id, Status.FAIL, info.severity, ctx.policy_resource(policy),
                    f"{ref.kind} {policy.id} allows {direction.value} from/to {why} on every "
                    f"port and protocol ({direction.value} rule {index})",
                    (ref,), observed=f"{why}, all ports", expected="named peers and ports",
                    key=f"{direction.value}/{index}",
                )
            )  # fmt: skip
    return outcome(
        info,
        findings,
        passed="no allow-all rule",
        failed="{fail} allow-all rules",
        empty="no rule allows every peer on every port",
        empty_status=Status.PASS,
    )


@check(
    "NSEG-K16",
    "Rules specify ports (no port wildcard to broad peers)",
    Severity.MEDIUM,
    Level.SOURCE,
    "Least functionality (NIST CM-7, PCI DSS 1.2.5): a rule to a broad peer (every pod of every "
    "namespace, a wide CIDR, a negative selector) should name the ports it needs.",
    "Add `ports` (protocol and port) to the rule, or narrow its peers.",
)
def k16_ports_specified(ctx: AuditContext) -> CheckOutcome:
    info = k16_ports_specified.info
    findings = []
    prefix = ctx.config.broad_cidr_prefix
    for policy in ctx.policies:
        if not _in_scope(ctx, policy):
            continue
        for direction, index, rule in allow_rules(policy):
            if not all_ports(rule) or rule_breadth(rule.peers) is not None:
                continue  # specific ports, or already an allow-all (NSEG-K06)
            why = rule_breadth(rule.peers, prefix)
            if why is None:
                continue
            ref = ctx.policy_ref(policy, rule)
            findings.append(
                Finding(
                    info.id, Status.FAIL, info.severity, ctx.policy_resource(policy),
                    f"{ref.kind} {policy.id} {direction.value} rule {index} allows every port "
                    f"to {why}",
                    (ref,), observed="all ports", expected="explicit protocol and ports",
                    key=f"{direction.value}/{index}",
                )
            )  # fmt: skip
    return outcome(
        info,
        findings,
        passed="every rule to a broad peer names its ports",
        failed="{fail} rules allow every port to a broad peer",
        empty="no rule allows every port to a broad peer",
        empty_status=Status.PASS,
    )
