"""The status page for people: the monitors' warning codes in plain words, and the model card in
a few lines (name, version, scale, evaluated figures with the data they were measured on) rather
than the raw quantization manifest. Codes stay in /metrics and the JSON for machines."""

from __future__ import annotations

from typing import Any

# What each monitor warning means for the person looking after the board, and what to do.
WARNING_WORDS: dict[str, str] = {
    "no_temperature_sensors": "No temperature sensors found — the board's thermal protection cannot work.",
    "all_temperature_sensors_broken": "Every temperature sensor is failing — the service assumes the board is hot "
                                      "and runs slower to be safe.",
    "throttle_bits_unknown": "Cannot ask the Raspberry Pi firmware about throttling or under-voltage "
                             "(`vcgencmd` is missing) — power problems will go unnoticed.",
    "cgroup_v2_unavailable": "The service's memory use cannot be watched (cgroup v2 is not available) — "
                             "memory protection relies on system-wide figures only.",
    "memory_controller_missing": "The kernel's memory controller is off — add cgroup_enable=memory to the boot "
                                 "command line so memory pressure can be detected.",
    "memory_limit_unset": "The service has no memory limit — another program could starve it of memory; "
                          "set MemoryMax in its systemd unit.",
    "psi_unavailable": "Memory pressure cannot be measured (PSI is off) — add psi=1 to the boot command line.",
}

# Figures worth a nurse's or manager's glance, in the order shown, with their plain names.
FIGURES = (("accuracy", "Accuracy"), ("under_triage", "Under-triage (less urgent than the experts)"),
           ("critical_recall", "Level 1-2 cases recognised"), ("qwk", "Agreement with experts (weighted kappa)"))
SHIPPED_PATH = "int8 + decision + rules (shipped path)"


def warning_in_words(code: str) -> str:
    return WARNING_WORDS.get(code, f"Board monitor warning: {code.replace('_', ' ')}.")


def _percent(name: str, value: Any) -> str:
    if not isinstance(value, (int, float)):
        return "not measured"
    return f"{value:.2f}" if name == "qwk" else f"{value * 100:.0f} %"


def model_card(manifest: dict[str, Any]) -> dict[str, Any]:
    """``{"name", "version", "scale", "figures": [{"label", "value", "data"}]}`` from a manifest."""
    evaluation = manifest.get("evaluation") or {}
    data = (manifest.get("training_data") or {}).get("labelled") or {}
    source = data.get("source") or data.get("file") or "the bundle's labelled data"
    rows = f", {data['rows']} cases" if data.get("rows") else ""
    splits = (evaluation.get("cv") or {}).get("splits")
    figures: list[dict[str, str]] = []
    table = evaluation.get("cv_table") or {}
    shipped = next((v for k, v in table.items() if SHIPPED_PATH in k), None)
    if isinstance(shipped, dict):
        measured = f"{source}{rows}; {splits}-fold cross-validation" if splits else f"{source}{rows}"
        for key, label in FIGURES:
            mean = (shipped.get(key) or {}).get("mean") if isinstance(shipped.get(key), dict) else shipped.get(key)
            figures.append({"label": label, "value": _percent(key, mean), "data": measured})
    for view, values in (evaluation.get("missing_field_views_oof") or {}).items():
        if isinstance(values, dict) and "accuracy" in values:
            figures.append({"label": f"Accuracy, {view}", "value": _percent("accuracy", values["accuracy"]),
                            "data": f"{source}{rows}; out-of-fold"})
    if not figures:  # a bundle without the export's CV table: show its recorded figures as they are
        figures = [{"label": label, "value": f"{value:g}", "data": "as recorded in the bundle"}
                   for label, value in _numbers(evaluation, "")][:12]
    scales = manifest.get("scales") or {}
    esi = (scales.get("esi") or {}).get("evaluation") or {}
    if esi:
        data = esi.get("data", "NHAMCS")
        for key, label in FIGURES:
            if isinstance(esi.get(key), (int, float)):
                figures.append({"label": f"ESI: {label}", "value": _percent(key, esi[key]), "data": data})
        outcome = esi.get("critical_outcome") or {}
        if isinstance(outcome.get("recall_level_1_2"), (int, float)):
            figures.append({"label": "ESI: critical care or death called level 1-2",
                            "value": f"{_percent('recall', outcome['recall_level_1_2'])} while calling "
                                     f"{_percent('share', outcome.get('share_level_1_2'))} of visits level 1-2",
                            "data": data})
    scale = ", ".join(scales) if scales else (manifest.get("scale") or "ktas")
    return {"name": manifest.get("name"), "version": manifest.get("version"), "scale": str(scale).upper(),
            "figures": figures}


def _numbers(tree: Any, prefix: str) -> list[tuple[str, float]]:
    if isinstance(tree, dict):
        return [pair for key, value in tree.items() for pair in _numbers(value, f"{prefix}{key}.")]
    if isinstance(tree, (int, float)) and not isinstance(tree, bool):
        return [(prefix.rstrip("."), float(tree))]
    return []
