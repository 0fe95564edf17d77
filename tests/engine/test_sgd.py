"""nasproxy's SGD is torch's, minus the import of torch._dynamo: the same updates and the same state dicts."""

import torch

from nasproxy.engine import SGD
from nasproxy.models import build_model


def _trained(optimizer_class, steps: int = 4, state: dict | None = None):
    torch.manual_seed(0)
    net = build_model("convnet-w8-d2-batch-relu-avg", channels=1, num_classes=10, image_size=(28, 28))
    opt = optimizer_class(net.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    if state is not None:
        opt.load_state_dict(state)
    x, y = torch.randn(16, 1, 28, 28), torch.arange(16) % 10
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
    return net, opt


def test_updates_and_state_dicts_equal_torchs_sgd_bit_for_bit():
    ours, our_opt = _trained(SGD)
    theirs, their_opt = _trained(torch.optim.SGD)
    for a, b in zip(ours.state_dict().values(), theirs.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    mine, torchs = our_opt.state_dict(), their_opt.state_dict()
    assert mine["param_groups"] == torchs["param_groups"]
    for i, buffers in torchs["state"].items():
        assert torch.equal(mine["state"][i]["momentum_buffer"], buffers["momentum_buffer"])
    # a checkpoint written by either loads into the other (momentum and all)
    _, resumed = _trained(SGD, steps=1, state=torchs)
    _, resumed_by_torch = _trained(torch.optim.SGD, steps=1, state=mine)
    for i in torchs["state"]:
        assert torch.equal(resumed.state_dict()["state"][i]["momentum_buffer"],
                           resumed_by_torch.state_dict()["state"][i]["momentum_buffer"])  # fmt: skip
