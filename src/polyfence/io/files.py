"""Reading documents from files, directories and stdin; writing outputs atomically.

Accepts multi-document YAML, JSON, and ``kind: List`` / ``*List`` wrappers (what
``kubectl get -A -o yaml`` prints and what the API server returns), which are flattened so that
every item is addressed by its own JSON pointer (``/items/3``) under the list's document index.
Items of a typed list (``PodList``, ``NetworkPolicyList`` …) carry no kind of their own: they get
the list's. Nothing is dropped without a word: an unreadable directory, a dangling or looping
link, a path that holds no document and a duplicate mapping key are all located errors.
"""

from __future__ import annotations

import functools
import json
import sys
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


class _PlainDumper(_Dumper):
    """No anchors/aliases for shared sub-objects: outputs are read by other tools."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


class _Loader(_Loader):  # type: ignore[no-redef]
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


class DuplicateKeyError(ValueError):
    """A mapping names one key twice; the API server rejects such a request, so do we."""

    def __init__(self, key: str, line: int | None) -> None:
        self.key = key
        self.line = line
        super().__init__(key)


def _construct_mapping(loader: Any, node: Any, deep: bool = False) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
            key = loader.construct_object(key_node, deep=deep)
            try:
                duplicate = key in seen
            except TypeError:  # an unhashable key: the base constructor says so
                continue
            if duplicate:
                raise DuplicateKeyError(str(key), key_node.start_mark.line + 1)
            seen.add(key)
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_Loader.construct_mapping = _construct_mapping  # type: ignore[method-assign,assignment]


def _json_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise DuplicateKeyError(key, None)
        out[key] = value
    return out


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


class _Walk:
    """The input files under the given paths, with a located problem for whatever is skipped."""

    def __init__(self) -> None:
        self.problems: list[Diagnostic] = []

    def files(self, raw: str) -> Iterator[tuple[str, Path | None]]:
        if raw == "-":
            yield "-", None
            return
        path = Path(raw)
        if path.is_symlink() and not path.exists():
            self.problems.append(Diagnostic(SourceRef(raw), "cannot read: a dangling link"))
        elif path.is_dir():
            yield from self._directory(path, {path.resolve()})
        else:
            yield raw, path

    def _directory(self, folder: Path, active: set[Path]) -> Iterator[tuple[str, Path | None]]:
        try:
            children = sorted(folder.iterdir())
        except OSError as exc:
            self.problems.append(
                Diagnostic(SourceRef(str(folder)), f"cannot read directory: {exc.strerror or exc}")
            )
            return
        for child in children:
            if child.is_symlink():
                try:
                    target = child.resolve(strict=True)
                except (OSError, RuntimeError):
                    if child.suffix.lower() in SUFFIXES or not child.suffix:
                        self.problems.append(
                            Diagnostic(
                                SourceRef(str(child)), "cannot read: a dangling or looping link"
                            )
                        )
                    continue
                if target.is_dir():
                    if target in active or any(target in a.parents for a in active if a != target):
                        self.problems.append(
                            Diagnostic(SourceRef(str(child)), "cannot read: a link that loops back")
                        )
                        continue
                    yield from self._directory(child, active | {target})
                    continue
            elif child.is_dir():
                yield from self._directory(child, active | {child.resolve()})
                continue
            if child.suffix.lower() in SUFFIXES and (child.is_file() or child.is_symlink()):
                yield str(child), child


def _flatten(
    data: Any,
    source: SourceRef,
    problems: list[Diagnostic],
    inherited: tuple[str, Any] | None = None,
) -> Iterator[Document]:
    """A document, or the items of a list document, each with its kind (typed lists lend theirs)."""
    kind = data.get("kind") if isinstance(data, dict) else None
    if inherited is not None and isinstance(data, dict) and "kind" not in data:
        item_kind, api_version = inherited
        data = {"apiVersion": api_version, "kind": item_kind, **data}
        kind = item_kind
    if isinstance(kind, str) and kind.endswith("List") and "items" in data:
        items = data["items"]
        if items is None:
            return
        if not isinstance(items, list):
            problems.append(Diagnostic(source.child("items"), f"items of a {kind} must be a list"))
            return
        item_kind = kind[: -len("List")]
        lend = (item_kind, data.get("apiVersion")) if item_kind else None
        for i, item in enumerate(items):
            where = source.child("items", i)
            if not isinstance(item, dict):
                problems.append(
                    Diagnostic(where, f"an item of a {kind} must be an object, not {_type(item)}")
                )
                continue
            own = item.get("kind")
            if lend is None and own is None:
                problems.append(
                    Diagnostic(where, "an item of a List needs its own kind and apiVersion")
                )
                continue
            if lend is not None and own is not None and own != item_kind:
                problems.append(
                    Diagnostic(
                        where.child("kind"), f"a {kind} holds {item_kind} items, not {own!r}"
                    )
                )
                continue
            yield from _flatten(item, where, problems, lend)
    else:
        if isinstance(data, dict) and "kind" in data and not isinstance(kind, str):
            problems.append(
                Diagnostic(source.child("kind"), f"kind must be a string, not {_type(kind)}")
            )
            return
        api_version = data.get("apiVersion") if isinstance(data, dict) else None
        if api_version is not None and not isinstance(api_version, str):
            problems.append(
                Diagnostic(
                    source.child("apiVersion"),
                    f"apiVersion must be a string, not {_type(api_version)}",
                )
            )
            return
        yield Document(data, source)


def _type(value: Any) -> str:
    return {dict: "a map", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), "null" if value is None else f"a {type(value).__name__}"
    )


def parse_text(text: str, name: str) -> list[Document]:
    """Documents of one file's text; raises InputError naming the file and line."""
    return _parse(text, name)[0]


