"""The POP3 server of hamail-backend emptied by fetchmail over STLS and over implicit TLS,
verifying the certificate against the test CA: every message arrives exactly once at the MDA,
the mailbox is empty afterwards, and a run that keeps the messages and remembers their UIDLs
fetches nothing the second time."""

import glob
import os
import re
import shutil
import smtplib
import subprocess
import tempfile
import unittest

from hamail_harness import Backend, ssha512

FETCHMAIL = shutil.which("fetchmail") or "/usr/bin/fetchmail"
USERS = ("alice", "bob", "carol")
ACCOUNTS = [{"id": u, "address": "%s@example.org" % u, "password": ssha512("%s-secret" % u)} for u in USERS]
LISTENERS = (("lmtp", "lmtp", "none", "127.0.0.1", 0),
             ("pop3", "pop3", "starttls", "127.0.0.1", 0),
             ("pop3s", "pop3", "implicit", "127.0.0.1", 0))


def message(user, subject, body="Hello.\r\n"):
    return ("From: Sender <sender@remote.test>\r\nTo: %s@example.org\r\nSubject: %s\r\n"
            "Message-ID: <%s@remote.test>\r\nDate: Mon, 30 Nov 2026 10:00:00 +0000\r\n\r\n%s"
            % (user, subject, subject, body)).encode()


def deliver(b, user, msg):
    with smtplib.LMTP("127.0.0.1", b.ports["lmtp"]) as c:
        c.sendmail("sender@remote.test", ["%s@example.org" % user], msg)


class pop3_fetchmail_test(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.b = Backend(ACCOUNTS, listeners=LISTENERS).start()
        cls.tmp = tempfile.mkdtemp(prefix="hamail-fetchmail-")

    @classmethod
    def tearDownClass(cls):
        cls.b.finish(cls.tmp)

    def fetchmail(self, name, user, tls, keep, uidl=False):
        """One fetchmail run for `user` with a private HOME, rc, id and pid file under the test's
        directory; each message goes to its own file in <name>/out. Returns (exit code, output,
        the delivered files' contents)."""
        home = os.path.join(self.tmp, name)
        out = os.path.join(home, "out")
        os.makedirs(out, exist_ok=True)
        mda = os.path.join(home, "mda.sh")
        with open(mda, "w") as f:
            f.write('#!/bin/sh\nexec cat > "$(mktemp %s/msg.XXXXXXXX)"\n' % out)
        os.chmod(mda, 0o755)
        port = self.b.ports["pop3s" if tls == "implicit" else "pop3"]
        # STLS: sslproto without ssl makes fetchmail require STLS; sslcertck fails the run
        # when the certificate does not verify against the CA for the name "localhost".
        security = "ssl" if tls == "implicit" else "sslproto 'tls1.2+'"
        rc = os.path.join(home, "fetchmailrc")
        with open(rc, "w") as f:
            f.write('set no syslog\nset invisible\n'
                    'poll localhost protocol pop3 port %d %s\n'
                    '  user "%s@example.org" there with password "%s-secret"\n'
                    '  %s sslcertck sslcertfile "%s"\n'
                    '  mda "%s" no stripcr %s\n'
                    % (port, "uidl" if uidl else "", user, user, security, self.b.ca, mda,
                       "keep" if keep else "nokeep"))
        os.chmod(rc, 0o600)
        env = dict(os.environ, HOME=home, FETCHMAILHOME=home)
        r = subprocess.run([FETCHMAIL, "-f", rc, "-i", os.path.join(home, "fetchids"),
                            "--pidfile", os.path.join(home, "fetchmail.pid"), "-v", "--nodetach"],
                           capture_output=True, text=True, env=env, timeout=60, cwd=home)
        got = []
        for path in sorted(glob.glob(os.path.join(out, "msg.*"))):
            with open(path, "rb") as f:
                got.append(f.read())
            os.unlink(path)
        return r.returncode, r.stdout + r.stderr, got

    def assert_same_messages(self, expected, got, output):
        """`got` holds each of `expected` exactly once (any order), byte for byte behind the
        store's trace fields."""
        self.assertEqual(len(expected), len(got), output)
        msgid = lambda m: re.search(rb"Message-ID: <([^>]*)>", m).group(1)
        self.assertEqual(sorted(map(msgid, expected)), sorted(map(msgid, got)), "each message exactly once")
        by_id = {msgid(e): e for e in expected}
        for g in got:
            sent = by_id[msgid(g)]
            self.assertTrue(g.endswith(sent), (g[:400], sent))
            self.assertRegex(g[:len(g) - len(sent)],
                             rb"\AReturn-Path: <sender@remote\.test>\r\nReceived: [^\r\n]*\r\n(?:[ \t][^\r\n]*\r\n)*\Z")

    def fetch_all_and_delete(self, user, tls):
        sent = [message(user, "%s-%s-%d" % (user, tls, i), "Line one.\r\n.dotted line\r\n") for i in range(4)]
        for m in sent:
            deliver(self.b, user, m)
        self.assertEqual(4, len(self.b.messages(user)))
        code, output, got = self.fetchmail(tls, user, tls, keep=False)
        self.assertEqual(0, code, output)
        if tls == "starttls":
            self.assertIn("POP3> STLS\n", output)
            self.assertIn("upgrade to TLS succeeded", output)
        else:
            self.assertNotIn("POP3> STLS", output)
        self.assertIn("Subject CommonName: localhost", output)
        self.assertIn("POP3< +OK Logged in, 4 messages", output)
        self.assert_same_messages(sent, got, output)
        self.assertEqual([], self.b.messages(user), "fetchmail --nokeep deleted every message\n" + output)
        code, output, got = self.fetchmail(tls, user, tls, keep=False)
        self.assertEqual(1, code, "exit 1: no mail\n" + output)
        self.assertEqual([], got)

    def test_stls_nokeep(self):
        self.fetch_all_and_delete("alice", "starttls")

    def test_implicit_tls_nokeep(self):
        self.fetch_all_and_delete("bob", "implicit")

    def test_keep_with_uidl_fetches_nothing_new_the_second_time(self):
        sent = [message("carol", "carol-keep-%d" % i) for i in range(3)]
        for m in sent:
            deliver(self.b, "carol", m)
        code, output, got = self.fetchmail("keep", "carol", "implicit", keep=True, uidl=True)
        self.assertEqual(0, code, output)
        self.assert_same_messages(sent, got, output)
        self.assertEqual(3, len(self.b.messages("carol")), "kept")
        code, output, got = self.fetchmail("keep", "carol", "implicit", keep=True, uidl=True)
        self.assertEqual(1, code, "exit 1: nothing new\n" + output)
        self.assertEqual([], got, output)
        newer = message("carol", "carol-keep-new")
        deliver(self.b, "carol", newer)
        code, output, got = self.fetchmail("keep", "carol", "starttls", keep=True, uidl=True)
        self.assertEqual(0, code, output)
        self.assert_same_messages([newer], got, output)
        self.assertEqual(4, len(self.b.messages("carol")))


if __name__ == "__main__":
    unittest.main()
