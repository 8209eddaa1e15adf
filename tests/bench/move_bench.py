#!/usr/bin/env python3
"""Account move benchmark (issue 15): how long an account is unavailable while it moves, how
fast a move copies, and whether a drain honours its rate cap.

Runs the integration harness's MoveCluster (a real slapd, two hamail-backend stores with sync
listeners, a hamail-proxy) and then:

- `single`: an account with --messages messages is moved with `hamail-admin account move`
  while a prober logs in through the proxy every 20 ms (LOGIN, SELECT, LOGOUT) and a sender
  delivers through the proxy's SMTP every 20 ms. Reports the move's passes, files, bytes,
  seconds, messages/s and MB/s, the lock the admin tool measured (locked_ms), and what the
  clients saw: the longest wait of one login or one delivery, and the longest gap between two
  successful logins.
- `drain`: --accounts accounts of --drain-messages messages each on store-a, drained to
  store-b with `store drain --rate`; reports the bytes copied, the time, and the achieved rate
  against the cap.

Prints one JSON line per workload; --json FILE keeps them. Needs HAMAIL_BACKEND, HAMAIL_PROXY,
HAMAIL_ADMIN (a release build: cmake --preset release).
"""

import argparse
import json
import os
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))
from move_cluster import MoveCluster, deliver_until  # noqa: E402


class Prober:
    """Logins and deliveries through the proxy while a move runs: the longest single wait and
    the longest gap between two successes of each kind."""

    def __init__(self, cluster, user):
        self.cluster, self.user = cluster, user
        self.stop = threading.Event()
        self.login_wait = self.login_gap = self.smtp_wait = self.smtp_gap = 0.0
        self.logins = self.deliveries = self.failures = self.permanent = 0

    def logins_loop(self):
        last = time.monotonic()
        while not self.stop.is_set():
            t = time.monotonic()
            try:
                m = self.cluster.client(self.user)
                m.select("INBOX", readonly=True)
                m.logout()
                now = time.monotonic()
                self.login_wait = max(self.login_wait, now - t)
                self.login_gap = max(self.login_gap, now - last)
                last = now
                self.logins += 1
            except Exception:  # noqa: BLE001 - any failure counts, the loop goes on
                self.failures += 1
            time.sleep(0.02)

    def smtp_loop(self):
        self.last_delivery = time.monotonic()
        deliver_until(self.cluster, self.user, self.stop, self.record, first=2_000_000)

    def record(self, _n, code, seconds):
        if code != 250:
            self.failures += 1
            self.permanent += isinstance(code, int) and code >= 500
            return
        now = time.monotonic()
        self.smtp_wait = max(self.smtp_wait, seconds)
        self.smtp_gap = max(self.smtp_gap, now - self.last_delivery)
        self.last_delivery = now
        self.deliveries += 1

    def __enter__(self):
        self.threads = [threading.Thread(target=self.logins_loop),
                        threading.Thread(target=self.smtp_loop)]
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(120)


def single(args, emit):
    c = MoveCluster({"mover": ("mover-secret", "store-a")}).start()
    try:
        t = time.monotonic()
        c.fill("mover", args.messages, size=args.size)
        filled = time.monotonic() - t
        with Prober(c, "mover") as p:
            time.sleep(2)
            t = time.monotonic()
            rc, out = c.move("mover", "store-b", "--grace", "0")
            took = time.monotonic() - t
            time.sleep(2)
        if rc != 0:
            raise SystemExit("move failed: %s" % out)
        emit({"workload": "single", "messages": args.messages, "fill_s": round(filled, 1),
              "move_s": round(took, 2), "passes": out["passes"], "files": out["files"],
              "pass_files": out.get("pass_files"),
              "bytes": out["bytes"], "locked_ms": out["locked_ms"],
              "messages_per_s": round(args.messages / took, 1),
              "mb_per_s": round(out["bytes"] / took / 1e6, 2),
              "login_wait_max_s": round(p.login_wait, 3), "login_gap_max_s": round(p.login_gap, 3),
              "smtp_wait_max_s": round(p.smtp_wait, 3), "smtp_gap_max_s": round(p.smtp_gap, 3),
              "logins": p.logins, "deliveries": p.deliveries, "failures": p.failures,
              "permanent": p.permanent})
    finally:
        c.stop()


def drain(args, emit):
    users = {"d%04d" % i: ("drain-secret", "store-a") for i in range(args.accounts)}
    c = MoveCluster(users).start()
    try:
        for u in users:
            c.fill(u, args.drain_messages, folders=False, size=args.size)
        t = time.monotonic()
        r = c.admin("store", "drain", "store-a", "--rate", str(args.rate), "--grace", "0",
                    "--concurrency", str(args.concurrency), "--json")
        took = time.monotonic() - t
        out = json.loads(r.stdout) if r.returncode == 0 else {"error": r.stdout + r.stderr}
        copied = sum(os.path.getsize(os.path.join(d, f))
                     for d, _, files in os.walk(c.backends["store-b"].data_dir) for f in files)
        emit({"workload": "drain", "accounts": args.accounts, "messages_each": args.drain_messages,
              "rc": r.returncode, "moved": out.get("moved"), "drain_s": round(took, 1),
              "bytes_on_destination": copied, "rate_cap": args.rate,
              "achieved_bytes_per_s": round(copied / took), "cap_honoured": copied / took
              <= args.rate * 1.05})
    finally:
        c.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workloads", default="single,drain")
    ap.add_argument("--messages", type=int, default=10000)
    ap.add_argument("--size", type=int, default=2000, help="octets per message (about)")
    ap.add_argument("--accounts", type=int, default=1000, help="accounts of the drain")
    ap.add_argument("--drain-messages", type=int, default=20)
    ap.add_argument("--rate", type=int, default=10 * 1024 * 1024, help="drain cap, bytes/s")
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--json")
    args = ap.parse_args()
    lines = []

    def emit(d):
        print(json.dumps(d), flush=True)
        lines.append(d)

    for w in args.workloads.split(","):
        {"single": single, "drain": drain}[w](args, emit)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(lines, f, indent=1)


if __name__ == "__main__":
    main()
