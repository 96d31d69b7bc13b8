"""Shapes officers receive as files: KML/KMZ (Google Earth), GPX (a phone walked around the
orchard), GeoJSON, and zipped shapefiles (the agriculture department), read into one GeoJSON
geometry in WGS 84 that the usual checks (:func:`registry.geo.parse_geometry`) then judge.

Uploaded files are hostile. Each is size-capped before it is read; XML is parsed with
defusedxml (no DTD, no entity expansion, no external fetch); a zip is never extracted to
disk, its members are counted, named (no absolute or ``..`` paths) and sized from their
headers and, while decompressing, from what actually comes out (a zip bomb stops at the
cap); a shapefile's .prj decides the reprojection (pyproj), and a shapefile without one is
accepted only when its coordinates are plainly longitude/latitude.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from defusedxml import ElementTree
from defusedxml.common import DefusedXmlException
from shapely.geometry import MultiPolygon, Point, Polygon, mapping, shape
from shapely.geometry.base import BaseGeometry
from shapely.ops import unary_union

from nguon.formatting import format_decimal
from nguon.i18n import _

MAX_FILE_BYTES = 5 * 1024 * 1024  # a zone map is kilobytes; five megabytes is generous
MAX_UNZIPPED_BYTES = 20 * 1024 * 1024  # everything read out of one archive
MAX_MEMBERS = 50
MAX_RATIO = 200  # a member inflating more than this is a bomb, not a map
MAX_POINTS = 200_000
KINDS = ".kml, .kmz, .gpx, .geojson, .json, .zip (shapefile)"


class ImportRefused(ValueError):
    """The file cannot be read as a shape; the message says why (for the officer)."""


@dataclass
class Imported:
    geometry: dict[str, Any]
    kind: str  # kml | kmz | gpx | geojson | shapefile
    parts: int  # polygons (or points) found
    notes: list[str] = field(default_factory=list)


def read_shape(filename: str, content: bytes) -> Imported:
    """The shapes in an uploaded file as one GeoJSON geometry (Polygon, MultiPolygon or
    Point) in WGS 84 longitude/latitude. Raises :class:`ImportRefused`."""
    if not content:
        raise ImportRefused(_("the file is empty"))
    if len(content) > MAX_FILE_BYTES:
        raise ImportRefused(
            _("the file is larger than %(mb)d MB", mb=MAX_FILE_BYTES // (1024 * 1024))
        )
    name = filename.lower()
    if name.endswith(".kml"):
        return _combine(_kml(content), "kml")
    if name.endswith(".gpx"):
        return _combine(_gpx(content), "gpx")
    if name.endswith((".geojson", ".json")):
        return _combine(_geojson(content), "geojson")
    if name.endswith((".kmz", ".zip")):
        members = _safe_zip(content)
        kml = [n for n in members if n.lower().endswith(".kml")]
        if kml:
            return _combine(_kml(members[kml[0]]), "kmz")
        if any(n.lower().endswith(".shp") for n in members):
            shapes, notes = _shapefile(members)
            return _combine(shapes, "shapefile", notes)
        raise ImportRefused(_("the archive holds neither a .kml nor a .shp file"))
    raise ImportRefused(_("unknown kind of file; accepted: %(kinds)s", kinds=KINDS))


# --- archives ----------------------------------------------------------------------------------


def _safe_zip(content: bytes) -> dict[str, bytes]:
    """The members of a zip (KMZ or zipped shapefile), read into memory within the caps."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(content))
        infos = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError):
        raise ImportRefused(_("not a readable zip archive")) from None
    files = [i for i in infos if not i.is_dir()]
    if len(files) > MAX_MEMBERS:
        raise ImportRefused(_("the archive holds more than %(count)d files", count=MAX_MEMBERS))
    declared = 0
    for info in files:
        path = PurePosixPath(info.filename.replace("\\", "/"))
        if path.is_absolute() or ".." in path.parts or info.filename.startswith("/"):
            raise ImportRefused(
                _("the archive names an unsafe path: %(path)s", path=info.filename[:100])
            )
        if info.flag_bits & 0x1:
            raise ImportRefused(_("the archive is encrypted"))
        declared += info.file_size
        if info.compress_size and info.file_size / info.compress_size > MAX_RATIO:
            raise ImportRefused(_("the archive inflates far beyond its size (a zip bomb?)"))
    if declared > MAX_UNZIPPED_BYTES:
        raise ImportRefused(
            _("the archive unpacks to more than %(mb)d MB", mb=MAX_UNZIPPED_BYTES // 2**20)
        )
    members: dict[str, bytes] = {}
    total = 0
    for info in files:
        wanted = info.filename.lower().endswith((".kml", ".shp", ".shx", ".dbf", ".prj", ".cpg"))
        if not wanted:
            continue
        with archive.open(info) as member:  # headers can lie: count what comes out
            chunks = []
            while chunk := member.read(64 * 1024):
                total += len(chunk)
                if total > MAX_UNZIPPED_BYTES:
                    raise ImportRefused(_("the archive unpacks to more than its stated size"))
                chunks.append(chunk)
        members[info.filename.replace("\\", "/")] = b"".join(chunks)
    return members


# --- XML: KML and GPX ---------------------------------------------------------------------------


def _xml(content: bytes) -> Any:
    try:
        return ElementTree.fromstring(
            content, forbid_dtd=True, forbid_entities=True, forbid_external=True
        )
    except DefusedXmlException:
        raise ImportRefused(
            _("the XML declares a DTD or entities; they are not accepted")
        ) from None
    except ElementTree.ParseError as exc:
        raise ImportRefused(_("not well-formed XML (%(reason)s)", reason=exc)) from None


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _coordinates(text: str | None) -> list[tuple[float, float]]:
    points = []
    for item in (text or "").split():
        parts = item.split(",")
        if len(parts) < 2:
            raise ImportRefused(
                _("a KML coordinate is not 'longitude,latitude': %(text)s", text=item[:40])
            )
        points.append((_float(parts[0]), _float(parts[1])))
    return points


def _float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ImportRefused(_("not a number: %(text)s", text=text[:40])) from None
    if value != value or value in (float("inf"), float("-inf")):
        raise ImportRefused(_("coordinates must be finite numbers"))
    return value


def _kml(content: bytes) -> list[BaseGeometry]:
    """Polygons (with holes), points, and closed paths of a KML document."""
    root = _xml(content)
    shapes: list[BaseGeometry] = []
    for element in root.iter():
        tag = _local(element.tag)
        if tag == "Polygon":
            outer, inner = None, []
            for boundary in element:
                ring = next((e for e in boundary.iter() if _local(e.tag) == "coordinates"), None)
                if ring is None:
                    continue
                points = _coordinates(ring.text)
                if _local(boundary.tag) == "outerBoundaryIs":
                    outer = points
                elif _local(boundary.tag) == "innerBoundaryIs":
                    inner.append(points)
            if outer:
                shapes.append(_polygon(outer, inner))
        elif tag == "Point":
            found = next((e for e in element.iter() if _local(e.tag) == "coordinates"), None)
            points = _coordinates(found.text if found is not None else "")
            if points:
                shapes.append(Point(points[0]))
        elif tag == "LineString":  # a boundary walked or traced as a path: closed
            found = next((e for e in element.iter() if _local(e.tag) == "coordinates"), None)
            points = _coordinates(found.text if found is not None else "")
            if len(points) >= 3:
                shapes.append(_polygon(points))
    return shapes


def _gpx(content: bytes) -> list[BaseGeometry]:
    """Each track (all its segments) or route closed into a polygon: the walk around the
    plot; waypoints alone give points."""
    import gpxpy
    from gpxpy.gpx import GPXException

    _xml(content)  # refused here if it declares a DTD or entities (gpxpy would expand them)
    try:
        gpx = gpxpy.parse(content.decode("utf-8-sig"))
    except (GPXException, UnicodeDecodeError, ValueError) as exc:
        raise ImportRefused(
            _("not a readable GPX file (%(reason)s)", reason=str(exc)[:120])
        ) from None
    shapes: list[BaseGeometry] = []
    for track in gpx.tracks:
        points = [(p.longitude, p.latitude) for s in track.segments for p in s.points]
        if len(points) >= 3:
            shapes.append(_polygon(points))
    for route in gpx.routes:
        points = [(p.longitude, p.latitude) for p in route.points]
        if len(points) >= 3:
            shapes.append(_polygon(points))
    if not shapes:
        shapes = [Point(w.longitude, w.latitude) for w in gpx.waypoints]
    return shapes


def _polygon(
    outer: list[tuple[float, float]], holes: list[list[tuple[float, float]]] | None = None
) -> Polygon:
    if len(outer) > MAX_POINTS:
        raise ImportRefused(_("more than %(count)s points", count=format_decimal(MAX_POINTS)))
    ring = _closed(outer)
    if len(ring) < 4:
        raise ImportRefused(_("a polygon needs at least three distinct points"))
    return Polygon(ring, [_closed(h) for h in holes or [] if len(h) >= 3])


def _closed(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    deduped = [p for i, p in enumerate(points) if i == 0 or p != points[i - 1]]
    if deduped and deduped[0] != deduped[-1]:
        deduped.append(deduped[0])
    return deduped


# --- GeoJSON -------------------------------------------------------------------------------------


def _geojson(content: bytes) -> list[BaseGeometry]:
    try:
        data = json.loads(content.decode("utf-8-sig"), parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ImportRefused(_("not valid JSON (%(reason)s)", reason=str(exc)[:120])) from None
    if not isinstance(data, dict):
        raise ImportRefused(_("a GeoJSON object is expected"))
    geometries: list[Any] = []
    if data.get("type") == "FeatureCollection":
        geometries = [f.get("geometry") for f in data.get("features") or [] if isinstance(f, dict)]
    elif data.get("type") == "Feature":
        geometries = [data.get("geometry")]
    elif data.get("type") == "GeometryCollection":
        geometries = list(data.get("geometries") or [])
    else:
        geometries = [data]
    shapes = []
    for geometry in geometries:
        if not isinstance(geometry, dict):
            continue
        try:
            shapes.append(shape(geometry))
        except Exception as exc:  # shapely raises several types for malformed input
            raise ImportRefused(
                _("a geometry is malformed (%(reason)s)", reason=str(exc)[:120])
            ) from None
    return shapes


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not a coordinate")


# --- shapefiles ----------------------------------------------------------------------------------


def _shapefile(members: dict[str, bytes]) -> tuple[list[BaseGeometry], list[str]]:
    import shapefile  # pyshp

    shp_name = next(n for n in members if n.lower().endswith(".shp"))
    stem = shp_name[: -len(".shp")]

    def part(suffix: str) -> bytes | None:
        return next((v for k, v in members.items() if k.lower() == f"{stem}{suffix}".lower()), None)

    shx, dbf, prj = part(".shx"), part(".dbf"), part(".prj")
    try:
        reader = shapefile.Reader(
            shp=io.BytesIO(members[shp_name]),
            shx=io.BytesIO(shx) if shx else None,
            dbf=io.BytesIO(dbf) if dbf else None,
        )
        geometries = [shape(s.__geo_interface__) for s in reader.iterShapes()]
    except Exception as exc:  # pyshp raises its own and struct errors for broken files
        raise ImportRefused(
            _("not a readable shapefile (%(reason)s)", reason=str(exc)[:120])
        ) from None
    notes: list[str] = []
    if prj:
        import shapely
        from pyproj import CRS, Transformer
        from pyproj.exceptions import CRSError

        try:
            source = CRS.from_wkt(prj.decode("latin-1"))
        except CRSError:
            raise ImportRefused(_("the .prj file does not describe a coordinate system")) from None
        if not source.equals(CRS.from_epsg(4326), ignore_axis_order=True):
            to_wgs84 = Transformer.from_crs(source, CRS.from_epsg(4326), always_xy=True)
            geometries = [
                shapely.transform(g, to_wgs84.transform, interleaved=False) for g in geometries
            ]
            notes.append(_("reprojected from %(crs)s to WGS 84", crs=source.name))
    else:
        bounds = unary_union(geometries).bounds if geometries else (0, 0, 0, 0)
        if not (-180 <= bounds[0] <= bounds[2] <= 180 and -90 <= bounds[1] <= bounds[3] <= 90):
            raise ImportRefused(
                _(
                    "the shapefile has no .prj and its coordinates are not longitude/latitude:"
                    " include the .prj file in the zip"
                )
            )
        notes.append(_("no .prj: read as WGS 84 longitude/latitude"))
    return geometries, notes


# --- one geometry --------------------------------------------------------------------------------


def _combine(
    shapes: list[BaseGeometry] | Any, kind: str, notes: list[str] | None = None
) -> Imported:
    polygons: list[Polygon] = []
    points: list[Point] = []
    for geometry in shapes:
        if geometry is None or geometry.is_empty:
            continue
        geometry = _flat(geometry)
        if isinstance(geometry, Polygon):
            polygons.append(geometry)
        elif isinstance(geometry, MultiPolygon):
            polygons.extend(geometry.geoms)
        elif isinstance(geometry, Point):
            points.append(geometry)
        elif geometry.geom_type in ("LineString", "LinearRing") and len(geometry.coords) >= 3:
            polygons.append(_polygon(list(geometry.coords)))
        elif geometry.geom_type == "MultiPoint":
            points.extend(geometry.geoms)
    if polygons:
        result: BaseGeometry = polygons[0] if len(polygons) == 1 else MultiPolygon(polygons)
        found = len(polygons)
    elif len(points) == 1:
        result, found = points[0], 1
    elif points:
        raise ImportRefused(
            _(
                "the file holds %(count)d separate points and no polygon: draw or walk the"
                " boundary as a polygon or track",
                count=len(points),
            )
        )
    else:
        raise ImportRefused(_("the file holds no polygon, track or point"))
    return Imported(_rounded(mapping(result)), kind, found, notes or [])


def _flat(geometry: BaseGeometry) -> BaseGeometry:
    """Drop heights (GPS and KML often carry them)."""
    if not geometry.has_z:
        return geometry
    from shapely import force_2d

    return force_2d(geometry)


def _rounded(value: Any) -> Any:
    """Plain lists, coordinates to 7 decimals (about a centimetre)."""
    if isinstance(value, float):
        return round(value, 7)
    if isinstance(value, tuple | list):
        return [_rounded(v) for v in value]
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    return value
