"""hamail-admin against a real slapd: every subcommand, bad input, --json output,
and the placement policy spreading 1,000 accounts over three stores by weight.

slapd gets its own cn=config (built with slapadd from core, cosine, nis,
inetorgperson, misc and ldap-schema/hamail.ldif) and an mdb database with the
suffix, ou=stores and ou=accounts, on a free loopback port; it is stopped by its
pid. Needs HAMAIL_ADMIN (the hamail-admin binary)."""

import base64
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

ADMIN = os.environ.get("HAMAIL_ADMIN", "")
HERE = os.path.dirname(os.path.abspath(__file__))
from hamail_harness import ROOT_DN, ROOT_PW, SCHEMA_LDIF, SUFFIX, Slapd, free_port, ssha  # noqa: E402,F401

EXIT_OK, EXIT_NOT_FOUND, EXIT_USAGE, EXIT_CONFLICT, EXIT_REFUSED = 0, 1, 2, 3, 4
EXIT_UNREACHABLE, EXIT_INVALID, EXIT_LDAP, EXIT_CONFIG = 5, 6, 7, 8


class AdminTestCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not ADMIN:
            raise RuntimeError("HAMAIL_ADMIN is not set")
        if not os.path.isfile(SCHEMA_LDIF):
            raise RuntimeError("schema LDIF missing: " + SCHEMA_LDIF)
        cls.tmp = tempfile.mkdtemp(prefix="hamail-admin-it-")
        cls.slapd = Slapd(os.path.join(cls.tmp, "slapd"))
        cls.secret = os.path.join(cls.tmp, "bind.secret")
        with open(cls.secret, "w") as f:
            f.write(ROOT_PW + "\n")
        os.chmod(cls.secret, 0o600)
        cls.env = dict(os.environ)
        cls.env.update({"HAMAIL_LDAP_URI": cls.slapd.uri, "HAMAIL_LDAP_BASE_DN": SUFFIX,
                        "HAMAIL_LDAP_BIND_DN": ROOT_DN, "HAMAIL_LDAP_BIND_SECRET_FILE": cls.secret})

    @classmethod
    def tearDownClass(cls):
        cls.slapd.stop()
        if not os.environ.get("HAMAIL_KEEP_TEST_DIRS"):
            shutil.rmtree(cls.tmp, ignore_errors=True)

    def admin(self, *args, stdin=None, env=None, expect=EXIT_OK):
        """Runs hamail-admin (with --config pointing at nothing), checks its exit code."""
        r = subprocess.run([ADMIN, "--config", self.empty_config()] + list(args),
                           input=stdin, capture_output=True, text=True,
                           env=env if env is not None else self.env, timeout=300)
        self.assertEqual(r.returncode, expect,
                         "hamail-admin %s: exit %d, expected %d\nstdout: %s\nstderr: %s"
                         % (" ".join(args), r.returncode, expect, r.stdout, r.stderr))
        return r

    def admin_json(self, *args, expect=EXIT_OK, **kw):
        r = self.admin(*(list(args) + ["--json"]), expect=expect, **kw)
        return json.loads(r.stdout)

    def empty_config(self):
        path = os.path.join(self.tmp, "empty.toml")
        if not os.path.exists(path):
            with open(path, "w") as f:
                f.write("# no settings: the environment supplies them\n")
        return path

    def write(self, name, text):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def ldapsearch(self, base, filt, *attrs):
        r = subprocess.run(["ldapsearch", "-x", "-LLL", "-o", "ldif-wrap=no", "-H", self.slapd.uri,
                            "-D", ROOT_DN, "-w", ROOT_PW, "-b", base, filt] + list(attrs),
                           capture_output=True, text=True)
        return r.stdout

    def bind_works(self, dn, password):
        r = subprocess.run(["ldapwhoami", "-x", "-H", self.slapd.uri, "-D", dn, "-w", password],
                           capture_output=True, text=True)
        return r.returncode == 0


