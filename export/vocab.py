"""Vocabulary pruning: keep the WordPiece tokens the triage domain needs, drop the rest.

In a 6-layer, 384-wide encoder the 30,522-row word-embedding table is about half the weights,
and most of its rows (sub-words of other domains, other scripts, ``[unused]`` slots) are never
looked up for chief complaints. We keep: the special tokens, every single character and
``##``-character of the Latin alphabet range (so any word still tokenizes — into smaller pieces
if its whole form was pruned — and never becomes ``[UNK]``), the most frequent general-English
pieces (WordPiece vocabularies are ordered roughly by frequency), and every token that the
domain corpus (labelled complaints + the NHAMCS reason-for-visit vocabulary) actually uses.
The tokenizer keeps its normalizer, pre-tokenizer and template; only ids change.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Iterable, Sequence

from tokenizers import Tokenizer


@dataclass(frozen=True)
class PrunedVocab:
    tokenizer_json: str  # the new tokenizer.json text
    kept_ids: list[int]  # old id of each new id, in new-id order (rows to gather from embeddings)
    pad_id: int
    pad_token: str


def _is_latin_char_piece(token: str) -> bool:
    body = token[2:] if token.startswith("##") else token
    return len(body) == 1 and ord(body) < 0x250  # Basic Latin .. Latin Extended-B, plus symbols


def prune(tokenizer_json: str, corpus: Iterable[str], keep_frequent: int = 6000) -> PrunedVocab:
    """Prune a WordPiece ``tokenizer.json`` to the domain. ``keep_frequent`` counts the first
    non-special, non-character vocabulary entries kept regardless of the corpus."""
    spec = json.loads(tokenizer_json)
    if spec["model"]["type"] != "WordPiece":
        raise ValueError("vocabulary pruning supports WordPiece tokenizers only")
    vocab: dict[str, int] = spec["model"]["vocab"]
    by_id = sorted(vocab.items(), key=lambda item: item[1])
    tokenizer = Tokenizer.from_str(tokenizer_json)
    tokenizer.no_padding()
    tokenizer.no_truncation()

    keep: set[int] = {t["id"] for t in spec.get("added_tokens", [])}
    specials = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "<s>", "</s>", "<pad>", "<unk>", "<mask>",
                spec["model"].get("unk_token", "[UNK]")}
    keep |= {vocab[t] for t in specials if t in vocab}
    frequent = 0
    for token, index in by_id:
        if _is_latin_char_piece(token):
            keep.add(index)
        elif not (token.startswith("[") and token.endswith("]")) and frequent < keep_frequent:
            keep.add(index)
            frequent += 1
    for encoding in tokenizer.encode_batch(list(corpus)):
        keep.update(encoding.ids)

    kept_ids = sorted(keep)
    new_id = {old: new for new, old in enumerate(kept_ids)}
    token_of = {index: token for token, index in vocab.items()}
    spec["model"]["vocab"] = {token_of[old]: new for old, new in new_id.items()}
    for added in spec.get("added_tokens", []):
        added["id"] = new_id[added["id"]]
    _remap_post_processor(spec.get("post_processor"), new_id)
    pad_token = (spec.get("padding") or {}).get("pad_token", "[PAD]")
    pad_id = spec["model"]["vocab"][pad_token]
    spec["padding"] = None  # the runtime sets padding and truncation from the manifest
    spec["truncation"] = None
    text = json.dumps(spec, ensure_ascii=False)
    Tokenizer.from_str(text)  # must load
    return PrunedVocab(text, kept_ids, pad_id, pad_token)


def _remap_post_processor(processor: dict | None, new_id: dict[int, int]) -> None:
    if not processor:
        return
    if processor.get("type") == "TemplateProcessing":
        for special in processor["special_tokens"].values():
            special["ids"] = [new_id[i] for i in special["ids"]]
    elif processor.get("type") in ("RobertaProcessing", "BertProcessing"):
        for key in ("sep", "cls"):
            token, index = processor[key]
            processor[key] = [token, new_id[index]]
    elif processor.get("type") == "Sequence":
        for inner in processor.get("processors", []):
            _remap_post_processor(inner, new_id)


def build_wordpiece(corpus: Sequence[str], extra_words: Sequence[str] = ()) -> str:
    """A small BERT-style WordPiece ``tokenizer.json`` from the corpus words (for the smoke
    build's tiny random BERT): specials, Latin characters and ``##`` characters, every word seen."""
    from tokenizers import decoders, models, normalizers, pre_tokenizers, processors

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    chars = [chr(c) for c in range(33, 127)]
    normalizer = normalizers.BertNormalizer(lowercase=True)
    pre = pre_tokenizers.BertPreTokenizer()
    words: set[str] = set(extra_words)
    for text in corpus:
        words.update(w for w, _ in pre.pre_tokenize_str(normalizer.normalize_str(text)))
    tokens = specials + chars + [f"##{c}" for c in chars] + sorted(words - set(chars))
    vocab = {t: i for i, t in enumerate(dict.fromkeys(tokens))}
    tokenizer = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    tokenizer.normalizer = normalizer
    tokenizer.pre_tokenizer = pre
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])])
    tokenizer.decoder = decoders.WordPiece()
    return tokenizer.to_str()
