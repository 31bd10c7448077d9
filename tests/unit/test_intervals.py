"""Tests for polyfence.semantics.intervals.

Property tests check IntervalSet against a brute-force model (Python sets over a tiny universe)
and IPSet against a model over a few small corners of the IPv4/IPv6 spaces.
"""

from __future__ import annotations

import ipaddress
import pickle
from itertools import combinations, pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from polyfence.semantics.intervals import (
    ALL_PORTS,
    NO_PORTS,
    PORT_MAX,
    PORT_MIN,
    IntervalSet,
    IPSet,
    parse_cidr,
)

U_LO, U_HI = 0, 64
UNIVERSE = frozenset(range(U_LO, U_HI + 1))
# database=None: no .hypothesis/ directory is left in the tree by test runs.
FAST = settings(max_examples=200, deadline=None, database=None)
MEDIUM = settings(max_examples=100, deadline=None, database=None)


# --------------------------------------------------------------------------------------------
# Helpers and strategies
# --------------------------------------------------------------------------------------------


def model(s: IntervalSet) -> frozenset[int]:
    return frozenset(v for lo, hi in s for v in range(lo, hi + 1))


def from_model(values: frozenset[int]) -> IntervalSet:
    return IntervalSet.of(*((v, v) for v in values))


def assert_normal(s: IntervalSet) -> None:
    bounds = s.intervals()
    assert isinstance(bounds, tuple)
    for lo, hi in bounds:
        assert type(lo) is int and type(hi) is int
        assert lo <= hi
    for (_, hi1), (lo2, _) in pairwise(bounds):
        assert hi1 + 1 < lo2, f"not disjoint/non-adjacent: {bounds}"


@st.composite
def pairs(draw: st.DrawFn, lo: int = U_LO, hi: int = U_HI) -> tuple[int, int]:
    a = draw(st.integers(lo, hi))
    b = draw(st.integers(a, min(hi, a + draw(st.sampled_from([0, 1, 3, 10, 64])))))
    return (a, b)


interval_sets = st.one_of(
    st.lists(pairs(), max_size=8).map(lambda ps: IntervalSet.of(*ps)),
    st.frozensets(st.integers(U_LO, U_HI), max_size=40).map(from_model),
    st.sampled_from([IntervalSet.empty(), IntervalSet.span(U_LO, U_HI), IntervalSet.point(U_LO)]),
)


def comp(s: IntervalSet) -> IntervalSet:
    return s.complement(U_LO, U_HI)


# IPSet corners: small enough to enumerate, placed at interesting spots (universe edges,
# a private range, IPv6 documentation space), so every model set has a few hundred members.
V4_CORNERS = [
    (int(ipaddress.IPv4Address("10.0.0.0")), 24),
    (0, 28),
    (int(ipaddress.IPv4Address("255.255.255.240")), 28),
]
V6_CORNERS = [
    (int(ipaddress.IPv6Address("2001:db8::")), 120),
    (0, 124),
    ((1 << 128) - 16, 124),
]


@st.composite
def cidrs(draw: st.DrawFn) -> tuple[int, str]:
    version = draw(st.sampled_from([4, 4, 6]))
    maxlen = 32 if version == 4 else 128
    base, region_prefix = draw(st.sampled_from(V4_CORNERS if version == 4 else V6_CORNERS))
    prefix = draw(st.integers(region_prefix, maxlen))
    k = draw(st.integers(0, (1 << (prefix - region_prefix)) - 1))
    start = base + (k << (maxlen - prefix))
    addr = ipaddress.IPv4Address(start) if version == 4 else ipaddress.IPv6Address(start)
    if prefix == maxlen and draw(st.booleans()):
        return version, str(addr)  # bare address
    return version, f"{addr}/{prefix}"


def cidr_model(items: list[tuple[int, str]]) -> frozenset[tuple[int, int]]:
    out: set[tuple[int, int]] = set()
    for version, text in items:
        net = ipaddress.ip_network(text)
        lo, hi = int(net.network_address), int(net.broadcast_address)
        out.update((version, v) for v in range(lo, hi + 1))
    return frozenset(out)


def ip_model(s: IPSet) -> frozenset[tuple[int, int]]:
    return frozenset(
        [(4, v) for lo, hi in s.v4 for v in range(lo, hi + 1)]
        + [(6, v) for lo, hi in s.v6 for v in range(lo, hi + 1)]
    )


