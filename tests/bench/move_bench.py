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

- `dsync`: the same job done by Dovecot's own tool, for comparison; no hamail binary and no
  MoveCluster. Two Dovecot 2.3 instances (imap_bench's DovecotPeer: maildir, mail_fsync =
  always), A and B, each with a doveadm server on a loopback TLS port (self-made certificate,
  B trusts A's with ssl_client_ca_file; "transport": "tcps"). A's account gets --messages
  messages of about --size octets as `single` fills hamail (fill_account(): flags, two
  folders, every 100th expunged; IMAP MULTIAPPEND), then on B `doveadm backup -R -u USER
  tcps:localhost:PORT_A` pulls the account: copy_s is that first, full pass, with
  messages_per_s (--messages / copy_s) and mb_per_s (A's message files' bytes / copy_s).
  20 messages are then APPENDed on A and incremental_s is a second pass. "identical": B's
  INBOX holds what A's does, and every mailbox's messages, UIDVALIDITY, UIDNEXT and GUID and
  every message's UID and flags are the same on both (doveadm mailbox status, doveadm fetch).

  The comparable hamail figure is `single`'s first copy pass; the admin tool times the move
  only as a whole (move_s, every pass and the locked final one), so compare copy_s with
  move_s, reading pass_files for how much the later passes copied. Dovecot's copy here runs
  without clients; `single`'s runs under the prober's logins and deliveries.

Prints one JSON line per workload; --json FILE keeps them. `single` and `drain` need
HAMAIL_BACKEND, HAMAIL_PROXY, HAMAIL_ADMIN (a release build: cmake --preset release); `dsync`
needs root and dovecot-imapd (cmake/install-deps.sh --bench), like imap_bench.py's Dovecot.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))
from imap_bench import DOMAIN, PASSWORD, DovecotPeer, dovecot_version, free_port  # noqa: E402
from move_cluster import MoveCluster, RawImap, deliver_until, fill_account, message  # noqa: E402


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
              "pass_files": out.get("pass_files"), "pass_ms": out.get("pass_ms"),
              "first_pass_messages_per_s": round(args.messages / out["pass_ms"][0] * 1000, 1),
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
        try:
            out = json.loads(r.stdout)
        except ValueError:
            out = {}
        if r.returncode != 0:
            out["error"] = (r.stdout + r.stderr)[-2000:]
        copied = sum(os.path.getsize(os.path.join(d, f))
                     for d, _, files in os.walk(c.backends["store-b"].data_dir) for f in files)
        emit({"workload": "drain", "accounts": args.accounts, "messages_each": args.drain_messages,
              "rc": r.returncode, "moved": out.get("moved"), "drain_s": round(took, 1),
              "bytes_on_destination": copied, "rate_cap": args.rate,
              "achieved_bytes_per_s": round(copied / took), "cap_honoured": copied / took
              <= args.rate * 1.05, **({"error": out["error"]} if "error" in out else {})})
    finally:
        c.stop()


class DsyncPeer(DovecotPeer):
    """imap_bench's Dovecot (maildir, mail_fsync = always, one passwd-file account) with a
    doveadm server on a loopback TLS port (`doveadm_password` checks the client), a "/"
    separator so fill_account's "Archive/2024" is a folder in a folder, and `ca` trusted by
    doveadm as a TLS client (the other instance's self-made certificate)."""

    def __init__(self, workdir, ca, secret):
        os.makedirs(workdir)
        super().__init__(workdir, argparse.Namespace(accounts=1, idle=0, workloads="dsync"))
        self.doveadm_port = free_port()
        self.extra_conf = """doveadm_port = {port}
doveadm_password = {secret}
ssl_client_ca_file = {ca}
namespace inbox {{
  inbox = yes
  separator = /
}}
service doveadm {{
  inet_listener doveadm-tls {{
    address = 127.0.0.1
    port = {port}
    ssl = yes
  }}
}}
""".format(port=self.doveadm_port, secret=secret, ca=ca)

    def doveadm(self, *args, check=True):
        r = subprocess.run(["doveadm", "-c", self.conf] + list(args), capture_output=True,
                           text=True, timeout=3600)
        if check and r.returncode != 0:
            raise SystemExit("doveadm %s: rc %d: %s" % (" ".join(args), r.returncode, r.stderr))
        return r

    def state(self, user):
        """What must be the same after a backup: each mailbox's counters and GUID, each
        message's mailbox, UID and flags (without the per-session \\Recent)."""
        boxes = self.doveadm("-f", "tab", "mailbox", "status", "-u", user,
                             "messages uidvalidity uidnext guid", "*").stdout
        mails = self.doveadm("-f", "tab", "fetch", "-u", user, "mailbox uid flags", "ALL").stdout
        mails = sorted(line.replace("\\Recent", "").strip() for line in mails.splitlines())
        return sorted(boxes.splitlines()), mails

    def message_bytes(self):
        return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(self.mail_root)
                   if os.path.basename(d) in ("cur", "new") for f in files)


def dsync(args, emit):
    """Dovecot's own account copy: `doveadm backup -R` on B pulls the account from A's doveadm
    server over TLS (no MoveCluster, no hamail binaries)."""
    tmp = tempfile.mkdtemp(prefix="hamail-dsync-")
    os.chmod(tmp, 0o755)
    secret = "dsync-bench-secret"
    user = "user000@" + DOMAIN
    ca = os.path.join(tmp, "a", "server.pem")  # A's certificate (make_cert), trusted by B
    a = b = None
    try:
        a = DsyncPeer(os.path.join(tmp, "a"), ca, secret)
        a.start()
        b = DsyncPeer(os.path.join(tmp, "b"), ca, secret)
        b.start()
        t = time.monotonic()
        fill_account(RawImap(a.plain, ca, user, PASSWORD), user, args.messages, size=args.size)
        filled = time.monotonic() - t
        source = "tcps:localhost:%d" % a.doveadm_port

        def backup():
            t = time.monotonic()
            r = b.doveadm("backup", "-R", "-u", user, source, check=False)
            if r.returncode not in (0, 2):
                raise SystemExit("doveadm backup: rc %d: %s" % (r.returncode, r.stderr))
            return time.monotonic() - t, r.returncode

        took, rc1 = backup()
        size = a.message_bytes()
        raw = RawImap(a.plain, ca, user, PASSWORD)
        raw.append_many("INBOX", [("", "03-Dec-2026 10:00:00 +0000", message(3_000_000 + i))
                                  for i in range(20)])
        raw.close()
        incremental, rc2 = backup()
        on_b = int(b.doveadm("-f", "flow", "mailbox", "status", "-u", user, "messages",
                             "INBOX").stdout.split("=")[1])
        expected = args.messages - args.messages // 100 + 20
        emit({"workload": "dsync", "peer": "Dovecot " + dovecot_version(),
              "transport": source.split(":")[0],
              "messages": args.messages, "fill_s": round(filled, 1), "copy_s": round(took, 2),
              "bytes": size, "messages_per_s": round(args.messages / took, 1),
              "mb_per_s": round(size / took / 1e6, 2), "incremental_messages": 20,
              "incremental_s": round(incremental, 2), "rc": [rc1, rc2], "inbox_on_b": on_b,
              "inbox_expected": expected,
              "identical": on_b == expected and a.state(user) == b.state(user)})
    finally:
        for peer in (b, a):
            if peer is not None:
                peer.stop()
        shutil.rmtree(tmp, ignore_errors=True)


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
        {"single": single, "drain": drain, "dsync": dsync}[w](args, emit)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(lines, f, indent=1)


if __name__ == "__main__":
    main()
