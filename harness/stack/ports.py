"""Free TCP ports on 127.0.0.1 for the stack's listeners, chosen where outgoing connections never land.

Asking the kernel for port 0 returns a port from the ephemeral range
(``/proc/sys/net/ipv4/ip_local_port_range``, usually 32768–60999). That is the same range the
kernel draws the local port of every *outgoing* connection from, and a test run makes thousands of
them: between the moment we learn a port is free and the moment a component binds it, a client
connection elsewhere can take it, and the component dies with "address already in use" (seen in
CI once in about 500 stack starts).

So ``free_port`` picks from the ports *below* the ephemeral range (20000 up to its start), which
only explicit ``bind`` calls use. It checks each candidate by binding it, never hands out the same
port twice in one process, and picks at random so that two harness processes on one host rarely
try the same one. The remaining race (another program binding the same port in the same second)
is caught by the stack, which starts again on fresh ports (``ProcessesStack.start``).
"""

from __future__ import annotations

import random
import socket
import threading

_LOW = 20000
_handed_out: set[int] = set()
_lock = threading.Lock()
_random = random.SystemRandom()


def ephemeral_range() -> tuple[int, int]:
    """The kernel's range for outgoing connections' local ports."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range", encoding="ascii") as fh:
            low, high = (int(x) for x in fh.read().split())
        return low, high
    except (OSError, ValueError):
        return 32768, 60999


def _bindable(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def _kernel_choice(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on now, outside the ephemeral range, not handed out before by this process."""
    low, high = ephemeral_range()
    if low - _LOW >= 1000:
        candidates = range(_LOW, low)
    elif 65535 - high >= 1000:
        candidates = range(high + 1, 65536)
    else:  # no room outside the ephemeral range on this host: take the kernel's choice
        return _kernel_choice(host)
    with _lock:
        if len(_handed_out) > len(candidates) // 2:  # a long-lived process: start over
            _handed_out.clear()
        for _ in range(200):
            port = _random.choice(candidates)
            if port in _handed_out or not _bindable(host, port):
                continue
            _handed_out.add(port)
            return port
    return _kernel_choice(host)


def is_port_clash(lines: list[str]) -> bool:
    """Whether a component's last log lines say it could not bind its port."""
    text = "\n".join(lines).lower()
    return "address already in use" in text or "eaddrinuse" in text
