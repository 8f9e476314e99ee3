// Calibration windows: nsamples windows of seqlen tokens drawn from a text source with a
// seeded std::mt19937_64, with every window's position kept so that a rerun (or a
// reader of the Hessian store) can tell exactly which tokens were used.
#pragma once

#include <cstdint>
#include <vector>

#include "core/types.hpp"
#include "model/text_source.hpp"

namespace magrq::model {

struct CalibrationOptions {
  Index nsamples = 128;  // windows, >= 1
  Index seqlen = 2048;   // tokens per window, >= 1
  uint64_t seed = 0;
  void validate() const;
};

struct WindowPosition {
  int64_t document = 0;  // c4: index of the document in the file; other sources: 0
  int64_t start = 0;     // token offset of the window's first token in that document
};

struct CalibrationWindows {
  std::vector<std::vector<int32_t>> windows;  // nsamples windows of seqlen tokens
  std::vector<WindowPosition> positions;      // one per window
  Index source_tokens = 0;                    // tokens of the text (c4: of the documents drawn)
};

// Draws the windows, as GPTQ's calibration loaders do:
// - wikitext2 and text: the (sliced) text is tokenized once into n tokens and each
//   window starts at a uniform offset in [0, n - seqlen]. Windows may overlap, but the
//   text must contain at least nsamples * seqlen tokens, so that they could be disjoint.
//   Less text is a DataError naming the source, its tokens and what is needed.
// - c4: each window draws a document uniformly until one has at least seqlen tokens,
//   then a uniform start inside it.
// Uniform draws use uniform_index (text_source.hpp), so a seed gives the same windows
// with any standard library.
CalibrationWindows sample_calibration_windows(const TextSpec& spec, const TextEncoder& encode,
                                              const CalibrationOptions& options);

// Positions flattened as document0, start0, document1, start1, ... (the store's layout).
std::vector<int64_t> flatten_positions(const std::vector<WindowPosition>& positions);

}  // namespace magrq::model
