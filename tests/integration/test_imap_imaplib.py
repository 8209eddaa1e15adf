"""The IMAP server of hamail-backend driven by Python's imaplib: every command imaplib has,
over STARTTLS and implicit TLS, plus raw lines for what imaplib will not send (IDLE, SASL-IR,
commands in the wrong state, bad syntax) and a CONDSTORE/QRESYNC resynchronisation."""

import base64
import imaplib
import re
import smtplib
import socket
import ssl
import threading
import time
import unittest

from hamail_harness import Backend, ssha512

ALICE = {"id": "alice", "address": "alice@example.org", "password": ssha512("alice-secret"),
         "quota_bytes": 10240000}
BOB = {"id": "bob", "address": "bob@example.org", "password": ssha512("bob-secret")}
CAROL = {"id": "carol", "address": "carol@example.org", "password": ssha512("carol-secret")}
DAN = {"id": "dan", "address": "dan@example.org", "password": ssha512("dan-secret")}
ERIN = {"id": "erin", "address": "erin@example.org", "password": ssha512("erin-secret")}
FRANK = {"id": "frank", "address": "frank@example.org", "password": ssha512("frank-secret")}
GINA = {"id": "gina", "address": "gina@example.org", "password": ssha512("gina-secret"), "quota_bytes": 4096}
HANK = {"id": "hank", "address": "hank@example.org", "password": ssha512("hank-secret"), "quota_bytes": 4096}
PASSWORDS = {"alice": "alice-secret", "bob": "bob-secret", "carol": "carol-secret",
             "dan": "dan-secret", "erin": "erin-secret", "frank": "frank-secret",
             "gina": "gina-secret", "hank": "hank-secret"}
LISTENERS = (("lmtp", "lmtp", "none", "127.0.0.1", 0),
             ("imap", "imap", "starttls", "127.0.0.1", 0),
             ("imaps", "imap", "implicit", "127.0.0.1", 0))
MAX_APPEND = 65536


def message(subject, body="Hello.\r\n", extra="", to="alice@example.org"):
    return ("From: Sender <sender@remote.test>\r\nTo: %s\r\nSubject: %s\r\n"
            "Date: Mon, 30 Nov 2026 10:00:00 +0000\r\n%s\r\n%s" % (to, subject, extra, body))


def deliver(b, user, subject, body="Hello.\r\n", extra=""):
    with smtplib.LMTP("127.0.0.1", b.ports["lmtp"]) as c:
        c.sendmail("sender@remote.test", ["%s@example.org" % user],
                   message(subject, body, extra, "%s@example.org" % user).encode())


def raw(m, line, timeout=10):
    """Send one tagged command line on imaplib's connection; return every line up to and
    including the tagged response, as str."""
    tag = line.split(" ", 1)[0]
    m.sock.settimeout(timeout)
    m.send((line + "\r\n").encode())
    out = []
    while True:
        got = m.readline()
        if not got:
            raise EOFError("server closed; got %r" % out)
        text = got.decode("utf-8", "replace").rstrip("\r\n")
        out.append(text)
        if text.startswith(tag + " "):
            return out


class imap_case(unittest.TestCase):
    imap = {"login_without_tls": True, "max_append_size": MAX_APPEND}

    @classmethod
    def setUpClass(cls):
        cls.b = Backend([ALICE, BOB, CAROL, DAN, ERIN, FRANK, GINA, HANK], listeners=LISTENERS, imap=cls.imap).start()
        cls.tls = ssl.create_default_context(cafile=cls.b.ca)

    @classmethod
    def tearDownClass(cls):
        cls.b.finish()

    def connect(self, user="alice", tls=True, login=True):
        m = imaplib.IMAP4("127.0.0.1", self.b.ports["imap"], timeout=15)
        # imaplib writes a literal and its CRLF separately: without NODELAY, Nagle and the
        # peer's delayed ACK cost 40 ms per APPEND.
        m.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if tls:
            m.starttls(self.tls)
        if login:
            m.login("%s@example.org" % user, PASSWORDS[user])
        self.addCleanup(self.close, m)
        return m

    @staticmethod
    def close(m):
        try:
            m.logout()
        except Exception:
            pass

    def ok(self, result):
        typ, data = result
        self.assertEqual("OK", typ, data)
        return data

    @staticmethod
    def unsolicited(m):
        """The next untagged line other than RECENT (which RFC 9051 dropped) and FETCH."""
        line = m.readline()
        while line.endswith(b" RECENT\r\n") or b" FETCH (" in line:
            line = m.readline()
        return line

    def uids(self, m, criteria="ALL"):
        return [int(x) for x in self.ok(m.uid("SEARCH", criteria))[0].split()]


