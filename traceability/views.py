"""HTML pages of `traceability` (filled in by its issue)."""

from flask import Blueprint

bp = Blueprint("traceability", __name__, url_prefix="/traceability")
