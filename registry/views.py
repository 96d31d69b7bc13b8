"""HTML pages of `registry` (filled in by its issue)."""

from flask import Blueprint

bp = Blueprint("registry", __name__, url_prefix="/registry")
