"""Load on ``asr serve``: parallel clients uploading real audio for a while, over loopback.

    python benchmarks/serve_load.py exp/an4/model.pt --clients 20 --seconds 60

starts the service, keeps ``--clients`` requests in flight for ``--seconds``
(each client uploads the next file of AN4's test set as soon as its last
answer came), and prints requests per second, latency percentiles, errors,
and the service's resident memory after warm-up and at the end.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

from asr.inputs import expand_inputs
from asr.serve import post_audio


def resident_mb(pid: int) -> float:
    """Current resident memory of a process (Linux /proc), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def wait_until_up(url: str, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"error: asr serve exited with status {process.returncode}")
        try:
            with urllib.request.urlopen(url + "/health", timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    sys.exit("error: asr serve did not come up")


def run_clients(
    url: str, uploads: list[tuple[str, bytes]], clients: int, seconds: float, pid: int
) -> tuple[list[float], list[str], list[float], float]:
    """``clients`` threads uploading back to back for ``seconds``: latencies, failures,
    the service's memory every 10 s (growth shows as a rising series), and the time taken.
    """
    latencies: list[float] = []
    failures: list[str] = []
    samples: list[float] = []
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def client(offset: int) -> None:
        n = offset
        while time.monotonic() < stop:
            name, data = uploads[n % len(uploads)]
            started = time.perf_counter()
            try:
                status, answer = post_audio(url + "/transcribe", name, data)
            except OSError as error:
                status, answer = 0, {"detail": str(error)}
            with lock:
                latencies.append(time.perf_counter() - started)
                if status != 200:
                    failures.append(f"{name}: {status} {answer.get('detail')}")
            n += clients

    def sample_memory() -> None:
        while time.monotonic() < stop:
            samples.append(resident_mb(pid))
            time.sleep(10)

    started = time.perf_counter()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    threads.append(threading.Thread(target=sample_memory))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, failures, samples, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--audio", default="data/an4/wav/an4test_clstk", help="files to upload: folder, pattern or manifest")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=60)
    args, extra = parser.parse_known_args()  # anything else goes to asr serve (--lm ...)
    files, _ = expand_inputs([args.audio])
    uploads = [(Path(f).name, Path(f).read_bytes()) for f in files]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    process = subprocess.Popen([sys.executable, "-m", "asr", "serve", args.model, "--port", str(port), *extra])
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(url, process)
        run_clients(url, uploads, args.clients, 10.0, process.pid)  # warm-up: the batches reach their full size
        memory_start = resident_mb(process.pid)
        latencies, failures, samples, elapsed = run_clients(url, uploads, args.clients, args.seconds, process.pid)
        memory_end = resident_mb(process.pid)
    finally:
        process.terminate()
        process.wait(timeout=30)
    quantiles = statistics.quantiles(latencies, n=100)
    print(
        f"{args.clients} clients, {elapsed:.0f} s: {len(latencies)} requests, {len(latencies) / elapsed:.1f} requests/s,"
        f" {len(failures)} errors; latency p50 {quantiles[49] * 1000:.0f} ms, p90 {quantiles[89] * 1000:.0f} ms,"
        f" p99 {quantiles[98] * 1000:.0f} ms; service memory {memory_start:.0f} MB after 10 s of warm-up, {memory_end:.0f} MB at the end"
    )
    print("service memory every 10 s (MB): " + " ".join(f"{m:.0f}" for m in samples))
    for failure in failures[:5]:
        print(f"  {failure}")


if __name__ == "__main__":
    main()
