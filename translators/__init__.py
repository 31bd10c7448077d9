"""Registry of format translators: an explicit table resolved lazily, no import side effects.

To add a format, write a package ``translators/<name>/`` whose ``__init__`` holds a class implementing
``polyfence.translation.Translator`` and add one line to ``_BUILTIN``.
"""

from __future__ import annotations

import importlib
from functools import cache

from polyfence.errors import UnsupportedFormatError
from polyfence.model.document import Document
from polyfence.translation import Translator

_BUILTIN: dict[str, str] = {
    "kubernetes": "polyfence.translators.kubernetes:KubernetesTranslator",
    "calico": "polyfence.translators.calico:CalicoTranslator",
    "cilium": "polyfence.translators.cilium:CiliumTranslator",
    "istio": "polyfence.translators.istio:IstioTranslator",
    "aws": "polyfence.translators.aws:AwsSecurityGroupTranslator",
    "canonical": "polyfence.translators.canonical:CanonicalTranslator",
}
_ALIASES: dict[str, str] = {"k8s": "kubernetes"}


def names() -> tuple[str, ...]:
    """Registered format names."""
    return tuple(_BUILTIN)


def canonical_name(name: str) -> str:
    key = _ALIASES.get(name.lower(), name.lower())
    if key not in _BUILTIN:
        known = ", ".join(sorted([*_BUILTIN, *_ALIASES]))
        raise UnsupportedFormatError(f"unknown format {name!r} (known: {known})")
    return key


@cache
def get(name: str) -> Translator:
    """The translator for a format name or alias."""
    module_name, _, attr = _BUILTIN[canonical_name(name)].partition(":")
    cls = getattr(importlib.import_module(module_name), attr)
    return cls()  # type: ignore[no-any-return]


def detect(doc: Document) -> str | None:
    """The format that reads this document, or None for cluster objects and unknown kinds."""
    for name in _BUILTIN:
        if get(name).accepts(doc):
            return name
    return None
