#include "app/experiment.hpp"

#include <gtest/gtest.h>

#include "core/error.hpp"

namespace magrq::app {
namespace {

const std::string kMinimal = R"(
model: {path: models/tiny}
calibration: {source: "text:data.txt@0:0.6", nsamples: 16, seqlen: 64}
store: {path: out/store.h5}
output: {dir: out/run}
)";

std::string error_of(const std::string& yaml) {
  try {
    parse_experiment(yaml, "exp.yaml");
  } catch (const ConfigError& error) {
    return error.what();
  }
  return "";
}

TEST(Experiment, MinimalFileTakesDefaults) {
  const ExperimentConfig c = parse_experiment(kMinimal, "exp.yaml");
  EXPECT_EQ(c.model.path, "models/tiny");
  EXPECT_EQ(c.calibration.nsamples, 16);
  EXPECT_EQ(c.calibration.seed, 0);
  EXPECT_EQ(c.calibration.mode, "sequential");
  EXPECT_EQ(c.quantizer.bits, 4);
  EXPECT_TRUE(c.quantizer.sym);
  EXPECT_EQ(c.magr.alpha.kind, AlphaSetting::Kind::search_relative) << "alpha defaults to auto";
  EXPECT_EQ(c.output.formats, (std::vector<std::string>{"gptq", "dequantized"}));
}

TEST(Experiment, UnknownKeySuggestsNearest) {
  const std::string message = error_of(kMinimal + "quantizer: {bitz: 3}\n");
  EXPECT_NE(message.find("unknown key quantizer.bitz"), std::string::npos) << message;
  EXPECT_NE(message.find("did you mean quantizer.bits?"), std::string::npos) << message;
}

TEST(Experiment, UnknownSectionSuggestsSection) {
  const std::string message = error_of(kMinimal + "quantiser: {bits: 3}\n");
  EXPECT_NE(message.find("unknown key quantiser"), std::string::npos) << message;
  EXPECT_NE(message.find("did you mean quantizer?"), std::string::npos) << message;
  const std::string magr = error_of(kMinimal + "magR: {enabled: false}\n");
  EXPECT_NE(magr.find("did you mean magr?"), std::string::npos) << magr;
}

TEST(Experiment, OutOfRangeValueNamesKeyAndLine) {
  const std::string message = error_of(kMinimal + "quantizer:\n  bits: 9\n");
  EXPECT_NE(message.find("exp.yaml:7: key quantizer.bits"), std::string::npos) << message;
  EXPECT_NE(message.find("'9'"), std::string::npos) << message;
  EXPECT_NE(message.find("from 2 to 8"), std::string::npos) << message;
}

TEST(Experiment, WrongTypeIsRejected) {
  const std::string message = error_of(kMinimal + "magr: {enabled: sometimes}\n");
  EXPECT_NE(message.find("key magr.enabled: expected true or false"), std::string::npos) << message;
}

TEST(Experiment, ChoiceListsTheValidValues) {
  const std::string message = error_of(kMinimal + "quantizer: {method: awq}\n");
  EXPECT_NE(message.find("expected one of gptq, rtn"), std::string::npos) << message;
}

TEST(Experiment, GroupSizeZeroIsRejected) {
  const std::string message = error_of(kMinimal + "quantizer: {group_size: 0}\n");
  EXPECT_NE(message.find("quantizer.group_size"), std::string::npos) << message;
}

TEST(Experiment, MissingRequiredKeyIsNamed) {
  const std::string message = error_of("model: {path: m}\n");
  EXPECT_NE(message.find("calibration.source is missing"), std::string::npos) << message;
}

TEST(Experiment, StaticGroupsNeedGroups) {
  const std::string message = error_of(kMinimal + "quantizer: {static_groups: true}\n");
  EXPECT_NE(message.find("static_groups needs quantizer.group_size > 0"), std::string::npos)
      << message;
}

TEST(Experiment, AlphaAcceptsAutoPublishedANumberOrAList) {
  const auto alpha = [](const std::string& value) {
    return parse_experiment(kMinimal + "magr: {alpha: " + value + "}\n", "e").magr.alpha;
  };
  EXPECT_EQ(alpha("auto").kind, AlphaSetting::Kind::search_relative);
  EXPECT_EQ(alpha("published").kind, AlphaSetting::Kind::published);
  EXPECT_EQ(alpha("0.002").kind, AlphaSetting::Kind::fixed);
  EXPECT_EQ(alpha("0.002").values, std::vector<double>{0.002});
  EXPECT_EQ(alpha("0").values, std::vector<double>{0.0}) << "alpha 0 is MagR doing nothing, as before";
  EXPECT_EQ(alpha("[0.001, 0.0001]").kind, AlphaSetting::Kind::search_absolute);
  EXPECT_EQ(alpha("[0.001, 0.0001]").values, (std::vector<double>{0.001, 0.0001}));
  EXPECT_EQ(alpha("[0.001]").to_json(), nlohmann::ordered_json::array({0.001}));
  EXPECT_EQ(alpha("published").to_json(), "published");
}

TEST(Experiment, AlphaRejectsBadValuesNamingTheKey) {
  const auto message = [](const std::string& value) {
    return error_of(kMinimal + "magr: {alpha: " + value + "}\n");
  };
  EXPECT_NE(message("-1").find("magr.alpha"), std::string::npos) << message("-1");
  EXPECT_NE(message("often").find("expected auto, published, a number or a list"), std::string::npos)
      << message("often");
  EXPECT_NE(message("[0.001, 0]").find("no MagR is always a candidate"), std::string::npos)
      << message("[0.001, 0]");
  EXPECT_NE(message("[0.001, 0.001]").find("listed twice"), std::string::npos) << message("[0.001, 0.001]");
  EXPECT_NE(message("[]").find("non-empty list"), std::string::npos) << message("[]");
}

TEST(Experiment, AutoCandidatesAreRelativeToTheZeroingAlpha) {
  EXPECT_EQ(parse_experiment(kMinimal, "e").magr.auto_candidates, AlphaSearchOptions::default_relative_candidates());
  EXPECT_EQ(parse_experiment(kMinimal + "magr: {auto_candidates: [0.01, 0.001]}\n", "e").magr.auto_candidates,
            (std::vector<double>{0.01, 0.001}));
  const std::string message = error_of(kMinimal + "magr: {auto_candidates: [1.5]}\n");
  EXPECT_NE(message.find("magr.auto_candidates"), std::string::npos) << message;
  EXPECT_NE(message.find("less than 1"), std::string::npos) << message;
}

TEST(Experiment, OverridesParseInOrder) {
  const ExperimentConfig c = parse_experiment(kMinimal + R"(
overrides:
  - {pattern: "mlp\\.down_proj", bits: 8}
  - {pattern: "self_attn\\.q_proj", skip: true}
)",
                                              "exp.yaml");
  ASSERT_EQ(c.overrides.size(), 2u);
  EXPECT_EQ(c.overrides[0].pattern, "mlp\\.down_proj");
  EXPECT_EQ(c.overrides[0].bits.value_or(0), 8);
  EXPECT_TRUE(c.overrides[1].skip);
}

