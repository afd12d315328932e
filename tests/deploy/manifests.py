#!/usr/bin/python3
"""The container and Kubernetes files (deploy/container, deploy/k8s).

    manifests.py SOURCE_DIR

Kubernetes (parsed with PyYAML; no cluster needed):
  * every document has apiVersion, kind, metadata.name and namespace, and
    kustomization.yaml lists every manifest file;
  * the CSC Job has the shape phalanx's charts/csc renders: batch/v1,
    completions 1, restartPolicy Never, the csc/csc-name/csc-class/
    csc-is-primary labels, env from the csc-env-config ConfigMap and the
    Kafka password from the namespace's Secret, RUN_ARG a SAL index that
    the configuration has an instance for, a non-root security context;
  * every envFrom ConfigMap, volume mount, volume claim and configMap
    volume refers to something defined; a read-only root file system
    has a writable /tmp;
  * the work root that the configuration gives for the site (LSST_SITE
    from csc-env-config: _init.yaml, then _<site>.yaml) is a mounted
    persistent volume, and the instance's butler label resolves through
    the mounted repository index to a mounted repository;
  * the CSC's prometheus.io annotations: the port is a container port,
    and scraping is on exactly when OCPS_METRICS_LISTEN listens there on
    a pod address;
  * the engine Deployment's selector matches its pods, the Service selects
    them and its targetPort is a port of the container.
Container: the Containerfile is multi-stage on debian:12-slim, its final
stage has no compiler or -dev package, installs only the package built in
the first stage, runs as a non-root numeric user and has the entrypoint
script under tini (PID 1: it reaps orphaned job processes) as exec-form
ENTRYPOINT; the entrypoint script, run with a stand-in
ocps-csc, passes RUN_ARG as salobj's entrypoints do.
"""
import json
import os
import re
import stat
import subprocess
import sys
import tempfile

import yaml

errors = []


def check(cond, msg):
    if not cond:
        errors.append(msg)
    return cond


def get(obj, *path, default=None):
    for key in path:
        if isinstance(obj, dict) and key in obj:
            obj = obj[key]
        elif isinstance(obj, list) and isinstance(key, int) and key < len(obj):
            obj = obj[key]
        else:
            return default
    return obj


def load_docs(k8s):
    docs = []
    for name in sorted(os.listdir(k8s)):
        if name.endswith(".yaml") and name != "kustomization.yaml":
            with open(os.path.join(k8s, name), encoding="utf-8") as f:
                for doc in yaml.safe_load_all(f):
                    if doc is not None:
                        docs.append((name, doc))
    return docs


def deep_merge(base, over):
    out = dict(base)
    for k, v in over.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def check_pod(where, spec, by_kind, config_maps):
    """Common checks of a pod spec; returns {mountPath: volume}."""
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    claims = {d["metadata"]["name"] for d in by_kind.get("PersistentVolumeClaim", [])}
    check(spec.get("imagePullSecrets"), f"{where}: no imagePullSecrets")
    sc = spec.get("securityContext", {})
    check(sc.get("runAsNonRoot") is True, f"{where}: runAsNonRoot is not true")
    check(isinstance(sc.get("runAsUser"), int) and sc["runAsUser"] > 0, f"{where}: runAsUser not a non-root uid")
    for v in volumes.values():
        if "persistentVolumeClaim" in v:
            check(v["persistentVolumeClaim"].get("claimName") in claims,
                  f"{where}: volume {v['name']} claims an undefined PVC")
        if "configMap" in v:
            check(v["configMap"].get("name") in config_maps, f"{where}: volume {v['name']}: undefined ConfigMap")
    mounts = {}
    containers = spec.get("containers", [])
    check(containers, f"{where}: no containers")
    for c in containers:
        cw = f"{where} container {c.get('name')}"
        check(c.get("image"), f"{cw}: no image")
        for ref in c.get("envFrom", []):
            name = get(ref, "configMapRef", "name")
            check(name in config_maps, f"{cw}: envFrom ConfigMap {name} is not defined")
        for m in c.get("volumeMounts", []):
            check(m.get("name") in volumes, f"{cw}: mount {m.get('name')} has no volume")
            mounts[m.get("mountPath")] = volumes.get(m.get("name"), {})
        csc = c.get("securityContext", {})
        check(csc.get("allowPrivilegeEscalation") is False, f"{cw}: allowPrivilegeEscalation not false")
        if csc.get("readOnlyRootFilesystem"):
            check("emptyDir" in mounts.get("/tmp", {}), f"{cw}: read-only root without a writable /tmp")
        check(get(c, "resources", "limits", "memory"), f"{cw}: no memory limit")
    return mounts


