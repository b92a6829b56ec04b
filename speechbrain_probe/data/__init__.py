"""Data: the built-in synthetic corpus, LibriSpeech and MUSAN preparation,
exact-SNR mixing and noisy test sets, one module each::

    from speechbrain_probe.data.synthetic import build_corpus
    build_corpus("data/synthetic", seed=0)            # or preset="quick"
    prepare_librispeech(data_folder, save_folder)     # .librispeech: train-clean-100, dev/test-clean
    prepare_musan(musan_folder, save_folder)          # .musan: noise_{train,test}[_<category>].csv
    build_noisy_test_sets(test_csv, noise_test_csv, out_dir)  # .noisy: test_snr{20,10,0}.csv
    mix_at_snr(clean, noise, snr_db)                  # .noise
"""
