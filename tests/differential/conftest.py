"""Fixtures for differential tests against independent implementations.

IBM's network-config-analyzer (NCA) pins exact versions of PyYAML, networkx and friends, so it
lives in its own virtualenv at ``<repo>/.nca-venv`` and is only ever run as a subprocess
(``nca`` console script). The venv is created once and reused while ``nca --help`` works and
``nca --version`` reports the pinned version.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

NCA_VERSION = "2.1.0"
NCA_REQUIREMENT = f"network-config-analyzer=={NCA_VERSION}"
REPO = Path(__file__).resolve().parents[2]
NCA_VENV = REPO / ".nca-venv"
PIP_TIMEOUT_S = 1200  # whole install; pip's own per-request timeout is set below

# Variables of the project venv (or a coding tool) that must not leak into the NCA venv.
_LEAKY = ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PIP_REQUIRE_VIRTUALENV")


def clean_env() -> dict[str, str]:
    """Environment for running anything from the NCA venv."""
    env = {k: v for k, v in os.environ.items() if k not in _LEAKY}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def _bin(name: str) -> Path:
    return NCA_VENV / ("Scripts" if os.name == "nt" else "bin") / name


def _nca_works(nca: Path) -> bool:
    if not nca.is_file():
        return False
    try:
        help_run = subprocess.run(
            [str(nca), "--help"], capture_output=True, text=True, timeout=120, env=clean_env()
        )
        if help_run.returncode != 0:
            return False
        version_run = subprocess.run(
            [str(nca), "--version"], capture_output=True, text=True, timeout=120, env=clean_env()
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return version_run.returncode == 0 and f"NCA version {NCA_VERSION}" in version_run.stdout


def _last_error_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("ERROR") or "Error" in ln or "error:" in ln]
    if errors:
        return errors[-1]
    return lines[-1] if lines else "pip exited non-zero without output"


def _install() -> None:
    """Create (or re-create) the venv and pip-install NCA; skip only on a pip failure."""
    created = subprocess.run(
        [sys.executable, "-m", "venv", "--clear", str(NCA_VENV)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if created.returncode != 0:
        pytest.fail(
            f"could not create the NCA virtualenv {NCA_VENV}: "
            f"{_last_error_line(created.stderr + created.stdout)}",
            pytrace=False,
        )
    python = _bin("python")
    try:
        pip = subprocess.run(
            [
                str(python),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--timeout",
                "120",
                "--retries",
                "3",
                NCA_REQUIREMENT,
            ],
            capture_output=True,
            text=True,
            timeout=PIP_TIMEOUT_S,
            env=clean_env(),
        )
    except subprocess.TimeoutExpired:
        pytest.skip(
            "network-config-analyzer cannot be installed here: "
            f"pip did not finish within {PIP_TIMEOUT_S} s"
        )
    if pip.returncode != 0:
        pytest.skip(
            "network-config-analyzer cannot be installed here: "
            + _last_error_line(pip.stderr + "\n" + pip.stdout)
        )


@pytest.fixture(scope="session")
def nca() -> Path:
    """Path of the ``nca`` executable of network-config-analyzer 2.1.0 in <repo>/.nca-venv."""
    nca_exe = _bin("nca")
    if _nca_works(nca_exe):
        return nca_exe
    # Serialise concurrent installs (parallel pytest runs in the same checkout).
    lock_name = "polyfence-nca-venv-" + hashlib.sha256(str(NCA_VENV).encode()).hexdigest()[:16]
    lock_path = Path(tempfile.gettempdir()) / f"{lock_name}.lock"
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not _nca_works(nca_exe):
                _install()
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    if not _nca_works(nca_exe):
        pytest.fail(
            f"pip installed {NCA_REQUIREMENT} into {NCA_VENV}, but `nca --help` / "
            f"`nca --version` do not work (expected 'NCA version {NCA_VERSION}')",
            pytrace=False,
        )
    return nca_exe
