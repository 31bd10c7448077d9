"""Inline SVG pictures for the HTML report, drawn in Python: no JavaScript, nothing fetched.

Three pictures: the namespace-to-namespace connectivity heat-grid, internet exposure per
namespace, and a stacked status bar per framework. Every piece of report text placed in the
SVG goes through ``escape``/``quoteattr`` (namespace names and workloads are input data).
Sizes are estimated from character counts (no font metrics): good enough for labels.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from polyfence.compliance.renderers._common import (
    STATUS_LABEL,
    STATUSES,
    allowed_breadth,
    allowed_label,
    workload_namespace,
)

STATUS_COLOURS: dict[str, str] = {
    "pass": "#2e7d32",
    "fail": "#c62828",
    "manual": "#3f51b5",
    "unknown": "#e0a100",
    "not_applicable": "#9e9e9e",
    "error": "#6a1b9a",
}
BAR_ORDER: tuple[str, ...] = ("pass", "fail", "manual", "unknown", "not_applicable", "error")
HEAT: tuple[str, ...] = ("#eef1f4", "#5b8fd0", "#d9534f")  # nothing / some ports / every port
INGRESS_COLOUR = "#d9534f"
EGRESS_COLOUR = "#5b8fd0"
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif"
CHAR_W = 0.6  # average glyph width as a fraction of the font size

MAX_MATRIX_NAMESPACES = 60
MAX_EXPOSURE_ROWS = 30


def _t(text: object) -> str:
    return escape(str(text))


def _a(value: object) -> str:
    return quoteattr(str(value))


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _svg(width: float, height: float, label: str, body: Iterable[str]) -> str:
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width:.0f}" '
        f'height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}" aria-label={_a(label)} '
        f'font-family={_a(FONT)} font-size="12">'
    )
    return "".join([head, f"<title>{_t(label)}</title>", *body, "</svg>"])


def _legend_step(label: str) -> float:
    return 17 + len(label) * 12 * CHAR_W + 18


def legend_width(items: Sequence[tuple[str, str]]) -> float:
    return sum(_legend_step(label) for _, label in items)


def _legend(x: float, y: float, items: Sequence[tuple[str, str]]) -> list[str]:
    out: list[str] = []
    for colour, label in items:
        out.append(
            f'<rect x="{x:.1f}" y="{y - 10:.1f}" width="12" height="12" rx="2" fill="{colour}"/>'
            f'<text x="{x + 17:.1f}" y="{y:.1f}" fill="#333">{_t(label)}</text>'
        )
        x += _legend_step(label)
    return out


def _namespaces(connectivity: Mapping[str, Any]) -> list[str]:
    names = list(dict.fromkeys(connectivity["namespaces"]))
    known = set(names)
    extra = {e[k] for e in connectivity["matrix"] for k in ("src", "dst")} - known
    return names + sorted(extra)


def connectivity_matrix(connectivity: Mapping[str, Any], limit: int = MAX_MATRIX_NAMESPACES) -> str:
    """Heat-grid: rows are sources, columns destinations; a ``<title>`` per cell lists ports."""
    cells: dict[tuple[str, str], Mapping[str, str]] = {}
    degree: Counter[str] = Counter()
    for entry in connectivity["matrix"]:
        if entry["allowed"]:
            cells[(entry["src"], entry["dst"])] = entry["allowed"]
            degree[entry["src"]] += 1
            degree[entry["dst"]] += 1
    names = _namespaces(connectivity)
    omitted = 0
    if len(names) > limit:
        keep = set(sorted(names, key=lambda n: (-degree[n], n))[:limit])
        omitted = len(names) - limit
        names = [n for n in names if n in keep]
    if not names:
        return _svg(420, 40, "Connectivity matrix", ['<text x="0" y="24">No namespaces.</text>'])
    n = len(names)
    cell = 40 if n <= 8 else 28 if n <= 16 else 18 if n <= 30 else 12
    font = 13 if n <= 16 else 12 if n <= 30 else 10
    labels = [_clip(name, 28) for name in names]
    label_w = max(len(label) for label in labels) * font * CHAR_W + 10
    left = max(label_w, 60) + 24
    top = label_w * 0.72 + 36
    grid = n * cell
    legend = [
        (HEAT[0], "nothing allowed"),
        (HEAT[1], "some ports"),
        (HEAT[2], "every port of a protocol"),
    ]
    width = max(left + grid + label_w * 0.72 + 20, left + legend_width(legend) + 10)
    height = top + grid + 70
    out: list[str] = [
        f'<text x="{left:.1f}" y="14" fill="#555" font-size="11">columns: destination namespace →</text>',
        f'<text x="12" y="{top + grid / 2:.1f}" fill="#555" font-size="11" text-anchor="middle" '
        f'transform="rotate(-90 12 {top + grid / 2:.1f})">rows: source namespace</text>',
    ]
    for i, (name, label) in enumerate(zip(names, labels, strict=True)):
        y = top + i * cell + cell / 2 + font * 0.35
        out.append(
            f'<text x="{left - 6:.1f}" y="{y:.1f}" text-anchor="end" font-size="{font}" fill="#222">'
            f"<title>{_t(name)}</title>{_t(label)}</text>"
        )
        x = left + i * cell + cell / 2 + font * 0.35
        out.append(
            f'<text x="{x:.1f}" y="{top - 6:.1f}" font-size="{font}" fill="#222" '
            f'transform="rotate(-45 {x:.1f} {top - 6:.1f})"><title>{_t(name)}</title>{_t(label)}</text>'
        )
    out.append(f'<rect x="{left}" y="{top:.1f}" width="{grid}" height="{grid}" fill="{HEAT[0]}"/>')
    for r, src in enumerate(names):
        for c, dst in enumerate(names):
            allowed = cells.get((src, dst))
            x, y = left + c * cell, top + r * cell
            if allowed is None:  # the background shows it; no element keeps big grids small
                continue
            out.append(
                f'<rect x="{x}" y="{y:.1f}" width="{cell}" height="{cell}" '
                f'fill="{HEAT[allowed_breadth(allowed)]}">'
                f"<title>{_t(src)} → {_t(dst)}: {_t(allowed_label(allowed))}</title></rect>"
            )
    for i in range(n + 1):  # white grid lines between cells
        out.append(
            f'<path d="M{left} {top + i * cell:.1f}h{grid}M{left + i * cell} {top:.1f}v{grid}" '
            'stroke="#fff" stroke-width="1"/>'
        )
    for i in range(n):  # outline the diagonal: traffic inside a namespace
        out.append(
            f'<rect x="{left + i * cell + 1}" y="{top + i * cell + 1:.1f}" width="{cell - 2}" '
            f'height="{cell - 2}" fill="none" stroke="#333" stroke-width="1" stroke-dasharray="2 2"/>'
        )
    legend_y = top + grid + 28
    out += _legend(left, legend_y, legend)
    if omitted:
        note = (
            f"{omitted} namespace(s) with the fewest connections not shown "
            f"({n + omitted} in total)."
        )
        out.append(f'<text x="{left}" y="{legend_y + 24:.1f}" fill="#a00">{note}</text>')
        width = max(width, left + len(note) * 12 * CHAR_W + 10)
    return _svg(width, height, "Namespace connectivity matrix", out)


def exposure_chart(connectivity: Mapping[str, Any], limit: int = MAX_EXPOSURE_ROWS) -> str:
    """Grouped bars per namespace: workloads reachable from / reaching the internet."""
    ingress = Counter(workload_namespace(e["workload"]) for e in connectivity["internet_ingress"])
    egress = Counter(workload_namespace(e["workload"]) for e in connectivity["internet_egress"])
    names = sorted(set(ingress) | set(egress), key=lambda n: (-(ingress[n] + egress[n]), n))
    if not names:
        return _svg(
            520,
            36,
            "Internet exposure",
            [
                '<text x="0" y="22" fill="#2e7d32">No workload is '
                "reachable from, or can reach, the internet.</text>"
            ],
        )
    omitted = max(0, len(names) - limit)
    names = names[:limit]
    labels = [_clip(name, 32) for name in names]
    left = max(len(label) for label in labels) * 12 * CHAR_W + 20
    bar_w = 380.0
    peak = max(max(ingress[n], egress[n]) for n in names) or 1
    row = 34
    top = 30
    legend = [
        (INGRESS_COLOUR, "internet → workloads (ingress)"),
        (EGRESS_COLOUR, "workloads → internet (egress)"),
    ]
    out: list[str] = _legend(left, 16, legend)
    for i, (name, label) in enumerate(zip(names, labels, strict=True)):
        y = top + i * row
        out.append(
            f'<text x="{left - 8:.1f}" y="{y + 17:.1f}" text-anchor="end" fill="#222">'
            f"<title>{_t(name)}</title>{_t(label)}</text>"
        )
        for j, (counts, colour, what) in enumerate(
            (
                (ingress, INGRESS_COLOUR, "reachable from the internet"),
                (egress, EGRESS_COLOUR, "can reach the internet"),
            )
        ):
            value = counts[name]
            if not value:  # an empty slot reads better than a bar of zero
                continue
            w = max(bar_w * value / peak, 1.5)
            by = y + 4 + j * 13
            out.append(
                f'<rect x="{left:.1f}" y="{by:.1f}" width="{w:.1f}" height="11" rx="2" fill="{colour}">'
                f"<title>{_t(name)}: {value} workload(s) {what}</title></rect>"
                f'<text x="{left + w + 5:.1f}" y="{by + 9.5:.1f}" font-size="10" fill="#333">{value}</text>'
            )
    height = top + len(names) * row + 10
    if omitted:
        out.append(
            f'<text x="{left:.1f}" y="{height + 4:.1f}" fill="#a00">{omitted} namespace(s) with '
            f"fewer exposed workloads not shown.</text>"
        )
        height += 16
    width = max(left + bar_w + 50, left + legend_width(legend) + 10)
    return _svg(width, height, "Internet exposure per namespace", out)


def status_bars(frameworks: Sequence[Mapping[str, Any]], width: float = 640) -> str:
    """One stacked bar of requirement statuses per framework, with a legend."""
    labels = [_clip(f"{fw['name']} {fw['version']}", 36) for fw in frameworks]
    left = (max((len(label) for label in labels), default=10) * 12 * CHAR_W) + 16
    bar_w = width - left - 10
    row = 30
    out: list[str] = []
    for i, (fw, label) in enumerate(zip(frameworks, labels, strict=True)):
        y = 8 + i * row
        out.append(
            f'<text x="{left - 8:.1f}" y="{y + 15:.1f}" text-anchor="end" fill="#222">'
            f"<title>{_t(fw['title'])}</title>{_t(label)}</text>"
        )
        out += _stack(fw["summary"], left, y, bar_w, 20)
    legend_y = 8 + len(frameworks) * row + 16
    out += _legend(left, legend_y, [(STATUS_COLOURS[s], STATUS_LABEL[s]) for s in BAR_ORDER])
    return _svg(width, legend_y + 10, "Requirement status per framework", out)


def status_bar(counts: Mapping[str, int], what: str = "requirement", width: float = 420) -> str:
    """A single stacked bar (per framework section or for the checks)."""
    return _svg(width, 24, f"{what} status", _stack(counts, 0, 2, width, 20, what))


def _stack(
    counts: Mapping[str, int], x: float, y: float, w: float, h: float, what: str = "requirement"
) -> list[str]:
    total = sum(counts.get(s, 0) for s in STATUSES)
    if not total:
        return [
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h}" rx="3" fill="#eee"/>'
            f'<text x="{x + 6:.1f}" y="{y + 14:.1f}" fill="#666">no {_t(what)}s</text>'
        ]
    out: list[str] = []
    for status in BAR_ORDER:
        value = counts.get(status, 0)
        if not value:
            continue
        seg = w * value / total
        out.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{seg:.1f}" height="{h}" '
            f'fill="{STATUS_COLOURS[status]}"><title>{_t(STATUS_LABEL[status])}: {value} '
            f"{_t(what)}(s)</title></rect>"
        )
        if seg >= 8 + len(str(value)) * 7:
            out.append(
                f'<text x="{x + seg / 2:.1f}" y="{y + h / 2 + 4:.1f}" text-anchor="middle" '
                f'fill="#fff" font-weight="600">{value}</text>'
            )
        x += seg
    return out
