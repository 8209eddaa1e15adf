"""A small qemu guest that runs hamail-backend on a virtual disk, so that a
SIGKILL of the qemu process is a power cut for the guest: its page cache is
lost, and with it every write it had not yet sent to the virtual disk.

Everything comes from the host's own Debian packages (qemu-system-x86,
linux-image-amd64, busybox-static, e2fsprogs): the guest boots the host's
installed kernel with an initramfs made at test time from busybox, the kernel
modules the guest needs, the hamail-backend binary and its shared libraries,
and an /init script. Nothing is downloaded.

qemu runs under TCG, never KVM: on this project's machines /dev/kvm is PVM and
a stock Debian kernel does not boot under it (shared/LAB.md "Virtual machines")."""

import glob
import gzip
import io
import lzma
import os
import re
import shutil
import socket
import stat
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from qemu_process import QEMU, QemuProcess  # noqa: E402  (shared with tests/appliance/cluster.py)
BUSYBOX = "/bin/busybox"

# Guest modules in load order; dependencies (modules.dep) are added before each.
# crc32c_generic is ext4's and jbd2's soft dependency (metadata checksums).
GUEST_MODULES = ["virtio_pci", "virtio_blk", "virtio_net", "crc32c_generic", "ext4"]

GUEST_IP = "10.0.2.15"  # qemu user networking's default guest address


def missing_tools():
    """What the guest needs and this machine lacks, as a list of reasons (empty: all there)."""
    missing = []
    if not os.access(QEMU, os.X_OK):
        missing.append("qemu-system-x86_64 (package qemu-system-x86)")
    if not os.access(BUSYBOX, os.X_OK) or not _is_static(BUSYBOX):
        missing.append("a static /bin/busybox (package busybox-static)")
    for tool in ("mkfs.ext4", "e2fsck", "debugfs"):
        if not shutil.which(tool) and not os.access("/sbin/" + tool, os.X_OK):
            missing.append("%s (package e2fsprogs)" % tool)
    if kernel() is None:
        missing.append("a kernel image with its modules (package linux-image-amd64)")
    return missing


def _is_static(path):
    """True for an ELF64 executable without a PT_INTERP program header (no dynamic loader)."""
    try:
        with open(path, "rb") as f:
            head = f.read(1 << 16)
    except OSError:
        return False
    if head[:4] != b"\x7fELF" or head[4] != 2:
        return False
    phoff, = struct.unpack_from("<Q", head, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", head, 0x36)
    return all(struct.unpack_from("<I", head, phoff + i * phentsize)[0] != 3 for i in range(phnum))


def kernel():
    """(vmlinuz path, modules dir) of the newest installed kernel that has both, or None."""
    found = []
    for vmlinuz in glob.glob("/boot/vmlinuz-*"):
        version = vmlinuz[len("/boot/vmlinuz-"):]
        moddir = "/lib/modules/" + version
        if os.path.exists(os.path.join(moddir, "modules.dep")) and os.access(vmlinuz, os.R_OK):
            found.append((_version_key(version), vmlinuz, moddir))
    if not found:
        return None
    found.sort()
    return found[-1][1], found[-1][2]


def _version_key(version):
    return [int(x) if x.isdigit() else x for x in re.split(r"[.-]", version)]


def _sbin(tool):
    return shutil.which(tool) or "/sbin/" + tool


def module_files(moddir, names):
    """The .ko files for `names` and everything they depend on, in load order."""
    deps = {}
    paths = {}
    with open(os.path.join(moddir, "modules.dep")) as f:
        for line in f:
            target, _, rest = line.partition(":")
            name = os.path.basename(target).split(".ko")[0].replace("-", "_")
            paths[name] = os.path.join(moddir, target)
            deps[name] = [os.path.basename(d).split(".ko")[0].replace("-", "_") for d in rest.split()]
    order = []

    def add(name):
        if name in order:
            return
        if name not in paths:
            raise RuntimeError("kernel module %s not found in %s" % (name, moddir))
        # modules.dep lists the full closure, deepest last.
        for d in reversed(deps[name]):
            add(d)
        order.append(name)

    for n in names:
        add(n)
    return [paths[n] for n in order]


def shared_libraries(binary):
    """Every shared library `binary` loads (ldd), plus the dynamic loader, as host paths."""
    out = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True).stdout
    libs = []
    for line in out.splitlines():
        m = re.search(r"=>\s*(/\S+)", line) or re.match(r"\s*(/\S+)", line)
        if m:
            libs.append(m.group(1))
    return libs


