"""Intake defences of hamail-backend tried as an attacker would, with small
configured limits so each test ends in seconds: clients that trickle command
bytes or message bodies, sessions that never end, a flood on one listener, one
IPv6 /64 taking every slot, and a BDAT transfer caught by a drain."""

import base64
import select
import signal
import socket
import time
import unittest

from hamail_harness import Backend, SmtpRaw, ssha512

ALICE = {"id": "alice", "address": "alice@example.org", "password": ssha512("alice-secret")}


def set_listener_option(backend, listener, key, value):
    """Adds `key = value` to the [[listener]] named `listener` of the backend's configuration."""
    with open(backend.config) as f:
        text = f.read()
    line = 'name = "%s"\n' % listener
    assert line in text, text
    value_text = '"%s"' % value if isinstance(value, str) else str(value)
    text = text.replace(line, line + "%s = %s\n" % (key, value_text), 1)
    with open(backend.config, "w") as f:
        f.write(text)


class client(SmtpRaw):
    """A raw SMTP/LMTP client whose reply() is (0, text) at EOF."""

    eof_is_reply = True


def trickle(socks, payload, interval, limit):
    """Sends the next byte of `payload` on every open socket each `interval`
    seconds until the server closes them or `limit` seconds pass. Returns
    {socket: (seconds until EOF, everything received)} for the closed ones."""
    start = time.monotonic()
    received = {s: b"" for s in socks}
    ended = {}
    position = 0
    next_send = start
    for s in socks:
        s.setblocking(False)
    while len(ended) < len(socks) and time.monotonic() - start < limit:
        now = time.monotonic()
        if now >= next_send:
            byte = payload[position % len(payload):position % len(payload) + 1]
            position += 1
            for s in socks:
                if s in ended:
                    continue
                try:
                    s.send(byte)
                except OSError:
                    pass  # reset by the server: the read below sees the end
            next_send += interval
        open_socks = [s for s in socks if s not in ended]
        readable, _, _ = select.select(open_socks, [], [], max(0.0, min(0.1, next_send - now)))
        for s in readable:
            try:
                data = s.recv(65536)
            except OSError:
                data = b""
            if data:
                received[s] += data
            else:
                ended[s] = (time.monotonic() - start, received[s])
    return ended


