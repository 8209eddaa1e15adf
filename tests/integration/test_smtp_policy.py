"""Intake policy of hamail-backend, driven by smtplib and raw sockets: the
postmaster (RFC 5321 §4.5.1), NUL octets outside BINARYMIME, the submission
sender check, and quota per recipient (checked at RCPT, and never bouncing a
recipient who got the message)."""

import smtplib
import ssl
import unittest

from hamail_harness import Backend, ssha512
from test_smtp_intake import message, raw

ALICE = {"id": "alice", "address": "alice@example.org", "login": "alice",
         "aliases": ["a.smith@example.org", "postmaster@mx.test"], "password": ssha512("alice-secret")}
BOB = {"id": "bob", "address": "bob@example.org", "password": ssha512("bob-secret")}
# 6000 octets: one ~3.7 KB fill message fits, a second does not.
ERIN = {"id": "erin", "address": "erin@example.org", "quota_bytes": 6000}
FRANK = {"id": "frank", "address": "frank@example.org", "quota_bytes": 6000}

ALLOWED_SENDERS = """
[[smtp.allowed_senders]]
account = "alice"
senders = ["news@lists.example.net"]

[[smtp.allowed_senders]]
account = "*"
senders = ["@shared.example.net"]
"""


def start(accounts, smtp=None, quota=None, extra=""):
    b = Backend(accounts, smtp=smtp or {"max_message_size": 65536}, quota=quota)
    if extra:
        with open(b.config, "a") as f:
            f.write(extra)
    return b.start()


def stop(b):
    rc = b.stop()
    log = b.log()
    b.cleanup()
    assert rc == 0, "backend exited %r\n%s" % (rc, log)


def fill(b, address, token):
    """Uses about 3.7 KB of the account's quota."""
    with smtplib.SMTP("127.0.0.1", b.ports["smtp"], timeout=10) as c:
        c.sendmail("x@remote.test", [address], message(token, token + "\r\n" + ("f" * 70 + "\r\n") * 40))


def found(b, token, account):
    return [m for m in b.messages(account) if token.encode() in m]


