"""client_fleet.py against a real hamail-proxy in front of two stores and a real slapd: a steady
run of every kind of worker (IMAP IDLE, login loops, APPEND, SMTP submission with AUTH, POP3) over
STARTTLS sees no error, no gap and no lost message; a store stopped for 3 s is seen as a
new-login gap and a reconnect of the IDLE holder on that store only, with no permanent error and
nothing lost, both through a proxy whose retry window covers the outage and through one (plain
text, port 25) whose short window makes clients see NO [UNAVAILABLE] and 451; and the report's
checks fail when they should: a wrong password is a permanent error, a message deleted behind the
fleet's back is reported missing. The same fleet over implicit TLS (993/995/465-style listeners);
refused and silent endpoints are temporary failures, and stop() cuts a step that hangs."""

import imaplib
import os
import socket
import ssl
import tempfile
import time
import unittest

from client_fleet import (PERMANENT, TEMPORARY, Account, ClientFleet, classify_imap,
                          classify_pop3, classify_smtp)
from hamail_harness import (ROOT_DN, SUFFIX, Backend, LdapDirectory, Proxy, free_port,
                            stop_daemons)

STORES = {name: {"imap": free_port(), "pop3": free_port(), "lmtp": free_port()}
          for name in ("store-a", "store-b")}
# Alternately on store-a and store-b: round-robin puts every kind of worker on both stores.
PLACEMENT = (("alice", "store-a"), ("bob", "store-b"), ("amy", "store-a"), ("bill", "store-b"),
             ("erin", "store-b"), ("proxy", "store-a"))
ACCOUNTS = [Account(name, name + "-secret", name + "@example.org")
            for name in ("alice", "bob", "amy", "bill")]
OUTAGE = 3.0


class fleet_without_servers_test(unittest.TestCase):
    """The classification in client_fleet's docstring, and endpoints that are no servers."""

    def test_imap_codes(self):
        self.assertEqual("ok", classify_imap("OK", "LOGIN completed"))
        for text in ("[UNAVAILABLE] Mail store temporarily unavailable", "[INUSE] x", "[LIMIT] y"):
            self.assertEqual(TEMPORARY, classify_imap("NO", text))
        self.assertEqual(TEMPORARY, classify_imap("BYE", "Server shutting down"))
        for text in ("[AUTHENTICATIONFAILED] x", "[AUTHORIZATIONFAILED] x", "[OVERQUOTA] x",
                     "no code"):
            self.assertEqual(PERMANENT, classify_imap("NO", text))
        self.assertEqual(PERMANENT, classify_imap("BAD", "[UNAVAILABLE] even so"))

    def test_pop3_and_smtp_codes(self):
        self.assertEqual("ok", classify_pop3(b"+OK logged in"))
        for reply in (b"-ERR [SYS/TEMP] x", b"-ERR [IN-USE] x", b"-ERR [LOGIN-DELAY] x",
                      "-ERR EOF"):
            self.assertEqual(TEMPORARY, classify_pop3(reply))
        for reply in (b"-ERR [AUTH] x", b"-ERR [SYS/PERM] x", b"-ERR no such message"):
            self.assertEqual(PERMANENT, classify_pop3(reply))
        self.assertEqual(["ok", "ok", TEMPORARY, TEMPORARY, PERMANENT, PERMANENT, PERMANENT],
                         [classify_smtp(c) for c in (250, 354, 421, 451, 550, 554, -1)])

    def test_refused_and_hung_endpoints_are_temporary_and_stop_is_bounded(self):
        hung = socket.socket()  # accepts (the kernel's backlog) and never says a word
        hung.bind(("127.0.0.1", 0))
        hung.listen(16)
        closed = ("127.0.0.1", free_port())  # nobody listens: connection refused
        try:
            fleet = ClientFleet(imap=hung.getsockname(), pop3=closed, accounts=ACCOUNTS,
                                idle_holders=1, login_loops=1, appenders=0, pop3_readers=1,
                                timeout=0.5)
            fleet.start()
            self.assertFalse(fleet.wait_ready(1.3))
            self.assertEqual([], fleet.stop())
            rep = fleet.report()
            self.assertEqual([], rep.permanent)
            kinds = {(e.kind, e.response.split(":")[0]) for e in fleet.events()}
            self.assertEqual({("CONNECT", "TimeoutError"), ("CONNECT", "ConnectionRefusedError")},
                             kinds)
            self.assertGreaterEqual(rep.temporary, 3)
            self.assertEqual(rep.until - rep.since, rep.new_login_gap, "never logged in")
            # A step that hangs longer than stop()'s grace is cut, not waited for.
            fleet = ClientFleet(imap=hung.getsockname(), accounts=ACCOUNTS, idle_holders=2,
                                login_loops=2, appenders=1, timeout=30)
            fleet.start()
            time.sleep(0.3)
            started = time.monotonic()
            self.assertEqual([], fleet.stop(grace=0.2))
            self.assertLess(time.monotonic() - started, 2)
            self.assertEqual([], fleet.events(), "the fleet's own cuts are no errors")
        finally:
            hung.close()


