#!/usr/bin/python3
"""The Debian package installs in a clean root and works there.

    deb_install.py BUILD_DIR

Builds ocps-c_<version>_<arch>.deb with cpack in BUILD_DIR, checks its name,
version (the build's, from git describe) and dependencies (dpkg-shlibdeps),
then makes a clean Debian root without network: the essential packages of
this Debian system, passwd, and what the package depends on (the closure
of their Depends/Pre-Depends), copied from this system with their dpkg
records. `dpkg --root` installs the package there, so dpkg itself checks
that its dependencies are satisfied and runs its postinst (system user).
In new network, mount and PID namespaces (loopback only) the root is
entered with chroot, and as the package's system user:

  * `ocps-csc --version` and `ocps-cmd --help` run from PATH, and the
    CSC's softwareVersions.cscVersion is the build's version;
  * the installed CSC (no build tree, no OCPS_JOB_RUNNER) goes through
    start, enable, an execute run by the installed ocps-job-runner,
    disable, standby and exitControl, driven by the installed ocps-cmd
    over DDS on loopback, and exits 0;
  * with the container image's configuration (deploy/container/
    site-config.sh run on the installed package, DM_CONFIG_OCPS_DIR as the
    Containerfile sets it) and LSST_SITE=summit, nothing mounted, as the
    non-root service user (phalanx's charts/csc running the image in
    place of the Python OCPS's): start succeeds, its jobs would go to
    uws-api-server (executor uws), its store is in the user's directory;
  * the maintainer scripts (postinst, prerm, postrm: in the package,
    executable, sh -n and shellcheck clean) behave as dh_installsystemd's:
    with a stand-in systemctl for a running systemd, an upgrade
    try-restarts every loaded ocps-csc@ instance and ocps-engine and stops
    none, a removal stops them all, a purge removes the links enabling
    them; without systemd (a container) install, upgrade, removal and
    purge succeed without calling systemctl.

Needs root (namespaces, chroot, dpkg --root); exits 77 (skipped) without.
"""
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile

SKIP = 77
ROOT_PACKAGES = ["passwd"]  # useradd for the postinst; plus the essential set


