"""prepare: raw CSV → validated, stratified train/val/test splits and schema.json.

usage: python stages/prepare.py RAW_CSV OUT_DIR
"""

from pathlib import Path

from tfpersist import atomic, data, layout
from tfpersist.params import PrepareParams

from _stage import load_params, run


def main(argv: list[str]) -> None:
    raw, out = argv
    params = PrepareParams.from_params(load_params())
    table = data.read_csv(raw)
    schema = data.validate(table, params.label, raw)
    splits = data.stratified_split(
        table, params.label, params.val_fraction, params.test_fraction, params.seed
    )
    with atomic.replace_dir(out) as tmp:
        for name, split in splits.items():
            atomic.write_text(Path(tmp) / layout.split_file(name), data.to_csv_text(split))
        atomic.write_json(Path(tmp) / layout.SCHEMA, schema.to_json())
    sizes = ", ".join(f"{name} {len(split)}" for name, split in splits.items())
    print(
        f"prepare: {len(table)} rows, {len(schema.features)} features, "
        f"{schema.num_classes} classes → {sizes}"
    )


if __name__ == "__main__":
    run(main)
