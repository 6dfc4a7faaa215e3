"""``edge-export finetune-study``: does fine-tuning the encoder pay on 60,000 US visits?

The shipped ESI heads read the *frozen* student encoder. This study fine-tunes the student's top
encoder layers together with the ESI level + outcome heads on NHAMCS 2016-2018 (one epoch, CPU,
fixed seed), then retrains fresh heads on the fine-tuned pooled vectors and compares both on the
2019 validation year at the same decision rule family (best feasible setting of the same grid as
the shipped protocol). 2020 is not touched. Writes one JSON object.

Teacher fine-tuning (mpnet, ~5x the compute) and distillation from it are not run: on a 2-core CPU
one epoch of the student alone takes minutes; the teacher would take the better part of an hour.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edge.clinical.features import encode_cases
from export import esi_protocol, scale_heads
from export.nhamcs_data import Rows

if TYPE_CHECKING:
    from tokenizers import Tokenizer
    from torch import nn

    from export.teacher import TextEncoder


@dataclass
class Study:
    """NHAMCS 2016-2018 (train) and 2019 (valid), normalised as the runtime does, and the fp32
    student encoder that embeds them."""

    train: Rows
    valid: Rows
    names: list[str]
    encoder: nn.Module
    tokenizer: Tokenizer
    text: TextEncoder  # the encoder above, with the tokenizer and padding

    def arrays(self, tag: str) -> tuple[esi_protocol.Arrays, esi_protocol.Arrays, float]:
        """Both years as the ESI heads read them, embedded by the encoder as it is now."""
        unique = sorted(set(self.train.texts) | set(self.valid.texts) | set(self.names))
        vectors = dict(zip(unique, self.text.embed(unique, batch_size=128, desc=f"embed ({tag})")))
        complaints = np.stack([vectors[n] for n in self.names])
        train_pooled = np.stack([vectors[t] for t in self.train.texts])
        scale = 1.0 / (float((train_pooled - train_pooled.mean(axis=0)).std()) or 1.0)

        def arrays(r: Rows) -> esi_protocol.Arrays:
            pooled = np.stack([vectors[t] for t in r.texts])
            return esi_protocol.Arrays(pooled * scale, encode_cases([c.case for c in r.cases]),
                                       scale_heads.complaint_similarity(pooled, complaints), r, esi_protocol.rule_floors(r.cases))

        return arrays(self.train), arrays(self.valid), scale


def study(data: Path, seed: int = 0, limit: int | None = None) -> Study:
    import torch
    from tokenizers import Tokenizer

    from edge.clinical.abbreviations import Abbreviations, table_rows
    from export import encoders, modeling
    from export.esi_build import ABBREVIATIONS_CSV, _normalise, complaint_names
    from export.nhamcs_data import load_years, rows
    from export.teacher import TextEncoder
    from export.train import seed_everything

    torch.set_num_threads(2)
    seed_everything(seed)
    table = Abbreviations.from_rows(table_rows(data / ABBREVIATIONS_CSV))
    years = load_years(data)
    train = _normalise(rows(years, (2016, 2017, 2018)), table)
    valid = _normalise(rows(years, (2019,)), table)
    if limit:  # a seeded sample keeps all years and levels in proportion
        pick = np.random.default_rng(seed).choice(len(train.cases), size=min(limit, len(train.cases)), replace=False)
        train.cases = [train.cases[i] for i in sorted(pick)]
    source = encoders.student()
    encoder = modeling.load_encoder(source.path)
    tokenizer = Tokenizer.from_file(str(source.path / "tokenizer.json"))
    return Study(train, valid, complaint_names(data), encoder, tokenizer, TextEncoder(encoder, tokenizer, 0, "[PAD]", 32))


def frozen_arrays(data: Path, seed: int = 0) -> tuple[esi_protocol.Arrays, esi_protocol.Arrays]:
    """2016-2018 and 2019 embedded by the frozen student, as the shipped ESI heads read them."""
    train, valid, _ = study(data, seed).arrays("frozen")
    return train, valid


def run(data: Path, layers: int = 2, epochs: int = 1, seed: int = 0, limit: int | None = None) -> dict[str, Any]:
    import torch
    import torch.nn.functional as F
    from tqdm import tqdm

    from export.modeling import mean_pool
    from export.train import warmup_linear

    setup = study(data, seed, limit)
    train, encoder, tokenizer = setup.train, setup.encoder, setup.tokenizer

    def evaluate(tag: str) -> dict[str, Any]:
        train_arrays, valid_arrays, scale = setup.arrays(tag)
        chosen = esi_protocol.choose(train_arrays, valid_arrays, scale_heads.ScaleHeadConfig(seed=seed))
        card = chosen["validation"]
        scales[tag] = scale
        return {"chosen": {k: v for k, v in chosen["decision"].items() if k != "cost_matrix"}, "switch": chosen["switch"],
                "accuracy": card["accuracy"], "under_triage": card["under_triage"], "critical_recall": card["critical_recall"],
                "outcome_recall": card["critical_outcome"]["recall_level_1_2"], "alarm": card["critical_outcome"]["share_level_1_2"],
                "admitted_critical_recall": card["admitted"]["critical_recall"], "settings_compared": chosen["settings_compared"]}

    scales: dict[str, float] = {}
    started = time.perf_counter()
    frozen = evaluate("frozen")
    # Fine-tune the top layers with a joint level + outcome head on the training years.
    for param in encoder.parameters():
        param.requires_grad_(False)
    for layer in encoder.encoder.layer[-layers:]:
        for param in layer.parameters():
            param.requires_grad_(True)
    features = torch.as_tensor(encode_cases([c.case for c in train.cases]), dtype=torch.float32)
    levels = torch.as_tensor(train.levels - 1)
    outcome = torch.as_tensor(train.outcome, dtype=torch.float32)
    head = scale_heads.ScaleHeads(384, features.shape[1], 0, 0.1)
    params = [p for p in encoder.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW([{"params": params, "lr": 5e-5}, {"params": head.parameters(), "lr": 2e-3}], weight_decay=0.01)
    batch = 64
    steps = epochs * int(np.ceil(len(levels) / batch))
    scheduler = warmup_linear(optimizer, steps)
    tokenizer.enable_truncation(max_length=32)
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
    texts = train.texts
    generator = torch.Generator().manual_seed(seed)
    encoder.train()
    head.train()
    with tqdm(total=steps, desc="fine-tune", mininterval=5.0, file=sys.stderr) as bar:
        for _ in range(epochs):
            order = torch.randperm(len(levels), generator=generator)
            for start in range(0, len(levels), batch):
                index = order[start:start + batch]
                encoded = tokenizer.encode_batch([texts[i] for i in index.tolist()])
                ids = torch.as_tensor([e.ids for e in encoded])
                mask = torch.as_tensor([e.attention_mask for e in encoded])
                pooled = mean_pool(encoder(input_ids=ids, attention_mask=mask).last_hidden_state, mask)
                level_logits, outcome_logit = head(pooled * scales["frozen"], features[index], pooled[:, :0])
                loss = F.cross_entropy(level_logits, levels[index]) + F.binary_cross_entropy_with_logits(
                    outcome_logit[:, 0], outcome[index], pos_weight=torch.tensor(5.0))
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                scheduler.step()
                bar.update(1)
    encoder.eval()
    finetune_s = time.perf_counter() - started
    tuned = evaluate("fine-tuned")
    return {"data": "NHAMCS: train 2016-2018, compared on 2019 (2020 untouched)", "frozen": frozen,
            f"fine-tuned top {layers} layers, {epochs} epoch(s)": tuned, "seconds": round(finetune_s, 1),
            "train_rows": len(levels)}


def main(argv: list[str] | None = None) -> int:
    from export.data import data_root

    parser = argparse.ArgumentParser(prog="edge-export finetune-study", description=__doc__)
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--limit", type=int, default=None, help="training rows (quick runs)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    result = json.dumps(run(data_root(args.data), args.layers, args.epochs, limit=args.limit), indent=2)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(result + "\n", encoding="utf-8")
    print(result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
