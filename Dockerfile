# Build: docker build -t moa-workshop .
# Run:   docker run -p 8080:8080 -v moa-data:/data -e LLM_API_KEY=... moa-workshop
# The grading sandbox needs nothing beyond Docker's default profile (README: Docker).
# Check an image end to end on a machine with an engine: scripts/docker-check.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs ./
COPY src src
COPY templates templates
COPY static static
COPY migrations migrations
COPY challenges challenges
RUN cargo build --release --locked && cp target/release/moa-workshop /moa-workshop

FROM debian:bookworm-slim
# python3 runs submitted code (in the sandbox); ca-certificates for HTTPS to the LLM API.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin moa \
 && mkdir -p /data && chown moa /data
COPY --from=build /moa-workshop /usr/local/bin/moa-workshop
USER moa
WORKDIR /data
VOLUME /data
ENV MOA_LISTEN=0.0.0.0:8080 \
    DATABASE_URL=sqlite:///data/workshop.db?mode=rwc \
    MOA_PYTHON=/usr/bin/python3
EXPOSE 8080
# Python is in the image anyway, so the health check needs no curl. It follows MOA_LISTEN
# (change the port there, not with --listen); 503 (grader or database not ready) is unhealthy.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s \
    CMD ["python3", "-c", "import os, urllib.request; host, _, port = os.environ['MOA_LISTEN'].rpartition(':'); host = host if host not in ('', '0.0.0.0', '[::]') else '127.0.0.1'; urllib.request.urlopen(f'http://{host}:{port}/healthz', timeout=4)"]
ENTRYPOINT ["moa-workshop"]
CMD ["serve"]
