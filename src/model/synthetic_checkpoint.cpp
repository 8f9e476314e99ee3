#include "model/synthetic_checkpoint.hpp"

#include <algorithm>
#include <bit>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>

#include "core/error.hpp"
#include "core/synthetic.hpp"
#include "model/llama_config.hpp"

namespace magrq::model {

namespace {

static_assert(std::endian::native == std::endian::little,
              "safetensors data is little-endian; the writer copies host floats as they are");

// Rows drawn from one NormalSampler. Each group of rows has its own seed, so blocks can
// be drawn in parallel and a seed gives the same tensor for any thread count.
constexpr Index kRowsPerStream = 16;
// Elements generated and written per block: 4 Mi floats, 16 MiB, bounds the memory.
constexpr Index kBlockElements = Index{1} << 22;

// splitmix64's finaliser: decorrelates seeds derived from (seed, tensor, row group).
uint64_t mix_seed(uint64_t value) {
  value += 0x9E3779B97F4A7C15ull;
  value = (value ^ (value >> 30)) * 0xBF58476D1CE4E5B9ull;
  value = (value ^ (value >> 27)) * 0x94D049BB133111EBull;
  return value ^ (value >> 31);
}

// One tensor of the checkpoint, generated when it is written.
struct PlannedTensor {
  enum class Fill { gaussian, norm };

  std::string name;
  std::vector<int64_t> shape;  // {rows, cols} or {cols}
  Fill fill = Fill::gaussian;
  uint64_t seed = 0;
  std::vector<Index> outlier_columns;  // gaussian: scaled columns; norm: large entries
  double outlier_value = 1.0;          // gaussian: column factor; norm: the entry's value

