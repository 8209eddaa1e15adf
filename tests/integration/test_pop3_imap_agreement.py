"""POP3 and IMAP on the same hamail account agree: a POP3 UIDL is the IMAP UID and
UIDVALIDITY of the INBOX message, deletions on either side show on the other, a message
retrieved by POP3 is \\Seen in IMAP after QUIT, and a POP3 session keeps the snapshot taken
at login while mail arrives."""

import imaplib
import poplib
import re
import smtplib
import socket
import ssl
import unittest

from hamail_harness import Backend, ssha512

USERS = ("alice", "bob", "carol", "dan", "erin", "frank", "gina", "hank", "ivy")
ACCOUNTS = [{"id": u, "address": "%s@example.org" % u, "password": ssha512("%s-secret" % u)} for u in USERS]
LISTENERS = (("lmtp", "lmtp", "none", "127.0.0.1", 0),
             ("pop3s", "pop3", "implicit", "127.0.0.1", 0),
             ("imaps", "imap", "implicit", "127.0.0.1", 0))


def message(user, subject, body="Hello.\r\n"):
    return ("From: Sender <sender@remote.test>\r\nTo: %s@example.org\r\nSubject: %s\r\n"
            "Date: Mon, 30 Nov 2026 10:00:00 +0000\r\n\r\n%s" % (user, subject, body)).encode()


def deliver(b, user, subject):
    with smtplib.LMTP("127.0.0.1", b.ports["lmtp"]) as c:
        c.sendmail("sender@remote.test", ["%s@example.org" % user], message(user, subject))


def wire_form(body):
    """A message as POP3 sends it before dot-stuffing: every line end CRLF, and a CRLF after a
    last line that lacks one."""
    body = re.sub(rb"(?<!\r)\n", b"\r\n", body)
    return body if body.endswith(b"\n") or not body else body + b"\r\n"


def uidl(uid, uidvalidity):
    return b"%08X%08X" % (uid, uidvalidity)


class pop3_imap_case(unittest.TestCase):
    pop3 = None

    @classmethod
    def setUpClass(cls):
        cls.b = Backend(ACCOUNTS, listeners=LISTENERS)
        if cls.pop3:
            with open(cls.b.config, "a") as f:
                f.write("[pop3]\n" + "".join("%s = %s\n" % (k, str(v).lower()) for k, v in cls.pop3.items()))
        cls.b.start()
        cls.tls = ssl.create_default_context(cafile=cls.b.ca)

    @classmethod
    def tearDownClass(cls):
        cls.b.finish()

    def pop(self, user):
        p = poplib.POP3_SSL("127.0.0.1", self.b.ports["pop3s"], context=self.tls, timeout=15)
        self.addCleanup(self.close, p)
        p.user("%s@example.org" % user)
        self.assertTrue(p.pass_("%s-secret" % user).startswith(b"+OK Logged in"))
        return p

    def imap(self, user):
        """An IMAP session with INBOX selected; returns (session, UIDVALIDITY, EXISTS)."""
        m = imaplib.IMAP4_SSL("127.0.0.1", self.b.ports["imaps"], ssl_context=self.tls, timeout=15)
        m.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.addCleanup(self.logout, m)
        self.ok(m.login("%s@example.org" % user, "%s-secret" % user))
        exists = int(self.ok(m.select("INBOX"))[0])
        uidvalidity = int(m.untagged_responses["UIDVALIDITY"][-1])
        return m, uidvalidity, exists

    @staticmethod
    def close(p):
        try:
            p.close()
        except Exception:
            pass

    @staticmethod
    def logout(m):
        try:
            m.logout()
        except Exception:
            pass

    def ok(self, result):
        typ, data = result
        self.assertEqual("OK", typ, data)
        return data

    def uids(self, m):
        return [int(x) for x in self.ok(m.uid("SEARCH", "ALL"))[0].split()]

    def flags(self, m, uid):
        data = self.ok(m.uid("FETCH", str(uid), "(FLAGS)"))
        # \Recent belongs to the IMAP session, not to the message.
        return [f for f in re.search(rb"FLAGS \(([^)]*)\)", data[0]).group(1).split() if f != rb"\Recent"]

    def pop_uidls(self, p):
        return [tuple(line.split()) for line in p.uidl()[1]]


