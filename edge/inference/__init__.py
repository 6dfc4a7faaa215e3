"""Inference: the verified model bundle, the ONNX Runtime session and tokenizer, the triager
(case → result, degraded answers, explanation) and the atomically swappable runtime."""
