"""SMTP, submission and LMTP intake of hamail-backend, driven by real clients:
Python's smtplib (SMTP, LMTP, STARTTLS, AUTH) and swaks, plus raw sockets for
what clients never do on purpose (smuggling, pipelined injection, bad input)."""

import smtplib
import ssl
import subprocess
import time
import unittest

from hamail_harness import Backend, SmtpRaw, ssha512

ALICE = {"id": "alice", "address": "alice@example.org", "aliases": ["a.smith@example.org"],
         "password": ssha512("alice-secret")}
BOB = {"id": "bob", "address": "bob@example.org", "password": ssha512("bob-secret")}
# Quota of 6000 octets: one ~3.7 KB test message fits, a second does not.
ERIN = {"id": "erin", "address": "erin@example.org", "quota_bytes": 6000}
FRANK = {"id": "frank", "address": "frank@example.org", "quota_bytes": 6000}
CAROL = {"id": "carol", "address": "carol@example.org", "store": "store-b"}
DAVE = {"id": "dave", "address": "dave@example.org", "state": "disabled"}


def message(subject, body="Hello.\r\n", extra=""):
    return ("From: sender@remote.test\r\nTo: alice@example.org\r\nSubject: %s\r\n%s\r\n%s"
            % (subject, extra, body))


class raw(SmtpRaw):
    """A raw SMTP client that raises EOFError when the server closes."""


