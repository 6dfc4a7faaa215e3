#!/bin/sh
# Offline installer for the edge triage appliance. Run as root from the unpacked bundle:
#   sudo ./install.sh [--prefix /opt/edge-triage] [--no-start] [--kiosk]
# No network is used: every wheel comes from ./wheels (pip --no-index).
# Layout: $PREFIX/releases/<bundle>-<hash>/{venv,models}, and $PREFIX/current -> that release,
# swapped atomically, so an upgrade that fails half-way leaves the running release untouched and
# the previous release stays on disk for a rollback (ln -sfn releases/<old> $PREFIX/current).
set -eu

PREFIX=/opt/edge-triage
START=1
KIOSK=0
while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) PREFIX="$2"; shift 2 ;;
        --no-start) START=0; shift ;;
        --kiosk) KIOSK=1; shift ;;
        -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
        *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done

HERE=$(cd "$(dirname "$0")" && pwd)
cd "$HERE"
say() { echo "edge-triage install: $*"; }
die() { echo "edge-triage install: ERROR: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (sudo ./install.sh)."
command -v python3 >/dev/null || die "python3 is missing; install the distribution's python3 package first."

bundle_field() { python3 -c "import json,sys; print(json.load(open('BUNDLE.json'))[sys.argv[1]])" "$1"; }
NAME=$(bundle_field name)
TARGET=$(bundle_field target)
PYVER=$(bundle_field python)
MODEL=$(bundle_field model)

say "checking bundle integrity (SHA256SUMS)"
sha256sum --quiet -c SHA256SUMS || die "the bundle is damaged (checksum mismatch); copy it again."

ARCH=$(uname -m)
[ "$ARCH" = "$TARGET" ] || die "this bundle is for $TARGET but this machine is $ARCH; use the $ARCH bundle."
HOSTPY=$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
[ "$HOSTPY" = "$PYVER" ] || die "this bundle is for Python $PYVER but python3 is $HOSTPY; use the py$HOSTPY bundle."

# The release folder is named by content (bundle name + hash of its checksums): reinstalling the
# same bundle never deletes files the running service uses, and a new bundle never overwrites one.
DIGEST=$(sha256sum SHA256SUMS | cut -c1-10)
RELEASE_NAME="$NAME-$DIGEST"
RELEASE="$PREFIX/releases/$RELEASE_NAME"
PREVIOUS=$(readlink "$PREFIX/current" 2>/dev/null || true)
if [ -x "$RELEASE/venv/bin/edge-triage" ] && [ -f "$RELEASE/.complete" ]; then
    say "$RELEASE_NAME is already installed; reusing it"
else
    say "installing $NAME into $RELEASE"
    rm -rf "$RELEASE"
    mkdir -p "$RELEASE"
    cp -a "models" "$RELEASE/models"
    # --without-pip: Raspberry Pi OS Lite and Ubuntu lack ensurepip unless python3-venv is
    # installed; pip comes from the bundle instead. Venvs are not relocatable, so it is built in place.
    python3 -m venv --without-pip "$RELEASE/venv"
    PIPWHL=$(ls wheels/pip-*.whl | head -n 1)
    "$RELEASE/venv/bin/python" "$PIPWHL/pip" install -q --no-index --find-links wheels pip
    "$RELEASE/venv/bin/python" -m pip install -q --no-index --find-links wheels -c constraints.txt \
        "wheels/$(bundle_field project_wheel)"

    say "verifying the model bundle's checksums with the installed runtime"
    "$RELEASE/venv/bin/python" -c "import sys, edge.inference.bundle; edge.inference.bundle.verify(sys.argv[1])" \
        "$RELEASE/models/$MODEL" || die "model bundle failed verification."

    # `edge-triage check` with the same settings the unit gives the service.
    cat > "$RELEASE/bin-check" <<CHECK
#!/bin/sh
export EDGE_TRIAGE_MODEL=$PREFIX/current/models/$MODEL
export EDGE_TRIAGE_AUDIT_DB=/var/lib/edge-triage/audit.sqlite3
exec $PREFIX/current/venv/bin/edge-triage check --config /etc/edge-triage/config.toml "\$@"
CHECK
    chmod 0755 "$RELEASE/bin-check"
    touch "$RELEASE/.complete"
fi

ln -sfn "releases/$RELEASE_NAME" "$PREFIX/current.new"
mv -T "$PREFIX/current.new" "$PREFIX/current"
# Keep the new release and the one it replaced (for a rollback); remove older ones.
for old in "$PREFIX"/releases/*; do
    case "releases/$(basename "$old")" in
        "releases/$RELEASE_NAME"|"$PREVIOUS") ;;
        *) rm -rf "$old" ;;
    esac
done
[ -f README-boards.md ] && cp README-boards.md "$PREFIX/README-boards.md"

say "configuration in /etc/edge-triage (existing files are kept)"
mkdir -p /etc/edge-triage
[ -e /etc/edge-triage/config.toml ] || install -m 0644 systemd/config.toml.example /etc/edge-triage/config.toml
[ -e /etc/edge-triage/edge-triage.env ] || install -m 0644 systemd/edge-triage.env.example /etc/edge-triage/edge-triage.env
if [ ! -e /etc/edge-triage/token ]; then
    # Bearer token for non-loopback clients and admin actions; root-only on disk, handed to the
    # service by systemd LoadCredential=.
    (umask 077; python3 -c 'import secrets; print(secrets.token_urlsafe(32))' > /etc/edge-triage/token)
fi
chmod 0600 /etc/edge-triage/token

install -m 0644 systemd/edge-triage.service /etc/systemd/system/edge-triage.service
install -m 0644 systemd/edge-triage-kiosk.service /etc/systemd/system/edge-triage-kiosk.service

if [ -d /run/systemd/system ]; then
    systemctl daemon-reload
fi
systemctl enable edge-triage.service
[ "$KIOSK" = 1 ] && systemctl enable edge-triage-kiosk.service
say "self-test (edge-triage check):"
"$PREFIX/current/bin-check" || say "WARNING: edge-triage check reported problems (see above); the service may run degraded."
if [ "$START" = 1 ] && [ -d /run/systemd/system ]; then
    say "restarting edge-triage.service (READY waits for the model to load and warm up)"
    systemctl restart edge-triage.service
    systemctl --no-pager status edge-triage.service | head -n 5 || true
fi
say "done: $PREFIX/current -> releases/$RELEASE_NAME${PREVIOUS:+ (previous: $PREVIOUS)}"
