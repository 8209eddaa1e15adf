"""hamail-backend's life as a daemon: one instance per store, graceful drain on
SIGTERM that lets a message in flight finish, and index rebuild from files."""

import glob
import os
import re
import signal
import socket
import subprocess
import time
import unittest

from hamail_harness import Backend

ACCOUNTS = [{"id": "alice", "address": "alice@example.org"}]


def reply(f):
    while True:
        line = f.readline()
        if not line:
            raise EOFError()
        if line[3:4] != b"-":
            return line


def deliver(port, token):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    f = s.makefile("rb")
    reply(f)
    s.sendall(b"LHLO x\r\nMAIL FROM:<a@remote.test>\r\nRCPT TO:<alice@example.org>\r\nDATA\r\n")
    for _ in range(4):
        reply(f)
    s.sendall(b"Subject: %s\r\n\r\n%s\r\n.\r\n" % (token.encode(), token.encode()))
    code = reply(f)[:3]
    s.close()
    return code


class backend_lifecycle_test(unittest.TestCase):
    def setUp(self):
        self.b = Backend(ACCOUNTS, limits={"drain_timeout": "10s"})

    def tearDown(self):
        self.b.cleanup()

    def test_second_instance_on_same_store_refuses_naming_pid(self):
        self.b.start()
        r = subprocess.run([os.environ["HAMAIL_BACKEND"], "--config", self.b.config],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(75, r.returncode, r.stderr)
        self.assertIn(str(self.b.proc.pid), r.stderr)
        self.assertEqual(b"250", deliver(self.b.ports["lmtp"], "still-serving"), "the first instance is unharmed")
        self.assertEqual(0, self.b.stop())

    def test_sigterm_lets_message_in_flight_finish_then_says_421(self):
        self.b.start()
        idle = socket.create_connection(("127.0.0.1", self.b.ports["smtp"]), timeout=10)
        fi = idle.makefile("rb")
        reply(fi)
        busy = socket.create_connection(("127.0.0.1", self.b.ports["lmtp"]), timeout=10)
        f = busy.makefile("rb")
        reply(f)
        busy.sendall(b"LHLO x\r\nMAIL FROM:<a@remote.test>\r\nRCPT TO:<alice@example.org>\r\nDATA\r\n")
        for _ in range(4):
            reply(f)
        busy.sendall(b"Subject: in flight\r\n\r\nfirst half, ")
        time.sleep(0.3)
        self.b.proc.send_signal(signal.SIGTERM)
        # The idle session is told at once.
        self.assertTrue(reply(fi).startswith(b"421 4.3.2"))
        # New connections are refused while draining.
        time.sleep(0.3)
        with self.assertRaises(OSError):
            socket.create_connection(("127.0.0.1", self.b.ports["smtp"]), timeout=2).recv(1)
        busy.sendall(b"second half drain-token\r\n.\r\n")
        self.assertTrue(reply(f).startswith(b"250"), "the message in flight is accepted")
        self.assertTrue(reply(f).startswith(b"421 4.3.2"), "then the goodbye")
        idle.close()
        busy.close()
        self.assertEqual(0, self.b.proc.wait(20))
        self.b.proc = None
        self.assertEqual(1, len([m for m in self.b.messages("alice") if b"drain-token" in m]))

    def test_rebuild_index_after_losing_every_index_keeps_uids(self):
        self.b.start()
        for i in range(5):
            self.assertEqual(b"250", deliver(self.b.ports["lmtp"], "rebuild-%d" % i))
        self.assertEqual(0, self.b.stop())
        names_before = sorted(os.path.basename(p) for p in glob.glob(os.path.join(self.b.maildir("alice"), "*", "*")))
        uids_before = sorted(int(m) for m in re.findall(r",U=(\d+)", " ".join(names_before)))
        for index in glob.glob(os.path.join(self.b.maildir("alice"), "hamail-index")):
            os.unlink(index)
        r = self.b.run_tool("--verify", "alice")
        self.assertEqual(1, r.returncode, "a missing index is a discrepancy:\n" + r.stdout)
        r = self.b.run_tool("--rebuild-index", "--account", "alice")
        self.assertEqual(0, r.returncode, r.stdout + r.stderr)
        self.assertIn("5 message(s)", r.stdout)
        r = self.b.run_tool("--verify", "alice")
        self.assertEqual(0, r.returncode, r.stdout + r.stderr)
        names_after = sorted(os.path.basename(p) for p in glob.glob(os.path.join(self.b.maildir("alice"), "*", "*")))
        uids_after = sorted(int(m) for m in re.findall(r",U=(\d+)", " ".join(names_after)))
        self.assertEqual(uids_before, uids_after)
        self.assertEqual(5, len(uids_after))
        # And the daemon serves the rebuilt store: the next UID continues.
        self.b.start()
        self.assertEqual(b"250", deliver(self.b.ports["lmtp"], "after-rebuild"))
        self.assertEqual(0, self.b.stop())

    def test_failed_logins_are_throttled_per_address(self):
        self.b.cleanup()
        self.b = Backend([{"id": "alice", "address": "alice@example.org", "password": "{PLAIN}right"}],
                         smtp={"auth_without_tls": True},
                         auth={"max_failures_per_address": 3, "failure_delay": "100ms",
                               "max_failure_delay": "200ms"}).start()
        import base64
        import smtplib

        def auth_plain(password):
            # One AUTH command per connection (smtplib.login would try every mechanism).
            with smtplib.SMTP("127.0.0.1", self.b.ports["submission"], timeout=10) as c:
                c.ehlo("x")
                token = base64.b64encode(b"\0alice@example.org\0" + password.encode()).decode()
                return c.docmd("AUTH", "PLAIN " + token)[0]

        codes = [auth_plain("wrong-%d" % i) for i in range(3)]
        self.assertEqual([535, 535, 454], codes, "the third failure from one address is refused")
        self.assertEqual(454, auth_plain("right"), "even the right password waits out the window")
        self.assertEqual(0, self.b.stop())

    def test_invalid_configuration_exits_78_naming_file_line_and_key(self):
        with open(self.b.config, "a") as f:
            f.write("\n[smtp]\nmax_recipents = 5\n")
        r = subprocess.run([os.environ["HAMAIL_BACKEND"], "--config", self.b.config, "--check-config"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(78, r.returncode)
        self.assertRegex(r.stderr, r"backend\.toml:\d+: smtp\.max_recipents: unknown key")


if __name__ == "__main__":
    unittest.main()
