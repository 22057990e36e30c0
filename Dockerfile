# syntax=docker/dockerfile:1
# Loopgate: one image for the web process, the workers and the scheduler.
#
#   docker build -t loopgate:cpu .                          # CPU-only PyTorch
#   docker build -t loopgate:cuda --build-arg VARIANT=cuda .  # CUDA PyTorch (NVIDIA hosts)
#
# Multi-stage: the build stage makes a virtual environment; the runtime stage copies it
# and the source, and runs as an unprivileged user. The CUDA wheels bring their own CUDA
# libraries; the host needs the NVIDIA driver and container toolkit (`--gpus`).

ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim-bookworm AS build
ARG VARIANT=cpu
ARG CUDA_WHEELS=cu128
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
# PyTorch first, from the index of the chosen variant (its own layer: it is the large one).
RUN set -eu; \
    case "$VARIANT" in \
        cpu) index="https://download.pytorch.org/whl/cpu" ;; \
        cuda) index="https://download.pytorch.org/whl/${CUDA_WHEELS}" ;; \
        *) echo "VARIANT must be cpu or cuda, not $VARIANT" >&2; exit 1 ;; \
    esac; \
    pip install --no-cache-dir --index-url "$index" torch==2.14.1 torchvision==0.29.1
COPY pyproject.toml README.md ./
COPY accounts/ accounts/
COPY automation/ automation/
COPY decisions/ decisions/
COPY inference/ inference/
COPY integrations/ integrations/
COPY kernel/ kernel/
COPY loopgate/ loopgate/
COPY modelops/ modelops/
COPY processing/ processing/
COPY review/ review/
COPY workflows/ workflows/
COPY workspace/ workspace/
# The dependencies only: the runtime stage runs the project from its source tree.
RUN pip install --no-cache-dir . && pip uninstall --yes loopgate

FROM python:${PYTHON_VERSION}-slim-bookworm AS runtime
ARG VARIANT=cpu
LABEL org.opencontainers.image.title="loopgate" \
      org.opencontainers.image.description="Human-in-the-loop review and automation levels (${VARIANT})"
RUN groupadd --system --gid 10001 loopgate \
    && useradd --system --uid 10001 --gid loopgate --home-dir /app --shell /usr/sbin/nologin loopgate \
    && mkdir -p /var/lib/loopgate \
    && chown loopgate:loopgate /var/lib/loopgate
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DJANGO_SETTINGS_MODULE=loopgate.settings \
    DJANGO_STATIC_ROOT=/app/staticfiles \
    LOOPGATE_VAR_DIR=/var/lib/loopgate \
    LOOPGATE_INFERENCE_DEVICE=auto
WORKDIR /app
# The source, owned by root and read-only to the service user; static files collected now.
COPY --from=build /src /app
COPY manage.py ./
COPY templates/ templates/
COPY static/ static/
RUN DJANGO_SECRET_KEY=collectstatic-only python manage.py collectstatic --noinput --verbosity 0
USER 10001:10001
VOLUME ["/var/lib/loopgate"]
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
CMD ["gunicorn", "loopgate.wsgi", "--bind", "0.0.0.0:8000", "--workers", "2", "--threads", "8", "--access-logfile", "-"]
