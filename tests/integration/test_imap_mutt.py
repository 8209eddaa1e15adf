"""The IMAP server of hamail-backend driven by neomutt inside a private tmux server: open INBOX
over STARTTLS, read a message, flag it, save it to another folder, quit; imaplib checks the
result on the server."""

import imaplib
import os
import smtplib
import socket
import ssl
import subprocess
import tempfile
import time
import unittest

from hamail_harness import Backend, ssha512

ALICE = {"id": "alice", "address": "alice@example.org", "password": ssha512("alice-secret")}
LISTENERS = (("lmtp", "lmtp", "none", "127.0.0.1", 0),
             ("imap", "imap", "starttls", "127.0.0.1", 0),
             ("imaps", "imap", "implicit", "127.0.0.1", 0))


def message(subject, body):
    return ("From: Sender <sender@remote.test>\r\nTo: alice@example.org\r\nSubject: %s\r\n"
            "Date: Mon, 30 Nov 2026 10:00:00 +0000\r\nMessage-ID: <%s@remote.test>\r\n\r\n%s"
            % (subject, subject.replace(" ", "-"), body))


class tmux:
    """One private tmux server (its own socket in `directory`) running one command."""

    def __init__(self, directory, command, env):
        self.socket = os.path.join(directory, "tmux.sock")
        self.env = env
        self.run("new-session", "-d", "-x", "200", "-y", "50", command)

    def run(self, *args):
        return subprocess.run(["tmux", "-S", self.socket] + list(args), capture_output=True, text=True,
                              env=self.env, timeout=10)

    def keys(self, *keys):
        self.run("send-keys", "-t", "0", *keys)

    def screen(self):
        return self.run("capture-pane", "-p", "-t", "0").stdout

    def wait_for(self, text, timeout=15):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screen = self.screen()
            if text in screen:
                return screen
            time.sleep(0.2)
        raise AssertionError("%r not on screen:\n%s" % (text, self.screen()))

    def alive(self):
        return self.run("has-session", "-t", "0").returncode == 0

    def kill(self):
        self.run("kill-server")


