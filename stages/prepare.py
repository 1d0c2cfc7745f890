"""prepare: raw CSV → validated, stratified train/val/test record files (and test.csv),
schema.json; streamed, in bounded memory.

usage: python stages/prepare.py RAW_CSV OUT_DIR
"""

from tfpersist.pipeline import prepare
from tfpersist.pipeline.params import PrepareParams

from _stage import load_params, run


def main(argv: list[str]) -> None:
    raw, out = argv
    schema, sizes = prepare.prepare(raw, out, PrepareParams.from_params(load_params()))
    print(
        f"prepare: {sum(sizes.values())} rows, "
        f"{len(schema.features)} features, {schema.num_classes} classes → "
        + ", ".join(f"{name} {n}" for name, n in sizes.items())
    )


if __name__ == "__main__":
    run(main)
