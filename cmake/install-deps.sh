#!/usr/bin/env bash
# Installs everything hamail's build, demo and tests need, from Debian 12
# packages only. Idempotent: when every package is already installed it does
# nothing and returns in well under a second.
#
# Usage: cmake/install-deps.sh [--bench] [--packaging] [--list]
#   --bench      also install the benchmark's peers (Dovecot, Postfix)
#   --packaging  also install what building and checking the Debian packages needs
#                (cmake/dev.sh packages, tests/packaging/check-packages.sh)
#   --list   print the package list and exit
set -euo pipefail

packages=(
  # toolchain
  g++ cmake ninja-build pkg-config make clang-format
  # the fuzz preset (tests/fuzz): clang 14 and its runtimes (libFuzzer, ASan, UBSan), which
  # clang only recommends
  clang libclang-rt-14-dev
  # libraries (see docs/adr/0002-dependencies.md)
  libboost1.81-dev libssl-dev libldap-dev libgmime-3.0-dev libcrypt-dev
  libargon2-dev libtomlplusplus-dev libcli11-dev libcppunit-dev zlib1g-dev
  libfmt-dev
  # test-time programs: a real directory server and real mail clients
  slapd ldap-utils openssl python3 curl swaks libnet-ssleay-perl libio-socket-ssl-perl
  isync neomutt tmux fetchmail
  # load balancers in front of hamail-proxy: HAProxy in the proxy tests, keepalived (LVS) to
  # check the example configuration (their services stay as Debian installs them: no
  # configuration of theirs is used)
  haproxy keepalived
  # Postfix as the smarthost of hamail-proxy's SMTP frontend (tests/integration/test_proxy_smtp.py
  # runs its own instance on loopback; the system's Postfix is left unconfigured)
  postfix
  procps iproute2
  # the cluster: Pacemaker, Corosync and their tools, the agents hamail's configuration uses,
  # ocf-tester and the OCF DTD (resource-agents), xmllint, DRBD's tools (issues 5 and 6)
  pacemaker pacemaker-cli-utils corosync crmsh pcs resource-agents fence-agents kmod
  drbd-utils libxml2-utils
  # the power-cut test (tests/powercut): a qemu guest under TCG booted from this machine's own
  # Debian kernel and modules with a busybox initramfs; its disk is made and read (journal
  # replay, file copy-out) with e2fsprogs, never mounted
  qemu-system-x86 qemu-utils linux-image-amd64 busybox-static e2fsprogs
)

# Peers for tests/bench (Dovecot LMTP, IMAP and POP3; Postfix is in the list
# above), only with --bench: the bench runs its own instances on loopback,
# never the system services, and the test command does not need them.
bench_packages=(dovecot-core dovecot-lmtpd dovecot-imapd dovecot-pop3d)

# The Debian way of building and checking packages (debian/, docs/install.md), only with
# --packaging: dpkg-buildpackage with debhelper, help2man for the man pages, lintian, piuparts
# and mmdebstrap for the clean Debian 12 roots the packages are installed into.
# The appliance image (appliance-image/build.sh) adds sfdisk (fdisk) to these and qemu from the
# list above.
packaging_packages=(debhelper dpkg-dev fakeroot help2man lintian piuparts mmdebstrap fdisk)

bench=0
packaging=0
list=0
for arg in "$@"; do
  case "$arg" in
    --bench) bench=1 ;;
    --packaging) packaging=1 ;;
    --list) list=1 ;;
    *) echo "usage: $0 [--bench] [--packaging] [--list]" >&2; exit 2 ;;
  esac
done
if [[ $bench -eq 1 ]]; then packages+=("${bench_packages[@]}"); fi
if [[ $packaging -eq 1 ]]; then packages+=("${packaging_packages[@]}"); fi

if [[ $list -eq 1 ]]; then
  printf '%s\n' "${packages[@]}"
  exit 0
fi

missing=()
for p in "${packages[@]}"; do
  # Prints nothing (and fails) for a package dpkg has never seen.
  if [[ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)" != installed ]]; then
    missing+=("$p")
  fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
  exit 0
fi

echo "install-deps: installing ${#missing[@]} Debian packages: ${missing[*]}"
sudo=()
if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null; then sudo=(sudo); else
    echo "install-deps: need root to install: ${missing[*]}" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
# Leave the system's Postfix unconfigured (and so not listening on port 25).
echo "postfix postfix/main_mailer_type select No configuration" | "${sudo[@]}" debconf-set-selections
"${sudo[@]}" apt-get update -q
"${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
