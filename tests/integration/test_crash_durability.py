"""hamail-backend is SIGKILLed at random moments while clients pipeline 5,000
deliveries over SMTP and LMTP; it is restarted each time. Afterwards every
message that got its 250 must be in its mailbox exactly once and byte for byte
complete, no message may exist twice, and every index must agree with the
message files. Messages are sent once each (never retried), so a message whose
250 never came may be present once or not at all."""

import hashlib
import os
import random
import re
import socket
import threading
import time
import unittest

from hamail_harness import Backend

MESSAGES = int(os.environ.get("HAMAIL_CRASH_MESSAGES", "5000"))
CLIENTS = 8
ACCOUNTS = ["acct%d" % i for i in range(4)]
TOKEN = re.compile(rb"X-Test-Token: (m\d+)\r\n")


def body_for(n):
    """A message whose size varies (0.3 to ~20 KB) and whose content is checkable."""
    rng = random.Random(n)
    lines = ["line %d of m%d %s" % (i, n, hashlib.sha1(b"%d-%d" % (n, i)).hexdigest())
             for i in range(rng.randint(4, 300))]
    text = ("From: load@remote.test\r\nTo: %s@example.org\r\nX-Test-Token: m%d\r\nSubject: m%d\r\n\r\n"
            % (ACCOUNTS[n % len(ACCOUNTS)], n, n)) + "\r\n".join(lines) + "\r\n"
    return text.encode()


class crash_durability_test(unittest.TestCase):
    def setUp(self):
        self.b = Backend([{"id": a, "address": a + "@example.org"} for a in ACCOUNTS])
        self.b.start()
        self.lock = threading.Lock()
        self.next = 0
        self.acked = set()
        self.unacked = set()
        self.refused = []
        self.done = False
        self.kills = 0
        self.ports = dict(self.b.ports)

    def tearDown(self):
        self.b.cleanup()

    def take(self):
        with self.lock:
            if self.next >= MESSAGES:
                return None
            n = self.next
            self.next += 1
            return n

    def client(self, lmtp):
        n = None
        while True:
            if n is None:
                n = self.take()
                if n is None:
                    return
            try:
                with self.lock:
                    port = self.ports["lmtp" if lmtp else "smtp"]
                s = socket.create_connection(("127.0.0.1", port), timeout=30)
            except OSError:
                time.sleep(0.05)  # the backend is restarting; this message was not sent yet
                continue
            f = s.makefile("rb")

            def reply():
                while True:
                    line = f.readline()
                    if not line:
                        raise EOFError()
                    if line[3:4] != b"-":
                        return int(line[:3])

            try:
                if reply() != 220:
                    raise EOFError()
                s.sendall(b"LHLO load.test\r\n" if lmtp else b"EHLO load.test\r\n")
                if reply() != 250:
                    raise EOFError()
                while n is not None:
                    to = ACCOUNTS[n % len(ACCOUNTS)]
                    sent_any = False
                    # PIPELINING: the envelope and DATA in one write.
                    s.sendall(b"MAIL FROM:<load@remote.test>\r\nRCPT TO:<%s@example.org>\r\nDATA\r\n" % to.encode())
                    sent_any = True
                    codes = [reply(), reply(), reply()]
                    if codes != [250, 250, 354]:
                        self.refused.append((n, codes))
                        raise EOFError()
                    s.sendall(body_for(n) + b".\r\n")
                    code = reply()
                    with self.lock:
                        if code == 250:
                            self.acked.add(n)
                        else:
                            self.unacked.add(n)
                    n = self.take()
            except (OSError, EOFError, ValueError):
                if n is not None and sent_any:
                    with self.lock:
                        self.unacked.add(n)
                    n = None  # never retried: a second copy would be a legitimate duplicate
            finally:
                s.close()

    def killer(self):
        rng = random.Random(12345)
        while not self.done:
            time.sleep(rng.uniform(0.3, 1.2))
            if self.done:
                break
            self.b.kill()
            self.kills += 1
            self.b.start()
            with self.lock:
                self.ports = dict(self.b.ports)

    def test_no_acknowledged_message_lost_across_sigkills(self):
        clients = [threading.Thread(target=self.client, args=(i % 2 == 0,)) for i in range(CLIENTS)]
        k = threading.Thread(target=self.killer)
        k.start()
        started = time.monotonic()
        for c in clients:
            c.start()
        for c in clients:
            c.join(600)
        self.done = True
        k.join(60)
        elapsed = time.monotonic() - started
        self.assertGreater(self.kills, 2, "the backend must have been killed several times")
        self.assertEqual([], self.refused[:5])

        # After the last restart each mailbox is used once more (which reconciles
        # it with the files), then the daemon stops cleanly.
        b = self.b
        if b.proc is None:
            b.start()
        for a in ACCOUNTS:
            s = socket.create_connection(("127.0.0.1", b.ports["lmtp"]), timeout=30)
            s.sendall(b"LHLO x\r\nMAIL FROM:<>\r\nRCPT TO:<%s@example.org>\r\nDATA\r\n" % a.encode())
            s.sendall(b"Subject: final\r\n\r\nfinal\r\n.\r\nQUIT\r\n")
            s.recv(65536)
            s.close()
        self.assertEqual(0, b.stop())

        seen = {}
        for a in ACCOUNTS:
            for m in b.messages(a):
                t = TOKEN.search(m)
                if t is None:
                    self.assertIn(b"\r\n\r\nfinal\r\n", m)
                    continue
                n = int(t.group(1)[1:])
                seen.setdefault(n, []).append((a, m))
        for n in sorted(self.acked):
            self.assertIn(n, seen, "acknowledged message m%d is missing" % n)
            self.assertEqual(1, len(seen[n]), "acknowledged message m%d stored %d times" % (n, len(seen[n])))
            a, m = seen[n][0]
            self.assertEqual(ACCOUNTS[n % len(ACCOUNTS)], a)
            self.assertTrue(m.endswith(body_for(n)), "m%d is incomplete or altered" % n)
        for n, copies in seen.items():
            self.assertEqual(1, len(copies), "m%d stored %d times" % (n, len(copies)))
            self.assertTrue(n in self.acked or n in self.unacked, "m%d was never sent" % n)
        for a in ACCOUNTS:
            r = b.run_tool("--verify", a)
            self.assertEqual(0, r.returncode, "index of %s disagrees with its files:\n%s%s" % (a, r.stdout, r.stderr))
        recovered = len([n for n in self.unacked if n in seen])
        print("\ncrash test: %d messages, %d acknowledged, %d unacknowledged (%d of those stored), "
              "%d SIGKILLs, %.1f s" % (MESSAGES, len(self.acked), len(self.unacked), recovered, self.kills,
                                      elapsed))


if __name__ == "__main__":
    unittest.main()
