#!/usr/bin/env bash
# Boots the built appliance disk the way an operator's hypervisor does (BIOS, GRUB from the
# disk's MBR, no -kernel) under qemu (TCG) and checks that it reaches a login prompt on the
# serial console with no unit failed on the way. Prints the time to the prompt.
#
# Usage: tests/appliance/boot-image.sh [IMAGE]   (default build/appliance/hamail-appliance.qcow2)
# The image is opened with snapshot=on: the run leaves it unchanged.
set -euo pipefail

root_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
image="${1:-$root_dir/build/appliance/hamail-appliance.qcow2}"
deadline="${HAMAIL_BOOT_DEADLINE:-420}"
[[ -f "$image" ]] || { echo "$0: no image at $image (build it: cmake/dev.sh appliance)" >&2; exit 2; }

work="$(mktemp -d)"
qemu_pid=""
cleanup() {
  if [[ -n "$qemu_pid" ]] && kill -0 "$qemu_pid" 2>/dev/null; then kill -9 "$qemu_pid"; fi
  rm -rf "$work"
}
trap cleanup EXIT

: > "$work/console.log"
t0=$(date +%s.%N)
qemu-system-x86_64 -accel tcg -M q35 -m 1536 -smp 1 -display none -nic none \
  -drive "file=$image,format=qcow2,if=virtio,snapshot=on" \
  -serial "file:$work/console.log" &
qemu_pid=$!
result=timeout
while kill -0 "$qemu_pid" 2>/dev/null; do
  if grep -qa 'hamail-appliance login:' "$work/console.log"; then result=login; break; fi
  if (( $(date +%s) - ${t0%.*} > deadline )); then break; fi
  sleep 1
done
t1=$(date +%s.%N)
{ kill -9 "$qemu_pid" && wait "$qemu_pid"; } 2>/dev/null || true
qemu_pid=""

failures=0
check() { if eval "$2"; then echo "PASS $1"; else echo "FAIL $1"; failures=$((failures + 1)); fi; }
# GRUB draws its menu on the serial port too (GRUB_TERMINAL="console serial"); the kernel is
# quiet (Debian's default), the serial getty names the system.
check "GRUB from the disk's MBR on the serial console" "grep -qa 'GNU GRUB' '$work/console.log'"
check "Debian 12 on the serial getty" "grep -qa 'Debian GNU/Linux 12 hamail-appliance ttyS0' '$work/console.log'"
check "login prompt on the serial console" "[[ $result == login ]]"
check "no unit failed during boot" "! grep -qa 'FAILED' '$work/console.log'"
grep -a 'FAILED' "$work/console.log" | head -10 || true
if [[ $result == login ]]; then
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "boot to login prompt: %.1f s (TCG)\n", b - a }'
else
  echo "console tail:"; tail -30 "$work/console.log"
fi
[[ $failures -eq 0 ]]
