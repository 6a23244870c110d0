"""The benchmark scripts run end to end on a CPU with tiny settings (their figures are not checked here:
speeds are measured by running them, see benchmarks/RESULTS.md). This keeps a GPU node's first run of them
from failing on a CPU-side mistake."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_benchmark(script: str, *args: str, data_dir: Path) -> str:
    env = {**os.environ, "VAELIB_DATA": str(data_dir), "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_train_throughput_prints_both_paths_their_ratio_and_an_epoch(tmp_path):
    out = run_benchmark("train_throughput.py", "--profile", "smoke", "--device", "cpu", "--images", "200",
                        "--steps", "1", "--windows", "1", "--warmup", "1", "--workers", "0", "--batch-size", "8",
                        "--epoch-images", "40", data_dir=tmp_path)
    for line in ("(a) seed-equivalent", "(b) data path only", "(b) fast path (trainer defaults)",
                 "ratio fast / seed:", "GFLOP per image", "one training epoch of 40 images"):
        assert line in out, out


def test_likelihood_speed_prints_a_rate_and_the_test_split_projection(tmp_path):
    out = run_benchmark("likelihood_speed.py", "--profile", "smoke", "--device", "cpu", "--images", "2",
                        "--k", "4", "--batch-size", "2", data_dir=tmp_path)
    assert "IWAE K=4:" in out and "projected CelebA test split" in out, out


def test_slider_latency_prints_medians(tmp_path):
    out = run_benchmark("slider_latency.py", "--profile", "smoke", "--updates", "3", data_dir=tmp_path)
    assert "decode alone:" in out and "median" in out, out


def test_synthetic_speed_prints_a_rate(tmp_path):
    out = run_benchmark("synthetic_speed.py", "20", "1", str(tmp_path), data_dir=tmp_path)
    assert "20 images, 1 worker(s):" in out and "images/s per CPU-second" in out, out


def test_demo_recipe_prints_psnr_and_bits_per_dim(tmp_path):
    out = run_benchmark("demo_recipe.py", "--profile", "smoke", "--images-seen", "32", "--batch-size", "16",
                        "--test-images", "8", "--ema", "0.9", data_dir=tmp_path)
    assert '"test_psnr_db"' in out and '"elbo_bpd"' in out, out


def test_guidance_lambda_scores_each_target_and_direction_on_a_finished_run(smoke_run):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "guidance_lambda.py"), "--run-dir",
                           str(smoke_run.run_dir), "--profile", "smoke", "--faces", "2", "--steps", "2"],
                          env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert '"judged"' in done.stdout and '"Eyeglasses add"' in done.stdout and '"random_control"' in done.stdout
