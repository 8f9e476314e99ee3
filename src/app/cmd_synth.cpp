// `magrq synth`: a random-weight Llama checkpoint of a published shape (or any
// config.json), with a byte-level tokenizer and random calibration text, so that a run
// can be tried without real weights or rehearsed at full shape.
#include <spdlog/spdlog.h>

#include <fstream>
#include <string>

#include "app/commands.hpp"
#include "core/error.hpp"
#include "model/synthetic_checkpoint.hpp"

namespace magrq::app {

namespace {

struct SynthArguments {
  std::string shape = "small";
  int layers = 0;
  std::string out;
  uint64_t seed = 0;
  size_t text_bytes = 400000;
};

int run_synth(const SynthArguments& a) {
  nlohmann::json config;
  if (std::filesystem::is_regular_file(a.shape)) {
    std::ifstream stream(a.shape);
    config = nlohmann::json::parse(stream, nullptr, false);
    if (config.is_discarded()) {
      throw ConfigError("--shape " + a.shape + " is not valid JSON");
    }
    if (a.layers > 0) {
      config["num_hidden_layers"] = a.layers;
    }
  } else {
    config = model::published_llama_config(a.shape, a.layers);
  }
  if (config.value("vocab_size", 0) < 259) {
    throw ConfigError("vocab_size " + std::to_string(config.value("vocab_size", 0)) +
                      " is too small for the byte tokenizer; expected at least 259");
  }
  const std::filesystem::path out(a.out);
  model::SyntheticCheckpointOptions options;
  options.seed = a.seed;
  model::write_synthetic_checkpoint(out, config, options);
  model::write_byte_tokenizer(out);
  model::write_random_text(out / "calibration.txt", a.text_bytes, a.seed);
  spdlog::info("wrote {}: shape {}, {} layers, hidden {}, intermediate {}, random weights (seed {}), "
               "byte tokenizer, calibration.txt ({} bytes)",
               out.string(), a.shape, config["num_hidden_layers"].get<int>(), config["hidden_size"].get<int>(),
               config["intermediate_size"].get<int>(), a.seed, a.text_bytes);
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
      ->capture_default_str();
  sub->add_option("--out", a->out, "Output folder")->required();
  sub->add_option("--seed", a->seed, "Random seed")->capture_default_str();
  sub->add_option("--text-bytes", a->text_bytes, "Size of calibration.txt in bytes")->capture_default_str();
  table[sub] = [a] { return run_synth(*a); };
}

}  // namespace magrq::app
