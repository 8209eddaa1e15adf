"""Power cuts: hamail-backend runs in a qemu guest (guest.py) on an ext4 virtual
disk while clients pipeline deliveries over LMTP and SMTP; at a random moment
the test SIGKILLs qemu, which is a power cut for the guest: every write still in
the guest's page cache is gone. After each cut the disk is read on the host
(e2fsck replays the journal on a copy, debugfs copies the store out, and
powercut_check opens it with hamail's own store code, which runs its index
recovery and reads every message back). Every message that got its 250 must be
there exactly once and byte for byte complete, every message the store has must
be complete, and every index must agree with the files. The next boot continues
on the same disk, so later cuts also test recovery from earlier ones.

Unlike tests/integration/test_crash_durability.py (SIGKILL of the daemon, after
which the kernel still writes the page cache out), this test fails when a sync
is missing: HAMAIL_POWERCUT_FSYNC=false runs the guest with `[store] fsync =
false` to show it.

Environment: HAMAIL_POWERCUT_CUTS (default 20), HAMAIL_POWERCUT_FSYNC
(true/false), HAMAIL_POWERCUT_SEED (random when unset; printed),
HAMAIL_KEEP_TEST_DIRS=1 keeps the work directory (disk image, consoles)."""

import hashlib
import os
import random
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import unittest

import guest as G

BACKEND = os.environ.get("HAMAIL_BACKEND", "")
CHECK = os.environ.get("HAMAIL_POWERCUT_CHECK", "")
CUTS = int(os.environ.get("HAMAIL_POWERCUT_CUTS", "20"))
FSYNC = os.environ.get("HAMAIL_POWERCUT_FSYNC", "true").lower() not in ("false", "0", "no", "off")
SEED = int(os.environ.get("HAMAIL_POWERCUT_SEED") or random.SystemRandom().randrange(1 << 30))

ACCOUNTS = ["acct%d" % i for i in range(4)]
LMTP_CLIENTS = 4
SMTP_CLIENTS = 2
GUEST_PORTS = {"lmtp": 24, "smtp": 25}
# A cut comes after this many acknowledgements in the boot (uniformly drawn), then a random
# fraction of a second more, so it can land anywhere in a delivery; at the latest after
# ROUND_LIMIT seconds of delivery.
ACKS_BEFORE_CUT = (5, 60)
ROUND_LIMIT = 60.0

TOKEN = re.compile(rb"X-Test-Token: m(\d+)\r\n")
SUM = re.compile(rb"X-Body-SHA256: ([0-9a-f]{64})\r\n")


def body_for(n):
    """Message n: unique Message-ID and token, 0.3 to ~20 KB, with the SHA-256 of its body."""
    rng = random.Random(n)
    lines = ["line %d of m%d %s" % (i, n, hashlib.sha1(b"%d-%d" % (n, i)).hexdigest())
             for i in range(rng.randint(4, 300))]
    body = ("\r\n".join(lines) + "\r\n").encode()
    head = ("From: load@remote.test\r\nTo: %s@example.org\r\nMessage-ID: <m%d@powercut.test>\r\n"
            "X-Test-Token: m%d\r\nX-Body-SHA256: %s\r\nSubject: m%d\r\n\r\n"
            % (ACCOUNTS[n % len(ACCOUNTS)], n, n, hashlib.sha256(body).hexdigest(), n)).encode()
    return head + body


def unavailable_reason():
    missing = G.missing_tools()
    return ", ".join(missing) if missing else None


def guest_config(fsync):
    listeners = "".join('[[listener]]\nname = "%s"\nprotocol = "%s"\naddress = "0.0.0.0"\nport = %d\n'
                        'tls = "none"\n' % (name, name, port) for name, port in GUEST_PORTS.items())
    return ('[store]\nname = "store-a"\ndata_dir = "/data/store"\nhostname = "guest.test"\n'
            'runtime_dir = "/run/hamail"\nfsync = %s\n\n'
            '[directory]\ntype = "file"\naccounts_file = "/etc/hamail/accounts.toml"\n\n'
            '[log]\nlevel = "notice"\n\n%s' % ("true" if fsync else "false", listeners))


def accounts_file():
    return "".join('[[account]]\nid = "%s"\naddress = "%s@example.org"\nstore = "store-a"\n' % (a, a)
                   for a in ACCOUNTS)


