# Serving image: indexing + service only (no torch). Bundles are built by the training image/job and
# mounted read-only; the Qdrant Edge index lives on the data volume (or set INCIDENT_SIM_QDRANT_URL).
#   docker build -t incident-sim .
#   docker run -p 8000:8000 -v $PWD/var:/data incident-sim
FROM python:3.11-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    INCIDENT_SIM_DATA_DIR=/data INCIDENT_SIM_HOST=0.0.0.0 INCIDENT_SIM_PORT=8000
WORKDIR /app
COPY pyproject.toml README.md ./
COPY indexing ./indexing
COPY service ./service
COPY training ./training
RUN pip install . && useradd --system --uid 10001 app && mkdir -p /data && chown app /data
USER app
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s CMD python -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:8000/healthz')" || exit 1
ENTRYPOINT ["incident-sim"]
CMD ["serve"]
