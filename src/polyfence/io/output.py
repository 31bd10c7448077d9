"""Writing outputs safely: what ``-o`` may touch, and how.

Rules (README, "Outputs"):

* ``-`` is standard output; a word that names an output format (``-o json``) is a usage
  error, not a file called ``json``.
* A regular file is replaced atomically (temporary sibling, fsync, ``os.replace``) and keeps its
  mode (and, as root, its owner); a new file gets the umask's permissions. A symbolic link is
  followed and stays a link. Character devices and FIFOs (``/dev/null``, ``/dev/stdout``, a
  pipe) are written into directly: renaming over them would replace the node itself.
* A directory, or a path under a regular file, is an ``OutputError`` before anything is written.
* An output that resolves to an input (or to a file inside an input directory, or a directory
  output that overlaps an input) is refused: inputs are never modified.
* A directory of documents is written as a set: every file is staged first (a failure then
  leaves nothing), the completion marker ``.polyfence-complete`` is removed, the files are
  renamed into place, and the marker (listing the set) is written last; a set without the
  marker is incomplete. File names come from ``tree_name``, which is injective and can never
  leave the directory whatever a document says.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import stat
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from polyfence.errors import OutputError, UsageError

STDOUT = "-"
MARKER = ".polyfence-complete"
TMP_TAG = ".polyfence-tmp-"
PROVENANCE = "polyfence.dev/source"
CLUSTER_DIR = "_cluster"

# What a file's suffix says about the format to write, when no format option is given.
SUFFIX_FORMATS = {
    ".json": "json",
    ".yaml": "yaml",
    ".yml": "yaml",
    ".csv": "csv",
    ".dot": "dot",
    ".gv": "dot",
    ".html": "html",
    ".htm": "html",
    ".md": "md",
    ".sarif": "sarif",
    ".xml": "junit",
    ".txt": "text",
}
# kubectl's -o values and polyfence's own format names: never a file name by accident.
FORMAT_WORDS = frozenset(
    {"json", "yaml", "yml", "text", "csv", "dot", "html", "md", "sarif", "junit", "wide", "name"}
)

_NAME_SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._")
_KIND_SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
INPUT_SUFFIXES = (".yaml", ".yml", ".json")  # what a directory input reads (io.files)
_MAX_COMPONENT = 200  # bytes; file systems allow 255, the staging prefix needs the rest


def check_output_argument(value: str, option: str = "-o") -> None:
    """Refuse ``-o json`` (kubectl's habit): it would silently write a file named ``json``."""
    if value.lower() in FORMAT_WORDS:
        raise UsageError(
            f"{option} {value}: did you mean --output-format {value}? "
            f"({option} names a file; write ./{value} for a file of that name)"
        )


def format_for(
    output: str | None, explicit: str | None, choices: Sequence[str], default: str
) -> str:
    """The format option if given, else what ``-o``'s suffix says (among ``choices``), else the
    default: ``-o out.json`` writes JSON, so polyfence can read its own output back."""
    if explicit is not None:
        return explicit
    if output and output != STDOUT:
        guessed = SUFFIX_FORMATS.get(Path(output).suffix.lower())
        if guessed is not None and guessed in choices:
            return guessed
    return default


def _real(path: str) -> str:
    return os.path.realpath(os.path.abspath(path))


def _inside(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory.rstrip(os.sep) + os.sep)


def refuse_inputs(outputs: Iterable[tuple[str, str, bool]], inputs: Iterable[str]) -> None:
    """UsageError when an output (``(option, path, is_directory)``) would modify an input.

    Real paths are compared, so symbolic links and ``..`` do not hide an input. A file output
    may not be an input file, nor a policy file (``.yaml``, ``.yml``, ``.json``) inside an input
    directory, which is read as input; a directory output may not overlap an input directory
    nor contain an input file (writing or ``--prune`` would change it).
    """
    input_files: set[str] = set()
    input_dirs: set[str] = set()
    for raw in inputs:
        if raw == STDOUT:
            continue
        real = _real(raw)
        (input_dirs if os.path.isdir(real) else input_files).add(real)
    for option, raw, is_dir in outputs:
        if raw == STDOUT:
            continue
        real = _real(raw)
        for src in sorted(input_files):
            if real == src or (is_dir and _inside(src, real)):
                raise UsageError(
                    f"{option} {raw}: it is the input {src}: inputs are never modified"
                )
        read_here = is_dir or Path(real).suffix.lower() in INPUT_SUFFIXES
        for src in sorted(input_dirs):
            if read_here and _inside(real, src):
                raise UsageError(
                    f"{option} {raw}: it is inside the input directory {src}: "
                    "inputs are never modified"
                )
            if is_dir and _inside(src, real):
                raise UsageError(
                    f"{option} {raw}: it contains the input directory {src}: "
                    "inputs are never modified"
                )


def refuse_duplicates(outputs: Iterable[tuple[str, str, bool]]) -> None:
    """UsageError when two options name the same file: the second write would erase the first."""
    seen: dict[str, str] = {}
    for option, raw, _ in outputs:
        key = raw if raw == STDOUT else _real(raw)
        if key in seen:
            raise UsageError(f"{option} {raw}: {seen[key]} writes there too")
        seen[key] = option


def check_outputs(inputs: Sequence[str], *outputs: tuple[str, str | None, bool]) -> None:
    """Check every output of a command before any work: ``(option, path or None, is_dir)``.

    ``-o json``, an output that is an input, two options naming one file, and an output that
    cannot be written all fail here, so the command stops with nothing written.
    """
    given = [(option, path, is_dir) for option, path, is_dir in outputs if path]
    for option, path, _ in given:
        check_output_argument(path, option)
    refuse_duplicates(given)
    refuse_inputs(given, inputs)
    for _, path, is_dir in given:
        (check_directory if is_dir else check_file)(path)


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


def _first_existing(path: str) -> str:
    current = path
    while not os.path.lexists(current):
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
    return current


def _check_creatable(shown: str, real: str) -> None:
    """The nearest existing ancestor of a path to create must be a writable directory."""
    ancestor = _first_existing(os.path.dirname(real))
    if not os.path.isdir(ancestor):
        raise OutputError(shown, f"{ancestor} is not a directory")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise OutputError(shown, f"{ancestor} is not writable")


def check_file(path: str) -> None:
    """Raise OutputError now if ``write_file(path, …)`` could not write: nothing written yet."""
    if path == STDOUT:
        return
    real = _real(path)
    try:
        st = os.stat(real)
    except FileNotFoundError:
        _check_creatable(path, real)
        return
    except OSError as exc:
        raise OutputError(path, _reason(exc)) from None
    if stat.S_ISDIR(st.st_mode):
        raise OutputError(path, "is a directory (this output is one file)")
    if stat.S_ISREG(st.st_mode):
        if not os.access(os.path.dirname(real), os.W_OK | os.X_OK):
            raise OutputError(path, f"{os.path.dirname(real)} is not writable")
    elif not (stat.S_ISCHR(st.st_mode) or stat.S_ISFIFO(st.st_mode)):
        raise OutputError(path, "not a regular file, character device or FIFO")


def check_directory(path: str) -> None:
    """Raise OutputError now if ``write_tree(path, …)`` could not start."""
    real = _real(path)
    try:
        st = os.stat(real)
    except FileNotFoundError:
        _check_creatable(path, real)
        return
    except OSError as exc:
        raise OutputError(path, _reason(exc)) from None
    if not stat.S_ISDIR(st.st_mode):
        raise OutputError(path, "not a directory")
    if not os.access(real, os.W_OK | os.X_OK):
        raise OutputError(path, "directory is not writable")


def _fsync_dir(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _stage(target: str, data: bytes, existing: os.stat_result | None) -> str:
    """Write ``data`` to a new temporary sibling of ``target`` (fsynced); return its path.

    The file is created with mode 0666, so the kernel applies the umask; an existing target's
    mode (and owner, when we may set it) is copied so that replacing it changes nothing else.
    """
    directory, base = os.path.split(target)
    while True:
        tmp = os.path.join(directory, f".{base[:100]}{TMP_TAG}{secrets.token_hex(4)}")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
        except FileExistsError:
            continue
        break
    try:
        try:
            if existing is not None:
                os.fchmod(fd, stat.S_IMODE(existing.st_mode))
                if os.geteuid() == 0:
                    os.fchown(fd, existing.st_uid, existing.st_gid)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
    except BaseException:
        os.unlink(tmp)
        raise
    return tmp


def _write_direct(path: str, real: str, data: bytes) -> None:
    try:
        fd = os.open(real, os.O_WRONLY | os.O_CLOEXEC)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
    except OSError as exc:
        raise OutputError(path, _reason(exc)) from None


def write_file(path: str | Path, text: str) -> None:
    """Write one output (see the module docstring for what each kind of path gets)."""
    shown = str(path)
    if shown == STDOUT:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    real = _real(shown)
    try:
        existing: os.stat_result | None = os.stat(real)
    except FileNotFoundError:
        existing = None
    except OSError as exc:
        raise OutputError(shown, _reason(exc)) from None
    data = text.encode("utf-8")
    if existing is not None and not stat.S_ISREG(existing.st_mode):
        if stat.S_ISCHR(existing.st_mode) or stat.S_ISFIFO(existing.st_mode):
            _write_direct(shown, real, data)
            return
        if stat.S_ISDIR(existing.st_mode):
            raise OutputError(shown, "is a directory (this output is one file)")
        raise OutputError(shown, "not a regular file, character device or FIFO")
    directory = os.path.dirname(real)
    try:
        os.makedirs(directory, exist_ok=True)
        tmp = _stage(real, data, existing)
        try:
            os.replace(tmp, real)
        except BaseException:
            os.unlink(tmp)
            raise
        _fsync_dir(directory)
    except OSError as exc:
        raise OutputError(shown, _reason(exc)) from None


def _component(text: str, safe: frozenset[str]) -> str:
    """Percent-encode every character outside ``safe`` (and ``%`` itself, a leading ``.`` or
    ``_``): injective, never ``/``, ``..``, NUL, hidden or empty. Long results keep a readable
    head and a hash of the whole (``~`` occurs nowhere else)."""
    out = []
    for i, char in enumerate(text):
        if char in safe and not (i == 0 and char in "._"):
            out.append(char)
        else:
            out.append("".join(f"%{b:02X}" for b in char.encode("utf-8")))
    encoded = "".join(out) or "%"
    if len(encoded) > _MAX_COMPONENT:
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]
        encoded = f"{encoded[: _MAX_COMPONENT - 40]}~{digest}"
    return encoded


def tree_name(doc: Any, index: int, suffix: str) -> str:
    """The relative file name of one output document in a directory.

    ``<namespace>/<Kind>-<name><suffix>`` for namespaced objects, ``_cluster/<Kind>-<name>``
    for cluster-scoped ones, ``_<index>-<Kind>`` for documents without a name (an AWS groups
    document, a canonical PolicySet). Every part is encoded by ``_component`` (the kind allows
    letters and digits only, so the first ``-`` separates it from the name), namespaces never
    start with ``_``: the mapping from (kind, namespace, name) to names is injective, and
    only documents with the same kind, namespace and name share a file.
    """
    meta = doc.get("metadata") if isinstance(doc, dict) else None
    meta = meta if isinstance(meta, dict) else {}
    kind = doc.get("kind") if isinstance(doc, dict) else None
    kind_part = _component(kind, _KIND_SAFE) if isinstance(kind, str) and kind else "document"
    name = meta.get("name")
    if not isinstance(name, str) or not name:
        return f"_{index}-{kind_part}{suffix}"
    stem = f"{kind_part}-{_component(name, _NAME_SAFE)}{suffix}"
    namespace = meta.get("namespace")
    if isinstance(namespace, str) and namespace:
        return f"{_component(namespace, _NAME_SAFE)}/{stem}"
    return f"{CLUSTER_DIR}/{stem}"


def _checked_relative(name: str) -> PurePosixPath:
    rel = PurePosixPath(name)
    if (
        not name
        or "\0" in name
        or "\\" in name
        or rel.is_absolute()
        or any(part in ("", ".", "..") for part in name.split("/"))
    ):
        raise OutputError(name, "not a safe relative file name")
    return rel


@dataclass(frozen=True, slots=True)
class TreeResult:
    """What ``write_tree`` did: files written, files present that this run did not write
    (relative names, sorted), and whether those were removed (``prune``)."""

    written: tuple[str, ...]
    stale: tuple[str, ...]
    pruned: bool


def is_complete(directory: str | Path) -> bool:
    """Whether the directory holds a set whose writing finished (its marker is present)."""
    return (Path(directory) / MARKER).is_file()


def _present(root: Path) -> list[str]:
    found = []
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            rel = (Path(dirpath) / name).relative_to(root).as_posix()
            if rel != MARKER:
                found.append(rel)
    return sorted(found)


def write_tree(
    directory: str | Path, files: Mapping[str, str], *, prune: bool = False
) -> TreeResult:
    """Write ``files`` (relative name -> text) under ``directory`` as one set (module docstring).

    Raises OutputError naming the path and the OS reason; a failure while staging leaves the
    directory as it was, a failure (or a kill) after it leaves no completion marker.
    """
    shown = str(directory)
    check_directory(shown)
    for a in files:  # a case-insensitive file system would merge these two
        clash = [b for b in files if b != a and b.casefold() == a.casefold()]
        if clash:
            raise OutputError(shown, f"{a} and {clash[0]} differ only in case")
    root = Path(_real(shown))
    staged: list[tuple[str, str, str]] = []  # (relative name, temp path, target path)
    created: list[Path] = []  # directories this call made, removed again if staging fails
    try:
        _makedirs(root, created)
        for name, text in files.items():
            rel = _checked_relative(name)
            parent = root.joinpath(*rel.parts[:-1])
            _makedirs(parent, created)
            if not _inside(os.path.realpath(parent), str(root)):
                raise OutputError(f"{shown}/{name}", f"{parent} leads outside {shown}")
            target = str(parent / rel.name)
            try:
                existing: os.stat_result | None = os.lstat(target)
            except FileNotFoundError:
                existing = None
            if existing is not None and stat.S_ISDIR(existing.st_mode):
                raise OutputError(f"{shown}/{name}", "is a directory")
            if existing is not None and not stat.S_ISREG(existing.st_mode):
                existing = None  # a link or device in the tree is replaced, never written through
            staged.append((name, _stage(target, text.encode("utf-8"), existing), target))
    except BaseException as exc:
        for _, tmp, _ in staged:
            Path(tmp).unlink(missing_ok=True)
        for made in reversed(created):
            made.rmdir()
        if isinstance(exc, OSError):
            raise OutputError(shown, _reason(exc)) from None
        raise
    marker = root / MARKER
    try:
        marker.unlink(missing_ok=True)
        for done, (_, tmp, target) in enumerate(staged):
            try:
                os.replace(tmp, target)
            except BaseException:
                for _, left, _ in staged[done:]:
                    Path(left).unlink(missing_ok=True)
                raise
        written = tuple(name for name, _, _ in staged)
        ours = set(written)
        stale = tuple(p for p in _present(root) if p not in ours)
        if prune:
            for rel_name in stale:
                (root / rel_name).unlink()
            _remove_empty_dirs(root)
        for dirpath in sorted({os.path.dirname(t) for _, _, t in staged} | {str(root)}):
            _fsync_dir(dirpath)
        write_file(marker, "".join(f"{name}\n" for name in written))
    except OSError as exc:
        raise OutputError(shown, f"{_reason(exc)}; the set is incomplete (no {MARKER})") from None
    return TreeResult(written, stale, prune)


def with_provenance(doc: Any, sources: Sequence[str]) -> Any:
    """A copy of ``doc`` whose ``metadata.annotations`` name where it came from
    (``polyfence.dev/source: file[doc]:/pointer``, comma-separated when several inputs made it).
    Documents without ``metadata`` (an AWS groups document, a canonical PolicySet) have no place
    for it and are returned as they are; readers ignore the annotation."""
    meta = doc.get("metadata") if isinstance(doc, dict) else None
    if not isinstance(meta, dict) or not sources:
        return doc
    annotations = meta.get("annotations")
    merged = {
        **(annotations if isinstance(annotations, dict) else {}),
        PROVENANCE: ", ".join(sources),
    }
    return {**doc, "metadata": {**meta, "annotations": merged}}


@dataclass(frozen=True, slots=True)
class DocumentTree:
    """A directory of documents as written: the files, and the names several documents share
    (same kind, namespace and name: both are kept, in one file, and the caller warns)."""

    result: TreeResult
    shared: tuple[tuple[str, tuple[int, ...]], ...]


def write_documents(
    directory: str | Path, docs: Sequence[Any], output_format: str, *, prune: bool = False
) -> DocumentTree:
    """Write one file per document (``tree_name``) and check that the files, read back, hold
    exactly ``docs``: what is on disk is what was verified, or this raises OutputError."""
    from polyfence.io.files import dump, parse_text

    suffix = ".json" if output_format == "json" else ".yaml"
    groups: dict[str, list[int]] = {}
    for i, doc in enumerate(docs):
        groups.setdefault(tree_name(doc, i, suffix), []).append(i)
    files = {name: dump([docs[i] for i in idx], output_format) for name, idx in groups.items()}
    result = write_tree(directory, files, prune=prune)
    root = Path(_real(str(directory)))
    on_disk: list[Any] = []
    for name in result.written:
        path = root / name
        on_disk.extend(d.data for d in parse_text(path.read_text(encoding="utf-8"), str(path)))
    if sorted(map(_canonical_json, on_disk)) != sorted(map(_canonical_json, docs)):
        raise OutputError(
            str(directory), "the files read back differ from the documents that were verified"
        )
    shared = tuple((name, tuple(idx)) for name, idx in groups.items() if len(idx) > 1)
    return DocumentTree(result, shared)


def _canonical_json(data: Any) -> str:
    return json.dumps(data, sort_keys=True, default=str)


def _makedirs(path: Path, created: list[Path]) -> None:
    """``mkdir -p`` that records what it made, outermost first."""
    missing = []
    current = path
    while not current.exists():
        missing.append(current)
        current = current.parent
    for directory in reversed(missing):
        directory.mkdir()
        created.append(directory)


def _remove_empty_dirs(root: Path) -> None:
    for dirpath, _dirs, _files in os.walk(root, topdown=False):
        if Path(dirpath) != root:
            try:
                os.rmdir(dirpath)
            except OSError:
                continue  # not empty: it still holds files


__all__ = [
    "MARKER",
    "PROVENANCE",
    "STDOUT",
    "DocumentTree",
    "TreeResult",
    "check_directory",
    "check_file",
    "check_output_argument",
    "check_outputs",
    "format_for",
    "is_complete",
    "refuse_duplicates",
    "refuse_inputs",
    "tree_name",
    "with_provenance",
    "write_documents",
    "write_file",
    "write_tree",
]
