"""Adam and L-BFGS for the trainers, without ``torch.optim.Optimizer``.

The optimizer classes of ``torch.optim`` import ``torch._dynamo`` the first time one is made or
stepped (``Optimizer.add_param_group`` and ``step`` are wrapped for ``torch.compile``): 1.5 s of
every training process on a 2-core machine, a tenth of training the example bot (and again in
the policies' second process). ``Adam`` here keeps the state that ``torch.optim.Adam`` keeps and
hands it to the same arithmetic, torch's functional ``torch.optim.adam.adam`` with ``foreach``,
so its steps are bit for bit those of ``torch.optim.Adam`` / ``AdamW(foreach=True)``;
``minimize_lbfgs`` runs ``torch.optim.LBFGS``'s iterations with its strong Wolfe line search
(``tests/training/test_optim.py`` compares both with torch.optim). Nothing imports
``torch._dynamo``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import torch
from torch.optim.adam import adam
from torch.optim.lbfgs import _strong_wolfe  # torch is pinned (2.13.0): tests pin the results


class Adam:
    """``torch.optim.Adam(params, lr, weight_decay=..., foreach=True)``, or ``AdamW`` with
    ``decoupled=True``. ``lr`` may be changed between steps (a schedule sets it)."""

    def __init__(
        self,
        params: Iterable[torch.Tensor],
        *,
        lr: float,
        weight_decay: float = 0.0,
        decoupled: bool = False,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ) -> None:
        self.params = list(params)
        if not self.params:
            raise ValueError("optimizer got an empty parameter list")
        self.lr = lr
        self.weight_decay = weight_decay
        self.decoupled = decoupled
        self.betas = betas
        self.eps = eps
        # Per parameter, made at its first step with a gradient (as torch.optim.Adam's lazy
        # state): the step count (a float32 scalar on the CPU) and the two moving averages.
        self._state: dict[int, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}

    def zero_grad(self) -> None:
        """Drop the gradients (``zero_grad(set_to_none=True)``)."""
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        """One step of every parameter that has a gradient; the others are left alone."""
        params, grads, exp_avgs, exp_avg_sqs, steps = [], [], [], [], []
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            if p.grad.is_sparse:
                raise RuntimeError("Adam does not support sparse gradients")
            state = self._state.get(i)
            if state is None:
                # The step count's type as torch.optim.Adam's: float64 only if that is the default.
                default = torch.get_default_dtype()
                step_dtype = default if default == torch.float64 else torch.float32
                state = (
                    torch.tensor(0.0, dtype=step_dtype),
                    torch.zeros_like(p, memory_format=torch.preserve_format),
                    torch.zeros_like(p, memory_format=torch.preserve_format),
                )
                self._state[i] = state
            params.append(p)
            grads.append(p.grad)
            steps.append(state[0])
            exp_avgs.append(state[1])
            exp_avg_sqs.append(state[2])
        if not params:
            return
        adam(
            params,
            grads,
            exp_avgs,
            exp_avg_sqs,
            [],
            steps,
            foreach=True,
            capturable=False,
            differentiable=False,
            fused=None,
            grad_scale=None,
            found_inf=None,
            has_complex=any(torch.is_complex(p) for p in params),
            decoupled_weight_decay=self.decoupled,
            amsgrad=False,
            beta1=self.betas[0],
            beta2=self.betas[1],
            lr=self.lr,
            weight_decay=self.weight_decay,
            eps=self.eps,
            maximize=False,
        )


def minimize_lbfgs(
    closure: Callable[[], torch.Tensor],
    params: Sequence[torch.Tensor],
    *,
    max_iter: int,
    tolerance_grad: float,
    tolerance_change: float,
    history_size: int,
) -> None:
    """``torch.optim.LBFGS(params, max_iter=..., tolerance_grad=..., tolerance_change=...,
    history_size=..., line_search_fn="strong_wolfe").step(closure)``, made once: the same
    iterations in the same order (torch's strong Wolfe line search), so the same result.
    ``closure`` clears the gradients, computes the loss, calls ``backward`` and returns it."""
    with torch.no_grad():
        _LBFGS(closure, params, tolerance_change).run(
            max_iter, max_iter * 5 // 4, tolerance_grad, history_size
        )


class _LBFGS:
    """The parameters as one flat vector, for ``minimize_lbfgs`` (torch's LBFGS's helpers)."""

    def __init__(
        self, closure: Callable[[], torch.Tensor], params: Sequence[torch.Tensor], change: float
    ) -> None:
        self.closure = torch.enable_grad()(closure)
        self.params = list(params)
        self.tolerance_change = change

    def flat_grad(self) -> torch.Tensor:
        return torch.cat(
            [p.new(p.numel()).zero_() if p.grad is None else p.grad.view(-1) for p in self.params]
        )

    def add(self, step: float | torch.Tensor, update: torch.Tensor) -> None:
        offset = 0
        for p in self.params:
            p.add_(update[offset : offset + p.numel()].view_as(p), alpha=step)  # type: ignore[arg-type]
            offset += p.numel()

    def evaluate(
        self, x: list[torch.Tensor], t: float | torch.Tensor, d: torch.Tensor
    ) -> tuple[float, torch.Tensor]:
        """The loss and gradient at ``x + t d``; the parameters are set back to ``x``."""
        self.add(t, d)
        loss = float(self.closure())
        grad = self.flat_grad()
        for p, data in zip(self.params, x, strict=True):
            p.copy_(data)
        return loss, grad

    def run(self, max_iter: int, max_eval: int, tolerance_grad: float, history: int) -> None:
        change = self.tolerance_change
        loss = float(self.closure())
        evals = 1
        grad = self.flat_grad()
        if grad.abs().max() <= tolerance_grad:
            return
        dirs: list[torch.Tensor] = []
        stps: list[torch.Tensor] = []
        ro: list[torch.Tensor] = []
        h_diag: torch.Tensor | float = 1
        d = grad.neg()
        t: float | torch.Tensor = 0.0
        previous_grad = grad.clone(memory_format=torch.contiguous_format)
        for n_iter in range(1, max_iter + 1):
            if n_iter > 1:  # the L-BFGS direction from the last `history` steps
                y = grad.sub(previous_grad)
                s = d.mul(t)
                ys = y.dot(s)
                if ys > 1e-10:
                    if len(dirs) == history:
                        dirs.pop(0)
                        stps.pop(0)
                        ro.pop(0)
                    dirs.append(y)
                    stps.append(s)
                    ro.append(1.0 / ys)
                    h_diag = ys / y.dot(y)
                al: list[torch.Tensor] = [None] * len(dirs)  # type: ignore[list-item]
                q = grad.neg()
                for i in range(len(dirs) - 1, -1, -1):
                    al[i] = stps[i].dot(q) * ro[i]
                    q.add_(dirs[i], alpha=-al[i])  # type: ignore[arg-type]
                d = r = torch.mul(q, h_diag)
                for i in range(len(dirs)):
                    be_i = dirs[i].dot(r) * ro[i]
                    r.add_(stps[i], alpha=al[i] - be_i)  # type: ignore[arg-type]
                previous_grad.copy_(grad)
            previous_loss = loss
            # the first step at most 1 / |gradient|_1 long (a tensor then, as torch's)
            t = min(1.0, 1.0 / grad.abs().sum()) if n_iter == 1 else 1.0  # type: ignore[assignment]
            gtd = grad.dot(d)
            if gtd > -change:
                break
            x_init = [p.clone(memory_format=torch.contiguous_format) for p in self.params]
            loss, grad, t, ls_evals = _strong_wolfe(
                self.evaluate, x_init, t, d, loss, grad, gtd, max_ls=max_eval - evals
            )
            self.add(t, d)
            evals += ls_evals
            if (
                n_iter == max_iter
                or evals >= max_eval
                or grad.abs().max() <= tolerance_grad
                or d.mul(t).abs().max() <= change
                or abs(loss - previous_loss) < change
            ):
                break
