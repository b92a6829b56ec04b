"""SpeechBrain's own pretrained LibriSpeech ASR families, built tiny and offline.

Each builder writes a local directory in the hub's layout: the inference
``hyperparams.yaml`` of ``speechbrain/asr-crdnn-rnnlm-librispeech``,
``speechbrain/asr-wav2vec2-librispeech`` or
``speechbrain/asr-conformer-transformerlm-librispeech`` (same keys, classes and
pipeline, tiny dimensions) plus the checkpoint files its pretrainer lists
(``asr.ckpt``, ``lm.ckpt``, ``tokenizer.ckpt``, ``normalizer.ckpt``,
``wav2vec2.ckpt``), with random weights. The models load through
``load_asr(<dir>)`` exactly as a user's download would.
"""

import math
import textwrap
from pathlib import Path

import pytest
import torch
from hyperpyyaml import load_hyperpyyaml

from speechbrain_probe.frozen.list_layers import main as list_layers_main
from speechbrain_probe.frozen.load import load_asr
from tests.test_pretrained import refuse_downloads, train_probes_a_few_steps
from tests.user_inputs import tiny_wav2vec2

VOCAB = 24  # sentencepiece vocabulary = output_neurons

CRDNN_YAML = textwrap.dedent(
    """\
    # Model: E2E ASR with attention-based ASR (tiny copy of the hub's layout)
    # Encoder: CRDNN model; Decoder: GRU + beamsearch + RNNLM; Tokens: BPE
    sample_rate: 16000
    n_fft: 400
    n_mels: 20

    activation: !name:torch.nn.LeakyReLU
    dropout: 0.15
    cnn_blocks: 2
    cnn_channels: (4, 8)
    inter_layer_pooling_size: (2, 2)
    cnn_kernelsize: (3, 3)
    time_pooling_size: 4
    rnn_class: !name:speechbrain.nnet.RNN.LSTM
    rnn_layers: 3
    rnn_neurons: 8
    rnn_bidirectional: True
    dnn_blocks: 2
    dnn_neurons: 8
    emb_size: 8
    dec_neurons: 8
    output_neurons: @VOCAB@
    blank_index: 0

    bos_index: 0
    eos_index: 0
    min_decode_ratio: 0.0
    max_decode_ratio: 1.0
    beam_size: 2
    eos_threshold: 1.5
    using_max_attn_shift: True
    max_attn_shift: 240
    lm_weight: 0.50
    coverage_penalty: 1.5
    temperature: 1.25
    temperature_lm: 1.25

    normalizer: !new:speechbrain.processing.features.InputNormalization
        norm_type: global

    compute_features: !new:speechbrain.lobes.features.Fbank
        sample_rate: !ref <sample_rate>
        n_fft: !ref <n_fft>
        n_mels: !ref <n_mels>

    enc: !new:speechbrain.lobes.models.CRDNN.CRDNN
        input_shape: [null, null, !ref <n_mels>]
        activation: !ref <activation>
        dropout: !ref <dropout>
        cnn_blocks: !ref <cnn_blocks>
        cnn_channels: !ref <cnn_channels>
        cnn_kernelsize: !ref <cnn_kernelsize>
        inter_layer_pooling_size: !ref <inter_layer_pooling_size>
        time_pooling: True
        using_2d_pooling: False
        time_pooling_size: !ref <time_pooling_size>
        rnn_class: !ref <rnn_class>
        rnn_layers: !ref <rnn_layers>
        rnn_neurons: !ref <rnn_neurons>
        rnn_bidirectional: !ref <rnn_bidirectional>
        rnn_re_init: True
        dnn_blocks: !ref <dnn_blocks>
        dnn_neurons: !ref <dnn_neurons>

    emb: !new:speechbrain.nnet.embedding.Embedding
        num_embeddings: !ref <output_neurons>
        embedding_dim: !ref <emb_size>

    dec: !new:speechbrain.nnet.RNN.AttentionalRNNDecoder
        enc_dim: !ref <dnn_neurons>
        input_size: !ref <emb_size>
        rnn_type: gru
        attn_type: location
        hidden_size: !ref <dec_neurons>
        attn_dim: 8
        num_layers: 1
        scaling: 1.0
        channels: 4
        kernel_size: 5
        re_init: True
        dropout: !ref <dropout>

    ctc_lin: !new:speechbrain.nnet.linear.Linear
        input_size: !ref <dnn_neurons>
        n_neurons: !ref <output_neurons>

    seq_lin: !new:speechbrain.nnet.linear.Linear
        input_size: !ref <dec_neurons>
        n_neurons: !ref <output_neurons>

    log_softmax: !new:speechbrain.nnet.activations.Softmax
        apply_log: True

    lm_model: !new:speechbrain.lobes.models.RNNLM.RNNLM
        output_neurons: !ref <output_neurons>
        embedding_dim: !ref <emb_size>
        activation: !name:torch.nn.LeakyReLU
        dropout: 0.0
        rnn_layers: 2
        rnn_neurons: 8
        dnn_blocks: 1
        dnn_neurons: 8
        return_hidden: True

    tokenizer: !new:sentencepiece.SentencePieceProcessor

    asr_model: !new:torch.nn.ModuleList
        - [!ref <enc>, !ref <emb>, !ref <dec>, !ref <ctc_lin>, !ref <seq_lin>]

    encoder: !new:speechbrain.nnet.containers.LengthsCapableSequential
        input_shape: [null, null, !ref <n_mels>]
        compute_features: !ref <compute_features>
        normalize: !ref <normalizer>
        model: !ref <enc>

    rnnlm_scorer: !new:speechbrain.decoders.scorer.RNNLMScorer
        language_model: !ref <lm_model>
        temperature: !ref <temperature_lm>

    coverage_scorer: !new:speechbrain.decoders.scorer.CoverageScorer
        vocab_size: !ref <output_neurons>

    scorer: !new:speechbrain.decoders.scorer.ScorerBuilder
        full_scorers: [!ref <rnnlm_scorer>, !ref <coverage_scorer>]
        weights:
            rnnlm: !ref <lm_weight>
            coverage: !ref <coverage_penalty>

    decoder: !new:speechbrain.decoders.S2SRNNBeamSearcher
        embedding: !ref <emb>
        decoder: !ref <dec>
        linear: !ref <seq_lin>
        bos_index: !ref <bos_index>
        eos_index: !ref <eos_index>
        min_decode_ratio: !ref <min_decode_ratio>
        max_decode_ratio: !ref <max_decode_ratio>
        beam_size: !ref <beam_size>
        eos_threshold: !ref <eos_threshold>
        using_max_attn_shift: !ref <using_max_attn_shift>
        max_attn_shift: !ref <max_attn_shift>
        temperature: !ref <temperature>
        scorer: !ref <scorer>

    modules:
        encoder: !ref <encoder>
        decoder: !ref <decoder>
        lm_model: !ref <lm_model>

    pretrainer: !new:speechbrain.utils.parameter_transfer.Pretrainer
        loadables:
            asr: !ref <asr_model>
            lm: !ref <lm_model>
            tokenizer: !ref <tokenizer>
            normalizer: !ref <normalizer>
    """
)

