#include "core/alpha_search.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <set>

#include "core/error.hpp"
#include "core/hessian.hpp"
#include "core/timing.hpp"

namespace magrq {

namespace {

// Copies row r of `from` into `into`: codes, dequantized weights, and the row's column
// of scales and zeros. Both layers come from the same grid layout.
void copy_quantized_row(QuantizedLayer& into, const QuantizedLayer& from, Index r) {
  into.codes.row(r) = from.codes.row(r);
  into.dequant.row(r) = from.dequant.row(r);
  into.scales.col(r) = from.scales.col(r);
  into.zeros.col(r) = from.zeros.col(r);
}

// The diagnostics a candidate's quantizer reported, kept for the candidates that some
// rows chose.
struct Diagnostics {
  std::vector<std::string> events;
  double damping = 0.0;
  double damping_multiplier = 0.0;
  bool used_float64 = false;
  bool rtn_fallback = false;
};

Diagnostics take_diagnostics(QuantizedLayer& layer) {
  return {std::move(layer.events), layer.damping, layer.damping_multiplier, layer.used_float64,
          layer.rtn_fallback};
}

// The merged layer reports the events of every chosen candidate (prefixed with it), the
// largest damping among them, and any fallback.
void merge_diagnostics(QuantizedLayer& into, const Diagnostics& from, const std::string& label) {
  for (const std::string& event : from.events) {
    into.events.push_back(label + ": " + event);
  }
  if (from.damping > into.damping) {
    into.damping = from.damping;
    into.damping_multiplier = from.damping_multiplier;
  }
  into.used_float64 = into.used_float64 || from.used_float64;
  into.rtn_fallback = into.rtn_fallback || from.rtn_fallback;
}

std::string candidate_label(const AlphaCandidate& candidate, AlphaScale scale) {
  if (candidate.value == 0.0) {
    return "no MagR";
  }
  return detail::concat("alpha ", candidate.value, scale == AlphaScale::zeroing ? " x zeroing" : "");
}

double median(std::vector<double> values) {
  if (values.empty()) {
    return 0.0;
  }
  const auto middle = values.begin() + static_cast<std::ptrdiff_t>(values.size() / 2);
  std::nth_element(values.begin(), middle, values.end());
  return *middle;
}

// The search's running state: the best row so far and the candidate it came from.
class RowSelection {
 public:
  RowSelection(const Matrix& W, const Matrix& H) : W_(W), H_(H) {}

  // Offers a candidate's quantized layer; rows whose error beats the best so far take it.
  // Ties keep the earlier candidate, so no MagR (offered first) wins ties.
  void offer(int index, const Matrix& weight, QuantizedLayer&& quantized, AlphaCandidate& candidate) {
    const VectorD errors = row_output_errors(W_, quantized.dequant, H_);
    candidate.output_error = errors.sum();
    diagnostics_.push_back(take_diagnostics(quantized));
    if (index == 0) {
      best_errors_ = errors;
      choice_.assign(static_cast<std::size_t>(W_.rows()), 0);
      result_.weight_magr = weight;
      result_.quantized = std::move(quantized);
      return;
    }
    for (Index r = 0; r < W_.rows(); ++r) {
      if (errors[r] < best_errors_[r]) {
        best_errors_[r] = errors[r];
        choice_[static_cast<std::size_t>(r)] = index;
        copy_quantized_row(result_.quantized, quantized, r);
        result_.weight_magr.row(r) = weight.row(r);
      }
    }
  }

  AlphaSearchResult finish(AlphaSearchSummary summary) {
    for (const int index : choice_) {
      ++summary.candidates[static_cast<std::size_t>(index)].rows_chosen;
    }
    QuantizedLayer& merged = result_.quantized;
    merged.damping = 0.0;
    merged.damping_multiplier = 0.0;
    merged.used_float64 = false;
    merged.rtn_fallback = false;
    for (std::size_t k = 0; k < summary.candidates.size(); ++k) {
      if (summary.candidates[k].rows_chosen > 0) {
        merge_diagnostics(merged, diagnostics_[k], candidate_label(summary.candidates[k], summary.scale));
      }
    }
    merged.output_error = best_errors_.sum();
    merged.has_output_error = true;
    summary.row_choice = choice_;
    result_.summary = std::move(summary);
    return std::move(result_);
  }

