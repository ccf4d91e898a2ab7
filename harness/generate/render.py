"""Turn a ``ProgramSpec`` into Python or bash source: the shortest program that does what the spec says.

Shrunk counterexamples are read by people, so every step is one line. Two rules keep results exact:

- a Python program's first line is always ``import sys`` and a bash program's first line never
  appears in an error message (bash's syntax error is an unterminated ``if`` at the end, reported
  as "unexpected end of file", not by quoting the line). Nothing the platform reports depends on
  the text of line 1, which is what lets a deployment defect (``system_under_test.defects``) put
  its preamble there without moving any line number;
- output written before a signal, a timeout or a late ending is flushed first (a death by signal
  skips Python's flush at exit).

Bash writes go through ``printf`` with the text as its format: printable characters as they are,
``%`` and ``\\`` escaped, every other byte (NUL, CR, invalid UTF-8) as a ``\\ooo`` octal escape,
so any byte string can be written; ``repeat`` reuses the format once per argument of ``$(seq N)``.
"""

from __future__ import annotations

import signal

from harness.generate import environment
from harness.generate.spec import (
    Background,
    CommandNotFound,
    Ending,
    Exit,
    ExitMessage,
    FileRoundTrip,
    InputEOF,
    Late,
    ListDir,
    MemoryHit,
    ProgramSpec,
    Raise,
    ReadStdin,
    Report,
    Signal,
    Step,
    SyntaxErr,
    Timeout,
    Write,
    WriteBytes,
)

MISSING_COMMAND = "crucible-no-such-command"
BACKGROUND_SLEEP_S = 0.5  # a background child's life: far longer than the program, far shorter than any timeout


def render(spec: ProgramSpec) -> str:
    return render_python(spec) if spec.language == "python" else render_bash(spec)


# -- python --------------------------------------------------------------------------------------------


def _py_repeat(value: object, repeat: int) -> str:
    return repr(value) if repeat == 1 else f"{value!r} * {repeat}"


def _py_step(step: Step) -> str:
    if isinstance(step, Write):
        return f"sys.{step.stream}.write({_py_repeat(step.text, step.repeat)})"
    if isinstance(step, WriteBytes):
        # Text written before sits in the text layer's buffer: flush it so the bytes come after it.
        return f"sys.{step.stream}.flush(); sys.{step.stream}.buffer.write({_py_repeat(step.data_bytes, step.repeat)})"
    if isinstance(step, ReadStdin):
        if step.how == "all":
            return "sys.stdout.write('stdin: %d bytes\\n' % len(sys.stdin.buffer.read()))"
        return "sys.stdout.write('stdin line: %r\\n' % sys.stdin.readline())"
    if isinstance(step, FileRoundTrip):
        name = step.name
        mkdir = f"import os; os.makedirs({name.rsplit('/', 1)[0]!r}, exist_ok=True); " if "/" in name else ""
        show = "; sys.stdout.write(d.decode())" if step.small else ""
        return (f"{mkdir}open({name!r}, 'w', encoding='utf-8', newline='').write({_py_repeat(step.text, step.repeat)}); "
                f"d = open({name!r}, 'rb').read(); sys.stdout.write('%s: %d bytes\\n' % ({name!r}, len(d))){show}")
    if isinstance(step, ListDir):
        return "import os; sys.stdout.write('dir:' + ''.join(' ' + n for n in sorted(os.listdir('.'))) + '\\n')"
    if isinstance(step, Background):
        argv = {"writes-late": f"['sh', '-c', 'sleep {BACKGROUND_SLEEP_S}; echo late']",
                "silent": f"['sleep', '{BACKGROUND_SLEEP_S}']", "detached": f"['sleep', '{BACKGROUND_SLEEP_S}']"}[step.kind]
        quiet = ", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL" if step.kind == "detached" else ""
        return f"import subprocess; subprocess.Popen({argv}{quiet})"
    if isinstance(step, Report):
        return environment.python_line(step.aspect)
    raise TypeError(f"unknown step {step!r}")


def render_python(spec: ProgramSpec) -> str:
    end = spec.ending
    lines = ["import sys", *(_py_step(s) for s in spec.steps)]
    if spec.steps and isinstance(end, (Signal, Timeout, Late)):
        lines.append("sys.stdout.flush(); sys.stderr.flush()")  # a signal death skips the flush at exit
    lines += _py_ending(end)
    return "\n".join(lines) + "\n"


