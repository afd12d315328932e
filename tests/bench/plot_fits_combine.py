#!/usr/bin/env python3
"""Draw bench_fits_combine's results as an SVG (standard library only).

usage: plot_fits_combine.py OUT.svg BENCH_OUTPUT.txt...

Reads the "json {...}" line of every round that bench_fits_combine printed
(the rounds of several outputs, i.e. runs, are pooled) and draws two panels: wall seconds of every case, and the ratios the issue
asks for. Bars are the median over the rounds, whiskers the min and max;
dashed marks are the goals (combine within 2x of the read floor, numpy at
least 3x slower than the combine).
"""
import json
import statistics
import sys

WIDTH, PANEL_H, TOP, LEFT, BAR_W = 900, 300, 40, 70, 44


def load_rounds(path):
    rounds = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith("json "):
                rounds.append(json.loads(line[5:]))
    if not rounds:
        sys.exit(f"{path}: no 'json' lines (bench_fits_combine output expected)")
    return rounds


def series_times(rounds):
    cases = [("read floor|-j1", "floor1"), ("combine|-j1", "combine1"),
             ("read floor|-j2", "floor2"), ("combine|-j2", "combine2"),
             ("numpy median|(in memory)", "numpy"), ("ISR|-j1", "isr1"), ("ISR|-j2", "isr2")]
    return [(label, [r[key] for r in rounds]) for label, key in cases]


def series_ratios(rounds):
    def ratio(a, b):
        return [r[a] / r[b] for r in rounds]
    return [("combine/floor|-j1", ratio("combine1", "floor1"), 2.0),
            ("combine/floor|-j2", ratio("combine2", "floor2"), 2.0),
            ("numpy/combine|-j1", ratio("numpy", "combine1"), 3.0),
            ("numpy/combine|-j2", ratio("numpy", "combine2"), 3.0),
            ("numpy/combine|CPU s, -j1", ratio("numpy_cpu", "combine1_cpu"), 3.0),
            ("ISR MB/s / floor|MB/s, -j1", ratio("floor1", "isr1"), None),
            ("ISR MB/s / floor|MB/s, -j2", ratio("floor2", "isr2"), None),
            ("combine speed-up|-j1 / -j2", ratio("combine1", "combine2"), None)]


def text(x, y, s, size=11, anchor="middle", rotate=None):
    tr = f' transform="rotate({rotate} {x:.1f} {y:.1f})"' if rotate else ""
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}"'
            f' font-family="sans-serif"{tr}>{s}</text>')


def panel(y0, title, unit, items):
    """items: (label, values, goal or None); returns SVG elements."""
    out = [text(WIDTH / 2, y0 - 12, title, 13)]
    top = max(max(v) for _, v, _ in items)
    top = max(top, max((g for _, _, g in items if g), default=0)) * 1.15
    scale = (PANEL_H - 80) / top
    base = y0 + PANEL_H - 80
    out.append(f'<line x1="{LEFT}" y1="{base}" x2="{WIDTH - 20}" y2="{base}" stroke="black"/>')
    out.append(f'<line x1="{LEFT}" y1="{y0}" x2="{LEFT}" y2="{base}" stroke="black"/>')
    for k in range(6):
        v = top * k / 5
        y = base - v * scale
        out.append(f'<line x1="{LEFT - 4}" y1="{y:.1f}" x2="{LEFT}" y2="{y:.1f}" stroke="black"/>')
        out.append(text(LEFT - 6, y + 4, f"{v:.2f}", 10, "end"))
    out.append(text(18, y0 + (base - y0) / 2, unit, 11, "middle", -90))
    step = (WIDTH - LEFT - 40) / len(items)
    for i, (label, values, goal) in enumerate(items):
        cx = LEFT + step * (i + 0.5)
        med, lo, hi = statistics.median(values), min(values), max(values)
        out.append(f'<rect x="{cx - BAR_W / 2:.1f}" y="{base - med * scale:.1f}" width="{BAR_W}"'
                   f' height="{med * scale:.1f}" fill="#6a9fd4"/>')
        out.append(f'<line x1="{cx:.1f}" y1="{base - lo * scale:.1f}" x2="{cx:.1f}"'
                   f' y2="{base - hi * scale:.1f}" stroke="black"/>')
        for v in (lo, hi):
            out.append(f'<line x1="{cx - 8:.1f}" y1="{base - v * scale:.1f}" x2="{cx + 8:.1f}"'
                       f' y2="{base - v * scale:.1f}" stroke="black"/>')
        if goal:
            y = base - goal * scale
            out.append(f'<line x1="{cx - BAR_W / 2 - 6:.1f}" y1="{y:.1f}" x2="{cx + BAR_W / 2 + 6:.1f}"'
                       f' y2="{y:.1f}" stroke="#c0392b" stroke-width="2" stroke-dasharray="5,3"/>')
        out.append(text(cx, base - hi * scale - 5, f"{med:.2f}", 10))
        for line_no, line in enumerate(label.split("|")):
            out.append(text(cx, base + 16 + 13 * line_no, line, 10))
    return out


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    rounds = [r for path in sys.argv[2:] for r in load_rounds(path)]
    n = len(rounds)
    loads = [r.get("load1", -1) for r in rounds]
    height = TOP + 2 * PANEL_H + 40
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}"'
             f' viewBox="0 0 {WIDTH} {height}">', f'<rect width="{WIDTH}" height="{height}" fill="white"/>']
    raws = round(rounds[0]["mb"] / (16 * 576 * 2048 * 4 / 1e6))
    parts += panel(TOP, f"bench_fits_combine: {raws} LATISS raws, {n} rounds of {len(sys.argv) - 2} run(s) (bar: median, whisker: min-max;"
                        f" 1-min load {min(loads):.1f}-{max(loads):.1f})", "wall seconds",
                   [(label, values, None) for label, values in series_times(rounds)])
    parts += panel(TOP + PANEL_H + 20, "ratios per round (dashed: the issue's goals)", "ratio",
                   series_ratios(rounds))
    parts.append("</svg>")
    with open(sys.argv[1], "w", encoding="utf-8") as f:
        f.write("\n".join(parts) + "\n")


if __name__ == "__main__":
    main()
