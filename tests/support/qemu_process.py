"""One qemu guest process, as the power-cut tests drive it: the single-guest power-cut test
(tests/powercut/guest.py) and the appliance cluster test (tests/appliance/cluster.py).

- started in a session of its own, and SIGKILLed by the kernel when the test process dies (a
  ctest timeout, a crash), so no guest outlives its test; its pid can be recorded in a file for
  a clean-up that runs outside the test process;
- its serial console in a file, qemu's own messages in another;
- `cut()`: the power cut. SIGKILL of the qemu process (by pid, then reaped): the guest's page
  cache goes with it, and with it every write the guest had not yet sent to its virtual disk.
  That, unlike a SIGKILL of a daemon (whose writes the kernel still has), is what proves an
  fsync (../shared/LAB.md, "Virtual machines").

qemu runs under TCG: on these machines a KVM guest hangs early in boot.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import subprocess

QEMU = shutil.which("qemu-system-x86_64") or "/usr/bin/qemu-system-x86_64"


def _die_with_parent() -> None:
    """In the child before exec: SIGKILL it when the process that started it dies."""
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


class QemuProcess:
    """One run of qemu: `args` are qemu's arguments without the serial console, which goes to
    `console`; qemu's stdout and stderr are appended to `log`; with `pid_file`, the pid is
    appended there."""

    def __init__(self, args: list[str], console: str | os.PathLike, log: str | os.PathLike,
                 pid_file: str | os.PathLike | None = None):
        self.console = os.fspath(console)
        self.log = os.fspath(log)
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen([QEMU, *args, "-serial", f"file:{self.console}"],
                                         stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                         start_new_session=True, preexec_fn=_die_with_parent)
        if pid_file is not None:
            with open(pid_file, "a") as f:
                f.write(f"{self.proc.pid}\n")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def exit_code(self) -> int | None:
        return self.proc.poll()

    def cut(self) -> None:
        """The power cut: SIGKILL of qemu, by pid, and reaped. Nothing if it had exited."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def console_text(self, limit: int | None = None) -> str:
        """What the guest wrote on its serial console (the last `limit` characters)."""
        try:
            with open(self.console, "rb") as f:
                text = f.read().decode("utf-8", "replace").replace("\r", "")
        except OSError:
            return ""
        return text[-limit:] if limit else text

    def log_text(self, limit: int = 4000) -> str:
        """qemu's own messages (the last `limit` characters)."""
        try:
            with open(self.log, errors="replace") as f:
                return f.read()[-limit:]
        except OSError:
            return ""