def fail(msg):
    print(f"FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def run(cmd, **kw):
    print("+", " ".join(cmd), flush=True)
    return subprocess.run(cmd, check=True, **kw)


def dpkg_status():
    """Installed packages of this system: name -> paragraph (text, fields)."""
    with open("/var/lib/dpkg/status", encoding="utf-8") as f:
        text = f.read()
    pkgs = {}
    for para in text.split("\n\n"):
        if not para.strip():
            continue
        fields = {}
        key = None
        for line in para.splitlines():
            if line[:1] in (" ", "\t") and key:
                fields[key] += "\n" + line
            elif ":" in line:
                key, value = line.split(":", 1)
                fields[key] = value.strip()
        if "install ok installed" not in fields.get("Status", ""):
            continue
        pkgs[fields["Package"]] = (para.strip(), fields)
    return pkgs


def dep_names(value):
    """Alternatives groups of a Depends value: [[name, ...], ...]."""
    groups = []
    for group in value.split(","):
        if group.strip():
            groups.append([re.sub(r"[\s(:].*", "", alt.strip()) for alt in group.split("|")])
    return groups


def closure(start, pkgs):
    provides = {}
    for name, (_, fields) in pkgs.items():
        for g in dep_names(fields.get("Provides", "")):
            provides.setdefault(g[0], name)
    chosen = set()
    todo = list(start)
    while todo:
        name = todo.pop()
        if name in chosen:
            continue
        chosen.add(name)
        fields = pkgs[name][1]
        for key in ("Depends", "Pre-Depends"):
            for alts in dep_names(fields.get(key, "")):
                pick = next((a for a in alts if a in pkgs), None)
                if pick is None:
                    pick = next((provides[a] for a in alts if a in provides), None)
                if pick is None:
                    fail(f"{name} depends on {' | '.join(alts)}, not installed here")
                todo.append(pick)
    return chosen


def package_files(name):
    for pattern in (f"/var/lib/dpkg/info/{name}.list", f"/var/lib/dpkg/info/{name}:*.list"):
        for path in glob.glob(pattern):
            with open(path, encoding="utf-8") as f:
                return [line.rstrip("\n") for line in f if line.strip()]
    return []


def make_root(root, names, pkgs):
    for d in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):  # merged /usr as here
        if os.path.islink("/" + d):
            target = os.readlink("/" + d)
            os.makedirs(os.path.join(root, target.lstrip("/")), exist_ok=True)
            os.symlink(target, os.path.join(root, d))
    for name in sorted(names):
        for path in package_files(name):
            if path == "/." or not os.path.lexists(path):
                continue
            dest = root + path
            if os.path.isdir(path) and not os.path.islink(path):
                os.makedirs(dest, exist_ok=True)
                continue
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            if os.path.lexists(dest):
                continue
            if os.path.islink(path):
                os.symlink(os.readlink(path), dest)
            else:
                shutil.copy2(path, dest)
    admin = os.path.join(root, "var/lib/dpkg")
    for d in ("info", "updates", "triggers", "alternatives"):
        os.makedirs(os.path.join(admin, d), exist_ok=True)
    for name in names:
        for path in glob.glob(f"/var/lib/dpkg/info/{name}.*") + glob.glob(f"/var/lib/dpkg/info/{name}:*"):
            shutil.copy2(path, os.path.join(admin, "info"))
    with open(os.path.join(admin, "status"), "w", encoding="utf-8") as f:
        for name in sorted(names):
            f.write(pkgs[name][0] + "\n\n")
    open(os.path.join(admin, "available"), "w").close()
    # base-passwd's postinst would make these from its masters
    etc = os.path.join(root, "etc")
    os.makedirs(etc, exist_ok=True)
    for kind in ("passwd", "group"):
        shutil.copy(f"/usr/share/base-passwd/{kind}.master", os.path.join(etc, kind))
    with open(os.path.join(etc, "passwd"), encoding="utf-8") as f:
        users = [line.split(":")[0] for line in f if line.strip()]
    with open(os.path.join(etc, "group"), encoding="utf-8") as f:
        groups = [line.split(":")[0] for line in f if line.strip()]
    with open(os.path.join(etc, "shadow"), "w", encoding="utf-8") as f:
        f.writelines(f"{u}:*:19000:0:99999:7:::\n" for u in users)
    with open(os.path.join(etc, "gshadow"), "w", encoding="utf-8") as f:
        f.writelines(f"{g}:*::\n" for g in groups)
    for d in ("proc", "dev", "tmp", "run"):
        os.makedirs(os.path.join(root, d), exist_ok=True)