class imaplib_test(imap_case):
    def test_capability_noop_starttls_and_logout(self):
        m = imaplib.IMAP4("127.0.0.1", self.b.ports["imap"], timeout=15)
        self.addCleanup(self.close, m)
        for cap in ("IMAP4REV1", "STARTTLS", "SASL-IR", "AUTH=PLAIN"):
            self.assertIn(cap, m.capabilities)
        self.ok(m.noop())
        m.starttls(self.tls)
        self.assertNotIn("STARTTLS", m.capabilities)
        self.ok(m.login("alice@example.org", "alice-secret"))
        typ, data = m.capability()
        self.assertEqual("OK", typ)
        caps = data[0].decode().upper().split()
        for cap in ("IDLE", "UIDPLUS", "MOVE", "NAMESPACE", "CONDSTORE", "QRESYNC", "QUOTA", "SORT",
                    "ENABLE", "UNSELECT", "APPENDLIMIT=%d" % MAX_APPEND):
            self.assertIn(cap, caps)
        self.assertNotIn("STARTTLS", caps)
        typ, data = m.logout()
        self.assertEqual("BYE", typ)

    def test_implicit_tls_port(self):
        m = imaplib.IMAP4_SSL("127.0.0.1", self.b.ports["imaps"], ssl_context=self.tls, timeout=15)
        self.addCleanup(self.close, m)
        self.assertNotIn("STARTTLS", m.capabilities)
        self.assertNotIn("LOGINDISABLED", m.capabilities)
        self.ok(m.login("alice@example.org", "alice-secret"))
        self.ok(m.select("INBOX"))

    def test_authenticate_plain_without_and_with_sasl_ir(self):
        m = self.connect(login=False)
        self.ok(m.authenticate("PLAIN", lambda _: b"\0alice@example.org\0alice-secret"))
        self.assertEqual("AUTH", m.state)
        self.ok(m.select("INBOX"))
        m2 = self.connect(login=False)
        ir = base64.b64encode(b"\0alice@example.org\0alice-secret").decode()
        lines = raw(m2, "a1 AUTHENTICATE PLAIN " + ir)
        self.assertTrue(lines[-1].startswith("a1 OK"), lines)
        lines = raw(m2, "a2 SELECT INBOX")
        self.assertTrue(lines[-1].startswith("a2 OK"), lines)

    def test_wrong_password_is_authenticationfailed(self):
        m = self.connect(login=False)
        with self.assertRaises(imaplib.IMAP4.error) as e:
            m.login("alice@example.org", "wrong")
        self.assertIn("AUTHENTICATIONFAILED", str(e.exception))
        with self.assertRaises(imaplib.IMAP4.error) as e:
            m.authenticate("PLAIN", lambda _: b"\0alice@example.org\0nope")
        self.assertIn("AUTHENTICATIONFAILED", str(e.exception))
        self.ok(m.login("alice@example.org", "alice-secret"))

    def test_mailbox_commands(self):
        m = self.connect("bob")
        self.ok(m.create("Projects"))
        self.ok(m.create("Projects/Alpha"))
        typ, data = m.create("Projects")
        self.assertEqual("NO", typ, "CREATE of an existing mailbox")
        self.assertIn(b"ALREADYEXISTS", data[0])
        names = [d.decode() for d in self.ok(m.list())]
        joined = "\n".join(names)
        self.assertRegex(joined, r'"/" (INBOX|"INBOX")')
        self.assertRegex(joined, r'"/" "?Projects/Alpha"?')
        self.assertRegex(joined, r'\\HasChildren[^\n]*"/" "?Projects"?\s*(\n|$)')
        self.assertRegex(joined, r'\\Trash[^\n]*Trash')
        self.ok(m.rename("Projects/Alpha", "Projects/Beta"))
        joined = "\n".join(d.decode() for d in self.ok(m.list('""', "Projects/*")))
        self.assertIn("Projects/Beta", joined)
        self.assertNotIn("Projects/Alpha", joined)
        self.ok(m.subscribe("Projects/Beta"))
        lsub = "\n".join(d.decode() for d in self.ok(m.lsub()) if d)
        self.assertIn("Projects/Beta", lsub)
        self.ok(m.unsubscribe("Projects/Beta"))
        lsub = "\n".join(d.decode() for d in self.ok(m.lsub()) if d)
        self.assertNotIn("Projects/Beta", lsub)
        self.ok(m.append("Projects/Beta", None, None, message("in beta").encode()))
        status = self.ok(m.status("Projects/Beta", "(MESSAGES UIDNEXT UIDVALIDITY UNSEEN RECENT)"))[0]
        self.assertRegex(status.decode(), r"MESSAGES 1\b")
        self.assertRegex(status.decode(), r"UIDNEXT 2\b")
        self.assertRegex(status.decode(), r"UNSEEN 1\b")
        self.ok(m.delete("Projects/Beta"))
        typ, data = m.select("Projects/Beta")
        self.assertEqual("NO", typ)
        self.assertIn(b"NONEXISTENT", data[0])
        typ, data = m.delete("Nothing/Here")
        self.assertEqual("NO", typ)

    def test_select_examine_check_close_unselect(self):
        for i in range(3):
            deliver(self.b, "carol", "close-%d" % i)
        m = self.connect("carol")
        data = self.ok(m.select("INBOX"))
        self.assertEqual(b"3", data[0])
        self.assertIn("READ-WRITE", m.untagged_responses)
        self.ok(m.check())
        self.ok(m.store("1", "+FLAGS", "\\Deleted"))
        self.ok(m.unselect())
        self.assertEqual(b"3", self.ok(m.select("INBOX", readonly=True))[0], "UNSELECT must not expunge")
        self.assertIn("READ-ONLY", m.untagged_responses)
        typ, data = m.store("2", "+FLAGS", "\\Flagged")
        self.assertEqual("NO", typ, "STORE in a read-only mailbox")
        self.ok(m.close())
        self.assertEqual(b"3", self.ok(m.select("INBOX"))[0], "CLOSE of EXAMINE must not expunge")
        self.ok(m.close())
        self.assertEqual(b"2", self.ok(m.select("INBOX"))[0], "CLOSE must expunge \\Deleted")

    def test_append_with_flags_and_date_then_fetch_items(self):
        m = self.connect("dan")
        body = ("--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\npart one text\r\n"
                "--b1\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
                + base64.b64encode(b"\x00\x01binary").decode() + "\r\n--b1--\r\n")
        msg = message("fetch me", body, 'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b1"\r\n'
                      'Message-ID: <fetch-1@remote.test>\r\n', "dan@example.org").encode()
        date = imaplib.Time2Internaldate(time.mktime((2025, 5, 17, 12, 30, 0, 0, 0, -1)))
        typ, data = m.append("INBOX", "(\\Flagged $Label1)", date, msg)
        self.assertEqual("OK", typ, data)
        self.assertRegex(data[0].decode(), r"APPENDUID \d+ 1\b")
        self.ok(m.select("INBOX"))
        items = ("(UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE BODYSTRUCTURE BODY.PEEK[HEADER.FIELDS (SUBJECT)] "
                 "BODY.PEEK[1] BODY.PEEK[]<0.10> BINARY.PEEK[2] BINARY.SIZE[2])")
        data = self.ok(m.fetch("1", items))
        flat = b"".join(x if isinstance(x, bytes) else b"".join(x) for x in data)
        self.assertIn(b"\\Flagged", flat)
        self.assertIn(b"$Label1", flat)
        self.assertNotIn(b"\\Seen", flat, "PEEK must not set \\Seen")
        self.assertIn(b'INTERNALDATE "17-May-2025 12:30:00', flat)
        self.assertIn(b"RFC822.SIZE %d" % len(msg), flat)
        self.assertIn(b'"fetch me"', flat, "ENVELOPE subject")
        self.assertIn(b"<fetch-1@remote.test>", flat)
        self.assertRegex(flat, rb'BODYSTRUCTURE \(\("(?i:text)" "(?i:plain)"')
        self.assertIn(b"Subject: fetch me", flat)
        self.assertIn(b"part one text", flat)
        self.assertIn(b"<0> {10}" if b"<0> {10}" in flat else b"<0> ", flat)
        self.assertIn(b"\x00\x01binary", flat, "BINARY decodes base64")
        self.assertIn(b"BINARY.SIZE[2] 8", flat)
        data = self.ok(m.fetch("1", "(RFC822.HEADER RFC822.TEXT)"))
        flat = b"".join(x if isinstance(x, bytes) else b"".join(x) for x in data)
        self.assertIn(b"Subject: fetch me", flat)
        data = self.ok(m.fetch("1", "(BODY[] FLAGS)"))
        self.assertEqual(msg, data[0][1])
        self.assertIn(b"\\Seen", b"".join(x if isinstance(x, bytes) else x[0] for x in data))
        data = self.ok(m.fetch("1", "(RFC822)"))
        self.assertEqual(msg, data[0][1])

    def test_fetch_mime_parts_of_a_nested_message(self):
        msg = (b"From: A <a@x>\r\nTo: b@x\r\nSubject: complex\r\nMIME-Version: 1.0\r\n"
               b"Content-Type: multipart/mixed; boundary=\"outer\"\r\n\r\npreamble\r\n"
               b"--outer\r\nContent-Type: text/plain; charset=utf-8\r\n"
               b"Content-Transfer-Encoding: quoted-printable\r\n\r\nGr=C3=BC=C3=9Fe\r\nline two\r\n"
               b"--outer\r\nContent-Type: multipart/alternative; boundary=\"alt\"\r\n\r\n"
               b"--alt\r\nContent-Type: text/plain\r\n\r\nplain alt\r\n--alt\r\nContent-Type: text/html\r\n"
               b"\r\n<p>html</p>\r\n--alt--\r\n"
               b"--outer\r\nContent-Type: message/rfc822\r\n\r\nFrom: inner@x\r\nSubject: inner\r\n"
               b"Content-Type: multipart/mixed; boundary=\"in\"\r\n\r\n--in\r\nContent-Type: text/plain\r\n\r\n"
               b"inner text\r\n--in\r\nContent-Type: application/octet-stream\r\n"
               b"Content-Transfer-Encoding: base64\r\n\r\nAAECAwQ=\r\n--in--\r\n"
               b"--outer\r\nContent-Type: application/pdf; name=\"a.pdf\"\r\n"
               b"Content-Disposition: attachment; filename=\"a.pdf\"\r\nContent-Transfer-Encoding: base64\r\n"
               b"\r\nJVBERi0xLjQK\r\n--outer--\r\nepilogue\r\n")
        m = self.connect("dan")
        self.ok(m.append("Junk", None, None, msg))
        self.ok(m.select("Junk"))
        inner = msg[msg.index(b"From: inner@x"):msg.index(b"\r\n--outer\r\nContent-Type: application/pdf")]
        parts = {"1": b"Gr=C3=BC=C3=9Fe\r\nline two", "2.1": b"plain alt", "2.2": b"<p>html</p>",
                 "3": inner, "3.HEADER": inner[:inner.index(b"\r\n\r\n") + 4], "3.1": b"inner text",
                 "3.2": b"AAECAwQ=", "4": b"JVBERi0xLjQK", "TEXT": msg[msg.index(b"preamble"):],
                 "1.MIME": b"Content-Type: text/plain; charset=utf-8\r\n"
                           b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"}
        for part, want in parts.items():
            data = self.ok(m.fetch("1", "(BODY.PEEK[%s])" % part))
            self.assertEqual(want, data[0][1], part)
        data = self.ok(m.fetch("1", "(BODYSTRUCTURE)"))[0].decode()
        self.assertIn('("text" "plain" ("charset" "utf-8") NIL NIL "quoted-printable" 25 1 ', data)
        self.assertIn('("message" "rfc822" NIL NIL NIL "7bit" %d (NIL "inner" ' % len(inner), data)
        self.assertIn(' "alternative" ("boundary" "alt")', data)
        self.assertIn('("application" "pdf" ("name" "a.pdf") NIL NIL "base64" 12 NIL '
                      '("attachment" ("filename" "a.pdf"))', data)
        self.assertTrue(data.endswith(' "mixed" ("boundary" "outer") NIL NIL NIL))'), data)
        data = self.ok(m.fetch("1", "(BINARY.PEEK[1] BINARY.SIZE[1] BINARY.PEEK[3.2] BINARY.PEEK[4])"))
        self.assertEqual("Gr\u00fc\u00dfe\r\nline two".encode(), data[0][1])
        self.assertIn(b"BINARY.SIZE[1] 17", data[1][0])
        self.assertEqual(b"\x00\x01\x02\x03\x04", data[1][1])
        self.assertEqual(b"%PDF-1.4\n", data[2][1])

    def test_store_and_search(self):
        deliver(self.b, "erin", "alpha report", "the quick brown fox\r\n")
        deliver(self.b, "erin", "beta notes", "lazy dog\r\n", "Cc: boss@remote.test\r\n")
        deliver(self.b, "erin", "=?UTF-8?Q?Gr=C3=BC=C3=9Fe_aus_K=C3=B6ln?=", "Stra\xdfe\r\n")
        m = self.connect("erin")
        self.ok(m.select("INBOX"))
        data = self.ok(m.store("1", "+FLAGS", "(\\Seen \\Answered)"))
        self.assertIn(b"\\Answered", data[0])
        data = self.ok(m.store("1", "-FLAGS", "(\\Answered)"))
        self.assertNotIn(b"\\Answered", data[0])
        data = self.ok(m.store("2", "FLAGS.SILENT", "(\\Flagged custom1)"))
        self.assertEqual([None], data, "FLAGS.SILENT must not answer with FETCH")
        self.assertEqual(b"1", self.ok(m.search(None, "SEEN"))[0])
        self.assertEqual(b"2 3", self.ok(m.search(None, "UNSEEN"))[0])
        self.assertEqual(b"2", self.ok(m.search(None, "FLAGGED"))[0])
        self.assertEqual(b"2", self.ok(m.search(None, "KEYWORD", "custom1"))[0])
        self.assertEqual(b"1", self.ok(m.search(None, "SUBJECT", "alpha"))[0])
        self.assertEqual(b"1", self.ok(m.search(None, "BODY", "brown"))[0])
        self.assertEqual(b"2", self.ok(m.search(None, "HEADER", "Cc", "boss"))[0])
        self.assertEqual(b"1 3", self.ok(m.search(None, "NOT", "FLAGGED"))[0])
        self.assertEqual(b"1 2", self.ok(m.search(None, "OR", "SEEN", "FLAGGED"))[0])
        self.assertEqual(b"1 2 3", self.ok(m.search(None, "FROM", "sender@remote.test", "SINCE",
                                                    "1-Jan-2020", "LARGER", "10"))[0])
        self.assertEqual(b"2:3" if False else b"2 3", self.ok(m.search(None, "2:*"))[0])
        m.literal = "K\xf6ln".encode()
        self.assertEqual(b"3", self.ok(m.search("UTF-8", "SUBJECT"))[0], "CHARSET UTF-8 subject")
        m.literal = "stra\xdfe".encode()
        self.assertEqual(b"3", self.ok(m.search("UTF-8", "TEXT"))[0], "CHARSET UTF-8 body")
        self.assertEqual(b"", self.ok(m.search(None, "SUBJECT", "nothing-matches"))[0])

    def test_search_decodes_transfer_encodings_and_charsets(self):
        m = self.connect("frank")
        self.ok(m.append("Sent", None, None, b"Subject: qp\r\nContent-Type: text/plain; charset=utf-8\r\n"
                         b"Content-Transfer-Encoding: quoted-printable\r\n\r\nStra=C3=9Fenbahn fa=\r\nhrt\r\n"))
        self.ok(m.append("Sent", None, None, b"Subject: b64\r\nContent-Type: text/plain; charset=iso-8859-1\r\n"
                         b"Content-Transfer-Encoding: base64\r\n\r\nU3RyYd9lbmJhaG4gZmFocnQ=\r\n"))
        self.ok(m.append("Sent", None, None, b"Subject: other\r\n\r\nnothing here\r\n"))
        self.ok(m.select("Sent"))
        for term, want in (("Stra\u00dfenbahn", b"1 2"), ("stra\u00dfenBAHN", b"1 2"), ("fahrt", b"1 2"),
                           ("nothing", b"3"), ("stra=c3", b"")):
            m.literal = term.encode()
            self.assertEqual([want], self.ok(m.search("UTF-8", "BODY")), term)

    def test_uid_commands_copy_and_move(self):
        m = self.connect("bob")
        for i in range(4):
            self.ok(m.append("INBOX", None, None, message("uid-%d" % i, to="bob@example.org").encode()))
        self.ok(m.select("INBOX"))
        uids = self.uids(m, "SUBJECT uid-")
        self.assertEqual(4, len(uids))
        data = self.ok(m.uid("FETCH", "%d" % uids[0], "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])"))
        self.assertIn(b"UID %d" % uids[0], data[0][0])
        self.assertIn(b"uid-0", data[0][1])
        data = self.ok(m.uid("STORE", "%d" % uids[1], "+FLAGS", "(\\Deleted)"))
        self.assertIn(b"UID %d" % uids[1], data[0])
        data = self.ok(m.uid("COPY", "%d" % uids[0], "Archive"))
        self.assertIn("COPYUID", str(m.untagged_responses) + str(data))
        self.ok(m.copy("1", "Archive"))
        self.ok(m.uid("MOVE", "%d" % uids[2], "Archive"))
        self.assertNotIn(uids[2], self.uids(m))
        data = self.ok(m.uid("EXPUNGE", "%d" % uids[1]))
        self.assertNotIn(uids[1], self.uids(m))
        self.assertIn(uids[3], self.uids(m))
        self.ok(m.select("Archive"))
        self.assertEqual(3, len(self.uids(m, "SUBJECT uid-")))

    def test_expunge_removes_only_deleted(self):
        m = self.connect("bob")
        for i in range(3):
            m.append("Junk", "(\\Deleted)" if i == 1 else None, None, message("exp-%d" % i).encode())
        self.ok(m.select("Junk"))
        data = self.ok(m.expunge())
        self.assertEqual([b"2"], data)
        self.assertEqual(b"1 2", self.ok(m.search(None, "ALL"))[0])

    def test_namespace_and_quota(self):
        m = self.connect()
        data = self.ok(m.namespace())
        self.assertRegex(data[0].decode(), r'^\(\(""\s+"/"\)\)')
        roots, quotas = self.ok(m.getquotaroot("INBOX"))
        self.assertEqual([b'"INBOX" ""'], roots)
        self.assertRegex(quotas[0], rb'^"" \(STORAGE \d+ 10000\)$')
        self.assertEqual(quotas, self.ok(m.getquota('""')))
        # bob has no quota: INBOX has no quota root (RFC 9208 section 4.3.2).
        bob = self.connect("bob")
        roots, quotas = self.ok(bob.getquotaroot("INBOX"))
        self.assertEqual([b'"INBOX"'], roots)

    def test_enable_and_myrights(self):
        m = self.connect()
        typ, data = m._simple_command("ENABLE", "CONDSTORE")
        self.assertEqual("OK", typ)
        self.assertIn(b"CONDSTORE", b" ".join(m.untagged_responses.pop("ENABLED", [b""])))
        with self.assertRaises(imaplib.IMAP4.error):
            m.myrights("INBOX")
        self.ok(m.noop())

    def test_remaining_imaplib_commands(self):
        m = self.connect("erin")
        self.ok(m.select("INBOX"))
        typ, data = m.recent()
        self.assertEqual("OK", typ)
        typ, data = m.xatom("ID", '("name" "imaplib")')
        self.assertEqual("OK", typ)
        self.assertIn("ID", m.untagged_responses)
        typ, data = m.setquota('""', "(STORAGE 1)")
        self.assertEqual("NO", typ, "quotas live in the directory")
        for call in (lambda: m.getacl("INBOX"), lambda: m.setacl("INBOX", "bob", "lr"),
                     lambda: m.deleteacl("INBOX", "bob"), lambda: m.proxyauth("bob"),
                     lambda: m.partial("1", "RFC822", "0", "10"),
                     lambda: m.getannotation("INBOX", '"/comment"', '"value"')):
            with self.assertRaises(imaplib.IMAP4.error):
                call()
        self.ok(m.noop())
        other = self.connect(login=False)
        with self.assertRaises(imaplib.IMAP4.error) as e:
            other.login_cram_md5("alice@example.org", "alice-secret")
        self.assertIn("CANNOT", str(e.exception))
        self.ok(other.login("alice@example.org", "alice-secret"))

    def test_sort_and_thread(self):
        m = self.connect("carol")
        day = [imaplib.Time2Internaldate(time.mktime((2025, 1, d, 12, 0, 0, 0, 0, -1))) for d in (1, 2, 3)]
        m.append("Drafts", None, day[0], message("b topic", extra="Message-ID: <t1@x>\r\n").encode())
        m.append("Drafts", None, day[1], message("a other", extra="Message-ID: <t2@x>\r\n").encode())
        m.append("Drafts", None, day[2], message("Re: b topic", extra="Message-ID: <t3@x>\r\n"
                                                "In-Reply-To: <t1@x>\r\nReferences: <t1@x>\r\n").encode())
        self.ok(m.select("Drafts"))
        self.assertEqual(b"2 1 3", self.ok(m.sort("(SUBJECT)", "UTF-8", "ALL"))[0])
        self.assertEqual(b"3 2 1", self.ok(m.sort("(REVERSE ARRIVAL)", "UTF-8", "ALL"))[0])
        self.assertEqual(b"(1 3)(2)", self.ok(m.thread("REFERENCES", "UTF-8", "ALL"))[0])
        data = self.ok(m.thread("ORDEREDSUBJECT", "UTF-8", "ALL"))[0]
        self.assertIn(b"(2)", data)

    def test_idle_sees_delivery_and_expunge(self):
        m = self.connect("alice")
        self.ok(m.select("INBOX"))
        before = len(self.ok(m.search(None, "ALL"))[0].split())
        m.sock.settimeout(15)
        m.send(b"i1 IDLE\r\n")
        self.assertTrue(m.readline().startswith(b"+"))
        deliver(self.b, "alice", "while idling")
        self.assertEqual(b"* %d EXISTS\r\n" % (before + 1), self.unsolicited(m))
        other = self.connect("alice")
        self.ok(other.select("INBOX"))
        self.ok(other.store("%d" % (before + 1), "+FLAGS", "\\Deleted"))
        self.ok(other.expunge())
        self.assertEqual(b"* %d EXPUNGE\r\n" % (before + 1), self.unsolicited(m))
        m.send(b"DONE\r\n")
        self.assertTrue(m.readline().startswith(b"i1 OK"))
        self.ok(m.noop())

    def test_error_cases_lose_nothing(self):
        m = self.connect("alice")
        self.ok(m.append("Drafts", None, None, message("keep me").encode()))
        # Wrong state: FETCH before SELECT.
        lines = raw(m, "w1 FETCH 1 FLAGS")
        self.assertTrue(lines[-1].startswith("w1 BAD"), lines)
        typ, data = m.select("No/Such/Box")
        self.assertEqual("NO", typ)
        self.assertIn(b"[NONEXISTENT]", data[0])
        self.ok(m.select("Drafts"))
        lines = raw(m, "w2 FETCH 0:x FLAGS")
        self.assertTrue(lines[-1].startswith("w2 BAD"), lines)
        lines = raw(m, "w3 STORE 1 +FLAGS (\\Seen")
        self.assertTrue(lines[-1].startswith("w3 BAD"), lines)
        lines = raw(m, "w4 FROBNICATE")
        self.assertTrue(lines[-1].startswith("w4 BAD"), lines)
        lines = raw(m, "w5 SEARCH NOSUCHKEY")
        self.assertTrue(lines[-1].startswith("w5 BAD"), lines)
        # Too large: a synchronizing literal over max_append_size is refused before it is sent.
        typ, data = m.append("Drafts", None, None, b"Subject: big\r\n\r\n" + b"x" * (MAX_APPEND + 100))
        self.assertEqual("NO", typ, data)
        self.assertIn(b"[TOOBIG]", data[0])
        self.ok(m.noop())
        data = self.ok(m.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])"))
        subjects = [d[1] for d in data if isinstance(d, tuple)]
        self.assertEqual(1, len(subjects), subjects)
        self.assertIn(b"keep me", subjects[0])
        self.assertEqual(b"1", self.ok(m.search(None, "ALL"))[0])

    def test_starttls_discards_pipelined_plaintext(self):
        s = socket.create_connection(("127.0.0.1", self.b.ports["imap"]), timeout=10)
        self.addCleanup(s.close)
        f = s.makefile("rb")
        self.assertTrue(f.readline().startswith(b"* OK"))
        s.sendall(b"s1 STARTTLS\r\ns2 LOGIN alice@example.org alice-secret\r\n")
        self.assertTrue(f.readline().startswith(b"s1 OK"))
        t = self.tls.wrap_socket(s, server_hostname="localhost")
        t.sendall(b"s3 NOOP\r\n")
        got = b""
        while b"s3 " not in got:
            chunk = t.recv(4096)
            if not chunk:
                break
            got += chunk
        self.assertNotIn(b"s2 ", got, "a command sent before the TLS handshake must be discarded")
        self.assertIn(b"s3 OK", got)
        t.sendall(b"s4 SELECT INBOX\r\n")
        self.assertTrue(t.recv(4096).startswith(b"s4 BAD"), "still not authenticated")
        t.close()

    def test_idle_reports_flag_changes(self):
        deliver(self.b, "frank", "idle flags")
        m = self.connect("frank")
        count = int(self.ok(m.select("INBOX"))[0])
        m.sock.settimeout(15)
        m.send(b"i2 IDLE\r\n")
        self.assertTrue(m.readline().startswith(b"+"))
        other = self.connect("frank")
        self.ok(other.select("INBOX"))
        self.ok(other.store("%d" % count, "+FLAGS.SILENT", "(\\Flagged)"))
        line = m.readline()
        while line.endswith(b" RECENT\r\n"):
            line = m.readline()
        self.assertTrue(line.startswith(b"* %d FETCH (" % count), line)
        self.assertIn(b"\\Flagged", line)
        m.send(b"DONE\r\n")
        self.assertTrue(m.readline().startswith(b"i2 OK"))

    def test_too_many_errors_before_login_disconnect(self):
        s = socket.create_connection(("127.0.0.1", self.b.ports["imap"]), timeout=10)
        self.addCleanup(s.close)
        f = s.makefile("rb")
        f.readline()
        s.sendall(b"".join(b"e%d BOGUS\r\n" % i for i in range(10)))
        lines = []
        while True:
            line = f.readline()
            if not line:
                break
            lines.append(line)
        self.assertTrue(any(l.startswith(b"* BYE") for l in lines), lines)
        self.assertLessEqual(len([l for l in lines if b" BAD" in l]), 6, lines)

    def test_login_in_wrong_state_is_bad(self):
        m = self.connect("alice")
        lines = raw(m, "x1 LOGIN alice@example.org alice-secret")
        self.assertTrue(lines[-1].startswith("x1 BAD"), lines)
        self.ok(m.noop())


