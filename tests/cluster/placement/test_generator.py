"""hamail-cluster-config's other outputs: corosync.conf, the slapd LDIF, the lab substitutions,
and the committed examples (crm-config/generated/, drbd/<layout>/), which must equal what the
generator makes now.

Rewrite the committed examples after changing a layout or the generator:
    HAMAIL_UPDATE_GOLDEN=1 python3 -m unittest test_generator
"""

from __future__ import annotations

import difflib
import os
import re
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


if __name__ == "__main__":
    unittest.main()
