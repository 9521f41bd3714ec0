"""Model registry: every model builds and maps images to logits; sizes; light imports."""

from __future__ import annotations

import copy
import subprocess
import sys

import pytest
import torch
from torch import nn

from corruptlab.core.registry import UnknownNameError
from corruptlab.train.models import MODELS, build_model

MNIST = (1, 28, 28)
NAMES = [
    "perceptron", "mlp1", "mlp2", "mlp4", "conv4", "net", "conv4_bn", "mlp_bn", "mlp2_4096",
    "net_notebook", "mlp_300_100", "mlp_d10", "mlp_d10_bn", "mlp_d20", "mlp_d20_bn",
    "resnet_preact", "resnet_preact_bn", "mlp_1200_dropout_jitter", "mlp_400_dropout_jitter",
    "mlp_800", "mlp3_gelu",
]  # fmt: skip


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_registered_models():
    assert MODELS.names() == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_every_model_maps_a_batch_to_logits(name):
    torch.manual_seed(0)
    model = build_model(name, MNIST, 10)
    assert isinstance(model, nn.Module)
    model.eval()
    x = torch.randn(5, 1, 28, 28)
    with torch.no_grad():
        y = model(x)
    assert y.shape == (5, 10)
    assert y.dtype == torch.float32
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("name", NAMES)
def test_every_model_follows_in_shape_and_n_classes(name):
    model = build_model(name, (3, 32, 32), 7)  # e.g. a colour dataset with 7 classes
    model.eval()
    with torch.no_grad():
        assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 7)


# in -> out sizes of the Linear layers of each model, for MNIST and 10 classes
LINEARS = {
    "perceptron": [(784, 10)],
    "mlp1": [(784, 256), (256, 10)],
    "mlp2": [(784, 256), (256, 256), (256, 10)],
    "mlp4": [(784, 256), (256, 256), (256, 256), (256, 256), (256, 10)],
    "conv4": [(64, 128), (128, 10)],
    "net": [(64 * 12 * 12, 128), (128, 10)],
    "conv4_bn": [(64, 128), (128, 10)],
    "mlp_bn": [(784, 256), (256, 256), (256, 10)],
    "mlp2_4096": [(784, 4096), (4096, 4096), (4096, 10)],
    "net_notebook": [(64 * 12 * 12, 128), (128, 10)],
    "mlp_300_100": [(784, 300), (300, 100), (100, 10)],
    "mlp_d10": [(784, 128)] + [(128, 128)] * 9 + [(128, 10)],
    "mlp_d10_bn": [(784, 128)] + [(128, 128)] * 9 + [(128, 10)],
    "mlp_d20": [(784, 128)] + [(128, 128)] * 19 + [(128, 10)],
    "mlp_d20_bn": [(784, 128)] + [(128, 128)] * 19 + [(128, 10)],
    "resnet_preact": [(64, 10)],
    "resnet_preact_bn": [(64, 10)],
    "mlp_1200_dropout_jitter": [(784, 1200), (1200, 1200), (1200, 10)],
    "mlp_400_dropout_jitter": [(784, 400), (400, 400), (400, 10)],
    "mlp_800": [(784, 800), (800, 800), (800, 10)],
    "mlp3_gelu": [(784, 256), (256, 256), (256, 256), (256, 10)],
}


@pytest.mark.parametrize("name", NAMES)
def test_linear_layers(name):
    model = build_model(name, MNIST, 10)
    sizes = [(m.in_features, m.out_features) for m in model.modules() if isinstance(m, nn.Linear)]
    assert sizes == LINEARS[name]


def _weight_shapes(model: nn.Module) -> list[tuple[int, ...]]:
    return [tuple(m.weight.shape) for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]


@pytest.mark.parametrize("name", [n for n in NAMES if MODELS.get(n).without_bn])
def test_a_batchnorm_model_and_its_twin_have_the_same_widths_and_depth(name):
    """The batchnorm study's pairs: the same linear and conv weights in the same order, one
    batch norm per hidden layer (biases replaced by its shift), and no batch norm in the twin."""
    twin = MODELS.get(name).without_bn
    assert MODELS.get(twin).batchnorm is False
    with_bn, without = build_model(name, MNIST, 10), build_model(twin, MNIST, 10)
    assert _weight_shapes(with_bn) == _weight_shapes(without)
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in without.modules())


def test_only_a_batchnorm_model_names_a_twin():
    from corruptlab.train.models import model

    with pytest.raises(ValueError, match="only a batch-norm model names its twin"):
        model("x", family="mlp", without_bn="mlp1")
    assert [n for n in NAMES if MODELS.get(n).without_bn] == [
        "conv4_bn", "mlp_d10_bn", "mlp_d20_bn", "resnet_preact_bn"
    ]  # fmt: skip