class imap_mutt_test(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.b = Backend([ALICE], listeners=LISTENERS).start()
        cls.tmp = tempfile.mkdtemp(prefix="hamail-mutt-")

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

    def muttrc(self, name="home", implicit=False, extra=""):
        home = os.path.join(self.tmp, name)
        os.makedirs(home, exist_ok=True)
        rc = os.path.join(home, "muttrc")
        # localhost, not 127.0.0.1: the test certificate names both, and GnuTLS checks the name.
        with open(rc, "w") as f:
            f.write('set folder="%s://alice%%40example.org@localhost:%d/"\n'
                    'set spoolfile="+INBOX"\n'
                    'set imap_user="alice@example.org"\nset imap_pass="alice-secret"\n'
                    'set ssl_starttls=yes\nset ssl_force_tls=yes\n'
                    'set ssl_ca_certificates_file="%s"\nset certificate_file="%s/certs"\n'
                    'set ssl_verify_host=yes\nset ssl_verify_dates=yes\n'
                    'set header_cache=""\nset message_cachedir=""\nset record=""\n'
                    'set delete=yes\nset confirmappend=no\nset confirmcreate=no\nset move=no\n'
                    'set mark_old=no\nset wait_key=no\nset sort=date\nset pager_stop=yes\n'
                    'set imap_check_subscribed=no\nset imap_passive=yes\nset mail_check=60\n'
                    'set help=no\nset quit=yes\nset timeout=2\n'
                    % ("imaps" if implicit else "imap", self.b.ports["imaps" if implicit else "imap"],
                       self.b.ca, home) + extra)
        return home, rc

    def test_read_flag_and_save(self):
        with smtplib.LMTP("127.0.0.1", self.b.ports["lmtp"]) as c:
            c.sendmail("sender@remote.test", ["alice@example.org"],
                       message("first for mutt", "first-body-token\r\n").encode())
            c.sendmail("sender@remote.test", ["alice@example.org"],
                       message("mutt target message", "mutt-body-token\r\n").encode())
        home, rc = self.muttrc()
        env = dict(os.environ, HOME=home, TERM="xterm", LANG="C.UTF-8", TMUX="")
        t = tmux(self.tmp, "neomutt -n -F %s" % rc, env)
        self.addCleanup(t.kill)
        t.wait_for("mutt target message")
        t.wait_for("first for mutt")
        # Sorted by date (equal) then arrival: the target is the second line.
        t.keys("/", "target", "Enter")
        t.keys("Enter")
        t.wait_for("mutt-body-token")
        t.keys("q")
        t.wait_for("mutt target message")
        t.keys("F")
        t.keys("s")
        t.wait_for("Save to mailbox")
        t.keys("C-u", "=Archive", "Enter")
        time.sleep(1)
        t.keys("$")
        time.sleep(1)
        t.keys("q")
        deadline = time.monotonic() + 15
        while t.alive() and time.monotonic() < deadline:
            time.sleep(0.2)
        self.assertFalse(t.alive(), "neomutt did not quit:\n" + t.screen())

        m = self.imap()
        self.assertEqual("OK", m.select("Archive")[0])
        typ, data = m.search(None, "SUBJECT", "\"mutt target message\"")
        self.assertEqual([b"1"], data)
        typ, data = m.fetch("1", "(FLAGS)")
        self.assertIn(b"\\Flagged", data[0])
        self.assertIn(b"\\Seen", data[0])
        m.close()
        self.assertEqual("OK", m.select("INBOX")[0])
        typ, data = m.search(None, "SUBJECT", "\"mutt target message\"")
        self.assertEqual([b""], data, "saved message must leave INBOX")
        typ, data = m.search(None, "SUBJECT", "\"first for mutt\"")
        self.assertEqual([b"1"], data)
        typ, data = m.fetch("1", "(FLAGS)")
        self.assertNotIn(b"\\Seen", data[0], "the unread message stays unread")


    def test_imaps_new_mail_delete_and_caches(self):
        m = self.imap()
        self.assertEqual("OK", m.append("Sent", None, None, message("sent one", "s1\r\n").encode())[0])
        self.assertEqual("OK", m.append("Sent", None, None, message("sent two", "s2\r\n").encode())[0])
        home, rc = self.muttrc("imaps-home", implicit=True,
                               extra='set header_cache="%s/hc"\nset message_cachedir="%s/bc"\n'
                                     'set imap_idle=yes\nset mail_check=1\nset spoolfile="+Sent"\n'
                               % (os.path.join(self.tmp, "imaps-home"), os.path.join(self.tmp, "imaps-home")))
        env = dict(os.environ, HOME=home, TERM="xterm", LANG="C.UTF-8", TMUX="")
        t = tmux(os.path.join(self.tmp, "imaps-home"), "neomutt -n -F %s" % rc, env)
        self.addCleanup(t.kill)
        t.wait_for("sent two")
        # A message arriving while neomutt has the mailbox open shows up (IDLE or polling).
        self.assertEqual("OK", m.append("Sent", None, None, message("sent three", "s3\r\n").encode())[0])
        t.wait_for("sent three", timeout=20)
        t.keys("/", "sent one", "Enter")
        t.keys("d")
        t.keys("$")
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            m.select("Sent")
            typ, data = m.search(None, "SUBJECT", '"sent one"')
            m.close()
            if data == [b""]:
                break
            time.sleep(0.3)
        self.assertEqual([b""], data, "deleted and synced message must be expunged:\n" + t.screen())
        t.keys("q")
        deadline = time.monotonic() + 15
        while t.alive() and time.monotonic() < deadline:
            time.sleep(0.2)
        self.assertFalse(t.alive())
        m.select("Sent")
        self.assertEqual([b"1 2"], m.search(None, "ALL")[1])


    def test_qresync_header_cache_resync(self):
        m = self.imap()
        for i in range(4):
            self.assertEqual("OK", m.append("Drafts", None, None, message("qr %d" % i, "q\r\n").encode())[0])
        name = "qresync-home"
        home_dir = os.path.join(self.tmp, name)
        extra = ('set header_cache="%s/hc"\nset imap_condstore=yes\nset imap_qresync=yes\n'
                 'set spoolfile="+Drafts"\nset index_format="%%4C %%Z %%s"\n' % home_dir)
        home, rc = self.muttrc(name, implicit=True, extra=extra)
        env = dict(os.environ, HOME=home, TERM="xterm", LANG="C.UTF-8", TMUX="")

        def run_mutt():
            t = tmux(home_dir, "neomutt -n -F %s" % rc, env)
            self.addCleanup(t.kill)
            return t

        def quit_mutt(t):
            t.keys("q")
            deadline = time.monotonic() + 15
            while t.alive() and time.monotonic() < deadline:
                time.sleep(0.2)
            self.assertFalse(t.alive(), t.screen())

        t = run_mutt()
        t.wait_for("qr 3")
        quit_mutt(t)
        self.assertTrue(os.listdir(os.path.join(home_dir, "hc")) if os.path.isdir(os.path.join(home_dir, "hc"))
                        else os.path.exists(os.path.join(home_dir, "hc")), "header cache written")
        # Behind neomutt's back: one expunged, one flagged, one new.
        m.select("Drafts")
        m.store("2", "+FLAGS", "(\\Deleted)")
        m.expunge()
        m.store("3", "+FLAGS", "(\\Flagged)")  # "qr 3" after the expunge
        m.close()
        self.assertEqual("OK", m.append("Drafts", None, None, message("qr new", "n\r\n").encode())[0])
        t = run_mutt()
        screen = t.wait_for("qr new")
        self.assertNotIn("qr 1", screen, "expunged message must vanish from the cached index")
        flagged = [l for l in screen.splitlines() if "qr 3" in l]
        self.assertEqual(1, len(flagged), screen)
        self.assertIn("!", flagged[0], "flag change must reach the cached index:\n" + screen)
        quit_mutt(t)


if __name__ == "__main__":
    unittest.main()
