"""cluster_failover: hard-crash the node running a store while clients deliver mail to both
stores' floating IPs, measure how long until that store accepts mail again on the same address,
and check that every message that got its 250 is on the store, complete. Then a planned move
(crm node standby) with no message lost and no permanent (5xx) error.

The cluster configuration is crm-config/hamail-cluster-config's lab output
(`crm --lab crm-config/layouts/lab.toml`), loaded with `crm configure load update`.

Environment: HAMAIL_BACKEND, HAMAIL_OCF_BACKEND or HAMAIL_BUILD_DIR (CTest sets them);
HAMAIL_LAB_CYCLES (default 4 crash cycles; cluster_stack measures more faults through the
whole stack); HAMAIL_KEEP_TEST_DIRS=1 keeps the lab's directory
(logs) after the run.
"""

import itertools
import os
import random
import re
import signal
import socket
import statistics
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lab as L  # noqa: E402
from labcase import LabCase  # noqa: E402

CYCLES = int(os.environ.get("HAMAIL_LAB_CYCLES", "4"))
MID_DATA_CYCLES = {1, 3}          # crashes while a client is in the middle of DATA
RECOVERY_TIMEOUT = 120
LAB_ID = re.compile(rb"X-Lab-Id: (\S+)\r\n")


class Reply(Exception):
    def __init__(self, code, text):
        super().__init__("%d %s" % (code, text))
        self.code = code


class Session:
    """A minimal SMTP/LMTP client over a socket, reporting every reply code."""

    def __init__(self, ip, port, lmtp, timeout):
        self.lmtp = lmtp
        self.s = socket.create_connection((ip, port), timeout=timeout)
        self.f = self.s.makefile("rb")

    def reply(self):
        text = []
        while True:
            line = self.f.readline()
            if not line:
                raise EOFError("connection closed")
            text.append(line[4:].strip().decode(errors="replace"))
            if line[3:4] != b"-":
                return int(line[:3]), " ".join(text)

    def hello(self):
        code, text = self.reply()
        if code != 220:
            raise Reply(code, text)
        self.s.sendall(b"LHLO lab.test\r\n" if self.lmtp else b"EHLO lab.test\r\n")
        code, text = self.reply()
        if code != 250:
            raise Reply(code, text)

    def envelope(self, rcpt):
        self.s.sendall(b"MAIL FROM:<lab@remote.test>\r\nRCPT TO:<%s>\r\nDATA\r\n" % rcpt.encode())
        for want in (250, 250, 354):
            code, text = self.reply()
            if code != want:
                raise Reply(code, text)

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass


_ids = itertools.count(1)


class Mail:
    """Delivery bookkeeping shared by every client: what got 250, what got a 5xx."""

    def __init__(self):
        self.lock = threading.Lock()
        self.acked = {}       # id -> (store, account, body)
        self.attempted = 0
        self.permanent = []   # (store, id, code, text)
        self.temporary = 0
        self.last_ack = {}    # store -> monotonic time of its last 250

    def new_message(self, store, account):
        with self.lock:
            mid = "m%06d-%s" % (next(_ids), store)  # unique in the whole run
            self.attempted += 1
        rng = random.Random(mid)
        lines = ["%s line %d %08x" % (mid, i, rng.getrandbits(32)) for i in range(rng.randint(3, 120))]
        body = ("From: lab@remote.test\r\nTo: %s@%s\r\nSubject: %s\r\nMessage-ID: <%s@lab.test>\r\n"
                "X-Lab-Id: %s\r\n\r\n" % (account, L.DOMAIN, mid, mid, mid) + "\r\n".join(lines) + "\r\n")
        return mid, body.encode()

    def record(self, store, mid, account, body, code, text):
        with self.lock:
            if code == 250:
                self.acked[mid] = (store, account, body)
                self.last_ack[store] = time.monotonic()
            elif code >= 500:
                self.permanent.append((store, mid, code, text))
            else:
                self.temporary += 1


