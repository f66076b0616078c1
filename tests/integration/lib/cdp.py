"""Headless Chromium driven over the Chrome DevTools Protocol on a pipe, Python standard library
only: `chromium --remote-debugging-pipe` reads commands on its fd 3 and writes replies and events
on its fd 4, one JSON message per NUL-terminated chunk. A Browser owns the chromium process (its own
session and process group, ended on close) and a temporary profile; a Page is one tab attached
with flatten=true, so its commands carry the tab's sessionId. Every command waits for its reply
and raises CDPError on an error reply; events are queued per session for wait_event(), and
exceptions thrown by the page's scripts are kept in Page.exceptions."""
import base64
import collections
import fcntl
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time

FLAGS = ["--headless=new", "--remote-debugging-pipe", "--no-sandbox", "--disable-gpu",
         "--disable-dev-shm-usage", "--no-first-run", "--no-default-browser-check",
         "--disable-extensions", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--disable-default-apps", "--mute-audio", "--hide-scrollbars",
         "--disable-background-timer-throttling", "--disable-renderer-backgrounding",
         "--disable-backgrounding-occluded-windows", "--password-store=basic",
         "--use-mock-keychain"]


class CDPError(Exception):
    pass


class Browser:
    def __init__(self, binary="chromium", width=1180, height=820):
        self.profile = tempfile.mkdtemp(prefix="inspectd-chromium-")
        to_chrome_r, self._out = os.pipe()
        self._in, from_chrome_w = os.pipe()
        # chromium expects its ends exactly at fd 3 and 4: move them out of the way first so the
        # dup2 calls in the child cannot overwrite one with the other
        high_r = fcntl.fcntl(to_chrome_r, fcntl.F_DUPFD_CLOEXEC, 64)
        high_w = fcntl.fcntl(from_chrome_w, fcntl.F_DUPFD_CLOEXEC, 64)
        os.close(to_chrome_r)
        os.close(from_chrome_w)

        def child_fds():
            os.dup2(high_r, 3)  # dup2 leaves the copies inheritable
            os.dup2(high_w, 4)

        self.stderr = open(os.path.join(self.profile, "chromium.log"), "w+")
        cmd = [binary, *FLAGS, "--user-data-dir=" + self.profile,
               "--window-size=%d,%d" % (width, height), "about:blank"]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self.stderr,
                                     stderr=self.stderr, preexec_fn=child_fds, pass_fds=(),
                                     close_fds=False, start_new_session=True)
        os.close(high_r)
        os.close(high_w)
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._next_id = 0
        self._replies = {}
        self._events = collections.defaultdict(list)
        self._closed = False
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        buf = b""
        while True:
            try:
                chunk = os.read(self._in, 1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                break
            buf += chunk
            while b"\0" in buf:
                raw, buf = buf.split(b"\0", 1)
                msg = json.loads(raw)
                with self._cond:
                    if "id" in msg:
                        self._replies[msg["id"]] = msg
                    else:
                        self._events[msg.get("sessionId")].append(msg)
                    self._cond.notify_all()
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def send(self, method, params=None, session=None, timeout=30):
        with self._cond:
            self._next_id += 1
            mid = self._next_id
        msg = {"id": mid, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._out, json.dumps(msg).encode() + b"\0")
        deadline = time.time() + timeout
        with self._cond:
            while mid not in self._replies:
                left = deadline - time.time()
                if self._closed:
                    raise CDPError("chromium closed the pipe (see %s)" % self.stderr.name)
                if left <= 0:
                    raise CDPError("%s: no reply in %d s" % (method, timeout))
                self._cond.wait(left)
            reply = self._replies.pop(mid)
        if "error" in reply:
            raise CDPError("%s: %s" % (method, reply["error"].get("message")))
        return reply.get("result", {})

    def wait_event(self, method, session=None, timeout=30):
        """The first queued event named method for session (removed from the queue)."""
        deadline = time.time() + timeout
        with self._cond:
            while True:
                queue = self._events[session]
                for i, ev in enumerate(queue):
                    if ev["method"] == method:
                        return queue.pop(i)
                left = deadline - time.time()
                if left <= 0 or self._closed:
                    raise CDPError("no %s event in %d s" % (method, timeout))
                self._cond.wait(left)

    def events(self, session, method):
        with self._cond:
            return [e for e in self._events[session] if e["method"] == method]

    def version(self):
        # the first command waits for chromium's start-up, which a busy 2-core machine can
        # stretch well past the 30 s a command gets once it runs
        return self.send("Browser.getVersion", timeout=120)["product"]

    def new_page(self, width, height):
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"]
        return Page(self, session, width, height)

    def close(self):
        if self.proc.poll() is None:
            try:
                self.send("Browser.close", timeout=5)
            except (CDPError, OSError):
                pass
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        for fd in (self._out, self._in):
            try:
                os.close(fd)
            except OSError:
                pass
        self.stderr.close()
        shutil.rmtree(self.profile, ignore_errors=True)


class Page:
    def __init__(self, browser, session, width, height):
        self.b = browser
        self.session = session
        self.send("Page.enable")
        self.send("Runtime.enable")
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})

    def send(self, method, params=None, timeout=30):
        return self.b.send(method, params, self.session, timeout)

    def navigate(self, url, timeout=30):
        r = self.send("Page.navigate", {"url": url})
        if r.get("errorText"):
            raise CDPError("%s: %s" % (url, r["errorText"]))
        if r.get("loaderId"):  # none for a move within the page (#fragment): nothing loads
            self.b.wait_event("Page.loadEventFired", self.session, timeout)

    def reload(self, timeout=30):
        self.send("Page.reload")
        self.b.wait_event("Page.loadEventFired", self.session, timeout)

    def eval(self, expression, timeout=30):
        """The value of a JavaScript expression (awaited when it is a promise)."""
        r = self.send("Runtime.evaluate", {"expression": expression, "awaitPromise": True,
                                           "returnByValue": True, "timeout": timeout * 1000},
                      timeout=timeout + 5)
        if "exceptionDetails" in r:
            d = r["exceptionDetails"]
            text = d.get("exception", {}).get("description") or d.get("text")
            raise CDPError("in the page: %s" % text)
        return r["result"].get("value")

    def wait_for(self, condition, timeout=20, what=None):
        """Waits in the page until the JavaScript expression condition is truthy; its value."""
        js = """new Promise((resolve, reject) => {
            const t0 = performance.now();
            (function poll() {
                let v;
                try { v = (%s); } catch (e) { return reject(e); }
                if (v) return resolve(v);
                if (performance.now() - t0 > %d) return reject(new Error('timed out: ' + %s));
                setTimeout(poll, 50);
            })();
        })""" % (condition, timeout * 1000, json.dumps(what or condition))
        return self.eval(js, timeout + 5)

    def click(self, selector):
        """A real mouse click (pressed and released) at the middle of the element."""
        # a live page moves under the pointer (new alerts, a refreshed panel): aim again until the
        # middle of the element is the element itself, as a user looks before clicking
        for _ in range(25):
            box = self.eval("""(() => {
                const el = document.querySelector(%s);
                if (!el) return null;
                el.scrollIntoView({block: 'center', behavior: 'instant'});
                const r = el.getBoundingClientRect();
                const x = r.left + r.width / 2, y = r.top + r.height / 2;
                const hit = document.elementFromPoint(x, y);
                return [x, y, r.width, r.height, !!hit && el.contains(hit)];
            })()""" % json.dumps(selector))
            if not box or box[4]:
                break
            time.sleep(0.2)
        if not box or box[2] == 0 or box[3] == 0:
            raise CDPError("nothing visible to click at %s" % selector)
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", {"type": kind, "x": box[0], "y": box[1],
                                                   "button": "left", "clickCount": 1})

    def type_text(self, text):
        self.send("Input.insertText", {"text": text})

    def key(self, key):
        """A key press (keydown + keyup) of a printable character, as a keyboard sends it."""
        self.send("Input.dispatchKeyEvent", {"type": "keyDown", "key": key, "text": key})
        self.send("Input.dispatchKeyEvent", {"type": "keyUp", "key": key})

    def screenshot(self, path):
        data = base64.b64decode(self.send("Page.captureScreenshot", {"format": "png"})["data"])
        with open(path, "wb") as f:
            f.write(data)
        return data

    @property
    def exceptions(self):
        return [e["params"]["exceptionDetails"] for e in
                self.b.events(self.session, "Runtime.exceptionThrown")]
