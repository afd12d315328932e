#!/usr/bin/python3
"""The container and Kubernetes files (deploy/container, deploy/k8s).

    manifests.py SOURCE_DIR

Kubernetes (parsed with PyYAML; no cluster needed):
  * every document has apiVersion, kind, metadata.name and namespace, and
    kustomization.yaml lists every manifest file;
  * the CSC Job has the shape phalanx's charts/csc renders: batch/v1,
    completions 1, restartPolicy Never, the csc/csc-name/csc-class/
    csc-is-primary labels, env from ocps-c-csc-env (charts/csc_shared's csc-env-config renamed) and the
    Kafka password from the namespace's Secret, RUN_ARG a SAL index that
    the configuration has an instance for, a non-root security context;
  * every envFrom ConfigMap, volume mount, volume claim and configMap
    volume refers to something defined; a read-only root file system
    has a writable /tmp;
  * the configuration the CSC's pod reads (LSST_SITE from ocps-c-csc-env:
    _init.yaml, then _<site>.yaml, or the ConfigMap key mounted over it)
    validates against the CSC's schema (python3-jsonschema); a mounted
    site file differs from the shipped one only in where jobs run and
    where the store is, its instances only in their url;
  * every SQLite store (the CSC's job store, the engine's --state-dir) is
    on a ReadWriteOnce claim;
  * where the jobs run (the CSC's pod, or with executor uws the engine's),
    the instance's butler label resolves through the mounted repository
    index to a mounted repository; with executor uws the instance's url
    names the engine's Service, port and base path, and the CSC's
    OCPS_UWS_TOKEN_FILE is in the engine's token Secret;
  * the CSC's prometheus.io annotations: the port is a container port,
    and scraping is on exactly when OCPS_METRICS_LISTEN listens there on
    a pod address;
  * the engine Deployment (one replica, Recreate) starts (its required
    options, a token beyond loopback, its directories on volumes), its
    liveness and readiness probes are on /healthz, it drains on SIGTERM
    (--drain-timeout, the SIGTERM reaching it through tini, the grace
    period a little longer) and mounts the repository of every instance
    it runs jobs for, its selector matches
    its pods, the Service selects them and its targetPort is a port of
    the container;
  * every workload's image is named and tagged by kustomization.yaml's
    images:, not as the Python OCPS's image.
Container: the Containerfile is multi-stage on debian:12-slim, its final
stage has no compiler or -dev package, installs only the package built in
the first stage, runs as a non-root numeric user and has the entrypoint
script under tini (PID 1: it reaps orphaned job processes) as exec-form
ENTRYPOINT; the entrypoint script, run with a stand-in
ocps-csc, passes RUN_ARG as salobj's entrypoints do. The image under
phalanx's charts/csc (nothing mounted, LSST_SITE=summit): its own
configuration directory sends the jobs to uws-api-server at _init.yaml's
url (executor uws, uws_api uws-api-server) and keeps the CSC's store under
the image user's directory; the package's _summit.yaml stays a host's.
"""
import json
import os
import re
import stat
import subprocess
import sys
import tempfile
import urllib.parse

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
    """As the CSC merges its configuration files (sal_config_merge): dicts
    key by key, anything else replaced; a dict against a non-dict is an
    error."""
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            check(k not in out or isinstance(v, dict) == isinstance(out[k], dict),
                  f"configuration: cannot merge {k}: a dict and a non-dict")
            out[k] = v
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
            vol = volumes.get(m.get("name"), {})
            mounts[m.get("mountPath")] = dict(vol, subPath=m["subPath"]) if m.get("subPath") else vol
        csc = c.get("securityContext", {})
        check(csc.get("allowPrivilegeEscalation") is False, f"{cw}: allowPrivilegeEscalation not false")
        if csc.get("readOnlyRootFilesystem"):
            check("emptyDir" in mounts.get("/tmp", {}), f"{cw}: read-only root without a writable /tmp")
        check(get(c, "resources", "limits", "memory"), f"{cw}: no memory limit")
    return mounts


def read_yaml(path):
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f) or {}


