"""``polyfence aws …`` as users drive it, with --endpoint-url pointing at the moto server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from polyfence.cli import cli

MANAGED = {"Key": "polyfence.dev/managed-by", "Value": "polyfence"}


def run(endpoint: str, *args: str) -> tuple[int, str, str]:
    verb, rest = args[0], args[1:]
    argv = ["aws", verb, "--endpoint-url", endpoint, "--region", "us-east-1", *rest]
    result = CliRunner().invoke(cli, argv)
    assert "Traceback" not in result.stderr
    return result.exit_code, result.stdout, result.stderr


def write_desired(tmp_path: Path, vpc: str, *extra_docs: dict[str, Any]) -> Path:
    groups = {
        "SecurityGroups": [
            {
                "GroupName": "web",
                "Description": "web servers",
                "VpcId": vpc,
                "Tags": [MANAGED],
                "IpPermissions": [
                    {
                        "IpProtocol": "tcp",
                        "FromPort": 443,
                        "ToPort": 443,
                        "IpRanges": [{"CidrIp": "10.0.0.0/8", "Description": "lb"}],
                    }
                ],
                "IpPermissionsEgress": [],
            }
        ]
    }
    sgp = {
        "apiVersion": "vpcresources.k8s.aws/v1beta1",
        "kind": "SecurityGroupPolicy",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"podSelector": {}, "securityGroups": {"groupIds": ["sg-123"]}},
    }
    path = tmp_path / "desired.yaml"
    path.write_text(yaml.safe_dump_all([groups, sgp, *extra_docs]))
    return path


def test_pull_to_file_and_stdout(ec2: Any, vpc: str, moto_endpoint: str, tmp_path: Path) -> None:
    ec2.create_security_group(GroupName="web", Description="w", VpcId=vpc)
    out = tmp_path / "sub" / "groups.json"
    code, stdout, stderr = run(moto_endpoint, "pull", "--vpc-id", vpc, "-o", str(out))
    assert code == 0, stderr
    assert stdout == "" and "wrote 2 security groups" in stderr
    data = json.loads(out.read_text())
    assert [g["GroupName"] for g in data["SecurityGroups"]] == ["default", "web"]
    assert not list(out.parent.glob(".groups.json.*"))  # atomic write left no temp file
    code, stdout, _ = run(moto_endpoint, "pull", "--tag", "nobody=here")
    assert code == 0 and json.loads(stdout) == {"SecurityGroups": []}


def test_bad_tag_option_is_usage_error(moto_endpoint: str) -> None:
    code, _, stderr = run(moto_endpoint, "pull", "--tag", "novalue")
    assert code == 2 and "KEY=VALUE" in stderr


def test_plan_apply_dry_run_yes_and_idempotence(
    ec2: Any, vpc: str, moto_endpoint: str, tmp_path: Path
) -> None:
    desired = write_desired(tmp_path, vpc)
    before = desired.read_text()

    code, out, err = run(moto_endpoint, "plan", str(desired))
    assert code == 4, err
    assert '+ web: ingress tcp 443 from 10.0.0.0/8 "lb"' in out
    assert "- web: egress all traffic to 0.0.0.0/0" in out
    assert "1 document without SecurityGroups ignored" in out

    code, out, err = run(moto_endpoint, "apply", str(desired))  # dry run
    assert code == 4 and "dry run: nothing applied" in err
    assert "+ web: create group" in out
    names = [g["GroupName"] for g in ec2.describe_security_groups()["SecurityGroups"]]
    assert "web" not in names

    code, out, err = run(moto_endpoint, "apply", str(desired), "--yes")
    assert code == 0, err
    assert "applied 3 changes" in err

    code, out, err = run(moto_endpoint, "plan", str(desired))
    assert code == 0 and out.startswith("plan: no changes"), out
    code, out, err = run(moto_endpoint, "apply", str(desired), "--yes")
    assert code == 0 and "no changes" in err
    assert desired.read_text() == before  # inputs are never modified


def test_plan_json_output(ec2: Any, vpc: str, moto_endpoint: str, tmp_path: Path) -> None:
    code, out, _ = run(
        moto_endpoint, "plan", str(write_desired(tmp_path, vpc)), "--output-format", "json"
    )
    assert code == 4
    data = json.loads(out)
    assert [c["action"] for c in data["changes"]] == ["create-group", "authorize", "revoke"]
    assert data["changes"][1]["permission"] == {
        "IpProtocol": "tcp",
        "FromPort": 443,
        "ToPort": 443,
        "IpRanges": [{"CidrIp": "10.0.0.0/8", "Description": "lb"}],
    }
    assert data["ignoredDocuments"] == 1 and data["refusals"] == []


def test_invalid_desired_file_is_exit_3_with_pointers(moto_endpoint: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps(
            {
                "SecurityGroups": [
                    {
                        "GroupName": "sg-web",
                        "Description": "x",
                        "IpPermissions": [
                            {
                                "IpProtocol": "tcp",
                                "FromPort": 90,
                                "ToPort": 80,
                                "IpRanges": [{"CidrIp": "10.0.0.0/33"}],
                            },
                            {"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupName": "nowhere"}]},
                        ],
                    }
                ]
            }
        )
    )
    code, out, err = run(moto_endpoint, "plan", str(bad))
    assert code == 3 and out == ""
    lines = err.splitlines()
    assert (
        f"polyfence: error: {bad}[0]:/SecurityGroups/0/GroupName: GroupName must not start with sg-"
        in lines
    )
    assert (
        f"polyfence: error: {bad}[0]:/SecurityGroups/0/IpPermissions/0: port range 90-80 is not within 0-65535 with FromPort <= ToPort"
        in lines
    )
    assert any(
        "/IpPermissions/1/UserIdGroupPairs/0/GroupName: group 'nowhere'" in line for line in lines
    )
    code, _, err = run(moto_endpoint, "apply", str(tmp_path / "missing.yaml"), "--yes")
    assert code == 3 and "cannot read" in err


def test_unowned_group_is_refused_with_exit_3(
    ec2: Any, vpc: str, moto_endpoint: str, tmp_path: Path
) -> None:
    ec2.create_security_group(GroupName="web", Description="web servers", VpcId=vpc)
    desired = write_desired(tmp_path, vpc)
    code, out, err = run(moto_endpoint, "apply", str(desired), "--yes")
    assert code == 3
    assert "! refused: web (sg-" in out
    assert "error: refused: web (sg-" in err and "nothing was applied" in err
    (web,) = ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": ["web"]}])[
        "SecurityGroups"
    ]
    assert web["IpPermissions"] == [] and web.get("Tags", []) == []
    code, _, _ = run(moto_endpoint, "plan", str(desired))
    assert code == 3


def test_aws_error_is_exit_5_one_line_with_progress(
    ec2: Any, vpc: str, moto_endpoint: str, tmp_path: Path
) -> None:
    path = tmp_path / "d.json"
    path.write_text(
        json.dumps(
            {
                "SecurityGroups": [
                    {
                        "GroupName": "api",
                        "Description": "api",
                        "VpcId": vpc,
                        "IpPermissions": [
                            {
                                "IpProtocol": "-1",
                                "UserIdGroupPairs": [{"GroupId": "sg-0000000000000dead"}],
                            }
                        ],
                    }
                ]
            }
        )
    )
    code, _, err = run(moto_endpoint, "apply", str(path), "--yes")
    assert code == 5
    error_lines = [line for line in err.splitlines() if line.startswith("polyfence: error:")]
    assert len(error_lines) == 1
    assert (
        error_lines[0].startswith("polyfence: error: AuthorizeSecurityGroupIngress api (sg-")
        and "InvalidGroup.NotFound" in error_lines[0]
    )
    assert "applied before the failure (1 changes):" in err
    assert f'  + api: create group in {vpc} "api"' in err


def test_unreachable_endpoint_is_exit_5(tmp_path: Path) -> None:
    path = write_desired(tmp_path, "vpc-0a")
    code, _, err = run("http://127.0.0.1:9", "plan", str(path))
    assert code == 5 and "EndpointConnectionError" in err


@pytest.mark.parametrize("url", ["not a url", "ftp://127.0.0.1:5000", "http://"])
def test_an_endpoint_that_is_not_a_url_is_a_usage_error(url: str, tmp_path: Path) -> None:
    code, out, err = run(url, "plan", str(write_desired(tmp_path, "vpc-0a")))
    assert code == 2 and out == ""
    assert (
        err
        == f"polyfence: error: --endpoint-url {url!r} is not an http(s) URL (e.g. http://127.0.0.1:5000)\n"
    )


def test_help_documents_exit_codes() -> None:
    result = CliRunner().invoke(cli, ["aws", "--help"])
    assert result.exit_code == 0
    assert "5 AWS API error" in result.stdout
    for verb in ("pull", "plan", "apply"):
        text = CliRunner().invoke(cli, ["aws", verb, "--help"]).stdout
        assert "--endpoint-url" in text and "--region" in text and "--aws-profile" in text


def test_unknown_profile_and_missing_region_are_usage_errors(
    tmp_path: Path, monkeypatch: Any
) -> None:
    result = CliRunner().invoke(cli, ["aws", "pull", "--profile", "no-such-profile"])
    assert result.exit_code == 2 and "no-such-profile" in result.stderr
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    result = CliRunner().invoke(cli, ["aws", "pull"])
    assert result.exit_code == 2 and "no AWS region" in result.stderr


def test_apply_writes_bindings_with_the_created_group_ids(
    ec2: Any, vpc: str, moto_endpoint: str, tmp_path: Path
) -> None:
    """SecurityGroupPolicies written with group names (the groups do not exist yet when
    converting) get the ids AWS assigned, so `kubectl apply` can bind them."""
    named = {
        "apiVersion": "vpcresources.k8s.aws/v1beta1",
        "kind": "SecurityGroupPolicy",
        "metadata": {"name": "web-by-name", "namespace": "shop"},
        "spec": {"podSelector": {}, "securityGroups": {"groupIds": ["web"]}},
    }
    desired = write_desired(tmp_path, vpc, named)
    out = tmp_path / "bindings.yaml"
    code, _, err = run(moto_endpoint, "apply", str(desired), "--bindings-out", str(out))
    assert code == 4 and "not created yet (dry run)" in err  # dry run: names stay, said so
    code, _, err = run(moto_endpoint, "apply", str(desired), "--yes", "--bindings-out", str(out))
    assert code == 0, err
    web = next(
        g["GroupId"]
        for g in ec2.describe_security_groups()["SecurityGroups"]
        if g["GroupName"] == "web"
    )
    manifests = list(yaml.safe_load_all(out.read_text()))
    assert [m["metadata"]["name"] for m in manifests] == ["web", "web-by-name"]
    assert manifests[0]["spec"]["securityGroups"]["groupIds"] == ["sg-123"]  # ids kept
    assert manifests[1]["spec"]["securityGroups"]["groupIds"] == [web]
    assert "wrote 2 SecurityGroupPolicy manifests" in err
