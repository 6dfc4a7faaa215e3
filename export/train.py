"""Training loops: the teacher's fusion head on frozen sentence embeddings, and the student
(encoder + head, all weights) on hard labels and/or the teacher's soft targets.

Loss for a row: ``alpha · KL(teacher_T ‖ student_T) · T²`` where it has soft targets, plus
``(1 - alpha) · CE(label)`` where it has a label (transfer rows have none: label -1).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from export.modeling import FusedClassifier, FusionHead


@dataclass(frozen=True)
class HeadConfig:
    epochs: int = 30
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-2
    dropout: float = 0.5
    seed: int = 0
    # Gaussian noise (in standardised units) on the pooled text vector while training: the head
    # learns not to hinge on differences as small as int8 rounding makes (wider margins).
    input_noise: float = 0.0


@dataclass(frozen=True)
class StudentConfig:
    epochs: int = 4
    batch_size: int = 32
    encoder_lr: float = 8e-5
    head_lr: float = 2e-3
    weight_decay: float = 1e-2
    alpha: float = 0.7  # weight of the distillation term where a row has soft targets
    distill_temperature: float = 2.0
    max_len: int = 32
    seed: int = 0
    trainable_layers: int | None = None  # fine-tune only the top N encoder layers (None: all, embeddings too)


def seed_everything(seed: int) -> None:
    import random

    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def warmup_linear(optimizer: torch.optim.Optimizer, steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up over the first 10 % of steps, then linear decay to zero."""
    warm = max(1, steps // 10)
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min((step + 1) / warm, max(0.0, (steps - step) / max(1, steps - warm))))


def _loss(logits: torch.Tensor, labels: torch.Tensor, soft: torch.Tensor | None, alpha: float, temp: float) -> torch.Tensor:
    has_label = labels >= 0
    total = logits.new_zeros(())
    if soft is not None:
        has_soft = soft.sum(dim=1) > 0
        if has_soft.any():
            log_p = F.log_softmax(logits[has_soft] / temp, dim=1)
            kl = F.kl_div(log_p, soft[has_soft], reduction="batchmean") * temp * temp
            total = total + alpha * kl * has_soft.float().mean()
        label_weight = 1.0 - alpha
    else:
        label_weight = 1.0
    if has_label.any():
        ce = F.cross_entropy(logits[has_label], labels[has_label])
        total = total + label_weight * ce * has_label.float().mean()
    return total


def soften(logits: np.ndarray, temperature: float) -> np.ndarray:
    z = logits / temperature
    z = z - z.max(axis=1, keepdims=True)
    p = np.exp(z)
    return (p / p.sum(axis=1, keepdims=True)).astype(np.float32)


