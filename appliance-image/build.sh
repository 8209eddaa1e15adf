#!/usr/bin/env bash
# Builds the hamail VM appliance image from Debian 12's archive and hamail's own Debian packages
# (docs/appliance.md):
#
#   OUT/hamail-appliance.qcow2   the disk: one ext4 partition, GRUB on the MBR (boots under
#                                qemu/libvirt/Proxmox, or converted for VMware), serial console
#   OUT/vmlinuz, OUT/initrd.img  the same kernel and initrd, for direct boot (-kernel) in tests
#   OUT/manifest.txt             every installed package and its version, and the hamail .debs
#
# Usage: appliance-image/build.sh [--debs DIR] [--out DIR] [--size SIZE]
#   --debs DIR  use the hamail .debs in DIR (default: build them with cmake/dev.sh packages)
#   --out DIR   where the image goes (default: build/appliance)
#   --size SIZE the disk's virtual size (default 8G; sparse)
#
# Needs root, the packages `cmake/install-deps.sh --packaging` installs, and the Debian
# archive (HAMAIL_DEBIAN_MIRROR, default http://deb.debian.org/debian, for bookworm and
# bookworm-updates; HAMAIL_DEBIAN_SECURITY_MIRROR for bookworm-security): nothing else is
# downloaded. The root filesystem is made with mmdebstrap and written into the partition
# with mkfs.ext4 -d (no loop mounts); GRUB is installed by booting that disk once under qemu
# with the root's own kernel and a one-shot init that runs grub-install and update-grub.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root_dir="$(cd "$here/.." && pwd)"
mirror="${HAMAIL_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
security="${HAMAIL_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}"
suite=bookworm
debs=""
out="$root_dir/build/appliance"
size=8G

while [[ $# -gt 0 ]]; do
  case "$1" in
    --debs) debs="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --size) size="$2"; shift 2 ;;
    *) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
  esac
done

say() { printf '\n== %s\n' "$*"; }
die() { printf 'appliance: %s\n' "$*" >&2; exit 1; }
[[ $(id -u) -eq 0 ]] || die "needs root (mmdebstrap --mode=root)"

mkdir -p "$out"
out="$(cd "$out" && pwd)"
if [[ -z "$debs" ]]; then
  debs="$out/debs"
  bash "$root_dir/cmake/dev.sh" packages "$debs"
fi
debs="$(cd "$debs" && pwd)"
shopt -s nullglob
hamail_debs=()
for d in "$debs"/hamail-*.deb; do
  [[ "$d" == *-dbgsym_* ]] || hamail_debs+=("$d")
