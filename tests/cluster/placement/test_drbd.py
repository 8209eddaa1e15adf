"""Every layout's generated DRBD resource files parse and mean what they should, for the DRBD
version the layout names ([cluster] drbd.version: "8.4", Debian 12's kernel module, or "9").

drbdadm needs no kernel module for this: `sh-nop` parses (exit 10 on a parse error), and `dump`
and `-d up` (dry run: prints the drbdsetup calls) work under the hostname of one of the
resource's nodes, which each check sets in a private UTS namespace (`unshare -u`); DRBD 8.4's
tools also want the node's address on a local interface, which a private network namespace
gives them (`unshare -n`). DRBD_DRIVER_VERSION_OVERRIDE makes drbdadm use the tools of the
file's version (placement_lib.drbdadm): drbdadm-84 for 8.4, drbdadm itself for 9.
"""

from __future__ import annotations

import os
import tempfile
import unittest
from pathlib import Path

import placement_lib as pl


def on_node(layout, node: str) -> tuple[str, ...]:
    """A command prefix: a private UTS and network namespace with the hostname `node` and that
    node's DRBD address on lo."""
    addr = layout.node(node).drbd_address
    script = f'hostname "$0" && ip link set lo up && ip addr add {addr}/32 dev lo && exec "$@"'
    return ("unshare", "-u", "-n", "sh", "-c", script, node)


@unittest.skipUnless(os.geteuid() == 0, "unshare -u -n needs root")
class DrbdResources(unittest.TestCase):
    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="hamail-drbd-")
        self.tmp = Path(self._tmp.name)
        self.mod, _ = pl.load_layout("pair")  # the generator, for its DRBD_HANDLERS

    def tearDown(self):
        self._tmp.cleanup()

    def test_handlers_exist_where_the_templates_say(self):
        for version, handlers in self.mod.DRBD_HANDLERS.items():
            for _, script in handlers:
                self.assertTrue(os.access(script, os.X_OK),
                                f"{script} (drbd-utils, DRBD {version}) missing")

    def test_every_store_of_every_layout(self):
        for name in pl.LAYOUT_CLASSES.values():
            _, layout = pl.load_layout(name)
            version = layout.drbd_version
            out = self.tmp / name
            pl.generator("drbd", pl.layout_path(name), "--out", str(out))
            self.assertEqual(sorted(p.name for p in out.iterdir()),
                             sorted(f"{s.name}.res" for s in layout.stores))
            for s in layout.stores:
                res = str(out / f"{s.name}.res")
                with self.subTest(layout=name, store=s.name, drbd=version):
                    r = pl.drbdadm(version, "-c", res, "sh-nop")
                    self.assertEqual(r.returncode, 0, r.stderr)
                    for node in s.nodes:
                        self._check_on_node(layout, s, res, node)
                    outsider = next((n.name for n in layout.nodes if n.name not in s.nodes),
                                    None)
                    if outsider:
                        r = pl.drbdadm(version, "-c", res, "dump", s.name,
                                       prefix=on_node(layout, outsider))
                        self.assertNotEqual(r.returncode, 0,
                                            f"{s.name} has no replica on {outsider}")

    def _check_on_node(self, layout, s, res: str, node: str) -> None:
        version = layout.drbd_version
        r = pl.drbdadm(version, "-c", res, "dump", s.name, prefix=on_node(layout, node))
        self.assertEqual(r.returncode, 0, r.stderr)
        dump = " ".join(r.stdout.split())
        for want in ("protocol C;", "after-sb-0pri discard-zero-changes;",
                     "after-sb-1pri discard-secondary;", "after-sb-2pri disconnect;",
                     "c-plan-ahead 20;", "resync-rate 100M;"):
            self.assertIn(want, dump, f"dump of {s.name} on {node}")
        (fence, fence_script), (unfence, unfence_script) = self.mod.DRBD_HANDLERS[version]
        self.assertIn(f"handlers {{ {fence} {fence_script}; {unfence} {unfence_script}; }}",
                      dump)
        if version == "9":
            self.assertIn("options { auto-promote no; }", dump)
            self.assertIn("net { protocol C; fencing resource-and-stonith;", dump)
        else:
            self.assertNotIn("auto-promote", dump)
            self.assertIn("disk { fencing resource-and-stonith;", dump)
        for peer in s.nodes:
            n = layout.node(peer)
            node_id = f"node-id {n.node_id}; " if version == "9" else ""
            self.assertIn(f"on {peer} {{ {node_id}device {s.drbd_device} minor "
                          f"{s.drbd_minor}; disk {s.disk}; meta-disk internal; address ipv4 "
                          f"{n.drbd_address}:{s.drbd_port}; }}", dump)

        r = pl.drbdadm(version, "-c", res, "-d", "up", s.name, prefix=on_node(layout, node))
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.splitlines()
        me = layout.node(node)
        if version == "8.4":
            self._check_up_84(s, me, layout.node(next(p for p in s.nodes if p != node)), r)
            return
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

    def _check_up_84(self, s, me, peer, r) -> None:
        """drbdadm-84's dry run: drbdsetup-84 calls, one connection, to the one peer."""
        lines = r.stdout.splitlines()
        self.assertNotIn("multiple host sections", r.stderr)
        self.assertIn(f"drbdsetup-84 new-resource {s.name}", lines)
        self.assertIn(f"drbdsetup-84 new-minor {s.name} {s.drbd_minor} 0", lines)
        attach = [ln.split() for ln in lines if ln.startswith("drbdsetup-84 attach ")]
        self.assertEqual(len(attach), 1)
        self.assertEqual(attach[0][2:6], [str(s.drbd_minor), s.disk, s.disk, "internal"])
        for opt in ("--fencing=resource-and-stonith", "--resync-rate=100M", "--c-plan-ahead=20"):
            self.assertIn(opt, attach[0])
        connect = [ln.split() for ln in lines if ln.startswith("drbdsetup-84 connect ")]
        self.assertEqual(len(connect), 1, "one connection, to the one peer")
        self.assertEqual(connect[0][2:5], [s.name, f"ipv4:{me.drbd_address}:{s.drbd_port}",
                                           f"ipv4:{peer.drbd_address}:{s.drbd_port}"])
        for opt in ("--protocol=C", "--after-sb-0pri=discard-zero-changes",
                    "--after-sb-1pri=discard-secondary", "--after-sb-2pri=disconnect"):
            self.assertIn(opt, connect[0])

    def test_a_broken_file_is_a_parse_error(self):
        for name in ("pair", "n-plus-m"):
            _, layout = pl.load_layout(name)
            out = self.tmp / name
            pl.generator("drbd", pl.layout_path(name), "--out", str(out))
            res = out / "store-a.res"
            res.write_text(res.read_text().replace("protocol C;", "protocol C"))
            r = pl.drbdadm(layout.drbd_version, "-c", str(res), "sh-nop")
            self.assertEqual(r.returncode, 10, r.stderr)


if __name__ == "__main__":
    unittest.main()
