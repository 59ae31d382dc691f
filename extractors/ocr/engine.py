"""The recogniser: RapidOCR's ONNX models (shipped inside the `rapidocr-onnxruntime` wheel, loaded from its
package folder; nothing is downloaded), loaded once per process and shared by every page after."""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass
from typing import Any

from numpy.typing import NDArray

Image = NDArray[Any]  # a grey page or crop (uint8: 0 = ink, 255 = paper); OpenCV types it loosely
# onnxruntime sessions are not documented as safe to share between threads: one at a time
_LOCK = threading.Lock()


@dataclass(frozen=True, slots=True)
class TextBox:
    """A line of text the detector found, in image pixels: (x0, top, x1, bottom)."""

    text: str
    box: tuple[float, float, float, float]
    confidence: float


# Detection runs on the page scaled down to this longest side (RapidOCR's default is 2000): a report's 10.5 pt
# lines stay ~23 px high, every line of a page is still found, and the detector's activations, the peak of a
# worker's memory, shrink from ~460 to ~250 MB (and its time from ~4.4 to ~1.4 CPU-s a page at 200 dpi).
# Recognition reads crops of the full-resolution page either way.
DETECT_SIDE = 1280
_threads = [2]  # ONNX threads of the model, set by `configure` before it is loaded


def configure(threads: int) -> None:
    """The ONNX threads the model is loaded with (the caller's settings, GONGKAI_OCR_THREADS); once loaded, the
    model keeps the count it was loaded with for the life of the process."""
    _threads[0] = max(1, threads)


@functools.cache
def _engine() -> Any:
    # imported here: the extra is optional, and the import alone costs ~0.5 s
    from rapidocr_onnxruntime import RapidOCR

    # A fixed thread count: ONNX's default (every core, spinning while idle) oversubscribes a machine whose cores
    # the extraction pool already fills with one worker each, and turns a 50 s report into minutes.
    threads = _threads[0]
    per_model = {f"{m}_{k}": threads if k == "intra_op_num_threads" else 1
                 for m in ("det", "cls", "rec") for k in ("intra_op_num_threads", "inter_op_num_threads")}
    engine = RapidOCR(print_verbose=False, **per_model)
    engine.max_side_len = DETECT_SIDE
    return engine


def locate(image: Image) -> list[tuple[float, float, float, float]]:
    """The boxes of the text lines on an image (detection only; what is read, and how, is the caller's choice)."""
    with _LOCK:
        found, _ = _engine()(_bgr(image), use_cls=False, use_rec=False)
    boxes: list[tuple[float, float, float, float]] = []
    for points in found or []:
        xs = [float(p[0]) for p in points]
        ys = [float(p[1]) for p in points]
        boxes.append((min(xs), min(ys), max(xs), max(ys)))
    return boxes


def recognise(crops: list[Image]) -> list[tuple[str, float]]:
    """The text of each crop, taken as one line (no detection): a table cell's line of ink."""
    if not crops:
        return []
    with _LOCK:
        found, _ = _engine().text_rec([_bgr(c) for c in crops])
    return [(str(text), float(score)) for text, score in found]


def _bgr(image: Image) -> Image:
    import cv2

    return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) if image.ndim == 2 else image
