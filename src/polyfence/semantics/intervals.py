"""Immutable integer interval sets: the algebra behind ports, protocols and address spaces.

Policy semantics reduce to set algebra over a few integer dimensions, so the engine needs
exact, canonical sets that are cheap to combine and compare. Both classes here keep a unique
normal form (sorted, disjoint, non-adjacent closed intervals), which makes ``==`` and
``hash`` structural and lets every binary operation run as a single linear sweep.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from ipaddress import (
    IPv4Address,
    IPv4Interface,
    IPv4Network,
    IPv6Address,
    IPv6Interface,
    IPv6Network,
    ip_address,
    summarize_address_range,
)
from operator import index, itemgetter

__all__ = [
    "ALL_PORTS",
    "IPV4_MAX",
    "IPV6_MAX",
    "NO_PORTS",
    "PORT_MAX",
    "PORT_MIN",
    "IPSet",
    "IntervalSet",
    "parse_cidr",
]

Bounds = tuple[tuple[int, int], ...]

PORT_MIN = 0
PORT_MAX = 65535
IPV4_MAX = (1 << 32) - 1
IPV6_MAX = (1 << 128) - 1

_lo_of = itemgetter(0)
_ITEM_RE = re.compile(r"\s*(-?[0-9]+)\s*(?:-\s*(-?[0-9]+)\s*)?")


# --------------------------------------------------------------------------------------------
# Linear sweeps over normalised bounds. They trust their inputs (sorted, disjoint,
# non-adjacent) and always produce that form, so no result needs re-checking.
# --------------------------------------------------------------------------------------------


def _coalesce(pairs: list[tuple[int, int]]) -> Bounds:
    """Merge sorted (possibly overlapping/adjacent) pairs into normal form."""
    if not pairs:
        return ()
    out: list[tuple[int, int]] = []
    cur_lo, cur_hi = pairs[0]
    for lo, hi in pairs:
        if lo <= cur_hi + 1:
            if hi > cur_hi:
                cur_hi = hi
        else:
            out.append((cur_lo, cur_hi))
            cur_lo, cur_hi = lo, hi
    out.append((cur_lo, cur_hi))
    return tuple(out)


def _union(a: Bounds, b: Bounds) -> Bounds:
    if not b or a is b:
        return a
    if not a:
        return b
    # Common in practice: one set lies entirely before the other.
    if a[-1][1] + 1 < b[0][0]:
        return a + b
    if b[-1][1] + 1 < a[0][0]:
        return b + a
    out: list[tuple[int, int]] = []
    append = out.append
    na, nb = len(a), len(b)
    i = j = 0
    if a[0][0] <= b[0][0]:
        cur_lo, cur_hi = a[0]
        i = 1
    else:
        cur_lo, cur_hi = b[0]
        j = 1
    while i < na and j < nb:
        if a[i][0] <= b[j][0]:
            lo, hi = a[i]
            i += 1
        else:
            lo, hi = b[j]
            j += 1
        if lo <= cur_hi + 1:
            if hi > cur_hi:
                cur_hi = hi
        else:
            append((cur_lo, cur_hi))
            cur_lo, cur_hi = lo, hi
    # One side is exhausted; the rest of the other is already normal once past cur_hi.
    rest, k = (a, i) if i < na else (b, j)
    n = len(rest)
    while k < n and rest[k][0] <= cur_hi + 1:
        hi = rest[k][1]
        if hi > cur_hi:
            cur_hi = hi
        k += 1
    append((cur_lo, cur_hi))
    return tuple(out) + rest[k:] if k < n else tuple(out)


def _intersection(a: Bounds, b: Bounds) -> Bounds:
    if not a or a is b:
        return a
    if not b:
        return b
    if a[-1][1] < b[0][0] or b[-1][1] < a[0][0]:
        return ()
    out: list[tuple[int, int]] = []
    append = out.append
    na, nb = len(a), len(b)
    i = j = 0
    while i < na and j < nb:
        alo, ahi = a[i]
        blo, bhi = b[j]
        lo = alo if alo > blo else blo
        if ahi < bhi:
            if lo <= ahi:
                append((lo, ahi))
            i += 1
        else:
            if lo <= bhi:
                append((lo, bhi))
            j += 1
    return tuple(out)


def _difference(a: Bounds, b: Bounds) -> Bounds:
    if not a or not b:
        return a
    if a is b:
        return ()
    if a[-1][1] < b[0][0] or b[-1][1] < a[0][0]:
        return a
    out: list[tuple[int, int]] = []
    append = out.append
    nb = len(b)
    j = 0
    for lo, hi in a:
        while j < nb and b[j][1] < lo:
            j += 1
        cur = lo
        while j < nb:
            blo, bhi = b[j]
            if blo > hi:
                break
            if blo > cur:
                append((cur, blo - 1))
            if bhi >= cur:
                cur = bhi + 1
            if cur > hi:
                break  # b[j] may still cover the next interval of a: keep j
            j += 1
        if cur <= hi:
            append((cur, hi))
    return tuple(out)


def _symmetric_difference(a: Bounds, b: Bounds) -> Bounds:
    # As half-open [lo, hi + 1) boundaries, XOR just toggles at every boundary of either set;
    # a boundary present in both cancels out. Toggle points are distinct, so the result is
    # automatically non-adjacent.
    if not a:
        return b
    if not b:
        return a
    if a is b:
        return ()
    ea = [x for lo, hi in a for x in (lo, hi + 1)]
    eb = [x for lo, hi in b for x in (lo, hi + 1)]
    events: list[int] = []
    append = events.append
    na, nb = len(ea), len(eb)
    i = j = 0
    while i < na and j < nb:
        x, y = ea[i], eb[j]
        if x < y:
            append(x)
            i += 1
        elif y < x:
            append(y)
            j += 1
        else:
            i += 1
            j += 1
    events.extend(ea[i:])
    events.extend(eb[j:])
    return tuple((lo, end - 1) for lo, end in zip(events[::2], events[1::2], strict=True))


def _is_subset(a: Bounds, b: Bounds) -> bool:
    # b is non-adjacent, so each interval of a must fit inside a single interval of b.
    nb = len(b)
    j = 0
    for lo, hi in a:
        while j < nb and b[j][1] < lo:
            j += 1
        if j == nb:
            return False
        blo, bhi = b[j]
        if blo > lo or bhi < hi:
            return False
    return True


def _is_disjoint(a: Bounds, b: Bounds) -> bool:
    na, nb = len(a), len(b)
    i = j = 0
    while i < na and j < nb:
        alo, ahi = a[i]
        blo, bhi = b[j]
        if ahi < blo:
            i += 1
        elif bhi < alo:
            j += 1
        else:
            return False
    return True


def _complement(a: Bounds, lo: int, hi: int) -> Bounds:
    out: list[tuple[int, int]] = []
    cur = lo
    for alo, ahi in a:
        if ahi < cur:
            continue
        if alo > hi:
            break
        if alo > cur:
            out.append((cur, alo - 1))
        cur = ahi + 1
        if cur > hi:
            break
    if cur <= hi:
        out.append((cur, hi))
    return tuple(out)


def _check_normal(bounds: Bounds) -> None:
    prev_hi: int | None = None
    for pair in bounds:
        if type(pair) is not tuple or len(pair) != 2:
            raise TypeError(f"IntervalSet bounds must be (lo, hi) tuples, got {pair!r}")
        lo, hi = pair
        if type(lo) is not int or type(hi) is not int:
            raise TypeError(f"IntervalSet bounds must be ints, got {pair!r}")
        if lo > hi:
            raise ValueError(f"interval {pair!r} has lo > hi")
        if prev_hi is not None and lo <= prev_hi + 1:
            raise ValueError(
                "IntervalSet bounds must be sorted, disjoint and non-adjacent "
                f"(use IntervalSet.of to normalise): {bounds!r}"
            )
        prev_hi = hi


@dataclass(frozen=True, slots=True, repr=False)
class IntervalSet:
    """A finite set of integers stored as canonical closed intervals.

    The canonical form makes equality and hashing structural, and keeps every operation a
    linear two-pointer sweep instead of anything quadratic. Direct construction validates the
    form (a string is parsed, so ``repr()`` round-trips); the classmethods normalise
    arbitrary input. ``len()`` is deliberately undefined: it would be ambiguous between the
    number of intervals and the number of integers (use ``size()`` or ``intervals()``).
    """

    bounds: Bounds = ()

    def __post_init__(self) -> None:
        bounds = self.bounds
        if isinstance(bounds, str):  # so that eval(repr(x)) == x
            object.__setattr__(self, "bounds", IntervalSet.parse(bounds).bounds)
            return
        if type(bounds) is not tuple or any(type(p) is not tuple for p in bounds):
            bounds = tuple((int(p[0]), int(p[1])) for p in bounds)
            object.__setattr__(self, "bounds", bounds)
        _check_normal(bounds)

    # -- constructors -----------------------------------------------------------------------

    @classmethod
    def empty(cls) -> IntervalSet:
        """The empty set (shared instance)."""
        return _EMPTY

    @classmethod
    def of(cls, *pairs: tuple[int, int]) -> IntervalSet:
        """Normalise pairs given in any order, overlapping or adjacent."""
        items: list[tuple[int, int]] = []
        for pair in pairs:
            try:
                lo, hi = pair
                lo, hi = index(lo), index(hi)
            except (TypeError, ValueError):
                raise TypeError(f"expected an integer (lo, hi) pair, got {pair!r}") from None
            if lo > hi:
                raise ValueError(f"interval ({lo}, {hi}) has lo > hi")
            items.append((lo, hi))
        items.sort()
        return _make(_coalesce(items))

    @classmethod
    def point(cls, value: int) -> IntervalSet:
        """The singleton ``{value}``."""
        value = index(value)
        return _make(((value, value),))

    @classmethod
    def span(cls, lo: int, hi: int) -> IntervalSet:
        """All integers in ``lo..hi`` inclusive; ``lo > hi`` is an error, not an empty set."""
        lo, hi = index(lo), index(hi)
        if lo > hi:
            raise ValueError(f"span({lo}, {hi}) has lo > hi")
        return _make(((lo, hi),))

    @classmethod
    def union_all(cls, sets: Iterable[IntervalSet]) -> IntervalSet:
        """Union of many sets in one sort+merge rather than a chain of pairwise unions."""
        items = [pair for s in sets for pair in s.bounds]
        items.sort()
        return _make(_coalesce(items))

    @classmethod
    def parse(cls, text: str) -> IntervalSet:
        """Inverse of ``str()``: ``"80, 443, 8000-8080"``; the empty string is the empty set."""
        if not isinstance(text, str):
            raise TypeError(f"IntervalSet.parse expects a str, got {type(text).__name__}")
        if not text.strip():
            return _EMPTY
        items: list[tuple[int, int]] = []
        for item in text.split(","):
            m = _ITEM_RE.fullmatch(item)
            if m is None:
                raise ValueError(
                    f"cannot parse {text!r}: {item.strip()!r} is not a number or a 'lo-hi' range"
                )
            try:
                lo = int(m.group(1))
                hi = lo if m.group(2) is None else int(m.group(2))
            except ValueError as exc:  # e.g. beyond int's digit limit
                raise ValueError(f"cannot parse {text!r}: {exc}") from None
            if lo > hi:
                raise ValueError(f"cannot parse {text!r}: range {item.strip()!r} has lo > hi")
            items.append((lo, hi))
        items.sort()
        return _make(_coalesce(items))

    # -- set algebra ------------------------------------------------------------------------

    def __or__(self, other: object) -> IntervalSet:
        if not isinstance(other, IntervalSet):
            return NotImplemented
        return _wrap(_union(self.bounds, other.bounds), self, other)

    def __and__(self, other: object) -> IntervalSet:
        if not isinstance(other, IntervalSet):
            return NotImplemented
        return _wrap(_intersection(self.bounds, other.bounds), self, other)

    def __sub__(self, other: object) -> IntervalSet:
        if not isinstance(other, IntervalSet):
            return NotImplemented
        return _wrap(_difference(self.bounds, other.bounds), self, other)

    def __xor__(self, other: object) -> IntervalSet:
        if not isinstance(other, IntervalSet):
            return NotImplemented
        return _wrap(_symmetric_difference(self.bounds, other.bounds), self, other)

    def union(self, other: IntervalSet) -> IntervalSet:
        return self | _require(other)

    def intersection(self, other: IntervalSet) -> IntervalSet:
        return self & _require(other)

    def difference(self, other: IntervalSet) -> IntervalSet:
        return self - _require(other)

    def symmetric_difference(self, other: IntervalSet) -> IntervalSet:
        return self ^ _require(other)

    def complement(self, lo: int, hi: int) -> IntervalSet:
        """Everything in the universe ``lo..hi`` not in this set (parts outside are ignored)."""
        lo, hi = index(lo), index(hi)
        if lo > hi:
            raise ValueError(f"complement universe ({lo}, {hi}) has lo > hi")
        return _make(_complement(self.bounds, lo, hi))

    # -- comparisons ------------------------------------------------------------------------

    def __le__(self, other: object) -> bool:
        if not isinstance(other, IntervalSet):
            return NotImplemented
        return _is_subset(self.bounds, other.bounds)

    def __ge__(self, other: object) -> bool:
        if not isinstance(other, IntervalSet):
            return NotImplemented
        return _is_subset(other.bounds, self.bounds)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, IntervalSet):
            return NotImplemented
        return self.bounds != other.bounds and _is_subset(self.bounds, other.bounds)

    def __gt__(self, other: object) -> bool:
        if not isinstance(other, IntervalSet):
            return NotImplemented
        return self.bounds != other.bounds and _is_subset(other.bounds, self.bounds)

    def issubset(self, other: IntervalSet) -> bool:
        return _is_subset(self.bounds, _require(other).bounds)

    def issuperset(self, other: IntervalSet) -> bool:
        return _is_subset(_require(other).bounds, self.bounds)

    def isdisjoint(self, other: IntervalSet) -> bool:
        return _is_disjoint(self.bounds, _require(other).bounds)

    # -- queries ----------------------------------------------------------------------------

    def __bool__(self) -> bool:
        return bool(self.bounds)

    def __contains__(self, value: object) -> bool:
        # Non-integers raise TypeError rather than answering False: asking whether the
        # string "80" is a port is a caller bug that must not silently mean "no match".
        v = index(value)  # type: ignore[arg-type]
        bounds = self.bounds
        i = bisect_right(bounds, v, key=_lo_of)
        return i > 0 and v <= bounds[i - 1][1]

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return iter(self.bounds)

    def intervals(self) -> Bounds:
        return self.bounds

    def size(self) -> int:
        """Number of integers in the set."""
        return sum(hi - lo for lo, hi in self.bounds) + len(self.bounds)

    def min(self) -> int:
        if not self.bounds:
            raise ValueError("min() of an empty IntervalSet")
        return self.bounds[0][0]

    def max(self) -> int:
        if not self.bounds:
            raise ValueError("max() of an empty IntervalSet")
        return self.bounds[-1][1]

    # -- text -------------------------------------------------------------------------------

    def __str__(self) -> str:
        return ",".join(str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in self.bounds)

    def __repr__(self) -> str:
        return f"IntervalSet({str(self)!r})"


_new_object = object.__new__
_set_attr = object.__setattr__


def _make(bounds: Bounds) -> IntervalSet:
    """Build without validation: only for bounds already known to be in normal form."""
    obj = _new_object(IntervalSet)
    _set_attr(obj, "bounds", bounds)
    return obj


def _wrap(bounds: Bounds, a: IntervalSet, b: IntervalSet) -> IntervalSet:
    """Reuse an operand when the result is identical, sparing an allocation."""
    if bounds is a.bounds:
        return a
    if bounds is b.bounds:
        return b
    return _make(bounds)


def _require(other: object) -> IntervalSet:
    if not isinstance(other, IntervalSet):
        raise TypeError(f"expected an IntervalSet, got {type(other).__name__}")
    return other


_EMPTY = _make(())

ALL_PORTS = IntervalSet.span(PORT_MIN, PORT_MAX)
NO_PORTS = IntervalSet.empty()


# --------------------------------------------------------------------------------------------
# IP addresses
# --------------------------------------------------------------------------------------------


def parse_cidr(text: str) -> tuple[int, int, int]:
    """Parse ``"10.0.0.0/8"`` or a bare address into ``(version, lo, hi)``.

    Host bits are an error rather than being masked off: a policy that says ``10.0.0.1/8``
    is ambiguous about intent, and silently widening or narrowing it would change what the
    policy allows. Only prefix-length notation is accepted (no netmasks, no scope ids).
    """
    if not isinstance(text, str):
        raise TypeError(f"parse_cidr expects a str, got {type(text).__name__}")
    s = text.strip()
    addr, sep, plen = s.partition("/")
    if "%" in addr:
        raise ValueError(f"{text!r} is not a valid CIDR: scoped addresses are not allowed")
    try:
        ip = ip_address(addr)
    except ValueError:
        raise ValueError(
            f"{text!r} is not a valid CIDR: {addr!r} is not an IPv4 or IPv6 address"
        ) from None
    maxlen = ip.max_prefixlen
    if sep:
        if not (plen.isascii() and plen.isdigit()):
            raise ValueError(
                f"{text!r} is not a valid CIDR: prefix {plen!r} is not a prefix length"
            )
        prefix = int(plen) if len(plen) <= 3 else maxlen + 1
        if prefix > maxlen:
            raise ValueError(
                f"{text!r} is not a valid CIDR: prefix length {plen} is out of range "
                f"0-{maxlen} for IPv{ip.version}"
            )
    else:
        prefix = maxlen
    value = int(ip)
    size = 1 << (maxlen - prefix)
    if value & (size - 1):
        network = type(ip)(value & ~(size - 1))
        raise ValueError(f"{text!r} has host bits set (the network would be '{network}/{prefix}')")
    return ip.version, value, value + size - 1


AddressLike = str | IPv4Address | IPv6Address
CidrLike = str | IPv4Network | IPv6Network | IPv4Address | IPv6Address


def _cidr_bounds(cidr: object) -> tuple[int, int, int]:
    if isinstance(cidr, str):
        return parse_cidr(cidr)
    if isinstance(cidr, (IPv4Network, IPv6Network)):
        return cidr.version, int(cidr.network_address), int(cidr.broadcast_address)
    if isinstance(cidr, (IPv4Interface, IPv6Interface)):
        # An interface carries a prefix; route through the string so host bits are caught.
        return parse_cidr(str(cidr))
    if isinstance(cidr, (IPv4Address, IPv6Address)):
        value = int(cidr)
        return cidr.version, value, value
    raise TypeError(f"expected a CIDR string or ipaddress network, got {type(cidr).__name__}")


def _parse_address(ip: object) -> tuple[int, int]:
    if isinstance(ip, str):
        s = ip.strip()
        if "/" in s or "%" in s:
            raise ValueError(f"{ip!r} is not a plain IP address")
        try:
            addr = ip_address(s)
        except ValueError:
            raise ValueError(f"{ip!r} is not an IPv4 or IPv6 address") from None
        return addr.version, int(addr)
    if isinstance(ip, (IPv4Address, IPv6Address)):
        return ip.version, int(ip)
    if isinstance(ip, int):
        # 5 could be 0.0.0.5 or ::5; guessing the family would make membership unsound.
        raise TypeError("an int is ambiguous between IPv4 and IPv6; pass an address")
    raise TypeError(f"expected an IP address, got {type(ip).__name__}")


def _format(version: int, value: int) -> str:
    return str(IPv4Address(value) if version == 4 else IPv6Address(value))


@dataclass(frozen=True, slots=True, repr=False)
class IPSet:
    """A set of IPv4 and IPv6 addresses, each family an IntervalSet over its own universe.

    The families never mix (``::ffff:10.0.0.1`` is an IPv6 address, not ``10.0.0.1``):
    policies match on the packet's actual family, so conflating them would be unsound.
    ``IPSet("10.0.0.0/8,::1")`` parses its argument, so ``repr()`` round-trips.
    """

    v4: IntervalSet = _EMPTY
    v6: IntervalSet = _EMPTY

    def __post_init__(self) -> None:
        if isinstance(self.v4, str) and self.v6 is _EMPTY:  # so that eval(repr(x)) == x
            parsed = IPSet.parse(self.v4)
            object.__setattr__(self, "v4", parsed.v4)
            object.__setattr__(self, "v6", parsed.v6)
            return
        for name, part, top in (("v4", self.v4, IPV4_MAX), ("v6", self.v6, IPV6_MAX)):
            if not isinstance(part, IntervalSet):
                raise TypeError(f"IPSet.{name} must be an IntervalSet")
            if part and (part.min() < 0 or part.max() > top):
                raise ValueError(f"IPSet.{name} lies outside 0-{top}")

    # -- constructors -----------------------------------------------------------------------

    @classmethod
    def empty(cls) -> IPSet:
        return _IP_EMPTY

    @classmethod
    def all(cls) -> IPSet:
        return _IP_ALL

    @classmethod
    def all_v4(cls) -> IPSet:
        return _IP_ALL_V4

    @classmethod
    def all_v6(cls) -> IPSet:
        return _IP_ALL_V6

    @classmethod
    def from_cidrs(cls, cidrs: Iterable[CidrLike]) -> IPSet:
        """Union of CIDRs; any malformed one (or one with host bits set) rejects the lot."""
        if isinstance(cidrs, (str, bytes)):
            raise TypeError("from_cidrs expects an iterable of CIDRs, not a single string")
        v4: list[tuple[int, int]] = []
        v6: list[tuple[int, int]] = []
        for cidr in cidrs:
            version, lo, hi = _cidr_bounds(cidr)
            (v4 if version == 4 else v6).append((lo, hi))
        v4.sort()
        v6.sort()
        return _make_ip(_make(_coalesce(v4)), _make(_coalesce(v6)))

    @classmethod
    def from_cidr(cls, cidr: CidrLike) -> IPSet:
        version, lo, hi = _cidr_bounds(cidr)
        part = _make(((lo, hi),))
        return _make_ip(part, _EMPTY) if version == 4 else _make_ip(_EMPTY, part)

    @classmethod
    def address(cls, ip: AddressLike) -> IPSet:
        version, value = _parse_address(ip)
        part = _make(((value, value),))
        return _make_ip(part, _EMPTY) if version == 4 else _make_ip(_EMPTY, part)

    @classmethod
    def parse(cls, text: str) -> IPSet:
        """Inverse of ``str()``: comma-separated CIDRs; the empty string is the empty set."""
        if not isinstance(text, str):
            raise TypeError(f"IPSet.parse expects a str, got {type(text).__name__}")
        if not text.strip():
            return _IP_EMPTY
        return cls.from_cidrs(text.split(","))

    # -- set algebra ------------------------------------------------------------------------

    def __or__(self, other: object) -> IPSet:
        if not isinstance(other, IPSet):
            return NotImplemented
        return _make_ip(self.v4 | other.v4, self.v6 | other.v6)

    def __and__(self, other: object) -> IPSet:
        if not isinstance(other, IPSet):
            return NotImplemented
        return _make_ip(self.v4 & other.v4, self.v6 & other.v6)

    def __sub__(self, other: object) -> IPSet:
        if not isinstance(other, IPSet):
            return NotImplemented
        return _make_ip(self.v4 - other.v4, self.v6 - other.v6)

    def __xor__(self, other: object) -> IPSet:
        if not isinstance(other, IPSet):
            return NotImplemented
        return _make_ip(self.v4 ^ other.v4, self.v6 ^ other.v6)

    def __invert__(self) -> IPSet:
        return self.complement()

    def union(self, other: IPSet) -> IPSet:
        return self | _require_ip(other)

    def intersection(self, other: IPSet) -> IPSet:
        return self & _require_ip(other)

    def difference(self, other: IPSet) -> IPSet:
        return self - _require_ip(other)

    def symmetric_difference(self, other: IPSet) -> IPSet:
        return self ^ _require_ip(other)

    def complement(self) -> IPSet:
        """Every address of either family not in this set."""
        return _make_ip(
            _make(_complement(self.v4.bounds, 0, IPV4_MAX)),
            _make(_complement(self.v6.bounds, 0, IPV6_MAX)),
        )

    # -- comparisons ------------------------------------------------------------------------

    def __le__(self, other: object) -> bool:
        if not isinstance(other, IPSet):
            return NotImplemented
        return _is_subset(self.v4.bounds, other.v4.bounds) and _is_subset(
            self.v6.bounds, other.v6.bounds
        )

    def __ge__(self, other: object) -> bool:
        if not isinstance(other, IPSet):
            return NotImplemented
        return _is_subset(other.v4.bounds, self.v4.bounds) and _is_subset(
            other.v6.bounds, self.v6.bounds
        )

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, IPSet):
            return NotImplemented
        return self != other and self <= other

    def __gt__(self, other: object) -> bool:
        if not isinstance(other, IPSet):
            return NotImplemented
        return self != other and self >= other

    def issubset(self, other: IPSet) -> bool:
        return self <= _require_ip(other)

    def issuperset(self, other: IPSet) -> bool:
        return self >= _require_ip(other)

    def isdisjoint(self, other: IPSet) -> bool:
        other = _require_ip(other)
        return _is_disjoint(self.v4.bounds, other.v4.bounds) and _is_disjoint(
            self.v6.bounds, other.v6.bounds
        )

    # -- queries ----------------------------------------------------------------------------

    def __bool__(self) -> bool:
        return bool(self.v4.bounds) or bool(self.v6.bounds)

    def __contains__(self, ip: object) -> bool:
        """Membership of one address (str or ipaddress object; ints are ambiguous)."""
        version, value = _parse_address(ip)
        return value in (self.v4 if version == 4 else self.v6)

    def size_v4(self) -> int:
        return self.v4.size()

    def size_v6(self) -> int:
        return self.v6.size()

    def size(self) -> int:
        return self.v4.size() + self.v6.size()

    def to_cidrs(self) -> tuple[str, ...]:
        """The unique minimal CIDR cover, IPv4 first, each family in address order.

        Intervals are maximal, so each one's own minimal decomposition is also globally
        minimal: no block can straddle the gap between two intervals.
        """
        out: list[str] = []
        for lo, hi in self.v4.bounds:
            out.extend(map(str, summarize_address_range(IPv4Address(lo), IPv4Address(hi))))
        for lo, hi in self.v6.bounds:
            out.extend(map(str, summarize_address_range(IPv6Address(lo), IPv6Address(hi))))
        return tuple(out)

    def representative(self) -> str | None:
        """The lowest address (IPv4 before IPv6), e.g. to build a witness connection."""
        if self.v4.bounds:
            return _format(4, self.v4.bounds[0][0])
        if self.v6.bounds:
            return _format(6, self.v6.bounds[0][0])
        return None

    def sample_addresses(self, n: int) -> tuple[str, ...]:
        """Up to ``n`` distinct addresses, boundaries first (where policy bugs live).

        Round-robin over intervals: every interval's low end, its high end, then inwards.
        """
        if n <= 0:
            return ()
        parts = [(4, lo, hi) for lo, hi in self.v4.bounds]
        parts += [(6, lo, hi) for lo, hi in self.v6.bounds]
        out: list[str] = []
        k = 0
        while parts and len(out) < n:
            alive = []
            for version, lo, hi in parts:
                a, b = lo + k, hi - k
                if a > b:
                    continue
                alive.append((version, lo, hi))
                out.append(_format(version, a))
                if len(out) == n:
                    break
                if b != a:
                    out.append(_format(version, b))
                    if len(out) == n:
                        break
            parts = alive if len(out) < n else []
            k += 1
        return tuple(out)

    # -- text -------------------------------------------------------------------------------

    def __str__(self) -> str:
        return ",".join(self.to_cidrs())

    def __repr__(self) -> str:
        return f"IPSet({str(self)!r})"


def _make_ip(v4: IntervalSet, v6: IntervalSet) -> IPSet:
    """Build without validation: only for parts known to lie in their universes."""
    obj = _new_object(IPSet)
    _set_attr(obj, "v4", v4)
    _set_attr(obj, "v6", v6)
    return obj


def _require_ip(other: object) -> IPSet:
    if not isinstance(other, IPSet):
        raise TypeError(f"expected an IPSet, got {type(other).__name__}")
    return other


_ALL_V4 = IntervalSet.span(0, IPV4_MAX)
_ALL_V6 = IntervalSet.span(0, IPV6_MAX)
_IP_EMPTY = _make_ip(_EMPTY, _EMPTY)
_IP_ALL = _make_ip(_ALL_V4, _ALL_V6)
_IP_ALL_V4 = _make_ip(_ALL_V4, _EMPTY)
_IP_ALL_V6 = _make_ip(_EMPTY, _ALL_V6)
