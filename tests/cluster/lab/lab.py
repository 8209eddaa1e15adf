"""The hamail cluster lab: a real three-node Corosync 3 + Pacemaker 2.1 cluster on one machine.

See README.md beside this file for how to run it, keep it up for debugging and clean up after a
crash. In short, one node is:

- a network namespace ``hamail-lab-<node>`` whose ``eth0`` is one end of a veth pair; the other end
  (``hl-<node>``) is a port of the bridge ``hamail-lab0`` (10.77.0.1/24) in the root namespace;
- its own mount, UTS and PID namespaces (``unshare --mount --uts --pid --fork --propagation
  private``) in which a boot script bind-mounts the node's directories over /etc/corosync, /var/lib/pacemaker,
  /var/lib/corosync, /var/log/pacemaker and /var/log/corosync, mounts fresh tmpfs on /run, /dev/shm
  and /srv (the stores' mount points), a writable overlay on /etc (for /etc/hamail), a read-only
  overlay on /usr/sbin (adds fence_hamail_lab and hamail-backend) and on /usr/lib/ocf/resource.d
  (adds hamail/backend from the build), mounts the node's /proc, then node_init.py (the PID
  namespace's init) runs ``corosync -f`` and ``pacemakerd -f``;
- its own cgroup v2 directory, which the boot process joins before it execs, so the whole node can
  be killed as a unit (``cgroup.kill``).

The stores' shared volumes are loop devices over ext4 image files (they stand in for DRBD
devices): whichever node runs ``ocf:heartbeat:Filesystem`` mounts the device in its own mount
namespace. Nothing is installed on the machine; everything the lab creates is listed in its state
file (``<workdir>/lab.json``) so that ``python3 lab.py down`` removes it even after a crash.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

import stack

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
sys.path.insert(0, HERE)

CGROUP2 = "/sys/fs/cgroup/unified"
BRIDGE = "hamail-lab0"
BRIDGE_ADDR = "10.77.0.1"
PREFIX = 24
DEFAULT_WORKDIR = "/tmp/hamail-lab"
CGROUP_NAME = "hamail-lab"
STORE_PORTS = {"smtp": 2525, "lmtp": 2424, "submission": 5870, "imap": 2143, "pop3": 2110}
PROBE_PASSWORD = "lab-probe-secret"
DOMAIN = "example.org"


def run(*argv, check=True, **kw):
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    r = subprocess.run(list(argv), **kw)
    if check and r.returncode != 0:
        raise RuntimeError("%s failed (%d): %s%s" % (" ".join(argv), r.returncode, r.stdout, r.stderr))
    return r


def find_cgroup2():
    """The cgroup v2 mount point (LAB.md: /sys/fs/cgroup/unified on this machine kind)."""
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            sep = fields.index("-")
            if fields[sep + 1] == "cgroup2":
                return fields[4]
    return None


def unavailable_reason():
    """Why the lab cannot run here, or None."""
    if os.geteuid() != 0:
        return "the cluster lab needs root"
    cg = find_cgroup2()
    if cg is None or not os.path.exists(os.path.join(cg, "cgroup.procs")):
        return "no cgroup v2 hierarchy mounted"
    for tool in ("corosync", "pacemakerd", "crm", "ip", "unshare", "nsenter", "losetup", "mkfs.ext4"):
        if shutil.which(tool) is None:
            return "%s is not installed" % tool
    if not os.path.exists("/usr/lib/ocf/resource.d/pacemaker/Stateful"):
        return "ocf:pacemaker:Stateful is not installed"
    r = subprocess.run(["unshare", "--net", "--mount", "--uts", "true"], capture_output=True)
    if r.returncode != 0:
        return "namespaces are unavailable: %s" % r.stderr.decode(errors="replace").strip()
    return None


def cgroup_pids(cg):
    pids = []
    for root, _dirs, _files in os.walk(cg):
        try:
            with open(os.path.join(root, "cgroup.procs")) as f:
                pids += [int(x) for x in f.read().split()]
        except OSError:
            pass
    return pids


def become_subreaper():
    """Orphans of the lab's nodes (pacemakerd's daemons when the boot shell dies) are re-parented
    to this process instead of PID 1, which on this machine kind does not reap them: kill_cgroup
    then reaps them, and no zombie is left behind."""
    import ctypes
    try:
        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        pass


def reap(pids, timeout=2.0):
    """waitpid() the given pids that are (now) our children, until they are gone."""
    deadline = time.monotonic() + timeout
    pending = set(pids)
    while pending and time.monotonic() < deadline:
        for pid in list(pending):
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
                if done:
                    pending.discard(pid)
            except ChildProcessError:
                # Not our child (yet): still being re-parented, or reaped elsewhere.
                if not os.path.exists("/proc/%d" % pid):
                    pending.discard(pid)
                elif _state(pid) == "Z" and os.getppid() and _ppid(pid) != os.getpid():
                    pending.discard(pid)  # a zombie someone else must reap
        if pending:
            time.sleep(0.02)


def _state(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "X"


def _ppid(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError):
        return 0


def kill_cgroup(cg, timeout=20):
    """SIGKILL every process of a cgroup (and below), wait until it is empty, reap them."""
    if not os.path.isdir(cg):
        return
    seen = set(cgroup_pids(cg))
    deadline = time.monotonic() + timeout
    while True:
        try:
            with open(os.path.join(cg, "cgroup.kill"), "w") as f:
                f.write("1")
        except OSError:
            for pid in cgroup_pids(cg):
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        left = cgroup_pids(cg)
        seen |= set(left)
        if not left:
            reap(seen)
            return
        if time.monotonic() > deadline:
            raise RuntimeError("processes survive in %s: %s" % (cg, left))
        time.sleep(0.02)


def remove_cgroup(cg):
    if not os.path.isdir(cg):
        return
    for root, dirs, _files in os.walk(cg, topdown=False):
        for d in dirs:
            try:
                os.rmdir(os.path.join(root, d))
            except OSError:
                pass
    try:
        os.rmdir(cg)
    except OSError:
        pass


class Node:
    def __init__(self, lab, name, nodeid, addr):
        self.lab = lab
        self.name = name
        self.nodeid = nodeid
        self.addr = addr
        self.netns = "hamail-lab-" + name
        self.veth = "hl-" + name
        self.dir = os.path.join(lab.workdir, name)
        self.cgroup = os.path.join(lab.cgroup, name)
        self.proc = None
        self.pid = None  # the node's boot process: every command enters its namespaces

    def state(self):
        return {"netns": self.netns, "veth": self.veth, "addr": self.addr, "cgroup": self.cgroup,
                "dir": self.dir, "pid": self.pid}

    # -- creation ----------------------------------------------------------------------------

    def create_network(self):
        run("ip", "netns", "add", self.netns)
        run("ip", "link", "add", self.veth, "type", "veth", "peer", "name", "eth0", "netns", self.netns)
        run("ip", "link", "set", self.veth, "master", BRIDGE)
        run("ip", "link", "set", self.veth, "up")
        run("ip", "-n", self.netns, "link", "set", "lo", "up")
        run("ip", "-n", self.netns, "addr", "add", "%s/%d" % (self.addr, PREFIX), "dev", "eth0")
        run("ip", "-n", self.netns, "link", "set", "eth0", "up")
        run("ip", "-n", self.netns, "route", "add", "default", "via", BRIDGE_ADDR)

    def create_dirs(self):
        for d in ("corosync", "lib-corosync", "lib-pacemaker", "log-pacemaker", "log-corosync",
                  "etc.upper", "etc.work"):
            os.makedirs(os.path.join(self.dir, d), exist_ok=True)
        for d in ("cib", "pengine", "blackbox", "cores"):
            os.makedirs(os.path.join(self.dir, "lib-pacemaker", d), exist_ok=True)
        hacluster = run("id", "-u", "hacluster").stdout.strip()
        haclient = run("id", "-g", "hacluster").stdout.strip()
        for d in ("lib-pacemaker", "log-pacemaker"):
            for root, dirs, _files in os.walk(os.path.join(self.dir, d)):
                os.chown(root, int(hacluster), int(haclient))
                os.chmod(root, 0o750 if root != os.path.join(self.dir, "log-pacemaker") else 0o770)
        with open(os.path.join(self.dir, "corosync", "corosync.conf"), "w") as f:
            f.write(self.lab.corosync_conf())
        os.makedirs(os.path.join(self.dir, "etc.upper", "hamail"), exist_ok=True)
        # Name resolution of the nodes (crmsh's `node standby` checks the node is reachable).
        with open("/etc/hosts") as f:
            hosts = f.read()
        with open(os.path.join(self.dir, "etc.upper", "hosts"), "w") as f:
            f.write(hosts + "".join("%s %s\n" % (n.addr, n.name) for n in self.lab.nodes.values()))
        boot = os.path.join(self.dir, "boot.sh")
        with open(boot, "w") as f:
            f.write(self.boot_script())
        os.chmod(boot, 0o755)

    def boot_script(self):
        lab = self.lab
        binds = [(os.path.join(self.dir, "corosync"), "/etc/corosync"),
                 (os.path.join(self.dir, "lib-pacemaker"), "/var/lib/pacemaker"),
                 (os.path.join(self.dir, "lib-corosync"), "/var/lib/corosync"),
                 (os.path.join(self.dir, "log-pacemaker"), "/var/log/pacemaker"),
                 (os.path.join(self.dir, "log-corosync"), "/var/log/corosync"),
                 (lab.etc_hamail, "/etc/hamail")]
        lines = [
            "#!/bin/sh",
            "# Boots lab node %s inside its own network, mount and UTS namespaces." % self.name,
            "set -eu",
            "hostname %s" % self.name,
            # sysfs of this network namespace (IPaddr2 and findif look at /sys/class/net).
            "umount -l /sys && mount -t sysfs sysfs /sys",
            "mount -t tmpfs -o mode=0755 tmpfs /run",
            "mkdir -p /run/lock /run/hamail",
            "mount -t tmpfs -o mode=1777 tmpfs /dev/shm",
            # /etc: a writable overlay, so /etc/hamail exists on this node only.
            "mount -t overlay overlay -o lowerdir=/etc,upperdir=%s,workdir=%s /etc"
            % (os.path.join(self.dir, "etc.upper"), os.path.join(self.dir, "etc.work")),
        ]
        if self.name in lab.directory_nodes:
            # This node's slapd: its own /etc/ldap (slapd.d, tls) and /var/lib/ldap.
            binds += stack.ProviderFiles(self.dir).binds()
        for src, dst in binds:
            lines.append("mount --bind %s %s" % (src, dst))
        lines += [
            # Pacemaker 2.1 looks for OCF agents in /usr/lib/ocf/resource.d and for fence agents in
            # /usr/sbin only: read-only overlays add the build's agent and the lab's fence agent.
            "mount -t overlay overlay -o lowerdir=%s:/usr/lib/ocf/resource.d /usr/lib/ocf/resource.d"
            % lab.ocf_dir,
            "mount -t overlay overlay -o lowerdir=%s:/usr/sbin /usr/sbin" % lab.sbin_dir,
            # The stores' mount points.
            "mount -t tmpfs -o mode=0755 tmpfs /srv",
        ]
        for s in lab.stores:
            lines.append("mkdir -p %s" % s["data_dir"])
        lines += [
            # The node's own pid namespace: its /proc shows its processes only (the backend
            # agent looks for its daemon there). This shell is the namespace's init; node_init
            # takes over as init, starts corosync then pacemakerd and reaps every orphan.
            "mkdir -p /run/hamail-lab-hostproc && mount --bind /proc /run/hamail-lab-hostproc",
            "mount -t proc proc /proc",
            "export PCMK_logfile=/var/log/pacemaker/pacemaker.log PCMK_logfacility=none",
            "exec /usr/bin/python3 %s %s" % (os.path.join(HERE, "node_init.py"), self.dir),
        ]
        return "\n".join(lines) + "\n"

    def boot(self):
        """Start corosync and pacemakerd in the node's namespaces, inside its cgroup."""
        os.makedirs(self.cgroup, exist_ok=True)
        procs = os.path.join(self.cgroup, "cgroup.procs")

        def join_cgroup():
            with open(procs, "w") as f:
                f.write(str(os.getpid()))

        log = open(os.path.join(self.dir, "boot.out"), "ab")
        self.proc = subprocess.Popen(
            ["nsenter", "--net=/run/netns/" + self.netns, "--",
             "unshare", "--mount", "--uts", "--pid", "--fork", "--propagation", "private", "--",
             "/bin/sh", os.path.join(self.dir, "boot.sh")],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, preexec_fn=join_cgroup)
        log.close()
        self.pid = self.proc.pid  # unshare: in the node's net, mount and UTS namespaces
        self.lab.save_state()
        # Wait until the namespaces are set up (the node's hostname is its name).
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("node %s's boot failed:\n%s" % (self.name, self.boot_log()))
            r = subprocess.run(["nsenter", "-t", str(self.pid), "-u", "hostname"], capture_output=True,
                               text=True)
            if r.stdout.strip() == self.name:
                return
            time.sleep(0.05)
        raise RuntimeError("node %s did not boot:\n%s" % (self.name, self.boot_log()))

    def boot_log(self):
        try:
            with open(os.path.join(self.dir, "boot.out"), errors="replace") as f:
                return f.read()[-4000:]
        except OSError:
            return ""

    # -- running commands ----------------------------------------------------------------------

    def nsenter(self):
        """nsenter arguments for this node: its net, mount, UTS and PID namespaces (the PID
        namespace through node_init, the child of the unshare process that self.pid is; without
        it /proc/self does not exist for the command, as the node mounts its own /proc)."""
        if self.pid is None:
            raise RuntimeError("node %s is down" % self.name)
        target = self.pid
        try:
            with open("/proc/%d/task/%d/children" % (self.pid, self.pid)) as f:
                children = f.read().split()
            if children:
                target = int(children[0])
        except (OSError, ValueError):
            pass
        argv = ["nsenter", "-t", str(target), "-n", "-m", "-u"]
        if target != self.pid:
            argv.append("-p")
        return argv + ["--"]

    def exec(self, *argv, check=True, timeout=120, env=None):
        return run(*self.nsenter(), *argv, check=check, timeout=timeout, env=env)

    def alive(self):
        if self.proc is not None:
            return self.proc.poll() is None
        return self.pid is not None and _alive(self.pid)

    def path(self, p):
        """A path of this node's mount namespace, reachable from the host."""
        return "/proc/%d/root%s" % (self.pid, p)

    # -- crash and power ------------------------------------------------------------------------

    def partition(self):
        """Network partition: the node's link goes down, its processes keep running (it loses
        quorum and stops its resources itself; the others fence it before taking them over)."""
        self.lab.note("partition", self.name)
        run("ip", "link", "set", self.veth, "down")

    def mounts(self):
        """Mount points in the node's mount namespace (empty when the node is down)."""
        if self.pid is None:
            return set()
        try:
            with open("/proc/%d/mounts" % self.pid) as f:
                return {line.split()[1] for line in f}
        except OSError:
            return set()

    def crash(self):
        """Hard crash: link down, SIGKILL everything in the node's cgroup, forget its addresses."""
        self.lab.note("crash", self.name)
        run("ip", "link", "set", self.veth, "down")
        kill_cgroup(self.cgroup)
        self.reap()
        run("ip", "-n", self.netns, "addr", "flush", "dev", "eth0", check=False)
        run("ip", "-n", self.netns, "addr", "add", "%s/%d" % (self.addr, PREFIX), "dev", "eth0",
            check=False)

    def reap(self):
        if self.proc is not None:
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
        self.proc = None
        self.pid = None

    def power_on(self):
        """Link up and boot (what a machine does when its power comes back)."""
        run("ip", "-n", self.netns, "route", "replace", "default", "via", BRIDGE_ADDR, check=False)
        run("ip", "link", "set", self.veth, "up")
        self.boot()


