#!/usr/bin/env python3
"""The appliance cluster test: two appliance VMs booted from the built image, a store on real
DRBD 8.4 (protocol C) between them, fenced by SBD, both VMs directory providers (slapd,
replicating) and proxies, behind the test's HAProxy; mail delivered all the time over SMTP
through HAProxy and the proxies, and read back over IMAP the same way; then

  1. failover: node1's qemu is SIGKILLed (a power cut for that guest: its page cache is lost);
     node2 fences it through the shared SBD disk, DRBD is promoted there and the store starts
     on the floating IP; every message acknowledged before, during and after must be there;
  2. rejoin: node1 boots again, joins the cluster and DRBD resyncs it (only the blocks written
     while it was away);
  3. switchover: the store is moved back to node1 with `crm resource move`, under mail, and
     every acknowledged message must still be there.

It prints the failover time (power cut to the first acknowledged delivery on node2), the
switchover's interruption, the initial sync and the resync (time and rate), and PASS/FAIL
lines; exit status 0 only when every check passed.

The VMs share a bridge inside a network namespace that the test makes (192.168.77.0/24; the
test itself and its HAProxy run in it as 192.168.77.1): no host interface is touched.
hamail-setup configures slapd and checks the proxy's file; the store, its accounts and the
proxies' login are placed with hamail-admin on node1 once the cluster runs, and the test checks
that node2's slapd has them too (replication). Each VM writes to a
qcow2 overlay of the image, so the image stays clean. Everything the test starts is stopped
by its pid; the namespace is deleted at the end.

Then, with --power-cuts N, N more power cuts of whichever node runs the store, under mail, each
followed by a check of every acknowledged message and the cut node's rejoin and resync; and at
the end the store's own verification (`hamail-backend --verify`) of every account.

Usage (root): tests/appliance/cluster.py [--image IMAGE] [--power-cuts N] [--keep]
  IMAGE: default build/appliance/hamail-appliance.qcow2 (cmake/dev.sh appliance)
  --keep: keep the scratch folder (consoles, logs) and say where it is
"""

from __future__ import annotations

