// End-to-end tests of `magrq run` and `magrq calibrate` under mpirun on stories260K:
// outputs identical for 1, 2 and 3 ranks, a killed rank ending the job, and a resumed
// run reproducing an uninterrupted one byte for byte.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include "common/test_data.hpp"

namespace magrq {
namespace {

namespace fs = std::filesystem;

const fs::path kMagrq = fs::path(MAGRQ_BINARY_DIR) / "bin" / "magrq";

std::string mpirun(int ranks) {
  return "mpirun --allow-run-as-root --oversubscribe -np " + std::to_string(ranks) + " ";
}

// Runs a shell command with its output in log; returns the exit status.
int run(const std::string& command, const fs::path& log) {
  const std::string full = command + " > " + log.string() + " 2>&1";
  const int status = std::system(full.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

std::string read_file(const fs::path& path) {
  std::ifstream stream(path, std::ios::binary);
  std::stringstream text;
  text << stream.rdbuf();
  return text.str();
}

// A small sequential or independent experiment on stories260K writing into dir.
fs::path write_experiment(const fs::path& dir, const std::string& mode, int block_rows, int magr_iterations) {
  const fs::path data = testing::shared_data_dir();
  std::ofstream yaml(dir / "experiment.yaml");
  yaml << "name: test\n"
       << "model: {path: " << (data / "models/stories260K-hf").string() << "}\n"
       << "calibration:\n"
       << "  source: text:" << (data / "text/tinystories/tinystories_val.txt").string() << "@0:0.6\n"
       << "  nsamples: 12\n  seqlen: 64\n  seed: 0\n  mode: " << mode << "\n"
       << "store: {path: " << (dir / "hessians").string() << "}\n"
       << "magr: {iterations: " << magr_iterations << "}\n"
       << "quantizer: {method: gptq, bits: 3}\n"
       << "parallel: {block_rows: " << block_rows << "}\n"
       << "output: {dir: " << (dir / "out").string() << ", unsupported_shape: dequantized_only}\n"
       << "evaluation:\n  sources: [\"text:" << (data / "text/tinystories/tinystories_val.txt").string()
       << "@0.6:1\"]\n  seqlen: 64\n  max_windows: 6\n";
  return dir / "experiment.yaml";
}

// Every file of the two exported checkpoints, by relative path.
std::map<std::string, std::string> checkpoint_files(const fs::path& out) {
  std::map<std::string, std::string> files;
  for (const char* sub : {"gptq", "dequantized"}) {
    for (const auto& entry : fs::recursive_directory_iterator(out / sub)) {
      if (entry.is_regular_file()) {
        files[fs::relative(entry.path(), out).string()] = read_file(entry.path());
      }
    }
  }
  return files;
}

bool has_mpirun() { return std::system("command -v mpirun > /dev/null 2>&1") == 0; }

class RunJobMpi : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!has_mpirun()) {
      GTEST_SKIP() << "mpirun not found";
    }
  }
};

TEST_F(RunJobMpi, OutputsIdenticalForOneTwoThreeRanks) {
  MAGRQ_REQUIRE_DATA();
  std::map<std::string, std::string> reference;
  for (const int ranks : {1, 2, 3}) {
    const fs::path dir = testing::scratch_dir("run_ranks_" + std::to_string(ranks));
    const fs::path experiment = write_experiment(dir, "sequential", 16, 40);
    const int status = run(mpirun(ranks) + kMagrq.string() + " run " + experiment.string(), dir / "log.txt");
    ASSERT_EQ(status, 0) << read_file(dir / "log.txt");
    const auto files = checkpoint_files(dir / "out");
    ASSERT_FALSE(files.empty());
    EXPECT_TRUE(fs::exists(dir / "out" / "report.json"));
    EXPECT_TRUE(fs::exists(dir / "out" / "report.md"));
    if (ranks == 1) {
      reference = files;
      continue;
    }
    ASSERT_EQ(files.size(), reference.size());
    for (const auto& [name, bytes] : reference) {
      EXPECT_TRUE(files.at(name) == bytes) << name << " differs between 1 and " << ranks << " ranks";
    }
  }
  const fs::path verify_log = testing::scratch_dir("run_ranks_verify") / "log.txt";
  EXPECT_EQ(run(kMagrq.string() + " verify " + (testing::scratch_dir("run_ranks_1").parent_path() /
                                                 "run_ranks_3" / "out").string(),
                verify_log),
            0)
      << read_file(verify_log);
}

TEST_F(RunJobMpi, StoresIdenticalForOneTwoThreeRanks) {
  MAGRQ_REQUIRE_DATA();
  if (std::system("command -v h5diff > /dev/null 2>&1") != 0) {
    GTEST_SKIP() << "h5diff not found";
  }
  fs::path first;
  for (const int ranks : {1, 2, 3}) {
    const fs::path dir = testing::scratch_dir("calibrate_ranks_" + std::to_string(ranks));
    const fs::path experiment = write_experiment(dir, "independent", 0, 40);
    ASSERT_EQ(run(mpirun(ranks) + kMagrq.string() + " calibrate " + experiment.string(), dir / "log.txt"), 0)
        << read_file(dir / "log.txt");
    if (ranks == 1) {
      first = dir / "hessians";
      continue;
    }
    // h5diff exits 0 and prints nothing when every dataset and attribute is equal.
    const fs::path diff_log = dir / "h5diff.txt";
    EXPECT_EQ(run("h5diff " + first.string() + " " + (dir / "hessians").string(), diff_log), 0)
        << read_file(diff_log);
    EXPECT_TRUE(read_file(diff_log).empty()) << read_file(diff_log);
  }
}

TEST_F(RunJobMpi, RerunReusesStoreAndRejectsChangedSeed) {
  MAGRQ_REQUIRE_DATA();
  const fs::path dir = testing::scratch_dir("calibrate_reuse");
  const fs::path experiment = write_experiment(dir, "independent", 0, 40);
  ASSERT_EQ(run(kMagrq.string() + " calibrate " + experiment.string(), dir / "first.txt"), 0);
  ASSERT_EQ(run(kMagrq.string() + " calibrate " + experiment.string(), dir / "second.txt"), 0);
  EXPECT_NE(read_file(dir / "second.txt").find("reusing the Hessian store"), std::string::npos)
      << read_file(dir / "second.txt");
  ASSERT_EQ(run(kMagrq.string() + " hessians inspect " + (dir / "hessians").string(), dir / "inspect.txt"), 0)
      << read_file(dir / "inspect.txt");
  EXPECT_NE(read_file(dir / "inspect.txt").find("mlp_out"), std::string::npos) << read_file(dir / "inspect.txt");
  std::string yaml = read_file(experiment);
  yaml.replace(yaml.find("seed: 0"), 7, "seed: 5");
  std::ofstream(experiment) << yaml;
  EXPECT_NE(run(kMagrq.string() + " calibrate " + experiment.string(), dir / "third.txt"), 0);
  EXPECT_NE(read_file(dir / "third.txt").find("seed differs: stored 0, this run 5"), std::string::npos)
      << read_file(dir / "third.txt");
}

// The parent pid of a process, from /proc/PID/stat (the field after the state).
pid_t parent_of(pid_t pid) {
  const std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
  const size_t close = stat.rfind(')');
  if (close == std::string::npos) {
    return -1;
  }
  std::istringstream fields(stat.substr(close + 2));
  std::string state;
  pid_t parent = -1;
  fields >> state >> parent;
  return parent;
}

bool descends_from(pid_t pid, pid_t ancestor) {
  for (int depth = 0; depth < 16 && pid > 1; ++depth) {
    pid = parent_of(pid);
    if (pid == ancestor) {
      return true;
    }
  }
  return false;
}

// The pid of the magrq process that is MPI rank `rank` of the job started by `launcher`
// (never a process of another job running on the machine).
pid_t find_rank_pid(int rank, pid_t launcher) {
  for (const auto& entry : fs::directory_iterator("/proc")) {
    const std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) {
      continue;
    }
    if (read_file(entry.path() / "comm") != "magrq\n") {
      continue;
    }
    const std::string environ = read_file(entry.path() / "environ");
    const auto pid = static_cast<pid_t>(std::stol(name));
    if (environ.find("OMPI_COMM_WORLD_RANK=" + std::to_string(rank) + '\0') != std::string::npos &&
        descends_from(pid, launcher)) {
      return pid;
    }
  }
  return -1;
}