CONFORMER_YAML = textwrap.dedent(
    """\
    # Model: Conformer encoder-decoder + TransformerLM (tiny copy of the hub's layout)
    sample_rate: 16000
    n_fft: 512
    n_mels: 20
    win_length: 32

    d_model: 16
    nhead: 2
    num_encoder_layers: 3
    num_decoder_layers: 1
    d_ffn: 32
    transformer_dropout: 0.1
    activation: !name:torch.nn.GELU
    output_neurons: @VOCAB@

    blank_index: 0
    label_smoothing: 0.1
    pad_index: 0
    bos_index: 1
    eos_index: 2

    min_decode_ratio: 0.0
    max_decode_ratio: 1.0
    test_beam_size: 2
    lm_weight: 0.60
    ctc_weight_decode: 0.40

    CNN: !new:speechbrain.lobes.models.convolution.ConvolutionFrontEnd
        input_shape: (8, 10, 20)
        num_blocks: 2
        num_layers_per_block: 1
        out_channels: (4, 4)
        kernel_sizes: (3, 3)
        strides: (2, 2)
        residuals: (False, False)

    Transformer: !new:speechbrain.lobes.models.transformer.TransformerASR.TransformerASR # yamllint disable-line rule:line-length
        input_size: 20
        tgt_vocab: !ref <output_neurons>
        d_model: !ref <d_model>
        nhead: !ref <nhead>
        num_encoder_layers: !ref <num_encoder_layers>
        num_decoder_layers: !ref <num_decoder_layers>
        d_ffn: !ref <d_ffn>
        dropout: !ref <transformer_dropout>
        activation: !ref <activation>
        encoder_module: conformer
        attention_type: RelPosMHAXL
        normalize_before: True
        causal: False

    ctc_lin: !new:speechbrain.nnet.linear.Linear
        input_size: !ref <d_model>
        n_neurons: !ref <output_neurons>

    seq_lin: !new:speechbrain.nnet.linear.Linear
        input_size: !ref <d_model>
        n_neurons: !ref <output_neurons>

    lm_model: !new:speechbrain.lobes.models.transformer.TransformerLM.TransformerLM # yamllint disable-line rule:line-length
        vocab: !ref <output_neurons>
        d_model: 16
        nhead: 2
        num_encoder_layers: 1
        num_decoder_layers: 0
        d_ffn: 32
        dropout: 0.0
        activation: !name:torch.nn.GELU
        normalize_before: False

    tokenizer: !new:sentencepiece.SentencePieceProcessor

    asr_model: !new:torch.nn.ModuleList
        - [!ref <CNN>, !ref <Transformer>, !ref <seq_lin>, !ref <ctc_lin>]

    normalize: !new:speechbrain.processing.features.InputNormalization
        norm_type: global

    compute_features: !new:speechbrain.lobes.features.Fbank
        sample_rate: !ref <sample_rate>
        n_fft: !ref <n_fft>
        n_mels: !ref <n_mels>
        win_length: !ref <win_length>

    Tencoder: !new:speechbrain.lobes.models.transformer.TransformerASR.EncoderWrapper
        transformer: !ref <Transformer>

    encoder: !new:speechbrain.nnet.containers.LengthsCapableSequential
        input_shape: [null, null, !ref <n_mels>]
        compute_features: !ref <compute_features>
        normalize: !ref <normalize>
        cnn: !ref <CNN>
        transformer_encoder: !ref <Tencoder>

    ctc_scorer: !new:speechbrain.decoders.scorer.CTCScorer
        eos_index: !ref <eos_index>
        blank_index: !ref <blank_index>
        ctc_fc: !ref <ctc_lin>

    transformerlm_scorer: !new:speechbrain.decoders.scorer.TransformerLMScorer
        language_model: !ref <lm_model>
        temperature: 1.15

    scorer: !new:speechbrain.decoders.scorer.ScorerBuilder
        full_scorers: [!ref <transformerlm_scorer>, !ref <ctc_scorer>]
        weights:
            ctc: !ref <ctc_weight_decode>
            transformerlm: !ref <lm_weight>

    decoder: !new:speechbrain.decoders.S2STransformerBeamSearcher
        modules: [!ref <Transformer>, !ref <seq_lin>]
        bos_index: !ref <bos_index>
        eos_index: !ref <eos_index>
        min_decode_ratio: !ref <min_decode_ratio>
        max_decode_ratio: !ref <max_decode_ratio>
        beam_size: !ref <test_beam_size>
        temperature: 1.15
        using_eos_threshold: False
        length_normalization: True
        scorer: !ref <scorer>

    log_softmax: !new:torch.nn.LogSoftmax
        dim: -1

    modules:
        encoder: !ref <encoder>
        decoder: !ref <decoder>

    pretrainer: !new:speechbrain.utils.parameter_transfer.Pretrainer
        loadables:
            normalizer: !ref <normalize>
            asr: !ref <asr_model>
            lm: !ref <lm_model>
            tokenizer: !ref <tokenizer>
    """
)

