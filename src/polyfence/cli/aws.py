"""``polyfence aws pull|plan|apply``: read security groups, plan and apply desired ones.

boto3 is loaded only when a command runs (through ``polyfence.io.aws``), so the rest of the
CLI starts without it. Exit codes are the CLI's, plus one: 5 for an AWS API error, which is
neither a crash (1) nor a problem with the input file (3).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from polyfence.cli import errors
from polyfence.errors import InputError
from polyfence.io import output as out
from polyfence.io.files import read_documents
from polyfence.translators.aws.plan import (
    DesiredState,
    OwnershipError,
    Plan,
    bind_group_ids,
    group_ids_by_name,
    parse_desired,
)

EXIT_PENDING = errors.EXIT_FINDINGS  # changes pending
F = TypeVar("F", bound=Callable[..., Any])
_err = errors.err


def _handle(func: F) -> F:
    """Errors to exit codes as ``errors.handle`` maps them (DESIRED errors without line numbers)."""
    return errors.handle(func, locate=False)


def _aws_options(func: F) -> F:
    for option in reversed(
        (
            click.option(
                "--region", metavar="R", help="AWS region (default: AWS_REGION, profile)."
            ),
            click.option(
                "--aws-profile",
                "profile",
                metavar="P",
                help="AWS named profile (default: AWS_PROFILE).",
            ),
            click.option(
                "--profile",
                "deprecated_profile",
                metavar="P",
                hidden=True,
                expose_value=False,
                callback=_deprecated_profile,
                help="Deprecated spelling of --aws-profile.",
            ),
            click.option(
                "--endpoint-url", metavar="URL", help="EC2 endpoint (e.g. a local test server)."
            ),
        )
    ):
        func = option(func)
    return func


def _deprecated_profile(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    """``--profile`` on aws verbs still works (as ``--aws-profile``, which wins when both are
    given), but it names the evaluation profile on every other verb."""
    if value is not None:
        _err(
            "warning: --profile on aws verbs is deprecated, use --aws-profile "
            "(--profile is the evaluation profile on the other verbs)"
        )
        if ctx.params.get("profile") is None:
            ctx.params["profile"] = value
    return value


def _client(region: str | None, profile: str | None, endpoint_url: str | None) -> Any:
    from polyfence.io import aws as aws_io

    return aws_io.make_client(region, profile, endpoint_url)


def _tag(
    ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
) -> list[tuple[str, str]]:
    tags = []
    for value in values:
        key, sep, val = value.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{value!r} is not KEY=VALUE")
        tags.append((key, val))
    return tags


@click.group("aws")
def aws() -> None:
    """Read AWS security groups, and plan or apply desired ones (`convert --to aws` output).

    \b
    Writes are plan-first and dry-run by default; only groups tagged
    polyfence.dev/managed-by=polyfence are changed; rules are added before any is
    revoked; groups are never deleted.
    \b
    Exit codes: 0 ok / no changes, 1 crash, 2 usage, 3 invalid DESIRED file, unknown
    group or VPC, or a change to a group polyfence does not own (nothing applied),
    4 changes pending (plan, and apply without --yes), 5 AWS API error (one line:
    Operation group: code: message; apply also lists what it had done).
    """


@aws.command()
@click.option("--vpc-id", "vpc_ids", multiple=True, metavar="ID", help="Only groups of this VPC.")
@click.option("--group-id", "group_ids", multiple=True, metavar="ID", help="Only these groups.")
@click.option(
    "--tag",
    "tags",
    multiple=True,
    metavar="KEY=VALUE",
    callback=_tag,
    help="Only groups with this tag (keys AND, values of one key OR).",
)
@click.option(
    "-o",
    "--output",
    metavar="FILE",
    help="Write here instead of standard output (- is standard output; an existing file keeps "
    "its mode, devices and FIFOs are written into).",
)
@_aws_options
@_handle
def pull(
    vpc_ids: tuple[str, ...],
    group_ids: tuple[str, ...],
    tags: list[tuple[str, str]],
    output: str | None,
    region: str | None,
    profile: str | None,
    endpoint_url: str | None,
) -> None:
    """Write the account's security groups as JSON, as describe-security-groups prints them."""
    from polyfence.io import aws as aws_io

    out.check_outputs([], ("-o", output, False))
    data = aws_io.pull(_client(region, profile, endpoint_url), vpc_ids, group_ids, tags)
    text = json.dumps(data, indent=2, sort_keys=True, default=str) + "\n"
    if output:
        out.write_file(output, text)
        _err(f"wrote {len(data['SecurityGroups'])} security groups to {output}")
    else:
        click.echo(text, nl=False)