class imaplib_extensions_test(imap_case):
    """CONDSTORE, ESEARCH, SEARCHRES, MULTIAPPEND, UTF8=ACCEPT, LITERAL+ limits, mailbox edge
    cases and two sessions on one mailbox."""

    def test_condstore_store_fetch_and_search(self):
        m = self.connect("bob")
        for i in range(3):
            self.ok(m.append("Sent", None, None, message("cs-%d" % i).encode()))
        lines = raw(m, "c1 SELECT Sent (CONDSTORE)")
        self.assertTrue(lines[-1].startswith("c1 OK"), lines)
        high = int(re.search(r"HIGHESTMODSEQ (\d+)", "\n".join(lines)).group(1))
        lines = raw(m, "c2 STORE 2 +FLAGS (\\Flagged)")
        changed = int(re.search(r"MODSEQ \((\d+)\)", lines[0]).group(1))
        self.assertGreater(changed, high)
        lines = raw(m, "c3 STORE 1:3 (UNCHANGEDSINCE %d) +FLAGS (\\Seen)" % high)
        self.assertRegex(lines[-1], r"^c3 OK \[MODIFIED 2\]")
        self.assertEqual(2, len([l for l in lines if l.startswith("* ")]), lines)
        lines = raw(m, "c4 FETCH 1:* (FLAGS) (CHANGEDSINCE %d)" % high)
        self.assertEqual(3, len([l for l in lines if " FETCH (" in l and l.startswith("* ")]), lines)
        lines = raw(m, "c5 FETCH 1:* (FLAGS) (CHANGEDSINCE %d)" % changed)
        self.assertEqual(["* 1 FETCH", "* 3 FETCH"], [l[:9] for l in lines if l.startswith("* ")], lines)
        lines = raw(m, "c6 SEARCH MODSEQ %d" % (changed + 1))
        self.assertRegex(lines[0], r"^\* SEARCH 1 3 \(MODSEQ \d+\)$")
        lines = raw(m, "c7 STORE 1 (UNCHANGEDSINCE 0) -FLAGS (\\Seen)")
        self.assertRegex(lines[-1], r"^c7 OK \[MODIFIED 1\]")

    def test_esearch_and_searchres(self):
        m = self.connect("bob")
        for i in range(4):
            self.ok(m.append("Trash", "(\\Seen)" if i % 2 else None, None, message("es-%d" % i).encode()))
        self.ok(m.select("Trash"))
        lines = raw(m, "e1 SEARCH RETURN (MIN MAX COUNT ALL) UNSEEN")
        self.assertEqual('* ESEARCH (TAG "e1") MIN 1 MAX 3 COUNT 2 ALL 1,3', lines[0])
        lines = raw(m, "e2 UID SEARCH RETURN (COUNT) ALL")
        self.assertEqual('* ESEARCH (TAG "e2") UID COUNT 4', lines[0])
        lines = raw(m, "e3 SEARCH RETURN (SAVE) SEEN")
        self.assertEqual(["e3 OK"], [l[:5] for l in lines])
        lines = raw(m, "e4 FETCH $ (UID)")
        self.assertEqual(["* 2 FETCH (UID 2)", "* 4 FETCH (UID 4)"], lines[:-1])
        lines = raw(m, "e5 SEARCH RETURN () $")
        self.assertEqual('* ESEARCH (TAG "e5") ALL 2,4', lines[0])

    def test_multiappend_is_atomic(self):
        m = self.connect("carol")
        m.sock.settimeout(10)
        one, two = message("multi-1").encode(), message("multi-2").encode()
        m.send(b"ma1 APPEND Junk (\\Seen) {%d+}\r\n%s {%d+}\r\n%s\r\n" % (len(one), one, len(two), two))
        line = m.readline()
        while line.startswith(b"* "):
            line = m.readline()
        self.assertRegex(line.decode(), r"^ma1 OK \[APPENDUID \d+ 1:2\]")
        # The second message is refused (no such flag syntax): neither is stored.
        m.send(b"ma2 APPEND Junk {%d+}\r\n%s (\\Bogus\\) {%d+}\r\n%s\r\n" % (len(one), one, len(two), two))
        line = m.readline()
        while line.startswith(b"* "):
            line = m.readline()
        self.assertTrue(line.startswith(b"ma2 BAD") or line.startswith(b"ma2 NO"), line)
        status = self.ok(m.status("Junk", "(MESSAGES)"))[0].decode()
        self.assertRegex(status, r"MESSAGES 2\b")

    def test_utf8_mailbox_names(self):
        m = self.connect("carol")
        self.ok(m.enable("UTF8=ACCEPT"))
        self.ok(m.create('"\u00c4rger/K\u00f6ln"'))
        names = "\n".join(d.decode() for d in self.ok(m.list('""', '"\u00c4rger/*"')))
        self.assertIn('"\u00c4rger/K\u00f6ln"', names)
        plain = self.connect("carol")
        names = "\n".join(d.decode() for d in self.ok(plain.list('""', "*")))
        self.assertIn('"&AMQ-rger/K&APY-ln"', names, "modified UTF-7 without UTF8=ACCEPT")
        self.ok(plain.select('"&AMQ-rger/K&APY-ln"'))
        lines = raw(plain, 'u1 CREATE "\u00e4"')  # 8-bit without UTF8=ACCEPT
        self.assertRegex(lines[-1], r"^u1 (BAD|NO)")

    def test_append_literal8(self):
        m = self.connect("carol")
        m.sock.settimeout(10)
        msg = "Subject: l8\r\n\r\nk\u00f6rper\r\n".encode()
        m.send(b"l1 APPEND Sent ~{%d+}\r\n%s\r\n" % (len(msg), msg))
        self.assertRegex(self.unsolicited_until(m, b"l1 "), rb"^l1 OK \[APPENDUID \d+ \d+\]")

    # APPEND's "UTF8 (~{n})" data item (RFC 6855 section 4).
    def test_append_utf8_data_item(self):
        m = self.connect("carol")
        self.ok(m.enable("UTF8=ACCEPT"))
        m.sock.settimeout(10)
        msg = "Subject: Gr\u00fc\u00dfe\r\nTo: \u00fc@example.org\r\n\r\nk\u00f6rper\r\n".encode()
        m.send(b"u1 APPEND Sent UTF8 (~{%d+}\r\n%s)\r\n" % (len(msg), msg))
        self.assertRegex(self.unsolicited_until(m, b"u1 "), rb"^u1 OK \[APPENDUID \d+ \d+\]")

    @staticmethod
    def unsolicited_until(m, prefix):
        line = m.readline()
        while not line.startswith(prefix):
            line = m.readline()
        return line

    def test_non_synchronizing_literal_over_limit(self):
        m = self.connect("dan")
        m.sock.settimeout(10)
        body = (b"Subject: big\r\n\r\n" + b"x" * (MAX_APPEND + 10) + b"\r\nz1 CREATE Injected\r\n")
        m.send(b"t1 APPEND Drafts {%d+}\r\n" % len(body))
        try:
            m.send(body + b"\r\nt2 NOOP\r\n")
        except OSError:
            pass
        got = b""
        try:
            while True:
                chunk = m.sock.recv(65536)
                if not chunk:
                    break
                got += chunk
                if b"t2 " in got:
                    break
        except (socket.timeout, OSError):
            pass
        self.assertRegex(got, rb"(\* BYE|t1 (NO|BAD))", got)
        self.assertNotIn(b"z1 OK", got, "literal data must never run as a command")
        other = self.connect("dan")
        self.assertEqual("NO", other.select("Injected")[0])
        self.ok(other.select("Drafts"))
        self.assertEqual([b""], self.ok(other.search(None, "SUBJECT", "big")))

    def test_over_quota_append_and_copy_store_nothing(self):
        m = self.connect("gina")
        for i in range(3):
            self.ok(m.append("INBOX", None, None, message("q-%d" % i, "x" * 900 + "\r\n").encode()))
        typ, data = m.append("INBOX", None, None, message("q-big", "y" * 2000 + "\r\n").encode())
        self.assertEqual("NO", typ)
        self.assertIn(b"[OVERQUOTA]", data[0])
        self.ok(m.select("INBOX"))
        self.assertEqual(b"1 2 3", self.ok(m.search(None, "ALL"))[0])
        typ, data = m.copy("1:3", "Trash")
        self.assertEqual("NO", typ)
        self.assertIn(b"[OVERQUOTA]", data[0])
        self.assertRegex(self.ok(m.status("Trash", "(MESSAGES)"))[0].decode(), r"MESSAGES 0\b",
                         "a refused COPY copies nothing")
        roots, quotas = self.ok(m.getquotaroot("INBOX"))
        self.assertRegex(quotas[0], rb'^"" \(STORAGE [34] 4\)$')

    # imap-bugs.md B1 (fixed in 720a869): MOVE inside one account was checked against the quota.
    def test_move_near_quota_is_allowed(self):
        m = self.connect("hank")
        for i in range(3):
            self.ok(m.append("Junk", None, None, message("mq-%d" % i, "x" * 900 + "\r\n").encode()))
        self.ok(m.select("Junk"))
        # Usage stays the same: moving to Trash (how clients delete) must work near the quota.
        self.ok(m.uid("MOVE", "1:*", "Trash"))
        self.assertEqual(b"", self.ok(m.search(None, "ALL"))[0])

    def test_mailbox_edge_cases(self):
        m = self.connect("erin")
        typ, data = m.create("inbox")
        self.assertEqual("NO", typ)
        typ, data = m.delete("INBOX")
        self.assertEqual("NO", typ)
        self.ok(m.create("Parent/Child"))
        typ, data = m.delete("Parent")
        names = "\n".join(d.decode() for d in self.ok(m.list('""', "Parent*")))
        self.assertIn('"Parent/Child"', names, "DELETE of a parent keeps its children")
        if typ == "OK":
            self.assertRegex(names, r'\\Noselect[^\n]*"Parent"')
        else:
            self.assertIn(b"HASCHILDREN", data[0])
        self.ok(m.rename("Parent", "Moved"))
        names = "\n".join(d.decode() for d in self.ok(m.list('""', "*")))
        self.assertIn('"Moved/Child"', names, "RENAME moves the children")
        self.assertNotIn('"Parent', names)
        self.assertEqual("NO", m.rename("Moved", "Trash")[0], "RENAME onto an existing mailbox")
        self.assertEqual("OK", m.select("iNbOx")[0], "INBOX is case-insensitive")
        deliver(self.b, "erin", "for rename of inbox")
        m.close()
        self.ok(m.rename("INBOX", "Old Inbox".join('""')))
        self.ok(m.select('"Old Inbox"'))
        self.assertNotEqual([b""], self.ok(m.search(None, "SUBJECT", '"for rename of inbox"')))
        self.assertEqual(b"0", self.ok(m.select("INBOX"))[0], "RENAME INBOX leaves an empty INBOX")

    def test_two_sessions_expunge_is_reported_at_the_right_time(self):
        a = self.connect("dan")
        for i in range(4):
            self.ok(a.append("Archive", None, None, message("two-%d" % i).encode()))
        self.ok(a.select("Archive"))
        b = self.connect("dan")
        self.ok(b.select("Archive"))
        self.ok(b.store("2", "+FLAGS", "(\\Deleted)"))
        self.ok(b.expunge())
        lines = raw(a, "f1 FETCH 1:* (FLAGS)")
        self.assertFalse([l for l in lines if "EXPUNGE" in l], "no EXPUNGE during FETCH: %r" % lines)
        lines = raw(a, "f2 SEARCH ALL")
        self.assertFalse([l for l in lines if "EXPUNGE" in l], "no EXPUNGE during SEARCH: %r" % lines)
        lines = raw(a, "f3 NOOP")
        self.assertEqual(["* 2 EXPUNGE"], [l for l in lines if l.startswith("* ") and "RECENT" not in l
                                           and "FETCH" not in l], lines)
        lines = raw(a, "f4 FETCH 2 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        self.assertIn("two-2", "\n".join(lines))
        deliver(self.b, "dan", "two-new")  # to INBOX: Archive gets nothing
        self.ok(b.append("Archive", None, None, message("two-4").encode()))
        lines = raw(a, "f5 NOOP")
        self.assertIn("* 4 EXISTS", lines)


class concurrency_test(imap_case):
    def test_parallel_append_delivery_expunge_and_flags(self):
        errors, expunged, lock = [], [], threading.Lock()

        def guarded(fn):
            def run():
                try:
                    fn()
                except Exception as e:  # reported below: a thread must not die silently
                    errors.append(repr(e))
            return threading.Thread(target=run)

        def appender(n):
            m = self.connect("alice")
            for i in range(25):
                self.assertEqual("OK", m.append("Trash", None, None, message("par-%d-%d" % (n, i)).encode())[0])

        def deliverer():
            with smtplib.LMTP("127.0.0.1", self.b.ports["lmtp"]) as c:
                for i in range(25):
                    c.sendmail("s@remote.test", ["alice@example.org"], message("lmtp-%d" % i).encode())

        def expunger():
            m = self.connect("alice")
            self.ok(m.select("Trash"))
            for i in range(15):
                ids = self.ok(m.search(None, "ALL"))[0].split()
                if ids:
                    self.ok(m.uid("STORE", "1:*", "+FLAGS.SILENT", "(\\Deleted)") if i == 14 else
                            m.store(ids[len(ids) // 2].decode(), "+FLAGS.SILENT", "(\\Deleted)"))
                    with lock:
                        expunged.extend(self.ok(m.expunge()))

        def flagger():
            m = self.connect("alice")
            self.ok(m.select("Trash"))
            for i in range(30):
                self.ok(m.uid("STORE", "1:*", "+FLAGS.SILENT" if i % 2 else "-FLAGS.SILENT", "(\\Seen)"))
                self.ok(m.fetch("1:*", "(UID FLAGS)") if m.search(None, "ALL")[1][0] else m.noop())

        threads = ([guarded(lambda n=n: appender(n)) for n in range(3)] +
                   [guarded(deliverer), guarded(expunger), guarded(flagger)])
        for t in threads:
            t.start()
        for t in threads:
            t.join(50)
        self.assertEqual([], errors)
        m = self.connect("alice")
        status = self.ok(m.status("Trash", "(MESSAGES UIDNEXT)"))[0].decode()
        remaining = int(re.search(r"MESSAGES (\d+)", status).group(1))
        self.assertEqual(76, int(re.search(r"UIDNEXT (\d+)", status).group(1)), "75 appends, unique UIDs")
        self.ok(m.select("Trash"))
        uids = self.uids(m)
        self.assertEqual(sorted(set(uids)), uids)
        self.assertEqual(remaining, len(uids))
        self.assertEqual(75 - len([e for e in expunged if e]), remaining, "every EXPUNGE was reported once")
        # The restart keeps UIDs, UIDVALIDITY and flags.
        before = self.ok(m.fetch("1:*", "(UID FLAGS)"))
        validity = self.ok(m.status("Trash", "(UIDVALIDITY)"))
        m.logout()
        self.b.kill()
        self.b.start()
        m = self.connect("alice")
        self.assertEqual(validity, self.ok(m.status("Trash", "(UIDVALIDITY)")))
        self.ok(m.select("Trash"))
        unrecent = lambda data: [d.replace(b" \\Recent", b"").replace(b"\\Recent", b"") for d in data]
        self.assertEqual(unrecent(before), unrecent(self.ok(m.fetch("1:*", "(UID FLAGS)"))))

    # imap-bugs.md B2: a \Recent claim outlives the process (the index replays its R records).
    def test_recent_is_not_reported_again_after_restart(self):
        m = self.connect("bob")
        self.ok(m.append("Junk", None, None, message("recent once").encode()))
        m.logout()
        first = self.connect("bob")
        self.ok(first.select("Junk"))
        self.assertEqual([b"1"], first.untagged_responses.get("RECENT"))
        first.logout()
        second = self.connect("bob")
        self.ok(second.select("Junk"))
        self.assertEqual([b"0"], second.untagged_responses.get("RECENT"))
        second.logout()
        self.b.kill()
        self.b.start()
        third = self.connect("bob")
        self.ok(third.select("Junk"))
        self.assertEqual([b"0"], third.untagged_responses.get("RECENT"), "RFC 3501 2.3.2: only the first session")
        self.assertNotIn(b"\\Recent", self.ok(third.fetch("1", "(FLAGS)"))[0])


class plain_login_refused_test(imap_case):
    imap = {"max_append_size": MAX_APPEND}

    def test_login_without_tls_is_privacyrequired(self):
        m = self.connect(tls=False, login=False)
        self.assertIn("LOGINDISABLED", m.capabilities)
        self.assertNotIn("AUTH=PLAIN", m.capabilities)
        lines = raw(m, "p1 LOGIN alice@example.org alice-secret")
        self.assertTrue(lines[-1].startswith("p1 NO [PRIVACYREQUIRED]"), lines)
        m.starttls(self.tls)
        self.assertNotIn("LOGINDISABLED", m.capabilities)
        self.ok(m.login("alice@example.org", "alice-secret"))


class limits_test(imap_case):
    imap = {"login_without_tls": True, "idle_timeout_before_login": "2s"}

    def test_idle_before_login_is_logged_out(self):
        s = socket.create_connection(("127.0.0.1", self.b.ports["imap"]), timeout=10)
        self.addCleanup(s.close)
        started, data = time.monotonic(), b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        self.assertLess(time.monotonic() - started, 6)
        self.assertRegex(data, rb"\r\n\* BYE [^\r]*\r\n$")

    def test_overlong_line_is_bad_and_the_session_goes_on(self):
        m = self.connect("alice")
        m.sock.settimeout(10)
        m.send(b"b1 NOOP " + b"x" * 70000 + b"\r\nb2 NOOP\r\n")
        self.assertTrue(m.readline().startswith(b"b1 BAD"))
        self.assertTrue(m.readline().startswith(b"b2 OK"))

    def test_starttls_on_the_implicit_tls_port_is_bad(self):
        m = imaplib.IMAP4_SSL("127.0.0.1", self.b.ports["imaps"], ssl_context=self.tls, timeout=15)
        self.addCleanup(self.close, m)
        lines = raw(m, "s1 STARTTLS")
        self.assertTrue(lines[-1].startswith("s1 BAD"), lines)
        self.ok(m.login("alice@example.org", "alice-secret"))


class qresync_test(imap_case):
    def test_qresync_reports_vanished_and_changed(self):
        m = self.connect("alice")
        for i in range(6):
            self.ok(m.append("Sent", None, None, message("sync-%d" % i).encode()))
        typ, _ = m._simple_command("ENABLE", "QRESYNC")
        self.assertEqual("OK", typ)
        self.assertIn(b"QRESYNC", b" ".join(m.untagged_responses.pop("ENABLED", [b""])))
        self.ok(m.select("Sent"))
        validity = int(m.untagged_responses["UIDVALIDITY"][-1])
        modseq = int(re.search(rb"HIGHESTMODSEQ (\d+)", b" ".join(m.untagged_responses["OK"])).group(1))
        uids = self.uids(m)
        self.assertEqual(6, len(uids))
        m.logout()

        other = self.connect("alice")
        self.ok(other.select("Sent"))
        self.ok(other.uid("STORE", "%d,%d" % (uids[0], uids[3]), "+FLAGS", "(\\Deleted)"))
        self.ok(other.expunge())
        self.ok(other.uid("STORE", "%d" % uids[1], "+FLAGS", "(\\Flagged)"))
        self.ok(other.uid("STORE", "%d" % uids[4], "+FLAGS", "($Work)"))
        other.logout()

        again = self.connect("alice")
        typ, _ = again._simple_command("ENABLE", "QRESYNC")
        self.assertEqual("OK", typ)
        lines = raw(again, "q1 SELECT Sent (QRESYNC (%d %d %d:%d))" % (validity, modseq, uids[0], uids[-1]))
        self.assertTrue(lines[-1].startswith("q1 OK"), lines)
        text = "\n".join(lines)
        vanished = [l for l in lines if l.startswith("* VANISHED (EARLIER)")]
        self.assertEqual(["* VANISHED (EARLIER) %d,%d" % (uids[0], uids[3])], vanished, text)
        fetches = {int(re.search(r"UID (\d+)", l).group(1)): l for l in lines if l.startswith("* ") and " FETCH (" in l}
        self.assertEqual({uids[1], uids[4]}, set(fetches), text)
        self.assertIn("\\Flagged", fetches[uids[1]])
        self.assertIn("$Work", fetches[uids[4]])
        for l in fetches.values():
            self.assertRegex(l, r"MODSEQ \(\d+\)")
        self.assertRegex(text, r"HIGHESTMODSEQ (\d+)")
        newer = int(re.search(r"HIGHESTMODSEQ (\d+)", text).group(1))
        self.assertGreater(newer, modseq)
        # CHANGEDSINCE on FETCH gives the same changes.
        lines = raw(again, "q2 UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d VANISHED)" % modseq)
        self.assertTrue(lines[-1].startswith("q2 OK"), lines)
        self.assertIn("* VANISHED (EARLIER) %d,%d" % (uids[0], uids[3]), lines)
        self.assertEqual(2, len([l for l in lines if l.startswith("* ") and " FETCH (" in l]), lines)


    def test_qresync_session_gets_vanished_not_expunge(self):
        m = self.connect("bob")
        for i in range(4):
            self.ok(m.append("Drafts", None, None, message("van-%d" % i).encode()))
        typ, _ = m._simple_command("ENABLE", "QRESYNC")
        self.assertEqual("OK", typ)
        self.ok(m.select("Drafts"))
        uids = self.uids(m)
        lines = raw(m, "v1 UID STORE %d +FLAGS.SILENT (\\Deleted)" % uids[1])
        lines = raw(m, "v2 EXPUNGE")
        self.assertEqual("* VANISHED %d" % uids[1], lines[0], lines)
        self.assertRegex(lines[-1], r"^v2 OK \[HIGHESTMODSEQ \d+\]")
        self.assertFalse([l for l in lines if l.endswith(" EXPUNGE")], lines)
        lines = raw(m, "v3 UID MOVE %d Trash" % uids[2])
        self.assertIn("* VANISHED %d" % uids[2], lines)
        self.assertFalse([l for l in lines if l.endswith(" EXPUNGE")], lines)
        # A stale UIDVALIDITY: no VANISHED, no FETCH, just a plain SELECT.
        lines = raw(m, "v4 SELECT Drafts (QRESYNC (1 1 %d:%d))" % (uids[0], uids[-1]))
        self.assertTrue(lines[-1].startswith("v4 OK"), lines)
        self.assertFalse([l for l in lines if "VANISHED" in l or " FETCH " in l], lines)


if __name__ == "__main__":
    unittest.main()
