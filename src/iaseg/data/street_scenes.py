"""The street-scene renderer of the synthetic dataset: one scene drawn by a sequence of painters.

A pinhole camera looks down a street: sky, building facades with windows and shop signs, rows of
trees, a road with lane markings, pavements with tiles, poles (some with signs or traffic
lights), fences, parked and moving cars, pedestrians, bicyclists, and unlabelled clutter (void).
Everything is placed in metres and projected, so far objects are small. Colours are drawn from
overlapping ranges (grey road vs grey pavement vs grey buildings, clothes that match the
background, ...), every image gets its own colour cast, brightness, contrast and gamma, and all
surfaces carry noise textures, so colour alone does not separate the classes. Safety-critical
objects (G3: SignSymbol, Car, Pedestrian, Bicyclist) are small, rare and often partly occluded.

`render_scene` runs the painters in a fixed order (sky, street plan, ground, skyline, facades,
street end, objects far to near, lighting, annotation void); each draws into a material-id
canvas and takes its random numbers from the scene's generator in turn, so a scene is a
function of the generator's state only. About 5-10 ms per 360x480 image on one core.

    >>> image, label = render_scene(360, 480, np.random.default_rng(0))
"""
from __future__ import annotations

import colorsys
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
from PIL import Image

RGB = tuple[float, float, float]

# CamVid (SegNet) class ids
SKY, BUILDING, POLE, ROAD, PAVEMENT, TREE, SIGN, FENCE, CAR, PEDESTRIAN, BICYCLIST, VOID = range(12)


def _hsv(h: float, s: float, v: float) -> tuple[float, float, float]:
    return colorsys.hsv_to_rgb(h % 1.0, min(max(s, 0.0), 1.0), min(max(v, 0.0), 1.0))


class _Scene:
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
        mult *= _fine_noise(self.h, self.w, self.rng)
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


