"""Dense and convolution layers whose every contraction — forward, input gradient, weight
gradient — has a contraction length K of at most ``bound``: float bits that do not depend on
the CPU's cache sizes.

Why: under the CPU pin (runtime.py) TensorFlow's MatMul and Conv kernels run Eigen's tensor
contraction, which cuts K into blocks whose size it derives from the L1 data cache that
``cpuid`` reports (``computeProductBlockingSizes``: 288 floats for a 32 KiB L1D, 432 for
48 KiB) and adds each block's partial sums into the result in turn. A K longer than the
smallest block is therefore summed in another order on another CPU: other bits. A K of at
most 256 is one block on every CPU with an L1D of 32 KiB or more, summed in one order.

How: the weight matrix is cut into blocks of at most ``bound`` rows (K) and, where the input
gradient is needed, ``bound`` columns (its K is the layer's output width); each block is one
MatMul and the K-blocks' products are added in a fixed order. The rows of a micro-batch are
cut too where the weight gradient's contraction (over rows, times the output's area for a
convolution) would exceed ``bound``; a convolution whose output is larger than ``bound``
pixels is computed tile by tile. TensorFlow's own gradients of these ops are then again
contractions of at most ``bound`` (``graph.contractions`` lists them and the training stage
checks every one). Nothing is cut where it need not be: a layer already within the bound is
the one MatMul or Conv2D it always was (the default pipeline's graph is unchanged).

The cuts are a function of the layer's shape and ``bound`` only, never of the machine.
"""

from __future__ import annotations

import itertools

from tfpersist.tfapi.tfcompat import import_tf

tf = import_tf()


def spans(n: int, bound: int) -> list[tuple[int, int]]:
    """``[0, n)`` cut into the fewest pieces of at most ``bound``, balanced, each a multiple of
    8 long where that keeps them within the bound (SIMD-friendly)."""
    parts = -(-n // bound)
    if parts <= 1:
        return [(0, n)]
    size = -(-n // parts)
    rounded = -(-size // 8) * 8
    if rounded <= bound:
        size = rounded
    edges = [*range(0, n, size), n]
    return list(itertools.pairwise(edges))


def ordered_sum(parts: list):
    """``parts`` added in their order, one by one."""
    total = parts[0]
    for part in parts[1:]:
        total = total + part
    return total


def _split(t, pieces: list[tuple[int, int]], axis: int) -> list:
    if len(pieces) == 1:
        return [t]
    return tf.split(t, [b - a for a, b in pieces], axis=axis)


def _rows(x, pieces: list[tuple[int, int]]) -> list:
    """Row blocks of a tensor whose row count is known only at run time (a block may be
    empty on a short batch; the last one takes whatever is left)."""
    if len(pieces) == 1:
        return [x]
    return [x[a:b] if i < len(pieces) - 1 else x[a:] for i, (a, b) in enumerate(pieces)]


def matmul(x, w, bound: int, rows: int | None = None, input_grad: bool = True):
    """``x · w`` with every contraction, its gradients' included, over at most ``bound``.

    ``rows``: the most rows ``x`` has when gradients are taken (None: forward only, e.g. an
    evaluation tower — then only K is cut). ``input_grad``: whether the gradient with respect
    to ``x`` is taken (not for a first layer fed by a placeholder)."""
    k, n = (int(d) for d in w.shape)
    k_pieces = spans(k, bound)
    n_pieces = spans(n, bound) if rows is not None and input_grad else [(0, n)]
    row_pieces = spans(rows, bound) if rows is not None else [(0, 0)]
    if len(k_pieces) == len(n_pieces) == len(row_pieces) == 1:
        return tf.matmul(x, w)
    blocks = [_split(w_k, n_pieces, 1) for w_k in _split(w, k_pieces, 0)]
    out = []
    for x_r in _rows(x, row_pieces):
        x_k = _split(x_r, k_pieces, 1)
        columns = [
            ordered_sum([tf.matmul(x_k[i], blocks[i][j]) for i in range(len(k_pieces))])
            for j in range(len(n_pieces))
        ]
        out.append(columns[0] if len(columns) == 1 else tf.concat(columns, 1))
    return out[0] if len(out) == 1 else tf.concat(out, 0)


def conv2d(x, w, bound: int, rows: int | None = None, input_grad: bool = True):
    """A 2-D convolution, stride 1, 'SAME' padding, NHWC, with every contraction over at most
    ``bound``: input channels cut so that kh·kw·cin ≤ bound (forward), output channels so
    that kh·kw·cout ≤ bound (input gradient), and rows × output pixels ≤ bound (weight
    gradient) — the output computed tile by tile when one image has more pixels than that.
    A kernel of more than ``bound`` taps cannot be cut this way: it is left whole (the
    training stage's check names it)."""
    kh, kw, cin, cout = (int(d) for d in w.shape)
    height, width = int(x.shape[1]), int(x.shape[2])
    taps = kh * kw
    per = max(1, bound // taps)
    cin_pieces = spans(cin, per)
    cout_pieces = spans(cout, per) if rows is not None and input_grad else [(0, cout)]
    if rows is None or height * width <= bound:
        tiles_h, tiles_w = [(0, height)], [(0, width)]
        row_pieces = spans(rows, max(1, bound // (height * width))) if rows else [(0, 0)]
    else:
        tile_w = min(width, bound)
        tiles_w = spans(width, tile_w)
        tiles_h = spans(height, max(1, bound // (tiles_w[0][1] - tiles_w[0][0])))
        row_pieces = spans(rows, 1)
    single = len(tiles_h) == len(tiles_w) == 1
    if single and len(cin_pieces) == len(cout_pieces) == len(row_pieces) == 1:
        return tf.nn.conv2d(x, w, strides=1, padding="SAME")
    blocks = [_split(w_c, cout_pieces, 3) for w_c in _split(w, cin_pieces, 2)]
    if not single:  # explicit 'SAME' padding, then each tile with its halo, 'VALID'
        top, left = (kh - 1) // 2, (kw - 1) // 2
        x = tf.pad(x, [[0, 0], [top, kh - 1 - top], [left, kw - 1 - left], [0, 0]])

    def conv(x_c, w_c, tile_h, tile_w):
        if single:
            return tf.nn.conv2d(x_c, w_c, strides=1, padding="SAME")
        (a, b), (c, d) = tile_h, tile_w
        return tf.nn.conv2d(x_c[:, a : b + kh - 1, c : d + kw - 1], w_c, 1, "VALID")

    out = []
    for x_r in _rows(x, row_pieces):
        x_c = _split(x_r, cin_pieces, 3)
        grid = []
        for tile_h in tiles_h:
            line = []
            for tile_w in tiles_w:
                channels = [
                    ordered_sum(
                        [conv(x_c[i], blocks[i][j], tile_h, tile_w) for i in range(len(x_c))]
                    )
                    for j in range(len(cout_pieces))
                ]
                line.append(channels[0] if len(channels) == 1 else tf.concat(channels, 3))
            grid.append(line[0] if len(line) == 1 else tf.concat(line, 2))
        out.append(grid[0] if len(grid) == 1 else tf.concat(grid, 1))
    return out[0] if len(out) == 1 else tf.concat(out, 0)
