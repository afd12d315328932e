#!/bin/sh
# site-config.sh OVERLAY_DIR: make the image's configuration directory,
# /usr/local/share/ocps-c/config/OCPS/v4 (the image's DM_CONFIG_OCPS_DIR is
# /usr/local/share/ocps-c/config): the files of OVERLAY_DIR (the image's own
# site files, deploy/container/config/OCPS/v4), and a symbolic link to every
# other file of the package's configuration, so that the package's files
# are read unchanged and a site file of the image replaces the package's
# one of the same name. Run as root by the Containerfile after the package
# is installed (and by test deploy_deb_install in its installed root).
set -eu
overlay=${1:?usage: site-config.sh OVERLAY_DIR}
pkg=/usr/share/ocps-c/config/OCPS/v4
dir=/usr/local/share/ocps-c/config/OCPS/v4
test -f "$pkg/_init.yaml"
mkdir -p "$dir"
for f in "$overlay"/*.yaml; do
    install -m 0644 "$f" "$dir/"
done
for f in "$pkg"/*.yaml; do
    if [ ! -e "$dir/${f##*/}" ]; then
        ln -s "$f" "$dir/${f##*/}"
    fi
done
