"""The objects of a synthetic street scene, each drawn on the canvas (`scene_canvas.Scene`) at its
depth: poles (with signs or traffic lights), sign posts, trees, fences, parked and moving cars,
pedestrians, bicyclists and unlabelled clutter. `street_scenes` places them and calls
`PAINTERS[kind]` far to near."""
from __future__ import annotations

from typing import Callable

from .scene_canvas import (BICYCLIST, CAR, FENCE, PEDESTRIAN, POLE, SIGN, TREE, VOID, Scene, hsv, near_colour,
                           paint_colour, scaled_colour)


def _person(s: Scene, z: float, x: float, height: float, top_rgb, bottom_rgb, cls: int,
            walking: float, fine: float = 0.05) -> None:
    u = s.rng.uniform
    m_top = s.material(cls, top_rgb, fine=fine, coarse=0.05)
    m_bot = s.material(cls, bottom_rgb, fine=fine, coarse=0.05)
    m_skin = s.material(cls, hsv(u(0.03, 0.09), u(0.2, 0.6), u(0.25, 0.85)), fine=0.03, coarse=0.03)
    hw = 0.2 * height / 1.75
    leg = 0.47 * height
    s.rect(z, x - hw * 0.9 - walking, x - 0.02, 0, leg, m_bot, min_px=1)
    s.rect(z, x + 0.02, x + hw * 0.9 + walking, 0, leg, m_bot, min_px=1)
    s.rect(z, x - hw, x + hw, leg * 0.95, 0.84 * height, m_top, min_px=1)
    s.rect(z, x - hw - 0.08, x - hw + 0.02, 0.48 * height, 0.82 * height, m_top)
    s.rect(z, x + hw - 0.02, x + hw + 0.08, 0.48 * height, 0.82 * height, m_top)
    s.shape(z, x - 0.11, x + 0.11, 0.84 * height, height, m_skin, "ellipse")


def _clothes(s: Scene, context: dict) -> tuple:
    """Clothes colours: dark and neutral mostly; a quarter match the background (hard cases)."""
    rng = s.rng
    if rng.random() < 0.25:
        bg = context["pave"] if rng.random() < 0.5 else context["road"]
        return near_colour(rng, bg, 0.05), near_colour(rng, bg, 0.05)
    top = paint_colour(rng)
    bottom = hsv(rng.uniform(0.55, 0.7), rng.uniform(0.1, 0.5), rng.uniform(0.1, 0.45)) \
        if rng.random() < 0.6 else paint_colour(rng)
    return top, bottom


def _sign(s: Scene, z: float, x: float, h: float) -> None:
    rng, u = s.rng, s.rng.uniform
    size = u(0.5, 1.0)
    r = rng.random()
    if r < 0.25:     # seen from behind: grey, like the pole
        rgb = hsv(0, 0, u(0.3, 0.7))
    elif r < 0.85:
        rgb = [(0.8, 0.1, 0.1), (0.1, 0.3, 0.75), (0.95, 0.8, 0.1), (0.92, 0.92, 0.92), (0.1, 0.5, 0.25)][int(rng.integers(5))]
        rgb = near_colour(rng, rgb, 0.08)
    else:
        rgb = paint_colour(rng)
    m = s.material(SIGN, rgb, fine=0.04, coarse=0.05)
    kind = ["rect", "ellipse", "triangle", "diamond"][int(rng.integers(4))]
    x0, x1, h0, h1 = x - size / 2, x + size / 2, h, h + size * (u(0.6, 1.4) if kind == "rect" else 1.0)
    if kind == "rect":
        s.rect(z, x0, x1, h0, h1, m, min_px=1)
    else:
        s.shape(z, x0, x1, h0, h1, m, kind)
    if r >= 0.25 and rng.random() < 0.5:  # inner symbol
        inner = s.material(SIGN, hsv(0, 0, u(0.05, 0.95)), fine=0.04, coarse=0.04)
        c, hs = (h0 + h1) / 2, size * 0.22
        s.rect(z, x - hs, x + hs, c - hs * 0.8, c + hs * 0.6, inner)


