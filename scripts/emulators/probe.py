#!/usr/bin/env python3
"""Probe a running emulator and print what it does (the README's "measured behaviour").

    scripts/emulators/probe.py azurite WORKDIR      (after server.sh start azurite WORKDIR)
    scripts/emulators/probe.py fake-gcs WORKDIR     (after server.sh start fake-gcs WORKDIR)

Reads WORKDIR/env, talks to 127.0.0.1 only, Python standard library only. Each line is
`CHECK: status [code] (what was expected) ok|UNEXPECTED`; exits 1 when any check did not
match the expectation written here.
"""
import base64
import datetime
import hashlib
import hmac
import http.client
import json
import os
import sys
import time
import urllib.parse
import uuid
import xml.etree.ElementTree as ET

FAILED = []


def env(workdir):
    out = {}
    with open(os.path.join(workdir, "env")) as f:
        for line in f:
            k, _, v = line.rstrip("\n").partition("=")
            out[k] = v
    return out


def request(base, method, path, headers=None, body=b""):
    u = urllib.parse.urlsplit(base)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, {k.lower(): v for k, v in r.getheaders()}, data


def check(what, got, expected, detail=""):
    # A list (or set) of expected values means "one of"; anything else must be equal.
    ok = got in expected if isinstance(expected, (list, set)) else got == expected
    if not ok:
        FAILED.append(what)
    print(f"{what}: {got}{' ' + detail if detail else ''} (expected {expected}) "
          f"{'ok' if ok else 'UNEXPECTED'}")
    return ok


def short(body, n=300):
    s = body.decode("utf-8", "replace").replace("\n", " ")
    return s if len(s) <= n else s[:n] + "..."


# ------------------------------------------------------------------ Azurite

AZ_VERSION = "2021-12-02"  # x-ms-version sent (Azurite runs with --skipApiVersionCheck)
SAS_VERSION = "2022-11-02"


def az_sign(account, key_b64, method, path, query, headers):
    """SharedKey (Blob service, version >= 2009-09-19) for a path-style emulator URL."""
    h = {k.lower(): v for k, v in headers.items()}
    length = h.get("content-length", "")
    if length == "0":
        length = ""
    std = [method, h.get("content-encoding", ""), h.get("content-language", ""), length,
           h.get("content-md5", ""), h.get("content-type", ""), h.get("date", ""),
           h.get("if-modified-since", ""), h.get("if-match", ""), h.get("if-none-match", ""),
           h.get("if-unmodified-since", ""), h.get("range", "")]
    canon_h = "".join(f"{k}:{h[k].strip()}\n" for k in sorted(h) if k.startswith("x-ms-"))
    # path is the URL path, which for an emulator starts with /account.
    canon_r = f"/{account}{path}"
    params = {}
    for k, v in urllib.parse.parse_qsl(query, keep_blank_values=True):
        params.setdefault(k.lower(), []).append(v)
    for k in sorted(params):
        canon_r += f"\n{k}:{','.join(sorted(params[k]))}"
    sts = "\n".join(std) + "\n" + canon_h + canon_r
    sig = base64.b64encode(hmac.new(base64.b64decode(key_b64), sts.encode(), hashlib.sha256).digest())
    return f"SharedKey {account}:{sig.decode()}"