done
[[ ${#hamail_debs[@]} -eq 7 ]] || die "expected the 7 hamail packages in $debs, found ${#hamail_debs[@]}"

work="$(mktemp -d "$out/.work.XXXXXX")"
qemu_pid=""
cleanup() {
  if [[ -n "$qemu_pid" ]] && kill -0 "$qemu_pid" 2>/dev/null; then kill -9 "$qemu_pid"; fi
  rm -rf "$work"
}
trap cleanup EXIT
mkdir "$work/debs"
cp "${hamail_debs[@]}" "$work/debs/"

# What an appliance node runs (docs/appliance.md, "What runs where"): the cluster stack, the
# directory server, the load balancers, the hamail packages; a serial console and SSH.
packages=(
  systemd-sysv udev kmod dbus linux-image-amd64 initramfs-tools grub-pc
  iproute2 iputils-ping openssh-server ca-certificates ssl-cert openssl procps less vim-tiny
  nano psmisc lsof rsync curl python3 e2fsprogs parted
  pacemaker pacemaker-cli-utils corosync pcs crmsh resource-agents fence-agents
  drbd-utils sbd slapd ldap-utils haproxy keepalived ipvsadm
  swaks
)
include="$(IFS=,; echo "${packages[*]}")"

say "root filesystem: mmdebstrap $suite (${#packages[@]} packages + the hamail .debs)"
t0=$(date +%s)
# Debconf answers given before anything is installed: slapd is left unconfigured (first boot
# configures it for the node's role), GRUB is installed by the one-shot boot below.
cat > "$work/debconf" <<'DEBCONF'
slapd slapd/no_configuration boolean true
grub-pc grub-pc/install_devices multiselect
grub-pc grub-pc/install_devices_empty boolean true
DEBCONF
mmdebstrap --variant=apt --mode=root --include="$include" \
  --essential-hook="chroot \"\$1\" debconf-set-selections < $work/debconf" \
  --customize-hook="copy-in $work/debs /tmp" \
  --customize-hook='chroot "$1" sh -c "DEBIAN_FRONTEND=noninteractive apt-get install -y -q /tmp/debs/*.deb"' \
  --customize-hook='rm -rf "$1/tmp/debs"' \
  --customize-hook="sync-in $here/rootfs /" \
  --customize-hook='chroot "$1" /usr/local/lib/hamail-appliance/configure-image' \
  --customize-hook="chroot \"\$1\" dpkg-query -W -f='\${Package} \${Version} \${Architecture}\\n' > $work/manifest.packages" \
  "$suite" "$work/root" \
  "deb $mirror $suite main" "deb $mirror $suite-updates main" \
  "deb $security $suite-security main" > "$work/mmdebstrap.log" 2>&1 ||
  { tail -40 "$work/mmdebstrap.log"; die "mmdebstrap failed (log above)"; }
echo "root built in $(( $(date +%s) - t0 )) s ($(du -sh "$work/root" | cut -f1))"

cp "$work"/root/boot/vmlinuz-* "$work/vmlinuz"
cp "$work"/root/boot/initrd.img-* "$work/initrd.img"

say "disk: MBR, one ext4 partition from the root (mkfs.ext4 -d)"
disk="$work/disk.raw"
truncate -s "$size" "$disk"
# 1 MiB before the partition: the MBR and GRUB's core image.
printf 'label: dos\nstart=2048, type=83, bootable\n' | sfdisk -q "$disk"
part_bytes=$(( $(stat -c %s "$disk") - 1048576 ))
truncate -s "$part_bytes" "$work/part.raw"
mkfs.ext4 -q -F -L hamail-root -d "$work/root" "$work/part.raw"
dd if="$work/part.raw" of="$disk" bs=1M seek=1 conv=notrunc,sparse status=none
rm -f "$work/part.raw"
rm -rf "$work/root"

say "bootloader: one boot with the root's kernel runs grub-install and update-grub"
t0=$(date +%s)
qemu-system-x86_64 -accel tcg -M q35 -m 1024 -smp 1 -display none -no-reboot -nic none \
  -kernel "$work/vmlinuz" -initrd "$work/initrd.img" \
  -append "root=/dev/vda1 rw console=ttyS0 init=/usr/local/lib/hamail-appliance/install-bootloader" \
  -drive "file=$disk,format=raw,if=virtio" \
  -serial "file:$work/grub-install.log" &
qemu_pid=$!
deadline=$(( $(date +%s) + 600 ))
while kill -0 "$qemu_pid" 2>/dev/null; do
  (( $(date +%s) < deadline )) || { tail -20 "$work/grub-install.log"; die "bootloader boot timed out"; }
  sleep 2
done
qemu_pid=""
grep -q '^HAMAIL-BOOTLOADER-OK' "$work/grub-install.log" ||
  { tail -30 "$work/grub-install.log"; die "grub-install failed in the guest (log above)"; }
echo "bootloader installed in $(( $(date +%s) - t0 )) s"

say "qcow2"
qemu-img convert -c -O qcow2 "$disk" "$work/hamail-appliance.qcow2"
rm -f "$disk"

{
  echo "# hamail appliance image: built $(date -u +%Y-%m-%dT%H:%M:%SZ) from $suite, $suite-updates ($mirror)"
  echo "#   and $suite-security ($security)"
  echo "# hamail source: $(git -C "$root_dir" describe --always --dirty 2>/dev/null || echo unknown)"
  echo "# hamail packages:"
  for d in "${hamail_debs[@]}"; do
    printf '#   %s %s sha256:%s\n' "$(basename "$d")" "$(dpkg-deb -f "$d" Version)" \
      "$(sha256sum "$d" | cut -d' ' -f1)"
  done
  echo "# installed packages (package version architecture):"
  sort "$work/manifest.packages"
} > "$work/manifest.txt"

mv "$work/hamail-appliance.qcow2" "$work/vmlinuz" "$work/initrd.img" "$work/manifest.txt" "$out/"
say "done: $out"
ls -l "$out"/hamail-appliance.qcow2 "$out"/vmlinuz "$out"/initrd.img "$out"/manifest.txt
echo "packages installed: $(grep -vc '^#' "$out/manifest.txt")"
