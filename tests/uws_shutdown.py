"""ocps-engine stopped (SIGTERM) under a stream of PUT /job: every job it
stored was answered 200, and every 200 is a stored job.

    uws_shutdown.py OCPS_ENGINE [ROUNDS]

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


def start(engine, root):
    port_file = os.path.join(root, "port")
    if os.path.exists(port_file):
        os.unlink(port_file)
    log = open(os.path.join(root, "engine.log"), "a")
    proc = subprocess.Popen(
        [engine, "--listen", "127.0.0.1:0", "--state-dir", root + "/state", "--work-root", root + "/work",
         "--port-file", port_file, "--max-concurrent", "1", "--max-waiting", "0"],
        stderr=log)
    log.close()
    end = time.time() + 10
    while time.time() < end:
        if os.path.exists(port_file) and open(port_file).read().strip():
            return proc, int(open(port_file).read())
        time.sleep(0.05)
    proc.kill()
    sys.exit("uws_shutdown.py: ocps-engine did not start")


def request(port, method, path, body=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {"Content-Type": "application/json"} if body is not None else {}
    conn.request(method, path, json.dumps(body) if body is not None else None, headers)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
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


def main():
    engine = sys.argv[1]
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    for rnd in range(rounds):
        if not one_round(engine, rnd):
            print("uws_shutdown.py: FAILED")
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
