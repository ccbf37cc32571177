"""The HTML report: one self-contained page per drill journal, with an inline SVG chart
per watched signal. Unit tests read the HTML; browser tests render it in Debian's
Chromium (headless), check the charts laid out, take a screenshot, and prove the page
makes no network request at all: the page's own network log (DevTools protocol) stays
empty, so the browser's background traffic, which any Chromium may start by itself, is
never mistaken for the page's."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import threading
import time
import zlib
from html import escape
from pathlib import Path

import pytest

from helpers import summary_from
from pagerdrill.journal import read_journal
from pagerdrill.reports.html import MAX_POINTS, downsample, render_html
from pagerdrill.reports.timeline import Series, Timeline, load

JOURNALS = Path(__file__).resolve().parents[1] / "fixtures" / "journals"
FIXTURES = sorted(JOURNALS.glob("*.jsonl"))
CHROMIUM_TIMEOUT_S = 60

SVG = re.compile(r"<svg\b[^>]*>.*?</svg>", re.S)
URL_ATTR = re.compile(
    r"""\b(?:src|href|xlink:href|srcset|action|poster)\s*=\s*["']?\s*([^"'\s>]*)""", re.I
)
CSS_URL = re.compile(r"""url\(\s*["']?\s*([^"')\s]*)""", re.I)
REMOTE = re.compile(r"^(?:[a-z][a-z0-9+.-]*:)?//", re.I)


def fixture_ids() -> list[str]:
    return [p.stem for p in FIXTURES]


def charts(page: str) -> list[str]:
    return SVG.findall(page)


def with_note(journal: Path, dest: Path, text: str) -> Path:
    """A copy of `journal` with a note event appended."""
    lines = journal.read_text().splitlines()
    last = json.loads(lines[-1])
    note = {
        "v": 1,
        "seq": int(last["seq"]) + 1,
        "ts": last["ts"],
        "t": float(last["t"]) + 0.5,
        "type": "note",
        "drill": last["drill"],
        "text": text,
        "drill_s": 99.0,
    }
    dest.write_text("\n".join([*lines, json.dumps(note)]) + "\n")
    return dest


SCENARIOS = (
    "api-500-injection",
    "bullmq-backpressure",
    "redis-cache-flush",
    "signin-failure-spike",
    "ws-handshake-storm",
)


@pytest.mark.parametrize("name", SCENARIOS)
def test_each_of_the_five_scenarios_has_a_complete_fixture_journal_of_its_own(name):
    path = JOURNALS / f"{name}.jsonl"
    assert path in FIXTURES, f"no journal of {name} in {JOURNALS}"
    read = read_journal(path)
    assert read.complete and not read.problems, (path, read.problems)
    assert read.started is not None and read.started["scenario"]["name"] == name
    assert read.events[-1]["type"] == "drill.closed"


# ------------------------------------------------------------------ unit: the HTML


@pytest.mark.parametrize("journal", FIXTURES, ids=fixture_ids())
def test_one_chart_per_series_with_threshold_and_markers(journal: Path):
    timeline = load(journal)
    page = render_html(timeline)
    assert timeline.series and timeline.markers  # real drills: signals and events
    svgs = charts(page)
    assert len(svgs) == len(timeline.series) == page.count("<svg")
    for series, svg in zip(timeline.series, svgs, strict=True):
        assert f'data-series="{series.label}"' in svg
        if series.threshold is None:
            assert 'class="threshold"' not in svg
        else:
            assert svg.count('class="threshold"') == 1
            assert f"{escape(series.op)} " in svg.split('class="threshold"')[1]
        assert svg.count('class="marker ') == len(timeline.markers)
        for m in timeline.markers:
            assert f'<g class="marker {m.who} ' in svg
        assert 'class="line plot"' in svg
    assert page.count('class="marker system ') == len(svgs) * sum(
        m.who == "system" for m in timeline.markers
    )
    assert page.count('class="marker engineer ') == len(svgs) * sum(
        m.who == "engineer" for m in timeline.markers
    )
    # the header and the tables
    summary = timeline.summary
    assert f"<h1>{summary.title}" in page
    for step in summary.steps:
        assert step.title in page
    assert page.count('<tr class="') == len(timeline.entries)
    assert "T+00:00" in page


