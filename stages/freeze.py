"""freeze: the release checkpoint → a frozen GraphDef (.pb) and its JSON card.

usage: python stages/freeze.py CHECKPOINT_DIR OUT_PB OUT_CARD
"""

from tfpersist.params import ModelParams

from _stage import load_params, run


def main(argv: list[str]) -> None:
    source, out, card_path = argv
    model = ModelParams.from_params(load_params())

    from tfpersist import freeze  # TensorFlow from here on

    graph_def = freeze.freeze_checkpoint(source, model.output_nodes)
    card = freeze.write(graph_def, out, model.output_nodes, card_path)
    print(
        f"freeze: {out}: {card['nodes']} nodes, {card['parameters']} parameters, "
        f"sha256 {card['sha256'][:12]}"
    )


if __name__ == "__main__":
    run(main)
