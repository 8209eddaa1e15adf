#!/usr/bin/env bash
# The last check of issue 16 that a chroot cannot make: the proxy's systemd unit, enabled by the
# package, starts at boot under a real systemd, as the hamail user, and binds its privileged ports.
#
# Builds a Debian 12 root from the archive with mmdebstrap (systemd, Debian's kernel) and the
# hamail-proxy package from DIR installed by apt, turns it into a disk with mkfs.ext4 -d (no loop
# mounts), boots it under qemu (TCG: ../shared/LAB.md, "Virtual machines") with the root's own
# kernel and initrd, and reads what a unit in the guest writes to a second serial port once
# multi-user.target is reached. Nothing in the hamail configuration is changed but the store
# login's password file the operator writes (docs/install.md, "A frontend node").
#
# Usage: tests/packaging/boot-check.sh DIR      (root; network to the Debian archive)
set -euo pipefail

dir="$(cd "${1:?usage: $0 DIR-with-the-.debs}" && pwd)"
mirror="${HAMAIL_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
deadline="${HAMAIL_BOOT_DEADLINE:-300}"
work="$(mktemp -d)"
qemu_pid=""
cleanup() {
  if [[ -n "$qemu_pid" ]] && kill -0 "$qemu_pid" 2>/dev/null; then kill -9 "$qemu_pid"; fi
  rm -rf "$work"
}
trap cleanup EXIT

shopt -s nullglob
proxy_deb=("$dir"/hamail-proxy_*.deb)
[[ ${#proxy_deb[@]} -eq 1 ]] || { echo "$0: need exactly one hamail-proxy_*.deb in $dir" >&2; exit 2; }
mkdir "$work/debs"
cp "${proxy_deb[0]}" "$work/debs/"

cat > "$work/bootcheck.service" <<'UNIT'
[Unit]
Description=hamail boot check: report the proxy's state on the second serial port, power off
After=multi-user.target hamail-proxy.service
[Service]
Type=oneshot
ExecStart=/usr/local/sbin/hamail-bootcheck
[Install]
WantedBy=multi-user.target
UNIT
cat > "$work/hamail-bootcheck" <<'SH'
#!/bin/sh
# Give the proxy a few seconds to bind (it starts with multi-user.target).
for i in $(seq 1 30); do
  ss -Hltn 'sport = :993' | grep -q . && break
  sleep 1
done
{
  echo "BOOTCHECK-BEGIN"
  echo "uptime: $(cut -d' ' -f1 /proc/uptime)"
  echo "enabled: $(systemctl is-enabled hamail-proxy)"
  echo "active: $(systemctl is-active hamail-proxy)"
  pid="$(systemctl show -p MainPID --value hamail-proxy)"
  echo "user: $(ps -o user= -p "$pid")"
  echo "listening: $(ss -Hltn | awk '{ print $4 }' | sort -t: -k2 -n | tr '\n' ' ')"
  echo "journal:"
  journalctl -b -u hamail-proxy --no-pager -o cat | tail -20
  echo "BOOTCHECK-END"
} > /dev/ttyS1 2>&1
systemctl poweroff
SH
chmod +x "$work/hamail-bootcheck"
printf 'secret\n' > "$work/proxy.secret"

echo "== root filesystem (mmdebstrap, Debian 12, systemd, the kernel, hamail-proxy)"
t0=$(date +%s)
mmdebstrap --variant=apt --mode=root \
  --include=systemd-sysv,udev,kmod,linux-image-amd64,iproute2,procps,initramfs-tools \
  --customize-hook="copy-in $work/debs /tmp" \
  --customize-hook='chroot "$1" sh -c "DEBIAN_FRONTEND=noninteractive apt-get install -y -q /tmp/debs/*.deb"' \
  --customize-hook="copy-in $work/bootcheck.service /etc/systemd/system" \
  --customize-hook="copy-in $work/hamail-bootcheck /usr/local/sbin" \
  --customize-hook='chroot "$1" systemctl enable bootcheck.service' \
  --customize-hook="copy-in $work/proxy.secret /etc/hamail" \
  --customize-hook='chroot "$1" sh -c "chgrp hamail /etc/hamail/proxy.secret && chmod 0640 /etc/hamail/proxy.secret"' \
  --customize-hook='echo hamail-bootcheck > "$1/etc/hostname"' \
  --customize-hook='rm -rf "$1/tmp/debs"' \
  bookworm "$work/root" "$mirror" > "$work/mmdebstrap.log" 2>&1 ||
  { tail -30 "$work/mmdebstrap.log"; exit 1; }
echo "root built in $(( $(date +%s) - t0 )) s"

cp "$work"/root/boot/vmlinuz-* "$work/vmlinuz"
cp "$work"/root/boot/initrd.img-* "$work/initrd.img"
truncate -s 3G "$work/disk.raw"
mkfs.ext4 -q -F -L root -d "$work/root" "$work/disk.raw"
rm -rf "$work/root"

echo "== booting under qemu (TCG)"
: > "$work/report"
t0=$(date +%s)
qemu-system-x86_64 -accel tcg -M q35 -m 1024 -smp 1 -display none -no-reboot \
  -kernel "$work/vmlinuz" -initrd "$work/initrd.img" \
  -append "root=/dev/vda rw console=ttyS0 systemd.show_status=0" \
  -drive "file=$work/disk.raw,format=raw,if=virtio" \
  -nic none \
  -serial "file:$work/console.log" -serial "file:$work/report" &
qemu_pid=$!
while kill -0 "$qemu_pid" 2>/dev/null; do
  if (( $(date +%s) - t0 > deadline )); then
    echo "FAIL the guest did not power off within $deadline s; console tail:"
    tail -30 "$work/console.log"
    exit 1
  fi
  sleep 2
done
qemu_pid=""
# The serial port ends lines with CR LF.
tr -d '\r' < "$work/report" > "$work/report.txt" && mv "$work/report.txt" "$work/report"
echo "guest ran for $(( $(date +%s) - t0 )) s"
sed -n '/BOOTCHECK-BEGIN/,/BOOTCHECK-END/p' "$work/report"

failures=0
expect() { # expect LABEL PATTERN
  if grep -qE "$2" "$work/report"; then echo "PASS $1"; else echo "FAIL $1"; failures=$((failures + 1)); fi
}
expect "hamail-proxy.service enabled by the package" '^enabled: enabled$'
expect "hamail-proxy.service active after boot" '^active: active$'
expect "the proxy runs as hamail" '^user: hamail$'
for port in 25 110 143 465 587 993 995; do
  expect "the proxy listens on port $port (CAP_NET_BIND_SERVICE)" "^listening: .*0\\.0\\.0\\.0:$port "
done
[[ $failures -eq 0 ]] && echo "boot-check: all passed" || echo "boot-check: $failures failed"
[[ $failures -eq 0 ]]
