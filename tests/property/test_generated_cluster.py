"""The benchmark generator's realistic clusters, checked (not timed): engine vs verdicts, round trip."""

from __future__ import annotations

import importlib.util
import random
from pathlib import Path
from types import ModuleType

import pytest

from polyfence import api
from polyfence.model.document import Document
from polyfence.model.provenance import SourceRef
from polyfence.semantics.compare import Relation
from polyfence.semantics.engine import Connectivity, Universe
from polyfence.semantics.verdict import Connection, verdict

ROOT = Path(__file__).resolve().parents[2]


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "pf_generate", ROOT / "benchmarks" / "generate.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def bundle() -> api.Bundle:
    cluster, policies = _generator().generate(pods=300, policies=80, namespaces=8, seed=7)
    docs = [Document(d, SourceRef("gen", i)) for i, d in enumerate(cluster + policies)]
    return api.load(docs)


def test_engine_agrees_with_verdicts_on_sampled_pairs(bundle: api.Bundle) -> None:
    inv, ps = bundle.inventory, bundle.policies
    universe = Universe(inv, [ps])
    conn = Connectivity(universe, ps)
    owner = {id(m): cls.index for cls in universe.classes for m in cls.members}
    rng = random.Random(3)
    pods = list(inv.pods)
    probes = [(6, p) for p in (53, 80, 443, 5432, 8080, 9090, 10250)] + [(17, 53), (132, 3868)]
    for _ in range(400):
        src, dst = rng.sample(pods, 2)
        allowed = conn.allowed(owner[id(src)], owner[id(dst)])
        for proto, port in probes:
            expected = verdict(ps, Connection(src, dst, proto, port), inv).allowed
            assert allowed.contains(proto, port) == expected, (src.ref, dst.ref, proto, port)


def test_round_trip_is_exact_and_equivalent(bundle: api.Bundle) -> None:
    result = api.convert(bundle, "kubernetes", exact=True)
    assert result.report.verification is not None
    assert result.report.verification.relation == "equivalent"
    assert (
        api.compare(bundle.policies, result.policies, inventory=bundle.inventory).relation
        is Relation.EQUIVALENT
    )
