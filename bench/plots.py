"""PNG plots of the results (matplotlib, from the ``export`` extra; headless Agg backend)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.backends import ORDER

COLOURS = {"teacher_pytorch_fp32": "#8c564b", "student_pytorch_fp32": "#d62728",
           "student_ort_fp32": "#1f77b4", "shipped_int8_ort": "#2ca02c"}


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(plt: Any, fig: Any, path: Path) -> str:
    """Lay out, write and close one figure; the file name goes into the summary."""
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path.name


def latency_vs_tokens(floor: dict[str, Any], rows: list[dict[str, Any]], out: Path) -> str:
    plt = _plt()
    threads = sorted({r["threads"] for r in rows})
    fig, axes = plt.subplots(1, len(threads), figsize=(6 * len(threads), 4.5), squeeze=False, sharey=True)
    floors = floor.get("by_threads", {})
    for ax, t in zip(axes[0], threads):
        for name in ORDER:
            points = sorted((r["tokens"], r["p50_ms"], r["p99_ms"]) for r in rows
                            if r["backend"] == name and r["threads"] == t and r["input"] != "real")
            if points:
                xs, p50, p99 = zip(*points)
                ax.plot(xs, p50, "o-", color=COLOURS[name], label=f"{name} p50")
                ax.plot(xs, p99, ":", color=COLOURS[name], alpha=0.6)
        for key, style, label in (("by_tokens", "--", "int8 compute floor"), ("by_tokens_fp32", "--", "fp32 compute floor")):
            floor = floors.get(str(t), {}).get(key, {})
            if floor:
                xs = sorted(int(k) for k in floor)
                ax.plot(xs, [floor[str(x)] for x in xs], style, color="k" if key == "by_tokens" else "0.55", label=label)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("tokens")
        ax.set_title(f"{t} thread(s); dotted = p99")
        ax.grid(True, which="both", alpha=0.3)
    axes[0][0].set_ylabel("latency per inference (ms)")
    axes[0][0].legend(fontsize=8)
    return _save(plt, fig, out / "latency_vs_tokens.png")


def median_length_bars(summary: dict[str, Any], out: Path) -> str:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    names = [n for n in ORDER if n in summary["backends"]]
    width = 0.38
    for k, t in enumerate(("1", "2")):
        values = [summary["backends"][n]["by_threads"].get(t, {}).get("p50_ms") for n in names]
        xs = [i + (k - 0.5) * width for i in range(len(names))]
        bars = ax.bar([x for x, v in zip(xs, values) if v], [v for v in values if v], width,
                      label=f"{t} thread(s)", color=["#4c72b0", "#dd8452"][k])
        for bar, name in zip(bars, [n for n, v in zip(names, values) if v]):
            ratio = summary["backends"][name]["by_threads"][t].get("p50_vs_shipped")
            ax.annotate(f"{ratio:.1f}×" if ratio else "", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                        ha="center", va="bottom", fontsize=8)
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels([n.replace("_", "\n", 1) for n in names], fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("p50 ms at the median complaint length")
    ax.set_title(f"Median complaint ({summary['inputs']['median_tokens']} tokens); labels = × shipped bundle")
    ax.legend()
    return _save(plt, fig, out / "median_length_latency.png")


def service_curves(service: dict[str, Any], out: Path) -> str:
    plt = _plt()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    for run, style in ((service.get("normal"), "-"), (service.get("hot"), "--"), (service.get("critical"), ":")):
        if not run:
            continue
        levels = run["levels"]
        cs = [r["concurrency"] for r in levels]
        ax1.plot(cs, [r["throughput_rps"] for r in levels], "o" + style, label=f"{run['label']} all answers")
        ax1.plot(cs, [r["model_answers_rps"] for r in levels], "x" + style, label=f"{run['label']} model answers")
        ax2.plot(cs, [r["p50_ms"] for r in levels], "o" + style, label=f"{run['label']} p50")
        ax2.plot(cs, [r["p99_ms"] for r in levels], "s" + style, label=f"{run['label']} p99")
    normal = service.get("normal")
    if normal and normal["levels"]:
        ax2.axhline(normal["levels"][0]["deadline_ms"], color="k", lw=0.8, label="deadline")
    ax1.set_xlabel("concurrent clients")
    ax1.set_ylabel("requests / s")
    ax1.legend(fontsize=8)
    ax2.set_xlabel("concurrent clients")
    ax2.set_ylabel("end-to-end latency (ms)")
    ax2.set_yscale("log")
    ax2.legend(fontsize=8)
    for ax in (ax1, ax2):
        ax.set_xscale("log", base=2)
        ax.grid(True, alpha=0.3)
    return _save(plt, fig, out / "service_load.png")


def service_rss(service: dict[str, Any], out: Path) -> str:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 3.8))
    for key in ("normal", "hot", "critical"):
        run = service.get(key)
        if run and run["rss_samples"]:
            ax.plot([s["t_s"] for s in run["rss_samples"]], [s["rss_mb"] for s in run["rss_samples"]], label=run["label"])
    ax.set_xlabel("seconds since load start (levels run back to back, rising concurrency)")
    ax.set_ylabel("server RSS (MiB)")
    ax.grid(True, alpha=0.3)
    ax.legend()
    return _save(plt, fig, out / "service_rss.png")


def roofline_vs_measured(floor: dict[str, Any], out: Path) -> str:
    """Measured p50 of the graph as loaded against each graph's roofline floor, per token length;
    markers show which term bounds the floor (o = memory, ^ = compute)."""
    plt = _plt()
    entries = floor.get("by_threads", {})
    fig, axes = plt.subplots(1, len(entries), figsize=(6 * len(entries), 4.5), squeeze=False, sharey=True)
    # The fp32 line lies on the as-loaded one for a weight-only int8 graph (folded to fp32 at load): thin and dotted on top.
    styles = {"as_loaded": ("k", "--", 2.5, "roofline floor, as loaded"),
              "int8_stored": ("#2ca02c", "--", 1.5, "roofline floor, int8 kept in memory"),
              "fp32": ("#ff7f0e", ":", 1.2, "roofline floor, fp32 graph")}
    for ax, (t, entry) in zip(axes[0], sorted(entries.items())):
        measured = entry.get("shipped_p50_ms", {})
        xs = sorted(int(k) for k in measured)
        ax.plot(xs, [measured[str(x)] for x in xs], "o-", color="#d62728", label="measured p50, as loaded")
        for variant, (colour, line, width, label) in styles.items():
            cells = entry.get("roofline", {}).get(variant, {})
            pts = sorted((int(k), c["floor_ms"], c["bound"]) for k, c in cells.items() if int(k) <= max(xs or [0]))
            if not pts:
                continue
            ax.plot([p[0] for p in pts], [p[1] for p in pts], line, color=colour, lw=width, label=label)
            for x, y, bound in pts:
                ax.plot(x, y, "o" if bound == "memory" else "^", color=colour, ms=4)
        stream = entry.get("bandwidth", {})
        ax.set_title(f"{t} thread(s); {stream.get('best_gbs')} GB/s, o memory-bound, ^ compute-bound", fontsize=9)
        ax.set_xscale("log", base=2)
        ax.set_xticks(xs, [str(x) for x in xs])
        ax.set_yscale("log")
        ax.set_xlabel("tokens")
        ax.grid(True, which="both", alpha=0.3)
    axes[0][0].set_ylabel("ms per inference")
    axes[0][0].legend(fontsize=8)
    return _save(plt, fig, out / "roofline_vs_measured.png")