cidr_lists = st.lists(cidrs(), max_size=6)
ip_sets = cidr_lists.map(lambda items: IPSet.from_cidrs(text for _, text in items))


def assert_ip_normal(s: IPSet) -> None:
    assert_normal(s.v4)
    assert_normal(s.v6)
    if s.v4:
        assert s.v4.min() >= 0 and s.v4.max() <= 2**32 - 1
    if s.v6:
        assert s.v6.min() >= 0 and s.v6.max() <= 2**128 - 1


# --------------------------------------------------------------------------------------------
# IntervalSet: agreement with the brute-force model
# --------------------------------------------------------------------------------------------


@FAST
@given(st.lists(pairs(), max_size=10))
def test_of_normalises_any_input(ps: list[tuple[int, int]]) -> None:
    s = IntervalSet.of(*ps)
    assert_normal(s)
    assert model(s) == frozenset(v for lo, hi in ps for v in range(lo, hi + 1))
    assert IntervalSet.of(*reversed(ps)) == s


@FAST
@given(interval_sets, interval_sets)
def test_binary_ops_agree_with_python_sets(a: IntervalSet, b: IntervalSet) -> None:
    ma, mb = model(a), model(b)
    for result, expected in (
        (a | b, ma | mb),
        (a & b, ma & mb),
        (a - b, ma - mb),
        (a ^ b, ma ^ mb),
        (a.union(b), ma | mb),
        (a.intersection(b), ma & mb),
        (a.difference(b), ma - mb),
        (a.symmetric_difference(b), ma ^ mb),
    ):
        assert_normal(result)
        assert model(result) == expected
    assert (a <= b) == (ma <= mb) == a.issubset(b)
    assert (a >= b) == (ma >= mb) == a.issuperset(b)
    assert (a < b) == (ma < mb)
    assert (a > b) == (ma > mb)
    assert a.isdisjoint(b) == ma.isdisjoint(mb)
    assert (a == b) == (ma == mb)
    if a == b:
        assert hash(a) == hash(b)


@FAST
@given(interval_sets)
def test_unary_queries_agree_with_python_sets(a: IntervalSet) -> None:
    ma = model(a)
    c = comp(a)
    assert_normal(c)
    assert model(c) == UNIVERSE - ma
    assert a.size() == len(ma)
    assert bool(a) == bool(ma)
    for v in range(U_LO - 2, U_HI + 3):
        assert (v in a) == (v in ma)
    if ma:
        assert a.min() == min(ma)
        assert a.max() == max(ma)
    else:
        with pytest.raises(ValueError):
            a.min()
        with pytest.raises(ValueError):
            a.max()
    assert tuple(a) == a.intervals()
    assert from_model(ma) == a


@FAST
@given(interval_sets, st.integers(-5, 70), st.integers(-5, 70))
def test_complement_in_arbitrary_universe(a: IntervalSet, lo: int, hi: int) -> None:
    if lo > hi:
        with pytest.raises(ValueError):
            a.complement(lo, hi)
        return
    c = a.complement(lo, hi)
    assert_normal(c)
    assert model(c) == frozenset(range(lo, hi + 1)) - model(a)


@FAST
@given(st.lists(interval_sets, max_size=5))
def test_union_all_matches_pairwise_union(sets: list[IntervalSet]) -> None:
    expected = IntervalSet.empty()
    for s in sets:
        expected |= s
    result = IntervalSet.union_all(sets)
    assert_normal(result)
    assert result == expected


# --------------------------------------------------------------------------------------------
# IntervalSet: algebraic laws
# --------------------------------------------------------------------------------------------


@FAST
@given(interval_sets, interval_sets, interval_sets)
def test_boolean_algebra_laws(a: IntervalSet, b: IntervalSet, c: IntervalSet) -> None:
    # commutativity
    assert a | b == b | a
    assert a & b == b & a
    assert a ^ b == b ^ a
    # associativity
    assert (a | b) | c == a | (b | c)
    assert (a & b) & c == a & (b & c)
    assert (a ^ b) ^ c == a ^ (b ^ c)
    # distributivity
    assert a & (b | c) == (a & b) | (a & c)
    assert a | (b & c) == (a | b) & (a | c)
    assert a - (b | c) == (a - b) & (a - c)
    # absorption and idempotence
    assert a | (a & b) == a
    assert a & (a | b) == a
    assert a | a == a
    assert a & a == a
    assert a ^ a == IntervalSet.empty()
    assert a - a == IntervalSet.empty()


