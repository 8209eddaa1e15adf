"""hamail-proxy's SMTP frontend in front of two stores, with a real Postfix as the smarthost:
smtplib on port 25 delivers one message to accounts on both stores (LMTP to each, in parallel) and
hears 250 only after both stored it; an unknown local recipient gets 550 and a remote one from an
unauthenticated client 554, without disturbing the others; a store that is down gives 451 at RCPT
(never a 5xx) and the same client succeeds once it is back; the store's own refusal (quota) is
passed on; submission (587 STARTTLS + AUTH, 465 implicit TLS) sends local recipients to their
stores and remote ones to Postfix, and answers 451 while Postfix is unreachable; the stores, which
trust the proxy's XCLIENT, log and write in Received the client's own address, not the proxy's."""

import glob
import os
import re
import shutil
import smtplib
import socket
import ssl
import subprocess
import tempfile
import time
import unittest
import urllib.request

from hamail_harness import Backend, Proxy, free_port, ssha512

PASSWORDS = {"alice": "alice-secret", "bob": "bob-secret", "proxy": "proxy-secret"}
ACCOUNTS = [
    {"id": "alice", "address": "alice@example.org", "password": ssha512("alice-secret"),
     "store": "store-a"},
    {"id": "bob", "address": "bob@example.org", "password": ssha512("bob-secret"),
     "store": "store-b"},
    # Room for one message: the second is refused by store-b at RCPT.
    {"id": "erin", "address": "erin@example.org", "quota_messages": 1, "store": "store-b"},
    {"id": "proxy", "address": "proxy@example.org", "password": ssha512("proxy-secret"),
     "store": "store-a"},
]
LMTP = {"store-a": free_port(), "store-b": free_port()}
POSTFIX_MASTER_CF = """{port} inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


def message(to, subject, size=0):
    body = "Hello.\r\n" + ("x" * 70 + "\r\n") * (size // 72)
    return ("From: sender@remote.test\r\nTo: %s\r\nSubject: %s\r\n\r\n%s" % (to, subject, body)
            ).encode()


class Postfix:
    """A Postfix instance of its own (config, queue and data directories under `root`) whose smtpd
    on 127.0.0.1:<port> relays for loopback and puts every message on hold, so the test can read
    what arrived from the hold queue. Started and stopped with `postfix -c`; its master by pid."""

    def __init__(self, root):
        self.root = root
        self.etc = os.path.join(root, "etc")
        self.spool = os.path.join(root, "spool")
        self.log_path = os.path.join(root, "maillog")
        self.port = free_port()
        os.makedirs(self.etc)
        os.makedirs(self.spool)
        os.chmod(root, 0o755)
        with open(os.path.join(self.etc, "main.cf"), "w") as f:
            f.write("""compatibility_level = 3.6
