"""The training-method registry (corruptlab.train.methods): the fit contract, gd as an entry,
the history check, the frozen-weights digest."""

from __future__ import annotations

import math

import pytest
import torch
from test_training import cfg, tiny_model, toy_data

from corruptlab.core.params import Param
from corruptlab.core.registry import UnknownNameError
from corruptlab.train.methods import (
    FROZEN_DIGEST,
    HISTORY_COLUMNS,
    METHODS,
    Method,
    check_history,
    fit_run,
    method_of,
    weights_digest,
)
from corruptlab.train.training import TrainResult, train


def test_gd_is_the_trainer_with_examples_forwarded():
    data = toy_data(n=96)
    alone = train(tiny_model(1), data, cfg(max_epochs=3))
    result = fit_run(tiny_model(1), data, cfg(max_epochs=3), {"name": "gd"}, None)
    assert [r["examples_forwarded"] for r in result.history] == [0, 96, 96, 96]
    for a, b in zip(alone.history, result.history, strict=True):
        assert {k: v for k, v in b.items() if k not in ("examples_forwarded", "seconds")} == {
            k: v for k, v in a.items() if k != "seconds"
        }
    for name, tensor in alone.best_state.items():
        assert torch.equal(tensor, result.best_state[name])
    assert all(c in row for row in result.history for c in HISTORY_COLUMNS)


def test_a_run_without_a_method_is_trained_by_gd():
    assert method_of({"run_id": "x"}) == {"name": "gd"}
    assert method_of({"train_method": {"name": "edge_popup", "k": 0.5}})["k"] == 0.5


def test_unknown_methods_name_the_accepted_ones():
    with pytest.raises(UnknownNameError, match="unknown training method 'tf'; accepted: gd"):
        METHODS.get("tf")


def _result(history: list[dict]) -> TrainResult:
    return TrainResult("ok", "max_epochs", 0, 0.5, {}, history)


def row(epoch: int, **extra) -> dict:
    return {
        "epoch": epoch,
        "examples_forwarded": 10 * epoch,
        "seconds": 0.1,
        "train_loss": math.nan if epoch == 0 else 1.0,
        "val_loss": 1.0,
        "val_accuracy": 0.5,
        **extra,
    }


def test_the_history_check_names_what_is_missing():
    plain = Method("plain", lambda *a: None)
    check_history([row(0), row(1)], plain)
    bad = row(1)
    del bad["examples_forwarded"]
    with pytest.raises(ValueError, match=r"row 1 \(epoch 1\) lacks examples_forwarded"):
        check_history([row(0), bad], plain)
    with pytest.raises(ValueError, match="first history row is epoch 1"):
        check_history([row(1)], plain)
    with pytest.raises(ValueError, match="empty history"):
        check_history([], plain)
    masked = Method("masked", lambda *a: None, frozen_weights=True)
    with pytest.raises(ValueError, match=f"lacks {FROZEN_DIGEST}"):
        check_history([row(0), row(1)], masked)
    check_history([row(0, frozen_sha256="a"), row(1, frozen_sha256="a")], masked)


def test_a_registered_method_gets_its_spec_with_defaults_and_is_checked():
    seen = {}

    def fit(model, data, cfg_, spec, checkpoint, progress, on_epoch):
        seen.update(spec)
        return _result([row(0), row(1)])

    method = Method(
        "test_fit_contract",
        fit,
        params=(
            Param("k", "k", float, 0.0, 1.0, default=0.5),
            Param("population", "p", int, 1, None),
        ),
    )
    METHODS.add(method.name, method)
    try:
        spec = {"name": "test_fit_contract", "population": 8}
        fit_run(tiny_model(), toy_data(n=32), cfg(), spec, None)
        assert seen == {"name": "test_fit_contract", "k": 0.5, "population": 8}
        assert method.slug(method.values(spec)) == "test_fit_contract-k0.5-p8"

        def broken(*args):
            return _result([{"epoch": 0}])

        METHODS._entries["test_fit_contract"] = Method(
            "test_fit_contract", broken, params=method.params
        )
        with pytest.raises(ValueError, match="lacks examples_forwarded, seconds"):
            fit_run(tiny_model(), toy_data(n=32), cfg(), spec, None)
    finally:
        METHODS._entries.pop("test_fit_contract")


def test_a_fit_function_named_by_module_path_is_imported_when_called():
    method = Method("lazy", "corruptlab.train.training:train")
    assert method.resolve() is train


def test_weights_digest_is_bit_exact():
    a = {"w": torch.ones(3, 2), "b": torch.zeros(2)}
    same = {"b": torch.zeros(2), "w": torch.ones(3, 2)}
    assert weights_digest(a) == weights_digest(same)
    nudged = {
        "w": torch.ones(3, 2).index_put_((torch.tensor([0]),), torch.tensor(1.0 + 1e-7)),
        "b": torch.zeros(2),
    }
    assert weights_digest(a) != weights_digest(nudged)
    assert weights_digest([torch.ones(2)]) != weights_digest([torch.ones(2, dtype=torch.float64)])
