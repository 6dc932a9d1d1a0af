# Warren as a drop-in for the official rabbitmq:3-management image: the same
# ports, env vars, /etc/rabbitmq files, /var/lib/rabbitmq volume, log line and
# CLI tool names (see docker/entrypoint.sh and README "Testing with Warren").
#
#   docker build -t warren .
#   docker run --rm -p 5672:5672 -p 15672:15672 warren
#
# CI has no Docker daemon: tests/container/run.sh checks this file statically
# and runs docker/entrypoint.sh with the same layout in a private mount namespace.

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-bookworm AS builder
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
# No debug info in the image (the release profile keeps some for profiling).
RUN CARGO_PROFILE_RELEASE_DEBUG=0 CARGO_PROFILE_RELEASE_STRIP=symbols \
    cargo build --release --locked --bin warren

FROM debian:bookworm-slim
# uid/gid 999 as in the official image, so a volume it wrote stays writable.
RUN groupadd --system --gid 999 rabbitmq \
 && useradd --system --uid 999 --gid rabbitmq --home-dir /var/lib/rabbitmq --no-create-home rabbitmq \
 && mkdir -p /var/lib/rabbitmq /etc/rabbitmq/conf.d \
 && chown -R rabbitmq:rabbitmq /var/lib/rabbitmq /etc/rabbitmq
COPY --from=builder /src/target/release/warren /usr/local/bin/warren
# One binary answers as each tool, by the name it is invoked under.
RUN for tool in rabbitmqctl rabbitmq-diagnostics rabbitmq-plugins rabbitmqadmin; do \
      ln -s warren "/usr/local/bin/$tool"; \
    done
COPY docker/entrypoint.sh /usr/local/bin/docker-entrypoint.sh
COPY docker/10-defaults.conf /etc/rabbitmq/conf.d/10-defaults.conf
ENV HOME=/var/lib/rabbitmq
USER rabbitmq
VOLUME /var/lib/rabbitmq
# AMQP, AMQPS (only with a certificate configured), management HTTP, Prometheus.
EXPOSE 5672 5671 15672 15692
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["rabbitmq-server"]