class delivery_round:
    """Clients that deliver new messages to the booted guest until it loses power."""

    def __init__(self, ports, numbers, lock):
        self.ports = ports
        self.numbers = numbers  # shared iterator of message numbers
        self.lock = lock
        self.acked = []
        self.unacked = []  # sent (at least partly) without a 250: may or may not be stored
        self.refused = []  # a reply that is neither success nor the connection dying
        self.acked_by = {"lmtp": 0, "smtp": 0}
        self.acked_event = threading.Condition(lock)
        self.threads = []

    def start(self):
        for i in range(LMTP_CLIENTS + SMTP_CLIENTS):
            t = threading.Thread(target=self.client, args=(i < LMTP_CLIENTS,), daemon=True)
            t.start()
            self.threads.append(t)

    def join(self, timeout=60):
        for t in self.threads:
            t.join(timeout)
        return not any(t.is_alive() for t in self.threads)

    def running(self):
        return any(t.is_alive() for t in self.threads)

    def client(self, lmtp):
        try:
            s = socket.create_connection(("127.0.0.1", self.ports["lmtp" if lmtp else "smtp"]), timeout=90)
        except OSError:
            return
        f = s.makefile("rb")

        def reply():
            code = None
            while True:
                line = f.readline()
                if not line:
                    raise EOFError()
                code = int(line[:3])
                if line[3:4] != b"-":
                    return code

        n = None
        try:
            if reply() != 220:
                return
            s.sendall(b"LHLO load.test\r\n" if lmtp else b"EHLO load.test\r\n")
            if reply() != 250:
                return
            while True:
                with self.lock:
                    n = next(self.numbers)
                to = ACCOUNTS[n % len(ACCOUNTS)]
                # PIPELINING: the envelope and DATA in one write.
                s.sendall(b"MAIL FROM:<load@remote.test>\r\nRCPT TO:<%s@example.org>\r\nDATA\r\n" % to.encode())
                codes = [reply(), reply(), reply()]
                if codes != [250, 250, 354]:
                    with self.lock:
                        self.refused.append((n, codes))
                    return
                with self.lock:
                    self.unacked.append(n)  # until its 250 arrives
                s.sendall(body_for(n) + b".\r\n")
                code = reply()
                with self.lock:
                    if code == 250:
                        self.unacked.remove(n)
                        self.acked.append(n)
                        self.acked_by["lmtp" if lmtp else "smtp"] += 1
                        self.acked_event.notify_all()
                    else:
                        self.refused.append((n, [code]))
                        return
        except (OSError, EOFError, ValueError):
            pass  # the power went: whatever was in flight stays unacknowledged
        finally:
            s.close()
            with self.lock:
                self.acked_event.notify_all()  # the waiter also stops when every client has