def claim_modes(by_kind, vol):
    """The access modes of the claim a volume names (None if none)."""
    name = get(vol, "persistentVolumeClaim", "claimName")
    for d in by_kind.get("PersistentVolumeClaim", []):
        if d["metadata"]["name"] == name:
            return get(d, "spec", "accessModes")
    return None


def check_schema(src, what, config):
    """The configuration a pod reads, validated by an independent JSON-schema
    implementation against the CSC's own schema."""
    import jsonschema

    schema = read_yaml(os.path.join(src, "csc/app/ocps_config_schema.yaml"))
    for e in jsonschema.Draft7Validator(schema).iter_errors(config):
        check(False, f"{what}: {'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}")


# The objects phalanx renders in the uws namespace (charts/csc_shared's
# ConfigMap and VaultSecrets; charts/csc's Job and ConfigMaps for each alias
# of applications/uws; the uws-api-server chart of release uws).
PHALANX_OWNED = {("ConfigMap", "csc-env-config"), ("VaultSecret", "uws"), ("VaultSecret", "pull-secret"),
                 ("Secret", "uws"), ("Secret", "pull-secret")}
for _alias in ("atocps", "ccocps", "mtocps", "raocps"):
    PHALANX_OWNED |= {("Job", _alias), ("ConfigMap", f"{_alias}-configfile"),
                      ("ConfigMap", f"{_alias}-entrypoint"), ("Service", _alias)}
PHALANX_OWNED |= {(k, "uws-" + n) for k in ("ConfigMap", "Deployment", "Service")
                  for n in ("configmap", "server", "client")}
# The ids uws-api-server's jobs run with, the owners of the files in the
# shared NFS Butler repositories (phalanx applications/uws/charts/
# uws-api-server values.yaml, job.securityContext).
REFERENCE_JOB_IDS = {"runAsUser": 1000, "runAsGroup": 202, "fsGroup": 202}
# Their csc-env-config, under the name these manifests give it.
ENV_CONFIG_MAP = "ocps-c-csc-env"


# What a mounted site file may change of the shipped one: where the jobs
# run and where the CSC keeps its store; the instances only in their url.
OVERLAY_MAY_CHANGE = {"executor", "uws_api", "work_root", "job_store", "instances"}


def check_site_overlay(where, shipped, over, init):
    for key in sorted(set(shipped) | set(over)):
        if key not in OVERLAY_MAY_CHANGE:
            check(shipped.get(key) == over.get(key),
                  f"{where}: the mounted site file differs from the shipped one in {key}: "
                  f"{over.get(key)!r} != {shipped.get(key)!r}")
    if "instances" in over:
        def no_url(insts):
            return [{k: v for k, v in i.items() if k != "url"} for i in insts or []]
        check(no_url(over["instances"]) == no_url(shipped.get("instances", init.get("instances"))),
              f"{where}: the mounted site file's instances differ from _init.yaml's in more than the url")


def pod_env(pod, config_maps):
    """The environment of a pod's first container: envFrom, then env values."""
    c = get(pod, "containers", 0, default={})
    env = {}
    for ref in c.get("envFrom", []):
        env.update(config_maps.get(get(ref, "configMapRef", "name"), {}))
    env.update({e["name"]: str(e["value"]) for e in c.get("env", []) if "value" in e})
    return env


