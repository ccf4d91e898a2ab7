"""Switchable candidate defects for the Celery path, to prove the parity suite's power.

Off by default. ``CELERY_CANDIDATE_DEFECTS=drop_trailing_newline,merge_stderr`` turns defects on in
the Celery worker; each one is a plausible migration bug, and the legacy path never applies one. A
parity suite that cannot catch every one of these has no power; one that flags a divergence with all
of them off cries wolf. Each defect belongs to one edge family of the parity surface (``family``),
and does its damage in one of three places:

- ``result``: the executor's answer is changed before the result is stored (a bug in the Celery
  task: a cap applied twice, newlines translated, a field stripped);
- ``timeout``: the timeout the task asks executor-3 for is changed (a margin added on the way);
- ``code``: a deployment difference of executor-3 (another umask, time zone, variable, limit, a
  closed stdin). The executor builds each submission's environment itself and takes no deployment
  settings for it, so the task puts the difference on the program's first line, as a one-line
  preamble (no line number moves: the generator's programs never report their first line).

``DEFECTS`` are the parity power check's; ``BEHAVIOUR`` names the chaos power check's, defects of
what the Celery path does rather than of its answer (the task and the gateway check them by name).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Body = dict[str, Any]
CAP = 65536  # the executors' default output cap (EXECUTOR_OUTPUT_BYTES)


@dataclass(frozen=True)
class Defect:
    name: str
    family: str  # the edge family of the parity surface it belongs to
    what: str  # the plausible bug, in one line
    result: Callable[[Body], Body] | None = None
    timeout: Callable[[float | None], float | None] | None = None
    code: Callable[[str, str], str] | None = None  # (code, language) -> code


def _texts(body: Body, change: Callable[[str], str]) -> Body:
    return {**body, **{f: change(body[f]) for f in ("output", "error") if isinstance(body.get(f), str)}}


def _drop_trailing_newline(body: Body) -> Body:
    out = body["output"]
    return {**body, "output": out[:-1] if out.endswith("\n") else out}


def _merge_stderr(body: Body) -> Body:
    return {**body, "output": body["output"] + body["error"], "error": ""}


def _signal_exit_code(body: Body) -> Body:
    code = body["exit_code"]
    return {**body, "exit_code": 128 - code} if 128 < code < 160 else body


def _cap(field: str, limit: int) -> Callable[[Body], Body]:
    def cap(body: Body) -> Body:
        raw = body[field].encode()
        if len(raw) <= limit:
            return body
        return {**body, field: raw[:limit].decode("utf-8", errors="replace"), "truncated": True}
    return cap


def _recut(text: str) -> str:
    raw = text.encode()
    return raw[:CAP].decode("utf-8", errors="ignore") if len(raw) > CAP else text


def _strip_blanks(text: str) -> str:
    return "\n".join(line.rstrip(" \t") for line in text.split("\n"))


def _prefix(bash: str, python: str) -> Callable[[str, str], str]:
    """A deployment difference as a preamble on line 1 (no line number moves)."""
    def prefix(code: str, language: str) -> str:
        return (bash if language == "bash" else python) + code
    return prefix


_WAIT_PY = ("import atexit, os\ndef _wait():\n    try:\n        while True:\n            os.wait()\n"
            "    except ChildProcessError:\n        pass\natexit.register(_wait)")


_ALL = (
    Defect("drop_trailing_newline", "streams", "drops the output's final newline", result=_drop_trailing_newline),
    Defect("merge_stderr", "streams", "stores stderr after stdout in output", result=_merge_stderr),
    Defect("signal_exit_code", "exit codes", "reports a signal death the Python way (-N), not 128 + N",
           result=_signal_exit_code),
    Defect("output_cap", "volume", "applies the output cap at 4000 bytes instead of the executor's",
           result=_cap("output", 4000)),
    Defect("unicode_reencode", "streams", "decodes UTF-8 output as Latin-1 somewhere in the pipeline",
           result=lambda b: {**b, "output": b["output"].encode("utf-8").decode("latin-1")}),
    Defect("stderr_cap", "volume", "stores at most 4000 bytes of stderr (a log field's limit)",
           result=_cap("error", 4000)),
    Defect("cap_at_character", "volume", "re-applies the cap to the text's UTF-8 bytes, dropping a cut character",
           result=lambda b: _texts(b, _recut)),
    Defect("strip_trailing_blanks", "trailing blanks", "strips trailing spaces and tabs from every line",
           result=lambda b: _texts(b, _strip_blanks)),
    Defect("universal_newlines", "CR and CRLF", "reads the output in text mode: CRLF and CR become LF",
           result=lambda b: _texts(b, lambda t: t.replace("\r\n", "\n").replace("\r", "\n"))),
    Defect("strip_nul", "NUL and invalid UTF-8", "drops NUL characters (a store that cannot hold them)",
           result=lambda b: _texts(b, lambda t: t.replace("\x00", ""))),
    Defect("blank_output_dropped", "nothing versus an empty line", "stores blank output as no output",
           result=lambda b: _texts(b, lambda t: "" if not t.strip() else t)),
    Defect("timeout_slack", "endings near the deadline", "adds the task's 1 s margin to the program's timeout",
           timeout=lambda t: None if t is None else t + 1.0),
    Defect("wait_for_children", "background children", "executor-3's wrapper waits for background children",
           code=_prefix("trap wait EXIT; ", f"exec({_WAIT_PY!r}); ")),
    Defect("stdin_closed", "stdin", "executor-3 runs submissions with stdin closed, not /dev/null",
           code=_prefix("exec 0<&-; ", "import os; os.close(0); ")),
    Defect("lower_file_limit", "files in the working directory", "executor-3 limits files to 1 MiB, not 10 MiB",
           code=_prefix("ulimit -f 1024; ",
                        "import resource; resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20)); ")),
    Defect("executor3_umask", "environment", "executor-3 is deployed with umask 077",
           code=_prefix("umask 077; ", "import os; os.umask(0o077); ")),
    Defect("executor3_timezone", "environment", "executor-3 is deployed in another time zone (TZ=CET-1)",
           code=_prefix("export TZ=CET-1; ", "import os, time; os.environ['TZ'] = 'CET-1'; time.tzset(); ")),
    Defect("executor3_extra_variable", "environment", "executor-3 leaks a variable of its own into submissions",
           code=_prefix("export CELERY_WORKER_ID=celery-worker-1; ",
                        "import os; os.environ['CELERY_WORKER_ID'] = 'celery-worker-1'; ")),
)
DEFECTS: dict[str, Defect] = {d.name: d for d in _ALL}


# Defects of the Celery path's behaviour rather than of its answer: the platform's promises broken
# (harness/chaos/promises.py must catch each). The task checks for them by name.
BEHAVIOUR: dict[str, str] = {
    "retry_fixed_countdown": "every retry waits the first countdown (no exponential backoff)",
    "no_dead_letter": "a task that exhausts its retries is not pushed to celery:dlq",
    "rabbitmq_priority": "the gateway sends the API priority as it is (RabbitMQ: higher is more urgent), where "
                         "Redis takes 0 as the most urgent",
    "swallow_soft_time_limit": "the pool's soft-timeout signal is ignored during the executor call, so the soft "
                               "time limit never stops a task",
}


def parse(names: list[str]) -> list[str]:
    unknown = [n for n in names if n not in DEFECTS and n not in BEHAVIOUR]
    if unknown:
        raise ValueError(f"CELERY_CANDIDATE_DEFECTS names unknown defects {unknown}; "
                         f"known: {sorted([*DEFECTS, *BEHAVIOUR])}")
    return names


def apply(names: list[str], body: Body) -> Body:
    """The executor's answer as the defects ``names`` change it."""
    for name in names:
        change = DEFECTS[name].result if name in DEFECTS else None
        body = change(body) if change else body
    return body


def apply_timeout(names: list[str], timeout_s: float | None) -> float | None:
    """The timeout the task asks executor-3 for, as the defects ``names`` change it."""
    for name in names:
        change = DEFECTS[name].timeout if name in DEFECTS else None
        timeout_s = change(timeout_s) if change else timeout_s
    return timeout_s


def apply_code(names: list[str], code: str, language: str) -> str:
    """The program the task sends executor-3, as the defects ``names`` change it."""
    for name in names:
        change = DEFECTS[name].code if name in DEFECTS else None
        code = change(code, language) if change else code
    return code