def test_resnet_preact_layers():
    """14 weight layers (stem, 6 blocks of two 3x3 convs, the classifier) plus the 1x1
    shortcut convs of the two stages that change the shape; with BN, 13 batch norms (two per
    block and the last pre-activation)."""
    for name, n_bn in (("resnet_preact", 0), ("resnet_preact_bn", 13)):
        model = build_model(name, MNIST, 10)
        convs = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
        shortcuts = [n for n, _ in convs if n.endswith("shortcut")]
        assert len(convs) - len(shortcuts) == 13 and len(shortcuts) == 2
        bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
        assert len(bns) == n_bn
        assert [m.out_channels for _, m in convs if m.kernel_size == (3, 3)] == [16] * 5 + [
            32
        ] * 4 + [64] * 4


def test_parameter_counts():
    assert n_params(build_model("perceptron", MNIST, 10)) == 784 * 10 + 10 == 7850
    assert n_params(build_model("mlp1", MNIST, 10)) == 784 * 256 + 256 + 256 * 10 + 10 == 203_530
    assert n_params(build_model("mlp2", MNIST, 10)) == 203_530 + 256 * 256 + 256
    assert n_params(build_model("mlp4", MNIST, 10)) == 203_530 + 3 * (256 * 256 + 256)
    conv = (1 * 9 * 16 + 16) + (16 * 9 * 32 + 32) + (32 * 9 * 32 + 32) + (32 * 9 * 64 + 64)
    assert n_params(build_model("conv4", MNIST, 10)) == conv + 64 * 128 + 128 + 128 * 10 + 10
    net = (9 * 32 + 32) + (32 * 9 * 64 + 64) + 9216 * 128 + 128 + 128 * 10 + 10
    assert n_params(build_model("net", MNIST, 10)) == net == 1_199_882
    assert n_params(build_model("net_notebook", MNIST, 10)) == net
    lenet = 784 * 300 + 300 + 300 * 100 + 100 + 100 * 10 + 10
    assert n_params(build_model("mlp_300_100", MNIST, 10)) == lenet == 266_610


def test_mlp1_has_one_hidden_relu_layer_of_256():
    model = build_model("mlp1", MNIST, 10)
    kinds = [type(m) for m in model.children()]
    assert kinds == [nn.Flatten, nn.Linear, nn.ReLU, nn.Linear]
    assert model[1].out_features == 256


def test_mlp3_gelu_has_three_hidden_gelu_layers_of_256():
    model = build_model("mlp3_gelu", MNIST, 10)
    kinds = [type(m) for m in model.children()]
    assert kinds == [nn.Flatten] + [nn.Linear, nn.GELU] * 3 + [nn.Linear]
    assert [m.out_features for m in model if isinstance(m, nn.Linear)] == [256, 256, 256, 10]


def test_conv4_has_four_conv_layers():
    model = build_model("conv4", MNIST, 10)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size) for c in convs] == [
        (1, 16, (3, 3)), (16, 32, (3, 3)), (32, 32, (3, 3)), (32, 64, (3, 3))
    ]  # fmt: skip
    assert sum(isinstance(m, nn.MaxPool2d) for m in model.modules()) == 4
    assert not any(isinstance(m, nn.Dropout) for m in model.modules())


@pytest.mark.parametrize("name", ["conv4", "conv4_bn"])
def test_conv_models_are_channels_last_and_pool_before_relu_changes_nothing(name):
    """The conv weights are NHWC in memory (the fast kernels on a CPU), and pooling before ReLU
    computes what ReLU before pooling does: same outputs and gradients, up to rounding."""
    torch.manual_seed(0)
    model = build_model(name, MNIST, 10)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert all(c.weight.is_contiguous(memory_format=torch.channels_last) for c in convs)
    assert not convs[1].weight.is_contiguous()  # really NHWC, not only trivially so
    layers = list(model.children())
    swapped = list(layers)  # ReLU back before each pooling layer, in plain NCHW memory
    for i, layer in enumerate(layers):
        if isinstance(layer, nn.MaxPool2d):
            swapped[i], swapped[i + 1] = layers[i + 1], layer
    reference = copy.deepcopy(nn.Sequential(*swapped)).to(memory_format=torch.contiguous_format)
    assert [type(m) for m in reference] != [type(m) for m in model]
    x = torch.randn(64, *MNIST)
    y = torch.randint(0, 10, (64,))
    outputs = []
    for m in (model, reference):
        out = m(x)
        nn.functional.cross_entropy(out, y).backward()
        outputs.append((out, [p.grad for p in m.parameters()]))
    torch.testing.assert_close(outputs[0][0], outputs[1][0], rtol=1e-4, atol=1e-5)
    for g, h in zip(outputs[0][1], outputs[1][1], strict=True):
        torch.testing.assert_close(g, h, rtol=1e-3, atol=1e-5)