class Az:
    def __init__(self, e):
        self.base = e["AZURE_ENDPOINT"]  # http://127.0.0.1:P/devstoreaccount1
        self.account = e["AZURE_ACCOUNT"]
        self.key = e["AZURE_KEY"]
        self.prefix = urllib.parse.urlsplit(self.base).path  # /devstoreaccount1

    def req(self, method, rel, query="", headers=None, body=b"", sign=True, key=None):
        path = self.prefix + rel
        h = {"x-ms-version": AZ_VERSION,
             "x-ms-date": datetime.datetime.now(datetime.timezone.utc).strftime("%a, %d %b %Y %H:%M:%S GMT"),
             "Content-Length": str(len(body))}
        h.update(headers or {})
        if sign:
            h["Authorization"] = az_sign(self.account, key or self.key, method, path, query, h)
        full = path + ("?" + query if query else "")
        return request(self.base, method, full, h, body)

    def sas(self, container, perms, expiry, start=None, key=None):
        """Service SAS for a container (sr=c), string-to-sign of sv >= 2020-12-06."""
        se = expiry.strftime("%Y-%m-%dT%H:%M:%SZ")
        st = start.strftime("%Y-%m-%dT%H:%M:%SZ") if start else ""
        sts = "\n".join([perms, st, se, f"/blob/{self.account}/{container}", "", "", "https,http",
                         SAS_VERSION, "c", "", "", "", "", "", "", ""])
        sig = base64.b64encode(hmac.new(base64.b64decode(key or self.key), sts.encode(),
                                        hashlib.sha256).digest()).decode()
        q = {"sv": SAS_VERSION, "sr": "c", "sp": perms, "se": se, "spr": "https,http", "sig": sig}
        if st:
            q["st"] = st
        return urllib.parse.urlencode(q)

    def sas_req(self, method, rel, sas, query="", headers=None, body=b""):
        h = {"Content-Length": str(len(body))}
        h.update(headers or {})
        q = (query + "&" if query else "") + sas
        return request(self.base, method, self.prefix + rel + "?" + q, h, body)


def err_code(hdrs, body):
    code = hdrs.get("x-ms-error-code", "")
    return code or short(body, 80)


