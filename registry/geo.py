"""Areas: GeoJSON checked with shapely, containment, geodesic hectares, and inline SVG maps."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from markupsafe import Markup, escape
from pyproj import Geod
from shapely import make_valid
from shapely.geometry import box, mapping, shape
from shapely.geometry.base import BaseGeometry
from shapely.geometry.polygon import orient
from shapely.validation import explain_validity

from nguon.i18n import _

# Vietnam's mainland and islands (Hoàng Sa, Trường Sa) in WGS 84 longitude/latitude.
VIETNAM_BBOX = (102.14, 8.18, 117.84, 23.40)
ALLOWED_TYPES = {"Point", "Polygon", "MultiPolygon"}


class GeometryError(ValueError):
    """A GeoJSON geometry that is malformed, invalid or outside Vietnam."""


def parse_geometry(geojson: Any, allowed: set[str] = ALLOWED_TYPES) -> BaseGeometry:
    """A shapely geometry for ``geojson``; :class:`GeometryError` says what is wrong."""
    if not isinstance(geojson, dict) or "type" not in geojson:
        raise GeometryError(_("must be a GeoJSON geometry object with a 'type'"))
    if geojson.get("type") == "Feature":
        geojson = geojson.get("geometry") or {}
    if geojson.get("type") not in allowed:
        raise GeometryError(_("type must be one of %(types)s", types=", ".join(sorted(allowed))))
    try:
        geometry = shape(geojson)
    except Exception as exc:  # shapely raises several types for bad coordinates
        raise GeometryError(_("coordinates are malformed (%(reason)s)", reason=exc)) from None
    if geometry.is_empty:
        raise GeometryError(_("the geometry is empty"))
    if not geometry.is_valid:
        raise GeometryError(
            _("the rings are not valid: %(reason)s", reason=explain_validity(geometry))
        )
    if not box(*VIETNAM_BBOX).covers(geometry):
        minx, miny, maxx, maxy = geometry.bounds
        raise GeometryError(
            _(
                "lies outside Vietnam's bounding box (longitude 102.14–117.84, latitude"
                " 8.18–23.40; got %(bounds)s; GeoJSON is [longitude, latitude])",
                bounds=f"{minx:.4f},{miny:.4f} – {maxx:.4f},{maxy:.4f}",
            )
        )
    return geometry


def normalised(geojson: dict[str, Any]) -> dict[str, Any]:
    """The geometry as plain GeoJSON (a Feature unwrapped, tuples as lists)."""
    geometry = mapping(parse_geometry(geojson))
    return _lists(geometry)


def _lists(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_lists(v) for v in value]
    if isinstance(value, dict):
        return {k: _lists(v) for k, v in value.items()}
    return value


WGS84 = Geod(ellps="WGS84")


def hectares(geojson: dict[str, Any] | None) -> Decimal:
    """The area on the WGS 84 ellipsoid (pyproj's geodesic polygon area), in hectares;
    0 for a point. The geometry is expected to be valid (see :func:`parse_geometry`)."""
    if not geojson:
        return Decimal(0)
    geometry = shape(geojson)
    if geometry.geom_type not in ("Polygon", "MultiPolygon"):
        return Decimal(0)
    # pyproj sums signed ring areas: exteriors counter-clockwise, holes clockwise.
    polygons = geometry.geoms if geometry.geom_type == "MultiPolygon" else [geometry]
    area = sum(WGS84.geometry_area_perimeter(orient(p, sign=1.0))[0] for p in polygons)
    return Decimal(abs(area) / 10_000).quantize(Decimal("0.0001"))


def mismatch(declared: Decimal | float | None, measured: Decimal, tolerance: Decimal) -> bool:
    """Whether a declared area is further than ``tolerance`` (a fraction of the measured
    area) from what the shape measures; points and empty shapes never mismatch."""
    if declared is None or measured <= 0:
        return False
    return abs(Decimal(declared) - measured) > measured * tolerance


def fingerprint(geojson: dict[str, Any] | None) -> str:
    """A stable hash of a geometry (a confirmation names the shape it confirmed)."""
    import hashlib
    import json

    text = json.dumps(geojson, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def square(lon: float, lat: float, half: float) -> dict[str, Any]:
    """A square GeoJSON polygon centred on (lon, lat), ``half`` degrees to each side."""
    ring = [(lon - half, lat - half), (lon + half, lat - half), (lon + half, lat + half),
            (lon - half, lat + half), (lon - half, lat - half)]  # fmt: skip
    return {"type": "Polygon", "coordinates": [[[round(x, 6), round(y, 6)] for x, y in ring]]}


def inside(inner: dict[str, Any], outer: dict[str, Any]) -> bool:
    """True when ``inner`` lies within ``outer`` (its boundary counts as inside)."""
    return make_valid(shape(outer)).covers(shape(inner))


@dataclass(frozen=True)
class Layer:
    geojson: dict[str, Any]
    css_class: str
    label: str = ""


def svg_map(
    layers: Sequence[Layer], width: int = 480, height: int = 360, title: str = ""
) -> Markup:
    """An inline SVG drawing of the layers (no tiles, no script); first layer at the bottom."""
    geometries = [(layer, shape(layer.geojson)) for layer in layers if layer.geojson]
    if not geometries:
        return Markup("")
    minx = min(g.bounds[0] for _, g in geometries)
    miny = min(g.bounds[1] for _, g in geometries)
    maxx = max(g.bounds[2] for _, g in geometries)
    maxy = max(g.bounds[3] for _, g in geometries)
    mid_lat = (miny + maxy) / 2
    x_scale = math.cos(math.radians(mid_lat))  # keep shapes' proportions near the equator
    span_x = max((maxx - minx) * x_scale, 0.005)
    span_y = max(maxy - miny, 0.005)
    pad = 12
    scale = min((width - 2 * pad) / span_x, (height - 2 * pad) / span_y)
    off_x = (width - span_x * scale) / 2
    off_y = (height - span_y * scale) / 2

    def xy(lon: float, lat: float) -> str:
        x = off_x + (lon - minx) * x_scale * scale
        y = off_y + (maxy - lat) * scale
        return f"{x:.1f},{y:.1f}"

    def polygon_path(rings: Iterable[Any]) -> str:
        return " ".join("M" + " L".join(xy(*pt[:2]) for pt in ring) + " Z" for ring in rings)

    parts = []
    for layer, geometry in geometries:
        label = f"<title>{escape(layer.label)}</title>" if layer.label else ""
        if geometry.geom_type == "Point":
            x, y = xy(geometry.x, geometry.y).split(",")
            parts.append(
                f'<circle class="{layer.css_class}" cx="{x}" cy="{y}" r="6">{label}</circle>'
            )
            continue
        polygons = geometry.geoms if geometry.geom_type == "MultiPolygon" else [geometry]
        d = " ".join(
            polygon_path([p.exterior.coords, *[i.coords for i in p.interiors]]) for p in polygons
        )
        parts.append(f'<path class="{layer.css_class}" fill-rule="evenodd" d="{d}">{label}</path>')
    heading = f"<title>{escape(title)}</title>" if title else ""
    # Every text part above is escaped; classes and numbers come from code.
    return Markup(  # noqa: S704
        f'<svg class="map" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">{heading}'
        + "".join(parts)
        + "</svg>"
    )
