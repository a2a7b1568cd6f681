"""The report's charts: matplotlib figures rendered to SVG text, so a report embeds them and needs no network.

Each function takes the groups of one setting (task, dataset, device) and returns a `Chart`, or None when no
group has anything to draw. A group without a value is left out of a chart and named in its caption; it is never
drawn as zero. Every figure is built on its own `Figure` (no pyplot state), with text kept as text.
"""
from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np
from matplotlib import rc_context
from matplotlib.figure import Figure

from bench import aggregate, stats
from bench.catalogue import ACCURACY, FIRST_STEP, GPU_MEMORY, HOST_MEMORY, PROCESS_MEMORY, TRAIN_SPEED, Metric
from bench.report.content import interval

STYLE = {"svg.fonttype": "none", "svg.hashsalt": "bench", "font.size": 9, "axes.spines.top": False,
         "axes.spines.right": False, "axes.grid": True, "grid.color": "#e5e7eb", "axes.axisbelow": True,
         "axes.edgecolor": "#9ca3af", "axes.labelcolor": "#374151", "xtick.color": "#4b5563",
         "ytick.color": "#4b5563", "font.family": ["DejaVu Sans", "sans-serif"]}
PALETTE = ("#2563eb", "#dc2626", "#059669", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#65a30d", "#4b5563",
           "#ea580c")
PHASES = (("import", ("startup_s", "import_s")), ("data", ("data_s",)), ("build", ("build_s",)),
          ("first step / compile", (FIRST_STEP.name,)), ("train", ("train_s", "-" + FIRST_STEP.name)),
          ("eval", ("eval_s",)), ("inference", ("inference_s",)))


@dataclass(frozen=True)
class Chart:
    title: str
    svg: str
    caption: str


def colors(labels: list[str]) -> dict[str, str]:
    """A stable colour per framework name, the same in every chart of a report."""
    return {label: PALETTE[index % len(PALETTE)] for index, label in enumerate(sorted(set(labels)))}


def _text(label: str) -> str:
    return label.replace("$", r"\$")  # a literal dollar sign, never matplotlib's math mode


def _render(figure: Figure) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    svg = buffer.getvalue()
    return svg[svg.index("<svg"):]


def _left_out(groups: list[aggregate.Group]) -> str:
    """Who a chart leaves out, and why: a failed cell is named, never drawn as zero."""
    why = [f"{g.label} ({'/'.join(sorted({r['status'] for r in g.records})) if not g.ok else 'not recorded'})"
           for g in groups]
    return f"Not shown: {', '.join(why)}." if why else ""


def _bars(groups, value_of, title, xlabel, palette, caption, number_format=",.0f", dots=False) -> Chart | None:
    """Horizontal bars from zero, each labelled with its value (or dots, where a zero baseline would hide the
    differences), one row per group; VALUE_OF gives (value, low, high) or None."""
    rows = [(g, value_of(g)) for g in groups]
    shown = [(g, v) for g, v in rows if v is not None]
    if not shown:
        return None
    with rc_context(STYLE):
        figure = Figure(figsize=(6.4, 0.42 * len(shown) + 1.1))
        axes = figure.subplots()
        positions = np.arange(len(shown))
        values = np.array([v[0] for _, v in shown])
        if dots:
            axes.scatter(values, positions, color=[palette[g.framework] for g, _ in shown], s=36, zorder=3)
        else:
            axes.barh(positions, values, color=[palette[g.framework] for g, _ in shown], height=0.6)
            ends = [max(v[0], v[2] or 0) for _, v in shown]
            for position, end, value in zip(positions, ends, values):
                axes.annotate(format(value, number_format), (end, position), xytext=(4, 0), fontsize=8,
                              textcoords="offset points", va="center", color="#374151")
            axes.set_xlim(0, max(ends) * 1.18)
        errors = [(i, v) for i, (_, v) in enumerate(shown) if v[1] is not None and v[2] is not None]
        if errors:
            axes.errorbar([v[0] for _, v in errors], [i for i, _ in errors], fmt="none", ecolor="#111827",
                          capsize=3, linewidth=1,
                          xerr=np.array([[v[0] - v[1] for _, v in errors], [v[2] - v[0] for _, v in errors]]))
        axes.set_yticks(positions, [_text(g.label) for g, _ in shown])
        axes.invert_yaxis()
        axes.set_xlabel(xlabel)
        axes.grid(axis="y", visible=False)
        svg = _render(figure)
    return Chart(title, svg, " ".join(filter(None, [caption, _left_out([g for g, v in rows if v is None])])))