class cpio_writer:
    """An uncompressed newc cpio archive (what the kernel unpacks as initramfs); uncompressed
    because decompressing under TCG costs seconds at every boot."""

    def __init__(self, path):
        self.f = open(path, "wb")
        self.ino = 1000
        self.dirs = set()

    def _entry(self, name, mode, data=b""):
        self.ino += 1
        name_b = name.encode() + b"\0"
        header = "070701" + "".join("%08X" % v for v in (
            self.ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(name_b), 0))
        self.f.write(header.encode() + name_b)
        self.f.write(b"\0" * ((4 - (110 + len(name_b)) % 4) % 4))
        self.f.write(data)
        self.f.write(b"\0" * ((4 - len(data) % 4) % 4))

    def directory(self, name):
        name = name.strip("/")
        if not name or name in self.dirs:
            return
        self.directory(os.path.dirname(name))
        self.dirs.add(name)
        self._entry(name, stat.S_IFDIR | 0o755)

    def file(self, name, data, mode=0o644):
        name = name.strip("/")
        self.directory(os.path.dirname(name))
        self._entry(name, stat.S_IFREG | mode, data)

    def host_file(self, name, path, mode=None):
        with open(path, "rb") as f:
            data = f.read()
        self.file(name, data, mode if mode is not None else (os.stat(path).st_mode & 0o777))

    def close(self):
        self._entry("TRAILER!!!", 0)
        self.f.close()


def boot_kernel(vmlinuz, workdir):
    """The kernel to hand qemu. A Debian bzImage spends ~11 s under TCG decompressing
    itself; its uncompressed ELF boots directly through the PVH entry point (CONFIG_PVH)
    in a fraction of that. Returns the ELF when it can be extracted, else `vmlinuz`."""
    with open(vmlinuz, "rb") as f:
        data = f.read()
    candidates = []
    for magic, decompress in ((b"\xfd7zXZ\x00", lambda b: lzma.LZMADecompressor(lzma.FORMAT_XZ).decompress(b)),
                              (b"\x1f\x8b\x08\x00", lambda b: gzip.GzipFile(fileobj=io.BytesIO(b)).read())):
        at = data.find(magic)
        if at >= 0:
            candidates.append((at, decompress))
    for at, decompress in sorted(candidates, key=lambda c: c[0]):
        try:
            elf = decompress(data[at:])
        except Exception:  # noqa: BLE001 - a false magic match: try the next one
            continue
        # XEN_ELFNOTE_PHYS32_ENTRY (18) in a "Xen" note: the PVH entry qemu needs.
        if elf[:4] == b"\x7fELF" and b"Xen\x00" in elf and _has_pvh_note(elf):
            path = os.path.join(workdir, "vmlinux")
            with open(path, "wb") as f:
                f.write(elf)
            return path
    return vmlinuz


