"""hamail-backend with its accounts in a real OpenLDAP directory: accounts
placed with hamail-admin, mail delivered to their addresses and aliases,
SMTP AUTH against the userPassword written by hamail-admin, and a directory
outage answered as a temporary failure."""

import base64
import os
import shutil
import smtplib
import subprocess
import tempfile
import unittest

from hamail_harness import ROOT_DN, ROOT_PW, SUFFIX, Backend, LdapDirectory


class backend_ldap_test(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="hamail-ldap-it-")
        cls.directory = LdapDirectory(cls.tmp)
        cls.slapd, cls.secret = cls.directory.slapd, cls.directory.secret
        pw = os.path.join(cls.tmp, "alice.pw")
        with open(pw, "w") as f:
            f.write("alice-ldap-secret\n")

        admin = cls.directory.admin
        admin("store", "add", "store-a", "--host", "mx.test", "--address", "127.0.0.1", "--weight", "1")
        admin("store", "add", "store-b", "--host", "other.test", "--weight", "1", "--state", "closed")
        admin("account", "add", "alice", "--address", "alice@example.org", "--alias", "ali@example.org",
              "--password-file", pw, "--store", "store-a", "--quota-bytes", "1MiB")
        admin("account", "add", "bob", "--address", "bob@example.org", "--store", "store-a")
        admin("account", "lock", "bob")
        cls.b = Backend([], smtp={"auth_without_tls": True}, directory={
            "type": "ldap", "uris": [cls.slapd.uri], "base_dn": SUFFIX, "bind_dn": ROOT_DN,
            "bind_secret_file": cls.secret, "timeout": "2s", "cache_ttl": "60s",
            "negative_cache_ttl": "1s"}).start()

    @classmethod
    def tearDownClass(cls):
        rc = cls.b.stop()
        log = cls.b.log()
        cls.b.cleanup()
        cls.slapd.stop()
        if not os.environ.get("HAMAIL_KEEP_TEST_DIRS"):
            shutil.rmtree(cls.tmp, ignore_errors=True)
        assert rc == 0, log

    def test_1_delivery_to_address_and_alias_of_an_ldap_account(self):
        with smtplib.SMTP("127.0.0.1", self.b.ports["smtp"], timeout=10) as c:
            c.sendmail("x@remote.test", ["alice@example.org"], "Subject: one\r\n\r\nldap-token-1\r\n")
            c.sendmail("x@remote.test", ["ALI@example.org"], "Subject: two\r\n\r\nldap-token-2\r\n")
            c.ehlo("x")
            c.mail("x@remote.test")
            self.assertEqual(550, c.rcpt("nobody@example.org")[0])
        got = b"".join(self.b.messages("alice"))
        self.assertIn(b"ldap-token-1", got)
        self.assertIn(b"ldap-token-2", got)

    def test_2_auth_with_ldap_password_and_locked_account(self):
        with smtplib.SMTP("127.0.0.1", self.b.ports["submission"], timeout=10) as c:
            c.ehlo("x")
            token = base64.b64encode(b"\0alice\0alice-ldap-secret").decode()
            self.assertEqual(235, c.docmd("AUTH", "PLAIN " + token)[0])
        with smtplib.SMTP("127.0.0.1", self.b.ports["submission"], timeout=10) as c:
            c.ehlo("x")
            token = base64.b64encode(b"\0alice@example.org\0wrong").decode()
            self.assertEqual(535, c.docmd("AUTH", "PLAIN " + token)[0])
        # A locked account still receives mail.
        with smtplib.SMTP("127.0.0.1", self.b.ports["smtp"], timeout=10) as c:
            c.sendmail("x@remote.test", ["bob@example.org"], "Subject: locked\r\n\r\nlocked-token\r\n")
        self.assertIn(b"locked-token", b"".join(self.b.messages("bob")))

    def test_3_directory_outage_is_temporary_and_cache_serves_known_accounts(self):
        self.slapd.proc.send_signal(__import__("signal").SIGSTOP)  # up but not answering
        try:
            with smtplib.SMTP("127.0.0.1", self.b.ports["smtp"], timeout=30) as c:
                c.ehlo("x")
                c.mail("x@remote.test")
                self.assertEqual(250, c.rcpt("alice@example.org")[0], "alice is cached")
                code, text = c.rcpt("carol@example.org")
                self.assertEqual((451, b"4.4.3"), (code, text[:5]), "an uncached lookup fails temporarily")
        finally:
            self.slapd.proc.send_signal(__import__("signal").SIGCONT)

    def test_4_auth_by_ldap_bind_as_the_account(self):
        # carol's userPassword is cleartext: only slapd can check it, so a 235 proves the
        # backend asked slapd (bind as carol's entry) rather than comparing hashes itself.
        self.directory.admin("account", "add", "carol", "--address", "carol@example.org",
                             "--store", "store-a")
        ldap = ["-x", "-H", self.slapd.uri, "-D", ROOT_DN, "-w", ROOT_PW]
        dn = subprocess.run(["ldapsearch", "-LLL"] + ldap + ["-b", SUFFIX, "(uid=carol)", "dn"],
                            capture_output=True, text=True, check=True).stdout.split("dn: ", 1)[1].split("\n")[0]
        subprocess.run(["ldapmodify"] + ldap, input="dn: %s\nchangetype: modify\nreplace: userPassword\n"
                       "userPassword: carol-plain\n" % dn, capture_output=True, text=True, check=True)
        b = Backend([], smtp={"auth_without_tls": True}, directory={
            "type": "ldap", "auth": "bind", "uris": [self.slapd.uri], "base_dn": SUFFIX,
            "bind_dn": ROOT_DN, "bind_secret_file": self.secret, "timeout": "2s"}).start()
        try:
            def auth(login, password):
                with smtplib.SMTP("127.0.0.1", b.ports["submission"], timeout=10) as c:
                    c.ehlo("x")
                    token = base64.b64encode(b"\0" + login + b"\0" + password).decode()
                    return c.docmd("AUTH", "PLAIN " + token)[0]
            self.assertEqual(235, auth(b"carol@example.org", b"carol-plain"))
            self.assertEqual(535, auth(b"carol@example.org", b"carol-wrong"))
            self.assertEqual(535, auth(b"bob@example.org", b""), "locked, and no password")
            self.assertEqual(535, auth(b"nobody@example.org", b"x"))
        finally:
            self.assertEqual(0, b.stop(), b.log())
            b.cleanup()
        # The same cleartext entry is not accepted by the hash-comparing backend.
        with smtplib.SMTP("127.0.0.1", self.b.ports["submission"], timeout=10) as c:
            c.ehlo("x")
            token = base64.b64encode(b"\0carol@example.org\0carol-plain").decode()
            self.assertNotEqual(235, c.docmd("AUTH", "PLAIN " + token)[0])

    def test_5_bind_auth_needs_an_ldap_directory(self):
        b = Backend([{"id": "x", "address": "x@example.org"}],
                    directory={"type": "file", "auth": "bind", "accounts_file": "/dev/null"})
        try:
            r = b.run_tool("--check-config")
            self.assertEqual(78, r.returncode)
            self.assertIn("auth", r.stdout + r.stderr)
        finally:
            b.cleanup()


if __name__ == "__main__":
    unittest.main()