import argparse
import itertools
import os
import imaplib
import random
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "tests" / "cluster" / "lab"))
sys.path.insert(0, str(REPO / "tests" / "integration"))
sys.path.insert(0, str(REPO / "tests" / "support"))
import stack  # noqa: E402  (the lab's PKI, proxy configuration and HAProxy)
from qemu_process import QemuProcess  # noqa: E402  (shared with tests/powercut)
LAYOUT = HERE / "layouts" / "vm-cluster.toml"
NET = "192.168.77"
TEST_ADDR = f"{NET}.1"
NODES = {"node1": f"{NET}.11", "node2": f"{NET}.12"}
STORE_IP = f"{NET}.101"
# The store's listeners on its floating IP: not the proxy's ports (every node runs a proxy on
# 0.0.0.0), as in the namespace lab.
STORE_PORTS = {"lmtp": 2424, "imap": 2143, "pop3": 2110}
ACCOUNTS = ["u0", "u1", "u2", "u3"]
PASSWORD = "appliance-test-password"
STORE_DISK_MB = 256
# HAProxy in the test's namespace, in front of both nodes' proxies (stack.BALANCER_PORTS).
BALANCER_SMTP = (TEST_ADDR, stack.BALANCER_PORTS["smtp"])
BALANCER_IMAP = (TEST_ADDR, stack.BALANCER_PORTS["imap"])
CA_FILE = ""  # the test's CA (set once the PKI is made)
# HAMAIL_APPLIANCE_FSYNC=false runs the store without fsync: the power cut must then lose
# acknowledged mail and the test must fail (docs/appliance.md shows that it does).
FSYNC = "false" if os.environ.get("HAMAIL_APPLIANCE_FSYNC", "true") == "false" else "true"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def run(*argv: str, check: bool = True, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(argv, check=check, capture_output=True, text=True, **kw)


# ---------------------------------------------------------------------------------------------
# What goes on the setup disks


def store_config() -> str:
    nodes = ", ".join(f'"{a}"' for a in NODES.values())
    trust = f'trusted_proxies = [{nodes}]\nproxy_logins = ["{stack.PROXY_LOGIN}"]\n'
    listeners = "".join(
        f'[[listener]]\nname = "{name}"\nprotocol = "{name}"\naddress = "{STORE_IP}"\n'
        f'port = {port}\ntls = "{"none" if name == "lmtp" else "starttls"}"\n\n'
        for name, port in STORE_PORTS.items())
    return ('[store]\nname = "store-a"\ndata_dir = "/srv/hamail/store-a"\n'
            'hostname = "store-a.example.org"\nruntime_dir = "/run/hamail/store-a"\n'
            f'pid_file = "/run/hamail/store-a/hamail-backend.pid"\nfsync = {FSYNC}\n\n'
            f'[imap]\n{trust}\n[pop3]\n{trust}\n'
            '[limits]\ndrain_timeout = "5s"\n\n[log]\nlevel = "info"\n\n'
            '[tls]\ncert = "/etc/hamail/server.crt"\nkey = "/etc/hamail/server.key"\n\n'
            + stack.directory_section(DIRECTORY_URIS) + listeners)


DIRECTORY_URIS = [f"ldap://{a}/" for a in NODES.values()]


def make_setup_disks(work: Path) -> dict:
    """One setup disk (ext4 labelled HAMAIL-SETUP) per node: setup.toml, the layout, the
    cluster key, root's SSH key, /etc/hamail's files (store and proxy configurations, the
    certificates, the directory and proxy secrets) and slapd's TLS files. Returns the PKI."""
    common = work / "setup-common"
    files = common / "etc-hamail"
    files.mkdir(parents=True)
    shutil.copy(LAYOUT, common / "layout.toml")
    (common / "authkey").write_bytes(os.urandom(256))
    run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(work / "id"))
    shutil.copy(work / "id.pub", common / "authorized_keys")
    # One CA; a server certificate naming the nodes, the store, the proxies' name and the
    # balancer's address (slapd, the store and the proxies present it); the replicator's.
    pki = stack.make_pki(str(work / "pki"), list(NODES) + ["store-a.example.org",
                                                          "mail.example.org"],
                         list(NODES.values()) + [STORE_IP, TEST_ADDR])
    for k, name in (("ca", "ca.pem"), ("server", "server.crt"), ("server_key", "server.key")):
        shutil.copy(pki[k], files / name)
    tls = common / "ldap-tls"
    tls.mkdir()
    for k, name in (("ca", "ca.crt"), ("server", "server.crt"), ("server_key", "server.key"),
                    ("repl", "replicator.crt"), ("repl_key", "replicator.key")):
        shutil.copy(pki[k], tls / name)
    (common / "ldap-admin.secret").write_text(stack.ROOT_PW + "\n")
    (files / "ldap.secret").write_text(stack.ROOT_PW + "\n")
    (files / "proxy.secret").write_text(stack.PROXY_PASSWORD + "\n")
    (files / "store-a.toml").write_text(store_config())
    (files / "proxy.toml").write_text(stack.proxy_config(DIRECTORY_URIS, TEST_ADDR))
    for name in NODES:
        d = work / f"setup-{name}"
        shutil.copytree(common, d)
        (d / "setup.toml").write_text(
            f'[setup]\nnode = "{name}"\nlayout = "layout.toml"\ninterface = "enp0s3"\n'
            'corosync_authkey = "authkey"\nfiles = "etc-hamail"\n'
            'ssh_authorized_keys = "authorized_keys"\ndirectory_tls = "ldap-tls"\n'
            'directory_admin_password = "ldap-admin.secret"\n')
        img = work / f"setup-{name}.img"
        with open(img, "wb") as f:
            f.truncate(16 << 20)
        run("mkfs.ext4", "-q", "-F", "-L", "HAMAIL-SETUP", "-d", str(d), str(img))
    return pki


# ---------------------------------------------------------------------------------------------
# The VMs


class VMDied(Exception):
    pass