# Run inside the chroot as the package's system user: the installed
# programs only, from PATH.
INSIDE = r"""#!/bin/sh
set -eu
cd /tmp
echo "== ocps-csc --version"; ocps-csc --version > version.txt; cat version.txt
test "$(cat version.txt)" = "$EXPECT_VERSION"
echo "== ocps-cmd --help"; ocps-cmd --help > help.txt; grep -q "usage: ocps-cmd" help.txt
export LSST_SITE=test LSST_DDS_PARTITION_PREFIX=debtest OCPS_LOG_FORMAT=json
export CYCLONEDDS_URI=file:///usr/share/ocps-c/cyclonedds-loopback.xml
# the installed default configuration, with an override whose pipetask is
# /bin/true (no LSST stack, so no retrieval step): the job is run by the
# installed ocps-job-runner
cp -r /usr/share/ocps-c/config /tmp/config
printf 'pipetask: /bin/true\nretrieve_command: []\nwork_root: /tmp/work\n' > /tmp/config/OCPS/v4/debtest.yaml
export DM_CONFIG_OCPS_DIR=/tmp/config
ocps-csc 1 2> csc.log &
csc=$!
# ready once its summaryState is seen (commands before its start are ignored)
tries=0
until ocps-cmd --discovery 5 OCPS:1 show summaryState --timeout 5 > /dev/null 2>&1; do
    tries=$((tries + 1))
    if [ "$tries" -ge 12 ]; then echo "the CSC never started; log:"; cat csc.log; exit 1; fi
done
# softwareVersions.cscVersion is the build's version
ocps-cmd OCPS:1 show softwareVersions --json --timeout 10 > sv.json
if ! grep -q "\"cscVersion\":\"$EXPECT_VERSION\"" sv.json; then
    echo "softwareVersions: $(cat sv.json), expected cscVersion $EXPECT_VERSION"; kill "$csc"; exit 1
fi
echo "== softwareVersions.cscVersion $EXPECT_VERSION"
# command_csc LOG CMD...: each CMD to OCPS:1 (the CSC $csc, logging to
# LOG), then the CSC's exit, which must be 0
command_csc() {
    log=$1; shift
    for cmd in "$@"; do
        echo "== ocps-cmd OCPS:1 $cmd"
        # shellcheck disable=SC2086
        if ! ocps-cmd --timeout 60 --discovery 30 OCPS:1 $cmd; then
            echo "ocps-cmd $cmd failed; CSC log:"; cat "$log"; kill "$csc"; exit 1
        fi
    done
    status=0
    wait "$csc" || status=$?
    echo "== CSC exit status $status"; cat "$log"
    test "$status" -eq 0
}
command_csc csc.log "start --configurationOverride debtest.yaml" enable \
    "execute --pipeline bias.yaml --data_query exposure=1" disable standby exitControl
# the CSC logged JSON lines, one object each
grep -q '^{"time": ' csc.log

echo "== the image's configuration under phalanx's charts/csc: LSST_SITE=summit, nothing mounted"
# what the Containerfile's ENV and site-config.sh (run as root before the
# chroot) make of the package: the image's own _summit.yaml
export DM_CONFIG_OCPS_DIR=/usr/local/share/ocps-c/config LSST_SITE=summit LSST_DDS_PARTITION_PREFIX=debtest2
ocps-csc 1 2> csc2.log &
csc=$!
tries=0
until ocps-cmd --discovery 5 OCPS:1 show summaryState --timeout 5 > /dev/null 2>&1; do
    tries=$((tries + 1))
    if [ "$tries" -ge 12 ]; then echo "the CSC never started; log:"; cat csc2.log; exit 1; fi
done
command_csc csc2.log start standby exitControl
# the jobs go where the Python OCPS sends them: uws-api-server at the url
# of _init.yaml
grep -q 'Configured: executor=uws, uws_api=uws-api-server, .*work_root=/var/lib/ocps-c/' csc2.log
test -f /var/lib/ocps-c/work/jobs-1.sqlite
echo "== inside: OK"
"""


# A stand-in systemctl for the maintainer scripts (no systemd runs here):
# it logs its arguments and lists two loaded ocps-csc@ instances (one failed,
# as systemctl marks it) and ocps-engine.
FAKE_SYSTEMCTL = r"""#!/bin/sh
echo "$*" >> /systemctl.log
case "$*" in
*list-units*)
    echo "ocps-csc@1.service loaded active running OCPS CSC (OCS-Controlled Pipeline Service), SAL index 1"
    echo "\342\227\217 ocps-csc@3.service loaded failed failed OCPS CSC (OCS-Controlled Pipeline Service), SAL index 3"
    echo "ocps-engine.service loaded active running OCPS job engine" ;;
esac
exit 0
"""


def check_scripts(deb, tmp):
    """The maintainer scripts are in the package, executable, parse (sh -n)
    and are shellcheck-clean (when shellcheck is installed)."""
    control = os.path.join(tmp, "control")
    run(["dpkg-deb", "-e", deb, control])
    for name in ("postinst", "prerm", "postrm"):
        path = os.path.join(control, name)
        if not os.path.exists(path):
            fail(f"the package has no {name}")
        if not os.access(path, os.X_OK):
            fail(f"the package's {name} is not executable")
        run(["sh", "-n", path])
        if shutil.which("shellcheck"):
            run(["shellcheck", "-s", "sh", path])


