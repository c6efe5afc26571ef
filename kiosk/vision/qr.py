"""QR codes for the kiosk: render passes, and read them from camera photos and live streams.

Reading a pass held up to a camera is harder than reading a clean scan: the code is tilted, blurred by hand
motion or defocus, washed by glare, small, dim, on an emissive phone screen (moiré, bloom, dark mode).
Plain zbar on one frame misses many of those, so the kiosk runs a cascade:

1. zbar on the grey frame (cheap; most good frames end here);
2. a cheap finder search (edge-density blobs on a half-size frame) proposes regions that look like a code;
3. on those regions only: finder-pattern corner detection (OpenCV's ArUco-based QR detector) and perspective
   rectification of the code before zbar (tilted codes), up-scaling (small codes), down-scaling (blurred ones),
   CLAHE, unsharp sharpening, Otsu / adaptive binarization, inversion (dark-mode screens), and OpenCV's QR
   decoder as a second decoder.

:func:`decode_qr` runs the whole cascade once on a still image. :class:`QrReader` is for a live stream: it runs
step 1 and 2 on every frame and spends a bounded time budget per frame on the heavier strategies, rotating
through them across consecutive frames so the vision step stays fast while a resident holds up a pass.

Decoded bytes become text with ``errors="replace"``: hostile or binary payloads come back as text or are
dropped, never raise.
"""

from __future__ import annotations

import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

try:  # pyzbar needs the zbar shared library; without it OpenCV's decoder still works.
    from pyzbar import pyzbar as _pyzbar

    _ZBAR_SYMBOLS: Optional[list] = [_pyzbar.ZBarSymbol.QRCODE]
except Exception:  # pragma: no cover - depends on the system library
    _pyzbar = None
    _ZBAR_SYMBOLS = None

MAX_TEXT_CHARS = 8192  # a QR code holds at most ~7k characters; anything longer is not from a QR code

__all__ = ["render_qr", "save_qr_png", "decode_qr", "QrReader", "to_grey"]


# --------------------------------------------------------------------------------------------------------------
# rendering


