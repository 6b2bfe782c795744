# Stand-in for node:20-bookworm-slim: this machine's Node.js and npm on the Debian base.
FROM debian:bookworm-slim
COPY node /usr/local/bin/node
COPY npm /usr/local/lib/node_modules/npm
COPY ca-bundle.crt /etc/ssl/certs/flick-ca-bundle.crt
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \
    && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx
ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/flick-ca-bundle.crt
LABEL org.flick.stand-in="node:20-bookworm-slim (this machine's Node.js)"
