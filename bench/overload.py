"""Overload on loopback: N keep-alive clients (closed loop, no think time) against a real
``edge-triage serve`` process, optionally with M slow connections held open (1 byte/s) and a
/livez probe; the load generator is this process, never the service's.

    python -m bench.overload --clients 320 --seconds 20 [--slow 500] [--strict] [--target URL]

Measures, per answer, the client-side latency (send of the first byte to the last byte read) and
the service's own ``latency_ms``; reports p50/p99 of both (and the client's p99 over just the
answers that carry a ``latency_ms``, for comparing the two), the share later than deadline + 10 ms
and + 50 ms, status counts, connection errors and the /livez probe's answers. Loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

COMPLAINTS = ["ankle sprain after a fall", "chest pain radiating to the left arm", "cough and fever for three days",
              "headache", "abdominal pain and vomiting", "shortness of breath", "cut on the finger", "back pain"]
LOOPBACK = ("127.0.0.1", "::1", "localhost")


@dataclass
class Tally:
    client_ms: list[float] = field(default_factory=list)
    service_ms: list[float] = field(default_factory=list)
    answered_client_ms: list[float] = field(default_factory=list)  # client side, the answers with a latency_ms
    statuses: dict[int, int] = field(default_factory=dict)
    degraded: dict[str, int] = field(default_factory=dict)
    late_by_kind: dict[str, int] = field(default_factory=dict)  # later than deadline + 10 ms, by degraded reason
    connection_errors: int = 0
    connection_error_kinds: dict[str, int] = field(default_factory=dict)  # "Type: message" -> count
    connection_error_at_s: list[float] = field(default_factory=list)  # s after warm-up (negative: during it)
    livez_ok: int = 0
    livez_failed: int = 0
    livez_ms: list[float] = field(default_factory=list)
    deadline_ms: float = 500.0


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
    return status, await reader.readexactly(length)


async def _connect(host: str, port: int, tls: Any) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection(host, port, ssl=tls, server_hostname=host if tls else None)


class _Exchange(asyncio.Protocol):
    """One keep-alive connection as a bare protocol: a load generator on the same 2 cores as the
    service must cost little per request (streams cost about twice as much), or it measures itself."""

    def __init__(self) -> None:
        self.buffer = b""
        self.waiter: asyncio.Future | None = None
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0 or self.waiter is None or self.waiter.done():
            return
        head = self.buffer[:end]
        match = _LENGTH.search(head)
        length = int(match.group(1)) if match else 0
        if len(self.buffer) < end + 4 + length:
            return
        status = int(head[9:12])
        body, self.buffer = self.buffer[end + 4:end + 4 + length], self.buffer[end + 4 + length:]
        self.waiter.set_result((status, body))

    def connection_lost(self, exc: Exception | None) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("closed"))

    async def exchange(self, request: bytes) -> tuple[int, bytes]:
        self.waiter = asyncio.get_running_loop().create_future()
        assert self.transport is not None
        self.transport.write(request)
        return await self.waiter


_LENGTH = re.compile(rb"(?i)content-length:\s*(\d+)")


def _requests(host: str, path: str, rng: random.Random, count: int = 64) -> list[bytes]:
    out = []
    for _ in range(count):
        body = json.dumps({"complaint": rng.choice(COMPLAINTS), "age": rng.randint(1, 90),
                           "hr": rng.randint(50, 140)}).encode()
        out.append((f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(body)}\r\n\r\n").encode() + body)
    return out


async def _client(host: str, port: int, tls: Any, path: str, stop_at: float, measure_from: float, tally: Tally,
                  rng: random.Random) -> None:
    loop = asyncio.get_running_loop()
    requests = _requests(host, path, rng)
    conn: _Exchange | None = None
    while time.perf_counter() < stop_at:
        try:
            if conn is None:
                _, conn = await loop.create_connection(_Exchange, host, port, ssl=tls,
                                                       server_hostname=host if tls else None)
            began = time.perf_counter()
            status, payload = await conn.exchange(rng.choice(requests))
            elapsed_ms = (time.perf_counter() - began) * 1000.0
        except (OSError, ConnectionError, ValueError) as error:
            if time.perf_counter() < stop_at:
                tally.connection_errors += 1
                kind = f"{type(error).__name__}: {error}"[:80]
                tally.connection_error_kinds[kind] = tally.connection_error_kinds.get(kind, 0) + 1
                tally.connection_error_at_s.append(round(time.perf_counter() - measure_from, 2))
            if conn is not None and conn.transport is not None:
                conn.transport.close()
            conn = None
            await asyncio.sleep(0.05)
            continue
        if began < measure_from:
            continue  # warm-up: the estimate of service times settles
        tally.client_ms.append(elapsed_ms)
        tally.statuses[status] = tally.statuses.get(status, 0) + 1
        if status == 200:
            data = json.loads(payload)
            tally.service_ms.append(float(data["latency_ms"]))
            tally.answered_client_ms.append(elapsed_ms)
            key = str(data.get("degraded"))
            tally.degraded[key] = tally.degraded.get(key, 0) + 1
        else:
            key = f"status {status}"
        if elapsed_ms > tally.deadline_ms + 10:
            tally.late_by_kind[key] = tally.late_by_kind.get(key, 0) + 1
    if conn is not None and conn.transport is not None:
        conn.transport.close()


async def _slow(host: str, port: int, tls: Any, stop_at: float) -> None:
    """A connection that sends one header byte a second and never finishes (the issue's 260)."""
    try:
        _, writer = await _connect(host, port, tls)
        request = f"POST /v1/triage HTTP/1.1\r\nHost: {host}\r\nContent-Length: 10\r\nX-Slow: ".encode()
        for byte in request + b"a" * 10_000:
            if time.perf_counter() >= stop_at:
                break
            writer.write(bytes([byte]))
            await asyncio.sleep(1.0)
        writer.close()
    except OSError:
        pass  # the front closed it (its header timeout): that is the point


async def _livez(host: str, port: int, tls: Any, stop_at: float, measure_from: float, tally: Tally) -> None:
    await asyncio.sleep(max(0.0, measure_from - time.perf_counter()))  # the same window as the answers
    while time.perf_counter() < stop_at:
        began = time.perf_counter()
        try:
            reader, writer = await asyncio.wait_for(_connect(host, port, tls), 2.0)
            writer.write(f"GET /livez HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
            status, _ = await asyncio.wait_for(_read_response(reader), 2.0)
            writer.close()
            ok = status == 200
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError):
            ok = False
        tally.livez_ok += ok
        tally.livez_failed += not ok
        if ok:
            tally.livez_ms.append((time.perf_counter() - began) * 1000.0)
        await asyncio.sleep(0.2)


def machine_speed() -> dict[str, Any]:
    """How fast this (shared) machine runs Python right now: the overload figures scale with it,
    and on a shared VM it moves by a third from one ten-minute stretch to the next."""
    import os

    best = float("inf")
    for _ in range(5):
        began = time.perf_counter()
        total = 0
        for i in range(200_000):
            total += i
        best = min(best, time.perf_counter() - began)
    return {"python_loop_ms": round(best * 1000.0, 2), "load_average": [round(x, 2) for x in os.getloadavg()]}


async def run_load(target: str, *, clients: int, seconds: float, warmup_s: float = 3.0, slow: int = 0,
                   strict: bool = False, deadline_ms: float = 500.0, seed: int = 11) -> dict[str, Any]:
    url = urlsplit(target)
    host, port = url.hostname or "127.0.0.1", url.port or (443 if url.scheme == "https" else 80)
    if host not in LOOPBACK:
        raise SystemExit("bench.overload only loads loopback addresses")
    tls = None
    if url.scheme == "https":
        import ssl

        tls = ssl.create_default_context()
        tls.check_hostname, tls.verify_mode = False, ssl.CERT_NONE  # the front's own self-signed test cert
    path = "/v1/triage" + ("?strict=1" if strict else "")
    import logging

    logging.getLogger("asyncio").setLevel(logging.CRITICAL)  # "SSL connection is closed" as nginx cuts the slow ones
    tally = Tally(deadline_ms=deadline_ms)
    speed = machine_speed()
    now = time.perf_counter()
    stop_at, measure_from = now + warmup_s + seconds, now + warmup_s
    rng = random.Random(seed)
    tasks = [_slow(host, port, tls, stop_at) for _ in range(slow)]
    tasks += [_livez(host, port, tls, stop_at, measure_from, tally)]
    tasks += [_client(host, port, tls, path, stop_at, measure_from, tally, random.Random(rng.random()))
              for _ in range(clients)]
    await asyncio.gather(*tasks)
    answers = len(tally.client_ms)
    return {
        "target": target, "clients": clients, "slow_connections": slow, "strict": strict, "seconds": seconds,
        "deadline_ms": deadline_ms, "answers": answers, "answers_per_s": round(answers / seconds, 1),
        "client_p50_ms": round(_pct(tally.client_ms, 0.5), 1), "client_p99_ms": round(_pct(tally.client_ms, 0.99), 1),
        "client_max_ms": round(max(tally.client_ms, default=float("nan")), 1),
        "service_p99_ms": round(_pct(tally.service_ms, 0.99), 1),
        # the same answers as service_p99_ms (strict mode's 503s carry no latency_ms)
        "client_p99_answered_ms": round(_pct(tally.answered_client_ms, 0.99), 1),
        "late_over_10ms": round(sum(v > deadline_ms + 10 for v in tally.client_ms) / max(1, answers), 4),
        "late_over_50ms": round(sum(v > deadline_ms + 50 for v in tally.client_ms) / max(1, answers), 4),
        "statuses": dict(sorted(tally.statuses.items())), "degraded": tally.degraded,
        "late_by_kind": tally.late_by_kind,
        "connection_errors": tally.connection_errors,
        "connection_error_kinds": tally.connection_error_kinds,
        # when they happened (s after warm-up, negative during it): all at once, or spread?
        "connection_error_at_s": sorted(tally.connection_error_at_s)[:20],
        "livez_ok": tally.livez_ok, "livez_failed": tally.livez_failed,
        "livez_p99_ms": round(_pct(tally.livez_ms, 0.99), 1),
        "machine": speed,  # before the load: the same code is a third slower on a slow stretch
    }


def _run(coroutine: Any) -> Any:
    """Run the load on uvloop where installed: the generator shares the box's two cores with the
    service (and, behind the front, does its TLS), so every microsecond it spends is the service's."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", help="http(s)://127.0.0.1:PORT of a running service or front "
                        "(default: start one with the shipped bundle)")
    parser.add_argument("--model", default="models/triage-minilm-int8")
    parser.add_argument("--clients", type=int, default=320)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--slow", type=int, default=0)
    parser.add_argument("--strict", action="store_true")
    parser.add_argument("--front", action="store_true", help="start the nginx front (edge.service.front) before the service")
    parser.add_argument("--out", help="also write the report here (JSON)")
    args = parser.parse_args(argv)
    if args.target:
        report = _run(run_load(args.target, clients=args.clients, seconds=args.seconds, slow=args.slow,
                                   strict=args.strict))
    else:
        report = measure(args.model, clients=args.clients, seconds=args.seconds, slow=args.slow,
                         strict=args.strict, front=args.front)
    print(json.dumps(report, indent=2))
    if args.out:
        with open(args.out, "w", encoding="utf-8") as handle:
            json.dump(report, handle, indent=2)
    return 0


def measure(model: str, *, clients: int, seconds: float, slow: int = 0, strict: bool = False, front: bool = False,
            deadline_ms: float = 500.0) -> dict[str, Any]:
    """Start the service (a subprocess, default config: 32 HTTP threads) and, with ``front``, a real
    nginx before it (all loopback); run the load; stop both."""
    import contextlib
    import tempfile
    from pathlib import Path

    from bench.server import start

    handle = start(Path(model), extra={"http_threads": 32, "deadline_ms": deadline_ms})
    try:
        with contextlib.ExitStack() as stack:
            target = f"http://127.0.0.1:{handle.port}"
            if front:
                from tests.kit.nginx_front import running_front

                prefix = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-front-")))
                # Every load client is 127.0.0.1 here: the per-address cap is for the ward network.
                settings = stack.enter_context(running_front(prefix, handle.port, per_address_connections=4000))
                target = f"https://{settings.listen}"
            report = _run(run_load(target, clients=clients, seconds=seconds, slow=slow, strict=strict,
                                   deadline_ms=deadline_ms))
        report["front"] = "nginx" if front else None
        if report["connection_errors"]:  # what the service said meanwhile (its log holds no patient data)
            report["service_log_tail"] = handle.log_tail(30).splitlines()
        return report
    finally:
        handle.stop()


if __name__ == "__main__":
    raise SystemExit(main())
