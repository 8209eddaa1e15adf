"""Two stores with sync listeners, a real slapd and a hamail-proxy in front: what account moves
need (docs/adr/0005-account-moves.md). Used by test_account_move.py and
tests/bench/move_bench.py."""

import imaplib
import json
import os
import re
import smtplib
import socket
import ssl
import subprocess
import tempfile
import time

from hamail_harness import (ADMIN, ROOT_DN, SUFFIX, Backend, LdapDirectory, Proxy, free_port,
                            stop_daemons)

SYNC_SECRET = "cluster-sync-secret-for-tests"
PROXY_PASSWORD = "proxy-secret"


def message(n, subject=None, size=0, to="mover@example.org"):
    """A message with Message-ID <m<n>@move.test>, about `size` octets of body."""
    body = "Message %d.\r\n" % n + ("x" * 70 + "\r\n") * (size // 72)
    return ("From: Sender <sender@remote.test>\r\nTo: %s\r\n"
            "Subject: %s\r\nMessage-ID: <m%d@move.test>\r\n"
            "Date: Mon, 30 Nov 2026 10:00:00 +0000\r\n\r\n%s"
            % (to, subject or "message %d" % n, n, body)).encode()


def deliver_until(cluster, user, stop, record, first=1_000_000):
    """Delivers messages <first+1>, <first+2>... to `user` through the proxy's SMTP port, a
    connection each, every 20 ms until `stop` is set. `record(n, code, seconds)` is called for
    each: code 250 when accepted, the SMTP reply code when refused, the error's text when the
    connection failed."""
    n = first
    while not stop.is_set():
        n += 1
        t = time.monotonic()
        try:
            with smtplib.SMTP("127.0.0.1", cluster.proxy.ports["smtp"], timeout=60) as s:
                s.sendmail("sender@remote.test", [user + "@example.org"],
                           message(n, "during the move"))
            code = 250
        except smtplib.SMTPResponseException as e:
            code = e.smtp_code
        except smtplib.SMTPRecipientsRefused as e:
            code = list(e.recipients.values())[0][0]
        except OSError as e:
            code = str(e)
        record(n, code, time.monotonic() - t)
        time.sleep(0.02)


class RawImap:
    """A raw IMAP client on a store (STARTTLS, LOGIN) for fast MULTIAPPEND with LITERAL+."""

    def __init__(self, port, ca, user, password):
        s = socket.create_connection(("127.0.0.1", port), timeout=120)
        self.f = s.makefile("rb")
        self.s = s
        self.f.readline()
        self.cmd("s STARTTLS")
        ctx = ssl.create_default_context(cafile=ca)
        self.s = ctx.wrap_socket(s, server_hostname="localhost")
        self.f = self.s.makefile("rb")
        self.cmd("l LOGIN %s %s" % (user, password))

    def cmd(self, line, data=b""):
        self.s.sendall(line.encode() + data + b"\r\n")
        tag = line.split(" ", 1)[0]
        while True:
            r = self.f.readline().decode()
            if not r:
                raise EOFError(line)
            if r.startswith(tag + " "):
                if not r.startswith(tag + " OK"):
                    raise AssertionError("%s: %s" % (line[:60], r))
                return r

    def append_many(self, mailbox, items):
        """items: (flags, date, bytes); one MULTIAPPEND with non-synchronizing literals."""
        parts = []
        for flags, date, data in items:
            parts.append((" (%s) \"%s\" {%d+}\r\n" % (flags, date, len(data))).encode() + data)
        self.cmd("a APPEND %s" % mailbox, b"".join(parts))

    def close(self):
        try:
            self.cmd("z LOGOUT")
        except (EOFError, OSError, AssertionError):
            pass
        self.s.close()


def mailbox_state(m, mailbox):
    """(uidvalidity, uidnext, highestmodseq, {uid: (flags, internaldate, size, modseq)}) as an
    IMAP client sees it."""
    typ, _ = m.select('"%s" (CONDSTORE)' % mailbox, readonly=True)
    assert typ == "OK", mailbox
    uv = int(m.untagged_responses.get("UIDVALIDITY", [b"0"])[-1])
    un = int(m.untagged_responses.get("UIDNEXT", [b"0"])[-1])
    hm = int(m.untagged_responses.get("HIGHESTMODSEQ", [b"0"])[-1])
    msgs = {}
    typ, data = m.uid("FETCH", "1:*", "(UID FLAGS INTERNALDATE RFC822.SIZE MODSEQ)")
    for item in data:
        if not item:
            continue
        line = item.decode() if isinstance(item, bytes) else item[0].decode()
        uid = int(re.search(r"UID (\d+)", line).group(1))
        flags = tuple(sorted(re.search(r"FLAGS \(([^)]*)\)", line).group(1).split()))
        date = re.search(r'INTERNALDATE "([^"]+)"', line).group(1)
        size = int(re.search(r"RFC822.SIZE (\d+)", line).group(1))
        modseq = int(re.search(r"MODSEQ \((\d+)\)", line).group(1))
        msgs[uid] = (flags, date, size, modseq)
    return uv, un, hm, msgs


def fill_account(raw, user, messages, folders=True, size=200):
    """Through `raw` (a logged-in RawImap, closed at the end): INBOX with `messages` messages
    (flags and a keyword on some, every 100th expunged so UIDNEXT is above holes), and with
    `folders` two folders and subscriptions. Also fills tests/bench/move_bench.py's Dovecot."""
    if folders:
        raw.cmd("c1 CREATE Archive/2024")
        try:
            raw.cmd("c2 CREATE Sent")
        except AssertionError as e:  # the store creates its special-use mailboxes itself
            if "ALREADYEXISTS" not in str(e):
                raise
        raw.cmd("c3 SUBSCRIBE Archive/2024")
        raw.cmd("c4 SUBSCRIBE Sent")
    batch = []
    for n in range(1, messages + 1):
        flags = " ".join(f for f, every in (("\\Seen", 3), ("\\Flagged", 7),
                                             ("$Label1", 11), ("\\Answered", 13))
                         if n % every == 0)
        day = 1 + n % 28
        batch.append((flags, "%02d-Nov-2026 10:%02d:%02d +0000" % (day, n % 60, n % 59),
                      message(n, size=size + (n % 5) * 400, to=user + "@example.org")))
        if len(batch) == 500:
            raw.append_many("INBOX", batch)
            batch = []
    if batch:
        raw.append_many("INBOX", batch)
    if folders:
        raw.append_many("Archive/2024", [("\\Seen", "01-Jan-2024 08:00:00 +0000",
                                          message(900000 + i)) for i in range(50)])
        raw.append_many("Sent", [("\\Seen $Sent", "02-Dec-2026 09:00:00 +0000",
                                  message(950000 + i)) for i in range(20)])
    gaps = ",".join(str(u) for u in range(100, messages + 1, 100))
    if gaps:
        raw.cmd("s1 SELECT INBOX")
        raw.cmd("s3 UID STORE %s +FLAGS.SILENT (\\Deleted)" % gaps)
        raw.cmd("s4 UID EXPUNGE %s" % gaps)
    raw.close()


class MoveCluster:
    """slapd, store-a and store-b (IMAP, POP3, LMTP, sync on fixed loopback ports recorded in the
    directory), a proxy (IMAP STARTTLS, SMTP) and an admin configuration with the sync secret.
    `accounts`: {id: (password, store)}."""

    def __init__(self, accounts, tmp=None):
        self.tmp = tmp or tempfile.mkdtemp(prefix="hamail-move-")
        self.accounts = dict(accounts)
        self.stores = {name: {"imap": free_port(), "pop3": free_port(), "lmtp": free_port(),
                              "sync": free_port()} for name in ("store-a", "store-b")}
        self.backends = {}
        self.proxy = None
        self.directory = None

    def start(self):
        self.directory = LdapDirectory(self.tmp)
        self.slapd = self.directory.slapd
        self.directory.add_loopback_stores(self.stores)
        self.accounts["proxy"] = (PROXY_PASSWORD, "store-a")
        for user, (password, store) in self.accounts.items():
            pw = os.path.join(self.tmp, user + ".pw")
            with open(pw, "w") as f:
                f.write(password + "\n")
            self.directory.admin("account", "add", user, "--address", "%s@example.org" % user,
                                 "--password-file", pw, "--store", store)
        self.sync_secret = os.path.join(self.tmp, "sync.secret")
        with open(self.sync_secret, "w") as f:
            f.write(SYNC_SECRET + "\n")
        os.chmod(self.sync_secret, 0o600)
        self.ca_bundle = os.path.join(self.tmp, "stores-ca.pem")
        self.ldap = {"type": "ldap", "uris": [self.slapd.uri], "base_dn": SUFFIX,
                     "bind_dn": ROOT_DN, "bind_secret_file": self.directory.secret,
                     "timeout": "2s", "cache_ttl": "1s", "negative_cache_ttl": "1s"}
        trust = {"trusted_proxies": ["127.0.0.1"], "proxy_logins": ["proxy"]}
        for name, ports in self.stores.items():
            self.backends[name] = Backend(
                [], store=name, directory=self.ldap, imap=dict(trust), pop3=dict(trust),
                smtp={"trusted_proxies": ["127.0.0.1"]},
                sync={"secret_file": self.sync_secret, "allowed_from": ["127.0.0.1"],
                      "ca_file": self.ca_bundle},
                listeners=(("imap", "imap", "starttls", "127.0.0.1", ports["imap"]),
                           ("pop3", "pop3", "starttls", "127.0.0.1", ports["pop3"]),
                           ("lmtp", "lmtp", "none", "127.0.0.1", ports["lmtp"]),
                           ("sync", "sync", "implicit", "127.0.0.1", ports["sync"])))
        with open(self.ca_bundle, "w") as out:
            for b in self.backends.values():
                with open(b.ca) as f:
                    out.write(f.read())
        for b in self.backends.values():
            b.start()
        with open(self.directory.admin_config, "w") as f:
            f.write('[sync]\nsecret_file = "%s"\nca_file = "%s"\n' % (self.sync_secret,
                                                                     self.ca_bundle))
        proxy_pw = os.path.join(self.tmp, "proxy.secret")
        with open(proxy_pw, "w") as f:
            f.write(PROXY_PASSWORD + "\n")
        self.proxy = Proxy({"login": "proxy", "password_file": proxy_pw, "tls": "starttls",
                            "ca_file": self.ca_bundle, "retry_for": "15s",
                            "retry_delay": "100ms", "retry_max_delay": "250ms",
                            "disconnect_delay": "200ms"},
                           dict(self.ldap, cache_ttl="30s"), name="proxy-move",
                           smtp={"local_domains": ["example.org"]},
                           listeners=(("imap", "imap", "starttls", "127.0.0.1", 0),
                                      ("smtp", "smtp", "none", "127.0.0.1", 0))).start()
        self.tls = ssl.create_default_context(cafile=self.proxy.ca)
        return self

    def stop(self):
        daemons = ([self.proxy] if self.proxy else []) + list(self.backends.values())
        stop_daemons(daemons, self.tmp, self.slapd if self.directory else None)

    def admin(self, *args, timeout=3600):
        """Runs hamail-admin; returns the CompletedProcess (the caller checks returncode)."""
        return subprocess.run([ADMIN, "--config", self.directory.admin_config] + list(args),
                              env=self.directory.env, capture_output=True, text=True,
                              timeout=timeout)

    def move(self, account, to, *extra):
        """`account move ACCOUNT --to TO --json` + extra; returns (returncode, json or text)."""
        return self._json_run("account", "move", account, "--to", to, "--json", *extra)

    def _json_run(self, *args):
        r = self.admin(*args)
        try:
            return r.returncode, json.loads(r.stdout)
        except ValueError:
            return r.returncode, r.stdout + r.stderr

    def move_resume(self, account):
        """`account move ACCOUNT --resume --grace 0 --json`: (returncode, json or text)."""
        return self._json_run("account", "move", account, "--resume", "--grace", "0", "--json")

    def move_abort(self, account):
        """`account move ACCOUNT --abort --json`: (returncode, json or text)."""
        return self._json_run("account", "move", account, "--abort", "--json")

    def owning_store(self, account):
        with open(self.directory.secret) as f:
            secret = f.readline().rstrip("\n")  # ldapsearch -y would send the newline too
        out = subprocess.run(["ldapsearch", "-x", "-LLL", "-H", self.slapd.uri, "-D", ROOT_DN,
                              "-w", secret, "-b",
                              "uid=%s,ou=accounts,%s" % (account, SUFFIX), "hamailOwningStore",
                              "hamailMoveJournal"], capture_output=True, text=True).stdout
        store = re.search(r"hamailOwningStore: (\S+)", out)
        journal = re.search(r"hamailMoveJournal: (.+)", out)
        return (store.group(1) if store else None), (journal.group(1) if journal else None)

    def client(self, user):
        """An IMAP client logged in through the proxy."""
        m = imaplib.IMAP4("127.0.0.1", self.proxy.ports["imap"], timeout=60)
        m.starttls(self.tls)
        m.login(user, self.accounts[user][0])
        return m

    def raw(self, user):
        """A raw client on the account's store directly (for fast filling)."""
        store = self.accounts[user][1]
        return RawImap(self.stores[store]["imap"], self.backends[store].ca, user,
                       self.accounts[user][0])

    def fill(self, user, messages, folders=True, size=200):
        """fill_account() on the account's store."""
        fill_account(self.raw(user), user, messages, folders, size)