def _parse(text: str, name: str) -> tuple[list[Document], int]:
    """The documents of a text, and how many top-level documents it held (lists count as one)."""
    docs: list[Document] = []
    stripped = text.lstrip()
    if name.endswith(".json") or (
        stripped.startswith(("{", "[")) and not name.endswith((".yaml", ".yml"))
    ):
        try:
            data = json.loads(text, object_pairs_hook=_json_pairs)
        except DuplicateKeyError as exc:
            raise InputError(
                [Diagnostic(SourceRef(name, 0), f"duplicate key {exc.key!r} in a JSON object")]
            ) from None
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
        raw_docs = []
        try:
            for data in yaml.load_all(text, Loader=_Loader):
                raw_docs.append((len(raw_docs), data))
        except DuplicateKeyError as exc:
            raise InputError(
                [
                    Diagnostic(
                        SourceRef(name, len(raw_docs)),
                        f"duplicate key {exc.key!r} at line {exc.line}",
                    )
                ]
            ) from None
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
        docs.extend(_flatten(data, source, problems))
    if problems:
        raise InputError(problems)
    return docs, sum(1 for _, data in raw_docs if data is not None)


def load_documents(paths: Iterable[str], stdin: Any = None) -> list[Document]:
    """Every document under ``paths``; all unreadable files are reported together."""
    docs, problems = read_documents(paths, stdin)
    if problems:
        raise InputError(problems)
    return docs


_STDIN_TEXT: dict[str, str] = {}  # what stdin held, so that errors in it can name their line


def _decode(raw: bytes, name: str) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise InputError(
            [
                Diagnostic(
                    SourceRef(name),
                    f"cannot read: not UTF-8 text (byte 0x{raw[exc.start]:02x} at line {line})",
                )
            ]
        ) from None


def _read_stdin(stdin: Any) -> str:
    stream = stdin if stdin is not None else sys.stdin
    buffer = getattr(stream, "buffer", None)
    data = buffer.read() if buffer is not None else stream.read()
    text = _decode(data, "<stdin>") if isinstance(data, bytes) else str(data)
    _STDIN_TEXT["<stdin>"] = text
    return text


def read_documents(
    paths: Iterable[str], stdin: Any = None
) -> tuple[list[Document], list[Diagnostic]]:
    """The documents that could be read, and the problems with those that could not.

    Every path must hold at least one document: an empty file, empty stdin or a directory
    without YAML/JSON is a problem, never an empty cluster (an audit of nothing would pass).
    """
    _composed.cache_clear()  # line look-ups describe what this call reads, not an older file
    walk = _Walk()
    problems = walk.problems
    docs: list[Document] = []
    for raw in paths:
        held = 0
        for name, path in walk.files(raw):
            try:
                if path is None:
                    name = "<stdin>"
                    text = _read_stdin(stdin)
                else:
                    text = _decode(path.read_bytes(), name)
                found, count = _parse(text, name)
            except OSError as exc:
                problems.append(Diagnostic(SourceRef(name), f"cannot read: {exc.strerror or exc}"))
                held += 1  # said already
                continue
            except InputError as exc:
                problems.extend(exc.diagnostics)
                held += 1
                continue
            docs.extend(found)
            held += count
        if held == 0 and not any(d.source.file == raw for d in problems):
            what = "stdin" if raw == "-" else raw
            kind = "directory" if raw != "-" and Path(raw).is_dir() else "input"
            extra = " .yaml, .yml or .json file with a" if kind == "directory" else ""
            problems.append(
                Diagnostic(
                    SourceRef("<stdin>" if raw == "-" else raw),
                    f"nothing to read: the {kind} {what} holds no{extra} YAML or JSON document",
                )
            )
    return docs, problems


@functools.lru_cache(maxsize=4)
def _composed(file: str) -> tuple[Any, ...] | None:
    """A file's (or stdin's) YAML node trees, composed once for all the errors in it."""
    text = _STDIN_TEXT.get(file)
    if text is None:
        try:
            text = Path(file).read_bytes().decode("utf-8-sig")
        except (OSError, UnicodeDecodeError):
            return None
    try:
        return tuple(n for n in yaml.compose_all(text, Loader=yaml.SafeLoader) if n is not None)
    except (yaml.YAMLError, RecursionError):
        return None


def line_of(source: SourceRef) -> int | None:
    """The 1-based line of ``source`` in its file (or stdin), found on demand for messages."""
    if source.file is None or source.document is None:
        return None
    nodes = _composed(source.file)
    if nodes is None:
        return None
    node: Any
    if len(nodes) == 1 and isinstance(nodes[0], yaml.SequenceNode) and source.document >= 0:
        top = nodes[0].value  # a JSON array of documents
        node = top[source.document] if source.document < len(top) else None
    else:
        node = nodes[source.document] if source.document < len(nodes) else None
    if node is None:
        return None
    tokens = [t.replace("~1", "/").replace("~0", "~") for t in source.pointer.split("/")[1:]]
    for token in tokens:
        child = None
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.value == token:
                    child = value
                    break
        elif isinstance(node, yaml.SequenceNode) and token.isdigit():
            index = int(token)
            child = node.value[index] if index < len(node.value) else None
        if child is None:
            break
        node = child
    return int(node.start_mark.line) + 1


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
    """Write one output safely; kept for callers of the old name (``polyfence.io.output``)."""
    from polyfence.io.output import write_file

    write_file(path, text)
