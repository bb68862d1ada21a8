#!/usr/bin/env python3
"""An HTTP reverse proxy in front of a real S3 server that injects faults.

Standard library only (Python 3.11, asyncio streams). Listens on 127.0.0.1 and forwards
every request, byte for byte, to the upstream server: the request line and the headers
(Host included) are passed through verbatim, so SigV4 signatures made for the proxy's
host:port verify upstream too (S3 servers check the signature against the Host header
they receive, not against their own address).

    faultproxy.py --upstream http://127.0.0.1:PORT [--port 0] [--listen-port-file F]
                  [--seed N] [--rate MODE=RATE[@METHODS]]... [--methods GET,PUT,...]
                  [--stall-seconds S] [--fail-after N] [--stats-file F] [--log F]

Fault modes (each request gets at most one; rates add up, in this order):

    500       answer 500 InternalError (S3 error XML) without forwarding
    503       answer 503 SlowDown (S3 error XML) without forwarding
    reset     close the client connection with a TCP RST: half the time mid-request
              (before the upstream sees it), half the time mid-response (after the
              upstream processed it, with part of the response sent)
    truncate  forward, send the real status and headers (real Content-Length) but only
              part of the body, then close; only for responses with a body (else the
              request passes and nothing is counted)
    stall     forward, then hold the response for --stall-seconds before sending
              anything (the connection is dropped early when the client gives up)

Method classes: GET (an object), LIST (a GET without a key: listings, bucket location),
PUT, HEAD, DELETE, POST. `--methods` limits every mode to some classes; a mode can
carry its own, e.g. `--rate truncate=0.1@GET`.

Determinism: the decision for a request is a hash of the seed, the method, the target,
the Range header and how many times that same request was seen before. The same seed
and the same requests give the same faults, whatever the interleaving of connections;
a retry of a request draws again.

`--fail-after N` passes the first N requests and answers 503 SlowDown to every later
one (to test that a client gives up cleanly). `--fail-match REGEX` answers 503 SlowDown
to every request whose "METHOD TARGET" (target as sent: path and query) matches, e.g.
`--fail-match '^PUT .*/index/'` to make every index upload fail.

Statistics (JSON: requests, forwarded, faults per mode and per method class) are
written to --stats-file on SIGTERM/SIGINT and exit, and on `GET /__stats` (which also
returns them as the response body, then closes the connection). The port is printed on stdout (one line, the
number) and written to --listen-port-file once the proxy accepts connections.
"""

import argparse
import asyncio
import hashlib
import json
import os
import re
import signal
import socket
import struct
import sys
import time
import urllib.parse

MODES = ("500", "503", "reset", "truncate", "stall")
CLASSES = ("GET", "LIST", "PUT", "HEAD", "DELETE", "POST")
COPY_CHUNK = 256 * 1024
HEAD_LIMIT = 1 << 20

ERROR_BODIES = {
    "500": (500, "Internal Server Error", "InternalError",
            "We encountered an internal error. Please try again."),
    "503": (503, "Slow Down", "SlowDown", "Please reduce your request rate."),
}


class Closed(Exception):
    """The peer closed the connection, or the bytes make no HTTP sense."""


# ------------------------------------------------------------------ HTTP framing

def parse_head(raw):
    """(first line, [(name, value)]) of a request or response head."""
    text = raw.decode("latin-1")
    lines = text.split("\r\n")
    first = lines[0]
    headers = []
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise Closed(f"bad header line {line!r}")
        headers.append((name.strip(), value.strip()))
    return first, headers


def header(headers, name):
    name = name.lower()
    for k, v in headers:
        if k.lower() == name:
            return v
    return None


async def read_head(reader):
    """One head (up to and including the blank line), or Closed at EOF."""
    try:
        raw = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as e:
        raise Closed("eof" if not e.partial else "eof inside a head") from None
    except asyncio.LimitOverrunError:
        raise Closed("head too long") from None
    return raw


def body_kind(headers, no_body=False):
    """("none"|"length"|"chunked"|"close", length)."""
    if no_body:
        return "none", 0
    te = header(headers, "transfer-encoding")
    if te and "chunked" in te.lower():
        return "chunked", 0
    cl = header(headers, "content-length")
    if cl is not None:
        try:
            return "length", int(cl)
        except ValueError:
            raise Closed(f"bad content-length {cl!r}") from None
    return "close", 0


