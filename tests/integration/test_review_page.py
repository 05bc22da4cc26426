"""The review page in headless Chromium (Selenium + the Debian chromium-driver) against a real
``aidetect serve`` with auth on: upload, the verdict visible, the analyst's decision recorded in the
label log. Screenshots are kept under the test's tmp folder (printed on failure)."""

from __future__ import annotations

import base64
import hashlib
import io
import shutil
import sys
from pathlib import Path

import httpx
import pytest
from PIL import Image

from aidetect.feedback.labels import LabelLog
from tests.helpers import provenance as fx
from tests.helpers import servers
from tests.helpers.serving import aidetect_serve, make_bundle

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
TOKEN = "review-test-token"
MODEL = "detector"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    work = tmp_path_factory.mktemp("review")
    bundle = make_bundle(work / "bundle", name=MODEL)
    env = {
        "AIDETECT_SERVING__AUTH_REQUIRED": "true",
        "AIDETECT_SERVE_TOKENS": TOKEN,
        "AIDETECT_REVIEW_PAGE__STORE_URI": str(work / "review"),
        "AIDETECT_REVIEW_PAGE__LABEL_LOG_URI": str(work / "labels"),
        "AIDETECT_REVIEW_PAGE__UNCERTAIN_LOW": "0.0",  # every upload the detector decides is queued
        "AIDETECT_REVIEW_PAGE__UNCERTAIN_HIGH": "1.0",
    }
    with aidetect_serve(str(bundle), work, env=env) as (url, _):
        yield url, work


def _api(url: str, path: str, **kw) -> httpx.Response:
    return httpx.post(f"{url}{path}", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30, **kw)


def test_page_is_open_but_its_api_needs_the_token(server) -> None:
    url, _ = server
    page = httpx.get(f"{url}/review")
    assert page.status_code == 200 and "aidetect review" in page.text
    assert httpx.get(f"{url}/review/static/review.js").status_code == 200
    assert httpx.get(f"{url}/review/static/secret.txt").status_code == 404
    assert httpx.get(f"{url}/review/api/queue").status_code == 401
    assert httpx.get(f"{url}/review/api/info", headers={"Authorization": "Bearer nope"}).status_code == 401


def test_api_bad_input_is_a_clear_400(server) -> None:
    url, _ = server
    assert _api(url, "/review/api/labels", content=b"{").json()["error"] == "request body is not JSON"
    r = _api(url, "/review/api/labels", json={"sha256": "ab" * 32, "label": "MAYBE"})
    assert r.status_code == 400 and "label must be one of" in r.json()["error"]
    r = _api(url, "/review/api/labels", json={"sha256": "xyz", "label": "FAKE"})
    assert r.status_code == 400 and "sha256" in r.json()["error"]
    r = _api(url, "/review/api/submissions", json={"image_b64": "%%", "result": {}})
    assert r.status_code == 400 and "base64" in r.json()["error"]
    r = _api(url, "/review/api/explain", json={"image_b64": ""})
    assert r.status_code == 404 and "no explainer configured" in r.json()["error"]


