"""Symbolic label-selector expressions: the full Calico grammar, k8s LabelSelectors as a subset.

One boolean AST is the canonical "which endpoints / namespaces" representation of the
translator. Parsing, printing and the Kubernetes conversions are all derived from it, so
the matching semantics live in exactly one place (``Selector.matches``) and every
conversion can be property-tested against it.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "DNF_LIMIT",
    "NOTHING",
    "All",
    "And",
    "Contains",
    "EndsWith",
    "Eq",
    "Global",
    "Has",
    "In",
    "LabelSelectorError",
    "Ne",
    "Not",
    "NotIn",
    "Or",
    "Selector",
    "SelectorNotExpressible",
    "SelectorSyntaxError",
    "StartsWith",
    "and_",
    "from_label_selector",
    "literal_atoms",
    "normalize",
    "not_",
    "or_",
    "parse",
    "to_dnf",
    "to_label_selectors",
    "walk",
]

# Printing precedence levels: a child is parenthesised when its level is below the
# level its parent requires.
_P_OR = 1
_P_AND = 2
_P_ATOM = 3

_KEY_CHARS = r"A-Za-z0-9_./:-"
_KEY_RE = re.compile(f"[{_KEY_CHARS}]+")
_WS_RE = re.compile(r"\s*")
_OP_RE = re.compile(
    rf"==|!=|not\s*in(?![{_KEY_CHARS}])|in(?![{_KEY_CHARS}])|contains(?![{_KEY_CHARS}])"
    rf"|starts\s+with(?![{_KEY_CHARS}])|ends\s+with(?![{_KEY_CHARS}])"
)
_MAX_DEPTH = 100
DNF_LIMIT = 256


# --------------------------------------------------------------------------- errors


class SelectorSyntaxError(ValueError):
    """A selector string that is not valid Calico syntax; ``position`` is a 0-based offset."""

    def __init__(self, reason: str, text: str, position: int) -> None:
        self.reason = reason
        self.text = text
        self.position = position
        super().__init__(f'{reason} at position {position} in "{text}"')


class LabelSelectorError(ValueError):
    """An invalid k8s LabelSelector; ``pointer`` is a JSON pointer relative to the selector."""

    def __init__(self, reason: str, pointer: str) -> None:
        self.reason = reason
        self.pointer = pointer
        super().__init__(f"{reason} (at {pointer or '/'})")


class SelectorNotExpressible(ValueError):
    """The selector has no exact k8s LabelSelector form (string ops, global(), DNF too big)."""


# --------------------------------------------------------------------------- helpers


def _quote(value: str) -> str:
    """Calico strings have no escapes, so pick the quote the value does not contain."""
    if "'" not in value:
        return f"'{value}'"
    if '"' not in value:
        return f'"{value}"'
    raise ValueError(
        f"value {value!r} contains both quote kinds and cannot be written as a selector"
    )


def _key(key: str) -> str:
    """Refuse keys the grammar cannot read back, so printing never silently changes meaning."""
    if _KEY_RE.fullmatch(key) is None:
        raise ValueError(f"label key {key!r} cannot be written in selector syntax")
    return key


def _wrap(term: Selector, level: int) -> str:
    text = str(term)
    return text if term._prec() >= level else f"({text})"


def _check_key(key: object) -> None:
    if not isinstance(key, str):
        raise TypeError(f"label key must be a str, not {type(key).__name__}")


def _check_value(value: object) -> None:
    if not isinstance(value, str):
        raise TypeError(f"label value must be a str, not {type(value).__name__}")


def _freeze_values(node: Selector, values: object) -> None:
    """Accept any iterable of str for convenience but store a frozenset (hashable, exact)."""
    if isinstance(values, str | bytes) or not hasattr(values, "__iter__"):
        raise TypeError("values must be an iterable of str (not a single string)")
    frozen = values if isinstance(values, frozenset) else frozenset(values)
    for v in frozen:
        _check_value(v)
    object.__setattr__(node, "values", frozen)


def _freeze_terms(node: Selector, terms: object) -> None:
    frozen: tuple[object, ...] = tuple(terms)  # type: ignore[arg-type]
    for t in frozen:
        if not isinstance(t, Selector):
            raise TypeError(f"terms must be Selectors, not {type(t).__name__}")
    object.__setattr__(node, "terms", frozen)


# --------------------------------------------------------------------------- AST


@dataclass(frozen=True, slots=True)
class Selector(ABC):
    """Base of every selector node: immutable, hashable, structurally compared."""

    @abstractmethod
    def matches(self, labels: Mapping[str, str], *, is_global: bool = False) -> bool:
        """Whether a resource with ``labels`` is selected; ``is_global``: it is non-namespaced."""

    @abstractmethod
    def keys(self) -> frozenset[str]:
        """Every label key the expression mentions."""

    def _prec(self) -> int:
        return _P_ATOM


@dataclass(frozen=True, slots=True)
class All(Selector):
    """``all()``: matches everything."""

    def matches(self, labels: Mapping[str, str], *, is_global: bool = False) -> bool:
        return True

    def keys(self) -> frozenset[str]:
        return frozenset()

    def __str__(self) -> str:
        return "all()"


@dataclass(frozen=True, slots=True)
class Global(Selector):
    """``global()``: matches non-namespaced resources, i.e. only when ``is_global``."""

    def matches(self, labels: Mapping[str, str], *, is_global: bool = False) -> bool:
        return is_global

    def keys(self) -> frozenset[str]:
        return frozenset()

    def __str__(self) -> str:
        return "global()"


@dataclass(frozen=True, slots=True)
class Has(Selector):
    """``has(key)``: the key is present (any value)."""

    key: str

    def __post_init__(self) -> None:
        _check_key(self.key)

    def matches(self, labels: Mapping[str, str], *, is_global: bool = False) -> bool:
        return self.key in labels

    def keys(self) -> frozenset[str]:
        return frozenset((self.key,))

    def __str__(self) -> str:
        return f"has({_key(self.key)})"


@dataclass(frozen=True, slots=True)
class Eq(Selector):
    """``key == 'value'``: false when the key is absent."""

    key: str
    value: str

    def __post_init__(self) -> None:
        _check_key(self.key)
        _check_value(self.value)

    def matches(self, labels: Mapping[str, str], *, is_global: bool = False) -> bool:
        return labels.get(self.key) == self.value

    def keys(self) -> frozenset[str]:
        return frozenset((self.key,))

    def __str__(self) -> str:
        return f"{_key(self.key)} == {_quote(self.value)}"


@dataclass(frozen=True, slots=True)
class Ne(Selector):
    """``key != 'value'``: TRUE when the key is absent (Calico semantics)."""

    key: str
    value: str

    def __post_init__(self) -> None:
        _check_key(self.key)
        _check_value(self.value)

    def matches(self, labels: Mapping[str, str], *, is_global: bool = False) -> bool:
        return labels.get(self.key) != self.value

    def keys(self) -> frozenset[str]:
        return frozenset((self.key,))

    def __str__(self) -> str:
        return f"{_key(self.key)} != {_quote(self.value)}"


@dataclass(frozen=True, slots=True)
class In(Selector):
    """``key in {'a', 'b'}``: key present with one of the values (empty set: never)."""

    key: str
    values: frozenset[str]

    def __post_init__(self) -> None:
        _check_key(self.key)
        _freeze_values(self, self.values)

    def matches(self, labels: Mapping[str, str], *, is_global: bool = False) -> bool:
        # None (absent) is never a member because members are str.
        return labels.get(self.key) in self.values

    def keys(self) -> frozenset[str]:
        return frozenset((self.key,))

    def __str__(self) -> str:
        return f"{_key(self.key)} in {_render_set(self.values)}"


@dataclass(frozen=True, slots=True)
class NotIn(Selector):
    """``key not in {...}``: TRUE when the key is absent."""

    key: str
    values: frozenset[str]

    def __post_init__(self) -> None:
        _check_key(self.key)
        _freeze_values(self, self.values)

    def matches(self, labels: Mapping[str, str], *, is_global: bool = False) -> bool:
        return labels.get(self.key) not in self.values

    def keys(self) -> frozenset[str]:
        return frozenset((self.key,))

    def __str__(self) -> str:
        return f"{_key(self.key)} not in {_render_set(self.values)}"


def _render_set(values: frozenset[str]) -> str:
    return "{" + ", ".join(_quote(v) for v in sorted(values)) + "}"


@dataclass(frozen=True, slots=True)
class Contains(Selector):
    """``key contains 's'``: false when the key is absent."""

    key: str
    value: str

    def __post_init__(self) -> None:
        _check_key(self.key)
        _check_value(self.value)

    @property
    def s(self) -> str:
        """Alias of ``value`` (the spec's argument name)."""
        return self.value

    def matches(self, labels: Mapping[str, str], *, is_global: bool = False) -> bool:
        v = labels.get(self.key)
        return v is not None and self.value in v

    def keys(self) -> frozenset[str]:
        return frozenset((self.key,))

    def __str__(self) -> str:
        return f"{_key(self.key)} contains {_quote(self.value)}"


@dataclass(frozen=True, slots=True)
class StartsWith(Selector):
    """``key starts with 's'``: false when the key is absent."""

    key: str
    value: str

    def __post_init__(self) -> None:
        _check_key(self.key)
        _check_value(self.value)

    @property
    def s(self) -> str:
        """Alias of ``value`` (the spec's argument name)."""
        return self.value

    def matches(self, labels: Mapping[str, str], *, is_global: bool = False) -> bool:
        v = labels.get(self.key)
        return v is not None and v.startswith(self.value)

    def keys(self) -> frozenset[str]:
        return frozenset((self.key,))

    def __str__(self) -> str:
        return f"{_key(self.key)} starts with {_quote(self.value)}"


@dataclass(frozen=True, slots=True)
class EndsWith(Selector):
    """``key ends with 's'``: false when the key is absent."""

    key: str
    value: str

    def __post_init__(self) -> None:
        _check_key(self.key)
        _check_value(self.value)

    @property
    def s(self) -> str:
        """Alias of ``value`` (the spec's argument name)."""
        return self.value

    def matches(self, labels: Mapping[str, str], *, is_global: bool = False) -> bool:
        v = labels.get(self.key)
        return v is not None and v.endswith(self.value)

    def keys(self) -> frozenset[str]:
        return frozenset((self.key,))

    def __str__(self) -> str:
        return f"{_key(self.key)} ends with {_quote(self.value)}"


@dataclass(frozen=True, slots=True)
class Not(Selector):
    """``!expr``."""

    expr: Selector

    def __post_init__(self) -> None:
        if not isinstance(self.expr, Selector):
            raise TypeError(f"expr must be a Selector, not {type(self.expr).__name__}")

    def matches(self, labels: Mapping[str, str], *, is_global: bool = False) -> bool:
        return not self.expr.matches(labels, is_global=is_global)

    def keys(self) -> frozenset[str]:
        return self.expr.keys()

    def __str__(self) -> str:
        return "!" + _wrap(self.expr, _P_ATOM)


@dataclass(frozen=True, slots=True)
class And(Selector):
    """``a && b && ...``; build with ``and_`` to get the normalised form."""

    terms: tuple[Selector, ...]

    def __post_init__(self) -> None:
        _freeze_terms(self, self.terms)

    def matches(self, labels: Mapping[str, str], *, is_global: bool = False) -> bool:
        for t in self.terms:  # noqa: SIM110 -- a generator would allocate on the hot path
            if not t.matches(labels, is_global=is_global):
                return False
        return True

    def keys(self) -> frozenset[str]:
        return frozenset().union(*(t.keys() for t in self.terms))

    def _prec(self) -> int:
        if len(self.terms) == 1:
            return self.terms[0]._prec()
        return _P_AND if self.terms else _P_ATOM

    def __str__(self) -> str:
        if not self.terms:
            return "all()"
        if len(self.terms) == 1:
            return str(self.terms[0])
        return " && ".join(_wrap(t, _P_AND) for t in self.terms)


@dataclass(frozen=True, slots=True)
class Or(Selector):
    """``a || b || ...``; build with ``or_`` to get the normalised form."""

    terms: tuple[Selector, ...]

    def __post_init__(self) -> None:
        _freeze_terms(self, self.terms)

    def matches(self, labels: Mapping[str, str], *, is_global: bool = False) -> bool:
        for t in self.terms:  # noqa: SIM110 -- a generator would allocate on the hot path
            if t.matches(labels, is_global=is_global):
                return True
        return False

    def keys(self) -> frozenset[str]:
        return frozenset().union(*(t.keys() for t in self.terms))

    def _prec(self) -> int:
        if len(self.terms) == 1:
            return self.terms[0]._prec()
        return _P_OR if self.terms else _P_ATOM

    def __str__(self) -> str:
        if not self.terms:
            return "!all()"
        if len(self.terms) == 1:
            return str(self.terms[0])
        return " || ".join(_wrap(t, _P_OR) for t in self.terms)


NOTHING: Selector = Not(All())
"""Matches nothing; the canonical false (``!all()``)."""


# --------------------------------------------------------------------------- smart constructors


def _flatten(terms: tuple[Selector, ...], kind: type[Selector]) -> Iterator[Selector]:
    for t in terms:
        if type(t) is kind:
            yield from _flatten(t.terms, kind)  # type: ignore[attr-defined]
        else:
            yield t


def and_(*terms: Selector) -> Selector:
    """Normalised conjunction: flattened, ``all()`` dropped, deduplicated, false absorbs."""
    out: list[Selector] = []
    seen: set[Selector] = set()
    for t in _flatten(terms, And):
        if type(t) is All:
            continue
        if t == NOTHING:
            return NOTHING
        if t not in seen:
            seen.add(t)
            out.append(t)
    if not out:
        return All()
    if len(out) == 1:
        return out[0]
    return And(tuple(out))


def or_(*terms: Selector) -> Selector:
    """Normalised disjunction: flattened, ``!all()`` dropped, deduplicated, ``all()`` absorbs."""
    out: list[Selector] = []
    seen: set[Selector] = set()
    for t in _flatten(terms, Or):
        if type(t) is All:
            return All()
        if t == NOTHING:
            continue
        if t not in seen:
            seen.add(t)
            out.append(t)
    if not out:
        return NOTHING
    if len(out) == 1:
        return out[0]
    return Or(tuple(out))


def not_(term: Selector) -> Selector:
    """Negation that cancels double negation (so ``not_(NOTHING) == All()``)."""
    if type(term) is Not:
        return term.expr
    return Not(term)


def normalize(sel: Selector) -> Selector:
    """Rebuild a (possibly hand-built) tree through the smart constructors."""
    if isinstance(sel, And):
        return and_(*(normalize(t) for t in sel.terms))
    if isinstance(sel, Or):
        return or_(*(normalize(t) for t in sel.terms))
    if isinstance(sel, Not):
        return not_(normalize(sel.expr))
    return sel


def walk(sel: Selector) -> Iterator[Selector]:
    """Every node of a selector, the expression itself first, terms in order."""
    stack = [sel]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, And | Or):
            stack.extend(reversed(node.terms))
        elif isinstance(node, Not):
            stack.append(node.expr)


