#!/usr/bin/env bash
# Installs the system packages the test suite needs and the package manager cannot: etcd (server and etcdctl) for
# the etcd coordinator's integration tests. Called by `make test` and `.ci/run`. Idempotent and quiet: does nothing
# when etcd is already installed. Needs root and apt-get; without them it says what to install and carries on, and
# the etcd suite then fails with the same hint rather than skipping.
set -uo pipefail

if command -v etcd >/dev/null 2>&1 && command -v etcdctl >/dev/null 2>&1; then
  exit 0
fi
hint='install the Debian packages etcd-server and etcd-client (apt-get install etcd-server etcd-client)'
if [ "$(id -u)" -ne 0 ]; then
  echo "install-system-deps: etcd is missing and this is not root, so nothing was installed; $hint" >&2
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-system-deps: etcd is missing and there is no apt-get; $hint or the equivalent" >&2
  exit 0
fi
echo "install-system-deps: installing etcd-server and etcd-client" >&2
if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq etcd-server etcd-client >/dev/null; }; then
  echo "install-system-deps: installing etcd failed (see above); the etcd tests will fail until it is installed" >&2
fi
exit 0