@pytest.mark.parametrize("journal", FIXTURES, ids=fixture_ids())
def test_nothing_is_fetched_from_anywhere(journal: Path):
    page = render_html(load(journal))
    urls = URL_ATTR.findall(page) + CSS_URL.findall(page)
    assert not [u for u in urls if REMOTE.match(u)], urls
    assert "http://" not in page and "https://" not in page
    for tag in ("<link", "<iframe", "<img", "<object", "<embed", "@import", "@font-face"):
        assert tag not in page.lower()
    assert (
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">"
    ) in page
    assert page.count("<script") == 1 and "<script src" not in page


def test_the_url_checks_can_fail():
    bad = (
        '<img src="http://example.invalid/x.png"><a href=//cdn.example/x>'
        "<style>body{background:url( 'https://example.invalid/bg.png')}</style>"
    )
    urls = URL_ATTR.findall(bad) + CSS_URL.findall(bad)
    assert len([u for u in urls if REMOTE.match(u)]) == 3


def test_a_script_smuggled_into_a_note_is_escaped(tmp_path: Path):
    smuggled = '</td></tr><script>alert("owned")</script><img src=x onerror=alert(1)>'
    journal = with_note(FIXTURES[0], tmp_path / "smuggled.jsonl", smuggled)
    timeline = load(journal)
    assert timeline.entries[-1].text == f"note: {smuggled}"
    page = render_html(timeline)
    assert "<script>alert" not in page
    assert "<img" not in page
    assert page.count("<script") == 1  # ours, at the end
    assert "&lt;script&gt;alert(&quot;owned&quot;)&lt;/script&gt;" in page
    assert "&lt;/td&gt;&lt;/tr&gt;" in page


