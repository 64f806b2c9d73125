"""Writes imaging.json: Pillow's LANCZOS resize, diffusers' resize_mode="crop" and OpenCV's Canny on small synthetic images.

Run with Debian bookworm's python3-pil (Pillow 9.4.0), python3-numpy and python3-opencv (OpenCV 4.6.0):
    /usr/bin/python3 make_imaging_golden.py
Images are stored as base64 of their raw 8-bit pixels (row-major, interleaved channels).
"""
import base64
import json

import cv2
import numpy as np
from PIL import Image, ImageDraw


def b64(a):
    return base64.b64encode(np.ascontiguousarray(a, dtype=np.uint8).tobytes()).decode()


def picture(w, h, seed, mode="RGB"):
    """Smooth gradients, hard-edged shapes and noise: exercises ringing, clipping and flat areas."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x * 255 / max(w - 1, 1), y * 255 / max(h - 1, 1), (x + y) * 127 / max(w + h - 2, 1)], -1)
    im = Image.fromarray(base.astype(np.uint8), "RGB")
    d = ImageDraw.Draw(im)
    for _ in range(4):
        x0, y0 = int(rng.integers(0, w)), int(rng.integers(0, h))
        x1, y1 = min(w - 1, x0 + int(rng.integers(1, w // 2 + 2))), min(h - 1, y0 + int(rng.integers(1, h // 2 + 2)))
        d.rectangle([x0, y0, x1, y1], fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
    a = np.asarray(im).astype(np.int16) + rng.integers(-20, 21, (h, w, 3))
    im = Image.fromarray(np.clip(a, 0, 255).astype(np.uint8), "RGB")
    return im.convert(mode)


resize = []
for (w, h, nw, nh, mode, seed) in [
    (17, 13, 8, 8, "RGB", 1), (9, 7, 20, 15, "RGB", 2), (64, 48, 40, 40, "RGB", 3), (5, 5, 3, 9, "RGB", 4),
    (33, 21, 64, 64, "RGB", 5), (100, 30, 16, 48, "RGB", 6), (30, 20, 16, 16, "L", 7), (12, 40, 24, 24, "L", 8),
]:
    im = picture(w, h, seed, mode)
    out = im.resize((nw, nh), resample=Image.LANCZOS)
    resize.append({"width": w, "height": h, "channels": len(mode), "new_width": nw, "new_height": nh,
                   "pixels": b64(np.asarray(im)), "expected": b64(np.asarray(out))})

def resize_and_crop(image, width, height):
    """diffusers VaeImageProcessor._resize_and_crop (resize_mode="crop")."""
    ratio = width / height
    src_ratio = image.width / image.height
    src_w = width if ratio > src_ratio else image.width * height // image.height
    src_h = height if ratio <= src_ratio else image.height * width // image.width
    resized = image.resize((src_w, src_h), resample=Image.LANCZOS)
    res = Image.new("RGB", (width, height))
    res.paste(resized, box=(width // 2 - src_w // 2, height // 2 - src_h // 2))
    return res


crop = []
for (w, h, nw, nh, seed) in [(40, 20, 16, 16, 21), (20, 40, 24, 16, 22), (31, 17, 16, 32, 23)]:
    im = picture(w, h, seed)
    crop.append({"width": w, "height": h, "new_width": nw, "new_height": nh,
                 "pixels": b64(np.asarray(im)), "expected": b64(np.asarray(resize_and_crop(im, nw, nh)))})

canny = []
for (w, h, low, high, seed) in [(32, 24, 100, 200, 11), (40, 40, 50, 150, 12), (25, 31, 100, 200, 13), (48, 32, 200, 100, 14)]:
    im = np.asarray(picture(w, h, seed))
    edges = cv2.Canny(im, low, high)
    canny.append({"width": w, "height": h, "low": low, "high": high, "pixels": b64(im), "expected": b64(edges)})

with open("imaging.json", "w") as f:
    json.dump({"pillow": Image.__version__, "opencv": cv2.__version__, "resize": resize, "crop": crop, "canny": canny}, f)
