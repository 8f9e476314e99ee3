#include "dist/calibrate.hpp"

#include <cmath>

#include "core/error.hpp"
#include "model/forward.hpp"

namespace magrq::dist {

namespace {

// X^T X of one window's activations (tokens x in) in float64. The lower triangle is
// computed by a symmetric rank update and mirrored, so the result is exactly symmetric.
MatrixD gram(const Matrix& activations) {
  const MatrixD x = activations.cast<double>();
  MatrixD xtx = MatrixD::Zero(x.cols(), x.cols());
  xtx.selfadjointView<Eigen::Lower>().rankUpdate(x.transpose());
  xtx.triangularView<Eigen::StrictlyUpper>() = xtx.transpose();
  return xtx;
}

void add_into(store::StoredHessian& sum, const store::StoredHessian& part) {
  if (sum.xtx.size() == 0) {
    sum.xtx = MatrixD::Zero(part.xtx.rows(), part.xtx.cols());
  }
  sum.xtx += part.xtx;
  sum.statistics.tokens += part.statistics.tokens;
  sum.statistics.max_abs_activation =
      std::max(sum.statistics.max_abs_activation, part.statistics.max_abs_activation);
}

Index input_width(const model::LlamaConfig& config, const std::string& input) {
  if (input == "attn_in" || input == "mlp_in") {
    return config.hidden_size;
  }
  if (input == "attn_out") {
    return config.q_size();
  }
  return config.intermediate_size;
}

void count_dead_channels(std::map<std::string, store::StoredHessian>& sums) {
  for (auto& [name, hessian] : sums) {
    int64_t dead = 0;
    for (Index i = 0; i < hessian.xtx.rows(); ++i) {
      dead += hessian.xtx(i, i) == 0.0 ? 1 : 0;
    }
    hessian.statistics.dead_channels = dead;
  }
}

}  // namespace

WindowStates::WindowStates(const Comm& comm, const model::Checkpoint& checkpoint,
                           const std::vector<std::vector<int32_t>>& windows)
    : comm_(comm), checkpoint_(checkpoint), rope_(checkpoint.config()),
      window_count_(static_cast<int64_t>(windows.size())) {
  for (int64_t w = 0; w < window_count_; ++w) {
    if (window_owner(w, comm.size()) == comm.rank()) {
      owned_.push_back(w);
      hidden_.push_back(checkpoint.embed(windows[static_cast<size_t>(w)]));
    }
  }
}

void WindowStates::run_window(const model::DecoderLayerWeights& weights, size_t local,
                              bool collect, bool advance,
                              std::map<std::string, store::StoredHessian>& partials) {
  const model::ActivationHook hook = [&](Index, model::LinearInput input, const Matrix& x) {
    store::StoredHessian& part = partials[model::linear_input_name(input)];
    part.xtx = gram(x);
    part.statistics.tokens = x.rows();
    part.statistics.max_abs_activation = x.size() ? static_cast<double>(x.cwiseAbs().maxCoeff()) : 0.0;
    if (!std::isfinite(part.statistics.max_abs_activation)) {
      throw DataError(detail::concat("layer ", weights.layer, " input ",
                                     model::linear_input_name(input),
                                     " has a non-finite activation; the model or its inputs are corrupt"));
    }
  };
  std::vector<Matrix> one = {hidden_[local]};
  model::forward_layer(checkpoint_.config(), weights, rope_, one, collect ? hook : model::ActivationHook{});
  if (advance) {
    hidden_[local] = std::move(one.front());
  }
}

// NOTE: rank 0 receives and adds every window's matrices itself, so its bandwidth bounds
// calibration at large rank counts; a fixed reduction tree over windows would keep the
// bit-identical sums and spread that work.
std::optional<std::map<std::string, store::StoredHessian>> WindowStates::run_layer(
    const model::DecoderLayerWeights& weights, bool collect, bool advance) {
  constexpr int kRoot = 0;
  std::map<std::string, store::StoredHessian> sums;
  std::map<std::string, store::StoredHessian> partials;
  size_t local = 0;
  for (int64_t w = 0; w < window_count_; ++w) {
    const int owner = window_owner(w, comm_.size());
    if (owner == comm_.rank()) {
      run_window(weights, local++, collect, advance, partials);
      if (!collect) {
        continue;
      }
      if (comm_.rank() == kRoot) {
        for (const auto& [name, part] : partials) {
          add_into(sums[name], part);
        }
        continue;
      }
      for (int tag = 0; tag < 4; ++tag) {
        const store::StoredHessian& part = partials.at(store::kLinearInputNames[tag]);
        const double header[2] = {static_cast<double>(part.statistics.tokens),
                                  part.statistics.max_abs_activation};
        comm_.send(std::span<const double>(header, 2), kRoot, tag);
        comm_.send(std::span<const double>(part.xtx.data(), part.xtx.size()), kRoot, tag);
      }
    } else if (collect && comm_.rank() == kRoot) {
      for (int tag = 0; tag < 4; ++tag) {
        const std::string name = store::kLinearInputNames[tag];
        const Index width = input_width(checkpoint_.config(), name);
        store::StoredHessian part;
        double header[2] = {0, 0};
        comm_.receive(std::span<double>(header, 2), owner, tag);
        part.statistics.tokens = static_cast<int64_t>(header[0]);
        part.statistics.max_abs_activation = header[1];
        part.xtx.resize(width, width);
        comm_.receive(std::span<double>(part.xtx.data(), part.xtx.size()), owner, tag);
        add_into(sums[name], part);
      }
    }
  }
  if (!collect || comm_.rank() != kRoot) {
    return std::nullopt;
  }
  count_dead_channels(sums);
  return sums;
}

}  // namespace magrq::dist
