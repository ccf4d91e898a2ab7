"""Fixtures for the load tests: ``chromium``, a headless Chromium page for the web UI's browser tests.

Debian's ``chromium`` (``/usr/bin/chromium``, or ``HARNESS_CHROMIUM``) runs in its own process
group with a throw-away profile; ``Chromium`` talks to its one page over the Chrome DevTools
protocol (``websocket-client``): navigate, evaluate JavaScript, wait for a condition, take a
screenshot. Leaving it kills the whole group (Chromium starts several processes), whatever happened.
Without a Chromium the browser tests are skipped, except under CI (``CI`` set), where they fail:
``make test`` installs it there (``scripts/prepare-chromium.sh``).
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import websocket

CHROMIUM_VAR = "HARNESS_CHROMIUM"


def find_chromium() -> str | None:
    """The Chromium binary: ``HARNESS_CHROMIUM``, else ``chromium`` on the PATH."""
    return os.environ.get(CHROMIUM_VAR) or shutil.which("chromium") or shutil.which("chromium-browser")


class Chromium:
    """``with Chromium(width=1400, height=800) as page:``, one headless page on 127.0.0.1."""

    def __init__(self, *, width: int = 1400, height: int = 800, binary: str | None = None) -> None:
        found = binary or find_chromium()
        if not found:
            raise RuntimeError(f"no Chromium: install Debian's `chromium` (apt-get install chromium) or set "
                               f"{CHROMIUM_VAR} to its binary")
        self.binary = found
        self.size = (width, height)
        self._profile = tempfile.TemporaryDirectory(prefix="harness-chromium-")
        self._proc: subprocess.Popen[bytes] | None = None
        self._ws: websocket.WebSocket | None = None
        self._ids = itertools.count(1)

    def __enter__(self) -> Chromium:
        argv = [self.binary, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--no-first-run", "--no-default-browser-check", "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0", f"--user-data-dir={self._profile.name}",
                f"--window-size={self.size[0]},{self.size[1]}", "about:blank"]
        self._proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                      stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            port = self._devtools_port(timeout_s=30)
            pages = [t for t in requests.get(f"http://127.0.0.1:{port}/json/list", timeout=5).json()
                     if t.get("type") == "page"]
            self._ws = websocket.create_connection(pages[0]["webSocketDebuggerUrl"], timeout=30,
                                                   suppress_origin=True)
            self.send("Page.enable")
            self.send("Emulation.setDeviceMetricsOverride", width=self.size[0], height=self.size[1],
                      deviceScaleFactor=1, mobile=False)
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _devtools_port(self, timeout_s: float) -> int:
        marker = Path(self._profile.name) / "DevToolsActivePort"
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise RuntimeError(f"{self.binary} exited with code {self._proc.returncode} while starting")
            with contextlib.suppress(FileNotFoundError, ValueError, IndexError):
                return int(marker.read_text().splitlines()[0])
            time.sleep(0.05)
        raise RuntimeError(f"{self.binary} did not open its DevTools port within {timeout_s:.0f} s")

    def close(self) -> None:
        if self._ws is not None:
            with contextlib.suppress(Exception):
                self._ws.close()
            self._ws = None
        if self._proc is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._proc.pid, signal.SIGKILL)
            self._proc.wait(10)
            self._proc = None
        self._profile.cleanup()

    # -- the protocol ------------------------------------------------------------------------------

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        """One DevTools command; its result (events arriving meanwhile are dropped)."""
        assert self._ws is not None
        ident = next(self._ids)
        self._ws.send(json.dumps({"id": ident, "method": method, "params": params}))
        while True:
            message = json.loads(self._ws.recv())
            if message.get("id") == ident:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result

    def goto(self, url: str) -> None:
        self.send("Page.navigate", url=url)
        self.wait_for("document.readyState === 'complete'", timeout_s=30)

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (awaited when it is a promise)."""
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            raise RuntimeError(f"{expression[:80]}: {details.get('exception', {}).get('description') or details.get('text')}")
        return result.get("result", {}).get("value")

    def wait_for(self, expression: str, *, timeout_s: float = 30.0, poll_s: float = 0.2) -> Any:
        """Evaluate until the value is truthy; returns it, or raises TimeoutError with the last value."""
        deadline = time.monotonic() + timeout_s
        value = None
        while time.monotonic() < deadline:
            with contextlib.suppress(RuntimeError):
                value = self.evaluate(expression)
                if value:
                    return value
            time.sleep(poll_s)
        raise TimeoutError(f"not true within {timeout_s:.0f} s: {expression[:120]} (last value {value!r})")

    def screenshot(self, path: Path, *, height: int | None = None) -> Path:
        """A PNG of the page (its top ``height`` pixels when given)."""
        clip = {"clip": {"x": 0, "y": 0, "width": self.size[0], "height": height, "scale": 1}} if height else {}
        data = self.send("Page.captureScreenshot", format="png", **clip)["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path


@pytest.fixture
def chromium() -> Iterator[Chromium]:
    """A headless Chromium page (1400 x 800); skipped without a Chromium, except under CI."""
    if not find_chromium():
        message = f"no Chromium to drive: `apt-get install chromium`, or set {CHROMIUM_VAR}"
        if os.environ.get("CI"):
            pytest.fail(message + " (under CI the browser tests may not skip)")
        pytest.skip(message)
    with Chromium() as page:
        yield page
