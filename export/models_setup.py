"""The two encoders a build uses: the real pair (mpnet teacher, pruned MiniLM student, from pip
packages) or the smoke pair (tiny random BERTs from a config over a vocabulary built from the
data). Both give the teacher's embeddings of every text once, and a student factory."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from tokenizers import Tokenizer

from export import modeling, vocab
from export.data import ED_SHORTHAND, Corpus
from export.student import StudentFactory
from export.teacher import TextEncoder

POSITIONS = 64  # position rows kept: max_seq_len 32 with room to raise it without a rebuild of the table


@dataclass
class Setup:
    teacher: TextEncoder
    teacher_embeddings: np.ndarray  # [n labelled, D]
    rfv_embeddings: np.ndarray  # [n transfer texts, D]
    student: StudentFactory
    vocab_size: int
    base_model: dict[str, Any]
    teacher_model: dict[str, Any]
    shrink: dict[str, Any] = field(default_factory=dict)


def _embed_all(teacher: TextEncoder, corpus: Corpus, cache_key: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The frozen teacher's embeddings of every text; with ``cache_key`` (the encoder's package
    pins) they are cached on disk by a hash of key, length limit and texts — deterministic, and
    the slowest step of a rebuild on a shared CPU."""
    path = None
    if cache_key:
        import hashlib

        from export.encoders import cache_dir

        digest = hashlib.sha256("\x1f".join([cache_key, str(teacher.max_len), *corpus.texts, "\x1e",
                                              *corpus.rfv_texts]).encode("utf-8")).hexdigest()[:24]
        path = cache_dir() / f"teacher-embeddings-{digest}.npz"
        if path.is_file():
            stored = np.load(path)
            return stored["labelled"], stored["rfv"]
    labelled = teacher.embed(corpus.texts, desc="teacher embed (labelled)")
    rfv = teacher.embed(corpus.rfv_texts, desc="teacher embed (transfer)") if corpus.rfv_texts else labelled[:0]
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, labelled=labelled, rfv=rfv)
    return labelled, rfv


def real_setup(config, corpus: Corpus) -> Setup:
    from export import encoders

    teacher_source, student_source = encoders.teacher(), encoders.student()
    teacher = TextEncoder.from_folder(modeling.load_encoder(teacher_source.path), teacher_source.path, config.max_seq_len)
    labelled, rfv = _embed_all(teacher, corpus, cache_key=" ".join(teacher_source.packages))
    original = (student_source.path / "tokenizer.json").read_text(encoding="utf-8")
    # Every text the ESI heads read (NHAMCS reason-for-visit labels, standard complaint names,
    # shorthand expansions) keeps its original pieces, so pruning never changes what they embed to.
    extra = list(getattr(config, "prune_extra", []) or [])
    pruned = vocab.prune(original, corpus.texts + corpus.rfv_texts + ED_SHORTHAND.split() + extra, config.keep_frequent)
    layers = config.student_layers

    def make_encoder() -> torch.nn.Module:
        encoder = modeling.load_encoder(student_source.path, keep_layers=layers)
        modeling.prune_embeddings(encoder, pruned.kept_ids, POSITIONS)
        return encoder

    factory = StudentFactory(make_encoder, pruned.tokenizer_json, pruned.pad_id, pruned.pad_token)
    original_vocab = Tokenizer.from_str(original).get_vocab_size()
    return Setup(
        teacher, labelled, rfv, factory, len(pruned.kept_ids),
        base_model=student_source.manifest_entry(),
        teacher_model={**teacher_source.manifest_entry(), "use": "frozen sentence encoder + fusion head (soft labels)"},
        shrink={"vocabulary": {"original": original_vocab, "kept": len(pruned.kept_ids),
                               "keep_frequent": config.keep_frequent,
                               "rule": "specials + Latin characters/##characters + most frequent pieces + every piece "
                                       "the labelled complaints, NHAMCS reason-for-visit texts and ED shorthand use"},
                "layers": {"original": 6, "kept": layers or 6},
                "positions": {"original": 512, "kept": POSITIONS}},
    )


def smoke_setup(config, corpus: Corpus) -> Setup:
    tokenizer_json = vocab.build_wordpiece(corpus.texts + corpus.rfv_texts)
    size = Tokenizer.from_str(tokenizer_json).get_vocab_size()
    teacher = TextEncoder(modeling.tiny_bert(size, config.seed + 1, POSITIONS), Tokenizer.from_str(tokenizer_json),
                          0, "[PAD]", config.max_seq_len)
    labelled, rfv = _embed_all(teacher, corpus)
    factory = StudentFactory(lambda: modeling.tiny_bert(size, config.seed, POSITIONS), tokenizer_json, 0, "[PAD]")
    entry = {"name": "tiny random BERT (smoke build, from transformers.BertConfig)", "license": "Apache-2.0",
             "package": None}
    return Setup(teacher, labelled, rfv, factory, size, base_model=entry, teacher_model=dict(entry),
                 shrink={"vocabulary": {"original": size, "kept": size}})
