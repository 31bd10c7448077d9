"""Through ``api.audit``: waivers and NSEG-M01, excluded namespaces in the report, schema
validity and determinism — plus a guard that every check has scenario tests."""

from __future__ import annotations

import datetime as dt
import json
import re
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator, FormatChecker

from polyfence import api
from polyfence.compliance.checks import CHECK_IDS
from polyfence.compliance.model import Severity
from tests.compliance.scenario import TODAY, default_deny, deploy, namespace

CLUSTER = (
    namespace("a"),
    namespace("b"),
    namespace("kube-system"),
    deploy("a", "web", ports=[80]),
    deploy("b", "db", ports=[5432]),
    deploy("kube-system", "coredns", {"k8s-app": "kube-dns"}, [53]),
    default_deny("a"),  # b has no policy: NSEG-K02 fails for namespace/b
)
WAIVER = {
    "id": "W1",
    "check": "NSEG-K02",
    "resource": "namespace/b",
    "owner": "team-b",
    "reason": "migration",
    "ticket": "SEC-1",
    "expires": "2025-12-31",
}


def audit(
    tmp_path: Path, config: dict[str, Any] | None = None, today: dt.date = TODAY
) -> dict[str, Any]:
    (tmp_path / "cluster.yaml").write_text("\n---\n".join(p.strip("\n") for p in CLUSTER) + "\n")
    cfg_path = tmp_path / "audit.yaml"
    cfg_path.write_text(yaml.safe_dump(config or {}))
    report = api.audit([str(tmp_path / "cluster.yaml")], config=str(cfg_path), today=today)
    return report.to_dict()  # type: ignore[no-any-return]


def check(data: dict[str, Any], check_id: str) -> dict[str, Any]:
    (found,) = [c for c in data["checks"] if c["id"] == check_id]
    return found


def test_active_waiver_passes_the_check_and_m01(tmp_path: Path) -> None:
    data = audit(tmp_path, {"waivers": [WAIVER]})
    k02 = check(data, "NSEG-K02")
    assert k02["status"] == "pass"
    (f,) = [f for f in k02["findings"] if f["resource"] == "namespace/b"]
    assert f["status"] == "fail" and f["waiver"] == "W1"
    assert check(data, "NSEG-M01")["status"] == "pass"
    (w,) = data["waivers"]
    assert w["state"] == "active" and w["matched"] == 1
    assert data["summary"]["waived"] >= 1


def test_expired_waiver_does_not_suppress(tmp_path: Path) -> None:
    data = audit(tmp_path, {"waivers": [dict(WAIVER, expires="2025-01-01")]})
    assert check(data, "NSEG-K02")["status"] == "fail"
    m01 = check(data, "NSEG-M01")
    assert m01["status"] == "fail"
    assert "expired on 2025-01-01" in m01["findings"][0]["message"]
    assert data["waivers"][0]["state"] == "expired"


def test_unused_waiver_fails_m01(tmp_path: Path) -> None:
    data = audit(tmp_path, {"waivers": [dict(WAIVER, resource="namespace/nope")]})
    m01 = check(data, "NSEG-M01")
    assert m01["status"] == "fail"
    (f,) = m01["findings"]
    assert f["resource"] == "waiver/W1" and "unused" in f["message"]
    assert f["objects"][0]["pointer"] == "/waivers/0"
    assert f["objects"][0]["file"].endswith("audit.yaml")
    assert data["waivers"][0]["state"] == "unused"


def test_incomplete_waiver_fails_m01(tmp_path: Path) -> None:
    incomplete = {k: v for k, v in WAIVER.items() if k not in ("owner", "ticket")}
    data = audit(tmp_path, {"waivers": [incomplete]})
    m01 = check(data, "NSEG-M01")
    assert m01["status"] == "fail"
    assert "missing owner, ticket" in m01["findings"][0]["message"]
    assert data["waivers"][0]["state"] == "incomplete"


def test_broad_waiver_flagged(tmp_path: Path) -> None:
    data = audit(tmp_path, {"waivers": [dict(WAIVER, resource="namespace/*")]})
    assert "covers everything" in check(data, "NSEG-M01")["findings"][0]["message"]


