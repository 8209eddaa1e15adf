"""hamail-setup (appliance-image/rootfs/usr/sbin/hamail-setup) without a VM: the answers it
accepts and refuses, and the files it writes into a scratch root, twice (the second run must
change nothing). What it does on a real node — DRBD, corosync, the CIB — is the appliance VM
test's job (docs/appliance.md).

Run: cd tests/appliance && python3 -m unittest -v test_setup
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.machinery
import importlib.util
import io
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
import unittest
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SETUP = REPO / "appliance-image" / "rootfs" / "usr" / "sbin" / "hamail-setup"
PAIR = REPO / "crm-config" / "layouts" / "pair.toml"


def load_setup():
    loader = importlib.machinery.SourceFileLoader("hamail_setup", str(SETUP))
    spec = importlib.util.spec_from_loader("hamail_setup", loader)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["hamail_setup"] = mod
    loader.exec_module(mod)
    return mod


hs = load_setup()

# One certificate for every TLS file of a directory node (the steps read only the replicator's
# subject; slapd itself is the VM test's), made once for the module.
_TLS = tempfile.TemporaryDirectory()
subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-nodes", "-days", "2", "-subj", "/O=Example Org/CN=replicator",
                "-keyout", f"{_TLS.name}/key", "-out", f"{_TLS.name}/crt"],
               check=True, capture_output=True)


class Scratch(unittest.TestCase):
    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory()
        self.dir = Path(self._tmp.name)
        (self.dir / "layout.toml").write_bytes(PAIR.read_bytes())
        (self.dir / "authkey").write_bytes(os.urandom(256))
        tls = self.dir / "ldap-tls"
        tls.mkdir()
        for name in hs.DIRECTORY_TLS_FILES:
            shutil.copy(f"{_TLS.name}/{'key' if name.endswith('.key') else 'crt'}", tls / name)
        (self.dir / "ldap-admin.secret").write_text("directory admin secret\n")
        (self.dir / "files").mkdir()
        (self.dir / "files" / "proxy.toml").write_text("[proxy]\n")
        self.root = self.dir / "root"
        (self.root / "sys/class/net/ens3/device").mkdir(parents=True)
        (self.root / "sys/class/net/lo").mkdir(parents=True)

    def tearDown(self):
        self._tmp.cleanup()

    def setup_file(self, body: str) -> Path:
        p = self.dir / "setup.toml"
        p.write_text(body)
        return p

    def good(self, extra: str = "") -> Path:
        return self.setup_file('[setup]\nnode = "node1"\nlayout = "layout.toml"\n'
                               'corosync_authkey = "authkey"\n' + self.DIRECTORY + extra)

    # pair.toml's nodes are directory nodes and run proxies: what they need for that.
    DIRECTORY = ('directory_tls = "ldap-tls"\ndirectory_admin_password = "ldap-admin.secret"\n'
                 'files = "files"\n')

    def run_main(self, *argv: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            rc = hs.main(list(argv))
        return rc, out.getvalue(), err.getvalue()


class Answers(Scratch):
    def test_a_good_file_is_read_with_paths_relative_to_it(self):
        a = hs.parse_setup(self.good('prefix = 16\ngateway = "192.0.2.1"\n'))
        self.assertEqual(a.node, "node1")
        self.assertEqual(a.layout_path, self.dir / "layout.toml")
        self.assertEqual(a.authkey_path, self.dir / "authkey")
        self.assertEqual((a.prefix, a.gateway, a.interface), (16, "192.0.2.1", None))

    def test_every_problem_is_reported_at_once(self):
        p = self.setup_file('[setup]\nnode = "Node_1"\nlayout = "nope.toml"\nprefix = 40\n'
                            'gateway = "300.1.1.1"\ncorosync_authkey = "layout.toml"\n'
                            'colour = "red"\n[extra]\n')
        with self.assertRaises(hs.SetupError) as cm:
            hs.parse_setup(p)
        lines = str(cm.exception).splitlines()
        for needle in ("extra: unknown table", "setup.colour: unknown key",
                       "setup.node: 'Node_1' is not a host name", "setup.prefix: must be",
                       "setup.gateway: '300.1.1.1' is not an IPv4 address",
                       "setup.layout:", "no such file", "setup.corosync_authkey:",
                       "128 to 1024"):
            self.assertTrue(any(needle in line for line in lines), (needle, lines))
        self.assertTrue(all(line.startswith(str(p)) for line in lines), lines)

    def test_required_keys(self):
        with self.assertRaises(hs.SetupError) as cm:
            hs.parse_setup(self.setup_file("[setup]\n"))
        for key in ("node", "layout", "corosync_authkey"):
            self.assertIn(f"setup.{key}: required", str(cm.exception))

    def test_not_toml_and_no_file(self):
        with self.assertRaisesRegex(hs.SetupError, "not valid TOML"):
            hs.parse_setup(self.setup_file("[setup\n"))
        with self.assertRaisesRegex(hs.SetupError, "cannot read"):
            hs.parse_setup(self.dir / "missing.toml")

    def test_kernel_command_line(self):
        self.assertIsNone(hs.setup_from_cmdline("root=/dev/vda1 ro quiet"))
        self.assertEqual(hs.setup_from_cmdline("quiet hamail.setup=/media/s.toml"),
                         Path("/media/s.toml"))
        with self.assertRaisesRegex(hs.SetupError, "absolute path"):
            hs.setup_from_cmdline("hamail.setup=http://example.org/s.toml")

    def test_at_boot_without_answers_it_says_what_to_do_and_changes_nothing(self):
        rc, out, _ = self.run_main("--boot", "--root", str(self.root))
        self.assertEqual(rc, 0)
        self.assertIn("not configured yet", out)
        self.assertIn("HAMAIL-SETUP", out)
        self.assertFalse((self.root / "etc").exists())

    def test_a_node_not_in_the_layout_is_refused_with_the_layouts_nodes(self):
        rc, _, err = self.run_main("--setup", str(self.setup_file(
            '[setup]\nnode = "node9"\nlayout = "layout.toml"\ncorosync_authkey = "authkey"\n')),
            "--check", "--root", str(self.root))
        self.assertEqual(rc, 1)
        self.assertIn("node 'node9' is not in the layout", err)
        self.assertIn("node1, node2", err)

    def test_a_bad_layout_is_refused_with_the_generators_message(self):
        (self.dir / "layout.toml").write_text(
            PAIR.read_text().replace('drbd = { version = "8.4" }', 'drbd = { version = "7" }'))
        rc, _, err = self.run_main("--setup", str(self.good()), "--check", "--root", str(self.root))
        self.assertEqual(rc, 1)
        self.assertIn('drbd.version must be "8.4" or "9"', err)

    def test_the_console_asks_again_until_an_answer_is_good(self):
        (self.dir / "empty.secret").write_text("\n")
        answers = iter(["", str(self.dir / "nope.toml"), str(self.dir / "layout.toml"),
                        "node7", "node2", str(self.dir / "layout.toml"), str(self.dir / "authkey"),
                        # pair.toml's node2 runs a proxy and is a directory provider:
                        str(self.dir / "nofolder"), str(self.dir / "files"),
                        str(self.dir / "files"), str(self.dir / "ldap-tls"),
                        str(self.dir / "empty.secret"), str(self.dir / "ldap-admin.secret")])
        shown: list[str] = []
        a = hs.interactive(hs.load_generator(), input_=lambda prompt: next(answers),
                           out=shown.append)
        self.assertEqual((a.node, a.layout_path, a.authkey_path),
                         ("node2", self.dir / "layout.toml", self.dir / "authkey"))
        self.assertEqual((a.files, a.directory_tls, a.directory_admin_password),
                         (self.dir / "files", self.dir / "ldap-tls",
                          self.dir / "ldap-admin.secret"))
        text = "\n".join(shown)
        self.assertIn("the path of the layout file is needed", text)
        self.assertIn("nope.toml: no such file", text)
        self.assertIn("'node7' is not one of: node1, node2", text)
        self.assertIn("a corosync key has 128 to 1024", text)
        self.assertIn("nofolder: not a folder", text)
        self.assertIn("files: missing ca.crt, server.crt, server.key, replicator.crt, "
                      "replicator.key", text)
        self.assertIn("empty.secret: empty", text)
        # The answers make a plan: the directory node has what it needs.
        self.assertTrue(hs.make_plan(a, hs.load_generator()).directory_node)


class Installed(Scratch):
    def test_it_runs_from_usr_sbin_with_the_installed_generator(self):
        # Installed as /usr/sbin/hamail-setup, the script has only three parents (a VM found
        # the source-tree lookup failing there with IndexError).
        sbin = Path(tempfile.mkdtemp(prefix="sbin-", dir="/tmp"))  # /tmp/sbin-X/: 3 parents
        self.addCleanup(shutil.rmtree, sbin)
        shutil.copy(SETUP, sbin / "hamail-setup")
        r = subprocess.run([sys.executable, str(sbin / "hamail-setup"), "--check", "--setup",
                            str(self.good()), "--root", str(self.root)],
                           capture_output=True, text=True, cwd="/",
                           env={**os.environ, "HAMAIL_CLUSTER_CONFIG":
                                str(REPO / "crm-config" / "hamail-cluster-config")})
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("stores here: store-a", r.stdout)


class DrbdMetadata(Scratch):
    """What decides whether `create-md --force` may run: only drbdadm saying there is none."""

    def node_answering(self, rc: int, stderr: str):
        class Answering(hs.Node):
            def run(self, *argv, check=True):
                return subprocess.CompletedProcess(argv, rc, "", stderr)
        return Answering(self.root, log=lambda *_: None)

    STORE = type("S", (), {"name": "store-a", "disk": "/dev/vdb"})()

    def test_metadata_found(self):
        self.assertTrue(hs.drbd_has_metadata(self.node_answering(0, ""), self.STORE))

    def test_no_metadata_on_a_fresh_disk(self):
        n = self.node_answering(255, "No valid meta data found\n")
        self.assertFalse(hs.drbd_has_metadata(n, self.STORE))

    def test_metadata_of_a_node_that_lost_power_while_primary_is_metadata(self):
        # What drbdmeta says after a power cut of the Primary (seen in the first-boot VM test).
        n = self.node_answering(255, 'Found meta data is "unclean", please apply-al first\n')
        self.assertTrue(hs.drbd_has_metadata(n, self.STORE))

    def test_any_other_failure_stops_instead_of_recreating_the_metadata(self):
        store = self.STORE
        n = self.node_answering(10, "store-a.res:5: Parse error: 'disk | device' expected\n")
        with self.assertRaisesRegex(hs.SetupError, "cannot read its DRBD metadata.*Parse error"):
            hs.drbd_has_metadata(n, store)


class Files(Scratch):
    """The steps that only write files, into the scratch root."""

    def plan_and_node(self, extra: str = ""):
        plan = hs.make_plan(hs.parse_setup(self.good(extra)), hs.load_generator())
        return plan, hs.Node(self.root, log=lambda *_: None)

    def file_steps(self, plan, node):
        for step in (hs.step_hostname, hs.step_network, hs.step_corosync, hs.step_files,
                     hs.step_drbd):
            step(plan, node)

    def test_files_are_written_once_and_a_second_run_changes_nothing(self):
        plan, node = self.plan_and_node('gateway = "192.0.2.1"\n')
        self.file_steps(plan, node)
        r = self.root
        self.assertEqual((r / "etc/hostname").read_text(), "node1\n")
        hosts = (r / "etc/hosts").read_text()
        self.assertIn("192.0.2.11\tnode1", hosts)
        self.assertIn("192.0.2.12\tnode2", hosts)
        net = (r / "etc/systemd/network/10-hamail.network").read_text()
        self.assertIn("Name=ens3", net)
        self.assertIn("Address=192.0.2.11/24", net)
        self.assertIn("Gateway=192.0.2.1", net)
        self.assertIn("cluster_name: hamail-pair", (r / "etc/corosync/corosync.conf").read_text())
        key = r / "etc/corosync/authkey"
        self.assertEqual(key.read_bytes(), (self.dir / "authkey").read_bytes())
        self.assertEqual(stat.S_IMODE(key.stat().st_mode), 0o400)
        res = (r / "etc/drbd.d/store-a.res").read_text()
        self.assertIn("DRBD 8.4 resource for hamail store 'store-a'", res)
        self.assertTrue((r / "srv/hamail/store-a").is_dir())
        self.assertGreaterEqual(len(node.changed), 6)

        again = hs.Node(self.root, log=lambda *_: None)
        self.file_steps(plan, again)
        self.assertEqual(again.changed, [])

    def test_a_changed_layout_rewrites_only_what_changed(self):
        plan, node = self.plan_and_node()
        self.file_steps(plan, node)
        (self.dir / "layout.toml").write_text(
            PAIR.read_text().replace('address = "192.0.2.12"', 'address = "192.0.2.22"'))
        plan2, node2 = self.plan_and_node()
        self.file_steps(plan2, node2)
        # node2's address is in /etc/hosts, corosync's nodelist and the DRBD peer's address.
        self.assertEqual(sorted(node2.changed), ["/etc/corosync/corosync.conf",
                                                 "/etc/drbd.d/store-a.res", "/etc/hosts"])

    def test_the_interface_must_be_named_when_there_are_several(self):
        (self.root / "sys/class/net/ens4/device").mkdir(parents=True)
        plan, node = self.plan_and_node()
        with self.assertRaisesRegex(hs.SetupError, "ens3, ens4.*setup.interface"):
            hs.step_network(plan, node)
        plan, node = self.plan_and_node('interface = "ens4"\n')
        hs.step_network(plan, node)
        self.assertIn("Name=ens4",
                      (self.root / "etc/systemd/network/10-hamail.network").read_text())

    def test_files_folder_lands_in_etc_hamail_with_secrets_not_world_readable(self):
        files = self.dir / "files"
        (files / "tls").mkdir(parents=True)
        (files / "store-a.toml").write_text("[store]\n")
        (files / "ldap.secret").write_text("pw\n")
        (files / "tls" / "server.key").write_text("key\n")
        plan, node = self.plan_and_node()
        hs.step_files(plan, node)
        mode = lambda p: stat.S_IMODE((self.root / "etc/hamail" / p).stat().st_mode)
        self.assertEqual(mode("store-a.toml"), 0o644)
        self.assertEqual(mode("ldap.secret"), 0o600)
        self.assertEqual(mode("tls/server.key"), 0o600)

    def test_the_check_mode_prints_the_whole_plan_and_writes_nothing(self):
        rc, out, _ = self.run_main("--setup", str(self.good()), "--check", "--root", str(self.root))
        self.assertEqual(rc, 0)
        for needle in ("stores here: store-a", "run drbdadm create-md --force store-a",
                       "run drbdadm primary --force store-a", "run mkfs.ext4",
                       "run systemctl enable corosync.service pacemaker.service",
                       "run systemctl start --no-block corosync.service pacemaker.service",
                       "--property=After=pacemaker.service",
                       "/usr/sbin/hamail-setup --load-cib /var/lib/hamail-setup/cluster.crm"):
            self.assertIn(needle, out)
        self.assertFalse((self.root / "etc").exists())

    def test_the_cluster_configuration_is_loaded_again_only_when_it_changed(self):
        plan, node = self.plan_and_node()
        ran = []
        node.run = lambda *argv, check=True: ran.append(argv) or subprocess.CompletedProcess(argv, 0, "", "")
        node.root = Path("/")  # as on a node, with run() recorded instead of run
        node.path = lambda p: self.root / str(p).lstrip("/")
        hs.step_cib(plan, node)
        self.assertTrue(any(a[0] == "systemd-run" for a in ran))
        crm = (self.root / "var/lib/hamail-setup/cluster.crm").read_text()
        (self.root / "var/lib/hamail-setup/cluster.crm.loaded").write_text(
            hashlib.sha256(crm.encode()).hexdigest() + "\n")
        ran.clear()
        node.changed.clear()
        hs.step_cib(plan, node)
        self.assertEqual((ran, node.changed), ([], []))

    def test_the_load_is_retried_until_pacemaker_takes_it(self):
        crm = self.dir / "cluster.crm"
        crm.write_text("primitive x ocf:pacemaker:Dummy\n")
        answers = iter([1, 0, 1, 0, 0])  # crmadmin (no DC), crmadmin, crm (fails), crmadmin, crm
        calls, clock = [], [0.0]

        def fake_run(argv, **_):
            calls.append(argv[0])
            return subprocess.CompletedProcess(argv, next(answers), "", "patch failed\n")

        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            rc = hs.load_cib(crm, run=fake_run, sleep=lambda s: clock.__setitem__(0, clock[0] + s),
                             clock=lambda: clock[0])
        self.assertEqual(rc, 0)
        self.assertEqual(calls, ["crmadmin", "crmadmin", "crm", "crmadmin", "crm"])
        self.assertIn("loaded", out.getvalue())
        self.assertEqual((self.dir / "cluster.crm.loaded").read_text().strip(),
                         hashlib.sha256(crm.read_bytes()).hexdigest())

    def test_a_controller_that_does_not_answer_is_asked_again(self):
        crm = self.dir / "cluster.crm"
        crm.write_text("primitive x ocf:pacemaker:Dummy\n")
        calls, clock = [], [0.0]

        def fake_run(argv, timeout=None, **_):
            calls.append(argv[0])
            self.assertIsNotNone(timeout, f"{argv[0]} run without a timeout")
            if len(calls) == 1:
                raise subprocess.TimeoutExpired(argv, timeout)
            return subprocess.CompletedProcess(argv, 0, "", "")

        with contextlib.redirect_stdout(io.StringIO()):
            rc = hs.load_cib(crm, run=fake_run, sleep=lambda s: clock.__setitem__(0, clock[0] + s),
                             clock=lambda: clock[0])
        self.assertEqual((rc, calls), (0, ["crmadmin", "crmadmin", "crm"]))

    def test_a_load_that_never_takes_says_so_and_records_nothing(self):
        crm = self.dir / "cluster.crm"
        crm.write_text("primitive x ocf:pacemaker:Dummy\n")
        clock = [0.0]
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            rc = hs.load_cib(crm, run=lambda argv, **_: subprocess.CompletedProcess(
                argv, 0 if argv[0] == "crmadmin" else 1, "", "ERROR: patch failed\n"),
                sleep=lambda s: clock.__setitem__(0, clock[0] + s), clock=lambda: clock[0])
        self.assertEqual(rc, 1)
        self.assertIn("ERROR: patch failed", err.getvalue())
        self.assertIn("crm configure load update", err.getvalue())
        self.assertFalse((self.dir / "cluster.crm.loaded").exists())

    def test_only_the_first_node_loads_the_cluster_configuration(self):
        body = ('[setup]\nnode = "node2"\nlayout = "layout.toml"\n'
                'corosync_authkey = "authkey"\n' + self.DIRECTORY)
        rc, out, _ = self.run_main("--setup", str(self.setup_file(body)), "--check",
                                   "--root", str(self.root))
        self.assertEqual(rc, 0)
        self.assertNotIn("configure load update", out)
        # node2 is not store-a's home: no first filesystem there either.
        self.assertNotIn("primary --force", out)
        self.assertIn("run drbdadm create-md --force store-a", out)


class SshKeysAndSbd(Scratch):
    """root's authorized_keys from the setup disk; SBD when the layout fences with fence_sbd."""

    SBD_LAYOUT_FENCING = ('[fencing]\nagent = "fence_sbd"\nmode = "shared"\n'
                          'params = { devices = "/dev/disk/by-id/virtio-hamail-sbd" }\n')

    def sbd_layout(self, devices: str = "/dev/disk/by-id/virtio-hamail-sbd"):
        text = PAIR.read_text()
        start = text.index("[fencing]")
        end = text.index("[[node]]")
        fencing = self.SBD_LAYOUT_FENCING.replace("/dev/disk/by-id/virtio-hamail-sbd", devices)
        (self.dir / "layout.toml").write_text(text[:start] + fencing + "\n" + text[end:])

    def test_authorized_keys_are_installed_private_and_once(self):
        (self.dir / "keys").write_text("ssh-ed25519 AAAAC3Nza test@host\n")
        plan = hs.make_plan(hs.parse_setup(self.good('ssh_authorized_keys = "keys"\n')),
                            hs.load_generator())
        node = hs.Node(self.root, log=lambda *_: None)
        hs.step_ssh_keys(plan, node)
        keys = self.root / "root/.ssh/authorized_keys"
        self.assertEqual(keys.read_text(), "ssh-ed25519 AAAAC3Nza test@host\n")
        self.assertEqual(stat.S_IMODE(keys.stat().st_mode), 0o600)
        self.assertEqual(stat.S_IMODE((self.root / "root/.ssh").stat().st_mode), 0o700)
        again = hs.Node(self.root, log=lambda *_: None)
        hs.step_ssh_keys(plan, again)
        self.assertEqual(again.changed, [])

    def test_with_keys_the_images_expired_password_is_locked_once(self):
        (self.dir / "keys").write_text("ssh-ed25519 AAAAC3Nza test@host\n")
        plan = hs.make_plan(hs.parse_setup(self.good('ssh_authorized_keys = "keys"\n')),
                            hs.load_generator())
        (self.root / "etc").mkdir(parents=True)
        (self.root / "etc/shadow").write_text("root:$y$j9T$x:0:0:99999:7:::\n")
        logged = []
        hs.step_ssh_keys(plan, hs.Node(self.root, dry_run=True, log=logged.append))
        self.assertIn("  run usermod --lock root", logged)
        (self.root / "etc/shadow").write_text("root:!$y$j9T$x:20791:0:99999:7:::\n")
        logged.clear()
        hs.step_ssh_keys(plan, hs.Node(self.root, dry_run=True, log=logged.append))
        self.assertFalse([line for line in logged if "usermod" in line])

    def test_a_missing_keys_file_is_refused(self):
        with self.assertRaisesRegex(hs.SetupError, "setup.ssh_authorized_keys: .*no such file"):
            hs.parse_setup(self.good('ssh_authorized_keys = "nokeys"\n'))

    def test_no_sbd_without_fence_sbd(self):
        plan = hs.make_plan(hs.parse_setup(self.good()), hs.load_generator())
        node = hs.Node(self.root, log=lambda *_: None)
        hs.step_sbd(plan, node)
        self.assertEqual(node.changed, [])
        self.assertFalse((self.root / "etc/default/sbd").exists())

    def test_sbd_configuration_and_the_header_written_by_the_first_node_only(self):
        self.sbd_layout()
        rc, out, _ = self.run_main("--setup", str(self.good()), "--check", "--root", str(self.root))
        self.assertEqual(rc, 0, out)
        self.assertIn("write /etc/default/sbd", out)
        self.assertIn("run sbd -d /dev/disk/by-id/virtio-hamail-sbd -1 10 -4 20 create", out)
        self.assertIn("run systemctl enable sbd.service", out)
        # SBD before corosync: sbd.service is RequiredBy corosync.service once enabled.
        self.assertLess(out.index("enable sbd.service"), out.index("start --no-block corosync"))
        body = ('[setup]\nnode = "node2"\nlayout = "layout.toml"\ncorosync_authkey = "authkey"\n'
                + self.DIRECTORY)
        rc, out, _ = self.run_main("--setup", str(self.setup_file(body)), "--check",
                                   "--root", str(self.root))
        self.assertEqual(rc, 0, out)
        self.assertNotIn(" create", out.replace("create-md", ""))
        plan = hs.make_plan(hs.parse_setup(self.good()), hs.load_generator())
        node = hs.Node(self.root, log=lambda *_: None)
        hs.step_sbd(plan, node)
        conf = (self.root / "etc/default/sbd").read_text()
        self.assertIn("SBD_DEVICE=/dev/disk/by-id/virtio-hamail-sbd\n", conf)
        self.assertIn("SBD_WATCHDOG_DEV=/dev/watchdog\n", conf)

    def test_the_sbd_disk_can_never_be_a_stores_disk(self):
        self.sbd_layout("/dev/vg_hamail/store-a")
        plan = hs.make_plan(hs.parse_setup(self.good()), hs.load_generator())
        with self.assertRaisesRegex(hs.SetupError, "SBD disk /dev/vg_hamail/store-a is store store-a's DRBD disk"):
            hs.step_sbd(plan, hs.Node(self.root, log=lambda *_: None))

    def test_fence_sbd_without_a_device_is_refused(self):
        self.sbd_layout("")
        plan = hs.make_plan(hs.parse_setup(self.good()), hs.load_generator())
        with self.assertRaisesRegex(hs.SetupError, "fence_sbd needs params.devices"):
            hs.step_sbd(plan, hs.Node(self.root, log=lambda *_: None))