def train_head(embeddings: np.ndarray, features: np.ndarray, labels: np.ndarray, config: HeadConfig,
               soft: np.ndarray | None = None, alpha: float = 0.0, distill_temperature: float = 1.0,
               head: FusionHead | None = None) -> FusionHead:
    """A fusion head on frozen pooled embeddings. ``labels`` 0..4 or -1 (none); with ``soft``
    (teacher probabilities at ``distill_temperature``, zero rows = none) it distils.

    One thread: the ops are tiny, and on a shared CPU a second OpenMP thread that gets
    preempted makes every op wait at the barrier (seen: 1 s per fold became 200 s)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _train_head(embeddings, features, labels, config, soft, alpha, distill_temperature, head)
    finally:
        torch.set_num_threads(threads)


def _train_head(embeddings: np.ndarray, features: np.ndarray, labels: np.ndarray, config: HeadConfig,
                soft: np.ndarray | None, alpha: float, distill_temperature: float,
                head: FusionHead | None) -> FusionHead:
    seed_everything(config.seed)
    head = head or FusionHead(embeddings.shape[1], features.shape[1], config.dropout)
    optimizer = torch.optim.AdamW(head.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    x = torch.as_tensor(embeddings, dtype=torch.float32)
    f = torch.as_tensor(features, dtype=torch.float32)
    y = torch.as_tensor(labels, dtype=torch.long)
    s = torch.as_tensor(soft, dtype=torch.float32) if soft is not None else None
    generator = torch.Generator().manual_seed(config.seed)
    scheduler = warmup_linear(optimizer, config.epochs * int(np.ceil(len(y) / config.batch_size)))
    head.train()
    for _ in range(config.epochs):
        order = torch.randperm(len(y), generator=generator)
        for start in range(0, len(y), config.batch_size):
            batch = order[start:start + config.batch_size]
            inputs = x[batch]
            if config.input_noise > 0:
                inputs = inputs + config.input_noise * torch.randn(inputs.shape, generator=generator)
            loss = _loss(head(inputs, f[batch]), y[batch], s[batch] if s is not None else None, alpha,
                         distill_temperature)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
    head.eval()
    return head


@torch.no_grad()
def head_logits(head: FusionHead, embeddings: np.ndarray, features: np.ndarray) -> np.ndarray:
    head.eval()
    return head(torch.as_tensor(embeddings, dtype=torch.float32), torch.as_tensor(features, dtype=torch.float32)).numpy()


def _encode(tokenizer, texts: Sequence[str], max_len: int, pad_id: int, pad_token: str) -> tuple[torch.Tensor, torch.Tensor]:
    tokenizer.enable_truncation(max_length=max_len)
    tokenizer.enable_padding(pad_id=pad_id, pad_token=pad_token)
    encodings = tokenizer.encode_batch(list(texts))
    return (torch.as_tensor([e.ids for e in encodings], dtype=torch.long),
            torch.as_tensor([e.attention_mask for e in encodings], dtype=torch.long))


def train_student(model: FusedClassifier, tokenizer, pad: tuple[int, str], texts: Sequence[str], features: np.ndarray,
                  labels: np.ndarray, soft: np.ndarray | None, config: StudentConfig, desc: str = "student") -> FusedClassifier:
    """Fine-tune every weight. ``labels`` 0..4 or -1 (no label); ``soft`` rows of zeros = none."""
    seed_everything(config.seed)
    if config.trainable_layers is not None:
        # Freezing the embeddings and lower layers cuts the backward pass (and the optimizer's
        # work on the embedding table) on a shared CPU; the top layers adapt to the domain.
        for param in model.encoder.parameters():
            param.requires_grad_(False)
        for layer in model.encoder.encoder.layer[-config.trainable_layers:] if config.trainable_layers else []:
            for param in layer.parameters():
                param.requires_grad_(True)
    encoder_params = [p for p in model.encoder.parameters() if p.requires_grad]
    groups = [{"params": list(model.head.parameters()), "lr": config.head_lr}]
    if encoder_params:
        groups.append({"params": encoder_params, "lr": config.encoder_lr})
    optimizer = torch.optim.AdamW(groups, weight_decay=config.weight_decay)
    n = len(texts)
    steps = config.epochs * int(np.ceil(n / config.batch_size))
    scheduler = warmup_linear(optimizer, steps)
    generator = torch.Generator().manual_seed(config.seed)
    f = torch.as_tensor(features, dtype=torch.float32)
    y = torch.as_tensor(labels, dtype=torch.long)
    s = torch.as_tensor(soft, dtype=torch.float32) if soft is not None else None
    model.train()
    with tqdm(total=steps, desc=desc, leave=False, mininterval=2.0) as bar:
        for _ in range(config.epochs):
            order = torch.randperm(n, generator=generator)
            for start in range(0, n, config.batch_size):
                batch = order[start:start + config.batch_size]
                ids, mask = _encode(tokenizer, [texts[i] for i in batch.tolist()], config.max_len, *pad)
                logits = model(ids, mask, f[batch])
                loss = _loss(logits, y[batch], s[batch] if s is not None else None, config.alpha,
                             config.distill_temperature)
                optimizer.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                scheduler.step()
                bar.update(1)
    model.eval()
    return model


@torch.no_grad()
def fused_logits(model: FusedClassifier, tokenizer, pad: tuple[int, str], texts: Sequence[str], features: np.ndarray,
                 max_len: int, batch_size: int = 128) -> np.ndarray:
    model.eval()
    out = []
    for start in range(0, len(texts), batch_size):
        ids, mask = _encode(tokenizer, texts[start:start + batch_size], max_len, *pad)
        out.append(model(ids, mask, torch.as_tensor(features[start:start + batch_size], dtype=torch.float32)).numpy())
    return np.concatenate(out) if out else np.zeros((0, 5), dtype=np.float32)
