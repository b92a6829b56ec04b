"""The headless Chromium of the browser tests: where it is and how it starts."""

#: Debian's ``chromium`` package (``.ci/run`` installs it).
CHROMIUM = "/usr/bin/chromium"
#: Offline, no sandbox (containers), no GPU.
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
