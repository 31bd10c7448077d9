"""(protocol, port) sets: algebra checked against a membership model, canonical form, rendering."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from polyfence.model.ports import ALL_PROTOCOLS
from polyfence.semantics.connset import EMPTY, FULL, ConnSet
from polyfence.semantics.intervals import ALL_PORTS, IntervalSet

PROTOS = (0, 1, 5, 6, 7, 17, 47, 58, 132, 136, 255)
PORTS = (0, 1, 2, 53, 79, 80, 81, 443, 2048, 65534, 65535)
Pred = Callable[[int, int], bool]


def universe_has(proto: int, port: int) -> bool:
    """Port 0 is no destination port for TCP/UDP/SCTP/UDPLite."""
    return not (proto in (6, 17, 132, 136) and port == 0)


@st.composite
def sets(draw: st.DrawFn) -> tuple[ConnSet, Pred]:
    parts = draw(
        st.lists(
            st.tuples(
                st.sampled_from(PROTOS),
                st.sampled_from(PROTOS),
                st.sampled_from(PORTS),
                st.sampled_from(PORTS),
            ),
            max_size=3,
        )
    )
    value = EMPTY
    boxes = []
    for a, b, c, d in parts:
        plo, phi = min(a, b), max(a, b)
        qlo, qhi = min(c, d), max(c, d)
        value = value | ConnSet.build(IntervalSet.span(plo, phi), IntervalSet.span(qlo, qhi))
        boxes.append((plo, phi, qlo, qhi))

    def member(proto: int, port: int) -> bool:
        ported = proto in (1, 6, 17, 58, 132, 136)
        for plo, phi, qlo, qhi in boxes:
            in_box = plo <= proto <= phi and (not ported or qlo <= port <= qhi)
            if in_box and universe_has(proto, port):
                return True
        return False

    return value, member


@settings(max_examples=300, deadline=None)
@given(a=sets(), b=sets())
def test_algebra_matches_membership_model(a: tuple[ConnSet, Pred], b: tuple[ConnSet, Pred]) -> None:
    (x, fx), (y, fy) = a, b
    for proto in PROTOS:
        for port in PORTS:
            ix, iy = fx(proto, port), fy(proto, port)
            assert x.contains(proto, port) == ix
            assert (x | y).contains(proto, port) == (ix or iy)
            assert (x & y).contains(proto, port) == (ix and iy)
            assert (x - y).contains(proto, port) == (ix and not iy)
    assert (x | y) == (y | x) and (x & y) == (y & x)
    assert (x - y) | (x & y) == x
    assert ((x & y) <= x) and (x <= (x | y))
    assert hash(x | y) == hash(y | x)


def test_full_and_empty() -> None:
    assert ConnSet.build(ALL_PROTOCOLS, ALL_PORTS) == FULL
    assert (
        FULL.contains(6, 1)
        and not FULL.contains(6, 0)
        and FULL.contains(1, 0)
        and FULL.contains(47, None)
    )
    assert not EMPTY and EMPTY.sample() is None
    assert FULL - FULL == EMPTY


@pytest.mark.parametrize(
    ("conns", "expected"),
    [
        (
            ConnSet.single(6, IntervalSet.of((80, 80), (8000, 8080))),
            {"TCP": "80,8000-8080", "UDP": "", "SCTP": ""},
        ),
        (
            ConnSet.single(1, IntervalSet.span(8 * 256, 8 * 256 + 255)),
            {"TCP": "", "UDP": "", "SCTP": "", "ICMP": "8"},
        ),
        (
            ConnSet.single(58, IntervalSet.point(1 * 256 + 4)),
            {"TCP": "", "UDP": "", "SCTP": "", "ICMPv6": "1/4"},
        ),
        (ConnSet.single(47), {"TCP": "", "UDP": "", "SCTP": "", "47": "all"}),
    ],
)
def test_by_protocol(conns: ConnSet, expected: dict[str, str]) -> None:
    assert conns.by_protocol() == expected


def test_full_renders_every_protocol_once() -> None:
    shown = FULL.by_protocol()
    assert shown["TCP"] == "1-65535" and shown["ICMP"] == "all" and shown["ICMPv6"] == "all"
    assert shown["0"] == "all" and shown["137-255"] == "all"