 private:
  const Matrix& W_;
  const Matrix& H_;
  VectorD best_errors_;
  std::vector<int> choice_;
  AlphaSearchResult result_;
  std::vector<Diagnostics> diagnostics_;  // per candidate, in the order offered
};

}  // namespace

std::vector<double> AlphaSearchOptions::default_relative_candidates() {
  // Three and a half decades below the zeroing alpha in steps of about 3. On stories260K
  // and babyllama105 at 2 to 4 bits, rows chose every value from 0.03 to 3e-5 and
  // almost none chose 0.1 (docs/magr.md, scripts/alpha-study).
  return {0.03, 0.01, 0.003, 0.001, 3e-4, 1e-4, 3e-5};
}

void AlphaSearchOptions::split_iterations(int single, std::size_t count) {
  MAGRQ_CHECK(count > 0, "no candidates");
  if (count == 1) {
    // One candidate is one solve: the fixed-alpha solve's iterations, no more.
    first_iterations = std::max(1, single);
    warm_iterations = 1;
    return;
  }
  const int total = single + single / 2;
  first_iterations = std::max(1, total / 5);
  warm_iterations = std::max(1, (total - first_iterations) / static_cast<int>(count - 1));
}

void AlphaSearchOptions::validate() const {
  if (candidates.empty()) {
    throw ConfigError("invalid MagR alpha candidates: the list is empty; expected at least one value > 0");
  }
  std::set<double> seen;
  for (const double value : candidates) {
    if (!(std::isfinite(value) && value > 0.0)) {
      throw ConfigError(detail::concat("invalid MagR alpha candidate ", value,
                                       ": expected a finite number > 0 (no MagR is always tried)"));
    }
    if (!seen.insert(value).second) {
      throw ConfigError(detail::concat("MagR alpha candidate ", value, " is listed twice"));
    }
  }
  if (first_iterations < 1 || warm_iterations < 1) {
    throw ConfigError(detail::concat("invalid MagR search iterations ", first_iterations, " (first) and ",
                                     warm_iterations, " (warm starts): expected >= 1"));
  }
  if (!(std::isfinite(tolerance) && tolerance >= 0.0)) {
    throw ConfigError(detail::concat("invalid MagR search tolerance ", tolerance, ": expected >= 0"));
  }
  if (!(baseline_range_shrink > 0.0 && baseline_range_shrink <= 1.0)) {
    throw ConfigError(detail::concat("invalid baseline range_shrink ", baseline_range_shrink,
                                     ": expected a number in (0, 1]"));
  }
}

std::string alpha_scale_name(AlphaScale scale) {
  return scale == AlphaScale::zeroing ? "zeroing" : "absolute";
}

AlphaSearchResult search_alpha(const Matrix& W, const Matrix& H, Index group_size,
                               const AlphaSearchOptions& options, const CandidateQuantizer& quantize) {
  options.validate();
  std::vector<double> values = options.candidates;
  std::sort(values.begin(), values.end());

  AlphaSearchSummary summary;
  summary.scale = options.scale;
  summary.candidates.resize(values.size() + 1);
  RowSelection selection(W, H);

  // No MagR: the baseline every row can fall back to. The MagR candidates follow from the
  // weakest up, each solve starting from the previous solution (see the header for why
  // not from the strongest down).
  auto start = std::chrono::steady_clock::now();
  summary.candidates[0].max_abs_after = W.size() ? W.cwiseAbs().maxCoeff() : 0.0;
  selection.offer(0, W, quantize(W, false), summary.candidates[0]);
  summary.candidates[0].quantize_seconds = seconds_since(start);

  const MagrProblem problem(W, H);
  std::vector<double> row_scale;
  if (options.scale == AlphaScale::zeroing) {
    row_scale = problem.zeroing_alpha(group_size);
    summary.median_zeroing_alpha = median(row_scale);
  }
  MagrOptions magr;
  magr.group_size = group_size;
  magr.accelerated = options.accelerated;
  magr.tolerance = options.tolerance;
  Matrix previous;
  for (std::size_t k = 0; k < values.size(); ++k) {
    AlphaCandidate& candidate = summary.candidates[k + 1];
    candidate.value = values[k];
    magr.alpha = values[k];
    magr.iterations = k == 0 ? options.first_iterations : options.warm_iterations;
    start = std::chrono::steady_clock::now();
    MagrResult solved = problem.solve(magr, row_scale, k == 0 ? nullptr : &previous);
    candidate.magr_seconds = seconds_since(start);
    candidate.iterations = solved.iterations;
    candidate.max_abs_after = solved.weight.size() ? solved.weight.cwiseAbs().maxCoeff() : 0.0;
    start = std::chrono::steady_clock::now();
    QuantizedLayer quantized = quantize(solved.weight, true);
    candidate.quantize_seconds = seconds_since(start);
    selection.offer(static_cast<int>(k + 1), solved.weight, std::move(quantized), candidate);
    previous = std::move(solved.weight);
  }
  return selection.finish(std::move(summary));
}

}  // namespace magrq
