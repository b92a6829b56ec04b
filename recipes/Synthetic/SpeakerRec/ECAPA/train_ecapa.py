#!/usr/bin/env python3
"""Recipe: a small ECAPA-TDNN speaker verifier on the built-in corpus.

Trained on the corpus's training speakers, exported to ``export_dir`` in
SpeechBrain's pretrained format (``EncoderClassifier.from_hparams(source=dir,
savedir=dir)`` loads it offline), then its EER is measured on the unseen test
speakers with a fixed, seeded, balanced trial list (and GE2E's on the same
trials, for reference), scored as the evaluation scores every cell. Results
go to ``<output_folder>/eer.json``. The evaluation recipe measures how much
speaker identity each probed layer keeps with this verifier.

Run from this folder::

    python train_ecapa.py hparams/ecapa.yaml [--number_of_epochs=12]

The first run builds the corpus into ``data_folder`` (about a minute).
"""

import json
import random
import time
from pathlib import Path

from speechbrain_probe.environment import import_failure

try:  # speechbrain imports torchaudio, which loads only with its own torch
    import speechbrain as sb
    import torch
    from hyperpyyaml import load_hyperpyyaml
    from speechbrain.dataio.dataio import read_audio
    from speechbrain.utils.distributed import run_on_main
except (ImportError, OSError) as error:
    raise SystemExit(import_failure(error)) from None

from speechbrain_probe.atomic import atomic_write_text
from speechbrain_probe.checkpoints import KillSafeCheckpoints
from speechbrain_probe.data.manifest import read_manifest
from speechbrain_probe.data.synthetic import build_corpus
from speechbrain_probe.evaluation.scoring import score_cell
from speechbrain_probe.extras import require_extra
from speechbrain_probe.metrics.ecapa import export_ecapa
from speechbrain_probe.metrics.speaker import ECAPAVerifier, GE2EVerifier
from speechbrain_probe.metrics.trials import load_trials, make_trials, save_trials


class ECAPABrain(KillSafeCheckpoints, sb.Brain):
    """Speaker classification with an additive angular margin loss."""

    def compute_forward(self, batch, stage):
        batch = batch.to(self.device)
        wavs, lens = batch.sig
        feats = self.modules.compute_features(wavs)
        feats = self.modules.mean_var_norm(feats, lens)
        embeddings = self.modules.embedding_model(feats, lens)
        return self.modules.classifier(embeddings), lens

    def compute_objectives(self, predictions, batch, stage):
        predictions, lens = predictions
        spk, _ = batch.spk_id_encoded
        loss = self.hparams.compute_cost(predictions, spk, lens)
        self.error_metrics.append(batch.id, predictions, spk, lens)
        return loss

    def on_stage_start(self, stage, epoch=None):
        self.error_metrics = self.hparams.error_stats()

    def on_stage_end(self, stage, stage_loss, epoch=None):
        stats = {"loss": stage_loss, "error": self.error_metrics.summarize("average")}
        if stage == sb.Stage.TRAIN:
            old_lr, new_lr = self.hparams.lr_annealing(epoch)
            sb.nnet.schedulers.update_learning_rate(self.optimizer, new_lr)
            self.hparams.train_logger.log_stats(
                stats_meta={"epoch": epoch, "lr": old_lr}, train_stats=stats
            )
            self.checkpointer.save_and_keep_only(meta=stats, min_keys=["loss"])


def dataio_prepare(hparams):
    """Training set with random fixed-length crops and encoded speaker labels."""
    train = sb.dataio.dataset.DynamicItemDataset.from_csv(
        csv_path=hparams["train_annotation"]
    )
    crop = int(hparams["sentence_len"] * hparams["sample_rate"])

    @sb.utils.data_pipeline.takes("wav")
    @sb.utils.data_pipeline.provides("sig")
    def audio_pipeline(wav):
        sig = read_audio(wav)
        if sig.shape[0] > crop:
            start = random.randint(0, sig.shape[0] - crop)
            sig = sig[start : start + crop]
        return sig

    label_encoder = sb.dataio.encoder.CategoricalEncoder()

    @sb.utils.data_pipeline.takes("spk_id")
    @sb.utils.data_pipeline.provides("spk_id", "spk_id_encoded")
    def label_pipeline(spk_id):
        yield spk_id
        yield label_encoder.encode_sequence_torch([spk_id])

    sb.dataio.dataset.add_dynamic_item([train], audio_pipeline)
    sb.dataio.dataset.add_dynamic_item([train], label_pipeline)
    lab_file = Path(hparams["save_folder"]) / "label_encoder.txt"
    label_encoder.load_or_create(
        path=lab_file, from_didatasets=[train], output_key="spk_id"
    )
    sb.dataio.dataset.set_output_keys([train], ["id", "sig", "spk_id_encoded"])
    return train, label_encoder


