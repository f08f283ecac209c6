"""`/ui`: the web pages served by the API process, no build step.

Server-rendered HTML plus a few lines of plain JavaScript. A tenant signs in with
its token and sees its jobs (the job page follows its job with `EventSource`, the
jobs list refreshes its bars from a small JSON endpoint); an operator signs in
with an operator token and sees the fleet (ui/fleet_routes.py). Layout:

- door.py: who is calling (sessions through the API's gate), CSRF, Origin;
- views.py: typed view models, built from the store's documents (pure);
- render.py, fleet_render.py: HTML from view models (pure, escaped once);
- routes.py, session_routes.py, fleet_routes.py: routers that fetch and hand over.
"""

from __future__ import annotations

from fastapi import FastAPI

from genblaze_s3.api.events import EventHub
from genblaze_s3.api.fleet import FleetDesk
from genblaze_s3.api.ui.fleet_routes import fleet_ui_router
from genblaze_s3.api.ui.routes import tenant_router
from genblaze_s3.api.ui.session_routes import session_router
from genblaze_s3.ingest.store.sessions import SessionStore


def add_ui_routes(app: FastAPI, desk: FleetDesk, hub: EventHub, sessions: SessionStore) -> None:
    """Register every /ui route on `app`."""
    app.include_router(session_router(sessions, desk.fleet))
    app.include_router(tenant_router(desk.service, hub))
    app.include_router(fleet_ui_router(desk))
