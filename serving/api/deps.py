"""The FastAPI dependency that hands a route the app's :class:`~serving.services.Services`."""

from __future__ import annotations

from fastapi import Request

from serving.services import Services


async def services(request: Request) -> Services:
    """The app's :class:`Services` (async: a sync dependency would be sent to the thread pool on every request)."""
    found: Services = request.app.state.services
    return found
