"""Training without a backward pass: random search, (1+1)-ES, simulated annealing, a genetic
algorithm and OpenAI-ES over a model's flat parameter vector.

Everything here runs under ``torch.no_grad``. A population is a float tensor ``[P, D]`` of
flat parameter vectors (``flatten``: the model's parameters in ``named_parameters`` order);
``Population`` evaluates all P members at once on a minibatch: the rows are viewed as the
model's parameters stacked along a new leading dimension and one ``torch.vmap`` over
``torch.func.functional_call`` runs every member (as ``packing.py`` stacks seeds), on data
already on the device. The model runs in eval mode (dropout is off; a batch norm uses its
running statistics); buffers are shared by all members.

Fitness is the negative mean cross-entropy of a member on the generation's minibatch (not its
accuracy: on a minibatch accuracy takes few values and ties most mutations, while the loss
ranks every one of them). Each generation draws its minibatch from the data order of the
epoch (``methods.fit``) and evaluates every member it compares on that same minibatch, the
incumbent included (an incumbent's old fitness, from another minibatch, is never compared).
What a generation costs is ``P * B`` examples forwarded (P members, B examples).

Methods (``step(x, y)`` runs one generation and returns the incumbent's mean loss on it and
the examples forwarded; ``solution()`` is the current answer; ``state_dict`` holds all that
changes, the random generator's state included, so a resumed run continues bit-identically):

- ``RandomSearch``: each generation draws ``population`` fresh initialisations (the model's
  own initialisation, ``reset_parameters``, seeded from the method's generator) and keeps the
  best of them and the incumbent. Default ``population=16`` (ours).
- ``OnePlusOneES``: one parent, one child ``parent + sigma * N(0, I)``; the child replaces
  the parent when its loss is not higher; the step size follows the 1/5 success rule
  (Rechenberg 1973) in its multiplicative form (Kern et al. 2004; Auger 2009): ``sigma *=
  exp(1/3)`` on a success, ``sigma *= exp(-1/12)`` on a failure, whose fixed point is a success
  rate of 1/5. Default ``sigma=0.01`` (ours).
- ``SimulatedAnnealing`` (Kirkpatrick et al. 1983): one current point, one candidate
  ``current + sigma * N(0, I)`` per generation, accepted with the Metropolis probability
  ``min(1, exp(-(loss_candidate - loss_current) / T))`` under the geometric schedule ``T_g =
  t0 * cooling ** g`` (g the generation, from 0). Defaults ``sigma=0.01``, ``t0=0.05``,
  ``cooling=0.995`` (ours).
- ``Genetic`` (the deep neuroevolution GA of Such et al. 2017: no crossover): a population of
  ``population`` members (the model's initialisation and fresh ones), truncation selection of
  the best ``truncation`` fraction as parents, children ``parent + sigma * N(0, I)`` of
  uniformly drawn parents, and the best ``elites`` members carried over unchanged. Defaults
  ``population=32``, ``truncation=0.25``, ``sigma=0.01``, ``elites=1`` (ours; Such et al. use
  far larger populations on Atari).
- ``OpenAIES`` (Salimans et al. 2017): ``pairs`` antithetic perturbations ``center +- sigma *
  eps``, fitness shaped by centered ranks (ranks over the 2 * pairs members scaled to [-0.5,
  0.5]), the estimate ``g = sum_i (F(+eps_i) - F(-eps_i)) eps_i / (2 pairs)`` and Adam on
  ``-g + weight_decay * center``: the reference implementation's update (es-distributed,
  ``g /= returns_n2.size``; ``optimizer.update(-g + l2coeff * theta)``), which leaves the
  ``1 / sigma`` of the textbook estimate out. Adam is invariant to a common scale of its
  whole input (but for its eps), not to the scale of one of its two terms: an estimate
  divided by sigma would weaken the L2 term by the factor ``1 / sigma`` (50 at sigma 0.02)
  against the configured ``weight_decay`` (issue 25). Defaults ``pairs=16``, ``sigma=0.02``,
  ``lr=0.01``, ``weight_decay=0.005`` (that code's noise_stdev 0.02, stepsize 0.01, l2coeff
  0.005), Adam betas (0.9, 0.999), eps 1e-8, in that code's form (``lr * sqrt(1 - b2^t) /
  (1 - b1^t) * m / (sqrt(v) + eps)``). The center is evaluated with the pairs (P = 2 pairs
  + 1) for its training loss.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, vmap


def flatten(model: nn.Module) -> torch.Tensor:
    """The model's parameters as one flat float vector (``named_parameters`` order)."""
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


