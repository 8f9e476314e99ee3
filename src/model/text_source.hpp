// Evaluation and calibration text: WikiText-2, C4-style JSON Lines and plain text files,
// turned into token windows of a fixed length.
//
// A source is written KIND:PATH with KIND one of
//   wikitext2  a WikiText-2 raw file (wiki.test.raw). Each line, with its newline, is one
//              row of the Hugging Face dataset, except that a line equal to " \n" is the
//              empty row. The rows are joined with "\n\n", as GPTQ's evaluation does.
//   c4         JSON Lines, one document per line in the field "text".
//   text       a UTF-8 text file taken as it is.
// wikitext2 and text accept a character range PATH@A:B with 0 <= A < B <= 1: the text
// keeps the characters (Unicode code points) [floor(A * n), floor(B * n)) of its n
// characters. text:stories.txt@0.6:1.0 is the last 40%, so a model can be calibrated on
// @0:0.6 and evaluated on @0.6:1.0 of one file.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/types.hpp"

namespace magrq::model {

enum class TextKind { wikitext2, c4, text };

struct TextSpec {
  TextKind kind = TextKind::text;
  std::filesystem::path path;
  double begin_fraction = 0.0;  // character range [begin, end) as fractions of the text
  double end_fraction = 1.0;
  std::string spec;  // as written, for messages and reports

  // Parses KIND:PATH[@A:B]. The part after the last '@' is a range only when it reads as
  // two numbers separated by ':'; otherwise the '@' belongs to the path. Throws
  // ConfigError for an unknown kind, an empty path, a range outside [0, 1] or with
  // A >= B, and a range on a c4 source.
  static TextSpec parse(std::string_view spec);
};

// Text of a WikiText-2 raw file with its rows joined by "\n\n" (rules above).
std::string load_wikitext2(const std::filesystem::path& path);
// The "text" field of every line of a JSON Lines file. Blank lines are skipped; a line
// that is not an object with a string "text" is a DataError naming the line number.
std::vector<std::string> load_jsonl_texts(const std::filesystem::path& path);
std::string load_text_file(const std::filesystem::path& path);

// Code points [floor(begin * n), floor(end * n)) of UTF-8 text with n code points.
// Counts lead bytes, so it cuts only between code points; validation is the tokenizer's.
std::string slice_characters(std::string_view text, double begin_fraction, double end_fraction);

// Text to token ids: the tokenizer's encode with the BOS choice bound by the caller, so
// that sources need no vocabulary and tests can pass a byte-level encoder.
using TextEncoder = std::function<std::vector<int32_t>(std::string_view text)>;

struct WindowOptions {
  Index seqlen = 2048;  // tokens per window, >= 2
  Index max_windows = 0;  // 0 = every window the source gives; otherwise at most this many
  // c4 only: number of windows drawn, >= 1.
  Index c4_windows = 256;
  uint64_t seed = 0;  // c4 only: seed of the std::mt19937_64 that draws the windows

  void validate() const;
};

struct TokenWindows {
  std::vector<std::vector<int32_t>> windows;  // each exactly seqlen tokens
  Index source_tokens = 0;  // tokens of the whole text (c4: of the documents tokenized)
  std::string source;       // the spec, for messages and reports
};

// Non-overlapping windows tokens[k * seqlen, (k + 1) * seqlen) for k < floor(size /
// seqlen), at most max_windows of them (0 = all); the remainder is dropped. Throws
// DataError naming source, the token count and seqlen when not even one window fits.
std::vector<std::vector<int32_t>> split_windows(std::span<const int32_t> tokens, Index seqlen,
                                                Index max_windows, const std::string& source);

// Windows of a source. wikitext2 and text: the (sliced) text is encoded once and split
// with split_windows. c4: the GPTQ sampling, reproducible for a seed: each window draws
// a document uniformly until one has at least seqlen tokens, then a start uniformly from
// the seqlen-token windows inside it. Draws use uniform_index below.
TokenWindows make_windows(const TextSpec& spec, const TextEncoder& encode, const WindowOptions& options);

// Windows drawn from the documents of a JSON Lines source, as GPTQ samples C4: each
// window draws a document uniformly until one has at least seqlen tokens, then a start
// uniformly from the seqlen-token windows inside it. Documents are tokenized on first
// draw; once all are tokenized and none is long enough, the source is a DataError.
struct DocumentWindows {
  std::vector<std::vector<int32_t>> windows;            // count windows of seqlen tokens
  std::vector<std::pair<int64_t, int64_t>> positions;  // (document index, start token) per window
  Index source_tokens = 0;                              // tokens of the documents drawn
};
DocumentWindows sample_document_windows(const TextSpec& spec, const TextEncoder& encode, Index count,
                                        Index seqlen, uint64_t seed);

// A uniform integer in [0, bound): draws r from generator until r >= 2^64 mod bound and
// returns r mod bound. Written out because std::uniform_int_distribution differs
// between standard libraries, which would change the windows.
uint64_t uniform_index(uint64_t bound, std::mt19937_64& generator);

}  // namespace magrq::model
