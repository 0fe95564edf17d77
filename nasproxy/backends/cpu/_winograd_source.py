"""The C++ source of the Winograd F(4x4, 3x3) tile transforms, generated from the transform matrices (see
``_winograd``): straight-line code per 6x6 tile, one loop over channels."""

from __future__ import annotations

from fractions import Fraction

# F(4x4, 3x3) with interpolation points 0, 1, -1, 2, -2 and infinity
_BT = [
    [4, 0, -5, 0, 1, 0],
    [0, -4, -4, 1, 1, 0],
    [0, 4, -4, -1, 1, 0],
    [0, -2, -1, 2, 1, 0],
    [0, 2, -1, -2, 1, 0],
    [0, 4, 0, -5, 0, 1],
]
G = [
    [Fraction(1, 4), 0, 0],
    [Fraction(-1, 6), Fraction(-1, 6), Fraction(-1, 6)],
    [Fraction(-1, 6), Fraction(1, 6), Fraction(-1, 6)],
    [Fraction(1, 24), Fraction(1, 12), Fraction(1, 6)],
    [Fraction(1, 24), Fraction(-1, 12), Fraction(1, 6)],
    [0, 0, 1],
]
_AT = [
    [1, 1, 1, 1, 1, 0],
    [0, 1, -1, 2, -2, 0],
    [0, 1, 1, 4, 4, 0],
    [0, 1, -1, 8, -8, 1],
]
TILE = 4  # output tile side: maps must be multiples of it
MIN_CHANNELS = 16  # narrower inputs (a first layer on grey or RGB images) stay direct: too little to gain


def _transpose(m: list[list]) -> list[list]:
    return [list(col) for col in zip(*m)]


def _combination(coefficients: list, names: list[str]) -> str:
    terms = []
    for coefficient, name in zip(coefficients, names):
        if coefficient == 0:
            continue
        sign = "-" if coefficient < 0 else "+"
        magnitude = abs(coefficient)
        terms.append(f" {sign} {name}" if magnitude == 1 else f" {sign} {float(magnitude)!r}f * {name}")
    text = "".join(terms).strip()
    return text[2:] if text.startswith("+ ") else text


def _tile_transform(matrix: list[list], source: str, target: str) -> list[str]:
    """Straight-line C++ for ``target = matrix @ source @ matrix^T`` on scalars named ``{source}{j}_{k}``."""
    size_in = len(matrix[0])
    lines = []
    for p, row in enumerate(matrix):
        for k in range(size_in):
            names = [f"{source}{j}_{k}" for j in range(size_in)]
            lines.append(f"const float t{p}_{k} = {_combination(row, names)};")
    for p in range(len(matrix)):
        for q, row in enumerate(matrix):
            names = [f"t{p}_{k}" for k in range(size_in)]
            lines.append(f"const float {target}{p}_{q} = {_combination(row, names)};")
    return lines


def _kernel(
    name: str,
    matrix: list[list],
    *,
    arguments: str,
    setup: str,
    tasks: str,
    buffer: str,
    gather: str,
    tiles: str,
    load: str,
    store: str,
    scatter: str,
) -> str:
    """One transform. Each task (an image, or a row of tiles) gathers its part of the NCHW tensor into a
    channels-last buffer of its own, transforms every tile there with a channel loop the compiler
    vectorises (the transform's straight-line code with every value a scalar), and scatters the results.
    Transposing through a buffer that stays in cache saves the two passes over memory that converting whole
    tensors between NCHW and channels-last would cost."""
    size_in, size_out = len(matrix[0]), len(matrix)
    loads = [load.format(j=j, k=k, jk=j * size_in + k) for j in range(size_in) for k in range(size_in)]
    stores = [store.format(p=p, q=q, pq=p * size_out + q) for p in range(size_out) for q in range(size_out)]
    body = "\n          ".join(loads + _tile_transform(matrix, "s", "r") + stores)
    return f"""
torch::Tensor {name}({arguments}) {{{setup}
  at::parallel_for(0, {tasks}, 1, [=](int64_t first, int64_t last) {{
    std::vector<float> buffer({buffer});
    float* __restrict__ buf = buffer.data();
    for (int64_t item = first; item < last; ++item) {{{gather}
      {tiles} {{
        #pragma omp simd
        for (int64_t c = 0; c < C; ++c) {{
          {body}
        }}
      }}{scatter}
    }}
  }});
  return result;
}}
"""


