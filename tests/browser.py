"""Headless Chromium for the tests of the HTML report: load a page with a probe script and read
back what the browser did with it.

A copy of the page gets a probe in its head that records script errors and failed resources (an
``error`` listener in the capture phase sees both) and, after ``load``, writes into the DOM the
state of every image and of every MathML ``<math>`` element, which ``--dump-dom`` prints.
Console messages (Chromium logs them to stderr with ``--enable-logging=stderr``) are returned
beside the record.

For MathML the probe records whether the browser has native MathML (``MathMLElement``), each
``<math>`` element's box, and whether the first ``<msub>``'s subscript sits lower than its base:
a browser that does not lay out MathML draws the two on one baseline as unknown inline
elements, so this separates typeset equations from text that merely carries the tags.

Chromium runs with a throw-away profile and no network side traffic (the test machines have
no network): ``--headless --no-sandbox --disable-gpu --disable-background-networking
--disable-component-update --disable-sync --no-first-run`` and a fresh ``--user-data-dir``.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

CHROMIUM = shutil.which("chromium")
SKIP_REASON = (
    "chromium is not installed (apt-get install chromium): the browser tests of the report "
    "need a headless Chromium"
)

PROBE = """<script>
window.__errors = [];
window.addEventListener('error', e => {
  const src = e.target && e.target.src ? ' ' + e.target.src.slice(0, 40) : '';
  window.__errors.push(String(e.message || e.type) + src);
}, true);
window.addEventListener('load', () => {
  const imgs = Array.from(document.images);
  const maths = Array.from(document.getElementsByTagName('math'));
  const box = el => { const r = el.getBoundingClientRect(); return [r.width, r.height]; };
  const sub = document.querySelector('msub');
  let lowered = null;
  if (sub && sub.children.length === 2) {
    lowered = sub.children[1].getBoundingClientRect().bottom
      > sub.children[0].getBoundingClientRect().bottom + 0.5;
  }
  const out = {
    images: imgs.length,
    broken: imgs.filter(i => !i.complete || i.naturalWidth === 0).map(i => i.alt),
    widths: imgs.map(i => i.naturalWidth),
    figures: document.querySelectorAll('figure img').length,
    errors: window.__errors,
    height: document.body.scrollHeight,
    headings: Array.from(document.querySelectorAll('h2')).map(h => h.textContent),
    mathml: typeof MathMLElement !== 'undefined',
    maths: maths.length,
    math_native: maths.filter(m => typeof MathMLElement !== 'undefined'
      && m instanceof MathMLElement).length,
    math_boxes: maths.map(box),
    sub_lowered: lowered,
  };
  const pre = document.createElement('pre');
  pre.id = 'probe';
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>"""


def chromium(args: list[str], profile: Path) -> subprocess.CompletedProcess[str]:
    """Run headless Chromium with a fresh profile (under ``profile``) and no network traffic."""
    assert CHROMIUM is not None, SKIP_REASON
    fresh = profile / uuid.uuid4().hex  # a new --user-data-dir on every call
    cmd = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={fresh}",
        "--enable-logging=stderr",
        "--v=0",
        *args,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)


def probe(page: Path, tmp: Path) -> tuple[dict[str, Any], list[str]]:
    """Load ``page`` with the probe; return the probe's record and the console lines (the
    report is one self-contained page, so its probed copy can live in ``tmp``)."""
    probed = tmp / f"probed_{page.stem}.html"
    probed.write_text(page.read_text().replace("<head>", "<head>" + PROBE, 1))
    run = chromium(["--virtual-time-budget=10000", "--dump-dom", probed.as_uri()], tmp / "profile")
    found = re.search(r'<pre id="probe">(.*?)</pre>', run.stdout, re.S)
    assert found, f"the page did not finish loading; chromium said:\n{run.stderr[-3000:]}"
    record = json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    console = [line for line in run.stderr.splitlines() if ":CONSOLE" in line]
    return record, console