def test_net_has_dropout_active_only_in_training():
    torch.manual_seed(0)
    model = build_model("net", MNIST, 10)
    rates = [m.p for m in model.modules() if isinstance(m, nn.Dropout)]
    assert rates == [0.25, 0.5]
    x = torch.randn(5, 1, 28, 28)
    with torch.no_grad():
        model.train()
        a, b = model(x), model(x)
        model.eval()
        c, d = model(x), model(x)
    assert not torch.equal(a, b)  # dropout masks differ between passes
    assert torch.equal(c, d)  # eval is deterministic
    assert not torch.equal(a, c)


@pytest.mark.parametrize("name", ["perceptron", "mlp1", "mlp2", "mlp4", "conv4"])
def test_models_without_dropout_are_deterministic_in_training_mode(name):
    torch.manual_seed(0)
    model = build_model(name, MNIST, 10).train()
    x = torch.randn(3, 1, 28, 28)
    with torch.no_grad():
        assert torch.equal(model(x), model(x))


def test_unknown_model_lists_accepted_names():
    with pytest.raises(UnknownNameError) as err:
        build_model("resnet", MNIST, 10)
    assert str(err.value) == "unknown model 'resnet'; accepted: " + ", ".join(NAMES)
    assert isinstance(err.value, KeyError)


def test_models_have_one_line_descriptions():
    from corruptlab.core.registry import describe

    docs = {name: describe(fn) for name, fn in MODELS.items()}
    assert docs["perceptron"] == "A single linear layer (multinomial logistic regression)."
    assert docs["mlp1"] == "MLP with one hidden ReLU layer of 256 units."
    assert all(docs.values()), docs


# The Snakefile imports these at parse time; they must not pay for torch.
LIGHT_MODULES = [
    "corruptlab.train.models",
    "corruptlab.train.inits",
    "corruptlab.studies.batchnorm",
    "corruptlab.core.config",
    "corruptlab.data.noise",
    "corruptlab.studies",
    "corruptlab.core.fingerprint",
    "corruptlab.train.optim",
    "corruptlab.train.schedules",
    "corruptlab.train.objectives",
    "corruptlab.core.registry",
    "corruptlab.core.params",
]


@pytest.mark.parametrize("module", LIGHT_MODULES)
def test_module_imports_without_torch(module):
    code = (
        f"import sys, {module}\n"
        "heavy = sorted(m for m in ('torch', 'torchvision') if m in sys.modules)\n"
        "print(','.join(heavy))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "", f"importing {module} imported {proc.stdout.strip()}"


@pytest.mark.parametrize("name", MODELS.names())
def test_each_models_facts_hold_for_the_built_model(name):
    """family, batchnorm and stochastic, declared on the registry entry, against the layers."""
    from torch import nn

    entry = MODELS.get(name)
    layers = list(build_model(name, (1, 28, 28), 10).modules())
    kinds = {type(m) for m in layers}
    assert entry.batchnorm == any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in layers)
    assert entry.stochastic == any(isinstance(m, nn.modules.dropout._DropoutNd) for m in layers)
    convolutional = any(isinstance(m, nn.Conv2d) for m in layers)
    n_linear = sum(isinstance(m, nn.Linear) for m in layers)
    expected = "conv" if convolutional else ("mlp" if n_linear > 1 else "linear")
    assert entry.family == expected, kinds


def test_models_where_selects_by_facts():
    from corruptlab.train.models import models_where

    assert models_where(batchnorm=True) == [
        "conv4_bn", "mlp_bn", "mlp_d10_bn", "mlp_d20_bn", "resnet_preact_bn"
    ]  # fmt: skip
    assert models_where(family="mlp", batchnorm=False) == [
        "mlp1", "mlp2", "mlp4", "mlp2_4096", "mlp_300_100", "mlp_d10", "mlp_d20",
        "mlp_1200_dropout_jitter", "mlp_400_dropout_jitter", "mlp_800", "mlp3_gelu",
    ]  # fmt: skip
    assert models_where(family="linear") == ["perceptron"]
    with pytest.raises(ValueError, match="family 'rnn'; accepted: linear, mlp, conv"):
        from corruptlab.train.models import model

        model("x", family="rnn")


