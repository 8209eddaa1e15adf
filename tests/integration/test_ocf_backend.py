"""ocf:hamail:backend against the real hamail-backend: ocf-tester, crm_resource, and the
behaviour the cluster depends on (exit codes, probes, stale pid files, stop escalation)."""

import os
import shutil
import signal
import smtplib
import socket
import subprocess
import tempfile
import time
import unittest

from hamail_harness import BACKEND, Backend, free_port, ssha512

AGENT = os.environ.get("HAMAIL_OCF_BACKEND", "")
DTD = "/usr/share/resource-agents/ra-api-1.dtd"
RNG = "/usr/share/resource-agents/metadata.rng"
PROBE_PASSWORD = "probe-secret-1"


def is_backend(pid):
    try:
        return os.path.realpath("/proc/%d/exe" % pid) == os.path.realpath(BACKEND)
    except OSError:
        return False


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


class Store:
    """A store's configuration (via the harness) plus the agent's parameters for it."""

    def __init__(self, name="store-a", listeners=None, limits=None, service_address="127.0.0.1"):
        self.backend = Backend(
            [{"id": "probe", "address": "probe@test", "password": ssha512(PROBE_PASSWORD)}],
            store=name, listeners=listeners, smtp={"auth_without_tls": False},
            limits=limits or {"drain_timeout": "20s"})
        os.makedirs(self.backend.data_dir, exist_ok=True)
        self.secret = os.path.join(self.backend.dir, "probe.secret")
        with open(self.secret, "w") as f:
            f.write(PROBE_PASSWORD + "\n")
        os.chmod(self.secret, 0o600)
        self.pid_file = os.path.join(self.backend.runtime_dir, "hamail-backend.pid")
        self.params = {
            "store": name,
            "config": self.backend.config,
            "binary": BACKEND,
            "pid_file": self.pid_file,
            "require_mount": "false",
            "service_address": service_address,
            "probe_account": "probe@test",
            "probe_secret_file": self.secret,
            "probe_ca_file": self.backend.ca,
        }

    def env(self, params=None, interval_ms=10000, timeout_ms=20000, depth=None, extra=None):
        env = {k: v for k, v in os.environ.items() if not k.startswith("OCF_")}
        env.update({"OCF_ROOT": "/usr/lib/ocf", "OCF_RESOURCE_INSTANCE": "rsc-" + self.params["store"],
                    "OCF_RA_VERSION_MAJOR": "1", "OCF_RA_VERSION_MINOR": "1",
                    "OCF_RESKEY_CRM_meta_timeout": str(timeout_ms),
                    "OCF_RESKEY_CRM_meta_interval": str(interval_ms)})
        for k, v in (self.params if params is None else params).items():
            if v is not None:
                env["OCF_RESKEY_" + k] = v
        if depth is not None:
            env["OCF_CHECK_LEVEL"] = str(depth)
        env.update(extra or {})
        return env

    def run(self, action, **kw):
        return subprocess.run([AGENT, action], env=self.env(**kw), capture_output=True, text=True,
                              timeout=120)

    def pid(self):
        try:
            with open(self.pid_file) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    def port(self, listener):
        with open(os.path.join(self.backend.runtime_dir, "listeners")) as f:
            for line in f:
                name, _proto, _addr, port = line.split()
                if name == listener:
                    return int(port)
        raise KeyError(listener)

    def output(self):
        try:
            with open(os.path.join(self.backend.runtime_dir, "hamail-backend.out"), errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def cleanup(self):
        # Stop by the agent, then make sure by pid: nothing this test started survives.
        pid = self.pid()
        subprocess.run([AGENT, "stop"], env=self.env(timeout_ms=10000), capture_output=True)
        if pid and alive(pid) and is_backend(pid):
            os.kill(pid, signal.SIGKILL)
        self.backend.cleanup()


def exit_reason(r):
    return "\n".join(l[len("ocf-exit-reason:"):] for l in r.stderr.splitlines()
                     if l.startswith("ocf-exit-reason:"))


@unittest.skipUnless(AGENT and BACKEND, "HAMAIL_OCF_BACKEND / HAMAIL_BACKEND not set")
class ocf_backend_test(unittest.TestCase):
    def setUp(self):
        self.stores = []
        self.others = []  # processes this test started besides the daemons

    def tearDown(self):
        for s in self.stores:
            s.cleanup()
        for p in self.others:
            if p.poll() is None:
                p.kill()
                p.wait()

    def store(self, **kw):
        s = Store(**kw)
        self.stores.append(s)
        return s

    def assertRc(self, want, r, reason_has=None):
        self.assertEqual(want, r.returncode, "rc %d, stderr:\n%s" % (r.returncode, r.stderr))
        if want not in (0, 7):
            self.assertTrue(exit_reason(r), "a failure must print ocf-exit-reason: " + r.stderr)
        if reason_has:
            self.assertIn(reason_has, exit_reason(r))

    # ------------------------------------------------------------------ conformance

    def test_ocf_tester_passes_every_action(self):
        s = self.store()
        args = ["ocf-tester", "-n", "rsc-store-a"]
        for k, v in s.params.items():
            args += ["-o", "%s=%s" % (k, v)]
        r = subprocess.run(args + [AGENT], capture_output=True, text=True, timeout=300)
        self.assertEqual(0, r.returncode, r.stdout + r.stderr)
        self.assertIn("passed all tests", r.stdout)
        self.assertIsNone(s.pid(), "ocf-tester ends with the resource stopped")

    def test_meta_data_is_valid_ocf_1_0_dtd_and_1_1_schema(self):
        r = subprocess.run([AGENT, "meta-data"], capture_output=True, text=True)
        self.assertEqual(0, r.returncode)
        xml = r.stdout
        self.assertIn('<!DOCTYPE resource-agent SYSTEM "ra-api-1.dtd">', xml)
        self.assertIn("<version>1.1</version>", xml)
        self.assertNotIn("reload-agent", xml)
        for flags in (["--dtdvalid", DTD], ["--relaxng", RNG]):
            v = subprocess.run(["xmllint", "--noout"] + flags + ["-"], input=xml, capture_output=True,
                               text=True)
            self.assertEqual(0, v.returncode, "%s: %s" % (flags, v.stderr))
        for name in ("store", "config", "binary", "data_dir", "require_mount", "service_address",
                     "pid_file", "user", "probe_account", "probe_secret_file", "probe_ca_file",
                     "probe_tls_name"):
            self.assertIn('<parameter name="%s"' % name, xml)
        for depth in ("0", "10", "20"):
            self.assertRegex(xml, r'<action name="monitor" timeout="\d+s" interval="\d+s" depth="%s"' % depth)
        for action in ("start", "stop", "reload", "validate-all", "meta-data"):
            self.assertIn('<action name="%s"' % action, xml)

    def test_usage_and_unknown_actions(self):
        self.assertEqual(0, subprocess.run([AGENT, "usage"], capture_output=True).returncode)
        r = subprocess.run([AGENT, "frobnicate"], capture_output=True, text=True)
        self.assertEqual(3, r.returncode)  # OCF_ERR_UNIMPLEMENTED
        self.assertIn("ocf-exit-reason:", r.stderr)
        self.assertEqual(2, subprocess.run([AGENT], capture_output=True).returncode)

    # ------------------------------------------------------------------ start / monitor

    def test_start_waits_for_service_and_is_idempotent(self):
        s = self.store()
        self.assertRc(7, s.run("monitor"))
        self.assertRc(0, s.run("start"))
        pid = s.pid()
        self.assertTrue(pid and is_backend(pid))
        # When start returns, the service answers on its address.
        with smtplib.SMTP("127.0.0.1", s.port("smtp"), timeout=5) as c:
            self.assertEqual(250, c.noop()[0])
        self.assertRc(0, s.run("start"))
        self.assertEqual(pid, s.pid(), "a second start must not start a second daemon")
        # Fully detached: its own session and process group, not the agent's.
        self.assertEqual(pid, os.getsid(pid))
        self.assertEqual(pid, os.getpgid(pid))
        self.assertNotEqual(os.getsid(0), os.getsid(pid))

    def test_monitor_depths(self):
        s = self.store()
        self.assertRc(0, s.run("start"))
        for depth in (0, 10, 20):
            self.assertRc(0, s.run("monitor", depth=depth))
        with open(s.secret, "w") as f:
            f.write("wrong\n")
        self.assertRc(0, s.run("monitor", depth=10))
        r = s.run("monitor", depth=20)
        self.assertRc(1, r, "authenticated probe as probe@test failed")
        self.assertIn("535", exit_reason(r))

    def test_authenticated_probe_verifies_the_certificate(self):
        s = self.store()
        self.assertRc(0, s.run("start"))
        self.assertRc(0, s.run("monitor", depth=20))
        # The harness CA is not in the system trust store: without probe_ca_file the
        # certificate cannot be verified and the password is not sent.
        params = dict(s.params, probe_ca_file=None)
        r = s.run("monitor", depth=20, params=params)
        self.assertRc(1, r, "certificate verification failed")
        # The certificate names localhost and 127.0.0.1, not this name.
        r = s.run("monitor", depth=20, params=dict(s.params, probe_tls_name="store-x.example.org"))
        self.assertRc(1, r, "mismatch")
        self.assertRc(0, s.run("monitor", depth=20, params=dict(s.params, probe_tls_name="localhost")))
        # Depth 10 sends no credentials over these STARTTLS listeners: no TLS, nothing to verify.
        self.assertRc(0, s.run("monitor", depth=10, params=params))
        r = s.run("validate-all", params=dict(s.params, probe_ca_file="relative/ca.pem"))
        self.assertRc(6, r, "not an absolute path")

    def test_authenticated_probe_never_sends_the_password_in_the_clear(self):
        s = self.store(name="store-plain", listeners=[("smtp", "smtp", "none", "127.0.0.1", 0),
                                                      ("lmtp", "lmtp", "none", "127.0.0.1", 0)])
        # No [tls] section: the daemon has no certificate and does not offer STARTTLS.
        with open(s.backend.config) as f:
            sections = f.read().split("\n[")
        with open(s.backend.config, "w") as f:
            f.write("\n[".join(x for x in sections if not x.startswith("tls]")))
        self.assertRc(0, s.run("start"))
        with smtplib.SMTP("127.0.0.1", s.port("smtp"), timeout=10) as c:
            c.ehlo()
            self.assertFalse(c.has_extn("starttls"))
        self.assertRc(0, s.run("monitor", depth=10))
        r = s.run("monitor", depth=20)
        self.assertRc(1, r, "does not offer STARTTLS")
        self.assertIn("not sent over an unencrypted connection", exit_reason(r))

    def test_killed_daemon_is_failed_then_restartable(self):
        s = self.store()
        self.assertRc(0, s.run("start"))
        pid = s.pid()
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        # A recurring monitor saw it die: failed (1), not "cleanly stopped".
        self.assertRc(1, s.run("monitor"), "not running (the daemon died)")
        # A probe only asks whether it runs here.
        self.assertRc(7, s.run("monitor", interval_ms=0))
        # The stale pid file does not block a restart.
        self.assertRc(0, s.run("start"))
        self.assertNotEqual(pid, s.pid())
        self.assertRc(0, s.run("monitor", depth=10))

    def test_stale_pid_file_of_another_program_means_not_running(self):
        s = self.store()
        os.makedirs(s.backend.runtime_dir, exist_ok=True)
        other = subprocess.Popen(["sleep", "300"])
        self.others.append(other)
        with open(s.pid_file, "w") as f:
            f.write("%d\n" % other.pid)
        self.assertRc(7, s.run("monitor"))
        self.assertRc(7, s.run("monitor", interval_ms=0))
        self.assertRc(0, s.run("stop"))
        self.assertIsNone(other.poll(), "stop must never signal a pid that is not the daemon")
        self.assertRc(0, s.run("start"))
        self.assertIsNone(other.poll())
        self.assertNotEqual(other.pid, s.pid())
        self.assertTrue(is_backend(s.pid()))

    def test_service_address_in_use_fails_start_with_reason(self):
        port = free_port()
        s = self.store(listeners=[("smtp", "smtp", "none", "127.0.0.1", port),
                                  ("lmtp", "lmtp", "none", "127.0.0.1", 0)])
        squatter = socket.socket()
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        try:
            r = s.run("start")
            self.assertRc(1, r, "127.0.0.1:%d is already in use by pid %d" % (port, os.getpid()))
            self.assertIsNone(s.pid())
        finally:
            squatter.close()
        self.assertRc(0, s.run("start"))
        self.assertRc(0, s.run("monitor", depth=10))

    def test_service_address_not_on_this_node_fails_start(self):
        # 192.0.2.1 (TEST-NET-1) is on no interface: the daemon cannot bind it (exit 69).
        s = self.store(listeners=[("lmtp", "lmtp", "none", "192.0.2.1", free_port())],
                       service_address="192.0.2.1")
        s.params["probe_account"] = ""
        r = s.run("start")
        self.assertRc(1, r, "could not bind its listeners (exit 69)")
        self.assertIsNone(s.pid())

    def test_missing_and_invalid_configuration(self):
        s = self.store()
        p = dict(s.params)
        # Missing data directory: not installed here (5); a probe says not running.
        shutil.rmtree(s.backend.data_dir)
        self.assertRc(5, s.run("validate-all"), "does not exist on this node")
        self.assertRc(5, s.run("start"))
        self.assertRc(7, s.run("monitor", interval_ms=0))
        os.makedirs(s.backend.data_dir)
        # Data directory that must be a mount point but is not.
        self.assertRc(5, s.run("start", params=dict(p, require_mount="true")),
                      "is not a mounted filesystem")
        # Missing configuration file.
        missing = dict(p, config=os.path.join(s.backend.dir, "nope.toml"))
        self.assertRc(5, s.run("start", params=missing), "does not exist")
        self.assertRc(7, s.run("monitor", params=missing, interval_ms=0))
        # Missing program (and ocf-tester's way of saying so).
        nobin = dict(p, binary="/nonexistent/hamail-backend")
        self.assertRc(5, s.run("start", params=nobin), "is not installed")
        self.assertRc(7, s.run("monitor", params=nobin, interval_ms=0))
        self.assertRc(7, s.run("monitor", interval_ms=0, extra={"OCF_TESTER_FAIL_HAVE_BINARY": "1"}))
        # Parameters that are wrong everywhere: not configured (6), but never on a probe.
        for bad, why in ((dict(p, store=None), "required parameter 'store'"),
                         (dict(p, store="store-b"), "is for store 'store-a'"),
                         (dict(p, store="Bad Name"), "not a valid store name"),
                         (dict(p, pid_file="/tmp/elsewhere.pid"), "differs from the configuration"),
                         (dict(p, config="relative.toml"), "not an absolute path"),
                         (dict(p, require_mount="maybe"), "must be a boolean"),
                         (dict(p, service_address="10.9.9.9"), "no listener")):
            self.assertRc(6, s.run("validate-all", params=bad), why)
            self.assertRc(6, s.run("start", params=bad), why)
            self.assertRc(7, s.run("monitor", params=bad, interval_ms=0))
            self.assertRc(0, s.run("stop", params=bad))
        # A configuration the daemon rejects.
        with open(s.backend.config, "a") as f:
            f.write("[smtp]\nmax_recipients = -3\n")
        self.assertRc(6, s.run("validate-all"), "invalid configuration")
        self.assertRc(6, s.run("start"))
        self.assertRc(7, s.run("monitor", interval_ms=0))
        self.assertIsNone(s.pid())

    @unittest.skipUnless(os.geteuid() == 0, "mounting needs root")
    def test_require_mount_accepts_a_mounted_volume(self):
        s = self.store()
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "hamail-test", s.backend.data_dir],
                       check=True)
        try:
            self.assertRc(0, s.run("start", params=dict(s.params, require_mount="true",
                                                       data_dir=s.backend.data_dir)))
            self.assertRc(0, s.run("monitor", depth=10))
            self.assertRc(0, s.run("stop"))
        finally:
            subprocess.run(["umount", s.backend.data_dir], check=False)

    # ------------------------------------------------------------------ stop

    def test_stop_is_idempotent_and_removes_stale_pid_file(self):
        s = self.store()
        self.assertRc(0, s.run("stop"))
        os.makedirs(s.backend.runtime_dir, exist_ok=True)
        with open(s.pid_file, "w") as f:
            f.write("999999\n")
        self.assertRc(0, s.run("stop"))
        self.assertFalse(os.path.exists(s.pid_file))

    def test_stop_escalates_when_a_session_holds_the_drain(self):
        # drain_timeout 60 s, stop timeout 6 s: the agent must SIGKILL at ~4 s.
        s = self.store(limits={"drain_timeout": "60s"})
        self.assertRc(0, s.run("start"))
        pid = s.pid()
        c = smtplib.SMTP("127.0.0.1", s.port("lmtp"), timeout=30)
        c._host = "127.0.0.1"
        c.docmd("LHLO", "client.test")
        c.docmd("MAIL", "FROM:<a@test>")
        c.docmd("RCPT", "TO:<probe@test>")
        self.assertEqual(354, c.docmd("DATA")[0])
        c.send(b"Subject: never finished\r\n\r\nhalf a message")
        t0 = time.monotonic()
        r = s.run("stop", timeout_ms=6000)
        took = time.monotonic() - t0
        self.assertRc(0, r)
        self.assertFalse(alive(pid))
        self.assertGreater(took, 3.0, "it waited for the drain first")
        self.assertLess(took, 6.0, "it finished inside the stop timeout")
        self.assertFalse(os.path.exists(s.pid_file))
        c.close()
        self.assertEqual([], s.backend.messages("probe"), "an unacknowledged message is not stored")

    def test_hung_daemon_fails_the_probe_within_probe_timeout(self):
        # A daemon that accepts connections but never answers (SIGSTOP: the kernel still
        # completes the handshakes): depth 0 sees a live process listening; depth 10 must fail
        # after probe_timeout, not after the whole 30 s monitor timeout.
        s = self.store()
        self.assertRc(0, s.run("start"))
        pid = s.pid()
        os.kill(pid, signal.SIGSTOP)
        try:
            self.assertRc(0, s.run("monitor", depth=0))
            params = dict(s.params, probe_timeout="2")
            t0 = time.monotonic()
            self.assertRc(1, s.run("monitor", depth=10, params=params, timeout_ms=30000),
                          "probe failed")
            took = time.monotonic() - t0
            self.assertLess(took, 10.0, "the probe waited %.1f s" % took)
            self.assertRc(6, s.run("monitor", depth=10, params=dict(s.params, probe_timeout="-1")),
                          "probe_timeout")
        finally:
            os.kill(pid, signal.SIGCONT)
        self.assertRc(0, s.run("monitor", depth=10))

    def test_stop_handles_a_stopped_process(self):
        s = self.store()
        self.assertRc(0, s.run("start"))
        pid = s.pid()
        os.kill(pid, signal.SIGSTOP)
        t0 = time.monotonic()
        self.assertRc(0, s.run("stop", timeout_ms=6000))
        self.assertLess(time.monotonic() - t0, 6.0)
        self.assertFalse(alive(pid))
        self.assertRc(7, s.run("monitor"))

    # ------------------------------------------------------------------ two stores, reload

    def test_two_stores_on_one_node_are_independent(self):
        a = self.store(name="store-a")
        b = self.store(name="store-b")
        self.assertRc(0, a.run("start"))
        self.assertRc(0, b.run("start"))
        self.assertNotEqual(a.pid(), b.pid())
        self.assertRc(0, a.run("monitor", depth=20))
        self.assertRc(0, b.run("monitor", depth=20))
        b_pid = b.pid()
        self.assertRc(0, a.run("stop"))
        self.assertRc(7, a.run("monitor"))
        self.assertRc(0, b.run("monitor", depth=10))
        self.assertEqual(b_pid, b.pid())
        self.assertTrue(alive(b_pid))
        self.assertRc(0, a.run("start"))
        self.assertRc(0, b.run("stop"))
        self.assertRc(0, a.run("monitor", depth=10))

    def test_reload_signals_the_daemon(self):
        s = self.store()
        self.assertRc(7, s.run("reload"))
        self.assertRc(0, s.run("start"))
        pid = s.pid()
        self.assertRc(0, s.run("reload"))
        deadline = time.monotonic() + 5
        while "SIGHUP" not in s.output() and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertIn("SIGHUP", s.output())
        self.assertEqual(pid, s.pid())
        with open(s.backend.config, "a") as f:
            f.write("[smtp]\nmax_recipients = -3\n")
        self.assertRc(6, s.run("reload"), "not reloaded")
        self.assertTrue(alive(pid), "a refused reload leaves the daemon running")

    # ------------------------------------------------------------------ installation

    def test_cmake_install_puts_the_agent_where_pacemaker_looks(self):
        build = os.environ.get("HAMAIL_BUILD_DIR")
        if not build:
            self.skipTest("HAMAIL_BUILD_DIR not set")
        dest = tempfile.mkdtemp(prefix="hamail-install-")
        self.addCleanup(shutil.rmtree, dest, True)
        r = subprocess.run(["cmake", "--install", build], env=dict(os.environ, DESTDIR=dest),
                           capture_output=True, text=True)
        self.assertEqual(0, r.returncode, r.stderr)
        agent = os.path.join(dest, "usr/lib/ocf/resource.d/hamail/backend")
        self.assertTrue(os.access(agent, os.X_OK), r.stdout)
        self.assertEqual(0o755, os.stat(agent).st_mode & 0o777)
        m = subprocess.run([agent, "meta-data"], capture_output=True, text=True)
        self.assertEqual(0, m.returncode)
        self.assertIn('<resource-agent name="backend"', m.stdout)

    # ------------------------------------------------------------------ crm_resource

    @unittest.skipUnless(os.geteuid() == 0 and shutil.which("crm_resource") and shutil.which("unshare"),
                         "needs root, crm_resource and unshare")
    def test_crm_resource_validate_force_start_check_stop(self):
        s = self.store()
        # Pacemaker looks for agents in /usr/lib/ocf/resource.d only: give it one, with the
        # build's agent as hamail/backend, in a private mount namespace (nothing is installed).
        root = tempfile.mkdtemp(prefix="hamail-ocf-root-")
        self.addCleanup(shutil.rmtree, root, True)
        for provider in os.listdir("/usr/lib/ocf/resource.d"):
            os.symlink(os.path.join("/usr/lib/ocf/resource.d", provider), os.path.join(root, provider))
        os.makedirs(os.path.join(root, "hamail"))
        shutil.copy(AGENT, os.path.join(root, "hamail", "backend"))
        cib = os.path.join(root, "cib.xml")
        with open(cib, "w") as f:
            subprocess.run(["cibadmin", "--empty"], stdout=f, check=True)
        nvpairs = "".join('<nvpair id="rsc-%s" name="%s" value="%s"/>' % (k, k, v)
                          for k, v in s.params.items())
        subprocess.run(["cibadmin", "-C", "-o", "resources", "-X",
                        '<primitive id="rsc" class="ocf" provider="hamail" type="backend">'
                        '<instance_attributes id="rsc-ia">%s</instance_attributes></primitive>' % nvpairs],
                       env=dict(os.environ, CIB_file=cib), check=True, capture_output=True)
        options = " ".join("--option '%s=%s'" % (k, v) for k, v in s.params.items())
        script = """
set -u
mount --bind {root} /usr/lib/ocf/resource.d
export CIB_file={cib}
step() {{ name=$1; shift; "$@" >/dev/null 2>&1; echo "$name $?"; }}
step validate-class crm_resource --validate --class ocf --provider hamail --agent backend {options}
step validate-bad crm_resource --validate --class ocf --provider hamail --agent backend --option store=store-a --option config=/nonexistent.toml --option binary={binary}
step validate-r crm_resource -r rsc --validate
step force-start crm_resource -r rsc --force-start
step force-check crm_resource -r rsc --force-check
step force-check-20 crm_resource -r rsc --force-check=20
step force-stop crm_resource -r rsc --force-stop
step force-check-stopped crm_resource -r rsc --force-check
""".format(root=root, cib=cib, options=options, binary=BACKEND)
        r = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                           capture_output=True, text=True, timeout=120)
        got = dict(line.split() for line in r.stdout.splitlines() if line.strip())
        # crm_resource exits with Pacemaker's codes: 0 ok, 7 not running, 5 not installed.
        self.assertEqual({"validate-class": "0", "validate-bad": "5", "validate-r": "0",
                          "force-start": "0", "force-check": "0", "force-check-20": "0",
                          "force-stop": "0", "force-check-stopped": "7"}, got, r.stderr)
        self.assertIsNone(s.pid())


if __name__ == "__main__":
    unittest.main()
