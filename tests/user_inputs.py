"""What a user brings to the one-command recipe, built for the tests.

Speech of a few eSpeak voices in SpeechBrain CSVs whose audio is NOT 16 kHz
mono (22.05 kHz stereo test files, 44.1 kHz training files, one long
training file), noises at 8 kHz, and tiny random Hugging Face Whisper and
wav2vec2 models saved with ``save_pretrained`` (no download).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from speechbrain_probe.data.espeak import Voice, synthesize

VOICES = {
    "spk_a": Voice("en-us", "f3", rate=130, pitch=70),
    "spk_b": Voice("en", "m2", rate=120, pitch=30),
    "spk_c": Voice("en-us", "m3", rate=125, pitch=45),
}
SENTENCES = [
    "the cat sat on the mat",
    "a quick brown fox jumps",
    "good morning to you all",
    "we walk home after lunch",
]


def _resample(wav: np.ndarray, rate: int) -> np.ndarray:
    positions = np.arange(int(len(wav) * rate / 16000)) * 16000 / rate
    return np.interp(positions, np.arange(len(wav)), wav).astype(np.float32)


def write_user_corpus(folder: Path) -> dict[str, Path]:
    """Manifests ``train.csv``, ``valid.csv``, ``test.csv``, ``noise.csv``."""
    folder = Path(folder)
    audio = folder / "audio"
    audio.mkdir(parents=True, exist_ok=True)
    rows = {"train": [], "valid": [], "test": []}
    for spk, voice in VOICES.items():
        for i, text in enumerate(SENTENCES):
            wav = synthesize(text, voice)
            split = "test" if i < 2 else ("valid" if i == 2 else "train")
            utt = f"{spk}_{i}"
            if split == "test":  # 22.05 kHz stereo, a quieter second channel
                data = _resample(wav, 22050)
                sf.write(audio / f"{utt}.wav", np.stack([data, 0.5 * data], 1), 22050)
            else:
                sf.write(audio / f"{utt}.flac", _resample(wav, 44100), 44100)
            name = f"{utt}.wav" if split == "test" else f"{utt}.flac"
            rows[split].append(f"{utt},$data_root/audio/{name},{spk},{text.upper()}")
    # one long training file (several sentences), read as one fixed piece
    long = np.concatenate([synthesize(s, VOICES["spk_a"]) for s in SENTENCES * 2])
    sf.write(audio / "spk_a_long.wav", long, 16000)
    rows["train"].append("spk_a_long,$data_root/audio/spk_a_long.wav,spk_a,LONG")
    out = {}
    for split, lines in rows.items():
        out[split] = folder / f"{split}.csv"
        out[split].write_text("ID,wav,spk_id,wrd\n" + "\n".join(lines) + "\n")
    rng = np.random.default_rng(0)
    noise_lines = []
    for i, cat in enumerate(("noise", "music")):
        t = np.arange(16000) / 8000
        data = 0.1 * rng.standard_normal(len(t)) + 0.05 * np.sin(
            2 * np.pi * 300 * (i + 1) * t
        )
        sf.write(audio / f"noise{i}.wav", data.astype(np.float32), 8000)
        noise_lines.append(f"noise{i},$data_root/audio/noise{i}.wav,{cat}")
    out["noise"] = folder / "noise.csv"
    out["noise"].write_text("ID,wav,category\n" + "\n".join(noise_lines) + "\n")
    return out


def tiny_whisper(directory: Path, max_source_positions=50) -> Path:
    """A random Whisper with 2 layers; 50 positions make a 1-s window."""
    import transformers

    config = transformers.WhisperConfig(
        d_model=16,
        encoder_layers=2,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        num_mel_bins=80,
        max_source_positions=max_source_positions,
        max_target_positions=16,
        vocab_size=60,
        pad_token_id=1,
        bos_token_id=2,
        eos_token_id=2,
        decoder_start_token_id=3,
        suppress_tokens=[],
        begin_suppress_tokens=[],
    )
    transformers.WhisperModel(config).save_pretrained(directory)
    transformers.WhisperFeatureExtractor(feature_size=80).save_pretrained(directory)
    return Path(directory)


def tiny_wav2vec2(directory: Path, cls="Wav2Vec2", **settings) -> Path:
    """A random wav2vec2 (or ``cls="Hubert"``, ...) with 2 transformer layers;
    ``settings`` are more of its configuration (``feat_extract_norm``, ...)."""
    import transformers

    config = getattr(transformers, f"{cls}Config")(
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        conv_dim=(8, 8, 8, 8, 8, 8, 8),
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2,
        vocab_size=10,
        **settings,
    )
    getattr(transformers, f"{cls}Model")(config).save_pretrained(directory)
    return Path(directory)


def write_user_inputs(root: Path) -> Path:
    """Corpus in ``root/corpus`` and models in ``root/models/{whisper,wav2vec2}``."""
    root = Path(root)
    write_user_corpus(root / "corpus")
    tiny_whisper(root / "models" / "whisper")
    tiny_wav2vec2(root / "models" / "wav2vec2")
    return root