  Index rows() const { return shape.size() == 2 ? shape[0] : 1; }
  Index cols() const { return shape.back(); }
  uint64_t bytes(Dtype dtype) const {
    return static_cast<uint64_t>(rows()) * static_cast<uint64_t>(cols()) *
           static_cast<uint64_t>(dtype_bits(dtype) / 8);
  }
};

std::vector<PlannedTensor> plan_tensors(const LlamaConfig& config,
                                        const SyntheticCheckpointOptions& options) {
  std::vector<PlannedTensor> tensors;
  const auto add_matrix = [&](std::string name, Index rows, Index cols, std::vector<Index> outliers) {
    PlannedTensor tensor;
    tensor.name = std::move(name);
    tensor.shape = {rows, cols};
    tensor.seed = mix_seed(options.seed ^ mix_seed(tensors.size()));
    tensor.outlier_columns = std::move(outliers);
    tensor.outlier_value = options.outlier_scale;
    tensors.push_back(std::move(tensor));
  };
  const auto add_norm = [&](std::string name, std::vector<Index> outliers) {
    PlannedTensor tensor;
    tensor.name = std::move(name);
    tensor.shape = {config.hidden_size};
    tensor.fill = PlannedTensor::Fill::norm;
    tensor.outlier_columns = std::move(outliers);
    tensor.outlier_value = options.norm_outlier_scale;
    tensors.push_back(std::move(tensor));
  };
  const auto norm_channels = [&](LinearInput input) {
    return synthetic_outlier_channels(config.hidden_size, options.norm_outlier_channels, options.seed, input);
  };

  add_matrix("model.embed_tokens.weight", config.vocab_size, config.hidden_size, {});
  for (Index layer = 0; layer < config.num_hidden_layers; ++layer) {
    const std::string prefix = "model.layers." + std::to_string(layer);
    add_norm(prefix + ".input_layernorm.weight", norm_channels(LinearInput::attn_in));
    add_norm(prefix + ".post_attention_layernorm.weight", norm_channels(LinearInput::mlp_in));
    for (const LinearKind kind : kAllLinearKinds) {
      const LinearShape shape = linear_shape(config, kind);
      add_matrix(linear_module_name(layer, kind) + ".weight", shape.out_features, shape.in_features,
                 synthetic_outlier_channels(shape.in_features, options.outlier_channels, options.seed,
                                            input_of(kind)));
    }
  }
  add_norm("model.norm.weight", {});
  if (!config.tie_word_embeddings) {
    add_matrix("lm_head.weight", config.vocab_size, config.hidden_size, {});
  }
  return tensors;
}

// Rows [row_begin, row_end) of a planned tensor as float32, row-major.
std::vector<float> generate_rows(const PlannedTensor& tensor, Index row_begin, Index row_end,
                                 double weight_std) {
  const Index cols = tensor.cols();
  std::vector<float> values(static_cast<size_t>((row_end - row_begin) * cols));
  if (tensor.fill == PlannedTensor::Fill::norm) {
    std::fill(values.begin(), values.end(), 1.0f);
    for (const Index c : tensor.outlier_columns) {
      values[static_cast<size_t>(c)] = static_cast<float>(tensor.outlier_value);
    }
    return values;
  }
  MAGRQ_CHECK(row_begin % kRowsPerStream == 0, "row block starts at ", row_begin);
  const Index groups = (row_end - row_begin + kRowsPerStream - 1) / kRowsPerStream;
#pragma omp parallel for schedule(static)
  for (Index g = 0; g < groups; ++g) {
    const Index first = row_begin + g * kRowsPerStream;
    const Index last = std::min(row_end, first + kRowsPerStream);
    NormalSampler normal(mix_seed(tensor.seed ^ static_cast<uint64_t>(first / kRowsPerStream)));
    float* out = values.data() + (first - row_begin) * cols;
    for (Index i = 0; i < (last - first) * cols; ++i) {
      out[i] = static_cast<float>(normal.next() * weight_std);
    }
    for (Index r = 0; r < last - first; ++r) {
      for (const Index c : tensor.outlier_columns) {
        out[r * cols + c] *= static_cast<float>(tensor.outlier_value);
      }
    }
  }
  return values;
}

void append_encoded(const std::vector<float>& values, Dtype dtype, std::vector<char>& bytes) {
  bytes.clear();
  if (dtype == Dtype::F32) {
    bytes.resize(values.size() * sizeof(float));
    std::memcpy(bytes.data(), values.data(), bytes.size());
    return;
  }
  bytes.resize(values.size() * sizeof(uint16_t));
  auto* out = reinterpret_cast<uint16_t*>(bytes.data());
  for (size_t i = 0; i < values.size(); ++i) {
    out[i] = dtype == Dtype::F16 ? float_to_half(values[i]) : float_to_bfloat16(values[i]);
  }
}

// The header of one shard: {"__metadata__": {"format": "pt"}, name: {dtype, shape,
// data_offsets}} with offsets in write order, padded with spaces to a multiple of 8.
std::string shard_header(const std::vector<const PlannedTensor*>& tensors, Dtype dtype) {
  nlohmann::ordered_json header = {{"__metadata__", {{"format", "pt"}}}};
  uint64_t offset = 0;
  for (const PlannedTensor* tensor : tensors) {
    const uint64_t end = offset + tensor->bytes(dtype);
    header[tensor->name] = {{"dtype", dtype_name(dtype)}, {"shape", tensor->shape}, {"data_offsets", {offset, end}}};
    offset = end;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  return text;
}

void stream_tensor(std::ofstream& out, const PlannedTensor& tensor, const SyntheticCheckpointOptions& options) {
  const Index cols = tensor.cols();
  const Index block_rows =
      std::max(kRowsPerStream, (kBlockElements / std::max<Index>(1, cols)) / kRowsPerStream * kRowsPerStream);
  std::vector<char> bytes;
  for (Index begin = 0; begin < tensor.rows(); begin += block_rows) {
    const Index end = std::min(tensor.rows(), begin + block_rows);
    append_encoded(generate_rows(tensor, begin, end, options.weight_std), options.dtype, bytes);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }
}

// Writes one shard under a temporary name and renames it when complete, so a crash never
// leaves a truncated file under the final name.
void write_shard(const std::filesystem::path& path, const std::vector<const PlannedTensor*>& tensors,
                 const SyntheticCheckpointOptions& options) {
  const std::string header = shard_header(tensors, options.dtype);
  auto partial = path;
  partial += ".partial";
  try {
    std::ofstream out(partial, std::ios::binary | std::ios::trunc);
    const uint64_t length = header.size();
    out.write(reinterpret_cast<const char*>(&length), sizeof length);
    out.write(header.data(), static_cast<std::streamsize>(header.size()));
    for (const PlannedTensor* tensor : tensors) {
      stream_tensor(out, *tensor, options);
    }
    out.close();
    if (!out) {
      throw DataError("writing " + partial.string() + " failed (disk full or not writable?)");
    }
    std::filesystem::rename(partial, path);
  } catch (...) {
    std::error_code ignored;
    std::filesystem::remove(partial, ignored);
    throw;
  }
}

std::vector<std::vector<const PlannedTensor*>> split_shards(const std::vector<PlannedTensor>& tensors,
                                                           const SyntheticCheckpointOptions& options) {
  std::vector<std::vector<const PlannedTensor*>> shards;
  uint64_t shard_bytes = 0;
  for (const PlannedTensor& tensor : tensors) {
    const uint64_t bytes = tensor.bytes(options.dtype);
    if (shards.empty() || (shard_bytes > 0 && shard_bytes + bytes > options.max_shard_bytes)) {
      shards.emplace_back();
      shard_bytes = 0;
    }
    shards.back().push_back(&tensor);
    shard_bytes += bytes;
  }
  return shards;
}

std::string shard_name(size_t index, size_t count) {
  char name[64];
  std::snprintf(name, sizeof(name), "model-%05zu-of-%05zu.safetensors", index + 1, count);
  return name;
}

// Removes the checkpoint files a previous write may have left in dir: a stale
// model.safetensors would shadow new shards, and stale shards would confuse a reader.
void remove_previous_checkpoint(const std::filesystem::path& dir) {
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    const bool shard = name.starts_with("model-") && name.ends_with(".safetensors");
    if (shard || name == "model.safetensors" || name == "model.safetensors.index.json") {
      std::filesystem::remove(entry.path());
    }
  }
}

void write_text_file(const std::filesystem::path& path, const std::string& text) {
  std::ofstream stream(path);
  stream << text;
  stream.close();
  if (!stream) {
    throw DataError("writing " + path.string() + " failed");
  }
}

std::string torch_dtype_name(Dtype dtype) {
  switch (dtype) {
    case Dtype::F16: return "float16";
    case Dtype::BF16: return "bfloat16";
    default: return "float32";
  }
}

}  // namespace

void SyntheticCheckpointOptions::validate() const {
  if (dtype != Dtype::F32 && dtype != Dtype::F16 && dtype != Dtype::BF16) {
    throw ConfigError("invalid dtype " + dtype_name(dtype) + ": expected F32, F16 or BF16");
  }
  if (!(weight_std > 0.0)) {
    throw ConfigError(detail::concat("invalid weight_std ", weight_std, ": expected > 0"));
  }
  if (outlier_channels < 0) {
    throw ConfigError(detail::concat("invalid outlier_channels ", outlier_channels, ": expected >= 0"));
  }
  if (!(outlier_scale >= 1.0)) {
    throw ConfigError(detail::concat("invalid outlier_scale ", outlier_scale, ": expected >= 1"));
  }
  if (norm_outlier_channels < 0) {
    throw ConfigError(detail::concat("invalid norm_outlier_channels ", norm_outlier_channels, ": expected >= 0"));
  }
  if (!(norm_outlier_scale >= 1.0)) {
    throw ConfigError(detail::concat("invalid norm_outlier_scale ", norm_outlier_scale, ": expected >= 1"));
  }
  if (max_shard_bytes == 0) {
    throw ConfigError("invalid max_shard_bytes 0: expected > 0");
  }
}

std::vector<Index> synthetic_outlier_channels(Index width, int count, uint64_t seed, LinearInput input) {
  if (count > width) {
    throw ConfigError(detail::concat("cannot pick ", count, " outlier channels among ", width,
                                     " channels of input ", linear_input_name(input)));
  }
  // A partial Fisher-Yates shuffle: the first `count` entries are a uniform sample.
  std::mt19937_64 engine(mix_seed(seed ^ mix_seed(0x6f75746c69657273ull + static_cast<uint64_t>(input))));
  std::vector<Index> channels(static_cast<size_t>(width));
  for (Index i = 0; i < width; ++i) {
    channels[static_cast<size_t>(i)] = i;
  }
  for (int k = 0; k < count; ++k) {
    const uint64_t remaining = static_cast<uint64_t>(width - k);
    const auto pick = static_cast<size_t>(k + static_cast<Index>(engine() % remaining));
    std::swap(channels[static_cast<size_t>(k)], channels[pick]);
  }
  channels.resize(static_cast<size_t>(count));
  std::sort(channels.begin(), channels.end());
  return channels;
}

void write_byte_tokenizer(const std::filesystem::path& dir) {
  nlohmann::ordered_json vocab = nlohmann::ordered_json::object();
  vocab["<unk>"] = 0;
  vocab["<s>"] = 1;
  vocab["</s>"] = 2;
  for (int byte = 0; byte < 256; ++byte) {
    char piece[8];
    std::snprintf(piece, sizeof(piece), "<0x%02X>", byte);
    vocab[piece] = byte + 3;
  }
  nlohmann::ordered_json added = nlohmann::ordered_json::array();
  const char* specials[] = {"<unk>", "<s>", "</s>"};
  for (int id = 0; id < 3; ++id) {
    added.push_back({{"id", id}, {"content", specials[id]}, {"single_word", false}, {"lstrip", false},
                     {"rstrip", false}, {"normalized", false}, {"special", true}});
  }
  const nlohmann::ordered_json tokenizer = {
      {"version", "1.0"},
      {"added_tokens", added},
      {"normalizer", {{"type", "Sequence"},
                      {"normalizers", {{{"type", "Prepend"}, {"prepend", "\u2581"}},
                                       {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", "\u2581"}}}}}},
      {"pre_tokenizer", nullptr},
      {"post_processor", nullptr},
      {"decoder", {{"type", "Sequence"},
                   {"decoders", {{{"type", "Replace"}, {"pattern", {{"String", "\u2581"}}}, {"content", " "}},
                                 {{"type", "ByteFallback"}},
                                 {{"type", "Fuse"}},
                                 {{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}}}}}},
      {"model", {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", "<unk>"},
                 {"continuing_subword_prefix", nullptr}, {"end_of_word_suffix", nullptr}, {"fuse_unk", true},
                 {"byte_fallback", true}, {"vocab", vocab}, {"merges", nlohmann::ordered_json::array()}}}};
  // "\u2581" (the SentencePiece word marker) is a universal character name, written as UTF-8.
  std::ofstream(dir / "tokenizer.json") << tokenizer.dump(2) << "\n";
  const nlohmann::ordered_json config = {{"tokenizer_class", "LlamaTokenizer"}, {"bos_token", "<s>"},
                                         {"eos_token", "</s>"}, {"unk_token", "<unk>"},
                                         {"add_bos_token", true}, {"add_eos_token", false}};
  std::ofstream(dir / "tokenizer_config.json") << config.dump(2) << "\n";
}

void write_random_text(const std::filesystem::path& path, size_t bytes, uint64_t seed) {
  static const char* syllables[] = {"ka", "lo", "mi", "ne", "ru", "sa", "to", "vi", "da", "po",
                                    "en", "ar", "is", "on", "ul", "be", "fi", "go", "he", "ju"};
  std::mt19937_64 engine(seed);
  std::string text;
  while (text.size() < bytes) {
    const int words = 5 + static_cast<int>(engine() % 10);
    for (int w = 0; w < words; ++w) {
      const int parts = 1 + static_cast<int>(engine() % 3);
      for (int p = 0; p < parts; ++p) {
        text += syllables[engine() % 20];
      }
      text += w + 1 < words ? " " : ".";
    }
    text += engine() % 4 == 0 ? "\n\n" : " ";
  }
  std::ofstream(path) << text;
}

nlohmann::json published_llama_config(const std::string& shape, int layers) {
  nlohmann::json config = small_llama_config();
  config["tie_word_embeddings"] = false;
  config["max_position_embeddings"] = 4096;
  if (shape == "llama2-7b") {
    config.update({{"hidden_size", 4096}, {"intermediate_size", 11008}, {"num_hidden_layers", 32},
                   {"num_attention_heads", 32}, {"num_key_value_heads", 32}, {"vocab_size", 32000}});
  } else if (shape == "llama3-8b") {
    config.update({{"hidden_size", 4096}, {"intermediate_size", 14336}, {"num_hidden_layers", 32},
                   {"num_attention_heads", 32}, {"num_key_value_heads", 8}, {"vocab_size", 128256},
                   {"rope_theta", 500000.0}, {"max_position_embeddings", 8192}});
  } else if (shape == "llama2-70b") {
    config.update({{"hidden_size", 8192}, {"intermediate_size", 28672}, {"num_hidden_layers", 80},
                   {"num_attention_heads", 64}, {"num_key_value_heads", 8}, {"vocab_size", 32000}});
  } else if (shape == "llama3-70b") {
    config.update({{"hidden_size", 8192}, {"intermediate_size", 28672}, {"num_hidden_layers", 80},
                   {"num_attention_heads", 64}, {"num_key_value_heads", 8}, {"vocab_size", 128256},
                   {"rope_theta", 500000.0}, {"max_position_embeddings", 8192}});
  } else if (shape != "small") {
    throw ConfigError("unknown shape '" + shape +
                      "'; expected small, llama2-7b, llama3-8b, llama2-70b, llama3-70b or a config.json path");
  }
  if (layers > 0) {
    config["num_hidden_layers"] = layers;
  }
  return config;
}

nlohmann::json small_llama_config() {
  return {{"architectures", {"LlamaForCausalLM"}},
          {"model_type", "llama"},
          {"hidden_size", 64},
          {"intermediate_size", 128},
          {"num_hidden_layers", 2},
          {"num_attention_heads", 4},
          {"num_key_value_heads", 2},
          {"vocab_size", 320},
          {"max_position_embeddings", 512},
          {"rms_norm_eps", 1e-5},
          {"rope_theta", 10000.0},
          {"hidden_act", "silu"},
          {"tie_word_embeddings", false},
          {"bos_token_id", 1},
          {"eos_token_id", 2},
          {"torch_dtype", "float32"}};
}

void write_synthetic_checkpoint(const std::filesystem::path& dir, const nlohmann::json& config_json,
                                const SyntheticCheckpointOptions& options) {
  options.validate();
  const LlamaConfig config = LlamaConfig::from_json(config_json, "synthetic config");
  if (config.attention_bias || config.mlp_bias) {
    throw ConfigError("synthetic checkpoints do not write biases; set attention_bias and mlp_bias false");
  }
  const std::vector<PlannedTensor> tensors = plan_tensors(config, options);
  const auto shards = split_shards(tensors, options);

  std::filesystem::create_directories(dir);
  remove_previous_checkpoint(dir);
  if (shards.size() == 1) {
    write_shard(dir / "model.safetensors", shards.front(), options);
  } else {
    nlohmann::ordered_json weight_map = nlohmann::ordered_json::object();
    uint64_t total_size = 0;
    for (size_t i = 0; i < shards.size(); ++i) {
      write_shard(dir / shard_name(i, shards.size()), shards[i], options);
      for (const PlannedTensor* tensor : shards[i]) {
        weight_map[tensor->name] = shard_name(i, shards.size());
        total_size += tensor->bytes(options.dtype);
      }
    }
    const nlohmann::ordered_json index = {{"metadata", {{"total_size", total_size}}}, {"weight_map", weight_map}};
    write_text_file(dir / "model.safetensors.index.json", index.dump(2) + "\n");
  }

  nlohmann::json written_config = config_json;
  written_config["torch_dtype"] = torch_dtype_name(options.dtype);
  write_text_file(dir / "config.json", written_config.dump(2) + "\n");
}

}  // namespace magrq::model
