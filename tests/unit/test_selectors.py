"""Tests for the selector expression language: parser, printer, semantics, k8s mapping."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from polyfence.model.selectors import (
    NOTHING,
    All,
    And,
    Contains,
    EndsWith,
    Eq,
    Global,
    Has,
    In,
    LabelSelectorError,
    Ne,
    Not,
    NotIn,
    Or,
    Selector,
    SelectorNotExpressible,
    SelectorSyntaxError,
    StartsWith,
    and_,
    from_label_selector,
    literal_atoms,
    normalize,
    not_,
    or_,
    parse,
    to_dnf,
    to_label_selectors,
)

A1 = Eq("a", "1")
B2 = Eq("b", "2")
HC = Has("c")


def fs(*vs: str) -> frozenset[str]:
    return frozenset(vs)


# --------------------------------------------------------------------------- parser table

PARSE_CASES: list[tuple[str, Selector]] = [
    ("", All()),
    ("   \t\n", All()),
    ("all()", All()),
    ("all( )", All()),
    ("global()", Global()),
    ("has(app)", Has("app")),
    ("has( app )", Has("app")),
    ("app == 'web'", Eq("app", "web")),
    ('app == "web"', Eq("app", "web")),
    ("app=='web'", Eq("app", "web")),
    ("app == ''", Eq("app", "")),
    ("app != 'web'", Ne("app", "web")),
    ("app in {'a', 'b'}", In("app", fs("a", "b"))),
    ('app in {"b","a","a"}', In("app", fs("a", "b"))),
    ("app in {}", In("app", fs())),
    ("app in{ }", In("app", fs())),
    ("app not in {'a'}", NotIn("app", fs("a"))),
    ("app not  in {}", NotIn("app", fs())),
    ("app contains 'we'", Contains("app", "we")),
    ("app starts with 'we'", StartsWith("app", "we")),
    ("app starts   with 'we'", StartsWith("app", "we")),
    ("app ends with 'eb'", EndsWith("app", "eb")),
    ('v == "it\'s"', Eq("v", "it's")),
    ("v == 'say \"hi\"'", Eq("v", 'say "hi"')),
    ("v == 'a && b || !c'", Eq("v", "a && b || !c")),
    ("projectcalico.org/name == 'x'", Eq("projectcalico.org/name", "x")),
    ("app.kubernetes.io/part-of == 'shop'", Eq("app.kubernetes.io/part-of", "shop")),
    (
        "k8s:io.kubernetes.pod.namespace == 'kube-system'",
        Eq("k8s:io.kubernetes.pod.namespace", "kube-system"),
    ),
    ("has(app.kubernetes.io/name)", Has("app.kubernetes.io/name")),
    ("has == 'x'", Eq("has", "x")),
    ("all != 'x'", Ne("all", "x")),
    ("not in {'x'}", In("not", fs("x"))),
    ("in not in {'x'}", NotIn("in", fs("x"))),
    # precedence: ! over && over ||
    ("a == '1' || b == '2' && !has(c)", Or((A1, And((B2, Not(HC)))))),
    ("a == '1' && b == '2' || has(c)", Or((And((A1, B2)), HC))),
    ("(a == '1' || b == '2') && has(c)", And((Or((A1, B2)), HC))),
    ("!a == '1' && b == '2'", And((Not(A1), B2))),
    ("!(a == '1' && b == '2')", Not(And((A1, B2)))),
    # nesting and flattening
    ("((a == '1'))", A1),
    ("a == '1' && (b == '2' && has(c))", And((A1, B2, HC))),
    ("(a == '1' || (b == '2' || (has(c))))", Or((A1, B2, HC))),
    ("a == '1' && a == '1'", A1),
    ("all() && a == '1'", A1),
    ("all() || a == '1'", All()),
    ("!all() || a == '1'", A1),
    ("!all() && a == '1'", NOTHING),
    # negation
    ("!has(c)", Not(HC)),
    ("!!has(c)", HC),
    ("! ! ! has(c)", Not(HC)),
    ("!all()", NOTHING),
    ("!!all()", All()),
    ("!(!has(c))", HC),
]


@pytest.mark.parametrize(("text", "expected"), PARSE_CASES)
def test_parse(text: str, expected: Selector) -> None:
    assert parse(text) == expected


@pytest.mark.parametrize(("text", "expected"), PARSE_CASES)
def test_parse_print_fixed_point(text: str, expected: Selector) -> None:
    printed = str(parse(text))
    assert parse(printed) == expected
    assert str(parse(printed)) == printed


SYNTAX_ERRORS: list[tuple[str, int, str]] = [
    ("app == prod", 7, "expected a quoted string"),
    ("app == 'prod", 7, "unterminated quoted string"),
    ("has(app", 7, "expected ')'"),
    ("has()", 4, "expected a label key"),
    ("app", 3, "expected an operator"),
    ("app = 'x'", 4, "expected an operator"),
    ("(has(a)", 7, "expected ')'"),
    ("has(a))", 6, "expected '&&', '||' or end of input"),
    ("has(a) & has(b)", 7, "expected '&&', '||' or end of input"),
    ("has(a) has(b)", 7, "expected '&&', '||' or end of input"),
    ("a in {'x',}", 10, "expected a quoted string"),
    ("a in {'x' 'y'}", 10, "expected ',' or '}'"),
    ("a in 'x'", 5, "expected '{'"),
    ("a in {'x'", 9, "expected ',' or '}'"),
    ("&& has(a)", 0, "expected a selector expression"),
    ("has(a) &&", 9, "expected a selector expression"),
    ("!", 1, "expected a selector expression"),
    ("()", 1, "expected a selector expression"),
    ("all(x)", 4, "expected ')'"),
    ("a starts 'x'", 2, "expected an operator"),
    ("a containsx 'x'", 2, "expected an operator"),
    ("a == 'x' ||", 11, "expected a selector expression"),
    ("a == \"x'", 5, "unterminated quoted string"),
    ("a != 'x' |", 9, "expected '&&', '||' or end of input"),
    ("$x == 'y'", 0, "expected a selector expression"),
]


@pytest.mark.parametrize(("text", "position", "reason"), SYNTAX_ERRORS)
def test_syntax_errors(text: str, position: int, reason: str) -> None:
    with pytest.raises(SelectorSyntaxError) as info:
        parse(text)
    err = info.value
    assert isinstance(err, ValueError)
    assert err.text == text
    assert err.position == position
    assert str(err).startswith(reason)
    assert str(err).endswith(f' at position {position} in "{text}"')


def test_syntax_error_message_format() -> None:
    with pytest.raises(
        SelectorSyntaxError, match=r'^expected a quoted string at position 7 in "app == prod"$'
    ):
        parse("app == prod")


def test_deep_nesting_is_a_syntax_error_not_recursion_error() -> None:
    with pytest.raises(SelectorSyntaxError):
        parse("(" * 5000 + "has(a)" + ")" * 5000)
    assert parse("!" * 5001 + "has(a)") == Not(Has("a"))


def test_parse_rejects_non_string() -> None:
    with pytest.raises(TypeError):
        parse(None)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- printer


@pytest.mark.parametrize(
    ("sel", "text"),
    [
        (All(), "all()"),
        (NOTHING, "!all()"),
        (Global(), "global()"),
        (Eq("a", "x"), "a == 'x'"),
        (Eq("a", "it's"), 'a == "it\'s"'),
        (In("a", fs("z", "b", "m")), "a in {'b', 'm', 'z'}"),
        (NotIn("a", fs()), "a not in {}"),
        (In("a", fs("it's", "x")), "a in {\"it's\", 'x'}"),
        (StartsWith("a", "p"), "a starts with 'p'"),
        (EndsWith("a", "p"), "a ends with 'p'"),
        (Contains("a", "p"), "a contains 'p'"),
        (and_(or_(A1, B2), HC), "(a == '1' || b == '2') && has(c)"),
        (or_(and_(A1, B2), HC), "a == '1' && b == '2' || has(c)"),
        (not_(and_(A1, B2)), "!(a == '1' && b == '2')"),
        (not_(or_(A1, B2)), "!(a == '1' || b == '2')"),
        (and_(not_(A1), not_(or_(B2, HC))), "!a == '1' && !(b == '2' || has(c))"),
        (Not(Not(HC)), "!!has(c)"),
        (And(()), "all()"),
        (Or(()), "!all()"),
        (And((Or((A1, B2)),)), "a == '1' || b == '2'"),
        (Not(And((Or((A1, B2)),))), "!(a == '1' || b == '2')"),
    ],
)
def test_print(sel: Selector, text: str) -> None:
    assert str(sel) == text


def test_print_unrepresentable() -> None:
    with pytest.raises(ValueError, match="both quote kinds"):
        str(Eq("a", 'it\'s "x"'))
    with pytest.raises(ValueError, match="label key"):
        str(Has("bad key"))
    with pytest.raises(ValueError, match="label key"):
        str(Eq("", "x"))


def test_constructor_type_checks() -> None:
    with pytest.raises(TypeError):
        In("a", "abc")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Eq("a", 1)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        And((A1, "x"))  # type: ignore[arg-type]
    assert In("a", ["x", "y"]) == In("a", fs("x", "y"))  # type: ignore[arg-type]
    assert And([A1, B2]) == And((A1, B2))  # type: ignore[arg-type]
    assert Contains("a", "x").s == "x"


# --------------------------------------------------------------------------- semantics


SEMANTICS: list[tuple[Selector, Mapping[str, str], bool, bool]] = [
    (All(), {}, False, True),
    (NOTHING, {}, False, False),
    (NOTHING, {"a": "1"}, True, False),
    (Global(), {}, False, False),
    (Global(), {}, True, True),
    (not_(Global()), {}, False, True),
    (Has("a"), {}, False, False),
    (Has("a"), {"a": ""}, False, True),
    (Eq("a", "1"), {}, False, False),
    (Eq("a", "1"), {"a": "1"}, False, True),
    (Eq("a", "1"), {"a": "2"}, False, False),
    (Eq("a", ""), {}, False, False),
    (Eq("a", ""), {"a": ""}, False, True),
    (Ne("a", "1"), {}, False, True),
    (Ne("a", "1"), {"a": "2"}, False, True),
    (Ne("a", "1"), {"a": "1"}, False, False),
    (In("a", fs("1", "2")), {}, False, False),
    (In("a", fs("1", "2")), {"a": "2"}, False, True),
    (In("a", fs()), {"a": "2"}, False, False),
    (NotIn("a", fs("1")), {}, False, True),
    (NotIn("a", fs("1")), {"a": "1"}, False, False),
    (NotIn("a", fs("1")), {"a": "3"}, False, True),
    (NotIn("a", fs()), {}, False, True),
    (Contains("a", "b"), {}, False, False),
    (Contains("a", "b"), {"a": "abc"}, False, True),
    (Contains("a", ""), {"a": ""}, False, True),
    (StartsWith("a", "ab"), {"a": "abc"}, False, True),
    (StartsWith("a", "bc"), {"a": "abc"}, False, False),
    (StartsWith("a", ""), {}, False, False),
    (EndsWith("a", "bc"), {"a": "abc"}, False, True),
    (EndsWith("a", "ab"), {"a": "abc"}, False, False),
    (not_(Eq("a", "1")), {}, False, True),
    (not_(Has("a")), {}, False, True),
    (parse("a == '1' || b == '2' && !has(c)"), {"b": "2"}, False, True),
    (parse("a == '1' || b == '2' && !has(c)"), {"b": "2", "c": "x"}, False, False),
    (parse("a == '1' || b == '2' && !has(c)"), {"a": "1", "c": "x"}, False, True),
    (parse("global() || has(a)"), {"a": "1"}, False, True),
    (parse("global() && has(a)"), {"a": "1"}, False, False),
    (parse("global() && has(a)"), {"a": "1"}, True, True),
]


@pytest.mark.parametrize(("sel", "labels", "is_global", "expected"), SEMANTICS)
def test_semantics(
    sel: Selector, labels: Mapping[str, str], is_global: bool, expected: bool
) -> None:
    assert sel.matches(labels, is_global=is_global) is expected


def test_keys() -> None:
    assert parse("a == '1' || !(has(b) && c in {'x'}) || global()").keys() == fs("a", "b", "c")
    assert All().keys() == frozenset()


def test_hashable_and_structural() -> None:
    s1 = parse("a in {'x', 'y'} && !has(b)")
    s2 = parse("a in {'y','x'} && !has(b)")
    assert s1 == s2
    assert hash(s1) == hash(s2)
    assert len({s1, s2, All(), Global()}) == 3
    assert All() != Global()
    assert Eq("a", "1") != Ne("a", "1")


# --------------------------------------------------------------------------- smart constructors


def test_smart_constructors() -> None:
    assert and_() == All()
    assert or_() == NOTHING
    assert and_(A1) == A1
    assert or_(A1) == A1
    assert and_(A1, and_(B2, HC)) == And((A1, B2, HC))
    assert or_(or_(A1, B2), HC) == Or((A1, B2, HC))
    assert and_(A1, All(), B2) == And((A1, B2))
    assert and_(A1, NOTHING) == NOTHING
    assert or_(A1, All()) == All()
    assert or_(A1, NOTHING, B2) == Or((A1, B2))
    assert and_(B2, A1, B2, A1) == And((B2, A1))
    assert or_(HC, A1, HC) == Or((HC, A1))
    assert and_(A1, And((B2, And((HC, A1))))) == And((A1, B2, HC))
    assert not_(not_(A1)) == A1
    assert not_(All()) == NOTHING
    assert not_(NOTHING) == All()
    assert and_(or_(A1, B2), or_(A1, B2)) == Or((A1, B2))


def test_normalize() -> None:
    raw = And((All(), Or(()), A1))
    assert normalize(raw) == NOTHING
    assert normalize(Not(Not(And((A1,))))) == A1
    assert normalize(Or((And((A1, B2)), Or((HC,))))) == Or((And((A1, B2)), HC))


# --------------------------------------------------------------------------- Kubernetes mapping


def test_from_label_selector_basic() -> None:
    assert from_label_selector(None) == All()
    assert from_label_selector({}) == All()
    assert from_label_selector({"matchLabels": None, "matchExpressions": None}) == All()
    assert from_label_selector({"matchLabels": {}, "matchExpressions": []}) == All()
    sel = from_label_selector(
        {
            "matchLabels": {"app": "web"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["a", "b"]},
                {"key": "env", "operator": "NotIn", "values": ["dev"]},
                {"key": "team", "operator": "Exists"},
                {"key": "legacy", "operator": "DoesNotExist", "values": []},
            ],
        }
    )
    assert sel == And(
        (
            Eq("app", "web"),
            In("tier", fs("a", "b")),
            NotIn("env", fs("dev")),
            Has("team"),
            Not(Has("legacy")),
        )
    )


@pytest.mark.parametrize(
    ("obj", "pointer"),
    [
        ([], ""),
        ({"matchLabel": {}}, "/matchLabel"),
        ({"matchLabels": []}, "/matchLabels"),
        ({"matchLabels": {"a": 1}}, "/matchLabels/a"),
        ({"matchLabels": {"app.kubernetes.io/name": None}}, "/matchLabels/app.kubernetes.io~1name"),
        ({"matchExpressions": {}}, "/matchExpressions"),
        ({"matchExpressions": ["x"]}, "/matchExpressions/0"),
        (
            {
                "matchExpressions": [
                    {"key": "a", "operator": "Exists"},
                    {"key": "a", "operator": "in", "values": ["x"]},
                ]
            },
            "/matchExpressions/1/operator",
        ),
        (
            {"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]},
            "/matchExpressions/0/operator",
        ),
        ({"matchExpressions": [{"key": "a"}]}, "/matchExpressions/0/operator"),
        ({"matchExpressions": [{"key": "a", "operator": "In"}]}, "/matchExpressions/0/values"),
        (
            {"matchExpressions": [{"key": "a", "operator": "In", "values": []}]},
            "/matchExpressions/0/values",
        ),
        (
            {"matchExpressions": [{"key": "a", "operator": "NotIn", "values": None}]},
            "/matchExpressions/0/values",
        ),
        (
            {"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]},
            "/matchExpressions/0/values",
        ),
        (
            {"matchExpressions": [{"key": "a", "operator": "DoesNotExist", "values": ["x"]}]},
            "/matchExpressions/0/values",
        ),
        (
            {"matchExpressions": [{"key": "a", "operator": "In", "values": ["x", 2]}]},
            "/matchExpressions/0/values/1",
        ),
        (
            {"matchExpressions": [{"key": "a", "operator": "In", "values": "x"}]},
            "/matchExpressions/0/values",
        ),
        ({"matchExpressions": [{"operator": "Exists"}]}, "/matchExpressions/0/key"),
        (
            {"matchExpressions": [{"key": "a", "operator": "Exists", "value": "x"}]},
            "/matchExpressions/0/value",
        ),
    ],
)
def test_from_label_selector_errors(obj: Any, pointer: str) -> None:
    with pytest.raises(LabelSelectorError) as info:
        from_label_selector(obj)
    assert isinstance(info.value, ValueError)
    assert info.value.pointer == pointer


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("all()", ({},)),
        ("!all()", ()),
        ("a == '1'", ({"matchLabels": {"a": "1"}},)),
        (
            "a in {'2', '1'}",
            ({"matchExpressions": [{"key": "a", "operator": "In", "values": ["1", "2"]}]},),
        ),
        ("a in {'1'}", ({"matchExpressions": [{"key": "a", "operator": "In", "values": ["1"]}]},)),
        ("a != '1'", ({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]},)),
        ("has(a)", ({"matchExpressions": [{"key": "a", "operator": "Exists"}]},)),
        ("!has(a)", ({"matchExpressions": [{"key": "a", "operator": "DoesNotExist"}]},)),
        (
            "!a == '1'",
            ({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]},),
        ),
        (
            "!a in {'1'}",
            ({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]},),
        ),
        (
            "!a not in {'1'}",
            ({"matchExpressions": [{"key": "a", "operator": "In", "values": ["1"]}]},),
        ),
        ("!a != '1'", ({"matchLabels": {"a": "1"}},)),
        ("a in {}", ()),
        ("a not in {}", ({},)),
        ("a == '1' && a == '2'", ()),
        ("a == '1' && a in {'1', '2'}", ({"matchLabels": {"a": "1"}},)),
        (
            "a in {'1', '2', '3'} && a in {'2', '3', '4'} && a != '3'",
            ({"matchExpressions": [{"key": "a", "operator": "In", "values": ["2"]}]},),
        ),
        ("has(a) && !has(a)", ()),
        (
            "has(a) && a != 'x'",
            (
                {
                    "matchExpressions": [
                        {"key": "a", "operator": "Exists"},
                        {"key": "a", "operator": "NotIn", "values": ["x"]},
                    ]
                },
            ),
        ),
        (
            "a != 'x' && a not in {'y'} && !has(a)",
            ({"matchExpressions": [{"key": "a", "operator": "DoesNotExist"}]},),
        ),
        (
            "b == '2' && a == '1' && has(c)",
            (
                {
                    "matchLabels": {"a": "1", "b": "2"},
                    "matchExpressions": [{"key": "c", "operator": "Exists"}],
                },
            ),
        ),
        ("a == '1' || b == '2'", ({"matchLabels": {"a": "1"}}, {"matchLabels": {"b": "2"}})),
        (
            "a == '1' || b == '2' || a == '1' && a == '1'",
            ({"matchLabels": {"a": "1"}}, {"matchLabels": {"b": "2"}}),
        ),
        (
            "!(a == '1' && has(b))",
            (
                {"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]},
                {"matchExpressions": [{"key": "b", "operator": "DoesNotExist"}]},
            ),
        ),
        (
            "(a == '1' || b == '2') && (c == '3' || a == '4')",
            (
                {"matchLabels": {"a": "1", "c": "3"}},
                {"matchLabels": {"b": "2", "c": "3"}},
                {"matchLabels": {"a": "4", "b": "2"}},
            ),
        ),
        (
            "has(a) || !has(a) && b == '1'",
            (
                {"matchExpressions": [{"key": "a", "operator": "Exists"}]},
                {
                    "matchLabels": {"b": "1"},
                    "matchExpressions": [{"key": "a", "operator": "DoesNotExist"}],
                },
            ),
        ),
    ],
)
def test_to_label_selectors(text: str, expected: tuple[dict[str, Any], ...]) -> None:
    assert to_label_selectors(parse(text)) == expected


@pytest.mark.parametrize(
    ("text", "construct"),
    [
        ("a contains 'x'", "contains"),
        ("has(b) || a starts with 'x'", "starts with"),
        ("!a ends with 'x'", "ends with"),
        ("global()", "global()"),
        ("has(a) && !global()", "global()"),
    ],
)
def test_to_label_selectors_inexpressible(text: str, construct: str) -> None:
    with pytest.raises(SelectorNotExpressible, match=construct):
        to_label_selectors(parse(text))


def test_to_label_selectors_normalises_first() -> None:
    assert to_label_selectors(Or((Global(), All()))) == ({},)
    assert to_label_selectors(And((Global(), Not(All())))) == ()


def test_dnf_explosion_guard() -> None:
    # (a0 || b0) && ... && (a8 || b8) has 2**9 = 512 conjuncts.
    sel = and_(*(or_(Eq(f"a{i}", "x"), Eq(f"b{i}", "x")) for i in range(9)))
    with pytest.raises(SelectorNotExpressible):
        to_label_selectors(sel)
    small = and_(*(or_(Eq(f"a{i}", "x"), Eq(f"b{i}", "x")) for i in range(8)))
    assert len(to_label_selectors(small)) == 256


def test_to_dnf() -> None:
    assert to_dnf(All()) == ((),)
    assert to_dnf(NOTHING) == ()
    assert to_dnf(parse("!(a == '1' || !has(b))")) == ((Ne("a", "1"), Has("b")),)
    assert to_dnf(parse("a contains 'x' && !a contains 'x'")) == ()
    assert to_dnf(parse("global() || has(a)")) == ((Global(),), (Has("a"),))
    assert to_dnf(parse("has(a) || all()")) == ((),)


def test_literal_atoms() -> None:
    sel = parse(
        "a == '1' || b in {'2', '3'} && !has(c) || d contains 'x'"
        " || e not in {} || f != '4' || global()"
    )
    assert literal_atoms(sel) == {
        ("a", "1"),
        ("b", "2"),
        ("b", "3"),
        ("c", None),
        ("d", None),
        ("e", None),
        ("f", "4"),
    }


# --------------------------------------------------------------------------- properties

KEYS = ["a", "b", "app.kubernetes.io/name", "k8s:ns"]
LABEL_KEYS = [*KEYS, "other"]
VALUES = ["", "x", "y", "xy", "it's", 'say "hi"']

keys_st = st.sampled_from(KEYS)
values_st = st.sampled_from(VALUES)
value_sets_st = st.frozensets(values_st, max_size=3)
label_maps_st = st.dictionaries(st.sampled_from(LABEL_KEYS), values_st, max_size=5)


def _selectors(k8s_only: bool) -> st.SearchStrategy[Selector]:
    leaves: list[st.SearchStrategy[Selector]] = [
        st.just(All()),
        st.builds(Has, keys_st),
        st.builds(Eq, keys_st, values_st),
        st.builds(Ne, keys_st, values_st),
        st.builds(In, keys_st, value_sets_st),
        st.builds(NotIn, keys_st, value_sets_st),
    ]
    if not k8s_only:
        leaves += [
            st.just(Global()),
            st.builds(Contains, keys_st, values_st),
            st.builds(StartsWith, keys_st, values_st),
            st.builds(EndsWith, keys_st, values_st),
        ]
    return st.recursive(
        st.one_of(leaves),
        lambda child: st.one_of(
            st.lists(child, max_size=4).map(lambda ts: and_(*ts)),
            st.lists(child, max_size=4).map(lambda ts: or_(*ts)),
            child.map(not_),
        ),
        max_leaves=10,
    )


selectors_st = _selectors(k8s_only=False)
k8s_selectors_st = _selectors(k8s_only=True)
PROPS = settings(max_examples=300, deadline=None)


@pytest.mark.property
@PROPS
@given(selectors_st)
def test_prop_print_parse_roundtrip(sel: Selector) -> None:
    text = str(sel)
    assert parse(text) == sel
    assert str(parse(text)) == text
    assert normalize(sel) == sel


@pytest.mark.property
@PROPS
@given(selectors_st, st.lists(label_maps_st, min_size=1, max_size=10), st.booleans())
def test_prop_reparsed_matches_agree(
    sel: Selector, maps: list[dict[str, str]], is_global: bool
) -> None:
    again = parse(str(sel))
    for labels in maps:
        assert again.matches(labels, is_global=is_global) == sel.matches(
            labels, is_global=is_global
        )


def _eval_dnf(
    dnf: tuple[tuple[Selector, ...], ...], labels: Mapping[str, str], is_global: bool
) -> bool:
    return any(all(lit.matches(labels, is_global=is_global) for lit in conj) for conj in dnf)


@pytest.mark.property
@PROPS
@given(selectors_st, st.lists(label_maps_st, min_size=1, max_size=10), st.booleans())
def test_prop_dnf_is_exact(sel: Selector, maps: list[dict[str, str]], is_global: bool) -> None:
    dnf = to_dnf(sel)
    for labels in maps:
        assert _eval_dnf(dnf, labels, is_global) == sel.matches(labels, is_global=is_global)


def _atom_maps(sel: Selector) -> st.SearchStrategy[dict[str, str]]:
    """Label maps built from the values the selector mentions, plus a fresh value."""
    vals = sorted({v for _, v in literal_atoms(sel) if v is not None} | {"fresh"})
    return st.dictionaries(st.sampled_from(LABEL_KEYS), st.sampled_from(vals), max_size=5)


@pytest.mark.property
@PROPS
@given(st.data(), k8s_selectors_st)
def test_prop_to_label_selectors_is_exact(data: st.DataObject, sel: Selector) -> None:
    selectors = to_label_selectors(sel)
    converted = [from_label_selector(d) for d in selectors]
    maps = data.draw(st.lists(st.one_of(label_maps_st, _atom_maps(sel)), min_size=1, max_size=15))
    for labels in maps:
        expected = sel.matches(labels)
        assert any(c.matches(labels) for c in converted) == expected
        # and against the independent brute-force k8s evaluator
        assert any(k8s_matches(d, labels) for d in selectors) == expected
    for d in selectors:  # canonical output is a fixed point of from/to
        assert to_label_selectors(from_label_selector(d)) == (d,)


@pytest.mark.property
@PROPS
@given(selectors_st, label_maps_st)
def test_prop_to_label_selectors_full_grammar(sel: Selector, labels: dict[str, str]) -> None:
    try:
        selectors = to_label_selectors(sel)
    except SelectorNotExpressible:
        assert any(isinstance(n, Contains | StartsWith | EndsWith | Global) for n in _nodes(sel))
        return
    assert any(k8s_matches(d, labels) for d in selectors) == sel.matches(labels)


def _nodes(sel: Selector) -> list[Selector]:
    out = [sel]
    if isinstance(sel, And | Or):
        for t in sel.terms:
            out += _nodes(t)
    elif isinstance(sel, Not):
        out += _nodes(sel.expr)
    return out


def k8s_matches(obj: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """Direct reading of the Kubernetes LabelSelector semantics, independent of the AST."""
    if not obj:
        return True
    for k, v in (obj.get("matchLabels") or {}).items():
        if k not in labels or labels[k] != v:
            return False
    for e in obj.get("matchExpressions") or []:
        key, op, vals = e["key"], e["operator"], e.get("values") or []
        if op == "In":
            ok = key in labels and labels[key] in vals
        elif op == "NotIn":
            ok = key not in labels or labels[key] not in vals
        elif op == "Exists":
            ok = key in labels
        elif op == "DoesNotExist":
            ok = key not in labels
        else:
            raise AssertionError(op)
        if not ok:
            return False
    return True


k8s_expr_st = st.one_of(
    st.fixed_dictionaries(
        {
            "key": keys_st,
            "operator": st.sampled_from(["In", "NotIn"]),
            "values": st.lists(values_st, min_size=1, max_size=3),
        }
    ),
    st.fixed_dictionaries(
        {"key": keys_st, "operator": st.sampled_from(["Exists", "DoesNotExist"])},
        optional={"values": st.sampled_from([None, []])},
    ),
)
k8s_obj_st = st.one_of(
    st.none(),
    st.fixed_dictionaries(
        {},
        optional={
            "matchLabels": st.one_of(st.none(), st.dictionaries(keys_st, values_st, max_size=3)),
            "matchExpressions": st.one_of(st.none(), st.lists(k8s_expr_st, max_size=4)),
        },
    ),
)


@pytest.mark.property
@PROPS
@given(k8s_obj_st, st.lists(label_maps_st, min_size=1, max_size=15))
def test_prop_from_label_selector_matches_k8s(
    obj: dict[str, Any] | None, maps: list[dict[str, str]]
) -> None:
    sel = from_label_selector(obj)
    for labels in maps:
        assert sel.matches(labels) == k8s_matches(obj, labels)
    # and back: the canonical k8s form is equivalent too
    back = to_label_selectors(sel)
    for labels in maps:
        assert any(k8s_matches(d, labels) for d in back) == k8s_matches(obj, labels)