def test_failing_ignores_waived_findings(tmp_path: Path) -> None:
    """prowler #3721: a waived failure must not gate CI."""
    (tmp_path / "w").mkdir()
    (tmp_path / "n").mkdir()
    waived = api.audit(
        [str(_write_cluster(tmp_path / "w"))],
        config=_config(tmp_path / "w", {"waivers": [WAIVER]}),
        today=TODAY,
    )
    plain = api.audit(
        [str(_write_cluster(tmp_path / "n"))], config=_config(tmp_path / "n", {}), today=TODAY
    )
    ids = {f["id"] for f in waived.failing(Severity.MEDIUM)}
    k02_b = [f for f in plain.failing(Severity.MEDIUM) if f["check_id"] == "NSEG-K02"]
    assert k02_b and k02_b[0]["id"] not in ids
    assert all(f["waiver"] is None for f in waived.failing(Severity.INFO))


def _write_cluster(d: Path) -> Path:
    p = d / "cluster.yaml"
    p.write_text("\n---\n".join(x.strip("\n") for x in CLUSTER) + "\n")
    return p


def _config(d: Path, cfg: dict[str, Any]) -> str:
    p = d / "audit.yaml"
    p.write_text(yaml.safe_dump(cfg))
    return str(p)


def test_excluded_namespaces_listed_with_reason(tmp_path: Path) -> None:
    data = audit(tmp_path)
    excluded = {e["namespace"]: e["reason"] for e in data["scope"]["excluded_namespaces"]}
    assert "kube-system" in excluded and "system namespace" in excluded["kube-system"]
    assert "kube-system" not in data["scope"]["namespaces"]
    resources_ = {f["resource"] for f in check(data, "NSEG-K02")["findings"]}
    assert resources_ == {"namespace/a", "namespace/b"}


def test_custom_exclusion_replaces_default(tmp_path: Path) -> None:
    cfg = {"excluded_namespaces": [{"namespace": "b", "reason": "sandbox, out of PCI scope"}]}
    data = audit(tmp_path, cfg)
    assert data["scope"]["excluded_namespaces"] == [
        {"namespace": "b", "reason": "sandbox, out of PCI scope"}
    ]
    k02 = check(data, "NSEG-K02")
    assert "namespace/kube-system" in {f["resource"] for f in k02["findings"]}
    assert "namespace/b" not in {f["resource"] for f in k02["findings"]}


@pytest.fixture(scope="module")
def full_reports(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], dict[str, Any]]:
    out = []
    for i in range(2):
        d = tmp_path_factory.mktemp(f"run{i}")
        cfg = {
            "waivers": [WAIVER],
            "zones": [{"name": "db", "namespaces": ["b"], "sensitive": True}],
        }
        # the runs differ only in their directory: name it the same in both
        out.append(json.loads(json.dumps(audit(d, cfg)).replace(str(d), "<dir>")))
    return out[0], out[1]


def test_report_validates_against_schema(
    full_reports: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    text = (resources.files("polyfence.schemas") / "report.schema.json").read_text("utf-8")
    validator = Draft202012Validator(json.loads(text), format_checker=FormatChecker())
    errors = list(validator.iter_errors(full_reports[0]))
    assert not errors, [e.message for e in errors[:5]]
    assert {c["id"] for c in full_reports[0]["checks"]} == set(CHECK_IDS)
    assert all(c["status"] != "error" for c in full_reports[0]["checks"]), [
        (c["id"], c["detail"]) for c in full_reports[0]["checks"] if c["status"] == "error"
    ]


def test_audit_is_deterministic(full_reports: tuple[dict[str, Any], dict[str, Any]]) -> None:
    a, b = full_reports

    def ids(d: dict[str, Any]) -> list[tuple[str, str, str]]:
        return [(f["check_id"], f["id"], f["status"]) for c in d["checks"] for f in c["findings"]]

    assert ids(a) and ids(a) == ids(b)
    assert len({i for _, i, _ in ids(a)}) == len(ids(a))  # finding ids are unique
    strip = {"generated_at"}
    assert {k: v for k, v in a.items() if k not in strip} == {
        k: v for k, v in b.items() if k not in strip
    }


def test_every_check_has_scenarios() -> None:
    """Each check id is exercised by the scenario tests (made to fail and made to pass)."""
    here = Path(__file__).parent
    text = "".join(p.read_text() for p in here.glob("test_checks_*.py"))
    missing = [cid for cid in CHECK_IDS if cid not in text]
    assert not missing, missing
    assert re.search(r"NSEG-M01", text)
