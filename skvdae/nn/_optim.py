"""Adam, without ``torch.optim``'s import of the compiler on first use."""

import torch


class Adam:
    """Adam (Kingma and Ba, 2015): ``torch.optim.Adam``'s update at its defaults.

    Every ``torch.optim`` optimiser imports ``torch._dynamo`` when it is built,
    1.3 s once per process: a tenth of a 10^5-sample fit, paid again by every
    command-line run. This class makes the same update, bit for bit on CPU
    (no weight decay, no AMSGrad), and has the part of the optimiser interface
    that :func:`skvdae.nn.fit_minibatches` and its divergence guard use:
    ``param_groups`` (whose ``"lr"`` may change between steps), ``step``,
    ``zero_grad``, ``state_dict`` and ``load_state_dict``.

    Parameters
    ----------
    params : iterable of torch.nn.Parameter
    lr : float, default=1e-3
    betas : tuple of float, default=(0.9, 0.999)
    eps : float, default=1e-8

    See Also
    --------
    torch.optim.Adam : The reference, with every option.

    Examples
    --------
    >>> import torch
    >>> from skvdae.nn import Adam
    >>> weight = torch.nn.Parameter(torch.tensor([3.0]))
    >>> optimizer = Adam([weight], lr=0.1)
    >>> for _ in range(300):
    ...     optimizer.zero_grad()
    ...     (weight**2).sum().backward()
    ...     optimizer.step()
    >>> bool(abs(weight.item()) < 0.05)
    True
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
        params = list(params)
        if not params:
            raise ValueError("Adam got an empty parameter list.")
        self.param_groups = [
            {"params": params, "lr": float(lr), "betas": tuple(betas), "eps": eps}
        ]
        self.state = {}

    def _parameters(self):
        return [param for group in self.param_groups for param in group["params"]]

    @torch.no_grad()
    def step(self):
        """One update of every parameter that has a gradient."""
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for param in group["params"]:
                if param.grad is None:
                    continue
                grad = param.grad
                state = self.state.get(param)
                if state is None:
                    state = self.state[param] = {
                        "step": 0,
                        "exp_avg": torch.zeros_like(param),
                        "exp_avg_sq": torch.zeros_like(param),
                    }
                state["step"] += 1
                step = float(state["step"])
                state["exp_avg"].lerp_(grad, 1 - beta1)
                state["exp_avg_sq"].mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                step_size = group["lr"] / (1 - beta1**step)
                correction = (1 - beta2**step) ** 0.5
                denom = (state["exp_avg_sq"].sqrt() / correction).add_(group["eps"])
                param.addcdiv_(state["exp_avg"], denom, value=-step_size)

    def zero_grad(self, set_to_none=True):
        """Clear the parameters' gradients."""
        for param in self._parameters():
            if param.grad is None:
                continue
            if set_to_none:
                param.grad = None
            else:
                param.grad.zero_()

    def state_dict(self):
        """Learning rates and moments, parameters referred to by position."""
        position = {param: i for i, param in enumerate(self._parameters())}
        groups = [
            {**group, "params": [position[param] for param in group["params"]]}
            for group in self.param_groups
        ]
        state = {
            position[param]: {
                name: value.clone() if torch.is_tensor(value) else value
                for name, value in moments.items()
            }
            for param, moments in self.state.items()
        }
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        """Restore :meth:`state_dict`'s values (copied, not shared)."""
        parameters = self._parameters()
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups):
            raise ValueError("the state has a different number of parameter groups")
        for group, saved in zip(self.param_groups, groups, strict=True):
            group.update({k: v for k, v in saved.items() if k != "params"})
        self.state = {
            parameters[i]: {
                name: value.clone() if torch.is_tensor(value) else value
                for name, value in moments.items()
            }
            for i, moments in state_dict["state"].items()
        }
