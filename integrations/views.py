"""HTML pages of `integrations` (filled in by its issue)."""

from flask import Blueprint

bp = Blueprint("integrations", __name__, url_prefix="/integrations")
