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
elif [[ ",$EXTRAS," == *",ui,"* ]]; then
  # The libraries the PyQt5 wheel's xcb platform plugin loads (a fresh Debian lacks icccm, keysyms and xinerama:
  # Qt then aborts with "could not load the Qt platform plugin xcb").
  APT_PACKAGES+=(libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-randr0 libxcb-render-util0 libxcb-shape0
                 libxcb-sync1 libxcb-xfixes0 libxcb-xinerama0 libxcb-xkb1 libxkbcommon-x11-0 libx11-xcb1 libxcb-shm0
                 libxcb-util1 libdbus-1-3 libfontconfig1)
fi
if [[ ",$EXTRAS," == *",dev,"* ]]; then
  APT_PACKAGES+=(xvfb)  # the tests open the window on a real X server too, not only on Qt's offscreen platform
  APT_PACKAGES+=(mosquitto)  # the fleet tests start a real MQTT broker on loopback (issue 14)
fi
# JetPack 5 (L4T R35) or 6 (R36): pip installs under the Jetson installer's pins (deploy/jetson/, see `sudo make install`).
JETPACK=""
if [ -f /etc/nv_tegra_release ]; then
  case "$(head -n 1 /etc/nv_tegra_release)" in
    "# R35 "*) JETPACK=5 ;;
    "# R36 "*) JETPACK=6 ;;
  esac
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
want="$(cat setup.py tools/bootstrap.sh deploy/jetson/*; echo "$EXTRAS")"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  if [ -n "$JETPACK" ]; then
    # Never shadow JetPack: the kiosk without its pip dependencies (opencv-python-headless has no GStreamer; the CPU
    # onnxruntime would replace a Jetson onnxruntime-gpu), then the JetPack's runtime requirements, CUDA bindings and
    # the extras' packages, all under its constraints (numpy < 1.24 on JetPack 5, < 2 on JetPack 6).
    C="deploy/jetson/constraints-jp$JETPACK.txt"
    "$VENV/bin/python" -m pip install -q --upgrade pip setuptools wheel -c "$C" >/dev/null
    "$VENV/bin/python" -m pip install -q --no-deps -e .
    ort=""
    "$VENV/bin/python" -c "import onnxruntime" 2>/dev/null || ort=onnxruntime
    "$VENV/bin/python" -m pip install -q -c "$C" -r "deploy/jetson/requirements-jp$JETPACK.txt" cuda-python $ort
    extra_reqs=$("$VENV/bin/python" -m kiosk.deploy requirements --extras "$EXTRAS" | grep -viE '^(opencv|pyqt5|onnxruntime)' || true)
    if [ -n "$extra_reqs" ]; then printf '%s\n' "$extra_reqs" | "$VENV/bin/python" -m pip install -q -c "$C" -r /dev/stdin; fi
  else
    "$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null
    "$VENV/bin/python" -m pip install -q -e ".[${EXTRAS}]"
  fi
  # Silero VAD's ONNX files (MIT). Its wheel declares torch, which the kiosk never imports: skip deps.
  "$VENV/bin/python" -m pip install -q --no-deps "silero-vad>=5"
  printf '%s' "$want" > "$stamp"
fi
