"""Report renderers: every format from the same validated report dict (the JSON form).

``sample_report.json`` is hand-written: two frameworks, checks in every status, evidence with
files, pointers and connections, a waived finding, waivers in every state, and hostile strings
(markup, ``|``, quotes, newlines, formula prefixes, unicode) to prove each format escapes them.
"""

from __future__ import annotations

import copy
import csv
import io
import json
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft4Validator, Draft202012Validator

from polyfence.compliance.renderers import FORMATS, SUFFIXES, csv_report, render, renderer, svg
from polyfence.compliance.renderers._common import SECURITY_SEVERITY
from polyfence.compliance.renderers.markdown import cell

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = Path(__file__).with_name("sample_report.json")
HOSTILE = "<script>alert(1)</script>"
SECTION_IDS = ("summary", "frameworks", "findings", "connectivity", "exposure", "waivers", "scope")


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SAMPLE.read_text(encoding="utf-8"))
    return data


def _findings(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [f for c in report["checks"] for f in c["findings"]]


def big_report(report: dict[str, Any], per_check: int) -> dict[str, Any]:
    """The sample with ``per_check`` findings on every failing check (for caps and timing)."""
    big = copy.deepcopy(report)
    for check in big["checks"]:
        if check["status"] != "fail":
            continue
        template = next(f for f in check["findings"] if f["status"] == "fail")
        check["findings"] = [
            {
                **template,
                "id": f"{i:016x}{check['id'][-2:]}",
                "resource": f"ns{i % 97}/w{i}[Pod]",
                "waiver": None,
            }
            for i in range(per_check)
        ]
    return big


# -- the contract ------------------------------------------------------------------------------


def test_sample_validates_against_report_schema(report: dict[str, Any]) -> None:
    schema = json.loads((ROOT / "schemas" / "report.schema.json").read_text(encoding="utf-8"))
    validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    assert [e.message for e in validator.iter_errors(report)] == []
    statuses = {c["status"] for c in report["checks"]}
    assert {"pass", "fail", "unknown", "not_applicable", "error"} <= statuses
    assert {w["state"] for w in report["waivers"]} == {"active", "expired", "unused", "incomplete"}


def test_registry_is_explicit_and_lazy() -> None:
    assert FORMATS == tuple(SUFFIXES) == ("html", "md", "json", "sarif", "junit", "csv")
    assert SUFFIXES["junit"] == ".xml" and SUFFIXES["sarif"] == ".sarif"
    with pytest.raises(ValueError, match="known: html, md"):
        renderer("pdf")
    code = (
        "import sys, polyfence.compliance.renderers as r; "
        "loaded = [m for m in sys.modules if m.startswith(r.__name__ + '.')]; "
        "assert not loaded, loaded"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


@pytest.mark.parametrize("fmt", FORMATS)
def test_saved_report_rerenders_identically(report: dict[str, Any], fmt: str) -> None:
    out = render(report, fmt)
    assert out.endswith("\n")
    saved = json.loads(render(report, "json"))
    assert render(saved, fmt) == out


@pytest.mark.parametrize("fmt", FORMATS)
def test_empty_report_renders(report: dict[str, Any], fmt: str) -> None:
    empty = copy.deepcopy(report)
    empty.update(checks=[], frameworks=[], waivers=[])
    empty["connectivity"] = {
        "namespaces": [],
        "matrix": [],
        "internet_ingress": [],
        "internet_egress": [],
    }
    empty["scope"].update(
        inputs=[], namespaces=[], excluded_namespaces=[], enforcement=[], counts={}
    )
    out = render(empty, fmt)
    assert out.endswith("\n")
    if fmt == "junit":
        assert ET.fromstring(out.encode("utf-8")).get("tests") == "0"


def test_json_is_stable(report: dict[str, Any]) -> None:
    out = render(report, "json")
    assert json.loads(out) == report
    assert out.startswith('{\n  "checks": [') and out.endswith("}\n")
    shuffled = dict(reversed(list(report.items())))
    assert render(shuffled, "json") == out
    assert HOSTILE in out  # JSON is data: escaping is the reader's job


# -- SARIF -------------------------------------------------------------------------------------


def _sarif(report: dict[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(render(report, "sarif"))
    return data


def test_sarif_validates_against_upstream_schema(report: dict[str, Any], data: Path) -> None:
    schema = json.loads((data / "upstream-schemas/sarif/sarif-schema-2.1.0.json").read_text())
    errors = list(Draft4Validator(schema).iter_errors(_sarif(report)))
    assert [f"{list(e.absolute_path)}: {e.message}" for e in errors] == []
    big = big_report(report, 50)
    assert not list(Draft4Validator(schema).iter_errors(_sarif(big)))


def test_sarif_rules_one_per_check(report: dict[str, Any]) -> None:
    run = _sarif(report)["runs"][0]
    assert run["tool"]["driver"]["name"] == "polyfence"
    rules = run["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == [c["id"] for c in report["checks"]]
    for rule, check in zip(rules, report["checks"], strict=True):
        sev = rule["properties"]["security-severity"]
        assert isinstance(sev, str) and float(sev) == float(SECURITY_SEVERITY[check["severity"]])
        assert "security" in rule["properties"]["tags"] and len(rule["properties"]["tags"]) <= 20
    k03 = rules[[r["id"] for r in rules].index("NSEG-K03")]
    assert {"cis-kubernetes:5.3.2", "pci-dss-4:1.3.1"} <= set(k03["properties"]["tags"])
    assert k03["defaultConfiguration"]["level"] == "error"


def test_sarif_results_are_failing_findings_with_waivers_suppressed(report: dict[str, Any]) -> None:
    run = _sarif(report)["runs"][0]
    failing = [f for f in _findings(report) if f["status"] == "fail"]
    results = run["results"]
    assert [r["partialFingerprints"]["polyfenceFindingId/v1"] for r in results] == [
        f["id"] for f in failing
    ]
    rules = run["tool"]["driver"]["rules"]
    level = {
        "critical": "error",
        "high": "error",
        "medium": "warning",
        "low": "note",
        "info": "note",
    }
    for result, finding in zip(results, failing, strict=True):
        assert result["ruleId"] == finding["check_id"] == rules[result["ruleIndex"]]["id"]
        assert result["level"] == level[finding["severity"]]
        if finding["waiver"]:
            (sup,) = result["suppressions"]
            assert sup["kind"] == "external" and finding["waiver"] in sup["justification"]
        else:
            assert "suppressions" not in result
    assert sum("suppressions" in r for r in results) == report["summary"]["waived"] == 1
    notes = run["invocations"][0]["toolExecutionNotifications"]
    assert {n["associatedRule"]["id"] for n in notes} == {"NSEG-K01", "NSEG-K11"}
    assert run["invocations"][0]["executionSuccessful"] is False  # NSEG-K11 errored


def test_sarif_locations(report: dict[str, Any]) -> None:
    results = {r["properties"]["resource"]: r for r in _sarif(report)["runs"][0]["results"]}
    hostile = results[f"legacy/{HOSTILE}[Pod]"]
    (loc,) = hostile["locations"]
    art = loc["physicalLocation"]["artifactLocation"]
    assert art == {"uri": "manifests/legacy/np.yaml", "uriBaseId": "%SRCROOT%"}  # backslashes fixed
    assert loc["physicalLocation"]["region"]["startLine"] == 1
    assert (
        loc["logicalLocations"][0]["fullyQualifiedName"]
        == "NetworkPolicy/legacy/allow|all#/spec/ingress/0"
    )
    assert loc["properties"]["pointer"] == "/spec/ingress/0"
    assert "/spec/ingress/0" in hostile["message"]["text"]
    related = hostile["relatedLocations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    assert related == "k8s/legacy/Pod/%3Cscript%3Ealert%281%29%3C%2Fscript%3E.yaml"
    live = results["payments/api[Deployment]"]["locations"][0]
    assert live["physicalLocation"]["artifactLocation"]["uri"] == "k8s/payments/Service/api-lb.yaml"
    assert live["properties"]["pointer"] == "/spec/ports/0"
    for result in results.values():
        for location in result["locations"]:
            uri = location["physicalLocation"]["artifactLocation"]["uri"]
            assert "\\" not in uri and not uri.startswith("/")


# -- JUnit -------------------------------------------------------------------------------------


def test_junit_layout_and_counts(report: dict[str, Any]) -> None:
    root = ET.fromstring(render(report, "junit").encode("utf-8"))
    suites = root.findall("testsuite")
    assert [s.get("id") for s in suites] == ["cis-kubernetes", "pci-dss-4", "checks"]
    for suite in suites:
        cases = suite.findall("testcase")
        assert int(suite.get("tests", "")) == len(cases)
        for tag, attr in (("failure", "failures"), ("error", "errors"), ("skipped", "skipped")):
            assert int(suite.get(attr, "")) == sum(c.find(tag) is not None for c in cases)
    for attr in ("tests", "failures", "errors", "skipped"):
        assert int(root.get(attr, "")) == sum(int(s.get(attr, "")) for s in suites)
    cis, _, checks = suites
    assert (cis.get("tests"), cis.get("failures"), cis.get("errors"), cis.get("skipped")) == (
        "5",
        "2",
        "1",
        "1",
    )
    assert (
        checks.get("tests"),
        checks.get("failures"),
        checks.get("errors"),
        checks.get("skipped"),
    ) == ("9", "5", "2", "1")
    manual = next(c for c in cis.iter("testcase") if c.get("name", "").startswith("5.7.1"))
    assert manual.find("skipped") is not None
    k03 = next(c for c in checks.iter("testcase") if c.get("name", "").startswith("NSEG-K03"))
    failure = k03.find("failure")
    assert failure is not None and "1 failing finding(s), 1 waived" in failure.get("message", "")
    text = failure.text or ""
    assert HOSTILE in text and "/spec/ingress/0" in text and "allows all peers" in text
    assert "[waived: W-001]" in text


def test_junit_caps_evidence_and_strips_illegal_xml(report: dict[str, Any]) -> None:
    big = big_report(report, 450)
    big["checks"][0]["detail"] = "bell \x07 and nul \x00"
    root = ET.fromstring(render(big, "junit").encode("utf-8"))
    k06 = next(c for c in root.iter("testcase") if c.get("name", "").startswith("NSEG-K06"))
    failure = k06.find("failure")
    assert failure is not None and "250 more finding(s)" in (failure.text or "")


# -- CSV ---------------------------------------------------------------------------------------


def _csv(report: dict[str, Any]) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(render(report, "csv"), newline="")))


def _expected_rows(report: dict[str, Any]) -> int:
    by_id = {c["id"]: c for c in report["checks"]}
    rows = 0
    mapped = set()
    for fw in report["frameworks"]:
        for req in fw["requirements"]:
            rows += req["manual"] is not None or not req["checks"]
            for m in req["checks"]:
                mapped.add(m["id"])
                rows += max(1, len(by_id[m["id"]]["findings"]))
    return rows + sum(len(c["findings"]) for c in report["checks"] if c["id"] not in mapped)


def test_csv_rows_and_columns(report: dict[str, Any]) -> None:
    rows = _csv(report)
    assert list(rows[0]) == list(csv_report.COLUMNS)
    assert len(rows) == _expected_rows(report)
    manual = [r for r in rows if r["status"] == "manual"]
    assert {r["requirement_id"] for r in manual} == {"5.7.1", "1.2.7"}
    waived = [r for r in rows if r["waived"] == "true"]
    # NSEG-K03 is mapped under two requirements, so its waived finding appears twice
    assert [r["waiver"] for r in waived] == ["W-001", "W-001"]
    hostile = next(r for r in rows if r["resource"] == f"legacy/{HOSTILE}[Pod]")
    assert (
        "manifests\\legacy\\np.yaml[1]#/spec/ingress/0 (NetworkPolicy legacy/allow|all)"
        in hostile["objects"]
    )
    assert "\n" in hostile["message"] and "allows all peers" in hostile["connections"]
    unmapped = copy.deepcopy(report)
    unmapped["frameworks"] = []
    rows = _csv(unmapped)
    assert len(rows) == len(_findings(report)) and all(r["framework"] == "" for r in rows)


def test_csv_defuses_formulas(report: dict[str, Any]) -> None:
    rows = _csv(report)
    k06 = next(r for r in rows if r["check_id"] == "NSEG-K06")
    assert k06["message"].startswith("'=cmd|")
    m01 = next(r for r in rows if r["resource"] == "waiver/W-004")
    assert m01["expected"].startswith("'@owner")
    for value in ("=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"):
        assert csv_report.safe_cell(value) == "'" + value
    assert csv_report.safe_cell("a=b") == "a=b" and csv_report.safe_cell(None) == ""
    for row in rows:
        assert not any(v.startswith(("=", "+", "-", "@")) for v in row.values())


# -- HTML --------------------------------------------------------------------------------------


class _Ids(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: list[str] = []
        self.tags: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.ids.extend(v for k, v in attrs if k == "id" and v is not None)


def test_html_is_self_contained_and_escaped(report: dict[str, Any]) -> None:
    out = render(report, "html")
    assert not re.search(r"""(src|href|xlink:href|action)\s*=\s*["']?\s*(https?:)?//""", out, re.I)
    assert not re.search(r"url\(\s*['\"]?\s*(https?:)?//|@import", out, re.I)
    assert "<script" not in out.lower() and HOSTILE not in out
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in out
    assert "@media print" in out
    parser = _Ids()
    parser.feed(out)
    assert len(parser.ids) == len(set(parser.ids)), "duplicate ids"
    assert set(SECTION_IDS) <= set(parser.ids)
    assert {"check-NSEG-K03", "fw-pci-dss-4", "req-cis-kubernetes-5-3-2", "waiver-W-001"} <= set(
        parser.ids
    )
    assert out.count("<svg") >= 4  # framework bars, check bar, matrix, exposure (+ per framework)


def test_html_shows_evidence_for_failing_findings(report: dict[str, Any]) -> None:
    out = render(report, "html")
    assert "manifests/payments/db.yaml[2]#/spec/ingress/0/from/0" in out
    assert "no deny policy applies; verdict: allowed" in out
    assert "live cluster #/spec/ports/0" in out
    assert "Waived by" in out and 'href="#waiver-W-001"' in out
    assert "Not in scope: developer sandbox | no CDE data." in out  # excluded namespace reason
    assert report["scope"]["evidence_sha256"] in out


def test_html_caps_findings_per_check(report: dict[str, Any]) -> None:
    out = render(big_report(report, 260), "html")
    assert "60 more finding(s) of NSEG-K06 are not listed here" in out


# -- SVG ---------------------------------------------------------------------------------------


def test_svg_parse_and_escape(report: dict[str, Any]) -> None:
    pictures = [
        svg.connectivity_matrix(report["connectivity"]),
        svg.exposure_chart(report["connectivity"]),
        svg.status_bars(report["frameworks"]),
        svg.status_bar(report["summary"]["checks"], "check"),
    ]
    for picture in pictures:
        ET.fromstring(picture)  # well-formed: every text was escaped
        assert HOSTILE not in picture
    matrix = ET.fromstring(pictures[0])
    titles = [t.text or "" for t in matrix.iter("{http://www.w3.org/2000/svg}title")]
    assert "frontend → payments: TCP 443,8443" in titles
    assert 'analytics-ü&"q"' in titles  # the unescaped name, as a tooltip


def test_svg_matrix_scales_to_many_namespaces() -> None:
    names = [f"ns-{i:03d}" for i in range(80)]
    matrix = [
        {"src": a, "dst": b, "allowed": {"TCP": "443"}} for a in names[:50] for b in names[:50]
    ]
    conn = {"namespaces": names, "matrix": matrix, "internet_ingress": [], "internet_egress": []}
    picture = svg.connectivity_matrix(conn)
    ET.fromstring(picture)
    assert "20 namespace(s) with the fewest connections not shown (80 in total)" in picture
    assert "ns-049" in picture and "ns-079" not in picture
    assert "No workload is reachable" in svg.exposure_chart(conn)


# -- Markdown ----------------------------------------------------------------------------------


def _cells(row: str) -> int:
    return len(re.findall(r"(?<!\\)\|", row)) - 1


def test_markdown_tables_and_headings(report: dict[str, Any]) -> None:
    out = render(report, "md")
    tables: list[list[str]] = []
    previous = False
    for row in out.splitlines():
        if row.startswith("|"):
            if not previous:
                tables.append([])
            tables[-1].append(row)
        previous = row.startswith("|")
    assert len(tables) >= 8
    for table in tables:
        width = _cells(table[0])
        assert all(_cells(row) == width for row in table), table
        assert re.fullmatch(r"\|(:?-+:?\|)+", table[1])
    for fw in report["frameworks"]:
        assert f"### {fw['name']} {fw['version']}" in out
    without_code = re.sub(r"`[^`\n]*`", "", out)
    assert "<script" not in without_code and "<b>" not in without_code
    assert "team \\| tenant boundaries.<br>Review" in out


def test_markdown_cell_filter() -> None:
    assert cell("a|b\nc") == "a\\|b<br>c"
    assert cell("<b>*x*</b>") == "&lt;b&gt;\\*x\\*&lt;/b&gt;"
    assert cell(None) == cell("") == "—"


# -- headless Chromium -------------------------------------------------------------------------


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.slow
@pytest.mark.skipif(_chromium() is None, reason="chromium is not installed")
def test_html_in_headless_chromium(report: dict[str, Any], tmp_path: Path) -> None:
    browser = _chromium()
    assert browser is not None
    page = tmp_path / "report.html"
    page.write_text(render(report, "html"), encoding="utf-8")
    artifacts = ROOT / "build" / "artifacts"
    artifacts.mkdir(parents=True, exist_ok=True)
    png = artifacts / "report.png"
    png.unlink(missing_ok=True)
    base = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]
    shot = subprocess.run(
        [
            *base,
            "--enable-logging=stderr",
            "--v=0",
            f"--screenshot={png}",
            "--window-size=1280,2000",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert png.is_file() and png.stat().st_size > 10_000, shot.stderr[-2000:]
    console = [
        line
        for line in shot.stderr.splitlines()
        if ("Uncaught" in line or "ERROR:CONSOLE" in line or "CONSOLE(" in line)
        and "report.html" in line
    ]
    assert console == []
    dom = subprocess.run(
        [*base, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=60
    )
    assert dom.returncode == 0, dom.stderr[-2000:]
    for section in SECTION_IDS:
        assert f'id="{section}"' in dom.stdout
    assert HOSTILE not in dom.stdout
