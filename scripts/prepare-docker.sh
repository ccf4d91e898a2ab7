#!/usr/bin/env bash
# Prepare this machine for the containers launcher (`--stack containers`), with no registry.
#
#   sudo scripts/prepare-docker.sh            # every step; each is skipped when already done
#   scripts/prepare-docker.sh --no-images     # stop after the base image (no wheelhouse, no project image)
#   scripts/prepare-docker.sh --rebuild-base  # build crucible-base:bookworm again from the Debian mirror
#
# Steps, each skipped when its result already exists (a second run takes a few seconds):
#   1. packages  `apt-get install docker.io debootstrap` when dockerd/debootstrap are missing
#   2. engine    start dockerd in the background when no engine answers (log: /var/log/dockerd.log),
#                trying the storage driver and iptables settings this kernel/sandbox supports
#   3. base      `crucible-base:bookworm` from `debootstrap --variant=minbase bookworm` on the Debian
#                mirror this machine's apt uses, with python3 (3.11), venv, pip, bash, procps,
#                ca-certificates; imported with `docker import` (no registry involved)
#   4. wheels    a wheelhouse of the project's core dependencies and setuptools (build/wheelhouse,
#                `pip wheel` on the host), so the image build never needs PyPI
#   5. images    `python -m harness.stack.images build`: the project image, tagged by content
#
# Environment: DEBIAN_MIRROR (default: the mirror in /etc/apt/sources.list*), CRUCIBLE_BASE_IMAGE
# (default crucible-base:bookworm), HARNESS_WHEELHOUSE (default build/wheelhouse), DOCKERD_FLAGS
# (extra dockerd flags, tried first), PYTHON (default .venv/bin/python, else python3).
# Exit status: 0 when everything is ready, 1 with a message naming the step that failed.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BASE_TAG=${CRUCIBLE_BASE_IMAGE:-crucible-base:bookworm}
WHEELHOUSE=${HARNESS_WHEELHOUSE:-$ROOT/build/wheelhouse}
DOCKERD_LOG=${DOCKERD_LOG:-/var/log/dockerd.log}
DOCKERD_PIDFILE=/var/run/crucible-dockerd.pid
SUITE=bookworm
BUILD_IMAGES=1
REBUILD_BASE=0

for arg in "$@"; do
  case "$arg" in
    --no-images) BUILD_IMAGES=0 ;;
    --rebuild-base) REBUILD_BASE=1 ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "prepare-docker: unknown option $arg (try --help)" >&2; exit 2 ;;
  esac
done

if [[ -z "${PYTHON:-}" ]]; then
  if [[ -x "$ROOT/.venv/bin/python" ]]; then PYTHON=$ROOT/.venv/bin/python; else PYTHON=python3; fi
fi

T_ALL=$(date +%s.%N)
SUMMARY=()
die() { echo "prepare-docker: error: $*" >&2; exit 1; }
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1fs", b - a }'; }
# done_step NAME START WHAT: print one line and remember it for the summary
done_step() { local line; line=$(printf '  %-9s %7s  %s' "$1" "$(secs "$2")" "$3"); echo "$line"; SUMMARY+=("$line"); }
as_root() { [[ $(id -u) -eq 0 ]] || die "$1 needs root: run it with sudo (sudo $0)"; }
engine_up() { timeout 10 docker info >/dev/null 2>&1; }

# -- 1. packages --------------------------------------------------------------------------------
t=$(now)
missing=()
if ! command -v docker >/dev/null 2>&1 || { ! engine_up && ! command -v dockerd >/dev/null 2>&1; }; then
  missing+=(docker.io)
