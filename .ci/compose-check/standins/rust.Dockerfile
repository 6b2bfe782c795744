# Stand-in for rust:1-bookworm: this machine's Rust toolchain on the Debian base, with gcc and
# binutils, and this machine's CA bundle so cargo reaches crates.io.
FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev binutils ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY toolchain /usr/local/rust
COPY ca-bundle.crt /etc/ssl/certs/flick-ca-bundle.crt
ENV PATH=/usr/local/rust/bin:$PATH CARGO_HOME=/usr/local/cargo \
    CARGO_HTTP_CAINFO=/etc/ssl/certs/flick-ca-bundle.crt SSL_CERT_FILE=/etc/ssl/certs/flick-ca-bundle.crt
LABEL org.flick.stand-in="rust:1-bookworm (this machine's toolchain)"