class client_fleet_test(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="hamail-fleet-it-")
        cls.directory = LdapDirectory(cls.tmp)
        cls.slapd, cls.secret = cls.directory.slapd, cls.directory.secret
        cls.directory.add_loopback_stores(STORES)
        for user, store in PLACEMENT:
            pw = os.path.join(cls.tmp, user + ".pw")
            with open(pw, "w") as f:
                f.write(user + "-secret\n")
            cls.admin("account", "add", user, "--address", "%s@example.org" % user,
                      "--password-file", pw, "--store", store)
        ldap = {"type": "ldap", "uris": [cls.slapd.uri], "base_dn": SUFFIX, "bind_dn": ROOT_DN,
                "bind_secret_file": cls.secret, "timeout": "2s", "cache_ttl": "10s",
                "negative_cache_ttl": "1s"}
        trust = {"trusted_proxies": ["127.0.0.1"], "proxy_logins": ["proxy"]}
        cls.backends = {}
        for name, ports in STORES.items():
            cls.backends[name] = Backend(
                [], store=name, directory=ldap, imap=dict(trust), pop3=dict(trust),
                smtp={"trusted_proxies": ["127.0.0.1"]},
                listeners=(("imap", "imap", "starttls", "127.0.0.1", ports["imap"]),
                           ("pop3", "pop3", "starttls", "127.0.0.1", ports["pop3"]),
                           ("lmtp", "lmtp", "none", "127.0.0.1", ports["lmtp"]))).start()
        proxy_pw = os.path.join(cls.tmp, "proxy.pw")  # written above: the proxy's own account
        ca_bundle = os.path.join(cls.tmp, "backend-ca.pem")
        with open(ca_bundle, "w") as out:
            for b in cls.backends.values():
                with open(b.ca) as f:
                    out.write(f.read())
        backend = {"login": "proxy", "password_file": proxy_pw, "tls": "starttls",
                   "ca_file": ca_bundle, "retry_delay": "100ms", "retry_max_delay": "300ms",
                   "login_timeout": "2s", "connect_timeout": "1s", "disconnect_delay": "200ms"}
        listeners = (("imap", "imap", "starttls", "127.0.0.1", 0),
                     ("pop3", "pop3", "starttls", "127.0.0.1", 0),
                     ("smtp", "smtp", "starttls", "127.0.0.1", 0),
                     ("submission", "submission", "starttls", "127.0.0.1", 0),
                     ("imaps", "imap", "implicit", "127.0.0.1", 0),
                     ("pop3s", "pop3", "implicit", "127.0.0.1", 0),
                     ("submissions", "submission", "implicit", "127.0.0.1", 0))
        common = {"directory": ldap, "listeners": listeners,
                  "smtp": {"local_domains": ["example.org"]},
                  # The whole fleet logs in from 127.0.0.1: no lock-out for a wrong password.
                  "auth": {"max_failures_per_address": 100000}}
        # A retry window that covers the outage, and one that does not (with plain-text logins).
        cls.covering = Proxy(dict(backend, retry_for="10s"), name="proxy-covering",
                             **common).start()
        plain = {"login_without_tls": True}
        cls.short = Proxy(dict(backend, retry_for="300ms"), name="proxy-short", imap=plain,
                          pop3=plain, **common).start()
        cls.tls = ssl.create_default_context(cafile=cls.covering.ca)

    @classmethod
    def tearDownClass(cls):
        stop_daemons([cls.covering, cls.short] + list(cls.backends.values()), cls.tmp, cls.slapd)

    @classmethod
    def admin(cls, *args):
        return cls.directory.admin(*args)

    def fleet(self, proxy, tls=True, smtp_listener="smtp", accounts=ACCOUNTS, **kw):
        """A fleet on `proxy`'s listeners: STARTTLS everywhere with `tls`, else plain text."""
        p = proxy.ports
        return ClientFleet(imap=("127.0.0.1", p["imap"]), pop3=("127.0.0.1", p["pop3"]),
                           smtp=("127.0.0.1", p[smtp_listener]), accounts=accounts,
                           ssl_context=self.tls if tls else None, starttls=True, timeout=20.0,
                           **kw)

    def ready(self, fleet):
        self.assertTrue(fleet.wait_ready(20), "no first success: %s" % fleet.report().summary())

    def assert_verified(self, fleet, rep):
        vias = {a.via for a in rep.acked}
        self.assertEqual({"append", "smtp"}, vias, rep.summary())
        self.assertEqual([], fleet.verify(rep.acked))

    def test_1_steady_run_sees_no_error_no_gap_and_loses_nothing(self):
        fleet = self.fleet(self.covering, smtp_listener="submission", smtp_auth=True,
                           idle_refresh=1.0)
        fleet.start()
        self.ready(fleet)
        t0 = time.monotonic()
        time.sleep(4)
        self.assertEqual([], fleet.stop())
        rep = fleet.report(since=t0)
        print("\nsteady:", rep.summary())
        self.assertEqual([], rep.permanent)
        self.assertEqual(0, rep.temporary, rep.temporary_samples)
        for kind in ("LOGIN", "SELECT", "FETCH", "IDLE", "DONE", "APPEND", "AUTH", "DATA", "PASS",
                     "RETR"):
            self.assertGreater(rep.ok_counts[kind], 0, kind)
        self.assertLess(rep.new_login_gap, 1.0, rep.new_login_gaps)
        self.assertEqual(0.0, rep.reconnect_gap, rep.reconnects)
        self.assert_verified(fleet, rep)

    def outage(self, proxy, tls):
        """Stops store-a's backend for OUTAGE seconds under a running fleet; returns the
        fleet and its report from the moment the backend was stopped."""
        fleet = self.fleet(proxy, tls=tls, idle_refresh=2.0)
        fleet.start()
        self.ready(fleet)
        time.sleep(0.5)
        b = self.backends["store-a"]
        t0 = time.monotonic()
        b.stop()
        try:
            time.sleep(max(0.0, t0 + OUTAGE - time.monotonic()))
        finally:
            b.start()
        back = time.monotonic()
        # Until every worker succeeded again at its main step (bounded), then a little more.
        main = {"idle": "IDLE", "login": "LOGIN", "pop3": "PASS", "append": "APPEND",
                "smtp": "DATA"}
        deadline = back + 20
        while time.monotonic() < deadline:
            recovered = {e.client for e in fleet.events() if e.outcome == "ok" and e.end > back
                         and e.kind == main[fleet.roles[e.client]]}
            if recovered >= set(fleet.roles):
                break
            time.sleep(0.1)
        time.sleep(0.5)
        self.assertEqual([], fleet.stop())
        return fleet, fleet.report(since=t0)

    def assert_outage_seen(self, fleet, rep):
        self.assertEqual([], rep.permanent)
        # amy's login loop and POP3 reader are on store-a; bill's login loop on store-b.
        self.assertGreaterEqual(rep.new_login_gap, OUTAGE - 0.5, rep.new_login_gaps)
        self.assertGreaterEqual(rep.new_login_gaps["pop3-6(amy)"], OUTAGE - 0.5)
        self.assertLess(rep.new_login_gaps["login-3(bill)"], 1.0, rep.new_login_gaps)
        # alice's holder (store-a) was disconnected and came back; bob's (store-b) never left.
        self.assertGreater(rep.reconnect_gaps["idle-0(alice)"], 0.0, rep.reconnects)
        self.assertTrue(all(back is not None for _, _, back, _ in rep.reconnects),
                        "every holder in IDLE again: %r" % rep.reconnects)
        self.assertLess(rep.reconnect_gaps["idle-0(alice)"], OUTAGE + 5, rep.reconnects)
        self.assertEqual(0.0, rep.reconnect_gaps["idle-1(bob)"], rep.reconnects)
        self.assertGreater(rep.temporary, 0, "at least the holder's disconnect")
        self.assert_verified(fleet, rep)

    def test_2_store_outage_within_the_proxy_retry_window(self):
        fleet, rep = self.outage(self.covering, tls=True)
        print("\ncovered outage:", rep.summary(), *rep.temporary_samples, sep="\n  ")
        self.assert_outage_seen(fleet, rep)
        # The proxy's retries hid the outage from new IMAP logins: slow, never refused.
        refused = [e for e in fleet.events() if e.kind == "LOGIN" and e.outcome != "ok"]
        self.assertEqual([], refused)

    def test_3_store_outage_beyond_a_short_retry_window(self):
        fleet, rep = self.outage(self.short, tls=False)
        print("\nshort window:", rep.summary(), *rep.temporary_samples, sep="\n  ")
        self.assert_outage_seen(fleet, rep)
        # Clients saw the proxy's temporary refusals: IMAP, POP3 and SMTP.
        seen = [(e.kind, e.response) for e in fleet.events() if e.outcome == TEMPORARY]
        self.assertTrue([r for k, r in seen if k == "LOGIN" and "NO [UNAVAILABLE]" in r], seen)
        self.assertTrue([r for k, r in seen if k == "PASS" and "-ERR [SYS/TEMP]" in r], seen)
        self.assertTrue([r for k, r in seen if k == "DATA" and r.startswith("451")], seen)

    def test_4_wrong_password_is_a_permanent_error(self):
        accounts = [Account("erin", "not-erins", "erin@example.org"), ACCOUNTS[1]]
        fleet = self.fleet(self.short, tls=False, accounts=accounts, idle_holders=0,
                           login_loops=2, appenders=0, smtp_senders=0, pop3_readers=0)
        fleet.start()
        time.sleep(2)
        fleet.stop()
        rep = fleet.report()
        print("\nwrong password:", rep.summary())
        self.assertTrue(rep.permanent, rep.summary())
        self.assertEqual({("login-0(erin)", "LOGIN")},
                         {(p.client, p.command) for p in rep.permanent})
        self.assertIn("NO [AUTHENTICATIONFAILED]", rep.permanent[0].response)
        self.assertGreater(rep.ok_counts["LOGIN"], 0, "bob's logins go on")

    def test_5_a_message_deleted_behind_the_fleet_is_missing(self):
        fleet = self.fleet(self.covering, idle_holders=0, login_loops=0, pop3_readers=0)
        fleet.start()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and len({a.via for a in fleet.report().acked}) < 2:
            time.sleep(0.1)
        fleet.stop()
        rep = fleet.report()
        self.assertEqual([], rep.permanent)
        self.assert_verified(fleet, rep)
        gone = [a for a in rep.acked if a.via == "smtp"][0]
        password = [a.password for a in ACCOUNTS if a.login == gone.account][0]
        m = imaplib.IMAP4("127.0.0.1", self.covering.ports["imap"], timeout=30)
        m.starttls(self.tls)
        m.login(gone.account, password)
        m.select("INBOX")
        typ, data = m.uid("SEARCH", None, "HEADER", "Message-ID", '"%s"' % gone.message_id)
        self.assertEqual(1, len(data[0].split()), data)
        m.uid("STORE", data[0], "+FLAGS", r"(\Deleted)")
        m.expunge()
        m.logout()
        self.assertEqual([gone], fleet.verify(rep.acked))

    def test_6_implicit_tls_endpoints(self):
        p = self.covering.ports
        fleet = ClientFleet(imap=("127.0.0.1", p["imaps"]), pop3=("127.0.0.1", p["pop3s"]),
                            smtp=("127.0.0.1", p["submissions"]), accounts=ACCOUNTS,
                            idle_holders=1, login_loops=1, ssl_context=self.tls, starttls=False,
                            smtp_auth=True)
        fleet.start()
        self.ready(fleet)
        fleet.stop()
        rep = fleet.report()
        self.assertEqual([], rep.permanent)
        self.assertEqual(0, rep.temporary, rep.temporary_samples)
        self.assert_verified(fleet, rep)


if __name__ == "__main__":
    unittest.main()
