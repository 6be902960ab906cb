# motcua in one image: `motcua serve` (web chat, API, webhooks, dashboard, Telegram bot). Run it with
# `docker compose up --build` (docker-compose.yml, README "Running with Docker Compose").

# Stage 1: the project as a wheel (package data included), so the image holds no source tree.
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY core ./core
COPY knowledge ./knowledge
COPY retrieval ./retrieval
COPY bot ./bot
COPY helpdesk ./helpdesk
COPY admin_api ./admin_api
RUN pip wheel --no-deps --wheel-dir /wheels .

# Stage 2: the runtime.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# torch first, the CPU build pinned as in scripts/install.sh: the torch that sentence-transformers would
# otherwise pull from PyPI is a multi-GB CUDA build. Its own layer, so code changes do not download it again.
RUN pip install --index-url https://download.pytorch.org/whl/cpu "torch==2.13.0"

COPY --from=build /wheels /wheels
# torch named again so that pip keeps the CPU build: a dependency wanting another torch fails the build
# instead of quietly bringing the CUDA one.
RUN pip install /wheels/*.whl "torch==2.13.0" && rm -rf /wheels

# A non-root user; the data folder (persisted indexes, the JWT key, demo credentials; the SQLite file when
# no MOTCUA_DATABASE_URL is given) is a volume it owns.
RUN useradd --system --create-home --uid 10001 motcua \
    && mkdir -p /var/lib/motcua \
    && chown motcua:motcua /var/lib/motcua
ENV MOTCUA_DATA_DIR=/var/lib/motcua
VOLUME /var/lib/motcua
WORKDIR /home/motcua
USER motcua

EXPOSE 8000
# /readyz answers 200 once the database answers and the retrieval index is loaded (503 otherwise). The first
# start seeds the knowledge base and builds the index, hence the long start period.
HEALTHCHECK --interval=30s --timeout=10s --start-period=300s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=5)"]
# One worker process per core (README); override with the compose file's `command:` on a bigger host.
CMD ["motcua", "serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