def check_engine(by_kind, config_maps):
    """The ocps-engine Deployment and Service; returns what the CSC's checks
    need (mounts, env, options, Service ports) or None."""
    engine = [d for d in by_kind.get("Deployment", []) if d["metadata"]["name"] == "ocps-engine"]
    if not check(engine, "no ocps-engine Deployment"):
        return None
    d = engine[0]
    where = "Deployment ocps-engine"
    check(d["apiVersion"] == "apps/v1", f"{where}: apiVersion {d['apiVersion']}")
    sel = get(d, "spec", "selector", "matchLabels", default={})
    pod_labels = get(d, "spec", "template", "metadata", "labels", default={})
    check(sel and all(pod_labels.get(k) == v for k, v in sel.items()), f"{where}: selector does not match pods")
    check(get(d, "spec", "replicas") == 1, f"{where}: one replica (one engine per store)")
    check(get(d, "spec", "strategy", "type") == "Recreate", f"{where}: not Recreate (two engines on one store)")
    pod = get(d, "spec", "template", "spec", default={})
    emounts = check_pod(where, pod, by_kind, config_maps)
    env = pod_env(pod, config_maps)
    # the jobs run with the ids of uws-api-server's jobs, which own the
    # files of the shared NFS repositories; that uid has no home in the
    # image, so HOME is a writable mount
    sc = pod.get("securityContext", {})
    ids = {k: sc.get(k) for k in REFERENCE_JOB_IDS}
    check(ids == REFERENCE_JOB_IDS, f"{where}: runs as {ids}, not as uws-api-server's jobs {REFERENCE_JOB_IDS}")
    home = env.get("HOME", "")
    check(home and any(home == m or home.startswith(m.rstrip("/") + "/") for m in emounts),
          f"{where}: HOME {home!r} is not on a writable mount (the pod's uid has no home in the image)")
    # it starts: its required options, and beyond loopback a token from a mounted Secret
    opts = env.get("OCPS_ENGINE_OPTIONS", "").split()
    arg = {o: opts[i + 1] for i, o in enumerate(opts[:-1]) if o.startswith("--")}
    for o in ("--listen", "--state-dir", "--work-root"):
        check(o in arg, f"{where}: OCPS_ENGINE_OPTIONS has no {o} (the engine would not start)")
    listen = arg.get("--listen", "")
    token_vol = {}
    if listen and not listen.startswith(("127.", "localhost", "[::1]")):
        token = arg.get("--token-file", "")
        token_vol = next((v for m, v in emounts.items() if token.startswith(m.rstrip("/") + "/")), {})
        check("secret" in token_vol, f"{where}: --listen {listen} needs --token-file on a mounted Secret ({token!r})")
    for o in ("--state-dir", "--work-root"):
        path = arg.get(o, "")
        vol = next((v for m, v in emounts.items() if path == m or path.startswith(m.rstrip("/") + "/")), {})
        check("persistentVolumeClaim" in vol, f"{where}: {o} {path} is on no persistent volume")
        if o == "--state-dir" and vol:
            check(claim_modes(by_kind, vol) == ["ReadWriteOnce"],
                  f"{where}: the store's claim is not ReadWriteOnce (SQLite does not belong on NFS)")
    container = get(pod, "containers", 0, default={})
    ports = container.get("ports", [])
    # a command replaces the image's entrypoint (tini as PID 1, which reaps
    # what the jobs leave behind): it must start tini itself
    cmd = container.get("command")
    check(cmd is None or (cmd[:2] == ["/usr/bin/tini", "--"]),
          f"{where}: command {cmd} does not run under /usr/bin/tini (the jobs' orphans would not be reaped)")
    # stopping the pod kills every process in it, the jobs' too: the engine
    # drains first (--drain-timeout), so it must get the SIGTERM itself (tini
    # sends it to its child: a shell must exec the engine), and the SIGKILL
    # must come after the drain (terminationGracePeriodSeconds a little
    # above: the stop itself takes a moment)
    check(cmd is None or "-c" not in cmd or cmd[-1].lstrip().startswith("exec ocps-engine"),
          f"{where}: command {cmd}: the shell does not exec ocps-engine (the SIGTERM would not reach it)")
    drain = arg.get("--drain-timeout", "0")
    grace = pod.get("terminationGracePeriodSeconds", 30)
    if check(re.fullmatch(r"\d+(\.\d+)?", drain) and float(drain) > 0,
             f"{where}: OCPS_ENGINE_OPTIONS has no --drain-timeout (stopping the pod would kill its running jobs)"):
        check(isinstance(grace, int) and float(drain) + 10 <= grace <= float(drain) + 300,
              f"{where}: terminationGracePeriodSeconds {grace} is not 10 s to 5 min above --drain-timeout {drain} "
              f"(the SIGKILL would cut the drain short, or come long after it)")
    # probes: /healthz is the one path open without the token
    for probe in ("livenessProbe", "readinessProbe"):
        hg = get(container, probe, "httpGet", default={})
        check(hg.get("path") == "/healthz" and any(hg.get("port") in (q.get("name"), q.get("containerPort"))
                                                   for q in ports),
              f"{where}: no {probe} on /healthz of a container port: {container.get(probe)}")
    services = [x for x in by_kind.get("Service", []) if x["metadata"]["name"] == "ocps-engine"]
    sports = []
    if check(services, "no ocps-engine Service"):
        svc = services[0]
        ssel = get(svc, "spec", "selector", default={})
        check(ssel and all(pod_labels.get(k) == v for k, v in ssel.items()),
              "Service ocps-engine does not select the engine's pods")
        for q in get(svc, "spec", "ports", default=[]):
            t = q.get("targetPort")
            check(any(t in (c.get("name"), c.get("containerPort")) for c in ports),
                  f"Service ocps-engine: targetPort {t} is no container port")
            sports.append(q.get("port"))
    return {"mounts": emounts, "env": env, "arg": arg, "token_vol": token_vol, "service_ports": sports,
            "namespace": d["metadata"].get("namespace")}


