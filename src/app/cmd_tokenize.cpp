// magrq tokenize: prints the token ids of a text file, to compare magrq's tokenizer with
// another implementation or to count the tokens of an evaluation text.
#include <CLI/CLI.hpp>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "app/commands.hpp"
#include "core/error.hpp"
#include "model/tokenizer.hpp"

namespace magrq::app {

namespace {

struct TokenizeOptions {
  // Folder with tokenizer.json and tokenizer_config.json (a Hugging Face model folder).
  std::filesystem::path tokenizer_dir;
  // The text to tokenize, read as raw bytes; it must be valid UTF-8.
  std::filesystem::path text_file;
  // Never prepend BOS. By default BOS comes first when the tokenizer adds it by default
  // (add_bos_token in tokenizer_config.json, or the post-processor template).
  bool no_bos = false;
  // Print only the number of ids.
  bool count_only = false;

  void validate() const {
    if (!std::filesystem::is_directory(tokenizer_dir)) {
      throw ConfigError("--tokenizer " + tokenizer_dir.string() +
                        ": folder not found; pass the model folder that contains tokenizer.json");
    }
    if (!std::filesystem::is_regular_file(text_file)) {
      throw ConfigError("--text-file " + text_file.string() + ": file not found");
    }
  }
};

std::string read_text_file(const std::filesystem::path& path) {
  std::ifstream stream(path, std::ios::binary);
  if (!stream) {
    throw DataError("failed to open " + path.string() + " for reading");
  }
  std::ostringstream contents;
  contents << stream.rdbuf();
  return contents.str();
}

void print_ids(const std::vector<int32_t>& ids) {
  std::string line;
  line.reserve(ids.size() * 6);
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (i > 0) line += ' ';
    line += std::to_string(ids[i]);
  }
  line += '\n';
  std::cout << line;
}

int run_tokenize(const TokenizeOptions& options) {
  options.validate();
  const auto tokenizer = model::Tokenizer::from_directory(options.tokenizer_dir);
  const std::string text = read_text_file(options.text_file);
  const bool add_bos = tokenizer.adds_bos_by_default() && !options.no_bos;
  const std::vector<int32_t> ids = tokenizer.encode(text, add_bos);
  if (options.count_only) {
    std::cout << ids.size() << '\n';
  } else {
    print_ids(ids);
  }
  return 0;
}

}  // namespace

void add_tokenize_command(CLI::App& root, CommandTable& table) {
  auto options = std::make_shared<TokenizeOptions>();
  CLI::App* command = root.add_subcommand(
      "tokenize", "Print the token ids of a text file on one line, separated by spaces");
  command->add_option("--tokenizer", options->tokenizer_dir,
                      "Folder with tokenizer.json and tokenizer_config.json")
      ->required();
  command->add_option("--text-file", options->text_file, "UTF-8 text file to tokenize")
      ->required();
  command->add_flag("--no-bos", options->no_bos,
                    "Do not prepend BOS (by default BOS is prepended when the tokenizer adds "
                    "it by default)");
  command->add_flag("--count", options->count_only, "Print only the number of tokens");
  table[command] = [options] { return run_tokenize(*options); };
}

}  // namespace magrq::app
