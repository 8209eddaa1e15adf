"""hamail-backend's operational HTTP endpoint (docs/metrics.md): a listener with
protocol = "http" serves /metrics, /ready and /live to real HTTP clients
(Python's http.client and curl), and /ready turns 503 while the daemon drains."""

import http.client
import shutil
import signal
import socket
import subprocess
import time
import unittest

from hamail_harness import Backend

ACCOUNTS = [{"id": "alice", "address": "alice@example.org"}]
LISTENERS = (("lmtp", "lmtp", "none", "127.0.0.1", 0),
             ("metrics", "http", "none", "127.0.0.1", 0))


def get(port, path, headers=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", path, headers=headers or {})
    r = c.getresponse()
    out = (r.status, dict(r.getheaders()), r.read().decode())
    c.close()
    return out


class backend_metrics_test(unittest.TestCase):
    def setUp(self):
        self.b = Backend(ACCOUNTS, listeners=LISTENERS, limits={"drain_timeout": "5s"})
        self.b.start()
        self.port = self.b.ports["metrics"]

    def tearDown(self):
        self.b.cleanup()

    def test_live_ready_and_metrics(self):
        self.assertEqual((200, "live\n"), get(self.port, "/live")[::2])
        self.assertEqual((200, "ready\n"), get(self.port, "/ready")[::2])
        lmtp = socket.create_connection(("127.0.0.1", self.b.ports["lmtp"]), timeout=10)
        lmtp.recv(512)  # the greeting: the session is admitted
        status, headers, body = get(self.port, "/metrics")
        self.assertEqual(200, status)
        self.assertEqual("text/plain; version=0.0.4; charset=utf-8", headers["Content-Type"])
        # This scrape's own connection and the LMTP session are open.
        self.assertIn("# TYPE hamail_backend_connections_active gauge\n"
                      "hamail_backend_connections_active 2.0\n", body)
        self.assertRegex(body, r"\nhamail_backend_connections_accepted_total [4-9]\n")
        self.assertIn("\nhamail_backend_connections_rejected_total 0\n", body)
        status, headers, body = get(self.port, "/metrics",
                                    {"Accept": "application/openmetrics-text; version=1.0.0"})
        self.assertEqual("application/openmetrics-text; version=1.0.0; charset=utf-8",
                         headers["Content-Type"])
        self.assertTrue(body.endswith("\n# EOF\n"), body)
        self.assertEqual(404, get(self.port, "/nothing")[0])
        lmtp.close()

    @unittest.skipUnless(shutil.which("curl"), "curl is not installed")
    def test_curl_keeps_the_connection_alive(self):
        r = subprocess.run(["curl", "-s", "-o", "/dev/null", "-o", "/dev/null", "-w",
                            "%{http_code}:%{num_connects} ",
                            "http://127.0.0.1:%d/ready" % self.port,
                            "http://127.0.0.1:%d/metrics" % self.port],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(0, r.returncode, r.stderr)
        self.assertEqual("200:1 200:0 ", r.stdout)

    def test_ready_is_503_while_draining(self):
        # A request head begun before SIGTERM is inside a request, so the drain
        # lets it finish; /ready then says the daemon is going away.
        h = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        h.sendall(b"GET /ready HTTP/1.1\r\nHost: a\r\n")
        # An idle keep-alive connection is closed by the drain.
        idle = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        idle.request("GET", "/live")
        r = idle.getresponse()
        self.assertEqual((200, b"live\n"), (r.status, r.read()))
        self.b.proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        with self.assertRaises(OSError):
            socket.create_connection(("127.0.0.1", self.port), timeout=2).close()
        h.sendall(b"\r\n")
        got = b""
        while True:
            chunk = h.recv(4096)
            if not chunk:
                break
            got += chunk
        h.close()
        self.assertTrue(got.startswith(b"HTTP/1.1 503 Service Unavailable\r\n"), got)
        self.assertIn(b"\r\nConnection: close\r\n", got)
        self.assertTrue(got.endswith(b"\r\n\r\nnot ready: shutting down\n"), got)
        with self.assertRaises((ConnectionError, http.client.HTTPException, OSError)):
            idle.request("GET", "/live")
            idle.getresponse()
        idle.close()
        self.assertEqual(0, self.b.proc.wait(timeout=15))

if __name__ == "__main__":
    unittest.main()
