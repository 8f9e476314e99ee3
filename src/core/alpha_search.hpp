// Adaptive MagR strength: a search over the l-inf weight alpha, per output row.
//
// The published MagR code fixes alpha (1e-3 per channel, 1e-4 per group, on H normalised
// to lambda_max = 1). The best value depends on the weights' magnitude: the quadratic
// term of MagR's objective grows with |w|^2 and the penalty with |w|, so a model whose
// weights are ten times smaller needs an alpha about ten times smaller, and a fixed
// alpha that suits one model erases the rows of another. The search instead solves MagR
// along a path of candidates from the weakest to the strongest, each solve warm-started
// from the previous solution. It quantizes every solution with the configured quantizer
// and keeps, for every output row, the candidate whose quantized row has the lowest
// output error e_i = (w_i - q_i)^T H (w_i - q_i) against the original weights. "No MagR"
// is always a candidate, so by this measure no row, and so no module, is worse than
// without MagR.
//
// Why the weakest first: the solves are far from converged (a fixed budget of
// iterations on ill-conditioned Hessians), and an iterate moves back out of a strong
// clipping only slowly along H's weak directions. On synthetic 1024 x 1024 layers with
// outlier inputs and 200 + 6 x 25 iterations, the path from the strongest down ended
// with an output error 50% (W3) and 18% (W2, groups of 128) above the path from the
// weakest up (measured once; the table is in docs/magr.md). W itself is the alpha = 0
// solution, so the weakest candidate starts next to its own solution.
//
// Choosing per row rather than per module: the layer's output error
// tr((W - Q) H (W - Q)^T) is the sum of the e_i, and RTN, GPTQ, the refinement and plain
// MagR treat each row on its own given H, so picking each row's best candidate minimises
// the module's error over every combination of candidates at no extra cost. It also keeps
// the choice independent of how a module's rows are split into work items.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "core/magr.hpp"
#include "core/quantized_layer.hpp"
#include "core/types.hpp"

namespace magrq {

// The rule that turns a candidate value c into each row's alpha.
enum class AlphaScale {
  // alpha_i = c for every row, on H / lambda_max(H): the published convention.
  absolute,
  // alpha_i = c * z_i, with z_i the row's zeroing alpha (MagrProblem::zeroing_alpha):
  // the smallest alpha at which MagR sets the whole row to 0. z_i grows linearly with the
  // row's weights, so c means the same shrinkage whatever the model's weight scale.
  zeroing,
};

struct AlphaSearchOptions {
  // Candidate values, tried from the smallest up. 0 (no MagR) is always a candidate and
  // need not be listed. Each value finite and > 0; duplicates are rejected.
  std::vector<double> candidates;
  AlphaScale scale = AlphaScale::zeroing;
  // MagR iterations of the first (weakest) candidate's solve, which starts from W0, and
  // of each later candidate's solve, which starts from the previous solution. Both >= 1.
  int first_iterations = 100;
  int warm_iterations = 25;
  // Relative objective change that ends a solve early (MagrOptions::tolerance).
  double tolerance = 1e-4;
  bool accelerated = true;
  // Grid range factor of the no-MagR candidate; the MagR candidates use the quantizer
  // grid's own range_shrink (the MagR schedule by default). 1 keeps the candidate equal
  // to quantizing without MagR.
  double baseline_range_shrink = 1.0;

  // The default candidates for `alpha: auto`, relative to the zeroing alpha.
  static std::vector<double> default_relative_candidates();

  // Splits 1.5 times `single` MagR iterations, `single` being one fixed-alpha solve's
  // count, over a path of `count` candidates: a fifth to the first solve and the rest
  // evenly to the warm starts (at least 1 each). A single candidate gets `single`. With the quantization of every
  // candidate the search then costs at most about twice one solve (docs/benchmarks.md).
  void split_iterations(int single, std::size_t count);

  // Throws ConfigError naming the option and value when out of range.
  void validate() const;
};

// One candidate of the search, with its error if every row had chosen it.
struct AlphaCandidate {
  double value = 0.0;       // as given: absolute alpha or multiple of the zeroing alpha
  double output_error = 0.0;  // sum over rows of e_i for this candidate, against W
  Index rows_chosen = 0;    // rows whose lowest error came from this candidate
  int iterations = 0;       // MagR iterations run (0 for no MagR)
  double magr_seconds = 0.0;
  double quantize_seconds = 0.0;
  double max_abs_after = 0.0;  // largest |w| of the MagR solution
};

struct AlphaSearchSummary {
  AlphaScale scale = AlphaScale::zeroing;
  // candidates[0] is no MagR (value 0); the rest in the order tried, smallest first.
  std::vector<AlphaCandidate> candidates;
  // Per row: the index into candidates of the row's choice.
  std::vector<int> row_choice;
  // Median over rows of the zeroing alpha (absolute units on H / lambda_max(H)), so that
  // relative candidates can be read as absolute alphas. 0 for AlphaScale::absolute.
  double median_zeroing_alpha = 0.0;
};

// Quantizes one candidate's weight: called once per candidate with the weight and
// whether MagR produced it (the no-MagR candidate quantizes W itself with
// baseline_range_shrink, the MagR candidates with the grid's own range factor). Returns
// the quantized layer, refined against the original weight if configured.
using CandidateQuantizer = std::function<QuantizedLayer(const Matrix& weight, bool magr_applied)>;

struct AlphaSearchResult {
  AlphaSearchSummary summary;
  Matrix weight_magr;        // per row, the MagR solution (or W) of the chosen candidate
  QuantizedLayer quantized;  // per row, the quantized row of the chosen candidate
};

// Runs the search on W (out x in) with Hessian H (in x in) and MagR groups of
// group_size columns (-1: one group per row). Cost: at most first_iterations +
// (count - 1) * warm_iterations GEMMs of MagR, one more per warm start, one zeroing-alpha
// GEMM, and per candidate one quantization and one error GEMM.
AlphaSearchResult search_alpha(const Matrix& W, const Matrix& H, Index group_size,
                               const AlphaSearchOptions& options, const CandidateQuantizer& quantize);

// "absolute" or "zeroing".
std::string alpha_scale_name(AlphaScale scale);

}  // namespace magrq
