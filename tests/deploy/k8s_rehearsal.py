#!/usr/bin/python3
"""The Kubernetes manifests (deploy/k8s), rehearsed on this host.

    k8s_rehearsal.py BUILD_DIR SOURCE_DIR

No cluster runs here, so the two pods are played by processes, each given
what its manifest gives it, every absolute path of a pod placed under one
temporary directory (its "volumes"):

  * ocps-engine with the Deployment's OCPS_ENGINE_OPTIONS (its --listen
    moved to a free loopback port, with --port-file), the environment of
    its ConfigMaps, its token Secret and the butler repository index of
    ocps-butler-index, holding a LATISS repository of synthetic raws;
  * its probe: GET /healthz without a token, as the kubelet sends it;
  * ocps-csc with RUN_ARG of the Job, the configuration the pod reads (the
    image's files with ocps-site-config's _summit.yaml mounted over one),
    OCPS_UWS_TOKEN_FILE, and the instance's url pointed at the engine's
    port (deploy_manifests checks that the url names the Service);
  * an operator's ocps-cmd: start, enable, execute cpBias.yaml, then the
    engine is asked (with the token) for the job: it ran there, completed,
    and its bias is in the repository.

    k8s_rehearsal.py BUILD_DIR SOURCE_DIR --kafka MOCK_BROKER SCHEMA_REGISTRY [SASL_FRONT]

The transport is the pods' (ocps-env-config: Kafka) when the test broker
(librdkafka's mock cluster) and schema registry are given, with the
ocps-c-csc-env (csc-env-config) topic subname and the broker and registry addresses
replaced by theirs; with SASL_FRONT (ocps-sasl-front) the broker requires
SASL/SCRAM-SHA-512 as the summit's does, the user the pod's
LSST_KAFKA_SECURITY_USERNAME and a password made here for the Secret the
pod takes LSST_KAFKA_SECURITY_PASSWORD from (a secretKeyRef is required),
else no SASL (the test broker has none); otherwise DDS on loopback.
Exit status 77 (skipped) when a program is missing from the build.
"""
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from manifests import get, load_docs, pod_env  # noqa: E402

SKIP = 77


def fail(msg):
    print(f"FAIL: {msg}")
    sys.exit(1)


def http(method, url, token=None):
    req = urllib.request.Request(url, method=method)
    if token:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