def check_lifecycle(root, deb):
    """Upgrade, removal and purge with the maintainer scripts run by dpkg in
    the root, a stand-in systemctl answering for systemd (/run/systemd/system
    made): an upgrade try-restarts every loaded instance and the engine and
    stops nothing; a removal stops them all; a purge removes the links that
    enabled them. Then the same without systemd (a container): every step
    succeeds and systemctl is never called."""
    env = dict(os.environ, PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    log = os.path.join(root, "systemctl.log")

    def dpkg(*args):
        if os.path.exists(log):
            os.remove(log)
        run(["dpkg", f"--root={root}", "--no-triggers", *args], env=env)
        if not os.path.exists(log):
            return ""
        with open(log, encoding="utf-8") as f:
            return f.read()

    fake = os.path.join(root, "usr/local/sbin/systemctl")
    os.makedirs(os.path.dirname(fake), exist_ok=True)
    with open(fake, "w", encoding="utf-8") as f:
        f.write(FAKE_SYSTEMCTL)
    os.chmod(fake, 0o755)
    os.makedirs(os.path.join(root, "run/systemd/system"), exist_ok=True)
    wants = os.path.join(root, "etc/systemd/system/multi-user.target.wants")
    os.makedirs(wants, exist_ok=True)
    units = "/lib/systemd/system" if os.path.exists(os.path.join(root, "lib/systemd/system/ocps-engine.service")) \
        else "/usr/lib/systemd/system"
    links = {"ocps-csc@1.service": f"{units}/ocps-csc@.service", "ocps-engine.service": f"{units}/ocps-engine.service"}
    for name, target in links.items():  # what systemctl enable makes
        os.symlink(target, os.path.join(wants, name))
    instances = ("ocps-csc@1.service", "ocps-csc@3.service", "ocps-engine.service")

    calls = dpkg("--install", deb)  # the same version again: an upgrade
    print(f"upgrade: systemctl {calls!r}")
    for unit in instances:
        if not re.search(rf"\btry-restart {re.escape(unit)}$", calls, re.M):
            fail(f"an upgrade did not try-restart {unit} (it would run the deleted programs): {calls!r}")
    if re.search(r"\bstop\b", calls):
        fail(f"an upgrade stopped a service: {calls!r}")
    calls = dpkg("--remove", "ocps-c")
    print(f"remove: systemctl {calls!r}")
    for unit in instances:
        if not re.search(rf"\bstop {re.escape(unit)}$", calls, re.M):
            fail(f"a removal did not stop {unit}: {calls!r}")
    if "daemon-reload" not in calls:
        fail(f"no daemon-reload after the removal: {calls!r}")
    for name in links:
        if not os.path.lexists(os.path.join(wants, name)):
            fail(f"a removal (not a purge) removed the link enabling {name}")
    dpkg("--purge", "ocps-c")
    for name in links:
        if os.path.lexists(os.path.join(wants, name)):
            fail(f"a purge left the link enabling {name}")
    if os.path.lexists(os.path.join(root, "etc/systemd/system/ocps-engine.service")):
        fail("a purge left ocps-engine masked")

    # a container: no systemd
    shutil.rmtree(os.path.join(root, "run/systemd"))
    for args in (("--install", deb), ("--install", deb), ("--remove", "ocps-c"), ("--purge", "ocps-c")):
        calls = dpkg(*args)
        if calls:
            fail(f"dpkg {args[0]} without systemd called systemctl: {calls!r}")
    print("maintainer scripts: OK")


def main():
    build = os.path.abspath(sys.argv[1])
    if os.geteuid() != 0:
        print("not root: cannot chroot or make namespaces; skipped")
        return SKIP
    if subprocess.run(["unshare", "--net", "--mount", "--pid", "--fork", "true"]).returncode != 0:
        print("unshare not permitted here; skipped")
        return SKIP
    tmp = tempfile.mkdtemp(prefix="ocps-deb-")
    try:
        out = os.path.join(tmp, "pkg")
        run(["cpack", "-G", "DEB", "-B", out], cwd=build, stdout=subprocess.DEVNULL)
        # the build's version (git describe at build time), as cpack found it
        with open(os.path.join(build, "version/ocps_version.txt"), encoding="utf-8") as f:
            version = f.read().strip()
        arch = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True,
                              check=True).stdout.strip()
        deb = os.path.join(out, f"ocps-c_{version}_{arch}.deb")
        if not os.path.exists(deb):
            fail(f"no {os.path.basename(deb)} in {os.listdir(out)}")
        info = {k: subprocess.run(["dpkg-deb", "-f", deb, k], capture_output=True, text=True,
                                  check=True).stdout.strip() for k in ("Package", "Version", "Depends")}
        print(info)
        if info["Package"] != "ocps-c" or info["Version"] != version:
            fail(f"control fields {info}, expected ocps-c {version}")
        depends = [g[0] for g in dep_names(info["Depends"])]
        if "libc6" not in depends:
            fail(f"Depends lacks libc6: {info['Depends']}")
        # dpkg-shlibdeps found the shared libraries the programs link
        for prefix in ("libddsc", "librdkafka", "libuv1", "libsqlite3", "libjansson", "libedit"):
            if not any(d.startswith(prefix) for d in depends):
                fail(f"Depends has no {prefix}*: {info['Depends']}")
        listing = subprocess.run(["dpkg-deb", "-c", deb], capture_output=True, text=True, check=True).stdout
        for path in ("./usr/bin/ocps-csc", "./usr/bin/ocps-cmd", "./usr/libexec/ocps-c/ocps-job-runner",
                     "./usr/share/man/man1/ocps-csc.1", "./lib/systemd/system/ocps-csc@.service",
                     "./usr/share/ocps-c/config/OCPS/v4/_init.yaml", "./etc/ocps-c/site.env"):
            alt = path.replace("./lib/", "./usr/lib/")
            if f" {path}" not in listing and f" {alt}" not in listing:
                fail(f"{path} not in the package")

        check_scripts(deb, tmp)

        pkgs = dpkg_status()
        root = os.path.join(tmp, "root")
        os.makedirs(root)
        essential = [n for n, (_, f) in pkgs.items() if f.get("Essential") == "yes"]
        names = closure(essential + ROOT_PACKAGES + depends, pkgs)
        print(f"clean root: {len(names)} packages", flush=True)
        make_root(root, names, pkgs)
        run(["dpkg", f"--root={root}", "--no-triggers", "--install", deb])
        status = subprocess.run(["dpkg", f"--root={root}", "-s", "ocps-c"], capture_output=True, text=True)
        if "install ok installed" not in status.stdout:
            fail(f"ocps-c not installed in the root: {status.stdout}{status.stderr}")
        with open(os.path.join(root, "etc/passwd"), encoding="utf-8") as f:
            if not any(line.startswith("ocps:") for line in f):
                fail("the postinst made no ocps user")
        with open(os.path.join(root, "inside.sh"), "w", encoding="utf-8") as f:
            f.write(INSIDE)
        # the container image's configuration directory, as its Containerfile
        # makes it after installing the package
        src = os.path.abspath(os.path.join(os.path.dirname(__file__), "../.."))
        shutil.copytree(os.path.join(src, "deploy/container/config/OCPS/v4"), os.path.join(root, "image-config"))
        shutil.copy(os.path.join(src, "deploy/container/site-config.sh"), os.path.join(root, "site-config.sh"))
        run(["chroot", root, "/bin/sh", "/site-config.sh", "/image-config"])
        os.makedirs(os.path.join(root, "tmp"), exist_ok=True)
        # loopback up, /proc, /dev and a fresh /tmp, then chroot as user ocps
        outer = f"""set -eu
ip link set lo up
mount -t proc proc {root}/proc
mount --rbind /dev {root}/dev
mount -t tmpfs -o mode=1777 tmpfs {root}/tmp
exec chroot --userspec=ocps:ocps {root} /usr/bin/env -i PATH=/usr/bin:/bin HOME=/tmp \
    EXPECT_VERSION={version} /bin/sh /inside.sh
"""
        rc = subprocess.run(["unshare", "--net", "--mount", "--pid", "--fork", "--kill-child",
                             "sh", "-c", outer], timeout=240).returncode
        if rc != 0:
            fail(f"inside the root: exit status {rc}")
        check_lifecycle(root, deb)
        print("OK")
        return 0
    finally:
        # the mounts were made in the namespaces, gone with them; never
        # remove a tree that still has one
        dev = os.path.join(tmp, "root", "dev")
        if os.path.ismount(dev) or os.path.ismount(os.path.join(tmp, "root", "proc")):
            print(f"warning: {tmp} still has mounts; left in place", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