WAV2VEC2_YAML = textwrap.dedent(
    """\
    # Model: wav2vec2 + DNN + CTC (tiny copy of the hub's layout; the HF model
    # is a local random one instead of facebook/wav2vec2-large-960h-lv60-self)
    sample_rate: 16000
    wav2vec2_hub: @HF@
    wav2vec2_folder: @SAVE@

    dnn_neurons: 12
    freeze_wav2vec: True
    output_neurons: 30
    blank_index: 0

    tokenizer: !new:speechbrain.dataio.encoder.CTCTextEncoder

    enc: !new:speechbrain.nnet.containers.Sequential
        input_shape: [null, null, 16]
        linear1: !name:speechbrain.nnet.linear.Linear
            n_neurons: !ref <dnn_neurons>
            bias: True
        bn1: !name:speechbrain.nnet.normalization.BatchNorm1d
        activation: !new:torch.nn.LeakyReLU
        drop: !new:torch.nn.Dropout
            p: 0.15
        linear2: !name:speechbrain.nnet.linear.Linear
            n_neurons: !ref <dnn_neurons>
            bias: True
        bn2: !name:speechbrain.nnet.normalization.BatchNorm1d
        activation2: !new:torch.nn.LeakyReLU
        drop2: !new:torch.nn.Dropout
            p: 0.15

    wav2vec2: !new:speechbrain.lobes.models.huggingface_transformers.wav2vec2.Wav2Vec2
        source: !ref <wav2vec2_hub>
        output_norm: True
        freeze: !ref <freeze_wav2vec>
        save_path: !ref <wav2vec2_folder>

    ctc_lin: !new:speechbrain.nnet.linear.Linear
        input_size: !ref <dnn_neurons>
        n_neurons: !ref <output_neurons>

    log_softmax: !new:speechbrain.nnet.activations.Softmax
        apply_log: True

    asr_model: !new:torch.nn.ModuleList
        - [!ref <enc>, !ref <ctc_lin>]

    encoder: !new:speechbrain.nnet.containers.LengthsCapableSequential
        wav2vec2: !ref <wav2vec2>
        enc: !ref <enc>
        ctc_lin: !ref <ctc_lin>
        log_softmax: !ref <log_softmax>

    decoding_function: !name:speechbrain.decoders.ctc_greedy_decode
        blank_id: !ref <blank_index>

    modules:
        encoder: !ref <encoder>

    pretrainer: !new:speechbrain.utils.parameter_transfer.Pretrainer
        loadables:
            wav2vec2: !ref <wav2vec2>
            asr: !ref <asr_model>
            tokenizer: !ref <tokenizer>
    """
)

