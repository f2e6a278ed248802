# errand in a container: one small image for every part, started as
# `errand api`, `errand worker`, `errand serve` or `errand migrate` (see
# docker-compose.yml).

# Build: the release binary, nothing else.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin errand \
 && strip target/release/errand

# Run: Debian slim, the binary, CA certificates (TLS to Postgres, HTTPS
# callbacks, object storage), and an unprivileged user.
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/errand --create-home errand
COPY --from=build /src/target/release/errand /usr/local/bin/errand
USER errand
WORKDIR /var/lib/errand
EXPOSE 8080
# Ready: GET /readyz answers 200 (the database is reachable). Bash alone
# speaks the HTTP; the image needs no curl.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8080 && printf 'GET /readyz HTTP/1.0\\r\\n\\r\\n' >&3 && head -n 1 <&3 | grep -q ' 200 '"]
ENTRYPOINT ["errand"]
CMD ["serve", "--bind", "0.0.0.0:8080"]
