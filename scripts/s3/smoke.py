#!/usr/bin/env python3
"""End-to-end smoke test of a server started by `server.sh start`.

    smoke.py WORKDIR [BUCKET]

Assumes the bucket exists (`server.sh mkbucket WORKDIR BUCKET`, default
bucket name: kando-smoke). Checks PUT, GET, ranged GET, ListObjectsV2,
If-None-Match: * (a second conditional PUT must get 412), DELETE. Prints one
line per check; exit status 1 when a required check fails. The
If-None-Match result is reported, not required (servers differ).
"""

import os
import sys
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import s3req  # noqa: E402

failed = []


def check(name, ok, detail=""):
    print(f"{'ok  ' if ok else 'FAIL'} {name}{': ' + detail if detail else ''}")
    if not ok:
        failed.append(name)


def main():
    workdir = sys.argv[1]
    bucket = sys.argv[2] if len(sys.argv) > 2 else "kando-smoke"
    env = s3req.read_env(os.path.join(workdir, "env"))
    req = lambda *a, **k: s3req.request(env, *a, **k)  # noqa: E731
    body = bytes(range(256)) * 4096  # 1 MiB, every byte value
    key = f"/{bucket}/dir/obj one+%.bin"  # spaces and signs exercise the signer

    st, _, _, _ = req("PUT", key, body=body)
    check("PUT 1 MiB", st == 200, f"HTTP {st}")
    st, _, _, got = req("GET", key)
    check("GET", st == 200 and got == body, f"HTTP {st}, {len(got)} bytes")
    st, _, hdrs, got = req("GET", key, extra_headers=["Range: bytes=1000-1999"])
    cr = dict((k.lower(), v) for k, v in hdrs).get("content-range", "")
    check("ranged GET", st == 206 and got == body[1000:2000], f"HTTP {st}, {cr}")
    st, _, _, got = req("GET", f"/{bucket}", "list-type=2&prefix=dir/")
    keys = []
    if st == 200:
        root = ET.fromstring(got)
        keys = [e.text for e in root.iter() if e.tag.endswith("}Key") or e.tag == "Key"]
    check("ListObjectsV2", keys == ["dir/obj one+%.bin"], f"HTTP {st}, keys={keys}")

    inm = f"/{bucket}/inm-test"
    st1, _, _, _ = req("PUT", inm, body=b"first", extra_headers=["If-None-Match: *"])
    st2, _, _, err = req("PUT", inm, body=b"second", extra_headers=["If-None-Match: *"])
    _, _, _, now = req("GET", inm)
    honoured = st1 == 200 and st2 == 412 and now == b"first"
    print(f"info If-None-Match: * first PUT {st1}, second PUT {st2}, "
          f"object now {now!r} -> {'honoured' if honoured else 'NOT honoured'}")

    for k in (key, inm):
        st, _, _, _ = req("DELETE", k)
        check(f"DELETE {k}", st == 204, f"HTTP {st}")
    st, _, _, _ = req("GET", key)
    check("GET after DELETE is 404", st == 404, f"HTTP {st}")
    st, _, _, _ = req("DELETE", f"/{bucket}")
    check("DELETE bucket", st == 204, f"HTTP {st}")

    # A wrong secret must be refused where the server checks signatures.
    bad = dict(env, S3_SECRET_KEY=env["S3_SECRET_KEY"] + "x")
    st, _, _, _ = s3req.request(bad, "GET", "/")
    print(f"info wrong secret key -> HTTP {st} "
          f"({'signatures checked' if st == 403 else 'signatures NOT checked'})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