# --------------------------------------------------------------------------- parser


def parse(text: str) -> Selector:
    """Parse Calico selector syntax; empty/blank text is ``all()`` as in Calico."""
    if not isinstance(text, str):
        raise TypeError(f"selector must be a str, not {type(text).__name__}")
    return _Parser(text).parse()


class _Parser:
    """Recursive descent over the raw string (context decides key vs. keyword)."""

    __slots__ = ("depth", "pos", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.depth = 0

    def error(self, expected: str, position: int | None = None) -> SelectorSyntaxError:
        return SelectorSyntaxError(
            f"expected {expected}", self.text, self.pos if position is None else position
        )

    def ws(self) -> None:
        self.pos = _WS_RE.match(self.text, self.pos).end()  # type: ignore[union-attr]

    def expect(self, char: str) -> None:
        self.ws()
        if not self.text.startswith(char, self.pos):
            raise self.error(f"'{char}'")
        self.pos += len(char)

    def parse(self) -> Selector:
        self.ws()
        if self.pos == len(self.text):
            return All()
        expr = self.or_expr()
        self.ws()
        if self.pos != len(self.text):
            raise self.error("'&&', '||' or end of input")
        return expr

    def or_expr(self) -> Selector:
        terms = [self.and_expr()]
        while True:
            self.ws()
            if not self.text.startswith("||", self.pos):
                return or_(*terms)
            self.pos += 2
            terms.append(self.and_expr())

    def and_expr(self) -> Selector:
        terms = [self.unary()]
        while True:
            self.ws()
            if not self.text.startswith("&&", self.pos):
                return and_(*terms)
            self.pos += 2
            terms.append(self.unary())

    def unary(self) -> Selector:
        negations = 0
        self.ws()
        while self.text.startswith("!", self.pos):
            negations += 1
            self.pos += 1
            self.ws()
        expr = self.primary()
        for _ in range(negations):
            expr = not_(expr)
        return expr

    def primary(self) -> Selector:
        text = self.text
        self.ws()
        if self.pos >= len(text):
            raise self.error("a selector expression")
        if text[self.pos] == "(":
            if self.depth >= _MAX_DEPTH:
                raise SelectorSyntaxError("parentheses nested too deeply", text, self.pos)
            self.pos += 1
            self.depth += 1
            expr = self.or_expr()
            self.expect(")")
            self.depth -= 1
            return expr
        m = _KEY_RE.match(text, self.pos)
        if m is None:
            raise self.error("a selector expression")
        word = m.group()
        after = _WS_RE.match(text, m.end()).end()  # type: ignore[union-attr]
        if word in ("all", "global", "has") and text.startswith("(", after):
            self.pos = after + 1
            if word == "has":
                key = self.label_key()
                self.expect(")")
                return Has(key)
            self.expect(")")
            return All() if word == "all" else Global()
        self.pos = m.end()
        return self.match(word)

    def label_key(self) -> str:
        self.ws()
        m = _KEY_RE.match(self.text, self.pos)
        if m is None:
            raise self.error("a label key")
        self.pos = m.end()
        return m.group()

    def match(self, key: str) -> Selector:
        self.ws()
        m = _OP_RE.match(self.text, self.pos)
        if m is None:
            raise self.error("an operator (==, !=, in, not in, contains, starts with, ends with)")
        self.pos = m.end()
        op = m.group()
        if op == "==":
            return Eq(key, self.string())
        if op == "!=":
            return Ne(key, self.string())
        if op == "contains":
            return Contains(key, self.string())
        if op.startswith("starts"):
            return StartsWith(key, self.string())
        if op.startswith("ends"):
            return EndsWith(key, self.string())
        values = self.string_set()
        return NotIn(key, values) if op.startswith("not") else In(key, values)

    def string(self) -> str:
        self.ws()
        text = self.text
        if self.pos >= len(text) or text[self.pos] not in "'\"":
            raise self.error("a quoted string")
        start = self.pos
        end = text.find(text[start], start + 1)
        if end < 0:
            raise SelectorSyntaxError("unterminated quoted string", text, start)
        self.pos = end + 1
        return text[start + 1 : end]

    def string_set(self) -> frozenset[str]:
        self.expect("{")
        self.ws()
        values: list[str] = []
        if self.text.startswith("}", self.pos):
            self.pos += 1
            return frozenset()
        while True:
            values.append(self.string())
            self.ws()
            if self.text.startswith(",", self.pos):
                self.pos += 1
                continue
            if self.text.startswith("}", self.pos):
                self.pos += 1
                return frozenset(values)
            raise self.error("',' or '}'")


# --------------------------------------------------------------------------- DNF


_TRUE = object()
_FALSE = object()


def _literal(node: Selector, negated: bool) -> Any:
    """A leaf as a positive-form literal; ``_TRUE``/``_FALSE`` for constant leaves."""
    if isinstance(node, Eq):
        return Ne(node.key, node.value) if negated else node
    if isinstance(node, Ne):
        return Eq(node.key, node.value) if negated else node
    if isinstance(node, In):
        if not node.values:
            return _TRUE if negated else _FALSE
        return NotIn(node.key, node.values) if negated else node
    if isinstance(node, NotIn):
        if not node.values:
            return _FALSE if negated else _TRUE
        return In(node.key, node.values) if negated else node
    return Not(node) if negated else node


class _KeyState:
    """Allowed states of one key in a conjunct: absent, and a finite or co-finite value set."""

    __slots__ = ("absent_ok", "allowed", "excluded", "had_eq")

    def __init__(self) -> None:
        self.absent_ok = True
        self.allowed: set[str] | None = None  # None: any string (minus ``excluded``)
        self.excluded: set[str] = set()
        self.had_eq = False

    def require(self, values: frozenset[str]) -> None:
        self.absent_ok = False
        self.allowed = set(values) if self.allowed is None else self.allowed & values

    def satisfiable(self) -> bool:
        if self.absent_ok or self.allowed is None:
            return True
        return bool(self.allowed - self.excluded)


def _key_states(conj: tuple[Selector, ...]) -> dict[str, _KeyState] | None:
    """Per-key constraint of a conjunct, or None when it is contradictory."""
    states: dict[str, _KeyState] = {}
    present = set(conj)
    for lit in conj:
        if isinstance(lit, Not):
            inner = lit.expr
            if inner in present:
                return None
            if isinstance(inner, Has):
                states.setdefault(inner.key, _KeyState()).allowed = set()
            continue
        key = getattr(lit, "key", None)
        if key is None:
            continue
        st = states.setdefault(key, _KeyState())
        if isinstance(lit, Eq):
            st.require(frozenset((lit.value,)))
            st.had_eq = True
        elif isinstance(lit, In):
            st.require(lit.values)
        elif isinstance(lit, Ne):
            st.excluded.add(lit.value)
        elif isinstance(lit, NotIn):
            st.excluded.update(lit.values)
        else:  # Has and the string operators all need the key present
            st.absent_ok = False
    for st in states.values():
        if not st.satisfiable():
            return None
    return states


def _conjoin(a: tuple[Selector, ...], b: tuple[Selector, ...]) -> tuple[Selector, ...] | None:
    if not a:
        return b
    seen = set(a)
    out = list(a)
    for lit in b:
        if lit not in seen:
            seen.add(lit)
            out.append(lit)
    merged = tuple(out)
    return merged if _key_states(merged) is not None else None


def _dnf(node: Selector, negated: bool, limit: int) -> list[tuple[Selector, ...]]:
    if isinstance(node, All):
        return [] if negated else [()]
    if isinstance(node, Not):
        return _dnf(node.expr, not negated, limit)
    if isinstance(node, And | Or):
        if isinstance(node, And) != negated:  # a conjunction after pushing negation in
            acc: list[tuple[Selector, ...]] = [()]
            for t in node.terms:
                sub = _dnf(t, negated, limit)
                nxt: list[tuple[Selector, ...]] = []
                seen: set[frozenset[Selector]] = set()
                for a in acc:
                    for b in sub:
                        c = _conjoin(a, b)
                        if c is not None and (fc := frozenset(c)) not in seen:
                            seen.add(fc)
                            nxt.append(c)
                            if len(nxt) > limit:
                                raise SelectorNotExpressible(
                                    f"disjunctive normal form exceeds {limit} conjuncts"
                                )
                if not nxt:
                    return []
                acc = nxt
            return acc
        out: list[tuple[Selector, ...]] = []
        seen = set()
        for t in node.terms:
            for c in _dnf(t, negated, limit):
                if not c:
                    return [()]
                if (fc := frozenset(c)) not in seen:
                    seen.add(fc)
                    out.append(c)
        if len(out) > limit:
            raise SelectorNotExpressible(f"disjunctive normal form exceeds {limit} conjuncts")
        return out
    lit = _literal(node, negated)
    if lit is _TRUE:
        return [()]
    if lit is _FALSE:
        return []
    return [(lit,)]


def to_dnf(sel: Selector, *, limit: int = DNF_LIMIT) -> tuple[tuple[Selector, ...], ...]:
    """Disjunctive normal form: an OR of ANDs of literals.

    Literals are Eq, Ne, In, NotIn, Has, Contains, StartsWith, EndsWith, Global and
    ``Not`` of Has / string ops / Global (negated Eq/Ne/In/NotIn become their duals).
    ``()`` means false; a ``()`` conjunct means true. Contradictory and duplicate conjuncts
    are dropped. More than ``limit`` conjuncts raises SelectorNotExpressible.
    """
    return tuple(_dnf(sel, False, limit))


# --------------------------------------------------------------------------- Kubernetes


_K8S_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")
_INEXPRESSIBLE: dict[type[Selector], str] = {
    Contains: "'contains'",
    StartsWith: "'starts with'",
    EndsWith: "'ends with'",
    Global: "global()",
}


def _ptr(*parts: object) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def _values(expr: Mapping[str, Any], index: int) -> list[str]:
    raw = expr.get("values")
    if raw is None:
        return []
    if isinstance(raw, str | bytes) or not isinstance(raw, list | tuple):
        raise LabelSelectorError(
            "values must be a list of strings", _ptr("matchExpressions", index, "values")
        )
    for j, v in enumerate(raw):
        if not isinstance(v, str):
            raise LabelSelectorError(
                "values must be strings", _ptr("matchExpressions", index, "values", j)
            )
    return list(raw)


def from_label_selector(obj: Mapping[str, Any] | None) -> Selector:
    """Convert a k8s LabelSelector (``matchLabels`` / ``matchExpressions``).

    ``None``, ``{}`` and empty/null fields mean "no constraint" (``all()``); callers handle
    contexts where an absent selector means something else. Unknown fields are rejected
    so that a typo can never silently widen a policy.
    """
    if obj is None:
        return All()
    if not isinstance(obj, Mapping):
        raise LabelSelectorError("label selector must be a mapping", "")
    for field in obj:
        if field not in ("matchLabels", "matchExpressions"):
            raise LabelSelectorError(f"unknown field {field!r}", _ptr(field))
    terms: list[Selector] = []
    labels = obj.get("matchLabels")
    if labels is not None:
        if not isinstance(labels, Mapping):
            raise LabelSelectorError("matchLabels must be a mapping", "/matchLabels")
        for k, v in labels.items():
            if not isinstance(k, str) or not k:
                raise LabelSelectorError(
                    "label keys must be non-empty strings", _ptr("matchLabels", k)
                )
            if not isinstance(v, str):
                raise LabelSelectorError(
                    "matchLabels values must be strings", _ptr("matchLabels", k)
                )
            terms.append(Eq(k, v))
    exprs = obj.get("matchExpressions")
    if exprs is not None:
        if not isinstance(exprs, list | tuple):
            raise LabelSelectorError("matchExpressions must be a list", "/matchExpressions")
        for i, expr in enumerate(exprs):
            terms.append(_expression(expr, i))
    return and_(*terms)


def _expression(expr: object, i: int) -> Selector:
    if not isinstance(expr, Mapping):
        raise LabelSelectorError(
            "a match expression must be a mapping", _ptr("matchExpressions", i)
        )
    for field in expr:
        if field not in ("key", "operator", "values"):
            raise LabelSelectorError(f"unknown field {field!r}", _ptr("matchExpressions", i, field))
    key = expr.get("key")
    if not isinstance(key, str) or not key:
        raise LabelSelectorError(
            "key must be a non-empty string", _ptr("matchExpressions", i, "key")
        )
    op = expr.get("operator")
    if op not in _K8S_OPERATORS:
        raise LabelSelectorError(
            f"unknown operator {op!r} (expected one of {', '.join(_K8S_OPERATORS)})",
            _ptr("matchExpressions", i, "operator"),
        )
    values = _values(expr, i)
    if op in ("In", "NotIn"):
        if not values:
            raise LabelSelectorError(
                f"operator {op} needs non-empty values", _ptr("matchExpressions", i, "values")
            )
        return In(key, frozenset(values)) if op == "In" else NotIn(key, frozenset(values))
    if values:
        raise LabelSelectorError(
            f"operator {op} takes no values", _ptr("matchExpressions", i, "values")
        )
    return Has(key) if op == "Exists" else Not(Has(key))


def _conjunct_to_k8s(conj: tuple[Selector, ...]) -> dict[str, Any] | None:
    states = _key_states(conj)
    if states is None:
        return None
    match_labels: dict[str, str] = {}
    exprs: list[dict[str, Any]] = []
    for key in sorted(states):
        st = states[key]
        if st.allowed is not None:
            allowed = st.allowed - st.excluded
            if st.absent_ok:  # only Not(Has) yields a finite set with absence allowed
                exprs.append({"key": key, "operator": "DoesNotExist"})
            elif not allowed:
                return None
            elif st.had_eq:
                (match_labels[key],) = allowed
            else:
                exprs.append({"key": key, "operator": "In", "values": sorted(allowed)})
            continue
        if not st.absent_ok:
            exprs.append({"key": key, "operator": "Exists"})
        if st.excluded:
            exprs.append({"key": key, "operator": "NotIn", "values": sorted(st.excluded)})
    exprs.sort(key=lambda e: (e["key"], e["operator"]))
    out: dict[str, Any] = {}
    if match_labels:
        out["matchLabels"] = match_labels
    if exprs:
        out["matchExpressions"] = exprs
    return out


def to_label_selectors(sel: Selector) -> tuple[dict[str, Any], ...]:
    """Exact k8s form: the OR of the returned LabelSelectors; ``()`` matches nothing.

    Raises SelectorNotExpressible for string operators and ``global()`` (anywhere in the
    normalised selector) and when the DNF has more than 256 conjuncts.
    """
    norm = normalize(sel)
    for node in walk(norm):
        what = _INEXPRESSIBLE.get(type(node))
        if what is not None:
            raise SelectorNotExpressible(
                f"{what} has no Kubernetes LabelSelector equivalent ({node!r})"
            )
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for conj in to_dnf(norm, limit=DNF_LIMIT):
        d = _conjunct_to_k8s(conj)
        if d is None:
            continue
        if not d:
            return ({},)
        fingerprint = repr(d)
        if fingerprint not in seen:
            seen.add(fingerprint)
            out.append(d)
    return tuple(out)


def literal_atoms(sel: Selector) -> frozenset[tuple[str, str | None]]:
    """(key, value) pairs the selector mentions; value None for has(), string ops, ``in {}``."""
    out: set[tuple[str, str | None]] = set()
    for node in walk(sel):
        if isinstance(node, Eq | Ne):
            out.add((node.key, node.value))
        elif isinstance(node, In | NotIn):
            out.update((node.key, v) for v in node.values)
            if not node.values:
                out.add((node.key, None))
        elif isinstance(node, Has | Contains | StartsWith | EndsWith):
            out.add((node.key, None))
    return frozenset(out)
