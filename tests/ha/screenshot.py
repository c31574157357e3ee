#!/usr/bin/python3
"""Screenshots of Home Assistant's frontend pages for tests/ha/run.py (README material, CI artefacts).

Runs with the system python3 (Debian's python3-selenium; the HA virtualenv stays HA's own) and
drives Debian's headless chromium through chromium-driver. It logs in without typing a password:
the tokens of run.py's onboarding/auth exchange go into localStorage (`hassTokens`, the key HA's
frontend reads its session from) on HA's origin, then each page is opened and saved once all of
its expected texts show (searched through the shadow DOM; bounded wait, no fixed sleeps).

Input on stdin, JSON: {"base": "http://127.0.0.1:PORT", "tokens": {...the /auth/token reply...},
"pages": [{"path": "/config/devices/device/ID", "expect": ["Uptime", ...], "png": "target/ha/x.png",
"size": [width, height] (optional)}],
"work": "/tmp/dir", "budget_s": 100}. Exit status 0 when every page was saved; prints what it waited
for otherwise. All waits together stay within budget_s.
"""
import json
import os
import shutil
import sys
import time

from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.support.ui import WebDriverWait

# All text of the page, including what HA's web components render inside their shadow roots.
DEEP_TEXT = """
const out = [];
const walk = (n) => {
  if (n.nodeType === Node.TEXT_NODE) { out.push(n.textContent); return; }
  if (n.shadowRoot) walk(n.shadowRoot);
  for (const c of n.childNodes) walk(c);
};
walk(document);
return out.join(' ').replace(/\\s+/g, ' ');
"""

# Icons load lazily after the texts: every state icon has drawn its SVG path.
ICONS_DRAWN = """
const icons = [];
const walk = (n) => {
  if (n.tagName === 'HA-STATE-ICON') icons.push(n);
  if (n.shadowRoot) walk(n.shadowRoot);
  for (const c of n.children || []) walk(c);
};
walk(document.documentElement);
const drawn = (n) => {
  const stack = [n];
  while (stack.length) {
    const e = stack.pop();
    if (e.tagName === 'path' && (e.getAttribute('d') || '').length > 10) return true;
    if (e.shadowRoot) stack.push(...e.shadowRoot.children);
    stack.push(...(e.children || []));
  }
  return false;
};
return icons.length > 0 && icons.every(drawn);
"""


def main():
    job = json.load(sys.stdin)
    base, tok = job["base"].rstrip("/"), job["tokens"]
    hass_tokens = {
        "access_token": tok["access_token"],
        "refresh_token": tok["refresh_token"],
        "expires_in": tok["expires_in"],
        "token_type": tok.get("token_type", "Bearer"),
        # The frontend only uses stored tokens issued to its own origin and client id.
        "hassUrl": base,
        "clientId": base + "/",
    }
    opts = webdriver.ChromeOptions()
    for a in ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
              "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
              "--hide-scrollbars", f"--user-data-dir={job['work']}/chrome", "--force-device-scale-factor=1", "--lang=en-US"]:
        opts.add_argument(a)
    opts.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver"), options=opts)
    failed = []
    deadline = time.monotonic() + float(job.get("budget_s", 100))
    left = lambda cap: max(1.0, min(cap, deadline - time.monotonic()))  # noqa: E731
    try:
        driver.set_page_load_timeout(60)
        # Any page of HA's origin, to write its localStorage; a static file runs no frontend code.
        driver.get(base + "/manifest.json")
        driver.execute_script(
            "const t = arguments[0]; t.expires = Date.now() + t.expires_in * 1000;"
            "localStorage.setItem('hassTokens', JSON.stringify(t));"
            # Keep the sidebar and theme at their defaults; English texts for the README.
            "localStorage.setItem('selectedLanguage', JSON.stringify('en'));",
            hass_tokens,
        )
        for page in job["pages"]:
            t0 = time.monotonic()
            driver.set_window_size(*page.get("size", (1100, 1500)))
            driver.get(base + page["path"])
            missing = []

            def ready(d):
                text = d.execute_script(DEEP_TEXT)
                missing[:] = [e for e in page["expect"] if e.lower() not in text.lower()]
                return not missing

            try:
                WebDriverWait(driver, left(60), poll_frequency=0.25).until(ready)
            except TimeoutException:
                text = driver.execute_script(DEEP_TEXT)
                print(f"screenshot: {page['path']} never showed {missing}; page text: {text[:400]!r}", flush=True)
                failed.append(page["path"])
                continue
            try:
                WebDriverWait(driver, left(20), poll_frequency=0.25).until(lambda d: d.execute_script(ICONS_DRAWN))
            except TimeoutException:
                print(f"screenshot: {page['path']}: some icons not drawn yet; saved as it is", flush=True)
            os.makedirs(os.path.dirname(page["png"]) or ".", exist_ok=True)
            driver.save_screenshot(page["png"])
            print(f"screenshot: {page['png']} ({page['path']}, ready after {time.monotonic() - t0:.1f} s)", flush=True)
    finally:
        driver.quit()
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