def check_k8s(src):
    k8s = os.path.join(src, "deploy/k8s")
    docs = load_docs(k8s)
    check(docs, "no manifests")
    with open(os.path.join(k8s, "kustomization.yaml"), encoding="utf-8") as f:
        kust = yaml.safe_load(f)
    files = {n for n, _ in docs}
    check(files <= set(kust.get("resources", [])), f"kustomization.yaml lacks {files - set(kust['resources'])}")
    by_kind = {}
    for name, d in docs:
        for key in ("apiVersion", "kind"):
            check(d.get(key), f"{name}: a document without {key}")
        check(get(d, "metadata", "name"), f"{name}: a {d.get('kind')} without metadata.name")
        check(get(d, "metadata", "namespace"), f"{name}: {get(d, 'metadata', 'name')} without a namespace")
        by_kind.setdefault(d.get("kind"), []).append(d)
    config_maps = {d["metadata"]["name"]: d.get("data", {}) for d in by_kind.get("ConfigMap", [])}
    env = config_maps.get("csc-env-config")
    if not check(env is not None, "no ConfigMap csc-env-config (phalanx csc_shared)"):
        return
    for key in ("LSST_SITE", "LSST_TOPIC_SUBNAME", "LSST_KAFKA_BROKER_ADDR", "LSST_SCHEMA_REGISTRY_URL"):
        check(key in env, f"csc-env-config lacks {key}")

    jobs = by_kind.get("Job", [])
    if not check(len(jobs) == 1, f"{len(jobs)} Jobs (want the CSC's)"):
        return
    job = jobs[0]
    where = f"Job {job['metadata']['name']}"
    check(job["apiVersion"] == "batch/v1", f"{where}: apiVersion {job['apiVersion']}")
    check(get(job, "spec", "completions") == 1, f"{where}: completions is not 1")
    spec = get(job, "spec", "template", "spec", default={})
    check(spec.get("restartPolicy") == "Never", f"{where}: restartPolicy is not Never")
    labels = get(job, "spec", "template", "metadata", "labels", default={})
    for key in ("csc", "csc-name", "csc-class", "csc-is-primary"):
        check(key in labels, f"{where}: pod label {key} missing (charts/csc selector labels)")
    check(isinstance(labels.get("csc-is-primary"), str), f"{where}: csc-is-primary must be a string")
    mounts = check_pod(where, spec, by_kind, config_maps)
    container = get(spec, "containers", 0, default={})
    check(container.get("name") == labels.get("csc-class"), f"{where}: container name is not the csc-class")
    envs = {e["name"]: e for e in container.get("env", [])}
    password = get(envs.get("LSST_KAFKA_SECURITY_PASSWORD", {}), "valueFrom", "secretKeyRef")
    check(password and password.get("name") == job["metadata"]["namespace"] and password.get("key"),
          f"{where}: LSST_KAFKA_SECURITY_PASSWORD not from the namespace's Secret")
    run_arg = str(get(envs.get("RUN_ARG", {}), "value", default=""))
    index = run_arg.split()[0] if run_arg.split() else ""
    if not check(index.isdigit(), f"{where}: RUN_ARG {run_arg!r} does not start with a SAL index"):
        return

    # the configuration the CSC will read at the site
    cfg_dir = os.path.join(src, "deploy/config/OCPS/v4")
    with open(os.path.join(cfg_dir, "_init.yaml"), encoding="utf-8") as f:
        config = yaml.safe_load(f)
    site_file = os.path.join(cfg_dir, f"_{env['LSST_SITE']}.yaml")
    if os.path.exists(site_file):
        with open(site_file, encoding="utf-8") as f:
            config = deep_merge(config, yaml.safe_load(f) or {})
    instance = [i for i in config.get("instances", []) if i.get("sal_index") == int(index)]
    check(len(instance) == 1, f"{where}: the configuration has {len(instance)} instances for index {index}")
    work_root = config.get("work_root", "/var/tmp/ocps")
    check("persistentVolumeClaim" in mounts.get(work_root, {}),
          f"{where}: the work root {work_root} (site {env['LSST_SITE']}) is not a mounted persistent volume")
    ocps_env = {}
    for ref in container.get("envFrom", []):
        ocps_env.update(config_maps.get(get(ref, "configMapRef", "name"), {}))
    index_path = ocps_env.get("DAF_BUTLER_REPOSITORY_INDEX")
    if instance and check(index_path, f"{where}: no DAF_BUTLER_REPOSITORY_INDEX"):
        vol = mounts.get(os.path.dirname(index_path), {})
        cm = config_maps.get(get(vol, "configMap", "name"), {})
        repos = yaml.safe_load(cm.get(os.path.basename(index_path), "")) or {}
        label = instance[0].get("butler")
        repo = repos.get(label)
        check(repo and any(repo == p or repo.startswith(p.rstrip("/") + "/") for p in mounts),
              f"{where}: butler {label} -> {repo} is not on a mounted volume")

    # /metrics: the scrape annotation's port is the container's metrics
    # port; scraping is on only with OCPS_METRICS_LISTEN on that port, on
    # an address the pod is reached at (not loopback)
    notes = get(job, "spec", "template", "metadata", "annotations", default={})
    cports = {q.get("containerPort") for q in container.get("ports", [])}
    if "prometheus.io/port" in notes:
        mport = notes["prometheus.io/port"]
        check(isinstance(mport, str) and mport.isdigit() and int(mport) in cports,
              f"{where}: prometheus.io/port {mport!r} is not a container port")
        listen = str(ocps_env.get("OCPS_METRICS_LISTEN", get(envs.get("OCPS_METRICS_LISTEN", {}), "value",
                                                                  default="")))
        scrape = notes.get("prometheus.io/scrape")
        check(scrape in ("true", "false"), f"{where}: prometheus.io/scrape must be the string true or false")
        if scrape == "true":
            check(listen.rsplit(":", 1)[-1] == mport and not listen.startswith(("127.", "localhost", "[::1]")),
                  f"{where}: scraped on port {mport} but OCPS_METRICS_LISTEN is {listen!r}")
        else:
            check(not listen, f"{where}: OCPS_METRICS_LISTEN {listen!r} set but prometheus.io/scrape is not true")

    deps = by_kind.get("Deployment", [])
    engine = [d for d in deps if d["metadata"]["name"] == "ocps-engine"]
    if check(engine, "no ocps-engine Deployment"):
        d = engine[0]
        where = "Deployment ocps-engine"
        check(d["apiVersion"] == "apps/v1", f"{where}: apiVersion {d['apiVersion']}")
        sel = get(d, "spec", "selector", "matchLabels", default={})
        pod_labels = get(d, "spec", "template", "metadata", "labels", default={})
        check(sel and all(pod_labels.get(k) == v for k, v in sel.items()), f"{where}: selector does not match pods")
        check(get(d, "spec", "replicas") == 1, f"{where}: one replica (one engine per store)")
        pod = get(d, "spec", "template", "spec", default={})
        emounts = check_pod(where, pod, by_kind, config_maps)
        check(emounts.get(work_root) == mounts.get(work_root), f"{where}: not on the CSC's work root volume")
        # it starts: its required options, and beyond loopback a token from a mounted Secret
        envs = {e["name"]: e for c in pod.get("containers", []) for e in c.get("env", [])}
        opts = envs.get("OCPS_ENGINE_OPTIONS", {}).get("value", "").split()
        arg = {o: opts[i + 1] for i, o in enumerate(opts[:-1]) if o.startswith("--")}
        for o in ("--listen", "--state-dir", "--work-root"):
            check(o in arg, f"{where}: OCPS_ENGINE_OPTIONS has no {o} (the engine would not start)")
        listen = arg.get("--listen", "")
        if listen and not listen.startswith(("127.", "localhost", "[::1]")):
            token = arg.get("--token-file", "")
            vol = next((v for m, v in emounts.items() if token.startswith(m.rstrip("/") + "/")), {})
            check("secret" in vol, f"{where}: --listen {listen} needs --token-file on a mounted Secret ({token!r})")
        for o in ("--state-dir", "--work-root"):
            d = arg.get(o, "")
            check(any(d == m or d.startswith(m.rstrip("/") + "/") for m in emounts),
                  f"{where}: {o} {d} is on no volume (read-only root)")
        ports = [p for c in pod.get("containers", []) for p in c.get("ports", [])]
        services = [s for s in by_kind.get("Service", []) if s["metadata"]["name"] == "ocps-engine"]
        if check(services, "no ocps-engine Service"):
            s = services[0]
            ssel = get(s, "spec", "selector", default={})
            check(ssel and all(pod_labels.get(k) == v for k, v in ssel.items()),
                  "Service ocps-engine does not select the engine's pods")
            for p in get(s, "spec", "ports", default=[]):
                t = p.get("targetPort")
                check(any(t in (q.get("name"), q.get("containerPort")) for q in ports),
                      f"Service ocps-engine: targetPort {t} is no container port")


