#!/usr/bin/env bash
# Prepares a fresh Debian/Ubuntu machine (or a Jetson) to run the kiosk from this checkout:
# Debian packages when root or sudo is available, a virtual environment in .venv, pip packages.
# Safe to run again: each step is skipped when it is already done.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(libzbar0 espeak-ng fonts-noto-cjk fontconfig libportaudio2 python3-venv)
PY=${PYTHON:-python3}
VENV=.venv
# ui = PyQt5 (GPL-3.0), the kiosk window; leave it out (DABAI_EXTRAS=dev,audio) for a headless kiosk.
EXTRAS=${DABAI_EXTRAS:-dev,audio,ui}
if [ -f /etc/nv_tegra_release ] && [[ ",$EXTRAS," == *",ui,"* ]]; then
  # On a Jetson, PyQt5 comes from Debian (pip would build it from source); the venv sees system site-packages.
  APT_PACKAGES+=(python3-pyqt5)
  EXTRAS=$(echo ",$EXTRAS," | sed 's/,ui,/,/; s/^,//; s/,$//')
fi

missing=()
if command -v dpkg-query >/dev/null 2>&1; then
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
fi
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then SUDO="sudo -n"; else SUDO=none; fi
  if [ "$SUDO" = none ]; then
    echo "bootstrap: missing Debian packages ${missing[*]} and no root/sudo: ask an administrator to run" >&2
    echo "  apt-get install ${missing[*]}" >&2
  else
    echo "bootstrap: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq || true
    $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
fi

if [ ! -x "$VENV/bin/python" ]; then
  # On a Jetson, TensorRT, pycuda and jetson-utils come with JetPack: the venv must see them.
  site=""
  [ -f /etc/nv_tegra_release ] && site="--system-site-packages"
  "$PY" -m venv $site "$VENV"
fi

stamp="$VENV/.dabai-installed"
want="$(cat setup.py tools/bootstrap.sh; echo "$EXTRAS")"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  "$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null
  "$VENV/bin/python" -m pip install -q -e ".[${EXTRAS}]"
  # Silero VAD's ONNX files (MIT). Its wheel declares torch, which the kiosk never imports: skip deps.
  "$VENV/bin/python" -m pip install -q --no-deps "silero-vad>=5"
  printf '%s' "$want" > "$stamp"
fi
