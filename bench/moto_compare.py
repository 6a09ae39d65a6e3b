#!/usr/bin/env python3
"""The same boto3 script against Stepyard and against moto's server, side by side.

    python3 bench/moto_compare.py [--rounds 3] [--latency-runs 200] [--threads 8] [--seconds 10]

It installs `moto[server]` and boto3 from PyPI into its own venv (bench/.venv-moto, not the test
venv) on first use and re-runs itself there; it starts a Stepyard server (target/release/stepyard,
built when missing; or $STEPYARD_BIN) on a temporary data folder and a moto server, both on
127.0.0.1, with moto's Step Functions interpreter switched on (moto's documented setting
`{"stepfunctions": {"execute_state_machine": true}}`, given to a moto server through
`POST /moto-api/config`). Without it moto only records executions and never runs them.

What it measures, with a 10-Pass STANDARD chain, on each server in turn, for several rounds:
- latency: one execution at a time, StartExecution then DescribeExecution in a tight loop until
  the execution is no longer RUNNING; the time from the start call to the first describe that
  sees SUCCEEDED (so it includes the client's request costs, the same on both sides);
- throughput: `--threads` client threads, each looping start + describe-until-done for
  `--seconds`: executions completed per second;
- sync (Stepyard only unless moto implements it): StartSyncExecution of the same chain as EXPRESS.
It prints medians over the rounds and a final `RESULT {json}` line.
"""

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
VENV = os.path.join(HERE, ".venv-moto")
VENV_PYTHON = os.path.join(VENV, "bin", "python")
REQUIREMENTS = ["moto[server]>=5.1,<6", "boto3>=1.40,<2"]


