#include "model/calibration_windows.hpp"

#include <map>
#include <random>

#include "core/error.hpp"

namespace magrq::model {

void CalibrationOptions::validate() const {
  if (nsamples < 1) {
    throw ConfigError(detail::concat("invalid calibration.nsamples ", nsamples, ": expected >= 1"));
  }
  if (seqlen < 1) {
    throw ConfigError(detail::concat("invalid calibration.seqlen ", seqlen, ": expected >= 1"));
  }
}

namespace {

std::string source_text(const TextSpec& spec) {
  std::string text = spec.kind == TextKind::wikitext2 ? load_wikitext2(spec.path)
                                                      : load_text_file(spec.path);
  return slice_characters(text, spec.begin_fraction, spec.end_fraction);
}

CalibrationWindows sample_stream(const TextSpec& spec, const TextEncoder& encode,
                                 const CalibrationOptions& options) {
  const std::vector<int32_t> tokens = encode(source_text(spec));
  const auto n = static_cast<Index>(tokens.size());
  const Index needed = options.nsamples * options.seqlen;
  if (n < needed) {
    throw DataError(detail::concat("calibration source ", spec.spec, " has ", n,
                                   " tokens; nsamples ", options.nsamples, " x seqlen ",
                                   options.seqlen, " needs at least ", needed,
                                   ". Use more text, or lower calibration.nsamples or seqlen"));
  }
  std::mt19937_64 generator(options.seed);
  CalibrationWindows result;
  result.source_tokens = n;
  for (Index k = 0; k < options.nsamples; ++k) {
    const auto start = static_cast<int64_t>(
        uniform_index(static_cast<uint64_t>(n - options.seqlen + 1), generator));
    result.positions.push_back({0, start});
    result.windows.emplace_back(tokens.begin() + start, tokens.begin() + start + options.seqlen);
  }
  return result;
}

CalibrationWindows sample_documents(const TextSpec& spec, const TextEncoder& encode,
                                    const CalibrationOptions& options) {
  const std::vector<std::string> texts = load_jsonl_texts(spec.path);
  if (texts.empty()) {
    throw DataError("calibration source " + spec.spec + " has no documents");
  }
  std::mt19937_64 generator(options.seed);
  std::map<uint64_t, std::vector<int32_t>> cache;
  const auto seqlen = static_cast<size_t>(options.seqlen);
  size_t longest = 0;
  CalibrationWindows result;
  while (static_cast<Index>(result.windows.size()) < options.nsamples) {
    const uint64_t document = uniform_index(texts.size(), generator);
    auto found = cache.find(document);
    if (found == cache.end()) {
      found = cache.emplace(document, encode(texts[document])).first;
    }
    const std::vector<int32_t>& tokens = found->second;
    longest = std::max(longest, tokens.size());
    if (tokens.size() < seqlen) {
      if (cache.size() == texts.size() && longest < seqlen) {
        throw DataError(detail::concat("calibration source ", spec.spec, " has no document of at least ",
                                       seqlen, " tokens; its longest has ", longest, " tokens"));
      }
      continue;
    }
    const auto start = static_cast<int64_t>(uniform_index(tokens.size() - seqlen + 1, generator));
    result.positions.push_back({static_cast<int64_t>(document), start});
    result.windows.emplace_back(tokens.begin() + start, tokens.begin() + start + options.seqlen);
  }
  for (const auto& [index, tokens] : cache) {
    result.source_tokens += static_cast<Index>(tokens.size());
  }
  return result;
}

}  // namespace

CalibrationWindows sample_calibration_windows(const TextSpec& spec, const TextEncoder& encode,
                                              const CalibrationOptions& options) {
  options.validate();
  return spec.kind == TextKind::c4 ? sample_documents(spec, encode, options)
                                   : sample_stream(spec, encode, options);
}

std::vector<int64_t> flatten_positions(const std::vector<WindowPosition>& positions) {
  std::vector<int64_t> flat;
  for (const WindowPosition& position : positions) {
    flat.push_back(position.document);
    flat.push_back(position.start);
  }
  return flat;
}

}  // namespace magrq::model
