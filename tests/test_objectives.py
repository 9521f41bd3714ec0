"""Training objectives: cross-entropy exactly as the trainers computed it, the distillation loss
against a hand computation, gradients to the student only, and soft targets through both
trainers."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from test_training import cfg, tiny_model, toy_data, without_seconds

from corruptlab.core.registry import UnknownNameError
from corruptlab.train.objectives import OBJECTIVES, build_objective
from corruptlab.train.packing import PACKED_TOLERANCE, train_packed
from corruptlab.train.training import TrainData, train

# two examples, three classes: student logits, teacher logits (soft targets), hard labels
STUDENT = torch.tensor([[2.0, 0.5, -1.0], [0.0, 1.0, 3.0]], dtype=torch.float64)
TEACHER = torch.tensor([[1.0, 2.0, 0.0], [-2.0, 0.5, 1.5]], dtype=torch.float64)
LABELS = torch.tensor([0, 1])


def by_hand(student, teacher, labels, t: float, a: float) -> float:
    """a T^2 KL(softmax(teacher/T) || softmax(student/T)) + (1 - a) CE, from the definitions,
    averaged over the examples."""
    total = 0.0
    for zs, zt, y in zip(student.tolist(), teacher.tolist(), labels.tolist(), strict=True):
        ps = [math.exp(v / t) for v in zs]
        pt = [math.exp(v / t) for v in zt]
        ps = [v / sum(ps) for v in ps]
        pt = [v / sum(pt) for v in pt]
        kl = sum(p * math.log(p / q) for p, q in zip(pt, ps, strict=True))
        ce = -math.log(math.exp(zs[y]) / sum(math.exp(v) for v in zs))
        total += a * t * t * kl + (1 - a) * ce
    return total / len(labels)


@pytest.mark.parametrize("t", [1.0, 2.0, 4.0])
@pytest.mark.parametrize("a", [0.0, 0.3, 0.5, 1.0])
def test_distillation_equals_the_hand_computation(t, a):
    loss = build_objective({"name": "distillation", "temperature": t, "alpha": a})
    got = loss(STUDENT, LABELS, TEACHER)
    assert got.item() == pytest.approx(by_hand(STUDENT, TEACHER, LABELS, t, a), rel=1e-12)


def test_alpha_one_is_the_soft_term_alone_with_its_t_squared_factor():
    soft = {
        t: build_objective({"name": "distillation", "temperature": t, "alpha": 1.0})
        for t in (1.0, 4.0)
    }
    # at T = 1: the mean KL divergence of the student from the teacher
    kl = F.kl_div(F.log_softmax(STUDENT, 1), F.softmax(TEACHER, 1), reduction="batchmean")
    assert soft[1.0](STUDENT, LABELS, TEACHER).item() == pytest.approx(kl.item(), rel=1e-12)
    # at T = 4: T^2 times the KL divergence of the softened distributions
    kl4 = F.kl_div(F.log_softmax(STUDENT / 4, 1), F.softmax(TEACHER / 4, 1), reduction="batchmean")
    assert soft[4.0](STUDENT, LABELS, TEACHER).item() == pytest.approx(16 * kl4.item(), rel=1e-12)
    # the labels play no part
    assert torch.equal(soft[4.0](STUDENT, 1 - LABELS, TEACHER), soft[4.0](STUDENT, LABELS, TEACHER))
    # a student that agrees with its teacher has nothing left to learn from it
    assert soft[4.0](TEACHER, LABELS, TEACHER).item() == pytest.approx(0.0, abs=1e-15)


def test_alpha_zero_is_cross_entropy_exactly():
    hard = build_objective({"name": "distillation", "temperature": 3.0, "alpha": 0.0})
    assert torch.equal(hard(STUDENT, LABELS, TEACHER), F.cross_entropy(STUDENT, LABELS))


def test_cross_entropy_is_what_the_trainers_computed():
    ce = build_objective({"name": "cross_entropy"})
    assert build_objective(None).__class__ is ce.__class__
    g = torch.Generator().manual_seed(0)
    logits, labels = torch.randn(3, 7, 5, generator=g), torch.randint(0, 5, (3, 7), generator=g)
    assert torch.equal(ce(logits[0], labels[0]), F.cross_entropy(logits[0], labels[0]))
    per_member = F.cross_entropy(logits.flatten(0, 1), labels.reshape(-1), reduction="none")
    assert torch.equal(ce.per_member(logits, labels), per_member.view(3, 7).mean(1))


def test_per_member_losses_are_each_members_own():
    loss = build_objective({"name": "distillation", "temperature": 2.0, "alpha": 0.5})
    g = torch.Generator().manual_seed(1)
    logits, soft = torch.randn(4, 6, 3, generator=g), torch.randn(4, 6, 3, generator=g)
    labels = torch.randint(0, 3, (4, 6), generator=g)
    members = loss.per_member(logits, labels, soft)
    assert members.shape == (4,)
    for k in range(4):
        torch.testing.assert_close(members[k], loss(logits[k], labels[k], soft[k]))


def test_gradient_flows_to_the_student_only():
    loss = build_objective({"name": "distillation", "temperature": 4.0, "alpha": 0.7})
    student = STUDENT.clone().requires_grad_(True)
    teacher = TEACHER.clone().requires_grad_(True)  # even a teacher output that could learn
    loss(student, LABELS, teacher).backward()
    assert teacher.grad is None
    assert student.grad is not None and student.grad.abs().sum() > 0
    # the gradient of each example's loss sums to 0 over its logits (softmax is shift-invariant)
    assert student.grad.sum(1).abs().max() < 1e-12


def test_missing_or_misshapen_soft_targets_are_refused():
    loss = build_objective({"name": "distillation", "temperature": 2.0, "alpha": 0.5})
    with pytest.raises(ValueError, match="needs soft targets"):
        loss(STUDENT, LABELS, None)
    with pytest.raises(ValueError, match=r"soft targets of shape \(2, 2\) for logits of shape"):
        loss(STUDENT, LABELS, TEACHER[:, :2])
    with pytest.raises(UnknownNameError, match="accepted: cross_entropy, distillation"):
        build_objective({"name": "mse"})
    assert [OBJECTIVES.get(n).soft_targets for n in OBJECTIVES] == [False, True]


KD = {"name": "distillation", "temperature": 2.0, "alpha": 0.5}


def with_soft_targets(data: TrainData, seed: int = 0) -> TrainData:
    """The data with a made-up teacher: logits that favour each example's label."""
    g = torch.Generator().manual_seed(seed)
    soft = torch.randn(len(data.labels), 2, generator=g)
    soft[torch.arange(len(data.labels)), data.labels] += 2.0
    return TrainData(
        data.images, data.indices, data.labels, data.val_images, data.val_labels, soft_targets=soft
    )


