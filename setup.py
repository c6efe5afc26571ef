"""Dabai (大白) gate kiosk: offline, on-device access control for a residential gate."""

from setuptools import find_packages, setup

setup(
    name="dabai-kiosk",
    version="0.1.0",
    description="Offline on-device gate kiosk: mask check, signed QR passes, Mandarin prompts",
    license="Apache-2.0",
    python_requires=">=3.8",
    packages=find_packages(include=["kiosk", "kiosk.*"]),
    include_package_data=True,
    package_data={"kiosk": ["py.typed", "ui/keyboard/pinyin_table.txt"]},
    install_requires=[
        "numpy>=1.20",
        "onnxruntime>=1.14",
        "opencv-python-headless>=4.5",
        "pyzbar>=0.1.9",
        "segno>=1.5",
        "Pillow>=9.0",
        "cryptography>=39",
        "pypinyin>=0.49",
        "tomli>=1.2; python_version<'3.11'",
    ],
    extras_require={
        # Real devices; each is optional so a machine without it still runs the kiosk.
        # sounddevice: the microphone (kiosk.audio) and the loudspeaker. Silero VAD (MIT) is NOT listed:
        # its wheel declares torch, which the kiosk never imports; install its ONNX files with
        # `pip install --no-deps "silero-vad>=5"` (tools/bootstrap.sh) or copy silero_vad.onnx to engines/.
        "audio": ["sounddevice>=0.4"],
        # Speech recognition backends for pretrained models a user installs (kiosk.speech.recognizers).
        "sherpa": ["sherpa-onnx>=1.10"],  # Apache-2.0; keyword spotter + offline recognizers, ONNX Runtime inside
        "nemo": ["nemo_toolkit[asr,tts]>=1.20"],  # Apache-2.0; heavy (torch); .nemo recognizers and FastPitch voices
        "serial": ["pyserial>=3.5"],
        # A community of gates through an MQTT broker (kiosk.fleet); a single kiosk needs none of it.
        # paho-mqtt: EPL-2.0 or EDL-1.0 (BSD-3-Clause), used under the EDL.
        "fleet": ["paho-mqtt>=2.0"],
        # The kiosk window and operator screen (kiosk.ui). PyQt5 is GPL-3.0: optional; the headless kiosk runs
        # without it. On a Jetson use Debian's python3-pyqt5 (the venv sees system site-packages; tools/bootstrap.sh).
        "ui": ["PyQt5>=5.12"],
        # Training runs on a workstation, never on the kiosk (needs torch; install torch==2.13.0 CPU here).
        "train": ["torch>=2.0", "onnx>=1.14", "matplotlib>=3.5", "tqdm>=4.60"],
        "dev": ["pytest>=7", "tqdm>=4.60", "pytest-qt>=4", "ruff>=0.4", "vermin>=1.5", "scikit-image>=0.19", "scipy>=1.7", "matplotlib>=3.5",
                "sherpa-onnx>=1.10", "onnx>=1.14", "pyserial>=3.5", "paho-mqtt>=2.0"],  # scipy: resampler reference; tqdm: the keyword-data
        # tests; sherpa-onnx + onnx: tests/test_sherpa_real.py builds a tiny paraformer and runs it through the real library;
        # pyserial: the gate tests drive the real serial relay driver on a pseudo-terminal (kiosk.gate.recorder)
    },
    entry_points={"console_scripts": ["dabai-kiosk=kiosk.cli:main"]},
)
