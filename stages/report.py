"""report: the frozen model → a self-contained HTML page of it (graph, tables, signature).

usage: python stages/report.py FROZEN_PB OUT_HTML
The page is the same bytes for the same model (a DVC output like any other); open it from
disk, attach it to an issue or a CI run.
"""

from _stage import run


def main(argv: list[str]) -> None:
    frozen_pb, out = argv

    from tfpersist.views import pages  # TensorFlow from here on

    view = pages.write_model_page(frozen_pb, out)
    t = view["totals"]
    print(
        f"report: {out}: {t['nodes']} nodes drawn, {t['parameters']} parameters, "
        f"~{pages.human(t['flops'])} FLOPs per row"
    )


if __name__ == "__main__":
    run(main)