def ensure_venv():
    """Re-runs this script inside bench/.venv-moto, creating it first if needed."""
    if os.path.realpath(sys.prefix) == os.path.realpath(VENV):
        return
    marker = os.path.join(VENV, ".requirements")
    wanted = "\n".join(REQUIREMENTS)
    if not os.path.exists(VENV_PYTHON):
        print(f"moto_compare: creating {VENV}", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", VENV], check=True)
    if not os.path.exists(marker) or open(marker).read() != wanted:
        print(f"moto_compare: installing {' '.join(REQUIREMENTS)}", file=sys.stderr)
        subprocess.run(
            [VENV_PYTHON, "-m", "pip", "install", "-q", "--disable-pip-version-check", *REQUIREMENTS], check=True
        )
        with open(marker, "w") as out:
            out.write(wanted)
    os.execv(VENV_PYTHON, [VENV_PYTHON, os.path.abspath(__file__), *sys.argv[1:]])


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(url, timeout=60):
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except urllib.error.HTTPError:
            return  # any HTTP answer: it is up
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not come up within {timeout} s")
            time.sleep(0.1)


class Stepyard:
    name = "stepyard"

    def __init__(self):
        binary = os.environ.get("STEPYARD_BIN", os.path.join(ROOT, "target", "release", "stepyard"))
        if not os.path.exists(binary):
            subprocess.run(["cargo", "build", "--release", "-p", "stepyard-api", "--bin", "stepyard"], cwd=ROOT, check=True)
        self.data_dir = tempfile.mkdtemp(prefix="stepyard-moto-compare-")
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        env = dict(os.environ, RUST_LOG=os.environ.get("RUST_LOG", "warn"))
        self.proc = subprocess.Popen(
            [binary, "serve", "--listen", f"127.0.0.1:{port}", "--data-dir", self.data_dir],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        wait_http(f"{self.url}/healthz")

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.data_dir, ignore_errors=True)


class Moto:
    name = "moto"

    def __init__(self):
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.proc = subprocess.Popen(
            [os.path.join(VENV, "bin", "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_http(f"{self.url}/moto-api/")
        request = urllib.request.Request(
            f"{self.url}/moto-api/config",
            data=json.dumps({"stepfunctions": {"execute_state_machine": True}}).encode(),
            method="POST",
        )
        # (GET /moto-api/config does not echo the stepfunctions part: `check_interpreted` checks it.)
        urllib.request.urlopen(request, timeout=10).read()

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def client(url):
    import boto3
    from botocore.config import Config

    return boto3.client(
        "stepfunctions",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(inject_host_prefix=False, retries={"max_attempts": 1}, max_pool_connections=64),
    )


def ten_pass(kind):
    states = {}
    for i in range(10):
        state = {"Type": "Pass", "Result": {"step": i}, "ResultPath": f"$.p{i}"}
        if i < 9:
            state["Next"] = f"P{i + 1}"
        else:
            state["End"] = True
        states[f"P{i}"] = state
    return json.dumps({"Comment": f"moto_compare {kind}", "StartAt": "P0", "States": states})


COUNTER = [0]


def create(sfn, kind):
    COUNTER[0] += 1
    return sfn.create_state_machine(
        name=f"cmp-{kind.lower()}-{os.getpid()}-{COUNTER[0]}-{int(time.time() * 1000)}",
        definition=ten_pass(kind),
        roleArn="arn:aws:iam::123456789012:role/bench",
        type=kind,
    )["stateMachineArn"]


def run_one(sfn, arn, timeout=60):
    """Start, then describe until done; returns (seconds, status)."""
    started = time.perf_counter()
    # An explicit name: moto's interpreter names every unnamed execution `None`.
    execution = sfn.start_execution(stateMachineArn=arn, name=uuid.uuid4().hex, input='{"n": 1}')["executionArn"]
    deadline = started + timeout
    while True:
        status = sfn.describe_execution(executionArn=execution)["status"]
        if status != "RUNNING":
            return time.perf_counter() - started, status
        if time.perf_counter() > deadline:
            return time.perf_counter() - started, "STILL_RUNNING"


def check_interpreted(server):
    """One execution whose output must hold what the 10 Pass states add: proof that the server runs
    the definition (moto without its interpreter answers canned data)."""
    sfn = client(server.url)
    arn = create(sfn, "STANDARD")
    execution = sfn.start_execution(stateMachineArn=arn, name=uuid.uuid4().hex, input='{"n": 1}')["executionArn"]
    deadline = time.monotonic() + 60
    while True:
        described = sfn.describe_execution(executionArn=execution)
        if described["status"] != "RUNNING" or time.monotonic() > deadline:
            break
        time.sleep(0.01)
    output = json.loads(described.get("output") or "null")
    if described["status"] != "SUCCEEDED" or not isinstance(output, dict) or output.get("p9") != {"step": 9}:
        raise RuntimeError(f"{server.name} did not run the 10-Pass chain: {described}")


def latency(server, runs):
    sfn = client(server.url)
    arn = create(sfn, "STANDARD")
    run_one(sfn, arn)  # warm-up
    samples, bad = [], 0
    for _ in range(runs):
        seconds, status = run_one(sfn, arn)
        if status == "SUCCEEDED":
            samples.append(seconds * 1000)
        else:
            bad += 1
    samples.sort()
    return {
        "p50_ms": statistics.median(samples) if samples else None,
        "p90_ms": samples[int(0.9 * (len(samples) - 1))] if samples else None,
        "not_succeeded": bad,
    }


def throughput(server, threads, seconds):
    arn = create(client(server.url), "STANDARD")
    done = [0] * threads
    bad = [0] * threads
    stop_at = time.perf_counter() + seconds

    def worker(i):
        sfn = client(server.url)
        while time.perf_counter() < stop_at:
            try:
                _, status = run_one(sfn, arn)
            except Exception:  # noqa: BLE001 - counted, reported
                status = "ERROR"
            if status == "SUCCEEDED":
                done[i] += 1
            else:
                bad[i] += 1

    started = time.perf_counter()
    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    elapsed = time.perf_counter() - started
    return {"completed_per_s": sum(done) / elapsed, "completed": sum(done), "not_succeeded": sum(bad)}


def sync_latency(server, runs):
    sfn = client(server.url)
    try:
        arn = create(sfn, "EXPRESS")
        sfn.start_sync_execution(stateMachineArn=arn, input="{}")
    except Exception as err:  # noqa: BLE001 - moto may not implement it
        return {"unsupported": " ".join(f"{type(err).__name__}: {err}".split())[:110]}
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        answer = sfn.start_sync_execution(stateMachineArn=arn, input='{"n": 1}')
        if answer["status"] == "SUCCEEDED":
            samples.append((time.perf_counter() - started) * 1000)
    return {"p50_ms": statistics.median(samples) if samples else None, "succeeded": len(samples)}


def median_of(rounds, *keys):
    values = []
    for result in rounds:
        value = result
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
        if isinstance(value, (int, float)):
            values.append(value)
    return statistics.median(values) if values else None


def main():
    ensure_venv()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--latency-runs", type=int, default=200)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()

    import boto3
    import moto

    print(f"boto3 {boto3.__version__}, moto {moto.__version__}, python {sys.version.split()[0]}")
    servers = []
    try:
        servers.append(Stepyard())
        servers.append(Moto())
        for server in servers:
            check_interpreted(server)
        results = {server.name: [] for server in servers}
        for round_no in range(1, args.rounds + 1):
            for server in servers:  # alternate, so that background load hits both alike
                result = {
                    "latency": latency(server, args.latency_runs),
                    "throughput": throughput(server, args.threads, args.seconds),
                    "sync": sync_latency(server, min(args.latency_runs, 200)),
                }
                results[server.name].append(result)
                print(f"round {round_no} {server.name}: {json.dumps(result)}", flush=True)
    finally:
        for server in servers:
            server.stop()

    summary = {}
    print()
    print(f"medians over {args.rounds} rounds (10-Pass chain, boto3, 127.0.0.1):")
    print(f"{'server':10} {'latency p50':>12} {'latency p90':>12} {'completed/s':>12} {'sync p50':>10}")
    for name, rounds in results.items():
        row = {
            "latency_p50_ms": median_of(rounds, "latency", "p50_ms"),
            "latency_p90_ms": median_of(rounds, "latency", "p90_ms"),
            "completed_per_s": median_of(rounds, "throughput", "completed_per_s"),
            "sync_p50_ms": median_of(rounds, "sync", "p50_ms"),
            "sync_unsupported": rounds[0]["sync"].get("unsupported"),
            "not_succeeded": sum(
                r["latency"]["not_succeeded"] + r["throughput"]["not_succeeded"] for r in rounds
            ),
        }
        summary[name] = row

        def fmt(value, unit):
            return f"{value:.1f}{unit}" if isinstance(value, (int, float)) else "n/a"

        print(
            f"{name:10} {fmt(row['latency_p50_ms'], ' ms'):>12} {fmt(row['latency_p90_ms'], ' ms'):>12}"
            f" {fmt(row['completed_per_s'], ''):>12} {fmt(row['sync_p50_ms'], ' ms'):>10}"
            + (f"  (sync: {row['sync_unsupported']})" if row["sync_unsupported"] else "")
            + (f"  ({row['not_succeeded']} not SUCCEEDED)" if row["not_succeeded"] else "")
        )
    print("RESULT " + json.dumps({"args": vars(args), "summary": summary, "rounds": results}))


if __name__ == "__main__":
    main()
