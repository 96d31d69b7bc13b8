"""The origin map of the consumer page: an inline SVG a person can read without script.

The production areas and the mark's zone are drawn in their true proportions, with the
names of the communes around them and of the province written on the map (not in
hover-only titles), a scale bar, and a legend; the page puts a caption in words under it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup, escape
from shapely.geometry import shape
from sqlalchemy import select

from nguon.db import db
from registry.models import AdminUnit

WIDTH, HEIGHT, PAD = 360, 260, 14
NICE_KM = (0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100)
MAX_COMMUNES = 6
CHAR_PX = 6.2  # an 11 px sans-serif character, for keeping labels apart


@dataclass(frozen=True)
class Place:
    """Where an area lies: its commune and province (today's units), by name."""

    commune: str
    province: str


def nearest_communes(
    lon: float, lat: float, limit: int = MAX_COMMUNES
) -> list[tuple[str, float, float, str]]:
    """(name, lon, lat, province name) of today's communes nearest to a point, nearest first."""
    box = 0.25  # degrees around the point (about 25 km): a commune is rarely wider
    rows = db.session.execute(
        select(
            AdminUnit.name, AdminUnit.longitude, AdminUnit.latitude, AdminUnit.parent_code
        ).where(
            AdminUnit.level == "commune",
            AdminUnit.valid_to.is_(None),
            AdminUnit.latitude.between(lat - box, lat + box),
            AdminUnit.longitude.between(lon - box, lon + box),
        )
    ).all()
    scale = math.cos(math.radians(lat))
    rows = sorted(rows, key=lambda r: ((r[1] - lon) * scale) ** 2 + (r[2] - lat) ** 2)[:limit]
    parents = {r[3] for r in rows}
    names = {
        code: name
        for code, name in db.session.execute(
            select(AdminUnit.code, AdminUnit.name).where(AdminUnit.code.in_(parents))
        )
    }
    return [
        (name, float(x), float(y), _province(names.get(parent, ""))) for name, x, y, parent in rows
    ]


def _province(name: str) -> str:
    """A province's name with its kind, as addresses write it (the unit data keeps
    "Thành phố Hà Nội" but plain "Bắc Ninh")."""
    if not name or name.startswith(("Tỉnh ", "Thành phố ")):
        return name
    return f"Tỉnh {name}"


def origin_map(
    plots: list[tuple[dict[str, Any], str]], zones: list[tuple[dict[str, Any], str]]
) -> tuple[Markup, Place | None]:
    """The SVG (plots: (GeoJSON, area code); zones: (GeoJSON, mark name)) and the place of
    the first plot; an empty Markup when there is nothing to draw."""
    plot_shapes = [(shape(g), name) for g, name in plots if g]
    zone_shapes = [(shape(g), name) for g, name in zones if g]
    if not plot_shapes and not zone_shapes:
        return Markup(""), None
    focus = (plot_shapes or zone_shapes)[0][0].centroid
    communes = nearest_communes(focus.x, focus.y)
    place = Place(communes[0][0], communes[0][3]) if communes else None
    # The extent: the plots with some room around them (a zone is drawn as far as it fits).
    shapes = [g for g, _n in plot_shapes] or [g for g, _n in zone_shapes]
    minx = min(g.bounds[0] for g in shapes)
    miny = min(g.bounds[1] for g in shapes)
    maxx = max(g.bounds[2] for g in shapes)
    maxy = max(g.bounds[3] for g in shapes)
    half = max(maxx - minx, maxy - miny, 0.12) / 2 * 1.4  # at least ~15 km: a few communes
    cx, cy = (minx + maxx) / 2, (miny + maxy) / 2
    x_scale = math.cos(math.radians(cy))
    span_y = 2 * half
    span_x = 2 * half / x_scale * (WIDTH / HEIGHT)
    minx, maxx, miny, maxy = cx - span_x / 2, cx + span_x / 2, cy - half, cy + half
    px_per_deg = (HEIGHT - 2 * PAD) / span_y  # per degree of latitude

    def xy(lon: float, lat: float) -> tuple[float, float]:
        x = WIDTH / 2 + (lon - cx) * x_scale * px_per_deg
        y = HEIGHT / 2 - (lat - cy) * px_per_deg
        return x, y

    def path(geometry: Any) -> str:
        polygons = geometry.geoms if geometry.geom_type == "MultiPolygon" else [geometry]
        rings = []
        for polygon in polygons:
            for ring in [polygon.exterior, *polygon.interiors]:
                points = (xy(*pt[:2]) for pt in ring.coords)
                rings.append("M" + " L".join(f"{x:.1f},{y:.1f}" for x, y in points) + " Z")
        return " ".join(rings)

    parts: list[str] = [f'<rect class="land" x="0" y="0" width="{WIDTH}" height="{HEIGHT}"/>']
    for geometry, _name in zone_shapes:
        if geometry.geom_type != "Point":
            parts.append(f'<path class="zone" fill-rule="evenodd" d="{path(geometry)}"/>')
    for geometry, _name in plot_shapes:
        if geometry.geom_type == "Point":
            x, y = xy(geometry.x, geometry.y)
            parts.append(f'<circle class="plot" cx="{x:.1f}" cy="{y:.1f}" r="6"/>')
        else:
            parts.append(f'<path class="plot" fill-rule="evenodd" d="{path(geometry)}"/>')
    # Communes: a dot and its name, skipped where a name would cover another.
    taken: list[tuple[float, float, float, float]] = []
    for name, lon, lat, _province in communes:
        x, y = xy(lon, lat)
        if not (PAD <= x <= WIDTH - PAD and 28 <= y <= HEIGHT - 40):
            continue
        w = len(name) * CHAR_PX
        tx = x + 5 if x + 5 + w <= WIDTH - 4 else x - 5 - w
        box = (tx, y - 11, tx + w, y + 3)
        if any(
            not (box[2] < b[0] or b[2] < box[0] or box[3] < b[1] or b[3] < box[1]) for b in taken
        ):
            continue
        taken.append(box)
        parts.append(f'<circle class="commune" cx="{x:.1f}" cy="{y:.1f}" r="2.5"/>')
        parts.append(f'<text class="commune" x="{tx:.1f}" y="{y:.1f}">{escape(name)}</text>')
    if place is not None and place.province:
        parts.append(f'<text class="province" x="{PAD}" y="20">{escape(place.province)}</text>')
    # Scale bar: a round distance near a quarter of the width.
    km_per_px = 111.32 / px_per_deg
    km = min(NICE_KM, key=lambda k: abs(k / km_per_px - WIDTH / 4))
    bar = km / km_per_px
    y0 = HEIGHT - 14
    label = f"{km:g} km"
    parts.append(
        f'<g class="scale"><path d="M{PAD},{y0 - 5} V{y0} H{PAD + bar:.1f} V{y0 - 5}"/>'
        f'<text x="{PAD + bar + 6:.1f}" y="{y0}">{label}</text></g>'
    )
    # Legend, top right: what the colours are.
    legend = [("plot", code) for _g, code in plot_shapes[:2]] + [
        ("zone", n) for _g, n in zone_shapes[:1]
    ]
    for i, (css, text) in enumerate(legend):
        ly = HEIGHT - 14 - 16 * (len(legend) - i)
        lx = WIDTH - PAD - len(text) * CHAR_PX - 16
        parts.append(
            f'<rect class="{css}" x="{lx:.1f}" y="{ly - 9}" width="11" height="11"/>'
            f'<text class="legend" x="{lx + 15:.1f}" y="{ly}">{escape(text)}</text>'
        )
    # Every text part above is escaped; classes and numbers come from code.
    svg = Markup(  # noqa: S704
        f'<svg class="map" viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" role="img" '
        f'aria-labelledby="origin-caption" xmlns="http://www.w3.org/2000/svg">'
        + "".join(parts)
        + "</svg>"
    )
    return svg, place
