#!/usr/bin/env python3
"""Set-up and accounting for bench/cloud.sh against the loopback emulators (stdlib only).

    cloudutil.py azure ENDPOINT KEY mk CONTAINER     create a container (SharedKey-signed)
    cloudutil.py azure ENDPOINT KEY du CONTAINER     print "BYTES OBJECTS" of the container
    cloudutil.py azure ENDPOINT KEY rm CONTAINER     delete the container
    cloudutil.py gcs ENDPOINT mk BUCKET              create a bucket (fake-gcs: no auth)
    cloudutil.py gcs ENDPOINT du BUCKET              print "BYTES OBJECTS" of the bucket
    cloudutil.py gcs ENDPOINT rm BUCKET              delete every object, then the bucket

ENDPOINT is Azurite's http://127.0.0.1:PORT/devstoreaccount1 (path-style, the account is
the first path segment) or fake-gcs-server's http://127.0.0.1:PORT. SharedKey as in
tests/common/azurite.rs and scripts/emulators/README.md.
"""
import base64
import email.utils
import hashlib
import hmac
import http.client
import json
import sys
import urllib.parse
import xml.etree.ElementTree as ET

API_VERSION = "2021-12-02"


def request(method, url, headers=None, body=b""):
    u = urllib.parse.urlsplit(url)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=120)
    path = u.path + ("?" + u.query if u.query else "")
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, data


# ---------------------------------------------------------------- Azure (Azurite)

def azure(method, endpoint, key, path, query, ok):
    """Signed request to ENDPOINT + path with query params (list of pairs)."""
    u = urllib.parse.urlsplit(endpoint)
    account = u.path.strip("/").split("/")[0]
    full_path = u.path.rstrip("/") + path
    headers = {
        "x-ms-date": email.utils.formatdate(usegmt=True),
        "x-ms-version": API_VERSION,
    }
    if method in ("PUT", "POST"):
        headers["Content-Length"] = "0"
    canon_headers = "".join(f"{k}:{v}\n" for k, v in sorted(headers.items()) if k.startswith("x-ms-"))
    canon_res = f"/{account}{full_path}"
    for k, v in sorted((k.lower(), v) for k, v in query):
        canon_res += f"\n{k}:{v}"
    sts = "\n".join([method, "", "", "", "", "", "", "", "", "", "", ""]) + "\n" + canon_headers + canon_res
    sig = base64.b64encode(hmac.new(base64.b64decode(key), sts.encode(), hashlib.sha256).digest()).decode()
    headers["Authorization"] = f"SharedKey {account}:{sig}"
    qs = urllib.parse.urlencode(query)
    url = f"{u.scheme}://{u.netloc}{full_path}" + (f"?{qs}" if qs else "")
    status, data = request(method, url, headers)
    if status not in ok:
        sys.exit(f"cloudutil: {method} {url}: {status} {data[:300]!r}")
    return data


def azure_du(endpoint, key, container):
    total = count = 0
    marker = ""
    while True:
        q = [("restype", "container"), ("comp", "list"), ("maxresults", "5000")]
        if marker:
            q.append(("marker", marker))
        root = ET.fromstring(azure("GET", endpoint, key, f"/{container}", q, (200,)))
        for b in root.iter("Blob"):
            total += int(b.find("Properties/Content-Length").text)
            count += 1
        marker = (root.findtext("NextMarker") or "").strip()
        if not marker:
            return total, count


# ---------------------------------------------------------------- GCS (fake-gcs-server)

def gcs_objects(endpoint, bucket):
    token = ""
    while True:
        q = {"maxResults": "1000"}
        if token:
            q["pageToken"] = token
        url = f"{endpoint}/storage/v1/b/{urllib.parse.quote(bucket, safe='')}/o?" + urllib.parse.urlencode(q)
        status, data = request("GET", url)
        if status != 200:
            sys.exit(f"cloudutil: GET {url}: {status} {data[:300]!r}")
        doc = json.loads(data)
        yield from doc.get("items", [])
        token = doc.get("nextPageToken", "")
        if not token:
            return


def main(argv):
    kind = argv[1]
    if kind == "azure":
        endpoint, key, op, name = argv[2:6]
        if op == "mk":
            azure("PUT", endpoint, key, f"/{name}", [("restype", "container")], (201,))
        elif op == "du":
            print(*azure_du(endpoint, key, name))
        elif op == "rm":
            azure("DELETE", endpoint, key, f"/{name}", [("restype", "container")], (202,))
        else:
            sys.exit(f"cloudutil: unknown op {op}")
    elif kind == "gcs":
        endpoint, op, name = argv[2:5]
        if op == "mk":
            status, data = request("POST", f"{endpoint}/storage/v1/b?project=bench",
                                   {"Content-Type": "application/json"}, json.dumps({"name": name}).encode())
            if status != 200:
                sys.exit(f"cloudutil: creating bucket {name}: {status} {data[:300]!r}")
        elif op == "du":
            objs = list(gcs_objects(endpoint, name))
            print(sum(int(o["size"]) for o in objs), len(objs))
        elif op == "rm":
            b = urllib.parse.quote(name, safe="")
            for o in list(gcs_objects(endpoint, name)):
                request("DELETE", f"{endpoint}/storage/v1/b/{b}/o/{urllib.parse.quote(o['name'], safe='')}")
            status, data = request("DELETE", f"{endpoint}/storage/v1/b/{b}")
            if status not in (200, 204):
                sys.exit(f"cloudutil: deleting bucket {name}: {status} {data[:300]!r}")
        else:
            sys.exit(f"cloudutil: unknown op {op}")
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
