#!/usr/bin/env bash
# First boot of one appliance VM with a setup disk (label HAMAIL-SETUP): hamail-setup.service
# configures it as node1 of a two-node layout (tests/appliance/layouts/vm-pair.toml) — host name,
# address, corosync, DRBD metadata and the store's first filesystem on a real DRBD 8.4 device,
# slapd's cn=config and seed database,
# corosync and pacemaker started, the CIB loaded — then the same disk is booted again and
# hamail-setup must change nothing. Reads what the guest printed on its serial console.
#
# Usage: tests/appliance/first-boot.sh [IMAGE]   (default build/appliance/hamail-appliance.qcow2)
# The image is not modified (the VM writes to a qcow2 overlay in a scratch folder).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root_dir="$(cd "$here/../.." && pwd)"
image="$(realpath "${1:-$root_dir/build/appliance/hamail-appliance.qcow2}")"
deadline="${HAMAIL_BOOT_DEADLINE:-600}"
[[ -f "$image" ]] || { echo "$0: no image at $image (cmake/dev.sh appliance)" >&2; exit 2; }

work="$(mktemp -d)"
qemu_pid=""
cleanup() {
  if [[ -n "$qemu_pid" ]] && kill -0 "$qemu_pid" 2>/dev/null; then kill -9 "$qemu_pid"; fi
  rm -rf "$work"
}
trap cleanup EXIT

# The setup disk: setup.toml, the layout, a cluster key; an ext4 filesystem made from a folder.
mkdir "$work/setup"
cp "$here/layouts/vm-pair.toml" "$work/setup/layout.toml"
head -c 256 /dev/urandom > "$work/setup/authkey"
# node1 is a directory provider and runs a proxy in that layout: slapd's TLS files (one
# self-signed certificate does for a node alone), the root DN's password, the proxy's file.
mkdir "$work/setup/ldap-tls" "$work/setup/etc-hamail"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
  -subj "/O=hamail first boot/CN=replicator" -keyout "$work/setup/ldap-tls/server.key" \
  -out "$work/setup/ldap-tls/server.crt" 2>/dev/null
for f in ca.crt replicator.crt; do cp "$work/setup/ldap-tls/server.crt" "$work/setup/ldap-tls/$f"; done
cp "$work/setup/ldap-tls/server.key" "$work/setup/ldap-tls/replicator.key"
echo "first-boot directory secret" > "$work/setup/ldap-admin.secret"
printf '[proxy]\nname = "first-boot"\n' > "$work/setup/etc-hamail/proxy.toml"
cat > "$work/setup/setup.toml" <<'TOML'
[setup]
node = "node1"
layout = "layout.toml"
corosync_authkey = "authkey"
files = "etc-hamail"
directory_tls = "ldap-tls"
directory_admin_password = "ldap-admin.secret"
TOML
truncate -s 16M "$work/setup.img"
mkfs.ext4 -q -F -L HAMAIL-SETUP -d "$work/setup" "$work/setup.img"
truncate -s 512M "$work/store-a.raw"         # store-a's DRBD backing disk (vdb)
qemu-img create -q -f qcow2 -b "$image" -F qcow2 "$work/node1.qcow2"

# boot NAME [PATTERN]: boots node1 until hamail-setup has reported, the login prompt is up and
# the console shows PATTERN (when given).
boot() {
  local also="${2:-hamail-setup: changed}"
  local log="$work/$1.console"
  : > "$log"
  local t0
  t0=$(date +%s)
  qemu-system-x86_64 -accel tcg -M q35 -m 1536 -smp 1 -display none \
    -drive "file=$work/node1.qcow2,format=qcow2,if=virtio" \
    -drive "file=$work/store-a.raw,format=raw,if=virtio" \
    -drive "file=$work/setup.img,format=raw,if=virtio" \
    -nic user,model=virtio-net-pci \
    -serial "file:$log" &
  qemu_pid=$!
  while kill -0 "$qemu_pid" 2>/dev/null; do
    # (The first boot's getty prompts before the host name changes: any name will do.)
    if grep -qa 'hamail-setup: changed' "$log" && grep -qa ' login:' "$log" &&
       grep -qa "$also" "$log"; then break; fi
    if grep -qa 'hamail-setup: .*failed\|hamail-setup: .*error' "$log"; then sleep 2; break; fi
    if (( $(date +%s) - t0 > deadline )); then echo "timeout"; break; fi
    sleep 2
  done
  echo "$1: $(( $(date +%s) - t0 )) s"
  { kill -9 "$qemu_pid" && wait "$qemu_pid"; } 2>/dev/null || true
  qemu_pid=""
  tr -d '\r' < "$log" > "$log.txt"
}

failures=0
expect() { # expect FILE LABEL PATTERN
  if grep -qaE "$3" "$1"; then echo "PASS $2"; else echo "FAIL $2"; failures=$((failures + 1)); fi
}

echo "== first boot"
boot first 'hamail-setup: the cluster configuration is loaded'
sed -n '/hamail-setup: node/,/hamail-setup: changed/p' "$work/first.console.txt"
f="$work/first.console.txt"
expect "$f" "hamail-setup read the setup disk" 'hamail-setup: node node1 of layout .*answers from /run/hamail-setup/media/setup.toml'
expect "$f" "DRBD metadata created on the store's disk" 'run drbdadm create-md --force store-a'
expect "$f" "the store's first filesystem made as the one Primary" 'run mkfs.ext4 -q -L store-a /dev/drbd1'
expect "$f" "slapd's cn=config built (schema, database, replication)" 'run slapmodify -n0 -F /etc/ldap/slapd.d.hamail-new -l /var/lib/hamail-setup/slapd-replication-2.ldif'
expect "$f" "the directory database seeded" 'run slapadd -q -w -F /etc/ldap/slapd.d -b dc=example,dc=org'
expect "$f" "the CIB load scheduled after pacemaker" 'run systemd-run --unit=hamail-load-cib'
expect "$f" "the CIB loaded on the first node" 'hamail-setup: the cluster configuration is loaded'
expect "$f" "it finished" 'hamail-setup: changed [0-9]+ thing'
if grep -qaE 'hamail-setup: .*(failed|error)' "$f"; then
  echo "FAIL hamail-setup reported an error:"; grep -aE 'hamail-setup: .*(failed|error)' "$f"
  failures=$((failures + 1))
fi

echo "== second boot of the same disk"
boot second
f="$work/second.console.txt"
sed -n '/hamail-setup: node/,/hamail-setup: changed/p' "$f"
expect "$f" "the second run changes nothing" 'hamail-setup: changed 0 thing'
expect "$f" "the host name is the node's after a reboot" 'node1 login:'
if grep -qa 'run mkfs' "$f"; then echo "FAIL the second run formatted the store"; failures=$((failures + 1)); fi
if grep -qa 'run slapadd' "$f"; then echo "FAIL the second run touched slapd's files"; failures=$((failures + 1)); fi

[[ $failures -eq 0 ]] && echo "first-boot: all passed" || echo "first-boot: $failures failed"
[[ $failures -eq 0 ]]