@FAST
@given(interval_sets, interval_sets)
def test_complement_laws(a: IntervalSet, b: IntervalSet) -> None:
    assert comp(a | b) == comp(a) & comp(b)
    assert comp(a & b) == comp(a) | comp(b)
    assert comp(comp(a)) == a
    assert a - b == a & comp(b)
    assert a ^ b == (a - b) | (b - a)
    assert a | comp(a) == IntervalSet.span(U_LO, U_HI)
    assert a & comp(a) == IntervalSet.empty()


@FAST
@given(interval_sets, interval_sets)
def test_order_laws(a: IntervalSet, b: IntervalSet) -> None:
    assert (a <= b) == (a | b == b) == (a & b == a) == (a - b == IntervalSet.empty())
    assert (a >= b) == (b <= a)
    assert a.isdisjoint(b) == (not (a & b))
    assert a & b <= a <= a | b
    assert (a <= b and b <= a) == (a == b)


@FAST
@given(interval_sets)
def test_text_round_trip(a: IntervalSet) -> None:
    text = str(a)
    assert IntervalSet.parse(text) == a
    assert IntervalSet.parse(text.replace(",", " , ").replace("-", " - ")) == a
    assert eval(repr(a), {"IntervalSet": IntervalSet}) == a


@FAST
@given(st.lists(pairs(-100, 100), max_size=5))
def test_text_round_trip_with_negative_values(ps: list[tuple[int, int]]) -> None:
    a = IntervalSet.of(*ps)
    assert IntervalSet.parse(str(a)) == a


# --------------------------------------------------------------------------------------------
# IntervalSet: unit tables
# --------------------------------------------------------------------------------------------


def test_constructors() -> None:
    assert IntervalSet.of((3, 4), (1, 2)).intervals() == ((1, 4),)
    assert IntervalSet.of((1, 5), (2, 3), (7, 7)).intervals() == ((1, 5), (7, 7))
    assert IntervalSet.of() == IntervalSet.empty()
    assert IntervalSet.point(80).intervals() == ((80, 80),)
    assert IntervalSet.span(1, 10).intervals() == ((1, 10),)
    assert IntervalSet(((1, 2), (5, 6))).intervals() == ((1, 2), (5, 6))
    assert IntervalSet([[1, 2]]).intervals() == ((1, 2),)  # type: ignore[list-item]
    assert IntervalSet() == IntervalSet.empty()


@pytest.mark.parametrize(
    ("call", "exc"),
    [
        (lambda: IntervalSet.of((5, 4)), ValueError),
        (lambda: IntervalSet.span(5, 4), ValueError),
        (lambda: IntervalSet.of((1, 2, 3)), TypeError),  # type: ignore[arg-type]
        (lambda: IntervalSet.of(("1", 2)), TypeError),  # type: ignore[arg-type]
        (lambda: IntervalSet.of([(1, 2), (3, 4)]), TypeError),  # type: ignore[arg-type]
        (lambda: IntervalSet.point(1.5), TypeError),  # type: ignore[arg-type]
        (lambda: IntervalSet(((1, 2), (3, 4))), ValueError),  # adjacent: not normal form
        (lambda: IntervalSet(((5, 6), (1, 2))), ValueError),  # unsorted
        (lambda: IntervalSet(((1, 5), (3, 8))), ValueError),  # overlapping
        (lambda: IntervalSet(((2, 1),)), ValueError),
        (lambda: IntervalSet(((1.0, 2),)), TypeError),  # type: ignore[arg-type]
        (lambda: IntervalSet.empty().complement(2, 1), ValueError),
    ],
)
def test_constructor_errors(call: object, exc: type[Exception]) -> None:
    with pytest.raises(exc):
        call()  # type: ignore[operator]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ()),
        ("   ", ()),
        ("80", ((80, 80),)),
        ("80,443,8000-8080", ((80, 80), (443, 443), (8000, 8080))),
        (" 80 , 443 , 8000 - 8080 ", ((80, 80), (443, 443), (8000, 8080))),
        ("443,80", ((80, 80), (443, 443))),
        ("1-2,3-4", ((1, 4),)),
        ("5-5", ((5, 5),)),
        ("-5--3,-1", ((-5, -3), (-1, -1))),
        ("0-65535", ((0, 65535),)),
    ],
)
def test_parse_table(text: str, expected: tuple[tuple[int, int], ...]) -> None:
    assert IntervalSet.parse(text).intervals() == expected