TEXT = [
    "THE CAT SAT ON THE MAT",
    "A DOG RAN IN THE PARK",
    "SPEECH BRAIN PROBES HIDDEN LAYERS",
    "WHAT DOES A NETWORK LAYER HEAR",
    "RANDOM WEIGHTS TINY MODELS",
]


def _tokenizer_model(folder: Path) -> Path:
    """A tiny sentencepiece model trained on a few lines (``tokenizer.ckpt``)."""
    import sentencepiece as spm

    text = folder / "text.txt"
    text.write_text("\n".join(TEXT * 4) + "\n")
    spm.SentencePieceTrainer.train(
        input=str(text),
        model_prefix=str(folder / "spm"),
        vocab_size=VOCAB,
        model_type="unigram",
        character_coverage=1.0,
        bos_id=-1,
        eos_id=-1,
        unk_id=0,
        minloglevel=2,
    )
    return folder / "spm.model"


def _save_loadables(hparams: dict, directory: Path, spm_model: Path | None = None):
    """Write every loadable of the pretrainer as ``<name>.ckpt`` (random weights),
    with SpeechBrain's own save hooks where a class has one."""
    from speechbrain.utils.checkpoints import DEFAULT_SAVE_HOOKS, get_default_hook

    loadables = hparams["pretrainer"].loadables
    for name, obj in loadables.items():
        path = directory / f"{name}.ckpt"
        if type(obj).__module__.startswith("sentencepiece"):
            path.write_bytes(spm_model.read_bytes())
            continue
        hook = get_default_hook(obj, DEFAULT_SAVE_HOOKS)
        if hook is not None:
            hook(obj, path)
        else:
            torch.save(obj.state_dict(), path)


