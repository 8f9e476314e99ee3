#include "model/tokenizer_regex.hpp"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <array>

#include "core/error.hpp"
#include "model/unicode.hpp"

namespace magrq::model::detail {

namespace {

// White_Space as PCRE2 class items: the ASCII controls TAB..CR, NEL and the Z categories.
constexpr std::string_view kWhiteSpaceItems = "\\t-\\r\\x{85}\\p{Z}";

std::string pcre2_message(int error_code) {
  std::array<PCRE2_UCHAR, 256> buffer{};
  pcre2_get_error_message(error_code, buffer.data(), buffer.size());
  return std::string(reinterpret_cast<const char*>(buffer.data()));
}

struct MatchDataDeleter {
  void operator()(pcre2_match_data* data) const { pcre2_match_data_free(data); }
};

}  // namespace

std::string rewrite_white_space_escapes(std::string_view pattern, const std::string& where) {
  std::string out;
  out.reserve(pattern.size() + 32);
  bool in_class = false;
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (c == '\\' && i + 1 < pattern.size()) {
      const char escaped = pattern[++i];
      if (escaped == 's') {
        out += in_class ? std::string(kWhiteSpaceItems) : "[" + std::string(kWhiteSpaceItems) + "]";
      } else if (escaped == 'S') {
        if (in_class) {
          throw DataError(where + ": the pattern has \\S inside a character class, which "
                          "magrq cannot rewrite to Oniguruma's white space; pattern: " +
                          std::string(pattern));
        }
        out += "[^" + std::string(kWhiteSpaceItems) + "]";
      } else {
        out += c;
        out += escaped;
      }
      continue;
    }
    if (!in_class && c == '[') {
      in_class = true;
      out += c;
      // A ']' right after '[' or '[^' is a literal member, not the end of the class.
      if (i + 1 < pattern.size() && pattern[i + 1] == '^') {
        out += pattern[++i];
      }
      if (i + 1 < pattern.size() && pattern[i + 1] == ']') {
        out += pattern[++i];
      }
      continue;
    }
    if (in_class && c == '[' && i + 1 < pattern.size() && pattern[i + 1] == ':') {
      // A POSIX class such as [:alpha:] inside a bracket expression.
      const std::size_t close = pattern.find(":]", i + 2);
      if (close != std::string_view::npos) {
        out.append(pattern.substr(i, close + 2 - i));
        i = close + 1;
        continue;
      }
    }
    if (in_class && c == ']') {
      in_class = false;
    }
    out += c;
  }
  return out;
}

SplitRegex::SplitRegex(std::string_view pattern, const std::string& where)
    : pattern_(pattern) {
  const std::string rewritten = rewrite_white_space_escapes(pattern, where);
  int error_code = 0;
  PCRE2_SIZE error_offset = 0;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(rewritten.data()),
                                   rewritten.size(), PCRE2_UTF | PCRE2_UCP, &error_code,
                                   &error_offset, nullptr);
  if (code == nullptr) {
    throw DataError(where + ": PCRE2 rejected the regex " + std::string(pattern) + " (" +
                    pcre2_message(error_code) + " at offset " + std::to_string(error_offset) +
                    " of the rewritten pattern " + rewritten + ")");
  }
  // JIT is an optimisation only: when it is unavailable, pcre2_match interprets.
  pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
  code_ = std::shared_ptr<pcre2_real_code_8>(code, [](pcre2_code* c) { pcre2_code_free(c); });
}

std::vector<Span> SplitRegex::find_all(std::string_view text) const {
  if (const auto bad = unicode::first_invalid_utf8_offset(text)) {
    throw DataError("regex split: the text is not valid UTF-8 at byte " + std::to_string(*bad));
  }
  std::unique_ptr<pcre2_match_data, MatchDataDeleter> match(
      pcre2_match_data_create_from_pattern(code_.get(), nullptr));
  MAGRQ_CHECK(match != nullptr, "PCRE2 could not allocate match data");

  std::vector<Span> spans;
  const auto subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  std::size_t offset = 0;
  while (offset < text.size()) {
    // The subject was validated above, so PCRE2 need not check it again at every offset
    // (which would make the loop quadratic).
    int rc = pcre2_match(code_.get(), subject, text.size(), offset, PCRE2_NO_UTF_CHECK,
                         match.get(), nullptr);
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT) {
      // The JIT stack (32 KiB by default) was too small for this subject. The
      // interpreter keeps its backtracking frames on the heap and finds the same match.
      rc = pcre2_match(code_.get(), subject, text.size(), offset,
                       PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT, match.get(), nullptr);
    }
    if (rc == PCRE2_ERROR_NOMATCH) {
      break;
    }
    if (rc < 0) {
      throw DataError("regex split with " + pattern_ + " failed at byte " +
                      std::to_string(offset) + ": " + pcre2_message(rc));
    }
    const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(match.get());
    const Span span{ovector[0], ovector[1]};
    if (span.end == span.begin) {
      // An empty match covers nothing; like Oniguruma's find_iter, resume one code
      // point further on.
      if (span.begin >= text.size()) {
        break;
      }
      offset = span.begin + unicode::valid_sequence_length(text, span.begin);
      continue;
    }
    spans.push_back(span);
    offset = span.end;
  }
  return spans;
}

}  // namespace magrq::model::detail
