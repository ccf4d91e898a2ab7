"""The environment family: one line of Python or bash per aspect of the environment a program runs in.

Each ``Report`` step prints one aspect, every line of it prefixed with the aspect's name so that a
difference reads as what it is (``umask: 0022`` vs ``umask: 0077``). What the program prints is not
known in advance: it is compared between the paths (and between two runs of one path, A/A), after
the normalisers declared in ``harness/parity/normalisers.toml`` (the per-run working directory, the
per-slot uid, ...; each with its reason, every hit counted).

The aspects: ``variables`` (names and values), ``cwd`` (the working directory and its mode),
``umask``, ``ids`` (uid, gid, groups), ``rlimits`` (every one), ``locale`` (and the encodings),
``timezone``, ``interpreter`` (version, path, flags, module path), ``modules`` (Python: every
importable top-level module; bash: every command it can run), ``writable`` (a fixed list of paths),
``network`` (a connection to 127.0.0.1 and the interfaces: no traffic leaves the machine),
``hostname``, ``fds`` (open file descriptors and what they are), ``capabilities`` and
``scheduling`` (nice value, CPUs).

Every bash line ends with a command that exits 0, so a program's exit status stays its ending's.
"""

from __future__ import annotations

from harness.generate.spec import Aspect

WRITABLE_PATHS = (".", "/tmp", "/var/tmp", "/dev/shm", "/", "/etc", "/usr", "/home", "/root", "/opt", "/var/log")
CAPABILITY_LINES = ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs", "Seccomp")
PROBE = ("127.0.0.1", 1)  # nothing listens there; the answer says whether the network exists at all

_PYTHON: dict[Aspect, str] = {
    "variables": "import os; sys.stdout.write(''.join('env %s=%s\\n' % kv for kv in sorted(os.environ.items())))",
    "cwd": "import os; sys.stdout.write('cwd: %s mode %o\\n' % (os.getcwd(), os.stat('.').st_mode & 0o7777))",
    "umask": "import os; m = os.umask(0); os.umask(m); sys.stdout.write('umask: %04o\\n' % m)",
    "ids": ("import os; sys.stdout.write('ids: uid=%d gid=%d euid=%d egid=%d groups=%s\\n' % (os.getuid(), "
            "os.getgid(), os.geteuid(), os.getegid(), ','.join(map(str, sorted(os.getgroups())))))"),
    "rlimits": ("import resource; sys.stdout.write(''.join('rlimit %s: %s %s\\n' % ((n,) + "
                "resource.getrlimit(getattr(resource, n))) for n in sorted(dir(resource)) if n.startswith('RLIMIT_')))"),
    "locale": ("import locale; sys.stdout.write('locale: %s preferred=%s fs=%s stdio=%s/%s utf8_mode=%d\\n' % "
               "(locale.setlocale(locale.LC_ALL, ''), locale.getpreferredencoding(False), "
               "sys.getfilesystemencoding(), sys.stdout.encoding, sys.stdout.errors, sys.flags.utf8_mode))"),
    "timezone": ("import os, time; sys.stdout.write('timezone: TZ=%s tzname=%s offset=%d\\n' % "
                 "(os.environ.get('TZ'), ','.join(time.tzname), time.timezone))"),
    "interpreter": ("sys.stdout.write('interpreter: %s | %s | %s | %s | path %s\\n' % (sys.version.replace('\\n', ' '), "
                    "sys.executable, sys.prefix, sys.flags, sys.path))"),
    "modules": ("import pkgutil; sys.stdout.write('modules: %s\\n' % ' '.join(sorted(set(sys.builtin_module_names) "
                "| {m.name for m in pkgutil.iter_modules()})))"),
    "writable": ("import os; sys.stdout.write(''.join('writable %s: %s\\n' % (p, 'yes' if os.access(p, os.W_OK) else "
                 f"'no' if os.path.exists(p) else 'absent') for p in {WRITABLE_PATHS!r}))"),
    "network": ("import errno, socket; r = socket.socket().connect_ex(" + repr(PROBE) + "); "
                "sys.stdout.write('network: connect %s:%d %s; interfaces %s\\n' % (" + repr(PROBE[0]) + ", "
                + str(PROBE[1]) + ", errno.errorcode.get(r, r), ' '.join(sorted(n for _, n in socket.if_nameindex()))))"),
    "hostname": "import socket; sys.stdout.write('hostname: %s\\n' % socket.gethostname())",
    "fds": ("import os; sys.stdout.write('fds: %s\\n' % ' '.join('%s->%s' % (f, os.readlink('/proc/self/fd/' + f)"
            ".split(':')[0]) for f in sorted(os.listdir('/proc/self/fd'), key=int) if os.path.exists('/proc/self/fd/' + f)))"),
    "capabilities": ("sys.stdout.write(''.join(line for line in open('/proc/self/status') if line.split(':')[0] in "
                     f"{CAPABILITY_LINES!r}))"),
    "scheduling": ("import os; sys.stdout.write('scheduling: nice %d cpus %d affinity %d\\n' % (os.nice(0), "
                   "os.cpu_count(), len(os.sched_getaffinity(0))))"),
}