def check_containerfile(src):
    path = os.path.join(src, "deploy/container/Containerfile")
    with open(path, encoding="utf-8") as f:
        text = f.read()
    lines = re.sub(r"\\\n", " ", text).splitlines()  # continuation lines joined
    stages = []
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        if word.upper() == "FROM":
            m = re.match(r"(\S+)(?:\s+AS\s+(\S+))?", rest, re.I)
            stages.append({"image": m.group(1), "name": m.group(2), "lines": []})
        elif check(stages, "an instruction before FROM"):
            stages[-1]["lines"].append((word.upper(), rest))
    if not check(len(stages) >= 2, "Containerfile: not multi-stage"):
        return
    for s in stages:
        check(s["image"] == "debian:12-slim", f"Containerfile: stage on {s['image']}, not debian:12-slim")
    # the build stage installs every Debian package the build requires
    # (cmake/OcpsDeps.cmake: ocps_require_pkg outside the tests' block)
    with open(os.path.join(src, "cmake/OcpsDeps.cmake"), encoding="utf-8") as f:
        deps = f.read()
    deps = re.sub(r"if\(OCPS_BUILD_TESTS\).*?endif\(\)", "", deps, flags=re.S)
    required = set(re.findall(r"^\s*ocps_require_pkg\(\w+ \S+ (\S+)\)", deps, re.M))
    required |= {"cyclonedds-dev", "cyclonedds-tools", "pkg-config", "python3"}
    build_body = " ".join(rest for _, rest in stages[0]["lines"]).split()
    for pkg in sorted(required):
        check(pkg in build_body, f"Containerfile: the build stage does not install {pkg} (cmake/OcpsDeps.cmake needs it)")
    final = stages[-1]
    body = " ".join(rest for _, rest in final["lines"])
    for bad in ("build-essential", "gcc", "cmake", "-dev ", "-dev\n", "clang", "pkg-config"):
        check(bad not in body + " ", f"Containerfile: final stage installs {bad.strip()}")
    copies = [rest for w, rest in final["lines"] if w == "COPY"]
    from_build = [c for c in copies if c.startswith("--from=")]
    check(len(from_build) == 1 and f"--from={stages[0]['name']}" in from_build[0] and ".deb" in from_build[0],
          f"Containerfile: the final stage must copy only the package from {stages[0]['name']}: {from_build}")
    users = [rest for w, rest in final["lines"] if w == "USER"]
    args = {m.group(1): m.group(2) for w, rest in final["lines"] if w == "ARG"
            for m in [re.match(r"(\w+)=(\S+)", rest)] if m}
    if check(users, "Containerfile: final stage has no USER"):
        user = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), ""), users[-1]).split(":")[0]
        check(user.isdigit() and int(user) != 0, f"Containerfile: USER {users[-1]} is not a numeric non-root uid")
    entry = [rest for w, rest in final["lines"] if w == "ENTRYPOINT"]
    if check(entry, "Containerfile: no ENTRYPOINT"):
        try:
            argv = json.loads(entry[-1])
        except ValueError:
            argv = None
        check(isinstance(argv, list) and argv[:2] == ["/usr/bin/tini", "--"] and
              argv[-1].endswith("ocps-entrypoint"),
              f"Containerfile: ENTRYPOINT not the exec form of tini -- ocps-entrypoint: {entry[-1]}")
        check(any("tini" in rest for w, rest in final["lines"] if w == "RUN"),
              "Containerfile: tini (PID 1, reaps orphaned job processes) is not installed")
    check(any("entrypoint.sh" in c and "ocps-entrypoint" in c for c in copies),
          "Containerfile: entrypoint.sh is not installed as ocps-entrypoint")