def check_csc_to_engine(where, container, mounts, inst, engine):
    """executor uws: the instance's url reaches the engine's Service under
    its base path, with the engine's token."""
    url = urllib.parse.urlsplit(inst.get("url", ""))
    ns = engine["namespace"]
    hosts = {"ocps-engine", f"ocps-engine.{ns}", f"ocps-engine.{ns}.svc", f"ocps-engine.{ns}.svc.cluster.local"}
    check(url.scheme == "http" and url.hostname in hosts and (url.port or 80) in engine["service_ports"] and
          url.path.rstrip("/") == engine["arg"].get("--base-path", "/api/v1").rstrip("/"),
          f"{where}: url {inst.get('url')} is not the ocps-engine Service "
          f"(ports {engine['service_ports']}, base path {engine['arg'].get('--base-path', '/api/v1')})")
    if engine["token_vol"]:
        envs = {e["name"]: e.get("value") for e in container.get("env", [])}
        path = envs.get("OCPS_UWS_TOKEN_FILE") or ""
        vol = next((v for m, v in mounts.items() if path.startswith(m.rstrip("/") + "/")), {})
        check(get(vol, "secret", "secretName") == get(engine["token_vol"], "secret", "secretName") and
              os.path.basename(path) == os.path.basename(engine["arg"].get("--token-file", "")),
              f"{where}: OCPS_UWS_TOKEN_FILE {path!r} is not the engine's token (Secret "
              f"{get(engine['token_vol'], 'secret', 'secretName')})")


