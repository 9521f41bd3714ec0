"""Model registry. Each entry builds an ``nn.Module`` for inputs of shape [N, C, H, W] and
carries the facts other code asks of a model (``model(name, family=..., batchnorm=...,
stochastic=...)``), so that no other module or test keeps a side list of names:

- ``family``: ``linear`` (no hidden layer), ``mlp`` or ``conv``;
- ``batchnorm``: it has batch-norm layers (what test-time adaptation adapts);
- ``stochastic``: it has random layers (dropout), whose draws differ when seeds are trained
  together (``train.packing: vmap`` is refused for it);
- ``without_bn``: for a batch-norm model, the registered model of the same widths and depth
  without batch norm (its twin in the ``batchnorm`` study's comparisons); None for the others.

Builders import torch themselves so that this module (and the names it registers) can be
imported by the Snakefile for config validation without paying for torch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from corruptlab.core.registry import Registry

if TYPE_CHECKING:
    from torch import nn

Builder = Callable[[tuple[int, int, int], int], "nn.Module"]
MODELS: Registry[Builder] = Registry("model")
FAMILIES = ("linear", "mlp", "conv")


def model(
    name: str,
    *,
    family: str,
    batchnorm: bool = False,
    stochastic: bool = False,
    without_bn: str | None = None,
) -> Callable[[Builder], Builder]:
    """Register a builder as model ``name`` with its facts (see the module docstring; a test
    holds each to the built model)."""
    if family not in FAMILIES:
        raise ValueError(f"model {name!r}: family {family!r}; accepted: {', '.join(FAMILIES)}")
    if without_bn is not None and not batchnorm:
        raise ValueError(f"model {name!r}: only a batch-norm model names its twin without_bn")

    def decorate(build: Builder) -> Builder:
        build.family, build.batchnorm, build.stochastic = family, batchnorm, stochastic
        build.without_bn = without_bn
        return MODELS.register(name)(build)

    return decorate


def models_where(**facts) -> list[str]:
    """The registered models whose facts equal ``facts`` (e.g. ``batchnorm=True``)."""
    return [n for n, b in MODELS.items() if all(getattr(b, k) == v for k, v in facts.items())]


def build_model(name: str, in_shape: tuple[int, int, int], n_classes: int) -> nn.Module:
    """Build the registered model ``name`` for inputs ``in_shape`` = (C, H, W)."""
    return MODELS.get(name)(tuple(in_shape), n_classes)


def _mlp(
    in_shape: tuple[int, int, int], n_classes: int, hidden: list[int], activation: str = "ReLU"
) -> nn.Module:
    from torch import nn

    c, h, w = in_shape
    layers: list[nn.Module] = [nn.Flatten()]
    width = c * h * w
    for units in hidden:
        layers += [nn.Linear(width, units), getattr(nn, activation)()]
        width = units
    layers.append(nn.Linear(width, n_classes))
    return nn.Sequential(*layers)


@model("perceptron", family="linear")
def perceptron(in_shape: tuple[int, int, int], n_classes: int) -> nn.Module:
    """A single linear layer (multinomial logistic regression)."""
    return _mlp(in_shape, n_classes, [])


@model("mlp1", family="mlp")
def mlp1(in_shape: tuple[int, int, int], n_classes: int) -> nn.Module:
    """MLP with one hidden ReLU layer of 256 units."""
    return _mlp(in_shape, n_classes, [256])


@model("mlp2", family="mlp")
def mlp2(in_shape: tuple[int, int, int], n_classes: int) -> nn.Module:
    """MLP with two hidden ReLU layers of 256 units."""
    return _mlp(in_shape, n_classes, [256, 256])


@model("mlp4", family="mlp")
def mlp4(in_shape: tuple[int, int, int], n_classes: int) -> nn.Module:
    """MLP with four hidden ReLU layers of 256 units."""
    return _mlp(in_shape, n_classes, [256, 256, 256, 256])


@model("conv4", family="conv")
def conv4(in_shape: tuple[int, int, int], n_classes: int) -> nn.Module:
    """Rolnick et al.'s 4-layer ConvNet: four 3x3 conv layers (16, 32, 32, 64 channels), each
    followed by 2x2 max-pooling and ReLU, then two linear layers (128 hidden units).

    The paper gives the layer types, not the widths; these keep a CPU epoch short (the first
    layer's 28x28 maps dominate the cost). Pooling before ReLU is the same function as ReLU
    before pooling (both are monotone) with a quarter of the ReLUs; see ``_channels_last``."""
    from torch import nn

    c, h, w = in_shape
    layers: list[nn.Module] = []
    for out in (16, 32, 32, 64):
        layers += [nn.Conv2d(c, out, 3, padding=1), nn.MaxPool2d(2), nn.ReLU()]
        c, h, w = out, h // 2, w // 2
    return _channels_last(
        nn.Sequential(
            *layers, nn.Flatten(), nn.Linear(c * h * w, 128), nn.ReLU(), nn.Linear(128, n_classes)
        )
    )


def _channels_last(model: nn.Module) -> nn.Module:
    """The conv weights in channels-last (NHWC) memory order, which the convolutions then use
    for their inputs and outputs too: with these few channels oneDNN's NHWC kernels (and
    pooling) are much faster on a CPU than NCHW ones (``benchmarks/conv_layout.py``: conv4
    about 1.9x per training step, conv4_bn 1.7x). Values, shapes and state-dict keys are
    unchanged; only the floating-point rounding of the convolutions differs."""
    import torch

    return model.to(memory_format=torch.channels_last)


@model("net", family="conv", stochastic=True)
def net(in_shape: tuple[int, int, int], n_classes: int) -> nn.Module:
    """A variant of the PyTorch MNIST example CNN: two conv layers, each followed by ReLU,
    max-pooling, element-wise dropout 0.25 / 0.5.

    It differs from the example (and from the no_gd notebook's ``Net``, ``net_notebook``) in
    the ReLU after the second conv layer and in element-wise (not channel-wise) dropout after
    the pooling. Kept under its name: configs and run paths that name ``net`` mean this."""
    from torch import nn

    c, h, w = in_shape
    return nn.Sequential(
        nn.Conv2d(c, 32, 3),
        nn.ReLU(),
        nn.Conv2d(32, 64, 3),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Dropout(0.25),
        nn.Flatten(),
        nn.Linear(64 * ((h - 4) // 2) * ((w - 4) // 2), 128),
        nn.ReLU(),
        nn.Dropout(0.5),
        nn.Linear(128, n_classes),
    )


@model("conv4_bn", family="conv", batchnorm=True, without_bn="conv4")
def conv4_bn(in_shape: tuple[int, int, int], n_classes: int) -> nn.Module:
    """conv4 with batch norm: conv -> BatchNorm2d -> pool -> ReLU, and BatchNorm1d after the
    hidden linear layer (the layers a test-time adaptation method such as TENT adapts).

    The layers followed by batch norm have no bias: the batch norm's shift replaces it."""
    from torch import nn

    c, h, w = in_shape
    layers: list[nn.Module] = []
    for out in (16, 32, 32, 64):
        layers += [
            nn.Conv2d(c, out, 3, padding=1, bias=False),
            nn.BatchNorm2d(out),
            nn.MaxPool2d(2),
            nn.ReLU(),
        ]
        c, h, w = out, h // 2, w // 2
    return _channels_last(
        nn.Sequential(
            *layers,
            nn.Flatten(),
            nn.Linear(c * h * w, 128, bias=False),
            nn.BatchNorm1d(128),
            nn.ReLU(),
            nn.Linear(128, n_classes),
        )
    )


@model("mlp_bn", family="mlp", batchnorm=True)
def mlp_bn(in_shape: tuple[int, int, int], n_classes: int) -> nn.Module:
    """MLP with two hidden layers of 256 units: linear -> BatchNorm1d -> ReLU.

    The hidden linear layers have no bias: the batch norm's shift replaces it."""
    from torch import nn

    c, h, w = in_shape
    layers: list[nn.Module] = [nn.Flatten()]
    width = c * h * w
    for units in (256, 256):
        layers += [nn.Linear(width, units, bias=False), nn.BatchNorm1d(units), nn.ReLU()]
        width = units
    layers.append(nn.Linear(width, n_classes))
    return nn.Sequential(*layers)


@model("mlp2_4096", family="mlp")
def mlp2_4096(in_shape: tuple[int, int, int], n_classes: int) -> nn.Module:
    """Arpit et al. 2017's MLP: two hidden ReLU layers of 4096 units."""
    return _mlp(in_shape, n_classes, [4096, 4096])


@model("net_notebook", family="conv", stochastic=True)
def net_notebook(in_shape: tuple[int, int, int], n_classes: int) -> nn.Module:
    """The no_gd notebook's ``Net`` (the PyTorch MNIST example of early 2020): conv(32, 3x3) ->
    ReLU -> conv(64, 3x3) -> max-pool 2 -> Dropout2d(0.25) -> flatten -> linear(128) -> ReLU ->
    dropout(0.5) -> linear(n_classes); no ReLU after the second conv layer.

    The notebook's second dropout is ``nn.Dropout2d(0.5)`` on the 2-D output of ``fc1``, which
    current torch deprecates (channel-wise dropout needs a channel dimension); here it is the
    element-wise ``nn.Dropout(0.5)`` it amounted to. The notebook returns ``log_softmax`` and
    trains with ``nll_loss``; like every model of this registry this returns logits, and the
    trainers' ``cross_entropy(logits)`` equals ``nll_loss(log_softmax(logits))``."""
    from torch import nn

    c, h, w = in_shape
    return nn.Sequential(
        nn.Conv2d(c, 32, 3),
        nn.ReLU(),
        nn.Conv2d(32, 64, 3),
        nn.MaxPool2d(2),
        nn.Dropout2d(0.25),
        nn.Flatten(),
        nn.Linear(64 * ((h - 4) // 2) * ((w - 4) // 2), 128),
        nn.ReLU(),
        nn.Dropout(0.5),
        nn.Linear(128, n_classes),
    )


@model("mlp_300_100", family="mlp")
def mlp_300_100(in_shape: tuple[int, int, int], n_classes: int) -> nn.Module:
    """LeNet-300-100 (LeCun et al. 1998), the MLP of the lottery-ticket and supermask papers
    (Frankle & Carbin 2019, Zhou et al. 2019): hidden ReLU layers of 300 and 100 units."""
    return _mlp(in_shape, n_classes, [300, 100])


# --- the batchnorm study's pairs (Bjorck et al. 2018): the same widths and depths, with and
# without batch norm ---------------------------------------------------------------------------

DEEP_WIDTH = 128  # the deep MLPs' hidden width (issue 18: width 128 on the CPU)


def _deep_mlp(
    in_shape: tuple[int, int, int], n_classes: int, depth: int, batchnorm: bool
) -> nn.Module:
    """``depth`` hidden layers of ``DEEP_WIDTH`` units, each linear -> ReLU, or with batch norm
    linear (no bias) -> BatchNorm1d -> ReLU; then the linear classifier."""
    from torch import nn

    c, h, w = in_shape
    layers: list[nn.Module] = [nn.Flatten()]
    width = c * h * w
    for _ in range(depth):
        if batchnorm:
            layers += [nn.Linear(width, DEEP_WIDTH, bias=False), nn.BatchNorm1d(DEEP_WIDTH)]
        else:
            layers.append(nn.Linear(width, DEEP_WIDTH))
        layers.append(nn.ReLU())
        width = DEEP_WIDTH
    layers.append(nn.Linear(width, n_classes))
    return nn.Sequential(*layers)


@model("mlp_d10", family="mlp")
def mlp_d10(in_shape: tuple[int, int, int], n_classes: int) -> nn.Module:
    """Deep MLP without batch norm: 10 hidden ReLU layers of 128 units."""
    return _deep_mlp(in_shape, n_classes, 10, batchnorm=False)


@model("mlp_d10_bn", family="mlp", batchnorm=True, without_bn="mlp_d10")
def mlp_d10_bn(in_shape: tuple[int, int, int], n_classes: int) -> nn.Module:
    """mlp_d10 with batch norm: 10 hidden layers of 128 units, linear -> BatchNorm1d -> ReLU."""
    return _deep_mlp(in_shape, n_classes, 10, batchnorm=True)


@model("mlp_d20", family="mlp")
def mlp_d20(in_shape: tuple[int, int, int], n_classes: int) -> nn.Module:
    """Deep MLP without batch norm: 20 hidden ReLU layers of 128 units."""
    return _deep_mlp(in_shape, n_classes, 20, batchnorm=False)


@model("mlp_d20_bn", family="mlp", batchnorm=True, without_bn="mlp_d20")
def mlp_d20_bn(in_shape: tuple[int, int, int], n_classes: int) -> nn.Module:
    """mlp_d20 with batch norm: 20 hidden layers of 128 units, linear -> BatchNorm1d -> ReLU."""
    return _deep_mlp(in_shape, n_classes, 20, batchnorm=True)


RESNET_WIDTHS = (16, 32, 64)  # the three stages' channels (strides 1, 2, 2)
RESNET_BLOCKS = 2  # pre-activation blocks per stage: 6 blocks, 14 weight layers in all


def _preact_resnet(in_shape: tuple[int, int, int], n_classes: int, batchnorm: bool) -> nn.Module:
    """A small pre-activation ResNet (He et al. 2016, "Identity Mappings"): a 3x3 stem conv,
    three stages of ``RESNET_BLOCKS`` blocks with ``RESNET_WIDTHS`` channels, each block
    [BN ->] ReLU -> conv3x3 -> [BN ->] ReLU -> conv3x3 plus its input (through a 1x1 conv named
    ``shortcut`` where the shape changes), then [BN ->] ReLU, global average pooling and the
    linear classifier. Without batch norm the convolutions have biases."""
    import torch
    from torch import nn

    def norm(channels: int) -> nn.Module:
        return nn.BatchNorm2d(channels) if batchnorm else nn.Identity()

    class Block(nn.Module):
        def __init__(self, c_in: int, c_out: int, stride: int) -> None:
            super().__init__()
            self.norm1, self.act1 = norm(c_in), nn.ReLU()
            self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=not batchnorm)
            self.norm2, self.act2 = norm(c_out), nn.ReLU()
            self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=not batchnorm)
            self.shortcut = (
                nn.Conv2d(c_in, c_out, 1, stride, bias=False)
                if stride != 1 or c_in != c_out
                else None
            )

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out = self.act1(self.norm1(x))
            skip = x if self.shortcut is None else self.shortcut(out)
            out = self.conv1(out)
            out = self.conv2(self.act2(self.norm2(out)))
            return out + skip

    c = in_shape[0]
    layers: list[nn.Module] = [nn.Conv2d(c, RESNET_WIDTHS[0], 3, 1, 1, bias=not batchnorm)]
    c = RESNET_WIDTHS[0]
    for stage, width in enumerate(RESNET_WIDTHS):
        for block in range(RESNET_BLOCKS):
            stride = 2 if stage > 0 and block == 0 else 1
            layers.append(Block(c, width, stride))
            c = width
    layers += [
        norm(c),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(c, n_classes),
    ]
    return _channels_last(nn.Sequential(*layers))


@model("resnet_preact", family="conv")
def resnet_preact(in_shape: tuple[int, int, int], n_classes: int) -> nn.Module:
    """A small pre-activation ResNet without batch norm: 14 weight layers, 16/32/64 channels."""
    return _preact_resnet(in_shape, n_classes, batchnorm=False)


@model("resnet_preact_bn", family="conv", batchnorm=True, without_bn="resnet_preact")
def resnet_preact_bn(in_shape: tuple[int, int, int], n_classes: int) -> nn.Module:
    """resnet_preact with batch norm before each ReLU of its pre-activation blocks."""
    return _preact_resnet(in_shape, n_classes, batchnorm=True)


# --- Hinton et al. 2015's MNIST networks (study kind distillation) ------------------------------

# the teacher's regularisation: dropout on the inputs and on each hidden layer, a max-norm
# constraint on every weight row, inputs shifted by up to JITTER pixels (Hinton, Vinyals & Dean
# 2015, section 3). The paper does not give the max-norm bound; 2.0 is the blog reproduction's.
INPUT_DROPOUT, HIDDEN_DROPOUT, MAX_NORM, JITTER = 0.2, 0.5, 2.0, 2


def _jitter_layer(pixels: int) -> nn.Module:
    """A layer that shifts each image of a training batch by a random whole number of pixels,
    at most ``pixels`` in each direction (edges replicated: MNIST's border is background), and
    passes images unchanged in eval mode. The shifts are drawn from torch's global generator,
    which the trainer seeds per epoch (as dropout's)."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    class Jitter(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.pixels = pixels

        def forward(self, x):
            if not self.training or self.pixels == 0:
                return x
            n, _, h, w = x.shape
            p = self.pixels
            padded = F.pad(x, (p, p, p, p), mode="replicate").permute(0, 2, 3, 1)  # NHWC
            dy = torch.randint(0, 2 * p + 1, (n,), device=x.device)
            dx = torch.randint(0, 2 * p + 1, (n,), device=x.device)
            rows = (torch.arange(h, device=x.device)[None] + dy[:, None])[:, :, None]
            cols = (torch.arange(w, device=x.device)[None] + dx[:, None])[:, None, :]
            batch = torch.arange(n, device=x.device)[:, None, None]
            return padded[batch, rows, cols].permute(0, 3, 1, 2).contiguous()

        def extra_repr(self) -> str:
            return f"pixels={self.pixels}"

    return Jitter()


def _max_norm_linear(width: int, units: int, max_norm: float) -> nn.Module:
    """A linear layer whose weight rows (each unit's incoming weights) are projected onto the
    ball of L2 norm ``max_norm`` (rows outside it rescaled to it) before every forward pass:
    after each optimizer step the next pass (training or evaluation) uses the projected
    weights, as the blog reproduction does."""
    import torch
    from torch import nn

    class MaxNormLinear(nn.Linear):
        def forward(self, x):
            with torch.no_grad():
                norms = self.weight.norm(dim=1, keepdim=True)
                # rows on the sphere (up to rounding) are left alone: passes are repeatable
                over = norms > self.max_norm * (1 + 1e-5)
                if over.any():
                    self.weight.mul_(torch.where(over, self.max_norm / norms, 1.0))
            return super().forward(x)

        def extra_repr(self) -> str:
            return f"{super().extra_repr()}, max_norm={self.max_norm}"

    layer = MaxNormLinear(width, units)
    layer.max_norm = max_norm
    return layer


def _teacher_mlp(in_shape: tuple[int, int, int], n_classes: int, units: int) -> nn.Module:
    """Two hidden ReLU layers of ``units`` with Hinton et al. 2015's teacher regularisation:
    jitter -> flatten -> dropout 0.2 -> [max-norm linear -> ReLU -> dropout 0.5] x 2 -> max-norm
    linear."""
    from torch import nn

    c, h, w = in_shape
    width = c * h * w
    layers: list[nn.Module] = [_jitter_layer(JITTER), nn.Flatten(), nn.Dropout(INPUT_DROPOUT)]
    for _ in range(2):
        layers += [_max_norm_linear(width, units, MAX_NORM), nn.ReLU(), nn.Dropout(HIDDEN_DROPOUT)]
        width = units
    layers.append(_max_norm_linear(width, n_classes, MAX_NORM))
    return nn.Sequential(*layers)


@model("mlp_1200_dropout_jitter", family="mlp", stochastic=True)
def mlp_1200_dropout_jitter(in_shape: tuple[int, int, int], n_classes: int) -> nn.Module:
    """Hinton et al. 2015's MNIST teacher: two hidden ReLU layers of 1200 units, dropout 0.2 on
    the inputs and 0.5 on the hidden layers, max-norm 2.0 on every weight row, inputs jittered
    by up to 2 pixels in training."""
    return _teacher_mlp(in_shape, n_classes, 1200)


@model("mlp_400_dropout_jitter", family="mlp", stochastic=True)
def mlp_400_dropout_jitter(in_shape: tuple[int, int, int], n_classes: int) -> nn.Module:
    """mlp_1200_dropout_jitter with 400 units per hidden layer: the same regularisation at a
    ninth of the cost, the teacher of the quick distillation study on a CPU."""
    return _teacher_mlp(in_shape, n_classes, 400)


@model("mlp_800", family="mlp")
def mlp_800(in_shape: tuple[int, int, int], n_classes: int) -> nn.Module:
    """Hinton et al. 2015's MNIST student: two hidden ReLU layers of 800 units, unregularised."""
    return _mlp(in_shape, n_classes, [800, 800])


@model("mlp3_gelu", family="mlp")
def mlp3_gelu(in_shape: tuple[int, int, int], n_classes: int) -> nn.Module:
    """Hendrycks & Gimpel 2017's MNIST classifier: three hidden GELU layers of 256 units (their
    code's network; the paper calls it "three-layer, 256 neuron-wide")."""
    return _mlp(in_shape, n_classes, [256, 256, 256], activation="GELU")
