#include "dist/plan.hpp"

#include <gtest/gtest.h>

#include "core/error.hpp"

namespace magrq::dist {
namespace {

model::LlamaConfig make_config(Index hidden, Index intermediate, Index layers, Index heads,
                               Index kv_heads) {
  const nlohmann::json json = {{"hidden_size", hidden},
                               {"intermediate_size", intermediate},
                               {"num_hidden_layers", layers},
                               {"num_attention_heads", heads},
                               {"num_key_value_heads", kv_heads},
                               {"vocab_size", 512},
                               {"max_position_embeddings", 512},
                               {"rms_norm_eps", 1e-5},
                               {"hidden_act", "silu"}};
  return model::LlamaConfig::from_json(json, "test config");
}

TEST(Plan, GqaModulesTakeKeyValueShapes) {
  const auto modules = list_modules(make_config(64, 172, 2, 8, 4));
  ASSERT_EQ(modules.size(), 14u);
  EXPECT_EQ(modules[1].name, "model.layers.0.self_attn.k_proj");
  EXPECT_EQ(modules[1].out_features, 32);
  EXPECT_EQ(modules[1].in_features, 64);
  EXPECT_EQ(modules[6].name, "model.layers.0.mlp.down_proj");
  EXPECT_EQ(modules[6].in_features, 172);
}

TEST(Plan, UnpackableDownProjIsNamed) {
  const Plan plan = make_plan(list_modules(make_config(64, 172, 1, 8, 4)), PlanOptions{});
  EXPECT_TRUE(plan.modules[6].export_problem.has_value());
  EXPECT_NE(plan.modules[6].export_problem->find("in_features 172"), std::string::npos);
  EXPECT_FALSE(plan.modules[0].export_problem.has_value());
  EXPECT_NE(format_plan(plan).find("not packable: model.layers.0.mlp.down_proj"), std::string::npos);
}

TEST(Plan, RaggedGroupIsNotPackable) {
  auto modules = list_modules(make_config(128, 352, 1, 8, 4));
  for (auto& m : modules) {
    m.settings.group_size = 64;
  }
  const Plan plan = make_plan(modules, PlanOptions{});
  EXPECT_FALSE(plan.modules[0].export_problem.has_value());
  ASSERT_TRUE(plan.modules[6].export_problem.has_value());  // 352 is not a multiple of 64
  EXPECT_NE(plan.modules[6].export_problem->find("does not divide"), std::string::npos);
}

TEST(Plan, BlockRowsSplitModulesAndCoverEveryRow) {
  PlanOptions options;
  options.block_rows = 48;
  const Plan plan = make_plan(list_modules(make_config(64, 172, 1, 8, 4)), options);
  Index gate_rows = 0;
  for (const WorkItem& item : plan.items) {
    if (plan.modules[static_cast<size_t>(item.module)].kind == model::LinearKind::gate_proj) {
      EXPECT_EQ(item.row_begin, gate_rows);
      gate_rows = item.row_end;
    }
  }
  EXPECT_EQ(gate_rows, 172);
  for (size_t i = 0; i < plan.items.size(); ++i) {
    EXPECT_EQ(plan.items[i].id, static_cast<int64_t>(i));
  }
}

TEST(Plan, SkippedModulesGetNoItems) {
  auto modules = list_modules(make_config(64, 172, 1, 8, 4));
  modules[0].settings.skip = true;
  const Plan plan = make_plan(modules, PlanOptions{});
  EXPECT_EQ(plan.items.size(), 6u);
  EXPECT_NE(format_plan(plan).find("skipped: model.layers.0.self_attn.q_proj"), std::string::npos);
}

TEST(Plan, Llama70bDownProjExceedsSmallBudget) {
  // Llama-3-70B: hidden 8192, intermediate 28672, 64 heads, 8 key/value heads.
  const Plan plan = make_plan(list_modules(make_config(8192, 28672, 1, 64, 8)), PlanOptions{});
  const uint64_t budget = 8ull << 30;
  try {
    check_memory_budget(plan, budget);
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& error) {
    EXPECT_NE(std::string(error.what()).find("model.layers.0.mlp.down_proj"), std::string::npos)
        << error.what();
    EXPECT_NE(std::string(error.what()).find("in_features 28672"), std::string::npos);
  }
  EXPECT_NO_THROW(check_memory_budget(plan, 64ull << 30));
  EXPECT_EQ(plan.tensor_parallel_degrees, (std::vector<int>{1, 2, 4, 8}));
}

TEST(Plan, ScheduleIsLargestFirstWithStableTies) {
  const Plan plan = make_plan(list_modules(make_config(64, 172, 2, 8, 4)), PlanOptions{});
  std::vector<int64_t> ids;
  for (const WorkItem& item : plan.items) {
    ids.push_back(item.id);
  }
  const auto order = schedule_order(plan, ids);
  for (size_t i = 1; i < order.size(); ++i) {
    const WorkItem& a = plan.items[static_cast<size_t>(order[i - 1])];
    const WorkItem& b = plan.items[static_cast<size_t>(order[i])];
    EXPECT_TRUE(a.cost > b.cost || (a.cost == b.cost && a.id < b.id));
  }
  // down_proj of layer 0 (in_features 172) is the costliest item.
  EXPECT_EQ(plan.modules[static_cast<size_t>(plan.items[static_cast<size_t>(order[0])].module)].name,
            "model.layers.0.mlp.down_proj");
}

TEST(Plan, NegativeBlockRowsIsRejected) {
  PlanOptions options;
  options.block_rows = -4;
  EXPECT_THROW(make_plan(list_modules(make_config(64, 172, 1, 8, 4)), options), ConfigError);
}

constexpr uint64_t kGiB = 1ull << 30;

ModuleSettings gptq_settings(bool magr) {
  ModuleSettings settings;
  settings.method = "gptq";
  settings.magr = magr;
  return settings;
}

TEST(Plan, ItemEstimateIsGptqFactorWhenHessianDominates) {
  // n = 8192 and 64 rows: GPTQ's five float32 n x n matrices (H, its working copy, the
  // reversed copy, the inverse and the factor) are the peak.
  const uint64_t n = 8192;
  const uint64_t r = 64;
  const uint64_t rows = r * n * 4;
  const uint64_t expected = kProcessBaselineBytes + r * n * 2 + 20 * n * n + 4 * rows;
  EXPECT_EQ(estimate_item_bytes(64, 8192, gptq_settings(true), true, 2), expected);
  // RTN has no factor: H and its float64 cast in the output error are the peak.
  ModuleSettings rtn = gptq_settings(true);
  rtn.method = "rtn";
  EXPECT_EQ(estimate_item_bytes(64, 8192, rtn, true, 2),
            kProcessBaselineBytes + r * n * 2 + 12 * n * n + 10 * rows);
}

TEST(Plan, ItemEstimateGrowsWithRowsWhenRowsDominate) {
  // 8192 rows of 1024 inputs: the output error's row blocks (input, two MagR copies,
  // dequantized, codes, the zero reference, and two float64 blocks) dominate.
  const uint64_t n = 1024;
  const uint64_t r = 8192;
  const uint64_t rows = r * n * 4;
  EXPECT_EQ(estimate_item_bytes(8192, 1024, gptq_settings(true), true, 2),
            kProcessBaselineBytes + r * n * 2 + 12 * n * n + 10 * rows);
  EXPECT_EQ(estimate_item_bytes(8192, 1024, gptq_settings(false), true, 2),
            kProcessBaselineBytes + r * n * 2 + 12 * n * n + 8 * rows);
  EXPECT_EQ(estimate_item_bytes(8192, 1024, gptq_settings(true), false, 4),
            kProcessBaselineBytes + r * n * 4 + 12 * n * n + 8 * rows);
}

TEST(Plan, Llama70bDownProjItemNeedsSixteenGiB) {
  // The largest 70B item: 28672 inputs, so 20 x 28672^2 bytes = 15.3 GiB of n x n
  // float32 matrices whatever the block size.
  PlanOptions options;
  options.block_rows = 1024;
  const Plan plan = make_plan(list_modules(make_config(8192, 28672, 1, 64, 8)), options);
  uint64_t largest = 0;
  for (const WorkItem& item : plan.items) {
    largest = std::max(largest, item.memory_bytes);
  }
  EXPECT_GT(largest, 15 * kGiB);
  EXPECT_LT(largest, 17 * kGiB);
}

PlanOptions calibration_options(int64_t windows, int ranks) {
  PlanOptions options;
  options.calibration_windows = windows;
  options.calibration_seqlen = 128;
  options.ranks = ranks;
  return options;
}

TEST(Plan, CalibrationCoordinatorHoldsSumsAndOneReceive) {
  const auto modules = list_modules(make_config(8192, 28672, 1, 64, 8));
  const uint64_t h2 = 8192ull * 8192;
  const uint64_t i2 = 28672ull * 28672;
  const uint64_t grams = 8 * (3 * h2 + i2);  // the four float64 X^T X of one window
  const uint64_t widest = 8 * i2;            // down_proj's input

  const CalibrationMemory two = estimate_calibration_bytes(modules, calibration_options(8, 2));
  // Both ranks own 4 windows: rank 0 adds the sums on top of what rank 1 holds.
  EXPECT_EQ(two.coordinator_bytes - two.worker_bytes, grams);
  EXPECT_GT(two.worker_bytes, grams + widest);
  EXPECT_GT(two.coordinator_bytes, 25 * kGiB);

  // One window per rank: no replaced X^T X on either, but rank 0 receives one.
  const CalibrationMemory single = estimate_calibration_bytes(modules, calibration_options(2, 2));
  EXPECT_EQ(two.worker_bytes - single.worker_bytes, widest + 3 * 128 * 8192 * 4);
  EXPECT_EQ(single.coordinator_bytes - single.worker_bytes, grams + widest);

  const CalibrationMemory alone = estimate_calibration_bytes(modules, calibration_options(1, 1));
  EXPECT_EQ(alone.worker_bytes, 0u);
  EXPECT_EQ(alone.coordinator_bytes, single.worker_bytes + grams);
}

TEST(Plan, CalibrationIsOmittedWithoutWindows) {
  const Plan plan = make_plan(list_modules(make_config(64, 172, 2, 8, 4)), PlanOptions{});
  EXPECT_EQ(plan.calibration.coordinator_bytes, 0u);
  EXPECT_EQ(plan.calibration.worker_bytes, 0u);
  EXPECT_NE(format_plan(plan).find("calibration not estimated"), std::string::npos);
}

TEST(Plan, CalibrationOverBudgetIsNamed) {
  // Llama-3-8B shapes: down_proj's item fits in 6 GiB, but rank 0's calibration (the
  // sums, its window's X^T X and a received one: about 7 GiB) does not.
  const Plan plan = make_plan(list_modules(make_config(4096, 14336, 1, 32, 8)), calibration_options(8, 2));
  EXPECT_LT(estimate_rank_bytes(plan, 1), 6 * kGiB);
  EXPECT_GT(estimate_rank_bytes(plan, 0), 6 * kGiB);
  try {
    check_memory_budget(plan, 6 * kGiB);
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& error) {
    EXPECT_NE(std::string(error.what()).find("calibration needs an estimated"), std::string::npos) << error.what();
    EXPECT_NE(std::string(error.what()).find("rank 0"), std::string::npos) << error.what();
  }
  EXPECT_NO_THROW(check_memory_budget(plan, 8 * kGiB));
  const std::string text = format_plan(plan);
  EXPECT_NE(text.find("calibration rank 0"), std::string::npos) << text;
  EXPECT_NE(text.find("ranks 1..1"), std::string::npos) << text;
}

// Peak resident memory measured by scripts/rehearse-70b (VmHWM, or the largest VmRSS
// sampled every 0.5 s in the phase) on one layer with the 70B attention shapes and
// intermediate 14336, 8 windows of 128 tokens, MagR and GPTQ at 4 bits. The estimates
// must stay within 10% of them (docs/scaling.md).
TEST(Plan, EstimateMatchesRehearsal) {
  const auto modules = list_modules(make_config(8192, 14336, 1, 64, 8));
  const auto expect_within_ten_percent = [](uint64_t estimate, double measured_gib, const char* what) {
    const double ratio = measured_gib * static_cast<double>(kGiB) / static_cast<double>(estimate);
    EXPECT_GT(ratio, 0.9) << what;
    EXPECT_LT(ratio, 1.1) << what;
  };

  const Plan one_rank = make_plan(modules, calibration_options(8, 1));
  expect_within_ten_percent(one_rank.calibration.coordinator_bytes, 10.54, "calibration on 1 rank");
  const WorkItem& down = one_rank.items.back();
  ASSERT_EQ(one_rank.modules[static_cast<size_t>(down.module)].kind, model::LinearKind::down_proj);
  expect_within_ten_percent(down.memory_bytes, 6.98, "down_proj, 8192 x 14336");

  // k_proj and v_proj (1024 x 8192) ran at the same time on 2 ranks.
  const WorkItem& k_proj = one_rank.items[1];
  ASSERT_EQ(one_rank.modules[static_cast<size_t>(k_proj.module)].kind, model::LinearKind::k_proj);
  expect_within_ten_percent(k_proj.memory_bytes, 1.43, "k_proj on rank 0");
  expect_within_ten_percent(k_proj.memory_bytes, 1.43, "v_proj on rank 1");

  // Calibration on 2 ranks of the same attention with intermediate 8192.
  const Plan square = make_plan(list_modules(make_config(8192, 8192, 1, 64, 8)), calibration_options(8, 2));
  expect_within_ten_percent(square.calibration.coordinator_bytes, 6.56, "calibration, rank 0 of 2");
  expect_within_ten_percent(square.calibration.worker_bytes, 4.56, "calibration, rank 1 of 2");
}

}  // namespace
}  // namespace magrq::dist

