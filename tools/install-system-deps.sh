#!/usr/bin/env bash
# Install the Debian packages hotline needs, once. Idempotent: when every package
# is already installed it changes nothing and needs no network.
set -euo pipefail
packages=(
  python3 python3-venv python3-dev build-essential   # the venv and Cython builds
  sip-tester baresip rtpengine-daemon                 # real SIP and media peers in tests and benchmarks
  sox                                                 # test audio
  espeak-ng flite                                     # the fallback prompt voice; test voices
  postgresql                                          # the scale-out store, tested on a throwaway cluster
  chromium                                            # browser end-to-end tests (tests/e2e)
)
missing=()
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  echo "installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