class StoreCommands(AdminTestCase):
    def test_store_lifecycle_and_bad_input(self):
        out = self.admin_json("store", "add", "st-one", "--host", "st-one.mail.example.org",
                              "--address", "192.0.2.20", "--smtp-port", "25", "--lmtp-port", "24",
                              "--imap-port", "143", "--pop3-port", "110", "--weight", "3",
                              "--state", "open")
        self.assertEqual(out["added"]["name"], "st-one")
        self.assertEqual(out["added"]["ports"],
                         {"smtp": 25, "lmtp": 24, "imap": 143, "pop3": 110, "sync": None})
        self.admin("store", "add", "st-two", "--host", "st-two.mail.example.org")

        listed = self.admin_json("store", "list")["stores"]
        self.assertEqual([s["name"] for s in listed], ["st-one", "st-two"])
        self.assertEqual(listed[1]["weight"], 1)
        self.assertEqual(listed[1]["state"], "open")
        self.assertIsNone(listed[1]["address"])
        text = self.admin("store", "list").stdout
        self.assertIn("NAME", text)
        self.assertIn("st-one.mail.example.org", text)

        shown = self.admin_json("store", "show", "st-one")["store"]
        self.assertEqual((shown["host"], shown["address"], shown["weight"], shown["accounts"]),
                         ("st-one.mail.example.org", "192.0.2.20", 3, 0))
        self.assertIn("weight:", self.admin("store", "show", "st-one").stdout)

        r = self.admin_json("store", "set-state", "st-two", "draining")
        self.assertEqual((r["state"], r["previous_state"]), ("draining", "open"))
        r = self.admin_json("store", "set-weight", "st-two", "7")
        self.assertEqual((r["weight"], r["previous_weight"]), (7, 1))
        r = self.admin_json("store", "set-sync-port", "st-two", "4990")
        self.assertEqual((r["sync_port"], r["previous_sync_port"]), (4990, None))
        self.assertEqual(self.admin_json("store", "show", "st-two")["store"]["ports"]["sync"], 4990)
        self.admin("store", "set-sync-port", "st-two", "0", expect=EXIT_INVALID)
        self.admin("store", "set-sync-port", "st-nosuch", "4990", expect=EXIT_NOT_FOUND)
        self.assertIn("hamailStoreState: draining",
                      self.ldapsearch("hamailStoreName=st-two,ou=stores," + SUFFIX,
                                      "(objectClass=*)", "hamailStoreState"))

        # Bad input: exit code and message, nothing written.
        r = self.admin("store", "add", "st-one", "--host", "x.example.org", expect=EXIT_CONFLICT)
        self.assertIn("exists already", r.stderr)
        r = self.admin("store", "add", "Bad Name", "--host", "x.example.org", expect=EXIT_INVALID)
        self.assertIn("invalid store name", r.stderr)
        self.admin("store", "add", "st-x", "--host", "x.example.org", "--state", "half",
                   expect=EXIT_INVALID)
        self.admin("store", "add", "st-x", "--host", "x.example.org", "--smtp-port", "70000",
                   expect=EXIT_INVALID)
        self.admin("store", "add", "st-x", "--host", "bad_host!", expect=EXIT_INVALID)
        self.admin("store", "add", "st-x", "--host", "x.example.org", "--address", "300.1.1.1",
                   expect=EXIT_INVALID)
        self.admin("store", "add", "st-x", "--host", "x.example.org", "--weight", "-1",
                   expect=EXIT_INVALID)
        self.admin("store", "show", "st-x", expect=EXIT_NOT_FOUND)
        err = self.admin_json("store", "show", "nosuch", expect=EXIT_NOT_FOUND)["error"]
        self.assertEqual((err["exit_code"], err["kind"]), (1, "not_found"))
        self.assertIn("unknown store", err["message"])
        self.admin("store", "set-state", "st-two", "sideways", expect=EXIT_INVALID)
        self.admin("store", "set-weight", "st-two", "lots", expect=EXIT_INVALID)
        self.admin("store", "set-state", "nosuch", "open", expect=EXIT_NOT_FOUND)

        # remove: refused while accounts are placed on the store.
        self.admin("account", "add", "rm-blocker", "--address", "rm-blocker@example.org",
                   "--store", "st-one")
        r = self.admin("store", "remove", "st-one", expect=EXIT_REFUSED)
        self.assertIn("still owns 1 account", r.stderr)
        self.admin("store", "show", "st-one")
        self.admin("account", "remove", "rm-blocker")
        self.assertEqual(self.admin_json("store", "remove", "st-one")["removed"], "st-one")
        self.admin("store", "show", "st-one", expect=EXIT_NOT_FOUND)
        self.admin("store", "remove", "st-one", expect=EXIT_NOT_FOUND)
        self.admin("store", "remove", "st-two")