class Rehearsal:
    def __init__(self, build, src):
        self.build = build
        self.src = src
        self.root = tempfile.mkdtemp(prefix="ocps-k8s-")
        self.procs = []
        docs = load_docs(os.path.join(src, "deploy/k8s"))
        self.kind = {}
        for _, d in docs:
            self.kind.setdefault(d["kind"], {})[d["metadata"]["name"]] = d
        self.config_maps = {n: d.get("data", {}) for n, d in self.kind.get("ConfigMap", {}).items()}
        self.kafka = None

    def path(self, pod_path, pod="engine"):
        """A pod's absolute path, here: each pod has a file system of its
        own (the CSC cannot read the engine's files, nor the reverse)."""
        return os.path.join(self.root, pod, pod_path.lstrip("/"))

    def mount_secrets(self, pod, spec, container):
        """The Secret volumes a container mounts, as files under its mount
        paths: ocps-engine-token holds the token."""
        vols = {v["name"]: v for v in spec.get("volumes", [])}
        for m in container.get("volumeMounts", []):
            v = vols[m["name"]]
            if "secret" in v and v["secret"]["secretName"] == "ocps-engine-token":
                d = self.path(m["mountPath"], pod)
                os.makedirs(d, exist_ok=True)
                with open(os.path.join(d, "token"), "w", encoding="utf-8") as f:
                    f.write(self.token + "\n")

    def program(self, *rel):
        p = os.path.join(self.build, *rel)
        if not os.access(p, os.X_OK):
            print(f"{p} not built; skipped")
            sys.exit(SKIP)
        return p

    def spawn(self, name, argv, env, stdin=None):
        log = open(os.path.join(self.root, name + ".log"), "wb")
        p = subprocess.Popen(argv, env=env, stdin=stdin, stdout=log, stderr=subprocess.STDOUT)
        self.procs.append((name, p))
        return p

    def first_line(self, name, prefix, timeout=30):
        """The line of a process's log that starts with prefix (its address)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with open(os.path.join(self.root, name + ".log"), encoding="utf-8", errors="replace") as f:
                for line in f:
                    if line.startswith(prefix):
                        return line
            time.sleep(0.05)
        self.logs()
        fail(f"{name} did not start (no {prefix.strip()} line)")

    def logs(self):
        for name, _ in self.procs:
            if not os.path.exists(os.path.join(self.root, name + ".log")):
                continue
            with open(os.path.join(self.root, name + ".log"), encoding="utf-8", errors="replace") as f:
                print(f"---- {name} log (last 40 lines)")
                print("".join(f.readlines()[-40:]))

    def stop(self):
        """The CSC and the engine first (the CSC flushes to the broker), then
        the broker (its stdin closed) and the registry."""
        for _, p in reversed(self.procs):
            if p.stdin is not None:
                continue
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for _, p in self.procs:
            if p.stdin is not None:
                p.stdin.close()
                try:
                    p.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()

    def base_env(self):
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": self.root, "LANG": "C.UTF-8"}
        env["CYCLONEDDS_URI"] = "file://" + os.path.join(self.src, "deploy/cyclonedds-loopback.xml")
        env["LSST_DDS_PARTITION_PREFIX"] = f"k8s{os.getpid()}"
        return env

    def start_kafka(self, broker, registry, sasl_front=None):
        """The test broker with every OCPS topic under ocps-c-csc-env's
        subname, and the schema registry; returns the transport's env."""
        sub = self.config_maps["ocps-c-csc-env"]["LSST_TOPIC_SUBNAME"]
        info = subprocess.run([self.program("csc/sal-info"), "--transport", "kafka"], capture_output=True,
                              text=True, check=True).stdout.splitlines()
        names = [f"lsst.{sub}.OCPS.{w[2]}" for w in (line.split() for line in info)
                 if len(w) > 2 and w[2].startswith(("ackcmd", "command_", "logevent_"))]
        if not names:
            fail("sal-info --transport kafka listed no topic")
        topics = os.path.join(self.root, "topics.txt")
        with open(topics, "w", encoding="utf-8") as f:
            f.write("\n".join(names) + "\n")
        # the broker runs until its stdin closes (at stop, or when this
        # process dies); both print their address first, into their log
        self.spawn("broker", [broker, "--topics-file", topics], None, stdin=subprocess.PIPE)
        self.spawn("registry", [registry, "--port", "0"], None)
        line = self.first_line("broker", "BOOTSTRAP ")
        rline = self.first_line("registry", "LISTENING ")
        print(f"ok   test broker ({len(names)} topics under lsst.{sub}) and schema registry")
        # the consumer settings the test broker needs (fetch.wait.max.ms 10)
        self.kafka = {"OCPS_TRANSPORT": "kafka", "LSST_TOPIC_SUBNAME": sub,
                      "LSST_KAFKA_BROKER_ADDR": line.split()[1], "LSST_SCHEMA_REGISTRY_URL": rline.split()[1],
                      "LSST_KAFKA_CONSUMER_CONFIGURATION": os.path.join(self.src, "tests/kafka/mock_consumer.yaml")}
        self.sasl_front = sasl_front

    def start_sasl(self, pod, env):
        """The broker behind ocps-sasl-front with the pod's user and a
        password made here for the Secret the pod names; returns the env
        that reaches it."""
        user = env.get("LSST_KAFKA_SECURITY_USERNAME")
        if not user:
            fail("the CSC's pod sets no LSST_KAFKA_SECURITY_USERNAME (the summit's brokers require SASL)")
        ref = [e for e in get(pod, "containers", 0).get("env", [])
               if e["name"] == "LSST_KAFKA_SECURITY_PASSWORD" and "secretKeyRef" in e.get("valueFrom", {})]
        if not ref:
            fail("the CSC's pod takes LSST_KAFKA_SECURITY_PASSWORD from no Secret")
        secret = ref[0]["valueFrom"]["secretKeyRef"]
        password = secrets.token_hex(16)
        # it ends with its stdin, as the broker: at stop, or when this process dies
        self.spawn("sasl-front", [self.sasl_front, "--upstream", self.kafka["LSST_KAFKA_BROKER_ADDR"],
                                  "--user", user, "--password", password], None, stdin=subprocess.PIPE)
        front = self.first_line("sasl-front", "BOOTSTRAP ").split()[1]
        print(f"ok   the broker requires SASL/SCRAM-SHA-512: user {user}, the password from Secret "
              f"{secret['name']} key {secret['key']}")
        return {"LSST_KAFKA_BROKER_ADDR": front, "LSST_KAFKA_SECURITY_PASSWORD": password}

    def secret(self):
        """The Secret ocps-engine-token, where both pods mount it."""
        self.token = secrets.token_hex(32)
        return self.token

    def butler(self, engine_env):
        """ocps-butler-index as mounted in the engine's pod, and the LATISS
        repository it names, with synthetic bias raws."""
        index = engine_env["DAF_BUTLER_REPOSITORY_INDEX"]
        mounted = self.engine_mounts()
        vol = mounted.get(os.path.dirname(index))
        if vol is None or "configMap" not in vol:
            fail(f"the engine's pod does not mount {os.path.dirname(index)} from a ConfigMap")
        repos = yaml.safe_load(self.config_maps[vol["configMap"]["name"]][os.path.basename(index)])
        local = {label: self.path(p) for label, p in repos.items()}
        os.makedirs(os.path.dirname(self.path(index)), exist_ok=True)
        with open(self.path(index), "w", encoding="utf-8") as f:
            yaml.safe_dump(local, f)
        repo = local["LATISS"]
        raws = os.path.join(self.root, "raws")
        fake = self.program("processing/fits/ocps-fakeraws")
        butler = self.program("processing/butler/ocps-butler")
        subprocess.run([fake, "--instrument", "LATISS", "--type", "bias", "--count", "3", "--small", "--out", raws],
                       check=True, stdout=subprocess.DEVNULL)
        os.makedirs(os.path.dirname(repo), exist_ok=True)
        subprocess.run([butler, "create", repo], check=True, stdout=subprocess.DEVNULL)
        subprocess.run([butler, "ingest-raws", repo] + sorted(os.path.join(raws, n) for n in os.listdir(raws) if n.endswith(".fits")),
                       check=True, stdout=subprocess.DEVNULL)
        self.repo = repo

    def engine_pod(self):
        return get(self.kind["Deployment"]["ocps-engine"], "spec", "template", "spec")

    def engine_mounts(self):
        pod = self.engine_pod()
        vols = {v["name"]: v for v in pod.get("volumes", [])}
        return {m["mountPath"]: vols[m["name"]] for m in get(pod, "containers", 0, "volumeMounts", default=[])}

    def start_engine(self):
        pod = self.engine_pod()
        env = pod_env(pod, self.config_maps)
        opts = env.pop("OCPS_ENGINE_OPTIONS").split()
        argv = [self.program("processing/ocps-engine")]
        port_file = os.path.join(self.root, "engine.port")
        i = 0
        while i < len(opts):
            o = opts[i]
            if o == "--listen":
                argv += ["--listen", "127.0.0.1:0", "--port-file", port_file]
                i += 2
                continue
            if o in ("--state-dir", "--work-root", "--token-file"):
                argv += [o, self.path(opts[i + 1])]
                i += 2
                continue
            argv.append(o)
            i += 1
        self.secret()
        self.mount_secrets("engine", pod, get(pod, "containers", 0))
        self.butler(env)
        run_env = self.base_env()
        run_env.update(env)
        run_env["DAF_BUTLER_REPOSITORY_INDEX"] = self.path(env["DAF_BUTLER_REPOSITORY_INDEX"])
        if "HOME" in env:  # the pod's HOME (its uid has no home in the image)
            run_env["HOME"] = self.path(env["HOME"])
            os.makedirs(run_env["HOME"], exist_ok=True)
        run_env["OCPS_JOB_RUNNER"] = self.program("processing/ocps-job-runner")
        self.engine = self.spawn("engine", argv, run_env)
        for _ in range(200):
            if os.path.exists(port_file) and open(port_file).read().strip():
                break
            if self.engine.poll() is not None:
                self.logs()
                fail(f"ocps-engine exited ({self.engine.returncode}) with the Deployment's options")
            time.sleep(0.05)
        self.engine_root = f"http://127.0.0.1:{int(open(port_file).read())}"
        base = opts[opts.index("--base-path") + 1] if "--base-path" in opts else "/api/v1"
        self.engine_api = self.engine_root + base
        # the kubelet's probes send no token
        probe = get(pod, "containers", 0, "readinessProbe", "httpGet", "path")
        status, body = http("GET", self.engine_root + probe)
        if status != 200:
            fail(f"readinessProbe GET {probe} without a token: {status} {body[:200]!r}")
        print(f"ok   engine up; GET {probe} without a token: 200")

    def start_csc(self):
        job = next(iter(self.kind["Job"].values()))
        pod = get(job, "spec", "template", "spec")
        c = get(pod, "containers", 0)
        env = pod_env(pod, self.config_maps)
        vols = {v["name"]: v for v in pod.get("volumes", [])}
        # the image's configuration, with the files ConfigMaps mount over it
        image_dir = env["DM_CONFIG_OCPS_DIR"]
        cfg = self.path(image_dir, "csc")
        shutil.copytree(os.path.join(self.src, "deploy/config"), cfg)
        mounted_site = False
        for m in c.get("volumeMounts", []):
            v = vols[m["name"]]
            if m["mountPath"].startswith(image_dir.rstrip("/") + "/") and "configMap" in v:
                text = self.config_maps[v["configMap"]["name"]][m["subPath"]]
                data = yaml.safe_load(text)
                mounted_site = True
                with open(self.path(m["mountPath"], "csc"), "w", encoding="utf-8") as f:
                    f.write(self.localize(data))
        if not mounted_site:
            fail("the CSC's pod mounts no site file over the image's configuration")
        self.mount_secrets("csc", pod, c)
        token_file = env["OCPS_UWS_TOKEN_FILE"]
        if not os.path.exists(self.path(token_file, "csc")):
            fail(f"OCPS_UWS_TOKEN_FILE {token_file} is not in the CSC's mount of the engine's token Secret")
        run_env = self.base_env()
        run_env.update(env)
        run_env.update({"OCPS_TRANSPORT": "dds", "OCPS_LOG_FORMAT": "text", "DM_CONFIG_OCPS_DIR": cfg,
                        "OCPS_UWS_TOKEN_FILE": self.path(token_file, "csc")})
        if self.kafka:
            run_env.update(self.kafka)
            if self.sasl_front:
                run_env.update(self.start_sasl(pod, env))
            else:
                for k in ("LSST_KAFKA_SECURITY_USERNAME", "LSST_KAFKA_SECURITY_PASSWORD"):
                    run_env.pop(k, None)  # the test broker has no SASL
        self.index = env["RUN_ARG"].split()[0]
        argv = [self.program("csc/ocps-csc")] + env["RUN_ARG"].split()
        self.csc_env = run_env
        self.csc = self.spawn("csc", argv, run_env)

    def localize(self, site):
        """The mounted site file with its paths under the pod's volumes here
        and its url at the engine's port (its host is the Service's)."""
        for key in ("work_root", "job_store"):
            if site.get(key):
                site[key] = self.path(site[key], "csc")
        for inst in site.get("instances", []):
            if "url" in inst:
                inst["url"] = self.engine_api
        return yaml.safe_dump(site)

    def cmd(self, *args, timeout=120):
        argv = [self.program("csc/ocps-cmd"), "--discovery", "30", "--timeout", "90", f"OCPS:{self.index}", *args]
        r = subprocess.run(argv, env=self.csc_env, capture_output=True, text=True, timeout=timeout)
        return r.returncode, r.stdout + r.stderr


