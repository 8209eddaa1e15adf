"""Faults during an account move (issue 15): hamail-admin, the source store and the destination
store killed at each phase of a move. hamail-admin stops itself at a named point
(HAMAIL_ADMIN_TEST_STOP_AT, see daemons/admin/src/move_commands.cpp), the test kills what the
scenario names there, and then the move is resumed (or aborted, or left to the lock's lease).
Afterwards: the account is on exactly one store, with every message it had (same UIDs, flags,
dates, sizes, modseqs), and the other store has no copy of it.

A SIGKILL keeps the page cache, so these tests prove the protocol's order of steps, not the
durability of the copy (that needs a power cut: tests/powercut)."""

import os
import signal
import subprocess
import time
import unittest

from hamail_harness import ADMIN
from move_cluster import MoveCluster, mailbox_state

MESSAGES = int(os.environ.get("HAMAIL_MOVE_FAULT_MESSAGES", "1500"))
ACCOUNTS = ["f-admin-copied", "f-admin-locked", "f-admin-pulled", "f-admin-switched",
            "f-lease", "f-source-copied", "f-source-locked", "f-dest-locked", "f-dest-pulled"]


class account_move_fault_test(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.cluster = MoveCluster({a: ("fault-secret", "store-a") for a in ACCOUNTS}).start()

    @classmethod
    def tearDownClass(cls):
        cls.cluster.stop()

    # -- helpers ----------------------------------------------------------------------------

    def prepare(self, account):
        self.cluster.fill(account, MESSAGES, folders=False)
        m = self.cluster.client(account)
        state = mailbox_state(m, "INBOX")
        m.logout()
        return state

    def start_move(self, account, stop_at, *extra):
        """hamail-admin moving `account` to store-b, stopped (SIGSTOP) at `stop_at`."""
        c = self.cluster
        env = dict(c.directory.env, HAMAIL_ADMIN_TEST_STOP_AT=stop_at)
        p = subprocess.Popen([ADMIN, "--config", c.directory.admin_config, "account", "move",
                              account, "--to", "store-b", "--grace", "0", "--json", *extra],
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             start_new_session=True)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            with open("/proc/%d/stat" % p.pid) as f:
                if f.read().split(") ", 1)[1].startswith("T"):
                    return p
            if p.poll() is not None:
                self.fail("hamail-admin ended before %s: %s %s" % (stop_at, *p.communicate()))
            time.sleep(0.05)
        p.kill()
        self.fail("hamail-admin never reached %s: %s %s" % (stop_at, *p.communicate()))

    def resume(self, account, expect=0):
        rc, out = self.cluster.move_resume(account)
        self.assertEqual(expect, rc, out)
        return out

    def check_on(self, account, store, before):
        """The account is on `store` only, with every message it had before the move."""
        c = self.cluster
        self.assertEqual((store, None), c.owning_store(account))
        other = "store-a" if store == "store-b" else "store-b"
        self.assertIsNone(c.backends[other].maildir(account), "a copy left on " + other)
        m = c.client(account)
        uv, un, hm, msgs = mailbox_state(m, "INBOX")
        m.logout()
        self.assertEqual(before[0], uv)
        self.assertGreaterEqual(hm, before[2])
        for uid, info in before[3].items():
            self.assertEqual(info, msgs.get(uid), "UID %d" % uid)
        self.assertEqual(len(before[3]), len(msgs), "no message lost or added")

    # -- hamail-admin dies ------------------------------------------------------------------

    def admin_killed_then_resumed(self, account, stop_at):
        before = self.prepare(account)
        p = self.start_move(account, stop_at)
        p.kill()
        p.communicate()
        self.resume(account)
        self.check_on(account, "store-b", before)

    def test_admin_killed_after_the_copy(self):
        self.admin_killed_then_resumed("f-admin-copied", "copied")

    def test_admin_killed_with_the_source_locked(self):
        self.admin_killed_then_resumed("f-admin-locked", "locked")

    def test_admin_killed_after_the_final_pass(self):
        self.admin_killed_then_resumed("f-admin-pulled", "pulled")

    def test_admin_killed_after_the_switch(self):
        self.admin_killed_then_resumed("f-admin-switched", "switched")

    def test_abandoned_lock_gives_the_account_back_after_its_lease(self):
        account = "f-lease"
        before = self.prepare(account)
        p = self.start_move(account, "locked", "--lock-lease", "3s")
        p.kill()
        p.communicate()
        # Locked now: a login waits in the proxy; after the lease the source takes the account
        # back by itself (the directory still names it), and the login succeeds there.
        started = time.monotonic()
        m = self.cluster.client(account)
        m.logout()
        waited = time.monotonic() - started
        self.assertLess(waited, 15, "the proxy's retry window")
        self.assertEqual(("store-a", "final store-a store-b"),
                         (self.cluster.owning_store(account)[0],
                          " ".join(self.cluster.owning_store(account)[1].split()[:3])))
        # --abort: the journal goes, the destination's copy too.
        rc, out = self.cluster.move_abort(account)
        self.assertEqual(0, rc, out)
        self.check_on(account, "store-a", before)

    # -- a store dies -----------------------------------------------------------------------

    def store_killed(self, account, stop_at, store):
        c = self.cluster
        before = self.prepare(account)
        p = self.start_move(account, stop_at)
        c.backends[store].kill()
        os.kill(p.pid, signal.SIGCONT)
        out, err = p.communicate(timeout=120)
        self.assertNotEqual(0, p.returncode, "the move cannot finish without " + store)
        c.backends[store].start()
        self.resume(account)
        self.check_on(account, "store-b", before)

    def test_source_killed_after_the_copy(self):
        self.store_killed("f-source-copied", "copied", "store-a")

    def test_source_killed_with_the_account_locked(self):
        self.store_killed("f-source-locked", "locked", "store-a")

    def test_destination_killed_before_the_final_pass(self):
        self.store_killed("f-dest-locked", "locked", "store-b")

    def test_destination_killed_after_the_final_pass(self):
        # The copy is installed and the switch needs only the directory: the move completes
        # while store-b is down, and the account is served there once it is back.
        c = self.cluster
        account = "f-dest-pulled"
        before = self.prepare(account)
        p = self.start_move(account, "pulled")
        c.backends["store-b"].kill()
        os.kill(p.pid, signal.SIGCONT)
        p.communicate(timeout=120)
        c.backends["store-b"].start()
        if p.returncode != 0:
            self.resume(account)
        self.check_on(account, "store-b", before)


if __name__ == "__main__":
    unittest.main()