def _fine_noise(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
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
def _paint(rng: np.random.Generator) -> tuple[float, float, float]:
    """Man-made colours (cars, clothes, some signs): many greys, any hue otherwise."""
    if rng.random() < 0.45:
        return _hsv(rng.random(), rng.uniform(0, 0.08), rng.uniform(0.08, 0.92))
    return _hsv(rng.random(), rng.uniform(0.25, 0.85), rng.uniform(0.2, 0.85))


def _facade_colour(rng: np.random.Generator) -> tuple[float, float, float]:
    r = rng.random()
    if r < 0.45:   # brick, sandstone, render
        return _hsv(rng.uniform(0.0, 0.12), rng.uniform(0.15, 0.55), rng.uniform(0.3, 0.85))
    if r < 0.85:   # grey, white, concrete
        return _hsv(rng.random(), rng.uniform(0, 0.07), rng.uniform(0.3, 0.95))
    return _paint(rng)


def _scaled(rgb: tuple[float, float, float], k: float) -> tuple[float, float, float]:
    return min(rgb[0] * k, 1.0), min(rgb[1] * k, 1.0), min(rgb[2] * k, 1.0)


def _near(rng: np.random.Generator, rgb: tuple[float, float, float], spread: float = 0.06) -> tuple[float, float, float]:
    """A colour close to `rgb`: camouflage for people and objects against their background."""
    c = np.clip(np.asarray(rgb) + rng.normal(0, spread, 3), 0.02, 0.98)
    return float(c[0]), float(c[1]), float(c[2])


# -- the scene -----------------------------------------------------------------------------------
def render_scene(height: int, width: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Draw one street scene: uint8 H x W x 3 RGB image and uint8 H x W CamVid label (11 = void)."""
    s = _Scene(height, width, rng)
    street = _plan_street(s, *_paint_sky(s))
    _paint_ground(s, street)
    _paint_skyline(s, street)
    shop_signs = _paint_facades(s, street)
    _paint_street_end(s, street, shop_signs)
    _paint_objects(s, street)
    image, label = _light(s, street.sunny)
    _annotation_void(s, label)
    return image, label


@dataclass
class _Street:
    """The plan of one scene in metres (camera at X = 0, looking down +Z), shared by the painters."""
    sunny: bool
    sky_rgb: RGB
    lane_w: float
    lanes_l: int
    lanes_r: int
    offset: float
    road_l: float
    road_r: float
    fac_l: float
    fac_r: float
    z_end: float
    road_rgb: RGB = (0.0, 0.0, 0.0)
    pave_rgb: RGB = (0.0, 0.0, 0.0)


def _paint_sky(s: _Scene) -> tuple[bool, RGB]:
    """Material 0, the sky: overcast white-grey most of the time, like CamVid; otherwise blue."""
    rng, u = s.rng, s.rng.uniform
    sunny = rng.random() < 0.35
    if sunny:
        sky_rgb = _hsv(u(0.55, 0.62), u(0.2, 0.5), u(0.7, 0.95))
    else:
        sky_rgb = _hsv(u(0.55, 0.65), u(0.0, 0.1), u(0.72, 0.98))
    s.material(SKY, sky_rgb, fine=0.015, coarse=u(0.02, 0.08))
    return sunny, sky_rgb


def _plan_street(s: _Scene, sunny: bool, sky_rgb: RGB) -> _Street:
    """Lanes, road, pavements and facades along both sides, and where the street ends."""
    rng, u = s.rng, s.rng.uniform
    lane_w = u(2.6, 3.3)
    lanes_l, lanes_r = 1 + int(rng.random() < 0.3), 1 + int(rng.random() < 0.3)
    offset = u(-0.5, 0.5) * lane_w
    road_l, road_r = -lanes_l * lane_w + offset, lanes_r * lane_w + offset
    pave_l, pave_r = u(1.5, 4.5), u(1.5, 4.5)
    fac_l, fac_r = road_l - pave_l, road_r + pave_r
    z_end = u(50, 220)
    return _Street(sunny, sky_rgb, lane_w, lanes_l, lanes_r, offset, road_l, road_r, fac_l, fac_r, z_end)


def _paint_ground(s: _Scene, st: _Street) -> None:
    """Road (patches, kerbs, lane markings, zebra crossings), tiled pavements and what lies
    beyond them (grass or more pavement), projected row by row below the horizon."""
    rng, u = s.rng, s.rng.uniform
    height, width = s.h, s.w
    lane_w, lanes_l, lanes_r, offset = st.lane_w, st.lanes_l, st.lanes_r, st.offset
    road_l, road_r, fac_l, fac_r = st.road_l, st.road_r, st.fac_l, st.fac_r
    road_rgb = _hsv(rng.random(), u(0, 0.08), u(0.25, 0.55))
    m_road = s.material(ROAD, road_rgb, fine=u(0.06, 0.14), coarse=u(0.04, 0.12))
    m_road2 = s.material(ROAD, _scaled(road_rgb, u(0.75, 1.15)), fine=0.1, coarse=0.1)  # patches
    if rng.random() < 0.55:
        pave_rgb = _hsv(rng.random(), u(0, 0.1), u(0.35, 0.7))          # grey: close to the road
    else:
        pave_rgb = _hsv(u(0.0, 0.11), u(0.12, 0.4), u(0.35, 0.7))     # red/beige paving
    m_pave = s.material(PAVEMENT, pave_rgb, fine=u(0.05, 0.1), coarse=0.06)
    m_joint = s.material(PAVEMENT, _scaled(pave_rgb, u(0.7, 0.85)), fine=0.05, coarse=0.05)
    m_kerb = s.material(PAVEMENT, _hsv(0, 0, u(0.55, 0.85)), fine=0.05, coarse=0.05)
    mark_rgb = _hsv(0.13, u(0.6, 0.9), u(0.7, 0.9)) if rng.random() < 0.15 else _hsv(0, 0, u(0.72, 0.95))
    m_mark = s.material(ROAD, mark_rgb, fine=0.04, coarse=0.08)
    grass_rgb = _hsv(u(0.17, 0.3), u(0.3, 0.65), u(0.25, 0.55))
    m_beyond = (s.material(TREE, grass_rgb, fine=0.18, coarse=0.15) if rng.random() < 0.6
                else s.material(PAVEMENT, _near(rng, pave_rgb), fine=0.08, coarse=0.08))

    r0 = int(np.floor(s.yh)) + 1
    rows = np.arange(r0, height, dtype=np.float32) + 0.5
    zr = (s.f * s.cam_h / (rows - s.yh)).astype(np.float32)                 # depth per row
    xg = (np.arange(width, dtype=np.float32) + 0.5 - s.xv)[None, :] * (zr / s.f)[:, None]
    road = (xg > road_l) & (xg < road_r)
    pave = ((xg > fac_l) & (xg <= road_l)) | ((xg >= road_r) & (xg < fac_r))
    g = np.full(xg.shape, m_beyond, dtype=np.uint16)
    g[pave] = m_pave
    tile = u(0.5, 1.0)
    joints = pave & ((((xg / tile) % 1.0) < 0.07) | (((zr / tile) % 1.0) < 0.07)[:, None])
    g[joints] = m_joint
    g[road] = m_road
    g[road & (s.coarse[r0:] > 1.1)] = m_road2
    kerb = (np.abs(xg - road_l) < 0.15) | (np.abs(xg - road_r) < 0.15)
    g[kerb] = m_kerb
    dash, duty = u(6, 12), u(0.3, 0.6)
    dashed = (((zr / dash) % 1.0) < duty)[:, None]
    lines = np.zeros_like(road)
    for k in range(-lanes_l + 1, lanes_r):
        x_line = k * lane_w + offset
        lines |= (np.abs(xg - x_line) < 0.08) & (dashed if k != 0 or rng.random() < 0.6 else True)
    if rng.random() < 0.5:   # solid edge lines
        lines |= (np.abs(xg - (road_l + 0.3)) < 0.07) | (np.abs(xg - (road_r - 0.3)) < 0.07)
    if rng.random() < 0.25:  # zebra crossing
        zc = u(8, 25)
        lines |= ((zr > zc) & (zr < zc + 3))[:, None] & (((xg / 1.0) % 1.0) < 0.5)
    g[lines & road] = m_mark
    s.mat[r0:] = g
    st.road_rgb, st.pave_rgb = road_rgb, pave_rgb


def _paint_skyline(s: _Scene, st: _Street) -> None:
    """A far band above the horizon: distant trees or buildings."""
    rng, u = s.rng, s.rng.uniform
    height, z_end = s.h, st.z_end
    far_cls = TREE if rng.random() < 0.5 else BUILDING
    far_rgb = _hsv(u(0.2, 0.3), u(0.2, 0.5), u(0.2, 0.45)) if far_cls == TREE else _facade_colour(rng)
    m_far = s.material(far_cls, far_rgb, fine=0.12, coarse=0.15)
    prof = s.coarse[int(s.yh) % height] * (0.02 * height) + u(0.02, 0.09) * height
    top_far = s.yh - np.maximum(prof, 0)
    bot_far = s.yh + s.f * s.cam_h / z_end
    rr = np.arange(height, dtype=np.float32)[:, None] + 0.5
    s.mat[(rr >= top_far[None, :]) & (rr < bot_far)] = m_far


def _paint_facades(s: _Scene, st: _Street) -> list[tuple[float, float, float, float]]:
    """Segments along each side of the street (building / tree row / open), then the windows of
    the buildings. Returns the shop signs to hang on the facades: (x, z0, z1, height)."""
    rng, u = s.rng, s.rng.uniform
    height, width = s.h, s.w
    fac_l, fac_r, z_end, sky_rgb = st.fac_l, st.fac_r, st.z_end, st.sky_rgb
    rr = np.arange(height, dtype=np.float32)[:, None] + 0.5
    xs = np.arange(width, dtype=np.float64) + 0.5 - s.xv
    facade_top = np.full(width, np.inf)
    facade_bot = np.full(width, -np.inf)
    facade_mat = np.zeros(width, dtype=np.uint16)
    window_info: list[tuple[np.ndarray, np.ndarray, float, float, float, int, float]] = []
    shop_signs: list[tuple[float, float, float, float]] = []
    for xp in (fac_l, fac_r):
        with np.errstate(divide="ignore", invalid="ignore"):
            zc = s.f * xp / xs
        valid = (zc > 0.5) & (zc <= z_end)
        z = 1.0 + u(0, 3)
        while z < z_end:
            length = u(8, 45)
            kind = rng.choice(3, p=[0.58, 0.30, 0.12])
            cols = valid & (zc >= z) & (zc < z + length)
            if cols.any():
                if kind == 0:      # building
                    hb = u(8, 30)
                    col = _facade_colour(rng)
                    m = s.material(BUILDING, col, fine=u(0.04, 0.1), coarse=u(0.05, 0.12))
                elif kind == 1:    # row of trees seen from the side, ragged top
                    hb = u(4, 12)
                    m = s.material(TREE, _hsv(u(0.14, 0.36), u(0.25, 0.6), u(0.12, 0.45)), fine=0.28, coarse=0.2)
                else:              # open: a low wall or fence
                    hb = u(0.8, 1.6)
                    m = s.material(FENCE if rng.random() < 0.6 else BUILDING, _paint(rng), fine=0.06, coarse=0.06)
                zcol = zc[cols]
                top = s.yh + s.f * (s.cam_h - hb) / zcol
                if kind == 1:
                    top = top - s.coarse[max(int(s.yh) - 1, 0), cols] * 0.12 * s.f * hb / zcol
                facade_top[cols] = top
                facade_bot[cols] = s.yh + s.f * s.cam_h / zcol
                facade_mat[cols] = m
                if kind == 0:
                    win_rgb = (_near(rng, sky_rgb, 0.1) if rng.random() < 0.4
                               else _hsv(u(0.5, 0.7), u(0, 0.3), u(0.05, 0.35)))
                    m_win = s.material(BUILDING, win_rgb, fine=0.05, coarse=0.1)
                    window_info.append((np.nonzero(cols)[0], zcol, u(2.5, 4.5), u(0.35, 0.65),
                                        u(2.8, 3.6), m_win, hb))
                    if rng.random() < 0.75:
                        sz = z + u(0, max(length - 4, 0.1))
                        shop_signs.append((xp, sz, min(sz + u(2, 8), z + length), u(2.4, 3.0)))
            z += length
    fc = np.isfinite(facade_top)
    if fc.any():
        mask = (rr >= facade_top[None, :]) & (rr < facade_bot[None, :])
        np.copyto(s.mat, facade_mat[None, :], where=mask)
        # windows: a grid in facade coordinates (depth along the street x height above ground)
        for cols, zcol, period, duty, floor_h, m_win, hb in window_info:
            wcol = ((zcol / period) % 1.0) < duty
            if not wcol.any():
                continue
            cols = cols[wcol]
            zcol = zcol[wcol]
            ya = max(int(np.floor(facade_top[cols].min())), 0)
            yb = min(int(np.ceil(facade_bot[cols].max())), height)
            if ya >= yb:
                continue
            hgt = (facade_bot[cols][None, :] - rr[ya:yb]) * (zcol / s.f)[None, :]
            win = ((hgt % floor_h) > 0.35 * floor_h) & ((hgt % floor_h) < 0.85 * floor_h) \
                & (hgt > floor_h) & (hgt < hb - 0.8)
            view = s.mat[ya:yb]
            sub = view[:, cols]
            sub[win] = m_win
            view[:, cols] = sub
    return shop_signs


def _paint_street_end(s: _Scene, st: _Street, shop_signs: list[tuple[float, float, float, float]]) -> None:
    """The street's far end (a cross facade, or open), and the shop signs."""
    rng, u = s.rng, s.rng.uniform
    if rng.random() < 0.6:
        m_end = s.material(BUILDING, _facade_colour(rng), fine=0.08, coarse=0.1)
        s.rect(st.z_end, st.fac_l, st.fac_r, 0, u(5, 20), m_end)

    for xp, z0, z1, h0 in shop_signs:
        s.side_quad(xp + (0.05 if xp < 0 else -0.05), z0, z1, h0, h0 + u(0.6, 1.4),
                    s.material(SIGN, _paint(rng) if rng.random() < 0.5 else _hsv(rng.random(), u(0.5, 0.9), u(0.4, 0.9)),
                               fine=0.05, coarse=0.05))


def _paint_objects(s: _Scene, st: _Street) -> None:
    """Place the objects of the street, then draw them far to near (`_PAINTERS`)."""
    rng, u = s.rng, s.rng.uniform
    lane_w, lanes_l, lanes_r, offset, z_end = st.lane_w, st.lanes_l, st.lanes_r, st.offset, st.z_end
    road_l, road_r, fac_l, fac_r = st.road_l, st.road_r, st.fac_l, st.fac_r
    objects: list[tuple[float, Any]] = []
    add = objects.append
    walls = {-1: (road_l, fac_l), 1: (road_r, fac_r)}

    # poles along the kerb, some with signs or traffic lights
    for side in (-1, 1):
        kerb_x = walls[side][0] + side * u(0.3, 0.6)
        z = u(3, 15)
        while z < min(z_end, 90):
            add((z, ("pole", side, kerb_x, z)))
            z += u(8, 30)
    # a few sign posts on the pavement
    for _ in range(rng.poisson(3.0)):
        side = int(rng.choice([-1, 1]))
        add((u(4, 50), ("signpost", side, walls[side][0] + side * u(0.3, 1.5))))
    # street trees
    for _ in range(rng.poisson(1.4)):
        side = int(rng.choice([-1, 1]))
        near, far = walls[side]
        add((u(5, 60), ("tree", near + 0.6 * (far - near))))
    # fences along the kerb or the facade
    for side in (-1, 1):
        if rng.random() < 0.45:
            near, far = walls[side]
            xf = near + side * 0.2 if rng.random() < 0.5 else far - side * 0.3
            z0 = u(2, 30)
            add((z0, ("fence", xf, z0, z0 + u(5, 40))))
    # parked cars along the kerb
    for side in (-1, 1):
        if rng.random() < 0.7:
            z = u(3, 20)
            for _ in range(int(rng.integers(1, 6))):
                add((z, ("parked", side, walls[side][0] - side * u(1.0, 1.3), z)))
                z += u(5.0, 9.0)
    # moving cars in the lanes
    for _ in range(rng.poisson(2.6)):
        lane = int(rng.integers(-lanes_l, lanes_r))
        add((u(7, 90), ("car", (lane + 0.5) * lane_w + offset + u(-0.4, 0.4))))
    # pedestrians: mostly on the pavements, some crossing
    for _ in range(rng.poisson(5.0)):
        side = int(rng.choice([-1, 1]))
        near, far = walls[side]
        if rng.random() < 0.15:
            x = u(road_l + 0.5, road_r - 0.5)
        else:
            x = near + (far - near) * u(0.15, 0.9)
        add((u(3.5, 40), ("person", x)))
    # bicyclists on the road near the kerb, or crossing
    for _ in range(rng.poisson(1.2)):
        side = int(rng.choice([-1, 1]))
        add((u(4, 35), ("bike", walls[side][0] - side * u(0.6, 1.5), rng.random() < 0.45)))
    # unlabelled clutter: bins, bollards, boxes (void)
    for _ in range(rng.poisson(4.0)):
        side = int(rng.choice([-1, 1]))
        near, far = walls[side]
        add((u(3, 40), ("clutter", near + (far - near) * u(0.1, 0.95))))

    objects.sort(key=lambda o: -o[0])
    context = {"sky": st.sky_rgb, "pave": st.pave_rgb, "road": st.road_rgb}
    for z, obj in objects:
        _PAINTERS[obj[0]](s, z, obj, context)


def _light(s: _Scene, sunny: bool) -> tuple[np.ndarray, np.ndarray]:
    """Lighting (vertical gradient, a sunny day's shadow across the lower image, colour cast,
    gamma, contrast) and the image and label of the canvas."""
    rng, u = s.rng, s.rng.uniform
    height, width = s.h, s.w
    rr = np.arange(height, dtype=np.float32)[:, None] + 0.5
    row_gain = np.linspace(u(0.85, 1.0), u(1.0, 1.1), height, dtype=np.float32)
    shade = None
    if sunny and rng.random() < 0.6:
        xx = np.arange(width, dtype=np.float32)[None, :]
        edge = s.xv + (rr - s.yh) * u(-1.5, 1.5) + u(-0.3, 0.3) * width
        dark = (xx < edge) if rng.random() < 0.5 else (xx > edge)
        shade = np.where(dark & (rr > s.yh), np.float32(u(0.5, 0.75)), np.float32(1.0)).astype(np.float32)
    gains = np.asarray([u(0.85, 1.15), u(0.9, 1.1), u(0.85, 1.15)], dtype=np.float32) * u(0.65, 1.25)
    image, label = s.compose(gains, row_gain, shade, gamma=u(0.8, 1.25), contrast=u(0.8, 1.2))
    return image, label


def _annotation_void(s: _Scene, label: np.ndarray) -> None:
    """Annotation-style void: a thin outline where objects meet the background, and often an
    unlabelled patch at the vanishing point (far away, annotators give up)."""
    rng, u = s.rng, s.rng.uniform
    height, width = s.h, s.w
    if rng.random() < 0.85:
        _void_outline(label)
    if rng.random() < 0.6:
        ry, rx = height * u(0.02, 0.06), width * u(0.03, 0.1)
        ya, yb = max(int(s.yh - ry), 0), min(int(s.yh + ry) + 1, height)
        xa, xb = max(int(s.xv - rx), 0), min(int(s.xv + rx) + 1, width)
        yy = (np.arange(ya, yb) + 0.5 - s.yh)[:, None] / ry
        xx = (np.arange(xa, xb) + 0.5 - s.xv)[None, :] / rx
        label[ya:yb, xa:xb][yy ** 2 + xx ** 2 <= 1 + 0.5 * s.coarse[ya:yb, xa:xb]] = VOID


_STUFF = np.zeros(256, dtype=bool)
_STUFF[[SKY, BUILDING, ROAD, PAVEMENT, TREE]] = True


def _void_outline(label: np.ndarray) -> None:
    """Mark background pixels next to a different class as void (like the unlabelled borders
    of hand annotation); the objects themselves stay intact."""
    stuff = _STUFF[label]
    dx = label[:, 1:] != label[:, :-1]
    dy = label[1:, :] != label[:-1, :]
    out = np.zeros(label.shape, dtype=bool)
    # the background side of object borders, and one side of background/background borders
    out[:, 1:] |= dx & stuff[:, 1:]
    out[:, :-1] |= dx & stuff[:, :-1] & ~stuff[:, 1:]
    out[1:, :] |= dy & stuff[1:, :]
    out[:-1, :] |= dy & stuff[:-1, :] & ~stuff[1:, :]
    label[out] = VOID


def _person(s: _Scene, z: float, x: float, height: float, top_rgb, bottom_rgb, cls: int,
            walking: float, fine: float = 0.05) -> None:
    u = s.rng.uniform
    m_top = s.material(cls, top_rgb, fine=fine, coarse=0.05)
    m_bot = s.material(cls, bottom_rgb, fine=fine, coarse=0.05)
    m_skin = s.material(cls, _hsv(u(0.03, 0.09), u(0.2, 0.6), u(0.25, 0.85)), fine=0.03, coarse=0.03)
    hw = 0.2 * height / 1.75
    leg = 0.47 * height
    s.rect(z, x - hw * 0.9 - walking, x - 0.02, 0, leg, m_bot, min_px=1)
    s.rect(z, x + 0.02, x + hw * 0.9 + walking, 0, leg, m_bot, min_px=1)
    s.rect(z, x - hw, x + hw, leg * 0.95, 0.84 * height, m_top, min_px=1)
    s.rect(z, x - hw - 0.08, x - hw + 0.02, 0.48 * height, 0.82 * height, m_top)
    s.rect(z, x + hw - 0.02, x + hw + 0.08, 0.48 * height, 0.82 * height, m_top)
    s.shape(z, x - 0.11, x + 0.11, 0.84 * height, height, m_skin, "ellipse")


def _clothes(s: _Scene, context: dict) -> tuple:
    """Clothes colours: dark and neutral mostly; a quarter match the background (hard cases)."""
    rng = s.rng
    if rng.random() < 0.25:
        bg = context["pave"] if rng.random() < 0.5 else context["road"]
        return _near(rng, bg, 0.05), _near(rng, bg, 0.05)
    top = _paint(rng)
    bottom = _hsv(rng.uniform(0.55, 0.7), rng.uniform(0.1, 0.5), rng.uniform(0.1, 0.45)) \
        if rng.random() < 0.6 else _paint(rng)
    return top, bottom


def _sign(s: _Scene, z: float, x: float, h: float) -> None:
    rng, u = s.rng, s.rng.uniform
    size = u(0.5, 1.0)
    r = rng.random()
    if r < 0.25:     # seen from behind: grey, like the pole
        rgb = _hsv(0, 0, u(0.3, 0.7))
    elif r < 0.85:
        rgb = [(0.8, 0.1, 0.1), (0.1, 0.3, 0.75), (0.95, 0.8, 0.1), (0.92, 0.92, 0.92), (0.1, 0.5, 0.25)][int(rng.integers(5))]
        rgb = _near(rng, rgb, 0.08)
    else:
        rgb = _paint(rng)
    m = s.material(SIGN, rgb, fine=0.04, coarse=0.05)
    kind = ["rect", "ellipse", "triangle", "diamond"][int(rng.integers(4))]
    x0, x1, h0, h1 = x - size / 2, x + size / 2, h, h + size * (u(0.6, 1.4) if kind == "rect" else 1.0)
    if kind == "rect":
        s.rect(z, x0, x1, h0, h1, m, min_px=1)
    else:
        s.shape(z, x0, x1, h0, h1, m, kind)
    if r >= 0.25 and rng.random() < 0.5:  # inner symbol
        inner = s.material(SIGN, _hsv(0, 0, u(0.05, 0.95)), fine=0.04, coarse=0.04)
        c, hs = (h0 + h1) / 2, size * 0.22
        s.rect(z, x - hs, x + hs, c - hs * 0.8, c + hs * 0.6, inner)


def _car(s: _Scene, z: float, x: float, side: int) -> None:
    """A car seen from behind (side 0) or parked along the kerb (side -1/1: rear face plus the
    side in perspective)."""
    rng, u = s.rng, s.rng.uniform
    col = _paint(rng)
    body = s.material(CAR, col, fine=u(0.02, 0.06), coarse=0.05)
    glass = s.material(CAR, _hsv(u(0.5, 0.7), u(0, 0.3), u(0.05, 0.3)), fine=0.05, coarse=0.08)
    dark = s.material(CAR, _hsv(0, 0, u(0.02, 0.12)), fine=0.03, coarse=0.03)
    lights = s.material(CAR, (u(0.6, 0.9), u(0.05, 0.2), u(0.05, 0.15)), fine=0.03, coarse=0.03)
    w = u(1.65, 2.0)
    h = u(1.35, 1.7) if rng.random() < 0.85 else u(1.9, 2.6)   # some vans
    length = u(3.8, 4.8)
    x0, x1 = x - w / 2, x + w / 2
    if side:
        xs = x1 if side < 0 else x0        # the side facing the road centre / camera
        s.side_quad(xs, z, z + length, 0.15, h * 0.6, body)
        s.side_quad(xs, z + 0.3, z + length - 0.3, h * 0.6, h * 0.97, glass)
        s.side_quad(xs, z + 0.1, z + length - 0.1, h * 0.6, h * 0.62, body)
        for zw in (z + 0.8, z + length - 0.8):
            s.side_quad(xs, zw - 0.33, zw + 0.33, 0, 0.5, dark)
    s.rect(z, x0, x1, 0.25, h * 0.6, body, min_px=1)
    s.rect(z, x0 + 0.1, x1 - 0.1, h * 0.6, h, body, min_px=1)
    s.rect(z, x0 + 0.2, x1 - 0.2, h * 0.64, h * 0.93, glass)
    s.rect(z, x0 + 0.05, x0 + 0.35, 0, 0.3, dark)
    s.rect(z, x1 - 0.35, x1 - 0.05, 0, 0.3, dark)
    s.rect(z, x0 + 0.05, x0 + 0.3, h * 0.42, h * 0.52, lights)
    s.rect(z, x1 - 0.3, x1 - 0.05, h * 0.42, h * 0.52, lights)


# -- object painters: (scene, depth z, object tuple, colour context) -------------------------------
def _pole(s: _Scene, z: float, obj: tuple, context: dict) -> None:
    """A pole at the kerb: bare, with a lamp arm, a sign or a traffic light."""
    rng, u = s.rng, s.rng.uniform
    _, side, x, _ = obj
    hp = u(3.5, 8.0)
    wp = u(0.08, 0.18)
    m = s.material(POLE, _hsv(rng.random(), u(0, 0.2), u(0.15, 0.7)), fine=0.04, coarse=0.04)
    s.rect(z, x - wp / 2, x + wp / 2, 0, hp, m, min_px=1)
    r = rng.random()
    if r < 0.3:      # lamp arm towards the road
        arm = u(0.8, 2.0) * -side
        s.rect(z, min(x, x + arm), max(x, x + arm), hp - 0.15, hp, m, min_px=1)
    elif r < 0.75:   # sign
        _sign(s, z, x, u(2.0, min(3.5, hp - 0.2)))
    elif r < 0.9:    # traffic light
        m_box = s.material(SIGN, _hsv(0, 0, u(0.05, 0.3)), fine=0.04, coarse=0.04)
        hb = min(hp - 0.1, u(2.8, 4.0))
        s.rect(z, x - 0.18, x + 0.18, hb - 0.9, hb, m_box)
        lamp = s.material(SIGN, [(0.9, 0.15, 0.1), (0.95, 0.7, 0.1), (0.2, 0.85, 0.3)][int(rng.integers(3))],
                          fine=0.03, coarse=0.03)
        k = int(rng.integers(3))
        s.shape(z, x - 0.1, x + 0.1, hb - 0.3 * (k + 1), hb - 0.3 * k - 0.1, lamp, "ellipse")


def _signpost(s: _Scene, z: float, obj: tuple, context: dict) -> None:
    u = s.rng.uniform
    _, side, x = obj
    m = s.material(POLE, _hsv(0, 0, u(0.2, 0.6)), fine=0.04, coarse=0.04)
    hs = u(1.8, 2.6)
    s.rect(z, x - 0.04, x + 0.04, 0, hs, m, min_px=1)
    _sign(s, z, x, hs)


def _tree(s: _Scene, z: float, obj: tuple, context: dict) -> None:
    u = s.rng.uniform
    _, x = obj
    trunk = s.material(TREE, _hsv(u(0.05, 0.12), u(0.2, 0.5), u(0.1, 0.35)), fine=0.15, coarse=0.1)
    crown = s.material(TREE, _hsv(u(0.14, 0.36), u(0.25, 0.65), u(0.12, 0.5)), fine=0.3, coarse=0.25)
    ht, r = u(2.0, 3.5), u(1.2, 2.8)
    s.rect(z, x - 0.15, x + 0.15, 0, ht + r, trunk, min_px=1)
    s.shape(z, x - r, x + r, ht, ht + 2 * r * u(0.8, 1.2), crown, "ellipse", ragged=0.6)


def _fence(s: _Scene, z: float, obj: tuple, context: dict) -> None:
    rng, u = s.rng, s.rng.uniform
    _, xf, z0, z1 = obj
    col = _paint(rng)
    m = s.material(FENCE, col, fine=0.06, coarse=0.06)
    m_bar = s.material(FENCE, _scaled(col, u(0.5, 0.8)), fine=0.06, coarse=0.06)
    s.side_quad(xf, z0, z1, 0, u(0.8, 1.4), m, stripes=(u(0.12, 0.3), u(0.3, 0.6), m_bar))


def _parked_car(s: _Scene, z: float, obj: tuple, context: dict) -> None:
    _, side, x, _ = obj
    _car(s, z, x, side)


def _moving_car(s: _Scene, z: float, obj: tuple, context: dict) -> None:
    _, x = obj
    _car(s, z, x, 0)


def _pedestrian(s: _Scene, z: float, obj: tuple, context: dict) -> None:
    u = s.rng.uniform
    _, x = obj
    top, bottom = _clothes(s, context)
    _person(s, z, x, u(1.5, 1.95), top, bottom, PEDESTRIAN, walking=u(0, 0.15))


def _bicyclist(s: _Scene, z: float, obj: tuple, context: dict) -> None:
    """A bicycle seen from the side (two rings and a frame) or from behind, and its rider."""
    rng, u = s.rng, s.rng.uniform
    _, x, side_view = obj
    frame = s.material(BICYCLIST, _paint(rng), fine=0.04, coarse=0.04)
    tyre = s.material(BICYCLIST, _hsv(0, 0, u(0.03, 0.2)), fine=0.03, coarse=0.03)
    top, bottom = _clothes(s, context)
    if side_view:
        d = u(0.55, 0.7)
        for cx in (x - 0.55, x + 0.55):
            s.shape(z, cx - d / 2, cx + d / 2, 0, d, tyre, "ring")
        s.rect(z, x - 0.55, x + 0.55, d * 0.5, d * 0.5 + 0.06, frame, min_px=1)
        s.rect(z, x - 0.1, x + 0.1, d * 0.5, d + 0.1, frame, min_px=1)
    else:
        s.rect(z, x - 0.03, x + 0.03, 0, 0.7, tyre, min_px=1)
        s.rect(z, x - 0.3, x + 0.3, 1.0, 1.05, frame, min_px=1)
    _person(s, z + 0.01, x, u(1.55, 1.8), top, bottom, BICYCLIST, walking=0.05)


def _clutter(s: _Scene, z: float, obj: tuple, context: dict) -> None:
    """Unlabelled street furniture (bins, bollards, boxes): void."""
    rng, u = s.rng, s.rng.uniform
    _, x = obj
    m = s.material(VOID, _paint(rng), fine=0.08, coarse=0.08)
    w, hc = u(0.4, 2.5), u(0.5, 2.5)
    if rng.random() < 0.5:
        s.rect(z, x - w / 2, x + w / 2, 0, hc, m, min_px=1)
    else:
        s.shape(z, x - w / 2, x + w / 2, 0, hc, m, "ellipse")


_PAINTERS: dict[str, Callable[[_Scene, float, tuple, dict], None]] = {
    "pole": _pole, "signpost": _signpost, "tree": _tree, "fence": _fence, "parked": _parked_car,
    "car": _moving_car, "person": _pedestrian, "bike": _bicyclist, "clutter": _clutter,
}
