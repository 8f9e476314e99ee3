// Golden token ids of three real tokenizers: llama3 (byte-level BPE), mistral-7b and the
// tiny stories260K-hf (SentencePiece-style BPE with byte fallback). The vectors were made
// with an independent tokenizer implementation and cross-checked with the Hugging Face
// Rust tokenizers. Where the two disagree, the hf_rust_* value is the expected one.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <array>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "common/test_data.hpp"
#include "model/tokenizer.hpp"

namespace {

using magrq::model::Tokenizer;
using nlohmann::json;

// SHA-256 (FIPS 180-4) of a byte string, as lowercase hex. Only for comparing with the
// hashes recorded in the golden files.
std::string sha256_hex(const std::string& message) {
  static constexpr std::array<uint32_t, 64> k = {
      0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
      0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
      0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
      0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
      0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
      0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
      0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
      0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
      0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
      0xc67178f2};
  std::array<uint32_t, 8> h = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                               0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  std::string padded = message;
  padded.push_back(static_cast<char>(0x80));
  while (padded.size() % 64 != 56) padded.push_back('\0');
  const uint64_t bit_length = static_cast<uint64_t>(message.size()) * 8;
  for (int i = 7; i >= 0; --i) padded.push_back(static_cast<char>((bit_length >> (8 * i)) & 0xff));

  const auto rotate = [](uint32_t x, int n) { return (x >> n) | (x << (32 - n)); };
  for (std::size_t block = 0; block < padded.size(); block += 64) {
    std::array<uint32_t, 64> w{};
    for (int t = 0; t < 16; ++t) {
      for (int b = 0; b < 4; ++b) {
        w[t] = (w[t] << 8) | static_cast<unsigned char>(padded[block + 4 * t + b]);
      }
    }
    for (int t = 16; t < 64; ++t) {
      const uint32_t s0 = rotate(w[t - 15], 7) ^ rotate(w[t - 15], 18) ^ (w[t - 15] >> 3);
      const uint32_t s1 = rotate(w[t - 2], 17) ^ rotate(w[t - 2], 19) ^ (w[t - 2] >> 10);
      w[t] = w[t - 16] + s0 + w[t - 7] + s1;
    }
    std::array<uint32_t, 8> v = h;
    for (int t = 0; t < 64; ++t) {
      const uint32_t s1 = rotate(v[4], 6) ^ rotate(v[4], 11) ^ rotate(v[4], 25);
      const uint32_t choice = (v[4] & v[5]) ^ (~v[4] & v[6]);
      const uint32_t t1 = v[7] + s1 + choice + k[t] + w[t];
      const uint32_t s0 = rotate(v[0], 2) ^ rotate(v[0], 13) ^ rotate(v[0], 22);
      const uint32_t majority = (v[0] & v[1]) ^ (v[0] & v[2]) ^ (v[1] & v[2]);
      const uint32_t t2 = s0 + majority;
      v = {t1 + t2, v[0], v[1], v[2], v[3] + t1, v[4], v[5], v[6]};
    }
    for (int i = 0; i < 8; ++i) h[i] += v[i];
  }
  std::string hex;
  char digits[9];
  for (const uint32_t word : h) {
    std::snprintf(digits, sizeof(digits), "%08x", word);
    hex += digits;
  }
  return hex;
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream stream(path, std::ios::binary);
  std::ostringstream contents;
  contents << stream.rdbuf();
  return contents.str();
}

std::string join_ids(const std::vector<int32_t>& ids) {
  std::string text;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (i > 0) text += ',';
    text += std::to_string(ids[i]);
  }
  return text;
}

// One tokenizer under test: its folder and its golden file, relative to the data folder.
struct GoldenSource {
  std::string name;
  std::string tokenizer_dir;
  std::string golden_file;
};

// Names the parameter in test output (instead of a dump of its bytes).
void PrintTo(const GoldenSource& source, std::ostream* out) { *out << source.name; }

const std::vector<GoldenSource>& golden_sources() {
  static const std::vector<GoldenSource> sources = {
      {"llama3", "tokenizers/llama3", "tokenizers/golden/llama3.jsonl"},
      {"mistral7b", "tokenizers/mistral-7b", "tokenizers/golden/mistral-7b.jsonl"},
      {"stories260K", "models/stories260K-hf", "tokenizers/golden/stories260K.jsonl"},
  };
  return sources;
}

// Loading the 128k llama3 vocabulary takes a noticeable fraction of a second, so each
// tokenizer is loaded once per test program.
const Tokenizer& tokenizer_for(const GoldenSource& source) {
  static std::map<std::string, Tokenizer> loaded;
  auto found = loaded.find(source.name);
  if (found == loaded.end()) {
    found = loaded
                .emplace(source.name, Tokenizer::from_directory(
                                          magrq::testing::shared_data_dir() / source.tokenizer_dir))
                .first;
  }
  return found->second;
}

std::vector<json> golden_records(const GoldenSource& source) {
  std::ifstream stream(magrq::testing::shared_data_dir() / source.golden_file);
  std::vector<json> records;
  std::string line;
  while (std::getline(stream, line)) {
    if (!line.empty()) records.push_back(json::parse(line));
  }
  return records;
}

bool is_case(const json& record) { return record["id"].is_number_integer(); }

// The expected ids of a case: HF Rust's when the reference disagrees with it.
std::vector<int32_t> expected_ids(const json& record) {
  return record.value("hf_rust_ids", record["ids"]).get<std::vector<int32_t>>();
}

std::string expected_decoded(const json& record) {
  return record.value("hf_rust_decoded", record["decoded"]).get<std::string>();
}

