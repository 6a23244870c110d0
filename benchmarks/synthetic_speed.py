"""Time the synthetic CelebA generator: images per second on one core, JPEG writing included.

Usage: python benchmarks/synthetic_speed.py [num_images] [workers] [parent_dir]
(defaults: 2000 images, 1 worker, the system temp folder). Prints wall-clock and CPU-time rates; on a busy
machine the CPU-time rate is the one-core figure. Pin it to one core with `taskset -c 0`. Some /tmp
filesystems charge ~1 ms per file created, which alone caps the rate near 1000 images/s; pass another
parent_dir to see the generator's own speed.
"""

import sys
import tempfile
import time

from vaelib.data.synthetic import generate_synthetic_celeba


def main() -> None:
    num_images = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    workers = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    parent = sys.argv[3] if len(sys.argv) > 3 else None
    with tempfile.TemporaryDirectory(dir=parent) as root:
        wall, cpu = time.perf_counter(), time.process_time()
        generate_synthetic_celeba(root, num_images, seed=0, progress=False, workers=workers)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"{num_images} images, {workers} worker(s): {num_images / wall:.0f} images/s wall-clock "
          f"({wall:.2f} s)" + (f", {num_images / cpu:.0f} images/s per CPU-second" if workers == 1 else ""))


if __name__ == "__main__":  # the guard lets worker processes (spawn) import this file safely
    main()
