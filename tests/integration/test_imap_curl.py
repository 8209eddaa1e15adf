"""The IMAP server of hamail-backend driven by curl: imap:// with STARTTLS (--ssl-reqd) and
imaps:// (implicit TLS), listing mailboxes, fetching by UID, SEARCH and APPEND (-T)."""

import imaplib
import os
import smtplib
import socket
import ssl
import subprocess
import tempfile
import unittest

from hamail_harness import Backend, ssha512

ALICE = {"id": "alice", "address": "alice@example.org", "password": ssha512("alice-secret")}
LISTENERS = (("lmtp", "lmtp", "none", "127.0.0.1", 0),
             ("imap", "imap", "starttls", "127.0.0.1", 0),
             ("imaps", "imap", "implicit", "127.0.0.1", 0))


def message(subject, body):
    return ("From: sender@remote.test\r\nTo: alice@example.org\r\nSubject: %s\r\n"
            "Message-ID: <%s@remote.test>\r\n\r\n%s" % (subject, subject.replace(" ", "-"), body))


class imap_curl_test(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.b = Backend([ALICE], listeners=LISTENERS).start()
        with smtplib.LMTP("127.0.0.1", cls.b.ports["lmtp"]) as c:
            for i in range(3):
                c.sendmail("sender@remote.test", ["alice@example.org"],
                           message("curl hello %d" % i, "body-token-%d\r\n" % i))

    @classmethod
    def tearDownClass(cls):
        cls.b.finish()

    def url(self, path="", implicit=False):
        if implicit:
            return "imaps://127.0.0.1:%d/%s" % (self.b.ports["imaps"], path)
        return "imap://127.0.0.1:%d/%s" % (self.b.ports["imap"], path)

    def curl(self, *args, implicit=False, check=True):
        tls = [] if implicit else ["--ssl-reqd"]
        p = subprocess.run(["curl", "-sS", "--max-time", "20", "--cacert", self.b.ca,
                            "-u", "alice@example.org:alice-secret"] + tls + list(args),
                           capture_output=True, timeout=30)
        if check:
            self.assertEqual(0, p.returncode, "curl %r: %s" % (args, p.stderr.decode()))
        return p

    def imap(self):
        m = imaplib.IMAP4_SSL("127.0.0.1", self.b.ports["imaps"],
                              ssl_context=ssl.create_default_context(cafile=self.b.ca), timeout=15)
        m.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # imaplib APPEND and Nagle
        m.login("alice@example.org", "alice-secret")
        self.addCleanup(m.logout)
        return m

    def test_list_mailboxes_starttls_and_implicit(self):
        for implicit in (False, True):
            out = self.curl(self.url(implicit=implicit), implicit=implicit).stdout.decode()
            self.assertRegex(out, r'\* LIST \([^)]*\) "/" "?INBOX"?')
            self.assertRegex(out, r'\* LIST \([^)]*\\Trash[^)]*\) "/" "?Trash"?')

    def test_fetch_by_uid(self):
        for implicit in (False, True):
            out = self.curl(self.url("INBOX;UID=2", implicit), implicit=implicit).stdout
            self.assertIn(b"Subject: curl hello 1\r\n", out)
            self.assertIn(b"body-token-1", out)
            self.assertNotIn(b"body-token-0", out)
        out = self.curl(self.url("INBOX;UID=1;SECTION=HEADER.FIELDS%20(SUBJECT)")).stdout
        self.assertIn(b"Subject: curl hello 0", out)
        self.assertNotIn(b"body-token-0", out)

    def test_url_forms_and_custom_requests(self):
        out = self.curl(self.url("INBOX;MAILINDEX=3")).stdout
        self.assertIn(b"Subject: curl hello 2\r\n", out)
        self.assertEqual(b"body-token-0\r\n", self.curl(self.url("INBOX;UID=1;SECTION=TEXT")).stdout)
        self.assertEqual(b"dy-to", self.curl(self.url("INBOX;UID=1;SECTION=TEXT;PARTIAL=2.5")).stdout)
        p = self.curl(self.url("INBOX;UIDVALIDITY=1;UID=1"), check=False)
        self.assertEqual(78, p.returncode, p.stderr)  # CURLE_REMOTE_FILE_NOT_FOUND: UIDVALIDITY changed
        out = self.curl("-X", "STORE 3 +FLAGS (\\Flagged)", self.url("INBOX")).stdout.decode()
        self.assertRegex(out, r"\* 3 FETCH \(FLAGS \([^)]*\\Flagged")
        out = self.curl("-X", "NAMESPACE", self.url()).stdout.decode()
        self.assertEqual('* NAMESPACE (("" "/")) NIL NIL\r\n', out)
        out = self.curl("-X", "STATUS INBOX (MESSAGES UIDNEXT)", self.url(implicit=True), implicit=True).stdout
        self.assertRegex(out.decode(), r'\* STATUS "?INBOX"? \((MESSAGES \d+ UIDNEXT \d+|UIDNEXT \d+ MESSAGES \d+)\)')
        out = self.curl("-X", "EXAMINE INBOX", self.url()).stdout.decode()
        self.assertIn("PERMANENTFLAGS ()", out)
        for mech in ("PLAIN", "LOGIN"):
            out = self.curl("--login-options", "AUTH=" + mech, self.url()).stdout.decode()
            self.assertIn('"INBOX"', out, mech)

    def test_search(self):
        out = self.curl("-X", "SEARCH SUBJECT \"hello 2\"", self.url("INBOX")).stdout.decode()
        self.assertIn("* SEARCH 3", out)
        out = self.curl(self.url("INBOX?BODY%20body-token-1", True), implicit=True).stdout.decode()
        self.assertIn("* SEARCH 2", out)
        out = self.curl("-X", "UID SEARCH ALL", self.url("INBOX")).stdout.decode()
        self.assertRegex(out, r"\* SEARCH 1 2 3\b")

    def test_append_upload(self):
        with tempfile.NamedTemporaryFile("wb", suffix=".eml", delete=False) as f:
            f.write(message("uploaded by curl", "upload-token\r\n").encode())
        self.addCleanup(os.unlink, f.name)
        self.curl("-T", f.name, self.url("Drafts"))
        self.curl("-T", f.name, self.url("Archive", True), implicit=True)
        m = self.imap()
        for box in ("Drafts", "Archive"):
            self.assertEqual("OK", m.select(box)[0])
            typ, data = m.search(None, "BODY", "upload-token")
            self.assertEqual([b"1"], data, box)
            typ, data = m.fetch("1", "(BODY[])")
            self.assertEqual(message("uploaded by curl", "upload-token\r\n").encode(), data[0][1])

    def test_wrong_password_fails(self):
        p = subprocess.run(["curl", "-sS", "--max-time", "20", "--cacert", self.b.ca, "--ssl-reqd",
                            "-u", "alice@example.org:wrong", self.url()], capture_output=True, timeout=30)
        self.assertEqual(67, p.returncode, p.stderr)  # CURLE_LOGIN_DENIED

    def test_untrusted_certificate_is_refused(self):
        p = subprocess.run(["curl", "-sS", "--max-time", "20", "--ssl-reqd",
                            "-u", "alice@example.org:alice-secret", self.url()], capture_output=True,
                           timeout=30)
        self.assertEqual(60, p.returncode, p.stderr)  # CURLE_PEER_FAILED_VERIFICATION


if __name__ == "__main__":
    unittest.main()