def test_trainers_refuse_distillation_without_soft_targets():
    with pytest.raises(ValueError, match="objective 'distillation' trains on soft targets"):
        train(tiny_model(), toy_data(), cfg(objective=KD))
    with pytest.raises(ValueError, match="objective 'distillation' trains on soft targets"):
        train_packed(
            [tiny_model(s) for s in (1, 2)],
            [toy_data()] * 2,
            [cfg(seed=s, objective=KD) for s in (1, 2)],
        )


def test_soft_targets_must_align_with_the_training_set():
    data = toy_data(n=64)
    with pytest.raises(ValueError, match=r"soft_targets must be a float \[M, C\] tensor"):
        TrainData(
            data.images,
            data.indices,
            data.labels,
            data.val_images,
            data.val_labels,
            soft_targets=torch.zeros(63, 2),
        )


def test_both_trainers_distil_and_agree():
    data = with_soft_targets(toy_data(n=160))
    plain = train(tiny_model(), data, cfg(max_epochs=3))
    kd = train(tiny_model(), data, cfg(max_epochs=3, objective=KD))
    assert kd.status == "ok" and kd.best_val_accuracy > 0.8
    assert without_seconds(kd.history)[1] != without_seconds(plain.history)[1]
    seeds = (5, 6)
    cfgs = [cfg(seed=s, max_epochs=3, objective=KD) for s in seeds]
    datas = [with_soft_targets(toy_data(n=160), seed=s) for s in seeds]
    packed = train_packed([tiny_model(s) for s in seeds], datas, cfgs)
    alone = [train(tiny_model(s), d, c) for s, d, c in zip(seeds, datas, cfgs, strict=True)]
    for p, a in zip(packed, alone, strict=True):
        assert p.best_epoch == a.best_epoch
        for rp, ra in zip(p.history[1:], a.history[1:], strict=True):
            assert rp["train_loss"] == pytest.approx(ra["train_loss"], rel=1e-3, abs=1e-4)
        for name in a.best_state:
            torch.testing.assert_close(p.best_state[name], a.best_state[name], **PACKED_TOLERANCE)
