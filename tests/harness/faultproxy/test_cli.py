"""``python -m harness.faultproxy`` / ``fault-proxy``: start, print the URL, load a config, stop cleanly."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from .peers import Upstream, is_up

ROOT = Path(__file__).resolve().parents[3]
BANNER = "fault proxy API on "


@contextmanager
def running(*args: str, command: list[str] | None = None) -> Iterator[tuple[subprocess.Popen[str], str]]:
    proc = subprocess.Popen(
        [*(command or [sys.executable, "-m", "harness.faultproxy"]), "--host", "127.0.0.1", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        assert line.startswith(BANNER), (line, proc.stderr.read() if proc.stderr else "")
        yield proc, line.removeprefix(BANNER)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def run_to_exit(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness.faultproxy", *args], capture_output=True, text=True, cwd=ROOT, timeout=30
    )


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_the_command_prints_its_url_serves_and_exits_zero_on_a_signal(signum: int, upstream: Upstream) -> None:
    with running() as (proc, url):
        assert url.startswith("http://127.0.0.1:") and not url.endswith(":0")
        assert requests.get(url + "/version", timeout=5).json() == {"version": "2.12.0"}
        created = requests.post(
            url + "/proxies", json={"name": "p", "upstream": upstream.address, "listen": "127.0.0.1:0"}, timeout=5
        ).json()
        assert is_up(created["listen"])
        proc.send_signal(signum)
        assert proc.wait(10) == 0
        assert not is_up(created["listen"])


def test_a_config_file_creates_its_proxies_before_the_url_is_printed(tmp_path: Path, upstream: Upstream) -> None:
    config = tmp_path / "proxies.json"
    config.write_text(
        json.dumps(
            [
                {"name": "redis", "listen": "127.0.0.1:0", "upstream": upstream.address},
                {"name": "spare", "listen": "127.0.0.1:0", "upstream": upstream.address, "enabled": False},
            ]
        )
    )
    with running("--config", str(config), "--seed", "7") as (proc, url):
        proxies = requests.get(url + "/proxies", timeout=5).json()
        assert set(proxies) == {"redis", "spare"}
        assert is_up(proxies["redis"]["listen"]) and proxies["spare"]["enabled"] is False
        proc.terminate()
        assert proc.wait(10) == 0


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("not json", "expected a JSON array of proxies"),
        ('{"name": "x"}', "expected a JSON array"),
        ('[{"name": "x"}]', "[0].upstream: is required"),
        ('[{"name": "a/b", "upstream": "h:1"}]', "[0]: invalid proxy name"),
        ('[{"name": "x", "upstream": "h:1", "listen": "nope"}]', "proxy 'x': listen tcp: address nope: missing port"),
    ],
)
def test_a_bad_config_file_exits_3_naming_the_file_and_the_entry(tmp_path: Path, content: str, fragment: str) -> None:
    config = tmp_path / "bad.json"
    config.write_text(content)
    result = run_to_exit("--port", "0", "--config", str(config))
    assert result.returncode == 3
    assert str(config) in result.stderr and fragment in result.stderr
    assert result.stdout == ""


def test_an_api_port_in_use_exits_3_with_a_hint() -> None:
    with running() as (_proc, url):
        port = url.rsplit(":", 1)[1]
        result = run_to_exit("--host", "127.0.0.1", "--port", port)
    assert result.returncode == 3
    assert "address already in use" in result.stderr and "--port" in result.stderr


def test_the_console_script_runs_the_same_main() -> None:
    script = Path(sys.executable).parent / "fault-proxy"
    if not script.exists():
        pytest.skip("the fault-proxy console script is not installed in this environment")
    with running(command=[str(script)]) as (proc, url):
        assert requests.get(url + "/version", timeout=5).status_code == 200
        proc.terminate()
        assert proc.wait(10) == 0
