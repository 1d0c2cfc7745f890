"""`make plots`: DVC's plots page with the vega libraries inlined, so it renders offline."""

from __future__ import annotations

import sys

from tfpersist.views import plots

from conftest import run


def test_dvc_renders_plots_into_the_offline_template(tmp_path):
    modules = tmp_path / "node_modules"
    for package, build in plots.LIBRARIES.items():
        (modules / package / build).parent.mkdir(parents=True)
        (modules / package / build).write_text(f"window['{package}'] = '</script>';")
    template = plots.write_template(modules, tmp_path / "template.html")

    repo = tmp_path / "repo"
    repo.mkdir()
    run(["git", "init", "-q"], repo)
    dvc = f"{sys.prefix}/bin/dvc"
    run([dvc, "init", "-q"], repo)
    (repo / "curve.csv").write_text("step,loss\n0,1.0\n1,0.5\n")
    run([dvc, "plots", "show", "curve.csv", "--html-template", str(template)], repo)
    page = (repo / "dvc_plots" / "index.html").read_text()
    assert "cdn.jsdelivr" not in page and "<script src" not in page
    for package in plots.LIBRARIES:
        assert f"window['{package}'] = '<\\/script>';" in page
    assert "vegaEmbed" in page and "curve.csv" in page  # DVC's plot div, filled in
