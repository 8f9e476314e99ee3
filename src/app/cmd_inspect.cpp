// `magrq verify OUT_DIR` and `magrq hessians inspect STORE`: checks of what a run wrote.
#include <spdlog/spdlog.h>

#include <Eigen/Eigenvalues>
#include <cstdio>
#include <string>

#include "app/commands.hpp"
#include "core/error.hpp"
#include "core/spectral.hpp"
#include "model/gptq_checkpoint.hpp"
#include "store/hessian_store.hpp"

namespace magrq::app {

namespace {

int run_verify(const std::string& dir) {
  const std::filesystem::path root(dir);
  // A run folder contains gptq/ and dequantized/. A GPTQ folder may also be given directly.
  const bool run_folder = std::filesystem::exists(root / "gptq" / "config.json");
  const auto gptq = run_folder ? root / "gptq" : root;
  std::optional<std::filesystem::path> dequantized;
  if (std::filesystem::exists(root / "dequantized" / "config.json")) {
    dequantized = root / "dequantized";
  }
  const model::VerifyReport report = model::verify_gptq_checkpoint(gptq, dequantized);
  for (const std::string& problem : report.problems) {
    spdlog::error("verify: {}", problem);
  }
  if (!report.problems.empty()) {
    return 1;
  }
  if (dequantized) {
    spdlog::info("verify: {} passed: {} modules, {} weights equal to {} bit for bit", gptq.string(),
                 report.modules, report.weights, dequantized->string());
  } else {
    spdlog::info("verify: {} passed: {} modules (layout only; no dequantized checkpoint beside it)",
                 gptq.string(), report.modules);
  }
  return 0;
}

// Condition number from exact eigenvalues for matrices up to this size; larger ones
// would take minutes, so the column stays empty for them.
constexpr Index kExactConditionLimit = 4096;

int run_inspect(const std::string& path) {
  const store::HessianStoreReader reader(path);
  const auto& header = reader.header();
  std::printf("store %s: %lld layers, %zu windows, precision %s, fingerprint %s\n", path.c_str(),
              static_cast<long long>(header.num_layers), header.window_starts.size() / 2,
              header.store_float32 ? "float32" : "float64", header.fingerprint.to_json().c_str());
  std::printf("%5s %-9s %7s %10s %12s %12s %6s %12s\n", "layer", "input", "size", "tokens", "trace",
              "lambda_max", "dead", "condition");
  for (int64_t layer = 0; layer < header.num_layers; ++layer) {
    if (!reader.has_layer(layer)) {
      std::printf("%5lld (missing)\n", static_cast<long long>(layer));
      continue;
    }
    for (const char* input : store::kLinearInputNames) {
      const store::StoredHessian hessian = reader.read(layer, input);
      const Matrix h = hessian.xtx.cast<float>();
      const double lambda_max = estimate_lambda_max(h);
      std::string condition = "-";
      if (h.rows() <= kExactConditionLimit) {
        const Eigen::SelfAdjointEigenSolver<MatrixD> solver(hessian.xtx, Eigen::EigenvaluesOnly);
        const double smallest = solver.eigenvalues().minCoeff();
        char text[32];
        std::snprintf(text, sizeof(text), "%.3e", smallest > 0 ? solver.eigenvalues().maxCoeff() / smallest
                                                               : std::numeric_limits<double>::infinity());
        condition = text;
      }
      std::printf("%5lld %-9s %7lld %10lld %12.4e %12.4e %6lld %12s\n", static_cast<long long>(layer), input,
                  static_cast<long long>(h.rows()), static_cast<long long>(hessian.statistics.tokens),
                  hessian.xtx.trace(), lambda_max, static_cast<long long>(hessian.statistics.dead_channels),
                  condition.c_str());
    }
  }
  return 0;
}

}  // namespace

void add_verify_command(CLI::App& root, CommandTable& table) {
  auto dir = std::make_shared<std::string>();
  CLI::App* sub = root.add_subcommand(
      "verify", "Unpack a GPTQ checkpoint independently of the packer and compare it with the dequantized one");
  sub->add_option("dir", *dir, "Run output folder (with gptq/ and dequantized/) or a GPTQ checkpoint folder")
      ->required();
  table[sub] = [dir] { return run_verify(*dir); };
}

void add_hessians_command(CLI::App& root, CommandTable& table) {
  auto path = std::make_shared<std::string>();
  CLI::App* hessians = root.add_subcommand("hessians", "Hessian store tools");
  hessians->require_subcommand(1);
  CLI::App* inspect = hessians->add_subcommand(
      "inspect", "Print per layer and input: size, tokens, trace, lambda_max, dead channels, condition number");
  inspect->add_option("store", *path, "Hessian store (file or per-layer folder)")->required();
  table[inspect] = [path] { return run_inspect(*path); };
}

}  // namespace magrq::app
