// Tests of the alpha search's summary per module in report.json and report.md.
#include "app/alpha_report.hpp"

#include <gtest/gtest.h>

namespace magrq::app {
namespace {

// One item (a row block) of a module, with candidates none, 0.01 and 0.001.
nlohmann::ordered_json item(const std::string& name, int layer, std::vector<int64_t> rows,
                            std::vector<double> errors) {
  nlohmann::ordered_json candidates = nlohmann::ordered_json::array();
  const std::vector<double> values = {0.0, 0.001, 0.01};
  for (std::size_t k = 0; k < values.size(); ++k) {
    candidates.push_back({{"value", values[k]}, {"output_error", errors[k]}, {"rows_chosen", rows[k]}});
  }
  return {{"name", name},
          {"layer", layer},
          {"module", "q_proj"},
          {"magr_alpha", {{"scale", "zeroing"}, {"candidates", candidates}}}};
}

TEST(AlphaSummary, SumsRowBlocksPerModule) {
  const nlohmann::ordered_json items = nlohmann::ordered_json::array(
      {item("a", 0, {1, 2, 3}, {1.0, 2.0, 3.0}), item("b", 1, {4, 0, 0}, {0.5, 0.6, 0.7}),
       item("a", 0, {0, 4, 0}, {1.5, 1.0, 2.5}), {{"name", "c"}, {"layer", 2}}});
  const nlohmann::ordered_json summary = summarize_alpha_search(items);
  ASSERT_EQ(summary["modules"].size(), 2u) << "items without a search are left out";
  const auto& a = summary["modules"][0];
  EXPECT_EQ(a["name"], "a");
  EXPECT_EQ(a["rows"], 10);
  EXPECT_EQ(a["rows_without_magr"], 1);
  EXPECT_DOUBLE_EQ(a["candidates"][1]["output_error"].get<double>(), 3.0);
  EXPECT_EQ(a["candidates"][1]["rows_chosen"], 6);
  EXPECT_EQ(a["choice"], "none: 1, 0.001 x z: 6, 0.01 x z: 3");
  EXPECT_EQ(summary["modules"][1]["choice"], "none: 4");
  EXPECT_EQ(summary["modules_searched"], 2);
  EXPECT_EQ(summary["modules_without_magr"], 1);
  EXPECT_EQ(summary["rows"], 14);
  EXPECT_EQ(summary["rows_without_magr"], 5);
}

TEST(AlphaSummary, NullWithoutSearch) {
  const nlohmann::ordered_json items = nlohmann::ordered_json::array({{{"name", "a"}}});
  EXPECT_TRUE(summarize_alpha_search(items).is_null());
  EXPECT_EQ(alpha_search_markdown(nullptr), "");
  EXPECT_EQ(alpha_search_log_line(nullptr), "");
}

TEST(AlphaSummary, MarkdownListsEachModule) {
  const nlohmann::ordered_json items =
      nlohmann::ordered_json::array({item("a", 3, {1, 2, 3}, {1.0, 2.0, 3.0})});
  const std::string md = alpha_search_markdown(summarize_alpha_search(items));
  EXPECT_NE(md.find("1 modules searched; 0 chose no MagR for every row; 1 of 6 output rows"), std::string::npos) << md;
  EXPECT_NE(md.find("| 3 | q_proj | none 1.000e+00, 0.001 x z 2.000e+00, 0.01 x z 3.000e+00 |"), std::string::npos)
      << md;
}

}  // namespace
}  // namespace magrq::app
