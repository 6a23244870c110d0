"""Fixed-width text tables of metric rows, printed in the notebooks."""

from __future__ import annotations

import numpy as np

from ..editing.evaluate import COLUMNS


def format_table(rows: list[dict], columns=COLUMNS) -> str:
    """Fixed-width text table (numbers to 3 decimals) of `rows` (default columns: the edit metrics)."""
    def cell(v) -> str:
        if isinstance(v, float):
            return "nan" if not np.isfinite(v) else f"{v:.3f}"
        return "-" if v is None else str(v)

    table = [list(columns)] + [[cell(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(columns))]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in table)


def format_summary(summary: dict) -> str:
    """A plain-text table of `vaelib.likelihood.likelihood_summary` (what notebook 06 prints)."""
    b, seed = summary["assignment_bonus"], summary["seed_published_bonus"]
    rows = [
        ("Bonus: NLL / D (sigma = 1)", f"{b['nll_sigma1_nats_per_dim']:.4f}",
         f"nats/dim (seed: {seed['nll_per_dim']})"),
        ("Bonus: KL / d", f"{b['kl_nats_per_latent_dim']:.4f}", f"nats/latent dim (seed: {seed['kl_per_dim']})"),
        ("Bonus: harmonic mean", f"{b['harmonic_mean']:.4f}", f"2ab/(a+b) (seed: {seed['harmonic_mean']})"),
        ("ELBO", f"{summary['elbo_bpd']:.4f} +- {summary['elbo_bpd_se']:.4f}", "bits/dim"),
        *((f"IWAE K={r['k']}", f"{r['bpd']:.4f} +- {r['se']:.4f}", "bits/dim") for r in summary["iwae"]),
        ("  distortion", f"{summary['distortion_bpd']:.4f}", "bits/dim"),
        ("  rate (KL)", f"{summary['rate_bpd']:.4f}", "bits/dim"),
        ("pixel sigma", ", ".join(f"{s:.4f}" for s in summary["sigma"]), summary["sigma_source"]),
        ("speed", f"{summary['images_per_s']:.1f}", f"images/s at K={summary['k_max']}"),
    ]
    w = max(len(r[0]) for r in rows), max(len(r[1]) for r in rows)
    return "\n".join(f"{name:<{w[0]}}  {value:>{w[1]}}  {unit}" for name, value, unit in rows)
