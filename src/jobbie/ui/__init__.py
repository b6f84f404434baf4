"""The web console: server-rendered pages under /ui over the same Store the API uses.

Pages are Jinja2 templates; the little JavaScript there is (theme toggle, confirmations, row
selection, live fragments over one SSE stream per page) is vendored in `static/`.
"""

from jobbie.ui.routes import console_routes

__all__ = ["console_routes"]