size_t journal_items(const fs::path& journal) {
  if (!fs::exists(journal)) {
    return 0;
  }
  size_t count = 0;
  for (const auto& entry : fs::directory_iterator(journal)) {
    count += entry.path().extension() == ".h5" ? 1 : 0;
  }
  return count;
}

TEST_F(RunJobMpi, KilledRankEndsJobAndRerunResumesIdentically) {
  MAGRQ_REQUIRE_DATA();
  // Uninterrupted reference with the same settings.
  const fs::path reference_dir = testing::scratch_dir("resume_reference");
  const fs::path reference_experiment = write_experiment(reference_dir, "sequential", 4, 2000);
  ASSERT_EQ(run(mpirun(2) + kMagrq.string() + " run " + reference_experiment.string(), reference_dir / "log.txt"), 0)
      << read_file(reference_dir / "log.txt");

  const fs::path dir = testing::scratch_dir("resume_killed");
  const fs::path experiment = write_experiment(dir, "sequential", 4, 2000);
  const std::string command = mpirun(2) + kMagrq.string() + " run " + experiment.string() + " > " +
                              (dir / "killed.txt").string() + " 2>&1";
  const pid_t launcher = fork();
  ASSERT_GE(launcher, 0);
  if (launcher == 0) {
    execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  // Find rank 1, wait until a few items are durable, then kill it with SIGKILL.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  pid_t victim = -1;
  while (victim <= 0 && std::chrono::steady_clock::now() < deadline) {
    victim = find_rank_pid(1, launcher);
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_GT(victim, 0) << "rank 1 not found";
  while (journal_items(dir / "out" / "journal") < 3 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_EQ(kill(victim, SIGKILL), 0);
  const auto killed_at = std::chrono::steady_clock::now();
  int status = 0;
  waitpid(launcher, &status, 0);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - killed_at).count();
  EXPECT_LT(seconds, 60.0);
  EXPECT_FALSE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << read_file(dir / "killed.txt");
  EXPECT_FALSE(fs::exists(dir / "out" / "report.json"));

  // The rerun resumes from the journal and reproduces the reference byte for byte.
  ASSERT_EQ(run(mpirun(2) + kMagrq.string() + " run " + experiment.string(), dir / "resumed.txt"), 0)
      << read_file(dir / "resumed.txt");
  EXPECT_NE(read_file(dir / "resumed.txt").find("resume:"), std::string::npos);
  const auto expected = checkpoint_files(reference_dir / "out");
  const auto resumed = checkpoint_files(dir / "out");
  ASSERT_EQ(resumed.size(), expected.size());
  for (const auto& [name, bytes] : expected) {
    EXPECT_TRUE(resumed.at(name) == bytes) << name << " differs after resuming";
  }
}

TEST_F(RunJobMpi, ChangedConfigRefusesToResume) {
  MAGRQ_REQUIRE_DATA();
  const fs::path dir = testing::scratch_dir("resume_changed");
  const fs::path experiment = write_experiment(dir, "independent", 0, 20);
  ASSERT_EQ(run(kMagrq.string() + " run " + experiment.string(), dir / "first.txt"), 0)
      << read_file(dir / "first.txt");
  std::string yaml = read_file(experiment);
  yaml.replace(yaml.find("bits: 3"), 7, "bits: 4");
  std::ofstream(experiment) << yaml;
  EXPECT_NE(run(kMagrq.string() + " run " + experiment.string(), dir / "second.txt"), 0);
  EXPECT_NE(read_file(dir / "second.txt").find("--restart"), std::string::npos) << read_file(dir / "second.txt");
  EXPECT_EQ(run(kMagrq.string() + " run --restart " + experiment.string(), dir / "third.txt"), 0)
      << read_file(dir / "third.txt");
}

TEST_F(RunJobMpi, DryRunPrintsPlanAndWritesNothing) {
  MAGRQ_REQUIRE_DATA();
  const fs::path dir = testing::scratch_dir("dry_run");
  const fs::path experiment = write_experiment(dir, "sequential", 0, 20);
  ASSERT_EQ(run(kMagrq.string() + " run --dry-run " + experiment.string(), dir / "log.txt"), 0);
  const std::string log = read_file(dir / "log.txt");
  EXPECT_NE(log.find("not packable: model.layers.0.mlp.down_proj"), std::string::npos) << log;
  EXPECT_FALSE(fs::exists(dir / "out"));
  EXPECT_FALSE(fs::exists(dir / "hessians"));
}

TEST_F(RunJobMpi, PlanWithNothingToQuantizeIsRejected) {
  MAGRQ_REQUIRE_DATA();
  const fs::path dir = testing::scratch_dir("nothing_to_quantize");
  const fs::path experiment = write_experiment(dir, "sequential", 0, 20);
  std::string yaml = read_file(experiment);
  yaml.replace(yaml.find("bits: 3}"), 8, "bits: 3, group_size: 7}");
  yaml.replace(yaml.find("dequantized_only"), 16, "keep");
  std::ofstream(experiment) << yaml;
  EXPECT_EQ(run(kMagrq.string() + " run --dry-run " + experiment.string(), dir / "log.txt"), 2);
  const std::string log = read_file(dir / "log.txt");
  EXPECT_NE(log.find("no module would be quantized"), std::string::npos) << log;
  EXPECT_NE(log.find("group size 7 does not divide"), std::string::npos) << log;
}

}  // namespace
}  // namespace magrq
