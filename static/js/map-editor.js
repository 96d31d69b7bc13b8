// The zone editor: Leaflet with Geoman (both vendored under static/vendor) over the GeoJSON
// text field. The field stays the source of truth: the form works without this script,
// and every change on the map is written back into it as GeoJSON ([longitude, latitude]).
// The base works offline: communes as named points and the other registered areas, from
// /registry/manage/map-base.json; tiles only when NGUON_MAP_TILES_URL is configured.
(function () {
  "use strict";
  if (!window.L) return;

  function parse(text) {
    try { return text.trim() ? JSON.parse(text) : null; } catch (e) { return null; }
  }

  // Polygons and points of a GeoJSON geometry, each multi-polygon part its own layer so
  // it can be edited, moved or removed alone.
  function layersOf(geometry) {
    var out = [];
    if (!geometry) return out;
    if (geometry.type === "Feature") geometry = geometry.geometry;
    var polygons = geometry.type === "Polygon" ? [geometry.coordinates]
      : geometry.type === "MultiPolygon" ? geometry.coordinates : [];
    polygons.forEach(function (rings) {
      out.push(L.polygon(rings.map(function (ring) {
        return ring.map(function (c) { return [c[1], c[0]]; });
      })));
    });
    if (geometry.type === "Point") {
      out.push(L.marker([geometry.coordinates[1], geometry.coordinates[0]]));
    }
    return out;
  }

  function round(n) { return Math.round(n * 1e7) / 1e7; }

  function ringCoords(latlngs) {
    var ring = latlngs.map(function (p) { return [round(p.lng), round(p.lat)]; });
    if (ring.length && (ring[0][0] !== ring[ring.length - 1][0] || ring[0][1] !== ring[ring.length - 1][1])) {
      ring.push(ring[0].slice());
    }
    return ring;
  }

  // Leaflet's polygon latlngs: [ring, ring...] or, after a cut, [[ring...], [ring...]].
  function polygonsOf(layer) {
    var latlngs = layer.getLatLngs();
    var nested = Array.isArray(latlngs[0]) && Array.isArray(latlngs[0][0]);
    var parts = nested ? latlngs : [latlngs];
    return parts.map(function (rings) { return rings.map(ringCoords); });
  }

  function geometryOf(group) {
    var polygons = [], points = [];
    group.eachLayer(function (layer) {
      if (layer instanceof L.Polygon) polygons = polygons.concat(polygonsOf(layer));
      else if (layer instanceof L.Marker) {
        var p = layer.getLatLng();
        points.push([round(p.lng), round(p.lat)]);
      }
    });
    if (polygons.length === 1) return { type: "Polygon", coordinates: polygons[0] };
    if (polygons.length > 1) return { type: "MultiPolygon", coordinates: polygons };
    if (points.length) return { type: "Point", coordinates: points[points.length - 1] };
    return null;
  }

  function setUp(box) {
    var field = document.getElementById(box.dataset.for);
    if (!field) return;
    box.hidden = false;
    var help = document.createElement("p");
    help.className = "map-editor-help";
    help.textContent = box.dataset.labelHelp;
    box.parentNode.insertBefore(help, box);

    var map = L.map(box, { preferCanvas: false, zoomSnap: 0.5 });
    map.attributionControl.setPrefix(false);
    if (box.dataset.tiles) {
      L.tileLayer(box.dataset.tiles, { maxZoom: 20 }).addTo(map);
    }
    var communes = L.layerGroup();
    var others = L.geoJSON(null, {
      style: { color: "#7b8a82", weight: 1, fillOpacity: 0.12, dashArray: "4 3" },
      pmIgnore: true,
      onEachFeature: function (feature, layer) { layer.bindTooltip(feature.properties.name); }
    });
    var shape = L.featureGroup().addTo(map);
    L.control.layers(null, (function () {
      var overlays = {};
      overlays[box.dataset.labelCommunes] = communes;
      overlays[box.dataset.labelAreas] = others;
      return overlays;
    })(), { collapsed: false }).addTo(map);
    others.addTo(map);

    function load() {
      shape.clearLayers();
      layersOf(parse(field.value)).forEach(function (layer) { shape.addLayer(layer); });
    }
    var live = document.getElementById("measured-live-" + box.dataset.for.replace(/^f-/, ""));
    var token = field.form && field.form.querySelector("input[name=csrf_token]");
    var pending = null;
    function measure() {  // the server measures as it will on saving (geodesic, same checks)
      if (!live || !box.dataset.measure) return;
      clearTimeout(pending);
      pending = setTimeout(function () {
        var geometry = parse(field.value);
        if (!geometry) { live.hidden = true; return; }
        fetch(box.dataset.measure, {
          method: "POST", credentials: "same-origin",
          headers: { "Content-Type": "application/json", "X-CSRFToken": token ? token.value : "" },
          body: JSON.stringify({ geometry: geometry })
        }).then(function (r) { return r.ok ? r.json() : null; }).then(function (answer) {
          if (!answer) return;
          live.hidden = false;
          live.classList.toggle("field-error", !answer.valid);
          live.textContent = answer.valid
            ? box.dataset.labelMeasured + " " + answer.hectares + " ha"
            : answer.message;
        });
      }, 250);
    }
    function save() {
      var geometry = geometryOf(shape);
      field.value = geometry ? JSON.stringify(geometry) : "";
      field.dispatchEvent(new Event("input"));
      measure();
    }
    function fit() {
      if (shape.getLayers().length) map.fitBounds(shape.getBounds(), { maxZoom: 17, padding: [20, 20] });
      else if (others.getLayers().length) map.fitBounds(others.getBounds(), { maxZoom: 14 });
      else map.setView([21.3, 106.4], 10);
    }
    load();
    fit();

    map.pm.setGlobalOptions({ layerGroup: shape, snappable: true, allowSelfIntersection: false });
    map.pm.addControls({
      position: "topleft",
      drawMarker: true, drawPolygon: true, drawRectangle: true,
      drawPolyline: false, drawCircle: false, drawCircleMarker: false, drawText: false,
      editMode: true, dragMode: true, cutPolygon: true, removalMode: true, rotateMode: false
    });
    map.on("pm:create", function (event) {
      if (event.layer instanceof L.Marker) {  // a point stands alone: it replaces the rest
        shape.eachLayer(function (layer) { if (layer !== event.layer) shape.removeLayer(layer); });
      } else {  // a polygon joins the others; a previous point goes
        shape.eachLayer(function (layer) { if (layer instanceof L.Marker) shape.removeLayer(layer); });
      }
      wire(event.layer);
      save();
    });
    map.on("pm:remove pm:cut", function () { setTimeout(save, 0); });
    function wire(layer) {
      layer.on("pm:edit pm:dragend pm:markerdragend pm:vertexremoved", save);
    }
    shape.eachLayer(wire);
    field.addEventListener("change", function () { load(); shape.eachLayer(wire); fit(); measure(); });

    fetch(box.dataset.base, { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (base) {
        if (!base) return;
        others.addData(base.areas);
        base.communes.forEach(function (c) {
          L.circleMarker([c[2], c[1]], { radius: 3, color: "#44524a", weight: 1, pmIgnore: true })
            .bindTooltip(c[0], { permanent: false, direction: "top" })
            .addTo(communes);
        });
        function showCommunes() {
          if (map.getZoom() >= 10) communes.addTo(map); else map.removeLayer(communes);
        }
        map.on("zoomend", showCommunes);
        showCommunes();
        if (!shape.getLayers().length) fit();
      });
  }

  document.querySelectorAll(".map-editor[data-for]").forEach(setUp);
})();
