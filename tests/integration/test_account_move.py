"""Online account moves (issue 15, docs/adr/0005-account-moves.md): a real slapd, two
hamail-backend stores with sync listeners, a hamail-proxy in front, hamail-admin moving an
account while a client is logged in through the proxy and mail is delivered to it through the
proxy's SMTP. Afterwards every message is on the destination once with its UID, flags, keywords,
date, size and modseq; a QRESYNC client sees only what changed; the old copy is gone after the
grace period; no delivery got a permanent error.

HAMAIL_MOVE_MESSAGES sets the INBOX size (default 10,000)."""

import imaplib
import os
import re
import threading
import time
import unittest

from move_cluster import MoveCluster, deliver_until, mailbox_state

MESSAGES = int(os.environ.get("HAMAIL_MOVE_MESSAGES", "10000"))
MAILBOXES = ("INBOX", "Archive/2024", "Sent")


def qresync(m, uidvalidity, modseq):
    """SELECT INBOX (QRESYNC (uidvalidity modseq)) on a session in the authenticated state:
    (the VANISHED (EARLIER) lines, the UIDs of the FETCH responses)."""
    if m.state == "SELECTED":
        m.close()  # ENABLE is for the authenticated state
    # imaplib keeps the proxy's pre-login capabilities: ask the store's.
    m.capabilities = tuple(m.capability()[1][-1].decode().upper().split())
    if "QRESYNC" not in getattr(m, "_enabled", set()):
        m.enable("QRESYNC")
        m._enabled = {"QRESYNC"}
    typ, _ = m.select("INBOX (QRESYNC (%d %d))" % (uidvalidity, modseq), readonly=True)
    assert typ == "OK"
    changed = set()
    for item in m.untagged_responses.pop("FETCH", []):
        line = item.decode() if isinstance(item, bytes) else item[0].decode()
        changed.add(int(re.search(r"UID (\d+)", line).group(1)))
    vanished = m.untagged_responses.pop("VANISHED", [])
    m.close()
    return vanished, changed


class Activity:
    """While a move runs: SMTP deliveries to `user` through the proxy (every 20 ms, a connection
    each) and an IMAP client through the proxy that stays logged in (NOOP every 50 ms) and logs
    in again whenever its session ends."""

    def __init__(self, cluster, user):
        self.cluster, self.user = cluster, user
        self.stop_event = threading.Event()
        self.acked, self.temporary, self.permanent = [], [], []
        self.reconnects, self.errors, self.why = 0, [], []
        self.longest_login_gap = 0.0
        self.threads = [threading.Thread(target=self.deliver), threading.Thread(target=self.read)]

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop_event.set()
        for t in self.threads:
            t.join(60)

    def deliver(self):
        deliver_until(self.cluster, self.user, self.stop_event, self.record)

    def record(self, n, code, _seconds):
        if code == 250:
            self.acked.append(n)
        elif isinstance(code, int) and code >= 500:
            self.permanent.append((n, code))
        else:
            self.temporary.append((n, code))

    def read(self):
        m = None
        last_ok = time.monotonic()
        while not self.stop_event.is_set():
            try:
                if m is None:
                    m = self.cluster.client(self.user)
                    m.select("INBOX")
                m.noop()
                now = time.monotonic()
                self.longest_login_gap = max(self.longest_login_gap, now - last_ok)
                last_ok = now
                time.sleep(0.05)
            except (imaplib.IMAP4.abort, OSError) as e:
                self.reconnects += 1
                self.why.append(str(e)[:80])
                m = None
            except imaplib.IMAP4.error as e:
                self.errors.append(str(e))
                m = None
        if m is not None:
            m.logout()