def _py_ending(end: Ending) -> list[str]:
    if isinstance(end, Exit):
        return [f"sys.exit({end.code})"] if end.code else []
    if isinstance(end, ExitMessage):
        return [f"sys.exit({end.message!r})"]
    if isinstance(end, Raise):
        return [f"raise {end.exception}({end.message!r})"]
    if isinstance(end, InputEOF):
        return ["input()"]
    if isinstance(end, SyntaxErr):
        return ["def broken(:", "    pass"]
    if isinstance(end, Signal):
        return [f"import os; os.kill(os.getpid(), {end.signum})"]
    if isinstance(end, Timeout):
        return ["import time; time.sleep(3600)"]
    if isinstance(end, Late):
        return [f"import time; time.sleep({end.seconds})", *([f"sys.exit({end.code})"] if end.code else [])]
    if isinstance(end, MemoryHit):
        return ["hog = bytearray(1 << 40)"]
    raise ValueError(f"python programs cannot end with {end!r}")


# -- bash ----------------------------------------------------------------------------------------------


def bash_quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


_NAMED = {"\n": "\\n", "\t": "\\t", "\r": "\\r", "%": "%%", "\\": "\\\\"}


def printf_format(data: str | bytes) -> str:
    """``data`` as a printf format that prints exactly its bytes (single-quote it with ``bash_quote``)."""
    if isinstance(data, bytes):
        return "".join(_NAMED.get(chr(b), chr(b)) if 0x20 <= b < 0x7F or chr(b) in _NAMED else f"\\{b:03o}"
                       for b in data)
    out = []
    for ch in data:
        if ch in _NAMED:
            out.append(_NAMED[ch])
        elif ch.isprintable():
            out.append(ch)
        else:
            out.append("".join(f"\\{b:03o}" for b in ch.encode("utf-8")))
    return "".join(out)


def _bash_printf(data: str | bytes, repeat: int) -> str:
    fmt = printf_format(data)
    return f"printf {bash_quote(fmt)}" if repeat == 1 else f"printf {bash_quote(fmt + '%.0s')} $(seq {repeat})"


def _bash_step(step: Step) -> str:
    if isinstance(step, Write | WriteBytes):
        data = step.text if isinstance(step, Write) else step.data_bytes
        return _bash_printf(data, step.repeat) + (" >&2" if step.stream == "stderr" else "")
    if isinstance(step, ReadStdin):
        if step.how == "all":
            return "printf 'stdin: %s bytes\\n' \"$(wc -c)\""
        return "read -r line; printf 'stdin line: %s\\n' \"$?\""
    if isinstance(step, FileRoundTrip):
        name = bash_quote(step.name)
        mkdir = f"mkdir -p {bash_quote(step.name.rsplit('/', 1)[0])}; " if "/" in step.name else ""
        show = f"; cat {name}" if step.small else ""
        return (f"{mkdir}{_bash_printf(step.text, step.repeat)} > {name}; "
                f"printf '%s: %s bytes\\n' {name} \"$(wc -c < {name})\"{show}")
    if isinstance(step, ListDir):
        return "shopt -s dotglob nullglob; printf 'dir:'; printf ' %s' *; printf '\\n'"
    if isinstance(step, Background):
        return {"writes-late": f"(sleep {BACKGROUND_SLEEP_S}; echo late) &", "silent": f"sleep {BACKGROUND_SLEEP_S} &",
                "detached": f"sleep {BACKGROUND_SLEEP_S} >/dev/null 2>&1 &"}[step.kind]
    if isinstance(step, Report):
        return environment.bash_line(step.aspect)
    raise TypeError(f"unknown step {step!r}")


def render_bash(spec: ProgramSpec) -> str:
    lines = [_bash_step(s) for s in spec.steps]
    end = spec.ending
    if isinstance(end, Exit):
        lines += [f"exit {end.code}"] if end.code or not lines else []  # every step's last command exits 0
    elif isinstance(end, Signal):
        lines.append(f"kill -{end.signum} $$")
    elif isinstance(end, Timeout):
        lines.append("sleep 3600")
    elif isinstance(end, Late):
        lines += [f"sleep {end.seconds}", *([f"exit {end.code}"] if end.code else [])]
    elif isinstance(end, SyntaxErr):
        lines.append("if true; then")
    elif isinstance(end, CommandNotFound):
        lines.append(MISSING_COMMAND)
    else:
        raise ValueError(f"bash programs cannot end with {end!r}")
    return "\n".join(lines) + "\n"


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"SIGRTMIN+{signum - int(signal.SIGRTMIN)}"