@unittest.skipIf(unavailable_reason(), "power-cut guest unavailable: %s" % unavailable_reason())
class power_cut_test(unittest.TestCase):
    def setUp(self):
        if not BACKEND or not CHECK:
            self.fail("HAMAIL_BACKEND and HAMAIL_POWERCUT_CHECK must name the built programs")
        self.dir = tempfile.mkdtemp(prefix="hamail-powercut-")
        self.guest = None

    def tearDown(self):
        if self.guest is not None:
            self.guest.cut()
        if os.environ.get("HAMAIL_KEEP_TEST_DIRS"):
            print("work directory kept: %s" % self.dir)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)

    def check_disk(self, cut, acked, sent):
        """Reads the store off the disk after cut `cut`; returns (messages stored, recovery notes)
        and fails the test on any lost, duplicated, damaged or unreadable message."""
        where = os.path.join(self.dir, "cut-%d" % cut)
        self.guest.read_store(where)
        dump = os.path.join(where, "dump")
        r = subprocess.run([CHECK, os.path.join(where, "store"), dump] + ACCOUNTS, capture_output=True, text=True)
        notes = [line for line in r.stdout.splitlines() if line.startswith("before-recovery ")]
        seen = {}
        damaged = set()  # message numbers stored incomplete or altered
        contentless = []  # stored messages whose content is gone (not even the test token left)
        problems = []
        if r.returncode != 0:
            problems.append("powercut_check (hamail's store code) exited with %d:\n    %s" % (
                r.returncode, "\n    ".join([line for line in r.stderr.splitlines()
                                               if line.startswith("powercut_check:")][:20])))
        for line in r.stdout.splitlines():
            if not line.startswith("message "):
                continue
            _, account, box, uid, size, name = line.split(" ", 5)
            with open(os.path.join(dump, account, "%s-%s" % (box, uid)), "rb") as f:
                data = f.read()
            t = TOKEN.search(data)
            if t is None:
                contentless.append("%s %s uid %s (%d octets)" % (account, name, uid, len(data)))
                continue
            n = int(t.group(1))
            seen.setdefault(n, []).append((account, name, uid))
            if not data.endswith(body_for(n)):
                damaged.add(n)
                problems.append("m%d (%s uid %s): incomplete or altered, %d octets" % (n, account, uid, len(data)))
            if account != ACCOUNTS[n % len(ACCOUNTS)] or name != "INBOX":
                problems.append("m%d stored in %s %s" % (n, account, name))
        if contentless:
            problems.append("%d stored messages have lost their content: %s" % (
                len(contentless), ", ".join(contentless[:10])))
        lost = sorted(n for n in acked if n not in seen)
        if lost:
            problems.append("%d acknowledged messages are lost: %s" % (
                len(lost), ", ".join("m%d (cut %d)" % (n, acked[n]) for n in lost[:30])))
        for n, where_ in sorted(seen.items()):
            if len(where_) > 1:
                problems.append("m%d stored %d times: %s" % (n, len(where_), where_))
            if n not in sent:
                problems.append("m%d stored but never sent" % n)
        damaged_acked = len([n for n in damaged if n in acked])
        if problems:
            self.fail("after cut %d of %d: %d of %d acknowledged messages lost, %d damaged (fsync=%s, seed %d):\n"
                      "  %s\n-- recovery found:\n  %s\n-- guest console:\n%s" % (
                          cut, CUTS, len(lost), len(acked), damaged_acked, FSYNC, SEED,
                          "\n  ".join(problems[:40]), "\n  ".join(notes[:20]),
                          self.guest.console_text(2000)))
        if not os.environ.get("HAMAIL_KEEP_TEST_DIRS"):
            shutil.rmtree(where)  # kept above when the check fails
        return seen, notes

    def test_no_acknowledged_message_lost_across_power_cuts(self):
        rng = random.Random(SEED)
        print("\npower-cut test: %d cuts, fsync=%s, seed %d" % (CUTS, FSYNC, SEED))
        # Room for every message the cuts deliver (under 1 MB per cut), in a sparse image.
        prepared = time.monotonic()
        self.guest = G.Guest(self.dir, BACKEND, guest_config(FSYNC), accounts_file(), GUEST_PORTS,
                             disk_mb=512 + 4 * CUTS)
        print("guest prepared in %.1f s (kernel %s, initramfs %d MB)" % (
            time.monotonic() - prepared, self.guest.kernel, os.path.getsize(self.guest.initramfs) >> 20))
        lock = threading.Lock()
        numbers = iter(range(10 ** 9))
        acked = {}  # message number -> the cut it was acknowledged before
        sent = set()
        total_started = time.monotonic()
        per_cut = []
        acked_by = {"lmtp": 0, "smtp": 0}
        for cut in range(1, CUTS + 1):
            started = time.monotonic()
            self.guest.boot()
            booted = time.monotonic()
            round_ = delivery_round(self.guest.host_ports, numbers, lock)
            target = rng.randint(*ACKS_BEFORE_CUT)
            round_.start()
            with lock:
                round_.acked_event.wait_for(lambda: len(round_.acked) >= target or not round_.running(),
                                            timeout=ROUND_LIMIT)
            time.sleep(rng.uniform(0, 0.5))
            alive = self.guest.alive()
            self.guest.cut()
            cut_at = time.monotonic()
            self.assertTrue(round_.join(), "a client did not notice the power cut")
            self.assertTrue(alive, "the guest stopped by itself before cut %d:\n%s" % (
                cut, self.guest.console_text()))
            self.assertEqual([], round_.refused[:5], "deliveries refused before cut %d:\n%s" % (
                cut, self.guest.console_text()))
            self.assertGreater(len(round_.acked), 0, "no delivery acknowledged before cut %d:\n%s" % (
                cut, self.guest.console_text()))
            for n in round_.acked:
                acked[n] = cut
            for proto, count in round_.acked_by.items():
                acked_by[proto] += count
            sent.update(round_.acked)
            sent.update(round_.unacked)
            seen, notes = self.check_disk(cut, acked, sent)
            checked = time.monotonic()
            stored_unacked = sum(1 for n in round_.unacked if n in seen)
            per_cut.append(checked - started)
            print("cut %2d: %3d acked this boot (%d in flight at the cut, %d of those stored), %4d acked in all, "
                  "%4d stored, 0 lost; boot %.1f s, delivery %.1f s, check %.1f s; recovery found %d "
                  "discrepancies" % (cut, len(round_.acked), len(round_.unacked), stored_unacked, len(acked),
                                     len(seen), booted - started, cut_at - booted, checked - cut_at, len(notes)))
            for note in notes:
                print("        " + note[len("before-recovery "):])
        elapsed = time.monotonic() - total_started
        self.assertTrue(all(acked_by.values()), "both protocols must have delivered: %s" % acked_by)
        print("power-cut test: %d cuts, %d acknowledged messages (LMTP %d, SMTP %d), 0 lost, every mailbox "
              "readable; %.0f s in all, per cut min %.1f s, median %.1f s, max %.1f s (fsync=%s, seed %d)" % (
                  CUTS, len(acked), acked_by["lmtp"], acked_by["smtp"], elapsed, min(per_cut),
                  sorted(per_cut)[len(per_cut) // 2], max(per_cut), FSYNC, SEED))


if __name__ == "__main__":
    unittest.main()