@pytest.mark.parametrize(
    "text",
    [
        "abc",
        "1,,2",
        "1,",
        ",",
        "1-",
        "-",
        "1-2-3",
        "5-3",
        "1;2",
        "1 2",
        "0x10",
        "1.5",
        "\uff18\uff10",
    ],  # fullwidth digits
)
def test_parse_rejects_junk(text: str) -> None:
    with pytest.raises(ValueError, match="cannot parse"):
        IntervalSet.parse(text)


def test_parse_rejects_non_str() -> None:
    with pytest.raises(TypeError):
        IntervalSet.parse(80)  # type: ignore[arg-type]


def test_str_and_repr() -> None:
    s = IntervalSet.of((80, 80), (443, 443), (8000, 8080))
    assert str(s) == "80,443,8000-8080"
    assert repr(s) == "IntervalSet('80,443,8000-8080')"
    assert str(IntervalSet.empty()) == ""
    assert repr(IntervalSet.empty()) == "IntervalSet('')"


def test_membership_and_queries() -> None:
    s = IntervalSet.parse("80,443,8000-8080")
    assert 80 in s and 443 in s and 8000 in s and 8080 in s and 8042 in s
    assert 79 not in s and 81 not in s and 8081 not in s and -1 not in s
    assert s.size() == 2 + 81
    assert s.min() == 80 and s.max() == 8080
    assert bool(s) and not IntervalSet.empty()
    assert list(s) == [(80, 80), (443, 443), (8000, 8080)]
    with pytest.raises(TypeError):
        "80" in s  # noqa: B015
    with pytest.raises(TypeError):
        len(s)  # type: ignore[arg-type]


def test_comparison_with_other_types() -> None:
    s = IntervalSet.point(1)
    assert s != (1, 1)
    assert s != IPSet.empty()
    with pytest.raises(TypeError):
        s | {1}  # type: ignore[operator]
    with pytest.raises(TypeError):
        s <= {1}  # type: ignore[operator]  # noqa: B015
    with pytest.raises(TypeError):
        s.issubset({1})  # type: ignore[arg-type]


def test_immutable_hashable_picklable() -> None:
    s = IntervalSet.parse("1-3,7")
    with pytest.raises(AttributeError):
        s.bounds = ()  # type: ignore[misc]
    assert {s: 1}[IntervalSet.of((7, 7), (1, 3))] == 1
    assert pickle.loads(pickle.dumps(s)) == s


def test_port_constants() -> None:
    assert (PORT_MIN, PORT_MAX) == (0, 65535)
    assert ALL_PORTS.intervals() == ((0, 65535),)
    assert ALL_PORTS.size() == 65536
    assert not NO_PORTS
    assert IntervalSet.empty() == NO_PORTS
    assert IntervalSet.parse("22,80").complement(PORT_MIN, PORT_MAX) == IntervalSet.parse(
        "0-21,23-79,81-65535"
    )


def test_large_sets_are_linear_enough() -> None:
    evens = IntervalSet.of(*((2 * i, 2 * i) for i in range(20000)))
    odds = IntervalSet.of(*((2 * i + 1, 2 * i + 1) for i in range(20000)))
    assert (evens | odds).intervals() == ((0, 39999),)
    assert not (evens & odds)
    assert evens - odds == evens
    assert (evens ^ odds).intervals() == ((0, 39999),)
    assert evens.isdisjoint(odds)
    assert 39998 in evens and 39999 not in evens


# --------------------------------------------------------------------------------------------
# IPSet: agreement with the model, laws, CIDR cover
# --------------------------------------------------------------------------------------------


@MEDIUM
@given(cidr_lists)
def test_from_cidrs_matches_model(items: list[tuple[int, str]]) -> None:
    s = IPSet.from_cidrs(text for _, text in items)
    assert_ip_normal(s)
    assert ip_model(s) == cidr_model(items)
    objs = [ipaddress.ip_network(text) for _, text in items]
    assert IPSet.from_cidrs(objs) == s


