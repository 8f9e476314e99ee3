// verify_gptq_checkpoint: reads a GPTQ checkpoint back without the packer. Each packed
// column is read as one little-endian bit stream in which value i occupies bits
// [i * bits, (i + 1) * bits). This single rule covers 2, 4 and 8 bits and the 3-bit
// layout, where 32 values fill 3 words, so it checks the packer independently.
#include <cstring>
#include <fstream>
#include <map>
#include <regex>
#include <tuple>

#include "core/error.hpp"
#include "model/gptq_checkpoint.hpp"
#include "model/safetensors.hpp"

namespace magrq::model {

namespace {

// Value `index` of the bit stream formed by column `column` of words (rows = words).
int32_t stream_value(const MatrixI& words, Index column, Index index, int bits) {
  const uint64_t bit = static_cast<uint64_t>(index) * static_cast<uint64_t>(bits);
  const Index word = static_cast<Index>(bit / 32);
  const unsigned offset = static_cast<unsigned>(bit % 32);
  const uint64_t low = static_cast<uint32_t>(words(word, column));
  const uint64_t high = word + 1 < words.rows() ? static_cast<uint32_t>(words(word + 1, column)) : 0;
  const uint64_t both = (high << 32) | low;
  return static_cast<int32_t>((both >> offset) & ((uint64_t{1} << bits) - 1));
}

nlohmann::json read_json(const std::filesystem::path& path, VerifyReport& report) {
  std::ifstream stream(path);
  if (!stream) {
    report.problems.push_back(path.string() + " is missing");
    return nullptr;
  }
  const nlohmann::json json = nlohmann::json::parse(stream, nullptr, false);
  if (json.is_discarded()) {
    report.problems.push_back(path.string() + " is not valid JSON");
    return nullptr;
  }
  return json;
}

struct FormatSettings {
  int bits = 0;
  Index group_size = -1;
  bool desc_act = false;
  bool sym = true;
  bool v1 = true;
  // "+:regex" entries of quantization_config.dynamic: modules with their own bits and group size.
  std::vector<std::tuple<std::regex, int, Index>> overrides;