class VM:
    def __init__(self, name: str, index: int, work: Path, image: Path):
        self.name = name
        self.index = index
        self.work = work
        self.addr = NODES[name]
        self.disk = work / f"{name}.qcow2"
        self.store_disk = work / f"{name}-store-a.raw"
        self.qemu: QemuProcess | None = None
        self.boots = 0
        run("qemu-img", "create", "-q", "-f", "qcow2", "-b", str(image), "-F", "qcow2",
            str(self.disk))
        with open(self.store_disk, "wb") as f:
            f.truncate(STORE_DISK_MB << 20)

    def start(self) -> None:
        self.boots += 1
        mac = f"52:54:00:77:00:{self.index:02x}"
        self.qemu = QemuProcess([
            "-accel", "tcg", "-M", "q35", "-m", "1536", "-smp", "1",
            "-display", "none", "-nodefaults", "-no-user-config",
            # The NIC first, in slot 3: the layout's nic is enp0s3.
            "-netdev", f"tap,id=n0,ifname=tap{self.index},script=no,downscript=no",
            "-device", f"virtio-net-pci,netdev=n0,mac={mac},addr=0x3",
            "-drive", f"file={self.disk},format=qcow2,if=none,id=root",
            "-device", "virtio-blk-pci,drive=root,bootindex=0",
            "-drive", f"file={self.store_disk},format=raw,if=none,id=store",
            "-device", "virtio-blk-pci,drive=store,serial=hamail-store-a",
            "-drive", f"file={self.work}/setup-{self.name}.img,format=raw,if=virtio,readonly=on",
            # The SBD disk: one file, both VMs, writes straight through to it.
            "-drive", f"file={self.work}/sbd.raw,format=raw,if=none,id=sbd,file.locking=off,"
                      "cache=directsync",
            "-device", "virtio-blk-pci,drive=sbd,serial=hamail-sbd,share-rw=on",
            "-device", "i6300esb", "-action", "watchdog=reset",
        ], self.work / f"{self.name}.console.{self.boots}", self.work / f"{self.name}.qemu.log",
            pid_file=self.work / "pids")

    def alive(self) -> bool:
        return self.qemu is not None and self.qemu.alive()

    def console_text(self) -> str:
        return self.qemu.console_text() if self.qemu is not None else ""

    def power_cut(self) -> None:
        """SIGKILL of this VM's qemu (QemuProcess.cut): its page cache is lost."""
        if self.qemu is not None:
            self.qemu.cut()

    def ssh(self, command: str, timeout: float = 60, check: bool = False) -> subprocess.CompletedProcess:
        r = subprocess.run(
            ["ssh", "-i", str(self.work / "id"), "-o", "BatchMode=yes", "-o",
             "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o",
             "ConnectTimeout=5", "-o", "LogLevel=ERROR", f"root@{self.addr}", command],
            capture_output=True, text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise RuntimeError(f"{self.name}: {command}: exit {r.returncode}: {r.stderr.strip()}")
        return r


def wait_for(what: str, predicate, timeout: float, step: float = 2.0, vms=()):
    """Polls predicate until it returns something true; a VM of `vms` exiting ends the wait."""
    t0 = time.monotonic()
    while True:
        for vm in vms:
            if not vm.alive():
                log_tail = vm.qemu.log_text(500) if vm.qemu else ""
                raise VMDied(f"{what}: {vm.name}'s qemu exited: {log_tail.strip()}")
        try:
            v = predicate()
        except (OSError, EOFError, subprocess.TimeoutExpired, RuntimeError, imaplib.IMAP4.error):
            v = None  # not yet: a VM still booting, a store still starting
        if v:
            return v
        if time.monotonic() - t0 > timeout:
            raise TimeoutError(f"{what}: not within {timeout:.0f} s")
        time.sleep(step)


# ---------------------------------------------------------------------------------------------
# Mail


class Deliveries:
    """SMTP deliveries through the balancer (HAProxy, then a node's proxy, then the store's
    LMTP), one connection per message (a client that meets a failover reconnects), from
    `clients` threads. Acknowledged (250 after the data) message tokens are recorded with their
    time. A 4xx reply is a temporary failure (the proxy says so while no store answers: the
    client tries again), a 5xx a refusal, which the test counts as a defect."""

    numbers = itertools.count()  # message numbers, unique across every round of the run

    def __init__(self, clients: int = 2):
        self.lock = threading.Lock()
        self.acked: list[tuple[float, str, str]] = []  # (time, account, token)
        self.failures = 0
        self.temporary = 0
        self.refusals: list[str] = []
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self.client, daemon=True) for _ in range(clients)]

    def start(self):
        for t in self.threads:
            t.start()

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(60)

    def last_ack(self) -> float:
        with self.lock:
            return self.acked[-1][0] if self.acked else 0.0

    def acked_after(self, t: float) -> float | None:
        with self.lock:
            for when, _, _ in self.acked:
                if when > t:
                    return when
        return None

    def deliver_one(self, n: int) -> bool:
        account = ACCOUNTS[n % len(ACCOUNTS)]
        token = f"m{n}-{os.getpid()}"
        body = "".join(f"line {i} of {token}\r\n" for i in range(random.randint(3, 200)))
        msg = (f"From: load@remote.test\r\nTo: {account}@example.org\r\n"
               f"Message-ID: <{token}@appliance.test>\r\nX-Test-Token: {token}\r\n"
               f"Subject: {token}\r\n\r\n{body}").encode()
        with socket.create_connection(BALANCER_SMTP, timeout=30) as s:
            f = s.makefile("rb")

            def reply() -> int:
                while True:
                    line = f.readline()
                    if not line:
                        raise EOFError
                    if line[3:4] != b"-":
                        return int(line[:3])

            def failed(what: str, code: int) -> bool:
                with self.lock:
                    if 400 <= code < 500:
                        self.temporary += 1
                    else:
                        self.refusals.append(f"{token}: {code} {what}")
                return False

            code = reply()
            if code != 220:
                return failed("as greeting", code)
            s.sendall(b"EHLO appliance.test\r\n")
            if (code := reply()) != 250:
                return failed("to EHLO", code)
            for command, want in ((b"MAIL FROM:<load@remote.test>", 250),
                                  (f"RCPT TO:<{account}@example.org>".encode(), 250),
                                  (b"DATA", 354)):
                s.sendall(command + b"\r\n")
                if (code := reply()) != want:
                    return failed(f"to {command.split(b':')[0].decode()}", code)
            s.sendall(msg + b".\r\n")
            code = reply()
            if code == 250:
                with self.lock:
                    self.acked.append((time.monotonic(), account, token))
                s.sendall(b"QUIT\r\n")
                return True
            return failed("after the data", code)

    def client(self):
        while not self.stop.is_set():
            with self.lock:
                n = next(Deliveries.numbers)
            try:
                ok = self.deliver_one(n)
            except (OSError, EOFError, ValueError):
                ok = False
            if not ok:
                with self.lock:
                    self.failures += 1
                self.stop.wait(0.5)


