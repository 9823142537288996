# syntax=docker/dockerfile:1
# Build stage: install the service and its dependencies into a virtual environment.
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/venv
COPY pyproject.toml README.md ./
COPY service ./service
RUN /opt/venv/bin/pip install .

# Runtime stage: no compilers, no sources beyond what runs, a non-root user.
FROM python:3.11-slim
RUN groupadd --system --gid 10001 claims \
 && useradd --system --uid 10001 --gid 10001 --home-dir /app --shell /usr/sbin/nologin claims \
 && mkdir -p /data && chown 10001:10001 /data
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY alembic.ini ./
COPY migrations ./migrations
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    CLAIMS_HOST=0.0.0.0 \
    CLAIMS_PORT=8000 \
    CLAIMS_WORKERS=2 \
    CLAIMS_DATABASE_URL=sqlite:////data/claims.db
USER 10001:10001
EXPOSE 8000
VOLUME ["/data"]
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]
# Migrates the database, then serves; refuses to start on 0.0.0.0 without CLAIMS_API_KEYS.
CMD ["claims-service", "serve"]
