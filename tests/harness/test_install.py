"""The harness installs like any pytest plugin: a wheel in a fresh virtualenv, used from an empty folder.

The project is built into a wheel, installed with its dependencies into a new virtualenv (no
``--system-site-packages``: a dependency missing from ``pyproject.toml`` fails here), and then used
as a user would, in an empty folder: ``harness up --detach``, ``harness status``, ``pytest -m
parity`` on a test file of its own (pytest finds the plugin through its ``pytest11`` entry point, the
fixtures come with their docstrings), and ``harness down``. The run folders must land in that folder
(the workspace is the working directory), none in site-packages.

The dependencies come from a wheelhouse in the user's cache, ``~/.cache/crucible-harness/install-wheelhouse/
<key>/`` (``XDG_CACHE_HOME`` moves it; the key hashes the dependencies and the Python version), filled
from the package index on the first run on a machine and reused offline after that, by every checkout
(``--no-index --find-links``); ``--no-compile`` skips byte-compiling pandas and friends. Measured on the
2-core machine shared with other test runs (load 5 to 8): filling the wheelhouse 69 s (once), the wheel
6-9 s, the install 19-21 s, ``harness up --detach`` 21-27 s, ``pytest -m parity`` 7 s; the whole test
92 s with the wheelhouse filled, 190 s without.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

CHECKOUT = Path(__file__).resolve().parents[2]
SOURCES = ("pyproject.toml", "README.md", "harness", "system_under_test")
REQUIREMENTS = ("pytest",)  # beside the harness extra: what a user installs to run the suites
TINY_PARITY_TEST = '''
"""A parity check of the user's own, with the installed plugin's fixtures."""
import pytest

from harness.parity.compare import ParityConfig
from harness.parity.dispatch import DUAL
from harness.parity.suite import ParitySession, search

pytestmark = pytest.mark.parity


def test_a_few_generated_programs_give_the_same_result_on_both_paths(
        stack, parity_dispatcher, parity_recorder, parity_profile):
    session = ParitySession(parity_dispatcher, ParityConfig.load(), stack.config.executor_output_bytes, DUAL)
    parity_recorder.append(session)
    outcome = search(session, profile=parity_profile, budget=8, seed=1, database=False)
    assert parity_profile == "dev"
    assert outcome.failure is None, outcome.failure
    assert len(session.checks) >= 8
'''

pytestmark = [pytest.mark.stack, pytest.mark.slow]


def run(argv: list[str], *, cwd: Path, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    return done


def ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, f"{' '.join(map(str, done.args))} exited {done.returncode}:\n" \
                                 f"{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    return done.stdout


def wheelhouse_key() -> str:
    """Changes with what the wheelhouse holds: the dependencies, the harness extra, the build requirements."""
    project = tomllib.loads((CHECKOUT / "pyproject.toml").read_text())
    wanted = [project["project"]["dependencies"], project["project"]["optional-dependencies"]["harness"],
              project["build-system"]["requires"], REQUIREMENTS, sys.version_info[:2], platform.machine()]
    return hashlib.sha256(repr(wanted).encode()).hexdigest()[:16]


def clean_env(venv: Path) -> dict[str, str]:
    """The user's environment: the new virtualenv first on PATH, nothing of this checkout or test session."""
    drop = ("PYTHONPATH", "VIRTUAL_ENV", "PYTEST_ADDOPTS", "PYTEST_CURRENT_TEST", "PYTEST_PLUGINS")
    env = {k: v for k, v in os.environ.items()
           if k not in drop and not k.startswith(("HARNESS_", "HYPOTHESIS_", "COV_"))}
    return {**env, "PATH": f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}", "VIRTUAL_ENV": str(venv),
            "HYPOTHESIS_PROFILE": "dev", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}