def tokens_on_store(deadline: float = 120) -> dict[str, set[str]]:
    """Every account's X-Test-Token values, read over IMAP (STARTTLS, the proxy's certificate
    verified against the test's CA) through the balancer and a proxy: one FETCH of that header
    for the whole mailbox (thousands of messages after many rounds)."""
    ctx = ssl.create_default_context(cafile=CA_FILE)
    found: dict[str, set[str]] = {}
    for a in ACCOUNTS:
        m = imaplib.IMAP4(*BALANCER_IMAP, timeout=deadline)
        try:
            m.starttls(ctx)
            m.login(f"{a}@example.org", PASSWORD)
            typ, data = m.select("INBOX", readonly=True)
            if typ != "OK":
                raise RuntimeError(f"SELECT INBOX as {a}: {data}")
            tokens = set()
            if int(data[0]) > 0:
                typ, data = m.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (X-TEST-TOKEN)])")
                if typ != "OK":
                    raise RuntimeError(f"FETCH as {a}: {data}")
                for item in data:
                    if isinstance(item, tuple):
                        for line in item[1].splitlines():
                            if line.lower().startswith(b"x-test-token:"):
                                tokens.add(line.split(b":", 1)[1].strip().decode())
            found[a] = tokens
        finally:
            try:
                m.logout()
            except (OSError, imaplib.IMAP4.error):
                pass
    return found


# ---------------------------------------------------------------------------------------------
# The test


class Checks:
    def __init__(self):
        self.failed = 0

    def expect(self, label: str, ok: bool, detail: str = "") -> bool:
        print(f"{'PASS' if ok else 'FAIL'} {label}" + (f": {detail}" if detail else ""), flush=True)
        self.failed += 0 if ok else 1
        return ok


def longest_gap(d: Deliveries, since: float) -> float:
    """The longest time without an acknowledged delivery, from the last one before `since`."""
    with d.lock:
        times = [t for t, _, _ in d.acked]
    before = [t for t in times if t <= since]
    times = ([before[-1]] if before else []) + [t for t in times if t > since]
    return max((b - a for a, b in zip(times, times[1:])), default=0.0)


def where_store_runs(vm: VM) -> str | None:
    r = vm.ssh("crm_resource --locate --resource store-a-mail 2>/dev/null", timeout=30)
    m = re.search(r"is running on: (\S+)", r.stdout)
    return m.group(1) if m else None


def drbd_state(vm: VM) -> str:
    r = vm.ssh("drbdadm cstate store-a; drbdadm role store-a; drbdadm dstate store-a", timeout=30)
    return " ".join(r.stdout.split())


def check_all_acked(checks: Checks, what: str, d: Deliveries) -> None:
    with d.lock:
        acked = list(d.acked)
    found = wait_for("IMAP on the store", tokens_on_store, 120, step=3)
    missing = [t for _, a, t in acked if t not in found.get(a, set())]
    stored = sum(len(v) for v in found.values())
    checks.expect(f"{what}: every acknowledged message is on the store", not missing,
                  f"{len(acked)} acknowledged, {stored} stored, {len(missing)} missing"
                  + (f" (e.g. {missing[:5]})" if missing else ""))


def other(vms: dict, name: str) -> "VM":
    return next(vm for n, vm in vms.items() if n != name)


