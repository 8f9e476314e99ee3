#include "model/text_source.hpp"

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>

#include "core/error.hpp"

namespace magrq::model {
namespace {

using detail::concat;

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw DataError(concat("text file ", path, " not found or not readable"));
  }
  std::ostringstream content;
  content << in.rdbuf();
  return content.str();
}

// A number that fills the whole of text, or nullopt.
std::optional<double> parse_number(const std::string& text) {
  if (text.empty()) {
    return std::nullopt;
  }
  char* end = nullptr;
  const double value = std::strtod(text.c_str(), &end);
  if (end != text.c_str() + text.size()) {
    return std::nullopt;
  }
  return value;
}

// Splits "PATH@A:B" into the path and the range when the tail reads as two numbers.
void split_range(const std::string& rest, TextSpec& spec) {
  spec.path = rest;
  const size_t at = rest.rfind('@');
  if (at == std::string::npos) {
    return;
  }
  const std::string range = rest.substr(at + 1);
  const size_t colon = range.find(':');
  if (colon == std::string::npos) {
    return;
  }
  const auto begin = parse_number(range.substr(0, colon));
  const auto end = parse_number(range.substr(colon + 1));
  if (!begin || !end) {
    return;
  }
  spec.path = rest.substr(0, at);
  spec.begin_fraction = *begin;
  spec.end_fraction = *end;
}

bool is_lead_byte(char byte) { return (static_cast<unsigned char>(byte) & 0xC0u) != 0x80u; }

const std::vector<int32_t>& cached_tokens(std::map<uint64_t, std::vector<int32_t>>& cache,
                                          uint64_t document, const std::vector<std::string>& texts,
                                          const TextEncoder& encode) {
  auto found = cache.find(document);
  if (found == cache.end()) {
    found = cache.emplace(document, encode(texts[document])).first;
  }
  return found->second;
}

// GPTQ-style C4 windows (see make_windows), at most max_windows of them.
TokenWindows sample_c4_windows(const TextSpec& spec, const TextEncoder& encode,
                               const WindowOptions& options) {
  Index count = options.c4_windows;
  if (options.max_windows > 0) {
    count = std::min(count, options.max_windows);
  }
  DocumentWindows drawn = sample_document_windows(spec, encode, count, options.seqlen, options.seed);
  TokenWindows result;
  result.source = spec.spec;
  result.windows = std::move(drawn.windows);
  result.source_tokens = drawn.source_tokens;
  return result;
}

}  // namespace

DocumentWindows sample_document_windows(const TextSpec& spec, const TextEncoder& encode, Index count,
                                        Index seqlen_tokens, uint64_t seed) {
  const std::vector<std::string> texts = load_jsonl_texts(spec.path);
  if (texts.empty()) {
    throw DataError(concat("source ", spec.spec, " has no documents"));
  }
  std::mt19937_64 generator(seed);
  std::map<uint64_t, std::vector<int32_t>> cache;
  const auto seqlen = static_cast<size_t>(seqlen_tokens);

  DocumentWindows result;
  size_t longest = 0;
  while (static_cast<Index>(result.windows.size()) < count) {
    const uint64_t document = uniform_index(texts.size(), generator);
    const std::vector<int32_t>& tokens = cached_tokens(cache, document, texts, encode);
    longest = std::max(longest, tokens.size());
    if (tokens.size() < seqlen) {
      if (cache.size() == texts.size() && longest < seqlen) {
        throw DataError(concat("source ", spec.spec, " has no document of at least ", seqlen,
                               " tokens; its longest has ", longest, " tokens"));
      }
      continue;
    }
    const uint64_t start = uniform_index(tokens.size() - seqlen + 1, generator);
    result.windows.emplace_back(tokens.begin() + static_cast<std::ptrdiff_t>(start),
                                tokens.begin() + static_cast<std::ptrdiff_t>(start + seqlen));
    result.positions.emplace_back(static_cast<int64_t>(document), static_cast<int64_t>(start));
  }
  for (const auto& [index, cached] : cache) {
    result.source_tokens += static_cast<Index>(cached.size());
  }
  return result;
}

TextSpec TextSpec::parse(std::string_view text) {
  TextSpec spec;
  spec.spec = std::string(text);
  const size_t colon = text.find(':');
  const std::string kind(text.substr(0, colon == std::string_view::npos ? 0 : colon));
  if (kind == "wikitext2") {
    spec.kind = TextKind::wikitext2;
  } else if (kind == "c4") {
    spec.kind = TextKind::c4;
  } else if (kind == "text") {
    spec.kind = TextKind::text;
  } else {
    throw ConfigError(concat("invalid text source \"", text,
                             "\"; expected KIND:PATH with KIND wikitext2, c4 or text"));
  }
  split_range(std::string(text.substr(colon + 1)), spec);
  if (spec.path.empty()) {
    throw ConfigError(concat("text source \"", text, "\" has an empty path"));
  }
  const bool has_range = spec.begin_fraction != 0.0 || spec.end_fraction != 1.0;
  if (!(spec.begin_fraction >= 0.0 && spec.begin_fraction < spec.end_fraction &&
        spec.end_fraction <= 1.0)) {
    throw ConfigError(concat("text source \"", text, "\" has the character range ", spec.begin_fraction,
                             ":", spec.end_fraction, "; expected A:B with 0 <= A < B <= 1"));
  }
  if (has_range && spec.kind == TextKind::c4) {
    throw ConfigError(concat("text source \"", text, "\": c4 sources take no character range"));
  }
  return spec;
}

