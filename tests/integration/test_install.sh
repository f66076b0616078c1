#!/usr/bin/env bash
# test_install.sh — `make install DESTDIR=…` into temporary roots, then systemd's own tools judge
# what landed there: the FHS paths and modes, an operator's config kept by a second install, the
# unit passing `systemd-analyze verify` (its ExecStart pointed at the DESTDIR copy, which verify
# needs to exist), its `systemd-analyze security --offline` exposure at most 2.0, the sysusers
# entry creating the user (in the video group) and the tmpfiles entry creating the state directory
# owned by it inside the root, and PREFIX/SYSCONFDIR rewriting the unit's paths.
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${INSPECTD_BIN:?INSPECTD_BIN must name the built inspectd}
build=$(dirname "$bin")
tmp=$(mktemp -d /tmp/inspectd-install-XXXXXX)
trap 'rm -rf "$tmp"' EXIT

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

# The binary is already built: -o keeps make from rebuilding it here.
install_into() { # DESTDIR, then extra make variables
    local dest=$1
    shift
    make --no-print-directory -o "$bin" BUILD="$build" DESTDIR="$dest" "$@" install >"$tmp/make.log" 2>&1 ||
        { cat "$tmp/make.log"; fail "make install DESTDIR=$dest $*"; }
}

mode_is() { # MODE PATH
    [ -e "$2" ] || fail "$2 not installed"
    [ "$(stat -c %a "$2")" = "$1" ] || fail "$2 has mode $(stat -c %a "$2"), expected $1"
}

d=$tmp/root
install_into "$d"
mode_is 755 "$d/usr/local/bin/inspectd"
mode_is 644 "$d/usr/local/lib/systemd/system/inspectd.service"
mode_is 644 "$d/usr/local/lib/sysusers.d/inspectd.conf"
mode_is 644 "$d/usr/local/lib/tmpfiles.d/inspectd.conf"
mode_is 640 "$d/etc/inspectd/inspectd.conf"
cmp -s systemd/inspectd.conf "$d/etc/inspectd/inspectd.conf" || fail "installed config differs"
"$d/usr/local/bin/inspectd" run --help | grep -q "usage: inspectd run" || fail "installed binary does not run"

# An operator's config survives a second install.
printf '# edited on the line\n[camera.line1]\ndriver = synthetic\n' >"$d/etc/inspectd/inspectd.conf"
install_into "$d"
grep -q "keeping $d/etc/inspectd/inspectd.conf" "$tmp/make.log" || fail "no 'keeping' line"
grep -q "edited on the line" "$d/etc/inspectd/inspectd.conf" || fail "a second install overwrote the config"

# systemd-analyze verify: ExecStart= must name an executable, so check a copy pointing at $d.
unit=$d/usr/local/lib/systemd/system/inspectd.service
grep -qx "ExecStart=/usr/local/bin/inspectd run --config /etc/inspectd/inspectd.conf" "$unit" ||
    fail "ExecStart is $(grep ExecStart= "$unit")"
mkdir "$tmp/verify"
sed "s|^ExecStart=/usr/local/bin/|ExecStart=$d/usr/local/bin/|" "$unit" >"$tmp/verify/inspectd.service"
systemd-analyze verify --man=no "$tmp/verify/inspectd.service" >"$tmp/verify.log" 2>&1 ||
    { cat "$tmp/verify.log"; fail "systemd-analyze verify"; }
[ ! -s "$tmp/verify.log" ] || { cat "$tmp/verify.log"; fail "systemd-analyze verify printed warnings"; }

# Exposure score of the installed unit, as `systemd-analyze security` computes it.
systemd-analyze security --offline=yes --no-pager "$unit" >"$tmp/security.log" 2>&1 ||
    { cat "$tmp/security.log"; fail "systemd-analyze security"; }
score=$(sed -n 's/.*Overall exposure level for inspectd.service: \([0-9.]*\).*/\1/p' "$tmp/security.log")
[ -n "$score" ] || { cat "$tmp/security.log"; fail "no exposure level"; }
awk -v s="$score" 'BEGIN { exit !(s <= 2.0) }' || { cat "$tmp/security.log"; fail "exposure $score > 2.0"; }
echo "systemd-analyze security exposure: $score"

# sysusers and tmpfiles applied to the root: the user exists, is in video, owns the state dir.
systemd-sysusers --root="$d" >"$tmp/sysusers.log" 2>&1 || { cat "$tmp/sysusers.log"; fail "sysusers"; }
uid=$(awk -F: '$1 == "inspectd" { print $3 }' "$d/etc/passwd")
[ -n "$uid" ] || fail "sysusers created no inspectd user"
grep -q '^video:.*inspectd' "$d/etc/group" || fail "inspectd is not in the video group"
systemd-tmpfiles --root="$d" --create >"$tmp/tmpfiles.log" 2>&1 || { cat "$tmp/tmpfiles.log"; fail "tmpfiles"; }
[ "$(stat -c '%u %a' "$d/var/lib/inspectd")" = "$uid 750" ] ||
    fail "/var/lib/inspectd is $(stat -c '%u %a' "$d/var/lib/inspectd")"
gid=$(awk -F: '$1 == "inspectd" { print $3 }' "$d/etc/group")
[ "$(stat -c '%u %g %a' "$d/etc/inspectd/inspectd.conf")" = "0 $gid 640" ] ||
    fail "the config is $(stat -c '%u %g %a' "$d/etc/inspectd/inspectd.conf")"

# Another PREFIX and SYSCONFDIR rewrite the paths in the unit and the tmpfiles entry.
o=$tmp/opt
install_into "$o" PREFIX=/opt/inspectd SYSCONFDIR=/etc/opt
unit=$o/opt/inspectd/lib/systemd/system/inspectd.service
grep -qx "ExecStart=/opt/inspectd/bin/inspectd run --config /etc/opt/inspectd/inspectd.conf" "$unit" ||
    fail "PREFIX: ExecStart is $(grep ExecStart= "$unit")"
grep -q "^z /etc/opt/inspectd/inspectd.conf " "$o/opt/inspectd/lib/tmpfiles.d/inspectd.conf" ||
    fail "SYSCONFDIR not applied to tmpfiles"
[ -x "$o/opt/inspectd/bin/inspectd" ] && [ -f "$o/etc/opt/inspectd/inspectd.conf" ] || fail "PREFIX layout"

echo "ok: installed, verified, exposure $score, user and directories created in the root"
