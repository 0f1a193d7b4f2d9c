# syntax=docker/dockerfile:1
#
# docker build -t taskapi .
# docker run -p 8080:8080 -e JWT_SECRET="$(openssl rand -base64 48)" -v taskapi-data:/data taskapi
#
# Without DATABASE_URL the server keeps its data in an embedded PostgreSQL (PGlite) under /data;
# with DATABASE_URL=postgres://... it uses that server, and JWT_SECRET (32+ bytes) is required
# (NODE_ENV=production); without DATABASE_URL an unset JWT_SECRET is generated into /data.
# A bind-mounted /data must be writable by uid 10001. The server needs no temporary directory (its
# database socket lives in /data), so --read-only works with the volume.

# ---- build: the standalone executable ----------------------------------------------------------
FROM oven/bun:1.4.4 AS build
WORKDIR /src
COPY package.json bun.lock bunfig.toml ./
COPY patches ./patches
RUN bun install --frozen-lockfile
COPY tsconfig.json ./
COPY scripts ./scripts
COPY sql ./sql
COPY src ./src
# scripts/build.ts runs the compiler with a scrubbed environment and checks that the PGlite assets
# and migrations are embedded and that no secret-looking build variable ended up in the binary.
RUN bun run build

# ---- runtime: the binary alone (it needs only glibc) --------------------------------------------
FROM debian:bookworm-slim
RUN groupadd --system --gid 10001 taskapi \
 && useradd --system --uid 10001 --gid taskapi --home-dir /data --no-create-home \
      --shell /usr/sbin/nologin taskapi \
 && mkdir -p /data/uploads \
 && chown -R taskapi:taskapi /data \
 && chmod 0700 /data /data/uploads
COPY --from=build --chmod=0555 /src/dist/taskapi /app/taskapi
WORKDIR /app
# NODE_ENV=production is compiled in; it is repeated here for tools that inspect the image.
# SHUTDOWN_TIMEOUT_MS stays below the 10 s that `docker stop` waits before SIGKILL.
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8080 \
    DATA_DIR=/data \
    SHUTDOWN_TIMEOUT_MS=8000
VOLUME ["/data"]
EXPOSE 8080
# Prometheus metrics (METRICS_PORT; 0 turns them off).
EXPOSE 9464
USER taskapi:taskapi
# The image has no curl: bash itself sends GET /health and requires a 200 status line. It calls
# HOST itself when the server listens on one address, 127.0.0.1 when it listens on all of them.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD bash -c 'h=${HOST:-0.0.0.0}; case $h in 0.0.0.0|::|"[::]") h=127.0.0.1;; esac; h=${h#[}; h=${h%]}; exec 3<>/dev/tcp/$h/${PORT:-8080} && printf "GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n" >&3 && read -r -t 4 status <&3 && [[ $status == "HTTP/1.1 200 "* ]] || exit 1'
STOPSIGNAL SIGTERM
ENTRYPOINT ["/app/taskapi"]
