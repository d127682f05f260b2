# syntax=docker/dockerfile:1
# Two stages: "build" resolves the locked dependencies into /opt/venv with uv; "runtime" is
# python:3.11-slim with that venv and the app code only (no uv, no compilers, no tests).
#   docker build -t shortener .
#   docker run -p 8081:8080 -e DATABASE_URL=postgresql://user:pass@host:5432/shortener shortener
# Without DATABASE_URL the service uses SQLite at /app/var/shortener.sqlite3: mount a volume on
# /app/var to keep it (docker run -v shortener-data:/app/var ...).

ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    UV_PROJECT_ENVIRONMENT=/opt/venv \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3.11 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy
RUN pip install "uv==0.13.9"
WORKDIR /src
# Dependencies first: this layer is rebuilt only when pyproject.toml or uv.lock change.
COPY pyproject.toml uv.lock ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --locked --no-dev --no-install-project

FROM ${PYTHON_IMAGE} AS runtime
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH="/opt/venv/bin:${PATH}" \
    PORT=8080
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /app --no-create-home \
       --shell /usr/sbin/nologin app
WORKDIR /app
COPY --from=build /opt/venv /opt/venv
# Code stays owned by root (read-only for the service); only var/ (SQLite default) is writable.
COPY app/ ./app/
COPY run.py setup_db.py gunicorn.conf.py ./
RUN python -m compileall -q app run.py setup_db.py gunicorn.conf.py \
    && mkdir -p /app/var \
    && chown app:app /app/var
USER 10001:10001
EXPOSE 8080
# Liveness only (/livez never touches the database); readiness is GET /health.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/livez' % os.environ.get('PORT', '8080'), timeout=3)"]
# run.py migrates, then serves (WEB_SERVER: granian by default, or gunicorn); exec makes it PID 1, so
# it receives SIGTERM for a graceful shutdown.
CMD ["sh", "-c", "exec python run.py"]
