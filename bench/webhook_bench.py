"""Benchmark the webhook listener (h11 on asyncio) in front of a fake runtime.

    python bench/webhook_bench.py [--requests N]

Prints requests/s on loopback for one keep-alive client and for 8 clients opening a
connection per request, then the latency of legitimate POSTs (new connection each)
while a 128-socket slowloris (one header line every 3 s each) runs against a listener
capped at 64 connections. Figures only; nothing here asserts timings."""

from __future__ import annotations

import argparse
import http.client
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "e2e"))

from webhook_harness import FakeRuntime, Slowloris, manifest, post  # noqa: E402

from pdk.host.sources import HttpIngressServer  # noqa: E402


def keep_alive_rate(port: int, n: int) -> float:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    started = time.perf_counter()
    for i in range(n):
        conn.request("POST", "/inbox", body=f"m{i}", headers={"Content-Type": "text/plain"})
        resp = conn.getresponse()
        resp.read()
        assert resp.status == 202
    conn.close()
    return n / (time.perf_counter() - started)


def parallel_rate(port: int, n: int, clients: int) -> float:
    def worker() -> None:
        for i in range(n // clients):
            assert post(port, "/inbox", f"p{i}".encode())[0] == 202

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return (n // clients * clients) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    rt = FakeRuntime(manifest("counter-service"))
    with HttpIngressServer([rt]) as server:
        ka = keep_alive_rate(server.port, args.requests)
        par = parallel_rate(server.port, args.requests, 8)
    rt = FakeRuntime(manifest("counter-service"))
    with HttpIngressServer([rt], max_connections=64) as server:
        with Slowloris(server.port, 128, 3.0) as attack:
            attack.wait_rounds(1)
            latencies, codes = [], {}
            start_round = attack.rounds
            while attack.rounds < start_round + 3:
                t0 = time.perf_counter()
                status = post(server.port, "/inbox", b"legit")[0]
                latencies.append(time.perf_counter() - t0)
                codes[status] = codes.get(status, 0) + 1
                time.sleep(0.02)
        shed = server.listener_status()["shed"]
    lat = sorted(latencies)
    print(f"one keep-alive client:          {ka:8.0f} requests/s")
    print(f"8 clients, connection each:     {par:8.0f} requests/s")
    print(
        f"during a 128-socket slowloris:  {len(lat)} legitimate POSTs, status codes {codes}, "
        f"p50 {statistics.median(lat) * 1000:.1f} ms, p99 {lat[max(0, int(len(lat) * 0.99) - 1)] * 1000:.1f} ms, "
        f"max {lat[-1] * 1000:.1f} ms; {attack.connects} attacker connections, {shed} shed"
    )


if __name__ == "__main__":
    main()