def source() -> str:
    """The C++ of the four transforms. Spatial tensors are NCHW, transformed ones ``[36, N*T, C]`` (T tiles
    an image): each of the 36 positions is one matrix for ``torch.bmm``."""
    header = """
#include <torch/extension.h>
#include <ATen/Parallel.h>
#include <algorithm>
#include <vector>
"""
    spatial = """
  const int64_t N = input.size(0), C = input.size(1), H = input.size(2), W = input.size(3);
  const int64_t th = H / 4, tw = W / 4, T = th * tw, NTC = N * T * C;
  const float* x = input.data_ptr<float>();"""
    transformed = """
  const int64_t C = input.size(2), th = H / 4, tw = W / 4, T = th * tw, NTC = N * T * C;
  const float* x = input.data_ptr<float>();"""
    row_of_tiles = """
      const int64_t n = item / th, ti = item % th;"""
    # input tiles start one row and column before their output tile (padding 1): the buffer holds the 6
    # input rows of one row of tiles, a zero column on either side, zero rows outside the image
    input_kernel = _kernel(
        "input_transform",
        _BT,
        arguments="torch::Tensor input",
        setup=spatial
        + """
  auto result = torch::empty({36, N * T, C}, input.options());
  float* out = result.data_ptr<float>();""",
        tasks="N * th",
        buffer="6 * (W + 2) * C",
        gather=row_of_tiles
        + """
      std::fill(buffer.begin(), buffer.end(), 0.0f);
      for (int64_t c = 0; c < C; ++c) for (int64_t j = 0; j < 6; ++j) {
        const int64_t h = 4 * ti - 1 + j;
        if (h < 0 || h >= H) continue;
        const float* __restrict__ from = x + ((n * C + c) * H + h) * W;
        float* __restrict__ to = buf + (j * (W + 2) + 1) * C + c;
        for (int64_t w = 0; w < W; ++w) to[w * C] = from[w];
      }""",
        tiles="for (int64_t tj = 0; tj < tw; ++tj)",
        load="const float s{j}_{k} = buf[4 * tj * C + ({j} * (W + 2) + {k}) * C + c];",
        store="out[{pq} * NTC + (n * T + ti * tw + tj) * C + c] = r{p}_{q};",
        scatter="",
    )
    # the adjoint adds 6x6 tiles that overlap by two rows and columns: one image per task, summed in a
    # padded channels-last buffer (no bounds tests), whose inside is then written out as NCHW
    input_adjoint = _kernel(
        "input_adjoint",
        _transpose(_BT),
        arguments="torch::Tensor input, int64_t N, int64_t H, int64_t W",
        setup=transformed
        + """
  auto result = torch::empty({N, C, H, W}, input.options());
  float* out = result.data_ptr<float>();""",
        tasks="N",
        buffer="(H + 2) * (W + 2) * C",
        gather="""
      const int64_t n = item;
      std::fill(buffer.begin(), buffer.end(), 0.0f);""",
        tiles="for (int64_t ti = 0; ti < th; ++ti) for (int64_t tj = 0; tj < tw; ++tj)",
        load="const float s{j}_{k} = x[{jk} * NTC + (n * T + ti * tw + tj) * C + c];",
        store="buf[((4 * ti + {p}) * (W + 2) + 4 * tj + {q}) * C + c] += r{p}_{q};",
        scatter="""
      for (int64_t c = 0; c < C; ++c) for (int64_t h = 0; h < H; ++h) {
        const float* __restrict__ from = buf + ((h + 1) * (W + 2) + 1) * C + c;
        float* __restrict__ to = out + ((n * C + c) * H + h) * W;
        for (int64_t w = 0; w < W; ++w) to[w] = from[w * C];
      }""",
    )
    output_kernel = _kernel(
        "output_transform",
        _AT,
        arguments="torch::Tensor input, int64_t N, int64_t H, int64_t W",
        setup=transformed
        + """
  auto result = torch::empty({N, C, H, W}, input.options());
  float* out = result.data_ptr<float>();""",
        tasks="N * th",
        buffer="4 * W * C",
        gather=row_of_tiles,
        tiles="for (int64_t tj = 0; tj < tw; ++tj)",
        load="const float s{j}_{k} = x[{jk} * NTC + (n * T + ti * tw + tj) * C + c];",
        store="buf[({p} * W + 4 * tj + {q}) * C + c] = r{p}_{q};",
        scatter="""
      for (int64_t c = 0; c < C; ++c) for (int64_t a = 0; a < 4; ++a) {
        const float* __restrict__ from = buf + a * W * C + c;
        float* __restrict__ to = out + ((n * C + c) * H + 4 * ti + a) * W;
        for (int64_t w = 0; w < W; ++w) to[w] = from[w * C];
      }""",
    )
    output_adjoint = _kernel(
        "output_adjoint",
        _transpose(_AT),
        arguments="torch::Tensor input",
        setup=spatial
        + """
  auto result = torch::empty({36, N * T, C}, input.options());
  float* out = result.data_ptr<float>();""",
        tasks="N * th",
        buffer="4 * W * C",
        gather=row_of_tiles
        + """
      for (int64_t c = 0; c < C; ++c) for (int64_t a = 0; a < 4; ++a) {
        const float* __restrict__ from = x + ((n * C + c) * H + 4 * ti + a) * W;
        float* __restrict__ to = buf + a * W * C + c;
        for (int64_t w = 0; w < W; ++w) to[w * C] = from[w];
      }""",
        tiles="for (int64_t tj = 0; tj < tw; ++tj)",
        load="const float s{j}_{k} = buf[({j} * W + 4 * tj + {k}) * C + c];",
        store="out[{pq} * NTC + (n * T + ti * tw + tj) * C + c] = r{p}_{q};",
        scatter="",
    )
    return header + input_kernel + input_adjoint + output_kernel + output_adjoint
