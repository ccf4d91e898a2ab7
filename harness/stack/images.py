"""Images of the containers launcher, built locally and tagged by their content.

One image (``Dockerfile``) runs every role of the system under test and the harness's fault proxy.
Its tag is ``crucible-sut:<hash12>``, where the hash covers exactly what goes into the build: the
Dockerfile, every file its ``COPY`` lines name, the wheelhouse's wheels, the base image's id and the
build arguments. An unchanged tree therefore reuses the image it built before, with no build at
all, and any change that could change the image gives a new tag. The build context is assembled
from that same list of files, so what is hashed is what is built.

Base image (``BASE_IMAGE``), in this order:

1. ``base=`` / ``HARNESS_BASE_IMAGE``, when given;
2. ``python:3.11-slim`` when it is present locally (users with a registry have pulled it);
3. ``crucible-base:bookworm`` when it is present locally (``scripts/prepare-docker.sh`` builds it
   with debootstrap on machines with no registry);
4. otherwise ``python:3.11-slim`` is pulled, and if that fails the error says to run
   ``scripts/prepare-docker.sh``.

So a machine that has the registry image keeps using it, and one with no registry uses the local
base without ever trying a pull.

Wheelhouse: a folder of wheels (the project's core dependencies plus setuptools, made by ``pip
wheel``); with one, the image is built with ``pip install --no-index`` and never goes online. It is
``wheelhouse=`` / ``HARNESS_WHEELHOUSE`` / ``build/wheelhouse``, used when it holds wheels. With the
local base and no wheelhouse, one is built on the host first (the host reaches PyPI; the build
container need not).

Command line::

    python -m harness.stack.images build [--base IMAGE] [--wheelhouse DIR | --online] [--quiet]
    python -m harness.stack.images tag   [--base IMAGE] [--wheelhouse DIR | --online]
    python -m harness.stack.images prune   # remove crucible-sut tags other than the current one
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import os
import re
import shlex
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import StackError
from harness.run import PROJECT_ROOT

SUT_REPOSITORY = "crucible-sut"
REGISTRY_BASE = "python:3.11-slim"
LOCAL_BASE = "crucible-base:bookworm"
TOXIPROXY_REPOSITORIES = ("ghcr.io/shopify/toxiproxy", "shopify/toxiproxy")
DEFAULT_WHEELHOUSE = PROJECT_ROOT / "build" / "wheelhouse"
CONTENT_LABEL = "crucible.harness.content"
# Every container and network the harness creates carries these (see containers.reap).
LABEL_RUN = "crucible.harness.run"
LABEL_OWNER = "crucible.harness.owner"  # <pid>:<start ticks> of the harness process
LABEL_HOST = "crucible.harness.host"
BASE_LABEL = "crucible.harness.base"
# The project's own wheel changes with every edit and is not installed from the wheelhouse (the
# image builds the project from its sources), so it is left out of the hash and the context.
_OWN_WHEEL_PREFIX = "crucible_migration_harness-"
_SKIP_PARTS = {"__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache"}
_SKIP_SUFFIXES = (".pyc", ".pyo")
_HASH_VERSION = "crucible-image-v1"

START_ENGINE_HINT = (
    "start a Docker engine (`sudo systemctl start docker`, or `sudo dockerd &`); on a machine with no "
    "systemd and no registry, `sudo scripts/prepare-docker.sh` installs and starts one and builds the "
    "images; or use the processes launcher (--stack processes), which needs no Docker"
)


class DockerUnavailable(StackError):
    """No Docker engine answers."""

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(f"no Docker engine answers at {where}: {reason}.\n  hint: {START_ENGINE_HINT}")
        self.where = where
        self.reason = reason


class ImageBuildError(StackError):
    """An image could not be had: the build failed, or its base is missing."""

    def __init__(self, message: str, log_tail: list[str] | None = None, hint: str = "") -> None:
        text = message
        if log_tail:
            text += "\n  last build log lines:\n" + "\n".join(f"    {line}" for line in log_tail)
        if hint:
            text += f"\n  hint: {hint}"
        super().__init__(text)
        self.log_tail = log_tail or []
        self.hint = hint


@dataclass(frozen=True)
class ImageSet:
    """The images a containers stack runs."""

    sut: str  # every role of the system under test
    fault_proxy: str  # the fault proxy: ``sut`` (harness.faultproxy) or a local Toxiproxy image
    toxiproxy: bool  # ``fault_proxy`` is a real Toxiproxy
    base: str
    content_hash: str
    built: bool  # False when the content tag already existed
    build_s: float = 0.0


def owner_labels(run_id: str) -> dict[str, str]:
    """The labels that tie a container or network to one run and to the harness process that made it."""
    from harness.stack.process import owner_token

    return {LABEL_RUN: run_id, LABEL_OWNER: owner_token(), LABEL_HOST: socket.gethostname()}


def docker_host() -> str:
    return os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


def docker_client(timeout_s: int = 120) -> Any:
    """A docker SDK client that has answered a ping; DockerUnavailable with the fix otherwise."""
    try:
        import docker
        from docker.errors import DockerException
    except ImportError as exc:  # pragma: no cover - the harness extra installs it
        raise StackError("the docker SDK is missing: pip install -e '.[harness]'") from exc
    try:
        client = docker.from_env(timeout=timeout_s)
        client.ping()
    except DockerException as exc:
        raise DockerUnavailable(docker_host(), _short_reason(exc)) from exc
    except Exception as exc:  # requests' connection errors when the socket exists but is dead
        raise DockerUnavailable(docker_host(), _short_reason(exc)) from exc
    return client


def _short_reason(exc: BaseException) -> str:
    text = str(exc)
    for marker in ("Connection refused", "No such file or directory", "Permission denied", "timed out"):
        if marker in text:
            return marker.lower()
    return text.splitlines()[0][:200] if text else type(exc).__name__


def image_exists(client: Any, ref: str) -> bool:
    from docker.errors import ImageNotFound

    try:
        client.images.get(ref)
        return True
    except ImageNotFound:
        return False


def image_id(client: Any, ref: str) -> str:
    return str(client.images.get(ref).id)


# -- base image ----------------------------------------------------------------------------------


def choose_base(client: Any, requested: str | None = None, *, pull: bool = True) -> str:
    """The BASE_IMAGE to build from (see the module docstring for the order)."""
    requested = requested or os.environ.get("HARNESS_BASE_IMAGE") or None
    if requested:
        if not image_exists(client, requested):
            _pull(client, requested)
        return requested
    if image_exists(client, REGISTRY_BASE):
        return REGISTRY_BASE
    if image_exists(client, LOCAL_BASE):
        return LOCAL_BASE
    if pull:
        _pull(client, REGISTRY_BASE)
        return REGISTRY_BASE
    raise ImageBuildError(f"neither {REGISTRY_BASE} nor {LOCAL_BASE} is present locally",
                          hint="`sudo scripts/prepare-docker.sh` builds a local base image with no registry")


def _pull(client: Any, ref: str) -> None:
    from docker.errors import DockerException

    repository, _, tag = ref.rpartition(":") if ":" in ref.rsplit("/", 1)[-1] else (ref, "", "latest")
    try:
        client.images.pull(repository, tag=tag or "latest")
    except DockerException as exc:
        raise ImageBuildError(
            f"base image {ref} is not present locally and cannot be pulled ({_short_reason(exc)})",
            hint=f"with no registry, `sudo scripts/prepare-docker.sh` builds {LOCAL_BASE} locally "
                 f"(debootstrap from the Debian mirror); or `docker pull {ref}` where a registry is reachable",
        ) from exc


def find_toxiproxy(client: Any) -> str | None:
    """A real Toxiproxy image present locally (never pulled), or None."""
    for repository in TOXIPROXY_REPOSITORIES:
        with contextlib.suppress(Exception):
            for image in client.images.list(name=repository):
                if image.tags:
                    return str(sorted(image.tags)[0])
    return None


# -- wheelhouse ----------------------------------------------------------------------------------


def default_wheelhouse() -> Path:
    return Path(os.environ.get("HARNESS_WHEELHOUSE") or DEFAULT_WHEELHOUSE)


def wheels_in(wheelhouse: Path | None) -> list[Path]:
    if wheelhouse is None or not wheelhouse.is_dir():
        return []
    return sorted(p for p in wheelhouse.glob("*.whl") if not p.name.startswith(_OWN_WHEEL_PREFIX))


def pyproject_stamp(root: Path = PROJECT_ROOT) -> str:
    """What scripts/prepare-docker.sh writes to ``<wheelhouse>/.stamp``: the wheelhouse's source."""
    return hashlib.sha256((root / "pyproject.toml").read_bytes()).hexdigest()[:16]


