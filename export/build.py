"""``edge-export build``: data → teacher → distilled student → ONNX → int8 → gates → bundle.

Every model is scored on the shared folds of :mod:`export.cv` (the baselines' folds), so the
CV table compares like with like. The shipped student is then trained on every labelled row and
written to a temporary directory beside ``--out``; it replaces the old bundle only once it
loads in the runtime (``edge.inference.session.TriageModel``) and passes the int8 gate.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import tempfile
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from edge.clinical.features import N_FEATURES, encode_cases
from export import (augment, calibrate, encoder_export, esi_build, esi_bundle, int8_gate, multiscale, onnx_export,
                    quantization_recipe, seed_spread)
from export.cv import DEFAULT_SEED, Fold, fold_table, stratified_folds
from export.data import Corpus, data_root, load_corpus, transfer_cases
from export.models_setup import Setup, real_setup, smoke_setup
from export.stages import Stages
from export.graph_embedder import GraphEmbedder
from export.modeling import PooledHead
from export.student import StudentPlan, fit_student
from export.teacher import fit_teacher
from export.train import HeadConfig, StudentConfig, fused_logits, head_logits, soften


@dataclass
class BuildConfig:
    out: Path
    smoke: bool = False
    data: Path | None = None  # the shared data root (holds ktas-moon2019/, nhamcs-ed-2022-docs/)
    seed: int = DEFAULT_SEED
    name: str = "triage-minilm-int8"
    version: str = "1.0.0"
    max_seq_len: int = 32
    n_splits: int = 5
    teacher_repeats: int = 2
    student_repeats: int = 2  # the frozen-encoder student is cheap: same 2×5 folds as teacher and baselines
    transfer_copies: int = 1
    # Masked copies of training rows (vitals / other optional fields / kiosk / MIMIC-like views,
    # export.augment), as a fraction of the training rows; teacher and student heads alike.
    # 0.1: the largest of the fractions tried (0, 0.1, 0.25, 0.5) that keeps the full-row gates (REPORT.md).
    missing_fraction: float = 0.1
    # Also masked copies of the transfer rows (soft target: their full row). Off: at fraction 0.1 it moved
    # OOF kiosk accuracy 0.631 -> 0.647 but kiosk under-triage 0.098 -> 0.106 and critical recall 0.746 -> 0.731.
    transfer_missing: bool = False
    student_layers: int | None = None  # None: all six
    keep_frequent: int = 5000
    limit: int | None = None  # labelled rows used (smoke builds)
    teacher_head: HeadConfig = HeadConfig()
    # Shipped: the student's encoder stays as pretrained (pruned vocabulary) and its fusion head
    # learns from the labels alone (alpha 0). Two recipes were compared on the KTAS folds with the
    # features-v2 + shorthand build: distilled from the teacher (alpha 0.7) gave OOF 0.670 / 0.096 /
    # 0.807 (nested 0.664), labels only 0.680 / 0.099 / 0.805 (nested 0.672); the teacher stays as
    # a row of the CV table. `--distill-alpha` and `--epochs N` (fine-tune the encoder) override.
    plan: StudentPlan = StudentPlan(finetune=False, train=StudentConfig(alpha=0.0))
    # Shipped recipe (export.row_int8 via export.quantization_recipe): MatMulInteger on uint8
    # activations quantized per row at run time, int8 weights per column rounded by GPTQ, channel
    # equalisation from reason-for-visit texts; the heads learn on this int8 encoder's vectors.
    # Measured beside it on the same out-of-fold cases (their fold heads are this recipe's): the
    # MatMulNBits recipe that shipped before (its x86 int8 kernel's time grows with every row), its
    # fp32-compute variant, dynamic U8S8 per tensor and the weight-only recipe shipped before that.
    recipe: quantization_recipe.QuantRecipe = quantization_recipe.QuantRecipe(method="row_int8")
    compare_recipes: dict[str, quantization_recipe.QuantRecipe] = field(default_factory=lambda: {
        "dynamic U8S8 (per-channel int8 weights, uint8 activations per tensor), per-row embeddings":
            quantization_recipe.QuantRecipe(method="dynamic"),
        "weight-only int8 per 32-row block, fp32 compute (shipped before)":
            quantization_recipe.QuantRecipe(method="weight_only"),
        "MatMulNBits 8-bit, fp32 compute (accuracy_level 0)": quantization_recipe.QuantRecipe(accuracy_level=0),
        "MatMulNBits 8-bit per 32-row block, int8 compute (accuracy_level 4; shipped before)":
            quantization_recipe.QuantRecipe(),
    })
    # Head seeds the KTAS CV is re-run with for REPORT.md's seed spread (export.seed_spread; offset 0 is
    # the reported head). 1: none. Frozen-encoder plans only: only the head is re-trained.
    seed_spread: int = 5
    baselines: bool = True
    latency: bool = True
    require_gate: bool = True  # a bundle failing the int8 gate goes to <out>.rejected, not <out>
    threads: int = 2
    notes: list[str] = field(default_factory=list)
    # The ESI scale (NHAMCS 2016-2020, export.esi_build): heads, outcome head, protocol report.
    esi: bool = True
    esi_limit_per_year: int | None = None  # smoke builds: a few hundred visits a year
    prune_extra: list[str] = field(default_factory=list)  # texts the pruned vocabulary must keep whole


def smoke_config(out: Path, data: Path | None = None) -> BuildConfig:
    """Tiny random BERTs, 2 folds, one short epoch: minutes on a shared CPU, every stage run."""
    return BuildConfig(out=out, smoke=True, data=data, name="triage-smoke", version="0.0.0-smoke", n_splits=2,
                       teacher_repeats=1, student_repeats=1, limit=200, teacher_head=HeadConfig(epochs=5), compare_recipes={},
                       plan=StudentPlan(head=HeadConfig(epochs=5), train=StudentConfig(epochs=1, batch_size=32)),
                       baselines=False, latency=False, require_gate=False, esi_limit_per_year=300, seed_spread=2)


def esi_available(root: Path) -> bool:
    from export.nhamcs_data import available

    return available(root) and all(p.is_file() for p in esi_build.knowledge_paths(root).values())


def normalised_corpus(corpus: Corpus, root: Path) -> Corpus:
    """KTAS complaints as the runtime reads them: ED shorthand expanded (edge.clinical.abbreviations)."""
    from edge.clinical.abbreviations import Abbreviations, table_rows

    table = Abbreviations.from_rows(table_rows(esi_build.knowledge_paths(root)["abbreviations"]))
    cases = [replace(c, complaint=table.normalise(c.complaint, c.age).text) for c in corpus.cases]
    return replace(corpus, cases=cases)


def prepared_corpus(config: BuildConfig, root: Path) -> tuple[Corpus, BuildConfig, bool]:
    """The KTAS rows as the runtime reads them and the config that goes with them: where the
    shorthand table is present the complaints are expanded (the runtime expands before tokenizing,
    so this applies whether or not the build adds the ESI heads) and the pruned vocabulary must keep
    every text the ESI heads read. The flag says whether the texts were expanded."""
    corpus = load_corpus(root, config.limit)
    normalised = esi_build.knowledge_paths(root)["abbreviations"].is_file()
    if normalised:
        corpus = normalised_corpus(corpus, root)
        config = replace(config, prune_extra=esi_build.prune_texts(root))
    return corpus, config, normalised


def _cases_at(cases: list, index: np.ndarray) -> list:
    return [cases[int(i)] for i in index]


def _augmented(corpus: Corpus, train_idx: np.ndarray, config: BuildConfig, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Masked copies of the training rows: (row index into the corpus, encoded features)."""
    sources, cases = augment.augmentation(_cases_at(corpus.cases, train_idx), config.missing_fraction, seed)
    features = encode_cases(cases) if cases else np.zeros((0, N_FEATURES), np.float32)
    return train_idx[sources], features


