"""The README's demo command: the stack starts, delivers its welcome message,
reuses its state on a second start, and its stop ends exactly what it started."""

import os
import re
import shutil
import subprocess
import tempfile
import unittest

from hamail_harness import free_port

HERE = os.path.dirname(os.path.abspath(__file__))
DEMO = os.path.join(HERE, "..", "..", "appliance-image", "demo", "demo.sh")


class demo_test(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="hamail-demo-it-")
        self.env = dict(os.environ, HAMAIL_DEMO_DIR=os.path.join(self.dir, "state"),
                        HAMAIL_BUILD_DIR=os.environ["HAMAIL_BUILD_DIR"],
                        HAMAIL_DEMO_LDAP_PORT=str(free_port()), HAMAIL_DEMO_SMTP_PORT=str(free_port()),
                        HAMAIL_DEMO_SUBMISSION_PORT=str(free_port()), HAMAIL_DEMO_LMTP_PORT=str(free_port()))

    def tearDown(self):
        self.demo("stop")
        shutil.rmtree(self.dir, ignore_errors=True)

    def demo(self, cmd):
        return subprocess.run(["bash", DEMO, cmd], env=self.env, capture_output=True, text=True, timeout=180)

    def pids(self):
        state = self.env["HAMAIL_DEMO_DIR"]
        out = []
        for f in ("slapd/slapd.pid", "store-a/run/hamail-backend.pid"):
            with open(os.path.join(state, f)) as p:
                out.append(int(p.read().split()[0]))
        return out

    def test_start_reuse_stop(self):
        r = self.demo("start")
        self.assertEqual(0, r.returncode, r.stdout + r.stderr)
        self.assertIn("welcome message delivered to demo@hamail.test", r.stdout)
        landed = re.search(r"^\s+welcome\s+(/\S+)", r.stdout, re.M).group(1)
        with open(landed, "rb") as f:
            msg = f.read()
        self.assertIn(b"Subject: Welcome to hamail", msg)
        self.assertIn(b"with ESMTPS id", msg)
        slapd, backend = self.pids()

        r = self.demo("start")
        self.assertEqual(0, r.returncode, r.stderr)
        self.assertIn("already running", r.stdout)
        self.assertEqual([slapd, backend], self.pids())

        r = self.demo("stop")
        self.assertEqual(0, r.returncode, r.stderr)
        for pid in (slapd, backend):
            self.assertFalse(os.path.exists("/proc/%d" % pid) and
                             open("/proc/%d/stat" % pid).read().split()[2] != "Z", "pid %d still runs" % pid)
        self.assertEqual(3, self.demo("status").returncode)

        # Started again, it reuses the state: same account, no second welcome.
        r = self.demo("start")
        self.assertEqual(0, r.returncode, r.stdout + r.stderr)
        self.assertNotIn("creating the demo", r.stdout)
        self.assertNotIn("welcome message delivered", r.stdout)
        self.assertIn(landed, r.stdout)


if __name__ == "__main__":
    unittest.main()
