"""Audio input: resampling, WAV reading, the ring buffer, file and device sources through the
same chunking, Silero VAD segmentation, half-duplex."""

from __future__ import annotations

import struct
import threading
from pathlib import Path

import numpy as np
import pytest
from conftest import HAVE_ESPEAK, needs_espeak, needs_silero

from kiosk.audio import (
    CHUNK,
    AudioFileError,
    AudioInputUnavailable,
    Chunker,
    RingBuffer,
    Segmenter,
    SegmenterSettings,
    SounddeviceSource,
    StreamResampler,
    WavFileSource,
    create_vad,
    read_wav,
    resample_to,
    write_wav,
)
from kiosk.audio.vad import EnergyVad, SileroVad, VadModelMissing


def tone(freq: float, rate: int, seconds: float, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / float(rate)
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float64)


def peak_hz(x: np.ndarray, rate: int) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spec) * rate / len(x))


# ----------------------------------------------------------------------------------- resampling


@pytest.mark.parametrize("rate", [8000, 11025, 22050, 44100, 48000, 96000])
def test_resampling_keeps_frequency_and_duration(rate: int) -> None:
    x = tone(1000.0, rate, 1.5)
    y = resample_to(x, rate, 16000)
    assert len(y) == int(np.ceil(len(x) * 16000 / rate))
    assert abs(len(y) / 16000.0 - 1.5) < 1e-3
    assert abs(peak_hz(y, 16000) - 1000.0) < 2.0
    mid = y[2000:-2000]  # away from the edges the level is kept
    assert abs(np.sqrt(np.mean(mid ** 2)) - 0.5 / np.sqrt(2)) < 0.01


def test_resampling_is_anti_aliased() -> None:
    """A 12 kHz tone cannot exist at 16 kHz: it must be removed, not folded to 4 kHz."""
    y = resample_to(tone(12000.0, 48000, 1.0), 48000, 16000)
    assert np.sqrt(np.mean(y[1000:-1000] ** 2)) < 0.005
    naive = tone(12000.0, 48000, 1.0)[::3]  # plain decimation aliases it
    assert np.sqrt(np.mean(naive ** 2)) > 0.3


def test_streaming_resampler_is_block_size_independent_and_timed() -> None:
    x = np.random.RandomState(0).randn(44100)
    whole = resample_to(x, 44100, 16000)
    r = StreamResampler(44100, 16000)
    parts, i, rs = [], 0, np.random.RandomState(1)
    while i < len(x):
        k = int(rs.randint(1, 2000))
        parts.append(r.process(x[i:i + k]))
        i += k
    parts.append(r.flush())
    np.testing.assert_allclose(np.concatenate(parts), whole, atol=1e-6)
    # an impulse comes out where it went in (group delay compensated)
    imp = np.zeros(44100)
    imp[22050] = 1.0
    assert abs(int(np.argmax(resample_to(imp, 44100, 16000))) - 8000) <= 1
    scipy_signal = pytest.importorskip("scipy.signal")
    np.testing.assert_allclose(whole, scipy_signal.resample_poly(x, 160, 441), atol=1e-5)


# ----------------------------------------------------------------------------------- WAV files


@pytest.mark.parametrize("bits", [8, 16, 24, 32, -32])
@pytest.mark.parametrize("channels", [1, 2])
def test_wav_formats_round_trip(tmp_path: Path, bits: int, channels: int) -> None:
    x = tone(440.0, 22050, 0.3, amp=0.4)
    data = np.repeat(x[:, None], channels, axis=1)
    path = str(tmp_path / "t.wav")
    write_wav(path, data, 22050, bits=bits)
    y, rate = read_wav(path)
    assert rate == 22050 and y.shape == (len(x), channels) and y.dtype == np.float32
    assert np.abs(y[:, 0] - x).max() < (1.0 / 100 if bits == 8 else 1e-3)


