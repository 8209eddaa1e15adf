"""COMPRESS=DEFLATE (RFC 4978) of hamail-backend's IMAP server with a real client: Python's
zlib over a socket (raw deflate, 32 KiB window both ways), over plain TCP, STARTTLS and
implicit TLS: LOGIN, COMPRESS, SELECT, FETCH of a large message, APPEND, IDLE woken by a
delivery, LOGOUT; a client pipelining behind COMPRESS; and mbsync, which compresses by itself
when the server offers it."""

import os
import re
import shutil
import smtplib
import socket
import ssl
import subprocess
import tempfile
import unittest
import zlib

from hamail_harness import Backend, ssha512

ALICE = {"id": "alice", "address": "alice@example.org", "password": ssha512("alice-secret")}
LISTENERS = (("lmtp", "lmtp", "none", "127.0.0.1", 0),
             ("imap", "imap", "starttls", "127.0.0.1", 0),
             ("imaps", "imap", "implicit", "127.0.0.1", 0))
LITERAL = re.compile(rb"\{(\d+)\}\r\n$")


def big_message(subject, size):
    lines = ["From: Sender <sender@remote.test>", "To: alice@example.org", "Subject: %s" % subject,
             "Message-ID: <%s@remote.test>" % subject.replace(" ", "-"),
             "Date: Mon, 30 Nov 2026 10:00:00 +0000", ""]
    i = 0
    while sum(len(l) + 2 for l in lines) < size:
        lines.append("Line %d of the quarterly report: every mailbox of the store is fine." % i)
        i += 1
    return ("\r\n".join(lines) + "\r\n").encode()


