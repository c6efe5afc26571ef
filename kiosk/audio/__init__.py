"""Audio input: microphone or WAV file → 16 kHz mono chunks → voice activity → utterances.

    from kiosk.audio import open_audio_source, create_vad, Segmenter

    source = open_audio_source("auto")        # or "wav:recording.wav"; AudioInputUnavailable if none
    vad = create_vad("silero")                 # Silero VAD via ONNX Runtime (EnergyVad fallback, logged)
    seg = Segmenter()
    for chunk in source.chunks():              # 512 samples = 32 ms at 16 kHz
        utt = seg.push(chunk, vad.prob(chunk))

Only numpy is needed at import; sounddevice and onnxruntime are looked up when a source or VAD
is built.
"""

from .resample import StreamResampler, resample_to
from .sources import (
    CHUNK,
    SAMPLE_RATE,
    AudioInputUnavailable,
    AudioSource,
    Chunker,
    RingBuffer,
    SounddeviceSource,
    WavFileSource,
    open_audio_source,
)
from .vad import (
    EnergyVad,
    Segmenter,
    SegmenterSettings,
    SileroVad,
    Utterance,
    Vad,
    VadModelMissing,
    create_vad,
    describe_vad,
    silero_model_path,
)
from .wavfile import AudioFileError, read_wav, write_wav

__all__ = [
    "CHUNK",
    "SAMPLE_RATE",
    "AudioFileError",
    "AudioInputUnavailable",
    "AudioSource",
    "Chunker",
    "EnergyVad",
    "RingBuffer",
    "Segmenter",
    "SegmenterSettings",
    "SileroVad",
    "SounddeviceSource",
    "StreamResampler",
    "Utterance",
    "Vad",
    "VadModelMissing",
    "WavFileSource",
    "create_vad",
    "describe_vad",
    "open_audio_source",
    "read_wav",
    "resample_to",
    "silero_model_path",
    "write_wav",
]