class NotebookNet(nn.Module):
    """The no_gd notebook's ``Net``, as written there (with the element-wise dropout that its
    deprecated ``Dropout2d`` on a 2-D tensor stands for, and logits instead of log-softmax)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, 1)
        self.conv2 = nn.Conv2d(32, 64, 3, 1)
        self.dropout1 = nn.Dropout2d(0.25)
        self.dropout2 = nn.Dropout(0.5)
        self.fc1 = nn.Linear(9216, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = nn.functional.relu(self.conv1(x))
        x = nn.functional.max_pool2d(self.conv2(x), 2)
        x = torch.flatten(self.dropout1(x), 1)
        x = self.dropout2(nn.functional.relu(self.fc1(x)))
        return self.fc2(x)


def test_net_notebook_is_the_notebooks_net():
    """Same parameters in the same order, the same function in eval mode and, from the same
    generator state, the same dropout draws in training; ``net`` is another function."""
    torch.manual_seed(0)
    ours = build_model("net_notebook", MNIST, 10)
    theirs = NotebookNet()
    shapes = [tuple(p.shape) for p in theirs.parameters()]
    assert [tuple(p.shape) for p in ours.parameters()] == shapes
    with torch.no_grad():
        for p, q in zip(ours.parameters(), theirs.parameters(), strict=True):
            q.copy_(p)
    x = torch.randn(6, *MNIST)
    for mode in (False, True):
        ours.train(mode), theirs.train(mode)
        torch.manual_seed(1)
        a = ours(x)
        torch.manual_seed(1)
        b = theirs(x)
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
    assert [type(m) for m in ours if "Dropout" in type(m).__name__] == [nn.Dropout2d, nn.Dropout]
    relus = [i for i, m in enumerate(ours) if isinstance(m, nn.ReLU)]
    assert relus == [1, 7]  # after conv1 and fc1 only, not after conv2
    other = build_model("net", MNIST, 10)
    with torch.no_grad():  # the same weights (net's keys are shifted by its extra ReLU)
        for p, q in zip(other.parameters(), ours.parameters(), strict=True):
            p.copy_(q)
    ours.eval(), other.eval()
    assert not torch.allclose(other(x), ours(x))


def test_mlp_300_100_is_lenet_300_100():
    model = build_model("mlp_300_100", MNIST, 10)
    assert [type(m) for m in model] == [nn.Flatten] + [nn.Linear, nn.ReLU] * 2 + [nn.Linear]


@pytest.mark.parametrize("name", ["mlp_1200_dropout_jitter", "mlp_400_dropout_jitter"])
def test_teacher_regularisation_dropout_max_norm_and_jitter(name):
    """Hinton et al. 2015's teacher: dropout 0.2 on the inputs and 0.5 on the hidden layers;
    every weight row's norm at most 2.0 after a forward pass (also after a step that grew it);
    inputs shifted by whole pixels in training only."""
    torch.manual_seed(0)
    model = build_model(name, MNIST, 10)
    assert [m.p for m in model.modules() if isinstance(m, nn.Dropout)] == [0.2, 0.5, 0.5]
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    with torch.no_grad():
        for layer in linears:
            layer.weight.mul_(10.0)  # rows far outside the ball
    model.eval()
    x = torch.randn(4, *MNIST)
    with torch.inference_mode():
        first = model(x)
        again = model(x)
    assert torch.equal(first, again)  # eval: no dropout, no jitter
    for layer in linears:
        norms = layer.weight.detach().norm(dim=1)
        assert norms.max().item() <= 2.0 + 1e-5
        assert norms.max().item() >= 2.0 - 1e-3  # projected onto the sphere, not shrunk further
    jitter = model[0]
    jitter.train()
    image = torch.zeros(64, 1, 28, 28)
    image[:, 0, 10:18, 10:18] = 1.0  # an 8x8 square inside the border
    shifted = jitter(image)
    assert shifted.shape == image.shape
    assert torch.equal(shifted.sum((1, 2, 3)), image.sum((1, 2, 3)))  # a whole-pixel shift
    rows = shifted[:, 0].amax(2).argmax(1)  # first row of the square in each image
    cols = shifted[:, 0].amax(1).argmax(1)
    assert set(rows.tolist()) <= set(range(8, 13)) and set(cols.tolist()) <= set(range(8, 13))
    assert len(set(zip(rows.tolist(), cols.tolist(), strict=True))) > 5  # shifts vary
    jitter.eval()
    assert torch.equal(jitter(image), image)


def test_student_of_the_paper_is_unregularised():
    model = build_model("mlp_800", MNIST, 10)
    assert not any(isinstance(m, nn.Dropout) for m in model.modules())
    assert n_params(model) == 784 * 800 + 800 + 800 * 800 + 800 + 800 * 10 + 10
