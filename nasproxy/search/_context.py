"""A search's request (what the user asked for) and its context (what one process loads to score
architectures: dataset, space, proxy and its file, protocol, study)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from nasproxy import __version__
from nasproxy._configs import DEFAULT_DATASET, SearchRequest
from nasproxy._errors import NasproxyError, setting


class SearchContext:
    """What one process loads to score architectures: dataset, space, proxy and its file, protocol, study."""

    def __init__(self, request: SearchRequest, *, validated: bool = False) -> None:
        """``validated``: the space is known to take the dataset's images (a worker its command spawned: the
        command checked, and for a large space checking again costs each worker seconds)."""
        import torch

        from nasproxy._artifact import CondensedSet
        from nasproxy.backends import resolve_backend
        from nasproxy.data import SplitSpec, dataset_key, load_dataset
        from nasproxy.engine import device_name, resolve_device
        from nasproxy.search.proxies import FILE_PROXY_METHODS, Protocol, Runtime
        from nasproxy.search.proxies._plugins import load_proxy, plugin_identity
        from nasproxy.spaces import load_space

        if request.threads:
            torch.set_num_threads(request.threads)
        self.request = request
        self._flops: dict[str, int] = {}
        self._activations: dict[str, int] = {}
        self.price = None  # the plan's cost model (an Estimate) once the search is planned in this process
        self._storage = None  # opened once: every open makes a database engine (and its connections) anew
        self.proxy = load_proxy(request.proxy)
        self.proxy_name = self.proxy.name  # a plugin's name, not the path it was loaded from
        for other in request.devices or ():
            resolve_device(other)  # every worker's device exists
        self.device = resolve_device(request.device)
        self.runtime = Runtime(self.device, resolve_backend(request.backend, self.device))
        self.machine = device_name(self.device)  # recorded with every trial
        self.condensed = None  # the proxy's file
        file_hash = None
        if self.proxy.file == "required" or (self.proxy.file == "optional" and request.proxy_file):
            if not request.proxy_file:
                raise NasproxyError(
                    f"proxy {request.proxy!r} needs {setting('proxy_file')} (made by `nasproxy condense`)"
                )
            self.condensed = CondensedSet.load(request.proxy_file)
            file_hash = hashlib.sha256(Path(request.proxy_file).read_bytes()).hexdigest()[:16]
            made_by = self.condensed.meta.get("method")
            wanted = FILE_PROXY_METHODS.get(self.proxy_name)
            if wanted is not None and made_by != wanted:
                raise NasproxyError(
                    f"{request.proxy_file} was made by method {made_by!r}, not {wanted!r}; "
                    f"pass {setting('proxy')} {_proxy_name_for(made_by)}"
                )
        elif request.proxy_file:
            raise NasproxyError(f"proxy {request.proxy!r} takes no {setting('proxy_file')}; leave it out")
        condensed = self.condensed
        dataset_name = condensed.meta["dataset"] if condensed is not None else request.dataset or DEFAULT_DATASET
        split = SplitSpec(holdout=request.holdout, seed=request.split_seed)
        if condensed is not None:
            split = condensed.split_spec()
            if request.dataset and dataset_key(request.dataset) != dataset_name:
                raise NasproxyError(
                    f"{request.proxy_file} is a condensed set of {dataset_name!r}, not {request.dataset!r}; "
                    f"pass {setting('dataset')} {dataset_name} or a condensed set of {request.dataset}"
                )
        self.dataset = load_dataset(dataset_name, data_root=request.data_root, download=request.download, split=split)
        if condensed is not None:
            condensed.check_compatible(self.dataset)
        self.space = load_space(request.space)
        c, h, w = self.dataset.image_shape
        if not validated:
            self.space.validate(channels=c, num_classes=self.dataset.num_classes, image_size=(h, w))
        proxy_images = len(condensed.images) if condensed is not None else request.ipc * self.dataset.num_classes
        self.protocol = Protocol(
            proxy=self.proxy_name,
            dataset=self.dataset.name,
            holdout=split.holdout,
            split_seed=split.seed,
            val_fingerprint=self.dataset.val_fingerprint,
            proxy_file=file_hash,
            proxy_images=proxy_images,
            epochs=request.epochs if request.epochs is not None else self.proxy.default_epochs,
            repeats=request.repeats if request.repeats is not None else self.proxy.default_repeats,
            batch_size=request.batch_size,
            lr=request.lr,
            precision=request.precision,
            seed=request.seed,
            zero_cost_batch=self.proxy.minibatch,
            augment=self._augmentation(request, condensed),
            score_test=request.score_test if request.score_test is not None else self.proxy.scores_test,
            plugin=plugin_identity(self.proxy),
        )
        if self.protocol.repeats < 1 or (self.proxy.default_epochs and self.protocol.epochs < 1):
            raise NasproxyError(f"{setting('repeats')} and {setting('epochs')} must be at least 1")
        protocol_json = json.dumps(self.protocol.as_dict(), sort_keys=True)
        self.protocol_hash = hashlib.sha256(protocol_json.encode()).hexdigest()[:10]
        self.study_name = (
            request.study or f"{self.dataset.name}-{self.space.name}-{self.proxy_name}-{self.protocol_hash}"
        )
        from nasproxy.search._storage import storage_url_for

        self.storage_url = storage_url_for(request.storage, self.study_name)

    def _augmentation(self, request: SearchRequest, condensed) -> str | None:
        """``--augment``: ``auto`` trains on a condensed set as its method intends (DSA's files name their
        strategy; early-stopping reads only a file's size), ``none`` never augments, or a strategy for any
        training proxy."""
        from nasproxy import augment

        if self.proxy.default_epochs == 0:
            if request.augment not in ("auto", "none"):
                raise NasproxyError(f"proxy {request.proxy!r} trains nothing; {setting('augment')} does not apply")
            return None
        if request.augment == "auto":
            trains_on_file = condensed is not None and self.proxy.file == "required"
            return condensed.meta.get("augment") if trains_on_file else None
        return augment.resolve(request.augment, self.dataset.name)

    def activations(self, arch: str) -> int:
        """Elements one image's forward pass outputs, layer by layer (the cost model's second feature)."""
        from nasproxy.search._cost import forward_activations

        if arch not in self._activations:
            c, h, w = self.dataset.image_shape
            spec = self.space.get(arch).spec
            build = lambda: self.space.build(spec, channels=c, num_classes=self.dataset.num_classes, image_size=(h, w))  # noqa: E731
            self._activations[arch] = forward_activations(build, self.dataset.image_shape)
        return self._activations[arch]

    def flops(self, arch: str) -> int:
        """Forward FLOPs of one image through ``arch`` (counted once per process)."""
        from nasproxy.search._cost import candidate_flops

        if arch not in self._flops:
            self._flops[arch] = candidate_flops(
                self.space, self.space.get(arch), self.dataset.image_shape, self.dataset.num_classes
            )
        return self._flops[arch]

    def counts(self) -> tuple[dict[str, int], dict[str, int]]:
        """The FLOPs and activation elements counted so far, by architecture: a worker this process spawns
        adopts them (worker 0 ranks every architecture by them, a few seconds of counting for paper720)."""
        return dict(self._flops), dict(self._activations)

    def adopt_counts(self, counts: tuple[dict[str, int], dict[str, int]]) -> None:
        """Counts of this space on these images made by the process that spawned this one."""
        flops, activations = counts
        self._flops.update(flops)
        self._activations.update(activations)

    def existing_study(self):
        """The study if the storage holds it, else None; nothing is created or written (``--dry-run``)."""
        import optuna

        from nasproxy.search._storage import open_storage

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        storage = open_storage(self.storage_url, read_only=True)
        try:
            if storage is None or self.study_name not in optuna.get_all_study_names(storage):
                return None
        except Exception:  # noqa: BLE001 - a database without Optuna's tables holds no study
            return None
        return optuna.load_study(study_name=self.study_name, storage=storage)

    def open_study(self, *, create: bool, sampler=None):
        from nasproxy.search._storage import retry_on_race

        # workers started at the same moment may race to create the study and its attributes
        return retry_on_race(lambda: self._open_study(create=create, sampler=sampler), self.storage_url)

    def _open_study(self, *, create: bool, sampler=None):
        import optuna

        from nasproxy.search._storage import open_storage

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        if self._storage is None:
            self._storage = open_storage(self.storage_url, wait_out_restart=not create)  # not created: it exists
        storage = self._storage
        if create:
            study = optuna.create_study(
                study_name=self.study_name, storage=storage, direction="maximize", load_if_exists=True, sampler=sampler
            )
        else:
            study = optuna.load_study(study_name=self.study_name, storage=storage, sampler=sampler)
        protocol = self.protocol.as_dict()
        space = self.space.describe()
        attrs = study.user_attrs
        if "protocol" not in attrs:
            # the protocol last: a worker that sees it (workers started together race here) sees the rest too
            study.set_user_attr("space", space)
            study.set_user_attr("nasproxy_version", __version__)
            study.set_user_attr("protocol", protocol)
        elif attrs["protocol"] != protocol or attrs.get("space") != space:
            raise NasproxyError(
                f"study {self.study_name!r} in this storage was made with another protocol or space; "
                f"pass a new {setting('study')} name (or the original settings)"
            )
        if self.condensed is not None and "proxy_file" not in attrs:
            # what made the condensed set and at what cost, so that a report can add it to the search's cost
            meta = self.condensed.meta
            keys = ("method", "ipc", "iterations_done", "wall_seconds", "device", "seed")
            study.set_user_attr("proxy_file", {"path": str(self.request.proxy_file), **{k: meta.get(k) for k in keys}})
        return study


def _proxy_name_for(method: str | None) -> str:
    return "ours" if method == "dc" else str(method)
