"""prepare: raw CSV → validated, stratified train/val/test splits and schema.json.

usage: python stages/prepare.py RAW_CSV OUT_DIR
"""

from tfpersist.pipeline import prepare
from tfpersist.pipeline.params import PrepareParams

from _stage import load_params, run


def main(argv: list[str]) -> None:
    raw, out = argv
    schema, splits = prepare.prepare(raw, out, PrepareParams.from_params(load_params()))
    sizes = ", ".join(f"{name} {len(split)}" for name, split in splits.items())
    print(
        f"prepare: {sum(len(split) for split in splits.values())} rows, "
        f"{len(schema.features)} features, {schema.num_classes} classes → {sizes}"
    )


if __name__ == "__main__":
    run(main)
