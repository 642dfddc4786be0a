"""``/docs``: the interactive API reference, served from this machine.

FastAPI's default page loads Swagger UI from a public CDN, so on a shop's network
without internet access (or behind a strict proxy) it is a blank page, and every
visit tells a third party which service is being browsed. Here the page loads the
Swagger UI files installed by ``scripts/bootstrap.sh`` (``settings.api.docs_assets``);
when they are missing, ``/docs`` says so and points at ``/openapi.json``, which needs
nothing.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

#: Where the Swagger UI files are mounted.
ASSETS_URL = "/docs/assets"
#: The files /docs needs from the Swagger UI distribution.
ASSET_FILES = ("swagger-ui-bundle.js", "swagger-ui.css")


def install_docs(app: FastAPI, assets: Path) -> None:
    """Add ``/docs`` to ``app`` (built with ``docs_url=None``), from the files in ``assets`` when complete."""
    ready = all((assets / name).is_file() for name in ASSET_FILES)
    if ready:
        app.mount(ASSETS_URL, StaticFiles(directory=assets), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        if not ready:
            return HTMLResponse(
                "<!doctype html><title>orderguard API</title><h1>orderguard API</h1>"
                f"<p>The interactive reference is not installed here (expected in <code>{assets}</code>; "
                "<code>scripts/bootstrap.sh</code> installs it). The API's schema is at "
                '<a href="/openapi.json">/openapi.json</a>.</p>')
        return get_swagger_ui_html(openapi_url=app.openapi_url or "/openapi.json", title=f"{app.title} API",
                                   swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{ASSETS_URL}/swagger-ui.css", swagger_favicon_url="")
