"""hamail-cluster-config's other outputs: corosync.conf, the slapd LDIF, the lab substitutions,
the DRBD files' two syntaxes (DRBD 8.4 and 9, [cluster] drbd.version) and the committed
examples (crm-config/generated/, drbd/<layout>/), which must equal what the generator makes now.

Rewrite the committed examples after changing a layout or the generator:
    HAMAIL_UPDATE_GOLDEN=1 python3 -m unittest test_generator
"""

from __future__ import annotations

import difflib
import os
import re
import shutil
import tempfile
import unittest
from pathlib import Path

import placement_lib as pl

GENERATED = pl.REPO / "crm-config" / "generated"
DRBD_EXAMPLES = pl.REPO / "drbd"


def expected_examples(tmp: Path) -> dict[Path, str]:
    """Every committed example file (path relative to the repository) and its content now."""
    files: dict[Path, str] = {}
    for name in pl.LAYOUT_CLASSES.values():
        _, layout = pl.load_layout(name)
        lab = ["--lab"] if name == "lab" else []
        base = Path("crm-config/generated") / name
        files[base / "cluster.pcs.sh"] = pl.generator("pcs", *lab, pl.layout_path(name)).stdout
        files[base / "cluster.crm"] = pl.generator("crm", *lab, pl.layout_path(name)).stdout
        files[base / "corosync.conf"] = pl.generator("corosync", pl.layout_path(name)).stdout
        if layout.directory.get("enabled"):
            for node in layout.directory["nodes"]:
                files[base / f"slapd-{node}.ldif"] = pl.generator(
                    "slapd", pl.layout_path(name), "--node", node).stdout
        if name != "lab":  # the lab has no DRBD (loop devices)
            out = tmp / name
            pl.generator("drbd", pl.layout_path(name), "--out", str(out))
            for res in sorted(out.iterdir()):
                files[Path("drbd") / name / res.name] = res.read_text()
    return files


