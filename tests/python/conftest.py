"""Starts the real `stepyard` binary for the AWS-compatibility suite.

The binary comes from STEPYARD_BIN (scripts/test sets it) or target/debug/stepyard.
"""

import os
import queue
import re
import shutil
import subprocess
import tempfile
import threading
import time

import boto3
import pytest
from botocore.config import Config

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BINARY = os.environ.get("STEPYARD_BIN", os.path.join(ROOT, "target", "debug", "stepyard"))
REGION = "us-east-1"


class Server:
    def __init__(self, *extra_args, env=None, data_dir=None):
        self.data_dir = data_dir or tempfile.mkdtemp(prefix="stepyard-py-")
        full_env = dict(os.environ)
        full_env.update(env or {})
        full_env.setdefault("RUST_LOG", "info")
        self.proc = subprocess.Popen(
            [BINARY, "serve", "--listen", "127.0.0.1:0", "--data-dir", self.data_dir, *extra_args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=full_env,
        )
        self.lines = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()
        deadline = time.monotonic() + 30
        self.url = None
        while self.url is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise RuntimeError("stepyard did not print its listening line within 30 s")
            line = self.lines.get(timeout=remaining)
            if line is None:
                raise RuntimeError("stepyard exited before listening")
            match = re.search(r"listening on (http://\S+)", line)
            if match:
                self.url = match.group(1)

    def _pump(self):
        for line in self.proc.stderr:
            self.lines.put(line)
        self.lines.put(None)

    def client(self, service="stepfunctions", key="test", secret="test"):
        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name=REGION,
            aws_access_key_id=key,
            aws_secret_access_key=secret,
            # StartSyncExecution's model adds a `sync-` host prefix; a local endpoint has no such host.
            config=Config(inject_host_prefix=False, retries={"max_attempts": 1}),
        )

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def server():
    srv = Server()
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def sfn(server):
    return server.client()


def wait_for_status(sfn, execution_arn, statuses=("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"), timeout=30):
    """Polls DescribeExecution until the execution reaches one of `statuses` (HTTP gives no channel)."""
    deadline = time.monotonic() + timeout
    while True:
        described = sfn.describe_execution(executionArn=execution_arn)
        if described["status"] in statuses:
            return described
        if time.monotonic() > deadline:
            raise AssertionError(f"execution still {described['status']} after {timeout} s")
        time.sleep(0.02)
