// PCRE2 wrapper for the regular expressions of tokenizer.json (the Split pre-tokenizer
// and the GPT-2 split of the ByteLevel pre-tokenizer).
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

struct pcre2_real_code_8;

namespace magrq::model::detail {

// A byte range [begin, end) of a string.
struct Span {
  std::size_t begin = 0;
  std::size_t end = 0;
};

// Rewrites the escapes \s and \S of a pattern to the Unicode White_Space class.
//
// Hugging Face tokenizers runs these patterns with Oniguruma, whose \s is White_Space
// (U+0009..U+000D, U+0085 and the Z categories). PCRE2's \s with Unicode properties is
// \p{Z} plus \h and \v, and \h also contains U+180E, which stopped being white space in
// Unicode 6.3. The rewrite makes PCRE2 match what Oniguruma matches. Throws DataError,
// naming `where`, for \S inside a character class, which has no class-free form.
std::string rewrite_white_space_escapes(std::string_view pattern, const std::string& where);

// A compiled pattern, shareable between threads: each find_all call uses its own match
// data. JIT-compiled when PCRE2 supports JIT on this machine.
class SplitRegex {
 public:
  // Compiles pattern after rewrite_white_space_escapes, in UTF mode with Unicode
  // properties. Throws DataError naming `where` if PCRE2 rejects the pattern.
  SplitRegex(std::string_view pattern, const std::string& where);

  // All non-overlapping, non-empty matches in text from left to right, as an Oniguruma
  // find_iter yields them. Throws DataError if text is not valid UTF-8 or PCRE2 reports
  // a match error. O(n) matches of the pattern.
  std::vector<Span> find_all(std::string_view text) const;

  const std::string& pattern() const { return pattern_; }

 private:
  std::string pattern_;
  std::shared_ptr<pcre2_real_code_8> code_;
};

}  // namespace magrq::model::detail