def probe_azurite(e):
    az = Az(e)
    c = "probe-" + uuid.uuid4().hex[:8]
    print(f"# Azurite at {az.base}")

    s, h, b = az.req("PUT", f"/{c}", "restype=container", sign=False)
    check("create container, no Authorization", s, 403, err_code(h, b))
    s, h, b = az.req("PUT", f"/{c}", "restype=container", key=base64.b64encode(b"x" * 64).decode())
    check("create container, wrong SharedKey", s, 403, err_code(h, b))
    print(f"  403 body: {short(b)}")
    s, h, b = az.req("PUT", f"/{c}", "restype=container")
    check("create container, SharedKey", s, 201)
    s, h, b = az.req("PUT", f"/{c}", "restype=container")
    check("create container again", s, 409, err_code(h, b))

    s, h, b = az.req("PUT", f"/{c}/a/one", headers={"x-ms-blob-type": "BlockBlob", "If-None-Match": "*"},
                     body=b"0123456789abcdefghij")
    check("Put Blob If-None-Match:* (new)", s, 201, f"etag={h.get('etag')}")
    s, h, b = az.req("PUT", f"/{c}/a/one", headers={"x-ms-blob-type": "BlockBlob", "If-None-Match": "*"},
                     body=b"other")
    check("Put Blob If-None-Match:* (exists)", s, 409, err_code(h, b))
    print(f"  409 body: {short(b)}")
    s, h, b = az.req("PUT", f"/{c}/a/one", headers={"x-ms-blob-type": "BlockBlob", "If-Match": '"0x0"'},
                     body=b"other")
    check("Put Blob If-Match: wrong etag", s, 412, err_code(h, b))
    print(f"  412 body: {short(b)}")
    s, h, b = az.req("GET", f"/{c}/a/one")
    check("Get Blob after refused overwrites", b, b"0123456789abcdefghij")

    s, h, b = az.req("PUT", f"/{c}/a/nocond", headers={"x-ms-blob-type": "BlockBlob"}, body=b"")
    check("Put Blob empty body, no condition", s, 201)

    # Put Block x3 + Put Block List.
    blocks = [base64.b64encode(f"block-{i:06d}".encode()).decode() for i in range(3)]
    parts = [bytes([65 + i]) * (1024 * 1024 + i) for i in range(3)]
    for bid, part in zip(blocks, parts):
        s, h, b = az.req("PUT", f"/{c}/big", "comp=block&blockid=" + urllib.parse.quote(bid, safe=""),
                         body=part)
        if s != 201:
            check("Put Block", s, 201, err_code(h, b))
    s, h, b = az.req("HEAD", f"/{c}/big")
    check("HEAD before Put Block List (uncommitted blocks only)", s, 404, err_code(h, b))
    xml = "<?xml version='1.0' encoding='utf-8'?><BlockList>" + "".join(
        f"<Latest>{bid}</Latest>" for bid in blocks) + "</BlockList>"
    s, h, b = az.req("PUT", f"/{c}/big", "comp=blocklist", headers={"If-None-Match": "*"}, body=xml.encode())
    check("Put Block List If-None-Match:* (new)", s, 201)
    s, h, b = az.req("PUT", f"/{c}/big", "comp=blocklist", headers={"If-None-Match": "*"}, body=xml.encode())
    check("Put Block List If-None-Match:* (exists; blocks now committed)", s, 409, err_code(h, b))
    s, h, b = az.req("GET", f"/{c}/big")
    check("Get Blob of block list", b == b"".join(parts), True, f"len={len(b)}")

    # Ranges on the 20-byte blob.
    for rng, exp in [("bytes=2-5", 206), ("bytes=15-", 206), ("bytes=10-99", 206),
                     ("bytes=19-19", 206),
                     # Azurite quirks (Azure answers 416 InvalidRange for a start at the end):
                     # a suffix range returns the whole blob as 206 "bytes NaN-4/20", and a
                     # start == size gives 206 "bytes 20-19/20" with an empty body.
                     ("bytes=-4", 206), ("bytes=20-30", 206), ("bytes=20-", 206),
                     ("bytes=21-30", 416), ("bytes=25-", 416)]:
        s, h, b = az.req("GET", f"/{c}/a/one", headers={"Range": rng})
        check(f"Get Blob Range {rng} on 20 bytes", s, exp,
              f"content-range={h.get('content-range')} len={len(b)} "
              + (err_code(h, b) if s >= 400 else f"body={short(b, 60)!r}"))
    s, h, b = az.req("GET", f"/{c}/a/one", headers={"x-ms-range": "bytes=2-5"})
    check("Get Blob x-ms-range bytes=2-5", (s, b), (206, b"2345"))
    s, h, b = az.req("GET", f"/{c}/a/nocond", headers={"Range": "bytes=0-9"})
    check("Get Blob Range bytes=0-9 on an empty blob", s, [200, 206, 416],
          f"{err_code(h, b) if s >= 400 else 'len=' + str(len(b))}")

    s, h, b = az.req("HEAD", f"/{c}/a/one")
    check("HEAD (Get Blob Properties)", s, 200,
          f"len={h.get('content-length')} type={h.get('x-ms-blob-type')} etag={h.get('etag')} "
          f"last-modified={h.get('last-modified')!r} creation={h.get('x-ms-creation-time')!r}")
    s, h, b = az.req("HEAD", f"/{c}/a/missing")
    check("HEAD missing blob", s, 404, f"x-ms-error-code={h.get('x-ms-error-code')} body_len={len(b)}")

    # List paging: 7 blobs under p/, maxresults=2.
    for i in range(7):
        az.req("PUT", f"/{c}/p/{i:02d}", headers={"x-ms-blob-type": "BlockBlob"}, body=b"x" * i)
    names, marker, pages = [], "", 0
    while True:
        q = "restype=container&comp=list&prefix=p%2F&maxresults=2" + (
            "&marker=" + urllib.parse.quote(marker, safe="") if marker else "")
        s, h, b = az.req("GET", f"/{c}", q)
        if s != 200:
            check("List Blobs", s, 200, err_code(h, b))
            break
        pages += 1
        root = ET.fromstring(b)
        names += [n.text for n in root.iter("Name")]
        marker = (root.findtext("NextMarker") or "")
        if pages == 1:
            print(f"  first page: {short(b, 600)}")
        if not marker or pages > 10:
            break
    check("List Blobs prefix=p/ maxresults=2 paging", (names, pages),
          ([f"p/{i:02d}" for i in range(7)], 4))
    s, h, b = az.req("GET", f"/{c}", "restype=container&comp=list&prefix=p%2F&maxresults=0")
    check("List Blobs maxresults=0", s, [200, 400], err_code(h, b) if s >= 400 else short(b, 120))
    s, h, b = az.req("GET", f"/{c}", "restype=container&comp=list&maxresults=5000&delimiter=%2F")
    root = ET.fromstring(b) if s == 200 else None
    check("List Blobs delimiter=/", s, 200,
          f"prefixes={[p.findtext('Name') for p in root.iter('BlobPrefix')] if root is not None else None}")
    s, h, b = az.req("GET", f"/{c}", "restype=container&comp=list&maxresults=6000")
    check("List Blobs maxresults=6000 (> 5000)", s, [200, 400], err_code(h, b) if s >= 400 else "")

    s, h, b = az.req("DELETE", f"/{c}/p/00")
    check("Delete Blob", s, 202)
    s, h, b = az.req("DELETE", f"/{c}/p/00")
    check("Delete Blob missing", s, 404, err_code(h, b))
    print(f"  404 body: {short(b)}")
    s, h, b = az.req("GET", f"/{c}/p/00")
    check("Get Blob missing", s, 404, err_code(h, b))

    s, h, b = az.req("PUT", f"/nocontainer-{c}/x", headers={"x-ms-blob-type": "BlockBlob"}, body=b"x")
    check("Put Blob in a missing container", s, 404, err_code(h, b))
    s, h, b = az.req("GET", f"/nocontainer-{c}", "restype=container&comp=list")
    check("List Blobs of a missing container", s, 404, err_code(h, b))

    # Big single Put Blob.
    big = os.urandom(40 * 1024 * 1024)
    t = time.monotonic()
    s, h, b = az.req("PUT", f"/{c}/big40", headers={"x-ms-blob-type": "BlockBlob"}, body=big)
    check("Put Blob 40 MiB in one request", s, 201, f"{time.monotonic() - t:.2f}s")

    # Container SAS.
    now = datetime.datetime.now(datetime.timezone.utc)
    sas = az.sas(c, "racwdl", now + datetime.timedelta(hours=1))
    print(f"  SAS (racwdl, 1 h): {sas}")
    s, h, b = az.sas_req("GET", f"/{c}", sas, "restype=container&comp=list&prefix=a%2F")
    check("SAS racwdl: List Blobs", s, 200)
    s, h, b = az.sas_req("PUT", f"/{c}/sas/x", sas, headers={"x-ms-blob-type": "BlockBlob",
                                                             "If-None-Match": "*"}, body=b"sas")
    check("SAS racwdl: Put Blob If-None-Match:*", s, 201)
    s, h, b = az.sas_req("GET", f"/{c}/sas/x", sas, headers={"Range": "bytes=1-2"})
    check("SAS racwdl: Get Blob Range", (s, b), (206, b"as"))
    s, h, b = az.sas_req("DELETE", f"/{c}/sas/x", sas)
    check("SAS racwdl: Delete Blob", s, 202)
    bad = sas.replace("sig=", "sig=A")
    s, h, b = az.sas_req("GET", f"/{c}", bad, "restype=container&comp=list")
    check("SAS with a corrupted signature", s, 403, err_code(h, b))
    print(f"  403 body: {short(b)}")
    wrong = az.sas(c, "racwdl", now + datetime.timedelta(hours=1), key=base64.b64encode(b"k" * 64).decode())
    s, h, b = az.sas_req("GET", f"/{c}", wrong, "restype=container&comp=list")
    check("SAS signed with a wrong key", s, 403, err_code(h, b))
    expired = az.sas(c, "racwdl", now - datetime.timedelta(minutes=5))
    s, h, b = az.sas_req("GET", f"/{c}", expired, "restype=container&comp=list")
    check("SAS expired", s, 403, err_code(h, b))
    ro = az.sas(c, "rl", now + datetime.timedelta(hours=1))
    s, h, b = az.sas_req("GET", f"/{c}/a/one", ro)
    check("SAS rl: Get Blob", s, 200)
    s, h, b = az.sas_req("PUT", f"/{c}/sas/y", ro, headers={"x-ms-blob-type": "BlockBlob"}, body=b"n")
    check("SAS rl: Put Blob", s, 403, err_code(h, b))
    s, h, b = az.sas_req("DELETE", f"/{c}/a/one", ro)
    check("SAS rl: Delete Blob", s, 403, err_code(h, b))
    other = az.sas(c + "x", "racwdl", now + datetime.timedelta(hours=1))
    s, h, b = az.sas_req("GET", f"/{c}", other, "restype=container&comp=list")
    check("SAS for another container", s, 403, err_code(h, b))


