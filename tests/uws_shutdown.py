"""ocps-engine stopped (SIGTERM) under a stream of PUT /job: every job it
stored was answered 200, and every 200 is a stored job.

    uws_shutdown.py OCPS_ENGINE [ROUNDS]
    uws_shutdown.py OCPS_ENGINE drain

drain: ocps-engine --drain-timeout (a pod's graceful stop). A SIGTERM
leaves a running job to end and the service answering GETs; a PUT then is
answered 503 with Retry-After and creates nothing, a queued job is not
started; the service exits once the running job has ended, and the job is
`completed` after a restart. A second signal exits at once, and the drain's
timeout ends it too, leaving the job running (re-adopted at the next start,
as without the option).

The real ocps-engine, its only slot held by a sleeping job (so that the
PUT jobs stay queued), 32 clients each sending PUTs with their own run_ids
one after another; SIGTERM after a second, the engine started again on the
same directories and its jobs listed. A client whose connection closed
without an answer may retry: had the job been stored, it would run twice.
Each round prints what it saw; exit 1 on the first round that breaks it.
"""

import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

CLIENTS = 32


def start(engine, root, *options):
    port_file = os.path.join(root, "port")
    if os.path.exists(port_file):
        os.unlink(port_file)
    log = open(os.path.join(root, "engine.log"), "a")
    proc = subprocess.Popen(
        [engine, "--listen", "127.0.0.1:0", "--state-dir", root + "/state", "--work-root", root + "/work",
         "--port-file", port_file, "--max-concurrent", "1", "--max-waiting", "0", *options],
        stderr=log)
    log.close()
    end = time.time() + 10
    while time.time() < end:
        if os.path.exists(port_file) and open(port_file).read().strip():
            return proc, int(open(port_file).read())
        time.sleep(0.05)
    proc.kill()
    sys.exit("uws_shutdown.py: ocps-engine did not start")


def request(port, method, path, body=None, with_headers=False):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {"Content-Type": "application/json"} if body is not None else {}
    conn.request(method, path, json.dumps(body) if body is not None else None, headers)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    if with_headers:
        return resp.status, dict(resp.getheaders()), data
    return resp.status, data


def one_round(engine, rnd):
    root = tempfile.mkdtemp(prefix="uws-shutdown-")
    holder = os.path.join(root, "holder.pid")
    proc, port = start(engine, root)
    try:
        status, _ = request(port, "PUT", "/api/v1/job", {"command": "echo $$ > %s; exec sleep 600" % holder})
        assert status == 200, status
        answered = {}
        unanswered = []
        lock = threading.Lock()
        stop = threading.Event()

        def client(k):
            i = 0
            while not stop.is_set():
                run_id = "c%d-%d" % (k, i)
                i += 1
                try:
                    status, data = request(port, "PUT", "/api/v1/job", {"argv": ["true"], "run_id": run_id})
                except (OSError, http.client.HTTPException):
                    with lock:
                        unanswered.append(run_id)
                    return
                with lock:
                    if status == 200:
                        answered[run_id] = json.loads(data)["jobId"]
                    else:
                        unanswered.append(run_id)  # 503: shutting down, nothing created

        threads = [threading.Thread(target=client, args=(k,)) for k in range(CLIENTS)]
        for t in threads:
            t.start()
        time.sleep(1.0)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        stop.set()
        for t in threads:
            t.join()
        proc, port = start(engine, root)
        status, data = request(port, "GET", "/api/v1/job")
        assert status == 200, status
        stored = {j["runId"]: j["jobId"] for j in json.loads(data) if j["runId"].startswith("c")}
        silent = [r for r in unanswered if r in stored]
        lost = [r for r in answered if stored.get(r) != answered[r]]
        print("round %d: %d answered 200, %d without an answer, %d stored; stored without an answer: %d,"
              " answered but not stored: %d" % (rnd, len(answered), len(unanswered), len(stored), len(silent),
                                                 len(lost)))
        return not silent and not lost and len(stored) == len(answered) and answered
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        try:
            os.killpg(int(open(holder).read()), signal.SIGKILL)
        except (OSError, ValueError):
            pass
        shutil.rmtree(root, ignore_errors=True)


failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)
    return cond


def job_of(port, job_id):
    status, data = request(port, "GET", "/api/v1/job/" + job_id)
    return json.loads(data) if status == 200 else {"phase": "HTTP %d" % status}


def submit(port, body):
    status, data = request(port, "PUT", "/api/v1/job", body)
    assert status == 200, (status, data)
    return json.loads(data)["jobId"]


def wait_phase(port, job_id, phases, timeout=20):
    end = time.time() + timeout
    while time.time() < end:
        job = job_of(port, job_id)
        if job["phase"] in phases:
            return job
        time.sleep(0.05)
    return job_of(port, job_id)


