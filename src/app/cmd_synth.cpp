// `magrq synth`: a random-weight Llama checkpoint of a published shape (or any
// config.json), with a byte-level tokenizer and random calibration text, so that a run
// can be tried without real weights or rehearsed at full shape.
#include <spdlog/spdlog.h>

#include <chrono>
#include <fstream>
#include <string>

#include "app/commands.hpp"
#include "core/error.hpp"
#include "core/timing.hpp"
#include "model/synthetic_checkpoint.hpp"

namespace magrq::app {

namespace {

struct SynthArguments {
  std::string shape = "small";
  int layers = 0;
  std::string out;
  uint64_t seed = 0;
  size_t text_bytes = 400000;
  std::string dtype = "bf16";
  model::SyntheticCheckpointOptions checkpoint;
  double shard_gib = 5.0;
};

nlohmann::json read_config(const SynthArguments& a) {
  if (!std::filesystem::is_regular_file(a.shape)) {
    return model::published_llama_config(a.shape, a.layers);
  }
  std::ifstream stream(a.shape);
  nlohmann::json config = nlohmann::json::parse(stream, nullptr, false);
  if (config.is_discarded()) {
    throw ConfigError("--shape " + a.shape + " is not valid JSON");
  }
  if (a.layers > 0) {
    config["num_hidden_layers"] = a.layers;
  }
  return config;
}

model::Dtype parse_dtype(const std::string& name) {
  if (name == "f32") {
    return model::Dtype::F32;
  }
  if (name == "f16") {
    return model::Dtype::F16;
  }
  if (name == "bf16") {
    return model::Dtype::BF16;
  }
  throw ConfigError("invalid --dtype '" + name + "': expected f32, f16 or bf16");
}

int run_synth(const SynthArguments& a) {
  const auto start = std::chrono::steady_clock::now();
  const nlohmann::json config = read_config(a);
  if (config.value("vocab_size", 0) < 259) {
    throw ConfigError("vocab_size " + std::to_string(config.value("vocab_size", 0)) +
                      " is too small for the byte tokenizer; expected at least 259");
  }
  if (!(a.shard_gib > 0.0)) {
    throw ConfigError("invalid --shard-gib " + std::to_string(a.shard_gib) + ": expected > 0");
  }
  const std::filesystem::path out(a.out);
  model::SyntheticCheckpointOptions options = a.checkpoint;
  options.seed = a.seed;
  options.dtype = parse_dtype(a.dtype);
  options.max_shard_bytes = static_cast<uint64_t>(a.shard_gib * 1024.0 * 1024.0 * 1024.0);
  model::write_synthetic_checkpoint(out, config, options);
  model::write_byte_tokenizer(out);
  model::write_random_text(out / "calibration.txt", a.text_bytes, a.seed);
  spdlog::info("wrote {} in {:.1f} s: shape {}, {} layers, hidden {}, intermediate {}, {} random weights "
               "(seed {}, {} outlier input channels x{:g} per linear, {} RMSNorm outlier channels x{:g}), "
               "byte tokenizer, calibration.txt ({} bytes)",
               out.string(), seconds_since(start), a.shape, config["num_hidden_layers"].get<int>(),
               config["hidden_size"].get<int>(), config["intermediate_size"].get<int>(), a.dtype, a.seed,
               options.outlier_channels, options.outlier_scale, options.norm_outlier_channels,
               options.norm_outlier_scale, a.text_bytes);
  return 0;
}

}  // namespace

void add_synth_command(CLI::App& root, CommandTable& table) {
  auto a = std::make_shared<SynthArguments>();
  CLI::App* sub = root.add_subcommand(
      "synth", "Write a random-weight Llama checkpoint with a byte tokenizer and random calibration text");
  sub->add_option("--shape", a->shape,
                  "small, llama2-7b, llama3-8b, llama2-70b, llama3-70b, or a config.json file")
      ->capture_default_str();
  sub->add_option("--layers", a->layers, "Number of decoder layers (0 keeps the shape's own)")
      ->capture_default_str()
      ->check(CLI::Range(0, 100000));
  sub->add_option("--out", a->out, "Output folder")->required();
  sub->add_option("--seed", a->seed, "Random seed")->capture_default_str();
  sub->add_option("--text-bytes", a->text_bytes, "Size of calibration.txt in bytes")->capture_default_str();
  sub->add_option("--dtype", a->dtype, "Tensor element type: f32, f16 or bf16")->capture_default_str();
  sub->add_option("--outlier-channels", a->checkpoint.outlier_channels,
                  "Input channels per linear weight scaled by --outlier-scale")
      ->capture_default_str();
  sub->add_option("--outlier-scale", a->checkpoint.outlier_scale, "Factor of the outlier weight columns (>= 1)")
      ->capture_default_str();
  sub->add_option("--norm-outlier-channels", a->checkpoint.norm_outlier_channels,
                  "Hidden channels whose RMSNorm weight is --norm-outlier-scale (outlier activations)")
      ->capture_default_str();
  sub->add_option("--norm-outlier-scale", a->checkpoint.norm_outlier_scale,
                  "RMSNorm weight of the outlier hidden channels (>= 1)")
      ->capture_default_str();
  sub->add_option("--shard-gib", a->shard_gib, "Largest safetensors shard, in GiB")->capture_default_str();
  table[sub] = [a] { return run_synth(*a); };
}

}  // namespace magrq::app