def fit_fold_teacher(setup: Setup, config: BuildConfig, corpus: Corpus, train_idx: np.ndarray, seed: int):
    rows, aug_features = _augmented(corpus, train_idx, config, seed)
    index = np.concatenate([train_idx, rows])
    features = np.concatenate([corpus.features[train_idx], aug_features])
    return fit_teacher(setup.teacher_embeddings[index], features, corpus.labels[index] - 1,
                       replace(config.teacher_head, seed=seed))


def student_fold(setup: Setup, config: BuildConfig, corpus: Corpus, teacher, rfv_embeddings: np.ndarray,
                  train_idx: np.ndarray, seed: int, desc: str):
    """Distil one student from ``teacher`` on the labelled ``train_idx`` rows (plus masked copies,
    which keep their full row's soft target) and a transfer set."""
    features = corpus.features
    rows, aug_features = _augmented(corpus, train_idx, config, seed + 7)
    donors = _cases_at(corpus.cases, train_idx)
    transfer = transfer_cases(corpus.rfv_texts, donors, config.transfer_copies, seed) if corpus.rfv_texts else []
    transfer_features = encode_cases(transfer) if transfer else np.zeros((0, N_FEATURES), np.float32)
    transfer_embeddings = np.tile(rfv_embeddings, (config.transfer_copies, 1)) if transfer else rfv_embeddings[:0]
    masked_transfer = np.zeros((0, N_FEATURES), np.float32)
    if transfer and config.transfer_missing:
        t_sources, t_cases = augment.augmentation(transfer, config.missing_fraction, seed + 11)
        if t_cases:
            masked_transfer = encode_cases(t_cases)
            transfer = transfer + t_cases
            # soft target: the teacher on the unmasked row, as for the labelled copies
            transfer_embeddings = np.concatenate([transfer_embeddings, transfer_embeddings[t_sources]])
            transfer_soft_features = np.concatenate([transfer_features, transfer_features[t_sources]])
            transfer_features = np.concatenate([transfer_features, masked_transfer])
    temp = config.plan.train.distill_temperature
    soft = np.concatenate([
        soften(teacher.logits(setup.teacher_embeddings[train_idx], features[train_idx]), temp),
        soften(teacher.logits(setup.teacher_embeddings[rows], features[rows]), temp),
        soften(teacher.logits(transfer_embeddings, transfer_soft_features if len(masked_transfer) else transfer_features), temp)
        if transfer else np.zeros((0, 5), np.float32),
    ])
    texts = [corpus.texts[int(i)] for i in np.concatenate([train_idx, rows])] + [c.complaint for c in transfer]
    labels = np.concatenate([corpus.labels[train_idx] - 1, corpus.labels[rows] - 1, -np.ones(len(transfer), dtype=np.int64)])
    all_features = np.concatenate([features[train_idx], aug_features, transfer_features])
    plan = replace(config.plan, train=replace(config.plan.train, seed=seed, max_len=config.max_seq_len),
                   head=replace(config.plan.head, seed=seed))
    return fit_student(setup.student, texts, all_features, labels, soft, plan, desc=desc)