class intake_limits_test(unittest.TestCase):
    def tearDown(self):
        b = getattr(self, "b", None)
        if b is not None:
            b.cleanup()

    def start(self, smtp=None, limits=None, listeners=None, listener_options=()):
        self.b = Backend([ALICE], smtp=smtp, limits=limits, listeners=listeners)
        for name, key, value in listener_options:
            set_listener_option(self.b, name, key, value)
        self.b.start()
        return self.b

    def greeted(self, port, host="127.0.0.1"):
        c = client(port, host)
        code, text = c.reply()
        self.assertEqual(220, code, text)
        return c

    def test_bad_limit_settings_are_reported_by_key(self):
        self.b = Backend([ALICE], smtp={"command_timeout": "500ms", "max_line_before_auth": 100,
                                        "min_data_rate_window": 0},
                         limits={"ipv6_prefix": 129, "session_timeout": "10ms"})
        set_listener_option(self.b, "smtp", "max_connections", 0)
        r = self.b.run_tool("--check-config")
        self.assertEqual(78, r.returncode, r.stdout + r.stderr)
        for problem in ("smtp.command_timeout: must be at least 1s",
                        "smtp.max_line_before_auth: 100 is out of range: must be between 512 and 2048",
                        "smtp.min_data_rate_window: must be at least 1s",
                        "limits.ipv6_prefix: 129 is out of range: must be between 16 and 128",
                        "limits.session_timeout: must be 0 (no limit) or at least 1s",
                        "listener[0].max_connections: 0 is out of range"):
            self.assertIn(problem, r.stdout + r.stderr)

    def test_200_connections_trickling_command_bytes_are_cut(self):
        # A byte every 0.5 s resets an idle timer forever; the command deadline does not move.
        b = self.start(smtp={"command_timeout": "2s"},
                       limits={"max_connections": 400, "max_connections_per_ip": 400})
        clients = [self.greeted(b.ports["smtp"]) for _ in range(200)]
        try:
            ended = trickle([c.s for c in clients], b"NOOP and never the end of the line ",
                            0.5, 20)
            self.assertEqual(200, len(ended), "%d of 200 trickling connections were never cut"
                             % (200 - len(ended)))
            for s, (after, data) in ended.items():
                self.assertIn(b"421 4.4.2", data)
            slowest = max(after for after, _ in ended.values())
            self.assertLess(slowest, 12, "cut only after %.1f s" % slowest)
        finally:
            for c in clients:
                c.close()

    def test_whole_session_deadline_ends_a_client_sending_noop_forever(self):
        b = self.start(smtp={"command_timeout": "5s"},
                       listener_options=[("smtp", "session_timeout", "3s")])
        c = self.greeted(b.ports["smtp"])
        start = time.monotonic()
        code = 250
        while code == 250 and time.monotonic() - start < 15:
            c.send(b"NOOP\r\n")
            code, text = c.reply()
            time.sleep(0.3)
        took = time.monotonic() - start
        self.assertEqual(421, code, text)
        self.assertIn("4.4.2", text)
        self.assertGreaterEqual(took, 2.5)
        self.assertLess(took, 8)
        # The LMTP listener keeps the [limits] default (1 hour).
        l = self.greeted(b.ports["lmtp"])
        time.sleep(3.5)
        l.send(b"NOOP\r\n")
        self.assertEqual(250, l.reply()[0])
        c.close()
        l.close()

    def test_data_body_trickled_at_one_byte_per_second_is_cut(self):
        b = self.start(smtp={"min_data_rate": 100, "min_data_rate_window": "2s",
                             "min_data_rate_grace": "2s"})
        # A normal client is not affected.
        ok = self.greeted(b.ports["smtp"])
        ok.send(b"EHLO x\r\nMAIL FROM:<a@remote.test>\r\nRCPT TO:<alice@example.org>\r\nDATA\r\n")
        for expected in (250, 250, 250, 354):
            self.assertEqual(expected, ok.reply()[0])
        ok.send(b"Subject: fast\r\n\r\n" + b"fast-token line\r\n" * 2000 + b".\r\n")
        self.assertEqual(250, ok.reply()[0])
        ok.close()

        slow = self.greeted(b.ports["smtp"])
        slow.send(b"EHLO x\r\nMAIL FROM:<a@remote.test>\r\nRCPT TO:<alice@example.org>\r\nDATA\r\n")
        for expected in (250, 250, 250, 354):
            self.assertEqual(expected, slow.reply()[0])
        ended = trickle([slow.s], b"Subject: slow-token\r\n\r\nslow body\r\n", 1.0, 15)
        self.assertIn(slow.s, ended, "a body at 1 byte/s was never cut")
        after, data = ended[slow.s]
        self.assertIn(b"421 4.4.2", data)
        self.assertLess(after, 8)
        slow.close()
        self.assertEqual([], [m for m in b.messages("alice") if b"slow-token" in m])
        self.assertEqual(1, len([m for m in b.messages("alice") if b"fast-token" in m]))

    def test_bdat_chunk_trickled_at_one_byte_per_second_is_cut(self):
        b = self.start(smtp={"min_data_rate": 100, "min_data_rate_window": "2s",
                             "min_data_rate_grace": "2s"})
        slow = self.greeted(b.ports["lmtp"])
        slow.send(b"LHLO x\r\nMAIL FROM:<a@remote.test>\r\nRCPT TO:<alice@example.org>\r\n"
                  b"BDAT 100000 LAST\r\n")
        for expected in (250, 250, 250):
            self.assertEqual(expected, slow.reply()[0])
        ended = trickle([slow.s], b"Subject: bdat-slow\r\n\r\nbody ", 1.0, 15)
        self.assertIn(slow.s, ended, "a BDAT chunk at 1 byte/s was never cut")
        self.assertIn(b"421 4.4.2", ended[slow.s][1])
        self.assertLess(ended[slow.s][0], 8)
        slow.close()

    def test_submission_is_stricter_before_auth(self):
        b = self.start(smtp={"command_timeout": "20s", "command_timeout_before_auth": "1s",
                             "max_errors": 10, "max_errors_before_auth": 2,
                             "auth_without_tls": True})
        # Idle before AUTH: cut after about 1 s; the MX listener waits its 20 s.
        idle_sub = self.greeted(b.ports["submission"])
        idle_mx = self.greeted(b.ports["smtp"])
        start = time.monotonic()
        code, text = idle_sub.reply()
        self.assertEqual(421, code, text)
        self.assertLess(time.monotonic() - start, 5)
        idle_mx.send(b"NOOP\r\n")
        self.assertEqual(250, idle_mx.reply()[0], "the MX session must still be open")
        # A 600-octet line is refused before AUTH on submission, accepted on the MX.
        long_noop = b"NOOP " + b"x" * 595 + b"\r\n"
        idle_mx.send(long_noop)
        self.assertEqual(250, idle_mx.reply()[0])
        sub = self.greeted(b.ports["submission"])
        sub.send(long_noop)
        self.assertEqual(500, sub.reply()[0])
        # The second error before AUTH ends the session.
        sub.send(b"BOGUS\r\n")
        code, text = sub.reply()
        self.assertEqual(500, code, text)
        code, text = sub.reply()
        self.assertEqual(421, code, text)
        self.assertIn("4.7.0", text)
        # After AUTH the ordinary limits apply: long lines, the long timeout, more errors.
        auth = self.greeted(b.ports["submission"])
        auth.send(b"EHLO x\r\n")
        self.assertEqual(250, auth.reply()[0])
        auth.send(b"AUTH PLAIN " + base64.b64encode(b"\0alice@example.org\0alice-secret") + b"\r\n")
        code, text = auth.reply()
        self.assertEqual(235, code, text)
        auth.send(long_noop)
        self.assertEqual(250, auth.reply()[0])
        for _ in range(3):
            auth.send(b"BOGUS\r\n")
            self.assertEqual(500, auth.reply()[0])
        time.sleep(2)
        auth.send(b"NOOP\r\n")
        self.assertEqual(250, auth.reply()[0], "the authenticated session must still be open")
        for c in (idle_sub, idle_mx, sub, auth):
            c.close()

    def test_smtp_flood_leaves_lmtp_its_own_connections(self):
        b = self.start(limits={"max_connections": 5, "max_connections_per_ip": 5})
        flood = [self.greeted(b.ports["smtp"]) for _ in range(5)]
        busy = client(b.ports["smtp"])
        code, text = busy.reply()
        self.assertEqual(421, code, text)
        self.assertIn("4.7.0", text)
        busy.close()
        # The proxies' LMTP connections are counted apart and still get in.
        lmtp = [client(b.ports["lmtp"]) for _ in range(5)]
        for c in lmtp:
            code, text = c.reply()
            self.assertEqual(220, code, "LMTP locked out by the SMTP flood: " + text)
        lmtp[0].send(b"LHLO proxy\r\nMAIL FROM:<a@remote.test>\r\nRCPT TO:<alice@example.org>\r\n"
                     b"DATA\r\n")
        for expected in (250, 250, 250, 354):
            self.assertEqual(expected, lmtp[0].reply()[0])
        lmtp[0].send(b"Subject: via-lmtp\r\n\r\nlmtp-token\r\n.\r\n")
        self.assertEqual(250, lmtp[0].reply()[0])
        for c in flood + lmtp:
            c.close()
        self.assertEqual(1, len([m for m in b.messages("alice") if b"lmtp-token" in m]))

    def test_ipv6_clients_are_counted_per_slash64(self):
        if not socket.has_ipv6:
            self.skipTest("no IPv6")
        try:
            probe = socket.socket(socket.AF_INET6)
            probe.bind(("::1", 0))
            probe.close()
        except OSError:
            self.skipTest("no IPv6 loopback")
        b = self.start(limits={"max_connections": 10, "max_connections_per_ip": 2},
                       listeners=(("smtp", "smtp", "none", "::1", 0),
                                  ("lmtp", "lmtp", "none", "127.0.0.1", 0)))
        kept = [self.greeted(b.ports["smtp"], "::1") for _ in range(2)]
        third = client(b.ports["smtp"], "::1")
        code, text = third.reply()
        self.assertEqual(421, code, text)
        third.close()
        # The limit is keyed by the client's /64, not by its address.
        deadline = time.monotonic() + 5
        while "connections from ::/64 (limit 2)" not in b.log() and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertIn("connections from ::/64 (limit 2)", b.log())
        for c in kept:
            c.close()

    def test_bdat_transfer_in_progress_finishes_during_drain(self):
        b = self.start(limits={"drain_timeout": "10s"})
        c = self.greeted(b.ports["smtp"])
        part1 = b"Subject: bdat in flight\r\n\r\nfirst chunk, "
        c.send(b"EHLO x\r\nMAIL FROM:<a@remote.test>\r\nRCPT TO:<alice@example.org>\r\n"
               b"BDAT %d\r\n" % len(part1) + part1)
        for expected in (250, 250, 250, 250):
            code, text = c.reply()
            self.assertEqual(expected, code, text)
        idle = self.greeted(b.ports["smtp"])
        b.proc.send_signal(signal.SIGTERM)
        code, text = idle.reply()
        self.assertEqual(421, code, "the idle session is told at once: " + text)
        time.sleep(0.3)
        part2 = b"second chunk bdat-drain-token\r\n"
        c.send(b"BDAT %d\r\n" % len(part2) + part2)
        code, text = c.reply()
        self.assertEqual(250, code, "the second chunk: " + text)
        c.send(b"BDAT 0 LAST\r\n")
        code, text = c.reply()
        self.assertEqual(250, code, "the message in flight is accepted: " + text)
        code, text = c.reply()
        self.assertEqual(421, code, text)
        self.assertIn("4.3.2", text)
        c.close()
        idle.close()
        self.assertEqual(0, b.proc.wait(20))
        b.proc = None
        self.assertEqual(1, len([m for m in b.messages("alice") if b"bdat-drain-token" in m]))


if __name__ == "__main__":
    unittest.main()
