"""The public API is deliberate: what scripts may import, and the packaged data files."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import polyfence
from polyfence import translators

ROOT = Path(__file__).resolve().parent.parent


def test_exported_members() -> None:
    assert sorted(polyfence.__all__) == sorted(
        [
            "Bundle",
            "Comparison",
            "ConversionResult",
            "Effect",
            "FidelityReport",
            "InputError",
            "Loss",
            "LossyTranslationError",
            "PolyfenceError",
            "Relation",
            "UnsupportedFormatError",
            "UsageError",
            "__version__",
            "audit",
            "compare",
            "connectivity",
            "convert",
            "explain",
            "load",
        ]
    )
    for name in polyfence.__all__:
        assert hasattr(polyfence, name)


def test_packaged_schemas_match_the_repository() -> None:
    packaged = resources.files("polyfence.schemas")
    for path in (ROOT / "schemas").rglob("*.json"):
        rel = path.relative_to(ROOT / "schemas")
        assert (packaged / str(rel)).read_text() == path.read_text(), rel


def test_registry_is_lazy_and_complete() -> None:
    assert translators.names() == ("kubernetes", "calico", "cilium", "istio", "aws", "canonical")
    assert translators.canonical_name("K8S") == "kubernetes"
    for name in translators.names():
        tr = translators.get(name)
        assert tr.name == name and tr.capabilities
        assert tr.__class__.__module__ == f"polyfence.translators.{name}"  # one package each
