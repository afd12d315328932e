#!/usr/bin/python3
"""Structured log lines of the programs, as a log collector reads them.

    log_json.py OCPS_CSC OCPS_JOB_RUNNER SOURCE_DIR

* ocps-csc --log-format json (and OCPS_LOG_FORMAT=json): every line on
  stderr is one JSON object with time, level, name and message, e.g. the
  CSC's own log record on SIGTERM; without either, the text lines stay.
* ocps-job-runner with OCPS_LOG_FORMAT=json (the CSC passes its format on
  in the environment): its messages in the job's log are JSON lines too.
"""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time


def fail(msg):
    print(f"FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def json_lines(text, what):
    objs = []
    for line in text.splitlines():
        try:
            obj = json.loads(line)
        except ValueError:
            fail(f"{what}: a line that is not JSON: {line!r}\n{text}")
        if not isinstance(obj, dict):
            fail(f"{what}: not an object: {line!r}")
        for key in ("time", "level", "levelno", "name", "message", "pid"):
            if key not in obj:
                fail(f"{what}: no {key} in {line!r}")
        objs.append(obj)
    return objs


def run_csc(csc, src, args, env_format):
    env = dict(os.environ)
    env.update(LSST_SITE="test", DM_CONFIG_OCPS_DIR=os.path.join(src, "deploy/config"))
    env.pop("OCPS_LOG_FORMAT", None)
    if env_format:
        env["OCPS_LOG_FORMAT"] = env_format
    # the in-process transport: the CSC alone, no network needed
    p = subprocess.Popen([csc, "--transport", "inproc", "--duplicate-check", "-1", *args, "1"], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    time.sleep(2)
    p.send_signal(signal.SIGTERM)
    try:
        _, err = p.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        p.kill()
        fail("the CSC did not stop on SIGTERM")
    if p.returncode != 0:
        fail(f"CSC exit status {p.returncode}: {err}")
    return err


def check_csc(csc, src):
    for args, env_format in ((["--log-format", "json"], None), ([], "json")):
        err = run_csc(csc, src, args, env_format)
        objs = json_lines(err, f"ocps-csc {args} OCPS_LOG_FORMAT={env_format}")
        shutdown = [o for o in objs if o["message"] == "Received signal 15; shutting down"]
        if not shutdown:
            fail(f"no shutdown record in {err}")
        o = shutdown[0]
        if o["level"] != "INFO" or o["levelno"] != 20 or o["name"] != "OCPS" or "line" not in o:
            fail(f"shutdown record {o}")
    # the command line wins over the environment, and text is the default
    for args, env_format in ((["--log-format", "text"], "json"), ([], None)):
        err = run_csc(csc, src, args, env_format)
        if "INFO OCPS: Received signal 15; shutting down\n" not in err or '{"time"' in err:
            fail(f"text lines expected with {args} OCPS_LOG_FORMAT={env_format}: {err}")
    bad = subprocess.run([csc, "--log-format", "yaml", "1"], capture_output=True, text=True)
    if bad.returncode != 64:
        fail(f"--log-format yaml: exit status {bad.returncode}")


def check_runner(runner):
    with tempfile.TemporaryDirectory() as d:
        for env_format, expect_json in (("json", True), (None, False)):
            work = os.path.join(d, f"job-{env_format}")
            os.mkdir(work)
            env = dict(os.environ)
            env.pop("OCPS_LOG_FORMAT", None)
            if env_format:
                env["OCPS_LOG_FORMAT"] = env_format
            r = subprocess.run([runner, "--workdir", work, "--status", os.path.join(work, "status.json"),
                                "--log", os.path.join(work, "ocps.log"), "--timeout", "0", "--grace", "1",
                                "--", "/nonexistent/ocps-test-program"],
                               env=env, capture_output=True, text=True, timeout=60)
            if expect_json:
                objs = json_lines(r.stderr, "ocps-job-runner")
                if not objs or not any("/nonexistent/ocps-test-program" in o["message"] for o in objs):
                    fail(f"runner: no JSON record of the failed start: {r.stderr!r}")
                if objs[0]["name"] != "ocps-job-runner" or objs[0]["level"] != "ERROR":
                    fail(f"runner record {objs[0]}")
            elif not r.stderr.startswith("ocps-job-runner: ") or "/nonexistent/ocps-test-program" not in r.stderr:
                fail(f"runner text line expected: {r.stderr!r}")
            with open(os.path.join(work, "status.json"), encoding="utf-8") as f:
                if json.load(f).get("exit_code") != 127:
                    fail("the runner's status file does not report exit code 127")


def main():
    csc, runner, src = sys.argv[1:4]
    check_runner(runner)
    check_csc(csc, src)
    print("OK")


if __name__ == "__main__":
    main()
