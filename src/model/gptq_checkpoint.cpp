#include "model/gptq_checkpoint.hpp"

#include <unistd.h>

#include <cstring>
#include <fstream>
#include <set>

#include "core/error.hpp"
#include "core/pack.hpp"
#include "model/gptq_layout.hpp"
#include "model/safetensors.hpp"

namespace magrq::model {

namespace {

// Files of a Hugging Face folder that a quantized copy keeps unchanged.
constexpr const char* kCopiedFiles[] = {"tokenizer.json",          "tokenizer_config.json",
                                        "generation_config.json",  "special_tokens_map.json",
                                        "tokenizer.model",         "chat_template.jinja"};

std::string regex_escape(const std::string& text) {
  std::string escaped;
  for (const char c : text) {
    if (std::strchr(".^$|()[]{}*+?\\", c)) {
      escaped += '\\';
    }
    escaped += c;
  }
  return escaped;
}

void write_json(const std::filesystem::path& path, const nlohmann::ordered_json& json) {
  std::ofstream stream(path);
  stream << json.dump(2) << "\n";
  if (!stream) {
    throw DataError("writing " + path.string() + " failed");
  }
}

std::filesystem::path temporary_dir_for(const std::filesystem::path& out_dir) {
  auto temporary = out_dir;
  temporary += ".tmp-" + std::to_string(::getpid());
  std::filesystem::remove_all(temporary);
  std::filesystem::create_directories(temporary);
  return temporary;
}

// Moves a finished temporary folder to its final name, replacing an older output only
// once the new one is complete.
void publish_dir(const std::filesystem::path& temporary, const std::filesystem::path& out_dir) {
  if (std::filesystem::exists(out_dir)) {
    auto old = out_dir;
    old += ".old-" + std::to_string(::getpid());
    std::filesystem::rename(out_dir, old);
    std::filesystem::rename(temporary, out_dir);
    std::filesystem::remove_all(old);
    return;
  }
  std::filesystem::rename(temporary, out_dir);
}

void copy_side_files(const Checkpoint& source, const std::filesystem::path& dir) {
  for (const char* name : kCopiedFiles) {
    const auto from = source.directory() / name;
    if (std::filesystem::exists(from)) {
      std::filesystem::copy_file(from, dir / name, std::filesystem::copy_options::overwrite_existing);
    }
  }
}

TensorData copy_tensor(const SafetensorsFolder& tensors, const std::string& name) {
  const SafetensorsFile& file = tensors.file_of(name);
  const TensorInfo& info = file.info(name);
  const auto bytes = file.bytes(name);
  TensorData data;
  data.name = name;
  data.dtype = info.dtype;
  data.shape = info.shape;
  data.bytes.assign(bytes.begin(), bytes.end());
  return data;
}

float half_rounded(float value) { return half_to_float(float_to_half(value)); }

void check_scales(const QuantizedModule& module) {
  for (Index g = 0; g < module.scales.rows(); ++g) {
    for (Index o = 0; o < module.scales.cols(); ++o) {
      const float stored = half_rounded(module.scales(g, o));
      if (!(stored > 0.0f) || !std::isfinite(stored)) {
        throw DataError(detail::concat(module.name, ": scale ", module.scales(g, o), " at group ", g,
                                       ", output ", o, " is ", stored,
                                       " as float16; expected a positive finite float16 scale"));
      }
    }
  }
}

std::vector<TensorData> module_tensors(const QuantizedModule& module, bool sym) {
  if (const auto problem = gptq_layout_problem(module.codes.rows(), module.codes.cols(), module.bits,
                                               module.group_size)) {
    throw DataError(module.name + " cannot be stored in the GPTQ layout: " + *problem);
  }
  check_scales(module);
  // v1 (sym) stores zero - 1; v2 (asym) stores the zero point itself.
  const MatrixI stored_zeros = sym ? MatrixI(module.zeros.array() - 1) : module.zeros;
  const MatrixI codes_t = module.codes.transpose();
  return {TensorData::from_i32(module.name + ".qweight", pack_rows(codes_t, module.bits)),
          TensorData::from_i32(module.name + ".qzeros", pack_columns(stored_zeros, module.bits)),
          TensorData::from_matrix(module.name + ".scales", module.scales, Dtype::F16),
          TensorData::from_i32(module.name + ".g_idx", module.g_idx)};
}

// Names inside a block ("self_attn.q_proj") quantized in every layer, for transformers'
// modules_in_block_to_quantize, which applies one list to all layers.
nlohmann::ordered_json modules_in_block(Index layers, const std::vector<std::string>& unquantized) {
  const std::set<std::string> skipped(unquantized.begin(), unquantized.end());
  nlohmann::ordered_json attention = nlohmann::ordered_json::array();
  nlohmann::ordered_json mlp = nlohmann::ordered_json::array();
  for (const LinearKind kind : kAllLinearKinds) {
    bool everywhere = true;
    for (Index layer = 0; layer < layers; ++layer) {
      everywhere = everywhere && !skipped.count(linear_module_name(layer, kind));
    }
    if (!everywhere) {
      continue;
    }
    const std::string full = linear_module_name(0, kind);
    const std::string inner = full.substr(std::string("model.layers.0.").size());
    (inner.rfind("self_attn", 0) == 0 ? attention : mlp).push_back(inner);
  }
  nlohmann::ordered_json groups = nlohmann::ordered_json::array();
  if (!attention.empty()) groups.push_back(attention);
  if (!mlp.empty()) groups.push_back(mlp);
  return groups;
}

}  // namespace

nlohmann::ordered_json gptq_quantization_config(const GptqExportOptions& options) {
  nlohmann::ordered_json config = {
      {"quant_method", "gptq"},
      {"bits", options.bits},
      {"group_size", options.group_size},
      {"desc_act", options.desc_act},
      {"sym", options.sym},
      {"checkpoint_format", options.sym ? "gptq" : "gptq_v2"},
      {"true_sequential", options.true_sequential},
      {"damp_percent", options.damp_percent},
      {"static_groups", options.static_groups},
      {"lm_head", false},
      {"pack_dtype", "int32"},
  };
  // GPTQModel's and vLLM's per-module rules: "-:regex" skips a module, "+:regex" gives it
  // its own bits and group size.
  nlohmann::ordered_json dynamic = nlohmann::ordered_json::object();
  for (const std::string& name : options.unquantized_modules) {
    dynamic["-:^" + regex_escape(name) + "$"] = nlohmann::ordered_json::object();
  }
  for (const auto& [name, settings] : options.module_overrides) {
    dynamic["+:^" + regex_escape(name) + "$"] = {{"bits", settings.first}, {"group_size", settings.second}};
  }
  if (!dynamic.empty()) {
    config["dynamic"] = dynamic;
  }
  nlohmann::ordered_json meta = {{"quantizer", {std::string("magrq:") + MAGRQ_VERSION}}};
  meta.update(options.meta);
  config["meta"] = meta;
  return config;
}

Matrix dequantize_module(const QuantizedModule& module) {
  check_scales(module);
  const Index out = module.codes.rows();
  const Index in = module.codes.cols();
  Matrix weight(out, in);
  for (Index o = 0; o < out; ++o) {
    for (Index i = 0; i < in; ++i) {
      const Index g = module.g_idx(i);
      const float scale = half_rounded(module.scales(g, o));
      weight(o, i) = scale * static_cast<float>(module.codes(o, i) - module.zeros(g, o));
    }
  }
  return weight;
}

void write_gptq_checkpoint(const Checkpoint& source, const std::vector<QuantizedModule>& modules,
                           const GptqExportOptions& export_options, const std::filesystem::path& out_dir) {
  GptqExportOptions options = export_options;
  for (const QuantizedModule& module : modules) {
    if (module.bits != options.bits || module.group_size != options.group_size) {
      options.module_overrides.push_back({module.name, {module.bits, module.group_size}});
    }
  }
  const auto temporary = temporary_dir_for(out_dir);
  std::set<std::string> replaced;
  // NOTE: every tensor stays in memory until the shards are written, on top of the
  // caller's modules (int32 codes): with the dequantized export about 12 bytes per
  // quantized weight on rank 0, some 765 GiB for a 70B model. A writer that streams
  // module by module would remove that.
  std::vector<TensorData> tensors;
  ShardOptions shards;
  shards.max_shard_bytes = options.max_shard_bytes;
  for (const QuantizedModule& module : modules) {
    auto packed = module_tensors(module, options.sym);
    std::vector<std::string> group;
    for (TensorData& tensor : packed) {
      group.push_back(tensor.name);
      tensors.push_back(std::move(tensor));
    }
    shards.groups.push_back(group);
    replaced.insert(module.name + ".weight");
  }
  for (const std::string& name : source.tensors().tensor_names()) {
    if (!replaced.count(name)) {
      tensors.push_back(copy_tensor(source.tensors(), name));
    }
  }
  write_sharded_safetensors(temporary, tensors, shards);

  nlohmann::ordered_json quantization = gptq_quantization_config(options);
  if (!options.unquantized_modules.empty()) {
    quantization["modules_in_block_to_quantize"] =
        modules_in_block(source.config().num_hidden_layers, options.unquantized_modules);
  }
  nlohmann::ordered_json config = nlohmann::ordered_json::parse(source.config().raw.dump());
  config["quantization_config"] = quantization;
  write_json(temporary / "config.json", config);
  write_json(temporary / "quantize_config.json", quantization);
  copy_side_files(source, temporary);
  publish_dir(temporary, out_dir);
}

void write_replaced_checkpoint(const Checkpoint& source,
                               const std::vector<std::pair<std::string, Matrix>>& weights,
                               const std::filesystem::path& out_dir, uint64_t max_shard_bytes) {
  const auto temporary = temporary_dir_for(out_dir);
  std::set<std::string> replaced;
  std::vector<TensorData> tensors;
  for (const auto& [name, matrix] : weights) {
    tensors.push_back(TensorData::from_matrix(name, matrix, Dtype::F32));
    replaced.insert(name);
  }
  for (const std::string& name : source.tensors().tensor_names()) {
    if (!replaced.count(name)) {
      tensors.push_back(copy_tensor(source.tensors(), name));
    }
  }
  ShardOptions shards;
  shards.max_shard_bytes = max_shard_bytes;
  write_sharded_safetensors(temporary, tensors, shards);
  nlohmann::ordered_json config = nlohmann::ordered_json::parse(source.config().raw.dump());
  config.erase("quantization_config");
  write_json(temporary / "config.json", config);
  copy_side_files(source, temporary);
  publish_dir(temporary, out_dir);
}

}  // namespace magrq::model
