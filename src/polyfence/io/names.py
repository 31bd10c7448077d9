"""Object metadata as the API server checks it, in one place for every format.

A name that could leave an output directory (``/``, ``..``, NUL) or that is not a string is an
error; a name that is merely not DNS-1123 (``allow_frontend``) appears in repositories and test
suites, so it is a located warning and reading goes on (writers emit valid names).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from polyfence.errors import Diagnostic
from polyfence.model.document import Document

DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


def _unsafe(value: str) -> str | None:
    if value in (".", ".."):
        return f"{value!r} is not a name"
    for char, what in (("/", "'/'"), ("\\", "'\\'"), ("\x00", "a NUL byte"), ("%", "'%'")):
        if char in value:
            return f"{value!r} contains {what}, which the API server refuses in names"
    return None


def check_metadata(doc: Document) -> tuple[list[Diagnostic], list[Diagnostic]]:
    """Errors and warnings about one document's name, namespace, labels and annotations."""
    errors: list[Diagnostic] = []
    warnings: list[Diagnostic] = []
    data = doc.data
    meta: Any = data.get("metadata") if isinstance(data, dict) else None
    if meta is None:
        return errors, warnings
    if not isinstance(meta, dict):
        errors.append(Diagnostic(doc.source.child("metadata"), "metadata must be an object"))
        return errors, warnings
    for key in ("labels", "annotations"):
        value = meta.get(key)
        if value is not None and not (
            isinstance(value, dict)
            and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())
        ):
            errors.append(
                Diagnostic(doc.source.child("metadata", key), f"{key} must map strings to strings")
            )
    for key, pattern, limit, what in (
        ("name", DNS_SUBDOMAIN, 253, "a lowercase DNS-1123 subdomain"),
        ("namespace", DNS_LABEL, 63, "a lowercase DNS-1123 label"),
    ):
        value = meta.get(key)
        if value is None:
            continue
        where = doc.source.child("metadata", key)
        if not isinstance(value, str):
            errors.append(Diagnostic(where, f"{key} must be a string, not {type(value).__name__}"))
            continue
        unsafe = _unsafe(value)
        if unsafe is not None:
            errors.append(Diagnostic(where, unsafe))
        elif value and (len(value) > limit or not pattern.fullmatch(value)):
            warnings.append(
                Diagnostic(
                    where,
                    f"{key} {value!r} is not {what}: the API server would refuse it "
                    "(read as written; outputs use a valid name)",
                )
            )
    return errors, warnings


def same_object_twice(docs: Iterable[Document]) -> list[Diagnostic]:
    """A warning per object given more than once (same group, kind, namespace and name): a
    cluster holds one of them (the last applied); polyfence evaluates every copy, so the
    verdict is about the union, and the user must know which is meant."""
    seen: dict[tuple[str, str, str, str], Document] = {}
    out: list[Diagnostic] = []
    for doc in docs:
        meta = doc.data.get("metadata") if isinstance(doc.data, dict) else None
        if not isinstance(meta, dict) or not isinstance(meta.get("name"), str):
            continue
        version = str(doc.api_version or "")
        group = version.rpartition("/")[0]
        key = (group, str(doc.kind), str(meta.get("namespace") or ""), meta["name"])
        first = seen.setdefault(key, doc)
        if first is not doc:
            scope = f"{key[2]}/" if key[2] else ""
            out.append(
                Diagnostic(
                    doc.source,
                    f"{key[1]} {scope}{key[3]} is also defined at {first.source}: a cluster "
                    "keeps one object per kind, namespace and name (the last applied); both are "
                    "evaluated here",
                )
            )
    return out
