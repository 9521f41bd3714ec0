"""Several seeds of one configuration trained together in one process (``seeds_per_job``).

The K members' parameters are stacked along a new leading dimension and one forward/backward
pass serves all of them (``torch.func.vmap`` over ``functional_call``). Everything that makes a
run what it is stays per member, as in ``training.train``: initial weights, the data order of
every epoch (derived from the member's seed and the epoch), its noisy labels, early stopping
on its own validation accuracy, its best weights and history. The optimizers in
``corruptlab.train.optim`` are elementwise, so one optimizer over the stacked tensors performs each
member's own update; a member that stops leaves the stack with its state.

A member's result agrees with its unpacked twin up to floating-point rounding: a batched matrix
product sums in another order than K separate ones (see ``PACKED_TOLERANCE``). Models with
dropout are not packed (their masks would be drawn differently): a model's ``stochastic``
fact (corruptlab.train.models).
"""

from __future__ import annotations

import copy
import hashlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from corruptlab.core.seeding import derive_seed
from corruptlab.train.optim import build_optimizer
from corruptlab.train.training import (
    EVAL_BATCH,
    Checkpoint,
    RunRecord,
    StateFn,
    TrainConfig,
    TrainData,
    TrainResult,
    check_objective,
    epoch_progress,
    resume_progress,
    set_lr,
)

# How far a packed member may drift from its unpacked twin (float32 rounding, amplified a little
# by training): tests/test_packing.py holds members to these over a few epochs.
PACKED_TOLERANCE = {"rtol": 1e-3, "atol": 1e-4}


def _check_pack(models: list[nn.Module], data: list[TrainData], cfgs: list[TrainConfig]) -> None:
    if not models or not len(models) == len(data) == len(cfgs):
        raise ValueError(
            f"a pack needs as many models, data and configs (got {len(models)}, "
            f"{len(data)}, {len(cfgs)}), at least one"
        )
    shared = {k: v for k, v in cfgs[0].__dict__.items() if k != "seed"}
    for cfg in cfgs[1:]:
        other = {k: v for k, v in cfg.__dict__.items() if k != "seed"}
        if other != shared:
            raise ValueError(f"packed runs differ in more than their seed: {other} vs {shared}")
    if len({c.seed for c in cfgs}) != len(cfgs):
        raise ValueError("packed runs must have distinct seeds")
    sizes = {len(d.indices) for d in data}
    if len(sizes) != 1:
        raise ValueError(f"packed runs need training sets of one size, got {sorted(sizes)}")
    shapes = {tuple((k, tuple(v.shape)) for k, v in m.state_dict().items()) for m in models}
    if len(shapes) != 1:
        raise ValueError("packed runs must share one architecture")
    for m in models:
        if any(isinstance(layer, nn.modules.dropout._DropoutNd) for layer in m.modules()):
            raise ValueError("models with dropout cannot be packed (their masks would differ)")
    v0 = data[0]
    for d in data[1:]:
        same = d.val_images is v0.val_images or torch.equal(d.val_images, v0.val_images)
        if not same or not torch.equal(d.val_labels, v0.val_labels):
            raise ValueError("packed runs must share one validation set")


def _pack_key(cfgs: list[TrainConfig]) -> str:
    return hashlib.sha256("|".join(c.key() for c in cfgs).encode()).hexdigest()[:16]


def _leaf(stacked: torch.Tensor) -> torch.Tensor:
    """A trainable copy of a stacked parameter. A stacked linear weight [K, out, in] is laid out
    in memory as [K, in, out]: the layout in which the batched backward pass produces its
    gradient, so that gradients accumulate and the optimizer's elementwise passes run without
    a strided transposing copy per step (which made packed mlp1 about 2x slower)."""
    t = stacked.detach()
    if t.dim() == 3:
        return t.transpose(1, 2).contiguous().transpose(1, 2).requires_grad_(True)
    return t.clone().requires_grad_(True)


