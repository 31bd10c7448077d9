"""Reading documents from files, directories and stdin; writing outputs atomically.

Accepts multi-document YAML, JSON, and ``kind: List`` / ``*List`` wrappers (what
``kubectl get -A -o yaml`` prints), which are flattened so that every item is addressed by its
own JSON pointer (``/items/3``) under the list's document index.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import yaml

from polyfence.errors import Diagnostic, InputError
from polyfence.model.document import Document
from polyfence.model.provenance import SourceRef

try:  # the C loader/dumper are several times faster on big snapshots
    from yaml import CSafeDumper as _Dumper
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - depends on the PyYAML build
    from yaml import SafeDumper as _Dumper  # type: ignore[assignment]
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

SUFFIXES = (".yaml", ".yml", ".json")


class _PlainDumper(_Dumper):  # type: ignore[valid-type,misc]
    """No anchors/aliases for shared sub-objects: outputs are read by other tools."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


class _Loader(_Loader):  # type: ignore[valid-type,misc,no-redef]
    """Safe loading plus CloudFormation's short-form intrinsics (``!Ref x`` is ``{"Ref": x}``,
    ``!GetAtt a.b`` is ``{"Fn::GetAtt": "a.b"}``): plain data, never code."""


def _intrinsic(loader: Any, suffix: str, node: Any) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {"Ref" if suffix == "Ref" else f"Fn::{suffix}": value}


_Loader.add_multi_constructor("!", _intrinsic)

MAX_NODES = 2_000_000  # per document, after YAML aliases are expanded
MAX_DEPTH = 200


def _check_shape(data: Any) -> str | None:
    """Refuse alias bombs, self-referencing aliases and absurd nesting before anyone walks them."""
    count = 0
    stack: list[tuple[Any, int, tuple[int, ...]]] = [(data, 0, ())]
    while stack:
        node, depth, path = stack.pop()
        count += 1
        if count > MAX_NODES:
            return f"more than {MAX_NODES:,} values (YAML alias expansion?)"
        if depth > MAX_DEPTH:
            return f"nested deeper than {MAX_DEPTH} levels"
        if isinstance(node, dict | list):
            if id(node) in path:
                return "a YAML alias refers to itself (cyclic document)"
            children = node.values() if isinstance(node, dict) else node
            inner = (*path, id(node))
            stack.extend((child, depth + 1, inner) for child in children)
    return None


def _expand(paths: Iterable[str]) -> Iterator[tuple[str, Path | None]]:
    for raw in paths:
        if raw == "-":
            yield "-", None
            continue
        path = Path(raw)
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                if child.is_file() and child.suffix.lower() in SUFFIXES:
                    yield str(child), child
        else:
            yield raw, path


def _flatten(data: Any, source: SourceRef) -> Iterator[Document]:
    kind = data.get("kind") if isinstance(data, dict) else None
    if isinstance(kind, str) and kind.endswith("List") and isinstance(data.get("items"), list):
        for i, item in enumerate(data["items"]):
            yield from _flatten(item, source.child("items", i))
    else:
        yield Document(data, source)


def parse_text(text: str, name: str) -> list[Document]:
    """Documents of one file's text; raises InputError naming the file and line."""
    docs: list[Document] = []
    stripped = text.lstrip()
    if name.endswith(".json") or (
        stripped.startswith(("{", "[")) and not name.endswith((".yaml", ".yml"))
    ):
        try:
            data = json.loads(text)
        except RecursionError:
            raise InputError(
                [Diagnostic(SourceRef(name, 0), "not valid JSON: nested too deeply")]
            ) from None
        except json.JSONDecodeError as exc:
            raise InputError(
                [
                    Diagnostic(
                        SourceRef(name, 0),
                        f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
                    )
                ]
            ) from None
        items = data if isinstance(data, list) else [data]
        raw_docs = list(enumerate(items))
    else:
        try:
            raw_docs = list(enumerate(yaml.load_all(text, Loader=_Loader)))
        except RecursionError:
            raise InputError(
                [Diagnostic(SourceRef(name), "not valid YAML: nested too deeply")]
            ) from None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1} column {mark.column + 1}" if mark else ""
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise InputError(
                [Diagnostic(SourceRef(name), f"not valid YAML: {problem}{where}")]
            ) from None
    problems: list[Diagnostic] = []
    for index, data in raw_docs:
        if data is None:
            continue
        source = SourceRef(name, index)
        shape = _check_shape(data)
        if shape is not None:
            problems.append(Diagnostic(source, f"refused: {shape}"))
            continue
        if not isinstance(data, dict):
            problems.append(
                Diagnostic(
                    source,
                    f"expected a mapping (an object with apiVersion and kind), got {type(data).__name__}",
                )
            )
            continue
        docs.extend(_flatten(data, source))
    if problems:
        raise InputError(problems)
    return docs


def load_documents(paths: Iterable[str], stdin: Any = None) -> list[Document]:
    """Every document under ``paths``; all unreadable files are reported together."""
    docs, problems = read_documents(paths, stdin)
    if problems:
        raise InputError(problems)
    return docs


def read_documents(
    paths: Iterable[str], stdin: Any = None
) -> tuple[list[Document], list[Diagnostic]]:
    """The documents that could be read, and the problems with those that could not."""
    problems: list[Diagnostic] = []
    docs: list[Document] = []
    for name, path in _expand(paths):
        try:
            if path is None:
                text = (stdin or sys.stdin).read()
                name = "<stdin>"
            else:
                text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            problems.append(Diagnostic(SourceRef(name), f"cannot read: {reason}"))
            continue
        try:
            docs.extend(parse_text(text, name))
        except InputError as exc:
            problems.extend(exc.diagnostics)
    return docs, problems


def dump(docs: list[Any], output_format: str) -> str:
    """YAML (multi-document) or JSON text for documents."""
    if output_format == "json":
        body: Any = (
            docs[0] if len(docs) == 1 else {"apiVersion": "v1", "kind": "List", "items": docs}
        )
        return json.dumps(body, indent=2, sort_keys=False) + "\n"
    return yaml.dump_all(
        docs,
        Dumper=_PlainDumper,
        sort_keys=False,
        default_flow_style=False,
        explicit_start=len(docs) > 1,
    )


def write_atomic(path: str | Path, text: str) -> None:
    """Write through a temporary file in the same directory and rename it into place."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
