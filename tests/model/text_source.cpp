// Text sources: spec parsing, WikiText-2 joining, JSON Lines, character ranges, windows
// and the seeded C4 sampling. A byte-level encoder stands in for a tokenizer.
#include "model/text_source.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>

#include "common/test_data.hpp"
#include "core/error.hpp"

namespace magrq::model {
namespace {

using ::testing::HasSubstr;
namespace fs = std::filesystem;

// One token per byte, plus a leading 1 standing in for BOS.
std::vector<int32_t> encode_bytes(std::string_view text) {
  std::vector<int32_t> ids = {1};
  for (char byte : text) {
    ids.push_back(static_cast<unsigned char>(byte));
  }
  return ids;
}

fs::path write_file(const std::string& dir_name, const std::string& file, const std::string& content) {
  const fs::path dir = testing::scratch_dir(dir_name);
  std::ofstream(dir / file, std::ios::binary) << content;
  return dir / file;
}

TEST(TextSpec, ParsesKindsAndRange) {
  const TextSpec text = TextSpec::parse("text:data/stories.txt@0.6:1.0");
  EXPECT_EQ(text.kind, TextKind::text);
  EXPECT_EQ(text.path, "data/stories.txt");
  EXPECT_DOUBLE_EQ(text.begin_fraction, 0.6);
  EXPECT_DOUBLE_EQ(text.end_fraction, 1.0);
  EXPECT_EQ(text.spec, "text:data/stories.txt@0.6:1.0");

  const TextSpec wiki = TextSpec::parse("wikitext2:/x/wiki.test.raw");
  EXPECT_EQ(wiki.kind, TextKind::wikitext2);
  EXPECT_DOUBLE_EQ(wiki.begin_fraction, 0.0);
  EXPECT_DOUBLE_EQ(wiki.end_fraction, 1.0);

  EXPECT_EQ(TextSpec::parse("c4:c4.jsonl").kind, TextKind::c4);
}

TEST(TextSpec, AtSignWithoutRangeBelongsToPath) {
  EXPECT_EQ(TextSpec::parse("text:mail@host.txt").path, "mail@host.txt");
  EXPECT_EQ(TextSpec::parse("text:a@b:c").path, "a@b:c");
  EXPECT_EQ(TextSpec::parse("text:a@1@0:0.5").path, "a@1");
}

TEST(TextSpec, RejectsInvalidSpecs) {
  struct Case {
    const char* spec;
    const char* expected_text;
  };
  const std::vector<Case> cases = {
      {"wiki:x.raw", "expected KIND:PATH with KIND wikitext2, c4 or text"},
      {"x.raw", "expected KIND:PATH"},
      {"text:", "empty path"},
      {"text:x@0.8:0.2", "expected A:B with 0 <= A < B <= 1"},
      {"text:x@-0.1:0.5", "expected A:B with 0 <= A < B <= 1"},
      {"text:x@0:1.5", "expected A:B with 0 <= A < B <= 1"},
      {"c4:x.jsonl@0:0.5", "c4 sources take no character range"},
  };
  for (const Case& bad : cases) {
    try {
      TextSpec::parse(bad.spec);
      ADD_FAILURE() << bad.spec << " was accepted";
    } catch (const ConfigError& error) {
      EXPECT_THAT(error.what(), HasSubstr(bad.expected_text)) << bad.spec;
    }
  }
}

TEST(Wikitext2, JoinsRowsWithBlankLinesAsEmptyRows) {
  const fs::path path = write_file("wikitext_join", "wiki.raw", " \n = Title = \n \n Text one . \n");
  EXPECT_EQ(load_wikitext2(path), "\n\n = Title = \n\n\n\n\n Text one . \n");
}

TEST(Wikitext2, KeepsLastLineWithoutNewline) {
  const fs::path path = write_file("wikitext_tail", "wiki.raw", " a \n \n b");
  EXPECT_EQ(load_wikitext2(path), " a \n\n\n\n\n b");
}

TEST(JsonLines, ReadsTextFieldAndSkipsBlankLines) {
  const fs::path path = write_file("jsonl_read", "c4.jsonl",
                                   "{\"text\": \"first\", \"url\": \"u\"}\n\n{\"text\": \"second\\nline\"}\n");
  EXPECT_EQ(load_jsonl_texts(path), (std::vector<std::string>{"first", "second\nline"}));
}

TEST(JsonLines, BadLineNamesLineNumber) {
  const fs::path path = write_file("jsonl_bad", "c4.jsonl", "{\"text\": \"a\"}\n{\"body\": \"b\"}\n");
  try {
    load_jsonl_texts(path);
    FAIL() << "expected DataError";
  } catch (const DataError& error) {
    EXPECT_THAT(error.what(), HasSubstr("line 2 has no string field \"text\""));
  }
  const fs::path broken = write_file("jsonl_broken", "c4.jsonl", "{\"text\": \n");
  EXPECT_THROW(load_jsonl_texts(broken), DataError);
}

TEST(SliceCharacters, CountsCodePointsNotBytes) {
  const std::string text = "aé€𝄞bcdefg";  // 10 code points of 1, 2, 3, 4 bytes
  EXPECT_EQ(slice_characters(text, 0.0, 1.0), text);
  EXPECT_EQ(slice_characters(text, 0.0, 0.4), "aé€𝄞");
  EXPECT_EQ(slice_characters(text, 0.25, 0.55), "€𝄞b");  // floor(2.5) = 2, floor(5.5) = 5
  EXPECT_EQ(slice_characters(text, 0.6, 1.0), "defg");
  EXPECT_EQ(slice_characters("", 0.0, 1.0), "");
}

TEST(SplitWindows, DropsRemainderAndCapsCount) {
  std::vector<int32_t> tokens(10);
  for (int i = 0; i < 10; ++i) {
    tokens[i] = i;
  }
  const auto windows = split_windows(tokens, 3, 0, "test");
  ASSERT_EQ(windows.size(), 3u);
  EXPECT_EQ(windows[2], (std::vector<int32_t>{6, 7, 8}));
  EXPECT_EQ(split_windows(tokens, 3, 2, "test").size(), 2u);
  EXPECT_EQ(split_windows(tokens, 10, 0, "test").size(), 1u);
}

TEST(SplitWindows, TooFewTokensNamesSourceAndCounts) {
  const std::vector<int32_t> tokens(7, 0);
  try {
    split_windows(tokens, 8, 0, "text:short.txt");
    FAIL() << "expected DataError";
  } catch (const DataError& error) {
    EXPECT_THAT(error.what(), HasSubstr("text:short.txt has 7 tokens; one window needs 8"));
  }
}

TEST(MakeWindows, TextRangeIsTokenizedOnce) {
  const fs::path path = write_file("windows_text", "t.txt", "0123456789");
  WindowOptions options;
  options.seqlen = 2;
  int calls = 0;
  const TextEncoder counting = [&](std::string_view text) {
    ++calls;
    return encode_bytes(text);
  };
  const TokenWindows result = make_windows(TextSpec::parse("text:" + path.string() + "@0.6:1.0"), counting, options);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(result.source_tokens, 5);  // BOS + "6789"
  ASSERT_EQ(result.windows.size(), 2u);
  EXPECT_EQ(result.windows[0], (std::vector<int32_t>{1, '6'}));
  EXPECT_EQ(result.windows[1], (std::vector<int32_t>{'7', '8'}));
}

fs::path write_c4(const std::string& name) {
  std::string content;
  const std::vector<std::string> docs = {"short", "a document of thirty-one bytes!", "tiny",
                                         "another fairly long document here", "x"};
  for (const auto& doc : docs) {
    content += "{\"text\": \"" + doc + "\"}\n";
  }
  return write_file(name, "c4.jsonl", content);
}

TEST(MakeWindows, C4SamplingIsSeededAndSkipsShortDocuments) {
  const fs::path path = write_c4("windows_c4");
  WindowOptions options;
  options.seqlen = 16;
  options.c4_windows = 20;
  const TextSpec spec = TextSpec::parse("c4:" + path.string());
  const TokenWindows first = make_windows(spec, encode_bytes, options);
  const TokenWindows again = make_windows(spec, encode_bytes, options);
  ASSERT_EQ(first.windows.size(), 20u);
  EXPECT_EQ(first.windows, again.windows);
  for (const auto& window : first.windows) {
    ASSERT_EQ(window.size(), 16u);
    const std::string text(window.begin() + (window[0] == 1 ? 1 : 0), window.end());
    const bool from_long = std::string("\x01" "a document of thirty-one bytes!").find(text) != std::string::npos ||
                           std::string("\x01" "another fairly long document here").find(text) != std::string::npos;
    EXPECT_TRUE(from_long) << text;
  }

  options.seed = 1;
  EXPECT_NE(make_windows(spec, encode_bytes, options).windows, first.windows);
  options.max_windows = 3;
  EXPECT_EQ(make_windows(spec, encode_bytes, options).windows.size(), 3u);
}

TEST(MakeWindows, C4WithoutLongDocumentIsRejected) {
  const fs::path path = write_c4("windows_c4_short");
  WindowOptions options;
  options.seqlen = 64;
  try {
    make_windows(TextSpec::parse("c4:" + path.string()), encode_bytes, options);
    FAIL() << "expected DataError";
  } catch (const DataError& error) {
    EXPECT_THAT(error.what(), HasSubstr("no document of at least 64 tokens; its longest has 34 tokens"));
  }
}

TEST(MakeWindows, RejectsInvalidOptions) {
  const fs::path path = write_file("windows_options", "t.txt", "abc");
  WindowOptions options;
  options.seqlen = 1;
  EXPECT_THROW(make_windows(TextSpec::parse("text:" + path.string()), encode_bytes, options), ConfigError);
  options.seqlen = 2;
  options.max_windows = -1;
  EXPECT_THROW(make_windows(TextSpec::parse("text:" + path.string()), encode_bytes, options), ConfigError);
  EXPECT_THROW(load_text_file(path.parent_path() / "absent.txt"), DataError);
}

TEST(UniformIndex, StaysInRangeAndCoversIt) {
  std::mt19937_64 generator(5);
  std::vector<int> counts(7, 0);
  for (int i = 0; i < 7000; ++i) {
    const uint64_t value = uniform_index(7, generator);
    ASSERT_LT(value, 7u);
    ++counts[value];
  }
  for (int count : counts) {
    EXPECT_GT(count, 850);  // expected 1000 each; 850 is more than 5 standard deviations away
  }
}

TEST(UniformIndex, RejectsDrawsBelowThreshold) {
  // bound = 2^63 + 1 gives the threshold 2^64 mod bound = 2^63 - 1, so about half of the
  // draws are rejected and the result is the first draw at or above it, mod bound.
  const uint64_t bound = (uint64_t{1} << 63) + 1;
  const uint64_t threshold = (uint64_t{1} << 63) - 1;
  for (uint64_t seed = 0; seed < 20; ++seed) {
    std::mt19937_64 generator(seed);
    std::mt19937_64 replay(seed);
    uint64_t draw = replay();
    while (draw < threshold) {
      draw = replay();
    }
    EXPECT_EQ(uniform_index(bound, generator), draw % bound) << "seed " << seed;
  }
  // With a small bound a rejection is rare, so the first draw decides.
  std::mt19937_64 generator(0);
  std::mt19937_64 replay(0);
  EXPECT_EQ(uniform_index(2000, generator), replay() % 2000);
}

TEST(TextSourceData, WikitextTestJoinsToKnownSize) {
  MAGRQ_REQUIRE_DATA();
  const std::string text = load_wikitext2(testing::shared_data_dir() / "text" / "wikitext-2-raw" / "wiki.test.raw");
  // "\n\n".join of the 4,358 Hugging Face rows of the test split.
  EXPECT_EQ(text.size(), 1296370u);
  EXPECT_EQ(text.substr(0, 24), "\n\n = Robert Boulter = \n\n");
}

TEST(TextSourceData, TinystoriesLastFortyPercent) {
  MAGRQ_REQUIRE_DATA();
  const std::string text = load_text_file(testing::shared_data_dir() / "text" / "tinystories" / "tinystories_val.txt");
  const std::string tail = slice_characters(text, 0.6, 1.0);
  // 793,451 characters: the range starts at character 476,070 and keeps 317,381 of them
  // (317,842 bytes, since a few are multi-byte quotes).
  EXPECT_EQ(tail.size(), 317842u);
  EXPECT_EQ(tail.substr(0, 18), " noise. She looked");
}

TEST(TextSourceData, C4FileHasTwoThousandDocuments) {
  MAGRQ_REQUIRE_DATA();
  const auto texts = load_jsonl_texts(testing::shared_data_dir() / "text" / "c4" / "c4_validation_2k.jsonl");
  EXPECT_EQ(texts.size(), 2000u);
}

}  // namespace
}  // namespace magrq::model
