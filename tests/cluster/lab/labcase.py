"""The lab as a unittest fixture, shared by the lab's tests: brings the lab up with the
generator's configuration (crm or pcs form), removes it afterwards, on failure, Ctrl-C and
SIGTERM, and checks that nothing was left behind."""

import os
import signal
import time
import unittest

import lab as L


class LabCase(unittest.TestCase):
    """setUp: the lab up and the configuration loaded; self.lab, self.config_source."""

    form = "crm"  # which form of the generated configuration to load: "crm" or "pcs"

    def setUp(self):
        # SIGTERM or Ctrl-C must still remove the lab. unittest does not run cleanups when a
        # KeyboardInterrupt passes through a test, so the handler removes it itself.
        L.become_subreaper()
        self.lab = L.lab_from_layout()
        self.old_handlers = {sig: signal.signal(sig, self._interrupted)
                             for sig in (signal.SIGTERM, signal.SIGINT)}
        left = self.lab.leftovers()
        if left:
            print("removing a lab left behind: %s" % left, flush=True)
            if os.path.exists(self.lab.state_file):
                L.Lab.from_state(self.lab.workdir).down()
            else:
                self.lab.down()
        self.addCleanup(self._cleanup)
        self.lab_started = time.monotonic()
        self.lab.up()
        if self.form == "pcs":
            self.lab.load_pcs()
            self.config_source = ("crm-config/hamail-cluster-config pcs --lab "
                                  "crm-config/layouts/lab.toml (pcs -f, cib-push)")
        else:
            config = L.generated_config(self.lab)
            self.config_source = "crm-config/hamail-cluster-config crm --lab crm-config/layouts/lab.toml"
            if config is None:
                config = L.hand_config(self.lab)
                self.config_source = "HAND-WRITTEN (the generator or lab.toml is missing)"
            self.lab.load_config(config)
        print("\ncluster configuration: %s" % self.config_source, flush=True)

    def _interrupted(self, signum, _frame):
        print("\n%s: removing the lab" % signal.Signals(signum).name, flush=True)
        try:
            self.lab.down(keep_workdir=bool(os.environ.get("HAMAIL_KEEP_TEST_DIRS")))
        finally:
            os._exit(128 + signum)

    def _cleanup(self):
        keep = bool(os.environ.get("HAMAIL_KEEP_TEST_DIRS"))
        self.lab.down(keep_workdir=keep)
        left = self.lab.leftovers()
        loops = [l for l in L.run("losetup", "-a", check=False).stdout.splitlines()
                 if self.lab.workdir in l]
        for sig, handler in self.old_handlers.items():
            signal.signal(sig, handler)
        self.assertEqual([], left + loops, "the lab left things behind")

    def running_on(self, store):
        nodes = self.lab.where(store["name"] + "-mail")
        self.assertEqual(1, len(nodes), "%s runs on %s" % (store["name"], nodes))
        return nodes[0]

    def wait_fenced(self, node, since, timeout=60):
        """Wall-clock time of the first fencing of `node` (off or reboot) at or after `since`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for entry in self.lab.fence_log():
                if float(entry[0]) >= since and entry[2] == node and entry[1] in ("off", "reboot"):
                    return float(entry[0])
            time.sleep(0.2)
        raise AssertionError("%s was not fenced within %d s" % (node, timeout))