if __name__ == "__main__":
    unittest.main()


def free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Directory(Scratch):
    """A directory node: slapd's cn=config and seed database, and a frontend node's proxy file."""

    def plan(self, extra: str = "", node: str = "node1"):
        body = self.good(extra).read_text().replace('node = "node1"', f'node = "{node}"')
        return hs.make_plan(hs.parse_setup(self.setup_file(body)), hs.load_generator())

    def test_a_directory_node_needs_the_tls_folder_and_the_admin_password(self):
        body = '[setup]\nnode = "node1"\nlayout = "layout.toml"\ncorosync_authkey = "authkey"\n'
        with self.assertRaisesRegex(hs.SetupError, "directory node.*setup.directory_tls and "
                                    "setup.directory_admin_password"):
            hs.make_plan(hs.parse_setup(self.setup_file(body)), hs.load_generator())
        # A node that is not a provider needs neither.
        (self.dir / "layout.toml").write_text(PAIR.read_text().replace(
            'enabled = true\nnodes = ["node1", "node2"]\nsuffix', 'enabled = true\n'
            'nodes = ["node1"]\nsuffix'))
        plan = hs.make_plan(hs.parse_setup(self.setup_file(body.replace("node1", "node2"))),
                            hs.load_generator())
        self.assertEqual((plan.directory_node, plan.frontend_node), (False, True))

    def test_an_incomplete_tls_folder_and_an_empty_password_are_refused(self):
        (self.dir / "ldap-tls" / "replicator.key").unlink()
        (self.dir / "ldap-admin.secret").write_text("\n")
        with self.assertRaises(hs.SetupError) as e:
            hs.parse_setup(self.good())
        self.assertIn("setup.directory_tls: " + str(self.dir / "ldap-tls") +
                      ": missing replicator.key", str(e.exception))
        self.assertIn("setup.directory_admin_password: " + str(self.dir / "ldap-admin.secret") +
                      ": empty", str(e.exception))

    def test_cn_config_and_seed_are_written_once_with_the_replicator_mapped(self):
        plan = self.plan()
        node = hs.Node(self.root, log=lambda *_: None)
        hs.step_directory(plan, node)
        state = self.root / "var/lib/hamail-setup"
        base = (state / "slapd-config.ldif").read_text()
        self.assertIn('olcAuthzRegexp: {0}"^cn=replicator,o=example org$" '
                      '"cn=replicator,dc=example,dc=org"', base)
        self.assertIn("olcRootDN: cn=admin,dc=example,dc=org", base)
        self.assertIn("olcSuffix: dc=example,dc=org", base)
        self.assertIn("olcServerID: 1", (state / "slapd-replication.ldif").read_text())
        mode = lambda p: stat.S_IMODE((self.root / p).stat().st_mode)
        self.assertEqual(mode("etc/ldap/tls/server.key"), 0o640)
        self.assertEqual(mode("var/lib/hamail-setup/slapd-config.ldif"), 0o600)
        # The same password keeps its hash: a second run changes nothing.
        again = hs.Node(self.root, log=lambda *_: None)
        hs.step_directory(plan, again)
        self.assertEqual(again.changed, [])
        # A new password is a new hash.
        (self.dir / "ldap-admin.secret").write_text("another secret\n")
        third = hs.Node(self.root, log=lambda *_: None)
        hs.step_directory(self.plan(), third)
        self.assertEqual(third.changed, ["/var/lib/hamail-setup/slapd-config.ldif"])

    def test_every_provider_is_seeded_with_the_same_entries(self):
        one, two = hs.seed_entries(self.plan()), hs.seed_entries(self.plan(node="node2"))
        self.assertEqual(one, two)
        self.assertIn("dn: dc=example,dc=org\nobjectClass: dcObject\nobjectClass: organization\n"
                      "dc: example\no: example\n", one)
        self.assertIn("dn: ou=accounts,dc=example,dc=org\n", one)
        self.assertIn("entryCSN: " + hs.SEED_CSN, one)

    def test_the_root_dn_hash_verifies_only_its_password(self):
        h = hs.ssha("secret")
        self.assertTrue(hs.ssha_matches(h, "secret"))
        self.assertFalse(hs.ssha_matches(h, "Secret"))
        self.assertFalse(hs.ssha_matches("{SSHA}not base64!", "secret"))
        self.assertEqual(hs.ere_escape("cn=a.b (x)+y"), r"cn=a\.b \(x\)\+y")

    def test_cn_config_is_never_rebuilt_under_a_running_slapd(self):
        plan = self.plan()
        ran = []
        node = hs.Node(self.root, log=lambda *_: None)
        node.run = lambda *argv, check=True: ran.append(argv) or subprocess.CompletedProcess(argv, 0, "", "")
        node.root = Path("/")  # as on a node, with run() recorded instead of run
        node.path = lambda p: self.root / str(p).lstrip("/")
        (self.root / "run/slapd").mkdir(parents=True)
        (self.root / "run/slapd/slapd.pid").write_text(f"{os.getpid()}\n")  # a live process
        with self.assertRaisesRegex(hs.SetupError, "crm resource ban directory-clone node1"):
            hs.step_directory(plan, node)
        self.assertFalse([a for a in ran if a[0] in ("slapadd", "slapmodify", "sh")], ran)
        # Stopped: it is built.
        (self.root / "run/slapd/slapd.pid").unlink()
        hs.step_directory(plan, node)
        self.assertIn("slapmodify", [a[0] for a in ran])

    def test_a_frontend_node_needs_the_proxy_configuration(self):
        (self.dir / "files" / "proxy.toml").unlink()
        plan = self.plan()
        with self.assertRaisesRegex(hs.SetupError, r"runs a proxy.*/etc/hamail/proxy.toml"):
            hs.step_frontend(plan, hs.Node(self.root, log=lambda *_: None))

    @unittest.skipUnless(os.geteuid() == 0 and shutil.which("slapd"),
                         "needs root and slapd (the test command runs as root with slapd)")
    def test_the_configuration_is_one_that_slapd_serves(self):
        """The real slapadd/slapmodify build cn=config in a scratch folder from what the step
        rendered; a real slapd serves the seed on it and takes the root DN's password."""
        scratch = self.dir / "slapd"
        scratch.mkdir()
        patch = {"SLAPD_D": str(scratch / "slapd.d"), "LDAP_DATA": str(scratch / "data"),
                 "STATE_DIR": scratch / "state", "SLAPD_RUN": str(scratch / "run"),
                 "HAMAIL_SCHEMA": str(REPO / "ldap-schema" / "hamail.ldif")}
        saved = {k: getattr(hs, k) for k in patch}
        self.addCleanup(lambda: [setattr(hs, k, v) for k, v in saved.items()])
        for k, v in patch.items():
            setattr(hs, k, v)
        (scratch / "data").mkdir()
        (scratch / "run").mkdir()
        tls = scratch / "tls"
        (self.dir / "layout.toml").write_text(PAIR.read_text().replace(
            'replicator_dn = "cn=replicator,dc=example,dc=org"\n',
            'replicator_dn = "cn=replicator,dc=example,dc=org"\n'
            f'tls = {{ cert = "{tls}/replicator.crt", key = "{tls}/replicator.key", '
            f'ca = "{tls}/ca.crt" }}\n'))
        plan = self.plan()
        rendered = hs.Node(self.root, log=lambda *_: None)
        hs.step_directory(plan, rendered)
        state = rendered.path(hs.STATE_DIR)
        shutil.copytree(rendered.path(tls), tls)  # where the layout (and so slapd) has them
        base, repl = (state / "slapd-config.ldif"), (state / "slapd-replication.ldif").read_text()
        node = hs.Node(Path("/"), log=lambda *_: None)
        hs.build_slapd_config(node, base, repl)
        hs.build_slapd_config(node, base, repl)  # rebuilt over the first: replaced, not merged
        seed = scratch / "seed.ldif"
        seed.write_text(hs.seed_entries(plan))
        node.run("slapadd", "-q", "-w", "-F", hs.SLAPD_D, "-b", "dc=example,dc=org", "-l",
                 str(seed))
        node.run("chown", "-R", "openldap:openldap", str(scratch), str(tls))
        os.chmod(self.dir, 0o755)  # the temporary folder, for slapd's user
        port = free_port()
        slapd = subprocess.Popen(["slapd", "-d", "0", "-u", "openldap", "-g", "openldap",
                                  "-F", hs.SLAPD_D, "-h", f"ldap://127.0.0.1:{port}/"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.addCleanup(lambda: (slapd.terminate(), slapd.wait(10), slapd.stderr.close()))
        url = f"ldap://127.0.0.1:{port}/"
        for _ in range(100):
            r = subprocess.run(["ldapsearch", "-x", "-LLL", "-H", url, "-b", "dc=example,dc=org",
                                "(objectClass=organizationalUnit)", "ou", "contextCSN"],
                               capture_output=True, text=True)
            if r.returncode != 255 or slapd.poll() is not None:
                break
            time.sleep(0.1)
        self.assertEqual(r.returncode, 0, r.stderr + (slapd.stderr.read() if slapd.poll()
                                                      is not None else ""))
        self.assertIn("ou: accounts", r.stdout)
        self.assertIn("ou: stores", r.stdout)
        config = subprocess.run(["slapcat", "-n0", "-F", hs.SLAPD_D], capture_output=True,
                                text=True, check=True).stdout
        self.assertEqual(config.count("olcOverlay: {0}syncprov"), 1)
        self.assertIn("olcMultiProvider: TRUE", config)
        self.assertIn("olcSyncrepl: {0}rid=002 provider=ldap://192.0.2.12/", config)
        ok = subprocess.run(["ldapwhoami", "-x", "-H", url, "-D", "cn=admin,dc=example,dc=org",
                             "-w", "directory admin secret"], capture_output=True, text=True)
        self.assertEqual(ok.stdout.strip(), "dn:cn=admin,dc=example,dc=org", ok.stderr)
        bad = subprocess.run(["ldapwhoami", "-x", "-H", url, "-D", "cn=admin,dc=example,dc=org",
                              "-w", "wrong"], capture_output=True, text=True)
        self.assertEqual(bad.returncode, 49)  # invalidCredentials
