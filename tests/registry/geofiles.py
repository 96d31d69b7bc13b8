"""Zone files as officers receive them, made by the tests: KML, KMZ, GPX tracks, GeoJSON and
zipped shapefiles (with a .prj in another coordinate system), and hostile variants."""

from __future__ import annotations

import io
import zipfile

# A plot near Lục Ngạn: about 500 m × 400 m (≈ 20 ha), [longitude, latitude].
PLOT = [(106.600, 21.370), (106.6048, 21.370), (106.6048, 21.3736), (106.600, 21.3736)]


def kml(points: list[tuple[float, float]] = PLOT, hole: bool = False) -> bytes:
    ring = " ".join(f"{x},{y},12.5" for x, y in [*points, points[0]])
    inner = ""
    if hole:
        cx, cy = sum(x for x, _ in points) / 4, sum(y for _, y in points) / 4
        small = [(cx - 0.0005, cy - 0.0005), (cx + 0.0005, cy - 0.0005), (cx + 0.0005, cy + 0.0005),
                 (cx - 0.0005, cy + 0.0005), (cx - 0.0005, cy - 0.0005)]  # fmt: skip
        inner = (
            "<innerBoundaryIs><LinearRing><coordinates>"
            + " ".join(f"{x},{y}" for x, y in small)
            + "</coordinates></LinearRing></innerBoundaryIs>"
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<kml xmlns="http://www.opengis.net/kml/2.2"><Document><name>Vùng vải</name>'
        "<Placemark><name>Lô 1</name><Polygon><outerBoundaryIs><LinearRing><coordinates>"
        f"{ring}</coordinates></LinearRing></outerBoundaryIs>{inner}</Polygon></Placemark>"
        "</Document></kml>"
    ).encode()


def kmz(points: list[tuple[float, float]] = PLOT) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("doc.kml", kml(points))
    return out.getvalue()


def gpx_track(points: list[tuple[float, float]] = PLOT, steps: int = 10) -> bytes:
    """A walk around the plot: points along each side, not closed (as a phone records)."""
    walked = []
    for (x1, y1), (x2, y2) in zip(points, [*points[1:], points[0]], strict=True):
        walked += [(x1 + (x2 - x1) * i / steps, y1 + (y2 - y1) * i / steps) for i in range(steps)]
    body = "".join(f'<trkpt lat="{y:.7f}" lon="{x:.7f}"><ele>40</ele></trkpt>' for x, y in walked)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<gpx version="1.1" creator="phone" xmlns="http://www.topografix.com/GPX/1/1">'
        f"<trk><name>đi quanh vườn</name><trkseg>{body}</trkseg></trk></gpx>"
    ).encode()


UTM48N_PRJ = (
    'PROJCS["WGS_1984_UTM_Zone_48N",GEOGCS["GCS_WGS_1984",DATUM["D_WGS_1984",'
    'SPHEROID["WGS_1984",6378137.0,298.257223563]],PRIMEM["Greenwich",0.0],'
    'UNIT["Degree",0.0174532925199433]],PROJECTION["Transverse_Mercator"],'
    'PARAMETER["False_Easting",500000.0],PARAMETER["False_Northing",0.0],'
    'PARAMETER["Central_Meridian",105.0],PARAMETER["Scale_Factor",0.9996],'
    'PARAMETER["Latitude_Of_Origin",0.0],UNIT["Meter",1.0]]'
)


def shapefile_zip(points: list[tuple[float, float]] = PLOT, prj: bool = True) -> bytes:
    """A zipped shapefile in UTM zone 48N metres (as a survey office exports), with its .prj."""
    import shapefile
    from pyproj import Transformer

    to_utm = Transformer.from_crs(4326, 32648, always_xy=True)
    ring = [to_utm.transform(x, y) for x, y in [*points, points[0]]]
    ring = list(reversed(ring))  # shapefile outer rings run clockwise
    shp, shx, dbf = io.BytesIO(), io.BytesIO(), io.BytesIO()
    with shapefile.Writer(shp=shp, shx=shx, dbf=dbf, shapeType=shapefile.POLYGON) as writer:
        writer.field("MA_VUNG", "C", 20)
        writer.poly([ring])
        writer.record("VN-01-TEST")
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("vung/vung.shp", shp.getvalue())
        archive.writestr("vung/vung.shx", shx.getvalue())
        archive.writestr("vung/vung.dbf", dbf.getvalue())
        if prj:
            archive.writestr("vung/vung.prj", UTM48N_PRJ)
    return out.getvalue()


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE kml [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">
<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">]>
<kml xmlns="http://www.opengis.net/kml/2.2"><Placemark><name>&d;</name></Placemark></kml>"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE gpx [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<gpx version="1.1" xmlns="http://www.topografix.com/GPX/1/1">
<wpt lat="21" lon="106"><name>&x;</name></wpt></gpx>"""


def zip_bomb() -> bytes:
    """A KMZ whose one member inflates from a few kilobytes to 30 MB of zeros."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("doc.kml", b"\0" * (30 * 1024 * 1024))
    return out.getvalue()


def traversal_zip() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("../../etc/cron.d/evil.kml", kml())
    return out.getvalue()