def throughput(groups: list[aggregate.Group], palette: dict[str, str]) -> Chart | None:
    def value_of(group):
        found = interval(group, TRAIN_SPEED)
        return None if found is None else (found.median, found.low, found.high)
    return _bars(groups, value_of, "Training throughput", f"training {TRAIN_SPEED.unit} (steady state)", palette,
                 "Bars: median; whiskers: its confidence interval (the range below 6 values).")


def accuracy(groups: list[aggregate.Group], palette: dict[str, str]) -> Chart | None:
    def value_of(group):
        central = group.central(ACCURACY.name)
        trials = group.ok[0].get("test_samples") if group.ok else None
        if central is None or not trials:
            return None
        spread = 1.96 * math.sqrt(central * (1 - central) / trials)
        return central, max(0.0, central - spread), min(1.0, central + spread)
    return _bars(groups, value_of, "Test accuracy", "test accuracy after the last epoch", palette,
                 "Dots: median; whiskers: the 95 % sampling interval of an accuracy measured on that many test "
                 "samples (the axis does not start at 0).", number_format=".4f", dots=True)


def memory(groups: list[aggregate.Group], palette: dict[str, str]) -> list[Chart]:
    older = any(host_memory(g) is PROCESS_MEMORY for g in groups if g.ok)
    charts = [_bars(groups, lambda g: _single(g, host_memory(g)), "Peak host memory",
                    f"{HOST_MEMORY.unit}, peak of the cell's processes (summed PSS, else RSS)", palette,
                    "Older records without a sampled process-tree peak: the process's own." if older else ""),
              _bars(groups, lambda g: _single(g, GPU_MEMORY), "Peak GPU memory",
                    f"{GPU_MEMORY.unit} above the idle context (NVML)", palette, "")]
    return [chart for chart in charts if chart is not None]


def host_memory(group: aggregate.Group) -> Metric:
    """The sampled tree peak; older records have only the process's own high-water mark."""
    return HOST_MEMORY if group.values(HOST_MEMORY.name) else PROCESS_MEMORY


def _single(group: aggregate.Group, metric: Metric):
    central = group.central(metric.name)
    return None if central is None else (central / metric.scale, None, None)


def pareto(groups: list[aggregate.Group], palette: dict[str, str]) -> Chart | None:
    """Accuracy against training throughput; the front: groups no other beats significantly on one axis without
    losing on the other (bench.stats.compare decides each)."""
    speed, correct = TRAIN_SPEED, ACCURACY
    shown = [g for g in groups if g.central(speed.name) is not None and g.central(correct.name) is not None]
    if len(shown) < 2:
        return None

    def beats(a, b) -> bool:
        verdicts = [stats.compare(a.evidence(c), b.evidence(c)).winner for c in (speed, correct)]
        return "a" in verdicts and "b" not in verdicts
    front = [g for g in shown if not any(beats(other, g) for other in shown if other is not g)]
    with rc_context(STYLE):
        figure = Figure(figsize=(6.4, 3.6))
        axes = figure.subplots()
        for group in shown:
            on_front = group in front
            axes.scatter(group.central(speed.name), group.central(correct.name), s=48 if on_front else 28,
                         color=palette[group.framework], edgecolors="#111827" if on_front else "none", zorder=3)
            axes.annotate(_text(group.label), (group.central(speed.name), group.central(correct.name)),
                          textcoords="offset points", xytext=(5, 4), fontsize=8, color="#374151")
        ordered = sorted(front, key=lambda g: g.central(speed.name))
        axes.plot([g.central(speed.name) for g in ordered], [g.central(correct.name) for g in ordered],
                  color="#111827", linewidth=1, linestyle="--", zorder=2)
        axes.set_xscale("log")
        axes.set_xlabel(f"training {TRAIN_SPEED.unit} (log scale)")
        axes.set_ylabel("test accuracy")
        svg = _render(figure)
    names = ", ".join(g.label for g in ordered)
    return Chart("Accuracy against throughput", svg, f"Outlined and joined: the Pareto front ({names}) — no other "
                 "framework is significantly better on one axis without being significantly worse on the other.")