def resync_figure(vm: VM) -> str:
    """The last resync as the SyncSource's kernel reported it (DRBD 8.4, "block drbd1: Resync done (total
    17 sec; paused 0 sec; 15060 K/sec)"), with how much it synced."""
    out = vm.ssh("dmesg | grep -E 'drbd1: (Began resync|Resync done)' | tail -2").stdout
    began = re.search(r"will sync (\d+) KB", out)
    done = re.search(r"Resync done \(total (\d+) sec; paused (\d+) sec; (\d+) K/sec\)", out)
    if not done:
        return "not in the kernel log: " + " | ".join(out.strip().splitlines())[:200]
    size = f"{int(began.group(1)) / 1024:.1f} MiB in " if began else ""
    return f"{size}{done.group(1)} s, {int(done.group(3)) / 1024:.1f} MiB/s"


def boot_and_rejoin(vm: VM, survivor: VM, checks: Checks | None) -> tuple[float, float]:
    """Boots a node that lost power until DRBD is UpToDate on both again; returns (boot to
    UpToDate, connected to UpToDate) in seconds."""
    t0 = time.monotonic()
    vm.start()
    setup = wait_for(f"{vm.name}: hamail-setup on boot {vm.boots}",
                     lambda: re.search(r"hamail-setup: (changed [0-9]+ thing.*|.*(error|failed).*)",
                                       vm.console_text()), 900, step=3, vms=[vm])
    if checks is not None:
        checks.expect(f"hamail-setup on the rejoining {vm.name} changed nothing",
                      setup.group(1).startswith("changed 0"), setup.group(0)[:200])
    elif not setup.group(1).startswith("changed 0"):
        raise RuntimeError(f"{vm.name}: hamail-setup after a power cut: {setup.group(0)[:200]}")
    wait_for(f"{vm.name}: DRBD connected again",
             lambda: drbd_state(survivor).startswith(("Connected", "SyncSource")), 600, step=1,
             vms=[vm])
    t_connected = time.monotonic()
    wait_for(f"{vm.name}: resync done", lambda: drbd_state(survivor).startswith(
        "Connected Primary/Secondary UpToDate/UpToDate"), 900, step=1, vms=[vm])
    now = time.monotonic()
    return now - t0, now - t_connected


def power_cut_rounds(rounds: int, vms: dict, checks: Checks, figures: dict) -> None:
    """Power cuts of whichever node runs the store, under mail, `rounds` times: each time the
    other node takes over, every message acknowledged so far must be there (IMAP), and the
    node that lost power boots, rejoins and resyncs before the next cut."""
    failovers, resyncs, problems = [], [], []
    acked: list[tuple[float, str, str]] = []  # every round's, all checked after every cut
    for i in range(1, rounds + 1):
        running = where_store_runs(next(vm for vm in vms.values() if vm.alive()))
        primary, survivor = vms[running], other(vms, running)
        # Mail from a little before the cut until the check after it (not during the rejoin,
        # so that the mailboxes grow by hundreds of messages a round, not thousands).
        d = Deliveries(clients=1)
        d.start()
        try:
            wait_for("deliveries before the cut", lambda: len(d.acked) >= 10, 120, step=0.5)
            time.sleep(random.uniform(0.0, 3.0))  # the cut falls anywhere in a delivery
            t_cut = time.monotonic()
            primary.power_cut()
            first = wait_for("a delivery acknowledged after the cut",
                             lambda: d.acked_after(t_cut + 0.5), 300, step=0.5)
            failovers.append(first - t_cut)
        finally:
            d.finish()
        acked += d.acked
        found = wait_for("IMAP on the store", tokens_on_store, 120, step=3)
        missing = [t for _, a, t in acked if t not in found.get(a, set())]
        if missing:
            problems.append(f"cut {i} ({primary.name}): {len(missing)} missing, e.g. {missing[:3]}")
        if d.refusals:
            problems.append(f"cut {i}: refused: {'; '.join(d.refusals[:3])}")
        now_on = where_store_runs(survivor)
        if now_on != survivor.name:
            problems.append(f"cut {i}: store-a on {now_on}, not {survivor.name}")
        boot_s, resync_s = boot_and_rejoin(primary, survivor, None)
        resyncs.append(resync_s)
        log(f"cut {i}/{rounds} of {primary.name}: failover {failovers[-1]:.1f} s, "
            f"{len(acked)} acknowledged so far, {len(missing)} missing; {primary.name} back "
            f"in {boot_s:.0f} s, resync {resync_s:.1f} s")
    checks.expect(f"{rounds} power cuts of the store's node under mail: every acknowledged "
                  "message present after each", not problems and len(failovers) == rounds,
                  f"{len(acked)} acknowledged; " + ("; ".join(problems) or "0 lost"))
    if failovers:
        ordered = sorted(failovers)
        figures[f"failover over {len(ordered)} power cuts (min / median / max)"] = (
            f"{ordered[0]:.1f} / {ordered[len(ordered) // 2]:.1f} / {ordered[-1]:.1f} s")
    if resyncs:
        ordered = sorted(resyncs)
        figures[f"resync after {len(ordered)} power cuts (min / median / max)"] = (
            f"{ordered[0]:.1f} / {ordered[len(ordered) // 2]:.1f} / {ordered[-1]:.1f} s")


