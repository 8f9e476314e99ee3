// magrq generate: greedy (temperature 0) text generation from a Llama checkpoint folder.
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "app/commands.hpp"
#include "core/error.hpp"
#include "model/checkpoint.hpp"
#include "model/forward.hpp"
#include "model/tokenizer.hpp"

namespace magrq::app {
namespace {

struct GenerateOptions {
  std::string model;   // folder with config.json, safetensors weights and tokenizer.json
  std::string prompt;  // text to continue; empty starts from BOS alone
  int64_t max_new_tokens = 256;  // >= 0

  void validate() const {
    if (max_new_tokens < 0) {
      throw ConfigError(detail::concat("--max-new-tokens is ", max_new_tokens, "; expected 0 or more"));
    }
  }
};

const char* stop_reason_name(model::StopReason reason) {
  switch (reason) {
    case model::StopReason::max_new_tokens: return "max-new-tokens reached";
    case model::StopReason::stop_token: return "stop token";
    case model::StopReason::context_full: return "max_position_embeddings reached";
  }
  return "unknown";
}

// BOS ends generation as in llama2.c, whose stories are separated by BOS, and so does
// every EOS id of config.json, tokenizer_config.json and generation_config.json.
std::vector<int32_t> stop_tokens(const model::LlamaConfig& config, const model::Tokenizer& tokenizer) {
  std::vector<int32_t> stops = config.eos_token_ids;
  if (config.bos_token_id) {
    stops.push_back(*config.bos_token_id);
  }
  if (tokenizer.bos_id() >= 0) {
    stops.push_back(tokenizer.bos_id());
  }
  for (int32_t eos : tokenizer.eos_ids()) {
    stops.push_back(eos);
  }
  return stops;
}

std::vector<int32_t> encode_prompt(const model::Tokenizer& tokenizer, const std::string& prompt) {
  std::vector<int32_t> ids = tokenizer.encode(prompt, tokenizer.adds_bos_by_default());
  if (ids.empty()) {
    throw ConfigError("the prompt is empty and the tokenizer adds no BOS token; pass --prompt TEXT");
  }
  return ids;
}

int run_generate(const GenerateOptions& options) {
  options.validate();
  const auto start = std::chrono::steady_clock::now();
  const model::Checkpoint checkpoint(options.model);
  const model::Tokenizer tokenizer = model::Tokenizer::from_directory(options.model);
  const model::ResidentModel resident = model::ResidentModel::load(checkpoint);

  model::GenerationOptions generation;
  generation.max_new_tokens = options.max_new_tokens;
  generation.stop_tokens = stop_tokens(checkpoint.config(), tokenizer);
  std::vector<int32_t> ids = encode_prompt(tokenizer, options.prompt);
  const size_t prompt_tokens = ids.size();

  const model::GenerationResult result = model::generate_greedy(resident, ids, generation);
  ids.insert(ids.end(), result.new_tokens.begin(), result.new_tokens.end());
  const std::string text = tokenizer.decode(ids, /*skip_special_tokens=*/true);

  // The decoded text exactly, with no newline added, so output can be compared byte for byte.
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);

  const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
  spdlog::info("generated {} tokens after a {}-token prompt in {:.3f} s; stopped by {}",
               result.new_tokens.size(), prompt_tokens, elapsed.count(), stop_reason_name(result.reason));
  return 0;
}

}  // namespace

void add_generate_command(CLI::App& root, CommandTable& table) {
  CLI::App* command = root.add_subcommand(
      "generate", "Generate text greedily (argmax at every step) from a Llama checkpoint folder");
  auto options = std::make_shared<GenerateOptions>();
  command->add_option("--model", options->model,
                      "Checkpoint folder with config.json, safetensors weights and tokenizer.json")
      ->required();
  command->add_option("--prompt", options->prompt,
                      "Text to continue, encoded with the tokenizer's default BOS; empty starts from BOS");
  command->add_option("--max-new-tokens", options->max_new_tokens,
                      "Maximum number of tokens to generate after the prompt")
      ->capture_default_str();
  table[command] = [options] { return run_generate(*options); };
}

}  // namespace magrq::app