def fold_seed(config: BuildConfig, fold: Fold, offset: int = 0) -> int:
    """The seed of a fold's student; ``offset`` > 0: the same fold with another head seed (export.seed_spread)."""
    return config.seed + 100 * fold.repeat + fold.fold + seed_spread.SEED_STRIDE * offset


def head_seed_logits(setup: Setup, config: BuildConfig, corpus: Corpus, teacher, fold: Fold, pooled: np.ndarray,
                     offset: int) -> np.ndarray:
    """The fold's student trained with head seed ``offset`` (0: the build's own) on the frozen
    encoder, scored on the fold's held-out rows from their int8 pooled vectors (``pooled``: every
    corpus text, in corpus order)."""
    model = student_fold(setup, config, corpus, teacher, setup.rfv_embeddings, fold.train, fold_seed(config, fold, offset),
                         f"student r{fold.repeat}f{fold.fold} seed+{offset}")
    return head_logits(model.head, pooled[fold.test] * model.text_scale, corpus.features[fold.test])


def encode_ids(setup: Setup, texts: list[str], max_len: int) -> tuple[np.ndarray, np.ndarray]:
    tokenizer = setup.student.tokenizer()
    tokenizer.enable_truncation(max_length=max_len)
    tokenizer.enable_padding(pad_id=setup.student.pad_id, pad_token=setup.student.pad_token)
    encodings = tokenizer.encode_batch(texts)
    return (np.asarray([e.ids for e in encodings], dtype=np.int64),
            np.asarray([e.attention_mask for e in encodings], dtype=np.int64))