@MEDIUM
@given(ip_sets, ip_sets)
def test_ipset_binary_ops_agree_with_python_sets(a: IPSet, b: IPSet) -> None:
    ma, mb = ip_model(a), ip_model(b)
    for result, expected in (
        (a | b, ma | mb),
        (a & b, ma & mb),
        (a - b, ma - mb),
        (a ^ b, ma ^ mb),
    ):
        assert_ip_normal(result)
        assert ip_model(result) == expected
    assert (a <= b) == (ma <= mb) == a.issubset(b)
    assert (a >= b) == (ma >= mb) == a.issuperset(b)
    assert a.isdisjoint(b) == ma.isdisjoint(mb)
    assert (a == b) == (ma == mb)
    assert bool(a) == bool(ma)
    assert a.size() == len(ma)
    assert a.size_v4() == sum(1 for v, _ in ma if v == 4)
    assert a.size_v6() == sum(1 for v, _ in ma if v == 6)


@MEDIUM
@given(ip_sets, ip_sets, ip_sets)
def test_ipset_laws(a: IPSet, b: IPSet, c: IPSet) -> None:
    assert a | b == b | a and a & b == b & a and a ^ b == b ^ a
    assert (a | b) | c == a | (b | c)
    assert (a & b) & c == a & (b & c)
    assert a & (b | c) == (a & b) | (a & c)
    assert a | (b & c) == (a | b) & (a | c)
    assert a | (a & b) == a and a & (a | b) == a
    assert a | a == a and a & a == a
    assert ~(a | b) == ~a & ~b
    assert ~(a & b) == ~a | ~b
    assert ~~a == a
    assert a - b == a & ~b
    assert a | ~a == IPSet.all()
    assert a & ~a == IPSet.empty()
    assert a.complement() == IPSet.all() - a
    assert (a <= b) == (a | b == b) == (a & b == a)
    assert_ip_normal(~a)


@MEDIUM
@given(ip_sets)
def test_ipset_membership(a: IPSet) -> None:
    m = ip_model(a)
    for version, corners in ((4, V4_CORNERS), (6, V6_CORNERS)):
        maxlen = 32 if version == 4 else 128
        cls = ipaddress.IPv4Address if version == 4 else ipaddress.IPv6Address
        for base, prefix in corners:
            for v in range(base, base + (1 << (maxlen - prefix)), 7):
                assert (cls(v) in a) == ((version, v) in m)
                assert (str(cls(v)) in a) == ((version, v) in m)


@MEDIUM
@given(ip_sets)
def test_to_cidrs_round_trip_and_minimality(a: IPSet) -> None:
    out = a.to_cidrs()
    assert IPSet.from_cidrs(out) == a
    assert IPSet.parse(str(a)) == a
    assert eval(repr(a), {"IPSet": IPSet}) == a
    nets = [ipaddress.ip_network(c) for c in out]
    # IPv4 first, then IPv6, each in address order.
    versions = [n.version for n in nets]
    assert versions == sorted(versions)
    for x, y in pairwise(nets):
        if x.version == y.version:
            assert x.broadcast_address < y.network_address
    # No two CIDRs could merge into one: no overlap, and no pair of sibling blocks.
    for x, y in combinations(nets, 2):
        if x.version != y.version:
            continue
        assert not x.overlaps(y)
        if x.prefixlen == y.prefixlen and x.prefixlen > 0:
            assert x.supernet() != y.supernet()
    # Stronger: every block is maximal, i.e. its parent block is not inside the set.
    for n in nets:
        if n.prefixlen > 0:
            assert not IPSet.from_cidrs([n.supernet()]) <= a


@MEDIUM
@given(ip_sets)
def test_representative_and_samples(a: IPSet) -> None:
    rep = a.representative()
    if not a:
        assert rep is None
        assert a.sample_addresses(3) == ()
        return
    assert rep is not None and rep in a
    ip = ipaddress.ip_address(rep)
    expected_version = 4 if a.v4 else 6
    assert ip.version == expected_version
    assert int(ip) == (a.v4 if a.v4 else a.v6).min()
    samples = a.sample_addresses(10)
    assert len(samples) == min(10, a.size())
    assert len(set(samples)) == len(samples)
    assert all(x in a for x in samples)
    assert samples[0] == rep