def wheelhouse_is_current(wheelhouse: Path, root: Path = PROJECT_ROOT) -> bool:
    stamp = wheelhouse / ".stamp"
    return bool(wheels_in(wheelhouse)) and stamp.is_file() and stamp.read_text().strip() == pyproject_stamp(root)


def build_wheelhouse(wheelhouse: Path, root: Path = PROJECT_ROOT,
                     log: Callable[[str], None] | None = None) -> float:
    """``pip wheel`` the project's core dependencies (and setuptools) into ``wheelhouse``.

    The same wheels as ``pip wheel . -w DIR`` less the project's own (the image builds the project
    from its sources), without building the project in the tree (no ``build/lib`` left behind).
    """
    started = time.monotonic()
    wheelhouse.mkdir(parents=True, exist_ok=True)
    if log:
        log(f"building the wheelhouse {wheelhouse} (pip wheel of the project's core dependencies) ...")
    argv = [sys.executable, "-m", "pip", "wheel", "-q", *core_requirements(root), "setuptools>=68", "wheel",
            "-w", str(wheelhouse)]
    done = subprocess.run(argv, capture_output=True, text=True, cwd=root)
    if done.returncode != 0:
        raise ImageBuildError(f"`{shlex.join(argv)}` failed with exit code {done.returncode}",
                              (done.stdout + done.stderr).splitlines()[-20:],
                              hint="the wheelhouse needs PyPI once; or pass --online to let the build use it")
    (wheelhouse / ".stamp").write_text(pyproject_stamp(root) + "\n")
    return time.monotonic() - started


