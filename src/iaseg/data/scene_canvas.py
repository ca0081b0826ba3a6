"""The canvas of a synthetic street scene (`street_scenes.render_scene`): a pinhole camera over a
street, a material-id canvas with a table of materials (class, colour, texture amplitudes),
shapes projected from metres to pixels, noise textures, the lit image and label computed from it
in one vectorised pass, and the colour palettes the painters draw from."""
from __future__ import annotations

import colorsys

import numpy as np
from PIL import Image

RGB = tuple[float, float, float]

# CamVid (SegNet) class ids
SKY, BUILDING, POLE, ROAD, PAVEMENT, TREE, SIGN, FENCE, CAR, PEDESTRIAN, BICYCLIST, VOID = range(12)


def hsv(h: float, s: float, v: float) -> tuple[float, float, float]:
    return colorsys.hsv_to_rgb(h % 1.0, min(max(s, 0.0), 1.0), min(max(v, 0.0), 1.0))


class Scene:
    """One image being drawn: a material-id canvas plus a table of materials (class, colour,
    texture amplitudes). The image and label are computed from it in one vectorised pass."""

    def __init__(self, height: int, width: int, rng: np.random.Generator) -> None:
        self.h, self.w, self.rng = height, width, rng
        self.mat = np.zeros((height, width), dtype=np.uint16)
        self.m_cls: list[int] = []
        self.m_rgb: list[tuple[float, float, float]] = []
        self.m_fine: list[float] = []
        self.m_coarse: list[float] = []
        # camera: horizon row, vanishing column, focal length (px), camera height (m)
        self.yh = height * rng.uniform(0.42, 0.57)
        self.xv = width * rng.uniform(0.38, 0.62)
        self.f = width * rng.uniform(0.72, 0.95)
        self.cam_h = rng.uniform(1.3, 1.7)
        self.coarse = self._coarse_noise()

    # -- materials -------------------------------------------------------------------------
    def material(self, cls: int, rgb: tuple[float, float, float], fine: float = 0.05, coarse: float = 0.05) -> int:
        self.m_cls.append(cls)
        self.m_rgb.append(rgb)
        self.m_fine.append(fine)
        self.m_coarse.append(coarse)
        return len(self.m_cls) - 1

    def _coarse_noise(self) -> np.ndarray:
        ch, cw = max(2, self.h // 12), max(2, self.w // 12)
        small = self.rng.standard_normal((ch, cw), dtype=np.float32)
        return np.asarray(Image.fromarray(small, mode="F").resize((self.w, self.h), Image.BILINEAR))

    # -- projection --------------------------------------------------------------------------
    def px(self, z: float, x: float) -> float:
        return self.xv + self.f * x / z

    def py(self, z: float, hgt: float) -> float:
        return self.yh + self.f * (self.cam_h - hgt) / z

    def _box(self, z: float, x0: float, x1: float, h0: float, h1: float, min_px: int = 0):
        a, b = self.px(z, x0), self.px(z, x1)
        c, d = self.py(z, h1), self.py(z, h0)
        ia, ib, ic, id_ = int(round(a)), int(round(b)), int(round(c)), int(round(d))
        if min_px and ib - ia < min_px:
            ia = int(np.floor((a + b) / 2))
            ib = ia + min_px
        if min_px and id_ - ic < min_px:
            id_ = ic + min_px
        return ia, ib, ic, id_

    def rect(self, z: float, x0: float, x1: float, h0: float, h1: float, m: int, min_px: int = 0) -> None:
        """Frontal rectangle at depth z, lateral x0..x1, heights h0..h1 (metres)."""
        xa, xb, ya, yb = self._box(z, x0, x1, h0, h1, min_px)
        xa, xb, ya, yb = max(xa, 0), min(xb, self.w), max(ya, 0), min(yb, self.h)
        if xa < xb and ya < yb:
            self.mat[ya:yb, xa:xb] = m

    def shape(self, z: float, x0: float, x1: float, h0: float, h1: float, m: int, kind: str,
              ragged: float = 0.0) -> None:
        """Frontal shape in its box: 'ellipse', 'triangle', 'diamond', 'ring'. `ragged` roughens
        the outline with the coarse noise (tree canopies)."""
        xa, xb, ya, yb = self._box(z, x0, x1, h0, h1)
        cxa, cxb, cya, cyb = max(xa, 0), min(xb, self.w), max(ya, 0), min(yb, self.h)
        if cxa >= cxb or cya >= cyb or xb - xa < 1 or yb - ya < 1:
            return
        u = ((np.arange(cxa, cxb) + 0.5 - xa) / (xb - xa))[None, :]
        v = ((np.arange(cya, cyb) + 0.5 - ya) / (yb - ya))[:, None]
        if kind == "ellipse" or kind == "ring":
            d = (2 * u - 1) ** 2 + (2 * v - 1) ** 2
            if ragged:
                d = d + ragged * self.coarse[cya:cyb, cxa:cxb] * 0.5
            mask = d <= 1.0
            if kind == "ring":
                mask &= d >= 0.55
        elif kind == "triangle":
            mask = v >= np.abs(2 * u - 1)
        elif kind == "diamond":
            mask = np.abs(u - 0.5) + np.abs(v - 0.5) <= 0.5
        else:  # pragma: no cover - internal
            raise ValueError(kind)
        view = self.mat[cya:cyb, cxa:cxb]
        view[mask] = m

    def side_quad(self, xp: float, z0: float, z1: float, h0: float, h1: float, m: int,
                  stripes: tuple[float, float, int] | None = None) -> None:
        """Rectangle on the vertical plane X = xp from depth z0 to z1, heights h0..h1, drawn in
        perspective. `stripes=(period_m, duty, material)` paints vertical bars along depth."""
        a, b = self.px(z0, xp), self.px(z1, xp)
        xa, xb = int(np.floor(min(a, b))), int(np.ceil(max(a, b)))
        xa, xb = max(xa, 0), min(xb, self.w)
        if xa >= xb:
            return
        dx = np.arange(xa, xb) + 0.5 - self.xv
        with np.errstate(divide="ignore"):
            z = self.f * xp / dx
        ok = (z >= z0) & (z <= z1)
        if not ok.any():
            return
        cols = np.nonzero(ok)[0]
        xa, xb = xa + cols[0], xa + cols[-1] + 1
        z = z[cols[0]: cols[-1] + 1]
        top = self.yh + self.f * (self.cam_h - h1) / z
        bot = self.yh + self.f * (self.cam_h - h0) / z
        ya, yb = max(int(np.floor(top.min())), 0), min(int(np.ceil(bot.max())), self.h)
        if ya >= yb:
            return
        rows = (np.arange(ya, yb) + 0.5)[:, None]
        mask = (rows >= top[None, :]) & (rows < bot[None, :])
        view = self.mat[ya:yb, xa:xb]
        if stripes is None:
            view[mask] = m
            return
        period, duty, m2 = stripes
        bar = ((z / period) % 1.0) < duty
        view[mask & bar[None, :]] = m2
        view[mask & ~bar[None, :]] = m

    # -- composition ---------------------------------------------------------------------------
    def compose(self, gains: np.ndarray, row_gain: np.ndarray, shade: np.ndarray | None,
                gamma: float, contrast: float) -> tuple[np.ndarray, np.ndarray]:
        rgb = np.clip(np.asarray(self.m_rgb, dtype=np.float32) * gains[None, :], 0, 1) * 255.0
        fine = np.asarray(self.m_fine, dtype=np.float32)
        coarse = np.asarray(self.m_coarse, dtype=np.float32)
        mat = self.mat.astype(np.intp)   # np.take is several times faster than fancy indexing
        mult = np.take(fine, mat)
        mult *= fine_noise(self.h, self.w, self.rng)
        tmp = np.take(coarse, mat)
        tmp *= self.coarse
        mult += tmp
        mult += 1.0
        mult *= row_gain[:, None]
        if shade is not None:
            mult *= shade
        img = np.take(rgb, mat, axis=0)
        img *= mult[:, :, None]
        np.clip(img, 0, 255, out=img)
        q = img.astype(np.uint8)
        # one lookup table does gamma + contrast on the quantised image
        x = (np.arange(256, dtype=np.float32) + 0.5) / 256.0
        lut = np.clip(((x ** gamma) - 0.5) * contrast + 0.5, 0, 1)
        image = np.take((lut * 255.0 + 0.5).astype(np.uint8), q)
        label = np.take(np.asarray(self.m_cls, dtype=np.uint8), mat)
        return image, label


_NOISE_BANK: dict[tuple[int, int], np.ndarray] = {}


def fine_noise(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """Per-pixel Gaussian texture: a random window of a fixed noise bank (drawing fresh normals
    for every pixel would cost more than the rest of the frame)."""
    bank = _NOISE_BANK.get((h, w))
    if bank is None:
        if len(_NOISE_BANK) > 8:
            _NOISE_BANK.clear()
        bank = np.random.default_rng(12345).standard_normal((h + 64, w + 64), dtype=np.float32)
        _NOISE_BANK[(h, w)] = bank
    y, x = int(rng.integers(0, 64)), int(rng.integers(0, 64))
    view = bank[y:y + h, x:x + w]
    return view[::-1] if rng.random() < 0.5 else view


# -- palettes ------------------------------------------------------------------------------------
def paint_colour(rng: np.random.Generator) -> tuple[float, float, float]:
    """Man-made colours (cars, clothes, some signs): many greys, any hue otherwise."""
    if rng.random() < 0.45:
        return hsv(rng.random(), rng.uniform(0, 0.08), rng.uniform(0.08, 0.92))
    return hsv(rng.random(), rng.uniform(0.25, 0.85), rng.uniform(0.2, 0.85))


def facade_colour(rng: np.random.Generator) -> tuple[float, float, float]:
    r = rng.random()
    if r < 0.45:   # brick, sandstone, render
        return hsv(rng.uniform(0.0, 0.12), rng.uniform(0.15, 0.55), rng.uniform(0.3, 0.85))
    if r < 0.85:   # grey, white, concrete
        return hsv(rng.random(), rng.uniform(0, 0.07), rng.uniform(0.3, 0.95))
    return paint_colour(rng)


def scaled_colour(rgb: tuple[float, float, float], k: float) -> tuple[float, float, float]:
    return min(rgb[0] * k, 1.0), min(rgb[1] * k, 1.0), min(rgb[2] * k, 1.0)


def near_colour(rng: np.random.Generator, rgb: tuple[float, float, float], spread: float = 0.06) -> tuple[float, float, float]:
    """A colour close to `rgb`: camouflage for people and objects against their background."""
    c = np.clip(np.asarray(rgb) + rng.normal(0, spread, 3), 0.02, 0.98)
    return float(c[0]), float(c[1]), float(c[2])
