// magrq eval: perplexity of a Llama checkpoint folder on a text source, GPTQ protocol.
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>

#include "app/commands.hpp"
#include "core/error.hpp"
#include "model/checkpoint.hpp"
#include "model/perplexity.hpp"
#include "model/text_source.hpp"
#include "model/tokenizer.hpp"

namespace magrq::app {
namespace {

struct EvalOptions {
  std::string model;  // folder with config.json, safetensors weights and tokenizer.json
  std::string data;   // KIND:PATH[@A:B], see model/text_source.hpp
  int64_t seqlen = 2048;        // tokens per window, >= 2
  int64_t max_windows = 0;      // 0 = all windows
  int64_t batch_windows = 16;   // windows per pass through the layers, >= 1
  int64_t c4_windows = 256;     // c4 only: windows drawn, >= 1
  uint64_t seed = 0;            // c4 only

  model::WindowOptions window_options() const {
    model::WindowOptions options;
    options.seqlen = seqlen;
    options.max_windows = max_windows;
    options.c4_windows = c4_windows;
    options.seed = seed;
    return options;
  }
};

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

int run_eval(const EvalOptions& options) {
  const model::TextSpec spec = model::TextSpec::parse(options.data);
  const model::WindowOptions window_options = options.window_options();
  window_options.validate();
  model::PerplexityOptions perplexity_options;
  perplexity_options.batch_windows = options.batch_windows;
  perplexity_options.validate();

  const auto start = std::chrono::steady_clock::now();
  const model::Checkpoint checkpoint(options.model);
  const model::Tokenizer tokenizer = model::Tokenizer::from_directory(options.model);
  if (options.seqlen > checkpoint.config().max_position_embeddings) {
    spdlog::warn("--seqlen {} exceeds max_position_embeddings {} of {}; positions beyond it were "
                 "never trained",
                 options.seqlen, checkpoint.config().max_position_embeddings, options.model);
  }

  // GPTQ tokenizes the text as the tokenizer does by default, which for Llama adds BOS.
  const bool add_bos = tokenizer.adds_bos_by_default();
  const model::TokenWindows windows = model::make_windows(
      spec, [&](std::string_view text) { return tokenizer.encode(text, add_bos); }, window_options);
  spdlog::info("{}: {} tokens, {} windows of {} tokens (tokenized in {:.2f} s)", spec.spec,
               windows.source_tokens, windows.windows.size(), options.seqlen, seconds_since(start));

  const auto forward_start = std::chrono::steady_clock::now();
  const std::vector<double> losses = model::window_losses(checkpoint, windows.windows, perplexity_options);
  const model::PerplexityResult result = model::perplexity_from_losses(losses);
  spdlog::info("forward passes took {:.2f} s; total {:.2f} s", seconds_since(forward_start),
               seconds_since(start));

  std::printf("perplexity: %.4f\nmean_loss: %.6f\nwindows: %lld\nseqlen: %lld\n"
              "evaluated_tokens: %lld\nsource_tokens: %lld\n",
              result.perplexity, result.mean_loss, static_cast<long long>(result.windows),
              static_cast<long long>(options.seqlen),
              static_cast<long long>(result.windows * options.seqlen),
              static_cast<long long>(windows.source_tokens));
  return 0;
}

}  // namespace

void add_eval_command(CLI::App& root, CommandTable& table) {
  CLI::App* command = root.add_subcommand(
      "eval", "Measure perplexity on non-overlapping windows of a text, as GPTQ does");
  auto options = std::make_shared<EvalOptions>();
  command->add_option("--model", options->model,
                      "Checkpoint folder with config.json, safetensors weights and tokenizer.json")
      ->required();
  command->add_option("--data", options->data,
                      "Text source KIND:PATH with KIND wikitext2, c4 or text; wikitext2 and text "
                      "take a character range PATH@A:B (for example @0.6:1.0 for the last 40%)")
      ->required();
  command->add_option("--seqlen", options->seqlen, "Tokens per window")->capture_default_str();
  command->add_option("--max-windows", options->max_windows,
                      "Evaluate at most this many windows (0 = all)")
      ->capture_default_str();
  command->add_option("--batch-windows", options->batch_windows,
                      "Windows that go through each loaded layer together")
      ->capture_default_str();
  command->add_option("--c4-windows", options->c4_windows, "c4 only: number of windows drawn")
      ->capture_default_str();
  command->add_option("--seed", options->seed, "c4 only: seed of the window sampler")
      ->capture_default_str();
  table[command] = [options] { return run_eval(*options); };
}

}  // namespace magrq::app