def _fit_normalizer(norm, n_mels: int):
    """Global statistics, as a trained model's normalizer.ckpt has them."""
    norm.train()
    with torch.no_grad():
        norm(torch.randn(2, 50, n_mels), torch.ones(2))
    norm.eval()


def _build_with_tokenizer(directory: Path, template: str, normalizer: str) -> Path:
    """A model of ``template`` with a sentencepiece tokenizer and a fitted
    global ``normalizer``."""
    directory.mkdir(parents=True)
    yaml = template.replace("@VOCAB@", str(VOCAB))
    (directory / "hyperparams.yaml").write_text(yaml)
    torch.manual_seed(0)
    hp = load_hyperpyyaml(yaml)
    _fit_normalizer(hp[normalizer], 20)
    _save_loadables(hp, directory, _tokenizer_model(directory))
    return directory


def build_crdnn(directory: Path) -> Path:
    """``speechbrain/asr-crdnn-rnnlm-librispeech``, tiny and random."""
    return _build_with_tokenizer(directory, CRDNN_YAML, "normalizer")


def build_conformer(directory: Path) -> Path:
    """``speechbrain/asr-conformer-transformerlm-librispeech``, tiny and random."""
    return _build_with_tokenizer(directory, CONFORMER_YAML, "normalize")


def build_wav2vec2(directory: Path) -> Path:
    """``speechbrain/asr-wav2vec2-librispeech``, tiny and random: the HF model is
    a local ``save_pretrained`` wav2vec2 (the hub's yaml names a hub id)."""
    transformers = pytest.importorskip("transformers")
    directory.mkdir(parents=True)
    hf = directory / "hf_wav2vec2"
    torch.manual_seed(0)
    tiny_wav2vec2(hf, feat_extract_norm="layer", do_stable_layer_norm=True)
    transformers.Wav2Vec2FeatureExtractor(
        do_normalize=True, return_attention_mask=True
    ).save_pretrained(hf)
    yaml = WAV2VEC2_YAML.replace("@HF@", str(hf)).replace(
        "@SAVE@", str(directory / "wav2vec2_checkpoint")
    )
    (directory / "hyperparams.yaml").write_text(yaml)
    hp = load_hyperpyyaml(yaml)
    tokenizer = hp["tokenizer"]
    tokenizer.update_from_iterable("".join(TEXT), sequence_input=True)
    tokenizer.insert_blank(index=0)
    _save_loadables(hp, directory)
    return directory


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Nothing here may reach a hub: the models load as a user's download would."""
    refuse_downloads(monkeypatch)


