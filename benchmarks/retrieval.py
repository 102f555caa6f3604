"""Retrieval quality of the classic hashing baselines on the BinGAN paper's protocol (Fashion-MNIST).

The protocol lives in ``lookalike.evaluation.protocol`` (``lookalike eval`` prints the same table); this script adds
the provenance stamp for BENCHMARKS.md. Features are cached under the lookalike cache directory (efficientnet-lite0
on 70,000 images takes about 7 minutes on 2 cores the first time).

Run: ``python benchmarks/retrieval.py [--features pixels,efficientnet-lite0] [--hashers lsh,itq,…] [--bits 16,32,64]
[--write]``

``--write`` puts the table into BENCHMARKS.md in place of the previous run's.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from _stamp import Report, stamp, write_section

from lookalike.evaluation.protocol import run_protocol


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="fashion-mnist", choices=["fashion-mnist", "cifar10"])
    parser.add_argument("--root", help="dataset folder (CIFAR-10's cifar-10-batches-py)")
    parser.add_argument("--features", default="pixels,efficientnet-lite0")
    parser.add_argument("--hashers", default="lsh,pcah,itq,sh,sph,kmh")
    parser.add_argument("--bits", default="16,32,64")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--write", action="store_true", help="replace this table's section in BENCHMARKS.md")
    args = parser.parse_args()
    report = Report()
    report(f"## Hashing baselines on {args.dataset} (BinGAN protocol)\n")
    report(stamp())
    run_protocol(dataset=args.dataset, root=args.root, feature_names=args.features.split(","),
                 hashers=args.hashers.split(","), bits=[int(b) for b in args.bits.split(",")],
                 queries=args.queries, seed=args.seed, out=report)
    if args.write:
        write_section(report.text())


if __name__ == "__main__":
    main()
