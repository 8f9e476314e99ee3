// The magrq generate and eval commands, run as the built binary on the real models.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include "common/test_data.hpp"

namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

struct RunResult {
  int exit_code = -1;
  std::string output;  // stdout only; logs go to stderr
};

// Runs magrq with the arguments (already shell-quoted) and captures its stdout, and its
// stderr too when with_logs is set.
RunResult run_magrq(const std::string& arguments, bool with_logs = false) {
  const std::string command =
      std::string(MAGRQ_BINARY_DIR "/bin/magrq ") + arguments + (with_logs ? " 2>&1" : " 2>/dev/null");
  RunResult result;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) {
    return result;
  }
  std::array<char, 4096> buffer{};
  size_t count = 0;
  while ((count = std::fread(buffer.data(), 1, buffer.size(), pipe)) > 0) {
    result.output.append(buffer.data(), count);
  }
  const int status = pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

std::string read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream content;
  content << in.rdbuf();
  return content.str();
}

std::string shell_quoted(const fs::path& path) { return "'" + path.string() + "'"; }

TEST(GenerateCommand, StoriesGreedyMatchesLlama2cOutput) {
  MAGRQ_REQUIRE_DATA();
  const fs::path data = magrq::testing::shared_data_dir();
  const RunResult result =
      run_magrq("generate --model " + shell_quoted(data / "models" / "stories260K-hf") + " --max-new-tokens 200");
  EXPECT_EQ(result.exit_code, 0);
  EXPECT_EQ(result.output, read_bytes(data / "reference" / "stories260K_greedy_t0_n200.txt"));
}

TEST(GenerateCommand, BabyllamaGreedyMatchesReference) {
  MAGRQ_REQUIRE_DATA();
  const fs::path data = magrq::testing::shared_data_dir();
  const RunResult result =
      run_magrq("generate --model " + shell_quoted(data / "models" / "babyllama105-hf") + " --max-new-tokens 200");
  EXPECT_EQ(result.exit_code, 0);
  EXPECT_EQ(result.output, read_bytes(data / "reference" / "babyllama105_greedy_t0_n200.txt"));
}

TEST(GenerateCommand, PromptIsContinued) {
  MAGRQ_REQUIRE_DATA();
  const fs::path data = magrq::testing::shared_data_dir();
  const RunResult result = run_magrq("generate --model " + shell_quoted(data / "models" / "stories260K-hf") +
                                     " --prompt 'Once upon a time' --max-new-tokens 10");
  EXPECT_EQ(result.exit_code, 0);
  EXPECT_THAT(result.output, ::testing::StartsWith("Once upon a time"));
  EXPECT_GT(result.output.size(), std::string("Once upon a time").size());
}

TEST(GenerateCommand, MissingModelFailsWithDataExitCode) {
  const RunResult result = run_magrq("generate --model /nonexistent/model --max-new-tokens 5");
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_TRUE(result.output.empty());
}

TEST(GenerateCommand, NegativeTokenCountIsUsageError) {
  MAGRQ_REQUIRE_DATA();
  const fs::path data = magrq::testing::shared_data_dir();
  const RunResult result =
      run_magrq("generate --model " + shell_quoted(data / "models" / "stories260K-hf") + " --max-new-tokens -3");
  EXPECT_EQ(result.exit_code, 2);
}

TEST(EvalCommand, PrintsPerplexityAndTokenCounts) {
  MAGRQ_REQUIRE_DATA();
  const fs::path data = magrq::testing::shared_data_dir();
  const fs::path text = data / "text" / "tinystories" / "tinystories_val.txt";
  const RunResult result = run_magrq("eval --model " + shell_quoted(data / "models" / "stories260K-hf") +
                                     " --data " + shell_quoted("text:" + text.string() + "@0.6:1.0") +
                                     " --seqlen 256 --max-windows 20");
  EXPECT_EQ(result.exit_code, 0);
  EXPECT_THAT(result.output, HasSubstr("windows: 20\n"));
  EXPECT_THAT(result.output, HasSubstr("seqlen: 256\n"));
  EXPECT_THAT(result.output, HasSubstr("evaluated_tokens: 5120\n"));
  EXPECT_THAT(result.output, HasSubstr("source_tokens: 158392\n"));

  // The full 618 windows give 5.5965 (pinned in the perplexity test); 20 windows
  // differ from it but stay in the same range.
  const size_t at = result.output.find("perplexity: ");
  ASSERT_NE(at, std::string::npos);
  const double perplexity = std::stod(result.output.substr(at + 12));
  EXPECT_GT(perplexity, 3.0);
  EXPECT_LT(perplexity, 10.0);
}

TEST(EvalCommand, TooLittleTextNamesSourceAndCounts) {
  MAGRQ_REQUIRE_DATA();
  const fs::path data = magrq::testing::shared_data_dir();
  const fs::path dir = magrq::testing::scratch_dir("eval_short_text");
  std::ofstream(dir / "short.txt") << "Once upon a time.";
  const RunResult result = run_magrq("eval --model " + shell_quoted(data / "models" / "stories260K-hf") +
                                         " --data " + shell_quoted("text:" + (dir / "short.txt").string()) +
                                         " --seqlen 256",
                                     /*with_logs=*/true);
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_THAT(result.output, HasSubstr("short.txt has "));
  EXPECT_THAT(result.output, HasSubstr("tokens; one window needs 256"));
}

TEST(EvalCommand, InvalidSourceKindIsUsageError) {
  MAGRQ_REQUIRE_DATA();
  const fs::path data = magrq::testing::shared_data_dir();
  const RunResult result = run_magrq("eval --model " + shell_quoted(data / "models" / "stories260K-hf") +
                                         " --data wiki:x.raw --seqlen 256",
                                     /*with_logs=*/true);
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_THAT(result.output, HasSubstr("expected KIND:PATH with KIND wikitext2, c4 or text"));
}

}  // namespace
