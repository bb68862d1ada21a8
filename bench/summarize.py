#!/usr/bin/env python3
"""Turn bench.sh's raw TSV into a Markdown report (medians per tool and scenario).

    summarize.py RESULTS.tsv META.txt > report.md
"""
import csv
import statistics
import sys

SCEN_ORDER = ["push-day1", "push-day1-again", "push-day2", "pull-day1"]
TOOL_ORDER = ["kando", "kando-enc", "restic", "borg", "borg-zstd3"]
SCEN_TEXT = {
    "push-day1": "day1 into an empty repository",
    "push-day1-again": "day1 again (all data already known)",
    "push-day2": "day2 after day1 (the next day's dump)",
    "pull-day1": "restore day1 to /dev/null",
}


def num(x):
    try:
        return float(x)
    except (TypeError, ValueError):
        return None


def med(rows, key):
    vals = [num(r[key]) for r in rows]
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def fmt_bytes(b):
    return "–" if b is None else "{:,}".format(int(round(b)))


def main():
    tsv, meta = sys.argv[1], sys.argv[2]
    with open(tsv, newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    with open(meta) as f:
        meta_lines = [l.rstrip("\n") for l in f]

    out = []
    w = out.append
    w("# kando / restic / borg benchmark")
    w("")
    for l in meta_lines:
        w("- " + l)
    w("")

    backends = [b for b in ("local", "s3") if any(r["backend"] == b for r in rows)]
    for backend in backends:
        w("## %s" % ("local directory repository" if backend == "local" else "S3 repository"))
        w("")
        w("| tool | scenario | wall s | MB/s | CPU s (user+sys) | peak RSS MiB | repo bytes after | bytes added | added / input | load1 | runs ok |")
        w("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        tools = [t for t in TOOL_ORDER if any(r["tool"] == t for r in rows)]
        tools += sorted({r["tool"] for r in rows} - set(tools))
        for tool in tools:
            for scen in SCEN_ORDER:
                sel = [r for r in rows if r["backend"] == backend and r["tool"] == tool
                       and r["scenario"] == scen]
                if not sel:
                    continue
                ok = [r for r in sel if r["status"] == "ok"]
                nok = "%d/%d" % (len(ok), len(sel))
                if not ok:
                    w("| %s | %s | FAIL | | | | | | | | %s |" % (tool, scen, nok))
                    continue
                wall = med(ok, "wall_s")
                logical = med(ok, "logical_bytes")
                cpu = statistics.median(
                    [(num(r["user_s"]) or 0) + (num(r["sys_s"]) or 0) for r in ok])
                rss = med(ok, "maxrss_kb")
                after = med(ok, "repo_after")
                added = statistics.median(
                    [num(r["repo_after"]) - num(r["repo_before"]) for r in ok
                     if num(r["repo_after"]) is not None and num(r["repo_before"]) is not None]
                    or [float("nan")])
                mbps = logical / wall / 1e6 if wall and logical else None
                is_push = scen.startswith("push")
                w("| %s | %s | %.2f | %s | %.2f | %s | %s | %s | %s | %s | %s |" % (
                    tool, scen, wall, "%.0f" % mbps if mbps else "–", cpu,
                    "%.0f" % (rss / 1024) if rss else "–",
                    fmt_bytes(after),
                    fmt_bytes(added) if is_push and added == added else "–",
                    "%.2f %%" % (100 * added / logical) if is_push and added == added and logical else "–",
                    "%.1f" % med(ok, "load1") if med(ok, "load1") is not None else "–",
                    nok))
        w("")
        ver = [r for r in rows if r["backend"] == backend and r["scenario"].startswith("verify-")]
        if ver:
            w("Restore check (sha256 of what pull wrote vs the input, one untimed run): " + "; ".join(
                "%s %s %s" % (r["tool"], r["scenario"][len("verify-"):], r["status"]) for r in ver))
            w("")
        notes = [r for r in rows if r["backend"] == backend and r["note"] and r["scenario"].startswith("push")]
        if notes:
            w("kando's own report (physicalSize) per push: " + "; ".join(
                "%s #%s %s" % (r["scenario"], r["run"], r["note"]) for r in notes))
            w("")

    w("Columns: wall s, CPU s, peak RSS and the byte counts are medians over the successful runs. "
      "MB/s = bytes of the dump (10^6) / wall s. CPU s = user + system time of the tool's process; "
      "on 2 cores a value above wall s means both cores were busy. peak RSS = max resident set "
      "size of the tool (GNU time -v). repo bytes = `du -sb` of the repository (S3: sum of object "
      "sizes under the prefix) after the step, not counting client caches. bytes added = growth of "
      "the repository during the step. load1 = 1-minute load average just before the step "
      "(> 0 means something else was running).")
    w("")
    w("Scenarios: " + "; ".join("**%s**: %s" % (k, v) for k, v in SCEN_TEXT.items()) + ".")
    print("\n".join(out))


if __name__ == "__main__":
    main()