class _Stack:
    """The active members' parameters and buffers, stacked, with their optimizer."""

    def __init__(self, params: dict, buffers: dict, spec: dict, members: list[int]) -> None:
        self.params = {k: _leaf(v) for k, v in params.items()}
        self.buffers = {k: v.detach().clone() for k, v in buffers.items()}
        self.optimizer = build_optimizer(list(self.params.values()), spec)
        self.members = members  # member index of each row of the stack
        self.spec = spec

    def select(self, keep: list[int]) -> _Stack:
        """A stack of the rows ``keep`` (positions in this stack), optimizer state included."""
        rows = torch.tensor(keep, dtype=torch.long, device=next(iter(self.params.values())).device)
        # torch.optim's state dict: per parameter index, its state tensors (a stacked moment
        # has the stack's rows first; "step" is a scalar shared by the rows)
        state = self.optimizer.state_dict()
        n = len(self.members)
        state["state"] = {
            i: {
                k: v.index_select(0, rows.to(v.device))
                if isinstance(v, torch.Tensor) and v.dim() > 0 and v.shape[0] == n
                else v
                for k, v in s.items()
            }
            for i, s in state["state"].items()
        }
        out = _Stack(
            {k: v.index_select(0, rows) for k, v in self.params.items()},
            {k: v.index_select(0, rows) for k, v in self.buffers.items()},
            self.spec,
            [self.members[i] for i in keep],
        )
        out.optimizer.load_state_dict(state)
        return out

    def state_of(self, row: int, names: list[str]) -> dict[str, torch.Tensor]:
        both = {**self.params, **self.buffers}
        return {k: both[k][row].detach().clone() for k in names}


def train_packed(
    models: list[nn.Module],
    data: list[TrainData],
    cfgs: list[TrainConfig],
    checkpoint: str | Path | None = None,
    progress: Any = None,
    on_epoch: Callable[[int, nn.Module, int], dict] | None = None,
) -> list[TrainResult]:
    """Train ``models[i]`` on ``data[i]`` under ``cfgs[i]`` (same configuration but the seed),
    all at once; returns one ``TrainResult`` per member, as ``training.train`` would.

    With ``checkpoint``, the whole pack's state is written atomically after every epoch and
    resumed under the same configurations. An epoch's ``seconds`` in a member's history is its
    share of the pack's epoch time (the time divided by the members still training).
    ``on_epoch(epoch, model, member)`` is ``training.train``'s ``on_epoch`` for member ``member``
    (given a module holding that member's current weights).
    """
    _check_pack(models, data, cfgs)
    check_objective(cfgs[0], data)
    device = data[0].images.device
    names = list(models[0].state_dict().keys())
    base = copy.deepcopy(models[0]).to("meta")
    records = [RunRecord(cfg) for cfg in cfgs]
    ckpt = Checkpoint(checkpoint, _pack_key(cfgs))

    def state(row: int) -> StateFn:
        return lambda: stack.state_of(row, names)

    def extra(epoch: int, row: int) -> Callable[[], dict] | None:
        if on_epoch is None:
            return None
        return lambda: _measure(on_epoch, epoch, models[0], stack, row, names)

    saved = ckpt.load(device)
    if saved is not None:
        start_epoch = Checkpoint.restore(saved, records) + 1
        stack = _Stack(saved["params"], saved["buffers"], cfgs[0].optimizer, saved["active"])
        stack.optimizer.load_state_dict(saved["optimizer"])
        resume_progress(progress, records, len(data[0].indices))
    else:
        start_epoch = 1
        params, buffers = stack_module_state(models)
        stack = _Stack(params, buffers, cfgs[0].optimizer, list(range(len(models))))
        val_losses, val_accs = _packed_validate(base, stack, data[0])
        for row, record in enumerate(records):  # epoch 0: the initial weights
            record.start(val_losses[row], val_accs[row], state(row), extra(0, row))
    resumed_from = start_epoch - 1

    forward = vmap(lambda p, b, x: functional_call(base, (p, b), (x,)))
    for epoch in range(start_epoch, cfgs[0].max_epochs + 1):
        if not any(r.training for r in records):
            break
        t0 = time.perf_counter()
        set_lr(stack.optimizer, cfgs[0], epoch)
        base.train()
        losses = _packed_epoch(forward, stack, records, data, epoch, progress)
        val_losses, val_accs = _packed_validate(base, stack, data[0])
        seconds = (time.perf_counter() - t0) / len(stack.members)
        keep = [
            row
            for row, i in enumerate(stack.members)
            if records[i].end_epoch(
                epoch,
                losses[row],
                val_losses[row],
                val_accs[row],
                seconds,
                state(row),
                extra(epoch, row),
            )
        ]
        if keep and len(keep) < len(stack.members):  # the stopped members leave the stack
            stack = stack.select(keep)
        epoch_progress(progress, epoch, records)
        ckpt.save(
            epoch,
            records,
            params=stack.params,
            buffers=stack.buffers,
            active=stack.members,
            optimizer=stack.optimizer.state_dict(),
        )
    return [record.result(resumed_from) for record in records]