class smtp_policy_test(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # No [smtp] postmaster: the default is postmaster@<store domain> ("mx.test").
        cls.b = start([ALICE, BOB, ERIN, FRANK], extra=ALLOWED_SENDERS)
        cls.tls = ssl.create_default_context(cafile=cls.b.ca)

    @classmethod
    def tearDownClass(cls):
        stop(cls.b)

    # --- postmaster -----------------------------------------------------------------

    def test_postmaster_is_accepted_by_default(self):
        with smtplib.SMTP("127.0.0.1", self.b.ports["smtp"], timeout=10) as c:
            c.ehlo("client.test")
            c.mail("x@remote.test")
            code, text = c.rcpt("<Postmaster>")
            self.assertEqual(250, code, text)
            # postmaster@ a domain the directory has no entry for reaches the same account.
            code, text = c.rcpt("PostMaster@unlisted.example.com")
            self.assertEqual(250, code, text)
            code, text = c.data(message("pm", "token-postmaster\r\n"))
            self.assertEqual(250, code, text)
        self.assertEqual(1, len(found(self.b, "token-postmaster", "alice")))

    def test_empty_postmaster_is_a_configuration_error(self):
        b = Backend([ALICE], smtp={"postmaster": ""})
        try:
            r = b.run_tool("--check-config")
            self.assertEqual(78, r.returncode, r.stdout + r.stderr)
            self.assertIn("postmaster", r.stdout + r.stderr)
        finally:
            b.cleanup()

    # --- NUL octets ---------------------------------------------------------------------

    def test_nul_in_data_is_refused_and_the_session_goes_on(self):
        r = raw(self.b.ports["smtp"])
        r.reply()
        r.send("EHLO client.test\r\n")
        r.reply()
        r.send("MAIL FROM:<x@remote.test>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n")
        self.assertEqual([250, 250, 354], [r.reply()[0] for _ in range(3)])
        r.send(b"Subject: nul\r\n\r\ntoken-nul-data \x00 here\r\n.\r\n")
        code, text = r.reply()
        self.assertEqual(554, code, text)
        self.assertIn("5.6.0", text)
        # The session keeps its EHLO and takes the next message.
        r.send("MAIL FROM:<x@remote.test>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n")
        self.assertEqual([250, 250, 354], [r.reply()[0] for _ in range(3)])
        r.send("Subject: after\r\n\r\ntoken-after-nul\r\n.\r\n")
        self.assertEqual(250, r.reply()[0])
        r.send("QUIT\r\n")
        r.reply()
        r.close()
        self.assertEqual([], found(self.b, "token-nul-data", "bob"))
        self.assertEqual(1, len(found(self.b, "token-after-nul", "bob")))

    def test_nul_over_lmtp_is_refused_once_per_recipient(self):
        with smtplib.LMTP("127.0.0.1", self.b.ports["lmtp"], timeout=10) as c:
            c.ehlo("client.test")
            self.assertEqual(250, c.mail("x@remote.test")[0])
            self.assertEqual(250, c.rcpt("alice@example.org")[0])
            self.assertEqual(250, c.rcpt("bob@example.org")[0])
            self.assertEqual(354, c.docmd("DATA")[0])
            c.send(b"Subject: lmtp nul\r\n\r\ntoken-lmtp-nul \x00\r\n.\r\n")
            # RFC 2033: one reply per accepted recipient, refusals included.
            replies = [c.getreply(), c.getreply()]
            self.assertEqual([554, 554], [r[0] for r in replies], replies)
            self.assertEqual(250, c.noop()[0], "the session is still in step")
        self.assertEqual([], found(self.b, "token-lmtp-nul", "alice"))

    def test_nul_in_bdat_needs_binarymime(self):
        r = raw(self.b.ports["smtp"])
        r.reply()
        r.send("EHLO client.test\r\n")
        r.reply()
        body = b"Subject: bdat nul\r\n\r\ntoken-nul-bdat-%s \x00\r\n"
        plain = body % b"8bit"
        r.send(b"MAIL FROM:<x@remote.test> BODY=8BITMIME\r\nRCPT TO:<bob@example.org>\r\n"
               b"BDAT %d LAST\r\n" % len(plain) + plain)
        self.assertEqual([250, 250], [r.reply()[0] for _ in range(2)])
        code, text = r.reply()
        self.assertEqual(554, code, text)
        binary = body % b"binary"
        r.send(b"MAIL FROM:<x@remote.test> BODY=BINARYMIME\r\nRCPT TO:<bob@example.org>\r\n"
               b"BDAT %d LAST\r\n" % len(binary) + binary)
        self.assertEqual([250, 250], [r.reply()[0] for _ in range(2)])
        code, text = r.reply()
        self.assertEqual(250, code, text)
        r.close()
        self.assertEqual([], found(self.b, "token-nul-bdat-8bit", "bob"))
        (m,) = found(self.b, "token-nul-bdat-binary", "bob")
        self.assertIn(b"\x00", m)

    # --- submission sender check -----------------------------------------------------------

    def submit(self, login, password):
        c = smtplib.SMTP("127.0.0.1", self.b.ports["submission"], timeout=10)
        c.ehlo("client.test")
        c.starttls(context=self.tls)
        c.ehlo("client.test")
        c.login(login, password)
        return c

    def test_submission_sender_must_be_the_accounts_own(self):
        with self.submit("alice", "alice-secret") as c:
            code, text = c.mail("bob@example.org")
            self.assertEqual((553, b"5.7.1"), (code, text[:5]), text)
            for own in ("alice@example.org", "A.Smith@example.org", "alice+lists@example.org", ""):
                code, text = c.mail(own)
                self.assertEqual(250, code, "%s: %s" % (own, text))
                c.rset()
            with self.assertRaises(smtplib.SMTPSenderRefused) as e:
                c.sendmail("nobody@example.org", ["bob@example.org"], message("forged", "token-forged\r\n"))
            self.assertEqual(553, e.exception.smtp_code)
            c.sendmail("a.smith@example.org", ["bob@example.org"], message("alias", "token-alias-sender\r\n"))
        self.assertEqual([], found(self.b, "token-forged", "bob"))
        self.assertEqual(1, len(found(self.b, "token-alias-sender", "bob")))

    def test_allowed_senders_per_account_and_for_everyone(self):
        with self.submit("alice", "alice-secret") as c:
            for sender in ("news@lists.example.net", "anyone@shared.example.net"):
                code, text = c.mail(sender)
                self.assertEqual(250, code, "%s: %s" % (sender, text))
                c.rset()
        with self.submit("bob@example.org", "bob-secret") as c:
            code, text = c.mail("news@lists.example.net")
            self.assertEqual(553, code, "alice's grant is not bob's: %s" % text)
            c.rset()
            code, text = c.mail("bob@shared.example.net")
            self.assertEqual(250, code, text)

    # --- quota per recipient -----------------------------------------------------------------

    def test_over_quota_recipient_is_refused_at_rcpt_and_the_others_get_the_message(self):
        fill(self.b, "erin@example.org", "erin-fill")
        body = "token-rcpt-quota\r\n" + ("y" * 70 + "\r\n") * 40
        with smtplib.SMTP("127.0.0.1", self.b.ports["smtp"], timeout=10) as c:
            # smtplib declares SIZE=, so the store knows erin cannot take it.
            refused = c.sendmail("x@remote.test", ["alice@example.org", "erin@example.org"],
                                 message("rcpt-quota", body))
        self.assertEqual(["erin@example.org"], list(refused))
        self.assertEqual((452, b"4.2.2"), (refused["erin@example.org"][0], refused["erin@example.org"][1][:5]))
        self.assertEqual(1, len(found(self.b, "token-rcpt-quota", "alice")))
        self.assertEqual(0, len(found(self.b, "token-rcpt-quota", "erin")))

    def test_declared_size_over_the_whole_quota_is_refused_at_rcpt(self):
        r = raw(self.b.ports["smtp"])
        r.reply()
        r.send("EHLO client.test\r\n")
        r.reply()
        r.send("MAIL FROM:<x@remote.test> SIZE=7000\r\nRCPT TO:<frank@example.org>\r\n"
               "RCPT TO:<alice@example.org>\r\n")
        self.assertEqual(250, r.reply()[0])
        code, text = r.reply()
        self.assertEqual((552, "5.2.2"), (code, text[4:9]), "never fits frank's 6000 octets: " + text)
        self.assertEqual(250, r.reply()[0], "alice has no limit")
        r.close()


class smtp_partial_failure_test(unittest.TestCase):
    """What the single SMTP reply says when recipients accepted at RCPT fail at commit."""

    def deliver_without_size(self, b, recipients, token):
        """DATA without SIZE=, so RCPT cannot foresee the quota failure."""
        r = raw(b.ports["smtp"])
        r.reply()
        r.send("EHLO client.test\r\n")
        r.reply()
        r.send("MAIL FROM:<x@remote.test>\r\n")
        self.assertEqual(250, r.reply()[0])
        for rcpt in recipients:
            r.send("RCPT TO:<%s>\r\n" % rcpt)
            self.assertEqual(250, r.reply()[0], rcpt)
        r.send("DATA\r\n")
        self.assertEqual(354, r.reply()[0])
        r.send(message(token, token + "\r\n" + ("z" * 70 + "\r\n") * 40) + "\r\n.\r\n")
        code, text = r.reply()
        r.close()
        return code, text

    def test_permanent_failure_of_one_recipient_does_not_bounce_the_others(self):
        b = start([ALICE, ERIN], quota={"over_quota": "permanent"})
        try:
            fill(b, "erin@example.org", "erin-fill")
            code, text = self.deliver_without_size(b, ["alice@example.org", "erin@example.org"],
                                                   "token-partial")
            self.assertEqual(250, code, "alice got the message; a 5xx would bounce her too: " + text)
            self.assertEqual(1, len(found(b, "token-partial", "alice")))
            self.assertEqual(0, len(found(b, "token-partial", "erin")))
            self.assertIn("accepted but not delivered", b.log())
            # When every recipient fails permanently, the reply is that failure.
            code, text = self.deliver_without_size(b, ["erin@example.org"], "token-erin-only")
            self.assertEqual(552, code, text)
        finally:
            stop(b)

    def test_temporary_failure_defers_the_whole_message_without_duplicates(self):
        b = start([ALICE, ERIN])
        try:
            fill(b, "erin@example.org", "erin-fill")
            code, text = self.deliver_without_size(b, ["alice@example.org", "erin@example.org"],
                                                   "token-deferred")
            self.assertEqual(452, code, text)
            self.assertEqual(0, len(found(b, "token-deferred", "alice")), "alice's copy was withdrawn")
        finally:
            stop(b)


if __name__ == "__main__":
    unittest.main()
