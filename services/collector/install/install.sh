#!/bin/sh
# Installs the FLick collector on this host, enrols it with the hub and starts it.
# Served by the hub at /install.sh; the dashboard's "Add server" shows the command:
#
#   curl -fsSLk https://hub.example.com/install.sh -o flick-install.sh \
#     && echo "<sha256 of this script>  flick-install.sh" | sha256sum -c - \
#     && sudo sh flick-install.sh --gateway https://hub.example.com --token <token> --ca-sha256 sha256:<hex>
#
# Nothing here trusts the network: the command checks this script against the checksum the
# dashboard showed, this script checks the collector binary against the checksums the hub wrote
# into it (below), and the collector checks the hub's CA against --ca-sha256 before it enrols.
# So a hub with a private CA (or plain HTTP) is fine: curl may skip certificate checks (-k).
#
# It downloads the collector binary from the hub, creates the system user flick-collector and
# the state directory /var/lib/flick-collector (0700), enrols (the host's key is generated here
# and never leaves it), writes a hardened systemd unit and starts it. Options:
#   --root DIR        install into DIR instead of / (no user is created, nothing is started)
#   --no-systemctl    do not run systemctl (write the unit only)
#   --binary PATH     install this binary instead of downloading one
set -eu

GATEWAY=""
TOKEN=""
CA_SHA256=""
ROOT="/"
SYSTEMCTL=yes
BINARY=""

die() {
    echo "flick install: $*" >&2
    exit 1
}

while [ $# -gt 0 ]; do
    case "$1" in
        --gateway) GATEWAY="${2:-}"; shift 2 ;;
        --token) TOKEN="${2:-}"; shift 2 ;;
        --ca-sha256) CA_SHA256="${2:-}"; shift 2 ;;
        --root) ROOT="${2:-}"; shift 2 ;;
        --no-systemctl) SYSTEMCTL=no; shift ;;
        --binary) BINARY="${2:-}"; shift 2 ;;
        *) die "unknown option $1 (see the comments at the top of this script)" ;;
    esac
done
[ -n "$GATEWAY" ] || die "--gateway <hub URL> is required"
[ -n "$TOKEN" ] || die "--token <enrolment token> is required"
GATEWAY="${GATEWAY%/}"
ROOT="${ROOT%/}"
[ "$(id -u)" = 0 ] || [ -n "$ROOT" ] || die "run as root (sudo), or with --root DIR"

case "$(uname -m)" in
    x86_64 | amd64) ARCH=x86_64 ;;
    aarch64 | arm64) ARCH=aarch64 ;;
    *) die "no collector build for $(uname -m)" ;;
esac

BIN="$ROOT/usr/local/bin/flick-collector"
STATE="$ROOT/var/lib/flick-collector"
UNIT="$ROOT/etc/systemd/system/flick-collector.service"
umask 022
mkdir -p "$ROOT/usr/local/bin" "$ROOT/etc/systemd/system" "$ROOT/var/lib"

if [ -n "$BINARY" ]; then
    cp "$BINARY" "$BIN.new"
else
    # The builds the hub serves and their SHA-256, written in by the hub.
    EXPECTED="$(while read -r name sum; do [ "$name" = "flick-collector-linux-$ARCH" ] && echo "$sum"; done <<'CHECKSUMS'
@CHECKSUMS@
CHECKSUMS
)"
    [ -n "$EXPECTED" ] || die "the hub serves no collector build for $ARCH (install one with --binary PATH)"
    curl -fsSLk "$GATEWAY/downloads/flick-collector-linux-$ARCH" -o "$BIN.new" \
        || die "cannot download the collector from $GATEWAY"
    ACTUAL="$(sha256sum "$BIN.new" | cut -d' ' -f1)"
    [ "$EXPECTED" = "$ACTUAL" ] || { rm -f "$BIN.new"; die "the download is corrupt (sha256 $ACTUAL, expected $EXPECTED)"; }
fi
chmod 0755 "$BIN.new"
mv "$BIN.new" "$BIN"

if [ -z "$ROOT" ] && ! id flick-collector >/dev/null 2>&1; then
    useradd --system --no-create-home --home-dir /var/lib/flick-collector \
        --shell /usr/sbin/nologin --comment "FLick collector" flick-collector
fi
mkdir -p "$STATE"
chmod 0700 "$STATE"

set -- enroll --gateway "$GATEWAY" --token "$TOKEN" --state-dir "$STATE"
[ -z "$CA_SHA256" ] || set -- "$@" --ca-sha256 "$CA_SHA256"
"$BIN" "$@" || die "enrolment failed (see above)"
if [ -z "$ROOT" ]; then
    chown -R flick-collector:flick-collector "$STATE"
fi

cat > "$UNIT.new" <<'UNIT_FILE'
@UNIT@
UNIT_FILE
chmod 0644 "$UNIT.new"
mv "$UNIT.new" "$UNIT"

if [ "$SYSTEMCTL" = yes ] && [ -z "$ROOT" ]; then
    systemctl daemon-reload
    systemctl enable --now flick-collector.service
    echo "flick install: the collector runs (systemctl status flick-collector); it appears in the dashboard within seconds"
else
    echo "flick install: installed into ${ROOT:-/}; start it with: systemctl enable --now flick-collector"
fi