class AccountCommands(AdminTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        env = cls.env
        for args in (["ac-a", "--host", "ac-a.mail.example.org", "--weight", "1"],
                     ["ac-b", "--host", "ac-b.mail.example.org", "--weight", "1"],
                     ["ac-closed", "--host", "ac-c.mail.example.org", "--state", "closed"]):
            subprocess.run([ADMIN, "store", "add"] + args, env=env, check=True,
                           capture_output=True)

    def account_entry(self, uid):
        return self.ldapsearch("uid=%s,ou=accounts,%s" % (uid, SUFFIX), "(objectClass=*)")

    def test_add_show_list_passwd_quota_alias_lock_move_remove(self):
        pw = self.write("alice.pw", "alice-secret\n")
        out = self.admin_json("account", "add", "alice", "--address", "Alice@Example.org",
                              "--alias", "a.smith@example.org", "--alias", "postmaster@example.org",
                              "--password-file", pw, "--scheme", "SSHA", "--store", "ac-a",
                              "--quota-bytes", "10M", "--quota-messages", "5000",
                              "--name", "Alice Smith")
        a = out["added"]
        self.assertEqual(out["placed_by"], "operator")
        self.assertEqual((a["id"], a["address"], a["store"], a["mail_host"], a["name"]),
                         ("alice", "alice@example.org", "ac-a", "ac-a.mail.example.org",
                          "Alice Smith"))
        self.assertEqual(a["aliases"], ["a.smith@example.org", "postmaster@example.org"])
        self.assertEqual((a["quota_bytes"], a["quota_messages"], a["state"], a["has_password"]),
                         (10485760, 5000, "active", True))
        entry = self.account_entry("alice")
        for line in ("objectClass: inetOrgPerson", "objectClass: hamailAccount",
                     "objectClass: inetLocalMailRecipient", "mailLocalAddress: alice@example.org",
                     "mailLocalAddress: a.smith@example.org", "mailHost: ac-a.mail.example.org",
                     "hamailOwningStore: ac-a", "sn: Alice Smith", "hamailQuotaBytes: 10485760"):
            self.assertIn(line, entry)
        alice_dn = "uid=alice,ou=accounts," + SUFFIX
        self.assertTrue(self.bind_works(alice_dn, "alice-secret"))
        self.assertFalse(self.bind_works(alice_dn, "wrong"))

        # show / list
        self.assertEqual(self.admin_json("account", "show", "alice")["account"]["store"], "ac-a")
        self.assertIn("a.smith@example.org", self.admin("account", "show", "alice").stdout)
        self.admin("account", "add", "bob", "--address", "bob@example.org", "--store", "ac-b")
        ids = [x["id"] for x in self.admin_json("account", "list")["accounts"]]
        self.assertIn("alice", ids)
        self.assertIn("bob", ids)
        only_b = [x["id"] for x in self.admin_json("account", "list", "--store", "ac-b")["accounts"]]
        self.assertEqual(only_b, ["bob"])
        self.assertIn("bob@example.org", self.admin("account", "list").stdout)
        self.admin("account", "list", "--store", "nosuch", expect=EXIT_NOT_FOUND)

        # passwd (stdin, crypt scheme) — slapd verifies {CRYPT} binds itself.
        r = self.admin_json("account", "passwd", "alice", "--password-stdin",
                            "--scheme", "SHA512-CRYPT", stdin="new-secret\n")
        self.assertTrue(r["password_changed"])
        self.assertIn("userPassword:: ", self.account_entry("alice"))
        self.assertTrue(self.bind_works(alice_dn, "new-secret"))
        self.assertFalse(self.bind_works(alice_dn, "alice-secret"))
        self.admin("account", "passwd", "alice", "--password-stdin", stdin="\n",
                   expect=EXIT_INVALID)
        self.admin("account", "passwd", "alice", "--password-stdin", "--scheme", "MD5",
                   stdin="x\n", expect=EXIT_INVALID)
        self.admin("account", "passwd", "alice", expect=EXIT_USAGE)
        self.admin("account", "passwd", "nobody", "--password-stdin", stdin="x\n",
                   expect=EXIT_NOT_FOUND)
        self.assertTrue(self.bind_works(alice_dn, "new-secret"))

        # quota
        q = self.admin_json("account", "quota", "alice")
        self.assertEqual((q["quota_bytes"], q["quota_messages"], q["changed"]),
                         (10485760, 5000, False))
        q = self.admin_json("account", "quota", "alice", "--bytes", "2G")
        self.assertEqual((q["quota_bytes"], q["quota_messages"]), (2 << 30, 5000))
        q = self.admin_json("account", "quota", "alice", "--messages", "0")
        self.assertEqual(q["quota_messages"], 0)
        self.assertNotIn("hamailQuotaMessages", self.account_entry("alice"))
        r = self.admin("account", "quota", "alice", "--bytes", "10X", "--messages", "7",
                       expect=EXIT_INVALID)
        self.assertIn("invalid quota size", r.stderr)
        q = self.admin_json("account", "quota", "alice")
        self.assertEqual((q["quota_bytes"], q["quota_messages"]), (2 << 30, 0))

        # aliases
        r = self.admin_json("account", "alias", "add", "alice", "ali@example.org")
        self.assertIn("ali@example.org", r["aliases"])
        r = self.admin("account", "alias", "add", "bob", "ali@example.org", expect=EXIT_CONFLICT)
        self.assertIn("alice", r.stderr)
        self.admin("account", "alias", "add", "bob", "alice@example.org", expect=EXIT_CONFLICT)
        self.admin("account", "alias", "add", "bob", "not an address", expect=EXIT_INVALID)
        r = self.admin_json("account", "alias", "remove", "alice", "ALI@example.org")
        self.assertNotIn("ali@example.org", r["aliases"])
        self.admin("account", "alias", "remove", "alice", "ali@example.org", expect=EXIT_NOT_FOUND)
        self.admin("account", "alias", "remove", "alice", "alice@example.org",
                   expect=EXIT_REFUSED)
        self.assertIn("mailLocalAddress: alice@example.org", self.account_entry("alice"))

        # lock / unlock / set-state
        self.assertEqual(self.admin_json("account", "lock", "alice")["state"], "locked")
        self.assertIn("hamailAccountState: locked", self.account_entry("alice"))
        self.assertEqual(self.admin_json("account", "unlock", "alice")["state"], "active")
        self.admin("account", "set-state", "alice", "frozen", expect=EXIT_INVALID)
        self.assertEqual(self.admin_json("account", "set-state", "bob", "disabled")["state"],
                         "disabled")
        self.admin("account", "unlock", "bob", expect=EXIT_REFUSED)
        self.admin("account", "set-state", "bob", "active")

        # move: a data move needs both stores' sync listeners (these stores have no sync
        # port); it is refused before anything is written. (The data move itself:
        # test_account_move.py.)
        self.admin("account", "lock", "alice")
        before = self.account_entry("alice")
        r = self.admin("account", "move", "alice", "--to", "ac-b", expect=EXIT_REFUSED)
        self.assertIn("has no sync port", r.stderr)
        self.assertIn("store set-sync-port", r.stderr)
        self.assertEqual(self.account_entry("alice"), before)
        err = self.admin_json("account", "move", "alice", "--to", "ac-b", expect=EXIT_REFUSED)
        self.assertIn("no sync port", err["error"]["message"])
        self.admin("account", "move", "alice", expect=EXIT_USAGE)
        self.admin("account", "move", "alice", "--resume", expect=EXIT_REFUSED)
        self.admin("account", "move", "alice", "--abort", expect=EXIT_REFUSED)
        self.admin("account", "move", "alice", "--to", "ac-b", "--grace", "soon",
                   expect=EXIT_INVALID)
        self.admin("account", "move", "alice", "--to", "ac-b", "--lock-lease", "0",
                   expect=EXIT_INVALID)
        # --placement-only records the placement and says the mail was not copied.
        r = self.admin("account", "move", "alice", "--to", "ac-b", "--placement-only")
        self.assertIn("no mail was copied", r.stdout)
        self.admin("account", "move", "alice", "--to", "ac-a", "--placement-only")
        m = self.admin_json("account", "move", "alice", "--to", "ac-b", "--placement-only")
        self.assertEqual((m["from"], m["to"], m["state"], m["moved"], m["data_moved"]),
                         ("ac-a", "ac-b", "locked", True, False))
        entry = self.account_entry("alice")
        self.assertIn("hamailOwningStore: ac-b", entry)
        self.assertIn("mailHost: ac-b.mail.example.org", entry)
        self.assertIn("hamailAccountState: locked", entry)
        self.assertFalse(self.admin_json("account", "move", "alice", "--to", "ac-b")["moved"])
        self.admin("account", "move", "alice", "--to", "nosuch", "--placement-only",
                   expect=EXIT_NOT_FOUND)
        self.admin("account", "move", "alice", "--to", "ac-closed", "--placement-only",
                   expect=EXIT_REFUSED)
        self.admin("account", "set-state", "alice", "moving")
        self.admin("account", "lock", "alice", expect=EXIT_REFUSED)
        self.admin("account", "move", "alice", "--to", "ac-a", "--placement-only",
                   expect=EXIT_REFUSED)
        self.admin("account", "set-state", "alice", "active")
        help_text = self.admin("account", "move", "--help").stdout
        for option in ("--placement-only", "--resume", "--abort", "--grace", "--rate"):
            self.assertIn(option, help_text)

        # remove
        self.assertEqual(self.admin_json("account", "remove", "bob")["removed"], "bob")
        self.admin("account", "show", "bob", expect=EXIT_NOT_FOUND)
        self.admin("account", "remove", "bob", expect=EXIT_NOT_FOUND)

    def test_add_rejects_bad_input_and_writes_nothing(self):
        self.admin("account", "add", "carol", "--address", "carol@example.org", "--store", "ac-a")
        cases = [
            (["dave", "--address", "dave@example.org", "--store", "nosuch"], EXIT_NOT_FOUND,
             "unknown store"),
            (["dave", "--address", "carol@example.org"], EXIT_CONFLICT, "in use already"),
            (["dave", "--address", "dave@example.org", "--alias", "CAROL@example.org"],
             EXIT_CONFLICT, "in use already"),
            (["dave", "--address", "dave@example.org", "--quota-bytes", "10X"], EXIT_INVALID,
             "invalid quota size"),
            (["dave", "--address", "dave@example.org", "--quota-messages", "many"], EXIT_INVALID,
             "invalid message quota"),
            (["dave", "--address", "dave@@example.org"], EXIT_INVALID, "invalid address"),
            (["dave", "--address", "dave@example..org"], EXIT_INVALID, "invalid address"),
            (["dave", "--address", "dave@example.org", "--alias", "dave@example.org"],
             EXIT_INVALID, "given twice"),
            (["Dave*", "--address", "dave@example.org"], EXIT_INVALID, "invalid account id"),
            (["dave", "--address", "dave@example.org", "--store", "Bad Store"], EXIT_INVALID,
             "invalid store name"),
            (["dave", "--address", "dave@example.org", "--store", "ac-closed"], EXIT_REFUSED,
             "takes no new accounts"),
            (["dave", "--address", "dave@example.org", "--scheme", "ROT13"], EXIT_INVALID,
             "unknown password scheme"),
            (["carol", "--address", "carol2@example.org"], EXIT_CONFLICT, "exists already"),
        ]
        for args, code, message in cases:
            r = self.admin("account", "add", *args, expect=code)
            self.assertIn(message, r.stderr, args)
        self.admin("account", "add", "--address", "dave@example.org", expect=EXIT_USAGE)
        self.admin("account", "add", "dave", expect=EXIT_USAGE)
        self.admin("account", "show", "dave", expect=EXIT_NOT_FOUND)
        self.assertEqual(self.ldapsearch(SUFFIX, "(mail=dave@example.org)", "dn").strip(), "")
        # A filter metacharacter in an address is escaped, not interpreted.
        self.admin("account", "add", "star", "--address", "st*r@example.org", "--store", "ac-a")
        self.admin("account", "add", "star2", "--address", "s*@example.org", "--store", "ac-a")
        self.admin("account", "add", "star3", "--address", "st*r@example.org",
                   expect=EXIT_CONFLICT)

    def test_no_open_store_is_refused(self):
        self.admin("store", "set-state", "ac-a", "closed")
        self.admin("store", "set-weight", "ac-b", "0")
        try:
            r = self.admin("account", "add", "erin", "--address", "erin@example.org",
                           expect=EXIT_REFUSED)
            self.assertIn("no store takes new accounts", r.stderr)
            self.admin("account", "show", "erin", expect=EXIT_NOT_FOUND)
        finally:
            self.admin("store", "set-state", "ac-a", "open")
            self.admin("store", "set-weight", "ac-b", "1")


class Placement(AdminTestCase):
    def test_thousand_accounts_spread_by_weight(self):
        weights = {"pl-one": 1, "pl-two": 2, "pl-three": 3}
        for name, w in weights.items():
            self.admin("store", "add", name, "--host", name + ".mail.example.org",
                       "--weight", str(w))
        self.admin("store", "add", "pl-drain", "--host", "d.mail.example.org", "--weight", "50",
                   "--state", "draining")
        batch = self.write("batch.txt", "# id address aliases\n" + "".join(
            "user%04d user%04d@example.org alias%04d@example.org\n" % (i, i, i)
            for i in range(1000)))
        started = time.monotonic()
        out = self.admin_json("account", "add", "--batch", batch, "--quota-bytes", "1G")
        elapsed = time.monotonic() - started
        self.assertEqual(out["added"], 1000)
        total = sum(weights.values())
        counts = {}
        for name in list(weights) + ["pl-drain"]:
            counts[name] = len(self.admin_json("account", "list", "--store", name)["accounts"])
        self.assertEqual(counts["pl-drain"], 0)
        self.assertEqual(sum(counts.values()), 1000)
        for name, w in weights.items():
            self.assertLessEqual(abs(counts[name] / 1000 - w / total), 0.02, counts)
            self.assertEqual(dict(out["per_store"])[name], counts[name])

        report = self.admin_json("placement", "report")
        rows = {r["name"]: r for r in report["stores"]}
        self.assertEqual(report["total_accounts"], 1000)
        self.assertLess(report["imbalance"], 0.02)
        self.assertIsNone(report["bytes"])
        self.assertEqual(report["bytes_note"], "n/a (reported by stores)")
        self.assertFalse(rows["pl-drain"]["eligible"])
        self.assertAlmostEqual(rows["pl-three"]["weight_share"], 0.5, places=6)
        self.assertEqual(rows["pl-two"]["accounts"], counts["pl-two"])
        text = self.admin("placement", "report").stdout
        self.assertIn("bytes: n/a (reported by stores)", text)
        self.assertIn("imbalance:", text)

        # Single adds follow the same rule: the store minimising (accounts+1)/weight.
        for i in range(6):
            expected = min(weights, key=lambda n: ((counts[n] + 1) / weights[n], n))
            r = self.admin_json("account", "add", "single%d" % i, "--address",
                                "single%d@example.org" % i)
            self.assertEqual((r["added"]["store"], r["placed_by"]), (expected, "policy"))
            counts[expected] += 1

        # A batch that clashes with the directory or repeats itself writes nothing.
        clash = self.write("clash.txt", "newone newone@example.org\nuser0001 x@example.org\n")
        r = self.admin("account", "add", "--batch", clash, expect=EXIT_CONFLICT)
        self.assertIn("nothing added", r.stderr)
        self.admin("account", "show", "newone", expect=EXIT_NOT_FOUND)
        dup = self.write("dup.txt", "new1 same@example.org\nnew2 same@example.org\nbad addr\n")
        r = self.admin("account", "add", "--batch", dup, expect=EXIT_INVALID)
        self.assertIn("appears twice", r.stderr)
        self.assertIn("invalid address", r.stderr)
        self.admin("account", "show", "new1", expect=EXIT_NOT_FOUND)
        self.admin("account", "add", "x", "--batch", dup, expect=EXIT_USAGE)
        print("\n1,000-account batch took %.1f s; counts %s" % (elapsed, counts))


class BulkMoves(AdminTestCase):
    """store drain and placement rebalance: their plans (--dry-run) and their refusals. The
    moves themselves (sync listeners on real stores): test_account_move.py."""

    def test_drain_and_rebalance_plans(self):
        for name, weight, state in (("bm-a", 1, "open"), ("bm-b", 1, "open"),
                                    ("bm-c", 2, "open"), ("bm-closed", 5, "closed"),
                                    ("bm-empty", 1, "open")):
            self.admin("store", "add", name, "--host", name + ".mail.example.org", "--weight",
                       str(weight), "--state", state)
        batch = self.write("bm.txt", "".join("bm%02d bm%02d@example.org\n" % (i, i)
                                             for i in range(12)))
        self.admin("account", "add", "--batch", batch, "--store", "bm-a")
        before = self.ldapsearch("ou=accounts," + SUFFIX, "(objectClass=hamailAccount)",
                                 "hamailOwningStore")

        # Rebalance to exact shares over the open stores (weights 1:1:2:1): bm-a keeps 2 or 3,
        # bm-c gets twice what bm-b and bm-empty get; the closed store gets nothing.
        plan = self.admin_json("placement", "rebalance", "--dry-run", "--tolerance", "0%")
        self.assertTrue(plan["dry_run"])
        to = {}
        for m in plan["plan"]:
            self.assertEqual("bm-a", m["from"])
            to[m["to"]] = to.get(m["to"], 0) + 1
        self.assertNotIn("bm-closed", to)
        # Afterwards every open store is less than one account from its exact share of 12.
        after = {"bm-a": 12 - len(plan["plan"]), "bm-b": to.get("bm-b", 0),
                 "bm-c": to.get("bm-c", 0), "bm-empty": to.get("bm-empty", 0)}
        for name, weight in (("bm-a", 1), ("bm-b", 1), ("bm-c", 2), ("bm-empty", 1)):
            self.assertLess(abs(after[name] - 12 * weight / 5), 1, (name, after, plan))
        # Within 20 %: fewer moves.
        loose = self.admin_json("placement", "rebalance", "--dry-run", "--tolerance", "20%")
        self.assertLess(len(loose["plan"]), len(plan["plan"]))

        # Drain: every account of bm-a, by weight over bm-b, bm-c and bm-empty (1:2:1).
        drain = self.admin_json("store", "drain", "bm-a", "--dry-run")
        self.assertEqual(12, len(drain["plan"]))
        to = {}
        for m in drain["plan"]:
            to[m["to"]] = to.get(m["to"], 0) + 1
        self.assertEqual({"bm-b": 3, "bm-c": 6, "bm-empty": 3}, to)
        text = self.admin("store", "drain", "bm-a", "--dry-run").stdout
        self.assertIn("12 moves planned (--dry-run: nothing moved)", text)
        # A dry run writes nothing: placement and the store's state are unchanged.
        self.assertEqual(before, self.ldapsearch("ou=accounts," + SUFFIX,
                                                 "(objectClass=hamailAccount)",
                                                 "hamailOwningStore"))
        self.assertEqual("open", self.admin_json("store", "show", "bm-a")["store"]["state"])

        # Draining an empty store marks it draining and moves nothing.
        out = self.admin_json("store", "drain", "bm-empty")
        self.assertEqual((0, []), (out["moved"], out["failed"]))
        self.assertEqual("draining", self.admin_json("store", "show", "bm-empty")["store"]["state"])

        # Bad input.
        self.admin("store", "drain", "bm-nosuch", "--dry-run", expect=EXIT_NOT_FOUND)
        self.admin("store", "drain", "bm-a", "--concurrency", "0", expect=EXIT_INVALID)
        self.admin("store", "drain", "bm-a", "--rate", "fast", expect=EXIT_INVALID)
        self.admin("placement", "rebalance", "--tolerance", "200%", expect=EXIT_INVALID)
        self.admin("placement", "rebalance", "--max-moves", "0", expect=EXIT_INVALID)
        # Without sync listeners the real drain refuses every move (and says so), but the
        # plan ran: exit 4, the accounts still on bm-a.
        r = self.admin("store", "drain", "bm-a", "--concurrency", "3", expect=EXIT_REFUSED)
        self.assertIn("has no sync port", r.stdout)
        self.assertIn("12 moves planned, 0 done, 12 failed", r.stdout)
        self.assertIn("12 of 12 moves failed", r.stderr)
        # --json still prints the result, with every failed move and why.
        out = self.admin_json("store", "drain", "bm-a", expect=EXIT_REFUSED)
        self.assertEqual(0, out["moved"])
        self.assertEqual(12, len(out["failed"]))
        self.assertTrue(all("has no sync port" in f["error"] for f in out["failed"]), out)
        self.assertEqual(before, self.ldapsearch("ou=accounts," + SUFFIX,
                                                 "(objectClass=hamailAccount)",
                                                 "hamailOwningStore"))


class SettingsAndErrors(AdminTestCase):
    def test_precedence_flags_over_env_over_file(self):
        good = self.slapd.uri
        dead = "ldap://127.0.0.1:%d" % free_port()
        cfg = self.write("admin.toml",
                         '[ldap]\nuris = ["%s"]\nbase_dn = "dc=wrong,dc=org"\nbind_dn = "%s"\n'
                         'bind_secret_file = "%s"\ntimeout = "5s"\n'
                         % (dead, ROOT_DN, self.secret))
        bare = {k: v for k, v in os.environ.items() if not k.startswith("HAMAIL_LDAP_")}
        run = lambda args, env: subprocess.run([ADMIN, "--config", cfg] + args, env=env,
                                               capture_output=True, text=True)
        # File alone: its URI is dead.
        self.assertEqual(run(["store", "list"], bare).returncode, EXIT_UNREACHABLE)
        # The environment beats the file; the file's wrong base DN finds nothing.
        env = dict(bare, HAMAIL_LDAP_URI=good)
        r = run(["store", "list", "--json"], env)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout)["stores"], [])
        # Flags beat the environment.
        r = run(["store", "add", "pr-one", "--host", "pr.example.org", "--base-dn", SUFFIX], env)
        self.assertEqual(r.returncode, 0, r.stderr)
        r = run(["store", "show", "pr-one", "--base-dn", SUFFIX, "--uri", dead], env)
        self.assertEqual(r.returncode, EXIT_UNREACHABLE)
        # Failover: the first URI is dead, the second answers.
        r = run(["store", "show", "pr-one", "--base-dn", SUFFIX, "--uri", dead, "--uri", good],
                env)
        self.assertEqual(r.returncode, 0, r.stderr)
        # Bad secret, missing config file, malformed config, unknown key.
        wrong = self.write("wrong.secret", "nope\n")
        r = run(["store", "list", "--uri", good, "--bind-secret-file", wrong], env)
        self.assertEqual(r.returncode, EXIT_LDAP, r.stderr)
        r = subprocess.run([ADMIN, "--config", os.path.join(self.tmp, "missing.toml"), "store",
                            "list"], env=self.env, capture_output=True, text=True)
        self.assertEqual(r.returncode, EXIT_CONFIG)
        bad = self.write("bad.toml", '[ldap]\nuris = ["%s"]\nbase_dn = "%s"\ntimout = "5s"\n'
                         % (good, SUFFIX))
        r = subprocess.run([ADMIN, "--config", bad, "store", "list"], env=bare,
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, EXIT_CONFIG)
        self.assertIn("bad.toml:4", r.stderr)
        # The secret never comes from a flag value or the environment.
        r = subprocess.run([ADMIN, "--config", cfg, "store", "list", "--bind-password", "x"],
                           env=env, capture_output=True, text=True)
        self.assertEqual(r.returncode, EXIT_USAGE)

    def test_help_everywhere_and_usage_errors(self):
        commands = [[], ["store"], ["store", "add"], ["store", "list"], ["store", "show"],
                    ["store", "set-state"], ["store", "set-weight"], ["store", "remove"],
                    ["account"], ["account", "add"], ["account", "remove"], ["account", "show"],
                    ["account", "list"], ["account", "passwd"], ["account", "quota"],
                    ["account", "alias"], ["account", "alias", "add"],
                    ["account", "alias", "remove"], ["account", "lock"], ["account", "unlock"],
                    ["account", "set-state"], ["account", "move"], ["placement"],
                    ["placement", "report"]]
        for c in commands:
            r = subprocess.run([ADMIN] + c + ["--help"], capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, c)
            self.assertIn("Usage", r.stdout, c)
        self.admin("store", "frobnicate", expect=EXIT_USAGE)
        self.admin("store", "add", "x", expect=EXIT_USAGE)
        self.admin(expect=EXIT_USAGE)
        self.admin("store", "list", "--uri", "http://example.org/", expect=EXIT_INVALID)


if __name__ == "__main__":
    unittest.main()
