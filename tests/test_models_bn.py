"""The batch-norm models (conv4_bn, mlp_bn): shapes, layer order, batch-norm layers, sizes."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from corruptlab.core.registry import describe
from corruptlab.train.models import MODELS, build_model

MNIST = (1, 28, 28)
BN_NAMES = ["conv4_bn", "mlp_bn"]


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_bn_models_are_registered_with_descriptions():
    for name in BN_NAMES:
        assert name in MODELS
        assert describe(MODELS.get(name))


@pytest.mark.parametrize("name", BN_NAMES)
@pytest.mark.parametrize("train", [False, True])
def test_bn_model_maps_a_batch_to_logits(name, train):
    torch.manual_seed(0)
    model = build_model(name, MNIST, 10).train(train)
    with torch.no_grad():
        y = model(torch.randn(8, 1, 28, 28))
    assert y.shape == (8, 10)
    assert y.dtype == torch.float32
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("name", BN_NAMES)
def test_bn_model_follows_in_shape_and_n_classes(name):
    model = build_model(name, (3, 32, 32), 7).eval()
    with torch.no_grad():
        assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 7)


def test_conv4_bn_layers():
    model = build_model("conv4_bn", MNIST, 10)
    kinds = [type(m) for m in model.children()]
    block = [nn.Conv2d, nn.BatchNorm2d, nn.MaxPool2d, nn.ReLU]
    head = [nn.Flatten, nn.Linear, nn.BatchNorm1d, nn.ReLU, nn.Linear]
    assert kinds == block * 4 + head
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size) for c in convs] == [
        (1, 16, (3, 3)), (16, 32, (3, 3)), (32, 32, (3, 3)), (32, 64, (3, 3))
    ]  # fmt: skip
    bn2d = [m.num_features for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    bn1d = [m.num_features for m in model.modules() if isinstance(m, nn.BatchNorm1d)]
    assert bn2d == [16, 32, 32, 64]
    assert bn1d == [128]
    linears = [(m.in_features, m.out_features) for m in model.modules() if isinstance(m, nn.Linear)]
    assert linears == [(64, 128), (128, 10)]  # as conv4


def test_mlp_bn_layers():
    model = build_model("mlp_bn", MNIST, 10)
    kinds = [type(m) for m in model.children()]
    hidden = [nn.Linear, nn.BatchNorm1d, nn.ReLU]
    assert kinds == [nn.Flatten, *hidden, *hidden, nn.Linear]
    bn1d = [m.num_features for m in model.modules() if isinstance(m, nn.BatchNorm1d)]
    assert bn1d == [256, 256]
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    linears = [(m.in_features, m.out_features) for m in model.modules() if isinstance(m, nn.Linear)]
    assert linears == [(784, 256), (256, 256), (256, 10)]  # as mlp2


def test_bn_parameter_counts():
    # layers followed by batch norm have no bias; each batch norm has a weight and a bias
    convs = 1 * 9 * 16 + 16 * 9 * 32 + 32 * 9 * 32 + 32 * 9 * 64
    bn = 2 * (16 + 32 + 32 + 64) + 2 * 128
    assert n_params(build_model("conv4_bn", MNIST, 10)) == convs + bn + 64 * 128 + 128 * 10 + 10
    mlp = 784 * 256 + 256 * 256 + 256 * 10 + 10 + 2 * (256 + 256)
    assert n_params(build_model("mlp_bn", MNIST, 10)) == mlp == 269_834


@pytest.mark.parametrize("name", BN_NAMES)
def test_bn_model_uses_running_statistics_in_eval_mode(name):
    torch.manual_seed(0)
    model = build_model(name, MNIST, 10).eval()
    x = torch.randn(6, 1, 28, 28)
    with torch.no_grad():
        # eval mode: each example's logits do not depend on the rest of the batch
        assert torch.allclose(model(x)[:3], model(x[:3]), atol=1e-6)
        model.train()
        assert not torch.allclose(model(x)[:3], model(x[:3]), atol=1e-6)
