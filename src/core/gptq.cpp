#include "core/gptq.hpp"

#include <Eigen/Cholesky>
#include <algorithm>
#include <cmath>
#include <numeric>
#include <optional>
#include <sstream>

#include "core/error.hpp"
#include "core/hessian.hpp"
#include "core/rtn.hpp"

namespace magrq {

void GptqOptions::validate() const {
  grid.validate();
  if (!(percdamp >= 0.0 && std::isfinite(percdamp))) {
    throw ConfigError(
        detail::concat("invalid percdamp ", percdamp, ": expected a finite value >= 0"));
  }
  if (block_size < 1) {
    throw ConfigError(detail::concat("invalid block_size ", block_size, ": expected >= 1"));
  }
  if (static_groups && grid.group_size < 1) {
    throw ConfigError(detail::concat("invalid static_groups = true with group_size ",
                                     grid.group_size, ": static groups need group_size > 0"));
  }
  double previous = percdamp;
  for (size_t i = 0; i < damping_ladder.size(); ++i) {
    const double step = damping_ladder[i];
    if (!(step > previous && std::isfinite(step))) {
      throw ConfigError(detail::concat("invalid damping_ladder[", i, "] = ", step,
                                       ": expected finite values that increase strictly and "
                                       "start above percdamp (",
                                       percdamp, ")"));
    }
    previous = step;
  }
}

namespace {

// The problem after dead-column handling and the act-order permutation.
struct PreparedProblem {
  Matrix weight;             // out x in, dead columns zeroed, columns in processing order
  Matrix hessian;            // in x in, dead diagonal set to 1, in processing order
  std::vector<Index> order;  // processing position -> original column
  Index dead = 0;
  double mean_diagonal = 0.0;  // mean(diag H) after the dead-column fix
  // groups x out, fitted on the dead-zeroed W in original order (static groups only).
  Matrix static_scales;
  MatrixI static_zeros;
};

// Quantization of the permuted problem, before the columns are put back in order.
struct LazyBlockResult {
  MatrixI codes;   // out x in, processing order
  Matrix dequant;  // out x in, processing order
  Matrix scales;   // groups x out
  MatrixI zeros;   // groups x out
};

void require_nonnegative_diagonal(const Matrix& H) {
  for (Index i = 0; i < H.rows(); ++i) {
    if (H(i, i) < 0.0f) {
      throw DataError(detail::concat("Hessian has a negative diagonal entry H(", i, ", ", i,
                                     ") = ", H(i, i), "; expected X^T X, whose diagonal is >= 0"));
    }
  }
}

// Processing order: identity, or decreasing H(i, i) with ties broken by the lower index,
// so that layers sharing H (q, k and v) get the same order on every platform.
std::vector<Index> processing_order(const Matrix& H, bool act_order) {
  std::vector<Index> order(static_cast<size_t>(H.rows()));
  std::iota(order.begin(), order.end(), Index{0});
  if (act_order) {
    std::stable_sort(order.begin(), order.end(),
                     [&H](Index a, Index b) { return H(a, a) > H(b, b); });
  }
  return order;
}

// Column j of the result is column order[j] of m. Row by row, because the matrices are
// row-major.
template <typename Dense>
Dense permute_columns(const Dense& m, const std::vector<Index>& order) {
  Dense permuted(m.rows(), m.cols());
  for (Index r = 0; r < m.rows(); ++r) {
    for (Index j = 0; j < m.cols(); ++j) {
      permuted(r, j) = m(r, order[static_cast<size_t>(j)]);
    }
  }
  return permuted;
}

// Column order[j] of the result is column j of m: the inverse of permute_columns.
template <typename Dense>
Dense unpermute_columns(const Dense& m, const std::vector<Index>& order) {
  Dense original(m.rows(), m.cols());
  for (Index r = 0; r < m.rows(); ++r) {
    for (Index j = 0; j < m.cols(); ++j) {
      original(r, order[static_cast<size_t>(j)]) = m(r, j);
    }
  }
  return original;
}

Matrix permute_symmetric(const Matrix& m, const std::vector<Index>& order) {
  Matrix permuted(m.rows(), m.cols());
  for (Index i = 0; i < m.rows(); ++i) {
    for (Index j = 0; j < m.cols(); ++j) {
      permuted(i, j) = m(order[static_cast<size_t>(i)], order[static_cast<size_t>(j)]);
    }
  }
  return permuted;
}

// Grids of every group of W in its own column order, as RTN fits them.
void fit_static_groups(const Matrix& W, const QuantGridOptions& grid, PreparedProblem& problem) {
  const QuantizedLayer rtn = rtn_quantize(W, grid);
  problem.static_scales = rtn.scales;
  problem.static_zeros = rtn.zeros;
}

PreparedProblem prepare_problem(const Matrix& W, const Matrix& H, const GptqOptions& options) {
  PreparedProblem problem;
  Matrix weight = W;
  Matrix hessian = H;
  const std::vector<Index> dead = dead_columns(H);
  for (const Index i : dead) {
    hessian(i, i) = 1.0f;
    weight.col(i).setZero();
  }
  problem.dead = static_cast<Index>(dead.size());
  problem.mean_diagonal = hessian.diagonal().cast<double>().mean();
  if (options.static_groups) {
    fit_static_groups(weight, options.grid, problem);
  }
  problem.order = processing_order(hessian, options.act_order);
  if (options.act_order) {
    problem.weight = permute_columns(weight, problem.order);
    problem.hessian = permute_symmetric(hessian, problem.order);
  } else {
    problem.weight = std::move(weight);
    problem.hessian = std::move(hessian);
  }
  return problem;
}

// Factors the symmetric positive-definite matrix a = L L^T in place, reading and
// writing L in its lower triangle, and returns false if a is not positive definite in
// its precision. The strict upper triangle is left with scratch values.
// Right-looking blocked Cholesky: Eigen's LLT only on the diagonal blocks, and the
// panel solve and the trailing update as BLAS calls (TRSM and GEMM), because Eigen's
// own kernels for LLT's rank updates run several times slower than OpenBLAS here.
// O(n^3 / 3).
template <typename Dense>
bool cholesky_in_place(Dense& a) {
  constexpr Index kBlock = 128;
  constexpr Index kUpdatePanel = 512;
  const Index n = a.rows();
  for (Index k = 0; k < n; k += kBlock) {
    const Index width = std::min(kBlock, n - k);
    const Index rest = n - k - width;
    auto diagonal_block = a.block(k, k, width, width);
    Eigen::LLT<Eigen::Ref<Dense>> llt(diagonal_block);
    if (llt.info() != Eigen::Success) {
      return false;
    }
    if (rest == 0) {
      break;
    }
    auto panel = a.block(k + width, k, rest, width);
    diagonal_block.template triangularView<Eigen::Lower>()
        .transpose()
        .template solveInPlace<Eigen::OnTheRight>(panel);
    // Update the lower triangle of the trailing matrix one column panel at a time. Wider
    // panels do some work above the diagonal but make fewer, larger GEMM calls.
    for (Index j = 0; j < rest; j += kUpdatePanel) {
      const Index columns = std::min(kUpdatePanel, rest - j);
      a.block(k + width + j, k + width + j, rest - j, columns).noalias() -=
          panel.bottomRows(rest - j) * panel.middleRows(j, columns).transpose();
    }
  }
  return true;
}

// Inverse of the lower-triangular factor stored in the lower triangle of `lower`,
// one block of columns at a time. Block column k of the inverse is zero above row k,
// so each block needs only the trailing part of the triangular solve: O(n^3 / 3) in
// BLAS TRSM, a third of a solve against the full identity.
template <typename Dense>
Dense lower_triangular_inverse(const Dense& lower) {
  constexpr Index kBlock = 256;
  const Index n = lower.rows();
  Dense inverse = Dense::Zero(n, n);
  for (Index k = 0; k < n; k += kBlock) {
    const Index width = std::min(kBlock, n - k);
    auto columns = inverse.block(k, k, n - k, width);
    columns.topRows(width).setIdentity();
    lower.block(k, k, n - k, n - k).template triangularView<Eigen::Lower>().solveInPlace(columns);
  }
  return inverse;
}

// Upper-triangular U with (H + damping I)^-1 = U^T U, the factor that GPTQ's updates
// use, or nullopt when H + damping I is not positive definite in Scalar precision.
// The reference computes it as Cholesky(H) -> inverse -> upper Cholesky of the
// inverse. The same U comes from one factorization: with J the exchange matrix and
// J H J = M M^T (lower Cholesky), H^-1 = (J M^-1 J)^T (J M^-1 J) and J M^-1 J is
// upper triangular with a positive diagonal, so U = J M^-1 J. Cost: n^3 / 3 for the
// factorization plus n^3 / 3 for the triangular inverse.
template <typename Scalar>
std::optional<Matrix> inverse_upper_factor(const Matrix& H, double damping) {
  // Row-major like H, so that the reversals below copy memory in order.
  using Dense = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  Dense reversed = H.reverse().template cast<Scalar>();
  reversed.diagonal().array() += static_cast<Scalar>(damping);
  if (!cholesky_in_place(reversed)) {
    return std::nullopt;
  }
  Matrix upper = lower_triangular_inverse(reversed).reverse().template cast<float>();
  // A pivot that is positive but tiny gives an inverse that overflows float32.
  // Checked through a flat view: Eigen's allFinite() on a row-major matrix walks it
  // column by column, which cost GPTQ about 0.2 s per 4096 x 4096 matrix.
  const bool finite = Eigen::Map<const Eigen::VectorXf>(upper.data(), upper.size()).allFinite();
  if (!finite || !(upper.diagonal().array() > 0.0f).all()) {
    return std::nullopt;
  }
  return upper;
}

// Columns of the current lazy-update block, whose scaled errors are stored, and of the
// panel inside it that the per-row loop works on.
struct ColumnRange {
  Index block_begin = 0;
  Index block_end = 0;
  Index panel_begin = 0;
  Index panel_end = 0;
};

// The row's values over the group [begin, end) as they stand after the updates from
// every column before `begin`. Columns inside the panel are already updated in `row`.
// Later columns of the block still miss the updates from the panel's columns before
// `begin`, and columns past the block miss those from the block's columns before it.
void current_group_values(const float* row, const float* block_errors, const Matrix& upper,
                          const ColumnRange& range, Index begin, Index end,
                          std::vector<float>& values) {
  values.assign(row + begin, row + end);
  for (Index k = std::max(begin, range.panel_end); k < end; ++k) {
    const Index first_pending = k < range.block_end ? range.panel_begin : range.block_begin;
    float pending = 0.0f;
    for (Index j = first_pending; j < begin; ++j) {
      pending += block_errors[j - range.block_begin] * upper(j, k);
    }
    values[static_cast<size_t>(k - begin)] -= pending;
  }
}

// Everything the per-row kernel needs to find the grid of a column.
struct GroupLayout {
  Index group_size = 0;  // effective size: in_features for per-channel grids
  bool static_groups = false;
  const std::vector<Index>* order = nullptr;
};

// Sets `grid` to the grid of column c in one row: the static group's grid, a grid
// fitted now at the first column of a group, or the stored grid of the current group
// at the start of a panel. Elsewhere `grid` already contains the right grid.
void update_grid(Index row_index, Index c, const ColumnRange& range, const PreparedProblem& problem,
                 const Matrix& upper, const GroupLayout& layout, const GptqOptions& options,
                 const Matrix& weight, const Matrix& errors, LazyBlockResult& result,
                 std::vector<float>& buffer, GridParams& grid) {
  if (layout.static_groups) {
    const Index group = (*layout.order)[static_cast<size_t>(c)] / layout.group_size;
    grid = {problem.static_scales(group, row_index), problem.static_zeros(group, row_index)};
  } else if (c % layout.group_size == 0) {
    // GPTQ fits each group's grid at its first column, on the partly updated weights.
    const Index group = c / layout.group_size;
    const Index end = std::min(weight.cols(), c + layout.group_size);
    current_group_values(weight.row(row_index).data(), errors.row(row_index).data(), upper, range,
                         c, end, buffer);
    grid = fit_grid(buffer, options.grid);
    result.scales(group, row_index) = grid.scale;
    result.zeros(group, row_index) = grid.zero;
  } else if (c == range.panel_begin) {
    const Index group = c / layout.group_size;
    grid = {result.scales(group, row_index), result.zeros(group, row_index)};
  }
}

// Quantizes column c of one row, stores its scaled error and spreads the error over
// the row's later columns in the panel (Algorithm 1, inner loop). Returns false when
// the error overflowed to Inf or NaN.
bool quantize_column(Index row_index, Index c, const ColumnRange& range, GridParams grid,
                     const Matrix& upper, int32_t maxq, Matrix& weight, Matrix& errors,
                     LazyBlockResult& result) {
  float* row = weight.row(row_index).data();
  const float w = row[c];
  const int32_t code = quantize_value(w, grid, maxq);
  const float q = dequantize_value(code, grid);
  result.codes(row_index, c) = code;
  result.dequant(row_index, c) = q;
  const float error = (w - q) / upper(c, c);
  if (!std::isfinite(error)) {
    return false;
  }
  errors(row_index, c - range.block_begin) = error;
  const Index rest = range.panel_end - c - 1;
  Eigen::Map<Eigen::VectorXf>(row + c + 1, rest) -=
      error * upper.row(c).segment(c + 1, rest).transpose();
  return true;
}

// Quantizes the panel's columns for the rows [row_begin, row_end), at most kTile rows.
// Each row is a serial chain of divisions and roundings from column to column. The
// column loop therefore runs outside the row loop, so that the rows' independent chains
// overlap in the CPU pipeline.
constexpr Index kTile = 8;

bool quantize_tile_panel(Index row_begin, Index row_end, const ColumnRange& range,
                         const PreparedProblem& problem, const Matrix& upper,
                         const GroupLayout& layout, const GptqOptions& options, Matrix& weight,
                         Matrix& errors, LazyBlockResult& result, std::vector<float>& buffer) {
  const int32_t maxq = options.grid.maxq();
  GridParams grids[kTile];
  for (Index c = range.panel_begin; c < range.panel_end; ++c) {
    for (Index r = row_begin; r < row_end; ++r) {
      GridParams& grid = grids[r - row_begin];
      update_grid(r, c, range, problem, upper, layout, options, weight, errors, result, buffer,
                  grid);
      if (!quantize_column(r, c, range, grid, upper, maxq, weight, errors, result)) {
        return false;
      }
    }
  }
  return true;
}

// Algorithm 1 of the GPTQ paper with lazy batch updates. Within a block, the per-row
// loop handles panels of kPanel columns (rows are independent given U) and BLAS
// applies each panel's updates to the rest of the block. After each block, the rest of
// W receives the block's updates as one GEMM. O(out * in * kPanel + out * in^2).
//
// The rows run on one thread. A parallel row loop alternates OpenMP regions with
// OpenBLAS calls, whose worker threads keep spinning for a while after each GEMM. On a
// 2-core machine shared with other jobs, the lazy updates of a 4096 x 4096 layer took
// 4.1 s with two OpenMP threads and 1.6 s with one.
std::optional<LazyBlockResult> run_lazy_blocks(const PreparedProblem& problem, const Matrix& upper,
                                               const GptqOptions& options) {
  constexpr Index kPanel = 32;
  const Index out = problem.weight.rows();
  const Index in = problem.weight.cols();
  const Index groups = group_count(in, options.grid.group_size);
  GroupLayout layout;
  layout.group_size =
      options.grid.group_size > 0 ? options.grid.group_size : std::max<Index>(in, 1);
  layout.static_groups = options.static_groups;
  layout.order = &problem.order;

  LazyBlockResult result;
  result.codes.resize(out, in);
  result.dequant.resize(out, in);
  result.scales.resize(groups, out);
  result.zeros.resize(groups, out);
  Matrix weight = problem.weight;
  Matrix errors(out, std::min(options.block_size, std::max<Index>(in, 1)));
  std::vector<float> buffer;

  for (Index block_begin = 0; block_begin < in; block_begin += options.block_size) {
    ColumnRange range;
    range.block_begin = block_begin;
    range.block_end = std::min(in, block_begin + options.block_size);
    for (Index panel = block_begin; panel < range.block_end; panel += kPanel) {
      range.panel_begin = panel;
      range.panel_end = std::min(range.block_end, panel + kPanel);
      for (Index r = 0; r < out; r += kTile) {
        if (!quantize_tile_panel(r, std::min(out, r + kTile), range, problem, upper, layout,
                                 options, weight, errors, result, buffer)) {
          return std::nullopt;
        }
      }
      const Index width = range.panel_end - range.panel_begin;
      const Index rest_of_block = range.block_end - range.panel_end;
      if (rest_of_block > 0) {
        weight.middleCols(range.panel_end, rest_of_block).noalias() -=
            errors.middleCols(range.panel_begin - block_begin, width) *
            upper.block(range.panel_begin, range.panel_end, width, rest_of_block);
      }
    }
    const Index count = range.block_end - block_begin;
    if (range.block_end < in) {
      weight.rightCols(in - range.block_end).noalias() -=
          errors.leftCols(count) *
          upper.block(block_begin, range.block_end, count, in - range.block_end);
    }
  }
  // Every column's error was checked, so Inf or NaN that the updates produced would
  // have stopped the run before here.
  return result;
}

// Puts the codes back in the original column order and fills scales, zeros and g_idx.
void assemble_result(const PreparedProblem& problem, LazyBlockResult&& run,
                     const GptqOptions& options, QuantizedLayer& layer) {
  const Index in = problem.weight.cols();
  const Index group_size = options.grid.group_size;
  if (options.act_order) {
    layer.codes = unpermute_columns(run.codes, problem.order);
    layer.dequant = unpermute_columns(run.dequant, problem.order);
  } else {
    layer.codes = std::move(run.codes);
    layer.dequant = std::move(run.dequant);
  }
  layer.g_idx.resize(in);
  for (Index j = 0; j < in; ++j) {
    const Index original = problem.order[static_cast<size_t>(j)];
    const Index group = group_size < 1 ? 0 : (options.static_groups ? original : j) / group_size;
    layer.g_idx[original] = static_cast<int32_t>(group);
  }
  if (options.static_groups) {
    layer.scales = problem.static_scales;
    layer.zeros = problem.static_zeros;
  } else {
    layer.scales = std::move(run.scales);
    layer.zeros = std::move(run.zeros);
  }
}

std::string describe_attempt(const DampingAttempt& attempt) {
  return detail::concat(attempt.float64 ? "float64" : "float32", " with damping ",
                        attempt.multiplier, " x mean(diag H) = ", attempt.damping);
}

std::string list_attempts(const std::vector<DampingAttempt>& attempts) {
  std::ostringstream list;
  for (size_t i = 0; i < attempts.size(); ++i) {
    list << (i == 0 ? "" : ", ") << (attempts[i].float64 ? "float64 " : "float32 ")
         << attempts[i].multiplier;
  }
  return list.str();
}

// Tries percdamp and then each ladder step, first in float32 and then in float64,
// until one factorization and the updates that use it succeed. Records every attempt.
bool quantize_with_damping_ladder(const PreparedProblem& problem, const GptqOptions& options,
                                  QuantizedLayer& layer) {
  std::vector<double> multipliers = {options.percdamp};
  multipliers.insert(multipliers.end(), options.damping_ladder.begin(),
                     options.damping_ladder.end());
  for (const bool float64 : {false, true}) {
    for (const double multiplier : multipliers) {
      DampingAttempt attempt;
      attempt.multiplier = multiplier;
      attempt.damping = multiplier * problem.mean_diagonal;
      attempt.float64 = float64;
      const std::optional<Matrix> upper =
          float64 ? inverse_upper_factor<double>(problem.hessian, attempt.damping)
                  : inverse_upper_factor<float>(problem.hessian, attempt.damping);
      std::optional<LazyBlockResult> run;
      if (upper) {
        run = run_lazy_blocks(problem, *upper, options);
      }
      attempt.succeeded = run.has_value();
      layer.damping_attempts.push_back(attempt);
      if (!upper) {
        layer.events.push_back(detail::concat("GPTQ: damped Hessian is not positive definite in ",
                                              describe_attempt(attempt)));
        continue;
      }
      if (!run) {
        layer.events.push_back(detail::concat("GPTQ: updates overflowed to Inf or NaN in ",
                                              describe_attempt(attempt)));
        continue;
      }
      layer.damping = attempt.damping;
      layer.damping_multiplier = multiplier;
      layer.used_float64 = float64;
      if (layer.damping_attempts.size() > 1) {
        layer.events.push_back(detail::concat("GPTQ: succeeded in ", describe_attempt(attempt),
                                              " after ", layer.damping_attempts.size() - 1,
                                              " failed attempts"));
      }
      assemble_result(problem, std::move(*run), options, layer);
      return true;
    }
  }
  return false;
}

void fall_back_to_rtn(const PreparedProblem& problem, const GptqOptions& options,
                      QuantizedLayer& layer) {
  // RTN on the dead-zeroed weight in the original column order.
  const Matrix weight = unpermute_columns(problem.weight, problem.order);
  QuantizedLayer rtn = rtn_quantize(weight, options.grid);
  layer.codes = std::move(rtn.codes);
  layer.dequant = std::move(rtn.dequant);
  layer.scales = std::move(rtn.scales);
  layer.zeros = std::move(rtn.zeros);
  layer.g_idx = std::move(rtn.g_idx);
  layer.rtn_fallback = true;
  layer.events.push_back(detail::concat("GPTQ: fell back to RTN after every damping failed (",
                                        list_attempts(layer.damping_attempts), " x mean(diag H))"));
}

}  // namespace

QuantizedLayer gptq_quantize(const Matrix& W, const Matrix& H, const GptqOptions& options) {
  options.validate();
  if (W.rows() == 0 || W.cols() == 0) {
    throw DataError(detail::concat("weight is ", W.rows(), " x ", W.cols(),
                                   "; expected at least one row and one column"));
  }
  require_layer_shapes(W, H);
  require_finite(W, "weight");
  require_finite(H, "Hessian");
  require_nonnegative_diagonal(H);

  const PreparedProblem problem = prepare_problem(W, H, options);
  QuantizedLayer layer;
  layer.bits = options.grid.bits;
  layer.group_size = options.grid.group_size;
  layer.dead_columns = problem.dead;
  if (problem.dead > 0) {
    layer.events.push_back(detail::concat("GPTQ: ", problem.dead,
                                          " dead input channels (H(i, i) == 0) quantized to 0"));
  }

  if (!quantize_with_damping_ladder(problem, options, layer)) {
    if (!options.allow_rtn_fallback) {
      throw NumericalError(detail::concat(
          "GPTQ failed: the damped ", H.rows(), " x ", H.cols(),
          " Hessian is not positive definite, or the updates overflowed, for every damping "
          "tried (",
          list_attempts(layer.damping_attempts), " x mean(diag H) = ", problem.mean_diagonal,
          "); add larger steps to damping_ladder or set allow_rtn_fallback"));
    }
    fall_back_to_rtn(problem, options, layer);
  }

  layer.output_error = output_error_float32(W, layer.dequant, H);
  layer.has_output_error = true;
  return layer;
}

}  // namespace magrq
