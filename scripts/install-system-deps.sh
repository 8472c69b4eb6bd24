#!/usr/bin/env bash
# Installs the system packages the test suite needs and the package manager cannot: etcd (server and etcdctl) for
# the etcd coordinator and cluster tests, PostgreSQL for the PostgreSQL store's tests (the testkit harness runs
# Debian's /usr/lib/postgresql/<version>/bin itself, as an unprivileged user), openssl and iproute2 for the TLS and
# multi-host tests, tmux for the terminal test of consort, PowerDNS (pdns-server, pdns-backend-sqlite3; testkit's
# harness runs it as the test user on loopback) and dig for the powerdns plugin, and libvirtd, virsh, QEMU for x86 and sshd
# for the libvirt plugin's lab (test/libvirt-lab starts them itself, without systemd). Called by `make test` and
# `.ci/run`.
# Idempotent and quiet: installs only what is missing. Needs root and apt-get; without them it says what to install
# and carries on, and the suites that need a missing tool then fail with the same hint.
set -uo pipefail

# command-to-check:debian-packages
needs=(
  "etcd:etcd-server etcd-client"
  "etcdctl:etcd-client"
  "tmux:tmux"
  # Any version: a glob, checked with compgen (Debian's server binaries live outside PATH).
  "/usr/lib/postgresql/*/bin/initdb:postgresql"
  # Certificates for the TLS tests, and network namespaces for the test of a cluster as separate hosts.
  "openssl:openssl"
  "/usr/sbin/ip:iproute2"
  # The libvirt lab: sbin paths are absolute so that a PATH without sbin does not reinstall them every time.
  "/usr/sbin/libvirtd:libvirt-daemon"
  "/usr/sbin/virtlogd:libvirt-daemon"
  "/usr/bin/virsh:libvirt-clients"
  "/usr/bin/qemu-system-x86_64:qemu-system-x86"
  "/usr/sbin/sshd:openssh-server"
  "/usr/bin/ssh-keygen:openssh-client"
  # PowerDNS for the powerdns plugin's tests (testkit's harness runs it on loopback with its own SQLite database),
  # and dig to ask it.
  "/usr/sbin/pdns_server:pdns-server"
  "/usr/lib/*/pdns/libgsqlite3backend.so:pdns-backend-sqlite3"
  "/usr/bin/dig:dnsutils"
)

missing=()
for need in "${needs[@]}"; do
  command="${need%%:*}"
  packages="${need#*:}"
  if [[ "$command" == *'*'* ]]; then
    if ! compgen -G "$command" >/dev/null; then missing+=($packages); fi
  elif ! command -v "$command" >/dev/null 2>&1; then missing+=($packages); fi
done
[ "${#missing[@]}" -eq 0 ] && exit 0
mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
hint="install the Debian packages ${missing[*]} (apt-get install ${missing[*]})"
if [ "$(id -u)" -ne 0 ]; then
  echo "install-system-deps: missing tools and this is not root, so nothing was installed; $hint" >&2
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-system-deps: missing tools and there is no apt-get; $hint or the equivalent" >&2
  exit 0
fi
echo "install-system-deps: installing ${missing[*]}" >&2
# No service manager runs here: keep package scripts from trying to start daemons (openssh-server's would start
# sshd on port 22). Recommends are left out: libvirt-daemon's would pull every QEMU architecture and LVM.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && created_policy=1
fi
export DEBIAN_FRONTEND=noninteractive
if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; }; then
  echo "install-system-deps: installing ${missing[*]} failed (see above); the tests that need them will fail" >&2
fi
[ "$created_policy" -eq 1 ] && rm -f "$policy"
exit 0
