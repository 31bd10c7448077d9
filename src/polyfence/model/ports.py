"""Protocols and ports: one uniform (protocol, port) space for every format.

Every protocol is its IANA number. The "port" dimension is the destination port for
port-carrying protocols and ``type * 256 + code`` for ICMP/ICMPv6, so that ICMP type and code
matches use the same interval algebra as port ranges. Protocols without ports (GRE, ESP, …)
match all-or-nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from polyfence.semantics.intervals import ALL_PORTS, IntervalSet


class Protocol(IntEnum):
    """IANA protocol numbers that policy formats name."""

    ICMP = 1
    TCP = 6
    UDP = 17
    ICMPV6 = 58
    SCTP = 132
    UDPLITE = 136


PROTOCOL_MIN = 0
PROTOCOL_MAX = 255
ALL_PROTOCOLS = IntervalSet.span(PROTOCOL_MIN, PROTOCOL_MAX)
PORT_PROTOCOLS = frozenset({Protocol.TCP, Protocol.UDP, Protocol.SCTP, Protocol.UDPLITE})
ICMP_PROTOCOLS = frozenset({Protocol.ICMP, Protocol.ICMPV6})


def protocol_name(number: int) -> str:
    """The conventional upper-case name of a protocol, or its number."""
    try:
        return Protocol(number).name.replace("ICMPV6", "ICMPv6").replace("UDPLITE", "UDPLite")
    except ValueError:
        return str(number)


def connection_words(protocol: str | int, port: int | None) -> str:
    """A witness connection as people say it: ``TCP/443``, ``any UDP port``, ``ICMP type 8
    code 0``, ``any ICMP``, ``GRE (IP protocol 47)``; never a bare number."""
    try:
        number = protocol_number(protocol)
    except ValueError:
        return str(protocol)
    name = protocol_name(number)
    if number in PORT_PROTOCOLS:
        return f"{name}/{port}" if port is not None else f"any {name} port"
    if number in ICMP_PROTOCOLS:
        if port is None:
            return f"any {name}"
        return f"{name} type {port // 256} code {port % 256}"
    if name.isdigit():
        return f"IP protocol {number} (a protocol other than TCP, UDP, SCTP and ICMP)"
    return f"{name} (IP protocol {number})"


def protocol_number(name: str | int) -> int:
    """Parse a protocol name (any case) or number; raises ValueError for junk."""
    if isinstance(name, int) and not isinstance(name, bool):
        number = name
    else:
        text = str(name).strip()
        if text.isdigit():
            number = int(text)
        else:
            try:
                return int(Protocol[text.upper()])
            except KeyError:
                raise ValueError(f"unknown protocol {name!r}") from None
    if not PROTOCOL_MIN <= number <= PROTOCOL_MAX:
        raise ValueError(f"protocol number {number} is outside 0-255")
    return number


def has_ports(protocol: int) -> bool:
    """Whether the port dimension means something for this protocol."""
    return protocol in PORT_PROTOCOLS or protocol in ICMP_PROTOCOLS


def icmp_range(icmp_type: int | None, icmp_code: int | None) -> IntervalSet:
    """The encoded port-dimension range for an ICMP type (any code when code is None)."""
    if icmp_type is None:
        return ALL_PORTS
    if icmp_code is None:
        return IntervalSet.span(icmp_type * 256, icmp_type * 256 + 255)
    return IntervalSet.point(icmp_type * 256 + icmp_code)


@dataclass(frozen=True, slots=True)
class PortSpec:
    """A conjunction: protocol in ``protocols`` and destination port in ``ports`` or in ``named``.

    ``named`` ports are resolved on the destination endpoint of each concrete connection
    (Kubernetes semantics); ``not_named`` removes named ports (Calico ``notPorts``).
    """

    protocols: IntervalSet = ALL_PROTOCOLS
    ports: IntervalSet = ALL_PORTS
    named: frozenset[str] = frozenset()
    not_named: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if not self.protocols <= ALL_PROTOCOLS:
            raise ValueError("protocol numbers must lie in 0-255")
        if not self.ports <= ALL_PORTS:
            raise ValueError("ports must lie in 0-65535")

    @classmethod
    def single(
        cls,
        protocol: int,
        ports: IntervalSet = ALL_PORTS,
        named: frozenset[str] = frozenset(),
    ) -> PortSpec:
        """One protocol with a numeric port set and/or named ports."""
        return cls(IntervalSet.point(int(protocol)), ports, named)


class AnyPorts:
    """Matches every protocol and port (k8s rule with no ``ports``)."""

    __slots__ = ()
    _instance: AnyPorts | None = None

    def __new__(cls) -> AnyPorts:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "ANY_PORTS"

    def __reduce__(self) -> str:
        return "ANY_PORTS"


ANY_PORTS = AnyPorts()
PortMatch = tuple[PortSpec, ...] | AnyPorts
