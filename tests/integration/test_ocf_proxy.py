"""ocf:hamail:proxy against the real hamail-proxy in front of one real hamail-backend (a file
directory): ocf-tester, crm_resource on an offline CIB, and the behaviour the cluster depends on
(exit codes, monitor depths 0/10/20, stale pid files, stop escalation)."""

import imaplib
import os
import shutil
import signal
import ssl
import subprocess
import tempfile
import time
import unittest

from hamail_harness import BACKEND, PROXY, Backend, Proxy, free_port, ssha512

AGENT = os.environ.get("HAMAIL_OCF_PROXY", "")
DTD = "/usr/share/resource-agents/ra-api-1.dtd"
RNG = "/usr/share/resource-agents/metadata.rng"
PASSWORDS = {"probe": "probe-secret-1", "proxy": "proxy-secret"}
ACCOUNTS = [{"id": user, "login": user, "address": "%s@example.org" % user,
             "password": ssha512(pw)} for user, pw in PASSWORDS.items()]
IMAP_PORT = free_port()


def is_proxy(pid):
    try:
        return os.path.realpath("/proc/%d/exe" % pid) == os.path.realpath(PROXY)
    except OSError:
        return False


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def exit_reason(r):
    return "\n".join(l[len("ocf-exit-reason:"):] for l in r.stderr.splitlines()
                     if l.startswith("ocf-exit-reason:"))


class Frontend:
    """A proxy configuration (via the harness, not started by it) plus the agent's parameters."""

    def __init__(self, tmp, backend_ca, accounts, limits=None, listeners=None):
        proxy_pw = os.path.join(tmp, "proxy.secret")
        with open(proxy_pw, "w") as f:
            f.write(PASSWORDS["proxy"] + "\n")
        self.proxy = Proxy(
            {"login": "proxy", "password_file": proxy_pw, "tls": "starttls", "ca_file": backend_ca,
             "connect_timeout": "1s", "login_timeout": "3s", "retry_for": "1s",
             "retry_delay": "100ms"},
            {"type": "file", "accounts_file": accounts},
            stores=[{"name": "store-a", "address": "127.0.0.1", "imap_port": IMAP_PORT}],
            limits=limits or {"drain_timeout": "20s"}, listeners=listeners)
        self.secret = os.path.join(self.proxy.dir, "probe.secret")
        with open(self.secret, "w") as f:
            f.write(PASSWORDS["probe"] + "\n")
        os.chmod(self.secret, 0o600)
        self.pid_file = os.path.join(self.proxy.runtime_dir, "hamail-proxy.pid")
        # No pid_file: the agent takes the configuration's ([proxy] runtime_dir).
        self.params = {
            "config": self.proxy.config,
            "binary": PROXY,
            "probe_user": "probe",
            "probe_password_file": self.secret,
            "ca_file": self.proxy.ca,
        }

    def env(self, params=None, interval_ms=10000, timeout_ms=20000, depth=None):
        env = {k: v for k, v in os.environ.items() if not k.startswith("OCF_")}
        env.update({"OCF_ROOT": "/usr/lib/ocf", "OCF_RESOURCE_INSTANCE": "frontend:0",
                    "OCF_RA_VERSION_MAJOR": "1", "OCF_RA_VERSION_MINOR": "1",
                    "OCF_RESKEY_CRM_meta_timeout": str(timeout_ms),
                    "OCF_RESKEY_CRM_meta_interval": str(interval_ms)})
        for k, v in (self.params if params is None else params).items():
            if v is not None:
                env["OCF_RESKEY_" + k] = v
        if depth is not None:
            env["OCF_CHECK_LEVEL"] = str(depth)
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
        with open(os.path.join(self.proxy.runtime_dir, "listeners")) as f:
            for line in f:
                name, _proto, _addr, port = line.split()
                if name == listener:
                    return int(port)
        raise KeyError(listener)

    def cleanup(self):
        # Stop by the agent, then make sure by pid: nothing this test started survives.
        pid = self.pid()
        subprocess.run([AGENT, "stop"], env=self.env(timeout_ms=10000), capture_output=True)
        if pid and alive(pid) and is_proxy(pid):
            os.kill(pid, signal.SIGKILL)
        self.proxy.cleanup()


@unittest.skipUnless(AGENT and PROXY and BACKEND,
                     "HAMAIL_OCF_PROXY / HAMAIL_PROXY / HAMAIL_BACKEND not set")