def _desired(path: str, vpc_id: str | None) -> DesiredState:
    return parse_desired(_desired_documents(path), vpc_id)


def _desired_documents(path: str) -> list[Any]:
    docs, problems = read_documents([path])
    if problems:
        raise InputError(problems)
    return docs


def _write_bindings(
    path: str, desired: str, state: DesiredState, client: Any, applied: bool
) -> None:
    """DESIRED's SecurityGroupPolicy manifests with the account's group ids in place of names."""
    from polyfence.io import aws as aws_io
    from polyfence.io.files import dump

    ids = group_ids_by_name(state, aws_io.read_state(client, state))
    manifests, missing = bind_group_ids(_desired_documents(desired), ids)
    if not manifests:
        _err(f"{desired} holds no SecurityGroupPolicy: nothing written to {path}")
        return
    if missing:
        why = "not created" if applied else "not created yet (dry run)"
        _err(f"groups {', '.join(missing)} are {why}: their names were left in {path}")
    out.write_file(path, dump(manifests, "yaml"))
    _err(f"wrote {len(manifests)} SecurityGroupPolicy manifests with group ids to {path}")


def _show(plan: Plan, output_format: str, extra: dict[str, Any] | None = None) -> None:
    if output_format == "json":
        click.echo(json.dumps({**plan.to_dict(), **(extra or {})}, indent=2))
    else:
        click.echo(plan.render(), nl=False)


_desired_argument = click.argument("desired", metavar="DESIRED")
_vpc_option = click.option(
    "--vpc-id",
    metavar="ID",
    help="VPC of desired groups that do not name one (default VPC otherwise).",
)
_format_option = click.option(
    "--output-format",
    "--format",
    "output_format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Output format (--format is the same option).",
)


@aws.command()
@_desired_argument
@_vpc_option
@_format_option
@_aws_options
@_handle
def plan(
    desired: str,
    vpc_id: str | None,
    output_format: str,
    region: str | None,
    profile: str | None,
    endpoint_url: str | None,
) -> None:
    """Show what apply would change: exit 0 no changes, 4 changes pending."""
    from polyfence.io import aws as aws_io

    state = _desired(desired, vpc_id)
    result = aws_io.plan(_client(region, profile, endpoint_url), state)
    _show(result, output_format)
    if result.refusals:
        raise OwnershipError(result.refusals)
    if result.has_changes:
        sys.exit(EXIT_PENDING)


@aws.command()
@_desired_argument
@_vpc_option
@click.option("--yes", is_flag=True, help="Really apply (default: dry run, prints the plan).")
@click.option(
    "--bindings-out",
    metavar="FILE",
    help="Write DESIRED's SecurityGroupPolicy manifests with the account's group ids "
    "(names resolved after applying) for kubectl apply.",
)
@_format_option
@_aws_options
@_handle
def apply(
    desired: str,
    vpc_id: str | None,
    yes: bool,
    bindings_out: str | None,
    output_format: str,
    region: str | None,
    profile: str | None,
    endpoint_url: str | None,
) -> None:
    """Make the account match DESIRED: create, tag, authorize, then revoke.

    Without --yes this is a dry run with plan's exit codes (0 no changes, 4 pending).
    """
    from polyfence.io import aws as aws_io

    out.check_outputs([desired], ("--bindings-out", bindings_out, False))
    state = _desired(desired, vpc_id)
    client = _client(region, profile, endpoint_url)
    result = aws_io.plan(client, state)
    if result.refusals:
        _show(result, output_format, {"applied": 0, "dryRun": not yes})
        raise OwnershipError(result.refusals)
    if not yes:
        _show(result, output_format, {"applied": 0, "dryRun": True})
        if bindings_out:
            _write_bindings(bindings_out, desired, state, client, applied=False)
        if result.has_changes:
            _err("dry run: nothing applied; re-run with --yes to apply")
            sys.exit(EXIT_PENDING)
        return
    if output_format == "text":
        _show(result, output_format)  # before applying: a failure part-way is then readable
    done = aws_io.apply(client, result)
    if output_format == "json":
        _show(result, output_format, {"applied": len(done), "dryRun": False})
    _err(f"applied {len(done)} changes" if done else "no changes")
    if bindings_out:
        _write_bindings(bindings_out, desired, state, client, applied=True)