def _encoder_graphs_for(model, graphs: encoder_export.EncoderGraphs, config: BuildConfig, folder: Path) -> encoder_export.EncoderGraphs:
    """The build's shared encoder graphs, or — when the plan fine-tunes the encoder — this model's own."""
    if not (config.plan.finetune and config.plan.train.epochs > 0):
        return graphs
    return encoder_export.prepare(model.encoder, folder, config.recipe, config.compare_recipes, graphs.calibration)


def run_cv(setup: Setup, config: BuildConfig, corpus: Corpus, stages: Stages, work: Path,
           graphs: encoder_export.EncoderGraphs) -> dict[str, Any]:
    from tqdm import tqdm

    y0 = corpus.labels - 1
    n = len(y0)
    features = corpus.features
    repeats = max(config.teacher_repeats, config.student_repeats)
    folds = list(stratified_folds(corpus.labels, config.n_splits, repeats, config.seed))
    ids, mask = encode_ids(setup, corpus.texts, config.max_seq_len)
    teacher_oof = np.zeros((config.teacher_repeats, n, 5))
    student = {k: np.zeros((config.student_repeats, n, 5)) for k in ("torch", "fp32", "int8")}
    alternatives = {k: np.zeros((config.student_repeats, n, 5)) for k in config.compare_recipes}
    view_features = {name: encode_cases(augment.view(corpus.cases, name)) for name in (augment.KIOSK, augment.MIMIC_LIKE)}
    views = {name: np.zeros((config.student_repeats, n, 5)) for name in view_features}
    recipe_info: dict[str, Any] = {}
    spread_heads = config.seed_spread - 1 if not config.plan.finetune and setup.student.embedder is not None else 0
    spread = np.zeros((spread_heads, config.student_repeats, n, 5))
    pooled = setup.student.embedder.embed(corpus.texts, desc="int8 pooled vectors") if spread_heads else None
    with stages.stage("teacher CV"):
        teachers = {}
        for fold in tqdm([f for f in folds if f.repeat < config.teacher_repeats], desc="teacher folds", leave=False):
            teacher = fit_fold_teacher(setup, config, corpus, fold.train, config.seed + fold.fold)
            teacher_oof[fold.repeat, fold.test] = teacher.logits(setup.teacher_embeddings[fold.test], features[fold.test])
            teachers[(fold.repeat, fold.fold)] = teacher
    with stages.stage("student CV (distil, export, int8)"):
        for fold in tqdm([f for f in folds if f.repeat < config.student_repeats], desc="student folds"):
            teacher = teachers.get((fold.repeat, fold.fold)) or fit_fold_teacher(setup, config, corpus, fold.train, config.seed)
            model = student_fold(setup, config, corpus, teacher, setup.rfv_embeddings, fold.train, fold_seed(config, fold),
                                 f"student r{fold.repeat}f{fold.fold}")
            for offset in range(1, spread_heads + 1):  # the same fold, only the head's seed changes
                spread[offset - 1, fold.repeat, fold.test] = head_seed_logits(setup, config, corpus, teacher, fold, pooled, offset)
            test_texts = [corpus.texts[int(i)] for i in fold.test]
            student["torch"][fold.repeat, fold.test] = fused_logits(
                model, setup.student.tokenizer(), setup.student.pad, test_texts, features[fold.test], config.max_seq_len)
            fold_graphs = _encoder_graphs_for(model, graphs, config, work / "fold-encoder")
            head = PooledHead(model.head, model.text_scale)
            recipe_info = fold_graphs.recipe

            def joined(encoder: Path, name: str) -> Path:
                return onnx_export.bundle_graph(head, ["logits"], encoder, work / name, fold_graphs.hidden_size, N_FEATURES)

            for kind, path in (("fp32", joined(fold_graphs.fp32, "fold-fp32.onnx")), ("int8", joined(fold_graphs.int8, "fold-int8.onnx"))):
                runner = onnx_export.OrtRunner(path, config.threads)
                student[kind][fold.repeat, fold.test] = runner.logits(ids[fold.test], mask[fold.test], features[fold.test])
            for name, view_feats in view_features.items():  # runner: the int8 graph
                views[name][fold.repeat, fold.test] = runner.logits(ids[fold.test], mask[fold.test], view_feats[fold.test])
            for name, encoder in fold_graphs.alternatives.items():
                runner = onnx_export.OrtRunner(joined(encoder, "fold-alt.onnx"), config.threads)
                alternatives[name][fold.repeat, fold.test] = runner.logits(ids[fold.test], mask[fold.test], features[fold.test])
    return {"folds": folds, "teacher": teacher_oof, "student": student, "recipe": recipe_info,
            "alternatives": alternatives, "views": views, "seed_spread": spread}


