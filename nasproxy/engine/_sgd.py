"""``torch.optim.SGD`` without the import of ``torch._dynamo`` that its first use costs.

torch wraps an optimizer's ``step``, ``zero_grad``, ``add_param_group``, ``state_dict`` and
``load_state_dict`` so that dynamo never traces into them, and each wrapper imports ``torch._dynamo`` on its
first call: more than half as long again as importing torch (results/bench/engine-choices.md), paid by every
process that trains (each search worker, ``condense``, ``evaluate``). nasproxy never traces an optimizer
(``torch.compile`` wraps only the network, :func:`nasproxy.engine.compiled`), so this subclass calls torch's
own functions inside those wrappers: the same arithmetic, bit for bit, and the same state dicts.
"""

from __future__ import annotations

import inspect

import torch

_Optimizer = torch.optim.Optimizer
# unwrap, not ``__wrapped__``: torch.optim.SGD.step is wrapped twice once an SGD exists (the profiler's hook)
_sgd_step = inspect.unwrap(torch.optim.SGD.step)


class SGD(torch.optim.SGD):
    add_param_group = inspect.unwrap(_Optimizer.add_param_group)
    zero_grad = inspect.unwrap(_Optimizer.zero_grad)
    state_dict = inspect.unwrap(_Optimizer.state_dict)
    load_state_dict = inspect.unwrap(_Optimizer.load_state_dict)

    def step(self, closure=None):
        # what torch's wrapper does besides the import: no autograd graph for the update
        with torch.set_grad_enabled(self.defaults["differentiable"]):
            return _sgd_step(self, closure)