def place_accounts(vm: VM, checks: Checks) -> None:
    """The store, its accounts and the proxies' login, placed with hamail-admin on `vm` (as an
    operator does on a node) once its slapd runs; then the other provider must have them."""
    suffix = stack.SUFFIX
    wait_for(f"{vm.name}: slapd answers", lambda: vm.ssh(
        f"ldapsearch -x -LLL -H ldap://{vm.addr}/ -b {suffix} -s base dn",
        timeout=30).returncode == 0, 600, step=3)
    accounts = " ".join(ACCOUNTS)
    r = vm.ssh(f"""set -e
umask 077
printf '%s\n' '{PASSWORD}' > /root/account.pw
printf '%s\n' '{stack.PROXY_PASSWORD}' > /root/proxy.pw
printf '[ldap]\nallow_plaintext = true\n' > /root/admin.toml
export HAMAIL_LDAP_URI=ldap://{vm.addr}/ HAMAIL_LDAP_BASE_DN={suffix}
export HAMAIL_LDAP_BIND_DN={stack.ROOT_DN} HAMAIL_LDAP_BIND_SECRET_FILE=/etc/hamail/ldap.secret
a() {{ hamail-admin --config /root/admin.toml "$@"; }}
a store add store-a --host store-a.example.org --address {STORE_IP} \
  --imap-port {STORE_PORTS["imap"]} --pop3-port {STORE_PORTS["pop3"]} \
  --lmtp-port {STORE_PORTS["lmtp"]} --weight 1
for u in {accounts}; do
  a account add $u --address $u@example.org --password-file /root/account.pw --store store-a
done
a account add {stack.PROXY_LOGIN} --address {stack.PROXY_LOGIN}@example.org \
  --password-file /root/proxy.pw --store store-a
""", timeout=120)
    checks.expect("hamail-admin placed store-a, its accounts and the proxies' login",
                  r.returncode == 0, (r.stdout + r.stderr).strip()[-300:])
    want = len(ACCOUNTS) + 1
    for peer in NODES.values():
        count = lambda peer=peer: vm.ssh(
            f"ldapsearch -x -LLL -H ldap://{peer}/ -b ou=accounts,{suffix} -s one dn "
            "| grep -c '^dn:'", timeout=30).stdout.strip()
        try:
            got = wait_for(f"the accounts on {peer}'s slapd",
                           lambda: count() == str(want) and count(), 120, step=2)
        except TimeoutError:
            got = count()
        checks.expect(f"the directory on {peer} has every account (replication)",
                      got == str(want), f"{got} of {want}")


def verify_store(vm: VM, checks: Checks) -> None:
    """Stops the store's daemon (Pacemaker keeps DRBD and the filesystem), runs its index
    verification on every account, starts it again."""
    vm.ssh("crm resource stop store-a-mail", check=True)
    wait_for("store-a-mail stopped", lambda: "NOT running" in vm.ssh(
        "crm_resource --locate --resource store-a-mail 2>&1").stdout, 120, step=1)
    results = []
    for a in ACCOUNTS:
        r = vm.ssh(f"runuser -u hamail -- hamail-backend --config /etc/hamail/store-a.toml "
                   f"--verify {a}", timeout=300)
        results.append((a, r.returncode, (r.stdout + r.stderr).strip()[-300:]))
    vm.ssh("crm resource start store-a-mail", check=True)
    bad = [f"{a}: exit {rc}: {out}" for a, rc, out in results if rc != 0]
    checks.expect("the store's verify (--verify, every account) finds its indexes and files agree",
                  not bad, "; ".join(bad))
    wait_for("store-a-mail running again", lambda: where_store_runs(vm), 120, step=1)