# ------------------------------------------------------------------ fake-gcs-server

def q(name):
    return urllib.parse.quote(name, safe="")


def multipart(meta, data):
    boundary = "kando-" + uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n"
            f"{json.dumps(meta)}\r\n--{boundary}\r\nContent-Type: application/octet-stream\r\n\r\n"
            ).encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return body, {"Content-Type": f"multipart/related; boundary={boundary}"}


def probe_fake_gcs(e):
    base = e["GCS_ENDPOINT"]
    bkt = "probe-" + uuid.uuid4().hex[:8]
    print(f"# fake-gcs-server at {base}")

    def req(method, path, headers=None, body=b""):
        return request(base, method, path, headers, body)

    s, h, b = req("POST", "/storage/v1/b?project=x", {"Content-Type": "application/json"},
                  json.dumps({"name": bkt}).encode())
    check("create bucket", s, 200, short(b, 120))
    s, h, b = req("POST", "/storage/v1/b?project=x", {"Content-Type": "application/json"},
                  json.dumps({"name": bkt}).encode())
    check("create bucket again", s, [409], short(b, 200))

    up = f"/upload/storage/v1/b/{bkt}/o"
    body, hd = multipart({"name": "a/one"}, b"0123456789abcdefghij")
    s, h, b = req("POST", up + "?uploadType=multipart&ifGenerationMatch=0", hd, body)
    check("multipart upload ifGenerationMatch=0 (new)", s, 200, f"generation={json.loads(b).get('generation') if s == 200 else short(b)}")
    body, hd = multipart({"name": "a/one"}, b"other")
    s, h, b = req("POST", up + "?uploadType=multipart&ifGenerationMatch=0", hd, body)
    check("multipart upload ifGenerationMatch=0 (exists)", s, 412, short(b))
    s, h, b = req("GET", f"/storage/v1/b/{bkt}/o/{q('a/one')}?alt=media")
    check("content after refused multipart overwrite", b, b"0123456789abcdefghij")

    s, h, b = req("POST", up + "?uploadType=media&name=" + q("a/one") + "&ifGenerationMatch=0",
                  {"Content-Type": "application/octet-stream"}, b"media-overwrite")
    # fake-gcs quirk: uploadType=media ignores ifGenerationMatch (GCS: 412).
    check("media upload ifGenerationMatch=0 over an existing object", s, 200, short(b, 60))
    s, h, b = req("GET", f"/storage/v1/b/{bkt}/o/{q('a/one')}?alt=media")
    check("  content afterwards (overwritten)", b, b"media-overwrite")
    s, h, b = req("POST", up + "?uploadType=media&name=" + q("m/new") + "&ifGenerationMatch=0",
                  {"Content-Type": "application/octet-stream"}, b"media-new")
    check("media upload ifGenerationMatch=0 (new)", s, 200)
    # Restore a/one through multipart (no precondition).
    body, hd = multipart({"name": "a/one"}, b"0123456789abcdefghij")
    s, h, b = req("POST", up + "?uploadType=multipart", hd, body)
    check("multipart upload without precondition over an existing object", s, 200)
    gen = json.loads(b)["generation"] if s == 200 else "0"
    body, hd = multipart({"name": "a/one"}, b"0123456789abcdefghij")
    s, h, b = req("POST", up + f"?uploadType=multipart&ifGenerationMatch={gen}", hd, body)
    check("multipart upload ifGenerationMatch=<current generation>", s, 200)
    body, hd = multipart({"name": "a/one"}, b"0123456789abcdefghij")
    s, h, b = req("POST", up + "?uploadType=multipart&ifGenerationMatch=1", hd, body)
    check("multipart upload ifGenerationMatch=<wrong generation>", s, 412)

    # Multipart body sizes.
    for mib in (8, 32, 40, 64, 100):
        data = os.urandom(mib * 1024 * 1024)
        body, hd = multipart({"name": f"mp/{mib}"}, data)
        t = time.monotonic()
        s, h, b = req("POST", up + "?uploadType=multipart&ifGenerationMatch=0", hd, body)
        ok = s == 200
        if ok:
            _, _, got = req("GET", f"/storage/v1/b/{bkt}/o/{q(f'mp/{mib}')}?alt=media")
            ok = got == data
        check(f"multipart upload {mib} MiB", (s, ok), (200, True),
              f"{time.monotonic() - t:.2f}s {short(b, 120) if s != 200 else ''}")

    # Resumable upload of 40 MiB in 8 MiB chunks.
    size, chunk = 40 * 1024 * 1024, 8 * 1024 * 1024
    data = os.urandom(size)
    for cond in ("", "&ifGenerationMatch=0"):
        for name in ("res/40", "res/40"):
            s, h, b = req("POST", up + f"?uploadType=resumable&name={q(name)}{cond}",
                          {"Content-Type": "application/json", "X-Upload-Content-Type": "application/octet-stream"},
                          json.dumps({"name": name}).encode())
            loc = h.get("location", "")
            label = f"resumable{' ifGenerationMatch=0' if cond else ''} {name}"
            if s != 200 or not loc:
                check(f"{label}: initiate", s, 200, short(b))
                continue
            locpath = urllib.parse.urlsplit(loc)
            locpath = locpath.path + ("?" + locpath.query if locpath.query else "")
            statuses = []
            for off in range(0, size, chunk):
                end = min(off + chunk, size) - 1
                total = str(size) if end == size - 1 else "*"
                s, h, b = req("PUT", locpath, {"Content-Range": f"bytes {off}-{end}/{total}"},
                              data[off:end + 1])
                statuses.append(s)
            print(f"  {label}: location={loc} chunk statuses={statuses} final={short(b, 100)}")
            # fake-gcs quirk: resumable uploads ignore ifGenerationMatch (GCS: 412 when the
            # object exists; here the second upload of each pair overwrites).
            check(f"{label}: final status", s, 200)
    s, h, b = req("GET", f"/storage/v1/b/{bkt}/o/{q('res/40')}?alt=media")
    check("resumable 40 MiB content", (s, b == data), (200, True))
    # Query a resumable session's status (Content-Range: bytes */*).
    s, h, b = req("POST", up + f"?uploadType=resumable&name={q('res/status')}",
                  {"Content-Type": "application/json"}, json.dumps({"name": "res/status"}).encode())
    loc = urllib.parse.urlsplit(h.get("location", ""))
    locpath = loc.path + ("?" + loc.query if loc.query else "")
    s, h, b = req("PUT", locpath, {"Content-Range": f"bytes 0-{chunk - 1}/*"}, data[:chunk])
    check("resumable intermediate chunk", s, 308, f"range={h.get('range')}")
    # fake-gcs quirk: there is no status query. "bytes */*" (GCS: "where am I?", answered
    # 308) is taken as the end of a streamed upload and commits what was received.
    s, h, b = req("PUT", locpath, {"Content-Range": "bytes */*"})
    check("resumable status query 'bytes */*' (commits the upload!)", s, 200,
          f"range={h.get('range')}")
    s, h, b = req("GET", f"/storage/v1/b/{bkt}/o/{q('res/status')}")
    check("object after the status query", s, 200, f"size={json.loads(b).get('size') if s == 200 else None}")
    # fake-gcs quirk: chunk offsets are not checked; a re-sent chunk is appended again.
    s, h, b = req("POST", up + f"?uploadType=resumable&name={q('res/dup')}",
                  {"Content-Type": "application/json"}, json.dumps({"name": "res/dup"}).encode())
    loc = urllib.parse.urlsplit(h.get("location", ""))
    locpath = loc.path + ("?" + loc.query if loc.query else "")
    for cr, part in [("bytes 0-3/8", b"abcd"), ("bytes 0-3/8", b"abcd"), ("bytes 4-7/8", b"efgh")]:
        s, h, b = req("PUT", locpath, {"Content-Range": cr}, part)
    s, h, b = req("GET", f"/storage/v1/b/{bkt}/o/{q('res/dup')}?alt=media")
    check("resumable with chunk 0-3 sent twice (content)", b, b"abcdabcdefgh")
    # Cancel (DELETE on the session URL).
    s, h, b = req("POST", up + f"?uploadType=resumable&name={q('res/cancel')}",
                  {"Content-Type": "application/json"}, json.dumps({"name": "res/cancel"}).encode())
    loc = urllib.parse.urlsplit(h.get("location", ""))
    s, h, b = req("DELETE", loc.path + "?" + loc.query)
    check("resumable cancel (DELETE on the session URL)", s, 499, short(b, 80))

    # Ranges on the 20-byte object.
    obj = f"/storage/v1/b/{bkt}/o/{q('a/one')}?alt=media"
    for rng, exp in [("bytes=2-5", 206), ("bytes=15-", 206), ("bytes=10-99", 206),
                     ("bytes=19-19", 206), ("bytes=-4", 206), ("bytes=20-30", 416), ("bytes=20-", 416),
                     ("bytes=21-30", 416), ("bytes=25-", 416)]:
        s, h, b = req("GET", obj, {"Range": rng})
        check(f"GET alt=media Range {rng} on 20 bytes", s, exp,
              f"content-range={h.get('content-range')} len={len(b)} body={short(b, 60)!r}")
    s, h, b = req("GET", f"/storage/v1/b/{bkt}/o/a/one?alt=media")
    check("GET alt=media with an unencoded / in the name", s, 200, short(b, 80))
    s, h, b = req("GET", f"/download/storage/v1/b/{bkt}/o/{q('a/one')}?alt=media", {"Range": "bytes=2-5"})
    check("GET /download/... alt=media Range", (s, b), (206, b"2345"))

    s, h, b = req("GET", f"/storage/v1/b/{bkt}/o/{q('a/one')}")
    m = json.loads(b) if s == 200 else {}
    check("GET metadata", s, 200, f"size={m.get('size')!r} generation={m.get('generation')!r} "
          f"md5Hash={m.get('md5Hash')!r} crc32c={m.get('crc32c')!r} updated={m.get('updated')!r}")
    s, h, b = req("GET", f"/storage/v1/b/{bkt}/o/{q('a/missing')}")
    check("GET metadata of a missing object", s, 404, short(b))
    s, h, b = req("GET", f"/storage/v1/b/{bkt}/o/{q('a/missing')}?alt=media")
    check("GET alt=media of a missing object", s, 404, short(b))

    # Listing and paging: 7 objects under p/.
    for i in range(7):
        body, hd = multipart({"name": f"p/{i:02d}"}, b"x" * i)
        req("POST", up + "?uploadType=multipart", hd, body)
    names, token, pages, first = [], "", 0, None
    while True:
        qs = "prefix=p%2F&maxResults=2" + ("&pageToken=" + q(token) if token else "")
        s, h, b = req("GET", f"/storage/v1/b/{bkt}/o?{qs}")
        if s != 200:
            check("list", s, 200, short(b))
            break
        pages += 1
        j = json.loads(b)
        if first is None:
            first = j
        names += [it["name"] for it in j.get("items", [])]
        token = j.get("nextPageToken", "")
        if not token or pages > 10:
            break
    print(f"  first page: {json.dumps(first)[:400]}")
    check("list prefix=p/ maxResults=2 paging", (names, pages), ([f"p/{i:02d}" for i in range(7)], 4))
    s, h, b = req("GET", f"/storage/v1/b/{bkt}/o?delimiter=%2F")
    j = json.loads(b) if s == 200 else {}
    check("list delimiter=/", s, 200, f"prefixes={j.get('prefixes')} items={[i['name'] for i in j.get('items', [])]}")
    s, h, b = req("GET", f"/storage/v1/b/{bkt}/o?prefix=p%2F&maxResults=2&fields=items(name,size),nextPageToken")
    check("list with fields=", s, 200, short(b, 200))
    names, token, pages = [], "", 0
    while pages < 10:
        qs = "delimiter=%2F&maxResults=2" + ("&pageToken=" + q(token) if token else "")
        s, h, b = req("GET", f"/storage/v1/b/{bkt}/o?{qs}")
        j = json.loads(b)
        pages += 1
        names += j.get("prefixes", []) + [i["name"] for i in j.get("items", [])]
        token = j.get("nextPageToken", "")
        if not token:
            break
    check("list delimiter=/ maxResults=2 paging", (sorted(names), pages),
          (['a/', 'm/', 'mp/', 'p/', 'res/'], 1))

    # fake-gcs quirk: 200 with the body "null" (GCS: 204, empty).
    s, h, b = req("DELETE", f"/storage/v1/b/{bkt}/o/{q('p/00')}")
    check("DELETE", s, 200, repr(b))
    s, h, b = req("DELETE", f"/storage/v1/b/{bkt}/o/{q('p/00')}")
    check("DELETE missing", s, 404, short(b))
    s, h, b = req("DELETE", f"/storage/v1/b/{bkt}/o/{q('p/01')}?ifGenerationMatch=1")
    # fake-gcs quirk: preconditions on DELETE are ignored (GCS: 412).
    check("DELETE ifGenerationMatch=<wrong> (deletes anyway)", s, 200, repr(b))

    nob = "nobucket-" + bkt
    s, h, b = req("GET", f"/storage/v1/b/{nob}/o")
    check("list a missing bucket", s, 404, short(b))
    body, hd = multipart({"name": "x"}, b"x")
    s, h, b = req("POST", f"/upload/storage/v1/b/{nob}/o?uploadType=multipart&ifGenerationMatch=0", hd, body)
    check("multipart upload into a missing bucket", s, 404, short(b))
    s, h, b = req("GET", f"/storage/v1/b/{nob}/o/{q('x')}?alt=media")
    check("GET alt=media in a missing bucket", s, 404, short(b))
    s, h, b = req("DELETE", f"/storage/v1/b/{nob}/o/{q('x')}")
    check("DELETE in a missing bucket", s, 404, short(b))


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("azurite", "fake-gcs"):
        sys.exit(__doc__)
    e = env(sys.argv[2])
    (probe_azurite if sys.argv[1] == "azurite" else probe_fake_gcs)(e)
    if FAILED:
        print(f"# {len(FAILED)} unexpected: {FAILED}")
        sys.exit(1)
    print("# all as expected")


if __name__ == "__main__":
    main()
