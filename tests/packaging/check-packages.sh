#!/usr/bin/env bash
# Checks hamail's Debian packages the way issue 16 asks, in clean Debian 12 roots made from the
# archive (never this machine's own installation):
#
#   1. lintian on every package: errors fail, warnings are printed;
#   2. piuparts on every package: install, remove and purge in a clean chroot, nothing left
#      behind (each package with the hamail packages it needs from DIR);
#   3. a clean root with only Debian's archive and the built .debs: `apt-get install
#      ./hamail-*.deb` resolves everything; the programs answer --version and --help; each has
#      its man page; the hamail user exists; the shipped configuration files pass
#      --check-config; crm_resource --show-metadata prints the OCF agents' meta-data.
#
# Usage: tests/packaging/check-packages.sh DIR     (DIR: the output of cmake/dev.sh packages)
# Needs root and the packages `cmake/install-deps.sh --packaging` installs. The base root is
# made once with mmdebstrap and kept in $HAMAIL_PKG_CACHE (default /var/cache/hamail-packaging).
# The proxy unit under a running systemd is checked in the appliance image (issue 17), where
# systemd runs; a chroot has none.
set -euo pipefail

dir="${1:?usage: $0 DIR-with-the-.debs}"
dir="$(cd "$dir" && pwd)"
cache="${HAMAIL_PKG_CACHE:-/var/cache/hamail-packaging}"
mirror="${HAMAIL_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
suite=bookworm
base="$cache/$suite-base.tar.gz"

failures=0
pass() { printf 'PASS %s\n' "$*"; }
fail() { printf 'FAIL %s\n' "$*"; failures=$((failures + 1)); }
say() { printf '\n== %s\n' "$*"; }

shopt -s nullglob
debs=("$dir"/hamail-*.deb)
main_debs=()
for d in "${debs[@]}"; do
  [[ "$d" == *-dbgsym_* ]] || main_debs+=("$d")
