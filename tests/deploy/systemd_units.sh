#!/bin/sh
# The systemd units as `cmake --install` writes them (ocps-csc@.service,
# ocps-engine.service once ocps-engine is built; until then the engine's
# template with a stand-in program): systemd-analyze verify finds nothing
# to say (syntax, programs and man pages that exist), the sandbox is in
# place (ProtectSystem=strict, NoNewPrivileges, PrivateTmp, writable paths
# only the state directory and work root, Restart=on-failure, user ocps,
# UMask=0022: the jobs' outputs readable by a shared repository's users)
# and systemd-analyze security rates the exposure OK (below 3); the
# sysusers.d entry creates the ocps system user in an empty root. Works
# without systemd running (a container).
#   systemd_units.sh BUILD_DIR SOURCE_DIR
set -eu
build=$1
src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
prefix="$tmp/usr"
cmake --install "$build" --prefix "$prefix" > "$tmp/install.log"
units="$prefix/lib/systemd/system"
export MANPATH="$prefix/share/man"
status=0
fail() { echo "FAIL: $*"; status=1; }

if [ ! -f "$units/ocps-engine.service" ]; then
    # no ocps-engine yet: its unit with a stand-in program and man page
    printf '#!/bin/sh\nexit 0\n' > "$prefix/bin/ocps-engine"
    chmod 755 "$prefix/bin/ocps-engine"
    cp "$src/docs/man/ocps-engine.1" "$prefix/share/man/man1/"
    sed -e "s|@BINDIR@|$prefix/bin|g" -e "s|@DATADIR@|$prefix/share|g" \
        -e "s|@SYSCONFDIR@|$prefix/etc|g" -e "s|@STATEDIR@|/var/lib/ocps-c|g" \
        "$src/deploy/systemd/ocps-engine.service.in" > "$units/ocps-engine.service"
fi
grep -q '@[A-Z]*@' "$units"/*.service && fail "unsubstituted @VAR@ in $(grep -l '@[A-Z]*@' "$units"/*.service)"

for unit in ocps-csc@1.service ocps-csc@101.service ocps-engine.service; do
    file="$units/$unit"
    case "$unit" in ocps-csc@*) file="$units/ocps-csc@.service" ;; esac
    if ! systemd-analyze verify "$units/$unit" > "$tmp/verify" 2>&1 || [ -s "$tmp/verify" ]; then
        fail "systemd-analyze verify $unit:"; cat "$tmp/verify"
    fi
    for setting in "ProtectSystem=strict" "NoNewPrivileges=yes" "PrivateTmp=yes" "Restart=on-failure" \
                   "User=ocps" "ReadWritePaths=/var/lib/ocps-c"; do
        grep -qx "$setting" "$file" || fail "$unit: no $setting"
    done
    grep -q '^StateDirectory=ocps-c ocps-c/work' "$file" || fail "$unit: no StateDirectory=ocps-c ocps-c/work"
    # jobs' temporary files outlive a stop (KillMode=process): not in PrivateTmp
    grep -q '^Environment=TMPDIR=/var/lib/ocps-c/' "$file" || fail "$unit: no TMPDIR in the state directory"
    ! grep -q '^RemoveIPC=yes' "$file" || fail "$unit: RemoveIPC would remove running jobs' shared memory"
    # the jobs inherit the umask: what they write into a shared Butler
    # repository must be readable by its other users (not only group ocps)
    grep -qx 'UMask=0022' "$file" || fail "$unit: not UMask=0022 ($(grep '^UMask=' "$file" || echo none)):" \
        "the jobs' outputs in a shared repository would be unreadable to others"
    # nothing else writable
    rw=$(grep -c '^ReadWritePaths=' "$file")
    [ "$rw" -eq 1 ] || fail "$unit: $rw ReadWritePaths lines"
    grep -q "^ExecStart=$prefix/bin/" "$file" || fail "$unit: ExecStart not in the installed bin"
    systemd-analyze security --offline=true "$file" > "$tmp/security" 2>&1 || true
    level=$(sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\) .*/\1/p' "$tmp/security")
    if [ -z "$level" ] || ! awk -v l="$level" 'BEGIN { exit !(l < 3.0) }'; then
        fail "$unit: exposure ${level:-unknown} (want < 3.0)"; tail -3 "$tmp/security"
    fi
    echo "$unit: verified, exposure $level"
done
# the engine starts with the unit's own options (it needs a state
# directory and a work root), in its state directory, on loopback
opts=$(sed -n 's/^Environment="OCPS_ENGINE_OPTIONS=\(.*\)"$/\1/p' "$units/ocps-engine.service")
for want in "--listen 127.0.0.1:" "--state-dir /var/lib/ocps-c/engine" "--work-root /var/lib/ocps-c/engine/"; do
    case "$opts" in *"$want"*) ;; *) fail "ocps-engine: OCPS_ENGINE_OPTIONS has no $want ($opts)" ;; esac
done
grep -qx "StateDirectory=ocps-c/engine ocps-c/engine/work ocps-c/engine/tmp" "$units/ocps-engine.service" \
    || fail "ocps-engine: its state directory is not made"
grep -q '^EnvironmentFile=' "$units/ocps-csc@.service" || fail "ocps-csc@: no EnvironmentFile"
grep -q "^EnvironmentFile=-$prefix/etc/ocps-c/csc-%i.env" "$units/ocps-csc@.service" \
    || fail "ocps-csc@: no per-index environment file"
[ -f "$prefix/etc/ocps-c/site.env" ] || fail "site.env not installed"

mkdir -p "$tmp/root/etc"
systemd-sysusers --root="$tmp/root" "$prefix/lib/sysusers.d/ocps-c.conf"
grep -q '^ocps:x:[0-9]*:[0-9]*:.*:/var/lib/ocps-c:' "$tmp/root/etc/passwd" \
    || fail "sysusers.d made no ocps user: $(cat "$tmp/root/etc/passwd")"
uid=$(awk -F: '$1 == "ocps" { print $3 }' "$tmp/root/etc/passwd")
[ -n "$uid" ] && [ "$uid" -lt 1000 ] || fail "ocps is not a system user (uid $uid)"
[ "$status" -eq 0 ] && echo OK
exit "$status"