namespace magrq::dist {
namespace {

TEST(PlanCost, AlphaSearchCountsItsPathAndEveryCandidate) {
  const auto modules = list_modules(make_config(64, 172, 1, 8, 4));
  PlanOptions fixed;
  fixed.magr_iterations = 200;
  PlanOptions search = fixed;
  search.magr_search_candidates = 7;
  const Plan fixed_plan = make_plan(modules, fixed);
  const Plan search_plan = make_plan(modules, search);
  const WorkItem& a = fixed_plan.items.front();
  const WorkItem& b = search_plan.items.front();
  // q_proj, 64 x 64, GPTQ: one GEMM-sized term g = 2 * 64^3, Cholesky 64^3 / 3.
  const double g = 2.0 * 64 * 64 * 64;
  const double quantize = g + 64.0 * 64 * 64 / 3.0;
  EXPECT_DOUBLE_EQ(a.cost, quantize + 200 * g);
  EXPECT_DOUBLE_EQ(b.cost, g * (300 + 7) + 8 * (quantize + g));
  PlanOptions one = fixed;
  one.magr_search_candidates = 1;
  const Plan one_plan = make_plan(modules, one);
  EXPECT_DOUBLE_EQ(one_plan.items.front().cost, g * (200 + 1) + 2 * (quantize + g))
      << "a single candidate runs one solve's iterations";
}

}  // namespace
}  // namespace magrq::dist
