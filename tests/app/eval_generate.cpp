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

// Runs magrq with the arguments (already shell-quoted) and captures its stdout.
RunResult run_magrq(const std::string& arguments) {
  const std::string command = std::string(MAGRQ_BINARY_DIR "/bin/magrq ") + arguments + " 2>/dev/null";
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

std::string quoted(const fs::path& path) { return "'" + path.string() + "'"; }

TEST(GenerateCommand, StoriesGreedyMatchesLlama2cOutput) {
  MAGRQ_REQUIRE_DATA();
  const fs::path data = magrq::testing::shared_data_dir();
  const RunResult result =
      run_magrq("generate --model " + quoted(data / "models" / "stories260K-hf") + " --max-new-tokens 200");
  EXPECT_EQ(result.exit_code, 0);
  EXPECT_EQ(result.output, read_bytes(data / "reference" / "stories260K_greedy_t0_n200.txt"));
}

TEST(GenerateCommand, BabyllamaGreedyMatchesReference) {
  MAGRQ_REQUIRE_DATA();
  const fs::path data = magrq::testing::shared_data_dir();
  const RunResult result =
      run_magrq("generate --model " + quoted(data / "models" / "babyllama105-hf") + " --max-new-tokens 200");
  EXPECT_EQ(result.exit_code, 0);
  EXPECT_EQ(result.output, read_bytes(data / "reference" / "babyllama105_greedy_t0_n200.txt"));
}

TEST(GenerateCommand, PromptIsContinued) {
  MAGRQ_REQUIRE_DATA();
  const fs::path data = magrq::testing::shared_data_dir();
  const RunResult result = run_magrq("generate --model " + quoted(data / "models" / "stories260K-hf") +
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
      run_magrq("generate --model " + quoted(data / "models" / "stories260K-hf") + " --max-new-tokens -3");
  EXPECT_EQ(result.exit_code, 2);
}

}  // namespace
