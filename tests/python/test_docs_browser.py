"""/docs in a real browser: headless Chromium (Debian's), driven by Playwright
(tests/browser/docs_check.mjs), renders every operation of /openapi.json from
assets the daemon serves itself, with no request to any other host."""

import json
import os
import subprocess
import urllib.request

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")


def test_swagger_ui_renders_every_operation_from_the_daemon_alone(daemon):
    spec = json.load(urllib.request.urlopen(daemon.endpoint + "/openapi.json"))
    documented = sorted((method.upper(), path) for path, item in spec["paths"].items()
                        for method in item if method in ("get", "put", "post", "delete", "head"))
    run = subprocess.run(["node", os.path.join(ROOT, "tests", "browser", "docs_check.mjs"), daemon.endpoint],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout.strip().splitlines()[-1])
    assert report["loadErrors"] == [], report["errors"]
    assert sorted((o["method"], o["path"]) for o in report["operations"]) == documented
    assert report["title"].startswith("BleepStore S3-Compatible API")
    # Every request went to the daemon and was answered by it; the only refusal is the
    # unsigned ListBuckets tried from the page, which S3 answers 403 AccessDenied.
    assert report["failed"] == []
    assert all(url.startswith(daemon.endpoint + "/") for url in report["requests"]), report["requests"]
    loaded = {r["url"][len(daemon.endpoint):] for r in report["responses"] if r["status"] == 200}
    assert {"/docs", "/docs/swagger-ui-bundle.js", "/docs/swagger-ui.css", "/docs/init.js",
            "/openapi.json"} <= loaded
    assert [r for r in report["responses"] if r["status"] != 200] == [{"url": daemon.endpoint + "/", "status": 403}]
    assert report["tried"]["status"] == "403" and "<Code>AccessDenied</Code>" in report["tried"]["body"]


def test_docs_assets_are_served_with_a_same_origin_policy(daemon):
    with urllib.request.urlopen(daemon.endpoint + "/docs/swagger-ui-bundle.js") as answer:
        bundle = answer.read()
        assert answer.headers["Content-Type"] == "text/javascript; charset=utf-8"
        assert "default-src 'self'" in answer.headers["Content-Security-Policy"]
    vendored = open(os.path.join(ROOT, "src", "ops", "swagger-ui", "swagger-ui-bundle.js"), "rb").read()
    assert bundle == vendored and len(bundle) > 1_000_000
    page = urllib.request.urlopen(daemon.endpoint + "/docs").read().decode()
    assert "https://" not in page and "unpkg" not in page
    # The committed assets are the pinned npm release's.
    subprocess.run([os.path.join(ROOT, "scripts", "vendor_swagger_ui.sh"), "--check"], check=True)
