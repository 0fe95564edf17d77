"""What the condensers that learn their images (DC, DSA, DM) share: checkpoints that a run resumes from,
seeds per iteration, the starting images and the progress bar."""

from __future__ import annotations

import dataclasses
import time

import torch

from nasproxy._artifact import atomic_torch_save
from nasproxy._errors import BudgetSpent, NasproxyError, setting
from nasproxy.condensers._base import Condenser, RunContext, real_images_per_class
from nasproxy.data import Dataset
from nasproxy.engine import SGD

# settings that may change between a run and its resumption: its length, how often it checkpoints, and how
# the networks run (the same function on every backend)
RESUMABLE_SETTINGS = ("iterations", "checkpoint_every", "backend")


class LearnedImages(Condenser):
    """A condenser whose synthetic images are optimised over outer iterations and checkpointed."""

    def _identity(self, seed: int, ipc: int, dataset: Dataset) -> dict:
        settings = dataclasses.asdict(self.config)
        for volatile in RESUMABLE_SETTINGS:
            settings.pop(volatile, None)
        settings = {k: v for k, v in settings.items() if not (k == "augment" and v is None)}
        return {"seed": seed, "ipc": ipc, "dataset": dataset.name, "val": dataset.val_fingerprint, **settings}

    def _initial_images(self, dataset: Dataset, ipc: int, seed: int, init: str) -> torch.Tensor:
        gen = torch.Generator().manual_seed(mix(seed, 0, 2))
        if init == "real":
            return real_images_per_class(dataset, ipc, gen)[0]
        c, h, w = dataset.image_shape
        return torch.randn(dataset.num_classes * ipc, c, h, w, generator=gen)

    def _identity(self, seed: int, ipc: int, dataset: Dataset) -> dict:
        settings = dataclasses.asdict(self.config)
        # resuming may extend a run, checkpoint more often or run on another backend (same function)
        for volatile in ("iterations", "checkpoint_every", "backend"):
            settings.pop(volatile)
        return {"seed": seed, "ipc": ipc, "dataset": dataset.name, "val": dataset.val_fingerprint, **settings}

    def _start(self, context: RunContext, dataset: Dataset, ipc: int, seed: int, device: torch.device):
        """The images (trainable), their optimizer, and the iteration, loss history and seconds so far: from
        the checkpoint when resuming, else from the start. Uses the config's init, lr_img, momentum_img."""
        cfg = self.config
        state = self._load_checkpoint(context, seed, ipc, dataset) if context.resume else None
        if state is None:
            syn = self._initial_images(dataset, ipc, seed, cfg.init).to(device).requires_grad_(True)
            start, history, elapsed = 0, [], 0.0
        else:
            syn = state["images"].to(device).requires_grad_(True)
            start, history, elapsed = state["iteration"], list(state["history"]), state["elapsed"]
        opt_img = SGD([syn], lr=cfg.lr_img, momentum=cfg.momentum_img)
        if state is not None:
            opt_img.load_state_dict(state["optimizer"])
        return syn, opt_img, start, history, elapsed

    def _iteration_done(self, context: RunContext, it: int, loss: float, history: list, bar, run: tuple) -> None:
        """Record outer iteration ``it``'s loss, show it, checkpoint when due (every ``checkpoint_every``
        iterations and at the last), and tell ``context.on_iteration``. ``run``: (seed, ipc, dataset, images,
        their optimizer, the run's start on the ``perf_counter`` clock)."""
        seed, ipc, dataset, syn, opt_img, t0 = run
        cfg = self.config
        history.append(loss)
        bar.update(1)
        bar.set_postfix(loss=f"{loss:.4f}")
        done = it + 1
        out_of_time = context.deadline is not None and time.monotonic() >= context.deadline and done < cfg.iterations
        if context.checkpoint is not None and (
            done % cfg.checkpoint_every == 0 or done == cfg.iterations or out_of_time
        ):
            self._save_checkpoint(context, seed, ipc, dataset, syn, opt_img, done, history, time.perf_counter() - t0)
        if context.on_iteration is not None:
            context.on_iteration(it, loss)
        if out_of_time:
            raise BudgetSpent(
                f"the {context.hours:g}-hour budget ran out after {done} of {cfg.iterations} iterations; "
                f"{context.checkpoint} keeps them: run the same command with {setting('resume')} to continue"
            )

    def _save_checkpoint(self, context, seed, ipc, dataset, syn, opt_img, done, history, elapsed) -> None:
        atomic_torch_save(
            {
                "identity": self._identity(seed, ipc, dataset),
                "images": syn.detach().cpu(),
                "optimizer": opt_img.state_dict(),
                "iteration": done,
                "history": history,
                "elapsed": elapsed,
            },
            context.checkpoint,
        )

    def _load_checkpoint(self, context: RunContext, seed: int, ipc: int, dataset: Dataset) -> dict | None:
        path = context.checkpoint
        if path is None or not path.exists():
            return None
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception:  # noqa: BLE001
            raise NasproxyError(f"checkpoint {path} is unreadable; delete it to start over") from None
        if state.get("identity") != self._identity(seed, ipc, dataset):
            raise NasproxyError(
                f"checkpoint {path} belongs to a run with other settings; use the same options and seed, "
                "or delete it to start over"
            )
        return state


def mix(seed: int, iteration: int, stream: int) -> int:
    """A distinct 63-bit seed per (run seed, iteration, purpose)."""
    x = (seed * 0x9E3779B97F4A7C15 + iteration * 0xBF58476D1CE4E5B9 + stream * 0x94D049BB133111EB) & (2**64 - 1)
    x ^= x >> 31
    return x & (2**63 - 1)


def progress_bar(enabled: bool, *, total: int, initial: int):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, disable=not enabled, desc="condense", unit="it", dynamic_ncols=True)
