"""PID 1 of a lab node's pid namespace (see lab.py): starts `corosync -f`, waits until it
answers, starts `pacemakerd -f`, then reaps every process of the node until it is killed."""

import os
import subprocess
import sys
import time

node_dir = sys.argv[1]


def spawn(argv, out):
    with open(os.path.join(node_dir, out), "ab") as f:
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=f, stderr=f)


spawn(["corosync", "-f"], "corosync.out")
deadline = time.monotonic() + 20
while subprocess.run(["corosync-cfgtool", "-s"], capture_output=True).returncode != 0:
    if time.monotonic() > deadline:
        sys.stderr.write("corosync did not start\n")
        break
    time.sleep(0.05)
spawn(["pacemakerd", "-f"], "pacemakerd.out")
while True:
    try:
        os.wait()
    except ChildProcessError:
        time.sleep(1)
    except InterruptedError:
        pass
