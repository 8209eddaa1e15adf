"""The load balancer examples in crm-config/ are valid for the programs that read them: HAProxy's
own check (haproxy -c) and keepalived's (keepalived -t), both from Debian; a broken copy of each
fails the same check, so the check can fail."""

import os
import subprocess
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
CRM = os.path.join(HERE, "..", "..", "crm-config")
HAPROXY = os.path.join(CRM, "haproxy", "haproxy.cfg")
KEEPALIVED = os.path.join(CRM, "lvs", "keepalived.conf")


def check(cmd, path):
    return subprocess.run(cmd + [path], capture_output=True, text=True, timeout=60)


class lb_configs_test(unittest.TestCase):
    def test_haproxy_example(self):
        r = check(["haproxy", "-c", "-f"], HAPROXY)
        self.assertEqual(0, r.returncode, r.stdout + r.stderr)
        with open(HAPROXY) as f:
            text = f.read()
        self.assertIn("send-proxy-v2", text)
        self.assertIn("uri /ready", text)
        with tempfile.NamedTemporaryFile("w", suffix=".cfg") as bad:
            bad.write(text.replace("balance leastconn", "balance nonsense", 1))
            bad.flush()
            self.assertNotEqual(0, check(["haproxy", "-c", "-f"], bad.name).returncode)

    def test_keepalived_example(self):
        r = check(["keepalived", "-t", "-f"], KEEPALIVED)
        self.assertEqual(0, r.returncode, r.stdout + r.stderr)
        with open(KEEPALIVED) as f:
            text = f.read()
        self.assertIn("path /ready", text)
        with tempfile.NamedTemporaryFile("w", suffix=".conf") as bad:
            bad.write(text.replace("lb_algo wlc", "lb_algo nonsense", 1))
            bad.flush()
            self.assertNotEqual(0, check(["keepalived", "-t", "-f"], bad.name).returncode)


if __name__ == "__main__":
    unittest.main()