class account_move_test(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.cluster = MoveCluster({"mover": ("mover-secret", "store-a"),
                                   "stay": ("stay-secret", "store-b"),
                                   "unused": ("unused-secret", "store-a")}).start()

    @classmethod
    def tearDownClass(cls):
        cls.cluster.stop()

    def test_move_while_in_use(self):
        c = self.cluster
        started = time.monotonic()
        c.fill("mover", MESSAGES)
        print("\nfilled %d messages in %.1f s" % (MESSAGES, time.monotonic() - started),
              flush=True)
        m = c.client("mover")
        before = {mb: mailbox_state(m, mb) for mb in MAILBOXES}
        typ, subs = m.lsub('""', "*")
        subscribed_before = sorted(x.decode() for x in subs if x)
        uv, un, hm, msgs = before["INBOX"]
        vanished_before, changed_before = qresync(m, uv, hm)
        m.logout()

        with Activity(c, "mover") as activity:
            time.sleep(1)
            t0 = time.monotonic()
            rc, out = c.move("mover", "store-b", "--grace", "2s")
            took = time.monotonic() - t0
            time.sleep(1)
        print("moved in %.1f s: %s; deliveries acked %d, temporary %d; reader reconnects %d, "
              "longest gap between NOOPs %.2f s %s"
              % (took, out, len(activity.acked), len(activity.temporary), activity.reconnects,
                 activity.longest_login_gap, activity.why[:3]), flush=True)
        self.assertEqual(0, rc, out)
        self.assertEqual((out["from"], out["to"], out["moved"], out["data_moved"], out["purged"]),
                         ("store-a", "store-b", True, True, True))
        self.assertIsNotNone(out["locked_ms"])
        self.assertEqual([], activity.permanent, "no delivery may get a permanent error")
        self.assertEqual([], activity.errors)
        self.assertGreater(len(activity.acked), 0)

        self.assertEqual(("store-b", None), c.owning_store("mover"))
        # The old copy is gone after the grace period.
        self.assertIsNone(c.backends["store-a"].maildir("mover"))

        m = c.client("mover")
        after = {mb: mailbox_state(m, mb) for mb in MAILBOXES}
        for mb in MAILBOXES:
            uv, un, hm, msgs = before[mb]
            uv2, un2, hm2, msgs2 = after[mb]
            self.assertEqual(uv, uv2, mb)
            self.assertGreaterEqual(un2, un, mb)
            self.assertGreaterEqual(hm2, hm, mb)
            for uid, info in msgs.items():
                self.assertEqual(info, msgs2.get(uid), "%s UID %d" % (mb, uid))
        # Every acknowledged delivery is in INBOX exactly once.
        m.select("INBOX", readonly=True)
        for n in activity.acked:
            typ, data = m.uid("SEARCH", None, "HEADER", "Message-ID", "<m%d@move.test>" % n)
            self.assertEqual(1, len(data[0].split()), "message %d" % n)
        typ, subs = m.lsub('""', "*")
        self.assertEqual(subscribed_before, sorted(x.decode() for x in subs if x))
        # QRESYNC from the state before the move: the same answer as the source gave before
        # the move (the store reports expunged UIDs as VANISHED (EARLIER) when it no longer
        # knows their modseqs), plus only the messages delivered since.
        vanished, changed = qresync(m, uv, hm)
        gone = set()
        for line in vanished:
            for part in line.decode().split()[-1].split(","):
                lo, _, hi = part.partition(":")
                gone.update(range(int(lo), int(hi or lo) + 1))
        self.assertEqual(set(), gone & set(msgs), "a message the client holds reported gone")
        self.assertEqual(changed_before, {u for u in changed if u < un},
                         "spurious changes: %s" % sorted(u for u in changed if u < un)[:10])
        print("QRESYNC before the move: VANISHED %r, %d FETCH; after: VANISHED %r, %d FETCH "
              "(new UIDs %d)" % ([v[:40] for v in vanished_before], len(changed_before),
                                  [v[:40] for v in vanished], len(changed),
                                  len([u for u in changed if u >= un])), flush=True)
        m.logout()

    def test_account_without_mail_moves_by_its_placement(self):
        # Placed on store-a but never logged in nor sent mail: store-a has no tree for it.
        c = self.cluster
        self.assertIsNone(c.backends["store-a"].maildir("unused"))
        rc, out = c.move("unused", "store-b", "--grace", "0")
        self.assertEqual(0, rc, out)
        self.assertEqual((True, True, [0, 0], 0), (out["moved"], out["purged"], out["pass_files"],
                                                   out["files"]))
        self.assertEqual(("store-b", None), c.owning_store("unused"))
        # It works on its new store: mail delivered through the proxy is there.
        deliveries = []
        stop = threading.Event()

        def record(n, code, _seconds):
            deliveries.append(code)
            stop.set()

        deliver_until(c, "unused", stop, record)
        self.assertEqual([250], deliveries)
        self.assertIsNotNone(c.backends["store-b"].maildir("unused"))
        self.assertIsNone(c.backends["store-a"].maildir("unused"))
        m = c.client("unused")
        typ, data = m.select("INBOX", readonly=True)
        self.assertEqual(b"1", data[0])
        m.logout()


if __name__ == "__main__":
    unittest.main()