def _alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


class Lab:
    """The whole lab. Use as a context manager, or up()/down()."""

    def __init__(self, workdir=None, nodes=None, stores=None, backend=None, agent=None, token=3000,
                 layout_path=None, directory=None, frontend=True, proxy=None, proxy_agent=None,
                 profile=None):
        self.workdir = workdir or os.environ.get("HAMAIL_LAB_DIR", DEFAULT_WORKDIR)
        self.cgroup_root = find_cgroup2() or CGROUP2
        self.cgroup = os.path.join(self.cgroup_root, CGROUP_NAME)
        self.token = token
        self.profile = profile
        self.layout_path = layout_path  # corosync.conf comes from the generator when set
        self.backend = backend or os.environ.get("HAMAIL_BACKEND", "")
        build = os.environ.get("HAMAIL_BUILD_DIR", "")
        self.agent = agent or os.environ.get("HAMAIL_OCF_BACKEND") or (
            os.path.join(build, "ocf", "resource.d", "hamail", "backend") if build else "")
        node_specs = nodes or [("node1", "10.77.0.11"), ("node2", "10.77.0.12"), ("node3", "10.77.0.13")]
        self.nodes = {name: Node(self, name, i + 1, addr) for i, (name, addr) in enumerate(node_specs)}
        self.stores = stores or [
            {"name": "store-a", "ip": "10.77.0.101"},
            {"name": "store-b", "ip": "10.77.0.102"},
        ]
        for s in self.stores:
            s.setdefault("data_dir", "/srv/hamail/" + s["name"])
            s.setdefault("config", "/etc/hamail/%s.toml" % s["name"])
            s.setdefault("accounts", ["%s-u%d" % (s["name"], i) for i in range(4)])
        self.etc_hamail = os.path.join(self.workdir, "etc-hamail")
        self.ocf_dir = os.path.join(self.workdir, "ocf")
        self.sbin_dir = os.path.join(self.workdir, "sbin")
        self.state_file = os.path.join(self.workdir, "lab.json")
        self.faults_dir = os.path.join(self.workdir, "faults")
        self.anchor = None
        self.balancer = None
        self.pki = None
        # Directory providers (slapd cloned by Pacemaker) and proxies: every node, as lab.toml.
        self.directory_nodes = list(self.nodes) if directory is None else list(directory)
        self.frontend = frontend
        self.proxy = proxy or os.environ.get("HAMAIL_PROXY", "")
        self.proxy_agent = proxy_agent or os.environ.get("HAMAIL_OCF_PROXY") or (
            os.path.join(build, "ocf", "resource.d", "hamail", "proxy") if build else "")
        self.directory_settings = None
        self.loops = {}
        self.images = {}
        self.up_done = False

    # -- state --------------------------------------------------------------------------------

    def save_state(self):
        state = {
            "workdir": self.workdir, "prefix": PREFIX, "bridge": BRIDGE, "cgroup": self.cgroup,
            "anchor_pid": self.anchor.pid if self.anchor else None,
            "nodes": {n.name: n.state() for n in self.nodes.values()},
            "loops": self.loops, "images": self.images,
            "stores": self.stores,
        }
        tmp = self.state_file + ".tmp"
        with open(tmp, "w") as f:
            json.dump(state, f, indent=1)
        os.rename(tmp, self.state_file)

    # -- configuration files -------------------------------------------------------------------

    def corosync_conf(self):
        if self.layout_path:
            # The production file for the lab layout, from the same generator, in the profile
            # chosen (HAMAIL_LAB_PROFILE=fast: the generator's --profile fast); the token can
            # still be overridden, for experiments with HAMAIL_LAB_TOKEN.
            argv = [sys.executable, os.path.join(REPO, "crm-config", "hamail-cluster-config"),
                    "corosync", self.layout_path]
            if self.profile:
                argv += ["--profile", self.profile]
            text = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
            if os.environ.get("HAMAIL_LAB_TOKEN"):
                text = re.sub(r"(?m)^(\s*token:) \d+$", r"\g<1> %d" % self.token, text)
            m = re.search(r"(?m)^\s*token: (\d+)$", text)
            self.token = int(m.group(1)) if m else self.token
            return text
        nodes = "".join(
            "    node {\n        ring0_addr: %s\n        name: %s\n        nodeid: %d\n    }\n"
            % (n.addr, n.name, n.nodeid) for n in self.nodes.values())
        return ("totem {\n    version: 2\n    cluster_name: hamail-lab\n    transport: knet\n"
                "    token: %d\n    crypto_cipher: none\n    crypto_hash: none\n}\n"
                "nodelist {\n%s}\n"
                "quorum {\n    provider: corosync_votequorum\n}\n"
                "logging {\n    to_logfile: yes\n    logfile: /var/log/corosync/corosync.log\n"
                "    to_stderr: no\n    to_syslog: no\n    timestamp: on\n}\n") % (self.token, nodes)

    def directory_uris(self):
        return ["ldap://%s/" % self.nodes[n].addr for n in self.directory_nodes]

    def host_cgroup_joiner(self):
        hostcg = os.path.join(self.cgroup, "host", "cgroup.procs")

        def join_host():
            with open(hostcg, "w") as f:
                f.write(str(os.getpid()))
        return join_host

    def make_pki(self):
        """The lab CA; one server certificate for the nodes, the stores and the proxies; the
        directory replicator's client certificate. The stores and proxies read theirs from
        /etc/hamail, each slapd from its node's /etc/ldap/tls."""
        names = list(self.nodes) + ["%s.%s" % (s["name"], DOMAIN) for s in self.stores] + [
            "mail." + DOMAIN, "localhost"]
        addrs = [n.addr for n in self.nodes.values()] + [s["ip"] for s in self.stores] + [
            BRIDGE_ADDR, "127.0.0.1"]
        self.pki = stack.make_pki(os.path.join(self.workdir, "pki"), names, addrs)
        os.makedirs(self.etc_hamail, exist_ok=True)
        for k, name in (("ca", "ca.pem"), ("server", "server.crt"), ("server_key", "server.key")):
            shutil.copy(self.pki[k], os.path.join(self.etc_hamail, name))
        os.chmod(os.path.join(self.etc_hamail, "server.key"), 0o600)

    def admin(self, *args, uri=None):
        """hamail-admin against the directory (`uri`, default the first provider)."""
        admin = os.environ.get("HAMAIL_ADMIN", "")
        if not (admin and os.access(admin, os.X_OK)):
            raise RuntimeError("HAMAIL_ADMIN (the hamail-admin binary) is not set or not executable")
        config = os.path.join(self.workdir, "admin.toml")
        if not os.path.exists(config):
            with open(config, "w") as f:
                f.write("[ldap]\nallow_plaintext = true\n")  # the lab's directory is on the bridge
        env = dict(os.environ, HAMAIL_LDAP_URI=uri or self.directory_uris()[0],
                   HAMAIL_LDAP_BASE_DN=stack.SUFFIX, HAMAIL_LDAP_BIND_DN=stack.ROOT_DN,
                   HAMAIL_LDAP_BIND_SECRET_FILE=os.path.join(self.etc_hamail, "ldap.secret"))
        r = subprocess.run([admin, "--config", config] + list(args), env=env,
                           capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise RuntimeError("hamail-admin %s: %s%s" % (" ".join(args), r.stdout, r.stderr))
        return r.stdout

    def prepare_directory(self):
        """Every provider's slapd files (see stack.py): cn=config from the lab's base and the
        generator's replication LDIF; stores and accounts placed with hamail-admin into node1's
        database (a temporary slapd), which is then copied to the other providers."""
        from hamail_harness import SCHEMA_LDIF
        os.makedirs(self.etc_hamail, exist_ok=True)
        secret = os.path.join(self.etc_hamail, "ldap.secret")
        with open(secret, "w") as f:
            f.write(stack.ROOT_PW + "\n")
        os.chmod(secret, 0o600)
        gen = os.path.join(REPO, "crm-config", "hamail-cluster-config")
        layout = self.layout_path or os.path.join(REPO, "crm-config", "layouts", "lab.toml")
        config = stack.base_config(SCHEMA_LDIF)
        providers = {}
        for name in self.directory_nodes:
            repl = run(gen, "slapd", layout, "--node", name).stdout
            providers[name] = stack.ProviderFiles(self.nodes[name].dir)
            providers[name].create(self.pki, config, repl)
        first = providers[self.directory_nodes[0]]
        base = os.path.join(self.workdir, "base.ldif")
        with open(base, "w") as f:
            f.write(stack.BASE_LDIF)
        os.chmod(base, 0o644)
        first.load(base)
        dump = os.path.join(self.workdir, "directory.ldif")
        log = open(os.path.join(self.workdir, "slapd-placement.log"), "ab")
        try:
            for name in self.directory_nodes:
                files = providers[name]
                if files is not first:
                    files.load(dump)  # node1's database, with its contextCSN
                port = stack.free_port() if files is first else None
                slapd = files.start_temporary(port, preexec_fn=self.host_cgroup_joiner(), log=log)
                if slapd is None:
                    raise RuntimeError("temporary slapd of %s did not start; see "
                                       "slapd-placement.log" % name)
                try:
                    files.apply_replication()
                    if files is first:
                        self.place(uri="ldap://127.0.0.1:%d/" % port)
                finally:
                    stack.stop(slapd)
                if files is first:
                    r = subprocess.run(
                        first.in_namespace("slapcat -F /etc/ldap/slapd.d -b %s" % stack.SUFFIX),
                        capture_output=True, text=True, check=True)
                    with open(dump, "w") as f:
                        f.write(r.stdout)
                    os.chmod(dump, 0o644)
        finally:
            log.close()
        self.directory_settings = {"uris": self.directory_uris(), "base_dn": stack.SUFFIX,
                                   "bind_dn": stack.ROOT_DN}

    def place(self, uri):
        """Stores, the probe accounts, four accounts per store and the proxies' account."""
        probe_pw = os.path.join(self.workdir, "probe.pw")
        with open(probe_pw, "w") as f:
            f.write(PROBE_PASSWORD + "\n")
        proxy_pw = os.path.join(self.workdir, "proxy.pw")
        with open(proxy_pw, "w") as f:
            f.write(stack.PROXY_PASSWORD + "\n")
        for s in self.stores:
            self.admin("store", "add", s["name"], "--host", "%s.%s" % (s["name"], DOMAIN),
                       "--address", s["ip"], "--imap-port", str(STORE_PORTS["imap"]),
                       "--pop3-port", str(STORE_PORTS["pop3"]),
                       "--lmtp-port", str(STORE_PORTS["lmtp"]), "--weight", "1", uri=uri)
            self.admin("account", "add", "probe-" + s["name"], "--address",
                       "probe@%s.%s" % (s["name"], DOMAIN), "--password-file", probe_pw,
                       "--store", s["name"], uri=uri)
            for a in s["accounts"]:
                self.admin("account", "add", a, "--address", "%s@%s" % (a, DOMAIN),
                           "--password-file", probe_pw, "--store", s["name"], uri=uri)
        self.admin("account", "add", stack.PROXY_LOGIN, "--address",
                   "%s@%s" % (stack.PROXY_LOGIN, DOMAIN), "--password-file", proxy_pw,
                   "--store", self.stores[0]["name"], uri=uri)

    def write_store_configs(self):
        os.makedirs(self.etc_hamail, exist_ok=True)
        with open(os.path.join(self.etc_hamail, "probe.secret"), "w") as f:
            f.write(PROBE_PASSWORD + "\n")
        os.chmod(os.path.join(self.etc_hamail, "probe.secret"), 0o600)
        proxies = ", ".join('"%s"' % n.addr for n in self.nodes.values())
        trust = 'trusted_proxies = [%s]\nproxy_logins = ["%s"]\n' % (proxies, stack.PROXY_LOGIN)
        for s in self.stores:
            name = s["name"]
            with open(os.path.join(self.etc_hamail, name + ".toml"), "w") as f:
                f.write('[store]\nname = "%s"\ndata_dir = "%s"\nhostname = "%s.%s"\n'
                        'runtime_dir = "/run/hamail/%s"\npid_file = "/run/hamail/%s/hamail-backend.pid"\n'
                        'fsync = true\n\n' % (name, s["data_dir"], name, DOMAIN, name, name))
                f.write('[smtp]\nauth_without_tls = false\ntrusted_proxies = [%s]\n\n' % proxies)
                f.write('[imap]\n%s\n[pop3]\n%s\n' % (trust, trust))
                f.write('[limits]\ndrain_timeout = "10s"\n\n')
                f.write('[log]\nlevel = "info"\n\n')
                f.write('[tls]\ncert = "/etc/hamail/server.crt"\nkey = "/etc/hamail/server.key"\n\n')
                f.write(stack.directory_section(self.directory_settings["uris"],
                                                fast=self.profile == "fast"))
                for lname, proto, tls in (("smtp", "smtp", "starttls"), ("submission", "submission", "starttls"),
                                          ("lmtp", "lmtp", "none"), ("imap", "imap", "starttls"),
                                          ("pop3", "pop3", "starttls")):
                    f.write('[[listener]]\nname = "%s"\nprotocol = "%s"\naddress = "%s"\nport = %d\n'
                            'tls = "%s"\n\n' % (lname, proto, s["ip"], STORE_PORTS[lname], tls))
        if self.frontend:
            with open(os.path.join(self.etc_hamail, "proxy.secret"), "w") as f:
                f.write(stack.PROXY_PASSWORD + "\n")
            os.chmod(os.path.join(self.etc_hamail, "proxy.secret"), 0o600)
            with open(os.path.join(self.etc_hamail, "proxy.toml"), "w") as f:
                f.write(stack.proxy_config(self.directory_settings["uris"], BRIDGE_ADDR,
                                           fast=self.profile == "fast"))

    def write_agents(self):
        os.makedirs(os.path.join(self.ocf_dir, "hamail"), exist_ok=True)
        os.makedirs(self.sbin_dir, exist_ok=True)
        # ocf:hamail:backend is the build's agent behind a fault hook: while
        # <workdir>/faults/fail-stop-<store> exists, `stop` of that store fails (exit 1), which
        # is how the lab makes a stop fail (the node must then be fenced). Every other action,
        # and stop without the file, is the real agent (exec, same arguments and environment).
        os.makedirs(self.faults_dir, exist_ok=True)
        link = os.path.join(self.ocf_dir, "hamail", "backend")
        if os.path.lexists(link):
            os.unlink(link)
        with open(link, "w") as f:
            f.write('#!/bin/sh\n# The hamail lab\'s fault hook around ocf:hamail:backend (lab.py).\n'
                    'if [ "$1" = stop ] && [ -e "%s/fail-stop-$OCF_RESKEY_store" ]; then\n'
                    '    echo "ocf-exit-reason:lab fault: stop made to fail" >&2\n'
                    '    exit 1\nfi\nexec %s "$@"\n' % (self.faults_dir, os.path.abspath(self.agent)))
        os.chmod(link, 0o755)
        link = os.path.join(self.sbin_dir, "hamail-backend")
        if os.path.lexists(link):
            os.unlink(link)
        os.symlink(os.path.abspath(self.backend), link)
        if self.frontend:
            for link, target in ((os.path.join(self.ocf_dir, "hamail", "proxy"), self.proxy_agent),
                                 (os.path.join(self.sbin_dir, "hamail-proxy"), self.proxy)):
                if os.path.lexists(link):
                    os.unlink(link)
                os.symlink(os.path.abspath(target), link)
        wrapper = os.path.join(self.sbin_dir, "fence_hamail_lab")
        with open(wrapper, "w") as f:
            f.write("#!/bin/sh\n# The hamail lab's fence agent: run in the host's namespaces.\n"
                    "exec /usr/bin/python3 %s --state %s --anchor %d \"$@\"\n"
                    % (os.path.join(HERE, "fence_hamail_lab"), self.state_file, self.anchor.pid))
        os.chmod(wrapper, 0o755)

    # -- up/down ---------------------------------------------------------------------------

    def leftovers(self):
        found = []
        if os.path.exists(self.state_file):
            found.append(self.state_file)
        if os.path.isdir(self.cgroup):
            found.append(self.cgroup)
        r = run("ip", "netns", "list", check=False)
        found += [l.split()[0] for l in r.stdout.splitlines() if l.startswith("hamail-lab-")]
        if run("ip", "link", "show", BRIDGE, check=False).returncode == 0:
            found.append(BRIDGE)
        return found

    def up(self, config=None, wait=True):
        """Create everything and start the cluster; then load `config` (crm text) if given."""
        reason = unavailable_reason()
        if reason:
            raise RuntimeError(reason)
        if not (self.backend and os.access(self.backend, os.X_OK)):
            raise RuntimeError("HAMAIL_BACKEND (the hamail-backend binary) is not set or not executable")
        if not (self.agent and os.access(self.agent, os.X_OK)):
            raise RuntimeError("HAMAIL_OCF_BACKEND / HAMAIL_BUILD_DIR: ocf:hamail:backend not found")
        if self.frontend and not (self.proxy and os.access(self.proxy, os.X_OK)):
            raise RuntimeError("HAMAIL_PROXY (the hamail-proxy binary) is not set or not executable")
        if self.frontend and not (self.proxy_agent and os.access(self.proxy_agent, os.X_OK)):
            raise RuntimeError("HAMAIL_OCF_PROXY / HAMAIL_BUILD_DIR: ocf:hamail:proxy not found")
        left = self.leftovers()
        if left:
            raise RuntimeError("a lab is already up or was left behind (%s): run `python3 %s down`"
                               % (", ".join(left), os.path.join(HERE, "lab.py")))
        # A work directory kept from an earlier run (HAMAIL_KEEP_TEST_DIRS) holds that run's
        # CIB, directory databases and logs: a lab always starts from nothing.
        shutil.rmtree(self.workdir, ignore_errors=True)
        os.makedirs(self.workdir)
        os.makedirs(self.cgroup)
        try:
            # The anchor: a process in the host's namespaces that the fence agent enters.
            os.makedirs(os.path.join(self.cgroup, "host"))
            self.anchor = subprocess.Popen(["sleep", "infinity"],
                                           preexec_fn=self.host_cgroup_joiner(),
                                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                           stderr=subprocess.DEVNULL)
            self.save_state()
            run("ip", "link", "add", BRIDGE, "type", "bridge", "forward_delay", "0")
            run("ip", "addr", "add", "%s/%d" % (BRIDGE_ADDR, PREFIX), "dev", BRIDGE)
            run("ip", "link", "set", BRIDGE, "up")
            for n in self.nodes.values():
                n.create_network()
                n.create_dirs()
            self.make_pki()
            self.prepare_directory()
            self.write_store_configs()
            self.write_agents()
            if self.frontend:
                self.balancer = stack.Balancer(self.workdir, BRIDGE_ADDR,
                                               [n.addr for n in self.nodes.values()],
                                               preexec_fn=self.host_cgroup_joiner())
            for s in self.stores:
                img = os.path.join(self.workdir, s["name"] + ".img")
                with open(img, "wb") as f:
                    f.truncate(256 * 1024 * 1024)
                run("mkfs.ext4", "-q", "-F", "-L", s["name"], img)
                self.images[s["name"]] = img
                dev = run("losetup", "--find", "--show", img).stdout.strip()
                self.loops[s["name"]] = dev
                s["device"] = dev
                if s.get("lab_device"):
                    # The generator's --lab configuration mounts this path: a link to the loop.
                    if os.path.lexists(s["lab_device"]):
                        os.unlink(s["lab_device"])
                    os.makedirs(os.path.dirname(s["lab_device"]), exist_ok=True)
                    os.symlink(dev, s["lab_device"])
                self.save_state()
            for n in self.nodes.values():
                n.boot()
            self.save_state()
            if wait:
                self.wait_online(timeout=90)
            if config:
                self.load_config(config)
            self.up_done = True
            return self
        except BaseException:
            self.down()
            raise

    def down(self, keep_workdir=None):
        """Stop and remove everything this lab created; safe to call on a half-created lab."""
        errors = []
        for n in self.nodes.values():
            try:
                kill_cgroup(n.cgroup)
            except RuntimeError as e:
                errors.append(str(e))
            n.reap()
        try:
            kill_cgroup(self.cgroup)
        except RuntimeError as e:
            errors.append(str(e))
        if self.anchor is not None:
            try:
                self.anchor.wait(5)
            except subprocess.TimeoutExpired:
                pass
            self.anchor = None
        if self.balancer is not None:
            self.balancer.stop()  # ended with the lab's cgroup already; reaps it
            self.balancer = None
        for n in self.nodes.values():
            run("ip", "link", "del", n.veth, check=False)
            run("ip", "netns", "del", n.netns, check=False)
        run("ip", "link", "del", BRIDGE, check=False)
        for store, dev in list(self.loops.items()):
            # The mounts lived in the nodes' mount namespaces, which died with their processes.
            for _ in range(50):
                if run("losetup", "-d", dev, check=False).returncode == 0:
                    break
                time.sleep(0.1)
            del self.loops[store]
        for s in self.stores:
            if s.get("lab_device") and os.path.islink(s["lab_device"]):
                os.unlink(s["lab_device"])
        remove_cgroup(self.cgroup)
        if os.path.exists(self.state_file):
            os.unlink(self.state_file)
        keep = keep_workdir if keep_workdir is not None else bool(os.environ.get("HAMAIL_KEEP_TEST_DIRS"))
        if not keep:
            shutil.rmtree(self.workdir, ignore_errors=True)
        if errors:
            raise RuntimeError("; ".join(errors))

    @classmethod
    def from_state(cls, workdir=None):
        """The lab described by a state file (for `lab.py down/status/exec` from another process)."""
        workdir = workdir or os.environ.get("HAMAIL_LAB_DIR", DEFAULT_WORKDIR)
        with open(os.path.join(workdir, "lab.json")) as f:
            st = json.load(f)
        lab = cls(workdir=workdir, nodes=[(k, v["addr"]) for k, v in st["nodes"].items()],
                  stores=st["stores"], backend="-", agent="-")
        lab.cgroup = st["cgroup"]
        lab.loops = st.get("loops", {})
        lab.images = st.get("images", {})
        for name, v in st["nodes"].items():
            lab.nodes[name].pid = v["pid"] if v["pid"] and _alive(v["pid"]) else None
            lab.nodes[name].cgroup = v["cgroup"]
        return lab

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.down()
        return False

    # -- cluster -----------------------------------------------------------------------------

    def any_node(self, exclude=()):
        for n in self.nodes.values():
            if n.pid is not None and n.alive() and n.name not in exclude:
                return n
        raise RuntimeError("no node is up")

    def crm(self, *args, node=None, check=True, timeout=120):
        n = node or self.any_node()
        return n.exec("crm", *args, check=check, timeout=timeout)

    def status_xml(self, node=None):
        n = node or self.any_node()
        r = n.exec("crm_mon", "-1", "--output-as=xml", check=False, timeout=30)
        try:
            return ET.fromstring(r.stdout)
        except ET.ParseError:
            return None

    def online_nodes(self, node=None):
        x = self.status_xml(node)
        if x is None:
            return set()
        return {e.get("name") for e in x.iter("node")
                if e.get("online") == "true" and e.get("standby") != "true" and e.get("name")}

    def wait_online(self, names=None, timeout=90):
        want = set(names or self.nodes)
        deadline = time.monotonic() + timeout
        got = set()
        while time.monotonic() < deadline:
            try:
                up = [n for n in self.nodes.values() if n.alive()]
                got = self.online_nodes(up[0]) if up else set()
                if want <= got:
                    x = self.status_xml(up[0])
                    dc = x.find(".//current_dc") if x is not None else None
                    if dc is not None and dc.get("present") == "true":
                        return
            except (RuntimeError, subprocess.TimeoutExpired):
                pass
            time.sleep(0.5)
        raise RuntimeError("nodes %s not online after %ds (online: %s)" % (sorted(want), timeout, sorted(got)))

    def where(self, resource, node=None):
        """Nodes where a resource (a primitive or group member) runs, by crm_mon."""
        x = self.status_xml(node)
        if x is None:
            return []
        out = []
        for r in x.iter("resource"):
            if r.get("id") == resource and r.get("active") == "true" and r.get("failed") != "true":
                out += [n.get("name") for n in r.iter("node")]
        return out

    def load_config(self, text, node=None):
        path = os.path.join(self.workdir, "cluster.crm")
        with open(path, "w") as f:
            f.write(text)
        n = node or self.any_node()
        r = n.exec("crm", "configure", "load", "update", path, check=False, timeout=120)
        if r.returncode != 0:
            raise RuntimeError("crm configure load update failed (%d):\n%s%s\n--- configuration:\n%s"
                               % (r.returncode, r.stdout, r.stderr, text))
        return r

    def load_pcs(self, node=None):
        """The generator's pcs form, applied as its header says: `pcs cluster cib`, the script
        edits that file (`pcs -f`), `pcs cluster cib-push --config`."""
        gen = os.path.join(REPO, "crm-config", "hamail-cluster-config")
        layout = self.layout_path or os.path.join(REPO, "crm-config", "layouts", "lab.toml")
        script = os.path.join(self.workdir, "cluster.pcs.sh")
        with open(script, "w") as f:
            f.write(run(gen, "pcs", "--lab", layout).stdout)
        cib = os.path.join(self.workdir, "pcs-cib.xml")
        n = node or self.any_node()
        r = n.exec("sh", "-c", 'pcs cluster cib "$1" && CIB="$1" sh "$2" && '
                   'pcs cluster cib-push "$1" --config', "load-pcs", cib, script,
                   check=False, timeout=300)
        if r.returncode != 0:
            raise RuntimeError("loading the pcs form failed (%d):\n%s%s"
                               % (r.returncode, r.stdout, r.stderr))
        return r

    def settle(self, timeout=120):
        n = self.any_node()
        n.exec("crm_resource", "--wait", "--timeout", "%ds" % timeout, check=False, timeout=timeout + 10)

    def note(self, event, target):
        """Records a fault with its wall-clock time in <workdir>/faults.log (timeline.py reads
        it beside the nodes' Pacemaker logs)."""
        with open(os.path.join(self.workdir, "faults.log"), "a") as f:
            f.write("%.3f %s %s\n" % (time.time(), event, target))

    def fence_log(self):
        try:
            with open(os.path.join(self.workdir, "fence.log")) as f:
                return [l.split() for l in f if l.strip()]
        except OSError:
            return []


def read_layout(path=None):
    """Nodes and stores of crm-config/layouts/lab.toml (the generator's lab layout), as
    (nodes, stores) for Lab(); None when the layout does not exist."""
    import tomllib
    path = path or os.path.join(REPO, "crm-config", "layouts", "lab.toml")
    if not os.path.exists(path):
        return None
    with open(path, "rb") as f:
        t = tomllib.load(f)
    nodes = [(n["name"], n["address"]) for n in t.get("node", [])]
    stores = []
    for st in t.get("store", []):
        stores.append({"name": st["name"], "ip": st["ip"], "data_dir": st.get("mount", "/srv/hamail/" + st["name"]),
                       "config": st.get("config", "/etc/hamail/%s.toml" % st["name"]),
                       "lab_device": st.get("lab_device"), "nodes": st.get("nodes", [])})
    return nodes, stores, t.get("cluster", {}).get("token", 3000)


def lab_from_layout(**kw):
    """A Lab shaped like crm-config/layouts/lab.toml when it exists, else the default lab."""
    layout = read_layout()
    if layout is None:
        return Lab(**kw)
    nodes, stores, token = layout
    # HAMAIL_LAB_PROFILE: the generator's failure-detection profile ("default" or "fast");
    # HAMAIL_LAB_TOKEN: experiment with any other corosync token.
    profile = os.environ.get("HAMAIL_LAB_PROFILE") or None
    token = int(os.environ.get("HAMAIL_LAB_TOKEN", token))
    kw.setdefault("profile", profile)
    return Lab(nodes=nodes, stores=stores, token=token,
               layout_path=os.path.join(REPO, "crm-config", "layouts", "lab.toml"), **kw)


# -- the cluster configuration ----------------------------------------------------------------

def hand_config(lab):
    """A hand-written crm configuration of the same shape as the generator's: per store a
    promotable Stateful clone (for DRBD), then the group Filesystem (loop device), IPaddr2,
    ocf:hamail:backend, colocated with and ordered after the promotion; one lab fence device."""
    nodes = " ".join(lab.nodes)
    out = [
        "property cib-bootstrap-options: stonith-enabled=true stonith-action=off "
        "no-quorum-policy=stop cluster-recheck-interval=60s",
        "rsc_defaults rsc-options: resource-stickiness=100 migration-threshold=3",
        'primitive fence-lab stonith:fence_hamail_lab params pcmk_host_list="%s" '
        "pcmk_host_check=static-list op monitor interval=60s" % nodes,
    ]
    for s in lab.stores:
        n = s["name"]
        out += [
            "primitive %s-drbd ocf:pacemaker:Stateful op monitor interval=9s role=Promoted "
            "op monitor interval=10s role=Unpromoted" % n,
            "clone %s-drbd-clone %s-drbd meta promotable=true promoted-max=1 promoted-node-max=1 "
            "clone-max=3 clone-node-max=1 notify=true" % (n, n),
            "primitive %s-fs ocf:heartbeat:Filesystem params device=%s directory=%s fstype=ext4 "
            "op start timeout=60s op stop timeout=60s op monitor interval=20s timeout=40s"
            % (n, s["device"], s["data_dir"]),
            "primitive %s-ip ocf:heartbeat:IPaddr2 params ip=%s cidr_netmask=24 "
            "op monitor interval=10s" % (n, s["ip"]),
            "primitive %s-mail ocf:hamail:backend params store=%s config=%s service_address=%s "
            "data_dir=%s probe_account=probe@%s.%s probe_secret_file=/etc/hamail/probe.secret "
            "op start timeout=120s op stop timeout=90s op monitor interval=10s timeout=20s "
            "op monitor interval=30s timeout=30s OCF_CHECK_LEVEL=10"
            % (n, n, s["config"], s["ip"], s["data_dir"], n, DOMAIN),
            "group %s %s-fs %s-ip %s-mail" % (n, n, n, n),
            "colocation %s-on-drbd inf: %s %s-drbd-clone:Promoted" % (n, n, n),
            "order %s-after-drbd Mandatory: %s-drbd-clone:promote %s:start" % (n, n, n),
        ]
    return "\n".join(out) + "\n"


def generated_config(lab):
    """The colleague's generator's lab configuration (crm form), with the lab's substitutions,
    or None when crm-config/hamail-cluster-config or crm-config/layouts/lab.toml is missing."""
    gen = os.path.join(REPO, "crm-config", "hamail-cluster-config")
    layout = os.path.join(REPO, "crm-config", "layouts", "lab.toml")
    if not (os.access(gen, os.X_OK) and os.path.exists(layout)):
        return None
    r = run(gen, "crm", "--lab", layout, check=False)
    if r.returncode != 0:
        raise RuntimeError("%s crm --lab %s failed (%d): %s" % (gen, layout, r.returncode, r.stderr))
    return r.stdout


# -- command line --------------------------------------------------------------------------

def main(argv):
    import argparse
    p = argparse.ArgumentParser(description="The hamail cluster lab")
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("up", help="create the lab, start the cluster, load the configuration, stay up")
    sub.add_parser("down", help="stop and remove a lab (also after a crash)")
    sub.add_parser("status", help="crm_mon of the lab")
    e = sub.add_parser("exec", help="run a command on a node")
    e.add_argument("node")
    e.add_argument("command", nargs=argparse.REMAINDER)
    a = p.parse_args(argv)
    become_subreaper()
    if a.cmd == "up":
        def interrupted(*_):
            raise KeyboardInterrupt()
        signal.signal(signal.SIGTERM, interrupted)
        lab = lab_from_layout()
        try:
            lab.up()
            text = generated_config(lab)
            if text is None:
                print("crm-config's generator or layouts/lab.toml is missing: hand-written configuration")
                text = hand_config(lab)
            print(text)
            lab.load_config(text)
            lab.settle()
            print(lab.any_node().exec("crm_mon", "-1", check=False).stdout)
            print("lab is up (workdir %s). `python3 %s status|exec NODE CMD` from another shell; "
                  "Ctrl-C or SIGTERM here removes it." % (lab.workdir, __file__), flush=True)
            while True:
                time.sleep(1)
                for n in lab.nodes.values():
                    if n.proc is not None and n.proc.poll() is not None:
                        n.reap()
        except KeyboardInterrupt:
            pass
        finally:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second signal must not cut down() short
            lab.down()
            print("lab removed")
        return 0
    if a.cmd == "down":
        workdir = os.environ.get("HAMAIL_LAB_DIR", DEFAULT_WORKDIR)
        if os.path.exists(os.path.join(workdir, "lab.json")):
            lab = Lab.from_state(workdir)  # the anchor dies with the lab's cgroup
        else:
            lab = lab_from_layout(workdir=workdir, backend="-", agent="-")
            # Without a state file: loop devices backed by images in the workdir.
            r = run("losetup", "-a", "-O", "NAME,BACK-FILE", "-n", check=False)
            for line in r.stdout.splitlines():
                parts = line.split()
                if len(parts) >= 2 and parts[1].startswith(workdir + "/"):
                    lab.loops[parts[1]] = parts[0]
        lab.down()
        left = lab.leftovers()
        print("lab removed" if not left else "still there: %s" % left)
        return 0 if not left else 1
    if a.cmd == "status":
        lab = Lab.from_state()
        print(lab.any_node().exec("crm_mon", "-1", "-r", check=False).stdout)
        return 0
    if a.cmd == "exec":
        lab = Lab.from_state()
        n = lab.nodes[a.node]
        if n.pid is None:
            print("%s is down" % a.node, file=sys.stderr)
            return 1
        return subprocess.call(n.nsenter() + a.command)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