def inside(args) -> int:
    """Runs in the test's network namespace."""
    global CA_FILE
    work = Path(args.work)
    checks = Checks()
    pki = make_setup_disks(work)
    CA_FILE = pki["ca"]
    balancer = stack.Balancer(str(work), TEST_ADDR, list(NODES.values()))
    with open(work / "pids", "a") as f:
        f.write(f"{balancer.proc.pid}\n")
    with open(work / "sbd.raw", "wb") as f:
        f.truncate(8 << 20)
    vms = {name: VM(name, i + 1, work, Path(args.image)) for i, name in enumerate(NODES)}
    n1, n2 = vms["node1"], vms["node2"]
    figures: dict[str, str] = {}
    try:
        log("booting node1 and node2 from the image (TCG)")
        t_boot = time.monotonic()
        for vm in vms.values():
            vm.start()
        for vm in vms.values():
            text = wait_for(f"{vm.name}: hamail-setup finished",
                            lambda vm=vm: re.search(r"hamail-setup: (changed [0-9]+ thing.*|.*(error|failed).*)",
                                                    vm.console_text()), 900, step=3, vms=[vm])
            log(f"{vm.name}: {text.group(0)[:200]}")
            checks.expect(f"{vm.name}: hamail-setup set the node up", text.group(1).startswith("changed"))
        figures["boot and set-up, both nodes"] = f"{time.monotonic() - t_boot:.0f} s"
        for vm in vms.values():
            wait_for(f"{vm.name}: SSH", lambda vm=vm: vm.ssh("true", timeout=20).returncode == 0, 300)
        log("waiting for the cluster to start store-a")
        t_cluster = time.monotonic()
        runs = wait_for("store-a started", lambda: where_store_runs(n1), 600, step=3)
        checks.expect("the cluster formed and started store-a on its home node", runs == "node1", runs)
        log(f"store-a runs on {runs}; {drbd_state(n1)}")
        figures["cluster start to store-a running"] = f"{time.monotonic() - t_cluster:.0f} s"
        state = wait_for("initial DRBD sync", lambda: (lambda s: s if s.startswith(
            "Connected Primary/Secondary UpToDate/UpToDate") else None)(drbd_state(n1)), 900, step=2)
        figures["initial sync (256 MiB; DRBD's own count)"] = resync_figure(n1)
        checks.expect("DRBD connected, protocol C, both disks UpToDate", True, state)
        proto = n1.ssh("drbdsetup show store-a | grep -i protocol || drbdadm dump store-a | grep -i protocol").stdout
        checks.expect("the resource uses protocol C", "C" in proto, " ".join(proto.split()))
        place_accounts(n1, checks)

        d = Deliveries()
        d.start()
        wait_for("first deliveries", lambda: len(d.acked) >= 20, 300, step=1)
        time.sleep(10)
        log(f"{len(d.acked)} acknowledged; power cut of node1 (SIGKILL of its qemu)")
        t_cut = time.monotonic()
        acked_before_cut = len(d.acked)
        n1.power_cut()
        first_after = wait_for("a delivery acknowledged after the power cut",
                               lambda: d.acked_after(t_cut + 0.5), 300, step=0.5)
        failover = first_after - t_cut
        figures["failover (power cut to the first acknowledged delivery on node2)"] = f"{failover:.1f} s"
        figures["failover (longest gap between acknowledged deliveries)"] = (
            f"{longest_gap(d, t_cut):.1f} s")
        runs = where_store_runs(n2)
        checks.expect("after node1's power cut store-a runs on node2", runs == "node2", str(runs))
        fenced = n2.ssh("stonith_admin --history node1 2>&1").stdout
        checks.expect("node2 fenced node1 (SBD) before taking the store over",
                      "successful" in fenced or "reboot of node1" in fenced, " ".join(fenced.split())[:200])
        log(f"failover {failover:.1f} s; node2: {drbd_state(n2)}")
        time.sleep(10)
        d.finish()
        checks.expect("deliveries went on after the failover", len(d.acked) > acked_before_cut + 5,
                      f"{acked_before_cut} before the cut, {len(d.acked)} in all")
        check_all_acked(checks, "after failover", d)

        log("node1 boots again and rejoins")
        rejoin_s, resync_s = boot_and_rejoin(n1, n2, checks)
        figures["rejoin (node1 boot to DRBD UpToDate on both)"] = f"{rejoin_s:.0f} s"
        figures["resync after the failover (connected to UpToDate)"] = f"{resync_s:.1f} s"
        figures["resync after the failover (DRBD's own count)"] = resync_figure(n2)

        log("planned switchover back to node1 under mail")
        d2 = Deliveries()
        d2.start()
        wait_for("deliveries", lambda: len(d2.acked) >= 10, 120, step=1)
        t_move = time.monotonic()
        n2.ssh("crm resource move store-a node1", check=True)
        runs = wait_for("store-a on node1", lambda: (lambda r: r if r == "node1" else None)(
            where_store_runs(n2)), 300, step=1)
        t_on = time.monotonic()
        wait_for("a delivery acknowledged on node1", lambda: d2.acked_after(t_on), 300, step=0.5)
        figures["switchover (longest gap between acknowledged deliveries)"] = (
            f"{longest_gap(d2, t_move):.1f} s")
        log("the switchover, as node1's and node2's Pacemaker did it:")
        for vm in (n2, n1):
            ops = vm.ssh("journalctl -o short-precise --no-pager --since '-3min' -u pacemaker "
                         "| grep -E 'Result of (stop|start|promote|demote) operation'").stdout
            for line in ops.strip().splitlines():
                print(f"    {vm.name}: {line[7:]}")
        n2.ssh("crm resource clear store-a", check=True)
        time.sleep(5)
        d2.finish()
        checks.expect("the switchover moved store-a to node1", runs == "node1")
        # Both rounds' messages: what was acknowledged on node2 must have come back with DRBD.
        with d.lock, d2.lock:
            d2.acked = d.acked + d2.acked
        check_all_acked(checks, "after the switchover (both rounds)", d2)
        checks.expect("no delivery was refused (only temporary failures during the moves)",
                      not d.refusals and not d2.refusals,
                      "; ".join((d.refusals + d2.refusals)[:5]) or
                      f"{d.temporary + d2.temporary} temporary (4xx) replies, "
                      f"{d.failures + d2.failures} attempts failed in all")
        checks.expect("DRBD still connected and UpToDate after the switchover",
                      drbd_state(n1).startswith("Connected Primary/Secondary UpToDate/UpToDate"),
                      drbd_state(n1))
        if args.power_cuts:
            log(f"{args.power_cuts} power cuts of the store's node under mail")
            power_cut_rounds(args.power_cuts, vms, checks, figures)
        running = where_store_runs(n1) or "node1"
        verify_store(vms[running], checks)
    except (TimeoutError, RuntimeError, VMDied, subprocess.CalledProcessError) as e:
        checks.expect("the test ran to its end", False, str(e))
        for vm in vms.values():
            tail = vm.console_text().splitlines()[-25:]
            print(f"--- {vm.name} console (last lines)\n" + "\n".join(tail))
    finally:
        for vm in vms.values():
            vm.power_cut()
        balancer.stop()
    print("figures:")
    for k, v in figures.items():
        print(f"  {k}: {v}")
    print(f"{'FAILED' if checks.failed else 'PASSED'}: {checks.failed} check(s) failed")
    return 1 if checks.failed else 0