class ocf_proxy_test(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="hamail-ocf-proxy-")
        # The store behind the proxy: it trusts the proxy's login on its IMAP listener.
        trust = {"trusted_proxies": ["127.0.0.1"], "proxy_logins": ["proxy"]}
        cls.backend = Backend(ACCOUNTS, store="store-a", imap=trust,
                              listeners=(("imap", "imap", "starttls", "127.0.0.1", IMAP_PORT),
                                         ("lmtp", "lmtp", "none", "127.0.0.1", 0))).start()

    @classmethod
    def tearDownClass(cls):
        cls.backend.stop()
        cls.backend.cleanup()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def setUp(self):
        self.frontends = []
        self.others = []  # processes this test started besides the daemons

    def tearDown(self):
        for f in self.frontends:
            f.cleanup()
        for p in self.others:
            if p.poll() is None:
                p.kill()
                p.wait()

    def frontend(self, **kw):
        f = Frontend(self.tmp, self.backend.ca, self.backend.accounts_file, **kw)
        self.frontends.append(f)
        return f

    def assertRc(self, want, r, reason_has=None):
        self.assertEqual(want, r.returncode, "rc %d, stderr:\n%s" % (r.returncode, r.stderr))
        if want not in (0, 7):
            self.assertTrue(exit_reason(r), "a failure must print ocf-exit-reason: " + r.stderr)
        if reason_has:
            self.assertIn(reason_has, exit_reason(r))

    # ------------------------------------------------------------------ conformance

    def test_ocf_tester_passes_every_action(self):
        f = self.frontend()
        args = ["ocf-tester", "-n", "frontend"]
        for k, v in f.params.items():
            args += ["-o", "%s=%s" % (k, v)]
        r = subprocess.run(args + [AGENT], capture_output=True, text=True, timeout=300)
        self.assertEqual(0, r.returncode, r.stdout + r.stderr)
        self.assertIn("passed all tests", r.stdout)
        self.assertIsNone(f.pid(), "ocf-tester ends with the resource stopped")

    def test_meta_data_is_valid_ocf_1_0_dtd_and_1_1_schema(self):
        r = subprocess.run([AGENT, "meta-data"], capture_output=True, text=True)
        self.assertEqual(0, r.returncode)
        xml = r.stdout
        self.assertIn('<resource-agent name="proxy"', xml)
        self.assertIn("<version>1.1</version>", xml)
        for flags in (["--dtdvalid", DTD], ["--relaxng", RNG]):
            v = subprocess.run(["xmllint", "--noout"] + flags + ["-"], input=xml, capture_output=True,
                               text=True)
            self.assertEqual(0, v.returncode, "%s: %s" % (flags, v.stderr))
        for name in ("config", "binary", "pid_file", "user", "probe_user", "probe_password_file",
                     "ca_file", "probe_tls_name"):
            self.assertIn('<parameter name="%s"' % name, xml)
        for name in ("store", "data_dir", "service_address"):
            self.assertNotIn('<parameter name="%s"' % name, xml, "a clone has no store of its own")
        for depth in ("0", "10", "20"):
            self.assertRegex(xml, r'<action name="monitor" timeout="\d+s" interval="\d+s" depth="%s"' % depth)
        for action in ("start", "stop", "reload", "validate-all", "meta-data"):
            self.assertIn('<action name="%s"' % action, xml)

    # ------------------------------------------------------------------ start / monitor

    def test_start_monitor_depths_reload_and_stop(self):
        f = self.frontend()
        self.assertRc(7, f.run("monitor"))
        self.assertRc(7, f.run("monitor", interval_ms=0))
        self.assertRc(0, f.run("start"))
        pid = f.pid()
        self.assertTrue(pid and is_proxy(pid))
        self.assertRc(0, f.run("start"))
        self.assertEqual(pid, f.pid(), "a second start must not start a second daemon")
        self.assertEqual(pid, os.getsid(pid), "detached: its own session")
        for depth in (0, 10, 20):
            self.assertRc(0, f.run("monitor", depth=depth))
        # Depth 20 logged in through the proxy: a client can too.
        c = imaplib.IMAP4("127.0.0.1", f.port("imap"), timeout=10)
        c.starttls(ssl.create_default_context(cafile=f.proxy.ca))
        self.assertEqual("OK", c.login("probe", PASSWORDS["probe"])[0])
        c.logout()
        self.assertRc(0, f.run("reload"))
        self.assertRc(0, f.run("monitor"))
        self.assertEqual(pid, f.pid(), "reload keeps the daemon")
        self.assertRc(0, f.run("stop"))
        self.assertFalse(alive(pid))
        self.assertFalse(os.path.exists(f.pid_file))
        self.assertRc(0, f.run("stop"))  # stopping a stopped resource succeeds
        self.assertRc(7, f.run("monitor"))
        self.assertRc(7, f.run("reload"))

    def test_ready_503_fails_depth_10_but_not_depth_0(self):
        f = self.frontend()
        self.assertRc(0, f.run("start"))
        self.backend.stop()
        try:
            self.assertRc(0, f.run("monitor"))
            r = f.run("monitor", depth=10)
            self.assertRc(1, r, "GET /ready answered 503")
            self.assertIn("no store answers", exit_reason(r))
            self.assertRc(1, f.run("monitor", depth=20), "GET /ready answered 503")
        finally:
            self.backend.start()
        self.assertRc(0, f.run("monitor", depth=10))

    def test_wrong_probe_password_fails_depth_20_with_reason(self):
        f = self.frontend()
        self.assertRc(0, f.run("start"))
        wrong = os.path.join(f.proxy.dir, "wrong.secret")
        with open(wrong, "w") as out:
            out.write("not-the-password\n")
        params = dict(f.params, probe_password_file=wrong)
        self.assertRc(0, f.run("monitor", params=params, depth=10))
        self.assertRc(1, f.run("monitor", params=params, depth=20), "IMAP login as probe failed")
        # A certificate the CA file does not vouch for fails before the password is sent.
        params = dict(f.params, ca_file=self.backend.ca)
        self.assertRc(1, f.run("monitor", params=params, depth=20), "certificate verification failed")

    def test_without_http_listener_depth_10_checks_as_depth_0(self):
        f = self.frontend(listeners=(("imap", "imap", "starttls", "127.0.0.1", 0),))
        self.assertRc(0, f.run("start"))
        r = f.run("monitor", depth=10)
        self.assertRc(0, r)
        self.assertIn("no http listener", r.stderr)

    def test_killed_proxy_is_failed_then_restartable(self):
        f = self.frontend()
        self.assertRc(0, f.run("start"))
        pid = f.pid()
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        # A recurring monitor saw it die (1); a probe only asks whether it runs here (7).
        self.assertRc(1, f.run("monitor"), "not running (the daemon died)")
        self.assertRc(7, f.run("monitor", interval_ms=0))
        self.assertRc(0, f.run("start"))
        self.assertNotEqual(pid, f.pid())
        self.assertRc(0, f.run("monitor", depth=10))

    def test_stale_pid_file_of_another_program_means_not_running(self):
        f = self.frontend()
        os.makedirs(f.proxy.runtime_dir, exist_ok=True)
        other = subprocess.Popen(["sleep", "300"])
        self.others.append(other)
        with open(f.pid_file, "w") as out:
            out.write("%d\n" % other.pid)
        self.assertRc(7, f.run("monitor"))
        self.assertRc(7, f.run("monitor", interval_ms=0))
        self.assertRc(0, f.run("stop"))
        self.assertIsNone(other.poll(), "stop must never signal a pid that is not the daemon")
        self.assertRc(0, f.run("start"))
        self.assertIsNone(other.poll())
        self.assertTrue(is_proxy(f.pid()))

    def test_missing_and_invalid_configuration(self):
        f = self.frontend()
        p = f.params
        self.assertRc(5, f.run("validate-all", params=dict(p, config="/nonexistent/proxy.toml")),
                      "does not exist")
        self.assertRc(5, f.run("start", params=dict(p, binary="/nonexistent/hamail-proxy")),
                      "is not installed")
        self.assertRc(6, f.run("validate-all", params=dict(p, config="relative.toml")),
                      "is not an absolute path")
        self.assertRc(6, f.run("validate-all", params=dict(p, pid_file="/run/elsewhere.pid")),
                      "differs from the configuration's")
        self.assertRc(0, f.run("validate-all", params=dict(p, pid_file=f.pid_file)))
        self.assertRc(6, f.run("validate-all", params=dict(p, probe_password_file=None)),
                      "probe_password_file is not")
        self.assertRc(5, f.run("validate-all", params=dict(p, user="no-such-user-hamail")),
                      "does not exist here")
        bad = os.path.join(f.proxy.dir, "bad.toml")
        with open(bad, "w") as out:
            out.write("[proxy]\nname = 42\n")
        self.assertRc(6, f.run("validate-all", params=dict(p, config=bad)),
                      "invalid configuration")
        # Probes never answer 5 or 6 (a 6 would stop the clone on every node).
        self.assertRc(7, f.run("monitor", interval_ms=0, params=dict(p, config="relative.toml")))
        self.assertRc(7, f.run("monitor", interval_ms=0,
                               params=dict(p, binary="/nonexistent/hamail-proxy")))
        self.assertRc(0, f.run("validate-all"))

    # ------------------------------------------------------------------ stop

    def test_stop_escalates_when_a_session_holds_the_drain(self):
        # drain_timeout 60 s, stop timeout 6 s: the agent must SIGKILL at ~4 s.
        f = self.frontend(limits={"drain_timeout": "60s"})
        self.assertRc(0, f.run("start"))
        pid = f.pid()
        c = imaplib.IMAP4("127.0.0.1", f.port("imap"), timeout=30)
        c.starttls(ssl.create_default_context(cafile=f.proxy.ca))
        c.login("probe", PASSWORDS["probe"])  # a proxied session: the drain waits for it
        t0 = time.monotonic()
        r = f.run("stop", timeout_ms=6000)
        took = time.monotonic() - t0
        self.assertRc(0, r)
        self.assertFalse(alive(pid))
        self.assertGreater(took, 3.0, "it waited for the drain first")
        self.assertLess(took, 6.0, "it finished inside the stop timeout")
        self.assertIn("SIGKILL", r.stderr)
        self.assertFalse(os.path.exists(f.pid_file))
        c.shutdown()

    # ------------------------------------------------------------------ crm_resource

    @unittest.skipUnless(os.geteuid() == 0 and shutil.which("crm_resource") and shutil.which("unshare"),
                         "needs root, crm_resource and unshare")
    def test_crm_resource_validate_force_start_check_stop(self):
        f = self.frontend()
        # Pacemaker looks for agents in /usr/lib/ocf/resource.d only: give it one, with the
        # build's agent as hamail/proxy, in a private mount namespace (nothing is installed).
        root = tempfile.mkdtemp(prefix="hamail-ocf-root-")
        self.addCleanup(shutil.rmtree, root, True)
        for provider in os.listdir("/usr/lib/ocf/resource.d"):
            os.symlink(os.path.join("/usr/lib/ocf/resource.d", provider), os.path.join(root, provider))
        os.makedirs(os.path.join(root, "hamail"))
        shutil.copy(AGENT, os.path.join(root, "hamail", "proxy"))
        cib = os.path.join(root, "cib.xml")
        with open(cib, "w") as out:
            subprocess.run(["cibadmin", "--empty"], stdout=out, check=True)
        nvpairs = "".join('<nvpair id="rsc-%s" name="%s" value="%s"/>' % (k, k, v)
                          for k, v in f.params.items())
        subprocess.run(["cibadmin", "-C", "-o", "resources", "-X",
                        '<clone id="frontend-clone"><primitive id="frontend" class="ocf" '
                        'provider="hamail" type="proxy"><instance_attributes id="rsc-ia">%s'
                        '</instance_attributes></primitive></clone>' % nvpairs],
                       env=dict(os.environ, CIB_file=cib), check=True, capture_output=True)
        options = " ".join("--option '%s=%s'" % (k, v) for k, v in f.params.items())
        script = """
set -u
mount --bind {root} /usr/lib/ocf/resource.d
export CIB_file={cib}
step() {{ name=$1; shift; "$@" >/dev/null 2>&1; echo "$name $?"; }}
step validate-class crm_resource --validate --class ocf --provider hamail --agent proxy {options}
step validate-bad crm_resource --validate --class ocf --provider hamail --agent proxy --option config=/nonexistent.toml --option binary={binary}
step validate-r crm_resource -r frontend --validate
step force-start crm_resource -r frontend --force-start
step force-check crm_resource -r frontend --force-check
step force-check-10 crm_resource -r frontend --force-check=10
step force-check-20 crm_resource -r frontend --force-check=20
step force-stop crm_resource -r frontend --force-stop
step force-check-stopped crm_resource -r frontend --force-check
""".format(root=root, cib=cib, options=options, binary=PROXY)
        r = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                           capture_output=True, text=True, timeout=120)
        got = dict(line.split() for line in r.stdout.splitlines() if line.strip())
        # crm_resource exits with Pacemaker's codes: 0 ok, 7 not running, 5 not installed.
        self.assertEqual({"validate-class": "0", "validate-bad": "5", "validate-r": "0",
                          "force-start": "0", "force-check": "0", "force-check-10": "0",
                          "force-check-20": "0", "force-stop": "0", "force-check-stopped": "7"},
                         got, r.stderr)
        self.assertIsNone(f.pid())


if __name__ == "__main__":
    unittest.main()
