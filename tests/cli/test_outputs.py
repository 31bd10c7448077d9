"""What ``-o`` may touch: devices, FIFOs, links, modes, formats, inputs, directories as sets."""

from __future__ import annotations

import json
import os
import stat
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from polyfence.cli import cli
from polyfence.errors import OutputError
from polyfence.io import output
from polyfence.io.output import MARKER, PROVENANCE, is_complete, tree_name, write_documents

POLICY = """apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {{name: {name}, namespace: {ns}}}
spec:
  podSelector: {{matchLabels: {{app: web}}}}
  ingress: [{{from: [{{podSelector: {{matchLabels: {{app: fe}}}}}}], ports: [{{port: 80}}]}}]
"""


def policy(name: str = "web", ns: str = "prod") -> str:
    return POLICY.format(name=name, ns=ns)


def run(*args: str, input: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), input=input)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def src(tmp_path: Path) -> Path:
    path = tmp_path / "in" / "policy.yaml"
    path.parent.mkdir()
    path.write_text(policy())
    return path


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("polyfence: error:")]


# -- what kind of path -o names ---------------------------------------------------------------


@pytest.mark.skipif(os.geteuid() != 0, reason="only root could replace /dev/null")
def test_dev_null_stays_a_character_device(src: Path) -> None:
    code, _, err = run("convert", "--to", "k8s", str(src), "-o", "/dev/null")
    assert code == 0, err
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_fifo_is_written_into_not_replaced(src: Path, tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received: list[str] = []

    def reader() -> None:
        with open(fifo, encoding="utf-8") as handle:
            received.append(handle.read())

    thread = threading.Thread(target=reader)
    thread.start()
    code, _, err = run("convert", "--to", "k8s", str(src), "-o", str(fifo))
    thread.join(timeout=30)
    assert code == 0, err
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert yaml.safe_load(received[0])["metadata"]["name"] == "web"


def test_symlink_is_followed_and_stays_a_link(src: Path, tmp_path: Path) -> None:
    target = tmp_path / "real.yaml"
    target.write_text("old\n")
    link = tmp_path / "link.yaml"
    link.symlink_to(target)
    code, _, err = run("convert", "--to", "k8s", str(src), "-o", str(link))
    assert code == 0, err
    assert link.is_symlink()
    assert yaml.safe_load(target.read_text())["kind"] == "NetworkPolicy"


@pytest.mark.parametrize("where", ["file-under-a-file", "dir-under-a-file"])
def test_unwritable_output_is_one_line_exit_3_nothing_written(
    src: Path, tmp_path: Path, where: str
) -> None:
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    (tmp_path / "adir").mkdir()
    target = blocker / ("out.yaml" if where == "file-under-a-file" else "out/")
    report = tmp_path / "adir" / "report.json"
    code, out, err = run(
        "convert", "--to", "k8s", str(src), "-o", str(target), "--report", str(report)
    )
    assert code == 3, err
    (line,) = error_lines(err)
    assert str(target).rstrip("/") in line and "Traceback" not in err
    assert out == "" and not report.exists() and blocker.read_text() == "x"
    assert list((tmp_path / "adir").iterdir()) == []


def test_connectivity_output_naming_a_directory_is_exit_3(src: Path, tmp_path: Path) -> None:
    code, _, err = run("connectivity", str(src), "-o", str(tmp_path))
    assert code == 3
    assert "is a directory" in error_lines(err)[0]


# -- permissions ------------------------------------------------------------------------------


def test_new_file_gets_the_umask_and_existing_file_keeps_its_mode(
    src: Path, tmp_path: Path
) -> None:
    new = tmp_path / "new.yaml"
    old_mask = os.umask(0o027)
    try:
        code, _, err = run("convert", "--to", "k8s", str(src), "-o", str(new))
    finally:
        os.umask(old_mask)
    assert code == 0, err
    assert stat.S_IMODE(new.stat().st_mode) == 0o640
    existing = tmp_path / "existing.yaml"
    existing.write_text("old\n")
    existing.chmod(0o604)
    code, _, err = run("convert", "--to", "k8s", str(src), "-o", str(existing))
    assert code == 0, err
    assert stat.S_IMODE(existing.stat().st_mode) == 0o604
    assert "NetworkPolicy" in existing.read_text()


# -- formats ----------------------------------------------------------------------------------


@pytest.mark.parametrize("word", ["json", "yaml"])
def test_dash_o_format_word_is_a_usage_error(
    src: Path, tmp_path: Path, word: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = run("convert", "--to", "k8s", str(src), "-o", word)
    assert code == 2
    assert f"did you mean --output-format {word}?" in err
    assert not (tmp_path / word).exists()


def test_suffix_picks_the_format_unless_the_option_says_otherwise(
    src: Path, tmp_path: Path
) -> None:
    as_json = tmp_path / "out.json"
    code, _, err = run("convert", "--to", "k8s", str(src), "-o", str(as_json))
    assert code == 0, err
    assert json.loads(as_json.read_text())["metadata"]["name"] == "web"
    code, _, err = run("convert", "--to", "k8s", str(as_json))  # polyfence reads it back
    assert code == 0, err
    forced = tmp_path / "forced.json"
    code, _, _ = run("convert", "--to", "k8s", str(src), "-o", str(forced), "--format", "yaml")
    assert code == 0
    assert yaml.safe_load(forced.read_text())["kind"] == "NetworkPolicy"
    assert not forced.read_text().lstrip().startswith("{")
    csv_out = tmp_path / "conn.csv"
    code, _, err = run("connectivity", str(src), "-o", str(csv_out))
    assert code == 0, err
    assert csv_out.read_text().startswith("src,dst,protocol,ports")


def test_dash_is_standard_output(src: Path) -> None:
    code, out, err = run("convert", "--to", "k8s", str(src), "-o", "-", "--output-format", "json")
    assert code == 0, err
    assert json.loads(out)["kind"] == "NetworkPolicy"


def test_report_needs_a_format_from_the_option_or_the_suffix(tmp_path: Path) -> None:
    code, _, err = run("report", str(tmp_path / "r.json"))
    assert code == 2 and "--output-format" in err


# -- inputs are never modified ----------------------------------------------------------------


def test_output_naming_an_input_is_refused_and_the_input_unchanged(
    src: Path, tmp_path: Path
) -> None:
    before = src.read_text()
    link = tmp_path / "alias.yaml"
    link.symlink_to(src)
    cases = [
        ("-o", str(src)),  # the input file
        ("-o", str(link)),  # a link to it
        ("-o", str(src.parent / "other.yaml")),  # would be read from the input directory
        ("-o", str(src.parent) + "/"),  # a directory output over the input directory
        ("-o", str(tmp_path) + "/"),  # a directory output containing it
        ("--report", str(src)),
    ]
    for option, target in cases:
        code, _, err = run("convert", "--to", "k8s", str(src.parent), option, target)
        assert code == 2, (target, err)
        assert "inputs are never modified" in err
    assert src.read_text() == before
    assert sorted(p.name for p in src.parent.iterdir()) == ["policy.yaml"]


def test_two_options_naming_one_file_are_refused(src: Path, tmp_path: Path) -> None:
    same = tmp_path / "same.yaml"
    code, _, err = run("convert", "--to", "k8s", str(src), "-o", str(same), "--report", str(same))
    assert code == 2 and "writes there too" in err
    assert not same.exists()


# -- directories ------------------------------------------------------------------------------


def test_clashing_flat_names_both_land_on_disk(tmp_path: Path) -> None:
    src = tmp_path / "in.yaml"
    src.write_text(policy("c", "a-b") + "---\n" + policy("b-c", "a"))
    out_dir = tmp_path / "out"
    code, _, err = run("convert", "--to", "k8s", str(src), "-o", f"{out_dir}/")
    assert code == 0, err
    files = sorted(p.relative_to(out_dir).as_posix() for p in out_dir.rglob("*.yaml"))
    assert files == ["a-b/NetworkPolicy-c.yaml", "a/NetworkPolicy-b-c.yaml"]
    names = {yaml.safe_load((out_dir / f).read_text())["metadata"]["name"] for f in files}
    assert names == {"c", "b-c"}
    assert is_complete(out_dir)


def test_documents_carry_their_source_and_read_back_equivalent(src: Path, tmp_path: Path) -> None:
    out_dir = tmp_path / "out"
    code, _, err = run("convert", "--to", "calico", str(src), "-o", f"{out_dir}/")
    assert code == 0, err
    (written,) = out_dir.rglob("*.yaml")
    doc = yaml.safe_load(written.read_text())
    assert doc["metadata"]["annotations"][PROVENANCE] == f"{src}[0]:/"
    code, _, err = run("compare", str(src), str(out_dir))
    assert code == 0, err


def test_stale_files_are_reported_and_pruned(src: Path, tmp_path: Path) -> None:
    out_dir = tmp_path / "out"
    (out_dir / "old").mkdir(parents=True)
    (out_dir / "old" / "gone.yaml").write_text("x")
    (out_dir / "notes.txt").write_text("y")
    code, _, err = run("convert", "--to", "k8s", str(src), "-o", str(out_dir))
    assert code == 0, err
    assert "2 files in" in err and "notes.txt, old/gone.yaml" in err and "--prune" in err
    assert (out_dir / "notes.txt").exists()
    code, _, err = run("convert", "--to", "k8s", str(src), "-o", str(out_dir), "--prune")
    assert code == 0, err
    assert "removed 2 files" in err
    assert sorted(p.relative_to(out_dir).as_posix() for p in out_dir.rglob("*")) == [
        MARKER,
        "prod",
        "prod/NetworkPolicy-web.yaml",
    ]
    assert (out_dir / MARKER).read_text() == "prod/NetworkPolicy-web.yaml\n"


def test_prune_needs_a_directory_output(src: Path, tmp_path: Path) -> None:
    code, _, err = run(
        "convert", "--to", "k8s", str(src), "-o", str(tmp_path / "f.yaml"), "--prune"
    )
    assert code == 2 and "--prune needs -o DIR" in err


# -- names never leave the directory ----------------------------------------------------------

HOSTILE = ["../../X", "/etc", "..", ".", "", "a/b", "a\0b", "\\x", ".hidden", "_cluster", "é" * 300]


def test_tree_names_stay_inside_and_are_injective(tmp_path: Path) -> None:
    docs: list[dict[str, Any]] = [
        {"kind": kind, "metadata": {"name": name, "namespace": ns}}
        for kind in ("NetworkPolicy", "../Kind", "A-B")
        for name in [*HOSTILE, "ok"]
        for ns in [*HOSTILE[:4], *HOSTILE[5:], None]  # "" is no namespace, as None
    ]
    names = [tree_name(doc, i, ".yaml") for i, doc in enumerate(docs)]
    assert len(set(names)) == len(docs)
    root = tmp_path / "out"
    tree = write_documents(root, docs, "yaml")
    assert tree.shared == ()
    outside = {p for p in tmp_path.rglob("*")} - {root} - set(root.rglob("*"))
    assert outside == set()
    for name in names:
        assert ".." not in name.split("/") and not name.startswith("/") and "\0" not in name
        assert (root / name).resolve().is_relative_to(root.resolve())


def test_same_kind_namespace_and_name_share_a_file_and_both_are_kept(tmp_path: Path) -> None:
    doc = {"kind": "NetworkPolicy", "metadata": {"name": "x", "namespace": "n"}, "spec": {}}
    other = {**doc, "spec": {"podSelector": {}}}
    tree = write_documents(tmp_path / "out", [doc, other], "yaml")
    assert tree.shared == (("n/NetworkPolicy-x.yaml", (0, 1)),)
    on_disk = list(yaml.safe_load_all((tmp_path / "out" / "n/NetworkPolicy-x.yaml").read_text()))
    assert on_disk == [doc, other]


# -- a directory is written as a set ----------------------------------------------------------


def _failing_nth(real: Any, n: int) -> Any:
    calls = {"count": 0}

    def fail(*args: Any, **kwargs: Any) -> Any:
        calls["count"] += 1
        if calls["count"] == n:
            raise OSError(28, "No space left on device")
        return real(*args, **kwargs)

    return fail


def _docs(count: int, tag: str) -> list[dict[str, Any]]:
    return [
        {"kind": "NetworkPolicy", "metadata": {"name": f"p{i}", "namespace": "n"}, "tag": tag}
        for i in range(count)
    ]


def test_a_failure_while_staging_leaves_the_previous_set_intact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "out"
    write_documents(root, _docs(5, "old"), "yaml")
    before = {p: p.read_text() for p in root.rglob("*") if p.is_file()}
    monkeypatch.setattr(output, "_stage", _failing_nth(output._stage, 3))
    with pytest.raises(OutputError, match="No space left"):
        write_documents(root, _docs(5, "new"), "yaml")
    assert {p: p.read_text() for p in root.rglob("*") if p.is_file()} == before
    assert is_complete(root)


def test_a_set_interrupted_part_way_is_recognisable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "out"
    write_documents(root, _docs(5, "old"), "yaml")
    monkeypatch.setattr(output.os, "replace", _failing_nth(os.replace, 3))
    with pytest.raises(OutputError, match="incomplete"):
        write_documents(root, _docs(5, "new"), "yaml")
    assert not is_complete(root)
    assert not [p for p in root.rglob("*") if output.TMP_TAG in p.name]  # no temp files left
    monkeypatch.undo()
    write_documents(root, _docs(5, "new"), "yaml")
    assert is_complete(root)


def test_a_fresh_directory_is_removed_when_staging_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(output, "_stage", _failing_nth(output._stage, 2))
    with pytest.raises(OutputError):
        write_documents(tmp_path / "new" / "out", _docs(3, "x"), "json")
    assert list(tmp_path.iterdir()) == []


# -- one flag name for one thing --------------------------------------------------------------


def test_format_and_output_format_are_one_option(src: Path) -> None:
    for flag in ("--format", "--output-format"):
        code, out, err = run("connectivity", str(src), flag, "json")
        assert code == 0, err
        assert "connections" in json.loads(out)
        code, out, _ = run("compare", str(src), str(src), flag, "json")
        assert code == 0 and json.loads(out)["relation"] == "equivalent"


def test_aws_profile_is_renamed_and_the_old_spelling_warns() -> None:
    args = ["aws", "pull", "--endpoint-url", "http://127.0.0.1:9", "--region", "us-east-1"]
    _, _, err = run(*args, "--profile", "polyfence-test-missing")
    assert "--profile on aws verbs is deprecated, use --aws-profile" in err
    assert "polyfence-test-missing" in err  # the value still reaches the AWS client
    _, _, err = run(*args, "--aws-profile", "polyfence-test-missing")
    assert "deprecated" not in err and "polyfence-test-missing" in err
