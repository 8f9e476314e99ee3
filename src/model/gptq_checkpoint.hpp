// Writing quantized Llama checkpoints and checking them.
//
// - The GPTQ checkpoint: per quantized linear module P, P.qweight (I32 [in * bits / 32,
//   out]), P.qzeros (I32 [groups, out * bits / 32]), P.scales (F16 [groups, out]) and
//   P.g_idx (I32 [in]). Every other tensor is copied unchanged. config.json gets a
//   quantization_config object, quantize_config.json contains the same object, and the
//   tokenizer and generation files are copied. Symmetric grids are written as checkpoint_format gptq
//   (zero points stored minus one, the v1 convention of every GPTQ loader); asymmetric
//   grids only as gptq_v2 (zero points stored as they are), because in v1 a zero point
//   of 0 would underflow.
// - The dequantized checkpoint: the model's own layout with each quantized weight
//   replaced by scale * (q - zero), where scale is the float16 value the GPTQ checkpoint
//   stores, so both checkpoints describe exactly the same weights.
// - verify_gptq_checkpoint: unpacks a GPTQ checkpoint with its own bit-stream reader
//   (not the packer's inverse) and compares it with the dequantized checkpoint bit for bit.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "core/types.hpp"
#include "model/checkpoint.hpp"

namespace magrq::model {

// The quantized form of one whole linear module.
struct QuantizedModule {
  std::string name;  // tensor prefix, e.g. model.layers.0.self_attn.q_proj
  int bits = 4;
  Index group_size = -1;
  MatrixI codes;    // out x in, each in [0, 2^bits)
  Matrix scales;    // groups x out
  MatrixI zeros;    // groups x out, each in [0, 2^bits)
  VectorI g_idx;    // in: the group of each input column
};

struct GptqExportOptions {
  int bits = 4;
  Index group_size = -1;
  bool sym = true;
  bool desc_act = false;
  bool static_groups = false;
  bool true_sequential = false;
  double damp_percent = 0.01;
  // Modules kept unquantized in this checkpoint (their .weight copied from the source).
  std::vector<std::string> unquantized_modules;
  // Modules whose bits or group size differ from the ones above (mixed precision), as
  // name -> (bits, group_size). write_gptq_checkpoint fills it from the modules.
  std::vector<std::pair<std::string, std::pair<int, Index>>> module_overrides;
  // Written under quantization_config.meta next to the quantizer name and version.
  nlohmann::ordered_json meta = nlohmann::ordered_json::object();
  uint64_t max_shard_bytes = uint64_t{4} << 30;
};

// The quantization_config object written to config.json and quantize_config.json.
nlohmann::ordered_json gptq_quantization_config(const GptqExportOptions& options);

// The dequantized weight (out x in) of a module: float16-rounded scale times (q - zero).
// Throws DataError naming the module when a scale is not a positive, finite float16.
Matrix dequantize_module(const QuantizedModule& module);

// Writes the GPTQ checkpoint of source with the given modules into out_dir. The folder
// is built under a temporary name and renamed when complete; an existing out_dir is
// replaced only then.
void write_gptq_checkpoint(const Checkpoint& source, const std::vector<QuantizedModule>& modules,
                           const GptqExportOptions& options, const std::filesystem::path& out_dir);

// Writes source with the given weights (tensor name -> matrix) replaced, in float32, into
// out_dir (temporary name, then rename). Other tensors are copied unchanged.
void write_replaced_checkpoint(const Checkpoint& source,
                               const std::vector<std::pair<std::string, Matrix>>& weights,
                               const std::filesystem::path& out_dir, uint64_t max_shard_bytes);

struct VerifyReport {
  int64_t modules = 0;       // quantized modules checked
  int64_t weights = 0;       // dequantized values compared
  std::vector<std::string> problems;  // empty when the checkpoint passed
};

// Checks a GPTQ checkpoint folder: quantization_config in config.json and
// quantize_config.json, tensor names, dtypes and shapes, code and zero ranges, g_idx,
// and, when dequantized_dir is given, that every unpacked weight equals the dequantized
// checkpoint's weight bit for bit.
VerifyReport verify_gptq_checkpoint(const std::filesystem::path& gptq_dir,
                                    const std::optional<std::filesystem::path>& dequantized_dir);

}  // namespace magrq::model
