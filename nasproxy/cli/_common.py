"""What every command shares: the group, its options, how library errors and warnings are shown."""

from __future__ import annotations

import errno
import functools
import sys
import warnings
from functools import partial

import click

from nasproxy._configs import SplitSpec

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130
EXIT_BUDGET_SPENT = 75  # EX_TEMPFAIL: not finished, and running the same command again continues
EXIT_IO_ERROR = 74  # EX_IOERR: a write failed (a full disk, a lost mount); the same command continues after
# (errno of the write failures that are the machine's state, not a bug: full disk, quota, read-only, I/O)
_WRITE_FAILURES = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO}


def _friendly_errors(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from nasproxy._errors import BudgetSpent, NasproxyError

        try:
            return fn(*args, **kwargs)
        except BudgetSpent as exc:
            click.echo(f"stopped: {exc.for_cli()}", err=True)
            sys.exit(EXIT_BUDGET_SPENT)
        except NasproxyError as exc:
            click.echo(f"error: {exc.for_cli()}", err=True)
            sys.exit(EXIT_USER_ERROR)
        except KeyboardInterrupt:
            click.echo("interrupted; finished work is saved (re-run with --resume where offered)", err=True)
            sys.exit(EXIT_INTERRUPTED)
        except OSError as exc:
            if exc.errno not in _WRITE_FAILURES:
                raise
            where = f" {exc.filename}" if exc.filename else ""
            click.echo(
                f"error: cannot write{where} ({exc.strerror}); finished work is kept: free space (or fix the mount) "
                "and run the same command again",
                err=True,
            )
            sys.exit(EXIT_IO_ERROR)

    return wrapper


def _prepare_device(device: str, backend: str | None, quiet: bool):
    """The device to run on, the process configured for speed and determinism, and the CPU kernels built
    before any progress bar starts (where the backend may use them)."""
    from nasproxy.engine import configure_process, resolve_device

    dev = resolve_device(device)
    configure_process()
    if dev.type == "cpu" and backend != "aten":
        from nasproxy.backends import build_cpu_kernels

        build_cpu_kernels(announce=None if quiet else partial(click.echo, err=True))
    return dev


def _data_options(fn):
    fn = click.option(
        "--data-root",
        type=click.Path(file_okay=False),
        envvar="NASPROXY_DATA",
        help="Where datasets live (also $NASPROXY_DATA). Debian's /usr/share/datasets is searched too.",
    )(fn)
    fn = click.option("--download", is_flag=True, help="Allow downloading a missing dataset (needs internet).")(fn)
    return fn


def _split_options(fn):
    fn = click.option(
        "--holdout",
        type=int,
        default=SplitSpec.holdout,
        show_default=True,
        help="Training images held out for validation (class-balanced); condensation never sees them.",
    )(fn)
    fn = click.option(
        "--split-seed", type=int, default=SplitSpec.seed, show_default=True, help="Seed of the hold-out draw."
    )(fn)
    return fn


_device_option = click.option(
    "--device",
    default="auto",
    envvar="NASPROXY_DEVICE",
    show_default=True,
    help="auto (CUDA when available), cpu, cuda or cuda:N.",
)
_quiet_option = click.option("-q", "--quiet", is_flag=True, help="No progress bars.")
_augment_option = click.option(
    "--augment",
    "train_augment",
    default="auto",
    show_default=True,
    help="Augment training images: auto (as the condensed set says: DSA's files), none, or a strategy such as "
    "color_crop_cutout_flip_scale_rotate.",
)
_backend_option = click.option(
    "--backend",
    type=click.Choice(["auto", "aten", "cpu-kernels"]),
    default=None,
    help="How networks run: PyTorch's operators (aten), nasproxy's C++ kernels (cpu-kernels, CPUs only), or "
    "auto (cpu-kernels on CPUs where they build)  [default: auto]",
)
_compile_option = click.option(
    "--compile/--no-compile",
    "compile_",
    default=None,
    help="torch.compile the networks (default: on CPUs when the run is long enough to pay for it, never on CUDA; "
    "NASPROXY_COMPILE=0 turns that off).",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "auto_envvar_prefix": "NASPROXY"})
@click.version_option(package_name="nasproxy")
def main() -> None:
    """Cheap neural architecture search: rank candidate networks by training them on a condensed set."""
    warnings.showwarning = _one_line_warning


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """A warning is one line on stderr, as errors are, not Python's two lines with a source path."""
    text = (message.for_cli() if hasattr(message, "for_cli") else str(message)).strip().splitlines()
    click.echo(f"warning: {text[0] if text else category.__name__}", err=True)
