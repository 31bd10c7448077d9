"""Compliance frameworks as data: the packaged YAML files, validated and frozen.

A framework maps its requirement ids to check ids (``NSEG-…``), each mapping with an
interpretation note saying what the check proves for that requirement and what it does not.
Requirements no check can evidence carry a ``manual`` note for the auditor instead (or as well).
Checks never know frameworks; this module is the only place the two meet.

Files live in ``compliance/frameworks/<id>.yaml`` (package data of ``polyfence.compliance``)
and are validated against ``schemas/framework.schema.json`` and against ``CHECK_IDS``; every
problem found is reported at once as an ``InputError`` naming the file and JSON pointer.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from types import MappingProxyType
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from polyfence.compliance.checks import CHECK_IDS
from polyfence.errors import Diagnostic, InputError
from polyfence.model.provenance import SourceRef

__all__ = [
    "FRAMEWORK_IDS",
    "CheckMapping",
    "Framework",
    "Requirement",
    "framework_schema",
    "load_framework",
    "load_frameworks",
    "parse_framework",
]

# Stable ids (CLI --framework values, report keys); one file per id. Explicit, never globbed.
FRAMEWORK_IDS: tuple[str, ...] = (
    "cis-kubernetes",
    "cis-eks",
    "cis-gke",
    "cis-aks",
    "nsa-cisa",
    "pci-dss-4",
    "nist-800-53",
    "nist-800-190",
    "soc2",
    "iso-27001",
    "cis-aws",
)

_SCHEMA_FILE = "framework.schema.json"
_FRAMEWORK_DIR = "frameworks"


@dataclass(frozen=True, slots=True)
class CheckMapping:
    """One check offered as evidence for a requirement, with how to read it."""

    check_id: str
    interpretation: str


@dataclass(frozen=True, slots=True)
class Requirement:
    """One framework requirement; ``attributes`` are (key, value) pairs in file order.

    Pairs rather than a dict keep the dataclass hashable; ``attribute_map`` gives a read-only view.
    """

    id: str
    title: str
    section: str
    attributes: tuple[tuple[str, str], ...] = ()
    checks: tuple[CheckMapping, ...] = ()
    manual: str | None = None

    @property
    def check_ids(self) -> tuple[str, ...]:
        return tuple(m.check_id for m in self.checks)

    @property
    def is_manual_only(self) -> bool:
        """No check gives evidence: the outcome is always ``manual``."""
        return not self.checks

    @property
    def attribute_map(self) -> Mapping[str, str]:
        return MappingProxyType(dict(self.attributes))

    def attribute(self, key: str, default: str | None = None) -> str | None:
        return self.attribute_map.get(key, default)


@dataclass(frozen=True, slots=True)
class Framework:
    """A framework edition and the requirements of it that polyfence covers."""

    id: str
    name: str
    version: str
    title: str
    source: str
    description: str
    requirements: tuple[Requirement, ...]

    @property
    def check_ids(self) -> tuple[str, ...]:
        """Every check id the framework refers to, first appearance first."""
        return tuple(dict.fromkeys(c for r in self.requirements for c in r.check_ids))

    def requirement(self, requirement_id: str) -> Requirement:
        """The requirement with that id (``KeyError`` if the framework has none)."""
        for req in self.requirements:
            if req.id == requirement_id:
                return req
        raise KeyError(f"{self.id} has no requirement {requirement_id!r}")

    def requirements_for(self, check_id: str) -> tuple[Requirement, ...]:
        """The requirements a check's outcome counts towards (reports group findings by these)."""
        return tuple(r for r in self.requirements if check_id in r.check_ids)


# --------------------------------------------------------------------------- schema


@cache
def framework_schema() -> dict[str, Any]:
    """The framework JSON schema (cached; do not mutate)."""
    text = (resources.files("polyfence.schemas") / _SCHEMA_FILE).read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@cache
def _validator() -> Draft202012Validator:
    return Draft202012Validator(framework_schema())


def _message(error: ValidationError) -> str:
    """The schema's own ``errorMessage`` where it has one: generic anyOf text dumps the instance."""
    custom = error.schema.get("errorMessage") if isinstance(error.schema, Mapping) else None
    return custom if isinstance(custom, str) else error.message


def _error_key(error: ValidationError) -> tuple[tuple[tuple[int, int | str], ...], str]:
    path = tuple((0, t) if isinstance(t, int) else (1, str(t)) for t in error.absolute_path)
    return path, error.message


