"""ocps-engine's /metrics and job status page, seen from outside.

    uws_observe.py metrics OCPS_ENGINE   # /metrics read by prometheus_client's parser
    uws_observe.py page OCPS_ENGINE      # /status in headless Chromium (DOM and screenshot)

Starts the real ocps-engine on a free loopback port with its own state and
work directories, submits jobs that complete, fail, get aborted (and, for
the page, one that still runs) and checks what an operator sees. Exit 77
(skipped) when Debian's python3-prometheus-client or chromium is missing.
"""

import html.parser
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zlib

SKIP = 77
CHROMIUM = shutil.which("chromium")

# Badge colours of the page (uws_status_page.c), RGB.
BADGE_COLOURS = {
    "executing": (0x00, 0x55, 0xDD),
    "completed": (0x00, 0x88, 0x22),
    "error": (0xCC, 0x00, 0x00),
    "aborted": (0xDD, 0x88, 0x00),
}

failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def tiny_png(width, height, rgb):
    """A PNG of one colour (8-bit RGB), made with zlib and struct."""

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)

    rows = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def read_png(data):
    """(width, height, set of RGB pixels) of an 8-bit RGB/RGBA PNG."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    pos, idat, width = 8, b"", None
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + n]
        pos += 12 + n
        if kind == b"IHDR":
            width, height, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", body)
            if depth != 8 or ctype not in (2, 6) or interlace != 0:
                raise ValueError(f"unsupported PNG: depth {depth} colour type {ctype} interlace {interlace}")
            bpp = 3 if ctype == 2 else 4
        elif kind == b"IDAT":
            idat += body
    raw = zlib.decompress(idat)
    stride = width * bpp
    prev = bytearray(stride)
    pixels = set()
    for y in range(height):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 0xFF
            elif f == 2:
                line[i] = (line[i] + b) & 0xFF
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xFF
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[i] = (line[i] + pred) & 0xFF
        for x in range(0, stride, bpp):
            pixels.add(bytes(line[x : x + 3]))
        prev = line
    return width, height, pixels


class Engine:
    """The real ocps-engine in a temporary directory."""

    def __init__(self, program, tmp, token=None):
        self.tmp = tmp
        port_file = os.path.join(tmp, "port")
        if os.path.exists(port_file):
            os.unlink(port_file)
        args = [program, "--listen", "127.0.0.1:0", "--state-dir", os.path.join(tmp, "state"),
                "--work-root", os.path.join(tmp, "work"), "--port-file", port_file,
                "--max-concurrent", "4", "--abort-grace", "0.5"]
        self.token = token
        if token is not None:
            with open(os.path.join(tmp, "token"), "w") as f:
                f.write(token + "\n")
            args += ["--token-file", os.path.join(tmp, "token")]
        self.log = open(os.path.join(tmp, "engine.log"), "w")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 30
        while not os.path.exists(port_file):
            if self.proc.poll() is not None or time.time() > deadline:
                raise RuntimeError("ocps-engine did not start")
            time.sleep(0.05)
        with open(port_file) as f:
            self.root = f"http://127.0.0.1:{int(f.read())}"
        self.api = self.root + "/api/v1"
        self.jobs = []

    def request(self, method, url, body=None, ctype=None, token=None):
        req = urllib.request.Request(url, data=body, method=method)
        if ctype:
            req.add_header("Content-Type", ctype)
        tok = token if token is not None else self.token
        if tok:
            req.add_header("Authorization", "Bearer " + tok)
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    def submit(self, command, env=None, run_id=None):
        body = {"command": command, "environment": [{"name": k, "value": v} for k, v in (env or {}).items()]}
        if run_id:
            body["run_id"] = run_id
        status, _, data = self.request("PUT", self.api + "/job", json.dumps(body).encode(), "application/json")
        if status != 200:
            raise RuntimeError(f"PUT /job: {status} {data!r}")
        job_id = json.loads(data)["jobId"]
        self.jobs.append(job_id)
        return job_id

    def phase(self, job_id):
        status, _, data = self.request("GET", f"{self.api}/job/{job_id}")
        return json.loads(data)["phase"] if status == 200 else None

    def wait_phase(self, job_id, phases, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            p = self.phase(job_id)
            if p in phases:
                return p
            time.sleep(0.1)
        raise RuntimeError(f"job {job_id} not in {phases} after {timeout} s (last {p})")

    def abort(self, job_id):
        return self.request("POST", f"{self.api}/job/{job_id}/phase", b"PHASE=ABORT",
                            "application/x-www-form-urlencoded")[0]

    def stop(self):
        for job_id in self.jobs:  # jobs outlive the engine: end ours
            self.abort(job_id)
        for job_id in self.jobs:
            try:  # None: deleted
                self.wait_phase(job_id, ("completed", "error", "aborted", "unknown", None), 20)
            except Exception:
                pass
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def scrape(eng):
    from prometheus_client.parser import text_string_to_metric_families

    status, headers, data = eng.request("GET", eng.root + "/metrics")
    if status != 200:
        raise RuntimeError(f"/metrics: {status}")
    samples = {}
    types = {}
    for fam in text_string_to_metric_families(data.decode()):
        types[fam.name] = fam.type
        for s in fam.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return headers, samples, types


def value(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))))


def start_jobs(eng, running):
    """completed (with a PNG output), error (exit 3), aborted and maybe a running job."""
    png = os.path.join(eng.tmp, "quicklook.png")
    with open(png, "wb") as f:
        f.write(tiny_png(40, 30, (0x12, 0x34, 0x56)))
    jobs = {}
    jobs["completed"] = eng.submit(
        f'echo "log line of the completed job <script>"; cp {png} "$JOB_OUTPUT_DIR/preview.png"',
        {"DATA_QUERY": "visit = 42 AND band = 'r' <b>bold</b> & \"q\"",
         "PIPELINE_URL": "$DRP_PIPE_DIR/pipelines/LATISS/DRP.yaml#isr"}, "run-ok")
    jobs["error"] = eng.submit("echo failing now; exit 3", None, "run-fail")
    jobs["aborted"] = eng.submit("sleep 300", None, "run-abort")
    if running:
        jobs["executing"] = eng.submit("sleep 300", None, "run-live")
    eng.wait_phase(jobs["completed"], ("completed",))
    eng.wait_phase(jobs["error"], ("error",))
    eng.wait_phase(jobs["aborted"], ("executing",))
    return jobs


def test_metrics(program):
    try:
        import prometheus_client.parser  # noqa: F401
    except ImportError:
        print("skipped: no prometheus_client (apt-get install python3-prometheus-client)")
        return SKIP
    tmp = tempfile.mkdtemp(prefix="uws_metrics.")
    t0 = time.time()
    eng = Engine(program, tmp)
    try:
        headers, s, types = scrape(eng)
        check("version=0.0.4" in headers.get("Content-Type", ""), "Content-Type is text format 0.0.4")
        check(value(s, "ocps_engine_up") == 1, "ocps_engine_up 1")
        check(value(s, "ocps_engine_store_ok") == 1, "ocps_engine_store_ok 1")
        start = value(s, "process_start_time_seconds")
        check(start is not None and t0 - 2 <= start <= time.time(), f"process_start_time_seconds {start} is now")
        check(value(s, "ocps_engine_job_duration_seconds_count") == 0, "no ended job yet")

        jobs = start_jobs(eng, running=False)
        _, s, _ = scrape(eng)
        check(value(s, "ocps_engine_jobs", phase="executing") == 1, "1 executing (the job to abort)")
        check(value(s, "ocps_engine_jobs", phase="completed") == 1, "1 completed")
        check(value(s, "ocps_engine_jobs", phase="error") == 1, "1 error")
        check(value(s, "ocps_engine_jobs", phase="aborted") == 0, "0 aborted yet")
        check(value(s, "ocps_engine_queue_length") == 0, "queue empty")
        check(value(s, "ocps_engine_waiting_jobs") == 0, "no job waiting")
        check(value(s, "ocps_engine_max_waiting_jobs") == 10000, "--max-waiting 10000 by default")
        check(value(s, "ocps_engine_jobs_refused_total") == 0, "no PUT refused")
        check(types.get("ocps_engine_jobs_refused") == "counter", "refused is a counter")

        check(eng.abort(jobs["aborted"]) in (200, 303), "abort accepted (303 to the job, followed)")
        eng.wait_phase(jobs["aborted"], ("aborted",))
        before = value(s, "ocps_engine_http_requests_total", route="metrics", method="GET", code="200")
        get_before = value(s, "ocps_engine_http_requests_total", route="job", method="GET", code="200") or 0
        status, _, _ = eng.request("GET", eng.api + "/job/" + "0" * 32)
        check(status == 404, "unknown job 404")
        _, s, types = scrape(eng)
        for phase, n in (("executing", 0), ("queued", 0), ("pending", 0), ("completed", 1), ("error", 1),
                         ("aborted", 1)):
            check(value(s, "ocps_engine_jobs", phase=phase) == n, f"ocps_engine_jobs{{phase={phase}}} == {n}")
        check(types.get("ocps_engine_jobs") == "gauge", "ocps_engine_jobs is a gauge")
        check(types.get("ocps_engine_job_duration_seconds") == "histogram", "duration is a histogram")
        check(types.get("ocps_engine_http_requests") == "counter", "requests is a counter (_total)")
        check(value(s, "ocps_engine_jobs_submitted_total") == 3, "3 jobs submitted")
        ended = sum(value(s, "ocps_engine_jobs_ended_total", phase=p) for p in ("completed", "error", "aborted"))
        check(ended == 3, "3 jobs ended")
        count = value(s, "ocps_engine_job_duration_seconds_count")
        check(count == 3, f"histogram count {count} == ended jobs 3")
        check(value(s, "ocps_engine_job_duration_seconds_bucket", le="+Inf") == count, "+Inf bucket == count")
        buckets = sorted((float(k[1][0][1]), v) for k, v in s.items()
                         if k[0] == "ocps_engine_job_duration_seconds_bucket")
        check(all(a[1] <= b[1] for a, b in zip(buckets, buckets[1:])), "buckets are cumulative")
        total = value(s, "ocps_engine_job_duration_seconds_sum")
        check(total is not None and 0 < total < 60, f"duration sum {total} s plausible (an aborted sleep)")
        after = value(s, "ocps_engine_http_requests_total", route="metrics", method="GET", code="200")
        check(before is not None and after == before + 1, f"metrics requests counted ({before} -> {after})")
        get_after = value(s, "ocps_engine_http_requests_total", route="job", method="GET", code="200")
        check(get_after is not None and get_after > get_before, "job GETs counted")
        check(value(s, "ocps_engine_http_requests_total", route="job", method="GET", code="404") == 1,
              "the 404 counted with its status")
        check(value(s, "ocps_engine_http_requests_total", route="jobs", method="PUT", code="200") == 3,
              "3 PUT /job counted")
        check(value(s, "ocps_engine_http_requests_total", route="property", method="POST", code="303") == 1,
              "the abort counted")
        status, _, _ = eng.request("GET", eng.api + "/metrics")
        check(status == 200, "/metrics under the base path too")
        # Deleting an ended job takes it out of the phase gauge.
        eng.request("DELETE", eng.api + "/job/" + jobs["error"])
        _, s, _ = scrape(eng)
        check(value(s, "ocps_engine_jobs", phase="error") == 0, "deleted job leaves the gauge")
    finally:
        eng.stop()

    # With a token, /metrics and /status are as protected as the API.
    tmp2 = tempfile.mkdtemp(prefix="uws_metrics_token.")
    eng = Engine(program, tmp2, token="s3cret")
    try:
        check(eng.request("GET", eng.root + "/metrics", token="")[0] == 401, "token set: /metrics 401 without")
        check(eng.request("GET", eng.root + "/status", token="")[0] == 401, "token set: /status 401 without")
        check(eng.request("GET", eng.root + "/metrics")[0] == 200, "token set: /metrics 200 with it")
        # the probe (Kubernetes' httpGet sends no token) is open, and tells nothing else
        got = eng.request("GET", eng.root + "/healthz", token="")
        check(got[0] == 200 and got[2] == b"ok\n", f"token set: /healthz without it: {got[0]} {got[2][:80]!r}")
        check(eng.request("POST", eng.root + "/healthz", b"", token="")[0] == 405, "POST /healthz is not 405")
        check(eng.request("GET", eng.api + "/healthz", token="")[0] == 401,
              "token set: only the root's /healthz is open, not the API's")
        _, s, _ = scrape(eng)
        check(value(s, "ocps_engine_http_requests_total", route="healthz", method="GET", code="200") == 1,
              "the probe is counted as route healthz")
    finally:
        eng.stop()
    # A restart counts the history found in the store.
    eng = Engine(program, tmp)
    try:
        _, s, _ = scrape(eng)
        check(value(s, "ocps_engine_jobs", phase="completed") == 1 and value(s, "ocps_engine_jobs",
              phase="aborted") == 1, "after a restart the stored jobs are counted by phase")
    finally:
        eng.stop()
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(tmp2, ignore_errors=True)
    return 1 if failures else 0


class Dom(html.parser.HTMLParser):
    """Rows of the job tables (by id), text of the log, img sources, scripts and links."""

    def __init__(self):
        super().__init__()
        self.rows = {}
        self.cur = None
        self.cell = None
        self.in_log = False
        self.log = ""
        self.imgs = []
        self.tags = []
        self.refresh = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append((tag, a))
        if tag == "tr" and (a.get("id") or "").startswith("job-"):
            self.cur = {"phase": a.get("data-phase"), "cells": [], "elements": []}
            self.rows[a["id"][4:]] = self.cur
        elif tag == "td" and self.cur is not None:
            self.cur["cells"].append("")
        elif tag == "pre" and a.get("class") == "log":
            self.in_log = True
        elif tag == "img":
            self.imgs.append(a.get("src"))
        elif tag == "meta" and (a.get("http-equiv") or "").lower() == "refresh":
            self.refresh = True
        if self.cur is not None and tag != "td":
            self.cur["elements"].append(tag)

    def handle_endtag(self, tag):
        if tag == "tr":
            self.cur = None
        elif tag == "pre":
            self.in_log = False

    def handle_data(self, data):
        if self.cur is not None and self.cur["cells"]:
            self.cur["cells"][-1] += data
        if self.in_log:
            self.log += data


def chromium(args, timeout=180):
    prof = tempfile.mkdtemp(prefix="uws_page_chromium.")
    try:
        return subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                               f"--user-data-dir={prof}", "--force-device-scale-factor=1"] + args,
                              capture_output=True, timeout=timeout)
    finally:
        shutil.rmtree(prof, ignore_errors=True)


def dump_dom(url):
    r = chromium(["--dump-dom", url])
    d = Dom()
    d.feed(r.stdout.decode("utf-8", "replace"))
    return d


def test_page(program):
    if CHROMIUM is None:
        print("skipped: no chromium (apt-get install chromium)")
        return SKIP
    tmp = tempfile.mkdtemp(prefix="uws_page.")
    eng = Engine(program, tmp)
    try:
        jobs = start_jobs(eng, running=True)
        eng.wait_phase(jobs["executing"], ("executing",))
        check(eng.abort(jobs["aborted"]) in (200, 303), "abort accepted (303 to the job, followed)")
        eng.wait_phase(jobs["aborted"], ("aborted",))

        dom = dump_dom(eng.root + "/status")
        check(dom.refresh, "the list refreshes itself")
        check(not any(t == "script" for t, _ in dom.tags), "no script")
        external = [a for _, a in dom.tags for k in ("src", "href") if (a.get(k) or "").startswith(("http:", "https:", "//"))]
        check(not external, f"nothing loaded from outside ({external})")
        exits = {"completed": "0", "error": "3", "aborted": "255", "executing": "-"}
        for phase, job_id in jobs.items():
            row = dom.rows.get(job_id)
            check(row is not None, f"{phase} job listed")
            if row is None:
                continue
            cells = row["cells"]
            check(row["phase"] == phase and cells[1].strip() == phase, f"{phase} job shows phase {phase} ({cells[1]!r})")
            check(cells[9].strip() == exits[phase], f"{phase} job shows exit code {exits[phase]} ({cells[9]!r})")
        ok = dom.rows.get(jobs["completed"])
        if ok is not None:
            check(ok["cells"][2] == "run-ok", "run id shown")
            check(ok["cells"][3] == "$DRP_PIPE_DIR/pipelines/LATISS/DRP.yaml#isr", "pipeline shown")
            check(ok["cells"][4] == "visit = 42 AND band = 'r' <b>bold</b> & \"q\"", "query shown as text (escaped)")
            check("b" not in ok["elements"], "the query's markup is not markup")
            check(ok["cells"][10].startswith("success"), "reason shown")
        fail = dom.rows.get(jobs["error"])
        if fail is not None:
            check(fail["cells"][10].startswith("pipeline_failed"), "failure reason shown")

        job = dump_dom(f"{eng.root}/status/job/{jobs['completed']}")
        check("log line of the completed job <script>" in job.log, f"job page shows the log tail ({job.log!r})")
        check(not any(t == "script" for t, _ in job.tags), "the log's <script> is text")
        check(len(job.imgs) == 1 and job.imgs[0] is not None, f"job page has the preview img ({job.imgs})")
        if job.imgs and job.imgs[0]:
            status, headers, data = eng.request("GET", eng.root + job.imgs[0])
            check(status == 200 and headers.get("Content-Type") == "image/png" and read_png(data)[:2] == (40, 30),
                  "the img is the job's PNG")
        links = [a.get("href") for t, a in job.tags if t == "a" and "/job/result/" in (a.get("href") or "")]
        check(len(links) == 1, f"job page links its output ({links})")
        # The preview is drawn: the job page's screenshot shows the PNG's colour.
        jshot = os.path.join(tmp, "job.png")
        chromium([f"--screenshot={jshot}", "--window-size=900,700", f"{eng.root}/status/job/{jobs['completed']}"])
        if os.path.exists(jshot):
            with open(jshot, "rb") as f:
                check(bytes((0x12, 0x34, 0x56)) in read_png(f.read())[2], "job page screenshot shows the preview")
        else:
            check(False, "job page screenshot taken")
        fjob = dump_dom(f"{eng.root}/status/job/{jobs['error']}")
        check("failing now" in fjob.log and not fjob.imgs, "failed job: its log, no img")

        shot = os.path.join(tmp, "status.png")
        width, height = 1400, 900
        r = chromium([f"--screenshot={shot}", f"--window-size={width},{height}", eng.root + "/status"])
        check(os.path.exists(shot), f"screenshot taken ({r.stderr[-300:]!r})")
        if os.path.exists(shot):
            with open(shot, "rb") as f:
                w, h, pixels = read_png(f.read())
            check((w, h) == (width, height), f"screenshot is {width}x{height} ({w}x{h})")
            for phase, rgb in BADGE_COLOURS.items():
                near = any(all(abs(p[i] - rgb[i]) <= 3 for i in range(3)) for p in pixels)
                check(near, f"screenshot shows the {phase} badge colour #{bytes(rgb).hex()}")
    finally:
        eng.stop()
    if os.environ.get("UWS_OBSERVE_KEEP") is None:
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        print(f"kept {tmp}")
    return 1 if failures else 0


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("metrics", "page"):
        print(__doc__)
        return 2
    rc = test_metrics(sys.argv[2]) if sys.argv[1] == "metrics" else test_page(sys.argv[2])
    if failures:
        print(f"{len(failures)} failure(s)")
    return rc


if __name__ == "__main__":
    sys.exit(main())