  // The settings of one module after the first matching override.
  FormatSettings for_module(const std::string& name) const {
    FormatSettings module = *this;
    for (const auto& [pattern, bits, group_size] : overrides) {
      if (std::regex_search(name, pattern)) {
        module.bits = bits;
        module.group_size = group_size;
        break;
      }
    }
    return module;
  }
};

std::optional<FormatSettings> check_config(const std::filesystem::path& dir, VerifyReport& report) {
  const nlohmann::json config = read_json(dir / "config.json", report);
  const nlohmann::json quantize = read_json(dir / "quantize_config.json", report);
  if (config.is_null() || quantize.is_null()) {
    return std::nullopt;
  }
  if (!config.contains("quantization_config")) {
    report.problems.push_back("config.json has no quantization_config");
    return std::nullopt;
  }
  const nlohmann::json& q = config["quantization_config"];
  if (q != quantize) {
    report.problems.push_back("quantize_config.json differs from config.json quantization_config");
  }
  for (const char* key : {"quant_method", "bits", "group_size", "desc_act", "sym", "checkpoint_format"}) {
    if (!q.contains(key)) {
      report.problems.push_back(std::string("quantization_config has no key ") + key);
      return std::nullopt;
    }
  }
  FormatSettings settings;
  settings.bits = q["bits"].get<int>();
  settings.group_size = q["group_size"].get<Index>();
  settings.desc_act = q["desc_act"].get<bool>();
  settings.sym = q["sym"].get<bool>();
  settings.v1 = q["checkpoint_format"] == "gptq";
  if (q["quant_method"] != "gptq") {
    report.problems.push_back("quant_method is " + q["quant_method"].dump() + "; expected \"gptq\"");
  }
  if (settings.bits != 2 && settings.bits != 3 && settings.bits != 4 && settings.bits != 8) {
    report.problems.push_back("bits is " + std::to_string(settings.bits) + "; expected 2, 3, 4 or 8");
    return std::nullopt;
  }
  if (q["checkpoint_format"] != "gptq" && q["checkpoint_format"] != "gptq_v2") {
    report.problems.push_back("checkpoint_format is " + q["checkpoint_format"].dump());
  }
  if (q.contains("dynamic") && q["dynamic"].is_object()) {
    for (const auto& [key, value] : q["dynamic"].items()) {
      if (key.rfind("-:", 0) == 0) {
        continue;
      }
      const std::string pattern = key.rfind("+:", 0) == 0 ? key.substr(2) : key;
      settings.overrides.emplace_back(std::regex(pattern), value.value("bits", settings.bits),
                                      value.value("group_size", settings.group_size));
    }
  }
  if (!settings.sym && settings.v1) {
    report.problems.push_back("asymmetric grids need checkpoint_format gptq_v2 (v1 zero points underflow)");
  }
  return settings;
}

void expect_shape(const SafetensorsFolder& tensors, const std::string& name, Dtype dtype,
                  std::vector<int64_t> shape, VerifyReport& report) {
  if (!tensors.contains(name)) {
    report.problems.push_back(name + " is missing");
    return;
  }
  const TensorInfo& info = tensors.info(name);
  if (info.dtype != dtype || info.shape != shape) {
    std::string expected = dtype_name(dtype) + " [";
    for (size_t i = 0; i < shape.size(); ++i) expected += (i ? ", " : "") + std::to_string(shape[i]);
    std::string found = dtype_name(info.dtype) + " [";
    for (size_t i = 0; i < info.shape.size(); ++i) found += (i ? ", " : "") + std::to_string(info.shape[i]);
    report.problems.push_back(name + " is " + found + "]; expected " + expected + "]");
  }
}

// Unpacks one module and returns its dequantized weight, or nothing after recording why not.
std::optional<Matrix> unpack_module(const SafetensorsFolder& tensors, const std::string& prefix,
                                    const FormatSettings& format, VerifyReport& report) {
  const FormatSettings settings = format.for_module(prefix);
  const size_t problems_before = report.problems.size();
  if (tensors.contains(prefix + ".weight")) {
    report.problems.push_back(prefix + ".weight must be absent next to " + prefix + ".qweight");
  }
  if (!tensors.contains(prefix + ".g_idx") || !tensors.contains(prefix + ".scales")) {
    report.problems.push_back(prefix + " lacks g_idx or scales");
    return std::nullopt;
  }
  const int bits = settings.bits;
  const int64_t in = tensors.info(prefix + ".g_idx").shape.at(0);
  const int64_t out = tensors.info(prefix + ".scales").shape.at(1);
  const int64_t groups = tensors.info(prefix + ".scales").shape.at(0);
  const int64_t expected_groups = settings.group_size > 0 ? (in + settings.group_size - 1) / settings.group_size : 1;
  if (groups != expected_groups) {
    report.problems.push_back(prefix + ".scales has " + std::to_string(groups) + " groups; expected " +
                              std::to_string(expected_groups));
  }
  expect_shape(tensors, prefix + ".qweight", Dtype::I32, {in * bits / 32, out}, report);
  expect_shape(tensors, prefix + ".qzeros", Dtype::I32, {groups, out * bits / 32}, report);
  expect_shape(tensors, prefix + ".scales", Dtype::F16, {groups, out}, report);
  if (report.problems.size() != problems_before) {
    return std::nullopt;
  }
  const MatrixI qweight = tensors.file_of(prefix + ".qweight").read_i32_matrix(prefix + ".qweight");
  const MatrixI qzeros = tensors.file_of(prefix + ".qzeros").read_i32_matrix(prefix + ".qzeros");
  const VectorI g_idx = tensors.file_of(prefix + ".g_idx").read_i32_vector(prefix + ".g_idx");
  const std::vector<uint16_t> scale_bits = tensors.file_of(prefix + ".scales").read_f16_bits(prefix + ".scales");
  const int32_t half_range = int32_t{1} << (bits - 1);
  // qzeros streams run along the output dimension of each group's row.
  const MatrixI qzeros_t = qzeros.transpose();
  MatrixI zeros(groups, out);
  for (int64_t g = 0; g < groups; ++g) {
    for (int64_t o = 0; o < out; ++o) {
      zeros(g, o) = stream_value(qzeros_t, g, o, bits) + (settings.v1 ? 1 : 0);
    }
  }
  Matrix weight(out, in);
  for (int64_t i = 0; i < in; ++i) {
    const int32_t g = g_idx(i);
    if (g < 0 || g >= groups) {
      report.problems.push_back(prefix + ".g_idx[" + std::to_string(i) + "] = " + std::to_string(g) +
                                " is outside [0, " + std::to_string(groups) + ")");
      return std::nullopt;
    }
    if (!settings.desc_act && settings.group_size > 0 && g != i / settings.group_size) {
      report.problems.push_back(prefix + ".g_idx[" + std::to_string(i) + "] = " + std::to_string(g) +
                                " but desc_act is false, which needs i / group_size");
      return std::nullopt;
    }
    for (int64_t o = 0; o < out; ++o) {
      const int32_t code = stream_value(qweight, o, i, bits);
      const int32_t zero = zeros(g, o);
      if (settings.sym && zero != half_range) {
        report.problems.push_back(prefix + ": symmetric zero point at group " + std::to_string(g) +
                                  ", output " + std::to_string(o) + " is " + std::to_string(zero) +
                                  "; expected " + std::to_string(half_range));
        return std::nullopt;
      }
      const float scale = half_to_float(scale_bits[static_cast<size_t>(g * out + o)]);
      weight(o, i) = scale * static_cast<float>(code - zero);
    }
  }
  return weight;
}

bool same_bits(const Matrix& a, const Matrix& b) {
  return a.rows() == b.rows() && a.cols() == b.cols() &&
         std::memcmp(a.data(), b.data(), sizeof(float) * static_cast<size_t>(a.size())) == 0;
}

}  // namespace

VerifyReport verify_gptq_checkpoint(const std::filesystem::path& gptq_dir,
                                    const std::optional<std::filesystem::path>& dequantized_dir) {
  VerifyReport report;
  const auto settings = check_config(gptq_dir, report);
  if (!settings) {
    return report;
  }
  const SafetensorsFolder tensors(gptq_dir);
  std::optional<SafetensorsFolder> reference;
  if (dequantized_dir) {
    reference.emplace(*dequantized_dir);
  }
  const std::string suffix = ".qweight";
  for (const std::string& name : tensors.tensor_names()) {
    if (name.size() <= suffix.size() || name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0) {
      continue;
    }
    const std::string prefix = name.substr(0, name.size() - suffix.size());
    const auto weight = unpack_module(tensors, prefix, *settings, report);
    if (!weight) {
      continue;
    }
    ++report.modules;
    if (reference) {
      const Matrix expected = reference->file_of(prefix + ".weight").read_matrix(prefix + ".weight");
      if (!same_bits(*weight, expected)) {
        report.problems.push_back(prefix + ": unpacked weights differ from the dequantized checkpoint");
        continue;
      }
      report.weights += weight->size();
    }
  }
  if (report.modules == 0) {
    report.problems.push_back(gptq_dir.string() + " has no quantized module (no .qweight tensor)");
  }
  return report;
}

}  // namespace magrq::model