def main():
    build, src = (os.path.abspath(a) for a in sys.argv[1:3])
    r = Rehearsal(build, src)
    try:
        if sys.argv[3:4] == ["--kafka"]:
            r.start_kafka(*sys.argv[4:7])
        r.start_engine()
        r.start_csc()
        for step in (["start"], ["enable"]):
            code, out = r.cmd(*step)
            if code != 0:
                r.logs()
                fail(f"ocps-cmd {' '.join(step)}: exit {code}\n{out}")
            print(f"ok   ocps-cmd {step[0]}")
        code, out = r.cmd("execute", "--pipeline", "cpBias.yaml", "--data_query",
                          "exposure.observation_type='bias'")
        if code != 0:
            r.logs()
            fail(f"execute: exit {code}\n{out}")
        ids = [w for w in out.replace('"', " ").split() if len(w) == 32 and all(ch in "0123456789abcdef" for ch in w)]
        if not ids:
            fail(f"execute printed no job id:\n{out}")
        job_id = ids[0]
        print(f"ok   execute completed: job {job_id}")
        # the job ran in the engine (it knows it, as its runId, with the token only)
        status, _ = http("GET", f"{r.engine_api}/job")
        if status != 401:
            fail(f"GET /job without the token: {status}, not 401")
        status, body = http("GET", f"{r.engine_api}/job", r.token)
        listed = json.loads(body) if status == 200 else []
        mine = [j for j in listed if j.get("runId") == job_id]
        if len(mine) != 1:
            r.logs()
            fail(f"the engine lists {len(mine)} jobs of run_id {job_id}: {status} {body[:400]!r}")
        status, body = http("GET", f"{r.engine_api}/job/{mine[0]['jobId']}", r.token)
        job = json.loads(body) if status == 200 else {}
        if job.get("phase") != "completed":
            fail(f"the engine's job {mine[0]['jobId']}: {status} {body[:400]!r}")
        print(f"ok   the job ran in the engine (its job {job['jobId']}) and completed")
        # the CSC's job_result tells what the job did there: its outputs
        # (from the engine's metrics.json), its memory, its log's URL
        code, out = r.cmd("show", "job_result", "--json", "--timeout", "10")
        lines = [line for line in out.splitlines() if line.startswith("{")]  # not librdkafka's log lines
        sample = json.loads(lines[-1]) if code == 0 and lines else {}
        result = json.loads(sample.get("fields", {}).get("result", "{}"))
        print(f"     job_result: {json.dumps(result)[:600]}")
        if result.get("jobId") != job_id or not result.get("outputs") or result.get("max_rss_kb") is None:
            fail(f"job_result lacks what the engine's job did (outputs, max_rss_kb): {sample}")
        log_url = result.get("log") or ""
        if not log_url.startswith(r.engine_api + "/job/"):
            fail(f"job_result log {log_url!r} is not the engine's log URL")
        status, body = http("GET", log_url, r.token)
        if status != 200 or b"ocps-pipetask" not in body and b"cpBias" not in body:
            fail(f"GET {log_url}: {status} {body[:300]!r}")
        print("ok   job_result: the job's outputs, max_rss_kb, and its log at the engine (read with the token)")
        listing = subprocess.run([r.program("processing/butler/ocps-butler"), "query-datasets", r.repo, "bias",
                                  "--collections", f"u/ocps/{job_id}"], capture_output=True, text=True)
        if listing.returncode != 0 or "bias" not in listing.stdout:
            fail(f"no bias in u/ocps/{job_id}: {listing.stdout}{listing.stderr}")
        print(f"ok   bias written to the repository the engine's pod mounts (u/ocps/{job_id})")
        code, out = r.cmd("disable")
        code2, out2 = r.cmd("standby")
        if code or code2:
            fail(f"disable/standby: {out}{out2}")
        print("ok   disable, standby")
    finally:
        r.stop()
    shutil.rmtree(r.root, ignore_errors=True)
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
