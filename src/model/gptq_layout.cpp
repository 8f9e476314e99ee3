#include "model/gptq_layout.hpp"

namespace magrq::model {

bool gptq_bits_supported(int bits) { return bits == 2 || bits == 3 || bits == 4 || bits == 8; }

std::optional<std::string> gptq_layout_problem(Index out_features, Index in_features, int bits,
                                               Index group_size) {
  if (!gptq_bits_supported(bits)) {
    return std::to_string(bits) + "-bit codes are not stored by the GPTQ layout (2, 3, 4 or 8)";
  }
  if (bits == 3 && (in_features % 32 != 0 || out_features % 32 != 0)) {
    return "3-bit packing needs in_features and out_features that are multiples of 32, found " +
           std::to_string(out_features) + " x " + std::to_string(in_features);
  }
  if ((in_features * bits) % 32 != 0) {
    return "in_features " + std::to_string(in_features) + " times " + std::to_string(bits) +
           " bits is not a whole number of 32-bit words";
  }
  if ((out_features * bits) % 32 != 0) {
    return "out_features " + std::to_string(out_features) + " times " + std::to_string(bits) +
           " bits is not a whole number of 32-bit words";
  }
  if (group_size > 0 && in_features % group_size != 0) {
    return "group size " + std::to_string(group_size) + " does not divide in_features " +
           std::to_string(in_features) + " (loaders allocate in_features / group_size groups)";
  }
  return std::nullopt;
}

bool gptq_tensor_parallel_ok(Index out_features, Index in_features, int bits, Index group_size,
                             bool row_parallel, int degree) {
  if (row_parallel) {
    if (in_features % degree != 0) {
      return false;
    }
    return !gptq_layout_problem(out_features, in_features / degree, bits, group_size);
  }
  if (out_features % degree != 0) {
    return false;
  }
  return !gptq_layout_problem(out_features / degree, in_features, bits, group_size);
}

}  // namespace magrq::model