def build(config: BuildConfig) -> dict[str, Any]:
    from export import bundle_writer, report

    torch.set_num_threads(config.threads)
    stages = Stages()
    out = Path(config.out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".edge-export-", dir=out.parent) as tmp:
        work = Path(tmp) / "work"
        staging = Path(tmp) / out.name
        work.mkdir()
        staging.mkdir()
        with stages.stage("data"):
            root = data_root(config.data)
            corpus, config, normalised = prepared_corpus(config, root)
            esi_ready = config.esi and esi_available(root)
        with stages.stage("encoders and teacher embeddings"):
            setup = smoke_setup(config, corpus) if config.smoke else real_setup(config, corpus)
        with stages.stage("student encoder: optimum export, fusion, int8"):
            # Calibration for the recipes that measure activations (unlabelled texts: ranges and
            # second moments only): CDC's reason-for-visit labels; without the NHAMCS files, the
            # complaint texts.
            calibration = encode_ids(setup, corpus.rfv_texts or corpus.texts, config.max_seq_len)
            graphs = encoder_export.prepare(setup.student.make_encoder(), work / "encoder", config.recipe,
                                            config.compare_recipes, calibration)
            # The heads learn on the int8 encoder's vectors: the int8 graph is the model training optimizes.
            setup.student.embedder = GraphEmbedder(graphs.int8, setup.student.tokenizer_json, setup.student.pad_id,
                                                   setup.student.pad_token, config.max_seq_len, config.threads)
        cv = run_cv(setup, config, corpus, stages, work, graphs)
        with stages.stage("calibration and decision"):
            chosen = calibrate_and_decide(corpus, cv, config)
        with stages.stage("final teacher and student"):
            teacher = fit_fold_teacher(setup, config, corpus, np.arange(len(corpus.labels)), config.seed)
            final = student_fold(setup, config, corpus, teacher, setup.rfv_embeddings, np.arange(len(corpus.labels)),
                                  config.seed, "student final")
            final_graphs = _encoder_graphs_for(final, graphs, config, work / "final-encoder")
            embedder = setup.student.embedder if final_graphs is graphs else GraphEmbedder(
                final_graphs.int8, setup.student.tokenizer_json, setup.student.pad_id, setup.student.pad_token,
                config.max_seq_len, config.threads)
        esi = None
        if esi_ready:
            with stages.stage("ESI scale (NHAMCS): protocol, baselines, heads"):
                esi = esi_build.run(root, embedder, config.seed, config.esi_limit_per_year)
        with stages.stage("export and int8"):
            if esi is not None:
                heads, outputs = multiscale.MultiScaleHeads(final, esi.heads, esi.text_scale, esi.complaint_vectors), multiscale.OUTPUTS
            else:
                heads, outputs = PooledHead(final.head, final.text_scale), ["logits"]
            hidden = final_graphs.hidden_size
            fp32 = onnx_export.bundle_graph(heads, outputs, final_graphs.fp32, work / "model-fp32.onnx", hidden, N_FEATURES)
            onnx_export.bundle_graph(heads, outputs, final_graphs.int8, staging / "model.onnx", hidden, N_FEATURES)
            if quantization_recipe.quantized_head_nodes(staging / "model.onnx"):
                raise RuntimeError("a head node is quantized in the shipped graph; the heads must stay fp32")
            recipe = {**final_graphs.recipe, "fusion": final_graphs.fusion,
                      "exporter": "encoder: optimum.exporters.onnx (export.encoder_export); heads: torch.onnx; joined by export.graph_merge"}
            (staging / "tokenizer.json").write_text(setup.student.tokenizer_json, encoding="utf-8")
        baselines = None
        if config.baselines:
            with stages.stage("baselines (export.baselines)"):
                baselines = report.baselines(data_root(config.data))
        with stages.stage("bundle, runtime check and report"):
            result = bundle_writer.write(staging, config, setup, corpus, cv, chosen, recipe, fp32, baselines, stages)
            if esi is not None:
                result["esi"] = esi_bundle.add(staging, esi, fp32, config, result["manifest"])
                result["int8_gate"]["passes"] = bool(result["int8_gate"]["passes"] and result["esi"]["int8_gate"]["passes"])
            elif normalised:  # texts were expanded: the runtime must expand them the same way
                from edge.clinical.abbreviations import table_rows

                esi_bundle.add_abbreviations(staging, table_rows(esi_build.knowledge_paths(root)["abbreviations"]),
                                             result["manifest"])
        if config.latency:
            with stages.stage("latency"):
                result["latency"] = report.latency(setup, staging, corpus, config)
        result["stages_s"] = dict(stages.seconds)
        result["build_s"] = stages.total
        bundle_writer.finish(staging, result)
        if config.require_gate and not result["int8_gate"]["passes"]:
            out = out.with_name(out.name + ".rejected")
            result["bundle"] = str(out)
        _replace_atomically(staging, out)
    return result


