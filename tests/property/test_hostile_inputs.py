"""Hostile inputs: real corpus documents with fields replaced by values of the wrong kind.

Whatever a document says, reading and converting it either works or raises one of
polyfence's own errors (a located one-line message in the CLI); a traceback is a bug. This is
the fuzzing that found the inventory's and the readers' unchecked shapes, kept as a property.
"""

from __future__ import annotations

import contextlib
import copy
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from polyfence import api
from polyfence.errors import PolyfenceError
from polyfence.io.files import parse_text
from tests.conftest import DATA, corpus_files

_DOCS: list[dict[str, Any]] = [
    doc
    for kind in ("k8s", "calico", "cilium", "istio")
    for path in corpus_files(kind)
    for doc in yaml.safe_load_all(path.read_text())
    if isinstance(doc, dict)
] + [
    doc
    for path in sorted((DATA.parent.parent / "examples").rglob("cluster*.yaml"))
    for doc in yaml.safe_load_all(path.read_text())
    if isinstance(doc, dict)
]
_HOSTILE = st.sampled_from(
    [None, [], {}, 0, -1, 2**70, "", "x", "../../etc", "*", True, 1.5, [None], {"a": None}]
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            out.extend(_paths(value, (*prefix, key)))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out.extend(_paths(value, (*prefix, i)))
    return out


@st.composite
def hostile_documents(draw: st.DrawFn) -> list[dict[str, Any]]:
    docs = []
    for _ in range(draw(st.integers(1, 3))):
        doc = copy.deepcopy(draw(st.sampled_from(_DOCS)))
        places = _paths(doc)[1:]
        for _ in range(draw(st.integers(1, 3))):
            where = draw(st.sampled_from(places))
            parent: Any = doc
            try:
                for key in where[:-1]:
                    parent = parent[key]
                parent[where[-1]] = draw(_HOSTILE)
            except (KeyError, IndexError, TypeError):
                continue  # an earlier replacement removed this place
        docs.append(doc)
    return docs


@pytest.mark.property
@given(hostile_documents())
def test_hostile_documents_are_read_or_refused_never_crash(docs: list[dict[str, Any]]) -> None:
    text = yaml.safe_dump_all(docs)
    try:
        bundle = api.load(parse_text(text, "hostile.yaml"), skip_unknown=True)
    except PolyfenceError:
        return
    if len(bundle.policies):
        for target in ("kubernetes", "calico", "cilium"):
            with contextlib.suppress(PolyfenceError):
                api.convert(bundle, to=target, allow_widening=True)