def _has_pvh_note(elf):
    if elf[4] != 2:  # ELFCLASS64 only
        return False
    phoff, = struct.unpack_from("<Q", elf, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", elf, 0x36)
    for i in range(phnum):
        p_type, _flags, p_offset, _va, _pa, p_filesz = struct.unpack_from("<IIQQQQ", elf, phoff + i * phentsize)
        if p_type != 4:  # PT_NOTE
            continue
        pos, end = p_offset, p_offset + p_filesz
        while pos + 12 <= end:
            namesz, descsz, ntype = struct.unpack_from("<III", elf, pos)
            name = elf[pos + 12:pos + 12 + namesz]
            if name.rstrip(b"\0") == b"Xen" and ntype == 18:
                return True
            pos += 12 + ((namesz + 3) & ~3) + ((descsz + 3) & ~3)
    return False


INIT = r"""#!/bin/busybox sh
# /init of the power-cut guest: modules, network, the store's disk, hamail-backend.
/bin/busybox mkdir -p /proc /sys /dev /data /run /tmp
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
say() { echo "powercut-guest: $*" >/dev/ttyS0; }
for m in /modules/*.ko; do insmod "$m" || say "insmod $m failed"; done
ip link set lo up
ip addr add 127.0.0.1/8 dev lo 2>/dev/null
ip link set eth0 up
ip addr add @GUEST_IP@/24 dev eth0
ip route add default via 10.0.2.2
n=0
while [ ! -b /dev/vda ] && [ $n -lt 100 ]; do sleep 0.1; n=$((n + 1)); done
# The filesystem as production mounts it: ext4 defaults (data=ordered, delalloc, 5 s journal
# commits) and the kernel's default writeback (dirty pages written after 30 s).
if ! mount -t ext4 /dev/vda /data; then say "cannot mount /dev/vda"; poweroff -f; fi
dmesg | grep -i "EXT4-fs (vda)" | while read -r line; do say "$line"; done
say "dirty_expire_centisecs=$(cat /proc/sys/vm/dirty_expire_centisecs)"
mkdir -p /data/store /run/hamail
say "starting hamail-backend"
/usr/local/bin/hamail-backend --config /etc/hamail/backend.toml
say "hamail-backend exited with $?"
poweroff -f
"""


class Guest:
    """One guest definition (initramfs, disk image) that can be booted many times.

    `ports` maps listener names to guest TCP ports; each is forwarded from a
    loopback port on the host (qemu user networking, `restrict=on`: the guest
    reaches nothing but what is forwarded to it)."""

    def __init__(self, workdir, backend, config_text, accounts_text, ports, disk_mb=512, memory_mb=512):
        self.dir = workdir
        self.ports = ports
        self.memory_mb = memory_mb
        vmlinuz, moddir = kernel()
        self.kernel = boot_kernel(vmlinuz, workdir)
        self.initramfs = os.path.join(workdir, "initramfs.cpio")
        self._build_initramfs(moddir, backend, config_text, accounts_text)
        self.disk = os.path.join(workdir, "disk.raw")
        with open(self.disk, "wb") as f:
            f.truncate(disk_mb << 20)
        # Inode tables and journal initialised now, so the guest's lazy-init thread does not
        # write behind the test's back.
        subprocess.run([_sbin("mkfs.ext4"), "-q", "-F", "-E", "lazy_itable_init=0,lazy_journal_init=0",
                        "-L", "hamail-store", self.disk], check=True, capture_output=True)
        self.vm = None  # the running qemu (QemuProcess), or None
        self.last = None  # the latest qemu, kept after its cut: its console and log
        self.host_ports = {}
        self.boots = 0

    def _build_initramfs(self, moddir, backend, config_text, accounts_text):
        w = cpio_writer(self.initramfs)
        try:
            w.host_file("bin/busybox", BUSYBOX, 0o755)
            for i, path in enumerate(module_files(moddir, GUEST_MODULES)):
                w.host_file("modules/%02d-%s" % (i, os.path.basename(path)), path)
            # The binary without its debug sections: a smaller initramfs boots faster.
            stripped = os.path.join(self.dir, "hamail-backend")
            strip = shutil.which("objcopy")
            if strip is None or subprocess.run([strip, "--strip-debug", backend, stripped],
                                               capture_output=True).returncode != 0:
                shutil.copyfile(backend, stripped)
            w.host_file("usr/local/bin/hamail-backend", stripped, 0o755)
            for lib in shared_libraries(backend):
                w.host_file(lib, os.path.realpath(lib), 0o755)
            w.file("etc/hamail/backend.toml", config_text.encode())
            w.file("etc/hamail/accounts.toml", accounts_text.encode())
            w.file("etc/passwd", b"root:x:0:0:root:/:/bin/sh\n")
            w.file("etc/group", b"root:x:0:\n")
            w.file("etc/hosts", b"127.0.0.1 localhost\n")
            w.file("init", INIT.replace("@GUEST_IP@", GUEST_IP).encode(), 0o755)
        finally:
            w.close()

    def boot(self, timeout=180):
        """Starts qemu and waits until every forwarded port answers with a 220 greeting."""
        assert self.vm is None
        self.boots += 1
        console = os.path.join(self.dir, "console-%d.log" % self.boots)
        for attempt in range(5):
            self.host_ports = {name: free_port() for name in self.ports}
            fwd = ",".join("hostfwd=tcp:127.0.0.1:%d-:%d" % (self.host_ports[n], p) for n, p in self.ports.items())
            args = ["-accel", "tcg", "-M", "q35", "-smp", "1", "-m", str(self.memory_mb),
                    "-nodefaults", "-display", "none", "-no-reboot",
                    "-kernel", self.kernel, "-initrd", self.initramfs,
                    "-append", "console=ttyS0 panic=-1 quiet mitigations=off cryptomgr.notests",
                    "-drive", "file=%s,format=raw,if=virtio,cache=writeback" % self.disk,
                    "-netdev", "user,id=n0,restrict=on," + fwd, "-device", "virtio-net-pci,netdev=n0"]
            self.vm = self.last = QemuProcess(args, console, os.path.join(self.dir, "qemu.log"))
            deadline = time.monotonic() + timeout
            pending = set(self.host_ports)
            while pending and time.monotonic() < deadline:
                if not self.vm.alive():
                    break
                for name in list(pending):
                    if greets(self.host_ports[name]):
                        pending.discard(name)
                if pending:
                    time.sleep(0.1)
            if not pending:
                return
            rc = self.vm.exit_code()
            console_text = self.console_text()
            self.cut()
            if rc is not None and "Could not set up host forwarding" in self.qemu_log():
                continue  # a forwarded port was taken between free_port() and qemu: try others
            raise RuntimeError("the guest did not come up (qemu %s):\n%s\n%s" % (
                "exited with %s" % rc if rc is not None else "timed out", self.qemu_log(), console_text))
        raise RuntimeError("could not forward ports to the guest:\n" + self.qemu_log())

    def cut(self):
        """The power cut (QemuProcess.cut): SIGKILL of qemu, by pid, reaped."""
        if self.vm is not None:
            self.vm.cut()
        self.vm = None

    def alive(self):
        return self.vm is not None and self.vm.alive()

    def qemu_log(self):
        return self.last.log_text() if self.last else ""

    def console_text(self, limit=6000):
        return self.last.console_text(limit) if self.last else ""

    def read_store(self, dest, path="/store"):
        """What the disk holds after the cut, read without mounting it: a sparse copy of the
        image gets the journal replayed by e2fsck, then debugfs copies `path` out to `dest`.
        The image itself stays exactly as the cut left it, for the guest's next boot to
        recover. Returns e2fsck's output; raises if e2fsck finds damage it had to repair
        beyond the journal replay and summary counters."""
        copy = os.path.join(self.dir, "after-cut.raw")
        subprocess.run(["cp", "--sparse=always", self.disk, copy], check=True)
        try:
            fsck = subprocess.run([_sbin("e2fsck"), "-f", "-y", copy], capture_output=True, text=True)
            report = fsck.stdout + fsck.stderr
            if fsck.returncode >= 4:
                raise RuntimeError("e2fsck could not repair the guest's filesystem (%d):\n%s" % (
                    fsck.returncode, report))
            os.makedirs(dest, exist_ok=True)
            dump = subprocess.run([_sbin("debugfs"), "-R", "rdump %s %s" % (path, dest), copy],
                                  capture_output=True, text=True)
            if dump.returncode != 0 or not os.path.isdir(os.path.join(dest, os.path.basename(path))):
                raise RuntimeError("debugfs could not copy %s out of the image:\n%s%s" % (
                    path, dump.stdout, dump.stderr))
            return report
        finally:
            os.unlink(copy)


def free_port():
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def greets(port):
    """True when something behind `port` sends a 220 greeting (qemu's forwarder accepts
    host connections before the guest listens, then closes them)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            s.settimeout(5)
            return s.recv(4).startswith(b"220")
    except OSError:
        return False