def check_entrypoint(src):
    script = os.path.join(src, "deploy/container/entrypoint.sh")
    with tempfile.TemporaryDirectory() as d:
        stub = os.path.join(d, "ocps-csc")
        with open(stub, "w", encoding="utf-8") as f:
            f.write('#!/bin/sh\nfor a in "$@"; do printf "%s\\n" "$a"; done\n')
        os.chmod(stub, stat.S_IRWXU)
        open(os.path.join(d, "1-glob-target"), "w").close()

        def run(run_arg, *args):
            env = {"PATH": d + ":/usr/bin:/bin"}
            if run_arg is not None:
                env["RUN_ARG"] = run_arg
            r = subprocess.run(["sh", script, *args], env=env, cwd=d, capture_output=True, text=True)
            return r.returncode, r.stdout.splitlines(), r.stderr

        check(run("1")[:2] == (0, ["1"]), f"entrypoint RUN_ARG=1: {run('1')}")
        got = run("2 --state enabled  --simulate")
        check(got[:2] == (0, ["2", "--state", "enabled", "--simulate"]), f"entrypoint split: {got}")
        got = run("1*")
        check(got[:2] == (0, ["1*"]), f"entrypoint: RUN_ARG glob-expanded: {got}")
        got = run("1", "3", "--state", "disabled")
        check(got[:2] == (0, ["3", "--state", "disabled"]), f"entrypoint: arguments do not replace RUN_ARG: {got}")
        code, out, err = run(None)
        check(code == 64 and not out and "RUN_ARG" in err, f"entrypoint without RUN_ARG: {code} {out} {err}")


def main():
    src = os.path.abspath(sys.argv[1])
    check_k8s(src)
    check_containerfile(src)
    check_entrypoint(src)
    for e in errors:
        print(f"FAIL: {e}")
    if errors:
        return 1
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