def learning_curves(groups: list[aggregate.Group], palette: dict[str, str]) -> Chart | None:
    curves = {g.label: (g, _epoch_medians(g)) for g in groups}
    curves = {label: (g, points) for label, (g, points) in curves.items() if points}
    if not curves:
        return None
    with rc_context(STYLE):
        figure = Figure(figsize=(8.8, 3.2), layout="constrained")
        by_epoch, by_time = figure.subplots(1, 2, sharey=True)
        for label, (group, points) in curves.items():
            epochs, times, values = zip(*points)
            style = {"color": palette[group.framework], "marker": "o", "markersize": 3, "linewidth": 1.4,
                     "linestyle": "--" if group.mode == "compiled" else "-"}
            by_epoch.plot(epochs, values, label=_text(label), **style)
            by_time.plot(times, values, **style)
        by_epoch.set_xlabel("epoch")
        by_epoch.set_ylabel("test accuracy")
        by_epoch.xaxis.get_major_locator().set_params(integer=True)
        by_time.set_xlabel("training wall-clock, s (evaluation excluded)")
        figure.legend(loc="outside right upper", frameon=False, fontsize=8)
        svg = _render(figure)
    missing = [g for g in groups if g.label not in curves]
    return Chart("Learning curves", svg, " ".join(filter(None, [
        "Test accuracy after each epoch, by epoch and by training time (median over repeats).",
        _left_out(missing)])))


def _epoch_medians(group: aggregate.Group) -> list[tuple[int, float, float]]:
    per_epoch: dict[int, list[tuple[float, float]]] = {}
    for record in group.ok:
        for epoch in record.get("epochs_detail") or []:
            if epoch.get("test_accuracy") is not None and epoch.get("cumulative_train_time_s") is not None:
                per_epoch.setdefault(epoch["epoch"], []).append((epoch["cumulative_train_time_s"],
                                                                  epoch["test_accuracy"]))
    return [(epoch, float(np.median([t for t, _ in pairs])), float(np.median([a for _, a in pairs])))
            for epoch, pairs in sorted(per_epoch.items())]


def phases(groups: list[aggregate.Group], palette: dict[str, str]) -> Chart | None:
    """Where a cell's wall-clock goes, phase by phase (median over repeats), as stacked bars."""
    rows, unrecorded = {}, set()
    for group in groups:
        parts = [_phase_seconds(group, fields) for _, fields in PHASES]
        if any(part is not None for part in parts):
            rows[group.label] = [part or 0.0 for part in parts]
            unrecorded.update(name for (name, _), part in zip(PHASES, parts) if part is None)
    if not rows:
        return None
    phase_colors = ("#94a3b8", "#cbd5e1", "#a78bfa", "#f59e0b", "#2563eb", "#10b981", "#ec4899")
    with rc_context(STYLE):
        figure = Figure(figsize=(6.4, 0.42 * len(rows) + 1.3), layout="constrained")
        axes = figure.subplots()
        left = np.zeros(len(rows))
        positions = np.arange(len(rows))
        for index, (name, _) in enumerate(PHASES):
            widths = np.array([parts[index] for parts in rows.values()])
            axes.barh(positions, widths, left=left, height=0.6, color=phase_colors[index], label=name)
            left += widths
        axes.set_yticks(positions, [_text(label) for label in rows])
        axes.invert_yaxis()
        axes.set_xlabel("seconds")
        axes.grid(axis="y", visible=False)
        figure.legend(loc="outside lower center", ncol=4, frameon=False, fontsize=8)
        svg = _render(figure)
    missing = [g for g in groups if g.label not in rows]
    return Chart("Where the time goes", svg, " ".join(filter(None, [
        "Per cell: interpreter start and import, data loading, model build, the first step alone (tracing and "
        "compilation land here), the rest of training, per-epoch evaluation, inference measurements.",
        f"Not recorded in some cells, so not drawn for them: {', '.join(sorted(unrecorded))}." if unrecorded
        else "", _left_out(missing)])))