fi
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
if ((${#missing[@]})); then
  as_root "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  echo "installing ${missing[*]} with apt-get ..."
  if ! apt-get install -y -q --no-install-recommends "${missing[@]}" >/tmp/prepare-docker-apt.log 2>&1; then
    apt-get update -q >>/tmp/prepare-docker-apt.log 2>&1 || true
    apt-get install -y -q --no-install-recommends "${missing[@]}" >>/tmp/prepare-docker-apt.log 2>&1 \
      || { tail -n 20 /tmp/prepare-docker-apt.log >&2; die "apt-get install ${missing[*]} failed (log: /tmp/prepare-docker-apt.log)"; }
  fi
  done_step packages "$t" "installed ${missing[*]}"
else
  done_step packages "$t" "docker and debootstrap already installed"
fi

# -- 2. engine ----------------------------------------------------------------------------------
# Candidate flag sets, best first. Each is tried until `docker info` answers; the first that works
# is the one this machine needs (it is printed, and kept in /var/run/crucible-dockerd.flags).
iptables_works() { "$1" -w -t nat -L -n >/dev/null 2>&1 && "$1" -w -t filter -L -n >/dev/null 2>&1; }
overlay_works() {
  grep -qw overlay /proc/filesystems 2>/dev/null || modprobe overlay >/dev/null 2>&1 || return 1
  # overlayfs cannot sit on overlayfs (docker-in-docker) or on some network filesystems
  local fs; fs=$(stat -f -c %T /var/lib 2>/dev/null || echo unknown)
  [[ "$fs" != overlayfs && "$fs" != nfs* && "$fs" != fuse* ]]
}
start_dockerd() {  # start_dockerd FLAGS...: returns 0 once the engine answers
  local shim="" pid
  if [[ -n "${IPTABLES_SHIM:-}" ]]; then shim=$IPTABLES_SHIM:; fi
  rm -f /var/run/docker.pid  # a stale pid file (dockerd killed earlier) makes dockerd refuse to start
  echo "--- $(date -Is) dockerd $*" >>"$DOCKERD_LOG"
  PATH="$shim$PATH" setsid nohup dockerd "$@" >>"$DOCKERD_LOG" 2>&1 </dev/null &
  pid=$!
  echo "$pid" >"$DOCKERD_PIDFILE"
  for _ in $(seq 1 60); do
    if engine_up; then return 0; fi
    if ! kill -0 "$pid" 2>/dev/null; then return 1; fi
    sleep 0.5
  done
  kill "$pid" 2>/dev/null || true
  sleep 1
  return 1
}

t=$(now)
if engine_up; then
  done_step engine "$t" "an engine answers ($(docker info --format '{{.ServerVersion}}, {{.Driver}}' 2>/dev/null))"
else
  as_root "starting dockerd"
  command -v dockerd >/dev/null 2>&1 || die "no dockerd binary: install docker.io (apt-get install docker.io)"
  if [[ -n "${DOCKER_HOST:-}" && "${DOCKER_HOST}" != unix:///var/run/docker.sock ]]; then
    die "DOCKER_HOST=$DOCKER_HOST does not answer; start that engine, or unset DOCKER_HOST to use a local dockerd"
  fi
  if [[ -f "$DOCKERD_PIDFILE" ]] && kill -0 "$(cat "$DOCKERD_PIDFILE")" 2>/dev/null; then
    echo "a dockerd started earlier (pid $(cat "$DOCKERD_PIDFILE")) does not answer; stopping it"
    kill "$(cat "$DOCKERD_PIDFILE")" 2>/dev/null || true
    sleep 3
  fi
  # cgroups: dockerd needs a cgroup hierarchy mounted
  if [[ -z "$(ls -A /sys/fs/cgroup 2>/dev/null)" ]]; then
    mount -t cgroup2 none /sys/fs/cgroup 2>/dev/null || echo "warning: /sys/fs/cgroup is empty and cgroup2 cannot be mounted"
  fi
  # iptables: nft first, then legacy (through a PATH shim so the system's alternatives stay), else off
  net_flags=()
  IPTABLES_SHIM=""
  if command -v iptables >/dev/null 2>&1 && iptables_works iptables; then
    :
  elif command -v iptables-legacy >/dev/null 2>&1 && iptables_works iptables-legacy; then
    IPTABLES_SHIM=/var/run/crucible-iptables-legacy
    mkdir -p "$IPTABLES_SHIM"
    for tool in iptables iptables-save iptables-restore ip6tables ip6tables-save ip6tables-restore; do
      command -v "$tool-legacy" >/dev/null 2>&1 && ln -sf "$(command -v "$tool-legacy")" "$IPTABLES_SHIM/$tool"
    done
  else
    net_flags=(--iptables=false --ip6tables=false)
  fi
  storage=()
  overlay_works || storage=(--storage-driver=vfs)
  # shellcheck disable=SC2206  # DOCKERD_FLAGS is a flag list on purpose
  extra=(${DOCKERD_FLAGS:-})
  # user flags first (DOCKERD_FLAGS), then what this machine seems to support, then safer fallbacks
  candidates=(
    "${extra[*]} ${storage[*]} ${net_flags[*]}"
    "${storage[*]} ${net_flags[*]}"
    "--storage-driver=vfs ${net_flags[*]}"
    "--storage-driver=vfs --iptables=false --ip6tables=false"
    "--storage-driver=vfs --iptables=false --ip6tables=false --bridge=none"
  )
  chosen=""
  tried=()
  for flags in "${candidates[@]}"; do
    flags=$(echo "$flags" | xargs)  # squeeze spaces
    [[ " ${tried[*]:-} " == *" [$flags] "* ]] && continue
    tried+=("[$flags]")
    echo "starting dockerd ${flags:-(no flags)} (log: $DOCKERD_LOG) ..."
    # shellcheck disable=SC2086
    if start_dockerd $flags; then chosen=$flags; break; fi
    echo "  dockerd ${flags:-(no flags)} did not come up:"
    # this attempt's part of the log (after its "--- date dockerd flags" line): its errors, else its end
    attempt=$(awk '/^--- /{ buf = "" } { buf = buf $0 "\n" } END { printf "%s", buf }' "$DOCKERD_LOG")
    { grep -iE 'level=(error|fatal)|failed to start' <<<"$attempt" || tail -n 3 <<<"$attempt"; } | tail -n 3 | sed 's/^/    /'
  done
  engine_up || die "dockerd did not start with any of ${tried[*]}; read $DOCKERD_LOG"
  echo "$chosen" >/var/run/crucible-dockerd.flags
  done_step engine "$t" "dockerd started (pid $(cat "$DOCKERD_PIDFILE"), flags: ${chosen:-none}${IPTABLES_SHIM:+, iptables-legacy}, $(docker info --format '{{.ServerVersion}} {{.Driver}}'))"
fi

# -- 3. base image ------------------------------------------------------------------------------
debian_mirror() {
  if [[ -n "${DEBIAN_MIRROR:-}" ]]; then echo "$DEBIAN_MIRROR"; return; fi
  local found=""
  # one-line format: deb [options] URI SUITE COMPONENTS...
  if compgen -G "/etc/apt/sources.list.d/*.list" >/dev/null || [[ -f /etc/apt/sources.list ]]; then
    found=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
      | sed -E 's/\[[^]]*\]//' | awk -v s="$SUITE" '$1 == "deb" && $3 == s { print $2; exit }')
  fi
  # deb822 format: stanzas with URIs: and Suites:
  if [[ -z "$found" ]] && compgen -G "/etc/apt/sources.list.d/*.sources" >/dev/null; then
    found=$(awk -v s="$SUITE" '
      function flush() { if (uri != "" && suites ~ ("(^| )" s "( |$)") && !done) { print uri; done = 1 } uri = ""; suites = "" }
      /^[[:space:]]*$/ { flush(); next }
      /^URIs:/ { uri = $2 }
      /^Suites:/ { $1 = ""; suites = $0; gsub(/^ +| +$/, "", suites) }
      END { flush() }' /etc/apt/sources.list.d/*.sources)
  fi
  echo "${found:-http://deb.debian.org/debian}"
}

t=$(now)
if [[ $REBUILD_BASE -eq 0 ]] && docker image inspect "$BASE_TAG" >/dev/null 2>&1; then
  done_step base "$t" "$BASE_TAG exists ($(docker image inspect -f '{{.Id}}' "$BASE_TAG" | cut -c8-19))"
else
  as_root "debootstrap"
  command -v debootstrap >/dev/null 2>&1 || die "debootstrap is missing: apt-get install debootstrap"
  mirror=$(debian_mirror)
  rootfs=$(mktemp -d /var/tmp/crucible-rootfs.XXXXXX)
  trap 'rm -rf --one-file-system "$rootfs"' EXIT
  echo "building $BASE_TAG: debootstrap --variant=minbase $SUITE from $mirror (a few minutes) ..."
  if ! debootstrap --variant=minbase --components=main \
        --include=python3,python3-venv,python3-pip,bash,procps,ca-certificates \
        "$SUITE" "$rootfs" "$mirror" >/tmp/prepare-docker-debootstrap.log 2>&1; then
    tail -n 20 /tmp/prepare-docker-debootstrap.log >&2
    die "debootstrap from $mirror failed (log: /tmp/prepare-docker-debootstrap.log); set DEBIAN_MIRROR to a reachable Debian mirror"
  fi
  # a smaller image: no package caches, lists, docs or man pages
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
         "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/tmp/*
  printf 'deb %s %s main\n' "$mirror" "$SUITE" >"$rootfs/etc/apt/sources.list"
  py=$(chroot "$rootfs" python3 --version 2>&1) || die "python3 does not run in the new root file system"
  tar --numeric-owner -C "$rootfs" -c . | docker import \
      -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      -c 'ENV LANG=C.UTF-8' -c 'CMD ["/bin/bash"]' \
      -m "debootstrap --variant=minbase $SUITE from $mirror" - "$BASE_TAG" >/dev/null \
    || die "docker import of the root file system failed"
  rm -rf --one-file-system "$rootfs"
  trap - EXIT
  done_step base "$t" "built $BASE_TAG ($py, $(docker image inspect -f '{{.Size}}' "$BASE_TAG" | awk '{ printf "%d MB", $1 / 1e6 }'))"
fi

if [[ $BUILD_IMAGES -eq 0 ]]; then
  echo "done in $(secs "$T_ALL") (--no-images: no wheelhouse, no project image)"
  exit 0
fi

# -- 4. wheelhouse ------------------------------------------------------------------------------
"$PYTHON" -c 'import docker' 2>/dev/null \
  || die "$PYTHON cannot import the docker SDK: run \`make venv\` first (or set PYTHON to a Python with the project's harness extra)"
t=$(now)
# Rebuilt when pyproject.toml changes (its hash is kept in <wheelhouse>/.stamp).
out=$(cd "$ROOT" && "$PYTHON" -m harness.stack.images wheelhouse --wheelhouse "$WHEELHOUSE" 2>&1) \
  || { echo "$out" >&2; die "pip wheel of the core dependencies failed (see above); is PyPI reachable?"; }
done_step wheels "$t" "$(echo "$out" | tail -n 1)"

# -- 5. project image ---------------------------------------------------------------------------
t=$(now)
base_arg=()
[[ -n "${CRUCIBLE_BASE_IMAGE:-}" ]] && base_arg=(--base "$BASE_TAG")
out=$(cd "$ROOT" && "$PYTHON" -m harness.stack.images build --wheelhouse "$WHEELHOUSE" "${base_arg[@]}" 2>&1) \
  || { echo "$out" >&2; die "the project image did not build (see above)"; }
echo "$out" | sed 's/^/  | /'
done_step images "$t" "$(echo "$out" | sed -n 's/^sut \([^;]*\);.*/\1/p' | head -n 1)"

echo
echo "ready in $(secs "$T_ALL"):"
printf '%s\n' "${SUMMARY[@]}"
