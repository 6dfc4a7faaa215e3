"""``edge-export``: build the model bundle from the data.

    edge-export build --out models/triage-minilm-int8          # the shipped bundle
    edge-export build --out /tmp/smoke --smoke                 # tiny random BERT, minutes
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path
from typing import Sequence


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edge-export", description="Build-time tools for the triage model.")
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="train teacher and student, export, quantize, gate and write a bundle")
    build.add_argument("--out", required=True, help="bundle directory to write (replaced atomically)")
    build.add_argument("--smoke", action="store_true", help="tiny random BERT from a config, 2 folds: a fast end-to-end check")
    build.add_argument("--data", default=None, help="shared data root holding ktas-moon2019/ and nhamcs-ed-2022-docs/ (default ../shared/data)")
    build.add_argument("--seed", type=int, default=None)
    build.add_argument("--student-repeats", type=int, default=None, help="CV repeats for the student (each fold distils, exports, quantizes)")
    build.add_argument("--teacher-repeats", type=int, default=None)
    build.add_argument("--epochs", type=int, default=None, help="student fine-tuning epochs (0: frozen encoder, head only)")
    build.add_argument("--trainable-layers", type=int, default=None,
                       help="fine-tune only the student's top N layers (default: all weights)")
    build.add_argument("--keep-frequent", type=int, default=None, help="general-English vocabulary pieces kept besides the domain's")
    build.add_argument("--layers", type=int, default=None, help="keep the student's first N encoder layers")
    build.add_argument("--no-baselines", action="store_true", help="skip the baselines' CV (faster)")
    build.add_argument("--no-latency", action="store_true")
    build.add_argument("--no-esi", action="store_true", help="KTAS scale only (skip NHAMCS and the ESI heads)")
    build.add_argument("--distill-alpha", type=float, default=None,
                       help="weight of the teacher's soft labels in the student head's loss (0: labels only)")
    build.add_argument("--missing-fraction", type=float, default=None,
                       help="masked copies of training rows (missing vitals/optional fields) per training row")
    build.add_argument("--transfer-missing", action="store_true", help="masked copies of the NHAMCS transfer rows too")
    build.add_argument("--limit", type=int, default=None, help="use only the first N labelled rows")
    build.add_argument("--recipe", choices=("row_int8", "row_int8_compact"), default=None,
                       help="int8 recipe of the encoder (default row_int8, the shipped one; export.quantization_recipe)")
    from export import baselines  # hook owned by export/baselines.py
    baselines.add_arguments(sub.add_parser("baselines", help="CV table and trade-off curve of the baselines"))
    ablation = sub.add_parser("ablation", help="what each protocol-knowledge piece buys on KTAS (nested CV, JSON)")
    ablation.add_argument("--data", default=None, help="shared data root (default ../shared/data)")
    ablation.add_argument("--out", default=None, help="write the JSON here (default stdout)")
    study = sub.add_parser("finetune-study", help="does fine-tuning the encoder pay on NHAMCS? (2019 validation, JSON)")
    study.add_argument("--data", default=None)
    study.add_argument("--out", default=None)
    ceiling = sub.add_parser("admission-ceiling",
                             help="the most admitted level 1-2 visits any one head signal can catch per share of calls (2019, JSON)")
    ceiling.add_argument("--data", default=None)
    ceiling.add_argument("--out", default=None)
    spread = sub.add_parser("seed-spread", help="how far the KTAS out-of-fold figures move with the head's seed alone (JSON)")
    spread.add_argument("--data", default=None)
    spread.add_argument("--seeds", type=int, default=5)
    spread.add_argument("--out", default=None)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "baselines":
        from export import baselines
        return baselines.run(args)
    if args.command == "finetune-study":
        from export import finetune_study
        return finetune_study.main([*(["--data", args.data] if args.data else []), *(["--out", args.out] if args.out else [])])
    if args.command == "admission-ceiling":
        from export import admission_ceiling
        return admission_ceiling.main([*(["--data", args.data] if args.data else []), *(["--out", args.out] if args.out else [])])
    if args.command == "seed-spread":
        from export import seed_spread
        return seed_spread.main([*(["--data", args.data] if args.data else []), "--seeds", str(args.seeds),
                                 *(["--out", args.out] if args.out else [])])
    if args.command == "ablation":
        from export import knowledge_ablation
        return knowledge_ablation.main([*(["--data", args.data] if args.data else []), *(["--out", args.out] if args.out else [])])
    from export.build import BuildConfig, build, smoke_config, summary_json

    out = Path(args.out)
    data = Path(args.data) if args.data else None
    config = smoke_config(out, data) if args.smoke else BuildConfig(out=out, data=data)
    changes = {}
    if args.seed is not None:
        changes["seed"] = args.seed
    if args.student_repeats is not None:
        changes["student_repeats"] = args.student_repeats
    if args.teacher_repeats is not None:
        changes["teacher_repeats"] = args.teacher_repeats
    if args.layers is not None:
        changes["student_layers"] = args.layers
    if args.limit is not None:
        changes["limit"] = args.limit
    if args.transfer_missing:
        changes["transfer_missing"] = True
    if args.missing_fraction is not None:
        changes["missing_fraction"] = args.missing_fraction
    if args.no_baselines:
        changes["baselines"] = False
    if args.no_latency:
        changes["latency"] = False
    if args.no_esi:
        changes["esi"] = False
    if args.distill_alpha is not None:
        changes["plan"] = replace(config.plan, train=replace(config.plan.train, alpha=args.distill_alpha))
    if args.epochs is not None:
        changes["plan"] = replace(config.plan, finetune=args.epochs > 0,
                                  train=replace(config.plan.train, epochs=max(args.epochs, 0)))
    if args.recipe is not None:
        from export.quantization_recipe import QuantRecipe

        changes["recipe"] = QuantRecipe(method=args.recipe)
    if args.keep_frequent is not None:
        changes["keep_frequent"] = args.keep_frequent
    plan = changes.get("plan", config.plan)
    if args.trainable_layers is not None:
        changes["plan"] = replace(plan, train=replace(plan.train, trainable_layers=args.trainable_layers))
    config = replace(config, **changes)
    result = build(config)
    print(summary_json(result))
    gate = result["int8_gate"]
    if not gate["passes"]:
        print("edge-export: int8 gate failed (see REPORT.md); the bundle was written for inspection.", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