def calibrate_and_decide(corpus: Corpus, cv: dict[str, Any], config: BuildConfig) -> dict[str, Any]:
    repeats = config.student_repeats
    truth = np.tile(corpus.labels, repeats)
    fired = calibrate.fired_rules(corpus.cases) * repeats
    int8_logits = cv["student"]["int8"].reshape(-1, 5)
    temperature = calibrate.fit_temperature(int8_logits, truth - 1)
    from edge.clinical.decision_rule import softmax
    from edge.clinical.evaluation_metrics import compute

    probs = {k: softmax(v.reshape(-1, 5), temperature) for k, v in cv["student"].items()}
    point = calibrate.choose_operating_point(probs["int8"], truth, fired)
    nested = calibrate.nested_operating_point(probs["int8"], truth, fired,
                                              [f for f in cv["folds"] if f.repeat < repeats], len(corpus.labels))
    levels = {k: calibrate.final_levels(p, point.decision, fired) for k, p in probs.items()}
    gate = int8_gate.int8_agreement(levels["fp32"], levels["int8"], truth)
    argmax_gate = int8_gate.int8_agreement(probs["fp32"].argmax(1) + 1, probs["int8"].argmax(1) + 1, truth)
    alternatives = {}
    for name, logits in cv["alternatives"].items():
        alt_levels = calibrate.final_levels(softmax(logits.reshape(-1, 5), temperature), point.decision, fired)
        alternatives[name] = int8_gate.int8_agreement(levels["fp32"], alt_levels, truth)
    alternatives["shipped: row_int8"] = gate
    views = {}
    for name, logits in cv.get("views", {}).items():
        fired_view = calibrate.fired_rules(augment.view(corpus.cases, name)) * repeats
        view_levels = calibrate.final_levels(softmax(logits.reshape(-1, 5), temperature), point.decision, fired_view)
        views[name] = {"levels": view_levels, "metrics": calibrate.summary(compute(truth, view_levels))}
    spread = None
    if len(cv.get("seed_spread", ())):
        folds = [f for f in cv["folds"] if f.repeat < repeats]
        heads = [cv["student"]["int8"]] + list(cv["seed_spread"])
        spread = {**seed_spread.summarise(heads, truth, fired, folds, len(corpus.labels)),
                  "how": "the same folds and int8 encoder, only the fusion head's seed changes; offset 0 is the shipped recipe's "
                         "head (its figures above); each seed's point chosen on its own probabilities, and nested"}
    return {"temperature": temperature, "point": point, "nested": nested, "gate": gate, "gate_argmax": argmax_gate, "views": views,
            "seed_spread": spread,
            "recipe_comparison": alternatives,
            "probs": probs, "levels": levels, "truth": truth, "fired": fired}


def _replace_atomically(staging: Path, out: Path) -> None:
    """Swap the new bundle in with renames, so the old one stays whole until the new one is."""
    old = out.with_name(f".{out.name}.old")
    if old.exists():
        shutil.rmtree(old)
    if out.exists():
        out.rename(old)
    shutil.move(str(staging), str(out))
    if old.exists():
        shutil.rmtree(old)


def summary_json(result: dict[str, Any]) -> str:
    keys = ("bundle", "size_mb", "operating_point", "int8_gate", "batch_invariance", "views", "cv_table", "latency", "build_s", "stages_s")
    return json.dumps({k: result.get(k) for k in keys}, indent=2, default=str)