def core_requirements(root: Path = PROJECT_ROOT) -> list[str]:
    """The project's core dependencies (``[project] dependencies``), what the image installs."""
    import tomllib

    with open(root / "pyproject.toml", "rb") as fh:
        return list(tomllib.load(fh)["project"]["dependencies"])


_NO_MATCH = re.compile(r"No matching distribution found for (.+?)\s*$", re.MULTILINE)


def complete_wheelhouse(client: Any, base: str, wheelhouse: Path, root: Path = PROJECT_ROOT,
                        log: Callable[[str], None] | None = None) -> list[str]:
    """Add what the *base image's* Python needs and the host's did not; returns what was added.

    ``pip wheel`` on the host resolves environment markers for the host's Python: redis, for one,
    needs ``async-timeout`` only below Python 3.11.3, so a 3.11.7 host leaves it out while Debian
    bookworm's 3.11.2 needs it. A dry-run install in a throwaway container of the base (no network)
    names each missing requirement, the host adds it, until the base is satisfied. The result is
    remembered per base image id and pyproject.toml, so this runs once.
    """
    marker = wheelhouse / f".complete-{image_id(client, base).split(':')[-1][:12]}-{pyproject_stamp(root)}"
    if marker.exists():
        return []
    from docker.errors import ContainerError

    requirements = [*core_requirements(root), "setuptools>=68", "wheel"]
    script = ("python3 -m venv /tmp/v && /tmp/v/bin/pip install -q --dry-run --no-index --find-links /w "
              + shlex.join(requirements))
    added: list[str] = []
    for _ in range(10):
        try:
            client.containers.run(base, ["sh", "-c", script], network_mode="none", remove=True,
                                  volumes={str(wheelhouse.resolve()): {"bind": "/w", "mode": "ro"}},
                                  labels=owner_labels("images"))
        except ContainerError as exc:
            text = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else str(exc)
            missing = [m.split(";")[0].strip() for m in _NO_MATCH.findall(text)]
            if not missing or set(missing) <= set(added):
                raise ImageBuildError(f"the wheelhouse {wheelhouse} does not satisfy {base}'s Python",
                                      text.splitlines()[-15:],
                                      hint="rebuild it: `rm -rf build/wheelhouse` and scripts/prepare-docker.sh") from exc
            if log:
                log(f"the wheelhouse lacks {', '.join(missing)} for {base}'s Python; adding it")
            argv = [sys.executable, "-m", "pip", "wheel", "-q", *missing, "-w", str(wheelhouse)]
            done = subprocess.run(argv, capture_output=True, text=True)
            if done.returncode != 0:
                raise ImageBuildError(f"`{shlex.join(argv)}` failed", (done.stdout + done.stderr).splitlines()[-15:],
                                      hint="the wheelhouse needs PyPI once") from exc
            added += missing
            continue
        marker.touch()
        return added
    raise ImageBuildError(f"the wheelhouse {wheelhouse} is still incomplete for {base} after adding {added}")


