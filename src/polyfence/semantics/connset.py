"""Sets of (protocol, port) pairs: the value the engine computes for every endpoint pair.

Canonical form: disjoint protocol segments ``(lo, hi, ports)``, sorted, with adjacent segments
of equal port sets merged and empty ones dropped, so that equality is structural and sets can
be hashed and memoised. Each protocol has its own port universe: 1-65535 for port protocols
(port 0 is not a destination port), 0-65535 for ICMP (``type*256+code``), and the whole
range for port-less protocols, which therefore match all-or-nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from polyfence.model.ports import (
    ALL_PROTOCOLS,
    ICMP_PROTOCOLS,
    PORT_PROTOCOLS,
    Protocol,
    protocol_name,
)
from polyfence.semantics.intervals import ALL_PORTS, IntervalSet

NO_PORTS = IntervalSet.empty()
PORT_UNIVERSE = IntervalSet.span(1, 65535)
_PORTED = sorted(int(p) for p in PORT_PROTOCOLS | ICMP_PROTOCOLS)

Segment = tuple[int, int, IntervalSet]


def universe(protocol: int) -> IntervalSet:
    """The port universe of one protocol."""
    if protocol in PORT_PROTOCOLS:
        return PORT_UNIVERSE
    return ALL_PORTS


def _clamp(protocol: int, ports: IntervalSet) -> IntervalSet:
    if protocol in PORT_PROTOCOLS:
        return ports & PORT_UNIVERSE
    if protocol in ICMP_PROTOCOLS:
        return ports
    return ALL_PORTS if ports else NO_PORTS


def _split_protocols(protocols: IntervalSet) -> Iterator[tuple[int, int]]:
    """Split protocol ranges at the port-carrying protocols, whose universes differ."""
    for lo, hi in protocols:
        start = lo
        for p in _PORTED:
            if p < start or p > hi:
                continue
            if start < p:
                yield start, p - 1
            yield p, p
            start = p + 1
        if start <= hi:
            yield start, hi


class ConnSet:
    """An immutable set of (protocol, port) pairs."""

    __slots__ = ("_hash", "segments")

    segments: tuple[Segment, ...]

    def __init__(self, segments: tuple[Segment, ...] = ()) -> None:
        self.segments = segments
        self._hash = hash(segments)

    # construction -------------------------------------------------------------------------
    @classmethod
    def _normalise(cls, raw: list[Segment]) -> ConnSet:
        raw.sort(key=lambda s: s[0])
        out: list[Segment] = []
        for lo, hi, ports in raw:
            if not ports:
                continue
            if out and out[-1][1] + 1 == lo and out[-1][2] == ports:
                out[-1] = (out[-1][0], hi, ports)
            else:
                out.append((lo, hi, ports))
        return cls(tuple(out))

    @classmethod
    def build(cls, protocols: IntervalSet, ports: IntervalSet) -> ConnSet:
        """Every protocol in ``protocols`` with ``ports`` (clamped to its universe)."""
        raw: list[Segment] = []
        for lo, hi in _split_protocols(protocols):
            raw.append((lo, hi, _clamp(lo, ports)))
        return cls._normalise(raw)

    @classmethod
    def single(cls, protocol: int, ports: IntervalSet | None = None) -> ConnSet:
        p = int(protocol)
        return cls.build(IntervalSet.point(p), universe(p) if ports is None else ports)

    # algebra ------------------------------------------------------------------------------
    def _combine(
        self, other: ConnSet, op: Callable[[IntervalSet, IntervalSet], IntervalSet]
    ) -> ConnSet:
        cuts = {0, 256}
        for lo, hi, _ in self.segments:
            cuts.add(lo)
            cuts.add(hi + 1)
        for lo, hi, _ in other.segments:
            cuts.add(lo)
            cuts.add(hi + 1)
        points = sorted(cuts)
        raw: list[Segment] = []
        for i in range(len(points) - 1):
            lo, hi = points[i], points[i + 1] - 1
            ports = op(self.ports_of(lo), other.ports_of(lo))
            if ports:
                raw.append((lo, hi, ports))
        return ConnSet._normalise(raw)

    def __or__(self, other: ConnSet) -> ConnSet:
        if not other.segments or self is other:
            return self
        if not self.segments:
            return other
        return self._combine(other, IntervalSet.__or__)

    def __and__(self, other: ConnSet) -> ConnSet:
        if not self.segments or not other.segments:
            return EMPTY
        if self is other or self == other:
            return self
        if self is FULL:
            return other
        if other is FULL:
            return self
        return self._combine(other, IntervalSet.__and__)

    def __sub__(self, other: ConnSet) -> ConnSet:
        if not other.segments or not self.segments:
            return self
        return self._combine(other, IntervalSet.__sub__)

    def __xor__(self, other: ConnSet) -> ConnSet:
        return self._combine(other, IntervalSet.__xor__)

    def __le__(self, other: ConnSet) -> bool:
        return not (self - other).segments

    def __bool__(self) -> bool:
        return bool(self.segments)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ConnSet) and self.segments == other.segments

    def __hash__(self) -> int:
        return self._hash

    # queries ------------------------------------------------------------------------------
    def ports_of(self, protocol: int) -> IntervalSet:
        """The port set of one protocol."""
        for lo, hi, ports in self.segments:
            if lo <= protocol <= hi:
                return ports
            if lo > protocol:
                break
        return NO_PORTS

    def contains(self, protocol: int, port: int | None) -> bool:
        ports = self.ports_of(protocol)
        if not ports:
            return False
        if port is None or (protocol not in PORT_PROTOCOLS and protocol not in ICMP_PROTOCOLS):
            return True
        return port in ports

    def sample(self) -> tuple[int, int | None] | None:
        """One (protocol, port) in the set, preferring TCP, UDP, SCTP; None when empty."""
        for proto in (Protocol.TCP, Protocol.UDP, Protocol.SCTP, Protocol.ICMP, Protocol.ICMPV6):
            ports = self.ports_of(proto)
            if ports:
                return int(proto), ports.min()
        for lo, hi, ports in self.segments:
            # Prefer any other number to 0 (HOPOPT), which nobody means by "a protocol".
            number = 1 if lo == 0 and hi >= 1 else lo
            return number, (ports.min() if number in PORT_PROTOCOLS | ICMP_PROTOCOLS else None)
        return None

    def by_protocol(self) -> dict[str, str]:
        """``{"TCP": "1-65535", "UDP": "53", "SCTP": ""}``: TCP/UDP/SCTP always, others when set."""
        out = {
            name: str(self.ports_of(int(proto)))
            for name, proto in (
                ("TCP", Protocol.TCP),
                ("UDP", Protocol.UDP),
                ("SCTP", Protocol.SCTP),
            )
        }
        named = sorted(int(p) for p in Protocol)
        for lo, hi, ports in self.segments:
            start = lo
            for proto in [*(p for p in named if lo <= p <= hi), hi + 1]:
                if start < proto:  # an unnamed run of protocol numbers
                    out[str(start) if start == proto - 1 else f"{start}-{proto - 1}"] = "all"
                if proto <= hi and proto not in (Protocol.TCP, Protocol.UDP, Protocol.SCTP):
                    if proto in ICMP_PROTOCOLS:
                        out[protocol_name(proto)] = format_icmp(ports)
                    else:
                        out[protocol_name(proto)] = "all"
                start = proto + 1
        return out

    def __repr__(self) -> str:
        if self == FULL:
            return "ConnSet(ALL)"
        shown = {k: v for k, v in self.by_protocol().items() if v}
        return f"ConnSet({shown})"


def format_icmp(encoded: IntervalSet) -> str:
    """ICMP type/code sets as ``8,3/1,all``-style text."""
    if encoded == ALL_PORTS:
        return "all"
    parts: list[str] = []
    for lo, hi in encoded:
        value = lo
        while value <= hi:
            icmp_type, code = divmod(value, 256)
            if code == 0 and value + 255 <= hi:
                parts.append(str(icmp_type))
                value += 256
            else:
                parts.append(f"{icmp_type}/{code}")
                value += 1
    return ",".join(parts)


EMPTY = ConnSet()
FULL = ConnSet.build(ALL_PROTOCOLS, ALL_PORTS)