std::string load_wikitext2(const std::filesystem::path& path) {
  const std::string content = read_file(path);
  std::string joined;
  joined.reserve(content.size() * 2);
  size_t begin = 0;
  bool first = true;
  while (begin < content.size()) {
    size_t end = content.find('\n', begin);
    end = end == std::string::npos ? content.size() : end + 1;
    const std::string_view line(content.data() + begin, end - begin);
    if (!first) {
      joined += "\n\n";
    }
    if (line != " \n") {
      joined += line;
    }
    first = false;
    begin = end;
  }
  return joined;
}

std::vector<std::string> load_jsonl_texts(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) {
    throw DataError(concat("JSON Lines file ", path, " not found or not readable"));
  }
  std::vector<std::string> texts;
  std::string line;
  for (size_t number = 1; std::getline(in, line); ++number) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) {
      continue;
    }
    nlohmann::json record;
    try {
      record = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception& error) {
      throw DataError(concat(path, " line ", number, " is not valid JSON: ", error.what()));
    }
    if (!record.is_object() || !record.contains("text") || !record["text"].is_string()) {
      throw DataError(concat(path, " line ", number, " has no string field \"text\""));
    }
    texts.push_back(record["text"].get<std::string>());
  }
  return texts;
}

std::string load_text_file(const std::filesystem::path& path) { return read_file(path); }

std::string slice_characters(std::string_view text, double begin_fraction, double end_fraction) {
  size_t characters = 0;
  for (char byte : text) {
    characters += is_lead_byte(byte) ? 1 : 0;
  }
  const auto first = static_cast<size_t>(std::floor(begin_fraction * static_cast<double>(characters)));
  const auto last = static_cast<size_t>(std::floor(end_fraction * static_cast<double>(characters)));

  size_t begin_byte = text.size();
  size_t end_byte = text.size();
  size_t index = 0;
  for (size_t byte = 0; byte < text.size(); ++byte) {
    if (!is_lead_byte(text[byte])) {
      continue;
    }
    if (index == first) {
      begin_byte = byte;
    }
    if (index == last) {
      end_byte = byte;
      break;
    }
    ++index;
  }
  return std::string(text.substr(begin_byte, end_byte - begin_byte));
}

void WindowOptions::validate() const {
  if (seqlen < 2) {
    throw ConfigError(concat("seqlen is ", seqlen, "; expected at least 2 tokens"));
  }
  if (max_windows < 0) {
    throw ConfigError(concat("max_windows is ", max_windows, "; expected 0 (all) or more"));
  }
  if (c4_windows < 1) {
    throw ConfigError(concat("c4_windows is ", c4_windows, "; expected at least 1"));
  }
}

std::vector<std::vector<int32_t>> split_windows(std::span<const int32_t> tokens, Index seqlen,
                                                Index max_windows, const std::string& source) {
  MAGRQ_CHECK(seqlen > 0, "seqlen ", seqlen);
  Index count = static_cast<Index>(tokens.size()) / seqlen;
  if (count == 0) {
    throw DataError(concat("source ", source, " has ", tokens.size(), " tokens; one window needs ",
                           seqlen, " (lower --seqlen or use more text)"));
  }
  if (max_windows > 0) {
    count = std::min(count, max_windows);
  }
  std::vector<std::vector<int32_t>> windows;
  windows.reserve(static_cast<size_t>(count));
  for (Index k = 0; k < count; ++k) {
    const auto window = tokens.subspan(static_cast<size_t>(k * seqlen), static_cast<size_t>(seqlen));
    windows.emplace_back(window.begin(), window.end());
  }
  return windows;
}

TokenWindows make_windows(const TextSpec& spec, const TextEncoder& encode, const WindowOptions& options) {
  options.validate();
  if (spec.kind == TextKind::c4) {
    return sample_c4_windows(spec, encode, options);
  }
  std::string text = spec.kind == TextKind::wikitext2 ? load_wikitext2(spec.path) : load_text_file(spec.path);
  if (spec.begin_fraction != 0.0 || spec.end_fraction != 1.0) {
    text = slice_characters(text, spec.begin_fraction, spec.end_fraction);
  }
  const std::vector<int32_t> tokens = encode(text);

  TokenWindows result;
  result.source = spec.spec;
  result.source_tokens = static_cast<Index>(tokens.size());
  result.windows = split_windows(tokens, options.seqlen, options.max_windows, spec.spec);
  return result;
}

uint64_t uniform_index(uint64_t bound, std::mt19937_64& generator) {
  MAGRQ_CHECK(bound > 0, "bound ", bound);
  // 2^64 mod bound, computed in 64-bit arithmetic as (2^64 - bound) mod bound.
  const uint64_t threshold = (0 - bound) % bound;
  while (true) {
    const uint64_t draw = generator();
    if (draw >= threshold) {
      return draw % bound;
    }
  }
}

}  // namespace magrq::model
