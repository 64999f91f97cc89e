"""Latency per connection of a closed loop of keep-alive clients (docs/saturation.md, c=8).

wrk reports one latency distribution for all its connections; this shows whether the
slow requests are spread over the connections or kept by a few. Eight asyncio
connections on uvloop each send the bare stack's ``client_credentials`` request
(``../shared/bench/wrk/client_credentials.lua``'s defaults) and wait for the answer
before the next, like wrk's. Loopback only.

Run: ``.venv/bin/python tests/bench/per_connection.py PORT [SECONDS] [PATH]`` against a
server started by hand (the bare stack: ``cd ../shared/bench/bare_stack && uvicorn
app:app --port PORT --loop uvloop --http httptools --no-access-log``).
"""

from __future__ import annotations

import asyncio
import base64
import statistics
import sys
import time

import uvloop

CONNECTIONS = 8


def request(path: str) -> bytes:
    auth = base64.b64encode(b"bench-client:bench-secret").decode()
    body = b"grant_type=client_credentials&scope=read%3Athings"
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Basic {auth}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def client(
    port: int, raw: bytes, index: int, stop: float, log: list[tuple[int, float]]
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    while time.perf_counter() < stop:
        began = time.perf_counter()
        writer.write(raw)
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length")
        )
        await reader.readexactly(length)
        log.append((index, time.perf_counter() - began))
    writer.close()


async def run(port: int, seconds: float, path: str) -> list[tuple[int, float]]:
    log: list[tuple[int, float]] = []
    stop = time.perf_counter() + seconds
    raw = request(path)
    await asyncio.gather(*(client(port, raw, i, stop, log) for i in range(CONNECTIONS)))
    return log


def main() -> None:
    port = int(sys.argv[1])
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 8.0
    path = sys.argv[3] if len(sys.argv) > 3 else "/token"
    uvloop.run(run(port, 2.0, path))  # warm-up
    log = uvloop.run(run(port, seconds, path))
    latencies = sorted(latency for _, latency in log)
    p50, p99 = latencies[len(latencies) // 2], latencies[int(len(latencies) * 0.99)]
    print(
        f"{len(log)} requests, p50 {p50 * 1e3:.2f} ms, p99 {p99 * 1e3:.2f} ms, "
        f"p99/p50 {p99 / p50:.2f}"
    )
    for index in range(CONNECTIONS):
        mine = [latency for i, latency in log if i == index]
        slow = sum(1 for latency in mine if latency > 1.6 * p50)
        print(
            f"connection {index}: {len(mine):6} requests, {slow / len(mine):6.1%} over "
            f"1.6 x p50, mean {statistics.mean(mine) * 1e3:.2f} ms"
        )


if __name__ == "__main__":
    main()
