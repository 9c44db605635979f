"""training.optim: torch.optim's Adam, AdamW and L-BFGS arithmetic, bit for bit, without the
``torch._dynamo`` import that torch.optim's classes cost every training process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from training.optim import Adam, minimize_lbfgs

ROOT = Path(__file__).resolve().parents[2]


def _net(seed: int) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Embedding(7, 4), nn.LSTM(4, 3, batch_first=True))


def _steps(net: nn.Sequential, step: object, zero: object, set_lr: object) -> None:
    """Five steps on fixed batches; the embedding row 6 gets no gradient until step 3 and the
    learning rate changes each step, as the NLU's schedule changes it."""
    torch.manual_seed(0)
    for k in range(5):
        ids = torch.randint(0, 6 if k < 3 else 7, (2, 5))
        out, _ = net[1](net[0](ids))
        loss = (out**2).mean()
        zero()  # type: ignore[operator]
        loss.backward()
        if k == 1:  # a parameter without a gradient is left alone (and gets no state)
            net[1].bias_hh_l0.grad = None
        set_lr(0.01 * (k + 1))  # type: ignore[operator]
        step()  # type: ignore[operator]


@pytest.mark.parametrize("decoupled", [False, True])
def test_adam_steps_are_torch_optims_bit_for_bit(decoupled: bool) -> None:
    theirs_net, ours_net = _net(1), _net(1)
    cls = torch.optim.AdamW if decoupled else torch.optim.Adam
    theirs = cls(theirs_net.parameters(), lr=0.01, weight_decay=0.1, foreach=True)
    ours = Adam(ours_net.parameters(), lr=0.01, weight_decay=0.1, decoupled=decoupled)

    def their_lr(lr: float) -> None:
        theirs.param_groups[0]["lr"] = lr

    def our_lr(lr: float) -> None:
        ours.lr = lr

    _steps(theirs_net, theirs.step, lambda: theirs.zero_grad(set_to_none=True), their_lr)
    _steps(ours_net, ours.step, ours.zero_grad, our_lr)
    theirs_weights, ours_weights = theirs_net.state_dict(), ours_net.state_dict()
    pairs = list(zip(theirs_weights.values(), ours_weights.values(), strict=True))
    assert pairs and all(torch.equal(a, b) for a, b in pairs)
    assert not torch.equal(theirs_net.state_dict()["0.weight"], _net(1).state_dict()["0.weight"])


def test_adam_without_parameters_is_refused() -> None:
    with pytest.raises(ValueError, match="empty parameter list"):
        Adam([], lr=0.1)


def _fit_logistic(ours: bool) -> tuple[torch.Tensor, torch.Tensor, int]:
    """A small L2-penalised logistic regression fitted by torch's L-BFGS or ours: the weights,
    the bias and how often the loss was evaluated."""
    generator = torch.Generator().manual_seed(3)
    x, y = torch.randn(40, 6, generator=generator), torch.randint(0, 3, (40,), generator=generator)
    weight = torch.zeros(6, 3, requires_grad=True)
    bias = torch.zeros(3, requires_grad=True)
    calls = [0]

    def closure() -> torch.Tensor:
        calls[0] += 1
        weight.grad = bias.grad = None
        loss = nn.functional.cross_entropy(x @ weight + bias, y) + 1e-3 * (weight**2).sum()
        loss.backward()
        return loss

    if ours:
        minimize_lbfgs(
            closure, [weight, bias], max_iter=50, tolerance_grad=1e-6, tolerance_change=1e-10,
            history_size=4,
        )  # fmt: skip
    else:
        torch.optim.LBFGS(
            [weight, bias], max_iter=50, tolerance_grad=1e-6, tolerance_change=1e-10,
            history_size=4, line_search_fn="strong_wolfe",
        ).step(closure)  # fmt: skip
    return weight.detach(), bias.detach(), calls[0]


def test_lbfgs_gives_torch_optims_result_bit_for_bit() -> None:
    (w1, b1, n1), (w2, b2, n2) = _fit_logistic(ours=False), _fit_logistic(ours=True)
    assert torch.equal(w1, w2) and torch.equal(b1, b2) and n1 == n2
    assert n1 > 5 and w1.abs().sum() > 0  # it did iterate


def test_lbfgs_stops_at_once_where_the_gradient_is_zero() -> None:
    weight = torch.zeros(3, requires_grad=True)
    calls = [0]

    def closure() -> torch.Tensor:
        calls[0] += 1
        weight.grad = None
        loss = (weight**2).sum()
        loss.backward()
        return loss

    minimize_lbfgs(
        closure, [weight], max_iter=10, tolerance_grad=1e-6, tolerance_change=1e-9, history_size=3
    )
    assert calls[0] == 1 and torch.equal(weight.detach(), torch.zeros(3))


def test_training_a_bot_does_not_import_torch_dynamo(tmp_path: Path) -> None:
    """torch.optim's classes import torch._dynamo (1.5 s of every training process)."""
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from chatbot.project.loader import load_project\n"
        "from training.train import train_project\n"
        "model = train_project(load_project(Path(sys.argv[1])), show_progress=False,"
        " parallel=False)\n"
        "assert model.nlu is not None and model.policies\n"
        "print('torch._dynamo' in sys.modules, 'torch' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(ROOT / "domains" / "moodbot")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "True"]