std::vector<int32_t> expected_default_ids(const json& record) {
  if (record.contains("hf_rust_default_ids")) {
    return record["hf_rust_default_ids"].get<std::vector<int32_t>>();
  }
  std::vector<int32_t> ids = record["default_special"]["prefix"].get<std::vector<int32_t>>();
  const std::vector<int32_t> body = record["ids"].get<std::vector<int32_t>>();
  ids.insert(ids.end(), body.begin(), body.end());
  for (const int32_t id : record["default_special"]["suffix"].get<std::vector<int32_t>>()) {
    ids.push_back(id);
  }
  return ids;
}

std::string case_label(const json& record) {
  return "case " + record["id"].dump() + " (" + record["name"].get<std::string>() + ")";
}

// The two whole-file texts of the golden files, built from wiki.test.raw.
std::string wikitext_join(const std::string& join_id) {
  const std::string raw = read_file(magrq::testing::shared_data_dir() /
                                    "text/wikitext-2-raw/wiki.test.raw");
  std::vector<std::string> rows;
  std::size_t start = 0;
  while (start < raw.size()) {
    const std::size_t newline = raw.find('\n', start);
    const std::size_t end = newline == std::string::npos ? raw.size() : newline + 1;
    std::string line = raw.substr(start, end - start);
    start = end;
    if (join_id == "wikitext2_test_stripped_rows_join") {
      if (!line.empty() && line.back() == '\n') line.pop_back();
      if (line == " ") line.clear();
    } else if (line == " \n") {
      line.clear();
    }
    rows.push_back(std::move(line));
  }
  std::string text;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    if (i > 0) text += "\n\n";
    text += rows[i];
  }
  return text;
}

class GoldenTokenizer : public ::testing::TestWithParam<GoldenSource> {};

TEST_P(GoldenTokenizer, EncodesEveryCase) {
  MAGRQ_REQUIRE_DATA();
  const Tokenizer& tokenizer = tokenizer_for(GetParam());
  int cases = 0;
  for (const json& record : golden_records(GetParam())) {
    if (!is_case(record)) continue;
    ++cases;
    const std::string text = record["text"].get<std::string>();
    EXPECT_EQ(tokenizer.encode(text, false), expected_ids(record)) << case_label(record);
  }
  EXPECT_EQ(cases, 157);
}

TEST_P(GoldenTokenizer, DecodesEveryCase) {
  MAGRQ_REQUIRE_DATA();
  const Tokenizer& tokenizer = tokenizer_for(GetParam());
  for (const json& record : golden_records(GetParam())) {
    if (!is_case(record)) continue;
    const std::vector<int32_t> ids = expected_ids(record);
    EXPECT_EQ(tokenizer.decode(ids, false), expected_decoded(record)) << case_label(record);
  }
}

TEST_P(GoldenTokenizer, AddsDefaultSpecialTokens) {
  MAGRQ_REQUIRE_DATA();
  const Tokenizer& tokenizer = tokenizer_for(GetParam());
  for (const json& record : golden_records(GetParam())) {
    if (!is_case(record)) continue;
    const std::string text = record["text"].get<std::string>();
    EXPECT_EQ(tokenizer.encode_with_default_special_tokens(text), expected_default_ids(record))
        << case_label(record);
  }
}

TEST_P(GoldenTokenizer, RoundTripsLosslessCases) {
  MAGRQ_REQUIRE_DATA();
  const Tokenizer& tokenizer = tokenizer_for(GetParam());
  int lossless = 0;
  for (const json& record : golden_records(GetParam())) {
    if (!is_case(record) || !record["roundtrip"].get<bool>()) continue;
    ++lossless;
    const std::string text = record["text"].get<std::string>();
    EXPECT_EQ(tokenizer.decode(tokenizer.encode(text, false), false), text) << case_label(record);
  }
  EXPECT_GT(lossless, 100);
}

TEST_P(GoldenTokenizer, EncodesWholeWikitextTest) {
  MAGRQ_REQUIRE_DATA();
  const Tokenizer& tokenizer = tokenizer_for(GetParam());
  int whole_files = 0;
  for (const json& record : golden_records(GetParam())) {
    if (is_case(record)) continue;
    ++whole_files;
    const std::string join_id = record["id"].get<std::string>();
    const std::string text = wikitext_join(join_id);
    ASSERT_EQ(sha256_hex(text), record["text_sha256"].get<std::string>()) << join_id;

    const std::vector<int32_t> ids = tokenizer.encode(text, false);
    EXPECT_EQ(static_cast<int64_t>(ids.size()), record["n_tokens"].get<int64_t>()) << join_id;
    EXPECT_EQ(sha256_hex(join_ids(ids)), record["ids_sha256"].get<std::string>()) << join_id;
    const auto first = record["first_64"].get<std::vector<int32_t>>();
    const auto last = record["last_64"].get<std::vector<int32_t>>();
    ASSERT_GE(ids.size(), first.size());
    EXPECT_EQ(std::vector<int32_t>(ids.begin(), ids.begin() + first.size()), first) << join_id;
    EXPECT_EQ(std::vector<int32_t>(ids.end() - last.size(), ids.end()), last) << join_id;
    EXPECT_EQ(static_cast<int64_t>(tokenizer.encode_with_default_special_tokens(text).size()),
              record["n_tokens_with_default_special"].get<int64_t>())
        << join_id;
    EXPECT_EQ(tokenizer.decode(ids) == text, record["decode_roundtrip"].get<bool>()) << join_id;
  }
  EXPECT_EQ(whole_files, 2);
}

INSTANTIATE_TEST_SUITE_P(ThreeTokenizers, GoldenTokenizer, ::testing::ValuesIn(golden_sources()),
                         [](const auto& info) { return info.param.name; });

TEST(Sha256, MatchesKnownDigests) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

}  // namespace
