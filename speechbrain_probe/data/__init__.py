"""Data: the built-in synthetic corpus, LibriSpeech and MUSAN preparation,
exact-SNR mixing and noisy test sets.

Main entry points::

    from speechbrain_probe.data import build_corpus, mix_at_snr
    build_corpus("data/synthetic", seed=0)            # or preset="quick"
    prepare_librispeech(data_folder, save_folder)     # train-clean-100, dev/test-clean
    prepare_musan(musan_folder, save_folder)          # noise_{train,test}[_<category>].csv
    build_noisy_test_sets(test_csv, noise_test_csv, out_dir)  # test_snr{20,10,0}.csv
"""

from .librispeech import prepare_librispeech
from .musan import prepare_musan
from .noise import NOISE_CATEGORIES, fit_length, measure_snr, mix_at_snr
from .noisy import build_noisy_test_sets
from .synthetic import PRESETS, build_corpus, corpus_summary

__all__ = [
    "build_corpus",
    "corpus_summary",
    "PRESETS",
    "prepare_librispeech",
    "prepare_musan",
    "build_noisy_test_sets",
    "mix_at_snr",
    "fit_length",
    "measure_snr",
    "NOISE_CATEGORIES",
]
