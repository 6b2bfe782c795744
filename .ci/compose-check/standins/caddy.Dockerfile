# Stand-in for caddy:2-alpine: Debian's caddy and busybox's wget, with the official image's
# paths and command.
FROM debian:bookworm-slim
COPY caddy busybox /usr/local/bin/
RUN ln -s /usr/local/bin/busybox /usr/local/bin/wget && mkdir -p /etc/caddy /data /config
ENV XDG_CONFIG_HOME=/config XDG_DATA_HOME=/data
LABEL org.flick.stand-in="caddy:2-alpine (Debian's caddy)"
EXPOSE 80 443
CMD ["caddy", "run", "--config", "/etc/caddy/Caddyfile", "--adapter", "caddyfile"]
