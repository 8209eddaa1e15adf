"""Placement scenarios per layout, with crm_simulate and no daemons.

For each layout (crmsh form; the lab layout with --lab) the CIB is built offline, all nodes are
brought up, and then: every single node fails in turn; a backend monitor fails and is recovered;
a backend monitor fails and the recovery's stop fails (the node is fenced); a failed node
rejoins. Each scenario's crm_simulate output (without the action-by-action list) is compared with
a golden file in golden/<layout>/, and the facts that matter are asserted from crm_mon's view of
the resulting CIB, so a wrong golden cannot pass unnoticed.

Run one layout: python3 -m unittest -v test_scenarios.NPlus1
Rewrite goldens: HAMAIL_UPDATE_GOLDEN=1 python3 -m unittest test_scenarios (then read them).
"""

from __future__ import annotations

import re
import tempfile
import unittest
from pathlib import Path

import placement_lib as pl


class _Scenarios:
    layout_name = ""

    @classmethod
    def setUpClass(cls):
        cls._tmp = tempfile.TemporaryDirectory(prefix=f"hamail-placement-{cls.layout_name}-")
        cls.tmp = Path(cls._tmp.name)
        _, cls.layout = pl.load_layout(cls.layout_name)
        cls.node_names = [n.name for n in cls.layout.nodes]
        cls.cib = pl.build_cib(cls.layout_name, cls.tmp / "config.xml", "crm")
        ups = [a for n in cls.node_names for a in ("-u", n)]
        cls.start_output = pl.simulate(cls.cib, cls.tmp / "start.xml", "-q", "true", *ups)
        cls.start = cls.tmp / "start.xml"

    @classmethod
    def tearDownClass(cls):
        cls._tmp.cleanup()

    # -- helpers ------------------------------------------------------------------------------

    def golden(self, scenario: str, output: str) -> None:
        pl.check_golden(self, f"{self.layout_name}/{scenario}", pl.summary(output))

    def assert_all_running(self, cib: Path, down: set[str] = frozenset()) -> pl.Placement:
        """Every store: exactly one promoted DRBD, on an allowed live node, and every member of
        its group there once; frontends and directory on every live node they may use."""
        p = pl.placement(cib)
        self.assertEqual(p.online, set(self.node_names) - set(down))
        for s in self.layout.stores:
            promoted = p.nodes(f"{s.name}-drbd", "Promoted")
            self.assertEqual(len(promoted), 1, f"{s.name}: promoted DRBD on {promoted}")
            node = promoted[0]
            self.assertIn(node, p.online)
            self.assertIn(node, s.nodes, f"{s.name} promoted on {node}, which has no replica")
            for member in ("fs", "ip", "mail"):
                self.assertEqual(p.nodes(f"{s.name}-{member}"), [node],
                                 f"{s.name}-{member} must run once, with the promoted DRBD")
            unpromoted = set(p.nodes(f"{s.name}-drbd", "Unpromoted"))
            self.assertEqual(unpromoted, (set(s.nodes) & p.online) - {node},
                             f"{s.name}: every other live replica is a DRBD secondary")
        for tier, rsc in (("frontend", "frontend"), ("directory", "directory")):
            conf = getattr(self.layout, tier)
            if conf.get("enabled"):
                allowed = set(conf.get("nodes", self.node_names))
                self.assertEqual(sorted(p.nodes(rsc)), sorted(allowed & p.online),
                                 f"{tier} must run on every live node of its tier")
        return p

    # -- scenarios ----------------------------------------------------------------------------

    def test_start_places_each_store_on_its_home(self):
        self.golden("start", self.start_output)
        run = pl.run(["crm_verify", "-x", str(self.start)], check=False)
        self.assertEqual(run.returncode, 0, run.stdout + run.stderr)
        p = self.assert_all_running(self.start)
        for s in self.layout.stores:
            self.assertEqual(p.nodes(f"{s.name}-mail"), [s.home])
        if self.layout.fencing["mode"] == "per-node":
            for n in self.node_names:
                where = p.nodes(f"fence-{n}")
                self.assertEqual(len(where), 1)
                self.assertNotEqual(where[0], n, "a fence device must not run on its target")
        else:
            self.assertEqual(len(p.nodes("fencing")), 1)

    def test_any_single_node_failure_keeps_every_store_running(self):
        before = pl.placement(self.start)
        for failed in self.node_names:
            with self.subTest(failed=failed):
                out = self.tmp / f"fail-{failed}.xml"
                output = pl.simulate(self.start, out, "--node-fail", failed)
                self.golden(f"node-fail-{failed}", output)
                summary = pl.transition_summary(output)
                self.assertTrue(any(line.startswith(f"Fence (reboot) {failed} ")
                                    for line in summary), summary)
                p = self.assert_all_running(out, down={failed})
                for s in self.layout.stores:
                    old = before.nodes(f"{s.name}-mail")[0]
                    now = p.nodes(f"{s.name}-mail")[0]
                    if old != failed:
                        self.assertEqual(now, old, f"{s.name} moved although its node lived")
                    else:
                        first_choice = next(n for n in s.nodes if n != failed)
                        self.assertEqual(now, first_choice,
                                         f"{s.name} must go to its preferred surviving replica")
                # Frontends on surviving nodes are left alone.
                for line in summary:
                    if re.match(r"(Stop|Restart|Recover|Move)\s+frontend", line):
                        self.assertIn(failed, line, line)

    def test_monitor_failure_is_recovered_in_place(self):
        s = self.layout.stores[0]
        output = pl.simulate(self.start, self.tmp / "monitor.xml",
                             "-i", f"{s.name}-mail_monitor_10000@{s.home}=1")
        self.golden("monitor-failure", output)
        self.assertEqual(pl.transition_summary(output), [f"Recover {s.name}-mail ( {s.home} )"])
        p = self.assert_all_running(self.tmp / "monitor.xml")
        self.assertEqual(p.nodes(f"{s.name}-mail"), [s.home])

    def test_failed_stop_fences_the_node(self):
        s = self.layout.stores[0]
        step1 = self.tmp / "stop-1.xml"
        # The monitor fails; the recovery's stop fails too.
        output1 = pl.simulate(self.start, step1, "-i", f"{s.name}-mail_monitor_10000@{s.home}=1",
                              "-F", f"{s.name}-mail_stop_0@{s.home}=1")
        self.golden("failed-stop-1", output1)
        output2 = pl.simulate(step1, self.tmp / "stop-2.xml")
        self.golden("failed-stop-2", output2)
        summary = pl.transition_summary(output2)
        self.assertIn(f"Fence (reboot) {s.home} '{s.name}-mail failed there'", summary)
        p = self.assert_all_running(self.tmp / "stop-2.xml", down={s.home})
        self.assertNotEqual(p.nodes(f"{s.name}-mail"), [s.home])

    def test_rejoining_node_does_not_take_its_stores_back(self):
        s = self.layout.stores[0]
        failed = self.tmp / "rejoin-0.xml"
        pl.simulate(self.start, failed, "--node-fail", s.home)
        moved = pl.placement(failed)
        output = pl.simulate(failed, self.tmp / "rejoin.xml", "-u", s.home)
        self.golden("rejoin", output)
        summary = pl.transition_summary(output)
        for line in summary:
            self.assertRegex(line, r"^Start ", f"only starts on the rejoined node: {line}")
            self.assertTrue(line.endswith(f"( {s.home} )"), line)
            self.assertNotRegex(line, r"-(fs|ip|mail) ", "a store moved back")
        p = self.assert_all_running(self.tmp / "rejoin.xml")
        for st in self.layout.stores:
            self.assertEqual(p.nodes(f"{st.name}-mail"), moved.nodes(f"{st.name}-mail"),
                             f"{st.name} must stay where it is (stickiness)")


for _cls, _layout in pl.LAYOUT_CLASSES.items():
    globals()[_cls] = type(_cls, (_Scenarios, unittest.TestCase), {"layout_name": _layout})

if __name__ == "__main__":
    unittest.main()
