#include "model/calibration_windows.hpp"

#include <gtest/gtest.h>

#include <fstream>

#include "common/test_data.hpp"
#include "core/error.hpp"

namespace magrq::model {
namespace {

// One token per byte, so positions are easy to check against the text.
std::vector<int32_t> byte_tokens(std::string_view text) {
  return std::vector<int32_t>(text.begin(), text.end());
}

std::filesystem::path write_text(const std::string& name, const std::string& text) {
  const auto dir = testing::scratch_dir(name);
  std::ofstream(dir / "text.txt") << text;
  return dir / "text.txt";
}

TEST(CalibrationWindows, SameSeedGivesSameWindows) {
  std::string text;
  for (int i = 0; i < 5000; ++i) text += static_cast<char>('a' + i % 26);
  const auto spec = TextSpec::parse("text:" + write_text("calib_seed", text).string());
  const CalibrationOptions options{8, 16, 3};
  const auto first = sample_calibration_windows(spec, byte_tokens, options);
  const auto second = sample_calibration_windows(spec, byte_tokens, options);
  ASSERT_EQ(first.windows.size(), 8u);
  EXPECT_EQ(first.windows, second.windows);
  for (size_t k = 0; k < first.windows.size(); ++k) {
    EXPECT_EQ(first.positions[k].start, second.positions[k].start);
    const auto start = static_cast<size_t>(first.positions[k].start);
    EXPECT_EQ(first.windows[k], byte_tokens(std::string_view(text).substr(start, 16)));
  }
  const auto other = sample_calibration_windows(spec, byte_tokens, CalibrationOptions{8, 16, 4});
  EXPECT_NE(other.windows, first.windows);
  EXPECT_EQ(flatten_positions(first.positions).size(), 16u);
}

TEST(CalibrationWindows, CharacterRangeLimitsTheText) {
  const std::string text = std::string(1000, 'x') + std::string(1000, 'y');
  const auto spec = TextSpec::parse("text:" + write_text("calib_range", text).string() + "@0.5:1");
  const auto result = sample_calibration_windows(spec, byte_tokens, CalibrationOptions{10, 50, 0});
  EXPECT_EQ(result.source_tokens, 1000);
  for (const auto& window : result.windows) {
    for (const int32_t token : window) {
      EXPECT_EQ(token, 'y');
    }
  }
}

TEST(CalibrationWindows, TooLittleTextNamesSourceAndCounts) {
  const auto path = write_text("calib_short", std::string(100, 'z'));
  const auto spec = TextSpec::parse("text:" + path.string());
  try {
    sample_calibration_windows(spec, byte_tokens, CalibrationOptions{4, 32, 0});
    FAIL() << "expected DataError";
  } catch (const DataError& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find(path.string()), std::string::npos) << message;
    EXPECT_NE(message.find("has 100 tokens"), std::string::npos) << message;
    EXPECT_NE(message.find("needs at least 128"), std::string::npos) << message;
  }
}

TEST(CalibrationWindows, DocumentsShorterThanSeqlenAreSkipped) {
  const auto dir = testing::scratch_dir("calib_c4");
  std::ofstream(dir / "docs.jsonl") << R"({"text": "short"})" << "\n"
                                    << R"({"text": "a long enough document here"})" << "\n";
  const auto spec = TextSpec::parse("c4:" + (dir / "docs.jsonl").string());
  const auto result = sample_calibration_windows(spec, byte_tokens, CalibrationOptions{5, 10, 1});
  ASSERT_EQ(result.windows.size(), 5u);
  for (const auto& position : result.positions) {
    EXPECT_EQ(position.document, 1);
    EXPECT_LE(position.start, 27 - 10);
  }
}

TEST(CalibrationWindows, NoLongDocumentIsAnError) {
  const auto dir = testing::scratch_dir("calib_c4_short");
  std::ofstream(dir / "docs.jsonl") << R"({"text": "short"})" << "\n";
  const auto spec = TextSpec::parse("c4:" + (dir / "docs.jsonl").string());
  EXPECT_THROW(sample_calibration_windows(spec, byte_tokens, CalibrationOptions{2, 10, 1}), DataError);
}

TEST(CalibrationWindows, InvalidOptionsAreRejected) {
  EXPECT_THROW((CalibrationOptions{0, 16, 0}.validate()), ConfigError);
  EXPECT_THROW((CalibrationOptions{4, 0, 0}.validate()), ConfigError);
}

}  // namespace
}  // namespace magrq::model
