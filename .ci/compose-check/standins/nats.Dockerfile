# Stand-in for nats:2.10-alpine: Debian's nats-server (2.9.10) and busybox's wget.
FROM debian:bookworm-slim
COPY nats-server busybox /usr/local/bin/
RUN ln -s /usr/local/bin/busybox /usr/local/bin/wget
LABEL org.flick.stand-in="nats:2.10-alpine (Debian's nats-server)"
EXPOSE 4222 8222
ENTRYPOINT ["nats-server"]
