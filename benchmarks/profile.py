"""Where a DC outer iteration's time goes (``python -m benchmarks dc-profile``): nasproxy's DC at ``--ipc``
(default 10) for ``--iterations`` outer iterations, every part of each iteration timed between device syncs
(``nasproxy._sections``): the new network, sampling the real images, the real images' gradients, the synthetic
images' gradients (kept for the second-order pass), the matching loss with its second-order backward and the
image step, and the inner network updates. The first iteration (warm-up, compiles) is left out. The syncs slow
the loop, so the parts are shares of a profiled iteration; ``condense`` times plain ones."""

import argparse

from benchmarks._common import _dc_setting, run_arm


def bench_dc_profile(args: argparse.Namespace) -> list[dict]:
    rows = []
    for ipc in args.ipc or [10]:
        iterations = args.iterations or (3 if args.quick else 4)
        setting = {"ipc": ipc, "iterations": iterations, "real_batch": args.real_batch}
        res = run_arm("dc_nasproxy", tuned_allocator=True, device=args.device, profile=True, **setting)
        timed = iterations - 1
        total = sum(seconds for seconds, _ in res["sections"].values())
        profiled = sum(res["seconds"][1:]) / timed
        for name, (seconds, calls) in sorted(res["sections"].items(), key=lambda kv: -kv[1][0]):
            rows.append(
                {
                    "benchmark": "dc_profile",
                    "setting": f"{_dc_setting(ipc, args.real_batch)}, iterations 2-{iterations}",
                    "part": name,
                    "seconds_per_iteration": round(seconds / timed, 5),
                    "share": round(seconds / total, 4),
                    "calls_per_iteration": calls / timed,
                    "profiled_iteration_seconds": round(profiled, 4),
                    "untimed_seconds_per_iteration": round(profiled - total / timed, 5),
                    "peak_rss_mb": round(res["peak_rss_mb"]),
                    **({"peak_gpu_mb": round(res["peak_gpu_mb"])} if "peak_gpu_mb" in res else {}),
                    "threads": res["threads"],
                }
            )
            print(f"[bench] dc-profile ipc={ipc} {name}: {seconds / timed:.4f} s/iteration ({seconds / total:.0%})")
    return rows