class Generator(unittest.TestCase):
    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="hamail-generator-")
        self.tmp = Path(self._tmp.name)

    def tearDown(self):
        self._tmp.cleanup()

    def test_committed_examples_are_current(self):
        files = expected_examples(self.tmp)
        if pl.UPDATE_GOLDEN:
            for d in [GENERATED] + [DRBD_EXAMPLES / n for n in pl.LAYOUT_CLASSES.values()]:
                if d.exists():
                    for old in d.rglob("*"):
                        if old.is_file():
                            old.unlink()
            for rel, text in files.items():
                (pl.REPO / rel).parent.mkdir(parents=True, exist_ok=True)
                (pl.REPO / rel).write_text(text)
        committed = {p.relative_to(pl.REPO) for p in GENERATED.rglob("*") if p.is_file()}
        committed |= {p.relative_to(pl.REPO) for n in pl.LAYOUT_CLASSES.values()
                      for p in (DRBD_EXAMPLES / n).glob("*") if p.is_file()}
        self.assertEqual(sorted(map(str, committed)), sorted(map(str, files)),
                         "committed examples vs generated ones (HAMAIL_UPDATE_GOLDEN=1 rewrites)")
        for rel, text in files.items():
            now = (pl.REPO / rel).read_text()
            if now != text:
                self.fail(f"{rel} is stale (HAMAIL_UPDATE_GOLDEN=1 rewrites it):\n" + "".join(
                    difflib.unified_diff(now.splitlines(True), text.splitlines(True),
                                         str(rel), "generator")))

    def test_cib_from_the_pcs_script_equals_the_batched_pcs_run(self):
        """`cib --form pcs` runs the generated script with sh, one pcs process per command; the
        other tests run the same commands in one pcs process (placement_lib.build_cib). Both
        must give the same configuration, id for id."""
        pl.generator("cib", pl.layout_path("pair"), "--out", str(self.tmp / "sh.xml"),
                     "--form", "pcs")
        pl.build_cib("pair", self.tmp / "batch.xml", "pcs")
        sections = [pl.ET.tostring(pl.ET.parse(self.tmp / f).getroot().find("configuration"))
                    for f in ("sh.xml", "batch.xml")]
        self.assertEqual(sections[0], sections[1])

    @unittest.skipUnless(os.geteuid() == 0, "unshare -n needs root")
    def test_corosync_conf_is_accepted_by_corosync(self):
        for name in pl.LAYOUT_CLASSES.values():
            _, layout = pl.load_layout(name)
            conf = pl.generator("corosync", pl.layout_path(name)).stdout
            with self.subTest(layout=name):
                self.assertIn("transport: knet", conf)
                self.assertIn("token: 3000\n", conf)  # every layout uses the default profile
                fast = pl.generator("corosync", pl.layout_path(name), "--profile", "fast").stdout
                self.assertIn("token: 1000\n", fast)
                self.assertIn("Profile 'fast'", fast)
                self.assertEqual("two_node: 1" in conf, len(layout.nodes) == 2)
                for n in layout.nodes:
                    self.assertIn(f"ring0_addr: {n.address}\n        name: {n.name}\n"
                                  f"        nodeid: {n.node_id}", conf)
                if layout.cluster.get("crypto", True):
                    key = self.tmp / f"{name}.authkey"
                    key.write_bytes(os.urandom(256))
                    conf = conf.replace("crypto_hash: sha256",
                                        f"crypto_hash: sha256\n    keyfile: {key}")
                path = self.tmp / f"{name}.conf"
                path.write_text(conf)
                # corosync -t wants one of the node addresses on this host: give it one in a
                # private network namespace.
                addr = layout.nodes[0].address
                r = pl.run(["unshare", "-n", "sh", "-c",
                            f'ip link set lo up && ip addr add {addr}/32 dev lo && '
                            f'exec corosync -t -c "$0"', str(path)], check=False)
                self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_slapd_ldif_replicates_to_every_other_provider(self):
        for name in pl.LAYOUT_CLASSES.values():
            _, layout = pl.load_layout(name)
            d = layout.directory
            if not d.get("enabled"):
                r = pl.generator("slapd", pl.layout_path(name), "--node", "node1", check=False)
                self.assertEqual(r.returncode, 1)
                continue
            ids = set()
            for node in d["nodes"]:
                with self.subTest(layout=name, node=node):
                    ldif = pl.generator("slapd", pl.layout_path(name), "--node", node).stdout
                    server_ids = re.findall(r"^olcServerID: (\d+)$", ldif, re.M)
                    self.assertEqual(len(server_ids), 1)
                    ids.add(server_ids[0])
                    self.assertIn("olcMultiProvider: TRUE", ldif)
                    self.assertIn("olcOverlay: syncprov", ldif)
                    providers = re.findall(r"^olcSyncrepl: \{\d+\}rid=\d+ provider=ldap://([^/]+)/",
                                           ldif, re.M)
                    others = [layout.node(n).address for n in d["nodes"] if n != node]
                    self.assertEqual(providers, others)
                    self.assertEqual(len(set(re.findall(r"rid=(\d+)", ldif))), len(others))
                    self.assertNotIn("credentials=", ldif)
            self.assertEqual(len(ids), len(d["nodes"]), "olcServerID unique per provider")
        r = pl.generator("slapd", pl.layout_path("n-plus-m"), "--node", "node5", check=False)
        self.assertEqual(r.returncode, 1, "node5 is not a directory provider")

    def test_lab_makes_exactly_the_two_substitutions(self):
        """--lab output == the production output with, per store, ocf:linbit:drbd replaced by
        ocf:pacemaker:Stateful (the primitive: agent, and its drbd_resource parameter dropped,
        which Stateful does not take) and the DRBD device by lab_device; nothing else but the
        header line that says so."""
        mod, layout = pl.load_layout("lab")
        for render in (mod.render_crm, mod.render_pcs):
            prod = render(layout, mod.build_model(layout, False), False)
            lab = render(layout, mod.build_model(layout, True), True)
            expected = prod.replace("'lab', ", "'lab' (lab substitutions), ", 1)
            expected = expected.replace("ocf:linbit:drbd", "ocf:pacemaker:Stateful")
            for s in layout.stores:
                self.assertIn(f"device={s.drbd_device} ", expected)
                expected = expected.replace(f"device={s.drbd_device} ", f"device={s.lab_device} ")
                # crm: "    params drbd_resource=X \\\n"; pcs: "    drbd_resource=X \\\n"
                expected = re.sub(rf"\n    (params )?drbd_resource={s.name} \\", "", expected)
            self.assertNotIn("drbd_resource", expected)
            self.assertEqual(lab, expected)

    def test_bad_layouts_are_refused(self):
        bad = self.tmp / "bad.toml"
        text = Path(pl.layout_path("n-plus-1")).read_text()
        for broken, why in ((text.replace('nodes = ["node1", "node3"]', 'nodes = ["node1"]'),
                             "at least two nodes"),
                            (text.replace('nodes = ["node2", "node3"]',
                                          'nodes = ["node2", "node9"]'),
                             "node9"),
                            (text.replace("drbd_minor = 2", "drbd_minor = 1"), "drbd_minor")):
            bad.write_text(broken)
            r = pl.generator("crm", str(bad), check=False)
            self.assertEqual(r.returncode, 1)
            self.assertIn(why, r.stderr)


