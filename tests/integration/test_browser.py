"""test_browser.py — the review page (GET /) in headless Chromium against the real daemon. A quick
model is trained on the synthetic camera's frames (as test_scoring.py does, one epoch), then the
daemon scores two cameras with seeded defects (the same product: both of recipe `line`): `line`
delivers a burst of frames and stops, `belt` keeps delivering a few a second. Chromium is driven over the DevTools protocol on a pipe
(tests/integration/lib/cdp.py). Checked: the first page of alerts and "load more" (cursor
paging), an alert arriving from the event stream without a reload, the token dialog on the first
verdict (401) and the verdict then reaching the daemon (GET /api/v1/alerts/{id}), a verdict by
keyboard (j, d), the state filter and its export link, no script error; a screenshot is left in
tests/output/review.png for a human to look at. Python standard library only."""
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from cdp import Browser  # noqa: E402
from testlib import tiny_train  # noqa: E402

BIN = os.environ["INSPECTD_BIN"]
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHOT = os.path.join(ROOT, "tests", "output", "review.png")
FAILED = os.path.join(ROOT, "tests", "output", "review-failed.png")
WIDTH, HEIGHT = 1180, 820  # a tablet in landscape
PAGE = 30                  # alerts per page the review page asks for

CAMERA = """[camera.{name}]
driver = synthetic
recipe = line
fps = {fps}
{frames}width = 64
height = 64
defect_rate = {rate}
seed = {seed}
"""

TRAIN = tiny_train(epochs=1)


def camera(name, fps, rate, seed, frames=None):
    return CAMERA.format(name=name, fps=fps, rate=rate, seed=seed,
                         frames="frames = %d\n" % frames if frames else "")


def start(tmp, name, cameras):
    conf = os.path.join(tmp, name + ".conf")
    with open(conf, "w") as f:
        f.write("[http]\nlisten = 127.0.0.1:0\ntoken_file = %s\n[store]\npath = %s\n"
                "[trainer]\nenabled = false\n%s" % (os.path.join(tmp, "token"),
                                                   os.path.join(tmp, "line.db"), cameras))
    log_path = os.path.join(tmp, name + ".log")
    log = open(log_path, "w")
    daemon = subprocess.Popen([BIN, "run", "--config", conf], stdout=log, stderr=log)
    deadline = time.time() + 20
    while time.time() < deadline:
        with open(log_path) as f:
            m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", f.read())
        if m:
            return daemon, int(m.group(1))
        assert daemon.poll() is None, open(log_path).read()
        time.sleep(0.05)
    daemon.kill()
    raise AssertionError("the daemon did not say its port: " + open(log_path).read())


def stop(daemon):
    daemon.send_signal(signal.SIGTERM)
    assert daemon.wait(timeout=30) == 0, "daemon did not stop cleanly"


def get(port, path):
    with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=10) as r:
        return json.loads(r.read())


