"""The filesystem a submission sees: a root of its own, built in the execution's mount namespace.

The execution's init (PID 1 of its own PID namespace, still root, see ``supervisor``) calls
``enter`` once, before it starts the submission. The new root is a small tmpfs holding only:

- ``/usr`` read-only, and the host's top-level links into it (``/bin``, ``/lib``, ``/lib64``,
  ``/sbin``; read-only binds where they are directories); the interpreter's installation too when
  it lives outside ``/usr`` (read-only);
- ``/etc`` with generated ``passwd``, ``group``, ``hosts``, ``nsswitch.conf`` and ``hostname``, the
  host's ``ld.so.cache``, ``localtime`` and ``alternatives`` (read-only);
- ``/dev`` with ``null``, ``zero``, ``full``, ``random`` and ``urandom`` (binds of the host's
  nodes), the ``fd``/``stdin``/``stdout``/``stderr`` links and a private ``/dev/shm``;
- ``/proc``: a new procfs of the execution's PID namespace, mounted ``hidepid=2``, so the
  submission sees its own processes and nothing else (not even the init, which is root);
- ``/tmp``: a private tmpfs, and the working directory bound read-write at its own path.

Nothing else of the host is reachable: no checkout, no run folders or ledgers, no other execution's
directory, no ``/root``, ``/home``, ``/work``, no host ``/tmp``. The root itself is then made
read-only, moved onto ``/`` and entered with ``chroot`` (switch_root's way: ``pivot_root`` is not in
Docker's default seccomp profile, and an unprivileged submission cannot leave a chroot). Every
mount is private to the namespace, so nothing propagates back to the host, and it all disappears
with the namespace's last process.
"""

from __future__ import annotations

import ctypes
import os
import socket
from collections.abc import Sequence

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
NAMESPACES = CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWPID | CLONE_NEWNET

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_BIND = 4096
MS_MOVE = 8192
MS_REC = 16384
MS_PRIVATE = 1 << 18

HOSTNAME = "sandbox"
_TOP_LEVEL = ("usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32")
_DEVICES = ("null", "zero", "full", "random", "urandom")
_DEV_LINKS = {"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1",
              "stderr": "/proc/self/fd/2"}
# Sizes of the private tmpfs mounts: they live in memory, outside the address-space limit.
ROOT_TMPFS = "mode=0755,size=1m,nr_inodes=1024"
TMP_TMPFS = "mode=1777,size=32m,nr_inodes=4096"
SHM_TMPFS = "mode=1777,size=16m,nr_inodes=256"

_libc = ctypes.CDLL(None, use_errno=True)


def _c(text: str | None) -> bytes | None:
    return None if text is None else os.fsencode(text)


def _check(ret: int, what: str) -> None:
    if ret != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def unshare(flags: int) -> None:
    """unshare(2): needs CAP_SYS_ADMIN (root, or a container given it)."""
    _check(_libc.unshare(ctypes.c_int(flags)), f"unshare({flags:#x})")


def setns(fd: int, nstype: int) -> None:
    """setns(2): join the namespace ``fd`` refers to (for a PID namespace: the caller's next children)."""
    _check(_libc.setns(ctypes.c_int(fd), ctypes.c_int(nstype)), f"setns({nstype:#x})")


def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    _check(_libc.mount(_c(source), _c(target), _c(fstype), ctypes.c_ulong(flags), _c(data)),
           f"mount {source or fstype or ''} on {target}")


def _bind(source: str, target: str, *, readonly: bool) -> None:
    """Bind ``source`` at ``target`` (which must exist), without setuid binaries or device files."""
    mount(source, target, None, MS_BIND | MS_REC)
    mount(None, target, None, MS_BIND | MS_REMOUNT | MS_NOSUID | MS_NODEV | (MS_RDONLY if readonly else 0))


def _placeholder(target: str, *, directory: bool) -> None:
    if directory:
        os.makedirs(target, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "a"):
            pass


def _write(path: str, text: str) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)


def _etc(root: str, uid: int, workdir: str) -> None:
    etc = root + "/etc"
    os.mkdir(etc)
    _write(etc + "/passwd", f"root:x:0:0:root:/root:/usr/sbin/nologin\n"
                            f"nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
                            f"sandbox:x:{uid}:{uid}:sandbox:{workdir}:/bin/sh\n")
    _write(etc + "/group", f"root:x:0:\nnogroup:x:65534:\nsandbox:x:{uid}:\n")
    _write(etc + "/hosts", "127.0.0.1\tlocalhost\n::1\tlocalhost\n")
    _write(etc + "/nsswitch.conf", "passwd: files\ngroup: files\nhosts: files\n")
    _write(etc + "/hostname", HOSTNAME + "\n")
    for name in ("ld.so.cache", "localtime", "alternatives"):
        host = "/etc/" + name
        if os.path.islink(host):
            os.symlink(os.readlink(host), etc + "/" + name)
        elif os.path.exists(host):
            _placeholder(etc + "/" + name, directory=os.path.isdir(host))
            _bind(host, etc + "/" + name, readonly=True)


def _dev(root: str) -> None:
    dev = root + "/dev"
    os.mkdir(dev)
    for name in _DEVICES:
        _placeholder(f"{dev}/{name}", directory=False)
        mount(f"/dev/{name}", f"{dev}/{name}", None, MS_BIND)  # the node itself: no nodev here
    for name, target in _DEV_LINKS.items():
        os.symlink(target, f"{dev}/{name}")
    os.mkdir(dev + "/shm")
    mount("tmpfs", dev + "/shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, SHM_TMPFS)


def enter(base: str, *, workdir: str, uid: int, readonly: Sequence[str] = ()) -> None:
    """Build the submission's root on the empty directory ``base`` and make it this process's root.

    Must run as root, in a fresh mount namespace and, for ``/proc`` to show the right processes, as
    a process of the execution's PID namespace. ``readonly`` names extra host directories to show
    read-only at their own paths (an interpreter installed outside ``/usr``). Raises OSError naming
    the mount that failed.
    """
    mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing done here propagates to the host
    mount("tmpfs", base, "tmpfs", MS_NOSUID | MS_NODEV, ROOT_TMPFS)
    for name in _TOP_LEVEL:
        host = "/" + name
        if os.path.islink(host):
            os.symlink(os.readlink(host), f"{base}/{name}")
        elif os.path.isdir(host):
            os.mkdir(f"{base}/{name}")
            _bind(host, f"{base}/{name}", readonly=True)
    for path in readonly:
        if not any(path == f"/{top}" or path.startswith(f"/{top}/") for top in _TOP_LEVEL):
            _placeholder(base + path, directory=True)
            _bind(path, base + path, readonly=True)
    _etc(base, uid, workdir)
    _dev(base)
    os.mkdir(base + "/proc")
    mount("proc", base + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, "hidepid=2")
    os.mkdir(base + "/tmp")
    mount("tmpfs", base + "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, TMP_TMPFS)
    _placeholder(base + workdir, directory=True)
    _bind(workdir, base + workdir, readonly=False)
    mount(None, base, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
    os.chdir(base)
    mount(base, "/", None, MS_MOVE)
    os.chroot(".")
    os.chdir("/")
    socket.sethostname(HOSTNAME)
