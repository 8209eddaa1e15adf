"""The POP3 server of hamail-backend driven by Python's poplib over STLS and implicit TLS:
STAT, LIST, UIDL, RETR, TOP, DELE, RSET and QUIT, the UPDATE state applied only at QUIT,
dot-stuffing, a large message, refused plain-text logins and pipelined commands on a raw
socket."""

import base64
import poplib
import re
import smtplib
import socket
import ssl
import time
import unittest

from hamail_harness import Backend, ssha512

USERS = ("alice", "bob", "carol", "dan", "erin", "frank", "gina", "hank", "ivy", "jack")
ACCOUNTS = [{"id": u, "address": "%s@example.org" % u, "password": ssha512("%s-secret" % u)} for u in USERS]
LISTENERS = (("lmtp", "lmtp", "none", "127.0.0.1", 0),
             ("pop3", "pop3", "starttls", "127.0.0.1", 0),
             ("pop3s", "pop3", "implicit", "127.0.0.1", 0))
# Every capability hamail announces after login (RFC 2449 names, upper case).
CAPA_AFTER_LOGIN = {"TOP", "UIDL", "USER", "PIPELINING", "RESP-CODES", "AUTH-RESP-CODE", "SASL",
                    "EXPIRE", "LOGIN-DELAY", "IMPLEMENTATION"}
TRACE = re.compile(rb"\AReturn-Path: <sender@remote\.test>\r\nReceived: [^\r\n]*\r\n(?:[ \t][^\r\n]*\r\n)*\Z")


def start_backend(accounts, pop3=None):
    """A backend with LMTP, POP3 (STLS) and POP3S listeners; `pop3`: the [pop3] table."""
    b = Backend(accounts, listeners=LISTENERS)
    if pop3:
        with open(b.config, "a") as f:
            f.write("[pop3]\n" + "".join("%s = %s\n" % (k, str(v).lower()) for k, v in pop3.items()))
    return b.start()


def message(user, subject, body="Hello.\r\n"):
    return ("From: Sender <sender@remote.test>\r\nTo: %s@example.org\r\nSubject: %s\r\n"
            "Date: Mon, 30 Nov 2026 10:00:00 +0000\r\n\r\n%s" % (user, subject, body)).encode()


def deliver(b, user, msg):
    with smtplib.LMTP("127.0.0.1", b.ports["lmtp"]) as c:
        c.sendmail("sender@remote.test", ["%s@example.org" % user], msg)


def joined(lines):
    """poplib's lines (CRLF stripped, dot-unstuffed) back into the message's bytes."""
    return b"".join(line + b"\r\n" for line in lines)


class Raw:
    """A line-oriented POP3 client on an implicit-TLS socket, for pipelining and for the
    exact bytes on the wire (poplib removes the dot-stuffing)."""

    def __init__(self, port, ctx):
        s = socket.create_connection(("127.0.0.1", port), timeout=15)
        self.s = ctx.wrap_socket(s, server_hostname="localhost")
        self.f = self.s.makefile("rb")

    def send(self, data):
        self.s.sendall(data)

    def line(self):
        got = self.f.readline()
        if not got:
            raise EOFError("server closed")
        assert got.endswith(b"\r\n"), got
        return got[:-2]

    def multi(self):
        """A multi-line response: (status line, body lines as sent, still dot-stuffed)."""
        status = self.line()
        if not status.startswith(b"+OK"):
            return status, None
        lines = []
        while True:
            line = self.line()
            if line == b".":
                return status, lines
            lines.append(line)

    def close(self):
        self.s.close()


class pop3_case(unittest.TestCase):
    pop3 = None

    @classmethod
    def setUpClass(cls):
        cls.b = start_backend(ACCOUNTS, cls.pop3)
        cls.tls = ssl.create_default_context(cafile=cls.b.ca)

    @classmethod
    def tearDownClass(cls):
        cls.b.finish()

    def connect(self, user, implicit=False, login=True):
        if implicit:
            p = poplib.POP3_SSL("127.0.0.1", self.b.ports["pop3s"], context=self.tls, timeout=15)
        else:
            p = poplib.POP3("127.0.0.1", self.b.ports["pop3"], timeout=15)
            p.stls(self.tls)
        if login:
            self.assertEqual(b"+OK", p.user("%s@example.org" % user)[:3])
            self.assertTrue(p.pass_("%s-secret" % user).startswith(b"+OK Logged in"))
        self.addCleanup(self.close, p)
        return p

    @staticmethod
    def close(p):
        try:
            p.close()
        except Exception:
            pass

    def stored(self, user):
        """The INBOX's message files, in delivery (POP3) order."""
        return sorted(self.b.messages(user), key=lambda m: re.search(rb"Subject: (\S+)", m).group(1))

    def assert_delivered(self, delivered, got):
        """`got` is `delivered` behind the store's Return-Path and Received fields, byte for byte."""
        self.assertTrue(got.endswith(delivered), (got[:300], delivered[:300]))
        self.assertRegex(got[:len(got) - len(delivered)], TRACE)


