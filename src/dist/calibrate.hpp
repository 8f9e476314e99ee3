// Data-parallel, layer-streamed calibration: every rank moves its share of the
// calibration windows through one decoder layer at a time and the X^T X of the layer's
// four linear inputs are reduced to the coordinator.
//
// Determinism: window w belongs to rank w mod P. For each window its X^T X (float64) is
// computed on its owner and added to the coordinator's running sum in window order,
// 0, 1, 2, ..., so the sum is the same sequence of float64 additions for any number of
// ranks, and the stored Hessians are bit-identical. Owners send each window's partial
// sums as soon as they are computed, so all ranks compute concurrently while the
// coordinator adds.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "dist/comm.hpp"
#include "model/checkpoint.hpp"
#include "model/rope.hpp"
#include "store/hessian_store.hpp"

namespace magrq::dist {

// The rank that owns calibration or evaluation window `window` among `ranks` ranks.
inline int window_owner(int64_t window, int ranks) { return static_cast<int>(window % ranks); }

// Hidden states of the windows this rank owns, advanced one decoder layer at a time.
class WindowStates {
 public:
  // Embeds the windows this rank owns (all ranks pass the same full list of windows).
  WindowStates(const Comm& comm, const model::Checkpoint& checkpoint,
               const std::vector<std::vector<int32_t>>& windows);

  // Runs `layer` with `weights` on the owned windows. With collect, returns on the
  // coordinator the summed X^T X and statistics of the four inputs, in window order
  // (other ranks return nothing). With advance, the hidden states become the layer's
  // outputs; without it, they stay the layer's inputs (sequential mode reruns the layer
  // with quantized weights). A collective: every rank must call it.
  std::optional<std::map<std::string, store::StoredHessian>> run_layer(
      const model::DecoderLayerWeights& weights, bool collect, bool advance);

  // The owned windows' current hidden states (tokens x hidden each), in window order.
  const std::vector<Matrix>& hidden() const { return hidden_; }
  const std::vector<int64_t>& owned_windows() const { return owned_; }

 private:
  // Runs the layer on one owned window; fills partials with its X^T X when collect is set.
  void run_window(const model::DecoderLayerWeights& weights, size_t local, bool collect,
                  bool advance, std::map<std::string, store::StoredHessian>& partials);

  const Comm& comm_;
  const model::Checkpoint& checkpoint_;
  model::Rope rope_;
  int64_t window_count_ = 0;
  std::vector<int64_t> owned_;
  std::vector<Matrix> hidden_;
};

}  // namespace magrq::dist
