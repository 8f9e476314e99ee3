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

}  // namespace
}  // namespace magrq::dist
