#include "model/unicode.hpp"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <memory>

#include "core/error.hpp"

namespace magrq::model::unicode {

namespace {

bool is_continuation(unsigned char byte) { return (byte & 0xC0) == 0x80; }

// Valid range of the second byte of a sequence that starts with lead (Unicode Table 3-7,
// "Well-Formed UTF-8 Byte Sequences"); the later bytes are always 0x80..0xBF.
bool second_byte_valid(unsigned char lead, unsigned char second) {
  switch (lead) {
    case 0xE0: return second >= 0xA0 && second <= 0xBF;
    case 0xED: return second >= 0x80 && second <= 0x9F;
    case 0xF0: return second >= 0x90 && second <= 0xBF;
    case 0xF4: return second >= 0x80 && second <= 0x8F;
    default: return is_continuation(second);
  }
}

std::size_t expected_length(unsigned char lead) {
  if (lead < 0x80) {
    return 1;
  }
  if (lead >= 0xC2 && lead <= 0xDF) {
    return 2;
  }
  if (lead >= 0xE0 && lead <= 0xEF) {
    return 3;
  }
  if (lead >= 0xF0 && lead <= 0xF4) {
    return 4;
  }
  return 0;
}

// Length of the maximal prefix of a well-formed sequence that starts at offset: the
// bytes that one U+FFFD replaces when the sequence is cut short. At least 1.
std::size_t maximal_subpart_length(std::string_view text, std::size_t offset) {
  const auto lead = static_cast<unsigned char>(text[offset]);
  const std::size_t length = expected_length(lead);
  if (length == 0) {
    return 1;
  }
  std::size_t matched = 1;
  while (matched < length && offset + matched < text.size()) {
    const auto byte = static_cast<unsigned char>(text[offset + matched]);
    const bool ok = matched == 1 ? second_byte_valid(lead, byte) : is_continuation(byte);
    if (!ok) {
      break;
    }
    ++matched;
  }
  return matched;
}

struct CodeDeleter {
  void operator()(pcre2_code* code) const { pcre2_code_free(code); }
};

const pcre2_code* word_character_pattern() {
  static const std::unique_ptr<pcre2_code, CodeDeleter> pattern = [] {
    int error_code = 0;
    PCRE2_SIZE error_offset = 0;
    pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>("\\w"), PCRE2_ZERO_TERMINATED,
                                     PCRE2_UTF | PCRE2_UCP | PCRE2_ANCHORED, &error_code,
                                     &error_offset, nullptr);
    MAGRQ_CHECK(code != nullptr, "PCRE2 failed to compile \\w, error ", error_code);
    return std::unique_ptr<pcre2_code, CodeDeleter>(code);
  }();
  return pattern.get();
}

}  // namespace

std::size_t valid_sequence_length(std::string_view text, std::size_t offset) {
  const auto lead = static_cast<unsigned char>(text[offset]);
  const std::size_t length = expected_length(lead);
  if (length == 0 || offset + length > text.size()) {
    return 0;
  }
  return maximal_subpart_length(text, offset) == length ? length : 0;
}

std::optional<std::size_t> first_invalid_utf8_offset(std::string_view text) {
  std::size_t offset = 0;
  while (offset < text.size()) {
    if (static_cast<unsigned char>(text[offset]) < 0x80) {
      ++offset;
      continue;
    }
    const std::size_t length = valid_sequence_length(text, offset);
    if (length == 0) {
      return offset;
    }
    offset += length;
  }
  return std::nullopt;
}

char32_t next_code_point(std::string_view text, std::size_t& offset) {
  const auto lead = static_cast<unsigned char>(text[offset]);
  const std::size_t length = expected_length(lead);
  MAGRQ_CHECK(length != 0 && offset + length <= text.size(), "invalid UTF-8 lead byte ",
              static_cast<int>(lead), " at offset ", offset);
  static constexpr unsigned char kLeadMask[5] = {0, 0x7F, 0x1F, 0x0F, 0x07};
  char32_t code_point = lead & kLeadMask[length];
  for (std::size_t i = 1; i < length; ++i) {
    code_point = (code_point << 6) | (static_cast<unsigned char>(text[offset + i]) & 0x3F);
  }
  offset += length;
  return code_point;
}

char32_t last_code_point(std::string_view text) {
  std::size_t start = text.size() - 1;
  while (start > 0 && is_continuation(static_cast<unsigned char>(text[start]))) {
    --start;
  }
  return next_code_point(text, start);
}

void append_utf8(std::string& out, char32_t code_point) {
  if (code_point < 0x80) {
    out.push_back(static_cast<char>(code_point));
  } else if (code_point < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (code_point >> 6)));
    out.push_back(static_cast<char>(0x80 | (code_point & 0x3F)));
  } else if (code_point < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (code_point >> 12)));
    out.push_back(static_cast<char>(0x80 | ((code_point >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (code_point & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (code_point >> 18)));
    out.push_back(static_cast<char>(0x80 | ((code_point >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((code_point >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (code_point & 0x3F)));
  }
}

bool is_white_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
         c == 0x205F || c == 0x3000;
}

bool is_word_character(char32_t code_point) {
  std::string encoded;
  append_utf8(encoded, code_point);
  const pcre2_code* pattern = word_character_pattern();
  pcre2_match_data* match = pcre2_match_data_create_from_pattern(pattern, nullptr);
  MAGRQ_CHECK(match != nullptr, "PCRE2 could not allocate match data");
  const int rc = pcre2_match(pattern, reinterpret_cast<PCRE2_SPTR>(encoded.data()),
                             encoded.size(), 0, 0, match, nullptr);
  pcre2_match_data_free(match);
  return rc > 0;
}

std::string decode_utf8_lossy(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  std::size_t offset = 0;
  while (offset < bytes.size()) {
    const std::size_t length = valid_sequence_length(bytes, offset);
    if (length > 0) {
      out.append(bytes.substr(offset, length));
      offset += length;
    } else {
      out.append(kReplacementCharacter);
      offset += maximal_subpart_length(bytes, offset);
    }
  }
  return out;
}

std::string decode_utf8_or_replace_each_byte(std::string_view bytes) {
  if (!first_invalid_utf8_offset(bytes)) {
    return std::string(bytes);
  }
  std::string out;
  out.reserve(bytes.size() * kReplacementCharacter.size());
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    out.append(kReplacementCharacter);
  }
  return out;
}

}  // namespace magrq::model::unicode
