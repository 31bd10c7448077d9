"""AWS test fixtures: dummy credentials, and moto's server on 127.0.0.1 on a free port.

The server is a real moto server in its own process (the closest thing to a remote endpoint),
started once per session, reset before every test through ``POST /moto-api/reset``, and
stopped at the end. The server binds port 0 itself and reports the port it holds, so no other
process can take the port between its choice and the bind. Tests that need it skip cleanly
when moto is not installed; the Stubber tests do not need it.
"""

from __future__ import annotations

import importlib.util
import os
import selectors
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from polyfence.io import aws as aws_io

REGION = "us-east-1"
STARTUP_SECONDS = 60.0
_DUMMY_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
    "NO_PROXY": "127.0.0.1,localhost",
    "no_proxy": "127.0.0.1,localhost",
}
_UNSET = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_EC2",
)
# loopback only: never through a proxy, whatever the environment says
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@pytest.fixture(scope="session", autouse=True)
def aws_env() -> Iterator[None]:
    """Dummy credentials and region, no profile or config file: no real account is reachable."""
    saved = {k: os.environ.get(k) for k in (*_DUMMY_ENV, *_UNSET)}
    for key in _UNSET:
        os.environ.pop(key, None)
    os.environ.update(_DUMMY_ENV)
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


# Run in the server process: bind port 0, print the port the listening socket holds, serve until
# stdin closes (the fixture's teardown, or this test process dying).
_SERVER = """
import sys
from moto.server import ThreadedMotoServer
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
print(server.get_host_and_port()[1], flush=True)
sys.stdin.read()
server.stop()
"""


def _reported_port(proc: subprocess.Popen[bytes], deadline: float) -> int | None:
    """The port the server process prints once it listens; None if it exits or runs late."""
    assert proc.stdout is not None
    line = b""
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        while not line.endswith(b"\n"):
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not selector.select(remaining):
                return None
            chunk = os.read(proc.stdout.fileno(), 64)
            if not chunk:
                return None
            line += chunk
    return int(line)


def _ready(url: str) -> bool:
    try:
        with _OPENER.open(url + "/moto-api/data.json", timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


@pytest.fixture(scope="session")
def moto_endpoint(aws_env: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``http://127.0.0.1:PORT`` of a moto server process for the whole session."""
    if importlib.util.find_spec("moto") is None or importlib.util.find_spec("flask") is None:
        pytest.skip("moto[server] is not installed")
    log = Path(tmp_path_factory.mktemp("moto")) / "server.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-c", _SERVER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=sink,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        port = _reported_port(proc, deadline)
        url = f"http://127.0.0.1:{port}"
        # The socket already listens; this only waits (bounded) for the first answer.
        while port is None or not _ready(url):
            if port is None or proc.poll() is not None or time.monotonic() > deadline:
                tail = log.read_text(errors="replace")[-2000:]
                why = f"exit code {proc.returncode}" if proc.poll() is not None else "no answer"
                pytest.fail(
                    f"moto server did not start ({why}) within {STARTUP_SECONDS:.0f} s:\n{tail}"
                )
            time.sleep(0.1)
        yield url
    finally:
        proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        proc.stdout.close()


def reset(url: str) -> None:
    request = urllib.request.Request(url + "/moto-api/reset", method="POST")
    with _OPENER.open(request, timeout=10) as response:
        assert response.status == 200


@pytest.fixture
def ec2(moto_endpoint: str) -> Any:
    """A fresh account (state reset) and an EC2 client built the way the CLI builds one."""
    reset(moto_endpoint)
    return aws_io.make_client(region=REGION, endpoint_url=moto_endpoint)


@pytest.fixture
def vpc(ec2: Any) -> str:
    """A non-default VPC without IPv6."""
    return str(ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"])