def section(res: str, name: str) -> str:
    """The body of the resource file's first `    name {` section (a top-level one)."""
    m = re.search(rf"^    {name} \{{\n(.*?)^    \}}$", res, re.M | re.S)
    return m.group(1) if m else ""


class DrbdVersions(unittest.TestCase):
    """[cluster] drbd.version: "8.4" (the default, Debian 12's kernel module: two nodes per
    resource) or "9" (LINBIT's module). Each gets its own syntax and fence handlers; 8.4 with
    three replicas, and any other version, is refused by every subcommand."""

    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="hamail-drbd-versions-")
        self.tmp = Path(self._tmp.name)

    def tearDown(self):
        self._tmp.cleanup()

    def layout_as(self, name: str, version: str | None) -> Path:
        """The layout `name` with its [cluster] drbd line replaced by `drbd = { version }` (or
        left out when version is None), written to a temporary file."""
        text = Path(pl.layout_path(name)).read_text()
        text = re.sub(r"^drbd = \{ version = .* \}\n", "", text, flags=re.M)
        if version is not None:
            text = text.replace("\n[fencing]\n",
                                f"\ndrbd = {{ version = {version} }}\n\n[fencing]\n", 1)
        path = self.tmp / f"{name}-{len(list(self.tmp.iterdir()))}.toml"
        path.write_text(text)
        return path

    def drbd_files(self, layout: Path) -> dict[str, str]:
        out = self.tmp / f"{layout.stem}.out"
        pl.generator("drbd", str(layout), "--out", str(out))
        return {p.stem: p.read_text() for p in sorted(out.iterdir())}

    def test_layouts_name_their_drbd_version(self):
        for name, version in (("pair", "8.4"), ("n-plus-1", "8.4"), ("n-plus-m", "9"),
                              ("lab", "8.4")):  # lab: the default
            _, layout = pl.load_layout(name)
            self.assertEqual(layout.drbd_version, version, name)
        _, lab = pl.load_layout("lab")
        self.assertNotIn("version", lab.drbd, "lab relies on the default")

    def test_drbd_8_4_syntax(self):
        for source in (Path(pl.layout_path("pair")), Path(pl.layout_path("n-plus-1")),
                       self.layout_as("pair", None)):  # the default is 8.4
            for store, res in self.drbd_files(source).items():
                with self.subTest(layout=source.name, store=store):
                    self.assertTrue(res.startswith("# DRBD 8.4 resource for hamail store "))
                    self.assertIn("Debian 12's kernel module (8.4.11)", res.splitlines()[2])
                    code = re.sub(r"#.*", "", res)  # comments may name them
                    for absent in ("node-id", "connection-mesh", "auto-promote", "options",
                                   "unfence-peer"):
                        self.assertNotRegex(code, rf"(?m)^\s*{absent}\b")
                    self.assertNotIn(".9.sh", code)
                    self.assertIn("fencing resource-and-stonith;", section(res, "disk"))
                    self.assertNotIn("fencing", section(res, "net"))
                    self.assertIn("protocol C;", section(res, "net"))
                    self.assertEqual(
                        section(res, "handlers").splitlines()[-2:],
                        ['        fence-peer "/usr/lib/drbd/crm-fence-peer.sh";',
                         '        after-resync-target "/usr/lib/drbd/crm-unfence-peer.sh";'])
                    self.assertEqual(len(re.findall(r"^    on \S+ \{$", res, re.M)), 2)
                    self.assertRegex(res, r"\n        device /dev/drbd(\d+) minor \1;\n")

    def test_drbd_9_syntax(self):
        mod, _ = pl.load_layout("pair")
        for source in (Path(pl.layout_path("n-plus-m")), self.layout_as("pair", '"9"')):
            layout = mod.load_layout(source)
            files = self.drbd_files(source)
            for s in layout.stores:
                res = files[s.name]
                with self.subTest(layout=source.name, store=s.name):
                    self.assertTrue(res.startswith("# DRBD 9 resource for hamail store "))
                    self.assertIn("LINBIT's DRBD 9 kernel module", res.splitlines()[2])
                    self.assertIn("auto-promote no;", section(res, "options"))
                    self.assertIn("fencing resource-and-stonith;", section(res, "net"))
                    self.assertNotIn("fencing", section(res, "disk"))
                    self.assertEqual(
                        section(res, "handlers").splitlines()[-2:],
                        ['        fence-peer "/usr/lib/drbd/crm-fence-peer.9.sh";',
                         '        unfence-peer "/usr/lib/drbd/crm-unfence-peer.9.sh";'])
                    self.assertNotRegex(re.sub(r"#.*", "", res), r"(?m)^\s*after-resync-target")
                    for name in s.nodes:
                        n = layout.node(name)
                        self.assertIn(f"    on {name} {{\n        node-id {n.node_id};\n"
                                      f"        device {s.drbd_device} minor {s.drbd_minor};\n",
                                      res)
                    mesh = f"    connection-mesh {{\n        hosts {' '.join(s.nodes)};\n    }}\n"
                    self.assertEqual(mesh in res, len(s.nodes) > 2)
                    self.assertEqual("connection-mesh" in res, len(s.nodes) > 2)

    def test_three_replicas_with_drbd_8_4_are_refused_by_every_subcommand(self):
        out = self.tmp / "out"  # neither `drbd` nor `cib` may write anything
        for version, default in (('"8.4"', ""), (None, " (the default)")):
            bad = self.layout_as("n-plus-m", version)
            for cmd in (["crm"], ["pcs"], ["corosync"], ["drbd", "--out", str(out)],
                        ["slapd", "--node", "node1"], ["cib", "--out", str(out)]):
                with self.subTest(version=version, command=cmd[0]):
                    r = pl.generator(cmd[0], str(bad), *cmd[1:], check=False)
                    self.assertEqual(r.returncode, 1)
                    self.assertEqual(r.stdout, "")
                    self.assertEqual(
                        r.stderr,
                        "hamail-cluster-config: [[store]] store-a: 3 replicas (node1, node4, "
                        f"node5), but DRBD 8.4{default} mirrors a store between two nodes only: "
                        'give it two nodes, or set [cluster] drbd = { version = "9" } and '
                        "install DRBD 9 from LINBIT\n")
                    self.assertFalse(out.exists())

    def test_unknown_drbd_versions_and_keys_are_refused(self):
        for value, shown in (('"9.2"', "'9.2'"), ('"8.3"', "'8.3'"), ('""', "''"),
                             ("9", "9"), ("8.4", "8.4")):  # numbers, not strings
            bad = self.layout_as("pair", value)
            for cmd in ("crm", "pcs"):
                with self.subTest(version=value, command=cmd):
                    r = pl.generator(cmd, str(bad), check=False)
                    self.assertEqual(r.returncode, 1)
                    self.assertEqual(r.stderr, 'hamail-cluster-config: [cluster] drbd.version '
                                     f'must be "8.4" or "9" (a string), not {shown}\n')
        bad = self.layout_as("pair", None)
        bad.write_text(bad.read_text().replace("\n[fencing]\n",
                                               '\ndrbd = { versoin = "9" }\n\n[fencing]\n', 1))
        r = pl.generator("crm", str(bad), check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("[cluster] drbd: unknown key 'versoin'", r.stderr)

    @unittest.skipUnless(shutil.which("drbdadm"),
                         "drbdadm (package drbd-utils) is not installed: cannot parse the DRBD "
                         "files")
    def test_every_drbd_file_parses_with_drbdadm_for_its_version(self):
        """drbdadm -c FILE sh-nop parses the file (exit 10 on a parse error) with the tools of
        the file's DRBD version: drbdadm-84 for 8.4 (what Debian 12's kernel module gets), the
        9 tools for 9. Every layout as it is, and the two-replica layouts as DRBD 9 too. A DRBD
        9 file must also be refused by drbdadm-84: proof that the version switch is real."""
        mod, _ = pl.load_layout("pair")
        sources = [Path(pl.layout_path(n)) for n in pl.LAYOUT_CLASSES.values()]
        sources += [self.layout_as(n, '"9"') for n in ("pair", "n-plus-1", "lab")]
        seen = set()
        for source in sources:
            for store, res in self.drbd_files(source).items():
                version = pl.drbd_version_of(res)
                self.assertEqual(version, mod.load_layout(source).drbd_version, source.name)
                seen.add(version)
                path = self.tmp / f"{source.stem}-{store}.res"
                path.write_text(res)
                with self.subTest(layout=source.name, store=store, drbd=version):
                    r = pl.drbdadm(version, "-c", str(path), "sh-nop")
                    self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
                    if version == "9":
                        r = pl.drbdadm("8.4", "-c", str(path), "sh-nop")
                        self.assertEqual(r.returncode, 10, "drbdadm-84 must refuse DRBD 9 syntax")
                        self.assertIn("Parse error", r.stderr)
        self.assertEqual(seen, {"8.4", "9"})


if __name__ == "__main__":
    unittest.main()
