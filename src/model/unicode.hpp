// UTF-8 helpers for the tokenizer: validation, code point iteration, the Unicode
// White_Space property and the two ways of turning invalid byte runs into U+FFFD.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace magrq::model::unicode {

// U+FFFD, the replacement character, in UTF-8.
inline constexpr std::string_view kReplacementCharacter = "\xEF\xBF\xBD";

// Byte offset of the first byte that does not start a well-formed UTF-8 sequence
// (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF), or nullopt when
// the whole of text is valid. O(n).
std::optional<std::size_t> first_invalid_utf8_offset(std::string_view text);

// Byte length of the well-formed UTF-8 sequence that starts at text[offset], or 0 if
// none starts there.
std::size_t valid_sequence_length(std::string_view text, std::size_t offset);

// Decodes the code point that starts at text[offset] and advances offset past it. The
// caller guarantees that text is valid UTF-8.
char32_t next_code_point(std::string_view text, std::size_t& offset);

// Decodes the last code point of text (which is valid UTF-8 and not empty).
char32_t last_code_point(std::string_view text);

void append_utf8(std::string& out, char32_t code_point);

// The Unicode White_Space property: U+0009..U+000D, U+0020, U+0085, U+00A0, U+1680,
// U+2000..U+200A, U+2028, U+2029, U+202F, U+205F and U+3000.
bool is_white_space(char32_t code_point);

// Whether the code point is a regex word character (\w with Unicode properties: a letter,
// a number, a combining mark, a connector punctuation such as '_').
bool is_word_character(char32_t code_point);

// Decodes bytes as UTF-8 and replaces each maximal ill-formed subsequence by one
// U+FFFD, the Unicode "best practice" that Rust's String::from_utf8_lossy follows.
std::string decode_utf8_lossy(std::string_view bytes);

// Returns bytes unchanged when they are valid UTF-8, and otherwise one U+FFFD per byte
// (so a run with one bad byte loses its valid characters too). This is the rule of the
// Hugging Face ByteFallback decoder for a run of <0xXX> tokens.
std::string decode_utf8_or_replace_each_byte(std::string_view bytes);

}  // namespace magrq::model::unicode