def test_bad_wav_files_give_clear_errors(tmp_path: Path) -> None:
    good = tmp_path / "good.wav"
    write_wav(str(good), tone(440.0, 16000, 0.5), 16000)
    data = good.read_bytes()
    cases = {
        "empty.wav": (b"", "empty file"),
        "text.wav": (b"hello, this is not audio at all", "not a WAV file"),
        "trunc.wav": (data[: len(data) // 2], "truncated WAV"),
        "nodata.wav": (data[:36], "no data chunk"),
        "zero.wav": (data[:40] + struct.pack("<I", 0), "no audio samples"),
    }
    for name, (content, message) in cases.items():
        p = tmp_path / name
        p.write_bytes(content)
        with pytest.raises(AudioFileError, match=message):
            WavFileSource(str(p))
    with pytest.raises(AudioFileError, match="cannot read"):
        read_wav(str(tmp_path / "missing.wav"))


def test_streamed_wav_with_placeholder_size_is_read(tmp_path: Path) -> None:
    good = tmp_path / "good.wav"
    write_wav(str(good), tone(440.0, 16000, 0.5), 16000)
    data = bytearray(good.read_bytes())
    data[4:8] = struct.pack("<I", 0x7FFFF000)  # what espeak-ng --stdout writes
    data[40:44] = struct.pack("<I", 0x7FFFF000)
    p = tmp_path / "streamed.wav"
    p.write_bytes(bytes(data))
    assert read_wav(str(p))[0].shape == (8000, 1)


# ----------------------------------------------------------------------------------- ring buffer


def test_ring_buffer_fifo_overflow_and_latest() -> None:
    rb = RingBuffer(10)
    rb.write(np.arange(6, dtype=np.float32))
    assert rb.read(4)[:, 0].tolist() == [0, 1, 2, 3]
    rb.write(np.arange(6, 14, dtype=np.float32))  # 2 + 8 = 10: full, nothing lost
    assert rb.dropped == 0 and len(rb) == 10
    rb.write(np.array([14, 15], dtype=np.float32))  # the two oldest go
    assert rb.dropped == 2
    assert rb.latest(3)[:, 0].tolist() == [13, 14, 15]
    assert rb.read(100, timeout=0)[:, 0].tolist() == list(range(6, 16))
    assert len(rb.read(5, timeout=0.01)) == 0


# ----------------------------------------------------------------------------------- sources


class FakeStream:
    """Plays a signal into the callback from a thread, in device-sized blocks, then goes inactive."""

    def __init__(self, signal: np.ndarray, samplerate: int, channels: int, blocksize: int, callback, **_: object) -> None:
        self.signal, self.callback, self.blocksize = signal, callback, blocksize
        self.active = False
        self.closed = False
        self._thread = threading.Thread(target=self._play, daemon=True)

    def _play(self) -> None:
        for i in range(0, len(self.signal), self.blocksize):
            block = self.signal[i:i + self.blocksize].astype(np.float32)
            self.callback(block, len(block), None, None)
        self.active = False

    def start(self) -> None:
        self.active = True
        self._thread.start()

    def stop(self) -> None:
        self._thread.join(5)

    def close(self) -> None:
        self.closed = True


class FakeSounddevice:
    def __init__(self, signal: np.ndarray, rate: int, max_input_channels: int = 2) -> None:
        self.signal, self.rate, self.max_in = signal, rate, max_input_channels
        self.streams: list = []

    def query_devices(self, device, kind):
        if device not in (None, 0, "USB mic"):
            raise ValueError("No input device matching {!r}".format(device))
        return {"name": "USB mic", "default_samplerate": float(self.rate), "max_input_channels": self.max_in}

    def InputStream(self, **kw):  # noqa: N802 - sounddevice's name
        s = FakeStream(self.signal, **kw)
        self.streams.append(s)
        return s


def test_wav_source_and_device_callback_source_give_identical_chunks(tmp_path: Path) -> None:
    rate = 44100
    sig = np.stack([tone(700.0, rate, 1.0, 0.3), tone(300.0, rate, 1.0, 0.2)], axis=1)
    path = str(tmp_path / "stereo.wav")
    write_wav(path, sig, rate)
    from_file = list(WavFileSource(path, block_frames=1000).chunks())
    frames, _ = read_wav(path)  # the same quantized samples the device would have delivered
    fake = FakeSounddevice(frames, rate)
    dev = SounddeviceSource("USB mic", channels=2, block_s=0.01, sd=fake)
    from_device = list(dev.chunks())
    assert len(from_file) == len(from_device) == int(np.ceil(16000 / CHUNK))
    assert all(len(c) == CHUNK and c.dtype == np.float32 for c in from_file)
    np.testing.assert_allclose(np.concatenate(from_file), np.concatenate(from_device), atol=1e-6)
    assert fake.streams[0].closed


def test_missing_device_or_library_is_a_clear_error() -> None:
    fake = FakeSounddevice(np.zeros((10, 1)), 16000)
    with pytest.raises(AudioInputUnavailable, match="no audio input device 'Blue Yeti'"):
        SounddeviceSource("Blue Yeti", sd=fake)
    with pytest.raises(AudioInputUnavailable, match="has no input channels"):
        SounddeviceSource(None, sd=FakeSounddevice(np.zeros((10, 1)), 16000, max_input_channels=0))


def test_chunker_downmixes_and_pads_the_last_chunk() -> None:
    c = Chunker(16000)
    out = c.feed(np.ones((700, 2), dtype=np.float32) * 0.5) + c.flush()
    assert [len(x) for x in out] == [CHUNK, CHUNK]
    assert np.allclose(out[0], 0.5) and np.allclose(out[1][: 700 - CHUNK], 0.5) and not out[1][700 - CHUNK:].any()


# ----------------------------------------------------------------------------------- VAD


def _segments(path: str, vad) -> list:
    seg = Segmenter(SegmenterSettings())
    vad.reset()
    found = []
    for chunk in WavFileSource(path).chunks():
        u = seg.push(chunk, vad.prob(chunk))
        if u is not None:
            found.append(u)
    u = seg.flush()
    return found + ([u] if u is not None else [])


@pytest.fixture(scope="module")
def request_wav(tmp_path_factory) -> tuple:
    """「你好大白，请让我进入小区」 by the kiosk's own espeak-ng voice, 1.2 s of light noise before
    and 1.5 s after, at the voice's 22.05 kHz."""
    if not HAVE_ESPEAK:
        pytest.skip("espeak-ng not installed")
    from kiosk.speech import EspeakVoice

    audio = EspeakVoice().synthesize("你好大白，请让我进入小区")
    x = audio.samples.astype(np.float64) / 32768.0
    nz = np.nonzero(np.abs(x) > 0.02)[0]
    speech_start, speech_end = nz[0] / audio.rate, nz[-1] / audio.rate
    rs = np.random.RandomState(0)
    sig = np.concatenate([np.zeros(int(1.2 * audio.rate)), x, np.zeros(int(1.5 * audio.rate))])
    sig += rs.randn(len(sig)) * 0.003
    path = str(tmp_path_factory.mktemp("vad") / "request.wav")
    write_wav(path, sig, audio.rate)
    return path, 1.2 + speech_start, 1.2 + speech_end


@needs_silero
@needs_espeak
def test_silero_segments_the_spoken_request(request_wav) -> None:
    path, start, end = request_wav
    utts = _segments(path, SileroVad())
    assert len(utts) == 1, [(u.start_s, u.end_s) for u in utts]
    u = utts[0]
    assert abs(u.start_s - start) < 0.15 and abs(u.end_s - end) < 0.3
    assert u.closed_s - u.end_s == pytest.approx(0.512, abs=0.04)  # the hangover
    assert u.samples[: int(0.25 * 16000)].std() < 0.02  # the pre-roll is the quiet before the speech


@needs_silero
def test_silero_finds_nothing_in_silence_or_noise(tmp_path: Path) -> None:
    rs = np.random.RandomState(1)
    white = rs.randn(16000 * 3) * 0.2
    hum = tone(50.0, 16000, 3.0, 0.3) + tone(150.0, 16000, 3.0, 0.1)
    for name, sig in (("silence", np.zeros(16000 * 2)), ("white", white), ("hum", hum)):
        p = str(tmp_path / (name + ".wav"))
        write_wav(p, sig, 16000)
        assert _segments(p, SileroVad()) == [], name


def test_missing_vad_model_is_named(tmp_path: Path) -> None:
    with pytest.raises(VadModelMissing, match="nothere.onnx not found"):
        SileroVad(str(tmp_path / "nothere.onnx"))
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(VadModelMissing, match="cannot be loaded"):
        SileroVad(str(bad))


def test_energy_fallback_is_labelled(caplog) -> None:
    with caplog.at_level("WARNING"):
        vad = create_vad("energy")
    assert isinstance(vad, EnergyVad) and vad.fallback and "FALLBACK" in caplog.text


def test_segmenter_minimum_and_maximum_length() -> None:
    seg = Segmenter(SegmenterSettings(min_speech_ms=250, hangover_ms=320, max_utterance_s=1.0, preroll_ms=96))
    z = np.zeros(CHUNK, dtype=np.float32)
    # a click: 2 chunks (64 ms) of speech, then silence -> dropped
    out = [seg.push(z, p) for p in [0.0] * 5 + [0.9, 0.9] + [0.0] * 15]
    assert not any(out) and seg.dropped_short == 1
    # a long speech run is cut at max length (31 chunks of 32 ms = 0.99 s)
    out = [seg.push(z, 0.9) for _ in range(40)]
    cut = [u for u in out if u is not None]
    assert cut and cut[0].truncated and cut[0].duration == pytest.approx(31 * 0.032 + 0.096, abs=0.001)


@needs_silero
def test_vad_never_imports_torch() -> None:
    import subprocess
    import sys

    code = ("import sys; from kiosk.audio.vad import SileroVad; SileroVad(); "
            "assert 'torch' not in sys.modules and 'silero_vad' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
