"""Capture the outputs of named layers of any frozen ``torch.nn.Module``.

Usable without the rest of the project (it needs only ``torch``):

* :class:`LayerCapture` registers forward hooks on modules named by dotted path
  (``encoder.blstm3``, ``mods.encoder.CNN.block_0``) and always removes them
  when its ``with`` block ends, even on an exception; :func:`to_tensor` gives
  each output's main tensor in float.
* A stacked ``nn.LSTM/GRU/RNN(num_layers=k)`` exposes only its last layer to a
  hook. The virtual path ``<rnn path>.l<i>`` (``i`` = 0 .. k-1, PyTorch's own
  weight numbering) names the output of its inner layer ``i``, recomputed from
  its weights by :func:`unroll_rnn`.
* :func:`measure_layers` measures the probe-able layers' output shape and time
  downsampling on two dummy inputs of different lengths; :func:`block_paths`
  picks a model's top-level layers and :func:`forward_order` sorts paths by
  when their outputs appear.

The command line that lists a model's layers is
:mod:`speechbrain_probe.frozen.list_layers`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import torch
from torch import nn
from torch.func import functional_call
from torch.nn.utils.rnn import PackedSequence, pad_packed_sequence

__all__ = [
    "to_tensor",
    "resolve_module",
    "candidate_paths",
    "block_paths",
    "forward_order",
    "LayerCapture",
    "unroll_rnn",
    "RNNLayerView",
    "LayerReport",
    "measure_layers",
    "to_frames",
    "format_layer_table",
]

_VIRTUAL_RNN = re.compile(r"^l(\d+)$")


def to_tensor(output, batch_first: bool = True) -> torch.Tensor | None:
    """The main tensor of a module output, detached and in float precision.

    Tuples and lists give their first tensor (recursively), packed sequences are
    padded (batch first), mappings and Hugging Face ``ModelOutput`` objects give
    ``last_hidden_state`` (or their first tensor). ``None`` when there is none.

    Arguments
    ---------
    output : object
        What a module's ``forward`` returned.
    batch_first : bool
        Layout of padded packed sequences.

    Returns
    -------
    torch.Tensor or None

    Example
    -------
    >>> out = (torch.ones(2, 3, dtype=torch.float16), (torch.zeros(1), None))
    >>> to_tensor(out).dtype
    torch.float32
    >>> to_tensor({"last_hidden_state": torch.zeros(1, 4, 2)}).shape
    torch.Size([1, 4, 2])
    """
    if isinstance(output, torch.Tensor):
        out = output.detach()
        return out.float() if out.dtype in (torch.float16, torch.bfloat16) else out
    if isinstance(output, PackedSequence):
        padded, _ = pad_packed_sequence(output, batch_first=batch_first)
        return to_tensor(padded)
    if isinstance(output, Mapping):
        if "last_hidden_state" in output:
            return to_tensor(output["last_hidden_state"], batch_first)
        output = list(output.values())
    if isinstance(output, (tuple, list)):
        for value in output:
            found = to_tensor(value, batch_first)
            if found is not None:
                return found
    return None


def _is_stacked_rnn(module: nn.Module) -> bool:
    return isinstance(module, nn.RNNBase) and module.num_layers > 1


@dataclass(frozen=True)
class RNNLayerView:
    """Inner layer ``index`` of a stacked RNN (a virtual, hook-less "module").

    Attributes
    ----------
    rnn : torch.nn.RNNBase
        The stacked ``nn.LSTM`` / ``nn.GRU`` / ``nn.RNN``.
    index : int
        0-based layer index (PyTorch's ``_l<index>`` weight suffix).
    """

    rnn: nn.RNNBase
    index: int

    def __repr__(self) -> str:
        return f"RNNLayerView({type(self.rnn).__name__}, layer {self.index})"


def _children_names(module: nn.Module) -> list[str]:
    names = [name for name, _ in module.named_children()]
    if _is_stacked_rnn(module):
        names += [f"l{i}" for i in range(module.num_layers)]
    return names


def resolve_module(model: nn.Module, path: str) -> nn.Module | RNNLayerView:
    """Find the submodule at dotted ``path`` (``""`` is the model itself).

    ``<stacked rnn>.l<i>`` resolves to an :class:`RNNLayerView`.

    Raises
    ------
    KeyError
        Naming the first unknown component and listing the names available there.

    Example
    -------
    >>> net = nn.Sequential(nn.Linear(2, 2), nn.LSTM(2, 3, num_layers=2))
    >>> resolve_module(net, "0")
    Linear(in_features=2, out_features=2, bias=True)
    >>> resolve_module(net, "1.l0")
    RNNLayerView(LSTM, layer 0)
    >>> resolve_module(net, "2")
    Traceback (most recent call last):
    ...
    KeyError: "unknown layer '2' (no submodule '2' in <root>); available: 0 1"
    """
    module: nn.Module = model
    done: list[str] = []
    for part in [p for p in path.split(".") if p] if path else []:
        if isinstance(module, RNNLayerView):
            raise KeyError(f"unknown layer {path!r}: {'.'.join(done)} has no children")
        children = dict(module.named_children())
        if part in children:
            module = children[part]
        else:
            match = _VIRTUAL_RNN.match(part)
            if match and _is_stacked_rnn(module) and int(match[1]) < module.num_layers:
                module = RNNLayerView(module, int(match[1]))
            else:
                where = ".".join(done) or "<root>"
                available = " ".join(_children_names(module)) or "(none)"
                raise KeyError(
                    f"unknown layer {path!r} (no submodule {part!r} in {where}); "
                    f"available: {available}"
                )
        done.append(part)
    return module


def candidate_paths(model: nn.Module, prefix: str = "") -> list[str]:
    """Dotted paths of every submodule, plus ``.l<i>`` of stacked RNNs.

    Example
    -------
    >>> candidate_paths(nn.Sequential(nn.Linear(2, 2), nn.GRU(2, 2, num_layers=2)))
    ['0', '1', '1.l0', '1.l1']
    """
    paths = []
    for name, module in model.named_modules(prefix=prefix):
        if not name:
            continue
        paths.append(name)
        if _is_stacked_rnn(module):
            paths += [f"{name}.l{i}" for i in range(module.num_layers)]
    return paths


# normalisation layers (torch's and wrappers of the same name) and positional
# encodings are not representations of their own
_SKIPPED_UNIT = re.compile(
    r"^(Layer|Batch|Group|Instance|RMS)Norm(\d*d)?$|(?i:positional|relpos|posenc)"
)
_FEATURE_MODULES = ("speechbrain.lobes.features", "speechbrain.processing.features")


def _has_params(module: nn.Module) -> bool:
    return next(module.parameters(), None) is not None


def _param_children(module: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(n, m) for n, m in module.named_children() if _has_params(m)]


def _is_layer_list(module: nn.Module) -> bool:
    """A list of repeated blocks: >= 2 parameterised children, all one class."""
    kids = _param_children(module)
    return (
        isinstance(module, (nn.ModuleList, nn.Sequential, nn.ModuleDict))
        and len(kids) >= 2
        and len({type(m) for _, m in kids}) == 1
    )


def _has_structure(module: nn.Module, rnn_only: bool = False) -> bool:
    """Whether a stacked RNN (or, unless ``rnn_only``, a layer list) lies below."""
    return any(
        _is_stacked_rnn(m) or (not rnn_only and _is_layer_list(m))
        for m in module.modules()
    )


def block_paths(model: nn.Module) -> list[str]:
    """A model's top-level probe layers, by dotted path (module order).

    The blocks of a layer list (``nn.ModuleList`` / ``nn.Sequential`` of one
    repeated class: transformer layers, CNN or DNN blocks), the inner layers
    of a stacked RNN one by one (``<path>.l<i>``), and any other parameterised
    stage without such structure inside as a whole. Left out: modules without
    parameters (activations, pooling, dropout), normalisation layers,
    positional encodings and feature extraction (``speechbrain.lobes.features``,
    ``speechbrain.processing.features``). A module reached twice (shared by an
    encoder and a decoder) counts once, under its first path. Which of these
    produce frames on a given input is for :func:`measure_layers` to tell.

    Arguments
    ---------
    model : torch.nn.Module
        The model (or a dict of modules, e.g. SpeechBrain's ``mods``).

    Returns
    -------
    list of str

    Example
    -------
    >>> net = nn.Sequential()
    >>> net.add_module("cnn", nn.Sequential(nn.Conv1d(4, 8, 3), nn.ReLU(), nn.Conv1d(8, 8, 3)))
    >>> net.add_module("rnn", nn.LSTM(8, 6, num_layers=2))
    >>> net.add_module("norm", nn.LayerNorm(6))
    >>> net.add_module("out", nn.Linear(6, 3))
    >>> block_paths(net)
    ['cnn.0', 'cnn.2', 'rnn.l0', 'rnn.l1', 'out']
    """
    seen: set[int] = set()
    paths: list[str] = []

    def unit(module: nn.Module, path: str) -> None:
        if _SKIPPED_UNIT.search(type(module).__name__):
            return
        if type(module).__module__.startswith(_FEATURE_MODULES):
            return
        paths.append(path)

    def expand(module: nn.Module, path: str) -> None:
        if id(module) in seen or not _has_params(module):
            return
        seen.add(id(module))
        if type(module).__module__.startswith(_FEATURE_MODULES):
            return
        prefix = f"{path}." if path else ""
        if _is_stacked_rnn(module):
            paths.extend(f"{prefix}l{i}" for i in range(module.num_layers))
            return
        if _is_layer_list(module):
            for name, child in _param_children(module):
                if _has_structure(child, rnn_only=True):
                    expand(child, prefix + name)
                elif id(child) not in seen:
                    seen.add(id(child))
                    unit(child, prefix + name)
            return
        if path and not _has_structure(module):
            unit(module, path)
            return
        for name, child in _param_children(module):
            expand(child, prefix + name)

    expand(model, "")
    return paths


def forward_order(
    model: nn.Module,
    run: Callable[[], object],
    paths: Mapping[str, str] | Iterable[str],
) -> list[str]:
    """``paths`` (or the names of a ``{name: path}`` mapping) sorted by when
    their outputs appear in one ``run()``.

    A forward hook fires when its module's forward ends, so for paths none of
    which contains another this is the order of the forward pass. Paths that
    produce no tensor in ``run()`` are left out.

    Example
    -------
    >>> class Net(nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.late = nn.Linear(4, 4)
    ...         self.early = nn.Linear(4, 4)
    ...     def forward(self, x):
    ...         return self.late(self.early(x))
    >>> net = Net()
    >>> forward_order(net, lambda: net(torch.randn(1, 4)), ["late", "early"])
    ['early', 'late']
    """
    with torch.no_grad(), LayerCapture(model, paths) as cap:
        run()
    return [name for name, value in cap.outputs.items() if value is not None]


# ----------------------------------------------------------------------------
# Stacked RNN unrolling
# ----------------------------------------------------------------------------

_SINGLE_LAYER_CACHE: dict[tuple, nn.RNNBase] = {}


def _single_layer_twin(rnn: nn.RNNBase, index: int) -> nn.RNNBase:
    """A weightless one-layer RNN with the shape of layer ``index`` of ``rnn``."""
    dirs = 2 if rnn.bidirectional else 1
    out_size = rnn.proj_size if getattr(rnn, "proj_size", 0) else rnn.hidden_size
    input_size = rnn.input_size if index == 0 else out_size * dirs
    kwargs = dict(
        input_size=input_size,
        hidden_size=rnn.hidden_size,
        num_layers=1,
        bias=rnn.bias,
        batch_first=rnn.batch_first,
        bidirectional=rnn.bidirectional,
    )
    if isinstance(rnn, nn.LSTM):
        kwargs["proj_size"] = rnn.proj_size
    elif type(rnn) is nn.RNN:
        kwargs["nonlinearity"] = rnn.nonlinearity
    key = (type(rnn), tuple(sorted(kwargs.items())))
    twin = _SINGLE_LAYER_CACHE.get(key)
    if twin is None:
        with torch.device("meta"):
            twin = type(rnn)(**kwargs)
        _SINGLE_LAYER_CACHE[key] = twin
    return twin


def _layer_params(rnn: nn.RNNBase, index: int) -> dict[str, torch.Tensor]:
    params = {}
    for name, value in rnn.named_parameters():
        match = re.match(rf"^(\w+?)_l{index}(_reverse)?$", name)
        if match:
            params[f"{match[1]}_l0{match[2] or ''}"] = value
    return params


def _slice_hx(hx, index: int, dirs: int):
    part = slice(index * dirs, (index + 1) * dirs)
    return tuple(h[part] for h in hx) if isinstance(hx, tuple) else hx[part]


def unroll_rnn(rnn: nn.RNNBase, x, hx=None, num_layers: int | None = None) -> list:
    """Per-layer outputs of a stacked RNN, recomputed from its layer weights.

    Each layer runs as a one-layer RNN of the same class on the previous
    layer's output (dropout between layers as the stacked module applies it),
    using the stacked module's own parameters (no copy).

    Arguments
    ---------
    rnn : torch.nn.LSTM, torch.nn.GRU or torch.nn.RNN
        The stacked module.
    x : torch.Tensor or PackedSequence
        Its input, in its own layout (``batch_first`` or not).
    hx : tensor or tuple, optional
        Initial states as the stacked module takes them.
    num_layers : int, optional
        Recompute only the first ``num_layers`` layers (default: all).

    Returns
    -------
    list
        ``num_layers`` outputs in the layout of ``rnn(x)[0]``; the last layer's
        equals it.

    Example
    -------
    >>> lstm = nn.LSTM(4, 3, num_layers=3, batch_first=True, bidirectional=True)
    >>> x = torch.randn(2, 5, 4)
    >>> outs = unroll_rnn(lstm, x)
    >>> [tuple(o.shape) for o in outs]
    [(2, 5, 6), (2, 5, 6), (2, 5, 6)]
    >>> torch.allclose(outs[-1], lstm(x)[0], atol=1e-6)
    True
    >>> len(unroll_rnn(lstm, x, num_layers=1))
    1
    """
    dirs = 2 if rnn.bidirectional else 1
    outputs = []
    current = x
    count = rnn.num_layers if num_layers is None else min(num_layers, rnn.num_layers)
    for index in range(count):
        twin = _single_layer_twin(rnn, index)
        args = (current,) if hx is None else (current, _slice_hx(hx, index, dirs))
        out = functional_call(twin, _layer_params(rnn, index), args)[0]
        outputs.append(out)
        if index < rnn.num_layers - 1 and rnn.dropout > 0 and rnn.training:
            if isinstance(out, PackedSequence):
                out = out._replace(
                    data=nn.functional.dropout(out.data, rnn.dropout, training=True)
                )
            else:
                out = nn.functional.dropout(out, rnn.dropout, training=True)
        current = out
    return outputs


# ----------------------------------------------------------------------------
# Capture
# ----------------------------------------------------------------------------


def _named(layers: Mapping[str, str] | Iterable[str]) -> dict[str, str]:
    """``{name: dotted path}`` of a mapping, or of paths that name themselves."""
    return dict(layers) if isinstance(layers, Mapping) else {p: p for p in layers}


class LayerCapture:
    """Context manager capturing the outputs of named layers during forwards.

    Arguments
    ---------
    model : torch.nn.Module
        The (frozen) model; hooks go on its submodules.
    layers : mapping or iterable of str
        ``{name: dotted path}``, or dotted paths (then each is its own name).
        Unknown paths raise a ``KeyError`` listing the available names before
        any hook is registered.

    Attributes
    ----------
    outputs : dict
        ``name -> tensor`` of the latest forward (see :func:`to_tensor`).

    Example
    -------
    >>> net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    >>> with LayerCapture(net, {"hidden": "1"}) as cap:
    ...     _ = net(torch.randn(3, 4))
    >>> cap.outputs["hidden"].shape, len(net[1]._forward_hooks)
    (torch.Size([3, 8]), 0)
    """

    def __init__(self, model: nn.Module, layers: Mapping[str, str] | Iterable[str]):
        self.paths = _named(layers)
        self.model = model
        self.targets = {
            name: resolve_module(model, p) for name, p in self.paths.items()
        }
        self.outputs: dict[str, torch.Tensor | None] = {}
        self._handles: list = []

    def _hook_for(self, names: list[str]):
        def hook(module, args, output):
            value = to_tensor(output, batch_first=getattr(module, "batch_first", True))
            for name in names:
                self.outputs[name] = value

        return hook

    def _rnn_hook_for(self, views: dict[str, int]):
        def hook(module, args, output):
            x = args[0]
            hx = args[1] if len(args) > 1 else None
            # recompute only the layers asked for; the last one is the output
            need = max(views.values()) + 1
            top = need == module.num_layers
            with torch.no_grad():
                inner = unroll_rnn(module, x, hx, need - 1 if top else need)
            if top:
                inner.append(output[0])
            bf = module.batch_first or isinstance(x, PackedSequence)
            # inner layers in their own order (the capture's outputs keep the
            # order in which layers produced them)
            for name, index in sorted(views.items(), key=lambda kv: kv[1]):
                value = to_tensor(inner[index], batch_first=True)
                if not bf:
                    value = value.transpose(0, 1)
                self.outputs[name] = value

        return hook

    def __enter__(self) -> LayerCapture:
        plain: dict[int, tuple[nn.Module, list[str]]] = {}
        virtual: dict[int, tuple[nn.RNNBase, dict[str, int]]] = {}
        for name, target in self.targets.items():
            if isinstance(target, RNNLayerView):
                entry = virtual.setdefault(id(target.rnn), (target.rnn, {}))
                entry[1][name] = target.index
            else:
                plain.setdefault(id(target), (target, []))[1].append(name)
        try:
            for module, names in plain.values():
                self._handles.append(
                    module.register_forward_hook(self._hook_for(names))
                )
            for rnn, views in virtual.values():
                self._handles.append(
                    rnn.register_forward_hook(self._rnn_hook_for(views))
                )
        except BaseException:
            self.remove()
            raise
        return self

    def remove(self) -> None:
        """Remove every hook this capture registered (idempotent)."""
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def __exit__(self, *exc) -> None:
        self.remove()

    def __getitem__(self, name: str) -> torch.Tensor:
        if name not in self.paths:
            raise KeyError(
                f"{name!r} is not captured; captured: {' '.join(self.paths)}"
            )
        if self.outputs.get(name) is None:
            raise RuntimeError(
                f"layer {name!r} ({self.paths[name]}) produced no tensor in the last "
                "forward: was the model run inside the with block, and does this "
                "module take part in its forward?"
            )
        return self.outputs[name]


# ----------------------------------------------------------------------------
# Listing and measuring layers
# ----------------------------------------------------------------------------


@dataclass(frozen=True)
class LayerReport:
    """Output geometry of one probe-able layer, measured on dummy inputs.

    Attributes
    ----------
    name, path : str
        Short name and dotted module path.
    kind : str
        Module class name.
    shape : tuple
        Output shape for the first dummy input.
    time_axis, batch_axis : int
        Axes of the output that follow input length and batch.
    dim : int
        Features per output frame (all other axes flattened).
    downsample : float
        Input frames per output frame (1.0 = same rate; 4.0 = a quarter).
    """

    name: str
    path: str
    kind: str
    shape: tuple
    time_axis: int
    batch_axis: int
    dim: int
    downsample: float


def to_frames(h: torch.Tensor, time_axis: int = 1, batch_axis: int = 0) -> torch.Tensor:
    """Reorder ``h`` to ``[batch, time, features]`` (other axes flattened).

    Example
    -------
    >>> to_frames(torch.zeros(2, 8, 5, 3), time_axis=2).shape
    torch.Size([2, 5, 24])
    """
    if h.dim() < 2:
        raise ValueError(
            f"need at least batch and time axes, got shape {tuple(h.shape)}"
        )
    rest = [a for a in range(h.dim()) if a not in (batch_axis, time_axis)]
    h = h.permute(batch_axis, time_axis, *rest)
    return h.reshape(h.shape[0], h.shape[1], -1)


def measure_layers(
    model: nn.Module,
    run: Callable[[int, int], object],
    lengths: tuple[int, int] = (64, 96),
    units_per_frame: float = 1.0,
    batch: int = 3,
    layers: Mapping[str, str] | Iterable[str] | None = None,
) -> list[LayerReport]:
    """Measure output shape and time downsampling of layers on dummy inputs.

    ``run(batch, n)`` must build a dummy input of ``n`` input units (frames or
    samples) and run ``model`` on it. Layers whose output has exactly one axis
    that follows the input length are probe-able; others (pooled, constant
    shape) are left out.

    Arguments
    ---------
    model : torch.nn.Module
        Where the hooks go.
    run : callable
        ``run(batch, n)`` runs the model on a dummy input.
    lengths : tuple of int
        Two input lengths (in input units).
    units_per_frame : float
        Input units per target frame (e.g. 200 samples for a 12.5 ms hop at
        16 kHz), so ``downsample`` is in target frames.
    batch : int
        Dummy batch size (pick one unlikely to equal a feature size).
    layers : mapping or iterable, optional
        Only these (default: every submodule and stacked-RNN inner layer).

    Returns
    -------
    list of LayerReport
        In module order.

    Example
    -------
    >>> net = nn.Sequential(nn.Conv1d(4, 8, 3, stride=2, padding=1), nn.ReLU())
    >>> run = lambda b, n: net(torch.randn(b, 4, n))
    >>> [(r.name, r.time_axis, r.dim, r.downsample) for r in measure_layers(net, run)]
    [('0', 2, 8, 2.0), ('1', 2, 8, 2.0)]
    """
    paths = _named(candidate_paths(model) if layers is None else layers)
    shapes = []
    with torch.no_grad():
        for n in lengths:
            with LayerCapture(model, paths) as cap:
                run(batch, n)
            shapes.append({k: v.shape for k, v in cap.outputs.items() if v is not None})
    reports = []
    for name, path in paths.items():
        if name not in shapes[0] or name not in shapes[1]:
            continue
        s1, s2 = shapes[0][name], shapes[1][name]
        if len(s1) != len(s2) or len(s1) < 2:
            continue
        moving = [a for a in range(len(s1)) if s1[a] != s2[a]]
        if len(moving) != 1:
            continue
        t_axis = moving[0]
        batch_axes = [a for a in range(len(s1)) if a != t_axis and s1[a] == batch]
        if not batch_axes:
            continue
        b_axis = batch_axes[0]
        dim = math.prod(s1[a] for a in range(len(s1)) if a not in (t_axis, b_axis))
        frames = (lengths[1] - lengths[0]) / units_per_frame
        ratio = frames / (s2[t_axis] - s1[t_axis])
        module = resolve_module(model, path)
        kind = (
            f"{type(module.rnn).__name__}[layer {module.index}]"
            if isinstance(module, RNNLayerView)
            else type(module).__name__
        )
        report = (name, path, kind, tuple(s1), t_axis, b_axis, int(dim))
        reports.append(LayerReport(*report, downsample=round(ratio, 3)))
    return reports


def format_layer_table(
    reports: Iterable[LayerReport], marked: Iterable[str] | None = None
) -> str:
    """A fixed-width table of :class:`LayerReport` rows.

    Arguments
    ---------
    reports : iterable of LayerReport
        The rows.
    marked : iterable of str, optional
        Names or paths of rows to mark with ``*`` in a first column (e.g. a
        model's default layers); no mark column when None.

    Example
    -------
    >>> rep = LayerReport("cnn1", "m.cnn1", "Conv", (3, 64, 5120), 1, 0, 5120, 1.0)
    >>> print(format_layer_table([rep]))  # doctest: +NORMALIZE_WHITESPACE
    name  path    type  dim   downsample  shape
    cnn1  m.cnn1  Conv  5120  1           (3, 64, 5120)
    >>> print(format_layer_table([rep], marked=["cnn1"]))  # doctest: +NORMALIZE_WHITESPACE
       name  path    type  dim   downsample  shape
    *  cnn1  m.cnn1  Conv  5120  1           (3, 64, 5120)
    """
    reports = list(reports)
    header: tuple = ("name", "path", "type", "dim", "downsample", "shape")
    rows = [
        (r.name, r.path, r.kind, str(r.dim), f"{r.downsample:g}", str(r.shape))
        for r in reports
    ]
    if marked is not None:
        marks = set(marked)
        header = ("", *header)
        rows = [
            ("*" if r.name in marks or r.path in marks else "", *row)
            for r, row in zip(reports, rows)
        ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip()
        for row in [header, *rows]
    ]
    return "\n".join(lines)
