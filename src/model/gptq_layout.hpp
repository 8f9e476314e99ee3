// Shape rules of the GPTQ checkpoint layout that transformers, vLLM and ExLlama load:
// qweight I32 [in * bits / 32, out], qzeros I32 [groups, out * bits / 32], scales F16
// [groups, out], g_idx I32 [in].
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/types.hpp"

namespace magrq::model {

// Bit widths the layout stores.
bool gptq_bits_supported(int bits);

// Why a module of this shape cannot be stored in the GPTQ layout, or nothing if it can.
// Needs: bits in {2, 3, 4, 8}; in * bits and out * bits multiples of 32 (whole int32
// words); for 3 bits, in and out multiples of 32 (32 values fill 3 words); a group size
// that divides in, because loaders allocate in / group_size rows of scales.
std::optional<std::string> gptq_layout_problem(Index out_features, Index in_features, int bits,
                                               Index group_size);

// Whether a tensor-parallel split into `degree` shards keeps the layout loadable. vLLM
// splits q/k/v/gate/up by output channel (column parallel) and o/down by input channel
// (row parallel); each shard needs whole words and, for row-parallel modules, whole groups.
bool gptq_tensor_parallel_ok(Index out_features, Index in_features, int bits, Index group_size,
                             bool row_parallel, int degree);

}  // namespace magrq::model