def _car(s: Scene, z: float, x: float, side: int) -> None:
    """A car seen from behind (side 0) or parked along the kerb (side -1/1: rear face plus the
    side in perspective)."""
    rng, u = s.rng, s.rng.uniform
    col = paint_colour(rng)
    body = s.material(CAR, col, fine=u(0.02, 0.06), coarse=0.05)
    glass = s.material(CAR, hsv(u(0.5, 0.7), u(0, 0.3), u(0.05, 0.3)), fine=0.05, coarse=0.08)
    dark = s.material(CAR, hsv(0, 0, u(0.02, 0.12)), fine=0.03, coarse=0.03)
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
def _pole(s: Scene, z: float, obj: tuple, context: dict) -> None:
    """A pole at the kerb: bare, with a lamp arm, a sign or a traffic light."""
    rng, u = s.rng, s.rng.uniform
    _, side, x, _ = obj
    hp = u(3.5, 8.0)
    wp = u(0.08, 0.18)
    m = s.material(POLE, hsv(rng.random(), u(0, 0.2), u(0.15, 0.7)), fine=0.04, coarse=0.04)
    s.rect(z, x - wp / 2, x + wp / 2, 0, hp, m, min_px=1)
    r = rng.random()
    if r < 0.3:      # lamp arm towards the road
        arm = u(0.8, 2.0) * -side
        s.rect(z, min(x, x + arm), max(x, x + arm), hp - 0.15, hp, m, min_px=1)
    elif r < 0.75:   # sign
        _sign(s, z, x, u(2.0, min(3.5, hp - 0.2)))
    elif r < 0.9:    # traffic light
        m_box = s.material(SIGN, hsv(0, 0, u(0.05, 0.3)), fine=0.04, coarse=0.04)
        hb = min(hp - 0.1, u(2.8, 4.0))
        s.rect(z, x - 0.18, x + 0.18, hb - 0.9, hb, m_box)
        lamp = s.material(SIGN, [(0.9, 0.15, 0.1), (0.95, 0.7, 0.1), (0.2, 0.85, 0.3)][int(rng.integers(3))],
                          fine=0.03, coarse=0.03)
        k = int(rng.integers(3))
        s.shape(z, x - 0.1, x + 0.1, hb - 0.3 * (k + 1), hb - 0.3 * k - 0.1, lamp, "ellipse")


def _signpost(s: Scene, z: float, obj: tuple, context: dict) -> None:
    u = s.rng.uniform
    _, side, x = obj
    m = s.material(POLE, hsv(0, 0, u(0.2, 0.6)), fine=0.04, coarse=0.04)
    hs = u(1.8, 2.6)
    s.rect(z, x - 0.04, x + 0.04, 0, hs, m, min_px=1)
    _sign(s, z, x, hs)


def _tree(s: Scene, z: float, obj: tuple, context: dict) -> None:
    u = s.rng.uniform
    _, x = obj
    trunk = s.material(TREE, hsv(u(0.05, 0.12), u(0.2, 0.5), u(0.1, 0.35)), fine=0.15, coarse=0.1)
    crown = s.material(TREE, hsv(u(0.14, 0.36), u(0.25, 0.65), u(0.12, 0.5)), fine=0.3, coarse=0.25)
    ht, r = u(2.0, 3.5), u(1.2, 2.8)
    s.rect(z, x - 0.15, x + 0.15, 0, ht + r, trunk, min_px=1)
    s.shape(z, x - r, x + r, ht, ht + 2 * r * u(0.8, 1.2), crown, "ellipse", ragged=0.6)


def _fence(s: Scene, z: float, obj: tuple, context: dict) -> None:
    rng, u = s.rng, s.rng.uniform
    _, xf, z0, z1 = obj
    col = paint_colour(rng)
    m = s.material(FENCE, col, fine=0.06, coarse=0.06)
    m_bar = s.material(FENCE, scaled_colour(col, u(0.5, 0.8)), fine=0.06, coarse=0.06)
    s.side_quad(xf, z0, z1, 0, u(0.8, 1.4), m, stripes=(u(0.12, 0.3), u(0.3, 0.6), m_bar))


def _parked_car(s: Scene, z: float, obj: tuple, context: dict) -> None:
    _, side, x, _ = obj
    _car(s, z, x, side)


def _moving_car(s: Scene, z: float, obj: tuple, context: dict) -> None:
    _, x = obj
    _car(s, z, x, 0)


def _pedestrian(s: Scene, z: float, obj: tuple, context: dict) -> None:
    u = s.rng.uniform
    _, x = obj
    top, bottom = _clothes(s, context)
    _person(s, z, x, u(1.5, 1.95), top, bottom, PEDESTRIAN, walking=u(0, 0.15))


def _bicyclist(s: Scene, z: float, obj: tuple, context: dict) -> None:
    """A bicycle seen from the side (two rings and a frame) or from behind, and its rider."""
    rng, u = s.rng, s.rng.uniform
    _, x, side_view = obj
    frame = s.material(BICYCLIST, paint_colour(rng), fine=0.04, coarse=0.04)
    tyre = s.material(BICYCLIST, hsv(0, 0, u(0.03, 0.2)), fine=0.03, coarse=0.03)
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


def _clutter(s: Scene, z: float, obj: tuple, context: dict) -> None:
    """Unlabelled street furniture (bins, bollards, boxes): void."""
    rng, u = s.rng, s.rng.uniform
    _, x = obj
    m = s.material(VOID, paint_colour(rng), fine=0.08, coarse=0.08)
    w, hc = u(0.4, 2.5), u(0.5, 2.5)
    if rng.random() < 0.5:
        s.rect(z, x - w / 2, x + w / 2, 0, hc, m, min_px=1)
    else:
        s.shape(z, x - w / 2, x + w / 2, 0, hc, m, "ellipse")


PAINTERS: dict[str, Callable[[Scene, float, tuple, dict], None]] = {
    "pole": _pole, "signpost": _signpost, "tree": _tree, "fence": _fence, "parked": _parked_car,
    "car": _moving_car, "person": _pedestrian, "bike": _bicyclist, "clutter": _clutter,
}
