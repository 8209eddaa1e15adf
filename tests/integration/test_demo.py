"""The README's demo command: slapd, two stores and a proxy start; welcome messages are delivered
through the proxy's SMTP to an account on each store; the endpoints file and the printed client
instructions work through the proxy (imaplib, poplib, smtplib on submission, the printed curl and
swaks commands); a second start reuses the state; the stop command ends exactly what it started."""

import imaplib
import os
import poplib
import re
import shutil
import smtplib
import ssl
import subprocess
import tempfile
import unittest

from hamail_harness import free_port

HERE = os.path.dirname(os.path.abspath(__file__))
DEMO = os.path.join(HERE, "..", "..", "appliance-image", "demo", "demo.sh")
PIDFILES = ("slapd/slapd.pid", "store-a/run/hamail-backend.pid", "store-b/run/hamail-backend.pid",
            "proxy/run/hamail-proxy.pid")


class demo_test(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="hamail-demo-it-")
        self.env = dict(os.environ, HAMAIL_DEMO_DIR=os.path.join(self.dir, "state"),
                        HAMAIL_BUILD_DIR=os.environ["HAMAIL_BUILD_DIR"])
        for name in ("LDAP", "SMTP", "SUBMISSION", "SUBMISSIONS", "LMTP", "IMAP", "IMAPS", "POP3",
                     "POP3S"):
            self.env["HAMAIL_DEMO_%s_PORT" % name] = str(free_port())

    def tearDown(self):
        self.demo("stop")
        shutil.rmtree(self.dir, ignore_errors=True)

    def demo(self, cmd):
        return subprocess.run(["bash", DEMO, cmd], env=self.env, capture_output=True, text=True, timeout=180)

    def pids(self):
        state = self.env["HAMAIL_DEMO_DIR"]
        out = []
        for f in PIDFILES:
            with open(os.path.join(state, f)) as p:
                out.append(int(p.read().split()[0]))
        return out

    def endpoints(self):
        with open(os.path.join(self.env["HAMAIL_DEMO_DIR"], "endpoints.env")) as f:
            return dict(line.strip().split("=", 1) for line in f if "=" in line and not line.startswith("#"))

    def check_clients(self, out):
        e = self.endpoints()
        tls = ssl.create_default_context(cafile=e["CA_FILE"])
        # Both accounts, on two stores, through the one proxy: IMAP with STARTTLS and implicit TLS.
        for user, password, port, implicit in ((e["USER1"], e["PASSWORD1"], e["IMAP_PORT"], False),
                                               (e["USER2"], e["PASSWORD2"], e["IMAPS_PORT"], True)):
            if implicit:
                m = imaplib.IMAP4_SSL(e["IMAP_HOST"], int(port), ssl_context=tls, timeout=30)
            else:
                m = imaplib.IMAP4(e["IMAP_HOST"], int(port), timeout=30)
                m.starttls(tls)
            m.login(user, password)
            typ, data = m.select("INBOX")
            self.assertEqual("OK", typ)
            typ, data = m.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
            self.assertIn(b"Welcome to hamail", data[0][1])
            m.logout()
        p = poplib.POP3_SSL(e["POP3_HOST"], int(e["POP3S_PORT"]), context=tls, timeout=30)
        p.user(e["USER2"])
        p.pass_(e["PASSWORD2"])
        self.assertIn(b"Welcome to hamail", b"\n".join(p.retr(1)[1]))
        p.quit()
        # Submission with implicit TLS, from one store's account to the other's, through the proxy.
        with smtplib.SMTP_SSL(e["SMTP_HOST"], int(e["SUBMISSIONS_PORT"]), context=tls,
                              timeout=30) as c:
            c.login(e["USER1"], e["PASSWORD1"])
            self.assertEqual({}, c.sendmail(e["USER1"], [e["USER2"]],
                                            "Subject: from demo\r\n\r\nHi.\r\n"))
        # The printed swaks command (SMTP port, STARTTLS), as printed.
        swaks = re.search(r"^\s+(swaks --server \S+:%s .*)$" % e["SMTP_PORT"], out, re.M).group(1)
        r = subprocess.run(["bash", "-c", swaks], capture_output=True, text=True, timeout=60)
        self.assertEqual(0, r.returncode, swaks + "\n" + r.stdout + r.stderr)
        self.assertIn("250 2.0.0 Ok: queued as", r.stdout)
        # The printed curl command, as printed.
        curl = re.search(r"^\s+try\s+(curl .*)$", out, re.M).group(1)
        r = subprocess.run(["bash", "-c", curl], capture_output=True, text=True, timeout=60)
        self.assertEqual(0, r.returncode, curl + "\n" + r.stderr)
        self.assertIn("Welcome to hamail", r.stdout)

    def test_start_reuse_stop(self):
        r = self.demo("start")
        self.assertEqual(0, r.returncode, r.stdout + r.stderr)
        self.assertIn("welcome message delivered to demo@hamail.test", r.stdout)
        self.assertIn("welcome message delivered to demo2@hamail.test", r.stdout)
        landed = re.search(r"^\s+welcome\s+(/\S+)", r.stdout, re.M).group(1)
        with open(landed, "rb") as f:
            msg = f.read()
        self.assertIn(b"Subject: Welcome to hamail", msg)
        self.assertIn(b"with ESMTPS id", msg)  # STARTTLS to the proxy
        self.assertIn(b"(hamail proxy proxy-1)", msg)
        # The store names the client the proxy told it about (XCLIENT PROTO=ESMTP), over TLS.
        self.assertIn(b"(hamail store store-a) with ESMTP id", msg)
        self.assertEqual(1, msg.count(b"Return-Path:"))
        self.assertIn("/store-a/", landed)
        self.check_clients(r.stdout)
        pids = self.pids()

        r = self.demo("start")
        self.assertEqual(0, r.returncode, r.stderr)
        self.assertIn("already running", r.stdout)
        self.assertEqual(pids, self.pids())

        r = self.demo("stop")
        self.assertEqual(0, r.returncode, r.stderr)
        for pid in pids:
            self.assertFalse(os.path.exists("/proc/%d" % pid) and
                             open("/proc/%d/stat" % pid).read().split()[2] != "Z", "pid %d still runs" % pid)
        self.assertEqual(3, self.demo("status").returncode)

        # Started again, it reuses the state: same accounts, no second welcome.
        r = self.demo("start")
        self.assertEqual(0, r.returncode, r.stdout + r.stderr)
        self.assertNotIn("creating the demo", r.stdout)
        self.assertNotIn("welcome message delivered", r.stdout)
        # The same message (read since: the Maildir flags in its name changed).
        self.assertIn(os.path.basename(landed).split(",")[0], r.stdout)
        self.check_clients(r.stdout)


if __name__ == "__main__":
    unittest.main()