def check_images(kust, by_kind):
    """Every workload's image is set by kustomization.yaml's images: (one
    place for the tag), under a name of its own."""
    images = {i.get("name"): i for i in kust.get("images", [])}
    for kind in ("Job", "Deployment"):
        for d in by_kind.get(kind, []):
            for c in get(d, "spec", "template", "spec", "containers", default=[]):
                where = f"{kind} {d['metadata']['name']} container {c.get('name')}"
                i = images.get(c.get("image"))
                if check(i and i.get("newName") and i.get("newTag"),
                         f"{where}: image {c.get('image')} not named and tagged by kustomization.yaml's images"):
                    check(i["newName"].rsplit("/", 1)[-1] != "dmocps",
                          f"{where}: {i['newName']} is the Python OCPS's image name")


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
    # the names Argo CD owns in phalanx's uws application are not reused: a
    # kubectl apply of these manifests must not overwrite its objects
    for d in docs:
        kind, name = d[1].get("kind"), get(d[1], "metadata", "name")
        check((kind, name) not in PHALANX_OWNED,
              f"{d[0]}: {kind} {name} is a name Argo CD owns in phalanx's uws application")
    env = config_maps.get(ENV_CONFIG_MAP)
    if not check(env is not None, f"no ConfigMap {ENV_CONFIG_MAP} (phalanx csc_shared's csc-env-config, renamed)"):
        return
    for key in ("LSST_SITE", "LSST_TOPIC_SUBNAME", "LSST_KAFKA_BROKER_ADDR", "LSST_SCHEMA_REGISTRY_URL"):
        check(key in env, f"{ENV_CONFIG_MAP} lacks {key}")

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

    # the configuration the CSC will read at the site: the image's files
    # (deploy/config) with any file a ConfigMap mounts over one of them
    cfg_dir = os.path.join(src, "deploy/config/OCPS/v4")
    ocps_env = {}
    for ref in container.get("envFrom", []):
        ocps_env.update(config_maps.get(get(ref, "configMapRef", "name"), {}))
    image_cfg = os.path.join(ocps_env.get("DM_CONFIG_OCPS_DIR", "/usr/share/ocps-c/config"), "OCPS/v4")
    site = env["LSST_SITE"]
    config = read_yaml(os.path.join(cfg_dir, "_init.yaml"))
    shipped_site = read_yaml(os.path.join(cfg_dir, f"_{site}.yaml")) if os.path.exists(
        os.path.join(cfg_dir, f"_{site}.yaml")) else {}
    site_cfg = shipped_site
    over = mounts.get(f"{image_cfg}/_{site}.yaml")
    if over is not None and check("configMap" in over and over.get("subPath"),
                                  f"{where}: {image_cfg}/_{site}.yaml is mounted but not as a ConfigMap key"):
        text = config_maps.get(get(over, "configMap", "name"), {}).get(over["subPath"])
        if check(text, f"{where}: ConfigMap {get(over, 'configMap', 'name')} has no key {over['subPath']}"):
            site_cfg = yaml.safe_load(text) or {}
            check_site_overlay(where, shipped_site, site_cfg, config)
    config = deep_merge(config, site_cfg)
    check_schema(src, f"{where}: the configuration of site {site}", config)
    instance = [i for i in config.get("instances", []) if i.get("sal_index") == int(index)]
    check(len(instance) == 1, f"{where}: the configuration has {len(instance)} instances for index {index}")
    work_root = config.get("work_root", "/var/tmp/ocps")
    store = config.get("job_store") or f"{work_root}/jobs-{index}.sqlite"
    store_vol = next((v for m, v in mounts.items() if store.startswith(m.rstrip("/") + "/")), {})
    check("persistentVolumeClaim" in store_vol,
          f"{where}: the job store {store} (site {site}) is not on a mounted persistent volume")
    check(claim_modes(by_kind, store_vol) == ["ReadWriteOnce"],
          f"{where}: the job store's claim is not ReadWriteOnce (SQLite does not belong on a shared file system)")
    executor = config.get("executor", "local")
    # where the jobs run: the CSC's pod, or (executor uws) the engine's
    runs_jobs = (where, mounts, ocps_env)
    engine = check_engine(by_kind, config_maps)
    if executor == "uws":
        check(config.get("uws_api", "ocps-engine") == "ocps-engine" and engine is not None,
              f"{where}: executor uws, but not with the ocps-engine Deployment of these manifests")
        if engine is not None and instance:
            check_csc_to_engine(where, container, mounts, instance[0], engine)
            runs_jobs = ("Deployment ocps-engine", engine["mounts"], engine["env"])
    else:
        check("persistentVolumeClaim" in mounts.get(work_root, {}),
              f"{where}: the work root {work_root} (site {site}) is not a mounted persistent volume")
    jwhere, jmounts, jenv = runs_jobs
    index_path = jenv.get("DAF_BUTLER_REPOSITORY_INDEX")
    # the engine runs the jobs of every instance of the site file (each
    # OCPS Job reads it), so it mounts every instance's repository
    served = config.get("instances", []) if jwhere == "Deployment ocps-engine" else instance
    if served and check(index_path, f"{jwhere}: no DAF_BUTLER_REPOSITORY_INDEX where the jobs run"):
        vol = jmounts.get(os.path.dirname(index_path), {})
        cm = config_maps.get(get(vol, "configMap", "name"), {})
        repos = yaml.safe_load(cm.get(os.path.basename(index_path), "")) or {}
        for inst in served:
            label = inst.get("butler")
            repo = repos.get(label)
            check(repo and any(repo == p or repo.startswith(p.rstrip("/") + "/") for p in jmounts),
                  f"{jwhere}: butler {label} (OCPS:{inst.get('sal_index')}) -> {repo} is not on a mounted volume "
                  f"where the jobs run")

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

    check_images(kust, by_kind)


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


# The image's user's own directory (the package's postinst makes it and
# /var/lib/ocps-c/work, owned by the service user, the image's USER).
IMAGE_HOME = "/var/lib/ocps-c"