def render_qr(text: str, scale: int = 8, border: int = 4) -> np.ndarray:
    """The QR code of ``text`` (error level M) as a uint8 grey image: 0 = dark module, 255 = light."""
    import segno

    q = segno.make(text, error="m", micro=False, boost_error=False)
    mat = np.array([list(r) for r in q.matrix], dtype=np.uint8)
    mat = np.pad(mat, max(0, int(border)))
    s = max(1, int(scale))
    img = np.where(mat > 0, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(np.repeat(np.repeat(img, s, axis=0), s, axis=1))


def save_qr_png(text: str, path: str, caption: Union[None, str, Sequence[str]] = None) -> None:
    """Write the QR code of ``text`` as a PNG at ``path``, with caption lines under it (a pass: community, name
    and unit, serial and expiry; the first line larger).

    The caption is drawn with Pillow in a Chinese font when one is installed (fonts-noto-cjk); without one it
    falls back to ASCII, and other characters become ``?``.
    """
    img = render_qr(text, scale=8, border=4)
    lines = [caption] if isinstance(caption, str) else list(caption or [])
    for i, line in enumerate(lines):
        img = np.vstack([img, caption_band(str(line), img.shape[1], size=26 if i == 0 and len(lines) > 1 else 22)])
    ok, buf = cv2.imencode(".png", img)
    if not ok:
        raise OSError("could not encode PNG for %s" % path)
    with open(path, "wb") as f:
        f.write(buf.tobytes())


def caption_band(caption: str, width: int, size: int = 22) -> np.ndarray:
    """One line of ``caption``, dark on white, centred in a uint8 grey band ``width`` pixels wide (shrunk to fit)."""
    from kiosk.fonts import cjk_pil_font

    text = "".join(c if c.isprintable() else " " for c in caption)[:80]
    font = cjk_pil_font(size)
    if font is None:
        return _ascii_caption_band(text, width)
    from PIL import Image, ImageDraw

    left, _, right, _ = font.getbbox(text)
    if right - left > width - 16:
        font = cjk_pil_font(max(8, int(size * (width - 16) / float(right - left))))
        left, _, right, _ = font.getbbox(text)
    ascent, descent = font.getmetrics()
    band = Image.new("L", (width, ascent + descent + 16), 255)
    ImageDraw.Draw(band).text((max(8, (width - (right - left)) // 2) - left, 8), text, font=font, fill=0)
    return np.asarray(band, dtype=np.uint8).copy()


def _ascii_caption_band(text: str, width: int) -> np.ndarray:
    """The fallback without a Chinese font: OpenCV's Hershey font, which has only ASCII (others become ``?``)."""
    safe = "".join(c if 32 <= ord(c) < 127 else "?" for c in text)
    font, fs, th = cv2.FONT_HERSHEY_SIMPLEX, 0.6, 1
    (tw, tht), base = cv2.getTextSize(safe, font, fs, th)
    if tw > width - 16:
        fs = fs * (width - 16) / float(tw)
        (tw, tht), base = cv2.getTextSize(safe, font, fs, th)
    band = np.full((tht + base + 16, width), 255, np.uint8)
    cv2.putText(band, safe, (max(8, (width - tw) // 2), 8 + tht), font, fs, 0, th, cv2.LINE_AA)
    return band


# --------------------------------------------------------------------------------------------------------------
# decoding primitives


def to_grey(image: np.ndarray) -> Optional[np.ndarray]:
    """Grey uint8 contiguous view of a grey/BGR/BGRA image (other dtypes rescaled); None when empty/unusable."""
    if image is None:
        return None
    a = np.asarray(image)
    if a.size == 0 or a.ndim not in (2, 3) or a.shape[0] < 8 or a.shape[1] < 8:
        return None
    if a.dtype != np.uint8:
        a = a.astype(np.float64)
        if not np.isfinite(a).all():
            a = np.nan_to_num(a)
        lo, hi = float(a.min()), float(a.max())
        a = ((a - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(a)).astype(np.uint8)
    if a.ndim == 3:
        c = a.shape[2]
        if c == 1:
            a = a[:, :, 0]
        elif c == 3:
            a = cv2.cvtColor(a, cv2.COLOR_BGR2GRAY)
        elif c == 4:
            a = cv2.cvtColor(a, cv2.COLOR_BGRA2GRAY)
        else:
            a = a[:, :, :3].mean(axis=2).astype(np.uint8)
    return np.ascontiguousarray(a)


def _clean_text(data: object) -> Optional[str]:
    if isinstance(data, (bytes, bytearray)):
        s = bytes(data).decode("utf-8", errors="replace")
    elif isinstance(data, str):
        s = data
    else:
        return None
    if not s or len(s) > MAX_TEXT_CHARS:
        return None
    return s


def _zbar(grey: np.ndarray) -> List[str]:
    if _pyzbar is None:
        return []
    try:
        res = _pyzbar.decode(grey, symbols=_ZBAR_SYMBOLS)
    except Exception:
        return []
    out = []
    for r in res:
        s = _clean_text(r.data)
        if s is not None:
            out.append(s)
    return out


_CV_DET: List[object] = []


def _cv_detector() -> object:
    if not _CV_DET:
        _CV_DET.append(cv2.QRCodeDetector())
    return _CV_DET[0]


def _cv(grey: np.ndarray) -> List[str]:
    try:
        det = _cv_detector()
        text, pts, _ = det.detectAndDecode(grey)  # type: ignore[attr-defined]
    except Exception:
        return []
    s = _clean_text(text) if text else None
    return [s] if s is not None else []


# --------------------------------------------------------------------------------------------------------------
# image variants


_CLAHE: List[object] = []


def _clahe(g: np.ndarray) -> np.ndarray:
    if not _CLAHE:
        _CLAHE.append(cv2.createCLAHE(clipLimit=3.0, tileGridSize=(4, 4)))
    return _CLAHE[0].apply(g)  # type: ignore[attr-defined]


def _resize(g: np.ndarray, f: float) -> np.ndarray:
    interp = cv2.INTER_AREA if f < 1 else cv2.INTER_CUBIC
    return cv2.resize(g, None, fx=f, fy=f, interpolation=interp)


def _sharpen(g: np.ndarray, sigma: float = 1.5, amount: float = 1.5) -> np.ndarray:
    b = cv2.GaussianBlur(g, (0, 0), sigma)
    return cv2.addWeighted(g, 1.0 + amount, b, -amount, 0)


def _otsu(g: np.ndarray, pre: float = 0.0) -> np.ndarray:
    if pre > 0:
        g = cv2.GaussianBlur(g, (0, 0), pre)
    return cv2.threshold(g, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)[1]


def _adaptive(g: np.ndarray, block: int, c: int = 4, pre: float = 0.0) -> np.ndarray:
    if pre > 0:
        g = cv2.GaussianBlur(g, (0, 0), pre)
    block = max(3, block | 1)
    return cv2.adaptiveThreshold(g, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY, block, c)


def _stretch(g: np.ndarray) -> np.ndarray:
    lo, hi = np.percentile(g, (1, 99))
    if hi - lo < 4:
        return g
    return cv2.convertScaleAbs(g, alpha=255.0 / (hi - lo), beta=-lo * 255.0 / (hi - lo))


Variant = Callable[[np.ndarray], np.ndarray]

# name -> grey→grey transform; each is one "strategy" tried with zbar (and some with OpenCV's decoder).
VARIANTS: Dict[str, Variant] = {
    "raw": lambda g: g,
    "inv": lambda g: 255 - g,
    "up2": lambda g: _resize(g, 2.0),
    "up2_sharp": lambda g: _sharpen(_resize(g, 2.0), 2.0, 1.5),
    "up3_sharp": lambda g: _sharpen(_resize(g, 3.0), 3.0, 1.5),
    "down2": lambda g: _resize(g, 0.5),
    "down3": lambda g: _resize(g, 1.0 / 3.0),
    "sharp": lambda g: _sharpen(g, 1.5, 1.5),
    "sharp_strong": lambda g: _sharpen(g, 2.5, 3.0),
    "clahe": _clahe,
    "stretch": _stretch,
    "otsu": lambda g: _otsu(g, 1.0),
    "adapt15": lambda g: _adaptive(g, 15, 3, 0.8),
    "adapt31": lambda g: _adaptive(g, 31, 4, 1.0),
    "clahe_otsu": lambda g: _otsu(_clahe(g), 1.0),
    "up2_adapt": lambda g: _adaptive(_resize(g, 2.0), 31, 3, 1.5),
    "up2_otsu": lambda g: _otsu(_resize(g, 2.0), 1.5),
    "sharp_otsu": lambda g: _otsu(_sharpen(g, 2.0, 2.0), 1.0),
    "down2_sharp": lambda g: _sharpen(_resize(g, 0.5), 1.0, 1.0),
    "blur_up2_otsu": lambda g: _otsu(_resize(cv2.GaussianBlur(g, (0, 0), 1.2), 2.0), 1.0),
    "inv_up2": lambda g: 255 - _resize(g, 2.0),
    "inv_clahe": lambda g: 255 - _clahe(g),
    "inv_adapt31": lambda g: 255 - _adaptive(g, 31, 4, 1.0),
    "inv_up2_sharp": lambda g: 255 - _sharpen(_resize(g, 2.0), 2.0, 1.5),
    "inv_up3_sharp": lambda g: 255 - _sharpen(_resize(g, 3.0), 3.0, 1.5),
    "inv_clahe_up2": lambda g: 255 - _resize(_clahe(g), 2.0),
    "up2_sharp_strong": lambda g: _sharpen(_resize(g, 2.0), 3.0, 3.0),
}


# --------------------------------------------------------------------------------------------------------------
# cheap region-of-interest search


Box = Tuple[int, int, int, int]  # x0, y0, x1, y1 in full-frame pixels


def find_code_regions(grey: np.ndarray, max_regions: int = 3) -> List[Box]:
    """Regions that look like a 2-D code: solid blobs of high local contrast (half-size frame, ~1 ms at VGA).

    A QR code is a square patch where the local standard deviation is high everywhere; thin lines and edges
    of other things are removed by a morphological opening. The threshold follows the frame's own noise level.
    """
    h, w = grey.shape[:2]
    f = 0.5 if max(h, w) > 400 else 1.0
    small = cv2.resize(grey, None, fx=f, fy=f, interpolation=cv2.INTER_AREA) if f != 1.0 else grey
    grad = cv2.morphologyEx(small, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8))
    med = float(np.median(grad[::3, ::3]))
    thr = max(8.0, 3.0 * med)
    edges = (grad > thr).astype(np.float32)
    dens = cv2.blur(edges, (9, 9))
    mask = (dens > 0.3).astype(np.uint8)
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((9, 9), np.uint8))
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8))
    n, _, st, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if n <= 1:
        return []
    min_side = 22 * f * 2 if f != 1.0 else 22
    cand = []
    for i in range(1, n):
        x, y, bw, bh, area = (int(v) for v in st[i])
        if min(bw, bh) < min_side * 0.5 or max(bw, bh) > 4.0 * max(min(bw, bh), 1):
            continue
        fill = area / float(bw * bh)
        if fill < 0.25:
            continue
        cand.append((area * fill, x, y, bw, bh))
    cand.sort(reverse=True)
    out: List[Box] = []
    for _, x, y, bw, bh in cand[:max_regions]:
        m = 0.15 * max(bw, bh) + 4
        x0, y0 = max(0, int((x - m) / f)), max(0, int((y - m) / f))
        x1, y1 = min(w, int((x + bw + m) / f)), min(h, int((y + bh + m) / f))
        out.append((x0, y0, x1, y1))
    return out


# --------------------------------------------------------------------------------------------------------------
# perspective rectification: find the code's four corners, warp it square, then read the flat image

_ARUCO_DET: List[object] = []


def _quad_detector() -> Optional[object]:
    """OpenCV's finder-pattern detector (the ArUco-based one is faster and finds more than the classic one)."""
    if not _ARUCO_DET:
        make = getattr(cv2, "QRCodeDetectorAruco", None) or cv2.QRCodeDetector
        try:
            _ARUCO_DET.append(make())
        except Exception:  # pragma: no cover - depends on the OpenCV build
            _ARUCO_DET.append(None)
    return _ARUCO_DET[0]


def find_code_quad(grey: np.ndarray) -> Optional[np.ndarray]:
    """The four corners (4x2 float32, cyclic order) of a QR code found by its finder patterns, or None."""
    det = _quad_detector()
    if det is None:
        return None
    try:
        ok, pts = det.detect(grey)  # type: ignore[attr-defined]
    except cv2.error:
        return None
    if not ok or pts is None:
        return None
    q = np.asarray(pts, np.float32).reshape(-1, 2)
    if q.shape[0] != 4 or not np.isfinite(q).all():
        return None
    sides = np.linalg.norm(q - np.roll(q, 1, axis=0), axis=1)
    if sides.min() < 12 or sides.max() > 4.0 * sides.min():
        return None
    area = 0.5 * abs(float(np.dot(q[:, 0], np.roll(q[:, 1], 1)) - np.dot(q[:, 1], np.roll(q[:, 0], 1))))
    if area < 0.3 * sides.max() ** 2:
        return None
    return q


def rectify_quad(grey: np.ndarray, quad: np.ndarray) -> np.ndarray:
    """The code inside ``quad`` warped to a square (with a quiet-zone margin taken from the image around it)."""
    side = float(np.linalg.norm(quad - np.roll(quad, 1, axis=0), axis=1).max())
    size = int(min(600, max(280, 1.4 * side)))
    m = int(0.12 * size) + 4
    dst = np.float32([[m, m], [m + size, m], [m + size, m + size], [m, m + size]])
    h = cv2.getPerspectiveTransform(quad.astype(np.float32), dst)
    return cv2.warpPerspective(grey, h, (size + 2 * m, size + 2 * m), flags=cv2.INTER_CUBIC,
                               borderMode=cv2.BORDER_REPLICATE)


# Variants tried on a rectified code ("q:" strategies): the detector found corners, so these are cheap and good.
QUAD_VARIANTS: Tuple[str, ...] = ("raw", "sharp", "adapt31", "otsu")


class _Ctx:
    """Per-image cache of work shared by strategies (the corner search, which costs a few ms)."""

    def __init__(self) -> None:
        self.quads: Dict[Tuple[int, bool], Optional[np.ndarray]] = {}

    def quad(self, key: int, roi: np.ndarray, inverted: bool) -> Optional[np.ndarray]:
        k = (key, inverted)
        if k not in self.quads:
            self.quads[k] = find_code_quad(255 - roi if inverted else roi)
        return self.quads[k]


# --------------------------------------------------------------------------------------------------------------
# the cascade

# Heavier strategies, best first (chosen on the tuning seeds 1-2 of dabai-qr-photos-v1 by coverage per millisecond).
# "cv:" runs OpenCV's QR decoder instead of zbar on that variant; "q:" finds the code's corners (finder patterns),
# rectifies the perspective and reads the flat code with zbar ("q:inv" on the inverted image, for dark mode).
STREAM_ORDER: Tuple[str, ...] = (
    "full",
    "q:",
    "inv",
    "up2_sharp",
    "inv_up2_sharp",
    "sharp_strong",
    "q:inv",
    "inv_clahe_up2",
    "up2_adapt",
    "cv:sharp",
    "inv_up2",
    "up2",
    "adapt15",
    "sharp_otsu",
    "clahe",
    "inv_adapt31",
    "cv:raw",
    "down2_sharp",
    "stretch",
)
STILL_ORDER: Tuple[str, ...] = STREAM_ORDER[1:] + ("cv:up2", "up3_sharp", "inv_up3_sharp", "up2_sharp_strong", "adapt31",
                                                  "otsu", "inv_clahe", "cv:inv")

MAX_SIDE_UP = 900  # up-scaled variants are skipped on regions larger than this after scaling


def _run_strategy(name: str, roi: np.ndarray, max_side_up: int = MAX_SIDE_UP, ctx: Optional[_Ctx] = None,
                  key: int = 0) -> List[str]:
    if name.startswith("q:"):
        inverted = name == "q:inv"
        quad = (ctx or _Ctx()).quad(key, roi, inverted)
        if quad is None:
            return []
        flat = rectify_quad(255 - roi if inverted else roi, quad)
        for v in QUAD_VARIANTS:
            found = _zbar(np.ascontiguousarray(VARIANTS[v](flat)))
            if found:
                return found
        return []
    use_cv = name.startswith("cv:")
    vname = name[3:] if use_cv else name
    up = 3 if "up3" in vname else 2 if "up2" in vname else 1
    if up > 1 and max(roi.shape) * up > max_side_up:
        return []
    try:
        img = VARIANTS[vname](roi)
    except cv2.error:
        return []
    img = np.ascontiguousarray(img)
    return _cv(img) if use_cv else _zbar(img)


def _dedupe(xs: Sequence[str]) -> List[str]:
    seen = set()
    out = []
    for x in xs:
        if x not in seen:
            seen.add(x)
            out.append(x)
    return out


def decode_qr(image: np.ndarray) -> List[str]:
    """Texts of the QR codes in a still image (grey, BGR or BGRA; any size), trying the full cascade.

    Returns ``[]`` for an empty or unusable image. Never raises on odd content.
    """
    g = to_grey(image)
    if g is None:
        return []
    h, w = g.shape
    if max(h, w) > 1600:  # a phone photo: bring it to a size where modules are a few pixels
        f = 1600.0 / max(h, w)
        g = cv2.resize(g, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
    found = _zbar(g)
    if found:
        return _dedupe(found)
    regions = [g[y0:y1, x0:x1] for (x0, y0, x1, y1) in find_code_regions(g)]
    if not regions or max(g.shape) <= 400:
        regions.append(g)
    ctx = _Ctx()
    for name in STILL_ORDER:
        for key, roi in enumerate(regions):
            found = _run_strategy(name, roi, ctx=ctx, key=key)
            if found:
                return _dedupe(found)
    return []


def _iou(a: Box, b: Box) -> float:
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / float(union) if union > 0 else 0.0


class QrReader:
    """Reads QR codes from a live stream, a bounded amount of work per frame.

    Every frame: zbar on the grey frame and a cheap search for code-like regions (a few ms at 640x480).
    Then, while ``budget_ms`` lasts, heavier strategies on the code-like regions, continuing the rotation where
    the previous frame stopped, so a pass held up for a few frames meets every strategy without any single frame
    paying for all of them. A frame with no code-like region costs only the cheap part.

    The reader remembers regions across frames: a region where the code's corners (finder patterns) were found
    goes first in the next frames, and a region that stays put and keeps failing with no such evidence (static
    background clutter) is only re-examined every few frames, so it does not eat the budget of every frame.
    """

    STALE_AFTER = 12  # frames of failure without finder evidence before a fixed region counts as clutter
    CARRY = True
    STALE_RECHECK = 4  # a clutter region still gets the heavy strategies every this many frames

    def __init__(self, budget_ms: float = 6.0, order: Sequence[str] = STREAM_ORDER, max_regions: int = 2,
                 max_side_up: int = 900) -> None:
        self.budget_ms = float(budget_ms)
        self.max_side_up = int(max_side_up)
        self.order = tuple(order)
        self.max_regions = int(max_regions)
        self.reset()

    def reset(self) -> None:
        """Forget the rotation position and the remembered regions (e.g. when the camera moves)."""
        self._next = 0
        self._frame = 0
        self.last_strategy: Optional[str] = None
        self._hot: Optional[Box] = None  # region where finder patterns were last seen
        self._hot_age = 0
        self._tracks: List[List[object]] = []  # [box, frames failed without evidence]

    def _strikes(self, box: Box) -> int:
        for t in self._tracks:
            if _iou(t[0], box) > 0.7:  # type: ignore[arg-type]
                return int(t[1])  # type: ignore[call-overload]
        return 0

    def _remember(self, boxes: List[Box], evidence: List[bool]) -> None:
        tracks: List[List[object]] = []
        for b, ev in zip(boxes, evidence):
            tracks.append([b, 0 if ev else self._strikes(b) + 1])
        self._tracks = tracks[:8]

    def read(self, frame_bgr: np.ndarray) -> List[str]:
        """Texts of the QR codes found in this frame (usually ``[]``)."""
        g = to_grey(frame_bgr)
        if g is None:
            return []
        self._frame += 1
        boxes = find_code_regions(g, self.max_regions)
        if self._hot is not None and self.CARRY:  # the region where finder patterns were seen goes first (added if missed)
            hot = self._hot
            boxes.sort(key=lambda b: -_iou(b, hot))
            if not boxes or _iou(boxes[0], hot) < 0.3:
                boxes.insert(0, hot)
        area = sum((x1 - x0) * (y1 - y0) for (x0, y0, x1, y1) in boxes)
        full = not boxes or area > 0.5 * g.size
        rois = [g] if full else [g[y0:y1, x0:x1] for (x0, y0, x1, y1) in boxes]
        for roi in rois:
            found = _zbar(roi)
            if found:
                self.last_strategy = "raw"
                return _dedupe(found)
        if not boxes:
            self._remember([], [])
            return []
        # clutter that keeps failing with no finder evidence is skipped, except every few frames
        recheck = self._frame % self.STALE_RECHECK == 0
        live = [i for i, b in enumerate(boxes) if recheck or self._strikes(b) < self.STALE_AFTER]
        ctx = _Ctx()
        found = self._heavy(g, [g[boxes[i][1]:boxes[i][3], boxes[i][0]:boxes[i][2]] for i in live], ctx) if live else []
        evidence = [False] * len(boxes)
        for j, i in enumerate(live):
            evidence[i] = ctx.quads.get((j, False)) is not None or ctx.quads.get((j, True)) is not None
        if any(evidence):
            self._hot, self._hot_age = boxes[evidence.index(True)], 0
        elif self._hot is not None:
            self._hot_age += 1
            if self._hot_age > 8:
                self._hot = None
        self._remember(boxes, evidence)
        return found

    def _heavy(self, g: np.ndarray, rois: List[np.ndarray], ctx: _Ctx) -> List[str]:
        deadline = time.perf_counter() + self.budget_ms / 1000.0
        tried = 0
        while tried < len(self.order) and (tried == 0 or time.perf_counter() < deadline):
            name = self.order[self._next % len(self.order)]
            self._next += 1
            tried += 1
            for key, roi in enumerate(rois if name != "full" else [g]):
                found = (_zbar(roi) if name == "full" else
                         _run_strategy(name, roi, self.max_side_up, ctx=ctx, key=key))
                if found:
                    self.last_strategy = name
                    return _dedupe(found)
                if time.perf_counter() >= deadline:
                    break
        return []
