"""Fuzz the running service with schemathesis, from its own OpenAPI document (``/docs.json``).

    .venv/bin/python -m benchmarks.fuzz --models models [--max-examples 3000] [--seed N]
    .venv/bin/python -m benchmarks.fuzz --url http://127.0.0.1:3000 [--api-key KEY]

Generates valid and invalid requests (schemathesis' coverage and fuzzing phases, positive and negative
data) and checks every response: no 5xx, a status code, content type, headers and body the document
declares. Prints a table and exits non-zero on any failure. tests/test_fuzz.py runs a bounded version.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.common import ServeProcess  # noqa: E402

CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
)


def run_fuzz(
    url: str,
    max_examples: int,
    seed: int,
    api_key: str | None = None,
    checks: tuple[str, ...] = CHECKS,
    timeout: float = 1800,
) -> tuple[dict, str]:
    """Run schemathesis against ``url``; returns its JSON report and its console output.

    One worker: with two, schemathesis 4.32 generated far fewer cases for some operations.
    """
    st = Path(sys.executable).with_name("schemathesis")
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        cmd = [
            str(st), "run", f"{url}/docs.json", "--checks", ",".join(checks),
            "--phases", "coverage,fuzzing", "--max-examples", str(max_examples), "--workers", "1",
            "--seed", str(seed), "--request-timeout", "30", "--no-color",
            "--report", "json", "--report-json-path", str(report),
        ]  # fmt: skip
        if api_key:
            cmd += ["--header", f"Authorization: Bearer {api_key}"]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        output = proc.stdout + proc.stderr
        if not report.exists():
            raise RuntimeError(f"schemathesis wrote no report (exit {proc.returncode}):\n{output[-4000:]}")
        return json.loads(report.read_text()), output


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", help="a running server (default: start one on --models)")
    parser.add_argument("--models", type=Path, default=ROOT / "models", help="models folder to serve")
    parser.add_argument("--max-examples", type=int, default=3000, help="test cases per operation at most")
    parser.add_argument("--seed", type=int, default=None, help="schemathesis seed (default: random)")
    parser.add_argument("--max-count", type=int, default=16, help="GANSERVE_MAX_COUNT of the started server")
    parser.add_argument("--api-key", default=None, help="bearer token to send (and to start the server with)")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(2**32)
    server = None
    url = args.url
    if url is None:
        env = {"GANSERVE_MAX_COUNT": str(args.max_count)}
        if args.api_key:
            env["GANSERVE_API_KEY"] = args.api_key
        server = ServeProcess(args.models, env).wait_ready()
        url = server.url
    try:
        report, output = run_fuzz(url, args.max_examples, seed, args.api_key)
    finally:
        if server:
            server.stop()
    cases = report["test_cases"]
    print("| server | seed | requests generated | failures | errors | seconds |\n|---|---|---|---|---|---|")
    print(
        f"| {url} | {seed} | {cases['generated']} | {cases['unique_failures']} | {cases['errored']} | "
        f"{report['running_time']:.0f} |"
    )
    if report["exit_code"] != 0:
        print(output[-6000:])
    return report["exit_code"]


if __name__ == "__main__":
    sys.exit(main())
