"""The pcs form and the crmsh form of each layout build the same CIB, and crm_verify accepts it.

Both forms are rendered by crm-config/hamail-cluster-config from one model; this checks that
what pcs and crmsh make of them agrees: the normalised <configuration> sections are equal (see
placement_lib.normalised_configuration for exactly what is normalised and why), and crm_simulate
places the resources of both identically when all nodes come up.

Run one layout: python3 -m unittest -v test_forms.NPlusM
"""

from __future__ import annotations

import difflib
import tempfile
import unittest
from pathlib import Path

import placement_lib as pl


class _Forms:
    layout_name = ""

    @classmethod
    def setUpClass(cls):
        cls._tmp = tempfile.TemporaryDirectory(prefix=f"hamail-forms-{cls.layout_name}-")
        cls.tmp = Path(cls._tmp.name)
        _, cls.layout = pl.load_layout(cls.layout_name)
        cls.cibs = {form: pl.build_cib(cls.layout_name, cls.tmp / f"{form}.xml", form)
                    for form in ("pcs", "crm")}

    @classmethod
    def tearDownClass(cls):
        cls._tmp.cleanup()

    def test_pcs_and_crm_forms_build_the_same_configuration(self):
        pcs = pl.normalised_configuration(self.cibs["pcs"])
        crm = pl.normalised_configuration(self.cibs["crm"])
        if pcs != crm:
            self.fail("the pcs and crm forms differ:\n" + "".join(difflib.unified_diff(
                pcs.splitlines(True), crm.splitlines(True), "pcs", "crm")))
        # Not an empty comparison: every store's resources are there.
        for s in self.layout.stores:
            for rsc in ("drbd-clone", "drbd", "fs", "ip", "mail"):
                self.assertIn(f'id="{s.name}-{rsc}"', pcs)
        self.assertIn('name="stonith-enabled" value="true"', pcs)

    def test_crm_verify_accepts_both_forms(self):
        ups = [a for n in self.layout.nodes for a in ("-u", n.name)]
        results = {}
        for form, cib in self.cibs.items():
            with self.subTest(form=form):
                r = pl.run(["crm_verify", "-x", str(cib)], check=False)
                self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
                out = self.tmp / f"{form}-up.xml"
                results[form] = pl.simulate(cib, out, "-q", "true", *ups)
                r = pl.run(["crm_verify", "-V", "-x", str(out)], check=False)
                self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
                self.assertNotIn("error", (r.stdout + r.stderr).lower())
        # The top-level resource order differs between the forms; the placement must not.
        self.assertEqual(sorted(pl.transition_summary(results["pcs"])),
                         sorted(pl.transition_summary(results["crm"])))

    def test_crm_form_reloads_into_a_running_cib_without_change(self):
        """Operators re-apply the crm form after editing a layout: `load update` into a CIB that
        already holds it, with nodes and status (as a live cluster's has), changes nothing."""
        ups = [a for n in self.layout.nodes for a in ("-u", n.name)]
        live = self.tmp / "live.xml"
        pl.simulate(self.cibs["crm"], live, "-q", "true", *ups)
        before = pl.normalised_configuration(live)
        args = ["crm", "--lab", pl.layout_path("lab")] if self.layout_name == "lab" else \
            ["crm", pl.layout_path(self.layout_name)]
        conf = self.tmp / "again.crm"
        conf.write_text(pl.generator(*args).stdout)
        pl.run(pl.private_crmsh(["crm", "-F", "configure", "load", "update", str(conf)]),
               env={"CIB_file": str(live), "HOME": str(self.tmp)})
        self.assertEqual(pl.normalised_configuration(live), before)
        self.assertIsNotNone(pl.ET.parse(live).getroot().find("status/node_state"))

    def test_agents_and_substitutions(self):
        pcs = pl.normalised_configuration(self.cibs["pcs"])
        if self.layout_name == "lab":
            self.assertIn('provider="pacemaker" type="Stateful"', pcs)
            self.assertNotIn('type="drbd"', pcs)
            for s in self.layout.stores:
                self.assertIn(f'name="device" value="{s.lab_device}"', pcs)
        else:
            self.assertNotIn("Stateful", pcs)
            for s in self.layout.stores:
                self.assertIn(f'name="device" value="{s.drbd_device}"', pcs)
        self.assertEqual(pcs.count('provider="hamail" type="backend"'), len(self.layout.stores))
        self.assertEqual('type="proxy"' in pcs, bool(self.layout.frontend.get("enabled")))
        self.assertEqual('type="slapd"' in pcs, bool(self.layout.directory.get("enabled")))


for _cls, _layout in pl.LAYOUT_CLASSES.items():
    globals()[_cls] = type(_cls, (_Forms, unittest.TestCase), {"layout_name": _layout})

if __name__ == "__main__":
    unittest.main()