class pop3_imap_agreement_test(pop3_imap_case):
    def test_uidl_is_imap_uid_and_uidvalidity(self):
        for i in range(4):
            deliver(self.b, "alice", "u%d" % i)
        m, uidvalidity, exists = self.imap("alice")
        self.assertEqual(4, exists)
        # A gap in the UIDs, so that UIDL cannot be the message number by accident.
        self.ok(m.uid("STORE", str(self.uids(m)[0]), "+FLAGS.SILENT", r"(\Deleted)"))
        self.ok(m.expunge())
        uids = self.uids(m)
        self.assertEqual(3, len(uids))
        p = self.pop("alice")
        self.assertEqual([(b"%d" % (i + 1), uidl(u, uidvalidity)) for i, u in enumerate(uids)], self.pop_uidls(p))
        for i, u in enumerate(uids):
            self.assertEqual(b"+OK %d %s" % (i + 1, uidl(u, uidvalidity)), p.uidl(i + 1))
        p.quit()

    def test_sizes_and_bodies_match_imap(self):
        """RETR is BODY[] with every line end CRLF and a CRLF after a last line without one, and
        LIST and the RETR +OK count those octets (RFC 1939), also for APPENDed messages with bare
        LF line ends, a line starting with "." and no CRLF at the end."""
        m, uidvalidity, _ = self.imap("frank")
        appended = (b"Subject: lf\n\nline1\n.dot\nline2", b"Subject: no final CRLF\r\n\r\nbody",
                    b"Subject: plain\r\n\r\n..two dots\r\n.\r\n")
        for msg in appended:
            self.ok(m.append("INBOX", None, None, msg))
        deliver(self.b, "frank", "lmtp")
        self.ok(m.noop())
        uids = self.uids(m)
        imap = []
        for u in uids:
            data = self.ok(m.uid("FETCH", str(u), "(RFC822.SIZE BODY.PEEK[])"))
            size = int(re.search(rb"RFC822\.SIZE (\d+)", data[0][0]).group(1))
            self.assertEqual(len(data[0][1]), size)
            imap.append(wire_form(data[0][1]))
        # The bare-LF message is 6 octets longer on the wire (4 LFs, no final line end), the
        # unterminated one 2.
        self.assertEqual(len(appended[0]) + 6, len(imap[0]))
        self.assertEqual(len(appended[1]) + 2, len(imap[1]))
        p = self.pop("frank")
        self.assertEqual([b"%d %d" % (i + 1, len(w)) for i, w in enumerate(imap)], p.list()[1])
        self.assertEqual([(b"%d" % (i + 1), uidl(u, uidvalidity)) for i, u in enumerate(uids)], self.pop_uidls(p))
        for i, w in enumerate(imap):
            resp, lines, octets = p.retr(i + 1)
            self.assertEqual(b"+OK %d octets" % len(w), resp)
            self.assertEqual(w, b"".join(line + b"\r\n" for line in lines))
        p.quit()
        # On the wire, byte for byte: CRLF everywhere and the dots doubled.
        p = self.pop("frank")
        p._putcmd("RETR 1")
        got = b""
        while not got.endswith(b"\r\n.\r\n"):
            line = p.file.readline()
            self.assertTrue(line)
            got += line
        self.assertEqual(b"+OK %d octets\r\nSubject: lf\r\n\r\nline1\r\n..dot\r\nline2\r\n.\r\n" % len(imap[0]),
                         got)
        p.quit()

    def test_imap_expunge_hides_the_message_from_the_next_pop3_session(self):
        for i in range(3):
            deliver(self.b, "bob", "e%d" % i)
        p = self.pop("bob")
        before = self.pop_uidls(p)
        self.assertEqual(3, len(before))
        m, uidvalidity, _ = self.imap("bob")
        uids = self.uids(m)
        self.ok(m.uid("STORE", str(uids[1]), "+FLAGS.SILENT", r"(\Deleted)"))
        self.ok(m.expunge())
        # The open POP3 session keeps its snapshot: the count is unchanged, and the expunged
        # message can no longer be read.
        self.assertEqual(3, p.stat()[0])
        with self.assertRaises(poplib.error_proto):
            p.retr(2)
        self.assertTrue(p.retr(3)[0].startswith(b"+OK"))
        p.quit()
        p = self.pop("bob")
        self.assertEqual(2, p.stat()[0])
        self.assertEqual([(b"1", before[0][1]), (b"2", before[2][1])], self.pop_uidls(p))
        self.assertEqual([(b"1", uidl(uids[0], uidvalidity)), (b"2", uidl(uids[2], uidvalidity))],
                         self.pop_uidls(p))
        p.quit()

    def test_quit_succeeds_when_imap_expunged_the_retrieved_and_deleted_messages(self):
        for i in range(3):
            deliver(self.b, "ivy", "x%d" % i)
        p = self.pop("ivy")
        p.retr(1)
        p.retr(2)
        p.dele(2)
        p.dele(3)
        m, _, _ = self.imap("ivy")
        self.ok(m.store("1:3", "+FLAGS.SILENT", r"(\Deleted)"))
        self.ok(m.expunge())
        # The \Seen of message 1 and the deletions of 2 and 3 meet messages already gone.
        self.assertTrue(p.quit().startswith(b"+OK"))
        m2, _, exists = self.imap("ivy")
        self.assertEqual(0, exists)

    def test_pop3_dele_is_an_expunge_for_a_selected_imap_session(self):
        for i in range(3):
            deliver(self.b, "carol", "d%d" % i)
        m, uidvalidity, exists = self.imap("carol")
        self.assertEqual(3, exists)
        uids = self.uids(m)
        p = self.pop("carol")
        self.assertTrue(p.dele(2).startswith(b"+OK"))
        # Nothing happens before QUIT.
        self.ok(m.noop())
        self.assertNotIn("EXPUNGE", m.untagged_responses)
        self.assertEqual(uids, self.uids(m))
        self.assertTrue(p.quit().startswith(b"+OK"))
        self.ok(m.noop())
        self.assertEqual([b"2"], m.untagged_responses.pop("EXPUNGE", None))
        self.assertEqual([uids[0], uids[2]], self.uids(m))
        m2, uidvalidity2, exists2 = self.imap("carol")
        self.assertEqual((uidvalidity, 2), (uidvalidity2, exists2))
        self.assertEqual([uids[0], uids[2]], self.uids(m2))

    def test_idle_sees_the_pop3_update(self):
        for i in range(3):
            deliver(self.b, "hank", "i%d" % i)
        m, _, _ = self.imap("hank")
        uids = self.uids(m)
        m.send(b"i1 IDLE\r\n")
        self.assertTrue(m.readline().startswith(b"+ "))
        p = self.pop("hank")
        p.retr(3)
        p.dele(2)
        self.assertTrue(p.quit().startswith(b"+OK"))
        # Within the IDLE: message 3 became \Seen, message 2 went away.
        m.sock.settimeout(10)
        pushed = [m.readline(), m.readline()]
        self.assertIn(b"* 2 EXPUNGE\r\n", pushed)
        fetch = [x for x in pushed if b" FETCH " in x]
        self.assertEqual(1, len(fetch), pushed)
        self.assertRegex(fetch[0], rb"\A\* [23] FETCH \(.*FLAGS \([^)]*\\Seen")
        self.assertIn(b"UID %d" % uids[2], fetch[0])
        m.send(b"DONE\r\n")
        self.assertTrue(m.readline().startswith(b"i1 OK"))

    def test_retr_sets_seen_at_quit_and_top_does_not(self):
        for i in range(3):
            deliver(self.b, "dan", "s%d" % i)
        m, _, _ = self.imap("dan")
        uids = self.uids(m)
        for u in uids:
            self.assertNotIn(rb"\Seen", self.flags(m, u))
        p = self.pop("dan")
        p.retr(1)
        p.top(2, 0)
        self.assertNotIn(rb"\Seen", self.flags(m, uids[0]), "\\Seen is set at QUIT, not before")
        self.assertTrue(p.quit().startswith(b"+OK"))
        self.ok(m.noop())
        self.assertEqual([rb"\Seen"], self.flags(m, uids[0]))
        self.assertEqual([], self.flags(m, uids[1]), "TOP does not set \\Seen")
        self.assertEqual([], self.flags(m, uids[2]))
        m2, _, _ = self.imap("dan")
        self.assertEqual([rb"\Seen"], self.flags(m2, uids[0]))

    def test_delivery_during_a_pop3_session_shows_in_the_next(self):
        deliver(self.b, "erin", "c0")
        p = self.pop("erin")
        stat = p.stat()
        self.assertEqual(1, stat[0])
        listing = p.list()[1]
        deliver(self.b, "erin", "c1")
        m, _, exists = self.imap("erin")
        self.assertEqual(2, exists, "IMAP sees the new message")
        self.assertEqual(stat, p.stat())
        self.assertEqual(listing, p.list()[1])
        self.assertEqual(1, len(self.pop_uidls(p)))
        with self.assertRaises(poplib.error_proto):
            p.retr(2)
        p.quit()
        p = self.pop("erin")
        self.assertEqual(2, p.stat()[0])
        self.assertEqual(2, len(self.pop_uidls(p)))
        self.assertIn(b"Subject: c1", b"\r\n".join(p.retr(2)[1]))
        p.quit()

    def test_imap_flags_survive_a_pop3_session_that_deletes_another_message(self):
        for i in range(2):
            deliver(self.b, "gina", "f%d" % i)
        m, _, _ = self.imap("gina")
        uids = self.uids(m)
        self.ok(m.uid("STORE", str(uids[1]), "+FLAGS", r"(\Flagged $Label1)"))
        p = self.pop("gina")
        p.dele(1)
        p.quit()
        m2, _, exists = self.imap("gina")
        self.assertEqual(1, exists)
        self.assertEqual(sorted([rb"\Flagged", b"$Label1"]), sorted(self.flags(m2, uids[1])))


class pop3_mark_seen_off_test(pop3_imap_case):
    pop3 = {"mark_seen": False}

    def test_retr_leaves_seen_alone(self):
        deliver(self.b, "alice", "unseen")
        m, _, _ = self.imap("alice")
        uid = self.uids(m)[0]
        p = self.pop("alice")
        p.retr(1)
        self.assertTrue(p.quit().startswith(b"+OK"))
        self.ok(m.noop())
        self.assertEqual([], self.flags(m, uid))


if __name__ == "__main__":
    unittest.main()