# --------------------------------------------------------------------------- parsing


def parse_framework(data: object, source_name: str, expected_id: str | None = None) -> Framework:
    """Validate a parsed framework document and freeze it.

    ``source_name`` names the file in diagnostics. Raises ``InputError`` listing every schema
    violation, or (once the shape is right) every duplicate id and unknown check id.
    """
    root = SourceRef(file=source_name)
    schema_errors = sorted(_validator().iter_errors(data), key=_error_key)
    if schema_errors:
        raise InputError(
            Diagnostic(root.child(*e.absolute_path), _message(e)) for e in schema_errors
        )
    assert isinstance(data, dict)  # guaranteed by the schema

    diagnostics: list[Diagnostic] = []
    if expected_id is not None and data["id"] != expected_id:
        diagnostics.append(
            Diagnostic(
                root.child("id"),
                f"framework id {data['id']!r} does not match the file ({expected_id!r})",
            )
        )
    known = frozenset(CHECK_IDS)
    seen_requirements: set[str] = set()
    requirements: list[Requirement] = []
    for i, raw in enumerate(data["requirements"]):
        where = root.child("requirements", i)
        if raw["id"] in seen_requirements:
            diagnostics.append(
                Diagnostic(where.child("id"), f"duplicate requirement id {raw['id']!r}")
            )
        seen_requirements.add(raw["id"])
        seen_checks: set[str] = set()
        for j, mapping in enumerate(raw.get("checks") or ()):
            check_id = mapping["id"]
            if check_id not in known:
                diagnostics.append(
                    Diagnostic(where.child("checks", j, "id"), f"unknown check id {check_id!r}")
                )
            elif check_id in seen_checks:
                diagnostics.append(
                    Diagnostic(where.child("checks", j, "id"), f"check {check_id} is mapped twice")
                )
            seen_checks.add(check_id)
        requirements.append(_requirement(raw))
    if diagnostics:
        raise InputError(diagnostics)
    return Framework(
        id=data["id"],
        name=data["name"],
        version=data["version"],
        title=data["title"],
        source=data["source"],
        description=data["description"].strip(),
        requirements=tuple(requirements),
    )


def _requirement(raw: Mapping[str, Any]) -> Requirement:
    manual = raw.get("manual")
    return Requirement(
        id=raw["id"],
        title=raw["title"],
        section=raw["section"],
        attributes=tuple((k, v) for k, v in (raw.get("attributes") or {}).items()),
        checks=tuple(
            CheckMapping(m["id"], m["interpretation"].strip()) for m in raw.get("checks") or ()
        ),
        manual=manual.strip() if manual is not None else None,
    )


# --------------------------------------------------------------------------- loading


def _unknown(ids: Iterable[str]) -> ValueError:
    return ValueError(
        f"unknown framework id(s): {', '.join(ids)}; known: {', '.join(FRAMEWORK_IDS)}"
    )


@cache
def load_framework(framework_id: str) -> Framework:
    """The packaged framework with that id, validated (cached: the files never change at run time).

    Raises ``ValueError`` for an id not in ``FRAMEWORK_IDS`` and ``InputError`` for a broken file.
    """
    if framework_id not in FRAMEWORK_IDS:
        raise _unknown([framework_id])
    name = f"compliance/{_FRAMEWORK_DIR}/{framework_id}.yaml"
    path = resources.files("polyfence.compliance") / _FRAMEWORK_DIR / f"{framework_id}.yaml"
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise InputError([Diagnostic(SourceRef(file=name), "framework file is missing")]) from exc
    except yaml.YAMLError as exc:
        raise InputError([Diagnostic(SourceRef(file=name), f"not valid YAML: {exc}")]) from exc
    return parse_framework(data, name, expected_id=framework_id)


def load_frameworks(ids: Iterable[str] | None = None) -> tuple[Framework, ...]:
    """The frameworks named (all of them for ``None``), in the order given, duplicates dropped.

    Every unknown id is reported in one ``ValueError`` before anything is loaded.
    """
    wanted = FRAMEWORK_IDS if ids is None else tuple(dict.fromkeys(ids))
    unknown = [i for i in wanted if i not in FRAMEWORK_IDS]
    if unknown:
        raise _unknown(unknown)
    return tuple(load_framework(i) for i in wanted)