done
if [[ ${#main_debs[@]} -eq 0 ]]; then
  echo "$0: no hamail-*.deb in $dir" >&2
  exit 2
fi

say "lintian (errors fail; warnings listed)"
if lintian --fail-on error --info --display-info "${debs[@]}"; then
  pass "lintian: no errors on ${#debs[@]} packages"
else
  fail "lintian reported errors"
fi

say "base root for piuparts ($base)"
if [[ ! -s "$base" ]]; then
  mkdir -p "$cache"
  # piuparts' own default base: minbase.
  # (the output's extension chooses its format: keep .tar.gz on the temporary name)
  mmdebstrap --variant=minbase --mode=root "$suite" "$cache/partial-$suite-base.tar.gz" "$mirror"
  mv "$cache/partial-$suite-base.tar.gz" "$base"
fi
ls -l "$base"

pkg_of() { dpkg-deb -f "$1" Package; }
path_of() {
  local d
  for d in "${main_debs[@]}"; do
    if [[ "$(pkg_of "$d")" == "$1" ]]; then printf '%s\n' "$d"; return; fi
  done
}

say "piuparts: install, remove, purge each package in a clean $suite chroot"
logs="$dir/piuparts"
mkdir -p "$logs"
for d in "${main_debs[@]}"; do
  p="$(pkg_of "$d")"
  # The hamail packages this one depends on come from DIR too (none today; kept general).
  extra=()
  for dep in $(dpkg-deb -f "$d" Depends | tr ',' '\n' | sed -E 's/[ (].*//' | grep '^hamail-' || true); do
    extra+=("$(path_of "$dep")")
  done
  if piuparts --basetgz="$base" --mirror="$mirror main" --distribution="$suite" \
      --no-upgrade-test --log-file="$logs/$p.log" "${extra[@]}" "$d" >/dev/null 2>&1; then
    pass "piuparts $p"
  else
    fail "piuparts $p (log: $logs/$p.log)"
    grep -E '^[0-9: .]*(ERROR|FAIL)' "$logs/$p.log" | head -20 || true
  fi
done

say "clean root: apt-get install ./hamail-*.deb, then the programs, man pages, agents"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir "$work/debs"
cp "${main_debs[@]}" "$work/debs/"
cat > "$work/checks.sh" <<'CHECKS'
#!/bin/sh
# Runs inside the clean root after the install.
failures=0
check() { # check NAME COMMAND...: runs COMMAND, prints its output on failure
  name="$1"; shift
  if out="$("$@" 2>&1)"; then echo "PASS $name"; else echo "FAIL $name"; echo "$out" | head -20; failures=$((failures + 1)); fi
}
contains() { # contains NAME NEEDLE COMMAND...
  name="$1"; needle="$2"; shift 2
  out="$("$@" 2>&1)"
  if printf '%s' "$out" | grep -qF -- "$needle"; then echo "PASS $name"; else echo "FAIL $name (no '$needle')"; echo "$out" | head -20; failures=$((failures + 1)); fi
}
version="$(dpkg-query -W -f='${Version}' hamail-backend)"
contains "hamail-backend --version" "hamail-backend $version" hamail-backend --version
contains "hamail-proxy --version" "hamail-proxy $version" hamail-proxy --version
contains "hamail-admin --version" "hamail-admin $version" hamail-admin --version
contains "hamail-cluster-config --version" "hamail-cluster-config $version" hamail-cluster-config --version
contains "hamail-admin --help" "account" hamail-admin --help
contains "hamail-backend --help" "--check-config" hamail-backend --help
contains "hamail-proxy --help" "--check-config" hamail-proxy --help
contains "hamail-cluster-config --help" "crmsh" hamail-cluster-config --help
for page in hamail-backend.8 hamail-proxy.8 hamail-admin.8 hamail-cluster-config.1 \
            ocf_hamail_backend.7 ocf_hamail_proxy.7; do
  sec="${page##*.}"
  check "man page $page" test -s "/usr/share/man/man$sec/$page.gz"
done
check "hamail system user" getent passwd hamail
contains "hamail user has no login shell" "nologin" getent passwd hamail
check "hamail in group ssl-cert" sh -c 'id -nG hamail | grep -qw ssl-cert'
for f in backend proxy admin; do check "/etc/hamail/$f.toml is a conffile" \
  sh -c "dpkg-query -W -f='\${Conffiles}' hamail-$f | grep -q /etc/hamail/$f.toml"; done
check "backend.toml passes --check-config (as hamail)" \
  runuser -u hamail -- hamail-backend --check-config --config /etc/hamail/backend.toml
# The proxy's sample names a store-login password file the operator writes: give it one.
printf 'secret\n' > /etc/hamail/proxy.secret
chgrp hamail /etc/hamail/proxy.secret && chmod 0640 /etc/hamail/proxy.secret
check "proxy.toml passes --check-config (as hamail)" \
  runuser -u hamail -- hamail-proxy --check-config --config /etc/hamail/proxy.toml
rm -f /etc/hamail/proxy.secret
check "ocf:hamail:backend installed executable" test -x /usr/lib/ocf/resource.d/hamail/backend
contains "crm_resource --show-metadata ocf:hamail:backend" '<resource-agent name="backend"' \
  crm_resource --show-metadata ocf:hamail:backend
contains "crm_resource --show-metadata ocf:hamail:proxy" '<resource-agent name="proxy"' \
  crm_resource --show-metadata ocf:hamail:proxy
contains "crm_resource --list-agents ocf:hamail" "backend" crm_resource --list-agents ocf:hamail
check "the schema's cn=config LDIF" test -s /usr/share/hamail/ldap-schema/hamail.ldif
check "the layouts" test -s /usr/share/hamail/cluster-config/layouts/pair.toml
check "a layout generates" sh -c 'hamail-cluster-config crm /usr/share/hamail/cluster-config/layouts/pair.toml | grep -q "primitive"'
check "the operator docs" test -s /usr/share/doc/hamail-doc/install.md.gz -o -s /usr/share/doc/hamail-doc/install.md
check "hamail-proxy.service enabled" sh -c 'test -L /etc/systemd/system/multi-user.target.wants/hamail-proxy.service'
check "hamail-backend.service not enabled" sh -c '! test -e /etc/systemd/system/multi-user.target.wants/hamail-backend.service'
echo "checks failed: $failures"
exit $((failures > 0))
CHECKS
chmod +x "$work/checks.sh"
# mmdebstrap builds a fresh root from the archive and runs the hooks inside it (with /proc and
# /dev mounted); apt-get resolves the .debs' dependencies from the archive alone.
if mmdebstrap --variant=apt --mode=root \
    --customize-hook="copy-in $work/debs /tmp" \
    --customize-hook="copy-in $work/checks.sh /tmp" \
    --customize-hook='chroot "$1" sh -c "DEBIAN_FRONTEND=noninteractive apt-get install -y -q /tmp/debs/*.deb pacemaker-cli-utils" > '"$work/apt.log"' 2>&1' \
    --customize-hook='chroot "$1" /tmp/checks.sh > '"$work/checks.log"' 2>&1' \
    "$suite" "$work/root.tar" "$mirror" >"$work/mmdebstrap.log" 2>&1; then
  pass "clean root: apt-get install ./hamail-*.deb resolved everything"
else
  if [[ -s "$work/apt.log" ]] && ! grep -q '^Setting up hamail-backend' "$work/apt.log"; then
    fail "clean root: apt-get install failed"; tail -30 "$work/apt.log"
  else
    fail "clean root: checks failed"
  fi
fi
touch "$work/checks.log"
cat "$work/checks.log"
printf 'clean-root checks passed: %s, failed: %s\n' "$(grep -c '^PASS' "$work/checks.log")" \
  "$(grep -c '^FAIL' "$work/checks.log")"
if grep -q '^FAIL' "$work/checks.log"; then failures=$((failures + 1)); fi

say "summary"
if [[ $failures -eq 0 ]]; then echo "check-packages: all passed"; else echo "check-packages: $failures failed"; fi
[[ $failures -eq 0 ]]