# -- build context and content hash ---------------------------------------------------------------


def dockerfile_sources(dockerfile: Path) -> list[str]:
    """The context paths the Dockerfile's COPY/ADD lines name (not ``--from`` stages, not ``$ARG`` ones)."""
    text = dockerfile.read_text().replace("\\\n", " ")
    sources: list[str] = []
    for line in text.splitlines():
        first = line.split(maxsplit=1)[0].upper() if line.strip() else ""
        if first not in ("COPY", "ADD"):
            continue
        words = shlex.split(line, comments=True)
        args = [w for w in words[1:] if not w.startswith("--")]
        if any(w.startswith("--from") for w in words[1:]) or len(args) < 2:
            continue
        sources += [s.rstrip("/") for s in args[:-1] if "$" not in s]
    return list(dict.fromkeys(sources))


def _walk(root: Path, rel: str) -> Iterator[Path]:
    path = root / rel
    if not path.exists():
        raise ImageBuildError(f"the Dockerfile copies {rel!r}, which does not exist under {root}")
    if path.is_file():
        yield path
        return
    for child in sorted(path.rglob("*")):
        parts = set(child.relative_to(root).parts)
        if child.is_file() and not parts & _SKIP_PARTS and not child.name.endswith(_SKIP_SUFFIXES):
            yield child


@dataclass(frozen=True)
class BuildPlan:
    """What one build would be: the files (context path -> host path), arguments and tag."""

    files: dict[str, Path]
    digests: dict[str, bytes]  # sha256 of each file when planned: the context must match it
    buildargs: dict[str, str]
    base: str
    base_id: str
    content_hash: str

    @property
    def tag(self) -> str:
        return f"{SUT_REPOSITORY}:{self.content_hash[:12]}"


def plan_build(base: str, base_id: str, wheelhouse: Path | None, root: Path = PROJECT_ROOT,
               dockerfile: str = "Dockerfile") -> BuildPlan:
    files: dict[str, Path] = {"Dockerfile": root / dockerfile}
    for source in dockerfile_sources(root / dockerfile):
        for path in _walk(root, source):
            files[path.relative_to(root).as_posix()] = path
    buildargs = {"BASE_IMAGE": base}
    wheels = wheels_in(wheelhouse)
    if wheels:
        buildargs["WHEELHOUSE"] = "wheelhouse"
        for wheel in wheels:
            files[f"wheelhouse/{wheel.name}"] = wheel
    digest = hashlib.sha256()
    digest.update(f"{_HASH_VERSION}\0{base_id}\0".encode())
    digest.update(json.dumps(buildargs, sort_keys=True).encode())
    digests: dict[str, bytes] = {}
    for name in sorted(files):
        path = files[name]
        digests[name] = _file_digest(path)
        digest.update(f"\0{name}\0{os.stat(path).st_mode & 0o111:o}\0".encode())
        digest.update(digests[name])
    return BuildPlan(files=files, digests=digests, buildargs=buildargs, base=base, base_id=base_id,
                     content_hash=digest.hexdigest())


