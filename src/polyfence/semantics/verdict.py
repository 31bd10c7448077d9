"""The verdict on one connection, with the steps that decided it.

Per layer, egress is decided at the source endpoint and ingress at the destination. Within a
direction: tiers in order, policies by (order, name), first matching rule decides; ``pass``
leaves the tier; unmatched traffic is dropped at the end of a tier that governs the endpoint
in that direction with ``isolates`` (unless the tier's default action is pass); nothing
decided anywhere means allowed. Layers AND together.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from polyfence.inventory import Endpoint, Inventory
from polyfence.model.policy import Action, Direction, Governed, Layer, Policy, PolicySet
from polyfence.model.ports import Protocol, protocol_name
from polyfence.semantics.engine import _order
from polyfence.semantics.intervals import IPSet
from polyfence.semantics.matching import Matcher, Remote, enforced_on, rule_conns
from polyfence.semantics.profile import DEFAULT_PROFILE, CloudEnforcingMode, EvaluationProfile


@dataclass(frozen=True, slots=True)
class Connection:
    """One connection: remote sides are inventory endpoints or bare addresses."""

    src: Endpoint | str
    dst: Endpoint | str
    protocol: int
    port: int | None

    def describe(self) -> str:
        def name(side: Endpoint | str) -> str:
            return side.ref if isinstance(side, Endpoint) else side

        port = "" if self.port is None else f"/{self.port}"
        return f"{name(self.src)} -> {name(self.dst)} {protocol_name(self.protocol)}{port}"


@dataclass(frozen=True, slots=True)
class Step:
    """One decision step: where, and what happened."""

    layer: str
    direction: str
    tier: str | None
    policy: str | None
    rule: int | None
    action: str
    note: str = ""

    def __str__(self) -> str:
        where = f"{self.layer} {self.direction}"
        if self.policy is not None:
            where += f" tier {self.tier} policy {self.policy}"
            if self.rule is not None:
                where += f" rule {self.rule}"
        return f"{where}: {self.action}" + (f" ({self.note})" if self.note else "")


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    steps: tuple[Step, ...] = field(default=())

    def explain(self) -> str:
        head = "ALLOWED" if self.allowed else "DENIED"
        return "\n".join([head, *(f"  {s}" for s in self.steps)])


def _side(side: Endpoint | str) -> Remote:
    return Remote(side) if isinstance(side, Endpoint) else Remote(None, side)


def _decide_direction(
    matcher: Matcher,
    policy_set: PolicySet,
    policies: list[Policy],
    direction: Direction,
    subject: Endpoint,
    remote: Remote,
    conn: Connection,
    layer: str,
) -> tuple[bool, list[Step]]:
    tiers = {p.tier: policy_set.tier(p.tier) for p in policies}
    steps: list[Step] = []
    dst = conn.dst if isinstance(conn.dst, Endpoint) else None
    for tier, tier_policies in _order(policies, tiers):
        drops = False
        decided: Action | None = None
        for pol in tier_policies:
            rules = pol.direction(direction)
            assert isinstance(rules, Governed)
            drops = drops or rules.isolates
            for i, rule in enumerate(rules.rules):
                if rule.local is not None and not matcher.peer_matches(rule.local, Remote(subject)):
                    continue
                if not matcher.peers_match(rule.peers, remote, subject):
                    continue
                if not rule_conns(rule, Layer(layer), dst).contains(conn.protocol, conn.port):
                    continue
                step = Step(layer, direction.value, tier.name, str(pol.id), i, rule.action.value)
                steps.append(step)
                if rule.action is Action.LOG:
                    continue
                decided = rule.action
                break
            if decided is not None:
                break
        if decided is Action.ALLOW:
            return True, steps
        if decided is Action.DENY:
            return False, steps
        if decided is Action.PASS:
            continue
        if drops and tier.default_action is Action.DENY:
            steps.append(
                Step(
                    layer,
                    direction.value,
                    tier.name,
                    None,
                    None,
                    "deny",
                    "no rule matched; tier isolates",
                )
            )
            return False, steps
    if not policies:
        steps.append(
            Step(layer, direction.value, None, None, None, "allow", "not governed by any policy")
        )
    else:
        steps.append(
            Step(
                layer, direction.value, None, None, None, "allow", "no tier decided; default allow"
            )
        )
    return True, steps


def _node(side: Endpoint | str) -> str | None:
    if not isinstance(side, Endpoint):
        return None
    return side.name if side.kind == "Node" else side.node


def _cloud_bypass(conn: Connection, profile: EvaluationProfile) -> tuple[bool, bool]:
    """Standard EKS enforcing mode (see ``engine.Universe.cloud_bypass``): (skip the cloud
    layer, skip only the source's cloud egress)."""
    if profile.cloud_enforcing is not CloudEnforcingMode.STANDARD:
        return False, False
    here, there = _node(conn.src), _node(conn.dst)
    if here is not None and here == there:
        return True, False
    if isinstance(conn.dst, str) and isinstance(conn.src, Endpoint) and conn.src.is_pod:
        return False, not IPSet.address(conn.dst) <= IPSet.from_cidrs(profile.vpc_cidrs)
    return False, False


def verdict(
    policy_set: PolicySet,
    conn: Connection,
    inventory: Inventory,
    profile: EvaluationProfile = DEFAULT_PROFILE,
) -> Verdict:
    """Whether ``conn`` is allowed, and why."""
    matcher = Matcher(inventory, profile, policy_set.network_sets)
    src, dst = conn.src, conn.dst
    if isinstance(src, Endpoint) and src is dst and profile.self_traffic:
        return Verdict(
            True, (Step("network", "both", None, None, None, "allow", "a pod may reach itself"),)
        )
    if (
        profile.node_to_local_pod
        and isinstance(src, Endpoint)
        and isinstance(dst, Endpoint)
        and src.kind == "Node"
        and dst.node == src.name
    ):
        return Verdict(
            True,
            (
                Step(
                    "network", "ingress", None, None, None, "allow", "a node may reach its own pods"
                ),
            ),
        )
    steps: list[Step] = []
    allowed = True
    layers = set(policy_set.layers())
    if isinstance(dst, Endpoint) and dst.mesh and matcher.mtls_mode(dst) == "STRICT":
        layers.add(Layer.L7)
    for layer in sorted(layers, key=lambda x: x.value):
        layer_set = policy_set.with_policies(p for p in policy_set if p.layer is layer)
        if layer is Layer.L7:
            ok, dsteps = _proxy_verdict(matcher, layer_set, conn)
            steps.extend(dsteps)
            allowed = allowed and ok
            continue
        skip_all, skip_egress = (
            _cloud_bypass(conn, profile) if layer is Layer.CLOUD else (False, False)
        )
        if skip_all:
            steps.append(
                Step(layer.value, "both", None, None, None, "allow", "same node: bypasses groups")
            )
            continue
        for direction, subject, remote in (
            (Direction.EGRESS, src, _side(dst)),
            (Direction.INGRESS, dst, _side(src)),
        ):
            if not isinstance(subject, Endpoint):
                continue
            if skip_egress and direction is Direction.EGRESS:
                steps.append(
                    Step(layer.value, "egress", None, None, None, "allow", "off-VPC: node SNAT")
                )
                continue
            governing = [
                p
                for p in layer_set
                if isinstance(p.direction(direction), Governed)
                and matcher.selects(p.subject, subject)
            ]
            ok, dsteps = _decide_direction(
                matcher, layer_set, governing, direction, subject, remote, conn, layer.value
            )
            steps.extend(dsteps)
            if not ok:
                allowed = False
    return Verdict(allowed, tuple(steps))


def _proxy_verdict(
    matcher: Matcher, policy_set: PolicySet, conn: Connection
) -> tuple[bool, list[Step]]:
    """The mesh layer (see ``engine.Connectivity._proxy_rows``): inbound TCP of mesh workloads."""
    dst = conn.dst
    layer = Layer.L7.value

    def done(ok: bool, note: str) -> tuple[bool, list[Step]]:
        return ok, [Step(layer, "ingress", None, None, None, "allow" if ok else "deny", note)]

    if not isinstance(dst, Endpoint) or not dst.mesh or not matcher.acts_as_pod(dst):
        return done(True, "destination not in the mesh")
    if conn.protocol != Protocol.TCP:
        return done(True, "not TCP: the proxy does not see it")
    src = _side(conn.src)
    if matcher.mtls_mode(dst) == "STRICT" and not matcher.mutual_tls(src, dst):
        return done(False, "STRICT mTLS refuses a plain-text client")
    governing = [
        p
        for p in policy_set
        if isinstance(p.ingress, Governed)
        and enforced_on(p.layer, dst)
        and matcher.selects(p.subject, dst)
    ]
    return _decide_direction(
        matcher, policy_set, governing, Direction.INGRESS, dst, src, conn, layer
    )
