// Tests of `magrq sweep`: expansion order and point names, the errors for invalid sweep
// sections, the CSV and Markdown tables, the --list and --count output, and an
// end-to-end sweep of stories260K under mpirun that shares one Hessian store.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <fstream>
#include <regex>
#include <sstream>

#include "app/experiment.hpp"
#include "app/sweep.hpp"
#include "app/sweep_table.hpp"
#include "common/test_data.hpp"
#include "core/error.hpp"

namespace magrq::app {
namespace {

namespace fs = std::filesystem;

const fs::path kMagrq = fs::path(MAGRQ_BINARY_DIR) / "bin" / "magrq";

// A base experiment in independent mode; parsing it touches no file.
const std::string kBase = R"(name: base
model: {path: model}
calibration: {source: "text:calibration.txt", mode: independent}
store: {path: out/hessians.h5}
quantizer: {method: gptq, bits: 4}
output: {dir: out}
)";

// The ConfigError message of parse_sweep, or "" when it does not throw.
std::string sweep_error(const std::string& yaml) {
  try {
    parse_sweep(yaml, "exp.yaml");
  } catch (const ConfigError& error) {
    return error.what();
  }
  return "";
}

std::vector<std::string> names(const Sweep& sweep) {
  std::vector<std::string> result;
  for (const SweepPoint& point : sweep.points) {
    result.push_back(point.name);
  }
  return result;
}

std::string read_file(const fs::path& path) {
  std::ifstream stream(path, std::ios::binary);
  std::stringstream text;
  text << stream.rdbuf();
  return text.str();
}

// Runs a shell command with its output in log; returns the exit status.
int run(const std::string& command, const fs::path& log) {
  const int status = std::system((command + " > " + log.string() + " 2>&1").c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

size_t count_of(const std::string& text, const std::string& part) {
  size_t count = 0;
  for (size_t at = text.find(part); at != std::string::npos; at = text.find(part, at + 1)) {
    ++count;
  }
  return count;
}

TEST(Sweep, GridOrderHasFirstKeyOutermost) {
  const Sweep sweep = parse_sweep(kBase + R"(sweep:
  quantizer.bits: [4, 3]
  quantizer.method: [gptq, rtn]
  magr.enabled: [false, true]
)", "exp.yaml");
  const std::vector<std::string> expected = {
      "bits4-gptq-no-magr", "bits4-gptq-magr", "bits4-rtn-no-magr", "bits4-rtn-magr",
      "bits3-gptq-no-magr", "bits3-gptq-magr", "bits3-rtn-no-magr", "bits3-rtn-magr"};
  EXPECT_EQ(names(sweep), expected);
  ASSERT_EQ(sweep.points.size(), 8u);
  EXPECT_EQ(sweep.points[5].index, 5u);
  EXPECT_EQ(sweep.points[5].config.quantizer.bits, 3);
  EXPECT_EQ(sweep.points[5].config.quantizer.method, "gptq");
  EXPECT_TRUE(sweep.points[5].config.magr.enabled);
  EXPECT_FALSE(sweep.points[6].config.magr.enabled);
  const std::vector<std::string> keys = {"quantizer.bits", "quantizer.method", "magr.enabled"};
  EXPECT_EQ(sweep.keys, keys);
}

TEST(Sweep, PointWritesToItsOwnFolder) {
  const Sweep sweep = parse_sweep(kBase + "sweep: {quantizer.group_size: [-1, 32]}\n", "exp.yaml");
  ASSERT_EQ(sweep.points.size(), 2u);
  EXPECT_EQ(sweep.dir, fs::path("out"));
  EXPECT_EQ(sweep.points[0].name, "gs-1");
  EXPECT_EQ(sweep.points[1].name, "gs32");
  EXPECT_EQ(sweep.points[1].config.output.dir, "out/gs32");
  EXPECT_EQ(sweep.points[1].config.name, "base-gs32");
  EXPECT_EQ(sweep.points[1].config.quantizer.group_size, 32);
  // Every point keeps the base store, which is what they share.
  EXPECT_EQ(sweep.points[0].config.store.path, "out/hessians.h5");
  EXPECT_EQ(sweep.points[1].config.store.path, "out/hessians.h5");
  EXPECT_EQ(point_dir(sweep, sweep.points[1]), fs::path("out") / "gs32");
}

TEST(Sweep, SettingLabelsAreFolderSafe) {
  const nlohmann::ordered_json none;
  EXPECT_EQ(setting_label("quantizer.bits", YAML::Load("4"), 0, 4), "bits4");
  EXPECT_EQ(setting_label("quantizer.group_size", YAML::Load("-1"), 0, -1), "gs-1");
  EXPECT_EQ(setting_label("quantizer.method", YAML::Load("rtn"), 0, "gptq"), "rtn");
  EXPECT_EQ(setting_label("magr.enabled", YAML::Load("false"), 0, true), "no-magr");
  EXPECT_EQ(setting_label("quantizer.act_order", YAML::Load("true"), 0, false), "act_order");
  EXPECT_EQ(setting_label("magr.alpha", YAML::Load("auto"), 0, none), "alpha-auto");
  EXPECT_EQ(setting_label("magr.alpha", YAML::Load("1e-3"), 0, none), "alpha1e-3");
  EXPECT_EQ(setting_label("magr.alpha", YAML::Load("[1e-3, 1e-4]"), 0, none), "alpha1e-3_1e-4");
  EXPECT_EQ(setting_label("output.formats", YAML::Load("[gptq]"), 0, none), "formats-gptq");
  EXPECT_EQ(setting_label("overrides", YAML::Load("[{pattern: 'q_proj$', bits: 8}]"), 2, none), "overrides-3");
  EXPECT_EQ(setting_label("evaluation.sources", YAML::Load("'text:a b/c.txt'"), 0, none), "sources-text_a_b_c.txt");
}

TEST(Sweep, ExplicitPointsKeepOrderAndNames) {
  const Sweep sweep = parse_sweep(kBase + R"(sweep:
  points:
    - {quantizer.bits: 4}
    - {quantizer.bits: 2, quantizer.cd_iterations: 3, name: w2-cd}
    - {quantizer.group_size: 32, quantizer.static_groups: true}
)", "exp.yaml");
  const std::vector<std::string> expected = {"bits4", "w2-cd", "gs32-static_groups"};
  EXPECT_EQ(names(sweep), expected);
  const std::vector<std::string> keys = {"quantizer.bits", "quantizer.cd_iterations", "quantizer.group_size",
                                         "quantizer.static_groups"};
  EXPECT_EQ(sweep.keys, keys);
  EXPECT_EQ(sweep.points[1].config.quantizer.cd_iterations, 3);
  EXPECT_EQ(sweep.points[2].config.quantizer.bits, 4);  // the base value
}

TEST(Sweep, PointYamlParsesToSameConfiguration) {
  const Sweep sweep = parse_sweep(kBase + "sweep: {quantizer.bits: [3], magr.iterations: [20]}\n", "exp.yaml");
  const SweepPoint& point = sweep.points.at(0);
  const std::string text = point_yaml(sweep, point);
  EXPECT_EQ(text.find("sweep:"), std::string::npos) << text;
  ExperimentConfig reparsed = parse_experiment(text, "point.yaml");
  ExperimentConfig original = point.config;
  EXPECT_EQ(declare_experiment_schema(reparsed).resolved(), declare_experiment_schema(original).resolved());
  EXPECT_EQ(reparsed.quantizer.bits, 3);
  EXPECT_EQ(reparsed.magr.iterations, 20);
}

TEST(Sweep, FormatPointListIsIndexAndName) {
  const Sweep sweep = parse_sweep(kBase + "sweep: {quantizer.bits: [4, 3, 2]}\n", "exp.yaml");
  EXPECT_EQ(format_point_list(sweep), "0 bits4\n1 bits3\n2 bits2\n");
}

TEST(Sweep, UnknownKeySuggestsNearest) {
  const std::string message = sweep_error(kBase + "sweep: {quantizer.bitz: [4]}\n");
  EXPECT_NE(message.find("sweep key quantizer.bitz"), std::string::npos) << message;
  EXPECT_NE(message.find("did you mean quantizer.bits?"), std::string::npos) << message;
  EXPECT_NE(message.find("exp.yaml:7"), std::string::npos) << message;
}

TEST(Sweep, SectionAsKeyRejected) {
  const std::string message = sweep_error(kBase + "sweep: {quantizer: [4]}\n");
  EXPECT_NE(message.find("is a section"), std::string::npos) << message;
}

TEST(Sweep, StoreFingerprintKeysRejected) {
  for (const std::string key : {"calibration.nsamples", "calibration.seed", "model.path", "store.path",
                                "store.precision"}) {
    const std::string message = sweep_error(kBase + "sweep: {" + key + ": [1, 2]}\n");
    EXPECT_NE(message.find("sweep key " + key), std::string::npos) << message;
    EXPECT_NE(message.find("share one store"), std::string::npos) << message;
  }
}

TEST(Sweep, NameAndOutputDirRejected) {
  EXPECT_NE(sweep_error(kBase + "sweep: {name: [a, b]}\n").find("sweep key name"), std::string::npos);
  EXPECT_NE(sweep_error(kBase + "sweep: {output.dir: [a, b]}\n").find("<output.dir>/<point name>"),
            std::string::npos);
}

TEST(Sweep, EmptyOrScalarListRejected) {
  const std::string empty = sweep_error(kBase + "sweep: {quantizer.bits: []}\n");
  EXPECT_NE(empty.find("expected a non-empty list of values, found an empty list"), std::string::npos) << empty;
  const std::string scalar = sweep_error(kBase + "sweep: {quantizer.bits: 4}\n");
  EXPECT_NE(scalar.find("found '4'"), std::string::npos) << scalar;
  EXPECT_NE(sweep_error(kBase + "sweep: {}\n").find("non-empty map"), std::string::npos);
  EXPECT_NE(sweep_error(kBase + "sweep: {points: []}\n").find("non-empty list"), std::string::npos);
}

TEST(Sweep, BadValueNamesPointAndKey) {
  const std::string message = sweep_error(kBase + "sweep: {quantizer.bits: [4, 9]}\n");
  EXPECT_NE(message.find("sweep point 1 (bits9)"), std::string::npos) << message;
  EXPECT_NE(message.find("key quantizer.bits: invalid value '9'"), std::string::npos) << message;
}

TEST(Sweep, InvalidCombinationNamesPoint) {
  const std::string message =
      sweep_error(kBase + "sweep: {quantizer.group_size: [32, -1], quantizer.static_groups: [true]}\n");
  EXPECT_NE(message.find("sweep point 1 (gs-1-static_groups)"), std::string::npos) << message;
  EXPECT_NE(message.find("quantizer.static_groups needs quantizer.group_size > 0"), std::string::npos) << message;
}

TEST(Sweep, SequentialCalibrationRejected) {
  std::string base = kBase;
  base.replace(base.find("independent"), 11, "sequential");
  const std::string message = sweep_error(base + "sweep: {quantizer.bits: [4, 3]}\n");
  EXPECT_NE(message.find("calibration.mode independent"), std::string::npos) << message;
}

TEST(Sweep, StoreReuseFalseRejected) {
  const std::string message = sweep_error(kBase + "store: {reuse: false}\nsweep: {quantizer.bits: [4]}\n");
  EXPECT_NE(message.find("store.reuse true"), std::string::npos) << message;
}

TEST(Sweep, RepeatedValueRejectedAsSameName) {
  const std::string message = sweep_error(kBase + "sweep: {quantizer.bits: [4, 3, 4]}\n");
  EXPECT_NE(message.find("sweep points 0 and 2 have the same name bits4"), std::string::npos) << message;
}

TEST(Sweep, PointNameOutsideFolderRejected) {
  for (const std::string name : {"..", ".hidden", "-x", "a/b", "''"}) {
    const std::string message =
        sweep_error(kBase + "sweep: {points: [{quantizer.bits: 3, name: " + name + "}]}\n");
    EXPECT_NE(message.find("sweep point 0: invalid name"), std::string::npos) << name << ": " << message;
  }
}

TEST(Sweep, PointsAndGridTogetherRejected) {
  const std::string message =
      sweep_error(kBase + "sweep: {quantizer.bits: [4], points: [{quantizer.bits: 3}]}\n");
  EXPECT_NE(message.find("both points and grid keys"), std::string::npos) << message;
}

TEST(Sweep, OversizedGridRejected) {
  // 11^4 = 14641 points, more than kMaxSweepPoints.
  const std::string list = "[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]";
  const std::string message = sweep_error(kBase + "sweep: {magr.iterations: " + list + ", quantizer.cd_iterations: " +
                                          list + ", evaluation.max_windows: " + list +
                                          ", quantizer.block_size: " + list + "}\n");
  EXPECT_NE(message.find("more than 10000 points"), std::string::npos) << message;
}

TEST(Sweep, MagrqRunRejectsSweepFile) {
  const fs::path dir = testing::scratch_dir("sweep_run_rejects");
  std::ofstream(dir / "exp.yaml") << kBase << "sweep: {quantizer.bits: [4, 3]}\n";
  try {
    load_experiment(dir / "exp.yaml");
    FAIL() << "load_experiment accepted a file with a sweep section";
  } catch (const ConfigError& error) {
    EXPECT_NE(std::string(error.what()).find("magrq sweep"), std::string::npos) << error.what();
  }
}

TEST(SweepTable, CsvQuotesAndMissingPoints) {
  SweepTable table;
  table.keys = {"magr.alpha"};
  table.sources = {"text:a,b.txt"};
  SweepRow done;
  done.index = 0;
  done.name = "alpha1e-3";
  done.values = {"say \"hi\""};
  PointResults results;
  results.perplexity = {{"text:a,b.txt", 5.0, 6.25}};
  results.output_error = 1.5;
  results.mean_relative_error = 0.01;
  results.modules = 7;
  results.store_reused = true;
  results.wall_seconds = 12.34;
  done.results = results;
  SweepRow missing;
  missing.index = 1;
  missing.name = "alpha-auto";
  missing.values = {"auto"};
  table.rows = {done, missing};

  const std::string csv = sweep_csv(table);
  const std::string expected =
      "index,point,magr.alpha,status,\"ppl fp text:a,b.txt\",\"ppl quantized text:a,b.txt\",output error,"
      "mean relative error,modules,store reused,wall s\r\n"
      "0,alpha1e-3,\"say \"\"hi\"\"\",done,5.0000,6.2500,1.5000e+00,1.0000e-02,7,yes,12.3\r\n"
      "1,alpha-auto,auto,missing,,,,,,,\r\n";
  EXPECT_EQ(csv, expected);

  const std::string md = sweep_markdown(table, "Sweep exp.yaml");
  EXPECT_NE(md.find("1 of 2 points finished"), std::string::npos) << md;
  EXPECT_NE(md.find("| 1 | alpha-auto | auto | missing | - | - | - | - | - | - | - |"), std::string::npos) << md;
  EXPECT_NE(md.find("| 0 | alpha1e-3 | say \"hi\" | done | 5.0000 | 6.2500 |"), std::string::npos) << md;
  EXPECT_NE(md.find("- `text:a,b.txt`"), std::string::npos) << md;
}

TEST(SweepTable, ReadsReportFigures) {
  const fs::path dir = testing::scratch_dir("sweep_report_figures");
  // Two row blocks of q_proj and one module without reference energy. In q_proj's alpha
  // search, 3 of 4 rows chose no MagR (value 0) in the first block and 2 of 2 in the
  // second, so 5 of 6 rows chose no MagR and q_proj is not a module without MagR.
  const std::string report = R"({
    "perplexity": [{"source": "text:x", "windows": 2, "full_precision": null, "quantized": 7.5}],
    "phase_seconds": {"total": 3.0},
    "store_reused": true,
    "items": [
      {"name": "l0.q_proj", "output_error": 1.0, "reference_energy": 10.0,
       "magr_alpha": {"candidates": [{"value": 0.5, "rows_chosen": 1}, {"value": 0.0, "rows_chosen": 3}]}},
      {"name": "l0.q_proj", "output_error": 1.0, "reference_energy": 10.0,
       "magr_alpha": {"candidates": [{"value": 0.5, "rows_chosen": 0}, {"value": 0.0, "rows_chosen": 2}]}},
      {"name": "l0.k_proj", "output_error": 0.5, "reference_energy": 0.0}
    ]})";
  std::ofstream(dir / "report.json") << report;

  const PointResults results = read_point_results(dir / "report.json");
  ASSERT_EQ(results.perplexity.size(), 1u);
  EXPECT_FALSE(results.perplexity[0].full_precision.has_value());
  EXPECT_DOUBLE_EQ(results.perplexity[0].quantized, 7.5);
  EXPECT_DOUBLE_EQ(results.output_error, 2.5);
  // (2 / 20 + 0) / 2 modules.
  EXPECT_DOUBLE_EQ(results.mean_relative_error, 0.05);
  EXPECT_EQ(results.modules, 2);
  ASSERT_TRUE(results.modules_without_magr.has_value());
  EXPECT_EQ(*results.modules_without_magr, 0);
  EXPECT_EQ(*results.rows_without_magr, 5);
  EXPECT_EQ(*results.searched_rows, 6);
  EXPECT_TRUE(results.store_reused);
  EXPECT_DOUBLE_EQ(results.wall_seconds, 3.0);
}

TEST(SweepTable, IncompleteReportRejected) {
  const fs::path dir = testing::scratch_dir("sweep_report_incomplete");
  std::ofstream(dir / "report.json") << R"({"perplexity": []})";
  EXPECT_THROW(read_point_results(dir / "report.json"), DataError);
}

TEST(SweepCli, ListAndCountPrintPoints) {
  const fs::path dir = testing::scratch_dir("sweep_cli_list");
  std::ofstream(dir / "exp.yaml") << kBase << "sweep:\n  quantizer.bits: [4, 3]\n  magr.enabled: [true, false]\n";
  ASSERT_EQ(run(kMagrq.string() + " sweep " + (dir / "exp.yaml").string() + " --list", dir / "list.txt"), 0)
      << read_file(dir / "list.txt");
  EXPECT_EQ(read_file(dir / "list.txt"), "0 bits4-magr\n1 bits4-no-magr\n2 bits3-magr\n3 bits3-no-magr\n");
  ASSERT_EQ(run(kMagrq.string() + " sweep " + (dir / "exp.yaml").string() + " --count", dir / "count.txt"), 0);
  EXPECT_EQ(read_file(dir / "count.txt"), "4\n");
}

TEST(SweepCli, InvalidSweepExitsWithUsageError) {
  const fs::path dir = testing::scratch_dir("sweep_cli_invalid");
  std::ofstream(dir / "exp.yaml") << kBase << "sweep: {calibration.nsamples: [8, 16]}\n";
  EXPECT_EQ(run(kMagrq.string() + " sweep " + (dir / "exp.yaml").string() + " --count", dir / "log.txt"), 2);
  EXPECT_NE(read_file(dir / "log.txt").find("share one store"), std::string::npos) << read_file(dir / "log.txt");
}

TEST(SweepCli, IndexOutOfRangeRejected) {
  const fs::path dir = testing::scratch_dir("sweep_cli_index");
  std::ofstream(dir / "exp.yaml") << kBase << "sweep: {quantizer.bits: [4, 3]}\n";
  for (const char* index : {"2", "-1"}) {
    const fs::path log = dir / (std::string("index") + index + ".txt");
    EXPECT_EQ(run(kMagrq.string() + " sweep " + (dir / "exp.yaml").string() + " --index " + index, log), 2)
        << read_file(log);
    EXPECT_NE(read_file(log).find("--index " + std::string(index) + " is out of range"), std::string::npos)
        << read_file(log);
    EXPECT_NE(read_file(log).find("has points 0 to 1"), std::string::npos) << read_file(log);
  }
}

bool has_mpirun() { return std::system("command -v mpirun > /dev/null 2>&1") == 0; }

std::string mpirun(int ranks) {
  return "mpirun --allow-run-as-root --oversubscribe -np " + std::to_string(ranks) + " ";
}

// A 3-point sweep (bits 4, 3, 2) on stories260K with small calibration and evaluation.
fs::path write_stories_sweep(const fs::path& dir) {
  const fs::path data = testing::shared_data_dir();
  const std::string text = (data / "text/tinystories/tinystories_val.txt").string();
  std::ofstream yaml(dir / "experiment.yaml");
  yaml << "name: stories-sweep\n"
       << "model: {path: " << (data / "models/stories260K-hf").string() << "}\n"
       << "calibration: {source: \"text:" << text << "@0:0.6\", nsamples: 16, seqlen: 128, mode: independent}\n"
       << "store: {path: " << (dir / "hessians.h5").string() << "}\n"
       << "magr: {alpha: published, iterations: 30}\n"
       << "quantizer: {method: gptq, bits: 4}\n"
       << "output: {dir: " << (dir / "out").string() << ", unsupported_shape: dequantized_only}\n"
       << "evaluation: {sources: [\"text:" << text << "@0.6:1\"], seqlen: 128, max_windows: 4}\n"
       << "sweep: {quantizer.bits: [4, 3, 2]}\n";
  return dir / "experiment.yaml";
}

struct FileStamp {
  ino_t inode = 0;
  int64_t mtime_ns = 0;
  bool operator==(const FileStamp&) const = default;
};

FileStamp stamp(const fs::path& path) {
  struct stat info {};
  EXPECT_EQ(::stat(path.c_str(), &info), 0) << path;
  return {info.st_ino, static_cast<int64_t>(info.st_mtim.tv_sec) * 1'000'000'000 + info.st_mtim.tv_nsec};
}

// Checks that a plot is an SVG image with at least one drawn element.
void expect_svg_image(const fs::path& path) {
  const std::string svg = read_file(path);
  ASSERT_FALSE(svg.empty()) << path;
  const size_t root = svg.find("<svg");
  ASSERT_NE(root, std::string::npos) << path;
  // Only an XML declaration may come before the root element.
  EXPECT_TRUE(root == 0 || svg.rfind("<?xml", 0) == 0) << path;
  EXPECT_TRUE(std::regex_search(svg, std::regex("<(path|polyline|line|rect|circle)[ />]"))) << path;
  EXPECT_NE(svg.find("</svg>"), std::string::npos) << path;
}

TEST(SweepMpi, ThreePointsShareOneStore) {
  MAGRQ_REQUIRE_DATA();
  if (!has_mpirun()) {
    GTEST_SKIP() << "mpirun not found";
  }
  const fs::path dir = testing::scratch_dir("sweep_mpi");
  const fs::path experiment = write_stories_sweep(dir);
  const std::string sweep = kMagrq.string() + " sweep " + experiment.string();
  ASSERT_EQ(run(mpirun(2) + sweep, dir / "log.txt"), 0) << read_file(dir / "log.txt");
  const std::string log = read_file(dir / "log.txt");

  // The store is computed once, before the points, and every point reuses it.
  EXPECT_EQ(count_of(log, "calibrate: layer   0 Hessians written"), 1u) << log;
  EXPECT_NE(log.find("point 0 of 3 (bits4): reusing the Hessian store " + (dir / "hessians.h5").string() +
                     " (fingerprint "),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("point 1 of 3 (bits3): reusing the Hessian store"), std::string::npos) << log;
  EXPECT_NE(log.find("point 2 of 3 (bits2): reusing the Hessian store"), std::string::npos) << log;

  const std::string csv = read_file(dir / "out" / "sweep.csv");
  EXPECT_EQ(count_of(csv, "\r\n"), 4u) << csv;
  EXPECT_EQ(count_of(csv, ",done,"), 3u) << csv;
  const std::string md = read_file(dir / "out" / "sweep.md");
  EXPECT_NE(md.find("3 of 3 points finished"), std::string::npos) << md;
  for (const char* name : {"| bits4 | 4 | done |", "| bits3 | 3 | done |", "| bits2 | 2 | done |"}) {
    EXPECT_NE(md.find(name), std::string::npos) << md;
  }
  for (const char* name : {"bits4", "bits3", "bits2"}) {
    EXPECT_TRUE(fs::exists(dir / "out" / name / "report.json")) << name;
    EXPECT_TRUE(fs::exists(dir / "out" / name / "experiment.yaml")) << name;
  }
  EXPECT_TRUE(fs::exists(dir / "out" / "report.md"));
  size_t plots = 0;
  for (const auto& entry : fs::directory_iterator(dir / "out" / "plots")) {
    if (entry.path().extension() == ".svg") {
      ++plots;
      expect_svg_image(entry.path());
    }
  }
  EXPECT_GT(plots, 0u);

  // One job-array task: the point reruns against the same store file, untouched.
  const FileStamp before = stamp(dir / "hessians.h5");
  ASSERT_EQ(run(mpirun(2) + sweep + " --index 1 --restart", dir / "index.txt"), 0) << read_file(dir / "index.txt");
  const std::string index_log = read_file(dir / "index.txt");
  EXPECT_NE(index_log.find("point 1 of 3 (bits3): reusing the Hessian store"), std::string::npos) << index_log;
  EXPECT_EQ(count_of(index_log, "Hessians written"), 0u) << index_log;
  EXPECT_TRUE(stamp(dir / "hessians.h5") == before);

  // Without --restart a finished point is skipped.
  ASSERT_EQ(run(kMagrq.string() + " sweep " + experiment.string() + " --index 2", dir / "skip.txt"), 0)
      << read_file(dir / "skip.txt");
  EXPECT_NE(read_file(dir / "skip.txt").find("point 2 of 3 (bits2): already finished"), std::string::npos)
      << read_file(dir / "skip.txt");

  // Gathering with a point missing still writes the tables and names the point.
  fs::remove(dir / "out" / "bits3" / "report.json");
  ASSERT_EQ(run(sweep + " --gather", dir / "gather.txt"), 0) << read_file(dir / "gather.txt");
  EXPECT_NE(read_file(dir / "gather.txt").find("point 1 of 3 (bits3): missing"), std::string::npos)
      << read_file(dir / "gather.txt");
  const std::string gathered = read_file(dir / "out" / "sweep.csv");
  EXPECT_NE(gathered.find("1,bits3,3,missing,"), std::string::npos) << gathered;
  EXPECT_EQ(count_of(gathered, ",done,"), 2u) << gathered;
}

TEST(SweepMpi, ConcurrentTasksWithoutStoreBothFinish) {
  MAGRQ_REQUIRE_DATA();
  if (!has_mpirun()) {
    GTEST_SKIP() << "mpirun not found";
  }
  const fs::path dir = testing::scratch_dir("sweep_mpi_concurrent");
  const fs::path experiment = write_stories_sweep(dir);
  // Two job-array tasks start at once with no store: each computes it (or reuses it when
  // the other renamed it into place first), and both points finish.
  const std::string task = mpirun(1) + kMagrq.string() + " sweep " + experiment.string() + " --index ";
  const std::string both = "(" + task + "0 > " + (dir / "task0.txt").string() + " 2>&1 & " + task + "1 > " +
                           (dir / "task1.txt").string() + " 2>&1; status1=$?; wait $!; status0=$?; "
                           "test $status0 -eq 0 -a $status1 -eq 0)";
  EXPECT_EQ(run(both, dir / "both.txt"), 0) << read_file(dir / "task0.txt") << read_file(dir / "task1.txt");
  for (const char* log : {"task0.txt", "task1.txt"}) {
    const std::string text = read_file(dir / log);
    const bool computed = text.find("this point computes it") != std::string::npos;
    const bool reused = text.find("reusing the Hessian store") != std::string::npos;
    EXPECT_TRUE(computed || reused) << text;
  }
  EXPECT_TRUE(fs::exists(dir / "out" / "bits4" / "report.json"));
  EXPECT_TRUE(fs::exists(dir / "out" / "bits3" / "report.json"));
  // The store left behind is complete and readable.
  ASSERT_EQ(run(kMagrq.string() + " hessians inspect " + (dir / "hessians.h5").string(), dir / "inspect.txt"), 0)
      << read_file(dir / "inspect.txt");
  EXPECT_NE(read_file(dir / "inspect.txt").find("mlp_out"), std::string::npos) << read_file(dir / "inspect.txt");
}

}  // namespace
}  // namespace magrq::app