def _file_digest(path: Path) -> bytes:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.digest()


def _context_tar(plan: BuildPlan) -> Any:
    """The build context as an uncompressed tar in a temporary file (deterministic metadata).

    Each file is read once and checked against the digest it was planned with, so an image is never
    tagged with a hash of content it does not hold (someone may be editing the tree meanwhile).
    """
    out = tempfile.TemporaryFile()  # noqa: SIM115 - returned open, closed by the caller
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name in sorted(plan.files):
            path = plan.files[name]
            data = path.read_bytes()
            if hashlib.sha256(data).digest() != plan.digests[name]:
                out.close()
                raise ImageBuildError(f"{path} changed while the image was being planned; build again")
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o755 if os.stat(path).st_mode & 0o111 else 0o644
            info.mtime = 0
            tar.addfile(info, io.BytesIO(data))
    out.seek(0)
    return out


# -- build ---------------------------------------------------------------------------------------


def build(client: Any, plan: BuildPlan, log: Callable[[str], None] | None = None, *,
          tag: str | None = None, nocache: bool = False) -> float:
    """Build ``plan.tag`` (or ``tag``) with the classic builder; ImageBuildError with the log tail on failure."""
    started = time.monotonic()
    tag = tag or plan.tag
    lines: list[str] = []
    labels = {CONTENT_LABEL: plan.content_hash, BASE_LABEL: plan.base}
    with _context_tar(plan) as context:
        try:
            stream = client.api.build(fileobj=context, custom_context=True, tag=tag, buildargs=plan.buildargs,
                                      labels=labels, rm=True, forcerm=True, pull=False, decode=True, nocache=nocache)
            for chunk in stream:
                text = chunk.get("stream") or chunk.get("status") or ""
                for line in text.splitlines():
                    if line.strip():
                        lines.append(line.rstrip())
                        if log:
                            log(line.rstrip())
                if "error" in chunk or "errorDetail" in chunk:
                    message = chunk.get("error") or chunk.get("errorDetail", {}).get("message", "")
                    raise ImageBuildError(f"building {tag} from {plan.base} failed: {message.strip()}",
                                          lines[-25:], hint=_build_hint(plan))
        except ImageBuildError:
            raise
        except Exception as exc:
            raise ImageBuildError(f"building {tag} failed: {_short_reason(exc)}", lines[-25:],
                                  hint=_build_hint(plan)) from exc
    if not image_exists(client, tag):
        raise ImageBuildError(f"the build of {tag} ended without an image", lines[-25:], hint=_build_hint(plan))
    return time.monotonic() - started


def _build_hint(plan: BuildPlan) -> str:
    if "WHEELHOUSE" in plan.buildargs:
        return ("a dependency missing from the wheelhouse? rebuild it with scripts/prepare-docker.sh "
                "(or `rm -rf build/wheelhouse` and build again)")
    return "with no wheelhouse, pip in the build needs PyPI; scripts/prepare-docker.sh builds one"


