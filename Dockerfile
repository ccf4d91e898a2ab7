# One image that runs every role of the system under test (and the fault proxy):
#   docker run IMAGE python -m system_under_test.executor        (EXECUTOR_ID, EXECUTOR_PORT, ...)
#   docker run IMAGE python -m system_under_test.legacy
#   docker run IMAGE celery -A system_under_test.tasks worker -Q evaluation,high_priority,batch,maintenance
#   docker run IMAGE python -m system_under_test.gateway
#   docker run IMAGE python -m system_under_test.flower
#   docker run IMAGE python -m system_under_test.redis_server --bind 0.0.0.0
#   docker run IMAGE python -m harness.faultproxy --host 0.0.0.0
# BASE_IMAGE is python:3.11-slim for users with a registry; offline, build from a local base image
# and pass a wheelhouse (WHEELHOUSE=wheels, a folder in the build context) so pip never goes online.
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}
ARG WHEELHOUSE=
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY system_under_test ./system_under_test
COPY harness ./harness
COPY ${WHEELHOUSE:-pyproject.toml} /tmp/wheelhouse/
RUN if [ -n "$WHEELHOUSE" ]; then pip install --no-index --find-links /tmp/wheelhouse . ; \
    else pip install . ; fi \
 && rm -rf /tmp/wheelhouse \
 && useradd --system --no-create-home crucible
# Executors run submissions as per-slot uids when root (see system_under_test/executor/sandbox.py).
EXPOSE 8000 8001 5555 6379 8474
CMD ["python", "-m", "system_under_test.gateway"]