# --------------------------------------------------------------------------------------------
# IPSet and parse_cidr: unit tables
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10.0.0.0/8", (4, 10 << 24, (11 << 24) - 1)),
        ("10.1.2.3", (4, 0x0A010203, 0x0A010203)),
        ("10.1.2.3/32", (4, 0x0A010203, 0x0A010203)),
        ("0.0.0.0/0", (4, 0, 2**32 - 1)),
        (" 192.168.0.0/16 ", (4, 0xC0A80000, 0xC0A8FFFF)),
        ("::1", (6, 1, 1)),
        ("::/0", (6, 0, 2**128 - 1)),
        ("2001:DB8::/32", (6, 0x20010DB8 << 96, ((0x20010DB8 + 1) << 96) - 1)),
        ("::ffff:10.0.0.1", (6, 0xFFFF0A000001, 0xFFFF0A000001)),
    ],
)
def test_parse_cidr_table(text: str, expected: tuple[int, int, int]) -> None:
    assert parse_cidr(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("10.0.0.1/8", r"'10\.0\.0\.1/8' has host bits set .*'10\.0\.0\.0/8'"),
        ("10.0.0.1/31", "has host bits set"),
        ("2001:db8::1/32", r"has host bits set .*'2001:db8::/32'"),
        ("::1/64", "has host bits set"),
        ("300.0.0.0/8", r"'300\.0\.0\.0/8' is not a valid CIDR"),
        ("10.0.0.0/33", "prefix length 33 is out of range 0-32"),
        ("::/129", "prefix length 129 is out of range 0-128"),
        ("10.0.0.0/99999999", "out of range"),
        ("10.0.0.0/", "is not a valid CIDR"),
        ("10.0.0.0/-1", "is not a valid CIDR"),
        ("10.0.0.0/ 8", "is not a valid CIDR"),
        ("10.0.0.0/8/8", "is not a valid CIDR"),
        ("10.0.0.0/255.0.0.0", "is not a valid CIDR"),
        ("10.0.0.0/0.255.255.255", "is not a valid CIDR"),
        ("/8", "is not a valid CIDR"),
        ("", "is not a valid CIDR"),
        ("10.0.0", "is not a valid CIDR"),
        ("010.0.0.0/8", "is not a valid CIDR"),
        ("fe80::1%eth0", "is not a valid CIDR"),
        ("fe80::%eth0/64", "is not a valid CIDR"),
        ("example.com", "is not a valid CIDR"),
        ("10.0.0.0/\uff18", "is not a valid CIDR"),
    ],
)
def test_parse_cidr_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_cidr(text)


def test_parse_cidr_rejects_non_str() -> None:
    with pytest.raises(TypeError):
        parse_cidr(ipaddress.ip_network("10.0.0.0/8"))  # type: ignore[arg-type]


def test_from_cidrs_rejects_host_bits_everywhere() -> None:
    with pytest.raises(ValueError, match="host bits"):
        IPSet.from_cidrs(["10.0.0.0/8", "192.168.1.1/24"])
    with pytest.raises(ValueError, match="host bits"):
        IPSet.from_cidr("10.0.0.1/8")
    with pytest.raises(ValueError, match="host bits"):
        IPSet.from_cidrs([ipaddress.ip_interface("10.0.0.1/8")])
    with pytest.raises(TypeError):
        IPSet.from_cidrs("10.0.0.0/8")  # a bare string is a caller bug
    with pytest.raises(TypeError):
        IPSet.from_cidrs([42])  # type: ignore[list-item]


def test_from_cidrs_accepts_mixed_inputs() -> None:
    s = IPSet.from_cidrs(
        [
            "10.0.0.0/8",
            ipaddress.ip_network("192.168.0.0/16"),
            ipaddress.ip_address("172.16.0.1"),
            ipaddress.ip_interface("172.16.0.2/32"),
            "::1",
            ipaddress.ip_network("fd00::/8"),
        ]
    )
    assert s.to_cidrs() == (
        "10.0.0.0/8",
        "172.16.0.1/32",
        "172.16.0.2/32",
        "192.168.0.0/16",
        "::1/128",
        "fd00::/8",
    )
    assert IPSet.from_cidrs([]) == IPSet.empty()


def test_ipv4_ipv6_separation() -> None:
    v4 = IPSet.all_v4()
    v6 = IPSet.all_v6()
    assert v4.isdisjoint(v6)
    assert v4 | v6 == IPSet.all()
    assert ~v4 == v6 and ~v6 == v4
    assert ~IPSet.all() == IPSet.empty()
    assert "::" not in v4 and "0.0.0.0" not in v6
    assert "::ffff:10.0.0.1" not in IPSet.from_cidr("10.0.0.0/8")
    assert "10.0.0.1" not in IPSet.from_cidr("::ffff:10.0.0.0/104")
    assert "::a00:1" not in IPSet.from_cidr("10.0.0.0/8")  # ::10.0.0.1, same int as v4
    assert IPSet.from_cidr("0.0.0.0/0") == v4
    assert IPSet.from_cidr("::/0") == v6
    assert v4.to_cidrs() == ("0.0.0.0/0",)
    assert IPSet.all().to_cidrs() == ("0.0.0.0/0", "::/0")
    assert v4.size_v4() == 2**32 and v4.size_v6() == 0
    assert v6.size_v6() == 2**128