class Population:
    """Evaluates populations of flat parameter vectors of ``model`` (see the module docstring).
    ``chunk``: at most this many members per vmap call (None: all at once)."""

    def __init__(self, model: nn.Module, chunk: int | None = None) -> None:
        self.template = model
        self.names = [n for n, _ in model.named_parameters()]
        self.shapes = [tuple(p.shape) for _, p in model.named_parameters()]
        self.sizes = [math.prod(s) for s in self.shapes]
        self.dim = sum(self.sizes)
        self.buffers = {n: b.detach() for n, b in model.named_buffers()}
        self.base = copy.deepcopy(model).to("meta").eval()
        self.chunk = chunk

        def run(params: dict, x: torch.Tensor) -> torch.Tensor:
            return functional_call(self.base, (params, self.buffers), (x,))

        self.forward = vmap(run, in_dims=(0, None))

    def unflatten(self, theta: torch.Tensor) -> dict[str, torch.Tensor]:
        """Rows of ``theta`` [P, D] as the model's parameters stacked: name -> [P, *shape]."""
        parts = theta.split(self.sizes, dim=1)
        return {
            n: t.reshape(len(theta), *s)
            for n, s, t in zip(self.names, self.shapes, parts, strict=True)
        }

    def state(self, theta: torch.Tensor) -> dict[str, torch.Tensor]:
        """A state dict of the model holding the flat vector ``theta`` [D] (buffers copied)."""
        params = {n: t[0].clone() for n, t in self.unflatten(theta[None]).items()}
        return {**{n: b.clone() for n, b in self.buffers.items()}, **params}

    @torch.no_grad()
    def logits(self, theta: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Every member's logits on ``x``: [P, B, C]."""
        step = self.chunk or len(theta)
        return torch.cat(
            [
                self.forward(self.unflatten(theta[i : i + step]), x)
                for i in range(0, len(theta), step)
            ]
        )

    @torch.no_grad()
    def losses(self, theta: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Every member's mean cross-entropy on (x, y): [P]."""
        logits = self.logits(theta, x)
        p, b, c = logits.shape
        ce = F.cross_entropy(logits.reshape(p * b, c), y.repeat(p), reduction="none")
        return ce.view(p, b).mean(1)


class Initialiser:
    """Fresh initialisations of a model (its layers' own ``reset_parameters``), each seeded
    from an integer, as flat vectors; a CPU copy of the model is re-initialised each time."""

    def __init__(self, model: nn.Module) -> None:
        self.model = copy.deepcopy(model).to("cpu")

    def __call__(self, seed: int) -> torch.Tensor:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            for module in self.model.modules():
                if hasattr(module, "reset_parameters"):
                    module.reset_parameters()
        return flatten(self.model)


def _seed(generator: torch.Generator) -> int:
    return int(torch.randint(0, 2**62, (1,), generator=generator).item())


class Method:
    """What the gradient-free methods share: the evaluator, the generator, the device."""

    def __init__(self, population: Population, theta0: torch.Tensor, seed: int) -> None:
        self.pop = population
        self.device = theta0.device
        self.generator = torch.Generator().manual_seed(seed)
        self.generation = 0

    def noise(self, rows: int) -> torch.Tensor:
        """Standard normal noise [rows, D] from the method's generator (drawn on the CPU)."""
        return torch.randn(rows, self.pop.dim, generator=self.generator).to(self.device)

    def uniform(self) -> float:
        return torch.rand((), generator=self.generator, dtype=torch.float64).item()

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state(), "generation": self.generation}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"].cpu())
        self.generation = state["generation"]

    def extra(self) -> dict[str, float]:
        """Per-epoch diagnostics for the history (e.g. the step size)."""
        return {}


class RandomSearch(Method):
    def __init__(self, population, theta0, seed, *, init: Initialiser, size: int = 16) -> None:
        super().__init__(population, theta0, seed)
        self.init, self.size = init, size
        self.best = theta0.clone()

    def step(self, x, y) -> tuple[torch.Tensor, int]:
        fresh = [self.init(_seed(self.generator)).to(self.device) for _ in range(self.size)]
        cands = torch.stack([self.best, *fresh])
        losses = self.pop.losses(cands, x, y)
        i = int(losses.argmin())  # the first of equals: the incumbent wins ties
        self.best = cands[i].clone()
        self.generation += 1
        return losses[i], len(cands) * len(x)

    def solution(self) -> torch.Tensor:
        return self.best

    def state_dict(self):
        return {**super().state_dict(), "best": self.best}

    def load_state_dict(self, state):
        super().load_state_dict(state)
        self.best = state["best"].clone()


class OnePlusOneES(Method):
    SUCCESS, FAILURE = math.exp(1 / 3), math.exp(-1 / 12)

    def __init__(self, population, theta0, seed, *, sigma: float = 0.01) -> None:
        super().__init__(population, theta0, seed)
        self.parent, self.sigma = theta0.clone(), sigma

    def step(self, x, y):
        child = self.parent + self.sigma * self.noise(1)[0]
        losses = self.pop.losses(torch.stack([self.parent, child]), x, y)
        if losses[1] <= losses[0]:
            self.parent, self.sigma, loss = child, self.sigma * self.SUCCESS, losses[1]
        else:
            self.sigma, loss = self.sigma * self.FAILURE, losses[0]
        self.generation += 1
        return loss, 2 * len(x)

    def solution(self):
        return self.parent

    def extra(self):
        return {"sigma": self.sigma}

    def state_dict(self):
        return {**super().state_dict(), "parent": self.parent, "sigma": self.sigma}

    def load_state_dict(self, state):
        super().load_state_dict(state)
        self.parent, self.sigma = state["parent"].clone(), state["sigma"]


class SimulatedAnnealing(Method):
    def __init__(
        self,
        population,
        theta0,
        seed,
        *,
        sigma: float = 0.01,
        t0: float = 0.05,
        cooling: float = 0.995,
    ) -> None:
        super().__init__(population, theta0, seed)
        self.current, self.sigma, self.t0, self.cooling = theta0.clone(), sigma, t0, cooling

    def temperature(self) -> float:
        return self.t0 * self.cooling**self.generation

    def step(self, x, y):
        candidate = self.current + self.sigma * self.noise(1)[0]
        losses = self.pop.losses(torch.stack([self.current, candidate]), x, y)
        delta = (losses[1] - losses[0]).item()
        u = self.uniform()  # drawn every generation, so the stream does not depend on delta
        if delta <= 0 or u < math.exp(-delta / self.temperature()):
            self.current, loss = candidate, losses[1]
        else:
            loss = losses[0]
        self.generation += 1
        return loss, 2 * len(x)

    def solution(self):
        return self.current

    def extra(self):
        return {"temperature": self.temperature()}

    def state_dict(self):
        return {**super().state_dict(), "current": self.current}

    def load_state_dict(self, state):
        super().load_state_dict(state)
        self.current = state["current"].clone()


class Genetic(Method):
    def __init__(
        self,
        population,
        theta0,
        seed,
        *,
        init: Initialiser,
        size: int = 32,
        truncation: float = 0.25,
        sigma: float = 0.01,
        elites: int = 1,
    ) -> None:
        super().__init__(population, theta0, seed)
        if not 1 <= elites < size:
            raise ValueError(
                f"genetic: elites {elites}; accepted: 1 to population - 1 ({size - 1})"
            )
        self.parents = max(1, int(truncation * size))
        self.size, self.sigma, self.elites = size, sigma, elites
        fresh = [init(_seed(self.generator)).to(self.device) for _ in range(size - 1)]
        self.members = torch.stack([theta0, *fresh])
        self.best = theta0.clone()

    def step(self, x, y):
        losses = self.pop.losses(self.members, x, y)
        order = losses.argsort(stable=True)
        self.best = self.members[order[0]].clone()
        parents = self.members[order[: self.parents]]
        n = self.size - self.elites
        pick = torch.randint(0, self.parents, (n,), generator=self.generator).to(self.device)
        children = parents[pick] + self.sigma * self.noise(n)
        self.members = torch.cat([self.members[order[: self.elites]], children])
        self.generation += 1
        return losses[order[0]], self.size * len(x)

    def solution(self):
        return self.best

    def state_dict(self):
        return {**super().state_dict(), "members": self.members, "best": self.best}

    def load_state_dict(self, state):
        super().load_state_dict(state)
        self.members, self.best = state["members"].clone(), state["best"].clone()


def centered_ranks(values: torch.Tensor) -> torch.Tensor:
    """Ranks of ``values`` (0 for the smallest; ties by position) scaled to [-0.5, 0.5]."""
    ranks = torch.empty_like(values)
    ranks[values.argsort(stable=True)] = torch.arange(
        len(values), dtype=values.dtype, device=values.device
    )
    return ranks / (len(values) - 1) - 0.5


class OpenAIES(Method):
    BETAS, EPS = (0.9, 0.999), 1e-8

    def __init__(
        self,
        population,
        theta0,
        seed,
        *,
        pairs: int = 16,
        sigma: float = 0.02,
        lr: float = 0.01,
        weight_decay: float = 0.005,
    ) -> None:
        super().__init__(population, theta0, seed)
        self.center = theta0.clone()
        self.pairs, self.sigma, self.lr, self.weight_decay = pairs, sigma, lr, weight_decay
        self.m = torch.zeros_like(theta0)
        self.v = torch.zeros_like(theta0)

    def step(self, x, y):
        eps = self.noise(self.pairs)
        members = torch.cat(
            [self.center[None], self.center + self.sigma * eps, self.center - self.sigma * eps]
        )
        losses = self.pop.losses(members, x, y)
        shaped = centered_ranks(-losses[1:])  # fitness = -loss
        weights = shaped[: self.pairs] - shaped[self.pairs :]
        # of d fitness / d center, up to the factor 1 / sigma that the reference leaves out
        estimate = weights @ eps / (2 * self.pairs)
        grad = -estimate + self.weight_decay * self.center  # of the loss to minimise
        self.generation += 1
        t = self.generation
        b1, b2 = self.BETAS
        self.m.mul_(b1).add_(grad, alpha=1 - b1)
        self.v.mul_(b2).addcmul_(grad, grad, value=1 - b2)
        a = self.lr * math.sqrt(1 - b2**t) / (1 - b1**t)
        self.center = self.center - a * self.m / (self.v.sqrt() + self.EPS)
        return losses[0], len(members) * len(x)

    def solution(self):
        return self.center

    def state_dict(self):
        return {**super().state_dict(), "center": self.center, "m": self.m, "v": self.v}

    def load_state_dict(self, state):
        super().load_state_dict(state)
        self.center, self.m, self.v = (state[k].clone() for k in ("center", "m", "v"))