def _phase_seconds(group: aggregate.Group, fields: tuple[str, ...]) -> float | None:
    total = 0.0
    for field in fields:
        value = group.central(field.lstrip("-"))
        if value is None:
            return None
        total += -value if field.startswith("-") else value
    return max(total, 0.0)


def batch_sweep(groups: list[aggregate.Group], palette: dict[str, str]) -> Chart | None:
    """A batch-size sweep (groups of one task, dataset, device and precision at several batch sizes): training
    throughput, the time of one training step and peak memory against the batch, one line per framework and mode
    (median over repeats; a batch where a group has no value is left out of its line, never drawn as zero)."""
    memory_metric = GPU_MEMORY if any(g.device == "cuda" for g in groups) else HOST_MEMORY
    panels = (("train samples/s", lambda g: g.central(TRAIN_SPEED.name)),
              ("ms per training step", lambda g: g.batch_size / g.central(TRAIN_SPEED.name) * 1000
               if g.central(TRAIN_SPEED.name) else None),
              (f"peak {'GPU' if memory_metric is GPU_MEMORY else 'host'} memory, MiB",
               lambda g: g.central(memory_metric.name) / memory_metric.scale
               if g.central(memory_metric.name) is not None else None))
    lines: dict[str, list[aggregate.Group]] = {}
    for group in sorted(groups, key=lambda g: g.batch_size):
        lines.setdefault(group.label, []).append(group)
    drawn = {label: members for label, members in lines.items() if any(g.central(TRAIN_SPEED.name) for g in members)}
    if not drawn:
        return None
    with rc_context(STYLE):
        figure = Figure(figsize=(10.5, 3.2), layout="constrained")
        for axes, (ylabel, value_of) in zip(figure.subplots(1, 3), panels):
            for label, members in drawn.items():
                points = [(g.batch_size, value_of(g)) for g in members if g.ok]
                points = [(batch, value) for batch, value in points if value is not None]
                if points:
                    batches, values = zip(*points)
                    axes.plot(batches, values, marker="o", markersize=3, linewidth=1.4,
                              color=palette[members[0].framework], label=_text(label),
                              linestyle="--" if members[0].mode == "compiled" else "-")
            axes.set_xscale("log", base=2)
            batches = sorted({g.batch_size for g in groups})
            axes.set_xticks(batches, [str(batch) for batch in batches])
            axes.minorticks_off()
            axes.set_xlabel("training batch size")
            axes.set_ylabel(ylabel)
        figure.legend(*figure.axes[0].get_legend_handles_labels(), loc="outside right upper", frameon=False,
                      fontsize=8)
        svg = _render(figure)
    spec_batch = {g.batch_size for g in groups if not g.outside_spec}
    return Chart("Batch-size sweep", svg, " ".join(filter(None, [
        "Steady-state training throughput, the time of one step (batch / throughput) and peak memory at each batch "
        "size (median over repeats).",
        f"Batch {', '.join(map(str, sorted(spec_batch)))} is the spec's; the others are outside it (accuracy not "
        "compared)." if spec_batch else "Every batch here is outside the spec (accuracy not compared).",
        _left_out([members[0] for label, members in lines.items() if label not in drawn])])))


def for_setting(groups: list[aggregate.Group], palette: dict[str, str]) -> list[Chart]:
    """Every chart that has something to show for one setting, in the report's order."""
    found = [throughput(groups, palette), accuracy(groups, palette), *memory(groups, palette),
             pareto(groups, palette), learning_curves(groups, palette), phases(groups, palette)]
    return [chart for chart in found if chart is not None]