queue_directory = {spool}
data_directory = {root}/data
meta_directory = /etc/postfix
mail_owner = postfix
setgid_group = postdrop
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = smarthost.test
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
relay_domains =
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
smtpd_client_restrictions = check_client_access static:HOLD
biff = no
smtpd_banner = $myhostname ESMTP
maillog_file = {log}
maillog_file_prefixes = {root}
""".format(spool=self.spool, root=root, log=self.log_path))
        with open(os.path.join(self.etc, "master.cf"), "w") as f:
            f.write(POSTFIX_MASTER_CF.format(port="127.0.0.1:%d" % self.port))

    def postfix(self, *cmd):
        p = subprocess.run(["postfix", "-c", self.etc] + list(cmd), capture_output=True,
                           text=True, timeout=120, stdin=subprocess.DEVNULL)
        if p.returncode != 0:
            try:
                with open(self.log_path) as f:
                    log = f.read()[-3000:]
            except OSError:
                log = ""
            raise AssertionError("postfix %s: %s%s\n%s" % (cmd, p.stdout, p.stderr, log))

    def start(self):
        self.postfix("start")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), 1).close()
                return self
            except OSError:
                time.sleep(0.1)
        raise AssertionError("postfix did not listen on %d" % self.port)

    def master_pid(self):
        try:
            with open(os.path.join(self.spool, "pid", "master.pid")) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    def stop(self):
        pid = self.master_pid()
        if pid is None:
            return
        self.postfix("stop")
        for _ in range(300):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)
        os.kill(pid, 9)

    def held(self):
        """The messages in the hold queue, as `postcat` prints them (envelope and content)."""
        out = []
        for path in sorted(glob.glob(os.path.join(self.spool, "hold", "*"))):
            p = subprocess.run(["postcat", "-c", self.etc, path], capture_output=True, text=True,
                               timeout=30)
            out.append(p.stdout)
        return out


@unittest.skipUnless(os.geteuid() == 0 and shutil.which("postfix"),
                     "Postfix as the smarthost needs root and the postfix package")
class proxy_smtp_test(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="hamail-proxy-smtp-")
        os.chmod(cls.tmp, 0o755)  # Postfix's daemons run as user postfix
        cls.postfix = Postfix(os.path.join(cls.tmp, "postfix")).start()
        # The stores believe the proxy's XCLIENT (it connects from 127.0.0.1).
        cls.backends = {
            name: Backend(ACCOUNTS, store=name, smtp={"trusted_proxies": ["127.0.0.1"]},
                          listeners=(("lmtp", "lmtp", "none", "127.0.0.1", port),)).start()
            for name, port in LMTP.items()}
        # One accounts file for the proxy too (the stores' and the proxy's directory agree).
        accounts = cls.backends["store-a"].accounts_file
        proxy_pw = os.path.join(cls.tmp, "proxy.secret")
        with open(proxy_pw, "w") as f:
            f.write(PASSWORDS["proxy"] + "\n")
        cls.proxy = Proxy(
            {"login": "proxy", "password_file": proxy_pw, "connect_timeout": "1s",
             "login_timeout": "5s"},
            {"type": "file", "accounts_file": accounts},
            stores=[{"name": n, "address": "127.0.0.1", "lmtp_port": p} for n, p in LMTP.items()],
            smtp={"local_domains": ["example.org"],
                  "smarthost": "127.0.0.1:%d" % cls.postfix.port, "smarthost_tls": "none"},
            listeners=(("smtp", "smtp", "starttls", "127.0.0.1", 0),
                       ("submission", "submission", "starttls", "127.0.0.1", 0),
                       ("submissions", "submission", "implicit", "127.0.0.1", 0),
                       ("metrics", "http", "none", "127.0.0.1", 0))).start()
        cls.tls = ssl.create_default_context(cafile=cls.proxy.ca)

    @classmethod
    def tearDownClass(cls):
        cls.postfix.stop()
        rcs, logs = [], []
        for d in [cls.proxy] + list(cls.backends.values()):
            rcs.append(d.stop())
            logs.append(d.log())
            d.cleanup()
        if not os.environ.get("HAMAIL_KEEP_TEST_DIRS"):
            shutil.rmtree(cls.tmp, ignore_errors=True)
        assert rcs == [0] * len(rcs), "exit codes %r\n%s" % (rcs, "\n".join(logs))

    def mx(self):
        return smtplib.SMTP("127.0.0.1", self.proxy.ports["smtp"], timeout=30)

    def submission(self, user="alice"):
        c = smtplib.SMTP("127.0.0.1", self.proxy.ports["submission"], timeout=30)
        c.starttls(context=self.tls)
        c.login("%s@example.org" % user, PASSWORDS[user])
        return c

    def inbox(self, store, account):
        return self.backends[store].messages(account)

    def test_1_one_message_to_accounts_on_both_stores(self):
        with self.mx() as c:
            refused = c.sendmail("sender@remote.test", ["alice@example.org", "bob@example.org"],
                                 message("alice@example.org, bob@example.org", "both stores"))
        self.assertEqual({}, refused)
        for store, account in (("store-a", "alice"), ("store-b", "bob")):
            got = [m for m in self.inbox(store, account) if b"Subject: both stores" in m]
            self.assertEqual(1, len(got), "%s on %s" % (account, store))
            # The proxy's Received and the store's own, newest first.
            self.assertIn(b"(hamail proxy proxy-1)", got[0])
            self.assertLess(got[0].index(b"(hamail store " + store.encode()),
                            got[0].index(b"(hamail proxy proxy-1)"))
            self.assertEqual(1, got[0].count(b"Return-Path: <sender@remote.test>"))

    def test_2_unknown_local_550_and_relay_554_leave_the_others_alone(self):
        with self.mx() as c:
            c.ehlo("client.test")
            self.assertEqual(250, c.mail("sender@remote.test")[0])
            code, text = c.rcpt("nobody@example.org")
            self.assertEqual(550, code, text)
            code, text = c.rcpt("someone@elsewhere.test")
            self.assertEqual(554, code, text)
            self.assertIn(b"Relay access denied", text)
            self.assertEqual(250, c.rcpt("bob@example.org")[0])
            code, text = c.data(message("bob@example.org", "after refusals"))
            self.assertEqual(250, code, text)
        self.assertEqual(1, sum(b"Subject: after refusals" in m
                                for m in self.inbox("store-b", "bob")))
        self.assertEqual([], self.postfix.held())

    def test_3_the_stores_own_refusal_is_passed_on(self):
        with self.mx() as c:
            c.sendmail("sender@remote.test", ["erin@example.org"],
                       message("erin@example.org", "fills the quota"))
            c.ehlo("client.test")
            c.mail("sender@remote.test")
            code, text = c.rcpt("erin@example.org")
            self.assertEqual(452, code, text)  # store-b's own over-quota answer
            self.assertIn(b"4.2.2", text)
            c.rset()

    def test_4_stopped_store_is_451_then_the_same_client_succeeds(self):
        b = self.backends["store-b"]
        self.assertEqual(0, b.stop())
        try:
            with self.mx() as c:
                c.ehlo("client.test")
                c.mail("sender@remote.test")
                code, text = c.rcpt("bob@example.org")
                self.assertEqual(451, code, text)
                # store-a is up: its recipient goes through in the same transaction.
                self.assertEqual(250, c.rcpt("alice@example.org")[0])
                code, text = c.data(message("alice@example.org", "while b is down"))
                self.assertEqual(250, code, text)
        finally:
            b.start()
        with self.mx() as c:
            self.assertEqual({}, c.sendmail("sender@remote.test", ["bob@example.org"],
                                            message("bob@example.org", "b is back")))
        self.assertEqual(1, sum(b"Subject: b is back" in m for m in self.inbox("store-b", "bob")))

    def test_4b_store_lost_mid_transaction_is_never_reported_delivered(self):
        b = self.backends["store-b"]
        with self.mx() as c:
            c.ehlo("client.test")
            c.mail("sender@remote.test")
            self.assertEqual(250, c.rcpt("alice@example.org")[0])
            self.assertEqual(250, c.rcpt("bob@example.org")[0])
            self.assertEqual(0, b.stop())
            try:
                code, text = c.rcpt("erin@example.org")
                self.assertEqual(451, code, text)
            finally:
                b.start()
            # store-b is back, but bob's acceptance died with the old connection: the proxy must
            # not open a new one in this transaction (it would number its recipients anew).
            code, text = c.rcpt("erin@example.org")
            self.assertEqual(451, code, text)
            code, text = c.data(message("alice@example.org, bob@example.org", "lost mid-way"))
            self.assertEqual(451, code, text)  # bob was not delivered: the sender retries
        self.assertEqual([], [m for m in self.inbox("store-b", "bob") if b"lost mid-way" in m])

    def test_5_submission_local_to_the_store_remote_to_postfix(self):
        with self.submission() as c:
            refused = c.sendmail("alice@example.org", ["bob@example.org", "friend@elsewhere.test"],
                                 message("bob@example.org, friend@elsewhere.test", "submitted"))
        self.assertEqual({}, refused)
        self.assertEqual(1, sum(b"Subject: submitted" in m for m in self.inbox("store-b", "bob")))
        held = [m for m in self.postfix.held() if "Subject: submitted" in m]
        self.assertEqual(1, len(held), self.postfix.held())
        self.assertIn("friend@elsewhere.test", held[0])
        self.assertNotIn("bob@example.org\n", held[0].split("*** MESSAGE CONTENTS")[0])

    def test_6_implicit_tls_465_and_submission_refusals(self):
        with smtplib.SMTP_SSL("127.0.0.1", self.proxy.ports["submissions"], context=self.tls,
                              timeout=30) as c:
            c.login("bob@example.org", PASSWORDS["bob"])
            self.assertEqual({}, c.sendmail("bob@example.org", ["alice@example.org"],
                                            message("alice@example.org", "over 465")))
        self.assertEqual(1, sum(b"Subject: over 465" in m for m in self.inbox("store-a", "alice")))
        with smtplib.SMTP("127.0.0.1", self.proxy.ports["submission"], timeout=30) as c:
            c.starttls(context=self.tls)
            c.ehlo("client.test")
            self.assertEqual(530, c.mail("alice@example.org")[0])  # AUTH first
            with self.assertRaises(smtplib.SMTPAuthenticationError):
                c.login("alice@example.org", "wrong")
        with self.submission() as c:
            c.ehlo("client.test")
            code, text = c.mail("bob@example.org")  # not alice's address
            self.assertEqual(553, code, text)

    def test_7_smarthost_down_is_451_at_rcpt(self):
        self.postfix.stop()
        try:
            with self.submission() as c:
                c.ehlo("client.test")
                c.mail("alice@example.org")
                code, text = c.rcpt("friend@elsewhere.test")
                self.assertEqual(451, code, text)
                self.assertEqual(250, c.rcpt("bob@example.org")[0])
                code, text = c.data(message("bob@example.org", "smarthost down"))
                self.assertEqual(250, code, text)
        finally:
            self.postfix.start()
        with self.submission() as c:
            self.assertEqual({}, c.sendmail("alice@example.org", ["friend@elsewhere.test"],
                                            message("friend@elsewhere.test", "smarthost back")))
        self.assertEqual(1, sum("Subject: smarthost back" in m for m in self.postfix.held()))

    def test_8_the_store_names_the_real_client_by_xclient(self):
        # The client connects from 127.0.0.2 (the proxy reaches the stores from 127.0.0.1).
        with smtplib.SMTP("127.0.0.1", self.proxy.ports["smtp"], timeout=30,
                          source_address=("127.0.0.2", 0)) as c:
            client_port = c.sock.getsockname()[1]
            c.ehlo("real-client.test")
            self.assertEqual({}, c.sendmail("sender@remote.test", ["alice@example.org"],
                                            message("alice@example.org", "via xclient")))
        got = [m for m in self.inbox("store-a", "alice") if b"Subject: via xclient" in m]
        self.assertEqual(1, len(got))
        stores_received = got[0][:got[0].index(b"(hamail store store-a)")]
        self.assertIn(b"Received: from real-client.test ([127.0.0.2])", stores_received, got[0])
        self.assertNotIn(b"127.0.0.1", stores_received)
        with open(self.backends["store-a"].log_path, errors="replace") as f:
            log = f.read()
        self.assertRegex(log, r"xclient: client \[127\.0\.0\.2\]:%d via proxy \[127\.0\.0\.1\] "
                              r"session \S+" % client_port)

    def test_z_metrics_count_messages_and_recipients(self):
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.proxy.ports["metrics"],
                                    timeout=10) as r:
            text = r.read().decode()
        counts = dict(re.findall(r'^(hamail_proxy_smtp_\w+\{result="\w+"\}) (\d+)$', text, re.M))
        self.assertGreater(int(counts.get('hamail_proxy_smtp_messages_total{result="accepted"}', 0)),
                           5, text)
        self.assertGreater(
            int(counts.get('hamail_proxy_smtp_recipients_total{result="delivered"}', 0)), 5)
        # test_4b's message was deferred because store-b's connection was lost mid-way.
        self.assertGreaterEqual(
            int(counts.get('hamail_proxy_smtp_messages_total{result="deferred"}', 0)), 1)

if __name__ == "__main__":
    unittest.main(verbosity=2)
