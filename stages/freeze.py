"""freeze: the release checkpoint → a frozen GraphDef (.pb) and its JSON card.

The card's signature also lists the feature columns (from the release's signature.json), so
that `tfpersist predict models/frozen/model.pb --input rows.csv` picks the right columns.

usage: python stages/freeze.py CHECKPOINT_DIR OUT_PB OUT_CARD
"""

from tfpersist.pipeline.params import ModelParams

from _stage import load_params, run


def main(argv: list[str]) -> None:
    source, out, card_path = argv
    model = ModelParams.from_params(load_params())

    from tfpersist.freezing import freeze  # TensorFlow only where the checkpoint needs it

    card, _ = freeze.freeze_to_file(source, out, model.output_nodes, card_path=card_path)
    print(
        f"freeze: {out}: {card['nodes']} nodes, {card['parameters']} parameters, "
        f"sha256 {card['sha256'][:12]}"
    )


if __name__ == "__main__":
    run(main)