class client:
    """An IMAP client on a socket that switches to raw deflate after COMPRESS's OK."""

    def __init__(self, sock):
        self.sock = sock
        self.sock.settimeout(15)
        self.buf = b""
        self.deflate = None
        self.inflate = None
        self.wire_in = 0
        self.wire_out = 0

    def send(self, data):
        if self.deflate:
            data = self.deflate.compress(data) + self.deflate.flush(zlib.Z_SYNC_FLUSH)
        self.wire_out += len(data)
        self.sock.sendall(data)

    def _fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("server closed; buffered %r" % self.buf[-200:])
        self.wire_in += len(data)
        self.buf += self.inflate.decompress(data) if self.inflate else data

    def readline(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line + b"\r\n"

    def read_exact(self, n):
        while len(self.buf) < n:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def response(self, tag):
        """Lines (literals inlined) up to and including the tagged one."""
        out = []
        while True:
            line = self.readline()
            while LITERAL.search(line):
                line += self.read_exact(int(LITERAL.search(line).group(1)))
                line += self.readline()
            out.append(line)
            if line.startswith(tag.encode() + b" "):
                return out

    def command(self, line):
        tag = line.split(" ", 1)[0]
        self.send(line.encode() + b"\r\n")
        return self.response(tag)

    def start_compress(self):
        # Whatever arrived after the tagged OK in the same read was already compressed: a
        # pipelined command's reply can share a segment with it.
        early, self.buf = self.buf, b""
        self.deflate = zlib.compressobj(6, zlib.DEFLATED, -15)
        self.inflate = zlib.decompressobj(wbits=-15)
        self.buf = self.inflate.decompress(early)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class imap_compress_test(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.b = Backend([ALICE], listeners=LISTENERS, imap={"login_without_tls": True}).start()
        cls.tls = ssl.create_default_context(cafile=cls.b.ca)
        cls.tmp = tempfile.mkdtemp(prefix="hamail-compress-")
        cls.big = big_message("big one", 400000)
        cls.deliver(cls.big)

    @classmethod
    def tearDownClass(cls):
        cls.b.finish(cls.tmp)

    @classmethod
    def deliver(cls, raw):
        with smtplib.LMTP("127.0.0.1", cls.b.ports["lmtp"]) as c:
            c.sendmail("sender@remote.test", ["alice@example.org"], raw)

    def full_log(self):
        with open(self.b.log_path, errors="replace") as f:
            return f.read()

    def connect(self, mode):
        if mode == "implicit":
            sock = socket.create_connection(("127.0.0.1", self.b.ports["imaps"]))
            sock = self.tls.wrap_socket(sock, server_hostname="127.0.0.1")
        else:
            sock = socket.create_connection(("127.0.0.1", self.b.ports["imap"]))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        c = client(sock)
        self.addCleanup(c.close)
        self.assertTrue(c.readline().startswith(b"* OK "))
        if mode == "starttls":
            self.assertTrue(c.command("s1 STARTTLS")[-1].startswith(b"s1 OK"))
            c.sock = self.tls.wrap_socket(sock, server_hostname="127.0.0.1")
        return c

    def session(self, mode):
        """The whole conversation over one transport; returns (plain FETCH octets, on the wire)."""
        c = self.connect(mode)
        caps = b"".join(c.command("a0 CAPABILITY"))
        self.assertNotIn(b"COMPRESS=DEFLATE", caps)
        r = c.command("a1 LOGIN alice@example.org alice-secret")
        self.assertIn(b" COMPRESS=DEFLATE", r[-1])
        self.assertEqual([b"a2 OK DEFLATE active\r\n"], c.command("a2 COMPRESS DEFLATE"))
        c.start_compress()

        r = c.command("a3 SELECT INBOX")
        self.assertTrue(r[-1].startswith(b"a3 OK [READ-WRITE]"), r)
        exists = int([l for l in r if l.endswith(b" EXISTS\r\n")][0].split()[1])
        before = c.wire_in
        r = c.command("a4 UID FETCH 1 BODY.PEEK[]")
        wire = c.wire_in - before
        plain = sum(len(l) for l in r)
        self.assertIn(self.big, r[0])
        self.assertEqual(b"a4 OK FETCH completed\r\n", r[-1])
        self.assertLess(wire, plain / 4)
        self.assertEqual([b"a5 NO [COMPRESSIONACTIVE] DEFLATE is active already\r\n"],
                         c.command("a5 COMPRESS DEFLATE"))

        up = big_message("uploaded over %s" % mode, 100000)
        c.send(b"a6 APPEND INBOX {%d}\r\n" % len(up))
        self.assertTrue(c.readline().startswith(b"+ "))
        c.send(up + b"\r\n")
        r = c.response("a6")
        self.assertTrue(r[-1].startswith(b"a6 OK [APPENDUID "), r)
        exists += 1

        c.send(b"a7 IDLE\r\n")
        self.assertTrue(c.readline().startswith(b"+ "))
        self.deliver(big_message("while idling over %s" % mode, 2000))
        exists += 1
        line = c.readline()
        while line.endswith(b" RECENT\r\n") or b" FETCH (" in line or line == b"* %d EXISTS\r\n" % (exists - 1):
            line = c.readline()
        self.assertEqual(b"* %d EXISTS\r\n" % exists, line)
        c.send(b"DONE\r\n")
        self.assertEqual(b"a7 OK IDLE terminated\r\n", c.response("a7")[-1])
        r = c.command("a8 LOGOUT")
        self.assertEqual([b"* BYE Logging out\r\n", b"a8 OK LOGOUT completed\r\n"], r)
        print("\n%s: FETCH of %d octets took %d on the wire; APPEND of %d sent as %d or less"
              % (mode, plain, wire, len(up), c.wire_out))
        return plain, wire

    def test_plain(self):
        self.session("plain")

    def test_starttls(self):
        self.session("starttls")
        self.assertRegex(self.full_log(), r"COMPRESS DEFLATE over TLSv1\.[23] ")

    def test_implicit_tls(self):
        self.session("implicit")

    def test_pipelined_command_after_compress(self):
        """RFC 4978 §3 tells clients to wait for the OK; one that does not gets its compressed
        command read all the same."""
        c = self.connect("plain")
        c.command("p1 LOGIN alice@example.org alice-secret")
        deflate = zlib.compressobj(6, zlib.DEFLATED, -15)
        early = deflate.compress(b"p3 NOOP\r\n") + deflate.flush(zlib.Z_SYNC_FLUSH)
        c.sock.sendall(b"p2 COMPRESS DEFLATE\r\n" + early)
        self.assertEqual(b"p2 OK DEFLATE active\r\n", c.readline())
        c.start_compress()
        c.deflate = deflate
        self.assertEqual([b"p3 OK NOOP completed\r\n"], c.response("p3"))
        self.assertEqual(b"p4 OK NOOP completed\r\n", c.command("p4 NOOP")[-1])

    def test_garbage_after_compress_closes(self):
        c = self.connect("plain")
        c.command("g1 LOGIN alice@example.org alice-secret")
        self.assertEqual([b"g2 OK DEFLATE active\r\n"], c.command("g2 COMPRESS DEFLATE"))
        c.sock.sendall(b"\xff\xff\xff\xff g3 NOOP\r\n")  # not compressed: BTYPE 3 is invalid
        c.sock.settimeout(10)
        self.assertEqual(b"", c.sock.recv(100))

    @unittest.skipUnless(shutil.which("mbsync"), "mbsync not installed")
    def test_mbsync_compresses(self):
        """mbsync 1.4 sends COMPRESS DEFLATE whenever the server offers it."""
        local = os.path.join(self.tmp, "mbsync", "mail")
        os.makedirs(local)
        rc = os.path.join(self.tmp, "mbsync", "mbsyncrc")
        with open(rc, "w") as f:
            # mbsync 1.4 matches the certificate against DNS names only, not IP addresses.
            f.write("IMAPAccount hamail\nHost localhost\nPort %d\nUser alice@example.org\n"
                    "Pass alice-secret\nSSLType IMAPS\nCertificateFile %s\n\n"
                    "IMAPStore remote\nAccount hamail\n\n"
                    "MaildirStore local\nPath %s/\nInbox %s/INBOX\nSubFolders Verbatim\n\n"
                    "Channel sync\nFar :remote:\nNear :local:\nPatterns *\nCreate Both\n"
                    "SyncState *\n" % (self.b.ports["imaps"], self.b.ca, local, local))
        before = self.full_log().count("COMPRESS DEFLATE over TLS")
        # -Dn: the protocol dialogue, to see the command go out.
        p = subprocess.run(["mbsync", "-Dn", "-c", rc, "-a"], capture_output=True, timeout=60)
        out = p.stdout.decode(errors="replace")
        self.assertEqual(0, p.returncode, "mbsync: %s\n%s" % (out[-3000:], p.stderr.decode()))
        self.assertRegex(out, r"\d+ COMPRESS DEFLATE")
        self.assertEqual(before + 1, self.full_log().count("COMPRESS DEFLATE over TLS"))
        files = []
        for sub in ("cur", "new"):
            d = os.path.join(local, "INBOX", sub)
            files += [os.path.join(d, n) for n in os.listdir(d)]
        bodies = []
        for path in files:
            with open(path, "rb") as f:
                bodies.append(f.read())
        self.assertTrue(any(self.big.split(b"\r\n\r\n", 1)[1].replace(b"\r\n", b"\n") in
                            b.replace(b"\r\n", b"\n") for b in bodies))
        self.assertRegex(self.full_log(), r"compressed: \d+ octets sent as \d+")


if __name__ == "__main__":
    unittest.main()
