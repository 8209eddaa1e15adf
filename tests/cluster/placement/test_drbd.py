"""Every layout's generated DRBD resource files parse and mean what they should.

drbdadm needs no kernel module for this: `sh-nop` parses (exit 10 on a parse error), and `dump`
and `-d up` (dry run: prints the drbdsetup calls) work under the hostname of one of the
resource's nodes, which each check sets in a private UTS namespace (`unshare -u`).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import unittest
from pathlib import Path

import placement_lib as pl


def as_node(node: str, *cmd: str) -> subprocess.CompletedProcess:
    """Run cmd with the hostname `node`, in a private UTS namespace."""
    script = 'hostname "$0" && exec "$@"'
    return pl.run(["unshare", "-u", "sh", "-c", script, node, *cmd], check=False)


@unittest.skipUnless(os.geteuid() == 0, "unshare -u needs root")
class DrbdResources(unittest.TestCase):
    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="hamail-drbd-")
        self.tmp = Path(self._tmp.name)

    def tearDown(self):
        self._tmp.cleanup()

    def test_handlers_exist_where_the_templates_say(self):
        mod, _ = pl.load_layout("pair")
        for script in (mod.DRBD_FENCE_PEER, mod.DRBD_UNFENCE_PEER):
            self.assertTrue(os.access(script, os.X_OK), f"{script} (drbd-utils) missing")

    def test_every_store_of_every_layout(self):
        for name in pl.LAYOUT_CLASSES.values():
            _, layout = pl.load_layout(name)
            out = self.tmp / name
            pl.generator("drbd", pl.layout_path(name), "--out", str(out))
            self.assertEqual(sorted(p.name for p in out.iterdir()),
                             sorted(f"{s.name}.res" for s in layout.stores))
            for s in layout.stores:
                res = str(out / f"{s.name}.res")
                with self.subTest(layout=name, store=s.name):
                    r = pl.run(["drbdadm", "-c", res, "sh-nop"], check=False)
                    self.assertEqual(r.returncode, 0, r.stderr)
                    for node in s.nodes:
                        self._check_on_node(layout, s, res, node)
                    outsider = next((n.name for n in layout.nodes if n.name not in s.nodes),
                                    None)
                    if outsider:
                        r = as_node(outsider, "drbdadm", "-c", res, "dump", s.name)
                        self.assertNotEqual(r.returncode, 0,
                                            f"{s.name} has no replica on {outsider}")

    def _check_on_node(self, layout, s, res: str, node: str) -> None:
        r = as_node(node, "drbdadm", "-c", res, "dump", s.name)
        self.assertEqual(r.returncode, 0, r.stderr)
        dump = " ".join(r.stdout.split())
        for want in ("protocol C;", "fencing resource-and-stonith;",
                     "after-sb-0pri discard-zero-changes;", "after-sb-1pri discard-secondary;",
                     "after-sb-2pri disconnect;", "auto-promote no;", "c-plan-ahead 20;",
                     "resync-rate 100M;",
                     "fence-peer /usr/lib/drbd/crm-fence-peer.9.sh;",
                     "unfence-peer /usr/lib/drbd/crm-unfence-peer.9.sh;"):
            self.assertIn(want, dump, f"dump of {s.name} on {node}")
        for peer in s.nodes:
            n = layout.node(peer)
            self.assertIn(f"on {peer} {{ node-id {n.node_id}; device {s.drbd_device} minor "
                          f"{s.drbd_minor}; disk {s.disk}; meta-disk internal; address ipv4 "
                          f"{n.drbd_address}:{s.drbd_port}; }}", dump)

        r = as_node(node, "drbdadm", "-c", res, "-d", "up", s.name)
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.splitlines()
        me = layout.node(node)
        self.assertIn(f"drbdsetup new-resource {s.name} {me.node_id} --auto-promote=no", lines)
        self.assertIn(f"drbdsetup new-minor {s.name} {s.drbd_minor} 0", lines)
        peers = [ln for ln in lines if ln.startswith(f"drbdsetup new-peer {s.name} ")]
        self.assertEqual(len(peers), len(s.nodes) - 1, "one connection to each other replica")
        for ln in peers:
            for opt in ("--protocol=C", "--fencing=resource-and-stonith",
                        "--after-sb-0pri=discard-zero-changes",
                        "--after-sb-1pri=discard-secondary", "--after-sb-2pri=disconnect"):
                self.assertIn(opt, ln.split())
        self.assertTrue(any("--resync-rate=100M" in ln and "--c-plan-ahead=20" in ln
                            for ln in lines if "peer-device-options" in ln))
        self.assertIn(f"drbdsetup attach {s.drbd_minor} {s.disk} {s.disk} internal", lines)

    def test_a_broken_file_is_a_parse_error(self):
        out = self.tmp / "pair"
        pl.generator("drbd", pl.layout_path("pair"), "--out", str(out))
        res = out / "store-a.res"
        res.write_text(res.read_text().replace("protocol C;", "protocol C"))
        r = pl.run(["drbdadm", "-c", str(res), "sh-nop"], check=False)
        self.assertEqual(r.returncode, 10, r.stderr)


if __name__ == "__main__":
    unittest.main()
