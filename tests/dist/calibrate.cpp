// Calibration on one rank against X^T X computed plainly from the forward pass's hook.
#include "dist/calibrate.hpp"

#include <gtest/gtest.h>

#include "common/test_data.hpp"
#include "model/calibration_windows.hpp"
#include "model/forward.hpp"
#include "model/tokenizer.hpp"
#include "model/synthetic_checkpoint.hpp"

namespace magrq::dist {
namespace {

class MpiEnvironment : public ::testing::Environment {
 public:
  void SetUp() override { session_ = std::make_unique<MpiSession>(); }
  void TearDown() override { session_.reset(); }

 private:
  std::unique_ptr<MpiSession> session_;
};

const auto* const kMpi = ::testing::AddGlobalTestEnvironment(new MpiEnvironment);

std::vector<std::vector<int32_t>> random_windows(int count, int length, int vocab) {
  std::vector<std::vector<int32_t>> windows(static_cast<size_t>(count));
  uint32_t state = 12345;
  for (auto& window : windows) {
    for (int t = 0; t < length; ++t) {
      state = state * 1664525u + 1013904223u;
      window.push_back(static_cast<int32_t>((state >> 8) % static_cast<uint32_t>(vocab)));
    }
  }
  return windows;
}

// Checks every layer's stored X^T X against sums over tokens of x x^T, written as loops
// over the activations the forward pass hands to its hook.
void expect_plain_sums(const model::Checkpoint& checkpoint, const std::vector<std::vector<int32_t>>& windows) {
  const Comm comm(MPI_COMM_WORLD);
  WindowStates states(comm, checkpoint, windows);
  const model::Rope rope(checkpoint.config());
  std::vector<Matrix> reference_hidden;
  for (const auto& window : windows) {
    reference_hidden.push_back(checkpoint.embed(window));
  }
  for (Index layer = 0; layer < checkpoint.config().num_hidden_layers; ++layer) {
    const auto weights = checkpoint.load_layer(layer);
    std::map<std::string, MatrixD> expected;
    std::map<std::string, int64_t> tokens;
    for (Matrix& hidden : reference_hidden) {
      std::vector<Matrix> one = {hidden};
      model::forward_layer(checkpoint.config(), weights, rope, one,
                           [&](Index, model::LinearInput input, const Matrix& x) {
                             MatrixD& sum = expected[model::linear_input_name(input)];
                             if (sum.size() == 0) {
                               sum = MatrixD::Zero(x.cols(), x.cols());
                             }
                             for (Index t = 0; t < x.rows(); ++t) {
                               for (Index i = 0; i < x.cols(); ++i) {
                                 for (Index j = 0; j < x.cols(); ++j) {
                                   sum(i, j) += static_cast<double>(x(t, i)) * static_cast<double>(x(t, j));
                                 }
                               }
                             }
                             tokens[model::linear_input_name(input)] += x.rows();
                           });
      hidden = one.front();
    }
    const auto stored = states.run_layer(weights, true, true);
    ASSERT_TRUE(stored.has_value());
    ASSERT_EQ(stored->size(), 4u);
    for (const auto& [input, hessian] : *stored) {
      const MatrixD& reference = expected.at(input);
      ASSERT_EQ(hessian.xtx.rows(), reference.rows()) << input;
      const double scale = reference.cwiseAbs().maxCoeff();
      EXPECT_LE((hessian.xtx - reference).cwiseAbs().maxCoeff(), 1e-12 * scale) << "layer " << layer << " " << input;
      EXPECT_EQ(hessian.xtx, hessian.xtx.transpose()) << input << " is not exactly symmetric";
      EXPECT_EQ(hessian.statistics.tokens, tokens.at(input)) << input;
      EXPECT_GT(hessian.statistics.max_abs_activation, 0.0) << input;
    }
    // The hidden states advanced to the layer's output.
    EXPECT_EQ(states.hidden()[0], reference_hidden[0]) << "layer " << layer;
  }
}

TEST(Calibrate, HessiansEqualPlainSumsOverWindows) {
  const auto dir = testing::scratch_dir("calibrate_plain");
  model::write_synthetic_checkpoint(dir / "model", model::small_llama_config(), {});
  expect_plain_sums(model::Checkpoint(dir / "model"), random_windows(5, 24, 300));
}

TEST(Calibrate, Stories260kHessiansEqualPlainSums) {
  MAGRQ_REQUIRE_DATA();
  const auto data = testing::shared_data_dir();
  const model::Checkpoint checkpoint(data / "models/stories260K-hf");
  const model::Tokenizer tokenizer = model::Tokenizer::from_directory(data / "models/stories260K-hf");
  const auto spec = model::TextSpec::parse("text:" + (data / "text/tinystories/tinystories_val.txt").string() +
                                           "@0:0.6");
  const auto windows = model::sample_calibration_windows(
      spec, [&](std::string_view text) { return tokenizer.encode(text, true); },
      model::CalibrationOptions{6, 64, 0});
  expect_plain_sums(checkpoint, windows.windows);
}

TEST(Calibrate, WithoutAdvanceHiddenStatesStay) {
  const auto dir = testing::scratch_dir("calibrate_no_advance");
  model::write_synthetic_checkpoint(dir / "model", model::small_llama_config(), {});
  const model::Checkpoint checkpoint(dir / "model");
  const auto windows = random_windows(2, 16, 300);
  const Comm comm(MPI_COMM_WORLD);
  WindowStates states(comm, checkpoint, windows);
  const Matrix before = states.hidden()[1];
  const auto stored = states.run_layer(checkpoint.load_layer(0), true, false);
  EXPECT_TRUE(stored.has_value());
  EXPECT_EQ(states.hidden()[1], before);
  EXPECT_EQ(window_owner(7, 3), 1);
}

}  // namespace
}  // namespace magrq::dist