def test_a_journal_cut_short_still_renders_and_says_so(tmp_path: Path):
    raw = FIXTURES[0].read_bytes()
    cut = tmp_path / "cut.jsonl"
    cut.write_bytes(raw[: len(raw) * 2 // 3 + 7])
    timeline = load(cut)
    assert not timeline.complete
    page = render_html(timeline)
    assert 'class="problems"' in page and "cut short" in page
    assert len(charts(page)) == len(timeline.series)


def test_no_page_no_samples_no_events(tmp_path: Path):
    timeline = Timeline(
        drill="d",
        journal=tmp_path / "d.jsonl",
        summary=summary_from({"title": None, "steps": [], "hypothesis": {}}),
        entries=[],
        series=[
            Series("queue", "waiting", [], threshold=5.0, op="<", alert="low<&>"),
            Series("api", "up", [(3.0, 1.0)]),
        ],
        markers=[],
        review=None,
        reviews=[],
        complete=False,
        problems=[],
    )
    page = render_html(timeline)
    svgs = charts(page)
    assert len(svgs) == 2
    assert "no samples recorded" in svgs[0] and 'class="threshold"' in svgs[0]
    assert "low&lt;&amp;&gt;" in svgs[0]
    assert 'class="dot plot"' in svgs[1]
    assert "since the drill started (no page)" in page
    assert "not reviewed" in page


def test_downsampling_keeps_the_shape():
    points = [(i * 0.1, float(i % 97)) for i in range(10_000)]
    points[5_000] = (500.0, 1e6)  # a spike
    points[7_000] = (700.0, -1e6)  # a dip
    small = downsample(points)
    assert len(small) <= MAX_POINTS
    assert small[0] == points[0] and small[-1] == points[-1]
    assert (500.0, 1e6) in small and (700.0, -1e6) in small
    assert [p[0] for p in small] == sorted(p[0] for p in small)
    assert downsample(points[:10]) == points[:10]


def big_journal(source: Path, dest: Path, events: int = 10_000) -> Path:
    """`source` stretched to about `events` events: each probe sample repeated in place,
    as if the probes had sampled that much more often, written the way the journal
    writes (compact JSON, one event a line)."""
    parsed = [json.loads(line) for line in source.read_text().splitlines()]
    samples = sum(e["type"] == "probe.sample" for e in parsed)
    repeat = max(1, (events - (len(parsed) - samples)) // max(1, samples))
    out = []
    for e in parsed:
        if e["type"] != "probe.sample":
            out.append(e)
            continue
        out += [dict(e, t=round(e["t"] + k / repeat, 4)) for k in range(repeat)]
    for seq, e in enumerate(out):
        e["seq"] = seq
    dest.write_text("".join(json.dumps(e, separators=(",", ":")) + "\n" for e in out))
    return dest


def test_a_10k_event_journal_renders_small(tmp_path: Path):
    """The page stays small and its plots thinned however many samples the journal
    has. (How fast: bench/reports_bench.py; speed is never asserted in tests.)"""
    journal = big_journal(FIXTURES[0], tmp_path / "big.jsonl")
    timeline = load(journal)
    assert len(timeline.entries) < 100 and sum(len(s.points) for s in timeline.series) > 9_000
    page = render_html(timeline)
    assert len(page) < 200_000
    for svg in charts(page):
        path = re.search(r'class="line plot" d="M([^"]*)"', svg)
        assert path is not None and len(path.group(1).split()) <= MAX_POINTS
    # the export as `drills export --format html` does it: ~600 samples read
    exported = render_html(load(journal, samples=MAX_POINTS))
    assert len(exported) < 200_000 and charts(exported)


# ------------------------------------------------------------------ browser


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        pytest.skip("chromium not installed: apt-get install chromium")
    return found


_runs = iter(range(1_000_000))


# Chromium's own services talk to Google at start-up even with
# --disable-background-networking: the account reconcilor (accounts.google.com), the
# component updater (update.googleapis.com) and network time (clients2.google.com).
# None of that is the page's doing; point the first two at names of our own that never
# resolve and skip the proxy, and turn the last off, so the counting proxy sees only
# what the page asks for.
BROWSER_OWN_HOSTS = ("gaia.chromium-own.invalid", "updates.chromium-own.invalid")
QUIET = (
    "--disable-features=NetworkTimeServiceQuerying",
    f"--gaia-url=http://{BROWSER_OWN_HOSTS[0]}/",
    f"--component-updater=url-source=http://{BROWSER_OWN_HOSTS[1]}/",
    "--host-resolver-rules=" + ", ".join(f"MAP {h} ~NOTFOUND" for h in BROWSER_OWN_HOSTS),
)


# headless, with a fresh profile and none of the browser's own extras
BROWSER_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-sync",
    "--no-first-run",
    "--no-default-browser-check",
)


def run_chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """Headless Chromium with a fresh profile, bounded in time; every process it
    started is gone when this returns."""
    profile = tmp_path / f"profile-{next(_runs)}"
    command = [
        chromium(),
        *BROWSER_FLAGS,
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        *QUIET,
        *args,
    ]
    proc = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: ours to clean up
    )
    try:
        out, err = proc.communicate(timeout=CHROMIUM_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        out, err = proc.communicate()
        pytest.fail(f"chromium did not finish in {CHROMIUM_TIMEOUT_S} s: {err[-2000:]}")
    finally:
        _kill_group(proc)
    return subprocess.CompletedProcess(command, proc.returncode, out, err)


def _kill_group(proc: subprocess.Popen) -> None:
    """Kill what is left of the process group our Popen leads (helpers it forked)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def write_report(journal: Path, dest: Path) -> tuple[Path, Timeline]:
    timeline = load(journal)
    dest.write_text(render_html(timeline), encoding="utf-8")
    return dest, timeline


def body_attrs(dom: str) -> dict[str, str]:
    body = re.search(r"<body\b([^>]*)>", dom)
    assert body, dom[:2000]
    return dict(re.findall(r'([\w-]+)="([^"]*)"', body.group(1)))


def png_info(path: Path) -> tuple[int, int, bytes]:
    """(width, height, the decompressed image data) of a PNG; fails on a broken one."""
    raw = path.read_bytes()
    assert raw[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    at = 8
    width = height = 0
    idat = []
    while at < len(raw):
        (length,) = struct.unpack(">I", raw[at : at + 4])
        kind = raw[at + 4 : at + 8]
        data = raw[at + 8 : at + 8 + length]
        (crc,) = struct.unpack(">I", raw[at + 8 + length : at + 12 + length])
        assert zlib.crc32(kind + data) == crc, f"bad CRC in {kind!r}"
        if kind == b"IHDR":
            width, height = struct.unpack(">II", data[:8])
        elif kind == b"IDAT":
            idat.append(data)
        elif kind == b"IEND":
            break
        at += 12 + length
    return width, height, zlib.decompress(b"".join(idat))


@pytest.mark.parametrize("journal", FIXTURES, ids=fixture_ids())
def test_a_screenshot_at_1280_px(journal: Path, tmp_path: Path):
    report, timeline = write_report(journal, tmp_path / "report.html")
    shot = tmp_path / "report.png"
    result = run_chromium(
        tmp_path,
        f"--screenshot={shot}",
        "--window-size=1280,2000",
        "--virtual-time-budget=3000",
        report.as_uri(),
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert shot.is_file(), result.stderr[-2000:]
    width, height, pixels = png_info(shot)
    assert (width, height) == (1280, 2000)
    assert len(pixels) > width * height  # at least a byte a pixel, plus filter bytes
    # a blank page compresses to a few KB and has a handful of distinct byte values
    assert shot.stat().st_size > 30_000
    assert len(set(pixels[::101])) > 40
    try:
        from PIL import Image  # only when installed; not a dependency
    except ImportError:
        pass
    else:
        with Image.open(shot) as image:
            colours = image.convert("RGB").getcolors(maxcolors=1 << 20) or []
            assert len(colours) > 50
    scenario = timeline.summary.scenario or journal.stem
    print(f"screenshot of {scenario}: {shot}")
    artifacts = os.environ.get("PAGERDRILL_ARTIFACTS")
    if artifacts:
        Path(artifacts).mkdir(parents=True, exist_ok=True)
        copy = Path(artifacts) / f"report-{scenario}.png"
        shutil.copyfile(shot, copy)
        print(f"copied to {copy}")


# ------------------------------------------------------------------ no network


class CountingProxy:
    """A TCP listener on 127.0.0.1 that counts the connections made to it and keeps
    the first line each one sent (CONNECT host:443, GET http://...)."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(32)
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.requests: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> CountingProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()

    @property
    def connections(self) -> int:
        with self._lock:
            return len(self.requests)

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(1.0)
                try:
                    first = conn.recv(4096).split(b"\r\n", 1)[0].decode("latin-1")
                except OSError:
                    first = "(nothing sent)"
                with self._lock:
                    self.requests.append(first)
                with contextlib.suppress(OSError):  # answer, so the browser does not retry
                    conn.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")


def page_requests(
    tmp_path: Path, page: Path, quiet: bool = True
) -> tuple[list[str], str, list[str]]:
    """Open `page` in headless Chromium and return (the requests the page itself made,
    the DOM after its script ran, what reached the proxy). `quiet=False` leaves the
    browser's own background services on.

    The page's requests are read from the page target's own network log over the
    DevTools protocol: every fetch the document or its scripts start (an image, a
    stylesheet, a font, fetch/XHR, an iframe, kept in-process) appears there, and the
    browser's background services (Google's account, update, time and variations
    hosts, which Debian's Chromium contacts at start-up whatever the flags) never do.
    Counting connections at a proxy alone cannot tell the two apart. Everything still
    goes through a dead-end proxy on loopback, so nothing leaves the machine."""
    with CountingProxy() as proxy:
        err = tmp_path / f"chromium-{next(_runs)}.err"
        profile = tmp_path / f"profile-{next(_runs)}"
        command = [
            chromium(),
            *BROWSER_FLAGS,
            # cross-site iframes stay in the page's process, so their loads show in its log
            "--disable-features=IsolateOrigins,site-per-process",
            f"--user-data-dir={profile}",
            f"--proxy-server=http://127.0.0.1:{proxy.port}",
            "--proxy-bypass-list=<-loopback>",
            "--remote-debugging-port=0",
            *(QUIET if quiet else ()),
            "about:blank",
        ]
        with err.open("w") as stderr:
            proc = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                start_new_session=True,  # its own process group: ours to clean up
            )
        try:
            endpoint = _devtools_endpoint(proc, err)
            made, dom = asyncio.run(_load_and_watch(endpoint, page.as_uri()))
        finally:
            _kill_group(proc)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
        time.sleep(0.3)  # a connection still being accepted
        return made, dom, list(proxy.requests)


def _devtools_endpoint(proc: subprocess.Popen, err: Path) -> str:
    """The browser's DevTools HTTP endpoint, from the line it prints at start."""
    deadline = time.monotonic() + CHROMIUM_TIMEOUT_S
    while time.monotonic() < deadline:
        found = re.search(r"DevTools listening on ws://([\d.]+:\d+)/", err.read_text())
        if found:
            return f"http://{found.group(1)}"
        if proc.poll() is not None:
            pytest.fail(f"chromium exited with {proc.returncode}: {err.read_text()[-2000:]}")
        time.sleep(0.05)
    pytest.fail(f"chromium gave no DevTools endpoint in {CHROMIUM_TIMEOUT_S} s")


async def _load_and_watch(endpoint: str, url: str) -> tuple[list[str], str]:
    import aiohttp  # a dependency of the reference stack

    made: list[str] = []
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{endpoint}/json/list") as response:
            targets = await response.json()
        target = next(t for t in targets if t["type"] == "page")
        async with http.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0) as ws:
            ids = iter(range(1, 1_000_000))
            answers: dict[int, dict] = {}
            loaded = asyncio.Event()

            async def receive() -> None:
                async for message in ws:
                    event = json.loads(message.data)
                    if "id" in event:
                        answers[event["id"]] = event
                    elif event.get("method") == "Network.requestWillBeSent":
                        request_url = event["params"]["request"]["url"]
                        # the document itself, and data: URLs, which fetch nothing
                        if request_url != url and not request_url.startswith("data:"):
                            made.append(request_url)
                    elif event.get("method") == "Page.loadEventFired":
                        loaded.set()

            async def call(method: str, **params: object) -> dict:
                n = next(ids)
                await ws.send_json({"id": n, "method": method, "params": params})
                while n not in answers:
                    await asyncio.sleep(0.01)
                return answers.pop(n)

            receiver = asyncio.create_task(receive())
            try:
                await asyncio.wait_for(call("Network.enable"), CHROMIUM_TIMEOUT_S)
                await call("Page.enable")
                await call("Page.navigate", url=url)
                await asyncio.wait_for(loaded.wait(), CHROMIUM_TIMEOUT_S)
                # what the page's script starts after load has time to show
                await asyncio.sleep(1.5)
                dom = await call(
                    "Runtime.evaluate",
                    expression="document.documentElement.outerHTML",
                    returnByValue=True,
                )
            finally:
                receiver.cancel()
    return made, dom["result"]["result"]["value"]


@pytest.mark.parametrize("journal", FIXTURES, ids=fixture_ids())
def test_the_charts_render_in_chromium_with_no_network_request(journal: Path, tmp_path: Path):
    report, timeline = write_report(journal, tmp_path / "report.html")
    requests, dom, _ = page_requests(tmp_path, report)
    assert requests == []
    attrs = body_attrs(dom)
    plotted = sum(1 for s in timeline.series if s.points)
    assert attrs.get("data-chart") == "rendered", attrs
    assert attrs.get("data-series") == str(plotted), attrs
    assert attrs.get("data-charts") == str(len(timeline.series))
    assert dom.count("<svg") == len(timeline.series)


def test_without_its_csp_the_report_still_makes_no_network_request(tmp_path: Path):
    """Not only because the Content-Security-Policy blocks it: the page asks for nothing."""
    journal = next((p for p in FIXTURES if "bullmq" in p.name), FIXTURES[0])
    report, _ = write_report(journal, tmp_path / "report.html")
    bare = tmp_path / "report-without-csp.html"
    bare.write_text(
        re.sub(r"<meta http-equiv=\"Content-Security-Policy\"[^>]*>", "", report.read_text())
    )
    assert "Content-Security-Policy" not in bare.read_text()
    requests, dom, _ = page_requests(tmp_path, bare)
    assert requests == []
    assert body_attrs(dom).get("data-chart") == "rendered"


def test_the_network_check_can_fail(tmp_path: Path):
    page = tmp_path / "fetches.html"
    page.write_text(
        "<!doctype html><html><head>"
        '<style>@font-face{font-family:x;src:url("http://font.invalid/x.woff")}'
        "body{font-family:x}</style></head><body>text"
        '<img src="http://img.invalid/x.png"><iframe src="https://frame.invalid/"></iframe>'
        '<script>fetch("http://fetch.invalid/f").catch(() => {});'
        'setTimeout(() => { new Image().src = "http://late.invalid/x.png"; }, 300);</script>'
        "</body></html>"
    )
    requests, _, _ = page_requests(tmp_path, page)
    hosts = {re.sub(r"^\w+://([^/]+).*", r"\1", r) for r in requests}
    assert {"font.invalid", "img.invalid", "frame.invalid", "fetch.invalid", "late.invalid"} <= (
        hosts
    ), requests


def test_the_browsers_own_traffic_is_not_counted_as_the_pages(tmp_path: Path):
    """A blank page makes no request, whatever the browser itself contacts at start
    with its background services left on (Debian's Chromium calls Google's time,
    update and account hosts)."""
    page = tmp_path / "blank.html"
    page.write_text("<!doctype html><html><body>nothing to fetch</body></html>")
    requests, dom, at_proxy = page_requests(tmp_path, page, quiet=False)
    assert requests == [] and "nothing to fetch" in dom
    if not at_proxy:
        pytest.skip("this Chromium contacted nothing by itself; nothing to tell apart")
