"""/docs is served from this machine: no CDN, and a clear page when the Swagger UI files are missing."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi.testclient import TestClient

from features.settings import Settings
from serving.app import create_app


def _client(tmp_path: Path, assets: Path) -> TestClient:
    return TestClient(create_app(Settings(data_dir=tmp_path / "data", api={"docs_assets": assets})))


def test_docs_load_the_local_swagger_ui_and_nothing_from_elsewhere(tmp_path: Path) -> None:
    assets = tmp_path / "ui"
    assets.mkdir()
    (assets / "swagger-ui-bundle.js").write_text("window.SwaggerUIBundle = function () {};", encoding="utf-8")
    (assets / "swagger-ui.css").write_text("body { margin: 0 }", encoding="utf-8")
    with _client(tmp_path, assets) as client:
        page = client.get("/docs")
        assert page.status_code == 200
        urls = re.findall(r'(?:src|href)="([^"]+)"', page.text)
        assert urls and all(u.startswith("/") for u in urls), urls  # every asset from this service
        assert "cdn" not in page.text and "'/openapi.json'" in page.text
        assert client.get("/docs/assets/swagger-ui.css").text == "body { margin: 0 }"


def test_without_the_files_docs_say_so_and_point_at_the_schema(tmp_path: Path) -> None:
    with _client(tmp_path, tmp_path / "missing") as client:
        page = client.get("/docs")
        assert page.status_code == 200
        assert "scripts/bootstrap.sh" in page.text and 'href="/openapi.json"' in page.text
        assert "cdn" not in page.text
        assert client.get("/openapi.json").status_code == 200
        assert client.get("/redoc").status_code == 404  # the CDN-only page is not offered