# The sites where phalanx deploys the OCPS CSCs (applications/uws, values
# of summit, base and tucson-teststand): Argo CD's siteTags, which charts/csc
# passes as LSST_SITE.
PHALANX_OCPS_SITES = ("summit", "base", "tucson")


def check_container_config(src):
    """The image as phalanx's charts/csc runs it in place of the Python
    OCPS's (applications/uws: the image and RUN_ARG only, nothing mounted,
    LSST_SITE the site's tag from csc-env-config, the image's non-root
    user): at every site phalanx deploys it, its configuration directory
    (site-config.sh: the package's files, the image's own site files in
    place of theirs) hands the jobs to uws-api-server at _init.yaml's url,
    as the Python OCPS does, and keeps the CSC's store where the image's
    user may write; the package's _summit.yaml stays a host's (executor
    local)."""
    with open(os.path.join(src, "deploy/container/Containerfile"), encoding="utf-8") as f:
        text = re.sub(r"\\\n", " ", f.read())
    m = re.search(r"^ENV\b.*\bDM_CONFIG_OCPS_DIR=(\S+)", text, re.M)
    check(m and m.group(1) == "/usr/local/share/ocps-c/config",
          "Containerfile: DM_CONFIG_OCPS_DIR is not the image's configuration (/usr/local/share/ocps-c/config)")
    check(re.search(r"^RUN\b.*ocps-site-config\.sh\b", text, re.M) and "deploy/container/site-config.sh" in text
          and "deploy/container/config/OCPS/v4" in text,
          "Containerfile: the image's configuration is not made by site-config.sh from deploy/container/config")
    pkg_dir = os.path.join(src, "deploy/config/OCPS/v4")
    own_dir = os.path.join(src, "deploy/container/config/OCPS/v4")
    own = {n for n in os.listdir(own_dir) if n.endswith(".yaml")} if os.path.isdir(own_dir) else set()

    def image_file(name):
        if name in own:
            return read_yaml(os.path.join(own_dir, name))
        if os.path.exists(os.path.join(pkg_dir, name)):
            return read_yaml(os.path.join(pkg_dir, name))
        return {}  # no site file: salobj reads _init.yaml alone

    init = image_file("_init.yaml")
    host = read_yaml(os.path.join(pkg_dir, "_summit.yaml"))
    check(host.get("executor", "local") == "local", "the package's _summit.yaml is no longer a host's (executor local)")
    for site_tag in PHALANX_OCPS_SITES:
        where = f"the image's configuration (LSST_SITE={site_tag})"
        check(f"_{site_tag}.yaml" in own,
              f"deploy/container/config/OCPS/v4 has no _{site_tag}.yaml: at {site_tag}, where phalanx deploys "
              "the OCPS, the image would run the jobs in the CSC's pod (executor local)")
        site = image_file(f"_{site_tag}.yaml")
        check_site_overlay(where, host, site, init)
        config = deep_merge(init, site)
        check_schema(src, where, config)
        check(config.get("executor") == "uws" and config.get("uws_api") == "uws-api-server",
              f"{where}: executor {config.get('executor', 'local')!r}, uws_api {config.get('uws_api')!r}: the "
              "Python OCPS hands its jobs to uws-api-server (executor uws, uws_api uws-api-server)")
        check("instances" not in site, f"{where}: the site file replaces _init.yaml's instances (their urls)")
        for inst in config.get("instances", []):
            check(inst.get("url") == "http://uws-server/api/v1",
                  f"{where}: OCPS:{inst.get('sal_index')} url {inst.get('url')} is not uws-api-server's")
        work_root = config.get("work_root", "/var/tmp/ocps")
        for key, path in (("work_root", work_root), ("job_store", config.get("job_store") or work_root)):
            check(path == IMAGE_HOME or path.startswith(IMAGE_HOME + "/"),
                  f"{where}: {key} {path} is not under {IMAGE_HOME}, which the image's user may write "
                  "with nothing mounted")


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
    check_container_config(src)
    check_entrypoint(src)
    for e in errors:
        print(f"FAIL: {e}")
    if errors:
        return 1
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