class smtp_intake_test(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.b = Backend([ALICE, BOB, CAROL, DAVE, ERIN, FRANK], smtp={"postmaster": "alice@example.org",
                                                          "max_message_size": 65536,
                                                          "max_errors": 5}).start()
        cls.tls = ssl.create_default_context(cafile=cls.b.ca)

    @classmethod
    def tearDownClass(cls):
        cls.b.finish()

    def count(self, account="alice"):
        return len(self.b.messages(account))

    def find(self, token, account="alice"):
        return [m for m in self.b.messages(account) if token.encode() in m]

    def test_smtplib_plain_delivery_adds_trace_headers(self):
        with smtplib.SMTP("127.0.0.1", self.b.ports["smtp"], timeout=10) as c:
            c.sendmail("sender@remote.test", ["alice@example.org"], message("plain-1", "token-plain-1\r\n"))
        (m,) = self.find("token-plain-1")
        self.assertTrue(m.startswith(b"Return-Path: <sender@remote.test>\r\nReceived: from "), m[:200])
        self.assertIn(b"by mx.test (hamail store store-a) with ESMTP id", m)
        self.assertIn(b"for <alice@example.org>", m)
        self.assertTrue(m.endswith(b"Subject: plain-1\r\n\r\ntoken-plain-1\r\n"), m[-100:])

    def test_starttls_and_auth_plain_on_submission_with_smtplib(self):
        with smtplib.SMTP("127.0.0.1", self.b.ports["submission"], timeout=10) as c:
            c.ehlo("client.test")
            self.assertNotIn("auth", c.esmtp_features, "AUTH must not be offered before TLS")
            code, _ = c.mail("x@remote.test")
            self.assertEqual(530, code, "submission requires AUTH before MAIL")
            c.rset()
            c.starttls(context=self.tls)
            c.ehlo("client.test")
            self.assertIn("auth", c.esmtp_features)
            self.assertNotIn("starttls", c.esmtp_features)
            c.login("alice@example.org", "alice-secret")
            c.sendmail("alice@example.org", ["bob@example.org"], message("tls-auth", "token-tls-auth\r\n"))
        (m,) = self.find("token-tls-auth", "bob")
        self.assertIn(b"with ESMTPSA id", m)
        self.assertIn(b"(using TLSv1.", m)

    def test_swaks_starttls_auth_login(self):
        out = subprocess.run(
            ["swaks", "--server", "127.0.0.1", "--port", str(self.b.ports["submission"]),
             "--from", "alice@example.org", "--to", "a.smith@example.org", "--tls",
             "--tls-verify", "--tls-ca-path", self.b.ca,
             "--auth", "LOGIN", "--auth-user", "alice@example.org", "--auth-password", "alice-secret",
             "--header", "Subject: swaks-token-1", "--body", "swaks body", "--timeout", "20"],
            capture_output=True, text=True, timeout=60)
        self.assertEqual(0, out.returncode, out.stdout + out.stderr)
        self.assertIn("235 2.7.0", out.stdout)
        self.assertEqual(1, len(self.find("swaks-token-1")), "alias a.smith delivers to alice")

    def test_auth_with_wrong_password_fails_and_plaintext_auth_is_refused(self):
        with smtplib.SMTP("127.0.0.1", self.b.ports["submission"], timeout=10) as c:
            c.ehlo("client.test")
            code, text = c.docmd("AUTH", "PLAIN AGFsaWNlQGV4YW1wbGUub3JnAGFsaWNlLXNlY3JldA==")
            self.assertEqual(538, code, text)
            c.starttls(context=self.tls)
            c.ehlo("client.test")
            with self.assertRaises(smtplib.SMTPAuthenticationError) as e:
                c.login("alice@example.org", "wrong")
            self.assertEqual(535, e.exception.smtp_code)

    def test_unknown_disabled_and_foreign_recipients(self):
        with smtplib.SMTP("127.0.0.1", self.b.ports["smtp"], timeout=10) as c:
            c.ehlo("client.test")
            c.mail("x@remote.test")
            code, text = c.rcpt("nobody@example.org")
            self.assertEqual((550, b"5.1.1"), (code, text[:5]))
            code, text = c.rcpt("dave@example.org")
            self.assertEqual((550, b"5.2.1"), (code, text[:5]))
            code, text = c.rcpt("carol@example.org")
            self.assertEqual(451, code, "an account on another store is a temporary condition")
            code, _ = c.rcpt("alice+lists@example.org")
            self.assertEqual(250, code, "sub-address resolves to alice")
            code, _ = c.rcpt("<Postmaster>")
            self.assertEqual(250, code)

    def fill_to_near_quota(self, address, token):
        with smtplib.SMTP("127.0.0.1", self.b.ports["smtp"], timeout=10) as c:
            c.sendmail("x@remote.test", [address], message(token, token + "\r\n" + ("f" * 70 + "\r\n") * 40))

    def test_lmtp_replies_per_recipient_and_over_quota_is_temporary(self):
        self.fill_to_near_quota("erin@example.org", "erin-fill")
        body = "token-lmtp-quota\r\n" + ("x" * 70 + "\r\n") * 40
        with smtplib.LMTP("127.0.0.1", self.b.ports["lmtp"], timeout=10) as c:
            c.ehlo("client.test")
            self.assertEqual(250, c.mail("x@remote.test")[0])
            self.assertEqual(250, c.rcpt("alice@example.org")[0])
            self.assertEqual(250, c.rcpt("erin@example.org")[0])
            self.assertEqual(354, c.docmd("DATA")[0])
            c.send((message("lmtp-quota", body) + "\r\n.\r\n").encode())
            # RFC 2033: one reply per accepted recipient, in RCPT order.
            alice, erin = c.getreply(), c.getreply()
        self.assertEqual(250, alice[0], alice)
        self.assertEqual((452, b"4.2.2"), (erin[0], erin[1][:5]), "over quota is temporary by default")
        self.assertEqual(1, len(self.find("token-lmtp-quota")))
        self.assertEqual(0, len(self.find("token-lmtp-quota", "erin")))

    def test_message_alone_over_quota_is_permanent(self):
        body = "token-too-big-for-quota\r\n" + ("q" * 70 + "\r\n") * 100
        with smtplib.SMTP("127.0.0.1", self.b.ports["smtp"], timeout=10) as c:
            # smtplib declares SIZE=, so RCPT already knows (see test_smtp_policy).
            with self.assertRaises(smtplib.SMTPRecipientsRefused) as e:
                c.sendmail("x@remote.test", ["frank@example.org"], message("too-big", body))
            self.assertEqual(552, e.exception.recipients["frank@example.org"][0])

    def test_smtp_over_quota_recipient_does_not_fail_the_others(self):
        self.fill_to_near_quota("frank@example.org", "frank-fill")
        body = "token-all-or-none\r\n" + ("y" * 70 + "\r\n") * 40
        with smtplib.SMTP("127.0.0.1", self.b.ports["smtp"], timeout=10) as c:
            # Refused at RCPT (SIZE= declared), so alice still gets the message.
            refused = c.sendmail("x@remote.test", ["alice@example.org", "frank@example.org"],
                                 message("all-or-none", body))
            self.assertEqual(452, refused["frank@example.org"][0])
        self.assertEqual(1, len(self.find("token-all-or-none")))
        self.assertEqual(0, len(self.find("token-all-or-none", "frank")))

    def test_lmtp_needs_lhlo_and_smtp_refuses_lhlo(self):
        r = raw(self.b.ports["lmtp"])
        self.assertEqual(220, r.reply()[0])
        r.send("EHLO x\r\n")
        self.assertEqual(500, r.reply()[0])
        r.send("LHLO x\r\n")
        self.assertEqual(250, r.reply()[0])
        r.close()
        r = raw(self.b.ports["smtp"])
        r.reply()
        r.send("LHLO x\r\n")
        self.assertEqual(500, r.reply()[0])
        r.close()

    def test_bare_lf_smuggling_is_refused_and_nothing_stored(self):
        before = self.count()
        r = raw(self.b.ports["smtp"])
        r.reply()
        r.send("EHLO x\r\nMAIL FROM:<a@remote.test>\r\nRCPT TO:<alice@example.org>\r\nDATA\r\n")
        for _ in range(3):
            self.assertEqual(250, r.reply()[0])
        self.assertEqual(354, r.reply()[0])
        # The classic smuggling payload: "\n.\n" must not end the message.
        r.send("Subject: smuggle\r\n\r\nhello\n.\nMAIL FROM:<evil@remote.test>\r\nRCPT TO:<alice@example.org>\r\n"
               "DATA\r\n\r\nsmuggled-token\r\n.\r\n")
        code, text = r.reply()
        self.assertEqual(550, code, text)
        self.assertIn("5.5.2", text)
        r.send("QUIT\r\n")
        self.assertEqual(221, r.reply()[0])
        r.close()
        self.assertEqual(before, self.count())
        self.assertEqual([], self.find("smuggled-token"))

    def test_oversize_message_refused_by_size_param_and_by_content(self):
        r = raw(self.b.ports["smtp"])
        r.reply()
        r.send("EHLO x\r\n")
        code, text = r.reply()
        self.assertIn("SIZE 65536", text)
        r.send("MAIL FROM:<a@remote.test> SIZE=999999\r\n")
        self.assertEqual(552, r.reply()[0])
        r.send("MAIL FROM:<a@remote.test>\r\nRCPT TO:<alice@example.org>\r\nDATA\r\n")
        self.assertEqual(250, r.reply()[0])
        self.assertEqual(250, r.reply()[0])
        self.assertEqual(354, r.reply()[0])
        line = ("z" * 998 + "\r\n").encode()
        for _ in range(100):  # ~100 KB, over the 64 KiB limit; read and discarded
            r.send(line)
        r.send(b"oversize-token\r\n.\r\n")
        code, text = r.reply()
        self.assertEqual(552, code, text)
        r.send("NOOP\r\n")
        self.assertEqual(250, r.reply()[0], "the session goes on after a refused message")
        r.close()
        self.assertEqual([], self.find("oversize-token"))

    def test_bytes_pipelined_after_starttls_are_discarded(self):
        r = raw(self.b.ports["smtp"])
        r.reply()
        r.send("EHLO x\r\n")
        r.reply()
        r.send("STARTTLS\r\nMAIL FROM:<injected@remote.test>\r\n")
        self.assertEqual(220, r.reply()[0])
        tls = self.tls.wrap_socket(r.s, server_hostname="localhost")
        tls.sendall(b"EHLO x\r\n")
        data = b""
        while not data.endswith(b"\r\n") or b"250 " not in data:
            data += tls.recv(65536)
        # Had the injected MAIL run, this MAIL would be "nested" (503).
        tls.sendall(b"MAIL FROM:<real@remote.test>\r\n")
        reply = tls.recv(65536)
        self.assertTrue(reply.startswith(b"250"), reply)
        tls.close()

    def test_dsn_parameters_are_accepted_and_kept_in_the_delivery_log(self):
        r = raw(self.b.ports["smtp"])
        r.reply()
        r.send("EHLO x\r\n")
        self.assertIn("DSN", r.reply()[1])
        r.send("MAIL FROM:<a@remote.test> RET=HDRS ENVID=env+2Did42\r\n"
               "RCPT TO:<alice@example.org> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;alice+2Bx@example.org\r\n"
               "DATA\r\n")
        self.assertEqual([250, 250, 354], [r.reply()[0] for _ in range(3)])
        r.send("Subject: dsn\r\n\r\ndsn-token\r\n.\r\n")
        self.assertEqual(250, r.reply()[0])
        r.close()
        deadline = time.monotonic() + 5
        while "envid=env-id42" not in self.b.log() and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertIn("envid=env-id42 ret=hdrs notify=success,failure orcpt=rfc822;alice+x@example.org", self.b.log())

    def test_bdat_chunking_delivers(self):
        r = raw(self.b.ports["lmtp"])
        r.reply()
        r.send("LHLO x\r\n")
        self.assertIn("CHUNKING", r.reply()[1])
        part1 = b"Subject: chunks\r\n\r\nfirst half "
        part2 = b"bdat-token second half\r\n"
        r.send(b"MAIL FROM:<a@remote.test>\r\nRCPT TO:<alice@example.org>\r\nBDAT %d\r\n" % len(part1) + part1)
        self.assertEqual(250, r.reply()[0])
        self.assertEqual(250, r.reply()[0])
        self.assertEqual(250, r.reply()[0])
        r.send(b"BDAT %d LAST\r\n" % len(part2) + part2)
        code, text = r.reply()
        self.assertEqual(250, code, text)
        r.close()
        (m,) = self.find("bdat-token")
        self.assertTrue(m.endswith(part1 + part2))

    def test_lmtp_bdat_last_after_a_failed_chunk_answers_each_recipient(self):
        # RFC 2033 §4.2: after the last chunk an LMTP server owes one reply per accepted
        # recipient, a refusal included; a client counting replies must not wait forever.
        r = raw(self.b.ports["lmtp"])
        r.reply()
        r.send("LHLO x\r\n")
        r.reply()
        big = b"x" * 70000  # over max_message_size (65536)
        r.send(b"MAIL FROM:<a@remote.test>\r\nRCPT TO:<alice@example.org>\r\n"
               b"RCPT TO:<bob@example.org>\r\nBDAT %d\r\n" % len(big) + big)
        self.assertEqual([250, 250, 250], [r.reply()[0] for _ in range(3)])
        self.assertEqual(552, r.reply()[0])
        r.send(b"BDAT 5 LAST\r\nend\r\n")
        self.assertEqual([503, 503], [r.reply()[0] for _ in range(2)])
        r.send(b"RSET\r\n")
        self.assertEqual(250, r.reply()[0], "exactly two replies to BDAT LAST")
        r.close()

    def test_bad_commands_get_errors_then_421_after_too_many(self):
        r = raw(self.b.ports["smtp"])
        r.reply()
        r.send("FOO\r\n")
        self.assertEqual(500, r.reply()[0])
        r.send("MAIL FROM:<not an address>\r\n")
        self.assertEqual(501, r.reply()[0])
        r.send("RCPT TO:<alice@example.org>\r\n")
        self.assertEqual(503, r.reply()[0])
        r.send("X" * 3000 + "\r\n")
        self.assertEqual(500, r.reply()[0])
        r.send("NOOP\r\n")
        self.assertEqual(250, r.reply()[0])
        for _ in range(3):
            r.send("BAD\r\n")
        codes = [r.reply()[0] for _ in range(3)]
        self.assertEqual([500, 500, 421], codes)
        self.assertTrue(r.closed())
        r.close()


if __name__ == "__main__":
    unittest.main()