async def body_pieces(reader, kind, length):
    """Yields the raw bytes of a body as they arrive (chunk framing kept as is)."""
    if kind == "none":
        return
    if kind == "length":
        left = length
        while left > 0:
            data = await reader.read(min(left, COPY_CHUNK))
            if not data:
                raise Closed("eof inside a body")
            left -= len(data)
            yield data
        return
    if kind == "close":
        while True:
            data = await reader.read(COPY_CHUNK)
            if not data:
                return
            yield data
    # chunked
    while True:
        try:
            line = await reader.readuntil(b"\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            raise Closed("eof inside a chunked body") from None
        yield line
        size = int(line.split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            # trailers, then the blank line
            while True:
                try:
                    t = await reader.readuntil(b"\r\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                    raise Closed("eof inside trailers") from None
                yield t
                if t == b"\r\n":
                    return
        left = size + 2
        while left > 0:
            data = await reader.read(min(left, COPY_CHUNK))
            if not data:
                raise Closed("eof inside a chunk")
            left -= len(data)
            yield data


# ------------------------------------------------------------------ the proxy

class Proxy:
    def __init__(self, args):
        self.args = args
        u = urllib.parse.urlsplit(args.upstream)
        if u.scheme != "http" or not u.hostname:
            sys.exit("faultproxy.py: --upstream must be http://HOST:PORT")
        self.up_host = u.hostname
        self.up_port = u.port or 80
        self.rates = []  # (mode, rate, classes)
        default_classes = parse_classes(args.methods)
        for spec in args.rate:
            mode, sep, rest = spec.partition("=")
            if not sep or mode not in MODES:
                sys.exit(f"faultproxy.py: bad --rate {spec!r} (MODE=RATE[@METHODS], "
                         f"MODE one of {', '.join(MODES)})")
            rate_s, _, methods = rest.partition("@")
            rate = float(rate_s)
            if not 0.0 <= rate <= 1.0:
                sys.exit(f"faultproxy.py: rate out of 0..1 in {spec!r}")
            classes = parse_classes(methods) if methods else default_classes
            self.rates.append((mode, rate, classes))
        self.fail_match = [re.compile(p) for p in args.fail_match]
        self.seen = {}
        self.log_file = open(args.log, "a", buffering=1) if args.log else None
        self.stats = {
            "requests": 0,
            "forwarded": 0,
            "faults": {m: 0 for m in MODES},
            "fail_after_503": 0,
            "fail_match_503": 0,
            "faults_by_class": {},
            "requests_by_class": {},
            "client_gave_up_during_stall": 0,
        }

    # ---------------------------------------------------------- decisions

    def classify(self, method, target):
        path = urllib.parse.urlsplit(target).path
        parts = path.lstrip("/").split("/", 1)
        has_key = len(parts) == 2 and parts[1] != ""
        if method == "GET":
            return "GET" if has_key else "LIST"
        return method if method in CLASSES else "POST"

    def draw(self, method, target, rng_header):
        """A number in [0, 1) fixed by the seed and the request's identity."""
        ident = f"{method} {target} {rng_header or ''}"
        n = self.seen.get(ident, 0)
        self.seen[ident] = n + 1
        h = hashlib.blake2b(f"{self.args.seed}|{ident}|{n}".encode(), digest_size=8)
        return int.from_bytes(h.digest(), "big") / 2.0**64, h.digest()

    def decide(self, cls, method, target, rng_header):
        if any(p.search(f"{method} {target}") for p in self.fail_match):
            return "fail_match", b"\0" * 8
        if self.args.fail_after is not None and self.stats["requests"] > self.args.fail_after:
            return "fail_after", b"\0" * 8
        x, digest = self.draw(method, target, rng_header)
        acc = 0.0
        for mode, rate, classes in self.rates:
            if cls not in classes:
                continue
            acc += rate
            if x < acc:
                return mode, digest
        return None, digest

    def count(self, mode, cls):
        if mode in ("fail_after", "fail_match"):
            self.stats[mode + "_503"] += 1
        else:
            self.stats["faults"][mode] += 1
        by = self.stats["faults_by_class"].setdefault(mode, {})
        by[cls] = by.get(cls, 0) + 1

    def log(self, msg):
        if self.log_file:
            self.log_file.write(f"{time.time():.3f} {msg}\n")

    def stats_json(self):
        return json.dumps(self.stats, indent=1, sort_keys=True) + "\n"

    def write_stats(self):
        if not self.args.stats_file:
            return
        tmp = self.args.stats_file + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(self.stats_json())
        os.replace(tmp, self.args.stats_file)

    # ---------------------------------------------------------- connections

    async def handle(self, creader, cwriter):
        up = None  # (reader, writer) to the upstream, kept alive across requests
        try:
            while True:
                try:
                    raw = await read_head(creader)
                except Closed:
                    return
                first, headers = parse_head(raw)
                try:
                    method, target, _version = first.split(" ", 2)
                except ValueError:
                    return
                if method == "GET" and target.split("?", 1)[0] == "/__stats":
                    await self.answer_stats(cwriter)
                    return
                keep, up = await self.one_request(creader, cwriter, up, raw, method, target,
                                                  headers)
                if not keep:
                    return
        except (Closed, ConnectionError, OSError, ValueError) as e:
            self.log(f"connection ended: {e!r}")
        finally:
            if up:
                up[1].close()
            if not cwriter.is_closing():
                cwriter.close()

    async def answer_stats(self, cwriter):
        self.write_stats()
        body = self.stats_json().encode()
        cwriter.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                      b"Connection: close\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        await cwriter.drain()

    async def one_request(self, creader, cwriter, up, raw, method, target, headers):
        """Handles one request; returns (keep the client connection, upstream)."""
        self.stats["requests"] += 1
        cls = self.classify(method, target)
        byc = self.stats["requests_by_class"]
        byc[cls] = byc.get(cls, 0) + 1
        req_kind, req_len = body_kind(headers)
        if req_kind == "close":
            req_kind = "none"  # a request without length or chunking has no body
        expect = (header(headers, "expect") or "").lower() == "100-continue"
        mode, digest = self.decide(cls, method, target, header(headers, "range"))
        self.log(f"{method} {target} [{cls}] -> {mode or 'pass'}")

        # Faults decided before the upstream sees anything.
        if mode in ("500", "503", "fail_after", "fail_match"):
            self.count(mode, cls)
            if not expect:
                async for _ in body_pieces(creader, req_kind, req_len):
                    pass
            await self.send_error("503" if mode.startswith("fail_") else mode, cwriter, target,
                                  close=expect)
            return not expect, up
        if mode == "reset" and digest[0] & 1 == 0:
            # mid-request: read part of the body (if any), then RST.
            self.count(mode, cls)
            if req_kind == "length" and req_len > 0 and not expect:
                want = max(1, req_len // 2)
                got = 0
                while got < want:
                    data = await creader.read(min(want - got, COPY_CHUNK))
                    if not data:
                        break
                    got += len(data)
            self.log("  reset mid-request")
            abort(cwriter)
            return False, up

        # Forward the request.
        if up is not None and up[0].at_eof():
            up[1].close()  # the upstream closed the idle connection
            up = None
        if up is None:
            up = await asyncio.open_connection(self.up_host, self.up_port, limit=HEAD_LIMIT)
        ureader, uwriter = up
        self.stats["forwarded"] += 1
        uwriter.write(raw)
        # The body goes up while the answer is awaited: a client that waits for
        # "100 Continue" sends its body only once that was relayed.
        # The upstream may also answer before it read the whole body (an early 403), or
        # stop reading it: then the answer is relayed and both connections are closed.
        pump = asyncio.ensure_future(self.pump(creader, uwriter, req_kind, req_len))
        answer = asyncio.ensure_future(self.final_head(ureader, cwriter))
        try:
            pending = {pump, answer}
            while not answer.done():
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                if pump in done:
                    pump.result()  # the client went away mid-body: give up
            rhead, status, rheaders = answer.result()
            body_sent = pump.done() and pump.result()
        finally:
            for t in (pump, answer):
                if not t.done():
                    t.cancel()
        no_body = method == "HEAD" or status in (204, 304)
        rkind, rlen = body_kind(rheaders, no_body)
        up_close = ((header(rheaders, "connection") or "").lower() == "close"
                    or rkind == "close" or not body_sent)

        if mode == "stall":
            self.count(mode, cls)
            body = b"".join([p async for p in body_pieces(ureader, rkind, rlen)])
            gave_up = await self.wait_or_client_gone(creader, self.args.stall_seconds)
            if gave_up:
                self.stats["client_gave_up_during_stall"] += 1
                self.log("  client gave up during the stall")
                uwriter.close()
                return False, None
            cwriter.write(rhead + body)
            await cwriter.drain()
            if up_close:
                uwriter.close()
                return False, None
            return True, up

        if mode == "reset":
            # mid-response: the upstream did the work; the client gets part of the answer.
            self.count(mode, cls)
            body = b"".join([p async for p in body_pieces(ureader, rkind, rlen)])
            whole = rhead + body
            cut = int.from_bytes(digest[1:3], "big") % max(1, len(whole))
            cwriter.write(whole[:cut])
            await cwriter.drain()
            self.log(f"  reset mid-response after {cut} of {len(whole)} bytes")
            abort(cwriter)
            uwriter.close()
            return False, None

        if mode == "truncate" and rkind in ("length", "chunked") and (rlen > 0 or rkind == "chunked"):
            self.count(mode, cls)
            body = b"".join([p async for p in body_pieces(ureader, rkind, rlen)])
            cut = int.from_bytes(digest[1:3], "big") % max(1, len(body))
            cwriter.write(rhead + body[:cut])
            await cwriter.drain()
            self.log(f"  truncated body to {cut} of {len(body)} bytes")
            cwriter.close()
            uwriter.close()
            return False, None

        # Pass-through, streamed.
        cwriter.write(rhead)
        async for piece in body_pieces(ureader, rkind, rlen):
            cwriter.write(piece)
            await cwriter.drain()
        await cwriter.drain()
        if up_close:
            uwriter.close()
            return False, None
        return True, up

    async def final_head(self, ureader, cwriter):
        """Relays interim (1xx) answers; returns the final (head, status, headers)."""
        while True:
            try:
                rhead = await read_head(ureader)
            except Closed:
                raise Closed("upstream closed before answering") from None
            status_line, rheaders = parse_head(rhead)
            status = int(status_line.split(" ", 2)[1])
            if 100 <= status < 200:
                cwriter.write(rhead)
                await cwriter.drain()
                continue
            return rhead, status, rheaders

    async def pump(self, creader, uwriter, kind, length):
        """Copies the request body up. True when all of it went; False when the upstream
        stopped reading; raises when the client did not send it all."""
        async for piece in body_pieces(creader, kind, length):
            try:
                uwriter.write(piece)
                await uwriter.drain()
            except (ConnectionError, OSError):
                return False
        return True

    async def wait_or_client_gone(self, creader, seconds):
        """Sleeps; True as soon as the client closes the connection."""
        try:
            data = await asyncio.wait_for(creader.read(1), timeout=seconds)
        except asyncio.TimeoutError:
            return False
        except (ConnectionError, OSError):
            return True
        # EOF: the client gave up. Data: a client that sends more before its answer is
        # not one we can serve either.
        del data
        return True

    async def send_error(self, mode, cwriter, target, close):
        status, reason, code, message = ERROR_BODIES[mode]
        resource = urllib.parse.urlsplit(target).path
        body = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                f"<Error><Code>{code}</Code><Message>{message}</Message>"
                f"<Resource>{resource}</Resource><RequestId>faultproxy</RequestId></Error>"
                ).encode()
        head = (f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/xml\r\n"
                f"Content-Length: {len(body)}\r\nx-amz-request-id: faultproxy\r\n")
        if close:
            head += "Connection: close\r\n"
        cwriter.write(head.encode() + b"\r\n" + body)
        await cwriter.drain()
        if close:
            cwriter.close()


def abort(writer):
    """Closes with a TCP RST (SO_LINGER 0) instead of a FIN."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    writer.transport.abort()


def parse_classes(spec):
    if not spec:
        return set(CLASSES)
    out = set()
    for m in spec.split(","):
        m = m.strip().upper()
        if not m:
            continue
        if m not in CLASSES:
            sys.exit(f"faultproxy.py: unknown method class {m!r} (one of {', '.join(CLASSES)})")
        out.add(m)
    return out


async def main_async(args):
    proxy = Proxy(args)
    server = await asyncio.start_server(proxy.handle, "127.0.0.1", args.port, limit=HEAD_LIMIT)
    port = server.sockets[0].getsockname()[1]
    if args.listen_port_file:
        tmp = args.listen_port_file + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(f"{port}\n")
        os.replace(tmp, args.listen_port_file)
    print(port, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with server:
            await stop.wait()
    finally:
        proxy.write_stats()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--upstream", required=True, help="http://HOST:PORT of the real S3 server")
    p.add_argument("--port", type=int, default=0, help="listen port (default: a free one)")
    p.add_argument("--listen-port-file", help="write the port here once listening")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--rate", action="append", default=[],
                   help="MODE=RATE[@METHODS], MODE in " + ", ".join(MODES))
    p.add_argument("--methods", default="",
                   help="comma list of " + ",".join(CLASSES) + " (default: all)")
    p.add_argument("--stall-seconds", type=float, default=30.0)
    p.add_argument("--fail-after", type=int, default=None,
                   help="pass N requests, then answer 503 SlowDown to everything")
    p.add_argument("--fail-match", action="append", default=[], metavar="REGEX",
                   help="answer 503 SlowDown to every request whose 'METHOD TARGET' matches")
    p.add_argument("--stats-file", help="JSON statistics, written on exit and on GET /__stats")
    p.add_argument("--log", help="append one line per request here")
    args = p.parse_args()
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
