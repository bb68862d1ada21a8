#!/usr/bin/env python3
"""Send one SigV4-signed, path-style S3 request, standard library only.

Used by `server.sh mkbucket` and for smoke tests, so that no aws CLI or SDK is
needed to poke a test server.

    s3req.py [--env WORKDIR/env] [-H 'Name: value']... [--data STR | --data-file F]
             [-o OUT] [--expect CODE[,CODE]] METHOD /bucket[/key] [QUERY]

Credentials come from S3_ENDPOINT, S3_ACCESS_KEY, S3_SECRET_KEY, S3_REGION,
read from --env (the file `server.sh start` writes) or from the environment.
Prints `HTTP <status>` on stderr and the body on stdout (or into -o OUT).
Exit status: 0 when the status is in --expect (default: any 2xx), else 1.
"""

import argparse
import datetime
import hashlib
import hmac
import http.client
import os
import sys
import urllib.parse

SERVICE = "s3"


def read_env(path):
    """KEY=VALUE lines; the environment fills in what the file lacks."""
    env = dict(os.environ)
    if path:
        with open(path, encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if line and not line.startswith("#") and "=" in line:
                    k, v = line.split("=", 1)
                    env[k] = v
    for k in ("S3_ENDPOINT", "S3_ACCESS_KEY", "S3_SECRET_KEY"):
        if not env.get(k):
            sys.exit(f"s3req.py: {k} is not set (pass --env WORKDIR/env)")
    env.setdefault("S3_REGION", "us-east-1")
    return env


def quote(s, safe="-_.~"):
    # SigV4 wants RFC 3986 unreserved characters left alone, all else %XX.
    return urllib.parse.quote(s, safe=safe)


def canonical_query(query):
    pairs = urllib.parse.parse_qsl(query, keep_blank_values=True)
    return "&".join(f"{quote(k)}={quote(v)}" for k, v in sorted(pairs))


def sign(method, path, query, headers, payload_hash, env, now):
    """Add the SigV4 Authorization header to `headers` (a dict, lower-case names)."""
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    day = now.strftime("%Y%m%d")
    headers["x-amz-date"] = amz_date
    headers["x-amz-content-sha256"] = payload_hash
    names = sorted(headers)
    canonical_headers = "".join(f"{n}:{' '.join(headers[n].split())}\n" for n in names)
    signed = ";".join(names)
    creq = "\n".join(
        [method, quote(path, safe="/-_.~"), canonical_query(query),
         canonical_headers, signed, payload_hash])
    scope = f"{day}/{env['S3_REGION']}/{SERVICE}/aws4_request"
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(creq.encode()).hexdigest()])
    key = ("AWS4" + env["S3_SECRET_KEY"]).encode()
    for part in (day, env["S3_REGION"], SERVICE, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    sig = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={env['S3_ACCESS_KEY']}/{scope}, "
        f"SignedHeaders={signed}, Signature={sig}")


def request(env, method, path, query="", body=b"", extra_headers=()):
    """Returns (status, reason, response headers, body bytes)."""
    url = urllib.parse.urlsplit(env["S3_ENDPOINT"])
    if url.scheme != "http":
        sys.exit("s3req.py: only http:// endpoints are supported")
    headers = {"host": url.netloc}
    for h in extra_headers:
        name, _, value = h.partition(":")
        headers[name.strip().lower()] = value.strip()
    if body or method in ("PUT", "POST"):
        headers["content-length"] = str(len(body))
    sign(method, path, query, headers, hashlib.sha256(body).hexdigest(), env,
         datetime.datetime.now(datetime.timezone.utc))
    target = quote(path, safe="/-_.~") + (f"?{canonical_query(query)}" if query else "")
    conn = http.client.HTTPConnection(url.hostname, url.port or 80, timeout=60)
    try:
        conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
        for name, value in headers.items():
            conn.putheader(name, value)
        conn.endheaders(body or None)
        resp = conn.getresponse()
        return resp.status, resp.reason, resp.getheaders(), resp.read()
    finally:
        conn.close()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--env", help="env file written by server.sh start")
    p.add_argument("-H", dest="headers", action="append", default=[], help="'Name: value'")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--data", help="request body (string)")
    g.add_argument("--data-file", help="request body (file)")
    p.add_argument("-o", dest="out", help="write the response body here")
    p.add_argument("-i", dest="show_headers", action="store_true",
                   help="print response headers on stderr")
    p.add_argument("--expect", help="comma-separated status codes that count as success")
    p.add_argument("method")
    p.add_argument("path", help="/bucket or /bucket/key (path-style)")
    p.add_argument("query", nargs="?", default="", help="e.g. 'list-type=2&prefix=a'")
    a = p.parse_args()

    env = read_env(a.env)
    body = b""
    if a.data is not None:
        body = a.data.encode()
    elif a.data_file:
        with open(a.data_file, "rb") as f:
            body = f.read()
    status, reason, headers, data = request(
        env, a.method.upper(), a.path, a.query, body, a.headers)
    print(f"HTTP {status} {reason}", file=sys.stderr)
    if a.show_headers:
        for k, v in headers:
            print(f"{k}: {v}", file=sys.stderr)
    if a.out:
        with open(a.out, "wb") as f:
            f.write(data)
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    ok = [int(c) for c in a.expect.split(",")] if a.expect else None
    return 0 if (status in ok if ok else 200 <= status < 300) else 1


if __name__ == "__main__":
    sys.exit(main())
