"""tests/data is what SOURCES.md says it is: every file listed, none unlisted, schemas unchanged.

The corpus and upstream schemas are third-party data copied into the repository; these checks
keep the copies and their provenance from drifting apart (a file added without its source and
licence, a schema edited in place, a row left behind for a removed file).
"""

from __future__ import annotations

import hashlib
import re

import pytest

from tests.conftest import DATA, corpus_files

SOURCES = (DATA / "SOURCES.md").read_text()
KINDS = ("k8s", "calico", "cilium", "istio", "aws")


def table_rows(heading_prefix: str) -> dict[str, list[str]]:
    """First-column value -> cells of every table row under headings starting with the prefix."""
    rows: dict[str, list[str]] = {}
    inside = False
    for line in SOURCES.splitlines():
        if line.startswith("#"):
            inside = line.lstrip("#").strip().startswith(heading_prefix)
        elif inside and line.startswith("| ") and not line.startswith("|---"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            rows[cells[0]] = cells
    return rows


@pytest.mark.parametrize("kind", KINDS)
def test_every_corpus_file_has_exactly_its_provenance_row(kind: str) -> None:
    listed = set(table_rows(f"{kind}/ ")) - {"file"}
    present = {p.name for p in (DATA / "corpus" / kind).iterdir()}
    assert present == listed
    assert corpus_files(kind, "*.*")  # the parametrised corpus tests collect from these


def test_every_upstream_schema_is_listed_with_its_unchanged_digest() -> None:
    rows = table_rows("Files") | table_rows("SARIF")
    rows.pop("file")
    folder = DATA / "upstream-schemas"
    present = {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}
    assert present == set(rows)
    for name in sorted(present):
        (digest,) = re.findall(r"`([0-9a-f]{64})`", " ".join(rows[name]))
        assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == digest, name


def test_only_corpus_schemas_and_sources_in_the_data_folder() -> None:
    assert {p.name for p in DATA.iterdir()} == {"SOURCES.md", "corpus", "upstream-schemas"}
    assert {p.name for p in (DATA / "corpus").iterdir()} == set(KINDS)


def test_corpus_files_refuses_an_empty_selection() -> None:
    with pytest.raises(FileNotFoundError, match="no corpus files"):
        corpus_files("k8s", "*.nothing")
    with pytest.raises(FileNotFoundError, match="no corpus files"):
        corpus_files("no-such-format")
