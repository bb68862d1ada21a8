#!/usr/bin/env python3
"""Deterministic generator of pg_dump-like text (python3 stdlib only).

    gen_synthetic.py --size-mb 100 --day1 OUT1 --day2 OUT2 [--seed S]

Writes a plain-SQL "dump" of about SIZE MB (10^6 bytes) with three COPY blocks:
  accounts  pgbench-like rows (ints + blank-padded filler: very compressible)
  orders    ints, amounts, timestamps, 32-hex tokens (md5-like: hard to compress)
  docs      one JSON document per row
and a "next day" variant in which ~1 % of the rows of every table change in place (same
position, new values; the line length may change) and ~1 % new rows are appended to each
table. The same seed and size always give the same bytes.

--pattern hot (default): the changed rows all lie in the newest 10 % of each table (one row
  in ten there changes; older rows never change), as when recent orders change status.
--pattern scattered: 1 % of all rows, uniformly spread. With ~100-byte rows a 1 MiB chunk
  holds ~10,000 rows, so every chunk contains changes: chunk-level dedup finds nothing.
"""
import argparse
import hashlib
import os

HEADER = """--
-- PostgreSQL database dump
--

-- Dumped from database version 15.0 (synthetic)
-- Dumped by pg_dump version 15.0 (synthetic)

SET statement_timeout = 0;
SET lock_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET default_tablespace = '';
SET default_table_access_method = heap;

"""

TABLES = [
    # name, columns, DDL, share of the bytes
    ("accounts", "aid, bid, abalance, filler",
     "CREATE TABLE public.accounts (\n    aid integer NOT NULL,\n    bid integer,\n"
     "    abalance integer,\n    filler character(84)\n);\n", 0.35),
    ("orders", "id, customer, amount, status, created_at, token",
     "CREATE TABLE public.orders (\n    id bigint NOT NULL,\n    customer integer,\n"
     "    amount numeric(12,2),\n    status text,\n    created_at timestamp with time zone,\n"
     "    token text\n);\n", 0.30),
    ("docs", "id, doc",
     "CREATE TABLE public.docs (\n    id integer NOT NULL,\n    doc json\n);\n", 0.35),
]

STATUSES = ["new", "paid", "shipped", "delivered", "cancelled", "refunded"]
TAGS = ["red", "green", "blue", "alpha", "beta", "gamma", "prod", "test", "eu", "us"]
FILLER = " " * 84


def h(seed, table, i, salt=""):
    return hashlib.md5(f"{seed}/{table}/{i}{salt}".encode()).digest()


def ts(x, day):
    # 2026-01-DD HH:MM:SS.ffffff+00
    s = x % 86400
    return "2026-01-%02d %02d:%02d:%02d.%06d+00" % (
        day, s // 3600, (s // 60) % 60, s % 60, (x >> 20) % 1000000)


def row(seed, table, i, version):
    """One COPY line for row i; version 0 = day1, 1 = changed on day2."""
    d = h(seed, table, i, "" if version == 0 else "/v2")
    x = int.from_bytes(d[:8], "little")
    y = int.from_bytes(d[8:], "little")
    if table == "accounts":
        bal = 0 if version == 0 else (x % 20001) - 10000
        return "%d\t%d\t%d\t%s\n" % (i, i // 100000 + 1, bal, FILLER)
    if table == "orders":
        day = 1 if version == 0 else 2
        return "%d\t%d\t%d.%02d\t%s\t%s\t%s\n" % (
            i, x % 1000000, y % 100000, x % 100, STATUSES[(x >> 7) % len(STATUSES)],
            ts(y, day), d.hex())
    # docs: JSON as PostgreSQL's json_build_object prints it
    tags = ", ".join('"%s"' % TAGS[(x >> (4 * k)) % len(TAGS)] for k in range(1 + y % 3))
    return ('%d\t{"a" : %d, "b" : "%s", "c" : "%s", "n" : %d.%03d, "tags" : [%s], '
            '"active" : %s}\n') % (
        i, i, d.hex(), ts(x, 1 if version == 0 else 2), y % 100000, x % 1000, tags,
        "true" if x & 1 else "false")


def changed(seed, table, i, hot_zone, pattern):
    """Does row i change on day2? ~1 % of all rows either way."""
    v = int.from_bytes(h(seed, table, i, "/chg")[:2], "little")
    if pattern == "scattered":
        return v < 655  # 1 %
    return hot_zone and v < 6554  # 10 % of the newest 10 %


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mb", type=float, required=True)
    ap.add_argument("--day1", required=True)
    ap.add_argument("--day2", required=True)
    ap.add_argument("--seed", default="kando-bench-1")
    ap.add_argument("--pattern", choices=["hot", "scattered"], default="hot")
    a = ap.parse_args()
    target = int(a.size_mb * 1e6)

    f1 = open(a.day1 + ".tmp", "w", encoding="ascii", buffering=1 << 20)
    f2 = open(a.day2 + ".tmp", "w", encoding="ascii", buffering=1 << 20)
    both = (f1, f2)
    for f in both:
        f.write(HEADER)
    for name, _, ddl, _ in TABLES:
        for f in both:
            f.write("--\n-- Name: %s; Type: TABLE; Schema: public; Owner: postgres\n--\n\n%s\n"
                    % (name, ddl))
    for name, cols, _, share in TABLES:
        budget = int(target * share)
        head = "--\n-- Data for Name: %s; Type: TABLE DATA; Schema: public; Owner: postgres\n" \
               "--\n\nCOPY public.%s (%s) FROM stdin;\n" % (name, name, cols)
        for f in both:
            f.write(head)
        written = 0
        i = 0
        b1, b2 = [], []
        while written < budget:
            i += 1
            r = row(a.seed, name, i, 0)
            written += len(r)
            b1.append(r)
            hot = written > 0.9 * budget
            b2.append(row(a.seed, name, i, 1) if changed(a.seed, name, i, hot, a.pattern) else r)
            if len(b1) >= 4096:
                f1.write("".join(b1))
                f2.write("".join(b2))
                b1.clear()
                b2.clear()
        f1.write("".join(b1))
        f2.write("".join(b2))
        # day2 appends ~1 % new rows
        f2.write("".join(row(a.seed, name, j, 0) for j in range(i + 1, i + 1 + i // 100)))
        for f in both:
            f.write("\\.\n\n\n")
    for name, _, _, _ in TABLES:
        for f in both:
            f.write("ALTER TABLE ONLY public.%s\n    ADD CONSTRAINT %s_pkey PRIMARY KEY (%s);\n\n"
                    % (name, name, "aid" if name == "accounts" else "id"))
    for f in both:
        f.write("--\n-- PostgreSQL database dump complete\n--\n\n")
        f.close()
    os.replace(a.day1 + ".tmp", a.day1)
    os.replace(a.day2 + ".tmp", a.day2)


if __name__ == "__main__":
    main()
