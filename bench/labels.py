"""Cost of label images and sheets at the edges of what a request may ask for.

    .venv/bin/python bench/labels.py

Times and peak resident memory (added to the process's, measured in a forked child) of:

- the baseline, measured in the same run: what ``?px=300`` cost before ``px`` was limited
  to 1–16 (the same QR matrix scaled 300 times, as the old code did);
- ``labels.png`` at 1, 8 (the default) and 16 pixels a module (the largest allowed);
- ``sheet.pdf`` and ``preview.png`` of one full A4 sheet of the densest preset and of the
  densest custom layout the validation lets through.
"""

from __future__ import annotations

import io
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.forked import in_fork, rss_mb

URI = "https://nguon.example.gov.vn/01/08930000000019/10/LN2026-001/21/7Q4KX9M2P8"


def _child(work: Callable[[], Any], repeats: int, pipe: Any) -> None:
    start = rss_mb()
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - started)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1000  # kB -> MB
    pipe.send((best, max(0.0, peak - start)))


def measure(work: Callable[[], Any], repeats: int = 3) -> tuple[float, float]:
    """(best seconds, peak resident memory added, MB) over ``repeats`` runs, in a forked
    process of its own (Pillow's pixel buffers are invisible to tracemalloc)."""
    return in_fork(_child, work, repeats)


def old_png(uri: str, module_px: int) -> bytes:
    """What ``labels.png`` did for any ``px`` before the range (the baseline)."""
    from traceability import labels

    image = labels.qr_matrix(uri)
    image = image.resize(
        (image.width * module_px, image.height * module_px), Image.Resampling.NEAREST
    )
    out = io.BytesIO()
    image.convert("1").save(out, "PNG", optimize=True)
    return out.getvalue()


def densest_custom(labels: Any) -> Any:
    """The custom A4 layout with the most cells the validation accepts (no margins)."""
    from nguon.errors import DomainValidationError

    best = None
    for rows in range(30, 0, -1):
        for columns in range(12, 0, -1):
            args = {"rows": str(rows), "columns": str(columns), "gap": "0"}
            args |= {f"margin_{side}": "0" for side in ("top", "bottom", "left", "right")}
            try:
                layout = labels.layout_from(args)
            except DomainValidationError:
                continue
            if best is None or layout.per_page > best.per_page:
                best = layout
    return best


def main() -> None:
    from tests.conftest import make_test_app
    from traceability import labels

    folder = Path(tempfile.mkdtemp())
    app = make_test_app(f"sqlite:///{folder / 'bench.db'}", folder)
    rows: list[tuple[str, float, float]] = []
    with app.test_request_context():
        rows.append(("baseline: old png ?px=300", *measure(lambda: old_png(URI, 300), 1)))
        for px in (1, 8, 16):
            rows.append((f"png ?px={px}", *measure(lambda px=px: labels.png(URI, module_px=px))))
        densest = max(labels.PRESETS.values(), key=lambda p: p.layout.per_page)
        custom = densest_custom(labels)
        label = f"custom {custom.rows}×{custom.columns}"
        for name, layout in ((densest.key, densest.layout), (label, custom)):
            items = [
                labels.LabelText(
                    f"{URI[:-2]}{n:02d}",
                    "Vải thiều Lục Ngạn",
                    "LN2026-001",
                    f"7Q4KX9M{n:03d}",
                    "Chỉ dẫn địa lý Lục Ngạn",
                )
                for n in range(layout.per_page)
            ]
            rows.append(
                (
                    f"sheet.pdf {name} ({layout.per_page})",
                    *measure(lambda items=items, layout=layout: labels.sheet_pdf(items, layout), 1),
                )
            )
            rows.append(
                (
                    f"preview.png {name}",
                    *measure(
                        lambda items=items, layout=layout: labels.preview_png(items, layout), 1
                    ),
                )
            )
    base_time, base_peak = rows[0][1], rows[0][2]
    print(f"{'what':<34}{'seconds':>9}{'peak MB':>9}{'time/base':>11}{'mem/base':>10}")
    for name, seconds, peak in rows:
        print(
            f"{name:<34}{seconds:>9.3f}{peak:>9.1f}"
            f"{seconds / base_time:>11.3f}{peak / base_peak:>10.3f}"
        )


if __name__ == "__main__":
    main()
