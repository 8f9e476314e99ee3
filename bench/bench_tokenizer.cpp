// Tokenizer speed on the whole WikiText-2 test file (1.3 MB), the text that GPTQ-style
// perplexity evaluation tokenizes. For each of the three tokenizers of the test data it
// times the load, the first encode with an empty word cache, a repeated encode with a
// warm cache, and the decode.
//
// Usage: bench_tokenizer [DATA_DIR]. DATA_DIR defaults to $MAGRQ_DATA_DIR, else
// ../shared/data (right when run from the repository root).
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "bench_common.hpp"
#include "model/tokenizer.hpp"

namespace {

using magrq::model::Tokenizer;

std::filesystem::path data_dir(int argc, char** argv) {
  if (argc > 1) return argv[1];
  if (const char* from_env = std::getenv("MAGRQ_DATA_DIR")) return from_env;
  return "../shared/data";
}

// The Hugging Face wikitext rows joined by blank lines, as GPTQ evaluation builds them:
// every line keeps its newline, and a blank line (" \n") becomes an empty row.
std::string wikitext_hf_join(const std::filesystem::path& raw_file) {
  std::ifstream stream(raw_file, std::ios::binary);
  if (!stream) {
    throw std::runtime_error("failed to open " + raw_file.string() +
                             "; pass the data folder as the first argument");
  }
  std::string text;
  std::string line;
  bool first = true;
  while (std::getline(stream, line)) {
    line += '\n';
    if (line == " \n") line.clear();
    if (!first) text += "\n\n";
    text += line;
    first = false;
  }
  return text;
}

double seconds_of(const std::function<void()>& fn) {
  const auto start = std::chrono::steady_clock::now();
  fn();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  const std::filesystem::path data = data_dir(argc, argv);
  const std::string text = wikitext_hf_join(data / "text/wikitext-2-raw/wiki.test.raw");
  const double megabytes = static_cast<double>(text.size()) / 1e6;
  const std::vector<std::pair<std::string, std::string>> tokenizers = {
      {"llama3", "tokenizers/llama3"},
      {"mistral7b", "tokenizers/mistral-7b"},
      {"stories260K", "models/stories260K-hf"},
  };

  std::vector<magrq::bench::Result> results;
  for (const auto& [name, folder] : tokenizers) {
    const std::filesystem::path dir = data / folder;
    const double load = magrq::bench::best_seconds([&] { Tokenizer::from_directory(dir); }, 2);

    const Tokenizer tokenizer = Tokenizer::from_directory(dir);
    std::vector<int32_t> ids;
    const double cold = seconds_of([&] { ids = tokenizer.encode(text, false); });
    const double warm = magrq::bench::best_seconds([&] { ids = tokenizer.encode(text, false); }, 3);
    std::string decoded;
    const double decode = magrq::bench::best_seconds([&] { decoded = tokenizer.decode(ids); }, 3);
    const auto stats = tokenizer.cache_stats();

    const nlohmann::json extra = {{"tokens", ids.size()},
                                  {"text_mb", megabytes},
                                  {"cache_entries", stats.entries},
                                  {"round_trip", decoded == text}};
    results.push_back({"tokenizer/" + name + "/load", load, 0, nlohmann::json::object()});
    results.push_back({"tokenizer/" + name + "/encode_wikitext_cold", cold, 0,
                       {{"mb_per_s", megabytes / cold}}});
    results.push_back({"tokenizer/" + name + "/encode_wikitext_warm", warm, 0,
                       {{"mb_per_s", megabytes / warm}}});
    results.push_back({"tokenizer/" + name + "/decode_wikitext", decode, 0, extra});
  }
  magrq::bench::print_results(results);
  return 0;
}