def exited_within(proc, seconds):
    try:
        proc.wait(timeout=seconds)
        return True
    except subprocess.TimeoutExpired:
        return False


def kill_holder(holder):
    try:
        os.killpg(int(open(holder).read()), signal.SIGKILL)
    except (OSError, ValueError):
        pass


def drain_lets_the_job_end(engine):
    """SIGTERM under --drain-timeout: the running job ends `completed`."""
    root = tempfile.mkdtemp(prefix="uws-drain-")
    proc, port = start(engine, root, "--drain-timeout", "60")
    try:
        running = submit(port, {"command": "sleep 3; echo done > $JOB_OUTPUT_DIR/done.txt", "run_id": "running"})
        queued = submit(port, {"argv": ["true"], "run_id": "queued"})  # the only slot is taken
        check(wait_phase(port, running, ("executing",))["phase"] == "executing", "the job runs")
        t0 = time.time()
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        check(proc.poll() is None, "draining: the service goes on after a SIGTERM while a job runs")
        status, headers, data = request(port, "PUT", "/api/v1/job", {"argv": ["true"], "run_id": "late"},
                                        with_headers=True)
        check(status == 503 and headers.get("Retry-After", "").isdigit() and b"draining" in data,
              "draining: PUT /job is answered 503 with Retry-After: %d %s %r" % (status, headers.get(
                  "Retry-After"), data[:100]))
        check(job_of(port, running)["phase"] == "executing", "draining: GET /job/{id} answers, the job runs")
        check(job_of(port, queued)["phase"] == "queued", "draining: a queued job is not started")
        status, _ = request(port, "GET", "/healthz")
        check(status == 200, "draining: /healthz answers 200 (the pod stays reachable through its Service)")
        check(exited_within(proc, 30), "the service exits once the job has ended")
        took = time.time() - t0
        check(proc.returncode == 0 and 2.0 <= took < 20,
              "... with status 0, %.1f s after the SIGTERM (the job slept 3 s)" % took)
        proc, port = start(engine, root)
        job = job_of(port, running)
        check(job["phase"] == "completed", "after a restart the drained job is completed: %s" % job["phase"])
        check(os.path.exists(os.path.join(root, "work", running, "out", "done.txt")), "... and its output is there")
        status, data = request(port, "GET", "/api/v1/job")
        check(status == 200 and "late" not in [j["runId"] for j in json.loads(data)],
              "the PUT refused during the drain created nothing")
        check(wait_phase(port, queued, ("completed",))["phase"] == "completed",
              "the job left queued runs after the restart")
    finally:
        proc.kill()
        proc.wait(timeout=30)
        shutil.rmtree(root, ignore_errors=True)


def drain_ends_early(engine, how):
    """A second signal (how "signal") or the drain's timeout (how "timeout")
    ends the drain at once: the job goes on, re-adopted at the next start."""
    root = tempfile.mkdtemp(prefix="uws-drain-")
    holder = os.path.join(root, "holder.pid")
    proc, port = start(engine, root, "--drain-timeout", "60" if how == "signal" else "2")
    try:
        job_id = submit(port, {"command": "echo $$ > %s; exec sleep 600" % holder})
        check(wait_phase(port, job_id, ("executing",))["phase"] == "executing", "%s: the job runs" % how)
        t0 = time.time()
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        check(proc.poll() is None, "%s: draining after the first SIGTERM" % how)
        if how == "signal":
            proc.send_signal(signal.SIGINT)
            check(exited_within(proc, 5), "signal: a second signal (SIGINT) exits at once")
        else:
            check(exited_within(proc, 10) and time.time() - t0 >= 1.9,
                  "timeout: the service exits at the drain's timeout (2 s): %.1f s" % (time.time() - t0))
        check(proc.returncode == 0, "%s: exit status 0: %s" % (how, proc.returncode))
        proc, port = start(engine, root)
        check(job_of(port, job_id)["phase"] == "executing",
              "%s: the job still runs and is re-adopted at the next start" % how)
    finally:
        proc.kill()
        proc.wait(timeout=30)
        kill_holder(holder)
        shutil.rmtree(root, ignore_errors=True)


def drain(engine):
    drain_lets_the_job_end(engine)
    drain_ends_early(engine, "signal")
    drain_ends_early(engine, "timeout")
    if failures:
        print("uws_shutdown.py drain: FAILED: %d checks" % len(failures))
        return 1
    return 0


def main():
    engine = sys.argv[1]
    if len(sys.argv) > 2 and sys.argv[2] == "drain":
        return drain(engine)
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    for rnd in range(rounds):
        if not one_round(engine, rnd):
            print("uws_shutdown.py: FAILED")
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
