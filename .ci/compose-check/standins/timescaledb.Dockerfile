# Stand-in for timescale/timescaledb:latest-pg15: Debian's PostgreSQL 15 behind the official
# entrypoint's interface. Not TimescaleDB.
FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends postgresql-15 postgresql-client-15 \
    && rm -rf /var/lib/apt/lists/*
COPY postgres-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
ENV PATH=/usr/lib/postgresql/15/bin:$PATH PGDATA=/var/lib/postgresql/data
LABEL org.flick.stand-in="timescale/timescaledb:latest-pg15 (Debian's PostgreSQL 15)"
EXPOSE 5432
ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]