def test_a_wheel_installed_in_a_fresh_virtualenv_runs_up_status_parity_and_down_in_an_empty_folder(
        tmp_path: Path) -> None:
    timings: dict[str, float] = {}
    source, venv, work = tmp_path / "src", tmp_path / "venv", tmp_path / "work"
    for name in SOURCES:
        target = source / name
        if (CHECKOUT / name).is_dir():
            shutil.copytree(CHECKOUT / name, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(CHECKOUT / name, target)
    work.mkdir()

    started = time.monotonic()
    ok(run([sys.executable, "-m", "venv", str(venv)], cwd=tmp_path, env=dict(os.environ)))
    env = clean_env(venv)
    pip = [str(venv / "bin" / "python"), "-m", "pip"]
    timings["virtualenv"] = time.monotonic() - started

    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    wheelhouse = cache / "crucible-harness" / "install-wheelhouse" / wheelhouse_key()
    if not wheelhouse.is_dir():  # the first run on this machine, or pyproject.toml changed: from the index
        started = time.monotonic()
        partial = wheelhouse.with_name(wheelhouse.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        ok(run([*pip, "wheel", "-q", "-w", str(partial), f"{source}[harness]", *REQUIREMENTS, "setuptools>=68"],
               cwd=tmp_path, env=env, timeout=900))
        for own in partial.glob("crucible_migration_harness-*.whl"):
            own.unlink()  # the project itself is built fresh below, every time
        for stale in wheelhouse.parent.iterdir():  # wheelhouses of an older pyproject.toml
            if stale != partial:
                shutil.rmtree(stale, ignore_errors=True)
        partial.rename(wheelhouse)
        timings["wheelhouse (first run)"] = time.monotonic() - started

    started = time.monotonic()
    offline = ["--no-index", "--find-links", str(wheelhouse)]
    ok(run([*pip, "wheel", "-q", "--no-deps", *offline, "-w", str(tmp_path / "dist"), str(source)],
           cwd=tmp_path, env=env))
    wheel = next((tmp_path / "dist").glob("crucible_migration_harness-*.whl"))
    timings["wheel"] = time.monotonic() - started
    started = time.monotonic()
    ok(run([*pip, "install", "-q", "--no-compile", *offline, f"{wheel}[harness]", *REQUIREMENTS],
           cwd=tmp_path, env=env))
    timings["install"] = time.monotonic() - started

    site = Path(ok(run([str(venv / "bin" / "python"), "-c", "import harness, pathlib; "
                                                           "print(pathlib.Path(harness.__file__).parent.parent)"],
                       cwd=work, env=env)).strip())
    assert site.is_relative_to(venv), f"harness is imported from {site}, not from the new virtualenv"

    harness = str(venv / "bin" / "harness")
    try:
        started = time.monotonic()
        up = ok(run([harness, "up", "--detach", "--no-flower", "--legacy-workers", "1"], cwd=work, env=env))
        timings["harness up --detach"] = time.monotonic() - started
        assert "components healthy" in up and "harness down --name default" in up
        status = ok(run([harness, "status"], cwd=work, env=env))
        assert "stack 'default'" in status and "9/9 components healthy" in status, status

        (work / "test_my_parity.py").write_text(TINY_PARITY_TEST)
        fixtures = ok(run([str(venv / "bin" / "pytest"), "--fixtures", "-p", "no:cacheprovider"], cwd=work, env=env))
        for name, doc in (("parity_dispatcher", "Sends batches of programs"), ("run_folder", "The session's run folder"),
                          ("stack ", "The session's stack"), ("harness_seed", "The seed of every random choice")):
            assert name in fixtures and doc in fixtures, f"`pytest --fixtures` lacks {name}: {doc}\n{fixtures}"
        started = time.monotonic()
        parity = ok(run([str(venv / "bin" / "pytest"), "-m", "parity", "--stack=external", "-p", "no:cacheprovider",
                         "test_my_parity.py"], cwd=work, env=env))
        timings["pytest -m parity"] = time.monotonic() - started
        assert "1 passed" in parity and "harness run folder: " + str(work / "reports") in parity, parity
    finally:
        down = run([harness, "down", "--all"], cwd=work, env=env)
    assert down.returncode == 0 and "stopped the detached stack 'default'" in down.stdout, down.stdout + down.stderr
    assert run([harness, "status"], cwd=work, env=env).returncode == 1

    runs = [p for p in (work / "reports").iterdir() if p.is_dir() and not p.name.startswith(".")]
    assert len(runs) == 2 and all((p / "run.json").is_file() for p in runs)  # harness up's, pytest's
    assert any((p / "observations.parquet").is_file() for p in runs)
    assert not (site / "reports").exists(), "a run folder was written into site-packages"
    print("timings: " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()))
