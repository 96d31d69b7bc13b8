"""Cost of cleaning report photos: the stored code against a baseline module, same run.

    .venv/bin/python bench/photos.py [--baseline path/to/old_photos.py] [--megapixels 40]

Makes five phone-like photos (JPEG, 40 megapixels by default, under the 10 MiB cap), cleans
them as one report would, and prints for each implementation the time, the peak of traced
memory (numpy's buffers; Pillow's pixel buffers are not traced) and the peak of resident
memory the work added (which counts them), each in a forked process of its own.
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import resource
import sys
import time
import tracemalloc
from pathlib import Path

import numpy
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.forked import in_fork, rss_mb


def phone_photo(megapixels: int, seed: int) -> bytes:
    """A smooth picture with some grain, about the size a phone writes."""
    width = int((megapixels * 1_000_000 * 4 / 3) ** 0.5)
    height = megapixels * 1_000_000 // width
    rng = numpy.random.default_rng(seed)
    small = rng.integers(0, 255, (height // 8 + 1, width // 8 + 1, 3), dtype=numpy.uint8)
    image = Image.fromarray(small).resize((width, height), Image.Resampling.BILINEAR)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    return out.getvalue()


def load(path: str, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _measure_here(module, photos: list[bytes], pipe) -> None:
    start = rss_mb()
    tracemalloc.start()
    started = time.perf_counter()
    for content in photos:
        module.clean_photo(content)
    seconds = time.perf_counter() - started
    traced = tracemalloc.get_traced_memory()[1] / 1e6
    tracemalloc.stop()
    resident = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1000 - start
    pipe.send((seconds, traced, max(0.0, resident)))


def measure(module, photos: list[bytes]) -> tuple[float, float, float]:
    """(seconds, traced peak MB, resident peak MB added), in a forked process of its own:
    Pillow's pixel buffers are not traced by tracemalloc, the resident peak counts them."""
    return in_fork(_measure_here, module, photos)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--baseline", help="an older registry/photos.py to compare with")
    parser.add_argument("--megapixels", type=int, default=40)
    args = parser.parse_args()
    photos = [phone_photo(args.megapixels, seed) for seed in range(5)]
    sizes = ", ".join(f"{len(p) / 1e6:.1f}" for p in photos)
    print(f"five {args.megapixels}-megapixel JPEGs ({sizes} MB)")
    from registry import photos as current

    rows = [("current", *measure(current, photos))]
    if args.baseline:
        rows.insert(0, ("baseline", *measure(load(args.baseline, "baseline_photos"), photos)))
    print(f"{'implementation':<16}{'seconds':>10}{'traced MB':>11}{'resident MB':>13}")
    for name, seconds, traced, resident in rows:
        print(f"{name:<16}{seconds:>10.2f}{traced:>11.0f}{resident:>13.0f}")
    if len(rows) == 2:
        print(
            f"ratio current/baseline: time {rows[1][1] / rows[0][1]:.2f},"
            f" resident memory {rows[1][3] / rows[0][3]:.2f}"
        )


if __name__ == "__main__":
    main()
