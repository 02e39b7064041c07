#!/usr/bin/env python3
"""Render kpibot's standard chart set with matplotlib and compare with kpibot.

The same data (the same formulas as src/render/standard_set.rs), the same pixel size
(1600x900), the same bundled font, rendered to PNG bytes in one warm process (Agg).
Then runs kpibot's criterion benchmark and prints the per-chart ratio.

    pip install matplotlib
    python3 scripts/bench_matplotlib.py            # runs `cargo bench --bench render` too
    python3 scripts/bench_matplotlib.py --no-cargo # matplotlib only
"""

import argparse
import io
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib import font_manager  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RUNS = 15
WIDTH_IN, HEIGHT_IN, DPI = 8, 4.5, 200  # 1600 x 900 pixels


def wobble(i, k):
    return ((i * 7919 + k * 104729) % 1000) / 1000.0


def line_data():
    bases = [90000.0, 17000.0, 7000.0]
    return {
        name: [round(bases[k] * (0.45 if i % 7 >= 5 else 1.0) * (0.9 + 0.2 * wobble(i, k))) for i in range(90)]
        for k, name in enumerate(["student", "guardian", "teacher"])
    }


def bar_data():
    return {
        name: [round(1000.0 * (k + 1) * (0.7 + 0.6 * wobble(i, k))) for i in range(12)]
        for k, name in enumerate(["organic", "referral", "ads", "school_contract"])
    }


PREFECTURES = "東京都 神奈川県 大阪府 愛知県 埼玉県 千葉県 兵庫県 北海道 福岡県 静岡県 茨城県 広島県 京都府 宮城県 新潟県 長野県 岐阜県 群馬県 栃木県 岡山県".split()
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7"]


def figure(title):
    fig = plt.figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI)
    fig.suptitle(title, x=0.04, ha="left", fontsize=16)
    return fig


def to_png(fig):
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    plt.close(fig)
    return buffer.getvalue()


def render_line(data):
    fig = figure("日次アクティブユーザー (DAU)")
    ax = fig.add_subplot()
    for k, (name, values) in enumerate(data.items()):
        ax.plot(range(90), values, color=PALETTE[k], linewidth=2.5, label=name)
    ax.legend(loc="upper left", ncol=3, frameon=False)
    ax.grid(axis="y", color="#e3e5e8")
    return to_png(fig)


def render_bars(data):
    fig = figure("New sign-ups by channel")
    ax = fig.add_subplot()
    bottom = [0] * 12
    months = [f"2026/{m:02}" for m in range(1, 13)]
    for k, (name, values) in enumerate(data.items()):
        ax.bar(months, values, bottom=bottom, color=PALETTE[k], label=name)
        bottom = [b + v for b, v in zip(bottom, values)]
    ax.legend(loc="upper left", ncol=4, frameon=False)
    return to_png(fig)


def render_card(data):
    totals = [sum(v) for v in zip(*data.values())]
    fig = figure("アクティブユーザー")
    fig.text(0.04, 0.78, "Latest (2026-11-25)", fontsize=12, color="#5f6368")
    fig.text(0.04, 0.55, "122,748", fontsize=60, color="#222222")
    fig.text(0.04, 0.45, "▼ -3,120 (-2.5%)", fontsize=20, color="#D55E00")
    ax = fig.add_axes([0.04, 0.05, 0.92, 0.28])
    ax.fill_between(range(len(totals)), totals, min(totals), color="#0072B2", alpha=0.15)
    ax.plot(range(len(totals)), totals, color="#0072B2", linewidth=2.5)
    ax.axis("off")
    return to_png(fig)


def render_table():
    fig = figure("都道府県別アクティブユーザー")
    ax = fig.add_axes([0.04, 0.02, 0.92, 0.85])
    ax.axis("off")
    rows = [[p, f"{14000 - i * 600:,}", f"{(14000 - i * 600) / 1220:.2f}"] for i, p in enumerate(PREFECTURES)]
    table = ax.table(cellText=rows, colLabels=["prefecture", "users", "share"], loc="upper left", cellLoc="right")
    table.auto_set_font_size(False)
    table.set_fontsize(9)
    return to_png(fig)


CHARTS = {
    "line_90d_3_series": lambda: render_line(line_data()),
    "stacked_bar_12_months": lambda: render_bars(bar_data()),
    "kpi_card": lambda: render_card(line_data()),
    "table_20_rows": render_table,
}


def time_matplotlib():
    font = ROOT / "assets/fonts/BIZUDPGothic-Regular.ttf"
    font_manager.fontManager.addfont(str(font))
    plt.rcParams["font.family"] = font_manager.FontProperties(fname=str(font)).get_name()
    results = {}
    for name, render in CHARTS.items():
        render()  # warm up
        times, size = [], 0
        for _ in range(RUNS):
            start = time.perf_counter()
            size = len(render())
            times.append(time.perf_counter() - start)
        results[name] = (statistics.median(times) * 1000.0, size)
    return results


def time_kpibot():
    """Runs kpibot's criterion benchmark; returns {chart: (ms, bytes)}."""
    proc = subprocess.run(
        ["cargo", "bench", "--bench", "render", "--", "--output-format", "bencher"],
        cwd=ROOT, capture_output=True, text=True,
    )
    if proc.returncode != 0:
        sys.exit(f"cargo bench failed:\n{proc.stderr[-2000:]}")
    results = {}
    for line in proc.stdout.splitlines():
        m = re.match(r"test render (\S+) \.\.\. bench:\s+([\d,]+) ns/iter", line)
        if m:
            results[m.group(1)] = [int(m.group(2).replace(",", "")) / 1e6, 0]
    for line in proc.stderr.splitlines():
        m = re.match(r"(\S+): (\d+) bytes", line)
        if m and m.group(1) in results:
            results[m.group(1)][1] = int(m.group(2))
    return results


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--no-cargo", action="store_true", help="time matplotlib only")
    args = parser.parse_args()
    mpl = time_matplotlib()
    kp = {} if args.no_cargo else time_kpibot()
    print(f"{'chart':<24} {'matplotlib':>12} {'kpibot':>12} {'speed-up':>9}   {'mpl size':>9} {'kpibot size':>11}")
    for name, (ms, size) in mpl.items():
        if name in kp:
            k_ms, k_size = kp[name]
            print(f"{name:<24} {ms:>9.1f} ms {k_ms:>9.1f} ms {ms / k_ms:>8.1f}x   {size / 1024:>6.0f} KB {k_size / 1024:>8.0f} KB")
        else:
            print(f"{name:<24} {ms:>9.1f} ms {'-':>12} {'-':>9}   {size / 1024:>6.0f} KB")


if __name__ == "__main__":
    main()