def deliver_one(mail, store, ip, account, lmtp, timeout):
    """One message over a fresh connection; returns True when it got its 250."""
    mid, body = mail.new_message(store["name"], account)
    sess = None
    try:
        sess = Session(ip, L.STORE_PORTS["lmtp" if lmtp else "smtp"], lmtp, timeout)
        sess.hello()
        sess.envelope("%s@%s" % (account, L.DOMAIN))
        sess.s.sendall(body + b".\r\n")
        code, text = sess.reply()
        mail.record(store["name"], mid, account, body, code, text)
        sess.s.sendall(b"QUIT\r\n")
        return code == 250
    except Reply as r:
        mail.record(store["name"], mid, account, body, r.code, str(r))
        return False
    except (OSError, EOFError, ValueError):
        return False
    finally:
        if sess:
            sess.close()


class Client(threading.Thread):
    """Delivers continuously to one store, several messages per connection, reconnecting after
    any failure (4xx, refused, reset, timeout) and never retrying a message (each attempt has its
    own id, so a message whose 250 was lost in a crash is simply not counted)."""

    def __init__(self, mail, store, lmtp, stop):
        super().__init__(daemon=True)
        self.mail, self.store, self.lmtp, self.stop = mail, store, lmtp, stop

    def run(self):
        rng = random.Random(self.store["name"] + str(self.lmtp))
        port = L.STORE_PORTS["lmtp" if self.lmtp else "smtp"]
        while not self.stop.is_set():
            sess = None
            try:
                sess = Session(self.store["ip"], port, self.lmtp, timeout=3)
                sess.hello()
                while not self.stop.is_set():
                    account = rng.choice(self.store["accounts"])
                    mid, body = self.mail.new_message(self.store["name"], account)
                    try:
                        sess.envelope("%s@%s" % (account, L.DOMAIN))
                    except Reply as r:
                        self.mail.record(self.store["name"], mid, account, body, r.code, str(r))
                        raise
                    sess.s.sendall(body + b".\r\n")
                    code, text = sess.reply()
                    self.mail.record(self.store["name"], mid, account, body, code, text)
                    if code != 250:
                        break
                    time.sleep(0.02)
            except (Reply, OSError, EOFError, ValueError):
                time.sleep(0.1)
            finally:
                if sess:
                    sess.close()


class MidData(threading.Thread):
    """Starts a message, sends half its body, signals, waits for the crash, then sends the rest:
    that message must never get a 250 (the node that had it is gone)."""

    def __init__(self, mail, store):
        super().__init__(daemon=True)
        self.mail, self.store = mail, store
        self.in_data = threading.Event()
        self.crashed = threading.Event()
        self.outcome = None
        self.mid = None

    def run(self):
        account = self.store["accounts"][0]
        self.mid, body = self.mail.new_message(self.store["name"], account)
        try:
            sess = Session(self.store["ip"], L.STORE_PORTS["smtp"], False, timeout=5)
            sess.hello()
            sess.envelope("%s@%s" % (account, L.DOMAIN))
            half = len(body) // 2
            sess.s.sendall(body[:half])
        except (Reply, OSError, EOFError) as e:
            self.outcome = "could not start: %s" % e
            self.in_data.set()
            return
        self.in_data.set()
        self.crashed.wait(60)
        try:
            sess.s.settimeout(20)
            sess.s.sendall(body[half:] + b".\r\n")
            code, text = sess.reply()
            self.mail.record(self.store["name"], self.mid, account, body, code, text)
            self.outcome = "reply %d %s" % (code, text)
        except (OSError, EOFError, ValueError) as e:
            self.outcome = "no reply (%s)" % e.__class__.__name__
        finally:
            sess.close()