def outside(args) -> int:
    """Makes the network namespace (a bridge, a tap per VM, the test's own address), runs the
    test inside it, then stops whatever is left by pid and deletes the namespace."""
    image = Path(args.image).resolve()
    if os.geteuid() != 0:
        print("cluster.py: needs root (network namespace, tap devices)", file=sys.stderr)
        return 2
    if not image.is_file():
        print(f"cluster.py: no image at {image} (cmake/dev.sh appliance)", file=sys.stderr)
        return 2
    missing = [t for t in ("qemu-system-x86_64", "qemu-img", "ssh", "ssh-keygen", "openssl",
                           "mkfs.ext4", "ip") if shutil.which(t) is None]
    if missing:
        print(f"cluster.py: missing tools: {', '.join(missing)}", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="hamail-appliance-cluster-"))
    ns = f"hamail-vmt-{os.getpid()}"
    # A SIGTERM (a CI timeout, an operator) still runs the clean-up below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    inner = None
    try:
        run("ip", "netns", "add", ns)
        ipn = lambda *a: run("ip", "-n", ns, *a)
        ipn("link", "set", "lo", "up")
        ipn("link", "add", "br0", "type", "bridge")
        ipn("addr", "add", f"{TEST_ADDR}/24", "dev", "br0")
        ipn("link", "set", "br0", "up")
        for i in range(1, len(NODES) + 1):
            ipn("tuntap", "add", "dev", f"tap{i}", "mode", "tap")
            ipn("link", "set", f"tap{i}", "master", "br0", "up")
        inner = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, __file__, "--inside",
                                  "--work", str(work), "--image", str(image),
                                  "--power-cuts", str(args.power_cuts)])
        return inner.wait()
    finally:
        if inner is not None and inner.poll() is None:
            inner.kill()
            inner.wait()
        pids = (work / "pids").read_text().split() if (work / "pids").exists() else []
        for pid in pids:
            try:
                os.kill(int(pid), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass
        run("ip", "netns", "del", ns, check=False)
        if args.keep:
            print(f"scratch folder kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--image", default=str(REPO / "build" / "appliance" / "hamail-appliance.qcow2"))
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--power-cuts", type=int, default=0, metavar="N",
                    help="then N more power cuts of the store's node, each followed by a rejoin")
    ap.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--work", help=argparse.SUPPRESS)
    args = ap.parse_args()
    return inside(args) if args.inside else outside(args)


if __name__ == "__main__":
    sys.exit(main())