def wait_for(pred, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return
        time.sleep(0.1)
    raise AssertionError("timed out waiting for " + what)


def count_alerts(port):
    n, cursor = 0, None
    while True:
        page = get(port, "/api/v1/alerts?limit=500" + ("&cursor=" + cursor if cursor else ""))
        n += len(page["alerts"])
        cursor = page["next_cursor"]
        if not cursor:
            return n


def cards(page):
    """[id, state] of every alert card, top to bottom."""
    return page.eval("[...document.querySelectorAll('#alerts .alert')]"
                     ".map(li => [Number(li.dataset.id), li.dataset.state])")


def model(tmp):
    """A database with an active model: frames of good products, then one epoch of training."""
    daemon, port = start(tmp, "learn", camera("line", 0, 0.01, 1, frames=120))
    try:
        wait_for(lambda: get(port, "/api/v1/status")["database"]["frames_stored"] >= 120, 30,
                 "120 frames")
    finally:
        stop(daemon)
    r = subprocess.run([BIN, "train", "--db", os.path.join(tmp, "line.db"), "--out",
                        os.path.join(tmp, "model.safetensors"), "--register", *TRAIN],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "now scores" in r.stderr, r.stderr


def show_failure(page):
    """What the page showed when a step failed: a screenshot beside review.png, and its log."""
    try:
        os.makedirs(os.path.dirname(FAILED), exist_ok=True)
        page.screenshot(FAILED)
        print("the page at the failure: %s" % FAILED)
        print(page.eval("[...document.querySelectorAll('#log li')].slice(0, 20)"
                        ".map(li => li.textContent).join('\\n') + '\\ntoast: ' + "
                        "document.querySelector('#toast').textContent"))
        print("script errors:", page.exceptions)
    except Exception as e:  # the browser itself may be what failed
        print("no picture of the failure: %s" % e)


def choose_state(page, state):
    """Clicks the state filter's button until the page shows it chosen (a click can land while the
    live page moves; choosing the same state again changes nothing)."""
    sel = json.dumps("#f-state [data-state='%s']" % state)
    for _ in range(5):
        page.click("#f-state [data-state='%s']" % state)
        pressed = page.eval("new Promise(r => setTimeout(() => "
                            "r(document.querySelector(%s).getAttribute('aria-pressed')), 500))" % sel)
        if pressed == "true":
            return
    raise AssertionError("the state filter %r did not take after 5 clicks" % state)


def drive(page, port, token):
    """The operator's session, step by step."""
    page.navigate("http://127.0.0.1:%d/" % port)

    # the first page, newest first, and more behind "load more"
    page.wait_for("document.querySelectorAll('#alerts .alert').length >= %d" % PAGE,
                  what="the first page of alerts")
    page.wait_for("document.querySelector('#live').dataset.state === 'live'",
                  what="the event stream")
    first = cards(page)
    shown_us = max(get(port, "/api/v1/alerts/%d" % i)["created_at_us"] for i, _ in first)
    ids = [i for i, _ in first]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == len(ids), ids
    assert page.eval("!document.querySelector('#more').hidden"), "no load more button"

    # a new alert arrives from the event stream: a new card on top, a line in the event log
    newest = ids[0]
    logged = page.eval("document.querySelectorAll('#log li[data-kind=alert]').length")
    page.wait_for("Number(document.querySelector('#alerts .alert').dataset.id) > %d && "
                  "document.querySelectorAll('#log li[data-kind=alert]').length > %d"
                  % (newest, logged), timeout=15, what="an alert from the event stream")
    live = cards(page)
    arrived = [i for i, _ in live if i > newest]
    assert arrived and len(live) == len(first) + len(arrived), (first, live)
    # a frame captured after the page showed its first alerts (a camera that reaches its frame
    # count is restarted by the pipeline, so line may be live again as well as belt)
    alert = get(port, "/api/v1/alerts/%d" % arrived[0])
    assert alert["camera"] in ("line", "belt") and alert["created_at_us"] > shown_us, alert

    # load more: the next page joins the list below, no alert twice
    before = len(cards(page))
    page.click("#more")
    page.wait_for("document.querySelectorAll('#alerts .alert').length > %d" % before,
                  what="the second page")
    more = [i for i, _ in cards(page)]
    assert len(set(more)) == len(more) and more == sorted(more, reverse=True), more
    page.eval("window.scrollTo(0, 0)")

    # the first verdict: 401, the token dialog, then the verdict reaches the daemon
    aid = cards(page)[0][0]
    assert get(port, "/api/v1/alerts/%d" % aid)["state"] == "new"
    page.click("#alerts .alert[data-id='%d'] [data-verdict=false_positive]" % aid)
    page.wait_for("document.querySelector('#token-dlg').open", what="the token dialog")
    text = page.eval("document.querySelector('#token-dlg').textContent")
    assert "./var/token" in text and "token file" in text, text
    page.click("#token-input")
    page.type_text(token)
    page.click("#token-save")
    page.wait_for("document.querySelector(\"#alerts .alert[data-id='%d']\").dataset.state "
                  "=== 'false_positive'" % aid, what="the card marked false positive")
    assert get(port, "/api/v1/alerts/%d" % aid)["state"] == "false_positive"
    assert page.eval("localStorage.getItem('inspectd.token')") == token

    # by keyboard: j selects the next card, d marks it a defect
    page.key("j")
    nid = page.eval("Number(document.querySelector('#alerts .alert.sel').dataset.id)")
    assert nid != aid, nid
    page.key("d")
    wait_for(lambda: get(port, "/api/v1/alerts/%d" % nid)["state"] == "defect", 60,
             "the d key's verdict")

    # the state filter: only the false positive is left, and the export follows the filter
    choose_state(page, "false_positive")
    page.wait_for("document.querySelectorAll('#alerts .alert').length >= 1 && "
                  "[...document.querySelectorAll('#alerts .alert')]"
                  ".every(li => li.dataset.state === 'false_positive')",
                  timeout=60, what="the false positives")
    assert [i for i, _ in cards(page)] == [aid], cards(page)
    href = page.eval("document.querySelector('#export').href")
    assert "/api/v1/export?" in href and "state=false_positive" in href, href

    # back to every alert, for the picture
    choose_state(page, "")
    page.wait_for("document.querySelectorAll('#alerts .alert').length >= %d" % PAGE,
                  what="every alert again")
    page.send("Emulation.setEmulatedMedia",  # a still picture: no arrival animation
              {"features": [{"name": "prefers-reduced-motion", "value": "reduce"}]})
    page.eval("window.scrollTo(0, 0); document.activeElement.blur()")
    page.wait_for("!document.querySelector('#toast').classList.contains('show') && "
                  "[...document.querySelectorAll('#alerts img')]"
                  ".filter(i => i.getBoundingClientRect().top < innerHeight)"
                  ".every(i => i.complete)", timeout=20,
                  what="the toast gone and the images loaded")
    os.makedirs(os.path.dirname(SHOT), exist_ok=True)
    png = page.screenshot(SHOT)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and png[12:16] == b"IHDR", png[:16]
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert (width, height) == (WIDTH, HEIGHT), (width, height)
    assert page.exceptions == [], page.exceptions
    print("screenshot: %s (%d bytes)" % (SHOT, len(png)))


def main():
    t0 = time.time()
    tmp = tempfile.mkdtemp(prefix="inspectd-browser-")
    model(tmp)
    daemon, port = start(tmp, "score", camera("line", 40, 0.5, 2, frames=120) +
                         camera("belt", 3, 0.5, 3))
    browser = None
    try:
        wait_for(lambda: count_alerts(port) > PAGE + 5, 30, "more than a page of alerts")
        with open(os.path.join(tmp, "token")) as f:
            token = f.read().strip()
        browser = Browser()
        print("browser:", browser.version())
        page = browser.new_page(WIDTH, HEIGHT)
        try:
            drive(page, port, token)
        except Exception:
            show_failure(page)
            raise
    finally:
        if browser:
            browser.close()
        stop(daemon)
    print("ok in %.1f s" % (time.time() - t0))


if __name__ == "__main__":
    main()
