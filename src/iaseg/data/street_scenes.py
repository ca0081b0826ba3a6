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

This module is the scene's layout (the street plan and the painters of sky, ground, skyline,
facades, lighting and annotation void, and where the objects go); the canvas they draw on
(camera, materials, shapes, textures, palettes) is `scene_canvas.py`, the objects themselves
(poles, signs, trees, fences, cars, people, bicyclists, clutter) `street_objects.py`.

    >>> image, label = render_scene(360, 480, np.random.default_rng(0))
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .scene_canvas import (BUILDING, FENCE, PAVEMENT, RGB, ROAD, SIGN, SKY, TREE, VOID, Scene, facade_colour, hsv,
                           near_colour, paint_colour, scaled_colour)
from .street_objects import PAINTERS


# -- the scene -----------------------------------------------------------------------------------
def render_scene(height: int, width: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Draw one street scene: uint8 H x W x 3 RGB image and uint8 H x W CamVid label (11 = void)."""
    s = Scene(height, width, rng)
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


def _paint_sky(s: Scene) -> tuple[bool, RGB]:
    """Material 0, the sky: overcast white-grey most of the time, like CamVid; otherwise blue."""
    rng, u = s.rng, s.rng.uniform
    sunny = rng.random() < 0.35
    if sunny:
        sky_rgb = hsv(u(0.55, 0.62), u(0.2, 0.5), u(0.7, 0.95))
    else:
        sky_rgb = hsv(u(0.55, 0.65), u(0.0, 0.1), u(0.72, 0.98))
    s.material(SKY, sky_rgb, fine=0.015, coarse=u(0.02, 0.08))
    return sunny, sky_rgb


def _plan_street(s: Scene, sunny: bool, sky_rgb: RGB) -> _Street:
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


def _paint_ground(s: Scene, st: _Street) -> None:
    """Road (patches, kerbs, lane markings, zebra crossings), tiled pavements and what lies
    beyond them (grass or more pavement), projected row by row below the horizon."""
    rng, u = s.rng, s.rng.uniform
    height, width = s.h, s.w
    lane_w, lanes_l, lanes_r, offset = st.lane_w, st.lanes_l, st.lanes_r, st.offset
    road_l, road_r, fac_l, fac_r = st.road_l, st.road_r, st.fac_l, st.fac_r
    road_rgb = hsv(rng.random(), u(0, 0.08), u(0.25, 0.55))
    m_road = s.material(ROAD, road_rgb, fine=u(0.06, 0.14), coarse=u(0.04, 0.12))
    m_road2 = s.material(ROAD, scaled_colour(road_rgb, u(0.75, 1.15)), fine=0.1, coarse=0.1)  # patches
    if rng.random() < 0.55:
        pave_rgb = hsv(rng.random(), u(0, 0.1), u(0.35, 0.7))          # grey: close to the road
    else:
        pave_rgb = hsv(u(0.0, 0.11), u(0.12, 0.4), u(0.35, 0.7))     # red/beige paving
    m_pave = s.material(PAVEMENT, pave_rgb, fine=u(0.05, 0.1), coarse=0.06)
    m_joint = s.material(PAVEMENT, scaled_colour(pave_rgb, u(0.7, 0.85)), fine=0.05, coarse=0.05)
    m_kerb = s.material(PAVEMENT, hsv(0, 0, u(0.55, 0.85)), fine=0.05, coarse=0.05)
    mark_rgb = hsv(0.13, u(0.6, 0.9), u(0.7, 0.9)) if rng.random() < 0.15 else hsv(0, 0, u(0.72, 0.95))
    m_mark = s.material(ROAD, mark_rgb, fine=0.04, coarse=0.08)
    grass_rgb = hsv(u(0.17, 0.3), u(0.3, 0.65), u(0.25, 0.55))
    m_beyond = (s.material(TREE, grass_rgb, fine=0.18, coarse=0.15) if rng.random() < 0.6
                else s.material(PAVEMENT, near_colour(rng, pave_rgb), fine=0.08, coarse=0.08))

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


def _paint_skyline(s: Scene, st: _Street) -> None:
    """A far band above the horizon: distant trees or buildings."""
    rng, u = s.rng, s.rng.uniform
    height, z_end = s.h, st.z_end
    far_cls = TREE if rng.random() < 0.5 else BUILDING
    far_rgb = hsv(u(0.2, 0.3), u(0.2, 0.5), u(0.2, 0.45)) if far_cls == TREE else facade_colour(rng)
    m_far = s.material(far_cls, far_rgb, fine=0.12, coarse=0.15)
    prof = s.coarse[int(s.yh) % height] * (0.02 * height) + u(0.02, 0.09) * height
    top_far = s.yh - np.maximum(prof, 0)
    bot_far = s.yh + s.f * s.cam_h / z_end
    rr = np.arange(height, dtype=np.float32)[:, None] + 0.5
    s.mat[(rr >= top_far[None, :]) & (rr < bot_far)] = m_far


def _paint_facades(s: Scene, st: _Street) -> list[tuple[float, float, float, float]]:
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
                    col = facade_colour(rng)
                    m = s.material(BUILDING, col, fine=u(0.04, 0.1), coarse=u(0.05, 0.12))
                elif kind == 1:    # row of trees seen from the side, ragged top
                    hb = u(4, 12)
                    m = s.material(TREE, hsv(u(0.14, 0.36), u(0.25, 0.6), u(0.12, 0.45)), fine=0.28, coarse=0.2)
                else:              # open: a low wall or fence
                    hb = u(0.8, 1.6)
                    m = s.material(FENCE if rng.random() < 0.6 else BUILDING, paint_colour(rng), fine=0.06, coarse=0.06)
                zcol = zc[cols]
                top = s.yh + s.f * (s.cam_h - hb) / zcol
                if kind == 1:
                    top = top - s.coarse[max(int(s.yh) - 1, 0), cols] * 0.12 * s.f * hb / zcol
                facade_top[cols] = top
                facade_bot[cols] = s.yh + s.f * s.cam_h / zcol
                facade_mat[cols] = m
                if kind == 0:
                    win_rgb = (near_colour(rng, sky_rgb, 0.1) if rng.random() < 0.4
                               else hsv(u(0.5, 0.7), u(0, 0.3), u(0.05, 0.35)))
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


def _paint_street_end(s: Scene, st: _Street, shop_signs: list[tuple[float, float, float, float]]) -> None:
    """The street's far end (a cross facade, or open), and the shop signs."""
    rng, u = s.rng, s.rng.uniform
    if rng.random() < 0.6:
        m_end = s.material(BUILDING, facade_colour(rng), fine=0.08, coarse=0.1)
        s.rect(st.z_end, st.fac_l, st.fac_r, 0, u(5, 20), m_end)

    for xp, z0, z1, h0 in shop_signs:
        s.side_quad(xp + (0.05 if xp < 0 else -0.05), z0, z1, h0, h0 + u(0.6, 1.4),
                    s.material(SIGN, paint_colour(rng) if rng.random() < 0.5 else hsv(rng.random(), u(0.5, 0.9), u(0.4, 0.9)),
                               fine=0.05, coarse=0.05))


def _paint_objects(s: Scene, st: _Street) -> None:
    """Place the objects of the street, then draw them far to near (`PAINTERS`)."""
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
        PAINTERS[obj[0]](s, z, obj, context)


def _light(s: Scene, sunny: bool) -> tuple[np.ndarray, np.ndarray]:
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


def _annotation_void(s: Scene, label: np.ndarray) -> None:
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