def stored_messages(lab, store):
    """{lab id: [file contents]} of every message file on the store's volume, read through the
    mount namespace of the node that has it mounted (/proc/<pid>/root)."""
    nodes = lab.where(store["name"] + "-fs")
    if not nodes:
        raise AssertionError("%s's filesystem is mounted nowhere" % store["name"])
    node = lab.nodes[nodes[0]]
    base = node.path(store["data_dir"] + "/accounts")
    found = {}
    for h2 in os.listdir(base):
        for account in os.listdir(os.path.join(base, h2)):
            for sub in ("new", "cur"):
                d = os.path.join(base, h2, account, sub)
                if not os.path.isdir(d):
                    continue
                for name in os.listdir(d):
                    with open(os.path.join(d, name), "rb") as f:
                        data = f.read()
                    m = LAB_ID.search(data)
                    if m:
                        found.setdefault(m.group(1).decode(), []).append((account, data, sub + "/" + name))
    return found


@unittest.skipIf(L.unavailable_reason(), "cluster lab unavailable: %s" % L.unavailable_reason())
class cluster_failover_test(LabCase):
    def setUp(self):
        super().setUp()
        for store in self.lab.stores:
            self.wait_store(store, time.monotonic(), 120)
        self.lab.settle(60)
        print("lab up and both stores accepting mail after %.1f s"
              % (time.monotonic() - self.lab_started), flush=True)

    def wait_store(self, store, t0, timeout, mail=None):
        """Seconds from t0 until the store answers a delivery with 250 on its address.
        A new probe starts every 0.1 s, each on its own connection: a single sequential probe
        would add up to a second of SYN retransmission to the measurement."""
        if mail is None:
            mail = getattr(self, "mail", None) or Mail()
        deadline = t0 + timeout
        done = threading.Event()
        first = []
        lock = threading.Lock()

        def probe():
            if deliver_one(mail, store, store["ip"], store["accounts"][1], False, timeout=2.0):
                with lock:
                    first.append(time.monotonic())
                done.set()

        probes = []
        while not done.is_set() and time.monotonic() < deadline:
            probes = [p for p in probes if p.is_alive()]
            if len(probes) < 25:
                p = threading.Thread(target=probe, daemon=True)
                p.start()
                probes.append(p)
            done.wait(0.1)
        for p in probes:
            p.join(5)
        if first:
            return min(first) - t0
        raise AssertionError("%s did not accept mail within %d s:\n%s"
                             % (store["name"], timeout, self.lab.any_node().exec("crm_mon", "-1", "-r", check=False).stdout))

    def test_failover(self):
        lab = self.lab
        self.mail = mail = Mail()
        stop = threading.Event()
        clients = [Client(mail, s, lmtp, stop) for s in lab.stores for lmtp in (False, True)]
        for c in clients:
            c.start()
        started = time.monotonic()
        cycles = []
        mid_data = []
        try:
            time.sleep(2)
            for i in range(CYCLES):
                store = lab.stores[i % len(lab.stores)]
                victim = self.running_on(store)
                # Every store on the victim fails over together.
                affected = [s for s in lab.stores if lab.where(s["name"] + "-mail") == [victim]]
                md = None
                if i in MID_DATA_CYCLES:
                    md = MidData(mail, store)
                    md.start()
                    self.assertTrue(md.in_data.wait(20), "mid-DATA client did not start")
                    self.assertIsNone(md.outcome, md.outcome)
                wall = time.time()
                t0 = time.monotonic()
                lab.nodes[victim].crash()
                if md:
                    md.crashed.set()
                times = {}
                for s in affected:
                    times[s["name"]] = self.wait_store(s, t0, RECOVERY_TIMEOUT)
                new = {s["name"]: self.running_on(s) for s in affected}
                if md:
                    md.join(60)
                    mid_data.append((md.mid, md.outcome))
                    self.assertNotIn(md.mid, mail.acked, "a message cut by the crash got a 250")
                t_fenced = self.wait_fenced(victim, wall - 1) - wall
                lab.nodes[victim].power_on()
                lab.save_state()
                lab.wait_online(timeout=120)
                lab.settle(60)
                t_back = time.monotonic() - t0
                for s, t in times.items():
                    cycles.append(t)
                print("cycle %2d: crashed %s%s; %s; fenced at %.1f s; node back in the cluster "
                      "after %.1f s" % (i + 1, victim, " (mid-DATA)" if md else "",
                                        ", ".join("%s back on %s after %.2f s" % (n, new[n], t)
                                                  for n, t in times.items()),
                                        t_fenced, t_back), flush=True)
            # Planned move: standby the node running store-a.
            store = lab.stores[0]
            node = self.running_on(store)
            before_perm = len(mail.permanent)
            t0 = time.monotonic()
            lab.crm("node", "standby", node)
            deadline = t0 + RECOVERY_TIMEOUT
            while time.monotonic() < deadline:
                where = lab.where(store["name"] + "-mail")
                if where and where != [node]:
                    break
                time.sleep(0.1)
            t_move = self.wait_store(store, t0, RECOVERY_TIMEOUT)
            moved_to = self.running_on(store)
            lab.crm("node", "online", node)
            lab.settle(60)
            print("planned move: %s from %s to %s (standby), accepting again after %.2f s"
                  % (store["name"], node, moved_to, t_move), flush=True)
            self.assertNotEqual(node, moved_to)
            self.assertEqual([], mail.permanent[before_perm:], "5xx during the planned move")
            time.sleep(2)
        finally:
            stop.set()
            for c in clients:
                c.join(30)
        elapsed = time.monotonic() - started

        # Every acknowledged message is on its store, complete (byte for byte after the
        # headers the store prepends).
        lost, incomplete, duplicates, stored_total = [], [], 0, 0
        stored_ids = {}
        for s in lab.stores:
            found = stored_messages(lab, s)
            stored_ids[s["name"]] = set(found)
            stored_total += sum(len(v) for v in found.values())
            for mid, (store, account, body) in mail.acked.items():
                if store != s["name"]:
                    continue
                copies = found.get(mid, [])
                if not copies:
                    lost.append(mid)
                elif not any(data.endswith(body) and acct == account for acct, data, _ in copies):
                    incomplete.append(mid)
            for mid, copies in found.items():
                if len(copies) > 1:
                    duplicates += len(copies) - 1
                    print("duplicate: %s (%s) stored %d times: %s" % (
                        mid, "acknowledged" if mid in mail.acked else "not acknowledged", len(copies),
                        " ".join(f for _, _, f in copies)))
            for mid, _outcome in mid_data:
                if mid.endswith(s["name"]):
                    self.assertNotIn(mid, found, "the message cut mid-DATA was delivered")
        print("\nfailover times (s): %s" % " ".join("%.2f" % t for t in cycles))
        print("failovers: %d; min %.2f s, median %.2f s, max %.2f s"
              % (len(cycles), min(cycles), statistics.median(cycles), max(cycles)))
        print("messages: %d attempted, %d acknowledged (250), %d stored files, %d temporary "
              "failures seen, %d permanent (5xx), lost %d, incomplete %d, duplicates %d"
              % (mail.attempted, len(mail.acked), stored_total, mail.temporary, len(mail.permanent),
                 len(lost), len(incomplete), duplicates))
        print("stored without a 250 (cut by a crash after the write, allowed): %d"
              % len([1 for s in lab.stores for mid in stored_ids[s["name"]] if mid not in mail.acked]))
        print("mid-DATA crashes: %s" % "; ".join("%s: %s" % x for x in mid_data))
        print("test body ran %.0f s" % elapsed, flush=True)
        self.assertGreaterEqual(len(cycles), CYCLES)
        self.assertEqual([], lost[:20], "acknowledged messages lost")
        self.assertEqual([], incomplete[:20], "acknowledged messages incomplete")
        self.assertEqual([], mail.permanent[:10], "permanent errors seen by clients")
        self.assertGreater(len(mail.acked), 100)


if __name__ == "__main__":
    unittest.main()