def ensure_images(client: Any | None = None, *, base: str | None = None, wheelhouse: Path | None = None,
                  online: bool = False, toxiproxy: bool = True, root: Path = PROJECT_ROOT,
                  log: Callable[[str], None] | None = None) -> ImageSet:
    """The images for a containers stack, building the project image only when its content changed."""
    client = client or docker_client()
    chosen = choose_base(client, base)
    house: Path | None = None
    if not online:
        house = wheelhouse or default_wheelhouse()
        if chosen != REGISTRY_BASE and not wheelhouse_is_current(house, root):
            build_wheelhouse(house, root, log)  # the local base has no registry behind it
        if wheels_in(house):
            complete_wheelhouse(client, chosen, house, root, log)
        else:
            house = None
    plan = plan_build(chosen, image_id(client, chosen), house, root)
    built, seconds = False, 0.0
    if not image_exists(client, plan.tag):
        if log:
            log(f"building {plan.tag} from {chosen}" + (f" with the wheelhouse {house}" if house else "") + " ...")
        seconds = build(client, plan, log)
        built = True
    with contextlib.suppress(Exception):
        client.images.get(plan.tag).tag(SUT_REPOSITORY, "latest")
    proxy = find_toxiproxy(client) if toxiproxy else None
    return ImageSet(sut=plan.tag, fault_proxy=proxy or plan.tag, toxiproxy=proxy is not None, base=chosen,
                    content_hash=plan.content_hash, built=built, build_s=seconds)


def prune(client: Any, keep: str) -> list[str]:
    """Remove ``crucible-sut`` tags other than ``keep`` (and ``latest``); returns the removed tags."""
    removed = []
    for image in client.images.list(name=SUT_REPOSITORY):
        for tag in image.tags:
            if tag not in (keep, f"{SUT_REPOSITORY}:latest"):
                with contextlib.suppress(Exception):
                    client.images.remove(tag, noprune=False)
                    removed.append(tag)
    return removed


# -- command line --------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.stack.images",
                                     description="Build the containers launcher's images, tagged by content.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in (("build", "build the project image unless its content tag exists"),
                       ("wheelhouse", "pip wheel the core dependencies unless the wheelhouse is current"),
                       ("tag", "print the content tag of the current tree (no build)"),
                       ("prune", "remove crucible-sut images other than the current one")):
        p = sub.add_parser(name, help=text)
        p.add_argument("--base", help=f"BASE_IMAGE (default: {REGISTRY_BASE} if local, else {LOCAL_BASE})")
        p.add_argument("--wheelhouse", type=Path, help=f"folder of wheels (default {DEFAULT_WHEELHOUSE})")
        p.add_argument("--online", action="store_true", help="no wheelhouse: pip in the build uses PyPI")
        p.add_argument("--quiet", "-q", action="store_true", help="no build log")
    args = parser.parse_args(argv)
    try:
        if args.command == "wheelhouse":
            house = args.wheelhouse or default_wheelhouse()
            if wheelhouse_is_current(house):
                print(f"wheelhouse {house} is up to date ({len(wheels_in(house))} wheels)")
            else:
                seconds = build_wheelhouse(house)
                print(f"wheelhouse {house} built in {seconds:.1f}s ({len(wheels_in(house))} wheels)")
            return 0
        client = docker_client()
        if args.command == "build":
            log = None if args.quiet else (lambda line: print(f"  {line}", flush=True))
            images = ensure_images(client, base=args.base, wheelhouse=args.wheelhouse, online=args.online, log=log)
            state = f"built in {images.build_s:.1f}s" if images.built else "up to date (content tag exists)"
            print(f"sut {images.sut} {state}; base {images.base}")
            print(f"fault-proxy {images.fault_proxy}" + (" (Toxiproxy)" if images.toxiproxy else " (harness.faultproxy)"))
            return 0
        chosen = choose_base(client, args.base, pull=False)
        house = None if args.online else (args.wheelhouse or default_wheelhouse())
        plan = plan_build(chosen, image_id(client, chosen), house if wheels_in(house) else None)
        if args.command == "tag":
            print(plan.tag + ("" if image_exists(client, plan.tag) else "  (not built)"))
            return 0
        for tag in prune(client, plan.tag):
            print(f"removed {tag}")
        return 0
    except StackError as exc:
        print(f"images: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

