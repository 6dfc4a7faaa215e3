#!/bin/sh
# Real boot test: a minimal Debian bookworm root (debootstrap, cached), the offline bundle installed
# into it with no network, booted with systemd-nspawn. The driver unit inside shows READY, a
# watchdog-triggered restart and the audit database surviving it. Needs root, debootstrap and
# systemd-container (apt-get install debootstrap systemd-container); network only for the first
# debootstrap. Usage: deploy/boot_test.sh dist/edge-triage-<v>-x86_64-py3.11.tar.gz [log]
set -eu

BUNDLE=$(readlink -f "$1")
LOG=$(readlink -f "${2:-dist/boot-test.log}")
HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${EDGE_BOOT_CACHE:-/var/tmp/edge-triage-boot}
BASE="$CACHE/bookworm-base"
WORK="$CACHE/run-$$"
NSPAWN="systemd-nspawn --register=no --keep-unit --private-network --quiet"

[ "$(id -u)" = 0 ] || { echo "boot_test: needs root (systemd-nspawn)" >&2; exit 2; }
for tool in debootstrap systemd-nspawn script; do
    command -v $tool >/dev/null || { echo "boot_test: $tool missing (apt-get install debootstrap systemd-container bsdutils)" >&2; exit 2; }
done
[ -f "$BUNDLE" ] || { echo "boot_test: no bundle $BUNDLE (make bundle TARGET=$(uname -m) PY=3.11)" >&2; exit 2; }

if [ ! -x "$BASE/usr/bin/python3" ]; then
    echo "boot_test: debootstrap bookworm into $BASE (once; needs the Debian mirror)"
    rm -rf "$BASE.partial"; mkdir -p "$CACHE"
    debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus,python3 \
        bookworm "$BASE.partial" http://deb.debian.org/debian
    mv "$BASE.partial" "$BASE"
fi

cleanup() { rm -rf "$WORK"; }
trap cleanup EXIT
cp -a "$BASE" "$WORK"
mkdir -p "$WORK/var/log/journal" "$WORK/usr/local/lib/edge-boottest"
cp "$BUNDLE" "$WORK/root/bundle.tar.gz"

echo "boot_test: installing the bundle offline (container has no network)"
# python3-venv (ensurepip) is purged first: Pi OS Lite and Ubuntu minimal images lack it too.
$NSPAWN -D "$WORK" /bin/sh -c 'dpkg --purge python3-venv python3.11-venv >/dev/null 2>&1; cd /root && tar xzf bundle.tar.gz && rm bundle.tar.gz && ./edge-triage-*/install.sh --no-start'
# A second install of the same bundle must reuse the release the service would be running from.
$NSPAWN -D "$WORK" /bin/sh -c 'cd /root && ./edge-triage-*/install.sh --no-start' | grep "already installed"

cp "$HERE/boottest/driver.py" "$WORK/usr/local/lib/edge-boottest/driver.py"
# The stall hook (test only) goes into the installed venv, loaded by a .pth line at interpreter
# start; the service never imports it, and the shipped bundle does not contain it.
SITE=$(echo "$WORK"/opt/edge-triage/releases/*/venv/lib/python3*/site-packages)
cp "$HERE/boottest/stall_hook.py" "$SITE/edge_boottest_stall.py"
echo "import edge_boottest_stall" > "$SITE/edge_boottest_stall.pth"
cp "$HERE/boottest/edge-triage-boottest.service" "$WORK/etc/systemd/system/"
mkdir -p "$WORK/etc/systemd/system/edge-triage.service.d" "$WORK/etc/systemd/system/multi-user.target.wants"
cp "$HERE/boottest/test-hooks.conf" "$WORK/etc/systemd/system/edge-triage.service.d/"
ln -sf /etc/systemd/system/edge-triage-boottest.service "$WORK/etc/systemd/system/multi-user.target.wants/"
# A console login would compete for the console; the driver powers off when done.
ln -sf /dev/null "$WORK/etc/systemd/system/console-getty.service"

echo "boot_test: booting (log: $LOG)"
# script(1) gives nspawn the pseudo-terminal its console needs; without one systemd's console
# output is lost.
timeout 900 script -qfec "$NSPAWN -D $WORK --boot --console=interactive" /dev/null \
    | sed 's/\x1b\[[0-9;]*[a-zA-Z]//g' | tr -d '\r' > "$LOG" || true
journalctl -D "$WORK/var/log/journal" -u edge-triage.service -o short-monotonic --no-pager >> "$LOG" 2>&1 || true
RESULT=$(cat "$WORK/root/boottest.result" 2>/dev/null || echo "FAIL: no result (container did not finish)")
echo "boot_test: $RESULT"
grep -E "BOOTTEST: (READY|RESTARTED|STATE KEPT|PASS|FAIL)|Watchdog timeout|Started edge-triage" "$LOG" | head -20 || true
[ "$RESULT" = PASS ]