@pytest.mark.parametrize(
    ("cidr", "inside", "outside"),
    [
        ("10.0.0.0/8", ["10.0.0.0", "10.255.255.255", "10.1.2.3"], ["9.255.255.255", "11.0.0.0"]),
        ("192.168.1.7", ["192.168.1.7"], ["192.168.1.6", "192.168.1.8"]),
        ("2001:db8::/32", ["2001:db8::", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff"], ["2001:db9::"]),
        ("::1", ["::1", "0::1"], ["::", "::2", "0.0.0.1"]),
    ],
)
def test_membership_table(cidr: str, inside: list[str], outside: list[str]) -> None:
    s = IPSet.from_cidr(cidr)
    for ip in inside:
        assert ip in s
        assert ipaddress.ip_address(ip) in s
        assert IPSet.address(ip) <= s
    for ip in outside:
        assert ip not in s
        assert IPSet.address(ip).isdisjoint(s)


@pytest.mark.parametrize(
    ("value", "exc"),
    [
        ("10.0.0.0/8", ValueError),
        ("not-an-ip", ValueError),
        ("fe80::1%eth0", ValueError),
        (167772161, TypeError),  # ambiguous between families
        (None, TypeError),
    ],
)
def test_membership_errors(value: object, exc: type[Exception]) -> None:
    with pytest.raises(exc):
        value in IPSet.all()  # noqa: B015


def test_ipset_construction_and_text() -> None:
    s = IPSet.from_cidrs(["10.0.0.0/9", "10.128.0.0/9", "::1"])
    assert s.to_cidrs() == ("10.0.0.0/8", "::1/128")
    assert str(s) == "10.0.0.0/8,::1/128"
    assert repr(s) == "IPSet('10.0.0.0/8,::1/128')"
    assert IPSet.parse(" 10.0.0.0/8 , ::1 ") == s
    assert IPSet.parse("") == IPSet.empty()
    assert str(IPSet.empty()) == "" and IPSet.empty().to_cidrs() == ()
    r = IPSet.from_cidrs(["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"])
    assert r.to_cidrs() == ("10.0.0.1/32", "10.0.0.2/31", "10.0.0.4/32")
    assert IPSet.address("10.0.0.1") == IPSet.from_cidr("10.0.0.1/32")
    assert IPSet(v4=IntervalSet.point(1)) == IPSet.from_cidr("0.0.0.1")
    assert IPSet("10.0.0.0/8,::1") == s
    assert IntervalSet("80,443") == IntervalSet.of((80, 80), (443, 443))
    with pytest.raises(ValueError):
        IPSet(v4=IntervalSet.span(0, 2**32))
    with pytest.raises(ValueError):
        IPSet(v6=IntervalSet.point(-1))
    with pytest.raises(TypeError):
        IPSet(v6="::1")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        IPSet(v4=42)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        IPSet.address("10.0.0.0/8")


def test_ipset_immutable_hashable_picklable() -> None:
    s = IPSet.parse("10.0.0.0/8,::/64")
    with pytest.raises(AttributeError):
        s.v4 = IntervalSet.empty()  # type: ignore[misc]
    assert {s: 1}[IPSet.from_cidrs(["::/64", "10.0.0.0/8"])] == 1
    assert pickle.loads(pickle.dumps(s)) == s
    assert s != s.v4
    with pytest.raises(TypeError):
        s | s.v4  # type: ignore[operator]


def test_sample_addresses_boundaries_first() -> None:
    s = IPSet.from_cidrs(["10.0.0.0/30", "10.0.1.5", "::/127"])
    assert s.sample_addresses(7) == (
        "10.0.0.0",
        "10.0.0.3",
        "10.0.1.5",
        "::",
        "::1",
        "10.0.0.1",
        "10.0.0.2",
    )
    assert len(s.sample_addresses(100)) == s.size() == 7
    assert s.sample_addresses(0) == ()
