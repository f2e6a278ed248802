# errand in a container: one image, started as `errand api`, `errand worker`
# or `errand serve` (see docker-compose.yml).
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked && cp target/release/errand /usr/local/bin/errand

FROM debian:bookworm-slim
RUN useradd --system --home /var/lib/errand --create-home errand
COPY --from=build /usr/local/bin/errand /usr/local/bin/errand
USER errand
WORKDIR /var/lib/errand
EXPOSE 8080
ENTRYPOINT ["errand"]
CMD ["serve", "--bind", "0.0.0.0:8080"]
