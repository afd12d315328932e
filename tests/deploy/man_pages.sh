#!/bin/sh
# The manual pages (docs/man/*.1) format without a single warning, with
# groff's strictest checks and with man-db, and every program the
# project installs has one.
#   man_pages.sh SOURCE_DIR PROGRAM...
set -eu
src=$1
shift
status=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for prog in "$@"; do
    [ -f "$src/docs/man/$prog.1" ] || { echo "FAIL: $prog has no manual page docs/man/$prog.1"; status=1; }
done
for page in "$src"/docs/man/*.1; do
    name=$(basename "$page" .1)
    groff -z -ww -man "$page" 2> "$tmp/groff" || true
    LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -E UTF-8 -l "$page" > "$tmp/out" 2> "$tmp/man" || true
    if [ -s "$tmp/groff" ] || [ -s "$tmp/man" ]; then
        echo "FAIL: $page:"; cat "$tmp/groff" "$tmp/man"; status=1
    fi
    # the NAME section names the program, the header its page
    grep -q "^$name \\\\- " "$page" || { echo "FAIL: $page: NAME is not '$name \\- ...'"; status=1; }
    head -1 "$page" | grep -qi "^\.TH $name 1 " || { echo "FAIL: $page: .TH is not '$name 1'"; status=1; }
    grep -q "SYNOPSIS" "$tmp/out" || { echo "FAIL: $page: no SYNOPSIS rendered"; status=1; }
done
[ "$status" -eq 0 ] && echo "OK: $(ls "$src"/docs/man/*.1 | wc -l) pages"
exit "$status"
