// `magrq synth-layer` and `magrq layer` run as a user would, through the binary.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <fstream>
#include <sstream>

#include "common/test_data.hpp"
#include "store/h5.hpp"
#include "store/layer_file.hpp"

namespace magrq {
namespace {

namespace fs = std::filesystem;

const std::string kMagrq = (fs::path(MAGRQ_BINARY_DIR) / "bin" / "magrq").string();

struct Outcome {
  int status = 0;
  std::string output;
};

Outcome run(const std::string& arguments, const fs::path& dir) {
  const fs::path log = dir / "log.txt";
  const int status = std::system((kMagrq + " " + arguments + " > " + log.string() + " 2>&1").c_str());
  std::ifstream stream(log);
  std::stringstream text;
  text << stream.rdbuf();
  return {WIFEXITED(status) ? WEXITSTATUS(status) : 128, text.str()};
}

double attribute(const fs::path& file, const std::string& name) {
  return std::get<double>(store::H5Reader(file).read_attribute(name));
}

TEST(LayerCommand, MagrLowersRangeAndWritesEveryDataset) {
  const auto dir = testing::scratch_dir("layer_cli");
  const fs::path input = dir / "layer.h5";
  ASSERT_EQ(run("synth-layer --out " + input.string() + " --out-features 96 --in-features 128 --tokens 1024 "
                "--outlier-channels 4 --seed 3",
                dir).status,
            0);
  const Outcome plain = run("layer --input " + input.string() + " --output " + (dir / "gptq.h5").string() +
                                " --no-magr --bits 3",
                            dir);
  ASSERT_EQ(plain.status, 0) << plain.output;
  const Outcome magr = run("layer --input " + input.string() + " --output " + (dir / "magr.h5").string() +
                               " --magr --magr-accel --bits 3 --cd-iters 2",
                           dir);
  ASSERT_EQ(magr.status, 0) << magr.output;
  EXPECT_NE(magr.output.find("result: 96 x 128"), std::string::npos) << magr.output;

  const store::H5Reader reader(dir / "magr.h5");
  EXPECT_EQ(reader.read_matrix("weight_magr").rows(), 96);
  EXPECT_EQ(reader.read_matrix("weight_dequant").cols(), 128);
  EXPECT_EQ(reader.read_matrix_i32("codes").maxCoeff(), 7);
  EXPECT_EQ(reader.read_matrix("scales").rows(), 1);
  EXPECT_EQ(reader.read_matrix_i32("zeros").cols(), 96);
  EXPECT_EQ(reader.read_vector_i32("g_idx").size(), 128);
  EXPECT_LT(attribute(dir / "magr.h5", "max_abs_after"), attribute(dir / "magr.h5", "max_abs_before"));
  EXPECT_EQ(attribute(dir / "gptq.h5", "max_abs_after"), attribute(dir / "gptq.h5", "max_abs_before"));
  EXPECT_GT(attribute(dir / "magr.h5", "output_error"), 0.0);
  const store::LayerInput original = store::read_layer_input(input);
  EXPECT_EQ(store::H5Reader(dir / "gptq.h5").read_matrix("weight_magr"), original.weight);
}

TEST(LayerCommand, MissingDatasetIsNamed) {
  const auto dir = testing::scratch_dir("layer_cli_missing");
  {
    store::H5Writer writer(dir / "bad.h5");
    writer.write_matrix("weight", Matrix(Matrix::Ones(4, 8)));
    writer.commit();
  }
  const Outcome outcome = run("layer --input " + (dir / "bad.h5").string() + " --output " +
                                  (dir / "out.h5").string(),
                              dir);
  EXPECT_EQ(outcome.status, 1);
  EXPECT_NE(outcome.output.find("dataset hessian is missing"), std::string::npos) << outcome.output;
  EXPECT_FALSE(fs::exists(dir / "out.h5"));
}

TEST(LayerCommand, MismatchedShapesAreNamed) {
  const auto dir = testing::scratch_dir("layer_cli_shapes");
  store::write_layer_input(dir / "bad.h5", {Matrix::Ones(4, 8), Matrix::Identity(6, 6)}, {});
  const Outcome outcome = run("layer --input " + (dir / "bad.h5").string() + " --output " +
                                  (dir / "out.h5").string(),
                              dir);
  EXPECT_EQ(outcome.status, 1);
  EXPECT_NE(outcome.output.find("/hessian is 6 x 6"), std::string::npos) << outcome.output;
  EXPECT_NE(outcome.output.find("expected /hessian to be 8 x 8"), std::string::npos) << outcome.output;
}

TEST(LayerCommand, NonFiniteWeightIsNamed) {
  const auto dir = testing::scratch_dir("layer_cli_nan");
  Matrix weight = Matrix::Ones(4, 8);
  weight(2, 5) = std::numeric_limits<float>::quiet_NaN();
  store::write_layer_input(dir / "nan.h5", {weight, Matrix::Identity(8, 8)}, {});
  const Outcome outcome = run("layer --input " + (dir / "nan.h5").string() + " --output " +
                                  (dir / "out.h5").string(),
                              dir);
  EXPECT_EQ(outcome.status, 1);
  EXPECT_NE(outcome.output.find("[2, 5]"), std::string::npos) << outcome.output;
}

TEST(LayerCommand, InvalidOptionIsAUsageError) {
  const auto dir = testing::scratch_dir("layer_cli_options");
  store::write_layer_input(dir / "ok.h5", {Matrix::Ones(4, 8), Matrix::Identity(8, 8)}, {});
  const Outcome bits = run("layer --input " + (dir / "ok.h5").string() + " --output " +
                               (dir / "out.h5").string() + " --bits 9",
                           dir);
  EXPECT_EQ(bits.status, 2);
  EXPECT_NE(bits.output.find("bits"), std::string::npos) << bits.output;
  const Outcome method = run("layer --input " + (dir / "ok.h5").string() + " --output " +
                                 (dir / "out.h5").string() + " --method awq",
                             dir);
  EXPECT_EQ(method.status, 2);
  EXPECT_NE(method.output.find("expected rtn or gptq"), std::string::npos) << method.output;
}

}  // namespace
}  // namespace magrq
