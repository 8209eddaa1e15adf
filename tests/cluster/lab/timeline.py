"""Where a failover's time goes, from a kept lab's files (HAMAIL_KEEP_TEST_DIRS=1).

Reads <workdir>/faults.log (what the lab broke, when: lab.py's Lab.note) and every node's
Pacemaker log, and prints for each node crash or partition the milestones of the stores that ran
on that node, in seconds after the fault:

  lost      the first "Node X state is now lost" (Corosync's token + consensus: detection)
  fenced    the fencing of X reported OK
  promote   the store's DRBD stand-in promoted on the new node
  fs        its Filesystem started (mounted)
  ip        its IPaddr2 started
  daemon    ocf:hamail:backend's start returned (the daemon answers)

    python3 timeline.py [WORKDIR]          # default /tmp/hamail-lab

What the clients saw (the proxies' retries included) is test_stack's own measurement; this
script explains it.
"""

import datetime
import glob
import os
import re
import statistics
import sys

LINE = re.compile(r"^(\w{3} \d\d \d\d:\d\d:\d\d\.\d{3}) (\S+) (\S+)\s+\[\d+\] \(\w+\)\s+\w+: (.*)$")


def parse_time(stamp, year):
    t = datetime.datetime.strptime("%d %s" % (year, stamp), "%Y %b %d %H:%M:%S.%f")
    return t.timestamp()  # the logs are in the machine's local time, as time.time() is


def events(workdir):
    """(time, text) of every Pacemaker log line of every node, sorted."""
    year = datetime.date.today().year
    out = []
    for path in glob.glob(os.path.join(workdir, "node*", "log-pacemaker", "pacemaker.log")):
        with open(path, errors="replace") as f:
            for line in f:
                m = LINE.match(line)
                if m:
                    out.append((parse_time(m.group(1), year), m.group(4)))
    out.sort()
    return out


def faults(workdir):
    out = []
    try:
        with open(os.path.join(workdir, "faults.log")) as f:
            for line in f:
                t, kind, target = line.split()
                out.append((float(t), kind, target))
    except OSError:
        pass
    return out


def first(evs, since, until, pattern):
    rx = re.compile(pattern)
    for t, text in evs:
        if since <= t <= until and rx.search(text):
            return t
    return None


def stores_on(evs, node, before):
    """Stores whose daemon last started on `node` before `before`."""
    where = {}
    rx = re.compile(r"Result of start operation for (\S+)-mail on (\S+): ok")
    for t, text in evs:
        if t > before:
            break
        m = rx.search(text)
        if m:
            where[m.group(1)] = m.group(2)
    return sorted(s for s, n in where.items() if n == node)


def timeline(workdir):
    evs = events(workdir)
    rows = []
    all_faults = faults(workdir)
    for i, (t0, kind, node) in enumerate(all_faults):
        if kind not in ("crash", "partition", "failed-stop"):
            continue
        until = all_faults[i + 1][0] if i + 1 < len(all_faults) else t0 + 120
        lost = first(evs, t0, until, r"Node %s state is now lost" % node)
        fenced = first(evs, t0, until, r"Operation '(reboot|off)' targeting %s .*: OK" % node)
        for store in stores_on(evs, node, t0):
            after = fenced or lost or t0
            row = {"fault": kind, "node": node, "store": store, "t0": t0}
            row["lost"] = lost
            row["fenced"] = fenced
            row["promote"] = first(evs, after, until,
                                   r"Result of promote operation for %s-drbd on .*: ok" % store)
            for part in ("fs", "ip", "mail"):
                row[part] = first(evs, after, until,
                                  r"Result of start operation for %s-%s on .*: ok" % (store, part))
            rows.append(row)
    return rows


def main(argv):
    workdir = argv[0] if argv else "/tmp/hamail-lab"
    rows = timeline(workdir)
    if not rows:
        print("no node crash, partition or failed stop in %s/faults.log" % workdir)
        return 1
    keys = ("lost", "fenced", "promote", "fs", "ip", "mail")
    print("%-12s %-6s %-8s %s" % ("fault", "node", "store", "  ".join("%8s" % k for k in keys)))
    by_kind = {}
    for r in rows:
        cells = []
        for k in keys:
            cells.append("%8s" % ("-" if r[k] is None else "%.2f" % (r[k] - r["t0"])))
        print("%-12s %-6s %-8s %s" % (r["fault"], r["node"], r["store"], "  ".join(cells)))
        by_kind.setdefault(r["fault"], []).append(r)
    print("\nmedian seconds after the fault, by step (and the step's own share):")
    for kind, rs in by_kind.items():
        prev = 0.0
        parts = []
        for k in keys:
            vals = [r[k] - r["t0"] for r in rs if r[k] is not None]
            if not vals:
                continue
            m = statistics.median(vals)
            parts.append("%s %.2f (+%.2f)" % (k, m, m - prev))
            prev = m
        print("  %-12s n=%d: %s" % (kind, len(rs), ", ".join(parts)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