TEST(Experiment, BadOverrideIsRejected) {
  EXPECT_NE(error_of(kMinimal + "overrides: [{pattern: \"(\"}]\n").find("not a valid regular"),
            std::string::npos);
  EXPECT_NE(error_of(kMinimal + "overrides: [{pattern: x, bitz: 3}]\n").find("unknown override key bitz"),
            std::string::npos);
  EXPECT_NE(error_of(kMinimal + "overrides: [{pattern: x, bits: 1}]\n").find("expected 2 to 8"),
            std::string::npos);
}

TEST(Experiment, ResolvedConfigurationHasEverySection) {
  ExperimentConfig c = parse_experiment(kMinimal, "exp.yaml");
  const auto resolved = declare_experiment_schema(c).resolved();
  EXPECT_EQ(resolved["quantizer"]["bits"], 4);
  EXPECT_EQ(resolved["magr"]["alpha"], "auto");
  EXPECT_EQ(resolved["calibration"]["source"], "text:data.txt@0:0.6");
  EXPECT_TRUE(resolved["overrides"].is_array());
}

TEST(Experiment, InvalidYamlIsAConfigError) {
  EXPECT_NE(error_of("model: [unclosed").find("invalid YAML"), std::string::npos);
  EXPECT_NE(error_of("- just\n- a list\n").find("top level"), std::string::npos);
}

}  // namespace
}  // namespace magrq::app
