#!/usr/bin/env bash
# Installs the system packages the tests need on a fresh Debian 12 machine:
#  - Mesa lavapipe from bookworm-backports (bookworm's own Mesa 22.3 is rejected by Dawn),
#  - Debian's Chromium for the browser tests (playwright cannot download browsers here).
# Idempotent: safe to run on a machine that already has them.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"

backports=/etc/apt/sources.list.d/bookworm-backports.sources
if [ ! -f "$backports" ] && ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
  # Same mirror and key as the machine's bookworm entry, with the backports suite.
  uris=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  [ -n "$uris" ] || uris="http://deb.debian.org/debian"
  $SUDO tee "$backports" >/dev/null <<SRC
Types: deb
URIs: $uris
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
fi

need=()
mesa_ver=$(dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null || echo none)
case "$mesa_ver" in 25.*|26.*) ;; *) need+=(mesa) ;; esac
command -v chromium >/dev/null || need+=(chromium)

if [ ${#need[@]} -gt 0 ]; then
  $SUDO apt-get update -q
  for n in "${need[@]}"; do
    case "$n" in
      mesa) $SUDO apt-get install -y -q -t bookworm-backports mesa-vulkan-drivers libvulkan1 ;;
      chromium) $SUDO apt-get install -y -q chromium ;;
    esac
  done
fi