def _measure(on_epoch, epoch: int, template: nn.Module, stack: _Stack, row: int, names) -> dict:
    """``on_epoch`` for the member in ``row`` of the stack, on a module holding its weights."""
    model = copy.deepcopy(template)
    model.load_state_dict(stack.state_of(row, names))
    return on_epoch(epoch, model, stack.members[row])


def _packed_epoch(forward, stack: _Stack, records, data, epoch: int, progress) -> list[float]:
    """One epoch of every active member; returns their mean training losses."""
    device = data[0].images.device
    rows = stack.members
    batch = records[rows[0]].cfg.batch_size
    n = len(data[rows[0]].indices)
    perms = torch.stack(
        [
            torch.randperm(
                n,
                generator=torch.Generator().manual_seed(
                    derive_seed(records[i].cfg.seed, "order", epoch)
                ),
            )
            for i in rows
        ]
    ).to(device)
    shared = all(data[i].images is data[rows[0]].images for i in rows)
    indices = torch.stack([data[i].indices for i in rows])
    labels = torch.stack([data[i].labels for i in rows])
    objective = records[rows[0]].cfg.loss()
    soft = None
    if objective.soft_targets:  # [K, M, C] (check_objective made sure each member has them)
        soft = torch.stack([data[i].soft_targets for i in rows])
    shape = data[rows[0]].images.shape[1:]
    total = torch.zeros(len(rows), dtype=torch.float64, device=device)
    for start in range(0, n, batch):
        sel = perms[:, start : start + batch]
        b = sel.shape[1]
        idx = indices.gather(1, sel)
        if shared:
            x = data[rows[0]].images.index_select(0, idx.reshape(-1)).view(len(rows), b, *shape)
        else:
            x = torch.stack([data[i].images.index_select(0, idx[r]) for r, i in enumerate(rows)])
        y = labels.gather(1, sel)
        logits = forward(stack.params, stack.buffers, x)
        soft_batch = None
        if soft is not None:
            soft_batch = soft.gather(1, sel.unsqueeze(-1).expand(-1, -1, soft.shape[-1]))
        loss = objective.per_member(logits, y, soft_batch)  # each member's mean loss, [K]
        stack.optimizer.zero_grad(set_to_none=True)
        loss.sum().backward()
        stack.optimizer.step()
        total += loss.detach().double() * b
        if progress is not None:
            progress.update(b * len(rows))
    return (total / n).tolist()  # the epoch's one synchronisation


@torch.inference_mode()
def _packed_validate(base: nn.Module, stack: _Stack, data: TrainData):
    """Validation loss and accuracy of every active member (eval mode: batch-norm running
    statistics, as ``training.predict``)."""
    base.eval()
    try:
        forward = vmap(lambda p, b, x: functional_call(base, (p, b), (x,)), in_dims=(0, 0, None))
        logits = torch.cat(
            [
                forward(stack.params, stack.buffers, data.val_images[i : i + EVAL_BATCH])
                for i in range(0, len(data.val_images), EVAL_BATCH)
            ],
            dim=1,
        )
    finally:
        base.train()
    losses, accs = [], []
    for row in range(len(stack.members)):
        losses.append(F.cross_entropy(logits[row].double(), data.val_labels).item())
        accs.append((logits[row].argmax(1) == data.val_labels).double().mean().item())
    return losses, accs