FAMILIES = {
    "crdnn": (
        build_crdnn,
        "speechbrain",
        [
            "encoder-model-RNN-rnn-l0",
            "encoder-model-RNN-rnn-l1",
            "encoder-model-RNN-rnn-l2",
            "encoder-model-DNN-block_0",
            "encoder-model-DNN-block_1",
        ],
    ),
    "conformer": (
        build_conformer,
        "speechbrain",
        [
            "encoder-cnn-convblock_0",
            "encoder-cnn-convblock_1",
            "encoder-transformer_encoder-transformer-custom_src_module",
            "encoder-transformer_encoder-transformer-encoder-layers-0",
            "encoder-transformer_encoder-transformer-encoder-layers-1",
            "encoder-transformer_encoder-transformer-encoder-layers-2",
        ],
    ),
    "wav2vec2": (
        build_wav2vec2,
        "speechbrain",
        [
            "encoder-wav2vec2-model-feature_extractor-conv_layers-6",
            "encoder-wav2vec2-model-feature_projection",
            "encoder-wav2vec2-model-encoder-layers-0",
            "encoder-wav2vec2-model-encoder-layers-1",
            "encoder-enc",
            "encoder-ctc_lin",
        ],
    ),
}


@pytest.mark.parametrize("family", list(FAMILIES))
def test_hub_family_loads_lists_layers_and_trains_a_probe(family, tmp_path, capsys):
    build, kind, expected = FAMILIES[family]
    directory = build(tmp_path / family)
    asr = load_asr(directory, device="cpu")
    assert asr.kind == kind
    defaults = asr.default_layers()
    assert defaults == expected
    assert asr.validate_layers(defaults) == defaults
    for name in defaults:
        assert asr.geometry(name).downsample >= 1
    wavs = torch.randn(2, 12000) * 0.1
    states = asr.hidden_states(wavs, torch.tensor([1.0, 0.6]), defaults)
    assert all(h.dim() == 3 and h.shape[0] == 2 for h in states.values())
    # the command line marks the defaults
    assert list_layers_main([str(directory)]) == 0
    out = capsys.readouterr().out
    marked = [line.split()[1] for line in out.splitlines() if line.startswith("*")]
    assert sorted(marked) == sorted(expected)  # the table is in module order
    assert f"# default layers (*): {' '.join(expected)}" in out
    # a layer's dotted module path stands for its name
    assert asr.check_layers([asr.layers[expected[0]]]) == expected[:1]
    from speechbrain_probe.probe.model import build_probes

    probes = build_probes(asr, defaults[:1] + defaults[-1:], n_highway=1)
    losses = train_probes_a_few_steps(asr, probes)
    assert all(math.isfinite(v) for v in losses.values())


def test_missing_checkpoint_is_named_before_the_model_is_built(
    tmp_path, monkeypatch, capsys
):
    from speechbrain.inference.ASR import EncoderDecoderASR

    directory = build_crdnn(tmp_path / "crdnn")
    (directory / "lm.ckpt").unlink()

    def refuse(*args, **kwargs):
        raise AssertionError("the model was built before its files were checked")

    monkeypatch.setattr(EncoderDecoderASR, "from_hparams", refuse)
    with pytest.raises(FileNotFoundError) as err:
        load_asr(directory, device="cpu")
    message = str(err.value)
    assert "lacks lm.ckpt" in message and str(directory) in message
    assert "loadables: lm" in message and "copy the missing file" in message
    assert list_layers_main([str(directory)]) == 2
    assert "lacks lm.ckpt" in capsys.readouterr().err


def test_unknown_and_finer_than_mel_layers_are_refused_with_the_fix(tmp_path):
    asr = load_asr(build_crdnn(tmp_path / "crdnn"), device="cpu")
    with pytest.raises(
        KeyError, match="unknown layer 'blstm7'; available: .*encoder-model-RNN-rnn-l0"
    ):
        asr.validate_layers(["blstm7"])
    # the CNN blocks pool frequency only: a frame every 10 ms (Fbank hop)
    with pytest.raises(ValueError) as err:
        asr.validate_layers(["encoder-model-RNN-rnn-l1", "encoder.model.CNN.block_0"])
    message = str(err.value)
    assert "'encoder-model-CNN-block_0'" in message
    assert "every 10 ms" in message and "mel hop of 12.5 ms" in message
    assert "Probe a coarser layer" in message and "mel_config" in message
    assert asr.validate_layers(None) == asr.default_layers()
