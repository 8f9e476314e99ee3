// Tokenizer behaviour beyond the golden vectors: special ids, edge cases, the invalid
// UTF-8 rule, error messages, components the three golden tokenizers do not use
// (Metaspace, lstrip/rstrip, single_word, merges as pairs) and the regex engine's white
// space. The golden vectors are checked in tokenizer_golden.cpp.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "common/test_data.hpp"
#include "core/error.hpp"
#include "model/tokenizer.hpp"
#include "model/tokenizer_regex.hpp"

namespace {

using magrq::DataError;
using magrq::model::Tokenizer;
using nlohmann::json;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// The four real tokenizers of the test data, loaded once per test program.
const Tokenizer& real_tokenizer(const std::string& folder) {
  static std::map<std::string, Tokenizer> loaded;
  auto found = loaded.find(folder);
  if (found == loaded.end()) {
    found = loaded.emplace(folder, Tokenizer::from_directory(magrq::testing::shared_data_dir() /
                                                             folder))
                .first;
  }
  return found->second;
}

const Tokenizer& llama3() { return real_tokenizer("tokenizers/llama3"); }
const Tokenizer& mistral() { return real_tokenizer("tokenizers/mistral-7b"); }
const Tokenizer& stories() { return real_tokenizer("models/stories260K-hf"); }
const Tokenizer& babyllama() { return real_tokenizer("models/babyllama105-hf"); }

// A tiny SentencePiece-style tokenizer.json: "▁hi" is built by two merges, and the
// pre-tokenizer, normalizer, decoder and added tokens are set per test.
json tiny_tokenizer_json() {
  return {
      {"version", "1.0"},
      {"added_tokens",
       json::array({{{"id", 0}, {"content", "<unk>"}, {"special", true}, {"normalized", false}},
                    {{"id", 1}, {"content", "<s>"}, {"special", true}, {"normalized", false}},
                    {{"id", 2}, {"content", "</s>"}, {"special", true}, {"normalized", false}}})},
      {"normalizer", nullptr},
      {"pre_tokenizer", nullptr},
      {"post_processor", nullptr},
      {"decoder", nullptr},
      {"model",
       {{"type", "BPE"},
        {"dropout", nullptr},
        {"unk_token", "<unk>"},
        {"fuse_unk", true},
        {"byte_fallback", false},
        {"vocab",
         {{"<unk>", 0}, {"<s>", 1}, {"</s>", 2}, {"▁", 3}, {"h", 4}, {"i", 5}, {"▁h", 6},
          {"▁hi", 7}}},
        {"merges", json::array({"▁ h", "▁h i"})}}}};
}

json prepend_normalizer() {
  return {{"type", "Sequence"},
          {"normalizers",
           json::array({{{"type", "Prepend"}, {"prepend", "▁"}},
                        {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", "▁"}}})}};
}

json tiny_config() {
  return {{"bos_token", "<s>"}, {"eos_token", "</s>"}, {"add_bos_token", true}};
}

Tokenizer tiny(const json& tokenizer_json, const json& config = tiny_config()) {
  return Tokenizer::from_json(tokenizer_json, config, json(), "tiny");
}

// Writes tokenizer.json (as given text) and a valid tokenizer_config.json to a scratch
// folder and returns the folder.
std::filesystem::path write_tokenizer_folder(const std::string& name,
                                             const std::string& tokenizer_text) {
  const auto dir = magrq::testing::scratch_dir(name);
  std::ofstream(dir / "tokenizer.json") << tokenizer_text;
  std::ofstream(dir / "tokenizer_config.json") << tiny_config().dump();
  return dir;
}

std::string data_error_message(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const DataError& error) {
    return error.what();
  }
  return "no DataError thrown";
}

TEST(Tokenizer, ReadsSpecialIdsOfRealTokenizers) {
  MAGRQ_REQUIRE_DATA();
  EXPECT_EQ(llama3().bos_id(), 128000);
  EXPECT_THAT(llama3().eos_ids(), ElementsAre(128001));
  EXPECT_EQ(llama3().vocab_size(), 128256);
  EXPECT_FALSE(llama3().adds_bos_by_default());

  EXPECT_EQ(mistral().bos_id(), 1);
  EXPECT_THAT(mistral().eos_ids(), ElementsAre(2));
  EXPECT_EQ(mistral().vocab_size(), 32000);
  EXPECT_TRUE(mistral().adds_bos_by_default());

  EXPECT_EQ(stories().bos_id(), 1);
  EXPECT_THAT(stories().eos_ids(), ElementsAre(2));
  EXPECT_EQ(stories().vocab_size(), 512);
  EXPECT_TRUE(stories().adds_bos_by_default());

  EXPECT_EQ(babyllama().vocab_size(), 105);
  EXPECT_TRUE(babyllama().adds_bos_by_default());
}

TEST(Tokenizer, EmptyTextGivesOnlyBos) {
  MAGRQ_REQUIRE_DATA();
  for (const Tokenizer* tokenizer : {&llama3(), &mistral(), &stories(), &babyllama()}) {
    EXPECT_TRUE(tokenizer->encode("", false).empty());
    EXPECT_THAT(tokenizer->encode("", true), ElementsAre(tokenizer->bos_id()));
    EXPECT_EQ(tokenizer->decode(tokenizer->encode("", true)), "");
  }
}

TEST(Tokenizer, OnlySpacesRoundTrip) {
  MAGRQ_REQUIRE_DATA();
  for (const Tokenizer* tokenizer : {&llama3(), &mistral(), &stories()}) {
    for (const std::string& text : std::vector<std::string>{" ", "   ", std::string(40, ' ')}) {
      const auto ids = tokenizer->encode(text, true);
      EXPECT_FALSE(ids.empty());
      EXPECT_EQ(tokenizer->decode(ids), text) << ids.size() << " ids";
    }
  }
  EXPECT_THAT(llama3().encode("  ", false), ElementsAre(256));  // one piece "ĠĠ"
}

TEST(Tokenizer, LoneSpecialTokenIsOneId) {
  MAGRQ_REQUIRE_DATA();
  EXPECT_THAT(mistral().encode("<s>", false), ElementsAre(1));
  EXPECT_THAT(mistral().encode("</s>", false), ElementsAre(2));
  EXPECT_THAT(llama3().encode("<|eot_id|>", false), ElementsAre(128009));
  EXPECT_THAT(llama3().encode("<|begin_of_text|>", true), ElementsAre(128000, 128000));
  // Decoding drops special tokens unless asked to keep them.
  EXPECT_EQ(mistral().decode(std::vector<int32_t>{1}), "");
  EXPECT_EQ(mistral().decode(std::vector<int32_t>{1}, false), "<s>");
  EXPECT_EQ(llama3().decode(std::vector<int32_t>{128009}, false), "<|eot_id|>");
  EXPECT_TRUE(llama3().is_special(128009));
  EXPECT_FALSE(llama3().is_special(9906));
}

TEST(Tokenizer, BosThenTextDecodesWithoutLeadingSpace) {
  MAGRQ_REQUIRE_DATA();
  const auto ids = mistral().encode("Hello world", true);
  EXPECT_THAT(ids, ElementsAre(1, 22557, 1526));
  EXPECT_EQ(mistral().decode(ids), "Hello world");
  EXPECT_EQ(mistral().decode(ids, false), "<s> Hello world");
}

TEST(Tokenizer, DoubleNewline) {
  MAGRQ_REQUIRE_DATA();
  EXPECT_THAT(llama3().encode("\n\n", false), ElementsAre(271));
  // Mistral has no newline piece: "\n" falls back to the byte piece <0x0A> (id 13).
  EXPECT_THAT(mistral().encode("\n\n", false), ElementsAre(28705, 13, 13));
  EXPECT_EQ(mistral().id_to_piece(13), "<0x0A>");
  for (const Tokenizer* tokenizer : {&llama3(), &mistral(), &stories()}) {
    EXPECT_EQ(tokenizer->decode(tokenizer->encode("a\n\nb", true)), "a\n\nb");
  }
}

TEST(Tokenizer, EmojiCjkAndCombiningMarksRoundTrip) {
  MAGRQ_REQUIRE_DATA();
  const std::vector<std::string> texts = {
      "family 👨‍👩‍👧 and flag 🇩🇪",  // ZWJ sequence and regional indicators
      "東京は日本の首都です。",       // CJK, mostly byte fallback in the small vocabularies
      "cafe\xCC\x81 vs caf\xC3\xA9",  // e + combining acute next to precomposed é
      "𠀀𝄞",                          // outside the BMP
  };
  for (const Tokenizer* tokenizer : {&llama3(), &mistral(), &stories()}) {
    for (const std::string& text : texts) {
      EXPECT_EQ(tokenizer->decode(tokenizer->encode(text, false)), text) << text;
    }
  }
}

TEST(Tokenizer, InvalidUtf8IsRejectedWithOffset) {
  MAGRQ_REQUIRE_DATA();
  const std::vector<std::string> invalid = {
      std::string("ab\xFF" "cd"),        // byte that never occurs in UTF-8
      std::string("ab\xC3"),              // truncated two-byte sequence
      std::string("ab\xE0\x80\x80"),     // overlong encoding
      std::string("ab\xED\xA0\x80"),     // UTF-16 surrogate
  };
  for (const Tokenizer* tokenizer : {&llama3(), &mistral()}) {
    for (const std::string& text : invalid) {
      const std::string message = data_error_message([&] { tokenizer->encode(text, false); });
      EXPECT_THAT(message, HasSubstr("not valid UTF-8 at byte 2")) << message;
    }
  }
}

TEST(Tokenizer, BabyLlamaNewlineIsUnknown) {
  MAGRQ_REQUIRE_DATA();
  // babyllama105 has no byte pieces: a character outside its 101 becomes <unk> (id 0),
  // and consecutive unknown characters fuse into one (fuse_unk).
  const auto ids = babyllama().encode("a\nb", false);
  ASSERT_EQ(ids.size(), 4u);
  EXPECT_EQ(ids[0], 3);  // "▁"
  EXPECT_EQ(ids[2], 0);
  EXPECT_THAT(babyllama().encode("\n", false), ElementsAre(3, 0));
  EXPECT_THAT(babyllama().encode("\n\n", false), ElementsAre(3, 0));
  EXPECT_THAT(babyllama().encode("\n\n", true), ElementsAre(1, 3, 0));
  EXPECT_EQ(babyllama().decode(babyllama().encode("Once upon a time", false)), "Once upon a time");
}

TEST(Tokenizer, ByteFallbackDecodesInvalidBytesPerByte) {
  MAGRQ_REQUIRE_DATA();
  // <0xE4><0xBD> is a cut-short three-byte character: the ByteFallback decoder gives
  // one U+FFFD per byte of the run.
  const auto e4 = mistral().piece_to_id("<0xE4>");
  const auto bd = mistral().piece_to_id("<0xBD>");
  ASSERT_TRUE(e4.has_value());
  ASSERT_TRUE(bd.has_value());
  EXPECT_EQ(mistral().decode(std::vector<int32_t>{*e4, *bd}), "\xEF\xBF\xBD\xEF\xBF\xBD");
  // The ByteLevel decoder replaces the same cut-short sequence by one U+FFFD.
  const auto le4 = llama3().piece_to_id("\xC3\xA4");  // byte 0xE4 is "ä" in byte-level form
  const auto lbd = llama3().piece_to_id("\xC2\xBD");  // byte 0xBD is "½"
  ASSERT_TRUE(le4.has_value());
  ASSERT_TRUE(lbd.has_value());
  EXPECT_EQ(llama3().decode(std::vector<int32_t>{*le4, *lbd}), "\xEF\xBF\xBD");
}

TEST(Tokenizer, DecodeRejectsIdOutsideVocabulary) {
  MAGRQ_REQUIRE_DATA();
  EXPECT_THAT(data_error_message([] { mistral().decode(std::vector<int32_t>{5, 32000}); }),
              HasSubstr("token id 32000 is outside the vocabulary [0, 32000)"));
  EXPECT_THAT(data_error_message([] { mistral().decode(std::vector<int32_t>{-1}); }),
              HasSubstr("token id -1"));
}

TEST(Tokenizer, ConcurrentEncodesAgree) {
  MAGRQ_REQUIRE_DATA();
  const std::string text = "The quick brown fox jumps over the lazy dog. 1234567 times!\n";
  std::string long_text;
  for (int i = 0; i < 200; ++i) long_text += text;
  const auto expected = llama3().encode(long_text, true);
  std::vector<std::vector<int32_t>> results(4);
  std::vector<std::thread> threads;
  for (auto& result : results) {
    threads.emplace_back([&] { result = llama3().encode(long_text, true); });
  }
  for (auto& thread : threads) thread.join();
  for (const auto& result : results) EXPECT_EQ(result, expected);
}

TEST(Tokenizer, MissingFolderNamesTokenizerJson) {
  const auto dir = magrq::testing::scratch_dir("tokenizer_missing");
  const std::string message = data_error_message([&] { Tokenizer::from_directory(dir); });
  EXPECT_THAT(message, HasSubstr("tokenizer.json"));
  EXPECT_THAT(message, HasSubstr("missing or unreadable"));
}

TEST(Tokenizer, MissingConfigIsRejected) {
  const auto dir = magrq::testing::scratch_dir("tokenizer_no_config");
  std::ofstream(dir / "tokenizer.json") << tiny_tokenizer_json().dump();
  EXPECT_THAT(data_error_message([&] { Tokenizer::from_directory(dir); }),
              HasSubstr("tokenizer_config.json"));
}

TEST(Tokenizer, BadJsonIsRejected) {
  const auto dir = write_tokenizer_folder("tokenizer_bad_json", "{\"model\": {\"type\": \"BPE\",");
  const std::string message = data_error_message([&] { Tokenizer::from_directory(dir); });
  EXPECT_THAT(message, HasSubstr("tokenizer.json is not valid JSON"));
}

TEST(Tokenizer, UnknownModelTypeIsRejected) {
  json tokenizer_json = tiny_tokenizer_json();
  tokenizer_json["model"]["type"] = "Unigram";
  const auto dir = write_tokenizer_folder("tokenizer_unigram", tokenizer_json.dump());
  const std::string message = data_error_message([&] { Tokenizer::from_directory(dir); });
  EXPECT_THAT(message, HasSubstr("tokenizer.json at model"));
  EXPECT_THAT(message, HasSubstr("unsupported model type \"Unigram\""));
}

TEST(Tokenizer, UnknownComponentTypesAreRejected) {
  const std::vector<std::pair<std::string, json>> cases = {
      {"normalizer", {{"type", "NFKC"}}},
      {"pre_tokenizer", {{"type", "Whitespace"}}},
      {"decoder", {{"type", "WordPiece"}, {"prefix", "##"}}},
      {"post_processor", {{"type", "BertProcessing"}}},
  };
  for (const auto& [key, component] : cases) {
    json tokenizer_json = tiny_tokenizer_json();
    tokenizer_json[key] = component;
    const std::string message = data_error_message([&] { tiny(tokenizer_json); });
    EXPECT_THAT(message, HasSubstr("tiny/tokenizer.json at " + key)) << message;
    EXPECT_THAT(message, HasSubstr(component["type"].dump())) << message;  // the quoted type
  }
}

TEST(Tokenizer, MergeOutsideVocabularyIsRejected) {
  json tokenizer_json = tiny_tokenizer_json();
  tokenizer_json["model"]["merges"].push_back("h i");  // "hi" is not a piece
  EXPECT_THAT(data_error_message([&] { tiny(tokenizer_json); }),
              HasSubstr("model.merges[2]: merge of \"h\" and \"i\""));
}

TEST(Tokenizer, MergesAsPairsEqualMergesAsStrings) {
  json as_strings = tiny_tokenizer_json();
  as_strings["normalizer"] = prepend_normalizer();
  json as_pairs = as_strings;
  as_pairs["model"]["merges"] = json::array({json::array({"▁", "h"}), json::array({"▁h", "i"})});
  EXPECT_THAT(tiny(as_strings).encode("hi hi", false), ElementsAre(7, 7));
  EXPECT_THAT(tiny(as_pairs).encode("hi hi", false), ElementsAre(7, 7));
}

TEST(Tokenizer, CharacterWithoutPieceOrUnknownIsRejected) {
  json tokenizer_json = tiny_tokenizer_json();
  tokenizer_json["model"]["unk_token"] = nullptr;
  EXPECT_THAT(data_error_message([&] { tiny(tokenizer_json).encode("hx", false); }),
              HasSubstr("character U+0078 is not in the vocabulary"));
}

TEST(Tokenizer, AddBosWithoutBosTokenIsRejected) {
  const Tokenizer tokenizer = tiny(tiny_tokenizer_json(), json::object());
  EXPECT_EQ(tokenizer.bos_id(), -1);
  EXPECT_FALSE(tokenizer.adds_bos_by_default());
  EXPECT_THAT(tokenizer.encode("hi", false), ElementsAre(4, 5));
  EXPECT_THAT(data_error_message([&] { tokenizer.encode("hi", true); }),
              HasSubstr("has no BOS token"));
}

TEST(Tokenizer, GenerationConfigAddsEosIds) {
  const json generation = {{"eos_token_id", json::array({2, 7})}};
  const Tokenizer tokenizer =
      Tokenizer::from_json(tiny_tokenizer_json(), tiny_config(), generation, "tiny");
  EXPECT_THAT(tokenizer.eos_ids(), ElementsAre(2, 7));  // "</s>" from the config, then 7

  const json single = {{"eos_token_id", 2}};
  EXPECT_THAT(Tokenizer::from_json(tiny_tokenizer_json(), tiny_config(), single, "tiny").eos_ids(),
              ElementsAre(2));

  const json out_of_range = {{"eos_token_id", json::array({2, 99})}};
  EXPECT_THAT(data_error_message([&] {
                Tokenizer::from_json(tiny_tokenizer_json(), tiny_config(), out_of_range, "tiny");
              }),
              HasSubstr("generation_config.json at eos_token_id: expected ids in [0, 8)"));
}

TEST(Tokenizer, MetaspaceOlderSpelling) {
  json tokenizer_json = tiny_tokenizer_json();
  tokenizer_json["pre_tokenizer"] = {
      {"type", "Metaspace"}, {"replacement", "▁"}, {"add_prefix_space", true}};
  tokenizer_json["decoder"] = {
      {"type", "Metaspace"}, {"replacement", "▁"}, {"add_prefix_space", true}};
  const Tokenizer tokenizer = tiny(tokenizer_json);
  EXPECT_THAT(tokenizer.encode("hi hi", false), ElementsAre(7, 7));
  // Unlike the Prepend normalizer, Metaspace adds no marker to text that already starts
  // with one (after the space became a marker).
  EXPECT_THAT(tokenizer.encode(" hi", false), ElementsAre(7));
  EXPECT_EQ(tokenizer.decode(std::vector<int32_t>{7, 7}), "hi hi");

  json with_prepend = tiny_tokenizer_json();
  with_prepend["normalizer"] = prepend_normalizer();
  EXPECT_THAT(tiny(with_prepend).encode(" hi", false), ElementsAre(3, 7));
}

TEST(Tokenizer, MetaspaceFirstSchemeSkipsTextAfterSpecialToken) {
  json first = tiny_tokenizer_json();
  first["pre_tokenizer"] = {
      {"type", "Metaspace"}, {"replacement", "▁"}, {"prepend_scheme", "first"}, {"split", false}};
  json always = first;
  always["pre_tokenizer"]["prepend_scheme"] = "always";
  EXPECT_THAT(tiny(first).encode("hi<s>hi", false), ElementsAre(7, 1, 4, 5));
  EXPECT_THAT(tiny(always).encode("hi<s>hi", false), ElementsAre(7, 1, 7));
}

TEST(Tokenizer, AddedTokenStripFlagsTakeWhiteSpace) {
  json plain = tiny_tokenizer_json();
  plain["normalizer"] = prepend_normalizer();
  plain["added_tokens"].push_back(
      {{"id", 8}, {"content", "<mask>"}, {"special", true}, {"normalized", false}});
  json stripping = plain;
  stripping["added_tokens"][3]["lstrip"] = true;
  stripping["added_tokens"][3]["rstrip"] = true;
  // Without the flags the spaces stay in the neighbouring text: "hi " and " hi".
  EXPECT_THAT(tiny(plain).encode("hi <mask> hi", false), ElementsAre(7, 3, 8, 3, 7));
  EXPECT_THAT(tiny(stripping).encode("hi <mask> hi", false), ElementsAre(7, 8, 7));
}

TEST(Tokenizer, SingleWordTokenNeedsWordBoundaries) {
  json tokenizer_json = tiny_tokenizer_json();
  tokenizer_json["normalizer"] = prepend_normalizer();
  tokenizer_json["added_tokens"].push_back({{"id", 8},
                                            {"content", "ih"},
                                            {"special", false},
                                            {"single_word", true},
                                            {"normalized", false}});
  const Tokenizer tokenizer = tiny(tokenizer_json);
  EXPECT_THAT(tokenizer.encode("hi ih hi", false), ElementsAre(7, 3, 8, 3, 7));
  // Inside a word the added token does not match, so BPE encodes its characters.
  EXPECT_THAT(tokenizer.encode("hih", false), ElementsAre(7, 4));
}

TEST(SplitRegex, WhiteSpaceFollowsOniguruma) {
  const magrq::model::detail::SplitRegex white_space("\\s+", "test");
  // NEL (U+0085) is white space; BOM (U+FEFF) and U+180E are not.
  EXPECT_EQ(white_space.find_all("a\xC2\x85" "b").size(), 1u);
  EXPECT_TRUE(white_space.find_all("a\xEF\xBB\xBF" "b").empty());
  EXPECT_TRUE(white_space.find_all("a\xE1\xA0\x8E" "b").empty());
  const auto spans = white_space.find_all(" a\t\n b\xE3\x80\x80");
  ASSERT_EQ(spans.size(), 3u);
  EXPECT_EQ(spans[1].begin, 2u);
  EXPECT_EQ(spans[1].end, 5u);
}

TEST(SplitRegex, CaseInsensitiveGroupFoldsLongS) {
  // Oniguruma folds U+017F (long s) to "s", so the Llama-3 contraction group matches "'ſ".
  const magrq::model::detail::SplitRegex contraction("(?i:'s|'t)", "test");
  EXPECT_EQ(contraction.find_all("it'\xC5\xBF").size(), 1u);
  EXPECT_EQ(contraction.find_all("IT'S").size(), 1u);
}

TEST(SplitRegex, RewritesWhiteSpaceEscapes) {
  using magrq::model::detail::rewrite_white_space_escapes;
  EXPECT_EQ(rewrite_white_space_escapes("\\s+", "test"), "[\\t-\\r\\x{85}\\p{Z}]+");
  EXPECT_EQ(rewrite_white_space_escapes("(?!\\S)", "test"), "(?![^\\t-\\r\\x{85}\\p{Z}])");
  EXPECT_EQ(rewrite_white_space_escapes("[^\\s\\p{L}]", "test"), "[^\\t-\\r\\x{85}\\p{Z}\\p{L}]");
  EXPECT_EQ(rewrite_white_space_escapes("\\\\s", "test"), "\\\\s");  // an escaped backslash
  EXPECT_THROW(rewrite_white_space_escapes("[\\S]", "test"), DataError);
}

TEST(SplitRegex, InvalidPatternIsRejected) {
  EXPECT_THROW(magrq::model::detail::SplitRegex("(unclosed", "test"), DataError);
}

}  // namespace
