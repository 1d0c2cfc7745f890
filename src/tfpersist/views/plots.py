"""An offline page for ``dvc plots show``: vega, vega-lite and vega-embed inlined.

DVC's own page loads the three libraries from a CDN, so it is blank without a network. DVC
takes a template (``--html-template``, or ``plots.html_template`` in its config) with a
``{plot_divs}`` placeholder and fills ``{scripts}`` with those CDN tags only if the template
asks for them; this one does not, and carries the libraries themselves, read from their npm
packages. ``make setup`` installs them, writes the page into the virtual environment and
points this clone's ``.dvc/config.local`` at it, so plain ``dvc plots show`` works offline.
No TensorFlow here.
"""

from __future__ import annotations

from pathlib import Path

from tfpersist.core import atomic
from tfpersist.core.errors import TfpersistError

# npm package → its browser build; versions pinned in the Makefile (the majors DVC's page uses)
LIBRARIES = {
    "vega": "build/vega.min.js",
    "vega-lite": "build/vega-lite.min.js",
    "vega-embed": "build/vega-embed.min.js",
}

PAGE = """<!DOCTYPE html>
<html>
<head>
<meta charset="utf-8">
{refresh_tag}
<title>DVC plots (offline)</title>
<style>table {{ border-spacing: 15px; }}</style>
{inline}
</head>
<body>
{{plot_divs}}
</body>
</html>
"""


def template(scripts: dict[str, str]) -> str:
    """The page with each library's code in its own <script> element."""
    inline = "\n".join(
        f"<script>/* {name} */\n{_escaped(code)}\n</script>" for name, code in scripts.items()
    )
    return PAGE.format(inline=inline, refresh_tag="{refresh_tag}")


def _escaped(code: str) -> str:
    """JavaScript that cannot end its <script> element early."""
    return code.replace("</script", "<\\/script")


def write_online_template(out: str | Path) -> Path:
    """The page without the libraries, asking DVC for its CDN tags (``{scripts}``): what
    ``make setup`` writes where npm is missing, so ``dvc plots show`` still has a template."""
    atomic.write_text(out, PAGE.format(inline="{scripts}", refresh_tag="{refresh_tag}"))
    return Path(out)


def write_template(node_modules: str | Path, out: str | Path) -> Path:
    """Read the libraries from ``node_modules`` and write the page to ``out``."""
    scripts = {}
    for package, build in LIBRARIES.items():
        path = Path(node_modules) / package / build
        if not path.is_file():
            raise TfpersistError(
                f"{path}: not found; install the npm packages first (make plots does)"
            )
        scripts[package] = path.read_text(encoding="utf-8")
    atomic.write_text(out, template(scripts))
    return Path(out)
