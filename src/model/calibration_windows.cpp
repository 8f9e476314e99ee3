#include "model/calibration_windows.hpp"

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
  DocumentWindows drawn =
      sample_document_windows(spec, encode, options.nsamples, options.seqlen, options.seed);
  CalibrationWindows result;
  result.windows = std::move(drawn.windows);
  result.source_tokens = drawn.source_tokens;
  for (const auto& [document, start] : drawn.positions) {
    result.positions.push_back({document, start});
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
