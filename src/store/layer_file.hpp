// The single-layer files of `magrq layer`.
//
// Input file: /weight (float32, out x in) and /hessian (float32 or float64, in x in).
// Output file: /weight_magr (out x in, after MagR and before quantization, and equal to
// the input weight when MagR is off), /weight_dequant (out x in), /codes (int32, out x in),
// /scales (float32, groups x out), /zeros (int32, groups x out), /g_idx (int32, in), and
// the run's statistics as scalar attributes on the root group.
#pragma once

#include <filesystem>
#include <vector>

#include "core/quantized_layer.hpp"
#include "core/types.hpp"
#include "store/h5.hpp"

namespace magrq::store {

struct LayerInput {
  Matrix weight;   // out x in
  Matrix hessian;  // in x in
};

// Reads and checks an input file: both datasets present, 2-D, and shapes that agree.
LayerInput read_layer_input(const std::filesystem::path& path);

// Writes an input file (used by `magrq synth-layer` and the tests).
void write_layer_input(const std::filesystem::path& path, const LayerInput& input,
                       const std::vector<Attribute>& attributes);

// Writes an output file atomically (temporary name, then rename).
void write_layer_output(const std::filesystem::path& path, const Matrix& weight_magr,
                        const QuantizedLayer& quantized, const std::vector<Attribute>& attributes);

}  // namespace magrq::store