_BASH: dict[Aspect, str] = {
    "variables": "env | LC_ALL=C sort | sed 's/^/env /'",
    "cwd": "printf 'cwd: %s mode %s\\n' \"$PWD\" \"$(stat -c %a .)\"",
    "umask": "printf 'umask: %s\\n' \"$(umask)\"",
    "ids": "printf 'ids: %s\\n' \"$(id)\"",
    "rlimits": "ulimit -a | sed 's/^/rlimit /'; ulimit -Ha | sed 's/^/rlimit hard /'",
    "locale": "locale 2>&1 | sed 's/^/locale /'; printf 'locale charmap: %s\\n' \"$(locale charmap 2>&1)\"",
    "timezone": "printf 'timezone: TZ=%s %s\\n' \"${TZ-}\" \"$(date +%Z%z)\"",
    "interpreter": "printf 'interpreter: bash %s %s opts %s %s\\n' \"$BASH_VERSION\" \"$BASH\" \"$SHELLOPTS\" \"$BASHOPTS\"",
    "modules": "printf 'commands: %s\\n' \"$(compgen -c | LC_ALL=C sort -u | tr '\\n' ' ')\"",
    "writable": ("for p in " + " ".join(WRITABLE_PATHS) + "; do if [ -w \"$p\" ]; then w=yes; elif [ -e \"$p\" ]; "
                 "then w=no; else w=absent; fi; printf 'writable %s: %s\\n' \"$p\" \"$w\"; done"),
    "network": (f"c=$( (exec 3<>/dev/tcp/{PROBE[0]}/{PROBE[1]}) 2>&1 ); printf 'network: connect {PROBE[0]}:{PROBE[1]} "
                "%s; interfaces %s\\n' \"${c##*: }\" \"$(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | "
                "LC_ALL=C sort | tr '\\n' ' ')\""),
    "hostname": "printf 'hostname: %s\\n' \"$HOSTNAME\"",
    "fds": ("printf 'fds:'; for f in /proc/$$/fd/*; do printf ' %s->%s' \"${f##*/}\" \"$(readlink \"$f\" | cut -d: -f1)\"; "
            "done; printf '\\n'"),
    "capabilities": "grep -E '^(" + "|".join(CAPABILITY_LINES) + "):' /proc/self/status; true",
    "scheduling": "printf 'scheduling: nice %s cpus %s\\n' \"$(nice)\" \"$(nproc)\"",
}


def python_line(aspect: Aspect) -> str:
    return _PYTHON[aspect]


def bash_line(aspect: Aspect) -> str:
    return _BASH[aspect]