def evaluate(hparams, model_dir, device):
    """EER/minDCF of the exported ECAPA (and GE2E) on the unseen test speakers."""
    rows = read_manifest(hparams["test_annotation"])
    trials_file = Path(hparams["trials_file"])
    if trials_file.is_file():
        trials = load_trials(trials_file)
    else:
        trials = make_trials(rows, seed=hparams["trials_seed"])
        save_trials(trials_file, trials)
    paths = [Path(r["wav"]) for r in rows]
    verifiers = {
        "ecapa": ECAPAVerifier(model_dir, device=device),
        "ge2e": GE2EVerifier(device=device),
    }
    start = time.time()
    cell = score_cell(
        [r["ID"] for r in rows],
        paths,
        paths,
        trials,
        verifiers,
        quality=False,
        n_boot=hparams["n_bootstrap"],
    )
    results = {
        "n_test_utterances": len(rows),
        "n_trials": len(trials),
        "seconds": round(time.time() - start, 1),
        "excluded": cell["excluded"],
    }
    for name in verifiers:
        eer = cell["metrics"].get(f"eer_{name}")
        if eer is None:
            print(f"{name}: no scorable trials (see excluded in eer.json)")
            continue
        mindcf = cell["metrics"][f"mindcf_{name}"]
        results[name] = {"eer": eer[:3], "mindcf": mindcf[:3], "n": eer[3]}
        print(
            f"{name}: EER {100 * eer[0]:.2f}% [{100 * eer[1]:.2f}, {100 * eer[2]:.2f}] "
            f"minDCF {mindcf[0]:.3f} on {eer[3]} trials"
        )
    return results


def main(argv=None):
    """``train_ecapa.py hparams/ecapa.yaml [--key=value ...]``."""
    hparams_file, run_opts, overrides = sb.parse_arguments(argv)
    # what the settings need beyond the core, before anything is written
    require_extra("corpus")
    with open(hparams_file, encoding="utf-8") as fin:
        hparams = load_hyperpyyaml(fin, overrides)
    sb.create_experiment_directory(hparams["output_folder"], hparams_file, overrides)
    # the built-in corpus: built once (seeded), reused afterwards
    if not hparams["skip_prep"]:
        settings = {"seed": hparams["corpus_seed"], "preset": hparams["corpus_preset"]}
        run_on_main(build_corpus, args=[hparams["data_folder"]], kwargs=settings)
    for key in ("train_annotation", "test_annotation"):
        if not Path(hparams[key]).is_file():
            raise FileNotFoundError(
                f"{key} {hparams[key]} does not exist; point data_folder at the "
                "built-in corpus (or another corpus with train.csv and test.csv)"
            )
    train, label_encoder = dataio_prepare(hparams)
    n_spk = len(label_encoder)
    if n_spk > hparams["out_n_neurons"]:
        raise ValueError(
            f"{n_spk} training speakers but out_n_neurons={hparams['out_n_neurons']}; "
            f"run with --out_n_neurons={n_spk}"
        )
    brain = ECAPABrain(
        modules=hparams["modules"],
        opt_class=hparams["opt_class"],
        hparams=hparams,
        run_opts=run_opts,
        checkpointer=hparams["checkpointer"],
    )
    start = time.time()
    brain.fit(
        brain.hparams.epoch_counter,
        train,
        train_loader_kwargs=hparams["dataloader_options"],
    )
    train_seconds = time.time() - start
    print(f"training took {train_seconds:.1f} s on {brain.device}")

    arch = {
        k: hparams[k]
        for k in (
            "n_mels",
            "channels",
            "kernel_sizes",
            "dilations",
            "attention_channels",
            "lin_neurons",
        )
    }
    speakers = [label_encoder.decode_ndim(i) for i in range(n_spk)]
    speakers += [f"<unused_{i}>" for i in range(n_spk, hparams["out_n_neurons"])]
    modules = (
        brain.modules.module if hasattr(brain.modules, "module") else brain.modules
    )
    run_on_main(
        export_ecapa,
        args=[hparams["export_dir"], modules["embedding_model"], modules["classifier"]],
        kwargs={"speakers": speakers, "sample_rate": hparams["sample_rate"], **arch},
    )
    print(f"exported ECAPA to {hparams['export_dir']}")
    if sb.utils.distributed.if_main_process():
        results = evaluate(hparams, hparams["export_dir"], brain.device)
        results.update(
            train_seconds=round(train_seconds, 1),
            n_train_speakers=n_spk,
            n_train_utterances=len(train),
            epochs=hparams["number_of_epochs"],
            device=str(brain.device),
            threads=torch.get_num_threads(),
        )
        out = Path(hparams["output_folder"]) / "eer.json"
        atomic_write_text(out, json.dumps(results, indent=2) + "\n")
        print(f"results in {out}")


if __name__ == "__main__":
    main()
