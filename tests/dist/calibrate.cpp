// Calibration on one rank against X^T X computed plainly from the forward pass's hook.
#include "dist/calibrate.hpp"

#include <gtest/gtest.h>

#include "common/test_data.hpp"
#include "model/forward.hpp"
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

TEST(Calibrate, HessiansEqualPlainSumsOverWindows) {
  const auto dir = testing::scratch_dir("calibrate_plain");
  model::write_synthetic_checkpoint(dir / "model", model::small_llama_config(), {});
  const model::Checkpoint checkpoint(dir / "model");
  const auto windows = random_windows(5, 24, 300);
  const Comm comm(MPI_COMM_WORLD);
  WindowStates states(comm, checkpoint, windows);

  // Plain reference: every window through the layer separately, x x^T summed in loops.
  const model::Rope rope(checkpoint.config());
  const auto weights = checkpoint.load_layer(0);
  std::map<std::string, MatrixD> expected;
  std::map<std::string, int64_t> tokens;
  for (const auto& window : windows) {
    std::vector<Matrix> hidden = {checkpoint.embed(window)};
    model::forward_layer(checkpoint.config(), weights, rope, hidden,
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
  }
  const auto stored = states.run_layer(weights, true, true);
  ASSERT_TRUE(stored.has_value());
  ASSERT_EQ(stored->size(), 4u);
  for (const auto& [input, hessian] : *stored) {
    const MatrixD& reference = expected.at(input);
    ASSERT_EQ(hessian.xtx.rows(), reference.rows()) << input;
    const double scale = reference.cwiseAbs().maxCoeff();
    EXPECT_LE((hessian.xtx - reference).cwiseAbs().maxCoeff(), 1e-12 * scale) << input;
    EXPECT_EQ(hessian.xtx, hessian.xtx.transpose()) << input << " is not exactly symmetric";
    EXPECT_EQ(hessian.statistics.tokens, tokens.at(input)) << input;
    EXPECT_GT(hessian.statistics.max_abs_activation, 0.0) << input;
    EXPECT_EQ(hessian.statistics.dead_channels, 0) << input;
  }
  // The hidden states advanced to layer 0's output.
  std::vector<Matrix> first = {checkpoint.embed(windows[0])};
  model::forward_layer(checkpoint.config(), weights, rope, first);
  EXPECT_EQ(states.hidden()[0], first[0]);
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