@pytest.mark.slow
def test_review_page_in_headless_chromium(server, tmp_path: Path) -> None:
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.skip(
            "chromium / chromedriver not installed (Debian chromium chromium-driver; CI installs them)"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    url, work = server
    shots = tmp_path / "screenshots"
    shots.mkdir()
    generated = tmp_path / "generated.png"
    generated.write_bytes(fx.png_with_text({"parameters": fx.A1111_PARAMETERS}, size=96))
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(fx.plain_image(96, seed=11))

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,900"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=opts)
    wait = WebDriverWait(driver, 30)
    try:
        driver.get(f"{url}/review")
        wait.until(lambda d: "token" in d.find_element(By.ID, "status").text)  # auth on: the page asks
        assert "error" in driver.find_element(By.ID, "status").get_attribute("class")
        driver.save_screenshot(str(shots / "01-asks-for-token.png"))

        driver.find_element(By.ID, "token").send_keys(TOKEN)
        driver.find_element(By.ID, "reviewer").send_keys("ana")
        driver.find_element(By.ID, "connect").click()
        wait.until(ec.text_to_be_present_in_element((By.ID, "model"), "version 7"))
        assert "No explainer is configured" in driver.find_element(By.ID, "explainer-note").text

        driver.find_element(By.ID, "file-input").send_keys(f"{generated}\n{photo}")
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#results .verdict")) == 2)
        results = {
            box.find_element(By.CLASS_NAME, "name").text: box
            for box in driver.find_elements(By.CSS_SELECTOR, "#results .result")
        }
        assert results["generated.png"].find_element(By.CLASS_NAME, "verdict").text == "ai-generated"
        assert "png-parameters found" in results["generated.png"].text
        assert results["photo.jpg"].find_element(By.CLASS_NAME, "verdict").text in {"likely-ai", "unknown"}
        assert "fake score" in results["photo.jpg"].text

        # the photo (decided by the detector alone) waits in the queue; the generated image does not
        sha = hashlib.sha256(photo.read_bytes()).hexdigest()
        item = wait.until(
            ec.presence_of_element_located((By.CSS_SELECTOR, f'#queue .item[data-sha256="{sha}"]'))
        )
        assert len(driver.find_elements(By.CSS_SELECTOR, "#queue .item")) == 1
        driver.save_screenshot(str(shots / "02-verdicts-and-queue.png"))

        item.find_element(By.CSS_SELECTOR, 'button[data-label="FAKE"]').click()
        wait.until(ec.text_to_be_present_in_element((By.ID, "status"), "Recorded FAKE"))
        driver.save_screenshot(str(shots / "03-decision-recorded.png"))
    finally:
        driver.quit()

    (rec,) = LabelLog(str(work / "labels")).read()
    assert (rec.sha256, rec.label, rec.author, rec.source) == (sha, "FAKE", "ana", "review-page")
    assert (rec.model_name, rec.model_version) == (MODEL, "7")
    queue = httpx.get(f"{url}/review/api/queue", headers={"Authorization": f"Bearer {TOKEN}"}).json()
    assert queue["items"] == []  # decided: it left the queue
    assert sorted(p.name for p in shots.iterdir()) == [
        "01-asks-for-token.png",
        "02-verdicts-and-queue.png",
        "03-decision-recorded.png",
    ]


@pytest.mark.slow
def test_explainer_heatmap_through_the_page_api(tmp_path: Path) -> None:
    """With ``explainer_url`` set, the page's explain route answers the real Grad-CAM explainer's heatmap."""
    from tests.integration.test_explain_server import _checkpoint  # the same tiny torch checkpoint

    port = servers.free_port()
    cmd = [
        sys.executable,
        "-m",
        "aidetect.cli",
        "explain",
        "--serve",
        "--model",
        str(_checkpoint(tmp_path / "m.pt")),
    ]
    cmd += ["--name", MODEL, "--http-port", str(port)]
    explainer = f"http://127.0.0.1:{port}"
    bundle = make_bundle(tmp_path / "bundle", name=MODEL)
    env = {"AIDETECT_REVIEW_PAGE__EXPLAINER_URL": explainer}
    with (
        servers.running(cmd, f"{explainer}/v2/health/ready", tmp_path / "explainer.log", timeout=120),
        aidetect_serve(str(bundle), tmp_path, env=env) as (url, _),
    ):
        assert httpx.get(f"{url}/review/api/info").json()["explainer"] is True
        image = base64.b64encode(fx.plain_image(64, seed=2)).decode()
        r = httpx.post(f"{url}/review/api/explain", json={"image_b64": image}, timeout=60)
        assert r.status_code == 200, r.text
        png = Image.open(io.BytesIO(base64.b64decode(r.json()["heatmap_png_b64"])))
        assert png.format == "PNG" and png.size[0] >= 256
