#!/usr/bin/env python3
"""Tiny S3 client for the benchmark (python3 stdlib only, SigV4, path-style).

    s3util.py ENVFILE mkbucket           create S3_BUCKET if it does not exist
    s3util.py ENVFILE du PREFIX          print the total bytes of objects under PREFIX
    s3util.py ENVFILE rm PREFIX          delete every object under PREFIX

ENVFILE holds KEY=VALUE lines: S3_ENDPOINT (http://127.0.0.1:PORT), S3_ACCESS_KEY,
S3_SECRET_KEY, optional S3_BUCKET (default kando-bench) and S3_REGION (default us-east-1).
"""
import datetime
import hashlib
import hmac
import sys
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET


def load_env(path):
    env = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#") or "=" not in line:
                continue
            k, v = line.split("=", 1)
            if k.startswith("export "):
                k = k[len("export "):]
            env[k.strip()] = v.strip().strip("'\"")
    env.setdefault("S3_BUCKET", "kando-bench")
    env.setdefault("S3_REGION", "us-east-1")
    return env


def _sign(key, msg):
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def request(env, method, path, query=None, body=b""):
    ep = urllib.parse.urlsplit(env["S3_ENDPOINT"])
    query = query or {}
    now = datetime.datetime.now(datetime.timezone.utc)
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    date = now.strftime("%Y%m%d")
    payload_hash = hashlib.sha256(body).hexdigest()
    canon_path = urllib.parse.quote(path, safe="/-_.~")
    canon_query = "&".join(
        "%s=%s" % (urllib.parse.quote(k, safe="-_.~"), urllib.parse.quote(v, safe="-_.~"))
        for k, v in sorted(query.items()))
    headers = {"host": ep.netloc, "x-amz-content-sha256": payload_hash, "x-amz-date": amz_date}
    signed = ";".join(sorted(headers))
    canon_headers = "".join("%s:%s\n" % (k, headers[k]) for k in sorted(headers))
    creq = "\n".join([method, canon_path, canon_query, canon_headers, signed, payload_hash])
    scope = "%s/%s/s3/aws4_request" % (date, env["S3_REGION"])
    sts = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                     hashlib.sha256(creq.encode()).hexdigest()])
    k = _sign(("AWS4" + env["S3_SECRET_KEY"]).encode(), date)
    k = _sign(k, env["S3_REGION"])
    k = _sign(k, "s3")
    k = _sign(k, "aws4_request")
    sig = hmac.new(k, sts.encode(), hashlib.sha256).hexdigest()
    headers["authorization"] = (
        "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s"
        % (env["S3_ACCESS_KEY"], scope, signed, sig))
    url = "%s://%s%s" % (ep.scheme, ep.netloc, canon_path)
    if canon_query:
        url += "?" + canon_query
    req = urllib.request.Request(url, data=body if method in ("PUT", "POST") else None,
                                 method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def list_objects(env, prefix):
    token = None
    while True:
        q = {"list-type": "2", "prefix": prefix}
        if token:
            q["continuation-token"] = token
        st, body = request(env, "GET", "/" + env["S3_BUCKET"], q)
        if st != 200:
            raise SystemExit("list failed: HTTP %d %s" % (st, body[:300]))
        root = ET.fromstring(body)
        ns = root.tag[:root.tag.index("}") + 1] if root.tag.startswith("{") else ""
        for c in root.findall(ns + "Contents"):
            yield c.find(ns + "Key").text, int(c.find(ns + "Size").text)
        trunc = root.find(ns + "IsTruncated")
        token_el = root.find(ns + "NextContinuationToken")
        if trunc is None or trunc.text != "true" or token_el is None:
            return
        token = token_el.text


def main():
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    env = load_env(sys.argv[1])
    cmd = sys.argv[2]
    if cmd == "mkbucket":
        st, body = request(env, "HEAD", "/" + env["S3_BUCKET"])
        if st == 200:
            return
        st, body = request(env, "PUT", "/" + env["S3_BUCKET"])
        if st not in (200, 409):
            raise SystemExit("create bucket failed: HTTP %d %s" % (st, body[:300]))
    elif cmd == "du":
        print(sum(size for _, size in list_objects(env, sys.argv[3])))
    elif cmd == "rm":
        keys = [k for k, _ in list_objects(env, sys.argv[3])]
        for k in keys:
            st, body = request(env, "DELETE", "/%s/%s" % (env["S3_BUCKET"], k))
            if st not in (200, 204, 404):
                raise SystemExit("delete %s failed: HTTP %d %s" % (k, st, body[:300]))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