class poplib_test(pop3_case):
    def test_capa_before_and_after_stls_and_login(self):
        p = poplib.POP3("127.0.0.1", self.b.ports["pop3"], timeout=15)
        self.addCleanup(self.close, p)
        self.assertTrue(p.getwelcome().startswith(b"+OK "))
        caps = p.capa()
        self.assertIn("STLS", caps)
        self.assertNotIn("USER", caps, "USER is announced only where it may be used")
        self.assertNotIn("SASL", caps)
        p.stls(self.tls)
        caps = p.capa()
        self.assertEqual(CAPA_AFTER_LOGIN, set(caps))
        self.assertEqual(["PLAIN", "LOGIN"], caps["SASL"])
        p.user("alice@example.org")
        p.pass_("alice-secret")
        self.assertEqual(CAPA_AFTER_LOGIN - {"USER", "SASL"}, set(p.capa()) - {"USER", "SASL"})
        self.assertNotIn("STLS", p.capa())
        self.assertEqual(b"+OK", p.noop()[:3])
        self.assertTrue(p.quit().startswith(b"+OK"))

    def test_user_before_stls_is_refused_with_auth_code(self):
        p = poplib.POP3("127.0.0.1", self.b.ports["pop3"], timeout=15)
        self.addCleanup(self.close, p)
        for send in (lambda: p.user("alice@example.org"), lambda: p.pass_("alice-secret"),
                     lambda: p._shortcmd("AUTH PLAIN " + base64.b64encode(
                         b"\0alice@example.org\0alice-secret").decode())):
            with self.assertRaises(poplib.error_proto) as e:
                send()
            self.assertTrue(str(e.exception).startswith("b'-ERR [AUTH] "), str(e.exception))
        with self.assertRaises(poplib.error_proto):
            p.stat()
        p.stls(self.tls)
        p.user("alice@example.org")
        self.assertTrue(p.pass_("alice-secret").startswith(b"+OK Logged in"))

    def test_commands_pipelined_behind_stls_are_discarded(self):
        # A man in the middle could append plain-text commands to STLS; the server must not
        # run them inside the TLS session (CVE-2011-0411 class).
        s = socket.create_connection(("127.0.0.1", self.b.ports["pop3"]), timeout=15)
        self.addCleanup(s.close)
        f = s.makefile("rb")
        self.assertTrue(f.readline().startswith(b"+OK"))
        s.sendall(b"STLS\r\nCAPA\r\n")
        self.assertTrue(f.readline().startswith(b"+OK"))
        t = self.tls.wrap_socket(s, server_hostname="localhost")
        self.addCleanup(t.close)
        g = t.makefile("rb")
        t.sendall(b"USER alice@example.org\r\n")
        self.assertEqual(b"+OK\r\n", g.readline(), "the first answer inside TLS is USER's, not CAPA's")
        t.sendall(b"PASS alice-secret\r\n")
        self.assertTrue(g.readline().startswith(b"+OK Logged in"))
        t.sendall(b"QUIT\r\n")
        self.assertTrue(g.readline().startswith(b"+OK"))

    def test_wrong_password_is_auth_error(self):
        p = self.connect("bob", login=False)
        p.user("bob@example.org")
        with self.assertRaises(poplib.error_proto) as e:
            p.pass_("wrong")
        self.assertEqual("b'-ERR [AUTH] Authentication failed'", str(e.exception))
        with self.assertRaises(poplib.error_proto) as e:
            p._shortcmd("AUTH PLAIN " + base64.b64encode(b"\0bob@example.org\0nope").decode())
        self.assertTrue(str(e.exception).startswith("b'-ERR [AUTH] "), str(e.exception))
        with self.assertRaises(poplib.error_proto) as e:
            p.stat()
        p.user("bob@example.org")
        self.assertTrue(p.pass_("bob-secret").startswith(b"+OK Logged in"))
        self.assertEqual((0, 0), p.stat())

    def test_auth_plain_and_login(self):
        p = self.connect("alice", login=False)
        ir = base64.b64encode(b"\0alice@example.org\0alice-secret").decode()
        self.assertTrue(p._shortcmd("AUTH PLAIN " + ir).startswith(b"+OK Logged in"))
        self.assertEqual(b"+OK", p.noop()[:3])
        p.quit()
        p = self.connect("alice", implicit=True, login=False)
        self.assertEqual(b"+ ", p._shortcmd("AUTH PLAIN")[:2])
        self.assertTrue(p._shortcmd(ir).startswith(b"+OK Logged in"))
        p.quit()
        p = self.connect("alice", login=False)
        self.assertEqual(b"+ " + base64.b64encode(b"Username:"), p._shortcmd("AUTH LOGIN"))
        self.assertEqual(b"+ " + base64.b64encode(b"Password:"),
                         p._shortcmd(base64.b64encode(b"alice@example.org").decode()))
        self.assertTrue(p._shortcmd(base64.b64encode(b"alice-secret").decode()).startswith(b"+OK Logged in"))
        p.quit()

    def session(self, user, implicit):
        """STAT LIST UIDL RETR TOP on three messages, DELE two, QUIT; the next session shows the
        third alone, with the same UIDL."""
        sent = [message(user, "m%d" % i, "Body of message %d.\r\nSecond line.\r\n" % i) for i in (1, 2, 3)]
        for m in sent:
            deliver(self.b, user, m)
        stored = self.stored(user)
        self.assertEqual(3, len(stored))
        p = self.connect(user, implicit)
        self.assertEqual((3, sum(len(m) for m in stored)), p.stat())
        resp, listing, _ = p.list()
        self.assertEqual([b"%d %d" % (i + 1, len(m)) for i, m in enumerate(stored)], listing)
        self.assertEqual(b"+OK 2 %d" % len(stored[1]), p.list(2))
        resp, uidls, _ = p.uidl()
        uids = [u.split()[1] for u in uidls]
        self.assertEqual([b"1", b"2", b"3"], [u.split()[0] for u in uidls])
        for u in uids:
            self.assertRegex(u, rb"\A[0-9A-F]{16}\Z")
        self.assertEqual(3, len(set(uids)))
        self.assertEqual(b"+OK 3 " + uids[2], p.uidl(3))
        for i, m in enumerate(stored):
            resp, lines, octets = p.retr(i + 1)
            self.assertEqual(b"+OK %d octets" % len(m), resp)
            self.assertEqual(m, joined(lines))
            self.assert_delivered(sent[i], joined(lines))
        head = stored[0].split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n"
        self.assertEqual(head, joined(p.top(1, 0)[1]))
        self.assertEqual(head + b"Body of message 1.\r\n", joined(p.top(1, 1)[1]))
        self.assertEqual(stored[0], joined(p.top(1, 100)[1]))
        self.assertTrue(p.dele(1).startswith(b"+OK"))
        self.assertTrue(p.dele(3).startswith(b"+OK"))
        with self.assertRaises(poplib.error_proto):
            p.retr(1)
        with self.assertRaises(poplib.error_proto):
            p.dele(3)
        self.assertEqual((1, len(stored[1])), p.stat())
        self.assertEqual([b"2 %d" % len(stored[1])], p.list()[1])
        self.assertEqual([b"2 " + uids[1]], p.uidl()[1])
        self.assertTrue(p.quit().startswith(b"+OK"))
        self.assertEqual([stored[1]], self.b.messages(user), "QUIT removed messages 1 and 3")
        p = self.connect(user, not implicit)
        self.assertEqual((1, len(stored[1])), p.stat())
        self.assertEqual([b"1 " + uids[1]], p.uidl()[1])
        self.assertEqual(stored[1], joined(p.retr(1)[1]))
        p.quit()

    def test_session_over_stls(self):
        self.session("carol", implicit=False)

    def test_session_over_implicit_tls(self):
        self.session("dan", implicit=True)

    def test_rset_undoes_dele(self):
        for i in (1, 2):
            deliver(self.b, "erin", message("erin", "r%d" % i))
        p = self.connect("erin", implicit=True)
        total = p.stat()
        self.assertEqual(2, total[0])
        p.dele(1)
        p.dele(2)
        self.assertEqual((0, 0), p.stat())
        self.assertEqual([], p.list()[1])
        self.assertEqual(b"+OK", p.rset()[:3])
        self.assertEqual(total, p.stat())
        self.assertEqual(2, len(p.list()[1]))
        p.quit()
        p = self.connect("erin")
        self.assertEqual(total, p.stat())
        p.quit()
        self.assertEqual(2, len(self.b.messages("erin")))

    def test_dropped_connection_deletes_nothing(self):
        for i in (1, 2):
            deliver(self.b, "frank", message("frank", "d%d" % i))
        p = self.connect("frank", implicit=True)
        total = p.stat()
        uidls = p.uidl()[1]
        p.dele(1)
        p.dele(2)
        self.assertEqual((0, 0), p.stat())
        p.sock.shutdown(socket.SHUT_RDWR)  # no QUIT
        p.close()
        # Give the server time to see the end of the connection before looking again.
        time.sleep(0.5)
        p = self.connect("frank")
        self.assertEqual(total, p.stat())
        self.assertEqual(uidls, p.uidl()[1])
        p.quit()
        self.assertEqual(2, len(self.b.messages("frank")))

    def test_concurrent_sessions_delete_different_messages(self):
        for i in (1, 2, 3):
            deliver(self.b, "ivy", message("ivy", "c%d" % i))
        stored = self.stored("ivy")
        a = self.connect("ivy")
        b = self.connect("ivy", implicit=True)
        self.assertTrue(a.dele(1).startswith(b"+OK"))
        self.assertTrue(b.dele(2).startswith(b"+OK"))
        self.assertEqual(b"+OK Logging out, 2 messages left", a.quit())
        # b's snapshot still lists message 1, which a's QUIT removed.
        self.assertEqual(2, b.stat()[0])
        with self.assertRaises(poplib.error_proto) as e:
            b.retr(1)
        self.assertIn("deleted by another session", str(e.exception))
        self.assertEqual(stored[2], joined(b.retr(3)[1]))
        self.assertTrue(b.quit().startswith(b"+OK"))
        self.assertEqual([stored[2]], self.b.messages("ivy"))
        c = self.connect("ivy")
        self.assertEqual((1, len(stored[2])), c.stat())
        c.quit()

    def test_dot_lines_and_large_message_round_trip(self):
        body = (".\r\n..\r\n.starts with a dot\r\n...three\r\n. \r\nmiddle\r\n.\r\nend\r\n")
        dots = message("gina", "dots", body)
        line = b"%-74s\r\n"
        big_body = b"".join((b"." if i % 7 == 0 else b"") + line % (b"line %d" % i) for i in range(16000))
        self.assertGreater(len(big_body), 1 << 20)
        big = message("gina", "large", "") + big_body
        deliver(self.b, "gina", dots)
        deliver(self.b, "gina", big)
        p = self.connect("gina", implicit=True)
        resp, lines, _ = p.retr(1)
        self.assert_delivered(dots, joined(lines))
        resp, lines, _ = p.retr(2)
        self.assertEqual(b"+OK %d octets" % len(joined(lines)), resp)
        self.assert_delivered(big, joined(lines))
        self.assertEqual(len(joined(lines)), int(p.list(2).split()[2]))
        p.quit()
        # On the wire: every line that starts with "." gets one more, and the body ends with
        # CRLF "." CRLF.
        r = Raw(self.b.ports["pop3s"], self.tls)
        self.addCleanup(r.close)
        self.assertTrue(r.line().startswith(b"+OK"))
        r.send(b"USER gina@example.org\r\nPASS gina-secret\r\n")
        r.line()
        r.line()
        r.send(b"RETR 1\r\nRETR 2\r\nQUIT\r\n")
        for n, sent in ((1, dots), (2, big)):
            status, wire = r.multi()
            stuffed = sent.replace(b"\r\n.", b"\r\n..")
            self.assertEqual(b"+OK", status[:3])
            self.assertEqual(stuffed, joined(wire)[-len(stuffed):])
        self.assertTrue(r.line().startswith(b"+OK"))

    def test_pipelined_commands_answered_in_order(self):
        sent = [message("hank", "p%d" % i) for i in (1, 2)]
        for m in sent:
            deliver(self.b, "hank", m)
        stored = self.stored("hank")
        r = Raw(self.b.ports["pop3s"], self.tls)
        self.addCleanup(r.close)
        self.assertTrue(r.line().startswith(b"+OK"))
        # The login, the commands and QUIT in one write.
        r.send(b"USER hank@example.org\r\nPASS hank-secret\r\nSTAT\r\nLIST\r\nUIDL 2\r\nRETR 2\r\n"
               b"FROB\r\nNOOP\r\nTOP 1 0\r\nDELE 1\r\nRETR 1\r\nSTAT\r\nRSET\r\nLIST 1\r\nQUIT\r\n")
        self.assertTrue(r.line().startswith(b"+OK"))
        self.assertTrue(r.line().startswith(b"+OK Logged in, 2 messages"))
        self.assertEqual(b"+OK 2 %d" % sum(len(m) for m in stored), r.line())
        status, listing = r.multi()
        self.assertTrue(status.startswith(b"+OK"), status)
        self.assertEqual([b"1 %d" % len(stored[0]), b"2 %d" % len(stored[1])], listing)
        self.assertRegex(r.line(), rb"\A\+OK 2 [0-9A-F]{16}\Z")
        status, lines = r.multi()
        self.assertEqual(b"+OK %d octets" % len(stored[1]), status)
        self.assertEqual(stored[1], joined(lines))
        self.assertTrue(r.line().startswith(b"-ERR"), "FROB")
        self.assertTrue(r.line().startswith(b"+OK"), "NOOP")
        status, lines = r.multi()
        self.assertEqual(stored[0].split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n", joined(lines))
        self.assertTrue(r.line().startswith(b"+OK"), "DELE 1")
        self.assertTrue(r.line().startswith(b"-ERR"), "RETR of a deleted message")
        self.assertEqual(b"+OK 1 %d" % len(stored[1]), r.line())
        self.assertTrue(r.line().startswith(b"+OK"), "RSET")
        self.assertEqual(b"+OK 1 %d" % len(stored[0]), r.line())
        self.assertTrue(r.line().startswith(b"+OK"), "QUIT")
        self.assertEqual(b"", r.f.read())
        self.assertEqual(2, len(self.b.messages("hank")), "RSET before QUIT: nothing deleted")


class pop3_lock_test(pop3_case):
    pop3 = {"lock_mailbox": True}

    def test_second_login_is_in_use(self):
        deliver(self.b, "jack", message("jack", "locked"))
        p = self.connect("jack")
        q = self.connect("jack", implicit=True, login=False)
        q.user("jack@example.org")
        with self.assertRaises(poplib.error_proto) as e:
            q.pass_("jack-secret")
        self.assertTrue(str(e.exception).startswith("b'-ERR [IN-USE] "), str(e.exception))
        p.quit()
        q.user("jack@example.org")
        self.assertTrue(q.pass_("jack-secret").startswith(b"+OK Logged in, 1 messages"))
        # A dropped connection releases the lock too.
        q.sock.shutdown(socket.SHUT_RDWR)
        q.close()
        deadline = time.monotonic() + 5
        while True:
            r = self.connect("jack", login=False)
            r.user("jack@example.org")
            try:
                self.assertTrue(r.pass_("jack-secret").startswith(b"+OK Logged in, 1 messages"))
                break
            except poplib.error_proto as e:
                self.assertTrue(str(e).startswith("b'-ERR [IN-USE] "), str(e))
                self.assertLess(time.monotonic(), deadline, "the lock outlived the dropped connection")
                time.sleep(0.1)
        r.quit()


class pop3_plaintext_allowed_test(pop3_case):
    pop3 = {"login_without_tls": True}

    def test_user_and_pass_without_tls(self):
        deliver(self.b, "alice", message("alice", "plain"))
        p = poplib.POP3("127.0.0.1", self.b.ports["pop3"], timeout=15)
        self.addCleanup(self.close, p)
        caps = p.capa()
        self.assertIn("USER", caps)
        self.assertEqual(["PLAIN", "LOGIN"], caps["SASL"])
        self.assertIn("STLS", caps)
        p.user("alice@example.org")
        self.assertTrue(p.pass_("alice-secret").startswith(b"+OK Logged in, 1 messages"))
        self.assertEqual(1, p.stat()[0])
        p.quit()


if __name__ == "__main__":
    unittest.main()
