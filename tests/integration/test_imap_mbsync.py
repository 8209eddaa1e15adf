"""The IMAP server of hamail-backend synchronised both ways with a local Maildir tree by
mbsync (isync): messages, flags, expunges and new folders travel in each direction."""

import glob
import imaplib
import os
import re
import shutil
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


def message(subject, body="Hello.\r\n"):
    return ("From: sender@remote.test\r\nTo: alice@example.org\r\nSubject: %s\r\n"
            "Message-ID: <%s@remote.test>\r\n\r\n%s" % (subject, subject.replace(" ", "-"), body))


class imap_mbsync_test(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.b = Backend([ALICE], listeners=LISTENERS).start()
        cls.tmp = tempfile.mkdtemp(prefix="hamail-mbsync-")

    @classmethod
    def tearDownClass(cls):
        cls.b.finish(cls.tmp)

    def imap(self):
        m = imaplib.IMAP4_SSL("127.0.0.1", self.b.ports["imaps"],
                              ssl_context=ssl.create_default_context(cafile=self.b.ca), timeout=15)
        m.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # imaplib APPEND and Nagle
        m.login("alice@example.org", "alice-secret")
        self.addCleanup(m.logout)
        return m

    def config(self, name, tls):
        local = os.path.join(self.tmp, name, "mail")
        os.makedirs(local)
        # mbsync 1.4 matches the certificate against DNS names only, not IP addresses.
        port = self.b.ports["imaps" if tls == "IMAPS" else "imap"]
        rc = os.path.join(self.tmp, name, "mbsyncrc")
        with open(rc, "w") as f:
            f.write("IMAPAccount hamail\nHost localhost\nPort %d\nUser alice@example.org\n"
                    "Pass alice-secret\nSSLType %s\nCertificateFile %s\n\n"
                    "IMAPStore remote\nAccount hamail\n\n"
                    "MaildirStore local\nPath %s/\nInbox %s/INBOX\nSubFolders Verbatim\n\n"
                    "Channel sync\nFar :remote:\nNear :local:\nPatterns *\nCreate Both\n"
                    "Expunge Both\nSyncState *\n" % (port, tls, self.b.ca, local, local))
        return rc, local

    def mbsync(self, rc):
        p = subprocess.run(["mbsync", "-V", "-c", rc, "-a"], capture_output=True, timeout=50)
        self.assertEqual(0, p.returncode, "mbsync: %s\n%s\nbackend log:\n%s"
                         % (p.stdout.decode()[-4000:], p.stderr.decode(), self.b.log()[-3000:]))

    @staticmethod
    def local_messages(local, folder):
        """{subject: maildir flags} of a local Maildir folder."""
        out = {}
        for path in glob.glob(os.path.join(local, folder, "cur", "*")) + \
                glob.glob(os.path.join(local, folder, "new", "*")):
            with open(path, "rb") as f:
                subject = [l for l in f.read().splitlines() if l.startswith(b"Subject: ")]
            subject = subject[0][9:].decode() if subject else ""
            flags = path.rsplit(":2,", 1)[1] if ":2," in path else ""
            out[subject] = (flags, path)
        return out

    def remote_messages(self, m, folder):
        """{subject: flags text} of a server mailbox."""
        typ, _ = m.select(folder)
        self.assertEqual("OK", typ, folder)
        typ, data = m.fetch("1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        out = {}
        for d in data:
            if isinstance(d, tuple):
                subject = d[1].strip().decode()[9:]
                out[subject] = d[0].decode()
        m.close()
        return out

    @staticmethod
    def add_local_message(local, folder, name, subject, flags=""):
        for sub in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(local, folder, sub), exist_ok=True)
        with open(os.path.join(local, folder, "cur", "%s:2,%s" % (name, flags)), "wb") as f:
            f.write(message(subject).encode())

    @staticmethod
    def set_local_flags(path, flags):
        new = path.rsplit(":2,", 1)[0] + ":2," + "".join(sorted(flags))
        os.rename(path, new)

    def test_two_way_sync_with_flags_and_folders(self):
        m = self.imap()
        with smtplib.LMTP("127.0.0.1", self.b.ports["lmtp"]) as c:
            for subject in ("remote one", "remote two"):
                c.sendmail("sender@remote.test", ["alice@example.org"], message(subject).encode())
        m.select("INBOX")
        m.store("2", "+FLAGS", "(\\Flagged)")
        m.close()
        self.assertEqual("OK", m.append("Archive", "(\\Seen)", None, message("archived").encode())[0])
        rc, local = self.config("starttls", "STARTTLS")
        self.add_local_message(local, "INBOX", "1700000000.1.host", "local one", "S")
        self.add_local_message(local, "Projects/Sub", "1700000000.2.host", "nested local", "F")

        self.mbsync(rc)
        inbox = self.local_messages(local, "INBOX")
        self.assertEqual({"remote one", "remote two", "local one"}, set(inbox))
        self.assertEqual("", inbox["remote one"][0])
        self.assertEqual("F", inbox["remote two"][0])
        self.assertEqual({"archived": "S"}, {k: v[0] for k, v in self.local_messages(local, "Archive").items()})
        remote = self.remote_messages(m, "INBOX")
        self.assertEqual({"remote one", "remote two", "local one"}, set(remote))
        self.assertIn("\\Seen", remote["local one"])
        nested = self.remote_messages(m, "Projects/Sub")
        self.assertEqual({"nested local"}, set(nested))
        self.assertIn("\\Flagged", nested["nested local"])

        # A flag change on each side; a folder made on the server; an expunge on each side.
        self.set_local_flags(inbox["remote one"][1], "RS")
        self.set_local_flags(inbox["local one"][1], "ST")
        m.select("INBOX")
        typ, data = m.search(None, "SUBJECT", '"remote two"')
        m.store(data[0].decode(), "+FLAGS", "(\\Seen)")
        m.close()
        self.assertEqual("OK", m.create('"Server Made"')[0])
        self.assertEqual("OK", m.append('"Server Made"', None, None, message("made remotely").encode())[0])
        m.select("Archive")
        m.store("1", "+FLAGS", "(\\Deleted)")
        m.close()

        self.mbsync(rc)
        inbox = self.local_messages(local, "INBOX")
        self.assertEqual({"remote one", "remote two"}, set(inbox), "local \\Deleted expunged")
        self.assertEqual("FS", inbox["remote two"][0])
        self.assertEqual({}, self.local_messages(local, "Archive"), "remote expunge reaches Maildir")
        self.assertEqual({"made remotely"}, set(self.local_messages(local, "Server Made")))
        remote = self.remote_messages(m, "INBOX")
        self.assertEqual({"remote one", "remote two"}, set(remote))
        self.assertIn("\\Answered", remote["remote one"])
        self.assertIn("\\Seen", remote["remote one"])

        # A second sync changes nothing.
        self.mbsync(rc)
        self.assertEqual(set(inbox), set(self.local_messages(local, "INBOX")))

    def test_folder_removal_propagates(self):
        m = self.imap()
        self.assertEqual("OK", m.create("Gone Remote".join('""'))[0])
        rc, local = self.config("remove", "IMAPS")
        os.makedirs(os.path.join(local, "Gone Local", "cur"))
        os.makedirs(os.path.join(local, "Gone Local", "new"))
        os.makedirs(os.path.join(local, "Gone Local", "tmp"))
        # The state must outlive the folder for mbsync to see a deletion (not a new folder):
        # SyncState * keeps it inside the Maildir folder, so use a separate directory here.
        state = os.path.join(self.tmp, "remove", "state") + "/"
        os.makedirs(state)
        with open(rc) as f:
            text = f.read().replace("SyncState *\n", "SyncState %s\nRemove Both\n" % state)
        with open(rc, "w") as f:
            f.write(text)
        self.mbsync(rc)
        names = "\n".join(d.decode() for d in m.list('""', "*")[1])
        self.assertIn('"Gone Local"', names)
        self.assertTrue(os.path.isdir(os.path.join(local, "Gone Remote", "cur")))
        # Each side deletes its (empty) folder; the next sync removes the other copy.
        self.assertEqual("OK", m.delete('"Gone Remote"')[0])
        shutil.rmtree(os.path.join(local, "Gone Local"))
        self.mbsync(rc)
        names = "\n".join(d.decode() for d in m.list('""', "*")[1])
        self.assertNotIn('"Gone Local"', names)
        self.assertFalse(os.path.exists(os.path.join(local, "Gone Remote", "cur")))

    def test_implicit_tls_pull(self):
        m = self.imap()
        self.assertEqual("OK", m.append("Drafts", "(\\Draft)", None, message("draft over imaps").encode())[0])
        rc, local = self.config("imaps", "IMAPS")
        self.mbsync(rc)
        drafts = self.local_messages(local, "Drafts")
        self.assertIn("draft over imaps", drafts)
        self.assertEqual("D", drafts["draft over imaps"][0])
        for folder in ("INBOX", "Sent", "Trash", "Junk"):
            self.assertTrue(os.path.isdir(os.path.join(local, folder, "cur")), folder)


    def test_volume_and_8bit_content_roundtrip(self):
        m = self.imap()
        big = ("Subject: big 8bit\r\nContent-Type: text/plain; charset=utf-8\r\n"
               "Content-Transfer-Encoding: 8bit\r\n\r\n" + "Gr\u00fc\u00dfe aus K\u00f6ln\r\n" * 40000).encode()
        self.assertEqual("OK", m.append("Junk", None, None, big)[0])
        for i in range(60):
            flags = "(\\Seen)" if i % 3 == 0 else None
            self.assertEqual("OK", m.append("Junk", flags, None, message("bulk %03d" % i).encode())[0])
        rc, local = self.config("volume", "IMAPS")
        self.mbsync(rc)
        junk = self.local_messages(local, "Junk")
        self.assertEqual(61, len(junk))
        self.assertEqual("S", junk["bulk 000"][0])
        self.assertEqual("", junk["bulk 001"][0])
        with open(junk["big 8bit"][1], "rb") as f:
            got = f.read().replace(b"\r\n", b"\n")
        # mbsync marks what it propagates with a temporary X-TUID header in the Maildir copy.
        got = re.sub(rb"(?m)^X-TUID: .*\n", b"", got)
        self.assertEqual(big.replace(b"\r\n", b"\n"), got)
        # A local 8-bit message travels to the server intact (with CRLF line ends there).
        local_msg = "Subject: local 8bit\nContent-Type: text/plain; charset=utf-8\n\n\u00e9t\u00e9\n".encode()
        os.makedirs(os.path.join(local, "Junk", "cur"), exist_ok=True)
        with open(os.path.join(local, "Junk", "cur", "1700000001.9.host:2,"), "wb") as f:
            f.write(local_msg)
        self.mbsync(rc)
        m.select("Junk")
        typ, data = m.search(None, "SUBJECT", '"local 8bit"')
        self.assertEqual(1, len(data[0].split()), data)
        typ, data = m.fetch(data[0].decode(), "(BODY.PEEK[])")
        self.assertEqual(local_msg.replace(b"\n", b"\r\n"), re.sub(rb"(?m)^X-TUID: .*\r\n", b"", data[0][1]))


if __name__ == "__main__":
    unittest.main()
